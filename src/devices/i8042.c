/* i8042 keyboard controller emulation: status/command/data ports, a keyboard that answers, reset, IRQ 1. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arch/x86/layout.h"
#include "core/vm.h"
#include "devices/i8042.h"

/* Status register, read at port 0x64 (IBM PC/AT Technical Reference, "Keyboard Controller"). */
#define STR_OBF      0x01 /* output buffer full: a byte waits at port 0x60 */
#define STR_IBF      0x02 /* input buffer full: never, commands complete at once */
#define STR_SYS      0x04 /* system flag, copied from command byte bit 2 */
#define STR_CMD      0x08 /* A2: the last write went to port 0x64 */
#define STR_UNLOCKED 0x10 /* keyboard not inhibited by the keylock */
#define STR_AUXDATA  0x20 /* the output byte came from the aux (PS/2 mouse) side */

/* Command byte ("controller RAM" byte 0). */
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS    0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE  0x40 /* translate keyboard set 2 to set 1 */

/* Output port bits (commands 0xD0/0xD1). */
#define OUTP_RESET 0x01 /* active low: 0 holds the CPU in reset */
#define OUTP_A20   0x02

/* Keyboard answers. */
#define KBD_ACK      0xfa
#define KBD_BAT_OK   0xaa
#define KBD_ECHO     0xee

/*
 * Output queue: the 8042 has a one-byte output buffer, but the keyboard
 * behind it buffers its own bytes; 16 bounds what a guest can make us hold.
 */
#define I8042_QUEUE 16
#define I8042_RAM   32 /* controller RAM reachable with 0x20-0x3F / 0x60-0x7F */

/*
 * Power-on command byte: translate, system flag, keyboard interrupt, and the
 * aux port disabled (none is wired, see cmd_write()).
 */
#define CTR_DEFAULT (CTR_XLATE | CTR_AUXDIS | CTR_SYS | CTR_KBDINT)

struct i8042_byte {
	uint8_t val;
	bool aux;
};

struct i8042 {
	struct vm *vm;
	pthread_mutex_t lock; /* vCPU threads and the API thread (Ctrl-Alt-Del) */

	uint8_t ram[I8042_RAM]; /* ram[0] is the command byte */
	uint8_t outport;
	bool a2;                /* last write was to the command port */
	uint8_t pending_cmd;    /* controller command awaiting its data-port byte, 0 if none */
	uint8_t kbd_pending;    /* keyboard command awaiting its parameter byte, 0 if none */
	bool kbd_scanning;      /* keyboard enabled (0xF4) or disabled (0xF5) */
	uint8_t kbd_set;        /* scancode set the guest selected (0xF0) */

	struct i8042_byte q[I8042_QUEUE];
	unsigned q_head, q_count;
	uint8_t last;           /* port 0x60 keeps returning the last byte once drained */
	bool irq_level;

	uint64_t dropped;       /* bytes lost to a full output queue */
	uint64_t unknown_cmds;  /* controller commands we ignore */
};

static uint8_t ctr(const struct i8042 *k)
{
	return k->ram[0];
}

static bool q_push(struct i8042 *k, uint8_t val, bool aux)
{
	if (k->q_count >= I8042_QUEUE) {
		k->dropped++;
		return false;
	}
	k->q[(k->q_head + k->q_count) % I8042_QUEUE] = (struct i8042_byte){ val, aux };
	k->q_count++;
	return true;
}

static uint8_t status(const struct i8042 *k)
{
	uint8_t s = STR_UNLOCKED;

	if (k->q_count) {
		s |= STR_OBF;
		if (k->q[k->q_head].aux)
			s |= STR_AUXDATA;
	}
	if (ctr(k) & CTR_SYS)
		s |= STR_SYS;
	if (k->a2)
		s |= STR_CMD;
	return s;
}

/*
 * IRQ 1 follows "output buffer full with keyboard-side data and command byte
 * bit 0 set" (PC/AT: OBF drives IRQ 1). ISA IRQ 1 is edge-triggered on the
 * IOAPIC and Linux reads one byte per interrupt, so after the guest takes a
 * byte the line is dropped before it rises again for the next one: each
 * byte gets its own edge. Aux data would go to IRQ 12; no aux port is wired.
 */
static void update_irq(struct i8042 *k, bool byte_taken)
{
	bool level = k->q_count && !k->q[k->q_head].aux && (ctr(k) & CTR_KBDINT);

	if (byte_taken && k->irq_level) {
		k->irq_level = false;
		vm_set_irq(k->vm, I8042_KBD_IRQ, 0);
	}
	if (level != k->irq_level) {
		k->irq_level = level;
		vm_set_irq(k->vm, I8042_KBD_IRQ, level);
	}
}

