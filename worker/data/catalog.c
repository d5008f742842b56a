/*
 * catalog.c -- JSONL item/user line parsers, RFC 3339 conversion and the
 * in-memory catalogue (see catalog.h for the accepted shapes).
 *
 * Parsing a line: the bytes are checked for things cJSON would silently
 * accept but we must not (raw NUL bytes and "\u0000" escapes, which would
 * truncate an id to a different, valid id), copied into a NUL-terminated
 * buffer (so cJSON never reads past the caller's bytes), parsed with cJSON
 * requiring nothing but whitespace after the value, then every field is
 * checked by name.  Each check has its own message, because the message is
 * what an operator sees as "FILE:LINE: reason".  Numbers are range-checked
 * as doubles before any conversion to float, so nothing out of range is ever
 * converted (that would be undefined behaviour).
 *
 * Dates are computed with Howard Hinnant's days-from-civil algorithm on
 * integers: no mktime/timegm, no locale, no TZ.
 *
 * The catalogue itself and the file loaders are in catalog_store.c.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "catalog.h"

#define MS_PER_DAY     86400000LL
#define MIN_MS         (-62135596800000LL)     /* 0001-01-01T00:00:00Z */
#define MAX_MS         253402300799999LL       /* 9999-12-31T23:59:59.999Z */


/* ---- dates --------------------------------------------------------------- */

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t   era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t   era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (unsigned) (doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned) (mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}


static int
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}


static unsigned
days_in_month(int64_t y, unsigned m)
{
    static const unsigned char  dm[12] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}


/* Reads n decimal digits at s; -1 when one is not a digit. */
static int
read_digits(const char *s, size_t n)
{
    int  v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }

    return v;
}


int
mvw_parse_rfc3339(const char *s, size_t len, int64_t *ms, mv_err_t *err)
{
    int      year, mon, day, hour, min, sec, oh, om;
    int64_t  frac_ms = 0, offset_min = 0, t;
    size_t   i;

    if (len < 19 || s[4] != '-' || s[7] != '-'
        || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
    {
        return mv_err_set(err, "not an RFC 3339 date-time "
                          "(YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm))");
    }

    year = read_digits(s, 4);
    mon = read_digits(s + 5, 2);
    day = read_digits(s + 8, 2);
    hour = read_digits(s + 11, 2);
    min = read_digits(s + 14, 2);
    sec = read_digits(s + 17, 2);
    if (year < 0 || mon < 0 || day < 0 || hour < 0 || min < 0 || sec < 0) {
        return mv_err_set(err, "not an RFC 3339 date-time "
                          "(YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm))");
    }
    if (year < 1) {
        return mv_err_set(err, "year 0000 out of range");
    }
    if (mon < 1 || mon > 12) {
        return mv_err_set(err, "month %02d out of range", mon);
    }
    if (day < 1 || (unsigned) day > days_in_month(year, (unsigned) mon)) {
        return mv_err_set(err, "day %02d out of range for %04d-%02d",
                          day, year, mon);
    }
    if (hour > 23) {
        return mv_err_set(err, "hour %02d out of range", hour);
    }
    if (min > 59) {
        return mv_err_set(err, "minute %02d out of range", min);
    }
    if (sec > 60) {
        return mv_err_set(err, "second %02d out of range", sec);
    }

    i = 19;
    if (i < len && s[i] == '.') {
        size_t  start = ++i;
        int     scale = 100;

        while (i < len && s[i] >= '0' && s[i] <= '9') {
            frac_ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start) {
            return mv_err_set(err, "no digits after the decimal point");
        }
    }

    if (i >= len) {
        return mv_err_set(err, "missing time zone (Z or +hh:mm)");
    }
    if (s[i] == 'Z' || s[i] == 'z') {
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
        offset_min = (int64_t) oh * 60 + om;
        if (s[i] == '-') {
            offset_min = -offset_min;
        }
        i += 6;
    } else {
        return mv_err_set(err, "missing time zone (Z or +hh:mm)");
    }
    if (i != len) {
        return mv_err_set(err, "unexpected characters after the time zone");
    }

    t = days_from_civil(year, (unsigned) mon, (unsigned) day) * MS_PER_DAY
        + ((int64_t) hour * 3600 + min * 60 + sec) * 1000 + frac_ms
        - offset_min * 60000;
    *ms = t;

    return MV_OK;
}


char *
mvw_format_rfc3339(int64_t ms, char *buf, size_t len)
{
    int64_t   days, rem, y;
    unsigned  m, d;

    if (ms < MIN_MS || ms > MAX_MS) {
        snprintf(buf, len, "@%lld ms", (long long) ms);
        return buf;
    }

    days = ms / MS_PER_DAY;
    rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", (int) y, m, d,
             (int) (rem / 3600000), (int) (rem / 60000 % 60),
             (int) (rem / 1000 % 60), (int) (rem % 1000));

    return buf;
}


