/* Unit tests for the virtio-blk request planner: every request type, framing, limits, and hostile layouts. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "virtio/blk_req.h"

#define CAP 2048ull   /* sectors: a 1 MiB disk */
#define ARENA (256 * 1024)

/* A chain built in host memory: the planner only sees host pointers, as vq_pop hands them over. */
struct tc {
	struct vq_chain c;
	struct blk_limits lim;
	struct blk_plan p;
	uint8_t *arena;
	size_t used;
};

static int setup(void **state)
{
	struct tc *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->arena = calloc(1, ARENA);
	assert_non_null(t->arena);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tc *t = *state;

	free(t->arena);
	free(t);
	return 0;
}

static struct tc *fresh(void **state)
{
	struct tc *t = *state;

	memset(&t->c, 0, sizeof(t->c));
	memset(t->arena, 0, ARENA);
	t->used = 0;
	t->lim = (struct blk_limits){
		.capacity = CAP, .discard = true, .write_zeroes = true,
		.max_discard_sectors = 256, .max_discard_seg = 4,
		.max_write_zeroes_sectors = 128, .max_write_zeroes_seg = 2,
	};
	return t;
}

/* Append a buffer of len bytes (copied from data if given) to the chain; readable ones must come first. */
static uint8_t *buf(struct tc *t, bool write, const void *data, uint32_t len)
{
	uint8_t *p = t->arena + t->used;
	struct vq_buf *b = &t->c.bufs[t->c.nbufs++];

	assert_true(t->used + len <= ARENA);
	assert_true(write || t->c.nread == t->c.nbufs - 1);  /* vq_chain's ordering */
	if (data)
		memcpy(p, data, len);
	t->used += len;
	b->host = p;
	b->len = len;
	b->write = write;
	if (write)
		t->c.total_write += len;
	else {
		t->c.nread++;
		t->c.total_read += len;
	}
	return p;
}

/* A buffer whose bytes the planner must never touch (data of a read/write): fake host address, any length. */
static void fake_buf(struct tc *t, bool write, uint32_t len)
{
	struct vq_buf *b = &t->c.bufs[t->c.nbufs++];

	b->host = (void *)(uintptr_t)0x1000;
	b->len = len;
	b->write = write;
	if (write)
		t->c.total_write += len;
	else {
		t->c.nread++;
		t->c.total_read += len;
	}
}

static struct virtio_blk_outhdr hdr(uint32_t type, uint64_t sector)
{
	return (struct virtio_blk_outhdr){ .type = htole32(type), .reserved = htole32(0xdeadbeef),
					   .sector = htole64(sector) };
}

static uint8_t *add_hdr(struct tc *t, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = hdr(type, sector);

	return buf(t, false, &h, sizeof(h));
}

static uint8_t *add_status(struct tc *t)
{
	uint8_t s = 0xee;

	return buf(t, true, &s, 1);
}

static struct virtio_blk_discard_write_zeroes seg(uint64_t sector, uint32_t n, uint32_t flags)
{
	return (struct virtio_blk_discard_write_zeroes){ .sector = htole64(sector), .num_sectors = htole32(n),
							 .flags = htole32(flags) };
}

static void plan_ok(struct tc *t)
{
	assert_int_equal(blk_plan(&t->c, &t->lim, &t->p), 0);
}

/* The plan is "complete at once with status", for the reason given. */
static void expect_status(struct tc *t, uint8_t status)
{
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_NONE);
	assert_int_equal(t->p.status, status);
	assert_int_equal(t->p.niov, 0);
	if (status != VIRTIO_BLK_S_OK)
		assert_non_null(t->p.why);
}

