/* ACPI tables for x86 guests: hardware-reduced ACPI 6.4 (RSDP, XSDT, FADT, MADT, DSDT), MCFG for PCI ECAM. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
#include "arch/x86/layout.h"

/* Identity strings every table carries (§5.2.6): OEM ID 6 bytes, OEM table ID 8, creator ID 4. */
#define ACPI_OEM_ID        "KILN  "
#define ACPI_OEM_TABLE_ID  "KILNVM  "
#define ACPI_CREATOR_ID    "KILN"
#define ACPI_HYPERVISOR_ID "KILNVMM "  /* FADT Hypervisor Vendor Identity (§5.2.9) */

/* Tables the XSDT can list. */
#define ACPI_MAX_TABLES 8

/*
 * No ISA interrupt source overrides (§5.2.12.5): KVM's default GSI routing
 * sends ISA IRQ n to IOAPIC pin n (and to the 8259), the PIT included, so the
 * identity mapping Linux assumes without overrides is the truth. A PC-style
 * IRQ0 -> GSI 2 override would need a matching KVM_SET_GSI_ROUTING.
 */

/* IOAPIC ID: 0 matches the reset value of KVM's in-kernel IOAPIC ID register; IOAPIC IDs are their own namespace. */
#define ACPI_IOAPIC_ID 0

/* A bump allocator over the table window; every byte goes through mem_gpa(). */
struct acpi_builder {
	struct guest_mem *m;
	gpa_t next, end;
	gpa_t tables[ACPI_MAX_TABLES];    /* what the XSDT lists, in order */
	unsigned ntables;
};

uint8_t acpi_checksum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + b[i]);
	return sum;
}

/* Host pointer to up to `len` zeroed bytes at the next 16-byte boundary; NULL if they do not fit. */
static void *acpi_alloc(struct acpi_builder *b, uint64_t len, gpa_t *gpa)
{
	gpa_t at = ALIGN_UP(b->next, 16);
	void *p;

	if (at < b->next || at > b->end || len > b->end - at)
		return NULL;
	p = mem_gpa(b->m, at, len);
	if (!p)
		return NULL;
	memset(p, 0, len);
	b->next = at + len;
	*gpa = at;
	return p;
}

/* Give back the unused tail of the last allocation (the DSDT is sized after it is built). */
static void acpi_trim(struct acpi_builder *b, gpa_t gpa, uint64_t used)
{
	b->next = gpa + used;
}

static int acpi_add_table(struct acpi_builder *b, gpa_t gpa)
{
	if (b->ntables == ACPI_MAX_TABLES)
		return -ENOSPC;
	b->tables[b->ntables++] = gpa;
	return 0;
}

static void sdt_header(struct acpi_sdt_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = 1;
}

/* Checksum last, once every byte of the table is final. */
static void sdt_finish(struct acpi_sdt_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_checksum(h, h->length);
}

/* ECAM bytes for buses 0..bus_end: 1 MiB per bus (PCIe base 4.0 §7.2.2). */
static uint64_t ecam_size(const struct acpi_config *cfg)
{
	return ((uint64_t)cfg->pci_bus_end + 1) * MiB;
}

/*
 * The PCI host bridge (ACPI 6.4 §6.1.5, PCI Firmware 3.2 §4.1): PCI Express
 * root PNP0A08, compatible with the PCI root PNP0A03, segment 0, base bus 0.
 * _CRS says what it forwards: its bus numbers, the 0xCF8 config ports, and
 * the 32-bit BAR window. No I/O window (kiln has no I/O BARs) and no _PRT
 * (no INTx: every device interrupts by MSI-X).
 */
static void dsdt_pci(struct aml *a, const struct acpi_config *cfg)
{
	aml_mark_t dev, crs;

	dev = aml_device_begin(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A08");
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_SEG");
	aml_integer(a, 0);
	aml_name(a, "_BBN");
	aml_integer(a, 0);
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_CRS");
	crs = aml_restemplate_begin(a);
	aml_res_word_bus_number(a, 0, cfg->pci_bus_end);
	aml_res_io(a, X86_PCI_CONFIG_PORT, 8);
	aml_res_dword_memory(a, (uint32_t)cfg->pci_mmio_base, (uint32_t)cfg->pci_mmio_size);
	aml_restemplate_end(a, crs);
	aml_end(a, dev);

	/*
	 * Motherboard resources (PNP0C02) holding the ECAM range: Linux uses
	 * MCFG only for a range that firmware also reserves here (PCI Firmware
	 * 3.2 §4.1.2 "reserved ... in the ACPI namespace"), else it falls back
	 * to port I/O config access.
	 */
	dev = aml_device_begin(a, "ECAM");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0C02");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_CRS");
	crs = aml_restemplate_begin(a);
	aml_res_memory32_fixed(a, (uint32_t)cfg->pci_ecam_base, (uint32_t)ecam_size(cfg), true);
	aml_restemplate_end(a, crs);
	aml_end(a, dev);
}

