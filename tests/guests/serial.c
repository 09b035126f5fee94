/* serial: COM1 output reaches the console byte-exact (run-guests.sh compares serial.expected), and LSR says THRE. */
#include "lib.h"

void guest_main(void)
{
	char line[96];
	unsigned i, n = 0;
	uint8_t lsr;

	putstr("kiln serial test\n");
	putstr("line 2: digits 0123456789\n");
	for (i = 0x20; i < 0x7f; i++)
		line[n++] = (char)i;
	line[n] = '\0';
	printf("line 3: printable ASCII\n%s\n", line);
	putstr("line 5: tab\tend\n");
	putstr("line 6: 1024 bytes\n");
	for (i = 0; i < 64; i++)
		putstr("0123456789abcdef");
	putstr("\n");
	printf("line 8: printf %d %u %x %#lx %s %c %05d|%-4s|\n", -42, 42u, 0xbeefu,
	       0x123456789abcdefUL, "str", 'c', 7, "ab");
	putstr("the end\n");

	/* THRE (and TEMT): kiln's UART has sent everything at once. */
	lsr = inb(COM1_LSR);
	if (lsr == 0xff)
		fail("LSR reads 0xff: no UART at %#x", COM1_PORT);
	if (!(lsr & LSR_THRE))
		fail("LSR %#x: THRE clear after output", lsr);
	if (!(lsr & LSR_TEMT))
		fail("LSR %#x: TEMT clear after output", lsr);
}
