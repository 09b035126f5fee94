/* virtio-rng (virtio 1.2 §5.4): one request queue of device-writable buffers, filled from the host's getrandom(2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "core/log.h"
#include "core/vm.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

/*
 * §5.4.6.1: the device MAY fill less than a whole buffer. One request is
 * capped so a guest posting gigabyte buffers cannot keep the I/O thread in
 * getrandom(); Linux asks for at most a few dozen bytes at a time.
 */
#define RNG_MAX_PER_REQUEST (64 * KiB)

struct rng {
	struct virtio_dev vdev;      /* first: destroy frees the whole struct through d */
	uint64_t bytes;              /* random bytes served */
	uint64_t requests;           /* chains completed */
	uint64_t errors;             /* getrandom failures */
	struct vq_chain chain;       /* scratch for vq_pop: large, so not on the stack */
};

/* Fill the chain's writable buffers; returns the bytes written. */
static uint32_t rng_fill(struct rng *r, const struct vq_chain *c)
{
	uint32_t written = 0;

	for (unsigned i = c->nread; i < c->nbufs && written < RNG_MAX_PER_REQUEST; i++) {
		uint8_t *p = c->bufs[i].host;
		uint32_t want = MIN(c->bufs[i].len, RNG_MAX_PER_REQUEST - written), got = 0;
		/* getrandom(2) returns at most 32 MiB minus a bit per call and may be interrupted: a bounded retry. */
		for (unsigned tries = 0; got < want && tries < 16; tries++) {
			ssize_t n = getrandom(p + got, want - got, 0);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				r->errors++;
				break;
			}
			got += (uint32_t)n;
		}
		written += got;
		if (got < want)
			break;
	}
	return written;
}

/*
 * I/O thread, d->lock held: answer at most one queue's worth of requests,
 * then yield. Kicks stay off while draining; re-enabling them (§2.7.10:
 * flags, or avail_event with EVENT_IDX) and then finding new buffers means
 * the driver may not kick for those, so they are taken in the same pass.
 */
static void rng_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct rng *r = d->priv;
	struct vq *vq = &d->vq[q];
	unsigned n = 0;

	vq_disable_notify(vq);
	for (;;) {
		while (n < vq->size) {
			int ret = vq_pop(vq, &r->chain);
			uint32_t written;

			if (ret == -EAGAIN)
				break;
			if (ret < 0) {
				virtio_fail(d, vq_fault_str(vq->fault));
				return;
			}
			/* §5.4.6.1: only device-writable buffers carry entropy; readable ones are ignored. */
			written = rng_fill(r, &r->chain);
			if (vq_push(vq, r->chain.head, written) < 0) {
				virtio_fail(d, "used ring push failed");
				return;
			}
			r->bytes += written;
			r->requests++;
			n++;
		}
		if (n == vq->size) {
			/* Budget spent with buffers maybe left: come back after other devices had their turn. */
			virtio_kick(d, q);
			break;
		}
		if (!vq_enable_notify(vq))
			break;
	}
	if (n)
		virtio_used(d, q);
}

static void rng_destroy(struct virtio_dev *d)
{
	free(d->priv);
}

static void rng_print_stats(struct virtio_dev *d, int fd)
{
	struct rng *r = d->priv;

	/* served=N (random bytes) is what tests/linux/run.sh looks for. */
	dprintf(fd, "%s: served=%llu bytes requests=%llu getrandom_errors=%llu\n", d->name,
		(unsigned long long)r->bytes, (unsigned long long)r->requests, (unsigned long long)r->errors);
}

static const struct virtio_dev_ops rng_ops = {
	.config_size = 0, /* §5.4.4: no device configuration */
	.queue_notify = rng_queue_notify,
	.destroy = rng_destroy,
	.print_stats = rng_print_stats,
};

int rng_init(struct vm *vm)
{
	struct rng *r;
	int ret;

	if (!vm->cfg.rng)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	/* §5.4.2: one queue, requestq. No device-specific feature bits (§5.4.3). */
	ret = virtio_dev_init(&r->vdev, vm, "virtio-rng0", VIRTIO_ID_RNG, 0, 1, RNG_QUEUE_MAX, &rng_ops, r);
	if (ret < 0) {
		free(r);
		return ret;
	}
	ret = virtio_add(vm, &r->vdev);
	if (ret < 0) {
		log_err("virtio-rng: %s", strerror(-ret));
		virtio_dev_destroy(&r->vdev); /* frees r */
	}
	return ret;
}

DEVICE_REGISTER(virtio_rng, rng_init);
