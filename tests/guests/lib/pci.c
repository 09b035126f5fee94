/* PCI configuration mechanism #1 (0xCF8/0xCFC, or ECAM without it), bus-0 scan and BAR sizing/placement for the test guests' drivers. */
#include "virtio.h"

#define GiB (1UL << 30)
#define MAPPED_TOP (5 * GiB)   /* entry.S identity-maps 0-5 GiB */
#define PCI_ECAM_DEFAULT 0xe0000000UL   /* kiln's X86_PCI_ECAM_BASE, QEMU microvm's PCIE_ECAM_BASE */

/*
 * How config space is reached: 0xCF8/0xCFC (kiln, QEMU pc/q35), or ECAM from
 * the ACPI MCFG when no host bridge answers there (QEMU microvm,pcie=on has
 * no 0xCF8). Decided on the first access.
 */
static enum { CFG_UNKNOWN, CFG_PORTS, CFG_ECAM } cfg_mode;
static uint64_t ecam_base;

/* MCFG (PCI firmware 3.0 §4.1.2): the header, 8 reserved bytes, then 16-byte allocations. */
struct mcfg_alloc {
	uint64_t base;
	uint16_t segment;
	uint8_t bus_start, bus_end;
	uint32_t reserved;
} __attribute__((packed));

/* CONFIG_ADDRESS: enable bit, bus, device, function, dword register (PCI local bus 3.0 §3.2.2.3.2). */
static void cfg_select(unsigned bdf, unsigned off)
{
	outl(PCI_CONFIG_ADDRESS, 0x80000000u | (bdf << 8) | (off & 0xfc));
}

static void cfg_probe(void)
{
	const uint8_t *mcfg;

	cfg_mode = CFG_PORTS;
	cfg_select(0, PCI_VENDOR_ID);
	if ((uint16_t)inl(PCI_CONFIG_DATA) != 0xffff)
		return;
	mcfg = acpi_find_table("MCFG");
	if (mcfg && *(const uint32_t *)(mcfg + 4) >= 44 + sizeof(struct mcfg_alloc)) {
		const struct mcfg_alloc *a = (const struct mcfg_alloc *)(mcfg + 44);

		if (a->segment == 0 && a->bus_start == 0 && a->base && a->base + (1 << 20) <= MAPPED_TOP) {
			ecam_base = a->base;
			cfg_mode = CFG_ECAM;
			return;
		}
	}
	/* No MCFG: QEMU microvm names its ECAM only in the DSDT (_CBA), at kiln's address too. */
	if ((uint16_t)mmio_read32(PCI_ECAM_DEFAULT) != 0xffff && (uint16_t)mmio_read32(PCI_ECAM_DEFAULT) != 0) {
		ecam_base = PCI_ECAM_DEFAULT;
		cfg_mode = CFG_ECAM;
	}
}

/* ECAM address of a config register (PCIe base 4.0 §7.2.2): bus << 20 | dev << 15 | fn << 12. */
static uint64_t ecam(unsigned bdf, unsigned off)
{
	return ecam_base + ((uint64_t)bdf << 12) + (off & 0xfff);
}

static bool use_ecam(void)
{
	if (cfg_mode == CFG_UNKNOWN)
		cfg_probe();
	return cfg_mode == CFG_ECAM;
}

uint32_t pci_read32(unsigned bdf, unsigned off)
{
	if (use_ecam())
		return mmio_read32(ecam(bdf, off & ~3u));
	cfg_select(bdf, off);
	return inl(PCI_CONFIG_DATA);
}

uint16_t pci_read16(unsigned bdf, unsigned off)
{
	if (use_ecam())
		return mmio_read16(ecam(bdf, off & ~1u));
	cfg_select(bdf, off);
	return inw(PCI_CONFIG_DATA + (off & 2));
}

uint8_t pci_read8(unsigned bdf, unsigned off)
{
	if (use_ecam())
		return mmio_read8(ecam(bdf, off));
	cfg_select(bdf, off);
	return inb(PCI_CONFIG_DATA + (off & 3));
}

void pci_write32(unsigned bdf, unsigned off, uint32_t v)
{
	if (use_ecam()) {
		mmio_write32(ecam(bdf, off & ~3u), v);
		return;
	}
	cfg_select(bdf, off);
	outl(PCI_CONFIG_DATA, v);
}

void pci_write16(unsigned bdf, unsigned off, uint16_t v)
{
	if (use_ecam()) {
		mmio_write16(ecam(bdf, off & ~1u), v);
		return;
	}
	cfg_select(bdf, off);
	outw(PCI_CONFIG_DATA + (off & 2), v);
}

