/*
 * test_crc32c.c -- CRC-32C: the standard check value, chaining, and the
 * hardware path against the portable one on random buffers of every length
 * 0..1000 at every alignment 0..15, plus large buffers that exercise the
 * three-stream rounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"


/* A tiny local generator so this test depends on nothing else. */
static uint64_t
next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;

    return *state;
}


static uint8_t *
random_bytes(size_t len, uint64_t seed)
{
    uint8_t *buf = malloc(len > 0 ? len : 1);
    uint64_t state = seed | 1;
    size_t   i;

    assert_non_null(buf);
    for (i = 0; i < len; i++) {
        buf[i] = (uint8_t) (next_random(&state) >> 56);
    }

    return buf;
}


static void
test_check_value(void **state)
{
    (void) state;

    assert_int_equal(mv_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(mv_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(mv_crc32c(0, "", 0), 0);
    assert_int_equal(mv_crc32c(0x12345678u, NULL, 0), 0x12345678u);
}


static void
test_chaining_equals_one_shot(void **state)
{
    static const size_t lens[] = { 0, 1, 7, 100, 1000, 5000, 70000 };
    uint8_t *buf;
    uint32_t whole, chained, chained_portable;
    size_t   i, cut;

    (void) state;

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        buf = random_bytes(lens[i], 7 + i);
        whole = mv_crc32c(0, buf, lens[i]);
        assert_int_equal(whole, mv_crc32c_portable(0, buf, lens[i]));

        for (cut = 0; cut <= lens[i]; cut += 1 + lens[i] / 13) {
            chained = mv_crc32c(mv_crc32c(0, buf, cut), buf + cut,
                                lens[i] - cut);
            chained_portable = mv_crc32c_portable(
                mv_crc32c_portable(0, buf, cut), buf + cut, lens[i] - cut);
            assert_int_equal(chained, whole);
            assert_int_equal(chained_portable, whole);
        }
        free(buf);
    }
}


static void
test_hardware_equals_portable_small(void **state)
{
    uint8_t *buf = random_bytes(1000 + 16, 99);
    size_t   len, align;
    uint32_t seed_crc;

    (void) state;

    for (align = 0; align < 16; align++) {
        for (len = 0; len <= 1000; len++) {
            seed_crc = (uint32_t) (len * 2654435761u);
            assert_int_equal(mv_crc32c(seed_crc, buf + align, len),
                             mv_crc32c_portable(seed_crc, buf + align, len));
        }
    }
    free(buf);
}


static void
test_hardware_equals_portable_large(void **state)
{
    static const size_t lens[] = {
        767, 768, 769, 1536, 2047, 24575, 24576, 24577, 24576 + 768,
        49152 + 1535, 100000, 262144 + 13
    };
    uint8_t *buf = random_bytes(262144 + 13 + 16, 5);
    size_t   i, align;

    (void) state;

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (align = 0; align < 16; align += 3) {
            assert_int_equal(mv_crc32c(0, buf + align, lens[i]),
                             mv_crc32c_portable(0, buf + align, lens[i]));
        }
    }
    free(buf);
}


static void
test_detects_single_bit_flip(void **state)
{
    uint8_t *buf = random_bytes(30000, 11);
    uint32_t before = mv_crc32c(0, buf, 30000);

    (void) state;

    buf[12345] ^= 0x10;
    assert_int_not_equal(mv_crc32c(0, buf, 30000), before);
    free(buf);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_value),
        cmocka_unit_test(test_chaining_equals_one_shot),
        cmocka_unit_test(test_hardware_equals_portable_small),
        cmocka_unit_test(test_hardware_equals_portable_large),
        cmocka_unit_test(test_detects_single_bit_flip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
