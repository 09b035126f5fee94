/* The TAP backend: an existing tap device (by name, or an fd passed in) with the virtio-net header, offloads and multiqueue. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>
#include "net/tap.h"
#include "virtio/net.h"
#include "core/vm.h"
#include "core/log.h"

/*
 * The tap carries the 12-byte virtio_net_hdr in front of every frame
 * (IFF_VNET_HDR + TUNSETVNETHDRSZ), so the guest's offload requests go to the
 * host kernel untouched and the kernel's GSO/partial-checksum packets come to
 * the guest untouched: no checksum or segmentation work in kiln.
 *
 * One fd per queue pair (IFF_MULTI_QUEUE); pairs the guest does not use are
 * detached with TUNSETQUEUE so the kernel steers no packet to them.
 *
 * Rx: an edge-triggered fd on the I/O thread. Each packet is read straight
 * into the guest's rx buffers (readv over a reservation of them, sized by
 * the last packet on the queue, with the pair's bounce buffer as a last
 * iovec entry for what does not fit): a 64 KiB GSO packet crosses memory
 * once, in the kernel, as with vhost-net. A packet longer than the
 * reservation goes on into more guest buffers from the bounce buffer. When
 * the guest has no buffers nothing is read (the kernel queues, then drops,
 * as a NIC would) until it adds some (rx_resume); a packet read in part
 * when they ran out waits whole in the bounce buffer. Meanwhile the fd is
 * not watched (muted): every packet the kernel queued would wake the I/O
 * thread for nothing, and under a flood that the guest cannot keep up with
 * those wakeups took the host CPU the sender and the guest needed (QEMU
 * stops reading its tap the same way while the guest has no room).
 */

struct tap_queue {
	struct tap *t;
	unsigned pair;
	int fd;
	bool attached;
	int retry_efd;          /* signalled when a drain stopped on its budget with input left */
	bool pending;           /* buf holds a packet the guest had no room for */
	bool starved;           /* the last drain stopped for want of guest buffers */
	bool muted;             /* fd not watched until the guest adds buffers (rx_resume) */
	size_t pending_len;
	size_t last_len;        /* of the last packet read: the size of the next reservation */
	uint8_t buf[VNET_HDR_LEN + NET_MAX_FRAME];
};

struct tap {
	struct net_backend be;
	struct vm *vm;
	char ifname[IFNAMSIZ];
	unsigned nq;
	struct tap_queue *q[NET_MAX_PAIRS];
	uint64_t rx_errors, tx_errors;
	uint64_t mutes;         /* times the fd was muted for want of guest buffers */
};

static struct tap *T(struct net_backend *be)
{
	return (struct tap *)be;
}

static void tap_readable(void *opaque, uint32_t events);

enum { RX_DONE, RX_EMPTY, RX_STOP };

/*
 * Read one packet into the guest's buffers. RX_DONE a packet was read
 * (delivered or dropped), RX_EMPTY the tap has no more, RX_STOP stop reading
 * (the guest has no room, or the queue is gone). d->lock held.
 */
static int tap_rx_one(struct tap_queue *tq, unsigned *delivered)
{
	struct net_dev *nd = tq->t->be.nd;
	struct iovec *iov;
	unsigned niov;
	size_t cap, extra;
	ssize_t n;
	int r;

	r = net_rx_reserve(nd, tq->pair, tq->last_len, 1, &iov, &niov, &cap);
	if (r == -EAGAIN) {
		/* No buffer at all: leave the packets in the kernel; the guest's kick brings us back. */
		net_rx_cancel(nd);
		nd->stats.rx_no_buffers++;
		tq->starved = true;
		return RX_STOP;
	}
	if (r < 0) {
		/* Queue not live or a broken ring: read the packet to drop it, then stop until something changes. */
		net_rx_cancel(nd);
		if (read(tq->fd, tq->buf, sizeof(tq->buf)) >= 0)
			nd->stats.rx_dropped++;
		return RX_STOP;
	}
	iov[niov] = (struct iovec){ .iov_base = tq->buf, .iov_len = sizeof(tq->buf) };
	do {
		n = readv(tq->fd, iov, (int)niov + 1);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		net_rx_cancel(nd);
		if (errno != EAGAIN)
			tq->t->rx_errors++;
		return RX_EMPTY;
	}
	if ((size_t)n < VNET_HDR_LEN || (size_t)n > sizeof(tq->buf)) {
		net_rx_cancel(nd);
		nd->stats.rx_dropped++;
		return RX_DONE;
	}
	tq->last_len = (size_t)n;
	if ((size_t)n > cap) {
		/* The rest is in the bounce buffer: more guest buffers for it, or the whole packet waits there. */
		extra = (size_t)n - cap;
		r = net_rx_reserve(nd, tq->pair, (size_t)n, (size_t)n, &iov, &niov, &cap);
		if (r == 0) {
			iov_copy_in(iov, (int)niov, (size_t)n - extra, tq->buf, extra);
		} else {
			if (r == -EAGAIN) {
				memmove(tq->buf + (size_t)n - extra, tq->buf, extra);
				iov_copy_out(iov, (int)niov, 0, tq->buf, (size_t)n - extra);
				tq->pending = true;
				tq->pending_len = (size_t)n;
				nd->stats.rx_no_buffers++;
				tq->starved = true;
			} else {
				nd->stats.rx_dropped++;
			}
			net_rx_cancel(nd);
			return r == -EAGAIN || r == -EIO ? RX_STOP : RX_DONE;
		}
	}
	if (net_rx_commit(nd, (size_t)n) < 0)
		return RX_STOP;
	(*delivered)++;
	return RX_DONE;
}

