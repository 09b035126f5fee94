/* Unit tests for virtio-net: tx/rx/control chains (well-formed and hostile), mergeable rx buffers, backpressure, the metadata split, frame helpers. */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "stub_vm.h"
#include "virtio/net.h"
#include "net/frame.h"

#define RAM (32 * MiB)
#define QSIZE 16
#define RING_BASE 0x100000ULL  /* queue q: desc +0, avail +0x1000, used +0x2000, every 0x4000 */
#define BUF_BASE  0x400000ULL

/* ---- a fake backend that records what it is given ---- */

struct fake_be {
	struct net_backend be;
	unsigned frames;
	unsigned last_pair;
	size_t last_len;
	uint8_t last[2048];
	int ret;                /* what tx returns (< 0: refuses the frame) */
	unsigned configured;
	uint64_t cfg_features;
	unsigned cfg_pairs;
	unsigned resumes;
	bool destroyed;
};

static int fb_tx(struct net_backend *be, unsigned pair, const struct iovec *iov, int n, size_t len)
{
	struct fake_be *f = (struct fake_be *)be;

	if (f->ret < 0)
		return f->ret;
	f->frames++;
	f->last_pair = pair;
	f->last_len = len;
	iov_copy_out(iov, n, 0, f->last, sizeof(f->last));
	return f->ret;
}

static void fb_configure(struct net_backend *be, uint64_t features, unsigned pairs)
{
	struct fake_be *f = (struct fake_be *)be;

	f->configured++;
	f->cfg_features = features;
	f->cfg_pairs = pairs;
}

static void fb_resume(struct net_backend *be, unsigned pair)
{
	((struct fake_be *)be)->resumes++;
}

static void fb_destroy(struct net_backend *be)
{
	((struct fake_be *)be)->destroyed = true;
}

static const struct net_backend_ops fb_ops = {
	.tx = fb_tx, .configure = fb_configure, .rx_resume = fb_resume, .destroy = fb_destroy,
};

/* ---- a fake driver ---- */

struct t {
	struct vm vm;
	struct net_dev *nd;
	struct fake_be be, mds;
	uint16_t avail_idx[VIRTIO_MAX_QUEUES];
	uint16_t next_desc[VIRTIO_MAX_QUEUES];
	gpa_t next_buf;
};

static void *G(struct t *t, gpa_t gpa, uint64_t len)
{
	void *p = vm_gpa(&t->vm, gpa, len);

	assert_non_null(p);
	return p;
}

static gpa_t ring(unsigned q) { return RING_BASE + (gpa_t)q * 0x4000; }

static gpa_t buf(struct t *t, size_t len)
{
	gpa_t g = t->next_buf;

	t->next_buf += ALIGN_UP(len, 64) + 64;
	return g;
}

struct b { gpa_t gpa; uint32_t len; bool write; };

/* Add a chain of n buffers to queue q and publish it; returns the head. */
static uint16_t add_chain(struct t *t, unsigned q, const struct b *bs, unsigned n)
{
	uint16_t head = t->next_desc[q];
	uint16_t *avail = G(t, ring(q) + 0x1000, 4 + 2 * QSIZE);

	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSIZE);
		struct vring_desc d = {
			.addr = htole64(bs[i].gpa), .len = htole32(bs[i].len),
			.flags = htole16((uint16_t)((bs[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0))),
			.next = htole16((uint16_t)((idx + 1) % QSIZE)),
		};
		memcpy(G(t, ring(q) + 16ull * idx, 16), &d, 16);
	}
	t->next_desc[q] = (uint16_t)((head + n) % QSIZE);
	avail[2 + t->avail_idx[q] % QSIZE] = htole16(head);
	t->avail_idx[q]++;
	__atomic_store_n(&avail[1], htole16(t->avail_idx[q]), __ATOMIC_RELEASE);
	return head;
}

static uint16_t used_idx(struct t *t, unsigned q)
{
	return le16toh(*(uint16_t *)G(t, ring(q) + 0x2000 + 2, 2));
}

static struct vring_used_elem used_elem(struct t *t, unsigned q, unsigned i)
{
	struct vring_used_elem e;

	memcpy(&e, G(t, ring(q) + 0x2000 + 4 + 8ull * (i % QSIZE), 8), 8);
	e.id = le32toh(e.id);
	e.len = le32toh(e.len);
	return e;
}

static void kick(struct t *t, unsigned q)
{
	struct virtio_dev *d = &t->nd->vdev;

	pthread_mutex_lock(&d->lock);
	if (virtio_queue_live(d, q))
		d->ops->queue_notify(d, q);
	pthread_mutex_unlock(&d->lock);
}

static bool broken(struct t *t)
{
	return t->nd->vdev.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

#define F(x) (1ull << (x))

static struct t *bring_up_poll(uint64_t features, unsigned be_pairs, bool with_mds, unsigned poll_us, int tx_delay);

static struct t *bring_up(uint64_t features, unsigned be_pairs, bool with_mds)
{
	return bring_up_poll(features, be_pairs, with_mds, 0, 0);
}

/*
 * As bring_up, with the I/O loop's --io-poll window set before the device
 * exists (so it registers a poller), and txdelay (-1: a tap's default; a
 * user NIC has none. bring_up uses 0, a look on the loop's next turn, which
 * the tests see as a kick).
 */
static struct t *bring_up_poll(uint64_t features, unsigned be_pairs, bool with_mds, unsigned poll_us, int tx_delay)
{
	struct t *t = calloc(1, sizeof(*t));
	struct net_config cfg = { .kind = tx_delay < 0 ? NET_TAP : NET_USER, .queues = 1, .tx_delay_set = tx_delay >= 0,
				  .tx_delay_us = tx_delay >= 0 ? (unsigned)tx_delay : 0 };
	struct virtio_dev *d;
	uint32_t mip, malt;

	assert_non_null(t);
	stub_vm_init(&t->vm, RAM);
	assert_int_equal(ioloop_init(&t->vm.io), 0);
	ioloop_set_poll_us(&t->vm.io, poll_us);
	t->be.be = (struct net_backend){ .ops = &fb_ops, .features = VIRTIO_NET_OFFLOADS, .pairs = be_pairs };
	t->mds.be = (struct net_backend){ .ops = &fb_ops, .pairs = 1 };
	inet_pton(AF_INET, "169.254.169.254", &mip);
	inet_pton(AF_INET, "169.254.169.253", &malt);
	assert_int_equal(net_dev_create(&t->vm, &cfg, 0, &t->be.be, with_mds ? &t->mds.be : NULL, mip, malt, &t->nd), 0);
	d = &t->nd->vdev;
	t->next_buf = BUF_BASE;
	pthread_mutex_lock(&d->lock);
	virtio_write_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	d->guest_features = features | F(VIRTIO_F_VERSION_1);
	assert_int_equal(d->guest_features & ~d->host_features, 0);
	virtio_write_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < d->nqueues; q++) {
		d->qcfg[q].size = QSIZE;
		d->qcfg[q].desc = ring(q);
		d->qcfg[q].avail = ring(q) + 0x1000;
		d->qcfg[q].used = ring(q) + 0x2000;
		assert_int_equal(virtio_queue_enable(d, q), 0);
	}
	virtio_write_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
				       VIRTIO_STATUS_DRIVER_OK);
	assert_false(broken(t));
	pthread_mutex_unlock(&d->lock);
	/* DRIVER_OK kicked every queue once (work queued before it); the tests count kicks from here. */
	for (unsigned q = 0; q < d->nqueues; q++) {
		uint64_t n;

		if (d->kick_fd[q] >= 0 && read(d->kick_fd[q], &n, sizeof(n)) < 0)
			assert_int_equal(errno, EAGAIN);
	}
	return t;
}

