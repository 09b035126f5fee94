/* A fake virtio-mmio driver for unit tests: register accesses through the MMIO bus, split rings in fake guest RAM. */
#ifndef KILN_TEST_VIRTIO_MMIO_DRIVER_H
#define KILN_TEST_VIRTIO_MMIO_DRIVER_H

#include <endian.h>
#include <unistd.h>
#include "core/vm.h"
#include "virtio/virtio.h"
#include "mem_fixture.h"

/*
 * Register offsets written out from virtio 1.2 §4.2.2 table 4.1, not taken
 * from the transport's source, so a wrong constant there fails a test here.
 */
enum {
	MMIO_MAGIC = 0x000, MMIO_VERSION = 0x004, MMIO_DEVICE_ID = 0x008, MMIO_VENDOR_ID = 0x00c,
	MMIO_DEV_FEATURES = 0x010, MMIO_DEV_FEATURES_SEL = 0x014,
	MMIO_DRV_FEATURES = 0x020, MMIO_DRV_FEATURES_SEL = 0x024,
	MMIO_QUEUE_SEL = 0x030, MMIO_QUEUE_NUM_MAX = 0x034, MMIO_QUEUE_NUM = 0x038, MMIO_QUEUE_READY = 0x044,
	MMIO_QUEUE_NOTIFY = 0x050, MMIO_INT_STATUS = 0x060, MMIO_INT_ACK = 0x064, MMIO_STATUS = 0x070,
	MMIO_DESC_LO = 0x080, MMIO_DESC_HI = 0x084, MMIO_DRIVER_LO = 0x090, MMIO_DRIVER_HI = 0x094,
	MMIO_DEVICE_LO = 0x0a0, MMIO_DEVICE_HI = 0x0a4, MMIO_SHM_SEL = 0x0ac, MMIO_SHM_LEN_LO = 0x0b0,
	MMIO_SHM_LEN_HI = 0x0b4, MMIO_SHM_BASE_LO = 0x0b8, MMIO_SHM_BASE_HI = 0x0bc, MMIO_QUEUE_RESET = 0x0c0,
	MMIO_CONFIG_GEN = 0x0fc, MMIO_CONFIG = 0x100,
};

#define ST_ACK 0x01
#define ST_DRIVER 0x02
#define ST_DRIVER_OK 0x04
#define ST_FEATURES_OK 0x08
#define ST_NEEDS_RESET 0x40

static inline uint32_t mmio_rd(struct vm *vm, gpa_t base, uint32_t off)
{
	uint32_t v = 0xdeadbeef;

	bus_access(&vm->mmio, base + off, (uint8_t *)&v, 4, false);
	return le32toh(v);
}

static inline void mmio_wr(struct vm *vm, gpa_t base, uint32_t off, uint32_t val)
{
	uint32_t v = htole32(val);

	bus_access(&vm->mmio, base + off, (uint8_t *)&v, 4, true);
}

/* One split ring the fake driver owns, laid out at `at` (desc, then avail, then used on its own page). */
struct fake_ring {
	struct vm *vm;
	gpa_t desc, avail, used;
	uint16_t size;
	uint16_t avail_idx;    /* the driver's next avail->idx */
};

static inline uint8_t *ring_ptr(struct fake_ring *r, gpa_t gpa, uint64_t len)
{
	uint8_t *p = vm_gpa(r->vm, gpa, len);

	if (!p)
		abort();
	return p;
}

static inline void ring_init(struct fake_ring *r, struct vm *vm, gpa_t at, uint16_t size)
{
	*r = (struct fake_ring){ .vm = vm, .desc = at, .avail = at + 16ull * size, .used = at + 0x1000 * (1 + size / 64),
				 .size = size };
	memset(ring_ptr(r, at, r->used + 6 + 8ull * size + 2 - at), 0, r->used + 6 + 8ull * size + 2 - at);
}

static inline void ring_desc(struct fake_ring *r, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = ring_ptr(r, r->desc + 16ull * i, 16);

	put64(d, 0, htole64(addr));
	put32(d, 8, htole32(len));
	put16(d, 12, htole16(flags));
	put16(d, 14, htole16(next));
}

