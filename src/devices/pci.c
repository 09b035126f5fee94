/* The PCI host bridge on bus 0: config space by 0xCF8/0xCFC and ECAM, BAR sizing/placement/dispatch, capabilities. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arch/x86/layout.h"
#include "core/log.h"
#include "core/vm.h"
#include "devices/pci.h"

/*
 * CONFIG_ADDRESS (PCI 3.0 §3.2.2.3.2): bit 31 enable, 23:16 bus, 15:11
 * device, 10:8 function, 7:2 register. Bits 30:24 and 1:0 read back 0.
 */
#define CF8_ENABLE   0x80000000u
#define CF8_RW_MASK  0x80fffffcu
#define PCI_HEADER_TYPE_NORMAL 0x00
/* Capabilities sit in the conventional header space after the type 0 header (PCI 3.0 §6.7). */
#define PCI_CAP_START 0x40
#define PCI_CONV_SIZE 0x100
/* BAR low bits of a 32-bit, non-prefetchable memory BAR are all 0 (§6.2.5.1). */
#define PCI_BAR_MEM_MASK 0xfffffff0u

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint16_t subsys_vendor, uint16_t subsys_id, uint8_t revision)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	d->next_cap = PCI_CAP_START;
	wr16(d->cfg + PCI_VENDOR_ID, vendor);
	wr16(d->cfg + PCI_DEVICE_ID, device);
	d->cfg[PCI_REVISION_ID] = revision;
	/* Class code: programming interface, sub-class, base class (§6.2.1). */
	d->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	d->cfg[PCI_CLASS_DEVICE] = (uint8_t)(class_code >> 8);
	d->cfg[PCI_CLASS_DEVICE + 1] = (uint8_t)(class_code >> 16);
	d->cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL; /* single function */
	wr16(d->cfg + PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
	wr16(d->cfg + PCI_SUBSYSTEM_ID, subsys_id);
	/*
	 * Writable header bits: COMMAND memory decode, bus master, SERR#,
	 * INTx disable (I/O decode stays 0: kiln has no I/O BARs), cache line
	 * size, latency timer, interrupt line. Interrupt pin is 0: no INTx.
	 */
	wr16(d->wmask + PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
	d->wmask[0x0c] = 0xff;
	d->wmask[0x0d] = 0xff;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

int pci_dev_set_bar(struct pci_dev *d, int i, uint32_t size, bus_io_fn fn, void *opaque)
{
	if (i < 0 || i >= PCI_NUM_BARS || !fn || size < 4096 || (size & (size - 1)) || size > X86_PCI_MMIO_SIZE)
		return -EINVAL;
	d->bar[i] = (struct pci_bar){ .size = size, .fn = fn, .opaque = opaque };
	/* Only the address bits above the size are writable: sizing reads back ~(size-1) (§6.2.5.1). */
	wr32(d->wmask + PCI_BAR0 + 4 * i, ~(size - 1) & PCI_BAR_MEM_MASK);
	return 0;
}

int pci_add_cap(struct pci_dev *d, uint8_t cap_id, const void *body, uint8_t len, const uint8_t *writable)
{
	unsigned off = ALIGN_UP(d->next_cap, 4u), last, n;

	if (off < PCI_CAP_START || off + 2u + len > PCI_CONV_SIZE)
		return -ENOSPC;
	/* Link it behind the last capability; the walk is bounded by the 48 dwords a list can use. */
	if (!d->cfg[PCI_CAPABILITY_LIST]) {
		d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	} else {
		last = d->cfg[PCI_CAPABILITY_LIST];
		for (n = 0; d->cfg[last + 1] && n < PCI_CONV_SIZE / 4; n++)
			last = d->cfg[last + 1];
		d->cfg[last + 1] = (uint8_t)off;
	}
	d->cfg[off] = cap_id;
	d->cfg[off + 1] = 0;
	memcpy(d->cfg + off + 2, body, len);
	if (writable)
		memcpy(d->wmask + off + 2, writable, len);
	wr16(d->cfg + PCI_STATUS, rd16(d->cfg + PCI_STATUS) | PCI_STATUS_CAP_LIST);
	d->next_cap = (uint16_t)(off + 2 + len);
	return (int)off;
}

bool pci_bar_decodes(const struct pci_dev *d, int i)
{
	const struct pci_bar *b = &d->bar[i];

	/*
	 * A BAR the guest moved outside the window (a sizing value left behind
	 * with decode on, say) decodes nothing: kiln only routes the window.
	 */
	return b->size && (rd16(d->cfg + PCI_COMMAND) & PCI_COMMAND_MEMORY) && b->addr >= X86_PCI_MMIO_BASE &&
	       (uint64_t)b->addr + b->size <= X86_PCI_MMIO_BASE + X86_PCI_MMIO_SIZE;
}

/* Store a guest write through wmask, then tell the device what moved. b->lock held. */
static void cfg_write_locked(struct pci_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	bool was[PCI_NUM_BARS];
	uint32_t old_addr[PCI_NUM_BARS];

	for (int i = 0; i < PCI_NUM_BARS; i++) {
		was[i] = pci_bar_decodes(d, i);
		old_addr[i] = d->bar[i].addr;
	}
	for (uint32_t k = 0; k < len; k++)
		d->cfg[off + k] = (uint8_t)((d->cfg[off + k] & ~d->wmask[off + k]) | (data[k] & d->wmask[off + k]));
	for (int i = 0; i < PCI_NUM_BARS; i++) {
		bool now;

		if (!d->bar[i].size)
			continue;
		d->bar[i].addr = rd32(d->cfg + PCI_BAR0 + 4 * i) & ~(d->bar[i].size - 1);
		now = pci_bar_decodes(d, i);
		if (d->bar_remap && (now != was[i] || (now && d->bar[i].addr != old_addr[i])))
			d->bar_remap(d, i, now);
	}
	if (d->cfg_write)
		d->cfg_write(d, off, len);
}

void pci_cfg_access(struct pci_bus *b, unsigned slot, unsigned fn, uint32_t off, uint8_t *data, uint32_t len,
		    bool is_write)
{
	struct pci_dev *d;

	pthread_mutex_lock(&b->lock);
	if (len == 0 || len > 4 || (len & (len - 1)) || (off & (len - 1)) || off >= PCI_CFG_SIZE) {
		b->bad_accesses++;
		d = NULL;
	} else {
		d = (slot < PCI_MAX_SLOTS && fn == 0) ? b->devs[slot] : NULL;
	}
	if (!d) {
		if (!is_write)
			memset(data, 0xff, len);
	} else if (is_write) {
		cfg_write_locked(d, off, data, len);
	} else {
		if (d->cfg_read)
			d->cfg_read(d, off, len);
		memcpy(data, d->cfg + off, len);
	}
	pthread_mutex_unlock(&b->lock);
}

/*
 * Configuration mechanism #1 (PCI 3.0 §3.2.2.3.2): a dword at 0xCF8 is the
 * address latch; 0xCFC-0xCFF is the data window into the dword it selects.
 * Narrower accesses to 0xCF8-0xCFB are not the latch (0xCF9 is a reset
 * register on real chipsets): reads all-ones, writes dropped.
 */
static void pio_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *b = opaque;
	uint32_t cf8, v;

	if (off < 4) {
		if (off != 0 || len != 4) {
			if (!is_write)
				memset(data, 0xff, len);
			return;
		}
		pthread_mutex_lock(&b->lock);
		if (is_write) {
			memcpy(&v, data, 4);
			b->cf8 = v & CF8_RW_MASK;
		} else {
			memcpy(data, &b->cf8, 4);
		}
		pthread_mutex_unlock(&b->lock);
		return;
	}
	pthread_mutex_lock(&b->lock);
	cf8 = b->cf8;
	b->cfg_pio++;
	pthread_mutex_unlock(&b->lock);
	/* Disabled latch or another bus: nothing answers (all-ones, §6.1). */
	if (!(cf8 & CF8_ENABLE) || ((cf8 >> 16) & 0xff) != 0 || off + len > 8) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pci_cfg_access(b, (cf8 >> 11) & 0x1f, (cf8 >> 8) & 0x7, (cf8 & 0xfc) + (uint32_t)(off - 4), data, len, is_write);
}

/* ECAM (PCIe base 4.0 §7.2.2): offset = bus << 20 | device << 15 | function << 12 | register; bus 0 only. */
static void ecam_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *b = opaque;

	pthread_mutex_lock(&b->lock);
	b->cfg_ecam++;
	pthread_mutex_unlock(&b->lock);
	pci_cfg_access(b, (unsigned)(off >> 15) & 0x1f, (unsigned)(off >> 12) & 0x7, (uint32_t)(off & 0xfff), data,
		       len, is_write);
}

