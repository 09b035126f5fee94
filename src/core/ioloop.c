/* The VM's I/O thread: one epoll loop dispatching device fds (kiln's "never on a vCPU thread" rule). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
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

int ioloop_mod(struct ioloop *l, int fd, uint32_t events)
{
	for (unsigned i = 0; i < IOLOOP_MAX_FDS; i++) {
		if (l->entries[i].fd == fd) {
			struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)i };

			return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
		}
	}
	return -ENOENT;
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

int ioloop_add_poller(struct ioloop *l, ioloop_poll_fn poll, ioloop_poll_fn arm, void *opaque)
{
	int slot = -1, ret = 0;

	if (!poll || !arm)
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < IOLOOP_MAX_POLLERS; i++) {
		if (l->pollers[i].poll && l->pollers[i].opaque == opaque) {
			ret = -EEXIST;
			goto out;
		}
		if (slot < 0 && !l->pollers[i].poll)
			slot = (int)i;
	}
	if (slot < 0) {
		ret = -ENOSPC;
		goto out;
	}
	l->pollers[slot] = (struct ioloop_poller){ .poll = poll, .arm = arm, .opaque = opaque };
	__atomic_store_n(&l->npollers, l->npollers + 1, __ATOMIC_RELAXED);
out:
	pthread_mutex_unlock(&l->lock);
	return ret;
}

void ioloop_del_poller(struct ioloop *l, void *opaque)
{
	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < IOLOOP_MAX_POLLERS; i++) {
		if (l->pollers[i].poll && l->pollers[i].opaque == opaque) {
			l->pollers[i] = (struct ioloop_poller){ 0 };
			__atomic_store_n(&l->npollers, l->npollers - 1, __ATOMIC_RELAXED);
		}
	}
	/* Pollers run with l->lock held: none of opaque's is mid-flight now. */
	pthread_mutex_unlock(&l->lock);
}

void ioloop_set_poll_us(struct ioloop *l, unsigned us)
{
	atomic_store(&l->poll_us, MIN(us, IOLOOP_MAX_POLL_US));
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Run the handlers of n events; false when the stop eventfd was among them. */
static bool dispatch(struct ioloop *l, const struct epoll_event *evs, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t slot = evs[i].data.u64;

		if (slot == UINT64_MAX)
			return false; /* stop_efd */
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
	return true;
}

/* Call every poller's poll (arm false) or arm (arm true); the work items they did. */
static unsigned run_pollers(struct ioloop *l, bool arm)
{
	unsigned work = 0;

	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < IOLOOP_MAX_POLLERS; i++) {
		struct ioloop_poller *p = &l->pollers[i];

		if (p->poll)
			work += arm ? p->arm(p->opaque) : p->poll(p->opaque);
	}
	pthread_mutex_unlock(&l->lock);
	return work;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * The poll window after a wakeup. Each pass runs the pollers and takes fd
 * events without blocking; a pass with work pushes the deadline out again,
 * so the window only closes after window_ns without any. Then every poller
 * arms (notifications on, one more look): work found there means the guest
 * is still busy, so polling goes on. Only a clean arm lets the loop sleep —
 * that is what keeps a buffer added while notifications were off from being
 * lost. The guest keeps this going only while it keeps submitting; the stop
 * eventfd is seen on every pass. False when the loop must end.
 */
static bool poll_window(struct ioloop *l, struct epoll_event *evs, int nevs, uint64_t window_ns)
{
	uint64_t start = now_ns(), deadline = start + window_ns, t = start;
	bool ok = true;

	l->stats.poll_windows++;
	for (;;) {
		unsigned work = run_pollers(l, false);
		int n = epoll_wait(l->epfd, evs, nevs, 0);

		l->stats.polled_items += work;
		if (n > 0) {
			l->stats.polled_events += (unsigned)n;
			if (!dispatch(l, evs, n)) {
				ok = false;
				break;
			}
			work += (unsigned)n;
		}
		t = now_ns();
		if (work) {
			l->stats.poll_restarts++;
			deadline = t + window_ns;
			continue;
		}
		if (t < deadline) {
			cpu_relax();
			continue;
		}
		work = run_pollers(l, true);
		if (!work)
			break;
		l->stats.armed_items += work;
		l->stats.poll_restarts++;
		deadline = now_ns() + window_ns;
	}
	l->stats.poll_ns += t - start;
	return ok;
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
		unsigned us;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("I/O thread: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		if (!dispatch(l, evs, n))
			return NULL;
		l->stats.wakeups++;
		us = ioloop_poll_us(l);
		/* npollers is only written under the lock; a stale read costs one window or one wakeup. */
		if (!__atomic_load_n(&l->npollers, __ATOMIC_RELAXED))
			continue;
		if (us) {
			if (!poll_window(l, evs, (int)ARRAY_SIZE(evs), (uint64_t)us * 1000))
				return NULL;
		} else {
			/*
			 * Polling was switched off after pollers came: a handler may
			 * still have left a queue quiet for them. Arm before sleeping:
			 * what that finds is worked in kick mode, which re-arms itself.
			 */
			run_pollers(l, true);
		}
	}
}

void ioloop_print_stats(struct ioloop *l, int fd)
{
	const struct ioloop_stats *s = &l->stats;

	dprintf(fd, "I/O thread: handlers=%llu wakeups=%llu", (unsigned long long)l->dispatched,
		(unsigned long long)s->wakeups);
	if (ioloop_poll_us(l) || s->poll_windows)
		dprintf(fd, " poll_us=%u poll_windows=%llu restarts=%llu polled_items=%llu polled_events=%llu "
			"armed_items=%llu poll_ms=%.1f", ioloop_poll_us(l), (unsigned long long)s->poll_windows,
			(unsigned long long)s->poll_restarts, (unsigned long long)s->polled_items,
			(unsigned long long)s->polled_events, (unsigned long long)s->armed_items,
			(double)s->poll_ns / 1e6);
	dprintf(fd, "\n");
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
