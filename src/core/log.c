/* Logging: "kiln: " prefixed lines on stderr, or timestamped lines to the API's log file, filtered by one level. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"

/*
 * The one piece of process-wide state outside struct vm: the log threshold and
 * destination are properties of the kiln process (its command line, its API
 * logger), not of a VM.
 */
static _Atomic int log_level = LOG_WARN;

struct log_sink {
	pthread_mutex_t lock;      /* the fields below; one write per line under it */
	int fd;                    /* -1: stderr in kiln's own format */
	char id[65];
	bool show_level, show_origin;
	char module[300];          /* "src/..." prefix, "" for all */
};
static struct log_sink sink = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

/* Per thread: an API reply can then quote why a boot it asked for failed. */
static _Thread_local char last_error[256];

void log_set_level(enum log_level lvl) { atomic_store(&log_level, (int)lvl); }
enum log_level log_get_level(void) { return (enum log_level)atomic_load(&log_level); }

const char *log_last_error(void) { return last_error; }
void log_clear_last_error(void) { last_error[0] = '\0'; }

int log_set_sink(int fd, const char *instance_id, bool show_level, bool show_origin,
		 const char *module)
{
	int old;

	pthread_mutex_lock(&sink.lock);
	old = sink.fd;
	sink.fd = fd;
	snprintf(sink.id, sizeof(sink.id), "%s", instance_id ? instance_id : "anonymous-instance");
	sink.show_level = show_level;
	sink.show_origin = show_origin;
	sink.module[0] = '\0';
	if (module && *module) {
		size_t n = (size_t)snprintf(sink.module, sizeof(sink.module), "src/");
		for (const char *p = module; *p && n + 1 < sizeof(sink.module); p++) {
			if (p[0] == ':' && p[1] == ':') {
				sink.module[n++] = '/';
				p++;
			} else {
				sink.module[n++] = *p;
			}
		}
		sink.module[n] = '\0';
	}
	pthread_mutex_unlock(&sink.lock);
	if (old >= 0 && old != fd)
		close(old);
	return 0;
}

static const char *level_name(enum log_level lvl)
{
	switch (lvl) {
	case LOG_ERROR: return "ERROR";
	case LOG_WARN: return "WARN";
	case LOG_INFO: return "INFO";
	case LOG_DEBUG: return "DEBUG";
	case LOG_OFF: break;
	}
	return "?";
}

static void vlog(enum log_level lvl, const char *file, int line, const char *fmt, va_list ap)
{
	char buf[1024], out[1400], thread[16] = "?", origin[96] = "", ts[40];
	struct timespec now;
	struct tm tm;
	int n;

	if ((int)lvl > atomic_load(&log_level))
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (lvl == LOG_ERROR) {
		size_t len = strnlen(buf, sizeof(last_error) - 1);

		memcpy(last_error, buf, len);
		last_error[len] = '\0';
	}
	pthread_mutex_lock(&sink.lock);
	if (sink.fd < 0) {
		pthread_mutex_unlock(&sink.lock);
		/* One write per line so lines from vCPU threads do not interleave. */
		fprintf(stderr, "kiln: %s\n", buf);
		return;
	}
	/* Errors stay visible on stderr too: a fatal one must not hide in a file nobody reads. */
	if (lvl == LOG_ERROR)
		fprintf(stderr, "kiln: %s\n", buf);
	if (sink.module[0] && (!file || strncmp(file, sink.module, strlen(sink.module)))) {
		pthread_mutex_unlock(&sink.lock);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_getname_np(pthread_self(), thread, sizeof(thread));
	if (sink.show_origin && file)
		snprintf(origin, sizeof(origin), ":%s:%d", file, line);
	n = snprintf(out, sizeof(out), "%s.%09ld [%s:%s%s%s%s] %s\n", ts, now.tv_nsec, sink.id,
		     thread, sink.show_level ? ":" : "", sink.show_level ? level_name(lvl) : "",
		     origin, buf);
	if (n > (int)sizeof(out) - 1) {
		n = (int)sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	/* The file may be a FIFO opened non-blocking: a full one loses the line, never stalls a vCPU. */
	if (write(sink.fd, out, (size_t)n) < 0) {
		/* Nowhere left to report it. */
	}
	pthread_mutex_unlock(&sink.lock);
}

void log_at(enum log_level lvl, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, file, line, fmt, ap);
	va_end(ap);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, NULL, 0, fmt, ap);
	va_end(ap);
}
