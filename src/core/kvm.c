/* Thin KVM wrappers: opening /dev/kvm with errors that name the fix, capability checks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include "core/kvm.h"

void kvm_open_error(const char *path, int err, char *msg, size_t msglen)
{
	switch (err) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		snprintf(msg, msglen, "%s: no KVM device (%s): load kvm_intel or kvm_amd (modprobe kvm_intel), "
			 "enable virtualization in the firmware, or run on a host that exposes /dev/kvm",
			 path, strerror(err));
		break;
	case EACCES:
	case EPERM:
		snprintf(msg, msglen, "%s: permission denied: add your user to the 'kvm' group "
			 "(usermod -aG kvm $USER, then log in again) or run as root", path);
		break;
	default:
		snprintf(msg, msglen, "%s: cannot open: %s", path, strerror(err));
	}
}

int kvm_ioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	do {
		ret = ioctl(fd, req, arg);
	} while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : ret;
}

int kvm_open(const char *path, char *msg, size_t msglen)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int ver;

	if (fd < 0) {
		int err = errno;
		kvm_open_error(path, err, msg, msglen);
		return -err;
	}
	ver = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		snprintf(msg, msglen, "%s: KVM API version %d, kiln needs %d: use a Linux kernel with the stable KVM API (2.6.22+)",
			 path, ver, KVM_API_VERSION);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int kvm_cap(int fd, long cap)
{
	return ioctl(fd, KVM_CHECK_EXTENSION, cap);
}

struct kvm_cpuid2 *kvm_supported_cpuid(int kvm_fd)
{
	/* Grow until KVM stops answering E2BIG (bounded: 4096 entries is far past any CPU). */
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	errno = E2BIG;
	return NULL;
}
