/* kiln's demo guest: what a PVH guest sees (start info, command line, memory map, vCPUs), printed from CPL3. */
#include "lib.h"

#define MiB (1024UL * 1024)

static const char *memmap_type(uint32_t t)
{
	switch (t) {
	case 1: return "RAM";
	case 2: return "reserved";
	case 3: return "ACPI";
	case 4: return "ACPI NVS";
	case 5: return "unusable";
	default: return "other";
	}
}

static void show_cmdline(void)
{
	const char *c = (const char *)start_info->cmdline_paddr;
	char buf[200];
	size_t n = 0;

	if (!c) {
		putstr("cmdline: (none)\n");
		return;
	}
	/* Bounded copy: the command line is the host user's, but this is a guest, be tidy. */
	while (n < sizeof(buf) - 1 && c[n])
		n++;
	memcpy(buf, c, n);
	buf[n] = '\0';
	printf("cmdline: \"%s\"%s\n", buf, c[n] ? " (truncated)" : "");
}

static void show_memory(void)
{
	const struct hvm_memmap_entry *m = (const struct hvm_memmap_entry *)start_info->memmap_paddr;
	uint64_t ram = 0;
	uint32_t i;

	if (start_info->version < 1 || !m) {
		putstr("memory map: none (start_info version 0)\n");
		return;
	}
	printf("memory map: %u entries\n", start_info->memmap_entries);
	for (i = 0; i < start_info->memmap_entries && i < 128; i++) {
		if (!m[i].size) {
			printf("  %#014lx (empty entry, type %u)\n", m[i].addr, m[i].type);
			continue;
		}
		printf("  %#014lx-%#014lx %s\n", m[i].addr, m[i].addr + m[i].size - 1, memmap_type(m[i].type));
		if (m[i].type == HVM_MEMMAP_RAM)
			ram += m[i].size;
	}
	printf("RAM: %lu MiB (%lu KiB)\n", ram / MiB, ram / 1024);
}

static void show_cpus(void)
{
	uint8_t ids[SMP_MAX_CPUS];
	unsigned n, up, i;

	n = acpi_lapic_ids(ids, SMP_MAX_CPUS);
	if (!n) {
		printf("vCPUs: unknown (%s)\n", acpi_error);
		return;
	}
	printf("vCPUs: %u in the MADT, APIC ids", n);
	for (i = 0; i < n; i++)
		printf(" %u", ids[i]);
	putstr("\n");
	/* Starting them is cheap (a few hundred CPL0 instructions each): count who answers. */
	smp_quiet = true;
	up = smp_start_aps(ids, n, 20000000000UL);
	printf("vCPUs: %u of %u running (BSP is APIC id %u)\n", up, n, lapic_id());
}

void guest_main(void)
{
	putstr("\nkiln demo guest\n===============\n");
	printf("running at CPL%u; hvm_start_info at %p: version %u, flags %#x, %u module(s)\n",
	       current_cpl(), (const void *)start_info, start_info->version, start_info->flags,
	       start_info->nr_modules);
	show_cmdline();
	show_memory();
	show_cpus();
	putstr("demo: all done, powering off\n");
	poweroff();
}
