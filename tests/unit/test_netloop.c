/* Unit tests for the network loop on the I/O thread: the nested epoll set follows each fill (adds, event changes, closes, fd reuse), timeouts and wakes end its sleep, an idle loop sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "net/netloop.h"
#include "core/ioloop.h"

/* A source that watches one end of a socketpair, as libslirp watches a socket. */
struct fake {
	struct netloop l;
	int sv[2];                  /* sv[0] watched, sv[1] the peer */
	short events;               /* what fill asks for */
	int timeout_ms;             /* what fill lowers the timeout to (-1: leave it) */
	int idx;
	unsigned fills, dispatches;
	_Atomic unsigned seen;      /* dispatches that saw revents */
	short last_revents;
	pthread_t dispatch_thread;
};

static void f_fill(struct netloop *l, void *opaque, int *timeout_ms)
{
	struct fake *f = opaque;

	f->fills++;
	f->idx = f->events ? netloop_poll_add(l, f->sv[0], f->events) : -1;
	if (f->timeout_ms >= 0 && f->timeout_ms < *timeout_ms)
		*timeout_ms = f->timeout_ms;
}

static void f_dispatch(struct netloop *l, void *opaque)
{
	struct fake *f = opaque;
	short r = netloop_revents(l, f->idx);
	char buf[64];

	f->dispatches++;
	f->dispatch_thread = pthread_self();
	f->last_revents = r;
	if (r & POLLIN) {
		/* Drain, as a source must, or the level-triggered set stays ready. */
		while (read(f->sv[0], buf, sizeof(buf)) > 0)
			;
	}
	if (r)
		atomic_fetch_add(&f->seen, 1);
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct netloop_source s = { .fill = f_fill, .dispatch = f_dispatch };

	assert_non_null(f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f->sv), 0);
	assert_int_equal(netloop_init(&f->l), 0);
	s.opaque = f;
	assert_int_equal(netloop_add_source(&f->l, &s), 0);
	f->events = POLLIN;
	f->timeout_ms = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	netloop_fini(&f->l);
	close(f->sv[0]);
	close(f->sv[1]);
	free(f);
	return 0;
}

/* Is the nested set (what the I/O thread sleeps on) ready within ms? */
static bool ready(struct fake *f, int ms)
{
	struct epoll_event ev;

	return epoll_wait(f->l.epfd, &ev, 1, ms) == 1;
}

static void send_byte(int fd)
{
	assert_int_equal(write(fd, "x", 1), 1);
}

/* The first turn only fills; an idle loop then sleeps; data on the socket wakes it and reaches dispatch. */
static void test_ready_fd_wakes(void **state)
{
	struct fake *f = *state;

	netloop_turn(&f->l);
	assert_int_equal(f->fills, 1);
	assert_int_equal(f->dispatches, 0);
	assert_false(ready(f, 0));
	send_byte(f->sv[1]);
	assert_true(ready(f, 0));
	netloop_turn(&f->l);
	assert_int_equal(f->dispatches, 1);
	assert_true(f->last_revents & POLLIN);
	/* Drained: asleep again. */
	assert_false(ready(f, 0));
	assert_int_equal(f->l.nreg, 1);
}

/* A change of events (POLLOUT, then POLLIN) is followed: a writable socket must not keep the loop awake once only POLLIN is asked. */
static void test_events_change(void **state)
{
	struct fake *f = *state;

	f->events = POLLOUT;
	netloop_turn(&f->l);
	assert_true(ready(f, 0));
	f->events = POLLIN;
	netloop_turn(&f->l);
	assert_true(f->last_revents & POLLOUT);
	assert_false(ready(f, 0));
	/* Nothing asked for: out of the set, not woken by writability either. */
	f->events = 0;
	netloop_turn(&f->l);
	assert_int_equal(f->l.nreg, 0);
	send_byte(f->sv[1]);
	assert_false(ready(f, 0));
}

/*
 * The source closes its fd and a new socket takes the same number: told
 * (netloop_fd_closed), the loop adds it again, so data on the new socket
 * wakes it well before the 1 s sleep ends.
 */
static void test_fd_reuse(void **state)
{
	struct fake *f = *state;
	int nsv[2], old = f->sv[0];

	netloop_turn(&f->l);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, nsv), 0);
	netloop_fd_closed(&f->l, old);
	assert_int_equal(f->l.nreg, 0);
	assert_int_equal(dup2(nsv[0], old), old);   /* closes the old file, same number */
	close(nsv[0]);
	close(f->sv[1]);
	f->sv[1] = nsv[1];
	netloop_turn(&f->l);
	assert_false(ready(f, 0));
	send_byte(f->sv[1]);
	assert_true(ready(f, 100));
	netloop_turn(&f->l);
	assert_true(f->last_revents & POLLIN);
}