/*
 * A virtio-mmio device (virtio 1.2 §4.2): Linux's virtio_mmio driver matches
 * the ACPI id LNRO0005 and takes the register window and the interrupt from
 * _CRS. The interrupt is an edge-triggered, active-high, exclusive GSI.
 */
static void dsdt_virtio_mmio(struct aml *a, unsigned i, const struct acpi_virtio_mmio *v)
{
	char name[5];
	aml_mark_t dev, crs;

	snprintf(name, sizeof(name), "VR%02X", i & 0xffu); /* i < ACPI_MAX_VIRTIO_MMIO */
	dev = aml_device_begin(a, name);
	aml_name(a, "_HID");
	aml_string(a, "LNRO0005");
	aml_name(a, "_UID");
	aml_integer(a, i);
	aml_name(a, "_CRS");
	crs = aml_restemplate_begin(a);
	aml_res_memory32_fixed(a, (uint32_t)v->base, v->size, true);
	aml_res_ext_irq(a, v->gsi, false);
	aml_restemplate_end(a, crs);
	aml_end(a, dev);
}

static void dsdt_aml(struct aml *a, const struct acpi_config *cfg)
{
	aml_mark_t sb, dev, crs, pkg;

	sb = aml_scope_begin(a, "\\_SB");

	/* COM1: the 16550 UART Linux's 8250_pnp binds to (PNP0501). */
	dev = aml_device_begin(a, "COM1");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_CRS");
	crs = aml_restemplate_begin(a);
	aml_res_io(a, X86_COM1_PORT, 8);
	aml_res_irq_noflags(a, X86_COM1_IRQ);
	aml_restemplate_end(a, crs);
	aml_end(a, dev);

	if (cfg->rtc) {
		/* CMOS RTC (PNP0B00) for rtc-cmos: index and data ports. */
		dev = aml_device_begin(a, "RTC");
		aml_name(a, "_HID");
		aml_eisaid(a, "PNP0B00");
		aml_name(a, "_CRS");
		crs = aml_restemplate_begin(a);
		aml_res_io(a, X86_RTC_PORT, 2);
		aml_res_irq_noflags(a, X86_RTC_IRQ);
		aml_restemplate_end(a, crs);
		aml_end(a, dev);
	}

	/*
	 * The 8042 keyboard controller (PNP0303). Linux's i8042 finds it by PNP
	 * and takes port 0 as data, port 1 as command/status; kiln's guests
	 * use it mostly for the reset line.
	 */
	dev = aml_device_begin(a, "PS2K");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0303");
	aml_name(a, "_CRS");
	crs = aml_restemplate_begin(a);
	aml_res_io(a, X86_I8042_DATA, 1);
	aml_res_io(a, X86_I8042_CMD, 1);
	aml_res_irq_noflags(a, 1);
	aml_restemplate_end(a, crs);
	aml_end(a, dev);

	if (cfg->pvpanic) {
		/* pvpanic: Linux's pvpanic-mmio driver matches the ACPI id QEMU0001 and maps _CRS. */
		dev = aml_device_begin(a, "PEVT");
		aml_name(a, "_HID");
		aml_string(a, "QEMU0001");
		aml_name(a, "_STA");
		aml_integer(a, 0x0f); /* present, enabled, shown, functioning (§6.3.7) */
		aml_name(a, "_CRS");
		crs = aml_restemplate_begin(a);
		aml_res_io(a, X86_PVPANIC_PORT, 1);
		aml_restemplate_end(a, crs);
		aml_end(a, dev);
	}

	if (cfg->pci)
		dsdt_pci(a, cfg);
	for (unsigned i = 0; i < cfg->nvirtio_mmio; i++)
		dsdt_virtio_mmio(a, i, &cfg->virtio_mmio[i]);

	aml_end(a, sb);

	/*
	 * \_S5 (§7.4.2): { SLP_TYPa, SLP_TYPb, reserved, reserved }. In
	 * hardware-reduced mode OSPM writes SLP_TYPa to the sleep control
	 * register; without \_S5 Linux does not offer ACPI power-off at all.
	 */
	aml_name(a, "\\_S5");
	pkg = aml_package_begin(a, 4);
	aml_integer(a, ACPI_S5_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, pkg);
}

