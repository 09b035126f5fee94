/* Logging for kiln: one line per message on stderr ("kiln: ..."), or to a log file in Firecracker's format. */
#ifndef KILN_LOG_H
#define KILN_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/* LOG_OFF as a threshold drops every message (the API's Logger level "Off"). */
enum log_level { LOG_OFF = -1, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped; set from --verbose / PUT /logger. */
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, with the source position (shown with the logger's show_log_origin, used by its module filter). */
void log_at(enum log_level lvl, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_err(...) log_at(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

/*
 * Send log lines to fd instead of stderr (PUT /logger; fd -1: back to
 * stderr), as "TIMESTAMP [ID:THREAD(:LEVEL)(:FILE:LINE)] message" (the format
 * of Firecracker's logger). module, if not NULL, keeps only lines from source
 * files under src/MODULE, "::" standing for "/" ("core", "api", "core::vcpu").
 * Errors are also printed on stderr. kiln owns fd from here and closes the
 * previous one. 0 or -ENOMEM.
 */
int log_set_sink(int fd, const char *instance_id, bool show_level, bool show_origin,
		 const char *module);

/* The last LOG_ERROR message of the calling thread ("" if none): API replies quote it. */
const char *log_last_error(void);
void log_clear_last_error(void);

#endif
