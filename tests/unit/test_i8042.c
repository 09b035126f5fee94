/* Unit tests for the i8042: controller commands, Linux's aux probe, reset paths, keyboard answers, Ctrl-Alt-Del. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>
#include "arch/x86/layout.h"
#include "devices/i8042.h"
#include "stub_vm.h"

#define STR_OBF     0x01
#define STR_SYS     0x04
#define STR_AUXDATA 0x20

static uint8_t inb(struct vm *vm, unsigned port)
{
	uint8_t v = 0xaa;
	assert_true(bus_access(&vm->pio, port, &v, 1, false));
	return v;
}

static void outb(struct vm *vm, unsigned port, uint8_t v)
{
	assert_true(bus_access(&vm->pio, port, &v, 1, true));
}

static uint8_t status(struct vm *vm)
{
	return inb(vm, X86_I8042_CMD);
}

/* Read one pending byte, asserting it was there. */
static uint8_t take(struct vm *vm)
{
	assert_true(status(vm) & STR_OBF);
	return inb(vm, X86_I8042_DATA);
}

static uint8_t command(struct vm *vm, uint8_t cmd)
{
	outb(vm, X86_I8042_CMD, cmd);
	return take(vm);
}

static int setup(void **state)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	assert_non_null(vm);
	stub_vm_init(vm, 0);
	assert_int_equal(i8042_init(vm), 0);
	*state = vm;
	return 0;
}

static int teardown(void **state)
{
	struct vm *vm = *state;

	stub_vm_fini(vm);
	free(vm);
	return 0;
}

static void test_status_and_selftest(void **state)
{
	struct vm *vm = *state;

	assert_int_equal(status(vm) & (STR_OBF | STR_SYS | 0x02), STR_SYS);
	assert_int_equal(command(vm, 0xaa), 0x55);
	assert_int_equal(status(vm) & STR_OBF, 0);
	assert_int_equal(command(vm, 0xab), 0x00);
	/* Drained: the data port repeats the last byte, OBF stays clear. */
	assert_int_equal(inb(vm, X86_I8042_DATA), 0x00);
	assert_int_equal(status(vm) & STR_OBF, 0);
	assert_non_null(i8042_from_vm(vm));
}

static void test_command_byte(void **state)
{
	struct vm *vm = *state;

	assert_int_equal(command(vm, 0x20), 0x65);
	outb(vm, X86_I8042_CMD, 0x60);
	outb(vm, X86_I8042_DATA, 0x44);
	assert_int_equal(command(vm, 0x20), 0x64); /* aux stays disabled */
	outb(vm, X86_I8042_CMD, 0xad);
	assert_int_equal(command(vm, 0x20), 0x74);
	outb(vm, X86_I8042_CMD, 0xae);
	assert_int_equal(command(vm, 0x20), 0x64);
	/* Clearing the system flag clears status bit 2. */
	outb(vm, X86_I8042_CMD, 0x60);
	outb(vm, X86_I8042_DATA, 0x40);
	assert_int_equal(status(vm) & STR_SYS, 0);
	/* Other controller RAM bytes are plain storage. */
	outb(vm, X86_I8042_CMD, 0x65);
	outb(vm, X86_I8042_DATA, 0x9c);
	assert_int_equal(command(vm, 0x25), 0x9c);
}

