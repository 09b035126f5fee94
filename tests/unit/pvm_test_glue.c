/* Unit tests of the compat KVM glue against a fake KVM: exits in, vCPU state and injections out, the syscall trap. */
#include "pvm_test.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/vcpu.h"
#include "core/vm.h"

#define RW (X86_PTE_P | X86_PTE_RW)
#define URW (X86_PTE_P | X86_PTE_RW | X86_PTE_US)
#define KTEXT 0xffffffff81000000ULL
#define KTEXT_PA 0x400000ULL
#define VSYS_PA 0x5000ULL
#define GUEST_LSTAR 0xffffffff81c00080ULL
#define LINUX_STAR 0x0023001000000000ULL
#define LINUX_FMASK 0x257fd5ULL

/* ---- A fake KVM: one vCPU's state and the VM-fd ioctls kiln issues ---- */

struct fake_kvm {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_vcpu_events ev;
	uint64_t xcr0;
	struct { uint32_t idx; uint64_t val; } msr[8];
	unsigned nmsr;
	unsigned set_regs, set_sregs, set_msrs, set_events, set_fpu;
	unsigned long fail_req;
	/* VM fd */
	int cap_user_msr, cap_msr_filter;
	bool filter_set, cap_enabled;
	uint64_t cap_arg;
	struct kvm_msr_filter filter;
	uint8_t filter_bitmap;
};

static uint64_t *fake_msr(struct fake_kvm *k, uint32_t idx)
{
	for (unsigned i = 0; i < k->nmsr; i++)
		if (k->msr[i].idx == idx)
			return &k->msr[i].val;
	if (k->nmsr == ARRAY_SIZE(k->msr))
		return NULL;
	k->msr[k->nmsr].idx = idx;
	k->msr[k->nmsr].val = 0;
	return &k->msr[k->nmsr++].val;
}

static int fake_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct fake_kvm *k = ctx;
	struct kvm_msrs *m = arg;

	(void)fd;
	if (req == k->fail_req)
		return -EIO;
	switch (req) {
	case KVM_GET_REGS: memcpy(arg, &k->regs, sizeof(k->regs)); return 0;
	case KVM_SET_REGS: memcpy(&k->regs, arg, sizeof(k->regs)); k->set_regs++; return 0;
	case KVM_GET_SREGS: memcpy(arg, &k->sregs, sizeof(k->sregs)); return 0;
	case KVM_SET_SREGS: memcpy(&k->sregs, arg, sizeof(k->sregs)); k->set_sregs++; return 0;
	case KVM_GET_FPU: memcpy(arg, &k->fpu, sizeof(k->fpu)); return 0;
	case KVM_SET_FPU: memcpy(&k->fpu, arg, sizeof(k->fpu)); k->set_fpu++; return 0;
	case KVM_GET_VCPU_EVENTS: memcpy(arg, &k->ev, sizeof(k->ev)); return 0;
	case KVM_SET_VCPU_EVENTS: memcpy(&k->ev, arg, sizeof(k->ev)); k->set_events++; return 0;
	case KVM_GET_XCRS: {
		struct kvm_xcrs *x = arg;
		x->nr_xcrs = 1;
		x->xcrs[0].xcr = 0;
		x->xcrs[0].value = k->xcr0;
		return 0;
	}
	case KVM_GET_MSRS:
		for (unsigned i = 0; i < m->nmsrs; i++) {
			uint64_t *v = fake_msr(k, m->entries[i].index);
			if (!v)
				return (int)i;
			m->entries[i].data = *v;
		}
		return (int)m->nmsrs;
	case KVM_SET_MSRS:
		for (unsigned i = 0; i < m->nmsrs; i++)
			*fake_msr(k, m->entries[i].index) = m->entries[i].data;
		k->set_msrs++;
		return (int)m->nmsrs;
	case KVM_CHECK_EXTENSION:
		if ((uintptr_t)arg == KVM_CAP_X86_USER_SPACE_MSR)
			return k->cap_user_msr;
		if ((uintptr_t)arg == KVM_CAP_X86_MSR_FILTER)
			return k->cap_msr_filter;
		return 0;
	case KVM_ENABLE_CAP: {
		struct kvm_enable_cap *cap = arg;
		if (cap->cap != KVM_CAP_X86_USER_SPACE_MSR)
			return -EINVAL;
		k->cap_enabled = true;
		k->cap_arg = cap->args[0];
		return 0;
	}
	case KVM_X86_SET_MSR_FILTER:
		memcpy(&k->filter, arg, sizeof(k->filter));
		k->filter_bitmap = k->filter.ranges[0].bitmap ? *k->filter.ranges[0].bitmap : 0xff;
		k->filter.ranges[0].bitmap = NULL;  /* the caller's stack: KVM copies it, so do we */
		k->filter_set = true;
		return 0;
	default:
		return -ENOTTY;
	}
}