static void test_read(void **state)
{
	struct tc *t = fresh(state);
	uint8_t *data, *st;

	add_hdr(t, VIRTIO_BLK_T_IN, 7);
	data = buf(t, true, NULL, 4096);
	st = add_status(t);
	t->c.head = 42;
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_READ);
	assert_int_equal(t->p.offset, 7 * 512);
	assert_int_equal(t->p.len, 4096);
	assert_int_equal(t->p.niov, 1);
	assert_ptr_equal(t->p.iov[0].iov_base, data);
	assert_int_equal(t->p.iov[0].iov_len, 4096);
	assert_ptr_equal(t->p.status_ptr, st);
	assert_int_equal(t->p.head, 42);
	assert_int_equal(blk_used_len(&t->p, VIRTIO_BLK_S_OK), 4097);
	/* A failed read wrote only the status, which is not at the start: used length 0 (§2.7.8.2). */
	assert_int_equal(blk_used_len(&t->p, VIRTIO_BLK_S_IOERR), 0);
	assert_string_equal(blk_op_str(t->p.op), "read");
}

static void test_write(void **state)
{
	struct tc *t = fresh(state);
	uint8_t *data;

	add_hdr(t, VIRTIO_BLK_T_OUT, CAP - 2);
	data = buf(t, false, NULL, 1024);
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_WRITE);
	assert_int_equal(t->p.offset, (CAP - 2) * 512);
	assert_int_equal(t->p.len, 1024);
	assert_int_equal(t->p.niov, 1);
	assert_ptr_equal(t->p.iov[0].iov_base, data);
	assert_int_equal(blk_used_len(&t->p, VIRTIO_BLK_S_OK), 1);
}

/* §2.6.4: any framing is legal. Header and data share a buffer; data and status share a buffer. */
static void test_framing_shared(void **state)
{
	struct tc *t = fresh(state);
	uint8_t wr[16 + 1024];
	struct virtio_blk_outhdr h = hdr(VIRTIO_BLK_T_OUT, 3);
	uint8_t *b, *rb;

	memcpy(wr, &h, 16);
	b = buf(t, false, wr, sizeof(wr));
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_WRITE);
	assert_int_equal(t->p.niov, 1);
	assert_ptr_equal(t->p.iov[0].iov_base, b + 16);
	assert_int_equal(t->p.iov[0].iov_len, 1024);
	assert_int_equal(t->p.offset, 3 * 512);

	t = fresh(state);
	add_hdr(t, VIRTIO_BLK_T_IN, 0);
	rb = buf(t, true, NULL, 512 + 1);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_READ);
	assert_int_equal(t->p.niov, 1);
	assert_ptr_equal(t->p.iov[0].iov_base, rb);
	assert_int_equal(t->p.iov[0].iov_len, 512);
	assert_ptr_equal(t->p.status_ptr, rb + 512);
	assert_int_equal(blk_used_len(&t->p, VIRTIO_BLK_S_OK), 513);
}

/* The header split 5+7+4 across buffers, the data across odd-sized ones, the status inside the last. */
static void test_framing_split(void **state)
{
	struct tc *t = fresh(state);
	struct virtio_blk_outhdr h = hdr(VIRTIO_BLK_T_OUT, 0x123);
	uint8_t raw[16], d3[3 + 509];
	uint8_t *a, *c;

	memcpy(raw, &h, 16);
	buf(t, false, raw, 5);
	buf(t, false, raw + 5, 7);
	memcpy(d3, raw + 12, 4);
	a = buf(t, false, d3, 4 + 100);       /* last 4 header bytes + 100 data bytes */
	buf(t, false, NULL, 300);
	c = buf(t, false, NULL, 112);        /* 100 + 300 + 112 = 512 */
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_WRITE);
	assert_int_equal(t->p.offset, 0x123 * 512);
	assert_int_equal(t->p.len, 512);
	assert_int_equal(t->p.niov, 3);
	assert_ptr_equal(t->p.iov[0].iov_base, a + 4);
	assert_int_equal(t->p.iov[0].iov_len, 100);
	assert_int_equal(t->p.iov[1].iov_len, 300);
	assert_ptr_equal(t->p.iov[2].iov_base, c);
	assert_int_equal(t->p.iov[2].iov_len, 112);

	/* Reads: data spread over writable buffers, status the last byte of the last one. */
	t = fresh(state);
	add_hdr(t, VIRTIO_BLK_T_IN, 1);
	buf(t, true, NULL, 200);
	buf(t, true, NULL, 300);
	a = buf(t, true, NULL, 13);           /* 12 data bytes + status */
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_READ);
	assert_int_equal(t->p.niov, 3);
	assert_int_equal(t->p.iov[2].iov_len, 12);
	assert_ptr_equal(t->p.status_ptr, a + 12);
}

