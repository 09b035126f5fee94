/* virtio-pci modern transport (virtio 1.2 §4.1): one memory BAR with the virtio structures and MSI-X. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "core/log.h"
#include "core/vm.h"
#include "devices/pci.h"
#include "virtio/virtio.h"
#include "virtio/virtio_pci.h"

/* §4.1.2.1: non-transitional devices SHOULD have a Subsystem Device ID of 0x40 or higher. */
_Static_assert(VPCI_DEVICE_ID_BASE >= 0x40, "subsystem id");

struct vpci_vec {
	uint32_t addr_lo, addr_hi, data, ctrl;  /* MSI-X table entry as the guest wrote it (PCI 3.0 §6.8.2.6-9) */
	unsigned gsi;                           /* MSI route kiln allocated for it */
	int efd;                                /* irqfd: a write raises gsi in KVM */
	bool irqfd;                             /* efd is bound to gsi */
};

struct vpci {
	struct pci_dev pdev;
	struct virtio_dev *d;
	struct vm *vm;
	unsigned nvec;                          /* config vector + one per queue */
	uint8_t msix_cap, cfg_cap;              /* capability offsets in config space */
	uint32_t notify_len;
	/* MSI-X state, under d->lock: Message Control as last written, and the table. */
	bool msix_enabled, msix_fmask;
	struct vpci_vec vec[VPCI_MAX_VECTORS];
	uint64_t pba;                           /* pending bits (§6.8.2.10); VPCI_MAX_VECTORS <= 64 */
	/* Queue-notify ioeventfds, under the PCI bus lock (only bar_remap and teardown touch them). */
	struct { bool on; uint64_t addr; } ioev[VIRTIO_MAX_QUEUES];
	bool ioev_warned;
	struct {
		uint64_t msix_sent;      /* vector fired through its irqfd */
		uint64_t msix_pending;   /* fired while masked: PBA bit set */
		uint64_t msix_dropped;   /* fired with MSI-X off or NO_VECTOR */
		uint64_t mmio_kicks;     /* notify writes that reached kiln (no ioeventfd took them) */
		uint64_t bad;            /* accesses of the wrong size or place */
	} stats;
};

_Static_assert(VPCI_MAX_VECTORS <= 64, "the PBA is one qword");
_Static_assert(VPCI_MSIX_TABLE_OFF + VPCI_MAX_VECTORS * 16 <= VPCI_MSIX_PBA_OFF, "MSI-X table fits its page");
_Static_assert(VPCI_NOTIFY_OFF + VIRTIO_MAX_QUEUES * VPCI_NOTIFY_MULT <= VPCI_MSIX_TABLE_OFF, "notify fits");
_Static_assert(VPCI_MSIX_PBA_OFF + 8 <= VPCI_BAR_SIZE, "PBA fits the BAR");

static uint64_t get_le(const uint8_t *p, uint32_t len)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, uint64_t v, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---------- MSI-X (PCI 3.0 §6.8.2), d->lock held ---------- */

static bool vec_masked(const struct vpci *t, unsigned v)
{
	return t->msix_fmask || (t->vec[v].ctrl & VPCI_MSIX_ENTRY_MASKED);
}

/* Point the vector's GSI at the message the guest wrote; KVM_SET_GSI_ROUTING only when it changed. */
static void vec_route(struct vpci *t, unsigned v)
{
	irq_msi_set(&t->vm->irqr, t->vec[v].gsi, t->vec[v].addr_lo, t->vec[v].addr_hi, t->vec[v].data);
}

static void vec_signal(struct vpci *t, unsigned v)
{
	uint64_t one = 1;

	if (write(t->vec[v].efd, &one, sizeof(one)) < 0)
		log_warn("%s: MSI-X vector %u: %s", t->d->name, v, strerror(errno));
	t->stats.msix_sent++;
}

/*
 * The device wants vector v: deliver it, or remember it in the PBA while it
 * is masked (§6.8.2.10: the function sets the pending bit and sends the
 * message once unmasked). With MSI-X off there is nothing to send on: kiln
 * offers no INTx (interrupt pin 0), so the event only lives on in the ISR.
 */
