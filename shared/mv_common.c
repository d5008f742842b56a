/*
 * mv_common.c -- the error convention of libmilvuso, the two clocks every
 * part reads, and the random numbers for seeds and temp names (see
 * mv_common.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "mv_common.h"


int
mv_err_set(mv_err_t *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return MV_ERR;
    }

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);

    return MV_ERR;
}


int64_t
mv_clock_realtime_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int64_t
mv_clock_monotonic_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


uint64_t
mv_random_u64(void)
{
    uint64_t         r = 0;
    struct timespec  ts;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t) sizeof(r)) {
        return r;
    }

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((uint64_t) ts.tv_sec * 1000000007u) ^ (uint64_t) ts.tv_nsec
           ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) &r;
}
