/* virtio-net (virtio 1.2 §5.1): rx/tx queue pairs, mergeable rx buffers, offloads passed through in the header, control queue, multiqueue. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include "virtio/net.h"
#include "core/vm.h"
#include "core/log.h"

/*
 * Queue layout (§5.1.2): receiveq1, transmitq1, ..., receiveqN, transmitqN,
 * then controlq. N is max_virtqueue_pairs when MQ is negotiated, else 1, so
 * the control queue is queue 2 without MQ even if more pairs exist.
 *
 * Threads: tx and control work run on the I/O thread (queue kicks); rx runs
 * where the packet comes from (also the I/O thread: the tap's fd handler, or
 * the network loop's turn for libslirp); all of it under d->lock.
 */

static struct net_dev *ND(struct virtio_dev *d)
{
	return d->priv;
}

static bool has(const struct virtio_dev *d, unsigned bit)
{
	return d->guest_features & (1ull << bit);
}

static void net_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	struct net_dev *nd = ND(d);
	uint8_t cfg[NET_CONFIG_SIZE];
	uint16_t v;

	memcpy(cfg, nd->mac, 6);
	v = htole16(VIRTIO_NET_S_LINK_UP);
	memcpy(cfg + 6, &v, 2);
	v = htole16((uint16_t)nd->max_pairs);
	memcpy(cfg + 8, &v, 2);
	v = htole16(NET_MTU);
	memcpy(cfg + 10, &v, 2);
	memcpy(data, cfg + off, len);
}

/* §5.1.4: mac is driver-writable (a driver without CTRL_MAC_ADDR sets it here); the rest is read-only. */
static void net_config_write(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	struct net_dev *nd = ND(d);

	if (off < 6)
		memcpy(nd->mac + off, data, MIN(len, 6 - off));
}

static void configure_backend(struct net_dev *nd)
{
	if (nd->be->ops->configure)
		nd->be->ops->configure(nd->be, nd->vdev.guest_features, nd->pairs);
}

static int net_activate(struct virtio_dev *d)
{
	struct net_dev *nd = ND(d);

	/* §5.1.2: without MQ one pair, control queue at 2; with MQ, pairs start at 1 until VQ_PAIRS_SET. */
	nd->pairs = 1;
	nd->ctrl_q = has(d, VIRTIO_NET_F_MQ) ? 2 * nd->max_pairs : 2;
	configure_backend(nd);
	return 0;
}

static void backlog_clear(struct net_dev *nd)
{
	while (nd->backlog_count) {
		free(nd->backlog[nd->backlog_head].data);
		nd->backlog[nd->backlog_head].data = NULL;
		nd->backlog_head = (nd->backlog_head + 1) % NET_RX_BACKLOG;
		nd->backlog_count--;
	}
	nd->backlog_head = 0;
	nd->backlog_bytes = 0;
}

static void net_reset(struct virtio_dev *d)
{
	struct net_dev *nd = ND(d);

	backlog_clear(nd);
	/* A look the timer still owes goes to a queue that is no longer live: the kick path ignores it. */
	memset(nd->tx_delayed, 0, sizeof(nd->tx_delayed));
	memcpy(nd->mac, nd->mac_cfg, 6);
	nd->promisc = false;
	nd->pairs = 1;
	nd->ctrl_q = 2;
}

/* ---- rx ---- */

/*
 * Receiving is reserve, fill, commit. The reservation pops rx chains and
 * lists their buffers; the packet is written into them (copied, or read
 * there by the tap); the commit returns the chains the packet filled to the
 * used ring with their lengths and num_buffers, and gives the rest back
 * (vq_unpop: the device had not used them, so the driver never sees them go).
 */
static void resv_clear(struct net_rx_resv *rv)
{
	rv->chains = 0;
	rv->niov = 0;
	rv->cap = 0;
	rv->nb_lo = rv->nb_hi = NULL;
}

void net_rx_cancel(struct net_dev *nd)
{
	struct net_rx_resv *rv = &nd->rx;

	if (rv->chains)
		vq_unpop(&nd->vdev.vq[2 * rv->pair], rv->chains);
	resv_clear(rv);
}

