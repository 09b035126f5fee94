/* KVM glue of the kvm_pvm compat layer: vCPU state in and out, exception injection, the LSTAR MSR filter. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include "compat/pvm_internal.h"
#include "core/log.h"
#include "core/vcpu.h"
#include "core/vm.h"

/*
 * Everything here is sequencing: read the vCPU state a handler needs, run the
 * pure code (pvm_decode, pvm_emulate, pvm_trap), write back what it changed,
 * inject. All vCPU ioctls go through c->ioctl so unit tests can play KVM.
 * Per-vCPU state is touched only by that vCPU's thread; the one shared piece
 * (the trap PTE) is under c->lock.
 */

static int real_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	int r;

	(void)ctx;
	r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

void pvm_compat_set_ioctl(struct pvm_compat *c, pvm_ioctl_fn fn, void *ctx)
{
	c->ioctl = fn;
	c->ioctl_ctx = ctx;
	c->poll_interval_ns = 0; /* tests step the poll exit by exit */
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int vioctl(struct pvm_compat *c, struct vcpu *v, unsigned long req, void *arg)
{
	return c->ioctl(c->ioctl_ctx, v->fd, req, arg);
}

static struct pvm_vcpu_state *vcpu_state(struct pvm_compat *c, struct vcpu *v)
{
	if (!c || !v || v->id >= c->nvcpus)
		return NULL;
	return &c->vcpus[v->id];
}

int pvm_compat_create(struct vm *vm, struct pvm_compat **out)
{
	unsigned n = vm->ncpus ? vm->ncpus : vm->cfg.ncpus;
	struct pvm_compat *c;
	int ret;

	*out = NULL;
	if (!n)
		return -EINVAL;
	/* A user fetch from the trap page must miss every memslot (pvm.h). */
	if (mem_gpa(&vm->mem, PVM_TRAP_GPA, 1))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->vcpus = calloc(n, sizeof(*c->vcpus));
	if (!c->vcpus) {
		ret = -ENOMEM;
		goto fail_free;
	}
	ret = pthread_mutex_init(&c->lock, NULL);
	if (ret) {
		ret = -ret;
		goto fail_vcpus;
	}
	for (unsigned i = 0; i < n; i++)
		c->vcpus[i].polls_left = PVM_POLL_BUDGET;
	atomic_init(&c->armed, false);
	c->vm = vm;
	c->nvcpus = n;
	c->ioctl = real_ioctl;
	c->poll_interval_ns = PVM_POLL_INTERVAL_NS;
	*out = c;
	return 0;
fail_vcpus:
	free(c->vcpus);
fail_free:
	free(c);
	return ret;
}

void pvm_compat_destroy(struct pvm_compat *c)
{
	if (!c)
		return;
	pvm_symtab_free(&c->syms);
	pthread_mutex_destroy(&c->lock);
	free(c->vcpus);
	free(c);
}

int pvm_load_symbols(struct pvm_compat *c, const char *system_map_path)
{
	if (!c || !system_map_path)
		return -EINVAL;
	return pvm_symtab_load(&c->syms, system_map_path);
}

/*
 * Ask KVM to exit on the guest's RDMSR/WRMSR of LSTAR: with
 * KVM_MSR_EXIT_REASON_FILTER enabled, an access the filter denies becomes
 * KVM_EXIT_X86_RDMSR/WRMSR instead of #GP (Documentation/virt/kvm/api.rst,
 * KVM_CAP_X86_USER_SPACE_MSR and KVM_X86_SET_MSR_FILTER). This is generic
 * x86 KVM code, and on kvm_pvm the guest kernel's WRMSR runs through KVM's
 * emulator, whose MSR path honours the filter. If the host lacks either
 * capability kiln polls LSTAR after exits instead (pvm_vcpu_poll).
 */
int pvm_vm_setup(struct pvm_compat *c)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_USER_SPACE_MSR, .args = { KVM_MSR_EXIT_REASON_FILTER } };
	struct kvm_msr_filter filter;
	uint8_t deny = 0;  /* bit 0 clear: LSTAR reads and writes are denied, i.e. exit to kiln */
	const char *why;
	int r, fd;

	if (!c || !c->vm)
		return -EINVAL;
	fd = c->vm->vm_fd;
	memset(&filter, 0, sizeof(filter));
	filter.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	filter.ranges[0].flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
	filter.ranges[0].nmsrs = 1;
	filter.ranges[0].base = MSR_LSTAR;
	filter.ranges[0].bitmap = &deny;

	why = "KVM_CAP_X86_USER_SPACE_MSR without filter exits";
	r = c->ioctl(c->ioctl_ctx, fd, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_X86_USER_SPACE_MSR);
	if (r <= 0 || !(r & KVM_MSR_EXIT_REASON_FILTER))
		goto fallback;
	why = "no KVM_CAP_X86_MSR_FILTER";
	r = c->ioctl(c->ioctl_ctx, fd, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_X86_MSR_FILTER);
	if (r <= 0)
		goto fallback;
	why = "KVM_ENABLE_CAP failed";
	if (c->ioctl(c->ioctl_ctx, fd, KVM_ENABLE_CAP, &cap) < 0)
		goto fallback;
	/* KVM copies the bitmap during the ioctl, so a stack byte is fine. */
	why = "KVM_X86_SET_MSR_FILTER failed";
	if (c->ioctl(c->ioctl_ctx, fd, KVM_X86_SET_MSR_FILTER, &filter) < 0)
		goto fallback;
	c->msr_filter = true;
	log_info("compat: guest LSTAR accesses exit to kiln (MSR filter)");
	return 0;
