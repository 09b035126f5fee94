/* Unit tests for the 16550A UART: registers, FIFO bounds, loopback, IIR priority and IRQ 4 edges. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "arch/x86/layout.h"
#include "devices/uart.h"
#include "stub_vm.h"

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct fixture {
	struct vm vm;
	int pipe[2];
};

static uint8_t inb(struct vm *vm, unsigned reg)
{
	uint8_t v = 0xaa;
	assert_true(bus_access(&vm->pio, X86_COM1_PORT + reg, &v, 1, false));
	return v;
}

static void outb(struct vm *vm, unsigned reg, uint8_t v)
{
	assert_true(bus_access(&vm->pio, X86_COM1_PORT + reg, &v, 1, true));
}

/* Bytes waiting in the (non-blocking) console pipe. */
static ssize_t drain(struct fixture *f, char *buf, size_t n)
{
	ssize_t r = read(f->pipe[0], buf, n);
	return r < 0 && errno == EAGAIN ? 0 : r;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	stub_vm_init(&f->vm, 0);
	assert_int_equal(pipe2(f->pipe, O_NONBLOCK), 0);
	f->vm.console_out_fd = f->pipe[1];
	assert_int_equal(uart_init(&f->vm), 0);
	assert_non_null(f->vm.uart);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stub_vm_fini(&f->vm);
	close(f->pipe[0]);
	close(f->pipe[1]);
	free(f);
	return 0;
}

static void test_reset_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(inb(&f->vm, LSR), 0x60); /* THRE | TEMT */
	assert_int_equal(inb(&f->vm, IIR), 0x01); /* no interrupt, FIFOs off */
	assert_int_equal(inb(&f->vm, IER), 0x00);
	assert_int_equal(inb(&f->vm, LCR), 0x00);
	assert_int_equal(inb(&f->vm, MCR), 0x00);
	assert_int_equal(inb(&f->vm, MSR), 0xb0); /* DCD | DSR | CTS, no deltas */
	assert_int_equal(uart_rx_space(f->vm.uart), 1); /* character mode */
	assert_int_equal(stub_vm_log(&f->vm)->nirq, 0);
}

static void test_ier_and_scratch_bits(void **state)
{
	struct fixture *f = *state;

	outb(&f->vm, IER, 0xff);
	assert_int_equal(inb(&f->vm, IER), 0x0f);
	outb(&f->vm, MCR, 0xff);
	assert_int_equal(inb(&f->vm, MCR), 0x1f);
	outb(&f->vm, SCR, 0xa5);
	assert_int_equal(inb(&f->vm, SCR), 0xa5);
}

