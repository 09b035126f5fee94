/* Unit tests for the virtio-mmio transport: §4.2.2 register semantics, slots and IRQs, notifications, hostile accesses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "arch/x86/layout.h"
#include "virtio/virtio.h"
#include "virtio/virtio_mmio.h"
#include "stub_vm.h"
#include "virtio_mmio_driver.h"

#define BASE X86_VIRTIO_MMIO_BASE
#define RAM (16 * MiB)
#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_DEV (1ull << 5)          /* a device-specific feature bit the fake device offers */
#define QMAX 16
#define BUF_GPA 0x100000ull

/* A fake device: 8 bytes of config, two queues; counts the calls the device model makes. */
struct fake_dev {
	struct virtio_dev d;
	uint8_t config[8];
	unsigned notifies[2], activates, resets, destroys;
	bool echo;                 /* queue_notify pushes every chain back with 4 bytes written */
	struct vq_chain chain;     /* vq_pop scratch */
};

struct fixture {
	struct vm vm;
	struct fake_dev dev[VM_MAX_VIRTIO_MMIO + 1];
};

static void fake_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	memcpy(data, ((struct fake_dev *)d->priv)->config + off, len);
}

static void fake_config_write(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	memcpy(((struct fake_dev *)d->priv)->config + off, data, len);
}

static int fake_activate(struct virtio_dev *d)
{
	((struct fake_dev *)d->priv)->activates++;
	return 0;
}

static void fake_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct fake_dev *f = d->priv;

	f->notifies[q]++;
	if (!f->echo)
		return;
	for (unsigned n = 0; n < d->vq[q].size && vq_pop(&d->vq[q], &f->chain) == 0; n++)
		assert_int_equal(vq_push(&d->vq[q], f->chain.head, 4), 0);
	virtio_used(d, q);
}

static void fake_reset(struct virtio_dev *d)
{
	((struct fake_dev *)d->priv)->resets++;
}

static void fake_destroy(struct virtio_dev *d)
{
	((struct fake_dev *)d->priv)->destroys++;
}

static const struct virtio_dev_ops fake_ops = {
	.config_size = 8,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.activate = fake_activate,
	.queue_notify = fake_queue_notify,
	.reset = fake_reset,
	.destroy = fake_destroy,
};

static int add_fake(struct fixture *f, unsigned i)
{
	struct fake_dev *fd = &f->dev[i];

	for (unsigned b = 0; b < sizeof(fd->config); b++)
		fd->config[b] = (uint8_t)(0x10 + b);
	assert_int_equal(virtio_dev_init(&fd->d, &f->vm, "fake", 42, F_DEV, 2, QMAX, &fake_ops, fd), 0);
	fd->resets = 0; /* virtio_dev_init's own reset does not count */
	return virtio_mmio_add(&f->vm, &fd->d);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	stub_vm_init(&f->vm, RAM);
	assert_int_equal(ioloop_init(&f->vm.io), 0);
	assert_int_equal(add_fake(f, 0), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stub_vm_fini(&f->vm);
	/* Every device the VM owned was destroyed exactly once at teardown. */
	for (unsigned i = 0; i < f->vm.nvirtio_mmio; i++)
		assert_int_equal(f->dev[i].destroys, 1);
	ioloop_destroy(&f->vm.io);
	free(f);
	return 0;
}

static struct virtio_mmio_stats stats(struct fixture *f, unsigned i)
{
	struct virtio_mmio_stats s;

	assert_int_equal(virtio_mmio_get_stats(&f->dev[i].d, &s), 0);
	return s;
}

static void test_identity_and_slot(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;

	assert_int_equal(mmio_rd(vm, BASE, MMIO_MAGIC), 0x74726976);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_VERSION), 2);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_DEVICE_ID), 42);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR_ID);
	/* The window is recorded for the DSDT / command line, and the VM owns the device. */
	assert_int_equal(vm->nvirtio_mmio, 1);
	assert_int_equal(vm->virtio_mmio[0].base, 0xF0000000ull);
	assert_int_equal(vm->virtio_mmio[0].size, 0x1000);
	assert_int_equal(vm->virtio_mmio[0].gsi, 5);
	assert_int_equal(vm->ndevices, 1);
	assert_non_null(bus_find(&vm->mmio, BASE + 0xfff));
	assert_null(bus_find(&vm->mmio, BASE + 0x1000));
	/* Without KVM (vm_fd -1) both fast paths are off and the fallbacks are used. */
	assert_false(stats(f, 0).irqfd);
	assert_int_equal(stats(f, 0).nioeventfd, 0);
}

