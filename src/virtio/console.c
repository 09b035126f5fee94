/* virtio-console (virtio 1.2 §5.3): port 0 only (no MULTIPORT), the guest's hvc0 on kiln's console backend. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "virtio/console.h"
#include "virtio/virtio.h"
#include "core/log.h"
#include "core/vm.h"

/* §5.3.2: without VIRTIO_CONSOLE_F_MULTIPORT the device has exactly these two queues. */
#define VCON_RXQ 0   /* receiveq(port0): host to guest */
#define VCON_TXQ 1   /* transmitq(port0): guest to host */
#define VCON_NQUEUES 2
#define VCON_QUEUE_MAX 64

/* Console writes that fail with EINTR are retried this often before the bytes count as dropped. */
#define VCON_EINTR_RETRIES 8

/*
 * §5.3.4 device configuration layout. No feature that gives its fields a
 * meaning (SIZE, MULTIPORT, EMERG_WRITE) is offered, so it reads as zeros;
 * it is there because Linux's driver may read it whole.
 */
struct virtio_console_config {
	uint16_t cols;
	uint16_t rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
} __packed;

struct vcon {
	struct virtio_dev dev;
	/* Typed bytes not yet in a guest buffer: rx[0..rx_len). Guarded by dev.lock. */
	uint8_t rx[VCON_RX_STAGE];
	size_t rx_len;
	bool tx_seen;                  /* the driver used transmitq0 since the last reset: its port is connected */
	struct vcon_stats stats;       /* dev.lock */
	struct vq_chain chain;         /* scratch for vq_pop (large) */
};

static struct vcon *to_vcon(struct virtio_dev *d)
{
	return d->priv;
}

static void vcon_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	struct virtio_console_config cfg = { 0 };

	memcpy(data, (const uint8_t *)&cfg + off, len); /* off + len <= config_size: checked by virtio_config_read */
}

/* Write all of buf to the console fd; returns the bytes that could not be written. Never blocks on EAGAIN. */
static size_t console_write(int fd, const uint8_t *buf, size_t len)
{
	int eintr = 0;

	if (fd < 0)
		return 0; /* --console none: discarded, not lost */
	while (len) {
		ssize_t r = write(fd, buf, len);

		if (r > 0) {
			buf += r;
			len -= (size_t)r;
		} else if (r < 0 && errno == EINTR && eintr++ < VCON_EINTR_RETRIES) {
			continue;
		} else {
			break; /* EAGAIN, EIO, EPIPE: the guest must never wait on a stuck reader */
		}
	}
	return len;
}

static void vcon_ring_fault(struct virtio_dev *d, unsigned q)
{
	char why[96];

	snprintf(why, sizeof(why), "%s: %s", q == VCON_RXQ ? "receiveq" : "transmitq", vq_fault_str(d->vq[q].fault));
	virtio_fail(d, why);
}

/*
 * transmitq0: every readable buffer is console output (§5.3.6.1: "the driver
 * places the outgoing characters into transmitq"). At most size chains per
 * pass; if the guest keeps refilling, the rest goes on a later pass (a
 * self-kick) so one guest cannot hold the I/O thread.
 */
static void vcon_tx(struct vcon *vc)
{
	struct virtio_dev *d = &vc->dev;
	struct vq *q = &d->vq[VCON_TXQ];
	bool pushed = false;

	for (unsigned n = 0; n < q->size; n++) {
		int ret = vq_pop(q, &vc->chain);

		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			vcon_ring_fault(d, VCON_TXQ);
			return;
		}
		if (!vc->tx_seen) {
			vc->tx_seen = true;
			if (vc->rx_len)
				virtio_kick(d, VCON_RXQ); /* input held back for this moment (vcon_rx) */
		}
		for (unsigned i = 0; i < vc->chain.nread; i++) {
			const struct vq_buf *b = &vc->chain.bufs[i];
			size_t lost = console_write(d->vm->console_out_fd, b->host, b->len);

			vc->stats.tx_bytes += b->len - lost;
			vc->stats.tx_dropped += lost;
		}
		/* Writable buffers on the transmit queue carry nothing: 0 bytes written. */
		if (vq_push(q, vc->chain.head, 0) < 0) {
			vcon_ring_fault(d, VCON_TXQ);
			return;
		}
		pushed = true;
	}
	if (pushed)
		virtio_used(d, VCON_TXQ);
	/* Ask for the next kick (EVENT_IDX: avail_event); buffers that raced in get another pass. */
	if (vq_enable_notify(q))
		virtio_kick(d, VCON_TXQ);
}

/* Copy staged input into a chain's writable buffers; returns the bytes written. */
static uint32_t vcon_fill(struct vcon *vc)
{
	size_t done = 0;

	for (unsigned i = vc->chain.nread; i < vc->chain.nbufs && done < vc->rx_len; i++) {
		const struct vq_buf *b = &vc->chain.bufs[i];
		size_t n = MIN((size_t)b->len, vc->rx_len - done);

		memcpy(b->host, vc->rx + done, n);
		done += n;
	}
	memmove(vc->rx, vc->rx + done, vc->rx_len - done);
	vc->rx_len -= done;
	vc->stats.rx_delivered += done;
	return (uint32_t)done; /* <= VCON_RX_STAGE */
}

