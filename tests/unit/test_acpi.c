/* Unit tests: AML builder, ACPI tables (RSDP/XSDT/FADT/MADT/DSDT/MCFG, PCI0, virtio-mmio), acpi_pm and pvpanic devices. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "devices/pvpanic.h"
#include "stub_vm.h"

/* ---------- AML builder ---------- */

#define AML_EQ(a, ...)                                                      \
	do {                                                                \
		static const uint8_t want_[] = { __VA_ARGS__ };             \
		assert_int_equal(aml_error(a), 0);                          \
		assert_int_equal((a)->len, sizeof(want_));                  \
		assert_memory_equal((a)->buf, want_, sizeof(want_));        \
	} while (0)

static void test_aml_integer(void **state)
{
	uint8_t buf[16];
	struct aml a;
	static const struct { uint64_t v; size_t n; uint8_t enc[9]; } cases[] = {
		{ 0, 1, { 0x00 } },
		{ 1, 1, { 0x01 } },
		{ 2, 2, { 0x0a, 0x02 } },
		{ 0xff, 2, { 0x0a, 0xff } },
		{ 0x100, 3, { 0x0b, 0x00, 0x01 } },
		{ 0x12345678, 5, { 0x0c, 0x78, 0x56, 0x34, 0x12 } },
		{ 0x100000000ULL, 9, { 0x0e, 0, 0, 0, 0, 1, 0, 0, 0 } },
		{ ~0ULL, 9, { 0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		aml_init(&a, buf, sizeof(buf));
		aml_integer(&a, cases[i].v);
		assert_int_equal(aml_error(&a), 0);
		assert_int_equal(a.len, cases[i].n);
		assert_memory_equal(buf, cases[i].enc, cases[i].n);
	}
}

static void test_aml_eisaid_and_string(void **state)
{
	uint8_t buf[32];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP0501");
	AML_EQ(&a, 0x0c, 0x41, 0xd0, 0x05, 0x01);

	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP0b00"); /* lower-case hex digits are accepted */
	AML_EQ(&a, 0x0c, 0x41, 0xd0, 0x0b, 0x00);

	aml_init(&a, buf, sizeof(buf));
	aml_string(&a, "QEMU0001");
	AML_EQ(&a, 0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0x00);

	static const char *bad[] = { "pnp0501", "PNP050", "PNP05011", "PNP05G1", "P1P0501" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		aml_init(&a, buf, sizeof(buf));
		aml_eisaid(&a, bad[i]);
		assert_int_equal(aml_error(&a), -EINVAL);
		assert_int_equal(a.len, 0);
	}
	aml_init(&a, buf, sizeof(buf));
	aml_string(&a, "caf\xc3\xa9");
	assert_int_equal(aml_error(&a), -EINVAL);
}

static void test_aml_namestring(void **state)
{
	uint8_t buf[64];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "COM1");
	AML_EQ(&a, 'C', 'O', 'M', '1');

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "\\_SB");
	AML_EQ(&a, 0x5c, '_', 'S', 'B', '_');

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "\\_SB.RTC");
	AML_EQ(&a, 0x5c, 0x2e, '_', 'S', 'B', '_', 'R', 'T', 'C', '_');

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "A.B2.C_");
	AML_EQ(&a, 0x2f, 3, 'A', '_', '_', '_', 'B', '2', '_', '_', 'C', '_', '_', '_');

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "\\");
	AML_EQ(&a, 0x5c, 0x00);

	static const char *bad[] = { "1ABC", "ABCDE", "com1", "A..B", "A.", ".A", "A-B" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		aml_init(&a, buf, sizeof(buf));
		aml_namestring(&a, bad[i]);
		assert_int_equal(aml_error(&a), -EINVAL);
		assert_int_equal(a.len, 0);
	}
}

/* Scope(X) with `extra` raw body bytes: returns the encoded PkgLength bytes. */
static size_t scope_pkglen(uint8_t *buf, size_t cap, size_t extra, uint8_t *pkglen)
{
	struct aml a;
	aml_mark_t m;

	aml_init(&a, buf, cap);
	m = aml_scope_begin(&a, "X");
	for (size_t i = 0; i < extra; i++)
		aml_byte(&a, 0xa5);
	aml_end(&a, m);
	assert_int_equal(aml_error(&a), 0);
	assert_int_equal(buf[0], 0x10);
	/* Opcode + PkgLength + "X___" + extra == whole length. */
	size_t n = a.len - 1 - 4 - extra;
	memcpy(pkglen, buf + 1, n);
	assert_memory_equal(buf + 1 + n, "X___", 4);
	for (size_t i = 0; i < extra; i++)
		assert_int_equal(buf[1 + n + 4 + i], 0xa5);
	return n;
}

static void test_aml_pkglength(void **state)
{
	static uint8_t buf[0x20000];
	uint8_t p[4];

	/* Body 62 bytes + 1 length byte = 63: the largest one-byte PkgLength (§20.2.4). */
	assert_int_equal(scope_pkglen(buf, sizeof(buf), 58, p), 1);
	assert_int_equal(p[0], 63);
	/* Body 63: 63 + 2 = 65 = 0x41 -> lead 0x41 (1 follow byte, nibble 1), then 0x04. */
	assert_int_equal(scope_pkglen(buf, sizeof(buf), 59, p), 2);
	assert_int_equal(p[0], 0x41);
	assert_int_equal(p[1], 0x04);
	/* Body 0xffd: 0xffd + 2 = 0xfff, the largest two-byte PkgLength. */
	assert_int_equal(scope_pkglen(buf, sizeof(buf), 0xffd - 4, p), 2);
	assert_int_equal(p[0], 0x4f);
	assert_int_equal(p[1], 0xff);
	/* Body 0x1000: 0x1003 -> lead 0x83, then 0x00, 0x01. */
	assert_int_equal(scope_pkglen(buf, sizeof(buf), 0x1000 - 4, p), 3);
	assert_int_equal(p[0], 0x83);
	assert_int_equal(p[1], 0x00);
	assert_int_equal(p[2], 0x01);
}

