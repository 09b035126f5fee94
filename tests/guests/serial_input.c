/* serial_input: bytes kiln reads from its console (stdin) reach the guest through the UART's receive side (RBR, LSR.DR). */
#include "lib.h"

#define LSR_DR 0x01 /* data ready (16550A LSR bit 0) */
#define EXPECTED "kiln-input-test"

void guest_main(void)
{
	char line[64];
	unsigned n = 0;
	uint64_t start = rdtsc();

	putstr("serial_input: reading a line from COM1\n");
	/* Bounded: about 10 s at a few GHz; kiln feeds stdin as soon as it runs. */
	while (n < sizeof(line) - 1 && rdtsc() - start < 30000000000ULL) {
		if (!(inb(COM1_LSR) & LSR_DR)) {
			cpu_relax();
			continue;
		}
		char c = (char)inb(COM1_PORT);
		if (c == '\n' || c == '\r')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
	if (n != sizeof(EXPECTED) - 1 || memcmp(line, EXPECTED, n) != 0)
		fail("read \"%s\" (%u bytes), expected \"%s\"", line, n, EXPECTED);
	printf("serial_input: got \"%s\"\n", line);
	putstr("SUCCESS\n");
}