static void kbd_reply(struct i8042 *k, uint8_t val)
{
	(void)q_push(k, val, false);
}

/* The keyboard's own commands (IBM PS/2 keyboard reference), written to port 0x60. */
static void kbd_write(struct i8042 *k, uint8_t val)
{
	uint8_t cmd = k->kbd_pending;

	if (cmd) {
		k->kbd_pending = 0;
		if (cmd == 0xf0 && val == 0) {
			kbd_reply(k, KBD_ACK);
			kbd_reply(k, k->kbd_set); /* "get current set" */
			return;
		}
		if (cmd == 0xf0 && val <= 3)
			k->kbd_set = val;
		kbd_reply(k, KBD_ACK); /* LED state (0xED), typematic rate (0xF3), set (0xF0) */
		return;
	}
	switch (val) {
	case 0xed: /* set LEDs */
	case 0xf0: /* select scancode set */
	case 0xf3: /* typematic rate */
		k->kbd_pending = val;
		kbd_reply(k, KBD_ACK);
		break;
	case 0xee:
		kbd_reply(k, KBD_ECHO);
		break;
	case 0xf2: /* identify: MF2 keyboard, AB 83; the controller translates 83 to 41 */
		kbd_reply(k, KBD_ACK);
		kbd_reply(k, 0xab);
		kbd_reply(k, (ctr(k) & CTR_XLATE) ? 0x41 : 0x83);
		break;
	case 0xf4:
		k->kbd_scanning = true;
		kbd_reply(k, KBD_ACK);
		break;
	case 0xf5: /* disable, and restore defaults */
		k->kbd_scanning = false;
		k->kbd_set = 2;
		kbd_reply(k, KBD_ACK);
		break;
	case 0xff: /* reset: ACK, then basic assurance test passed */
		k->kbd_scanning = true;
		k->kbd_set = 2;
		kbd_reply(k, KBD_ACK);
		kbd_reply(k, KBD_BAT_OK);
		break;
	default: /* 0xF6 defaults, 0xF7-0xFD set-3 modes, 0xFE resend...: acknowledged, no effect */
		kbd_reply(k, KBD_ACK);
		break;
	}
}

/* A byte on port 0x60: the parameter of a pending controller command, else a keyboard command. */
static bool data_write(struct i8042 *k, uint8_t val)
{
	uint8_t cmd = k->pending_cmd;

	k->a2 = false;
	k->pending_cmd = 0;
	if (!cmd) {
		kbd_write(k, val);
		return false;
	}
	if (cmd >= 0x60 && cmd <= 0x7f) {
		if (cmd == 0x60)
			val |= CTR_AUXDIS; /* no aux port: its clock stays inhibited */
		k->ram[cmd - 0x60] = val;
		return false;
	}
	switch (cmd) {
	case 0xd1: /* write output port: bit 0 low asserts the CPU reset line */
		k->outport = val;
		return !(val & OUTP_RESET);
	case 0xd2: /* write keyboard output buffer: appears as keyboard data */
		(void)q_push(k, val, false);
		break;
	case 0xd3: /* write aux output buffer: the 8042 loops it back as aux data */
		(void)q_push(k, val, true);
		break;
	default:   /* 0xd4, write to aux device: there is none */
		k->dropped++;
		break;
	}
	return false;
}

/*
 * A controller command on port 0x64. Returns true when it pulses the reset
 * line. Linux's i8042_check_aux() is made to skip the mouse without waiting
 * for timeouts: 0xD3 loops (it is internal to the 8042), but 0xA8 cannot
 * clear the "aux disabled" bit and 0xA9 reports the clock line stuck, as a
 * controller with no aux port wired would.
 */
static bool cmd_write(struct i8042 *k, uint8_t cmd)
{
	k->a2 = true;
	k->pending_cmd = 0;
	if (cmd >= 0x20 && cmd <= 0x3f) { /* read controller RAM; 0x20 is the command byte */
		(void)q_push(k, k->ram[cmd - 0x20], false);
		return false;
	}
	if ((cmd >= 0x60 && cmd <= 0x7f) || (cmd >= 0xd1 && cmd <= 0xd4)) {
		k->pending_cmd = cmd; /* the parameter follows on port 0x60 */
		return false;
	}
	if (cmd >= 0xf0)
		return !(cmd & OUTP_RESET); /* pulse output port bits that are 0 in cmd; 0xFE = reset */
	switch (cmd) {
	case 0xa7:
		k->ram[0] |= CTR_AUXDIS;
		break;
	case 0xa8:
		break; /* enable aux: nothing to enable */
	case 0xa9:
		(void)q_push(k, 0x02, false); /* aux interface test: clock line stuck high */
		break;
	case 0xaa:
		(void)q_push(k, 0x55, false); /* controller self-test passed */
		break;
	case 0xab:
		(void)q_push(k, 0x00, false); /* keyboard interface test: no error */
		break;
	case 0xad:
		k->ram[0] |= CTR_KBDDIS;
		break;
	case 0xae:
		k->ram[0] &= (uint8_t)~CTR_KBDDIS;
		break;
	case 0xd0:
		(void)q_push(k, k->outport, false);
		break;
	default:
		k->unknown_cmds++;
		break;
	}
	return false;
}

