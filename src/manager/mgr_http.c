/* kiln serve's REST API: HTTP/1.1 on a Unix socket, parsed by http-parser, served from the manager's one epoll loop. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <http_parser.h>
#include <jansson.h>
#include "core/log.h"
#include "manager/mgr_internal.h"

/*
 * Transport bounds. Beyond HTTP_MAX_CONNS a connection is accepted and
 * closed at once. A connection in the middle of a request, or with an answer
 * the client does not read, gets HTTP_STALL_MS; an idle keep-alive one
 * HTTP_IDLE_MS. A stop or delete waits without a timeout: the grace period
 * bounds it.
 */
#define HTTP_MAX_CONNS     64
#define HTTP_STALL_MS      10000
#define HTTP_IDLE_MS       60000
#define HTTP_MAX_HEAD      (16 * 1024)   /* request line + headers */
#define HTTP_MAX_URL       1024
#define HTTP_READ_CHUNK    (16 * 1024)
/*
 * After refusing a request whose body is still coming (413, 400), the rest is
 * read and dropped, up to this much for this long, before the close: a client
 * still sending would otherwise fail with EPIPE before it reads the answer.
 */
#define HTTP_DRAIN_MAX     (1024 * 1024)
#define HTTP_DRAIN_MS      5000

enum conn_state {
	CONN_READING,   /* parsing a request (or idle between two) */
	CONN_WAITING,   /* request complete, parked until a VM's process ends */
	CONN_WRITING,   /* an answer is queued */
	CONN_DRAINING,  /* answered a request refused mid-way; reading the rest away before closing */
};
enum req_wait { WAIT_NONE, WAIT_STOP, WAIT_DELETE };

/* One client connection; one request at a time (pipelined ones wait in `pending`). */
struct mgr_req {
	int fd;
	uint64_t serial;            /* epoll key; never reused */
	enum conn_state state;
	http_parser parser;
	uint64_t deadline;          /* monotonic ms; 0: none */
	bool in_request;            /* bytes of a request arrived, its end has not */
	bool close_after;           /* close once the answer is out */
	bool peer_closed;           /* the client shut down its side: answer, then close */
	bool kick;                  /* an answer was queued from outside: mgr_http_run() sends it */
	/* the request being parsed */
	char url[HTTP_MAX_URL + 1];
	size_t urllen;
	size_t headbytes;
	char hfield[16];            /* the current header's name, enough to spot Expect */
	size_t hfieldlen;
	bool hfield_done, expect_continue;
	char *body;
	size_t len;
	int err_status;             /* a callback refused the request: this status */
	const char *err_msg;
	/* input after the current request (pipelining) */
	char *pending;
	size_t npending;
	/* the answer */
	char *out;
	size_t outlen, outoff;
	size_t drained;
	/* waiting for a VM */
	enum req_wait wait;
	char id[MGR_ID_MAX + 1];
	struct mgr_req *next;       /* in that VM's waiters */
};

struct mgr_http {
	int listenfd;
	char *path;
	dev_t dev;                  /* the socket file we bound: removed at exit only if still it */
	ino_t ino;
	struct mgr_req *conns[HTTP_MAX_CONNS];
	unsigned nconns;
	uint64_t next_serial;
};

/* --- answers --- */

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default:  return "Unknown";
	}
}

/* {"fault_message": msg}, malloc'd. */
static char *fault_json(const char *msg)
{
	json_t *j = json_pack("{s:s}", "fault_message", msg);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	/* Only a message with bytes that are not UTF-8 (a host path) gets here; say something still. */
	return s ? s : strdup("{\"fault_message\":\"(message not representable in JSON)\"}");
}

static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

