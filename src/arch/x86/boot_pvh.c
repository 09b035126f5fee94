/* PVH ELF loader: ELF32/ELF64 PT_LOAD segments, the Xen PHYS32_ENTRY note and hvm_start_info. */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include "arch/x86/boot_internal.h"
#include "arch/x86/layout.h"
#include "arch/x86/pvh.h"

/*
 * ELF field values come from the System V gABI (via <elf.h>); the file is
 * little endian (checked), and so is every host kiln runs on.
 */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ELF fields are read in host byte order");

/* Bound on notes walked per note area; real kernels carry a few dozen. */
#define ELF_MAX_NOTES 1024

_Static_assert(X86_PVH_START_GPA + sizeof(struct hvm_start_info) <= X86_PVH_MEMMAP_GPA,
	       "start info below the memmap");
_Static_assert(X86_PVH_MEMMAP_GPA + PVH_MEMMAP_MAX * sizeof(struct hvm_memmap_table_entry) <=
	       X86_PVH_MODLIST_GPA, "memmap below the module list");
_Static_assert(X86_PVH_MODLIST_GPA + sizeof(struct hvm_modlist_entry) <= X86_ZERO_PAGE_GPA,
	       "module list below the zero page");

/* The parts of an ELF header kiln uses, for either class. */
struct elf_view {
	const uint8_t *img;
	size_t len;
	bool is64;
	uint64_t phoff, shoff;
	unsigned phnum, shnum;
	size_t phentsize, shentsize;
};

struct elf_seg {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz, align;
};

struct pvh_notes {
	bool have_entry;
	uint64_t entry;
	bool is_linux;
};

/* True if [off, off+size) lies inside a file of len bytes (overflow-safe). */
static bool in_file(size_t len, uint64_t off, uint64_t size)
{
	uint64_t end;

	return !__builtin_add_overflow(off, size, &end) && end <= len;
}

static int elf_parse(const uint8_t *img, size_t len, struct elf_view *v, const char **why)
{
	uint16_t machine, type;

	memset(v, 0, sizeof(*v));
	v->img = img;
	v->len = len;
	if (len < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG)) {
		*why = "not an ELF file";
		return -ENOEXEC;
	}
	if (img[EI_DATA] != ELFDATA2LSB || img[EI_VERSION] != EV_CURRENT) {
		*why = "ELF is not little endian version 1";
		return -ENOEXEC;
	}
	if (img[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr e;

		if (len < sizeof(e))
			goto truncated;
		memcpy(&e, img, sizeof(e));
		machine = e.e_machine, type = e.e_type;
		v->is64 = true;
		v->phoff = e.e_phoff, v->phnum = e.e_phnum, v->phentsize = e.e_phentsize;
		v->shoff = e.e_shoff, v->shnum = e.e_shnum, v->shentsize = e.e_shentsize;
	} else if (img[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr e;

		if (len < sizeof(e))
			goto truncated;
		memcpy(&e, img, sizeof(e));
		machine = e.e_machine, type = e.e_type;
		v->phoff = e.e_phoff, v->phnum = e.e_phnum, v->phentsize = e.e_phentsize;
		v->shoff = e.e_shoff, v->shnum = e.e_shnum, v->shentsize = e.e_shentsize;
	} else {
		*why = "ELF class is neither ELFCLASS32 nor ELFCLASS64";
		return -ENOEXEC;
	}
	if (machine != EM_X86_64 && machine != EM_386) {
		*why = "ELF is not for x86 (e_machine)";
		return -ENOEXEC;
	}
	if (type != ET_EXEC && type != ET_DYN) {
		*why = "ELF is not an executable";
		return -ENOEXEC;
	}
	/* PN_XNUM (extended numbering) is for core files, not kernels. */
	if (v->phnum == 0 || v->phnum >= PN_XNUM) {
		*why = "ELF has no usable program headers";
		return -ENOEXEC;
	}
	if (v->phentsize != (v->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) ||
	    !in_file(len, v->phoff, (uint64_t)v->phnum * v->phentsize)) {
		*why = "ELF program headers malformed or outside the file";
		return -ENOEXEC;
	}
	/* Section headers are optional (only searched for notes); if present they must be sane. */
	if (v->shnum && (v->shentsize != (v->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)) ||
			 !in_file(len, v->shoff, (uint64_t)v->shnum * v->shentsize))) {
		*why = "ELF section headers malformed or outside the file";
		return -ENOEXEC;
	}
	return 0;
truncated:
	*why = "ELF truncated inside its header";
	return -ENOEXEC;
}

static void elf_phdr(const struct elf_view *v, unsigned i, struct elf_seg *s)
{
	const uint8_t *p = v->img + v->phoff + (uint64_t)i * v->phentsize;

	if (v->is64) {
		Elf64_Phdr ph;

		memcpy(&ph, p, sizeof(ph));
		*s = (struct elf_seg){ ph.p_type, ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz, ph.p_align };
	} else {
		Elf32_Phdr ph;

		memcpy(&ph, p, sizeof(ph));
		*s = (struct elf_seg){ ph.p_type, ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz, ph.p_align };
	}
}

