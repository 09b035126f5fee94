/* Loading a guest kernel into RAM: Linux bzImage (boot protocol) and PVH ELF. */
#ifndef KILN_X86_BOOT_H
#define KILN_X86_BOOT_H

#include "core/types.h"
#include "core/memory.h"

enum boot_kind {
	BOOT_BZIMAGE, /* 64-bit boot protocol entry: long mode, RSI = boot_params */
	BOOT_PVH,     /* PVH: 32-bit protected mode, paging off, EBX = hvm_start_info */
};

/* What the vCPU setup needs to enter the guest. */
struct boot_result {
	enum boot_kind kind;
	gpa_t entry;        /* RIP (BOOT_BZIMAGE: startup_64; BOOT_PVH: XEN_ELFNOTE_PHYS32_ENTRY) */
	gpa_t params;       /* RSI for bzImage (zero page), RBX for PVH (hvm_start_info) */
	gpa_t kernel_end;   /* first byte past the loaded image */
	gpa_t initrd_gpa;
	uint64_t initrd_size;
	bool is_linux;      /* bzImage, or an ELF with Linux's notes: kiln appends cmdline defaults */
};

struct boot_input {
	const uint8_t *kernel; size_t kernel_len;
	const uint8_t *initrd; size_t initrd_len; /* NULL/0: none */
	const char *cmdline;                      /* final command line */
	gpa_t rsdp;                               /* ACPI RSDP, 0 if none */
};

/* Sniff the image: BOOT_BZIMAGE, BOOT_PVH, or -ENOEXEC with a reason in *why. */
int boot_detect(const uint8_t *img, size_t len, const char **why);

/*
 * Load kernel, initrd and cmdline into m and write boot_params or
 * hvm_start_info (with the e820 map / memmap from m's regions).
 * 0, or -errno with a one-line reason in *why (never crashes on a malformed file).
 */
int boot_load(struct guest_mem *m, const struct boot_input *in, struct boot_result *out, const char **why);

/* e820 (Linux boot protocol "zero page" e820_table; also the PVH memmap). */
#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3
struct e820_entry { uint64_t addr; uint64_t size; uint32_t type; } __packed;
_Static_assert(sizeof(struct e820_entry) == 20, "e820 entry is 20 bytes");

/* Build the e820 map for m into out[max]; count, -ENOSPC, or -EINVAL (NULL argument / RAM < 2 MiB). */
int e820_build(const struct guest_mem *m, struct e820_entry *out, int max);

/* Write identity page tables (4 GiB, 2 MiB pages) and the boot GDT into m. */
int boot_write_page_tables(struct guest_mem *m);

#endif
