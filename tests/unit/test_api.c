/* Unit tests for the API request model: routing, body validation, faults, phase rules, vm_config mapping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "api/api.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int route(const char *m, const char *p, struct api_route *r, struct api_err *e)
{
	return api_route(m, strlen(m), p, strlen(p), r, e);
}

/* A fault is a 400 whose message contains `want`, is printable ASCII and encodes to valid JSON. */
static void assert_fault(const struct api_err *e, const char *want)
{
	char *body;
	json_t *j;

	assert_int_equal(e->status, 400);
	if (!strstr(e->msg, want))
		fail_msg("fault \"%s\" lacks \"%s\"", e->msg, want);
	for (const char *p = e->msg; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
	body = api_fault_body(e->msg);
	assert_non_null(body);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "fault_message")), e->msg);
	json_decref(j);
	free(body);
}

/* Route a method + path (must succeed), then parse body against it. */
static int parse(const char *m, const char *p, const char *body, struct api_request *req,
		 struct api_err *e)
{
	struct api_route r;

	assert_int_equal(route(m, p, &r, e), 0);
	return api_parse_body(&r, body, body ? strlen(body) : 0, API_MAX_BODY, req, e);
}

static void expect_ok(const char *m, const char *p, const char *body, struct api_request *req)
{
	struct api_err e = { 0 };
	int ret = parse(m, p, body, req, &e);

	if (ret)
		fail_msg("%s %s %s: %d %s", m, p, body ? body : "", ret, e.msg);
}

/* ---- routing ---- */

static const struct {
	const char *method, *path;
	enum api_endpoint ep;
	const char *id;
} good_routes[] = {
	{ "GET", "/", API_EP_ROOT, "" },
	{ "PUT", "/actions", API_EP_ACTIONS, "" },
	{ "PUT", "/boot-source", API_EP_BOOT_SOURCE, "" },
	{ "GET", "/machine-config", API_EP_MACHINE_CONFIG, "" },
	{ "PUT", "/machine-config", API_EP_MACHINE_CONFIG, "" },
	{ "PATCH", "/machine-config", API_EP_MACHINE_CONFIG, "" },
	{ "PUT", "/drives/rootfs", API_EP_DRIVES, "rootfs" },
	{ "PATCH", "/drives/scratch_2", API_EP_DRIVES, "scratch_2" },
	{ "PUT", "/network-interfaces/eth0", API_EP_NETWORK_IFACES, "eth0" },
	{ "PATCH", "/network-interfaces/eth0", API_EP_NETWORK_IFACES, "eth0" },
	{ "PUT", "/logger", API_EP_LOGGER, "" },
	{ "PUT", "/metrics", API_EP_METRICS, "" },
	{ "GET", "/mmds", API_EP_MMDS, "" },
	{ "PUT", "/mmds", API_EP_MMDS, "" },
	{ "PATCH", "/mmds", API_EP_MMDS, "" },
	{ "PUT", "/mmds/config", API_EP_MMDS_CONFIG, "" },
	{ "PUT", "/entropy", API_EP_ENTROPY, "" },
	{ "PUT", "/serial", API_EP_SERIAL, "" },
	{ "PATCH", "/vm", API_EP_VM, "" },
	{ "GET", "/vm/config", API_EP_VM_CONFIG, "" },
	{ "GET", "/version", API_EP_VERSION, "" },
};

static void test_route_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(good_routes); i++) {
		struct api_route r;
		struct api_err e = { 0 };
		int ret = route(good_routes[i].method, good_routes[i].path, &r, &e);

		if (ret)
			fail_msg("%s %s: %s", good_routes[i].method, good_routes[i].path, e.msg);
		assert_int_equal(r.ep, good_routes[i].ep);
		assert_string_equal(api_method_str(r.method), good_routes[i].method);
		assert_string_equal(r.id, good_routes[i].id);
	}
	assert_string_equal(api_endpoint_str(API_EP_DRIVES), "/drives/{drive_id}");
	assert_string_equal(api_endpoint_str(API_EP_COUNT), "?");
	assert_string_equal(api_method_str(API_METHOD_COUNT), "?");
}

static bool listed(const char *method, enum api_endpoint ep)
{
	for (size_t i = 0; i < NELEM(good_routes); i++)
		if (!strcmp(good_routes[i].method, method) && good_routes[i].ep == ep)
			return true;
	return false;
}

/* Every listed path with every other method: Firecracker's InvalidPathMethod, a 400. */
static void test_route_wrong_method(void **state)
{
	static const char *const methods[] = { "GET", "PUT", "PATCH", "POST", "DELETE", "HEAD",
					       "get", "" };
	unsigned refused = 0;

	(void)state;
	for (size_t i = 0; i < NELEM(good_routes); i++) {
		for (size_t m = 0; m < NELEM(methods); m++) {
			struct api_route r;
			struct api_err e = { 0 };

			if (listed(methods[m], good_routes[i].ep))
				continue;
			assert_int_equal(route(methods[m], good_routes[i].path, &r, &e), -EINVAL);
			assert_fault(&e, "Invalid request method and/or path: ");
			refused++;
		}
	}
	assert_true(refused > 100);
	{
		struct api_route r;
		struct api_err e = { 0 };

		assert_int_equal(route("PUT", "/vm", &r, &e), -EINVAL);
		assert_string_equal(e.msg, "Invalid request method and/or path: PUT vm.");
		assert_int_equal(route("GET", "/drives/x", &r, &e), -EINVAL);
		assert_string_equal(e.msg, "Invalid request method and/or path: GET drives.");
	}
}

