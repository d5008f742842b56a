/*
 * generation_manifest.c -- the manifest of a generation (generation.h):
 * file names, the manifest written and parsed, and publishing.  Pruning,
 * listing and the clean-up after an interrupted publish are
 * generation_dir.c; the reader is generation_read.c.
 *
 * A manifest is small (at most 64 segments and 64 positions: 16 KiB), so
 * it is built in memory and written whole through the same temp file,
 * fsync, rename steps as a snapshot (files.h).  Its entries are read from
 * the segment files themselves (their headers, checked whole: magic, size,
 * CRC), so a manifest can only name complete files of its dim and metric.
 * The parser validates every byte before it copies anything out, in the
 * order of the layout, and never reads past len.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "files.h"
#include "generation_format.h"


/* ---- names -------------------------------------------------------------- */

char *
mv_gen_manifest_name(uint64_t g, char *buf, size_t len)
{
    return mv_seqname_format("gen-", g, ".mvm", buf, len);
}


char *
mv_gen_items_name(uint64_t g, char *buf, size_t len)
{
    return mv_seqname_format("items-", g, ".mvs", buf, len);
}


char *
mv_gen_delta_name(uint64_t g, char *buf, size_t len)
{
    return mv_seqname_format("users-", g, ".mvs", buf, len);
}


char *
mv_gen_base_name(uint64_t g, char *buf, size_t len)
{
    return mv_seqname_format("users-", g, ".base.mvs", buf, len);
}




int
mv_gen_name_valid(const char *name, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > MV_GEN_NAME_MAX || name[0] == '.') {
        return 0;
    }
    for (i = 0; i < len; i++) {
        c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
        {
            return 0;
        }
    }
    return 1;
}


/* ---- the manifest bytes ------------------------------------------------- */

uint32_t
mv_gen_manifest_crc(const void *buf, size_t len)
{
    static const uint8_t  zero[4] = { 0, 0, 0, 0 };
    const uint8_t        *p = buf;
    size_t                at = offsetof(mv_gen_header_t, crc);
    uint32_t              crc;

    crc = mv_crc32c(0, p, at);
    crc = mv_crc32c(crc, zero, sizeof(zero));
    return mv_crc32c(crc, p + at + 4, len - at - 4);
}


/* 1 when the n bytes at p (n <= 64: reserved fields, name padding) are 0. */
static int
zero_bytes(const uint8_t *p, size_t n)
{
    static const uint8_t  zeros[MV_GEN_NAME_MAX + 1];

    return n <= sizeof(zeros) && memcmp(p, zeros, n) == 0;
}


/* Checks the header h of the len bytes at buf (h a copy of their first). */
static int
check_manifest_header(const uint8_t *buf, const mv_gen_header_t *h,
    size_t len, mv_err_t *err)
{
    uint64_t  expected;

    if (memcmp(h->magic, MV_GEN_MAGIC, MV_GEN_MAGIC_LEN) != 0) {
        return mv_err_set(err, "manifest: bad magic");
    }
    if (h->endian_mark != MV_SNAP_ENDIAN_MARK) {
        return mv_err_set(err, "manifest: bad endianness mark 0x%08x",
                          h->endian_mark);
    }
    if (h->version != MV_GEN_VERSION) {
        return mv_err_set(err, "manifest: unsupported version %u",
                          h->version);
    }
    if (h->entries_offset != MV_GEN_HEADER_SIZE) {
        return mv_err_set(err, "manifest: entries offset %u != %d",
                          h->entries_offset, MV_GEN_HEADER_SIZE);
    }
    if (h->file_size != (uint64_t) len) {
        return mv_err_set(err, "manifest: file size %zu != recorded %llu",
                          len, (unsigned long long) h->file_size);
    }
    if (mv_gen_manifest_crc(buf, len) != h->crc) {
        return mv_err_set(err, "manifest: checksum mismatch");
    }
    if (h->flags != 0 || !zero_bytes(h->reserved, sizeof(h->reserved))) {
        return mv_err_set(err, "manifest: unknown flags or reserved bytes");
    }
    if (h->dim == 0 || h->dim > MV_SNAP_MAX_DIM) {
        return mv_err_set(err, "manifest: dim %u not in 1..%d", h->dim,
                          MV_SNAP_MAX_DIM);
    }
    if (!mv_metric_valid((int) h->metric)) {
        return mv_err_set(err, "manifest: unknown metric %u", h->metric);
    }
    if (h->n_segments == 0 || h->n_segments > MV_GEN_MAX_SEGMENTS) {
        return mv_err_set(err, "manifest: %u segments not in 1..%d",
                          h->n_segments, MV_GEN_MAX_SEGMENTS);
    }
    if (h->n_positions > MV_SNAPSHOT_MAX_POSITIONS) {
        return mv_err_set(err, "manifest: %u positions > %d",
                          h->n_positions, MV_SNAPSHOT_MAX_POSITIONS);
    }
    expected = MV_GEN_HEADER_SIZE + (uint64_t) h->n_segments
               * MV_GEN_ENTRY_SIZE
               + (uint64_t) h->n_positions * sizeof(mv_stream_pos_t);
    if (expected != (uint64_t) len) {
        return mv_err_set(err, "manifest: %zu bytes != %llu for %u segments "
                          "and %u positions", len,
                          (unsigned long long) expected, h->n_segments,
                          h->n_positions);
    }
    return MV_OK;
}


