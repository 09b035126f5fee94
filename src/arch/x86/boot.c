/* x86 boot: kernel kind detection and dispatch, the e820 map, identity page tables and the boot GDT. */
#include <errno.h>
#include <string.h>
#include "arch/x86/boot.h"
#include "arch/x86/boot_internal.h"
#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"

/* Page-table entry bits (Intel SDM Vol. 3A §4.5, Tables 4-15..4-18). */
#define PTE_P  0x001ULL  /* present */
#define PTE_W  0x002ULL  /* writable */
#define PTE_PS 0x080ULL  /* in a PD entry: maps a 2 MiB page */
#define PT_ENTRIES 512
#define PAGE_SIZE_4K 4096ULL
#define IDMAP_PDS 4      /* 4 page directories x 1 GiB = the low 4 GiB */

/* Guests smaller than this cannot hold the low fixed areas plus a kernel above 1 MiB. */
#define BOOT_MIN_RAM (2 * MiB)

_Static_assert(X86_PD_GPA + IDMAP_PDS * PAGE_SIZE_4K <= X86_CMDLINE_GPA,
	       "page directories end below the command line");
_Static_assert(X86_CMDLINE_GPA + X86_CMDLINE_MAX <= X86_EBDA_START, "command line below the EBDA");
_Static_assert(X86_PCI_ECAM_BASE >= MEM_HOLE_START && X86_PCI_ECAM_BASE + X86_PCI_ECAM_SIZE <= MEM_HIGH_START,
	       "ECAM lies in the MMIO hole, between low and high RAM in the e820 order");

int boot_detect(const uint8_t *img, size_t len, const char **why)
{
	const char *dummy;

	if (!why)
		why = &dummy;
	*why = NULL;
	if (!img || len == 0) {
		*why = "kernel image is empty";
		return -ENOEXEC;
	}
	if (boot_linux_probe(img, len))
		return BOOT_BZIMAGE;
	if (len >= 4 && !memcmp(img, "\x7f" "ELF", 4)) {
		int ret = boot_pvh_probe(img, len, why);

		return ret ? ret : BOOT_PVH;
	}
	*why = "not a bzImage or ELF kernel";
	return -ENOEXEC;
}

