/* Unit tests of the compat emulator: each instruction's architectural result on a CPU over synthetic page tables. */
#include "pvm_test.h"
#include <errno.h>
#include <string.h>

#define RW (X86_PTE_P | X86_PTE_RW)
#define URW (X86_PTE_P | X86_PTE_RW | X86_PTE_US)

/* ---- Emulator ---- */

struct emu {
	struct pt p;
	struct pvm_cpu c;
	struct pvm_vmem vm;
	struct pvm_mem_ops ops;
	struct pvm_result r;
};

/* Identity-map the first 2 MiB (GDT, stacks, data) supervisor-only and set up a CPL0 CPU. */
static void emu_init(struct emu *e)
{
	pt_init(&e->p);
	pt_map(&e->p, 0, 0, 2, RW, URW);
	cpu_init64(&e->c, &e->p);
	gdt_init(&e->p, &e->c);
	vmem_ops(&e->vm, &e->ops, &e->p, &e->c);
	e->c.regs.rip = 0xffffffff81000000ULL;
}

static void emu_run(struct emu *e, const uint8_t *b, size_t n)
{
	struct pvm_insn in;

	assert_int_equal(pvm_decode(b, n, &in), 0);
	pvm_emulate(&e->c, &in, &e->ops, &e->r);
}
#define RUN(e, ...)                                             \
	do {                                                    \
		static const uint8_t b_[] = { __VA_ARGS__ };    \
		emu_run((e), b_, sizeof(b_));                   \
	} while (0)

static void expect_exc(const struct emu *e, uint8_t vec)
{
	assert_int_equal(e->r.action, PVM_ACT_EXCEPTION);
	assert_int_equal(e->r.vector, vec);
}

static void test_emul_int3_ud(void **state)
{
	struct emu e;
	uint64_t rip;

	(void)state;
	emu_init(&e);
	rip = e.c.regs.rip;
	RUN(&e, 0xcc, 0x90);
	expect_exc(&e, X86_VEC_BP);
	assert_false(e.r.has_error);
	assert_int_equal(e.c.regs.rip, rip + 1);         /* trap: after the int3 */
	assert_true(e.r.dirty & PVM_DIRTY_REGS);
	rip = e.c.regs.rip;
	RUN(&e, 0x0f, 0x0b);
	expect_exc(&e, X86_VEC_UD);
	assert_int_equal(e.c.regs.rip, rip);             /* fault: unchanged */
	assert_int_equal(e.r.dirty, 0);
	RUN(&e, 0xf0, 0xcc);                             /* LOCK int3 */
	expect_exc(&e, X86_VEC_UD);
	assert_int_equal(e.c.regs.rip, rip);
	RUN(&e, 0xf0, 0x48, 0x0f, 0xc7, 0x0e);           /* cmpxchg16b: CX16 hidden */
	expect_exc(&e, X86_VEC_UD);
	pt_fini(&e.p);
}

static void test_emul_fwait(void **state)
{
	struct emu e;
	uint64_t rip;

	(void)state;
	emu_init(&e);
	rip = e.c.regs.rip;
	RUN(&e, 0x9b);
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_int_equal(e.c.regs.rip, rip + 1);
	assert_int_equal(e.r.dirty, PVM_DIRTY_REGS);
	/* CR0.TS with CR0.MP: #NM, RIP stays. */
	e.c.sregs.cr0 |= X86_CR0_TS;
	RUN(&e, 0x9b);
	expect_exc(&e, X86_VEC_NM);
	assert_int_equal(e.c.regs.rip, rip + 1);
	e.c.sregs.cr0 &= ~X86_CR0_TS;
	/* A pending unmasked x87 exception (FSW.ES) with CR0.NE: #MF. */
	e.c.fpu.fsw = 0x81;
	RUN(&e, 0x9b);
	expect_exc(&e, X86_VEC_MF);
	e.c.sregs.cr0 &= ~X86_CR0_NE;
	RUN(&e, 0x9b);
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_int_equal(e.c.regs.rip, rip + 2);
	pt_fini(&e.p);
}

