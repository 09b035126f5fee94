/* The manager's pure model: VM ids, REST routes, the POST /vms body, state records, and the restart policy. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <jansson.h>
#include "api/api.h"
#include "manager/manager.h"

void mgr_err_set(struct mgr_err *err, int status, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* Client text fit to quote in a message: api_echo's printable ASCII, at most 48 bytes, "..." when cut. */
static const char *echo(char *dst, size_t dstlen, const char *s, size_t len)
{
	return api_echo(dst, dstlen, s, len, 48);
}

int mgr_check_id(const char *id, size_t len, struct mgr_err *err)
{
	char e[64];

	if (len == 0) {
		mgr_err_set(err, 400, "VM id is empty");
		return -1;
	}
	if (len > MGR_ID_MAX) {
		mgr_err_set(err, 400, "VM id '%s' is longer than %d bytes", echo(e, sizeof(e), id, len),
			    MGR_ID_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-')) {
			mgr_err_set(err, 400, "VM id '%s': only A-Z a-z 0-9 _ - are allowed",
				    echo(e, sizeof(e), id, len));
			return -1;
		}
	}
	return 0;
}

static const char *const restart_names[] = {
	[MGR_RESTART_NEVER] = "never", [MGR_RESTART_ON_FAILURE] = "on-failure",
	[MGR_RESTART_ALWAYS] = "always",
};
static const char *const state_names[] = {
	[MGR_VM_RUNNING] = "running", [MGR_VM_STOPPING] = "stopping",
	[MGR_VM_RESTARTING] = "restarting", [MGR_VM_EXITED] = "exited",
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *mgr_restart_str(enum mgr_restart r)
{
	return (unsigned)r < NELEM(restart_names) ? restart_names[r] : "?";
}

int mgr_restart_parse(const char *s, enum mgr_restart *out)
{
	for (unsigned i = 0; i < NELEM(restart_names); i++)
		if (s && !strcmp(s, restart_names[i])) {
			*out = (enum mgr_restart)i;
			return 0;
		}
	return -1;
}

const char *mgr_state_str(enum mgr_vm_state s)
{
	return (unsigned)s < NELEM(state_names) ? state_names[s] : "?";
}

int mgr_state_parse(const char *s, enum mgr_vm_state *out)
{
	for (unsigned i = 0; i < NELEM(state_names); i++)
		if (s && !strcmp(s, state_names[i])) {
			*out = (enum mgr_vm_state)i;
			return 0;
		}
	return -1;
}

const char *mgr_exit_describe(const struct mgr_exit *e, char *buf, size_t len)
{
	const char *name;

	switch (e->kind) {
	case MGR_EXIT_CODE:
		snprintf(buf, len, "exited with code %d", e->value);
		break;
	case MGR_EXIT_SIGNAL:
		name = sigabbrev_np(e->value);
		if (name)
			snprintf(buf, len, "killed by signal %d (SIG%s)", e->value, name);
		else
			snprintf(buf, len, "killed by signal %d", e->value);
		break;
	case MGR_EXIT_UNKNOWN:
		snprintf(buf, len, "exited (status unknown, adopted)");
		break;
	case MGR_EXIT_SPAWN_FAILED:
		name = strerrordesc_np(e->value);
		snprintf(buf, len, "could not start the VMM: %s", name ? name : "unknown error");
		break;
	default:
		snprintf(buf, len, "%s", "");
		break;
	}
	return buf;
}

struct mgr_exit mgr_exit_from_wait(int wstatus)
{
	if (WIFEXITED(wstatus))
		return (struct mgr_exit){ MGR_EXIT_CODE, WEXITSTATUS(wstatus) };
	if (WIFSIGNALED(wstatus))
		return (struct mgr_exit){ MGR_EXIT_SIGNAL, WTERMSIG(wstatus) };
	return (struct mgr_exit){ MGR_EXIT_UNKNOWN, 0 };
}

enum mgr_decision mgr_restart_decide(enum mgr_restart policy, const struct mgr_exit *e,
				     bool stop_requested, unsigned streak, const struct mgr_params *p)
{
	if (stop_requested || policy == MGR_RESTART_NEVER)
		return MGR_KEEP_EXITED;
	if (policy == MGR_RESTART_ON_FAILURE) {
		bool failed = (e->kind == MGR_EXIT_CODE && e->value != 0) ||
			      e->kind == MGR_EXIT_SIGNAL || e->kind == MGR_EXIT_SPAWN_FAILED;

		if (!failed)
			return MGR_KEEP_EXITED;
	}
	return streak >= p->restart_max ? MGR_GIVE_UP : MGR_RESTART;
}

uint64_t mgr_backoff_ms(unsigned streak, const struct mgr_params *p)
{
	uint64_t cap = p->backoff_cap_ms > p->backoff_ms ? p->backoff_cap_ms : p->backoff_ms;
	uint64_t d = p->backoff_ms;

	/* Doubling stops at the cap, so the loop is bounded by 64 steps and never overflows. */
	for (unsigned i = 0; i < streak && d < cap && d; i++)
		d = d > cap / 2 ? cap : d * 2;
	return d < cap ? d : cap;
}

unsigned mgr_streak_after_run(unsigned streak, uint64_t ran_ms, const struct mgr_params *p)
{
	return ran_ms >= p->stable_ms ? 0 : streak;
}

/* --- state.json --- */

static json_t *exit_to_json(const struct mgr_exit *e)
{
	switch (e->kind) {
	case MGR_EXIT_CODE:         return json_pack("{s:i}", "code", e->value);
	case MGR_EXIT_SIGNAL:       return json_pack("{s:i}", "signal", e->value);
	case MGR_EXIT_UNKNOWN:      return json_pack("{s:b}", "unknown", 1);
	case MGR_EXIT_SPAWN_FAILED: return json_pack("{s:i}", "spawn_error", e->value);
	default:                    return json_null();
	}
}

json_t *mgr_record_to_json(const struct mgr_record *r)
{
	return json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:b, s:b, s:o}",
			 "version", MGR_STATE_VERSION,
			 "id", r->id,
			 "restart", mgr_restart_str(r->restart),
			 "state", mgr_state_str(r->state),
			 "pid", (json_int_t)r->pid,
			 "pid_start_ticks", (json_int_t)r->pid_start,
			 "boot_id", r->boot_id,
			 "started_at_ms", (json_int_t)r->started_at_ms,
			 "exited_at_ms", (json_int_t)r->exited_at_ms,
			 "restarts", (json_int_t)r->restarts,
			 "streak", (json_int_t)r->streak,
			 "stop_requested", r->stop_requested,
			 "gave_up", r->gave_up,
			 "exit", exit_to_json(&r->exit));
}

