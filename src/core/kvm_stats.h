/* KVM binary statistics (KVM_GET_STATS_FD): the kernel's own per-vCPU exit counters. */
#ifndef KILN_KVM_STATS_H
#define KILN_KVM_STATS_H

/* Print the non-zero cumulative counters of a vCPU fd as one line to out_fd; silent if unsupported. */
void kvm_stats_print(int vcpu_fd, int out_fd, unsigned id);

#endif
