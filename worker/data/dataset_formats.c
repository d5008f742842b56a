/*
 * dataset_formats.c -- the line formats of dataset files: movielens, csv,
 * tsv and jsonl (dataset.h states each one), parsed in place.
 *
 * A line parser splits the line into trimmed fields without copying, checks
 * each field against its grammar (ids are checked when added, by the
 * caller) and fills a mvw_line_rec_t that points into the line.  It says
 * what the line is: an interaction to add, one to read but drop (weight
 * <= 0), a csv header, or MV_ERR with a reason without file or line, which
 * the loader (dataset_io.c) prefixes with both.  Numbers follow the one
 * number grammar of every input (mv_number_parse, json.h), so "4.5" means
 * the same here as in a JSON body, and strtod never sees hex, inf or nan.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/dataset.h"
#include "data/dataset_internal.h"
#include "json.h"

/* Unix seconds and ms of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define UNIX_S_MIN          INT64_C(-62135596800)
#define UNIX_S_MAX          INT64_C(253402300799)
#define UNIX_MS_MIN         (UNIX_S_MIN * 1000)
#define UNIX_MS_MAX         (UNIX_S_MAX * 1000 + 999)

/* Fields of a line looked at; more are counted, not stored. */
#define FIELDS_MAX          8


typedef struct field {
    const char  *s;
    size_t       len;
} field_t;


/* ---- fields and numbers -------------------------------------------------- */

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}


/*
 * Splits s[0..len) at every sep (seplen bytes) into at most FIELDS_MAX
 * trimmed fields; returns the number of fields there are.
 */
static unsigned
split_fields(const char *s, size_t len, const char *sep, size_t seplen,
    field_t *f)
{
    unsigned  n = 0;
    size_t    start = 0, i = 0;

    for (;;) {
        int  at_end = i + seplen > len;

        if (at_end || memcmp(s + i, sep, seplen) == 0) {
            size_t  a = start, b = at_end ? len : i;

            while (a < b && (s[a] == ' ' || s[a] == '\t')) {
                a++;
            }
            while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) {
                b--;
            }
            if (n < FIELDS_MAX) {
                f[n].s = s + a;
                f[n].len = b - a;
            }
            n++;
            if (at_end) {
                return n;
            }
            i += seplen;
            start = i;
        } else {
            i++;
        }
    }
}


/*
 * A number that is finite as a float and >= 0, written in the one number
 * grammar of every input (json.h: "4.5", "5", "1e-3"; not ".5", "+1",
 * "5.").  MV_OK or MV_ERR.
 */
static int
parse_weight(const field_t *f, float *out)
{
    double  v;

    if (mv_number_parse(f->s, f->len, &v) != MV_OK || v < 0.0) {
        return MV_ERR;
    }

    return mv_float_from_double(v, out);
}


/* A whole number [+-]?d+ within lo..hi.  MV_OK or MV_ERR. */
static int
parse_int(const field_t *f, int64_t lo, int64_t hi, int64_t *out)
{
    size_t    i = 0;
    int       neg = 0;
    uint64_t  v = 0;

    if (f->len > 0 && (f->s[0] == '+' || f->s[0] == '-')) {
        neg = f->s[0] == '-';
        i = 1;
    }
    if (i == f->len) {
        return MV_ERR;
    }
    for (; i < f->len; i++) {
        if (!is_digit(f->s[i])) {
            return MV_ERR;
        }
        v = v * 10 + (uint64_t) (f->s[i] - '0');
        if (v > (uint64_t) INT64_MAX) {
            return MV_ERR;
        }
    }
    *out = neg ? -(int64_t) v : (int64_t) v;

    return *out >= lo && *out <= hi ? MV_OK : MV_ERR;
}


static int
all_digits(const field_t *f)
{
    size_t  i = f->len > 0 && (f->s[0] == '+' || f->s[0] == '-');

    if (i == f->len) {
        return 0;
    }
    for (; i < f->len; i++) {
        if (!is_digit(f->s[i])) {
            return 0;
        }
    }

    return 1;
}


/* ---- line parsers -------------------------------------------------------- */

