/* Split virtqueue, device side: bounded chain walks, read-once guest fields, spec barriers (virtio 1.2 §2.7). */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include "virtio/virtqueue.h"

/*
 * Ordering model. The driver (a vCPU) and the device (this code) share the
 * rings through guest RAM. Every index the guest publishes is read with an
 * atomic load, every index the device publishes is written with an atomic
 * store, and the pairing barriers are named where they are used. On x86 the
 * acquire/release ones cost nothing but a compiler barrier; the two full
 * fences are real (mfence or a locked op).
 */

/* Only reached while needs_reset is clear: vq_pop refuses a broken queue first. */
static int vq_fail(struct vq *q, enum vq_fault f)
{
	q->fault = f;
	q->needs_reset = true;
	q->stats.faults++;
	return -EIO;
}

/*
 * Copy one descriptor out of guest memory exactly once. A 16-byte READ_ONCE:
 * the compiler barrier after the copy means the compiler can no longer assume
 * guest memory still equals the copy, so every later use reads the local and
 * never re-loads a field the guest may have rewritten in between. memcpy, not
 * a typed load: an indirect table need not be 8-byte aligned.
 */
static struct vring_desc desc_read_once(const uint8_t *p)
{
	struct vring_desc raw, d;

	memcpy(&raw, p, sizeof(raw));
	__asm__ __volatile__("" : : : "memory");
	d.addr = le64toh(raw.addr);
	d.len = le32toh(raw.len);
	d.flags = le16toh(raw.flags);
	d.next = le16toh(raw.next);
	return d;
}

static uint16_t *used_event_word(const struct vq *q)
{
	return (uint16_t *)((uint8_t *)q->avail_ring + VRING_USED_EVENT_OFF(q->size));
}

static uint16_t *avail_event_word(const struct vq *q)
{
	return (uint16_t *)((uint8_t *)q->used_ring + VRING_AVAIL_EVENT_OFF(q->size));
}