/* The sequence Linux's i8042_check_aux() runs must end in "no aux port", without timeouts. */
static void test_linux_aux_probe(void **state)
{
	struct vm *vm = *state;

	outb(vm, X86_I8042_CMD, 0xd3);
	outb(vm, X86_I8042_DATA, 0x5a);
	assert_int_equal(status(vm) & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
	assert_int_equal(inb(vm, X86_I8042_DATA), 0x5a);
	assert_int_equal(stub_vm_log(vm)->nirq, 0); /* aux data never raises IRQ 1 */
	outb(vm, X86_I8042_CMD, 0xa7);
	assert_int_equal(command(vm, 0x20) & 0x20, 0x20);
	outb(vm, X86_I8042_CMD, 0xa8);
	assert_int_equal(command(vm, 0x20) & 0x20, 0x20); /* Linux gives up on aux here */
	assert_int_equal(command(vm, 0xa9), 0x02);        /* and would with i8042.noloop */
}

static void test_reset_fe(void **state)
{
	struct vm *vm = *state;
	struct stub_vm_log *l = stub_vm_log(vm);

	outb(vm, X86_I8042_CMD, 0xff); /* pulse nothing */
	assert_int_equal(l->nstop, 0);
	outb(vm, X86_I8042_CMD, 0xfe);
	assert_int_equal(l->nstop, 1);
	assert_int_equal(l->last_stop, VM_STOP_RESET);
}

static void test_reset_output_port(void **state)
{
	struct vm *vm = *state;
	struct stub_vm_log *l = stub_vm_log(vm);

	assert_int_equal(command(vm, 0xd0), 0x03);
	outb(vm, X86_I8042_CMD, 0xd1);
	outb(vm, X86_I8042_DATA, 0x01); /* A20 off, reset line high */
	assert_int_equal(l->nstop, 0);
	assert_int_equal(command(vm, 0xd0), 0x01);
	outb(vm, X86_I8042_CMD, 0xd1);
	outb(vm, X86_I8042_DATA, 0x02); /* bit 0 low: reset */
	assert_int_equal(l->nstop, 1);
	assert_int_equal(l->last_stop, VM_STOP_RESET);
}

static void test_keyboard_commands_and_edges(void **state)
{
	struct vm *vm = *state;
	struct stub_vm_log *l = stub_vm_log(vm);

	outb(vm, X86_I8042_DATA, 0xff); /* reset: FA AA */
	assert_int_equal(l->nirq, 1);
	assert_int_equal(l->irq[0].gsi, I8042_KBD_IRQ);
	assert_int_equal(l->irq[0].level, 1);
	assert_int_equal(inb(vm, X86_I8042_DATA), 0xfa);
	/* One edge per byte: the line drops, then rises for AA. */
	assert_int_equal(l->nirq, 3);
	assert_int_equal(l->irq[1].level, 0);
	assert_int_equal(l->irq[2].level, 1);
	assert_int_equal(inb(vm, X86_I8042_DATA), 0xaa);
	assert_int_equal(l->nirq, 4);
	assert_int_equal(l->irq[3].level, 0);

	outb(vm, X86_I8042_DATA, 0xf2); /* identify, translated */
	assert_int_equal(take(vm), 0xfa);
	assert_int_equal(take(vm), 0xab);
	assert_int_equal(take(vm), 0x41);
	outb(vm, X86_I8042_DATA, 0xed); /* LEDs: ACK, parameter, ACK */
	assert_int_equal(take(vm), 0xfa);
	outb(vm, X86_I8042_DATA, 0x07);
	assert_int_equal(take(vm), 0xfa);
	assert_int_equal(status(vm) & STR_OBF, 0);
	outb(vm, X86_I8042_DATA, 0xf0); /* get scancode set */
	outb(vm, X86_I8042_DATA, 0x00);
	assert_int_equal(take(vm), 0xfa);
	assert_int_equal(take(vm), 0xfa);
	assert_int_equal(take(vm), 0x02);
	outb(vm, X86_I8042_DATA, 0xee);
	assert_int_equal(take(vm), 0xee);
}

static void test_output_queue_bounded(void **state)
{
	struct vm *vm = *state;
	unsigned n = 0;

	for (int i = 0; i < 20; i++)
		outb(vm, X86_I8042_DATA, 0xf4); /* each answers FA, nobody reads */
	while ((status(vm) & STR_OBF) && n < 100) {
		assert_int_equal(inb(vm, X86_I8042_DATA), 0xfa);
		n++;
	}
	assert_int_equal(n, 16);
}

static void test_ctrl_alt_del(void **state)
{
	struct vm *vm = *state;
	struct stub_vm_log *l = stub_vm_log(vm);
	struct i8042 *k = i8042_from_vm(vm);
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	unsigned rises = 0;

	assert_non_null(k);
	assert_int_equal(i8042_send_ctrl_alt_del(k), 0);
	assert_int_equal(l->nirq, 1);
	assert_int_equal(l->irq[0].gsi, 1);
	assert_int_equal(l->irq[0].level, 1);
	for (unsigned i = 0; i < sizeof(set1); i++)
		assert_int_equal(take(vm), set1[i]);
	assert_int_equal(status(vm) & STR_OBF, 0);
	for (unsigned i = 0; i < l->nirq; i++)
		if (l->irq[i].level)
			rises++;
	assert_int_equal(rises, 8);
	assert_int_equal(l->irq[l->nirq - 1].level, 0);

	/* Bounded: two sequences fit in 16 bytes, a third does not. */
	assert_int_equal(i8042_send_ctrl_alt_del(k), 0);
	assert_int_equal(i8042_send_ctrl_alt_del(k), 0);
	assert_int_equal(i8042_send_ctrl_alt_del(k), -ENOSPC);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(take(vm), set1[i % 8]);

	/* Keyboard disabled: refused, nothing queued. */
	outb(vm, X86_I8042_CMD, 0xad);
	assert_int_equal(i8042_send_ctrl_alt_del(k), -EAGAIN);
	assert_int_equal(status(vm) & STR_OBF, 0);
}

static void test_ctrl_alt_del_set2_no_irq(void **state)
{
	struct vm *vm = *state;
	struct stub_vm_log *l = stub_vm_log(vm);
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14 };

	/* No translation, keyboard interrupt off. */
	outb(vm, X86_I8042_CMD, 0x60);
	outb(vm, X86_I8042_DATA, 0x04);
	assert_int_equal(i8042_send_ctrl_alt_del(i8042_from_vm(vm)), 0);
	for (unsigned i = 0; i < sizeof(set2); i++)
		assert_int_equal(take(vm), set2[i]);
	assert_int_equal(l->nirq, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status_and_selftest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_linux_aux_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_fe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_output_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyboard_commands_and_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_queue_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctrl_alt_del, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctrl_alt_del_set2_no_irq, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