/* ---- Fixture: a VM with 2 vCPUs on Linux-like page tables ---- */

struct glue {
	struct pt p;
	struct vm vm;
	struct vcpu v[2];
	struct kvm_run *run[2];
	struct fake_kvm k;
	struct pvm_compat *c;
};

static void glue_init(struct glue *g, bool vsyscall, bool filter)
{
	struct pvm_cpu cpu;

	memset(g, 0, sizeof(*g));
	tlog_reset();
	pt_init(&g->p);
	/* vsyscall=emulate: user bits on the whole path, the page itself user, read-only, NX. */
	if (vsyscall)
		pt_map(&g->p, PVM_VSYSCALL_PAGE, VSYS_PA, 1, X86_PTE_P | X86_PTE_US | X86_PTE_NX, URW);
	pt_map(&g->p, KTEXT, KTEXT_PA, 2, RW, RW);
	pt_map(&g->p, 0, 0, 2, RW, RW);
	g->vm.ncpus = 2;
	g->vm.vm_fd = -1;
	g->vm.mem = g->p.mem;  /* shared view; pt_fini frees it */
	for (unsigned i = 0; i < 2; i++) {
		g->run[i] = calloc(1, sizeof(struct kvm_run));
		assert_non_null(g->run[i]);
		g->v[i].vm = &g->vm;
		g->v[i].id = i;
		g->v[i].fd = -1;
		g->v[i].run = g->run[i];
	}
	cpu_init64(&cpu, &g->p);
	gdt_init(&g->p, &cpu);
	g->k.regs = cpu.regs;
	g->k.sregs = cpu.sregs;
	g->k.regs.rip = KTEXT;
	g->k.fpu.mxcsr = 0x1f80;
	*fake_msr(&g->k, MSR_STAR) = LINUX_STAR;
	*fake_msr(&g->k, MSR_SYSCALL_MASK) = LINUX_FMASK;
	*fake_msr(&g->k, MSR_LSTAR) = 0;
	g->k.cap_user_msr = filter ? 7 : 0;
	g->k.cap_msr_filter = filter ? 1 : 0;
	assert_int_equal(pvm_compat_create(&g->vm, &g->c), 0);
	pvm_compat_set_ioctl(g->c, fake_ioctl, &g->k);
	assert_int_equal(pvm_vm_setup(g->c), 0);
}

static void glue_fini(struct glue *g)
{
	pvm_compat_destroy(g->c);
	for (unsigned i = 0; i < 2; i++)
		free(g->run[i]);
	pt_fini(&g->p);
}

/* An emulation-failure exit; n == 0 means KVM passed no instruction bytes. */
static void emul_exit(struct glue *g, unsigned vcpu, const uint8_t *b, size_t n)
{
	struct kvm_run *r = g->run[vcpu];

	memset(r, 0, sizeof(*r));
	r->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	r->emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
	r->emulation_failure.ndata = n ? 3 : 1;
	if (n) {
		r->emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
		r->emulation_failure.insn_size = (uint8_t)n;
		memset(r->emulation_failure.insn_bytes, 0x90, sizeof(r->emulation_failure.insn_bytes));
		memcpy(r->emulation_failure.insn_bytes, b, n);
	}
}
#define EXIT(g, ...)                                                \
	do {                                                        \
		static const uint8_t b_[] = { __VA_ARGS__ };        \
		emul_exit((g), 0, b_, sizeof(b_));                  \
	} while (0)