/* Add the chain in nd->chain to the reservation; false when its buffers do not fit the iovec (it is unpopped). */
static bool resv_add(struct net_dev *nd, struct vq *q)
{
	struct net_rx_resv *rv = &nd->rx;
	struct vq_chain *c = &nd->chain;

	/* Keep one iovec entry free for the caller (the tap's overflow buffer). */
	if (c->nbufs > NET_RX_IOV_MAX - 1 - rv->niov) {
		vq_unpop(q, 1);
		return false;
	}
	if (rv->chains == 0) {
		/* Remember where bytes 10 and 11 of the header (num_buffers) go. */
		size_t at = 0;

		for (unsigned i = 0; i < c->nbufs && at < VNET_HDR_LEN; i++) {
			uint8_t *h = c->bufs[i].host;

			for (uint32_t k = 0; k < c->bufs[i].len && at < VNET_HDR_LEN; k++, at++) {
				if (at == 10)
					rv->nb_lo = h + k;
				else if (at == 11)
					rv->nb_hi = h + k;
			}
		}
	}
	for (unsigned i = 0; i < c->nbufs; i++)
		rv->iov[rv->niov++] = (struct iovec){ .iov_base = c->bufs[i].host, .iov_len = c->bufs[i].len };
	nd->heads[rv->chains] = c->head;
	rv->chain_cap[rv->chains++] = c->total_write;
	rv->cap += c->total_write;
	return true;
}

int net_rx_reserve(struct net_dev *nd, unsigned pair, size_t want, size_t need, struct iovec **iov, unsigned *niov,
		   size_t *cap)
{
	struct virtio_dev *d = &nd->vdev;
	struct net_rx_resv *rv = &nd->rx;
	unsigned qi = 2 * pair;
	bool mrg = has(d, VIRTIO_NET_F_MRG_RXBUF);
	struct vq *q;
	int r = 0;

	*iov = rv->iov;
	*niov = rv->niov;
	*cap = rv->cap;
	if (pair >= nd->pairs || !virtio_queue_live(d, qi))
		return -ENODEV;
	if (rv->chains && rv->pair != pair)
		return -EINVAL; /* one reservation at a time */
	rv->pair = pair;
	q = &d->vq[qi];
	want = MAX(want, need);
	while (rv->cap < want) {
		struct vq_chain *c = &nd->chain;

		/*
		 * Bounded: at most one chain per ring entry. Without MRG_RXBUF one
		 * chain takes the whole packet (§5.1.6.3.1).
		 */
		if (rv->chains == q->size || rv->chains == NET_QUEUE_SIZE || (!mrg && rv->chains == 1)) {
			r = -E2BIG;
			break;
		}
		r = vq_pop(q, c);
		/*
		 * Out of buffers while short of `need`: ask for a kick when the
		 * driver adds some (with EVENT_IDX, avail_event must move or the
		 * driver never kicks again, §2.7.10); if some arrived meanwhile,
		 * take them now. Short only of `want`, no kick is asked for: the
		 * packet may well fit.
		 */
		if (r == -EAGAIN && rv->cap < need && vq_enable_notify(q))
			r = vq_pop(q, c);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			virtio_fail(d, vq_fault_str(q->fault));
			return -EIO;
		}
		/* §5.1.6.3: rx buffers are device-writable only, and hold at least the header. */
		if (c->nread || c->total_write < (rv->chains == 0 ? VNET_HDR_LEN : 1)) {
			vq_unpop(q, 1);
			virtio_fail(d, "rx buffer with device-readable parts or smaller than the header");
			return -EIO;
		}
		if (!resv_add(nd, q)) {
			r = -E2BIG;
			break;
		}
		r = 0;
	}
	*niov = rv->niov;
	*cap = rv->cap;
	if (rv->cap >= need)
		return 0;
	return r == -E2BIG ? -E2BIG : -EAGAIN;
}

