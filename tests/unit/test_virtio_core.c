/* Unit tests for the I/O thread (core/ioloop.c) and the transport-independent virtio model (virtio/virtio.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <cmocka.h>
#include "stub_vm.h"
#include "core/ioloop.h"
#include "virtio/virtio.h"

/* ---- ioloop ---- */

struct hit { int efd_done; unsigned calls; int fd; };

static void on_ready(void *opaque, uint32_t events)
{
	struct hit *h = opaque;
	uint64_t v, one = 1;

	assert_true(read(h->fd, &v, sizeof(v)) == sizeof(v));
	h->calls++;
	assert_true(write(h->efd_done, &one, sizeof(one)) == sizeof(one));
}

static bool wait_fd(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, ms) == 1;
}

static void test_ioloop_dispatch(void **state)
{
	struct ioloop l;
	struct hit h = { .efd_done = eventfd(0, EFD_NONBLOCK), .fd = eventfd(0, EFD_NONBLOCK) };
	uint64_t one = 1, v;

	assert_int_equal(ioloop_init(&l), 0);
	assert_int_equal(ioloop_add(&l, h.fd, EPOLLIN, on_ready, &h), 0);
	assert_int_equal(ioloop_add(&l, h.fd, EPOLLIN, on_ready, &h), -EEXIST);
	assert_int_equal(ioloop_add(&l, -1, EPOLLIN, on_ready, &h), -EINVAL);
	assert_int_equal(ioloop_start(&l), 0);
	assert_true(write(h.fd, &one, sizeof(one)) == sizeof(one));
	assert_true(wait_fd(h.efd_done, 5000));
	assert_true(read(h.efd_done, &v, sizeof(v)) == sizeof(v));
	assert_int_equal(h.calls, 1);
	/* After del the handler never runs for that fd again. */
	ioloop_del(&l, h.fd);
	assert_true(write(h.fd, &one, sizeof(one)) == sizeof(one));
	assert_false(wait_fd(h.efd_done, 100));
	assert_int_equal(h.calls, 1);
	ioloop_stop(&l);
	ioloop_stop(&l); /* idempotent */
	ioloop_destroy(&l);
	ioloop_destroy(&l);
	close(h.fd);
	close(h.efd_done);
}

static void nop(void *opaque, uint32_t events) {}