static void test_route_bad_paths(void **state)
{
	static const char *const bad[] = {
		"/foo", "/vm/", "/machine-config/", "/drivesx/a", "/mmds/config/x",
		"/version?x=1", "//", "/ drives/a", "/VM", "/mmds/", "/actions/x",
	};
	struct api_route r;
	struct api_err e = { 0 };
	char longp[API_MAX_PATH + 2];

	(void)state;
	for (size_t i = 0; i < NELEM(bad); i++) {
		assert_int_equal(route("GET", bad[i], &r, &e), -EINVAL);
		assert_fault(&e, "Invalid request method and/or path");
	}
	assert_int_equal(route("GET", "", &r, &e), -EINVAL);
	assert_fault(&e, "must start with '/'");
	assert_int_equal(route("GET", "vm", &r, &e), -EINVAL);
	assert_fault(&e, "must start with '/'");

	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(route("GET", longp, &r, &e), -EINVAL);
	assert_fault(&e, "longer than 256");

	assert_int_equal(api_route("GET", 3, "/vm\0x", 5, &r, &e), -EINVAL);
	assert_fault(&e, "NUL");

	/* Firecracker endpoints kiln lacks: still 400, said plainly. */
	assert_int_equal(route("PUT", "/vsock", &r, &e), -EINVAL);
	assert_fault(&e, "does not implement");
	assert_int_equal(route("PUT", "/snapshot/create", &r, &e), -EINVAL);
	assert_fault(&e, "does not implement");
	assert_int_equal(route("PUT", "/vsockx", &r, &e), -EINVAL);
	assert_null(strstr(e.msg, "does not implement"));

	/* Client bytes in the method and path are echoed printable and bounded. */
	assert_int_equal(route("G\"E\nT", "/x\x01\xff\"", &r, &e), -EINVAL);
	assert_fault(&e, "G\"E?T x??\".");
	assert_int_equal(route("AVERYLONGMETHODNAMEINDEED", "/x", &r, &e), -EINVAL);
	assert_fault(&e, "AVERYLONGMETHODN... x.");
}

static void test_route_ids(void **state)
{
	struct api_route r;
	struct api_err e = { 0 };
	char path[128], id[API_ID_MAX + 2];

	(void)state;
	assert_int_equal(route("PUT", "/drives", &r, &e), -EINVAL);
	assert_fault(&e, "The ID cannot be empty.");
	assert_int_equal(route("PUT", "/drives/", &r, &e), -EINVAL);
	assert_fault(&e, "The ID cannot be empty.");
	assert_int_equal(route("PATCH", "/network-interfaces/", &r, &e), -EINVAL);
	assert_fault(&e, "The ID cannot be empty.");

	static const char *const bad[] = {
		"/drives/a-b", "/drives/a.b", "/drives/%41", "/drives/\xc3\xa9", "/drives/a/b",
		"/drives/a b", "/network-interfaces/eth0:1", "/drives/..",
	};
	for (size_t i = 0; i < NELEM(bad); i++) {
		assert_int_equal(route("PUT", bad[i], &r, &e), -EINVAL);
		assert_fault(&e, "API Resource IDs can only contain alphanumeric characters and "
			     "underscores.");
	}

	memset(id, 'Z', API_ID_MAX);
	id[API_ID_MAX] = '\0';
	snprintf(path, sizeof(path), "/drives/%s", id);
	assert_int_equal(route("PUT", path, &r, &e), 0);
	assert_string_equal(r.id, id);
	snprintf(path, sizeof(path), "/drives/%sZ", id);
	assert_int_equal(route("PUT", path, &r, &e), -EINVAL);
	assert_fault(&e, "at most 64");

	assert_int_equal(api_check_id("aZ_9", 4, NULL), 0);
	assert_int_equal(api_check_id("", 0, NULL), -EINVAL);
	assert_int_equal(api_check_id("a\0b", 3, NULL), -EINVAL);
}

/* ---- valid bodies ---- */

static void test_body_boot_source(void **state)
{
	struct api_request req;

	(void)state;
	expect_ok("PUT", "/boot-source", "{\"kernel_image_path\": \"/k/vmlinux\", \"boot_args\": "
		  "\"console=ttyS0 reboot=k\", \"initrd_path\": \"/k/initrd.cpio\"}", &req);
	assert_int_equal(req.kind, API_BODY_BOOT_SOURCE);
	assert_string_equal(req.u.boot.kernel_image_path, "/k/vmlinux");
	assert_string_equal(req.u.boot.boot_args, "console=ttyS0 reboot=k");
	assert_string_equal(req.u.boot.initrd_path, "/k/initrd.cpio");
	api_request_free(&req);

	/* null is None for an optional field; relative and non-ASCII paths are paths. */
	expect_ok("PUT", "/boot-source", "{\"kernel_image_path\": \"k\\u00e9rnel\", "
		  "\"initrd_path\": null}", &req);
	assert_string_equal(req.u.boot.kernel_image_path, "k\xc3\xa9rnel");
	assert_null(req.u.boot.initrd_path);
	assert_null(req.u.boot.boot_args);
	assert_int_equal(req.u.boot.present, 1u << API_BS_KERNEL_IMAGE_PATH);
	api_request_free(&req);
	api_request_free(&req);   /* idempotent */
}

static void test_body_machine_config(void **state)
{
	struct api_request req;

	(void)state;
	expect_ok("PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 1024, "
		  "\"smt\": true, \"track_dirty_pages\": false, \"cpu_template\": \"T2S\", "
		  "\"huge_pages\": \"2M\"}", &req);
	assert_int_equal(req.kind, API_BODY_MACHINE_CONFIG);
	assert_int_equal(req.u.machine.vcpu_count, 2);
	assert_int_equal(req.u.machine.mem_size_mib, 1024);
	assert_true(req.u.machine.smt);
	assert_int_equal(req.u.machine.cpu_template, API_CPU_TEMPLATE_T2S);
	assert_int_equal(req.u.machine.huge_pages, API_HUGE_PAGES_2M);
	api_request_free(&req);

	expect_ok("PUT", "/machine-config", "{\"vcpu_count\": 32, \"mem_size_mib\": 8}", &req);
	assert_int_equal(req.u.machine.vcpu_count, 32);
	assert_int_equal(req.u.machine.cpu_template, API_CPU_TEMPLATE_NONE);   /* default */
	assert_int_equal(req.u.machine.huge_pages, API_HUGE_PAGES_NONE);
	api_request_free(&req);

	/* smt with one vCPU is allowed ("either 1 or an even number"). */
	expect_ok("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128, "
		  "\"smt\": true}", &req);
	api_request_free(&req);

	expect_ok("PATCH", "/machine-config", "{\"vcpu_count\": 3}", &req);
	assert_int_equal(req.u.machine.present, 1u << API_MC_VCPU_COUNT);
	assert_int_equal(req.u.machine.vcpu_count, 3);
	api_request_free(&req);
}

