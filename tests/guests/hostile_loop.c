/* hostile_loop: a descriptor chain that loops (0 -> 1 -> 2 -> 1); the device must refuse it, then work after a reset. */
#include "virtio.h"

static struct blk blk;

void guest_main(void)
{
	uint8_t *buf = dma_alloc(SECTOR_SIZE, SECTOR_SIZE);
	struct blk_slot *s;
	struct vring_desc *d;

	hostile_open(&blk, 0);
	/* The good read is done and freed: descriptors 0-2 are ours to rewrite. */
	s = &blk.slots[0];
	s->hdr = (struct virtio_blk_req_hdr){ VIRTIO_BLK_T_IN, 0, 0 };
	s->status = 0xff;
	d = blk.vq.desc;
	d[0] = (struct vring_desc){ (uint64_t)&s->hdr, sizeof(s->hdr), VRING_DESC_F_NEXT, 1 };
	d[1] = (struct vring_desc){ (uint64_t)buf, SECTOR_SIZE, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
	/* Back to 1, not 0: every step keeps readable-before-writable, so only the loop is wrong. */
	d[2] = (struct vring_desc){ (uint64_t)&s->status, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1 };
	printf("hostile: posting chain 0 -> 1 -> 2 -> 1 -> ...\n");
	hostile_post(&blk, 0);
	hostile_verdict(&blk, &s->status);
	hostile_recover(&blk, 0);
}