static void test_aml_resources(void **state)
{
	uint8_t buf[64];
	struct aml a;
	aml_mark_t m;

	/* The COM1 template: IO(Decode16, 0x3f8, 0x3f8, 1, 8), IRQNoFlags(){4}, EndTag. */
	aml_init(&a, buf, sizeof(buf));
	m = aml_restemplate_begin(&a);
	aml_res_io(&a, 0x3f8, 8);
	aml_res_irq_noflags(&a, 4);
	aml_restemplate_end(&a, m);
	AML_EQ(&a, 0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
	       0x22, 0x10, 0x00, 0x79, 0x00);

	aml_init(&a, buf, sizeof(buf));
	m = aml_restemplate_begin(&a);
	aml_res_memory32_fixed(&a, 0xfec00000, 0x1000, true);
	aml_res_ext_irq(&a, 0x21, false);
	aml_restemplate_end(&a, m);
	AML_EQ(&a, 0x11, 0x1a, 0x0a, 0x17,
	       0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xc0, 0xfe, 0x00, 0x10, 0x00, 0x00,
	       0x89, 0x06, 0x00, 0x03, 0x01, 0x21, 0x00, 0x00, 0x00,
	       0x79, 0x00);

	aml_init(&a, buf, sizeof(buf));
	aml_res_irq_noflags(&a, 16);
	assert_int_equal(aml_error(&a), -EINVAL);

	/* WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0x1f, 0, 0x20) (§6.4.3.5.3). */
	aml_init(&a, buf, sizeof(buf));
	aml_res_word_bus_number(&a, 0, 0x1f);
	AML_EQ(&a, 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x20, 0x00);
	/* DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
	 * 0, 0xc0000000, 0xdfffffff, 0, 0x20000000) (§6.4.3.5.2). */
	aml_init(&a, buf, sizeof(buf));
	aml_res_dword_memory(&a, 0xc0000000, 0x20000000);
	AML_EQ(&a, 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xff, 0xdf,
	       0, 0, 0, 0, 0x00, 0x00, 0x00, 0x20);
	/* Windows that do not fit 32 bits, empty ones and reversed bus ranges are refused. */
	aml_init(&a, buf, sizeof(buf));
	aml_res_dword_memory(&a, 0xf0000000, 0x20000000);
	assert_int_equal(aml_error(&a), -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_res_dword_memory(&a, 0xf0000000, 0);
	assert_int_equal(aml_error(&a), -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_res_word_bus_number(&a, 2, 1);
	assert_int_equal(aml_error(&a), -EINVAL);
}

static void test_aml_nospace(void **state)
{
	uint8_t buf[24];
	struct aml a;
	aml_mark_t m;

	memset(buf, 0xee, sizeof(buf));
	aml_init(&a, buf, 16); /* the last 8 bytes are a guard */
	m = aml_device_begin(&a, "COM1");
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0501"); /* 2 + 4 + 1 + 4 + 5 = 16 bytes: fits exactly */
	assert_int_equal(aml_error(&a), 0);
	aml_end(&a, m);            /* the PkgLength byte no longer fits */
	assert_int_equal(aml_error(&a), -ENOSPC);
	assert_int_equal(a.len, 16);
	aml_integer(&a, 0);        /* sticky: later calls do nothing */
	assert_int_equal(aml_error(&a), -ENOSPC);
	assert_int_equal(a.len, 16);
	for (size_t i = 16; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xee);

	aml_init(&a, NULL, 100);   /* no buffer: nothing fits */
	aml_byte(&a, 1);
	assert_int_equal(aml_error(&a), -ENOSPC);
}

/* ---------- ACPI tables ---------- */

#define TEST_RAM (1 * MiB)
#define GUARD 256

/* A fake guest_mem: one RAM region at GPA 0 over a heap buffer (ASan sees overruns). */
struct fake_mem {
	struct guest_mem m;
	uint8_t *buf;
};

static void fake_mem_init(struct fake_mem *f, uint64_t size)
{
	memset(f, 0, sizeof(*f));
	f->buf = malloc(size + GUARD);
	assert_non_null(f->buf);
	memset(f->buf, 0xcc, size + GUARD);
	f->m.fd = -1;
	f->m.total = size;
	f->m.nregions = 1;
	f->m.regions[0] = (struct mem_region){ .gpa = 0, .size = size, .host = f->buf };
}

static void fake_mem_fini(struct fake_mem *f)
{
	free(f->buf);
}

/* The checked view of one table: its header, verified to be in RAM with a valid checksum. */
static const struct acpi_sdt_header *table_at(const struct guest_mem *m, gpa_t gpa, const char *sig)
{
	const struct acpi_sdt_header *h = mem_gpa(m, gpa, sizeof(*h));

	assert_non_null(h);
	assert_memory_equal(h->signature, sig, 4);
	assert_true(h->length >= sizeof(*h));
	assert_non_null(mem_gpa(m, gpa, h->length));
	assert_true(gpa >= X86_ACPI_GPA && gpa + h->length <= X86_ACPI_END);
	assert_int_equal(acpi_checksum(h, h->length), 0);
	assert_memory_equal(h->oem_id, "KILN  ", 6);
	assert_memory_equal(h->oem_table_id, "KILNVM  ", 8);
	assert_memory_equal(h->creator_id, "KILN", 4);
	return h;
}

struct tables {
	const struct acpi_rsdp *rsdp;
	const struct acpi_sdt_header *xsdt;
	const struct acpi_fadt *fadt;
	const struct acpi_madt *madt;
	const struct acpi_sdt_header *dsdt;
	const struct acpi_mcfg *mcfg;     /* NULL without PCI */
	gpa_t end;  /* first byte past the last table */
};

static gpa_t table_end(gpa_t gpa, uint32_t len)
{
	return gpa + len;
}

/* Follow RSDP -> XSDT -> FADT/MADT, FADT -> DSDT, checking every link and checksum. */
static void parse_tables(const struct guest_mem *m, gpa_t rsdp_gpa, struct tables *t)
{
	uint64_t ent[3];
	unsigned nent;

	memset(t, 0, sizeof(*t));
	t->rsdp = mem_gpa(m, rsdp_gpa, sizeof(*t->rsdp));
	assert_non_null(t->rsdp);
	assert_memory_equal(t->rsdp->signature, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(t->rsdp, 20), 0);
	assert_int_equal(acpi_checksum(t->rsdp, 36), 0);
	assert_int_equal(t->rsdp->revision, 2);
	assert_int_equal(t->rsdp->length, 36);
	assert_int_equal(t->rsdp->rsdt_address, 0);
	assert_memory_equal(t->rsdp->oem_id, "KILN  ", 6);
	t->end = table_end(rsdp_gpa, 36);

	t->xsdt = table_at(m, t->rsdp->xsdt_address, "XSDT");
	assert_int_equal(t->xsdt->revision, 1);
	/* FADT, then MADT, then MCFG when there is a PCI bus. */
	nent = (t->xsdt->length - 36) / 8;
	assert_int_equal(t->xsdt->length, 36 + nent * 8);
	assert_true(nent == 2 || nent == 3);
	memcpy(ent, (const uint8_t *)t->xsdt + 36, nent * 8);
	t->end = MAX(t->end, table_end(t->rsdp->xsdt_address, t->xsdt->length));

	t->fadt = (const struct acpi_fadt *)table_at(m, ent[0], "FACP");
	assert_int_equal(t->fadt->h.length, 276);
	assert_int_equal(t->fadt->h.revision, 6);
	t->end = MAX(t->end, table_end(ent[0], t->fadt->h.length));

	t->madt = (const struct acpi_madt *)table_at(m, ent[1], "APIC");
	assert_int_equal(t->madt->h.revision, 5);
	t->end = MAX(t->end, table_end(ent[1], t->madt->h.length));

	if (nent == 3) {
		t->mcfg = (const struct acpi_mcfg *)table_at(m, ent[2], "MCFG");
		assert_int_equal(t->mcfg->h.revision, 1);
		t->end = MAX(t->end, table_end(ent[2], t->mcfg->h.length));
	}

	assert_int_equal(t->fadt->dsdt, 0);
	t->dsdt = table_at(m, t->fadt->x_dsdt, "DSDT");
	assert_int_equal(t->dsdt->revision, 2);
	t->end = MAX(t->end, table_end(t->fadt->x_dsdt, t->dsdt->length));
}

/* Walk the MADT's entries: every length is right and they tile the table exactly. */
static void check_madt(const struct acpi_madt *madt, unsigned ncpus)
{
	const uint8_t *p = (const uint8_t *)madt + sizeof(*madt);
	const uint8_t *end = (const uint8_t *)madt + madt->h.length;
	unsigned nlapic = 0, nx2apic = 0, nioapic = 0, niso = 0, nnmi = 0, nx2nmi = 0;

	assert_int_equal(madt->lapic_address, X86_LAPIC_GPA);
	assert_int_equal(madt->flags, 0);
	while (p < end) {
		assert_true(end - p >= 2);
		assert_true(p[1] >= 2 && p[1] <= end - p);
		switch (p[0]) {
		case ACPI_MADT_LAPIC: {
			const struct acpi_madt_lapic *l = (const void *)p;
			assert_int_equal(l->length, 8);
			/* Entries come in vCPU order: UID and APIC ID equal the index. */
			assert_int_equal(l->processor_uid, nlapic);
			assert_int_equal(l->apic_id, nlapic);
			assert_int_equal(l->flags, ACPI_MADT_ENABLED);
			assert_int_equal(nx2apic, 0);
			nlapic++;
			break;
		}
		case ACPI_MADT_X2APIC: {
			const struct acpi_madt_x2apic *x = (const void *)p;
			assert_int_equal(x->length, 16);
			assert_int_equal(x->x2apic_id, 255 + nx2apic);
			assert_int_equal(x->processor_uid, 255 + nx2apic);
			assert_int_equal(x->flags, ACPI_MADT_ENABLED);
			nx2apic++;
			break;
		}
		case ACPI_MADT_IOAPIC: {
			const struct acpi_madt_ioapic *io = (const void *)p;
			assert_int_equal(io->length, 12);
			assert_int_equal(io->address, X86_IOAPIC_GPA);
			assert_int_equal(io->gsi_base, 0);
			assert_int_equal(io->ioapic_id, 0);
			nioapic++;
			break;
		}
		case ACPI_MADT_INT_SRC_OVERRIDE: {
			const struct acpi_madt_iso *s = (const void *)p;
			assert_int_equal(s->length, 10);
			assert_int_equal(s->bus, 0);
			assert_int_equal(s->source, 0);
			assert_int_equal(s->gsi, 2);
			assert_int_equal(s->flags, 0);
			niso++;
			break;
		}
		case ACPI_MADT_LAPIC_NMI: {
			const struct acpi_madt_lapic_nmi *n = (const void *)p;
			assert_int_equal(n->length, 6);
			assert_int_equal(n->processor_uid, 0xff);
			assert_int_equal(n->lint, 1);
			nnmi++;
			break;
		}
		case ACPI_MADT_X2APIC_NMI: {
			const struct acpi_madt_x2apic_nmi *n = (const void *)p;
			assert_int_equal(n->length, 12);
			assert_int_equal(n->processor_uid, 0xffffffffu);
			assert_int_equal(n->lint, 1);
			nx2nmi++;
			break;
		}
		default:
			fail_msg("unexpected MADT entry type %u", p[0]);
		}
		p += p[1];
	}
	assert_ptr_equal(p, end);
	assert_int_equal(nlapic, MIN(ncpus, 255u));
	assert_int_equal(nx2apic, ncpus > 255 ? ncpus - 255 : 0);
	assert_int_equal(nlapic + nx2apic, ncpus);
	assert_int_equal(nioapic, 1);
	assert_int_equal(niso, 0); /* identity ISA routing, as KVM routes by default */
	assert_int_equal(nnmi, 1);
	assert_int_equal(nx2nmi, ncpus > 255 ? 1 : 0);
}

static void test_tables_cpus(void **state)
{
	static const unsigned counts[] = { 1, 2, 4, 64, 254, 255, 256, 1024 };
	struct fake_mem f;

	fake_mem_init(&f, TEST_RAM);
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		const struct acpi_config cfg = { .ncpus = counts[i], .pvpanic = true, .rtc = true };
		gpa_t rsdp = 0;
		struct tables t;

		memset(f.buf, 0xcc, TEST_RAM); /* a rebuild must not depend on zeroed RAM */
		assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), 0);
		assert_int_equal(rsdp, X86_ACPI_GPA);
		parse_tables(&f.m, rsdp, &t);
		check_madt(t.madt, counts[i]);
		assert_true(t.end <= X86_ACPI_END);
	}
	fake_mem_fini(&f);
}

