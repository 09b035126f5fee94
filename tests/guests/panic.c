/* panic: a pvpanic "panicked" write ends kiln with exit code 6. */
#include "lib.h"

void guest_main(void)
{
	uint8_t features = inb(PVPANIC_PORT);

	/* The device advertises at least PANICKED (bit 0) in its feature byte. */
	printf("panic: pvpanic features %#x\n", features);
	if (features == 0xff || !(features & PVPANIC_PANICKED))
		fail("no pvpanic device at %#x (features %#x)", PVPANIC_PORT, features);
	outb(PVPANIC_PORT, PVPANIC_PANICKED);
	delay_cycles(2000000000UL);
	fail("still running 2e9 TSC ticks after the pvpanic write");
}
