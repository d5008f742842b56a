/*
 * fuzz_example.c -- libFuzzer target for the training example format
 * (events.h: mv_example_parse, mv_example_encode), the records the feature
 * worker writes to training_topic and the trainer reads.
 *
 * Each input is parsed as an example.  A refusal must come with one of the
 * documented codes and a NUL-terminated detail.  An accepted example must
 * (1) hold what the contract says (popularity 1 .. MV_EXAMPLE_POPULARITY_MAX,
 * at most MV_TAGS_MAX tags, NUL-terminated strings), (2) have an action part
 * that mv_action_parse accepts as the same action, (3) encode within
 * MV_EXAMPLE_ENCODE_MAX into a payload that parses back to an identical
 * example and re-encodes byte for byte (the canonical form is a fixed
 * point), and (4) encode to nothing when given one byte less.  Any
 * difference traps.  Seeds: shared/fuzz/corpus/fuzz_example/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW  INT64_C(1700000000000)


static void
check_error(const mv_event_error_t *e)
{
    if (e->error == NULL
        || (strcmp(e->error, "invalid_json") != 0
            && strcmp(e->error, "invalid_field") != 0
            && strcmp(e->error, "unknown_action_type") != 0)
        || memchr(e->detail, '\0', sizeof(e->detail)) == NULL
        || e->detail[0] == '\0')
    {
        __builtin_trap();
    }
}


static int
same_example(const mv_example_t *a, const mv_example_t *b)
{
    const mv_item_features_t  *f = &a->features, *g = &b->features;

    if (memcmp(&a->action, &b->action, sizeof(a->action)) != 0
        || a->popularity != b->popularity
        || a->has_features != b->has_features)
    {
        return 0;
    }
    if (!a->has_features) {
        return 1;
    }
    if (strcmp(f->category, g->category) != 0 || f->n_tags != g->n_tags
        || f->created_at_ms != g->created_at_ms || f->deleted != g->deleted)
    {
        return 0;
    }
    for (uint32_t i = 0; i < f->n_tags; i++) {
        if (strcmp(f->tags[i], g->tags[i]) != 0) {
            return 0;
        }
    }
    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char        *buf = (const char *) data;
    mv_example_t      *x, *y;
    mv_action_t        a;
    mv_event_error_t   e;
    char              *out, *again;
    size_t             n, m;

    x = calloc(1, sizeof(*x));
    y = calloc(1, sizeof(*y));
    out = malloc(MV_EXAMPLE_ENCODE_MAX);
    again = malloc(MV_EXAMPLE_ENCODE_MAX);
    if (x == NULL || y == NULL || out == NULL || again == NULL) {
        __builtin_trap();
    }

    memset(&e, 0, sizeof(e));
    if (mv_example_parse(buf, size, FUZZ_NOW, x, &e) != MV_OK) {
        check_error(&e);
        goto done;
    }

    if (x->popularity < 1 || x->popularity > MV_EXAMPLE_POPULARITY_MAX
        || x->features.n_tags > MV_TAGS_MAX
        || memchr(x->action.user_id, '\0', sizeof(x->action.user_id)) == NULL
        || memchr(x->features.category, '\0',
                  sizeof(x->features.category)) == NULL)
    {
        __builtin_trap();
    }

    if (mv_action_parse(buf, size, MV_ORIGIN_DATA, FUZZ_NOW, &a, &e) != MV_OK
        || memcmp(&a, &x->action, sizeof(a)) != 0)
    {
        __builtin_trap();
    }

    n = mv_example_encode(x, out, MV_EXAMPLE_ENCODE_MAX);
    if (n == 0 || n >= MV_EXAMPLE_ENCODE_MAX) {
        __builtin_trap();
    }
    if (mv_example_parse(out, n, 0, y, &e) != MV_OK || !same_example(x, y)) {
        __builtin_trap();
    }
    m = mv_example_encode(y, again, MV_EXAMPLE_ENCODE_MAX);
    if (m != n || memcmp(out, again, n) != 0) {
        __builtin_trap();
    }
    if (mv_example_encode(x, again, n - 1) != 0) {
        __builtin_trap();
    }

done:
    free(again);
    free(out);
    free(y);
    free(x);
    return 0;
}