static void test_body_drive(void **state)
{
	struct api_request req;

	(void)state;
	expect_ok("PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": "
		  "\"/img/rootfs.ext4\", \"is_root_device\": true, \"is_read_only\": true, "
		  "\"partuuid\": \"0eaa91a0-01\", \"cache_type\": \"Writeback\", \"io_engine\": "
		  "\"Async\", \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, "
		  "\"refill_time\": 100, \"one_time_burst\": 0}, \"ops\": {\"size\": 100, "
		  "\"refill_time\": 1000}}}", &req);
	assert_int_equal(req.kind, API_BODY_DRIVE);
	assert_string_equal(req.u.drive.drive_id, "rootfs");
	assert_string_equal(req.u.drive.path_on_host, "/img/rootfs.ext4");
	assert_true(req.u.drive.is_root_device);
	assert_true(req.u.drive.is_read_only);
	assert_string_equal(req.u.drive.partuuid, "0eaa91a0-01");
	assert_int_equal(req.u.drive.cache_type, API_CACHE_WRITEBACK);
	assert_int_equal(req.u.drive.io_engine, API_IO_ASYNC);
	assert_int_equal(req.u.drive.rate_limiter.present,
			 1u << API_RL_BANDWIDTH | 1u << API_RL_OPS);
	assert_int_equal(req.u.drive.rate_limiter.bandwidth.size, 1048576);
	assert_int_equal(req.u.drive.rate_limiter.bandwidth.refill_time, 100);
	assert_true(req.u.drive.rate_limiter.bandwidth.present & 1u << API_TB_ONE_TIME_BURST);
	assert_false(req.u.drive.rate_limiter.ops.present & 1u << API_TB_ONE_TIME_BURST);
	api_request_free(&req);

	expect_ok("PUT", "/drives/d1", "{\"drive_id\": \"d1\", \"path_on_host\": \"d.img\", "
		  "\"is_root_device\": false}", &req);
	assert_int_equal(req.u.drive.cache_type, API_CACHE_UNSAFE);
	assert_int_equal(req.u.drive.io_engine, API_IO_SYNC);
	assert_false(req.u.drive.is_read_only);
	api_request_free(&req);

	expect_ok("PATCH", "/drives/d1", "{\"drive_id\": \"d1\", \"path_on_host\": \"/new.img\"}",
		  &req);
	assert_int_equal(req.kind, API_BODY_DRIVE_PATCH);
	assert_string_equal(req.u.drive_patch.path_on_host, "/new.img");
	api_request_free(&req);
	expect_ok("PATCH", "/drives/d1", "{\"drive_id\": \"d1\", \"rate_limiter\": {}}", &req);
	assert_null(req.u.drive_patch.path_on_host);
	api_request_free(&req);
}

static void test_body_net(void **state)
{
	struct api_request req;
	static const uint8_t mac[6] = { 0x06, 0x00, 0xAC, 0x10, 0x00, 0xfe };

	(void)state;
	expect_ok("PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
		  "\"tap0\", \"guest_mac\": \"06:00:AC:10:00:fe\", \"mtu\": 9000, "
		  "\"rx_rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": 1}}}", &req);
	assert_int_equal(req.kind, API_BODY_NET);
	assert_string_equal(req.u.net.iface_id, "eth0");
	assert_string_equal(req.u.net.host_dev_name, "tap0");
	assert_memory_equal(req.u.net.guest_mac, mac, 6);
	assert_int_equal(req.u.net.mtu, 9000);
	assert_true(req.u.net.present & 1u << API_NET_GUEST_MAC);
	assert_int_equal(req.u.net.rx_rate_limiter.ops.size, 1);
	assert_int_equal(req.u.net.tx_rate_limiter.present, 0);
	api_request_free(&req);

	expect_ok("PUT", "/network-interfaces/n", "{\"iface_id\": \"n\", \"host_dev_name\": "
		  "\"tap-fc.123456_\", \"mtu\": 68}", &req);
	assert_false(req.u.net.present & 1u << API_NET_GUEST_MAC);
	api_request_free(&req);

	expect_ok("PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", "
		  "\"tx_rate_limiter\": {\"bandwidth\": {\"size\": 0, \"refill_time\": 0}}}", &req);
	assert_int_equal(req.kind, API_BODY_NET_PATCH);
	assert_int_equal(req.u.net_patch.tx_rate_limiter.present, 1u << API_RL_BANDWIDTH);
	api_request_free(&req);
}

static void test_body_misc(void **state)
{
	struct api_request req;
	static const char *const actions[] = { "FlushMetrics", "InstanceStart", "SendCtrlAltDel" };
	static const uint8_t ip_def[4] = { 169, 254, 169, 254 }, ip_set[4] = { 169, 254, 1, 0 };
	char body[128];

	(void)state;
	for (unsigned i = 0; i < NELEM(actions); i++) {
		snprintf(body, sizeof(body), "{\"action_type\": \"%s\"}", actions[i]);
		expect_ok("PUT", "/actions", body, &req);
		assert_int_equal(req.kind, API_BODY_ACTION);
		assert_int_equal(req.u.action.action_type, i);
		api_request_free(&req);
	}
	expect_ok("PATCH", "/vm", "{\"state\": \"Paused\"}", &req);
	assert_int_equal(req.u.vm.state, API_VM_PAUSED);
	api_request_free(&req);
	expect_ok("PATCH", "/vm", "{\"state\": \"Resumed\"}", &req);
	assert_int_equal(req.u.vm.state, API_VM_RESUMED);
	api_request_free(&req);

	/* Logger.level: "The possible values are case-insensitive." */
	expect_ok("PUT", "/logger", "{\"level\": \"wArNiNg\", \"log_path\": \"/tmp/log.fifo\", "
		  "\"show_level\": true, \"show_log_origin\": true, \"module\": \"api_server::request\"}",
		  &req);
	assert_int_equal(req.u.logger.level, API_LOG_WARNING);
	assert_true(req.u.logger.show_level && req.u.logger.show_log_origin);
	assert_string_equal(req.u.logger.module, "api_server::request");
	api_request_free(&req);
	expect_ok("PUT", "/logger", "{}", &req);
	assert_int_equal(req.u.logger.level, API_LOG_INFO);
	assert_int_equal(req.u.logger.present, 0);
	api_request_free(&req);

	expect_ok("PUT", "/metrics", "{\"metrics_path\": \"/tmp/m\", \"emit_id\": true, "
		  "\"properties\": {\"zone\": \"eu-1\", \"empty\": \"\"}}", &req);
	assert_string_equal(req.u.metrics.metrics_path, "/tmp/m");
	assert_true(req.u.metrics.emit_id);
	assert_int_equal(req.u.metrics.properties.n, 2);
	assert_string_equal(req.u.metrics.properties.v[0].key, "zone");
	assert_string_equal(req.u.metrics.properties.v[0].value, "eu-1");
	assert_string_equal(req.u.metrics.properties.v[1].value, "");
	api_request_free(&req);

	expect_ok("PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\", \"eth1\"]}", &req);
	assert_int_equal(req.u.mmds_config.version, API_MMDS_V1);
	assert_int_equal(req.u.mmds_config.network_interfaces.n, 2);
	assert_string_equal(req.u.mmds_config.network_interfaces.v[1], "eth1");
	assert_memory_equal(req.u.mmds_config.ipv4_address, ip_def, 4);
	api_request_free(&req);
	expect_ok("PUT", "/mmds/config", "{\"version\": \"V2\", \"network_interfaces\": [\"e\"], "
		  "\"ipv4_address\": \"169.254.1.0\", \"imds_compat\": true}", &req);
	assert_int_equal(req.u.mmds_config.version, API_MMDS_V2);
	assert_memory_equal(req.u.mmds_config.ipv4_address, ip_set, 4);
	assert_true(req.u.mmds_config.imds_compat);
	api_request_free(&req);

	expect_ok("PUT", "/entropy", "{\"rate_limiter\": {\"bandwidth\": {\"size\": 10, "
		  "\"refill_time\": 10}}}", &req);
	assert_int_equal(req.u.entropy.rate_limiter.bandwidth.size, 10);
	api_request_free(&req);
	expect_ok("PUT", "/entropy", "{}", &req);
	api_request_free(&req);

	expect_ok("PUT", "/serial", "{\"serial_out_path\": \"/tmp/serial.log\", \"rate_limiter\": "
		  "{\"size\": 4096, \"refill_time\": 10}}", &req);
	assert_string_equal(req.u.serial.serial_out_path, "/tmp/serial.log");
	assert_int_equal(req.u.serial.rate_limiter.size, 4096);
	api_request_free(&req);

	/* MMDS contents: any object, kept as a tree. */
	expect_ok("PUT", "/mmds", "{\"latest\": {\"meta-data\": {\"ami-id\": \"ami-1\", "
		  "\"list\": [1, 2.5, null, true]}}}", &req);
	assert_int_equal(req.kind, API_BODY_MMDS);
	assert_true(json_is_object(req.u.mmds));
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
		req.u.mmds, "latest"), "meta-data"), "ami-id")), "ami-1");
	api_request_free(&req);
	assert_null(req.u.mmds);
	expect_ok("PATCH", "/mmds", "{\"latest\": null}", &req);
	api_request_free(&req);

	/* GET: no body, nothing to free. */
	expect_ok("GET", "/machine-config", NULL, &req);
	assert_int_equal(req.kind, API_BODY_NONE);
	api_request_free(&req);
}

