/* virtio-blk device (virtio 1.2 §5.2): one request queue on a raw image, io_uring or synchronous backend, on the I/O thread. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include "virtio/blk.h"
#include "virtio/blk_req.h"
#include "virtio/virtio.h"
#include "core/vm.h"
#include "core/log.h"

/*
 * Advertised limits (§5.2.4). seg_max leaves room for the header and status
 * descriptors in a direct chain; discards are punched in page-sized units
 * (the alignment is a hint the driver uses to split, §5.2.4), so a guest
 * filesystem's freed blocks become holes in the image.
 */
#define BLK_SEG_MAX             (BLK_QUEUE_SIZE - 2)
#define BLK_MAX_DISCARD_SECTORS (1u << 22)      /* 2 GiB per segment */
#define BLK_DISCARD_ALIGN       8u              /* sectors: 4 KiB */
/* A short transfer is continued from where it stopped, this many times at most; EINTR/EAGAIN likewise. */
#define BLK_MAX_RETRIES         8u
/* How long reset and teardown wait for in-flight io_uring work before giving up on it. */
#define BLK_DRAIN_MS            10000

_Static_assert(BLK_SEG_MAX <= BLK_MAX_IOV, "an honest driver's chains fit one plan");
_Static_assert(BLK_QUEUE_SIZE <= VQ_MAX_BUFS, "queue size");

/* One request on its way through the backend: the plan and how far the backend got. */
struct blk_io {
	struct blk_plan plan;
	bool busy;                /* slot holds a request the backend has not finished */
	bool orphan;              /* the driver reset meanwhile: finish it, but report nothing */
	unsigned q;
	struct iovec *cur;        /* READ/WRITE: what is left to transfer (inside plan.iov) */
	unsigned ncur;
	uint64_t done;            /* READ/WRITE: bytes transferred */
	unsigned seg;             /* DISCARD/WRITE_ZEROES: next segment */
	unsigned retries;
};

/* The system call one step of a request needs. */
enum blk_call_kind { CALL_READV, CALL_WRITEV, CALL_FDATASYNC, CALL_FALLOCATE };
struct blk_call {
	enum blk_call_kind kind;
	const struct iovec *iov;
	unsigned niov;
	uint64_t off, len;
	int mode;
};

struct blk_dev {
	struct virtio_dev vdev;   /* first: destroy frees the whole struct through d (virtio.h) */
	char path[256];           /* for messages */
	int fd;
	bool readonly;
	bool can_punch;           /* PUNCH_HOLE works on the image: DISCARD and WRITE_ZEROES offered */
	bool no_zero_range;       /* FALLOC_FL_ZERO_RANGE was refused once: punch instead */
	uint64_t capacity;        /* sectors */
	uint8_t serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_config config;  /* little-endian, as the guest reads it */

	/* io_uring backend (uring false: synchronous backend, sync_io is the one request). */
	bool uring;
	struct io_uring ring;
	int efd;                  /* the ring's completion eventfd, watched by vm->io */
	struct blk_io *slots;     /* BLK_QUEUE_SIZE in-flight requests at most */
	uint16_t free_slots[BLK_QUEUE_SIZE];
	unsigned nfree;
	unsigned unsubmitted;     /* SQEs prepared but not yet handed to the kernel */
	bool stalled;             /* stopped taking chains because every slot was busy */
	bool submit_warned;

	struct blk_io sync_io;
	struct vq_chain chain;    /* scratch for vq_pop */
	bool io_error_logged;
	struct blk_stats stats;
};

static struct blk_dev *to_blk(struct virtio_dev *d)
{
	return d->priv;
}

/* --- One request as a sequence of system calls, shared by both backends ------------------- */

static void io_start(struct blk_io *io, unsigned q)
{
	io->q = q;
	io->cur = io->plan.iov;
	io->ncur = io->plan.niov;
	io->done = 0;
	io->seg = 0;
	io->retries = 0;
	io->orphan = false;
}