/* Queue an answer: status, body (malloc'd JSON, taken; NULL for none), optional Allow header. */
static void respond(struct mgr_req *c, int status, char *body, const char *allow)
{
	char head[256];
	size_t blen, hlen;
	int n;

	if (!body && status != 204) {
		status = 500;
		body = fault_json("out of memory");
	}
	blen = body ? strlen(body) : 0;
	if (!c->close_after && !http_should_keep_alive(&c->parser))
		c->close_after = true;
	if (c->peer_closed)
		c->close_after = true;
	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s%s%s%s%s", status, reason(status),
		     allow ? "Allow: " : "", allow ? allow : "", allow ? "\r\n" : "",
		     c->close_after ? "Connection: close\r\n" : "",
		     status == 204 ? "\r\n" : "Content-Type: application/json\r\n");
	hlen = (size_t)n;
	if (status != 204)
		hlen += (size_t)snprintf(head + hlen, sizeof(head) - hlen, "Content-Length: %zu\r\n\r\n", blen);
	free(c->out);
	c->out = malloc(hlen + blen);
	if (!c->out) {
		c->close_after = true;
		c->outlen = c->outoff = 0;
	} else {
		memcpy(c->out, head, hlen);
		if (blen)
			memcpy(c->out + hlen, body, blen);
		c->outlen = hlen + blen;
		c->outoff = 0;
	}
	free(body);
	c->state = CONN_WRITING;
	c->deadline = mgr_now_ms() + HTTP_STALL_MS;
	log_debug("serve: http %d", status);
}

static void respond_err(struct mgr_req *c, const struct mgr_err *err, const char *allow)
{
	log_debug("serve: http %d: %s", err->status, err->msg);
	respond(c, err->status, fault_json(err->msg), allow);
}

static const char *allow_for(enum mgr_ep ep)
{
	switch (ep) {
	case MGR_EP_VMS:  return "GET, POST";
	case MGR_EP_VM:   return "GET, DELETE";
	case MGR_EP_ROOT: return "GET";
	default:          return "POST";
	}
}

/* Park the request until vm's process has ended (mgr_http_vm_done answers it). */
static void wait_for(struct mgr_vm *vm, struct mgr_req *c, enum req_wait kind)
{
	c->wait = kind;
	snprintf(c->id, sizeof(c->id), "%s", vm->rec.id);
	c->next = vm->waiters;
	vm->waiters = c;
	c->state = CONN_WAITING;
	c->deadline = 0;
}

static void list_vms(struct manager *m, struct mgr_req *c)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < m->nvms; i++)
		if (json_array_append_new(arr, mgr_vm_json(m, m->vms[i])) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	respond(c, 200, dump(arr ? json_pack("{s:o}", "vms", arr) : NULL), NULL);
}

/* A whole request is in: route it and answer it, or park it. */
static void dispatch(struct manager *m, struct mgr_req *c)
{
	const char *method = http_method_str((enum http_method)c->parser.method);
	struct mgr_err err = { 0, "" };
	struct mgr_create cr;
	struct mgr_route r;
	struct mgr_vm *vm = NULL;
	char *q = memchr(c->url, '?', c->urllen);
	int rc;

	if (q)   /* no endpoint takes a query; it is ignored, as Firecracker does */
		*q = '\0';
	if (mgr_route(method, c->url, &r, &err) < 0) {
		respond_err(c, &err, err.status == 405 ? allow_for(r.ep) : NULL);
		return;
	}
	log_debug("serve: http %s %s", method, c->url);
	if (c->len && !(r.ep == MGR_EP_VMS && r.method == MGR_POST)) {
		mgr_err_set(&err, 400, "%s %s takes no body", method, c->url);
		respond_err(c, &err, NULL);
		return;
	}
	if (r.ep >= MGR_EP_VM && !(vm = mgr_find(m, r.id))) {
		mgr_err_set(&err, 404, "no VM '%s'", r.id);
		respond_err(c, &err, NULL);
		return;
	}
	switch (r.ep) {
	case MGR_EP_ROOT:
		respond(c, 200, dump(json_pack("{s:s, s:s, s:i, s:s, s:I, s:I}",
			"service", "kiln-serve", "version", KILN_VERSION, "pid", (int)getpid(),
			"state_dir", m->state_dir, "vms", (json_int_t)m->nvms,
			"max_vms", (json_int_t)m->opt.params.max_vms)), NULL);
		return;
	case MGR_EP_VMS:
		if (r.method == MGR_GET) {
			list_vms(m, c);
			return;
		}
		if (mgr_parse_create(c->body, c->len, &cr, &err) < 0) {
			respond_err(c, &err, NULL);
			return;
		}
		rc = mgr_vm_create(m, &cr, &vm, &err);
		json_decref(cr.config);
		if (rc < 0)
			respond_err(c, &err, NULL);
		else
			respond(c, 201, dump(mgr_vm_json(m, vm)), NULL);
		return;
	case MGR_EP_VM:
		if (r.method == MGR_GET) {
			respond(c, 200, dump(mgr_vm_json(m, vm)), NULL);
			return;
		}
		rc = mgr_vm_delete(m, vm, &err);
		if (rc > 0)
			wait_for(vm, c, WAIT_DELETE);
		else if (rc < 0)
			respond_err(c, &err, NULL);
		else
			respond(c, 204, NULL, NULL);
		return;
	case MGR_EP_VM_STOP:
		if (mgr_vm_stop(m, vm) > 0)
			wait_for(vm, c, WAIT_STOP);
		else
			respond(c, 200, dump(mgr_vm_json(m, vm)), NULL);
		return;
	case MGR_EP_VM_START:
		if (mgr_vm_start(m, vm, &err) < 0)
			respond_err(c, &err, NULL);
		else
			respond(c, 200, dump(mgr_vm_json(m, vm)), NULL);
		return;
	}
}