static void test_no_status(void **state)
{
	struct tc *t = fresh(state);

	/* An empty chain, and one with only readable buffers: nowhere to put a status. */
	assert_int_equal(blk_plan(&t->c, &t->lim, &t->p), -EINVAL);
	add_hdr(t, VIRTIO_BLK_T_IN, 0);
	buf(t, false, NULL, 512);
	assert_int_equal(blk_plan(&t->c, &t->lim, &t->p), -EINVAL);
	/* A lying chain (nread == nbufs but total_write claims bytes) is refused too. */
	t->c.total_write = 1;
	assert_int_equal(blk_plan(&t->c, &t->lim, &t->p), -EINVAL);
	/* Inconsistent: last buffer not writable although nread < nbufs. */
	t = fresh(state);
	add_hdr(t, VIRTIO_BLK_T_IN, 0);
	add_status(t);
	t->c.bufs[1].write = false;
	assert_int_equal(blk_plan(&t->c, &t->lim, &t->p), -EINVAL);
}

static void test_short_header(void **state)
{
	struct tc *t = fresh(state);
	struct virtio_blk_outhdr h = hdr(VIRTIO_BLK_T_IN, 0);
	uint8_t *st;

	buf(t, false, &h, 15);
	st = add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);
	assert_ptr_equal(t->p.status_ptr, st);
	assert_int_equal(blk_used_len(&t->p, t->p.status), 1);

	/* No readable bytes at all, only a status. */
	t = fresh(state);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);
}

static void test_unsupported_types(void **state)
{
	static const uint32_t types[] = { VIRTIO_BLK_T_GET_LIFETIME, VIRTIO_BLK_T_SECURE_ERASE, 5 /* legacy FLUSH_OUT */,
					  2, 3, 15, 16, 0x80000000u /* legacy BARRIER */, 0xffffffffu };

	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct tc *t = fresh(state);

		add_hdr(t, types[i], 0);
		buf(t, true, NULL, 512);
		add_status(t);
		expect_status(t, VIRTIO_BLK_S_UNSUPP);
	}
}

static void test_wrong_direction(void **state)
{
	struct tc *t = fresh(state);

	/* A read that also carries readable data. */
	add_hdr(t, VIRTIO_BLK_T_IN, 0);
	buf(t, false, NULL, 512);
	buf(t, true, NULL, 512);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);

	/* A write with a writable buffer before the status. */
	t = fresh(state);
	add_hdr(t, VIRTIO_BLK_T_OUT, 0);
	buf(t, false, NULL, 512);
	buf(t, true, NULL, 512);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_used_len(&t->p, t->p.status), 0);
}

static void test_sizes(void **state)
{
	static const uint32_t bad[] = { 0, 1, 511, 513, 1000, 4095 };

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tc *t = fresh(state);

		add_hdr(t, VIRTIO_BLK_T_IN, 0);
		if (bad[i])
			buf(t, true, NULL, bad[i]);
		add_status(t);
		expect_status(t, VIRTIO_BLK_S_IOERR);

		t = fresh(state);
		add_hdr(t, VIRTIO_BLK_T_OUT, 0);
		if (bad[i])
			buf(t, false, NULL, bad[i]);
		add_status(t);
		expect_status(t, VIRTIO_BLK_S_IOERR);
	}
}

static void rw_at(void **state, uint32_t type, uint64_t sector, uint32_t len, uint64_t cap, bool ok)
{
	struct tc *t = fresh(state);

	t->lim.capacity = cap;
	add_hdr(t, type, sector);
	fake_buf(t, type == VIRTIO_BLK_T_IN, len);
	add_status(t);
	plan_ok(t);
	if (ok) {
		assert_int_equal(t->p.op, type == VIRTIO_BLK_T_IN ? BLK_OP_READ : BLK_OP_WRITE);
		assert_true(t->p.offset + t->p.len <= cap * 512);
	} else {
		assert_int_equal(t->p.op, BLK_OP_NONE);
		assert_int_equal(t->p.status, VIRTIO_BLK_S_IOERR);
	}
}

