/* Guest RAM: backing (memfd, THP, hugetlbfs), the x86 layout, and the one checked accessor. */
#ifndef KILN_MEMORY_H
#define KILN_MEMORY_H

#include "core/types.h"

/*
 * x86 guest-physical layout. RAM fills [0, MEM_HOLE_START); the 32-bit MMIO
 * hole [MEM_HOLE_START, 4 GiB) holds the LAPIC, IOAPIC and device windows;
 * RAM beyond the hole continues at 4 GiB.
 */
#define MEM_HOLE_START 0xC0000000ULL
#define MEM_HIGH_START 0x100000000ULL
#define MEM_MAX_REGIONS 2

enum mem_backing {
	MEM_BACKING_MEMFD,   /* default: shareable by later snapshot/clone work */
	MEM_BACKING_THP,     /* memfd + madvise(MADV_HUGEPAGE) */
	MEM_BACKING_HUGETLB, /* memfd with MFD_HUGETLB (hugetlbfs pages) */
};

struct mem_region {
	gpa_t gpa;      /* first guest-physical address */
	uint64_t size;  /* bytes */
	uint8_t *host;  /* host mapping of gpa */
	uint64_t file_offset; /* offset of this region in the backing memfd */
};

struct guest_mem {
	int fd;          /* memfd backing all regions, -1 for test fakes */
	uint8_t *base;   /* one mapping of the whole memfd */
	uint64_t total;  /* bytes of RAM */
	enum mem_backing backing;
	unsigned nregions;
	struct mem_region regions[MEM_MAX_REGIONS];
};

/* Fill m->regions for `ram` bytes of RAM split around the MMIO hole; no allocation. */
int mem_layout(struct guest_mem *m, uint64_t ram);

/* Allocate and map `ram` bytes with the given backing; 0 or -errno. */
int __must_check mem_init(struct guest_mem *m, uint64_t ram, enum mem_backing backing);
void mem_destroy(struct guest_mem *m);

/*
 * The checked accessor: host pointer for [gpa, gpa+len) if the whole range
 * lies inside one RAM region, else NULL. Overflow-safe; len 0 is allowed for
 * any gpa inside RAM (and for the first byte past a region's end it is not).
 */
void *mem_gpa(const struct guest_mem *m, gpa_t gpa, uint64_t len);

/* Copy helpers built on mem_gpa(); 0 or -EFAULT. */
int __must_check mem_write(const struct guest_mem *m, gpa_t gpa, const void *src, uint64_t len);
int __must_check mem_read(const struct guest_mem *m, gpa_t gpa, void *dst, uint64_t len);

/* Parse "memfd" | "thp" | "hugetlb"; 0 or -EINVAL. */
int mem_backing_parse(const char *s, enum mem_backing *out);

#endif
