/* KVM binary statistics (KVM_GET_STATS_FD, Documentation/virt/kvm/api.rst 4.133): exits seen by the kernel. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "core/kvm_stats.h"
#include "core/types.h"

/*
 * The kernel counts every VM exit (VMCS/VMCB exit reason) it handles itself;
 * kiln only sees the ones forwarded to user space. These counters show the rest.
 */
void kvm_stats_print(int vcpu_fd, int out_fd, unsigned id)
{
#ifdef KVM_GET_STATS_FD
	struct kvm_stats_header h;
	char *descs = NULL;
	int sfd;
	size_t dsz;

	sfd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (sfd < 0)
		return;
	if (pread(sfd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.num_desc == 0 || h.num_desc > 4096 ||
	    h.name_size == 0 || h.name_size > 1024)
		goto out;
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = calloc(h.num_desc, dsz);
	if (!descs || pread(sfd, descs, dsz * h.num_desc, h.desc_offset) != (ssize_t)(dsz * h.num_desc))
		goto out;
	dprintf(out_fd, "vcpu%u: kernel:", id);
	for (uint32_t i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * dsz);
		uint64_t val;

		if ((d->flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE || d->size != 1)
			continue;
		if (pread(sfd, &val, sizeof(val), h.data_offset + d->offset) != (ssize_t)sizeof(val) || val == 0)
			continue;
		d->name[h.name_size - 1] = '\0';
		dprintf(out_fd, " %s=%llu", d->name, (unsigned long long)val);
	}
	dprintf(out_fd, "\n");
out:
	free(descs);
	close(sfd);
#else
	(void)vcpu_fd; (void)out_fd; (void)id;
#endif
}