/* Range checks at the edges, and sector values that overflow a naive sector*512 or sector+n. */
static void test_capacity(void **state)
{
	for (unsigned w = 0; w < 2; w++) {
		uint32_t type = w ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;

		rw_at(state, type, 0, 512, CAP, true);
		rw_at(state, type, CAP - 1, 512, CAP, true);
		rw_at(state, type, 0, CAP * 512, CAP, true);
		rw_at(state, type, CAP, 512, CAP, false);
		rw_at(state, type, CAP - 1, 1024, CAP, false);
		rw_at(state, type, 1, CAP * 512, CAP, false);
		rw_at(state, type, UINT64_MAX, 512, CAP, false);
		rw_at(state, type, UINT64_MAX - 1, 1024, CAP, false);
		rw_at(state, type, 1ull << 55, 512, CAP, false);
		rw_at(state, type, 1ull << 63, 512, CAP, false);
		/* A zero-sized disk refuses everything. */
		rw_at(state, type, 0, 512, 0, false);
		/* Huge disks: the last sector of a 2^55-sector disk (2^64 bytes) still works. */
		rw_at(state, type, (1ull << 55) - 1, 512, 1ull << 55, true);
	}
}

static void test_max_data(void **state)
{
	struct tc *t = fresh(state);

	t->lim.capacity = 1ull << 40;
	add_hdr(t, VIRTIO_BLK_T_IN, 0);
	fake_buf(t, true, (uint32_t)BLK_MAX_DATA);
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_READ);

	t = fresh(state);
	t->lim.capacity = 1ull << 40;
	add_hdr(t, VIRTIO_BLK_T_IN, 0);
	fake_buf(t, true, (uint32_t)BLK_MAX_DATA);
	fake_buf(t, true, 512);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);

	/* Two 4 GiB - 512 buffers: the byte counts must not wrap 32 bits. */
	t = fresh(state);
	t->lim.capacity = 1ull << 40;
	add_hdr(t, VIRTIO_BLK_T_OUT, 0);
	fake_buf(t, false, 0xfffffe00u);
	fake_buf(t, false, 0xfffffe00u);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);
}

static void test_iov_limit(void **state)
{
	struct tc *t = fresh(state);

	add_hdr(t, VIRTIO_BLK_T_IN, 0);
	for (unsigned i = 0; i < BLK_MAX_IOV; i++)
		fake_buf(t, true, 512);
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_READ);
	assert_int_equal(t->p.niov, BLK_MAX_IOV);
	assert_int_equal(t->p.len, BLK_MAX_IOV * 512);

	t = fresh(state);
	t->lim.capacity = 1ull << 30;
	add_hdr(t, VIRTIO_BLK_T_OUT, 0);
	for (unsigned i = 0; i < BLK_MAX_IOV + 1; i++)
		fake_buf(t, false, 512);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);

	/* 512 one-byte buffers make one legal sector, but more slices than a plan holds. */
	t = fresh(state);
	add_hdr(t, VIRTIO_BLK_T_IN, 0);
	for (unsigned i = 0; i < 512; i++)
		fake_buf(t, true, 1);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);
	assert_non_null(strstr(t->p.why, "seg_max"));
}

static void test_readonly(void **state)
{
	struct tc *t = fresh(state);

	t->lim.readonly = true;
	add_hdr(t, VIRTIO_BLK_T_OUT, 0);
	buf(t, false, NULL, 512);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);

	t = fresh(state);
	t->lim.readonly = true;
	add_hdr(t, VIRTIO_BLK_T_IN, 0);
	buf(t, true, NULL, 512);
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_READ);

	for (uint32_t type = VIRTIO_BLK_T_DISCARD; type <= VIRTIO_BLK_T_WRITE_ZEROES; type += 2) {
		struct virtio_blk_discard_write_zeroes s = seg(0, 8, 0);

		t = fresh(state);
		t->lim.readonly = true;
		add_hdr(t, type, 0);
		buf(t, false, &s, sizeof(s));
		add_status(t);
		expect_status(t, VIRTIO_BLK_S_IOERR);
	}

	t = fresh(state);
	t->lim.readonly = true;
	add_hdr(t, VIRTIO_BLK_T_FLUSH, 0);
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_FLUSH);
}