static void test_fadt_fields(void **state)
{
	struct fake_mem f;
	gpa_t rsdp;
	struct tables t;

	fake_mem_init(&f, TEST_RAM);
	for (int rtc = 0; rtc <= 1; rtc++) {
		const struct acpi_config cfg = { .ncpus = 2, .rtc = rtc };
		const struct acpi_fadt *fa;

		assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), 0);
		parse_tables(&f.m, rsdp, &t);
		fa = t.fadt;
		assert_true(fa->flags & ACPI_FADT_HW_REDUCED_ACPI);
		assert_true(fa->flags & ACPI_FADT_RESET_REG_SUP);
		assert_int_equal(fa->flags & (1u << 20), 1u << 20);
		assert_int_equal(fa->flags & (1u << 10), 1u << 10);
		assert_int_equal(fa->iapc_boot_arch & ACPI_IAPC_8042, ACPI_IAPC_8042);
		assert_int_equal(fa->iapc_boot_arch & ACPI_IAPC_VGA_NOT_PRESENT, ACPI_IAPC_VGA_NOT_PRESENT);
		assert_int_equal(!!(fa->iapc_boot_arch & ACPI_IAPC_CMOS_RTC_NOT_PRESENT), !rtc);
		assert_int_equal(fa->minor_version, 4);
		assert_int_equal(fa->sci_int, 0);
		assert_int_equal(fa->firmware_ctrl, 0);
		assert_int_equal(fa->x_firmware_ctrl, 0);
		assert_int_equal(fa->pm1a_cnt_blk, 0);

		assert_int_equal(fa->reset_reg.space_id, ACPI_GAS_SYSTEM_IO);
		assert_int_equal(fa->reset_reg.bit_width, 8);
		assert_int_equal(fa->reset_reg.access_size, ACPI_GAS_ACCESS_BYTE);
		assert_int_equal(fa->reset_reg.address, X86_ACPI_RESET_PORT);
		assert_int_equal(fa->reset_value, X86_ACPI_RESET_VALUE);

		assert_int_equal(fa->sleep_control_reg.space_id, ACPI_GAS_SYSTEM_IO);
		assert_int_equal(fa->sleep_control_reg.bit_width, 8);
		assert_int_equal(fa->sleep_control_reg.address, X86_ACPI_SLEEP_CTL);
		assert_int_equal(fa->sleep_status_reg.space_id, ACPI_GAS_SYSTEM_IO);
		assert_int_equal(fa->sleep_status_reg.bit_width, 8);
		assert_int_equal(fa->sleep_status_reg.address, X86_ACPI_SLEEP_STS);
		assert_memory_equal(&fa->hypervisor_vendor_id, "KILNVMM ", 8);
		/* Offsets fixed by Table 5.9, checked against the raw bytes. */
		assert_int_equal(((const uint8_t *)fa)[116], ACPI_GAS_SYSTEM_IO);
		assert_int_equal(((const uint8_t *)fa)[128], X86_ACPI_RESET_VALUE);
		assert_int_equal(((const uint8_t *)fa)[244 + 4], X86_ACPI_SLEEP_CTL & 0xff);
		assert_int_equal(((const uint8_t *)fa)[256 + 4], X86_ACPI_SLEEP_STS & 0xff);
	}
	fake_mem_fini(&f);
}