static void io_next(const struct blk_dev *b, const struct blk_io *io, struct blk_call *call)
{
	const struct blk_plan *p = &io->plan;
	const struct blk_seg *s = &p->segs[io->seg];

	memset(call, 0, sizeof(*call));
	switch (p->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		call->kind = p->op == BLK_OP_READ ? CALL_READV : CALL_WRITEV;
		call->iov = io->cur;
		call->niov = io->ncur;
		call->off = p->offset + io->done;
		break;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		/*
		 * Discard deallocates (§5.2.6.2 MAY). Write zeroes must read back as
		 * zeroes: ZERO_RANGE keeps the blocks allocated; with unmap, or where
		 * the filesystem has no ZERO_RANGE, a hole reads as zeroes too.
		 * KEEP_SIZE: never grow the image.
		 */
		call->kind = CALL_FALLOCATE;
		call->off = s->offset;
		call->len = s->len;
		call->mode = FALLOC_FL_KEEP_SIZE |
			     (p->op == BLK_OP_WRITE_ZEROES && !s->unmap && !b->no_zero_range ? FALLOC_FL_ZERO_RANGE
											     : FALLOC_FL_PUNCH_HOLE);
		break;
	default:
		call->kind = CALL_FDATASYNC;
		break;
	}
}

static void log_io_error(struct blk_dev *b, const struct blk_io *io, const char *what)
{
	b->stats.io_errors++;
	if (b->io_error_logged) {
		log_debug("%s: %s failed: %s", b->vdev.name, blk_op_str(io->plan.op), what);
		return;
	}
	b->io_error_logged = true;
	log_warn("%s: %s on %s failed: %s (the guest sees an I/O error; later ones are only counted)",
		 b->vdev.name, blk_op_str(io->plan.op), b->path, what);
}

/*
 * Account the result of the call io_next() described (bytes or -errno).
 * True when the request is finished, with its status in *status.
 */
static bool io_advance(struct blk_dev *b, struct blk_io *io, long res, uint8_t *status)
{
	struct blk_plan *p = &io->plan;

	if ((res == -EINTR || res == -EAGAIN) && io->retries++ < BLK_MAX_RETRIES)
		return false;
	switch (p->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		if (res < 0) {
			log_io_error(b, io, strerror((int)-res));
			break;
		}
		if (res == 0) {
			/* The image ended early (truncated under us?) or the device stopped taking data. */
			log_io_error(b, io, "short transfer");
			break;
		}
		if ((uint64_t)res > p->len - io->done) {
			log_io_error(b, io, "transfer longer than asked");
			break;
		}
		io->done += (uint64_t)res;
		if (io->done == p->len) {
			*status = VIRTIO_BLK_S_OK;
			return true;
		}
		/* Short but progressing: continue from there, a bounded number of times. */
		blk_iov_advance(&io->cur, &io->ncur, (uint64_t)res);
		if (io->retries++ < BLK_MAX_RETRIES && io->ncur)
			return false;
		log_io_error(b, io, "short transfer");
		break;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		if (res == -EOPNOTSUPP && p->op == BLK_OP_WRITE_ZEROES && !p->segs[io->seg].unmap && !b->no_zero_range) {
			/* This filesystem has no ZERO_RANGE: punch holes from now on (they read as zeroes). */
			b->no_zero_range = true;
			return false;
		}
		/* Discard is only a hint (§5.2.6.2 MAY): a filesystem that cannot punch loses nothing. */
		if (res < 0 && !(res == -EOPNOTSUPP && p->op == BLK_OP_DISCARD)) {
			log_io_error(b, io, strerror((int)-res));
			break;
		}
		if (++io->seg < p->nsegs)
			return false;
		*status = VIRTIO_BLK_S_OK;
		return true;
	default: /* FLUSH */
		if (res < 0) {
			log_io_error(b, io, strerror((int)-res));
			break;
		}
		*status = VIRTIO_BLK_S_OK;
		return true;
	}
	*status = VIRTIO_BLK_S_IOERR;
	return true;
}