static void tear_down(struct t *t)
{
	virtio_dev_destroy(&t->nd->vdev);
	assert_true(t->be.destroyed);
	ioloop_destroy(&t->vm.io);
	stub_vm_fini(&t->vm);
	free(t);
}

#define BASE_F (F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_MAC))

/* A minimal Ethernet frame after a zero header. */
static gpa_t put_frame(struct t *t, size_t frame_len, uint8_t fill)
{
	gpa_t g = buf(t, VNET_HDR_LEN + frame_len);
	uint8_t *p = G(t, g, VNET_HDR_LEN + frame_len);

	memset(p, 0, VNET_HDR_LEN);
	memset(p + VNET_HDR_LEN, fill, frame_len);
	return g;
}

/* ---- tx ---- */

static void test_tx_frame(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	gpa_t g = put_frame(t, 60, 0xab);
	/* Header and frame in separate buffers, as Linux does without any_header_sg. */
	struct b bs[2] = { { g, VNET_HDR_LEN, false }, { g + VNET_HDR_LEN, 60, false } };
	uint16_t head = add_chain(t, 1, bs, 2);

	kick(t, 1);
	assert_int_equal(t->be.frames, 1);
	assert_int_equal(t->be.last_len, VNET_HDR_LEN + 60);
	assert_int_equal(t->be.last[VNET_HDR_LEN + 59], 0xab);
	assert_int_equal(used_idx(t, 1), 1);
	assert_int_equal(used_elem(t, 1, 0).id, head);
	assert_int_equal(used_elem(t, 1, 0).len, 0);
	assert_int_equal(t->nd->stats.tx_frames, 1);
	tear_down(t);
}

static void test_tx_hostile(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	gpa_t g = put_frame(t, 60, 1);
	struct b shortc[1] = { { g, 8, false } };
	struct b writable[2] = { { g, 72, false }, { g, 16, true } };
	struct b outside[1] = { { RAM - 16, 72, false } };

	/* Shorter than a header plus an Ethernet header: dropped, buffer returned. */
	add_chain(t, 1, shortc, 1);
	kick(t, 1);
	assert_int_equal(t->be.frames, 0);
	assert_int_equal(used_idx(t, 1), 1);
	assert_int_equal(t->nd->stats.tx_dropped, 1);
	assert_false(broken(t));
	/* A device-writable buffer on a tx queue: the driver broke the rules -> NEEDS_RESET, no crash. */
	add_chain(t, 1, writable, 2);
	kick(t, 1);
	assert_true(broken(t));
	assert_int_equal(t->be.frames, 0);
	tear_down(t);

	/* A buffer that runs past the end of RAM. */
	t = bring_up(BASE_F, 1, false);
	add_chain(t, 1, outside, 1);
	kick(t, 1);
	assert_true(broken(t));
	assert_int_equal(t->be.frames, 0);
	tear_down(t);
}

/* A full backend leaves the buffer in the ring; net_tx_resume brings it back. */
static void test_tx_backpressure(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	gpa_t g = put_frame(t, 60, 2);
	struct b bs[1] = { { g, 72, false } };
	uint64_t n;

	add_chain(t, 1, bs, 1);
	t->be.ret = -EAGAIN;
	kick(t, 1);
	assert_int_equal(used_idx(t, 1), 0);
	assert_true(t->nd->tx_blocked[0]);
	t->be.ret = 0;
	net_tx_resume(t->nd, 0);
	/* The resume is a kick on the queue's eventfd (the I/O thread would run it). */
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), (ssize_t)sizeof(n));
	kick(t, 1);
	assert_int_equal(used_idx(t, 1), 1);
	assert_int_equal(t->be.frames, 1);
	tear_down(t);
}

/* A guest that keeps the ring full gets at most one ring's worth per turn, then a re-kick. */
static void test_tx_bounded(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	gpa_t g = put_frame(t, 60, 3);
	struct b bs[1] = { { g, 72, false } };
	uint64_t n;

	for (int i = 0; i < QSIZE; i++)
		add_chain(t, 1, bs, 1);
	kick(t, 1);
	assert_int_equal(t->be.frames, QSIZE);
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), (ssize_t)sizeof(n));
	tear_down(t);
}

/* ---- rx ---- */

static uint8_t *rx_pkt(size_t frame_len, uint8_t fill)
{
	uint8_t *p = malloc(VNET_HDR_LEN + frame_len);

	assert_non_null(p);
	memset(p, 0, VNET_HDR_LEN);
	p[0] = VIRTIO_NET_HDR_F_DATA_VALID;
	memset(p + VNET_HDR_LEN, fill, frame_len);
	return p;
}

static int deliver(struct t *t, unsigned pair, uint8_t *p, size_t len)
{
	int r;

	pthread_mutex_lock(&t->nd->vdev.lock);
	r = net_rx_deliver(t->nd, pair, p, len);
	pthread_mutex_unlock(&t->nd->vdev.lock);
	return r;
}

static void test_rx_mergeable(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	gpa_t b0 = buf(t, 100), b1 = buf(t, 100), b2 = buf(t, 100);
	/* First chain: the header itself is split 5 + 95, so num_buffers straddles nothing but lands in part 2. */
	struct b c0[2] = { { b0, 5, true }, { b0 + 5, 95, true } };
	struct b c1[1] = { { b1, 100, true } };
	struct b c2[1] = { { b2, 100, true } };
	uint8_t *p = rx_pkt(238, 0x5a), *g;

	add_chain(t, 0, c0, 2);
	add_chain(t, 0, c1, 1);
	add_chain(t, 0, c2, 1);
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 238), 0);
	assert_int_equal(used_idx(t, 0), 3);
	assert_int_equal(used_elem(t, 0, 0).len, 100);
	assert_int_equal(used_elem(t, 0, 1).len, 100);
	assert_int_equal(used_elem(t, 0, 2).len, 50);
	g = G(t, b0, 100);
	assert_int_equal(g[0], VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(g[10] | g[11] << 8, 3);           /* num_buffers */
	assert_int_equal(g[12], 0x5a);
	assert_int_equal(((uint8_t *)G(t, b2, 100))[49], 0x5a);
	free(p);
	tear_down(t);
}