static bool mem_contains(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
	return memmem(hay, hlen, needle, nlen) != NULL;
}

static void test_dsdt_contents(void **state)
{
	/* Name(_HID, EisaId(...)) as ASL compilers encode it. */
	static const uint8_t hid_com1[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01 };
	static const uint8_t hid_kbd[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x03, 0x03 };
	static const uint8_t hid_rtc[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0b, 0x00 };
	static const uint8_t hid_pvp[] = { 0x08, '_', 'H', 'I', 'D', 0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0 };
	/* Name(\_S5_, Package(4){5, 0, 0, 0}). */
	static const uint8_t s5[] = { 0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, ACPI_S5_SLP_TYP, 0, 0, 0 };
	static const uint8_t com1_crs[] = { 0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03,
					    0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00 };
	static const uint8_t kbd_io[] = { 0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01,
					  0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01, 0x22, 0x02, 0x00 };
	static const uint8_t pvp_io[] = { 0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01 };
	struct fake_mem f;

	fake_mem_init(&f, TEST_RAM);
	for (int opt = 0; opt < 4; opt++) {
		const struct acpi_config cfg = { .ncpus = 1, .pvpanic = opt & 1, .rtc = opt & 2 };
		gpa_t rsdp;
		struct tables t;
		const uint8_t *d;
		size_t n;

		assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), 0);
		parse_tables(&f.m, rsdp, &t);
		d = (const uint8_t *)t.dsdt;
		n = t.dsdt->length;
		/* The AML starts with Scope(\_SB): ScopeOp, a PkgLength, then the root name. */
		assert_int_equal(d[36], 0x10);
		assert_true(mem_contains(d, n, "\x5c_SB_", 5));
		assert_true(mem_contains(d, n, "COM1", 4));
		assert_true(mem_contains(d, n, hid_com1, sizeof(hid_com1)));
		assert_true(mem_contains(d, n, com1_crs, sizeof(com1_crs)));
		assert_true(mem_contains(d, n, hid_kbd, sizeof(hid_kbd)));
		assert_true(mem_contains(d, n, kbd_io, sizeof(kbd_io)));
		assert_true(mem_contains(d, n, s5, sizeof(s5)));
		/* \_S5 is the last object in the table. */
		assert_memory_equal(d + n - sizeof(s5), s5, sizeof(s5));
		assert_int_equal(mem_contains(d, n, hid_rtc, sizeof(hid_rtc)), !!cfg.rtc);
		assert_int_equal(mem_contains(d, n, hid_pvp, sizeof(hid_pvp)), cfg.pvpanic);
		assert_int_equal(mem_contains(d, n, pvp_io, sizeof(pvp_io)), cfg.pvpanic);
	}
	fake_mem_fini(&f);
}