static void test_features(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;
	struct virtio_dev *d = &f->dev[0].d;

	mmio_wr(vm, BASE, MMIO_DEV_FEATURES_SEL, 0);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_DEV_FEATURES),
			 (uint32_t)(F_DEV | (1u << VIRTIO_RING_F_INDIRECT_DESC) | (1u << VIRTIO_RING_F_EVENT_IDX)));
	mmio_wr(vm, BASE, MMIO_DEV_FEATURES_SEL, 1);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_DEV_FEATURES), 1); /* VERSION_1 = bit 32 */
	mmio_wr(vm, BASE, MMIO_DEV_FEATURES_SEL, 2);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_DEV_FEATURES), 0);

	/* A modern-only device refuses FEATURES_OK without VERSION_1 (§3.1.1): it reads back clear. */
	assert_int_equal(mmio_negotiate(vm, BASE, F_DEV), ST_ACK | ST_DRIVER);
	assert_int_equal(mmio_negotiate(vm, BASE, F_DEV | F_V1), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	assert_int_equal(d->guest_features, F_DEV | F_V1);
	/* Settled once FEATURES_OK is set. */
	mmio_wr(vm, BASE, MMIO_DRV_FEATURES_SEL, 0);
	mmio_wr(vm, BASE, MMIO_DRV_FEATURES, 0);
	assert_int_equal(d->guest_features, F_DEV | F_V1);
}

static void test_queue_registers(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;
	struct virtio_dev *d = &f->dev[0].d;
	struct fake_ring r, r2;

	ring_init(&r, vm, 0x10000, 8);
	ring_init(&r2, vm, 0x20000, 8);
	mmio_wr(vm, BASE, MMIO_STATUS, ST_ACK | ST_DRIVER);
	mmio_wr(vm, BASE, MMIO_QUEUE_SEL, 0);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_NUM_MAX), QMAX);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_READY), 0);
	/* §4.2.2: a queue the device does not have reads QueueNumMax 0. */
	mmio_wr(vm, BASE, MMIO_QUEUE_SEL, 2);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_NUM_MAX), 0);
	mmio_wr(vm, BASE, MMIO_QUEUE_SEL, 0xffffffff);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_NUM_MAX), 0);
	mmio_wr(vm, BASE, MMIO_QUEUE_NUM, 8);      /* no such queue: ignored */
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 1);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_READY), 0);
	assert_int_equal(stats(f, 0).ignored_writes, 2);

	mmio_queue_setup(vm, BASE, 0, &r);
	assert_int_equal(d->qcfg[0].size, 8);
	assert_int_equal(d->qcfg[0].desc, r.desc);
	assert_int_equal(d->qcfg[0].avail, r.avail);
	assert_int_equal(d->qcfg[0].used, r.used);
	/* Before FEATURES_OK the ring format is unknown: QueueReady=1 is ignored. */
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 1);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_READY), 0);
	assert_false(d->vq[0].ready);

	assert_int_equal(mmio_negotiate(vm, BASE, F_V1), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	mmio_queue_setup(vm, BASE, 0, &r);
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 1);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_READY), 1);
	assert_true(d->vq[0].ready);
	assert_int_equal(d->vq[0].desc, r.desc);
	assert_int_equal(d->vq[0].used, r.used);

	/* §4.2.2.2: with QueueReady=1 the ring registers are off limits: writes change nothing. */
	uint64_t before = stats(f, 0).ignored_writes;
	mmio_queue_setup(vm, BASE, 0, &r2);
	assert_int_equal(stats(f, 0).ignored_writes, before + 7);
	assert_int_equal(d->qcfg[0].desc, r.desc);
	assert_int_equal(d->qcfg[0].size, 8);
	assert_int_equal(d->vq[0].desc, r.desc);

	/* Other queues stay independent: QueueSel picks queue 1, which is not ready. */
	mmio_wr(vm, BASE, MMIO_QUEUE_SEL, 1);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_READY), 0);

	/* QueueReady=0 stops the queue; it reads back 0 and may be reprogrammed. */
	mmio_wr(vm, BASE, MMIO_QUEUE_SEL, 0);
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 0);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_READY), 0);
	assert_false(d->vq[0].ready);
	mmio_queue_setup(vm, BASE, 0, &r2);
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 1);
	assert_int_equal(d->vq[0].desc, r2.desc);
}

