/* ACPI tables for x86 guests (hardware-reduced ACPI 6.4): RSDP, XSDT, FADT, MADT, DSDT, and MCFG with PCI. */
#ifndef KILN_X86_ACPI_H
#define KILN_X86_ACPI_H

#include "core/types.h"
#include "core/memory.h"

/*
 * The SLP_TYPx value of \_S5 (ACPI 6.4 §7.4.2). In hardware-reduced mode it
 * is only ever compared with what the guest writes to the sleep control
 * register (§4.8.3.7), so any 3-bit value works; 5 reads as "S5" in traces.
 */
#define ACPI_S5_SLP_TYP 5

/* Sleep control register bits (§4.8.3.7.1) and sleep status bits (§4.8.3.7.2). */
#define ACPI_SLP_EN 0x20
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_SLP_TYP_MASK 0x7
#define ACPI_WAK_STS 0x80

/*
 * vCPUs the MADT describes. APIC IDs 0-254 get Processor Local APIC entries;
 * 255 is the xAPIC broadcast id, so IDs from 255 up get Processor Local x2APIC
 * entries (§5.2.12.12 requires x2APIC structures for IDs >= 255). The cap is
 * KVM's KVM_MAX_VCPUS on x86 (1024), well inside the 128 KiB table window.
 */
#define ACPI_MAX_CPUS 1024

#define ACPI_MAX_VIRTIO_MMIO 8

struct acpi_config {
	unsigned ncpus;   /* 1..ACPI_MAX_CPUS; vCPU i has APIC ID i and ACPI UID i */
	bool pvpanic;     /* describe the pvpanic port (QEMU0001) in the DSDT */
	bool rtc;         /* describe the CMOS RTC (PNP0B00); else FADT says "no CMOS RTC" */
	/*
	 * PCI host bridge: an MCFG table for ECAM, and in the DSDT a PCI0
	 * (PNP0A08/PNP0A03) with bus range, 0xCF8 ports and the BAR window in
	 * _CRS, plus a PNP0C02 reserving ECAM (Linux checks MCFG against it).
	 */
	bool pci;
	uint64_t pci_ecam_base;      /* X86_PCI_ECAM_BASE */
	uint8_t pci_bus_end;         /* last bus number (MCFG end bus) */
	uint64_t pci_mmio_base, pci_mmio_size;  /* BAR window */
	/* virtio-mmio devices, each a LNRO0005 device with Memory32Fixed + an edge, active-high Interrupt. */
	unsigned nvirtio_mmio;
	struct acpi_virtio_mmio { uint64_t base; uint32_t size; uint32_t gsi; } virtio_mmio[ACPI_MAX_VIRTIO_MMIO];
};

/*
 * Write the tables into [X86_ACPI_GPA, X86_ACPI_END) of m and return the RSDP
 * address (at X86_ACPI_GPA, 16-byte aligned, so a legacy scan finds it too).
 * 0; -EINVAL for a bad cfg; -ENOSPC if the window is not RAM or the tables
 * overflow it. *rsdp_out is written only on success.
 */
int __must_check acpi_build(struct guest_mem *m, const struct acpi_config *cfg, gpa_t *rsdp_out);

/* acpi_build() into an arbitrary window [base, end): for tests and other layouts. */
int __must_check acpi_build_at(struct guest_mem *m, const struct acpi_config *cfg, gpa_t base, gpa_t end,
			       gpa_t *rsdp_out);

/* Sum of n bytes mod 256; a valid ACPI table sums to 0 (§5.2.6 Checksum). */
uint8_t acpi_checksum(const void *p, size_t n);

/*
 * Guest-visible table layouts (little-endian, as x86 is; kiln only runs on
 * x86 hosts). Exposed for the tests, which parse what acpi_build() wrote.
 */

/* Root System Description Pointer (§5.2.5.3). */
struct acpi_rsdp {
	char signature[8];        /* "RSD PTR " */
	uint8_t checksum;         /* first 20 bytes sum to 0 */
	char oem_id[6];
	uint8_t revision;         /* 2: ACPI 2.0+ layout with XSDT */
	uint32_t rsdt_address;    /* 0: kiln provides no RSDT */
	uint32_t length;          /* 36 */
	uint64_t xsdt_address;
	uint8_t extended_checksum;/* all 36 bytes sum to 0 */
	uint8_t reserved[3];
} __packed;
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP is 36 bytes (ACPI 6.4 §5.2.5.3)");

