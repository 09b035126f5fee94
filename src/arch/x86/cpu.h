/* x86 vCPU state at power-on: CPUID, MSRs, LAPIC LINT pins, FPU, and boot-entry registers. */
#ifndef KILN_X86_CPU_H
#define KILN_X86_CPU_H

#include <linux/kvm.h>
#include "core/types.h"
#include "arch/x86/boot.h"

/*
 * Patch a copy of KVM_GET_SUPPORTED_CPUID for vCPU `id` of `ncpus`: APIC ids
 * (leaf 1 EBX, leaf 0xB/0x1F x2APIC ids), topology (one core per vCPU, one
 * thread per core, one package), the hypervisor bit. Pure; unit-tested.
 */
void x86_cpuid_patch(struct kvm_cpuid2 *c, unsigned id, unsigned ncpus);

/* Find an entry (function, index) in c, or NULL. */
struct kvm_cpuid_entry2 *x86_cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx);

/* Power-on state for vCPU fd: CPUID, MSRs, FPU, LAPIC LINT0=ExtINT LINT1=NMI. 0 or -errno. */
int x86_vcpu_init(int vcpu_fd, const struct kvm_cpuid2 *cpuid);

/* Registers for the boot vCPU to enter the guest as `b` says (Linux 64-bit boot protocol or PVH). */
int x86_vcpu_boot_regs(int vcpu_fd, const struct boot_result *b);

/* Fill sregs/regs for entry kind (pure; unit-tested). */
void x86_boot_sregs(struct kvm_sregs *s, const struct boot_result *b);
void x86_boot_regs(struct kvm_regs *r, const struct boot_result *b);

#endif
