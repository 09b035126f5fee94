/* Unit tests for the metadata service: path lookup, formats, token lifecycle, the three layouts from one JSON, HTTP parsing limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "net/mmds.h"

static const uint8_t UUID[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
				  0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00 };

static const char JSON[] =
	"{\"hostname\": \"web1\", \"user-data\": \"#cloud-config\\n\","
	" \"public-keys\": [\"ssh-ed25519 AAAAfromjson a@b\"],"
	" \"latest\": {\"meta-data\": {\"ami-id\": \"ami-1234\", \"placement\": {\"zone\": \"z1\"}}},"
	" \"app\": {\"port\": 8080, \"name\": \"demo\", \"tags\": [\"x\", \"y\"]}}";
static const char KEYS[] = "# my keys\n\nssh-ed25519 AAAAfromfile user@host\r\n";

struct fx {
	struct mmds m;
};

static int setup_v(void **state, enum mmds_version v, const char *json, const char *keys)
{
	struct fx *f = calloc(1, sizeof(*f));
	char msg[200];

	assert_non_null(f);
	assert_int_equal(mmds_init(&f->m, json, json ? strlen(json) : 0, keys, v, UUID, msg, sizeof(msg)), 0);
	*state = f;
	return 0;
}
static int setup_v1(void **state) { return setup_v(state, MMDS_V1, JSON, KEYS); }
static int setup_v2(void **state) { return setup_v(state, MMDS_V2, JSON, KEYS); }

static int teardown(void **state)
{
	struct fx *f = *state;

	mmds_fini(&f->m);
	free(f);
	return 0;
}

/* Do one request; returns status, body copied NUL-terminated into out. */
static int req(struct mmds *m, enum mmds_method meth, const char *path, bool json, const char *token,
	       const char *ttl, uint64_t now, char *out, size_t outlen)
{
	struct mmds_request rq = { .method = meth, .path = path, .accept_json = json, .token = token, .ttl = ttl };
	struct mmds_response rsp;
	int st;

	mmds_handle(m, &rq, now, &rsp);
	if (out) {
		snprintf(out, outlen, "%.*s", (int)rsp.body_len, rsp.body ? rsp.body : "");
	}
	st = rsp.status;
	free(rsp.body);
	return st;
}

static void get_ok(struct mmds *m, const char *path, bool json, const char *want)
{
	char b[4096];

	assert_int_equal(req(m, MMDS_GET, path, json, NULL, NULL, 0, b, sizeof(b)), 200);
	assert_string_equal(b, want);
}

static void test_mmds_raw_paths(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	char b[512];

	get_ok(m, "/app/name", false, "demo");
	get_ok(m, "/app/name", true, "\"demo\"");
	get_ok(m, "/app", false, "port\nname\ntags");
	get_ok(m, "/app/", false, "port\nname\ntags");
	get_ok(m, "//app//name", false, "demo");
	get_ok(m, "/app/tags/1", true, "\"y\"");
	get_ok(m, "/app/port", true, "8080");
	/* Numbers and arrays have no text form (Firecracker: 501). */
	assert_int_equal(req(m, MMDS_GET, "/app/port", false, NULL, NULL, 0, b, sizeof(b)), 501);
	assert_int_equal(req(m, MMDS_GET, "/app/tags", false, NULL, NULL, 0, b, sizeof(b)), 501);
	assert_int_equal(req(m, MMDS_GET, "/app/nope", false, NULL, NULL, 0, b, sizeof(b)), 404);
	assert_int_equal(req(m, MMDS_GET, "/app/name/deeper", false, NULL, NULL, 0, b, sizeof(b)), 404);
	assert_int_equal(req(m, MMDS_GET, "/app/tags/9", false, NULL, NULL, 0, b, sizeof(b)), 404);
	assert_int_equal(req(m, MMDS_GET, "/app/tags/-1", false, NULL, NULL, 0, b, sizeof(b)), 404);
	/* The root lists the tree plus the two generated layouts. */
	assert_int_equal(req(m, MMDS_GET, "/", false, NULL, NULL, 0, b, sizeof(b)), 200);
	assert_non_null(strstr(b, "app/"));
	assert_non_null(strstr(b, "latest/"));
	assert_non_null(strstr(b, "openstack/"));
	/* Other methods: 405. */
	assert_int_equal(req(m, MMDS_OTHER, "/app", false, NULL, NULL, 0, b, sizeof(b)), 405);
	assert_int_equal(req(m, MMDS_PUT, "/app", false, NULL, "60", 0, b, sizeof(b)), 404);
}

