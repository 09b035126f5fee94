/* Linux bzImage loader: 64-bit boot protocol (Documentation/arch/x86/boot.rst) and the zero page. */
#include <errno.h>
#include <string.h>
#include "arch/x86/boot_internal.h"
#include "arch/x86/bootparam.h"
#include "arch/x86/layout.h"

/* Protocol versions (boot.rst "The real-mode kernel header", the Protocol column). */
#define PROTO_2_12 0x020c  /* xloadflags, XLF_KERNEL_64: the 64-bit entry exists */
#define PROTO_2_14 0x020e  /* acpi_rsdp_addr in the zero page */

/* boot.rst "64-bit BOOT PROTOCOL": startup_64 is 0x200 past the protected-mode load address. */
#define STARTUP_64_OFF 0x200

/*
 * heap_end_ptr: offset from the start of the real-mode code of the end of the
 * setup heap, minus 0x200 (boot.rst "heap_end_ptr"). kiln runs no real-mode
 * code; the value mirrors boot.rst's sample layout (heap ends at 0xe000).
 */
#define HEAP_END_PTR (0xe000 - 0x200)

/* boot.rst "initrd_addr_max": kernels before 2.03 assume 0x37ffffff. */
#define INITRD_ADDR_MAX_DEFAULT 0x37ffffffu

#define SECTOR 512u

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

bool boot_linux_probe(const uint8_t *img, size_t len)
{
	if (!img || len < SH_OFF(header) + 4)
		return false;
	return get_u16(img + SH_OFF(boot_flag)) == BP_BOOT_FLAG &&
	       get_u32(img + SH_OFF(header)) == BP_HDRS_MAGIC;
}

/*
 * Where the kernel runs once its decompressor has moved it: a relocatable
 * kernel picks the load address rounded up to kernel_alignment, but never
 * below LOAD_PHYSICAL_ADDR (= pref_address); a fixed one runs at pref_address
 * (boot.rst "pref_address", "kernel_alignment", "init_size").
 */
static uint64_t linux_runtime_start(const struct setup_header *h, uint64_t load)
{
	uint64_t start = load;
	uint32_t a = h->kernel_alignment;

	if (h->relocatable_kernel && a && !(a & (a - 1)) && a <= GiB)
		start = ALIGN_UP(load, (uint64_t)a);
	return MAX(start, h->pref_address);
}

/* Parse and check the setup header; *hdr_end is 0x202 + the byte at 0x201. */
static int linux_check_header(const uint8_t *img, size_t len, struct setup_header *h,
			      size_t *hdr_end, const char **why)
{
	size_t end;

	if (len < SH_OFF(jump) + 2) {
		*why = "bzImage truncated before its setup header";
		return -ENOEXEC;
	}
	/* boot.rst: the header ends at 0x202 + the jump offset byte at 0x201. */
	end = SH_OFF(header) + (size_t)img[SH_OFF(jump) + 1];
	if (end > len) {
		*why = "bzImage truncated inside its setup header";
		return -ENOEXEC;
	}
	memset(h, 0, sizeof(*h));
	memcpy(h, img + BP_SETUP_HEADER_OFF, MIN(end, BP_SETUP_HEADER_OFF + sizeof(*h)) - BP_SETUP_HEADER_OFF);
	if (h->boot_flag != BP_BOOT_FLAG || h->header != BP_HDRS_MAGIC) {
		*why = "not a bzImage (no HdrS / 0xAA55 signature)";
		return -ENOEXEC;
	}
	if (end < SH_OFF(version) + 2 || h->version < PROTO_2_12) {
		*why = "bzImage boot protocol older than 2.12 (no 64-bit entry point)";
		return -ENOEXEC;
	}
	if (end < SH_OFF(init_size) + 4) {
		*why = "bzImage setup header shorter than its protocol version defines";
		return -ENOEXEC;
	}
	if (!(h->xloadflags & BP_XLF_KERNEL_64)) {
		*why = "bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)";
		return -ENOEXEC;
	}
	if (!(h->loadflags & BP_LOADED_HIGH)) {
		*why = "zImage (not LOADED_HIGH) is not supported";
		return -ENOEXEC;
	}
	if (!h->init_size) {
		*why = "bzImage init_size is 0";
		return -ENOEXEC;
	}
	*hdr_end = end;
	return 0;
}