int net_rx_commit(struct net_dev *nd, size_t len)
{
	struct virtio_dev *d = &nd->vdev;
	struct net_rx_resv *rv = &nd->rx;
	struct vq *q = &d->vq[2 * rv->pair];
	size_t left = len;
	unsigned n = 0;
	int r;

	if (!rv->chains || len > rv->cap || len < VNET_HDR_LEN) {
		net_rx_cancel(nd);
		return -EINVAL;
	}
	/* Bounded by the reservation; the first chain always goes (it holds the header). */
	while (n < rv->chains && (left || n == 0)) {
		uint32_t l = (uint32_t)MIN(rv->chain_cap[n], (uint64_t)left);

		nd->lens[n++] = l;
		left -= l;
	}
	vq_unpop(q, rv->chains - n);
	/* §5.1.6.4: num_buffers is the number of descriptors the packet is spread over (1 without MRG_RXBUF). */
	*rv->nb_lo = (uint8_t)n;
	*rv->nb_hi = (uint8_t)(n >> 8);
	resv_clear(rv);
	r = vq_push_many(q, nd->heads, nd->lens, n);
	if (r < 0) {
		virtio_fail(d, "rx used ring update failed");
		return -EIO;
	}
	nd->stats.rx_frames++;
	nd->stats.rx_bytes += len - VNET_HDR_LEN;
	return 0;
}

/* Deliver the packet gathered from src (header first): reserve room for all of it, copy, commit. */
static int rx_deliver_iov(struct net_dev *nd, unsigned pair, const struct iovec *src, int nsrc, size_t len)
{
	struct iovec *iov;
	unsigned niov;
	size_t cap, off = 0;
	int r;

	if (len < VNET_HDR_LEN)
		return -ENODEV;
	r = net_rx_reserve(nd, pair, len, len, &iov, &niov, &cap);
	if (r < 0) {
		net_rx_cancel(nd);
		return r;
	}
	for (int i = 0; i < nsrc; i++) {
		iov_copy_in(iov, (int)niov, off, src[i].iov_base, src[i].iov_len);
		off += src[i].iov_len;
	}
	return net_rx_commit(nd, len);
}

int net_rx_deliver(struct net_dev *nd, unsigned pair, uint8_t *pkt, size_t len)
{
	struct iovec one = { .iov_base = pkt, .iov_len = len };

	return rx_deliver_iov(nd, pair, &one, 1, len);
}

void net_rx_done(struct net_dev *nd, unsigned pair)
{
	virtio_used(&nd->vdev, 2 * pair);
}

/* Deliver what the in-process stacks left waiting; true when the backlog is empty afterwards. */
static bool backlog_flush(struct net_dev *nd)
{
	bool any = false;

	while (nd->backlog_count) {
		struct net_pkt *p = &nd->backlog[nd->backlog_head];
		int r = net_rx_deliver(nd, 0, p->data, p->len);

		if (r == -EAGAIN)
			break;
		if (r == 0)
			any = true;
		else
			nd->stats.rx_dropped++;
		free(p->data);
		p->data = NULL;
		nd->backlog_bytes -= p->len;
		nd->backlog_head = (nd->backlog_head + 1) % NET_RX_BACKLOG;
		nd->backlog_count--;
	}
	if (any)
		net_rx_done(nd, 0);
	return nd->backlog_count == 0;
}

void net_inject(struct net_dev *nd, const void *frame, size_t len)
{
	struct virtio_dev *d = &nd->vdev;
	/* In-process stacks compute every checksum: an all-zero header (no offload). */
	static const uint8_t zero_hdr[VNET_HDR_LEN];
	const struct iovec src[2] = {
		{ .iov_base = (void *)zero_hdr, .iov_len = VNET_HDR_LEN },
		{ .iov_base = (void *)frame, .iov_len = len },
	};
	uint8_t *pkt;
	int r = -EAGAIN;

	if (len > NET_MAX_FRAME)
		return;
	pthread_mutex_lock(&d->lock);
	if (!virtio_queue_live(d, 0)) {
		nd->stats.rx_dropped++;
		goto out;
	}
	/* Straight into the guest's buffers (one copy) unless older frames wait: they go first. */
	if (!nd->backlog_count || backlog_flush(nd))
		r = rx_deliver_iov(nd, 0, src, 2, VNET_HDR_LEN + len);
	if (r == 0) {
		/* The turn's first frame interrupts at once, the rest wait for net_inject_flush (net.h). */
		if (!nd->rx_turn_signalled) {
			nd->rx_turn_signalled = true;
			net_rx_done(nd, 0);
		} else {
			nd->rx_unsignalled = true;
		}
		goto out;
	}
	if (r != -EAGAIN || nd->backlog_count == NET_RX_BACKLOG ||
	    nd->backlog_bytes + VNET_HDR_LEN + len > NET_RX_BACKLOG_BYTES || !(pkt = malloc(VNET_HDR_LEN + len))) {
		nd->stats.rx_dropped++;
		goto out;
	}
	memcpy(pkt, zero_hdr, VNET_HDR_LEN);
	memcpy(pkt + VNET_HDR_LEN, frame, len);
	nd->backlog[(nd->backlog_head + nd->backlog_count) % NET_RX_BACKLOG] =
		(struct net_pkt){ .len = (uint32_t)(VNET_HDR_LEN + len), .data = pkt };
	nd->backlog_count++;
	nd->backlog_bytes += VNET_HDR_LEN + len;
	nd->stats.rx_no_buffers++;
out:
	pthread_mutex_unlock(&d->lock);
}

