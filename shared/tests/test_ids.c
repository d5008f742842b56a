/*
 * test_ids.c -- unit tests of ids.c: id syntax, the stability and quality of
 * mv_id_hash (it is part of the snapshot format), building, looking up and
 * validating id tables, including tables corrupted the ways a file can be.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ids.h"


/* A built table with its own storage. */
typedef struct built {
    mv_idtable_t   t;
    uint32_t      *offsets;
    char          *bytes;
    uint32_t      *slots;
    size_t         bytes_len;
    char         **names;
    uint32_t       n;
} built_t;


static void
built_make(built_t *b, uint32_t n, const char *fmt)
{
    uint32_t  i;
    char      tmp[64];

    b->n = n;
    b->names = calloc(n + 1, sizeof(char *));
    b->bytes_len = 0;
    for (i = 0; i < n; i++) {
        snprintf(tmp, sizeof(tmp), fmt, i);
        b->names[i] = strdup(tmp);
        b->bytes_len += strlen(tmp);
    }
    b->offsets = calloc(n + 1, sizeof(uint32_t));
    b->bytes = calloc(b->bytes_len + 1, 1);
    b->slots = calloc(mv_idtable_capacity(n), sizeof(uint32_t));

    assert_int_equal(mv_idtable_build((const char *const *) b->names, n,
                                      b->offsets, b->bytes, b->slots, NULL),
                     MV_OK);
    b->t.n = n;
    b->t.cap = mv_idtable_capacity(n);
    b->t.offsets = b->offsets;
    b->t.bytes = b->bytes;
    b->t.slots = b->slots;
    b->t.seed = 0;
}


static void
built_free(built_t *b)
{
    uint32_t  i;

    for (i = 0; i < b->n; i++) {
        free(b->names[i]);
    }
    free(b->names);
    free(b->offsets);
    free(b->bytes);
    free(b->slots);
}


static void
expect_invalid(const built_t *b, const char *substring)
{
    mv_err_t  err;

    err.msg[0] = '\0';
    assert_int_equal(mv_idtable_validate(&b->t, b->bytes_len, &err), MV_ERR);
    if (strstr(err.msg, substring) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, substring);
    }
}


static void
test_id_valid(void **state)
{
    char  long_id[MV_ID_MAX + 2];

    (void) state;

    assert_true(mv_id_valid("a", 1));
    assert_true(mv_id_valid("user_42", 7));
    assert_true(mv_id_valid("550e8400-e29b-41d4-a716-446655440000", 36));
    assert_true(mv_id_valid("A.b:c-d_E", 9));
    assert_false(mv_id_valid("", 0));
    assert_false(mv_id_valid(NULL, 3));
    assert_false(mv_id_valid("a b", 3));
    assert_false(mv_id_valid("a/b", 3));
    assert_false(mv_id_valid("a\0b", 3));
    assert_false(mv_id_valid("\xc3\xa9", 2));

    memset(long_id, 'x', sizeof(long_id));
    assert_true(mv_id_valid(long_id, MV_ID_MAX));
    assert_false(mv_id_valid(long_id, MV_ID_MAX + 1));
}


/* The hash is part of the file format: these values must never change. */
static void
test_hash_stable(void **state)
{
    static const struct {
        const char  *id;
        uint64_t     hash;
    } golden[] = {
        { "", 0xefd01f60ba992926ULL },
        { "a", 0x25ad9d1b70de62d1ULL },
        { "user_42", 0x8d684355fc44e83eULL },
        { "550e8400-e29b-41d4-a716-446655440000", 0xf8618520cc444ac9ULL },
        { "item-1234567", 0x7e8d385474c9ae68ULL },
    };
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
        if (mv_id_hash(golden[i].id, strlen(golden[i].id))
            != golden[i].hash)
        {
            fail_msg("mv_id_hash(\"%s\") changed: 0x%016llx", golden[i].id,
                     (unsigned long long) mv_id_hash(golden[i].id,
                                                     strlen(golden[i].id)));
        }
    }
}


static int
popcount64(uint64_t x)
{
    int  n = 0;

    while (x != 0) {
        x &= x - 1;
        n++;
    }
    return n;
}


/*
 * Avalanche: flipping any one input bit flips about half the output bits,
 * and each output bit flips with probability close to 1/2.
 */
static void
test_hash_avalanche(void **state)
{
    char      id[16];
    uint64_t  h, h2;
    uint32_t  flips[64];
    double    total = 0, trials = 0, p;
    int       i, bit, byte, len, b;

    (void) state;
    memset(flips, 0, sizeof(flips));

    for (i = 0; i < 2000; i++) {
        len = snprintf(id, sizeof(id), "item%07d", i * 7919);
        h = mv_id_hash(id, (size_t) len);
        for (byte = 0; byte < len; byte++) {
            for (bit = 0; bit < 8; bit++) {
                id[byte] ^= (char) (1 << bit);
                h2 = mv_id_hash(id, (size_t) len);
                id[byte] ^= (char) (1 << bit);
                total += popcount64(h ^ h2);
                trials++;
                for (b = 0; b < 64; b++) {
                    flips[b] += ((h ^ h2) >> b) & 1;
                }
            }
        }
    }

    assert_true(total / trials > 31.0 && total / trials < 33.0);
    for (b = 0; b < 64; b++) {
        p = flips[b] / trials;
        if (p < 0.45 || p > 0.55) {
            fail_msg("output bit %d flips with p=%.3f", b, p);
        }
    }
}


