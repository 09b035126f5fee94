/* hostile_nested_indirect: an indirect table holding an INDIRECT descriptor (§2.7.5.3.1 forbids it); refuse, then recover. */
#include "virtio.h"

static struct blk blk;

void guest_main(void)
{
	uint8_t *buf = dma_alloc(SECTOR_SIZE, SECTOR_SIZE);
	struct vring_desc *outer = dma_alloc(2 * sizeof(struct vring_desc), 16);
	struct vring_desc *inner = dma_alloc(2 * sizeof(struct vring_desc), 16);
	struct blk_slot *s;

	hostile_open(&blk, BIT(VIRTIO_F_INDIRECT_DESC));
	s = &blk.slots[0];
	s->hdr = (struct virtio_blk_req_hdr){ VIRTIO_BLK_T_IN, 0, 0 };
	s->status = 0xff;
	/* head -> outer table: header, then INDIRECT -> inner table: data, status. */
	inner[0] = (struct vring_desc){ (uint64_t)buf, SECTOR_SIZE, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1 };
	inner[1] = (struct vring_desc){ (uint64_t)&s->status, 1, VRING_DESC_F_WRITE, 0 };
	outer[0] = (struct vring_desc){ (uint64_t)&s->hdr, sizeof(s->hdr), VRING_DESC_F_NEXT, 1 };
	outer[1] = (struct vring_desc){ (uint64_t)inner, 2 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0 };
	blk.vq.desc[0] = (struct vring_desc){ (uint64_t)outer, 2 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0 };
	printf("hostile: posting an indirect table that holds another indirect descriptor\n");
	hostile_post(&blk, 0);
	hostile_verdict(&blk, &s->status);
	hostile_recover(&blk, BIT(VIRTIO_F_INDIRECT_DESC));
}