/* An integer field in [min, max]; -1 with a message otherwise. */
static int get_int(const json_t *j, const char *key, json_int_t min, json_int_t max, json_int_t *out,
		   struct mgr_err *err)
{
	const json_t *v = json_object_get(j, key);

	if (!json_is_integer(v)) {
		mgr_err_set(err, 400, "'%s' is missing or not an integer", key);
		return -1;
	}
	*out = json_integer_value(v);
	if (*out < min || *out > max) {
		mgr_err_set(err, 400, "'%s' is out of range", key);
		return -1;
	}
	return 0;
}

static int get_bool(const json_t *j, const char *key, bool *out, struct mgr_err *err)
{
	const json_t *v = json_object_get(j, key);

	if (!json_is_boolean(v)) {
		mgr_err_set(err, 400, "'%s' is missing or not a boolean", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

static const char *get_str(const json_t *j, const char *key, struct mgr_err *err)
{
	const json_t *v = json_object_get(j, key);

	if (!json_is_string(v)) {
		mgr_err_set(err, 400, "'%s' is missing or not a string", key);
		return NULL;
	}
	return json_string_value(v);
}

static int exit_from_json(const json_t *v, struct mgr_exit *e, struct mgr_err *err)
{
	const json_t *x;

	*e = (struct mgr_exit){ MGR_EXIT_NONE, 0 };
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v) || json_object_size(v) != 1)
		goto bad;
	if ((x = json_object_get(v, "code"))) {
		e->kind = MGR_EXIT_CODE;
	} else if ((x = json_object_get(v, "signal"))) {
		e->kind = MGR_EXIT_SIGNAL;
	} else if ((x = json_object_get(v, "spawn_error"))) {
		e->kind = MGR_EXIT_SPAWN_FAILED;
	} else if ((x = json_object_get(v, "unknown")) && json_is_true(x)) {
		e->kind = MGR_EXIT_UNKNOWN;
		return 0;
	} else {
		goto bad;
	}
	if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 4095)
		goto bad;
	e->value = (int)json_integer_value(x);
	return 0;
bad:
	mgr_err_set(err, 400, "'exit' is not one of {code}, {signal}, {spawn_error}, {unknown}");
	return -1;
}

