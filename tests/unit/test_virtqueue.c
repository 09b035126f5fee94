/* Unit tests for the split virtqueue: configure checks, chain walks, used ring, notification arithmetic, every hostile ring. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "core/memory.h"
#include "virtio/virtqueue.h"

#define RAM       (16 * MiB)
#define DESC_GPA  0x10000ULL    /* room for 32768 descriptors (512 KiB) */
#define AVAIL_GPA 0x100000ULL   /* 64 KiB + 6 */
#define USED_GPA  0x200000ULL   /* 256 KiB + 6 */
#define TABLE_GPA 0x300000ULL   /* indirect tables */
#define BUF_GPA   0x400000ULL   /* buffers */

#define F_EVENT    (1ull << VIRTIO_RING_F_EVENT_IDX)
#define F_INDIRECT (1ull << VIRTIO_RING_F_INDIRECT_DESC)
#define F_V1       (1ull << VIRTIO_F_VERSION_1)

struct fx {
	struct guest_mem m;
	struct vq q;
	struct vq_chain c;
	uint16_t avail_idx;     /* the fake driver's avail->idx */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(mem_init(&f->m, RAM, MEM_BACKING_MEMFD), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	mem_destroy(&f->m);
	free(f);
	return 0;
}

static void *gp(struct fx *f, gpa_t gpa, uint64_t len)
{
	void *p = mem_gpa(&f->m, gpa, len);

	assert_non_null(p);
	return p;
}

/* Write one descriptor, little-endian, at table[i]. */
static void put_desc(struct fx *f, gpa_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct vring_desc d = {
		.addr = htole64(addr), .len = htole32(len), .flags = htole16(flags), .next = htole16(next),
	};

	memcpy(gp(f, table + 16ull * i, 16), &d, 16);
}

static void desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put_desc(f, DESC_GPA, i, addr, len, flags, next);
}

static void set_avail_idx(struct fx *f, uint16_t idx)
{
	uint16_t v = htole16(idx);

	memcpy(gp(f, AVAIL_GPA + 2, 2), &v, 2);
}

/* The fake driver makes chain `head` available (§2.7.13). */
static void offer(struct fx *f, uint16_t head)
{
	uint16_t v = htole16(head);

	memcpy(gp(f, AVAIL_GPA + 4 + 2ull * (f->avail_idx & (f->q.size - 1)), 2), &v, 2);
	set_avail_idx(f, ++f->avail_idx);
}

static uint16_t rd16(struct fx *f, gpa_t gpa)
{
	uint16_t v;

	memcpy(&v, gp(f, gpa, 2), 2);
	return le16toh(v);
}

static uint32_t rd32(struct fx *f, gpa_t gpa)
{
	uint32_t v;

	memcpy(&v, gp(f, gpa, 4), 4);
	return le32toh(v);
}

static void wr16(struct fx *f, gpa_t gpa, uint16_t val)
{
	uint16_t v = htole16(val);

	memcpy(gp(f, gpa, 2), &v, 2);
}

static void config(struct fx *f, uint32_t size, uint64_t features)
{
	memset(gp(f, 0, RAM), 0, RAM);
	f->avail_idx = 0;
	assert_int_equal(vq_configure(&f->q, &f->m, size, DESC_GPA, AVAIL_GPA, USED_GPA, features), 0);
	assert_true(f->q.ready);
	assert_int_equal(f->q.size, size);
}

/* A hostile ring: pop fails with -EIO for the expected reason, and keeps failing. */
static void expect_fault(struct fx *f, enum vq_fault why)
{
	uint16_t last_avail = f->q.last_avail;

	assert_int_equal(vq_pop(&f->q, &f->c), -EIO);
	assert_true(f->q.needs_reset);
	assert_int_equal(f->q.fault, why);
	assert_string_not_equal(vq_fault_str(why), "unknown fault");
	/* Even a well-formed chain offered afterwards is refused until a reset. */
	desc(f, 0, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->c), -EIO);
	assert_int_equal(vq_push(&f->q, 0, 0), -EIO);
	assert_int_equal(f->q.fault, why);   /* the first reason sticks */
	assert_int_equal(f->q.stats.faults, 1); /* counted once per hostile ring (config() zeroes stats) */
	assert_int_equal(f->q.last_avail, last_avail);
}

/* ---- configure ---- */