/* Make chain `head` available (§2.7.13). */
static inline void ring_offer(struct fake_ring *r, uint16_t head)
{
	put16(ring_ptr(r, r->avail + 4 + 2ull * (r->avail_idx % r->size), 2), 0, htole16(head));
	r->avail_idx++;
	put16(ring_ptr(r, r->avail + 2, 2), 0, htole16(r->avail_idx));
}

static inline uint16_t ring_rd16(struct fake_ring *r, gpa_t gpa)
{
	uint16_t v;

	memcpy(&v, ring_ptr(r, gpa, 2), 2);
	return le16toh(v);
}

static inline uint16_t ring_used_idx(struct fake_ring *r)
{
	return ring_rd16(r, r->used + 2);
}

static inline uint32_t ring_used_len(struct fake_ring *r, unsigned slot)
{
	uint32_t v;

	memcpy(&v, ring_ptr(r, r->used + 4 + 8ull * (slot % r->size) + 4, 4), 4);
	return le32toh(v);
}

static inline uint32_t ring_used_id(struct fake_ring *r, unsigned slot)
{
	uint32_t v;

	memcpy(&v, ring_ptr(r, r->used + 4 + 8ull * (slot % r->size), 4), 4);
	return le32toh(v);
}

/* avail_event, the device's "kick me at" word after the used ring (§2.7.10). */
static inline uint16_t ring_avail_event(struct fake_ring *r)
{
	return ring_rd16(r, r->used + 4 + 8ull * r->size);
}

/* Program queue q from r through the registers (§4.2.3.2 steps 1-8, without QueueReady). */
static inline void mmio_queue_setup(struct vm *vm, gpa_t base, unsigned q, struct fake_ring *r)
{
	mmio_wr(vm, base, MMIO_QUEUE_SEL, q);
	mmio_wr(vm, base, MMIO_QUEUE_NUM, r->size);
	mmio_wr(vm, base, MMIO_DESC_LO, (uint32_t)r->desc);
	mmio_wr(vm, base, MMIO_DESC_HI, (uint32_t)(r->desc >> 32));
	mmio_wr(vm, base, MMIO_DRIVER_LO, (uint32_t)r->avail);
	mmio_wr(vm, base, MMIO_DRIVER_HI, (uint32_t)(r->avail >> 32));
	mmio_wr(vm, base, MMIO_DEVICE_LO, (uint32_t)r->used);
	mmio_wr(vm, base, MMIO_DEVICE_HI, (uint32_t)(r->used >> 32));
}

/* §3.1.1 up to FEATURES_OK: the driver accepts `features`; returns the status read back. */
static inline uint32_t mmio_negotiate(struct vm *vm, gpa_t base, uint64_t features)
{
	mmio_wr(vm, base, MMIO_STATUS, 0);
	mmio_wr(vm, base, MMIO_STATUS, ST_ACK);
	mmio_wr(vm, base, MMIO_STATUS, ST_ACK | ST_DRIVER);
	mmio_wr(vm, base, MMIO_DRV_FEATURES_SEL, 0);
	mmio_wr(vm, base, MMIO_DRV_FEATURES, (uint32_t)features);
	mmio_wr(vm, base, MMIO_DRV_FEATURES_SEL, 1);
	mmio_wr(vm, base, MMIO_DRV_FEATURES, (uint32_t)(features >> 32));
	mmio_wr(vm, base, MMIO_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	return mmio_rd(vm, base, MMIO_STATUS);
}

/*
 * What the I/O thread would do (virtio.c kick_ready), run inline so tests
 * are deterministic: drain every signalled kick eventfd and let the device
 * work the queue. Returns the number of kicks found.
 */
static inline unsigned pump_kicks(struct virtio_dev *d)
{
	unsigned found = 0;

	/* Bounded: a device may re-kick itself, but only so often in a test. */
	for (unsigned round = 0; round < 64; round++) {
		bool any = false;

		for (unsigned q = 0; q < d->nqueues; q++) {
			uint64_t n;

			if (read(d->kick_fd[q], &n, sizeof(n)) != (ssize_t)sizeof(n))
				continue;
			any = true;
			found++;
			pthread_mutex_lock(&d->lock);
			d->stats.kicks++;
			if (virtio_queue_live(d, q))
				d->ops->queue_notify(d, q);
			pthread_mutex_unlock(&d->lock);
		}
		if (!any)
			break;
	}
	return found;
}

#endif
