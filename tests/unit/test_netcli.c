/* Unit tests for the networking options: --net user/tap/tapfd values, hostfwd forms, --metadata-version, the metadata and API size limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "cli/options.h"

static int net(const char *v, struct net_config *n)
{
	char buf[256], msg[256];

	snprintf(buf, sizeof(buf), "%s", v);
	return cli_parse_net(buf, n, msg, sizeof(msg));
}

static const char *ip(struct in_addr a)
{
	static char b[INET_ADDRSTRLEN];

	return inet_ntop(AF_INET, &a, b, sizeof(b));
}

static void test_net_user(void **state)
{
	struct net_config n;

	assert_int_equal(net("user", &n), 0);
	assert_int_equal(n.kind, NET_USER);
	assert_int_equal(n.nfwd, 0);
	assert_false(n.restrict_);
	assert_int_equal(net("user,hostfwd=tcp::2222-:22,hostfwd=udp:0.0.0.0:5353-10.0.2.15:53,restrict=on,"
			     "mac=02:00:00:00:00:01", &n), 0);
	assert_int_equal(n.nfwd, 2);
	assert_false(n.fwd[0].udp);
	assert_string_equal(ip(n.fwd[0].host_addr), "127.0.0.1"); /* loopback unless asked */
	assert_int_equal(n.fwd[0].host_port, 2222);
	assert_int_equal(n.fwd[0].guest_addr.s_addr, 0);
	assert_int_equal(n.fwd[0].guest_port, 22);
	assert_true(n.fwd[1].udp);
	assert_string_equal(ip(n.fwd[1].host_addr), "0.0.0.0");
	assert_string_equal(ip(n.fwd[1].guest_addr), "10.0.2.15");
	assert_true(n.restrict_);
	assert_true(n.mac_set);
	assert_int_equal(n.mac[5], 1);
	/* The bare-port form of the brief: hostfwd=tcp:HOSTPORT-:GUESTPORT. */
	assert_int_equal(net("user,hostfwd=tcp:8080-:80", &n), 0);
	assert_int_equal(n.fwd[0].host_port, 8080);
	assert_int_equal(n.fwd[0].guest_port, 80);
}

static void test_net_tap(void **state)
{
	struct net_config n;

	assert_int_equal(net("tap=tap0", &n), 0);
	assert_int_equal(n.kind, NET_TAP);
	assert_string_equal(n.ifname, "tap0");
	assert_int_equal(n.queues, 1);
	assert_int_equal(net("tap=kt1,queues=4,mac=52:54:00:aa:bb:cc", &n), 0);
	assert_int_equal(n.queues, 4);
	assert_int_equal(n.mac[3], 0xaa);
	assert_int_equal(net("tapfd=5", &n), 0);
	assert_int_equal(n.kind, NET_TAPFD);
	assert_int_equal(n.fd, 5);
	/* txdelay: unset (the device's default) unless given; 0 and the cap are accepted. */
	assert_false(n.tx_delay_set);
	assert_int_equal(net("tap=t0,txdelay=0", &n), 0);
	assert_true(n.tx_delay_set);
	assert_int_equal(n.tx_delay_us, 0);
	assert_int_equal(net("tapfd=5,txdelay=1000", &n), 0);
	assert_int_equal(n.tx_delay_us, 1000);
	assert_int_equal(net("user,txdelay=7", &n), 0);
	assert_int_equal(n.tx_delay_us, 7);
}

