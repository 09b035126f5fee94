/* Unit tests of the compat page walker and guest-virtual access: page sizes, rights, faults, RAM bounds, wrap. */
#include "pvm_test.h"
#include <errno.h>
#include <string.h>

#define RW (X86_PTE_P | X86_PTE_RW)
#define URW (X86_PTE_P | X86_PTE_RW | X86_PTE_US)

static void test_walk_page_sizes(void **state)
{
	struct pt p;
	gpa_t pa;

	(void)state;
	pt_init(&p);
	pt_map(&p, 0x400000, 0x800000, 1, RW, RW);                    /* 4 KiB */
	pt_map(&p, 0x40000000, 0xa00000, 2, RW, RW);                  /* 2 MiB */
	pt_map(&p, 0xffff880000000000ULL, 0x40000000, 3, RW, RW);     /* 1 GiB */
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3, 0x400123, false, &pa), 0);
	assert_int_equal(pa, 0x800123);
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3, 0x401000, false, &pa), -EFAULT); /* next 4K: not present */
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3, 0x401fff, false, &pa), -EFAULT);
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3, 0x401234 - 0x1000, true, &pa), 0);
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3, 0x40123456, false, &pa), 0);
	assert_int_equal(pa, 0xa00000 + 0x123456);
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3, 0xffff880012345678ULL, false, &pa), 0);
	assert_int_equal(pa, 0x40000000 + 0x12345678);
	/* PAT (bit 12) in a large-page entry is not an address bit. */
	*pt_entry(&p, 0x40000000, 2) |= 1ULL << 12;
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3, 0x40000010, false, &pa), 0);
	assert_int_equal(pa, 0xa00010);
	/* CR3's low bits (PCID) are ignored. */
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3 | 0x5, 0x400123, false, &pa), 0);
	pt_fini(&p);
}

static void test_walk_not_present(void **state)
{
	struct pvm_paging pg;
	struct pvm_walk w;
	struct pt p;

	(void)state;
	pt_init(&p);
	pg = (struct pvm_paging){ .cr3 = p.cr3, .levels = 4, .wp = true, .nxe = true };
	/* Empty PML4. */
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x1000, 0, &w), -EFAULT);
	assert_int_equal(w.leaf_level, 4);
	assert_int_equal(w.pf_err, 0);
	pt_map(&p, 0x400000, 0x800000, 1, RW, RW);
	/* Present path, other PTE: fault at level 1; write+user access is in the error code. */
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x402000, PVM_ACC_WRITE | PVM_ACC_USER, &w), -EFAULT);
	assert_int_equal(w.leaf_level, 1);
	assert_int_equal(w.pf_err, X86_PF_W | X86_PF_U);
	/* Clear the PDE: fault at level 2. */
	*pt_entry(&p, 0x400000, 2) &= ~X86_PTE_P;
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400000, 0, &w), -EFAULT);
	assert_int_equal(w.leaf_level, 2);
	*pt_entry(&p, 0x400000, 2) |= X86_PTE_P;
	/* PS in a PML4E is reserved. */
	*pt_entry(&p, 0x400000, 4) |= X86_PTE_PS;
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400000, 0, &w), -EFAULT);
	assert_int_equal(w.pf_err, X86_PF_P | X86_PF_RSVD);
	pt_fini(&p);
}

