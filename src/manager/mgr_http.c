/* kiln serve's REST API on a Unix socket: libmicrohttpd driven from the manager's epoll loop, JSON via jansson. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <jansson.h>
#include <microhttpd.h>
#include "core/log.h"
#include "manager/mgr_internal.h"

#define HTTP_MAX_CONNECTIONS 64
#define HTTP_IDLE_TIMEOUT_S  30   /* a client silent this long is dropped (slow or half-open) */

enum req_wait { WAIT_NONE, WAIT_STOP, WAIT_DELETE };

/* One HTTP request, from its headers to its completion (MHD's per-connection pointer). */
struct mgr_req {
	struct MHD_Connection *conn;
	char *body;
	size_t len;
	bool too_big;             /* the body passed MGR_MAX_BODY: dropped, answered 413 */
	enum req_wait wait;       /* suspended until this VM's process ends */
	char id[MGR_ID_MAX + 1];
	bool ready;               /* resumed: status/resp hold the answer */
	int status;
	char *resp;               /* JSON (malloc'd) or NULL for no body */
	struct mgr_req *next;     /* in its VM's waiters */
};

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

/* Queue status with body (malloc'd JSON, taken; NULL: none). */
static enum MHD_Result reply(struct MHD_Connection *conn, int status, char *body, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!body && status != MHD_HTTP_NO_CONTENT) {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		body = fault_json("out of memory");
	}
	if (body)
		r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	else
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	if (body)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_err(struct MHD_Connection *conn, const struct mgr_err *err,
				 const char *allow)
{
	log_debug("serve: http %d: %s", err->status, err->msg);
	return reply(conn, err->status, fault_json(err->msg), allow);
}

static const char *allow_for(enum mgr_ep ep)
{
	switch (ep) {
	case MGR_EP_VMS: return "GET, POST";
	case MGR_EP_VM:  return "GET, DELETE";
	case MGR_EP_ROOT: return "GET";
	default:         return "POST";
	}
}

/* Park the request until vm's process has ended (mgr_http_vm_done answers it). */
static enum MHD_Result wait_for(struct mgr_vm *vm, struct mgr_req *req, enum req_wait kind)
{
	req->wait = kind;
	snprintf(req->id, sizeof(req->id), "%s", vm->rec.id);
	req->next = vm->waiters;
	vm->waiters = req;
	MHD_suspend_connection(req->conn);
	return MHD_YES;
}

static enum MHD_Result list_vms(struct manager *m, struct MHD_Connection *conn)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < m->nvms; i++)
		if (json_array_append_new(arr, mgr_vm_json(m, m->vms[i])) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	return reply(conn, MHD_HTTP_OK, dump(arr ? json_pack("{s:o}", "vms", arr) : NULL), NULL);
}