static void vec_fire(struct vpci *t, uint16_t v)
{
	if (v >= t->nvec || !t->msix_enabled) {
		t->stats.msix_dropped++;
		return;
	}
	if (vec_masked(t, v)) {
		t->pba |= 1ull << v;
		t->stats.msix_pending++;
		return;
	}
	vec_signal(t, v);
}

/* Vector v may now deliver: route it, then send what it held back. */
static void vec_live(struct vpci *t, unsigned v)
{
	vec_route(t, v);
	if (t->pba & (1ull << v)) {
		t->pba &= ~(1ull << v);
		vec_signal(t, v);
	}
}

static void vpci_notify_queue(struct virtio_dev *d, unsigned q)
{
	vec_fire(d->transport, d->qcfg[q].msix_vector);
}

static void vpci_notify_config(struct virtio_dev *d)
{
	vec_fire(d->transport, d->config_msix_vector);
}

static const struct virtio_transport_ops vpci_tops = {
	.notify_queue = vpci_notify_queue,
	.notify_config = vpci_notify_config,
};

static void msix_table_read(struct vpci *t, uint32_t off, uint8_t *data, uint32_t len)
{
	for (uint32_t k = 0; k < len; k++) {
		uint32_t o = off + k, v = o / 16, w = (o % 16) / 4;
		uint32_t word;

		if (v >= t->nvec) {
			data[k] = 0;
			continue;
		}
		word = w == 0 ? t->vec[v].addr_lo : w == 1 ? t->vec[v].addr_hi : w == 2 ? t->vec[v].data : t->vec[v].ctrl;
		data[k] = (uint8_t)(word >> (8 * (o % 4)));
	}
}

/* §6.8.2: software uses aligned dword or qword accesses; anything else is dropped. */
static void msix_table_write(struct vpci *t, uint32_t off, const uint8_t *data, uint32_t len)
{
	unsigned v = off / 16;
	bool was_masked, masked, msg_changed = false;

	if ((len != 4 && len != 8) || (off & (len - 1)) || v >= t->nvec) {
		t->stats.bad++;
		return;
	}
	was_masked = vec_masked(t, v);
	for (uint32_t k = 0; k < len; k += 4) {
		uint32_t w = ((off + k) % 16) / 4, val = (uint32_t)get_le(data + k, 4);

		switch (w) {
		case 0:
			msg_changed |= t->vec[v].addr_lo != val;
			t->vec[v].addr_lo = val;
			break;
		case 1:
			msg_changed |= t->vec[v].addr_hi != val;
			t->vec[v].addr_hi = val;
			break;
		case 2:
			msg_changed |= t->vec[v].data != val;
			t->vec[v].data = val;
			break;
		default:
			/* Only the mask bit of Vector Control is defined (§6.8.2.9); the rest reads 0. */
			t->vec[v].ctrl = val & VPCI_MSIX_ENTRY_MASKED;
			break;
		}
	}
	masked = vec_masked(t, v);
	/* Routes follow the table while a vector can deliver; a masked one is routed when it is unmasked. */
	if (t->msix_enabled && !masked && (was_masked || msg_changed))
		vec_live(t, v);
}

/* Message Control changed (config write, PCI bus lock held): enable and function mask. */
static void msix_control(struct vpci *t)
{
	uint16_t ctrl = (uint16_t)get_le(t->pdev.cfg + t->msix_cap + 2, 2);

	pthread_mutex_lock(&t->d->lock);
	t->msix_enabled = ctrl & VPCI_MSIX_ENABLE;
	t->msix_fmask = ctrl & VPCI_MSIX_FMASK;
	if (t->msix_enabled && !t->msix_fmask)
		for (unsigned v = 0; v < t->nvec; v++)
			if (!vec_masked(t, v))
				vec_live(t, v);
	pthread_mutex_unlock(&t->d->lock);
}

/* ---------- common configuration (§4.1.4.3), d->lock held ---------- */