/* Not enough buffers: nothing is consumed, the packet waits; later it fits. */
static void test_rx_no_room(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	gpa_t b0 = buf(t, 100), b1 = buf(t, 200);
	struct b c0[1] = { { b0, 100, true } };
	struct b c1[1] = { { b1, 200, true } };
	uint8_t *p = rx_pkt(150, 7);

	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 150), -EAGAIN);
	add_chain(t, 0, c0, 1);
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 150), -EAGAIN);
	assert_int_equal(used_idx(t, 0), 0);
	add_chain(t, 0, c1, 1);
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 150), 0);
	assert_int_equal(used_idx(t, 0), 2);
	free(p);
	tear_down(t);
}

/* Without MRG_RXBUF a packet must fit one chain: a small one is left alone (-E2BIG). */
static void test_rx_no_mergeable(void **state)
{
	struct t *t = bring_up(F(VIRTIO_NET_F_CTRL_VQ), 1, false);
	gpa_t b0 = buf(t, 64), b1 = buf(t, 2048);
	struct b c0[1] = { { b0, 64, true } };
	struct b c1[2] = { { b1, 12, true }, { b1 + 12, 2036, true } };
	uint8_t *p = rx_pkt(100, 9), *g;

	add_chain(t, 0, c0, 1);
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 100), -E2BIG);
	assert_int_equal(used_idx(t, 0), 0);
	tear_down(t);

	t = bring_up(F(VIRTIO_NET_F_CTRL_VQ), 1, false);
	add_chain(t, 0, c1, 2);
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 100), 0);
	g = G(t, b1, 12);
	assert_int_equal(g[10] | g[11] << 8, 1);
	assert_int_equal(used_elem(t, 0, 0).len, VNET_HDR_LEN + 100);
	free(p);
	tear_down(t);
}

static void test_rx_hostile(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	gpa_t b0 = buf(t, 100);
	struct b readable[1] = { { b0, 100, false } };
	struct b tiny[1] = { { b0, 8, true } };
	uint8_t *p = rx_pkt(60, 1);

	/* A device-readable rx buffer. */
	add_chain(t, 0, readable, 1);
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 60), -EIO);
	assert_true(broken(t));
	/* Once broken, nothing more is delivered. */
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 60), -ENODEV);
	tear_down(t);

	/* A first buffer smaller than the header (§5.1.6.3.1). */
	t = bring_up(BASE_F, 1, false);
	add_chain(t, 0, tiny, 1);
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 60), -EIO);
	assert_true(broken(t));
	tear_down(t);

	/* An avail index that jumps past the ring size. */
	t = bring_up(BASE_F, 1, false);
	t->avail_idx[0] = QSIZE + 5;
	add_chain(t, 0, tiny, 1);
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 60), -EIO);
	assert_true(broken(t));
	free(p);
	tear_down(t);
}

static uint16_t avail_event(struct t *t, unsigned q);

/* Write len bytes of fill into a reservation's iovec, header first (as the tap's readv does). */
static void land(struct iovec *iov, unsigned niov, size_t len, uint8_t fill)
{
	uint8_t *p = rx_pkt(len - VNET_HDR_LEN, fill);

	assert_int_equal(iov_copy_in(iov, (int)niov, 0, p, len), len);
	free(p);
}

/*
 * In place: a reservation sized by `want` takes only the chains it needs;
 * the commit returns the ones the packet filled, with num_buffers, and the
 * rest go back to the ring for the next packet.
 */
static void test_rx_in_place(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	gpa_t b[5];
	uint16_t h[5];
	struct iovec *iov;
	unsigned niov;
	size_t cap;
	uint8_t *g;

	for (int i = 0; i < 5; i++) {
		struct b c[1] = { { b[i] = buf(t, 1000), 1000, true } };

		h[i] = add_chain(t, 0, c, 1);
	}
	pthread_mutex_lock(&t->nd->vdev.lock);
	assert_int_equal(net_rx_reserve(t->nd, 0, 2500, 1, &iov, &niov, &cap), 0);
	assert_int_equal(cap, 3000);
	assert_int_equal(niov, 3);
	land(iov, niov, 1500, 0x33);
	assert_int_equal(net_rx_commit(t->nd, 1500), 0);
	pthread_mutex_unlock(&t->nd->vdev.lock);
	assert_int_equal(used_idx(t, 0), 2);
	assert_int_equal(used_elem(t, 0, 0).id, h[0]);
	assert_int_equal(used_elem(t, 0, 0).len, 1000);
	assert_int_equal(used_elem(t, 0, 1).id, h[1]);
	assert_int_equal(used_elem(t, 0, 1).len, 500);
	g = G(t, b[0], 1000);
	assert_int_equal(g[10] | g[11] << 8, 2);
	assert_int_equal(((uint8_t *)G(t, b[1], 1000))[499], 0x33);

	/* The third chain was reserved but not used: the next packet starts there. A cancel gives back all. */
	pthread_mutex_lock(&t->nd->vdev.lock);
	assert_int_equal(net_rx_reserve(t->nd, 0, 100, 1, &iov, &niov, &cap), 0);
	assert_int_equal(cap, 1000);
	net_rx_cancel(t->nd);
	assert_int_equal(net_rx_reserve(t->nd, 0, 100, 1, &iov, &niov, &cap), 0);
	assert_ptr_equal(iov[0].iov_base, G(t, b[2], 1000));
	land(iov, niov, 600, 0x44);
	/* Extended past what was asked for first: the packet spans the reserved chain and one more. */
	assert_int_equal(net_rx_reserve(t->nd, 0, 1800, 1800, &iov, &niov, &cap), 0);
	assert_int_equal(cap, 2000);
	assert_int_equal(net_rx_commit(t->nd, 1800), 0);
	pthread_mutex_unlock(&t->nd->vdev.lock);
	assert_int_equal(used_idx(t, 0), 4);
	assert_int_equal(used_elem(t, 0, 2).id, h[2]);
	assert_int_equal(used_elem(t, 0, 3).id, h[3]);
	assert_int_equal(used_elem(t, 0, 3).len, 800);
	g = G(t, b[2], 1000);
	assert_int_equal(g[10] | g[11] << 8, 2);
	assert_int_equal(g[12], 0x44);
	assert_int_equal(t->nd->stats.rx_frames, 2);

	/* Short of `need` with the ring empty: -EAGAIN, and the last chain is still there afterwards. */
	pthread_mutex_lock(&t->nd->vdev.lock);
	assert_int_equal(net_rx_reserve(t->nd, 0, 4000, 4000, &iov, &niov, &cap), -EAGAIN);
	net_rx_cancel(t->nd);
	assert_int_equal(net_rx_reserve(t->nd, 0, 1, 1, &iov, &niov, &cap), 0);
	assert_ptr_equal(iov[0].iov_base, G(t, b[4], 1000));
	/* A commit longer than the reservation is refused and gives the chains back. */
	assert_int_equal(net_rx_commit(t->nd, 1001), -EINVAL);
	assert_int_equal(net_rx_reserve(t->nd, 0, 1, 1, &iov, &niov, &cap), 0);
	assert_ptr_equal(iov[0].iov_base, G(t, b[4], 1000));
	net_rx_cancel(t->nd);
	pthread_mutex_unlock(&t->nd->vdev.lock);
	assert_int_equal(used_idx(t, 0), 4);
	tear_down(t);
}