/* Section i as a segment-shaped record (type = sh_type, offset/size/align). */
static void elf_shdr(const struct elf_view *v, unsigned i, struct elf_seg *s)
{
	const uint8_t *p = v->img + v->shoff + (uint64_t)i * v->shentsize;

	if (v->is64) {
		Elf64_Shdr sh;

		memcpy(&sh, p, sizeof(sh));
		*s = (struct elf_seg){ sh.sh_type, sh.sh_offset, 0, sh.sh_size, sh.sh_size, sh.sh_addralign };
	} else {
		Elf32_Shdr sh;

		memcpy(&sh, p, sizeof(sh));
		*s = (struct elf_seg){ sh.sh_type, sh.sh_offset, 0, sh.sh_size, sh.sh_size, sh.sh_addralign };
	}
}

static bool note_name_is(const uint8_t *name, uint32_t namesz, const char *want)
{
	size_t n = strlen(want) + 1; /* namesz counts the NUL (gABI "Note Section") */

	return namesz == n && !memcmp(name, want, n);
}

/*
 * Walk one note area (gABI "Note Section": namesz, descsz, type, then name and
 * desc each padded to the area's alignment, 4 unless the area says 8).
 */
static int notes_scan(const struct elf_view *v, const struct elf_seg *area, struct pvh_notes *st,
		      const char **why)
{
	const uint64_t a = area->align == 8 ? 8 : 4;
	const uint8_t *base;
	uint64_t size = area->filesz, pos = 0;
	unsigned count = 0;

	if (!in_file(v->len, area->offset, size)) {
		*why = "ELF note area outside the file";
		return -ENOEXEC;
	}
	base = v->img + area->offset;
	while (size - pos >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh; /* same 12-byte layout as Elf32_Nhdr */
		uint64_t name_off, desc_off, desc_end;

		if (++count > ELF_MAX_NOTES) {
			*why = "too many ELF notes";
			return -ENOEXEC;
		}
		memcpy(&nh, base + pos, sizeof(nh));
		/* namesz/descsz are 32-bit, so these 64-bit sums cannot wrap. */
		name_off = pos + sizeof(nh);
		desc_off = name_off + ALIGN_UP((uint64_t)nh.n_namesz, a);
		desc_end = desc_off + nh.n_descsz;
		if (desc_off > size || desc_end > size) {
			*why = "ELF note runs past the end of its area (bad namesz/descsz)";
			return -ENOEXEC;
		}
		if (note_name_is(base + name_off, nh.n_namesz, "Xen") && nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY &&
		    !st->have_entry) {
			if (nh.n_descsz == 4) {
				uint32_t e32;

				memcpy(&e32, base + desc_off, 4);
				st->entry = e32;
			} else if (nh.n_descsz == 8) {
				memcpy(&st->entry, base + desc_off, 8);
			} else {
				*why = "PVH entry note has a bad size";
				return -ENOEXEC;
			}
			if (st->entry >= 4 * GiB) {
				*why = "PVH entry point is not a 32-bit address";
				return -ENOEXEC;
			}
			st->have_entry = true;
		} else if (note_name_is(base + name_off, nh.n_namesz, "Linux")) {
			st->is_linux = true;
		}
		pos = ALIGN_UP(desc_end, a); /* <= size + 7: the loop test ends the walk */
		if (pos > size)
			break;
	}
	return 0;
}

/* Parse the header and find the PVH entry in PT_NOTE segments, else in SHT_NOTE sections. */
static int elf_find_pvh(const uint8_t *img, size_t len, struct elf_view *v, struct pvh_notes *st,
			const char **why)
{
	struct elf_seg s;
	int ret;

	memset(st, 0, sizeof(*st));
	ret = elf_parse(img, len, v, why);
	if (ret)
		return ret;
	for (unsigned i = 0; i < v->phnum; i++) {
		elf_phdr(v, i, &s);
		if (s.type == PT_NOTE && (ret = notes_scan(v, &s, st, why)))
			return ret;
	}
	for (unsigned i = 0; !st->have_entry && i < v->shnum; i++) {
		elf_shdr(v, i, &s);
		if (s.type == SHT_NOTE && (ret = notes_scan(v, &s, st, why)))
			return ret;
	}
	if (!st->have_entry) {
		*why = "ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)";
		return -ENOEXEC;
	}
	return 0;
}

int boot_pvh_probe(const uint8_t *img, size_t len, const char **why)
{
	struct elf_view v;
	struct pvh_notes st;

	return elf_find_pvh(img, len, &v, &st, why);
}