fallback:
	c->msr_filter = false;
	log_info("compat: %s; the syscall trap polls LSTAR after exits instead", why);
	return 0;
}

/* ---- vCPU state ---- */

#define MAX_MSRS 4

static int get_msrs(struct pvm_compat *c, struct vcpu *v, const uint32_t *idx, uint64_t *val, unsigned n)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[MAX_MSRS];
	} m;
	int r;

	if (n > MAX_MSRS)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	m.h.nmsrs = n;
	for (unsigned i = 0; i < n; i++)
		m.e[i].index = idx[i];
	r = vioctl(c, v, KVM_GET_MSRS, &m);
	if (r < 0)
		return r;
	if ((unsigned)r != n)  /* KVM returns how many it read */
		return -EIO;
	for (unsigned i = 0; i < n; i++)
		val[i] = m.e[i].data;
	return 0;
}

static int set_msr(struct pvm_compat *c, struct vcpu *v, uint32_t idx, uint64_t val)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[1];
	} m;
	int r;

	memset(&m, 0, sizeof(m));
	m.h.nmsrs = 1;
	m.e[0].index = idx;
	m.e[0].data = val;
	r = vioctl(c, v, KVM_SET_MSRS, &m);
	if (r < 0)
		return r;
	return r == 1 ? 0 : -EIO;
}

/* Load what pvm_emulate needs beyond regs/sregs (pvm_insn_needs). */
static int load_extra(struct pvm_compat *c, struct vcpu *v, struct pvm_cpu *cpu, unsigned needs)
{
	int r;

	if (needs & PVM_NEED_MSR_SYSCALL) {
		static const uint32_t idx[] = { MSR_STAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE };
		uint64_t val[3];

		if ((r = get_msrs(c, v, idx, val, 3)))
			return r;
		cpu->msr_star = val[0];
		cpu->msr_fmask = val[1];
		cpu->msr_kernel_gs_base = val[2];
	}
	if (needs & PVM_NEED_MSR_TSC) {
		static const uint32_t idx[] = { MSR_IA32_TSC, MSR_TSC_AUX };
		uint64_t val[2];

		if ((r = get_msrs(c, v, idx, val, 2)))
			return r;
		cpu->msr_tsc = val[0];
		cpu->msr_tsc_aux = val[1];
	}
	if ((needs & PVM_NEED_FPU) && (r = vioctl(c, v, KVM_GET_FPU, &cpu->fpu)) < 0)
		return r;
	/* XCR0 matters only once the guest enabled XSAVE (else xgetbv is #UD without it). */
	if ((needs & PVM_NEED_XCR) && (cpu->sregs.cr4 & X86_CR4_OSXSAVE)) {
		struct kvm_xcrs x;

		memset(&x, 0, sizeof(x));
		if ((r = vioctl(c, v, KVM_GET_XCRS, &x)) < 0)
			return r;
		for (unsigned i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; i++)
			if (x.xcrs[i].xcr == 0)
				cpu->xcr0 = x.xcrs[i].value;
	}
	return 0;
}

