/* lwIP's port for the test guests: sys_now from the TSC, a netif over the polling virtio-net driver (NO_SYS raw API). */
#include "port.h"
#include "lwip/init.h"
#include "lwip/etharp.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

#define POLL_BUDGET 64          /* frames per port_poll: lwIP's timers run between batches */

static uint64_t tsc_hz, tsc_start;
uint64_t port_rx_dropped;
uint64_t port_polls_empty, port_polls_full;   /* port_polls that found no frame, or a whole budget of them */

void port_clock_init(void)
{
	tsc_hz = tsc_calibrate();
	if (tsc_hz < 1000000)
		fail("TSC calibration gave %lu Hz", tsc_hz);
	tsc_start = rdtsc();
}

/* lwIP's only time source in NO_SYS mode (sys.h): milliseconds, wrapping at 32 bits as lwIP expects. */
u32_t sys_now(void)
{
	return (u32_t)((rdtsc() - tsc_start) / (tsc_hz / 1000));
}

/* netif->linkoutput: one frame, copied out of the pbuf chain into a tx buffer. */
static err_t link_output(struct netif *nif, struct pbuf *p)
{
	struct vnet *n = nif->state;
	void *buf;

	if (p->tot_len > VNET_MAX_FRAME)
		return ERR_BUF;
	buf = vnet_tx_buffer(n);
	if (pbuf_copy_partial(p, buf, p->tot_len, 0) != p->tot_len)
		return ERR_BUF;
	vnet_tx_send(n, p->tot_len);
	return ERR_OK;
}

static err_t nif_init(struct netif *nif)
{
	struct vnet *n = nif->state;

	nif->name[0] = 'v';
	nif->name[1] = 'n';
	nif->output = etharp_output;
	nif->linkoutput = link_output;
	nif->mtu = 1500;
	nif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(nif->hwaddr, n->mac, ETH_HWADDR_LEN);
	nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
	return ERR_OK;
}

int port_netif_add(struct netif *nif, struct vnet *n, const ip4_addr_t *ip, const ip4_addr_t *mask,
		   const ip4_addr_t *gw, const char **why)
{
	if (vnet_open(n, why) < 0)
		return -1;
	lwip_init();
	if (!netif_add(nif, ip, mask, gw, n, nif_init, ethernet_input)) {
		*why = "netif_add failed";
		return -1;
	}
	netif_set_default(nif);
	netif_set_up(nif);
	if (vnet_link_up(n))
		netif_set_link_up(nif);
	return 0;
}

/* vnet_poll's callback: copy the frame into a pbuf (the rx buffer goes straight back to the device). */
static void deliver(void *arg, const void *frame, uint32_t len)
{
	struct netif *nif = arg;
	struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);

	if (!p) {
		port_rx_dropped++;
		return;
	}
	pbuf_take(p, frame, (u16_t)len);
	if (nif->input(p, nif) != ERR_OK) {
		pbuf_free(p);
		port_rx_dropped++;
	}
}

void port_poll(struct netif *nif)
{
	unsigned got = vnet_poll(nif->state, deliver, nif, POLL_BUDGET);

	if (!got)
		port_polls_empty++;
	else if (got == POLL_BUDGET)
		port_polls_full++;
	sys_check_timeouts();
}

struct run_arg {
	struct netif *nif;
	bool (*done)(void *);
	void *arg;
};

static bool run_step(void *p)
{
	struct run_arg *r = p;

	if (r->done(r->arg))
		return true;
	port_poll(r->nif);
	return r->done(r->arg);
}

bool port_run(struct netif *nif, bool (*done)(void *), void *arg, unsigned seconds)
{
	struct run_arg r = { nif, done, arg };

	return wait_seconds(run_step, &r, seconds);
}
