/* A tiny AML byte-code builder (ACPI 6.4 §20 grammar, §6.4 resource descriptors). */
#include <errno.h>
#include <string.h>
#include "arch/x86/aml.h"

/* AML opcodes and prefixes (ACPI 6.4 §20.2). */
enum {
	AML_ZERO_OP = 0x00,
	AML_ONE_OP = 0x01,
	AML_NAME_OP = 0x08,
	AML_BYTE_PREFIX = 0x0a,
	AML_WORD_PREFIX = 0x0b,
	AML_DWORD_PREFIX = 0x0c,
	AML_STRING_PREFIX = 0x0d,
	AML_QWORD_PREFIX = 0x0e,
	AML_SCOPE_OP = 0x10,
	AML_BUFFER_OP = 0x11,
	AML_PACKAGE_OP = 0x12,
	AML_DUAL_NAME_PREFIX = 0x2e,
	AML_MULTI_NAME_PREFIX = 0x2f,
	AML_EXT_OP_PREFIX = 0x5b,
	AML_DEVICE_OP = 0x82, /* after AML_EXT_OP_PREFIX */
	AML_ROOT_CHAR = 0x5c,
	AML_NULL_NAME = 0x00,
};

/* Resource descriptor tags (§6.4.2 small, §6.4.3 large). */
enum {
	RES_IRQ_NOFLAGS = 0x22,   /* small, type 0x4, length 2 */
	RES_IO = 0x47,            /* small, type 0x8, length 7 */
	RES_END_TAG = 0x79,       /* small, type 0xf, length 1 */
	RES_MEM32_FIXED = 0x86,   /* large, type 0x06 */
	RES_DWORD_ADDR = 0x87,    /* large, type 0x07 */
	RES_WORD_ADDR = 0x88,     /* large, type 0x08 */
	RES_EXT_IRQ = 0x89,       /* large, type 0x09 */
};

/* A PkgLength holds at most 28 bits (§20.2.4). */
#define AML_PKGLEN_MAX 0x0fffffffU

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	a->buf = buf;
	a->len = 0;
	a->cap = buf ? cap : 0;
	a->err = 0;
}

int aml_error(const struct aml *a)
{
	return a->err;
}

static void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

