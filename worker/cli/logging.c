/*
 * logging.c -- leveled, timestamped, rate-limitable log lines (logging.h).
 *
 * Each line is formatted into one buffer and written with one fputs, so
 * lines of a process never interleave mid-line.
 */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "cli/logging.h"
#include "mv_common.h"

static const char *const  level_names[] = { "error", "warn", "info",
                                            "debug" };


int
mvw_log_level_from_name(const char *name, mvw_log_level_t *level)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (mvw_log_level_t) i;
            return 0;
        }
    }
    return -1;
}


static void
log_line(const mvw_log_t *lg, mvw_log_level_t level, uint64_t suppressed,
    const char *fmt, va_list ap)
{
    char        line[2048];
    int64_t     ms = mv_clock_realtime_ms();
    time_t      sec = (time_t) (ms / 1000);
    struct tm   tm;
    size_t      n;
    int         w;

    gmtime_r(&sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    w = snprintf(line + n, sizeof(line) - n, ".%03dZ %s ",
                 (int) (ms % 1000), level_names[level]);
    n += (size_t) w;
    w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    n = w < 0 ? n : n + (size_t) w;
    if (n > sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }
    if (suppressed > 0) {
        w = snprintf(line + n, sizeof(line) - n,
                     " (%llu similar suppressed)",
                     (unsigned long long) suppressed);
        n = w < 0 ? n : n + (size_t) w;
        if (n > sizeof(line) - 2) {
            n = sizeof(line) - 2;
        }
    }
    line[n++] = '\n';
    line[n] = '\0';

    fputs(line, lg->out);
    fflush(lg->out);
}


void
mvw_log(const mvw_log_t *lg, mvw_log_level_t level, const char *fmt, ...)
{
    va_list  ap;

    if (level > lg->level) {
        return;
    }
    va_start(ap, fmt);
    log_line(lg, level, 0, fmt, ap);
    va_end(ap);
}


void
mvw_log_every(const mvw_log_t *lg, mvw_log_limit_t *lim,
    int64_t interval_ms, mvw_log_level_t level, const char *fmt, ...)
{
    va_list  ap;
    int64_t  now;

    if (level > lg->level) {
        return;
    }
    now = mv_clock_monotonic_us() / 1000;
    if (lim->last_ms != 0 && now - lim->last_ms < interval_ms) {
        lim->suppressed++;
        return;
    }
    va_start(ap, fmt);
    log_line(lg, level, lim->suppressed, fmt, ap);
    va_end(ap);
    lim->last_ms = now;
    lim->suppressed = 0;
}