void net_inject_flush(struct net_dev *nd)
{
	struct virtio_dev *d = &nd->vdev;

	pthread_mutex_lock(&d->lock);
	if (nd->rx_unsignalled && virtio_queue_live(d, 0))
		net_rx_done(nd, 0);
	nd->rx_unsignalled = false;
	nd->rx_turn_signalled = false;
	pthread_mutex_unlock(&d->lock);
}

static void rx_kick(struct net_dev *nd, unsigned pair)
{
	if (pair == 0 && !backlog_flush(nd))
		return;
	if (pair < nd->pairs && nd->be->ops->rx_resume)
		nd->be->ops->rx_resume(nd->be, pair);
}

/* ---- tx ---- */

/*
 * A frame for the metadata endpoint: made linear, its checksum finished
 * (the guest may have left it to us when CSUM was negotiated), GSO refused
 * (a metadata request never needs it; a segmenting stack would), then handed
 * over without the header.
 */
static int tx_to_mds(struct net_dev *nd, unsigned pair, const struct iovec *iov, int n, size_t len)
{
	struct virtio_net_hdr h;
	uint8_t *f = nd->scratch;

	if (len > sizeof(nd->scratch))
		return -1;
	iov_copy_out(iov, n, 0, f, len);
	memcpy(&h, f, sizeof(h));
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE)
		return -1;
	if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    net_csum_complete(f + VNET_HDR_LEN, len - VNET_HDR_LEN, le16toh(h.csum_start), le16toh(h.csum_offset)) < 0)
		return -1;
	memset(f, 0, VNET_HDR_LEN);
	{
		struct iovec one = { .iov_base = f, .iov_len = len };

		/* The real pair: a backend that defers resumes the queue the frame came from. */
		return nd->mds->ops->tx(nd->mds, pair, &one, 1, len);
	}
}

/* Process one tx chain already popped into nd->chain. 0 done, NET_TX_DEFERRED done (resume comes), -EAGAIN the backend is full (unpop). */
static int tx_one(struct net_dev *nd, unsigned pair)
{
	struct vq_chain *c = &nd->chain;
	uint8_t head[VNET_HDR_LEN + 64];
	size_t len = c->total_read, got;
	int r = 0;

	for (unsigned i = 0; i < c->nread; i++)
		nd->iov[i] = (struct iovec){ .iov_base = c->bufs[i].host, .iov_len = c->bufs[i].len };
	if (len < VNET_HDR_LEN + ETH_HLEN_ || len > VNET_HDR_LEN + NET_MAX_FRAME) {
		/* Not a frame (or larger than any frame): dropped, the buffer is returned. */
		nd->stats.tx_dropped++;
		return 0;
	}
	if (nd->mds) {
		got = iov_copy_out(nd->iov, (int)c->nread, 0, head, sizeof(head));
		if (net_frame_for_mds(head + VNET_HDR_LEN, got - VNET_HDR_LEN, nd->mds_ip, nd->mds_alt_ip)) {
			r = tx_to_mds(nd, pair, nd->iov, (int)c->nread, len);
			if (r < 0)
				nd->stats.tx_dropped++;
			else
				nd->stats.tx_mds++;
			return r == NET_TX_DEFERRED ? r : 0;
		}
	}
	r = nd->be->ops->tx(nd->be, pair, nd->iov, (int)c->nread, len);
	if (r == -EAGAIN)
		return r;
	if (r < 0) {
		nd->stats.tx_dropped++;
		return 0;
	}
	nd->stats.tx_frames++;
	nd->stats.tx_bytes += len - VNET_HDR_LEN;
	return r == NET_TX_DEFERRED ? r : 0;
}