static int
check_manifest_entry(const mv_gen_header_t *h, const mv_gen_entry_t *e,
    uint32_t i, mv_err_t *err)
{
    const char  *nul = memchr(e->name, '\0', sizeof(e->name));
    size_t       name_len;

    if (nul == NULL) {
        return mv_err_set(err, "segment %u: name not NUL-terminated", i);
    }
    name_len = (size_t) (nul - e->name);
    if (!mv_gen_name_valid(e->name, name_len)
        || !zero_bytes((const uint8_t *) nul, sizeof(e->name) - name_len))
    {
        return mv_err_set(err, "segment %u: invalid file name", i);
    }
    if (!zero_bytes(e->reserved, sizeof(e->reserved))) {
        return mv_err_set(err, "segment %u: reserved bytes not zero", i);
    }
    if (e->size < MV_SNAPSHOT_HEADER_SIZE || e->size % MV_SNAP_ALIGN != 0) {
        return mv_err_set(err, "segment %u: size %llu is not a snapshot's", i,
                          (unsigned long long) e->size);
    }
    if (e->generation > h->generation) {
        return mv_err_set(err, "segment %u: generation %llu > manifest's "
                          "%llu", i, (unsigned long long) e->generation,
                          (unsigned long long) h->generation);
    }
    if (i == 0 ? e->kind != MV_GEN_SEGMENT_ITEMS
               : e->kind != MV_GEN_SEGMENT_USER_BASE
                 && e->kind != MV_GEN_SEGMENT_USER_DELTA)
    {
        return mv_err_set(err, "segment %u: kind %u not allowed there", i,
                          e->kind);
    }
    if (i > 0 && e->n_items != 0) {
        return mv_err_set(err, "segment %u: a user segment with %u items", i,
                          e->n_items);
    }
    if (e->n_items > MV_SNAP_MAX_COUNT || e->n_users > MV_SNAP_MAX_COUNT) {
        return mv_err_set(err, "segment %u: counts too large", i);
    }
    return MV_OK;
}


/*
 * Validates a manifest (see generation.h).  The copy in *mem holds the
 * name pointers, the names, the kinds and the positions, in that order.
 */
