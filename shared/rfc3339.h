/*
 * rfc3339.h -- the one reader and writer of date-times in Milvuso.
 *
 * Every path that takes a time from the outside (POST /actions "timestamp",
 * POST /items and catalogue files "created_at", stream records, datasets)
 * reads it here, so a date means the same instant wherever it arrives.
 *
 * Accepted (RFC 3339 section 5.6, with its permitted variations):
 *
 *   YYYY-MM-DD (T|t|space) HH:MM:SS [.fraction] (Z|z|+hh:mm|-hh:mm)
 *
 *   - years 0001 to 9999; the instant, offset applied, must stay within
 *     0001-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z;
 *   - a fraction of one digit or more; digits past the millisecond are
 *     truncated (toward the earlier instant);
 *   - a leap second (second 60, at any minute: the parser has no leap-second
 *     table) is read as the last millisecond of that minute, hh:mm:59.999,
 *     so times stay in order and a leap second never jumps into the next
 *     minute or day;
 *   - everything else is refused with a reason: a missing zone, a two-digit
 *     year, a day past the month's end, trailing bytes.
 *
 * Written: always "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes), which parses back
 * to the same milliseconds.  No locale, no TZ variable, no mktime: the
 * calendar arithmetic is Howard Hinnant's days-from-civil on integers.
 */
#ifndef MV_RFC3339_H
#define MV_RFC3339_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MV_TIME_LEN     24                      /* "....-..-..T..:..:.....Z" */
#define MV_TIME_MIN_MS  INT64_C(-62135596800000)  /* 0001-01-01T00:00:00Z */
#define MV_TIME_MAX_MS  INT64_C(253402300799999)  /* 9999-12-31T23:59:59.999Z */

/*
 * Converts the date-time s[0..len) (no terminator needed) to unix
 * milliseconds in *ms.  Returns MV_OK, or MV_ERR with the reason in err
 * (which may be NULL) and *ms untouched.
 */
int mv_time_parse(const char *s, size_t len, int64_t *ms, mv_err_t *err);

/*
 * Writes ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" and a NUL into buf (len >=
 * MV_TIME_LEN + 1) and returns buf; NULL when buf is NULL or too small.  ms
 * outside MV_TIME_MIN_MS..MV_TIME_MAX_MS is clamped into it, so the text
 * always parses back.
 */
char *mv_time_format(int64_t ms, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* MV_RFC3339_H */