static void msr_exit(struct glue *g, unsigned vcpu, uint32_t reason, uint32_t idx, uint64_t data)
{
	struct kvm_run *r = g->run[vcpu];

	memset(r, 0, sizeof(*r));
	r->exit_reason = reason;
	r->msr.reason = KVM_MSR_EXIT_REASON_FILTER;
	r->msr.index = idx;
	r->msr.data = data;
	r->msr.error = 0xee;  /* must be overwritten */
}

static uint64_t vsyscall_pte(struct glue *g)
{
	return *pt_entry(&g->p, PVM_VSYSCALL_PAGE, 1);
}

/* The vCPU state right after a user syscall on kvm_pvm (RCX, R11 written; CPL still 3). */
static void user_syscall_state(struct glue *g, uint64_t rflags, uint64_t r11)
{
	pvm_flat_code64(&g->k.sregs.cs, 0x33, 3);
	pvm_flat_data(&g->k.sregs.ss, 0x2b, 3);
	g->k.regs.rip = PVM_TRAP_LSTAR;
	g->k.regs.rcx = 0x401002;
	g->k.regs.r11 = r11;
	g->k.regs.rflags = rflags;
	g->k.regs.rax = 39;  /* getpid */
}

/* ---- Tests ---- */

static void test_glue_create(void **state)
{
	struct vm vm;
	struct pvm_compat *c = (void *)1;
	uint8_t page[4096];

	(void)state;
	memset(&vm, 0, sizeof(vm));
	assert_int_equal(pvm_compat_create(&vm, &c), -EINVAL);   /* no vCPUs */
	assert_null(c);
	vm.ncpus = 1;
	/* RAM over the trap page would defeat the trap. */
	vm.mem.nregions = 1;
	vm.mem.regions[0] = (struct mem_region){ .gpa = PVM_TRAP_GPA, .size = sizeof(page), .host = page };
	assert_int_equal(pvm_compat_create(&vm, &c), -EINVAL);
	vm.mem.nregions = 0;
	assert_int_equal(pvm_compat_create(&vm, &c), 0);
	assert_non_null(c);
	assert_int_equal(c->nvcpus, 1);
	assert_int_equal(pvm_load_symbols(c, NULL), -EINVAL);
	pvm_compat_destroy(c);
	pvm_compat_destroy(NULL);
}

static void test_glue_vm_setup(void **state)
{
	struct glue g;

	(void)state;
	glue_init(&g, true, true);
	assert_true(g.c->msr_filter);
	assert_true(g.k.cap_enabled);
	assert_int_equal(g.k.cap_arg, KVM_MSR_EXIT_REASON_FILTER);
	assert_true(g.k.filter_set);
	assert_int_equal(g.k.filter.flags, KVM_MSR_FILTER_DEFAULT_ALLOW);
	assert_int_equal(g.k.filter.ranges[0].base, MSR_LSTAR);
	assert_int_equal(g.k.filter.ranges[0].nmsrs, 1);
	assert_int_equal(g.k.filter.ranges[0].flags, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE);
	assert_int_equal(g.k.filter_bitmap & 1, 0);   /* denied: exits to kiln */
	assert_int_equal(g.k.filter.ranges[1].nmsrs, 0);
	glue_fini(&g);
	/* No capability: fall back to polling, not an error. */
	glue_init(&g, true, false);
	assert_false(g.c->msr_filter);
	assert_false(g.k.filter_set);
	assert_int_equal(tlog_count(LOG_ERROR), 0);
	glue_fini(&g);
	/* The filter ioctl fails: same. */
	glue_init(&g, true, true);
	pvm_compat_destroy(g.c);
	g.k.filter_set = false;
	g.k.fail_req = KVM_X86_SET_MSR_FILTER;
	assert_int_equal(pvm_compat_create(&g.vm, &g.c), 0);
	pvm_compat_set_ioctl(g.c, fake_ioctl, &g.k);
	assert_int_equal(pvm_vm_setup(g.c), 0);
	assert_false(g.c->msr_filter);
	assert_int_equal(pvm_vm_setup(NULL), -EINVAL);
	glue_fini(&g);
}

