/* Unit tests for `kiln run` option parsing, the console escape, the command line and KVM open errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cli/options.h"
#include "core/console.h"
#include "core/kvm.h"
#include "core/loader.h"

static int parse(struct vm_config *cfg, char *msg, int argc, ...)
{
	char *argv[32];
	enum cli_action act;
	va_list ap;

	va_start(ap, argc);
	argv[0] = (char *)"run";
	for (int i = 1; i < argc && i < 31; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	msg[0] = 0;
	return cli_parse(argc, argv, cfg, &act, 4096, msg, 256);
}

static void test_defaults(void **state)
{
	struct vm_config c;
	char msg[256];
	(void)state;
	assert_int_equal(parse(&c, msg, 3, "--kernel", "k"), 0);
	assert_string_equal(c.kernel_path, "k");
	assert_int_equal(c.ncpus, 1);
	assert_int_equal(c.mem_bytes, 256 * MiB);
	assert_int_equal(c.console, CONSOLE_STDIO);
	assert_int_equal(c.compat, -1);
	assert_null(c.cmdline);
	assert_int_equal(c.io_poll_us, 0);   /* polling is opt-in */
}

/* --io-poll: 0..1000 microseconds; anything else is one message and no config. */
static void test_io_poll(void **state)
{
	struct vm_config c;
	char msg[256];
	(void)state;
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--io-poll", "50"), 0);
	assert_int_equal(c.io_poll_us, 50);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--io-poll", "1000"), 0);
	assert_int_equal(c.io_poll_us, 1000);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--io-poll", "0"), 0);
	assert_int_equal(c.io_poll_us, 0);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--io-poll", "1001"), -1);
	assert_non_null(strstr(msg, "--io-poll '1001'"));
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--io-poll", "-1"), -1);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--io-poll", "50us"), -1);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--io-poll", ""), -1);
	assert_int_equal(parse(&c, msg, 4, "--kernel", "k", "--io-poll"), -1);
	assert_non_null(strstr(msg, "needs a value"));
}

static void test_all_options(void **state)
{
	struct vm_config c;
	char msg[256];
	(void)state;
	assert_int_equal(parse(&c, msg, 18, "--kernel", "k", "--initrd", "i", "--cmdline", "a b", "--cpus", "4",
			       "--memory", "512", "--console", "file:/tmp/x", "--compat", "off", "--stats",
			       "--memory-backing", "thp"), 0);
	assert_string_equal(c.initrd_path, "i");
	assert_string_equal(c.cmdline, "a b");
	assert_int_equal(c.ncpus, 4);
	assert_int_equal(c.mem_bytes, 512 * MiB);
	assert_int_equal(c.console, CONSOLE_FILE);
	assert_string_equal(c.console_path, "/tmp/x");
	assert_int_equal(c.compat, 0);
	assert_true(c.stats);
	assert_int_equal(c.backing, MEM_BACKING_THP);
}

static void test_bad_input(void **state)
{
	struct vm_config c;
	char msg[256];
	(void)state;
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--cpus", "0"), -1);
	assert_non_null(strstr(msg, "--cpus"));
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--cpus", "255"), -1);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--cpus", "-1"), -1);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--cpus", "2x"), -1);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--memory", "0"), -1);
	assert_non_null(strstr(msg, "--memory"));
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--memory", "lots"), -1);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--memory", "4097"), -1); /* above host RAM (4096 here) */
	assert_non_null(strstr(msg, "host"));
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--memory", "99999999999999999999999"), -1);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--console", "tty"), -1);
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--console", "file:"), -1);
	assert_int_equal(parse(&c, msg, 4, "--kernel", "k", "--bogus"), -1);
	assert_non_null(strstr(msg, "--bogus"));
	assert_int_equal(parse(&c, msg, 2, "--kernel"), -1);
	assert_non_null(strstr(msg, "needs a value"));
	assert_int_equal(parse(&c, msg, 1), -1);
	assert_non_null(strstr(msg, "--kernel"));
	assert_int_equal(parse(&c, msg, 4, "--kernel", "k", "extra"), -1);
}

static void test_parse_uint(void **state)
{
	uint64_t v;
	(void)state;
	assert_int_equal(cli_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_int_equal(cli_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -1);
	assert_int_equal(cli_parse_uint(" 1", 0, 9, &v), -1);
	assert_int_equal(cli_parse_uint("+1", 0, 9, &v), -1);
	assert_int_equal(cli_parse_uint("", 0, 9, &v), -1);
	assert_int_equal(cli_parse_uint("7", 0, 9, &v), 0);
	assert_int_equal(v, 7);
}

static void test_console_escape(void **state)
{
	struct console_escape st = { 0 };
	uint8_t out[16];
	bool quit = false;
	size_t n;
	(void)state;
	n = console_filter(&st, (const uint8_t *)"ab", 2, out, &quit);
	assert_int_equal(n, 2);
	assert_false(quit);
	/* Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A then 'z' is swallowed */
	n = console_filter(&st, (const uint8_t *)"\x01\x01" "c\x01z", 5, out, &quit);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 'c');
	/* escape split across two reads */
	n = console_filter(&st, (const uint8_t *)"d\x01", 2, out, &quit);
	assert_int_equal(n, 1);
	assert_false(quit);
	n = console_filter(&st, (const uint8_t *)"xe", 2, out, &quit);
	assert_int_equal(n, 0);
	assert_true(quit);
}

static void test_cmdline(void **state)
{
	char *s;
	(void)state;
	s = loader_cmdline(NULL, true, NULL);
	assert_string_equal(s, "console=ttyS0 reboot=k panic=-1");
	free(s);
	s = loader_cmdline("quiet", true, "noxsave");
	assert_string_equal(s, "quiet noxsave");
	free(s);
	/* not Linux: neither kiln's defaults nor the kvm_pvm additions */
	s = loader_cmdline(NULL, false, "noxsave");
	assert_string_equal(s, "");
	free(s);
	s = loader_cmdline("", true, "noxsave");
	assert_string_equal(s, "noxsave");
	free(s);
}

static void test_kvm_open_errors(void **state)
{
	char msg[256];
	(void)state;
	kvm_open_error("/dev/kvm", ENOENT, msg, sizeof(msg));
	assert_non_null(strstr(msg, "modprobe"));
	kvm_open_error("/dev/kvm", EACCES, msg, sizeof(msg));
	assert_non_null(strstr(msg, "kvm' group"));
	assert_int_equal(kvm_open("/nonexistent/kvm", msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, "/nonexistent/kvm"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_io_poll),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_console_escape),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_kvm_open_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