static long sync_call(const struct blk_dev *b, const struct blk_call *c)
{
	ssize_t r;

	switch (c->kind) {
	case CALL_READV:
		r = preadv(b->fd, c->iov, (int)c->niov, (off_t)c->off);
		break;
	case CALL_WRITEV:
		r = pwritev(b->fd, c->iov, (int)c->niov, (off_t)c->off);
		break;
	case CALL_FALLOCATE:
		r = fallocate(b->fd, c->mode, (off_t)c->off, (off_t)c->len);
		break;
	default:
		r = fdatasync(b->fd);
		break;
	}
	return r < 0 ? -errno : (long)r;
}

/* The synchronous backend: run every step of io now, on the I/O thread. */
static uint8_t sync_run(struct blk_dev *b, struct blk_io *io)
{
	uint8_t status = VIRTIO_BLK_S_IOERR;
	struct blk_call call;

	/* io_advance finishes within segments + fallback + retries steps; the bound is a backstop. */
	for (unsigned step = 0; step < BLK_MAX_SEGS + BLK_MAX_RETRIES + 2; step++) {
		io_next(b, io, &call);
		if (io_advance(b, io, sync_call(b, &call), &status))
			return status;
	}
	log_io_error(b, io, "too many steps");
	return VIRTIO_BLK_S_IOERR;
}

/* --- Completion -------------------------------------------------------------------------- */

static void count(struct blk_dev *b, const struct blk_plan *p, uint8_t status)
{
	if (status == VIRTIO_BLK_S_UNSUPP) {
		b->stats.unsupported++;
		return;
	}
	if (status != VIRTIO_BLK_S_OK)
		return;  /* IOERR is counted where it is decided */
	switch (p->op) {
	case BLK_OP_READ: b->stats.reads++; b->stats.bytes_read += p->len; break;
	case BLK_OP_WRITE: b->stats.writes++; b->stats.bytes_written += p->len; break;
	case BLK_OP_FLUSH: b->stats.flushes++; break;
	case BLK_OP_DISCARD: b->stats.discards++; break;
	case BLK_OP_WRITE_ZEROES: b->stats.write_zeroes++; break;
	case BLK_OP_GET_ID: b->stats.get_ids++; break;
	case BLK_OP_NONE: break;
	}
}

/* Report p with status: the status byte, then the used element (vq_push orders the two). */
static void complete(struct blk_dev *b, unsigned q, const struct blk_plan *p, uint8_t status)
{
	count(b, p, status);
	*p->status_ptr = status;
	if (vq_push(&b->vdev.vq[q], p->head, blk_used_len(p, status)) < 0)
		log_debug("%s: queue %u: used element for head %u dropped", b->vdev.name, q, p->head);
}

/* --- io_uring backend -------------------------------------------------------------------- */

static struct blk_io *slot_get(struct blk_dev *b)
{
	struct blk_io *io;
	unsigned inflight;

	if (!b->nfree)
		return NULL;
	io = &b->slots[b->free_slots[--b->nfree]];
	io->busy = true;
	inflight = BLK_QUEUE_SIZE - b->nfree;
	if (inflight > b->stats.inflight_peak)
		b->stats.inflight_peak = inflight;
	return io;
}

static void slot_put(struct blk_dev *b, struct blk_io *io)
{
	io->busy = false;
	b->free_slots[b->nfree++] = (uint16_t)(io - b->slots);
}

/* Queue the next step of io as an SQE. 0, or -EBUSY when the SQ has no room (cannot happen: one SQE per slot). */
static int uring_prep(struct blk_dev *b, struct blk_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	struct blk_call c;

	if (!sqe) {
		if (io_uring_submit(&b->ring) >= 0)
			b->unsubmitted = 0;
		sqe = io_uring_get_sqe(&b->ring);
		if (!sqe)
			return -EBUSY;
	}
	io_next(b, io, &c);
	switch (c.kind) {
	case CALL_READV:
		io_uring_prep_readv(sqe, b->fd, c.iov, c.niov, c.off);
		break;
	case CALL_WRITEV:
		io_uring_prep_writev(sqe, b->fd, c.iov, c.niov, c.off);
		break;
	case CALL_FALLOCATE:
		io_uring_prep_fallocate(sqe, b->fd, c.mode, (off_t)c.off, (off_t)c.len);
		break;
	default:
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		break;
	}
	io_uring_sqe_set_data64(sqe, (uint64_t)(io - b->slots));
	b->unsubmitted++;
	return 0;
}

