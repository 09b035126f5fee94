/* The boot GDT kiln writes at X86_GDT_GPA: selectors and raw descriptors shared by boot and vCPU setup. */
#ifndef KILN_X86_GDT_H
#define KILN_X86_GDT_H

#include "core/types.h"

/*
 * Segment descriptor encoding (Intel SDM Vol. 3A §3.4.5, Figure 3-8):
 *   bits  0-15 limit[15:0]     bits 16-39 base[23:0]
 *   bits 40-47 access byte (P, DPL, S, type)
 *   bits 48-51 limit[19:16]    bits 52-55 flags (G, D/B, L, AVL)
 *   bits 56-63 base[31:24]
 * All of kiln's boot descriptors are flat: base 0, limit 0xfffff.
 */
#define GDT_NULL    0x0000000000000000ULL
/* 64-bit code: P=1 DPL=0 S=1 type=0xb (exec/read, accessed), G=1 L=1 D=0 (SDM §5.2.1). */
#define GDT_CODE64  0x00af9b000000ffffULL
/* Data: P=1 DPL=0 S=1 type=0x3 (read/write, accessed), G=1 B=1. */
#define GDT_DATA    0x00cf93000000ffffULL
/* TSS placeholder: P=1 type=0xb (busy 32-bit TSS, SDM §7.2.2); VMX needs a usable TR. */
#define GDT_TSS     0x008f8b000000ffffULL
/* Flat 32-bit code for the PVH entry (protected mode, paging off): G=1 D=1 type=0xb. */
#define GDT_CODE32  0x00cf9b000000ffffULL

/*
 * Selectors: index * 8, TI=0 (GDT), RPL=0 (SDM §3.4.2). The Linux 64-bit boot
 * protocol (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol") wants
 * __BOOT_CS = 0x10 and __BOOT_DS = 0x18, so code64/data sit there.
 */
#define GDT_SEL_NULL   0x00
#define GDT_SEL_CODE32 0x08
#define GDT_SEL_CODE64 0x10
#define GDT_SEL_DATA   0x18
#define GDT_SEL_TSS    0x20

/* Entries written, in selector order; GDTR.limit = GDT_ENTRIES * 8 - 1. */
#define GDT_ENTRIES 5

/* Field extraction, so struct kvm_segment can be filled from the same numbers. */
static inline uint32_t gdt_desc_base(uint64_t d)
{
	return (uint32_t)(((d >> 16) & 0xffffffULL) | (((d >> 56) & 0xffULL) << 24));
}

/* Limit in bytes: scaled by 4 KiB when G is set (SDM §3.4.5 "G flag"). */
static inline uint32_t gdt_desc_limit(uint64_t d)
{
	uint32_t raw = (uint32_t)((d & 0xffffULL) | (((d >> 48) & 0xfULL) << 16));

	return (d & (1ULL << 55)) ? (raw << 12) | 0xfffU : raw;
}

static inline unsigned gdt_desc_type(uint64_t d) { return (unsigned)((d >> 40) & 0xf); }
static inline unsigned gdt_desc_s(uint64_t d) { return (unsigned)((d >> 44) & 1); }
static inline unsigned gdt_desc_dpl(uint64_t d) { return (unsigned)((d >> 45) & 3); }
static inline unsigned gdt_desc_present(uint64_t d) { return (unsigned)((d >> 47) & 1); }
static inline unsigned gdt_desc_avl(uint64_t d) { return (unsigned)((d >> 52) & 1); }
static inline unsigned gdt_desc_l(uint64_t d) { return (unsigned)((d >> 53) & 1); }
static inline unsigned gdt_desc_db(uint64_t d) { return (unsigned)((d >> 54) & 1); }
static inline unsigned gdt_desc_g(uint64_t d) { return (unsigned)((d >> 55) & 1); }

#endif