static void test_flush(void **state)
{
	struct tc *t = fresh(state);

	add_hdr(t, VIRTIO_BLK_T_FLUSH, 12345); /* sector unused (§5.2.6) */
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_FLUSH);
	assert_int_equal(blk_used_len(&t->p, VIRTIO_BLK_S_OK), 1);

	t = fresh(state);
	add_hdr(t, VIRTIO_BLK_T_FLUSH, 0);
	buf(t, false, NULL, 512);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);

	t = fresh(state);
	add_hdr(t, VIRTIO_BLK_T_FLUSH, 0);
	buf(t, true, NULL, 8);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);
}

static void test_get_id(void **state)
{
	static const struct { uint32_t in; uint64_t len; uint32_t used; } cases[] = {
		{ 20, 20, 21 }, { 8, 8, 9 }, { 1, 1, 2 }, { 64, 20, 20 },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tc *t = fresh(state);
		uint8_t *id;
		size_t n;

		add_hdr(t, VIRTIO_BLK_T_GET_ID, 0);
		id = buf(t, true, NULL, cases[i].in);
		add_status(t);
		plan_ok(t);
		assert_int_equal(t->p.op, BLK_OP_GET_ID);
		assert_int_equal(t->p.len, cases[i].len);
		assert_int_equal(blk_used_len(&t->p, VIRTIO_BLK_S_OK), cases[i].used);
		n = blk_iov_fill(t->p.iov, t->p.niov, "0123456789abcdefghijXYZ", VIRTIO_BLK_ID_BYTES);
		assert_int_equal(n, cases[i].len);
		assert_memory_equal(id, "0123456789abcdefghij", cases[i].len);
		if (cases[i].in > 20)
			assert_int_equal(id[20], 0);   /* nothing past 20 bytes */
	}

	/* GET_ID split over two writable buffers. */
	{
		struct tc *t = fresh(state);
		uint8_t *a, *b;

		add_hdr(t, VIRTIO_BLK_T_GET_ID, 0);
		a = buf(t, true, NULL, 7);
		b = buf(t, true, NULL, 14);  /* 13 ID bytes + status */
		plan_ok(t);
		assert_int_equal(t->p.niov, 2);
		blk_iov_fill(t->p.iov, t->p.niov, "0123456789abcdefghij", 20);
		assert_memory_equal(a, "0123456", 7);
		assert_memory_equal(b, "789abcdefghij", 13);
		assert_ptr_equal(t->p.status_ptr, b + 13);
	}

	/* No ID buffer, or readable data: refused. */
	{
		struct tc *t = fresh(state);

		add_hdr(t, VIRTIO_BLK_T_GET_ID, 0);
		add_status(t);
		expect_status(t, VIRTIO_BLK_S_IOERR);
		t = fresh(state);
		add_hdr(t, VIRTIO_BLK_T_GET_ID, 0);
		buf(t, false, NULL, 20);
		buf(t, true, NULL, 20);
		add_status(t);
		expect_status(t, VIRTIO_BLK_S_IOERR);
	}
}

