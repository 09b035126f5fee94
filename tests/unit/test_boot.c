/* Unit tests for x86 boot: bzImage loading, detection, e820, page tables and the boot GDT (PVH: test_boot_pvh.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/memory.h"
#include "arch/x86/boot.h"
#include "arch/x86/bootparam.h"
#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"

#include "mem_fixture.h"
#define RAM_SIZE MEM_FIXTURE_SIZE

/* ---- fixtures ---------------------------------------------------------- */


static uint64_t get64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* ---- synthetic bzImage ------------------------------------------------- */

#define BZ_SETUP_SECTS 4
#define BZ_SETUP_SIZE ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PM_SIZE 8192
#define BZ_LEN (BZ_SETUP_SIZE + BZ_PM_SIZE)
#define BZ_PREF (16 * MiB)
#define BZ_INIT_SIZE (16 * MiB)

/* A minimal protocol-2.15 bzImage: setup sectors with the header, then a patterned "kernel". */
static uint8_t *make_bzimage(size_t *len)
{
	uint8_t *b = calloc(1, BZ_LEN);

	assert_non_null(b);
	b[SH_OFF(setup_sects)] = BZ_SETUP_SECTS;
	put16(b, SH_OFF(boot_flag), 0xaa55);
	b[0x200] = 0xeb;                         /* jmp short */
	b[0x201] = 0x26c - 0x202;                /* header ends at 0x26c */
	put32(b, SH_OFF(header), 0x53726448);
	put16(b, SH_OFF(version), 0x020f);
	put16(b, SH_OFF(kernel_version), 0x1234);
	b[SH_OFF(loadflags)] = BP_LOADED_HIGH;
	put32(b, SH_OFF(code32_start), 0x100000);
	put32(b, SH_OFF(initrd_addr_max), 0x7fffffff);
	put32(b, SH_OFF(kernel_alignment), 0x200000);
	b[SH_OFF(relocatable_kernel)] = 1;
	put16(b, SH_OFF(xloadflags), BP_XLF_KERNEL_64 | BP_XLF_CAN_BE_LOADED_ABOVE_4G);
	put32(b, SH_OFF(cmdline_size), 2047);
	put64(b, SH_OFF(setup_data), 0xdeadbeef);  /* hostile: must be cleared */
	put64(b, SH_OFF(pref_address), BZ_PREF);
	put32(b, SH_OFF(init_size), BZ_INIT_SIZE);
	for (size_t i = 0; i < BZ_PM_SIZE; i++)
		b[BZ_SETUP_SIZE + i] = (uint8_t)(i * 7 + 3);
	*len = BZ_LEN;
	return b;
}

static struct boot_input bz_input(const uint8_t *k, size_t klen)
{
	return (struct boot_input){ .kernel = k, .kernel_len = klen, .cmdline = "console=ttyS0 quiet",
				    .rsdp = 0xe0000 };
}