static void test_walk_rights(void **state)
{
	struct pvm_paging pg;
	struct pvm_walk w;
	struct pt p;

	(void)state;
	pt_init(&p);
	pg = (struct pvm_paging){ .cr3 = p.cr3, .levels = 4, .wp = true, .nxe = true };
	pt_map(&p, 0x400000, 0x800000, 1, X86_PTE_P | X86_PTE_NX, URW);  /* read-only, supervisor, NX */
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400000, 0, &w), 0);
	assert_int_equal(w.leaf_level, 1);
	assert_int_equal(w.leaf_gpa & 0xfff, (0x400000 >> 12 & 511) * 8);
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400000, PVM_ACC_WRITE, &w), -EFAULT);
	assert_int_equal(w.pf_err, X86_PF_P | X86_PF_W);
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400000, PVM_ACC_USER, &w), -EFAULT);
	assert_int_equal(w.pf_err, X86_PF_P | X86_PF_U);
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400000, PVM_ACC_FETCH, &w), -EFAULT);
	assert_int_equal(w.pf_err, X86_PF_P | X86_PF_I);
	assert_false(w.nx_above);
	/* CR0.WP=0: the supervisor may write a read-only page; EFER.NXE=0: XD is not honoured. */
	pg.wp = false;
	pg.nxe = false;
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400000, PVM_ACC_WRITE, &w), 0);
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400000, PVM_ACC_FETCH, &w), 0);
	/* Rights are the AND over levels: a read-only PDE blocks a writable PTE. */
	pg.wp = true;
	pg.nxe = true;
	*pt_entry(&p, 0x400000, 1) |= X86_PTE_RW | X86_PTE_US;
	*pt_entry(&p, 0x400000, 2) &= ~X86_PTE_RW;
	*pt_entry(&p, 0x400000, 3) |= X86_PTE_NX;
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400000, PVM_ACC_WRITE | PVM_ACC_USER, &w), -EFAULT);
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400000, PVM_ACC_USER, &w), 0);
	assert_true(w.nx_above);
	pt_fini(&p);
}

static void test_walk_outside_ram(void **state)
{
	struct pvm_paging pg;
	struct pvm_walk w;
	struct pt p;
	gpa_t pa;

	(void)state;
	pt_init(&p);
	/* CR3 beyond RAM. */
	assert_int_equal(pvm_gva_to_gpa(&p.mem, 0x7fff0000000ULL, 0x1000, false, &pa), -ENXIO);
	/* A PDPT pointing into the MMIO hole. */
	pt_map(&p, 0x400000, 0x800000, 1, RW, RW);
	*pt_entry(&p, 0x400000, 3) = 0xfec00000ULL | RW;
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3, 0x400000, false, &pa), -ENXIO);
	/* A PML4 entry pointing at the last bytes of RAM still reads inside RAM; the one past is out. */
	*pt_entry(&p, 0x400000, 4) = (T_RAM - 4096) | RW;
	memset(gp(&p, T_RAM - 4096, 4096), 0, 4096);
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3, 0x400000, false, &pa), -EFAULT);
	*pt_entry(&p, 0x400000, 4) = T_RAM | RW;
	assert_int_equal(pvm_gva_to_gpa(&p.mem, p.cr3, 0x400000, false, &pa), -ENXIO);
	/* Non-canonical addresses never walk. */
	pg = (struct pvm_paging){ .cr3 = p.cr3, .levels = 4 };
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x0000800000000000ULL, 0, &w), -EINVAL);
	assert_int_equal(pvm_walk(&p.mem, &pg, 0xffff7fffffffffffULL, 0, &w), -EINVAL);
	/* ...but 5-level paging makes them canonical. */
	assert_true(pvm_canonical(0x0000800000000000ULL, 5));
	assert_false(pvm_canonical(0x0100000000000000ULL, 5));
	assert_true(pvm_canonical(0xffff800000000000ULL, 4));
	pt_fini(&p);
}

static void test_walk_5level(void **state)
{
	struct pvm_paging pg;
	struct pvm_walk w;
	struct pt p;
	gpa_t pml5;

	(void)state;
	pt_init(&p);
	pt_map(&p, 0x400000, 0x800000, 1, RW, RW);
	/* A PML5 whose entry 0 is the 4-level PML4. */
	pml5 = p.next;
	p.next += 4096;
	memset(gp(&p, pml5, 4096), 0, 4096);
	*(uint64_t *)gp(&p, pml5, 8) = p.cr3 | RW;
	pg = (struct pvm_paging){ .cr3 = pml5, .levels = 5, .wp = true };
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x400042, 0, &w), 0);
	assert_int_equal(w.gpa, 0x800042);
	assert_int_equal(pvm_walk(&p.mem, &pg, 0x0002000000400000ULL, 0, &w), -EFAULT); /* PML5[2] empty */
	pt_fini(&p);
}

