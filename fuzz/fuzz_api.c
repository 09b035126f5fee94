/* libFuzzer target: a hostile API client's method, path and JSON body fed to the request model (route, validate, fault). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "api/api.h"

/*
 * Input layout (all of it client-controlled):
 *   [0]     method: GET, PUT, PATCH, or (>= 0xf0) raw bytes up to the first '\n'
 *   [1]     path: one of the served paths, or (>= 0xf0) raw bytes up to the next '\n'
 *   rest    the body
 * Invariants checked whatever the input: a refusal is a 400 or 500 whose
 * message is printable ASCII and whose fault body is valid JSON carrying it;
 * an accepted request frees cleanly; PATCH /machine-config merges keep the
 * checks; api_apply_config leaves cfg untouched on refusal.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static const char *const methods[] = { "GET", "PUT", "PATCH" };
static const char *const paths[] = {
	"/", "/actions", "/boot-source", "/machine-config", "/drives/rootfs", "/drives/a_1",
	"/network-interfaces/eth0", "/logger", "/metrics", "/mmds", "/mmds/config", "/entropy",
	"/serial", "/vm", "/vm/config", "/version", "/balloon", "/drives/",
};

static void check_err(const struct api_err *e)
{
	char *body;
	json_t *j;

	CHECK(e->status == 400 || e->status == 500);
	CHECK(memchr(e->msg, '\0', sizeof(e->msg)) != NULL);
	for (const char *p = e->msg; *p; p++)
		CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
	body = api_fault_body(e->msg);
	if (!body)
		return;   /* ENOMEM */
	j = json_loads(body, 0, NULL);
	CHECK(j && json_is_string(json_object_get(j, "fault_message")));
	CHECK(!strcmp(json_string_value(json_object_get(j, "fault_message")), e->msg));
	json_decref(j);
	free(body);
}

/* Take bytes up to '\n' (or the end) from *p. */
static size_t take_line(const uint8_t **p, size_t *left, const uint8_t **start)
{
	const uint8_t *nl = memchr(*p, '\n', *left);
	size_t n = nl ? (size_t)(nl - *p) : *left;

	*start = *p;
	*p += n + (nl ? 1 : 0);
	*left -= n + (nl ? 1 : 0);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_err e = { 0 };
	struct api_route r;
	struct api_request req;
	const uint8_t *p = data, *m, *path;
	size_t left = size, mlen, plen;
	int ret;

	if (size < 2)
		return 0;
	p += 2;
	left -= 2;
	if (data[0] >= 0xf0) {
		mlen = take_line(&p, &left, &m);
	} else {
		m = (const uint8_t *)methods[data[0] % 3];
		mlen = strlen((const char *)m);
	}
	if (data[1] >= 0xf0) {
		plen = take_line(&p, &left, &path);
	} else {
		path = (const uint8_t *)paths[data[1] % (sizeof(paths) / sizeof(paths[0]))];
		plen = strlen((const char *)path);
	}
	ret = api_route((const char *)m, mlen, (const char *)path, plen, &r, &e);
	if (ret) {
		CHECK(ret == -EINVAL);
		check_err(&e);
		return 0;
	}
	CHECK((unsigned)r.ep < API_EP_COUNT && (unsigned)r.method < API_METHOD_COUNT);
	CHECK(strlen(r.id) <= API_ID_MAX);
	memset(&e, 0, sizeof(e));
	ret = api_parse_body(&r, left ? (const char *)p : NULL, left, API_MAX_BODY, &req, &e);
	if (ret) {
		CHECK(ret == -EINVAL || ret == -ENOMEM);
		check_err(&e);
		return 0;
	}
	(void)api_check_phase(r.ep, r.method, data[0] & 1, NULL);
	if (req.kind == API_BODY_MACHINE_CONFIG) {
		struct api_machine_config cur = { .vcpu_count = 1, .mem_size_mib = 128 };
		struct vm_config cfg, before;
		struct api_boot_source bs = { .kernel_image_path = (char *)"/k" };

		if (r.method == API_PATCH && api_machine_config_patch(&cur, &req.u.machine, &e))
			check_err(&e);
		memset(&cfg, 0x5a, sizeof(cfg));
		before = cfg;
		memset(&e, 0, sizeof(e));
		if (api_apply_config(&bs, r.method == API_PUT ? &req.u.machine : &cur, &cfg, &e)) {
			check_err(&e);
			CHECK(!memcmp(&cfg, &before, sizeof(cfg)));
		} else {
			CHECK(cfg.ncpus >= 1 && cfg.ncpus <= API_VCPU_MAX);
		}
	}
	api_request_free(&req);
	CHECK(req.kind == API_BODY_NONE);
	return 0;
}