static void test_bzimage_load(void **state)
{
	struct guest_mem *m = *state;
	static const uint8_t initrd_pat[] = "INITRD-CONTENT";
	size_t klen, ilen = 100000;
	uint8_t *k = make_bzimage(&klen), *initrd = malloc(ilen);
	struct boot_input in = bz_input(k, klen);
	struct boot_result out;
	struct boot_params bp;
	const char *why = NULL;

	assert_non_null(initrd);
	for (size_t i = 0; i < ilen; i++)
		initrd[i] = initrd_pat[i % (sizeof(initrd_pat) - 1)];
	in.initrd = initrd;
	in.initrd_len = ilen;
	assert_int_equal(boot_detect(k, klen, &why), BOOT_BZIMAGE);
	assert_int_equal(boot_load(m, &in, &out, &why), 0);
	assert_null(why);

	assert_int_equal(out.kind, BOOT_BZIMAGE);
	assert_int_equal(out.entry, 0x100000 + 0x200);
	assert_int_equal(out.params, X86_ZERO_PAGE_GPA);
	assert_true(out.is_linux);
	assert_int_equal(out.kernel_end, BZ_PREF + BZ_INIT_SIZE);
	/* The protected-mode part is at 1 MiB, byte for byte. */
	assert_memory_equal(mem_gpa(m, X86_HIMEM_START, BZ_PM_SIZE), k + BZ_SETUP_SIZE, BZ_PM_SIZE);

	/* initrd: page aligned, above the kernel, as high as RAM allows, intact. */
	assert_int_equal(out.initrd_size, ilen);
	assert_int_equal(out.initrd_gpa % 4096, 0);
	assert_true(out.initrd_gpa >= out.kernel_end);
	assert_true(out.initrd_gpa + ilen <= RAM_SIZE);
	assert_int_equal(out.initrd_gpa, (RAM_SIZE - ilen) & ~4095ULL);
	assert_memory_equal(mem_gpa(m, out.initrd_gpa, ilen), initrd, ilen);

	assert_int_equal(mem_read(m, X86_ZERO_PAGE_GPA, &bp, sizeof(bp)), 0);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.loadflags, BP_LOADED_HIGH | BP_CAN_USE_HEAP);
	assert_int_equal(bp.hdr.heap_end_ptr, 0xde00);
	assert_int_equal(bp.hdr.cmd_line_ptr, X86_CMDLINE_GPA);
	assert_int_equal(bp.ext_cmd_line_ptr, 0);
	assert_int_equal(bp.hdr.ramdisk_image, out.initrd_gpa);
	assert_int_equal(bp.hdr.ramdisk_size, ilen);
	assert_int_equal(bp.ext_ramdisk_image, 0);
	assert_int_equal(bp.hdr.setup_data, 0);
	assert_int_equal(bp.hdr.kernel_version, 0x1234);   /* copied from the file */
	assert_int_equal(bp.hdr.init_size, BZ_INIT_SIZE);
	assert_int_equal(bp.hdr.version, 0x020f);
	assert_int_equal(bp.acpi_rsdp_addr, 0xe0000);
	assert_int_equal(bp.sentinel, 0);
	assert_string_equal((const char *)mem_gpa(m, X86_CMDLINE_GPA, 1), "console=ttyS0 quiet");

	assert_int_equal(bp.e820_entries, 4);
	assert_int_equal(bp.e820_table[0].addr, 0);
	assert_int_equal(bp.e820_table[0].size, X86_EBDA_START);
	assert_int_equal(bp.e820_table[0].type, E820_RAM);
	assert_int_equal(bp.e820_table[1].addr, X86_EBDA_START);
	assert_int_equal(bp.e820_table[1].size, X86_HIMEM_START - X86_EBDA_START);
	assert_int_equal(bp.e820_table[1].type, E820_RESERVED);
	assert_int_equal(bp.e820_table[2].addr, X86_HIMEM_START);
	assert_int_equal(bp.e820_table[2].size, RAM_SIZE - X86_HIMEM_START);
	assert_int_equal(bp.e820_table[2].type, E820_RAM);
	assert_int_equal(bp.e820_table[3].addr, X86_PCI_ECAM_BASE);
	assert_int_equal(bp.e820_table[3].type, E820_RESERVED);
	assert_int_equal(bp.e820_table[4].type, 0);
	free(initrd);
	free(k);
}

static void test_bzimage_no_initrd_old_proto(void **state)
{
	struct guest_mem *m = *state;
	size_t klen;
	uint8_t *k = make_bzimage(&klen);
	struct boot_input in = bz_input(k, klen);
	struct boot_result out;
	struct boot_params bp;
	const char *why = NULL;

	put16(k, SH_OFF(version), 0x020c);          /* 2.12: no acpi_rsdp_addr */
	k[SH_OFF(setup_sects)] = 0;                 /* 0 means 4 */
	in.cmdline = NULL;
	assert_int_equal(boot_load(m, &in, &out, &why), 0);
	assert_int_equal(out.initrd_gpa, 0);
	assert_int_equal(out.initrd_size, 0);
	assert_int_equal(mem_read(m, X86_ZERO_PAGE_GPA, &bp, sizeof(bp)), 0);
	assert_int_equal(bp.acpi_rsdp_addr, 0);
	assert_int_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.hdr.ramdisk_size, 0);
	assert_int_equal(*(const char *)mem_gpa(m, X86_CMDLINE_GPA, 1), '\0');
	assert_memory_equal(mem_gpa(m, X86_HIMEM_START, BZ_PM_SIZE), k + BZ_SETUP_SIZE, BZ_PM_SIZE);
	free(k);
}

/* Load k (modified by the caller) and expect err with a reason. */
static void expect_bz_error(struct guest_mem *m, uint8_t *k, size_t klen, const char *cmdline, int err)
{
	struct boot_input in = bz_input(k, klen);
	struct boot_result out;
	const char *why = NULL;

	in.cmdline = cmdline;
	assert_int_equal(boot_load(m, &in, &out, &why), err);
	assert_non_null(why);
	assert_true(strlen(why) > 0);
}

