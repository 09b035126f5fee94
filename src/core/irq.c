/* GSI routing (irqchip + MSI routes), irqfd and ioeventfd wrappers for devices. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>
#include "core/irq.h"
#include "core/kvm.h"
#include "core/log.h"

/*
 * Rebuild the table KVM_CREATE_IRQCHIP installed (kvm_setup_default_irq_routing:
 * GSI 0-15 to the PICs and the IOAPIC, 16-23 to the IOAPIC) and append every
 * valid MSI route, then hand it to KVM. Called with r->lock held.
 */
static int commit(struct irq_routing *r)
{
	size_t max = 16 + IRQ_IOAPIC_PINS + r->nmsi, n = 0;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + max * sizeof(t->entries[0]));
	int ret;

	if (!t)
		return -ENOMEM;
	for (unsigned gsi = 0; gsi < IRQ_IOAPIC_PINS; gsi++) {
		if (gsi < 16) {
			t->entries[n].gsi = gsi;
			t->entries[n].type = KVM_IRQ_ROUTING_IRQCHIP;
			t->entries[n].u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
			t->entries[n].u.irqchip.pin = gsi % 8;
			n++;
		}
		t->entries[n].gsi = gsi;
		t->entries[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		t->entries[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		t->entries[n].u.irqchip.pin = gsi;
		n++;
	}
	for (unsigned i = 0; i < r->nmsi; i++) {
		if (!r->msi[i].valid)
			continue;
		t->entries[n].gsi = r->msi[i].gsi;
		t->entries[n].type = KVM_IRQ_ROUTING_MSI;
		t->entries[n].u.msi.address_lo = r->msi[i].addr_lo;
		t->entries[n].u.msi.address_hi = r->msi[i].addr_hi;
		t->entries[n].u.msi.data = r->msi[i].data;
		n++;
	}
	t->nr = (uint32_t)n;
	ret = kvm_ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t);
	free(t);
	if (ret < 0)
		return ret;
	r->commits++;
	return 0;
}

int irq_routing_init(struct irq_routing *r, int vm_fd)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->vm_fd = vm_fd;
	r->next_gsi = IRQ_IOAPIC_PINS;
	if (kvm_cap(vm_fd, KVM_CAP_IRQ_ROUTING) <= 0)
		return -ENOTSUP;
	return 0;
}

void irq_routing_destroy(struct irq_routing *r)
{
	pthread_mutex_destroy(&r->lock);
}

int irq_msi_alloc(struct irq_routing *r)
{
	int gsi;

	pthread_mutex_lock(&r->lock);
	if (r->nmsi >= ARRAY_SIZE(r->msi)) {
		pthread_mutex_unlock(&r->lock);
		return -ENOSPC;
	}
	gsi = (int)r->next_gsi++;
	r->msi[r->nmsi].gsi = (uint32_t)gsi;
	r->msi[r->nmsi].valid = false;
	r->nmsi++;
	pthread_mutex_unlock(&r->lock);
	return gsi;
}

static int msi_update(struct irq_routing *r, unsigned gsi, bool valid, uint32_t lo, uint32_t hi, uint32_t data)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < r->nmsi; i++) {
		if (r->msi[i].gsi != gsi)
			continue;
		if (r->msi[i].valid == valid && (!valid || (r->msi[i].addr_lo == lo && r->msi[i].addr_hi == hi &&
							     r->msi[i].data == data))) {
			ret = 0; /* unchanged: spare KVM a table rebuild */
			break;
		}
		r->msi[i].valid = valid;
		r->msi[i].addr_lo = lo;
		r->msi[i].addr_hi = hi;
		r->msi[i].data = data;
		ret = commit(r);
		if (ret < 0)
			log_warn("KVM_SET_GSI_ROUTING (gsi %u): %s", gsi, strerror(-ret));
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_msi_set(struct irq_routing *r, unsigned gsi, uint32_t addr_lo, uint32_t addr_hi, uint32_t data)
{
	return msi_update(r, gsi, true, addr_lo, addr_hi, data);
}

int irq_msi_clear(struct irq_routing *r, unsigned gsi)
{
	return msi_update(r, gsi, false, 0, 0, 0);
}

int irq_irqfd(int vm_fd, int efd, unsigned gsi, bool assign)
{
	struct kvm_irqfd f = { .fd = (uint32_t)efd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	int ret = kvm_ioctl(vm_fd, KVM_IRQFD, &f);

	return ret < 0 ? ret : 0;
}

int irq_ioeventfd(int vm_fd, int efd, uint64_t addr, uint32_t len, bool pio, bool datamatch, uint64_t value,
		  bool assign)
{
	struct kvm_ioeventfd e = {
		.datamatch = datamatch ? value : 0,
		.addr = addr,
		.len = len,
		.fd = efd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	int ret = kvm_ioctl(vm_fd, KVM_IOEVENTFD, &e);

	return ret < 0 ? ret : 0;
}