/*
 * The whole BAR window is one range on vm->mmio (the bus is read-only once
 * vCPUs run, and BARs move at the guest's will): find the BAR decoding the
 * address now, then call it outside the lock so devices never nest under it
 * on the hot path. A BAR moved concurrently by another vCPU may still see
 * this access at its old place, as a posted write would on hardware.
 */
static void window_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *b = opaque;
	uint64_t gpa = X86_PCI_MMIO_BASE + off, boff = 0;
	bus_io_fn fn = NULL;
	void *fopaque = NULL;

	pthread_mutex_lock(&b->lock);
	for (unsigned s = 0; s < PCI_MAX_SLOTS && !fn; s++) {
		struct pci_dev *d = b->devs[s];

		for (int i = 0; d && i < PCI_NUM_BARS; i++) {
			if (!pci_bar_decodes(d, i) || gpa < d->bar[i].addr || gpa - d->bar[i].addr + len > d->bar[i].size)
				continue;
			fn = d->bar[i].fn;
			fopaque = d->bar[i].opaque;
			boff = gpa - d->bar[i].addr;
			break;
		}
	}
	if (!fn)
		b->window_misses++;
	pthread_mutex_unlock(&b->lock);
	if (fn) {
		fn(fopaque, boff, data, len, is_write);
		return;
	}
	/* Unclaimed MMIO, as the bus answers it anywhere else: reads 0, writes dropped, counted. */
	if (is_write) {
		atomic_fetch_add_explicit(&b->vm->mmio.unclaimed_writes, 1, memory_order_relaxed);
	} else {
		memset(data, 0, len);
		atomic_fetch_add_explicit(&b->vm->mmio.unclaimed_reads, 1, memory_order_relaxed);
	}
}

