/* spin (hostile): a CPL3 tight loop forever; run-guests.sh checks that SIGTERM ends kiln. */
#include "lib.h"

void guest_main(void)
{
	putstr("spin: looping forever at CPL3\n");
	for (;;)
		__asm__ volatile("" ::: "memory");
}
