/* The transport-independent virtio device model: status machine (§2.1, §3.1), features, queue bring-up, kicks, interrupts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include "virtio/virtio.h"
#include "core/vm.h"
#include "core/log.h"

/* The I/O thread saw kick_fd[q]: drain the eventfd and let the device work the queue. */
static void kick_ready(void *opaque, uint32_t events)
{
	struct virtio_kick_ctx *k = opaque;
	struct virtio_dev *d = k->d;
	uint64_t n;

	if (read(d->kick_fd[k->q], &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&d->lock);
	d->stats.kicks++;
	if (virtio_queue_live(d, k->q)) {
		/*
		 * A polled queue stays quiet from the kick on: the loop polls it
		 * next, and its poller re-arms the queue before the thread sleeps.
		 */
		if (d->polled && !d->polling[k->q] && d->ops->queue_pollable(d, k->q)) {
			d->polling[k->q] = true;
			vq_disable_notify(&d->vq[k->q]);
		}
		d->ops->queue_notify(d, k->q);
	}
	pthread_mutex_unlock(&d->lock);
}

/* Let the device work q and count the chains it took (vq_unpop gives back only what one call took). */
static unsigned work_queue(struct virtio_dev *d, unsigned q)
{
	uint64_t before = d->vq[q].stats.chains;

	d->ops->queue_notify(d, q);
	return (unsigned)(d->vq[q].stats.chains - before);
}

/*
 * The I/O thread's poll pass over d (--io-poll): every pollable live queue
 * gets its notifications suppressed (once, when polling starts) and, when
 * avail->idx moved, is worked as a kick would. Chains taken.
 */
static unsigned virtio_poll(void *opaque)
{
	struct virtio_dev *d = opaque;
	unsigned work = 0;

	pthread_mutex_lock(&d->lock);
	for (unsigned q = 0; q < d->nqueues; q++) {
		unsigned n;

		if (!virtio_queue_live(d, q) || !d->ops->queue_pollable(d, q))
			continue;
		if (!d->polling[q]) {
			d->polling[q] = true;
			vq_disable_notify(&d->vq[q]);
		}
		if (!vq_avail_pending(&d->vq[q]))
			continue;
		n = work_queue(d, q);
		if (!n)
			continue;
		/* Keep avail_event one behind the new last_avail (EVENT_IDX): no wrap into a kick. */
		vq_disable_notify(&d->vq[q]);
		d->stats.poll_hits++;
		d->stats.poll_chains += n;
		work += n;
	}
	pthread_mutex_unlock(&d->lock);
	return work;
}

/*
 * The I/O thread is about to sleep: every queue it was polling gets its
 * notifications back, then one more look (§2.7.10) — a buffer the driver
 * added while they were off, without kicking, is worked now, in kick mode
 * (the device re-arms itself when it drains). Chains taken.
 */
static unsigned virtio_arm(void *opaque)
{
	struct virtio_dev *d = opaque;
	unsigned work = 0;

	pthread_mutex_lock(&d->lock);
	for (unsigned q = 0; q < d->nqueues; q++) {
		unsigned n;

		if (!d->polling[q])
			continue;
		d->polling[q] = false;
		if (!virtio_queue_live(d, q) || !vq_enable_notify(&d->vq[q]))
			continue;
		n = work_queue(d, q);
		d->stats.arm_chains += n;
		work += n;
	}
	pthread_mutex_unlock(&d->lock);
	return work;
}

bool virtio_queue_rearm(struct virtio_dev *d, unsigned q)
{
	if (q >= d->nqueues || d->polling[q])
		return false;
	return vq_enable_notify(&d->vq[q]);
}

static void reset_locked(struct virtio_dev *d)
{
	for (unsigned q = 0; q < d->nqueues; q++) {
		/* Counters are the device's lifetime totals (--stats), not per reset cycle. */
		struct vq_stats keep = d->vq[q].stats;

		vq_reset(&d->vq[q]);
		d->vq[q].stats = keep;
		d->polling[q] = false;
		d->qcfg[q] = (struct virtio_queue_cfg){ .size = d->queue_max, .msix_vector = VIRTIO_MSI_NO_VECTOR };
	}
	d->guest_features = 0;
	d->host_features_sel = d->guest_features_sel = 0;
	d->queue_sel = 0;
	d->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	atomic_store(&d->isr, 0);
	d->status = 0;
	d->reported = false;
	if (d->ops->reset)
		d->ops->reset(d);
}

int virtio_dev_init(struct virtio_dev *d, struct vm *vm, const char *name, uint16_t device_id, uint64_t features,
		    unsigned nqueues, uint16_t queue_max, const struct virtio_dev_ops *ops, void *priv)
{
	int ret;

	memset(d, 0, sizeof(*d));
	if (nqueues == 0 || nqueues > VIRTIO_MAX_QUEUES || queue_max == 0 || queue_max > VIRTQ_MAX_SIZE ||
	    (queue_max & (queue_max - 1)) || !ops || !ops->queue_notify)
		return -EINVAL;
	d->vm = vm;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->device_id = device_id;
	d->host_features = features | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
			   (1ull << VIRTIO_RING_F_EVENT_IDX);
	d->nqueues = nqueues;
	d->queue_max = queue_max;
	d->ops = ops;
	d->priv = priv;
	pthread_mutex_init(&d->lock, NULL);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		d->kick_fd[q] = -1;
	reset_locked(d);
	d->stats.resets = 0;
	for (unsigned q = 0; q < nqueues; q++) {
		d->kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->kick_fd[q] < 0) {
			ret = -errno;
			goto fail;
		}
		d->kick_ctx[q] = (struct virtio_kick_ctx){ .d = d, .q = q };
		ret = ioloop_add(&vm->io, d->kick_fd[q], EPOLLIN, kick_ready, &d->kick_ctx[q]);
		if (ret < 0)
			goto fail;
	}
	/* --io-poll: the I/O thread polls this device's queues between wakeups. */
	if (ops->queue_pollable && ioloop_poll_us(&vm->io)) {
		ret = ioloop_add_poller(&vm->io, virtio_poll, virtio_arm, d);
		if (ret < 0)
			goto fail;
		d->polled = true;
	}
	return 0;
fail:
	for (unsigned q = 0; q < nqueues; q++) {
		if (d->kick_fd[q] >= 0) {
			ioloop_del(&vm->io, d->kick_fd[q]);
			close(d->kick_fd[q]);
			d->kick_fd[q] = -1;
		}
	}
	pthread_mutex_destroy(&d->lock);
	return ret;
}