/*
 * Watch the fd, or stop watching it while the guest has no buffers. A mute
 * that fails leaves the fd watched (spare wakeups, nothing lost); an unmute
 * that fails is retried by the next drain. Called on the I/O thread.
 */
static void tap_watch(struct tap_queue *tq, bool on)
{
	if (on == !tq->muted)
		return;
	if (ioloop_mod(&tq->t->vm->io, tq->fd, on ? EPOLLIN | EPOLLET : 0) < 0) {
		tq->t->rx_errors++;
		return;
	}
	tq->muted = !on;
	if (!on)
		tq->t->mutes++;
}

/* Read and deliver until the tap is empty, the guest has no buffer, or a budget is spent. d->lock held. */
static void tap_rx_drain(struct tap_queue *tq)
{
	struct net_dev *nd = tq->t->be.nd;
	unsigned delivered = 0, signalled = 0, budget;
	bool budget_spent = false;

	tq->starved = false;
	for (budget = 0;; budget++) {
		/*
		 * The first packet of a drain interrupts at once (if the driver
		 * wants it): the guest's poll then runs while the rest comes in,
		 * instead of waiting for the whole drain. The rest cost at most
		 * one more interrupt, at the end. Under a flood of small packets
		 * this took the guest's receive rate from ~20 000 to ~27 500
		 * packets/s in the lab (docs/benchmarks.md).
		 */
		if (delivered && !signalled) {
			net_rx_done(nd, tq->pair);
			signalled = delivered;
		}
		if (budget == NET_QUEUE_SIZE) {
			budget_spent = true;
			break;
		}
		if (tq->pending) {
			/* A packet that found the guest short of buffers goes first, whole. */
			int r = net_rx_deliver(nd, tq->pair, tq->buf, tq->pending_len);

			if (r == -EAGAIN) {
				nd->stats.rx_no_buffers++;
				tq->starved = true;
				break; /* keep it; rx_resume retries */
			}
			tq->pending = false;
			if (r == 0)
				delivered++;
			else
				nd->stats.rx_dropped++;
			if (r == -EIO || r == -ENODEV)
				break;
			continue;
		}
		if (tap_rx_one(tq, &delivered) != RX_DONE)
			break;
	}
	if (delivered > signalled)
		net_rx_done(nd, tq->pair);
	tap_watch(tq, !tq->starved);
	if (budget_spent) {
		/* Input may be left and an edge-triggered fd will not fire for it: come back on the next turn. */
		uint64_t one = 1;

		if (write(tq->retry_efd, &one, sizeof(one)) < 0)
			tq->t->rx_errors++;
	}
}

static void tap_retry(void *opaque, uint32_t events)
{
	struct tap_queue *tq = opaque;
	uint64_t n;

	if (read(tq->retry_efd, &n, sizeof(n)) < 0)
		return;
	tap_readable(opaque, events);
}

static void tap_readable(void *opaque, uint32_t events)
{
	struct tap_queue *tq = opaque;
	struct net_dev *nd = tq->t->be.nd;

	pthread_mutex_lock(&nd->vdev.lock);
	tap_rx_drain(tq);
	pthread_mutex_unlock(&nd->vdev.lock);
}

static void tap_rx_resume(struct net_backend *be, unsigned pair)
{
	struct tap *t = T(be);

	if (pair < t->nq)
		tap_rx_drain(t->q[pair]);
}

static int tap_tx(struct net_backend *be, unsigned pair, const struct iovec *iov, int n, size_t len)
{
	struct tap *t = T(be);
	ssize_t w;

	if (pair >= t->nq)
		return -EINVAL;
	/* The guest's header goes as is: the kernel validates it (virtio_net_hdr_to_skb) and drops bad ones. */
	do {
		w = writev(t->q[pair]->fd, iov, n);
	} while (w < 0 && errno == EINTR);
	if (w < 0) {
		t->tx_errors++;
		return -EIO; /* dropped: a full or down tap loses the frame, as a wire would */
	}
	return 0;
}