int
mv_manifest_parse(const void *buf, size_t len, mv_manifest_input_t *in,
    void **mem, mv_err_t *err)
{
    mv_gen_header_t         h;
    mv_gen_entry_t          e[MV_GEN_MAX_SEGMENTS];
    const uint8_t          *p = buf;
    const char            **names;
    char                   *strings;
    uint32_t               *kinds, i, j;
    mv_stream_pos_t        *pos;
    uint8_t                *block;
    size_t                  size;

    *mem = NULL;
    memset(in, 0, sizeof(*in));
    if (buf == NULL || len < MV_GEN_HEADER_SIZE) {
        return mv_err_set(err, "manifest: truncated: %zu bytes", len);
    }
    memcpy(&h, p, sizeof(h));
    if (check_manifest_header(p, &h, len, err) != MV_OK) {
        return MV_ERR;
    }

    memcpy(e, p + MV_GEN_HEADER_SIZE, (size_t) h.n_segments * sizeof(e[0]));
    for (i = 0; i < h.n_segments; i++) {
        if (check_manifest_entry(&h, &e[i], i, err) != MV_OK) {
            return MV_ERR;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(e[i].name, e[j].name) == 0) {
                return mv_err_set(err, "segment %u: %s named twice", i,
                                  e[i].name);
            }
        }
    }

    size = (size_t) h.n_segments * (sizeof(char *) + MV_GEN_NAME_MAX + 1
                                    + sizeof(uint32_t))
           + (size_t) h.n_positions * sizeof(mv_stream_pos_t);
    block = malloc(size + 64);
    if (block == NULL) {
        return mv_err_set(err, "out of memory");
    }

    pos = (mv_stream_pos_t *) (void *) block;
    memcpy(pos, p + MV_GEN_HEADER_SIZE
                + (size_t) h.n_segments * MV_GEN_ENTRY_SIZE,
           (size_t) h.n_positions * sizeof(*pos));
    if (mv_snap_positions_check(pos, h.n_positions, h.n_positions, err)
        != MV_OK)
    {
        free(block);
        return MV_ERR;
    }
    names = (const char **) (void *) (block + (size_t) h.n_positions
                                              * sizeof(*pos));
    kinds = (uint32_t *) (void *) (names + h.n_segments);
    strings = (char *) (kinds + h.n_segments);
    for (i = 0; i < h.n_segments; i++) {
        memcpy(strings + (size_t) i * (MV_GEN_NAME_MAX + 1), e[i].name,
               MV_GEN_NAME_MAX + 1);
        names[i] = strings + (size_t) i * (MV_GEN_NAME_MAX + 1);
        kinds[i] = e[i].kind;
    }

    in->generation = h.generation;
    in->created_at_ms = h.created_at_ms;
    in->dim = h.dim;
    in->metric = (mv_metric_t) h.metric;
    in->n_users = h.n_users;
    in->n_segments = h.n_segments;
    in->segments = names;
    in->kinds = kinds;
    in->n_positions = h.n_positions;
    in->positions = h.n_positions > 0 ? pos : NULL;
    *mem = block;
    return MV_OK;
}


/*
 * Reads the manifest entry of dir/name from the segment's header, checking
 * what publishing requires of segment i (see generation.h).
 */
static int
read_segment_entry(const char *dir, const mv_manifest_input_t *in,
    uint32_t i, mv_gen_entry_t *e, mv_err_t *err)
{
    mv_snap_header_t  *h;
    struct stat        st;
    char               path[PATH_MAX];
    ssize_t            n;
    int                fd, rc = MV_ERR;
    uint32_t           kind = in->kinds[i];
    const char        *name = in->segments[i];

    if (!mv_gen_name_valid(name, strlen(name))) {
        return mv_err_set(err, "segment %u: invalid file name \"%s\"", i,
                          name);
    }
    n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t) n >= sizeof(path)) {
        return mv_err_set(err, "path too long: %s", dir);
    }
    h = malloc(sizeof(*h));
    if (h == NULL) {
        return mv_err_set(err, "out of memory");
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mv_err_set(err, "open(%s): %s", path, strerror(errno));
        free(h);
        return MV_ERR;
    }

    if (fstat(fd, &st) != 0) {
        mv_err_set(err, "fstat(%s): %s", path, strerror(errno));
    } else if ((n = pread(fd, h, sizeof(*h), 0)) != (ssize_t) sizeof(*h)
               || memcmp(h->magic, MV_SNAP_MAGIC, MV_SNAP_MAGIC_LEN) != 0
               || h->header_size != MV_SNAPSHOT_HEADER_SIZE
               || h->file_size != (uint64_t) st.st_size
               || mv_snap_header_crc(h) != h->header_crc)
    {
        mv_err_set(err, "%s: not a complete snapshot", path);
    } else if (h->dim != in->dim || h->metric != (uint32_t) in->metric) {
        mv_err_set(err, "%s: dim %u metric %u, the generation's are %u, %d",
                   path, h->dim, h->metric, in->dim, (int) in->metric);
    } else if (h->generation > in->generation) {
        mv_err_set(err, "%s: generation %llu is newer than %llu", path,
                   (unsigned long long) h->generation,
                   (unsigned long long) in->generation);
    } else if (i == 0 ? kind != MV_GEN_SEGMENT_ITEMS
                      : (kind != MV_GEN_SEGMENT_USER_BASE
                         && kind != MV_GEN_SEGMENT_USER_DELTA)
                        || h->n_items != 0 || h->n_categories != 0)
    {
        mv_err_set(err, "%s: segment %u of kind %u with %u items is not "
                   "allowed there", path, i, kind, h->n_items);
    } else {
        memset(e, 0, sizeof(*e));
        memcpy(e->name, name, strlen(name));
        e->size = h->file_size;
        e->generation = h->generation;
        e->header_crc = h->header_crc;
        e->kind = kind;
        e->n_items = h->n_items;
        e->n_users = h->n_users;
        rc = MV_OK;
    }

    close(fd);
    free(h);
    return rc;
}


