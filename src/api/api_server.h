/* The API's HTTP/1.1 server on a Unix socket (libmicrohttpd): one polling thread, bounded requests, JSON replies. */
#ifndef KILN_API_SERVER_H
#define KILN_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Bounds of the transport (the request model in api.h bounds what is inside):
 * connections beyond API_MAX_CONNS are accepted and closed at once; one idle
 * for API_CONN_TIMEOUT_S seconds (a half-sent request, a silent keep-alive)
 * is closed; headers must fit API_CONN_MEMORY bytes (else MHD answers 431).
 */
#define API_MAX_CONNS       256
#define API_CONN_TIMEOUT_S  10
#define API_CONN_MEMORY     (32 * 1024)
#define API_LISTEN_BACKLOG  256

/* What a handler answers: an HTTP status and an optional JSON body (malloc'd; the server frees it). */
struct api_reply {
	int status;
	char *body;
};

/*
 * Called on the server thread once a whole request is in. method and path are
 * NUL-terminated as received (no percent-decoding; a query string is cut off by
 * the HTTP library); body is NULL when blen is 0. t0_ns is CLOCK_MONOTONIC when
 * the request's headers were complete, for latency accounting.
 */
typedef void (*api_handler_fn)(void *opaque, const char *method, const char *path,
			       const char *body, size_t blen, uint64_t t0_ns, struct api_reply *reply);

struct MHD_Daemon;

struct api_server {
	struct MHD_Daemon *mhd;
	int listen_fd;
	char *path;                /* the socket file, removed by api_server_stop() */
	dev_t dev;                 /* ... only if it is still the one bound here */
	ino_t ino;
	api_handler_fn handler;
	void *opaque;
	size_t max_body;           /* bodies above this: 400 (Content-Length) or closed (chunked) */
};

/*
 * Bind a Unix stream socket at path (mode 0600: the socket is full control of
 * the VM). A stale socket file (nobody accepts on it) is replaced; a live one,
 * or a path that exists and is not a socket, is an error. Returns the
 * listening fd, or -errno with a one-line reason in msg.
 */
int api_socket_listen(const char *path, char *msg, size_t msglen, dev_t *dev, ino_t *ino);

/*
 * Listen on path and serve on a new thread; handler runs there. Threads
 * inherit the caller's signal mask: block the signals kiln handles first.
 * 0 or -errno with msg.
 */
int api_server_start(struct api_server *s, const char *path, size_t max_body,
		     api_handler_fn handler, void *opaque, char *msg, size_t msglen);

/* Stop the thread (a running handler finishes first), close connections, remove the socket. Idempotent. */
void api_server_stop(struct api_server *s);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t api_now_ns(void);

#endif
