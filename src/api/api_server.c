/* The API's HTTP/1.1 server: a Unix socket kiln binds, served by libmicrohttpd's polling thread (epoll). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <microhttpd.h>
#include "api/api.h"
#include "api/api_server.h"
#include "core/log.h"

uint64_t api_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * A socket file already at path: replace it if nobody accepts on it (kiln
 * or Firecracker died without removing it), refuse if somebody does, refuse
 * anything that is not a socket (never unlink a user's file).
 */
static int remove_stale(const char *path, const struct sockaddr_un *a, char *msg, size_t msglen)
{
	struct stat st;
	int probe, ret, err;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;   /* gone meanwhile: bind again */
		err = errno;
		snprintf(msg, msglen, "--api-sock %s: %s", path, strerror(err));
		return -err;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(msg, msglen, "--api-sock %s: exists and is not a socket (not replaced)", path);
		return -EEXIST;
	}
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0) {
		err = errno;
		snprintf(msg, msglen, "socket: %s", strerror(err));
		return -err;
	}
	ret = connect(probe, (const struct sockaddr *)a, sizeof(*a));
	err = errno;
	close(probe);
	/* EAGAIN: a listener whose backlog is full is still a listener. */
	if (ret == 0 || err == EAGAIN || err == EINPROGRESS) {
		snprintf(msg, msglen, "--api-sock %s: in use (another process accepts connections on it)",
			 path);
		return -EADDRINUSE;
	}
	if (err != ECONNREFUSED && err != ENOENT) {
		snprintf(msg, msglen, "--api-sock %s: %s", path, strerror(err));
		return -err;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		err = errno;
		snprintf(msg, msglen, "--api-sock %s: cannot remove the stale socket: %s", path,
			 strerror(err));
		return -err;
	}
	log_info("--api-sock %s: replaced a stale socket", path);
	return 0;
}

