/* The architectural result of each instruction kvm_pvm's emulator refuses, computed on a plain CPU-state struct. */
#include <errno.h>
#include <string.h>
#include "compat/pvm_internal.h"

/*
 * Policy (docs/compat-pvm.md has the table): give the guest exactly what a
 * CPU with the guest's visible CPUID would do. Where the feature is hidden
 * in a way the guest sees (CPUID leaf 1 CX16, CR4.OSXSAVE=0 under noxsave)
 * that is #UD; where the guest still sees the feature (leaf 7 and most of
 * leaf 1 come from the host whatever kiln sets) the instruction is emulated.
 * Instructions the host runs itself (swapgs, iretq, sysretq per
 * pvm-probe/insnprobe.results.txt) are emulated too, in case a different
 * kvm_pvm refuses them. Anything else is refused with a reason.
 */

void pvm_res_exception(struct pvm_result *r, uint8_t vector, bool has_error, uint32_t error_code)
{
	r->action = PVM_ACT_EXCEPTION;
	r->vector = vector;
	r->has_error = has_error;
	r->error_code = error_code;
}

void pvm_res_unhandled(struct pvm_result *r, const char *reason)
{
	r->action = PVM_ACT_UNHANDLED;
	r->dirty = 0;
	r->reason = reason;
}

unsigned pvm_cpl(const struct kvm_sregs *s)
{
	return s->cs.selector & 3;
}

unsigned pvm_insn_needs(enum pvm_kind k)
{
	switch (k) {
	case PVM_INSN_SWAPGS:
	case PVM_INSN_SYSRET:
		return PVM_NEED_MSR_SYSCALL;
	case PVM_INSN_RDTSCP:
		return PVM_NEED_MSR_TSC;
	case PVM_INSN_FWAIT:
	case PVM_INSN_LDMXCSR:
	case PVM_INSN_STMXCSR:
	case PVM_INSN_FLDCW:
		return PVM_NEED_FPU;
	case PVM_INSN_XGETBV:
		return PVM_NEED_XCR;
	default:
		return 0;
	}
}

/* General-purpose register n in x86 encoding order (rax rcx rdx rbx rsp rbp rsi rdi r8..r15). */
__u64 *pvm_gpr(struct kvm_regs *g, unsigned n)
{
	switch (n & 15) {
	case 0: return &g->rax;
	case 1: return &g->rcx;
	case 2: return &g->rdx;
	case 3: return &g->rbx;
	case 4: return &g->rsp;
	case 5: return &g->rbp;
	case 6: return &g->rsi;
	case 7: return &g->rdi;
	case 8: return &g->r8;
	case 9: return &g->r9;
	case 10: return &g->r10;
	case 11: return &g->r11;
	case 12: return &g->r12;
	case 13: return &g->r13;
	case 14: return &g->r14;
	default: return &g->r15;
	}
}

/* Effective address of a memory operand (SDM Vol 1 3.7.5; only FS/GS bases apply in 64-bit mode, 3.4.2.1). */
uint64_t pvm_ea(const struct pvm_cpu *c, const struct pvm_insn *in)
{
	const struct pvm_modrm *m = &in->modrm;
	struct kvm_regs g = c->regs;
	uint64_t ea = (uint64_t)(int64_t)m->disp;

	if (m->rip_rel)
		ea += c->regs.rip + in->len;  /* relative to the next instruction */
	if (m->has_base)
		ea += *pvm_gpr(&g, m->base);
	if (m->has_index)
		ea += *pvm_gpr(&g, m->index) << m->scale;
	if (in->addr32)
		ea &= 0xffffffffULL;
	if (in->seg == PVM_SEG_FS)
		ea += c->sregs.fs.base;
	else if (in->seg == PVM_SEG_GS)
		ea += c->sregs.gs.base;
	return ea;
}

