/* The network stacks' loop on the I/O thread: fill, poll(.., 0), dispatch, and a nested epoll set kept in step with the fill (see netloop.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include "net/netloop.h"
#include "core/ioloop.h"
#include "core/log.h"

/* The nested set's own members: data.u64 values no fd has. */
#define TAG_WAKE  ((uint64_t)1 << 32)
#define TAG_TIMER ((uint64_t)2 << 32)

int64_t netloop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t netloop_now_ms(void)
{
	return (uint64_t)netloop_now_ns() / 1000000;
}

int netloop_init(struct netloop *l)
{
	struct epoll_event w = { .events = EPOLLIN, .data.u64 = TAG_WAKE };
	struct epoll_event t = { .events = EPOLLIN, .data.u64 = TAG_TIMER };
	int err;

	memset(l, 0, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->epfd < 0 || l->wake_efd < 0 || l->timer_fd < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_efd, &w) < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->timer_fd, &t) < 0) {
		err = -errno;
		netloop_fini(l);
		return err;
	}
	return 0;
}

int netloop_add_source(struct netloop *l, const struct netloop_source *s)
{
	if (l->io || l->nsrc >= NETLOOP_MAX_SOURCES)
		return -ENOSPC;
	l->src[l->nsrc++] = *s;
	return 0;
}

