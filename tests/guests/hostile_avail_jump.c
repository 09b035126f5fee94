/* hostile_avail_jump: avail->idx moves more than the queue size ahead (§2.7.13); the device must refuse, then recover. */
#include "virtio.h"

static struct blk blk;

void guest_main(void)
{
	uint8_t *buf = dma_alloc(SECTOR_SIZE, SECTOR_SIZE);
	struct virtq *q;
	uint16_t idx;
	int head;

	hostile_open(&blk, 0);
	q = &blk.vq;
	/* A well-formed read sits in the ring; only the index lies about how many there are. */
	head = blk_submit(&blk, VIRTIO_BLK_T_IN, 0, buf, SECTOR_SIZE, false);
	if (head < 0)
		fail("ring full");
	idx = (uint16_t)(q->avail_idx + q->size + 1);
	printf("hostile: avail idx %u -> %u with queue size %u\n", q->kicked_idx, idx, q->size);
	virtq_raw_set_avail_idx(q, idx);
	virtq_notify(q);
	hostile_verdict(&blk, &blk.slots[head].status);
	hostile_recover(&blk, 0);
}