static void uring_submit(struct blk_dev *b)
{
	int r = 0;

	if (!b->unsubmitted)
		return;
	/* io_uring_enter can be interrupted or short of memory for a moment; unsent SQEs stay queued. */
	for (unsigned i = 0; i < 3; i++) {
		r = io_uring_submit(&b->ring);
		if (r >= 0) {
			b->unsubmitted = 0;
			return;
		}
		if (r != -EINTR && r != -EAGAIN && r != -EBUSY)
			break;
	}
	if (!b->submit_warned)
		log_warn("%s: io_uring submit: %s (retried at the next completion or kick)", b->vdev.name,
			 strerror(-r));
	b->submit_warned = true;
}

/* Finish io: report it unless orphaned (or the device stopped), free the slot. */
static void uring_finish(struct blk_dev *b, struct blk_io *io, uint8_t status, bool *pushed)
{
	if (!io->orphan && virtio_queue_live(&b->vdev, io->q)) {
		complete(b, io->q, &io->plan, status);
		*pushed = true;
	}
	slot_put(b, io);
}

/* One CQE: advance its request, queue the next step or finish it. */
static void uring_cqe(struct blk_dev *b, uint64_t idx, int res, bool *pushed)
{
	struct blk_io *io;
	uint8_t status;

	/* user_data is ours, but a stray value must not index out of the table. */
	if (idx >= BLK_QUEUE_SIZE || !b->slots[idx].busy) {
		log_warn("%s: io_uring completion for unknown request %llu ignored", b->vdev.name,
			 (unsigned long long)idx);
		return;
	}
	io = &b->slots[idx];
	if (!io_advance(b, io, res, &status)) {
		if (uring_prep(b, io) == 0)
			return;
		log_io_error(b, io, "no room in the submission queue");
		status = VIRTIO_BLK_S_IOERR;
	}
	uring_finish(b, io, status, pushed);
}

static void blk_process(struct blk_dev *b, unsigned q);

/* Reap what has completed; d->lock held. */
static void uring_reap(struct blk_dev *b)
{
	struct io_uring_cqe *cqe;
	bool pushed = false;
	unsigned n;

	/* At most one CQE per slot is outstanding; twice that bounds a pass even as steps resubmit. */
	for (n = 0; n < 2 * BLK_QUEUE_SIZE; n++) {
		uint64_t idx;
		int res;

		if (io_uring_peek_cqe(&b->ring, &cqe) != 0)
			break;
		idx = io_uring_cqe_get_data64(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&b->ring, cqe);
		uring_cqe(b, idx, res, &pushed);
	}
	if (n == 2 * BLK_QUEUE_SIZE) {
		uint64_t one = 1;
		/* More may be ready: come back after the loop has served other fds. */
		if (write(b->efd, &one, sizeof(one)) < 0)
			log_debug("%s: eventfd: %s", b->vdev.name, strerror(errno));
	}
	uring_submit(b);
	if (pushed)
		for (unsigned q = 0; q < b->vdev.nqueues; q++)
			virtio_used(&b->vdev, q);
	if (b->stalled && b->nfree) {
		b->stalled = false;
		for (unsigned q = 0; q < b->vdev.nqueues; q++)
			if (virtio_queue_live(&b->vdev, q))
				blk_process(b, q);
	}
}

