/* The VM's I/O thread: one epoll loop dispatching device fds (kiln's "never on a vCPU thread" rule). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include "core/ioloop.h"
#include "core/log.h"

int ioloop_init(struct ioloop *l)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
	pthread_mutexattr_t a;

	memset(l, 0, sizeof(*l));
	for (unsigned i = 0; i < IOLOOP_MAX_FDS; i++)
		l->entries[i].fd = -1;
	pthread_mutexattr_init(&a);
	/* Recursive: a handler may add or drop fds of its own. */
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&l->lock, &a);
	pthread_mutexattr_destroy(&a);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->stop_efd < 0) {
		int err = -errno;
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->stop_efd >= 0)
			close(l->stop_efd);
		pthread_mutex_destroy(&l->lock);
		l->epfd = l->stop_efd = -1;
		return err;
	}
	l->inited = true;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stop_efd, &ev) < 0)
		goto fail;
	return 0;
fail: {
	int err = -errno;
	ioloop_destroy(l);
	return err;
}
}

void ioloop_destroy(struct ioloop *l)
{
	if (!l->inited)
		return;
	l->inited = false;
	ioloop_stop(l);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->stop_efd >= 0)
		close(l->stop_efd);
	l->epfd = l->stop_efd = -1;
	pthread_mutex_destroy(&l->lock);
}

int ioloop_add(struct ioloop *l, int fd, uint32_t events, ioloop_fn fn, void *opaque)
{
	struct epoll_event ev = { .events = events };
	int slot = -1, ret = 0;

	if (fd < 0 || !fn)
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < IOLOOP_MAX_FDS; i++) {
		if (l->entries[i].fd == fd) {
			ret = -EEXIST;
			goto out;
		}
		if (slot < 0 && l->entries[i].fd < 0)
			slot = (int)i;
	}
	if (slot < 0) {
		ret = -ENOSPC;
		goto out;
	}
	l->entries[slot] = (struct ioloop_entry){ .fd = fd, .fn = fn, .opaque = opaque };
	ev.data.u64 = (uint64_t)slot;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		ret = -errno;
		l->entries[slot].fd = -1;
	}
out:
	pthread_mutex_unlock(&l->lock);
	return ret;
}

void ioloop_del(struct ioloop *l, int fd)
{
	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < IOLOOP_MAX_FDS; i++) {
		if (l->entries[i].fd == fd) {
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
			l->entries[i].fd = -1;
		}
	}
	/* The handler runs with l->lock held, so once we hold it no handler for fd is mid-flight. */
	pthread_mutex_unlock(&l->lock);
}

static void *ioloop_thread(void *arg)
{
	struct ioloop *l = arg;
	struct epoll_event evs[32];
	sigset_t all;

	/* Signals belong to the main thread (signalfd) and the vCPUs (kick). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		int n = epoll_wait(l->epfd, evs, (int)ARRAY_SIZE(evs), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("I/O thread: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uint64_t slot = evs[i].data.u64;

			if (slot == UINT64_MAX)
				return NULL; /* stop_efd */
			if (slot >= IOLOOP_MAX_FDS)
				continue;
			/*
			 * Hold the lock across the call: ioloop_del() then waits for a
			 * running handler, so a device may free its state right after.
			 */
			pthread_mutex_lock(&l->lock);
			if (l->entries[slot].fd >= 0) {
				l->entries[slot].fn(l->entries[slot].opaque, evs[i].events);
				l->dispatched++;
			}
			pthread_mutex_unlock(&l->lock);
		}
	}
}

int ioloop_start(struct ioloop *l)
{
	int ret;

	if (l->running)
		return 0;
	ret = pthread_create(&l->thread, NULL, ioloop_thread, l);
	if (ret)
		return -ret;
	l->running = true;
	return 0;
}

void ioloop_stop(struct ioloop *l)
{
	uint64_t one = 1;

	if (!l->running)
		return;
	if (write(l->stop_efd, &one, sizeof(one)) < 0)
		log_warn("I/O thread stop: %s", strerror(errno));
	pthread_join(l->thread, NULL);
	l->running = false;
}