static void test_configure_sizes(void **state)
{
	struct fx *f = *state;
	static const uint32_t bad[] = { 0, 3, 6, 100, 32769, 49152, 65535, 65536, 1u << 20 };

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(vq_configure(&f->q, &f->m, bad[i], DESC_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	assert_false(f->q.ready);
	for (uint32_t s = 1; s <= VIRTQ_MAX_SIZE; s <<= 1) {
		assert_int_equal(vq_configure(&f->q, &f->m, s, DESC_GPA, AVAIL_GPA, USED_GPA, 0), 0);
		assert_int_equal(f->q.size, s);
	}
	assert_int_equal(f->q.size, 32768);
	assert_int_equal(vq_configure(&f->q, NULL, 8, DESC_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
}

static void test_configure_areas(void **state)
{
	struct fx *f = *state;
	struct vq before;

	config(f, 256, F_EVENT);
	before = f->q;
	/* §2.7 alignment: desc 16, avail 2, used 4. */
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA + 8, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA + 1, USED_GPA, 0), -EINVAL);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA, USED_GPA + 2, 0), -EINVAL);
	/* Smaller alignments are enough. */
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA + 16, AVAIL_GPA + 2, USED_GPA + 4, 0), 0);
	f->q = before;
	/* Each area must be RAM over its whole length (16*256, 6+2*256, 6+8*256). */
	assert_int_equal(vq_configure(&f->q, &f->m, 256, RAM - 16 * 256, AVAIL_GPA, USED_GPA, 0), 0);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, RAM - 16 * 255, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, RAM - (6 + 2 * 256), USED_GPA, 0), 0);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, RAM - (4 + 2 * 256), USED_GPA, 0), -EINVAL);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA, RAM - (8 + 8 * 256), 0), 0);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA, RAM - (4 + 8 * 256), 0), -EINVAL);
	f->q = before;
	/* §2.7: the device's used ring may not overlap the driver's areas (the driver's two may). */
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA, AVAIL_GPA + 4, 0), -EINVAL);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA, AVAIL_GPA - 8 * 256 - 4, 0), -EINVAL);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA, DESC_GPA + 16 * 255, 0), -EINVAL);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA, DESC_GPA - 8 * 256 - 4, 0), -EINVAL);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA, DESC_GPA - 8 * 256 - 8, 0), 0);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA, AVAIL_GPA + 6 + 2 * 256 + 2, 0), 0);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, DESC_GPA + 16, USED_GPA, 0), 0);
	f->q = before;
	assert_int_equal(vq_configure(&f->q, &f->m, 256, RAM, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, MEM_HOLE_START, USED_GPA, 0), -EINVAL);
	assert_int_equal(vq_configure(&f->q, &f->m, 256, DESC_GPA, AVAIL_GPA, UINT64_MAX - 3, 0), -EINVAL);
	/* A failed configure leaves the queue as it was. */
	assert_memory_equal(&f->q, &before, sizeof(before));
	/* Guest alignment is not enough if the host mapping is misaligned (a fake guest_mem). */
	{
		struct guest_mem odd = f->m;

		odd.regions[0].host = f->m.base + 1;
		assert_int_equal(vq_configure(&f->q, &odd, 256, DESC_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
		odd.regions[0].host = f->m.base + 2;
		assert_int_equal(vq_configure(&f->q, &odd, 256, DESC_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
		odd.regions[0].host = f->m.base + 4;
		assert_int_equal(vq_configure(&f->q, &odd, 256, DESC_GPA, AVAIL_GPA, USED_GPA, 0), 0);
		/* Only the available ring misaligned: it sits in a second, oddly mapped region. */
		odd.regions[0] = (struct mem_region){ .gpa = 0, .size = RAM / 2, .host = f->m.base };
		odd.regions[1] = (struct mem_region){ .gpa = MEM_HIGH_START, .size = RAM / 4,
						      .host = f->m.base + RAM / 2 + 1 };
		odd.nregions = 2;
		assert_int_equal(vq_configure(&f->q, &odd, 256, DESC_GPA, MEM_HIGH_START, USED_GPA, 0), -EINVAL);
		/* ... and the other way round: host aligned, guest address odd: §2.7 still says no. */
		assert_int_equal(vq_configure(&f->q, &odd, 256, DESC_GPA, MEM_HIGH_START + 1, USED_GPA, 0), -EINVAL);
		odd.regions[1].host = f->m.base + RAM / 2 + 2;
		assert_int_equal(vq_configure(&f->q, &odd, 256, DESC_GPA, AVAIL_GPA, MEM_HIGH_START + 2, 0), -EINVAL);
		assert_int_equal(vq_configure(&f->q, &odd, 256, DESC_GPA, AVAIL_GPA, MEM_HIGH_START, 0), -EINVAL);
		odd.regions[1].host = f->m.base + RAM / 2;
		assert_int_equal(vq_configure(&f->q, &odd, 256, DESC_GPA, MEM_HIGH_START, USED_GPA, 0), 0);
		f->q = before;
	}
	assert_memory_equal(&f->q, &before, sizeof(before));
	assert_true(f->q.event_idx);
	assert_false(f->q.indirect);
	vq_reset(&f->q);
	assert_false(f->q.ready);
	assert_int_equal(vq_pop(&f->q, &f->c), -EINVAL);
	assert_int_equal(vq_push(&f->q, 0, 0), -EINVAL);
	assert_false(vq_should_notify(&f->q));
	assert_false(vq_enable_notify(&f->q));
}

/* ---- well-formed chains ---- */

static void test_single_descriptor(void **state)
{
	struct fx *f = *state;

	config(f, 8, F_V1);
	assert_int_equal(vq_pop(&f->q, &f->c), -EAGAIN);
	desc(f, 5, BUF_GPA, 100, 0, 0);
	offer(f, 5);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.head, 5);
	assert_int_equal(f->c.nbufs, 1);
	assert_int_equal(f->c.nread, 1);
	assert_ptr_equal(f->c.bufs[0].host, f->m.base + BUF_GPA);
	assert_int_equal(f->c.bufs[0].len, 100);
	assert_false(f->c.bufs[0].write);
	assert_int_equal(f->c.total_read, 100);
	assert_int_equal(f->c.total_write, 0);
	assert_int_equal(f->q.last_avail, 1);
	assert_int_equal(f->q.stats.chains, 1);
	assert_int_equal(vq_pop(&f->q, &f->c), -EAGAIN);
	assert_false(f->q.needs_reset);
}

static void test_many_descriptors_mixed(void **state)
{
	struct fx *f = *state;
	/* Out-of-order indices: 3 -> 0 -> 7 -> 2 -> 6, three readable then two writable. */
	static const uint16_t order[] = { 3, 0, 7, 2, 6 };

	config(f, 8, 0);
	for (unsigned i = 0; i < ARRAY_SIZE(order); i++) {
		bool last = i + 1 == ARRAY_SIZE(order);
		uint16_t flags = (last ? 0 : VIRTQ_DESC_F_NEXT) | (i >= 3 ? VIRTQ_DESC_F_WRITE : 0);

		desc(f, order[i], BUF_GPA + 0x1000 * i, 10 + i, flags, last ? 0 : order[i + 1]);
	}
	offer(f, 3);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.head, 3);
	assert_int_equal(f->c.nbufs, 5);
	assert_int_equal(f->c.nread, 3);
	for (unsigned i = 0; i < 5; i++) {
		assert_ptr_equal(f->c.bufs[i].host, f->m.base + BUF_GPA + 0x1000 * i);
		assert_int_equal(f->c.bufs[i].len, 10 + i);
		assert_int_equal(f->c.bufs[i].write, i >= 3);
	}
	assert_int_equal(f->c.total_read, 10 + 11 + 12);
	assert_int_equal(f->c.total_write, 13 + 14);
	/* Write-only chains are fine too (an RX buffer). */
	desc(f, 1, BUF_GPA, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 4);
	desc(f, 4, BUF_GPA + 64, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 1);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.nread, 0);
	assert_int_equal(f->c.nbufs, 2);
	assert_int_equal(f->c.total_write, 128);
}