/* With EVENT_IDX, a reservation that finds no buffer at all re-arms avail_event, so the guest's refill kicks. */
static void test_rx_reserve_rearms(void **state)
{
	struct t *t = bring_up(BASE_F | F(VIRTIO_RING_F_EVENT_IDX), 1, false);
	gpa_t b0 = buf(t, 1000);
	struct b c0[1] = { { b0, 1000, true } };
	struct iovec *iov;
	unsigned niov;
	size_t cap;

	add_chain(t, 0, c0, 1);
	pthread_mutex_lock(&t->nd->vdev.lock);
	/* Short of `want` only: the packet may fit, no kick is asked for. */
	assert_int_equal(net_rx_reserve(t->nd, 0, 5000, 1, &iov, &niov, &cap), 0);
	assert_int_equal(avail_event(t, 0), 0);
	land(iov, niov, 200, 1);
	assert_int_equal(net_rx_commit(t->nd, 200), 0);
	assert_int_equal(net_rx_reserve(t->nd, 0, 5000, 1, &iov, &niov, &cap), -EAGAIN);
	net_rx_cancel(t->nd);
	pthread_mutex_unlock(&t->nd->vdev.lock);
	assert_int_equal(avail_event(t, 0), 1);
	tear_down(t);
}

/* Frames from in-process stacks wait (bounded) for rx buffers and go out when the guest posts some. */
static void test_inject_backlog(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	uint8_t frame[60];
	gpa_t b0 = buf(t, 200), b1 = buf(t, 200);
	struct b c0[1] = { { b0, 200, true } };
	struct b c1[1] = { { b1, 200, true } };

	memset(frame, 0x42, sizeof(frame));
	net_inject(t->nd, frame, sizeof(frame));
	net_inject(t->nd, frame, sizeof(frame));
	assert_int_equal(t->nd->backlog_count, 2);
	for (int i = 0; i < NET_RX_BACKLOG + 8; i++)
		net_inject(t->nd, frame, sizeof(frame));
	assert_int_equal(t->nd->backlog_count, NET_RX_BACKLOG);
	assert_int_equal(t->nd->stats.rx_dropped, 10);
	add_chain(t, 0, c0, 1);
	add_chain(t, 0, c1, 1);
	kick(t, 0);
	assert_int_equal(used_idx(t, 0), 2);
	assert_int_equal(t->nd->backlog_count, NET_RX_BACKLOG - 2);
	assert_int_equal(((uint8_t *)G(t, b1, 200))[VNET_HDR_LEN], 0x42);
	/* The backend is not asked for more while the backlog is not empty. */
	assert_int_equal(t->be.resumes, 0);
	tear_down(t);
}

/* Full-size frames stop at the backlog's byte cap, long before its frame cap; delivering one makes room for one. */
static void test_inject_backlog_bytes(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	uint8_t frame[ETH_HLEN_ + NET_MTU];
	const unsigned fit = NET_RX_BACKLOG_BYTES / (VNET_HDR_LEN + sizeof(frame));
	gpa_t b0 = buf(t, 2048);
	struct b c0[1] = { { b0, 2048, true } };

	assert_true(fit < NET_RX_BACKLOG);
	memset(frame, 0x17, sizeof(frame));
	for (unsigned i = 0; i < fit + 5; i++)
		net_inject(t->nd, frame, sizeof(frame));
	assert_int_equal(t->nd->backlog_count, fit);
	assert_int_equal(t->nd->backlog_bytes, (size_t)fit * (VNET_HDR_LEN + sizeof(frame)));
	assert_int_equal(t->nd->stats.rx_dropped, 5);
	add_chain(t, 0, c0, 1);
	kick(t, 0);
	assert_int_equal(used_idx(t, 0), 1);
	assert_int_equal(t->nd->backlog_count, fit - 1);
	net_inject(t->nd, frame, sizeof(frame));
	assert_int_equal(t->nd->backlog_count, fit);
	assert_int_equal(t->nd->stats.rx_dropped, 5);
	tear_down(t);
}

/* Frames an in-process stack injects in one turn: an interrupt for the first at once, one more for the rest at the flush. */
static void test_inject_irqs_per_turn(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	const struct vq_stats *rx = &t->nd->vdev.vq[0].stats;
	uint8_t frame[60];
	struct b c[5];

	memset(frame, 0x17, sizeof(frame));
	for (unsigned i = 0; i < 5; i++) {
		c[i] = (struct b){ buf(t, 200), 200, true };
		add_chain(t, 0, &c[i], 1);
	}
	/* The first frame of a turn interrupts at once: the guest's poll starts while the rest comes. */
	net_inject(t->nd, frame, sizeof(frame));
	assert_int_equal(rx->notify_sent, 1);
	net_inject(t->nd, frame, sizeof(frame));
	net_inject(t->nd, frame, sizeof(frame));
	assert_int_equal(used_idx(t, 0), 3);
	assert_int_equal(rx->notify_sent, 1);
	/* The rest of the turn: one more, at its end. */
	net_inject_flush(t->nd);
	assert_int_equal(rx->notify_sent, 2);
	/* Nothing new since: no third interrupt. */
	net_inject_flush(t->nd);
	assert_int_equal(rx->notify_sent, 2);
	/* A turn of one frame costs one interrupt, and the next turn starts afresh. */
	net_inject(t->nd, frame, sizeof(frame));
	assert_int_equal(rx->notify_sent, 3);
	net_inject_flush(t->nd);
	assert_int_equal(rx->notify_sent, 3);
	net_inject(t->nd, frame, sizeof(frame));
	assert_int_equal(rx->notify_sent, 4);
	tear_down(t);
}

/* The two virtqueue calls virtio-net added: bounds of vq_push_many and vq_unpop. */
static void test_vq_batch(void **state)
{
	struct t *t = bring_up(BASE_F, 1, false);
	struct vq *q = &t->nd->vdev.vq[0];
	gpa_t b = buf(t, 64);
	struct b c[1] = { { b, 64, true } };
	uint16_t heads[3];
	uint32_t lens[3] = { 1, 2, 3 };

	for (int i = 0; i < 3; i++)
		add_chain(t, 0, c, 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vq_pop(q, &t->nd->chain), 0);
		heads[i] = t->nd->chain.head;
	}
	/* More than in flight, or a head outside the ring: refused, nothing published. */
	assert_int_equal(vq_push_many(q, heads, lens, 4), -EINVAL);
	heads[1] = QSIZE;
	assert_int_equal(vq_push_many(q, heads, lens, 3), -EINVAL);
	assert_int_equal(used_idx(t, 0), 0);
	/* Give one back: the next pop takes the same slot again. */
	vq_unpop(q, 1);
	vq_unpop(q, 5);                 /* more than in flight: ignored */
	assert_int_equal(q->last_avail, 2);
	assert_int_equal(vq_pop(q, &t->nd->chain), 0);
	heads[1] = heads[0];
	heads[2] = t->nd->chain.head;
	assert_int_equal(vq_push_many(q, heads, lens, 2), 0);
	assert_int_equal(used_idx(t, 0), 2);
	assert_int_equal(used_elem(t, 0, 1).len, 2);
	assert_int_equal(vq_push_many(q, heads + 2, lens + 2, 1), 0);
	assert_int_equal(used_idx(t, 0), 3);
	tear_down(t);
}