int mgr_record_from_json(const json_t *j, struct mgr_record *r, struct mgr_err *err)
{
	json_int_t v;
	const char *s;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(j)) {
		mgr_err_set(err, 400, "not a JSON object");
		return -1;
	}
	if (get_int(j, "version", MGR_STATE_VERSION, MGR_STATE_VERSION, &v, err) < 0)
		return -1;
	if (!(s = get_str(j, "id", err)))
		return -1;
	if (mgr_check_id(s, json_string_length(json_object_get(j, "id")), err) < 0)
		return -1;
	memcpy(r->id, s, strlen(s) + 1);
	if (!(s = get_str(j, "restart", err)))
		return -1;
	if (mgr_restart_parse(s, &r->restart) < 0) {
		mgr_err_set(err, 400, "'restart' is not never, on-failure or always");
		return -1;
	}
	if (!(s = get_str(j, "state", err)))
		return -1;
	if (mgr_state_parse(s, &r->state) < 0) {
		mgr_err_set(err, 400, "'state' is not a known state");
		return -1;
	}
	/* pid_max is at most 2^22 (4194304) on Linux. */
	if (get_int(j, "pid", 0, 4194304, &v, err) < 0)
		return -1;
	r->pid = (pid_t)v;
	if (get_int(j, "pid_start_ticks", 0, INT64_MAX, &v, err) < 0)
		return -1;
	r->pid_start = (uint64_t)v;
	if (!(s = get_str(j, "boot_id", err)))
		return -1;
	if (strlen(s) > MGR_BOOT_ID_LEN) {
		mgr_err_set(err, 400, "'boot_id' is too long");
		return -1;
	}
	memcpy(r->boot_id, s, strlen(s) + 1);
	if (get_int(j, "started_at_ms", 0, INT64_MAX, &v, err) < 0)
		return -1;
	r->started_at_ms = v;
	if (get_int(j, "exited_at_ms", 0, INT64_MAX, &v, err) < 0)
		return -1;
	r->exited_at_ms = v;
	if (get_int(j, "restarts", 0, UINT32_MAX, &v, err) < 0)
		return -1;
	r->restarts = (unsigned)v;
	if (get_int(j, "streak", 0, UINT32_MAX, &v, err) < 0)
		return -1;
	r->streak = (unsigned)v;
	if (get_bool(j, "stop_requested", &r->stop_requested, err) < 0 ||
	    get_bool(j, "gave_up", &r->gave_up, err) < 0)
		return -1;
	if (exit_from_json(json_object_get(j, "exit"), &r->exit, err) < 0)
		return -1;
	if ((r->state == MGR_VM_RUNNING || r->state == MGR_VM_STOPPING) && r->pid == 0) {
		mgr_err_set(err, 400, "state '%s' without a pid", mgr_state_str(r->state));
		return -1;
	}
	return 0;
}