/* The longest legal direct chain touches every descriptor once: size steps is not a loop. */
static void test_full_length_chain(void **state)
{
	struct fx *f = *state;

	config(f, 16, 0);
	for (unsigned i = 0; i < 16; i++)
		desc(f, i, BUF_GPA + i, 1, i < 15 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.nbufs, 16);
	/* ... and VQ_MAX_BUFS buffers on a bigger queue is still accepted. */
	config(f, 2048, 0);
	for (unsigned i = 0; i < VQ_MAX_BUFS; i++)
		desc(f, i, BUF_GPA, 1, i + 1 < VQ_MAX_BUFS ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.nbufs, VQ_MAX_BUFS);
}

/* A full ring (avail_idx - last_avail == size) is legal; one more is not. */
static void test_full_ring(void **state)
{
	struct fx *f = *state;

	config(f, 4, 0);
	for (unsigned i = 0; i < 4; i++) {
		desc(f, i, BUF_GPA, 8, 0, 0);
		offer(f, (uint16_t)i);
	}
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(vq_pop(&f->q, &f->c), 0);
		assert_int_equal(f->c.head, i);
	}
	assert_int_equal(vq_pop(&f->q, &f->c), -EAGAIN);
}

/* Zero-length descriptors are legal, carry nothing, and their address is never used. */
static void test_zero_length(void **state)
{
	struct fx *f = *state;

	config(f, 8, 0);
	desc(f, 0, UINT64_MAX, 0, VIRTQ_DESC_F_NEXT, 1);     /* would fault if it were checked */
	desc(f, 1, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	desc(f, 2, RAM, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	desc(f, 3, BUF_GPA + 16, 4, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.nbufs, 2);
	assert_int_equal(f->c.nread, 1);
	assert_int_equal(f->c.bufs[0].len, 16);
	assert_int_equal(f->c.bufs[1].len, 4);
	assert_true(f->c.bufs[1].write);
	/* A chain of only a zero-length descriptor is a chain with no buffers. */
	desc(f, 4, 0, 0, 0, 0);
	offer(f, 4);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.nbufs, 0);
	assert_int_equal(f->c.total_read + f->c.total_write, 0);
	/* Zero length still obeys the readable-before-writable rule. */
	desc(f, 5, BUF_GPA, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 6);
	desc(f, 6, BUF_GPA, 0, 0, 0);
	offer(f, 5);
	expect_fault(f, VQ_FAULT_READ_AFTER_WRITE);
}

static void test_indirect(void **state)
{
	struct fx *f = *state;

	config(f, 8, F_INDIRECT);
	/* Table chained 0 -> 2 -> 1: two readable, one writable. */
	put_desc(f, TABLE_GPA, 0, BUF_GPA, 12, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, TABLE_GPA, 2, BUF_GPA + 0x100, 1000, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, TABLE_GPA, 1, BUF_GPA + 0x1000, 1, VIRTQ_DESC_F_WRITE, 0);
	/* WRITE on the referring descriptor is ignored (§2.7.5.3.2). */
	desc(f, 6, TABLE_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	offer(f, 6);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.head, 6);
	assert_int_equal(f->c.nbufs, 3);
	assert_int_equal(f->c.nread, 2);
	assert_ptr_equal(f->c.bufs[1].host, f->m.base + BUF_GPA + 0x100);
	assert_int_equal(f->c.total_read, 1012);
	assert_int_equal(f->c.total_write, 1);
	assert_true(f->c.bufs[2].write);

	/* Direct descriptors followed by one indirect (§2.7.5.3.2: MUST handle). */
	desc(f, 0, BUF_GPA + 0x2000, 7, VIRTQ_DESC_F_NEXT, 1);
	desc(f, 1, TABLE_GPA + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(f, TABLE_GPA + 0x100, 0, BUF_GPA + 0x3000, 9, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.nbufs, 2);
	assert_int_equal(f->c.nread, 1);
	assert_int_equal(f->c.total_write, 9);

	/* An unaligned table (the spec puts it "anywhere in memory") with the largest entry count. */
	for (unsigned i = 0; i < VQ_MAX_INDIRECT; i++)
		put_desc(f, TABLE_GPA + 0x1003, i, BUF_GPA, 1, i + 1 < VQ_MAX_INDIRECT ? VIRTQ_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	desc(f, 2, TABLE_GPA + 0x1003, VQ_MAX_INDIRECT * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 2);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.nbufs, VQ_MAX_INDIRECT);
	assert_false(f->q.needs_reset);
}

/* The chain is a copy: the guest rewriting descriptors after pop changes nothing the device uses. */
static void test_read_once(void **state)
{
	struct fx *f = *state;

	config(f, 8, 0);
	desc(f, 0, BUF_GPA, 32, VIRTQ_DESC_F_NEXT, 1);
	desc(f, 1, BUF_GPA + 32, 8, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	desc(f, 0, UINT64_MAX - 7, 0xffffffff, VIRTQ_DESC_F_NEXT, 0);   /* hostile rewrite */
	desc(f, 1, 0, 0xffffffff, VIRTQ_DESC_F_NEXT, 1);
	assert_int_equal(f->c.bufs[0].len, 32);
	assert_ptr_equal(f->c.bufs[0].host, f->m.base + BUF_GPA);
	assert_int_equal(f->c.total_write, 8);
	/* The device's indices live in host memory: rewinding avail->idx is seen as hostile, not obeyed. */
	set_avail_idx(f, 0);
	assert_int_equal(f->q.last_avail, 1);
	expect_fault(f, VQ_FAULT_AVAIL_JUMP);
}

/*
 * avail->idx is read once per batch (the shadow index): slots the driver
 * published stay published, new ones are seen once those are taken, and a
 * rewind is still caught when the device next reads the index.
 */
static void test_shadow_avail(void **state)
{
	struct fx *f = *state;

	config(f, 8, 0);
	for (unsigned i = 0; i < 3; i++) {
		desc(f, i, BUF_GPA + 16 * i, 8, 0, 0);
		offer(f, (uint16_t)i);
	}
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.head, 0);
	/* Taken back (a reservation the device did not use): the same chain comes again, from the shadow. */
	vq_unpop(&f->q, 1);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.head, 0);
	/* A slot offered now is seen after the batch already read. */
	desc(f, 3, BUF_GPA + 48, 8, 0, 0);
	offer(f, 3);
	for (unsigned want = 1; want < 4; want++) {
		assert_int_equal(vq_pop(&f->q, &f->c), 0);
		assert_int_equal(f->c.head, want);
	}
	assert_int_equal(vq_pop(&f->q, &f->c), -EAGAIN);
	/* Two more, then the driver rewinds idx: the published one still goes, the rewind faults at the next read. */
	desc(f, 4, BUF_GPA + 64, 8, 0, 0);
	offer(f, 4);
	desc(f, 5, BUF_GPA + 80, 8, 0, 0);
	offer(f, 5);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.head, 4);
	set_avail_idx(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.head, 5);
	expect_fault(f, VQ_FAULT_AVAIL_JUMP);
}