/*
 * Inject an exception as already "injected" (being delivered), which is what
 * the probe measured to work on kvm_pvm; without KVM_CAP_EXCEPTION_PAYLOAD a
 * #PF uses the CR2 set through KVM_SET_SREGS. The other event fields are
 * written back as KVM_GET_VCPU_EVENTS returned them.
 */
static int inject(struct pvm_compat *c, struct vcpu *v, uint8_t vector, bool has_error, uint32_t error_code)
{
	struct kvm_vcpu_events ev;
	int r;

	memset(&ev, 0, sizeof(ev));
	if ((r = vioctl(c, v, KVM_GET_VCPU_EVENTS, &ev)) < 0)
		return r;
	ev.exception.injected = 1;
	ev.exception.pending = 0;
	ev.exception.nr = vector;
	ev.exception.has_error_code = has_error;
	ev.exception.error_code = has_error ? error_code : 0;
	ev.exception_has_payload = 0;
	ev.exception_payload = 0;
	r = vioctl(c, v, KVM_SET_VCPU_EVENTS, &ev);
	return r < 0 ? r : 0;
}

/* Write back what the emulator changed, then inject. */
static int store(struct pvm_compat *c, struct vcpu *v, struct pvm_cpu *cpu, const struct pvm_result *res)
{
	int r;

	if ((res->dirty & PVM_DIRTY_REGS) && (r = vioctl(c, v, KVM_SET_REGS, &cpu->regs)) < 0)
		return r;
	if ((res->dirty & PVM_DIRTY_SREGS) && (r = vioctl(c, v, KVM_SET_SREGS, &cpu->sregs)) < 0)
		return r;
	if ((res->dirty & PVM_DIRTY_KGS) && (r = set_msr(c, v, MSR_KERNEL_GS_BASE, cpu->msr_kernel_gs_base)))
		return r;
	if ((res->dirty & PVM_DIRTY_FPU) && (r = vioctl(c, v, KVM_SET_FPU, &cpu->fpu)) < 0)
		return r;
	if (res->action == PVM_ACT_EXCEPTION)
		return inject(c, v, res->vector, res->has_error, res->error_code);
	return 0;
}

static void count(struct vcpu *v, const struct pvm_result *res)
{
	if (res->action == PVM_ACT_EXCEPTION && res->vector == X86_VEC_BP)
		v->compat.injected_bp++;
	else if (res->action == PVM_ACT_EXCEPTION && res->vector == X86_VEC_UD)
		v->compat.injected_ud++;
	else
		v->compat.emulated++;  /* emulated, or another architectural exception delivered */
}

static void diag(const struct pvm_compat *c, const char *reason, uint64_t rip, unsigned cpl, const uint8_t *b,
		 size_t n)
{
	char line[400];

	pvm_format_diag(line, sizeof(line), reason, rip, cpl, b, n, &c->syms);
	log_err("%s", line);
}

/* The instruction bytes KVM fetched, if it passed them (linux/kvm.h, emulation_failure). */
static size_t exit_bytes(const struct kvm_run *run, uint8_t *b)
{
	size_t n;

	if (run->emulation_failure.ndata < 3 ||
	    !(run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES))
		return 0;
	n = MIN((size_t)run->emulation_failure.insn_size, (size_t)X86_MAX_INSN_LEN);
	memcpy(b, run->emulation_failure.insn_bytes, n);
	return n;
}

/* The bytes at CS:RIP from guest memory, up to 15 (CS.base is 0 in 64-bit mode). */
static size_t memory_bytes(const struct pvm_vmem *vm, const struct pvm_cpu *cpu, uint8_t *b)
{
	uint64_t la = cpu->regs.rip + (cpu->sregs.cs.l ? 0 : cpu->sregs.cs.base);

	return pvm_vmem_fetch(vm, la, b, X86_MAX_INSN_LEN);
}

