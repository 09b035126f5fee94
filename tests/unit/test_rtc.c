/* Unit tests for the MC146818 RTC: BCD/binary/12-hour time against the host clock, setting the clock, registers, CMOS RAM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>
#include "arch/x86/layout.h"
#include "devices/rtc.h"
#include "stub_vm.h"

static uint8_t cmos_read(struct vm *vm, uint8_t idx)
{
	uint8_t v = 0xaa;

	assert_true(bus_access(&vm->pio, X86_RTC_PORT, &idx, 1, true));
	assert_true(bus_access(&vm->pio, X86_RTC_PORT + 1, &v, 1, false));
	return v;
}

static void cmos_write(struct vm *vm, uint8_t idx, uint8_t v)
{
	assert_true(bus_access(&vm->pio, X86_RTC_PORT, &idx, 1, true));
	assert_true(bus_access(&vm->pio, X86_RTC_PORT + 1, &v, 1, true));
}

static int bcd(uint8_t b)
{
	assert_true((b & 0x0f) <= 9 && (b >> 4) <= 9);
	return (b >> 4) * 10 + (b & 0x0f);
}

static int bin(uint8_t b)
{
	return b;
}

/* Read the clock like a driver does: again if the seconds moved meanwhile. Returns seconds since the epoch. */
static time_t read_clock(struct vm *vm, int (*dec)(uint8_t), bool h24)
{
	for (int tries = 0; tries < 3; tries++) {
		uint8_t s0 = cmos_read(vm, 0x00);
		uint8_t hr = cmos_read(vm, 0x04);
		struct tm tm = {
			.tm_min = dec(cmos_read(vm, 0x02)),
			.tm_mday = dec(cmos_read(vm, 0x07)),
			.tm_mon = dec(cmos_read(vm, 0x08)) - 1,
			.tm_year = dec(cmos_read(vm, RTC_CENTURY_REG)) * 100 + dec(cmos_read(vm, 0x09)) - 1900,
		};
		if (cmos_read(vm, 0x00) != s0)
			continue;
		tm.tm_sec = dec(s0);
		if (h24) {
			tm.tm_hour = dec(hr);
		} else {
			int h = dec(hr & 0x7f);
			assert_true(h >= 1 && h <= 12);
			tm.tm_hour = h % 12 + ((hr & 0x80) ? 12 : 0);
		}
		return timegm(&tm);
	}
	fail_msg("clock kept changing");
	return 0;
}

static void assert_near_now(time_t t, time_t expect)
{
	assert_true(t >= expect - 2 && t <= expect + 2);
}

static int setup(void **state)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	assert_non_null(vm);
	stub_vm_init(vm, 0);
	vm->cfg.mem_bytes = 6 * GiB; /* only read for the CMOS size bytes */
	assert_int_equal(rtc_init(vm), 0);
	*state = vm;
	return 0;
}

static int teardown(void **state)
{
	struct vm *vm = *state;

	stub_vm_fini(vm);
	free(vm);
	return 0;
}

static void test_bcd_time(void **state)
{
	struct vm *vm = *state;

	assert_int_equal(cmos_read(vm, 0x0b), 0x02);
	assert_near_now(read_clock(vm, bcd, true), time(NULL));
}

static void test_binary_and_12h(void **state)
{
	struct vm *vm = *state;

	cmos_write(vm, 0x0b, 0x06); /* DM binary, 24 h */
	assert_int_equal(cmos_read(vm, 0x0b), 0x06);
	assert_int_equal(cmos_read(vm, RTC_CENTURY_REG), 20);
	assert_near_now(read_clock(vm, bin, true), time(NULL));
	cmos_write(vm, 0x0b, 0x00); /* BCD, 12 h */
	assert_near_now(read_clock(vm, bcd, false), time(NULL));
	cmos_write(vm, 0x0b, 0x04); /* binary, 12 h */
	assert_near_now(read_clock(vm, bin, false), time(NULL));
}