void netloop_wake(struct netloop *l)
{
	uint64_t one = 1;

	if (write(l->wake_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("network loop wake: %s", strerror(errno));
}

int netloop_poll_add(struct netloop *l, int fd, short events)
{
	if (l->npfd >= NETLOOP_MAX_FDS)
		return -1;
	l->pfd[l->npfd] = (struct pollfd){ .fd = fd, .events = events };
	return (int)l->npfd++;
}

short netloop_revents(struct netloop *l, int idx)
{
	if (idx < 0 || (unsigned)idx >= l->npfd)
		return 0;
	return l->pfd[idx].revents;
}

static uint32_t ep_events(short e)
{
	return ((e & POLLIN) ? EPOLLIN : 0) | ((e & POLLOUT) ? EPOLLOUT : 0) | ((e & POLLPRI) ? EPOLLPRI : 0);
}

/* One change to the nested set. A stale idea of what it holds (EEXIST, ENOENT) is mended, not fatal. */
static void set_ctl(struct netloop *l, int op, int fd, short events)
{
	struct epoll_event ev = { .events = ep_events(events), .data.u64 = (uint64_t)(uint32_t)fd };

	l->stats.epoll_ctls++;
	if (epoll_ctl(l->epfd, op, fd, op == EPOLL_CTL_DEL ? NULL : &ev) == 0 || op == EPOLL_CTL_DEL)
		return;
	if (op == EPOLL_CTL_ADD && errno == EEXIST)
		op = EPOLL_CTL_MOD;
	else if (op == EPOLL_CTL_MOD && errno == ENOENT)
		op = EPOLL_CTL_ADD;
	else
		op = -1;
	/* An fd epoll refuses is still polled each turn; it only cannot end a sleep early. */
	if (op < 0 || epoll_ctl(l->epfd, op, fd, &ev) < 0)
		log_debug("network loop: epoll_ctl fd %d: %s", fd, strerror(errno));
}

void netloop_fd_closed(struct netloop *l, int fd)
{
	for (unsigned i = 0; i < l->nreg; i++) {
		if (l->reg[i].fd == fd) {
			set_ctl(l, EPOLL_CTL_DEL, fd, 0);
			memmove(&l->reg[i], &l->reg[i + 1], (l->nreg - i - 1) * sizeof(l->reg[0]));
			l->nreg--;
			return;
		}
	}
}

static int reg_cmp(const void *a, const void *b)
{
	const struct netloop_reg *x = a, *y = b;

	return (x->fd > y->fd) - (x->fd < y->fd);
}

/* Bring the nested set to what the fill asks for: one merge walk of two fd-sorted lists. */
static void sync_set(struct netloop *l)
{
	unsigned nw = 0, i = 0, j = 0;

	for (unsigned k = 0; k < l->npfd; k++) {
		/* No events asked for: poll() would still report errors, but they wait for the next turn. */
		if (l->pfd[k].fd >= 0 && ep_events(l->pfd[k].events))
			l->want[nw++] = (struct netloop_reg){ .fd = l->pfd[k].fd, .events = l->pfd[k].events };
	}
	qsort(l->want, nw, sizeof(l->want[0]), reg_cmp);
	if (nw) {
		/* One entry per fd: an fd asked for twice waits for both. */
		unsigned m = 0;

		for (unsigned k = 1; k < nw; k++) {
			if (l->want[k].fd == l->want[m].fd)
				l->want[m].events |= l->want[k].events;
			else
				l->want[++m] = l->want[k];
		}
		nw = m + 1;
	}
	while (i < l->nreg || j < nw) {
		if (j == nw || (i < l->nreg && l->reg[i].fd < l->want[j].fd)) {
			set_ctl(l, EPOLL_CTL_DEL, l->reg[i++].fd, 0);
		} else if (i == l->nreg || l->want[j].fd < l->reg[i].fd) {
			set_ctl(l, EPOLL_CTL_ADD, l->want[j].fd, l->want[j].events);
			j++;
		} else {
			if (ep_events(l->reg[i].events) != ep_events(l->want[j].events))
				set_ctl(l, EPOLL_CTL_MOD, l->want[j].fd, l->want[j].events);
			i++;
			j++;
		}
	}
	memcpy(l->reg, l->want, nw * sizeof(l->reg[0]));
	l->nreg = nw;
}

/* The next turn at the latest timeout_ms from now. An armed timer that fires sooner stays: an early turn is harmless. */
static void plan_next(struct netloop *l, int timeout_ms, int64_t now)
{
	int64_t deadline;
	struct itimerspec its = { 0 };

	if (timeout_ms <= 0) {
		netloop_wake(l);
		return;
	}
	deadline = now + (int64_t)MIN(timeout_ms, NETLOOP_MAX_SLEEP_MS) * 1000000;
	if (l->timer_deadline_ns > now && l->timer_deadline_ns <= deadline)
		return;
	its.it_value.tv_sec = deadline / 1000000000;
	its.it_value.tv_nsec = deadline % 1000000000;
	l->stats.timer_arms++;
	if (timerfd_settime(l->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		log_warn("network loop timer: %s", strerror(errno));
		netloop_wake(l);
		return;
	}
	l->timer_deadline_ns = deadline;
}

void netloop_turn(struct netloop *l)
{
	int64_t now = netloop_now_ns();
	int timeout = NETLOOP_MAX_SLEEP_MS;
	uint64_t n;

	if (read(l->wake_efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("network loop: %s", strerror(errno));
	if (l->timer_deadline_ns && l->timer_deadline_ns <= now) {
		/* Fired (or about to: the next turn reads it then). */
		if (read(l->timer_fd, &n, sizeof(n)) == sizeof(n))
			l->timer_deadline_ns = 0;
	}
	if (l->filled) {
		int r = poll(l->pfd, l->npfd, 0);

		l->poll_error = r < 0 && errno != EINTR;
		if (r <= 0) {
			for (unsigned i = 0; i < l->npfd; i++)
				l->pfd[i].revents = 0;
		}
		for (unsigned i = 0; i < l->nsrc; i++)
			l->src[i].dispatch(l, l->src[i].opaque);
	}
	l->npfd = 0;
	for (unsigned i = 0; i < l->nsrc; i++)
		l->src[i].fill(l, l->src[i].opaque, &timeout);
	l->filled = true;
	sync_set(l);
	plan_next(l, timeout, netloop_now_ns());
	l->stats.turns++;
}

static void on_ready(void *opaque, uint32_t events)
{
	netloop_turn(opaque);
}

int netloop_attach(struct netloop *l, struct ioloop *io)
{
	int ret;

	if (l->io)
		return -EBUSY;
	ret = ioloop_add(io, l->epfd, EPOLLIN, on_ready, l);
	if (ret < 0)
		return ret;
	l->io = io;
	/* The first turn, on the I/O thread, only fills. */
	netloop_wake(l);
	return 0;
}

void netloop_fini(struct netloop *l)
{
	if (l->io)
		ioloop_del(l->io, l->epfd);
	l->io = NULL;
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake_efd >= 0)
		close(l->wake_efd);
	if (l->timer_fd >= 0)
		close(l->timer_fd);
	l->epfd = l->wake_efd = l->timer_fd = -1;
	l->nreg = 0;
}

void netloop_print_stats(const struct netloop *l, int fd)
{
	dprintf(fd, "network loop: turns=%llu epoll_ctls=%llu timer_arms=%llu\n",
		(unsigned long long)l->stats.turns, (unsigned long long)l->stats.epoll_ctls,
		(unsigned long long)l->stats.timer_arms);
}
