/* Unit tests for the PVH ELF loader: ELF32/ELF64 parsing, the PHYS32_ENTRY note, hvm_start_info, malformed files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/memory.h"
#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "arch/x86/pvh.h"

#include "mem_fixture.h"
#define RAM_SIZE MEM_FIXTURE_SIZE

/* ---- fixtures ---------------------------------------------------------- */


/* ---- synthetic PVH ELFs -------------------------------------------------- */

#define ELF_LOAD_PADDR (2 * MiB)
#define ELF_ENTRY (ELF_LOAD_PADDR + 0x10)
#define ELF_DATA_OFF 0x200
#define ELF_FILESZ 0x100
#define ELF_MEMSZ 0x2000
#define ELF_NOTE_OFF 0x100
#define ELF64_LEN (ELF_DATA_OFF + ELF_FILESZ)

/* Append one note (4-byte padding); returns the new end. */
static size_t add_note(uint8_t *b, size_t pos, const char *name, uint32_t type, const void *desc,
		       uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;

	put32(b, pos, namesz);
	put32(b, pos + 4, descsz);
	put32(b, pos + 8, type);
	pos += 12;
	memcpy(b + pos, name, namesz);
	pos += (namesz + 3) & ~3u;
	memcpy(b + pos, desc, descsz);
	return pos + ((descsz + 3) & ~3u);
}

/*
 * ELF64: Ehdr | PT_LOAD, PT_NOTE | notes at 0x100 ("Linux", then "Xen"
 * PHYS32_ENTRY) | 0x100 bytes of segment data at 0x200 loaded at 2 MiB.
 */
static uint8_t *make_elf64(size_t *len)
{
	uint8_t *b = calloc(1, ELF64_LEN);
	Elf64_Ehdr e = { 0 };
	Elf64_Phdr ph[2] = { 0 };
	uint32_t entry = ELF_ENTRY, ver = 0x060100;
	size_t end;

	assert_non_null(b);
	memcpy(e.e_ident, ELFMAG, SELFMAG);
	e.e_ident[EI_CLASS] = ELFCLASS64;
	e.e_ident[EI_DATA] = ELFDATA2LSB;
	e.e_ident[EI_VERSION] = EV_CURRENT;
	e.e_type = ET_EXEC;
	e.e_machine = EM_X86_64;
	e.e_version = EV_CURRENT;
	e.e_entry = 0xffffffff81000000ULL;  /* virtual; PVH ignores it */
	e.e_phoff = sizeof(e);
	e.e_ehsize = sizeof(e);
	e.e_phentsize = sizeof(Elf64_Phdr);
	e.e_phnum = 2;
	memcpy(b, &e, sizeof(e));

	end = add_note(b, ELF_NOTE_OFF, "Linux", 0x100, &ver, 4);
	end = add_note(b, end, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	assert_true(end <= ELF_DATA_OFF);

	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = ELF_DATA_OFF, .p_vaddr = ELF_LOAD_PADDR,
			      .p_paddr = ELF_LOAD_PADDR, .p_filesz = ELF_FILESZ, .p_memsz = ELF_MEMSZ,
			      .p_align = 0x1000, .p_flags = PF_R | PF_X };
	ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = ELF_NOTE_OFF, .p_filesz = end - ELF_NOTE_OFF,
			      .p_align = 4 };
	memcpy(b + sizeof(e), ph, sizeof(ph));
	for (size_t i = 0; i < ELF_FILESZ; i++)
		b[ELF_DATA_OFF + i] = (uint8_t)(0x40 + i);
	*len = ELF64_LEN;
	return b;
}