static int vmem(struct pvm_cpu *c, const struct pvm_mem_ops *mem, uint64_t gva, void *buf, size_t len,
		unsigned acc, struct pvm_result *r)
{
	struct pvm_fault f = { 0 };
	int e = mem->access(mem->ctx, gva, buf, len, acc, &f);

	if (e == -EFAULT) {
		/* #PF reports the linear address in CR2 (SDM Vol 3A 4.7). */
		c->sregs.cr2 = f.addr;
		r->dirty |= PVM_DIRTY_SREGS;
		pvm_res_exception(r, X86_VEC_PF, true, f.err);
	} else if (e == -EINVAL) {
		pvm_res_exception(r, X86_VEC_GP, true, 0);  /* non-canonical: #GP(0) */
	} else if (e) {
		pvm_res_unhandled(r, "memory operand outside guest RAM");
	}
	return e;
}

int pvm_vmread(struct pvm_cpu *c, const struct pvm_mem_ops *mem, uint64_t gva, void *buf, size_t len,
	       bool implicit_sv, struct pvm_result *r)
{
	unsigned acc = (!implicit_sv && pvm_cpl(&c->sregs) == 3) ? PVM_ACC_USER : 0;

	return vmem(c, mem, gva, buf, len, acc, r);
}

int pvm_vmwrite(struct pvm_cpu *c, const struct pvm_mem_ops *mem, uint64_t gva, const void *buf, size_t len,
		struct pvm_result *r)
{
	unsigned acc = PVM_ACC_WRITE | (pvm_cpl(&c->sregs) == 3 ? PVM_ACC_USER : 0);

	return vmem(c, mem, gva, (void *)buf, len, acc, r);
}

static void next_insn(struct pvm_cpu *c, const struct pvm_insn *in, struct pvm_result *r)
{
	c->regs.rip += in->len;
	r->dirty |= PVM_DIRTY_REGS;
}

/* WAIT/FWAIT (SDM Vol 2B): #NM if CR0.MP and CR0.TS; #MF if an unmasked x87 exception is pending. */
static void emul_fwait(struct pvm_cpu *c, const struct pvm_insn *in, struct pvm_result *r)
{
	if ((c->sregs.cr0 & (X86_CR0_MP | X86_CR0_TS)) == (X86_CR0_MP | X86_CR0_TS)) {
		pvm_res_exception(r, X86_VEC_NM, false, 0);
		return;
	}
	/*
	 * FSW.ES (bit 7) is set exactly when an unmasked exception is pending.
	 * With CR0.NE the CPU raises #MF before the wait completes (a fault, RIP
	 * at the fwait; Linux's fpu__drop has a fixup for it). Without NE the
	 * legacy FERR# path applies, which kiln does not model: skip.
	 */
	if ((c->fpu.fsw & 0x80) && (c->sregs.cr0 & X86_CR0_NE)) {
		pvm_res_exception(r, X86_VEC_MF, false, 0);
		return;
	}
	/* Nothing pending: fwait has no other effect, so the result is "next instruction". */
	next_insn(c, in, r);
}

/* CLAC/STAC (SDM Vol 2A/2B): #UD at CPL > 0; otherwise only RFLAGS.AC changes. */
static void emul_clac_stac(struct pvm_cpu *c, const struct pvm_insn *in, struct pvm_result *r)
{
	if (pvm_cpl(&c->sregs) != 0) {
		pvm_res_exception(r, X86_VEC_UD, false, 0);
		return;
	}
	if (in->kind == PVM_INSN_CLAC)
		c->regs.rflags &= ~X86_RF_AC;
	else
		c->regs.rflags |= X86_RF_AC;
	next_insn(c, in, r);
}

/* XGETBV (SDM Vol 2B): #UD if CR4.OSXSAVE=0 (so under noxsave); ECX=0 reads XCR0; other ECX #GP(0). */
static void emul_xgetbv(struct pvm_cpu *c, const struct pvm_insn *in, struct pvm_result *r)
{
	if (!(c->sregs.cr4 & X86_CR4_OSXSAVE)) {
		pvm_res_exception(r, X86_VEC_UD, false, 0);
		return;
	}
	if ((uint32_t)c->regs.rcx != 0) {
		pvm_res_exception(r, X86_VEC_GP, true, 0);
		return;
	}
	c->regs.rax = (uint32_t)c->xcr0;
	c->regs.rdx = c->xcr0 >> 32;
	next_insn(c, in, r);
}

