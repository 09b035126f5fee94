/* Unit tests: the virtio-pci modern transport (capabilities, common cfg, ISR, MSI-X, notify, PCI_CFG window) and virtio-rng. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "devices/pci.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "virtio/virtio_pci.h"
#include "stub_kvm.h"
#include "stub_vm.h"

#define RAM (16 * MiB)
#define TEST_FEATURE 5            /* a device feature bit the test device offers */
#define NQ 2
#define QMAX 64

/* ---------- a test virtio device ---------- */

struct tvdev {
	struct virtio_dev vdev;
	uint8_t config[8];
	unsigned activates, notifies, resets;
	int fail_activate;
};

static void tv_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	struct tvdev *t = d->priv;

	memcpy(data, t->config + off, len);
}

static void tv_config_write(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	struct tvdev *t = d->priv;

	memcpy(t->config + off, data, len);
}

static int tv_activate(struct virtio_dev *d)
{
	struct tvdev *t = d->priv;

	t->activates++;
	return t->fail_activate;
}

static void tv_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct tvdev *t = d->priv;

	t->notifies++;
}

static void tv_reset(struct virtio_dev *d)
{
	struct tvdev *t = d->priv;

	t->resets++;
}

static void tv_destroy(struct virtio_dev *d)
{
	free(d->priv);
}

static const struct virtio_dev_ops tv_ops = {
	.config_size = sizeof(((struct tvdev *)0)->config),
	.config_read = tv_config_read,
	.config_write = tv_config_write,
	.activate = tv_activate,
	.queue_notify = tv_queue_notify,
	.reset = tv_reset,
	.destroy = tv_destroy,
};

/* ---------- fixture ---------- */

struct fx {
	struct vm vm;
	struct tvdev *tv;      /* NULL in the rng tests */
	struct virtio_dev *d;
	unsigned slot;
	uint32_t bar;
};

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	stub_kvm_reset();
	stub_vm_init(&f->vm, RAM);
	assert_int_equal(ioloop_init(&f->vm.io), 0);
	assert_int_equal(irq_routing_init(&f->vm.irqr, -1), 0);
	assert_int_equal(pci_host_init(&f->vm), 0);
	return f;
}

static uint32_t cfg_read(struct fx *f, unsigned reg, uint32_t len)
{
	uint8_t b[4] = { 0 };
	uint32_t v = 0;

	pci_cfg_access(f->vm.pci, f->slot, 0, reg, b, len, false);
	memcpy(&v, b, len);
	return v;
}

static void cfg_write(struct fx *f, unsigned reg, uint32_t v, uint32_t len)
{
	uint8_t b[4];

	memcpy(b, &v, 4);
	pci_cfg_access(f->vm.pci, f->slot, 0, reg, b, len, true);
}

static uint64_t bar_read(struct fx *f, uint32_t off, uint32_t len)
{
	uint8_t b[8];
	uint64_t v = 0;

	memset(b, 0x5a, sizeof(b));
	assert_true(bus_access(&f->vm.mmio, f->bar + off, b, len, false));
	memcpy(&v, b, len);
	return v;
}

static void bar_write(struct fx *f, uint32_t off, uint64_t v, uint32_t len)
{
	uint8_t b[8];

	memcpy(b, &v, 8);
	assert_true(bus_access(&f->vm.mmio, f->bar + off, b, len, true));
}

/* The device is the last one on the bus; learn its slot and BAR0 as a driver would. */
static void fx_find(struct fx *f)
{
	for (f->slot = PCI_MAX_SLOTS - 1; f->slot > 0 && !f->vm.pci->devs[f->slot]; f->slot--)
		;
	assert_true(f->slot > 0);
	f->bar = cfg_read(f, PCI_BAR0, 4) & ~0xfu;
}

