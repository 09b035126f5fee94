/* The metadata service: a JSON store served as Firecracker MMDS (V1/V2 tokens), the EC2 and the OpenStack layouts, over HTTP/1.1 parsed by http-parser. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <http_parser.h>
#include "net/mmds.h"
#include "core/types.h"

/*
 * Which request goes where (docs/networking.md):
 *   /latest/api/token            PUT: a session token (V2 and V1)
 *   /latest/...                  the EC2 view: root["latest"] over generated
 *                                instance-id, hostname, public-keys, user-data
 *   /<YYYY-MM-DD>/...            the same (cloud-init asks dated EC2 versions)
 *   /openstack/...               the OpenStack view (meta_data.json, user_data),
 *                                unless root has an "openstack" key of its own
 *   anything else                the raw tree, MMDS style (JSON pointer = path)
 * Text ("IMDS") format: a string is its value, an object is its keys one a
 * line ("key/" for objects), anything else is 501; Accept: application/json
 * answers the JSON encoding instead (Firecracker's MMDS formats).
 */

const char *mmds_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 501: return "Not Implemented";
	}
	return "Internal Server Error";
}

/* ---- building the views ---- */

static const char *obj_str(json_t *o, const char *key)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *obj_path(json_t *o, const char *a, const char *b)
{
	o = json_is_object(o) ? json_object_get(o, a) : NULL;
	if (o && b)
		o = json_is_object(o) ? json_object_get(o, b) : NULL;
	return o;
}

/* Append (name, key) to the list `keys` (array of [name, key] pairs) unless the key is already there. */
static void add_key(json_t *keys, const char *name, const char *key)
{
	size_t i;
	json_t *p;
	char gen[32];

	if (!key || !*key)
		return;
	json_array_foreach(keys, i, p)
		if (!strcmp(json_string_value(json_array_get(p, 1)), key))
			return;
	if (!name || !*name) {
		snprintf(gen, sizeof(gen), "key%zu", json_array_size(keys));
		name = gen;
	}
	json_array_append_new(keys, json_pack("[ss]", name, key));
}

/* Keys given as an array of strings or an object name -> key (OpenStack's public_keys). */
static void add_keys_from(json_t *keys, json_t *v)
{
	size_t i;
	const char *name;
	json_t *k;

	if (json_is_array(v)) {
		json_array_foreach(v, i, k)
			if (json_is_string(k))
				add_key(keys, NULL, json_string_value(k));
	} else if (json_is_object(v)) {
		json_object_foreach(v, name, k)
			if (json_is_string(k))
				add_key(keys, name, json_string_value(k));
	} else if (json_is_string(v)) {
		add_key(keys, NULL, json_string_value(v));
	}
}

/* Set key in o to v (stolen) unless o already has it. */
static void set_default(json_t *o, const char *key, json_t *v)
{
	if (json_object_get(o, key))
		json_decref(v);
	else
		json_object_set_new(o, key, v);
}