/* ---- The syscall trap ---- */

static bool try_arm(struct pvm_compat *c, const struct pvm_paging *pg)
{
	int r;

	if (atomic_load(&c->armed))
		return true;
	pthread_mutex_lock(&c->lock);
	if (!atomic_load(&c->armed)) {
		r = pvm_trap_arm(&c->vm->mem, pg, &c->trap);
		if (r == 0) {
			atomic_store(&c->armed, true);
			log_info("compat: syscall trap armed: vsyscall PTE at GPA 0x%llx, 0x%llx -> 0x%llx",
				 (unsigned long long)c->trap.pte_gpa, (unsigned long long)c->trap.orig,
				 (unsigned long long)pvm_trap_pte_value());
		} else if (!c->warned_unarmed) {
			c->warned_unarmed = true;
			log_warn("compat: syscall trap not armed yet (%s): guest user-space syscalls need "
				 "vsyscall=emulate and CONFIG_X86_VSYSCALL_EMULATION", strerror(-r));
		}
	}
	pthread_mutex_unlock(&c->lock);
	return atomic_load(&c->armed);
}

/* Put PVM_TRAP_LSTAR (trap) or the guest's own value into the vCPU's real LSTAR. */
static int install(struct pvm_compat *c, struct vcpu *v, struct pvm_vcpu_state *vs, bool trap)
{
	int r = set_msr(c, v, MSR_LSTAR, trap ? PVM_TRAP_LSTAR : vs->guest_lstar);

	if (r) {
		log_err("compat: cannot set LSTAR on vCPU %u: %s", v->id, strerror(-r));
		return r;
	}
	vs->trap_installed = trap;
	return 0;
}

/* 1: not a trap exit; 0: handled; <0: failed (one line printed). */
static int trap_exit(struct pvm_compat *c, struct vcpu *v, struct pvm_vcpu_state *vs, struct pvm_cpu *cpu)
{
	static const uint32_t idx[] = { MSR_STAR, MSR_SYSCALL_MASK };
	bool armed = atomic_load(&c->armed);
	uint64_t val[2];
	int r;

	if (!armed || pvm_cpl(&cpu->sregs) != 3 || (cpu->regs.rip & ~0xfffULL) != PVM_VSYSCALL_PAGE)
		return 1;
	if ((r = get_msrs(c, v, idx, val, 2)))
		goto fail;
	cpu->msr_star = val[0];
	cpu->msr_fmask = val[1];
	switch (pvm_trap_classify(cpu, armed, vs->trap_installed)) {
	case PVM_TRAP_SYSCALL:
		pvm_syscall_complete(cpu, vs->guest_lstar);
		if ((r = vioctl(c, v, KVM_SET_REGS, &cpu->regs)) < 0 ||
		    (r = vioctl(c, v, KVM_SET_SREGS, &cpu->sregs)) < 0)
			goto fail;
		v->compat.syscalls++;
		return 0;
	case PVM_TRAP_FAULT:
		/* What the guest's own NX vsyscall PTE would have raised: its kernel emulates legacy vsyscalls. */
		cpu->sregs.cr2 = cpu->regs.rip;
		if ((r = vioctl(c, v, KVM_SET_SREGS, &cpu->sregs)) < 0 ||
		    (r = inject(c, v, X86_VEC_PF, true, PVM_VSYSCALL_PF_ERR)) < 0)
			goto fail;
		v->compat.emulated++;
		return 0;
	default:
		return 1;
	}
fail:
	log_err("compat: syscall trap on vCPU %u at RIP 0x%llx failed: %s", v->id,
		(unsigned long long)cpu->regs.rip, strerror(-r));
	return r;
}

/* ---- Exit handlers ---- */

