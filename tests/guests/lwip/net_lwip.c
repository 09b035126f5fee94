/* net_lwip: lwIP (Debian's source package) on kiln's virtio-net: DHCP, the metadata service's layouts and tokens, a hostfwd server, files both ways over TAP with CRC-32. */
#include "port.h"
#include "lwip/dhcp.h"
#include "lwip/ip4_addr.h"
#include "lwip/init.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"

/*
 * The command line (tests/net/lwip.sh writes it):
 *   mode=user|tap        DHCP (user) or a static address (tap: ip= mask= gw=)
 *   expect_ip=A.B.C.D    the lease DHCP must give (user)
 *   keyblob=BASE64       the --ssh-key key is "ssh-ed25519 BASE64 lwip@kiln"
 *   mmds=VALUE           what GET /lwip/value answers (from --metadata)
 *   mdsver=1|2           kiln's --metadata-version
 *   listen=PORT          user: serve one line on PORT (the host reaches it through hostfwd)
 *   peer=A.B.C.D dport= uport= bytes=   tap: download from peer:dport, upload `bytes` to peer:uport
 *   mode=bench [ip= mask= gw=] bytes= seconds= [stall_ms=]   bench/net-throughput.sh's servers (see bench_run);
 *                        stall_ms: stop polling that long at the first datagram (a guest too busy for its NIC)
 */
#define MDS_ADDR    "169.254.169.254"
#define KEY_COMMENT "lwip@kiln"
#define HTTP_MAX    8192
#define NET_SECONDS 20          /* one connection's step (connect, a response) in the nested lab */
#define XFER_SECONDS 90         /* a whole transfer of a few MiB */
#define PATTERN_BLOCK 4093      /* a prime: a segment moved by whole blocks still changes the CRC */

static struct netif nif;
static struct vnet vnet;
static uint8_t chunk[4096];     /* what conn_push hands tcp_write (copied by lwIP) */

/* One TCP connection driven by lwIP's raw-API callbacks. */
struct conn {
	struct tcp_pcb *pcb;
	bool connected, remote_closed, failed, truncated;
	err_t err;
	char *buf;                      /* received bytes are kept here (NUL-terminated), or only counted */
	size_t cap, len;
	uint64_t rx_bytes;
	uint32_t rx_crc;
	const char *tx_data;            /* send these tx_total bytes, or the upload pattern, or zeros */
	bool tx_pattern, tx_zero;
	uint64_t tx_total, tx_queued, tx_acked;
	uint32_t tx_crc;
};

/* The upload's byte i: a fixed block, shifted by the block number. */
static uint8_t pattern_at(uint64_t i)
{
	uint64_t j = i % PATTERN_BLOCK;

	return (uint8_t)(j * 73 + (j >> 3) * 29 + 0x5a + i / PATTERN_BLOCK);
}

static void conn_push(struct conn *c)
{
	while (c->pcb && c->tx_queued < c->tx_total) {
		uint64_t left = c->tx_total - c->tx_queued;
		u16_t n = tcp_sndbuf(c->pcb);

		if (n > sizeof(chunk))
			n = sizeof(chunk);
		if (n > left)
			n = (u16_t)left;
		if (!n)
			break;
		if (c->tx_pattern)
			for (u16_t k = 0; k < n; k++)
				chunk[k] = pattern_at(c->tx_queued + k);
		else if (c->tx_zero)
			memset(chunk, 0, n);
		else
			memcpy(chunk, c->tx_data + c->tx_queued, n);
		if (tcp_write(c->pcb, chunk, n, TCP_WRITE_FLAG_COPY | (n < left ? TCP_WRITE_FLAG_MORE : 0)) != ERR_OK)
			break;   /* the send queue is full: the next ack calls again */
		c->tx_crc = crc32_update(c->tx_crc, chunk, n);
		c->tx_queued += n;
	}
	if (c->pcb)
		tcp_output(c->pcb);
}

