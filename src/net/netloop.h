/* The network thread: one poll() loop for the in-process network stacks (libslirp) and the metadata HTTP server. */
#ifndef KILN_NETLOOP_H
#define KILN_NETLOOP_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Why a thread of its own and not the VM's I/O thread: libslirp is built
 * around poll()-style "fill, sleep, dispatch" with timers, its fd set
 * changes on every turn, and it is not thread-safe. So every libslirp call
 * happens on this thread; other threads hand it frames through bounded
 * queues and wake it (netloop_wake).
 *
 * A source fills the poll set (netloop_poll_add) and lowers the timeout,
 * then dispatches on the results (netloop_revents).
 */
struct netloop;

struct netloop_source {
	void (*fill)(struct netloop *l, void *opaque, int *timeout_ms);
	void (*dispatch)(struct netloop *l, void *opaque);
	void *opaque;
};

#define NETLOOP_MAX_SOURCES 16
#define NETLOOP_MAX_FDS     1024

struct netloop {
	pthread_t thread;
	bool running;
	_Atomic bool stop;
	int wake_efd;
	struct netloop_source src[NETLOOP_MAX_SOURCES];
	unsigned nsrc;
	struct pollfd pfd[NETLOOP_MAX_FDS];
	unsigned npfd;
	bool poll_error;             /* the last poll() failed (slirp wants to know) */
	uint64_t turns;
};

int netloop_init(struct netloop *l);
/* Before netloop_start only. 0 or -ENOSPC. */
int netloop_add_source(struct netloop *l, const struct netloop_source *s);
int netloop_start(struct netloop *l);
/* Stop and join the thread, close the wake fd (sources are the caller's). */
void netloop_fini(struct netloop *l);
/* Any thread: make the loop turn (new frames queued). */
void netloop_wake(struct netloop *l);

/* During fill: watch fd for events; returns the index for netloop_revents, or -1 when full. */
int netloop_poll_add(struct netloop *l, int fd, short events);
/* During dispatch: what poll() said about index idx (0 for -1 or out of range). */
short netloop_revents(struct netloop *l, int idx);

/* CLOCK_MONOTONIC in milliseconds and nanoseconds. */
uint64_t netloop_now_ms(void);
int64_t netloop_now_ns(void);

#endif
