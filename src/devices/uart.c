/* 16550A UART emulation for COM1: registers, receive FIFO, loopback and the IRQ 4 line. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "arch/x86/layout.h"
#include "core/vm.h"
#include "devices/uart.h"

/* Register offsets from the base port (TI/NS 16550A datasheet, "Register Summary" table). */
enum {
	UART_RBR_THR = 0, /* DLL while LCR.DLAB = 1 */
	UART_IER = 1,     /* DLM while LCR.DLAB = 1 */
	UART_IIR_FCR = 2, /* IIR on read, FCR on write; not affected by DLAB */
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
	UART_NPORTS = 8,
};

#define IER_ERBFI 0x01 /* enable received data available interrupt */
#define IER_ETBEI 0x02 /* enable transmitter holding register empty interrupt */
#define IER_ELSI  0x04 /* enable receiver line status interrupt */
#define IER_EDSSI 0x08 /* enable modem status interrupt */
#define IER_MASK  0x0f /* bits 4-7 are always 0 on a 16550A (Linux probes this) */

/* IIR interrupt identification, highest priority first (datasheet "Interrupt Control Functions"). */
#define IIR_NO_INT  0x01
#define IIR_RLSI    0x06
#define IIR_RDI     0x04
#define IIR_THRI    0x02
#define IIR_MSI     0x00
#define IIR_FIFO_ON 0xc0 /* bits 6-7 set when FCR bit 0 enables the FIFOs */

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_TRIGGER  0xc0 /* receiver trigger level: stored, see iir_compute() */

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f /* bits 5-7 are always 0 */

#define LSR_DR     0x01
#define LSR_OE     0x02
#define LSR_PE     0x04
#define LSR_FE     0x08
#define LSR_BI     0x10
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS   0x01
#define MSR_DDSR   0x02
#define MSR_TERI   0x04
#define MSR_DDCD   0x08
#define MSR_CTS    0x10
#define MSR_DSR    0x20
#define MSR_RI     0x40
#define MSR_DCD    0x80

/* Outside loopback the modem inputs are those of a terminal that is always there and ready. */
#define MSR_INPUTS_CONNECTED (MSR_DCD | MSR_DSR | MSR_CTS)

/*
 * Receive FIFO depth. A 16550A has 16 bytes; a deeper FIFO is invisible to
 * drivers (they read RBR while LSR.DR is set) and lets pasted input through
 * with fewer round trips to the console thread.
 */
#define UART_FIFO_SIZE 64

/* write(2) to the console is retried this many times on EINTR, then the byte is dropped. */
#define UART_TX_EINTR_RETRIES 3

struct uart {
	struct vm *vm;
	pthread_mutex_t lock; /* vCPU threads and the console input thread */

	uint8_t ier, lcr, mcr, fcr, scr;
	uint8_t dll, dlm;     /* divisor latch: kept for the guest, no baud rate is modelled */
	uint8_t lsr_err;      /* latched LSR error bits, cleared by reading LSR */
	uint8_t msr_delta;    /* MSR bits 0-3, cleared by reading MSR */
	bool thr_int;         /* THRE interrupt pending (datasheet: reset by IIR read or THR write) */
	bool irq_level;       /* what we last drove on X86_COM1_IRQ */

