/* libFuzzer target: a hostile guest's rings, descriptors and indirect tables fed to the split virtqueue. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/memory.h"
#include "virtio/virtqueue.h"

/*
 * Input layout (all of it guest-controlled, as in a real VM):
 *   [0]      queue size: 1 << (b & 15) normally; raw 16-bit size from [1..2] if b & 0x80
 *   [3]      bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 custom ring addresses
 *   [4..9]   custom desc/avail/used addresses (16-bit each), used only if [3] bit 2
 *   [10]     rounds of "device drains the ring, driver moves avail->idx"
 *   [11..14] per round: how far the driver moves avail->idx (may be hostile)
 *   [15]     per-chain `written` seed
 *   [16..]   the guest RAM image: descriptors, rings, tables, buffers
 * By default the rings sit back to back from address 0 (the legacy layout),
 * so input bytes land directly on descriptors and the available ring.
 */
#define HDR        16
#define GUEST_RAM  (32 * 1024)
#define GUEST_GPA  0x0           /* one region at 0, like low RAM */
#define MAX_ROUNDS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant the queue must keep whatever the guest wrote; a violation is a bug. */
#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static void check_chain(const struct vq *q, const struct vq_chain *c, const uint8_t *ram)
{
	uint64_t rd = 0, wr = 0;

	CHECK(c->head < q->size);
	CHECK(c->nbufs <= VQ_MAX_BUFS);
	CHECK(c->nread <= c->nbufs);
	for (unsigned i = 0; i < c->nbufs; i++) {
		const uint8_t *h = c->bufs[i].host;

		/* Every buffer lies wholly inside guest RAM. */
		CHECK(c->bufs[i].len > 0);
		CHECK(h >= ram && h < ram + GUEST_RAM);
		CHECK(c->bufs[i].len <= (size_t)(ram + GUEST_RAM - h));
		/* Readable ones first (§2.7.4.2). */
		CHECK(c->bufs[i].write == (i >= c->nread));
		if (c->bufs[i].write)
			wr += c->bufs[i].len;
		else
			rd += c->bufs[i].len;
		/*
		 * Touch both ends: ASan flags a pointer that escaped the region.
		 * Read only, so avail->idx stays put within one drain and the
		 * "at most size chains" bound below is exact.
		 */
		(void)((volatile const uint8_t *)h)[0];
		(void)((volatile const uint8_t *)h)[c->bufs[i].len - 1];
	}
	CHECK(rd == c->total_read && wr == c->total_write);
	CHECK(rd + wr <= VQ_MAX_CHAIN_BYTES);
}

static void drain(struct vq *q, struct vq_chain *c, const uint8_t *ram, uint8_t wseed)
{
	/* A ring holds at most size chains; one more pop must say -EAGAIN or fail. */
	for (unsigned n = 0; n <= (unsigned)q->size + 1; n++) {
		int ret = vq_pop(q, c);

		if (ret == -EAGAIN)
			return;
		if (ret) {
			CHECK(ret == -EIO && q->needs_reset && q->fault != VQ_FAULT_NONE);
			CHECK(vq_pop(q, c) == -EIO);
			return;
		}
		CHECK(n < q->size);
		check_chain(q, c, ram);
		CHECK(vq_push(q, c->head, (uint32_t)MIN(c->total_write, (uint64_t)wseed * 7)) == 0);
		/* In flight never exceeds the ring. */
		CHECK((uint16_t)(q->last_avail - q->used_idx) <= q->size);
		(void)vq_should_notify(q);
		if (n & 1)
			vq_disable_notify(q);
	}
	CHECK(0);   /* the loop bound was reached: vq_pop let more than size chains through */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem m;
	struct vq q;
	struct vq_chain *c;
	uint8_t *ram;
	uint32_t qsize;
	uint64_t features = 1ull << VIRTIO_F_VERSION_1;
	gpa_t desc, avail, used;
	unsigned rounds;

	if (size < HDR)
		return 0;
	ram = calloc(1, GUEST_RAM);
	c = malloc(sizeof(*c));
	if (!ram || !c)
		goto out;
	memcpy(ram, data + HDR, MIN(size - HDR, (size_t)GUEST_RAM));

	/* A layout-only guest_mem over the buffer: mem_gpa() is the real accessor. */
	memset(&m, 0, sizeof(m));
	m.fd = -1;
	m.total = GUEST_RAM;
	m.nregions = 1;
	m.regions[0] = (struct mem_region){ .gpa = GUEST_GPA, .size = GUEST_RAM, .host = ram };

	qsize = (data[0] & 0x80) ? (uint32_t)(data[1] | data[2] << 8) : 1u << (data[0] & 15);
	if (data[3] & 1)
		features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
	if (data[3] & 2)
		features |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	if (data[3] & 4) {
		desc = (gpa_t)(data[4] | data[5] << 8);
		avail = (gpa_t)(data[6] | data[7] << 8);
		used = (gpa_t)(data[8] | data[9] << 8);
	} else {
		desc = GUEST_GPA;
		avail = desc + VRING_DESC_BYTES(qsize);
		used = ALIGN_UP(avail + VRING_AVAIL_BYTES(qsize), 4);
	}
	memset(&q, 0, sizeof(q));
	if (vq_configure(&q, &m, qsize, desc, avail, used, features))
		goto out;   /* rejected layouts are fine; accepted ones must hold up below */
	CHECK(q.size == qsize && !(qsize & (qsize - 1)));

	rounds = 1 + data[10] % MAX_ROUNDS;
	for (unsigned r = 0; r < rounds; r++) {
		uint16_t idx;

		drain(&q, c, ram, data[15]);
		if (q.needs_reset)
			break;
		(void)vq_enable_notify(&q);
		/* The driver publishes more (or, hostile, rewinds): avail->idx += step. */
		memcpy(&idx, (uint8_t *)q.avail_ring + 2, 2);
		idx = (uint16_t)(idx + data[11 + r]);
		memcpy((uint8_t *)q.avail_ring + 2, &idx, 2);
	}
out:
	free(c);
	free(ram);
	return 0;
}