/* The structure as the driver sees it right now: reads of any width are served from it. */
static void common_snapshot(struct vpci *t, uint8_t *c)
{
	struct virtio_dev *d = t->d;
	bool qok = d->queue_sel < d->nqueues;
	const struct virtio_queue_cfg *qc = qok ? &d->qcfg[d->queue_sel] : NULL;

	memset(c, 0, VPCI_COMMON_LEN);
	put_le(c + VPCI_COMMON_DFSELECT, d->host_features_sel, 4);
	put_le(c + VPCI_COMMON_DF, virtio_read_host_features(d), 4);
	put_le(c + VPCI_COMMON_GFSELECT, d->guest_features_sel, 4);
	put_le(c + VPCI_COMMON_GF, virtio_read_guest_features(d), 4);
	put_le(c + VPCI_COMMON_MSIX, d->config_msix_vector, 2);
	put_le(c + VPCI_COMMON_NUMQ, d->nqueues, 2);
	c[VPCI_COMMON_STATUS] = d->status;
	c[VPCI_COMMON_CFGGENERATION] = (uint8_t)d->config_generation;
	put_le(c + VPCI_COMMON_Q_SELECT, d->queue_sel, 2);
	/* §4.1.4.3.1: a queue that does not exist reads size 0. */
	put_le(c + VPCI_COMMON_Q_SIZE, qc ? qc->size : 0, 2);
	put_le(c + VPCI_COMMON_Q_MSIX, qc ? qc->msix_vector : VIRTIO_MSI_NO_VECTOR, 2);
	put_le(c + VPCI_COMMON_Q_ENABLE, qc ? qc->enabled : 0, 2);
	put_le(c + VPCI_COMMON_Q_NOFF, qok ? d->queue_sel : 0, 2);
	put_le(c + VPCI_COMMON_Q_DESCLO, qc ? qc->desc : 0, 8);
	put_le(c + VPCI_COMMON_Q_AVAILLO, qc ? qc->avail : 0, 8);
	put_le(c + VPCI_COMMON_Q_USEDLO, qc ? qc->used : 0, 8);
}

