/* Shared cmocka fixture for unit tests that need guest RAM: a memfd guest_mem of MEM_FIXTURE_SIZE, and byte helpers. */
#ifndef KILN_MEM_FIXTURE_H
#define KILN_MEM_FIXTURE_H

#include <stdlib.h>
#include <string.h>
#include "core/memory.h"

#define MEM_FIXTURE_SIZE (64 * MiB)

static inline int mem_setup(void **state)
{
	struct guest_mem *m = calloc(1, sizeof(*m));

	if (!m || mem_init(m, MEM_FIXTURE_SIZE, MEM_BACKING_MEMFD)) {
		free(m);
		return -1;
	}
	*state = m;
	return 0;
}

static inline int mem_teardown(void **state)
{
	struct guest_mem *m = *state;

	mem_destroy(m);
	free(m);
	return 0;
}

static inline void put16(uint8_t *b, size_t off, uint16_t v) { memcpy(b + off, &v, 2); }
static inline void put32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }
static inline void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }

#endif
