/*
 * generation_manifest.c -- the writer's side of generations (generation.h):
 * file names, manifests written and parsed, publishing, pruning, listing
 * and the clean-up after an interrupted publish.  The reader is
 * generation_read.c.
 *
 * A manifest is small (at most 64 segments and 64 positions: 16 KiB), so
 * it is built in memory and written whole through the same temp file,
 * fsync, rename steps as a snapshot (files.h); the parser validates every
 * byte before it copies anything out, in the order of the layout, and
 * never reads past len.
 *
 * Pruning works from names alone: every file a generation may own carries
 * its generation in its name (gen-G.mvm, items-G.mvs, users-G.mvs,
 * users-G.base.mvs, snapshot-G.mvs, and "<name>.dedupe" beside any of
 * them).  What the newest `keep` manifests name (and what `current` names)
 * is kept; other such files of generations <= G go.  A manifest that
 * cannot be read when its names are needed stops the pruning: removing
 * nothing is always safe, removing a file a kept generation uses is not.
 * Pruning is best effort (the publish is already visible); the next
 * publish retries.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
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


/* The kinds of generation-carrying names (gen_name_parse). */
typedef enum {
    GEN_FILE_NONE = 0,
    GEN_FILE_MANIFEST,
    GEN_FILE_ITEMS,
    GEN_FILE_DELTA,
    GEN_FILE_BASE,
    GEN_FILE_SNAPSHOT
} gen_file_t;

static const struct {
    gen_file_t   type;
    const char  *prefix;
    const char  *suffix;
} gen_names[] = {
    { GEN_FILE_MANIFEST, "gen-",      ".mvm" },
    { GEN_FILE_ITEMS,    "items-",    ".mvs" },
    { GEN_FILE_DELTA,    "users-",    ".mvs" },
    { GEN_FILE_BASE,     "users-",    ".base.mvs" },
    { GEN_FILE_SNAPSHOT, "snapshot-", ".mvs" }
};

#define GEN_N_NAMES  (sizeof(gen_names) / sizeof(gen_names[0]))
#define DEDUPE_SUFFIX  ".dedupe"

/* The set of names the kept generations use (small: a linear scan). */
typedef struct name_set {
    size_t   n;
    size_t   cap;
    char   **names;
} name_set_t;


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


/*
 * The type and generation of a generation-carrying name; *side is set to 1
 * when name is such a name followed by DEDUPE_SUFFIX.  GEN_FILE_NONE for
 * any other name (temp files included).
 */
static gen_file_t
gen_name_parse(const char *name, uint64_t *g, int *side)
{
    char    base[NAME_MAX + 1];
    size_t  len = strlen(name), dl = strlen(DEDUPE_SUFFIX), i;

    *side = 0;
    if (len > dl && len <= NAME_MAX
        && strcmp(name + len - dl, DEDUPE_SUFFIX) == 0)
    {
        memcpy(base, name, len - dl);
        base[len - dl] = '\0';
        name = base;
        *side = 1;
    }

    for (i = 0; i < GEN_N_NAMES; i++) {
        if (mv_seqname_parse(name, gen_names[i].prefix, gen_names[i].suffix,
                             g))
        {
            return gen_names[i].type;
        }
    }

    return GEN_FILE_NONE;
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


/* ---- reading a directory ------------------------------------------------ */

static int
name_set_add(name_set_t *s, const char *name)
{
    char  **grown;

    if (s->n == s->cap) {
        s->cap = s->cap == 0 ? 16 : s->cap * 2;
        grown = realloc(s->names, s->cap * sizeof(*grown));
        if (grown == NULL) {
            return MV_ERR;
        }
        s->names = grown;
    }
    s->names[s->n] = strdup(name);
    if (s->names[s->n] == NULL) {
        return MV_ERR;
    }
    s->n++;
    return MV_OK;
}


static int
name_set_has(const name_set_t *s, const char *name)
{
    size_t  i;

    for (i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}


static void
name_set_free(name_set_t *s)
{
    size_t  i;

    for (i = 0; i < s->n; i++) {
        free(s->names[i]);
    }
    free(s->names);
    memset(s, 0, sizeof(*s));
}


/*
 * Adds manifest dir/name and every segment it names to set.  MV_ERR when
 * it cannot be read or parsed (or memory runs out).
 */
static int
add_manifest_names(const char *dir, const char *name, name_set_t *set,
    mv_err_t *err)
{
    mv_manifest_input_t  in;
    char                 path[PATH_MAX];
    uint8_t             *buf;
    void                *mem;
    FILE                *fp;
    size_t               len;
    uint32_t             i;
    int                  rc;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int) sizeof(path)
        || (buf = malloc(MV_GEN_MANIFEST_MAX)) == NULL)
    {
        return mv_err_set(err, "cannot read %s/%s", dir, name);
    }
    fp = fopen(path, "rb");
    if (fp == NULL) {
        free(buf);
        return mv_err_set(err, "open(%s): %s", path, strerror(errno));
    }
    len = fread(buf, 1, MV_GEN_MANIFEST_MAX, fp);
    fclose(fp);

    rc = mv_manifest_parse(buf, len, &in, &mem, err);
    free(buf);
    if (rc != MV_OK) {
        return MV_ERR;
    }
    rc = name_set_add(set, name);
    for (i = 0; rc == MV_OK && i < in.n_segments; i++) {
        rc = name_set_add(set, in.segments[i]);
    }
    free(mem);
    return rc == MV_OK ? MV_OK : mv_err_set(err, "out of memory");
}