static void test_ioloop_full(void **state)
{
	struct ioloop l;
	int fds[IOLOOP_MAX_FDS + 1];

	assert_int_equal(ioloop_init(&l), 0);
	for (unsigned i = 0; i <= IOLOOP_MAX_FDS; i++) {
		fds[i] = eventfd(0, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(ioloop_add(&l, fds[i], EPOLLIN, nop, NULL), i < IOLOOP_MAX_FDS ? 0 : -ENOSPC);
	}
	ioloop_del(&l, fds[3]); /* a freed slot is reusable */
	assert_int_equal(ioloop_add(&l, fds[IOLOOP_MAX_FDS], EPOLLIN, nop, NULL), 0);
	ioloop_destroy(&l);
	for (unsigned i = 0; i <= IOLOOP_MAX_FDS; i++)
		close(fds[i]);
}

/* ---- ioloop polling (--io-poll) ---- */

/*
 * A fake polled queue with the virtio notification protocol (§2.7.10): the
 * "driver" (a test thread) publishes an item, then kicks only if
 * notifications are on; the "device" turns them off while polled, and its
 * arm turns them on and looks once more.
 */
struct fq {
	_Atomic unsigned avail;      /* items the driver added */
	_Atomic unsigned taken;      /* items the device took */
	_Atomic bool notify;         /* the driver must kick */
	int kick_fd;
	_Atomic unsigned polls, arms, kicks, sent_kicks;
	_Atomic uint64_t first_poll_ns, last_poll_ns;
	_Atomic uint64_t last_work_ns, first_arm_ns;  /* the last poll call that reported work; the first arm */
	uint64_t busy_ns;            /* poll reports one item per call for this long after its first call */
	_Atomic bool slip_on_arm;    /* the next arm finds an item added just before it (no kick) */
	bool always_busy;            /* poll always reports work */
};

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static unsigned fq_take(struct fq *q)
{
	unsigned a = atomic_load(&q->avail), t = atomic_load(&q->taken);

	atomic_store(&q->taken, a);
	return a - t;
}

static unsigned fq_poll(void *opaque)
{
	struct fq *q = opaque;
	uint64_t now = mono_ns();
	unsigned n;

	atomic_fetch_add(&q->polls, 1);
	if (!atomic_load(&q->first_poll_ns))
		atomic_store(&q->first_poll_ns, now);
	atomic_store(&q->last_poll_ns, now);
	atomic_store(&q->notify, false);
	n = fq_take(q);
	if (q->always_busy || (q->busy_ns && now - atomic_load(&q->first_poll_ns) < q->busy_ns))
		n++;
	if (n)
		atomic_store(&q->last_work_ns, now);
	return n;
}

static unsigned fq_arm(void *opaque)
{
	struct fq *q = opaque;

	if (atomic_fetch_add(&q->arms, 1) == 0)
		atomic_store(&q->first_arm_ns, mono_ns());
	if (atomic_exchange(&q->slip_on_arm, false))
		atomic_fetch_add(&q->avail, 1);  /* the driver saw notify off: no kick */
	atomic_store(&q->notify, true);
	atomic_thread_fence(memory_order_seq_cst);
	return fq_take(q);
}

/* The kick handler, as virtio's: the queue goes quiet for the poller, then is worked. */
static void fq_kicked(void *opaque, uint32_t events)
{
	struct fq *q = opaque;
	uint64_t v;

	if (read(q->kick_fd, &v, sizeof(v)) != sizeof(v))
		return;
	atomic_fetch_add(&q->kicks, 1);
	atomic_store(&q->notify, false);
	fq_take(q);
}

/* The driver side: publish, full fence, kick only if asked to (§2.7.13.4). */
static void fq_add(struct fq *q)
{
	uint64_t one = 1;

	atomic_fetch_add(&q->avail, 1);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&q->notify)) {
		atomic_fetch_add(&q->sent_kicks, 1);
		assert_true(write(q->kick_fd, &one, sizeof(one)) == sizeof(one));
	}
}

/* Wait (at most ms) until cond(q) holds. */
static bool fq_wait(struct fq *q, bool (*cond)(struct fq *), int ms)
{
	for (int i = 0; i < ms; i++) {
		if (cond(q))
			return true;
		usleep(1000);
	}
	return cond(q);
}

static bool all_taken(struct fq *q) { return atomic_load(&q->taken) == atomic_load(&q->avail); }
static bool armed(struct fq *q) { return atomic_load(&q->arms) > 0 && atomic_load(&q->notify); }

static void fq_loop(struct ioloop *l, struct fq *q, unsigned us)
{
	q->kick_fd = eventfd(0, EFD_NONBLOCK);
	assert_true(q->kick_fd >= 0);
	atomic_store(&q->notify, true);
	assert_int_equal(ioloop_init(l), 0);
	ioloop_set_poll_us(l, us);
	assert_int_equal(ioloop_add(l, q->kick_fd, EPOLLIN, fq_kicked, q), 0);
	assert_int_equal(ioloop_add_poller(l, fq_poll, fq_arm, q), 0);
	assert_int_equal(ioloop_start(l), 0);
}

static void fq_done(struct ioloop *l, struct fq *q)
{
	ioloop_stop(l);
	ioloop_del_poller(l, q);
	ioloop_destroy(l);
	close(q->kick_fd);
}

static void test_poller_registry(void **state)
{
	struct ioloop l;
	static struct fq qs[IOLOOP_MAX_POLLERS + 1];

	assert_int_equal(ioloop_init(&l), 0);
	assert_int_equal(ioloop_add_poller(&l, NULL, fq_arm, &qs[0]), -EINVAL);
	assert_int_equal(ioloop_add_poller(&l, fq_poll, NULL, &qs[0]), -EINVAL);
	for (unsigned i = 0; i <= IOLOOP_MAX_POLLERS; i++)
		assert_int_equal(ioloop_add_poller(&l, fq_poll, fq_arm, &qs[i]), i < IOLOOP_MAX_POLLERS ? 0 : -ENOSPC);
	assert_int_equal(ioloop_add_poller(&l, fq_poll, fq_arm, &qs[1]), -EEXIST);
	assert_int_equal(l.npollers, IOLOOP_MAX_POLLERS);
	ioloop_del_poller(&l, &qs[1]);
	assert_int_equal(l.npollers, IOLOOP_MAX_POLLERS - 1);
	assert_int_equal(ioloop_add_poller(&l, fq_poll, fq_arm, &qs[IOLOOP_MAX_POLLERS]), 0);
	/* The window is capped (--io-poll's range). */
	ioloop_set_poll_us(&l, 5000);
	assert_int_equal(ioloop_poll_us(&l), IOLOOP_MAX_POLL_US);
	ioloop_set_poll_us(&l, 0);
	assert_int_equal(ioloop_poll_us(&l), 0);
	ioloop_destroy(&l);
}