/* Recompute ec2, openstack and user_data from root, ssh_keys and uuid. Lock held. */
static int mmds_rebuild(struct mmds *m)
{
	json_t *root = m->root, *latest = obj_path(root, "latest", NULL);
	json_t *md_in = obj_path(root, "latest", "meta-data");
	json_t *keys = json_array(), *ec2, *md, *pk, *os, *ospk, *oskeys, *ud = NULL;
	const char *iid, *host, *s;
	char gen_iid[20];
	size_t i;
	json_t *p;

	if (!keys)
		return -1;
	/* Keys: the EC2 literal form, then kiln's flat keys, then --ssh-key. */
	pk = obj_path(md_in, "public-keys", NULL);
	if (json_is_object(pk)) {
		const char *idx;
		json_t *e;

		json_object_foreach(pk, idx, e)
			add_key(keys, NULL, obj_str(e, "openssh-key"));
	}
	add_keys_from(keys, obj_path(root, "public-keys", NULL));
	add_keys_from(keys, obj_path(root, "public_keys", NULL));
	add_keys_from(keys, m->ssh_keys);

	/* EC2's form: "i-" and hex digits; here the UUID's first 16. */
	i = 0;
	gen_iid[i++] = 'i';
	gen_iid[i++] = '-';
	for (const char *c = m->uuid; *c && i < 18; c++)
		if (*c != '-')
			gen_iid[i++] = *c;
	gen_iid[i] = 0;
	iid = obj_str(md_in, "instance-id");
	if (!iid)
		iid = obj_str(root, "instance-id");
	if (!iid)
		iid = gen_iid;
	host = obj_str(md_in, "hostname");
	if (!host)
		host = obj_str(md_in, "local-hostname");
	if (!host)
		host = obj_str(root, "hostname");
	if (!host)
		host = "kiln";
	if ((s = obj_str(root, "user-data")) || (s = obj_str(root, "user_data")) || (s = obj_str(latest, "user-data")))
		ud = json_string(s);

	/* EC2: the user's "latest" tree wins over every generated default. */
	ec2 = json_is_object(latest) ? json_deep_copy(latest) : json_object();
	if (!ec2)
		goto fail;
	md = json_object_get(ec2, "meta-data");
	if (!md) {
		md = json_object();
		json_object_set_new(ec2, "meta-data", md);
	}
	if (json_is_object(md)) {
		set_default(md, "instance-id", json_string(iid));
		set_default(md, "hostname", json_string(host));
		set_default(md, "local-hostname", json_string(host));
		if (json_array_size(keys)) {
			json_t *o = json_object();

			json_array_foreach(keys, i, p) {
				char idx[24];

				snprintf(idx, sizeof(idx), "%zu", i);
				json_object_set_new(o, idx, json_pack("{sO}", "openssh-key", json_array_get(p, 1)));
			}
			set_default(md, "public-keys", o);
		}
	}
	if (ud)
		set_default(ec2, "user-data", json_incref(ud));

	/* OpenStack meta_data.json (the fields cloud-init's OpenStack source reads). */
	ospk = json_object();
	oskeys = json_array();
	json_array_foreach(keys, i, p) {
		json_object_set(ospk, json_string_value(json_array_get(p, 0)), json_array_get(p, 1));
		json_array_append_new(oskeys, json_pack("{sOsssO}", "name", json_array_get(p, 0), "type", "ssh",
							"data", json_array_get(p, 1)));
	}
	os = json_pack("{sssssssisssoso}", "uuid", m->uuid, "hostname", host, "name", host, "launch_index", 0,
		       "availability_zone", "kiln", "public_keys", ospk, "keys", oskeys);
	if (!os)
		goto fail;

	json_decref(m->ec2);
	json_decref(m->openstack);
	json_decref(m->user_data);
	m->ec2 = ec2;
	m->openstack = os;
	m->user_data = ud;
	json_decref(keys);
	return 0;
fail:
	json_decref(keys);
	json_decref(ud);
	return -1;
}