/*
 * What dir/current names (its link text, "" when there is none) and, when
 * that is a manifest, the files it names, into set.
 */
static int
add_current_names(const char *dir, name_set_t *set, mv_err_t *err)
{
    char     path[PATH_MAX], target[NAME_MAX + 1];
    ssize_t  n;
    uint64_t g;
    int      side;

    if (snprintf(path, sizeof(path), "%s/current", dir)
        >= (int) sizeof(path))
    {
        return mv_err_set(err, "path too long: %s", dir);
    }
    n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0) {
        return MV_OK;
    }
    target[n] = '\0';
    if (gen_name_parse(target, &g, &side) == GEN_FILE_MANIFEST && !side) {
        return add_manifest_names(dir, target, set, err);
    }
    return name_set_add(set, target) == MV_OK
           ? MV_OK : mv_err_set(err, "out of memory");
}


typedef struct gen_entry {
    uint64_t    generation;
    gen_file_t  type;
    char       *name;
} gen_entry_t;


static int
gen_entry_desc(const void *a, const void *b)
{
    const gen_entry_t  *x = a, *y = b;

    if (x->generation != y->generation) {
        return x->generation > y->generation ? -1 : 1;
    }
    return (int) x->type - (int) y->type;
}


static void
gen_entries_free(gen_entry_t *e, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(e[i].name);
    }
    free(e);
}


/*
 * Every file of dir whose name has one of the types in `mask` (bit 1 <<
 * type; side files not included), newest first.  A missing dir has none.
 */