/* One kick opens one window; it expires after the window without work, arms, and the loop sleeps again. */
static void test_poll_window_expires(void **state)
{
	struct ioloop l;
	struct fq q = { 0 };
	unsigned polls;

	fq_loop(&l, &q, 1000);
	fq_add(&q);                             /* notifications on: this kicks */
	assert_int_equal(atomic_load(&q.sent_kicks), 1);
	assert_true(fq_wait(&q, all_taken, 5000));
	assert_true(fq_wait(&q, armed, 5000));  /* the window closed with notifications back on */
	polls = atomic_load(&q.polls);
	assert_true(polls >= 1);
	usleep(50000);
	/* Asleep: no poller call without a new event. */
	assert_int_equal(atomic_load(&q.polls), polls);
	assert_int_equal(atomic_load(&q.arms), 1);
	fq_done(&l, &q);
	assert_int_equal(l.stats.poll_windows, 1);
	assert_int_equal(l.stats.wakeups, 1);
	/* It lasted at least the window: 1 ms from the last (here the only) work. */
	assert_true(l.stats.poll_ns >= 1000000);
}

/* Work found while polling restarts the window: a poller busy for 100 ms keeps a 1 ms window open that long. */
static void test_poll_restarts_on_work(void **state)
{
	struct ioloop l;
	struct fq q = { .busy_ns = 100000000 };
	uint64_t span;
	unsigned polls;

	fq_loop(&l, &q, 1000);
	fq_add(&q);
	assert_true(fq_wait(&q, armed, 5000));
	span = atomic_load(&q.last_poll_ns) - atomic_load(&q.first_poll_ns);
	assert_true(span >= 100000000);
	/* The window counts from the last work, not from when it opened: 1 ms of idle polling before the arm. */
	assert_true(atomic_load(&q.first_arm_ns) - atomic_load(&q.last_work_ns) >= 1000000);
	/* One window, one arm: it never slept in between (no fd event would have woken it). */
	assert_int_equal(atomic_load(&q.arms), 1);
	polls = atomic_load(&q.polls);
	usleep(50000);
	assert_int_equal(atomic_load(&q.polls), polls);  /* and then it sleeps */
	fq_done(&l, &q);
	assert_int_equal(l.stats.poll_windows, 1);
	assert_true(l.stats.polled_items >= 2);
}

/*
 * The edge: an item added after the last poll pass, while notifications were
 * still off (so no kick), is found by arm's re-check; that is work, so the
 * loop polls on and arms again before it sleeps.
 */
static void test_poll_arm_finds_work(void **state)
{
	struct ioloop l;
	struct fq q = { 0 };

	atomic_store(&q.slip_on_arm, true);
	fq_loop(&l, &q, 200);
	fq_add(&q);
	assert_true(fq_wait(&q, all_taken, 5000));
	for (int i = 0; i < 5000 && atomic_load(&q.arms) < 2; i++)
		usleep(1000);
	usleep(20000);
	assert_int_equal(atomic_load(&q.avail), 2);
	assert_int_equal(atomic_load(&q.taken), 2);
	assert_int_equal(atomic_load(&q.arms), 2);
	assert_int_equal(atomic_load(&q.sent_kicks), 1);
	fq_done(&l, &q);
	assert_int_equal(l.stats.armed_items, 1);
	assert_int_equal(l.stats.poll_windows, 1);
}

/* A driver thread racing the window edges (tiny windows, random gaps): every item is taken, kick or no kick. */
struct producer { struct fq *q; unsigned n; unsigned seed; };