static uint8_t data_read(struct i8042 *k)
{
	if (k->q_count) {
		k->last = k->q[k->q_head].val;
		k->q_head = (k->q_head + 1) % I8042_QUEUE;
		k->q_count--;
	}
	return k->last;
}

/* Bus callback for one port; the two ports are registered separately (0x60 and 0x64). */
static void i8042_port(struct i8042 *k, bool cmd_port, uint8_t *data, uint32_t len, bool is_write)
{
	bool reset = false;

	pthread_mutex_lock(&k->lock);
	if (is_write)
		reset = cmd_port ? cmd_write(k, data[0]) : data_write(k, data[0]);
	else
		data[0] = cmd_port ? status(k) : data_read(k);
	update_irq(k, !is_write && !cmd_port);
	pthread_mutex_unlock(&k->lock);
	if (!is_write && len > 1)
		memset(data + 1, 0xff, len - 1); /* ranges are one port wide: the bus sends bytes only */
	if (reset)
		vm_request_stop(k->vm, VM_STOP_RESET);
}

static void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)offset; /* one-port range */
	i8042_port(opaque, false, data, len, is_write);
}

static void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)offset; /* one-port range */
	i8042_port(opaque, true, data, len, is_write);
}

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
	/* Ctrl, Alt, Del (extended) make codes, then the breaks in reverse order. */
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14 };
	const uint8_t *seq;
	size_t n;
	int ret = 0;

	pthread_mutex_lock(&k->lock);
	if (ctr(k) & CTR_XLATE) {
		seq = set1;
		n = sizeof(set1);
	} else {
		seq = set2;
		n = sizeof(set2);
	}
	if (!k->kbd_scanning || (ctr(k) & CTR_KBDDIS)) {
		ret = -EAGAIN;
	} else if (I8042_QUEUE - k->q_count < n) {
		ret = -ENOSPC;
	} else {
		for (size_t i = 0; i < n; i++)
			(void)q_push(k, seq[i], false);
		update_irq(k, false);
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

static void i8042_print_stats(void *state, int fd)
{
	struct i8042 *k = state;
	uint64_t dropped, unknown;

	pthread_mutex_lock(&k->lock);
	dropped = k->dropped;
	unknown = k->unknown_cmds;
	pthread_mutex_unlock(&k->lock);
	dprintf(fd, "i8042: dropped=%llu unknown_cmds=%llu\n",
		(unsigned long long)dropped, (unsigned long long)unknown);
}

static void i8042_destroy(void *state)
{
	struct i8042 *k = state;

	pthread_mutex_destroy(&k->lock);
	free(k);
}

struct i8042 *i8042_from_vm(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].destroy == i8042_destroy)
			return vm->devices[i].state;
	return NULL;
}

int i8042_init(struct vm *vm)
{
	struct vm_device dev = {
		.name = "i8042",
		.destroy = i8042_destroy,
		.print_stats = i8042_print_stats,
	};
	struct i8042 *k;
	int ret;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	ret = -pthread_mutex_init(&k->lock, NULL);
	if (ret < 0)
		goto err_free;
	k->vm = vm;
	k->ram[0] = CTR_DEFAULT;
	k->outport = OUTP_RESET | OUTP_A20; /* A20 cannot be masked under KVM; the bit is only stored */
	k->kbd_scanning = true;
	k->kbd_set = 2;

	dev.state = k;
	ret = vm_add_device(vm, &dev);
	if (ret < 0)
		goto err_mutex;
	/* From here the VM owns k and frees it at teardown, also if registration fails. */
	ret = bus_register(&vm->pio, X86_I8042_DATA, 1, "i8042-data", i8042_data_io, k);
	if (ret < 0)
		return ret;
	return bus_register(&vm->pio, X86_I8042_CMD, 1, "i8042-cmd", i8042_cmd_io, k);

err_mutex:
	pthread_mutex_destroy(&k->lock);
err_free:
	free(k);
	return ret;
}

DEVICE_REGISTER(i8042, i8042_init);
