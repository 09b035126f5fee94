/* hostile_qsize_npot: a queue size that is not a power of two (split rings need one, §2.7); refuse, then recover. */
#include "virtio.h"

static struct blk blk;

void guest_main(void)
{
	uint16_t max, size;
	uint64_t ring, avail, used;
	const char *why;

	hostile_open(&blk, 0);
	if (virtio_negotiate(&blk.pci, 0, &why) < 0)
		fail("renegotiation: %s", why);
	max = virtq_max_size(&blk.pci, 0);
	size = max > 4 ? (uint16_t)(max - 1) : 3;
	ring = (uint64_t)dma_alloc(4096 + 26UL * max + 16, 4096);
	avail = ring + 16UL * max;
	used = (avail + 6 + 2UL * max + 4095) & ~4095UL;
	printf("hostile: queue 0 with queue_size %u (max %u), then queue_enable\n", size, max);
	virtq_program(&blk.pci, 0, size, ring, avail, used);
	hostile_queue_verdict(&blk, size);
	hostile_recover(&blk, 0);
}
