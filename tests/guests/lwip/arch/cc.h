/* lwIP's architecture header for kiln's freestanding test guests: types from the compiler, diagnostics on COM1, the TSC as randomness. */
#ifndef KILN_LWIP_ARCH_CC_H
#define KILN_LWIP_ARCH_CC_H

#include "lib.h"

/* No C library: lwIP's own ctype and byte-order helpers, not <ctype.h> (glibc's needs its locale tables). */
#define LWIP_NO_CTYPE_H 1

/* lwIP's debug output and assertions go to the guest console; an assertion ends the test. */
#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) fail("lwIP assertion \"%s\" at %s:%d", x, __FILE__, __LINE__)

/*
 * DHCP transaction ids, TCP initial sequence numbers and local ports. Not
 * cryptographic, which a test guest does not need; the low TSC bits differ
 * from run to run, so two runs do not reuse ports the host may still hold.
 */
#define LWIP_RAND() ((u32_t)(rdtsc() * 2654435761u >> 7))

#endif