/* The I/O thread saw the ring's eventfd. */
static void uring_ready(void *opaque, uint32_t events)
{
	struct blk_dev *b = opaque;
	uint64_t n;

	if (read(b->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&b->vdev.lock);
	uring_reap(b);
	pthread_mutex_unlock(&b->vdev.lock);
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/*
 * Wait (at most timeout_ms) until the kernel has finished every request in
 * flight, reporting none of them: the driver reset the device, or the VM is
 * going away. Writes already handed to the kernel land in the image.
 */
static void uring_drain(struct blk_dev *b, unsigned timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	bool pushed = false;

	for (unsigned i = 0; i < BLK_QUEUE_SIZE; i++)
		if (b->slots[i].busy)
			b->slots[i].orphan = true;
	while (b->nfree < BLK_QUEUE_SIZE) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000000 };
		struct io_uring_cqe *cqe;
		uint64_t idx;
		int r, res;

		uring_submit(b);
		if (now_ms() >= deadline)
			break;
		r = io_uring_wait_cqe_timeout(&b->ring, &cqe, &ts);
		if (r == -ETIME || r == -EINTR)
			continue;
		if (r < 0)
			break;
		idx = io_uring_cqe_get_data64(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&b->ring, cqe);
		uring_cqe(b, idx, res, &pushed);
	}
	if (b->nfree < BLK_QUEUE_SIZE)
		log_warn("%s: %u requests still in flight after %u ms; going on without them",
			 b->vdev.name, BLK_QUEUE_SIZE - b->nfree, timeout_ms);
}

/* --- Queue processing -------------------------------------------------------------------- */

static void limits_now(const struct blk_dev *b, struct blk_limits *lim)
{
	uint64_t f = b->vdev.guest_features;

	*lim = (struct blk_limits){
		.capacity = b->capacity,
		.readonly = b->readonly,
		.discard = f & (1ull << VIRTIO_BLK_F_DISCARD),
		.write_zeroes = f & (1ull << VIRTIO_BLK_F_WRITE_ZEROES),
		.max_discard_sectors = le32toh(b->config.max_discard_sectors),
		.max_discard_seg = le32toh(b->config.max_discard_seg),
		.max_write_zeroes_sectors = le32toh(b->config.max_write_zeroes_sectors),
		.max_write_zeroes_seg = le32toh(b->config.max_write_zeroes_seg),
	};
}

/*
 * Start (or finish at once) the request in b->chain, planned into io.
 * False when the driver broke the queue and processing must stop.
 */
static bool handle_chain(struct blk_dev *b, unsigned q, struct blk_io *io, const struct blk_limits *lim,
			 bool *pushed)
{
	struct blk_plan *p = &io->plan;
	uint8_t status = VIRTIO_BLK_S_OK;

	if (blk_plan(&b->chain, lim, p) < 0) {
		if (b->uring)
			slot_put(b, io);
		virtio_fail(&b->vdev, "request without a writable status byte");
		return false;
	}
	io_start(io, q);
	switch (p->op) {
	case BLK_OP_NONE:
		status = p->status;
		if (status == VIRTIO_BLK_S_IOERR) {
			b->stats.bad_requests++;
			log_debug("%s: request refused: %s", b->vdev.name, p->why ? p->why : "?");
		}
		break;
	case BLK_OP_GET_ID:
		blk_iov_fill(p->iov, p->niov, b->serial, p->len);
		break;
	default:
		if (b->uring) {
			if (uring_prep(b, io) == 0)
				return true;  /* in flight: the slot stays busy */
			log_io_error(b, io, "no room in the submission queue");
			status = VIRTIO_BLK_S_IOERR;
		} else {
			status = sync_run(b, io);
		}
		break;
	}
	complete(b, q, p, status);
	*pushed = true;
	if (b->uring)
		slot_put(b, io);
	return true;
}

/* Take up to one queue's worth of chains from q; d->lock held, on the I/O thread. */
static void blk_process(struct blk_dev *b, unsigned q)
{
	struct virtio_dev *d = &b->vdev;
	struct vq *vq = &d->vq[q];
	struct blk_limits lim;
	unsigned budget = vq->size;
	bool pushed = false;

	limits_now(b, &lim);
	while (budget) {
		struct blk_io *io = &b->sync_io;
		int r;

		if (b->uring) {
			io = slot_get(b);
			if (!io) {
				/* Every slot busy: a completion frees one and brings us back (uring_reap). */
				b->stalled = true;
				break;
			}
		}
		r = vq_pop(vq, &b->chain);
		if (r < 0 && b->uring)
			slot_put(b, io);
		if (r == -EAGAIN) {
			/*
			 * Ring empty: ask for kicks again; go on if buffers slipped in
			 * meanwhile (§2.7.10). While the I/O thread polls the queue
			 * (--io-poll) kicks stay off: the poller comes back.
			 */
			if (!virtio_queue_rearm(d, q))
				break;
			continue;
		}
		if (r < 0) {
			char why[64];

			snprintf(why, sizeof(why), "queue %u: %s", q, vq_fault_str(vq->fault));
			virtio_fail(d, why);
			break;
		}
		budget--;
		if (!handle_chain(b, q, io, &lim, &pushed))
			break;
	}
	/* A full pass: more may wait; let the loop serve other fds, then come back (a poller does anyway). */
	if (!budget && !d->polling[q])
		virtio_kick(d, q);
	if (b->uring)
		uring_submit(b);
	if (pushed)
		virtio_used(d, q);
}

