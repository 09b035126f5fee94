/* A polling virtio-net driver (virtio 1.2 §5.1) over the test guests' virtio-pci driver, and CRC-32 for checking what moved. */
#include "virtio.h"

#define NET_QSIZE 256                 /* kiln's queue size; QEMU's default too */
#define TX_WAIT_SECONDS 10            /* the device holding every tx buffer this long is a stall */
#define RXQ 0                         /* §5.1.2: receiveq1, transmitq1 */
#define TXQ 1

static const uint16_t net_devices[] = { VIRTIO_PCI_DEVICE_NET, VIRTIO_PCI_DEVICE_NET_TRANSITIONAL, 0 };

/* §5.1.6.3: give rx buffer `id` (descriptor id) to the device; the caller publishes. */
static void rx_post(struct vnet *n, uint16_t id)
{
	struct vbuf b = { (uint64_t)(n->rx_bufs + (size_t)id * VNET_BUF), VNET_BUF, true };
	int head;

	if (n->rx.free_head != id)
		fail("virtio-net: rx descriptor %u is not the next free one (%u)", id, n->rx.free_head);
	head = virtq_add(&n->rx, &b, 1);
	if (head != id)
		fail("virtio-net: rx buffer %u went to descriptor %d", id, head);
}

int vnet_open(struct vnet *n, const char **why)
{
	const uint64_t want = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_F_EVENT_IDX);
	unsigned i;

	memset(n, 0, sizeof(*n));
	if (virtio_pci_open(&n->pci, net_devices, why) < 0 || virtio_negotiate(&n->pci, want, why) < 0)
		return -1;
	/* No MRG_RXBUF: each rx buffer must hold a whole frame plus the header (§5.1.6.3.1). */
	if (virtq_setup(&n->pci, &n->rx, RXQ, NET_QSIZE, why) < 0 || virtq_setup(&n->pci, &n->tx, TXQ, NET_QSIZE, why) < 0)
		return -1;
	if (!(n->pci.features & BIT(VIRTIO_NET_F_MAC)) || !n->pci.device || n->pci.device_len < 6) {
		*why = "the device offers no MAC address (VIRTIO_NET_F_MAC, §5.1.4)";
		return -1;
	}
	for (i = 0; i < 6; i++)
		n->mac[i] = virtio_cfg8(&n->pci, i);
	n->rx_bufs = dma_alloc((size_t)n->rx.size * VNET_BUF, 4096);
	n->tx_bufs = dma_alloc((size_t)n->tx.size * VNET_BUF, 4096);
	/* §5.1.5 step 3: fill the receive queue before DRIVER_OK, so no early frame finds it empty. */
	for (i = 0; i < n->rx.size; i++)
		rx_post(n, (uint16_t)i);
	virtio_driver_ok(&n->pci);
	virtq_publish(&n->rx);
	if (virtio_status(&n->pci) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
		*why = "device status has NEEDS_RESET or FAILED right after DRIVER_OK";
		return -1;
	}
	return 0;
}

bool vnet_link_up(const struct vnet *n)
{
	if (!(n->pci.features & BIT(VIRTIO_NET_F_STATUS)))
		return true;
	return virtio_cfg16(&n->pci, 6) & VIRTIO_NET_S_LINK_UP;
}

static void tx_reclaim(struct vnet *n)
{
	uint32_t id, len;
	unsigned k;

	/* Bounded by the ring: each element frees one descriptor. */
	for (k = 0; k < n->tx.size && virtq_get(&n->tx, &id, &len); k++)
		;
}

static bool tx_room(void *arg)
{
	struct vnet *n = arg;

	tx_reclaim(n);
	return n->tx.num_free > 0;
}

void *vnet_tx_buffer(struct vnet *n)
{
	if (!tx_room(n)) {
		n->tx_waits++;
		if (!wait_seconds(tx_room, n, TX_WAIT_SECONDS))
			fail("virtio-net: the device kept all %u tx buffers for %u s (used idx %u, avail idx %u, status %#x)",
			     n->tx.size, TX_WAIT_SECONDS, virtq_used_idx(&n->tx), n->tx.avail_idx, virtio_status(&n->pci));
	}
	return n->tx_bufs + (size_t)n->tx.free_head * VNET_BUF + sizeof(struct virtio_net_hdr);
}

void vnet_tx_send(struct vnet *n, uint32_t len)
{
	uint16_t id = n->tx.free_head;
	uint8_t *buf = n->tx_bufs + (size_t)id * VNET_BUF;
	struct vbuf b = { (uint64_t)buf, (uint32_t)sizeof(struct virtio_net_hdr) + len, false };

	if (len > VNET_MAX_FRAME)
		fail("virtio-net: a %u-byte frame does not fit a tx buffer", len);
	/* §5.1.6.2: no checksum or segmentation asked of the device, so flags and gso_type are 0. */
	memset(buf, 0, sizeof(struct virtio_net_hdr));
	if (virtq_add(&n->tx, &b, 1) != id)
		fail("virtio-net: tx descriptor %u not free", id);
	virtq_publish(&n->tx);
	n->tx_frames++;
}

unsigned vnet_poll(struct vnet *n, void (*deliver)(void *arg, const void *frame, uint32_t len), void *arg,
		   unsigned budget)
{
	unsigned done = 0;
	uint32_t id, len;

	while (done < budget && virtq_get(&n->rx, &id, &len)) {
		const uint8_t *buf = n->rx_bufs + (size_t)id * VNET_BUF;
		const struct virtio_net_hdr *h = (const struct virtio_net_hdr *)buf;

		/* The device's word is checked, not trusted: a length past the buffer would read beyond it. */
		if (len < sizeof(*h) || len > VNET_BUF)
			fail("virtio-net: rx used length %u for a %u-byte buffer", len, VNET_BUF);
		/*
		 * §5.1.6.4: without MRG_RXBUF the device sets num_buffers to 1.
		 * QEMU 7.2 leaves 0 there (vhost-net did too until a 2025 fix):
		 * counted, not failed, when the caller allows it (the bench).
		 */
		if (h->num_buffers == 0 && n->allow_num_buffers_0)
			n->rx_num_buffers_0++;
		else if (h->num_buffers != 1)
			fail("virtio-net: rx header num_buffers %u without MRG_RXBUF (must be 1)", h->num_buffers);
		if (h->gso_type != 0)
			fail("virtio-net: rx header gso_type %u, no GUEST_TSO/UFO was negotiated", h->gso_type);
		deliver(arg, buf + sizeof(*h), len - (uint32_t)sizeof(*h));
		rx_post(n, (uint16_t)id);
		n->rx_frames++;
		done++;
	}
	if (done)
		virtq_publish(&n->rx);
	return done;
}

/* ---- CRC-32 (reflected, polynomial 0xEDB88320: zlib's and Python's zlib.crc32) ---- */

uint32_t crc32_update(uint32_t crc, const void *data, size_t len)
{
	/* A table is 1 KiB of .data the guest would have to build; nibble at a time needs only 16 entries. */
	static const uint32_t t[16] = {
		0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
		0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
	};
	const uint8_t *p = data;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		crc = (crc >> 4) ^ t[crc & 15];
		crc = (crc >> 4) ^ t[crc & 15];
	}
	return ~crc;
}
