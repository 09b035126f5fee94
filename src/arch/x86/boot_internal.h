/* Private interface between the boot dispatcher (boot.c) and the bzImage / PVH loaders. */
#ifndef KILN_X86_BOOT_INTERNAL_H
#define KILN_X86_BOOT_INTERNAL_H

#include "arch/x86/boot.h"

/* Alignment of the initrd: page aligned, as boot.rst and the PVH ABI expect. */
#define BOOT_INITRD_ALIGN 4096ULL

/* bzImage: "HdrS" at 0x202 and 0xAA55 at 0x1fe (boot.rst). Only sniffs. */
bool boot_linux_probe(const uint8_t *img, size_t len);
int boot_linux_load(struct guest_mem *m, const struct boot_input *in, struct boot_result *out,
		    const char **why);

/*
 * PVH ELF: 0 if img is a well-formed x86 ELF with a XEN_ELFNOTE_PHYS32_ENTRY
 * note, -ENOEXEC (reason in *why) otherwise.
 */
int boot_pvh_probe(const uint8_t *img, size_t len, const char **why);
int boot_pvh_load(struct guest_mem *m, const struct boot_input *in, struct boot_result *out,
		  const char **why);

/* First byte past the RAM that starts at 0 (region 0; below the MMIO hole). */
gpa_t boot_low_ram_end(const struct guest_mem *m);

/*
 * Write the NUL-terminated command line at X86_CMDLINE_GPA; NULL means "".
 * -E2BIG if it is longer than max_len bytes (NUL excluded).
 */
int boot_write_cmdline(struct guest_mem *m, const char *cmdline, uint64_t max_len, const char **why);

/*
 * Copy the initrd (in->initrd, in->initrd_len > 0) page aligned as high as
 * possible with its end <= limit and its start >= floor; gpa in *out.
 * -ENOMEM if it does not fit.
 */
int boot_place_initrd(struct guest_mem *m, const struct boot_input *in, gpa_t floor, gpa_t limit,
		      gpa_t *out, const char **why);

#endif