static void test_discard(void **state)
{
	struct tc *t = fresh(state);
	struct virtio_blk_discard_write_zeroes s[3] = { seg(8, 16, 0), seg(100, 256, 0), seg(CAP - 1, 1, 0) };
	uint8_t raw[sizeof(s)];

	add_hdr(t, VIRTIO_BLK_T_DISCARD, 0);
	/* Segments split across buffers at odd offsets. */
	memcpy(raw, s, sizeof(s));
	buf(t, false, raw, 10);
	buf(t, false, raw + 10, 27);
	buf(t, false, raw + 37, sizeof(raw) - 37);
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_DISCARD);
	assert_int_equal(t->p.nsegs, 3);
	assert_int_equal(t->p.segs[0].offset, 8 * 512);
	assert_int_equal(t->p.segs[0].len, 16 * 512);
	assert_int_equal(t->p.segs[1].offset, 100 * 512);
	assert_int_equal(t->p.segs[1].len, 256 * 512);
	assert_int_equal(t->p.segs[2].offset, (CAP - 1) * 512);
	assert_false(t->p.segs[0].unmap);
	assert_int_equal(blk_used_len(&t->p, VIRTIO_BLK_S_OK), 1);
}

static void one_seg(void **state, uint32_t type, struct virtio_blk_discard_write_zeroes s, int status)
{
	struct tc *t = fresh(state);

	add_hdr(t, type, 0);
	buf(t, false, &s, sizeof(s));
	add_status(t);
	if (status < 0) {
		plan_ok(t);
		assert_int_not_equal(t->p.op, BLK_OP_NONE);
	} else {
		expect_status(t, (uint8_t)status);
	}
}

static void test_segment_checks(void **state)
{
	const uint32_t D = VIRTIO_BLK_T_DISCARD, W = VIRTIO_BLK_T_WRITE_ZEROES;

	/* §5.2.6.2: unmap on a discard, or unknown flags, are UNSUPP. */
	one_seg(state, D, seg(0, 8, VIRTIO_BLK_WZ_F_UNMAP), VIRTIO_BLK_S_UNSUPP);
	one_seg(state, D, seg(0, 8, 2), VIRTIO_BLK_S_UNSUPP);
	one_seg(state, W, seg(0, 8, 0x80000000u), VIRTIO_BLK_S_UNSUPP);
	one_seg(state, W, seg(0, 8, VIRTIO_BLK_WZ_F_UNMAP), -1);
	/* Sizes against max_*_sectors (discard 256, write zeroes 128). */
	one_seg(state, D, seg(0, 256, 0), -1);
	one_seg(state, D, seg(0, 257, 0), VIRTIO_BLK_S_IOERR);
	one_seg(state, W, seg(0, 128, 0), -1);
	one_seg(state, W, seg(0, 129, 0), VIRTIO_BLK_S_IOERR);
	one_seg(state, W, seg(0, 0xffffffffu, 0), VIRTIO_BLK_S_IOERR);
	/* Range, with overflowing sectors. */
	one_seg(state, D, seg(CAP - 8, 8, 0), -1);
	one_seg(state, D, seg(CAP - 7, 8, 0), VIRTIO_BLK_S_IOERR);
	one_seg(state, D, seg(CAP, 0, 0), VIRTIO_BLK_S_OK);          /* empty at the very end: nothing to do */
	one_seg(state, D, seg(CAP + 1, 0, 0), VIRTIO_BLK_S_IOERR);
	one_seg(state, W, seg(UINT64_MAX, 1, 0), VIRTIO_BLK_S_IOERR);
	one_seg(state, W, seg(UINT64_MAX - 3, 8, 0), VIRTIO_BLK_S_IOERR);
	one_seg(state, W, seg(1ull << 55, 1, 0), VIRTIO_BLK_S_IOERR);
	/* Zero-length segments are dropped; a request of only those completes OK at once. */
	one_seg(state, W, seg(0, 0, 0), VIRTIO_BLK_S_OK);
}