static void test_emul_clac_stac(void **state)
{
	struct emu e;
	uint64_t rip;

	(void)state;
	emu_init(&e);
	rip = e.c.regs.rip;
	RUN(&e, 0x0f, 0x01, 0xcb);
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_true(e.c.regs.rflags & X86_RF_AC);
	assert_int_equal(e.c.regs.rip, rip + 3);
	RUN(&e, 0x0f, 0x01, 0xca);
	assert_false(e.c.regs.rflags & X86_RF_AC);
	assert_int_equal(e.c.regs.rip, rip + 6);
	cpu_user(&e.c);
	RUN(&e, 0x0f, 0x01, 0xcb);
	expect_exc(&e, X86_VEC_UD);
	assert_false(e.c.regs.rflags & X86_RF_AC);
	pt_fini(&e.p);
}

static void test_emul_xgetbv_rdtscp(void **state)
{
	struct emu e;

	(void)state;
	emu_init(&e);
	e.c.xcr0 = 0x0000000200000007ULL;
	RUN(&e, 0x0f, 0x01, 0xd0);                       /* OSXSAVE clear: #UD */
	expect_exc(&e, X86_VEC_UD);
	e.c.sregs.cr4 |= X86_CR4_OSXSAVE;
	e.c.regs.rcx = 0xffffffff00000000ULL;            /* only ECX counts */
	RUN(&e, 0x0f, 0x01, 0xd0);
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_int_equal(e.c.regs.rax, 7);
	assert_int_equal(e.c.regs.rdx, 2);
	e.c.regs.rcx = 1;
	RUN(&e, 0x0f, 0x01, 0xd0);
	expect_exc(&e, X86_VEC_GP);
	assert_true(e.r.has_error);
	e.c.msr_tsc = 0x123456789abcdef0ULL;
	e.c.msr_tsc_aux = 0xffffffff00000005ULL;
	e.c.regs.rax = e.c.regs.rdx = e.c.regs.rcx = ~0ULL;
	RUN(&e, 0x0f, 0x01, 0xf9);
	assert_int_equal(e.c.regs.rax, 0x9abcdef0ULL);
	assert_int_equal(e.c.regs.rdx, 0x12345678ULL);
	assert_int_equal(e.c.regs.rcx, 5);
	cpu_user(&e.c);
	e.c.sregs.cr4 |= X86_CR4_TSD;
	RUN(&e, 0x0f, 0x01, 0xf9);
	expect_exc(&e, X86_VEC_GP);
	pt_fini(&e.p);
}

static void test_emul_popcnt(void **state)
{
	struct emu e;
	uint64_t rip, *mem;

	(void)state;
	emu_init(&e);
	rip = e.c.regs.rip;
	e.c.regs.rax = 0xf0f0f0f0f0f0f0f0ULL;
	e.c.regs.rflags = 0x2 | X86_RF_CF | X86_RF_ZF | (1ULL << 11);
	RUN(&e, 0xf3, 0x48, 0x0f, 0xb8, 0xc0);           /* popcnt rax, rax */
	assert_int_equal(e.c.regs.rax, 32);
	assert_int_equal(e.c.regs.rflags, 0x2);          /* arithmetic flags cleared, ZF clear */
	assert_int_equal(e.c.regs.rip, rip + 5);
	e.c.regs.r10 = 0xffffffff00000003ULL;
	e.c.regs.r9 = ~0ULL;
	RUN(&e, 0xf3, 0x45, 0x0f, 0xb8, 0xca);           /* popcnt r9d, r10d: 32-bit, zero-extends */
	assert_int_equal(e.c.regs.r9, 2);
	e.c.regs.rcx = 0x1111111111110000ULL;
	e.c.regs.rdx = 0;
	RUN(&e, 0x66, 0xf3, 0x0f, 0xb8, 0xca);           /* popcnt cx, dx: 16-bit keeps the rest */
	assert_int_equal(e.c.regs.rcx, 0x1111111111110000ULL);
	assert_true(e.c.regs.rflags & X86_RF_ZF);
	/* Memory operand [rsp+8]. */
	mem = gp(&e.p, 0x8008, 8);
	*mem = 0x8000000000000001ULL;
	e.c.regs.rsp = 0x8000;
	RUN(&e, 0xf3, 0x4c, 0x0f, 0xb8, 0x44, 0x24, 0x08);
	assert_int_equal(e.c.regs.r8, 2);
	/* Unmapped memory operand: #PF with CR2, nothing else changed. */
	rip = e.c.regs.rip;
	e.c.regs.rsp = 0x7f0000000000ULL;
	RUN(&e, 0xf3, 0x4c, 0x0f, 0xb8, 0x44, 0x24, 0x08);
	expect_exc(&e, X86_VEC_PF);
	assert_int_equal(e.c.sregs.cr2, 0x7f0000000008ULL);
	assert_true(e.r.dirty & PVM_DIRTY_SREGS);
	assert_int_equal(e.c.regs.rip, rip);
	assert_int_equal(e.c.regs.r8, 2);
	pt_fini(&e.p);
}

