/* The API's HTTP/1.1 server: a Unix socket kiln binds, requests parsed by http-parser on one epoll thread. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <http_parser.h>
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


/* ---- connections ---- */

#define READ_CHUNK  16384
#define HDR_KEEP    16       /* header name / value bytes kept (only Expect is looked at) */

struct api_conn {
	int fd;                        /* -1: free slot */
	struct api_server *srv;
	http_parser p;
	uint32_t events;               /* the epoll interest set now */
	uint64_t last_ns;              /* last progress: bytes in or out */
	bool mid_request;              /* a request has begun and is not answered yet */
	bool served;                   /* answered at least one request: now idle keep-alive */
	bool close_after;              /* close once the queued answers are out */
	bool reading_stopped;          /* no more input is parsed (refused, or closing) */

	/* The request being parsed. */
	uint64_t t0;
	char path[API_MAX_PATH + 2];   /* one byte over the limit, so api_route says "too long" */
	size_t plen;
	size_t hdr_bytes;
	bool in_value;                 /* the last header callback was a value */
	char hname[HDR_KEEP], hval[HDR_KEEP];
	size_t hn, hv;
	bool expect_continue;
	char *body;
	size_t blen, bcap;
	int reject_status;             /* set by a callback: answer with reject_msg and close */
	char reject_msg[API_FAULT_MAX];

	/* Answers queued to write. */
	char *out;
	size_t out_len, out_off, out_cap;
};

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return "Unknown";
}

