/* hostile_qsize0: queue_size 0 written and the queue enabled; the device must refuse (NEEDS_RESET or keep its size), then recover. */
#include "virtio.h"

static struct blk blk;

void guest_main(void)
{
	uint16_t max;
	uint64_t ring, avail, used;
	const char *why;

	hostile_open(&blk, 0);
	if (virtio_negotiate(&blk.pci, 0, &why) < 0)
		fail("renegotiation: %s", why);
	max = virtq_max_size(&blk.pci, 0);
	/* Rings big enough for the device's maximum, so only the size is wrong. */
	ring = (uint64_t)dma_alloc(4096 + 26UL * max + 16, 4096);
	avail = ring + 16UL * max;
	used = (avail + 6 + 2UL * max + 4095) & ~4095UL;
	printf("hostile: queue 0 with queue_size 0 (max %u), then queue_enable\n", max);
	virtq_program(&blk.pci, 0, 0, ring, avail, used);
	hostile_queue_verdict(&blk, 0);
	hostile_recover(&blk, 0);
}