static void format_uuid(char out[37], const uint8_t b[16])
{
	uint8_t u[16];

	memcpy(u, b, 16);
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* variant 10 */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
		 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

int mmds_init(struct mmds *m, const char *json, size_t json_len, const char *ssh_keys, enum mmds_version v,
	      const uint8_t uuid[16], char *msg, size_t msglen)
{
	json_error_t err;

	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->version = v;
	m->addr = htonl(MMDS_DEFAULT_ADDR);
	format_uuid(m->uuid, uuid);
	if (json) {
		m->root = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &err);
		if (!m->root) {
			snprintf(msg, msglen, "line %d column %d: %s", err.line, err.column, err.text);
			goto fail;
		}
		if (!json_is_object(m->root)) {
			snprintf(msg, msglen, "the top level must be a JSON object");
			goto fail;
		}
	} else {
		m->root = json_object();
	}
	if (json_is_string(json_object_get(m->root, "uuid")))
		snprintf(m->uuid, sizeof(m->uuid), "%s", json_string_value(json_object_get(m->root, "uuid")));
	m->ssh_keys = json_array();
	for (const char *line = ssh_keys; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		char *k;

		while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		while (n && (*line == ' ' || *line == '\t')) {
			line++;
			n--;
		}
		if (n && *line != '#') {
			k = strndup(line, n);
			if (!k || json_array_append_new(m->ssh_keys, json_string(k)) < 0) {
				free(k);
				snprintf(msg, msglen, "an ssh key is not valid UTF-8 text");
				goto fail;
			}
			free(k);
		}
		line = end ? end + 1 : line + n;
	}
	if (!m->root || !m->ssh_keys || mmds_rebuild(m) < 0) {
		snprintf(msg, msglen, "out of memory");
		goto fail;
	}
	return 0;
fail:
	mmds_fini(m);
	return -1;
}

/* Read a whole small file into a NUL-terminated buffer. */
static char *read_small_file(const char *path, size_t *len, char *msg, size_t msglen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MMDS_MAX_FILE) {
		snprintf(msg, msglen, "%s: not a regular file of at most %d bytes", path, MMDS_MAX_FILE);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(msg, msglen, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = 0;
	*len = got;
out:
	close(fd);
	return buf;
}

int mmds_init_files(struct mmds *m, const char *metadata_path, const char *ssh_key_path, enum mmds_version v,
		    char *msg, size_t msglen)
{
	char *json = NULL, *keys = NULL, why[200];
	size_t jlen = 0, klen = 0;
	uint8_t uuid[16];
	int ret = -1;

	if (getrandom(uuid, sizeof(uuid), 0) != (ssize_t)sizeof(uuid)) {
		snprintf(msg, msglen, "getrandom: %s", strerror(errno));
		return -1;
	}
	if (metadata_path && !(json = read_small_file(metadata_path, &jlen, msg, msglen)))
		return -1;
	if (ssh_key_path && !(keys = read_small_file(ssh_key_path, &klen, msg, msglen)))
		goto out;
	if (mmds_init(m, json, jlen, keys, v, uuid, why, sizeof(why)) < 0) {
		snprintf(msg, msglen, "%s: %s", metadata_path ? metadata_path : ssh_key_path, why);
		goto out;
	}
	ret = 0;
out:
	free(json);
	free(keys);
	return ret;
}

size_t mmds_json_size(const json_t *root)
{
	char *s = json_dumps(root, JSON_COMPACT);
	size_t n;

	if (!s)
		return SIZE_MAX;
	n = strlen(s);
	free(s);
	return n;
}

int mmds_check_size(struct mmds *m, size_t limit, char *msg, size_t msglen)
{
	size_t n;

	if (!limit)
		limit = MMDS_SIZE_LIMIT_DEFAULT;
	pthread_mutex_lock(&m->lock);
	n = mmds_json_size(m->root);
	pthread_mutex_unlock(&m->lock);
	if (n <= limit)
		return 0;
	if (n == SIZE_MAX)
		snprintf(msg, msglen, "the metadata could not be serialised (out of memory)");
	else
		snprintf(msg, msglen, "the metadata store would be %zu bytes, over the limit of %zu "
			 "(--mmds-size-limit)", n, limit);
	return -1;
}

void mmds_fini(struct mmds *m)
{
	json_decref(m->root);
	json_decref(m->ssh_keys);
	json_decref(m->ec2);
	json_decref(m->openstack);
	json_decref(m->user_data);
	m->root = m->ssh_keys = m->ec2 = m->openstack = m->user_data = NULL;
	pthread_mutex_destroy(&m->lock);
}

int mmds_set_root(struct mmds *m, json_t *root)
{
	json_t *old, *u;
	char uuid[sizeof(m->uuid)];
	int ret;

	if (!json_is_object(root))
		return -1;
	pthread_mutex_lock(&m->lock);
	old = m->root;
	memcpy(uuid, m->uuid, sizeof(uuid));
	m->root = json_incref(root);
	u = json_object_get(root, "uuid");
	if (json_is_string(u))
		snprintf(m->uuid, sizeof(m->uuid), "%s", json_string_value(u));
	ret = mmds_rebuild(m);
	if (ret < 0) {
		json_decref(m->root);
		m->root = old;
		memcpy(m->uuid, uuid, sizeof(uuid));
	} else {
		json_decref(old);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

json_t *mmds_copy_root(struct mmds *m)
{
	json_t *c;

	/* Under the lock: the HTTP thread takes references on the tree's members (json_copy). */
	pthread_mutex_lock(&m->lock);
	c = json_deep_copy(m->root);
	pthread_mutex_unlock(&m->lock);
	return c;
}

char *mmds_dump_root(struct mmds *m)
{
	char *s;

	pthread_mutex_lock(&m->lock);
	s = json_dumps(m->root, JSON_COMPACT);
	pthread_mutex_unlock(&m->lock);
	return s;
}

void mmds_configure(struct mmds *m, enum mmds_version v, uint32_t addr, bool imds_compat)
{
	pthread_mutex_lock(&m->lock);
	m->version = v;
	m->addr = addr;
	m->imds_compat = imds_compat;
	pthread_mutex_unlock(&m->lock);
}

/* ---- tokens ---- */

static void token_new(struct mmds *m, unsigned ttl, uint64_t now_ms, char out[48])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t r[33];
	struct mmds_token *slot = NULL;
	size_t o = 0;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* No entropy: hand out no token (the caller answers with an empty one, useless by design). */
		out[0] = 0;
		return;
	}
	for (size_t i = 0; i < sizeof(r); i += 3) {
		uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];

		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = b64[v & 63];
	}
	out[o] = 0;
	/* A free or expired slot, else the one that expires first: the store stays bounded. */
	for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++) {
		struct mmds_token *t = &m->tokens[i];

		if (!t->value[0] || t->expires_ms <= now_ms) {
			slot = t;
			break;
		}
		if (!slot || t->expires_ms < slot->expires_ms)
			slot = t;
	}
	snprintf(slot->value, sizeof(slot->value), "%s", out);
	slot->expires_ms = now_ms + (uint64_t)ttl * 1000;
}