/* ---- invalid bodies ---- */

static const struct bad_body {
	const char *method, *path, *body, *want;
} bad_bodies[] = {
	/* BootSource */
	{ "PUT", "/boot-source", "{\"boot_args\": \"x\"}", "BootSource: missing field `kernel_image_path`" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": null}", "expected a string, got null" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", \"kernel\": \"/k\"}",
	  "BootSource: unknown field `kernel`" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": 7}", "kernel_image_path: expected a string, got an integer" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"\"}", "must not be empty" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\\n\"}", "control character" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\\u007f\"}", "control character" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\\u0000x\"}", "Malformed JSON body" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", \"boot_args\": \"a\\tb\"}",
	  "boot_args: may only contain printable ASCII" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", \"boot_args\": \"\\u00e9\"}",
	  "boot_args: may only contain printable ASCII" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", \"kernel_image_path\": \"/j\"}",
	  "duplicate object key" },
	/* MachineConfiguration */
	{ "PUT", "/machine-config", "{\"vcpu_count\": 2}", "missing field `mem_size_mib`" },
	{ "PUT", "/machine-config", "{\"mem_size_mib\": 128}", "missing field `vcpu_count`" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 128}", "vcpu_count: 0 is out of range [1, 32]" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 33, \"mem_size_mib\": 128}", "out of range [1, 32]" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": -1, \"mem_size_mib\": 128}", "out of range" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 2.0, \"mem_size_mib\": 128}",
	  "vcpu_count: expected an integer, got a number" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": \"2\", \"mem_size_mib\": 128}", "expected an integer, got a string" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": true, \"mem_size_mib\": 128}", "expected an integer, got a boolean" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 0}", "mem_size_mib: 0 is out of range" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 1048577}", "out of range" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 99999999999999999999}",
	  "Malformed JSON body" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 3, \"mem_size_mib\": 128, \"smt\": true}",
	  "only be 1 or an even number when SMT" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 129, \"huge_pages\": \"2M\"}",
	  "multiple of 2" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"huge_pages\": \"1G\"}",
	  "unknown variant `1G`, expected one of None, Transparent, 2M" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"cpu_template\": \"c3\"}",
	  "unknown variant `c3`" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"smt\": 1}",
	  "smt: expected a boolean, got an integer" },
	{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"gdb_socket_path\": \"/s\"}",
	  "unknown field `gdb_socket_path`" },
	{ "PATCH", "/machine-config", "{}", "Empty PATCH request" },
	{ "PATCH", "/machine-config", "{\"smt\": null}", "Empty PATCH request" },
	{ "PATCH", "/machine-config", "{\"vcpu_count\": 64}", "out of range" },
	{ "PATCH", "/machine-config", "{\"vcpus\": 2}", "unknown field `vcpus`" },
	/* Drive */
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"path_on_host\": \"/a\"}", "missing field `is_root_device`" },
	{ "PUT", "/drives/a", "{\"path_on_host\": \"/a\", \"is_root_device\": true}", "missing field `drive_id`" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"is_root_device\": true}", "missing field `path_on_host`" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"b\", \"path_on_host\": \"/a\", \"is_root_device\": true}",
	  "The id from the path does not match the id from the body" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a-\", \"path_on_host\": \"/a\", \"is_root_device\": true}",
	  "drive_id: may only contain alphanumeric" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\": \"yes\"}",
	  "is_root_device: expected a boolean, got a string" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\": true, "
	  "\"partuuid\": \"x root=/dev/sdb\"}", "partuuid: may only contain" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\": true, "
	  "\"cache_type\": \"writeback\"}", "unknown variant `writeback`, expected one of Unsafe, Writeback" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\": true, "
	  "\"io_engine\": \"Uring\"}", "unknown variant" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"is_root_device\": true, \"socket\": \"/vhost.sock\"}",
	  "Drive.socket: vhost-user-block is not supported" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\": true, "
	  "\"rate_limiter\": {\"bandwidth\": {\"size\": 1}}}",
	  "Drive.rate_limiter.bandwidth: missing field `refill_time`" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\": true, "
	  "\"rate_limiter\": {\"bandwidth\": {\"size\": -1, \"refill_time\": 1}}}",
	  "Drive.rate_limiter.bandwidth.size: -1 is out of range" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\": true, "
	  "\"rate_limiter\": {\"bandwidth\": {\"size\": 1, \"refill_time\": 1, \"bucket_size\": 1}}}",
	  "Drive.rate_limiter.bandwidth: unknown field `bucket_size`" },
	{ "PUT", "/drives/a", "{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\": true, "
	  "\"rate_limiter\": []}", "Drive.rate_limiter: expected an object, got an array" },
	{ "PATCH", "/drives/a", "{\"drive_id\": \"a\"}", "nothing to update" },
	{ "PATCH", "/drives/a", "{\"drive_id\": \"b\", \"path_on_host\": \"/b\"}", "does not match" },
	{ "PATCH", "/drives/a", "{\"drive_id\": \"a\", \"is_read_only\": true}", "PartialDrive: unknown field `is_read_only`" },
	/* NetworkInterface */
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"e\"}", "missing field `host_dev_name`" },
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"f\", \"host_dev_name\": \"tap0\"}", "does not match" },
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"e\", \"host_dev_name\": \"tap0123456789abc\"}",
	  "host_dev_name: must be 1 to 15 bytes" },
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"e\", \"host_dev_name\": \"../tap\"}",
	  "not a valid interface name" },
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"e\", \"host_dev_name\": \"..\"}", "must not be" },
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"e\", \"host_dev_name\": \"tap 0\"}", "not a valid" },
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"e\", \"host_dev_name\": \"t\", \"guest_mac\": \"06:00:ac:10:00\"}",
	  "guest_mac: expected a MAC address" },
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"e\", \"host_dev_name\": \"t\", \"guest_mac\": \"06-00-ac-10-00-01\"}",
	  "expected a MAC address" },
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"e\", \"host_dev_name\": \"t\", \"guest_mac\": \"0g:00:ac:10:00:01\"}",
	  "expected a MAC address" },
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"e\", \"host_dev_name\": \"t\", \"mtu\": 67}", "mtu: 67 is out of range [68, 65535]" },
	{ "PUT", "/network-interfaces/e", "{\"iface_id\": \"e\", \"host_dev_name\": \"t\", \"mtu\": 65536}", "out of range" },
	{ "PATCH", "/network-interfaces/e", "{\"iface_id\": \"e\"}", "nothing to update" },
	{ "PATCH", "/network-interfaces/e", "{\"iface_id\": \"e\", \"host_dev_name\": \"t\"}",
	  "PartialNetworkInterface: unknown field `host_dev_name`" },
	/* InstanceActionInfo, Vm */
	{ "PUT", "/actions", "{\"action_type\": \"Reboot\"}",
	  "unknown variant `Reboot`, expected one of FlushMetrics, InstanceStart, SendCtrlAltDel" },
	{ "PUT", "/actions", "{\"action_type\": \"instancestart\"}", "unknown variant" },
	{ "PUT", "/actions", "{}", "InstanceActionInfo: missing field `action_type`" },
	{ "PUT", "/actions", "{\"action_type\": [\"InstanceStart\"]}", "expected a string, got an array" },
	{ "PATCH", "/vm", "{\"state\": \"Running\"}", "unknown variant `Running`, expected one of Paused, Resumed" },
	{ "PATCH", "/vm", "{\"state\": \"Paused\", \"force\": true}", "Vm: unknown field `force`" },
	/* Logger, Metrics */
	{ "PUT", "/logger", "{\"level\": \"Verbose\"}", "unknown variant `Verbose`" },
	{ "PUT", "/logger", "{\"module\": \"a b\"}", "module: may only contain" },
	{ "PUT", "/logger", "{\"log_file\": \"/x\"}", "Logger: unknown field `log_file`" },
	{ "PUT", "/metrics", "{}", "Metrics: missing field `metrics_path`" },
	{ "PUT", "/metrics", "{\"metrics_path\": \"/m\", \"properties\": {\"a\": 1}}",
	  "properties.a: expected a string, got an integer" },
	{ "PUT", "/metrics", "{\"metrics_path\": \"/m\", \"properties\": {\"\": \"v\"}}", "key `` must be" },
	{ "PUT", "/metrics", "{\"metrics_path\": \"/m\", \"properties\": {\"k\\n\\\"\": \"v\"}}", "key `k?\"` must be" },
	{ "PUT", "/metrics", "{\"metrics_path\": \"/m\", \"properties\": {\"k\": \"v\\u0001\"}}", "printable ASCII" },
	{ "PUT", "/metrics", "{\"metrics_path\": \"/m\", \"properties\": [\"a\"]}", "expected an object of strings" },
	/* MmdsConfig */
	{ "PUT", "/mmds/config", "{}", "MmdsConfig: missing field `network_interfaces`" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": []}", "is empty" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": \"eth0\"}", "expected an array of ids" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\", 1]}", "network_interfaces[1]: expected a string" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"eth-0\"]}", "network_interfaces[0]: may only contain" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"e\"], \"version\": \"V3\"}", "unknown variant `V3`" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"e\"], \"ipv4_address\": \"10.0.0.1\"}", "link-local" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"e\"], \"ipv4_address\": \"169.254.0.1\"}", "link-local" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"e\"], \"ipv4_address\": \"169.254.255.1\"}", "link-local" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"e\"], \"ipv4_address\": \"169.254.1.256\"}", "link-local" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"e\"], \"ipv4_address\": \"169.254.01.1\"}", "link-local" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"e\"], \"ipv4_address\": \"169.254.1.1.\"}", "link-local" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"e\"], \"ipv4_address\": \"169.254.1\"}", "link-local" },
	{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"e\"], \"ipv4_address\": \"169.254.1.1000\"}", "link-local" },
	/* EntropyDevice, SerialDevice */
	{ "PUT", "/entropy", "{\"rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": 1.5}}}",
	  "EntropyDevice.rate_limiter.ops.refill_time: expected an integer" },
	{ "PUT", "/entropy", "{\"device\": \"/dev/urandom\"}", "EntropyDevice: unknown field `device`" },
	{ "PUT", "/serial", "{\"rate_limiter\": {\"bandwidth\": {\"size\": 1, \"refill_time\": 1}}}",
	  "SerialDevice.rate_limiter: unknown field `bandwidth`" },
	{ "PUT", "/serial", "{\"serial_out_path\": \"\"}", "must not be empty" },
	/* whole-body rules */
	{ "PUT", "/boot-source", "", "Empty PUT request" },
	{ "PATCH", "/vm", "", "Empty PATCH request" },
	{ "GET", "/version", "{}", "GET request cannot have a body." },
	{ "PUT", "/boot-source", "{", "Malformed JSON body" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": }", "Malformed JSON body" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"} x", "Malformed JSON body" },
	{ "PUT", "/boot-source", "{'kernel_image_path': '/k'}", "Malformed JSON body" },
	{ "PUT", "/boot-source", "   ", "Malformed JSON body" },
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"\xff\"}", "Malformed JSON body" },
	{ "PUT", "/boot-source", "{\"k\xc3\": 1}", "Malformed JSON body" },
	{ "PUT", "/boot-source", "[]", "BootSource: expected a JSON object, got an array" },
	{ "PUT", "/boot-source", "\"/k\"", "expected a JSON object, got a string" },
	{ "PUT", "/boot-source", "null", "expected a JSON object, got null" },
	{ "PUT", "/machine-config", "42", "expected a JSON object, got an integer" },
	{ "PUT", "/mmds", "[1]", "MmdsContentsObject: expected a JSON object, got an array" },
	{ "PATCH", "/mmds", "true", "expected a JSON object" },
	{ "PUT", "/mmds", "{\"a\": 1, \"a\": 2}", "duplicate object key" },
	{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\", \"\xe2\x80\xae\": 1}", "unknown field `???`" },
};

