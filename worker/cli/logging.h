/*
 * logging.h -- the worker's log: one line per message on a stream (stderr
 * by default), prefixed with a UTC timestamp in milliseconds and the level:
 *
 *   2026-11-24T06:40:00.123Z info published generation 7 (...)
 *
 * Levels error < warn < info < debug; messages above the configured level
 * are dropped before formatting.  A message that repeats a problem (the
 * same I/O error every poll) is rate-limited by its caller with
 * mvw_log_every(), which lets one through per interval and counts the
 * rest, so a broken disk does not flood the log.
 *
 * No global state: the logger is a value the daemon owns and passes on.
 */
#ifndef MVW_LOGGING_H
#define MVW_LOGGING_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    MVW_LOG_ERROR = 0,
    MVW_LOG_WARN = 1,
    MVW_LOG_INFO = 2,
    MVW_LOG_DEBUG = 3
} mvw_log_level_t;

typedef struct mvw_log {
    FILE             *out;
    mvw_log_level_t   level;
} mvw_log_t;

/* A per-call-site limiter for mvw_log_every. */
typedef struct mvw_log_limit {
    int64_t   last_ms;          /* when one was last let through */
    uint64_t  suppressed;       /* dropped since */
} mvw_log_limit_t;

/* Level from "error" | "warn" | "info" | "debug": MV_OK or MV_ERR. */
int mvw_log_level_from_name(const char *name, mvw_log_level_t *level);

/* Writes one line if level <= lg->level, then flushes. */
void mvw_log(const mvw_log_t *lg, mvw_log_level_t level, const char *fmt,
    ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/*
 * Like mvw_log, but at most once per interval_ms for this limiter; the
 * line that gets through says how many were suppressed since the last one.
 */
void mvw_log_every(const mvw_log_t *lg, mvw_log_limit_t *lim,
    int64_t interval_ms, mvw_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

#endif /* MVW_LOGGING_H */