static enum MHD_Result dispatch(struct manager *m, struct mgr_req *req, const char *url,
				const char *method)
{
	struct MHD_Connection *conn = req->conn;
	struct mgr_err err = { 0, "" };
	struct mgr_create c;
	struct mgr_route r;
	struct mgr_vm *vm = NULL;
	int rc;

	if (mgr_route(method, url, &r, &err) < 0)
		return reply_err(conn, &err, err.status == 405 ? allow_for(r.ep) : NULL);
	log_debug("serve: http %s %s", method, url);
	if (req->len && !(r.ep == MGR_EP_VMS && r.method == MGR_POST)) {
		mgr_err_set(&err, 400, "%s %s takes no body", method, url);
		return reply_err(conn, &err, NULL);
	}
	if (r.ep >= MGR_EP_VM && !(vm = mgr_find(m, r.id))) {
		mgr_err_set(&err, 404, "no VM '%s'", r.id);
		return reply_err(conn, &err, NULL);
	}
	switch (r.ep) {
	case MGR_EP_ROOT:
		return reply(conn, MHD_HTTP_OK, dump(json_pack("{s:s, s:s, s:i, s:s, s:I, s:I}",
			"service", "kiln-serve", "version", KILN_VERSION, "pid", (int)getpid(),
			"state_dir", m->state_dir, "vms", (json_int_t)m->nvms,
			"max_vms", (json_int_t)m->opt.params.max_vms)), NULL);
	case MGR_EP_VMS:
		if (r.method == MGR_GET)
			return list_vms(m, conn);
		if (mgr_parse_create(req->body, req->len, &c, &err) < 0)
			return reply_err(conn, &err, NULL);
		rc = mgr_vm_create(m, &c, &vm, &err);
		json_decref(c.config);
		if (rc < 0)
			return reply_err(conn, &err, NULL);
		return reply(conn, MHD_HTTP_CREATED, dump(mgr_vm_json(m, vm)), NULL);
	case MGR_EP_VM:
		if (r.method == MGR_GET)
			return reply(conn, MHD_HTTP_OK, dump(mgr_vm_json(m, vm)), NULL);
		rc = mgr_vm_delete(m, vm, &err);
		if (rc > 0)
			return wait_for(vm, req, WAIT_DELETE);
		return rc < 0 ? reply_err(conn, &err, NULL) : reply(conn, MHD_HTTP_NO_CONTENT, NULL, NULL);
	case MGR_EP_VM_STOP:
		if (mgr_vm_stop(m, vm) > 0)
			return wait_for(vm, req, WAIT_STOP);
		return reply(conn, MHD_HTTP_OK, dump(mgr_vm_json(m, vm)), NULL);
	case MGR_EP_VM_START:
		if (mgr_vm_start(m, vm, &err) < 0)
			return reply_err(conn, &err, NULL);
		return reply(conn, MHD_HTTP_OK, dump(mgr_vm_json(m, vm)), NULL);
	}
	return MHD_NO;
}

/*
 * MHD calls this after the headers, once per piece of body, and once at the
 * end (and again after a resume). Only the last call may answer, except
 * that the first may refuse an announced oversized body outright.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct manager *m = cls;
	struct mgr_req *req = *con_cls;
	struct mgr_err err;

	if (!req) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);

		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		req->conn = conn;
		*con_cls = req;
		if (cl && (strlen(cl) > 9 || strtoul(cl, NULL, 10) > MGR_MAX_BODY)) {
			mgr_err_set(&err, 413, "request body over %d bytes", MGR_MAX_BODY);
			return reply_err(conn, &err, NULL);
		}
		return MHD_YES;
	}
	if (req->ready) {
		char *resp = req->resp;

		req->resp = NULL;
		return reply(conn, req->status, resp, NULL);
	}
	if (*upload_size) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (req->too_big || req->len + n > MGR_MAX_BODY) {
			/* Chunked bodies have no Content-Length: drop the bytes, answer at the end. */
			req->too_big = true;
			free(req->body);
			req->body = NULL;
			req->len = 0;
			return MHD_YES;
		}
		char *b = realloc(req->body, req->len + n + 1);

		if (!b)
			return MHD_NO;
		memcpy(b + req->len, upload, n);
		req->len += n;
		b[req->len] = '\0';
		req->body = b;
		return MHD_YES;
	}
	if (req->too_big) {
		mgr_err_set(&err, 413, "request body over %d bytes", MGR_MAX_BODY);
		return reply_err(conn, &err, NULL);
	}
	return dispatch(m, req, url, method);
}

static void unlink_waiter(struct manager *m, struct mgr_req *req)
{
	struct mgr_vm *vm = mgr_find(m, req->id);

	for (struct mgr_req **p = vm ? &vm->waiters : NULL; p && *p; p = &(*p)->next)
		if (*p == req) {
			*p = req->next;
			return;
		}
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct mgr_req *req = *con_cls;

	if (!req)
		return;
	if (req->wait != WAIT_NONE && !req->ready)
		unlink_waiter(cls, req);
	free(req->body);
	free(req->resp);
	free(req);
	*con_cls = NULL;
}

