/* The guest-visible split-virtqueue layouts and ring/feature constants of virtio 1.2 (§2.7, §6). */
#ifndef KILN_VIRTIO_RING_H
#define KILN_VIRTIO_RING_H

#include <stddef.h>
#include <stdint.h>

/*
 * Every multi-byte field below is little-endian in guest memory (virtio 1.2
 * §2.7: the non-legacy interface is little-endian). The structs describe the
 * layout only; kiln never dereferences a guest pointer of these types
 * directly: virtqueue.c reads guest fields once, through atomics or a
 * READ_ONCE-style copy, and converts with le*toh().
 */

/* Descriptor flags (§2.7.5). */
#define VIRTQ_DESC_F_NEXT     1u /* the buffer continues in `next` */
#define VIRTQ_DESC_F_WRITE    2u /* device-writable (else device-readable) */
#define VIRTQ_DESC_F_INDIRECT 4u /* addr/len name a table of descriptors (§2.7.5.3) */

/* Available ring flags (§2.7.7): the driver does not want used-buffer notifications. */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
/* Used ring flags (§2.7.10): the device does not want available-buffer notifications. */
#define VIRTQ_USED_F_NO_NOTIFY 1u

/*
 * Reserved feature bits (§6). The spec spells the first two VIRTIO_F_*; kiln
 * keeps the historical VIRTIO_RING_F_* names for the ring features.
 */
#define VIRTIO_RING_F_INDIRECT_DESC 28 /* VIRTIO_F_INDIRECT_DESC: indirect tables, §2.7.5.3 */
#define VIRTIO_RING_F_EVENT_IDX     29 /* VIRTIO_F_EVENT_IDX: used_event/avail_event, §2.7.7, §2.7.10 */
#define VIRTIO_F_VERSION_1          32 /* non-legacy device: little-endian rings */

/* Largest queue size a split virtqueue can have (§2.7: a power of two that fits 16 bits). */
#define VIRTQ_MAX_SIZE 32768u

/* One descriptor, in the table or in an indirect table (§2.7.5). */
struct vring_desc {
	uint64_t addr;   /* guest-physical address of the buffer */
	uint32_t len;    /* bytes */
	uint16_t flags;  /* VIRTQ_DESC_F_* */
	uint16_t next;   /* index of the next descriptor if flags & NEXT */
};

/* The available ring, written by the driver (§2.7.6); used_event follows ring[size]. */
struct vring_avail {
	uint16_t flags;  /* VIRTQ_AVAIL_F_* */
	uint16_t idx;    /* free-running: where the driver puts the next head */
	uint16_t ring[]; /* [size] heads, then uint16_t used_event (EVENT_IDX) */
};

/* One used element: the head of a finished chain and the bytes written into it (§2.7.8). */
struct vring_used_elem {
	uint32_t id;     /* head index, 32 bits for padding reasons */
	uint32_t len;    /* bytes the device wrote, from the first writable buffer on */
};

/* The used ring, written by the device (§2.7.8); avail_event follows ring[size]. */
struct vring_used {
	uint16_t flags;  /* VIRTQ_USED_F_* */
	uint16_t idx;    /* free-running: where the device puts the next element */
	struct vring_used_elem ring[]; /* [size] elements, then uint16_t avail_event */
};

/* The guest sees these layouts byte for byte: pin them. */
_Static_assert(sizeof(struct vring_desc) == 16, "vring_desc is 16 bytes (§2.7.5)");
_Static_assert(offsetof(struct vring_desc, addr) == 0, "vring_desc.addr");
_Static_assert(offsetof(struct vring_desc, len) == 8, "vring_desc.len");
_Static_assert(offsetof(struct vring_desc, flags) == 12, "vring_desc.flags");
_Static_assert(offsetof(struct vring_desc, next) == 14, "vring_desc.next");
_Static_assert(sizeof(struct vring_avail) == 4, "vring_avail header is 4 bytes (§2.7.6)");
_Static_assert(offsetof(struct vring_avail, idx) == 2, "vring_avail.idx");
_Static_assert(offsetof(struct vring_avail, ring) == 4, "vring_avail.ring");
_Static_assert(sizeof(struct vring_used_elem) == 8, "vring_used_elem is 8 bytes (§2.7.8)");
_Static_assert(offsetof(struct vring_used_elem, len) == 4, "vring_used_elem.len");
_Static_assert(sizeof(struct vring_used) == 4, "vring_used header is 4 bytes (§2.7.8)");
_Static_assert(offsetof(struct vring_used, idx) == 2, "vring_used.idx");
_Static_assert(offsetof(struct vring_used, ring) == 4, "vring_used.ring");

/* Sizes and alignments of the three areas for a queue of n entries (§2.7 table). */
#define VRING_DESC_ALIGN  16u
#define VRING_AVAIL_ALIGN 2u
#define VRING_USED_ALIGN  4u
#define VRING_DESC_BYTES(n)  (16ull * (n))
#define VRING_AVAIL_BYTES(n) (6ull + 2ull * (n))   /* flags, idx, ring[n], used_event */
#define VRING_USED_BYTES(n)  (6ull + 8ull * (n))   /* flags, idx, ring[n], avail_event */

/* Byte offsets of the event-index words that trail each ring (§2.7.6, §2.7.8). */
#define VRING_USED_EVENT_OFF(n)  (4ull + 2ull * (n))  /* in the available ring */
#define VRING_AVAIL_EVENT_OFF(n) (4ull + 8ull * (n))  /* in the used ring */

#endif
