/* The API's HTTP/1.1 server on a Unix socket: http-parser for the protocol, one epoll thread, bounded everything. */
#ifndef KILN_API_SERVER_H
#define KILN_API_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Bounds of the transport (the request model in api.h bounds what is inside).
 * A connection beyond API_MAX_CONNS is accepted and closed at once. One that
 * stalls inside a request (half a request line, headers or body, or an answer
 * it does not read) for API_CONN_TIMEOUT_S is closed; an idle keep-alive
 * connection after API_IDLE_TIMEOUT_S. Request line plus headers are bounded
 * by API_MAX_HEADER_BYTES; answers queued to a client that does not read are
 * bounded by API_MAX_PENDING_OUT (reading pauses until they drain).
 */
#define API_MAX_CONNS         256
#define API_CONN_TIMEOUT_S    10
#define API_IDLE_TIMEOUT_S    60
#define API_MAX_HEADER_BYTES  (16 * 1024)
#define API_MAX_PENDING_OUT   (256 * 1024)
#define API_LISTEN_BACKLOG    256

/* What a handler answers: an HTTP status and an optional JSON body (malloc'd; the server frees it). */
struct api_reply {
	int status;
	char *body;
};

/*
 * Called on the server thread once a whole request is in. method and path are
 * NUL-terminated bytes as received (no percent-decoding; a "?query" is cut
 * off); body is NULL when blen is 0. t0_ns is CLOCK_MONOTONIC when the
 * request's headers were complete, for latency accounting.
 */
typedef void (*api_handler_fn)(void *opaque, const char *method, const char *path,
			       const char *body, size_t blen, uint64_t t0_ns, struct api_reply *reply);

struct api_conn;

struct api_server {
	int listen_fd;
	int epfd;
	int stop_efd;
	pthread_t thread;
	bool running;
	char *path;                /* the socket file, removed by api_server_stop() */
	dev_t dev;                 /* ... only if it is still the one bound here */
	ino_t ino;
	api_handler_fn handler;
	void *opaque;
	size_t max_body;           /* bodies above this: 400 and the connection closed */
	struct api_conn **conns;   /* API_MAX_CONNS slots, each allocated on first use (kept) */
	unsigned nconns;
	uint64_t accepted, refused; /* connections; refused: over API_MAX_CONNS */
};

/*
 * Bind a Unix stream socket at path (mode 0600: the socket is full control of
 * the VM). A stale socket file (nobody accepts on it) is replaced; a live one,
 * or a path that exists and is not a socket, is an error. Returns the
 * listening fd, or -errno with a one-line reason in msg.
 */
int api_socket_listen(const char *path, char *msg, size_t msglen, dev_t *dev, ino_t *ino);

/*
 * Listen on path and serve on a new thread ("kiln-api"); handler runs there.
 * Threads inherit the caller's signal mask: block the signals kiln handles
 * first. 0 or -errno with msg.
 */
int api_server_start(struct api_server *s, const char *path, size_t max_body,
		     api_handler_fn handler, void *opaque, char *msg, size_t msglen);

/* Stop the thread (a running handler finishes first), close connections, remove the socket. Idempotent. */
void api_server_stop(struct api_server *s);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t api_now_ns(void);

#endif