static void test_thr_to_console(void **state)
{
	struct fixture *f = *state;
	struct uart_stats s;
	char buf[16];

	outb(&f->vm, THR, 'h');
	outb(&f->vm, THR, 'i');
	outb(&f->vm, THR, '\n');
	assert_int_equal(drain(f, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "hi\n", 3);
	assert_int_equal(inb(&f->vm, LSR) & 0x60, 0x60);
	uart_get_stats(f->vm.uart, &s);
	assert_int_equal(s.tx_bytes, 3);
	assert_int_equal(s.tx_dropped, 0);
}

static void test_console_none_and_full(void **state)
{
	struct fixture *f = *state;
	struct uart_stats s;
	char junk[4096];

	memset(junk, 'j', sizeof(junk));
	f->vm.console_out_fd = -1;
	outb(&f->vm, THR, 'x');
	uart_get_stats(f->vm.uart, &s);
	assert_int_equal(s.tx_bytes, 1);
	assert_int_equal(s.tx_dropped, 0);

	/* A full non-blocking pipe: write() says EAGAIN, the byte is dropped and counted. */
	f->vm.console_out_fd = f->pipe[1];
	for (int i = 0; i < 1024 && write(f->pipe[1], junk, sizeof(junk)) > 0; i++)
		;
	outb(&f->vm, THR, 'y');
	uart_get_stats(f->vm.uart, &s);
	assert_int_equal(s.tx_bytes, 2);
	assert_int_equal(s.tx_dropped, 1);
}

static void test_loopback(void **state)
{
	struct fixture *f = *state;
	char buf[4];

	/* Linux 8250 autoconfig: MCR = LOOP|OUT2|RTS must read MSR[7:4] = 0x9. */
	outb(&f->vm, MCR, 0x1a);
	assert_int_equal(inb(&f->vm, MSR) & 0xf0, 0x90);
	outb(&f->vm, MCR, 0x15); /* LOOP | OUT1 | DTR -> RI | DSR */
	assert_int_equal(inb(&f->vm, MSR) & 0xf0, 0x60);

	outb(&f->vm, THR, 0x5a);
	assert_int_equal(inb(&f->vm, LSR) & 0x01, 0x01);
	assert_int_equal(inb(&f->vm, RBR), 0x5a);
	assert_int_equal(inb(&f->vm, LSR) & 0x01, 0x00);
	assert_int_equal(drain(f, buf, sizeof(buf)), 0); /* nothing reached the console */

	/* The serial input is disconnected in loopback. */
	assert_int_equal(uart_rx_space(f->vm.uart), 0);
	assert_int_equal(uart_receive(f->vm.uart, (const uint8_t *)"ab", 2), 0);
	assert_int_equal(inb(&f->vm, LSR) & 0x01, 0x00);

	outb(&f->vm, MCR, 0x00);
	assert_int_equal(inb(&f->vm, MSR) & 0xf0, 0xb0);
	outb(&f->vm, THR, 'z');
	assert_int_equal(drain(f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'z');
}

static void test_msr_deltas(void **state)
{
	struct fixture *f = *state;

	/* Entering loopback with all outputs low drops CTS, DSR and DCD. */
	outb(&f->vm, MCR, 0x10);
	assert_int_equal(inb(&f->vm, MSR), 0x0b); /* DDCD | DDSR | DCTS */
	assert_int_equal(inb(&f->vm, MSR), 0x00); /* read clears the deltas */
	outb(&f->vm, MCR, 0x14);                 /* OUT1 -> RI rises: no TERI */
	assert_int_equal(inb(&f->vm, MSR), 0x40);
	outb(&f->vm, MCR, 0x10);                 /* RI falls: TERI */
	assert_int_equal(inb(&f->vm, MSR), 0x04);
}

static void test_rx_fifo_bounded(void **state)
{
	struct fixture *f = *state;
	uint8_t in[100];
	struct uart_stats s;

	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i + 1);
	outb(&f->vm, FCR, 0x07); /* enable and clear FIFOs */
	assert_int_equal(inb(&f->vm, IIR), 0xc1);
	assert_int_equal(uart_rx_space(f->vm.uart), 64);

	assert_int_equal(uart_receive(f->vm.uart, in, sizeof(in)), 64);
	assert_int_equal(uart_rx_space(f->vm.uart), 0);
	uart_get_stats(f->vm.uart, &s);
	assert_int_equal(s.rx_bytes, 64);
	assert_int_equal(s.rx_dropped, 36);
	assert_int_equal(inb(&f->vm, LSR), 0x63); /* DR | OE | THRE | TEMT */
	assert_int_equal(inb(&f->vm, LSR), 0x61); /* OE cleared by the read */
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(inb(&f->vm, RBR), in[i]);
	assert_int_equal(inb(&f->vm, LSR) & 0x01, 0);
	assert_int_equal(uart_rx_space(f->vm.uart), 64);

	/* FCR bit 1 clears the receive FIFO. */
	assert_int_equal(uart_receive(f->vm.uart, in, 3), 3);
	outb(&f->vm, FCR, 0x03);
	assert_int_equal(inb(&f->vm, LSR) & 0x01, 0);

	/* Character mode holds one byte. */
	outb(&f->vm, FCR, 0x00);
	assert_int_equal(uart_receive(f->vm.uart, in, 2), 1);
	assert_int_equal(inb(&f->vm, RBR), in[0]);
}

static void test_iir_priority(void **state)
{
	struct fixture *f = *state;

	outb(&f->vm, FCR, 0x01);
	outb(&f->vm, IER, 0x07); /* ERBFI | ETBEI | ELSI */
	assert_int_equal(uart_receive(f->vm.uart, (const uint8_t *)"q", 1), 1);
	assert_int_equal(inb(&f->vm, IIR), 0xc4); /* RX data over THRE */
	assert_int_equal(inb(&f->vm, IIR), 0xc4); /* not reset by IIR */
	assert_int_equal(inb(&f->vm, RBR), 'q');
	assert_int_equal(inb(&f->vm, IIR), 0xc2); /* now THRE, reset by this read */
	assert_int_equal(inb(&f->vm, IIR), 0xc1);

	/* THR write re-arms THRE at once: transmit is instantaneous. */
	outb(&f->vm, THR, '.');
	assert_int_equal(inb(&f->vm, IIR), 0xc2);

	/* Overrun (line status) outranks received data. */
	outb(&f->vm, FCR, 0x00);
	assert_int_equal(uart_receive(f->vm.uart, (const uint8_t *)"ab", 2), 1);
	assert_int_equal(inb(&f->vm, IIR), 0x06);
	assert_int_equal(inb(&f->vm, LSR) & 0x03, 0x03);
	assert_int_equal(inb(&f->vm, IIR), 0x04);
	assert_int_equal(inb(&f->vm, RBR), 'a');
	assert_int_equal(inb(&f->vm, IIR), 0x01);

	/* Re-enabling ETBEI with THR empty raises THRE again (Linux UART_BUG_THRE probe). */
	outb(&f->vm, IER, 0x00);
	assert_int_equal(inb(&f->vm, IIR), 0x01);
	outb(&f->vm, IER, 0x02);
	assert_int_equal(inb(&f->vm, IIR), 0x02);
}

static void test_irq_gating_and_edges(void **state)
{
	struct fixture *f = *state;
	struct stub_vm_log *l = stub_vm_log(&f->vm);

	/* Pending THRE but OUT2 low: the PC's IRQ buffer is closed. */
	outb(&f->vm, IER, 0x03);
	assert_int_equal(l->nirq, 0);

	outb(&f->vm, MCR, 0x08); /* OUT2 */
	assert_int_equal(l->nirq, 1);
	assert_int_equal(l->irq[0].gsi, X86_COM1_IRQ);
	assert_int_equal(l->irq[0].level, 1);

	assert_int_equal(inb(&f->vm, IIR), 0x02); /* acknowledges THRE */
	assert_int_equal(l->nirq, 2);
	assert_int_equal(l->irq[1].level, 0);

	/* Received data: a fresh 0->1 edge. */
	assert_int_equal(uart_receive(f->vm.uart, (const uint8_t *)"k", 1), 1);
	assert_int_equal(l->nirq, 3);
	assert_int_equal(l->irq[2].level, 1);
	/* Unchanged level: no duplicate call. */
	assert_int_equal(inb(&f->vm, LSR) & 0x01, 1);
	assert_int_equal(l->nirq, 3);
	assert_int_equal(inb(&f->vm, RBR), 'k');
	assert_int_equal(l->nirq, 4);
	assert_int_equal(l->irq[3].level, 0);

	/* IER off: no line activity on input. */
	outb(&f->vm, IER, 0x00);
	assert_int_equal(uart_receive(f->vm.uart, (const uint8_t *)"m", 1), 1);
	assert_int_equal(l->nirq, 4);
	(void)inb(&f->vm, RBR);

	/* Loopback closes the gate even with OUT2 set. */
	outb(&f->vm, MCR, 0x18);
	outb(&f->vm, IER, 0x01);
	outb(&f->vm, THR, 'l');
	assert_int_equal(inb(&f->vm, IIR), 0x04); /* pending inside the UART... */
	assert_int_equal(l->nirq, 4);             /* ...but not on the bus */
	outb(&f->vm, MCR, 0x08);                  /* leaving loopback opens the gate */
	assert_int_equal(l->nirq, 5);
	assert_int_equal(l->irq[4].level, 1);
}

static void test_dlab(void **state)
{
	struct fixture *f = *state;
	char buf[4];

	outb(&f->vm, IER, 0x05);
	outb(&f->vm, LCR, 0x83); /* DLAB, 8N1 */
	outb(&f->vm, DLL, 0x01);
	outb(&f->vm, DLM, 0x02);
	assert_int_equal(inb(&f->vm, DLL), 0x01);
	assert_int_equal(inb(&f->vm, DLM), 0x02);
	assert_int_equal(drain(f, buf, sizeof(buf)), 0); /* no byte transmitted */
	outb(&f->vm, LCR, 0x03);
	assert_int_equal(inb(&f->vm, IER), 0x05); /* IER untouched by the DLM write */
	outb(&f->vm, THR, 'A');
	assert_int_equal(drain(f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'A');
	outb(&f->vm, LCR, 0x80);
	assert_int_equal(inb(&f->vm, DLL), 0x01); /* THR write did not touch the latch */
	assert_int_equal(inb(&f->vm, LCR), 0x80);
}

static void test_wide_access_and_double_init(void **state)
{
	struct fixture *f = *state;
	struct uart *first = f->vm.uart;
	uint8_t d[2] = { 0, 0 };

	/* A 16-bit read at LSR is two byte cycles: LSR then MSR. */
	assert_true(bus_access(&f->vm.pio, X86_COM1_PORT + LSR, d, 2, false));
	assert_int_equal(d[0], 0x60);
	assert_int_equal(d[1], 0xb0);

	/* A second COM1 overlaps the first: refused, the first stays. */
	assert_int_equal(uart_init(&f->vm), -EEXIST);
	assert_ptr_equal(f->vm.uart, first);
}

static void test_print_stats(void **state)
{
	struct fixture *f = *state;
	char buf[128] = { 0 };

	outb(&f->vm, THR, 'x');
	assert_int_equal(drain(f, buf, sizeof(buf)), 1);
	for (unsigned i = 0; i < f->vm.ndevices; i++)
		if (f->vm.devices[i].print_stats)
			f->vm.devices[i].print_stats(f->vm.devices[i].state, f->pipe[1]);
	assert_true(drain(f, buf, sizeof(buf) - 1) > 0);
	assert_non_null(strstr(buf, "uart: tx=1 tx_dropped=0 rx=0 rx_dropped=0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ier_and_scratch_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thr_to_console, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_none_and_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr_deltas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_fifo_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iir_priority, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irq_gating_and_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dlab, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wide_access_and_double_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_stats, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