/* A vector the table has, or NO_VECTOR: §4.1.5.1.2 "mapping failed" reads back as NO_VECTOR. */
static uint16_t vector_or_none(const struct vpci *t, uint64_t v)
{
	return v < t->nvec ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

static const struct { uint8_t off, size; } common_fields[] = {
	{ VPCI_COMMON_DFSELECT, 4 }, { VPCI_COMMON_DF, 4 }, { VPCI_COMMON_GFSELECT, 4 }, { VPCI_COMMON_GF, 4 },
	{ VPCI_COMMON_MSIX, 2 }, { VPCI_COMMON_NUMQ, 2 }, { VPCI_COMMON_STATUS, 1 }, { VPCI_COMMON_CFGGENERATION, 1 },
	{ VPCI_COMMON_Q_SELECT, 2 }, { VPCI_COMMON_Q_SIZE, 2 }, { VPCI_COMMON_Q_MSIX, 2 }, { VPCI_COMMON_Q_ENABLE, 2 },
	{ VPCI_COMMON_Q_NOFF, 2 }, { VPCI_COMMON_Q_DESCLO, 8 }, { VPCI_COMMON_Q_AVAILLO, 8 }, { VPCI_COMMON_Q_USEDLO, 8 },
};

/* Replace bytes [shift, shift+len) of a 64-bit address: drivers write them as two dwords (§4.1.3.1). */
static uint64_t merge64(uint64_t old, uint64_t v, unsigned shift, uint32_t len)
{
	uint64_t mask = len == 8 ? ~0ull : ((1ull << (8 * len)) - 1) << (8 * shift);

	return (old & ~mask) | ((v << (8 * shift)) & mask);
}

static void common_write(struct vpci *t, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_dev *d = t->d;
	struct virtio_queue_cfg *qc = d->queue_sel < d->nqueues ? &d->qcfg[d->queue_sel] : NULL;
	uint64_t v = get_le(data, len);
	unsigned f, shift;

	/* §4.1.3.1: each field is written with its natural width; 64-bit ones may come as two dwords. */
	for (f = 0; f < ARRAY_SIZE(common_fields); f++)
		if (off >= common_fields[f].off && off < common_fields[f].off + common_fields[f].size)
			break;
	if (f == ARRAY_SIZE(common_fields)) {
		t->stats.bad++;
		return;
	}
	shift = off - common_fields[f].off;
	if (!(shift == 0 && len == common_fields[f].size) && !(common_fields[f].size == 8 && len == 4 && shift % 4 == 0)) {
		t->stats.bad++;
		return;
	}
	switch (common_fields[f].off) {
	case VPCI_COMMON_DFSELECT:
		d->host_features_sel = (uint32_t)v;
		break;
	case VPCI_COMMON_GFSELECT:
		d->guest_features_sel = (uint32_t)v;
		break;
	case VPCI_COMMON_GF:
		virtio_write_guest_features(d, (uint32_t)v);
		break;
	case VPCI_COMMON_MSIX:
		d->config_msix_vector = vector_or_none(t, v);
		break;
	case VPCI_COMMON_STATUS:
		virtio_write_status(d, (uint8_t)v);
		break;
	case VPCI_COMMON_Q_SELECT:
		d->queue_sel = (uint16_t)v;
		break;
	case VPCI_COMMON_Q_MSIX:
		if (qc)
			qc->msix_vector = vector_or_none(t, v);
		break;
	case VPCI_COMMON_Q_ENABLE:
		/* §4.1.4.3.2: the driver MUST NOT write 0; once enabled the queue's setup is frozen. */
		if (qc && v == 1 && !qc->enabled)
			(void)virtio_queue_enable(d, d->queue_sel);
		break;
	case VPCI_COMMON_Q_SIZE:
		if (qc && !qc->enabled)
			qc->size = (uint16_t)v;
		break;
	case VPCI_COMMON_Q_DESCLO:
		if (qc && !qc->enabled)
			qc->desc = merge64(qc->desc, v, shift, len);
		break;
	case VPCI_COMMON_Q_AVAILLO:
		if (qc && !qc->enabled)
			qc->avail = merge64(qc->avail, v, shift, len);
		break;
	case VPCI_COMMON_Q_USEDLO:
		if (qc && !qc->enabled)
			qc->used = merge64(qc->used, v, shift, len);
		break;
	default:
		/* Read-only: device_feature, num_queues, config_generation, queue_notify_off. */
		break;
	}
}

/* ---------- the BAR ---------- */

static void vpci_bar_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct vpci *t = opaque;
	struct virtio_dev *d = t->d;
	uint8_t c[VPCI_COMMON_LEN];

	/* Notifications take no lock: kick_fd[] is fixed after init (§4.1.4.4: the address names the queue). */
	if (off >= VPCI_NOTIFY_OFF && off < VPCI_NOTIFY_OFF + t->notify_len) {
		if (is_write) {
			__atomic_fetch_add(&t->stats.mmio_kicks, 1, __ATOMIC_RELAXED);
			virtio_kick(d, (unsigned)(off - VPCI_NOTIFY_OFF) / VPCI_NOTIFY_MULT);
		} else {
			memset(data, 0, len);
		}
		return;
	}
	if (!is_write)
		memset(data, 0, len);
	pthread_mutex_lock(&d->lock);
	if (off < VPCI_COMMON_LEN && off + len <= VPCI_COMMON_LEN) {
		if (is_write) {
			common_write(t, (uint32_t)off, data, len);
		} else {
			common_snapshot(t, c);
			memcpy(data, c + off, len);
		}
	} else if (off == VPCI_ISR_OFF) {
		/* §4.1.4.5: reading the ISR status clears it. */
		if (!is_write)
			data[0] = atomic_exchange(&d->isr, 0);
	} else if (off >= VPCI_DEVICE_OFF && off < VPCI_DEVICE_OFF + VPCI_REGION_SIZE) {
		if (is_write)
			virtio_config_write(d, (uint32_t)(off - VPCI_DEVICE_OFF), data, len);
		else
			virtio_config_read(d, (uint32_t)(off - VPCI_DEVICE_OFF), data, len);
	} else if (off >= VPCI_MSIX_TABLE_OFF && off < VPCI_MSIX_TABLE_OFF + t->nvec * 16u) {
		if (is_write)
			msix_table_write(t, (uint32_t)(off - VPCI_MSIX_TABLE_OFF), data, len);
		else
			msix_table_read(t, (uint32_t)(off - VPCI_MSIX_TABLE_OFF), data, len);
	} else if (off >= VPCI_MSIX_PBA_OFF && off + len <= VPCI_MSIX_PBA_OFF + 8) {
		/* The PBA is read-only (§6.8.2.10). */
		if (!is_write)
			put_le(data, t->pba >> (8 * (off - VPCI_MSIX_PBA_OFF)), len);
	} else if (is_write) {
		t->stats.bad++;
	}
	pthread_mutex_unlock(&d->lock);
}