static void conn_err(void *arg, err_t err)
{
	struct conn *c = arg;

	/* lwIP has freed the pcb already. */
	c->pcb = NULL;
	c->failed = true;
	c->err = err;
}

static err_t conn_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct conn *c = arg;

	(void)err;
	if (!p) {
		c->remote_closed = true;
		return ERR_OK;
	}
	for (struct pbuf *q = p; q; q = q->next) {
		c->rx_crc = crc32_update(c->rx_crc, q->payload, q->len);
		c->rx_bytes += q->len;
		if (c->buf) {
			size_t n = q->len;

			if (n > c->cap - 1 - c->len) {
				n = c->cap - 1 - c->len;
				c->truncated = true;
			}
			memcpy(c->buf + c->len, q->payload, n);
			c->len += n;
			c->buf[c->len] = 0;
		}
	}
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

static err_t conn_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct conn *c = arg;

	(void)pcb;
	c->tx_acked += len;
	conn_push(c);
	return ERR_OK;
}

static err_t conn_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct conn *c = arg;

	(void)pcb;
	(void)err;   /* always ERR_OK in lwIP 2.1; failures come through conn_err */
	c->connected = true;
	conn_push(c);
	return ERR_OK;
}

static void conn_attach(struct conn *c, struct tcp_pcb *pcb)
{
	c->pcb = pcb;
	tcp_arg(pcb, c);
	tcp_err(pcb, conn_err);
	tcp_recv(pcb, conn_recv);
	tcp_sent(pcb, conn_sent);
}

static bool conn_up(void *arg)
{
	struct conn *c = arg;

	return c->connected || c->failed;
}

static bool conn_finished(void *arg)
{
	struct conn *c = arg;

	return c->remote_closed || c->failed;
}

static bool conn_all_acked(void *arg)
{
	struct conn *c = arg;

	return c->failed || c->tx_acked == c->tx_total;
}

/* Our side's FIN (the socket stays for lwIP to finish the close); the callbacks are detached first. */
static void conn_close(struct conn *c)
{
	if (!c->pcb)
		return;
	tcp_arg(c->pcb, NULL);
	tcp_err(c->pcb, NULL);
	tcp_recv(c->pcb, NULL);
	tcp_sent(c->pcb, NULL);
	if (tcp_close(c->pcb) != ERR_OK)
		tcp_abort(c->pcb);
	c->pcb = NULL;
}

/* Connect, waiting up to NET_SECONDS. */
static void conn_open(struct conn *c, const ip4_addr_t *ip, u16_t port, const char *what)
{
	struct tcp_pcb *pcb = tcp_new();
	err_t e;

	if (!pcb)
		fail("%s: tcp_new: out of pcbs", what);
	conn_attach(c, pcb);
	e = tcp_connect(pcb, ip, port, conn_connected);
	if (e != ERR_OK)
		fail("%s: tcp_connect to %s:%u: error %d", what, ip4addr_ntoa(ip), port, e);
	if (!port_run(&nif, conn_up, c, NET_SECONDS) || c->failed)
		fail("%s: no connection to %s:%u (lwIP error %d)", what, ip4addr_ntoa(ip), port, c->err);
}

/* The decimal number at s (up to the first non-digit). */
static size_t digits(const char *s)
{
	size_t v = 0;

	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (size_t)(*s - '0');
	return v;
}

/* ---- HTTP to the metadata service ---- */

static char http_buf[HTTP_MAX];

/*
 * One request (kiln answers one per connection and closes). The status, and
 * the body NUL-terminated in `body`; Content-Length must match what came.
 */