static void test_body_invalid(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(bad_bodies); i++) {
		const struct bad_body *b = &bad_bodies[i];
		struct api_request req;
		struct api_err e = { 0 };
		int ret = parse(b->method, b->path, b->body, &req, &e);

		if (ret != -EINVAL)
			fail_msg("#%zu %s %s %s: got %d (%s)", i, b->method, b->path, b->body, ret,
				 ret ? e.msg : "accepted");
		assert_fault(&e, b->want);
		/* A refused body leaves nothing to free. */
		assert_int_equal(req.kind, API_BODY_NONE);
	}
}

static void test_body_limits(void **state)
{
	struct api_request req;
	struct api_err e = { 0 };
	struct api_route r;
	char *buf = malloc(API_MAX_BODY + 2);
	size_t n;

	(void)state;
	assert_non_null(buf);
	assert_int_equal(route("PUT", "/boot-source", &r, &e), 0);

	/* Exactly API_MAX_BODY bytes is accepted; one more is refused before parsing. */
	n = (size_t)snprintf(buf, API_MAX_BODY, "{\"kernel_image_path\": \"/k\"}");
	memset(buf + n, ' ', API_MAX_BODY - n);
	assert_int_equal(api_parse_body(&r, buf, API_MAX_BODY, API_MAX_BODY, &req, &e), 0);
	api_request_free(&req);
	buf[API_MAX_BODY] = ' ';
	assert_int_equal(api_parse_body(&r, buf, API_MAX_BODY + 1, API_MAX_BODY, &req, &e), -EINVAL);
	assert_fault(&e, "Request payload with size 65537 is larger than the limit of 65536");
	assert_int_equal(api_parse_body(&r, buf, SIZE_MAX, API_MAX_BODY, &req, &e), -EINVAL);

	/* A 4095-byte path is fine, 4096 is not; boot_args at 2047, not 2048. */
	n = (size_t)snprintf(buf, 64, "{\"kernel_image_path\": \"/");
	memset(buf + n, 'p', 4094);
	strcpy(buf + n + 4094, "\"}");
	assert_int_equal(api_parse_body(&r, buf, strlen(buf), API_MAX_BODY, &req, &e), 0);
	assert_int_equal(strlen(req.u.boot.kernel_image_path), 4095);
	api_request_free(&req);
	memset(buf + n, 'p', 4095);
	strcpy(buf + n + 4095, "\"}");
	assert_int_equal(api_parse_body(&r, buf, strlen(buf), API_MAX_BODY, &req, &e), -EINVAL);
	assert_fault(&e, "longer than 4095");

	n = (size_t)snprintf(buf, 64, "{\"kernel_image_path\": \"/k\", \"boot_args\": \"");
	memset(buf + n, 'a', API_BOOT_ARGS_MAX);
	strcpy(buf + n + API_BOOT_ARGS_MAX, "\"}");
	assert_int_equal(api_parse_body(&r, buf, strlen(buf), API_MAX_BODY, &req, &e), 0);
	api_request_free(&req);
	memset(buf + n, 'a', API_BOOT_ARGS_MAX + 1);
	strcpy(buf + n + API_BOOT_ARGS_MAX + 1, "\"}");
	assert_int_equal(api_parse_body(&r, buf, strlen(buf), API_MAX_BODY, &req, &e), -EINVAL);
	assert_fault(&e, "longer than 2047");

	/* NUL inside the body bytes. */
	assert_int_equal(api_parse_body(&r, "{\"kernel_image_path\": \"/k\"}\0", 28, API_MAX_BODY, &req, &e),
			 -EINVAL);
	assert_fault(&e, "Malformed JSON body");
	free(buf);
}

