/* The VM's I/O thread: an epoll loop that runs device work (queue kicks, backend completions) off the vCPU threads. */
#ifndef KILN_IOLOOP_H
#define KILN_IOLOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include "core/types.h"

/*
 * Called on the I/O thread with the epoll events that fired. Handlers must
 * not block: they drain what is ready and return.
 */
typedef void (*ioloop_fn)(void *opaque, uint32_t events);

/* Registrations one loop holds; every device fd (kicks, io_uring, tap) counts. */
#define IOLOOP_MAX_FDS 256
/* Pollers one loop holds (one per polled device). */
#define IOLOOP_MAX_POLLERS 64
/* Longest poll window a loop accepts (--io-poll's cap): 1 ms of spinning per idle period at most. */
#define IOLOOP_MAX_POLL_US 1000u

/*
 * Adaptive busy polling (DPDK/vhost style, --io-poll). After the loop has
 * handled its events it keeps calling the pollers, and epoll_wait(.., 0) for
 * fd events, until the poll window passes without work; any work restarts
 * the window. A poller's `poll` looks at its queues (an avail->idx load, no
 * kick needed) with the guest's notifications suppressed and does what it
 * finds; before the loop sleeps, `arm` re-enables the notifications and
 * looks once more (virtio 1.2 §2.7.10: a buffer added meanwhile is either
 * seen then or kicked). Both return the work items they did (0: none) and
 * run on the I/O thread with the loop's lock held, like fd handlers.
 */
typedef unsigned (*ioloop_poll_fn)(void *opaque);

struct ioloop_poller {
	ioloop_poll_fn poll;   /* NULL: free slot */
	ioloop_poll_fn arm;
	void *opaque;
};

/* The loop's counters (--stats); written by the I/O thread only, read after it stopped or racily. */
struct ioloop_stats {
	uint64_t wakeups;        /* blocking epoll_waits that returned events */
	uint64_t poll_windows;   /* poll windows opened (after a wakeup) */
	uint64_t poll_restarts;  /* times work found while polling restarted the window */
	uint64_t polled_items;   /* work items pollers found without a notification (kicks avoided) */
	uint64_t polled_events;  /* fd events caught by the non-blocking epoll_wait while polling */
	uint64_t armed_items;    /* work found by arm's re-check (the §2.7.10 race, caught) */
	uint64_t poll_ns;        /* time spent polling */
};

struct ioloop_entry {
	int fd;                /* -1: free slot */
	ioloop_fn fn;
	void *opaque;
};

struct ioloop {
	int epfd;              /* -1 until ioloop_init */
	int stop_efd;          /* eventfd that ends the thread */
	pthread_t thread;
	bool running;
	bool inited;            /* ioloop_init succeeded: ioloop_destroy has work to do */
	pthread_mutex_t lock;  /* guards entries[] against add/del from other threads */
	struct ioloop_entry entries[IOLOOP_MAX_FDS];
	uint64_t dispatched;   /* handler calls, for --stats */
	struct ioloop_poller pollers[IOLOOP_MAX_POLLERS];
	unsigned npollers;     /* registered (under lock) */
	_Atomic uint32_t poll_us;  /* poll window; 0: never poll (sleep in epoll_wait at once) */
	struct ioloop_stats stats;
};

/* 0 or -errno. */
int __must_check ioloop_init(struct ioloop *l);
void ioloop_destroy(struct ioloop *l);

/*
 * Watch fd for events (EPOLLIN etc.). Allowed before and after the thread
 * starts. 0, -ENOSPC when full, -EEXIST if fd is watched, or epoll's -errno.
 */
int __must_check ioloop_add(struct ioloop *l, int fd, uint32_t events, ioloop_fn fn, void *opaque);

/*
 * Stop watching fd; after return the handler is not running and will not run
 * for it. Never call add/del while holding a lock a handler takes (a device's
 * lock): handlers run with the loop's lock held.
 */
void ioloop_del(struct ioloop *l, int fd);

/*
 * Register a poller (see ioloop_poll_fn); allowed before and after the thread
 * starts. 0, -EINVAL, -EEXIST (opaque already has one) or -ENOSPC.
 */
int __must_check ioloop_add_poller(struct ioloop *l, ioloop_poll_fn poll, ioloop_poll_fn arm, void *opaque);
/*
 * Change what fd is watched for (0: nothing for now; it stays registered).
 * Only from the loop's own handlers and pollers, which run with the loop's
 * lock held. 0, -ENOENT if fd is not registered, or epoll's -errno.
 */
int __must_check ioloop_mod(struct ioloop *l, int fd, uint32_t events);
/* Drop opaque's poller; after return it is not running and will not run. Same lock rule as ioloop_del. */
void ioloop_del_poller(struct ioloop *l, void *opaque);
/* The poll window in microseconds (0 off, capped at IOLOOP_MAX_POLL_US); takes effect at the next window. */
void ioloop_set_poll_us(struct ioloop *l, unsigned us);
static inline unsigned ioloop_poll_us(const struct ioloop *l)
{
	return atomic_load_explicit(&l->poll_us, memory_order_relaxed);
}
/* One --stats line: handler calls, wakeups and the polling counters. */
void ioloop_print_stats(struct ioloop *l, int fd);

/* Start the thread (0 or -errno); ioloop_stop() ends and joins it (idempotent). */
int __must_check ioloop_start(struct ioloop *l);
void ioloop_stop(struct ioloop *l);

#endif