/*
 * VIRTIO_PCI_CAP_PCI_CFG (§4.1.4.9): cap.bar, cap.offset and cap.length
 * select a window; reading or writing pci_cfg_data performs that access on
 * the BAR. An invalid selection does nothing (data keeps its last value).
 */
static bool cfg_window(struct vpci *t, uint32_t *off, uint32_t *len)
{
	const uint8_t *cap = t->pdev.cfg + t->cfg_cap;

	*off = (uint32_t)get_le(cap + 8, 4);
	*len = (uint32_t)get_le(cap + 12, 4);
	return cap[4] == VPCI_BAR && (*len == 1 || *len == 2 || *len == 4) && !(*off & (*len - 1)) &&
	       *off < VPCI_BAR_SIZE;
}

static bool overlaps(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
	return a < b + blen && b < a + alen;
}

/* PCI bus lock held. */
static void vpci_cfg_read(struct pci_dev *pd, uint32_t off, uint32_t len)
{
	struct vpci *t = pd->opaque;
	uint32_t boff, blen;

	if (overlaps(off, len, t->cfg_cap + VPCI_CFG_DATA, 4) && cfg_window(t, &boff, &blen))
		vpci_bar_io(t, boff, pd->cfg + t->cfg_cap + VPCI_CFG_DATA, blen, false);
}

static void vpci_cfg_write(struct pci_dev *pd, uint32_t off, uint32_t len)
{
	struct vpci *t = pd->opaque;
	uint32_t boff, blen;

	if (overlaps(off, len, t->msix_cap + 2, 2))
		msix_control(t);
	if (overlaps(off, len, t->cfg_cap + VPCI_CFG_DATA, 4) && cfg_window(t, &boff, &blen))
		vpci_bar_io(t, boff, pd->cfg + t->cfg_cap + VPCI_CFG_DATA, blen, true);
}

/*
 * The BAR moved or decode toggled (PCI bus lock held): move each queue's
 * notify ioeventfd so KVM signals kick_fd[q] without an exit. Each queue has
 * its own notify address (§4.1.4.4, notify_off_multiplier), so the value
 * written (§4.1.5.2) need not be matched: the ioeventfd has length 0, which
 * matches a write of any width at that address and lets KVM put it on its
 * fast MMIO bus (on VMX the kick completes from the EPT-misconfig exit
 * without decoding the instruction). Where KVM says no, writes exit and
 * vpci_bar_io kicks by hand.
 */
static void vpci_bar_remap(struct pci_dev *pd, int i, bool mapped)
{
	struct vpci *t = pd->opaque;
	struct virtio_dev *d = t->d;

	for (unsigned q = 0; q < d->nqueues; q++) {
		if (t->ioev[q].on) {
			irq_ioeventfd(t->vm->vm_fd, d->kick_fd[q], t->ioev[q].addr, VPCI_NOTIFY_IOEV_LEN, false, false, 0, false);
			t->ioev[q].on = false;
		}
		if (!mapped)
			continue;
		t->ioev[q].addr = (uint64_t)pd->bar[i].addr + VPCI_NOTIFY_OFF + q * VPCI_NOTIFY_MULT;
		int ret = irq_ioeventfd(t->vm->vm_fd, d->kick_fd[q], t->ioev[q].addr, VPCI_NOTIFY_IOEV_LEN, false, false, 0, true);
		if (ret == 0) {
			t->ioev[q].on = true;
		} else if (!t->ioev_warned) {
			t->ioev_warned = true;
			log_info("%s: no ioeventfd for queue notifications (%s): they exit to kiln", d->name,
				 strerror(-ret));
		}
	}
}

/* ---------- lifetime ---------- */

static void vpci_free(struct vpci *t)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if (t->ioev[q].on)
			irq_ioeventfd(t->vm->vm_fd, t->d->kick_fd[q], t->ioev[q].addr, VPCI_NOTIFY_IOEV_LEN, false, false, 0, false);
	for (unsigned v = 0; v < t->nvec; v++) {
		if (t->vec[v].irqfd)
			irq_irqfd(t->vm->vm_fd, t->vec[v].efd, t->vec[v].gsi, false);
		if (t->vec[v].efd >= 0)
			close(t->vec[v].efd);
	}
	free(t);
}