/*
 * Look at transmit queue `pair` again after tx_delay_us, kicks still off:
 * false when there is no delay or the timer cannot be set (look on the next
 * loop turn then). One timer serves every pair: the first to ask arms it.
 */
static bool tx_look_later(struct net_dev *nd, unsigned pair)
{
	struct itimerspec its = { .it_value.tv_nsec = (long)nd->tx_delay_us * 1000 };

	if (!nd->tx_delay_us || nd->tx_timer_fd < 0)
		return false;
	if (!nd->tx_timer_armed) {
		if (timerfd_settime(nd->tx_timer_fd, 0, &its, NULL) < 0)
			return false;
		nd->tx_timer_armed = true;
	}
	nd->tx_delayed[pair] = true;
	return true;
}

void net_tx_timer(struct net_dev *nd)
{
	struct virtio_dev *d = &nd->vdev;
	uint64_t n;

	if (read(nd->tx_timer_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("%s: txdelay timer: %s", d->name, strerror(errno));
	pthread_mutex_lock(&d->lock);
	nd->tx_timer_armed = false;
	nd->stats.tx_timer_fires++;
	for (unsigned p = 0; p < NET_MAX_PAIRS; p++) {
		if (nd->tx_delayed[p]) {
			nd->tx_delayed[p] = false;
			virtio_kick(d, 2 * p + 1);
		}
	}
	pthread_mutex_unlock(&d->lock);
}

static void tx_timer_ready(void *opaque, uint32_t events)
{
	(void)events;
	net_tx_timer(opaque);
}

static void tx_kick(struct net_dev *nd, unsigned pair)
{
	struct virtio_dev *d = &nd->vdev;
	unsigned qi = 2 * pair + 1, done = 0;
	struct vq *q = &d->vq[qi];
	bool deferred = false;

	if (pair >= nd->pairs)
		return;
	atomic_store(&nd->tx_blocked[pair], false);
	for (;;) {
		int r;

		vq_disable_notify(q);
		while (done < q->size) {
			r = vq_pop(q, &nd->chain);
			if (r == -EAGAIN)
				break;
			if (r < 0) {
				virtio_fail(d, vq_fault_str(q->fault));
				return;
			}
			/* §2.7.4.2 / §5.1.6.2: a transmit buffer is read-only for the device. */
			if (nd->chain.total_write) {
				virtio_fail(d, "tx buffer with device-writable parts");
				return;
			}
			r = tx_one(nd, pair);
			if (r == NET_TX_DEFERRED)
				deferred = true;
			if (r == -EAGAIN) {
				vq_unpop(q, 1);
				atomic_store(&nd->tx_blocked[pair], true);
				/* net_tx_resume kicks again; notifications stay off meanwhile. What went is reported now. */
				virtio_used(d, qi);
				return;
			}
			if (vq_push(q, nd->chain.head, 0) < 0) {
				virtio_fail(d, "tx used ring update failed");
				return;
			}
			done++;
		}
		/*
		 * The interrupt for used tx buffers waits for the end of the chain
		 * of passes below (one that finds nothing, or polling): the driver
		 * sees them in the used ring whenever it transmits, and while the
		 * chain goes on it is transmitting. A Linux driver that completed
		 * everything asks to hear of the very next buffer (used_event,
		 * §2.7.10), so reporting each pass would cost it an interrupt per
		 * frame. The chain ends one loop turn after the guest stops, so a
		 * sender throttled by its completions (BQL, TCP small queues, a
		 * stopped queue) waits that long at most.
		 */
		if (done >= q->size) {
			/* The guest keeps the ring full: yield to other work, come back on the next loop turn (or poll). */
			if (!d->polling[qi]) {
				virtio_kick(d, qi);
				return;
			}
			break;
		}
		/*
		 * The backend sends later and resumes us then: kicks stay off until
		 * a pass finds nothing (QEMU's tx bottom half keeps them off the
		 * same way), which spares the guest an exit per frame while its
		 * frames are still on their way.
		 */
		if (deferred) {
			nd->stats.tx_deferred++;
			return;
		}
		/*
		 * Frames went and the backend is done with them (a tap write):
		 * look again txdelay later (NET_TX_DELAY_US, 25 us), kicks still
		 * off, and turn them back on only after a pass that finds nothing.
		 * A guest in the middle of a burst, sending a stream, or acking a
		 * stream it receives, queues its next frames meanwhile, and they
		 * go without an exit each. QEMU's tx bottom half gets the same
		 * from the time its main loop takes to come round. kiln's loop
		 * comes round in microseconds: looking on the next turn cost a
		 * kick per two frames (a TCP receiver's ACKs) or per one or two
		 * (a sender clocked by the host's ACKs, ~1.4 frames a pass), and
		 * on kvm_pvm, where a kick is an emulated MMIO write, both held
		 * TCP to about QEMU's figure. With the delay host->guest is ~1.3x
		 * QEMU's and guest->host ~1.2x (docs/benchmarks.md). A frame after
		 * a quiet spell still kicks and goes at once: only frames that
		 * follow others within the delay wait for it. txdelay=0 looks on
		 * the next loop turn.
		 */
		if (done && !d->polling[qi]) {
			nd->stats.tx_requeued++;
			if (!tx_look_later(nd, pair))
				virtio_kick(d, qi);
			return;
		}
		/* Drained: kicks back on and one more look (§2.7.10), unless the I/O thread polls this queue. */
		if (!virtio_queue_rearm(d, qi))
			break;
	}
	virtio_used(d, qi);
}

void net_tx_resume(struct net_dev *nd, unsigned pair)
{
	/*
	 * Kick whether or not tx_blocked is set yet: the backend may resume
	 * between its -EAGAIN and tx_kick recording it, and a lost kick would
	 * stall the queue (notifications are off while blocked). A spare kick
	 * costs one empty pass. The look comes txdelay later, as after a tap
	 * pass: libslirp's turn follows the guest's frames within
	 * microseconds, so with the look at once a guest acking a stream
	 * kicked for every other ACK, and a guest sending a stream kicked
	 * once every one to three frames (~300 000 kicks a 256 MiB run;
	 * ~95 000 with the delay, and guest->host TCP 57-72 -> 83-96 MB/s on
	 * kvm_pvm, docs/benchmarks.md).
	 */
	if (pair >= NET_MAX_PAIRS)
		return;
	atomic_store(&nd->tx_blocked[pair], false);
	pthread_mutex_lock(&nd->vdev.lock);
	if (!tx_look_later(nd, pair))
		virtio_kick(&nd->vdev, 2 * pair + 1);
	pthread_mutex_unlock(&nd->vdev.lock);
}

/* ---- control queue ---- */

static uint8_t ctrl_cmd(struct net_dev *nd, const uint8_t *b, size_t len)
{
	uint8_t cls, cmd;
	const uint8_t *data = b + 2;
	size_t dlen = len - 2;

	if (len < 2)
		return VIRTIO_NET_ERR;
	cls = b[0];
	cmd = b[1];
	switch (cls) {
	case VIRTIO_NET_CTRL_RX:
		/* §5.1.6.5.1: one byte on/off. kiln does no rx filtering (the guest's stack does); acknowledged. */
		if (cmd > VIRTIO_NET_CTRL_RX_NOBCAST || dlen != 1)
			return VIRTIO_NET_ERR;
		if (cmd == VIRTIO_NET_CTRL_RX_PROMISC)
			nd->promisc = data[0];
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MAC:
		if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
			if (dlen != 6)
				return VIRTIO_NET_ERR;
			memcpy(nd->mac, data, 6);
			return VIRTIO_NET_OK;
		}
		if (cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET) {
			/* Two tables, each le32 entries + entries * 6 bytes (§5.1.6.5.2); checked, not used for filtering. */
			size_t off = 0;

			for (int t = 0; t < 2; t++) {
				uint32_t ne;

				if (dlen - off < 4)
					return VIRTIO_NET_ERR;
				memcpy(&ne, data + off, 4);
				ne = le32toh(ne);
				off += 4;
				if (ne > (dlen - off) / 6)
					return VIRTIO_NET_ERR;
				off += (size_t)ne * 6;
			}
			return off == dlen ? VIRTIO_NET_OK : VIRTIO_NET_ERR;
		}
		return VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_ANNOUNCE:
		return cmd == VIRTIO_NET_CTRL_ANNOUNCE_ACK ? VIRTIO_NET_OK : VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_MQ:
		if (cmd == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET && has(&nd->vdev, VIRTIO_NET_F_MQ) && dlen == 2) {
			uint16_t p;

			memcpy(&p, data, 2);
			p = le16toh(p);
			/* §5.1.6.5.5: 1..max_virtqueue_pairs. */
			if (p < 1 || p > nd->max_pairs)
				return VIRTIO_NET_ERR;
			nd->pairs = p;
			configure_backend(nd);
			return VIRTIO_NET_OK;
		}
		return VIRTIO_NET_ERR;
	}
	return VIRTIO_NET_ERR;
}

static void ctrl_kick(struct net_dev *nd)
{
	struct virtio_dev *d = &nd->vdev;
	struct vq *q = &d->vq[nd->ctrl_q];
	struct vq_chain *c = &nd->chain;
	uint8_t cmd[4096];
	bool pushed = false;

	for (unsigned done = 0; done < q->size; done++) {
		size_t got = 0;
		uint8_t ack;
		int r = vq_pop(q, c);

		/* Drained: re-arm the kick (EVENT_IDX: avail_event, §2.7.10) and look once more. */
		if (r == -EAGAIN && vq_enable_notify(q))
			r = vq_pop(q, c);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			virtio_fail(d, vq_fault_str(q->fault));
			return;
		}
		/* §5.1.6.5: class, command, data (device-readable), then one ack byte (device-writable). */
		if (!c->total_write) {
			virtio_fail(d, "control command without room for the ack");
			return;
		}
		for (unsigned i = 0; i < c->nread; i++) {
			size_t n = MIN((size_t)c->bufs[i].len, sizeof(cmd) - got);

			memcpy(cmd + got, c->bufs[i].host, n);
			got += n;
		}
		nd->stats.ctrl_cmds++;
		ack = c->total_read > sizeof(cmd) ? VIRTIO_NET_ERR : ctrl_cmd(nd, cmd, got);
		if (ack != VIRTIO_NET_OK)
			nd->stats.ctrl_errs++;
		*(uint8_t *)c->bufs[c->nread].host = ack;
		if (vq_push(q, c->head, 1) < 0) {
			virtio_fail(d, "control used ring update failed");
			return;
		}
		pushed = true;
	}
	if (pushed)
		virtio_used(d, nd->ctrl_q);
}

