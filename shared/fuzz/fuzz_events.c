/*
 * fuzz_events.c -- libFuzzer target for the event parsers and encoders
 * (events.h).
 *
 * Each input is fed, as is, to mv_action_parse, to mv_item_parse twice (any
 * dimension up to 64, and the fixed dimension 4), to mv_user_vector_parse,
 * to mv_time_parse and to mv_action_type_from_name.  What a client may send
 * is a subset of what stored data may hold: an action or item accepted from
 * MV_ORIGIN_CLIENT must be accepted from MV_ORIGIN_DATA as the same event.  Whatever is accepted must survive the log:
 * encoded within its bound, the payload must be valid for the parser again
 * and give back an identical event (ids, tags, times, and floats to the
 * bit), and encoding that must reproduce the payload byte for byte (the
 * canonical form is a fixed point).  Refusals must come with one of the
 * documented codes and a NUL-terminated detail.  Any difference traps.
 * Seeds: shared/fuzz/corpus/fuzz_events/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define FUZZ_NOW      INT64_C(1700000000000)
#define FUZZ_DIM_CAP  64


static void
check_error(const mv_event_error_t *e)
{
    if (e->error == NULL
        || (strcmp(e->error, "invalid_json") != 0
            && strcmp(e->error, "invalid_field") != 0
            && strcmp(e->error, "unknown_action_type") != 0
            && strcmp(e->error, "dimension_mismatch") != 0
            && strcmp(e->error, "non_finite_number") != 0)
        || memchr(e->detail, '\0', sizeof(e->detail)) == NULL
        || e->detail[0] == '\0')
    {
        __builtin_trap();
    }
}


static void
fuzz_action(const char *buf, size_t len)
{
    mv_action_t       a, b;
    mv_event_error_t  e;
    char              out[512], again[512];
    size_t            n, m;

    memset(&e, 0, sizeof(e));
    if (mv_action_parse(buf, len, MV_ORIGIN_DATA, FUZZ_NOW, &a, &e) != MV_OK) {
        check_error(&e);
        return;
    }

    n = mv_action_encode(&a, out, sizeof(out));
    if (n == 0 || n >= 400) {
        __builtin_trap();
    }
    if (mv_action_parse(out, n, MV_ORIGIN_DATA, 0, &b, &e) != MV_OK) {
        __builtin_trap();
    }
    if (strcmp(a.event_id, b.event_id) != 0
        || strcmp(a.user_id, b.user_id) != 0
        || strcmp(a.item_id, b.item_id) != 0 || a.type != b.type
        || a.timestamp_ms != b.timestamp_ms
        || a.client_event_id != b.client_event_id)
    {
        __builtin_trap();
    }

    m = mv_action_encode(&b, again, sizeof(again));
    if (m != n || memcmp(out, again, n) != 0) {
        __builtin_trap();
    }
}


static void
fuzz_item(const char *buf, size_t len, uint32_t expect_dim)
{
    float             emb[FUZZ_DIM_CAP], emb2[FUZZ_DIM_CAP];
    mv_item_event_t  *a, *b;
    mv_event_error_t  e;
    char             *out, *again;
    size_t            n, m, bound;
    uint32_t          i;

    a = malloc(sizeof(*a));
    b = malloc(sizeof(*b));
    if (a == NULL || b == NULL) {
        __builtin_trap();
    }

    memset(&e, 0, sizeof(e));
    if (mv_item_parse(buf, len, MV_ORIGIN_DATA, FUZZ_NOW, expect_dim, emb, FUZZ_DIM_CAP, a,
                      &e) != MV_OK)
    {
        check_error(&e);
        free(a);
        free(b);
        return;
    }
    if (a->embedding != emb || a->dim == 0 || a->dim > FUZZ_DIM_CAP
        || (expect_dim != 0 && a->dim != expect_dim)
        || a->n_tags > MV_TAGS_MAX || !(a->popularity >= 0.0f))
    {
        __builtin_trap();
    }

    bound = mv_item_encode_bound(a->dim);
    out = malloc(bound);
    again = malloc(bound);
    if (out == NULL || again == NULL) {
        __builtin_trap();
    }

    n = mv_item_encode(a, out, bound);
    if (n == 0 || n >= bound) {
        __builtin_trap();
    }
    if (mv_item_parse(out, n, MV_ORIGIN_DATA, 0, a->dim, emb2, a->dim, b, &e) != MV_OK) {
        __builtin_trap();
    }

    if (strcmp(a->event_id, b->event_id) != 0
        || strcmp(a->item_id, b->item_id) != 0
        || strcmp(a->category, b->category) != 0
        || a->n_tags != b->n_tags
        || memcmp(&a->popularity, &b->popularity, sizeof(float)) != 0
        || a->created_at_ms != b->created_at_ms || a->dim != b->dim
        || memcmp(emb, emb2, a->dim * sizeof(float)) != 0)
    {
        __builtin_trap();
    }
    for (i = 0; i < a->n_tags; i++) {
        if (strcmp(a->tags[i], b->tags[i]) != 0) {
            __builtin_trap();
        }
    }

    m = mv_item_encode(b, again, bound);
    if (m != n || memcmp(out, again, n) != 0) {
        __builtin_trap();
    }

    /* Too small by one byte: nothing. */
    if (mv_item_encode(a, again, n - 1) != 0) {
        __builtin_trap();
    }

    free(again);
    free(out);
    free(a);
    free(b);
}