static void test_emul_mxcsr_fldcw(void **state)
{
	struct emu e;
	uint32_t *m;

	(void)state;
	emu_init(&e);
	m = gp(&e.p, 0x9000, 4);
	*m = 0x9fc0;
	e.c.regs.rax = 0x9000;
	RUN(&e, 0x0f, 0xae, 0x10);                       /* ldmxcsr [rax] */
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_int_equal(e.c.fpu.mxcsr, 0x9fc0);
	assert_true(e.r.dirty & PVM_DIRTY_FPU);
	*m = 0x10000;                                    /* reserved bit: #GP(0) */
	RUN(&e, 0x0f, 0xae, 0x10);
	expect_exc(&e, X86_VEC_GP);
	assert_int_equal(e.c.fpu.mxcsr, 0x9fc0);
	e.c.fpu.mxcsr = 0x1f80;
	e.c.regs.rbp = 0x9008;
	RUN(&e, 0x0f, 0xae, 0x5d, 0xf8);                 /* stmxcsr [rbp-8] */
	assert_int_equal(*m, 0x1f80);
	/* RIP-relative: relative to the next instruction. */
	e.c.regs.rip = 0x9100;
	memcpy(gp(&e.p, 0x9100 + 7 + 0x20, 4), &(uint32_t){ 0x1fa0 }, 4);  /* unaligned on purpose */
	RUN(&e, 0x0f, 0xae, 0x15, 0x20, 0x00, 0x00, 0x00);
	assert_int_equal(e.c.fpu.mxcsr, 0x1fa0);
	assert_int_equal(e.c.regs.rip, 0x9107);
	/* GS override adds GS.base. */
	e.c.sregs.gs.base = 0x9000;
	e.c.regs.rbp = 0x200;
	*(uint16_t *)gp(&e.p, 0x9200, 2) = 0x27f;
	RUN(&e, 0x65, 0xd9, 0x6d, 0x00);                 /* fldcw gs:[rbp] */
	assert_int_equal(e.c.fpu.fcw, 0x27f);
	/* CR0.TS: #NM; CR4.OSFXSR clear: #UD for ldmxcsr. */
	e.c.sregs.cr0 |= X86_CR0_TS;
	RUN(&e, 0xd9, 0x28);
	expect_exc(&e, X86_VEC_NM);
	RUN(&e, 0x0f, 0xae, 0x10);
	expect_exc(&e, X86_VEC_NM);
	e.c.sregs.cr0 &= ~X86_CR0_TS;
	e.c.sregs.cr4 &= ~X86_CR4_OSFXSR;
	RUN(&e, 0x0f, 0xae, 0x10);
	expect_exc(&e, X86_VEC_UD);
	pt_fini(&e.p);
}