/* DSDT (§5.2.11.1): a header and AML built in place in the rest of the window. */
static int build_dsdt(struct acpi_builder *b, const struct acpi_config *cfg, gpa_t *out)
{
	const size_t hlen = sizeof(struct acpi_sdt_header);
	uint64_t avail, used;
	struct aml a;
	uint8_t *p;
	gpa_t gpa;
	int ret;

	avail = b->end > ALIGN_UP(b->next, 16) ? b->end - ALIGN_UP(b->next, 16) : 0;
	if (avail < hlen)
		return -ENOSPC;
	/* A DSDT larger than 1 MiB would be a bug; keep the window bounded anyway. */
	avail = MIN(avail, (uint64_t)MiB);
	p = acpi_alloc(b, avail, &gpa);
	if (!p)
		return -ENOSPC;
	aml_init(&a, p + hlen, avail - hlen);
	dsdt_aml(&a, cfg);
	ret = aml_error(&a);
	if (ret)
		return ret;
	used = hlen + a.len;
	acpi_trim(b, gpa, used);
	/* Revision 2: integers are 64 bits wide (§5.2.11.1). */
	sdt_header((struct acpi_sdt_header *)p, "DSDT", (uint32_t)used, 2);
	sdt_finish((struct acpi_sdt_header *)p);
	*out = gpa;
	return 0;
}

static void gas_io8(struct acpi_gas *g, uint16_t port)
{
	g->space_id = ACPI_GAS_SYSTEM_IO;
	g->bit_width = 8;
	g->bit_offset = 0;
	g->access_size = ACPI_GAS_ACCESS_BYTE;
	g->address = port;
}

/* FADT revision 6 (§5.2.9), hardware-reduced: no PM1/GPE blocks, no SCI, no FACS. */
static int build_fadt(struct acpi_builder *b, const struct acpi_config *cfg, gpa_t dsdt, gpa_t *out)
{
	struct acpi_fadt *f = acpi_alloc(b, sizeof(*f), out);
	uint16_t boot_arch;

	if (!f)
		return -ENOSPC;
	sdt_header(&f->h, "FACP", sizeof(*f), 6);
	f->x_dsdt = dsdt;  /* the 32-bit DSDT field stays 0: X_DSDT supersedes it */

	/*
	 * IA-PC boot architecture (§5.2.9.3): an 8042 is present (Linux's i8042
	 * probes it only then), there is no VGA to probe, and the CMOS RTC is
	 * declared absent unless cfg says kiln emulates it.
	 */
	boot_arch = ACPI_IAPC_8042 | ACPI_IAPC_VGA_NOT_PRESENT;
	if (!cfg->rtc)
		boot_arch |= ACPI_IAPC_CMOS_RTC_NOT_PRESENT;
	else
		f->century = 0x32; /* CMOS century register (devices/rtc.h RTC_CENTURY_REG) */
	f->iapc_boot_arch = boot_arch;

	/* WBINVD (bit 0) works on any x86 vCPU; reset register and hardware-reduced mode as described above. */
	f->flags = 1u | ACPI_FADT_RESET_REG_SUP | ACPI_FADT_HW_REDUCED_ACPI;

	/* Reset register (§4.8.3.6): one byte in System I/O space. */
	gas_io8(&f->reset_reg, X86_ACPI_RESET_PORT);
	f->reset_value = X86_ACPI_RESET_VALUE;

	f->minor_version = 4; /* ACPI 6.4 */

	/* Sleep control/status registers replace PM1 in hardware-reduced mode (§4.8.3.7). */
	gas_io8(&f->sleep_control_reg, X86_ACPI_SLEEP_CTL);
	gas_io8(&f->sleep_status_reg, X86_ACPI_SLEEP_STS);

	memcpy(&f->hypervisor_vendor_id, ACPI_HYPERVISOR_ID, 8);
	sdt_finish(&f->h);
	return 0;
}