/* Both ranges were accepted by mem_gpa(), so neither end wraps. */
static bool ranges_overlap(gpa_t a, uint64_t alen, gpa_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int vq_configure(struct vq *q, const struct guest_mem *m, uint32_t size,
		 gpa_t desc, gpa_t avail, gpa_t used, uint64_t features)
{
	struct vq n;
	void *dt, *at, *ut;

	/* §2.7: a power of two, at most 32768 (so 16-bit indices tell full from empty). */
	if (!m || size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	/* §2.7.1: the driver MUST align the parts; the atomics below rely on it. */
	if (desc % VRING_DESC_ALIGN || avail % VRING_AVAIL_ALIGN || used % VRING_USED_ALIGN)
		return -EINVAL;
	dt = mem_gpa(m, desc, VRING_DESC_BYTES(size));
	at = mem_gpa(m, avail, VRING_AVAIL_BYTES(size));
	ut = mem_gpa(m, used, VRING_USED_BYTES(size));
	if (!dt || !at || !ut)
		return -EINVAL;
	/*
	 * §2.7: each part is written by the driver or by the device, never both.
	 * A used ring over the descriptors or the available ring would let our
	 * own used-ring stores rewrite what we validate, or feed vq_pop a
	 * moving avail->idx from our vq_push: refuse the layout.
	 */
	if (ranges_overlap(used, VRING_USED_BYTES(size), desc, VRING_DESC_BYTES(size)) ||
	    ranges_overlap(used, VRING_USED_BYTES(size), avail, VRING_AVAIL_BYTES(size)))
		return -EINVAL;
	/* Guest alignment implies host alignment only if the mapping is aligned: check the host side too. */
	if ((uintptr_t)at % VRING_AVAIL_ALIGN || (uintptr_t)ut % VRING_USED_ALIGN)
		return -EINVAL;

	memset(&n, 0, sizeof(n));
	n.mem = m;
	n.size = (uint16_t)size;
	n.desc = desc;
	n.avail = avail;
	n.used = used;
	n.event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	n.indirect = features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	n.desc_table = dt;
	n.avail_ring = at;
	n.used_ring = ut;
	/* A fresh queue starts at index 0 on both rings (§2.7.6, §2.7.8: "This starts at 0"). */
	n.ready = true;
	*q = n;
	return 0;
}

void vq_reset(struct vq *q)
{
	memset(q, 0, sizeof(*q));
}

/*
 * Walk the chain starting at `head`, filling c. Every loop is bounded: a
 * table of n entries can be walked at most n steps without revisiting an
 * entry (pigeonhole), so step n+1 proves a loop; the direct table has size
 * entries, an indirect one len/16 <= VQ_MAX_INDIRECT; there is at most one
 * indirect table per chain (no nesting, §2.7.5.3.1).
 */
static int vq_walk(struct vq *q, uint16_t head, struct vq_chain *c)
{
	const uint8_t *table = q->desc_table;
	uint32_t n = q->size;       /* entries in the table being walked */
	uint32_t steps = 0;
	uint32_t idx = head;
	bool in_indirect = false;
	bool seen_write = false;

	c->head = head;
	c->nbufs = 0;
	c->nread = 0;
	c->total_read = 0;
	c->total_write = 0;

	for (;;) {
		struct vring_desc d;
		bool write;

		if (idx >= n)
			return vq_fail(q, VQ_FAULT_INDEX);
		if (++steps > n)
			return vq_fail(q, VQ_FAULT_LOOP);
		d = desc_read_once(table + (size_t)idx * sizeof(struct vring_desc));

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			const uint8_t *t;

			/* §2.7.5.3.1: only if negotiated, never nested, never with NEXT. */
			if (!q->indirect)
				return vq_fail(q, VQ_FAULT_INDIRECT_FEATURE);
			if (in_indirect)
				return vq_fail(q, VQ_FAULT_INDIRECT_NESTED);
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return vq_fail(q, VQ_FAULT_INDIRECT_NEXT);
			/* §2.7.5.3: the table is desc[len / 16]; anything else is not a table. */
			if (d.len == 0 || d.len % sizeof(struct vring_desc))
				return vq_fail(q, VQ_FAULT_INDIRECT_LEN);
			if (d.len / sizeof(struct vring_desc) > VQ_MAX_INDIRECT)
				return vq_fail(q, VQ_FAULT_INDIRECT_SIZE);
			t = mem_gpa(q->mem, d.addr, d.len);
			if (!t)
				return vq_fail(q, VQ_FAULT_ADDR);
			/* §2.7.5.3.2: the WRITE flag of the referring descriptor is ignored. */
			table = t;
			n = d.len / sizeof(struct vring_desc);
			in_indirect = true;
			idx = 0;    /* §2.7.5.3: the table's first descriptor is index 0 */
			steps = 0;
			continue;
		}

		/* §2.7.4.2: device-writable elements come after all device-readable ones. */
		write = d.flags & VIRTQ_DESC_F_WRITE;
		if (!write && seen_write)
			return vq_fail(q, VQ_FAULT_READ_AFTER_WRITE);
		seen_write |= write;

		/*
		 * A zero-length descriptor is legal (the spec does not forbid it)
		 * and carries no bytes: it is not listed and its address is never
		 * touched, so it needs no check. It still counts as a step above.
		 */
		if (d.len) {
			void *host;

			if (c->nbufs >= VQ_MAX_BUFS)
				return vq_fail(q, VQ_FAULT_TOO_MANY_BUFS);
			/* The whole [addr, addr+len) must be RAM; mem_gpa catches the wrap past 2^64. */
			host = mem_gpa(q->mem, d.addr, d.len);
			if (!host)
				return vq_fail(q, VQ_FAULT_ADDR);
			c->bufs[c->nbufs++] = (struct vq_buf){ .host = host, .len = d.len, .write = write };
			if (write)
				c->total_write += d.len;
			else {
				c->total_read += d.len;
				c->nread++;
			}
			/* No overflow: at most VQ_MAX_BUFS * (2^32 - 1) < 2^64. */
			if (c->total_read + c->total_write > VQ_MAX_CHAIN_BYTES)
				return vq_fail(q, VQ_FAULT_TOO_LARGE);
		}

		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

int vq_pop(struct vq *q, struct vq_chain *c)
{
	uint16_t avail_idx, pending, head;
	int ret;

	if (!q->ready)
		return -EINVAL;
	if (q->needs_reset)
		return -EIO;
	/*
	 * Read avail->idx before reading the ring entries and descriptors it
	 * covers (acquire). Pairs with the driver's barrier before its idx
	 * update (§2.7.13.3.1), so the head and chain we read are the ones the
	 * driver finished writing. Only when the slots seen last time are used
	 * up: the driver writes that word on every publish, and reading it per
	 * chain pulls its cache line across cores each time (QEMU keeps a
	 * shadow index too).
	 */
	if (q->shadow_avail == q->last_avail) {
		avail_idx = le16toh(__atomic_load_n(&q->avail_ring->idx, __ATOMIC_ACQUIRE));
		pending = (uint16_t)(avail_idx - q->last_avail);
		if (pending == 0)
			return -EAGAIN;
		/*
		 * At most size chains can be outstanding (§2.7.13: the ring is
		 * as big as the table). More means the driver lied, or moved idx
		 * backwards, which §2.7.6.1 forbids.
		 */
		if (pending > q->size)
			return vq_fail(q, VQ_FAULT_AVAIL_JUMP);
		q->shadow_avail = avail_idx;
	}
	/* size is a power of two: the mask keeps the slot inside the checked ring. */
	head = le16toh(__atomic_load_n(&q->avail_ring->ring[q->last_avail & (q->size - 1)],
				       __ATOMIC_RELAXED));
	ret = vq_walk(q, head, c);
	if (ret)
		return ret;
	q->last_avail++;
	q->stats.chains++;
	return 0;
}

int vq_push(struct vq *q, uint16_t head, uint32_t written)
{
	struct vring_used_elem *e;

	if (!q->ready)
		return -EINVAL;
	if (q->needs_reset)
		return -EIO;
	/* A device bug, not a guest one: only chains that were popped can be returned. */
	if (head >= q->size || q->used_idx == q->last_avail)
		return -EINVAL;
	e = &q->used_ring->ring[q->used_idx & (q->size - 1)];
	__atomic_store_n(&e->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(written), __ATOMIC_RELAXED);
	q->used_idx++;
	/*
	 * Write the used element (and the device's writes into the buffers,
	 * done before this call) before publishing used->idx (release):
	 * §2.7.8.2 wants len and the data in place before the idx update, and
	 * the driver reads idx before the element (§2.7.14).
	 */
	__atomic_store_n(&q->used_ring->idx, htole16(q->used_idx), __ATOMIC_RELEASE);
	q->stats.pushed++;
	return 0;
}

int vq_push_many(struct vq *q, const uint16_t *heads, const uint32_t *written, unsigned n)
{
	uint16_t idx;

	if (!q->ready)
		return -EINVAL;
	if (q->needs_reset)
		return -EIO;
	if (n > (uint16_t)(q->last_avail - q->used_idx))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (heads[i] >= q->size)
			return -EINVAL;
	idx = q->used_idx;
	for (unsigned i = 0; i < n; i++, idx++) {
		struct vring_used_elem *e = &q->used_ring->ring[idx & (q->size - 1)];

		__atomic_store_n(&e->id, htole32(heads[i]), __ATOMIC_RELAXED);
		__atomic_store_n(&e->len, htole32(written[i]), __ATOMIC_RELAXED);
	}
	q->used_idx = idx;
	/* As vq_push: every element (and the buffers' contents) before the one idx update (release). */
	__atomic_store_n(&q->used_ring->idx, htole16(q->used_idx), __ATOMIC_RELEASE);
	q->stats.pushed += n;
	return 0;
}

void vq_unpop(struct vq *q, unsigned n)
{
	uint16_t in_flight = (uint16_t)(q->last_avail - q->used_idx);

	if (!q->ready || n > in_flight)
		return;
	q->last_avail = (uint16_t)(q->last_avail - n);
	q->stats.chains -= n;
}

bool vq_should_notify(struct vq *q)
{
	uint16_t old_idx = q->signalled_used;
	uint16_t new_idx = q->used_idx;
	bool notify;

	if (!q->ready || old_idx == new_idx)
		return false;
	q->signalled_used = new_idx;
	/*
	 * Publish used->idx before reading used_event / avail->flags to decide
	 * on notification (full fence): a store followed by a load to another
	 * address needs a full barrier even on x86. Pairs with the driver's
	 * fence between re-enabling notifications and re-reading used->idx
	 * (§2.7.14): either it sees our new idx or we see its new used_event,
	 * so no interrupt is lost.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx) {
		/* §2.7.7.2: ignore flags; notify iff the used idx passed used_event. */
		uint16_t event = le16toh(__atomic_load_n(used_event_word(q), __ATOMIC_RELAXED));

		notify = vq_need_event(event, new_idx, old_idx);
	} else {
		/* §2.7.7.2: flags 1 means "SHOULD NOT notify", 0 "MUST notify". */
		uint16_t flags = le16toh(__atomic_load_n(&q->avail_ring->flags, __ATOMIC_RELAXED));

		notify = !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	if (notify)
		q->stats.notify_sent++;
	else
		q->stats.notify_suppressed++;
	return notify;
}

void vq_set_avail_event(struct vq *q, uint16_t idx)
{
	if (!q->ready || !q->event_idx)
		return;
	__atomic_store_n(avail_event_word(q), htole16(idx), __ATOMIC_RELAXED);
}

void vq_disable_notify(struct vq *q)
{
	if (!q->ready)
		return;
	/*
	 * With EVENT_IDX the device MUST keep flags 0 (§2.7.10.2). The driver
	 * kicks when avail->idx moves past avail_event (§2.7.13.4.1), and it is
	 * at or past last_avail: one behind is the furthest point it can pass
	 * last, 65535 additions from now, so a long poll cannot wrap into a kick.
	 */
	if (q->event_idx)
		vq_set_avail_event(q, (uint16_t)(q->last_avail - 1));
	else
		__atomic_store_n(&q->used_ring->flags, htole16(VIRTQ_USED_F_NO_NOTIFY), __ATOMIC_RELAXED);
}

bool vq_avail_pending(const struct vq *q)
{
	if (!q->ready || q->needs_reset)
		return false;
	if (q->shadow_avail != q->last_avail)
		return true;
	/* Acquire, as vq_pop's: a caller that sees new work goes on to read the chains. */
	return le16toh(__atomic_load_n(&q->avail_ring->idx, __ATOMIC_ACQUIRE)) != q->last_avail;
}

bool vq_enable_notify(struct vq *q)
{
	uint16_t avail_idx;

	if (!q->ready || q->needs_reset)
		return false;
	if (q->event_idx)
		vq_set_avail_event(q, q->last_avail); /* kick when entry last_avail is written */
	else
		__atomic_store_n(&q->used_ring->flags, 0, __ATOMIC_RELAXED);
	/*
	 * Publish avail_event / used->flags before re-reading avail->idx (full
	 * fence). Pairs with the driver's fence between its idx update and its
	 * read of avail_event / flags (§2.7.13.4.1): one side sees the other's
	 * write, so a buffer added meanwhile is either seen here or kicked.
	 * The load is an acquire for the chain reads a caller does next.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail_idx = le16toh(__atomic_load_n(&q->avail_ring->idx, __ATOMIC_ACQUIRE));
	return avail_idx != q->last_avail;
}

const char *vq_fault_str(enum vq_fault f)
{
	switch (f) {
	case VQ_FAULT_NONE: return "no fault";
	case VQ_FAULT_AVAIL_JUMP: return "avail idx moved more than the queue size";
	case VQ_FAULT_INDEX: return "descriptor index out of range";
	case VQ_FAULT_LOOP: return "descriptor chain loops";
	case VQ_FAULT_TOO_MANY_BUFS: return "too many buffers in one chain";
	case VQ_FAULT_ADDR: return "buffer not inside guest RAM";
	case VQ_FAULT_TOO_LARGE: return "chain longer than 4 GiB";
	case VQ_FAULT_READ_AFTER_WRITE: return "readable buffer after a writable one";
	case VQ_FAULT_INDIRECT_FEATURE: return "indirect descriptor not negotiated";
	case VQ_FAULT_INDIRECT_NEXT: return "indirect descriptor with NEXT";
	case VQ_FAULT_INDIRECT_NESTED: return "nested indirect table";
	case VQ_FAULT_INDIRECT_LEN: return "indirect table length not a non-zero multiple of 16";
	case VQ_FAULT_INDIRECT_SIZE: return "indirect table too large";
	}
	return "unknown fault";
}