static void test_bad_queue_size_needs_reset(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;
	struct fake_ring r;

	ring_init(&r, vm, 0x10000, 8);
	assert_int_equal(mmio_negotiate(vm, BASE, F_V1), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	mmio_queue_setup(vm, BASE, 0, &r);
	/* Above QueueNumMax, and a value whose low 16 bits would look valid. */
	mmio_wr(vm, BASE, MMIO_QUEUE_NUM, 0x10008);
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 1);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_READY), 0);
	assert_true(mmio_rd(vm, BASE, MMIO_STATUS) & ST_NEEDS_RESET);
	/* A reset clears it; then a queue of exactly QueueNumMax is fine. */
	mmio_negotiate(vm, BASE, F_V1);
	assert_false(mmio_rd(vm, BASE, MMIO_STATUS) & ST_NEEDS_RESET);
	ring_init(&r, vm, 0x10000, QMAX);
	mmio_queue_setup(vm, BASE, 0, &r);
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 1);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_READY), 1);
	/* Ring not in RAM: NEEDS_RESET, no crash. */
	mmio_negotiate(vm, BASE, F_V1);
	mmio_queue_setup(vm, BASE, 1, &r);
	mmio_wr(vm, BASE, MMIO_DESC_HI, 0x7fff);
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 1);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_READY), 0);
	assert_true(mmio_rd(vm, BASE, MMIO_STATUS) & ST_NEEDS_RESET);
}

static void test_bad_accesses(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;
	uint8_t b[8];
	uint64_t n0 = stats(f, 0).bad_access;

	/* §4.2.2.2: control registers are 32-bit aligned only; others are ignored (reads 0) and counted. */
	memset(b, 0xaa, sizeof(b));
	assert_true(bus_access(&vm->mmio, BASE + MMIO_MAGIC, b, 1, false));
	assert_int_equal(b[0], 0);
	memset(b, 0xaa, sizeof(b));
	assert_true(bus_access(&vm->mmio, BASE + MMIO_MAGIC, b, 2, false));
	assert_int_equal(b[0] | b[1], 0);
	memset(b, 0xaa, sizeof(b));
	assert_true(bus_access(&vm->mmio, BASE + MMIO_MAGIC, b, 8, false));
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(b[i], 0);
	assert_true(bus_access(&vm->mmio, BASE + MMIO_VERSION + 2, b, 4, false)); /* unaligned */
	/* A byte write to Status must not reset or change the device. */
	mmio_wr(vm, BASE, MMIO_STATUS, ST_ACK);
	b[0] = 0;
	assert_true(bus_access(&vm->mmio, BASE + MMIO_STATUS, b, 1, true));
	assert_int_equal(mmio_rd(vm, BASE, MMIO_STATUS), ST_ACK);
	/* Undefined offsets and wrong directions. */
	assert_int_equal(mmio_rd(vm, BASE, 0x018), 0);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_NOTIFY), 0);   /* write-only */
	mmio_wr(vm, BASE, MMIO_MAGIC, 0);                            /* read-only */
	mmio_wr(vm, BASE, 0x0f0, 1);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_MAGIC), 0x74726976);
	assert_int_equal(stats(f, 0).bad_access, n0 + 9);
	/* Every offset, every width, both directions: nothing crashes (ASan/UBSan build). */
	for (uint64_t off = 0; off < 0x1000; off++)
		for (uint32_t len = 1; len <= 8; len *= 2) {
			memset(b, 0xff, sizeof(b));
			if (off != MMIO_STATUS && off != MMIO_QUEUE_READY && off != MMIO_QUEUE_NOTIFY)
				bus_access(&vm->mmio, BASE + off, b, len, true);
			bus_access(&vm->mmio, BASE + off, b, len, false);
		}
	assert_int_equal(mmio_rd(vm, BASE, MMIO_MAGIC), 0x74726976);
}