/* Sequential ids spread evenly over the low bits (what tables mask). */
static void
test_hash_distribution(void **state)
{
    enum { N = 200000, BUCKETS = 1024 };
    uint32_t  *count = calloc(BUCKETS, sizeof(uint32_t));
    char       id[32];
    double     chi2 = 0, expect = (double) N / BUCKETS, d;
    int        i, len;

    (void) state;

    for (i = 0; i < N; i++) {
        len = snprintf(id, sizeof(id), "u%d", i);
        count[mv_id_hash(id, (size_t) len) & (BUCKETS - 1)]++;
    }
    for (i = 0; i < BUCKETS; i++) {
        d = count[i] - expect;
        chi2 += d * d / expect;
    }
    free(count);

    /* 1023 degrees of freedom: mean 1023, sd ~45. */
    assert_true(chi2 < 1023 + 6 * 45);
}


static void
test_capacity(void **state)
{
    (void) state;

    assert_int_equal(mv_idtable_capacity(0), 8);
    assert_int_equal(mv_idtable_capacity(4), 8);
    assert_int_equal(mv_idtable_capacity(5), 16);
    assert_int_equal(mv_idtable_capacity(1000), 2048);
    assert_int_equal(mv_idtable_capacity(1024), 2048);
    assert_int_equal(mv_idtable_capacity(1025), 4096);
}


static void
test_build_find(void **state)
{
    built_t      b;
    const char  *id;
    size_t       len;
    uint32_t     i;
    char         tmp[64];
    int          n;

    (void) state;

    built_make(&b, 5000, "item-%u");
    assert_int_equal(mv_idtable_validate(&b.t, b.bytes_len, NULL), MV_OK);

    for (i = 0; i < b.n; i++) {
        id = mv_idtable_get(&b.t, i, &len);
        assert_int_equal(len, strlen(b.names[i]));
        assert_memory_equal(id, b.names[i], len);
        assert_int_equal(mv_idtable_find(&b.t, b.names[i], len), i);
    }
    for (i = 0; i < 1000; i++) {
        n = snprintf(tmp, sizeof(tmp), "absent-%u", i);
        assert_int_equal(mv_idtable_find(&b.t, tmp, (size_t) n), -1);
    }
    assert_int_equal(mv_idtable_find(&b.t, "item-1", 5), -1);
    assert_int_equal(mv_idtable_find(&b.t, "item-10", 7), 10);
    assert_int_equal(mv_idtable_find(&b.t, "", 0), -1);

    built_free(&b);
}


static void
test_empty_table(void **state)
{
    built_t  b;

    (void) state;

    built_make(&b, 0, "x%u");
    assert_int_equal(b.t.cap, 8);
    assert_int_equal(mv_idtable_validate(&b.t, 0, NULL), MV_OK);
    assert_int_equal(mv_idtable_find(&b.t, "a", 1), -1);
    built_free(&b);
}


static void
test_build_rejects(void **state)
{
    const char  *dup[] = { "a", "b", "a" };
    const char  *bad[] = { "ok", "not ok" };
    const char  *empty[] = { "" };
    uint32_t     offsets[4], slots[8];
    char         bytes[16];
    mv_err_t     err;

    (void) state;

    assert_int_equal(mv_idtable_build(dup, 3, offsets, bytes, slots, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "duplicate id \"a\" (0 and 2)"));

    assert_int_equal(mv_idtable_build(bad, 2, offsets, bytes, slots, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "id 1 is invalid"));

    assert_int_equal(mv_idtable_build(empty, 1, offsets, bytes, slots, &err),
                     MV_ERR);
    assert_non_null(strstr(err.msg, "id 0 is invalid"));
}


