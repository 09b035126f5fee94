/* Address-range I/O bus: sorted, non-overlapping ranges; dispatch by binary search. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "core/bus.h"

void bus_init(struct bus *b, const char *name, uint8_t unclaimed_fill)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	b->unclaimed_fill = unclaimed_fill;
	atomic_init(&b->unclaimed_reads, 0);
	atomic_init(&b->unclaimed_writes, 0);
}

void bus_destroy(struct bus *b)
{
	free(b->ranges);
	b->ranges = NULL;
	b->n = b->cap = 0;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const char *name, bus_io_fn fn, void *opaque)
{
	uint64_t last;
	size_t pos;

	if (len == 0 || !fn || __builtin_add_overflow(base, len - 1, &last))
		return -EINVAL;
	/* First range whose base is above ours: the insertion point. */
	for (pos = 0; pos < b->n && b->ranges[pos].base <= base; pos++)
		;
	if (pos > 0) {
		const struct bus_range *prev = &b->ranges[pos - 1];
		if (prev->base + (prev->len - 1) >= base)
			return -EEXIST;
	}
	if (pos < b->n && b->ranges[pos].base <= last)
		return -EEXIST;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *r = realloc(b->ranges, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		b->ranges = r;
		b->cap = cap;
	}
	memmove(&b->ranges[pos + 1], &b->ranges[pos], (b->n - pos) * sizeof(*b->ranges));
	b->ranges[pos] = (struct bus_range){ base, len, name, fn, opaque };
	b->n++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->ranges[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct bus_range *r = len ? bus_find(b, addr) : NULL;

	/* The whole access must fall in one device's range. */
	if (r && len - 1 <= r->len - 1 - (addr - r->base)) {
		r->fn(r->opaque, addr - r->base, data, len, is_write);
		return true;
	}
	if (is_write) {
		atomic_fetch_add_explicit(&b->unclaimed_writes, 1, memory_order_relaxed);
	} else {
		memset(data, b->unclaimed_fill, len);
		atomic_fetch_add_explicit(&b->unclaimed_reads, 1, memory_order_relaxed);
	}
	return false;
}