/* ---- control queue ---- */

static uint8_t ctrl(struct t *t, const uint8_t *cmd, size_t len)
{
	gpa_t g = buf(t, len + 1);
	struct b bs[2] = { { g, (uint32_t)len, false }, { g + len, 1, true } };

	memcpy(G(t, g, len), cmd, len);
	*(uint8_t *)G(t, g + len, 1) = 0xee;
	add_chain(t, 2, bs, 2);
	kick(t, 2);
	return *(uint8_t *)G(t, g + len, 1);
}

static void test_ctrl(void **state)
{
	struct t *t = bring_up(BASE_F | F(VIRTIO_NET_F_CTRL_RX) | F(VIRTIO_NET_F_CTRL_MAC_ADDR), 1, false);
	const uint8_t promisc[] = { VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 1 };
	const uint8_t badlen[] = { VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 1, 1 };
	const uint8_t mac[] = { VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, 2, 0, 0, 0, 0, 9 };
	const uint8_t table[] = { VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, 1, 0, 0, 0, 2, 0, 0, 0, 0, 1,
				  0, 0, 0, 0 };
	const uint8_t table_lie[] = { VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, 0xff, 0xff, 0xff, 0xff };
	const uint8_t unknown[] = { 0x77, 0 };
	const uint8_t mq[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 1, 0 };
	uint8_t cfgmac[6];

	assert_int_equal(ctrl(t, promisc, sizeof(promisc)), VIRTIO_NET_OK);
	assert_true(t->nd->promisc);
	assert_int_equal(ctrl(t, badlen, sizeof(badlen)), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(t, mac, sizeof(mac)), VIRTIO_NET_OK);
	virtio_config_read(&t->nd->vdev, 0, cfgmac, 6);
	assert_memory_equal(cfgmac, mac + 2, 6);
	assert_int_equal(ctrl(t, table, sizeof(table)), VIRTIO_NET_OK);
	assert_int_equal(ctrl(t, table_lie, sizeof(table_lie)), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(t, unknown, sizeof(unknown)), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(t, unknown, 1), VIRTIO_NET_ERR);      /* shorter than class + command */
	assert_int_equal(ctrl(t, mq, sizeof(mq)), VIRTIO_NET_ERR);  /* MQ not negotiated */
	assert_int_equal(t->nd->stats.ctrl_errs, 5);
	assert_false(broken(t));
	{
		/* No room for the ack: NEEDS_RESET. */
		gpa_t g = buf(t, 8);
		struct b bs[1] = { { g, 3, false } };

		memcpy(G(t, g, 3), promisc, 3);
		add_chain(t, 2, bs, 1);
		kick(t, 2);
		assert_true(broken(t));
	}
	tear_down(t);
}

static void test_multiqueue(void **state)
{
	struct t *t = bring_up(BASE_F | F(VIRTIO_NET_F_MQ), 4, false);
	uint8_t set3[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 3, 0 };
	uint8_t set9[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 9, 0 };
	uint8_t set0[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 0, 0 };
	uint16_t maxp;
	uint8_t *p = rx_pkt(60, 1);

	assert_int_equal(t->nd->vdev.nqueues, 9);
	assert_int_equal(t->nd->ctrl_q, 8);
	virtio_config_read(&t->nd->vdev, 8, &maxp, 2);
	assert_int_equal(le16toh(maxp), 4);
	assert_int_equal(t->be.cfg_pairs, 1);
	/* Only pair 0 until the driver asks for more. */
	assert_int_equal(deliver(t, 2, p, VNET_HDR_LEN + 60), -ENODEV);
	/* ctrl() uses queue 2: here that is rx1, so drive queue 8 by hand. */
	{
		gpa_t g = buf(t, 8);
		struct b bs[2] = { { g, 4, false }, { g + 4, 1, true } };

		memcpy(G(t, g, 4), set3, 4);
		add_chain(t, 8, bs, 2);
		kick(t, 8);
		assert_int_equal(*(uint8_t *)G(t, g + 4, 1), VIRTIO_NET_OK);
		assert_int_equal(t->nd->pairs, 3);
		assert_int_equal(t->be.cfg_pairs, 3);
		memcpy(G(t, g, 4), set9, 4);
		add_chain(t, 8, bs, 2);
		kick(t, 8);
		assert_int_equal(*(uint8_t *)G(t, g + 4, 1), VIRTIO_NET_ERR);
		memcpy(G(t, g, 4), set0, 4);
		add_chain(t, 8, bs, 2);
		kick(t, 8);
		assert_int_equal(*(uint8_t *)G(t, g + 4, 1), VIRTIO_NET_ERR);
		assert_int_equal(t->nd->pairs, 3);
	}
	free(p);
	tear_down(t);
}

/* Offloads reach the backend only as negotiated; a backend without them offers none. */
static void test_offload_features(void **state)
{
	struct t *t = bring_up(BASE_F | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4), 1, false);

	assert_true(t->nd->vdev.host_features & F(VIRTIO_NET_F_HOST_TSO6));
	assert_true(t->be.cfg_features & F(VIRTIO_NET_F_GUEST_TSO4));
	assert_false(t->be.cfg_features & F(VIRTIO_NET_F_GUEST_TSO6));
	assert_false(t->nd->vdev.host_features & F(VIRTIO_NET_F_MQ));
	tear_down(t);
}

/*
 * With EVENT_IDX the driver kicks only when avail->idx passes avail_event:
 * after draining the control queue, and when rx runs dry, the device must
 * move avail_event up, or the next command / buffer is never announced
 * (a Linux guest then spins forever in virtnet_send_command).
 */
static uint16_t avail_event(struct t *t, unsigned q)
{
	return le16toh(*(uint16_t *)G(t, ring(q) + 0x2000 + 4 + 8ull * QSIZE, 2));
}

static void test_event_idx_rearm(void **state)
{
	struct t *t = bring_up(BASE_F | F(VIRTIO_NET_F_CTRL_RX) | F(VIRTIO_RING_F_EVENT_IDX), 1, false);
	const uint8_t promisc[] = { VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 1 };
	uint8_t *p = rx_pkt(60, 1);
	gpa_t b0 = buf(t, 200);
	struct b c0[1] = { { b0, 200, true } };

	assert_int_equal(ctrl(t, promisc, sizeof(promisc)), VIRTIO_NET_OK);
	assert_int_equal(avail_event(t, 2), 1);
	assert_int_equal(ctrl(t, promisc, sizeof(promisc)), VIRTIO_NET_OK);
	assert_int_equal(avail_event(t, 2), 2);
	/* rx: dry -> avail_event = next slot; the guest adds one and (would) kick. */
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 60), -EAGAIN);
	assert_int_equal(avail_event(t, 0), 0);
	add_chain(t, 0, c0, 1);
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 60), 0);
	assert_int_equal(deliver(t, 0, p, VNET_HDR_LEN + 60), -EAGAIN);
	assert_int_equal(avail_event(t, 0), 1);
	free(p);
	tear_down(t);
}