/* Check every PT_LOAD before writing anything; returns the end of the highest segment. */
static int pvh_check_segments(const struct guest_mem *m, const struct elf_view *v, uint64_t entry,
			      gpa_t *kend, const char **why)
{
	bool entry_ok = false;
	unsigned nload = 0;
	struct elf_seg s;
	uint64_t end;

	*kend = 0;
	for (unsigned i = 0; i < v->phnum; i++) {
		elf_phdr(v, i, &s);
		if (s.type != PT_LOAD)
			continue;
		if (s.filesz > s.memsz) {
			*why = "ELF segment has p_filesz > p_memsz";
			return -ENOEXEC;
		}
		if (!in_file(v->len, s.offset, s.filesz)) {
			*why = "ELF segment data outside the file";
			return -ENOEXEC;
		}
		if (!s.memsz)
			continue;
		/* Below 1 MiB live kiln's GDT, page tables, start info, cmdline and ACPI tables. */
		if (s.paddr < X86_HIMEM_START) {
			*why = "ELF segment loads below 1 MiB (kiln's boot area)";
			return -ENOEXEC;
		}
		if (__builtin_add_overflow(s.paddr, s.memsz, &end) || !mem_gpa(m, s.paddr, s.memsz)) {
			*why = "ELF segment outside guest RAM";
			return -ENOMEM;
		}
		if (entry >= s.paddr && entry < end)
			entry_ok = true;
		*kend = MAX(*kend, end);
		nload++;
	}
	if (!nload) {
		*why = "ELF has no loadable segment";
		return -ENOEXEC;
	}
	if (!entry_ok) {
		*why = "PVH entry point is outside every loaded segment";
		return -ENOEXEC;
	}
	return 0;
}

static void pvh_copy_segments(const struct guest_mem *m, const struct elf_view *v)
{
	struct elf_seg s;

	for (unsigned i = 0; i < v->phnum; i++) {
		uint8_t *dst;

		elf_phdr(v, i, &s);
		if (s.type != PT_LOAD || !s.memsz)
			continue;
		dst = mem_gpa(m, s.paddr, s.memsz); /* checked by pvh_check_segments */
		if (!dst)
			continue;
		memcpy(dst, v->img + s.offset, s.filesz);
		memset(dst + s.filesz, 0, s.memsz - s.filesz); /* .bss (gABI: memsz beyond filesz is zero) */
	}
}

static int pvh_write_start_info(struct guest_mem *m, const struct boot_input *in, gpa_t initrd,
				const char **why)
{
	struct hvm_memmap_table_entry mm[PVH_MEMMAP_MAX];
	struct e820_entry e820[PVH_MEMMAP_MAX];
	struct hvm_start_info si = {
		.magic = PVH_START_MAGIC,
		.version = PVH_START_VERSION,
		.cmdline_paddr = X86_CMDLINE_GPA,
		.rsdp_paddr = in->rsdp,
		.memmap_paddr = X86_PVH_MEMMAP_GPA,
	};
	int n = e820_build(m, e820, PVH_MEMMAP_MAX);

	if (n < 0) {
		*why = "cannot build the PVH memory map (guest RAM too small?)";
		return n;
	}
	/* start_info.h: XEN_HVM_MEMMAP_TYPE_* use the e820 numbering. */
	for (int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_table_entry){ e820[i].addr, e820[i].size, e820[i].type, 0 };
	si.memmap_entries = (uint32_t)n;
	if (mem_write(m, X86_PVH_MEMMAP_GPA, mm, (uint64_t)n * sizeof(mm[0])))
		goto nomem;
	if (in->initrd_len) {
		struct hvm_modlist_entry mod = { .paddr = initrd, .size = in->initrd_len };

		if (mem_write(m, X86_PVH_MODLIST_GPA, &mod, sizeof(mod)))
			goto nomem;
		si.nr_modules = 1;
		si.modlist_paddr = X86_PVH_MODLIST_GPA;
	}
	if (mem_write(m, X86_PVH_START_GPA, &si, sizeof(si)))
		goto nomem;
	return 0;
nomem:
	*why = "no guest RAM for the PVH start info";
	return -ENOMEM;
}

int boot_pvh_load(struct guest_mem *m, const struct boot_input *in, struct boot_result *out,
		  const char **why)
{
	struct elf_view v;
	struct pvh_notes st;
	gpa_t kend, initrd = 0;
	int ret;

	ret = elf_find_pvh(in->kernel, in->kernel_len, &v, &st, why);
	if (ret)
		return ret;
	ret = pvh_check_segments(m, &v, st.entry, &kend, why);
	if (ret)
		return ret;
	ret = boot_write_cmdline(m, in->cmdline, X86_CMDLINE_MAX - 1, why);
	if (ret)
		return ret;
	pvh_copy_segments(m, &v);
	ret = boot_place_initrd(m, in, kend, boot_low_ram_end(m), &initrd, why);
	if (ret)
		return ret;
	ret = pvh_write_start_info(m, in, initrd, why);
	if (ret)
		return ret;

	out->kind = BOOT_PVH;
	out->entry = st.entry;
	out->params = X86_PVH_START_GPA;
	out->kernel_end = kend;
	out->initrd_gpa = initrd;
	out->initrd_size = in->initrd_len;
	out->is_linux = st.is_linux;
	return 0;
}