static void *produce(void *arg)
{
	struct producer *p = arg;

	for (unsigned i = 0; i < p->n; i++) {
		fq_add(p->q);
		if (rand_r(&p->seed) % 4 == 0)
			usleep((useconds_t)(rand_r(&p->seed) % 60));
	}
	return NULL;
}

static void test_poll_no_lost_work(void **state)
{
	struct ioloop l;
	struct fq q = { 0 };
	struct producer p = { .q = &q, .n = 3000, .seed = 12345 };
	pthread_t t;

	fq_loop(&l, &q, 20);
	assert_int_equal(pthread_create(&t, NULL, produce, &p), 0);
	pthread_join(t, NULL);
	/* A lost item would wait here forever: nothing kicks once notifications are (wrongly) off. */
	assert_true(fq_wait(&q, all_taken, 5000));
	assert_int_equal(atomic_load(&q.taken), 3000);
	assert_true(fq_wait(&q, armed, 5000));
	fq_done(&l, &q);
	/* Both ways were used: kicks while asleep, polling while awake. */
	assert_true(atomic_load(&q.kicks) >= 1);
	assert_true(atomic_load(&q.arms) >= 1);
}

/* A guest that never stops submitting cannot keep the loop from stopping. */
static void test_poll_stop_while_busy(void **state)
{
	struct ioloop l;
	struct fq q = { .always_busy = true };

	alarm(20);   /* a hang is a failure, not a stuck test run */
	fq_loop(&l, &q, 1000);
	fq_add(&q);
	for (int i = 0; i < 5000 && atomic_load(&q.polls) < 100; i++)
		usleep(1000);
	assert_true(atomic_load(&q.polls) >= 100);
	fq_done(&l, &q);
	alarm(0);
	assert_int_equal(atomic_load(&q.arms), 0);
}

/* Polling off: no poller call, but a quiet queue left by a handler is still armed before sleeping. */
static void test_poll_off_still_arms(void **state)
{
	struct ioloop l;
	struct fq q = { 0 };

	fq_loop(&l, &q, 0);
	fq_add(&q);
	assert_true(fq_wait(&q, all_taken, 5000));
	assert_true(fq_wait(&q, armed, 5000));
	fq_done(&l, &q);
	assert_int_equal(atomic_load(&q.polls), 0);
	assert_int_equal(l.stats.poll_windows, 0);
}

/* ---- virtio device model ---- */

struct fake {
	struct vm vm;
	struct virtio_dev d;
	unsigned notified[VIRTIO_MAX_QUEUES];
	unsigned config_irqs;
	unsigned resets;
	unsigned activated;
	int activate_ret;
	uint8_t cfg[8];
};

static void f_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	struct fake *f = d->priv;
	memcpy(data, f->cfg + off, len);
}

static void f_queue_notify(struct virtio_dev *d, unsigned q) {}
static void f_reset(struct virtio_dev *d) { ((struct fake *)d->priv)->resets++; }
static int f_activate(struct virtio_dev *d)
{
	struct fake *f = d->priv;
	f->activated++;
	return f->activate_ret;
}

static const struct virtio_dev_ops fops = {
	.config_size = 8,
	.config_read = f_config_read,
	.activate = f_activate,
	.queue_notify = f_queue_notify,
	.reset = f_reset,
};

static void t_notify_queue(struct virtio_dev *d, unsigned q) { ((struct fake *)d->priv)->notified[q]++; }
static void t_notify_config(struct virtio_dev *d) { ((struct fake *)d->priv)->config_irqs++; }
static const struct virtio_transport_ops tops = { .notify_queue = t_notify_queue, .notify_config = t_notify_config };

#define RING_GPA 0x100000ULL

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	stub_vm_init(&f->vm, 16 * MiB);
	assert_int_equal(ioloop_init(&f->vm.io), 0);
	assert_int_equal(virtio_dev_init(&f->d, &f->vm, "virtio-test0", 99, 1ull << 5, 2, 64, &fops, f), 0);
	f->d.tops = &tops;
	f->resets = 0;
	memcpy(f->cfg, "ABCDEFGH", 8);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	virtio_dev_destroy(&f->d);
	ioloop_destroy(&f->vm.io);
	stub_vm_fini(&f->vm);
	free(f);
	return 0;
}