/* A source's timeout ends the sleep by itself; a shorter one later re-arms the timer earlier. */
static void test_timeout(void **state)
{
	struct fake *f = *state;
	int64_t t0;

	f->timeout_ms = 1000;
	netloop_turn(&f->l);
	assert_false(ready(f, 0));
	f->timeout_ms = 30;
	netloop_turn(&f->l);
	t0 = netloop_now_ns();
	assert_false(ready(f, 0));
	assert_true(ready(f, 900));
	assert_true(netloop_now_ns() - t0 >= 20 * 1000000);
	f->timeout_ms = 0;
	netloop_turn(&f->l);
	/* "Now": the next turn is due at once. */
	assert_true(ready(f, 0));
	f->timeout_ms = -1;
	netloop_turn(&f->l);
	netloop_turn(&f->l);
	assert_false(ready(f, 0));
}

/* netloop_wake from any thread makes a turn due. */
static void test_wake(void **state)
{
	struct fake *f = *state;

	netloop_turn(&f->l);
	assert_false(ready(f, 0));
	netloop_wake(&f->l);
	assert_true(ready(f, 0));
	netloop_turn(&f->l);
	assert_false(ready(f, 0));
}

/* Attached to a running I/O thread: sources run there, and data is dispatched without any other event. */
static void test_on_io_thread(void **state)
{
	struct fake *f = *state;
	struct ioloop io;

	assert_int_equal(ioloop_init(&io), 0);
	assert_int_equal(ioloop_start(&io), 0);
	assert_int_equal(netloop_attach(&f->l, &io), 0);
	for (int i = 0; i < 200 && !f->l.stats.turns; i++)
		usleep(5000);
	send_byte(f->sv[1]);
	for (int i = 0; i < 200 && !atomic_load(&f->seen); i++)
		usleep(5000);
	assert_int_equal(atomic_load(&f->seen), 1);
	netloop_fini(&f->l);   /* detaches: no turn after this */
	assert_false(pthread_equal(f->dispatch_thread, pthread_self()));
	ioloop_destroy(&io);
	assert_int_equal(netloop_init(&f->l), 0);   /* for teardown */
}

/* ioloop_mod: a muted fd wakes nobody, and a handler can watch it again (what the tap does while the guest is full). */
struct mod_ctx {
	struct ioloop *io;
	int efd[2];
	_Atomic int seen;
};

static void mod_counted(void *opaque, uint32_t events)
{
	struct mod_ctx *m = opaque;
	uint64_t n;

	(void)events;
	if (read(m->efd[0], &n, sizeof(n)) == sizeof(n))
		atomic_fetch_add(&m->seen, 1);
}

static void mod_unmute(void *opaque, uint32_t events)
{
	struct mod_ctx *m = opaque;
	uint64_t n;

	(void)events;
	if (read(m->efd[1], &n, sizeof(n)) == sizeof(n))
		assert_int_equal(ioloop_mod(m->io, m->efd[0], EPOLLIN), 0);
}

static void test_ioloop_mod(void **state)
{
	struct ioloop io;
	struct mod_ctx m = { .io = &io };
	uint64_t one = 1;

	(void)state;
	assert_int_equal(ioloop_init(&io), 0);
	m.efd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	m.efd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(m.efd[0] >= 0 && m.efd[1] >= 0);
	assert_int_equal(ioloop_add(&io, m.efd[0], EPOLLIN, mod_counted, &m), 0);
	assert_int_equal(ioloop_add(&io, m.efd[1], EPOLLIN, mod_unmute, &m), 0);
	assert_int_equal(ioloop_mod(&io, m.efd[0], 0), 0);          /* before the thread runs: no race */
	assert_int_equal(ioloop_mod(&io, 12345, EPOLLIN), -ENOENT);
	assert_int_equal(ioloop_start(&io), 0);
	assert_int_equal(write(m.efd[0], &one, sizeof(one)), (ssize_t)sizeof(one));
	usleep(100000);
	assert_int_equal(atomic_load(&m.seen), 0);                  /* muted: the event waits */
	assert_int_equal(write(m.efd[1], &one, sizeof(one)), (ssize_t)sizeof(one));
	for (int i = 0; i < 200 && !atomic_load(&m.seen); i++)
		usleep(5000);
	assert_int_equal(atomic_load(&m.seen), 1);                  /* watched again: the waiting event came */
	ioloop_destroy(&io);
	close(m.efd[0]);
	close(m.efd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ready_fd_wakes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_io_thread, setup, teardown),
		cmocka_unit_test(test_ioloop_mod),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