int pvm_handle_exit(struct pvm_compat *c, struct vcpu *v)
{
	struct pvm_vcpu_state *vs = vcpu_state(c, v);
	uint8_t bytes[X86_MAX_INSN_LEN], more[X86_MAX_INSN_LEN];
	struct pvm_vmem vmem;
	const struct pvm_mem_ops ops = { pvm_vmem_access, &vmem };
	struct pvm_result res;
	struct pvm_insn insn;
	struct pvm_cpu cpu;
	uint64_t rip;
	unsigned cpl;
	size_t n, m;
	char why[64];
	int r;

	if (!vs) {
		log_err("compat: no state for vCPU %u", v ? v->id : 0);
		return -EINVAL;
	}
	memset(&cpu, 0, sizeof(cpu));
	memset(&insn, 0, sizeof(insn));
	if ((r = vioctl(c, v, KVM_GET_REGS, &cpu.regs)) < 0 || (r = vioctl(c, v, KVM_GET_SREGS, &cpu.sregs)) < 0) {
		log_err("compat: cannot read the state of vCPU %u: %s", v->id, strerror(-r));
		return r;
	}
	rip = cpu.regs.rip;
	cpl = pvm_cpl(&cpu.sregs);
	cpu.msr_lstar = vs->guest_lstar;
	vmem.mem = &c->vm->mem;
	pvm_paging_from_sregs(&cpu.sregs, &vmem.pg);
	n = exit_bytes(v->run, bytes);
	if (v->run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION) {
		snprintf(why, sizeof(why), "KVM internal error (suberror %u)", v->run->internal.suberror);
		diag(c, why, rip, cpl, bytes, 0);
		return -EIO;
	}
	if ((r = trap_exit(c, v, vs, &cpu)) <= 0)
		return r;

	/* Decode what KVM fetched; if it stopped short (page end) or passed nothing, read guest memory. */
	r = n ? pvm_decode(bytes, n, &insn) : -ENODATA;
	if (r == -ENODATA && (m = memory_bytes(&vmem, &cpu, more)) > n) {
		memcpy(bytes, more, m);
		n = m;
		r = pvm_decode(bytes, n, &insn);
	}
	if (r == -E2BIG) {
		/* More than 15 bytes of prefixes and opcode: #GP(0) (SDM Vol 2A 2.3.11). */
		insn.kind = PVM_INSN_UNKNOWN;
		memset(&res, 0, sizeof(res));
		pvm_res_exception(&res, X86_VEC_GP, true, 0);
		goto apply;
	}
	if (r) {
		diag(c, r == -ENODATA ? "truncated instruction" : "unknown instruction", rip, cpl, bytes, n);
		return r == -ENODATA ? -EFAULT : -EOPNOTSUPP;
	}
	if ((r = load_extra(c, v, &cpu, pvm_insn_needs(insn.kind)))) {
		log_err("compat: cannot read the state of vCPU %u for %s: %s", v->id, pvm_kind_name(insn.kind),
			strerror(-r));
		return r;
	}
	pvm_emulate(&cpu, &insn, &ops, &res);
	if (res.action == PVM_ACT_UNHANDLED) {
		diag(c, res.reason ? res.reason : pvm_kind_name(insn.kind), rip, cpl, bytes, insn.len);
		return -EOPNOTSUPP;
	}
apply:
	if ((r = store(c, v, &cpu, &res))) {
		log_err("compat: cannot update vCPU %u after %s at RIP 0x%llx: %s", v->id, pvm_kind_name(insn.kind),
			(unsigned long long)rip, strerror(-r));
		return r;
	}
	count(v, &res);
	return 0;
}

/* A WRMSR to LSTAR: remember the guest's entry point and give the CPU the trap address instead. */
static int lstar_written(struct pvm_compat *c, struct vcpu *v, struct pvm_vcpu_state *vs, uint64_t val,
			 uint8_t *error)
{
	struct pvm_paging pg;
	struct kvm_sregs s;
	int r;

	if ((r = vioctl(c, v, KVM_GET_SREGS, &s)) < 0) {
		log_err("compat: cannot read the state of vCPU %u: %s", v->id, strerror(-r));
		return r;
	}
	pvm_paging_from_sregs(&s, &pg);
	/* A non-canonical LSTAR is #GP(0) on WRMSR (SDM Vol 2B WRMSR); error=1 makes KVM inject it. */
	if (!pvm_canonical(val, pg.levels)) {
		*error = 1;
		return 0;
	}
	vs->guest_lstar = val;
	vs->have_lstar = true;
	vs->polls_left = PVM_POLL_BUDGET;  /* a fresh write earns fresh retries of the arming */
	if ((r = install(c, v, vs, try_arm(c, &pg))))
		return r;
	*error = 0;
	return 0;
}