static void negotiate(struct fake *f, uint64_t features)
{
	virtio_write_status(&f->d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	f->d.guest_features_sel = 0;
	virtio_write_guest_features(&f->d, (uint32_t)features);
	f->d.guest_features_sel = 1;
	virtio_write_guest_features(&f->d, (uint32_t)(features >> 32));
	virtio_write_status(&f->d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

static void test_init_rejects(void **state)
{
	struct fake *f = *state;
	struct virtio_dev d;

	assert_int_equal(virtio_dev_init(&d, &f->vm, "x", 1, 0, 0, 64, &fops, f), -EINVAL);
	assert_int_equal(virtio_dev_init(&d, &f->vm, "x", 1, 0, VIRTIO_MAX_QUEUES + 1, 64, &fops, f), -EINVAL);
	assert_int_equal(virtio_dev_init(&d, &f->vm, "x", 1, 0, 1, 48, &fops, f), -EINVAL);
	assert_int_equal(virtio_dev_init(&d, &f->vm, "x", 1, 0, 1, 0, &fops, f), -EINVAL);
}

static void test_host_features(void **state)
{
	struct fake *f = *state;

	f->d.host_features_sel = 0;
	assert_int_equal(virtio_read_host_features(&f->d),
			 (1u << 5) | (1u << VIRTIO_RING_F_INDIRECT_DESC) | (1u << VIRTIO_RING_F_EVENT_IDX));
	f->d.host_features_sel = 1;
	assert_int_equal(virtio_read_host_features(&f->d), 1u << (VIRTIO_F_VERSION_1 - 32));
	f->d.host_features_sel = 2;
	assert_int_equal(virtio_read_host_features(&f->d), 0);
}

static void test_features_ok_needs_version_1(void **state)
{
	struct fake *f = *state;

	negotiate(f, 1ull << 5);
	assert_false(f->d.status & VIRTIO_STATUS_FEATURES_OK);
}

static void test_features_ok_refuses_unoffered(void **state)
{
	struct fake *f = *state;

	negotiate(f, (1ull << VIRTIO_F_VERSION_1) | (1ull << 6));
	assert_false(f->d.status & VIRTIO_STATUS_FEATURES_OK);
}

static void test_features_ok_and_frozen(void **state)
{
	struct fake *f = *state;

	negotiate(f, (1ull << VIRTIO_F_VERSION_1) | (1ull << 5));
	assert_true(f->d.status & VIRTIO_STATUS_FEATURES_OK);
	/* §3.1.1: after FEATURES_OK the feature bits are settled. */
	f->d.guest_features_sel = 0;
	virtio_write_guest_features(&f->d, 0);
	assert_int_equal(f->d.guest_features, (1ull << VIRTIO_F_VERSION_1) | (1ull << 5));
}

static void test_driver_ok_without_features_ok(void **state)
{
	struct fake *f = *state;

	virtio_write_status(&f->d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_true(f->d.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(f->activated, 0);
	/* The driver cannot clear NEEDS_RESET except by a reset. */
	virtio_write_status(&f->d, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_true(f->d.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	virtio_write_status(&f->d, 0);
	assert_int_equal(f->d.status, 0);
	assert_int_equal(f->resets, 1);
	assert_int_equal(f->d.stats.resets, 1);
}

static void enable_queue(struct fake *f, unsigned q, uint16_t size)
{
	f->d.qcfg[q].size = size;
	f->d.qcfg[q].desc = RING_GPA + q * 0x10000;
	f->d.qcfg[q].avail = RING_GPA + q * 0x10000 + 0x4000;
	f->d.qcfg[q].used = RING_GPA + q * 0x10000 + 0x8000;
}

static void test_queue_enable_bad_size(void **state)
{
	struct fake *f = *state;

	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	enable_queue(f, 0, 48);
	assert_int_equal(virtio_queue_enable(&f->d, 0), -EINVAL);
	assert_true(f->d.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 0); /* not DRIVER_OK yet: no notification (§2.1.2) */
	assert_int_equal(virtio_queue_enable(&f->d, 7), -EINVAL);
}

static void test_queue_beyond_ram(void **state)
{
	struct fake *f = *state;

	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	enable_queue(f, 1, 64);
	f->d.qcfg[1].used = 16 * MiB - 8; /* runs off the end of RAM */
	assert_int_equal(virtio_queue_enable(&f->d, 1), -EINVAL);
	assert_true(f->d.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void test_live_and_used_notification(void **state)
{
	struct fake *f = *state;
	uint8_t *avail;

	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	enable_queue(f, 0, 64);
	assert_int_equal(virtio_queue_enable(&f->d, 0), 0);
	assert_false(virtio_queue_live(&f->d, 0));
	virtio_write_status(&f->d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
					   VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(f->activated, 1);
	assert_true(virtio_queue_live(&f->d, 0));
	assert_false(virtio_queue_live(&f->d, 1)); /* never enabled */

	/* One chain in flight, completed: the driver wants an interrupt. */
	avail = vm_gpa(&f->vm, f->d.qcfg[0].avail, 6 + 2 * 64);
	assert_non_null(avail);
	struct vring_desc dsc = { .addr = 0x200000, .len = 16, .flags = VIRTQ_DESC_F_WRITE };
	assert_int_equal(mem_write(&f->vm.mem, f->d.qcfg[0].desc, &dsc, sizeof(dsc)), 0);
	avail[4] = 0;   /* ring[0] = head 0 */
	avail[2] = 1;   /* idx = 1 */
	struct vq_chain *c = malloc(sizeof(*c));
	assert_int_equal(vq_pop(&f->d.vq[0], c), 0);
	assert_int_equal(vq_push(&f->d.vq[0], c->head, 16), 0);
	virtio_used(&f->d, 0);
	assert_int_equal(f->notified[0], 1);
	assert_true(atomic_load(&f->d.isr) & VIRTIO_ISR_QUEUE);

	/* VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.7): suppressed. */
	avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	avail[6] = 0;
	avail[2] = 2;
	assert_int_equal(vq_pop(&f->d.vq[0], c), 0);
	assert_int_equal(vq_push(&f->d.vq[0], c->head, 16), 0);
	virtio_used(&f->d, 0);
	assert_int_equal(f->notified[0], 1);
	free(c);

	/* A failure after DRIVER_OK sends one configuration change notification. */
	virtio_fail(&f->d, "test");
	virtio_fail(&f->d, "test again");
	assert_int_equal(f->config_irqs, 1);
	assert_false(virtio_queue_live(&f->d, 0));
	assert_int_equal(f->d.stats.needs_reset, 1);
}

static void test_activate_failure(void **state)
{
	struct fake *f = *state;

	f->activate_ret = -EIO;
	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	virtio_write_status(&f->d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
					   VIRTIO_STATUS_DRIVER_OK);
	assert_true(f->d.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void test_config_bounds(void **state)
{
	struct fake *f = *state;
	uint8_t b[8];

	virtio_config_read(&f->d, 2, b, 4);
	assert_memory_equal(b, "CDEF", 4);
	memset(b, 0x55, sizeof(b));
	virtio_config_read(&f->d, 6, b, 4); /* crosses the end: zeros */
	assert_memory_equal(b, "\0\0\0\0", 4);
	virtio_config_read(&f->d, UINT32_MAX, b, 4);
	assert_memory_equal(b, "\0\0\0\0", 4);
	virtio_config_write(&f->d, 0, b, 4); /* no config_write: dropped, no crash */
	virtio_config_changed(&f->d);
	assert_int_equal(f->d.config_generation, 1);
	assert_int_equal(f->config_irqs, 0); /* not DRIVER_OK */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ioloop_dispatch),
		cmocka_unit_test(test_ioloop_full),
		cmocka_unit_test(test_poller_registry),
		cmocka_unit_test(test_poll_window_expires),
		cmocka_unit_test(test_poll_restarts_on_work),
		cmocka_unit_test(test_poll_arm_finds_work),
		cmocka_unit_test(test_poll_no_lost_work),
		cmocka_unit_test(test_poll_stop_while_busy),
		cmocka_unit_test(test_poll_off_still_arms),
		cmocka_unit_test_setup_teardown(test_init_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_ok_needs_version_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_ok_refuses_unoffered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_ok_and_frozen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_driver_ok_without_features_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_enable_bad_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_beyond_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_and_used_notification, setup, teardown),
		cmocka_unit_test_setup_teardown(test_activate_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_bounds, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