static void vpci_destroy(void *state)
{
	struct vpci *t = state;
	struct virtio_dev *d = t->d;

	vpci_free(t);
	virtio_dev_destroy(d);
}

static void vpci_print_stats(void *state, int fd)
{
	struct vpci *t = state;

	virtio_print_stats(t->d, fd);
	pthread_mutex_lock(&t->d->lock);
	dprintf(fd, "%s: pci 00:%02x.0 bar0=%#x msix=%s sent=%llu pending=%llu dropped=%llu notify-exits=%llu bad=%llu\n",
		t->d->name, t->pdev.slot, t->pdev.bar[VPCI_BAR].addr,
		t->msix_enabled ? (t->msix_fmask ? "masked" : "on") : "off", (unsigned long long)t->stats.msix_sent,
		(unsigned long long)t->stats.msix_pending, (unsigned long long)t->stats.msix_dropped,
		(unsigned long long)__atomic_load_n(&t->stats.mmio_kicks, __ATOMIC_RELAXED),
		(unsigned long long)t->stats.bad);
	pthread_mutex_unlock(&t->d->lock);
}

/* Class codes Linux and lspci expect for each kind (QEMU's choices; §4.1.2 leaves them free). */
static uint32_t class_of(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET: return 0x020000;      /* network controller */
	case VIRTIO_ID_BLOCK: return 0x010000;    /* mass storage: SCSI */
	case VIRTIO_ID_CONSOLE: return 0x078000;  /* simple communication: other */
	default: return 0xff0000;                 /* unassigned class */
	}
}

/* One virtio structure capability (§4.1.4): struct virtio_pci_cap without cap_vndr/cap_next. */
static int add_vcap(struct vpci *t, uint8_t type, uint32_t off, uint32_t len, const void *extra, uint8_t nextra)
{
	uint8_t body[VPCI_CAP_LEN - 2 + 4] = { 0 };

	body[0] = (uint8_t)(VPCI_CAP_LEN + nextra); /* cap_len: the whole capability */
	body[1] = type;
	body[2] = VPCI_BAR;
	put_le(body + 6, off, 4);
	put_le(body + 10, len, 4);
	if (nextra)
		memcpy(body + VPCI_CAP_LEN - 2, extra, nextra);
	return pci_add_cap(&t->pdev, PCI_CAP_ID_VNDR, body, (uint8_t)(VPCI_CAP_LEN - 2 + nextra), NULL);
}

static int vpci_caps(struct vpci *t)
{
	static const uint8_t all4[4] = { 0xff, 0xff, 0xff, 0xff }, zero4[4];
	uint8_t mult[4], cfgw[VPCI_CAP_LEN - 2 + 4] = { 0 }, msix[10], msixw[10] = { 0 };
	int ret;

	put_le(mult, VPCI_NOTIFY_MULT, 4);
	if ((ret = add_vcap(t, VIRTIO_PCI_CAP_COMMON_CFG, VPCI_COMMON_OFF, VPCI_COMMON_LEN, NULL, 0)) < 0 ||
	    (ret = add_vcap(t, VIRTIO_PCI_CAP_NOTIFY_CFG, VPCI_NOTIFY_OFF, t->notify_len, mult, 4)) < 0 ||
	    (ret = add_vcap(t, VIRTIO_PCI_CAP_ISR_CFG, VPCI_ISR_OFF, VPCI_ISR_LEN, NULL, 0)) < 0)
		return ret;
	/* §4.1.4.6: only device types with a configuration layout need one. */
	if (t->d->ops->config_size &&
	    (ret = add_vcap(t, VIRTIO_PCI_CAP_DEVICE_CFG, VPCI_DEVICE_OFF, t->d->ops->config_size, NULL, 0)) < 0)
		return ret;
	/* §4.1.4.9: the driver writes cap.bar, cap.offset, cap.length and pci_cfg_data. */
	cfgw[2] = 0xff;                       /* cap.bar */
	memcpy(cfgw + 6, all4, 4);            /* cap.offset */
	memcpy(cfgw + 10, all4, 4);           /* cap.length */
	memcpy(cfgw + 14, all4, 4);           /* pci_cfg_data */
	ret = add_vcap(t, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, zero4, 4);
	if (ret < 0)
		return ret;
	t->cfg_cap = (uint8_t)ret;
	memcpy(t->pdev.wmask + t->cfg_cap + 2, cfgw, sizeof(cfgw));
	/* MSI-X (PCI 3.0 §6.8.2): Message Control (table size N-1), table and PBA offsets with the BIR. */
	put_le(msix, t->nvec - 1, 2);
	put_le(msix + 2, VPCI_MSIX_TABLE_OFF | VPCI_BAR, 4);
	put_le(msix + 6, VPCI_MSIX_PBA_OFF | VPCI_BAR, 4);
	msixw[1] = (uint8_t)((VPCI_MSIX_ENABLE | VPCI_MSIX_FMASK) >> 8);
	ret = pci_add_cap(&t->pdev, PCI_CAP_ID_MSIX, msix, sizeof(msix), msixw);
	if (ret < 0)
		return ret;
	t->msix_cap = (uint8_t)ret;
	return 0;
}

