/*
 * rfc3339.c -- date-times to unix milliseconds and back (see rfc3339.h for
 * what is accepted and why).
 *
 * The parser reads the fixed-width part by position, then the optional
 * fraction and the zone, and checks every field against its range before
 * any arithmetic, so each refusal names what is wrong.  Days are counted
 * with Howard Hinnant's days_from_civil / civil_from_days (proleptic
 * Gregorian, exact for every year here), in 64-bit integers throughout.
 */
#include <stdio.h>
#include <string.h>

#include "rfc3339.h"


#define MS_PER_DAY  INT64_C(86400000)

#define SHAPE  "not an RFC 3339 date-time " \
               "(YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm))"


/* n decimal digits at s as a number, or -1 when one is not a digit. */
static int
read_digits(const char *s, size_t n)
{
    int     v = 0;
    size_t  i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }

    return v;
}


static int
is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}


static int
days_in_month(int y, int m)
{
    static const int  days[12] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    return (m == 2 && is_leap(y)) ? 29 : days[m - 1];
}


/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    int64_t  era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


/* The inverse of days_from_civil. */
static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t  era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = (int) (yoe + era * 400 + (*m <= 2));
}


int
mv_time_parse(const char *s, size_t len, int64_t *ms, mv_err_t *err)
{
    int      y, mo, d, h, mi, sec, frac = 0, oh, om, sign = 0, scale = 100;
    size_t   i, start;
    int64_t  t;

    if (s == NULL || ms == NULL) {
        return mv_err_set(err, "no date-time");
    }

    /* YYYY-MM-DD?HH:MM:SS */
    if (len < 19 || s[4] != '-' || s[7] != '-' || s[13] != ':'
        || s[16] != ':' || (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
    {
        return mv_err_set(err, SHAPE);
    }
    y = read_digits(s, 4);
    mo = read_digits(s + 5, 2);
    d = read_digits(s + 8, 2);
    h = read_digits(s + 11, 2);
    mi = read_digits(s + 14, 2);
    sec = read_digits(s + 17, 2);
    if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0) {
        return mv_err_set(err, SHAPE);
    }
    if (y < 1) {
        return mv_err_set(err, "year 0000 out of range (0001..9999)");
    }
    if (mo < 1 || mo > 12) {
        return mv_err_set(err, "month %02d out of range", mo);
    }
    if (d < 1 || d > days_in_month(y, mo)) {
        return mv_err_set(err, "day %02d out of range for %04d-%02d",
                          d, y, mo);
    }
    if (h > 23) {
        return mv_err_set(err, "hour %02d out of range", h);
    }
    if (mi > 59) {
        return mv_err_set(err, "minute %02d out of range", mi);
    }
    if (sec > 60) {
        return mv_err_set(err, "second %02d out of range", sec);
    }

    /* .fraction: one digit or more, truncated to milliseconds */
    i = 19;
    if (i < len && s[i] == '.') {
        start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            frac += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start) {
            return mv_err_set(err, "no digits after the decimal point");
        }
    }

    /* a leap second: the last millisecond of its minute */
    if (sec == 60) {
        sec = 59;
        frac = 999;
    }

    /* Z, or +hh:mm / -hh:mm */
    if (i >= len) {
        return mv_err_set(err, "missing time zone (Z or +hh:mm)");
    }
    if (s[i] == 'Z' || s[i] == 'z') {
        oh = 0;
        om = 0;
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        if (len - i < 6 || s[i + 3] != ':'
            || (oh = read_digits(s + i + 1, 2)) < 0
            || (om = read_digits(s + i + 4, 2)) < 0)
        {
            return mv_err_set(err, "bad time zone offset (want +hh:mm)");
        }
        if (oh > 23 || om > 59) {
            return mv_err_set(err, "time zone offset %02d:%02d out of range",
                              oh, om);
        }
        sign = s[i] == '+' ? 1 : -1;
        i += 6;
    } else {
        return mv_err_set(err, "missing time zone (Z or +hh:mm)");
    }
    if (i != len) {
        return mv_err_set(err, "unexpected characters after the time zone");
    }

    t = days_from_civil(y, mo, d) * MS_PER_DAY
        + ((int64_t) h * 3600 + mi * 60 + sec) * 1000 + frac
        - (int64_t) sign * ((int64_t) oh * 3600 + om * 60) * 1000;

    if (t < MV_TIME_MIN_MS || t > MV_TIME_MAX_MS) {
        return mv_err_set(err, "the instant, offset applied, is outside "
                          "years 0001..9999");
    }

    *ms = t;
    return MV_OK;
}


static char *
put_digits(char *p, int v, int n)
{
    int  i;

    for (i = n - 1; i >= 0; i--) {
        p[i] = (char) ('0' + v % 10);
        v /= 10;
    }

    return p + n;
}


char *
mv_time_format(int64_t ms, char *buf, size_t len)
{
    int64_t  days, rem;
    int      y, mo, d;
    char    *p = buf;

    if (buf == NULL || len < MV_TIME_LEN + 1) {
        return NULL;
    }

    if (ms < MV_TIME_MIN_MS) {
        ms = MV_TIME_MIN_MS;
    } else if (ms > MV_TIME_MAX_MS) {
        ms = MV_TIME_MAX_MS;
    }

    /* floor division: times before 1970 are negative */
    days = ms / MS_PER_DAY;
    rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    civil_from_days(days, &y, &mo, &d);

    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, mo, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, (int) (rem / 3600000), 2);
    *p++ = ':';
    p = put_digits(p, (int) (rem / 60000 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (int) (rem / 1000 % 60), 2);
    *p++ = '.';
    p = put_digits(p, (int) (rem % 1000), 3);
    *p++ = 'Z';
    *p = '\0';

    return buf;
}
