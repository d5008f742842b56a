/*
 * dedupe.c -- the set of the last N client event ids and its side file
 * (see dedupe.h for the behaviour and the format).
 *
 * The table is linear probing over a power of two of slots, at least twice
 * the window, so a probe ends at an empty slot after a few steps.  Removal
 * (eviction of the ring's oldest hash) shifts the following run of the
 * cluster back instead of leaving tombstones, so the table never fills up
 * with deleted entries however long the stream runs.
 *
 * The reader trusts nothing: the size must be exactly the header, count
 * hashes and the CRC; the CRC covers every byte before it; then each hash
 * kept must be non-zero and distinct (a duplicate would break "ring and
 * table hold the same hashes").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "files.h"
#include "model/dedupe.h"

#define FNV64_OFFSET  UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME   UINT64_C(0x100000001b3)
#define SLOTS_MIN     16


void
mvw_dedupe_init(mvw_dedupe_t *d, size_t window)
{
    memset(d, 0, sizeof(*d));
    d->window = window < MVW_DEDUPE_WINDOW_MAX ? window
                                               : MVW_DEDUPE_WINDOW_MAX;
}


void
mvw_dedupe_free(mvw_dedupe_t *d)
{
    free(d->ring);
    free(d->slots);
    mvw_dedupe_init(d, d->window);
}


void
mvw_dedupe_clear(mvw_dedupe_t *d)
{
    if (d->slots != NULL) {
        memset(d->slots, 0, (d->mask + 1) * sizeof(*d->slots));
    }
    d->head = 0;
    d->len = 0;
}


uint64_t
mvw_dedupe_hash(const char *id)
{
    uint64_t  h = FNV64_OFFSET;

    for (const unsigned char *p = (const unsigned char *) id; *p; p++) {
        h ^= *p;
        h *= FNV64_PRIME;
    }
    return h != 0 ? h : 1;
}


int
mvw_dedupe_reserve(mvw_dedupe_t *d, mv_err_t *err)
{
    size_t  n = SLOTS_MIN;

    if (d->window == 0 || d->slots != NULL) {
        return MV_OK;
    }
    while (n < 2 * d->window) {
        n *= 2;
    }
    d->ring = malloc(d->window * sizeof(*d->ring));
    d->slots = calloc(n, sizeof(*d->slots));
    if (d->ring == NULL || d->slots == NULL) {
        free(d->ring);
        free(d->slots);
        d->ring = NULL;
        d->slots = NULL;
        return mv_err_set(err, "out of memory for a dedupe window of %zu "
                          "ids", d->window);
    }
    d->mask = n - 1;
    d->head = 0;
    d->len = 0;
    return MV_OK;
}


/* The slot holding h, or the empty slot where h would go. */
static size_t
find_slot(const mvw_dedupe_t *d, uint64_t h)
{
    size_t  i = (size_t) h & d->mask;

    while (d->slots[i] != 0 && d->slots[i] != h) {
        i = (i + 1) & d->mask;
    }
    return i;
}


int
mvw_dedupe_contains(const mvw_dedupe_t *d, uint64_t h)
{
    return d->slots != NULL && h != 0 && d->slots[find_slot(d, h)] == h;
}


/* Removes h (present) from the table, shifting its cluster back. */
static void
table_remove(mvw_dedupe_t *d, uint64_t h)
{
    size_t  i = find_slot(d, h), j = i, home;

    d->slots[i] = 0;
    for ( ;; ) {
        j = (j + 1) & d->mask;
        if (d->slots[j] == 0) {
            return;
        }
        home = (size_t) d->slots[j] & d->mask;
        /* slot j's entry may move to the hole i unless its home lies
           cyclically in (i, j] */
        if ((j > i && (home <= i || home > j))
            || (j < i && (home <= i && home > j)))
        {
            d->slots[i] = d->slots[j];
            d->slots[j] = 0;
            i = j;
        }
    }
}


int
mvw_dedupe_add(mvw_dedupe_t *d, uint64_t h, mv_err_t *err)
{
    size_t  tail;

    if (d->window == 0) {
        return MV_OK;
    }
    if (mvw_dedupe_reserve(d, err) != MV_OK) {
        return MV_ERR;
    }
    if (h == 0) {
        h = 1;
    }

    if (d->len == d->window) {
        table_remove(d, d->ring[d->head]);
        d->head = (d->head + 1) % d->window;
        d->len--;
    }
    tail = (d->head + d->len) % d->window;
    d->ring[tail] = h;
    d->len++;
    d->slots[find_slot(d, h)] = h;
    return MV_OK;
}


size_t
mvw_dedupe_count(const mvw_dedupe_t *d)
{
    return d->len;
}


/* ---- the side file ------------------------------------------------------ */

static void
put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        p[i] = (unsigned char) (v >> (8 * i));
    }
}