int mgr_parse_proc_stat(const char *buf, size_t len, char *state, uint64_t *starttime)
{
	const char *p = memrchr(buf, ')', len), *end = buf + len;
	unsigned field = 3;
	char *num_end;
	unsigned long long v;

	if (!p || p + 2 >= end || p[1] != ' ')
		return -1;
	p += 2;
	*state = *p;
	/* Skip to field 22; every field is one space-separated token after comm. */
	while (field < 22) {
		while (p < end && *p != ' ')
			p++;
		if (p >= end)
			return -1;
		p++;
		field++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return -1;
	errno = 0;
	/* buf need not be NUL-terminated: copy the token out. */
	{
		char tok[24];
		size_t n = 0;

		while (p + n < end && p[n] >= '0' && p[n] <= '9' && n < sizeof(tok) - 1) {
			tok[n] = p[n];
			n++;
		}
		tok[n] = '\0';
		if (p + n < end && p[n] != ' ' && p[n] != '\n')
			return -1;
		v = strtoull(tok, &num_end, 10);
		if (errno || *num_end)
			return -1;
	}
	*starttime = v;
	return 0;
}

/* --- routes --- */

static int method_parse(const char *m, enum mgr_method *out)
{
	if (!strcmp(m, "GET"))
		*out = MGR_GET;
	else if (!strcmp(m, "POST"))
		*out = MGR_POST;
	else if (!strcmp(m, "DELETE"))
		*out = MGR_DELETE;
	else
		return -1;
	return 0;
}

int mgr_route(const char *method, const char *path, struct mgr_route *r, struct mgr_err *err)
{
	static const struct { enum mgr_ep ep; unsigned methods; const char *allow; } eps[] = {
		{ MGR_EP_ROOT, 1u << MGR_GET, "GET" },
		{ MGR_EP_VMS, 1u << MGR_GET | 1u << MGR_POST, "GET, POST" },
		{ MGR_EP_VM, 1u << MGR_GET | 1u << MGR_DELETE, "GET, DELETE" },
		{ MGR_EP_VM_STOP, 1u << MGR_POST, "POST" },
		{ MGR_EP_VM_START, 1u << MGR_POST, "POST" },
	};
	size_t plen = strlen(path), idlen;
	const char *id, *rest;
	char e[64];

	memset(r, 0, sizeof(*r));
	if (!strcmp(path, "/")) {
		r->ep = MGR_EP_ROOT;
	} else if (!strcmp(path, "/vms")) {
		r->ep = MGR_EP_VMS;
	} else if (!strncmp(path, "/vms/", 5)) {
		id = path + 5;
		rest = strchr(id, '/');
		idlen = rest ? (size_t)(rest - id) : strlen(id);
		if (!rest)
			r->ep = MGR_EP_VM;
		else if (!strcmp(rest, "/stop"))
			r->ep = MGR_EP_VM_STOP;
		else if (!strcmp(rest, "/start"))
			r->ep = MGR_EP_VM_START;
		else
			goto not_found;
		if (mgr_check_id(id, idlen, err) < 0)
			return -1;
		memcpy(r->id, id, idlen);
		r->id[idlen] = '\0';
	} else {
		goto not_found;
	}
	for (unsigned i = 0; i < NELEM(eps); i++) {
		if (eps[i].ep != r->ep)
			continue;
		if (method_parse(method, &r->method) < 0 || !(eps[i].methods & (1u << r->method))) {
			mgr_err_set(err, 405, "method %s not allowed on %s (allowed: %s)",
				    echo(e, sizeof(e), method, strlen(method)),
				    r->ep == MGR_EP_ROOT ? "/" : r->ep == MGR_EP_VMS ? "/vms" :
				    r->ep == MGR_EP_VM ? "/vms/{id}" : r->ep == MGR_EP_VM_STOP ?
				    "/vms/{id}/stop" : "/vms/{id}/start", eps[i].allow);
			return -1;
		}
		return 0;
	}
not_found:
	mgr_err_set(err, 404, "no such path: %s", echo(e, sizeof(e), path, plen));
	return -1;
}

int mgr_parse_create(const char *body, size_t len, struct mgr_create *c, struct mgr_err *err)
{
	json_error_t jerr;
	json_t *j, *v;
	const char *key;
	char e[64];

	memset(c, 0, sizeof(*c));
	if (len > MGR_MAX_BODY) {
		mgr_err_set(err, 413, "request body over %d bytes", MGR_MAX_BODY);
		return -1;
	}
	if (len == 0) {
		mgr_err_set(err, 400, "POST /vms needs a body: {\"id\": ..., \"config\": {...}}");
		return -1;
	}
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		mgr_err_set(err, 400, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
			    echo(e, sizeof(e), jerr.text, strlen(jerr.text)));
		return -1;
	}
	if (!json_is_object(j)) {
		mgr_err_set(err, 400, "the body must be a JSON object");
		goto fail;
	}
	json_object_foreach(j, key, v) {
		if (strcmp(key, "id") && strcmp(key, "config") && strcmp(key, "restart")) {
			mgr_err_set(err, 400, "unknown field '%s' (fields: id, config, restart)",
				    echo(e, sizeof(e), key, strlen(key)));
			goto fail;
		}
	}
	v = json_object_get(j, "id");
	if (!json_is_string(v)) {
		mgr_err_set(err, 400, "'id' is %s", v && !json_is_null(v) ? "not a string" : "missing");
		goto fail;
	}
	if (mgr_check_id(json_string_value(v), json_string_length(v), err) < 0)
		goto fail;
	memcpy(c->id, json_string_value(v), json_string_length(v) + 1);
	v = json_object_get(j, "restart");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || mgr_restart_parse(json_string_value(v), &c->restart) < 0 ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			mgr_err_set(err, 400, "'restart' must be \"never\", \"on-failure\" or \"always\"");
			goto fail;
		}
	}
	v = json_object_get(j, "config");
	if (!json_is_object(v)) {
		mgr_err_set(err, 400, "'config' is %s", v && !json_is_null(v) ?
			    "not an object (the JSON of GET /vm/config)" : "missing");
		goto fail;
	}
	c->config = json_incref(v);
	json_decref(j);
	return 0;
