/* A polling virtio-blk client (virtio 1.2 §5.2) over the test guests' virtio-pci driver. */
#include "virtio.h"

#define BLK_MAX_BUFS 64                 /* header + data pieces + status in one chain */
#define BLK_WAIT_SECONDS 20             /* a request slower than this is lost (the lab is slow, not this slow) */

static const uint16_t blk_devices[] = { VIRTIO_PCI_DEVICE_BLK, VIRTIO_PCI_DEVICE_BLK_TRANSITIONAL, 0 };

static int blk_start(struct blk *b, uint64_t wanted, uint16_t qsize, const char **why)
{
	if (virtio_negotiate(&b->pci, wanted, why) < 0)
		return -1;
	if (virtq_setup(&b->pci, &b->vq, 0, qsize, why) < 0)
		return -1;
	if (!b->pci.device || b->pci.device_len < 8) {
		*why = "no device-specific configuration (capacity) capability";
		return -1;
	}
	/* §5.2.4: capacity always; size_max and seg_max only when offered. */
	b->capacity = virtio_cfg64(&b->pci, 0);
	b->size_max = b->pci.features & BIT(VIRTIO_BLK_F_SIZE_MAX) ? virtio_cfg32(&b->pci, 8) : 0;
	b->seg_max = b->pci.features & BIT(VIRTIO_BLK_F_SEG_MAX) ? virtio_cfg32(&b->pci, 12) : 0;
	b->slots = dma_alloc(sizeof(struct blk_slot) * b->vq.size, 64);
	virtio_driver_ok(&b->pci);
	if (virtio_status(&b->pci) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
		*why = "device status has NEEDS_RESET or FAILED right after DRIVER_OK";
		return -1;
	}
	return 0;
}

int blk_open(struct blk *b, uint64_t wanted, uint16_t qsize, const char **why)
{
	memset(b, 0, sizeof(*b));
	if (virtio_pci_open(&b->pci, blk_devices, why) < 0)
		return -1;
	return blk_start(b, wanted, qsize, why);
}

int blk_reopen(struct blk *b, uint64_t wanted, uint16_t qsize, const char **why)
{
	memset(&b->vq, 0, sizeof(b->vq));
	return blk_start(b, wanted, qsize, why);
}

int blk_submit(struct blk *b, uint32_t type, uint64_t sector, void *data, uint32_t len, bool kick)
{
	struct vbuf bufs[BLK_MAX_BUFS];
	uint32_t piece = b->size_max ? b->size_max : len, off;
	bool to_guest = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	struct blk_slot *s;
	unsigned n = 0;
	int head;

	if (b->vq.num_free < 3)
		return -1;
	s = &b->slots[b->vq.free_head];
	s->hdr.type = type;
	s->hdr.reserved = 0;
	s->hdr.sector = sector;
	s->status = 0xff;   /* not a status the device writes: "never written" */
	bufs[n++] = (struct vbuf){ (uint64_t)&s->hdr, sizeof(s->hdr), false };
	for (off = 0; off < len; off += piece) {
		if (n == BLK_MAX_BUFS - 1 || (b->seg_max && n - 1 == b->seg_max))
			fail("blk_submit: %u bytes need more than %u segments of %u", len, n - 1, piece);
		bufs[n++] = (struct vbuf){ (uint64_t)data + off, len - off < piece ? len - off : piece, to_guest };
	}
	bufs[n++] = (struct vbuf){ (uint64_t)&s->status, 1, true };
	head = virtq_add(&b->vq, bufs, n);
	if (head >= 0 && kick)
		virtq_publish(&b->vq);
	return head;
}

struct blk_poll {
	struct blk *b;
	uint32_t id, len;
};

static bool blk_poll(void *arg)
{
	struct blk_poll *p = arg;

	if (virtq_get(&p->b->vq, &p->id, &p->len))
		return true;
	p->b->poll_spins++;
	return false;
}

uint32_t blk_wait(struct blk *b, uint32_t *len, const char *what)
{
	struct blk_poll p = { b, 0, 0 };

	/* Fast path without the RTC: most completions arrive within a few polls. */
	for (unsigned i = 0; i < 1000; i++)
		if (blk_poll(&p))
			goto done;
	if (!wait_seconds(blk_poll, &p, BLK_WAIT_SECONDS))
		fail("%s: no completion in %u s (device status %#x, used idx %u, avail idx %u)", what,
		     BLK_WAIT_SECONDS, virtio_status(&b->pci), virtq_used_idx(&b->vq), b->vq.avail_idx);
done:
	if (len)
		*len = p.len;
	return p.id;
}

uint8_t blk_io(struct blk *b, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	int head = blk_submit(b, type, sector, data, len, true);
	uint32_t id;

	if (head < 0)
		fail("blk_io: ring full with nothing in flight");
	id = blk_wait(b, NULL, "blk_io");
	if (id != (uint32_t)head)
		fail("blk_io: completion for head %u, submitted %d", id, head);
	return b->slots[id].status;
}
