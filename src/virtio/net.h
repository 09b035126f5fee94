/* virtio-net (virtio 1.2 §5.1): the device, and the interface its host backends (TAP, libslirp) implement. */
#ifndef KILN_VIRTIO_NET_H
#define KILN_VIRTIO_NET_H

#include <stdatomic.h>
#include <sys/uio.h>
#include "virtio/virtio.h"
#include "net/frame.h"
#include "net/net_config.h"

/* Feature bits (§5.1.3). */
#define VIRTIO_NET_F_CSUM           0
#define VIRTIO_NET_F_GUEST_CSUM     1
#define VIRTIO_NET_F_MTU            3
#define VIRTIO_NET_F_MAC            5
#define VIRTIO_NET_F_GUEST_TSO4     7
#define VIRTIO_NET_F_GUEST_TSO6     8
#define VIRTIO_NET_F_GUEST_ECN      9
#define VIRTIO_NET_F_GUEST_UFO      10
#define VIRTIO_NET_F_HOST_TSO4      11
#define VIRTIO_NET_F_HOST_TSO6      12
#define VIRTIO_NET_F_HOST_ECN       13
#define VIRTIO_NET_F_HOST_UFO       14
#define VIRTIO_NET_F_MRG_RXBUF      15
#define VIRTIO_NET_F_STATUS         16
#define VIRTIO_NET_F_CTRL_VQ        17
#define VIRTIO_NET_F_CTRL_RX        18
#define VIRTIO_NET_F_MQ             22
#define VIRTIO_NET_F_CTRL_MAC_ADDR  23

#define VIRTIO_NET_S_LINK_UP 1

/* Control queue (§5.1.6.5). */
#define VIRTIO_NET_OK  0
#define VIRTIO_NET_ERR 1
#define VIRTIO_NET_CTRL_RX   0
#define VIRTIO_NET_CTRL_RX_PROMISC   0
#define VIRTIO_NET_CTRL_RX_NOBCAST   5
#define VIRTIO_NET_CTRL_MAC  1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET  1
#define VIRTIO_NET_CTRL_ANNOUNCE 3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0
#define VIRTIO_NET_CTRL_MQ   4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0