static int setup(void **state)
{
	struct fx *f = fx_new();
	struct tvdev *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	memcpy(t->config, "kilnvirt", 8);
	assert_int_equal(virtio_dev_init(&t->vdev, &f->vm, "virtio-test0", VIRTIO_ID_CONSOLE, 1ull << TEST_FEATURE, NQ,
					 QMAX, &tv_ops, t), 0);
	assert_int_equal(virtio_pci_add(&f->vm, &t->vdev), 0);
	f->tv = t;
	f->d = &t->vdev;
	fx_find(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	ioloop_stop(&f->vm.io);
	stub_vm_fini(&f->vm);      /* destroys the transport, the device, then the bus */
	ioloop_destroy(&f->vm.io);
	irq_routing_destroy(&f->vm.irqr);
	free(f);
	return 0;
}

/* The eventfd behind MSI-X vector v of the (only) virtio device: irqfds were bound in vector order. */
static int vector_fd(unsigned v)
{
	assert_true(v < stub_kvm()->nirqfd);
	return stub_kvm()->irqfd[v].fd;
}

static unsigned vector_gsi(unsigned v)
{
	return stub_kvm()->irqfd[v].gsi;
}

/* How many times fd was signalled since the last look (eventfds are counters). */
static uint64_t drain(int fd)
{
	uint64_t n = 0;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

/* Walk the capability list: offset of the first vendor capability with cfg_type, or 0. */
static unsigned find_vcap(struct fx *f, uint8_t type)
{
	unsigned n = 0;

	for (unsigned p = cfg_read(f, PCI_CAPABILITY_LIST, 1); p && n < 48; p = cfg_read(f, p + 1, 1), n++)
		if (cfg_read(f, p, 1) == PCI_CAP_ID_VNDR && cfg_read(f, p + 3, 1) == type)
			return p;
	return 0;
}

static unsigned find_cap(struct fx *f, uint8_t id)
{
	unsigned n = 0;

	for (unsigned p = cfg_read(f, PCI_CAPABILITY_LIST, 1); p && n < 48; p = cfg_read(f, p + 1, 1), n++)
		if (cfg_read(f, p, 1) == id)
			return p;
	return 0;
}

/* ---------- header and capabilities ---------- */

static void test_header(void **state)
{
	struct fx *f = *state;

	assert_int_equal(cfg_read(f, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_read(f, PCI_DEVICE_ID, 2), 0x1040 + VIRTIO_ID_CONSOLE);
	assert_true(cfg_read(f, PCI_REVISION_ID, 1) >= 1);          /* §4.1.2.1: modern only */
	assert_int_equal(cfg_read(f, PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
	assert_true(cfg_read(f, PCI_SUBSYSTEM_ID, 2) >= 0x40);
	assert_int_equal(cfg_read(f, PCI_CLASS_DEVICE, 2), 0x0780);
	assert_int_equal(cfg_read(f, PCI_INTERRUPT_PIN, 1), 0);     /* MSI-X only */
	assert_int_equal(cfg_read(f, PCI_HEADER_TYPE, 1), 0);
	assert_true(cfg_read(f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* BAR0: 32-bit memory, sized VPCI_BAR_SIZE, inside the window. */
	cfg_write(f, PCI_BAR0, 0xffffffff, 4);
	assert_int_equal(cfg_read(f, PCI_BAR0, 4), (uint32_t)~(VPCI_BAR_SIZE - 1));
	cfg_write(f, PCI_BAR0, f->bar, 4);
	assert_true(f->bar >= X86_PCI_MMIO_BASE && f->bar < X86_PCI_MMIO_BASE + X86_PCI_MMIO_SIZE);
	for (int i = 1; i < PCI_NUM_BARS; i++)
		assert_int_equal(cfg_read(f, PCI_BAR0 + 4 * i, 4), 0);
}

static void test_capabilities(void **state)
{
	struct fx *f = *state;
	static const struct { uint8_t type; uint32_t off, minlen; } want[] = {
		{ VIRTIO_PCI_CAP_COMMON_CFG, VPCI_COMMON_OFF, 0x38 },
		{ VIRTIO_PCI_CAP_NOTIFY_CFG, VPCI_NOTIFY_OFF, 2 },
		{ VIRTIO_PCI_CAP_ISR_CFG, VPCI_ISR_OFF, 1 },
		{ VIRTIO_PCI_CAP_DEVICE_CFG, VPCI_DEVICE_OFF, 8 },
	};
	unsigned c, m;

	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		c = find_vcap(f, want[i].type);
		assert_true(c >= 0x40);
		assert_int_equal(cfg_read(f, c + 4, 1), VPCI_BAR);
		assert_int_equal(cfg_read(f, c + 8, 4), want[i].off);
		assert_true(cfg_read(f, c + 12, 4) >= want[i].minlen);
		/* §4.1.4.1: the structure lies inside the BAR. */
		assert_true(cfg_read(f, c + 8, 4) + cfg_read(f, c + 12, 4) <= VPCI_BAR_SIZE);
		assert_int_equal(cfg_read(f, c + 2, 1), want[i].type == VIRTIO_PCI_CAP_NOTIFY_CFG ? 20 : 16);
	}
	/* §4.1.4.4: multiplier, and room for every queue's notify_off * multiplier + 2. */
	c = find_vcap(f, VIRTIO_PCI_CAP_NOTIFY_CFG);
	assert_int_equal(cfg_read(f, c + 16, 4), VPCI_NOTIFY_MULT);
	assert_true(cfg_read(f, c + 12, 4) >= (NQ - 1) * VPCI_NOTIFY_MULT + 2);
	assert_int_equal(cfg_read(f, find_vcap(f, VIRTIO_PCI_CAP_DEVICE_CFG) + 12, 4), 8);
	/* §4.1.4.9: the PCI configuration access capability. */
	c = find_vcap(f, VIRTIO_PCI_CAP_PCI_CFG);
	assert_true(c >= 0x40);
	assert_int_equal(cfg_read(f, c + 2, 1), 20);
	/* MSI-X: table size N-1 = NQ (config + one per queue), table and PBA in BAR0, off at reset. */
	m = find_cap(f, PCI_CAP_ID_MSIX);
	assert_true(m >= 0x40);
	assert_int_equal(cfg_read(f, m + 2, 2), NQ);
	assert_int_equal(cfg_read(f, m + 4, 4), VPCI_MSIX_TABLE_OFF | VPCI_BAR);
	assert_int_equal(cfg_read(f, m + 8, 4), VPCI_MSIX_PBA_OFF | VPCI_BAR);
	/* Only enable and function mask are writable in Message Control. */
	cfg_write(f, m + 2, 0xffff, 2);
	assert_int_equal(cfg_read(f, m + 2, 2), VPCI_MSIX_ENABLE | VPCI_MSIX_FMASK | NQ);
	cfg_write(f, m + 4, 0, 4);
	assert_int_equal(cfg_read(f, m + 4, 4), VPCI_MSIX_TABLE_OFF | VPCI_BAR);
}

/* ---------- common configuration ---------- */

static void test_common_features(void **state)
{
	struct fx *f = *state;

	assert_int_equal(bar_read(f, VPCI_COMMON_NUMQ, 2), NQ);
	bar_write(f, VPCI_COMMON_DFSELECT, 0, 4);
	assert_int_equal(bar_read(f, VPCI_COMMON_DF, 4) & (1u << TEST_FEATURE), 1u << TEST_FEATURE);
	bar_write(f, VPCI_COMMON_DFSELECT, 1, 4);
	assert_int_equal(bar_read(f, VPCI_COMMON_DF, 4) & 1, 1);    /* VERSION_1 is bit 32 */
	assert_int_equal(bar_read(f, VPCI_COMMON_DFSELECT, 4), 1);
	bar_write(f, VPCI_COMMON_DFSELECT, 2, 4);
	assert_int_equal(bar_read(f, VPCI_COMMON_DF, 4), 0);
	/* device_feature is read-only. */
	bar_write(f, VPCI_COMMON_DFSELECT, 0, 4);
	bar_write(f, VPCI_COMMON_DF, 0, 4);
	assert_int_not_equal(bar_read(f, VPCI_COMMON_DF, 4), 0);

	bar_write(f, VPCI_COMMON_GFSELECT, 1, 4);
	bar_write(f, VPCI_COMMON_GF, 1, 4);
	bar_write(f, VPCI_COMMON_GFSELECT, 0, 4);
	bar_write(f, VPCI_COMMON_GF, 1u << TEST_FEATURE, 4);
	assert_int_equal(bar_read(f, VPCI_COMMON_GF, 4), 1u << TEST_FEATURE);
	assert_int_equal(f->d->guest_features, (1ull << 32) | (1ull << TEST_FEATURE));
	/* Fields are written at their natural width; a byte write into a dword field is dropped. */
	bar_write(f, VPCI_COMMON_GF + 1, 0xff, 1);
	assert_int_equal(bar_read(f, VPCI_COMMON_GF, 4), 1u << TEST_FEATURE);
	/* Reads of any width see the same bytes. */
	assert_int_equal(bar_read(f, VPCI_COMMON_GF, 1), 1u << TEST_FEATURE);
	assert_int_equal(bar_read(f, VPCI_COMMON_DFSELECT, 8), bar_read(f, VPCI_COMMON_DFSELECT, 4) |
			 bar_read(f, VPCI_COMMON_DF, 4) << 32);
}

static void set_features(struct fx *f, uint64_t features)
{
	bar_write(f, VPCI_COMMON_GFSELECT, 0, 4);
	bar_write(f, VPCI_COMMON_GF, (uint32_t)features, 4);
	bar_write(f, VPCI_COMMON_GFSELECT, 1, 4);
	bar_write(f, VPCI_COMMON_GF, (uint32_t)(features >> 32), 4);
}

static uint8_t status(struct fx *f)
{
	return (uint8_t)bar_read(f, VPCI_COMMON_STATUS, 1);
}

static void test_status_and_features_ok(void **state)
{
	struct fx *f = *state;
	const uint8_t drv = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	const unsigned resets = f->tv->resets;   /* virtio_dev_init resets once */

	bar_write(f, VPCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	bar_write(f, VPCI_COMMON_STATUS, drv, 1);
	assert_int_equal(status(f), drv);
	/* §3.1.1: no VERSION_1 → FEATURES_OK reads back clear (a modern-only device). */
	set_features(f, 1ull << TEST_FEATURE);
	bar_write(f, VPCI_COMMON_STATUS, drv | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_int_equal(status(f), drv);
	/* A bit the device never offered: refused too. */
	set_features(f, (1ull << 32) | (1ull << 3));
	bar_write(f, VPCI_COMMON_STATUS, drv | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_int_equal(status(f) & VIRTIO_STATUS_FEATURES_OK, 0);
	/* A subset of the offer with VERSION_1: accepted; features are then frozen. */
	set_features(f, (1ull << 32) | (1ull << TEST_FEATURE));
	bar_write(f, VPCI_COMMON_STATUS, drv | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_int_equal(status(f), drv | VIRTIO_STATUS_FEATURES_OK);
	set_features(f, 1ull << 32);
	assert_int_equal(f->d->guest_features, (1ull << 32) | (1ull << TEST_FEATURE));
	/* The driver cannot set NEEDS_RESET. */
	bar_write(f, VPCI_COMMON_STATUS, drv | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET, 1);
	assert_int_equal(status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
	bar_write(f, VPCI_COMMON_STATUS, drv | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
	assert_int_equal(f->tv->activates, 1);
	/* Writing 0 resets (§4.1.4.3.2): status, features and queue setup are back to defaults. */
	bar_write(f, VPCI_COMMON_STATUS, 0, 1);
	assert_int_equal(status(f), 0);
	assert_int_equal(f->tv->resets, resets + 1);
	assert_int_equal(f->d->guest_features, 0);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_SIZE, 2), QMAX);
}

static void test_queue_registers(void **state)
{
	struct fx *f = *state;

	/* Defaults: size is the maximum, no vector, not enabled; queue_notify_off is the index. */
	for (unsigned q = 0; q < NQ; q++) {
		bar_write(f, VPCI_COMMON_Q_SELECT, q, 2);
		assert_int_equal(bar_read(f, VPCI_COMMON_Q_SELECT, 2), q);
		assert_int_equal(bar_read(f, VPCI_COMMON_Q_SIZE, 2), QMAX);
		assert_int_equal(bar_read(f, VPCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
		assert_int_equal(bar_read(f, VPCI_COMMON_Q_ENABLE, 2), 0);
		assert_int_equal(bar_read(f, VPCI_COMMON_Q_NOFF, 2), q);
	}
	/* §4.1.4.3.1: a queue beyond num_queues reads size 0 and takes no writes. */
	bar_write(f, VPCI_COMMON_Q_SELECT, NQ, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_SIZE, 2), 0);
	bar_write(f, VPCI_COMMON_Q_SIZE, 16, 2);
	bar_write(f, VPCI_COMMON_Q_ENABLE, 1, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_SIZE, 2), 0);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_ENABLE, 2), 0);
	bar_write(f, VPCI_COMMON_Q_SELECT, 0xffff, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);

	/* Queue 1: addresses as two dwords each (how Linux writes them) or one qword. */
	set_features(f, 1ull << 32);
	bar_write(f, VPCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	bar_write(f, VPCI_COMMON_Q_SELECT, 1, 2);
	bar_write(f, VPCI_COMMON_Q_SIZE, 16, 2);
	bar_write(f, VPCI_COMMON_Q_DESCLO, 0x10000, 4);
	bar_write(f, VPCI_COMMON_Q_DESCHI, 0, 4);
	bar_write(f, VPCI_COMMON_Q_AVAILLO, 0x11000, 8);
	bar_write(f, VPCI_COMMON_Q_USEDHI, 0, 4);
	bar_write(f, VPCI_COMMON_Q_USEDLO, 0x12000, 4);
	bar_write(f, VPCI_COMMON_Q_MSIX, 2, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_DESCLO, 8), 0x10000);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_AVAILLO, 4), 0x11000);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_USEDLO, 8), 0x12000);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_MSIX, 2), 2);
	/* A high dword on its own. */
	bar_write(f, VPCI_COMMON_Q_DESCHI, 0x1, 4);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_DESCLO, 8), 0x100010000ULL);
	bar_write(f, VPCI_COMMON_Q_DESCHI, 0, 4);
	/* A 2-byte write into a 64-bit field is not a natural access: dropped. */
	bar_write(f, VPCI_COMMON_Q_DESCLO, 0xffff, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_DESCLO, 8), 0x10000);
	/* queue_enable = 0 is ignored (§4.1.4.3.2); 1 brings the ring up. */
	bar_write(f, VPCI_COMMON_Q_ENABLE, 0, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_ENABLE, 2), 0);
	bar_write(f, VPCI_COMMON_Q_ENABLE, 1, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_ENABLE, 2), 1);
	assert_true(f->d->vq[1].ready);
	assert_int_equal(f->d->vq[1].size, 16);
	/* Once enabled the setup is frozen. */
	bar_write(f, VPCI_COMMON_Q_SIZE, 32, 2);
	bar_write(f, VPCI_COMMON_Q_DESCLO, 0x20000, 4);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_SIZE, 2), 16);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_DESCLO, 8), 0x10000);
	/* queue_notify_off, num_queues and config_generation are read-only. */
	bar_write(f, VPCI_COMMON_Q_NOFF, 7, 2);
	bar_write(f, VPCI_COMMON_NUMQ, 7, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_NOFF, 2), 1);
	assert_int_equal(bar_read(f, VPCI_COMMON_NUMQ, 2), NQ);
	assert_int_equal(status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);

	/* Queue 0: larger than the maximum, or not a power of two: NEEDS_RESET, not a crash. */
	bar_write(f, VPCI_COMMON_Q_SELECT, 0, 2);
	bar_write(f, VPCI_COMMON_Q_SIZE, QMAX * 2, 2);
	bar_write(f, VPCI_COMMON_Q_DESCLO, 0x20000, 4);
	bar_write(f, VPCI_COMMON_Q_AVAILLO, 0x21000, 4);
	bar_write(f, VPCI_COMMON_Q_USEDLO, 0x22000, 4);
	bar_write(f, VPCI_COMMON_Q_ENABLE, 1, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_ENABLE, 2), 0);
	assert_int_equal(status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	bar_write(f, VPCI_COMMON_STATUS, 0, 1);
	assert_int_equal(status(f), 0);
	assert_false(f->d->vq[1].ready);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
}

