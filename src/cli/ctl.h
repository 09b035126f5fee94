/* `kiln ctl`: a client for kiln's (Firecracker's) REST API on a Unix socket. */
#ifndef KILN_CTL_H
#define KILN_CTL_H

#include <stddef.h>

/* Exit codes of kiln ctl. */
enum ctl_exit {
	CTL_EXIT_OK = 0,         /* 2xx */
	CTL_EXIT_REFUSED = 1,    /* the API answered 4xx/5xx (its fault_message is printed) */
	CTL_EXIT_USAGE = 2,      /* bad command line */
	CTL_EXIT_CONNECT = 3,    /* no answer: socket missing, refused, timeout, not HTTP */
};

/* Largest response ctl accepts (GET /vm/config is a few KiB). */
#define CTL_MAX_RESPONSE (1024 * 1024)

/* `kiln ctl ARGS...` (argv[0] is "ctl"); returns an enum ctl_exit. */
int ctl_main(int argc, char **argv);

/*
 * One request over a fresh connection ("Connection: close"). body may be
 * NULL. 0 with *status and *resp (malloc'd, NUL-terminated, possibly empty),
 * or -errno with a one-line reason in msg.
 */
int ctl_http(const char *sock, const char *method, const char *path, const char *body,
	     int timeout_ms, int *status, char **resp, char *msg, size_t msglen);

/*
 * Parse an HTTP/1.x response held whole in buf[0..len): status code and the
 * body (bounded by Content-Length when there is one). 0, or -EPROTO.
 */
int ctl_parse_response(const char *buf, size_t len, int *status, size_t *body_off,
		       size_t *body_len);

extern const char ctl_usage[];

#endif