static Elf64_Phdr *phdr64(uint8_t *b, unsigned i)
{
	return (Elf64_Phdr *)(void *)(b + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

static void test_pvh_elf64_load(void **state)
{
	struct guest_mem *m = *state;
	size_t klen;
	uint8_t *k = make_elf64(&klen);
	uint8_t initrd[5000];
	struct boot_input in = { .kernel = k, .kernel_len = klen, .cmdline = "hello pvh", .rsdp = 0xe0000,
				 .initrd = initrd, .initrd_len = sizeof(initrd) };
	struct hvm_memmap_table_entry mm[4];
	struct hvm_modlist_entry mod;
	struct hvm_start_info si;
	struct boot_result out;
	const char *why = NULL;
	const uint8_t *seg;

	memset(initrd, 0x5a, sizeof(initrd));
	memset(mem_gpa(m, ELF_LOAD_PADDR, ELF_MEMSZ), 0xaa, ELF_MEMSZ); /* bss must be zeroed */
	assert_int_equal(boot_detect(k, klen, &why), BOOT_PVH);
	assert_int_equal(boot_load(m, &in, &out, &why), 0);
	assert_int_equal(out.kind, BOOT_PVH);
	assert_int_equal(out.entry, ELF_ENTRY);
	assert_int_equal(out.params, X86_PVH_START_GPA);
	assert_int_equal(out.kernel_end, ELF_LOAD_PADDR + ELF_MEMSZ);
	assert_true(out.is_linux);

	seg = mem_gpa(m, ELF_LOAD_PADDR, ELF_MEMSZ);
	assert_memory_equal(seg, k + ELF_DATA_OFF, ELF_FILESZ);
	for (size_t i = ELF_FILESZ; i < ELF_MEMSZ; i++)
		assert_int_equal(seg[i], 0);

	assert_int_equal(out.initrd_gpa % 4096, 0);
	assert_int_equal(out.initrd_gpa, (RAM_SIZE - sizeof(initrd)) & ~4095ULL);
	assert_memory_equal(mem_gpa(m, out.initrd_gpa, sizeof(initrd)), initrd, sizeof(initrd));

	assert_int_equal(mem_read(m, X86_PVH_START_GPA, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, 0x336ec578);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.flags, 0);
	assert_int_equal(si.cmdline_paddr, X86_CMDLINE_GPA);
	assert_int_equal(si.rsdp_paddr, 0xe0000);
	assert_int_equal(si.nr_modules, 1);
	assert_int_equal(si.modlist_paddr, X86_PVH_MODLIST_GPA);
	assert_int_equal(si.memmap_paddr, X86_PVH_MEMMAP_GPA);
	assert_int_equal(si.memmap_entries, 4);
	assert_int_equal(si.reserved, 0);
	assert_string_equal((const char *)mem_gpa(m, X86_CMDLINE_GPA, 1), "hello pvh");

	assert_int_equal(mem_read(m, X86_PVH_MODLIST_GPA, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.paddr, out.initrd_gpa);
	assert_int_equal(mod.size, sizeof(initrd));
	assert_int_equal(mod.cmdline_paddr, 0);

	assert_int_equal(mem_read(m, X86_PVH_MEMMAP_GPA, mm, 4 * sizeof(mm[0])), 0);
	assert_int_equal(mm[0].addr, 0);
	assert_int_equal(mm[0].type, PVH_MEMMAP_RAM);
	assert_int_equal(mm[1].addr, X86_EBDA_START);
	assert_int_equal(mm[1].type, PVH_MEMMAP_RESERVED);
	assert_int_equal(mm[2].addr, X86_HIMEM_START);
	assert_int_equal(mm[2].size, RAM_SIZE - X86_HIMEM_START);
	assert_int_equal(mm[2].type, PVH_MEMMAP_RAM);
	assert_int_equal(mm[3].addr, X86_PCI_ECAM_BASE);
	assert_int_equal(mm[3].size, X86_PCI_ECAM_SIZE);
	assert_int_equal(mm[3].type, PVH_MEMMAP_RESERVED);
	free(k);
}

/*
 * ELF32 whose PVH note is only in a SHT_NOTE section (no PT_NOTE), with an
 * 8-byte entry descriptor and no "Linux" note: not Linux.
 */
static void test_pvh_elf32_section_note(void **state)
{
	struct guest_mem *m = *state;
	uint8_t b[0x400] = { 0 };
	Elf32_Ehdr e = { 0 };
	Elf32_Phdr ph = { 0 };
	Elf32_Shdr sh[2] = { 0 };
	uint64_t entry = 0x300004;
	struct boot_input in = { .kernel = b, .kernel_len = sizeof(b) };
	struct boot_result out;
	struct hvm_start_info si;
	const char *why = NULL;
	size_t end;

	memcpy(e.e_ident, ELFMAG, SELFMAG);
	e.e_ident[EI_CLASS] = ELFCLASS32;
	e.e_ident[EI_DATA] = ELFDATA2LSB;
	e.e_ident[EI_VERSION] = EV_CURRENT;
	e.e_type = ET_EXEC;
	e.e_machine = EM_386;
	e.e_version = EV_CURRENT;
	e.e_phoff = sizeof(e);
	e.e_phentsize = sizeof(ph);
	e.e_phnum = 1;
	e.e_shoff = 0x300;
	e.e_shentsize = sizeof(Elf32_Shdr);
	e.e_shnum = 2;
	memcpy(b, &e, sizeof(e));
	ph = (Elf32_Phdr){ .p_type = PT_LOAD, .p_offset = 0x200, .p_paddr = 0x300000, .p_filesz = 0x20,
			   .p_memsz = 0x20 };
	memcpy(b + sizeof(e), &ph, sizeof(ph));
	end = add_note(b, 0x100, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, &entry, 8);
	sh[1] = (Elf32_Shdr){ .sh_type = SHT_NOTE, .sh_offset = 0x100, .sh_size = (Elf32_Word)(end - 0x100),
			      .sh_addralign = 4 };
	memcpy(b + 0x300, sh, sizeof(sh));
	memset(b + 0x200, 0xf4, 0x20);  /* hlt */

	assert_int_equal(boot_detect(b, sizeof(b), &why), BOOT_PVH);
	assert_int_equal(boot_load(m, &in, &out, &why), 0);
	assert_int_equal(out.entry, 0x300004);
	assert_false(out.is_linux);
	assert_int_equal(out.initrd_gpa, 0);
	assert_int_equal(*(const uint8_t *)mem_gpa(m, 0x30001f, 1), 0xf4);
	assert_int_equal(mem_read(m, X86_PVH_START_GPA, &si, sizeof(si)), 0);
	assert_int_equal(si.nr_modules, 0);
	assert_int_equal(si.modlist_paddr, 0);
	assert_int_equal(si.rsdp_paddr, 0);

	/* A broken section table is an error, not a crash. */
	put32(b, offsetof(Elf32_Ehdr, e_shoff), 0x3f0);
	assert_int_equal(boot_detect(b, sizeof(b), &why), -ENOEXEC);
	assert_non_null(why);
}

static void expect_elf_error(struct guest_mem *m, const uint8_t *k, size_t klen, int err)
{
	struct boot_input in = { .kernel = k, .kernel_len = klen, .cmdline = "" };
	struct boot_result out;
	const char *why = NULL;

	assert_int_equal(boot_load(m, &in, &out, &why), err);
	assert_non_null(why);
}

static void test_pvh_malformed(void **state)
{
	struct guest_mem *m = *state;
	size_t klen, note_xen;
	uint8_t *k;
	const char *why = NULL;

	/* Offset of the "Xen" note: after the "Linux" note (12 + 8 + 4 bytes). */
	note_xen = ELF_NOTE_OFF + 24;

	k = make_elf64(&klen);
	put64(k, offsetof(Elf64_Ehdr, e_phoff), klen - 8);               /* phdrs beyond the file */
	expect_elf_error(m, k, klen, -ENOEXEC);
	put64(k, offsetof(Elf64_Ehdr, e_phoff), UINT64_MAX - 8);         /* and wrapping */
	expect_elf_error(m, k, klen, -ENOEXEC);
	free(k);

	k = make_elf64(&klen);
	put16(k, offsetof(Elf64_Ehdr, e_phentsize), 32);
	expect_elf_error(m, k, klen, -ENOEXEC);
	free(k);

	k = make_elf64(&klen);
	phdr64(k, 0)->p_filesz = ELF_MEMSZ + 1;
	expect_elf_error(m, k, klen, -ENOEXEC);
	free(k);

	k = make_elf64(&klen);
	phdr64(k, 0)->p_offset = UINT64_MAX - 0x10;                      /* data offset wraps */
	expect_elf_error(m, k, klen, -ENOEXEC);
	free(k);

	k = make_elf64(&klen);
	phdr64(k, 0)->p_memsz = RAM_SIZE;                                /* runs past RAM */
	expect_elf_error(m, k, klen, -ENOMEM);
	phdr64(k, 0)->p_paddr = 0xfffffffffffff000ULL;                   /* wraps 2^64 */
	phdr64(k, 0)->p_memsz = 0x2000;
	expect_elf_error(m, k, klen, -ENOMEM);
	phdr64(k, 0)->p_paddr = 0x10000;                                 /* kiln's low area */
	expect_elf_error(m, k, klen, -ENOEXEC);
	phdr64(k, 0)->p_paddr = 8 * MiB;                                 /* entry outside */
	expect_elf_error(m, k, klen, -ENOEXEC);
	phdr64(k, 0)->p_type = PT_NULL;                                  /* nothing to load */
	expect_elf_error(m, k, klen, -ENOEXEC);
	free(k);

	k = make_elf64(&klen);
	put32(k, ELF_NOTE_OFF, 0xffffffff);                              /* huge namesz */
	expect_elf_error(m, k, klen, -ENOEXEC);
	assert_int_equal(boot_detect(k, klen, &why), -ENOEXEC);
	free(k);

	k = make_elf64(&klen);
	put32(k, note_xen + 4, 0xfffffff0);                              /* huge descsz */
	expect_elf_error(m, k, klen, -ENOEXEC);
	put32(k, note_xen + 4, 2);                                       /* 2-byte entry */
	expect_elf_error(m, k, klen, -ENOEXEC);
	free(k);

	k = make_elf64(&klen);
	put32(k, note_xen + 8, 17);                                      /* not PHYS32_ENTRY */
	why = NULL;
	assert_int_equal(boot_detect(k, klen, &why), -ENOEXEC);
	assert_non_null(why);
	assert_non_null(strstr(why, "PHYS32_ENTRY"));
	expect_elf_error(m, k, klen, -ENOEXEC);
	free(k);

	k = make_elf64(&klen);
	put16(k, offsetof(Elf64_Ehdr, e_machine), EM_ARM);
	expect_elf_error(m, k, klen, -ENOEXEC);
	k[EI_CLASS] = 7;
	expect_elf_error(m, k, klen, -ENOEXEC);
	free(k);

	k = make_elf64(&klen);
	phdr64(k, 1)->p_filesz = klen;                                   /* note area past EOF */
	expect_elf_error(m, k, klen, -ENOEXEC);
	free(k);
}

/* A note area of 1100 empty notes: the walk is bounded and says so. */
static void test_pvh_too_many_notes(void **state)
{
	struct guest_mem *m = *state;
	size_t klen, n = 1100, big = ELF64_LEN + n * 12;
	uint8_t *k = make_elf64(&klen), *b = calloc(1, big);

	assert_non_null(b);
	memcpy(b, k, klen);
	phdr64(b, 1)->p_offset = klen;
	phdr64(b, 1)->p_filesz = n * 12;
	{
		struct boot_input in = { .kernel = b, .kernel_len = big };
		struct boot_result out;
		const char *why = NULL;

		assert_int_equal(boot_load(m, &in, &out, &why), -ENOEXEC);
		assert_non_null(why);
		assert_non_null(strstr(why, "too many"));
	}
	free(b);
	free(k);
}

static void test_pvh_fuzz(void **state)
{
	struct guest_mem *m = *state;
	size_t klen;
	uint8_t *k = make_elf64(&klen);
	struct boot_result out;
	const char *why;
	unsigned ok = 0;

	for (size_t len = 0; len <= klen; len++) {
		struct boot_input in = { .kernel = k, .kernel_len = len };
		int r = boot_load(m, &in, &out, &why);

		assert_true(r == 0 || (r < 0 && why));
		ok += r == 0;
	}
	assert_int_equal(ok, 1);                  /* only the whole file loads */
	srand(2);
	for (unsigned i = 0; i < 20000; i++) {
		uint8_t c[ELF64_LEN];
		struct boot_input in = { .kernel = c, .kernel_len = sizeof(c) };
		int r;

		memcpy(c, k, klen);
		for (unsigned j = 0; j < 3; j++)
			c[(size_t)rand() % ELF_DATA_OFF] = (uint8_t)rand();
		r = boot_load(m, &in, &out, &why);
		assert_true(r == 0 || (r < 0 && why));
	}
	free(k);
}

/* Too little RAM for the segment: an error, not a crash. */
static void test_pvh_tiny_ram(void **state)
{
	struct guest_mem m;
	size_t klen;
	uint8_t *k = make_elf64(&klen);
	struct boot_input in = { .kernel = k, .kernel_len = klen };
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
		cmocka_unit_test_setup_teardown(test_pvh_elf64_load, mem_setup, mem_teardown),
		cmocka_unit_test_setup_teardown(test_pvh_elf32_section_note, mem_setup, mem_teardown),
		cmocka_unit_test_setup_teardown(test_pvh_malformed, mem_setup, mem_teardown),
		cmocka_unit_test_setup_teardown(test_pvh_too_many_notes, mem_setup, mem_teardown),
		cmocka_unit_test_setup_teardown(test_pvh_fuzz, mem_setup, mem_teardown),
		cmocka_unit_test(test_pvh_tiny_ram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
