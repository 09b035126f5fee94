/* Unit tests for the API's VMM side: pre-boot store, InstanceStart's vm_config, phases, pause state, config file, metrics. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <jansson.h>
#include <arpa/inet.h>
#include "api/api_vmm.h"
#include "core/log.h"

/* What the fake VM saw. */
struct fake {
	int starts, pauses, resumes, cads, metrics_calls;
	int start_ret, pause_ret, cad_ret;
	struct vm_config cfg;      /* the last start's */
	char cmdline[4096];
	char disk_paths[VM_MAX_DISKS][256];
};

static int f_start(void *o, const struct vm_config *cfg, struct api_err *err)
{
	struct fake *f = o;

	f->starts++;
	if (f->start_ret) {
		api_err_set(err, 400, "fake start failed");
		return f->start_ret;
	}
	f->cfg = *cfg;
	snprintf(f->cmdline, sizeof(f->cmdline), "%s", cfg->cmdline ? cfg->cmdline : "(null)");
	return 0;
}

static int f_pause(void *o, struct api_err *err)
{
	struct fake *f = o;

	f->pauses++;
	if (f->pause_ret)
		api_err_set(err, 500, "fake pause failed");
	return f->pause_ret;
}

static int f_resume(void *o, struct api_err *err)
{
	(void)err;
	((struct fake *)o)->resumes++;
	return 0;
}

static int f_cad(void *o, struct api_err *err)
{
	struct fake *f = o;

	f->cads++;
	if (f->cad_ret)
		api_err_set(err, 400, "keyboard disabled");
	return f->cad_ret;
}

static void f_metrics(void *o, json_t *line)
{
	((struct fake *)o)->metrics_calls++;
	json_object_set_new(line, "vcpus", json_pack("[{sisi}]", "id", 0, "exits_total", 42));
}

static const struct api_vmm_ops fops = {
	.start = f_start, .pause = f_pause, .resume = f_resume, .ctrl_alt_del = f_cad,
	.metrics = f_metrics,
};

struct ctx {
	struct api_vmm v;
	struct fake f;
	struct vm_config base;
	char dir[64];
	char kernel[128], initrd[128], disk[128], disk2[128];
	char sysnet[128];          /* a fake /sys/class/net: tap0, tap1 (taps), mq0 (multi_queue), tun0, lo */
};

/* A fake host interface: a directory, with a tun_flags file unless flags is NULL. */
static void fake_iface(const struct ctx *c, const char *name, const char *flags)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", c->sysnet, name);
	assert_int_equal(mkdir(p, 0755), 0);
	if (!flags)
		return;
	snprintf(p, sizeof(p), "%s/%s/tun_flags", c->sysnet, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", flags);
	fclose(f);
}

