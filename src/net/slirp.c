/* The user-mode backends on libslirp: the guest's NAT network (DHCP, DNS, port forwards) and the metadata endpoint at 169.254.169.254. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <slirp/libslirp.h>
#include "net/slirp.h"
#include "net/netloop.h"
#include "virtio/net.h"
#include "core/log.h"

/*
 * Frames from the guest arrive in virtio-net's tx handler, which holds the
 * device lock, and are copied into a bounded ring; the network loop's next
 * turn (on the same I/O thread, see netloop.h) feeds them to libslirp,
 * whose answers go to net_inject(), which takes that lock: the ring is what
 * keeps the two apart. tx answers NET_TX_DEFERRED, and once a turn has fed
 * the ring to libslirp it resumes the queue (net_tx_resume): the guest's
 * kicks stay off from its first frame until a pass finds nothing more, so
 * a burst costs one kick, as in QEMU, and not one per frame. A full ring
 * makes tx return -EAGAIN: the guest's buffers stay in its ring until the
 * loop has room again — backpressure, not loss.
 *
 * The metadata endpoint is a second libslirp instance in restricted mode
 * (no connection leaves it) whose network is 169.254.0.0/16 and whose only
 * service is a guestfwd of 169.254.169.254:80 to kiln's metadata HTTP server
 * on a Unix socket (slirp_add_unix: one socket per guest connection).
 * virtio-net sends it every frame addressed to 169.254.169.254, whatever the
 * main backend (TAP or user). libslirp learns MAC addresses only from ARP,
 * and a guest routes 169.254.169.254 through its gateway without asking, so
 * before an IPv4 frame from a (MAC, IP) it has not seen, kiln feeds this
 * instance an ARP request from that sender; it then answers straight back.
 */

#define RING_SLOTS 256
#define SLOT_BYTES 2048           /* a 1514-byte frame (MTU 1500) and a VLAN tag, with room */

struct slirp_timer {
	struct slirp_timer *next;
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms;          /* -1: not armed */
};

struct slirp_be {
	struct net_backend be;
	struct netloop *loop;
	Slirp *slirp;
	bool mds;                   /* the metadata endpoint (synthetic ARP) */
	struct in_addr mds_host;    /* its vhost address: the ARP sender */
	char label[16];
	/* The tx ring, virtio-net tx -> the loop's turn (a lock: tx may also run elsewhere). */
	pthread_mutex_t lock;
	unsigned head, count;
	uint32_t len[RING_SLOTS];
	uint8_t *slots;             /* RING_SLOTS * SLOT_BYTES */
	/*
	 * Which tx queues (bit = pair) wait for net_tx_resume: blocked (tx said
	 * -EAGAIN) once the ring has room, deferred (NET_TX_DEFERRED) once it
	 * is drained. The metadata endpoint takes frames from every pair of a
	 * multiqueue NIC; resuming the wrong one would leave a queue silent.
	 */
	uint32_t blocked, deferred;
	/* Network thread only. */
	struct slirp_timer *timers;
	uint8_t last_mac[6];
	uint32_t last_ip;
	uint8_t frame[SLOT_BYTES];
	uint64_t tx_dropped, tx_blocked, guest_errors;
};

static struct slirp_be *S(struct net_backend *be)
{
	return (struct slirp_be *)be;
}

/* ---- libslirp callbacks (in the network loop's turn) ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_be *s = opaque;

	if (s->be.nd)
		net_inject(s->be.nd, buf, len);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct slirp_be *s = opaque;

	if (s->guest_errors++ < 10)
		log_info("%s: guest network error: %s", s->label, msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	return netloop_now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_be *s = opaque;
	struct slirp_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = s->timers;
	s->timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct slirp_be *s = opaque;

	for (struct slirp_timer **p = &s->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

/*
 * The poll set is rebuilt from slirp_pollfds_fill on every turn; these only
 * tell the loop that an fd number is about to be closed (unregister) or is
 * new (register), so it never trusts an epoll registration of an earlier
 * file with the same number.
 */
static void cb_poll_fd_changed(int fd, void *opaque)
{
	struct slirp_be *s = opaque;

	/* NULL while sl_destroy tears the stack down: the loop is gone then (freed before the devices). */
	if (s->loop)
		netloop_fd_closed(s->loop, fd);
}