int pvm_handle_msr_exit(struct pvm_compat *c, struct vcpu *v)
{
	struct pvm_vcpu_state *vs = vcpu_state(c, v);
	struct kvm_run *run;
	int r;

	if (!vs) {
		log_err("compat: no state for vCPU %u", v ? v->id : 0);
		return -EINVAL;
	}
	run = v->run;
	if (run->exit_reason != KVM_EXIT_X86_RDMSR && run->exit_reason != KVM_EXIT_X86_WRMSR) {
		log_err("compat: exit %u is not an MSR exit", run->exit_reason);
		return -EINVAL;
	}
	if (run->msr.index != MSR_LSTAR) {
		/* Only LSTAR is filtered; for anything else do what KVM would have done: #GP. */
		log_warn("compat: unexpected MSR exit for 0x%x (reason 0x%x): #GP", run->msr.index, run->msr.reason);
		run->msr.error = 1;
		return 0;
	}
	if (run->exit_reason == KVM_EXIT_X86_WRMSR)
		return lstar_written(c, v, vs, run->msr.data, &run->msr.error);
	/* The guest reads back its own value, not the trap address. */
	if (!vs->have_lstar) {
		static const uint32_t idx[] = { MSR_LSTAR };
		uint64_t val;

		if ((r = get_msrs(c, v, idx, &val, 1))) {
			log_err("compat: cannot read LSTAR of vCPU %u: %s", v->id, strerror(-r));
			return r;
		}
		run->msr.data = val;
	} else {
		run->msr.data = vs->guest_lstar;
	}
	run->msr.error = 0;
	return 0;
}

int pvm_vcpu_poll(struct pvm_compat *c, struct vcpu *v)
{
	struct pvm_vcpu_state *vs = vcpu_state(c, v);
	struct pvm_paging pg;
	struct kvm_sregs s;
	int r;

	if (!vs)
		return -EINVAL;
	if (vs->trap_installed || !vs->polls_left)
		return 0;
	if (c->poll_interval_ns) {
		int64_t now = mono_ns(); /* vDSO: no syscall */

		if (now < vs->next_poll_ns)
			return 0;
		vs->next_poll_ns = now + c->poll_interval_ns;
	}
	vs->polls_left--;
	/*
	 * With the filter the guest's WRMSR arrives as an exit. Still look at
	 * LSTAR every 64th exit until then, in case this host's emulator path
	 * bypasses the filter (kiln sets LSTAR to 0 at vCPU init, so non-zero
	 * means the guest wrote it unseen).
	 */
	if (c->msr_filter && !vs->have_lstar && (vs->polls_left & 63))
		return 0;
	/* Another vCPU armed the shared PTE after this one's LSTAR write. */
	if (vs->have_lstar && atomic_load(&c->armed))
		return install(c, v, vs, true);
	if ((r = vioctl(c, v, KVM_GET_SREGS, &s)) < 0)
		return r;
	/* Arm only from kernel context: then CR3 is a kernel page table. */
	if (pvm_cpl(&s) != 0)
		return 0;
	if (!c->msr_filter || !vs->have_lstar) {
		static const uint32_t idx[] = { MSR_LSTAR };
		uint64_t val;

		if ((r = get_msrs(c, v, idx, &val, 1)))
			return r;
		if (val == 0 || val == PVM_TRAP_LSTAR)
			return 0;  /* not written yet */
		if (c->msr_filter)
			log_warn("compat: vCPU %u: the guest set LSTAR without an MSR exit; polling it instead", v->id);
		vs->guest_lstar = val;
		vs->have_lstar = true;
	}
	pvm_paging_from_sregs(&s, &pg);
	if (!try_arm(c, &pg))
		return 0;
	return install(c, v, vs, true);
}
