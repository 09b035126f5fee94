/* Interrupt and notification plumbing into KVM: GSI routing with MSI routes, irqfd, ioeventfd. */
#ifndef KILN_IRQ_H
#define KILN_IRQ_H

#include <pthread.h>
#include "core/types.h"

struct vm;

/* IOAPIC pins (GSIs 0-23); MSI routes are allocated above them. */
#define IRQ_IOAPIC_PINS 24
#define IRQ_MAX_ROUTES  1024

/* Legacy ISA IRQs free for devices (not timer, keyboard, cascade, COM1, RTC, FPU, IDE). */
#define IRQ_FREE_LEGACY { 5, 6, 7, 9, 10, 11, 12, 15 }

/*
 * KVM's GSI routing table, held in full because KVM_SET_GSI_ROUTING replaces
 * the whole table (api.rst 4.52): the irqchip routes KVM_CREATE_IRQCHIP set up
 * (PIC 0-15, IOAPIC 0-23) plus one MSI route per allocated GSI.
 */
struct irq_routing {
	pthread_mutex_t lock;     /* MSI-X table writes arrive on any vCPU thread */
	int vm_fd;
	unsigned next_gsi;        /* next MSI GSI to hand out */
	unsigned nmsi;
	struct {
		uint32_t gsi;
		uint32_t addr_lo, addr_hi, data;
		bool valid;       /* a route exists in KVM for gsi */
	} msi[IRQ_MAX_ROUTES - IRQ_IOAPIC_PINS];
	uint64_t commits;         /* KVM_SET_GSI_ROUTING calls, for --stats */
};

/* 0 or -errno (KVM_CAP_IRQ_ROUTING missing). */
int __must_check irq_routing_init(struct irq_routing *r, int vm_fd);
void irq_routing_destroy(struct irq_routing *r);

/* A fresh GSI for an MSI (no route yet: an irqfd on it delivers nothing). -ENOSPC when out. */
int irq_msi_alloc(struct irq_routing *r);

/*
 * Point gsi at an MSI message (address/data as the guest wrote them into an
 * MSI-X table entry, PCI 3.0 §6.8.2) and commit the table to KVM. 0 or -errno.
 */
int irq_msi_set(struct irq_routing *r, unsigned gsi, uint32_t addr_lo, uint32_t addr_hi, uint32_t data);

/* Remove gsi's route (vector disabled); 0 or -errno. */
int irq_msi_clear(struct irq_routing *r, unsigned gsi);

/* KVM_IRQFD: writing 1 to efd raises gsi (edge) without leaving the kernel. 0 or -errno. */
int irq_irqfd(int vm_fd, int efd, unsigned gsi, bool assign);

/*
 * KVM_IOEVENTFD: a guest write of len bytes to addr (PIO if pio) signals efd
 * instead of exiting to kiln; with datamatch only writes of that value do.
 * 0 or -errno (the caller falls back to handling the exit itself).
 */
int irq_ioeventfd(int vm_fd, int efd, uint64_t addr, uint32_t len, bool pio, bool datamatch, uint64_t value,
		  bool assign);

#endif