static void test_set_clock(void **state)
{
	struct vm *vm = *state;
	struct tm want = { .tm_year = 99, .tm_mon = 11, .tm_mday = 31, .tm_hour = 23, .tm_min = 59, .tm_sec = 50 };
	time_t target = timegm(&want);

	cmos_write(vm, 0x0b, 0x82); /* SET: updates halted */
	cmos_write(vm, RTC_CENTURY_REG, 0x19);
	cmos_write(vm, 0x09, 0x99);
	cmos_write(vm, 0x08, 0x12);
	cmos_write(vm, 0x07, 0x31);
	cmos_write(vm, 0x04, 0x23);
	cmos_write(vm, 0x02, 0x59);
	cmos_write(vm, 0x00, 0x50);
	assert_int_equal(read_clock(vm, bcd, true), target); /* held exactly while SET */
	cmos_write(vm, 0x0b, 0x02);                           /* run */
	assert_near_now(read_clock(vm, bcd, true), target);
	assert_int_equal(cmos_read(vm, 0x06), 6); /* weekday from the date: Friday, Sunday = 1 */

	/* A write without SET applies at once. */
	struct tm host;
	time_t now = time(NULL);
	gmtime_r(&now, &host);
	cmos_write(vm, 0x0b, 0x06); /* binary */
	cmos_write(vm, RTC_CENTURY_REG, (uint8_t)((host.tm_year + 1900) / 100));
	assert_int_equal(cmos_read(vm, RTC_CENTURY_REG), (host.tm_year + 1900) / 100);
	assert_int_equal(cmos_read(vm, 0x09), 99);
}

static void test_status_registers(void **state)
{
	struct vm *vm = *state;

	assert_int_equal(cmos_read(vm, 0x0a), 0x26);
	cmos_write(vm, 0x0a, 0xff);
	assert_int_equal(cmos_read(vm, 0x0a), 0x7f); /* UIP is read-only and never set */
	assert_int_equal(cmos_read(vm, 0x0c), 0x00);
	cmos_write(vm, 0x0d, 0x00);
	assert_int_equal(cmos_read(vm, 0x0d), 0x80);
}

static void test_cmos_ram_and_index_mask(void **state)
{
	struct vm *vm = *state;
	uint8_t two[2] = { 0x7f, 0x3c };

	cmos_write(vm, 0x40, 0xa5);
	assert_int_equal(cmos_read(vm, 0x40), 0xa5);
	assert_int_equal(cmos_read(vm, 0x80 | 0x40), 0xa5); /* NMI-mask bit ignored */
	cmos_write(vm, 0x80 | 0x7f, 0x11);
	assert_int_equal(cmos_read(vm, 0x7f), 0x11);
	assert_int_equal(cmos_read(vm, 0x80 | 0x0d), 0x80);
	/* A 16-bit OUT to 0x70 is index then data. */
	assert_true(bus_access(&vm->pio, X86_RTC_PORT, two, 2, true));
	assert_int_equal(cmos_read(vm, 0x7f), 0x3c);
	/* Alarm bytes are plain storage. */
	cmos_write(vm, 0x01, 0x42);
	assert_int_equal(cmos_read(vm, 0x01), 0x42);
}

static void test_memory_bytes(void **state)
{
	struct vm *vm = *state;
	unsigned sum = 0;

	/* 6 GiB: 3 GiB below the hole, 3 GiB above 4 GiB. */
	assert_int_equal(cmos_read(vm, 0x15) | cmos_read(vm, 0x16) << 8, 640);
	assert_int_equal(cmos_read(vm, 0x17) | cmos_read(vm, 0x18) << 8, 0xffff);
	assert_int_equal(cmos_read(vm, 0x30) | cmos_read(vm, 0x31) << 8, 0xffff);
	assert_int_equal(cmos_read(vm, 0x34) | cmos_read(vm, 0x35) << 8, (3 * GiB - 16 * MiB) / (64 * KiB));
	assert_int_equal(cmos_read(vm, 0x5b) | cmos_read(vm, 0x5c) << 8 | cmos_read(vm, 0x5d) << 16,
			 3 * GiB / (64 * KiB));
	for (uint8_t i = 0x10; i <= 0x2d; i++)
		sum += cmos_read(vm, i);
	assert_int_equal(cmos_read(vm, 0x2e) << 8 | cmos_read(vm, 0x2f), sum & 0xffff);
}

static void test_memory_bytes_small(void **state)
{
	struct vm vm;

	stub_vm_init(&vm, 0);
	vm.cfg.mem_bytes = 64 * MiB;
	assert_int_equal(rtc_init(&vm), 0);
	assert_int_equal(cmos_read(&vm, 0x17) | cmos_read(&vm, 0x18) << 8, 63 * 1024);
	assert_int_equal(cmos_read(&vm, 0x34) | cmos_read(&vm, 0x35) << 8, 48 * 16);
	assert_int_equal(cmos_read(&vm, 0x5b) | cmos_read(&vm, 0x5c) | cmos_read(&vm, 0x5d), 0);
	assert_int_equal(rtc_init(&vm), -EEXIST); /* ports taken: refused */
	stub_vm_fini(&vm);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bcd_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_and_12h, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmos_ram_and_index_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_bytes, setup, teardown),
		cmocka_unit_test(test_memory_bytes_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