/* The PCI facts loader.c passes for kiln's x86 layout. */
static void pci_config(struct acpi_config *cfg)
{
	cfg->pci = true;
	cfg->pci_ecam_base = X86_PCI_ECAM_BASE;
	cfg->pci_bus_end = X86_PCI_BUS_END;
	cfg->pci_mmio_base = X86_PCI_MMIO_BASE;
	cfg->pci_mmio_size = X86_PCI_MMIO_SIZE;
}

static void test_mcfg(void **state)
{
	struct fake_mem f;
	struct acpi_config cfg = { .ncpus = 2, .rtc = true };
	const struct acpi_mcfg_alloc *al;
	struct tables t;
	gpa_t rsdp;

	fake_mem_init(&f, TEST_RAM);
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), 0);
	parse_tables(&f.m, rsdp, &t);
	assert_null(t.mcfg);                       /* no PCI, no MCFG */

	pci_config(&cfg);
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), 0);
	parse_tables(&f.m, rsdp, &t);
	assert_non_null(t.mcfg);
	/* PCI Firmware 3.2 §4.1.2: header, 8 reserved bytes, one allocation structure. */
	assert_int_equal(t.mcfg->h.length, 44 + 16);
	assert_int_equal(t.mcfg->reserved, 0);
	al = (const struct acpi_mcfg_alloc *)((const uint8_t *)t.mcfg + 44);
	assert_int_equal(al->base, X86_PCI_ECAM_BASE);
	assert_int_equal(al->segment, 0);
	assert_int_equal(al->start_bus, 0);
	assert_int_equal(al->end_bus, X86_PCI_BUS_END);
	assert_int_equal(al->reserved, 0);
	/* ECAM for buses 0..end must fit what layout.h sets aside. */
	assert_true(((uint64_t)al->end_bus + 1) * MiB <= X86_PCI_ECAM_SIZE);

	/* Two buses: the allocation says so (and the DSDT's ranges follow, below). */
	cfg.pci_bus_end = 1;
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), 0);
	parse_tables(&f.m, rsdp, &t);
	al = (const struct acpi_mcfg_alloc *)((const uint8_t *)t.mcfg + 44);
	assert_int_equal(al->end_bus, 1);
	fake_mem_fini(&f);
}

/*
 * Find Device(name) in AML: ExtOpPrefix DeviceOp PkgLength NameSeg. Returns
 * the device's body (after its name) and its length, checked to lie inside
 * the table. The PkgLength decoding is §20.2.4.
 */
static const uint8_t *find_device(const uint8_t *aml, size_t n, const char *name, size_t *blen)
{
	for (size_t i = 0; i + 2 < n; i++) {
		size_t lead, len, nbytes;

		if (aml[i] != 0x5b || aml[i + 1] != 0x82)
			continue;
		lead = aml[i + 2];
		nbytes = lead >> 6;
		if (i + 2 + 1 + nbytes + 4 > n)
			continue;
		len = nbytes ? (lead & 0x0f) : (lead & 0x3f);
		for (size_t k = 0; k < nbytes; k++)
			len |= (size_t)aml[i + 3 + k] << (4 + 8 * k);
		if (memcmp(aml + i + 3 + nbytes, name, 4))
			continue;
		assert_true(i + 2 + len <= n);          /* PkgLength counts itself and the body */
		*blen = len - (1 + nbytes) - 4;
		return aml + i + 3 + nbytes + 4;
	}
	return NULL;
}

static size_t count(const uint8_t *hay, size_t n, const void *needle, size_t nlen)
{
	size_t c = 0;

	for (const uint8_t *p = hay; (p = memmem(p, n - (size_t)(p - hay), needle, nlen)); p++)
		c++;
	return c;
}

static void test_dsdt_pci(void **state)
{
	static const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08 };   /* PNP0A08 */
	static const uint8_t cid[] = { 0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };   /* PNP0A03 */
	static const uint8_t seg[] = { 0x08, '_', 'S', 'E', 'G', 0x00 };
	static const uint8_t bbn[] = { 0x08, '_', 'B', 'B', 'N', 0x00 };
	static const uint8_t uid[] = { 0x08, '_', 'U', 'I', 'D', 0x00 };
	/* Name(_CRS, ResourceTemplate() { WordBusNumber 0..0, IO 0xcf8/8, DWordMemory window }) */
	static const uint8_t crs[] = {
		0x08, '_', 'C', 'R', 'S', 0x11, 0x37, 0x0a, 0x34,
		0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,
		0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08,
		0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xff, 0xdf,
		0, 0, 0, 0, 0x00, 0x00, 0x00, 0x20,
		0x79, 0x00,
	};
	static const uint8_t mb_hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x02 };  /* PNP0C02 */
	static const uint8_t ecam[] = { 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x10, 0x00 };
	struct fake_mem f;
	struct acpi_config cfg = { .ncpus = 1, .pvpanic = true, .rtc = true };
	struct tables t;
	const uint8_t *d, *body;
	size_t n, blen;
	gpa_t rsdp;

	fake_mem_init(&f, TEST_RAM);
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), 0);
	parse_tables(&f.m, rsdp, &t);
	d = (const uint8_t *)t.dsdt;
	assert_null(find_device(d + 36, t.dsdt->length - 36, "PCI0", &blen));
	assert_null(find_device(d + 36, t.dsdt->length - 36, "ECAM", &blen));

	pci_config(&cfg);
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), 0);
	parse_tables(&f.m, rsdp, &t);
	d = (const uint8_t *)t.dsdt;
	n = t.dsdt->length;
	body = find_device(d + 36, n - 36, "PCI0", &blen);
	assert_non_null(body);
	assert_true(mem_contains(body, blen, hid, sizeof(hid)));
	assert_true(mem_contains(body, blen, cid, sizeof(cid)));
	assert_true(mem_contains(body, blen, seg, sizeof(seg)));
	assert_true(mem_contains(body, blen, bbn, sizeof(bbn)));
	assert_true(mem_contains(body, blen, uid, sizeof(uid)));
	assert_true(mem_contains(body, blen, crs, sizeof(crs)));
	/* No _PRT: no INTx routing to describe. */
	assert_false(mem_contains(body, blen, "_PRT", 4));
	body = find_device(d + 36, n - 36, "ECAM", &blen);
	assert_non_null(body);
	assert_true(mem_contains(body, blen, mb_hid, sizeof(mb_hid)));
	assert_true(mem_contains(body, blen, ecam, sizeof(ecam)));
	/* Still the last object: \_S5. */
	assert_memory_equal(d + n - 14, "\x08\x5c_S5_", 6);
	fake_mem_fini(&f);
}

