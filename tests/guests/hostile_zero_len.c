/* hostile_zero_len: a request whose header descriptor has length 0; the device must refuse it, then work after a reset. */
#include "virtio.h"

static struct blk blk;

void guest_main(void)
{
	uint8_t *buf = dma_alloc(SECTOR_SIZE, SECTOR_SIZE);
	struct blk_slot *s;
	struct vring_desc *d;

	hostile_open(&blk, 0);
	s = &blk.slots[0];
	/* A valid header is there, but the descriptor says 0 bytes: the device must not read it. */
	s->hdr = (struct virtio_blk_req_hdr){ VIRTIO_BLK_T_IN, 0, 0 };
	s->status = 0xff;
	d = blk.vq.desc;
	d[0] = (struct vring_desc){ (uint64_t)&s->hdr, 0, VRING_DESC_F_NEXT, 1 };
	d[1] = (struct vring_desc){ (uint64_t)buf, SECTOR_SIZE, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
	d[2] = (struct vring_desc){ (uint64_t)&s->status, 1, VRING_DESC_F_WRITE, 0 };
	printf("hostile: posting a read whose header descriptor has length 0\n");
	hostile_post(&blk, 0);
	hostile_verdict(&blk, &s->status);
	hostile_recover(&blk, 0);
}
