/*
 * log.h - one line per event, JSON or text (LOG_FORMAT), to stderr.
 *
 * Fields are typed key/value pairs so the same call renders as
 * {"msg":"request","status":200} or `request status=200`. A thread that
 * runs a loop buffers its lines and the loop flushes them once per
 * iteration: an access log costs one write per batch, not per request.
 * Each flush writes whole lines only, so threads never interleave mid-line.
 */
#ifndef TRIREME_KERNEL_LOG_H
#define TRIREME_KERNEL_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };
enum log_type { LOG_T_STR = 1, LOG_T_STRN, LOG_T_INT, LOG_T_DBL, LOG_T_BOOL, LOG_T_JSON };

#define L_STR(k, v)     (k), LOG_T_STR, (const char *)(v)
#define L_STRN(k, p, n) (k), LOG_T_STRN, (const char *)(p), (int)(n)
#define L_INT(k, v)     (k), LOG_T_INT, (long long)(v)
#define L_DBL(k, v)     (k), LOG_T_DBL, (double)(v)
#define L_BOOL(k, v)    (k), LOG_T_BOOL, (int)(v)
#define L_JSON(k, v)    (k), LOG_T_JSON, (const char *)(v) /* already-encoded JSON */

/* Set once at start-up, before any thread is started. */
void log_setup(enum log_level level, bool json);
int log_level_parse(const char *s); /* -1 when unknown */
bool log_enabled(enum log_level level);

/* log_event(level, msg, key, type, value..., NULL) - prefer the LOG macro. */
void log_event(enum log_level level, const char *msg, ...);
#define LOG(level, msg, ...)                                                                       \
    do {                                                                                           \
        if (log_enabled(level))                                                                    \
            log_event((level), (msg), ##__VA_ARGS__, (const char *)0);                             \
    } while (0)

/* Loop threads: buffer lines until log_flush() (called by the loop). */
void log_buffered(bool on);
void log_flush(void);

#endif