static void test_mmds_ec2_layout(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	char b[1024];

	/* The user's literal values are served, generated ones fill the gaps. */
	get_ok(m, "/latest/meta-data/ami-id", false, "ami-1234");
	get_ok(m, "/latest/meta-data/placement/zone", false, "z1");
	get_ok(m, "/latest/meta-data/hostname", false, "web1");
	get_ok(m, "/latest/meta-data/local-hostname", false, "web1");
	get_ok(m, "/latest/meta-data/instance-id", false, "i-1122334455664788");
	get_ok(m, "/latest/user-data", false, "#cloud-config\n");
	assert_int_equal(req(m, MMDS_GET, "/latest/meta-data/", false, NULL, NULL, 0, b, sizeof(b)), 200);
	assert_non_null(strstr(b, "public-keys/"));
	assert_non_null(strstr(b, "placement/"));
	assert_non_null(strstr(b, "instance-id"));
	/* EC2's key listing form, then each key under N/openssh-key; JSON keys first, --ssh-key after. */
	get_ok(m, "/latest/meta-data/public-keys", false, "0=key0\n1=key1");
	get_ok(m, "/latest/meta-data/public-keys/0/", false, "openssh-key");
	get_ok(m, "/latest/meta-data/public-keys/0/openssh-key", false, "ssh-ed25519 AAAAfromjson a@b");
	get_ok(m, "/latest/meta-data/public-keys/1/openssh-key", false, "ssh-ed25519 AAAAfromfile user@host");
	/* Dated versions (cloud-init asks 2009-04-04 and later) alias latest. */
	get_ok(m, "/2009-04-04/meta-data/instance-id", false, "i-1122334455664788");
	assert_int_equal(req(m, MMDS_GET, "/2009-04-0x/meta-data/instance-id", false, NULL, NULL, 0, b, sizeof(b)), 404);
}

static void test_mmds_openstack_layout(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	char b[2048];
	json_t *j;
	json_error_t e;

	get_ok(m, "/openstack", false, "latest");
	get_ok(m, "/openstack/latest/", false, "meta_data.json\nuser_data");
	get_ok(m, "/openstack/latest/user_data", false, "#cloud-config\n");
	assert_int_equal(req(m, MMDS_GET, "/openstack/latest/meta_data.json", false, NULL, NULL, 0, b, sizeof(b)), 200);
	j = json_loads(b, 0, &e);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "uuid")), "11223344-5566-4788-99aa-bbccddeeff00");
	assert_string_equal(json_string_value(json_object_get(j, "hostname")), "web1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "public_keys"), "key1")),
			    "ssh-ed25519 AAAAfromfile user@host");
	assert_int_equal(json_array_size(json_object_get(j, "keys")), 2);
	json_decref(j);
	assert_int_equal(req(m, MMDS_GET, "/openstack/latest/vendor_data.json", false, NULL, NULL, 0, b, sizeof(b)), 404);
	assert_int_equal(req(m, MMDS_GET, "/openstack/foo/meta_data.json", false, NULL, NULL, 0, b, sizeof(b)), 404);
}

/* --ssh-key alone (no --metadata) fills all three layouts. */
static void test_mmds_ssh_key_only(void **state)
{
	struct mmds m;
	char b[2048], msg[100];

	assert_int_equal(mmds_init(&m, NULL, 0, "ssh-rsa AAAAonly k\n", MMDS_V1, UUID, msg, sizeof(msg)), 0);
	get_ok(&m, "/latest/meta-data/public-keys/0/openssh-key", false, "ssh-rsa AAAAonly k");
	get_ok(&m, "/latest/meta-data/hostname", false, "kiln");
	assert_int_equal(req(&m, MMDS_GET, "/openstack/latest/meta_data.json", false, NULL, NULL, 0, b, sizeof(b)), 200);
	assert_non_null(strstr(b, "ssh-rsa AAAAonly k"));
	get_ok(&m, "/openstack/latest", false, "meta_data.json");
	assert_int_equal(req(&m, MMDS_GET, "/latest/user-data", false, NULL, NULL, 0, b, sizeof(b)), 404);
	mmds_fini(&m);
}

static void test_mmds_bad_json(void **state)
{
	struct mmds m;
	char msg[200];

	assert_int_equal(mmds_init(&m, "{\"a\": ", 6, NULL, MMDS_V1, UUID, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "line 1"));
	assert_int_equal(mmds_init(&m, "[1]", 3, NULL, MMDS_V1, UUID, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "object"));
	assert_int_equal(mmds_init(&m, "{\"a\":1,\"a\":2}", 13, NULL, MMDS_V1, UUID, msg, sizeof(msg)), -1);
}