/* depth '[' then depth ']'. */
static char *nested_arrays(unsigned depth)
{
	char *s = malloc(2 * (size_t)depth + 1);

	assert_non_null(s);
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	s[2 * (size_t)depth] = '\0';
	return s;
}

static void test_body_depth(void **state)
{
	struct api_request req;
	struct api_err e = { 0 };
	char *s;
	char body[256];

	(void)state;
	/* Objects nested API_MAX_DEPTH deep are MMDS contents; one more is refused. */
	{
		char *b = malloc(8 * API_MAX_DEPTH + 16), *p = b;

		for (unsigned i = 0; i < API_MAX_DEPTH; i++)
			p += sprintf(p, "{\"a\":");
		p += sprintf(p, "1");
		for (unsigned i = 0; i < API_MAX_DEPTH; i++)
			*p++ = '}';
		*p = '\0';
		expect_ok("PUT", "/mmds", b, &req);
		api_request_free(&req);

		p = b;
		for (unsigned i = 0; i < API_MAX_DEPTH + 1; i++)
			p += sprintf(p, "{\"a\":");
		p += sprintf(p, "1");
		for (unsigned i = 0; i < API_MAX_DEPTH + 1; i++)
			*p++ = '}';
		*p = '\0';
		assert_int_equal(parse("PUT", "/mmds", b, &req, &e), -EINVAL);
		assert_fault(&e, "nested deeper than 32");
		free(b);
	}

	/* Far past jansson's own JSON_PARSER_MAX_DEPTH (2048): refused before it recurses. */
	s = nested_arrays(API_MAX_BODY / 2);
	assert_int_equal(parse("PATCH", "/mmds", s, &req, &e), -EINVAL);
	assert_fault(&e, "nested deeper");
	/* jansson does have that limit (the check this layer does not rely on). */
	{
		json_error_t je;
		json_t *j = json_loads(s, 0, &je);

		assert_null(j);
		assert_int_equal(json_error_code(&je), json_error_stack_overflow);
	}
	free(s);

	/* Unbalanced closers and brackets inside strings do not fool the count. */
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"/%s\"}",
		 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[");
	expect_ok("PUT", "/boot-source", body, &req);
	api_request_free(&req);
	assert_int_equal(parse("PUT", "/boot-source", "}}}}{\"kernel_image_path\":\"/k\"}", &req, &e),
			 -EINVAL);
	assert_fault(&e, "Malformed JSON body");
}

/* ---- faults ---- */

static void test_fault_body(void **state)
{
	static const char msg[] = "bad \"quote\" \\ back\nnew\tline \x01 </script>";
	char *body;
	json_t *j;
	char echo[16];

	(void)state;
	body = api_fault_body(msg);
	assert_non_null(body);
	assert_null(strchr(body, '\n'));
	assert_memory_equal(body, "{\"fault_message\":\"", 18);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(j, "fault_message")), msg);
	json_decref(j);
	free(body);

	/* Not UTF-8: still a valid body, non-ASCII bytes replaced. */
	body = api_fault_body("caf\xc3 \xff ok");
	assert_non_null(body);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "fault_message")), "caf? ? ok");
	json_decref(j);
	free(body);

	body = api_fault_body(NULL);
	assert_string_equal(body, "{\"fault_message\":\"\"}");
	free(body);

	assert_string_equal(api_echo(echo, sizeof(echo), "ab\ncd", 5, 64), "ab?cd");
	assert_string_equal(api_echo(echo, sizeof(echo), "abcdefgh", 8, 4), "abcd...");
	assert_string_equal(api_echo(echo, 4, "abcdefgh", 8, 64), "abc");
	assert_string_equal(api_echo(echo, sizeof(echo), "", 0, 64), "");
}

