/* The VM's I/O thread: an epoll loop that runs device work (queue kicks, backend completions) off the vCPU threads. */
#ifndef KILN_IOLOOP_H
#define KILN_IOLOOP_H

#include <pthread.h>
#include "core/types.h"

/*
 * Called on the I/O thread with the epoll events that fired. Handlers must
 * not block: they drain what is ready and return.
 */
typedef void (*ioloop_fn)(void *opaque, uint32_t events);

/* Registrations one loop holds; every device fd (kicks, io_uring, tap) counts. */
#define IOLOOP_MAX_FDS 256

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

/* Start the thread (0 or -errno); ioloop_stop() ends and joins it (idempotent). */
int __must_check ioloop_start(struct ioloop *l);
void ioloop_stop(struct ioloop *l);

#endif