static void test_glue_int3_ud2(void **state)
{
	struct glue g;

	(void)state;
	glue_init(&g, true, true);
	/* The alternatives self-test's bytes (pvm-probe/r8.loader.log). */
	EXIT(&g, 0xcc, 0x90, 0x90, 0x90, 0x90, 0x83, 0x7c, 0x24, 0x04, 0x01, 0x74, 0x02);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.regs.rip, KTEXT + 1);
	assert_int_equal(g.k.ev.exception.injected, 1);
	assert_int_equal(g.k.ev.exception.nr, X86_VEC_BP);
	assert_int_equal(g.k.ev.exception.has_error_code, 0);
	assert_int_equal(g.v[0].compat.injected_bp, 1);
	assert_int_equal(g.k.set_sregs, 0);
	/* ud2: #UD at the instruction; registers untouched. */
	g.k.ev.exception.injected = 0;
	g.k.set_regs = 0;
	EXIT(&g, 0x0f, 0x0b);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.regs.rip, KTEXT + 1);
	assert_int_equal(g.k.set_regs, 0);
	assert_int_equal(g.k.ev.exception.nr, X86_VEC_UD);
	assert_int_equal(g.v[0].compat.injected_ud, 1);
	assert_int_equal(tlog_count(LOG_ERROR), 0);
	glue_fini(&g);
}

static void test_glue_bytes_from_memory(void **state)
{
	uint8_t *text;
	struct glue g;

	(void)state;
	glue_init(&g, true, true);
	text = gp(&g.p, KTEXT_PA, 16);
	/* fwait, with no bytes in the exit: read from guest memory through the page tables. */
	memcpy(text, "\x9b\x90", 2);
	emul_exit(&g, 0, NULL, 0);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.regs.rip, KTEXT + 1);
	assert_int_equal(g.v[0].compat.emulated, 1);
	assert_int_equal(g.k.set_events, 0);
	/* KVM stopped fetching at "0f 01": the rest comes from memory (stac). */
	memcpy(text + 1, "\x0f\x01\xcb", 3);
	EXIT(&g, 0x0f, 0x01);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.regs.rip, KTEXT + 4);
	assert_true(g.k.regs.rflags & X86_RF_AC);
	/* Exit bytes win over memory when they decode (memory says stac, KVM saw clac). */
	memcpy(text + 4, "\x0f\x01\xcb", 3);
	EXIT(&g, 0x0f, 0x01, 0xca);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_false(g.k.regs.rflags & X86_RF_AC);
	assert_int_equal(g.v[0].compat.emulated, 3);
	glue_fini(&g);
}

static void test_glue_swapgs_fpu_xcr(void **state)
{
	struct glue g;

	(void)state;
	glue_init(&g, true, true);
	g.k.sregs.gs.base = 0x1234;
	*fake_msr(&g.k, MSR_KERNEL_GS_BASE) = 0xffff888000005678ULL;
	EXIT(&g, 0x0f, 0x01, 0xf8);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.sregs.gs.base, 0xffff888000005678ULL);
	assert_int_equal(*fake_msr(&g.k, MSR_KERNEL_GS_BASE), 0x1234);
	assert_int_equal(g.k.regs.rip, KTEXT + 3);
	/* ldmxcsr [rax]: the FPU state goes back through KVM_SET_FPU. */
	*(uint32_t *)gp(&g.p, 0x9000, 4) = 0x1fa0;
	g.k.regs.rax = 0x9000;
	EXIT(&g, 0x0f, 0xae, 0x10);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.fpu.mxcsr, 0x1fa0);
	assert_int_equal(g.k.set_fpu, 1);
	/* xgetbv with OSXSAVE: XCR0 from KVM_GET_XCRS. */
	g.k.sregs.cr4 |= X86_CR4_OSXSAVE;
	g.k.xcr0 = 3;
	g.k.regs.rcx = 0;
	EXIT(&g, 0x0f, 0x01, 0xd0);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.regs.rax, 3);
	assert_int_equal(g.k.regs.rdx, 0);
	/* popcnt with a memory operand on an unmapped page: #PF with CR2 through SET_SREGS. */
	g.k.regs.rsi = 0x7f0000000000ULL;
	EXIT(&g, 0xf3, 0x48, 0x0f, 0xb8, 0x06);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.ev.exception.nr, X86_VEC_PF);
	assert_int_equal(g.k.ev.exception.has_error_code, 1);
	assert_int_equal(g.k.ev.exception.error_code, 0);
	assert_int_equal(g.k.sregs.cr2, 0x7f0000000000ULL);
	glue_fini(&g);
}

