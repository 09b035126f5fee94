/* The syscall trap: catch a guest user-mode SYSCALL on kvm_pvm and finish it the way the CPU would. */
#include <errno.h>
#include "compat/pvm_internal.h"

/*
 * On kvm_pvm a user-mode SYSCALL loads RCX (the address after the syscall)
 * and R11 (RFLAGS) and jumps to LSTAR, but stays at CPL3, so the kernel's
 * entry code faults on its first supervisor access (HOST.md). kiln gets that
 * jump to exit instead: LSTAR holds PVM_TRAP_LSTAR, an address in the
 * vsyscall page, and the page's PTE is pointed at PVM_TRAP_GPA, where no
 * memslot is. The user's instruction fetch there is an emulation failure
 * at RIP == PVM_TRAP_LSTAR and CPL3, and kiln does the rest of the SYSCALL
 * (SDM Vol 2B SYSCALL): CS/SS from STAR[47:32], RFLAGS = R11 & ~FMASK, RIP =
 * the guest's real LSTAR. RCX and R11 are already what SYSCALL stores; the
 * probe relied on that and left them alone, and so does kiln.
 *
 * Why the vsyscall page: it is the only kernel-half mapping that every
 * process's page tables share *and* that is user-accessible at every level
 * (with vsyscall=emulate, Linux sets U/S on the whole path:
 * set_vsyscall_pgtable_user_bits()). A kiln-made mapping elsewhere would be
 * missing from every new process's PGD. No guest code is patched; only that
 * one PTE changes, once, before any user process exists (the guest writes
 * LSTAR in trap_init(), after setup_arch() mapped the page and before
 * pti_init() would copy the PTE into user page tables).
 *
 * Legacy vsyscall calls (0x000, 0x400, 0x800 in the page) now also exit to
 * kiln; they get the #PF the guest's own NX PTE would have given, so the
 * guest kernel emulates them as before. Offset 0xc00 is no vsyscall entry,
 * so a syscall and a legacy call can never be confused.
 */

uint64_t pvm_trap_pte_value(void)
{
	/* Read-only and executable; A preset so nobody needs to write the entry. */
	return PVM_TRAP_GPA | X86_PTE_P | X86_PTE_US | X86_PTE_A;
}

int pvm_trap_arm(const struct guest_mem *m, const struct pvm_paging *pg, struct pvm_trap_pte *out)
{
	uint64_t want = pvm_trap_pte_value(), old;
	struct pvm_walk w;
	uint64_t *pte;
	int r;

	/* A user read must succeed through the whole path: that is what vsyscall=emulate sets up. */
	r = pvm_walk(m, pg, PVM_TRAP_LSTAR, PVM_ACC_USER, &w);
	if (r == -ENXIO)
		return r;
	if (r)
		return -ENOENT;
	/* The fixmap maps it with a 4 KiB page; an NX upper level would block the fetch. */
	if (w.leaf_level != 1 || w.nx_above)
		return -ENOENT;
	pte = mem_gpa(m, w.leaf_gpa, 8);
	if (!pte)
		return -ENXIO;
	/* Compare-exchange: the walk's value must still be there, or the guest is editing the entry. */
	old = w.leaf;
	if (old != want && !__atomic_compare_exchange_n(pte, &old, want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return -EAGAIN;
	out->pte_gpa = w.leaf_gpa;
	out->orig = w.leaf;
	return 0;
}

/*
 * A real SYSCALL leaves R11 = the user's RFLAGS, and RFLAGS either unchanged
 * (the host did not mask it yet) or R11 & ~FMASK; RF may differ either way.
 * A user program that jumps to the trap address itself, with R11 of its
 * choosing, must not get a kernel entry with flags it could not have had
 * (say IOPL=3, which the kernel's SYSRET would hand back): so require one of
 * the two shapes. The masked shape is accepted only when FMASK clears IF,
 * because a CPL3 program always runs with IF=1 and cannot fake IF=0.
 */
bool pvm_syscall_flags_ok(uint64_t rflags, uint64_t r11, uint64_t fmask)
{
	const uint64_t ignore = X86_RF_RF | X86_RF_FIXED;
	uint64_t live = rflags & ~ignore, saved = r11 & ~ignore;

	if (live == saved)
		return true;
	return (fmask & X86_RF_IF) && live == (saved & ~fmask);
}

enum pvm_trap_verdict pvm_trap_classify(const struct pvm_cpu *c, bool armed, bool installed)
{
	uint64_t rip = c->regs.rip;

	if (!armed || pvm_cpl(&c->sregs) != 3 || (rip & ~0xfffULL) != PVM_VSYSCALL_PAGE)
		return PVM_TRAP_NONE;
	if (rip == PVM_TRAP_LSTAR && installed && pvm_syscall_flags_ok(c->regs.rflags, c->regs.r11, c->msr_fmask))
		return PVM_TRAP_SYSCALL;
	return PVM_TRAP_FAULT;
}

void pvm_syscall_complete(struct pvm_cpu *c, uint64_t lstar)
{
	uint16_t sel = (uint16_t)(c->msr_star >> 32);

	/* SDM Vol 2B SYSCALL: RFLAGS := RFLAGS AND NOT(FMASK), from the copy in R11; RF and VM end up clear. */
	c->regs.rflags = (c->regs.r11 & ~c->msr_fmask & ~(X86_RF_RF | X86_RF_VM) & 0x3f7fd7ULL) | X86_RF_FIXED;
	c->regs.rip = lstar;
	pvm_flat_code64(&c->sregs.cs, sel & 0xfffc, 0);
	pvm_flat_data(&c->sregs.ss, (uint16_t)(sel + 8), 0);
}