	uint8_t rx[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;

	struct uart_stats stats;
};

static bool uart_loop(const struct uart *u)
{
	return u->mcr & MCR_LOOP;
}

/*
 * MSR bits 4-7. In loopback the datasheet (MCR bit 4) connects the modem
 * outputs to the inputs: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. Linux's
 * 8250 autoconfig writes MCR = LOOP|OUT2|RTS and expects MSR[7:4] = 0x9.
 */
static uint8_t msr_inputs(const struct uart *u)
{
	uint8_t v = 0;

	if (!uart_loop(u))
		return MSR_INPUTS_CONNECTED;
	if (u->mcr & MCR_RTS)
		v |= MSR_CTS;
	if (u->mcr & MCR_DTR)
		v |= MSR_DSR;
	if (u->mcr & MCR_OUT1)
		v |= MSR_RI;
	if (u->mcr & MCR_OUT2)
		v |= MSR_DCD;
	return v;
}

/* Write MCR and latch the MSR delta bits its loopback wiring causes. */
static void mcr_write(struct uart *u, uint8_t val)
{
	uint8_t before = msr_inputs(u), after, changed;

	u->mcr = val & MCR_MASK;
	after = msr_inputs(u);
	changed = before ^ after;
	if (changed & MSR_CTS)
		u->msr_delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		u->msr_delta |= MSR_DDSR;
	if (changed & MSR_DCD)
		u->msr_delta |= MSR_DDCD;
	if ((before & MSR_RI) && !(after & MSR_RI))
		u->msr_delta |= MSR_TERI; /* trailing edge only */
}

/* Without FIFOs (16450 character mode) the receiver holds a single byte. */
static unsigned rx_capacity(const struct uart *u)
{
	return (u->fcr & FCR_ENABLE) ? UART_FIFO_SIZE : 1;
}

static bool rx_push(struct uart *u, uint8_t b)
{
	if (u->rx_count >= rx_capacity(u)) {
		/* Datasheet LSR bit 1: the new character is lost, the FIFO keeps its contents. */
		u->lsr_err |= LSR_OE;
		return false;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = b;
	u->rx_count++;
	return true;
}

static uint8_t rx_pop(struct uart *u)
{
	uint8_t b;

	if (u->rx_count == 0)
		return 0;
	b = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
	u->rx_count--;
	return b;
}

static void rx_clear(struct uart *u)
{
	u->rx_head = u->rx_count = 0;
}

/*
 * The highest-priority pending interrupt. Without timing there is no
 * character-timeout indication (IIR 0x0C): received data is reported as
 * "received data available" as soon as one byte is in the FIFO, whatever the
 * FCR trigger level, which is what a timeout would eventually report anyway.
 */
static uint8_t iir_compute(const struct uart *u)
{
	if ((u->ier & IER_ELSI) && (u->lsr_err & LSR_ERRORS))
		return IIR_RLSI;
	if ((u->ier & IER_ERBFI) && u->rx_count)
		return IIR_RDI;
	if ((u->ier & IER_ETBEI) && u->thr_int)
		return IIR_THRI;
	if ((u->ier & IER_EDSSI) && (u->msr_delta & 0x0f))
		return IIR_MSI;
	return IIR_NO_INT;
}

/*
 * Drive IRQ 4 after every access, only on change. On the PC the UART's INTR
 * pin reaches the bus through a buffer enabled by the OUT2 output, and in
 * loopback the datasheet forces the OUT pins inactive, so both close the gate.
 * ISA IRQ 4 is edge-triggered on the IOAPIC (ACPI MADT default for ISA), so
 * KVM_IRQ_LINE 0->1 here is the edge the guest sees; a new interrupt needs
 * the line to drop first, which happens when the guest clears the cause.
 */
static void update_irq(struct uart *u)
{
	bool pending = iir_compute(u) != IIR_NO_INT;
	bool gate = (u->mcr & MCR_OUT2) && !uart_loop(u);
	bool level = pending && gate;

	if (level != u->irq_level) {
		u->irq_level = level;
		vm_set_irq(u->vm, X86_COM1_IRQ, level);
	}
}

/* Send one byte to the console. Called with the lock held so vCPUs' output does not interleave mid-byte. */
static void console_put(struct uart *u, uint8_t b)
{
	int fd = u->vm->console_out_fd;

	u->stats.tx_bytes++;
	if (fd < 0)
		return; /* console "none": discard */
	for (int i = 0; i <= UART_TX_EINTR_RETRIES; i++) {
		ssize_t r = write(fd, &b, 1);
		if (r == 1)
			return;
		if (r < 0 && errno == EINTR)
			continue;
		break; /* EAGAIN on a non-blocking fd, EIO, EPIPE...: never stall the vCPU */
	}
	u->stats.tx_dropped++;
}

/*
 * Transmit is instantaneous: the byte leaves THR at once, so THR is empty
 * again and the THRE interrupt the write reset is immediately re-armed (what
 * a real 16550A does once the byte moves to the shift register). Linux's
 * interrupt-driven transmit depends on that next THRE interrupt.
 */
static void thr_write(struct uart *u, uint8_t b)
{
	if (uart_loop(u))
		(void)rx_push(u, b); /* datasheet MCR bit 4: TSR output looped into RSR */
	else
		console_put(u, b);
	u->thr_int = true;
}

static uint8_t reg_read(struct uart *u, unsigned off)
{
	uint8_t v;

	switch (off) {
	case UART_RBR_THR:
		return (u->lcr & LCR_DLAB) ? u->dll : rx_pop(u);
	case UART_IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case UART_IIR_FCR:
		v = iir_compute(u);
		if (v == IIR_THRI)
			u->thr_int = false; /* reading IIR that reports THRE resets it */
		if (u->fcr & FCR_ENABLE)
			v |= IIR_FIFO_ON;
		return v;
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		v = u->lsr_err | LSR_THRE | LSR_TEMT;
		if (u->rx_count)
			v |= LSR_DR;
		u->lsr_err = 0; /* OE/PE/FE/BI reset on LSR read */
		return v;
	case UART_MSR:
		v = msr_inputs(u) | u->msr_delta;
		u->msr_delta = 0; /* delta bits reset on MSR read */
		return v;
	default:
		return u->scr;
	}
}

static void reg_write(struct uart *u, unsigned off, uint8_t val)
{
	switch (off) {
	case UART_RBR_THR:
		if (u->lcr & LCR_DLAB)
			u->dll = val;
		else
			thr_write(u, val);
		break;
	case UART_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = val;
			break;
		}
		/* Enabling ETBEI while THR is empty raises THRE at once (Linux's UART_BUG_THRE probe checks it). */
		if (!(u->ier & IER_ETBEI) && (val & IER_ETBEI))
			u->thr_int = true;
		u->ier = val & IER_MASK;
		break;
	case UART_IIR_FCR:
		/* Datasheet FCR bit 0: changing it clears both FIFOs; bits 1-2 self-clear. */
		if ((val ^ u->fcr) & FCR_ENABLE)
			rx_clear(u);
		if (val & FCR_CLEAR_RX)
			rx_clear(u);
		u->fcr = val & (FCR_ENABLE | FCR_TRIGGER);
		break;
	case UART_LCR:
		u->lcr = val;
		break;
	case UART_MCR:
		mcr_write(u, val);
		break;
	case UART_LSR:
	case UART_MSR:
		break; /* factory-test writes: ignored */
	default:
		u->scr = val;
		break;
	}
}

/* Bus callback. Wider accesses are split into byte cycles at consecutive ports, as on the ISA bus. */
static void uart_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	for (uint32_t i = 0; i < len && offset + i < UART_NPORTS; i++) {
		if (is_write)
			reg_write(u, (unsigned)(offset + i), data[i]);
		else
			data[i] = reg_read(u, (unsigned)(offset + i));
		update_irq(u);
	}
	pthread_mutex_unlock(&u->lock);
}