static int http(const char *method, const char *path, const char *headers, char *body, size_t cap)
{
	static char req[1024];
	struct conn c = { 0 };
	ip4_addr_t mds;
	const char *sep, *cl;
	size_t blen;
	int status;

	ip4addr_aton(MDS_ADDR, &mds);
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: " MDS_ADDR "\r\n%sConnection: close\r\n\r\n", method, path,
		 headers);
	c.buf = http_buf;
	c.cap = sizeof(http_buf);
	c.tx_data = req;
	c.tx_total = strlen(req);
	conn_open(&c, &mds, 80, path);
	if (!port_run(&nif, conn_finished, &c, NET_SECONDS) || c.failed)
		fail("%s %s: no complete response in %u s (%zu bytes, lwIP error %d)", method, path, NET_SECONDS, c.len,
		     c.err);
	conn_close(&c);
	if (c.truncated)
		fail("%s %s: response over %u bytes", method, path, HTTP_MAX);
	if (strncmp(http_buf, "HTTP/1.1 ", 9) || http_buf[9] < '1' || http_buf[9] > '5')
		fail("%s %s: not an HTTP/1.1 status line: \"%.40s\"", method, path, http_buf);
	status = (http_buf[9] - '0') * 100 + (http_buf[10] - '0') * 10 + (http_buf[11] - '0');
	for (sep = http_buf; *sep && strncmp(sep, "\r\n\r\n", 4); sep++)
		;
	if (!*sep)
		fail("%s %s: no end of headers", method, path);
	sep += 4;
	blen = c.len - (size_t)(sep - http_buf);
	for (cl = http_buf; cl < sep && strncmp(cl, "Content-Length: ", 16); cl++)
		;
	if (cl >= sep || digits(cl + 16) != blen)
		fail("%s %s: Content-Length does not match the %zu body bytes", method, path, blen);
	if (blen >= cap)
		fail("%s %s: body of %zu bytes does not fit %zu", method, path, blen, cap);
	memcpy(body, sep, blen);
	body[blen] = 0;
	return status;
}

static bool contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (!strncmp(hay, needle, n))
			return true;
	return false;
}