void mgr_http_vm_done(struct manager *m, struct mgr_vm *vm)
{
	struct mgr_req *q = vm->waiters;

	vm->waiters = NULL;
	while (q) {
		struct mgr_req *next = q->next;

		q->next = NULL;
		if (q->wait == WAIT_DELETE && !vm->delete_err[0]) {
			q->status = MHD_HTTP_NO_CONTENT;
		} else if (q->wait == WAIT_DELETE) {
			q->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
			q->resp = fault_json(vm->delete_err);
		} else {
			q->status = MHD_HTTP_OK;
			q->resp = dump(mgr_vm_json(m, vm));
		}
		q->ready = true;
		MHD_resume_connection(q->conn);
		q = next;
	}
}

/* Ids only need [A-Za-z0-9_-]: a path is taken as sent, so "%2F" or "%00" cannot smuggle a '/' or cut an id. */
static size_t no_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_debug("serve: http: %s", buf);
}

/* The listening socket: a stale one (nobody accepts on it) is replaced; anything else is an error. */
static int listen_unix(const char *path)
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
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
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
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		umask(old);
		log_err("serve: --api-sock %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	return fd;
}

int mgr_http_start(struct manager *m)
{
	const union MHD_DaemonInfo *info;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = MGR_TAG_HTTP };

	m->listenfd = listen_unix(m->opt.api_sock);
	if (m->listenfd < 0)
		return -1;
	/*
	 * No MHD thread: MHD's own epoll fd sits in ours and MHD_run() is called
	 * from the loop, so handlers run on the one thread that owns the VMs.
	 */
	m->httpd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
				    0, NULL, NULL, on_request, m,
				    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,   /* first, to catch all */
				    MHD_OPTION_LISTEN_SOCKET, m->listenfd,
				    MHD_OPTION_NOTIFY_COMPLETED, on_completed, m,
				    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
				    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
				    MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
				    MHD_OPTION_END);
	if (!m->httpd) {
		log_err("serve: cannot start the HTTP server");
		goto fail;
	}
	info = MHD_get_daemon_info(m->httpd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || epoll_ctl(m->epfd, EPOLL_CTL_ADD, info->epoll_fd, &ev) < 0) {
		log_err("serve: cannot watch the HTTP server: %s", strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (m->httpd)
		MHD_stop_daemon(m->httpd);
	m->httpd = NULL;
	close(m->listenfd);
	m->listenfd = -1;
	unlink(m->opt.api_sock);
	return -1;
}

void mgr_http_run(struct manager *m)
{
	if (m->httpd)
		MHD_run(m->httpd);
}

int64_t mgr_http_timeout(struct manager *m)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (!m->httpd || MHD_get_timeout(m->httpd, &t) != MHD_YES)
		return -1;
	return t > INT64_MAX ? INT64_MAX : (int64_t)t;
}

void mgr_http_stop(struct manager *m)
{
	MHD_socket fd;

	if (!m->httpd)
		return;
	/* MHD must not be stopped with suspended connections: answer them first. */
	for (size_t i = 0; i < m->nvms; i++) {
		struct mgr_req *q = m->vms[i]->waiters;

		m->vms[i]->waiters = NULL;
		for (; q; q = q->next) {
			q->status = MHD_HTTP_SERVICE_UNAVAILABLE;
			q->resp = fault_json("the manager is shutting down; the VM keeps running");
			q->ready = true;
			MHD_resume_connection(q->conn);
		}
	}
	MHD_run(m->httpd);
	/* Quiesce hands the listening socket back, so it is closed once, here. */
	fd = MHD_quiesce_daemon(m->httpd);
	MHD_stop_daemon(m->httpd);
	m->httpd = NULL;
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	unlink(m->opt.api_sock);
	m->listenfd = -1;
}