static void test_dsdt_virtio_mmio(void **state)
{
	static const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0 };
	struct fake_mem f;
	struct acpi_config cfg = { .ncpus = 1 };
	struct tables t;
	gpa_t rsdp;

	fake_mem_init(&f, TEST_RAM);
	for (unsigned nv = 0; nv <= ACPI_MAX_VIRTIO_MMIO; nv++) {
		const uint8_t *d;
		size_t n;

		cfg.nvirtio_mmio = nv;
		for (unsigned i = 0; i < nv; i++) {
			cfg.virtio_mmio[i].base = X86_VIRTIO_MMIO_BASE + i * X86_VIRTIO_MMIO_SIZE;
			cfg.virtio_mmio[i].size = X86_VIRTIO_MMIO_SIZE;
			cfg.virtio_mmio[i].gsi = 5 + i;
		}
		assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), 0);
		parse_tables(&f.m, rsdp, &t);
		d = (const uint8_t *)t.dsdt;
		n = t.dsdt->length;
		assert_int_equal(count(d, n, hid, sizeof(hid)), nv);
		for (unsigned i = 0; i < nv; i++) {
			char name[5];
			const uint8_t *body;
			size_t blen;
			uint32_t base = (uint32_t)cfg.virtio_mmio[i].base;
			/* _UID i; Memory32Fixed(ReadWrite, base, 4 KiB); Interrupt(Consumer, Edge, ActiveHigh, Exclusive) {gsi} */
			const uint8_t uid_byte[] = { 0x08, '_', 'U', 'I', 'D', 0x0a, (uint8_t)i };
			const uint8_t uid_op[] = { 0x08, '_', 'U', 'I', 'D', (uint8_t)i };  /* ZeroOp, OneOp */
			const uint8_t res[] = {
				0x86, 0x09, 0x00, 0x01, (uint8_t)base, (uint8_t)(base >> 8), (uint8_t)(base >> 16),
				(uint8_t)(base >> 24), 0x00, 0x10, 0x00, 0x00,
				0x89, 0x06, 0x00, 0x03, 0x01, (uint8_t)(5 + i), 0, 0, 0,
				0x79, 0x00,
			};

			snprintf(name, sizeof(name), "VR%02X", i);
			body = find_device(d + 36, n - 36, name, &blen);
			assert_non_null(body);
			assert_true(mem_contains(body, blen, hid, sizeof(hid)));
			if (i > 1)
				assert_true(mem_contains(body, blen, uid_byte, sizeof(uid_byte)));
			else
				assert_true(mem_contains(body, blen, uid_op, sizeof(uid_op)));
			assert_true(mem_contains(body, blen, res, sizeof(res)));
		}
	}
	fake_mem_fini(&f);
}

static void test_bad_config(void **state)
{
	struct fake_mem f;
	gpa_t rsdp = 0x1234;
	struct acpi_config cfg = { .ncpus = 0 };

	fake_mem_init(&f, TEST_RAM);
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), -EINVAL);
	cfg.ncpus = ACPI_MAX_CPUS + 1;
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), -EINVAL);
	assert_int_equal(acpi_build(&f.m, NULL, &rsdp), -EINVAL);
	cfg.ncpus = 1;
	assert_int_equal(acpi_build(NULL, &cfg, &rsdp), -EINVAL);
	assert_int_equal(acpi_build(&f.m, &cfg, NULL), -EINVAL);
	/* What the resource descriptors cannot say: windows past 4 GiB, empty ones, too many virtio-mmio. */
	pci_config(&cfg);
	cfg.pci_mmio_base = 0xf0000000;
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), -EINVAL);
	pci_config(&cfg);
	cfg.pci_mmio_size = 0;
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), -EINVAL);
	pci_config(&cfg);
	cfg.pci_ecam_base = 0xfff00000;
	cfg.pci_bus_end = 1;
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), -EINVAL);
	cfg.pci = false;
	cfg.nvirtio_mmio = ACPI_MAX_VIRTIO_MMIO + 1;
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), -EINVAL);
	cfg.nvirtio_mmio = 1;
	cfg.virtio_mmio[0].base = 0xfffff000;
	cfg.virtio_mmio[0].size = 0x2000;
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), -EINVAL);
	assert_int_equal(rsdp, 0x1234);
	fake_mem_fini(&f);
}

