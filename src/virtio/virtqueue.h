/* The device side of a split virtqueue (virtio 1.2 §2.7), hardened against a hostile driver. */
#ifndef KILN_VIRTQUEUE_H
#define KILN_VIRTQUEUE_H

#include "core/types.h"
#include "core/memory.h"
#include "virtio/virtio_ring.h"

/*
 * Most buffers one chain may carry, direct and indirect together. Direct
 * chains are further bounded by the queue size (§2.7.5: the table holds at
 * most size descriptors, so a longer walk is a loop). §2.7.4.1 lets a device
 * set "a reasonable limit of descriptors it will allow in a chain".
 */
#define VQ_MAX_BUFS 1024u
/*
 * Most entries one indirect table may hold. Not the queue size: Linux sizes
 * its indirect tables by the request's segment count, which may exceed a
 * small queue, so the bound is the chain bound instead.
 */
#define VQ_MAX_INDIRECT VQ_MAX_BUFS
/* §2.7.5.2: a driver MUST NOT add a chain longer than 2^32 bytes in total. */
#define VQ_MAX_CHAIN_BYTES (1ull << 32)

/* Why a queue was declared broken; kept for messages and for tests. */
enum vq_fault {
	VQ_FAULT_NONE = 0,
	VQ_FAULT_AVAIL_JUMP,        /* avail->idx ran more than size ahead of the device (or back) */
	VQ_FAULT_INDEX,             /* a head or next index >= the table's entry count */
	VQ_FAULT_LOOP,              /* a walk followed more descriptors than its table holds */
	VQ_FAULT_TOO_MANY_BUFS,     /* more than VQ_MAX_BUFS buffers in one chain */
	VQ_FAULT_ADDR,              /* a buffer or table not wholly inside one RAM region */
	VQ_FAULT_TOO_LARGE,         /* chain longer than VQ_MAX_CHAIN_BYTES */
	VQ_FAULT_READ_AFTER_WRITE,  /* a device-readable buffer after a device-writable one */
	VQ_FAULT_INDIRECT_FEATURE,  /* INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated */
	VQ_FAULT_INDIRECT_NEXT,     /* INDIRECT together with NEXT */
	VQ_FAULT_INDIRECT_NESTED,   /* INDIRECT inside an indirect table */
	VQ_FAULT_INDIRECT_LEN,      /* indirect table length 0 or not a multiple of 16 */
	VQ_FAULT_INDIRECT_SIZE,     /* indirect table with more than VQ_MAX_INDIRECT entries */
};

struct vq_stats {
	uint64_t chains;            /* chains taken by vq_pop */
	uint64_t pushed;            /* used elements published by vq_push */
	uint64_t faults;            /* hostile rings seen (each one sets needs_reset) */
	uint64_t notify_sent;       /* vq_should_notify said yes */
	uint64_t notify_suppressed; /* vq_should_notify said no: the driver asked for quiet */
};

/*
 * One split virtqueue. Everything here lives in host memory and is written
 * only by the device: the indices are never read back from the guest. A queue
 * is driven by one thread at a time (the owning device serialises).
 */
struct vq {
	const struct guest_mem *mem;
	uint16_t size;              /* entries, a power of two in 1..32768 */
	gpa_t desc, avail, used;    /* guest-physical addresses of the three areas */
	bool ready;                 /* vq_configure succeeded and no vq_reset since */
	bool event_idx;             /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;              /* VIRTIO_F_INDIRECT_DESC negotiated */

	/* Host views of the three areas, checked over their whole length at configure. */
	const uint8_t *desc_table;
	struct vring_avail *avail_ring;
	struct vring_used *used_ring;

	uint16_t last_avail;        /* next available-ring slot the device will take */
	uint16_t shadow_avail;      /* avail->idx as last read: slots before it are published (checked) */
	uint16_t used_idx;          /* the device's own copy of used->idx */
	uint16_t signalled_used;    /* used_idx when vq_should_notify last ran */

	bool needs_reset;           /* hostile ring seen: refuse until vq_reset (§2.1.2) */
	enum vq_fault fault;        /* the first reason needs_reset was set */
	struct vq_stats stats;
};

