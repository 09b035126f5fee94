/* triple_fault: #UD with a zero-limit IDT escalates to #DF and a shutdown; kiln exits 5. */
#include "lib.h"

void guest_cpl0(void)
{
	static const struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty = { 0, 0 };

	putstr("triple_fault: ud2 with a zero-limit IDT\n");
	__asm__ volatile("lidt %0\n\tud2" :: "m"(empty) : "memory");
}

void guest_main(void)
{
	fail("still running after ud2 with a zero-limit IDT");
}