static void test_bzimage_malformed(void **state)
{
	struct guest_mem *m = *state;
	size_t klen;
	uint8_t *k;
	char *longline;

	k = make_bzimage(&klen);
	expect_bz_error(m, k, 0x220, "", -ENOEXEC);           /* header cut at 0x220 */
	expect_bz_error(m, k, BZ_SETUP_SIZE, "", -ENOEXEC);   /* setup only, no kernel */
	free(k);

	k = make_bzimage(&klen);
	k[SH_OFF(setup_sects)] = 255;                         /* setup larger than the file */
	expect_bz_error(m, k, klen, "", -ENOEXEC);
	free(k);

	k = make_bzimage(&klen);
	put16(k, SH_OFF(version), 0x0206);
	expect_bz_error(m, k, klen, "", -ENOEXEC);
	free(k);

	k = make_bzimage(&klen);
	put16(k, SH_OFF(xloadflags), 0);
	expect_bz_error(m, k, klen, "", -ENOEXEC);
	free(k);

	k = make_bzimage(&klen);
	k[0x201] = 0x30;                                      /* header too short for 2.12 */
	expect_bz_error(m, k, klen, "", -ENOEXEC);
	free(k);

	k = make_bzimage(&klen);
	put32(k, SH_OFF(init_size), 0xffffffff);              /* > 64 MiB of RAM */
	expect_bz_error(m, k, klen, "", -ENOMEM);
	put32(k, SH_OFF(init_size), 0);
	expect_bz_error(m, k, klen, "", -ENOEXEC);
	put32(k, SH_OFF(init_size), BZ_INIT_SIZE);
	put64(k, SH_OFF(pref_address), UINT64_MAX - 4096);   /* runtime address wraps */
	expect_bz_error(m, k, klen, "", -ENOMEM);
	free(k);

	k = make_bzimage(&klen);
	put32(k, SH_OFF(cmdline_size), 8);
	expect_bz_error(m, k, klen, "123456789", -E2BIG);     /* 9 > cmdline_size */
	put32(k, SH_OFF(cmdline_size), 0xffffffff);
	longline = malloc(X86_CMDLINE_MAX + 1);
	assert_non_null(longline);
	memset(longline, 'a', X86_CMDLINE_MAX);
	longline[X86_CMDLINE_MAX] = '\0';                      /* 64 KiB + NUL: over kiln's area */
	expect_bz_error(m, k, klen, longline, -E2BIG);
	longline[X86_CMDLINE_MAX - 1] = '\0';                  /* exactly the maximum: fits */
	{
		struct boot_input in = bz_input(k, klen);
		struct boot_result out;
		const char *why = NULL;

		in.cmdline = longline;
		assert_int_equal(boot_load(m, &in, &out, &why), 0);
		assert_int_equal(strlen(mem_gpa(m, X86_CMDLINE_GPA, 1)), X86_CMDLINE_MAX - 1);
	}
	free(longline);
	free(k);
}

static void test_bzimage_initrd_too_big(void **state)
{
	struct guest_mem *m = *state;
	size_t klen, ilen = 40 * MiB;   /* kernel needs [1 MiB, 32 MiB): 40 MiB cannot fit */
	uint8_t *k = make_bzimage(&klen), *initrd = calloc(1, ilen);
	struct boot_input in = bz_input(k, klen);
	struct boot_result out;
	const char *why = NULL;

	assert_non_null(initrd);
	in.initrd = initrd;
	in.initrd_len = ilen;
	assert_int_equal(boot_load(m, &in, &out, &why), -ENOMEM);
	assert_non_null(why);
	/* initrd_addr_max below the kernel's end: no room either. */
	in.initrd_len = 4096;
	put32(k, SH_OFF(initrd_addr_max), 0x01ffffff);
	assert_int_equal(boot_load(m, &in, &out, &why), -ENOMEM);
	/* ... and a limit above the kernel is honoured. */
	put32(k, SH_OFF(initrd_addr_max), 0x02ffffff);
	assert_int_equal(boot_load(m, &in, &out, &why), 0);
	assert_int_equal(out.initrd_gpa, 0x03000000 - 4096);
	free(initrd);
	free(k);
}

