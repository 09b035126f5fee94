/* Guest RAM: memfd-backed allocation, the x86 split around the MMIO hole, and the checked accessor. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "core/memory.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

int mem_layout(struct guest_mem *m, uint64_t ram)
{
	if (ram == 0)
		return -EINVAL;
	m->total = ram;
	m->regions[0] = (struct mem_region){ .gpa = 0, .size = MIN(ram, MEM_HOLE_START), .file_offset = 0 };
	m->nregions = 1;
	if (ram > MEM_HOLE_START) {
		m->regions[1] = (struct mem_region){
			.gpa = MEM_HIGH_START,
			.size = ram - MEM_HOLE_START,
			.file_offset = MEM_HOLE_START,
		};
		m->nregions = 2;
	}
	return 0;
}

int mem_init(struct guest_mem *m, uint64_t ram, enum mem_backing backing)
{
	unsigned int flags = MFD_CLOEXEC;
	int ret;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	ret = mem_layout(m, ram);
	if (ret)
		return ret;
	m->backing = backing;
	if (backing == MEM_BACKING_HUGETLB) {
		if (ram % (2 * MiB))
			return -EINVAL;
		flags |= MFD_HUGETLB;
	}
	m->fd = memfd_create("kiln-guest-ram", flags);
	if (m->fd < 0)
		return -errno;
	if (ftruncate(m->fd, (off_t)ram) < 0)
		goto fail;
	/*
	 * MAP_NORESERVE: pages are only committed when the guest touches them.
	 * Not for hugetlb: there the mapping must reserve its huge pages now, so
	 * a host without enough of them fails here (ENOMEM) instead of the guest
	 * meeting SIGBUS on first touch.
	 */
	m->base = mmap(NULL, ram, PROT_READ | PROT_WRITE,
		       MAP_SHARED | (backing == MEM_BACKING_HUGETLB ? 0 : MAP_NORESERVE), m->fd, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		goto fail;
	}
	/* Guest RAM has no business in a VMM core dump (size, and guest secrets). */
	madvise(m->base, ram, MADV_DONTDUMP);
	if (backing == MEM_BACKING_THP && madvise(m->base, ram, MADV_HUGEPAGE) < 0)
		goto fail;
	for (unsigned i = 0; i < m->nregions; i++)
		m->regions[i].host = m->base + m->regions[i].file_offset;
	return 0;
fail:
	ret = -errno;
	mem_destroy(m);
	return ret;
}

void mem_destroy(struct guest_mem *m)
{
	if (m->base)
		munmap(m->base, m->total);
	if (m->fd >= 0)
		close(m->fd);
	m->base = NULL;
	m->fd = -1;
	m->nregions = 0;
}

void *mem_gpa(const struct guest_mem *m, gpa_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions && i < MEM_MAX_REGIONS; i++) {
		const struct mem_region *r = &m->regions[i];
		uint64_t off, end;

		if (gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		off = gpa - r->gpa;
		/* off < size, so this cannot wrap unless len is huge: check the add. */
		if (__builtin_add_overflow(off, len, &end) || end > r->size)
			return NULL;
		return r->host ? r->host + off : NULL;
	}
	return NULL;
}

int mem_write(const struct guest_mem *m, gpa_t gpa, const void *src, uint64_t len)
{
	void *p = mem_gpa(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int mem_read(const struct guest_mem *m, gpa_t gpa, void *dst, uint64_t len)
{
	const void *p = mem_gpa(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int mem_backing_parse(const char *s, enum mem_backing *out)
{
	if (!strcmp(s, "memfd"))
		*out = MEM_BACKING_MEMFD;
	else if (!strcmp(s, "thp"))
		*out = MEM_BACKING_THP;
	else if (!strcmp(s, "hugetlb"))
		*out = MEM_BACKING_HUGETLB;
	else
		return -EINVAL;
	return 0;
}