static void
fuzz_time(const char *buf, size_t len)
{
    int64_t  ms, back;
    char     text[32];

    if (mv_time_parse(buf, len, &ms, NULL) != MV_OK) {
        return;
    }
    if (ms < MV_TIME_MIN_MS || ms > MV_TIME_MAX_MS) {
        __builtin_trap();
    }
    if (mv_time_format(ms, text, sizeof(text)) != text
        || strlen(text) != 24
        || mv_time_parse(text, 24, &back, NULL) != MV_OK || back != ms)
    {
        __builtin_trap();
    }
}


static void
fuzz_type_name(const char *buf, size_t len)
{
    int          t = mv_action_type_from_name(buf, len);
    const char  *name;

    if (t < 0) {
        return;
    }
    name = mv_action_type_name((mv_action_type_t) t);
    if (t >= MV_ACTION_TYPES || name == NULL
        || mv_action_type_from_name(name, strlen(name)) != t)
    {
        __builtin_trap();
    }
}


/* Client origin: a subset of data origin, with the same meaning. */
static void
fuzz_origins(const char *buf, size_t len)
{
    mv_action_t       a, b;
    mv_item_event_t  *x, *y;
    mv_user_vector_t  u;
    mv_event_error_t  e;
    float             ex[FUZZ_DIM_CAP], ey[FUZZ_DIM_CAP];

    if (mv_action_parse(buf, len, MV_ORIGIN_CLIENT, FUZZ_NOW, &a, &e)
        == MV_OK)
    {
        /* the same event, marked as the client's retry key exactly when
           the client named it */
        if (mv_action_parse(buf, len, MV_ORIGIN_DATA, FUZZ_NOW, &b, &e)
            != MV_OK || b.client_event_id
            || a.client_event_id != (a.event_id[0] != '\0'))
        {
            __builtin_trap();
        }
        b.client_event_id = a.client_event_id;
        if (memcmp(&a, &b, sizeof(a)) != 0) {
            __builtin_trap();
        }
    } else {
        check_error(&e);
    }

    x = calloc(1, sizeof(*x));
    y = calloc(1, sizeof(*y));
    if (x == NULL || y == NULL) {
        free(x);
        free(y);
        return;
    }
    if (mv_item_parse(buf, len, MV_ORIGIN_CLIENT, FUZZ_NOW, 0, ex,
                      FUZZ_DIM_CAP, x, &e) == MV_OK)
    {
        if (mv_item_parse(buf, len, MV_ORIGIN_DATA, FUZZ_NOW, 0, ey,
                          FUZZ_DIM_CAP, y, &e) != MV_OK
            || x->deleted || y->deleted || x->dim != y->dim
            || memcmp(ex, ey, x->dim * sizeof(float)) != 0
            || strcmp(x->item_id, y->item_id) != 0
            || x->created_at_ms != y->created_at_ms)
        {
            __builtin_trap();
        }
    } else {
        check_error(&e);
    }
    free(x);
    free(y);

    if (mv_user_vector_parse(buf, len, 0, ex, FUZZ_DIM_CAP, &u, &e)
        == MV_OK)
    {
        if (u.dim == 0 || u.dim > FUZZ_DIM_CAP || u.user_id[0] == '\0') {
            __builtin_trap();
        }
    } else {
        check_error(&e);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char  *buf = (const char *) data;

    fuzz_action(buf, size);
    fuzz_item(buf, size, 0);
    fuzz_item(buf, size, 4);
    fuzz_origins(buf, size);
    fuzz_time(buf, size);
    fuzz_type_name(buf, size);

    return 0;
}