static int
scan_dir(const char *dir, unsigned mask, gen_entry_t **out, size_t *n_out,
    mv_err_t *err)
{
    DIR            *d;
    struct dirent  *de;
    gen_entry_t    *e = NULL, *grown;
    size_t          n = 0, cap = 0;
    gen_file_t      type;
    uint64_t        g;
    int             side;

    *out = NULL;
    *n_out = 0;
    d = opendir(dir);
    if (d == NULL) {
        return errno == ENOENT ? MV_OK
               : mv_err_set(err, "opendir(%s): %s", dir, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        type = gen_name_parse(de->d_name, &g, &side);
        if (type == GEN_FILE_NONE || side || !(mask & (1u << type))) {
            continue;
        }
        if (n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            grown = realloc(e, cap * sizeof(*e));
            if (grown == NULL) {
                goto nomem;
            }
            e = grown;
        }
        e[n].generation = g;
        e[n].type = type;
        e[n].name = strdup(de->d_name);
        if (e[n].name == NULL) {
            goto nomem;
        }
        n++;
    }
    closedir(d);

    if (n > 1) {
        qsort(e, n, sizeof(*e), gen_entry_desc);
    }
    *out = e;
    *n_out = n;
    return MV_OK;

nomem:
    closedir(d);
    gen_entries_free(e, n);
    return mv_err_set(err, "out of memory listing %s", dir);
}


static void
unlink_in(const char *dir, const char *name, int *removed)
{
    char  path[PATH_MAX];
    int   n = snprintf(path, sizeof(path), "%s/%s", dir, name);

    if (n > 0 && (size_t) n < sizeof(path) && unlink(path) == 0) {
        (*removed)++;
    }
}


/*
 * Removes the side files (<name>.dedupe) of generation-carrying files of
 * generations <= g_max that are gone.
 */
static int
remove_stray_sides(const char *dir, uint64_t g_max)
{
    DIR            *d = opendir(dir);
    struct dirent  *de;
    struct stat     st;
    char            path[PATH_MAX];
    uint64_t        g;
    int             side, n, removed = 0;

    if (d == NULL) {
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        if (gen_name_parse(de->d_name, &g, &side) == GEN_FILE_NONE || !side
            || g > g_max)
        {
            continue;
        }
        n = snprintf(path, sizeof(path), "%s/%.*s", dir,
                     (int) (strlen(de->d_name) - strlen(DEDUPE_SUFFIX)),
                     de->d_name);
        if (n > 0 && (size_t) n < sizeof(path) && lstat(path, &st) != 0
            && errno == ENOENT)
        {
            unlink_in(dir, de->d_name, &removed);
        }
    }
    closedir(d);
    return removed;
}


/*
 * Prunes dir after generation g was published (see the top of this file
 * and generation.h).  Best effort.
 */
static void
prune(const char *dir, uint64_t g, unsigned keep)
{
    gen_entry_t  *e;
    name_set_t    kept;
    size_t        n, i;
    unsigned      manifests = 0;
    int           removed = 0;
    unsigned      mask = 1u << GEN_FILE_MANIFEST | 1u << GEN_FILE_ITEMS
                         | 1u << GEN_FILE_DELTA | 1u << GEN_FILE_BASE
                         | 1u << GEN_FILE_SNAPSHOT;

    memset(&kept, 0, sizeof(kept));
    if (scan_dir(dir, mask, &e, &n, NULL) != MV_OK) {
        return;
    }
    if (add_current_names(dir, &kept, NULL) != MV_OK) {
        goto done;
    }
    for (i = 0; i < n && manifests < keep; i++) {
        if (e[i].type != GEN_FILE_MANIFEST || e[i].generation > g) {
            continue;
        }
        if (add_manifest_names(dir, e[i].name, &kept, NULL) != MV_OK) {
            goto done;
        }
        manifests++;
    }

    for (i = 0; i < n; i++) {
        if (e[i].generation <= g && !name_set_has(&kept, e[i].name)) {
            unlink_in(dir, e[i].name, &removed);
        }
    }
    remove_stray_sides(dir, g);

done:
    name_set_free(&kept);
    gen_entries_free(e, n);
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

    prune(dir, in->generation, keep);
    return MV_OK;
}


/* ---- listing and cleaning ----------------------------------------------- */

int
mv_generation_list(const char *dir, mv_generation_list_t *list,
    mv_err_t *err)
{
    gen_entry_t  *e;
    size_t        n, i;
    int           len;

    memset(list, 0, sizeof(*list));
    if (scan_dir(dir, 1u << GEN_FILE_MANIFEST | 1u << GEN_FILE_SNAPSHOT, &e,
                 &n, err) != MV_OK)
    {
        return MV_ERR;
    }
    if (n == 0) {
        return MV_OK;
    }

    list->generations = calloc(n, sizeof(uint64_t));
    list->paths = calloc(n, sizeof(char *));
    if (list->generations == NULL || list->paths == NULL) {
        goto nomem;
    }
    for (i = 0; i < n; i++) {
        len = snprintf(NULL, 0, "%s/%s", dir, e[i].name);
        list->paths[i] = malloc((size_t) len + 1);
        if (list->paths[i] == NULL) {
            goto nomem;
        }
        snprintf(list->paths[i], (size_t) len + 1, "%s/%s", dir, e[i].name);
        list->generations[i] = e[i].generation;
        list->n = i + 1;
    }
    gen_entries_free(e, n);
    return MV_OK;

nomem:
    list->n = n;
    mv_generation_list_free(list);
    gen_entries_free(e, n);
    return mv_err_set(err, "out of memory listing %s", dir);
}


void
mv_generation_list_free(mv_generation_list_t *list)
{
    size_t  i;

    if (list->paths != NULL) {
        for (i = 0; i < list->n; i++) {
            free(list->paths[i]);
        }
    }
    free(list->paths);
    free(list->generations);
    memset(list, 0, sizeof(*list));
}


int
mv_generation_newest(const char *dir, uint64_t *newest, mv_err_t *err)
{
    DIR            *d;
    struct dirent  *de;
    uint64_t        g;
    int             side;

    *newest = 0;
    d = opendir(dir);
    if (d == NULL) {
        return errno == ENOENT ? MV_OK
               : mv_err_set(err, "opendir(%s): %s", dir, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        if (gen_name_parse(de->d_name, &g, &side) != GEN_FILE_NONE
            && g > *newest)
        {
            *newest = g;
        }
    }
    closedir(d);
    return MV_OK;
}


int
mv_generation_remove_orphans(const char *dir, mv_err_t *err)
{
    gen_entry_t  *e;
    name_set_t    named;
    size_t        n, i;
    int           removed;

    removed = mv_snapshot_remove_temps(dir, err);
    if (removed < 0) {
        return -1;
    }

    memset(&named, 0, sizeof(named));
    if (scan_dir(dir, 1u << GEN_FILE_MANIFEST, &e, &n, err) != MV_OK) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (add_manifest_names(dir, e[i].name, &named, err) != MV_OK) {
            /* unreadable: what it names is unknown, so nothing goes */
            gen_entries_free(e, n);
            name_set_free(&named);
            return removed;
        }
    }
    gen_entries_free(e, n);

    if (add_current_names(dir, &named, err) != MV_OK
        || scan_dir(dir, 1u << GEN_FILE_ITEMS | 1u << GEN_FILE_DELTA
                         | 1u << GEN_FILE_BASE, &e, &n, err) != MV_OK)
    {
        name_set_free(&named);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!name_set_has(&named, e[i].name)) {
            unlink_in(dir, e[i].name, &removed);
        }
    }
    gen_entries_free(e, n);
    name_set_free(&named);
    return removed;
}