/* RDTSCP (SDM Vol 2B): #GP(0) if CR4.TSD and CPL > 0; EDX:EAX = TSC, ECX = TSC_AUX, upper halves zeroed. */
static void emul_rdtscp(struct pvm_cpu *c, const struct pvm_insn *in, struct pvm_result *r)
{
	if ((c->sregs.cr4 & X86_CR4_TSD) && pvm_cpl(&c->sregs) != 0) {
		pvm_res_exception(r, X86_VEC_GP, true, 0);
		return;
	}
	c->regs.rax = (uint32_t)c->msr_tsc;
	c->regs.rdx = c->msr_tsc >> 32;
	c->regs.rcx = (uint32_t)c->msr_tsc_aux;
	next_insn(c, in, r);
}

/* POPCNT (SDM Vol 2B): dest = number of set bits; ZF = (src == 0); OF SF AF CF PF cleared. */
static void emul_popcnt(struct pvm_cpu *c, const struct pvm_insn *in, const struct pvm_mem_ops *mem,
			struct pvm_result *r)
{
	uint64_t src = 0;
	__u64 *dst;
	unsigned size = in->opsize;

	if (in->modrm.mod == 3) {
		src = *pvm_gpr(&c->regs, in->modrm.rm);
	} else if (pvm_vmread(c, mem, pvm_ea(c, in), &src, size, false, r)) {
		return;
	}
	if (size < 8)
		src &= (1ULL << (size * 8)) - 1;
	dst = pvm_gpr(&c->regs, in->modrm.reg);
	if (size == 2)
		*dst = (*dst & ~0xffffULL) | (uint64_t)__builtin_popcountll(src);
	else
		*dst = (uint64_t)__builtin_popcountll(src);  /* a 32-bit write zero-extends */
	c->regs.rflags &= ~X86_RF_ARITH;
	if (!src)
		c->regs.rflags |= X86_RF_ZF;
	next_insn(c, in, r);
}

/* SSE state checks shared by LDMXCSR/STMXCSR (SDM Vol 2A LDMXCSR "Protected Mode Exceptions"). */
static bool sse_usable(struct pvm_cpu *c, struct pvm_result *r)
{
	if ((c->sregs.cr0 & X86_CR0_EM) || !(c->sregs.cr4 & X86_CR4_OSFXSR)) {
		pvm_res_exception(r, X86_VEC_UD, false, 0);
		return false;
	}
	if (c->sregs.cr0 & X86_CR0_TS) {
		pvm_res_exception(r, X86_VEC_NM, false, 0);
		return false;
	}
	return true;
}

/* MXCSR bits 31:16 are reserved; loading one is #GP(0). 0xffff assumes DAZ, present on every x86-64 CPU. */
#define MXCSR_VALID 0xffffU

static void emul_mxcsr(struct pvm_cpu *c, const struct pvm_insn *in, const struct pvm_mem_ops *mem,
		       struct pvm_result *r)
{
	uint64_t ea = pvm_ea(c, in);
	uint32_t v;

	if (!sse_usable(c, r))
		return;
	if (in->kind == PVM_INSN_LDMXCSR) {
		if (pvm_vmread(c, mem, ea, &v, 4, false, r))
			return;
		if (v & ~MXCSR_VALID) {
			pvm_res_exception(r, X86_VEC_GP, true, 0);
			return;
		}
		c->fpu.mxcsr = v;
		r->dirty |= PVM_DIRTY_FPU;
	} else {
		v = c->fpu.mxcsr;
		if (pvm_vmwrite(c, mem, ea, &v, 4, r))
			return;
	}
	next_insn(c, in, r);
}

/* FLDCW m16 (SDM Vol 2A): #NM if CR0.EM or CR0.TS; loads the x87 control word. */
static void emul_fldcw(struct pvm_cpu *c, const struct pvm_insn *in, const struct pvm_mem_ops *mem,
		       struct pvm_result *r)
{
	uint16_t v;

	if (c->sregs.cr0 & (X86_CR0_EM | X86_CR0_TS)) {
		pvm_res_exception(r, X86_VEC_NM, false, 0);
		return;
	}
	if (pvm_vmread(c, mem, pvm_ea(c, in), &v, 2, false, r))
		return;
	c->fpu.fcw = v;
	r->dirty |= PVM_DIRTY_FPU;
	next_insn(c, in, r);
}