/* ---- line parsing -------------------------------------------------------- */

/* Copies a field name for a message: at most 40 bytes, printable only. */
static const char *
printable(const char *s, char *buf, size_t len)
{
    size_t  i;

    for (i = 0; s[i] != '\0' && i + 4 < len && i < 40; i++) {
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
    }
    if (s[i] != '\0') {
        buf[i++] = '.';
        buf[i++] = '.';
        buf[i++] = '.';
    }
    buf[i] = '\0';

    return buf;
}


/* 1 when line contains a "\u0000" escape (outside of "\\" pairs). */
static int
has_nul_escape(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\') {
            continue;
        }
        if (s[i + 1] == 'u' && len - i >= 6 && s[i + 2] == '0'
            && s[i + 3] == '0' && s[i + 4] == '0' && s[i + 5] == '0')
        {
            return 1;
        }
        i++;                    /* skip the escaped character */
    }

    return 0;
}


static cJSON *
parse_object(const char *line, size_t len, mv_err_t *err)
{
    const char  *end = NULL;
    char        *buf;
    cJSON       *root;
    size_t       i;

    for (i = 0; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r'
            && line[i] != '\n')
        {
            break;
        }
    }
    if (i == len) {
        mv_err_set(err, "empty line");
        return NULL;
    }
    if (len > MVW_LINE_MAX) {
        mv_err_set(err, "line longer than %u bytes", MVW_LINE_MAX);
        return NULL;
    }
    if (memchr(line, '\0', len) != NULL) {
        mv_err_set(err, "line contains a NUL byte");
        return NULL;
    }
    if (has_nul_escape(line, len)) {
        mv_err_set(err, "\\u0000 is not allowed in strings");
        return NULL;
    }

    buf = malloc(len + 1);
    if (buf == NULL) {
        mv_err_set(err, "out of memory");
        return NULL;
    }
    memcpy(buf, line, len);
    buf[len] = '\0';

    root = cJSON_ParseWithOpts(buf, &end, 1);
    if (root == NULL) {
        size_t  at = (end != NULL && end >= buf && end <= buf + len)
                     ? (size_t) (end - buf) : 0;

        mv_err_set(err, "invalid JSON at byte %zu", at + 1);
        free(buf);
        return NULL;
    }
    free(buf);

    if (!cJSON_IsObject(root)) {
        mv_err_set(err, "not a JSON object");
        cJSON_Delete(root);
        return NULL;
    }

    return root;
}


/*
 * Sorts the members of obj into fields[] by the names in names[] (n of
 * them); an unknown or repeated name is an error.  A member whose value is
 * null is treated as absent.
 */
static int
pick_fields(const cJSON *obj, const char *const *names, size_t n,
    const cJSON **fields, mv_err_t *err)
{
    const cJSON  *m;
    char          pb[48];
    size_t        i;

    for (i = 0; i < n; i++) {
        fields[i] = NULL;
    }

    for (m = obj->child; m != NULL; m = m->next) {
        for (i = 0; i < n; i++) {
            if (m->string != NULL && strcmp(m->string, names[i]) == 0) {
                break;
            }
        }
        if (i == n) {
            return mv_err_set(err, "unknown field \"%s\"",
                              printable(m->string ? m->string : "",
                                        pb, sizeof(pb)));
        }
        if (fields[i] != NULL) {
            return mv_err_set(err, "duplicate field \"%s\"", names[i]);
        }
        fields[i] = m;
    }

    for (i = 0; i < n; i++) {
        if (fields[i] != NULL && cJSON_IsNull(fields[i])) {
            fields[i] = NULL;
        }
    }

    return MV_OK;
}