void virtio_dev_destroy(struct virtio_dev *d)
{
	if (d->polled)
		ioloop_del_poller(&d->vm->io, d);
	d->polled = false;
	for (unsigned q = 0; q < d->nqueues; q++) {
		if (d->kick_fd[q] >= 0) {
			ioloop_del(&d->vm->io, d->kick_fd[q]);
			close(d->kick_fd[q]);
			d->kick_fd[q] = -1;
		}
	}
	pthread_mutex_destroy(&d->lock);
	/* Last: the device may free d itself (it is often embedded in the device's state). */
	if (d->ops && d->ops->destroy)
		d->ops->destroy(d);
}

uint32_t virtio_read_host_features(struct virtio_dev *d)
{
	if (d->host_features_sel > 1)
		return 0; /* §4.1.4.3: bits beyond those the device offers read 0 */
	return (uint32_t)(d->host_features >> (32 * d->host_features_sel));
}

uint32_t virtio_read_guest_features(struct virtio_dev *d)
{
	if (d->guest_features_sel > 1)
		return 0;
	return (uint32_t)(d->guest_features >> (32 * d->guest_features_sel));
}

void virtio_write_guest_features(struct virtio_dev *d, uint32_t v)
{
	unsigned shift;

	/* §3.1.1: features are settled once FEATURES_OK is set; later writes are ignored. */
	if (d->guest_features_sel > 1 || (d->status & VIRTIO_STATUS_FEATURES_OK))
		return;
	shift = 32 * d->guest_features_sel;
	d->guest_features = (d->guest_features & ~(0xffffffffull << shift)) | ((uint64_t)v << shift);
}

bool virtio_queue_live(const struct virtio_dev *d, unsigned q)
{
	return q < d->nqueues && (d->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) && d->vq[q].ready && !d->vq[q].needs_reset;
}