static void test_vmem_access(void **state)
{
	struct pvm_fault f = { 0 };
	struct pvm_mem_ops ops;
	struct pvm_vmem vm;
	struct pvm_cpu c;
	uint8_t buf[16], *lo, *hi;
	struct pt p;

	(void)state;
	pt_init(&p);
	/* Two adjacent virtual pages backed by non-adjacent physical ones. */
	pt_map(&p, 0x400000, 0x900000, 1, RW, RW);
	pt_map(&p, 0x401000, 0x700000, 1, RW, RW);
	pt_map(&p, 0x500000, 0xf0000000ULL, 1, RW, RW);                 /* MMIO hole, not RAM */
	pt_map(&p, 0x600000, 0x300000, 1, X86_PTE_P, RW);               /* read-only */
	cpu_init64(&c, &p);
	vmem_ops(&vm, &ops, &p, &c);
	lo = gp(&p, 0x900ff8, 8);
	hi = gp(&p, 0x700000, 8);
	memcpy(lo, "ABCDEFGH", 8);
	memcpy(hi, "IJKLMNOP", 8);
	assert_int_equal(ops.access(ops.ctx, 0x400ff8, buf, 16, 0, &f), 0);
	assert_memory_equal(buf, "ABCDEFGHIJKLMNOP", 16);
	assert_int_equal(ops.access(ops.ctx, 0x400ffc, "wxyz1234", 8, PVM_ACC_WRITE, &f), 0);
	assert_memory_equal(lo + 4, "wxyz", 4);
	assert_memory_equal(hi, "1234", 4);
	/* Second page unmapped: fault at its first byte and nothing written. */
	pt_map(&p, 0x402000, 0x700000, 1, 0, RW);
	memcpy(gp(&p, 0x700ff8, 8), "........", 8);
	assert_int_equal(ops.access(ops.ctx, 0x401ffc, "abcdefgh", 8, PVM_ACC_WRITE, &f), -EFAULT);
	assert_int_equal(f.addr, 0x402000);
	assert_int_equal(f.err, X86_PF_W);
	assert_memory_equal(gp(&p, 0x700ff8, 8), "........", 8);
	/* Write to a read-only page. */
	assert_int_equal(ops.access(ops.ctx, 0x600000, buf, 4, PVM_ACC_WRITE, &f), -EFAULT);
	assert_int_equal(f.err, X86_PF_P | X86_PF_W);
	/* A mapped page outside RAM. */
	assert_int_equal(ops.access(ops.ctx, 0x500000, buf, 4, 0, &f), -ENXIO);
	/* Wrapping past 2^64, too long, empty. */
	assert_int_equal(ops.access(ops.ctx, 0xfffffffffffffffcULL, buf, 8, 0, &f), -EINVAL);
	assert_int_equal(ops.access(ops.ctx, 0x400000, buf, 8192, 0, &f), -EINVAL);
	assert_int_equal(ops.access(ops.ctx, 0x400000, buf, 0, 0, &f), 0);
	/* fetch: partial up to the first unreadable page. */
	assert_int_equal(pvm_vmem_fetch(&vm, 0x401ff8, buf, 15), 8);
	assert_int_equal(pvm_vmem_fetch(&vm, 0x400ff8, buf, 15), 15);
	assert_int_equal(pvm_vmem_fetch(&vm, 0x10000000, buf, 15), 0);
	pt_fini(&p);
}

const struct CMUnitTest pvm_walk_tests[] = {
	cmocka_unit_test(test_walk_page_sizes),
	cmocka_unit_test(test_walk_not_present),
	cmocka_unit_test(test_walk_rights),
	cmocka_unit_test(test_walk_outside_ram),
	cmocka_unit_test(test_walk_5level),
	cmocka_unit_test(test_vmem_access),
};
const size_t pvm_walk_ntests = ARRAY_SIZE(pvm_walk_tests);