/* MADT (§5.2.12): one LAPIC (or x2APIC) per vCPU, the IOAPIC, ISA overrides, LINT1 = NMI. */
static int build_madt(struct acpi_builder *b, const struct acpi_config *cfg, gpa_t *out)
{
	const unsigned nlapic = MIN(cfg->ncpus, 255u);
	const unsigned nx2apic = cfg->ncpus - nlapic;
	uint64_t len;
	uint8_t *p, *e;

	len = sizeof(struct acpi_madt) + nlapic * sizeof(struct acpi_madt_lapic) +
	      sizeof(struct acpi_madt_ioapic) +
	      sizeof(struct acpi_madt_lapic_nmi);
	if (nx2apic)
		len += nx2apic * sizeof(struct acpi_madt_x2apic) + sizeof(struct acpi_madt_x2apic_nmi);
	p = acpi_alloc(b, len, out);
	if (!p)
		return -ENOSPC;

	struct acpi_madt *madt = (struct acpi_madt *)p;
	sdt_header(&madt->h, "APIC", (uint32_t)len, 5);
	madt->lapic_address = (uint32_t)X86_LAPIC_GPA;
	/* PCAT_COMPAT = 0: a hardware-reduced platform has no 8259 pair for the OS to mask. */
	madt->flags = 0;
	e = p + sizeof(*madt);

	/* vCPU i has APIC ID i (what KVM assigns by default) and ACPI processor UID i. */
	for (unsigned i = 0; i < nlapic; i++) {
		struct acpi_madt_lapic *l = (struct acpi_madt_lapic *)e;
		l->type = ACPI_MADT_LAPIC;
		l->length = sizeof(*l);
		l->processor_uid = (uint8_t)i;
		l->apic_id = (uint8_t)i;
		l->flags = ACPI_MADT_ENABLED;
		e += sizeof(*l);
	}
	/* APIC IDs 255 and up only exist in x2APIC mode (§5.2.12.12). */
	for (unsigned i = nlapic; i < cfg->ncpus; i++) {
		struct acpi_madt_x2apic *x = (struct acpi_madt_x2apic *)e;
		x->type = ACPI_MADT_X2APIC;
		x->length = sizeof(*x);
		x->x2apic_id = i;
		x->flags = ACPI_MADT_ENABLED;
		x->processor_uid = i;
		e += sizeof(*x);
	}

	struct acpi_madt_ioapic *io = (struct acpi_madt_ioapic *)e;
	io->type = ACPI_MADT_IOAPIC;
	io->length = sizeof(*io);
	io->ioapic_id = ACPI_IOAPIC_ID;
	io->address = (uint32_t)X86_IOAPIC_GPA;
	io->gsi_base = 0;
	e += sizeof(*io);


	/* LINT1 of every local APIC is the NMI input, as on PCs (§5.2.12.7); flags 0 = bus default. */
	struct acpi_madt_lapic_nmi *nmi = (struct acpi_madt_lapic_nmi *)e;
	nmi->type = ACPI_MADT_LAPIC_NMI;
	nmi->length = sizeof(*nmi);
	nmi->processor_uid = 0xff;
	nmi->flags = 0;
	nmi->lint = 1;
	e += sizeof(*nmi);

	if (nx2apic) {
		/* The same for processors only an x2APIC entry describes (§5.2.12.13). */
		struct acpi_madt_x2apic_nmi *xn = (struct acpi_madt_x2apic_nmi *)e;
		xn->type = ACPI_MADT_X2APIC_NMI;
		xn->length = sizeof(*xn);
		xn->flags = 0;
		xn->processor_uid = 0xffffffffu;
		xn->lint = 1;
		e += sizeof(*xn);
	}

	sdt_finish(&madt->h);
	return (uint64_t)(e - p) == len ? 0 : -EINVAL;
}

/* MCFG (PCI Firmware 3.2 §4.1.2): one ECAM allocation, segment 0, buses 0..pci_bus_end. */
static int build_mcfg(struct acpi_builder *b, const struct acpi_config *cfg, gpa_t *out)
{
	const uint64_t len = sizeof(struct acpi_mcfg) + sizeof(struct acpi_mcfg_alloc);
	uint8_t *p = acpi_alloc(b, len, out);
	struct acpi_mcfg_alloc alloc = {
		.base = cfg->pci_ecam_base,
		.segment = 0,
		.start_bus = 0,
		.end_bus = cfg->pci_bus_end,
	};

	if (!p)
		return -ENOSPC;
	sdt_header((struct acpi_sdt_header *)p, "MCFG", (uint32_t)len, 1);
	memcpy(p + sizeof(struct acpi_mcfg), &alloc, sizeof(alloc));
	sdt_finish((struct acpi_sdt_header *)p);
	return 0;
}

