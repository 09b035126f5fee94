/* Unit tests for the I/O thread (core/ioloop.c) and the transport-independent virtio model (virtio/virtio.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
