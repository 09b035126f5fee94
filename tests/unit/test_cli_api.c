/* Unit tests for the control-plane options of `kiln run`: --api-sock, --config-file, --no-api, --id. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "cli/options.h"

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

static void test_api_options(void **state)
{
	struct vm_config c;
	char msg[256];

	(void)state;
	/* No --kernel needed with an API socket or a config file. */
	assert_int_equal(parse(&c, msg, 3, "--api-sock", "/tmp/s"), 0);
	assert_string_equal(c.api_sock, "/tmp/s");
	assert_null(c.kernel_path);
	assert_null(c.config_file);
	assert_false(c.no_api);
	assert_null(c.instance_id);
	assert_int_equal(parse(&c, msg, 4, "--config-file", "vm.json", "--no-api"), 0);
	assert_string_equal(c.config_file, "vm.json");
	assert_true(c.no_api);
	assert_int_equal(parse(&c, msg, 7, "--config-file", "vm.json", "--api-sock", "s", "--id", "vm-7"), 0);
	assert_string_equal(c.instance_id, "vm-7");
	assert_int_equal(parse(&c, msg, 5, "--kernel", "k", "--api-sock", "s"), 0);
	assert_int_equal(parse(&c, msg, 4, "--kernel", "k", "--no-api"), 0);
	/* Defaults stay those of a plain run. */
	assert_int_equal(parse(&c, msg, 3, "--kernel", "k"), 0);
	assert_null(c.api_sock);
	assert_null(c.config_file);
}

static void test_api_option_errors(void **state)
{
	struct vm_config c;
	char msg[256];
	char id[80];

	(void)state;
	assert_int_equal(parse(&c, msg, 4, "--api-sock", "s", "--no-api"), -1);
	assert_non_null(strstr(msg, "exclude"));
	assert_int_equal(parse(&c, msg, 5, "--config-file", "f", "--kernel", "k"), -1);
	assert_non_null(strstr(msg, "--config-file and --kernel"));
	assert_int_equal(parse(&c, msg, 2, "--no-api"), -1);
	assert_non_null(strstr(msg, "--no-api needs --config-file"));
	assert_int_equal(parse(&c, msg, 3, "--api-sock", ""), -1);
	assert_non_null(strstr(msg, "--api-sock needs a path"));
	assert_int_equal(parse(&c, msg, 2, "--api-sock"), -1);
	assert_non_null(strstr(msg, "needs a value"));
	assert_int_equal(parse(&c, msg, 5, "--api-sock", "s", "--id", "a_b"), -1);
	assert_non_null(strstr(msg, "--id"));
	assert_int_equal(parse(&c, msg, 5, "--api-sock", "s", "--id", ""), -1);
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	assert_int_equal(parse(&c, msg, 5, "--api-sock", "s", "--id", id), -1);
	id[64] = '\0';
	assert_int_equal(parse(&c, msg, 5, "--api-sock", "s", "--id", id), 0);
	/* Nothing to boot from: the message still names --kernel (tests/run-cli.sh greps it). */
	assert_int_equal(parse(&c, msg, 1), -1);
	assert_non_null(strstr(msg, "--kernel PATH is required"));
	assert_non_null(strstr(msg, "--api-sock"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_options),
		cmocka_unit_test(test_api_option_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