/* Per vector: an MSI GSI and an eventfd KVM turns into that interrupt (irqfd). */
static int vpci_vectors(struct vpci *t)
{
	for (unsigned v = 0; v < t->nvec; v++) {
		int gsi = irq_msi_alloc(&t->vm->irqr), ret;

		if (gsi < 0)
			return gsi;
		t->vec[v].gsi = (unsigned)gsi;
		t->vec[v].ctrl = VPCI_MSIX_ENTRY_MASKED; /* §6.8.2.9: every vector is masked at reset */
		t->vec[v].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->vec[v].efd < 0)
			return -errno;
		ret = irq_irqfd(t->vm->vm_fd, t->vec[v].efd, t->vec[v].gsi, true);
		if (ret < 0)
			return ret;
		t->vec[v].irqfd = true;
	}
	return 0;
}

int virtio_pci_add(struct vm *vm, struct virtio_dev *d)
{
	struct vpci *t;
	struct vm_device dev = { .name = d->name, .destroy = vpci_destroy, .print_stats = vpci_print_stats };
	int ret;

	if (!vm->pci)
		return -ENODEV;
	if (vm->ndevices >= VM_MAX_DEVICES)
		return -ENOSPC;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->d = d;
	t->vm = vm;
	t->nvec = d->nqueues + 1;
	t->notify_len = d->nqueues * VPCI_NOTIFY_MULT;
	for (unsigned v = 0; v < VPCI_MAX_VECTORS; v++)
		t->vec[v].efd = -1;
	/* §4.1.2.1: 0x1040 + device type, revision 1 (modern only), subsystem id >= 0x40. */
	pci_dev_init(&t->pdev, d->name, VPCI_VENDOR_ID, (uint16_t)(VPCI_DEVICE_ID_BASE + d->device_id),
		     class_of(d->device_id), VPCI_VENDOR_ID, (uint16_t)(VPCI_DEVICE_ID_BASE + d->device_id), 1);
	t->pdev.opaque = t;
	t->pdev.cfg_read = vpci_cfg_read;
	t->pdev.cfg_write = vpci_cfg_write;
	t->pdev.bar_remap = vpci_bar_remap;
	if ((ret = pci_dev_set_bar(&t->pdev, VPCI_BAR, VPCI_BAR_SIZE, vpci_bar_io, t)) < 0 ||
	    (ret = vpci_caps(t)) < 0 || (ret = vpci_vectors(t)) < 0)
		goto fail;
	pthread_mutex_lock(&d->lock);
	d->tops = &vpci_tops;
	d->transport = t;
	pthread_mutex_unlock(&d->lock);
	ret = pci_add_device(vm, &t->pdev);
	if (ret < 0) {
		d->tops = NULL;
		d->transport = NULL;
		goto fail;
	}
	dev.state = t;
	/* Cannot fail: room was checked above, and nothing else adds devices during init. */
	ret = vm_add_device(vm, &dev);
	if (ret < 0)
		log_err("%s: lost its VM registration: %s", d->name, strerror(-ret));
	log_debug("%s: virtio-pci at 00:%02x.0, BAR0 %#x", d->name, t->pdev.slot, t->pdev.bar[VPCI_BAR].addr);
	return 0;
fail:
	vpci_free(t);
	return ret;
}
