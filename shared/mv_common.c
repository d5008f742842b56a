/*
 * mv_common.c -- the error convention of libmilvuso (see mv_common.h).
 */
#include <stdarg.h>
#include <stdio.h>

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