static bool token_valid(struct mmds *m, const char *tok, uint64_t now_ms)
{
	if (!tok || !*tok)
		return false;
	for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++) {
		struct mmds_token *t = &m->tokens[i];

		if (t->value[0] && !strcmp(t->value, tok)) {
			if (t->expires_ms > now_ms)
				return true;
			t->value[0] = 0; /* expired: forget it */
			return false;
		}
	}
	return false;
}

/* ---- answering ---- */

static void respond(struct mmds_response *rsp, int status, const char *ctype, char *body, size_t len)
{
	rsp->status = status;
	rsp->content_type = ctype;
	rsp->body = body;
	rsp->body_len = len;
}

static void respond_text(struct mmds_response *rsp, int status, const char *text)
{
	char *b = strdup(text);

	respond(rsp, status, "text/plain", b, b ? strlen(b) : 0);
}

static void respond_error(struct mmds_response *rsp, int status)
{
	char b[64];

	snprintf(b, sizeof(b), "%d %s\n", status, mmds_status_text(status));
	respond_text(rsp, status, b);
}

/* Split path into segments in place; at most max; empty segments ("//", trailing "/") dropped. */
static int split_path(char *path, char **seg, int max)
{
	int n = 0;

	for (char *save = NULL, *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (n == max)
			return -1;
		seg[n++] = t;
	}
	return n;
}