static void test_vectors_and_isr_and_device_cfg(void **state)
{
	struct fx *f = *state;

	/* A vector the table has reads back; one it has not reads NO_VECTOR (§4.1.5.1.2). */
	bar_write(f, VPCI_COMMON_MSIX, 0, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_MSIX, 2), 0);
	bar_write(f, VPCI_COMMON_MSIX, NQ + 1, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	bar_write(f, VPCI_COMMON_Q_MSIX, NQ, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_MSIX, 2), NQ);
	bar_write(f, VPCI_COMMON_Q_MSIX, 100, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);

	/* ISR: read clears (§4.1.4.5). */
	atomic_store(&f->d->isr, VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	assert_int_equal(bar_read(f, VPCI_ISR_OFF, 1), 3);
	assert_int_equal(bar_read(f, VPCI_ISR_OFF, 1), 0);
	atomic_store(&f->d->isr, VIRTIO_ISR_QUEUE);
	assert_int_equal(bar_read(f, VPCI_ISR_OFF, 4), 1);
	assert_int_equal(atomic_load(&f->d->isr), 0);

	/* Device configuration: served by the device, bounded by config_size. */
	assert_int_equal(bar_read(f, VPCI_DEVICE_OFF, 4), 0x6e6c696b);  /* "kiln" */
	assert_int_equal(bar_read(f, VPCI_DEVICE_OFF + 4, 4), 0x74726976);
	bar_write(f, VPCI_DEVICE_OFF + 2, 0x4141, 2);
	assert_memory_equal(f->tv->config, "kiAAvirt", 8);
	assert_int_equal(bar_read(f, VPCI_DEVICE_OFF + 6, 4), 0);        /* runs past the end */
	assert_int_equal(bar_read(f, VPCI_DEVICE_OFF + 8, 4), 0);
	bar_write(f, VPCI_DEVICE_OFF + 8, 0xffffffff, 4);
	assert_memory_equal(f->tv->config, "kiAAvirt", 8);
	/* A config change notification bumps config_generation. */
	pthread_mutex_lock(&f->d->lock);
	virtio_config_changed(f->d);
	pthread_mutex_unlock(&f->d->lock);
	assert_int_equal(bar_read(f, VPCI_COMMON_CFGGENERATION, 1), 1);
}

