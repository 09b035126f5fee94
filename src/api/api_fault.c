/* API faults: the Error definition's {"fault_message": ...} body and safe echoing of client text. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "api/api.h"

/* Longest message api_fault_body() encodes; callers build theirs in API_FAULT_MAX. */
#define FAULT_BODY_MAX_MSG 4096

void api_err_set(struct api_err *err, int status, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

char *api_echo(char *dst, size_t dstlen, const char *src, size_t srclen, size_t max)
{
	size_t i, n = 0;

	if (!dstlen)
		return dst;
	/* Printable ASCII only: the text may be any bytes, and a message must stay UTF-8. */
	for (i = 0; i < srclen && i < max && n + 1 < dstlen; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < srclen) {
		for (const char *p = "..."; *p && n + 1 < dstlen; p++)
			dst[n++] = *p;
	}
	dst[n] = '\0';
	return dst;
}

char *api_fault_body(const char *msg)
{
	json_t *obj = NULL, *str;
	char *copy = NULL, *out = NULL;
	size_t len;

	if (!msg)
		msg = "";
	len = strnlen(msg, FAULT_BODY_MAX_MSG);
	str = json_stringn(msg, len);
	if (!str) {
		/*
		 * json_stringn() refuses invalid UTF-8 (or a cut multi-byte
		 * sequence); the JSON text must be UTF-8 (RFC 8259 §8.1), so
		 * fall back to the ASCII subset.
		 */
		copy = malloc(len + 1);
		if (!copy)
			goto out;
		for (size_t i = 0; i < len; i++)
			copy[i] = ((unsigned char)msg[i] < 0x80) ? msg[i] : '?';
		copy[len] = '\0';
		str = json_stringn(copy, len);
		if (!str)
			goto out;
	}
	obj = json_object();
	if (!obj || json_object_set_new(obj, "fault_message", str)) {
		if (!obj)
			json_decref(str);
		goto out;
	}
	/* jansson escapes quotes, backslashes and control characters. */
	out = json_dumps(obj, JSON_COMPACT);
out:
	json_decref(obj);
	free(copy);
	return out;
}
