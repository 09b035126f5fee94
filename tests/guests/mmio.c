/* mmio: from CPL3, unclaimed MMIO in the 32-bit hole reads 0 at every width and drops writes (pages mapped uncached). */
#include "lib.h"

/* In the 3-4 GiB hole (uncached in entry.S's page tables), clear of kiln's devices, IOAPIC and LAPIC. */
#define HOLE 0xd0000000UL

void guest_main(void)
{
	uint64_t a, v;
	unsigned i;

	if (current_cpl() != 3)
		fail("guest_main runs at CPL%u, not 3", current_cpl());
	for (i = 0; i < 4; i++) {
		a = HOLE + i * 0x1000 + i * 8;
		if ((v = mmio_read8(a)) != 0)
			fail("read8(%#lx) = %#lx, expected 0", a, v);
		if ((v = mmio_read16(a)) != 0)
			fail("read16(%#lx) = %#lx, expected 0", a, v);
		if ((v = mmio_read32(a)) != 0)
			fail("read32(%#lx) = %#lx, expected 0", a, v);
		if ((v = mmio_read64(a)) != 0)
			fail("read64(%#lx) = %#lx, expected 0", a, v);
		mmio_write8(a, 0x5a);
		mmio_write16(a, 0xa55a);
		mmio_write32(a, 0xdeadbeef);
		mmio_write64(a, 0x0123456789abcdefUL);
		if ((v = mmio_read64(a)) != 0)
			fail("read64(%#lx) = %#lx after writes, expected 0 (writes must be dropped)", a, v);
	}
	printf("mmio: unclaimed MMIO at %#lx reads 0 at 1/2/4/8 bytes, writes dropped\n", HOLE);
}