int pci_add_device(struct vm *vm, struct pci_dev *d)
{
	struct pci_bus *b = vm->pci;
	uint32_t next, addr[PCI_NUM_BARS] = { 0 };
	unsigned slot;
	int ret = 0;

	if (!b)
		return -ENODEV;
	pthread_mutex_lock(&b->lock);
	for (slot = 1; slot < PCI_MAX_SLOTS && b->devs[slot]; slot++)
		;
	if (slot == PCI_MAX_SLOTS) {
		ret = -ENOSPC;
		goto out;
	}
	/* Place every BAR naturally aligned, as firmware would; nothing changes unless all fit. */
	next = b->next_bar;
	for (int i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t at;

		if (!d->bar[i].size)
			continue;
		at = ALIGN_UP((uint64_t)next, (uint64_t)d->bar[i].size);
		if (at + d->bar[i].size > X86_PCI_MMIO_BASE + X86_PCI_MMIO_SIZE) {
			ret = -ENOSPC;
			goto out;
		}
		addr[i] = (uint32_t)at;
		next = (uint32_t)(at + d->bar[i].size);
	}
	b->next_bar = next;
	d->slot = slot;
	for (int i = 0; i < PCI_NUM_BARS; i++) {
		if (!d->bar[i].size)
			continue;
		d->bar[i].addr = addr[i];
		wr32(d->cfg + PCI_BAR0 + 4 * i, addr[i]);
	}
	wr16(d->cfg + PCI_COMMAND, rd16(d->cfg + PCI_COMMAND) | PCI_COMMAND_MEMORY);
	b->devs[slot] = d;
	for (int i = 0; i < PCI_NUM_BARS; i++)
		if (d->bar_remap && pci_bar_decodes(d, i))
			d->bar_remap(d, i, true);
	log_debug("pci: %s at 00:%02x.0", d->name, slot);
out:
	pthread_mutex_unlock(&b->lock);
	return ret;
}

static void pci_bus_destroy(void *state)
{
	struct pci_bus *b = state;

	if (b->vm && b->vm->pci == b)
		b->vm->pci = NULL;
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static void pci_bus_print_stats(void *state, int fd)
{
	struct pci_bus *b = state;
	unsigned n = 0;

	pthread_mutex_lock(&b->lock);
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++)
		n += b->devs[s] != NULL;
	dprintf(fd, "pci: %u functions, config accesses cf8=%llu ecam=%llu bad=%llu, BAR window misses=%llu\n", n,
		(unsigned long long)b->cfg_pio, (unsigned long long)b->cfg_ecam, (unsigned long long)b->bad_accesses,
		(unsigned long long)b->window_misses);
	pthread_mutex_unlock(&b->lock);
}

int pci_host_init(struct vm *vm)
{
	struct pci_bus *b;
	struct vm_device dev = { .name = "pci", .destroy = pci_bus_destroy, .print_stats = pci_bus_print_stats };
	int ret;

	/* virtio-mmio guests get no PCI at all, as on Firecracker. */
	if (vm->cfg.virtio_transport != VIRTIO_TRANSPORT_PCI)
		return 0;
	if (vm->pci)
		return -EEXIST;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->vm = vm;
	pthread_mutex_init(&b->lock, NULL);
	b->next_bar = (uint32_t)X86_PCI_MMIO_BASE;
	pci_dev_init(&b->host, "host-bridge", PCI_HOST_VENDOR, PCI_HOST_DEVICE, PCI_CLASS_HOST_BRIDGE, 0, 0, 0);
	b->devs[0] = &b->host;
	dev.state = b;
	/* The VM owns b before any range points at it, so a failed registration leaves nothing dangling. */
	ret = vm_add_device(vm, &dev);
	if (ret) {
		pthread_mutex_destroy(&b->lock);
		free(b);
		return ret;
	}
	vm->pci = b;
	ret = bus_register(&vm->pio, X86_PCI_CONFIG_PORT, 8, "pci-cf8", pio_io, b);
	if (!ret)
		ret = bus_register(&vm->mmio, X86_PCI_ECAM_BASE, X86_PCI_ECAM_SIZE, "pci-ecam", ecam_io, b);
	if (!ret)
		ret = bus_register(&vm->mmio, X86_PCI_MMIO_BASE, X86_PCI_MMIO_SIZE, "pci-bars", window_io, b);
	if (ret)
		log_err("pci: cannot claim the config ports, ECAM or the BAR window: %s", strerror(-ret));
	return ret;
}

DEVICE_REGISTER(pci, pci_host_init);
