/* libFuzzer target: hostile virtio-blk requests (framing, headers, segments, limits) fed to the request planner. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/memory.h"
#include "virtio/blk_req.h"
#include "virtio/virtqueue.h"

/*
 * Input layout:
 *   [0]       bit 0 read-only, bit 1 DISCARD negotiated, bit 2 WRITE_ZEROES
 *             negotiated, bit 3 ring mode, bit 4 full 64-bit capacity
 *   [1], [2]  max_discard_seg, max_write_zeroes_seg
 *   [3..6]    max_discard_sectors, [7..10] max_write_zeroes_sectors (LE)
 *   [11..18]  capacity (LE; only its low 16 bits unless bit 4, so ranges hit the edges)
 *   [19]      chain mode: buffer count (mod 64); ring mode: log2 queue size (mod 8)
 *   chain mode: count x { u16 length (LE, low 14 bits), u8 bit 0 device-writable },
 *               then the bytes of the buffers, laid out back to back
 *   ring mode:  guest RAM from address 0: descriptor table, avail ring, used
 *               ring (legacy layout), indirect tables and buffers anywhere
 * Chain mode reaches the planner with every framing the driver could pick;
 * ring mode takes chains the real way, through vq_pop.
 */
#define HDR        20
#define ARENA      (64 * 1024)
#define GUEST_RAM  (32 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

/* [p, p+len) lies inside one buffer of c with the given direction. */
static bool inside(const struct vq_chain *c, const void *p, uint64_t len, bool write)
{
	const uint8_t *a = p;

	for (unsigned i = 0; i < c->nbufs; i++) {
		const uint8_t *h = c->bufs[i].host;

		if (c->bufs[i].write == write && a >= h && len <= c->bufs[i].len && a - h <= (ptrdiff_t)(c->bufs[i].len - len))
			return true;
	}
	return false;
}

/* Everything a plan promises, whatever the guest sent. */
static void check_plan(const struct vq_chain *c, const struct blk_limits *lim, struct blk_plan *p, bool disjoint)
{
	int ret = blk_plan(c, lim, p);
	uint64_t sum = 0;

	if (c->total_write == 0) {
		CHECK(ret == -EINVAL);
		return;
	}
	CHECK(ret == 0);
	/* The status byte is the last writable byte. */
	CHECK(p->status_ptr == (uint8_t *)c->bufs[c->nbufs - 1].host + c->bufs[c->nbufs - 1].len - 1);
	CHECK(p->data_in == c->total_write - 1);
	CHECK(p->head == c->head);
	CHECK(blk_used_len(p, VIRTIO_BLK_S_OK) <= c->total_write);
	CHECK(blk_used_len(p, VIRTIO_BLK_S_IOERR) <= c->total_write);
	*p->status_ptr = VIRTIO_BLK_S_OK;   /* ASan: it is writable memory */

	CHECK(p->niov <= BLK_MAX_IOV);
	for (unsigned i = 0; i < p->niov; i++) {
		const uint8_t *b = p->iov[i].iov_base;
		bool write = p->op != BLK_OP_WRITE;

		CHECK(p->iov[i].iov_len > 0);
		CHECK(inside(c, b, p->iov[i].iov_len, write));
		/*
		 * Data never covers the status byte's place in the stream. Only
		 * checkable by address when buffers are disjoint: through a real
		 * ring the guest may alias them, which harms only itself.
		 */
		CHECK(!disjoint || !(p->status_ptr >= b && p->status_ptr < b + p->iov[i].iov_len));
		(void)((volatile const uint8_t *)b)[0];
		(void)((volatile const uint8_t *)b)[p->iov[i].iov_len - 1];
		sum += p->iov[i].iov_len;
	}

	switch (p->op) {
	case BLK_OP_NONE:
		CHECK(p->status == VIRTIO_BLK_S_OK || p->status == VIRTIO_BLK_S_IOERR || p->status == VIRTIO_BLK_S_UNSUPP);
		CHECK(p->niov == 0 && p->nsegs == 0);
		CHECK(p->status == VIRTIO_BLK_S_OK || p->why);
		break;
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		CHECK(p->len > 0 && p->len % 512 == 0 && p->len <= BLK_MAX_DATA);
		CHECK(p->offset % 512 == 0);
		CHECK(p->offset / 512 <= lim->capacity && p->len / 512 <= lim->capacity - p->offset / 512);
		CHECK(sum == p->len);
		CHECK(p->op == BLK_OP_READ || !lim->readonly);
		CHECK(p->op == BLK_OP_READ ? p->len == c->total_write - 1 : p->len == c->total_read - 16);
		break;
	case BLK_OP_GET_ID:
		CHECK(p->len > 0 && p->len <= VIRTIO_BLK_ID_BYTES && sum == p->len);
		CHECK(blk_iov_fill(p->iov, p->niov, "kiln-fuzz-serial-id!", VIRTIO_BLK_ID_BYTES) == p->len);
		break;
	case BLK_OP_FLUSH:
		CHECK(c->total_write == 1 && c->total_read == 16);
		break;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		CHECK(!lim->readonly);
		CHECK(p->op == BLK_OP_DISCARD ? lim->discard : lim->write_zeroes);
		CHECK(p->nsegs >= 1 && p->nsegs <= BLK_MAX_SEGS);
		CHECK(p->nsegs <= (p->op == BLK_OP_DISCARD ? lim->max_discard_seg : lim->max_write_zeroes_seg));
		for (unsigned i = 0; i < p->nsegs; i++) {
			const struct blk_seg *s = &p->segs[i];
			uint64_t max = p->op == BLK_OP_DISCARD ? lim->max_discard_sectors : lim->max_write_zeroes_sectors;

			CHECK(s->len > 0 && s->len % 512 == 0 && s->offset % 512 == 0);
			CHECK(s->len / 512 <= max);
			CHECK(s->offset / 512 <= lim->capacity && s->len / 512 <= lim->capacity - s->offset / 512);
			CHECK(p->op == BLK_OP_WRITE_ZEROES || !s->unmap);
		}
		break;
	}
}

