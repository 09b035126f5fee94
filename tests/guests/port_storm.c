/* port_storm (hostile): read and write garbage at every port 0-0xffff, then power off; kiln must survive. */
#include "lib.h"

/*
 * Ports skipped because writing them ends or cripples the test itself, not
 * kiln: COM1 (the console), the ACPI sleep/reset registers and the i8042
 * (they stop the VM), pvpanic; and, for --qemu runs, QEMU's reset/debug
 * ports (0x92, 0xcf9, 0xf4, 0x501) and PIIX4 PM block (0x600-0x63f).
 */
static bool skip(unsigned p)
{
	return (p >= COM1_PORT && p <= COM1_PORT + 7) ||
	       (p >= ACPI_SLEEP_CTL && p <= ACPI_SLEEP_CTL + 2) ||
	       p == 0x60 || p == I8042_CMD_PORT || p == PVPANIC_PORT ||
	       p == 0x92 || p == 0xcf9 || p == QEMU_DEBUG_EXIT || p == 0x501 ||
	       (p >= 0x600 && p < 0x640);
}

void guest_main(void)
{
	unsigned p, done = 0;
	uint32_t x = 0x12345678;

	for (p = 0; p <= 0xffff; p++) {
		if (skip(p))
			continue;
		(void)inb((uint16_t)p);
		x = x * 1103515245 + 12345;      /* garbage that differs per port */
		outb((uint16_t)p, (uint8_t)(x >> 16));
		done++;
	}
	printf("port_storm: %u ports read and written\n", done);
	/* Wider accesses over the PCI config and low legacy ranges too. */
	for (p = 0xcf8; p < 0xd00; p += 2) {
		x = x * 1103515245 + 12345;
		outw((uint16_t)p, (uint16_t)(x >> 8));
	}
	for (p = 0; p < 0x100; p += 4) {
		if (skip(p) || skip(p + 1) || skip(p + 2) || skip(p + 3))
			continue;
		outl((uint16_t)p, x);
		(void)inl((uint16_t)p);
	}
	putstr("port_storm: still alive\n");
}
