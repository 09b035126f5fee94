/* ACPI table lookup for test guests: RSDP -> XSDT/RSDT -> table, and the MADT's Local APIC ids (ACPI 6.4 §5.2). */
#include "lib.h"

const char *acpi_error = "not looked up";

struct rsdp {
	char sig[8];
	uint8_t checksum;
	char oem[6];
	uint8_t revision;
	uint32_t rsdt;
	/* revision >= 2 */
	uint32_t length;
	uint64_t xsdt;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct rsdp) == 36, "RSDP layout");

struct sdt_header {
	char sig[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem[6];
	char oem_table[8];
	uint32_t oem_rev;
	uint32_t creator;
	uint32_t creator_rev;
} __attribute__((packed));
_Static_assert(sizeof(struct sdt_header) == 36, "SDT header layout");

/* Tables must lie in the identity map (below 5 GiB) and be of sane size. */
#define ACPI_MAX_ADDR   0x140000000ULL
#define ACPI_MAX_LENGTH 0x100000U

static uint8_t checksum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (n--)
		sum += *b++;
	return sum;
}

static const struct rsdp *find_rsdp(void)
{
	uint64_t a;

	if (start_info->rsdp_paddr) {
		const struct rsdp *r = (const struct rsdp *)start_info->rsdp_paddr;

		if (start_info->rsdp_paddr >= ACPI_MAX_ADDR || memcmp(r->sig, "RSD PTR ", 8)) {
			acpi_error = "start_info.rsdp_paddr does not point at an RSDP";
			return NULL;
		}
		return r;
	}
	/* No pointer (start_info allows 0): the BIOS area scan of ACPI §5.2.5.1. */
	for (a = 0xe0000; a < 0x100000; a += 16)
		if (!memcmp((const void *)a, "RSD PTR ", 8) && !checksum((const void *)a, 20))
			return (const struct rsdp *)a;
	acpi_error = "no RSDP (rsdp_paddr is 0 and none in 0xe0000-0xfffff)";
	return NULL;
}

static const struct sdt_header *check_table(uint64_t a)
{
	const struct sdt_header *h = (const struct sdt_header *)a;

	if (!a || a >= ACPI_MAX_ADDR || h->length < sizeof(*h) || h->length > ACPI_MAX_LENGTH)
		return NULL;
	if (checksum(h, h->length)) {
		acpi_error = "bad table checksum";
		return NULL;
	}
	return h;
}

const void *acpi_find_table(const char sig[4])
{
	const struct rsdp *r = find_rsdp();
	const struct sdt_header *root, *t;
	bool x;
	unsigned i, n;

	if (!r)
		return NULL;
	if (checksum(r, 20)) {
		acpi_error = "bad RSDP checksum";
		return NULL;
	}
	x = r->revision >= 2 && r->xsdt;
	if (x && checksum(r, r->length < sizeof(*r) ? sizeof(*r) : r->length)) {
		acpi_error = "bad RSDP extended checksum";
		return NULL;
	}
	root = check_table(x ? r->xsdt : r->rsdt);
	if (!root || memcmp(root->sig, x ? "XSDT" : "RSDT", 4)) {
		acpi_error = x ? "bad XSDT" : "bad RSDT";
		return NULL;
	}
	n = (root->length - sizeof(*root)) / (x ? 8 : 4);
	for (i = 0; i < n; i++) {
		const uint8_t *e = (const uint8_t *)(root + 1) + i * (x ? 8 : 4);
		uint64_t a;

		if (x)
			memcpy(&a, e, 8);
		else {
			uint32_t a32;

			memcpy(&a32, e, 4);
			a = a32;
		}
		t = check_table(a);
		if (t && !memcmp(t->sig, sig, 4))
			return t;
	}
	acpi_error = "table not in the XSDT/RSDT";
	return NULL;
}

/* MADT (ACPI 6.4 §5.2.12): header, u32 LAPIC address, u32 flags, then {type, length, ...} entries. */
unsigned acpi_lapic_ids(uint8_t *ids, unsigned max)
{
	const struct sdt_header *madt = acpi_find_table("APIC");
	const uint8_t *p, *end;
	unsigned n = 0;

	if (!madt)
		return 0;
	p = (const uint8_t *)madt + sizeof(*madt) + 8;
	end = (const uint8_t *)madt + madt->length;
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		/* Processor Local APIC: uid, APIC id, flags (bit 0 enabled). */
		if (p[0] == 0 && p[1] >= 8 && (p[4] & 1) && n < max)
			ids[n++] = p[3];
		p += p[1];
	}
	if (!n)
		acpi_error = "no enabled Local APIC entry in the MADT";
	return n;
}
