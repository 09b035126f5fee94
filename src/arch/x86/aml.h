/* A tiny AML byte-code builder: just enough to write kiln's DSDT (names, devices, resources, \_S5). */
#ifndef KILN_X86_AML_H
#define KILN_X86_AML_H

#include "core/types.h"

/*
 * AML is emitted into a caller-owned buffer (for the DSDT: straight into the
 * guest's table window, obtained with mem_gpa()). Errors are sticky: the first
 * one (-ENOSPC when the buffer is full, -EINVAL for a malformed name or EISA
 * id) is kept in `err`, every later call is a no-op, and the caller checks
 * aml_error() once at the end. This keeps the table code free of per-call
 * error plumbing without ever writing past `cap`.
 */
struct aml {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int err;
};

/* A position returned by a *_begin() call, to hand to the matching *_end(). */
typedef size_t aml_mark_t;

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
/* 0 or the first error (-ENOSPC, -EINVAL). */
int aml_error(const struct aml *a);

/* Raw bytes (opcodes the helpers below do not cover). */
void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);

/*
 * NameString (ACPI 6.4 §20.2.2): optional leading '\' (root), then 1..255
 * segments separated by '.'; a segment of 1-4 chars is padded with '_'.
 */
void aml_namestring(struct aml *a, const char *path);

/* Integer (§20.2.3) in the shortest encoding: Zero, One, Ones or a prefixed constant. */
void aml_integer(struct aml *a, uint64_t v);
/* String (§20.2.3): StringPrefix, ASCII bytes 0x01-0x7f, NUL. */
void aml_string(struct aml *a, const char *s);
/*
 * A compressed EISA id such as "PNP0501" as a DWord integer (§6.1.5 _HID):
 * three letters of 5 bits each, then four hex digits, in byte order as ASL's
 * EISAID() produces it.
 */
void aml_eisaid(struct aml *a, const char *id);

/* Name(path, <value>): emit NameOp and the name; the caller then emits the value. */
void aml_name(struct aml *a, const char *path);

/* Scope(path) { ... } and Device(path) { ... } (§20.2.5.1, §20.2.5.2). */
aml_mark_t aml_scope_begin(struct aml *a, const char *path);
aml_mark_t aml_device_begin(struct aml *a, const char *path);
/* Package(n) { ... } (§20.2.5.4 DefPackage): the caller emits n data objects. */
aml_mark_t aml_package_begin(struct aml *a, uint8_t nelems);
/* Close a Scope, Device or Package: writes its PkgLength (§20.2.4). */
void aml_end(struct aml *a, aml_mark_t mark);

/*
 * ResourceTemplate() { ... }: a Buffer (§20.2.5.4 DefBuffer) of resource
 * descriptors (§6.4) closed by an End Tag. Use as the value of Name(_CRS, ...).
 */
aml_mark_t aml_restemplate_begin(struct aml *a);
void aml_restemplate_end(struct aml *a, aml_mark_t mark);

/* IO(Decode16, base, base, 1, len): a fixed-base I/O Port Descriptor (§6.4.2.5). */
void aml_res_io(struct aml *a, uint16_t base, uint8_t len);
/* IRQNoFlags() { irq }: ISA edge, active-high, exclusive (§6.4.2.1). */
void aml_res_irq_noflags(struct aml *a, uint8_t irq);
/* Interrupt(ResourceConsumer, edge/level, ActiveHigh, Exclusive) { gsi } (§6.4.3.6). */
void aml_res_ext_irq(struct aml *a, uint32_t gsi, bool level_triggered);
/* Memory32Fixed(ReadWrite|ReadOnly, base, len) (§6.4.3.4). */
void aml_res_memory32_fixed(struct aml *a, uint32_t base, uint32_t len, bool writable);
/*
 * WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max,
 * 0, max-min+1): the bus numbers a host bridge decodes (§6.4.3.5.3).
 */
void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max);
/*
 * DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable,
 * ReadWrite, 0, base, base+len-1, 0, len): a memory window a host bridge
 * forwards to its devices (§6.4.3.5.2). len must be non-zero and the window
 * must end below 4 GiB (-EINVAL otherwise).
 */
void aml_res_dword_memory(struct aml *a, uint32_t base, uint32_t len);

#endif
