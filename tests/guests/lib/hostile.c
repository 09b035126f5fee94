/* The shared steps of the hostile virtio-blk guests: open, post a broken chain, judge the device's verdict, recover. */
#include "virtio.h"

#define VERDICT_SECONDS 10     /* kiln reacts within one I/O-thread pass; the lab is slow */

void hostile_open(struct blk *b, uint64_t features)
{
	uint8_t *buf = dma_alloc(SECTOR_SIZE, SECTOR_SIZE);
	const char *why;
	uint8_t st;

	if (blk_open(b, features, 0, &why) < 0)
		fail("virtio-blk: %s", why);
	if ((features & ~b->pci.features) & ~BIT(VIRTIO_F_EVENT_IDX))
		fail("the device does not offer features %#lx", features & ~b->pci.features);
	st = blk_io(b, VIRTIO_BLK_T_IN, 1, buf, SECTOR_SIZE);
	if (st != VIRTIO_BLK_S_OK || buf[0] != 1 || buf[SECTOR_SIZE - 1] != disk_byte(1, SECTOR_SIZE - 1))
		fail("the first, good read failed (status %u, byte 0 %#x)", st, buf[0]);
	printf("hostile: device ready (queue size %u, features %#lx), a good read worked\n", b->vq.size,
	       b->pci.features);
}

void hostile_post(struct blk *b, uint16_t head)
{
	struct virtq *q = &b->vq;

	q->avail->ring[q->avail_idx & (q->size - 1)] = head;
	q->avail_idx++;
	virtq_publish(q);
}

struct verdict {
	struct blk *b;
	uint16_t used0;
	uint8_t status;
};

static bool reacted(void *arg)
{
	struct verdict *v = arg;

	v->status = virtio_status(&v->b->pci);
	return (v->status & VIRTIO_STATUS_NEEDS_RESET) || virtq_used_idx(&v->b->vq) != v->used0;
}

void hostile_verdict(struct blk *b, volatile uint8_t *status)
{
	struct verdict v = { b, b->vq.last_used, 0 };
	uint32_t id, len;
	uint8_t isr;

	if (!wait_seconds(reacted, &v, VERDICT_SECONDS))
		fail("no reaction in %u s: device status %#x, used idx %u (neither NEEDS_RESET nor a completion)",
		     VERDICT_SECONDS, v.status, virtq_used_idx(&b->vq));
	if (v.status & VIRTIO_STATUS_NEEDS_RESET) {
		/* §2.1.2: with DRIVER_OK set, the device also sends a configuration change notification. */
		isr = mmio_read8(b->pci.isr);
		if ((v.status & VIRTIO_STATUS_DRIVER_OK) && !(isr & 2))
			fail("NEEDS_RESET without a configuration change in the ISR (isr %#x, §2.1.2)", isr);
		printf("hostile: device status %#x (DEVICE_NEEDS_RESET), isr %#x\n", v.status, isr);
		printf("hostile: outcome=needs_reset\n");
		return;
	}
	if (!virtq_get(&b->vq, &id, &len))
		fail("used idx moved but no element");
	if (!status)
		fail("the device completed a request that has no status byte (id %u, used len %u)", id, len);
	if (*status != VIRTIO_BLK_S_IOERR && *status != VIRTIO_BLK_S_UNSUPP)
		fail("the device completed the broken request with status %#x (used len %u) instead of refusing it",
		     *status, len);
	printf("hostile: completed with status %u (%s), used len %u\n", *status,
	       *status == VIRTIO_BLK_S_IOERR ? "IOERR" : "UNSUPP", len);
	printf("hostile: outcome=error_status\n");
}

void hostile_queue_verdict(struct blk *b, uint16_t size_written)
{
	uint8_t st = virtio_status(&b->pci);
	uint16_t size = mmio_read16(b->pci.common + VPCI_Q_SIZE);
	uint16_t enabled = mmio_read16(b->pci.common + VPCI_Q_ENABLE);

	if (st & VIRTIO_STATUS_NEEDS_RESET) {
		printf("hostile: device status %#x (DEVICE_NEEDS_RESET) after queue_enable\n", st);
		printf("hostile: outcome=needs_reset\n");
	} else if (size != size_written || !enabled) {
		printf("hostile: the device refused it: queue_size reads %u, queue_enable %u\n", size, enabled);
		printf("hostile: outcome=refused\n");
	} else {
		fail("the device took queue size %u: queue_size reads %u, queue_enable %u, status %#x", size_written,
		     size, enabled, st);
	}
}

void hostile_recover(struct blk *b, uint64_t features)
{
	uint8_t *buf = dma_alloc(4096, 4096);
	const char *why;
	uint8_t st;

	/* blk_reopen resets first (§3.1.1 step 1): that is the driver's answer to NEEDS_RESET. */
	if (blk_reopen(b, features, 0, &why) < 0)
		fail("after the reset: %s", why);
	st = blk_io(b, VIRTIO_BLK_T_IN, 8, buf, 4096);
	if (st != VIRTIO_BLK_S_OK)
		fail("after the reset: a good read got status %u", st);
	for (unsigned i = 0; i < 4096; i++)
		if (buf[i] != disk_byte(8 + i / SECTOR_SIZE, i % SECTOR_SIZE))
			fail("after the reset: sector %u byte %u is %#x, the image has %#x", 8 + i / SECTOR_SIZE,
			     i % SECTOR_SIZE, buf[i], disk_byte(8 + i / SECTOR_SIZE, i % SECTOR_SIZE));
	if (virtio_status(&b->pci) & VIRTIO_STATUS_NEEDS_RESET)
		fail("NEEDS_RESET still set after the reset");
	printf("hostile: recovered: reset, a 4 KiB read returned the image's bytes\n");
}