static void test_emul_refused(void **state)
{
	struct emu e;

	(void)state;
	emu_init(&e);
	RUN(&e, 0x0f, 0xae, 0x20);                       /* xsave with OSXSAVE clear: #UD */
	expect_exc(&e, X86_VEC_UD);
	e.c.sregs.cr4 |= X86_CR4_OSXSAVE;
	RUN(&e, 0x0f, 0xae, 0x20);
	assert_int_equal(e.r.action, PVM_ACT_UNHANDLED);
	assert_non_null(strstr(e.r.reason, "noxsave"));
	RUN(&e, 0xcd, 0x80);
	assert_int_equal(e.r.action, PVM_ACT_UNHANDLED);
	assert_non_null(strstr(e.r.reason, "int n"));
	RUN(&e, 0x0f, 0x01, 0xc9);
	assert_int_equal(e.r.action, PVM_ACT_UNHANDLED);
	RUN(&e, 0x0f, 0x02, 0xc0);
	assert_int_equal(e.r.action, PVM_ACT_UNHANDLED);
	RUN(&e, 0xcf);                                   /* 32-bit iret */
	assert_int_equal(e.r.action, PVM_ACT_UNHANDLED);
	assert_int_equal(e.r.dirty, 0);
	pt_fini(&e.p);
}

static void test_emul_iretq(void **state)
{
	struct emu e;
	uint64_t *st;

	(void)state;
	emu_init(&e);
	/* To user mode: RIP, CS, RFLAGS, RSP, SS on the stack at RSP. */
	st = gp(&e.p, 0x7000, 40);
	st[0] = 0x401000;
	st[1] = 0x33;
	st[2] = 0x202 | X86_RF_IOPL | X86_RF_NT /* NT is popped */ | X86_RF_VM | (1ULL << 40);
	st[3] = 0x7ffffffde000ULL;
	st[4] = 0x2b;
	e.c.regs.rsp = 0x7000;
	e.c.regs.rflags = 0x2;
	RUN(&e, 0x48, 0xcf);
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_int_equal(e.r.dirty, PVM_DIRTY_REGS | PVM_DIRTY_SREGS);
	assert_int_equal(e.c.regs.rip, 0x401000);
	assert_int_equal(e.c.regs.rsp, 0x7ffffffde000ULL);
	/* At CPL0 IF and IOPL may change; VM and undefined bits never. */
	assert_int_equal(e.c.regs.rflags, 0x202 | X86_RF_IOPL | X86_RF_NT);
	assert_int_equal(e.c.sregs.cs.selector, 0x33);
	assert_int_equal(e.c.sregs.cs.dpl, 3);
	assert_true(e.c.sregs.cs.l);
	assert_int_equal(e.c.sregs.ss.selector, 0x2b);
	assert_int_equal(e.c.sregs.ss.dpl, 3);
	assert_int_equal(pvm_cpl(&e.c.sregs), 3);
	/* DS/ES held DPL0 data: nulled on the way out. */
	assert_int_equal(e.c.sregs.ds.selector, 0);
	assert_true(e.c.sregs.ds.unusable);
	pt_fini(&e.p);
}