static void touch(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	snprintf(c->dir, sizeof(c->dir), "/tmp/kiln-test-api-vmm.XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(c->kernel, sizeof(c->kernel), "%s/vmlinux", c->dir);
	snprintf(c->initrd, sizeof(c->initrd), "%s/initrd", c->dir);
	snprintf(c->disk, sizeof(c->disk), "%s/disk.img", c->dir);
	snprintf(c->disk2, sizeof(c->disk2), "%s/disk2.img", c->dir);
	touch(c->kernel, 4096);
	touch(c->initrd, 4096);
	touch(c->disk, 1 << 20);
	touch(c->disk2, 1 << 20);
	c->base.ncpus = 1;
	c->base.mem_bytes = 256ull << 20;
	c->base.console = CONSOLE_STDIO;
	c->base.compat = -1;
	snprintf(c->sysnet, sizeof(c->sysnet), "%s/sysnet", c->dir);
	assert_int_equal(mkdir(c->sysnet, 0755), 0);
	fake_iface(c, "tap0", "0x1002");     /* IFF_TAP | IFF_NO_PI */
	fake_iface(c, "tap1", "0x5002");     /* ... | IFF_VNET_HDR */
	fake_iface(c, "mq0", "0x1102");      /* ... | IFF_MULTI_QUEUE */
	fake_iface(c, "tun0", "0x1001");     /* IFF_TUN */
	fake_iface(c, "lo", NULL);
	assert_int_equal(api_vmm_init(&c->v, &c->base, "vm-1", &fops, &c->f), 0);
	c->v.sys_net = c->sysnet;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	char cmd[128];

	api_vmm_destroy(&c->v);
	log_set_sink(-1, NULL, false, false, NULL);
	log_set_level(LOG_WARN);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", c->dir);
	assert_int_equal(system(cmd), 0);
	free(c);
	return 0;
}

/* A request that must succeed; returns the GET body (caller frees) or NULL. */
static char *ok(struct ctx *c, const char *m, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static char *ok(struct ctx *c, const char *m, const char *path, const char *fmt, ...)
{
	struct api_err e = { 0 };
	static char body[API_MAX_BODY + 1];   /* MMDS bodies up to the API's limit */
	char *out = NULL;
	va_list ap;
	int ret;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(body, sizeof(body), fmt, ap);
		va_end(ap);
	}
	ret = api_vmm_request(&c->v, m, path, fmt ? body : NULL, fmt ? strlen(body) : 0, &out, &e);
	if (ret)
		fail_msg("%s %s %s: %d %d %s", m, path, fmt ? body : "", ret, e.status, e.msg);
	return out;
}

/* A request that must fail with `status` and a message containing want. */
static void bad(struct ctx *c, int status, const char *want, const char *m, const char *path,
		const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void bad(struct ctx *c, int status, const char *want, const char *m, const char *path,
		const char *fmt, ...)
{
	struct api_err e = { 0 };
	static char body[API_MAX_BODY + 1];   /* MMDS bodies up to the API's limit */
	char *out = NULL;
	va_list ap;
	int ret;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(body, sizeof(body), fmt, ap);
		va_end(ap);
	}
	ret = api_vmm_request(&c->v, m, path, fmt ? body : NULL, fmt ? strlen(body) : 0, &out, &e);
	if (!ret)
		fail_msg("%s %s %s: succeeded, wanted %d \"%s\"", m, path, fmt ? body : "", status, want);
	assert_null(out);
	assert_int_equal(e.status, status);
	if (!strstr(e.msg, want))
		fail_msg("%s %s: \"%s\" lacks \"%s\"", m, path, e.msg, want);
}

static json_t *get_json(struct ctx *c, const char *path)
{
	char *s = ok(c, "GET", path, NULL);
	json_t *j;

	assert_non_null(s);
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	free(s);
	return j;
}

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static json_int_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static void test_defaults(void **state)
{
	struct ctx *c = *state;
	json_t *j;

	j = get_json(c, "/");
	assert_string_equal(jstr(j, "app_name"), "kiln");
	assert_string_equal(jstr(j, "id"), "vm-1");
	assert_string_equal(jstr(j, "state"), "Not started");
	assert_string_equal(jstr(j, "vmm_version"), KILN_VERSION);
	json_decref(j);
	j = get_json(c, "/machine-config");
	assert_int_equal(jint(j, "vcpu_count"), 1);
	assert_int_equal(jint(j, "mem_size_mib"), 128);
	assert_string_equal(jstr(j, "huge_pages"), "None");
	assert_null(json_object_get(j, "cpu_template"));
	json_decref(j);
	j = get_json(c, "/version");
	assert_string_equal(jstr(j, "firecracker_version"), KILN_VERSION);
	json_decref(j);
	/* Nothing configured: InstanceStart is Firecracker's MissingKernelConfig, no VM op. */
	bad(c, 400, "without kernel configuration", "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	assert_int_equal(c->f.starts, 0);
	/* Instance ids. */
	assert_int_equal(api_check_instance_id("a-B-9"), 0);
	assert_int_equal(api_check_instance_id(""), -EINVAL);
	assert_int_equal(api_check_instance_id("a_b"), -EINVAL);
	assert_int_equal(api_check_instance_id("a/b"), -EINVAL);
	{
		char id[80];
		memset(id, 'a', sizeof(id) - 1);
		id[sizeof(id) - 1] = '\0';
		assert_int_equal(api_check_instance_id(id), -EINVAL);
		id[64] = '\0';
		assert_int_equal(api_check_instance_id(id), 0);
	}
}

/* Every PUT lands in the vm_config InstanceStart hands to the VM. */
static void test_start_config(void **state)
{
	struct ctx *c = *state;
	const struct vm_config *cfg = &c->f.cfg;

	ok(c, "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\",\"initrd_path\":\"%s\","
	   "\"boot_args\":\"console=ttyS0 quiet\"}", c->kernel, c->initrd);
	ok(c, "PUT", "/machine-config", "{\"vcpu_count\":4,\"mem_size_mib\":512,\"huge_pages\":\"Transparent\"}");
	ok(c, "PATCH", "/machine-config", "{\"vcpu_count\":2}");
	/* Data drive first, root second: the root becomes vda all the same. */
	ok(c, "PUT", "/drives/data_disk_with_a_long_name", "{\"drive_id\":\"data_disk_with_a_long_name\","
	   "\"path_on_host\":\"%s\",\"is_root_device\":false,\"is_read_only\":true,\"io_engine\":\"Sync\"}",
	   c->disk2);
	ok(c, "PUT", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\","
	   "\"is_root_device\":true}", c->disk);
	/* PUT on an existing id replaces it (no third drive). */
	ok(c, "PUT", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\","
	   "\"is_root_device\":true,\"is_read_only\":true}", c->disk);
	ok(c, "PUT", "/entropy", "{}");
	ok(c, "PUT", "/serial", "{\"serial_out_path\":\"%s/serial.log\"}", c->dir);
	ok(c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	assert_int_equal(c->f.starts, 1);
	assert_string_equal(cfg->kernel_path, c->kernel);
	assert_string_equal(cfg->initrd_path, c->initrd);
	assert_int_equal(cfg->ncpus, 2);
	assert_int_equal(cfg->mem_bytes, 512ull << 20);
	assert_int_equal(cfg->backing, MEM_BACKING_THP);
	/* Firecracker's root device on the command line, read-only as the drive. */
	assert_string_equal(c->f.cmdline, "console=ttyS0 quiet root=/dev/vda ro");
	assert_int_equal(cfg->ndisks, 2);
	assert_string_equal(cfg->disks[0].path, c->disk);
	assert_true(cfg->disks[0].readonly);
	assert_string_equal(cfg->disks[0].serial, "rootfs");
	assert_false(cfg->disks[0].sync_io);
	assert_string_equal(cfg->disks[1].path, c->disk2);
	assert_true(cfg->disks[1].sync_io);
	assert_string_equal(cfg->disks[1].serial, "data_disk_with_a_lon");   /* VIRTIO_BLK_ID_BYTES */
	assert_true(cfg->rng);
	assert_int_equal(cfg->console, CONSOLE_FILE);
	assert_non_null(strstr(cfg->console_path, "serial.log"));
	assert_int_equal(c->v.state, API_STATE_RUNNING);
	/* Strings handed to the VM stay valid: they belong to the store. */
	assert_ptr_equal(cfg->kernel_path, c->v.boot.u.boot.kernel_image_path);
}

static void test_start_cmdline_default_and_partuuid(void **state)
{
	struct ctx *c = *state;

	ok(c, "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\"}", c->kernel);
	ok(c, "PUT", "/drives/r", "{\"drive_id\":\"r\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
	   "\"partuuid\":\"0eaa91a0-01\"}", c->disk);
	bad(c, 400, "root block device already exists", "PUT", "/drives/s",
	    "{\"drive_id\":\"s\",\"path_on_host\":\"%s\",\"is_root_device\":true}", c->disk);
	ok(c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	/* No boot_args: kiln's default, then the root. */
	assert_string_equal(c->f.cmdline, "console=ttyS0 reboot=k panic=-1 root=PARTUUID=0eaa91a0-01 rw");
}

static void test_start_no_drives_keeps_cmdline(void **state)
{
	struct ctx *c = *state;

	ok(c, "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\"}", c->kernel);
	ok(c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	assert_null(c->f.cfg.cmdline);   /* the loader picks its default */
	assert_int_equal(c->f.cfg.ndisks, 0);
	assert_false(c->f.cfg.rng);
	assert_int_equal(c->f.cfg.console, CONSOLE_STDIO);
	assert_int_equal(c->f.cfg.ncpus, 1);
	assert_int_equal(c->f.cfg.mem_bytes, 128ull << 20);
}

static void test_start_failure_then_retry(void **state)
{
	struct ctx *c = *state;
	json_t *j;

	ok(c, "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\"}", c->kernel);
	c->f.start_ret = -EIO;
	bad(c, 400, "fake start failed", "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	j = get_json(c, "/");
	assert_string_equal(jstr(j, "state"), "Not started");
	json_decref(j);
	/* Still pre-boot: the client may fix the configuration and try again. */
	ok(c, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":64}");
	c->f.start_ret = 0;
	ok(c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	assert_int_equal(c->f.starts, 2);
	assert_int_equal(c->f.cfg.mem_bytes, 64ull << 20);
}

static void test_preboot_refusals(void **state)
{
	struct ctx *c = *state;

	bad(c, 400, "No such file", "PUT", "/boot-source", "{\"kernel_image_path\":\"%s/none\"}", c->dir);
	bad(c, 400, "not a regular file", "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\"}", c->dir);
	bad(c, 400, "initrd_path", "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\","
	    "\"initrd_path\":\"%s/none\"}", c->kernel, c->dir);
	bad(c, 400, "No such file", "PUT", "/drives/d", "{\"drive_id\":\"d\",\"path_on_host\":\"%s/x\","
	    "\"is_root_device\":false}", c->dir);
	bad(c, 400, "rate limiters", "PUT", "/drives/d", "{\"drive_id\":\"d\",\"path_on_host\":\"%s\","
	    "\"is_root_device\":false,\"rate_limiter\":{\"ops\":{\"size\":1,\"refill_time\":1}}}", c->disk);
	bad(c, 400, "cpu_template", "PUT", "/machine-config",
	    "{\"vcpu_count\":1,\"mem_size_mib\":128,\"cpu_template\":\"T2\"}");
	bad(c, 400, "track_dirty_pages", "PATCH", "/machine-config", "{\"track_dirty_pages\":true}");
	bad(c, 400, "host_dev_name", "PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\"}");
	bad(c, 400, "does not correspond", "PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"]}");
	bad(c, 400, "rate limiters", "PUT", "/serial", "{\"rate_limiter\":{\"size\":1,\"refill_time\":1}}");
	bad(c, 400, "not supported before starting", "PATCH", "/vm", "{\"state\":\"Paused\"}");
	bad(c, 400, "not supported before starting", "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}");
	bad(c, 400, "No metrics file", "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}");
	bad(c, 400, "does not implement", "PUT", "/balloon", "{}");
	bad(c, 400, "The ID cannot be empty", "PUT", "/drives/", "{}");
	assert_int_equal(c->f.starts + c->f.pauses + c->f.cads, 0);
	/* At most VM_MAX_DISKS drives, with the command line's. */
	c->v.base.ndisks = VM_MAX_DISKS - 1;
	ok(c, "PUT", "/drives/a", "{\"drive_id\":\"a\",\"path_on_host\":\"%s\",\"is_root_device\":false}", c->disk);
	bad(c, 400, "at most 16 drives", "PUT", "/drives/b",
	    "{\"drive_id\":\"b\",\"path_on_host\":\"%s\",\"is_root_device\":false}", c->disk);
	ok(c, "PUT", "/drives/a", "{\"drive_id\":\"a\",\"path_on_host\":\"%s\",\"is_root_device\":false}", c->disk);
	c->v.base.ndisks = 0;
	/* A root device whose command line would exceed COMMAND_LINE_SIZE. */
	{
		char *args = malloc(API_BOOT_ARGS_MAX + 1);
		memset(args, 'x', API_BOOT_ARGS_MAX - 4);
		args[API_BOOT_ARGS_MAX - 4] = '\0';
		ok(c, "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"}", c->kernel, args);
		ok(c, "PUT", "/drives/a", "{\"drive_id\":\"a\",\"path_on_host\":\"%s\",\"is_root_device\":true}", c->disk);
		bad(c, 400, "longer than 2047", "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
		assert_int_equal(c->f.starts, 0);
		free(args);
	}
}

static void test_postboot(void **state)
{
	struct ctx *c = *state;
	json_t *j;

	ok(c, "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\"}", c->kernel);
	ok(c, "PUT", "/drives/d", "{\"drive_id\":\"d\",\"path_on_host\":\"%s\",\"is_root_device\":false}", c->disk);
	ok(c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	bad(c, 400, "not supported after starting", "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	bad(c, 400, "not supported after starting", "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\"}", c->kernel);
	bad(c, 400, "not supported after starting", "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}");
	bad(c, 400, "not supported after starting", "PATCH", "/machine-config", "{\"vcpu_count\":1}");
	bad(c, 400, "not supported after starting", "PUT", "/drives/e",
	    "{\"drive_id\":\"e\",\"path_on_host\":\"%s\",\"is_root_device\":false}", c->disk);
	bad(c, 400, "not supported after starting", "PUT", "/logger", "{\"level\":\"Info\"}");
	bad(c, 400, "Invalid block device ID", "PATCH", "/drives/x", "{\"drive_id\":\"x\",\"path_on_host\":\"%s\"}", c->disk);
	bad(c, 400, "cannot update a drive", "PATCH", "/drives/d", "{\"drive_id\":\"d\",\"path_on_host\":\"%s\"}", c->disk);
	assert_int_equal(c->f.starts, 1);

	/* Pause / resume: ops once per change, idempotent otherwise, state in GET /. */
	ok(c, "PATCH", "/vm", "{\"state\":\"Paused\"}");
	ok(c, "PATCH", "/vm", "{\"state\":\"Paused\"}");
	assert_int_equal(c->f.pauses, 1);
	j = get_json(c, "/");
	assert_string_equal(jstr(j, "state"), "Paused");
	json_decref(j);
	ok(c, "PATCH", "/vm", "{\"state\":\"Resumed\"}");
	ok(c, "PATCH", "/vm", "{\"state\":\"Resumed\"}");
	assert_int_equal(c->f.resumes, 1);
	j = get_json(c, "/");
	assert_string_equal(jstr(j, "state"), "Running");
	json_decref(j);
	/* A pause that fails leaves the state Running. */
	c->f.pause_ret = -ETIMEDOUT;
	bad(c, 500, "fake pause failed", "PATCH", "/vm", "{\"state\":\"Paused\"}");
	assert_int_equal(c->v.state, API_STATE_RUNNING);
	c->f.pause_ret = 0;
	bad(c, 400, "Paused", "PATCH", "/vm", "{\"state\":\"paused\"}");   /* enum values are exact */

	ok(c, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}");
	assert_int_equal(c->f.cads, 1);
	c->f.cad_ret = -EAGAIN;
	bad(c, 400, "keyboard disabled", "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}");

	/* GETs still work after boot; the configuration is what booted. */
	j = get_json(c, "/vm/config");
	assert_int_equal(json_array_size(json_object_get(j, "drives")), 1);
	json_decref(j);

	/* Once stopped, nothing reaches the VM. */
	api_vmm_stopped(&c->v);
	bad(c, 400, "has stopped", "PATCH", "/vm", "{\"state\":\"Paused\"}");
	bad(c, 400, "has stopped", "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}");
	assert_int_equal(c->f.pauses, 2);
	assert_int_equal(c->f.cads, 2);
}


/* RFC 7396 Appendix A, every example: target, patch, result. */
static void test_merge_patch(void **state)
{
	static const char *const t[][3] = {
		{ "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
		{ "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}" },
		{ "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
		{ "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}" },
		{ "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}" },
		{ "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]" },
		{ "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]" },
		{ "{\"a\":\"foo\"}", "null", "null" },
		{ "{\"a\":\"foo\"}", "\"bar\"", "\"bar\"" },
		{ "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
		{ "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
		{ "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		json_t *target = json_loads(t[i][0], JSON_DECODE_ANY, NULL);
		json_t *patch = json_loads(t[i][1], JSON_DECODE_ANY, NULL);
		json_t *want = json_loads(t[i][2], JSON_DECODE_ANY, NULL);
		json_t *got;

		assert_non_null(target);
		assert_non_null(patch);
		got = api_json_merge_patch(target, patch);
		if (!json_equal(got, want)) {
			char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
			fail_msg("example %zu: got %s, want %s", i, g, t[i][2]);
		}
		json_decref(got);
		json_decref(patch);
		json_decref(want);
	}
	/* A NULL target is an absent one. */
	{
		json_t *patch = json_pack("{s{si}}", "a", "b", 1), *got = api_json_merge_patch(NULL, patch);
		assert_true(json_equal(got, patch));
		json_decref(got);
		json_decref(patch);
	}
}

/* What the guest's metadata server answers for path (JSON), from the API's store. */
static char *guest_get(struct ctx *c, const char *path, int *status)
{
	struct mmds_request rq = { .method = MMDS_GET, .path = path, .accept_json = true };
	struct mmds_response rsp;
	char *b;

	mmds_handle(&c->v.mmds, &rq, 1000, &rsp);
	*status = rsp.status;
	b = strndup(rsp.body ? rsp.body : "", rsp.body_len);
	free(rsp.body);
	return b;
}

static void test_mmds_store(void **state)
{
	struct ctx *c = *state;
	char *s, *big;
	int st;
	size_t n = MMDS_SIZE_LIMIT_DEFAULT;

	s = ok(c, "GET", "/mmds", NULL);
	assert_string_equal(s, "{}");
	free(s);
	bad(c, 400, "not initialized", "PATCH", "/mmds", "{\"a\":1}");
	bad(c, 400, "expected a JSON object", "PUT", "/mmds", "[1]");
	bad(c, 400, "Malformed JSON", "PUT", "/mmds", "{\"a\":");
	ok(c, "PUT", "/mmds", "{\"a\":{\"b\":\"c\",\"d\":1},\"e\":\"f\"}");
	s = ok(c, "GET", "/mmds", NULL);
	assert_string_equal(s, "{\"a\":{\"b\":\"c\",\"d\":1},\"e\":\"f\"}");
	free(s);
	/* Merge: null deletes (deep too), new keys are added, objects merge. */
	ok(c, "PATCH", "/mmds", "{\"a\":{\"b\":null,\"x\":[1]},\"e\":null,\"g\":\"h\"}");
	s = ok(c, "GET", "/mmds", NULL);
	assert_string_equal(s, "{\"a\":{\"d\":1,\"x\":[1]},\"g\":\"h\"}");
	free(s);
	/* The guest sees the same store. */
	s = guest_get(c, "/g", &st);
	assert_int_equal(st, 200);
	assert_string_equal(s, "\"h\"");
	free(s);
	s = guest_get(c, "/e", &st);
	assert_int_equal(st, 404);
	free(s);

	/* The size limit: a PUT or a PATCH that would leave more is refused (413), the store unchanged. */
	big = malloc(n + 64);
	snprintf(big, n + 64, "{\"k\":\"%0*d\"}", (int)(n - 7), 0);   /* exactly n + 1 bytes */
	assert_int_equal(strlen(big), n + 1);
	bad(c, 413, "doesn't fit", "PUT", "/mmds", "%s", big);
	snprintf(big, n + 64, "{\"k\":\"%0*d\"}", (int)(n - 8), 0);   /* exactly n: fits */
	ok(c, "PUT", "/mmds", "%s", big);
	bad(c, 413, "doesn't fit", "PATCH", "/mmds", "{\"z\":1}");
	s = ok(c, "GET", "/mmds", NULL);
	assert_string_equal(s, big);
	free(s);
	free(big);
	ok(c, "PUT", "/mmds", "{}");

	/* MmdsConfig sets the store's version, address and format; GET /vm/config shows it. */
	ok(c, "PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}");
	bad(c, 400, "is empty", "PUT", "/mmds/config", "{\"network_interfaces\":[]}");
	bad(c, 400, "link-local", "PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"],"
	    "\"ipv4_address\":\"10.0.0.1\"}");
	bad(c, 400, "does not correspond to any existing network interface: eth9", "PUT", "/mmds/config",
	    "{\"network_interfaces\":[\"eth0\",\"eth9\"]}");
	ok(c, "PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"],\"version\":\"V2\","
	   "\"ipv4_address\":\"169.254.1.2\",\"imds_compat\":true}");
	assert_int_equal(c->v.mmds.version, MMDS_V2);
	assert_int_equal(c->v.mmds.addr, htonl(0xa9fe0102));
	assert_true(c->v.mmds.imds_compat);
	{
		json_t *j = get_json(c, "/vm/config"), *m = json_object_get(j, "mmds-config");

		assert_string_equal(jstr(m, "version"), "V2");
		assert_string_equal(jstr(m, "ipv4_address"), "169.254.1.2");
		assert_true(json_is_true(json_object_get(m, "imds_compat")));
		assert_string_equal(json_string_value(json_array_get(json_object_get(m, "network_interfaces"), 0)),
				    "eth0");
		json_decref(j);
	}
	/* V2: the guest needs a token now. */
	s = guest_get(c, "/", &st);
	assert_int_equal(st, 401);
	free(s);
	ok(c, "PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"]}");
	assert_int_equal(c->v.mmds.version, MMDS_V1);
	assert_int_equal(c->v.mmds.addr, htonl(0xa9fea9fe));

	/* After boot: the contents change, the configuration does not. */
	ok(c, "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\"}", c->kernel);
	ok(c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	assert_ptr_equal(c->f.cfg.mmds_store, &c->v.mmds);
	assert_false(c->f.cfg.nets[0].no_mmds);
	ok(c, "PUT", "/mmds", "{\"v\":\"1\"}");
	ok(c, "PATCH", "/mmds", "{\"v\":\"2\"}");
	s = guest_get(c, "/v", &st);
	assert_string_equal(s, "\"2\"");
	free(s);
	bad(c, 400, "not supported after starting", "PUT", "/mmds/config", "{\"network_interfaces\":[\"eth0\"]}");
}

static void test_net_ifaces(void **state)
{
	struct ctx *c = *state;
	json_t *j, *n;

	ok(c, "PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\","
	   "\"guest_mac\":\"02:00:00:00:00:01\"}");
	bad(c, 400, "no host interface nope0", "PUT", "/network-interfaces/eth1",
	    "{\"iface_id\":\"eth1\",\"host_dev_name\":\"nope0\"}");
	bad(c, 400, "tun0 is not a tap", "PUT", "/network-interfaces/eth1",
	    "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tun0\"}");
	bad(c, 400, "lo is not a tap", "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"lo\"}");
	bad(c, 400, "multi_queue", "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"mq0\"}");
	bad(c, 400, "already used by interface eth0", "PUT", "/network-interfaces/eth1",
	    "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap0\"}");
	bad(c, 400, "MAC address is already in use: 02:00:00:00:00:01", "PUT", "/network-interfaces/eth1",
	    "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\",\"guest_mac\":\"02:00:00:00:00:01\"}");
	bad(c, 400, "multicast", "PUT", "/network-interfaces/eth1",
	    "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\",\"guest_mac\":\"03:00:00:00:00:01\"}");
	bad(c, 400, "MTU 1500", "PUT", "/network-interfaces/eth1",
	    "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\",\"mtu\":9000}");
	bad(c, 400, "does not match", "PUT", "/network-interfaces/eth1",
	    "{\"iface_id\":\"eth2\",\"host_dev_name\":\"tap1\"}");
	bad(c, 400, "rate limiters", "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":"
	    "\"tap1\",\"tx_rate_limiter\":{\"bandwidth\":{\"size\":1000,\"refill_time\":100}}}");
	bad(c, 400, "rate limiters", "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":"
	    "\"tap1\",\"rx_rate_limiter\":{\"bandwidth\":{\"size\":0,\"refill_time\":0},"
	    "\"ops\":{\"size\":5,\"refill_time\":1}}}");
	bad(c, 400, "not supported before starting", "PATCH", "/network-interfaces/eth0",
	    "{\"iface_id\":\"eth0\",\"rx_rate_limiter\":{}}");
	/* Limiters that limit nothing (empty, or a zero size / refill_time) are what kiln does anyway. */
	ok(c, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\",\"mtu\":1500,"
	   "\"rx_rate_limiter\":{},\"tx_rate_limiter\":{\"bandwidth\":{\"size\":0,\"refill_time\":100},"
	   "\"ops\":{\"size\":10,\"refill_time\":0}}}");
	/* The same id replaces (its tap and MAC may stay). */
	ok(c, "PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\","
	   "\"guest_mac\":\"02:00:00:00:00:01\"}");
	assert_int_equal(c->v.nnets, 2);
	/* With the command line's --net, at most VM_MAX_NETS. */
	c->v.base.nnets = VM_MAX_NETS - 2;
	for (unsigned i = 0; i < c->v.base.nnets; i++) {
		memset(&c->v.base.nets[i], 0, sizeof(c->v.base.nets[i]));
		c->v.base.nets[i].kind = NET_USER;
		c->v.base.nets[i].queues = 1;
	}
	fake_iface(c, "tap2", "0x1002");
	bad(c, 400, "at most 4 network interfaces", "PUT", "/network-interfaces/eth2",
	    "{\"iface_id\":\"eth2\",\"host_dev_name\":\"tap2\"}");

	j = get_json(c, "/vm/config");
	n = json_object_get(j, "network-interfaces");
	assert_int_equal(json_array_size(n), 2);
	assert_string_equal(jstr(json_array_get(n, 0), "iface_id"), "eth0");
	assert_string_equal(jstr(json_array_get(n, 0), "host_dev_name"), "tap0");
	assert_string_equal(jstr(json_array_get(n, 0), "guest_mac"), "02:00:00:00:00:01");
	assert_null(json_object_get(json_array_get(n, 1), "guest_mac"));
	assert_true(json_is_null(json_object_get(j, "mmds-config")));
	json_decref(j);

	/* InstanceStart: the API's interfaces first (eth0, eth1), then --net's; no MMDS without mmds-config. */
	ok(c, "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\"}", c->kernel);
	ok(c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	assert_int_equal(c->f.cfg.nnets, 4);
	assert_int_equal(c->f.cfg.nets[0].kind, NET_TAP);
	assert_string_equal(c->f.cfg.nets[0].ifname, "tap0");
	assert_true(c->f.cfg.nets[0].mac_set);
	assert_int_equal(c->f.cfg.nets[0].mac[5], 1);
	assert_string_equal(c->f.cfg.nets[1].ifname, "tap1");
	assert_false(c->f.cfg.nets[1].mac_set);
	assert_int_equal(c->f.cfg.nets[2].kind, NET_USER);
	for (unsigned i = 0; i < 4; i++)
		assert_true(c->f.cfg.nets[i].no_mmds);
	assert_ptr_equal(c->f.cfg.mmds_store, &c->v.mmds);

	/* After boot: no new interfaces; PATCH knows its ids and refuses real limiters. */
	bad(c, 400, "not supported after starting", "PUT", "/network-interfaces/eth3",
	    "{\"iface_id\":\"eth3\",\"host_dev_name\":\"tap2\"}");
	bad(c, 400, "Invalid network interface ID: there is no interface eth7", "PATCH", "/network-interfaces/eth7",
	    "{\"iface_id\":\"eth7\",\"rx_rate_limiter\":{}}");
	bad(c, 400, "nothing to update", "PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\"}");
	bad(c, 400, "rate limiters", "PATCH", "/network-interfaces/eth0",
	    "{\"iface_id\":\"eth0\",\"rx_rate_limiter\":{\"ops\":{\"size\":1,\"refill_time\":1}}}");
	ok(c, "PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"tx_rate_limiter\":{}}");
}

/* --metadata / --ssh-key seed the store (Firecracker's --metadata); PATCH needs no PUT then. */
static void test_mmds_seed(void **state)
{
	struct ctx *c = *state;
	struct api_err e = { 0 };
	char md[200], key[200], *s;
	FILE *f;
	int st;

	snprintf(md, sizeof(md), "%s/md.json", c->dir);
	snprintf(key, sizeof(key), "%s/key.pub", c->dir);
	f = fopen(md, "w");
	fputs("{\"hostname\":\"web1\",\"app\":{\"port\":\"80\"}}", f);
	fclose(f);
	f = fopen(key, "w");
	fputs("ssh-ed25519 AAAAtest k@h\n", f);
	fclose(f);
	c->v.base.metadata_path = md;
	c->v.base.ssh_key_path = key;
	c->v.base.metadata_version = 2;
	assert_int_equal(api_vmm_mmds_seed(&c->v, &e), 0);
	assert_int_equal(c->v.mmds.version, MMDS_V2);
	s = ok(c, "GET", "/mmds", NULL);
	assert_string_equal(s, "{\"hostname\":\"web1\",\"app\":{\"port\":\"80\"}}");
	free(s);
	ok(c, "PATCH", "/mmds", "{\"app\":{\"port\":\"8080\"}}");
	s = ok(c, "GET", "/mmds", NULL);
	assert_string_equal(s, "{\"hostname\":\"web1\",\"app\":{\"port\":\"8080\"}}");
	free(s);
	/* The key from --ssh-key stays in the generated layouts after the API's writes. */
	ok(c, "PUT", "/mmds", "{\"hostname\":\"web2\"}");
	s = json_dumps(c->v.mmds.openstack, JSON_COMPACT);
	assert_non_null(strstr(s, "ssh-ed25519 AAAAtest k@h"));
	assert_non_null(strstr(s, "\"hostname\":\"web2\""));
	free(s);
	(void)st;

	/* A file that is no JSON object: a 400 naming --metadata, and an empty store to go on with. */
	f = fopen(md, "w");
	fputs("[1]", f);
	fclose(f);
	memset(&e, 0, sizeof(e));
	assert_int_not_equal(api_vmm_mmds_seed(&c->v, &e), 0);
	assert_int_equal(e.status, 400);
	assert_non_null(strstr(e.msg, "--metadata"));
	assert_true(c->v.mmds_ok);
	s = ok(c, "GET", "/mmds", NULL);
	assert_string_equal(s, "{}");
	free(s);
}

/* --mmds-size-limit and --http-api-max-payload-size: the store and the body limits come from the command line. */
static void test_limits_from_cli(void **state)
{
	struct ctx *c = *state;
	struct api_err e = { 0 };
	char md[200], big[3000];
	FILE *f;

	assert_int_equal(api_vmm_max_body(&c->v), API_MAX_BODY);
	assert_int_equal(c->v.mmds_limit, MMDS_SIZE_LIMIT_DEFAULT);
	api_vmm_destroy(&c->v);
	c->base.mmds_size_limit = 40;
	c->base.api_max_body = 2048;
	assert_int_equal(api_vmm_init(&c->v, &c->base, "vm-1", &fops, &c->f), 0);
	c->v.sys_net = c->sysnet;
	assert_int_equal(api_vmm_max_body(&c->v), 2048);

	/* 40 bytes fit, 41 do not (413), on PUT and on PATCH. */
	ok(c, "PUT", "/mmds", "{\"k\":\"%032d\"}", 0);
	bad(c, 413, "the limit is 40", "PUT", "/mmds", "{\"k\":\"%033d\"}", 0);
	bad(c, 413, "the limit is 40", "PATCH", "/mmds", "{\"z\":1}");
	/* A body over the payload limit is refused before parsing. */
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	memcpy(big, "{}", 2);
	bad(c, 400, "larger than the limit of 2048", "PUT", "/mmds", "%s", big);

	/* A --metadata file over the limit: a 400 naming --mmds-size-limit, and an empty store to go on with. */
	snprintf(md, sizeof(md), "%s/md.json", c->dir);
	f = fopen(md, "w");
	fputs("{\"hostname\":\"a-rather-long-host-name-for-this\"}", f);
	fclose(f);
	c->v.base.metadata_path = md;
	assert_int_not_equal(api_vmm_mmds_seed(&c->v, &e), 0);
	assert_int_equal(e.status, 400);
	assert_non_null(strstr(e.msg, "--mmds-size-limit"));
	assert_true(c->v.mmds_ok);
	free(ok(c, "PUT", "/mmds", "{}"));
}

/* GET /vm/config loads back as a --config-file and gives the same configuration. */
static void test_config_round_trip(void **state)
{
	struct ctx *c = *state;
	struct api_vmm v2;
	struct fake f2 = { 0 };
	struct api_err e = { 0 };
	char *a, *b;

	ok(c, "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\",\"initrd_path\":\"%s\","
	   "\"boot_args\":\"console=ttyS0\"}", c->kernel, c->initrd);
	ok(c, "PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":300}");
	ok(c, "PUT", "/drives/root", "{\"drive_id\":\"root\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
	   "\"partuuid\":\"abc-1\",\"cache_type\":\"Writeback\"}", c->disk);
	ok(c, "PUT", "/drives/two", "{\"drive_id\":\"two\",\"path_on_host\":\"%s\",\"is_root_device\":false,"
	   "\"is_read_only\":true,\"io_engine\":\"Sync\"}", c->disk2);
	ok(c, "PUT", "/logger", "{\"log_path\":\"%s/log\",\"level\":\"Warning\",\"show_level\":true,"
	   "\"module\":\"api\"}", c->dir);
	ok(c, "PUT", "/metrics", "{\"metrics_path\":\"%s/metrics\",\"emit_id\":true,"
	   "\"properties\":{\"host\":\"h1\"}}", c->dir);
	ok(c, "PUT", "/entropy", "{}");
	ok(c, "PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\","
	   "\"guest_mac\":\"02:00:00:00:00:01\"}");
	ok(c, "PUT", "/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\"}");
	ok(c, "PUT", "/mmds/config", "{\"network_interfaces\":[\"eth1\"],\"version\":\"V2\","
	   "\"ipv4_address\":\"169.254.170.2\"}");
	a = ok(c, "GET", "/vm/config", NULL);
	assert_non_null(a);

	assert_int_equal(api_vmm_init(&v2, &c->base, NULL, &fops, &f2), 0);
	v2.sys_net = c->sysnet;
	assert_int_equal(api_vmm_load_config(&v2, a, strlen(a), &e), 0);
	pthread_mutex_lock(&v2.lock);
	b = api_json_vm_config(&v2);
	pthread_mutex_unlock(&v2.lock);
	assert_string_equal(a, b);
	free(b);
	assert_int_equal(api_vmm_start(&v2, &e), 0);
	assert_int_equal(f2.cfg.ncpus, 2);
	assert_string_equal(f2.cmdline, "console=ttyS0 root=PARTUUID=abc-1 rw");
	assert_int_equal(f2.cfg.nnets, 2);
	assert_string_equal(f2.cfg.nets[0].ifname, "tap0");
	assert_true(f2.cfg.nets[0].no_mmds && !f2.cfg.nets[1].no_mmds);
	assert_ptr_equal(f2.cfg.mmds_store, &v2.mmds);
	assert_int_equal(v2.mmds.version, MMDS_V2);
	api_vmm_destroy(&v2);
	free(a);
}

static void test_config_errors(void **state)
{
	struct ctx *c = *state;
	struct api_err e = { 0 };
	static const struct { const char *text, *want; } cases[] = {
		{ "[1]", "expected a JSON object" },
		{ "{\"boot-source\":", "malformed JSON" },
		{ "{\"a\":1,\"a\":2}", "malformed JSON" },
		{ "{\"bootsource\":{}}", "unknown member \"bootsource\"" },
		{ "{\"drives\":{}}", "drives: expected an array" },
		{ "{\"drives\":[{\"drive_id\":\"x\"}]}", "drives[0] x: Drive" },
		{ "{\"drives\":[{\"drive_id\":\"a b\",\"path_on_host\":\"/x\",\"is_root_device\":false}]}", "drives[0] a b:" },
		{ "{\"machine-config\":{\"vcpu_count\":1}}", "machine-config: " },
		{ "{\"balloon\":{\"amount_mib\":1,\"deflate_on_oom\":true}}", "balloon: kiln does not implement" },
		{ "{\"network-interfaces\":[{\"iface_id\":\"e\",\"host_dev_name\":\"nope0\"}]}",
		  "network-interfaces[0] e: Could not create the network device: no host interface nope0" },
		{ "{\"network-interfaces\":[{\"iface_id\":\"e\",\"host_dev_name\":\"tap0\"}],"
		  "\"mmds-config\":{\"network_interfaces\":[\"f\"]}}", "mmds-config: The list of network interface IDs" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&e, 0, sizeof(e));
		assert_int_not_equal(api_vmm_load_config(&c->v, cases[i].text, strlen(cases[i].text), &e), 0);
		assert_int_equal(e.status, 400);
		if (strncmp(e.msg, "config file: ", 13) || !strstr(e.msg, cases[i].want))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.msg, cases[i].want);
	}
	/* null members are absent; an empty file configures nothing. */
	assert_int_equal(api_vmm_load_config(&c->v, "{\"logger\":null,\"drives\":[]}", 27, &e), 0);
	assert_int_equal(api_vmm_load_config(&c->v, "{}", 2, &e), 0);
	assert_int_equal(c->v.boot.kind, API_BODY_NONE);
}

static void test_stats(void **state)
{
	struct ctx *c = *state;
	struct api_lat_stats s = { 0 };

	(void)c;
	assert_int_equal(api_stats_percentile(&s, 50), 0);
	/* 90 fast (3 µs), 10 slow (1000 µs): p50 in the fast bucket, p99 in the slow one. */
	for (int i = 0; i < 100; i++) {
		uint64_t us = i < 90 ? 3 : 1000;
		unsigned b = 0;
		s.count++;
		s.max_us = us > s.max_us ? us : s.max_us;
		while (b < API_LAT_BUCKETS - 1 && us >= (1ull << b))
			b++;
		s.hist[b]++;
	}
	assert_int_equal(api_stats_percentile(&s, 50), 4);      /* bucket [2, 4) µs: its bound */
	assert_int_equal(api_stats_percentile(&s, 90), 4);
	assert_int_equal(api_stats_percentile(&s, 91), 1000);   /* bound 1024, capped by the max */
	assert_int_equal(api_stats_percentile(&s, 99), 1000);
	assert_int_equal(api_stats_percentile(&s, 100), 1000);

	/* Through the recorder: routed, errors, unrouted. */
	api_stats_record(&c->v, API_EP_ROOT, API_GET, 200, 10);
	api_stats_record(&c->v, API_EP_ROOT, API_GET, 200, 30);
	api_stats_record(&c->v, API_EP_ACTIONS, API_PUT, 400, 5);
	api_stats_record(&c->v, -1, -1, 400, 1ull << 40);   /* beyond the last bucket */
	assert_int_equal(c->v.stats[API_EP_ROOT][API_GET].count, 2);
	assert_int_equal(c->v.stats[API_EP_ROOT][API_GET].max_us, 30);
	assert_int_equal(c->v.stats[API_EP_ACTIONS][API_PUT].errors, 1);
	assert_int_equal(c->v.unrouted.count, 1);
	assert_int_equal(c->v.unrouted.hist[API_LAT_BUCKETS - 1], 1);
	assert_int_equal(api_stats_percentile(&c->v.unrouted, 50), 1ull << 40);
}

static void test_metrics_flush(void **state)
{
	struct ctx *c = *state;
	char path[128], buf[8192];
	json_t *line, *eps;
	FILE *f;

	snprintf(path, sizeof(path), "%s/metrics.json", c->dir);
	/* Requests through the server's handler are counted (api_vmm_request's are not). */
	{
		struct api_reply r = { 0 };
		api_vmm_handle(&c->v, "GET", "/nothing", NULL, 0, api_now_ns(), &r);
		assert_int_equal(r.status, 400);
		assert_non_null(strstr(r.body, "fault_message"));
		free(r.body);
		api_vmm_handle(&c->v, "GET", "/", NULL, 0, api_now_ns(), &r);
		assert_int_equal(r.status, 200);
		assert_non_null(strstr(r.body, "Not started"));
		free(r.body);
		const char *mc = "{\"vcpu_count\":1,\"mem_size_mib\":64}";

		api_vmm_handle(&c->v, "PUT", "/machine-config", mc, strlen(mc), api_now_ns(), &r);
		assert_int_equal(r.status, 204);
		assert_null(r.body);
		api_vmm_handle(&c->v, "PUT", "/vm", "{}", 2, api_now_ns(), &r);
		assert_int_equal(r.status, 400);
		free(r.body);
		assert_int_equal(c->v.unrouted.errors, 2);
		assert_int_equal(c->v.stats[API_EP_ROOT][API_GET].count, 1);
		assert_int_equal(c->v.stats[API_EP_MACHINE_CONFIG][API_PUT].count, 1);
	}
	ok(c, "PUT", "/metrics", "{\"metrics_path\":\"%s\",\"emit_id\":true,\"properties\":{\"rack\":\"r7\"}}", path);
	ok(c, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}");
	/* Before boot, no VM counters. */
	assert_int_equal(c->f.metrics_calls, 0);
	ok(c, "PUT", "/boot-source", "{\"kernel_image_path\":\"%s\"}", c->kernel);
	ok(c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	assert_int_equal(api_vmm_flush_metrics(&c->v, NULL), 0);
	assert_int_equal(c->f.metrics_calls, 1);

	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));   /* line 1: before boot */
	line = json_loads(buf, 0, NULL);
	assert_non_null(line);
	assert_string_equal(jstr(line, "state"), "Not started");
	assert_int_equal(jint(line, "seq"), 0);
	assert_null(json_object_get(line, "vcpus"));
	json_decref(line);
	assert_non_null(fgets(buf, sizeof(buf), f));   /* line 2: running */
	assert_null(fgets(buf + 4096, 4096, f));
	fclose(f);
	assert_int_equal(buf[strlen(buf) - 1], '\n');
	line = json_loads(buf, 0, NULL);
	assert_non_null(line);
	assert_string_equal(jstr(line, "state"), "Running");
	assert_string_equal(jstr(line, "instance_id"), "vm-1");
	assert_int_equal(jint(line, "seq"), 1);
	assert_true(jint(line, "utc_timestamp_ms") > 1600000000000ll);
	assert_int_equal(jint(json_array_get(json_object_get(line, "vcpus"), 0), "exits_total"), 42);
	assert_string_equal(jstr(json_object_get(line, "properties"), "rack"), "r7");
	eps = json_object_get(json_object_get(line, "api"), "endpoints");
	assert_int_equal(jint(json_object_get(eps, "GET /"), "count"), 1);
	assert_int_equal(jint(json_object_get(eps, "PUT /machine-config"), "errors"), 0);
	assert_int_equal(jint(json_object_get(eps, "unrouted"), "errors"), 2);
	assert_null(json_object_get(eps, "PUT /metrics"));   /* not through the handler */
	assert_int_equal(jint(json_object_get(json_object_get(line, "api"), "requests"), "count"), 4);
	json_decref(line);
}

/* The timer writes a line every period without being asked; it stops with the api_vmm. */
static void test_metrics_timer(void **state)
{
	struct ctx *c = *state;
	char path[128], buf[65536];
	int fd, lines = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/timer.json", c->dir);
	c->v.metrics_period_ms = 20;
	ok(c, "PUT", "/metrics", "{\"metrics_path\":\"%s\"}", path);
	for (int i = 0; i < 200 && lines < 3; i++) {
		usleep(10000);
		pthread_mutex_lock(&c->v.lock);
		lines = (int)c->v.metrics_lines;
		pthread_mutex_unlock(&c->v.lock);
	}
	assert_true(lines >= 3);
	api_metrics_timer_stop(&c->v);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	/* Every line is whole JSON (one write each). */
	for (char *l = buf, *e; (e = strchr(l, '\n')); l = e + 1) {
		json_t *j;
		*e = '\0';
		j = json_loads(l, 0, NULL);
		assert_non_null(j);
		json_decref(j);
	}
	/* A second PUT replaces the file; the timer keeps running once (not twice). */
	ok(c, "PUT", "/metrics", "{\"metrics_path\":\"%s\"}", path);
	assert_true(c->v.timer_running);
}

static void test_logger(void **state)
{
	struct ctx *c = *state;
	char path[128], buf[4096] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/kiln.log", c->dir);
	ok(c, "PUT", "/logger", "{\"log_path\":\"%s\",\"level\":\"WARNING\",\"show_level\":true,"
	   "\"show_log_origin\":true,\"module\":\"api\"}", path);
	assert_int_equal(log_get_level(), LOG_WARN);
	log_warn("from the test");               /* tests/unit: outside src/api, filtered out */
	log_at(LOG_WARN, "src/api/x.c", 7, "kept %d", 1);
	log_at(LOG_INFO, "src/api/x.c", 8, "below the level");
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	assert_null(strstr(buf, "from the test"));
	assert_null(strstr(buf, "below the level"));
	assert_non_null(strstr(buf, " [vm-1:"));
	assert_non_null(strstr(buf, ":WARN:src/api/x.c:7] kept 1\n"));
	ok(c, "PUT", "/logger", "{\"level\":\"off\"}");
	assert_int_equal(log_get_level(), LOG_OFF);
	bad(c, 400, "level", "PUT", "/logger", "{\"level\":\"Loud\"}");
	bad(c, 400, "log_path", "PUT", "/logger", "{\"log_path\":\"%s/no/such/dir/log\"}", c->dir);
}

static void test_parse_counters(void **state)
{
	static const char text[] =
		"uart: tx=12 tx_dropped=0 rx=3 rx_dropped=0\n"
		"acpi_pm: sleeps_ignored 2 resets_ignored 0\n"
		"virtio-blk: status=0xf kicks=4 irqs=5 resets=0 needs_reset=0 q0[chains=3 faults=1 bad desc] q1[chains=7 faults=0]\n"
		"virtio-blk: reads 9 words without numbers x=y =5 k= 99999999999999999999999 q[=1\n";
	json_t *o = json_object();
	unsigned n;

	(void)state;
	n = api_parse_counters(text, strlen(text), o);
	assert_int_equal(jint(o, "tx"), 12);
	assert_int_equal(jint(o, "rx"), 3);
	assert_int_equal(jint(o, "sleeps_ignored"), 2);
	assert_int_equal(jint(o, "status"), 15);
	assert_int_equal(jint(o, "kicks"), 4);
	assert_int_equal(jint(o, "q0.chains"), 3);
	assert_int_equal(jint(o, "q0.faults"), 1);
	assert_int_equal(jint(o, "q1.chains"), 7);
	assert_int_equal(jint(o, "reads"), 9);
	assert_null(json_object_get(o, "x"));
	assert_null(json_object_get(o, "uart:"));
	assert_int_equal(jint(o, "q1.faults"), 0);
	assert_int_equal(n, json_object_size(o));
	json_decref(o);
	/* Bounded by len: nothing past it is read. */
	o = json_object();
	assert_int_equal(api_parse_counters("uart: tx=12", 8, o), 0);
	assert_int_equal(api_parse_counters("", 0, o), 0);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_cmdline_default_and_partuuid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_no_drives_keeps_cmdline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_failure_then_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preboot_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_postboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logger, setup, teardown),
		cmocka_unit_test(test_merge_patch),
		cmocka_unit_test_setup_teardown(test_mmds_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_ifaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmds_seed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_from_cli, setup, teardown),
		cmocka_unit_test(test_parse_counters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
