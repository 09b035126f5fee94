/* A fake /dev/kvm for unit tests: kvm_ioctl/kvm_cap record what kiln asked for (GSI routes, irqfds, ioeventfds). */
#ifndef KILN_STUB_KVM_H
#define KILN_STUB_KVM_H

#include <linux/kvm.h>
#include "core/types.h"

#define STUB_KVM_MAX_IOEVENTFDS 64
#define STUB_KVM_MAX_ROUTES 128

struct stub_kvm {
	unsigned long fail_req;      /* an ioctl request that fails (0: none) */
	int fail_errno;              /* ... with this errno */
	unsigned set_routing;        /* KVM_SET_GSI_ROUTING calls */
	unsigned nroutes;            /* entries of the last table */
	struct kvm_irq_routing_entry routes[STUB_KVM_MAX_ROUTES];
	unsigned irqfd_assign, irqfd_deassign;
	/* Every irqfd assigned, in order (deassigned ones are marked). */
	unsigned nirqfd;
	struct { int fd; unsigned gsi; bool active; } irqfd[STUB_KVM_MAX_ROUTES];
	/* Currently assigned ioeventfds. */
	unsigned nioev;
	struct kvm_ioeventfd ioev[STUB_KVM_MAX_IOEVENTFDS];
	unsigned ioev_assign, ioev_deassign;
};

/* The process's fake KVM (unit tests are single-threaded where they touch it); reset clears it. */
struct stub_kvm *stub_kvm(void);
void stub_kvm_reset(void);
/* The MSI route of gsi in the last committed table, or NULL. */
const struct kvm_irq_routing_entry *stub_kvm_route(unsigned gsi);
/* The assigned ioeventfd at addr, or NULL. */
const struct kvm_ioeventfd *stub_kvm_ioeventfd(uint64_t addr);

#endif
