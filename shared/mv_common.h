/*
 * mv_common.h -- conventions shared by every part of libmilvuso.
 *
 * libmilvuso is plain C11 with no nginx headers and no global mutable state:
 * the nginx module, the worker, the tests and the benchmarks all link it as an
 * ordinary static library.  Every fallible function follows one convention,
 * the one Redis and hiredis use: it returns MV_OK or MV_ERR (or a pointer /
 * NULL) and, when the caller passes a non-NULL mv_err_t, fills it with a
 * precise, human-readable reason.  Nothing here prints or logs.
 */
#ifndef MV_COMMON_H
#define MV_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MV_OK   0
#define MV_ERR  (-1)

/*
 * Limits every path shares (HTTP bodies, catalogue files, datasets, the
 * worker's configuration, the nginx directives): one number, one name.
 */
#define MV_DIM_MAX        4096     /* longest embedding (vector) accepted */
#define MV_SEARCH_K_MAX   10000    /* largest k or beam (ef) a search takes */

typedef struct mv_err {
    char msg[256];
} mv_err_t;

/*
 * Formats a reason into err (printf style).  err may be NULL, in which case
 * nothing happens.  Always returns MV_ERR so callers can write
 * `return mv_err_set(err, "...")`.
 */
int mv_err_set(mv_err_t *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Wall-clock time: unix milliseconds (CLOCK_REALTIME). */
int64_t mv_clock_realtime_ms(void);

/* Monotonic time in microseconds (CLOCK_MONOTONIC), for durations only. */
int64_t mv_clock_monotonic_us(void);

/*
 * A random 64-bit number from the kernel (getrandom), or, when it has none
 * to give without blocking, a mix of the clock, the pid and an address:
 * for hash seeds and temp-file names, never for cryptography.
 */
uint64_t mv_random_u64(void);

/* Rounds n up to a multiple of a (a is a power of two). */
static inline size_t
mv_align_up(size_t n, size_t a)
{
    return (n + a - 1) & ~(a - 1);
}

#ifdef __cplusplus
}
#endif

#endif /* MV_COMMON_H */
