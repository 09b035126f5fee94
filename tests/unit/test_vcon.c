/* Unit tests for virtio-console over virtio-mmio: transmit to the console fd, bounded receive, hostile rings, fake guest RAM. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "arch/x86/layout.h"
#include "virtio/console.h"
#include "virtio/virtio.h"
#include "stub_vm.h"
#include "virtio_mmio_driver.h"

#define BASE X86_VIRTIO_MMIO_BASE
#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ull << VIRTIO_RING_F_EVENT_IDX)
#define RXQ 0
#define TXQ 1
#define QSIZE 8
#define RX_RING 0x10000ull
#define TX_RING 0x20000ull
#define RX_BUF 0x100000ull     /* receive buffer i at RX_BUF + i * 0x1000 */
#define TX_BUF 0x200000ull

struct fixture {
	struct vm vm;
	int pipe[2];            /* the console: kiln writes [1], the test reads [0] */
	struct fake_ring rx, tx;
	unsigned rx_next;       /* next free descriptor on the receive ring */
};

static struct virtio_dev *vcon(struct fixture *f)
{
	return f->vm.vcon;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	stub_vm_init(&f->vm, MEM_FIXTURE_SIZE);
	f->vm.cfg.console_dev = CONSOLE_DEV_VIRTIO;
	f->vm.cfg.virtio_transport = VIRTIO_TRANSPORT_MMIO;
	assert_int_equal(ioloop_init(&f->vm.io), 0);
	assert_int_equal(pipe2(f->pipe, O_NONBLOCK), 0);
	f->vm.console_out_fd = f->pipe[1];
	assert_int_equal(vcon_create(&f->vm), 0);
	assert_non_null(f->vm.vcon);
	assert_int_equal(f->vm.nvirtio_mmio, 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stub_vm_fini(&f->vm);
	ioloop_destroy(&f->vm.io);
	close(f->pipe[0]);
	close(f->pipe[1]);
	free(f);
	return 0;
}

/* Bytes waiting on the console pipe. */
static size_t drain(struct fixture *f, char *buf, size_t n)
{
	ssize_t r = read(f->pipe[0], buf, n);

	return r < 0 ? 0 : (size_t)r;
}

/* §3.1.1 and §5.3.5 through the registers: both queues, then DRIVER_OK (unless `live` is false). */
static void driver_init(struct fixture *f, uint64_t features, bool live)
{
	struct vm *vm = &f->vm;

	assert_int_equal(mmio_rd(vm, BASE, MMIO_DEVICE_ID), VIRTIO_ID_CONSOLE);
	assert_int_equal(mmio_negotiate(vm, BASE, features), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	ring_init(&f->rx, vm, RX_RING, QSIZE);
	ring_init(&f->tx, vm, TX_RING, QSIZE);
	f->rx_next = 0;
	mmio_queue_setup(vm, BASE, RXQ, &f->rx);
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 1);
	mmio_queue_setup(vm, BASE, TXQ, &f->tx);
	mmio_wr(vm, BASE, MMIO_QUEUE_READY, 1);
	if (live) {
		mmio_wr(vm, BASE, MMIO_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
		assert_int_equal(mmio_rd(vm, BASE, MMIO_STATUS), ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
		pump_kicks(vcon(f));
	}
}

/* The guest writes `s` to hvc0: one readable buffer per piece (split at '|'), one chain from descriptor 0, then QueueNotify. */
static void guest_tx(struct fixture *f, const char *s)
{
	gpa_t at = TX_BUF;
	unsigned n = 0;

	for (;;) {
		const char *bar = strchr(s, '|');
		size_t len = bar ? (size_t)(bar - s) : strlen(s);

		memcpy(vm_gpa(&f->vm, at, len), s, len);
		ring_desc(&f->tx, n, at, (uint32_t)len, bar ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(n + 1));
		at += len;
		n++;
		if (!bar)
			break;
		s = bar + 1;
	}
	ring_offer(&f->tx, 0);
	mmio_wr(&f->vm, BASE, MMIO_QUEUE_NOTIFY, TXQ);
	pump_kicks(vcon(f));
}

/* The guest posts one receive buffer of len bytes (§5.3.6.1) and notifies. */
static gpa_t guest_post_rx(struct fixture *f, uint32_t len)
{
	unsigned i = f->rx_next++ % QSIZE;
	gpa_t buf = RX_BUF + 0x1000ull * i;

	memset(vm_gpa(&f->vm, buf, 0x1000), 0, 0x1000);
	ring_desc(&f->rx, i, buf, len, VIRTQ_DESC_F_WRITE, 0);
	ring_offer(&f->rx, (uint16_t)i);
	mmio_wr(&f->vm, BASE, MMIO_QUEUE_NOTIFY, RXQ);
	pump_kicks(vcon(f));
	return buf;
}

static struct vcon_stats vstats(struct fixture *f)
{
	struct vcon_stats s;

	vcon_get_stats(vcon(f), &s);
	return s;
}

static void test_tx_to_console(void **state)
{
	struct fixture *f = *state;
	char out[256] = { 0 };

	driver_init(f, F_V1, true);
	guest_tx(f, "hello, hvc0\n");
	assert_int_equal(drain(f, out, sizeof(out) - 1), 12);
	assert_string_equal(out, "hello, hvc0\n");
	/* Returned with 0 bytes written (nothing is written into transmit buffers), interrupt raised. */
	assert_int_equal(ring_used_idx(&f->tx), 1);
	assert_int_equal(ring_used_id(&f->tx, 0), 0);
	assert_int_equal(ring_used_len(&f->tx, 0), 0);
	assert_int_equal(mmio_rd(&f->vm, BASE, MMIO_INT_STATUS), VIRTIO_ISR_QUEUE);
	assert_int_equal(stub_vm_irq_pulses(&f->vm, 5), 1);
	assert_int_equal(vstats(f).tx_bytes, 12);

	/* A chain of several buffers comes out in order. */
	memset(out, 0, sizeof(out));
	guest_tx(f, "one |two |three");
	assert_int_equal(drain(f, out, sizeof(out) - 1), 13);
	assert_string_equal(out, "one two three");
	assert_int_equal(ring_used_idx(&f->tx), 2);
	assert_int_equal(vstats(f).tx_bytes, 25);
	assert_int_equal(vstats(f).tx_dropped, 0);
}

static void test_tx_never_blocks(void **state)
{
	struct fixture *f = *state;
	char junk[4096];
	struct vcon_stats s;

	/* A console reader that stopped reading: the pipe is full, writes fail with EAGAIN. */
	memset(junk, 'x', sizeof(junk));
	while (write(f->pipe[1], junk, sizeof(junk)) > 0)
		;
	driver_init(f, F_V1, true);
	guest_tx(f, "lost bytes");
	s = vstats(f);
	assert_int_equal(s.tx_dropped, 10);
	assert_int_equal(s.tx_bytes, 0);
	/* The guest still gets its buffer back. */
	assert_int_equal(ring_used_idx(&f->tx), 1);

	/* --console none: output is discarded, the guest is unaffected. */
	f->vm.console_out_fd = -1;
	guest_tx(f, "gone");
	assert_int_equal(ring_used_idx(&f->tx), 2);
	assert_int_equal(vstats(f).tx_dropped, 10);
}

static void test_rx_waits_for_buffers(void **state)
{
	struct fixture *f = *state;
	struct virtio_dev *d;
	gpa_t buf;

	driver_init(f, F_V1, true);
	d = vcon(f);
	assert_int_equal(vcon_rx_space(d), VCON_RX_STAGE);
	/* Typed before the guest posted any buffer: taken, kept. */
	assert_int_equal(vcon_receive(d, (const uint8_t *)"ls\n", 3), 3);
	assert_int_equal(vcon_rx_space(d), VCON_RX_STAGE - 3);
	pump_kicks(d);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	assert_int_equal(vstats(f).rx_delivered, 0);
	/*
	 * The buffer arrives, but the driver has not written to the console yet:
	 * Linux would still discard input on a port it has not connected.
	 */
	buf = guest_post_rx(f, 64);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	/* Its first output: now the bytes go in, used len 3, interrupt. */
	guest_tx(f, "login: ");
	assert_int_equal(ring_used_idx(&f->rx), 1);
	assert_int_equal(ring_used_len(&f->rx, 0), 3);
	assert_memory_equal(vm_gpa(&f->vm, buf, 3), "ls\n", 3);
	assert_int_equal(vstats(f).rx_delivered, 3);
	assert_int_equal(vcon_rx_space(d), VCON_RX_STAGE);
	assert_true(mmio_rd(&f->vm, BASE, MMIO_INT_STATUS) & VIRTIO_ISR_QUEUE);

	/* A posted buffer is kept until input comes, then used at once. */
	buf = guest_post_rx(f, 64);
	assert_int_equal(ring_used_idx(&f->rx), 1);
	assert_int_equal(vcon_receive(d, (const uint8_t *)"pwd\n", 4), 4);
	pump_kicks(d);
	assert_int_equal(ring_used_idx(&f->rx), 2);
	assert_memory_equal(vm_gpa(&f->vm, buf, 4), "pwd\n", 4);
}

static void test_rx_split_and_bounded(void **state)
{
	struct fixture *f = *state;
	struct virtio_dev *d;
	uint8_t big[VCON_RX_STAGE + 1000];
	gpa_t b0, b1;

	driver_init(f, F_V1, true);
	guest_tx(f, "$ ");
	d = vcon(f);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	/* More than the stage holds: the rest is refused (the caller keeps it), never overrun. */
	assert_int_equal(vcon_receive(d, big, sizeof(big)), VCON_RX_STAGE);
	assert_int_equal(vcon_rx_space(d), 0);
	assert_int_equal(vcon_receive(d, big, 1), 0);
	assert_int_equal(vstats(f).rx_bytes, VCON_RX_STAGE);
	/* Small buffers take it piece by piece, in order. */
	b0 = guest_post_rx(f, 100);
	b1 = guest_post_rx(f, 100);
	assert_int_equal(ring_used_idx(&f->rx), 2);
	assert_int_equal(ring_used_len(&f->rx, 0), 100);
	assert_int_equal(ring_used_len(&f->rx, 1), 100);
	assert_memory_equal(vm_gpa(&f->vm, b0, 100), big, 100);
	assert_memory_equal(vm_gpa(&f->vm, b1, 100), big + 100, 100);
	assert_int_equal(vcon_rx_space(d), 200);
}

static void test_rx_before_driver_ok(void **state)
{
	struct fixture *f = *state;
	struct virtio_dev *d = vcon(f);
	gpa_t buf;

	/* Input typed while the guest is still booting waits; the buffers posted before DRIVER_OK get it then. */
	assert_int_equal(vcon_receive(d, (const uint8_t *)"early", 5), 5);
	driver_init(f, F_V1, false);
	buf = RX_BUF;
	ring_desc(&f->rx, 0, buf, 64, VIRTQ_DESC_F_WRITE, 0);
	ring_offer(&f->rx, 0);
	pump_kicks(d);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	mmio_wr(&f->vm, BASE, MMIO_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	pump_kicks(d);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	guest_tx(f, "boot");
	assert_int_equal(ring_used_idx(&f->rx), 1);
	assert_memory_equal(vm_gpa(&f->vm, buf, 5), "early", 5);
	/* A driver reset does not lose what the user typed; the new driver connects again by writing. */
	assert_int_equal(vcon_receive(d, (const uint8_t *)"kept", 4), 4);
	mmio_wr(&f->vm, BASE, MMIO_STATUS, 0);
	driver_init(f, F_V1, true);
	buf = guest_post_rx(f, 64);
	assert_int_equal(ring_used_idx(&f->rx), 0);
	guest_tx(f, "again");
	assert_int_equal(ring_used_idx(&f->rx), 1);
	assert_memory_equal(vm_gpa(&f->vm, buf, 4), "kept", 4);
}

static void test_event_idx(void **state)
{
	struct fixture *f = *state;
	struct virtio_dev *d;

	driver_init(f, F_V1 | F_EVENT_IDX, true);
	d = vcon(f);
	assert_true(d->vq[RXQ].event_idx);
	guest_tx(f, "x");
	/* Out of receive buffers with input left: ask for a kick at the next buffer (avail_event = consumed). */
	(void)guest_post_rx(f, 4);
	assert_int_equal(vcon_receive(d, (const uint8_t *)"abcdefgh", 8), 8);
	pump_kicks(d);
	assert_int_equal(ring_used_idx(&f->rx), 1);
	assert_int_equal(ring_avail_event(&f->rx), 1);
	assert_int_equal(vcon_rx_space(d), VCON_RX_STAGE - 4);
	/* Transmit re-arms too: after draining, avail_event follows the driver. */
	guest_tx(f, "y");
	assert_int_equal(ring_used_idx(&f->tx), 2);
	assert_int_equal(ring_avail_event(&f->tx), 2);
}

static void test_hostile_rings(void **state)
{
	struct fixture *f = *state;
	struct virtio_dev *d;
	char out[16];

	driver_init(f, F_V1, true);
	d = vcon(f);
	guest_tx(f, "boot");
	assert_int_equal(drain(f, out, sizeof(out)), 4);
	/* A receive chain with nothing writable: returned empty, input kept for a proper buffer. */
	assert_int_equal(vcon_receive(d, (const uint8_t *)"q", 1), 1);
	ring_desc(&f->rx, 0, RX_BUF, 16, 0, 0);
	ring_offer(&f->rx, 0);
	mmio_wr(&f->vm, BASE, MMIO_QUEUE_NOTIFY, RXQ);
	pump_kicks(d);
	assert_int_equal(ring_used_idx(&f->rx), 1);
	assert_int_equal(ring_used_len(&f->rx, 0), 0);
	assert_int_equal(vcon_rx_space(d), VCON_RX_STAGE - 1);

	/* A transmit buffer outside guest RAM: DEVICE_NEEDS_RESET and a config interrupt, nothing written. */
	ring_desc(&f->tx, 0, 0x7fff00000000ull, 16, 0, 0);
	ring_offer(&f->tx, 0);
	mmio_wr(&f->vm, BASE, MMIO_QUEUE_NOTIFY, TXQ);
	pump_kicks(d);
	assert_true(mmio_rd(&f->vm, BASE, MMIO_STATUS) & ST_NEEDS_RESET);
	assert_true(mmio_rd(&f->vm, BASE, MMIO_INT_STATUS) & VIRTIO_ISR_CONFIG);
	assert_int_equal(drain(f, out, sizeof(out)), 0);
	assert_int_equal(ring_used_idx(&f->tx), 1); /* only "boot" came back */
	/* The device stays quiet until reset; kiln keeps running. */
	guest_tx(f, "after");
	assert_int_equal(drain(f, out, sizeof(out)), 0);
	/* A reset and a fresh start work again. */
	driver_init(f, F_V1, true);
	guest_tx(f, "again");
	assert_int_equal(drain(f, out, sizeof(out)), 5);

	/* A receive ring whose avail idx jumps by more than its size. */
	put16(ring_ptr(&f->rx, f->rx.avail + 2, 2), 0, htole16(1000));
	mmio_wr(&f->vm, BASE, MMIO_QUEUE_NOTIFY, RXQ);
	pump_kicks(d);
	assert_true(mmio_rd(&f->vm, BASE, MMIO_STATUS) & ST_NEEDS_RESET);
}

static void test_config_and_stats(void **state)
{
	struct fixture *f = *state;
	int p[2];
	char buf[1024] = { 0 };

	/* §5.3.4 without SIZE/MULTIPORT/EMERG_WRITE: 12 bytes, all zero; beyond reads 0 too. */
	for (uint32_t off = 0; off < 16; off += 4)
		assert_int_equal(mmio_rd(&f->vm, BASE, MMIO_CONFIG + off), 0);
	mmio_wr(&f->vm, BASE, MMIO_DEV_FEATURES_SEL, 0);
	assert_int_equal(mmio_rd(&f->vm, BASE, MMIO_DEV_FEATURES) & 0x7, 0); /* no SIZE, MULTIPORT, EMERG_WRITE */

	driver_init(f, F_V1, true);
	guest_tx(f, "abc");
	assert_int_equal(vcon_receive(vcon(f), (const uint8_t *)"xy", 2), 2);
	assert_int_equal(pipe(p), 0);
	f->vm.devices[0].print_stats(f->vm.devices[0].state, p[1]);
	close(p[1]);
	assert_true(read(p[0], buf, sizeof(buf) - 1) > 0);
	close(p[0]);
	assert_non_null(strstr(buf, "virtio-console: tx=3 tx_dropped=0 rx=2 rx_delivered=0 rx_waiting=2"));
	assert_non_null(strstr(buf, "virtio-console: virtio-mmio @0xf0000000 irq 5"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tx_to_console, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_never_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_waits_for_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_split_and_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_before_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_rings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_and_stats, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