/* The metadata checks; tok_hdr: the token header for V2 ("" for V1). */
static void mds_layouts(const char *key, const char *tok_hdr)
{
	static char body[HTTP_MAX], want[512], value[128];
	int st;

	if (!cmdline_str("mmds", value, sizeof(value)))
		fail("no mmds= on the command line");
	st = http("GET", "/lwip/value", tok_hdr, body, sizeof(body));
	if (st != 200 || strncmp(body, value, sizeof(value)))
		fail("MMDS GET /lwip/value: %d \"%.60s\", expected 200 \"%s\"", st, body, value);
	printf("lwip: mmds /lwip/value=%s\n", body);

	st = http("GET", "/latest/meta-data/public-keys/0/openssh-key", tok_hdr, body, sizeof(body));
	if (st != 200 || strncmp(body, key, HTTP_MAX))
		fail("EC2 openssh-key: %d \"%.100s\", expected \"%s\"", st, body, key);
	printf("lwip: ec2-key=%s\n", body);

	st = http("GET", "/latest/meta-data/instance-id", tok_hdr, body, sizeof(body));
	if (st != 200 || strncmp(body, "i-", 2) || strlen(body) != 18)
		fail("EC2 instance-id: %d \"%.40s\", expected i- and 16 hex digits", st, body);
	for (const char *p = body + 2; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			fail("EC2 instance-id \"%s\" is not i- and 16 hex digits", body);
	printf("lwip: ec2-instance-id=%s\n", body);

	st = http("GET", "/openstack/latest/meta_data.json", tok_hdr, body, sizeof(body));
	snprintf(want, sizeof(want), "\"public_keys\":{\"key0\":\"%s\"}", key);
	if (st != 200 || !contains(body, want) || !contains(body, "\"uuid\":\""))
		fail("OpenStack meta_data.json: %d, no uuid or no %s in \"%.200s\"", st, want, body);
	printf("lwip: openstack-key=%s\n", key);
}

static void metadata(void)
{
	static char blob[256], key[320], tok_hdr[128], body[256];
	unsigned ver = (unsigned)cmdline_uint("mdsver", 1);
	int st;

	if (!cmdline_str("keyblob", blob, sizeof(blob)))
		fail("no keyblob= on the command line");
	snprintf(key, sizeof(key), "ssh-ed25519 %s " KEY_COMMENT, blob);

	/* A token from PUT works in both versions (V1 ignores it on GETs). */
	st = http("PUT", "/latest/api/token", "X-metadata-token-ttl-seconds: 60\r\n", body, sizeof(body));
	if (st != 200 || strlen(body) < 16)
		fail("PUT /latest/api/token: %d \"%.60s\"", st, body);
	printf("lwip: mmds token (%zu chars)\n", strlen(body));
	snprintf(tok_hdr, sizeof(tok_hdr), "X-metadata-token: %s\r\n", body);
	/* The PUT for a token refuses a forwarded request (Firecracker): 400. */
	st = http("PUT", "/latest/api/token", "X-metadata-token-ttl-seconds: 60\r\nX-Forwarded-For: 10.0.0.1\r\n", body,
		  sizeof(body));
	if (st != 400)
		fail("PUT /latest/api/token with X-Forwarded-For: %d, expected 400", st);

	if (ver == 2) {
		mds_layouts(key, tok_hdr);
		st = http("GET", "/lwip/value", "", body, sizeof(body));
		if (st != 401)
			fail("MMDS V2: a GET without a token got %d, expected 401", st);
		st = http("GET", "/latest/meta-data/public-keys/0/openssh-key",
			  "X-metadata-token: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n", body, sizeof(body));
		if (st != 401)
			fail("MMDS V2: a GET with a wrong token got %d, expected 401", st);
		printf("lwip: mmds v2: with token 200, without 401, wrong token 401\n");
	} else {
		mds_layouts(key, "");
		st = http("GET", "/lwip/value", "X-metadata-token: not-a-token\r\n", body, sizeof(body));
		if (st != 200)
			fail("MMDS V1: a GET with a bogus token got %d, expected 200 (V1 does not check)", st);
		printf("lwip: mmds v1: no token needed\n");
	}
}

/* ---- user mode: DHCP and a server behind hostfwd ---- */

static bool have_lease(void *arg)
{
	(void)arg;
	return dhcp_supplied_address(&nif);
}

static void dhcp_lease(void)
{
	char expect[32];

	if (dhcp_start(&nif) != ERR_OK)
		fail("dhcp_start failed");
	if (!port_run(&nif, have_lease, NULL, NET_SECONDS))
		fail("no DHCP lease in %u s", NET_SECONDS);
	printf("lwip: dhcp lease %s", ip4addr_ntoa(netif_ip4_addr(&nif)));
	printf(" mask %s", ip4addr_ntoa(netif_ip4_netmask(&nif)));
	printf(" gw %s\n", ip4addr_ntoa(netif_ip4_gw(&nif)));
	if (cmdline_str("expect_ip", expect, sizeof(expect)) && strncmp(ip4addr_ntoa(netif_ip4_addr(&nif)), expect, 32))
		fail("DHCP leased %s, expected %s", ip4addr_ntoa(netif_ip4_addr(&nif)), expect);
}

static struct conn srv;
static bool srv_taken;

static err_t srv_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	if (srv_taken) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	srv_taken = true;
	conn_attach(&srv, pcb);
	srv.connected = true;
	return ERR_OK;
}

static bool srv_line(void *arg)
{
	(void)arg;
	for (size_t i = 0; i < srv.len; i++)
		if (srv.buf[i] == '\n')
			return true;
	return srv.failed || srv.remote_closed;
}

