/* AP startup for test guests: INIT/SIPI/SIPI through the xAPIC ICR (SDM Vol. 3A §10.6.1, §8.4.4.1). */
#include "lib.h"

#define LAPIC_ID   0x020
#define LAPIC_SVR  0x0f0
#define LAPIC_ICR0 0x300   /* low: vector, delivery mode, level; writing it sends */
#define LAPIC_ICR1 0x310   /* high: destination APIC id in bits 24-31 */
#define ICR_INIT   0x00000500
#define ICR_SIPI   0x00000600
#define ICR_ASSERT 0x00004000
#define ICR_BUSY   0x00001000
#define SVR_ENABLE 0x100

extern char tramp_start[], tramp_end[];

volatile uint32_t smp_cpus_up;
volatile bool smp_quiet;
static volatile uint32_t seen[256 / 32];

void ap_main(void);

uint32_t lapic_read(unsigned reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

void lapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

unsigned lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

static void mark_up(unsigned id)
{
	__atomic_fetch_or(&seen[id / 32], 1U << (id % 32), __ATOMIC_SEQ_CST);
	atomic_xadd(&smp_cpus_up, 1);
}

bool smp_cpu_seen(unsigned id)
{
	return id < 256 && (seen[id / 32] & (1U << (id % 32)));
}

/* Every AP, at CPL0 on its own stack (entry.S); returns to a cli/hlt loop. */
void ap_main(void)
{
	unsigned id = lapic_id();

	mark_up(id);
	if (!smp_quiet)
		printf("ap: apic id %u up\n", id);
}

static void icr_send(unsigned dest, uint32_t low)
{
	unsigned spins;

	lapic_write(LAPIC_ICR1, dest << 24);
	lapic_write(LAPIC_ICR0, low);
	for (spins = 0; spins < 1000000 && (lapic_read(LAPIC_ICR0) & ICR_BUSY); spins++)
		cpu_relax();
}

unsigned smp_start_aps(const uint8_t *ids, unsigned n, uint64_t timeout_cycles)
{
	unsigned self = lapic_id(), i, expect = 1;
	uint64_t start;

	memcpy((void *)SMP_TRAMPOLINE_PA, tramp_start, (size_t)(tramp_end - tramp_start));
	if (!smp_cpu_seen(self))
		mark_up(self);
	lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | SVR_ENABLE | 0xff);

	/* The classic sequence; the waits are what the SDM asks of real hardware (10 ms, 200 us). */
	for (i = 0; i < n; i++) {
		if (ids[i] == self)
			continue;
		expect++;
		icr_send(ids[i], ICR_INIT | ICR_ASSERT);
	}
	delay_cycles(10000000);
	for (i = 0; i < n; i++) {
		if (ids[i] == self)
			continue;
		icr_send(ids[i], ICR_SIPI | ICR_ASSERT | (SMP_TRAMPOLINE_PA >> 12));
		delay_cycles(200000);
		if (!smp_cpu_seen(ids[i]))
			icr_send(ids[i], ICR_SIPI | ICR_ASSERT | (SMP_TRAMPOLINE_PA >> 12));
	}
	start = rdtsc();
	while (smp_cpus_up < expect && rdtsc() - start < timeout_cycles)
		cpu_relax();
	return smp_cpus_up;
}