/* Walk segments through objects (keys) and arrays (decimal indices). */
static json_t *walk(json_t *v, char **seg, int n)
{
	for (int i = 0; i < n && v; i++) {
		if (json_is_object(v)) {
			v = json_object_get(v, seg[i]);
		} else if (json_is_array(v)) {
			char *end;
			unsigned long idx = strtoul(seg[i], &end, 10);

			v = (*seg[i] >= '0' && *seg[i] <= '9' && !*end) ? json_array_get(v, idx) : NULL;
		} else {
			v = NULL;
		}
	}
	return v;
}

/* Text form of an object: its keys, one a line, objects with a trailing '/'. */
static char *list_keys(json_t *o, size_t *len)
{
	const char *k;
	json_t *v;
	size_t cap = 1, off = 0;
	char *b;

	json_object_foreach(o, k, v)
		cap += strlen(k) + 2;
	b = malloc(cap);
	if (!b)
		return NULL;
	json_object_foreach(o, k, v)
		off += (size_t)snprintf(b + off, cap - off, "%s%s%s", off ? "\n" : "", k, json_is_object(v) ? "/" : "");
	b[off] = 0;
	*len = off;
	return b;
}

/* EC2 lists public-keys as "0=name" (cloud-init's EC2 reader depends on that form). */
static char *list_ec2_keys(json_t *pk, json_t *openstack, size_t *len)
{
	json_t *names = json_object_get(openstack, "keys");
	const char *k;
	json_t *v;
	size_t cap = 1, off = 0, i = 0;
	char *b;

	json_object_foreach(pk, k, v)
		cap += strlen(k) + 2 + 64;
	b = malloc(cap);
	if (!b)
		return NULL;
	json_object_foreach(pk, k, v) {
		const char *name = obj_str(json_array_get(names, i++), "name");

		off += (size_t)snprintf(b + off, cap - off, "%s%s=%.63s", off ? "\n" : "", k, name ? name : k);
	}
	b[off] = 0;
	*len = off;
	return b;
}

/* Serve v in the format asked for. */
static void serve_value(struct mmds_response *rsp, json_t *v, bool as_json)
{
	size_t len = 0;
	char *b;

	if (!v) {
		respond_error(rsp, 404);
		return;
	}
	if (as_json) {
		b = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		respond(rsp, b ? 200 : 500, "application/json", b, b ? strlen(b) : 0);
		return;
	}
	if (json_is_string(v)) {
		len = json_string_length(v);
		b = malloc(len + 1);
		if (b)
			memcpy(b, json_string_value(v), len + 1);
		respond(rsp, b ? 200 : 500, "text/plain", b, b ? len : 0);
	} else if (json_is_object(v)) {
		b = list_keys(v, &len);
		respond(rsp, b ? 200 : 500, "text/plain", b, len);
	} else {
		/* Firecracker: IMDS format has no form for numbers, booleans, arrays, null. */
		respond_error(rsp, 501);
	}
}

static bool is_date(const char *s)
{
	static const char pat[] = "dddd-dd-dd";

	if (strlen(s) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; pat[i]; i++)
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return false;
	return true;
}

static void put_token(struct mmds *m, const struct mmds_request *rq, uint64_t now_ms, struct mmds_response *rsp)
{
	char tok[48], *end;
	unsigned long ttl;

	if (rq->forwarded || !rq->ttl || *rq->ttl < '0' || *rq->ttl > '9') {
		respond_error(rsp, 400);
		return;
	}
	errno = 0;
	ttl = strtoul(rq->ttl, &end, 10);
	if (errno || *end || ttl < 1 || ttl > MMDS_TOKEN_TTL_MAX) {
		respond_error(rsp, 400);
		return;
	}
	token_new(m, (unsigned)ttl, now_ms, tok);
	if (!tok[0]) {
		respond_error(rsp, 500);
		return;
	}
	respond_text(rsp, 200, tok);
	snprintf(rsp->extra, sizeof(rsp->extra), "X-metadata-token-ttl-seconds: %lu\r\n", ttl);
}

