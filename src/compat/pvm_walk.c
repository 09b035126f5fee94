/* Guest page-table walker (4/5-level, 4 KiB/2 MiB/1 GiB pages) and guest-virtual memory access over guest RAM. */
#include <errno.h>
#include <string.h>
#include "compat/pvm_internal.h"

/*
 * IA-32e paging, Intel SDM Vol 3A 4.5 (AMD APM Vol 2 5.3). The compat layer
 * walks the guest's tables itself because KVM offers no user-space
 * translation with permission checks (KVM_TRANSLATE ignores access rights),
 * and every table read goes through mem_gpa(), so a hostile guest can at
 * worst make the walk fail. Not modelled, because a Linux guest on kvm_pvm
 * does not depend on them here: SMAP/SMEP (hidden from the guest), protection
 * keys, reserved-bit checks other than PS in the top levels, A/D updates.
 */

#define PAGE_SIZE_4K 4096ULL

bool pvm_canonical(uint64_t va, unsigned levels)
{
	unsigned bits = levels == 5 ? 57 : 48;
	int64_t sx = (int64_t)(va << (64 - bits)) >> (64 - bits);

	return (uint64_t)sx == va;
}

static uint32_t access_err(unsigned access)
{
	uint32_t err = 0;

	if (access & PVM_ACC_WRITE)
		err |= X86_PF_W;
	if (access & PVM_ACC_USER)
		err |= X86_PF_U;
	if (access & PVM_ACC_FETCH)
		err |= X86_PF_I;
	return err;
}

int pvm_walk(const struct guest_mem *m, const struct pvm_paging *pg, uint64_t gva, unsigned access,
	     struct pvm_walk *w)
{
	unsigned levels = pg->levels == 5 ? 5 : 4;
	bool user_ok = true, write_ok = true, exec_ok = true;
	uint64_t table = pg->cr3 & X86_PTE_ADDR;  /* low bits: PCID or PWT/PCD */

	memset(w, 0, sizeof(*w));
	if (!pvm_canonical(gva, levels))
		return -EINVAL;
	/* One entry read per level: the loop runs at most 5 times whatever the guest wrote. */
	for (unsigned lvl = levels; lvl >= 1; lvl--) {
		unsigned shift = 12 + 9 * (lvl - 1);
		gpa_t ea = table + ((gva >> shift) & 511) * 8;
		const uint64_t *pe = mem_gpa(m, ea, 8);
		uint64_t e;
		bool leaf;

		if (!pe)
			return -ENXIO;
		/* Read once: another vCPU may be writing this entry. */
		e = __atomic_load_n(pe, __ATOMIC_RELAXED);
		w->leaf_level = lvl;
		if (!(e & X86_PTE_P)) {
			w->pf_err = access_err(access);
			return -EFAULT;
		}
		/* PS is reserved in PML5E/PML4E (SDM Vol 3A table 4-14/4-15). */
		if ((e & X86_PTE_PS) && lvl >= 4) {
			w->pf_err = X86_PF_P | X86_PF_RSVD | access_err(access);
			return -EFAULT;
		}
		leaf = lvl == 1 || (e & X86_PTE_PS);
		user_ok = user_ok && (e & X86_PTE_US);
		write_ok = write_ok && (e & X86_PTE_RW);
		if (pg->nxe && (e & X86_PTE_NX)) {
			exec_ok = false;
			if (!leaf)
				w->nx_above = true;
		}
		if (leaf) {
			uint64_t size = 1ULL << shift;
			uint32_t err = X86_PF_P | access_err(access);

			/* Large-page addresses drop the low bits (PAT sits at bit 12 there). */
			w->gpa = (e & X86_PTE_ADDR & ~(size - 1)) | (gva & (size - 1));
			w->leaf_gpa = ea;
			w->leaf = e;
			/* SDM Vol 3A 4.6: access rights are the AND over all levels. */
			if ((access & PVM_ACC_USER) && !user_ok)
				goto fault;
			if ((access & PVM_ACC_WRITE) && !write_ok && ((access & PVM_ACC_USER) || pg->wp))
				goto fault;
			if ((access & PVM_ACC_FETCH) && !exec_ok)
				goto fault;
			return 0;
fault:
			w->pf_err = err;
			return -EFAULT;
		}
		table = e & X86_PTE_ADDR;
	}
	return -EFAULT; /* not reached: level 1 is always a leaf */
}

int pvm_gva_to_gpa(const struct guest_mem *m, uint64_t cr3, uint64_t gva, bool write, gpa_t *out)
{
	const struct pvm_paging pg = { .cr3 = cr3, .levels = 4, .wp = true, .nxe = true };
	struct pvm_walk w;
	int r = pvm_walk(m, &pg, gva, write ? PVM_ACC_WRITE : 0, &w);

	if (r)
		return r;
	*out = w.gpa;
	return 0;
}

void pvm_paging_from_sregs(const struct kvm_sregs *s, struct pvm_paging *pg)
{
	pg->cr3 = s->cr3;
	pg->levels = (s->cr4 & X86_CR4_LA57) ? 5 : 4;
	pg->wp = (s->cr0 & X86_CR0_WP) != 0;
	pg->nxe = (s->efer & X86_EFER_NXE) != 0;
}

int pvm_vmem_access(void *ctx, uint64_t gva, void *buf, size_t len, unsigned access, struct pvm_fault *f)
{
	const struct pvm_vmem *vm = ctx;
	uint8_t *host[2];
	size_t part[2];
	unsigned nparts = 0;
	uint64_t last;

	if (len == 0)
		return 0;
	if (len > PAGE_SIZE_4K)
		return -EINVAL;
	/* A range that wraps past 2^64 is not one the guest could address. */
	if (__builtin_add_overflow(gva, len - 1, &last))
		return -EINVAL;
	/*
	 * Translate every page first, then copy: an access that faults on its
	 * second page must leave memory untouched, as on hardware. At most two
	 * pages since len <= 4 KiB.
	 */
	for (uint64_t va = gva, left = len; left; ) {
		size_t chunk = MIN(left, PAGE_SIZE_4K - (va & (PAGE_SIZE_4K - 1)));
		struct pvm_walk w;
		int r;

		if (nparts == 2)
			return -EINVAL; /* not reached: len <= 4 KiB spans at most two pages */
		r = pvm_walk(vm->mem, &vm->pg, va, access, &w);
		if (r == -EFAULT && f) {
			f->addr = va;
			f->err = w.pf_err;
		}
		if (r)
			return r;
		host[nparts] = mem_gpa(vm->mem, w.gpa, chunk);
		if (!host[nparts])
			return -ENXIO;
		part[nparts++] = chunk;
		left -= chunk;
		va += chunk;
	}
	for (unsigned i = 0, done = 0; i < nparts; done += part[i], i++) {
		if (access & PVM_ACC_WRITE)
			memcpy(host[i], (const uint8_t *)buf + done, part[i]);
		else
			memcpy((uint8_t *)buf + done, host[i], part[i]);
	}
	return 0;
}

size_t pvm_vmem_fetch(const struct pvm_vmem *vm, uint64_t gva, uint8_t *buf, size_t len)
{
	size_t got = 0;

	/* Page by page so that a readable first page still yields its bytes. */
	while (got < len) {
		uint64_t va = gva + got;
		size_t chunk = MIN(len - got, PAGE_SIZE_4K - (va & (PAGE_SIZE_4K - 1)));

		if (va < gva || pvm_vmem_access((void *)vm, va, buf + got, chunk, 0, NULL))
			break;
		got += chunk;
	}
	return got;
}