static void test_mmds_token_lifecycle(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	char tok[128], b[256];

	/* V2: no token, a made-up one: 401. */
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, NULL, NULL, 1000, b, sizeof(b)), 401);
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, "bogus", NULL, 1000, b, sizeof(b)), 401);
	/* TTL: required, 1..21600, digits only. */
	assert_int_equal(req(m, MMDS_PUT, "/latest/api/token", false, NULL, NULL, 1000, b, sizeof(b)), 400);
	assert_int_equal(req(m, MMDS_PUT, "/latest/api/token", false, NULL, "0", 1000, b, sizeof(b)), 400);
	assert_int_equal(req(m, MMDS_PUT, "/latest/api/token", false, NULL, "21601", 1000, b, sizeof(b)), 400);
	assert_int_equal(req(m, MMDS_PUT, "/latest/api/token", false, NULL, "-5", 1000, b, sizeof(b)), 400);
	assert_int_equal(req(m, MMDS_PUT, "/latest/api/token", false, NULL, "10s", 1000, b, sizeof(b)), 400);
	assert_int_equal(req(m, MMDS_PUT, "/latest/api/token", false, NULL, "99999999999999999999", 1000, b, sizeof(b)), 400);
	/* A token for 10 s. */
	assert_int_equal(req(m, MMDS_PUT, "/latest/api/token", false, NULL, "10", 1000, tok, sizeof(tok)), 200);
	assert_true(strlen(tok) >= 40);
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, tok, NULL, 1000, b, sizeof(b)), 200);
	assert_string_equal(b, "demo");
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, tok, NULL, 10999, b, sizeof(b)), 200);
	/* A token with one character changed is not valid. */
	tok[3] ^= 1;
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, tok, NULL, 2000, b, sizeof(b)), 401);
	tok[3] ^= 1;
	/* Expired at exactly put time + ttl. */
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, tok, NULL, 11000, b, sizeof(b)), 401);
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, tok, NULL, 12000, b, sizeof(b)), 401);
	/* Every layout needs the token in V2. */
	assert_int_equal(req(m, MMDS_GET, "/openstack/latest/meta_data.json", false, NULL, NULL, 1, b, sizeof(b)), 401);
	assert_int_equal(req(m, MMDS_GET, "/latest/meta-data/", false, NULL, NULL, 1, b, sizeof(b)), 401);
}

/* Filling the token store replaces the oldest-expiring token; the store stays bounded. */
static void test_mmds_token_store_bounded(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	char first[128], tok[128], b[64];

	assert_int_equal(req(m, MMDS_PUT, "/latest/api/token", false, NULL, "1", 0, first, sizeof(first)), 200);
	for (int i = 0; i < MMDS_MAX_TOKENS; i++)
		assert_int_equal(req(m, MMDS_PUT, "/latest/api/token", false, NULL, "100", 0, tok, sizeof(tok)), 200);
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, first, NULL, 10, b, sizeof(b)), 401);
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, tok, NULL, 10, b, sizeof(b)), 200);
}

static void test_mmds_v1_ignores_tokens(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	char tok[128], b[64];

	assert_int_equal(req(m, MMDS_GET, "/app/name", false, NULL, NULL, 0, b, sizeof(b)), 200);
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, "wrong", NULL, 0, b, sizeof(b)), 200);
	/* The session flow works in V1 too (Firecracker: eases the move to V2). */
	assert_int_equal(req(m, MMDS_PUT, "/latest/api/token", false, NULL, "60", 0, tok, sizeof(tok)), 200);
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, tok, NULL, 0, b, sizeof(b)), 200);
}

/* ---- HTTP ---- */

static size_t MIN_CHUNK(size_t a, size_t b)
{
	return a < b ? a : b;
}

static int http(struct mmds *m, const char *raw, size_t chunk, char *out, size_t outlen)
{
	struct mmds_http *h = mmds_http_new(m);
	size_t len = strlen(raw), off = 0, olen;
	int r = 0, status = -1;
	const char *o;

	assert_non_null(h);
	while (off < len && r == 0) {
		size_t n = MIN_CHUNK(chunk, len - off);

		r = mmds_http_feed(h, raw + off, n, 5000);
		off += n;
	}
	if (r == 0)
		r = mmds_http_feed(h, NULL, 0, 5000); /* the client closed */
	if (r == 1) {
		o = mmds_http_output(h, &olen);
		assert_true(olen > 12);
		assert_memory_equal(o, "HTTP/1.1 ", 9);
		status = atoi(o + 9);
		if (out)
			snprintf(out, outlen, "%.*s", (int)olen, o);
	}
	mmds_http_free(h);
	return status;
}

