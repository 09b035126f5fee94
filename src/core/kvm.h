/* Thin KVM wrappers: opening /dev/kvm with errors that name the fix, capability checks. */
#ifndef KILN_KVM_H
#define KILN_KVM_H

#include <linux/kvm.h>
#include "core/types.h"

/*
 * Open `path` (normally /dev/kvm) and check the API version. On failure
 * returns -errno and writes a one-line message naming the fix into msg.
 */
int kvm_open(const char *path, char *msg, size_t msglen);

/* One line for an open() errno on the KVM device (pure; unit-tested). */
void kvm_open_error(const char *path, int err, char *msg, size_t msglen);

/* KVM_CHECK_EXTENSION on fd (system or VM); <= 0 means unsupported. */
int kvm_cap(int fd, long cap);

/* ioctl that retries on EINTR; returns the ioctl result or -errno. */
int kvm_ioctl(int fd, unsigned long req, void *arg);

/* The host's supported CPUID (caller frees), or NULL with errno set. */
struct kvm_cpuid2 *kvm_supported_cpuid(int kvm_fd);

#endif
