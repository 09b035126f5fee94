/* Ethernet frame helpers: iovec copies, internet checksums (RFC 1071), the metadata-address test. */
#include <string.h>
#include "net/frame.h"

/* Copy between the iovec (from `skip` bytes in) and buf, up to len bytes, either way; returns the bytes copied. */
static size_t iov_copy(const struct iovec *iov, int n, size_t skip, uint8_t *buf, size_t len, bool into_iov)
{
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, take;
		uint8_t *at;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		at = (uint8_t *)iov[i].iov_base + skip;
		take = l - skip;
		if (take > len - done)
			take = len - done;
		if (into_iov)
			memcpy(at, buf + done, take);
		else
			memcpy(buf + done, at, take);
		done += take;
		skip = 0;
	}
	return done;
}

size_t iov_copy_out(const struct iovec *iov, int n, size_t skip, void *dst, size_t cap)
{
	return iov_copy(iov, n, skip, dst, cap, false);
}

size_t iov_copy_in(const struct iovec *iov, int n, size_t skip, const void *src, size_t len)
{
	return iov_copy(iov, n, skip, (uint8_t *)src, len, true);
}

uint16_t net_csum_fold(const uint8_t *buf, size_t len, uint32_t sum)
{
	uint64_t s = sum;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		s += (uint32_t)buf[i] << 8 | buf[i + 1];
	if (i < len)
		s += (uint32_t)buf[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

int net_csum_complete(uint8_t *frame, size_t len, uint16_t csum_start, uint16_t csum_offset)
{
	uint16_t c;

	if (csum_start >= len || (size_t)csum_start + csum_offset + 2 > len)
		return -1;
	/* The field holds the pseudo-header sum the guest put there: sum over it as is. */
	c = (uint16_t)~net_csum_fold(frame + csum_start, len - csum_start, 0);
	frame[csum_start + csum_offset] = (uint8_t)(c >> 8);
	frame[csum_start + csum_offset + 1] = (uint8_t)c;
	return 0;
}

bool net_frame_for_mds(const uint8_t *f, size_t len, uint32_t mds_ip, uint32_t alt_ip)
{
	uint16_t type;
	uint32_t ip;

	if (len < ETH_HLEN_)
		return false;
	type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == 0x0806 && len >= ETH_HLEN_ + 28) {
		/* ARP (RFC 826) for IPv4 over Ethernet: target protocol address at offset 24. */
		memcpy(&ip, f + ETH_HLEN_ + 24, 4);
		return ip == mds_ip || ip == alt_ip;
	}
	if (type == 0x0800 && len >= ETH_HLEN_ + 20 && (f[ETH_HLEN_] >> 4) == 4) {
		memcpy(&ip, f + ETH_HLEN_ + 16, 4);
		return ip == mds_ip;
	}
	return false;
}
