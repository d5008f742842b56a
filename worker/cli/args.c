/*
 * args.c -- strict number parsing for command-line options (see worker.h).
 *
 * strtoull alone accepts "-1" (wrapping it), leading spaces and "+5";
 * options are operator input, so only plain digits are taken.
 */
#include <errno.h>
#include <stdlib.h>

#include "worker.h"


int
mvw_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    unsigned long long  v;
    char               *end;

    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = (uint64_t) v;

    return 0;
}


int
mvw_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t  v;

    if (mvw_parse_u64(s, min, max, &v) != 0) {
        return -1;
    }
    *out = (uint32_t) v;

    return 0;
}


int
mvw_usage_error(const char *cmd, void (*usage)(FILE *out), const char *fmt,
    const char *arg)
{
    fprintf(stderr, "milvuso-worker %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n");
    usage(stderr);
    return MVW_EXIT_USAGE;
}