#define MMDS_MAX_DEPTH 32

void mmds_handle(struct mmds *m, const struct mmds_request *rq, uint64_t now_ms, struct mmds_response *rsp)
{
	char path[MMDS_MAX_URL + 1], *seg[MMDS_MAX_DEPTH];
	bool accept_json = rq->accept_json;
	int n;

	memset(rsp, 0, sizeof(*rsp));
	if (strlen(rq->path) > MMDS_MAX_URL) {
		respond_error(rsp, 414);
		return;
	}
	snprintf(path, sizeof(path), "%s", rq->path);
	n = split_path(path, seg, MMDS_MAX_DEPTH);
	if (n < 0) {
		respond_error(rsp, 404);
		return;
	}
	pthread_mutex_lock(&m->lock);
	if (rq->method == MMDS_PUT) {
		if (n == 3 && !strcmp(seg[0], "latest") && !strcmp(seg[1], "api") && !strcmp(seg[2], "token"))
			put_token(m, rq, now_ms, rsp);
		else
			respond_error(rsp, 404);
		goto out;
	}
	if (rq->method != MMDS_GET) {
		respond_error(rsp, 405);
		snprintf(rsp->extra, sizeof(rsp->extra), "Allow: GET, PUT\r\n");
		goto out;
	}
	if (m->version == MMDS_V2 && !token_valid(m, rq->token, now_ms)) {
		respond_error(rsp, 401);
		goto out;
	}
	/* imds_compat: EC2 IMDS answers text/plain whatever the Accept header asks (MmdsConfig). */
	if (m->imds_compat)
		accept_json = false;
	if (n == 0) {
		/* The root: the raw tree's keys plus the two generated layouts. */
		if (accept_json) {
			serve_value(rsp, m->root, true);
		} else {
			json_t *o = json_copy(m->root);

			if (o) {
				set_default(o, "latest", json_object());
				set_default(o, "openstack", json_object());
			}
			serve_value(rsp, o, false);
			json_decref(o);
		}
	} else if (!strcmp(seg[0], "latest") || is_date(seg[0])) {
		json_t *v = walk(m->ec2, seg + 1, n - 1);

		if (!accept_json && n == 3 && !strcmp(seg[1], "meta-data") && !strcmp(seg[2], "public-keys") &&
		    json_is_object(v) && !json_object_get(obj_path(m->root, "latest", "meta-data"), "public-keys")) {
			size_t len = 0;
			char *b = list_ec2_keys(v, m->openstack, &len);

			respond(rsp, b ? 200 : 500, "text/plain", b, len);
		} else {
			serve_value(rsp, v, accept_json);
		}
	} else if (!strcmp(seg[0], "openstack") && !json_object_get(m->root, "openstack")) {
		if (n == 1) {
			respond_text(rsp, 200, "latest");
		} else if (strcmp(seg[1], "latest") && !is_date(seg[1])) {
			respond_error(rsp, 404);
		} else if (n == 2) {
			respond_text(rsp, 200, m->user_data ? "meta_data.json\nuser_data" : "meta_data.json");
		} else if (n == 3 && !strcmp(seg[2], "meta_data.json")) {
			serve_value(rsp, m->openstack, true);
		} else if (n == 3 && !strcmp(seg[2], "user_data") && m->user_data) {
			serve_value(rsp, m->user_data, false);
			rsp->content_type = "application/octet-stream";
		} else {
			respond_error(rsp, 404);
		}
	} else {
		serve_value(rsp, walk(m->root, seg, n), accept_json);
	}
out:
	pthread_mutex_unlock(&m->lock);
}

/* ---- HTTP/1.1 over one connection ---- */

enum hdr { H_NONE, H_ACCEPT, H_TOKEN, H_TTL, H_XFF };