static void serve(unsigned port)
{
	static char line[512], reply[128];
	struct tcp_pcb *l = tcp_new(), *lp;
	size_t n;

	if (!l || tcp_bind(l, IP4_ADDR_ANY, (u16_t)port) != ERR_OK || !(lp = tcp_listen(l)))
		fail("cannot listen on port %u", port);
	tcp_accept(lp, srv_accept);
	srv.buf = line;
	srv.cap = sizeof(line);
	printf("lwip: listening on %u\n", port);
	if (!port_run(&nif, srv_line, NULL, 60) || srv.failed)
		fail("no line from a client on port %u in 60 s (accepted: %d)", port, srv_taken);
	tcp_close(lp);
	for (n = 0; n < srv.len && line[n] != '\n'; n++)
		;
	if (n == srv.len)
		fail("the client closed before a whole line (%zu bytes)", srv.len);
	line[n] = 0;
	/* The reply proves the guest read the line: its length and CRC-32. */
	snprintf(reply, sizeof(reply), "lwip-reply len=%zu crc32=%08x\n", n, crc32_update(0, line, n));
	printf("lwip: served \"%s\": %s", line, reply);
	srv.tx_data = reply;
	srv.tx_total = strlen(reply);
	conn_push(&srv);
	/* The client closes once it has the reply: then it arrived. */
	if (!port_run(&nif, conn_finished, &srv, NET_SECONDS) || srv.failed)
		fail("the client did not close after the reply (acked %lu of %lu)", srv.tx_acked, srv.tx_total);
	conn_close(&srv);
}

/* ---- TAP: files both ways ---- */

static void download(const ip4_addr_t *peer, unsigned port, uint64_t bytes)
{
	struct conn c = { 0 };
	uint64_t t0 = sys_now();

	conn_open(&c, peer, (u16_t)port, "download");
	if (!port_run(&nif, conn_finished, &c, XFER_SECONDS) || c.failed)
		fail("download: %lu of %lu bytes in %u s (lwIP error %d)", c.rx_bytes, bytes, XFER_SECONDS, c.err);
	conn_close(&c);
	if (c.rx_bytes != bytes)
		fail("download: %lu bytes, expected %lu", c.rx_bytes, bytes);
	printf("lwip: download bytes=%lu crc32=%08x (%lu ms)\n", c.rx_bytes, c.rx_crc, sys_now() - t0);
}

static void upload(const ip4_addr_t *peer, unsigned port, uint64_t bytes)
{
	static char answer[128];
	char want[128];
	struct conn c = { 0 };
	uint64_t t0 = sys_now();

	c.tx_pattern = true;
	c.tx_total = bytes;
	c.buf = answer;
	c.cap = sizeof(answer);
	conn_open(&c, peer, (u16_t)port, "upload");
	if (!port_run(&nif, conn_all_acked, &c, XFER_SECONDS) || c.failed)
		fail("upload: %lu of %lu bytes acked in %u s (lwIP error %d)", c.tx_acked, bytes, XFER_SECONDS, c.err);
	/* Half-close: the peer sees EOF, answers with its count and CRC-32, and closes. */
	if (tcp_shutdown(c.pcb, 0, 1) != ERR_OK)
		fail("upload: tcp_shutdown failed");
	if (!port_run(&nif, conn_finished, &c, NET_SECONDS) || c.failed)
		fail("upload: the peer did not answer and close (lwIP error %d)", c.err);
	conn_close(&c);
	printf("lwip: upload bytes=%lu crc32=%08x (%lu ms)\n", c.tx_queued, c.tx_crc, sys_now() - t0);
	snprintf(want, sizeof(want), "bytes=%lu crc32=%08x\n", bytes, c.tx_crc);
	if (strncmp(answer, want, sizeof(want)))
		fail("upload: the peer says \"%.60s\", expected \"%.60s\"", answer, want);
}

/* ---- bench mode: the guest end of bench/net-throughput.sh ---- */

/*
 * The servers of the Linux bench guest's /bench-init, so that
 * bench/net_client.py drives either guest: tcp 5001 takes what comes and
 * closes after the sender's FIN (host->guest); tcp 5002 sends `bytes` zeros
 * and closes (guest->host); udp 9 counts datagrams, printed as "bench-udp N"
 * once a flood is over. One connection per port at a time (the client runs
 * one transfer at a time); a second is refused.
 *
 * Nothing is printed while a figure is being taken: a console write is an
 * exit, and QEMU's serial port waits for its big lock, which its main loop
 * holds while it moves packets, so a guest printing once a second under
 * QEMU stalled for a quarter of each second, and that freed a host core
 * for the other side of the transfer.
 */
