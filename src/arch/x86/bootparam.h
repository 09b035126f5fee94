/* Linux x86 boot protocol layouts: struct setup_header and the "zero page" struct boot_params. */
#ifndef KILN_X86_BOOTPARAM_H
#define KILN_X86_BOOTPARAM_H

#include <stddef.h>
#include "core/types.h"
#include "arch/x86/boot.h"

/*
 * Field offsets follow Documentation/arch/x86/boot.rst ("The real-mode kernel
 * header") and Documentation/arch/x86/zero-page.rst. Only the fields kiln
 * reads or writes are named; the rest is padding, so the offsets are what the
 * _Static_asserts below pin down. All fields are little endian.
 */

#define BP_SETUP_HEADER_OFF 0x1f1   /* boot.rst: header starts at 0x1f1 in the image */
#define BP_HDRS_MAGIC 0x53726448u   /* "HdrS" at 0x202 */
#define BP_BOOT_FLAG 0xaa55u        /* at 0x1fe */

/* loadflags (boot.rst "loadflags") */
#define BP_LOADED_HIGH   0x01u
#define BP_CAN_USE_HEAP  0x80u
/* xloadflags (boot.rst "xloadflags", protocol 2.12+) */
#define BP_XLF_KERNEL_64 0x01u
#define BP_XLF_CAN_BE_LOADED_ABOVE_4G 0x02u

#define BP_E820_MAX 128             /* zero-page.rst: e820_table[128] at 0x2d0 */

struct setup_header {
	uint8_t  setup_sects;         /* 0x1f1 */
	uint16_t root_flags;          /* 0x1f2 */
	uint32_t syssize;             /* 0x1f4 */
	uint16_t ram_size;            /* 0x1f8 */
	uint16_t vid_mode;            /* 0x1fa */
	uint16_t root_dev;            /* 0x1fc */
	uint16_t boot_flag;           /* 0x1fe */
	uint16_t jump;                /* 0x200 */
	uint32_t header;              /* 0x202 */
	uint16_t version;             /* 0x206 */
	uint32_t realmode_swtch;      /* 0x208 */
	uint16_t start_sys_seg;       /* 0x20c */
	uint16_t kernel_version;      /* 0x20e */
	uint8_t  type_of_loader;      /* 0x210 */
	uint8_t  loadflags;           /* 0x211 */
	uint16_t setup_move_size;     /* 0x212 */
	uint32_t code32_start;        /* 0x214 */
	uint32_t ramdisk_image;       /* 0x218 */
	uint32_t ramdisk_size;        /* 0x21c */
	uint32_t bootsect_kludge;     /* 0x220 */
	uint16_t heap_end_ptr;        /* 0x224 */
	uint8_t  ext_loader_ver;      /* 0x226 */
	uint8_t  ext_loader_type;     /* 0x227 */
	uint32_t cmd_line_ptr;        /* 0x228 */
	uint32_t initrd_addr_max;     /* 0x22c */
	uint32_t kernel_alignment;    /* 0x230 */
	uint8_t  relocatable_kernel;  /* 0x234 */
	uint8_t  min_alignment;       /* 0x235 */
	uint16_t xloadflags;          /* 0x236 */
	uint32_t cmdline_size;        /* 0x238 */
	uint32_t hardware_subarch;    /* 0x23c */
	uint64_t hardware_subarch_data; /* 0x240 */
	uint32_t payload_offset;      /* 0x248 */
	uint32_t payload_length;      /* 0x24c */
	uint64_t setup_data;          /* 0x250 */
	uint64_t pref_address;        /* 0x258 */
	uint32_t init_size;           /* 0x260 */
	uint32_t handover_offset;     /* 0x264 */
	uint32_t kernel_info_offset;  /* 0x268 */
} __packed;

#define SH_OFF(f) (BP_SETUP_HEADER_OFF + offsetof(struct setup_header, f))
_Static_assert(sizeof(struct setup_header) == 0x26c - 0x1f1, "setup_header ends at 0x26c");
_Static_assert(SH_OFF(boot_flag) == 0x1fe, "boot_flag at 0x1fe");
_Static_assert(SH_OFF(jump) == 0x200, "jump at 0x200");
_Static_assert(SH_OFF(header) == 0x202, "header magic at 0x202");
_Static_assert(SH_OFF(version) == 0x206, "version at 0x206");
_Static_assert(SH_OFF(type_of_loader) == 0x210, "type_of_loader at 0x210");
_Static_assert(SH_OFF(loadflags) == 0x211, "loadflags at 0x211");
_Static_assert(SH_OFF(code32_start) == 0x214, "code32_start at 0x214");
_Static_assert(SH_OFF(ramdisk_image) == 0x218, "ramdisk_image at 0x218");
_Static_assert(SH_OFF(heap_end_ptr) == 0x224, "heap_end_ptr at 0x224");
_Static_assert(SH_OFF(cmd_line_ptr) == 0x228, "cmd_line_ptr at 0x228");
_Static_assert(SH_OFF(initrd_addr_max) == 0x22c, "initrd_addr_max at 0x22c");
_Static_assert(SH_OFF(relocatable_kernel) == 0x234, "relocatable_kernel at 0x234");
_Static_assert(SH_OFF(xloadflags) == 0x236, "xloadflags at 0x236");
_Static_assert(SH_OFF(cmdline_size) == 0x238, "cmdline_size at 0x238");
_Static_assert(SH_OFF(setup_data) == 0x250, "setup_data at 0x250");
_Static_assert(SH_OFF(pref_address) == 0x258, "pref_address at 0x258");
_Static_assert(SH_OFF(init_size) == 0x260, "init_size at 0x260");
_Static_assert(SH_OFF(kernel_info_offset) == 0x268, "kernel_info_offset at 0x268");

