/* Ethernet frame helpers shared by the virtio-net device and its backends: the virtio-net header, checksums, the metadata-address test. */
#ifndef KILN_NET_FRAME_H
#define KILN_NET_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* struct virtio_net_hdr with num_buffers: 12 bytes whenever VERSION_1 is negotiated (virtio 1.2 §5.1.6). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;       /* little-endian, as every field below */
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio_net_hdr is 12 bytes (§5.1.6)");
#define VNET_HDR_LEN 12u

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE  0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP   3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN   0x80

#define ETH_HLEN_ 14u
/* Largest frame kiln moves: a 64 KiB GSO packet plus its Ethernet and VLAN headers. */
#define NET_MAX_FRAME (65535u + ETH_HLEN_ + 4u)

/* Copy up to cap bytes starting `skip` bytes into the iovec; returns the bytes copied. */
size_t iov_copy_out(const struct iovec *iov, int n, size_t skip, void *dst, size_t cap);
/* Copy len bytes of src into the iovec from `skip` bytes in, as far as it reaches; returns the bytes copied. */
size_t iov_copy_in(const struct iovec *iov, int n, size_t skip, const void *src, size_t len);

/* RFC 1071 ones'-complement sum of buf, folded to 16 bits, not inverted. */
uint16_t net_csum_fold(const uint8_t *buf, size_t len, uint32_t sum);

/*
 * Finish a checksum the guest left to the device (§5.1.6.2: NEEDS_CSUM:
 * sum from csum_start to the end, store at csum_start + csum_offset).
 * 0, or -1 when the offsets fall outside the frame.
 */
int net_csum_complete(uint8_t *frame, size_t len, uint16_t csum_start, uint16_t csum_offset);

/*
 * Is this frame for the metadata service at `mds_ip` (network order)? An
 * ARP packet asking for mds_ip or alt_ip, or an IPv4 packet to mds_ip.
 */
bool net_frame_for_mds(const uint8_t *frame, size_t len, uint32_t mds_ip, uint32_t alt_ip);

#endif
