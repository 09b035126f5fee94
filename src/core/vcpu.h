/* vCPUs: one thread per vCPU looping on KVM_RUN, exit dispatch and per-reason counters. */
#ifndef KILN_VCPU_H
#define KILN_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <linux/kvm.h>
#include "core/types.h"

struct vm;

/* Userspace exit reasons are KVM_EXIT_* (< 64); counted per vCPU. */
#define VCPU_EXIT_SLOTS 64

/* Counters of the compat layer, per vCPU (only non-zero on kvm_pvm). */
struct vcpu_compat_stats {
	uint64_t injected_bp;     /* int3 -> #BP */
	uint64_t injected_ud;     /* ud2 and refused opcodes -> #UD */
	uint64_t emulated;        /* instructions completed by kiln */
	uint64_t syscalls;        /* user syscalls completed by the syscall trap */
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	_Atomic bool thread_started; /* read by other threads that kick this vCPU */
	uint64_t exits[VCPU_EXIT_SLOTS];
	uint64_t exits_total;
	struct vcpu_compat_stats compat;
};

/* Create vCPU `id` (KVM_CREATE_VCPU, mmap kvm_run); 0 or -errno. */
int vcpu_create(struct vm *vm, struct vcpu *v, unsigned id);
void vcpu_destroy(struct vcpu *v);

/* Start / join the vCPU thread. */
int vcpu_start(struct vcpu *v);
void vcpu_join(struct vcpu *v);

/* Make the vCPU leave KVM_RUN soon (signal + immediate_exit). */
void vcpu_kick(struct vcpu *v);

/*
 * Handle one exit that KVM_RUN returned (a plain function of the exit and the
 * VM, so unit tests can feed synthetic exits). Returns 0 to keep running or a
 * stop reason (enum vm_stop_reason) to stop the VM.
 */
int vcpu_handle_exit(struct vcpu *v);

/* Name of a KVM_EXIT_* reason for messages and --stats. */
const char *kvm_exit_name(unsigned reason);

/* Print the exit counters (and the kernel's binary stats when available) to fd. */
void vcpu_print_stats(struct vcpu *v, int fd);

#endif