static void cb_notify(void *opaque)
{
	struct slirp_be *s = opaque;

	netloop_wake(s->loop);
}

static const SlirpCb slirp_cbs = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_poll_fd_changed,
	.unregister_poll_fd = cb_poll_fd_changed,
	.notify = cb_notify,
};

/* ---- the network loop's turn ---- */

static int add_poll(int fd, int events, void *opaque)
{
	struct netloop *l = opaque;
	short e = 0;

	if (events & SLIRP_POLL_IN)
		e |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		e |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		e |= POLLPRI;
	return netloop_poll_add(l, fd, e);
}

static int get_revents(int idx, void *opaque)
{
	short r = netloop_revents(opaque, idx);
	int e = 0;

	if (r & POLLIN)
		e |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		e |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		e |= SLIRP_POLL_PRI;
	if (r & POLLERR)
		e |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		e |= SLIRP_POLL_HUP;
	return e;
}

static void slirp_fill(struct netloop *l, void *opaque, int *timeout_ms)
{
	struct slirp_be *s = opaque;
	uint32_t t = (uint32_t)*timeout_ms;
	int64_t now = (int64_t)netloop_now_ms();

	slirp_pollfds_fill(s->slirp, &t, add_poll, l);
	for (struct slirp_timer *tm = s->timers; tm; tm = tm->next)
		if (tm->expire_ms >= 0)
			t = MIN(t, (uint32_t)MAX(0, tm->expire_ms - now));
	pthread_mutex_lock(&s->lock);
	if (s->count)
		t = 0;
	pthread_mutex_unlock(&s->lock);
	*timeout_ms = (int)MIN(t, (uint32_t)*timeout_ms);
}

/* Tell the metadata instance who (eth_src, ip_src) is, so its answers find the guest (see the top). */
static void mds_learn(struct slirp_be *s, const uint8_t *f, size_t len)
{
	uint8_t arp[42];
	uint32_t sip;

	if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00)
		return;
	memcpy(&sip, f + 14 + 12, 4);
	if (sip == s->last_ip && !memcmp(f + 6, s->last_mac, 6))
		return;
	memcpy(s->last_mac, f + 6, 6);
	s->last_ip = sip;
	/* RFC 826 request "who has mds_host? tell sip at mac", broadcast. */
	memset(arp, 0xff, 6);
	memcpy(arp + 6, f + 6, 6);
	arp[12] = 0x08;
	arp[13] = 0x06;
	arp[14] = 0x00; arp[15] = 0x01;     /* Ethernet */
	arp[16] = 0x08; arp[17] = 0x00;     /* IPv4 */
	arp[18] = 6; arp[19] = 4;
	arp[20] = 0x00; arp[21] = 0x01;     /* request */
	memcpy(arp + 22, f + 6, 6);
	memcpy(arp + 28, &sip, 4);
	memset(arp + 32, 0, 6);
	memcpy(arp + 38, &s->mds_host.s_addr, 4);
	slirp_input(s->slirp, arp, sizeof(arp));
}

static void slirp_dispatch(struct netloop *l, void *opaque)
{
	struct slirp_be *s = opaque;
	int64_t now = (int64_t)netloop_now_ms();
	uint32_t resume = 0;

	slirp_pollfds_poll(s->slirp, l->poll_error, get_revents, l);
	/* Frames from the guest, one at a time out of the ring (slirp_input may call back into net_inject). */
	for (unsigned n = 0; n < RING_SLOTS; n++) {
		uint32_t len;

		pthread_mutex_lock(&s->lock);
		if (!s->count) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		len = s->len[s->head];
		memcpy(s->frame, s->slots + (size_t)s->head * SLOT_BYTES, len);
		s->head = (s->head + 1) % RING_SLOTS;
		s->count--;
		resume |= s->blocked;
		s->blocked = 0;
		pthread_mutex_unlock(&s->lock);
		if (s->mds)
			mds_learn(s, s->frame, len);
		slirp_input(s->slirp, s->frame, (int)len);
	}
	/* Drained: the queues may look for more (and turn kicks back on when there are none). */
	pthread_mutex_lock(&s->lock);
	if (!s->count) {
		resume |= s->deferred;
		s->deferred = 0;
	}
	pthread_mutex_unlock(&s->lock);
	for (unsigned p = 0; p < NET_MAX_PAIRS && s->be.nd; p++)
		if (resume & (1u << p))
			net_tx_resume(s->be.nd, p);
	/* Timers: a callback may re-arm or free timers, so restart the walk after each one. */
	for (unsigned guard = 0; guard < 64; guard++) {
		struct slirp_timer *tm;

		for (tm = s->timers; tm; tm = tm->next)
			if (tm->expire_ms >= 0 && tm->expire_ms <= now)
				break;
		if (!tm)
			break;
		tm->expire_ms = -1;
		tm->cb(tm->cb_opaque);
	}
	/* One interrupt for everything this turn gave the guest (net_inject). */
	if (s->be.nd)
		net_inject_flush(s->be.nd);
}

