/* The in-process network stacks' loop (libslirp instances, the metadata HTTP server), run as one source of the VM's I/O thread. */
#ifndef KILN_NETLOOP_H
#define KILN_NETLOOP_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * libslirp is built around poll()-style "fill, sleep, dispatch" with
 * timers, its fd set changes from turn to turn, and it is not thread-safe.
 * It used to get a thread of its own; it now runs on the VM's I/O thread,
 * as QEMU runs it on its main loop: a guest frame then goes vCPU -> I/O
 * thread -> host socket, and the answer comes back on the same thread,
 * with no third thread to wake per frame (each wakeup costs a context
 * switch, and two on a host without a spare CPU).
 *
 * How a poll()-style library sleeps inside an epoll loop: the sources'
 * fds go into a nested epoll instance (with the wake eventfd and a
 * timerfd for the sources' timeout), and that one fd is what the I/O
 * thread watches. A turn (netloop_turn) takes the readiness of the last
 * fill with poll(.., 0), dispatches, fills again, and brings the nested
 * set up to date with as few epoll_ctl calls as the fill changed. Every
 * libslirp and metadata-server call happens in a turn, so on one thread.
 *
 * A source that closes an fd it has put in the poll set says so first
 * (netloop_fd_closed): a closed fd leaves an epoll set by itself, and a
 * new fd with the same number must be added again, not assumed present.
 */
struct netloop;
struct ioloop;

struct netloop_source {
	void (*fill)(struct netloop *l, void *opaque, int *timeout_ms);
	void (*dispatch)(struct netloop *l, void *opaque);
	void *opaque;
};

#define NETLOOP_MAX_SOURCES 16
#define NETLOOP_MAX_FDS     1024
/* Longest sleep between turns: libslirp's TCP timers want a regular look even when idle. */
#define NETLOOP_MAX_SLEEP_MS 1000

struct netloop_reg {
	int fd;
	short events;                /* poll() bits */
};

struct netloop_stats {
	uint64_t turns;
	uint64_t epoll_ctls;         /* nested-set changes: the cost of fills that moved */
	uint64_t timer_arms;
};

struct netloop {
	struct ioloop *io;           /* NULL until netloop_attach */
	int epfd;                    /* the nested set the I/O thread watches */
	int wake_efd;
	int timer_fd;
	int64_t timer_deadline_ns;   /* when the armed timerfd fires; 0: disarmed */
	struct netloop_source src[NETLOOP_MAX_SOURCES];
	unsigned nsrc;
	bool filled;                 /* pfd holds a fill whose indexes the sources kept */
	struct pollfd pfd[NETLOOP_MAX_FDS];
	unsigned npfd;
	bool poll_error;             /* the last poll() failed (slirp wants to know) */
	struct netloop_reg reg[NETLOOP_MAX_FDS];   /* what the nested set holds, by fd */
	unsigned nreg;
	struct netloop_reg want[NETLOOP_MAX_FDS];  /* scratch: the fill, sorted by fd */
	struct netloop_stats stats;
};

/* 0 or -errno. */
int netloop_init(struct netloop *l);
/* Before netloop_attach only. 0 or -ENOSPC. */
int netloop_add_source(struct netloop *l, const struct netloop_source *s);
/*
 * Hand the loop to the I/O thread (started or not): its first turn there
 * fills. 0 or -errno. From then on the sources are called on that thread.
 */
int netloop_attach(struct netloop *l, struct ioloop *io);
/* Detach (after it no turn runs) and close the loop's fds; the sources are the caller's. */
void netloop_fini(struct netloop *l);
/* Any thread: make the loop turn soon (frames queued for a source). */
void netloop_wake(struct netloop *l);
/* One turn: what the I/O thread runs when the nested set is ready. Exposed for tests. */
void netloop_turn(struct netloop *l);

/* During fill: watch fd for events; returns the index for netloop_revents, or -1 when full. */
int netloop_poll_add(struct netloop *l, int fd, short events);
/* During dispatch: what poll() said about index idx (0 for -1 or out of range). */
short netloop_revents(struct netloop *l, int idx);
/* A source is about to close fd, which it may have watched (see the top). */
void netloop_fd_closed(struct netloop *l, int fd);
/* One --stats line. */
void netloop_print_stats(const struct netloop *l, int fd);

/* CLOCK_MONOTONIC in milliseconds and nanoseconds. */
uint64_t netloop_now_ms(void);
int64_t netloop_now_ns(void);

#endif