static void test_glue_unhandled(void **state)
{
	char path[] = "/tmp/kiln-map-XXXXXX";
	struct glue g;
	FILE *f;
	int fd;

	(void)state;
	glue_init(&g, true, true);
	EXIT(&g, 0x0f, 0x05);
	assert_true(pvm_handle_exit(g.c, &g.v[0]) < 0);
	assert_int_equal(tlog_count(LOG_ERROR), 1);
	assert_string_equal(tlog_last(), "compat: cannot handle unknown instruction at RIP 0xffffffff81000000 (CPL 0): "
					 "bytes 0f 05 [symbol unknown]");
	assert_int_equal(g.k.set_regs + g.k.set_sregs + g.k.set_events, 0);
	/* With a System.map the symbol is named; a refused instruction gives its reason. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "ffffffff81000000 T startup_64\n");
	fclose(f);
	assert_int_equal(pvm_load_symbols(g.c, path), 0);
	unlink(path);
	tlog_reset();
	EXIT(&g, 0xcd, 0x80);
	assert_true(pvm_handle_exit(g.c, &g.v[0]) < 0);
	assert_int_equal(tlog_count(LOG_ERROR), 1);
	assert_string_equal(tlog_last(), "compat: cannot handle refused instruction int n at RIP 0xffffffff81000000 "
					 "(CPL 0): bytes cd 80 [startup_64+0x0]");
	/* Another internal error: one line with the suberror. */
	tlog_reset();
	EXIT(&g, 0xcc);
	g.run[0]->internal.suberror = KVM_INTERNAL_ERROR_DELIVERY_EV;
	assert_true(pvm_handle_exit(g.c, &g.v[0]) < 0);
	assert_int_equal(tlog_count(LOG_ERROR), 1);
	assert_non_null(strstr(tlog_last(), "suberror 3"));
	/* A failing KVM ioctl: one line, nothing done. */
	tlog_reset();
	g.k.fail_req = KVM_GET_SREGS;
	EXIT(&g, 0xcc);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), -EIO);
	assert_int_equal(tlog_count(LOG_ERROR), 1);
	g.k.fail_req = KVM_SET_VCPU_EVENTS;
	tlog_reset();
	EXIT(&g, 0x0f, 0x0b);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), -EIO);
	assert_int_equal(tlog_count(LOG_ERROR), 1);
	/* Over 15 bytes: #GP(0), handled. */
	g.k.fail_req = 0;
	EXIT(&g, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.ev.exception.nr, X86_VEC_GP);
	assert_int_equal(g.k.ev.exception.has_error_code, 1);
	/* A vCPU the compat state does not know. */
	g.v[1].id = 7;
	assert_int_equal(pvm_handle_exit(g.c, &g.v[1]), -EINVAL);
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[1]), -EINVAL);
	assert_int_equal(pvm_vcpu_poll(g.c, &g.v[1]), -EINVAL);
	glue_fini(&g);
}

