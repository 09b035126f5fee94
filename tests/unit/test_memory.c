/* Unit tests for guest RAM: x86 layout around the MMIO hole and the checked accessor's edges. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <errno.h>
#include "core/memory.h"

static void test_layout_small(void **state)
{
	struct guest_mem m = { 0 };
	(void)state;
	assert_int_equal(mem_layout(&m, 64 * MiB), 0);
	assert_int_equal(m.nregions, 1);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, 64 * MiB);
}

static void test_layout_split(void **state)
{
	struct guest_mem m = { 0 };
	(void)state;
	assert_int_equal(mem_layout(&m, 4 * GiB), 0);
	assert_int_equal(m.nregions, 2);
	assert_int_equal(m.regions[0].size, MEM_HOLE_START);
	assert_int_equal(m.regions[1].gpa, MEM_HIGH_START);
	assert_int_equal(m.regions[1].size, 4 * GiB - MEM_HOLE_START);
	assert_int_equal(m.regions[1].file_offset, MEM_HOLE_START);
	/* exactly the hole size: no high region */
	assert_int_equal(mem_layout(&m, MEM_HOLE_START), 0);
	assert_int_equal(m.nregions, 1);
	assert_int_equal(mem_layout(&m, 0), -EINVAL);
}

static void test_accessor_edges(void **state)
{
	struct guest_mem m;
	uint8_t *p;
	(void)state;
	assert_int_equal(mem_init(&m, 16 * MiB, MEM_BACKING_MEMFD), 0);
	/* len 0 inside RAM is fine, at the end is not */
	assert_non_null(mem_gpa(&m, 0, 0));
	assert_null(mem_gpa(&m, 16 * MiB, 0));
	/* last byte */
	p = mem_gpa(&m, 16 * MiB - 1, 1);
	assert_non_null(p);
	assert_ptr_equal(p, m.base + 16 * MiB - 1);
	/* one past */
	assert_null(mem_gpa(&m, 16 * MiB - 1, 2));
	assert_null(mem_gpa(&m, 16 * MiB, 1));
	/* whole RAM, and one more */
	assert_non_null(mem_gpa(&m, 0, 16 * MiB));
	assert_null(mem_gpa(&m, 0, 16 * MiB + 1));
	/* wrap-around of gpa + len */
	assert_null(mem_gpa(&m, 1, UINT64_MAX));
	assert_null(mem_gpa(&m, UINT64_MAX, 1));
	assert_null(mem_gpa(&m, UINT64_MAX - 1, 4));
	/* the hole and beyond */
	assert_null(mem_gpa(&m, MEM_HOLE_START, 1));
	mem_destroy(&m);
}

static void test_accessor_high(void **state)
{
	struct guest_mem m;
	uint8_t *lo, *hi;
	(void)state;
	/* a layout-only guest_mem with fake host pointers: no 3 GiB allocation in a unit test */
	memset(&m, 0, sizeof(m));
	assert_int_equal(mem_layout(&m, MEM_HOLE_START + 64 * MiB), 0);
	m.regions[0].host = (uint8_t *)0x10000000;
	m.regions[1].host = (uint8_t *)0x20000000;
	lo = mem_gpa(&m, MEM_HOLE_START - 1, 1);
	assert_ptr_equal(lo, (uint8_t *)0x10000000 + MEM_HOLE_START - 1);
	/* an access may not span the hole even if both sides are RAM */
	assert_null(mem_gpa(&m, MEM_HOLE_START - 1, 2));
	assert_null(mem_gpa(&m, MEM_HOLE_START + 5, 1));
	assert_null(mem_gpa(&m, MEM_HIGH_START - 1, 1));
	hi = mem_gpa(&m, MEM_HIGH_START, 64 * MiB);
	assert_ptr_equal(hi, (uint8_t *)0x20000000);
	assert_null(mem_gpa(&m, MEM_HIGH_START, 64 * MiB + 1));
	assert_null(mem_gpa(&m, MEM_HIGH_START + 64 * MiB, 0));
}

static void test_copy_helpers(void **state)
{
	struct guest_mem m;
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, back[8] = { 0 };
	(void)state;
	assert_int_equal(mem_init(&m, 8 * MiB, MEM_BACKING_THP), 0);
	assert_int_equal(mem_write(&m, 0x1000, buf, 8), 0);
	assert_int_equal(mem_read(&m, 0x1000, back, 8), 0);
	assert_memory_equal(buf, back, 8);
	assert_int_equal(mem_write(&m, 8 * MiB - 4, buf, 8), -EFAULT);
	assert_int_equal(mem_read(&m, 8 * MiB - 4, back, 8), -EFAULT);
	mem_destroy(&m);
}

static void test_backing_parse(void **state)
{
	enum mem_backing b;
	(void)state;
	assert_int_equal(mem_backing_parse("memfd", &b), 0);
	assert_int_equal(b, MEM_BACKING_MEMFD);
	assert_int_equal(mem_backing_parse("hugetlb", &b), 0);
	assert_int_equal(b, MEM_BACKING_HUGETLB);
	assert_int_equal(mem_backing_parse("huge", &b), -EINVAL);
}

static void test_hugetlb_alignment(void **state)
{
	struct guest_mem m;
	(void)state;
	assert_int_equal(mem_init(&m, 3 * MiB, MEM_BACKING_HUGETLB), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_small),
		cmocka_unit_test(test_layout_split),
		cmocka_unit_test(test_accessor_edges),
		cmocka_unit_test(test_accessor_high),
		cmocka_unit_test(test_copy_helpers),
		cmocka_unit_test(test_backing_parse),
		cmocka_unit_test(test_hugetlb_alignment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