static void net_queue_notify(struct virtio_dev *d, unsigned qi)
{
	struct net_dev *nd = ND(d);

	if (has(d, VIRTIO_NET_F_CTRL_VQ) && qi == nd->ctrl_q)
		ctrl_kick(nd);
	else if (qi < 2 * nd->max_pairs && qi % 2 == 0)
		rx_kick(nd, qi / 2);
	else if (qi < 2 * nd->max_pairs)
		tx_kick(nd, qi / 2);
}

/*
 * --io-poll: the transmit queues of the pairs in use (not while blocked). Not rx (the driver
 * kicks it only when the device asked, after running out of buffers) nor
 * control (rare, and a command wants its answer at once anyway).
 */
static bool net_queue_pollable(struct virtio_dev *d, unsigned qi)
{
	struct net_dev *nd = ND(d);

	if (has(d, VIRTIO_NET_F_CTRL_VQ) && qi == nd->ctrl_q)
		return false;
	/* A pair whose backend is full waits for net_tx_resume's kick, not a spinning poller. */
	return qi % 2 == 1 && qi < 2 * nd->pairs && !atomic_load(&nd->tx_blocked[qi / 2]);
}

static void net_destroy(struct virtio_dev *d)
{
	struct net_dev *nd = ND(d);

	backlog_clear(nd);
	if (nd->tx_timer_fd >= 0) {
		ioloop_del(&d->vm->io, nd->tx_timer_fd);
		close(nd->tx_timer_fd);
	}
	if (nd->mds)
		nd->mds->ops->destroy(nd->mds);
	if (nd->be)
		nd->be->ops->destroy(nd->be);
	free(nd);
}