static void test_glue_syscall_trap(void **state)
{
	struct glue g;

	(void)state;
	glue_init(&g, true, true);
	/* Before the guest writes LSTAR there is nothing to install, even though the page is mapped. */
	assert_int_equal(pvm_vcpu_poll(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.set_msrs, 0);
	assert_false(atomic_load(&g.c->armed));
	/* The guest kernel's syscall_init(): WRMSR LSTAR at CPL0. */
	msr_exit(&g, 0, KVM_EXIT_X86_WRMSR, MSR_LSTAR, GUEST_LSTAR);
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.run[0]->msr.error, 0);
	assert_int_equal(*fake_msr(&g.k, MSR_LSTAR), PVM_TRAP_LSTAR);
	assert_int_equal(vsyscall_pte(&g), pvm_trap_pte_value());
	assert_int_equal(g.c->trap.orig, VSYS_PA | X86_PTE_P | X86_PTE_US | X86_PTE_NX);
	/* The guest reads back its own value. */
	msr_exit(&g, 0, KVM_EXIT_X86_RDMSR, MSR_LSTAR, 0);
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.run[0]->msr.data, GUEST_LSTAR);
	assert_int_equal(g.run[0]->msr.error, 0);
	/* The second vCPU's write finds the trap armed. */
	*fake_msr(&g.k, MSR_LSTAR) = 0;
	msr_exit(&g, 1, KVM_EXIT_X86_WRMSR, MSR_LSTAR, GUEST_LSTAR);
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[1]), 0);
	assert_int_equal(*fake_msr(&g.k, MSR_LSTAR), PVM_TRAP_LSTAR);

	/* A user syscall lands on the trap; the host did not mask RFLAGS. */
	user_syscall_state(&g, 0x246, 0x246);
	emul_exit(&g, 0, NULL, 0);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.regs.rip, GUEST_LSTAR);
	assert_int_equal(g.k.regs.rflags, 0x2);             /* 0x246 & ~FMASK */
	assert_int_equal(g.k.regs.rcx, 0x401002);           /* left as SYSCALL stored it */
	assert_int_equal(g.k.regs.r11, 0x246);
	assert_int_equal(g.k.regs.rax, 39);
	assert_int_equal(g.k.sregs.cs.selector, 0x10);
	assert_int_equal(g.k.sregs.cs.dpl, 0);
	assert_true(g.k.sregs.cs.l);
	assert_int_equal(g.k.sregs.ss.selector, 0x18);
	assert_int_equal(g.k.sregs.ss.dpl, 0);
	assert_int_equal(g.v[0].compat.syscalls, 1);
	assert_int_equal(g.k.set_events, 0);
	/* The host masked RFLAGS already (IF clear): also a syscall. */
	user_syscall_state(&g, 0x246 & ~LINUX_FMASK, 0x246);
	emul_exit(&g, 0, NULL, 0);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.regs.rip, GUEST_LSTAR);
	assert_int_equal(g.v[0].compat.syscalls, 2);
	/* A program that jumps to the trap with a forged R11 (IOPL=3) gets a #PF, not a kernel entry. */
	user_syscall_state(&g, 0x246, 0x3246);
	emul_exit(&g, 0, NULL, 0);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.regs.rip, PVM_TRAP_LSTAR);
	assert_int_equal(g.k.sregs.cs.selector, 0x33);
	assert_int_equal(g.k.sregs.cr2, PVM_TRAP_LSTAR);
	assert_int_equal(g.k.ev.exception.nr, X86_VEC_PF);
	assert_int_equal(g.k.ev.exception.error_code, PVM_VSYSCALL_PF_ERR);
	assert_int_equal(g.v[0].compat.syscalls, 2);
	/* A legacy vsyscall call (time() at +0x400): the #PF the guest's NX PTE would give. */
	g.k.ev.exception.injected = 0;
	user_syscall_state(&g, 0x246, 0x246);
	g.k.regs.rip = PVM_VSYSCALL_PAGE + 0x400;
	emul_exit(&g, 0, NULL, 0);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.ev.exception.nr, X86_VEC_PF);
	assert_int_equal(g.k.sregs.cr2, PVM_VSYSCALL_PAGE + 0x400);
	/* CPL0 at the trap address is no syscall: nothing to decode there, so it stops. */
	tlog_reset();
	pvm_flat_code64(&g.k.sregs.cs, 0x10, 0);
	g.k.regs.rip = PVM_TRAP_LSTAR;
	emul_exit(&g, 0, NULL, 0);
	assert_true(pvm_handle_exit(g.c, &g.v[0]) < 0);
	assert_int_equal(tlog_count(LOG_ERROR), 1);
	assert_non_null(strstr(tlog_last(), "truncated instruction"));
	/* Polling is a no-op once installed. */
	g.k.set_msrs = 0;
	assert_int_equal(pvm_vcpu_poll(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.set_msrs, 0);
	glue_fini(&g);
}

