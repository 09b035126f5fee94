/* Emulation of the privilege-changing instructions (iretq, sysretq, swapgs) and verr/verw, with descriptor loads. */
#include <errno.h>
#include <string.h>
#include "compat/pvm_internal.h"

/*
 * The host runs swapgs, iretq and sysretq itself (pvm-probe/insnprobe), so
 * these paths only matter on a kvm_pvm that refuses them; they follow the
 * SDM pseudo-code for 64-bit mode closely enough for a Linux kernel's own
 * uses, and are unit-tested. Call gates, task switches and compatibility-
 * mode returns are refused rather than approximated.
 */

void pvm_flat_code64(struct kvm_segment *s, uint16_t sel, unsigned dpl)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;  /* FFFFFH pages, G=1 */
	s->type = 11;           /* execute/read, accessed */
	s->present = 1;
	s->dpl = dpl;
	s->s = 1;
	s->l = 1;
	s->g = 1;
}

void pvm_flat_data(struct kvm_segment *s, uint16_t sel, unsigned dpl)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = 3;            /* read/write, accessed */
	s->present = 1;
	s->dpl = dpl;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

/* Segment-descriptor fields (SDM Vol 3A 3.4.5, figure 3-8). */
#define DESC_TYPE(d)  ((unsigned)((d) >> 40) & 0xf)
#define DESC_S(d)     ((unsigned)((d) >> 44) & 1)
#define DESC_DPL(d)   ((unsigned)((d) >> 45) & 3)
#define DESC_P(d)     ((unsigned)((d) >> 47) & 1)
#define TYPE_CODE     0x8
#define TYPE_CONFORM  0x4   /* code */
#define TYPE_READ     0x2   /* code: readable */
#define TYPE_WRITE    0x2   /* data: writable */

static void desc_to_seg(uint64_t d, uint16_t sel, struct kvm_segment *s)
{
	uint32_t limit = (uint32_t)(d & 0xffff) | (uint32_t)((d >> 32) & 0xf0000);

	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000);
	s->g = (d >> 55) & 1;
	s->limit = s->g ? (limit << 12) | 0xfff : limit;
	s->type = DESC_TYPE(d);
	s->s = DESC_S(d);
	s->dpl = DESC_DPL(d);
	s->present = DESC_P(d);
	s->avl = (d >> 52) & 1;
	s->l = (d >> 53) & 1;
	s->db = (d >> 54) & 1;
}

/*
 * Read the 8-byte descriptor for sel from the GDT or LDT (an implicit
 * supervisor access, SDM Vol 3A 4.6). 0: *d read; 1: outside the table (or
 * no LDT), the caller decides the exception; <0: memory failure, *r set.
 */
static int load_desc(struct pvm_cpu *c, const struct pvm_mem_ops *mem, uint16_t sel, uint64_t *d,
		     struct pvm_result *r)
{
	uint64_t base, limit;

	if (sel & 4) {
		if (c->sregs.ldt.unusable || !c->sregs.ldt.present)
			return 1;
		base = c->sregs.ldt.base;
		limit = c->sregs.ldt.limit;
	} else {
		base = c->sregs.gdt.base;
		limit = c->sregs.gdt.limit;
	}
	if ((uint64_t)(sel & ~7u) + 7 > limit)
		return 1;
	return pvm_vmread(c, mem, base + (sel & ~7u), d, 8, true, r) ? -1 : 0;
}

/* IRET/IRETQ flags a return may change (SDM Vol 2A IRET, protected-mode pseudo-code). */
#define IRET_ALWAYS (X86_RF_ARITH | (1ULL << 8) /* TF */ | (1ULL << 10) /* DF */ | X86_RF_NT | \
		     X86_RF_RF | X86_RF_AC | X86_RF_ID)
#define RFLAGS_DEFINED 0x3f7fd7ULL

/* Null a data segment register the new, less privileged CPL may not use (SDM Vol 2A IRET, RETURN-TO-OUTER-PRIVILEGE-LEVEL). */
static void drop_segment(struct kvm_segment *s, unsigned cpl)
{
	bool conforming_code = s->s && (s->type & TYPE_CODE) && (s->type & TYPE_CONFORM);

	if (s->unusable || !s->s || conforming_code || s->dpl >= cpl)
		return;
	s->selector = 0;
	s->unusable = 1;
	s->present = 0;
}

void pvm_emul_iretq(struct pvm_cpu *c, const struct pvm_insn *in, const struct pvm_mem_ops *mem,
		    struct pvm_result *r)
{
	unsigned cpl = pvm_cpl(&c->sregs), rpl;
	uint64_t frame[5], csd, ssd = 0, mask;
	uint16_t cs_sel, ss_sel;
	struct kvm_segment cs, ss;
	int e;

