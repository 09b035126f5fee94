/* Address-range I/O bus for port I/O and MMIO: registration and dispatch. */
#ifndef KILN_BUS_H
#define KILN_BUS_H

#include <stdatomic.h>
#include "core/types.h"

/*
 * A device callback. `offset` is relative to the registered base; `data` is
 * `len` bytes (1, 2, 4 or 8) to fill on a read or to consume on a write.
 * Runs on a vCPU thread: devices shared between vCPUs lock themselves.
 */
typedef void (*bus_io_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	const char *name;
	bus_io_fn fn;
	void *opaque;
};

struct bus {
	const char *name;      /* "pio" or "mmio", for messages */
	uint8_t unclaimed_fill;/* byte returned by unclaimed reads: 0xff PIO, 0 MMIO */
	struct bus_range *ranges; /* sorted by base, non-overlapping */
	size_t n, cap;
	atomic_uint_fast64_t unclaimed_reads;
	atomic_uint_fast64_t unclaimed_writes;
};

void bus_init(struct bus *b, const char *name, uint8_t unclaimed_fill);
void bus_destroy(struct bus *b);

/*
 * Register [base, base+len). Registration happens before vCPUs start; the
 * range list is read-only afterwards, so dispatch takes no lock.
 * Returns 0, -EINVAL (len 0 or wrap), -EEXIST (overlap) or -ENOMEM.
 */
int __must_check bus_register(struct bus *b, uint64_t base, uint64_t len, const char *name,
			      bus_io_fn fn, void *opaque);

/* The range containing addr, or NULL. */
const struct bus_range *bus_find(const struct bus *b, uint64_t addr);

/*
 * Dispatch one access. An access that no range wholly contains is unclaimed:
 * reads return unclaimed_fill bytes, writes are dropped; both are counted.
 * Returns true if a device handled it.
 */
bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