fail:
	json_decref(j);
	return -1;
}

/* ms since the epoch as RFC 3339 UTC with milliseconds; json null for 0. */
static json_t *time_json(int64_t ms)
{
	struct tm tm;
	time_t t;
	char buf[80];

	if (ms <= 0)
		return json_null();
	t = (time_t)(ms / 1000);
	if (!gmtime_r(&t, &tm))
		return json_null();
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return json_string(buf);
}

/* "DIR/NAME" as a JSON string. */
static json_t *path_json(const char *dir, const char *name)
{
	char buf[4096 + 64];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return json_string(buf);
}

json_t *mgr_record_view(const struct mgr_record *r, const char *dir, bool adopted,
			uint64_t next_restart_ms)
{
	char why[128];
	bool has_proc = r->state == MGR_VM_RUNNING || r->state == MGR_VM_STOPPING;
	json_t *j;

	mgr_exit_describe(&r->exit, why, sizeof(why));
	j = json_pack("{s:s, s:s, s:s, s:o, s:b, s:o, s:o, s:I, s:b, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		      "id", r->id,
		      "state", mgr_state_str(r->state),
		      "restart", mgr_restart_str(r->restart),
		      "pid", has_proc ? json_integer(r->pid) : json_null(),
		      "adopted", has_proc && adopted,
		      "started_at", time_json(r->started_at_ms),
		      "exited_at", time_json(r->exited_at_ms),
		      "restarts", (json_int_t)r->restarts,
		      "restart_gave_up", r->gave_up,
		      "stop_requested", r->stop_requested,
		      "exit_code", r->exit.kind == MGR_EXIT_CODE ? json_integer(r->exit.value) : json_null(),
		      "exit_signal", r->exit.kind == MGR_EXIT_SIGNAL ? json_integer(r->exit.value) : json_null(),
		      "exit_reason", r->exit.kind != MGR_EXIT_NONE ? json_string(why) : json_null(),
		      "api_sock", path_json(dir, "api.sock"),
		      "config_file", path_json(dir, "config.json"),
		      "console_log", path_json(dir, "console.log"),
		      "kiln_log", path_json(dir, "kiln.log"));
	if (j && r->state == MGR_VM_RESTARTING)
		json_object_set_new(j, "next_restart_in_ms", json_integer((json_int_t)next_restart_ms));
	return j;
}
