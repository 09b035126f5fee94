/* The network thread: fill/poll/dispatch over the registered sources (libslirp instances, the metadata server). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "net/netloop.h"
#include "core/log.h"

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
	memset(l, 0, sizeof(*l));
	l->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return l->wake_efd < 0 ? -errno : 0;
}

int netloop_add_source(struct netloop *l, const struct netloop_source *s)
{
	if (l->running || l->nsrc >= NETLOOP_MAX_SOURCES)
		return -ENOSPC;
	l->src[l->nsrc++] = *s;
	return 0;
}

void netloop_wake(struct netloop *l)
{
	uint64_t one = 1;

	if (write(l->wake_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("network thread wake: %s", strerror(errno));
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

static void *netloop_thread(void *arg)
{
	struct netloop *l = arg;
	sigset_t all;

	/* Signals belong to the main thread (signalfd) and the vCPUs (kick), as on the I/O thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), "kiln-net");
	while (!atomic_load(&l->stop)) {
		/* At most a second asleep: libslirp's TCP timers want a regular look even when idle. */
		int timeout = 1000, r;
		uint64_t n;

		l->npfd = 0;
		netloop_poll_add(l, l->wake_efd, POLLIN);
		for (unsigned i = 0; i < l->nsrc; i++)
			l->src[i].fill(l, l->src[i].opaque, &timeout);
		r = poll(l->pfd, l->npfd, timeout);
		l->poll_error = r < 0 && errno != EINTR;
		if (r < 0 && errno == EINTR) {
			for (unsigned i = 0; i < l->npfd; i++)
				l->pfd[i].revents = 0;
		}
		if (l->pfd[0].revents & POLLIN) {
			if (read(l->wake_efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
				log_warn("network thread: %s", strerror(errno));
		}
		if (atomic_load(&l->stop))
			break;
		for (unsigned i = 0; i < l->nsrc; i++)
			l->src[i].dispatch(l, l->src[i].opaque);
		l->turns++;
	}
	return NULL;
}

int netloop_start(struct netloop *l)
{
	int ret;

	if (l->running)
		return 0;
	ret = pthread_create(&l->thread, NULL, netloop_thread, l);
	if (ret)
		return -ret;
	l->running = true;
	return 0;
}

void netloop_fini(struct netloop *l)
{
	if (l->running) {
		atomic_store(&l->stop, true);
		netloop_wake(l);
		pthread_join(l->thread, NULL);
		l->running = false;
	}
	if (l->wake_efd >= 0)
		close(l->wake_efd);
	l->wake_efd = -1;
}