	(void)in;
	/* IA-32e mode: IRET with NT=1 would be a task return, which is #GP(0). */
	if (c->regs.rflags & X86_RF_NT) {
		pvm_res_exception(r, X86_VEC_GP, true, 0);
		return;
	}
	/* 64-bit operand size pops all five: RIP, CS, RFLAGS, RSP, SS. */
	if (pvm_vmread(c, mem, c->regs.rsp, frame, sizeof(frame), false, r)) {
		if (r->action == PVM_ACT_EXCEPTION && r->vector == X86_VEC_GP)
			r->vector = X86_VEC_SS;  /* a bad stack address is #SS(0) */
		return;
	}
	cs_sel = (uint16_t)frame[1];
	ss_sel = (uint16_t)frame[4];
	rpl = cs_sel & 3;
	if ((cs_sel & ~3u) == 0) {
		pvm_res_exception(r, X86_VEC_GP, true, 0);
		return;
	}
	if (rpl < cpl) {
		pvm_res_exception(r, X86_VEC_GP, true, cs_sel & 0xfffc);
		return;
	}
	e = load_desc(c, mem, cs_sel, &csd, r);
	if (e < 0)
		return;
	if (e > 0 || !DESC_S(csd) || !(DESC_TYPE(csd) & TYPE_CODE)) {
		pvm_res_exception(r, X86_VEC_GP, true, cs_sel & 0xfffc);
		return;
	}
	if ((DESC_TYPE(csd) & TYPE_CONFORM) ? DESC_DPL(csd) > rpl : DESC_DPL(csd) != rpl) {
		pvm_res_exception(r, X86_VEC_GP, true, cs_sel & 0xfffc);
		return;
	}
	if (!DESC_P(csd)) {
		pvm_res_exception(r, X86_VEC_NP, true, cs_sel & 0xfffc);
		return;
	}
	desc_to_seg(csd, cs_sel, &cs);
	if (!cs.l || cs.db) {
		pvm_res_unhandled(r, "iretq to compatibility mode");
		return;
	}
	if (!pvm_canonical(frame[0], (c->sregs.cr4 & X86_CR4_LA57) ? 5 : 4)) {
		pvm_res_exception(r, X86_VEC_GP, true, 0);
		return;
	}
	if ((ss_sel & ~3u) == 0) {
		/* A null SS is allowed only when returning to 64-bit mode at CPL < 3. */
		if (rpl == 3) {
			pvm_res_exception(r, X86_VEC_GP, true, 0);
			return;
		}
		memset(&ss, 0, sizeof(ss));
		ss.selector = ss_sel;
		ss.unusable = 1;
		ss.dpl = rpl;
	} else {
		if ((ss_sel & 3) != rpl) {
			pvm_res_exception(r, X86_VEC_GP, true, ss_sel & 0xfffc);
			return;
		}
		e = load_desc(c, mem, ss_sel, &ssd, r);
		if (e < 0)
			return;
		if (e > 0 || !DESC_S(ssd) || (DESC_TYPE(ssd) & TYPE_CODE) || !(DESC_TYPE(ssd) & TYPE_WRITE) ||
		    DESC_DPL(ssd) != rpl) {
			pvm_res_exception(r, X86_VEC_GP, true, ss_sel & 0xfffc);
			return;
		}
		if (!DESC_P(ssd)) {
			pvm_res_exception(r, X86_VEC_SS, true, ss_sel & 0xfffc);
			return;
		}
		desc_to_seg(ssd, ss_sel, &ss);
	}
	/* Which flags the return may change depends on the old CPL and IOPL. */
	mask = IRET_ALWAYS;
	if (cpl <= ((c->regs.rflags & X86_RF_IOPL) >> 12))
		mask |= X86_RF_IF;
	if (cpl == 0)
		mask |= X86_RF_IOPL | X86_RF_VIF | X86_RF_VIP;
	c->regs.rflags = ((c->regs.rflags & ~mask) | (frame[2] & mask)) & RFLAGS_DEFINED & ~X86_RF_VM;
	c->regs.rflags |= X86_RF_FIXED;
	c->regs.rip = frame[0];
	c->regs.rsp = frame[3];
	c->sregs.cs = cs;
	c->sregs.ss = ss;
	if (rpl > cpl) {
		drop_segment(&c->sregs.ds, rpl);
		drop_segment(&c->sregs.es, rpl);
		drop_segment(&c->sregs.fs, rpl);
		drop_segment(&c->sregs.gs, rpl);
	}
	r->dirty |= PVM_DIRTY_REGS | PVM_DIRTY_SREGS;
}