static void test_enospc_memory(void **state)
{
	const struct acpi_config cfg = { .ncpus = 1 };
	struct guest_mem none = { .fd = -1 };
	struct fake_mem f;
	gpa_t rsdp = 0x1234;

	/* No RAM at all. */
	assert_int_equal(acpi_build(&none, &cfg, &rsdp), -ENOSPC);
	/* 512 KiB: the window is above RAM. */
	fake_mem_init(&f, 512 * KiB);
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), -ENOSPC);
	fake_mem_fini(&f);
	/* RAM ends 64 bytes into the window: the RSDP fits, the rest does not. */
	fake_mem_init(&f, X86_ACPI_GPA + 64);
	assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), -ENOSPC);
	for (size_t i = 0; i < GUARD; i++)
		assert_int_equal(f.buf[X86_ACPI_GPA + 64 + i], 0xcc);
	fake_mem_fini(&f);
	assert_int_equal(rsdp, 0x1234);
}

/* Every window smaller than what the tables need fails cleanly and never writes past its end. */
static void test_enospc_window(void **state)
{
	static const unsigned counts[] = { 1, 64, 300 };
	struct fake_mem f;

	fake_mem_init(&f, TEST_RAM);
	for (size_t c = 0; c < ARRAY_SIZE(counts); c++) {
		struct acpi_config cfg = { .ncpus = counts[c], .pvpanic = true, .rtc = true };
		gpa_t rsdp;
		struct tables t;
		uint64_t need;

		if (c == 1) {
			/* Every table and DSDT object kiln can emit. */
			pci_config(&cfg);
			cfg.nvirtio_mmio = ACPI_MAX_VIRTIO_MMIO;
			for (unsigned i = 0; i < ACPI_MAX_VIRTIO_MMIO; i++)
				cfg.virtio_mmio[i] = (struct acpi_virtio_mmio){ X86_VIRTIO_MMIO_BASE + i * 0x1000, 0x1000, 5 + i };
		}

		assert_int_equal(acpi_build(&f.m, &cfg, &rsdp), 0);
		parse_tables(&f.m, rsdp, &t);
		need = t.end - X86_ACPI_GPA;
		assert_true(need > 36 && need < 64 * KiB);
		for (uint64_t size = 0; size < need; size++) {
			gpa_t out = 0x1234;

			memset(f.buf + X86_ACPI_GPA + size, 0xcc, 64);
			assert_int_equal(acpi_build_at(&f.m, &cfg, X86_ACPI_GPA, X86_ACPI_GPA + size, &out),
					 -ENOSPC);
			assert_int_equal(out, 0x1234);
			for (size_t i = 0; i < 64; i++)
				assert_int_equal(f.buf[X86_ACPI_GPA + size + i], 0xcc);
		}
		assert_int_equal(acpi_build_at(&f.m, &cfg, X86_ACPI_GPA, X86_ACPI_GPA + need, &rsdp), 0);
		parse_tables(&f.m, rsdp, &t);
		assert_int_equal(t.end, X86_ACPI_GPA + need);
	}
	fake_mem_fini(&f);
}

/* ---------- acpi_pm and pvpanic devices ---------- */

static int dev_setup(void **state)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return -1;
	stub_vm_init(vm, 0);
	*state = vm;
	return 0;
}

static int dev_teardown(void **state)
{
	struct vm *vm = *state;

	stub_vm_fini(vm);
	free(vm);
	return 0;
}

static bool pio_write8(struct vm *vm, uint16_t port, uint8_t v)
{
	return bus_access(&vm->pio, port, &v, 1, true);
}

static uint8_t pio_read8(struct vm *vm, uint16_t port)
{
	uint8_t v = 0x5a;

	assert_true(bus_access(&vm->pio, port, &v, 1, false));
	return v;
}

static uint8_t sleep_val(unsigned typ, bool en)
{
	return (uint8_t)((typ << ACPI_SLP_TYP_SHIFT) | (en ? ACPI_SLP_EN : 0));
}

static void test_pm_poweroff(void **state)
{
	struct vm *vm = *state;
	struct stub_vm_log *log = stub_vm_log(vm);

	assert_int_equal(acpi_pm_init(vm), 0);
	assert_int_equal(vm->ndevices, 1);
	assert_string_equal(vm->devices[0].name, "acpi_pm");
	/* Linux clears WAK_STS first (write 1), then writes SLP_TYP|SLP_EN. */
	assert_true(pio_write8(vm, X86_ACPI_SLEEP_STS, ACPI_WAK_STS));
	assert_int_equal(pio_read8(vm, X86_ACPI_SLEEP_STS), 0);
	assert_int_equal(log->nstop, 0);
	assert_true(pio_write8(vm, X86_ACPI_SLEEP_CTL, sleep_val(ACPI_S5_SLP_TYP, true)));
	assert_int_equal(log->nstop, 1);
	assert_int_equal(log->last_stop, VM_STOP_POWEROFF);
	assert_int_equal(sleep_val(ACPI_S5_SLP_TYP, true), 0x34);
}

static void test_pm_other_sleep(void **state)
{
	struct vm *vm = *state;
	struct stub_vm_log *log = stub_vm_log(vm);
	char out[256] = "";
	FILE *tmp;

	assert_int_equal(acpi_pm_init(vm), 0);
	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ != ACPI_S5_SLP_TYP)
			assert_true(pio_write8(vm, X86_ACPI_SLEEP_CTL, sleep_val(typ, true)));
		/* Without SLP_EN nothing happens, S5 included; SLP_TYP reads back, SLP_EN does not. */
		assert_true(pio_write8(vm, X86_ACPI_SLEEP_CTL, sleep_val(typ, false) | 0x03));
		assert_int_equal(pio_read8(vm, X86_ACPI_SLEEP_CTL), sleep_val(typ, false));
	}
	/* A 2-byte access spills past the 1-byte register: the bus leaves it unclaimed. */
	uint8_t wide[2] = { sleep_val(ACPI_S5_SLP_TYP, true), 0 };
	assert_false(bus_access(&vm->pio, X86_ACPI_SLEEP_CTL, wide, 2, true));
	assert_int_equal(log->nstop, 0);

	tmp = tmpfile();
	assert_non_null(tmp);
	vm->devices[0].print_stats(vm->devices[0].state, fileno(tmp));
	rewind(tmp);
	assert_non_null(fgets(out, sizeof(out), tmp));
	fclose(tmp);
	assert_string_equal(out, "acpi_pm: sleeps_ignored 7 resets_ignored 0\n");
}