/*
 * A backend that sends later (NET_TX_DEFERRED, libslirp's ring) keeps the
 * guest's kicks off until its resume finds the queue empty: frames added
 * meanwhile are taken on the resume without a kick.
 */
static void test_tx_deferred(void **state)
{
	struct t *t = bring_up(BASE_F | F(VIRTIO_RING_F_EVENT_IDX), 1, false);
	uint64_t n;
	gpa_t g[2] = { put_frame(t, 60, 1), put_frame(t, 60, 2) };
	struct b b0[1] = { { g[0], VNET_HDR_LEN + 60, false } }, b1[1] = { { g[1], VNET_HDR_LEN + 60, false } };

	t->be.ret = NET_TX_DEFERRED;
	add_chain(t, 1, b0, 1);
	kick(t, 1);
	assert_int_equal(t->be.frames, 1);
	assert_int_equal(used_idx(t, 1), 1);
	assert_int_equal(t->nd->stats.tx_deferred, 1);
	/* Kicks still off: the driver adding entry 1 (avail 1 -> 2) must not notify. */
	add_chain(t, 1, b1, 1);
	assert_false(vq_need_event(avail_event(t, 1), 2, 1));
	/* The backend has sent: its resume is a kick on the eventfd, and the new frame goes, still without kicks. */
	net_tx_resume(t->nd, 0);
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), (ssize_t)sizeof(n));
	kick(t, 1);
	assert_int_equal(t->be.frames, 2);
	assert_int_equal(t->be.last[VNET_HDR_LEN + 59], 2);
	assert_int_equal(used_idx(t, 1), 2);
	assert_false(vq_need_event(avail_event(t, 1), 3, 2));
	/* A resume that finds nothing turns kicks back on (avail_event = the next entry, §2.7.10). */
	net_tx_resume(t->nd, 0);
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), (ssize_t)sizeof(n));
	kick(t, 1);
	assert_int_equal(t->be.frames, 2);
	assert_int_equal(avail_event(t, 1), 2);
	assert_true(vq_need_event(avail_event(t, 1), 3, 2));
	tear_down(t);
}

/*
 * A backend that is done at once (a tap): after a pass that sent frames the
 * queue looks again on the loop's next turn (a kick on its own eventfd),
 * kicks still off; only an empty pass turns them back on.
 */
static void test_tx_requeue(void **state)
{
	struct t *t = bring_up(BASE_F | F(VIRTIO_RING_F_EVENT_IDX), 1, false);
	uint64_t n;
	gpa_t g = put_frame(t, 60, 3);
	struct b b0[1] = { { g, VNET_HDR_LEN + 60, false } };

	add_chain(t, 1, b0, 1);
	kick(t, 1);
	assert_int_equal(t->be.frames, 1);
	assert_int_equal(t->nd->stats.tx_requeued, 1);
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), (ssize_t)sizeof(n));
	assert_false(vq_need_event(avail_event(t, 1), 2, 1));
	/* Used at once, but the interrupt waits for the end of the chain. */
	assert_int_equal(used_idx(t, 1), 1);
	assert_int_equal(t->nd->vdev.vq[1].stats.notify_sent, 0);
	/* The look on the next turn finds nothing: kicks back on, the interrupt, no further self-kick. */
	kick(t, 1);
	assert_int_equal(t->nd->vdev.vq[1].stats.notify_sent, 1);
	assert_int_equal(t->nd->stats.tx_requeued, 1);
	assert_true(vq_need_event(avail_event(t, 1), 2, 1));
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), -1);
	tear_down(t);
}

/*
 * The txdelay timer fires (within a second even on a loaded host), its look
 * is a kick on the queue's eventfd, and the I/O thread would then work the
 * queue: what the tests do in its place.
 */
static void timer_look(struct t *t, struct pollfd *timer)
{
	uint64_t n;

	assert_int_equal(poll(timer, 1, 1000), 1);
	net_tx_timer(t->nd);
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), (ssize_t)sizeof(n));
	kick(t, 1);
}

/*
 * txdelay (the default, 25 us): after a pass that sent frames the queue
 * looks again when the timer fires, kicks still off all the while; frames
 * the guest adds meanwhile go on that look without an exit.
 */
static void test_tx_delay(void **state)
{
	struct t *t = bring_up_poll(BASE_F | F(VIRTIO_RING_F_EVENT_IDX), 1, false, 0, -1);
	struct pollfd timer = { .fd = t->nd->tx_timer_fd, .events = POLLIN };
	uint64_t n;
	gpa_t g[2] = { put_frame(t, 60, 1), put_frame(t, 60, 2) };
	struct b b0[1] = { { g[0], VNET_HDR_LEN + 60, false } }, b1[1] = { { g[1], VNET_HDR_LEN + 60, false } };

	assert_int_equal(t->nd->tx_delay_us, NET_TX_DELAY_US);
	assert_true(timer.fd >= 0);
	add_chain(t, 1, b0, 1);
	kick(t, 1);
	assert_int_equal(t->be.frames, 1);
	assert_int_equal(t->nd->stats.tx_requeued, 1);
	/* No look on the next turn: the timer owns it. */
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), -1);
	/* The guest's next frame needs no kick (avail 1 -> 2 does not pass avail_event). */
	add_chain(t, 1, b1, 1);
	assert_false(vq_need_event(avail_event(t, 1), 2, 1));
	/* The timer's look takes the second frame. */
	timer_look(t, &timer);
	assert_int_equal(t->be.frames, 2);
	assert_int_equal(t->be.last[VNET_HDR_LEN + 59], 2);
	assert_int_equal(t->nd->stats.tx_requeued, 2);
	/* The next look finds nothing: kicks back on (avail_event = the next entry). */
	timer_look(t, &timer);
	assert_int_equal(t->be.frames, 2);
	assert_int_equal(t->nd->stats.tx_timer_fires, 2);
	assert_int_equal(avail_event(t, 1), 2);
	assert_true(vq_need_event(avail_event(t, 1), 3, 2));
	/* Nothing more was asked of the timer. */
	assert_int_equal(poll(&timer, 1, 50), 0);
	tear_down(t);
}

/*
 * A pass that sent a data frame to a backend that is done with it (a tap)
 * looks again txdelay later too: a guest sending a stream queues its next
 * frames meanwhile, without a kick. Through a backend that defers
 * (libslirp) the resume after a data frame waits for the timer as well.
 */