static void test_emul_iretq_same_level_and_faults(void **state)
{
	struct emu e;
	uint64_t *st;

	(void)state;
	emu_init(&e);
	st = gp(&e.p, 0x7000, 40);
	st[0] = 0xffffffff81001234ULL;
	st[1] = 0x10;
	st[2] = 0x46;
	st[3] = 0x7100;
	st[4] = 0x18;
	e.c.regs.rsp = 0x7000;
	RUN(&e, 0x48, 0xcf);
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_int_equal(e.c.regs.rip, 0xffffffff81001234ULL);
	assert_int_equal(e.c.regs.rflags, 0x46);
	assert_int_equal(e.c.sregs.ss.selector, 0x18);
	assert_int_equal(e.c.sregs.ds.selector, 0x18);   /* same level: kept */
	/* NT set in the current RFLAGS: #GP(0). */
	e.c.regs.rsp = 0x7000;
	e.c.regs.rflags = 0x2 | X86_RF_NT;
	RUN(&e, 0x48, 0xcf);
	expect_exc(&e, X86_VEC_GP);
	e.c.regs.rflags = 0x2;
	/* Stack not mapped: #PF at RSP; non-canonical stack: #SS(0). */
	e.c.regs.rsp = 0x40000000;
	RUN(&e, 0x48, 0xcf);
	expect_exc(&e, X86_VEC_PF);
	assert_int_equal(e.c.sregs.cr2, 0x40000000);
	e.c.regs.rsp = 0x0000900000000000ULL;
	RUN(&e, 0x48, 0xcf);
	expect_exc(&e, X86_VEC_SS);
	/* Return CS beyond the GDT limit: #GP(selector). */
	e.c.regs.rsp = 0x7000;
	st[1] = 0x80;
	RUN(&e, 0x48, 0xcf);
	expect_exc(&e, X86_VEC_GP);
	assert_int_equal(e.r.error_code, 0x80);
	/* CS is a data segment: #GP(selector). */
	st[1] = 0x18;
	RUN(&e, 0x48, 0xcf);
	expect_exc(&e, X86_VEC_GP);
	assert_int_equal(e.r.error_code, 0x18);
	/* A null SS is fine for a return to CPL0, not to CPL3. */
	st[1] = 0x10;
	st[4] = 0;
	RUN(&e, 0x48, 0xcf);
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_true(e.c.sregs.ss.unusable);
	e.c.regs.rsp = 0x7000;
	st[0] = 0x401000;
	st[1] = 0x33;
	RUN(&e, 0x48, 0xcf);
	expect_exc(&e, X86_VEC_GP);
	assert_int_equal(e.r.error_code, 0);
	st[0] = 0xffffffff81001234ULL;
	st[1] = 0x10;
	st[4] = 0x18;
	/* From CPL3 (whose stack must be user-accessible), a return to CPL0: #GP(selector). */
	*pt_entry(&e.p, 0, 2) |= X86_PTE_US;
	st[1] = 0x10;
	cpu_user(&e.c);
	RUN(&e, 0x48, 0xcf);
	expect_exc(&e, X86_VEC_GP);
	assert_int_equal(e.r.error_code, 0x10);
	st[0] = 0x401000;
	st[1] = 0x33;
	st[2] = 0x002 | X86_RF_IOPL | X86_RF_CF;
	st[4] = 0x2b;
	e.c.regs.rflags = 0x202;
	/* A CPL3 iretq (IOPL 0) can change neither IOPL nor IF; CF it can. */
	RUN(&e, 0x48, 0xcf);
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_int_equal(e.c.regs.rflags, 0x202 | X86_RF_CF);
	pt_fini(&e.p);
}

static void test_emul_swapgs_sysretq(void **state)
{
	struct emu e;
	uint64_t rip;

	(void)state;
	emu_init(&e);
	rip = e.c.regs.rip;
	e.c.sregs.gs.base = 0x1111;
	e.c.msr_kernel_gs_base = 0xffff888000002222ULL;
	RUN(&e, 0x0f, 0x01, 0xf8);
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_int_equal(e.c.sregs.gs.base, 0xffff888000002222ULL);
	assert_int_equal(e.c.msr_kernel_gs_base, 0x1111);
	assert_int_equal(e.c.regs.rip, rip + 3);
	assert_int_equal(e.r.dirty, PVM_DIRTY_REGS | PVM_DIRTY_SREGS | PVM_DIRTY_KGS);
	/* sysretq: Linux's STAR (kernel 0x10, user base 0x23). */
	e.c.msr_star = 0x0023001000000000ULL;
	e.c.regs.rcx = 0x401234;
	e.c.regs.r11 = 0x246 | X86_RF_RF | X86_RF_VM | (1ULL << 35);
	RUN(&e, 0x48, 0x0f, 0x07);
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_int_equal(e.c.regs.rip, 0x401234);
	assert_int_equal(e.c.regs.rflags, 0x246);       /* (R11 & 3C7FD7H) | 2: RF, VM and high bits go */
	assert_int_equal(e.c.sregs.cs.selector, 0x33);
	assert_int_equal(e.c.sregs.cs.dpl, 3);
	assert_true(e.c.sregs.cs.l);
	assert_int_equal(e.c.sregs.ss.selector, 0x2b);
	assert_int_equal(e.c.sregs.ss.dpl, 3);
	/* Now at CPL3: both are #GP(0). */
	RUN(&e, 0x0f, 0x01, 0xf8);
	expect_exc(&e, X86_VEC_GP);
	RUN(&e, 0x48, 0x0f, 0x07);
	expect_exc(&e, X86_VEC_GP);
	/* CPL0 again: non-canonical RCX #GP(0), EFER.SCE clear #UD. */
	pvm_flat_code64(&e.c.sregs.cs, 0x10, 0);
	e.c.regs.rcx = 0x0000800000000000ULL;
	RUN(&e, 0x48, 0x0f, 0x07);
	expect_exc(&e, X86_VEC_GP);
	e.c.sregs.efer &= ~X86_EFER_SCE;
	RUN(&e, 0x48, 0x0f, 0x07);
	expect_exc(&e, X86_VEC_UD);
	pt_fini(&e.p);
}