static void test_pm_reset(void **state)
{
	struct vm *vm = *state;
	struct stub_vm_log *log = stub_vm_log(vm);

	assert_int_equal(acpi_pm_init(vm), 0);
	for (unsigned v = 0; v < 256; v++)
		if (v != X86_ACPI_RESET_VALUE)
			assert_true(pio_write8(vm, X86_ACPI_RESET_PORT, (uint8_t)v));
	assert_int_equal(log->nstop, 0);
	assert_int_equal(pio_read8(vm, X86_ACPI_RESET_PORT), 0);
	assert_true(pio_write8(vm, X86_ACPI_RESET_PORT, X86_ACPI_RESET_VALUE));
	assert_int_equal(log->nstop, 1);
	assert_int_equal(log->last_stop, VM_STOP_RESET);
}

static void test_pm_double_init(void **state)
{
	struct vm *vm = *state;

	assert_int_equal(acpi_pm_init(vm), 0);
	/* The ports are taken: the second instance fails but stays owned by the VM (freed at fini). */
	assert_int_equal(acpi_pm_init(vm), -EEXIST);
	assert_int_equal(vm->ndevices, 2);
	assert_true(pio_write8(vm, X86_ACPI_RESET_PORT, X86_ACPI_RESET_VALUE));
	assert_int_equal(stub_vm_log(vm)->last_stop, VM_STOP_RESET);
}

static void test_pvpanic(void **state)
{
	struct vm *vm = *state;
	struct stub_vm_log *log = stub_vm_log(vm);

	assert_int_equal(pvpanic_init(vm), 0);
	assert_int_equal(vm->ndevices, 1);
	assert_int_equal(pio_read8(vm, X86_PVPANIC_PORT), PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	assert_int_equal(pio_read8(vm, X86_PVPANIC_PORT), 0x03);
	assert_true(pio_write8(vm, X86_PVPANIC_PORT, 0));
	assert_true(pio_write8(vm, X86_PVPANIC_PORT, PVPANIC_CRASH_LOADED));
	assert_int_equal(log->nstop, 0);
	assert_true(pio_write8(vm, X86_PVPANIC_PORT, PVPANIC_PANICKED));
	assert_int_equal(log->nstop, 1);
	assert_int_equal(log->last_stop, VM_STOP_PANIC);
	assert_int_equal(pvpanic_init(vm), -EEXIST);
}

/* ---------- table dumper for tests/acpi-disasm.sh ---------- */

static int dump_one(const char *dir, const char *prefix, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *fp;
	int ok;

	snprintf(path, sizeof(path), "%s/%s-%s.dat", dir, prefix, name);
	fp = fopen(path, "wb");
	if (!fp)
		return -1;
	ok = fwrite(p, 1, n, fp) == n;
	return (fclose(fp) == 0 && ok) ? 0 : -1;
}

/* Write each table of one configuration to DIR/PREFIX-{facp,apic,dsdt,xsdt[,mcfg]}.dat. */
static int dump_tables(const char *dir, const char *prefix, const struct acpi_config *cfg)
{
	struct fake_mem f;
	struct tables t;
	gpa_t rsdp;
	int ret = -1;

	fake_mem_init(&f, TEST_RAM);
	if (acpi_build(&f.m, cfg, &rsdp))
		goto out;
	parse_tables(&f.m, rsdp, &t);
	if (dump_one(dir, prefix, "facp", t.fadt, t.fadt->h.length) ||
	    dump_one(dir, prefix, "apic", t.madt, t.madt->h.length) ||
	    dump_one(dir, prefix, "dsdt", t.dsdt, t.dsdt->length) ||
	    dump_one(dir, prefix, "xsdt", t.xsdt, t.xsdt->length) ||
	    (t.mcfg && dump_one(dir, prefix, "mcfg", t.mcfg, t.mcfg->h.length)))
		goto out;
	ret = 0;
out:
	fake_mem_fini(&f);
	return ret;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aml_integer),
		cmocka_unit_test(test_aml_eisaid_and_string),
		cmocka_unit_test(test_aml_namestring),
		cmocka_unit_test(test_aml_pkglength),
		cmocka_unit_test(test_aml_resources),
		cmocka_unit_test(test_aml_nospace),
		cmocka_unit_test(test_tables_cpus),
		cmocka_unit_test(test_fadt_fields),
		cmocka_unit_test(test_dsdt_contents),
		cmocka_unit_test(test_mcfg),
		cmocka_unit_test(test_dsdt_pci),
		cmocka_unit_test(test_dsdt_virtio_mmio),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_enospc_memory),
		cmocka_unit_test(test_enospc_window),
		cmocka_unit_test_setup_teardown(test_pm_poweroff, dev_setup, dev_teardown),
		cmocka_unit_test_setup_teardown(test_pm_other_sleep, dev_setup, dev_teardown),
		cmocka_unit_test_setup_teardown(test_pm_reset, dev_setup, dev_teardown),
		cmocka_unit_test_setup_teardown(test_pm_double_init, dev_setup, dev_teardown),
		cmocka_unit_test_setup_teardown(test_pvpanic, dev_setup, dev_teardown),
	};

	/* `test_acpi --dump DIR`: write sample tables for tests/acpi-disasm.sh (iasl -d). */
	if (argc == 3 && !strcmp(argv[1], "--dump")) {
		const struct acpi_config small = { .ncpus = 4, .pvpanic = true, .rtc = true };
		const struct acpi_config big = { .ncpus = 300 };
		struct acpi_config pci = { .ncpus = 2, .pvpanic = true, .rtc = true, .nvirtio_mmio = 2 };

		pci_config(&pci);
		for (unsigned i = 0; i < pci.nvirtio_mmio; i++)
			pci.virtio_mmio[i] = (struct acpi_virtio_mmio){ X86_VIRTIO_MMIO_BASE + i * 0x1000, 0x1000, 5 + i };
		return dump_tables(argv[2], "small", &small) || dump_tables(argv[2], "big", &big) ||
		       dump_tables(argv[2], "pci", &pci);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