/* The offloads a backend that takes the virtio-net header as is (TAP with IFF_VNET_HDR) can carry. */
#define VIRTIO_NET_OFFLOADS                                                                                  \
	((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4) |   \
	 (1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_HOST_ECN) | (1ull << VIRTIO_NET_F_HOST_UFO) |  \
	 (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |                                \
	 (1ull << VIRTIO_NET_F_GUEST_ECN) | (1ull << VIRTIO_NET_F_GUEST_UFO))

#define NET_QUEUE_SIZE 256
#define NET_CONFIG_SIZE 12        /* mac, status, max_virtqueue_pairs, mtu (§5.1.4) */
#define NET_MTU 1500
/*
 * Frames injected by in-process stacks (libslirp, the metadata service)
 * while the guest has no rx buffer, and the bytes they may hold. A guest
 * that stops polling for a few tens of ms (its vCPU preempted on a busy
 * host) loses nothing a UDP flood sent meanwhile; QEMU's net queue holds
 * 10 000 packets. Small frames reach the frame cap (~1 MiB of heap), full
 * ones the byte cap.
 */
#define NET_RX_BACKLOG 8192
#define NET_RX_BACKLOG_BYTES (4u << 20)
#define NET_RX_IOV_MAX 1024       /* guest buffers one received packet may span (readv's IOV_MAX) */

struct net_dev;
struct net_backend;

/*
 * A host backend. tx runs on the I/O thread with the device lock held; it
 * gets the guest's frame as an iovec that starts with the 12-byte
 * virtio_net_hdr. Return 0 (sent or dropped), -EAGAIN (cannot take it
 * now: the device leaves the buffer in the ring and the backend calls
 * net_tx_resume() later), or NET_TX_DEFERRED: taken, and handed on later
 * (an in-process stack's turn), after which the backend calls
 * net_tx_resume(). Until then the device leaves the guest's notifications
 * off, so what the guest queues meanwhile goes with the next pass without
 * a kick — the effect QEMU gets by sending from a bottom half.
 */
#define NET_TX_DEFERRED 1

struct net_backend_ops {
	int (*tx)(struct net_backend *be, unsigned pair, const struct iovec *iov, int n, size_t len);
	/* Features are negotiated (activate) or the guest asked for `pairs` pairs; d->lock held. May be NULL. */
	void (*configure)(struct net_backend *be, uint64_t guest_features, unsigned pairs);
	/* Rx buffers appeared on `pair` after it ran dry: pull pending input (d->lock held). May be NULL. */
	void (*rx_resume)(struct net_backend *be, unsigned pair);
	/* Free it (the I/O thread has stopped; the network loop is detached). */
	void (*destroy)(struct net_backend *be);
	/* One --stats line. May be NULL. */
	void (*print_stats)(struct net_backend *be, int fd);
};

struct net_backend {
	const struct net_backend_ops *ops;
	uint64_t features;          /* virtio-net offload bits it can carry (0 or VIRTIO_NET_OFFLOADS) */
	unsigned pairs;             /* queue pairs it serves (1 unless TAP multiqueue) */
	struct net_dev *nd;         /* set by net_dev_create */
};

struct net_stats {
	uint64_t tx_frames, tx_bytes, tx_dropped, tx_mds;
	uint64_t tx_deferred;       /* tx passes that left kicks off for the backend's resume */
	uint64_t tx_requeued;       /* tx passes that left kicks off for another look (next turn, or after txdelay) */
	uint64_t tx_timer_fires;    /* looks the txdelay timer brought */
	uint64_t rx_frames, rx_bytes, rx_dropped, rx_no_buffers;
	uint64_t ctrl_cmds, ctrl_errs;
};

struct net_dev {
	struct virtio_dev vdev;
	struct net_backend *be;      /* the guest's network */
	struct net_backend *mds;     /* the metadata service's endpoint, or NULL */
	uint32_t mds_ip, mds_alt_ip; /* frames for these (network order) go to mds */
	uint8_t mac[6], mac_cfg[6];  /* current (CTRL_MAC_ADDR_SET) and configured */
	unsigned max_pairs, pairs;   /* offered, in use (MQ_VQ_PAIRS_SET) */
	unsigned ctrl_q;             /* index of the control queue once features are known */
	bool promisc;
	/* Frames injected by in-process stacks (slirp, metadata) waiting for rx buffers on pair 0. */
	struct net_pkt { uint32_t len; uint8_t *data; } backlog[NET_RX_BACKLOG];
	unsigned backlog_head, backlog_count;
	size_t backlog_bytes;        /* held by the backlog's frames (header included): NET_RX_BACKLOG_BYTES at most */
	bool rx_unsignalled;         /* net_inject delivered; net_inject_flush raises the interrupt */
	bool rx_turn_signalled;      /* this turn's first frame has raised its interrupt */
	_Atomic bool tx_blocked[NET_MAX_PAIRS];  /* a backend said -EAGAIN */
	/* txdelay (tx_kick): the timer for the next look at the transmit queues flagged in tx_delayed. */
	unsigned tx_delay_us;        /* 0: look again on the loop's next turn */
	int tx_timer_fd;
	bool tx_timer_armed;
	bool tx_delayed[NET_MAX_PAIRS];
	/*
	 * The rx chains popped for the packet being received (one at a time,
	 * d->lock held): net_rx_reserve fills it, net_rx_commit or
	 * net_rx_cancel empties it.
	 */
	struct net_rx_resv {
		unsigned pair;
		unsigned chains;
		unsigned niov;
		size_t cap;                      /* writable bytes in iov[0..niov) */
		uint8_t *nb_lo, *nb_hi;          /* where num_buffers' two bytes land in guest memory */
		uint64_t chain_cap[NET_QUEUE_SIZE];
		struct iovec iov[NET_RX_IOV_MAX];
	} rx;
	struct vq_chain chain;       /* scratch, d->lock held */
	struct iovec iov[VQ_MAX_BUFS];
	uint16_t heads[NET_QUEUE_SIZE];
	uint32_t lens[NET_QUEUE_SIZE];
	uint8_t scratch[NET_MAX_FRAME + VNET_HDR_LEN];  /* linear copy of a tx frame (metadata path) */
	struct net_stats stats;
};

/*
 * Make the device for `cfg` on backend be (and mds, the metadata endpoint, or
 * NULL). Does not register it with a transport (virtio_add does). The device
 * owns be and mds: virtio_dev_destroy frees them. 0 or -errno.
 */
int __must_check net_dev_create(struct vm *vm, const struct net_config *cfg, unsigned index, struct net_backend *be,
				struct net_backend *mds, uint32_t mds_ip, uint32_t mds_alt_ip, struct net_dev **out);

/*
 * The txdelay timer fired (the I/O thread calls this; tests call it
 * directly): the transmit queues waiting for it get their look, through a
 * kick on their eventfd.
 */
void net_tx_timer(struct net_dev *nd);

/*
 * Hand a received packet to the guest on rx pair `pair`: pkt is the 12-byte
 * virtio_net_hdr (num_buffers is filled in here) followed by the frame. d->lock
 * held. 0 delivered (the caller raises the interrupt: net_rx_done), -EAGAIN
 * the guest has no rx buffer now (keep it and retry on rx_resume), -E2BIG
 * too big for the guest's buffers, -ENODEV queue not live, -EIO the ring is
 * hostile (the device is now NEEDS_RESET).
 */
int net_rx_deliver(struct net_dev *nd, unsigned pair, uint8_t *pkt, size_t len);

/*
 * Receiving in place (d->lock held), for a backend that can write a packet
 * straight into guest memory (the tap's readv): reserve the guest's rx
 * buffers, let the packet land in them, commit its length.
 *
 * net_rx_reserve pops rx chains on `pair` while the reservation holds less
 * than `want` bytes and the ring has chains ready, and fails unless it then
 * holds at least `need` bytes (need 1: any buffer). Called again, it extends
 * the reservation. *iov and *niov list the reserved guest buffers (the
 * packet, header first); *iov has room for one more entry after them.
 * 0, -EAGAIN (not `need` bytes; notifications are re-armed, so the guest
 * kicks rx when it adds buffers), -E2BIG (the guest's buffers cannot hold
 * `need`), -ENODEV (queue not live), -EIO (hostile ring; NEEDS_RESET).
 * After any result the caller ends the reservation with one of:
 *   net_rx_commit: the first len bytes (<= the reservation) are a packet;
 *     the chains it filled go to the used ring, the rest back to the ring.
 *     Returns 0 or -EIO.
 *   net_rx_cancel: every reserved chain goes back, untouched by the guest's view.
 */
int net_rx_reserve(struct net_dev *nd, unsigned pair, size_t want, size_t need, struct iovec **iov, unsigned *niov,
		   size_t *cap);
int net_rx_commit(struct net_dev *nd, size_t len);
void net_rx_cancel(struct net_dev *nd);
/* After one or more net_rx_deliver()s or commits on pair: interrupt the guest if it wants one. */
void net_rx_done(struct net_dev *nd, unsigned pair);

/*
 * From an in-process stack (slirp, in the network loop's turn): a frame for
 * the guest on pair 0 with no header. Takes d->lock. Delivered now, or kept
 * (bounded) until the guest posts rx buffers, or dropped. The turn's first
 * frame raises its interrupt at once, so the guest's NAPI poll starts while
 * the rest of the burst comes; the rest wait for net_inject_flush, which the
 * stack calls at the end of its turn: a burst (a window of TCP data, a run
 * of ACKs) then costs the guest at most two interrupts, and its poll finds
 * the burst, instead of racing the producer frame by frame.
 */
void net_inject(struct net_dev *nd, const void *frame, size_t len);
/* Raise the interrupt for what net_inject delivered since the last flush (if the driver wants one). */
void net_inject_flush(struct net_dev *nd);

/*
 * A backend that returned -EAGAIN or NET_TX_DEFERRED from tx is done with
 * those frames: look at the tx queue again, at once or txdelay later (see
 * tx_kick). Any thread, but not with the device's lock held (it takes it).
 */
void net_tx_resume(struct net_dev *nd, unsigned pair);

#endif
