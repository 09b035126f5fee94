/* The TAP backend of virtio-net: attach to an existing tap (by name or fd) with the virtio-net header and offloads. */
#ifndef KILN_NET_TAP_H
#define KILN_NET_TAP_H

#include <stddef.h>
#include "net/net_config.h"

struct vm;
struct net_backend;

/* Open cfg's tap (NET_TAP: queues fds by name; NET_TAPFD: the fd given). 0, or -1 with a one-line reason. */
int tap_backend_create(struct vm *vm, const struct net_config *cfg, struct net_backend **out, char *msg,
		       size_t msglen);

#endif