static void append_out(struct api_conn *c, const char *data, size_t len)
{
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *nb;

		if (c->out_off) {   /* reclaim what was written before growing */
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (cap < c->out_len + len)
			cap *= 2;
		if (cap > c->out_cap) {
			nb = realloc(c->out, cap);
			if (!nb) {
				c->close_after = true;   /* no memory for the answer: drop the client */
				return;
			}
			c->out = nb;
			c->out_cap = cap;
		}
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

/* Queue one answer; Connection: close when the client is to be dropped after it. */
static void queue_answer(struct api_conn *c, int status, const char *body, bool close)
{
	char head[256];
	size_t blen = body ? strlen(body) : 0;
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nServer: kiln API\r\n%s", status,
		     reason(status), close ? "Connection: close\r\n" : "");
	/* RFC 9110 §8.6: no Content-Length on a 204. */
	if (body)
		n += snprintf(head + n, sizeof(head) - (size_t)n,
			      "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
	else if (status != 204)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: 0\r\n");
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	append_out(c, head, (size_t)n);
	if (blen)
		append_out(c, body, blen);
	if (close)
		c->close_after = true;
}

/* Answer with a fault the transport decided on ({"fault_message": ...}), then close. */
static void queue_fault_close(struct api_conn *c, int status, const char *msg)
{
	char *body = api_fault_body(msg);

	queue_answer(c, status, body, true);
	free(body);
	c->reading_stopped = true;
	c->mid_request = false;
}

static int reject(struct api_conn *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int reject(struct api_conn *c, int status, const char *fmt, ...)
{
	va_list ap;

	c->reject_status = status;
	va_start(ap, fmt);
	vsnprintf(c->reject_msg, sizeof(c->reject_msg), fmt, ap);
	va_end(ap);
	return -1;   /* stops http_parser_execute() */
}

static struct api_conn *conn_of(http_parser *p) { return p->data; }

static int on_message_begin(http_parser *p)
{
	struct api_conn *c = conn_of(p);

	c->mid_request = true;
	c->plen = 0;
	c->hdr_bytes = 0;
	c->in_value = true;      /* the first field starts a new header */
	c->hn = c->hv = 0;
	c->expect_continue = false;
	c->blen = 0;
	return 0;
}

static int count_header(struct api_conn *c, size_t len)
{
	c->hdr_bytes += len;
	if (c->hdr_bytes > API_MAX_HEADER_BYTES)
		return reject(c, 431, "Request line and headers longer than %d bytes.",
			      API_MAX_HEADER_BYTES);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = conn_of(p);
	size_t room = sizeof(c->path) - 1 - c->plen;

	memcpy(c->path + c->plen, at, len < room ? len : room);
	c->plen += len < room ? len : room;
	return count_header(c, len);
}

/* A header ends: the only one kiln acts on is "Expect: 100-continue" (RFC 9110 §10.1.1). */
static void header_done(struct api_conn *c)
{
	if (c->hn == 6 && !strncasecmp(c->hname, "expect", 6) && c->hv == 12 &&
	    !strncasecmp(c->hval, "100-continue", 12))
		c->expect_continue = true;
	c->hn = c->hv = 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = conn_of(p);

	if (c->in_value)
		header_done(c);
	c->in_value = false;
	for (size_t i = 0; i < len && c->hn < HDR_KEEP; i++)
		c->hname[c->hn++] = at[i];
	return count_header(c, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = conn_of(p);

	c->in_value = true;
	for (size_t i = 0; i < len && c->hv < HDR_KEEP; i++)
		c->hval[c->hv++] = at[i];
	return count_header(c, len);
}

static int on_headers_complete(http_parser *p)
{
	struct api_conn *c = conn_of(p);
	size_t max = c->srv->max_body;

	header_done(c);
	c->t0 = api_now_ns();
	/* http-parser takes any digits; this server speaks HTTP/1.0 and 1.1 only. */
	if (p->http_major != 1 || p->http_minor > 1)
		return reject(c, 400, "Unsupported HTTP version %u.%u.", p->http_major, p->http_minor);
	/* The parser knows of an upgrade (or CONNECT) before this callback: never serve one. */
	if (p->upgrade)
		return reject(c, 400, "Upgrade and CONNECT are not supported.");
	/* micro_http's SizeLimitExceeded, before a byte of the body is read. */
	if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX && p->content_length > max)
		return reject(c, 400, "Request payload with size %llu is larger than the limit of "
			      "%zu allowed by server.", (unsigned long long)p->content_length, max);
	if (c->expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		append_out(c, cont, sizeof(cont) - 1);
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = conn_of(p);
	size_t max = c->srv->max_body;

	/* A chunked body has no length up front: refuse when it grows past the limit. */
	if (len > max - c->blen)
		return reject(c, 400, "Request payload with size %zu or more is larger than the limit "
			      "of %zu allowed by server.", c->blen + len, max);
	if (c->blen + len > c->bcap) {
		size_t cap = c->bcap ? c->bcap : 1024;
		char *nb;

		while (cap < c->blen + len)
			cap *= 2;
		if (cap > max)
			cap = max;
		nb = realloc(c->body, cap);
		if (!nb)
			return reject(c, 500, "Out of memory for a request body of %zu bytes.",
				      c->blen + len);
		c->body = nb;
		c->bcap = cap;
	}
	memcpy(c->body + c->blen, at, len);
	c->blen += len;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct api_conn *c = conn_of(p);
	struct api_server *s = c->srv;
	struct api_reply rep = { 0 };
	bool keep = http_should_keep_alive(p);
	char *q;

	c->path[c->plen] = '\0';
	/* Paths are matched as sent; a query string means nothing to this API. */
	q = memchr(c->path, '?', c->plen);
	if (q)
		*q = '\0';
	s->handler(s->opaque, http_method_str((enum http_method)p->method), c->path,
		   c->blen ? c->body : NULL, c->blen, c->t0, &rep);
	if (!rep.status)
		rep.status = 500;
	queue_answer(c, rep.status, rep.body, !keep);
	free(rep.body);
	c->mid_request = false;
	c->served = true;
	/* Give back a large body's buffer rather than keep it per connection. */
	if (c->bcap > 4096) {
		free(c->body);
		c->body = NULL;
		c->bcap = 0;
	}
	c->blen = 0;
	if (!keep) {
		c->reading_stopped = true;
		return -1;   /* nothing after this request is parsed */
	}
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static void conn_close(struct api_server *s, struct api_conn *c)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->body);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	s->nconns--;
}

/* Interest: input unless reading stopped or too many answers wait; output while answers wait. */
static void conn_update(struct api_server *s, struct api_conn *c)
{
	size_t pending = c->out_len - c->out_off;
	uint32_t ev = 0;
	struct epoll_event e;

	if (!c->reading_stopped && !c->close_after && pending < API_MAX_PENDING_OUT)
		ev |= EPOLLIN;
	if (pending)
		ev |= EPOLLOUT;
	if (ev == c->events)
		return;
	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

/* Write what is queued. false: the connection is gone (closed here). */
static bool conn_flush(struct api_server *s, struct api_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(s, c);   /* the client went away */
			return false;
		}
		c->out_off += (size_t)n;
		c->last_ns = api_now_ns();
	}
	if (c->out_off == c->out_len && c->close_after) {
		conn_close(s, c);
		return false;
	}
	conn_update(s, c);
	return true;
}

static void conn_read(struct api_server *s, struct api_conn *c)
{
	char buf[READ_CHUNK];
	ssize_t n;
	size_t done;

	if (c->reading_stopped || c->close_after)
		return;
	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		/* EOF (a half-close): answers already queued still go out, then the connection closes. */
		c->close_after = true;
		c->reading_stopped = true;
		return;
	}
	c->last_ns = api_now_ns();
	done = http_parser_execute(&c->p, &parser_settings, buf, (size_t)n);
	if (c->reject_status) {
		queue_fault_close(c, c->reject_status, c->reject_msg);
	} else if (c->p.upgrade) {
		queue_fault_close(c, 400, "Upgrade and CONNECT are not supported.");
	} else if (HTTP_PARSER_ERRNO(&c->p) != HPE_OK && !c->reading_stopped) {
		char msg[128];

		snprintf(msg, sizeof(msg), "Malformed HTTP request: %s.",
			 http_errno_description(HTTP_PARSER_ERRNO(&c->p)));
		queue_fault_close(c, 400, msg);
	}
	(void)done;
}

static void accept_all(struct api_server *s)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct api_conn *c = NULL;
		struct epoll_event e;

		if (fd < 0)
			return;   /* EAGAIN, or a client gone before accept: nothing to do */
		if (s->nconns < API_MAX_CONNS) {
			/* A slot is allocated when first needed and kept: nothing to touch at start. */
			for (unsigned k = 0; k < API_MAX_CONNS; k++) {
				if (!s->conns[k]) {
					s->conns[k] = malloc(sizeof(*s->conns[k]));
					if (s->conns[k])
						s->conns[k]->fd = -1;
				}
				if (s->conns[k] && s->conns[k]->fd < 0) {
					c = s->conns[k];
					break;
				}
			}
		}
		if (!c) {
			s->refused++;
			close(fd);   /* over the limit: closed, never left hanging */
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->srv = s;
		c->last_ns = api_now_ns();
		http_parser_init(&c->p, HTTP_REQUEST);
		c->p.data = c;
		e.events = EPOLLIN;
		e.data.ptr = c;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
			close(fd);
			c->fd = -1;
			continue;
		}
		c->events = EPOLLIN;
		s->nconns++;
		s->accepted++;
	}
}