static void
test_validate_corruptions(void **state)
{
    built_t   b;
    uint32_t  i, j, save, used = 0, empty = 0;

    (void) state;

    built_make(&b, 100, "id%u");
    for (i = 0; i < b.t.cap; i++) {
        if (b.slots[i] != 0) {
            used = i;
        } else {
            empty = i;
        }
    }

    /* Capacity not a power of two / too small. */
    b.t.cap = 200;
    expect_invalid(&b, "not a power of two");
    b.t.cap = 128;
    b.t.n = 100;
    expect_invalid(&b, "< 2 * 100 ids");
    b.t.cap = mv_idtable_capacity(100);

    /* Offsets. */
    b.offsets[0] = 1;
    expect_invalid(&b, "start at 1");
    b.offsets[0] = 0;
    save = b.offsets[5];
    b.offsets[5] = b.offsets[4];
    expect_invalid(&b, "id 4: length 0");
    b.offsets[5] = save;
    save = b.offsets[100];
    b.offsets[100] = (uint32_t) b.bytes_len + 1;
    expect_invalid(&b, "beyond");
    b.offsets[100] = save;
    save = (uint32_t) (unsigned char) b.bytes[3];
    b.bytes[3] = ' ';
    expect_invalid(&b, "id 1: invalid character");
    b.bytes[3] = (char) save;
    assert_int_equal(mv_idtable_validate(&b.t, b.bytes_len, NULL), MV_OK);

    /* Slots: out of range index, one too many, one missing, wrong place. */
    save = b.slots[used];
    b.slots[used] = 101;
    expect_invalid(&b, "holds index 100 > 100 ids");
    b.slots[used] = save;
    b.slots[empty] = 1;
    expect_invalid(&b, "101 slots used");
    b.slots[empty] = 0;
    b.slots[used] = 0;
    expect_invalid(&b, "99 slots used");
    b.slots[used] = save;
    /* Duplicate index: one slot pointing at another's id. */
    for (j = 0; j < b.t.cap; j++) {
        if (b.slots[j] != 0 && j != used) {
            break;
        }
    }
    b.slots[j] = save;
    expect_invalid(&b, "not found through the slots");
    built_free(&b);

    /* Duplicate id bytes: ids 1 and 2 both "ab". */
    {
        const char  *ids[] = { "x", "ab", "ac" };
        uint32_t     offsets[4], slots[8];
        char         bytes[8];
        mv_idtable_t t;

        assert_int_equal(mv_idtable_build(ids, 3, offsets, bytes, slots,
                                          NULL), MV_OK);
        bytes[4] = 'b';
        t.n = 3;
        t.cap = 8;
        t.offsets = offsets;
        t.bytes = bytes;
        t.slots = slots;
        t.seed = 0;
        {
            mv_err_t  err;

            assert_int_equal(mv_idtable_validate(&t, 5, &err), MV_ERR);
            assert_non_null(strstr(err.msg, "duplicate id or wrong slot"));
        }
    }
}


/*
 * Hash flooding: ids crafted so that they all share a home slot under seed
 * 0.  Built with seed 0 they form one long cluster, which validation refuses
 * (after a bounded amount of work) instead of going quadratic; built with
 * another seed, the same ids spread out and validate.
 */
static void
test_hash_flooding(void **state)
{
    enum { N = 300 };
    char        *ids[N];
    uint32_t     offsets[N + 1], slots[1024], i, found = 0, k;
    char         bytes[N * 16], tmp[32];
    mv_idtable_t t;
    mv_err_t     err;
    int          len;

    (void) state;
    assert_int_equal(mv_idtable_capacity(N), 1024);

    for (k = 0; found < N; k++) {
        len = snprintf(tmp, sizeof(tmp), "f%u", k);
        if ((mv_id_hash(tmp, (size_t) len) & 1023) == 0) {
            ids[found++] = strdup(tmp);
        }
    }

    assert_int_equal(mv_idtable_build((const char *const *) ids, N, offsets,
                                      bytes, slots, NULL), MV_OK);
    t.n = N;
    t.cap = 1024;
    t.offsets = offsets;
    t.bytes = bytes;
    t.slots = slots;
    t.seed = 0;
    assert_int_equal(mv_idtable_validate(&t, offsets[N], &err), MV_ERR);
    assert_non_null(strstr(err.msg, "probe distances too long"));

    t.seed = 0x9e3779b97f4a7c15ULL;
    assert_int_equal(mv_idtable_build_seeded((const char *const *) ids, N,
                                             t.seed, offsets, bytes, slots,
                                             NULL), MV_OK);
    assert_int_equal(mv_idtable_validate(&t, offsets[N], &err), MV_OK);
    for (i = 0; i < N; i++) {
        assert_int_equal(mv_idtable_find(&t, ids[i], strlen(ids[i])), i);
    }
    /* the same table looked up with the wrong seed finds (almost) nothing */
    t.seed = 1;
    assert_int_equal(mv_idtable_validate(&t, offsets[N], NULL), MV_ERR);

    for (i = 0; i < N; i++) {
        free(ids[i]);
    }
}


static void
test_hash_seeded(void **state)
{
    (void) state;

    assert_true(mv_id_hash_seeded(0, "abc", 3) == mv_id_hash("abc", 3));
    assert_true(mv_id_hash_seeded(1, "abc", 3) != mv_id_hash("abc", 3));
    assert_true(mv_id_hash_seeded(1ULL << 40, "abc", 3)
                != mv_id_hash_seeded(1, "abc", 3));
    assert_true(mv_id_hash_seeded(0x1234, "abc", 3)
                == mv_id_hash_seeded(0x1234, "abc", 3));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_hash_stable),
        cmocka_unit_test(test_hash_avalanche),
        cmocka_unit_test(test_hash_distribution),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_build_find),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_build_rejects),
        cmocka_unit_test(test_validate_corruptions),
        cmocka_unit_test(test_hash_flooding),
        cmocka_unit_test(test_hash_seeded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
