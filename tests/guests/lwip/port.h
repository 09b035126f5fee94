/* The glue between lwIP and the test guests' virtio-net driver: the netif, its polling, lwIP's clock. */
#ifndef KILN_LWIP_PORT_H
#define KILN_LWIP_PORT_H

#include "virtio.h"
#include "lwip/netif.h"

/* Start lwIP's clock (sys_now): calibrates the TSC against the RTC (1-2 s). */
void port_clock_init(void);
/* Open the NIC and add it to lwIP as the default, up netif (addresses may be 0: DHCP). 0, or -1 with *why. */
int port_netif_add(struct netif *nif, struct vnet *n, const ip4_addr_t *ip, const ip4_addr_t *mask,
		   const ip4_addr_t *gw, const char **why);
/* Feed received frames to lwIP and run its timers: one step of the main loop. */
void port_poll(struct netif *nif);
/* Run port_poll until done(arg) or `seconds` went by; done's last result. */
bool port_run(struct netif *nif, bool (*done)(void *), void *arg, unsigned seconds);
/* Frames lwIP dropped on input (no pbuf, or the stack refused it). */
extern uint64_t port_rx_dropped;
extern uint64_t port_polls_empty, port_polls_full;

#endif