/* Close connections that made no progress for their timeout. */
static void expire(struct api_server *s, uint64_t now)
{
	for (unsigned k = 0; k < API_MAX_CONNS && s->nconns; k++) {
		struct api_conn *c = s->conns[k];
		bool busy;
		uint64_t limit;

		if (!c || c->fd < 0 || c->last_ns > now)
			continue;
		busy = c->mid_request || !c->served || c->out_off < c->out_len;
		limit = (uint64_t)(busy ? API_CONN_TIMEOUT_S : API_IDLE_TIMEOUT_S) * 1000000000ull;
		if (now - c->last_ns > limit)
			conn_close(s, c);
	}
}

static void *server_main(void *arg)
{
	struct api_server *s = arg;
	struct epoll_event ev[64];
	uint64_t last_scan = api_now_ns();

	pthread_setname_np(pthread_self(), "kiln-api");
	for (;;) {
		int n = epoll_wait(s->epfd, ev, 64, 1000);
		uint64_t now, t_batch = api_now_ns();

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			struct api_conn *c = ev[i].data.ptr;

			if (c == NULL) {            /* the stop eventfd */
				goto out;
			} else if (c == (void *)s) {  /* the listening socket */
				accept_all(s);
				continue;
			}
			if (c->fd < 0)
				continue;               /* closed earlier in this batch */
			if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				conn_read(s, c);
			if (c->fd >= 0)
				conn_flush(s, c);
		}
		now = api_now_ns();
		/*
		 * A handler that took long (InstanceStart on a slow host) kept
		 * everyone else waiting: that time is not their stall.
		 */
		if (now - t_batch >= 1000000000ull) {
			for (unsigned k = 0; k < API_MAX_CONNS; k++) {
				struct api_conn *c = s->conns[k];

				if (c && c->fd >= 0)
					c->last_ns = c->last_ns + (now - t_batch) < now ?
						     c->last_ns + (now - t_batch) : now;
			}
		}
		if (now - last_scan >= 1000000000ull) {
			expire(s, now);
			last_scan = now;
		}
	}