/* ---- the backend (virtio-net tx side) ---- */

static int sl_tx(struct net_backend *be, unsigned pair, const struct iovec *iov, int n, size_t len)
{
	struct slirp_be *s = S(be);
	struct virtio_net_hdr h;
	size_t flen = len - VNET_HDR_LEN;
	uint8_t *slot;
	int ret = 0;
	bool wake = false;

	if (iov_copy_out(iov, n, 0, &h, sizeof(h)) != sizeof(h) || flen > SLOT_BYTES ||
	    h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		/* No offload was offered to the guest: a GSO frame or an oversized one is not ours to take. */
		s->tx_dropped++;
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	if (pair >= NET_MAX_PAIRS) {
		s->tx_dropped++;
		ret = -EINVAL;
		goto out;
	}
	if (s->count == RING_SLOTS) {
		s->blocked |= 1u << pair;
		s->tx_blocked++;
		ret = -EAGAIN;
		goto out;
	}
	slot = s->slots + (size_t)((s->head + s->count) % RING_SLOTS) * SLOT_BYTES;
	iov_copy_out(iov, n, VNET_HDR_LEN, slot, flen);
	if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    net_csum_complete(slot, flen, le16toh(h.csum_start), le16toh(h.csum_offset)) < 0) {
		s->tx_dropped++;
		ret = -EINVAL;
		goto out;
	}
	s->len[(s->head + s->count) % RING_SLOTS] = (uint32_t)flen;
	s->deferred |= 1u << pair;
	ret = NET_TX_DEFERRED;
	/*
	 * Wake the network loop only when the ring was empty: while it holds
	 * frames, a turn is due (fill sees them and plans the next turn at
	 * once), so one eventfd write per burst, not per frame.
	 */
	wake = s->count++ == 0;
out:
	pthread_mutex_unlock(&s->lock);
	if (wake)
		netloop_wake(s->loop);
	return ret;
}

static void sl_destroy(struct net_backend *be)
{
	struct slirp_be *s = S(be);

	s->loop = NULL;
	if (s->slirp)
		slirp_cleanup(s->slirp);
	while (s->timers) {
		struct slirp_timer *t = s->timers;

		s->timers = t->next;
		free(t);
	}
	pthread_mutex_destroy(&s->lock);
	free(s->slots);
	free(s);
}

static void sl_print_stats(struct net_backend *be, int fd)
{
	struct slirp_be *s = S(be);

	dprintf(fd, "  %s: tx_dropped=%llu tx_full=%llu guest_errors=%llu\n", s->label,
		(unsigned long long)s->tx_dropped, (unsigned long long)s->tx_blocked,
		(unsigned long long)s->guest_errors);
}

static const struct net_backend_ops slirp_ops = {
	.tx = sl_tx,
	.destroy = sl_destroy,
	.print_stats = sl_print_stats,
};

