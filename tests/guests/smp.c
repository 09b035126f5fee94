/* smp: every CPU in the MADT starts with INIT/SIPI/SIPI and checks in with `lock xadd`. */
#include "lib.h"

void guest_main(void)
{
	uint8_t ids[SMP_MAX_CPUS];
	unsigned n, up, i;

	n = acpi_lapic_ids(ids, SMP_MAX_CPUS);
	if (!n)
		fail("MADT: %s", acpi_error);
	printf("madt: %u cpus, bsp apic id %u\n", n, lapic_id());
	/* 2e10 TSC ticks: 5-20 s on any host; an AP needs well under 1 ms even emulated. */
	up = smp_start_aps(ids, n, 20000000000UL);
	if (up != n)
		fail("%u of %u cpus checked in", up, n);
	for (i = 0; i < n; i++)
		if (!smp_cpu_seen(ids[i]))
			fail("apic id %u from the MADT never checked in", ids[i]);
	printf("cpus=%u\n", n);
}