static void test_emul_verw(void **state)
{
	struct emu e;
	uint64_t rip;

	(void)state;
	emu_init(&e);
	rip = e.c.regs.rip;
	e.c.regs.rax = 0x18;
	RUN(&e, 0x0f, 0x00, 0xe8);                       /* verw ax: kernel data, writable */
	assert_true(e.c.regs.rflags & X86_RF_ZF);
	assert_int_equal(e.c.regs.rip, rip + 3);
	e.c.regs.rax = 0x10;
	RUN(&e, 0x0f, 0x00, 0xe8);                       /* code segment: not writable */
	assert_false(e.c.regs.rflags & X86_RF_ZF);
	RUN(&e, 0x0f, 0x00, 0xe0);                       /* verr: readable code */
	assert_true(e.c.regs.rflags & X86_RF_ZF);
	e.c.regs.rax = 0;
	RUN(&e, 0x0f, 0x00, 0xe8);                       /* null selector */
	assert_false(e.c.regs.rflags & X86_RF_ZF);
	e.c.regs.rax = 0x1f8;
	RUN(&e, 0x0f, 0x00, 0xe8);                       /* beyond the GDT limit: ZF=0, no fault */
	assert_int_equal(e.r.action, PVM_ACT_RESUME);
	assert_false(e.c.regs.rflags & X86_RF_ZF);
	/* The whole 8-byte descriptor must lie within the limit. */
	e.c.regs.rax = 0x33;
	RUN(&e, 0x0f, 0x00, 0xe0);                       /* verr: user code is readable */
	assert_true(e.c.regs.rflags & X86_RF_ZF);
	e.c.sregs.gdt.limit = 0x33;
	RUN(&e, 0x0f, 0x00, 0xe0);
	assert_false(e.c.regs.rflags & X86_RF_ZF);
	e.c.sregs.gdt.limit = 8 * 8 - 1;
	/* Memory operand, as Linux's MDS clearing uses it: verw [rip+disp]. */
	e.c.regs.rip = 0x9000;
	memcpy(gp(&e.p, 0x9007 + 0x40, 2), &(uint16_t){ 0x18 }, 2);
	RUN(&e, 0x0f, 0x00, 0x2d, 0x40, 0x00, 0x00, 0x00);
	assert_true(e.c.regs.rflags & X86_RF_ZF);
	/* At CPL3, a DPL0 data segment fails; the user data segment passes. */
	cpu_user(&e.c);
	*pt_entry(&e.p, 0, 2) |= X86_PTE_US;
	e.c.regs.rax = 0x18;
	RUN(&e, 0x0f, 0x00, 0xe8);
	assert_false(e.c.regs.rflags & X86_RF_ZF);
	e.c.regs.rax = 0x2b;
	RUN(&e, 0x0f, 0x00, 0xe8);
	assert_true(e.c.regs.rflags & X86_RF_ZF);
	pt_fini(&e.p);
}

const struct CMUnitTest pvm_emul_tests[] = {
	cmocka_unit_test(test_emul_int3_ud),
	cmocka_unit_test(test_emul_fwait),
	cmocka_unit_test(test_emul_clac_stac),
	cmocka_unit_test(test_emul_xgetbv_rdtscp),
	cmocka_unit_test(test_emul_popcnt),
	cmocka_unit_test(test_emul_mxcsr_fldcw),
	cmocka_unit_test(test_emul_refused),
	cmocka_unit_test(test_emul_iretq),
	cmocka_unit_test(test_emul_iretq_same_level_and_faults),
	cmocka_unit_test(test_emul_swapgs_sysretq),
	cmocka_unit_test(test_emul_verw),
};
const size_t pvm_emul_ntests = ARRAY_SIZE(pvm_emul_tests);