/* Insert n bytes at offset off, moving what follows: how PkgLength and BufferSize get in front of a body. */
static void aml_insert(struct aml *a, size_t off, const uint8_t *src, size_t n)
{
	if (a->err)
		return;
	if (off > a->len || n > a->cap - a->len) {
		aml_fail(a, -ENOSPC);
		return;
	}
	memmove(a->buf + off + n, a->buf + off, a->len - off);
	memcpy(a->buf + off, src, n);
	a->len += n;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	aml_insert(a, a->len, p, n);
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

/* Encode an Integer into out[9]; returns its length (§20.2.3 ComputationalData). */
static size_t aml_encode_integer(uint8_t *out, uint64_t v)
{
	size_t n;

	if (v == 0) {
		out[0] = AML_ZERO_OP;
		return 1;
	}
	if (v == 1) {
		out[0] = AML_ONE_OP;
		return 1;
	}
	/* OnesOp is avoided: its value depends on the table revision (32 or 64 bits). */
	if (v <= 0xff) {
		out[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= 0xffff) {
		out[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= 0xffffffffULL) {
		out[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		out[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	for (size_t i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + n;
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t enc[9];

	aml_bytes(a, enc, aml_encode_integer(enc, v));
}

void aml_string(struct aml *a, const char *s)
{
	size_t n = strlen(s);

	/* AsciiCharList is 0x01-0x7f (§20.2.3); a NUL terminates it. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] > 0x7f) {
			aml_fail(a, -EINVAL);
			return;
		}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, n + 1);
}

static bool eisa_letter(char c)
{
	return c >= 'A' && c <= 'Z';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint8_t enc[5];
	int h[4];
	unsigned vendor;

	if (strlen(id) != 7 || !eisa_letter(id[0]) || !eisa_letter(id[1]) || !eisa_letter(id[2])) {
		aml_fail(a, -EINVAL);
		return;
	}
	for (int i = 0; i < 4; i++)
		if ((h[i] = hex_val(id[3 + i])) < 0) {
			aml_fail(a, -EINVAL);
			return;
		}
	/* Letters are 5 bits each ('A' = 1); the 15-bit vendor id is stored big-endian. */
	vendor = ((unsigned)(id[0] - 0x40) << 10) | ((unsigned)(id[1] - 0x40) << 5) | (unsigned)(id[2] - 0x40);
	enc[0] = AML_DWORD_PREFIX;
	enc[1] = (uint8_t)(vendor >> 8);
	enc[2] = (uint8_t)vendor;
	enc[3] = (uint8_t)(h[0] << 4 | h[1]);
	enc[4] = (uint8_t)(h[2] << 4 | h[3]);
	aml_bytes(a, enc, sizeof(enc));
}

static bool name_lead(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
	return name_lead(c) || (c >= '0' && c <= '9');
}

void aml_namestring(struct aml *a, const char *path)
{
	uint8_t segs[255][4];
	size_t nseg = 0;
	const char *p = path;

	if (*p == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	}
	/* Parse every segment first, so a bad name emits nothing. */
	while (*p) {
		size_t n = 0;

		if (nseg == ARRAY_SIZE(segs) || !name_lead(*p))
			goto bad;
		while (p[n] && p[n] != '.') {
			if (n == 4 || !name_char(p[n]))
				goto bad;
			n++;
		}
		memset(segs[nseg], '_', 4);
		memcpy(segs[nseg], p, n);
		nseg++;
		p += n;
		if (*p == '.' && !*++p)
			goto bad;
	}
	if (nseg == 0) {
		aml_byte(a, AML_NULL_NAME);
	} else if (nseg == 2) {
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	} else if (nseg > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nseg);
	}
	aml_bytes(a, segs, nseg * 4);
	return;
bad:
	aml_fail(a, -EINVAL);
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, path);
}

aml_mark_t aml_scope_begin(struct aml *a, const char *path)
{
	aml_mark_t m;

	aml_byte(a, AML_SCOPE_OP);
	m = a->len;
	aml_namestring(a, path);
	return m;
}

aml_mark_t aml_device_begin(struct aml *a, const char *path)
{
	aml_mark_t m;

	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	m = a->len;
	aml_namestring(a, path);
	return m;
}

aml_mark_t aml_package_begin(struct aml *a, uint8_t nelems)
{
	aml_mark_t m;

	aml_byte(a, AML_PACKAGE_OP);
	m = a->len;
	aml_byte(a, nelems);
	return m;
}

/*
 * PkgLength (§20.2.4) counts itself plus the body. One byte holds up to 63;
 * otherwise bits 7:6 of the lead byte give 1-3 following bytes, bits 3:0 the
 * low nibble, and the following bytes the rest, least significant first.
 */
void aml_end(struct aml *a, aml_mark_t mark)
{
	uint8_t enc[4];
	size_t body, total, n;

	if (a->err)
		return;
	if (mark > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	body = a->len - mark;
	if (body + 1 <= 0x3f)
		n = 1;
	else if (body + 2 <= 0xfff)
		n = 2;
	else if (body + 3 <= 0xfffff)
		n = 3;
	else if (body + 4 <= AML_PKGLEN_MAX)
		n = 4;
	else {
		aml_fail(a, -ENOSPC);
		return;
	}
	total = body + n;
	if (n == 1) {
		enc[0] = (uint8_t)total;
	} else {
		enc[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (size_t i = 1; i < n; i++)
			enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	aml_insert(a, mark, enc, n);
}

aml_mark_t aml_restemplate_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	return a->len;
}

void aml_restemplate_end(struct aml *a, aml_mark_t mark)
{
	static const uint8_t end_tag[2] = { RES_END_TAG, 0x00 }; /* checksum 0: "treat as valid" (§6.4.2.9) */
	uint8_t enc[9];

	aml_bytes(a, end_tag, sizeof(end_tag));
	if (a->err)
		return;
	if (mark > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	/* DefBuffer := BufferOp PkgLength BufferSize ByteList (§20.2.5.4). */
	aml_insert(a, mark, enc, aml_encode_integer(enc, a->len - mark));
	aml_end(a, mark);
}

void aml_res_io(struct aml *a, uint16_t base, uint8_t len)
{
	/* Decode16 (bit 0 of the information byte): the device decodes all 16 address bits. */
	const uint8_t d[8] = {
		RES_IO, 0x01,
		(uint8_t)base, (uint8_t)(base >> 8),   /* range minimum base */
		(uint8_t)base, (uint8_t)(base >> 8),   /* range maximum base: fixed */
		0x01,                                   /* base alignment */
		len,
	};
	aml_bytes(a, d, sizeof(d));
}

void aml_res_irq_noflags(struct aml *a, uint8_t irq)
{
	if (irq > 15) {
		aml_fail(a, -EINVAL);
		return;
	}
	const uint16_t mask = (uint16_t)(1u << irq);
	const uint8_t d[3] = { RES_IRQ_NOFLAGS, (uint8_t)mask, (uint8_t)(mask >> 8) };
	aml_bytes(a, d, sizeof(d));
}

void aml_res_ext_irq(struct aml *a, uint32_t gsi, bool level_triggered)
{
	/* Flags: bit 0 consumer, bit 1 edge (1) / level (0), bit 2 active-low (0), bit 3 shared (0). */
	const uint8_t flags = (uint8_t)(0x01 | (level_triggered ? 0 : 0x02));
	const uint8_t d[9] = {
		RES_EXT_IRQ, 6, 0,      /* length of the data that follows */
		flags, 1,               /* one interrupt in the table */
		(uint8_t)gsi, (uint8_t)(gsi >> 8), (uint8_t)(gsi >> 16), (uint8_t)(gsi >> 24),
	};
	aml_bytes(a, d, sizeof(d));
}

void aml_res_memory32_fixed(struct aml *a, uint32_t base, uint32_t len, bool writable)
{
	const uint8_t d[12] = {
		RES_MEM32_FIXED, 9, 0,  /* length of the data that follows */
		writable ? 0x01 : 0x00,
		(uint8_t)base, (uint8_t)(base >> 8), (uint8_t)(base >> 16), (uint8_t)(base >> 24),
		(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24),
	};
	aml_bytes(a, d, sizeof(d));
}

/*
 * Address space descriptors (§6.4.3.5): resource type (0 memory, 1 I/O,
 * 2 bus number), general flags (bit 3 _MAF, bit 2 _MIF, bit 1 _DEC, bit 0
 * consumer), type-specific flags, then granularity, minimum, maximum,
 * translation offset and length, each 2 (Word) or 4 (DWord) bytes.
 */
#define ADDR_FLAGS_PRODUCER_FIXED 0x0c  /* producer, positive decode, min and max fixed */
#define ADDR_TYPE_MEMORY 0
#define ADDR_TYPE_BUS 2
#define ADDR_MEM_RW 0x01                /* _RW read-write, _MEM non-cacheable, AddressRangeMemory */

void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max)
{
	const uint16_t f[5] = { 0, min, max, 0, (uint16_t)(max - min + 1) };
	uint8_t d[16] = { RES_WORD_ADDR, 13, 0, ADDR_TYPE_BUS, ADDR_FLAGS_PRODUCER_FIXED, 0 };

	if (max < min) {
		aml_fail(a, -EINVAL);
		return;
	}
	for (int i = 0; i < 5; i++) {
		d[6 + 2 * i] = (uint8_t)f[i];
		d[7 + 2 * i] = (uint8_t)(f[i] >> 8);
	}
	aml_bytes(a, d, sizeof(d));
}

void aml_res_dword_memory(struct aml *a, uint32_t base, uint32_t len)
{
	uint8_t d[26] = { RES_DWORD_ADDR, 23, 0, ADDR_TYPE_MEMORY, ADDR_FLAGS_PRODUCER_FIXED, ADDR_MEM_RW };
	uint32_t f[5];

	if (len == 0 || (uint64_t)base + len > 0x100000000ULL) {
		aml_fail(a, -EINVAL);
		return;
	}
	f[0] = 0;
	f[1] = base;
	f[2] = base + len - 1;
	f[3] = 0;
	f[4] = len;
	for (int i = 0; i < 5; i++)
		for (int k = 0; k < 4; k++)
			d[6 + 4 * i + k] = (uint8_t)(f[i] >> (8 * k));
	aml_bytes(a, d, sizeof(d));
}
