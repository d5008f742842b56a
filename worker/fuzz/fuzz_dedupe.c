/*
 * fuzz_dedupe.c -- libFuzzer target for the reader of the trainer's dedupe
 * side file (model/dedupe.h: snapshot-<generation>.mvs.dedupe).
 *
 * Each input is decoded into sets of three windows (0, 3 and 1000).  What
 * is accepted must keep the contract: at most window ids kept, each
 * contained, the table holding exactly the ring's hashes, and -- for the
 * window that keeps them all -- written back byte for byte the same file
 * (the format is canonical).  What is refused must leave the set empty.
 * A broken check calls abort(); the sanitizers catch the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/dedupe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
check_set(const mvw_dedupe_t *d)
{
    size_t  in = 0;

    if (d->len > d->window) {
        abort();
    }
    for (size_t k = 0; k < d->len; k++) {
        if (!mvw_dedupe_contains(d, d->ring[(d->head + k) % d->window])) {
            abort();
        }
    }
    if (d->slots != NULL) {
        for (size_t s = 0; s <= d->mask; s++) {
            in += d->slots[s] != 0;
        }
    }
    if (in != d->len) {
        abort();
    }
}


/* Saves d and compares the file with the input. */
static void
check_rewrite(const mvw_dedupe_t *d, const uint8_t *data, size_t size)
{
    char            path[64];
    unsigned char  *buf;
    FILE           *f;
    size_t          n;
    mv_err_t        err;

    snprintf(path, sizeof(path), "/tmp/fuzz_dedupe-%ld", (long) getpid());
    if (mvw_dedupe_save(d, path, &err) != MV_OK) {
        abort();
    }
    buf = malloc(size + 1);
    f = fopen(path, "rb");
    if (buf == NULL || f == NULL) {
        abort();
    }
    n = fread(buf, 1, size + 1, f);
    fclose(f);
    unlink(path);
    if (n != size || memcmp(buf, data, size) != 0) {
        abort();
    }
    free(buf);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t  windows[] = { 0, 3, 1000 };
    mvw_dedupe_t         d;
    mv_err_t             err;

    for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
        mvw_dedupe_init(&d, windows[w]);
        if (mvw_dedupe_decode(&d, data, size, &err) != MV_OK) {
            if (d.len != 0 || memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
                abort();
            }
            mvw_dedupe_free(&d);
            continue;
        }
        check_set(&d);
        if (windows[w] > 0 && size == MVW_DEDUPE_HEADER + 4 + 8 * d.len) {
            check_rewrite(&d, data, size);
        }
        mvw_dedupe_free(&d);
    }
    return 0;
}