/* Chain mode: buffers described by the input, readable ones first as vq_pop guarantees. */
static void chain_mode(const uint8_t *data, size_t size, const struct blk_limits *lim, struct vq_chain *c,
		       struct blk_plan *p, uint8_t *arena)
{
	unsigned n = data[19] % 64, used = 0;
	const uint8_t *d = data + HDR;
	size_t left = size - HDR;
	struct { uint32_t len; bool write; } spec[64];

	if (left < 3ull * n)
		return;
	for (unsigned i = 0; i < n; i++) {
		spec[i].len = (uint32_t)(d[3 * i] | d[3 * i + 1] << 8) & 0x3fff;
		spec[i].write = d[3 * i + 2] & 1;
	}
	d += 3 * n;
	left -= 3 * n;
	memset(arena, 0, ARENA);
	memcpy(arena, d, MIN(left, (size_t)ARENA));

	memset(c, 0, offsetof(struct vq_chain, bufs));
	c->head = (uint16_t)(data[19] * 7);
	for (unsigned pass = 0; pass < 2; pass++) {       /* readable, then writable */
		for (unsigned i = 0; i < n; i++) {
			struct vq_buf *b;

			if (spec[i].write != (pass == 1) || spec[i].len == 0 || spec[i].len > ARENA - used)
				continue;  /* vq_pop lists no empty buffers */
			b = &c->bufs[c->nbufs++];
			b->host = arena + used;
			b->len = spec[i].len;
			b->write = spec[i].write;
			used += spec[i].len;
			if (b->write)
				c->total_write += b->len;
			else
				c->total_read += b->len;
		}
		if (pass == 0)
			c->nread = c->nbufs;
	}
	check_plan(c, lim, p, true);
}

/* Ring mode: the input is guest RAM holding a legacy-layout ring; plan every chain vq_pop yields. */
static void ring_mode(const uint8_t *data, size_t size, const struct blk_limits *lim, struct vq_chain *c,
		      struct blk_plan *p, uint8_t *ram)
{
	uint32_t qsize = 1u << (data[19] % 8);
	struct guest_mem m;
	struct vq q;
	gpa_t avail, used;

	memset(ram, 0, GUEST_RAM);
	memcpy(ram, data + HDR, MIN(size - HDR, (size_t)GUEST_RAM));
	memset(&m, 0, sizeof(m));
	m.fd = -1;
	m.total = GUEST_RAM;
	m.nregions = 1;
	m.regions[0] = (struct mem_region){ .gpa = 0, .size = GUEST_RAM, .host = ram };
	avail = VRING_DESC_BYTES(qsize);
	used = ALIGN_UP(avail + VRING_AVAIL_BYTES(qsize), 4);
	memset(&q, 0, sizeof(q));
	if (vq_configure(&q, &m, qsize, 0, avail, used,
			 (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC)))
		return;
	for (unsigned i = 0; i < qsize; i++) {
		if (vq_pop(&q, c) != 0)
			break;
		check_plan(c, lim, p, false);
		if (c->total_write)
			CHECK(vq_push(&q, c->head, blk_used_len(p, VIRTIO_BLK_S_OK)) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blk_limits lim;
	struct vq_chain *c;
	struct blk_plan *p;
	uint8_t *mem;

	if (size < HDR)
		return 0;
	lim = (struct blk_limits){
		.readonly = data[0] & 1,
		.discard = data[0] & 2,
		.write_zeroes = data[0] & 4,
		.max_discard_seg = data[1],
		.max_write_zeroes_seg = data[2],
		.max_discard_sectors = rd32(data + 3),
		.max_write_zeroes_sectors = rd32(data + 7),
		.capacity = (data[0] & 16) ? rd64(data + 11) : (rd64(data + 11) & 0xffff),
	};
	c = malloc(sizeof(*c));
	p = malloc(sizeof(*p));
	mem = malloc(ARENA);
	if (c && p && mem) {
		if (data[0] & 8)
			ring_mode(data, size, &lim, c, p, mem);
		else
			chain_mode(data, size, &lim, c, p, mem);
	}
	free(mem);
	free(p);
	free(c);
	return 0;
}
