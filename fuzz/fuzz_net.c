/* libFuzzer target: virtio-net (rx with mergeable buffers, tx with the metadata split, control queue) driven by hostile rings. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stub_vm.h"
#include "virtio/net.h"
#include "core/log.h"
#include <arpa/inet.h>

/*
 * Input: [0] driver features (bit 0 MRG_RXBUF, 1 EVENT_IDX, 2 INDIRECT_DESC,
 * 3 CSUM, 4 CTRL_RX), [1..8] operations, [9..] written over guest RAM from
 * address 0, where the three queues' rings sit (queue q: desc at q * 0x400,
 * avail +0x100, used +0x200; size 8) and buffers may point anywhere. An
 * operation byte: low 2 bits pick rx delivery (bit 2: copied or in place,
 * the length from the high bits),
 * a tx kick, a control kick or an injected frame. Whatever the guest wrote,
 * kiln must not touch memory outside guest RAM (ASan), must hand the backend
 * only frames of a sane length, and after NEEDS_RESET must do nothing more.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The device's messages (a NEEDS_RESET reason per input) would drown the fuzzer: silence them. */
void log_msg(enum log_level lvl, const char *fmt, ...)
{
}

void log_at(enum log_level lvl, const char *file, int line, const char *fmt, ...)
{
}

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)
#define RAM (1 * MiB)
#define QSIZE 8
#define HDR 9

struct fb { struct net_backend be; unsigned frames; };

static int fb_tx(struct net_backend *be, unsigned pair, const struct iovec *iov, int n, size_t len)
{
	uint8_t tmp[64];

	CHECK(len >= VNET_HDR_LEN + 14 && len <= VNET_HDR_LEN + NET_MAX_FRAME);
	CHECK(iov_copy_out(iov, n, 0, tmp, sizeof(tmp)) == MIN(len, sizeof(tmp)));
	((struct fb *)be)->frames++;
	return (len & 7) == 3 ? -EAGAIN : 0;
}
static void fb_destroy(struct net_backend *be) {}
static const struct net_backend_ops fb_ops = { .tx = fb_tx, .destroy = fb_destroy };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm vm;
	static bool inited;
	static uint8_t pkt[VNET_HDR_LEN + 4096];
	struct fb be = { .be = { .ops = &fb_ops, .features = VIRTIO_NET_OFFLOADS, .pairs = 1 } };
	struct fb mds = { .be = { .ops = &fb_ops, .pairs = 1 } };
	struct net_config cfg = { .kind = NET_TAP, .queues = 1 };
	struct net_dev *nd;
	struct virtio_dev *d;
	uint8_t *ram;
	uint64_t f;

	if (size < HDR)
		return 0;
	if (!inited) {
		stub_vm_init(&vm, RAM);
		CHECK(ioloop_init(&vm.io) == 0);
		memset(pkt + VNET_HDR_LEN, 0x5a, sizeof(pkt) - VNET_HDR_LEN);
		inited = true;
	}
	ram = vm_gpa(&vm, 0, RAM);
	CHECK(ram);
	memset(ram, 0, 0x2000);
	memcpy(ram, data + HDR, MIN(size - HDR, (size_t)RAM));
	/* 169.254.169.254 and .253 in network order, as net_setup passes them. */
	CHECK(net_dev_create(&vm, &cfg, 0, &be.be, &mds.be, htonl(0xa9fea9fe), htonl(0xa9fea9fd), &nd) == 0);
	d = &nd->vdev;
	f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_CTRL_VQ);
	if (data[0] & 1) f |= 1ull << VIRTIO_NET_F_MRG_RXBUF;
	if (data[0] & 2) f |= 1ull << VIRTIO_RING_F_EVENT_IDX;
	if (data[0] & 4) f |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	if (data[0] & 8) f |= (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM);
	if (data[0] & 16) f |= 1ull << VIRTIO_NET_F_CTRL_RX;
	pthread_mutex_lock(&d->lock);
	virtio_write_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	d->guest_features = f;
	virtio_write_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 3; q++) {
		d->qcfg[q] = (struct virtio_queue_cfg){ .size = QSIZE, .desc = q * 0x400ull,
							 .avail = q * 0x400ull + 0x100, .used = q * 0x400ull + 0x200 };
		CHECK(virtio_queue_enable(d, q) == 0);
	}
	virtio_write_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
				       VIRTIO_STATUS_DRIVER_OK);
	for (unsigned i = 1; i < HDR; i++) {
		uint8_t op = data[i];
		unsigned before = be.frames + mds.frames;
		bool broken = d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET;

		switch (op & 3) {
		case 0: {
			size_t len = VNET_HDR_LEN + (size_t)(op >> 3) * 120;
			int r;

			if (op & 4) {
				/* In place, as the tap does: reserve about len, fill what was reserved, commit. */
				struct iovec *iov;
				unsigned niov;
				size_t cap;

				r = net_rx_reserve(nd, 0, len, 1, &iov, &niov, &cap);
				CHECK(r == 0 || r == -EAGAIN || r == -E2BIG || r == -EIO || r == -ENODEV);
				CHECK(!broken || r == -ENODEV);
				if (r == 0) {
					CHECK(cap >= VNET_HDR_LEN && niov < NET_RX_IOV_MAX);
					len = len < cap ? len : cap;
					CHECK(iov_copy_in(iov, (int)niov, 0, pkt, len) == len);
					r = net_rx_commit(nd, len);
					CHECK(r == 0 || r == -EIO);
				} else {
					net_rx_cancel(nd);
				}
			} else {
				r = net_rx_deliver(nd, 0, pkt, len);
				CHECK(r == 0 || r == -EAGAIN || r == -E2BIG || r == -EIO || r == -ENODEV);
				CHECK(!broken || r == -ENODEV);
			}
			if (r == 0)
				net_rx_done(nd, 0);
			break;
		}
		case 1:
		case 2:
			if (virtio_queue_live(d, op & 3))
				d->ops->queue_notify(d, op & 3);
			break;
		case 3:
			pthread_mutex_unlock(&d->lock);
			net_inject(nd, pkt + VNET_HDR_LEN, (size_t)(op >> 2) * 20);
			pthread_mutex_lock(&d->lock);
			break;
		}
		if (broken)
			CHECK(be.frames + mds.frames == before);
	}
	pthread_mutex_unlock(&d->lock);
	virtio_dev_destroy(d);
	return 0;
}