/* XSDT (§5.2.8): 64-bit pointers to every other table but the DSDT. */
static int build_xsdt(struct acpi_builder *b, gpa_t *out)
{
	const uint64_t len = sizeof(struct acpi_sdt_header) + b->ntables * sizeof(uint64_t);
	uint8_t *p = acpi_alloc(b, len, out);

	if (!p)
		return -ENOSPC;
	sdt_header((struct acpi_sdt_header *)p, "XSDT", (uint32_t)len, 1);
	/* Entries sit at offset 36, not 8-aligned: copy them in. */
	memcpy(p + sizeof(struct acpi_sdt_header), b->tables, b->ntables * sizeof(uint64_t));
	sdt_finish((struct acpi_sdt_header *)p);
	return 0;
}

/* RSDP (§5.2.5.3): revision 2, XSDT only, both checksums. */
static void fill_rsdp(struct acpi_rsdp *r, gpa_t xsdt)
{
	memcpy(r->signature, "RSD PTR ", 8);
	memcpy(r->oem_id, ACPI_OEM_ID, 6);
	r->revision = 2;
	r->rsdt_address = 0;
	r->length = sizeof(*r);
	r->xsdt_address = xsdt;
	r->checksum = 0;
	r->checksum = (uint8_t)-acpi_checksum(r, 20);
	r->extended_checksum = 0;
	r->extended_checksum = (uint8_t)-acpi_checksum(r, sizeof(*r));
}

/* What the AML resource descriptors can say: 32-bit windows, no wrap. */
static bool config_ok(const struct acpi_config *cfg)
{
	if (cfg->nvirtio_mmio > ACPI_MAX_VIRTIO_MMIO)
		return false;
	for (unsigned i = 0; i < cfg->nvirtio_mmio; i++)
		if (!cfg->virtio_mmio[i].size || cfg->virtio_mmio[i].base + cfg->virtio_mmio[i].size > 0x100000000ULL ||
		    cfg->virtio_mmio[i].base + cfg->virtio_mmio[i].size < cfg->virtio_mmio[i].base)
			return false;
	if (!cfg->pci)
		return true;
	return cfg->pci_mmio_size && cfg->pci_mmio_base + cfg->pci_mmio_size <= 0x100000000ULL &&
	       cfg->pci_mmio_base + cfg->pci_mmio_size > cfg->pci_mmio_base &&
	       cfg->pci_ecam_base + ecam_size(cfg) <= 0x100000000ULL && !(cfg->pci_ecam_base & (MiB - 1));
}

int acpi_build_at(struct guest_mem *m, const struct acpi_config *cfg, gpa_t base, gpa_t end, gpa_t *rsdp_out)
{
	struct acpi_builder b = { .m = m, .next = base, .end = end };
	struct acpi_rsdp *rsdp;
	gpa_t rsdp_gpa, dsdt, fadt, madt, mcfg, xsdt;
	int ret;

	if (!m || !cfg || !rsdp_out || cfg->ncpus == 0 || cfg->ncpus > ACPI_MAX_CPUS || end < base)
		return -EINVAL;
	if (!config_ok(cfg))
		return -EINVAL;
	/* The RSDP goes first, at the 16-byte aligned window start where a legacy scan looks. */
	rsdp = acpi_alloc(&b, sizeof(*rsdp), &rsdp_gpa);
	if (!rsdp)
		return -ENOSPC;
	ret = build_dsdt(&b, cfg, &dsdt);
	if (ret)
		return ret;
	ret = build_fadt(&b, cfg, dsdt, &fadt);
	if (ret)
		return ret;
	ret = acpi_add_table(&b, fadt);
	if (ret)
		return ret;
	ret = build_madt(&b, cfg, &madt);
	if (ret)
		return ret;
	ret = acpi_add_table(&b, madt);
	if (ret)
		return ret;
	if (cfg->pci) {
		ret = build_mcfg(&b, cfg, &mcfg);
		if (ret)
			return ret;
		ret = acpi_add_table(&b, mcfg);
		if (ret)
			return ret;
	}
	ret = build_xsdt(&b, &xsdt);
	if (ret)
		return ret;
	/* The RSDP pointer stays valid: mem_gpa() mappings live as long as m. */
	fill_rsdp(rsdp, xsdt);
	*rsdp_out = rsdp_gpa;
	return 0;
}

int acpi_build(struct guest_mem *m, const struct acpi_config *cfg, gpa_t *rsdp_out)
{
	return acpi_build_at(m, cfg, X86_ACPI_GPA, X86_ACPI_END, rsdp_out);
}