/* --- virtio_dev_ops ------------------------------------------------------------------------ */

static void blk_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	memcpy(data, (const uint8_t *)&to_blk(d)->config + off, len);
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q)
{
	blk_process(to_blk(d), q);
}

/* --io-poll: the one request queue is polled. */
static bool blk_queue_pollable(struct virtio_dev *d, unsigned q)
{
	return true;
}

static void blk_reset(struct virtio_dev *d)
{
	struct blk_dev *b = to_blk(d);

	/* virtio_dev_init resets too; nothing can be in flight then. */
	if (!b->uring || !b->slots)
		return;
	b->stalled = false;
	/* The driver will reuse its buffers: no request may still write into them (§2.1.2 reset). */
	if (b->nfree < BLK_QUEUE_SIZE)
		uring_drain(b, BLK_DRAIN_MS);
}

static void blk_free(struct blk_dev *b)
{
	if (b->uring) {
		io_uring_unregister_eventfd(&b->ring);
		io_uring_queue_exit(&b->ring);
	}
	if (b->efd >= 0)
		close(b->efd);
	if (b->fd >= 0)
		close(b->fd);
	free(b->slots);
	free(b);
}

/* The last use of d (virtio_dev_destroy calls it last): d lives inside b and goes with it. */
static void blk_destroy(struct virtio_dev *d)
{
	struct blk_dev *b = to_blk(d);

	if (b->uring) {
		/* Writes the guest was told nothing about yet still reach the image before kiln exits. */
		if (b->nfree < BLK_QUEUE_SIZE)
			uring_drain(b, BLK_DRAIN_MS);
		ioloop_del(&d->vm->io, b->efd);
	}
	blk_free(b);
}

static void blk_print_stats(struct virtio_dev *d, int fd)
{
	struct blk_dev *b = to_blk(d);
	const struct blk_stats *s = &b->stats;

	dprintf(fd,
		"%s: backend=%s reads=%llu writes=%llu bytes_read=%llu bytes_written=%llu flushes=%llu "
		"discards=%llu write_zeroes=%llu get_id=%llu io_errors=%llu bad_requests=%llu unsupported=%llu "
		"inflight_peak=%llu\n",
		d->name, b->uring ? "io_uring" : "sync", (unsigned long long)s->reads, (unsigned long long)s->writes,
		(unsigned long long)s->bytes_read, (unsigned long long)s->bytes_written,
		(unsigned long long)s->flushes, (unsigned long long)s->discards, (unsigned long long)s->write_zeroes,
		(unsigned long long)s->get_ids, (unsigned long long)s->io_errors, (unsigned long long)s->bad_requests,
		(unsigned long long)s->unsupported, (unsigned long long)s->inflight_peak);
}

static const struct virtio_dev_ops blk_ops = {
	.config_size = sizeof(struct virtio_blk_config),
	.config_read = blk_config_read,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.destroy = blk_destroy,
	.print_stats = blk_print_stats,
	.queue_pollable = blk_queue_pollable,
};

/* --- Creation ------------------------------------------------------------------------------ */