int api_socket_listen(const char *path, char *msg, size_t msglen, dev_t *dev, ino_t *ino)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, ret, err;

	if (!path || !*path) {
		snprintf(msg, msglen, "--api-sock needs a path");
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(msg, msglen, "--api-sock %s: longer than %zu bytes (sockaddr_un)", path,
			 sizeof(a.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		snprintf(msg, msglen, "socket: %s", strerror(err));
		return -err;
	}
	for (int attempt = 0;; attempt++) {
		/* 0600 from the start: whoever can connect controls the VM. */
		old = umask(0177);
		ret = bind(fd, (const struct sockaddr *)&a, sizeof(a));
		err = errno;
		umask(old);
		if (ret == 0)
			break;
		if (err != EADDRINUSE || attempt > 0) {
			snprintf(msg, msglen, "--api-sock %s: bind: %s", path, strerror(err));
			close(fd);
			return -err;
		}
		ret = remove_stale(path, &a, msg, msglen);
		if (ret < 0) {
			close(fd);
			return ret;
		}
	}
	if (listen(fd, API_LISTEN_BACKLOG) < 0 || lstat(path, &st) < 0) {
		err = errno;
		snprintf(msg, msglen, "--api-sock %s: %s", path, strerror(err));
		unlink(path);
		close(fd);
		return -err;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return fd;
}

/* Per-request state: when it began and the body so far (bounded by max_body). */
struct req_ctx {
	uint64_t t0;
	char *buf;
	size_t len, cap;
};

static enum MHD_Result send_reply(struct MHD_Connection *c, struct api_reply *rep)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (rep->body) {
		resp = MHD_create_response_from_buffer(strlen(rep->body), rep->body,
						       MHD_RESPMEM_MUST_FREE);
		if (!resp) {
			free(rep->body);
			return MHD_NO;
		}
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	} else {
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
	}
	rep->body = NULL;   /* MHD owns it now */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, "kiln API");
	ret = MHD_queue_response(c, (unsigned)rep->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A fault answered by the transport itself (the handler never sees the request). */
static enum MHD_Result send_fault(struct MHD_Connection *c, int status, const char *msg)
{
	struct api_reply rep = { .status = status, .body = api_fault_body(msg) };

	if (!rep.body)
		return MHD_NO;
	return send_reply(c, &rep);
}

static bool content_length_over(const char *cl, size_t max, unsigned long long *val)
{
	char *end;

	errno = 0;
	*val = strtoull(cl, &end, 10);
	/* MHD has checked the syntax; an overflow is simply too large. */
	return errno == ERANGE || *val > max;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct api_server *s = cls;
	struct req_ctx *r = *con_cls;
	struct api_reply rep = { 0 };

	(void)version;
	if (!r) {
		/* First call: headers are in, no body byte read yet. */
		const char *cl;
		unsigned long long n;

		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->t0 = api_now_ns();
		*con_cls = r;
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && content_length_over(cl, s->max_body, &n)) {
			char msg[API_FAULT_MAX];

			/* Answering now makes MHD discard the body and close the connection. */
			snprintf(msg, sizeof(msg), "Request payload with size %llu is larger than the "
				 "limit of %zu allowed by server.", n, s->max_body);
			return send_fault(c, 400, msg);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		if (n > s->max_body - r->len) {
			/* A chunked body past the limit: no answer can be queued mid-upload, so close. */
			log_debug("api: request body over %zu bytes, closing the connection", s->max_body);
			return MHD_NO;
		}
		if (r->len + n > r->cap) {
			size_t cap = r->cap ? r->cap : 1024;
			char *nb;

			while (cap < r->len + n)
				cap *= 2;
			if (cap > s->max_body)
				cap = s->max_body;
			nb = realloc(r->buf, cap);
			if (!nb)
				return MHD_NO;
			r->buf = nb;
			r->cap = cap;
		}
		memcpy(r->buf + r->len, upload_data, n);
		r->len += n;
		*upload_data_size = 0;
		return MHD_YES;
	}
	s->handler(s->opaque, method, url, r->len ? r->buf : NULL, r->len, r->t0, &rep);
	if (!rep.status)
		rep.status = 500;
	return send_reply(c, &rep);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req_ctx *r = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (r) {
		free(r->buf);
		free(r);
	}
	*con_cls = NULL;
}

/* Name the server thread once it first runs a callback (MHD creates it). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	(void)c;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		pthread_setname_np(pthread_self(), "kiln-api");
}

/* Paths are matched byte for byte (api_route), so MHD must not percent-decode them. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_debug("api: libmicrohttpd: %s", buf);
}
#pragma GCC diagnostic pop

int api_server_start(struct api_server *s, const char *path, size_t max_body,
		     api_handler_fn handler, void *opaque, char *msg, size_t msglen)
{
	int fd;

	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
	s->handler = handler;
	s->opaque = opaque;
	s->max_body = max_body;
	s->path = strdup(path ? path : "");
	if (!s->path) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	fd = api_socket_listen(path, msg, msglen, &s->dev, &s->ino);
	if (fd < 0) {
		free(s->path);
		s->path = NULL;
		return fd;
	}
	s->listen_fd = fd;
	s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
				  0, NULL, NULL, on_request, s,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_CONN_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONN_MEMORY,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				  MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, s,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
				  MHD_OPTION_END);
	if (!s->mhd) {
		snprintf(msg, msglen, "--api-sock %s: cannot start the HTTP server (libmicrohttpd)", path);
		/*
		 * Whether MHD closed the socket it was handed on this path is not
		 * documented; leave the fd (kiln exits on this error) rather than
		 * risk closing a descriptor another thread has reused.
		 */
		s->listen_fd = -1;
		api_server_stop(s);
		return -EIO;
	}
	return 0;
}

void api_server_stop(struct api_server *s)
{
	struct stat st;

	if (s->mhd) {
		/* Joins the server thread; MHD closes the listening socket it was given. */
		MHD_stop_daemon(s->mhd);
		s->mhd = NULL;
		s->listen_fd = -1;
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	/* Remove the socket only if it is still ours (not replaced by another kiln meanwhile). */
	if (s->path && lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == s->dev &&
	    st.st_ino == s->ino)
		unlink(s->path);
	free(s->path);
	s->path = NULL;
}
