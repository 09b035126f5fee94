/* hostile_wrap: a buffer whose addr + len wraps past 2^64; the device must refuse it, then work after a reset. */
#include "virtio.h"

#define WRAP_ADDR 0xfffffffffffff000UL
#define WRAP_LEN  0x2000u

static struct blk blk;

void guest_main(void)
{
	struct blk_slot *s;
	struct vring_desc *d;

	hostile_open(&blk, 0);
	s = &blk.slots[0];
	s->hdr = (struct virtio_blk_req_hdr){ VIRTIO_BLK_T_IN, 0, 0 };
	s->status = 0xff;
	d = blk.vq.desc;
	d[0] = (struct vring_desc){ (uint64_t)&s->hdr, sizeof(s->hdr), VRING_DESC_F_NEXT, 1 };
	d[1] = (struct vring_desc){ WRAP_ADDR, WRAP_LEN, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
	d[2] = (struct vring_desc){ (uint64_t)&s->status, 1, VRING_DESC_F_WRITE, 0 };
	printf("hostile: posting a read into [%#lx, +%#x), which wraps\n", WRAP_ADDR, WRAP_LEN);
	hostile_post(&blk, 0);
	hostile_verdict(&blk, &s->status);
	hostile_recover(&blk, 0);
}