void pci_write8(unsigned bdf, unsigned off, uint8_t v)
{
	if (use_ecam()) {
		mmio_write8(ecam(bdf, off), v);
		return;
	}
	cfg_select(bdf, off);
	outb(PCI_CONFIG_DATA + (off & 3), v);
}

bool pci_uses_ecam(void)
{
	return use_ecam();
}

int pci_find(uint16_t vendor, const uint16_t *devices)
{
	unsigned dev, fn, nfn;

	for (dev = 0; dev < 32; dev++) {
		/* Functions 1-7 exist only behind a multi-function header (§6.2.1). */
		nfn = pci_read16(PCI_BDF(0, dev, 0), PCI_VENDOR_ID) == 0xffff ? 0 :
		      (pci_read8(PCI_BDF(0, dev, 0), PCI_HEADER_TYPE) & 0x80) ? 8 : 1;
		for (fn = 0; fn < nfn; fn++) {
			unsigned bdf = PCI_BDF(0, dev, fn);
			const uint16_t *d;

			if (pci_read16(bdf, PCI_VENDOR_ID) != vendor)
				continue;
			for (d = devices; *d; d++)
				if (pci_read16(bdf, PCI_DEVICE_ID) == *d)
					return (int)bdf;
		}
	}
	return -1;
}

/* Size of memory BAR at config offset off (64-bit: off and off+4); decode must be off. */
static uint64_t bar_size(unsigned bdf, unsigned off, bool is64)
{
	uint32_t lo = pci_read32(bdf, off), hi = is64 ? pci_read32(bdf, off + 4) : 0;
	uint64_t mask;

	pci_write32(bdf, off, 0xffffffffu);
	if (is64)
		pci_write32(bdf, off + 4, 0xffffffffu);
	mask = pci_read32(bdf, off) & ~0xfULL;
	mask |= is64 ? (uint64_t)pci_read32(bdf, off + 4) << 32 : 0xffffffff00000000ULL;
	pci_write32(bdf, off, lo);
	if (is64)
		pci_write32(bdf, off + 4, hi);
	return mask ? ~mask + 1 : 0;
}

/*
 * Lowest free address in the window: above every memory BAR that already
 * decodes there (firmware or kiln placed it), so a placed BAR overlaps none.
 */
static uint64_t window_next(void)
{
	uint64_t next = PCI_MMIO_WINDOW_BASE;
	unsigned dev, i;

	for (dev = 0; dev < 32; dev++) {
		unsigned bdf = PCI_BDF(0, dev, 0);

		if (pci_read16(bdf, PCI_VENDOR_ID) == 0xffff || (pci_read8(bdf, PCI_HEADER_TYPE) & 0x7f) != 0)
			continue;
		for (i = 0; i < 6; i++) {
			uint32_t lo = pci_read32(bdf, PCI_BAR0 + 4 * i);
			uint64_t a = lo & ~0xfULL;

			if (lo & 1)
				continue;
			/* Without sizing it: a BAR is at least 16 bytes; assume 1 MiB to be safe. */
			if (a >= PCI_MMIO_WINDOW_BASE && a < PCI_MMIO_WINDOW_END && a + (1 << 20) > next)
				next = a + (1 << 20);
			if (((lo >> 1) & 3) == 2)
				i++;
		}
	}
	return next;
}

int pci_bar(unsigned bdf, unsigned bar, uint64_t *addr, uint64_t *size)
{
	unsigned off = PCI_BAR0 + 4 * bar;
	uint32_t lo = pci_read32(bdf, off);
	uint16_t cmd = pci_read16(bdf, PCI_COMMAND);
	bool is64 = ((lo >> 1) & 3) == 2;
	uint64_t a, sz, base = 0;

	if (bar > 5 || (lo & 1) || (is64 && bar == 5))
		return -1;
	a = (lo & ~0xfULL) | (is64 ? (uint64_t)pci_read32(bdf, off + 4) << 32 : 0);
	pci_write16(bdf, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
	sz = bar_size(bdf, off, is64);
	if (!sz || (sz & (sz - 1))) {
		pci_write16(bdf, PCI_COMMAND, cmd);
		return -1;
	}
	if (a == 0 || a + sz > MAPPED_TOP || a + sz < a) {
		/* Nobody placed it (no firmware, e.g. QEMU microvm), or out of our page tables' reach. */
		base = (window_next() + sz - 1) & ~(sz - 1);
		if (base + sz > PCI_MMIO_WINDOW_END) {
			pci_write16(bdf, PCI_COMMAND, cmd);
			return -1;
		}
		pci_write32(bdf, off, (uint32_t)base | (lo & 0xf));
		if (is64)
			pci_write32(bdf, off + 4, (uint32_t)(base >> 32));
		a = base;
	}
	pci_write16(bdf, PCI_COMMAND, cmd);
	*addr = a;
	*size = sz;
	return a == base;
}
