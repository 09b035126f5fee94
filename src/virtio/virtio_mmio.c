/* virtio-mmio transport, version 2 / modern only (virtio 1.2 §4.2): one 4 KiB register window and one ISA IRQ per device. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "virtio/virtio.h"
#include "virtio/virtio_mmio.h"
#include "arch/x86/layout.h"
#include "core/log.h"
#include "core/vm.h"

/* §4.2.2 register layout (table 4.1), offsets into the window. */
#define REG_MAGIC               0x000
#define REG_VERSION             0x004
#define REG_DEVICE_ID           0x008
#define REG_VENDOR_ID           0x00c
#define REG_DEVICE_FEATURES     0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES     0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL           0x030
#define REG_QUEUE_NUM_MAX       0x034
#define REG_QUEUE_NUM           0x038
#define REG_QUEUE_READY         0x044
#define REG_QUEUE_NOTIFY        0x050
#define REG_INTERRUPT_STATUS    0x060
#define REG_INTERRUPT_ACK       0x064
#define REG_STATUS              0x070
#define REG_QUEUE_DESC_LOW      0x080
#define REG_QUEUE_DESC_HIGH     0x084
#define REG_QUEUE_DRIVER_LOW    0x090
#define REG_QUEUE_DRIVER_HIGH   0x094
#define REG_QUEUE_DEVICE_LOW    0x0a0
#define REG_QUEUE_DEVICE_HIGH   0x0a4
#define REG_SHM_SEL             0x0ac
#define REG_SHM_LEN_LOW         0x0b0
#define REG_SHM_LEN_HIGH        0x0b4
#define REG_SHM_BASE_LOW        0x0b8
#define REG_SHM_BASE_HIGH       0x0bc
#define REG_QUEUE_RESET         0x0c0
#define REG_CONFIG_GENERATION   0x0fc
#define REG_CONFIG              0x100   /* device-specific configuration (§4.2.2) */

/* §4.2.2.1: "little endian equivalent of the 'virt' string". */
#define MMIO_MAGIC   0x74726976u
#define MMIO_VERSION 2u

/* Interrupt lines handed out in slot order: ISA IRQs that are edge, active high on both the 8259 and the IOAPIC. */
static const unsigned mmio_irqs[] = IRQ_FREE_LEGACY;
_Static_assert(ARRAY_SIZE(mmio_irqs) >= VM_MAX_VIRTIO_MMIO, "one free ISA IRQ per virtio-mmio slot");

struct virtio_mmio {
	struct vm *vm;
	struct virtio_dev *d;
	gpa_t base;
	unsigned gsi;
	int irq_fd;                           /* eventfd bound to gsi by KVM_IRQFD; -1: pulse with KVM_IRQ_LINE */
	bool ioeventfd[VIRTIO_MAX_QUEUES];    /* QueueNotify=q is handled by KVM, signalling d->kick_fd[q] */
	struct virtio_mmio_stats stats;       /* under d->lock */
};

/*
 * Raise the device's interrupt: an edge, since the line is an ISA IRQ (edge,
 * active high). The guest learns why from InterruptStatus (d->isr, already
 * updated by the device model), so back-to-back events may share one edge.
 */
