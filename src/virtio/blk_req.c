/* The virtio-blk request planner (virtio 1.2 §5.2.6): validates a descriptor chain and turns it into an op, no I/O. */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include "virtio/blk_req.h"

/*
 * §2.6.4 (message framing): the driver may split a request across
 * descriptors any way it likes, so the device reads the chain as two byte
 * streams: the readable one (header, then write data or segments) and the
 * writable one (read data, then the status byte last). The helpers below
 * address those streams by offset; every walk is bounded by c->nbufs.
 */
static void stream_range(const struct vq_chain *c, bool writable, unsigned *first, unsigned *end)
{
	*first = writable ? c->nread : 0;
	*end = writable ? c->nbufs : c->nread;
}

/* Copy bytes [from, from+len) of the readable stream into dst; the caller checked they exist. */
static void gather(const struct vq_chain *c, uint64_t from, void *dst, size_t len)
{
	uint8_t *out = dst;

	for (unsigned i = 0; i < c->nread && len; i++) {
		const struct vq_buf *b = &c->bufs[i];
		size_t n;

		if (from >= b->len) {
			from -= b->len;
			continue;
		}
		n = MIN((uint64_t)len, b->len - from);
		/* Guest memory may change under us: this copy is the one read. */
		memcpy(out, (const uint8_t *)b->host + from, n);
		out += n;
		len -= n;
		from = 0;
	}
}

/* Describe bytes [from, from+len) of one stream as iovecs; -E2BIG past BLK_MAX_IOV slices. */
static int slice(const struct vq_chain *c, bool writable, uint64_t from, uint64_t len, struct blk_plan *p)
{
	unsigned i, end;

	p->niov = 0;
	stream_range(c, writable, &i, &end);
	for (; i < end && len; i++) {
		const struct vq_buf *b = &c->bufs[i];
		uint64_t n;

		if (from >= b->len) {
			from -= b->len;
			continue;
		}
		if (p->niov == BLK_MAX_IOV)
			return -E2BIG;
		n = MIN(len, b->len - from);
		p->iov[p->niov].iov_base = (uint8_t *)b->host + from;
		p->iov[p->niov].iov_len = n;
		p->niov++;
		len -= n;
		from = 0;
	}
	return 0;
}

static int finish(struct blk_plan *p, uint8_t status, const char *why)
{
	p->op = BLK_OP_NONE;
	p->status = status;
	p->why = why;
	p->niov = 0;
	p->nsegs = 0;
	return 0;
}

/* Is [sector, sector+n) inside a disk of cap sectors? Written so nothing can overflow. */
static bool in_range(uint64_t cap, uint64_t sector, uint64_t n)
{
	return sector <= cap && n <= cap - sector;
}

static int plan_rw(const struct vq_chain *c, const struct blk_limits *lim, struct blk_plan *p, uint64_t sector,
		   bool write, uint64_t data_in, uint64_t data_out)
{
	uint64_t len = write ? data_out : data_in;

	if (write ? data_in : data_out)
		return finish(p, VIRTIO_BLK_S_IOERR, "data buffers in the wrong direction");
	/* §5.2.6.2: a write to an RO device fails with IOERR and writes nothing. */
	if (write && lim->readonly)
		return finish(p, VIRTIO_BLK_S_IOERR, "write to a read-only disk");
	if (len == 0)
		return finish(p, VIRTIO_BLK_S_IOERR, "no data buffer");
	if (len % VIRTIO_BLK_SECTOR_SIZE)
		return finish(p, VIRTIO_BLK_S_IOERR, "data not a multiple of 512 bytes");
	if (len > BLK_MAX_DATA)
		return finish(p, VIRTIO_BLK_S_IOERR, "request larger than 1 GiB");
	if (!in_range(lim->capacity, sector, len >> VIRTIO_BLK_SECTOR_SHIFT))
		return finish(p, VIRTIO_BLK_S_IOERR, "sectors beyond capacity");
	if (slice(c, !write, write ? sizeof(struct virtio_blk_outhdr) : 0, len, p) < 0)
		return finish(p, VIRTIO_BLK_S_IOERR, "more data buffers than seg_max");
	p->op = write ? BLK_OP_WRITE : BLK_OP_READ;
	p->offset = sector << VIRTIO_BLK_SECTOR_SHIFT;  /* < 2^64: sector <= capacity < 2^55 */
	p->len = len;
	return 0;
}