static void test_glue_trap_late_arm(void **state)
{
	struct glue g;
	uint64_t pte;

	(void)state;
	glue_init(&g, false, true);
	/* LSTAR written before the vsyscall page is mapped: the guest's value goes in, one warning. */
	msr_exit(&g, 0, KVM_EXIT_X86_WRMSR, MSR_LSTAR, GUEST_LSTAR);
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.run[0]->msr.error, 0);
	assert_int_equal(*fake_msr(&g.k, MSR_LSTAR), GUEST_LSTAR);
	assert_int_equal(tlog_count(LOG_WARN), 1);
	/* A spent poll budget is renewed by the guest's next write. */
	g.c->vcpus[0].polls_left = 0;
	msr_exit(&g, 0, KVM_EXIT_X86_WRMSR, MSR_LSTAR, GUEST_LSTAR);
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[0]), 0);
	assert_int_equal(tlog_count(LOG_WARN), 1);
	/* No trap yet: a user-page exit there is not ours. */
	assert_false(atomic_load(&g.c->armed));
	/* The page appears (with user bits everywhere); the next poll at CPL0 arms and installs. */
	pt_map(&g.p, PVM_VSYSCALL_PAGE, VSYS_PA, 1, X86_PTE_P | X86_PTE_US | X86_PTE_NX, URW);
	*pt_entry(&g.p, PVM_VSYSCALL_PAGE, 4) |= X86_PTE_US;
	pte = vsyscall_pte(&g);
	assert_int_not_equal(pte, pvm_trap_pte_value());
	pvm_flat_code64(&g.k.sregs.cs, 0x33, 3);
	assert_int_equal(pvm_vcpu_poll(g.c, &g.v[0]), 0);      /* user mode: wait */
	assert_int_equal(*fake_msr(&g.k, MSR_LSTAR), GUEST_LSTAR);
	pvm_flat_code64(&g.k.sregs.cs, 0x10, 0);
	assert_int_equal(pvm_vcpu_poll(g.c, &g.v[0]), 0);
	assert_int_equal(*fake_msr(&g.k, MSR_LSTAR), PVM_TRAP_LSTAR);
	assert_int_equal(vsyscall_pte(&g), pvm_trap_pte_value());
	/* vCPU 1 wrote LSTAR earlier too: its poll installs without re-arming. */
	glue_fini(&g);
}