static void test_tx_delay_data(void **state)
{
	struct t *t = bring_up_poll(BASE_F | F(VIRTIO_RING_F_EVENT_IDX), 1, false, 0, -1);
	struct pollfd timer = { .fd = t->nd->tx_timer_fd, .events = POLLIN };
	uint64_t n;
	gpa_t g[3] = { put_frame(t, 1000, 4), put_frame(t, 1000, 5), put_frame(t, 1000, 6) };
	struct b b0[1] = { { g[0], VNET_HDR_LEN + 1000, false } }, b1[1] = { { g[1], VNET_HDR_LEN + 1000, false } };
	struct b b2[1] = { { g[2], VNET_HDR_LEN + 1000, false } };

	add_chain(t, 1, b0, 1);
	kick(t, 1);
	assert_int_equal(t->be.frames, 1);
	assert_int_equal(t->nd->stats.tx_requeued, 1);
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), -1);   /* the timer's look, not the next turn's */
	assert_true(t->nd->tx_timer_armed);
	add_chain(t, 1, b1, 1);
	assert_false(vq_need_event(avail_event(t, 1), 2, 1));
	timer_look(t, &timer);
	assert_int_equal(t->be.frames, 2);
	assert_int_equal(t->be.last[VNET_HDR_LEN + 999], 5);
	/* Deferred: the resume after a data frame arms the timer, no kick at once. */
	timer_look(t, &timer);                                 /* drains: kicks back on */
	assert_false(t->nd->tx_timer_armed);
	t->be.ret = NET_TX_DEFERRED;
	add_chain(t, 1, b2, 1);
	kick(t, 1);
	assert_int_equal(t->be.frames, 3);
	net_tx_resume(t->nd, 0);
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), -1);
	assert_true(t->nd->tx_timer_armed);
	assert_int_equal(poll(&timer, 1, 1000), 1);
	tear_down(t);
}

/*
 * A backend that defers (libslirp) resumes the queue through txdelay too:
 * its resume arms the timer instead of kicking, and the timer's look is the
 * kick; frames the guest adds meanwhile need none.
 */
static void test_tx_delay_deferred(void **state)
{
	struct t *t = bring_up_poll(BASE_F | F(VIRTIO_RING_F_EVENT_IDX), 1, false, 0, -1);
	struct pollfd timer = { .fd = t->nd->tx_timer_fd, .events = POLLIN };
	uint64_t n;
	gpa_t g[2] = { put_frame(t, 60, 1), put_frame(t, 60, 2) };
	struct b b0[1] = { { g[0], VNET_HDR_LEN + 60, false } }, b1[1] = { { g[1], VNET_HDR_LEN + 60, false } };

	t->be.ret = NET_TX_DEFERRED;
	add_chain(t, 1, b0, 1);
	kick(t, 1);
	assert_int_equal(t->be.frames, 1);
	assert_int_equal(t->nd->stats.tx_deferred, 1);
	net_tx_resume(t->nd, 0);
	assert_int_equal(read(t->nd->vdev.kick_fd[1], &n, sizeof(n)), -1);   /* no kick yet: the timer's */
	add_chain(t, 1, b1, 1);
	assert_false(vq_need_event(avail_event(t, 1), 2, 1));
	timer_look(t, &timer);
	assert_int_equal(t->be.frames, 2);
	tear_down(t);
}

/* ---- --io-poll ---- */

/* Which queues the I/O thread may poll: transmit queues of pairs in use, not rx, not control, not blocked tx. */
static void test_poll_queues(void **state)
{
	struct t *t = bring_up(BASE_F, 2, false);
	struct virtio_dev *d = &t->nd->vdev;

	/* Polling off: no poller. */
	assert_false(d->polled);
	assert_true(d->ops->queue_pollable(d, 1));
	assert_false(d->ops->queue_pollable(d, 0));
	assert_false(d->ops->queue_pollable(d, 2));   /* control (no MQ: queue 2) */
	assert_false(d->ops->queue_pollable(d, 3));   /* pair 1 not in use */
	atomic_store(&t->nd->tx_blocked[0], true);
	assert_false(d->ops->queue_pollable(d, 1));   /* the backend's resume kicks it */
	atomic_store(&t->nd->tx_blocked[0], false);
	tear_down(t);
}

/* A transmit queue served by the poller: no kick, and the driver is told not to send one. */
static void test_poll_tx(void **state)
{
	struct t *t = bring_up_poll(BASE_F | F(VIRTIO_RING_F_EVENT_IDX), 1, false, 50, 0);
	struct virtio_dev *d = &t->nd->vdev;
	const struct ioloop_poller *p = NULL;
	gpa_t g;

	assert_true(d->polled);
	for (unsigned i = 0; i < IOLOOP_MAX_POLLERS; i++)
		if (t->vm.io.pollers[i].opaque == d)
			p = &t->vm.io.pollers[i];
	assert_non_null(p);
	assert_int_equal(p->poll(p->opaque), 0);
	/* Suppressed: avail_event one behind, so adding entry 0 does not pass it. */
	assert_int_equal(avail_event(t, 1), 0xffff);
	g = put_frame(t, 60, 0x5a);
	{
		struct b bs[1] = { { g, VNET_HDR_LEN + 60, false } };

		add_chain(t, 1, bs, 1);
	}
	assert_false(vq_need_event(avail_event(t, 1), 1, 0));
	assert_int_equal(p->poll(p->opaque), 1);
	assert_int_equal(t->be.frames, 1);
	assert_int_equal(t->be.last[VNET_HDR_LEN + 59], 0x5a);
	assert_int_equal(used_idx(t, 1), 1);
	assert_int_equal(d->stats.kicks, 0);
	assert_int_equal(d->stats.poll_hits, 1);
	/* Still quiet after the drain; arm brings kicks back (avail_event = next entry). */
	assert_int_equal(avail_event(t, 1), 0);
	assert_int_equal(p->arm(p->opaque), 0);
	assert_int_equal(avail_event(t, 1), 1);
	assert_true(vq_need_event(avail_event(t, 1), 2, 1));
	tear_down(t);
}

/* ---- the metadata split ---- */

static size_t arp_for(uint8_t *f, const char *tip)
{
	memset(f, 0, 42);
	memset(f, 0xff, 6);
	f[12] = 0x08; f[13] = 0x06;
	inet_pton(AF_INET, tip, f + 14 + 24);
	return 42;
}

static size_t ip_to(uint8_t *f, const char *dst, size_t len)
{
	memset(f, 0, len);
	f[12] = 0x08; f[13] = 0x00;
	f[14] = 0x45;
	inet_pton(AF_INET, dst, f + 14 + 16);
	return len;
}