static void net_print_stats(struct virtio_dev *d, int fd)
{
	struct net_dev *nd = ND(d);
	const struct net_stats *s = &nd->stats;

	dprintf(fd, "%s: tx frames=%llu bytes=%llu dropped=%llu metadata=%llu deferred=%llu; rx frames=%llu bytes=%llu "
		"dropped=%llu waited=%llu; ctrl=%llu errors=%llu\n", d->name,
		(unsigned long long)s->tx_frames, (unsigned long long)s->tx_bytes, (unsigned long long)s->tx_dropped,
		(unsigned long long)s->tx_mds, (unsigned long long)(s->tx_deferred + s->tx_requeued),
		(unsigned long long)s->rx_frames, (unsigned long long)s->rx_bytes,
		(unsigned long long)s->rx_dropped, (unsigned long long)s->rx_no_buffers,
		(unsigned long long)s->ctrl_cmds, (unsigned long long)s->ctrl_errs);
	if (nd->tx_delay_us)
		dprintf(fd, "  txdelay=%uus: looks=%llu\n", nd->tx_delay_us, (unsigned long long)s->tx_timer_fires);
	if (nd->be->ops->print_stats)
		nd->be->ops->print_stats(nd->be, fd);
}

static const struct virtio_dev_ops net_ops = {
	.config_size = NET_CONFIG_SIZE,
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
	.destroy = net_destroy,
	.print_stats = net_print_stats,
	.queue_pollable = net_queue_pollable,
};

