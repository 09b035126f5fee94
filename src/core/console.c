/* The host side of the guest console: terminal raw mode and the Ctrl-A escape. */
#include <errno.h>
#include <unistd.h>
#include "core/console.h"

size_t console_filter(struct console_escape *st, const uint8_t *in, size_t n, uint8_t *out, bool *quit)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];

		if (st->pending) {
			st->pending = false;
			if (c == 'x' || c == 'X') {
				*quit = true;
				return o;
			}
			if (c == CONSOLE_ESCAPE_CHAR)
				out[o++] = c;
			continue;
		}
		if (c == CONSOLE_ESCAPE_CHAR) {
			st->pending = true;
			continue;
		}
		out[o++] = c;
	}
	return o;
}

int console_raw_enter(int fd, struct termios *saved)
{
	struct termios t;

	if (!isatty(fd))
		return -ENOTTY;
	if (tcgetattr(fd, saved) < 0)
		return -errno;
	t = *saved;
	/* Raw input, but keep output post-processing so guest "\n" still returns the carriage. */
	cfmakeraw(&t);
	t.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return -errno;
	return 0;
}

void console_raw_leave(int fd, const struct termios *saved)
{
	tcsetattr(fd, TCSANOW, saved);
}
