/* hostile_beyond_ram: a read whose data buffer lies at 1 GiB, past RAM; the device must refuse it, then work after a reset. */
#include "virtio.h"

#define BEYOND (1UL << 30)

static struct blk blk;

void guest_main(void)
{
	struct blk_slot *s;
	struct vring_desc *d;

	if (ram_top() > BEYOND)
		fail("RAM reaches %#lx: boot with --memory 64", ram_top());
	hostile_open(&blk, 0);
	s = &blk.slots[0];
	s->hdr = (struct virtio_blk_req_hdr){ VIRTIO_BLK_T_IN, 0, 0 };
	s->status = 0xff;
	d = blk.vq.desc;
	d[0] = (struct vring_desc){ (uint64_t)&s->hdr, sizeof(s->hdr), VRING_DESC_F_NEXT, 1 };
	d[1] = (struct vring_desc){ BEYOND, 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
	d[2] = (struct vring_desc){ (uint64_t)&s->status, 1, VRING_DESC_F_WRITE, 0 };
	printf("hostile: posting a 4 KiB read into %#lx (RAM ends at %#lx)\n", BEYOND, ram_top());
	hostile_post(&blk, 0);
	hostile_verdict(&blk, &s->status);
	hostile_recover(&blk, 0);
}
