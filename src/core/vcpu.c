/* vCPUs: one thread per vCPU looping on KVM_RUN; exit dispatch; kicks; per-reason counters. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include "core/vcpu.h"
#include "core/vm.h"
#include "core/kvm.h"
#include "core/log.h"
#include "core/kvm_stats.h"
#include "compat/pvm.h"

/* The signal that kicks a vCPU out of KVM_RUN; its handler does nothing. */
#define VCPU_KICK_SIGNAL SIGUSR1

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "unknown", [KVM_EXIT_EXCEPTION] = "exception", [KVM_EXIT_IO] = "io",
	[KVM_EXIT_HYPERCALL] = "hypercall", [KVM_EXIT_DEBUG] = "debug", [KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_MMIO] = "mmio", [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	[KVM_EXIT_SHUTDOWN] = "shutdown", [KVM_EXIT_FAIL_ENTRY] = "fail_entry", [KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_SET_TPR] = "set_tpr", [KVM_EXIT_TPR_ACCESS] = "tpr_access",
	[KVM_EXIT_NMI] = "nmi", [KVM_EXIT_INTERNAL_ERROR] = "internal_error", [KVM_EXIT_OSI] = "osi",
	[KVM_EXIT_WATCHDOG] = "watchdog", [KVM_EXIT_EPR] = "epr", [KVM_EXIT_SYSTEM_EVENT] = "system_event",
	[KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi", [KVM_EXIT_HYPERV] = "hyperv",
	[KVM_EXIT_X86_RDMSR] = "x86_rdmsr", [KVM_EXIT_X86_WRMSR] = "x86_wrmsr",
	[KVM_EXIT_DIRTY_RING_FULL] = "dirty_ring_full", [KVM_EXIT_X86_BUS_LOCK] = "x86_bus_lock",
};

const char *kvm_exit_name(unsigned reason)
{
	if (reason < ARRAY_SIZE(exit_names) && exit_names[reason])
		return exit_names[reason];
	return "other";
}

int vcpu_create(struct vm *vm, struct vcpu *v, unsigned id)
{
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = kvm_ioctl(vm->vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)id);
	if (v->fd < 0)
		return v->fd;
	v->run = mmap(NULL, (size_t)vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		int err = -errno;
		close(v->fd);
		v->fd = -1;
		v->run = NULL;
		return err;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->vm->vcpu_mmap_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

static void kick_handler(int sig) { (void)sig; }

void vcpu_kick(struct vcpu *v)
{
	/* immediate_exit covers a kick that lands before the thread enters KVM_RUN. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (v->thread_started)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

/* KVM_EXIT_IO: `count` accesses of `size` bytes at data_offset in the run page. */
static int handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t size = run->io.size, count = run->io.count, off = run->io.data_offset;
	uint8_t *data = (uint8_t *)run + off;

	/* The kernel fills these, but a bounded check costs nothing and keeps us in the run page. */
	if (size == 0 || size > 8 || count > (uint64_t)v->vm->vcpu_mmap_size ||
	    off + size * count > (uint64_t)v->vm->vcpu_mmap_size) {
		log_err("vcpu%u: malformed io exit (port 0x%x size %u count %u)", v->id, run->io.port,
			run->io.size, run->io.count);
		return VM_STOP_ERROR;
	}
	for (uint64_t i = 0; i < count; i++, data += size)
		bus_access(&v->vm->pio, run->io.port, data, (uint32_t)size, run->io.direction == KVM_EXIT_IO_OUT);
	return 0;
}

static int handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	if (run->mmio.len == 0 || run->mmio.len > 8)
		return VM_STOP_ERROR;
	bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len, run->mmio.is_write);
	return 0;
}

static void print_unhandled(struct vcpu *v, const char *what)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (kvm_ioctl(v->fd, KVM_GET_REGS, &r) < 0 || kvm_ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		log_err("vcpu%u: %s (registers unavailable)", v->id, what);
		return;
	}
	log_err("vcpu%u: %s at RIP 0x%llx (CS 0x%x, CPL %u, CR0 0x%llx)", v->id, what,
		(unsigned long long)r.rip, s.cs.selector, s.cs.dpl, (unsigned long long)s.cr0);
}

int vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char what[128];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return handle_io(v);
	case KVM_EXIT_MMIO:
		return handle_mmio(v);
	case KVM_EXIT_INTR:
		return 0; /* a kick: the caller checks for a stop request */
	case KVM_EXIT_HLT:
		/* The in-kernel LAPIC handles HLT; if it reaches us, resume (the guest re-halts). */
		return 0;
	case KVM_EXIT_SHUTDOWN:
		log_info("vcpu%u: triple fault (KVM_EXIT_SHUTDOWN)", v->id);
		print_unhandled(v, "triple fault");
		return VM_STOP_TRIPLE_FAULT;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			return VM_STOP_POWEROFF;
		case KVM_SYSTEM_EVENT_RESET:
			return VM_STOP_RESET;
		case KVM_SYSTEM_EVENT_CRASH:
			return VM_STOP_PANIC;
		default:
			log_err("vcpu%u: unknown system event %u", v->id, run->system_event.type);
			return VM_STOP_ERROR;
		}
	case KVM_EXIT_INTERNAL_ERROR:
		if (v->vm->compat)
			return pvm_handle_exit(v->vm->compat, v) == 0 ? 0 : VM_STOP_ERROR; /* it printed why */
		snprintf(what, sizeof(what), "KVM internal error, suberror %u", run->internal.suberror);
		print_unhandled(v, what);
		return VM_STOP_ERROR;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		if (v->vm->compat && pvm_handle_msr_exit(v->vm->compat, v) == 0)
			return 0;
		print_unhandled(v, "unexpected MSR exit");
		return VM_STOP_ERROR;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed, hardware reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		print_unhandled(v, what);
		return VM_STOP_ERROR;
	default:
		snprintf(what, sizeof(what), "unhandled exit %u (%s)", run->exit_reason, kvm_exit_name(run->exit_reason));
		print_unhandled(v, what);
		return VM_STOP_ERROR;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	char name[16];
	sigset_t set;

	snprintf(name, sizeof(name), "kiln-vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	/* Only vCPU threads take the kick signal. */
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (atomic_load(&vm->stop_reason) == VM_RUNNING) {
		int ret, stop;

		if (atomic_load(&vm->pause_req)) {
			vm_vcpu_park(vm); /* PATCH /vm Paused: between exits, never inside KVM_RUN */
			continue;
		}
		ret = ioctl(v->fd, KVM_RUN, 0);
		if (ret < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				v->exits[KVM_EXIT_INTR]++;
				continue;
			}
			log_err("vcpu%u: KVM_RUN: %s", v->id, strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
		v->exits_total++;
		if (v->run->exit_reason < VCPU_EXIT_SLOTS)
			v->exits[v->run->exit_reason]++;
		stop = vcpu_handle_exit(v);
		if (stop == 0 && vm->compat && pvm_vcpu_poll(vm->compat, v) < 0)
			stop = VM_STOP_ERROR;
		if (stop != 0)
			vm_request_stop(vm, (enum vm_stop_reason)stop);
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	struct sigaction sa;
	int ret;

	/* Process-wide disposition, idempotent: a no-op handler without SA_RESTART. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
	ret = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (ret)
		return -ret;
	v->thread_started = true;
	return 0;
}

void vcpu_join(struct vcpu *v)
{
	if (v->thread_started)
		pthread_join(v->thread, NULL);
	v->thread_started = false;
}

/* Where the vCPU stopped: the first thing to know about a guest that hung. */
static void print_stop_state(struct vcpu *v, int fd)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (kvm_ioctl(v->fd, KVM_GET_REGS, &r) < 0 || kvm_ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return;
	dprintf(fd, "vcpu%u: stopped at RIP 0x%llx RSP 0x%llx CS 0x%x CPL %u CR0 0x%llx CR3 0x%llx CR4 0x%llx EFER 0x%llx\n",
		v->id, (unsigned long long)r.rip, (unsigned long long)r.rsp, s.cs.selector, s.cs.dpl,
		(unsigned long long)s.cr0, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
		(unsigned long long)s.efer);
}

void vcpu_print_stats(struct vcpu *v, int fd)
{
	dprintf(fd, "vcpu%u: %llu exits to kiln:", v->id, (unsigned long long)v->exits_total);
	for (unsigned i = 0; i < VCPU_EXIT_SLOTS; i++)
		if (v->exits[i])
			dprintf(fd, " %s=%llu", kvm_exit_name(i), (unsigned long long)v->exits[i]);
	dprintf(fd, "\n");
	kvm_stats_print(v->fd, fd, v->id);
	print_stop_state(v, fd);
	if (v->vm->compat)
		dprintf(fd, "vcpu%u: compat: injected_bp=%llu injected_ud=%llu emulated=%llu syscalls=%llu\n", v->id,
			(unsigned long long)v->compat.injected_bp, (unsigned long long)v->compat.injected_ud,
			(unsigned long long)v->compat.emulated, (unsigned long long)v->compat.syscalls);
}