static void test_config_space(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;
	struct virtio_dev *d = &f->dev[0].d;
	uint8_t b[8];
	uint32_t gen;

	for (unsigned i = 0; i < 8; i++) {
		memset(b, 0, sizeof(b));
		assert_true(bus_access(&vm->mmio, BASE + MMIO_CONFIG + i, b, 1, false));
		assert_int_equal(b[0], 0x10 + i);
	}
	assert_int_equal(mmio_rd(vm, BASE, MMIO_CONFIG + 4), 0x17161514);
	memset(b, 0xaa, sizeof(b));
	assert_true(bus_access(&vm->mmio, BASE + MMIO_CONFIG + 6, b, 2, false));
	assert_int_equal(b[0], 0x16);
	assert_int_equal(b[1], 0x17);
	/* Beyond the device's config size: reads 0, writes dropped. */
	assert_int_equal(mmio_rd(vm, BASE, MMIO_CONFIG + 8), 0);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_CONFIG + 6), 0); /* straddles the end */
	mmio_wr(vm, BASE, MMIO_CONFIG + 8, 0x12345678);
	b[0] = 0x99;
	assert_true(bus_access(&vm->mmio, BASE + MMIO_CONFIG + 1, b, 1, true));
	assert_int_equal(f->dev[0].config[1], 0x99);

	/* ConfigGeneration changes with the config (§4.2.2.1). */
	gen = mmio_rd(vm, BASE, MMIO_CONFIG_GEN);
	pthread_mutex_lock(&d->lock);
	virtio_config_changed(d);
	pthread_mutex_unlock(&d->lock);
	assert_int_not_equal(mmio_rd(vm, BASE, MMIO_CONFIG_GEN), gen);
}

static void test_shm_and_queue_reset_read_none(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;

	/* §4.2.2: no shared memory region: length (and base) -1 for every ID. */
	for (uint32_t id = 0; id < 3; id++) {
		mmio_wr(vm, BASE, MMIO_SHM_SEL, id);
		assert_int_equal(mmio_rd(vm, BASE, MMIO_SHM_LEN_LO), 0xffffffff);
		assert_int_equal(mmio_rd(vm, BASE, MMIO_SHM_LEN_HI), 0xffffffff);
		assert_int_equal(mmio_rd(vm, BASE, MMIO_SHM_BASE_LO), 0xffffffff);
		assert_int_equal(mmio_rd(vm, BASE, MMIO_SHM_BASE_HI), 0xffffffff);
	}
	assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_RESET), 0);
}

/* Bring the fake device to DRIVER_OK with queue 0 on r. */
static void bring_up(struct fixture *f, struct fake_ring *r)
{
	struct vm *vm = &f->vm;

	ring_init(r, vm, 0x10000, 8);
	assert_int_equal(mmio_negotiate(vm, BASE, F_V1), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	mmio_queue_setup(vm, BASE, 0, r);
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 1);
	mmio_wr(vm, BASE, MMIO_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_STATUS), ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	assert_int_equal(f->dev[0].activates, 1);
}

static void test_notify_fallback_and_interrupts(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;
	struct virtio_dev *d = &f->dev[0].d;
	struct fake_ring r;

	bring_up(f, &r);
	/* DRIVER_OK kicks every live queue once, so buffers queued earlier are seen. */
	assert_int_equal(pump_kicks(d), 1);
	assert_int_equal(f->dev[0].notifies[0], 1);

	/* No ioeventfd: the QueueNotify write exits to kiln, which signals kick_fd[q]. */
	f->dev[0].echo = true;
	ring_desc(&r, 0, BUF_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
	ring_offer(&r, 0);
	mmio_wr(vm, BASE, MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(stats(f, 0).notify_exits, 1);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_INT_STATUS), 0);
	assert_int_equal(pump_kicks(d), 1);
	assert_int_equal(f->dev[0].notifies[0], 2);
	assert_int_equal(ring_used_idx(&r), 1);
	assert_int_equal(ring_used_len(&r, 0), 4);

	/* Used buffer: InterruptStatus bit 0 and one edge on the slot's ISA IRQ (no irqfd: KVM_IRQ_LINE pulse). */
	assert_int_equal(mmio_rd(vm, BASE, MMIO_INT_STATUS), VIRTIO_ISR_QUEUE);
	assert_int_equal(stub_vm_irq_pulses(vm, 5), 1);

	/* Config change: bit 1 as well; each stays until acknowledged (§4.2.2.1). */
	pthread_mutex_lock(&d->lock);
	virtio_config_changed(d);
	pthread_mutex_unlock(&d->lock);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_INT_STATUS), VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	assert_int_equal(stub_vm_irq_pulses(vm, 5), 2);
	mmio_wr(vm, BASE, MMIO_INT_ACK, VIRTIO_ISR_CONFIG);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_INT_STATUS), VIRTIO_ISR_QUEUE);
	mmio_wr(vm, BASE, MMIO_INT_ACK, 0xffffffff);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_INT_STATUS), 0);

	/* A notify for a queue the device does not have: no kick, counted. */
	uint64_t ign = stats(f, 0).ignored_writes;
	mmio_wr(vm, BASE, MMIO_QUEUE_NOTIFY, 2);
	mmio_wr(vm, BASE, MMIO_QUEUE_NOTIFY, 0xffff);
	assert_int_equal(pump_kicks(d), 0);
	assert_int_equal(stats(f, 0).ignored_writes, ign + 2);

	/* A kick on a queue that is not ready reaches the I/O side but not the device. */
	mmio_wr(vm, BASE, MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(pump_kicks(d), 1);
	assert_int_equal(f->dev[0].notifies[1], 0);
}