static void test_glue_poll_without_filter(void **state)
{
	struct glue g;

	(void)state;
	glue_init(&g, true, false);
	/* LSTAR still 0: the guest has not set it up. */
	assert_int_equal(pvm_vcpu_poll(g.c, &g.v[0]), 0);
	assert_false(atomic_load(&g.c->armed));
	*fake_msr(&g.k, MSR_LSTAR) = GUEST_LSTAR;
	assert_int_equal(pvm_vcpu_poll(g.c, &g.v[0]), 0);
	assert_true(atomic_load(&g.c->armed));
	assert_int_equal(*fake_msr(&g.k, MSR_LSTAR), PVM_TRAP_LSTAR);
	/* And the trap completes syscalls to the value polled. */
	user_syscall_state(&g, 0x246, 0x246);
	emul_exit(&g, 0, NULL, 0);
	assert_int_equal(pvm_handle_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.k.regs.rip, GUEST_LSTAR);
	/* The poll budget bounds the work for a vCPU that never gets there. */
	g.c->vcpus[1].polls_left = 2;
	*fake_msr(&g.k, MSR_LSTAR) = 0;
	pvm_flat_code64(&g.k.sregs.cs, 0x10, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(pvm_vcpu_poll(g.c, &g.v[1]), 0);
	assert_int_equal(g.c->vcpus[1].polls_left, 0);
	glue_fini(&g);
}

/* kiln's own setting: at most one poll a vCPU per PVM_POLL_INTERVAL_NS, not one per exit. */
static void test_glue_poll_rate_limited(void **state)
{
	struct glue g;
	uint32_t before;

	(void)state;
	glue_init(&g, true, false);
	g.c->poll_interval_ns = 3600LL * 1000000000; /* an hour: only the first poll can run */
	pvm_flat_code64(&g.k.sregs.cs, 0x10, 0);
	before = g.c->vcpus[0].polls_left;
	assert_int_equal(pvm_vcpu_poll(g.c, &g.v[0]), 0);
	assert_int_equal(g.c->vcpus[0].polls_left, before - 1);
	/* The guest sets LSTAR: the exits right after do not look (no ioctl, no budget spent). */
	*fake_msr(&g.k, MSR_LSTAR) = GUEST_LSTAR;
	for (int i = 0; i < 100; i++)
		assert_int_equal(pvm_vcpu_poll(g.c, &g.v[0]), 0);
	assert_int_equal(g.c->vcpus[0].polls_left, before - 1);
	assert_false(g.c->vcpus[0].trap_installed);
	assert_int_equal(*fake_msr(&g.k, MSR_LSTAR), GUEST_LSTAR);
	/* Once the interval has passed, the next exit installs the trap. */
	g.c->vcpus[0].next_poll_ns = 0;
	assert_int_equal(pvm_vcpu_poll(g.c, &g.v[0]), 0);
	assert_true(g.c->vcpus[0].trap_installed);
	assert_int_equal(*fake_msr(&g.k, MSR_LSTAR), PVM_TRAP_LSTAR);
	glue_fini(&g);
}

static void test_glue_filter_bypassed(void **state)
{
	struct glue g;
	int i;

	(void)state;
	glue_init(&g, true, true);
	/* The host claims the filter but the guest's write never exits: LSTAR changes under us. */
	*fake_msr(&g.k, MSR_LSTAR) = GUEST_LSTAR;
	for (i = 0; i < 64 && !g.c->vcpus[0].trap_installed; i++)
		assert_int_equal(pvm_vcpu_poll(g.c, &g.v[0]), 0);
	assert_true(i > 1);          /* not on every exit */
	assert_true(g.c->vcpus[0].trap_installed);
	assert_int_equal(*fake_msr(&g.k, MSR_LSTAR), PVM_TRAP_LSTAR);
	assert_int_equal(g.c->vcpus[0].guest_lstar, GUEST_LSTAR);
	assert_int_equal(tlog_count(LOG_WARN), 1);
	glue_fini(&g);
}

static void test_glue_msr_misc(void **state)
{
	struct glue g;

	(void)state;
	glue_init(&g, true, true);
	/* Read before any write: the real MSR. */
	*fake_msr(&g.k, MSR_LSTAR) = 0x1234;
	msr_exit(&g, 0, KVM_EXIT_X86_RDMSR, MSR_LSTAR, 0);
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.run[0]->msr.data, 0x1234);
	/* A non-canonical LSTAR: #GP, nothing installed. */
	msr_exit(&g, 0, KVM_EXIT_X86_WRMSR, MSR_LSTAR, 0x0000800000000000ULL);
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.run[0]->msr.error, 1);
	assert_int_equal(*fake_msr(&g.k, MSR_LSTAR), 0x1234);
	assert_false(atomic_load(&g.c->armed));
	/* Another MSR (never filtered by kiln): #GP and a warning. */
	msr_exit(&g, 0, KVM_EXIT_X86_WRMSR, MSR_STAR, 0);
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[0]), 0);
	assert_int_equal(g.run[0]->msr.error, 1);
	assert_int_equal(tlog_count(LOG_WARN), 1);
	/* Not an MSR exit at all. */
	g.run[0]->exit_reason = KVM_EXIT_IO;
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[0]), -EINVAL);
	/* KVM_SET_MSRS failing on the write: an error. */
	g.k.fail_req = KVM_SET_MSRS;
	msr_exit(&g, 0, KVM_EXIT_X86_WRMSR, MSR_LSTAR, GUEST_LSTAR);
	assert_int_equal(pvm_handle_msr_exit(g.c, &g.v[0]), -EIO);
	glue_fini(&g);
}

const struct CMUnitTest pvm_glue_tests[] = {
	cmocka_unit_test(test_glue_create),
	cmocka_unit_test(test_glue_vm_setup),
	cmocka_unit_test(test_glue_int3_ud2),
	cmocka_unit_test(test_glue_bytes_from_memory),
	cmocka_unit_test(test_glue_swapgs_fpu_xcr),
	cmocka_unit_test(test_glue_unhandled),
	cmocka_unit_test(test_glue_syscall_trap),
	cmocka_unit_test(test_glue_trap_late_arm),
	cmocka_unit_test(test_glue_poll_without_filter),
	cmocka_unit_test(test_glue_poll_rate_limited),
	cmocka_unit_test(test_glue_filter_bypassed),
	cmocka_unit_test(test_glue_msr_misc),
};
const size_t pvm_glue_ntests = ARRAY_SIZE(pvm_glue_tests);