/* Every truncation and many single-byte corruptions: errors or success, never a crash. */
static void test_bzimage_fuzz(void **state)
{
	struct guest_mem *m = *state;
	size_t klen;
	uint8_t *k = make_bzimage(&klen);
	struct boot_result out;
	const char *why;
	unsigned ok = 0;

	for (size_t len = 0; len <= klen; len += (len < 0x300 ? 1 : 509)) {
		struct boot_input in = bz_input(k, len);
		int r = boot_load(m, &in, &out, &why);

		assert_true(r == 0 || (r < 0 && why));
		ok += r == 0;
	}
	assert_true(ok > 0);                                  /* the full image loads */
	srand(1);
	for (unsigned i = 0; i < 4000; i++) {
		uint8_t *c = malloc(klen);
		struct boot_input in;
		int r;

		assert_non_null(c);
		memcpy(c, k, klen);
		c[0x1f1 + (size_t)rand() % (0x270 - 0x1f1)] = (uint8_t)rand();
		in = bz_input(c, klen);
		r = boot_load(m, &in, &out, &why);
		assert_true(r == 0 || (r < 0 && why));
		free(c);
	}
	free(k);
}

/* ---- e820 ---------------------------------------------------------------- */

static void test_e820_layouts(void **state)
{
	struct guest_mem m;
	struct e820_entry e[8];

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_int_equal(mem_layout(&m, 4 * GiB), 0);       /* host pointers stay NULL */
	assert_int_equal(e820_build(&m, e, 8), 5);
	assert_int_equal(e[2].addr, 1 * MiB);
	assert_int_equal(e[2].addr + e[2].size, MEM_HOLE_START); /* RAM stops at the hole */
	assert_int_equal(e[2].type, E820_RAM);
	/* PCI ECAM is reserved, in address order between the two RAM ranges. */
	assert_int_equal(e[3].addr, X86_PCI_ECAM_BASE);
	assert_int_equal(e[3].size, X86_PCI_ECAM_SIZE);
	assert_int_equal(e[3].type, E820_RESERVED);
	assert_int_equal(e[4].addr, 4 * GiB);
	assert_int_equal(e[4].size, 1 * GiB);               /* 4 GiB - 3 GiB below the hole */
	assert_int_equal(e[4].type, E820_RAM);
	assert_int_equal(e820_build(&m, e, 4), -ENOSPC);

	memset(&m, 0, sizeof(m));
	assert_int_equal(mem_layout(&m, 3 * GiB), 0);       /* exactly up to the hole */
	assert_int_equal(e820_build(&m, e, 8), 4);
	assert_int_equal(e[2].addr + e[2].size, 3 * GiB);
	assert_int_equal(e[3].addr, X86_PCI_ECAM_BASE);

	memset(&m, 0, sizeof(m));
	assert_int_equal(mem_layout(&m, 512 * MiB), 0);
	assert_int_equal(e820_build(&m, e, 8), 4);
	assert_int_equal(e[0].size, X86_EBDA_START);
	assert_int_equal(e[1].type, E820_RESERVED);
	assert_int_equal(e[2].size, 511 * MiB);

	memset(&m, 0, sizeof(m));
	assert_int_equal(mem_layout(&m, 1 * MiB), 0);
	assert_int_equal(e820_build(&m, e, 8), -EINVAL);    /* too small for a kernel */
	assert_int_equal(e820_build(NULL, e, 8), -EINVAL);
}

/* ---- page tables and GDT ------------------------------------------------- */

