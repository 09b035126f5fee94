/* Fixed guest-physical addresses kiln uses on x86 at boot (all below 1 MiB unless said). */
#ifndef KILN_X86_LAYOUT_H
#define KILN_X86_LAYOUT_H

#define X86_GDT_GPA          0x0500ULL   /* boot GDT (5 entries, arch/x86/gdt.h) */
#define X86_IDT_GPA          0x0540ULL   /* empty IDT, limit 0 */
#define X86_ZERO_PAGE_GPA    0x7000ULL   /* Linux boot_params ("zero page") */
#define X86_PVH_START_GPA    0x6000ULL   /* struct hvm_start_info */
#define X86_PVH_MEMMAP_GPA   0x6100ULL   /* hvm_memmap_table_entry[] (up to 128) */
#define X86_PVH_MODLIST_GPA  0x6e00ULL   /* hvm_modlist_entry[] (initrd) */
#define X86_PML4_GPA         0x9000ULL   /* identity page tables for 64-bit entry */
#define X86_PDPT_GPA         0xa000ULL
#define X86_PD_GPA           0xb000ULL   /* 4 pages: identity-map 4 GiB with 2 MiB pages */
#define X86_BOOT_STACK_GPA   0x8ff0ULL
#define X86_CMDLINE_GPA      0x20000ULL
#define X86_CMDLINE_MAX      0x10000ULL  /* 64 KiB incl. NUL */
#define X86_EBDA_START       0x9fc00ULL  /* e820: RAM below this */
#define X86_BIOS_START       0xa0000ULL  /* VGA/BIOS hole: reserved */
#define X86_ACPI_GPA         0xe0000ULL  /* RSDP and tables: [0xe0000, 0x100000) */
#define X86_ACPI_END         0x100000ULL
#define X86_HIMEM_START      0x100000ULL /* 1 MiB: kernel load address */

/* Chosen for KVM's needs (KVM_SET_TSS_ADDR / KVM_SET_IDENTITY_MAP_ADDR): 3 pages just below the 32-bit hole top. */
#define X86_KVM_IDENTITY_MAP 0xfeffc000ULL
#define X86_KVM_TSS          0xfeffd000ULL

/*
 * Device windows in the 32-bit hole [MEM_HOLE_START = 3 GiB, 4 GiB):
 *   [0xC0000000, 0xE0000000)  PCI memory BARs (the host bridge's _CRS window)
 *   [0xE0000000, 0xE0100000)  PCI ECAM for bus 0 (MCFG; 1 MiB = 32 slots x 8 functions x 4 KiB)
 *   [0xF0000000, +8 x 4 KiB)  virtio-mmio devices, one 4 KiB window each
 */
#define X86_PCI_MMIO_BASE    0xC0000000ULL
#define X86_PCI_MMIO_SIZE    0x20000000ULL
#define X86_PCI_ECAM_BASE    0xE0000000ULL
#define X86_PCI_ECAM_SIZE    0x00100000ULL
#define X86_PCI_BUS_END      0           /* one bus */
#define X86_PCI_CONFIG_PORT  0xcf8       /* CONFIG_ADDRESS 0xcf8, CONFIG_DATA 0xcfc-0xcff */
#define X86_VIRTIO_MMIO_BASE 0xF0000000ULL
#define X86_VIRTIO_MMIO_SIZE 0x1000ULL

/* Interrupt controllers (MADT). */
#define X86_IOAPIC_GPA       0xfec00000ULL
#define X86_LAPIC_GPA        0xfee00000ULL

/* Legacy I/O ports and ISA IRQs. */
#define X86_COM1_PORT        0x3f8
#define X86_COM1_IRQ         4
#define X86_I8042_DATA       0x60
#define X86_I8042_CMD        0x64
#define X86_RTC_PORT         0x70        /* index 0x70, data 0x71 */
#define X86_RTC_IRQ          8
#define X86_PVPANIC_PORT     0x505
/* ACPI hardware-reduced sleep/reset registers (FADT, ACPI 6.4 §4.8.3.7). */
#define X86_ACPI_SLEEP_CTL   0x3c0
#define X86_ACPI_SLEEP_STS   0x3c1
#define X86_ACPI_RESET_PORT  0x3c2
#define X86_ACPI_RESET_VALUE 0x42
/* Debug/test port: test guests write a byte here (like QEMU's isa-debug-exit). */
#define X86_DEBUG_EXIT_PORT  0x501

#endif