size_t uart_receive(struct uart *u, const uint8_t *buf, size_t n)
{
	size_t accepted = 0;

	pthread_mutex_lock(&u->lock);
	/* In loopback the serial input pin is disconnected: nothing arrives. */
	if (!uart_loop(u)) {
		while (accepted < n && u->rx_count < rx_capacity(u))
			(void)rx_push(u, buf[accepted++]);
		if (accepted < n)
			u->lsr_err |= LSR_OE; /* the guest was too slow: an overrun, as on the wire */
	}
	u->stats.rx_bytes += accepted;
	u->stats.rx_dropped += n - accepted;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return accepted;
}

size_t uart_rx_space(struct uart *u)
{
	size_t space;

	pthread_mutex_lock(&u->lock);
	space = uart_loop(u) ? 0 : rx_capacity(u) - u->rx_count;
	pthread_mutex_unlock(&u->lock);
	return space;
}

void uart_get_stats(struct uart *u, struct uart_stats *out)
{
	pthread_mutex_lock(&u->lock);
	*out = u->stats;
	pthread_mutex_unlock(&u->lock);
}

static void uart_print_stats(void *state, int fd)
{
	struct uart_stats s;

	uart_get_stats(state, &s);
	dprintf(fd, "uart: tx=%llu tx_dropped=%llu rx=%llu rx_dropped=%llu\n",
		(unsigned long long)s.tx_bytes, (unsigned long long)s.tx_dropped,
		(unsigned long long)s.rx_bytes, (unsigned long long)s.rx_dropped);
}

static void uart_destroy(void *state)
{
	struct uart *u = state;

	pthread_mutex_destroy(&u->lock);
	free(u);
}

int uart_init(struct vm *vm)
{
	struct vm_device dev = {
		.name = "uart",
		.destroy = uart_destroy,
		.print_stats = uart_print_stats,
	};
	struct uart *u;
	int ret;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	ret = -pthread_mutex_init(&u->lock, NULL);
	if (ret < 0)
		goto err_free;
	/*
	 * Power-on state per the datasheet reset table: IER, FCR, LCR, MCR = 0,
	 * LSR = THRE|TEMT, no interrupt pending. The divisor latch is not reset
	 * by hardware; 12 (9600 baud) is what a firmware would leave there.
	 */
	u->vm = vm;
	u->dll = 12;

	dev.state = u;
	ret = vm_add_device(vm, &dev);
	if (ret < 0)
		goto err_mutex;
	/* From here the VM owns u and frees it at teardown, also if registration fails. */
	ret = bus_register(&vm->pio, X86_COM1_PORT, UART_NPORTS, "uart", uart_io, u);
	if (ret < 0)
		return ret;
	vm->uart = u;
	return 0;

err_mutex:
	pthread_mutex_destroy(&u->lock);
err_free:
	free(u);
	return ret;
}

DEVICE_REGISTER(uart, uart_init);