/* One buffer of a chain: host view of [addr, addr+len), checked by mem_gpa(). */
struct vq_buf {
	void *host;
	uint32_t len;
	bool write;                 /* device-writable */
};

/*
 * A chain taken from the available ring. Readable buffers come first
 * (bufs[0..nread)), writable ones after (bufs[nread..nbufs)); zero-length
 * descriptors are accepted but not listed. Large: embed it or allocate it.
 */
struct vq_chain {
	uint16_t head;              /* pass to vq_push when done */
	unsigned nbufs;
	unsigned nread;
	uint64_t total_read;        /* bytes in readable buffers */
	uint64_t total_write;       /* bytes in writable buffers */
	struct vq_buf bufs[VQ_MAX_BUFS];
};

/*
 * Check and start a queue: size a power of two in 1..32768, desc/avail/used
 * aligned 16/2/4 (§2.7), inside RAM over their whole length, used not
 * overlapping the driver's two areas; features select EVENT_IDX and
 * INDIRECT_DESC. 0, or -EINVAL with q left untouched. The guest_mem must
 * stay mapped while the queue is ready (host views are cached).
 */
int __must_check vq_configure(struct vq *q, const struct guest_mem *m, uint32_t size,
			      gpa_t desc, gpa_t avail, gpa_t used, uint64_t features);

/* Forget everything (device reset): the queue is not ready and not broken. */
void vq_reset(struct vq *q);

/*
 * Take the next available chain into c. 0: c holds it; -EAGAIN: ring empty;
 * -EIO: the ring is hostile (now or earlier): needs_reset is set, the device
 * must set DEVICE_NEEDS_RESET (§2.1.2), and every later call returns -EIO;
 * -EINVAL: queue not ready. On error c's contents are unspecified. The guest
 * can keep a ring non-empty forever: drain at most q->size chains per pass.
 */
int __must_check vq_pop(struct vq *q, struct vq_chain *c);

/*
 * Return chain `head` with `written` bytes written into its writable buffers:
 * write the used element, then publish used->idx. 0; -EINVAL if the queue is
 * not ready, head >= size or nothing is in flight; -EIO after a fault.
 */
int __must_check vq_push(struct vq *q, uint16_t head, uint32_t written);

/*
 * Return n chains at once and publish used->idx once, after all n elements
 * are written: a driver that reads one element (virtio-net's mergeable rx
 * buffers, §5.1.6.4: num_buffers) sees the whole group or none of it.
 * 0; -EINVAL if n exceeds the chains in flight or a head >= size; -EIO after a fault.
 */
int __must_check vq_push_many(struct vq *q, const uint16_t *heads, const uint32_t *written, unsigned n);

/*
 * Give back the last n popped chains, not yet pushed (a device that popped
 * buffers for a packet they turned out too small for). The next vq_pop reads
 * those ring slots again and re-walks their chains from scratch.
 */
void vq_unpop(struct vq *q, unsigned n);

/* After vq_push: does the driver want a used-buffer notification now (§2.7.7.2)? */
bool vq_should_notify(struct vq *q);

/*
 * Ask the driver not to kick while the device is polling the ring (§2.7.10):
 * used->flags NO_NOTIFY, or with EVENT_IDX avail_event one behind last_avail.
 */
void vq_disable_notify(struct vq *q);

/* Has the driver made buffers available that vq_pop has not taken? One index load, no side effects. */
bool vq_avail_pending(const struct vq *q);

/*
 * Ask for kicks again. True when buffers are already available, so the
 * caller must poll once more (else a buffer added meanwhile goes unseen).
 */
bool vq_enable_notify(struct vq *q);

/* EVENT_IDX only: kick me once avail->idx passes idx (§2.7.10); no-op otherwise. */
void vq_set_avail_event(struct vq *q, uint16_t idx);

/* A short human-readable reason for a fault. */
const char *vq_fault_str(enum vq_fault f);

/*
 * §2.7.7.2 event-index test: with the used index moving from old_idx to
 * new_idx, did it pass event (i.e. was entry `event` written)? All
 * arithmetic is modulo 2^16, so it holds across the 65535 -> 0 wrap.
 */
static inline bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

#endif
