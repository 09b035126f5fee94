/* COM1 16550A UART: the guest's serial console (what the VM core and console thread call). */
#ifndef KILN_DEVICES_UART_H
#define KILN_DEVICES_UART_H

#include "core/types.h"

struct vm;
struct uart;

/* Counters shown by --stats. */
struct uart_stats {
	uint64_t tx_bytes;    /* THR bytes written to the console fd */
	uint64_t tx_dropped;  /* THR bytes lost: console write failed (EAGAIN, EIO, ...) */
	uint64_t rx_bytes;    /* console bytes accepted into the receive FIFO */
	uint64_t rx_dropped;  /* console bytes refused by uart_receive() (FIFO full, loopback) */
};

/*
 * Create COM1 at X86_COM1_PORT (8 ports, ISA IRQ X86_COM1_IRQ) and set vm->uart.
 * Output goes to vm->console_out_fd (discarded when it is < 0). 0 or -errno;
 * once the device is handed to the VM (vm_add_device) the VM owns and frees it,
 * also when a later step fails.
 */
int uart_init(struct vm *vm);

/*
 * Console input: put up to n bytes into the receive FIFO and raise the IRQ.
 * Returns the bytes accepted; the rest are dropped and counted (rx_dropped),
 * so a caller that must not lose input asks uart_rx_space() first.
 * Safe from any thread.
 */
size_t uart_receive(struct uart *u, const uint8_t *buf, size_t n);

/* Bytes uart_receive() would accept now (0 while the guest holds the UART in loopback). */
size_t uart_rx_space(struct uart *u);

/* A consistent snapshot of the counters. */
void uart_get_stats(struct uart *u, struct uart_stats *out);

#endif