out:
	for (unsigned k = 0; k < API_MAX_CONNS; k++)
		if (s->conns[k] && s->conns[k]->fd >= 0)
			conn_close(s, s->conns[k]);
	return NULL;
}

int api_server_start(struct api_server *s, const char *path, size_t max_body,
		     api_handler_fn handler, void *opaque, char *msg, size_t msglen)
{
	struct epoll_event e;
	int ret;

	memset(s, 0, sizeof(*s));
	s->listen_fd = s->epfd = s->stop_efd = -1;
	s->handler = handler;
	s->opaque = opaque;
	s->max_body = max_body;
	s->path = strdup(path ? path : "");
	s->conns = calloc(API_MAX_CONNS, sizeof(*s->conns));
	if (!s->path || !s->conns) {
		snprintf(msg, msglen, "out of memory");
		ret = -ENOMEM;
		goto err;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->epfd < 0 || s->stop_efd < 0) {
		ret = -errno;
		snprintf(msg, msglen, "API server: %s", strerror(-ret));
		goto err;
	}
	ret = api_socket_listen(path, msg, msglen, &s->dev, &s->ino);
	if (ret < 0)
		goto err_nosock;
	s->listen_fd = ret;
	ret = fcntl(s->listen_fd, F_SETFL, O_NONBLOCK);
	e.events = EPOLLIN;
	e.data.ptr = s;
	if (ret == 0)
		ret = epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &e);
	e.data.ptr = NULL;
	if (ret == 0)
		ret = epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stop_efd, &e);
	if (ret < 0) {
		ret = -errno;
		snprintf(msg, msglen, "API server: epoll: %s", strerror(-ret));
		goto err;
	}
	ret = -pthread_create(&s->thread, NULL, server_main, s);
	if (ret) {
		snprintf(msg, msglen, "API server thread: %s", strerror(-ret));
		goto err;
	}
	s->running = true;
	return 0;
err_nosock:
	free(s->path);
	s->path = NULL;
err:
	api_server_stop(s);
	return ret;
}

void api_server_stop(struct api_server *s)
{
	struct stat st;
	uint64_t one = 1;

	if (s->running) {
		/* A handler running now (InstanceStart, a pause) finishes first. */
		if (write(s->stop_efd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			pthread_cancel(s->thread);
		pthread_join(s->thread, NULL);
		s->running = false;
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->stop_efd >= 0)
		close(s->stop_efd);
	s->listen_fd = s->epfd = s->stop_efd = -1;
	/* Remove the socket only if it is still ours (not replaced by another kiln meanwhile). */
	if (s->path && s->ino && lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s->path);
	s->path = NULL;
	for (unsigned k = 0; s->conns && k < API_MAX_CONNS; k++)
		free(s->conns[k]);
	free(s->conns);
	s->conns = NULL;
}