/* ---- phase rules ---- */

static void test_phase(void **state)
{
	static const struct {
		enum api_endpoint ep;
		enum api_method m;
		bool pre, post;
	} rules[] = {
		{ API_EP_ROOT, API_GET, true, true },
		{ API_EP_ACTIONS, API_PUT, true, true },
		{ API_EP_BOOT_SOURCE, API_PUT, true, false },
		{ API_EP_MACHINE_CONFIG, API_GET, true, true },
		{ API_EP_MACHINE_CONFIG, API_PUT, true, false },
		{ API_EP_MACHINE_CONFIG, API_PATCH, true, false },
		{ API_EP_DRIVES, API_PUT, true, false },
		{ API_EP_DRIVES, API_PATCH, false, true },
		{ API_EP_NETWORK_IFACES, API_PUT, true, false },
		{ API_EP_NETWORK_IFACES, API_PATCH, false, true },
		{ API_EP_LOGGER, API_PUT, true, false },
		{ API_EP_METRICS, API_PUT, true, false },
		{ API_EP_MMDS, API_GET, true, true },
		{ API_EP_MMDS, API_PUT, true, true },
		{ API_EP_MMDS, API_PATCH, true, true },
		{ API_EP_MMDS_CONFIG, API_PUT, true, false },
		{ API_EP_ENTROPY, API_PUT, true, false },
		{ API_EP_SERIAL, API_PUT, true, false },
		{ API_EP_VM, API_PATCH, false, true },
		{ API_EP_VM_CONFIG, API_GET, true, true },
		{ API_EP_VERSION, API_GET, true, true },
	};
	const char *why;
	unsigned pairs = 0;

	(void)state;
	for (size_t i = 0; i < NELEM(rules); i++) {
		why = NULL;
		assert_int_equal(api_check_phase(rules[i].ep, rules[i].m, false, &why),
				 rules[i].pre ? 0 : -EPERM);
		if (!rules[i].pre)
			assert_string_equal(why, "The requested operation is not supported before "
					    "starting the microVM.");
		why = NULL;
		assert_int_equal(api_check_phase(rules[i].ep, rules[i].m, true, &why),
				 rules[i].post ? 0 : -EPERM);
		if (!rules[i].post)
			assert_string_equal(why, "The requested operation is not supported after "
					    "starting the microVM.");
	}
	/* Every pair the router accepts has a rule here, and no other pair does. */
	for (int ep = 0; ep < API_EP_COUNT; ep++) {
		for (int m = 0; m < API_METHOD_COUNT; m++) {
			bool in_rules = false;

			for (size_t i = 0; i < NELEM(rules); i++)
				in_rules |= rules[i].ep == (enum api_endpoint)ep &&
					    rules[i].m == (enum api_method)m;
			if (in_rules)
				pairs++;
			else
				assert_int_equal(api_check_phase(ep, m, false, &why), -EINVAL);
		}
	}
	assert_int_equal(pairs, NELEM(good_routes));
	assert_int_equal(api_check_phase(API_EP_COUNT, API_GET, false, &why), -EINVAL);
	assert_int_equal(api_check_phase(API_EP_ROOT, API_METHOD_COUNT, false, NULL), -EINVAL);

	assert_int_equal(api_check_action_phase(API_ACTION_INSTANCE_START, false, &why), 0);
	assert_int_equal(api_check_action_phase(API_ACTION_INSTANCE_START, true, &why), -EPERM);
	assert_string_equal(why, "The requested operation is not supported after starting the microVM.");
	assert_int_equal(api_check_action_phase(API_ACTION_SEND_CTRL_ALT_DEL, false, &why), -EPERM);
	assert_string_equal(why, "The requested operation is not supported before starting the microVM.");
	assert_int_equal(api_check_action_phase(API_ACTION_SEND_CTRL_ALT_DEL, true, NULL), 0);
	assert_int_equal(api_check_action_phase(API_ACTION_FLUSH_METRICS, false, NULL), 0);
	assert_int_equal(api_check_action_phase(API_ACTION_FLUSH_METRICS, true, NULL), 0);
	assert_int_equal(api_check_action_phase((enum api_action_type)99, true, &why), -EINVAL);
}

/* ---- machine config PATCH and vm_config mapping ---- */

