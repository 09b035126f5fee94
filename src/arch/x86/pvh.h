/* PVH boot ABI: hvm_start_info v1 and its tables (Xen public/arch-x86/hvm/start_info.h, public/elfnote.h). */
#ifndef KILN_X86_PVH_H
#define KILN_X86_PVH_H

#include <stddef.h>
#include "core/types.h"

/* "xEn3" with the 0x80 bit of the "E" set (start_info.h XEN_HVM_START_MAGIC_VALUE). */
#define PVH_START_MAGIC 0x336ec578u
#define PVH_START_VERSION 1            /* version 1 adds memmap_paddr/memmap_entries */

/* public/elfnote.h: desc is the 32-bit physical entry point (paging off, %ebx = start info). */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* Memory map types share e820's numbering (start_info.h XEN_HVM_MEMMAP_TYPE_*). */
#define PVH_MEMMAP_RAM      1
#define PVH_MEMMAP_RESERVED 2
#define PVH_MEMMAP_ACPI     3

/* Room kiln gives the memmap at X86_PVH_MEMMAP_GPA (layout.h: up to 128 entries). */
#define PVH_MEMMAP_MAX 128

struct hvm_start_info {
	uint32_t magic;           /* 0 */
	uint32_t version;         /* 4 */
	uint32_t flags;           /* 8: SIF_xxx, kiln sets none */
	uint32_t nr_modules;      /* 12 */
	uint64_t modlist_paddr;   /* 16 */
	uint64_t cmdline_paddr;   /* 24 */
	uint64_t rsdp_paddr;      /* 32 */
	uint64_t memmap_paddr;    /* 40 (v1) */
	uint32_t memmap_entries;  /* 48 (v1) */
	uint32_t reserved;        /* 52: must be zero */
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 is 56 bytes");
_Static_assert(offsetof(struct hvm_start_info, modlist_paddr) == 16, "modlist_paddr at 16");
_Static_assert(offsetof(struct hvm_start_info, rsdp_paddr) == 32, "rsdp_paddr at 32");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 40, "memmap_paddr at 40");
_Static_assert(offsetof(struct hvm_start_info, memmap_entries) == 48, "memmap_entries at 48");

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;   /* 0: no per-module command line */
	uint64_t reserved;
};
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry is 32 bytes");

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry is 24 bytes");

#endif