struct bench_srv {
	struct conn c;
	bool busy, source;
	uint64_t bytes;                 /* what a source connection sends */
};

static struct bench_srv sink, source = { .source = true };
static uint64_t udp_datagrams;

static err_t bench_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct bench_srv *b = arg;

	if (err != ERR_OK || !pcb || !b)
		return ERR_VAL;
	if (b->busy) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	memset(&b->c, 0, sizeof(b->c));
	b->busy = true;
	conn_attach(&b->c, pcb);
	b->c.connected = true;
	if (b->source) {
		b->c.tx_zero = true;
		b->c.tx_total = b->bytes;
		conn_push(&b->c);
	}
	return ERR_OK;
}

static void bench_listen(struct bench_srv *b, u16_t port)
{
	struct tcp_pcb *l = tcp_new(), *lp;

	if (!l || tcp_bind(l, IP4_ADDR_ANY, port) != ERR_OK || !(lp = tcp_listen(l)))
		fail("bench: cannot listen on port %u", port);
	/* A listener's arg is handed to its accept callback. */
	tcp_arg(lp, b);
	tcp_accept(lp, bench_accept);
}

static void bench_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
	(void)arg;
	(void)pcb;
	(void)addr;
	(void)port;
	udp_datagrams++;
	pbuf_free(p);
}

/* What the driver did, to compare VMMs by (kicks are exits). */
static void bench_stats(void)
{
	printf("bench-stats rx=%lu tx=%lu tx_kicks=%lu rx_kicks=%lu tx_full=%lu lwip_dropped=%lu polls_empty=%lu "
	       "polls_full=%lu\n", vnet.rx_frames, vnet.tx_frames, vnet.tx.kicks, vnet.rx.kicks, vnet.tx_waits,
	       port_rx_dropped, port_polls_empty, port_polls_full);
}

/* A finished connection gives its port back: the sink's after the sender's FIN, the source's once all is acked. */
static void bench_reap(struct bench_srv *b)
{
	struct conn *c = &b->c;

	if (!b->busy)
		return;
	if (b->source ? !(c->failed || c->remote_closed || c->tx_acked == c->tx_total) : !(c->failed || c->remote_closed))
		return;
	/* Closed first: the client's clock stops at our FIN, before the console line. */
	conn_close(c);
	b->busy = false;
	printf("bench: %s connection done: %lu bytes in, %lu acked out%s\n", b->source ? "tcp 5002" : "tcp 5001",
	       c->rx_bytes, c->tx_acked, c->failed ? " (reset)" : "");
	bench_stats();
}

/* Serve for `seconds` of lwIP's clock (the TSC: no RTC reads, whose port exits would be in the figures). */
static void bench_run(void)
{
	uint32_t seconds = (uint32_t)cmdline_uint("seconds", 3600), t0, changed, now;
	uint32_t stall_ms = (uint32_t)cmdline_uint("stall_ms", 0);
	uint64_t seen = 0, shown = 0;
	struct udp_pcb *u = udp_new();

	source.bytes = cmdline_uint("bytes", 268435456);
	bench_listen(&sink, 5001);
	bench_listen(&source, 5002);
	if (!u || udp_bind(u, IP4_ADDR_ANY, 9) != ERR_OK)
		fail("bench: cannot bind udp 9");
	udp_recv(u, bench_udp_recv, NULL);
	printf("bench: addr=%s\n", ip4addr_ntoa(netif_ip4_addr(&nif)));
	printf("bench-udp 0\n");
	printf("bench-ready\n");
	t0 = changed = sys_now();
	for (;;) {   /* bounded: ends after `seconds` */
		port_poll(&nif);
		bench_reap(&sink);
		bench_reap(&source);
		now = sys_now();
		if (udp_datagrams != seen) {
			seen = udp_datagrams;
			changed = now;
			if (stall_ms) {
				/* The device fills the rx ring and must wait for our buffers (tests/net/lwip.sh, bench-tap). */
				printf("bench: stalling %u ms\n", stall_ms);
				while (sys_now() - now < stall_ms)   /* bounded by stall_ms */
					cpu_relax();
				stall_ms = 0;
			}
		} else if (seen != shown && now - changed >= 500) {
			/* Half a second without a datagram: the flood is over. */
			shown = seen;
			printf("bench-udp %lu\n", seen);
			bench_stats();
		}
		if (now - t0 >= seconds * 1000u)
			break;
	}
	printf("bench: %lu udp datagrams, %lu rx headers with num_buffers 0\n", udp_datagrams, vnet.rx_num_buffers_0);
}