static void test_http_requests(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	char out[2048], tok[128], rq[512];
	const char *body;

	/* Whole, and one byte at a time: the same answer. */
	assert_int_equal(http(m, "GET /app/name HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", 4096, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "Content-Length: 4\r\n"));
	assert_non_null(strstr(out, "Connection: close\r\n"));
	assert_string_equal(strstr(out, "\r\n\r\n") + 4, "demo");
	assert_int_equal(http(m, "GET /app/name HTTP/1.1\r\nHost: x\r\n\r\n", 1, out, sizeof(out)), 200);
	assert_string_equal(strstr(out, "\r\n\r\n") + 4, "demo");
	/* Accept: application/json, a query string is ignored. */
	assert_int_equal(http(m, "GET /app/name?x=1 HTTP/1.1\r\nAccept: text/html, application/json\r\n\r\n", 7, out,
			      sizeof(out)), 200);
	assert_string_equal(strstr(out, "\r\n\r\n") + 4, "\"demo\"");
	assert_non_null(strstr(out, "Content-Type: application/json"));
	/* The V2 session over HTTP, header names in any case, the AWS spelling too. */
	m->version = MMDS_V2;
	assert_int_equal(http(m, "GET /app/name HTTP/1.1\r\n\r\n", 4096, out, sizeof(out)), 401);
	assert_int_equal(http(m, "PUT /latest/api/token HTTP/1.1\r\nx-aws-ec2-metadata-token-ttl-seconds: 30\r\n"
			      "Content-Length: 0\r\n\r\n", 3, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "X-metadata-token-ttl-seconds: 30\r\n"));
	body = strstr(out, "\r\n\r\n") + 4;
	snprintf(tok, sizeof(tok), "%s", body);
	snprintf(rq, sizeof(rq), "GET /latest/meta-data/hostname HTTP/1.1\r\nX-Metadata-Token: %s \r\n\r\n", tok);
	assert_int_equal(http(m, rq, 5, out, sizeof(out)), 200);
	assert_string_equal(strstr(out, "\r\n\r\n") + 4, "web1");
	/* X-Forwarded-For on the token PUT is refused (Firecracker). */
	assert_int_equal(http(m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 30\r\n"
			      "X-Forwarded-For: 1.2.3.4\r\n\r\n", 4096, out, sizeof(out)), 400);
	/* Two token headers are suspicious: not valid. */
	snprintf(rq, sizeof(rq), "GET /app/name HTTP/1.1\r\nX-metadata-token: %s\r\nX-metadata-token: %s\r\n\r\n",
		 tok, tok);
	assert_int_equal(http(m, rq, 4096, out, sizeof(out)), 401);
	/* HEAD, DELETE: 405 with Allow. */
	assert_int_equal(http(m, "DELETE /app HTTP/1.1\r\n\r\n", 4096, out, sizeof(out)), 405);
	assert_non_null(strstr(out, "Allow: GET, PUT\r\n"));
}

static void test_http_hostile(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	char *big;
	size_t n;
	struct mmds_http *h;

	/* Garbage, a bad version, a bare LF storm: 400. */
	assert_int_equal(http(m, "\x01\x02\x03 junk\r\n\r\n", 4096, NULL, 0), 400);
	assert_int_equal(http(m, "GET / HTTP/9.x\r\n\r\n", 4096, NULL, 0), 400);
	assert_int_equal(http(m, "GET /app HTTP/1.1\r\nBad Header\r\n\r\n", 4096, NULL, 0), 400);
	/* A request cut short by the client: 400, not a hang. */
	assert_int_equal(http(m, "GET /app HTTP/1.1\r\nHost: x\r\n", 4096, NULL, 0), 400);
	/* Connect-and-close: nothing to answer. */
	h = mmds_http_new(m);
	assert_int_equal(mmds_http_feed(h, NULL, 0, 0), -1);
	mmds_http_free(h);
	/* A URL over the limit: 414. */
	n = MMDS_MAX_URL + 100;
	big = malloc(n + 64);
	assert_non_null(big);
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', n);
	strcpy(big + 5 + n, " HTTP/1.1\r\n\r\n");
	assert_int_equal(http(m, big, 100, NULL, 0), 414);
	free(big);
	/* Headers past the request limit: 413, whatever the chunking. */
	n = MMDS_MAX_REQUEST + 10;
	big = malloc(n + 64);
	assert_non_null(big);
	strcpy(big, "GET / HTTP/1.1\r\nX-Pad: ");
	memset(big + strlen(big), 'p', n);
	big[23 + n] = 0;
	strcat(big, "\r\n\r\n");
	assert_int_equal(http(m, big, 4096, NULL, 0), 413);
	assert_int_equal(http(m, big, 1000, NULL, 0), 413);
	free(big);
	/*
	 * A header name longer than kiln keeps (40 bytes), arriving in pieces:
	 * the later pieces must not be appended past the buffer (found by fuzz_mmds).
	 */
	big = malloc(512);
	assert_non_null(big);
	strcpy(big, "GET /nope HTTP/1.1\r\nX-");
	n = strlen(big);
	memset(big + n, 'n', 200);
	strcpy(big + n + 200, ": v\r\n\r\n");
	assert_int_equal(http(m, big, 1, NULL, 0), 401);
	assert_int_equal(http(m, big, 7, NULL, 0), 401);
	free(big);
	/* A declared body too big is refused at the headers. */
	assert_int_equal(http(m, "PUT /latest/api/token HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n", 4096, NULL, 0),
			 413);
	/* Pipelined requests: the first is answered, the rest ignored (one request per connection). */
	assert_int_equal(http(m, "GET /app/name HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n", 4096, NULL, 0), 401);
}