static void test_machine_patch(void **state)
{
	struct api_machine_config cur = { .vcpu_count = 2, .mem_size_mib = 256, .smt = true };
	struct api_request req;
	struct api_err e = { 0 };

	(void)state;
	/* 3 vCPUs with smt already on: the merged config is refused, cur unchanged. */
	expect_ok("PATCH", "/machine-config", "{\"vcpu_count\": 3}", &req);
	assert_int_equal(api_machine_config_patch(&cur, &req.u.machine, &e), -EINVAL);
	assert_fault(&e, "SMT");
	assert_int_equal(cur.vcpu_count, 2);
	api_request_free(&req);

	expect_ok("PATCH", "/machine-config", "{\"vcpu_count\": 3, \"smt\": false}", &req);
	assert_int_equal(api_machine_config_patch(&cur, &req.u.machine, &e), 0);
	assert_int_equal(cur.vcpu_count, 3);
	assert_false(cur.smt);
	assert_int_equal(cur.mem_size_mib, 256);
	api_request_free(&req);

	expect_ok("PATCH", "/machine-config", "{\"mem_size_mib\": 255, \"huge_pages\": \"Transparent\"}", &req);
	assert_int_equal(api_machine_config_patch(&cur, &req.u.machine, &e), 0);
	assert_int_equal(cur.huge_pages, API_HUGE_PAGES_TRANSPARENT);
	assert_int_equal(cur.mem_size_mib, 255);
	api_request_free(&req);

	expect_ok("PATCH", "/machine-config", "{\"huge_pages\": \"2M\"}", &req);
	assert_int_equal(api_machine_config_patch(&cur, &req.u.machine, &e), -EINVAL);
	assert_fault(&e, "multiple of 2");
	assert_int_equal(cur.huge_pages, API_HUGE_PAGES_TRANSPARENT);
	api_request_free(&req);

	{
		struct api_machine_config empty = { 0 };

		assert_int_equal(api_machine_config_patch(&cur, &empty, &e), -EINVAL);
		assert_fault(&e, "Empty PATCH");
	}
}

static void test_apply_config(void **state)
{
	struct api_request bs, mc;
	struct api_err e = { 0 };
	struct vm_config cfg = { .ncpus = 7, .mem_bytes = 1, .cmdline = "keep" };
	struct vm_config orig;

	(void)state;
	expect_ok("PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", \"boot_args\": "
		  "\"console=ttyS0\", \"initrd_path\": \"/i\"}", &bs);
	expect_ok("PUT", "/machine-config", "{\"vcpu_count\": 4, \"mem_size_mib\": 512, "
		  "\"huge_pages\": \"Transparent\"}", &mc);
	assert_int_equal(api_apply_config(&bs.u.boot, &mc.u.machine, &cfg, &e), 0);
	assert_string_equal(cfg.kernel_path, "/k");
	assert_string_equal(cfg.initrd_path, "/i");
	assert_string_equal(cfg.cmdline, "console=ttyS0");
	assert_ptr_equal(cfg.kernel_path, bs.u.boot.kernel_image_path);   /* borrowed */
	assert_int_equal(cfg.ncpus, 4);
	assert_int_equal(cfg.mem_bytes, 512ull << 20);
	assert_int_equal(cfg.backing, MEM_BACKING_THP);
	api_request_free(&mc);

	/* No machine config: Firecracker's defaults, 1 vCPU and 128 MiB. */
	assert_int_equal(api_apply_config(&bs.u.boot, NULL, &cfg, &e), 0);
	assert_int_equal(cfg.ncpus, 1);
	assert_int_equal(cfg.mem_bytes, 128ull << 20);
	assert_int_equal(cfg.backing, MEM_BACKING_MEMFD);

	expect_ok("PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 1024, "
		  "\"huge_pages\": \"2M\"}", &mc);
	assert_int_equal(api_apply_config(&bs.u.boot, &mc.u.machine, &cfg, &e), 0);
	assert_int_equal(cfg.backing, MEM_BACKING_HUGETLB);
	assert_int_equal(cfg.mem_bytes, 1ull << 30);
	api_request_free(&mc);

	/* What kiln cannot honour is refused, and cfg is left as it was. */
	static const char *const unsupported[] = {
		"{\"vcpu_count\": 2, \"mem_size_mib\": 128, \"smt\": true}",
		"{\"vcpu_count\": 2, \"mem_size_mib\": 128, \"track_dirty_pages\": true}",
		"{\"vcpu_count\": 2, \"mem_size_mib\": 128, \"cpu_template\": \"T2\"}",
	};
	orig = cfg;
	for (size_t i = 0; i < NELEM(unsupported); i++) {
		expect_ok("PUT", "/machine-config", unsupported[i], &mc);
		assert_int_equal(api_apply_config(&bs.u.boot, &mc.u.machine, &cfg, &e), -EINVAL);
		assert_fault(&e, "MachineConfiguration.");
		assert_memory_equal(&cfg, &orig, sizeof(cfg));
		api_request_free(&mc);
	}
	{
		struct api_machine_config bad = { .vcpu_count = 0, .mem_size_mib = 128 };

		assert_int_equal(api_apply_config(&bs.u.boot, &bad, &cfg, &e), -EINVAL);
		bad.vcpu_count = 1;
		bad.mem_size_mib = 1ull << 50;
		assert_int_equal(api_apply_config(&bs.u.boot, &bad, &cfg, &e), -EINVAL);
		assert_memory_equal(&cfg, &orig, sizeof(cfg));
	}

	/* No boot source: Firecracker's MissingKernelConfig. */
	assert_int_equal(api_apply_config(NULL, NULL, &cfg, &e), -EINVAL);
	assert_fault(&e, "without kernel configuration");

	/* The boot source moved out of its request and freed on its own. */
	{
		struct api_boot_source kept = bs.u.boot;

		memset(&bs.u, 0, sizeof(bs.u));
		api_request_free(&bs);
		assert_int_equal(api_apply_config(&kept, NULL, &cfg, &e), 0);
		assert_null(cfg.initrd_path ? NULL : "initrd lost");
		api_boot_source_free(&kept);
		assert_null(kept.kernel_image_path);
		assert_int_equal(api_apply_config(&kept, NULL, &cfg, &e), -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_table),
		cmocka_unit_test(test_route_wrong_method),
		cmocka_unit_test(test_route_bad_paths),
		cmocka_unit_test(test_route_ids),
		cmocka_unit_test(test_body_boot_source),
		cmocka_unit_test(test_body_machine_config),
		cmocka_unit_test(test_body_drive),
		cmocka_unit_test(test_body_net),
		cmocka_unit_test(test_body_misc),
		cmocka_unit_test(test_body_invalid),
		cmocka_unit_test(test_body_limits),
		cmocka_unit_test(test_body_depth),
		cmocka_unit_test(test_fault_body),
		cmocka_unit_test(test_phase),
		cmocka_unit_test(test_machine_patch),
		cmocka_unit_test(test_apply_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
