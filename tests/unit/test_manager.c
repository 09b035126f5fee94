/* Unit tests for kiln serve's model: ids, routes, POST /vms bodies, state files, /proc parsing, restart policy, backoff, options. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <jansson.h>
#include "manager/manager.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct mgr_params params = {
	.grace_ms = 1000, .backoff_ms = 100, .backoff_cap_ms = 30000, .restart_max = 3,
	.stable_ms = 60000, .max_vms = 16,
};

/* A fault message is non-empty printable ASCII (it is echoed to clients). */
static void assert_msg(const struct mgr_err *e, int status, const char *want)
{
	assert_int_equal(e->status, status);
	if (!strstr(e->msg, want))
		fail_msg("message \"%s\" lacks \"%s\"", e->msg, want);
	for (const char *p = e->msg; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

static void test_id(void **state)
{
	char long_id[MGR_ID_MAX + 2];
	struct mgr_err e;

	assert_int_equal(mgr_check_id("a", 1, NULL), 0);
	assert_int_equal(mgr_check_id("Vm-01_x", 7, NULL), 0);
	memset(long_id, 'a', sizeof(long_id));
	assert_int_equal(mgr_check_id(long_id, MGR_ID_MAX, NULL), 0);
	assert_int_equal(mgr_check_id(long_id, MGR_ID_MAX + 1, &e), -1);
	assert_msg(&e, 400, "longer than 64");
	assert_int_equal(mgr_check_id("", 0, &e), -1);
	assert_msg(&e, 400, "empty");
	static const char *const bad[] = { "a/b", "a.b", "..", "a b", "a%2F", "\xc3\xa9", "a\n", "*" };
	for (unsigned i = 0; i < NELEM(bad); i++) {
		assert_int_equal(mgr_check_id(bad[i], strlen(bad[i]), &e), -1);
		assert_msg(&e, 400, "only A-Z a-z 0-9 _ -");
	}
	/* An embedded NUL is a bad byte, not the end of the id. */
	assert_int_equal(mgr_check_id("ab\0c", 4, &e), -1);
}

static void test_route(void **state)
{
	static const struct {
		const char *method, *path;
		int status;            /* 0: routed */
		enum mgr_ep ep;
		const char *id;
	} cases[] = {
		{ "GET", "/", 0, MGR_EP_ROOT, "" },
		{ "GET", "/vms", 0, MGR_EP_VMS, "" },
		{ "POST", "/vms", 0, MGR_EP_VMS, "" },
		{ "GET", "/vms/vm-1", 0, MGR_EP_VM, "vm-1" },
		{ "DELETE", "/vms/vm_1", 0, MGR_EP_VM, "vm_1" },
		{ "POST", "/vms/a/stop", 0, MGR_EP_VM_STOP, "a" },
		{ "POST", "/vms/a/start", 0, MGR_EP_VM_START, "a" },
		{ "PUT", "/vms", 405, MGR_EP_VMS, "" },
		{ "DELETE", "/vms", 405, MGR_EP_VMS, "" },
		{ "POST", "/vms/a", 405, MGR_EP_VM, "" },
		{ "GET", "/vms/a/stop", 405, MGR_EP_VM_STOP, "" },
		{ "BREW", "/", 405, MGR_EP_ROOT, "" },
		{ "GET", "/vms/", 400, 0, "" },          /* an empty id */
		{ "GET", "/vms/a.b", 400, 0, "" },
		{ "GET", "/vms/a%2Fb", 400, 0, "" },
		{ "POST", "/vms/a/b/stop", 404, 0, "" },
		{ "POST", "/vms/a/kill", 404, 0, "" },
		{ "GET", "/vm", 404, 0, "" },
		{ "GET", "/vmsx", 404, 0, "" },
		{ "GET", "", 404, 0, "" },
		{ "GET", "vms", 404, 0, "" },
	};

	for (unsigned i = 0; i < NELEM(cases); i++) {
		struct mgr_route r;
		struct mgr_err e = { 0, "" };
		int rc = mgr_route(cases[i].method, cases[i].path, &r, &e);

		if (cases[i].status == 0) {
			if (rc != 0)
				fail_msg("%s %s: %d %s", cases[i].method, cases[i].path, e.status, e.msg);
			assert_int_equal(r.ep, cases[i].ep);
			assert_string_equal(r.id, cases[i].id);
		} else {
			assert_int_equal(rc, -1);
			if (e.status != cases[i].status)
				fail_msg("%s %s: status %d, expected %d", cases[i].method, cases[i].path,
					 e.status, cases[i].status);
			if (e.status == 405)
				assert_int_equal(r.ep, cases[i].ep);
			assert_msg(&e, cases[i].status, "");
		}
	}
}

static int create(const char *body, struct mgr_create *c, struct mgr_err *e)
{
	return mgr_parse_create(body, strlen(body), c, e);
}

static void test_create_body(void **state)
{
	struct mgr_create c;
	struct mgr_err e;

	assert_int_equal(create("{\"id\":\"vm1\",\"config\":{\"boot-source\":{}},\"restart\":\"always\"}",
				&c, &e), 0);
	assert_string_equal(c.id, "vm1");
	assert_int_equal(c.restart, MGR_RESTART_ALWAYS);
	assert_true(json_is_object(json_object_get(c.config, "boot-source")));
	json_decref(c.config);

	assert_int_equal(create("{\"config\":{},\"id\":\"x\"}", &c, &e), 0);
	assert_int_equal(c.restart, MGR_RESTART_NEVER);
	json_decref(c.config);
	assert_int_equal(create("{\"id\":\"x\",\"config\":{},\"restart\":null}", &c, &e), 0);
	assert_int_equal(c.restart, MGR_RESTART_NEVER);
	json_decref(c.config);
	assert_int_equal(create("{\"id\":\"x\",\"config\":{},\"restart\":\"on-failure\"}", &c, &e), 0);
	assert_int_equal(c.restart, MGR_RESTART_ON_FAILURE);
	json_decref(c.config);

	static const struct { const char *body, *want; } bad[] = {
		{ "", "needs a body" },
		{ "{", "malformed JSON" },
		{ "{\"id\":\"x\",\"config\":{}} trailing", "malformed JSON" },
		{ "[]", "must be a JSON object" },
		{ "\"x\"", "malformed JSON" },           /* jansson wants an array or object */
		{ "{\"id\":\"x\",\"config\":{},\"cpus\":2}", "unknown field 'cpus'" },
		{ "{\"id\":\"x\",\"id\":\"y\",\"config\":{}}", "malformed JSON" },  /* duplicate key */
		{ "{\"config\":{}}", "'id' is missing" },
		{ "{\"id\":null,\"config\":{}}", "'id' is missing" },
		{ "{\"id\":7,\"config\":{}}", "'id' is not a string" },
		{ "{\"id\":\"a/b\",\"config\":{}}", "only A-Z" },
		{ "{\"id\":\"a\\u0000b\",\"config\":{}}", "malformed JSON" },  /* NULs refused by jansson */
		{ "{\"id\":\"\",\"config\":{}}", "empty" },
		{ "{\"id\":\"x\"}", "'config' is missing" },
		{ "{\"id\":\"x\",\"config\":[]}", "'config' is not an object" },
		{ "{\"id\":\"x\",\"config\":\"{}\"}", "'config' is not an object" },
		{ "{\"id\":\"x\",\"config\":{},\"restart\":\"sometimes\"}", "'restart' must be" },
		{ "{\"id\":\"x\",\"config\":{},\"restart\":1}", "'restart' must be" },
		{ "{\"id\":\"x\",\"config\":{},\"restart\":\"never\\u0000x\"}", "malformed JSON" },
		{ "{\"id\":\"x\",\"config\":{},\"\xff\":1}", "malformed JSON" },
	};
	for (unsigned i = 0; i < NELEM(bad); i++) {
		memset(&e, 0, sizeof(e));
		if (create(bad[i].body, &c, &e) != -1)
			fail_msg("accepted: %s", bad[i].body);
		assert_null(c.config);
		assert_msg(&e, 400, bad[i].want);
	}

	/* Over the size limit: 413, before any parsing. */
	{
		char *big = malloc(MGR_MAX_BODY + 2);

		assert_non_null(big);
		memset(big, ' ', MGR_MAX_BODY + 1);
		big[MGR_MAX_BODY + 1] = '\0';
		assert_int_equal(mgr_parse_create(big, MGR_MAX_BODY + 1, &c, &e), -1);
		assert_msg(&e, 413, "over");
		free(big);
	}
}

static struct mgr_record sample_record(void)
{
	struct mgr_record r;

	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "vm-7");
	r.restart = MGR_RESTART_ON_FAILURE;
	r.state = MGR_VM_RUNNING;
	r.pid = 4242;
	r.pid_start = 123456789012ull;
	snprintf(r.boot_id, sizeof(r.boot_id), "0861fb20-a965-4514-8dc6-7fd724744a6f");
	r.started_at_ms = 1700000000123;
	r.exited_at_ms = 1700000000001;
	r.restarts = 17;
	r.streak = 2;
	r.stop_requested = false;
	r.gave_up = true;
	r.exit = (struct mgr_exit){ MGR_EXIT_SIGNAL, 9 };
	return r;
}

static void assert_record_equal(const struct mgr_record *a, const struct mgr_record *b)
{
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->restart, b->restart);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->pid_start, b->pid_start);
	assert_string_equal(a->boot_id, b->boot_id);
	assert_int_equal(a->started_at_ms, b->started_at_ms);
	assert_int_equal(a->exited_at_ms, b->exited_at_ms);
	assert_int_equal(a->restarts, b->restarts);
	assert_int_equal(a->streak, b->streak);
	assert_int_equal(a->stop_requested, b->stop_requested);
	assert_int_equal(a->gave_up, b->gave_up);
	assert_int_equal(a->exit.kind, b->exit.kind);
	assert_int_equal(a->exit.value, b->exit.value);
}

