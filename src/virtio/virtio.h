/* The transport-independent virtio device model (virtio 1.2 §2-§3): status, features, queues, interrupts. */
#ifndef KILN_VIRTIO_H
#define KILN_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include "core/types.h"
#include "virtio/virtqueue.h"

struct vm;
struct virtio_dev;

/* Device status bits (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE        0x01
#define VIRTIO_STATUS_DRIVER             0x02
#define VIRTIO_STATUS_DRIVER_OK          0x04
#define VIRTIO_STATUS_FEATURES_OK        0x08
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED             0x80

/* Transport-independent feature bits kiln offers (§6). */
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED     34

/* Device IDs (§5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4

/* ISR status bits (§4.1.4.5, §4.2.2 InterruptStatus). */
#define VIRTIO_ISR_QUEUE  0x1
#define VIRTIO_ISR_CONFIG 0x2

/* MSI-X "no vector" (§4.1.4.3). */
#define VIRTIO_MSI_NO_VECTOR 0xffff

#define VIRTIO_MAX_QUEUES 16

/* What the driver wrote about one queue through the transport, before it goes live. */
struct virtio_queue_cfg {
	uint16_t size;           /* driver's choice, <= the device's max */
	uint16_t msix_vector;    /* PCI only */
	bool enabled;            /* queue_enable / QueueReady */
	uint64_t desc, avail, used;
};

/*
 * The device half. Every callback except destroy/print_stats runs with
 * d->lock held. config_read/config_write get an offset and length already
 * checked against config_size. queue_notify runs on the I/O thread.
 */
struct virtio_dev_ops {
	uint32_t config_size;     /* bytes of device-specific configuration (§4.x "device configuration layout") */
	void (*config_read)(struct virtio_dev *d, uint32_t off, void *data, uint32_t len);
	void (*config_write)(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len); /* may be NULL */
	/* DRIVER_OK was set: queues are live. 0, or -errno puts the device into NEEDS_RESET. May be NULL. */
	int (*activate)(struct virtio_dev *d);
	/* Queue q has new buffers (a kick). Drain at most the queue size per call. */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	/* The driver reset the device: forget in-flight work. May be NULL. */
	void (*reset)(struct virtio_dev *d);
	/*
	 * VM teardown: free priv, and d too if the device embeds it (called
	 * last, d->lock already destroyed; the I/O thread has stopped).
	 */
	void (*destroy)(struct virtio_dev *d);
	/* --stats: one line of device counters. May be NULL. */
	void (*print_stats)(struct virtio_dev *d, int fd);
	/*
	 * --io-poll: may the I/O thread poll queue q (take its new buffers
	 * without a kick)? NULL: the device is never polled. queue_notify must
	 * then end a drain with virtio_queue_rearm(), not vq_enable_notify().
	 */
	bool (*queue_pollable)(struct virtio_dev *d, unsigned q);
};

/* The transport half: how the device raises interrupts. Set by the transport. */
struct virtio_transport_ops {
	/* Used-buffer notification for queue q (§2.3.1); ISR already updated. */
	void (*notify_queue)(struct virtio_dev *d, unsigned q);
	/* Configuration change notification (§2.3.2); ISR already updated. */
	void (*notify_config)(struct virtio_dev *d);
};

struct virtio_dev {
	struct vm *vm;
	char name[24];               /* "virtio-blk0": messages and --stats */
	uint16_t device_id;          /* VIRTIO_ID_* */
	uint64_t host_features;      /* offered; virtio_dev_init adds VERSION_1 (+ ring features) */
	uint64_t guest_features;     /* what the driver wrote; valid once FEATURES_OK is set */
	uint32_t host_features_sel;  /* transport feature-select registers */
	uint32_t guest_features_sel;
	uint8_t status;
	_Atomic uint8_t isr;          /* VIRTIO_ISR_*; read-to-clear on PCI, acked on MMIO */
	uint32_t config_generation;
	uint16_t config_msix_vector; /* PCI only */
	unsigned nqueues;
	uint16_t queue_max;          /* largest queue size the device accepts */
	uint16_t queue_sel;
	struct virtio_queue_cfg qcfg[VIRTIO_MAX_QUEUES];
	struct vq vq[VIRTIO_MAX_QUEUES];  /* live rings (vq_configure'd when enabled) */
	int kick_fd[VIRTIO_MAX_QUEUES];   /* eventfd per queue: the transport's ioeventfd, watched by the I/O thread */
	struct virtio_kick_ctx { struct virtio_dev *d; unsigned q; } kick_ctx[VIRTIO_MAX_QUEUES];

	const struct virtio_dev_ops *ops;
	void *priv;                      /* device state */
	const struct virtio_transport_ops *tops;
	void *transport;                 /* transport state */

