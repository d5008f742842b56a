/*
 * fuzz_catalog.c -- libFuzzer target for the worker's JSONL line parsers.
 *
 * Every input is fed, as one line, to the item parser and the user parser
 * (open dim, and a dim fixed by the input's length so both length paths
 * run) and to the RFC 3339 parser.  Whatever they accept must satisfy the
 * contract: a valid id, 1..cap finite values, popularity finite and >= 0,
 * and a created_at that formats and parses back to itself; an accepted item
 * must also be accepted by a catalogue.  Anything else is a crash, so the
 * sanitizers and these checks together are the oracle.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/catalog.h"

#define MIN_MS  (-62135596800000LL)     /* 0001-01-01T00:00:00Z */
#define MAX_MS  253402300799999LL       /* 9999-12-31T23:59:59.999Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
check_vec(const float *v, uint32_t dim, size_t cap)
{
    if (dim == 0 || dim > cap) {
        abort();
    }
    for (uint32_t i = 0; i < dim; i++) {
        if (!isfinite(v[i])) {
            abort();
        }
    }
}


static void
check_item(const mvw_item_rec_t *r, size_t cap)
{
    mvw_catalog_t  c;
    mv_err_t       err;
    char           buf[40];
    int64_t        back;

    if (!mv_id_valid(r->id, strlen(r->id))
        || (r->category[0] != '\0'
            && !mv_id_valid(r->category, strlen(r->category)))
        || !isfinite(r->popularity) || r->popularity < 0.0f)
    {
        abort();
    }
    check_vec(r->vec, r->dim, cap);

    /* An offset can move a valid time just outside years 0001..9999,
       which the formatter does not write as RFC 3339. */
    mvw_format_rfc3339(r->created_at_ms, buf, sizeof(buf));
    if (r->created_at_ms >= MIN_MS && r->created_at_ms <= MAX_MS
        && (mvw_parse_rfc3339(buf, strlen(buf), &back, &err) != MV_OK
            || back != r->created_at_ms))
    {
        abort();
    }

    mvw_catalog_init(&c);
    if (mvw_catalog_add_item(&c, r->id, r->vec, r->dim, r->category,
                             r->popularity, r->created_at_ms, r->deleted, 1,
                             &err) != MV_OK
        || mvw_catalog_find_item(&c, r->id) != 0)
    {
        abort();
    }
    mvw_catalog_free(&c);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char      *line = (const char *) data;
    float           *vec;
    mvw_item_rec_t   it;
    mvw_user_rec_t   u;
    mv_err_t         err;
    int64_t          ms;
    size_t           cap = 64;
    uint32_t         dims[2] = { 0, (uint32_t) (size % 8) + 1 };

    vec = malloc(cap * sizeof(float));
    if (vec == NULL) {
        return 0;
    }

    for (int d = 0; d < 2; d++) {
        if (mvw_parse_item_line(line, size, dims[d], vec, cap, &it, &err)
            == MV_OK)
        {
            if (dims[d] != 0 && it.dim != dims[d]) {
                abort();
            }
            check_item(&it, cap);
        }
        if (mvw_parse_user_line(line, size, dims[d], vec, cap, &u, &err)
            == MV_OK)
        {
            if (!mv_id_valid(u.id, strlen(u.id))
                || (dims[d] != 0 && u.dim != dims[d]))
            {
                abort();
            }
            check_vec(u.vec, u.dim, cap);
        }
    }

    if (mvw_parse_rfc3339(line, size, &ms, &err) == MV_OK) {
        char     buf[40];
        int64_t  back;

        mvw_format_rfc3339(ms, buf, sizeof(buf));
        if (ms >= MIN_MS && ms <= MAX_MS
            && (mvw_parse_rfc3339(buf, strlen(buf), &back, &err) != MV_OK
                || back != ms))
        {
            abort();
        }
    }

    free(vec);
    return 0;
}
