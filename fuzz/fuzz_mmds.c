/* libFuzzer target: the metadata service's HTTP connection (http-parser + MMDS routing) against any bytes, in any chunking. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/mmds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char JSON[] = "{\"hostname\":\"f\",\"user-data\":\"ud\",\"a\":{\"b\":[1,\"x\",{\"c\":null}],\"s\":\"v\"},"
			   "\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\"}}}";

/*
 * Byte 0: MMDS version (bit 0) and the chunk size (bits 1-7, 1..128) the
 * rest is fed in; then the request bytes. Invariants: feed answers 0 until
 * it answers 1 or -1 and never changes its mind; every answer is one
 * well-formed HTTP/1.1 response whose Content-Length is the body's length.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t uuid[16] = { 1, 2, 3 };
	struct mmds m;
	struct mmds_http *h;
	char msg[128];
	size_t chunk, off = 1, len;
	int r = 0;
	const char *out, *body, *cl;

	if (size < 1)
		return 0;
	if (mmds_init(&m, JSON, sizeof(JSON) - 1, "ssh-ed25519 AAAA k\n", (data[0] & 1) ? MMDS_V2 : MMDS_V1, uuid, msg,
		      sizeof(msg)) < 0)
		abort();
	chunk = (size_t)(data[0] >> 1) + 1;
	h = mmds_http_new(&m);
	if (!h)
		abort();
	while (off < size && r == 0) {
		size_t n = size - off < chunk ? size - off : chunk;

		r = mmds_http_feed(h, data + off, n, 1000);
		off += n;
	}
	if (r == 0)
		r = mmds_http_feed(h, NULL, 0, 1000);
	if (r == 1) {
		unsigned long want;

		if (mmds_http_feed(h, "x", 1, 1000) != 1)
			abort(); /* once answered, always answered */
		out = mmds_http_output(h, &len);
		if (!out || len < 12 || memcmp(out, "HTTP/1.1 ", 9))
			abort();
		body = memmem(out, len, "\r\n\r\n", 4);
		cl = memmem(out, len, "Content-Length: ", 16);
		if (!body || !cl || cl > body)
			abort();
		want = strtoul(cl + 16, NULL, 10);
		if (want != len - (size_t)(body + 4 - out))
			abort();
	} else if (r != -1) {
		abort();
	}
	mmds_http_free(h);
	mmds_fini(&m);
	return 0;
}