static void test_record_json(void **state)
{
	static const struct mgr_exit exits[] = {
		{ MGR_EXIT_NONE, 0 }, { MGR_EXIT_CODE, 0 }, { MGR_EXIT_CODE, 143 },
		{ MGR_EXIT_SIGNAL, 9 }, { MGR_EXIT_UNKNOWN, 0 }, { MGR_EXIT_SPAWN_FAILED, ENOENT },
	};
	struct mgr_record r = sample_record(), back;
	struct mgr_err e;

	for (unsigned i = 0; i < NELEM(exits); i++) {
		for (int st = MGR_VM_RUNNING; st <= MGR_VM_EXITED; st++) {
			json_t *j;
			char *text;

			r.exit = exits[i];
			r.state = (enum mgr_vm_state)st;
			r.restart = (enum mgr_restart)(i % 3);
			r.stop_requested = i & 1;
			j = mgr_record_to_json(&r);
			assert_non_null(j);
			/* Through text, as the file goes. */
			text = json_dumps(j, 0);
			json_decref(j);
			j = json_loads(text, 0, NULL);
			free(text);
			assert_int_equal(mgr_record_from_json(j, &back, &e), 0);
			json_decref(j);
			assert_record_equal(&r, &back);
		}
	}
}

/* Each mutation of a valid state.json must be refused with a message naming the problem. */
static void test_record_reject(void **state)
{
	static const struct { const char *key, *value, *want; } bad[] = {
		{ "version", "2", "'version'" },
		{ "version", NULL, "'version'" },
		{ "id", "\"a/b\"", "only A-Z" },
		{ "id", "5", "'id'" },
		{ "restart", "\"sometimes\"", "'restart'" },
		{ "state", "\"zombie\"", "'state'" },
		{ "state", NULL, "'state'" },
		{ "pid", "-1", "'pid'" },
		{ "pid", "99999999", "'pid'" },
		{ "pid", "0", "without a pid" },             /* running with no pid */
		{ "pid", "1.5", "'pid'" },
		{ "pid_start_ticks", "-3", "'pid_start_ticks'" },
		{ "boot_id", "\"0123456789012345678901234567890123456789\"", "'boot_id'" },
		{ "restarts", "\"3\"", "'restarts'" },
		{ "stop_requested", "0", "'stop_requested'" },
		{ "gave_up", NULL, "'gave_up'" },
		{ "exit", "{\"code\":1,\"signal\":2}", "'exit'" },
		{ "exit", "{\"code\":-1}", "'exit'" },
		{ "exit", "{\"unknown\":false}", "'exit'" },
		{ "exit", "[]", "'exit'" },
	};
	struct mgr_record r = sample_record(), back;
	struct mgr_err e;

	for (unsigned i = 0; i < NELEM(bad); i++) {
		json_t *j = mgr_record_to_json(&r);

		if (bad[i].value)
			json_object_set_new(j, bad[i].key, json_loads(bad[i].value, JSON_DECODE_ANY, NULL));
		else
			json_object_del(j, bad[i].key);
		memset(&e, 0, sizeof(e));
		if (mgr_record_from_json(j, &back, &e) != -1)
			fail_msg("accepted %s = %s", bad[i].key, bad[i].value ? bad[i].value : "(absent)");
		assert_msg(&e, 400, bad[i].want);
		json_decref(j);
	}
	{
		json_t *arr = json_array();

		assert_int_equal(mgr_record_from_json(arr, &back, &e), -1);
		json_decref(arr);
	}
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/kiln-test-mgr.XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static char *cat(const char *a, const char *b)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", a, b) > 0);
	return p;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_state_file(void **state)
{
	char *dir = tmpdir(), *file = cat(dir, "state.json"), *tmp = cat(dir, "state.json.tmp");
	struct mgr_record r = sample_record(), back;
	struct mgr_err e;
	struct stat st;

	assert_int_equal(mgr_state_save(dir, &r), 0);
	assert_int_equal(stat(tmp, &st), -1);        /* renamed away, nothing left over */
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(mgr_state_load(dir, &back, &e), 0);
	assert_record_equal(&r, &back);

	/* A second save replaces the first. */
	r.state = MGR_VM_EXITED;
	r.pid = 0;
	r.exit = (struct mgr_exit){ MGR_EXIT_CODE, 3 };
	assert_int_equal(mgr_state_save(dir, &r), 0);
	assert_int_equal(mgr_state_load(dir, &back, &e), 0);
	assert_record_equal(&r, &back);

	/* A torn or foreign file is refused with a reason, never half-read. */
	write_file(file, "{\"version\": 1, \"id\": \"vm-7\"");
	assert_int_equal(mgr_state_load(dir, &back, &e), -1);
	assert_msg(&e, 500, "state.json");
	write_file(file, "{\"version\": 1, \"id\": \"vm-7\"}");
	assert_int_equal(mgr_state_load(dir, &back, &e), -1);
	assert_msg(&e, 500, "'restart'");
	{
		char *big = malloc(MGR_STATE_MAX + 2);

		memset(big, ' ', MGR_STATE_MAX + 1);
		big[MGR_STATE_MAX + 1] = '\0';
		write_file(file, big);
		free(big);
	}
	assert_int_equal(mgr_state_load(dir, &back, &e), -1);
	assert_msg(&e, 500, "too large");
	unlink(file);
	assert_int_equal(mgr_state_load(dir, &back, &e), -1);
	assert_msg(&e, 500, "No such file");
	/* A symlink in place of state.json is not followed. */
	assert_int_equal(symlink("/etc/passwd", file), 0);
	assert_int_equal(mgr_state_load(dir, &back, &e), -1);

	assert_int_equal(mgr_rmtree(dir), 0);
	assert_int_equal(stat(dir, &st), -1);
	free(file);
	free(tmp);
	free(dir);
}

static void test_write_atomic(void **state)
{
	char *dir = tmpdir(), *file = cat(dir, "f"), *text;
	size_t len;

	assert_int_equal(mgr_write_atomic(file, "old", 3), 0);
	assert_int_equal(mgr_write_atomic(file, "newer", 5), 0);
	assert_int_equal(mgr_read_file(file, 64, &text, &len), 0);
	assert_int_equal(len, 5);
	assert_string_equal(text, "newer");
	free(text);
	/* Exactly max bytes is fine; one more is -EFBIG. */
	assert_int_equal(mgr_read_file(file, 5, &text, &len), 0);
	free(text);
	assert_int_equal(mgr_read_file(file, 4, &text, &len), -EFBIG);
	/* A directory where the file should go: an error, and no tmp left behind. */
	free(file);
	file = cat(dir, "sub");
	assert_int_equal(mkdir(file, 0700), 0);
	assert_true(mgr_write_atomic(file, "x", 1) < 0);
	assert_int_equal(mgr_rmtree(dir), 0);
	free(file);
	free(dir);
}

static void test_rmtree(void **state)
{
	char *dir = tmpdir(), *outside = tmpdir();
	char *keep = cat(outside, "keep"), *sub = cat(dir, "a"), *subsub = cat(sub, "b");
	char *f1 = cat(subsub, "f"), *link = cat(sub, "l"), *dlink = cat(dir, "d");
	struct stat st;

	write_file(keep, "precious");
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(mkdir(subsub, 0700), 0);
	write_file(f1, "x");
	assert_int_equal(symlink(keep, link), 0);
	assert_int_equal(symlink(outside, dlink), 0);
	assert_int_equal(mgr_rmtree(dir), 0);
	assert_int_equal(lstat(dir, &st), -1);
	/* Symlinks went, what they pointed at stayed. */
	assert_int_equal(stat(keep, &st), 0);
	assert_int_equal(mgr_rmtree(dir), 0);    /* already gone: fine */
	assert_int_equal(mgr_rmtree(outside), 0);
	free(keep); free(sub); free(subsub); free(f1); free(link); free(dlink);
	free(dir);
	free(outside);
}

static void test_proc_stat(void **state)
{
	static const char line[] =
		"1234 (kiln) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 3 0 987654 "
		"12345678 900 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
	static const char tricky[] =
		"99 (a) b (c) Z 1 99 99 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0\n";
	char st = 0;
	uint64_t start = 0;

	assert_int_equal(mgr_parse_proc_stat(line, strlen(line), &st, &start), 0);
	assert_int_equal(st, 'S');
	assert_int_equal(start, 987654);
	/* comm with spaces and parentheses: fields count from the last ')'. */
	assert_int_equal(mgr_parse_proc_stat(tricky, strlen(tricky), &st, &start), 0);
	assert_int_equal(st, 'Z');
	assert_int_equal(start, 42);
	/* Not NUL-terminated: the length is the bound. */
	assert_int_equal(mgr_parse_proc_stat(line, 40, &st, &start), -1);
	assert_int_equal(mgr_parse_proc_stat("1 (x", 4, &st, &start), -1);
	static const char *const bad[] = {
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x 1",     /* not a number */
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99999999999999999999999 1",
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 12x 1",
		"1 (x)S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18",        /* too few fields */
	};
	for (unsigned i = 0; i < NELEM(bad); i++)
		if (mgr_parse_proc_stat(bad[i], strlen(bad[i]), &st, &start) != -1)
			fail_msg("accepted: %s", bad[i]);
	/* The same line with a good field 22 parses: the cases above fail for their one flaw. */
	assert_int_equal(mgr_parse_proc_stat("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
					     58, &st, &start), 0);
	assert_int_equal(start, 19);
	assert_int_equal(mgr_parse_proc_stat("", 0, &st, &start), -1);

	/* This process: running, started after boot; a pid beyond pid_max: -ESRCH. */
	assert_int_equal(mgr_proc_stat(getpid(), &st, &start), 0);
	assert_int_equal(st, 'R');
	assert_true(start > 0);
	assert_int_equal(mgr_proc_stat(2147483000, &st, &start), -ESRCH);
}

static void test_boot_id(void **state)
{
	char a[MGR_BOOT_ID_LEN + 1], b[MGR_BOOT_ID_LEN + 1];

	assert_int_equal(mgr_read_boot_id(a), 0);
	assert_int_equal(strlen(a), MGR_BOOT_ID_LEN);
	assert_int_equal(a[8], '-');
	assert_int_equal(mgr_read_boot_id(b), 0);
	assert_string_equal(a, b);
}

static void test_restart_decide(void **state)
{
	const struct mgr_exit ok = { MGR_EXIT_CODE, 0 }, fail = { MGR_EXIT_CODE, 1 },
		sig = { MGR_EXIT_SIGNAL, 9 }, unk = { MGR_EXIT_UNKNOWN, 0 },
		spawn = { MGR_EXIT_SPAWN_FAILED, ENOENT };
	static const struct { enum mgr_restart p; int exit; bool stop; unsigned streak; enum mgr_decision d; } t[] = {
		/* exit: 0 ok, 1 fail, 2 signal, 3 unknown, 4 spawn failure */
		{ MGR_RESTART_NEVER, 1, false, 0, MGR_KEEP_EXITED },
		{ MGR_RESTART_NEVER, 2, false, 0, MGR_KEEP_EXITED },
		{ MGR_RESTART_ON_FAILURE, 0, false, 0, MGR_KEEP_EXITED },
		{ MGR_RESTART_ON_FAILURE, 1, false, 0, MGR_RESTART },
		{ MGR_RESTART_ON_FAILURE, 2, false, 2, MGR_RESTART },
		{ MGR_RESTART_ON_FAILURE, 3, false, 0, MGR_KEEP_EXITED },
		{ MGR_RESTART_ON_FAILURE, 4, false, 0, MGR_RESTART },
		{ MGR_RESTART_ON_FAILURE, 1, false, 3, MGR_GIVE_UP },
		{ MGR_RESTART_ON_FAILURE, 1, true, 0, MGR_KEEP_EXITED },
		{ MGR_RESTART_ON_FAILURE, 0, false, 3, MGR_KEEP_EXITED },  /* no failure: no verdict */
		{ MGR_RESTART_ALWAYS, 0, false, 0, MGR_RESTART },
		{ MGR_RESTART_ALWAYS, 3, false, 0, MGR_RESTART },
		{ MGR_RESTART_ALWAYS, 2, false, 2, MGR_RESTART },
		{ MGR_RESTART_ALWAYS, 2, false, 3, MGR_GIVE_UP },
		{ MGR_RESTART_ALWAYS, 2, false, 99, MGR_GIVE_UP },
		{ MGR_RESTART_ALWAYS, 2, true, 0, MGR_KEEP_EXITED },
	};
	const struct mgr_exit *ex[] = { &ok, &fail, &sig, &unk, &spawn };
	struct mgr_params none = params;

	for (unsigned i = 0; i < NELEM(t); i++) {
		enum mgr_decision d = mgr_restart_decide(t[i].p, ex[t[i].exit], t[i].stop, t[i].streak,
							 &params);

		if (d != t[i].d)
			fail_msg("case %u: decision %d, expected %d", i, d, t[i].d);
	}
	/* restart_max 0: the policy never restarts, it gives up at once. */
	none.restart_max = 0;
	assert_int_equal(mgr_restart_decide(MGR_RESTART_ALWAYS, &fail, false, 0, &none), MGR_GIVE_UP);
}

static void test_backoff(void **state)
{
	struct mgr_params p = params;
	uint64_t want = 100;

	for (unsigned s = 0; s < 9; s++, want *= 2)
		assert_int_equal(mgr_backoff_ms(s, &p), want);  /* 100 .. 25600 */
	assert_int_equal(mgr_backoff_ms(9, &p), 30000);
	assert_int_equal(mgr_backoff_ms(1000, &p), 30000);
	assert_int_equal(mgr_backoff_ms(UINT32_MAX, &p), 30000);
	p.backoff_ms = 0;
	assert_int_equal(mgr_backoff_ms(5, &p), 0);
	p.backoff_ms = 50000;    /* a first delay above the cap is kept, never shortened */
	assert_int_equal(mgr_backoff_ms(0, &p), 50000);
	assert_int_equal(mgr_backoff_ms(7, &p), 50000);
	p.backoff_ms = 1;
	p.backoff_cap_ms = UINT64_MAX;   /* no overflow with no effective cap */
	assert_int_equal(mgr_backoff_ms(63, &p), 1ull << 63);
	assert_int_equal(mgr_backoff_ms(200, &p), UINT64_MAX);

	assert_int_equal(mgr_streak_after_run(4, 59999, &params), 4);
	assert_int_equal(mgr_streak_after_run(4, 60000, &params), 0);
	assert_int_equal(mgr_streak_after_run(0, 0, &params), 0);
}

static void test_exit(void **state)
{
	char buf[128];
	struct mgr_exit e;

	e = mgr_exit_from_wait(W_EXITCODE(3, 0));
	assert_int_equal(e.kind, MGR_EXIT_CODE);
	assert_int_equal(e.value, 3);
	assert_string_equal(mgr_exit_describe(&e, buf, sizeof(buf)), "exited with code 3");
	e = mgr_exit_from_wait(W_EXITCODE(0, SIGKILL));
	assert_int_equal(e.kind, MGR_EXIT_SIGNAL);
	assert_int_equal(e.value, SIGKILL);
	assert_string_equal(mgr_exit_describe(&e, buf, sizeof(buf)), "killed by signal 9 (SIGKILL)");
	e = (struct mgr_exit){ MGR_EXIT_UNKNOWN, 0 };
	assert_string_equal(mgr_exit_describe(&e, buf, sizeof(buf)), "exited (status unknown, adopted)");
	e = (struct mgr_exit){ MGR_EXIT_SPAWN_FAILED, ENOENT };
	assert_string_equal(mgr_exit_describe(&e, buf, sizeof(buf)),
			    "could not start the VMM: No such file or directory");
	e = (struct mgr_exit){ MGR_EXIT_NONE, 0 };
	assert_string_equal(mgr_exit_describe(&e, buf, sizeof(buf)), "");
}

static void test_view(void **state)
{
	struct mgr_record r = sample_record();
	json_t *j;

	r.state = MGR_VM_RESTARTING;
	r.started_at_ms = 1234;
	j = mgr_record_view(&r, "/s/vms/vm-7", true, 250);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "restarting");
	assert_true(json_is_null(json_object_get(j, "pid")));      /* no process while restarting */
	assert_false(json_is_true(json_object_get(j, "adopted")));
	assert_int_equal(json_integer_value(json_object_get(j, "next_restart_in_ms")), 250);
	assert_string_equal(json_string_value(json_object_get(j, "started_at")), "1970-01-01T00:00:01.234Z");
	assert_int_equal(json_integer_value(json_object_get(j, "exit_signal")), 9);
	assert_true(json_is_null(json_object_get(j, "exit_code")));
	assert_string_equal(json_string_value(json_object_get(j, "exit_reason")),
			    "killed by signal 9 (SIGKILL)");
	assert_string_equal(json_string_value(json_object_get(j, "api_sock")), "/s/vms/vm-7/api.sock");
	assert_string_equal(json_string_value(json_object_get(j, "restart")), "on-failure");
	json_decref(j);

	r.state = MGR_VM_RUNNING;
	r.exit = (struct mgr_exit){ MGR_EXIT_NONE, 0 };
	r.exited_at_ms = 0;
	j = mgr_record_view(&r, "/d", true, 0);
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), 4242);
	assert_true(json_is_true(json_object_get(j, "adopted")));
	assert_null(json_object_get(j, "next_restart_in_ms"));
	assert_true(json_is_null(json_object_get(j, "exit_reason")));
	assert_true(json_is_null(json_object_get(j, "exited_at")));
	json_decref(j);
}

