/* What one --net asks for (filled by the CLI, read by the network setup): backend, queues, MAC, port forwards. */
#ifndef KILN_NET_CONFIG_H
#define KILN_NET_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#define VM_MAX_NETS 4
#define NET_MAX_PAIRS 7          /* 2 * 7 + 1 control queue fit VIRTIO_MAX_QUEUES (16) */
#define NET_MAX_HOSTFWD 16
#define NET_TX_DELAY_US 25       /* txdelay='s default (see tx_kick in src/virtio/net.c) */
#define NET_TX_DELAY_MAX_US 1000

enum net_kind { NET_USER, NET_TAP, NET_TAPFD };

/* hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
struct net_hostfwd {
	bool udp;
	struct in_addr host_addr;    /* default 127.0.0.1 */
	uint16_t host_port;
	struct in_addr guest_addr;   /* default: the DHCP address (10.0.2.15) */
	uint16_t guest_port;
};

struct net_config {
	enum net_kind kind;
	const char *ifname;          /* NET_TAP */
	int fd;                      /* NET_TAPFD */
	unsigned queues;             /* queue pairs, 1..NET_MAX_PAIRS (TAP only) */
	uint8_t mac[6];
	bool mac_set;                /* else 52:54:00:12:34:56 + index */
	bool restrict_;              /* user: restrict=on, no connections out of the guest */
	bool no_mmds;                /* no metadata service on this NIC (an API interface not in mmds-config) */
	bool tx_delay_set;           /* txdelay=US given; else NET_TX_DELAY_US */
	unsigned tx_delay_us;
	struct net_hostfwd fwd[NET_MAX_HOSTFWD];
	unsigned nfwd;
};

#endif