/* ---------- MSI-X ---------- */

static void msix_entry(struct fx *f, unsigned v, uint32_t addr, uint32_t data, bool masked)
{
	bar_write(f, VPCI_MSIX_TABLE_OFF + 16 * v, addr, 4);
	bar_write(f, VPCI_MSIX_TABLE_OFF + 16 * v + 4, 0, 4);
	bar_write(f, VPCI_MSIX_TABLE_OFF + 16 * v + 8, data, 4);
	bar_write(f, VPCI_MSIX_TABLE_OFF + 16 * v + 12, masked, 4);
}

static void config_irq(struct fx *f)
{
	pthread_mutex_lock(&f->d->lock);
	f->d->status |= VIRTIO_STATUS_DRIVER_OK;   /* config notifications need DRIVER_OK */
	virtio_config_changed(f->d);
	pthread_mutex_unlock(&f->d->lock);
}

static void test_msix_table_and_pba(void **state)
{
	struct fx *f = *state;
	unsigned m = find_cap(f, PCI_CAP_ID_MSIX);
	int efd0 = vector_fd(0);
	unsigned routes;

	assert_int_equal(stub_kvm()->nirqfd, NQ + 1);
	/* At reset every entry is masked, addresses 0 (PCI 3.0 §6.8.2.9). */
	for (unsigned v = 0; v <= NQ; v++) {
		assert_int_equal(bar_read(f, VPCI_MSIX_TABLE_OFF + 16 * v + 12, 4), 1);
		assert_int_equal(bar_read(f, VPCI_MSIX_TABLE_OFF + 16 * v, 8), 0);
	}
	assert_int_equal(bar_read(f, VPCI_MSIX_PBA_OFF, 8), 0);
	bar_write(f, VPCI_COMMON_MSIX, 0, 2);

	/* MSI-X off: nothing to send on (no INTx): dropped, not pending. */
	config_irq(f);
	assert_int_equal(drain(efd0), 0);
	assert_int_equal(bar_read(f, VPCI_MSIX_PBA_OFF, 8), 0);

	/* Program the entry while masked; enable with the function masked, as Linux does. */
	routes = stub_kvm()->set_routing;
	msix_entry(f, 0, 0xfee00000, 0x4041, true);
	assert_int_equal(bar_read(f, VPCI_MSIX_TABLE_OFF, 4), 0xfee00000);
	assert_int_equal(bar_read(f, VPCI_MSIX_TABLE_OFF + 8, 4), 0x4041);
	assert_int_equal(stub_kvm()->set_routing, routes);      /* masked: no route work yet */
	cfg_write(f, m + 2, VPCI_MSIX_ENABLE | VPCI_MSIX_FMASK, 2);
	config_irq(f);
	assert_int_equal(drain(efd0), 0);
	assert_int_equal(bar_read(f, VPCI_MSIX_PBA_OFF, 8), 1);  /* pending while masked */
	cfg_write(f, m + 2, VPCI_MSIX_ENABLE, 2);               /* function unmasked, entry still masked */
	assert_int_equal(drain(efd0), 0);
	assert_int_equal(bar_read(f, VPCI_MSIX_PBA_OFF, 8), 1);

	/* Unmasking the entry routes it and sends the pending message. */
	bar_write(f, VPCI_MSIX_TABLE_OFF + 12, 0, 4);
	assert_int_equal(drain(efd0), 1);
	assert_int_equal(bar_read(f, VPCI_MSIX_PBA_OFF, 8), 0);
	const struct kvm_irq_routing_entry *r = stub_kvm_route(vector_gsi(0));
	assert_non_null(r);
	assert_int_equal(r->u.msi.address_lo, 0xfee00000);
	assert_int_equal(r->u.msi.data, 0x4041);
	/* Unmasked: straight through. */
	config_irq(f);
	assert_int_equal(drain(efd0), 1);
	/* A new message while unmasked moves the route. */
	bar_write(f, VPCI_MSIX_TABLE_OFF + 8, 0x4042, 4);
	assert_int_equal(stub_kvm_route(vector_gsi(0))->u.msi.data, 0x4042);
	/* Function mask holds messages back again; clearing it delivers. */
	cfg_write(f, m + 2, VPCI_MSIX_ENABLE | VPCI_MSIX_FMASK, 2);
	config_irq(f);
	config_irq(f);
	assert_int_equal(drain(efd0), 0);
	assert_int_equal(bar_read(f, VPCI_MSIX_PBA_OFF, 1), 1);
	cfg_write(f, m + 2, VPCI_MSIX_ENABLE, 2);
	assert_int_equal(drain(efd0), 1);                       /* one pending bit: one message */
	/* The PBA is read-only. */
	bar_write(f, VPCI_MSIX_PBA_OFF, ~0ull, 8);
	assert_int_equal(bar_read(f, VPCI_MSIX_PBA_OFF, 8), 0);
	/* Vector Control keeps only the mask bit; odd-sized table writes are dropped. */
	bar_write(f, VPCI_MSIX_TABLE_OFF + 16 + 12, 0xfffffffe, 4);
	assert_int_equal(bar_read(f, VPCI_MSIX_TABLE_OFF + 16 + 12, 4), 0);
	bar_write(f, VPCI_MSIX_TABLE_OFF + 32, 0xffff, 2);
	bar_write(f, VPCI_MSIX_TABLE_OFF + 34, 0xffffffff, 4);
	assert_int_equal(bar_read(f, VPCI_MSIX_TABLE_OFF + 32, 4), 0);
	/* Qword writes cover two fields (address, then data + control). */
	bar_write(f, VPCI_MSIX_TABLE_OFF + 32, 0x00000000fee01000ULL, 8);
	bar_write(f, VPCI_MSIX_TABLE_OFF + 40, 0x0000000100000033ULL, 8);
	assert_int_equal(bar_read(f, VPCI_MSIX_TABLE_OFF + 32, 4), 0xfee01000);
	assert_int_equal(bar_read(f, VPCI_MSIX_TABLE_OFF + 40, 4), 0x33);
	assert_int_equal(bar_read(f, VPCI_MSIX_TABLE_OFF + 44, 4), 1);
	/* Beyond the table: reads 0. */
	assert_int_equal(bar_read(f, VPCI_MSIX_TABLE_OFF + 16 * (NQ + 1), 4), 0);
	/* MSI-X off again: dropped. */
	cfg_write(f, m + 2, 0, 2);
	config_irq(f);
	assert_int_equal(drain(efd0), 0);
	assert_int_equal(bar_read(f, VPCI_MSIX_PBA_OFF, 8), 0);
}