/*
 * Answer the requests waiting for vm. The answers are only queued here: this
 * runs inside the VM's lifecycle code, and writing (then parsing a pipelined
 * request, which could delete this very VM) waits for mgr_http_run().
 */
void mgr_http_vm_done(struct manager *m, struct mgr_vm *vm)
{
	struct mgr_req *c = vm->waiters;

	vm->waiters = NULL;
	while (c) {
		struct mgr_req *next = c->next;
		enum req_wait kind = c->wait;

		c->next = NULL;
		c->wait = WAIT_NONE;
		if (kind == WAIT_DELETE && !vm->delete_err[0])
			respond(c, 204, NULL, NULL);
		else if (kind == WAIT_DELETE)
			respond(c, 500, fault_json(vm->delete_err), NULL);
		else
			respond(c, 200, dump(mgr_vm_json(m, vm)), NULL);
		c->kick = true;
		c = next;
	}
}

/* --- http-parser callbacks: they only collect, bounded; dispatch happens after --- */

static int refuse(struct mgr_req *c, int status, const char *msg)
{
	c->err_status = status;
	c->err_msg = msg;
	return -1;
}

static int on_message_begin(http_parser *p)
{
	struct mgr_req *c = p->data;

	c->in_request = true;
	c->urllen = c->headbytes = c->len = c->hfieldlen = 0;
	c->hfield_done = c->expect_continue = false;
	c->err_status = 0;
	c->url[0] = '\0';
	free(c->body);
	c->body = NULL;
	c->deadline = mgr_now_ms() + HTTP_STALL_MS;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct mgr_req *c = p->data;

	if (c->urllen + n > HTTP_MAX_URL)
		return refuse(c, 414, "request path over 1024 bytes");
	memcpy(c->url + c->urllen, at, n);
	c->urllen += n;
	c->url[c->urllen] = '\0';
	c->headbytes += n;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct mgr_req *c = p->data;

	if ((c->headbytes += n) > HTTP_MAX_HEAD)
		return refuse(c, 431, "request headers over 16 KiB");
	if (c->hfield_done) {   /* a new header begins */
		c->hfieldlen = 0;
		c->hfield_done = false;
	}
	for (size_t i = 0; i < n && c->hfieldlen < sizeof(c->hfield) - 1; i++)
		c->hfield[c->hfieldlen++] = at[i];
	c->hfield[c->hfieldlen] = '\0';
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct mgr_req *c = p->data;

	if ((c->headbytes += n) > HTTP_MAX_HEAD)
		return refuse(c, 431, "request headers over 16 KiB");
	c->hfield_done = true;
	if (!strcasecmp(c->hfield, "expect") && n >= 12 && !strncasecmp(at, "100-continue", 12))
		c->expect_continue = true;
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct mgr_req *c = p->data;
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (p->content_length != ULLONG_MAX && p->content_length > MGR_MAX_BODY)
		return refuse(c, 413, "request body over 64 KiB");
	/* A client that asked waits for this before sending the body. Nothing else is queued now. */
	if (c->expect_continue && write(c->fd, cont, sizeof(cont) - 1) < 0)
		log_debug("serve: http: 100 Continue: %s", strerror(errno));
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct mgr_req *c = p->data;
	char *b;

	if (c->len + n > MGR_MAX_BODY)   /* chunked bodies announce no length */
		return refuse(c, 413, "request body over 64 KiB");
	b = realloc(c->body, c->len + n + 1);
	if (!b)
		return refuse(c, 500, "out of memory");
	memcpy(b + c->len, at, n);
	c->len += n;
	b[c->len] = '\0';
	c->body = b;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct mgr_req *c = p->data;

	c->in_request = false;
	/* One request at a time: stop here, answer, then parse what follows. */
	http_parser_pause(p, 1);
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

/* --- connections --- */

static struct mgr_req *conn_find(struct mgr_http *h, uint64_t serial)
{
	for (unsigned i = 0; i < h->nconns; i++)
		if (h->conns[i]->serial == serial)
			return h->conns[i];
	return NULL;
}

static void unlink_waiter(struct manager *m, struct mgr_req *c)
{
	struct mgr_vm *vm = c->id[0] ? mgr_find(m, c->id) : NULL;

	for (struct mgr_req **p = vm ? &vm->waiters : NULL; p && *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->wait = WAIT_NONE;
}

static void conn_close(struct manager *m, struct mgr_req *c)
{
	struct mgr_http *h = m->http;

	if (c->wait != WAIT_NONE)
		unlink_waiter(m, c);
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	for (unsigned i = 0; i < h->nconns; i++)
		if (h->conns[i] == c) {
			h->conns[i] = h->conns[--h->nconns];
			break;
		}
	free(c->body);
	free(c->pending);
	free(c->out);
	free(c);
}

static void conn_watch(struct manager *m, struct mgr_req *c, uint32_t events)
{
	/* After a half-close, RDHUP would fire forever (level-triggered): only HUP/ERR then. */
	struct epoll_event ev = { .events = events | (c->peer_closed ? 0 : EPOLLRDHUP),
				  .data.u64 = MGR_TAG_CONN | c->serial };

	epoll_ctl(m->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Feed bytes to the parser: a complete request is dispatched, an error answered (and the connection closed after). */
static void conn_feed(struct manager *m, struct mgr_req *c, const char *data, size_t len)
{
	size_t used = http_parser_execute(&c->parser, &parser_settings, data, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
	struct mgr_err err;

	if (e == HPE_PAUSED) {
		/* Keep what follows this request for after the answer. */
		free(c->pending);
		c->pending = NULL;
		c->npending = 0;
		if (used < len && (c->pending = malloc(len - used))) {
			memcpy(c->pending, data + used, len - used);
			c->npending = len - used;
		}
		http_parser_pause(&c->parser, 0);
		dispatch(m, c);
		return;
	}
	if (e == HPE_OK && !c->parser.upgrade)
		return;   /* need more bytes */
	if (c->err_status) {
		mgr_err_set(&err, c->err_status, "%s", c->err_msg);
	} else if (e == HPE_HEADER_OVERFLOW) {
		mgr_err_set(&err, 431, "request headers too large");
	} else {
		mgr_err_set(&err, 400, "malformed HTTP request: %s",
			    c->parser.upgrade ? "protocol upgrades are not served" : http_errno_description(e));
	}
	/* The stream cannot be trusted past a bad request: answer and close. */
	c->close_after = true;
	respond_err(c, &err, NULL);
}

/* Move a connection along: write what is queued, then parse what is pending, until it must wait. */
static void conn_progress(struct manager *m, struct mgr_req *c)
{
	for (;;) {
		if (c->state == CONN_WAITING) {
			conn_watch(m, c, 0);   /* only hang-ups until the VM is done */
			return;
		}
		if (c->state == CONN_WRITING) {
			while (c->outoff < c->outlen) {
				ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
						 MSG_NOSIGNAL | MSG_DONTWAIT);

				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0 && errno == EAGAIN) {
					conn_watch(m, c, EPOLLOUT);
					return;
				}
				if (n <= 0) {
					conn_close(m, c);
					return;
				}
				c->outoff += (size_t)n;
				c->deadline = mgr_now_ms() + HTTP_STALL_MS;
			}
			free(c->out);
			c->out = NULL;
			c->outlen = c->outoff = 0;
			if (c->close_after && c->in_request && !c->peer_closed) {
				shutdown(c->fd, SHUT_WR);
				c->state = CONN_DRAINING;
				c->deadline = mgr_now_ms() + HTTP_DRAIN_MS;
				conn_watch(m, c, EPOLLIN);
				return;
			}
			if (c->close_after) {
				conn_close(m, c);
				return;
			}
			c->state = CONN_READING;
			c->deadline = mgr_now_ms() + HTTP_IDLE_MS;
		}
		if (c->npending) {
			char *p = c->pending;
			size_t n = c->npending;

			c->pending = NULL;
			c->npending = 0;
			conn_feed(m, c, p, n);
			free(p);
			continue;
		}
		conn_watch(m, c, c->peer_closed ? 0 : EPOLLIN);
		return;
	}
}

static void conn_readable(struct manager *m, struct mgr_req *c)
{
	char buf[HTTP_READ_CHUNK];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* EOF between requests: done. Inside one: the request can never complete. */
		conn_close(m, c);
		return;
	}
	conn_feed(m, c, buf, (size_t)n);
	conn_progress(m, c);
}

static void accept_all(struct manager *m)
{
	struct mgr_http *h = m->http;

	for (;;) {
		int fd = accept4(h->listenfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
		struct mgr_req *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;   /* EAGAIN, or out of fds: the next loop turn tries again */
		}
		if (h->nconns >= HTTP_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
			log_debug("serve: http: connection refused (%u open)", h->nconns);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->serial = ++h->next_serial;
		http_parser_init(&c->parser, HTTP_REQUEST);
		c->parser.data = c;
		c->deadline = mgr_now_ms() + HTTP_IDLE_MS;
		ev.data.u64 = MGR_TAG_CONN | c->serial;
		if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		h->conns[h->nconns++] = c;
	}
}

void mgr_http_event(struct manager *m, uint64_t key, uint32_t events)
{
	struct mgr_req *c;

	if (!m->http)
		return;
	if (key == MGR_TAG_HTTP) {
		accept_all(m);
		return;
	}
	/* Looked up by serial: an earlier event of this batch may have closed it. */
	c = conn_find(m->http, key & ~MGR_TAG_MASK);
	if (!c)
		return;
	/* Bytes first, even with a hang-up: a request sent whole before a close is still carried out. */
	if ((events & EPOLLIN) && c->state == CONN_READING) {
		conn_readable(m, c);
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		conn_close(m, c);
		return;
	}
	if ((events & EPOLLOUT) && c->state == CONN_WRITING) {
		conn_progress(m, c);
		return;
	}
	if (c->state == CONN_DRAINING) {
		char buf[HTTP_READ_CHUNK];
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if ((n < 0 && errno != EAGAIN && errno != EINTR) || n == 0 ||
		    (c->drained += n > 0 ? (size_t)n : 0) > HTTP_DRAIN_MAX)
			conn_close(m, c);
		return;
	}
	if (events & EPOLLRDHUP) {
		/* Half-closed: a waiting request still gets its answer; nothing more is read. */
		if (c->state == CONN_READING && !c->in_request && !c->npending) {
			conn_close(m, c);
			return;
		}
		c->peer_closed = true;
		c->close_after = true;
		if (c->state == CONN_READING) {
			conn_readable(m, c);   /* the rest of the request, if it is there */
			return;
		}
		conn_progress(m, c);
	}
}

void mgr_http_run(struct manager *m)
{
	struct mgr_http *h = m->http;
	uint64_t now = mgr_now_ms();
	unsigned i = 0;

	if (!h)
		return;
	/* Each pass handles one connection and may close any: rescan from the start; bounded by nconns. */
	while (i < h->nconns) {
		struct mgr_req *c = h->conns[i];

		if (c->kick) {
			c->kick = false;
			conn_progress(m, c);
			i = 0;
		} else if (c->deadline && c->deadline <= now) {
			log_debug("serve: http: connection %s, closed", c->state == CONN_WRITING ?
				  "does not read its answer" : c->state == CONN_DRAINING ? "drained" :
				  c->in_request ? "stalled mid-request" : "idle");
			conn_close(m, c);
			i = 0;
		} else {
			i++;
		}
	}
}

int64_t mgr_http_timeout(struct manager *m)
{
	struct mgr_http *h = m->http;
	uint64_t now = mgr_now_ms();
	int64_t t = -1;

	for (unsigned i = 0; h && i < h->nconns; i++) {
		struct mgr_req *c = h->conns[i];
		int64_t left;

		if (c->kick)
			return 0;
		if (!c->deadline)
			continue;
		left = c->deadline > now ? (int64_t)(c->deadline - now) : 0;
		if (t < 0 || left < t)
			t = left;
	}
	return t;
}

/* The listening socket: a stale one (nobody accepts on it) is replaced; anything else is an error. */
static int listen_unix(const char *path, dev_t *dev, ino_t *ino)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, probe;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("serve: --api-sock %s: longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("serve: --api-sock %s: exists and is not a socket", path);
			return -1;
		}
		/* Non-blocking: a live server with a full backlog (EAGAIN) is in use too, and never hangs us. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (probe >= 0 && (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
				   errno == EAGAIN)) {
			close(probe);
			log_err("serve: --api-sock %s: a server is listening on it", path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_err("serve: socket: %s", strerror(errno));
		return -1;
	}
	/* 0600 from the start: whoever can connect can start processes as us. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		umask(old);
		log_err("serve: --api-sock %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (stat(path, &st) == 0) {
		*dev = st.st_dev;
		*ino = st.st_ino;
	}
	return fd;
}

int mgr_http_start(struct manager *m)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = MGR_TAG_HTTP };
	struct mgr_http *h = calloc(1, sizeof(*h));

	if (!h || !(h->path = strdup(m->opt.api_sock))) {
		free(h);
		return -1;
	}
	h->listenfd = listen_unix(h->path, &h->dev, &h->ino);
	if (h->listenfd < 0) {
		free(h->path);
		free(h);
		return -1;
	}
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, h->listenfd, &ev) < 0) {
		log_err("serve: epoll_ctl: %s", strerror(errno));
		close(h->listenfd);
		unlink(h->path);
		free(h->path);
		free(h);
		return -1;
	}
	m->http = h;
	return 0;
}

void mgr_http_stop(struct manager *m)
{
	struct mgr_http *h = m->http;
	struct stat st;

	if (!h)
		return;
	/* Waiting requests get a last answer, sent if the socket takes it now; then every connection goes. */
	for (unsigned i = 0; i < h->nconns; i++) {
		struct mgr_req *c = h->conns[i];

		if (c->state != CONN_WAITING)
			continue;
		unlink_waiter(m, c);
		c->close_after = true;
		respond(c, 503, fault_json("the manager is shutting down; the VM keeps running"), NULL);
		while (c->outoff < c->outlen) {
			ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n <= 0)
				break;
			c->outoff += (size_t)n;
		}
	}
	while (h->nconns)
		conn_close(m, h->conns[h->nconns - 1]);
	close(h->listenfd);
	/* Remove the socket only if it is still the one we bound (not a successor's). */
	if (lstat(h->path, &st) == 0 && st.st_dev == h->dev && st.st_ino == h->ino)
		unlink(h->path);
	free(h->path);
	free(h);
	m->http = NULL;
}
