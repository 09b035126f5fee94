/* A fake /dev/kvm for unit tests: implements core/kvm.h's ioctl wrappers by recording, never touching a device. */
#include <errno.h>
#include <string.h>
#include "core/kvm.h"
#include "stub_kvm.h"

struct stub_kvm *stub_kvm(void)
{
	/* Test-only state: the fake stands in for a kernel, one per process. */
	static struct stub_kvm k;
	return &k;
}

void stub_kvm_reset(void)
{
	memset(stub_kvm(), 0, sizeof(struct stub_kvm));
}

const struct kvm_irq_routing_entry *stub_kvm_route(unsigned gsi)
{
	struct stub_kvm *k = stub_kvm();

	for (unsigned i = 0; i < k->nroutes; i++)
		if (k->routes[i].gsi == gsi && k->routes[i].type == KVM_IRQ_ROUTING_MSI)
			return &k->routes[i];
	return NULL;
}

const struct kvm_ioeventfd *stub_kvm_ioeventfd(uint64_t addr)
{
	struct stub_kvm *k = stub_kvm();

	for (unsigned i = 0; i < k->nioev; i++)
		if (k->ioev[i].addr == addr)
			return &k->ioev[i];
	return NULL;
}

static int ioeventfd(struct stub_kvm *k, const struct kvm_ioeventfd *e)
{
	if (!(e->flags & KVM_IOEVENTFD_FLAG_DEASSIGN)) {
		/* KVM refuses a second ioeventfd on the same address and length (-EEXIST). */
		if (stub_kvm_ioeventfd(e->addr) || k->nioev == STUB_KVM_MAX_IOEVENTFDS)
			return -EEXIST;
		k->ioev[k->nioev++] = *e;
		k->ioev_assign++;
		return 0;
	}
	for (unsigned i = 0; i < k->nioev; i++) {
		if (k->ioev[i].addr == e->addr && k->ioev[i].fd == e->fd) {
			k->ioev[i] = k->ioev[--k->nioev];
			k->ioev_deassign++;
			return 0;
		}
	}
	return -ENOENT;
}

int kvm_ioctl(int fd, unsigned long req, void *arg)
{
	struct stub_kvm *k = stub_kvm();

	if (k->fail_req && req == k->fail_req)
		return -k->fail_errno;
	switch (req) {
	case KVM_SET_GSI_ROUTING: {
		const struct kvm_irq_routing *t = arg;

		if (t->nr > STUB_KVM_MAX_ROUTES)
			return -EINVAL;
		k->set_routing++;
		k->nroutes = t->nr;
		memcpy(k->routes, t->entries, t->nr * sizeof(t->entries[0]));
		return 0;
	}
	case KVM_IRQFD: {
		const struct kvm_irqfd *f = arg;

		if (f->flags & KVM_IRQFD_FLAG_DEASSIGN) {
			for (unsigned i = 0; i < k->nirqfd; i++)
				if (k->irqfd[i].active && k->irqfd[i].fd == (int)f->fd && k->irqfd[i].gsi == f->gsi) {
					k->irqfd[i].active = false;
					k->irqfd_deassign++;
					return 0;
				}
			return -ENOENT;
		}
		if (k->nirqfd == STUB_KVM_MAX_ROUTES)
			return -ENOSPC;
		k->irqfd[k->nirqfd].fd = (int)f->fd;
		k->irqfd[k->nirqfd].gsi = f->gsi;
		k->irqfd[k->nirqfd].active = true;
		k->nirqfd++;
		k->irqfd_assign++;
		return 0;
	}
	case KVM_IOEVENTFD:
		return ioeventfd(k, arg);
	default:
		return -ENOTTY;
	}
}

int kvm_cap(int fd, long cap)
{
	return 1;
}