/* ---------- notifications ---------- */

static void test_notify_ioeventfd(void **state)
{
	struct fx *f = *state;
	const struct kvm_ioeventfd *e;
	uint32_t moved = 0xc8000000;

	/* Decode was on at add: one any-width (len 0) ioeventfd per queue at BAR + notify + q * multiplier. */
	assert_int_equal(stub_kvm()->nioev, NQ);
	for (unsigned q = 0; q < NQ; q++) {
		e = stub_kvm_ioeventfd(f->bar + VPCI_NOTIFY_OFF + q * VPCI_NOTIFY_MULT);
		assert_non_null(e);
		assert_int_equal(e->len, 0);
		assert_int_equal(e->fd, f->d->kick_fd[q]);
		assert_int_equal(e->flags & (KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH), 0);
	}
	/* Relocation moves them; decode off removes them. */
	cfg_write(f, PCI_BAR0, moved, 4);
	assert_int_equal(stub_kvm()->nioev, NQ);
	assert_null(stub_kvm_ioeventfd(f->bar + VPCI_NOTIFY_OFF));
	assert_non_null(stub_kvm_ioeventfd(moved + VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT));
	cfg_write(f, PCI_COMMAND, 0, 2);
	assert_int_equal(stub_kvm()->nioev, 0);
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_int_equal(stub_kvm()->nioev, NQ);
	f->bar = moved;

	/* A notify write that reaches kiln (no ioeventfd took it) kicks by hand, whatever its width. */
	drain(f->d->kick_fd[1]);
	bar_write(f, VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT, 1, 4);
	assert_int_equal(drain(f->d->kick_fd[1]), 1);
	assert_int_equal(drain(f->d->kick_fd[0]), 0);
	bar_write(f, VPCI_NOTIFY_OFF, 0, 2);
	assert_int_equal(drain(f->d->kick_fd[0]), 1);
	assert_int_equal(bar_read(f, VPCI_NOTIFY_OFF, 2), 0);
	/* Past the last queue: nothing. */
	bar_write(f, VPCI_NOTIFY_OFF + NQ * VPCI_NOTIFY_MULT, 0, 2);

	/* KVM refusing ioeventfds leaves every queue on the exit path, which still works. */
	stub_kvm()->fail_req = KVM_IOEVENTFD;
	stub_kvm()->fail_errno = ENOSPC;
	cfg_write(f, PCI_COMMAND, 0, 2);
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	stub_kvm()->fail_req = 0;
	bar_write(f, VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT, 1, 2);
	assert_int_equal(drain(f->d->kick_fd[1]), 1);
}