struct mmds_http {
	struct mmds *m;
	http_parser p;
	http_parser_settings s;
	size_t total;                   /* request bytes fed so far */
	bool done, failed;
	int fail_status;
	enum hdr cur;                   /* the header whose value is arriving */
	bool in_value;
	char url[MMDS_MAX_URL + 1];
	size_t url_len;
	char field[40];                 /* current header name (longer names are not ones we read) */
	size_t field_len;
	char accept[256], token[128], ttl[16];
	size_t accept_len, token_len, ttl_len;
	bool token_long, ttl_long, forwarded;
	char *out;
	size_t out_len;
};

static struct mmds_http *hp(http_parser *p)
{
	return p->data;
}

/* Append n bytes if they fit (with the NUL); *len may already be past cap (a field marked too long). */
static int append(char *dst, size_t cap, size_t *len, const char *at, size_t n)
{
	if (*len >= cap || n > cap - 1 - *len)
		return -1;
	memcpy(dst + *len, at, n);
	*len += n;
	dst[*len] = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct mmds_http *h = hp(p);

	if (append(h->url, sizeof(h->url), &h->url_len, at, n) < 0) {
		h->fail_status = 414;
		return 1;
	}
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct mmds_http *h = hp(p);

	if (h->in_value) {
		h->in_value = false;
		h->field_len = 0;
		h->field[0] = 0;
	}
	if (append(h->field, sizeof(h->field), &h->field_len, at, n) < 0)
		h->field_len = sizeof(h->field); /* too long: none of ours; stays unmatched */
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct mmds_http *h = hp(p);

	if (!h->in_value) {
		h->in_value = true;
		h->cur = H_NONE;
		if (h->field_len < sizeof(h->field)) {
			if (!strcasecmp(h->field, "Accept"))
				h->cur = H_ACCEPT;
			else if (!strcasecmp(h->field, "X-metadata-token") ||
				 !strcasecmp(h->field, "X-aws-ec2-metadata-token"))
				h->cur = H_TOKEN;
			else if (!strcasecmp(h->field, "X-metadata-token-ttl-seconds") ||
				 !strcasecmp(h->field, "X-aws-ec2-metadata-token-ttl-seconds"))
				h->cur = H_TTL;
			else if (!strcasecmp(h->field, "X-Forwarded-For"))
				h->cur = H_XFF;
		}
		/* A repeated header replaces nothing: the first value counts, a second one is suspicious. */
		if (h->cur == H_TOKEN && h->token_len)
			h->token_long = true;
		if (h->cur == H_TTL && h->ttl_len)
			h->ttl_long = true;
	}
	switch (h->cur) {
	case H_ACCEPT:
		/* Long Accept lists are cut: only the start is looked at. */
		append(h->accept, sizeof(h->accept), &h->accept_len, at, MIN(n, sizeof(h->accept) - 1 - h->accept_len));
		break;
	case H_TOKEN:
		if (append(h->token, sizeof(h->token), &h->token_len, at, n) < 0)
			h->token_long = true;
		break;
	case H_TTL:
		if (append(h->ttl, sizeof(h->ttl), &h->ttl_len, at, n) < 0)
			h->ttl_long = true;
		break;
	case H_XFF:
		h->forwarded = true;
		break;
	case H_NONE:
		break;
	}
	return 0;
}

/* A declared body larger than we would read is refused now, not after the client sent it. */
static int on_headers_complete(http_parser *p)
{
	struct mmds_http *h = hp(p);

	if (p->content_length != ULLONG_MAX && p->content_length > MMDS_MAX_REQUEST) {
		h->fail_status = 413;
		return -1; /* neither 0, 1 nor 2: http-parser stops with HPE_CB_headers_complete */
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct mmds_http *h = hp(p);

	h->done = true;
	/* One request per connection: ignore anything pipelined after it. */
	http_parser_pause(p, 1);
	return 0;
}

struct mmds_http *mmds_http_new(struct mmds *m)
{
	struct mmds_http *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->m = m;
	http_parser_init(&h->p, HTTP_REQUEST);
	h->p.data = h;
	http_parser_settings_init(&h->s);
	h->s.on_url = on_url;
	h->s.on_header_field = on_header_field;
	h->s.on_header_value = on_header_value;
	h->s.on_headers_complete = on_headers_complete;
	h->s.on_message_complete = on_message_complete;
	return h;
}

void mmds_http_free(struct mmds_http *h)
{
	if (!h)
		return;
	free(h->out);
	free(h);
}

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = 0;
}