/* Builds the bytes of in's manifest into a malloc'd buffer. */
static uint8_t *
build_manifest(const char *dir, const mv_manifest_input_t *in, size_t *len,
    mv_err_t *err)
{
    mv_gen_header_t  h;
    mv_gen_entry_t   e;
    uint8_t         *buf;
    uint32_t         i, j;

    if (in->n_segments == 0 || in->n_segments > MV_GEN_MAX_SEGMENTS
        || in->n_positions > MV_SNAPSHOT_MAX_POSITIONS
        || (in->n_positions > 0 && in->positions == NULL))
    {
        mv_err_set(err, "manifest: %u segments, %u positions", in->n_segments,
                   in->n_positions);
        return NULL;
    }
    for (i = 0; i < in->n_segments; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(in->segments[i], in->segments[j]) == 0) {
                mv_err_set(err, "segment %s named twice", in->segments[i]);
                return NULL;
            }
        }
    }

    *len = MV_GEN_HEADER_SIZE + (size_t) in->n_segments * MV_GEN_ENTRY_SIZE
           + (size_t) in->n_positions * sizeof(mv_stream_pos_t);
    buf = calloc(1, *len);
    if (buf == NULL) {
        mv_err_set(err, "out of memory");
        return NULL;
    }

    for (i = 0; i < in->n_segments; i++) {
        if (read_segment_entry(dir, in, i, &e, err) != MV_OK) {
            free(buf);
            return NULL;
        }
        memcpy(buf + MV_GEN_HEADER_SIZE + (size_t) i * MV_GEN_ENTRY_SIZE, &e,
               sizeof(e));
    }
    if (in->n_positions > 0) {
        memcpy(buf + MV_GEN_HEADER_SIZE
                   + (size_t) in->n_segments * MV_GEN_ENTRY_SIZE,
               in->positions, (size_t) in->n_positions
                              * sizeof(mv_stream_pos_t));
    }

    memset(&h, 0, sizeof(h));
    memcpy(h.magic, MV_GEN_MAGIC, MV_GEN_MAGIC_LEN);
    h.version = MV_GEN_VERSION;
    h.endian_mark = MV_SNAP_ENDIAN_MARK;
    h.entries_offset = MV_GEN_HEADER_SIZE;
    h.file_size = *len;
    h.generation = in->generation;
    h.created_at_ms = in->created_at_ms;
    h.dim = in->dim;
    h.metric = (uint32_t) in->metric;
    h.n_segments = in->n_segments;
    h.n_positions = in->n_positions;
    h.n_users = in->n_users;
    memcpy(buf, &h, sizeof(h));
    h.crc = mv_gen_manifest_crc(buf, *len);
    memcpy(buf, &h, sizeof(h));

    /* what a reader will check, checked before anything is published */
    if (check_manifest_header(buf, &h, *len, err) != MV_OK
        || mv_snap_positions_check(in->positions, in->n_positions,
                                   in->n_positions, err) != MV_OK)
    {
        free(buf);
        return NULL;
    }
    return buf;
}


/* ---- publishing --------------------------------------------------------- */

/* Writes in's manifest into dir and publishes it (see generation.h). */
int
mv_generation_publish(const char *dir, const mv_manifest_input_t *in,
    unsigned keep, mv_err_t *err)
{
    char      name[MV_GEN_NAME_MAX + 1], path[PATH_MAX], tmp[PATH_MAX];
    uint8_t  *buf;
    size_t    len;
    int       fd, n, rc;

    if (keep < 1) {
        return mv_err_set(err, "keep must be >= 1");
    }
    mv_gen_manifest_name(in->generation, name, sizeof(name));
    n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t) n >= sizeof(path)) {
        return mv_err_set(err, "path too long: %s", dir);
    }

    buf = build_manifest(dir, in, &len, err);
    if (buf == NULL) {
        return MV_ERR;
    }
    fd = mv_file_open_temp(path, tmp, sizeof(tmp), err);
    if (fd < 0) {
        free(buf);
        return MV_ERR;
    }
    rc = mv_file_commit(fd, mv_file_write_all(fd, buf, len, tmp, err), tmp,
                        path, err);
    free(buf);

    if (rc != MV_OK || mv_dir_fsync(dir, err) != MV_OK
        || mv_symlink_replace(dir, "current", name, err) != MV_OK)
    {
        return MV_ERR;
    }

    mv_gen_prune(dir, in->generation, keep);
    return MV_OK;
}