/* movielens and tsv: four tab- (or, for movielens, "::") separated fields. */
static int
parse_four(mvw_line_ctx_t *c, const char *line, size_t len, mvw_line_rec_t *r,
    mv_err_t *err)
{
    field_t   f[FIELDS_MAX];
    unsigned  nf;
    int64_t   t;
    int       tsv = c->o->format == MVW_FORMAT_TSV;
    float     v;

    if (tsv || memchr(line, '\t', len) != NULL) {
        nf = split_fields(line, len, "\t", 1, f);
    } else {
        nf = split_fields(line, len, "::", 2, f);
    }
    if (nf != 4) {
        return mv_err_set(err, tsv
                          ? "expected 4 tab-separated fields (user_id, "
                            "item_id, weight, time_ms), got %u"
                          : "expected 4 fields separated by tabs or \"::\" "
                            "(user, item, rating, timestamp), got %u", nf);
    }

    r->user = f[0].s;
    r->user_len = f[0].len;
    r->item = f[1].s;
    r->item_len = f[1].len;
    if (parse_weight(&f[2], &v) != MV_OK) {
        return mv_err_set(err, tsv ? "weight must be a finite number >= 0"
                                   : "rating must be a finite number >= 0");
    }

    if (tsv) {
        if (parse_int(&f[3], UNIX_MS_MIN, UNIX_MS_MAX, &t) != MV_OK) {
            return mv_err_set(err, "time_ms must be whole unix milliseconds "
                              "within years 0001..9999");
        }
        r->weight = v;
        r->time_ms = t;
    } else {
        if (parse_int(&f[3], UNIX_S_MIN, UNIX_S_MAX, &t) != MV_OK) {
            return mv_err_set(err, "timestamp must be whole unix seconds "
                              "within years 0001..9999");
        }
        r->weight = c->o->weight_from_rating ? v : 1.0f;
        r->time_ms = t * 1000;
    }

    return r->weight > 0.0f ? LINE_ADD : LINE_DROP;
}


static int
is_header_name(const field_t *f)
{
    static const char *const names[] = { "user", "user_id", "userid", "uid" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (f->len == strlen(names[i])
            && strncasecmp(f->s, names[i], f->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static int
parse_csv(mvw_line_ctx_t *c, const char *line, size_t len, mvw_line_rec_t *r,
    mv_err_t *err)
{
    field_t   f[FIELDS_MAX];
    unsigned  nf;
    int64_t   t;
    mv_err_t  te;

    nf = split_fields(line, len, ",", 1, f);
    if (c->first && is_header_name(&f[0])) {
        return LINE_HEADER;
    }
    if (nf < 2 || nf > 4) {
        return mv_err_set(err, "expected 2 to 4 comma-separated fields "
                          "(user, item[, weight[, timestamp]]), got %u", nf);
    }

    r->user = f[0].s;
    r->user_len = f[0].len;
    r->item = f[1].s;
    r->item_len = f[1].len;
    r->weight = 1.0f;
    r->time_ms = 0;

    if (nf >= 3 && f[2].len != 0 && parse_weight(&f[2], &r->weight) != MV_OK)
    {
        return mv_err_set(err, "weight must be a finite number >= 0");
    }
    if (nf == 4 && f[3].len != 0) {
        if (all_digits(&f[3])) {
            if (parse_int(&f[3], UNIX_S_MIN, UNIX_S_MAX, &t) != MV_OK) {
                return mv_err_set(err, "timestamp must be whole unix seconds "
                                  "within years 0001..9999");
            }
            r->time_ms = t * 1000;
        } else if (mv_time_parse(f[3].s, f[3].len, &r->time_ms, &te)
                   != MV_OK)
        {
            return mv_err_set(err, "timestamp must be unix seconds or an "
                              "RFC 3339 date-time: %s", te.msg);
        }
    }

    return r->weight > 0.0f ? LINE_ADD : LINE_DROP;
}


static int
parse_jsonl(mvw_line_ctx_t *c, const char *line, size_t len, mvw_line_rec_t *r,
    mv_err_t *err)
{
    mv_event_error_t  e;

    if (mv_action_parse(line, len, MV_ORIGIN_DATA, 0, &c->action, &e) != MV_OK) {
        return mv_err_set(err, "%s", e.detail);
    }
    r->user = c->action.user_id;
    r->user_len = strlen(c->action.user_id);
    r->item = c->action.item_id;
    r->item_len = strlen(c->action.item_id);
    r->weight = c->weights[c->action.type];
    r->time_ms = c->action.timestamp_ms;

    return r->weight > 0.0f ? LINE_ADD : LINE_DROP;
}


int
mvw_dataset_parse_line(mvw_line_ctx_t *c, const char *line, size_t len,
    mvw_line_rec_t *r, mv_err_t *err)
{
    int  rc;

    switch (c->o->format) {
    case MVW_FORMAT_MOVIELENS:
    case MVW_FORMAT_TSV:
        rc = parse_four(c, line, len, r, err);
        break;
    case MVW_FORMAT_CSV:
        rc = parse_csv(c, line, len, r, err);
        break;
    default:
        rc = parse_jsonl(c, line, len, r, err);
        break;
    }
    c->first = 0;

    return rc;
}