static struct slirp_be *sl_new(struct netloop *l, const char *label, const SlirpConfig *cfg, char *msg,
			       size_t msglen)
{
	struct slirp_be *s = calloc(1, sizeof(*s));
	struct netloop_source src;

	if (!s || !(s->slots = malloc((size_t)RING_SLOTS * SLOT_BYTES))) {
		free(s);
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->be.ops = &slirp_ops;
	s->be.pairs = 1;
	s->loop = l;
	snprintf(s->label, sizeof(s->label), "%s", label);
	s->slirp = slirp_new(cfg, &slirp_cbs, s);
	if (!s->slirp) {
		snprintf(msg, msglen, "%s: libslirp refused its configuration", label);
		sl_destroy(&s->be);
		return NULL;
	}
	src = (struct netloop_source){ .fill = slirp_fill, .dispatch = slirp_dispatch, .opaque = s };
	if (netloop_add_source(l, &src) < 0) {
		snprintf(msg, msglen, "%s: too many network stacks", label);
		sl_destroy(&s->be);
		return NULL;
	}
	return s;
}

static struct in_addr ip4(const char *a)
{
	struct in_addr r;

	inet_pton(AF_INET, a, &r);
	return r;
}

int slirp_backend_create(struct netloop *l, const struct net_config *nc, struct net_backend **out, char *msg,
			 size_t msglen)
{
	SlirpConfig cfg = {
		.version = 4,
		.restricted = nc->restrict_,
		.in_enabled = true,
		.vnetwork = ip4(SLIRP_NET),
		.vnetmask = ip4("255.255.255.0"),
		.vhost = ip4(SLIRP_GATEWAY),
		.vhostname = "kiln",
		.vdhcp_start = ip4(SLIRP_GUEST),
		.vnameserver = ip4(SLIRP_DNS),
		.if_mtu = NET_MTU,
		.if_mru = NET_MTU,
	};
	struct slirp_be *s = sl_new(l, "user", &cfg, msg, msglen);

	if (!s)
		return -1;
	for (unsigned i = 0; i < nc->nfwd; i++) {
		const struct net_hostfwd *f = &nc->fwd[i];
		struct in_addr g = f->guest_addr.s_addr ? f->guest_addr : ip4(SLIRP_GUEST);

		if (slirp_add_hostfwd(s->slirp, f->udp, f->host_addr, f->host_port, g, f->guest_port) < 0) {
			char h[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &f->host_addr, h, sizeof(h));
			snprintf(msg, msglen, "hostfwd %s:%s:%u: cannot listen there (port in use or not permitted)",
				 f->udp ? "udp" : "tcp", h, f->host_port);
			sl_destroy(&s->be);
			return -1;
		}
	}
	*out = &s->be;
	return 0;
}

uint32_t slirp_mds_host(uint32_t addr)
{
	uint32_t h = ip4(MDS_HOST).s_addr;

	/* The stack's own address must not be the service's (PUT /mmds/config may pick .253). */
	return addr == h ? ip4("169.254.169.251").s_addr : h;
}

int slirp_mds_create_at(struct netloop *l, const char *unix_path, uint32_t addr, struct net_backend **out,
			char *msg, size_t msglen)
{
	SlirpConfig cfg = {
		.version = 4,
		.restricted = 1,            /* nothing but the guestfwd below */
		.in_enabled = true,
		.vnetwork = ip4("169.254.0.0"),
		.vnetmask = ip4("255.255.0.0"),
		.vhost = { .s_addr = slirp_mds_host(addr) },
		.vdhcp_start = ip4("169.254.169.100"),
		.vnameserver = ip4(addr == ip4("169.254.169.252").s_addr ? "169.254.169.250" : "169.254.169.252"),
		.if_mtu = NET_MTU,
		.if_mru = NET_MTU,
		.disable_dns = true,
		.disable_dhcp = true,
	};
	struct in_addr a = { .s_addr = addr };
	struct slirp_be *s;

	/* MmdsConfig.ipv4_address is link-local (169.254.0.0/16): inside this stack's network. */
	if ((ntohl(addr) >> 16) != 0xa9fe) {
		char t[INET_ADDRSTRLEN];

		snprintf(msg, msglen, "metadata: %s is not a link-local address",
			 inet_ntop(AF_INET, &a, t, sizeof(t)) ? t : "?");
		return -1;
	}
	s = sl_new(l, "metadata", &cfg, msg, msglen);
	if (!s)
		return -1;
	s->mds = true;
	s->mds_host = cfg.vhost;
	if (slirp_add_unix(s->slirp, unix_path, &a, 80) < 0) {
		snprintf(msg, msglen, "metadata: libslirp refused the forward to %s", unix_path);
		sl_destroy(&s->be);
		return -1;
	}
	*out = &s->be;
	return 0;
}

int slirp_mds_create(struct netloop *l, const char *unix_path, struct net_backend **out, char *msg,
		     size_t msglen)
{
	return slirp_mds_create_at(l, unix_path, ip4(MDS_ADDR).s_addr, out, msg, msglen);
}