/* ---------- VIRTIO_PCI_CAP_PCI_CFG window ---------- */

static void test_pci_cfg_window(void **state)
{
	struct fx *f = *state;
	unsigned c = find_vcap(f, VIRTIO_PCI_CAP_PCI_CFG);

	assert_true(c);
	/* Read num_queues through the window (§4.1.4.9). */
	cfg_write(f, c + 4, VPCI_BAR, 1);
	cfg_write(f, c + 8, VPCI_COMMON_NUMQ, 4);
	cfg_write(f, c + 12, 2, 4);
	assert_int_equal(cfg_read(f, c + VPCI_CFG_DATA, 2), NQ);
	/* Write device_status through it. */
	cfg_write(f, c + 8, VPCI_COMMON_STATUS, 4);
	cfg_write(f, c + 12, 1, 4);
	cfg_write(f, c + VPCI_CFG_DATA, VIRTIO_STATUS_ACKNOWLEDGE, 4);
	assert_int_equal(status(f), VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(cfg_read(f, c + VPCI_CFG_DATA, 1), VIRTIO_STATUS_ACKNOWLEDGE);
	/* The ISR read through the window clears it like any read. */
	atomic_store(&f->d->isr, VIRTIO_ISR_CONFIG);
	cfg_write(f, c + 8, VPCI_ISR_OFF, 4);
	assert_int_equal(cfg_read(f, c + VPCI_CFG_DATA, 1), VIRTIO_ISR_CONFIG);
	assert_int_equal(atomic_load(&f->d->isr), 0);
	/* Invalid selections do nothing: length 3, misaligned offset, another BAR, past the BAR. */
	cfg_write(f, c + 8, VPCI_COMMON_STATUS, 4);
	cfg_write(f, c + 12, 3, 4);
	cfg_write(f, c + VPCI_CFG_DATA, 0, 4);
	cfg_write(f, c + 12, 2, 4);
	cfg_write(f, c + 8, VPCI_COMMON_STATUS + 1, 4);
	cfg_write(f, c + VPCI_CFG_DATA, 0, 4);
	cfg_write(f, c + 8, VPCI_COMMON_STATUS, 4);
	cfg_write(f, c + 12, 1, 4);
	cfg_write(f, c + 4, 1, 1);
	cfg_write(f, c + VPCI_CFG_DATA, 0, 4);
	cfg_write(f, c + 4, VPCI_BAR, 1);
	cfg_write(f, c + 8, VPCI_BAR_SIZE, 4);
	cfg_write(f, c + VPCI_CFG_DATA, 0, 4);
	assert_int_equal(status(f), VIRTIO_STATUS_ACKNOWLEDGE);
	/* cap_vndr, cap_next, cap_len and cfg_type are read-only. */
	cfg_write(f, c, 0, 4);
	assert_int_equal(cfg_read(f, c, 1), PCI_CAP_ID_VNDR);
	assert_int_equal(cfg_read(f, c + 3, 1), VIRTIO_PCI_CAP_PCI_CFG);
}

/* ---------- a hostile driver ---------- */

/* Random config and BAR accesses of every size: nothing may crash or trip the sanitizers. */
static void test_random_accesses(void **state)
{
	struct fx *f = *state;
	unsigned seed = 12345;
	static const uint32_t sizes[] = { 1, 2, 4, 8 };

	for (unsigned i = 0; i < 20000; i++) {
		uint32_t r = (uint32_t)rand_r(&seed), len = sizes[r % 4], off;
		uint8_t b[8];
		uint64_t v = ((uint64_t)rand_r(&seed) << 32) | (uint32_t)rand_r(&seed);

		memcpy(b, &v, 8);
		if (r & 0x10) {
			/* Leave BAR0 and the command register alone so the BAR stays reachable. */
			off = (uint32_t)rand_r(&seed) % 256;
			if (len == 8 || (off >= PCI_BAR0 && off < PCI_BAR0 + 4) || off < 8)
				continue;
			pci_cfg_access(f->vm.pci, f->slot, 0, off, b, len, r & 0x20);
		} else {
			off = (uint32_t)rand_r(&seed) % VPCI_BAR_SIZE;
			if (off + len > VPCI_BAR_SIZE)
				continue;
			bus_access(&f->vm.mmio, f->bar + off, b, len, r & 0x20);
		}
	}
	/* Still a device a driver can talk to. */
	bar_write(f, VPCI_COMMON_STATUS, 0, 1);
	assert_int_equal(status(f), 0);
	assert_int_equal(bar_read(f, VPCI_COMMON_NUMQ, 2), NQ);
}

static void test_stats_and_no_bus(void **state)
{
	struct fx *f = *state;
	char out[1024];
	FILE *tmp = tmpfile();
	size_t n;
	struct vm vm;
	struct tvdev *t;

	assert_non_null(tmp);
	assert_string_equal(f->vm.devices[f->vm.ndevices - 1].name, "virtio-test0");
	f->vm.devices[f->vm.ndevices - 1].print_stats(f->vm.devices[f->vm.ndevices - 1].state, fileno(tmp));
	rewind(tmp);
	n = fread(out, 1, sizeof(out) - 1, tmp);
	out[n] = 0;
	fclose(tmp);
	assert_non_null(strstr(out, "virtio-test0: status=0"));
	assert_non_null(strstr(out, "msix=off"));

	/* Without a PCI bus the transport refuses, and the caller still owns the device. */
	stub_vm_init(&vm, 0);
	vm.cfg.virtio_transport = VIRTIO_TRANSPORT_MMIO;
	assert_int_equal(ioloop_init(&vm.io), 0);
	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(virtio_dev_init(&t->vdev, &vm, "virtio-test1", 3, 0, 1, 8, &tv_ops, t), 0);
	assert_int_equal(virtio_pci_add(&vm, &t->vdev), -ENODEV);
	assert_int_equal(vm.ndevices, 0);
	virtio_dev_destroy(&t->vdev);
	ioloop_destroy(&vm.io);
	stub_vm_fini(&vm);
}

/* ---------- virtio-rng end to end ---------- */

#define RING 0x100000ULL   /* desc table; avail at +0x1000, used at +0x2000 */
#define BUFS 0x200000ULL
#define RQ 8

static void *gp(struct fx *f, gpa_t gpa, uint64_t len)
{
	void *p = vm_gpa(&f->vm, gpa, len);

	assert_non_null(p);
	return p;
}

static void put_desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy(gp(f, RING + 16 * i, 16), &d, 16);
}