static void test_http_v1_pipelined(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	char out[512];

	assert_int_equal(http(m, "GET /app/name HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n", 4096, out, sizeof(out)), 200);
	assert_string_equal(strstr(out, "\r\n\r\n") + 4, "demo");
	/* HTTP/1.0 works. */
	assert_int_equal(http(m, "GET /latest/meta-data/ami-id HTTP/1.0\r\n\r\n", 4096, out, sizeof(out)), 200);
}

static void test_mmds_set_root(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	json_t *r = json_pack("{s{s{ss}}}", "latest", "meta-data", "instance-id", "i-new");

	assert_int_equal(mmds_set_root(m, r), 0);
	json_decref(r);
	get_ok(m, "/latest/meta-data/instance-id", false, "i-new");
	/* The --ssh-key key survives an update of the tree. */
	get_ok(m, "/latest/meta-data/public-keys/0/openssh-key", false, "ssh-ed25519 AAAAfromfile user@host");
	r = json_array();
	assert_int_equal(mmds_set_root(m, r), -1);
	json_decref(r);
	get_ok(m, "/latest/meta-data/instance-id", false, "i-new");
}

/* PUT /mmds/config's knobs: imds_compat answers text whatever Accept says; version; a "uuid" in a new root. */
static void test_mmds_configure(void **state)
{
	struct mmds *m = &((struct fx *)*state)->m;
	char out[4096];
	json_t *r;
	char *d;

	assert_int_equal(req(m, MMDS_GET, "/app", true, NULL, NULL, 0, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "\"name\":\"demo\""));
	mmds_configure(m, MMDS_V1, m->addr, true);
	assert_int_equal(req(m, MMDS_GET, "/app", true, NULL, NULL, 0, out, sizeof(out)), 200);
	assert_string_equal(out, "port\nname\ntags");
	mmds_configure(m, MMDS_V2, m->addr, false);
	assert_int_equal(req(m, MMDS_GET, "/app/name", false, NULL, NULL, 0, out, sizeof(out)), 401);
	mmds_configure(m, MMDS_V1, m->addr, false);
	r = json_pack("{ss}", "uuid", "0f0f0f0f-1111-4222-8333-444444444444");
	assert_int_equal(mmds_set_root(m, r), 0);
	json_decref(r);
	assert_int_equal(req(m, MMDS_GET, "/openstack/latest/meta_data.json", false, NULL, NULL, 0, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "0f0f0f0f-1111-4222-8333-444444444444"));
	assert_string_equal(m->uuid, "0f0f0f0f-1111-4222-8333-444444444444");
	d = mmds_dump_root(m);
	assert_string_equal(d, "{\"uuid\":\"0f0f0f0f-1111-4222-8333-444444444444\"}");
	free(d);
	r = mmds_copy_root(m);
	assert_true(json_equal(r, m->root) && r != m->root);
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mmds_raw_paths, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(test_mmds_ec2_layout, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(test_mmds_openstack_layout, setup_v1, teardown),
		cmocka_unit_test(test_mmds_ssh_key_only),
		cmocka_unit_test(test_mmds_bad_json),
		cmocka_unit_test_setup_teardown(test_mmds_token_lifecycle, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(test_mmds_token_store_bounded, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(test_mmds_v1_ignores_tokens, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(test_http_requests, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(test_http_hostile, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(test_http_v1_pipelined, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(test_mmds_set_root, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(test_mmds_configure, setup_v1, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