int boot_load(struct guest_mem *m, const struct boot_input *in, struct boot_result *out, const char **why)
{
	const char *dummy;
	int kind;

	if (!why)
		why = &dummy;
	*why = NULL;
	if (!m || !in || !out || !in->kernel) {
		*why = "boot_load: missing argument";
		return -EINVAL;
	}
	if (in->initrd_len && !in->initrd) {
		*why = "boot_load: initrd length without data";
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	kind = boot_detect(in->kernel, in->kernel_len, why);
	if (kind < 0)
		return kind;
	if (kind == BOOT_BZIMAGE)
		return boot_linux_load(m, in, out, why);
	return boot_pvh_load(m, in, out, why);
}

gpa_t boot_low_ram_end(const struct guest_mem *m)
{
	if (m->nregions < 1 || m->regions[0].gpa != 0)
		return 0;
	return m->regions[0].size;
}

int boot_write_cmdline(struct guest_mem *m, const char *cmdline, uint64_t max_len, const char **why)
{
	size_t len;
	char *dst;

	if (!cmdline)
		cmdline = "";
	max_len = MIN(max_len, X86_CMDLINE_MAX - 1);
	/* strnlen bounds the scan: the caller's string may be long. */
	len = strnlen(cmdline, max_len + 1);
	if (len > max_len) {
		*why = "kernel command line too long";
		return -E2BIG;
	}
	dst = mem_gpa(m, X86_CMDLINE_GPA, len + 1);
	if (!dst) {
		*why = "no guest RAM for the kernel command line";
		return -ENOMEM;
	}
	memcpy(dst, cmdline, len);
	dst[len] = '\0';
	return 0;
}

int boot_place_initrd(struct guest_mem *m, const struct boot_input *in, gpa_t floor, gpa_t limit,
		      gpa_t *out, const char **why)
{
	uint64_t size = in->initrd_len;
	gpa_t start;
	void *dst;

	*out = 0;
	if (!size)
		return 0;
	if (floor > UINT64_MAX - BOOT_INITRD_ALIGN || limit < size)
		goto nofit;
	floor = ALIGN_UP(floor, BOOT_INITRD_ALIGN);
	/* As high as possible: kernels place their own early allocations low. */
	start = (limit - size) & ~(BOOT_INITRD_ALIGN - 1);
	if (start < floor)
		goto nofit;
	dst = mem_gpa(m, start, size);
	if (!dst)
		goto nofit;
	memcpy(dst, in->initrd, size);
	*out = start;
	return 0;
nofit:
	*why = "initrd does not fit in guest RAM above the kernel";
	return -ENOMEM;
}

static int e820_add(struct e820_entry *out, int max, int *n, uint64_t addr, uint64_t size, uint32_t type)
{
	if (*n >= max)
		return -ENOSPC;
	out[*n] = (struct e820_entry){ .addr = addr, .size = size, .type = type };
	(*n)++;
	return 0;
}

/*
 * Only reads m->regions (never host memory), so it works on a layout-only
 * guest_mem. The low MiB follows the PC convention (boot.rst "Memory layout"):
 * conventional RAM up to the EBDA, then EBDA, VGA, option ROMs and the BIOS
 * area reserved; kiln's ACPI tables live at [0xe0000, 1 MiB) inside it.
 * Entries come in address order.
 */
int e820_build(const struct guest_mem *m, struct e820_entry *out, int max)
{
	gpa_t low_end;
	int n = 0, ret;

	if (!m || !out || max < 0)
		return -EINVAL;
	low_end = boot_low_ram_end(m);
	if (low_end < BOOT_MIN_RAM)
		return -EINVAL;
	ret = e820_add(out, max, &n, 0, X86_EBDA_START, E820_RAM);
	if (!ret)
		ret = e820_add(out, max, &n, X86_EBDA_START, X86_HIMEM_START - X86_EBDA_START, E820_RESERVED);
	if (!ret)
		ret = e820_add(out, max, &n, X86_HIMEM_START, low_end - X86_HIMEM_START, E820_RAM);
	/*
	 * PCI ECAM, in the MMIO hole: reserved, as firmware reports it (PCI
	 * Firmware 3.2 §4.1.2), so no OS puts a BAR or a hot-plugged range there.
	 */
	if (!ret)
		ret = e820_add(out, max, &n, X86_PCI_ECAM_BASE, X86_PCI_ECAM_SIZE, E820_RESERVED);
	/* Region 1 is RAM above the 32-bit MMIO hole (memory.h). */
	if (!ret && m->nregions >= 2 && m->regions[1].size)
		ret = e820_add(out, max, &n, m->regions[1].gpa, m->regions[1].size, E820_RAM);
	return ret ? ret : n;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v)); /* x86 is little endian, as the page-table format */
}

int boot_write_page_tables(struct guest_mem *m)
{
	static const uint64_t gdt[GDT_ENTRIES] = {
		[GDT_SEL_NULL / 8] = GDT_NULL,
		[GDT_SEL_CODE64 / 8] = GDT_CODE64,
		[GDT_SEL_DATA / 8] = GDT_DATA,
		[GDT_SEL_TSS / 8] = GDT_TSS,
		[GDT_SEL_CODE32 / 8] = GDT_CODE32,
	};
	uint8_t *pml4, *pdpt, *pd, *g;

	if (!m)
		return -EINVAL;
	pml4 = mem_gpa(m, X86_PML4_GPA, PAGE_SIZE_4K);
	pdpt = mem_gpa(m, X86_PDPT_GPA, PAGE_SIZE_4K);
	pd = mem_gpa(m, X86_PD_GPA, IDMAP_PDS * PAGE_SIZE_4K);
	g = mem_gpa(m, X86_GDT_GPA, sizeof(gdt));
	if (!pml4 || !pdpt || !pd || !g)
		return -EFAULT;

	/* SDM §4.5: PML4E -> PDPTE -> PDE with PS=1 (2 MiB page); identity map [0, 4 GiB). */
	memset(pml4, 0, PAGE_SIZE_4K);
	memset(pdpt, 0, PAGE_SIZE_4K);
	put_u64(pml4, X86_PDPT_GPA | PTE_P | PTE_W);
	for (unsigned i = 0; i < IDMAP_PDS; i++) {
		put_u64(pdpt + i * 8, (X86_PD_GPA + i * PAGE_SIZE_4K) | PTE_P | PTE_W);
		for (unsigned j = 0; j < PT_ENTRIES; j++) {
			uint64_t phys = ((uint64_t)i * PT_ENTRIES + j) * (2 * MiB);

			put_u64(pd + i * PAGE_SIZE_4K + j * 8, phys | PTE_P | PTE_W | PTE_PS);
		}
	}
	for (unsigned i = 0; i < GDT_ENTRIES; i++)
		put_u64(g + i * 8, gdt[i]);
	return 0;
}