static int
get_id(const cJSON *v, const char *field, char *out, mv_err_t *err)
{
    size_t  len;

    if (v == NULL) {
        return mv_err_set(err, "missing \"%s\"", field);
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        return mv_err_set(err, "\"%s\" must be a string", field);
    }

    len = strlen(v->valuestring);
    if (len == 0) {
        return mv_err_set(err, "\"%s\" is empty", field);
    }
    if (len > MV_ID_MAX) {
        return mv_err_set(err, "\"%s\" is %zu bytes long (at most %d)",
                          field, len, MV_ID_MAX);
    }
    if (!mv_id_valid(v->valuestring, len)) {
        return mv_err_set(err, "\"%s\" has a character outside "
                          "[A-Za-z0-9._:-]", field);
    }
    memcpy(out, v->valuestring, len + 1);

    return MV_OK;
}


static int
get_embedding(const cJSON *v, uint32_t dim, float *vec, size_t vec_cap,
    uint32_t *dim_out, mv_err_t *err)
{
    const cJSON  *e;
    size_t        n = 0, limit;

    if (v == NULL) {
        return mv_err_set(err, "missing \"embedding\"");
    }
    if (!cJSON_IsArray(v)) {
        return mv_err_set(err, "\"embedding\" must be an array of numbers");
    }

    for (e = v->child; e != NULL; e = e->next) {
        n++;
    }
    limit = vec_cap < MVW_DIM_MAX ? vec_cap : MVW_DIM_MAX;
    if (n == 0) {
        return mv_err_set(err, "\"embedding\" is empty");
    }
    if (dim != 0 && n != dim) {
        return mv_err_set(err, "\"embedding\" has %zu values, expected %u",
                          n, dim);
    }
    if (n > limit) {
        return mv_err_set(err, "\"embedding\" has %zu values (at most %zu)",
                          n, limit);
    }

    n = 0;
    for (e = v->child; e != NULL; e = e->next, n++) {
        double  d;

        if (!cJSON_IsNumber(e)) {
            return mv_err_set(err, "\"embedding\"[%zu] is not a number", n);
        }
        d = e->valuedouble;
        if (!isfinite(d) || fabs(d) > FLT_MAX) {
            return mv_err_set(err, "\"embedding\"[%zu] is not a finite "
                              "float32", n);
        }
        vec[n] = (float) d;
    }
    *dim_out = (uint32_t) n;

    return MV_OK;
}


static int
get_created_at(const cJSON *v, int64_t *ms, mv_err_t *err)
{
    mv_err_t  e;

    if (cJSON_IsString(v) && v->valuestring != NULL) {
        if (mvw_parse_rfc3339(v->valuestring, strlen(v->valuestring), ms, &e)
            != MV_OK)
        {
            return mv_err_set(err, "\"created_at\": %s", e.msg);
        }
        return MV_OK;
    }

    if (cJSON_IsNumber(v)) {
        double  d = v->valuedouble;

        if (isfinite(d) && d == floor(d) && d >= (double) MIN_MS
            && d <= (double) MAX_MS)
        {
            *ms = (int64_t) d;
            return MV_OK;
        }
        return mv_err_set(err, "\"created_at\" must be whole unix "
                          "milliseconds within years 0001..9999");
    }

    return mv_err_set(err, "\"created_at\" must be an RFC 3339 string or "
                      "unix milliseconds");
}


