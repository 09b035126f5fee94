/* beyond_ram: a write then read past the end of RAM (below 3 GiB, and above 4 GiB) reads 0; kiln keeps running. */
#include "lib.h"

#define GiB (1UL << 30)
#define MAPPED_TOP (5 * GiB)   /* entry.S identity-maps 0-5 GiB */

static bool in_ram(uint64_t a)
{
	const struct hvm_memmap_entry *m = (const struct hvm_memmap_entry *)start_info->memmap_paddr;
	uint32_t i;

	for (i = 0; i < start_info->memmap_entries; i++)
		if (m[i].type == HVM_MEMMAP_RAM && a >= m[i].addr && a - m[i].addr < m[i].size)
			return true;
	return false;
}

static void probe(uint64_t a)
{
	uint64_t v;

	if (in_ram(a))
		fail("%#lx is RAM in the memmap; boot with less memory (--memory 64)", a);
	mmio_write64(a, 0x0123456789abcdefUL);
	mmio_write32(a + 8, 0xdeadbeef);
	mmio_write8(a + 12, 0x5a);
	if ((v = mmio_read64(a)) != 0)
		fail("read64(%#lx) = %#lx after a write beyond RAM, expected 0", a, v);
	if ((v = mmio_read32(a + 8)) != 0)
		fail("read32(%#lx) = %#lx after a write beyond RAM, expected 0", a + 8, v);
	if ((v = mmio_read8(a + 12)) != 0)
		fail("read8(%#lx) = %#lx after a write beyond RAM, expected 0", a + 12, v);
	printf("beyond_ram: %#lx reads 0\n", a);
}

void guest_main(void)
{
	if (start_info->version < 1 || !start_info->memmap_paddr || !start_info->memmap_entries)
		fail("no memmap in hvm_start_info (version %u)", start_info->version);
	probe(1 * GiB);                 /* past RAM of a --memory 64 guest, below 3 GiB */
	probe(4 * GiB + 0x1000);        /* above 4 GiB */
	probe(MAPPED_TOP - 0x1000);
}
