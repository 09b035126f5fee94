/* Unit tests of the syscall trap's pure logic: arming the vsyscall PTE, classifying exits, completing SYSCALL. */
#include "pvm_test.h"
#include <errno.h>
#include <string.h>

#define RW (X86_PTE_P | X86_PTE_RW)
#define URW (X86_PTE_P | X86_PTE_RW | X86_PTE_US)
#define VSYS_PA 0x5000ULL
#define GUEST_LSTAR 0xffffffff81c00080ULL
#define LINUX_STAR 0x0023001000000000ULL
#define LINUX_FMASK 0x257fd5ULL

static void test_trap_arm(void **state)
{
	struct pvm_paging pg;
	struct pvm_trap_pte t;
	struct pt p;

	(void)state;
	pt_init(&p);
	pg = (struct pvm_paging){ .cr3 = p.cr3, .levels = 4, .wp = true, .nxe = true };
	assert_int_equal(pvm_trap_arm(&p.mem, &pg, &t), -ENOENT);          /* nothing mapped */
	pt_map(&p, PVM_VSYSCALL_PAGE, VSYS_PA, 1, X86_PTE_P | X86_PTE_US | X86_PTE_NX, RW);
	assert_int_equal(pvm_trap_arm(&p.mem, &pg, &t), -ENOENT);          /* upper levels lack U/S (vsyscall=xonly) */
	for (unsigned l = 2; l <= 4; l++)
		*pt_entry(&p, PVM_VSYSCALL_PAGE, l) |= X86_PTE_US;
	*pt_entry(&p, PVM_VSYSCALL_PAGE, 2) |= X86_PTE_NX;
	assert_int_equal(pvm_trap_arm(&p.mem, &pg, &t), -ENOENT);          /* NX above the PTE */
	*pt_entry(&p, PVM_VSYSCALL_PAGE, 2) &= ~X86_PTE_NX;
	assert_int_equal(pvm_trap_arm(&p.mem, &pg, &t), 0);
	assert_int_equal(*pt_entry(&p, PVM_VSYSCALL_PAGE, 1), PVM_TRAP_GPA | X86_PTE_P | X86_PTE_US | X86_PTE_A);
	assert_int_equal(t.orig, VSYS_PA | X86_PTE_P | X86_PTE_US | X86_PTE_NX);
	assert_int_equal(t.pte_gpa, (gpa_t)((uint8_t *)pt_entry(&p, PVM_VSYSCALL_PAGE, 1) - p.mem.base));
	assert_int_equal(pvm_trap_arm(&p.mem, &pg, &t), 0);                /* idempotent */
	/* A 2 MiB mapping there is not Linux's vsyscall page. */
	*pt_entry(&p, PVM_VSYSCALL_PAGE, 2) = 0x200000 | URW | X86_PTE_PS;
	assert_int_equal(pvm_trap_arm(&p.mem, &pg, &t), -ENOENT);
	/* Page tables outside RAM. */
	pg.cr3 = 0xfe000000ULL;
	assert_int_equal(pvm_trap_arm(&p.mem, &pg, &t), -ENXIO);
	pt_fini(&p);
	assert_true(PVM_TRAP_LSTAR != PVM_VSYSCALL_PAGE && PVM_TRAP_LSTAR != PVM_VSYSCALL_PAGE + 0x400 &&
		    PVM_TRAP_LSTAR != PVM_VSYSCALL_PAGE + 0x800);
}

static void test_trap_classify_complete(void **state)
{
	struct pvm_cpu c;

	(void)state;
	memset(&c, 0, sizeof(c));
	pvm_flat_code64(&c.sregs.cs, 0x33, 3);
	c.msr_fmask = LINUX_FMASK;
	c.msr_star = LINUX_STAR;
	c.regs.rip = PVM_TRAP_LSTAR;
	c.regs.rflags = c.regs.r11 = 0x246;
	assert_int_equal(pvm_trap_classify(&c, true, true), PVM_TRAP_SYSCALL);
	assert_int_equal(pvm_trap_classify(&c, false, true), PVM_TRAP_NONE);   /* not armed: not ours */
	assert_int_equal(pvm_trap_classify(&c, true, false), PVM_TRAP_FAULT);  /* this vCPU has no trap */
	c.regs.rip = PVM_VSYSCALL_PAGE + 0x800;
	assert_int_equal(pvm_trap_classify(&c, true, true), PVM_TRAP_FAULT);
	c.regs.rip = PVM_VSYSCALL_PAGE - 1;
	assert_int_equal(pvm_trap_classify(&c, true, true), PVM_TRAP_NONE);
	c.regs.rip = PVM_TRAP_LSTAR;
	pvm_flat_code64(&c.sregs.cs, 0x10, 0);
	assert_int_equal(pvm_trap_classify(&c, true, true), PVM_TRAP_NONE);

	assert_true(pvm_syscall_flags_ok(0x246, 0x246, LINUX_FMASK));
	assert_true(pvm_syscall_flags_ok(0x246 | X86_RF_RF, 0x246, LINUX_FMASK));
	assert_true(pvm_syscall_flags_ok(0x002, 0x246, LINUX_FMASK));           /* masked by the host */
	assert_false(pvm_syscall_flags_ok(0x246, 0x3246, LINUX_FMASK));         /* forged IOPL */
	assert_false(pvm_syscall_flags_ok(0x202, 0x246, LINUX_FMASK));          /* ZF/PF differ */
	assert_false(pvm_syscall_flags_ok(0x002, 0x246, LINUX_FMASK & ~X86_RF_IF)); /* IF=0 provable only with IF in FMASK */
	assert_false(pvm_syscall_flags_ok(0x202, 0x3202, LINUX_FMASK & ~X86_RF_IF)); /* else an IOPL forgery fits */

	c.regs.r11 = 0x3246 | X86_RF_RF | X86_RF_AC;
	c.regs.rcx = 0x401002;
	pvm_syscall_complete(&c, GUEST_LSTAR);
	assert_int_equal(c.regs.rip, GUEST_LSTAR);
	assert_int_equal(c.regs.rflags, 0x2);
	assert_int_equal(c.regs.rcx, 0x401002);
	assert_int_equal(c.sregs.cs.selector, 0x10);
	assert_int_equal(c.sregs.ss.selector, 0x18);
	assert_int_equal(c.sregs.cs.type, 11);
	assert_int_equal(c.sregs.ss.type, 3);
	assert_int_equal(c.sregs.cs.limit, 0xffffffff);
	/* STAR's RPL bits are dropped for CS only (SDM). */
	c.msr_star = 0x0023001300000000ULL;
	c.msr_fmask = 0;
	c.regs.r11 = 0x246;
	pvm_syscall_complete(&c, GUEST_LSTAR);
	assert_int_equal(c.sregs.cs.selector, 0x10);
	assert_int_equal(c.sregs.ss.selector, 0x1b);
	assert_int_equal(c.regs.rflags, 0x246);
}

const struct CMUnitTest pvm_trap_tests[] = {
	cmocka_unit_test(test_trap_arm),
	cmocka_unit_test(test_trap_classify_complete),
};
const size_t pvm_trap_ntests = ARRAY_SIZE(pvm_trap_tests);
