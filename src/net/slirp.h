/* The libslirp backends of virtio-net: user-mode NAT networking, and the metadata endpoint at 169.254.169.254. */
#ifndef KILN_NET_SLIRP_H
#define KILN_NET_SLIRP_H

#include <stddef.h>
#include <stdint.h>
#include "net/net_config.h"

struct netloop;
struct net_backend;

/* The user-mode network (QEMU's addresses, so guides for -netdev user apply). */
#define SLIRP_NET     "10.0.2.0"
#define SLIRP_GATEWAY "10.0.2.2"   /* also the host's loopback, unless restrict=on */
#define SLIRP_DNS     "10.0.2.3"
#define SLIRP_GUEST   "10.0.2.15"  /* first DHCP lease */
/* The metadata service, and the address its stack answers ARP from. */
#define MDS_ADDR      "169.254.169.254"
#define MDS_HOST      "169.254.169.253"

/* --net user[,...]: NAT, DHCP, DNS, host forwards. Runs on loop. 0, or -1 with a reason. */
int slirp_backend_create(struct netloop *l, const struct net_config *nc, struct net_backend **out, char *msg,
			 size_t msglen);
/* The metadata endpoint: 169.254.169.254:80 forwarded to the HTTP server at unix_path. */
int slirp_mds_create(struct netloop *l, const char *unix_path, struct net_backend **out, char *msg, size_t msglen);
/* The same at addr (network order, in 169.254.0.0/16: MmdsConfig.ipv4_address). */
int slirp_mds_create_at(struct netloop *l, const char *unix_path, uint32_t addr, struct net_backend **out,
			char *msg, size_t msglen);
/* The address that stack answers ARP from for the service at addr (network order): MDS_HOST unless taken. */
uint32_t slirp_mds_host(uint32_t addr);

#endif