static void tap_configure(struct net_backend *be, uint64_t f, unsigned pairs)
{
	struct tap *t = T(be);
	unsigned off = 0;

	/* TUNSETOFFLOAD says what the reader (the guest) can take: only what it negotiated (§5.1.3.1). */
	if (f & (1ull << VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (f & (1ull << VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (f & (1ull << VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
		if (f & (1ull << VIRTIO_NET_F_GUEST_ECN))
			off |= TUN_F_TSO_ECN;
		if (f & (1ull << VIRTIO_NET_F_GUEST_UFO))
			off |= TUN_F_UFO;
	}
	for (unsigned i = 0; i < t->nq; i++) {
		if (ioctl(t->q[i]->fd, TUNSETOFFLOAD, off) < 0 &&
		    ioctl(t->q[i]->fd, TUNSETOFFLOAD, off & ~(unsigned)TUN_F_UFO) < 0)
			log_warn("tap %s: TUNSETOFFLOAD %#x: %s", t->ifname, off, strerror(errno));
	}
	if (t->nq > 1) {
		for (unsigned i = 0; i < t->nq; i++) {
			bool want = i < pairs;
			struct ifreq ifr = { .ifr_flags = want ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE };

			if (want == t->q[i]->attached)
				continue;
			if (ioctl(t->q[i]->fd, TUNSETQUEUE, &ifr) < 0)
				log_warn("tap %s: %s queue %u: %s", t->ifname, want ? "attach" : "detach", i,
					 strerror(errno));
			else
				t->q[i]->attached = want;
		}
	}
}

static void tap_destroy(struct net_backend *be)
{
	struct tap *t = T(be);

	for (unsigned i = 0; i < t->nq; i++) {
		if (!t->q[i])
			continue;
		if (t->q[i]->fd >= 0) {
			ioloop_del(&t->vm->io, t->q[i]->fd);
			close(t->q[i]->fd);
		}
		if (t->q[i]->retry_efd >= 0) {
			ioloop_del(&t->vm->io, t->q[i]->retry_efd);
			close(t->q[i]->retry_efd);
		}
		free(t->q[i]);
	}
	free(t);
}

static void tap_print_stats(struct net_backend *be, int fd)
{
	struct tap *t = T(be);

	dprintf(fd, "  tap %s: queues=%u rx_errors=%llu tx_errors=%llu muted=%llu\n", t->ifname, t->nq,
		(unsigned long long)t->rx_errors, (unsigned long long)t->tx_errors, (unsigned long long)t->mutes);
}

static const struct net_backend_ops tap_ops = {
	.tx = tap_tx,
	.configure = tap_configure,
	.rx_resume = tap_rx_resume,
	.destroy = tap_destroy,
	.print_stats = tap_print_stats,
};

/* Open one queue of tap `name`; returns the fd or -1 with a one-line reason. */
static int tap_open_queue(const char *name, bool multi, char *msg, size_t msglen)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		snprintf(msg, msglen, "/dev/net/tun: %s%s", strerror(errno),
			 errno == ENOENT ? " (load the tun module)" : "");
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	/*
	 * IFF_TUN_EXCL is not set: kiln attaches to a tap that exists (made by
	 * `ip tuntap add`), it does not create one; see the EPERM/EBUSY cases.
	 */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;

		if (e == EPERM)
			snprintf(msg, msglen, "tap %s: permission denied (create it with `ip tuntap add %s mode tap user "
				 "$USER%s`, or run kiln with CAP_NET_ADMIN)", name, name, multi ? " multi_queue" : "");
		else if (e == EBUSY)
			snprintf(msg, msglen, "tap %s: busy (another process holds it, or it was made %s)", name,
				 multi ? "without multi_queue" : "with multi_queue and needs queues=N");
		else if (e == EINVAL)
			snprintf(msg, msglen, "tap %s: flags do not match: %s", name,
				 multi ? "queues=N needs a tap made with multi_queue"
				       : "a tap made with multi_queue needs queues=2 or more (or it is a tun, not a tap)");
		else
			snprintf(msg, msglen, "tap %s: %s", name, strerror(e));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * TUNSETIFF on a name that does not exist creates the device when kiln may
 * (CAP_NET_ADMIN); kiln only attaches, so refuse a name that is not there
 * before asking.
 */
static bool tap_exists(const char *name)
{
	char path[64 + IFNAMSIZ];

	snprintf(path, sizeof(path), "/sys/class/net/%s", name);
	return access(path, F_OK) == 0;
}

static int tap_setup_fd(struct tap *t, unsigned i, int fd, char *msg, size_t msglen)
{
	int hdr = VNET_HDR_LEN;
	unsigned flags;
	struct tap_queue *tq = calloc(1, sizeof(*tq));
	int ret;

	if (!tq) {
		snprintf(msg, msglen, "out of memory");
		close(fd);
		return -1;
	}
	tq->t = t;
	tq->pair = i;
	tq->fd = fd;
	tq->attached = true;
	tq->last_len = VNET_HDR_LEN + ETH_HLEN_ + NET_MTU;
	t->q[i] = tq;
	tq->retry_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (tq->retry_efd < 0 || ioloop_add(&t->vm->io, tq->retry_efd, EPOLLIN, tap_retry, tq) < 0) {
		snprintf(msg, msglen, "tap %s: eventfd: %s", t->ifname, strerror(errno));
		return -1;
	}
	if (ioctl(fd, TUNGETFEATURES, &flags) == 0 && !(flags & IFF_VNET_HDR)) {
		snprintf(msg, msglen, "tap %s: the kernel's tun driver has no IFF_VNET_HDR", t->ifname);
		return -1;
	}
	/* The 12-byte header of VERSION_1 (with num_buffers), not the legacy 10-byte one. */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		snprintf(msg, msglen, "tap %s: TUNSETVNETHDRSZ: %s", t->ifname, strerror(errno));
		return -1;
	}
	/* Nothing offloaded until the guest negotiates (activate). */
	if (ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		snprintf(msg, msglen, "tap %s: TUNSETOFFLOAD: %s", t->ifname, strerror(errno));
		return -1;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		snprintf(msg, msglen, "tap %s: O_NONBLOCK: %s", t->ifname, strerror(errno));
		return -1;
	}
	ret = ioloop_add(&t->vm->io, fd, EPOLLIN | EPOLLET, tap_readable, tq);
	if (ret < 0) {
		snprintf(msg, msglen, "tap %s: I/O loop: %s", t->ifname, strerror(-ret));
		return -1;
	}
	return 0;
}

int tap_backend_create(struct vm *vm, const struct net_config *cfg, struct net_backend **out, char *msg,
		       size_t msglen)
{
	struct tap *t = calloc(1, sizeof(*t));
	unsigned nq = cfg->kind == NET_TAP ? MAX(1u, cfg->queues) : 1;

	if (!t) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	t->vm = vm;
	t->be.ops = &tap_ops;
	t->be.features = VIRTIO_NET_OFFLOADS;
	t->be.pairs = nq;
	if (cfg->kind == NET_TAPFD) {
		struct ifreq ifr;

		memset(&ifr, 0, sizeof(ifr));
		if (fcntl(cfg->fd, F_GETFD) < 0) {
			snprintf(msg, msglen, "tapfd=%d: %s", cfg->fd, strerror(errno));
			free(t);
			return -1;
		}
		if (ioctl(cfg->fd, TUNGETIFF, &ifr) < 0) {
			snprintf(msg, msglen, "tapfd=%d: not a tap: %s", cfg->fd, strerror(errno));
			free(t);
			return -1;
		}
		if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_VNET_HDR) || !(ifr.ifr_flags & IFF_NO_PI)) {
			snprintf(msg, msglen, "tapfd=%d (%s): needs a tap opened with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR",
				 cfg->fd, ifr.ifr_name);
			free(t);
			return -1;
		}
		snprintf(t->ifname, sizeof(t->ifname), "%s", ifr.ifr_name);
		t->nq = 1;
		if (tap_setup_fd(t, 0, cfg->fd, msg, msglen) < 0)
			goto fail;
	} else {
		snprintf(t->ifname, sizeof(t->ifname), "%s", cfg->ifname);
		if (strlen(cfg->ifname) >= IFNAMSIZ) {
			snprintf(msg, msglen, "tap %s: name longer than %d bytes", cfg->ifname, IFNAMSIZ - 1);
			free(t);
			return -1;
		}
		if (!tap_exists(cfg->ifname)) {
			snprintf(msg, msglen, "tap %s: no such device (create it first: ip tuntap add %s mode tap%s)",
				 cfg->ifname, cfg->ifname, nq > 1 ? " multi_queue" : "");
			free(t);
			return -1;
		}
		for (unsigned i = 0; i < nq; i++) {
			int fd = tap_open_queue(cfg->ifname, nq > 1, msg, msglen);

			if (fd < 0)
				goto fail;
			t->nq = i + 1;
			if (tap_setup_fd(t, i, fd, msg, msglen) < 0)
				goto fail;
		}
	}
	*out = &t->be;
	return 0;
fail:
	tap_destroy(&t->be);
	return -1;
}