static int plan_segments(const struct vq_chain *c, const struct blk_limits *lim, struct blk_plan *p, bool discard,
			 uint64_t data_in, uint64_t data_out)
{
	uint32_t max_seg = MIN(discard ? lim->max_discard_seg : lim->max_write_zeroes_seg, BLK_MAX_SEGS);
	uint32_t max_sectors = discard ? lim->max_discard_sectors : lim->max_write_zeroes_sectors;
	uint64_t nseg;

	if (!(discard ? lim->discard : lim->write_zeroes))
		return finish(p, VIRTIO_BLK_S_UNSUPP, "feature not negotiated");
	if (lim->readonly)
		return finish(p, VIRTIO_BLK_S_IOERR, "discard/write-zeroes on a read-only disk");
	if (data_in)
		return finish(p, VIRTIO_BLK_S_IOERR, "data buffers in the wrong direction");
	if (data_out == 0 || data_out % sizeof(struct virtio_blk_discard_write_zeroes))
		return finish(p, VIRTIO_BLK_S_IOERR, "segment list not a multiple of 16 bytes");
	nseg = data_out / sizeof(struct virtio_blk_discard_write_zeroes);
	/* §5.2.6.1: the driver MUST NOT send more than max_*_seg segments. */
	if (nseg > max_seg)
		return finish(p, VIRTIO_BLK_S_IOERR, "more segments than max_discard_seg/max_write_zeroes_seg");
	p->nsegs = 0;
	for (unsigned i = 0; i < nseg; i++) {
		struct virtio_blk_discard_write_zeroes s;
		uint64_t sector;
		uint32_t n, flags;

		gather(c, sizeof(struct virtio_blk_outhdr) + (uint64_t)i * sizeof(s), &s, sizeof(s));
		sector = le64toh(s.sector);
		n = le32toh(s.num_sectors);
		flags = le32toh(s.flags);
		/* §5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP. */
		if (flags & ~VIRTIO_BLK_WZ_F_UNMAP)
			return finish(p, VIRTIO_BLK_S_UNSUPP, "unknown segment flags");
		if (discard && (flags & VIRTIO_BLK_WZ_F_UNMAP))
			return finish(p, VIRTIO_BLK_S_UNSUPP, "unmap flag on a discard");
		if (n > max_sectors)
			return finish(p, VIRTIO_BLK_S_IOERR, "segment larger than max_*_sectors");
		if (!in_range(lim->capacity, sector, n))
			return finish(p, VIRTIO_BLK_S_IOERR, "segment beyond capacity");
		if (n == 0)
			continue;  /* nothing to do; fallocate() would refuse a zero length */
		p->segs[p->nsegs++] = (struct blk_seg){
			.offset = sector << VIRTIO_BLK_SECTOR_SHIFT,
			.len = (uint64_t)n << VIRTIO_BLK_SECTOR_SHIFT,
			.unmap = flags & VIRTIO_BLK_WZ_F_UNMAP,
		};
	}
	if (p->nsegs == 0)
		return finish(p, VIRTIO_BLK_S_OK, NULL);
	p->op = discard ? BLK_OP_DISCARD : BLK_OP_WRITE_ZEROES;
	return 0;
}

