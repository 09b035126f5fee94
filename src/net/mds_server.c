/* The metadata HTTP server: a private Unix socket libslirp connects to for each guest connection to 169.254.169.254:80. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "net/mds_server.h"
#include "net/mmds.h"
#include "net/netloop.h"
#include "core/log.h"
#include "core/types.h"

/*
 * Every connection is bounded in time (MDS_CONN_TIMEOUT_MS from accept to
 * the last byte written) and in bytes (mmds_http's request limit); at most
 * MDS_MAX_CONNS are open, newer ones are accepted and closed at once so the
 * listen backlog never fills (libslirp's connect() to us is blocking, on
 * the same thread: a full backlog would stall every guest network).
 */
#define MDS_MAX_CONNS 32
#define MDS_CONN_TIMEOUT_MS 5000

struct mds_conn {
	int fd;                     /* -1: free */
	struct mmds_http *http;
	uint64_t deadline_ms;
	bool writing;
	size_t written;
	int idx;                    /* poll index this turn */
};

struct mds_server {
	struct netloop *loop;
	struct mmds *m;
	int lfd;
	int lidx;
	char dir[64];
	char path[108];
	struct mds_conn conns[MDS_MAX_CONNS];
	uint64_t served, refused, timeouts;
};

static void conn_close(struct mds_server *s, struct mds_conn *c)
{
	if (c->fd >= 0) {
		netloop_fd_closed(s->loop, c->fd);
		close(c->fd);
	}
	mmds_http_free(c->http);
	c->http = NULL;
	c->fd = -1;
}

static void srv_fill(struct netloop *l, void *opaque, int *timeout_ms)
{
	struct mds_server *s = opaque;
	uint64_t now = netloop_now_ms();

	s->lidx = netloop_poll_add(l, s->lfd, POLLIN);
	for (unsigned i = 0; i < MDS_MAX_CONNS; i++) {
		struct mds_conn *c = &s->conns[i];

		c->idx = -1;
		if (c->fd < 0)
			continue;
		c->idx = netloop_poll_add(l, c->fd, c->writing ? POLLOUT : POLLIN);
		*timeout_ms = (int)MIN((uint64_t)*timeout_ms, c->deadline_ms > now ? c->deadline_ms - now : 0);
	}
}

static void conn_read(struct mds_server *s, struct mds_conn *c, uint64_t now)
{
	char buf[2048];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	int r;

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(s, c);
		return;
	}
	r = mmds_http_feed(c->http, buf, (size_t)n, now);
	if (r < 0) {
		conn_close(s, c);
	} else if (r > 0) {
		c->writing = true;
		c->written = 0;
		s->served++;
	}
}

static void conn_write(struct mds_server *s, struct mds_conn *c)
{
	size_t len;
	const char *out = mmds_http_output(c->http, &len);
	ssize_t n;

	if (!out || c->written >= len) {
		conn_close(s, c);
		return;
	}
	n = send(c->fd, out + c->written, len - c->written, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(s, c);
		return;
	}
	c->written += (size_t)n;
	if (c->written >= len)
		conn_close(s, c); /* "Connection: close": the guest sees FIN after the body */
}

static void srv_dispatch(struct netloop *l, void *opaque)
{
	struct mds_server *s = opaque;
	uint64_t now = netloop_now_ms();

	for (unsigned i = 0; i < MDS_MAX_CONNS; i++) {
		struct mds_conn *c = &s->conns[i];
		short r;

		if (c->fd < 0)
			continue;
		r = netloop_revents(l, c->idx);
		if (c->writing && (r & (POLLOUT | POLLERR | POLLHUP)))
			conn_write(s, c);
		else if (!c->writing && (r & (POLLIN | POLLERR | POLLHUP)))
			conn_read(s, c, now);
		if (c->fd >= 0 && now >= c->deadline_ms) {
			s->timeouts++;
			conn_close(s, c);
		}
	}
	if (!(netloop_revents(l, s->lidx) & POLLIN))
		return;
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct mds_conn *c = NULL;

		if (fd < 0)
			break;
		for (unsigned i = 0; i < MDS_MAX_CONNS && !c; i++)
			if (s->conns[i].fd < 0)
				c = &s->conns[i];
		if (!c || !(c->http = mmds_http_new(s->m))) {
			s->refused++;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->writing = false;
		c->deadline_ms = now + MDS_CONN_TIMEOUT_MS;
	}
}

int mds_server_create(struct netloop *l, struct mmds *m, struct mds_server **out, char *msg, size_t msglen)
{
	struct mds_server *s = calloc(1, sizeof(*s));
	const char *tmp = getenv("XDG_RUNTIME_DIR");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct netloop_source src;

	if (!s) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	s->loop = l;
	s->m = m;
	s->lfd = -1;
	for (unsigned i = 0; i < MDS_MAX_CONNS; i++)
		s->conns[i].fd = -1;
	/* A private directory (0700): only kiln's user can reach the socket. */
	if (!tmp || strlen(tmp) > 40 || access(tmp, W_OK) < 0)
		tmp = "/tmp";
	snprintf(s->dir, sizeof(s->dir), "%s/kiln-mds-XXXXXX", tmp);
	if (!mkdtemp(s->dir)) {
		snprintf(msg, msglen, "metadata socket directory %s: %s", s->dir, strerror(errno));
		s->dir[0] = 0;
		goto fail;
	}
	snprintf(s->path, sizeof(s->path), "%s/sock", s->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->lfd, 128) < 0) {
		snprintf(msg, msglen, "metadata socket %s: %s", s->path, strerror(errno));
		goto fail;
	}
	src = (struct netloop_source){ .fill = srv_fill, .dispatch = srv_dispatch, .opaque = s };
	if (netloop_add_source(l, &src) < 0) {
		snprintf(msg, msglen, "metadata: too many network sources");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	mds_server_destroy(s);
	return -1;
}

const char *mds_server_path(const struct mds_server *s)
{
	return s->path;
}

void mds_server_destroy(struct mds_server *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < MDS_MAX_CONNS; i++)
		conn_close(s, &s->conns[i]);
	if (s->lfd >= 0) {
		netloop_fd_closed(s->loop, s->lfd);
		close(s->lfd);
	}
	if (s->path[0])
		unlink(s->path);
	if (s->dir[0])
		rmdir(s->dir);
	free(s);
}

void mds_server_print_stats(const struct mds_server *s, int fd)
{
	dprintf(fd, "metadata: served=%llu refused=%llu timeouts=%llu\n", (unsigned long long)s->served,
		(unsigned long long)s->refused, (unsigned long long)s->timeouts);
}