struct boot_params {
	uint8_t  screen_info[0x40];           /* 0x000 */
	uint8_t  apm_bios_info[0x14];         /* 0x040 */
	uint8_t  _pad2[4];                    /* 0x054 */
	uint64_t tboot_addr;                  /* 0x058 */
	uint8_t  ist_info[0x10];              /* 0x060 */
	uint64_t acpi_rsdp_addr;              /* 0x070 (protocol 2.14+) */
	uint8_t  _pad3[8];                    /* 0x078 */
	uint8_t  _obsolete[0x40];             /* 0x080 hd0/hd1/sys_desc_table/olpc */
	uint32_t ext_ramdisk_image;           /* 0x0c0 */
	uint32_t ext_ramdisk_size;            /* 0x0c4 */
	uint32_t ext_cmd_line_ptr;            /* 0x0c8 */
	uint8_t  _pad4[0x13c - 0xcc];         /* 0x0cc */
	uint32_t cc_blob_address;             /* 0x13c */
	uint8_t  edid_info[0x80];             /* 0x140 */
	uint8_t  efi_info[0x20];              /* 0x1c0 */
	uint32_t alt_mem_k;                   /* 0x1e0 */
	uint32_t scratch;                     /* 0x1e4 */
	uint8_t  e820_entries;                /* 0x1e8 */
	uint8_t  eddbuf_entries;              /* 0x1e9 */
	uint8_t  edd_mbr_sig_buf_entries;     /* 0x1ea */
	uint8_t  kbd_status;                  /* 0x1eb */
	uint8_t  secure_boot;                 /* 0x1ec */
	uint8_t  _pad5[2];                    /* 0x1ed */
	uint8_t  sentinel;                    /* 0x1ef: must stay 0 (boot.rst "sentinel") */
	uint8_t  _pad6[1];                    /* 0x1f0 */
	struct setup_header hdr;              /* 0x1f1 */
	uint8_t  _pad7[0x290 - 0x26c];        /* 0x26c */
	uint32_t edd_mbr_sig_buffer[16];      /* 0x290 */
	struct e820_entry e820_table[BP_E820_MAX]; /* 0x2d0 */
	uint8_t  _pad8[0xd00 - 0xcd0];        /* 0xcd0 */
	uint8_t  eddbuf[0xeec - 0xd00];       /* 0xd00 */
	uint8_t  _pad9[0x1000 - 0xeec];       /* 0xeec */
} __packed;

_Static_assert(sizeof(struct boot_params) == 4096, "boot_params is one 4 KiB page");
_Static_assert(offsetof(struct boot_params, acpi_rsdp_addr) == 0x070, "acpi_rsdp_addr at 0x070");
_Static_assert(offsetof(struct boot_params, ext_ramdisk_image) == 0x0c0, "ext_ramdisk_image at 0x0c0");
_Static_assert(offsetof(struct boot_params, ext_ramdisk_size) == 0x0c4, "ext_ramdisk_size at 0x0c4");
_Static_assert(offsetof(struct boot_params, ext_cmd_line_ptr) == 0x0c8, "ext_cmd_line_ptr at 0x0c8");
_Static_assert(offsetof(struct boot_params, cc_blob_address) == 0x13c, "cc_blob_address at 0x13c");
_Static_assert(offsetof(struct boot_params, alt_mem_k) == 0x1e0, "alt_mem_k at 0x1e0");
_Static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "e820_entries at 0x1e8");
_Static_assert(offsetof(struct boot_params, sentinel) == 0x1ef, "sentinel at 0x1ef");
_Static_assert(offsetof(struct boot_params, hdr) == BP_SETUP_HEADER_OFF, "setup_header at 0x1f1");
_Static_assert(offsetof(struct boot_params, edd_mbr_sig_buffer) == 0x290, "edd_mbr_sig_buffer at 0x290");
_Static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820_table at 0x2d0");
_Static_assert(offsetof(struct boot_params, eddbuf) == 0xd00, "eddbuf at 0xd00");

#endif