static void test_net_bad(void **state)
{
	static const char *bad[] = {
		"", "bridge", "tap=", "tap=t,queues=0", "tap=t,queues=8", "tap=t,queues=x", "tapfd=-1", "tapfd=",
		"user,queues=2",                    /* queues is a tap thing */
		"user,txdelay=1001", "tap=t,txdelay=1001", "tap=t,txdelay=-1", "tap=t,txdelay=", /* txdelay: 0..1000 */
		"tap=t,hostfwd=tcp::1-:2",           /* hostfwd is a user thing */
		"tap=t,restrict=on", "user,restrict=maybe", "user,mac=01:00:00:00:00:01", /* multicast MAC */
		"user,mac=52:54:00:12:34", "user,mac=52:54:00:12:34:567", "user,hostfwd=sctp::1-:2",
		"user,hostfwd=tcp::0-:22", "user,hostfwd=tcp::70000-:22", "user,hostfwd=tcp::22",
		"user,hostfwd=tcp:1.2.3:22-:22", "user,hostfwd=tcp::22-:", "user,hostfwd=tcp::22-x:22", "user,bogus",
	};
	struct net_config n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (net(bad[i], &n) != -1)
			fail_msg("accepted --net '%s'", bad[i]);
	}
}

static void test_cli_net_options(void **state)
{
	char a0[] = "run", a1[] = "--kernel", a2[] = "k", a3[] = "--net", a4[] = "user", a5[] = "--net",
	     a6[] = "tap=t0", a7[] = "--metadata", a8[] = "md.json", a9[] = "--ssh-key", a10[] = "id.pub",
	     a11[] = "--metadata-version", a12[] = "2";
	char *argv[] = { a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12 };
	char b1[] = "--metadata-version", b2[] = "3";
	char *bad[] = { a0, a1, a2, b1, b2 };
	struct vm_config cfg;
	enum cli_action act;
	char msg[256];

	assert_int_equal(cli_parse(13, argv, &cfg, &act, 0, msg, sizeof(msg)), 0);
	assert_int_equal(cfg.nnets, 2);
	assert_int_equal(cfg.nets[0].kind, NET_USER);
	assert_int_equal(cfg.nets[1].kind, NET_TAP);
	assert_string_equal(cfg.metadata_path, "md.json");
	assert_string_equal(cfg.ssh_key_path, "id.pub");
	assert_int_equal(cfg.metadata_version, 2);
	assert_int_equal(cli_parse(5, bad, &cfg, &act, 0, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "--metadata-version"));
	assert_int_equal(cli_parse(3, argv, &cfg, &act, 0, msg, sizeof(msg)), 0);
	assert_int_equal(cfg.metadata_version, 1);
	assert_int_equal(cfg.nnets, 0);
	assert_int_equal(cfg.mmds_size_limit, 0);   /* the default, MMDS_SIZE_LIMIT_DEFAULT */
	assert_int_equal(cfg.api_max_body, 0);
}

/* Firecracker's --mmds-size-limit and --http-api-max-payload-size: bytes, range-checked. */
static void test_cli_limits(void **state)
{
	char a0[] = "run", a1[] = "--kernel", a2[] = "k", a3[] = "--mmds-size-limit", a4[] = "100",
	     a5[] = "--http-api-max-payload-size", a6[] = "4096";
	char *argv[] = { a0, a1, a2, a3, a4, a5, a6 };
	static const struct { const char *opt, *val; } bad[] = {
		{ "--mmds-size-limit", "1" }, { "--mmds-size-limit", "16777217" }, { "--mmds-size-limit", "-1" },
		{ "--http-api-max-payload-size", "1023" }, { "--http-api-max-payload-size", "64K" },
	};
	struct vm_config cfg;
	enum cli_action act;
	char msg[256];

	assert_int_equal(cli_parse(7, argv, &cfg, &act, 0, msg, sizeof(msg)), 0);
	assert_int_equal(cfg.mmds_size_limit, 100);
	assert_int_equal(cfg.api_max_body, 4096);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char o[64], v[64];
		char *av[] = { a0, a1, a2, o, v };

		snprintf(o, sizeof(o), "%s", bad[i].opt);
		snprintf(v, sizeof(v), "%s", bad[i].val);
		assert_int_equal(cli_parse(5, av, &cfg, &act, 0, msg, sizeof(msg)), -1);
		assert_non_null(strstr(msg, bad[i].opt));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_user),
		cmocka_unit_test(test_net_tap),
		cmocka_unit_test(test_net_bad),
		cmocka_unit_test(test_cli_net_options),
		cmocka_unit_test(test_cli_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