/* The io_uring backend, or a reason it cannot be had (the caller falls back to sync). */
static int uring_setup(struct blk_dev *b, const char **why)
{
	struct io_uring_probe *probe;
	static const int ops[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE };
	int r;

	r = io_uring_queue_init(BLK_QUEUE_SIZE, &b->ring, 0);
	if (r < 0) {
		*why = strerror(-r);
		return r;
	}
	probe = io_uring_get_probe_ring(&b->ring);
	for (unsigned i = 0; probe && i < ARRAY_SIZE(ops); i++)
		if (!io_uring_opcode_supported(probe, ops[i]))
			r = -EOPNOTSUPP;
	if (probe)
		io_uring_free_probe(probe);
	if (r < 0) {
		*why = "the kernel's io_uring lacks readv/writev/fsync/fallocate";
		goto fail;
	}
	b->slots = calloc(BLK_QUEUE_SIZE, sizeof(*b->slots));
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!b->slots || b->efd < 0) {
		r = -ENOMEM;
		*why = "out of memory";
		goto fail;
	}
	r = io_uring_register_eventfd(&b->ring, b->efd);
	if (r < 0) {
		*why = strerror(-r);
		goto fail;
	}
	for (unsigned i = 0; i < BLK_QUEUE_SIZE; i++)
		b->free_slots[i] = (uint16_t)(BLK_QUEUE_SIZE - 1 - i);
	b->nfree = BLK_QUEUE_SIZE;
	b->uring = true;
	return 0;
fail:
	io_uring_queue_exit(&b->ring);
	free(b->slots);
	b->slots = NULL;
	if (b->efd >= 0)
		close(b->efd);
	b->efd = -1;
	return r;
}

/* The image: opened, locked against a second writer, sized. 0 or -errno (logged). */
static int open_image(struct blk_dev *b, const struct disk_config *cfg, const char *name)
{
	struct stat st;
	uint64_t bytes;
	int err;

	b->fd = open(cfg->path, (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		err = -errno;
		log_err("%s: cannot open %s: %s%s", name, cfg->path, strerror(errno),
			!cfg->readonly && (errno == EACCES || errno == EROFS) ? " (add ,ro for a read-only disk)" : "");
		return err;
	}
	if (fstat(b->fd, &st) < 0) {
		err = -errno;
		log_err("%s: %s: %s", name, cfg->path, strerror(errno));
		return err;
	}
	if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0) {
			err = -errno;
			log_err("%s: %s: BLKGETSIZE64: %s", name, cfg->path, strerror(errno));
			return err;
		}
	} else {
		log_err("%s: %s is neither a regular file nor a block device", name, cfg->path);
		return -EINVAL;
	}
	/* Two writers (or a writer and a reader) on one image corrupt the guest's filesystem. */
	if (flock(b->fd, (cfg->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		log_err("%s: %s is in use by another process (locked)", name, cfg->path);
		return -EBUSY;
	}
	if (bytes % VIRTIO_BLK_SECTOR_SIZE)
		log_warn("%s: %s: size is not a multiple of 512; the last %llu bytes are not visible", name,
			 cfg->path, (unsigned long long)(bytes % VIRTIO_BLK_SECTOR_SIZE));
	b->capacity = bytes >> VIRTIO_BLK_SECTOR_SHIFT;
	/*
	 * Discard and write zeroes punch holes: offer them where that works.
	 * The probe punches past the end of the file, where there is no data.
	 */
	if (!cfg->readonly && S_ISREG(st.st_mode))
		b->can_punch = fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 (off_t)ALIGN_UP(bytes, 4096), 4096) == 0;
	/* GET_ID: the user's serial, else one derived from the file's identity (stable across runs). */
	if (cfg->serial) {
		memcpy(b->serial, cfg->serial, MIN(strlen(cfg->serial), sizeof(b->serial)));
	} else {
		char id[48];
		int n = snprintf(id, sizeof(id), "%llx:%llx", (unsigned long long)st.st_dev,
				 (unsigned long long)st.st_ino);
		memcpy(b->serial, id, MIN((size_t)n, sizeof(b->serial)));
	}
	return 0;
}

