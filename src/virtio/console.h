/* virtio-console (hvc0): what the VM core and the console thread call. */
#ifndef KILN_VIRTIO_CONSOLE_H
#define KILN_VIRTIO_CONSOLE_H

#include "core/types.h"

struct vm;
struct virtio_dev;

/* Typed bytes waiting for the guest to post receive buffers; beyond this vcon_receive() refuses. */
#define VCON_RX_STAGE 4096

/* Counters shown by --stats. */
struct vcon_stats {
	uint64_t tx_bytes;      /* transmitq0 bytes written to the console fd */
	uint64_t tx_dropped;    /* transmitq0 bytes lost: console write failed */
	uint64_t rx_bytes;      /* console bytes accepted by vcon_receive() */
	uint64_t rx_delivered;  /* bytes written into receiveq0 buffers */
};

/*
 * Create the device on the transport the user chose (virtio_add) and set
 * vm->vcon. Output goes to vm->console_out_fd (discarded when < 0). 0 or
 * -errno. Called by the device registry when cfg.console_dev is virtio.
 */
int vcon_create(struct vm *vm);

/* Bytes vcon_receive() would accept now. Safe from any thread. */
size_t vcon_rx_space(struct virtio_dev *d);

/*
 * Console input: take up to n bytes for the guest; they reach it (on the I/O
 * thread) once it has receive buffers posted and has written to the console
 * since its last reset (its port is connected: console.c vcon_rx). Returns
 * the bytes taken; a caller that must not lose input asks vcon_rx_space() first.
 */
size_t vcon_receive(struct virtio_dev *d, const uint8_t *buf, size_t n);

/* A consistent snapshot of the counters. */
void vcon_get_stats(struct virtio_dev *d, struct vcon_stats *out);

#endif
