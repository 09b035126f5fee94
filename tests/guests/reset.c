/* reset: 0xfe to the i8042 command port ends kiln with exit code 4. */
#include "lib.h"

void guest_main(void)
{
	putstr("reset: writing 0xfe to port 0x64\n");
	outb(I8042_CMD_PORT, I8042_RESET);
	delay_cycles(2000000000UL);
	fail("still running 2e9 TSC ticks after the reset request");
}