/* An IPv4 address from the command line, or fail. */
static void cmdline_ip(const char *key, ip4_addr_t *ip)
{
	char s[32];

	if (!cmdline_str(key, s, sizeof(s)) || !ip4addr_aton(s, ip))
		fail("no %s=A.B.C.D on the command line", key);
}

void guest_main(void)
{
	ip4_addr_t ip, mask, gw, peer;
	char mode[8], addr[32];
	const char *why;

	if (!cmdline_str("mode", mode, sizeof(mode)))
		fail("no mode= on the command line");
	port_clock_init();
	if (!strncmp(mode, "tap", sizeof(mode)) || (!strncmp(mode, "bench", sizeof(mode)) && cmdline_str("ip", addr, sizeof(addr)))) {
		cmdline_ip("ip", &ip);
		cmdline_ip("mask", &mask);
		cmdline_ip("gw", &gw);
	} else {
		ip4_addr_set_zero(&ip);
		ip4_addr_set_zero(&mask);
		ip4_addr_set_zero(&gw);
	}
	if (port_netif_add(&nif, &vnet, &ip, &mask, &gw, &why) < 0)
		fail("virtio-net: %s", why);
	printf("lwip: lwIP " LWIP_VERSION_STRING ", virtio-net %02x:%02x.%x mac %02x:%02x:%02x:%02x:%02x:%02x features %#lx link %s\n",
	       vnet.pci.bdf >> 8, (vnet.pci.bdf >> 3) & 31, vnet.pci.bdf & 7, vnet.mac[0], vnet.mac[1], vnet.mac[2],
	       vnet.mac[3], vnet.mac[4], vnet.mac[5], vnet.pci.features, vnet_link_up(&vnet) ? "up" : "down");

	if (!strncmp(mode, "user", sizeof(mode))) {
		dhcp_lease();
		metadata();
		serve((unsigned)cmdline_uint("listen", 8080));
	} else if (!strncmp(mode, "tap", sizeof(mode))) {
		printf("lwip: static %s\n", ip4addr_ntoa(&ip));
		metadata();
		cmdline_ip("peer", &peer);
		download(&peer, (unsigned)cmdline_uint("dport", 5001), cmdline_uint("bytes", 0));
		upload(&peer, (unsigned)cmdline_uint("uport", 5002), cmdline_uint("bytes", 0));
	} else if (!strncmp(mode, "bench", sizeof(mode))) {
		/* The bench compares kiln with QEMU 7.2, whose rx headers have num_buffers 0. */
		vnet.allow_num_buffers_0 = true;
		if (ip4_addr_isany_val(ip))
			dhcp_lease();
		bench_run();
	} else {
		fail("unknown mode=%s", mode);
	}
	printf("lwip: rx frames %lu (dropped by lwIP %lu), tx frames %lu, tx ring full %lu times\n", vnet.rx_frames,
	       port_rx_dropped, vnet.tx_frames, vnet.tx_waits);
}