void virtio_write_status(struct virtio_dev *d, uint8_t status)
{
	uint8_t old = d->status;

	if (status == 0) {
		/* §2.1.2 / §4.1.4.3.2: writing 0 resets the device. */
		reset_locked(d);
		d->stats.resets++;
		return;
	}
	/* The device owns NEEDS_RESET; the driver cannot set or clear it. */
	status = (uint8_t)((status & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET) | (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/*
		 * §3.1.1 step 5-6: the device refuses FEATURES_OK (the driver reads it
		 * back clear) for features it did not offer, and kiln is a modern-only
		 * device, so VERSION_1 is required (§6.1 "legacy interface" not offered).
		 */
		if ((d->guest_features & ~d->host_features) || !(d->guest_features & (1ull << VIRTIO_F_VERSION_1))) {
			log_info("%s: driver features %#llx refused (offered %#llx)", d->name,
				 (unsigned long long)d->guest_features, (unsigned long long)d->host_features);
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	d->status = status;
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
			virtio_fail(d, "DRIVER_OK without FEATURES_OK");
			return;
		}
		if (d->ops->activate) {
			int ret = d->ops->activate(d);
			if (ret < 0) {
				virtio_fail(d, "device activation failed");
				return;
			}
		}
		/* Buffers the driver queued before DRIVER_OK (and kicks we ignored) get looked at now. */
		for (unsigned q = 0; q < d->nqueues; q++)
			if (virtio_queue_live(d, q))
				virtio_kick(d, q);
	}
}

int virtio_queue_enable(struct virtio_dev *d, unsigned q)
{
	struct virtio_queue_cfg *c;
	char why[64];

	if (q >= d->nqueues)
		return -EINVAL;
	c = &d->qcfg[q];
	/* §4.1.4.3 / §4.2.2: the driver may shrink a queue below the device's maximum, never grow it. */
	if (c->size > d->queue_max) {
		snprintf(why, sizeof(why), "queue %u: size %u above the maximum %u", q, c->size, d->queue_max);
		virtio_fail(d, why);
		return -EINVAL;
	}
	if (vq_configure(&d->vq[q], &d->vm->mem, c->size, c->desc, c->avail, c->used, d->guest_features) < 0) {
		snprintf(why, sizeof(why), "queue %u: size %u or ring addresses invalid", q, c->size);
		virtio_fail(d, why);
		return -EINVAL;
	}
	c->enabled = true;
	return 0;
}

void virtio_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	if (!d->ops->config_read || off > d->ops->config_size || len > d->ops->config_size - off) {
		memset(data, 0, len);
		return;
	}
	d->ops->config_read(d, off, data, len);
}

void virtio_config_write(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	if (!d->ops->config_write || off > d->ops->config_size || len > d->ops->config_size - off)
		return;
	d->ops->config_write(d, off, data, len);
}

void virtio_kick(struct virtio_dev *d, unsigned q)
{
	uint64_t one = 1;

	if (q < d->nqueues && d->kick_fd[q] >= 0 && write(d->kick_fd[q], &one, sizeof(one)) < 0)
		log_warn("%s: kick queue %u: %s", d->name, q, strerror(errno));
}

void virtio_used(struct virtio_dev *d, unsigned q)
{
	if (q >= d->nqueues || !vq_should_notify(&d->vq[q]))
		return;
	atomic_fetch_or(&d->isr, VIRTIO_ISR_QUEUE);
	d->stats.irqs++;
	if (d->tops && d->tops->notify_queue)
		d->tops->notify_queue(d, q);
}

void virtio_fail(struct virtio_dev *d, const char *why)
{
	if (!d->reported)
		log_warn("%s: %s: device needs reset (the VM keeps running)", d->name, why);
	d->reported = true;
	if (d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	d->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	d->stats.needs_reset++;
	/* §2.1.2: "the device MUST send a device configuration change notification" once DRIVER_OK is set. */
	if (d->status & VIRTIO_STATUS_DRIVER_OK) {
		atomic_fetch_or(&d->isr, VIRTIO_ISR_CONFIG);
		d->stats.irqs++;
		if (d->tops && d->tops->notify_config)
			d->tops->notify_config(d);
	}
}

void virtio_config_changed(struct virtio_dev *d)
{
	d->config_generation++;
	if (!(d->status & VIRTIO_STATUS_DRIVER_OK))
		return;
	atomic_fetch_or(&d->isr, VIRTIO_ISR_CONFIG);
	d->stats.irqs++;
	if (d->tops && d->tops->notify_config)
		d->tops->notify_config(d);
}

void virtio_print_stats(struct virtio_dev *d, int fd)
{
	pthread_mutex_lock(&d->lock);
	dprintf(fd, "%s: status=%#x kicks=%llu irqs=%llu resets=%llu needs_reset=%llu", d->name, d->status,
		(unsigned long long)d->stats.kicks, (unsigned long long)d->stats.irqs,
		(unsigned long long)d->stats.resets, (unsigned long long)d->stats.needs_reset);
	if (d->polled)
		dprintf(fd, " poll[hits=%llu chains=%llu armed=%llu]", (unsigned long long)d->stats.poll_hits,
			(unsigned long long)d->stats.poll_chains, (unsigned long long)d->stats.arm_chains);
	for (unsigned q = 0; q < d->nqueues; q++) {
		const struct vq_stats *s = &d->vq[q].stats;
		dprintf(fd, " q%u[chains=%llu irqs=%llu faults=%llu%s%s]", q, (unsigned long long)s->chains,
			(unsigned long long)s->notify_sent, (unsigned long long)s->faults, d->vq[q].fault ? " " : "",
			d->vq[q].fault ? vq_fault_str(d->vq[q].fault) : "");
	}
	dprintf(fd, "\n");
	if (d->ops->print_stats)
		d->ops->print_stats(d, fd);
	pthread_mutex_unlock(&d->lock);
}
