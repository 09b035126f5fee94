/* lwIP configuration for kiln's lwIP test guest: NO_SYS raw API, IPv4 with DHCP, TCP, UDP, ARP; no sockets, no threads. */
#ifndef KILN_LWIPOPTS_H
#define KILN_LWIPOPTS_H

/* One CPL3 thread polls the NIC and runs the timers (sys_check_timeouts): no OS, no locking. */
#define NO_SYS                  1
#define SYS_LIGHTWEIGHT_PROT    0
#define LWIP_SOCKET             0
#define LWIP_NETCONN            0
#define LWIP_NETIF_API          0

#define LWIP_IPV4               1
#define LWIP_IPV6               0
#define LWIP_ARP                1
#define LWIP_ETHERNET           1
#define LWIP_ICMP               1
#define LWIP_UDP                1
#define LWIP_TCP                1
#define LWIP_DHCP               1
#define LWIP_DNS                0
#define LWIP_IGMP               0
#define LWIP_AUTOIP             0
#define LWIP_RAW                0
#define IP_REASSEMBLY           0
#define IP_FRAG                 0
/* The lease test wants the address at once: no ARP probe of the offered address (a second of waiting). */
#define DHCP_DOES_ARP_CHECK     0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK   0

/* Memory: lwIP's own heap and pools in .bss (the guest has no malloc). x86-64 wants 8-byte alignment. */
#define MEM_ALIGNMENT           8
#define MEM_SIZE                (512 * 1024)
#define MEMP_NUM_PBUF           64
#define MEMP_NUM_TCP_PCB        8
#define MEMP_NUM_TCP_PCB_LISTEN 2
#define MEMP_NUM_TCP_SEG        192
#define PBUF_POOL_SIZE          128
#define PBUF_POOL_BUFSIZE       1536

/*
 * TCP: a full-size window and send buffer without window scaling (16 bits),
 * so a few MiB move in seconds even in the nested lab. TCP_SND_QUEUELEN
 * follows lwIP's sanity check (>= 2 * SND_BUF / MSS).
 */
#define TCP_MSS                 1460
#define TCP_WND                 (40 * TCP_MSS)
#define TCP_SND_BUF             (40 * TCP_MSS)
#define TCP_SND_QUEUELEN        (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_QUEUE_OOSEQ         1
#define LWIP_TCP_KEEPALIVE      0
#define LWIP_CALLBACK_API       1

/* lwIP checks and generates every checksum itself: the driver negotiates no offloads. */
#define CHECKSUM_GEN_IP         1
#define CHECKSUM_GEN_UDP        1
#define CHECKSUM_GEN_TCP        1
#define CHECKSUM_CHECK_IP       1
#define CHECKSUM_CHECK_UDP      1
#define CHECKSUM_CHECK_TCP      1

#define LWIP_STATS              0
#define LWIP_NETIF_HOSTNAME     0
#define LWIP_HAVE_LOOPIF        0
#define LWIP_NETIF_LOOPBACK     0
#define LWIP_SINGLE_NETIF       1

#endif