int net_dev_create(struct vm *vm, const struct net_config *cfg, unsigned index, struct net_backend *be,
		   struct net_backend *mds, uint32_t mds_ip, uint32_t mds_alt_ip, struct net_dev **out)
{
	struct net_dev *nd = calloc(1, sizeof(*nd));
	uint64_t features;
	char name[24];
	int ret;

	if (!nd)
		return -ENOMEM;
	nd->be = be;
	nd->mds = mds;
	nd->mds_ip = mds_ip;
	nd->mds_alt_ip = mds_alt_ip;
	be->nd = nd;
	if (mds)
		mds->nd = nd;
	nd->max_pairs = MAX(1u, MIN(be->pairs, (unsigned)NET_MAX_PAIRS));
	nd->tx_timer_fd = -1;
	nd->tx_delay_us = MIN(cfg->tx_delay_set ? cfg->tx_delay_us : NET_TX_DELAY_US, NET_TX_DELAY_MAX_US);
	nd->pairs = 1;
	nd->ctrl_q = 2;
	if (cfg->mac_set) {
		memcpy(nd->mac_cfg, cfg->mac, 6);
	} else {
		static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

		memcpy(nd->mac_cfg, base, 6);
		nd->mac_cfg[5] = (uint8_t)(base[5] + index);
	}
	memcpy(nd->mac, nd->mac_cfg, 6);
	features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) | (1ull << VIRTIO_NET_F_MTU) |
		   (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_CTRL_VQ) | (1ull << VIRTIO_NET_F_CTRL_RX) |
		   (1ull << VIRTIO_NET_F_CTRL_MAC_ADDR) | (be->features & VIRTIO_NET_OFFLOADS);
	if (nd->max_pairs > 1)
		features |= 1ull << VIRTIO_NET_F_MQ;
	snprintf(name, sizeof(name), "virtio-net%u", index);
	ret = virtio_dev_init(&nd->vdev, vm, name, VIRTIO_ID_NET, features, 2 * nd->max_pairs + 1, NET_QUEUE_SIZE,
			      &net_ops, nd);
	if (ret < 0) {
		free(nd);
		return ret;
	}
	if (nd->tx_delay_us) {
		/* Without its timer the device still works: it looks again on the next loop turn (txdelay=0). */
		int err = 0;

		nd->tx_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (nd->tx_timer_fd < 0)
			err = errno;
		else
			err = -ioloop_add(&vm->io, nd->tx_timer_fd, EPOLLIN, tx_timer_ready, nd);
		if (err) {
			log_warn("%s: no txdelay timer (%s): transmit passes look again at once", name, strerror(err));
			if (nd->tx_timer_fd >= 0)
				close(nd->tx_timer_fd);
			nd->tx_timer_fd = -1;
			nd->tx_delay_us = 0;
		}
	}
	*out = nd;
	return 0;
}