static int
check_tags(const cJSON *v, mv_err_t *err)
{
    const cJSON  *t;
    size_t        n = 0;

    if (!cJSON_IsArray(v)) {
        return mv_err_set(err, "\"tags\" must be an array of strings");
    }
    for (t = v->child; t != NULL; t = t->next, n++) {
        size_t  len;

        if (n == MVW_TAGS_MAX) {
            return mv_err_set(err, "\"tags\" has more than %d entries",
                              MVW_TAGS_MAX);
        }
        if (!cJSON_IsString(t) || t->valuestring == NULL) {
            return mv_err_set(err, "\"tags\"[%zu] is not a string", n);
        }
        len = strlen(t->valuestring);
        if (len == 0 || len > MVW_TAG_LEN_MAX) {
            return mv_err_set(err, "\"tags\"[%zu] must be 1..%d bytes", n,
                              MVW_TAG_LEN_MAX);
        }
    }

    return MV_OK;
}


enum {
    F_ITEM_ID, F_EMBEDDING, F_CATEGORY, F_TAGS, F_POPULARITY, F_CREATED_AT,
    F_DELETED, F_ITEM_COUNT
};

static const char *const  item_fields[F_ITEM_COUNT] = {
    "item_id", "embedding", "category", "tags", "popularity_score",
    "created_at", "deleted"
};


int
mvw_parse_item_line(const char *line, size_t len, uint32_t dim,
    float *vec, size_t vec_cap, mvw_item_rec_t *out, mv_err_t *err)
{
    const cJSON  *f[F_ITEM_COUNT];
    cJSON        *root;
    int           rc = MV_ERR;

    root = parse_object(line, len, err);
    if (root == NULL) {
        return MV_ERR;
    }

    memset(out, 0, sizeof(*out));
    out->vec = vec;

    if (pick_fields(root, item_fields, F_ITEM_COUNT, f, err) != MV_OK
        || get_id(f[F_ITEM_ID], "item_id", out->id, err) != MV_OK
        || get_embedding(f[F_EMBEDDING], dim, vec, vec_cap, &out->dim, err)
           != MV_OK)
    {
        goto done;
    }

    if (f[F_CATEGORY] != NULL
        && get_id(f[F_CATEGORY], "category", out->category, err) != MV_OK)
    {
        goto done;
    }

    if (f[F_TAGS] != NULL && check_tags(f[F_TAGS], err) != MV_OK) {
        goto done;
    }

    if (f[F_POPULARITY] != NULL) {
        double  d;

        if (!cJSON_IsNumber(f[F_POPULARITY])) {
            mv_err_set(err, "\"popularity_score\" must be a number");
            goto done;
        }
        d = f[F_POPULARITY]->valuedouble;
        if (!isfinite(d) || d > FLT_MAX) {
            mv_err_set(err, "\"popularity_score\" is not a finite float32");
            goto done;
        }
        if (d < 0) {
            mv_err_set(err, "\"popularity_score\" must be >= 0");
            goto done;
        }
        out->popularity = (float) d;
    }

    if (f[F_CREATED_AT] != NULL
        && get_created_at(f[F_CREATED_AT], &out->created_at_ms, err)
           != MV_OK)
    {
        goto done;
    }

    if (f[F_DELETED] != NULL) {
        if (!cJSON_IsBool(f[F_DELETED])) {
            mv_err_set(err, "\"deleted\" must be true or false");
            goto done;
        }
        out->deleted = cJSON_IsTrue(f[F_DELETED]) ? 1 : 0;
    }

    rc = MV_OK;

done:
    cJSON_Delete(root);
    return rc;
}


static const char *const  user_fields[2] = { "user_id", "embedding" };


int
mvw_parse_user_line(const char *line, size_t len, uint32_t dim,
    float *vec, size_t vec_cap, mvw_user_rec_t *out, mv_err_t *err)
{
    const cJSON  *f[2];
    cJSON        *root;
    int           rc = MV_ERR;

    root = parse_object(line, len, err);
    if (root == NULL) {
        return MV_ERR;
    }

    memset(out, 0, sizeof(*out));
    out->vec = vec;

    if (pick_fields(root, user_fields, 2, f, err) == MV_OK
        && get_id(f[0], "user_id", out->id, err) == MV_OK
        && get_embedding(f[1], dim, vec, vec_cap, &out->dim, err) == MV_OK)
    {
        rc = MV_OK;
    }

    cJSON_Delete(root);
    return rc;
}
