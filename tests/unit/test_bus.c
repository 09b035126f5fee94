/* Unit tests for the I/O bus: overlap rejection, dispatch by range, unclaimed accesses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include "core/bus.h"

struct rec { unsigned calls; uint64_t off; uint32_t len; bool write; uint8_t last; };

static void dev(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct rec *r = opaque;
	r->calls++;
	r->off = off;
	r->len = len;
	r->write = is_write;
	if (is_write)
		r->last = data[0];
	else
		memset(data, 0x5a, len);
}

static void test_overlap(void **state)
{
	struct bus b;
	struct rec r = { 0 };
	(void)state;
	bus_init(&b, "pio", 0xff);
	assert_int_equal(bus_register(&b, 0x3f8, 8, "a", dev, &r), 0);
	assert_int_equal(bus_register(&b, 0x3f8, 8, "dup", dev, &r), -EEXIST);
	assert_int_equal(bus_register(&b, 0x3f0, 9, "tail", dev, &r), -EEXIST);  /* ends at 0x3f8 */
	assert_int_equal(bus_register(&b, 0x3ff, 1, "head", dev, &r), -EEXIST);  /* last byte */
	assert_int_equal(bus_register(&b, 0x3f0, 0x20, "cover", dev, &r), -EEXIST);
	assert_int_equal(bus_register(&b, 0x3f0, 8, "below", dev, &r), 0);       /* adjacent is fine */
	assert_int_equal(bus_register(&b, 0x400, 8, "above", dev, &r), 0);
	assert_int_equal(bus_register(&b, 0x500, 0, "empty", dev, &r), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX - 1, 4, "wrap", dev, &r), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX, 1, "top", dev, &r), 0);
	assert_int_equal(b.n, 4);
	for (size_t i = 1; i < b.n; i++)
		assert_true(b.ranges[i - 1].base < b.ranges[i].base);
	bus_destroy(&b);
}

static void test_dispatch(void **state)
{
	struct bus b;
	struct rec a = { 0 }, c = { 0 };
	uint8_t d[4] = { 0x11, 0, 0, 0 };
	(void)state;
	bus_init(&b, "mmio", 0);
	assert_int_equal(bus_register(&b, 0x1000, 0x100, "a", dev, &a), 0);
	assert_int_equal(bus_register(&b, 0x2000, 0x10, "c", dev, &c), 0);
	assert_true(bus_access(&b, 0x1004, d, 4, true));
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.off, 4);
	assert_int_equal(a.len, 4);
	assert_true(a.write);
	assert_int_equal(a.last, 0x11);
	assert_true(bus_access(&b, 0x200f, d, 1, false));
	assert_int_equal(c.off, 0xf);
	assert_int_equal(d[0], 0x5a);
	assert_non_null(bus_find(&b, 0x10ff));
	assert_null(bus_find(&b, 0x1100));
	bus_destroy(&b);
}

static void test_unclaimed(void **state)
{
	struct bus pio, mmio;
	struct rec a = { 0 };
	uint8_t d[8];
	(void)state;
	bus_init(&pio, "pio", 0xff);
	bus_init(&mmio, "mmio", 0x00);
	assert_int_equal(bus_register(&pio, 0x60, 1, "kbd", dev, &a), 0);
	memset(d, 0x33, sizeof(d));
	assert_false(bus_access(&pio, 0x80, d, 2, false));
	assert_int_equal(d[0], 0xff);
	assert_int_equal(d[1], 0xff);
	assert_int_equal(d[2], 0x33);
	/* straddling the end of a range is unclaimed, not a partial device access */
	assert_false(bus_access(&pio, 0x60, d, 2, false));
	assert_int_equal(a.calls, 0);
	assert_false(bus_access(&pio, 0x81, d, 1, true));
	assert_int_equal(atomic_load(&pio.unclaimed_reads), 2);
	assert_int_equal(atomic_load(&pio.unclaimed_writes), 1);
	memset(d, 0x33, sizeof(d));
	assert_false(bus_access(&mmio, 0xd0000000, d, 8, false));
	for (int i = 0; i < 8; i++)
		assert_int_equal(d[i], 0);
	assert_int_equal(atomic_load(&mmio.unclaimed_reads), 1);
	bus_destroy(&pio);
	bus_destroy(&mmio);
}

static void test_many(void **state)
{
	struct bus b;
	struct rec r = { 0 };
	uint8_t d[1];
	(void)state;
	bus_init(&b, "pio", 0xff);
	/* registered out of order: dispatch must still find each */
	for (int i = 99; i >= 0; i--)
		assert_int_equal(bus_register(&b, (uint64_t)i * 16, 8, "x", dev, &r), 0);
	for (int i = 0; i < 100; i++) {
		assert_true(bus_access(&b, (uint64_t)i * 16 + 7, d, 1, false));
		assert_false(bus_access(&b, (uint64_t)i * 16 + 8, d, 1, false));
	}
	assert_int_equal(r.calls, 100);
	bus_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_unclaimed),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