int blk_create(struct vm *vm, const struct disk_config *cfg, unsigned index, struct virtio_dev **out)
{
	struct virtio_dev *d;
	struct blk_dev *b;
	const char *why = NULL;
	uint64_t features;
	char name[24];
	int ret;

	snprintf(name, sizeof(name), "virtio-blk%u", index);
	if (!cfg->path)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	d = &b->vdev;
	b->fd = b->efd = -1;
	b->readonly = cfg->readonly;
	snprintf(b->path, sizeof(b->path), "%s", cfg->path);
	ret = open_image(b, cfg, name);
	if (ret < 0)
		goto fail;
	if (!cfg->sync_io && uring_setup(b, &why) < 0)
		log_info("%s: io_uring unavailable (%s): synchronous backend", name, why);

	features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH);
	b->config.capacity = htole64(b->capacity);
	b->config.seg_max = htole32(BLK_SEG_MAX);
	b->config.blk_size = htole32(VIRTIO_BLK_SECTOR_SIZE);
	b->config.num_queues = htole16(1);
	if (b->readonly)
		features |= 1ull << VIRTIO_BLK_F_RO;
	if (b->can_punch) {
		features |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
		b->config.max_discard_sectors = htole32(BLK_MAX_DISCARD_SECTORS);
		b->config.max_discard_seg = htole32(BLK_MAX_SEGS);
		b->config.discard_sector_alignment = htole32(BLK_DISCARD_ALIGN);
		b->config.max_write_zeroes_sectors = htole32(BLK_MAX_DISCARD_SECTORS);
		b->config.max_write_zeroes_seg = htole32(BLK_MAX_SEGS);
		b->config.write_zeroes_may_unmap = 1;
	}

	ret = virtio_dev_init(d, vm, name, VIRTIO_ID_BLOCK, features, 1, BLK_QUEUE_SIZE, &blk_ops, b);
	if (ret < 0) {
		log_err("%s: %s", name, strerror(-ret));
		goto fail;
	}
	if (b->uring) {
		ret = ioloop_add(&vm->io, b->efd, EPOLLIN, uring_ready, b);
		if (ret < 0) {
			log_err("%s: cannot watch the io_uring eventfd: %s", name, strerror(-ret));
			virtio_dev_destroy(d);  /* frees b (and d) through blk_destroy */
			return ret;
		}
	}
	log_info("%s: %s, %llu sectors%s%s, %s backend, serial \"%.20s\"", name, cfg->path,
		 (unsigned long long)b->capacity, b->readonly ? ", read-only" : "",
		 b->can_punch ? ", discard" : "", b->uring ? "io_uring" : "sync", (const char *)b->serial);
	*out = d;
	return 0;
fail:
	blk_free(b);
	return ret;
}

int blk_init_disks(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg.ndisks && i < VM_MAX_DISKS; i++) {
		struct virtio_dev *d;
		int ret = blk_create(vm, &vm->cfg.disks[i], i, &d);

		if (ret < 0)
			return ret;
		ret = virtio_add(vm, d);
		if (ret < 0) {
			log_err("%s: cannot attach to the virtio transport: %s", d->name, strerror(-ret));
			virtio_dev_destroy(d);  /* on error the caller still owns d (virtio.h) */
			return ret;
		}
	}
	return 0;
}

DEVICE_REGISTER(virtio_blk, blk_init_disks);

/* --- Introspection ------------------------------------------------------------------------- */

bool blk_uses_uring(struct virtio_dev *d)
{
	return to_blk(d)->uring;
}

int blk_backing_fd(struct virtio_dev *d)
{
	return to_blk(d)->fd;
}

int blk_completion_fd(struct virtio_dev *d)
{
	return to_blk(d)->uring ? to_blk(d)->efd : -1;
}

unsigned blk_inflight(struct virtio_dev *d)
{
	struct blk_dev *b = to_blk(d);

	return b->uring ? BLK_QUEUE_SIZE - b->nfree : 0;
}

void blk_poll(struct virtio_dev *d)
{
	struct blk_dev *b = to_blk(d);

	if (b->uring)
		uring_ready(b, EPOLLIN);
}

void blk_get_stats(struct virtio_dev *d, struct blk_stats *s)
{
	pthread_mutex_lock(&d->lock);
	*s = to_blk(d)->stats;
	pthread_mutex_unlock(&d->lock);
}