static void linux_fill_params(struct boot_params *bp, const uint8_t *img, size_t hdr_end,
			      const struct e820_entry *e820, int ne820, gpa_t initrd, uint64_t initrd_size,
			      const struct boot_input *in)
{
	struct setup_header *h = &bp->hdr;

	memset(bp, 0, sizeof(*bp));
	/*
	 * boot.rst "64-bit BOOT PROTOCOL": copy the header as the kernel defines
	 * it (up to 0x202 + byte[0x201]); bytes a newer kernel defines past the
	 * fields kiln knows land in the zero page where that kernel expects them.
	 */
	memcpy(h, img + BP_SETUP_HEADER_OFF, MIN(hdr_end, offsetof(struct boot_params, edd_mbr_sig_buffer)) -
	       BP_SETUP_HEADER_OFF);
	h->type_of_loader = 0xff;                 /* "undefined" loader id */
	h->loadflags |= BP_CAN_USE_HEAP;
	h->heap_end_ptr = HEAP_END_PTR;
	h->code32_start = (uint32_t)X86_HIMEM_START;
	h->cmd_line_ptr = (uint32_t)X86_CMDLINE_GPA;
	bp->ext_cmd_line_ptr = (uint32_t)(X86_CMDLINE_GPA >> 32);
	h->ramdisk_image = (uint32_t)initrd;
	h->ramdisk_size = (uint32_t)initrd_size;
	bp->ext_ramdisk_image = (uint32_t)(initrd >> 32);
	bp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
	/* Fields the loader owns: never trust the file's values (a pointer chain, a platform id). */
	h->setup_data = 0;
	h->hardware_subarch = 0;                  /* X86_SUBARCH_PC */
	h->hardware_subarch_data = 0;
	if (h->version >= PROTO_2_14)
		bp->acpi_rsdp_addr = in->rsdp;
	bp->e820_entries = (uint8_t)ne820;
	memcpy(bp->e820_table, e820, (size_t)ne820 * sizeof(*e820));
}

int boot_linux_load(struct guest_mem *m, const struct boot_input *in, struct boot_result *out,
		    const char **why)
{
	const uint8_t *img = in->kernel;
	size_t len = in->kernel_len, hdr_end = 0, setup_size;
	const gpa_t load = X86_HIMEM_START;
	struct e820_entry e820[BP_E820_MAX];
	struct setup_header h;
	struct boot_params bp;
	uint64_t pm_size, run_start, img_end, run_end, kend, limit;
	gpa_t low_end = boot_low_ram_end(m), initrd = 0;
	uint8_t *dst;
	int ne820, ret;

	ret = linux_check_header(img, len, &h, &hdr_end, why);
	if (ret)
		return ret;
	/* boot.rst: setup_sects 0 means 4; the protected-mode kernel follows the setup sectors. */
	setup_size = ((size_t)(h.setup_sects ? h.setup_sects : 4) + 1) * SECTOR;
	if (setup_size >= len) {
		*why = "bzImage truncated: no protected-mode kernel after the setup sectors";
		return -ENOEXEC;
	}
	pm_size = len - setup_size;

	/*
	 * Load at 1 MiB always (the address boot.rst gives for bzImage); the
	 * decompressor moves the kernel to its runtime address, so what must fit
	 * in RAM is the loaded image and init_size bytes at that runtime address.
	 */
	run_start = linux_runtime_start(&h, load);
	if (__builtin_add_overflow(load, pm_size, &img_end) ||
	    __builtin_add_overflow(run_start, (uint64_t)h.init_size, &run_end) ||
	    MAX(img_end, run_end) > low_end) {
		*why = "kernel (init_size at its runtime address) does not fit in guest RAM below the MMIO hole";
		return -ENOMEM;
	}
	kend = MAX(img_end, run_end);

	ne820 = e820_build(m, e820, BP_E820_MAX);
	if (ne820 < 0) {
		*why = "cannot build the e820 map (guest RAM too small?)";
		return ne820;
	}
	ret = boot_write_cmdline(m, in->cmdline, h.cmdline_size, why);
	if (ret)
		return ret;

	dst = mem_gpa(m, load, pm_size);
	if (!dst) {
		*why = "kernel does not fit in guest RAM";
		return -ENOMEM;
	}
	memcpy(dst, img + setup_size, pm_size);

	limit = (uint64_t)(h.initrd_addr_max ? h.initrd_addr_max : INITRD_ADDR_MAX_DEFAULT) + 1;
	ret = boot_place_initrd(m, in, kend, MIN(limit, low_end), &initrd, why);
	if (ret)
		return ret;

	linux_fill_params(&bp, img, hdr_end, e820, ne820, initrd, in->initrd_len, in);
	if (mem_write(m, X86_ZERO_PAGE_GPA, &bp, sizeof(bp))) {
		*why = "no guest RAM for the zero page";
		return -ENOMEM;
	}

	out->kind = BOOT_BZIMAGE;
	out->entry = load + STARTUP_64_OFF;
	out->params = X86_ZERO_PAGE_GPA;
	out->kernel_end = kend;
	out->initrd_gpa = initrd;
	out->initrd_size = in->initrd_len;
	out->is_linux = true;
	return 0;
}