static uint64_t
get_le(const unsigned char *p, int bytes)
{
    uint64_t  v = 0;

    for (int i = bytes - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}


int
mvw_dedupe_encode(const mvw_dedupe_t *d, void **buf_out, size_t *size_out,
    mv_err_t *err)
{
    unsigned char  *buf, *p;
    size_t          size = MVW_DEDUPE_HEADER + 8 * d->len + 4;

    buf = malloc(size);
    if (buf == NULL) {
        return mv_err_set(err, "out of memory for a dedupe set of %zu ids",
                          d->len);
    }
    memcpy(buf, MVW_DEDUPE_MAGIC, 8);
    put_le(buf + 8, MVW_DEDUPE_VERSION, 4);
    put_le(buf + 12, 0, 4);
    put_le(buf + 16, d->len, 8);
    p = buf + MVW_DEDUPE_HEADER;
    for (size_t k = 0; k < d->len; k++, p += 8) {
        put_le(p, d->ring[(d->head + k) % d->window], 8);
    }
    put_le(p, mv_crc32c(0, buf, (size_t) (p - buf)), 4);
    *buf_out = buf;
    *size_out = size;
    return MV_OK;
}


int
mvw_dedupe_write(const char *path, const void *buf, size_t size,
    mv_err_t *err)
{
    char  tmp[4096];
    int   fd, rc;

    fd = mv_file_open_temp(path, tmp, sizeof(tmp), err);
    if (fd < 0) {
        return MV_ERR;
    }
    rc = mv_file_commit(fd, mv_file_write_all(fd, buf, size, tmp, err), tmp,
                        path, err);
    if (rc != MV_OK) {
        return MV_ERR;
    }
    return mv_dir_fsync_parent(path, err);
}


int
mvw_dedupe_save(const mvw_dedupe_t *d, const char *path, mv_err_t *err)
{
    void    *buf;
    size_t   size;
    int      rc;

    if (mvw_dedupe_encode(d, &buf, &size, err) != MV_OK) {
        return MV_ERR;
    }
    rc = mvw_dedupe_write(path, buf, size, err);
    free(buf);
    return rc;
}


int
mvw_dedupe_decode(mvw_dedupe_t *d, const void *data, size_t len,
    mv_err_t *err)
{
    const unsigned char  *b = data;
    uint64_t              count, h;
    size_t                skip;

    if (len < MVW_DEDUPE_HEADER + 4) {
        return mv_err_set(err, "%zu bytes: shorter than a header", len);
    }
    if (memcmp(b, MVW_DEDUPE_MAGIC, 8) != 0) {
        return mv_err_set(err, "not a dedupe file (bad magic)");
    }
    if (get_le(b + 8, 4) != MVW_DEDUPE_VERSION) {
        return mv_err_set(err, "version %llu, not %d",
                          (unsigned long long) get_le(b + 8, 4),
                          MVW_DEDUPE_VERSION);
    }
    if (get_le(b + 12, 4) != 0) {
        return mv_err_set(err, "reserved field not 0");
    }
    count = get_le(b + 16, 8);
    if (count > (len - MVW_DEDUPE_HEADER - 4) / 8
        || len != MVW_DEDUPE_HEADER + 8 * count + 4)
    {
        return mv_err_set(err, "%zu bytes for a count of %llu", len,
                          (unsigned long long) count);
    }
    if (mv_crc32c(0, b, len - 4) != (uint32_t) get_le(b + len - 4, 4)) {
        return mv_err_set(err, "CRC mismatch");
    }
    if (d->len != 0) {
        return mv_err_set(err, "the set is not empty");
    }
    for (uint64_t k = 0; k < count; k++) {
        if (get_le(b + MVW_DEDUPE_HEADER + 8 * k, 8) == 0) {
            return mv_err_set(err, "hash %llu is 0", (unsigned long long) k);
        }
    }

    skip = count > d->window ? (size_t) (count - d->window) : 0;
    if (count > skip && mvw_dedupe_reserve(d, err) != MV_OK) {
        return MV_ERR;
    }
    for (uint64_t k = skip; k < count; k++) {
        h = get_le(b + MVW_DEDUPE_HEADER + 8 * k, 8);
        if (mvw_dedupe_contains(d, h)) {
            mvw_dedupe_clear(d);
            return mv_err_set(err, "hash %llu appears twice",
                              (unsigned long long) k);
        }
        mvw_dedupe_add(d, h, NULL);
    }
    return MV_OK;
}


int
mvw_dedupe_load(mvw_dedupe_t *d, const char *path, mv_err_t *err)
{
    struct stat     st;
    unsigned char  *buf;
    size_t          got = 0;
    ssize_t         n;
    int             fd, rc;
    mv_err_t        why;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return mv_err_set(err, "open(%s): %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || st.st_size < 0
        || (uint64_t) st.st_size > MVW_DEDUPE_HEADER + 4
                                   + 8 * (uint64_t) MVW_DEDUPE_WINDOW_MAX)
    {
        close(fd);
        return mv_err_set(err, "%s: cannot stat, or too large", path);
    }
    buf = malloc((size_t) st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return mv_err_set(err, "out of memory reading %s", path);
    }
    while (got < (size_t) st.st_size) {
        n = read(fd, buf + got, (size_t) st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t) n;
    }
    close(fd);

    if (got != (size_t) st.st_size) {
        free(buf);
        return mv_err_set(err, "read(%s): short read", path);
    }
    rc = mvw_dedupe_decode(d, buf, got, &why);
    free(buf);
    if (rc != MV_OK) {
        return mv_err_set(err, "%s: %s", path, why.msg);
    }
    return MV_OK;
}