	pthread_mutex_t lock;            /* serialises transport register access and queue work */
	bool reported;                   /* the NEEDS_RESET message was printed */
	bool polled;                     /* a poller is registered with the I/O loop (--io-poll) */
	/* Notifications of q are off and the I/O thread's poller owns re-enabling them (--io-poll). */
	bool polling[VIRTIO_MAX_QUEUES];
	struct {
		uint64_t poll_hits;          /* poll passes that found new buffers: kicks avoided */
		uint64_t poll_chains;        /* chains taken by polling, without a kick */
		uint64_t arm_chains;         /* chains found by the re-check after notifications came back on */
		uint64_t kicks;              /* queue notifications handled */
		uint64_t irqs;               /* interrupts raised */
		uint64_t resets;             /* driver resets */
		uint64_t needs_reset;        /* times the device declared NEEDS_RESET */
	} stats;
};

/*
 * Set up d (the caller fills nothing else first): name, ID, feature bits,
 * queue count and max size, ops, priv. Creates the kick eventfds and adds
 * them to vm's I/O loop. VIRTIO_F_VERSION_1, INDIRECT_DESC and EVENT_IDX are
 * offered on top of `features`. 0 or -errno.
 */
int __must_check virtio_dev_init(struct virtio_dev *d, struct vm *vm, const char *name, uint16_t device_id,
				 uint64_t features, unsigned nqueues, uint16_t queue_max,
				 const struct virtio_dev_ops *ops, void *priv);
/* Undo virtio_dev_init, then call ops->destroy last (it may free d). */
void virtio_dev_destroy(struct virtio_dev *d);

/*
 * Transport register semantics shared by PCI and MMIO. Callers hold d->lock.
 */
uint32_t virtio_read_host_features(struct virtio_dev *d);           /* 32 bits at host_features_sel */
void virtio_write_guest_features(struct virtio_dev *d, uint32_t v); /* 32 bits at guest_features_sel */
uint32_t virtio_read_guest_features(struct virtio_dev *d);
/* Driver writes device status (§2.1.2, §3.1.1): 0 resets; FEATURES_OK is refused for bad features; DRIVER_OK activates. */
void virtio_write_status(struct virtio_dev *d, uint8_t status);
/* Enable queue q from d->qcfg[q] (queue_enable=1 / QueueReady=1). 0 or -EINVAL (the device goes NEEDS_RESET). */
int virtio_queue_enable(struct virtio_dev *d, unsigned q);
/* Device-specific config space: bounds-checked (out of range reads 0, writes dropped). */
void virtio_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len);
void virtio_config_write(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len);

/*
 * A device drained queue q (vq_pop said -EAGAIN): ask for kicks again and
 * re-check (§2.7.10), unless the I/O thread is polling q — then kicks stay
 * off and the poller re-arms before the thread sleeps. True when buffers
 * arrived meanwhile: pop again. d->lock held.
 */
bool virtio_queue_rearm(struct virtio_dev *d, unsigned q);

/* A kick arrived for queue q without ioeventfd (the transport saw the notify write): signal kick_fd[q]. */
void virtio_kick(struct virtio_dev *d, unsigned q);

/*
 * Device-side helpers, d->lock held.
 */
/* After vq_push()es on q: raise the used-buffer interrupt if the driver wants one (§2.7.7). */
void virtio_used(struct virtio_dev *d, unsigned q);
/*
 * The driver broke the rules (hostile ring, bad request layout): set
 * DEVICE_NEEDS_RESET and send a configuration change notification (§2.1.2),
 * print `why` once. The device stops processing until the driver resets it.
 */
void virtio_fail(struct virtio_dev *d, const char *why);
/* Device config changed (§2.3.2): bump the generation and notify. */
void virtio_config_changed(struct virtio_dev *d);
/* True when the device may process queue q (DRIVER_OK, enabled, not broken). */
bool virtio_queue_live(const struct virtio_dev *d, unsigned q);
/* One --stats line with the transport-independent counters and every queue's. */
void virtio_print_stats(struct virtio_dev *d, int fd);

/*
 * Transports. Both take an initialised d and make it visible to the guest;
 * the VM owns it afterwards (virtio_dev_destroy at teardown). On error
 * nothing stays registered and the caller still owns d (virtio_dev_destroy it).
 */
int __must_check virtio_pci_add(struct vm *vm, struct virtio_dev *d);
int __must_check virtio_mmio_add(struct vm *vm, struct virtio_dev *d);
/* The transport the user chose (--virtio-transport, default PCI). */
int __must_check virtio_add(struct vm *vm, struct virtio_dev *d);

#endif