static void mmio_raise(struct virtio_mmio *t)
{
	uint64_t one = 1;

	if (t->irq_fd >= 0) {
		if (write(t->irq_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
			return;
		log_warn("%s: irqfd write: %s", t->d->name, strerror(errno));
	}
	vm_set_irq(t->vm, t->gsi, 1);
	vm_set_irq(t->vm, t->gsi, 0);
}

static void mmio_notify_queue(struct virtio_dev *d, unsigned q)
{
	mmio_raise(d->transport);
}

static void mmio_notify_config(struct virtio_dev *d)
{
	mmio_raise(d->transport);
}

static const struct virtio_transport_ops mmio_tops = {
	.notify_queue = mmio_notify_queue,
	.notify_config = mmio_notify_config,
};

/* The queue QueueSel names, or NULL when the device has no such queue (§4.2.2: QueueNumMax then reads 0). */
static struct virtio_queue_cfg *sel_queue(struct virtio_dev *d)
{
	return d->queue_sel < d->nqueues ? &d->qcfg[d->queue_sel] : NULL;
}

static uint32_t reg_read(struct virtio_mmio *t, uint32_t off)
{
	struct virtio_dev *d = t->d;
	struct virtio_queue_cfg *c = sel_queue(d);

	switch (off) {
	case REG_MAGIC:
		return MMIO_MAGIC;
	case REG_VERSION:
		return MMIO_VERSION;
	case REG_DEVICE_ID:
		return d->device_id;
	case REG_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR_ID;
	case REG_DEVICE_FEATURES:
		return virtio_read_host_features(d);
	case REG_QUEUE_NUM_MAX:
		return c ? d->queue_max : 0;
	case REG_QUEUE_READY:
		return c && c->enabled ? 1 : 0;
	case REG_INTERRUPT_STATUS:
		return atomic_load(&d->isr) & (VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	case REG_STATUS:
		return d->status;
	case REG_SHM_LEN_LOW:
	case REG_SHM_LEN_HIGH:
	case REG_SHM_BASE_LOW:
	case REG_SHM_BASE_HIGH:
		/* §4.2.2: a region ID that does not exist reads as length -1; kiln has no shared memory regions. */
		return 0xffffffffu;
	case REG_QUEUE_RESET:
		return 0; /* VIRTIO_F_RING_RESET is not offered */
	case REG_CONFIG_GENERATION:
		return d->config_generation;
	default:
		/* A write-only or undefined register: §4.2.2.2 forbids the read. */
		t->stats.bad_access++;
		return 0;
	}
}

/* Set the low or high half of a 64-bit ring address. */
static void set_half(uint64_t *addr, bool high, uint32_t v)
{
	if (high)
		*addr = (*addr & 0xffffffffull) | ((uint64_t)v << 32);
	else
		*addr = (*addr & ~0xffffffffull) | v;
}

/*
 * QueueNum, Queue{Desc,Driver,Device}{Low,High}: §4.2.2.2 "When QueueReady is
 * not zero, the driver MUST NOT access" them, so such writes are ignored (the
 * live ring must not move under the device). Also ignored: no queue selected.
 */
static void queue_reg_write(struct virtio_mmio *t, uint32_t off, uint32_t v)
{
	struct virtio_dev *d = t->d;
	struct virtio_queue_cfg *c = sel_queue(d);

	if (!c || c->enabled) {
		t->stats.ignored_writes++;
		return;
	}
	switch (off) {
	case REG_QUEUE_NUM:
		/*
		 * §4.2.2.2: at most QueueNumMax. A size out of range is kept as 0,
		 * so enabling the queue fails (NEEDS_RESET) instead of a truncated
		 * 16-bit value passing for a valid one.
		 */
		c->size = (v && v <= d->queue_max) ? (uint16_t)v : 0;
		break;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
		set_half(&c->desc, off == REG_QUEUE_DESC_HIGH, v);
		break;
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
		set_half(&c->avail, off == REG_QUEUE_DRIVER_HIGH, v);
		break;
	default:
		set_half(&c->used, off == REG_QUEUE_DEVICE_HIGH, v);
		break;
	}
}

static void queue_ready_write(struct virtio_mmio *t, uint32_t v)
{
	struct virtio_dev *d = t->d;
	struct virtio_queue_cfg *c = sel_queue(d);
	unsigned q = d->queue_sel;

	if (!c) {
		t->stats.ignored_writes++;
		return;
	}
	if (v == 0) {
		/* §4.2.2: the driver stops using the queue; it reads 0 back, and the device forgets the ring. */
		if (c->enabled) {
			vq_reset(&d->vq[q]);
			c->enabled = false;
		}
		return;
	}
	if (c->enabled)
		return;
	/*
	 * §3.1.1 step 7 sets queues up after FEATURES_OK: the ring format
	 * (EVENT_IDX, INDIRECT_DESC) depends on the negotiated features. Earlier
	 * the write is ignored and QueueReady reads back 0.
	 */
	if (!(d->status & VIRTIO_STATUS_FEATURES_OK)) {
		t->stats.ignored_writes++;
		return;
	}
	/* A bad size or ring puts the device in NEEDS_RESET (virtio_queue_enable). */
	(void)virtio_queue_enable(d, q);
}

static void reg_write(struct virtio_mmio *t, uint32_t off, uint32_t v)
{
	struct virtio_dev *d = t->d;

	switch (off) {
	case REG_DEVICE_FEATURES_SEL:
		d->host_features_sel = v;
		break;
	case REG_DRIVER_FEATURES:
		virtio_write_guest_features(d, v);
		break;
	case REG_DRIVER_FEATURES_SEL:
		d->guest_features_sel = v;
		break;
	case REG_QUEUE_SEL:
		d->queue_sel = v < VIRTIO_MAX_QUEUES ? (uint16_t)v : VIRTIO_MAX_QUEUES; /* past every queue */
		break;
	case REG_QUEUE_NUM:
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		queue_reg_write(t, off, v);
		break;
	case REG_QUEUE_READY:
		queue_ready_write(t, v);
		break;
	case REG_QUEUE_NOTIFY:
		/*
		 * Only reached without an ioeventfd for this value (KVM consumed the
		 * others). Without VIRTIO_F_NOTIFICATION_DATA the value is the queue
		 * index (§4.2.3.3); virtio_kick ignores one past the last queue.
		 */
		t->stats.notify_exits++;
		if (v < d->nqueues)
			virtio_kick(d, v);
		else
			t->stats.ignored_writes++;
		break;
	case REG_INTERRUPT_ACK:
		/* §4.2.2.1: a bit stays set until the driver acknowledges it here. */
		atomic_fetch_and(&d->isr, (uint8_t)~v);
		break;
	case REG_STATUS:
		/* §4.2.2: writing 0 resets the device, which clears InterruptStatus and every QueueReady (§4.2.2.1). */
		virtio_write_status(d, (uint8_t)v);
		break;
	case REG_SHM_SEL:
		break; /* every ID selects "no region" */
	case REG_QUEUE_RESET:
		t->stats.ignored_writes++; /* VIRTIO_F_RING_RESET is not offered */
		break;
	default:
		/* A read-only or undefined register: §4.2.2.2 forbids the write. */
		t->stats.bad_access++;
		break;
	}
}

/*
 * Bus callback (vCPU thread). §4.2.2.2: control registers take 32-bit
 * aligned accesses only; anything else is ignored (reads return 0) and
 * counted. The device configuration space at 0x100 takes the widths of its
 * fields; its bounds are checked against the device's config size.
 */
static void mmio_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_mmio *t = opaque;
	struct virtio_dev *d = t->d;
	uint32_t v = 0;

	pthread_mutex_lock(&d->lock);
	if (offset >= REG_CONFIG) {
		uint32_t off = (uint32_t)(offset - REG_CONFIG);

		if (is_write)
			virtio_config_write(d, off, data, len);
		else
			virtio_config_read(d, off, data, len);
	} else if (len != 4 || (offset & 3)) {
		t->stats.bad_access++;
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		memcpy(&v, data, 4);
		reg_write(t, (uint32_t)offset, le32toh(v));
	} else {
		v = htole32(reg_read(t, (uint32_t)offset));
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&d->lock);
}

/* Undo the KVM bindings and close the irq eventfd. d->lock not needed: no vCPU or I/O thread runs. */
static void mmio_unbind(struct virtio_mmio *t)
{
	struct virtio_dev *d = t->d;

	for (unsigned q = 0; q < d->nqueues; q++) {
		if (!t->ioeventfd[q])
			continue;
		if (irq_ioeventfd(t->vm->vm_fd, d->kick_fd[q], t->base + REG_QUEUE_NOTIFY, 4, false, true, q, false) < 0)
			log_warn("%s: KVM_IOEVENTFD deassign queue %u failed", d->name, q);
		t->ioeventfd[q] = false;
	}
	if (t->irq_fd >= 0) {
		(void)irq_irqfd(t->vm->vm_fd, t->irq_fd, t->gsi, false);
		close(t->irq_fd);
		t->irq_fd = -1;
	}
}

/* VM teardown: after the vCPUs and the I/O thread stopped. */
static void mmio_destroy(void *state)
{
	struct virtio_mmio *t = state;

	mmio_unbind(t);
	virtio_dev_destroy(t->d); /* the device's destroy may free d */
	free(t);
}

static void mmio_print_stats(void *state, int fd)
{
	struct virtio_mmio *t = state;
	struct virtio_mmio_stats s;
	unsigned nioev = 0;

	virtio_print_stats(t->d, fd);
	pthread_mutex_lock(&t->d->lock);
	s = t->stats;
	for (unsigned q = 0; q < t->d->nqueues; q++)
		nioev += t->ioeventfd[q];
	pthread_mutex_unlock(&t->d->lock);
	dprintf(fd, "%s: virtio-mmio @%#llx irq %u (%s) ioeventfd %u/%u notify_exits=%llu bad_access=%llu "
		"ignored_writes=%llu\n", t->d->name, (unsigned long long)t->base, t->gsi,
		t->irq_fd >= 0 ? "irqfd" : "irq line", nioev, t->d->nqueues, (unsigned long long)s.notify_exits,
		(unsigned long long)s.bad_access, (unsigned long long)s.ignored_writes);
}

/*
 * KVM does the fast paths when it can: an irqfd turns an eventfd write into
 * an edge on gsi without a trip through kiln, and an ioeventfd per queue
 * (datamatch on the queue index) turns the QueueNotify write into a kick_fd
 * signal without a VM exit. Either may be missing (old KVM, a fake VM in
 * tests): the bus handler and vm_set_irq() then do the same work.
 */
static void mmio_bind(struct virtio_mmio *t)
{
	struct virtio_dev *d = t->d;
	int ret;

	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->irq_fd >= 0) {
		ret = irq_irqfd(t->vm->vm_fd, t->irq_fd, t->gsi, true);
		if (ret < 0) {
			log_debug("%s: KVM_IRQFD gsi %u: %s: raising the line directly", d->name, t->gsi, strerror(-ret));
			close(t->irq_fd);
			t->irq_fd = -1;
		}
	}
	for (unsigned q = 0; q < d->nqueues; q++) {
		ret = irq_ioeventfd(t->vm->vm_fd, d->kick_fd[q], t->base + REG_QUEUE_NOTIFY, 4, false, true, q, true);
		t->ioeventfd[q] = ret == 0;
		if (ret < 0)
			log_debug("%s: KVM_IOEVENTFD queue %u: %s: notifications exit to kiln", d->name, q,
				  strerror(-ret));
	}
}

int virtio_mmio_add(struct vm *vm, struct virtio_dev *d)
{
	unsigned slot = vm->nvirtio_mmio;
	struct virtio_mmio *t;
	struct vm_device dev = {
		.name = "virtio-mmio",
		.destroy = mmio_destroy,
		.print_stats = mmio_print_stats,
	};
	int ret;

	/* On failure nothing stays registered and the caller still owns d (virtio.h). */
	if (slot >= VM_MAX_VIRTIO_MMIO) {
		log_err("%s: no virtio-mmio slot left (kiln has %u)", d->name, VM_MAX_VIRTIO_MMIO);
		return -ENOSPC;
	}
	if (vm->ndevices >= VM_MAX_DEVICES)
		return -ENOSPC;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->vm = vm;
	t->d = d;
	t->base = X86_VIRTIO_MMIO_BASE + slot * X86_VIRTIO_MMIO_SIZE;
	t->gsi = mmio_irqs[slot];
	t->irq_fd = -1;
	ret = bus_register(&vm->mmio, t->base, X86_VIRTIO_MMIO_SIZE, d->name, mmio_io, t);
	if (ret < 0) {
		log_err("%s: cannot map the virtio-mmio window at %#llx: %s", d->name, (unsigned long long)t->base,
			strerror(-ret));
		free(t);
		return ret;
	}
	mmio_bind(t);
	d->transport = t;
	d->tops = &mmio_tops;
	dev.state = t;
	/* Cannot fail: room was checked above. From here the VM owns t and d. */
	(void)vm_add_device(vm, &dev);
	vm->virtio_mmio[slot] = (struct virtio_mmio_slot){ .base = t->base, .size = X86_VIRTIO_MMIO_SIZE, .gsi = t->gsi };
	vm->nvirtio_mmio = slot + 1;
	log_debug("%s: virtio-mmio window %#llx irq %u", d->name, (unsigned long long)t->base, t->gsi);
	return 0;
}

int virtio_mmio_get_stats(struct virtio_dev *d, struct virtio_mmio_stats *out)
{
	struct virtio_mmio *t = d->transport;

	if (d->tops != &mmio_tops)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	*out = t->stats;
	out->irqfd = t->irq_fd >= 0;
	out->nioeventfd = 0;
	for (unsigned q = 0; q < d->nqueues; q++)
		out->nioeventfd += t->ioeventfd[q];
	pthread_mutex_unlock(&d->lock);
	return 0;
}