static void test_reset_clears_state(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;
	struct virtio_dev *d = &f->dev[0].d;
	struct fake_ring r;
	unsigned resets;

	bring_up(f, &r);
	resets = f->dev[0].resets;
	pthread_mutex_lock(&d->lock);
	virtio_config_changed(d);
	pthread_mutex_unlock(&d->lock);
	assert_int_not_equal(mmio_rd(vm, BASE, MMIO_INT_STATUS), 0);
	/* §4.2.2.1: reset clears InterruptStatus and every QueueReady. */
	mmio_wr(vm, BASE, MMIO_STATUS, 0);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_STATUS), 0);
	assert_int_equal(mmio_rd(vm, BASE, MMIO_INT_STATUS), 0);
	for (unsigned q = 0; q < 2; q++) {
		mmio_wr(vm, BASE, MMIO_QUEUE_SEL, q);
		assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_READY), 0);
		assert_int_equal(mmio_rd(vm, BASE, MMIO_QUEUE_NUM_MAX), QMAX);
	}
	assert_false(d->vq[0].ready);
	assert_int_equal(f->dev[0].resets, resets + 1);
}

static void test_slots_and_irqs(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;
	static const unsigned want_irq[] = { 5, 6, 7, 9, 10, 11, 12, 15 };

	for (unsigned i = 1; i < VM_MAX_VIRTIO_MMIO; i++)
		assert_int_equal(add_fake(f, i), 0);
	assert_int_equal(vm->nvirtio_mmio, VM_MAX_VIRTIO_MMIO);
	for (unsigned i = 0; i < VM_MAX_VIRTIO_MMIO; i++) {
		gpa_t base = 0xF0000000ull + 0x1000ull * i;

		assert_int_equal(vm->virtio_mmio[i].base, base);
		assert_int_equal(vm->virtio_mmio[i].gsi, want_irq[i]);
		assert_int_equal(mmio_rd(vm, base, MMIO_MAGIC), 0x74726976);
		/* Each window drives its own device. */
		mmio_wr(vm, base, MMIO_STATUS, ST_ACK);
		assert_int_equal(f->dev[i].d.status, ST_ACK);
	}
	/* One more: a clear error; nothing registered, the caller still owns the device (virtio.h). */
	assert_int_equal(add_fake(f, VM_MAX_VIRTIO_MMIO), -ENOSPC);
	assert_int_equal(f->dev[VM_MAX_VIRTIO_MMIO].destroys, 0);
	assert_int_equal(vm->nvirtio_mmio, VM_MAX_VIRTIO_MMIO);
	assert_null(f->dev[VM_MAX_VIRTIO_MMIO].d.transport);
	virtio_dev_destroy(&f->dev[VM_MAX_VIRTIO_MMIO].d);
	assert_int_equal(f->dev[VM_MAX_VIRTIO_MMIO].destroys, 1);
	/* Not a virtio-mmio device: no transport stats. */
	struct virtio_mmio_stats s;
	assert_int_equal(virtio_mmio_get_stats(&f->dev[VM_MAX_VIRTIO_MMIO].d, &s), -EINVAL);
}

static void test_print_stats(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;
	int p[2];
	char buf[1024] = { 0 };

	(void)mmio_rd(vm, BASE, 0x018);
	assert_int_equal(pipe(p), 0);
	assert_non_null(vm->devices[0].print_stats);
	vm->devices[0].print_stats(vm->devices[0].state, p[1]);
	close(p[1]);
	assert_true(read(p[0], buf, sizeof(buf) - 1) > 0);
	close(p[0]);
	assert_non_null(strstr(buf, "fake: status="));
	assert_non_null(strstr(buf, "virtio-mmio @0xf0000000 irq 5 (irq line) ioeventfd 0/2"));
	assert_non_null(strstr(buf, "bad_access=1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity_and_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_queue_size_needs_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shm_and_queue_reset_read_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_fallback_and_interrupts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_clears_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_and_irqs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_stats, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