static void test_page_tables(void **state)
{
	struct guest_mem *m = *state;
	const uint8_t *pml4, *pdpt, *pd, *gdt;
	struct guest_mem fake;

	memset(mem_gpa(m, X86_PML4_GPA, 4096), 0xcc, 4096); /* stale bytes must be cleared */
	assert_int_equal(boot_write_page_tables(m), 0);
	pml4 = mem_gpa(m, X86_PML4_GPA, 4096);
	pdpt = mem_gpa(m, X86_PDPT_GPA, 4096);
	pd = mem_gpa(m, X86_PD_GPA, 4 * 4096);
	gdt = mem_gpa(m, X86_GDT_GPA, GDT_ENTRIES * 8);
	assert_int_equal(get64(pml4), X86_PDPT_GPA | 3);
	assert_int_equal(get64(pml4 + 8), 0);
	assert_int_equal(get64(pml4 + 511 * 8), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(get64(pdpt + i * 8), (X86_PD_GPA + i * 4096) | 3);
	assert_int_equal(get64(pdpt + 4 * 8), 0);
	assert_int_equal(get64(pd), 0x83);
	assert_int_equal(get64(pd + 8), 2 * MiB | 0x83);
	assert_int_equal(get64(pd + 4096), 1 * GiB | 0x83);
	assert_int_equal(get64(pd + 3 * 4096 + 511 * 8), (4 * GiB - 2 * MiB) | 0x83);

	assert_int_equal(get64(gdt + GDT_SEL_NULL), 0);
	assert_int_equal(get64(gdt + GDT_SEL_CODE64), 0x00af9b000000ffffULL);
	assert_int_equal(get64(gdt + GDT_SEL_DATA), 0x00cf93000000ffffULL);
	assert_int_equal(get64(gdt + GDT_SEL_TSS), 0x008f8b000000ffffULL);
	assert_int_equal(get64(gdt + GDT_SEL_CODE32), 0x00cf9b000000ffffULL);

	/* Descriptor decoding used for struct kvm_segment. */
	assert_int_equal(gdt_desc_base(GDT_CODE64), 0);
	assert_int_equal(gdt_desc_limit(GDT_CODE64), 0xffffffffu);
	assert_int_equal(gdt_desc_l(GDT_CODE64), 1);
	assert_int_equal(gdt_desc_db(GDT_CODE64), 0);
	assert_int_equal(gdt_desc_type(GDT_CODE64), 0xb);
	assert_int_equal(gdt_desc_db(GDT_CODE32), 1);
	assert_int_equal(gdt_desc_l(GDT_CODE32), 0);
	assert_int_equal(gdt_desc_type(GDT_DATA), 3);
	assert_int_equal(gdt_desc_s(GDT_TSS), 0);
	assert_int_equal(gdt_desc_present(GDT_TSS), 1);
	assert_int_equal(gdt_desc_base(0xff00000000000000ULL | (0x123456ULL << 16)), 0xff123456u);
	assert_int_equal(gdt_desc_limit(0x000f00000000ffffULL), 0xfffffu); /* G=0: bytes */

	/* No host memory behind the layout: an error, not a crash. */
	memset(&fake, 0, sizeof(fake));
	assert_int_equal(mem_layout(&fake, 64 * MiB), 0);
	assert_int_equal(boot_write_page_tables(&fake), -EFAULT);
}

static void test_detect(void **state)
{
	static const uint8_t junk[64] = "MZ this is not a kernel";
	const char *why = NULL;

	(void)state;
	assert_int_equal(boot_detect(junk, sizeof(junk), &why), -ENOEXEC);
	assert_string_equal(why, "not a bzImage or ELF kernel");
	assert_int_equal(boot_detect(junk, 0, &why), -ENOEXEC);
	assert_int_equal(boot_detect(NULL, 10, NULL), -ENOEXEC);
	assert_int_equal(boot_detect((const uint8_t *)"\x7f" "ELF", 4, &why), -ENOEXEC);
	assert_non_null(why);
}

static void test_load_bad_args(void **state)
{
	struct guest_mem *m = *state;
	size_t klen;
	uint8_t *k = make_bzimage(&klen);
	struct boot_input in = bz_input(k, klen);
	struct boot_result out;
	const char *why = NULL;

	in.initrd_len = 10;                           /* length without data */
	assert_int_equal(boot_load(m, &in, &out, &why), -EINVAL);
	assert_int_equal(boot_load(m, NULL, &out, &why), -EINVAL);
	assert_int_equal(boot_load(NULL, &in, &out, NULL), -EINVAL);
	free(k);
}

/* Too little RAM for the kernel: an error, even with a valid image. */
static void test_tiny_ram(void **state)
{
	struct guest_mem m;
	size_t klen;
	uint8_t *k = make_bzimage(&klen);
	struct boot_input in = bz_input(k, klen);
	struct boot_result out;
	const char *why = NULL;

	(void)state;
	assert_int_equal(mem_init(&m, 1 * MiB, MEM_BACKING_MEMFD), 0);
	assert_int_equal(boot_load(&m, &in, &out, &why), -ENOMEM);
	assert_non_null(why);
	mem_destroy(&m);
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bzimage_load, mem_setup, mem_teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_no_initrd_old_proto, mem_setup, mem_teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_malformed, mem_setup, mem_teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_initrd_too_big, mem_setup, mem_teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_fuzz, mem_setup, mem_teardown),
		cmocka_unit_test(test_e820_layouts),
		cmocka_unit_test_setup_teardown(test_page_tables, mem_setup, mem_teardown),
		cmocka_unit_test(test_detect),
		cmocka_unit_test_setup_teardown(test_load_bad_args, mem_setup, mem_teardown),
		cmocka_unit_test(test_tiny_ram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