/* System Description Table Header (§5.2.6). */
struct acpi_sdt_header {
	char signature[4];
	uint32_t length;          /* whole table, header included */
	uint8_t revision;
	uint8_t checksum;         /* whole table sums to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __packed;
_Static_assert(sizeof(struct acpi_sdt_header) == 36, "SDT header is 36 bytes (ACPI 6.4 §5.2.6)");

/* Generic Address Structure (§5.2.3.2). */
struct acpi_gas {
	uint8_t space_id;         /* 1: System I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;      /* 1: byte access */
	uint64_t address;
} __packed;
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS is 12 bytes (ACPI 6.4 §5.2.3.2)");

#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1

/* Fixed ACPI Description Table, revision 6 (§5.2.9, Table 5.9). */
struct acpi_fadt {
	struct acpi_sdt_header h;     /* "FACP" */
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;      /* §5.2.9.3 */
	uint8_t reserved1;
	uint32_t flags;               /* Table 5.10 */
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __packed;
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 is 276 bytes (ACPI 6.4 §5.2.9)");

/*
 * PCI Express memory-mapped configuration space base address description
 * table, "MCFG" (PCI Firmware Specification 3.2 §4.1.2): the header, 8
 * reserved bytes, then one allocation structure per ECAM range.
 */
struct acpi_mcfg {
	struct acpi_sdt_header h;     /* "MCFG", revision 1 */
	uint64_t reserved;
} __packed;
_Static_assert(sizeof(struct acpi_mcfg) == 44, "MCFG header is 44 bytes (PCI Firmware 3.2 Table 4-2)");

struct acpi_mcfg_alloc {
	uint64_t base;                /* ECAM base of bus 0 of this segment (even when start_bus > 0) */
	uint16_t segment;             /* PCI segment group */
	uint8_t start_bus, end_bus;
	uint32_t reserved;
} __packed;
_Static_assert(sizeof(struct acpi_mcfg_alloc) == 16, "MCFG allocation is 16 bytes (PCI Firmware 3.2 Table 4-3)");

/* FADT flags (Table 5.10) and IA-PC boot architecture flags (§5.2.9.3, Table 5.11). */
#define ACPI_FADT_RESET_REG_SUP     (1u << 10)
#define ACPI_FADT_HW_REDUCED_ACPI   (1u << 20)
#define ACPI_IAPC_8042              (1u << 1)
#define ACPI_IAPC_VGA_NOT_PRESENT   (1u << 2)
#define ACPI_IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)

/* Multiple APIC Description Table (§5.2.12) and its interrupt controller structures. */
struct acpi_madt {
	struct acpi_sdt_header h;     /* "APIC" */
	uint32_t lapic_address;
	uint32_t flags;               /* bit 0 PCAT_COMPAT */
} __packed;
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT header is 44 bytes (ACPI 6.4 §5.2.12)");

enum acpi_madt_type {
	ACPI_MADT_LAPIC = 0,
	ACPI_MADT_IOAPIC = 1,
	ACPI_MADT_INT_SRC_OVERRIDE = 2,
	ACPI_MADT_LAPIC_NMI = 4,
	ACPI_MADT_X2APIC = 9,
	ACPI_MADT_X2APIC_NMI = 10,
};

#define ACPI_MADT_ENABLED 1u          /* LAPIC / x2APIC flags bit 0 (Table 5.23) */

/* Processor Local APIC Structure (§5.2.12.2). */
struct acpi_madt_lapic {
	uint8_t type, length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __packed;
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "MADT LAPIC entry is 8 bytes");

/* I/O APIC Structure (§5.2.12.3). */
struct acpi_madt_ioapic {
	uint8_t type, length;
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __packed;
_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "MADT IOAPIC entry is 12 bytes");

/* Interrupt Source Override Structure (§5.2.12.5). */
struct acpi_madt_iso {
	uint8_t type, length;
	uint8_t bus;                  /* 0: ISA */
	uint8_t source;               /* ISA IRQ */
	uint32_t gsi;
	uint16_t flags;               /* MPS INTI flags (Table 5.26); 0: conforms to the bus */
} __packed;
_Static_assert(sizeof(struct acpi_madt_iso) == 10, "MADT ISO entry is 10 bytes");

/* Local APIC NMI Structure (§5.2.12.7). */
struct acpi_madt_lapic_nmi {
	uint8_t type, length;
	uint8_t processor_uid;        /* 0xff: all processors */
	uint16_t flags;
	uint8_t lint;
} __packed;
_Static_assert(sizeof(struct acpi_madt_lapic_nmi) == 6, "MADT LAPIC NMI entry is 6 bytes");

/* Processor Local x2APIC Structure (§5.2.12.12). */
struct acpi_madt_x2apic {
	uint8_t type, length;
	uint16_t reserved;
	uint32_t x2apic_id;
	uint32_t flags;
	uint32_t processor_uid;
} __packed;
_Static_assert(sizeof(struct acpi_madt_x2apic) == 16, "MADT x2APIC entry is 16 bytes");

/* Local x2APIC NMI Structure (§5.2.12.13). */
struct acpi_madt_x2apic_nmi {
	uint8_t type, length;
	uint16_t flags;
	uint32_t processor_uid;       /* 0xffffffff: all processors */
	uint8_t lint;
	uint8_t reserved[3];
} __packed;
_Static_assert(sizeof(struct acpi_madt_x2apic_nmi) == 12, "MADT x2APIC NMI entry is 12 bytes");

#endif
