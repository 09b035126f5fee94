/* Basic types shared by every kiln layer: guest addresses and small helpers. */
#ifndef KILN_TYPES_H
#define KILN_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A guest-physical address. It is an integer, never a pointer, so it cannot be
 * dereferenced by accident: the only way from a gpa_t to host memory is the
 * checked accessor vm_gpa()/mem_gpa() (core/memory.h).
 */
typedef uint64_t gpa_t;

#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define __must_check __attribute__((warn_unused_result))
#define __unused __attribute__((unused))
#define __packed __attribute__((packed))

#endif