static void test_segment_layouts(void **state)
{
	struct virtio_blk_discard_write_zeroes s[5];
	struct tc *t;

	for (unsigned i = 0; i < 5; i++)
		s[i] = seg(i * 8, 8, VIRTIO_BLK_WZ_F_UNMAP);

	/* Write zeroes: max 2 segments. */
	t = fresh(state);
	add_hdr(t, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	buf(t, false, s, 2 * sizeof(s[0]));
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.op, BLK_OP_WRITE_ZEROES);
	assert_int_equal(t->p.nsegs, 2);
	assert_true(t->p.segs[1].unmap);

	t = fresh(state);
	add_hdr(t, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	buf(t, false, s, 3 * sizeof(s[0]));
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);

	/* A zero-length segment between two real ones is dropped. */
	t = fresh(state);
	s[1] = seg(77, 0, 0);
	add_hdr(t, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	buf(t, false, s, 2 * sizeof(s[0]));
	add_status(t);
	plan_ok(t);
	assert_int_equal(t->p.nsegs, 1);

	/* Limits above BLK_MAX_SEGS are clamped to what the plan holds. */
	t = fresh(state);
	t->lim.max_discard_seg = 1000;
	add_hdr(t, VIRTIO_BLK_T_DISCARD, 0);
	for (unsigned i = 0; i < BLK_MAX_SEGS + 1; i++) {
		struct virtio_blk_discard_write_zeroes one = seg(0, 1, 0);
		buf(t, false, &one, sizeof(one));
	}
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);

	/* List length not a multiple of 16, or empty. */
	static const uint32_t lens[] = { 0, 8, 15, 17, 31 };
	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		t = fresh(state);
		add_hdr(t, VIRTIO_BLK_T_DISCARD, 0);
		if (lens[i])
			buf(t, false, NULL, lens[i]);
		add_status(t);
		expect_status(t, VIRTIO_BLK_S_IOERR);
	}

	/* Writable data in a discard. */
	t = fresh(state);
	add_hdr(t, VIRTIO_BLK_T_DISCARD, 0);
	buf(t, false, &s[0], sizeof(s[0]));
	buf(t, true, NULL, 16);
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_IOERR);
}

static void test_segment_features(void **state)
{
	struct tc *t = fresh(state);
	struct virtio_blk_discard_write_zeroes s = seg(0, 8, 0);

	t->lim.discard = false;
	add_hdr(t, VIRTIO_BLK_T_DISCARD, 0);
	buf(t, false, &s, sizeof(s));
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_UNSUPP);

	t = fresh(state);
	t->lim.write_zeroes = false;
	add_hdr(t, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	buf(t, false, &s, sizeof(s));
	add_status(t);
	expect_status(t, VIRTIO_BLK_S_UNSUPP);
}

/* The planner copies the header once: changing guest memory afterwards cannot change the plan. */
static void test_header_read_once(void **state)
{
	struct tc *t = fresh(state);
	uint8_t *h;

	h = add_hdr(t, VIRTIO_BLK_T_IN, 5);
	buf(t, true, NULL, 512);
	add_status(t);
	plan_ok(t);
	memset(h, 0xff, 16);
	assert_int_equal(t->p.op, BLK_OP_READ);
	assert_int_equal(t->p.offset, 5 * 512);
}

static void test_iov_helpers(void **state)
{
	uint8_t a[4], b[6], c[3];
	struct iovec v[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	struct iovec *cur = v;
	unsigned n = 3;

	assert_int_equal(blk_iov_fill(v, 3, "abcdefghijklmnop", 13), 13);
	assert_memory_equal(a, "abcd", 4);
	assert_memory_equal(b, "efghij", 6);
	assert_memory_equal(c, "klm", 3);
	assert_int_equal(blk_iov_fill(v, 3, "0123456789", 5), 5);
	assert_memory_equal(b, "4fghij", 6);

	blk_iov_advance(&cur, &n, 0);
	assert_ptr_equal(cur, v);
	assert_int_equal(n, 3);
	blk_iov_advance(&cur, &n, 6);       /* all of a, 2 bytes of b */
	assert_int_equal(n, 2);
	assert_ptr_equal(cur, &v[1]);
	assert_ptr_equal(cur->iov_base, b + 2);
	assert_int_equal(cur->iov_len, 4);
	blk_iov_advance(&cur, &n, 4);       /* exactly the rest of b */
	assert_int_equal(n, 1);
	assert_ptr_equal(cur->iov_base, c);
	blk_iov_advance(&cur, &n, 100);     /* past the end: empty, no overrun */
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framing_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framing_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_direction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capacity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iov_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_layouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_read_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iov_helpers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