/*
 * receiveq0: hand staged input to the guest's buffers (§5.3.6.1). Buffers are
 * only taken while there is input, so the driver's posted buffers wait in
 * the ring. Out of buffers with input left, the device asks for a kick on
 * the next one (vq_enable_notify) and the input waits, bounded by
 * VCON_RX_STAGE. At most size iterations per pass, then a self-kick.
 *
 * Input also waits until the driver has transmitted once. Without
 * MULTIPORT there is no "port open" message (§5.3.6.2), and Linux posts its
 * receive buffers before it marks the console port connected (add_port():
 * fill_queue() before init_port_console()); input landing in between is
 * discarded (in_intr(): !guest_connected). The port is in the list console
 * output goes through only once that is done, so the first transmit is the
 * earliest safe moment. Input typed (or piped) at boot is then not lost.
 */
static void vcon_rx(struct vcon *vc)
{
	struct virtio_dev *d = &vc->dev;
	struct vq *q = &d->vq[VCON_RXQ];
	unsigned budget = q->size;
	bool pushed = false;

	while (vc->rx_len && vc->tx_seen) {
		int ret;

		if (budget-- == 0) {
			virtio_kick(d, VCON_RXQ);
			break;
		}
		ret = vq_pop(q, &vc->chain);
		if (ret == -EAGAIN) {
			if (vq_enable_notify(q))
				continue; /* a buffer arrived meanwhile */
			break;
		}
		if (ret < 0 || vq_push(q, vc->chain.head, vcon_fill(vc)) < 0) {
			vcon_ring_fault(d, VCON_RXQ);
			return;
		}
		pushed = true;
	}
	if (pushed)
		virtio_used(d, VCON_RXQ);
}

static void vcon_queue_notify(struct virtio_dev *d, unsigned q)
{
	if (q == VCON_TXQ)
		vcon_tx(to_vcon(d));
	else if (q == VCON_RXQ)
		vcon_rx(to_vcon(d));
}

/* A driver reset: the next driver instance must show it is connected again. Staged input is the user's: it stays. */
static void vcon_reset(struct virtio_dev *d)
{
	to_vcon(d)->tx_seen = false;
}

static void vcon_destroy(struct virtio_dev *d)
{
	free(to_vcon(d)); /* d lives inside it: virtio_dev_destroy calls this last */
}

static void vcon_print_stats(struct virtio_dev *d, int fd)
{
	struct vcon *vc = to_vcon(d);

	dprintf(fd, "%s: tx=%llu tx_dropped=%llu rx=%llu rx_delivered=%llu rx_waiting=%zu\n", d->name,
		(unsigned long long)vc->stats.tx_bytes, (unsigned long long)vc->stats.tx_dropped,
		(unsigned long long)vc->stats.rx_bytes, (unsigned long long)vc->stats.rx_delivered, vc->rx_len);
}

static const struct virtio_dev_ops vcon_ops = {
	.config_size = sizeof(struct virtio_console_config),
	.config_read = vcon_config_read,
	.queue_notify = vcon_queue_notify,
	.reset = vcon_reset,
	.destroy = vcon_destroy,
	.print_stats = vcon_print_stats,
};

size_t vcon_rx_space(struct virtio_dev *d)
{
	struct vcon *vc = to_vcon(d);
	size_t space;

	pthread_mutex_lock(&d->lock);
	space = sizeof(vc->rx) - vc->rx_len;
	pthread_mutex_unlock(&d->lock);
	return space;
}

size_t vcon_receive(struct virtio_dev *d, const uint8_t *buf, size_t n)
{
	struct vcon *vc = to_vcon(d);
	size_t take;

	pthread_mutex_lock(&d->lock);
	take = MIN(n, sizeof(vc->rx) - vc->rx_len);
	memcpy(vc->rx + vc->rx_len, buf, take);
	vc->rx_len += take;
	vc->stats.rx_bytes += take;
	pthread_mutex_unlock(&d->lock);
	/* The copy into guest buffers is queue work: the I/O thread does it. */
	if (take)
		virtio_kick(d, VCON_RXQ);
	return take;
}

void vcon_get_stats(struct virtio_dev *d, struct vcon_stats *out)
{
	pthread_mutex_lock(&d->lock);
	*out = to_vcon(d)->stats;
	pthread_mutex_unlock(&d->lock);
}

int vcon_create(struct vm *vm)
{
	struct vcon *vc = calloc(1, sizeof(*vc));
	int ret;

	if (!vc)
		return -ENOMEM;
	ret = virtio_dev_init(&vc->dev, vm, "virtio-console", VIRTIO_ID_CONSOLE, 0, VCON_NQUEUES, VCON_QUEUE_MAX,
			      &vcon_ops, vc);
	if (ret < 0) {
		free(vc);
		return ret;
	}
	ret = virtio_add(vm, &vc->dev);
	if (ret < 0) {
		virtio_dev_destroy(&vc->dev); /* still ours on failure (virtio.h); frees vc */
		return ret;
	}
	vm->vcon = &vc->dev;
	return 0;
}

static int vcon_init(struct vm *vm)
{
	return vm->cfg.console_dev == CONSOLE_DEV_VIRTIO ? vcon_create(vm) : 0;
}

DEVICE_REGISTER(virtio_console, vcon_init);