/* Instructions that take no LOCK prefix raise #UD with one (SDM Vol 2A LOCK). */
static bool lockable(enum pvm_kind k)
{
	return k == PVM_INSN_CMPXCHG16B;
}

void pvm_emulate(struct pvm_cpu *c, const struct pvm_insn *in, const struct pvm_mem_ops *mem,
		 struct pvm_result *r)
{
	memset(r, 0, sizeof(*r));
	r->action = PVM_ACT_RESUME;
	if (in->lock && !lockable(in->kind)) {
		pvm_res_exception(r, X86_VEC_UD, false, 0);
		return;
	}
	switch (in->kind) {
	case PVM_INSN_INT3:
		/* #BP is a trap: the frame's RIP is the instruction after the int3 (SDM Vol 3A 6.5). */
		next_insn(c, in, r);
		pvm_res_exception(r, X86_VEC_BP, false, 0);
		return;
	case PVM_INSN_UD:
		pvm_res_exception(r, X86_VEC_UD, false, 0);  /* a fault: RIP stays */
		return;
	case PVM_INSN_FWAIT:
		emul_fwait(c, in, r);
		return;
	case PVM_INSN_CLAC:
	case PVM_INSN_STAC:
		emul_clac_stac(c, in, r);
		return;
	case PVM_INSN_XGETBV:
		emul_xgetbv(c, in, r);
		return;
	case PVM_INSN_RDTSCP:
		emul_rdtscp(c, in, r);
		return;
	case PVM_INSN_POPCNT:
		emul_popcnt(c, in, mem, r);
		return;
	case PVM_INSN_LDMXCSR:
	case PVM_INSN_STMXCSR:
		emul_mxcsr(c, in, mem, r);
		return;
	case PVM_INSN_FLDCW:
		emul_fldcw(c, in, mem, r);
		return;
	case PVM_INSN_XSAVE:
		/* Under noxsave CR4.OSXSAVE=0 makes every XSAVE-family instruction #UD. */
		if (!(c->sregs.cr4 & X86_CR4_OSXSAVE)) {
			pvm_res_exception(r, X86_VEC_UD, false, 0);
			return;
		}
		pvm_res_unhandled(r, "xsave-family instruction with CR4.OSXSAVE set (boot Linux with noxsave)");
		return;
	case PVM_INSN_CMPXCHG16B:
		/* kiln clears CPUID.1:ECX.CX16, which KVM_SET_CPUID2 honours here: the guest sees #UD. */
		pvm_res_exception(r, X86_VEC_UD, false, 0);
		return;
	case PVM_INSN_IRET:
		if (in->opsize != 8) {
			pvm_res_unhandled(r, "iret with a 16/32-bit operand size");
			return;
		}
		pvm_emul_iretq(c, in, mem, r);
		return;
	case PVM_INSN_SWAPGS:
		pvm_emul_swapgs(c, in, r);
		return;
	case PVM_INSN_SYSRET:
		if (in->opsize != 8) {
			pvm_res_unhandled(r, "sysret to compatibility mode");
			return;
		}
		pvm_emul_sysretq(c, r);
		return;
	case PVM_INSN_VERR:
	case PVM_INSN_VERW:
		pvm_emul_verx(c, in, mem, r);
		return;
	case PVM_INSN_INTN:
		pvm_res_unhandled(r, "refused instruction int n");
		return;
	case PVM_INSN_LAR:
	case PVM_INSN_LSL:
		pvm_res_unhandled(r, "refused instruction lar/lsl");
		return;
	case PVM_INSN_SYSENTER:
		pvm_res_unhandled(r, "refused instruction sysenter");
		return;
	case PVM_INSN_MONITOR:
	case PVM_INSN_MWAIT:
		pvm_res_unhandled(r, "refused instruction monitor/mwait (hide MWAIT: clearcpuid=131)");
		return;
	default:
		pvm_res_unhandled(r, "unknown instruction");
		return;
	}
}
