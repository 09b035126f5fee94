/* i8042 keyboard controller (PC/AT 8042): probe answers for Linux, CPU reset, Ctrl-Alt-Del injection. */
#ifndef KILN_DEVICES_I8042_H
#define KILN_DEVICES_I8042_H

#include "core/types.h"

struct vm;
struct i8042;

/* ISA IRQ of the keyboard (PC/AT wiring of the 8042's output-buffer-full line). */
#define I8042_KBD_IRQ 1

/* Create the controller at ports X86_I8042_DATA / X86_I8042_CMD; 0 or -errno. */
int i8042_init(struct vm *vm);

/* The controller i8042_init() gave to vm, or NULL (looked up by device name). */
struct i8042 *i8042_from_vm(struct vm *vm);

/*
 * Press and release Ctrl-Alt-Del: queue the make/break scancodes (set 1 when
 * the controller translates, set 2 otherwise) and raise IRQ 1. Safe from any
 * thread. 0; -ENOSPC if the output queue cannot take the whole sequence;
 * -EAGAIN while the guest has the keyboard disabled (command byte bit 4 or
 * keyboard command 0xF5), so the caller may retry.
 */
int i8042_send_ctrl_alt_del(struct i8042 *k);

#endif
