/* kvm_pvm compatibility layer: what the core calls to run a stock Linux guest on a kvm_pvm host. */
#ifndef KILN_COMPAT_PVM_H
#define KILN_COMPAT_PVM_H

#include <stdbool.h>
#include <linux/kvm.h>
#include "core/types.h"

struct vm;
struct vcpu;
struct pvm_compat;

/*
 * Guest-physical page the syscall trap points the guest's vsyscall PTE at
 * (docs/compat-pvm.md). It must stay outside every KVM memslot so that a
 * user-mode instruction fetch there exits as an emulation failure: the core
 * must never map RAM or ROM over [PVM_TRAP_GPA, PVM_TRAP_GPA + 4 KiB). It lies
 * in the 32-bit MMIO hole; the probe measured this exact address.
 */
#define PVM_TRAP_GPA 0xf0000000ULL

/*
 * True when the host's /dev/kvm is provided by kvm_pvm: /sys/module/kvm_pvm
 * exists (and is "live" if it is a loadable module), no kvm_intel/kvm_amd
 * module is live, and a built-in kvm_intel/kvm_amd does not count when the CPU
 * has no vmx/svm flag in /proc/cpuinfo (only one vendor module can own KVM).
 */
bool pvm_detect(void);

/*
 * Allocate the compat state for vm. Call after vm->ncpus and guest memory are
 * set up and before any vCPU runs. 0 or -errno; *out is NULL on error.
 */
int __must_check pvm_compat_create(struct vm *vm, struct pvm_compat **out);
void pvm_compat_destroy(struct pvm_compat *c);

/*
 * VM-fd setup for the syscall trap: asks KVM to exit to kiln on the guest's
 * RDMSR/WRMSR of MSR_LSTAR (KVM_CAP_X86_USER_SPACE_MSR + KVM_X86_SET_MSR_FILTER).
 * Call once after pvm_compat_create(), before the first KVM_RUN. When the host
 * lacks the capability it falls back to polling (pvm_vcpu_poll) and still
 * returns 0; a negative value means a broken argument.
 */
int pvm_vm_setup(struct pvm_compat *c);

/* Kernel command-line words kiln appends for a Linux guest on kvm_pvm (static string, no leading space). */
const char *pvm_cmdline_extra(void);

/*
 * Clear CPUID bits that would lead the guest into instructions the host's
 * emulator refuses. Call on the table passed to KVM_SET_CPUID2. Pure.
 */
void pvm_mask_cpuid(struct kvm_cpuid2 *cpuid);

/*
 * Handle a KVM_EXIT_INTERNAL_ERROR on v (emulation failure): complete the
 * syscall trap, inject the architectural exception or emulate the refused
 * instruction. 0: handled, resume KVM_RUN. Negative: not handled; one
 * diagnostic line was printed and the core should stop with KILN_EXIT_ERROR.
 */
int pvm_handle_exit(struct pvm_compat *c, struct vcpu *v);

/*
 * Handle KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR (only MSR_LSTAR is filtered):
 * fills run->msr.data / run->msr.error. 0: resume KVM_RUN; negative: stop.
 */
int pvm_handle_msr_exit(struct pvm_compat *c, struct vcpu *v);

/*
 * Call after every exit of v (from v's thread). A no-op once the syscall trap
 * is installed on v; before that it finishes the trap's setup where the MSR
 * filter could not (no filter, or the vsyscall page was not mapped yet). 0 or
 * -errno (a failed KVM ioctl; the core may stop the VM).
 */
int pvm_vcpu_poll(struct pvm_compat *c, struct vcpu *v);

/* Load text symbols from a Linux System.map for diagnostics; 0 or -errno. Optional. */
int pvm_load_symbols(struct pvm_compat *c, const char *system_map_path);

#endif
