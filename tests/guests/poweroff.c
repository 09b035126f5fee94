/* poweroff: the ACPI S5 write ends kiln with exit code 0. */
#include "lib.h"

void guest_main(void)
{
	putstr("poweroff: writing SLP_TYP=5|SLP_EN to the ACPI sleep control register\n");
}