static void offer(struct fx *f, uint16_t slot, uint16_t head)
{
	uint16_t *ring = gp(f, RING + 0x1000 + 4 + 2 * (slot % RQ), 2), *idx = gp(f, RING + 0x1000 + 2, 2);

	*ring = head;
	__atomic_store_n(idx, (uint16_t)(slot + 1), __ATOMIC_RELEASE);
}

static uint16_t used_idx(struct fx *f)
{
	return __atomic_load_n((uint16_t *)gp(f, RING + 0x2000 + 2, 2), __ATOMIC_ACQUIRE);
}

static bool wait_used(struct fx *f, uint16_t want)
{
	for (int i = 0; i < 500 && used_idx(f) != want; i++)
		usleep(10000);
	return used_idx(f) == want;
}

static bool wait_fd(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 5000) == 1;
}

/* What Linux's virtio_pci_modern + virtio-rng do, in order: features, MSI-X, queue 0 on vector 1, DRIVER_OK. */
static void rng_driver_up(struct fx *f)
{
	unsigned m = find_cap(f, PCI_CAP_ID_MSIX);
	const uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	bar_write(f, VPCI_COMMON_STATUS, 0, 1);
	bar_write(f, VPCI_COMMON_STATUS, s, 1);
	set_features(f, (1ull << 32) | (1ull << VIRTIO_RING_F_EVENT_IDX));
	bar_write(f, VPCI_COMMON_STATUS, s | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_int_equal(status(f), s | VIRTIO_STATUS_FEATURES_OK);
	cfg_write(f, m + 2, VPCI_MSIX_ENABLE | VPCI_MSIX_FMASK, 2);
	msix_entry(f, 0, 0xfee00000, 0x30, false);
	msix_entry(f, 1, 0xfee00000, 0x31, false);
	cfg_write(f, m + 2, VPCI_MSIX_ENABLE, 2);
	bar_write(f, VPCI_COMMON_MSIX, 0, 2);
	bar_write(f, VPCI_COMMON_Q_SELECT, 0, 2);
	assert_true(bar_read(f, VPCI_COMMON_Q_SIZE, 2) >= RQ);
	bar_write(f, VPCI_COMMON_Q_SIZE, RQ, 2);
	bar_write(f, VPCI_COMMON_Q_DESCLO, RING, 4);
	bar_write(f, VPCI_COMMON_Q_DESCHI, 0, 4);
	bar_write(f, VPCI_COMMON_Q_AVAILLO, RING + 0x1000, 4);
	bar_write(f, VPCI_COMMON_Q_AVAILHI, 0, 4);
	bar_write(f, VPCI_COMMON_Q_USEDLO, RING + 0x2000, 4);
	bar_write(f, VPCI_COMMON_Q_USEDHI, 0, 4);
	bar_write(f, VPCI_COMMON_Q_MSIX, 1, 2);
	assert_int_equal(bar_read(f, VPCI_COMMON_Q_MSIX, 2), 1);
	bar_write(f, VPCI_COMMON_Q_ENABLE, 1, 2);
	bar_write(f, VPCI_COMMON_STATUS, s | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
	assert_int_equal(status(f), s | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static int rng_setup(void **state)
{
	struct fx *f = fx_new();

	f->vm.cfg.rng = true;
	assert_int_equal(rng_init(&f->vm), 0);
	assert_string_equal(f->vm.devices[f->vm.ndevices - 1].name, "virtio-rng0");
	fx_find(f);
	*state = f;
	return 0;
}

static void test_rng(void **state)
{
	struct fx *f = *state;
	uint8_t zero[64] = { 0 };
	const uint8_t *b;
	char out[1024];
	FILE *tmp;
	size_t n;

	assert_int_equal(cfg_read(f, PCI_DEVICE_ID, 2), 0x1040 + VIRTIO_ID_RNG);
	assert_int_equal(bar_read(f, VPCI_COMMON_NUMQ, 2), 1);
	assert_int_equal(find_vcap(f, VIRTIO_PCI_CAP_DEVICE_CFG), 0);   /* §5.4.4: no device configuration */
	rng_driver_up(f);
	assert_int_equal(ioloop_start(&f->vm.io), 0);

	/* Request 1: one 64-byte writable buffer. */
	memset(gp(f, BUFS, 256 * KiB), 0, 256 * KiB);
	put_desc(f, 0, BUFS, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0, 0);
	bar_write(f, VPCI_NOTIFY_OFF, 0, 2);
	assert_true(wait_used(f, 1));
	assert_int_equal(*(uint32_t *)gp(f, RING + 0x2000 + 4 + 4, 4), 64);     /* used.ring[0].len */
	assert_memory_not_equal(gp(f, BUFS, 64), zero, 64);
	assert_true(wait_fd(vector_fd(1)));
	assert_int_equal(drain(vector_fd(1)), 1);

	/* Request 2: a readable buffer (ignored) then a 160 KiB writable chain: capped at 64 KiB. */
	put_desc(f, 1, BUFS + 0x1000, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, 2, BUFS + 0x2000, 96 * KiB, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	put_desc(f, 3, BUFS + 0x2000 + 96 * KiB, 64 * KiB, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 1, 1);
	bar_write(f, VPCI_NOTIFY_OFF, 0, 2);
	assert_true(wait_used(f, 2));
	assert_int_equal(*(uint32_t *)gp(f, RING + 0x2000 + 4 + 8 + 4, 4), 64 * KiB);
	assert_memory_equal(gp(f, BUFS + 0x1000, 16), zero, 16);                /* readable: untouched */
	b = gp(f, BUFS + 0x2000 + 64 * KiB - 64, 128);
	assert_memory_not_equal(b, zero, 64);
	assert_memory_equal(b + 64, zero, 64);                                   /* past the cap: untouched */

	/* A hostile chain (a loop) puts the device into NEEDS_RESET, and the VM carries on. */
	put_desc(f, 4, BUFS, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 5);
	put_desc(f, 5, BUFS, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 4);
	offer(f, 2, 4);
	bar_write(f, VPCI_NOTIFY_OFF, 0, 2);
	for (int i = 0; i < 500 && !(status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET); i++)
		usleep(10000);
	assert_true(status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(wait_fd(vector_fd(0)));                                       /* config change (§2.1.2) */
	ioloop_stop(&f->vm.io);

	tmp = tmpfile();
	assert_non_null(tmp);
	f->vm.devices[f->vm.ndevices - 1].print_stats(f->vm.devices[f->vm.ndevices - 1].state, fileno(tmp));
	rewind(tmp);
	n = fread(out, 1, sizeof(out) - 1, tmp);
	out[n] = 0;
	fclose(tmp);
	assert_non_null(strstr(out, "virtio-rng0: served=65600 bytes requests=2 getrandom_errors=0\n"));
	assert_non_null(strstr(out, "msix=on"));
}

static void test_rng_off(void **state)
{
	struct fx *f = fx_new();

	assert_int_equal(rng_init(&f->vm), 0);               /* no --rng: no device */
	assert_int_equal(f->vm.ndevices, 1);                  /* just the bus */
	/* --rng with the PCI transport but no bus: an error, and nothing leaks (ASan). */
	stub_vm_fini(&f->vm);
	ioloop_destroy(&f->vm.io);
	stub_vm_init(&f->vm, 0);
	assert_int_equal(ioloop_init(&f->vm.io), 0);
	f->vm.cfg.rng = true;
	f->vm.cfg.virtio_transport = VIRTIO_TRANSPORT_PCI;
	assert_int_equal(rng_init(&f->vm), -ENODEV);
	assert_int_equal(f->vm.ndevices, 0);
	*state = f;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_common_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_and_features_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vectors_and_isr_and_device_cfg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_table_and_pba, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_ioeventfd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pci_cfg_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_and_no_bus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rng, rng_setup, teardown),
		cmocka_unit_test_teardown(test_rng_off, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
