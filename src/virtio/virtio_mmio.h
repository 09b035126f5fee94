/* virtio-mmio transport internals that tests and --stats read (the transport itself is virtio_mmio_add() in virtio.h). */
#ifndef KILN_VIRTIO_MMIO_H
#define KILN_VIRTIO_MMIO_H

#include "core/types.h"

struct virtio_dev;

/* VendorID (§4.2.2): "KILN" in little-endian ASCII; Linux's driver accepts any value. */
#define VIRTIO_MMIO_VENDOR_ID 0x4e4c494bu

struct virtio_mmio_stats {
	uint64_t notify_exits;    /* QueueNotify writes that reached kiln (no ioeventfd for them) */
	uint64_t bad_access;      /* §4.2.2.2 violations: not 32-bit aligned, undefined, wrong direction */
	uint64_t ignored_writes;  /* writes the rules say to ignore: queue registers while QueueReady=1, ... */
	bool irqfd;               /* the interrupt goes through KVM_IRQFD (else KVM_IRQ_LINE pulses) */
	unsigned nioeventfd;      /* queues whose QueueNotify KVM handles */
};

/* A snapshot of d's transport counters; -EINVAL if d is not on virtio-mmio. */
int virtio_mmio_get_stats(struct virtio_dev *d, struct virtio_mmio_stats *out);

#endif
