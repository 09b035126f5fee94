/* The host side of the guest console: terminal raw mode and the Ctrl-A escape. */
#ifndef KILN_CONSOLE_H
#define KILN_CONSOLE_H

#include <termios.h>
#include "core/types.h"

#define CONSOLE_ESCAPE_CHAR 0x01 /* Ctrl-A, as in QEMU and screen */

struct console_escape {
	bool pending; /* the previous byte was Ctrl-A */
};

/*
 * Filter bytes typed at the terminal. Ctrl-A x asks to quit (*quit = true),
 * Ctrl-A Ctrl-A sends one Ctrl-A, Ctrl-A + anything else is dropped.
 * Writes the bytes to forward into out (room for n) and returns their count.
 */
size_t console_filter(struct console_escape *st, const uint8_t *in, size_t n, uint8_t *out, bool *quit);

/* Put a terminal fd into raw mode, saving its state; 0, or -errno (not a tty is -ENOTTY). */
int console_raw_enter(int fd, struct termios *saved);
void console_raw_leave(int fd, const struct termios *saved);

#endif
