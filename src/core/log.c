/* Logging: "kiln: " prefixed lines on stderr, filtered by one process-wide level. */
#include <stdatomic.h>
#include <stdio.h>
#include "core/log.h"

/*
 * The one piece of process-wide state outside struct vm: the log threshold is
 * a property of the kiln process (its command line), not of a VM.
 */
static _Atomic int log_level = LOG_WARN;

void log_set_level(enum log_level lvl) { atomic_store(&log_level, (int)lvl); }
enum log_level log_get_level(void) { return (enum log_level)atomic_load(&log_level); }

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if ((int)lvl > atomic_load(&log_level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* One write per line so lines from vCPU threads do not interleave. */
	fprintf(stderr, "kiln: %s\n", buf);
}