static int args(struct mgr_options *o, char *msg, ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;

	va_start(ap, msg);
	argv[argc++] = "serve";
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	msg[0] = '\0';
	return mgr_parse_args(argc, argv, o, msg, 256);
}

static void test_args(void **state)
{
	struct mgr_options o;
	char msg[256];

	assert_int_equal(args(&o, msg, "--state-dir", "/s", "--api-sock", "/a", NULL), 0);
	assert_string_equal(o.state_dir, "/s");
	assert_string_equal(o.api_sock, "/a");
	assert_null(o.vmm);
	assert_int_equal(o.params.grace_ms, MGR_DEF_GRACE_MS);
	assert_int_equal(o.params.restart_max, MGR_DEF_RESTART_MAX);
	assert_int_equal(o.params.max_vms, MGR_DEF_MAX_VMS);

	assert_int_equal(args(&o, msg, "--state-dir=/s", "--api-sock", "/a", "--vmm", "/bin/true",
			      "--stop-grace-ms", "0", "--restart-backoff-ms", "100", "--restart-max",
			      "3", "--max-vms", "20", "-v", NULL), 0);
	assert_string_equal(o.vmm, "/bin/true");
	assert_int_equal(o.params.grace_ms, 0);
	assert_int_equal(o.params.backoff_ms, 100);
	assert_int_equal(o.params.restart_max, 3);
	assert_int_equal(o.params.max_vms, 20);
	assert_int_equal(o.verbose, 1);
	assert_null(o.mmds_size_limit);
	assert_null(o.api_max_body);

	assert_int_equal(args(&o, msg, "--state-dir", "/s", "--api-sock", "/a", "--mmds-size-limit", "4096",
			      "--http-api-max-payload-size", "1024", NULL), 0);
	assert_string_equal(o.mmds_size_limit, "4096");
	assert_string_equal(o.api_max_body, "1024");
	/* The message names the option, not its value. */
	assert_int_equal(args(&o, msg, "--state-dir", "/s", "--api-sock", "/a", "--mmds-size-limit", "1", NULL), -1);
	assert_non_null(strstr(msg, "--mmds-size-limit"));

	assert_int_equal(args(&o, msg, "--help", NULL), 0);
	assert_true(o.help);

	static const struct { const char *a[5]; const char *want; } bad[] = {
		{ { NULL }, "required" },
		{ { "--state-dir", "/s", NULL }, "required" },
		{ { "--api-sock", "/a", NULL }, "required" },
		{ { "--state-dir", "", "--api-sock", "/a", NULL }, "required" },
		{ { "--state-dir", "/s", "--api-sock", NULL }, "needs a value" },
		{ { "--bogus", NULL }, "unknown option" },
		{ { "--max-vms", "0", NULL }, "bad value" },
		{ { "--max-vms", "4097", NULL }, "bad value" },
		{ { "--restart-max", "-1", NULL }, "bad value" },
		{ { "--stop-grace-ms", "1s", NULL }, "bad value" },
		{ { "--restart-backoff-ms", "99999999999999999999", NULL }, "bad value" },
		{ { "--mmds-size-limit", "1", NULL }, "bad value" },
		{ { "--mmds-size-limit", "16777217", NULL }, "bad value" },
		{ { "--http-api-max-payload-size", "1023", NULL }, "bad value" },
		{ { "--http-api-max-payload-size", "64k", NULL }, "bad value" },
		{ { "--state-dir", "/s", "--api-sock", "/a", "extra" }, "unexpected argument" },
	};
	for (unsigned i = 0; i < NELEM(bad); i++) {
		assert_int_equal(args(&o, msg, bad[i].a[0], bad[i].a[1], bad[i].a[2], bad[i].a[3],
				      bad[i].a[4], NULL), -1);
		if (!strstr(msg, bad[i].want))
			fail_msg("case %u: \"%s\" lacks \"%s\"", i, msg, bad[i].want);
	}
	assert_non_null(strstr(mgr_usage, "--vmm PATH"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_create_body),
		cmocka_unit_test(test_record_json),
		cmocka_unit_test(test_record_reject),
		cmocka_unit_test(test_state_file),
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_rmtree),
		cmocka_unit_test(test_proc_stat),
		cmocka_unit_test(test_boot_id),
		cmocka_unit_test(test_restart_decide),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_exit),
		cmocka_unit_test(test_view),
		cmocka_unit_test(test_args),
	};

	return cmocka_run_group_tests_name("manager", tests, NULL, NULL);
}