static void test_frame_for_mds(void **state)
{
	uint8_t f[80];
	uint32_t mip, malt;

	inet_pton(AF_INET, "169.254.169.254", &mip);
	inet_pton(AF_INET, "169.254.169.253", &malt);
	assert_true(net_frame_for_mds(f, arp_for(f, "169.254.169.254"), mip, malt));
	assert_true(net_frame_for_mds(f, arp_for(f, "169.254.169.253"), mip, malt));
	assert_false(net_frame_for_mds(f, arp_for(f, "10.0.2.2"), mip, malt));
	assert_false(net_frame_for_mds(f, 41, mip, malt));   /* truncated ARP */
	assert_true(net_frame_for_mds(f, ip_to(f, "169.254.169.254", 60), mip, malt));
	assert_false(net_frame_for_mds(f, ip_to(f, "169.254.169.253", 60), mip, malt));
	assert_false(net_frame_for_mds(f, ip_to(f, "169.254.169.254", 30), mip, malt));
	f[14] = 0x65; /* IP version 6 in a v4 ethertype */
	assert_false(net_frame_for_mds(f, 60, mip, malt));
	assert_false(net_frame_for_mds(f, 5, mip, malt));
}

static void test_tx_mds_split(void **state)
{
	struct t *t = bring_up(BASE_F | F(VIRTIO_NET_F_CSUM), 1, true);
	gpa_t g = buf(t, 200);
	uint8_t *p = G(t, g, 200);
	struct b bs[1] = { { g, VNET_HDR_LEN + 60, false } };
	struct virtio_net_hdr h = { 0 };

	memset(p, 0, VNET_HDR_LEN);
	ip_to(p + VNET_HDR_LEN, "169.254.169.254", 60);
	add_chain(t, 1, bs, 1);
	arp_for(p + 100 + VNET_HDR_LEN, "169.254.169.254");
	memset(p + 100, 0, VNET_HDR_LEN);
	bs[0] = (struct b){ g + 100, VNET_HDR_LEN + 42, false };
	add_chain(t, 1, bs, 1);
	kick(t, 1);
	assert_int_equal(t->mds.frames, 2);
	assert_int_equal(t->be.frames, 0);
	assert_int_equal(t->nd->stats.tx_mds, 2);
	/* A partial checksum is finished before the metadata stack sees the frame. */
	ip_to(p + VNET_HDR_LEN, "169.254.169.254", 60);
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.csum_start = htole16(34);
	h.csum_offset = htole16(16);
	memcpy(p, &h, sizeof(h));
	p[VNET_HDR_LEN + 40] = 0x12;
	bs[0] = (struct b){ g, VNET_HDR_LEN + 60, false };
	add_chain(t, 1, bs, 1);
	kick(t, 1);
	assert_int_equal(t->mds.frames, 3);
	assert_int_equal(t->mds.last[0], 0); /* the header is cleared */
	assert_int_equal(net_csum_fold(t->mds.last + VNET_HDR_LEN + 34, 26, 0), 0xffff);
	/* A checksum offset outside the frame: dropped. */
	h.csum_offset = htole16(500);
	memcpy(p, &h, sizeof(h));
	add_chain(t, 1, bs, 1);
	kick(t, 1);
	assert_int_equal(t->mds.frames, 3);
	assert_int_equal(t->nd->stats.tx_dropped, 1);
	/* Other traffic goes to the backend. */
	memset(p, 0, VNET_HDR_LEN);
	ip_to(p + VNET_HDR_LEN, "10.0.2.2", 60);
	add_chain(t, 1, bs, 1);
	kick(t, 1);
	assert_int_equal(t->be.frames, 1);
	tear_down(t);
}

/*
 * A metadata frame on the second pair of a multiqueue NIC reaches the
 * metadata stack with that pair: a stack that defers resumes the queue the
 * frame came from (resuming pair 0 instead left pair 1 with kicks off).
 */
static void test_tx_mds_pair(void **state)
{
	struct t *t = bring_up(BASE_F | F(VIRTIO_NET_F_MQ), 2, true);
	uint8_t set2[] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2, 0 };
	gpa_t c = buf(t, 8), g = buf(t, 200);
	struct b cb[2] = { { c, 4, false }, { c + 4, 1, true } };
	struct b bs[1] = { { g, VNET_HDR_LEN + 60, false } };
	uint8_t *p = G(t, g, 200);

	memcpy(G(t, c, 4), set2, 4);
	add_chain(t, 4, cb, 2);   /* with MQ and 2 pairs the control queue is 4 */
	kick(t, 4);
	assert_int_equal(t->nd->pairs, 2);
	memset(p, 0, VNET_HDR_LEN);
	ip_to(p + VNET_HDR_LEN, "169.254.169.254", 60);
	t->mds.ret = NET_TX_DEFERRED;
	add_chain(t, 3, bs, 1);
	kick(t, 3);
	assert_int_equal(t->mds.frames, 1);
	assert_int_equal(t->mds.last_pair, 1);
	assert_int_equal(t->nd->stats.tx_deferred, 1);
	tear_down(t);
}

static void test_csum(void **state)
{
	/* RFC 1071's example words sum to 0xddf2. */
	const uint8_t words[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint8_t f[20] = { 0 };

	assert_int_equal(net_csum_fold(words, sizeof(words), 0), 0xddf2);
	assert_int_equal(net_csum_fold(words, 3, 0), 0xf201); /* an odd byte is padded with zero */
	assert_int_equal(net_csum_complete(f, sizeof(f), 4, 2), 0);
	assert_int_equal(net_csum_fold(f + 4, 16, 0), 0xffff);
	assert_int_equal(net_csum_complete(f, sizeof(f), 19, 0), -1);
	assert_int_equal(net_csum_complete(f, sizeof(f), 20, 0), -1);
	assert_int_equal(net_csum_complete(f, sizeof(f), 0, 0xffff), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx_frame),
		cmocka_unit_test(test_tx_hostile),
		cmocka_unit_test(test_tx_backpressure),
		cmocka_unit_test(test_tx_bounded),
		cmocka_unit_test(test_rx_mergeable),
		cmocka_unit_test(test_rx_no_room),
		cmocka_unit_test(test_rx_no_mergeable),
		cmocka_unit_test(test_rx_hostile),
		cmocka_unit_test(test_rx_in_place),
		cmocka_unit_test(test_rx_reserve_rearms),
		cmocka_unit_test(test_inject_backlog),
		cmocka_unit_test(test_inject_backlog_bytes),
		cmocka_unit_test(test_inject_irqs_per_turn),
		cmocka_unit_test(test_vq_batch),
		cmocka_unit_test(test_ctrl),
		cmocka_unit_test(test_multiqueue),
		cmocka_unit_test(test_offload_features),
		cmocka_unit_test(test_tx_requeue),
		cmocka_unit_test(test_tx_delay),
		cmocka_unit_test(test_tx_delay_deferred),
		cmocka_unit_test(test_tx_delay_data),
		cmocka_unit_test(test_tx_deferred),
		cmocka_unit_test(test_event_idx_rearm),
		cmocka_unit_test(test_poll_queues),
		cmocka_unit_test(test_poll_tx),
		cmocka_unit_test(test_frame_for_mds),
		cmocka_unit_test(test_tx_mds_pair),
		cmocka_unit_test(test_tx_mds_split),
		cmocka_unit_test(test_csum),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