static void build_output(struct mmds_http *h, const struct mmds_response *rsp)
{
	char head[512];
	int hl;

	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 %d %s\r\nServer: kiln-mmds\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		      "Connection: close\r\n\r\n",
		      rsp->status, mmds_status_text(rsp->status), rsp->content_type ? rsp->content_type : "text/plain",
		      rsp->body_len, rsp->extra);
	h->out = malloc((size_t)hl + rsp->body_len);
	if (!h->out) {
		h->out_len = 0;
		return;
	}
	memcpy(h->out, head, (size_t)hl);
	if (rsp->body_len)
		memcpy(h->out + hl, rsp->body, rsp->body_len);
	h->out_len = (size_t)hl + rsp->body_len;
}

static void fail(struct mmds_http *h, int status)
{
	struct mmds_response rsp;

	memset(&rsp, 0, sizeof(rsp));
	respond_error(&rsp, status);
	build_output(h, &rsp);
	free(rsp.body);
	h->failed = true;
}

int mmds_http_feed(struct mmds_http *h, const void *data, size_t len, uint64_t now_ms)
{
	struct http_parser_url u;
	struct mmds_request rq;
	struct mmds_response rsp;
	char path[MMDS_MAX_URL + 1];
	size_t n;

	if (h->done || h->failed)
		return 1;
	if (len == 0 && h->total == 0)
		return -1; /* connected and closed without a word */
	if (len > MMDS_MAX_REQUEST - h->total) {
		fail(h, 413);
		return 1;
	}
	h->total += len;
	n = http_parser_execute(&h->p, &h->s, data, len);
	if (!h->done) {
		enum http_errno e = HTTP_PARSER_ERRNO(&h->p);

		if (h->fail_status) {
			fail(h, h->fail_status);
			return 1;
		}
		if (e != HPE_OK || n != len || len == 0) {
			/* Malformed, or EOF in the middle of a request. */
			fail(h, 400);
			return 1;
		}
		return 0;
	}
	/* A whole request: decide. */
	memset(&rq, 0, sizeof(rq));
	switch (h->p.method) {
	case HTTP_GET: rq.method = MMDS_GET; break;
	case HTTP_PUT: rq.method = MMDS_PUT; break;
	default: rq.method = MMDS_OTHER; break;
	}
	http_parser_url_init(&u);
	if (http_parser_parse_url(h->url, h->url_len, 0, &u) || !(u.field_set & (1 << UF_PATH))) {
		fail(h, 400);
		return 1;
	}
	snprintf(path, sizeof(path), "%.*s", (int)u.field_data[UF_PATH].len, h->url + u.field_data[UF_PATH].off);
	rq.path = path;
	trim(h->token);
	trim(h->ttl);
	rq.accept_json = strstr(h->accept, "application/json") != NULL;
	rq.token = h->token_long ? "" : (h->token_len ? h->token : NULL);
	rq.ttl = h->ttl_long ? "" : (h->ttl_len ? h->ttl : NULL);
	rq.forwarded = h->forwarded;
	mmds_handle(h->m, &rq, now_ms, &rsp);
	build_output(h, &rsp);
	free(rsp.body);
	return 1;
}

const char *mmds_http_output(struct mmds_http *h, size_t *len)
{
	*len = h->out_len;
	return h->out;
}