/* ---- used ring ---- */

static void test_push_used_ring(void **state)
{
	struct fx *f = *state;

	config(f, 4, 0);
	desc(f, 2, BUF_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	desc(f, 3, BUF_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	assert_int_equal(vq_push(&f->q, 2, 8), -EINVAL);     /* nothing in flight */
	offer(f, 2);
	offer(f, 3);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(vq_push(&f->q, 4, 8), -EINVAL);     /* head >= size */
	/* Out-of-order completion is allowed. */
	assert_int_equal(vq_push(&f->q, 3, 5), 0);
	assert_int_equal(rd16(f, USED_GPA + 2), 1);
	assert_int_equal(rd32(f, USED_GPA + 4), 3);
	assert_int_equal(rd32(f, USED_GPA + 8), 5);
	assert_int_equal(vq_push(&f->q, 2, 0), 0);
	assert_int_equal(rd16(f, USED_GPA + 2), 2);
	assert_int_equal(rd32(f, USED_GPA + 12), 2);
	assert_int_equal(rd32(f, USED_GPA + 16), 0);
	assert_int_equal(vq_push(&f->q, 2, 0), -EINVAL);     /* more pushes than pops */
	assert_int_equal(f->q.stats.pushed, 2);
	assert_int_equal(rd16(f, USED_GPA), 0);              /* flags untouched */
}

/* Both free-running indices wrap at 65536 (§2.7.13.3) and ring slots follow idx % size. */
static void test_index_wrap(void **state)
{
	struct fx *f = *state;

	config(f, 4, 0);
	for (unsigned i = 0; i < 4; i++)
		desc(f, i, BUF_GPA + 64 * i, 64, VIRTQ_DESC_F_WRITE, 0);
	for (uint32_t n = 0; n < 65536 + 6; n++) {
		uint16_t head = (uint16_t)((n * 3) & 3);

		offer(f, head);
		assert_int_equal(vq_pop(&f->q, &f->c), 0);
		assert_int_equal(f->c.head, head);
		assert_int_equal(vq_push(&f->q, head, n & 63), 0);
		if (n > 65530) {
			uint16_t idx = (uint16_t)(n + 1);
			gpa_t slot = USED_GPA + 4 + 8ull * (n & 3);

			assert_int_equal(rd16(f, USED_GPA + 2), idx);
			assert_int_equal(rd32(f, slot), head);
			assert_int_equal(rd32(f, slot + 4), n & 63);
		}
	}
	assert_int_equal(f->q.last_avail, 6);
	assert_int_equal(f->q.used_idx, 6);
	assert_int_equal(vq_pop(&f->q, &f->c), -EAGAIN);
	assert_false(f->q.needs_reset);
}

/* ---- notifications ---- */

static void test_need_event_arithmetic(void **state)
{
	(void)state;
	/* used_event 0: notify after the first buffer (§2.7.7.2 note). */
	assert_true(vq_need_event(0, 1, 0));
	assert_false(vq_need_event(1, 1, 0));
	assert_false(vq_need_event(5, 5, 5));   /* nothing new */
	/* Batch 10 -> 20 passes 10..19 but not 20. */
	assert_true(vq_need_event(10, 20, 10));
	assert_true(vq_need_event(19, 20, 10));
	assert_false(vq_need_event(20, 20, 10));
	assert_false(vq_need_event(9, 20, 10));  /* already passed before old */
	/* Across the wrap: old 65534, new 2 wrote entries 65534, 65535, 0, 1. */
	assert_true(vq_need_event(65534, 2, 65534));
	assert_true(vq_need_event(65535, 2, 65534));
	assert_true(vq_need_event(0, 2, 65534));
	assert_true(vq_need_event(1, 2, 65534));
	assert_false(vq_need_event(2, 2, 65534));
	assert_false(vq_need_event(65533, 2, 65534));
	assert_true(vq_need_event(65535, 0, 65535));
	assert_false(vq_need_event(0, 0, 65535));
	/* A full lap minus one still counts every entry in between. */
	assert_true(vq_need_event(12345, 65535, 0));
}

/* Put the device and the fake driver at index `at` without 65536 round trips. */
static void fast_forward(struct fx *f, uint16_t at)
{
	f->q.last_avail = f->q.used_idx = f->q.signalled_used = at;
	f->avail_idx = at;
	set_avail_idx(f, at);
	wr16(f, USED_GPA + 2, at);
}

static void pop_push(struct fx *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		offer(f, 0);
		assert_int_equal(vq_pop(&f->q, &f->c), 0);
		assert_int_equal(vq_push(&f->q, 0, 0), 0);
	}
}

static void test_notify_event_idx(void **state)
{
	struct fx *f = *state;
	const gpa_t used_event = AVAIL_GPA + VRING_USED_EVENT_OFF(8);

	config(f, 8, F_EVENT);
	desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	assert_false(vq_should_notify(&f->q));   /* nothing pushed */
	/* used_event 0: the first push notifies, the next ones do not. */
	pop_push(f, 1);
	assert_true(vq_should_notify(&f->q));
	pop_push(f, 1);
	assert_false(vq_should_notify(&f->q));
	/* NO_INTERRUPT in flags is ignored under EVENT_IDX; used_event 3 fires when idx goes 2 -> 4. */
	wr16(f, AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
	wr16(f, used_event, 3);
	pop_push(f, 1);
	assert_false(vq_should_notify(&f->q));   /* idx 3: entry 2 written */
	pop_push(f, 1);
	assert_true(vq_should_notify(&f->q));    /* idx 4: entry 3 written */
	assert_int_equal(f->q.stats.notify_sent, 2);
	assert_int_equal(f->q.stats.notify_suppressed, 2);

	/* Across the 16-bit wrap: signalled at 65534, used_event 65535, batch of 3 ends at 1. */
	fast_forward(f, 65534);
	wr16(f, used_event, 65535);
	pop_push(f, 3);
	assert_int_equal(f->q.used_idx, 1);
	assert_int_equal(rd16(f, USED_GPA + 2), 1);
	assert_true(vq_should_notify(&f->q));
	wr16(f, used_event, 0);
	fast_forward(f, 65535);
	pop_push(f, 1);                          /* 65535 -> 0: entry 65535 written, not 0 */
	assert_false(vq_should_notify(&f->q));
	pop_push(f, 1);                          /* 0 -> 1: entry 0 written */
	assert_true(vq_should_notify(&f->q));
}

static void test_notify_flags(void **state)
{
	struct fx *f = *state;

	config(f, 8, 0);
	desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	wr16(f, AVAIL_GPA + VRING_USED_EVENT_OFF(8), 100);   /* ignored without EVENT_IDX */
	pop_push(f, 1);
	assert_true(vq_should_notify(&f->q));
	pop_push(f, 1);
	assert_true(vq_should_notify(&f->q));
	wr16(f, AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
	pop_push(f, 2);
	assert_false(vq_should_notify(&f->q));
	assert_int_equal(f->q.stats.notify_suppressed, 1);
	wr16(f, AVAIL_GPA, 0);
	assert_false(vq_should_notify(&f->q));   /* nothing new since the last decision */
	pop_push(f, 1);
	assert_true(vq_should_notify(&f->q));
}

static void test_device_side_suppression(void **state)
{
	struct fx *f = *state;
	const gpa_t avail_event = USED_GPA + VRING_AVAIL_EVENT_OFF(8);

	/* Without EVENT_IDX: used->flags NO_NOTIFY while polling; avail_event never written. */
	config(f, 8, 0);
	wr16(f, avail_event, 0xabcd);
	vq_disable_notify(&f->q);
	assert_int_equal(rd16(f, USED_GPA), VIRTQ_USED_F_NO_NOTIFY);
	assert_false(vq_enable_notify(&f->q));
	assert_int_equal(rd16(f, USED_GPA), 0);
	desc(f, 0, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	assert_true(vq_enable_notify(&f->q));    /* work arrived: poll again */
	vq_set_avail_event(&f->q, 7);
	assert_int_equal(rd16(f, avail_event), 0xabcd);

	/* With EVENT_IDX: flags stay 0 (§2.7.10.2), avail_event tracks last_avail. */
	config(f, 8, F_EVENT);
	desc(f, 0, BUF_GPA, 8, 0, 0);
	vq_disable_notify(&f->q);
	assert_int_equal(rd16(f, USED_GPA), 0);
	/* Suppressed: avail_event one behind last_avail, which no avail->idx move short of 65535 passes. */
	assert_int_equal(rd16(f, avail_event), 0xffff);
	assert_false(vq_need_event(rd16(f, avail_event), 1, 0));
	assert_false(vq_avail_pending(&f->q));
	offer(f, 0);
	offer(f, 0);
	assert_true(vq_avail_pending(&f->q));
	assert_true(vq_enable_notify(&f->q));
	assert_int_equal(rd16(f, avail_event), 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_false(vq_enable_notify(&f->q));
	assert_int_equal(rd16(f, avail_event), 2);
	vq_set_avail_event(&f->q, 65535);
	assert_int_equal(rd16(f, avail_event), 65535);
	assert_int_equal(rd16(f, USED_GPA), 0);
}

/* ---- hostile rings ---- */

static void test_hostile_loop(void **state)
{
	struct fx *f = *state;

	config(f, 8, 0);
	desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	desc(f, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);        /* next points back */
	offer(f, 0);
	expect_fault(f, VQ_FAULT_LOOP);
	/* A self loop, and one made only of zero-length descriptors (they still count). */
	config(f, 8, 0);
	desc(f, 3, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 3);
	offer(f, 3);
	expect_fault(f, VQ_FAULT_LOOP);
	config(f, 8, 0);
	desc(f, 3, 0, 0, VIRTQ_DESC_F_NEXT, 4);
	desc(f, 4, 0, 0, VIRTQ_DESC_F_NEXT, 3);
	offer(f, 3);
	expect_fault(f, VQ_FAULT_LOOP);
}

/* A chain longer than the queue size must revisit a descriptor: caught after size steps. */
static void test_hostile_longer_than_queue(void **state)
{
	struct fx *f = *state;

	config(f, 4, 0);
	for (unsigned i = 0; i < 4; i++)
		desc(f, i, BUF_GPA + i, 1, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) & 3));
	offer(f, 0);
	expect_fault(f, VQ_FAULT_LOOP);
	/* Size == VQ_MAX_BUFS: the loop is seen at step size + 1, before the buffer bound. */
	config(f, VQ_MAX_BUFS, 0);
	for (unsigned i = 0; i < VQ_MAX_BUFS; i++)
		desc(f, i, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % VQ_MAX_BUFS));
	offer(f, 0);
	expect_fault(f, VQ_FAULT_LOOP);
	/* On a big queue the buffer bound comes first: VQ_MAX_BUFS + 1 distinct descriptors. */
	config(f, 2048, 0);
	for (unsigned i = 0; i <= VQ_MAX_BUFS; i++)
		desc(f, i, BUF_GPA, 1, i < VQ_MAX_BUFS ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	offer(f, 0);
	expect_fault(f, VQ_FAULT_TOO_MANY_BUFS);
	/* Direct and indirect buffers count together. */
	config(f, 8, F_INDIRECT);
	for (unsigned i = 0; i < VQ_MAX_INDIRECT; i++)
		put_desc(f, TABLE_GPA, i, BUF_GPA, 1, i + 1 < VQ_MAX_INDIRECT ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	desc(f, 0, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	desc(f, 1, TABLE_GPA, VQ_MAX_INDIRECT * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_TOO_MANY_BUFS);
}

static void test_hostile_index(void **state)
{
	struct fx *f = *state;

	config(f, 8, 0);
	desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 8);        /* next == size */
	offer(f, 0);
	expect_fault(f, VQ_FAULT_INDEX);
	config(f, 8, 0);
	desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0xffff);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_INDEX);
	config(f, 8, 0);
	offer(f, 8);                                          /* head == size */
	expect_fault(f, VQ_FAULT_INDEX);
}

static void test_hostile_address(void **state)
{
	struct fx *f = *state;
	static const struct { uint64_t addr; uint32_t len; } bad[] = {
		{ RAM, 1 },                      /* just past RAM */
		{ RAM - 8, 9 },                  /* straddles the end */
		{ MEM_HOLE_START, 16 },          /* the MMIO hole */
		{ UINT64_MAX - 3, 16 },          /* addr + len wraps past 2^64 */
		{ UINT64_MAX, 0xffffffff },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		config(f, 8, 0);
		desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
		desc(f, 1, bad[i].addr, bad[i].len, VIRTQ_DESC_F_WRITE, 0);
		offer(f, 0);
		expect_fault(f, VQ_FAULT_ADDR);
	}
	/* The very last byte of RAM is fine. */
	config(f, 8, 0);
	desc(f, 0, RAM - 8, 8, 0, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_ptr_equal(f->c.bufs[0].host, f->m.base + RAM - 8);
}

static void test_hostile_read_after_write(void **state)
{
	struct fx *f = *state;

	config(f, 8, 0);
	desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	desc(f, 1, BUF_GPA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	desc(f, 2, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_READ_AFTER_WRITE);
	/* Across the indirect boundary: writable direct, then a readable table entry. */
	config(f, 8, F_INDIRECT);
	desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	desc(f, 1, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(f, TABLE_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_READ_AFTER_WRITE);
}

static void test_hostile_avail_jump(void **state)
{
	struct fx *f = *state;

	config(f, 8, 0);
	desc(f, 0, BUF_GPA, 8, 0, 0);
	set_avail_idx(f, 9);                                  /* size + 1 ahead */
	expect_fault(f, VQ_FAULT_AVAIL_JUMP);
	config(f, 8, 0);
	set_avail_idx(f, 0x8000);
	expect_fault(f, VQ_FAULT_AVAIL_JUMP);
}

static void test_hostile_too_large(void **state)
{
	struct fx *f = *state;

	/* 256 descriptors of 16 MiB is exactly 4 GiB (allowed); 257 is more (§2.7.5.2). */
	config(f, 512, 0);
	for (unsigned i = 0; i < 256; i++)
		desc(f, i, 0, (uint32_t)RAM, i < 255 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(f->c.total_read, 1ull << 32);
	desc(f, 255, 0, (uint32_t)RAM, VIRTQ_DESC_F_NEXT, 256);
	desc(f, 256, 0, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_TOO_LARGE);
}

static void test_hostile_indirect(void **state)
{
	struct fx *f = *state;

	/* Not negotiated. */
	config(f, 8, 0);
	put_desc(f, TABLE_GPA, 0, BUF_GPA, 8, 0, 0);
	desc(f, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_INDIRECT_FEATURE);
	/* Nested. */
	config(f, 8, F_INDIRECT);
	put_desc(f, TABLE_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, TABLE_GPA, 1, TABLE_GPA + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(f, TABLE_GPA + 0x100, 0, BUF_GPA, 8, 0, 0);
	desc(f, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_INDIRECT_NESTED);
	/* INDIRECT with NEXT. */
	config(f, 8, F_INDIRECT);
	put_desc(f, TABLE_GPA, 0, BUF_GPA, 8, 0, 0);
	desc(f, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	desc(f, 1, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_INDIRECT_NEXT);
	/* Length 0, and lengths that are not a multiple of 16. */
	static const uint32_t badlen[] = { 0, 8, 15, 17, 24, 0xfffffff8 };
	for (unsigned i = 0; i < ARRAY_SIZE(badlen); i++) {
		config(f, 8, F_INDIRECT);
		desc(f, 0, TABLE_GPA, badlen[i], VIRTQ_DESC_F_INDIRECT, 0);
		offer(f, 0);
		expect_fault(f, VQ_FAULT_INDIRECT_LEN);
	}
	/* Too many entries (checked before the address: 0xfffffff0 is also beyond RAM). */
	static const uint32_t biglen[] = { (VQ_MAX_INDIRECT + 1) * 16, 0xfffffff0 };
	for (unsigned i = 0; i < ARRAY_SIZE(biglen); i++) {
		config(f, 8, F_INDIRECT);
		desc(f, 0, TABLE_GPA, biglen[i], VIRTQ_DESC_F_INDIRECT, 0);
		offer(f, 0);
		expect_fault(f, VQ_FAULT_INDIRECT_SIZE);
	}
	/* Table not inside RAM. */
	config(f, 8, F_INDIRECT);
	desc(f, 0, RAM - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_ADDR);
	/* Loop inside the table, bounded by the table's own entry count. */
	config(f, 8, F_INDIRECT);
	put_desc(f, TABLE_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, TABLE_GPA, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	desc(f, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_LOOP);
	/* next beyond the table (but inside the queue size: the table's bound applies). */
	config(f, 8, F_INDIRECT);
	put_desc(f, TABLE_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, TABLE_GPA, 2, BUF_GPA, 8, 0, 0);
	desc(f, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_INDEX);
	/* Bad buffer address inside a table. */
	config(f, 8, F_INDIRECT);
	put_desc(f, TABLE_GPA, 0, UINT64_MAX - 1, 4, 0, 0);
	desc(f, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_ADDR);
}

/* After a fault, only a reset and a fresh configure bring the queue back. */
static void test_reset_recovers(void **state)
{
	struct fx *f = *state;

	config(f, 8, 0);
	desc(f, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	offer(f, 0);
	expect_fault(f, VQ_FAULT_LOOP);
	assert_false(vq_enable_notify(&f->q));
	vq_reset(&f->q);
	assert_false(f->q.needs_reset);
	assert_int_equal(f->q.fault, VQ_FAULT_NONE);
	config(f, 8, 0);
	desc(f, 0, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->c), 0);
	assert_int_equal(vq_push(&f->q, 0, 0), 0);
}

static void test_fault_strings(void **state)
{
	(void)state;
	for (int i = VQ_FAULT_NONE; i <= VQ_FAULT_INDIRECT_SIZE; i++) {
		assert_non_null(vq_fault_str(i));
		assert_string_not_equal(vq_fault_str(i), "unknown fault");
	}
	assert_string_equal(vq_fault_str(VQ_FAULT_INDIRECT_SIZE + 1), "unknown fault");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_configure_sizes),
		T(test_configure_areas),
		T(test_single_descriptor),
		T(test_many_descriptors_mixed),
		T(test_full_length_chain),
		T(test_full_ring),
		T(test_zero_length),
		T(test_indirect),
		T(test_read_once),
		T(test_shadow_avail),
		T(test_push_used_ring),
		T(test_index_wrap),
		cmocka_unit_test(test_need_event_arithmetic),
		T(test_notify_event_idx),
		T(test_notify_flags),
		T(test_device_side_suppression),
		T(test_hostile_loop),
		T(test_hostile_longer_than_queue),
		T(test_hostile_index),
		T(test_hostile_address),
		T(test_hostile_read_after_write),
		T(test_hostile_avail_jump),
		T(test_hostile_too_large),
		T(test_hostile_indirect),
		T(test_reset_recovers),
		cmocka_unit_test(test_fault_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