int blk_plan(const struct vq_chain *c, const struct blk_limits *lim, struct blk_plan *p)
{
	struct virtio_blk_outhdr h;
	const struct vq_buf *last;
	uint64_t data_in, data_out;
	uint32_t type;

	p->op = BLK_OP_NONE;
	p->status = VIRTIO_BLK_S_OK;
	p->why = NULL;
	p->status_ptr = NULL;
	p->head = c->head;
	p->offset = p->len = 0;
	p->niov = p->nsegs = 0;
	p->data_in = 0;

	/*
	 * The status byte is the last device-writable byte (§5.2.6). Without
	 * one there is nowhere to report anything: the driver is broken.
	 * vq_chain lists no zero-length buffers, so the last one has a byte.
	 */
	if (c->nbufs == 0 || c->nread >= c->nbufs || c->total_write == 0)
		return -EINVAL;
	last = &c->bufs[c->nbufs - 1];
	if (!last->write || last->len == 0)
		return -EINVAL;
	p->status_ptr = (uint8_t *)last->host + last->len - 1;
	data_in = c->total_write - 1;     /* total_write <= 2^32 (VQ_MAX_CHAIN_BYTES) */
	p->data_in = (uint32_t)data_in;

	if (c->total_read < sizeof(h))
		return finish(p, VIRTIO_BLK_S_IOERR, "header shorter than 16 bytes");
	gather(c, 0, &h, sizeof(h));
	type = le32toh(h.type);
	data_out = c->total_read - sizeof(h);

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return plan_rw(c, lim, p, le64toh(h.sector), type == VIRTIO_BLK_T_OUT, data_in, data_out);
	case VIRTIO_BLK_T_FLUSH:
		if (data_in || data_out)
			return finish(p, VIRTIO_BLK_S_IOERR, "flush with data buffers");
		p->op = BLK_OP_FLUSH;
		return 0;
	case VIRTIO_BLK_T_GET_ID:
		if (data_out || !data_in)
			return finish(p, VIRTIO_BLK_S_IOERR, "get-id without a writable ID buffer");
		(void)slice(c, true, 0, MIN(data_in, (uint64_t)VIRTIO_BLK_ID_BYTES), p); /* <= 20 slices */
		p->op = BLK_OP_GET_ID;
		p->len = MIN(data_in, (uint64_t)VIRTIO_BLK_ID_BYTES);
		return 0;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return plan_segments(c, lim, p, type == VIRTIO_BLK_T_DISCARD, data_in, data_out);
	default:
		/* GET_LIFETIME, SECURE_ERASE, zoned and legacy types: not offered. */
		return finish(p, VIRTIO_BLK_S_UNSUPP, "unsupported request type");
	}
}

uint32_t blk_used_len(const struct blk_plan *p, uint8_t status)
{
	if (status == VIRTIO_BLK_S_OK && p->op == BLK_OP_READ)
		return (uint32_t)p->len + 1;          /* data_in == len, status right after */
	if (status == VIRTIO_BLK_S_OK && p->op == BLK_OP_GET_ID)
		return p->data_in <= VIRTIO_BLK_ID_BYTES ? p->data_in + 1 : VIRTIO_BLK_ID_BYTES;
	/* Only the status byte was written: it counts if nothing comes before it. */
	return p->data_in == 0 ? 1 : 0;
}

size_t blk_iov_fill(const struct iovec *iov, unsigned niov, const void *src, size_t len)
{
	const uint8_t *s = src;
	size_t done = 0;

	for (unsigned i = 0; i < niov && done < len; i++) {
		size_t n = MIN(iov[i].iov_len, len - done);

		memcpy(iov[i].iov_base, s + done, n);
		done += n;
	}
	return done;
}

void blk_iov_advance(struct iovec **iov, unsigned *niov, uint64_t n)
{
	while (n && *niov) {
		if (n >= (*iov)->iov_len) {
			n -= (*iov)->iov_len;
			(*iov)++;
			(*niov)--;
		} else {
			(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
			(*iov)->iov_len -= n;
			n = 0;
		}
	}
}

const char *blk_op_str(enum blk_op op)
{
	switch (op) {
	case BLK_OP_NONE: return "none";
	case BLK_OP_READ: return "read";
	case BLK_OP_WRITE: return "write";
	case BLK_OP_FLUSH: return "flush";
	case BLK_OP_DISCARD: return "discard";
	case BLK_OP_WRITE_ZEROES: return "write-zeroes";
	case BLK_OP_GET_ID: return "get-id";
	}
	return "?";
}
