/* pio: from CPL3, reads of an unclaimed port return all ones at 1/2/4 bytes; writes to unclaimed ports are dropped. */
#include "lib.h"

/* Nothing kiln (or a PC) puts here: between the game port and COM2/LPT ranges. */
#define UNCLAIMED 0x288

void guest_main(void)
{
	uint32_t v;
	unsigned i;

	if (current_cpl() != 3)
		fail("guest_main runs at CPL%u, not 3", current_cpl());

	if ((v = inb(UNCLAIMED)) != 0xff)
		fail("inb(%#x) = %#x, expected 0xff", UNCLAIMED, v);
	if ((v = inw(UNCLAIMED)) != 0xffff)
		fail("inw(%#x) = %#x, expected 0xffff", UNCLAIMED, v);
	if ((v = inl(UNCLAIMED)) != 0xffffffff)
		fail("inl(%#x) = %#x, expected 0xffffffff", UNCLAIMED, v);
	/* An odd port and the top of the port space (a 4-byte access there ends at 0x10002). */
	if ((v = inw(UNCLAIMED + 1)) != 0xffff)
		fail("inw(%#x) = %#x, expected 0xffff", UNCLAIMED + 1, v);
	if ((v = inl(0xfffc)) != 0xffffffff)
		fail("inl(0xfffc) = %#x, expected 0xffffffff", v);
	if ((v = inl(0xffff)) != 0xffffffff)
		fail("inl(0xffff) = %#x, expected 0xffffffff", v);

	/* Writes of every width go nowhere and do not change what reads return. */
	for (i = 0; i < 8; i++) {
		outb(UNCLAIMED + i, 0x5a);
		outw(UNCLAIMED + i, 0xa55a);
		outl(UNCLAIMED + i, 0xdeadbeef);
	}
	outl(0xffff, 0x12345678);
	if ((v = inl(UNCLAIMED)) != 0xffffffff)
		fail("inl(%#x) = %#x after writes, expected 0xffffffff", UNCLAIMED, v);
	if ((v = inb(UNCLAIMED + 7)) != 0xff)
		fail("inb(%#x) = %#x after writes, expected 0xff", UNCLAIMED + 7, v);
	printf("pio: unclaimed port %#x reads all ones at 1/2/4 bytes, writes dropped\n", UNCLAIMED);
}