/* SYSRET with REX.W (SDM Vol 2B SYSRET): back to 64-bit user mode with flat CS/SS derived from STAR[63:48]. */
void pvm_emul_sysretq(struct pvm_cpu *c, struct pvm_result *r)
{
	uint16_t base = (uint16_t)(c->msr_star >> 48);

	if (!c->sregs.cs.l || !(c->sregs.efer & X86_EFER_LMA) || !(c->sregs.efer & X86_EFER_SCE)) {
		pvm_res_exception(r, X86_VEC_UD, false, 0);
		return;
	}
	if (pvm_cpl(&c->sregs) != 0) {
		pvm_res_exception(r, X86_VEC_GP, true, 0);
		return;
	}
	/* Intel faults on a non-canonical RCX while still at CPL0 (AMD would not); the SDM's behaviour is the safe one. */
	if (!pvm_canonical(c->regs.rcx, (c->sregs.cr4 & X86_CR4_LA57) ? 5 : 4)) {
		pvm_res_exception(r, X86_VEC_GP, true, 0);
		return;
	}
	c->regs.rip = c->regs.rcx;
	c->regs.rflags = (c->regs.r11 & 0x3c7fd7ULL) | X86_RF_FIXED;
	pvm_flat_code64(&c->sregs.cs, (uint16_t)((base + 16) | 3), 3);
	pvm_flat_data(&c->sregs.ss, (uint16_t)((base + 8) | 3), 3);
	r->dirty |= PVM_DIRTY_REGS | PVM_DIRTY_SREGS;
}

/* SWAPGS (SDM Vol 2B): #UD outside 64-bit mode, #GP(0) at CPL > 0; exchanges GS.base and IA32_KERNEL_GS_BASE. */
void pvm_emul_swapgs(struct pvm_cpu *c, const struct pvm_insn *in, struct pvm_result *r)
{
	uint64_t t;

	if (!c->sregs.cs.l) {
		pvm_res_exception(r, X86_VEC_UD, false, 0);
		return;
	}
	if (pvm_cpl(&c->sregs) != 0) {
		pvm_res_exception(r, X86_VEC_GP, true, 0);
		return;
	}
	t = c->sregs.gs.base;
	c->sregs.gs.base = c->msr_kernel_gs_base;
	c->msr_kernel_gs_base = t;
	c->regs.rip += in->len;
	r->dirty |= PVM_DIRTY_REGS | PVM_DIRTY_SREGS | PVM_DIRTY_KGS;
}

/*
 * VERR/VERW (SDM Vol 2B): ZF=1 if the selector names a code/data segment
 * readable (VERR) or writable (VERW) at max(CPL, RPL); no exception for a bad
 * selector. Linux runs VERW on every return to user mode as its MDS
 * mitigation on affected Intel CPUs; the buffer clearing that is the point
 * of it there is a micro-architectural side effect kiln cannot reproduce.
 */
void pvm_emul_verx(struct pvm_cpu *c, const struct pvm_insn *in, const struct pvm_mem_ops *mem,
		   struct pvm_result *r)
{
	unsigned cpl = pvm_cpl(&c->sregs), type;
	uint16_t sel;
	uint64_t d;
	bool ok = false;
	int e;

	if (in->modrm.mod == 3) {
		sel = (uint16_t)*pvm_gpr(&c->regs, in->modrm.rm);
	} else if (pvm_vmread(c, mem, pvm_ea(c, in), &sel, 2, false, r)) {
		return;
	}
	if ((sel & ~3u) != 0) {
		e = load_desc(c, mem, sel, &d, r);
		if (e < 0)
			return;
		type = DESC_TYPE(d);
		if (e == 0 && DESC_S(d)) {
			bool code = type & TYPE_CODE;
			bool conforming = code && (type & TYPE_CONFORM);
			bool priv = conforming || (DESC_DPL(d) >= cpl && DESC_DPL(d) >= (sel & 3u));

			if (in->kind == PVM_INSN_VERW)
				ok = !code && (type & TYPE_WRITE) && priv;
			else
				ok = (!code || (type & TYPE_READ)) && priv;
		}
	}
	if (ok)
		c->regs.rflags |= X86_RF_ZF;
	else
		c->regs.rflags &= ~X86_RF_ZF;
	c->regs.rip += in->len;
	r->dirty |= PVM_DIRTY_REGS;
}
