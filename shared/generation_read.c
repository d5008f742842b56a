/*
 * generation_read.c -- the reader's side of generations (generation.h):
 * opening `current` (a manifest or a plain snapshot), sharing unchanged
 * segments with the generation in use, user lookups over the overlay of
 * user segments, and the compaction of those into one base.
 *
 * Opening a manifest trusts nothing it names until it is checked:
 *
 *   1. `path` is opened once; its first 8 bytes tell a manifest from a
 *      snapshot (a snapshot is a generation of one segment, read from the
 *      same descriptor);
 *   2. the manifest is read whole (at most MV_GEN_MANIFEST_MAX bytes) from
 *      that descriptor and parsed (mv_manifest_parse);
 *   3. each segment is opened relative to the manifest's directory, and
 *      its identity (fstat, and the header's generation and CRC as stored)
 *      compared with the manifest's entry: a missing file or a different
 *      one means the publisher moved on (pruned or replaced it), *moved;
 *   4. a segment of `reuse` with the same identity (device and inode too)
 *      is shared (a reference more); any other is mapped and validated in
 *      full (mv_snapshot_validate), then checked against the manifest (dim,
 *      metric, counts, items only in segment 0).
 *
 * Segments are reference counted without atomics: the thread contract in
 * generation.h makes every open with reuse R and every close of a
 * generation sharing R's segments happen in one thread at a time.
 *
 * A lookup probes the user segments newest first (the user tables are
 * seeded hash tables in place in the mappings: no memory of our own).
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "generation_format.h"


typedef struct gen_segment {
    unsigned                 refs;
    void                    *map;
    size_t                   len;
    mv_snapshot_identity_t   id;
    mv_snapshot_view_t       view;
} gen_segment_t;

struct mv_generation {
    mv_generation_info_t     info;
    mv_manifest_input_t      manifest;     /* when has_manifest */
    void                    *manifest_mem; /* what manifest points into */
    int                      has_manifest;
    gen_segment_t           *segments[MV_GEN_MAX_SEGMENTS];
    mv_stream_pos_t          positions[MV_SNAPSHOT_MAX_POSITIONS];
};

/* What one open needs besides the generation it builds. */
typedef struct gen_open {
    const mv_generation_t   *reuse;
    int                     *moved;
    mv_err_t                *err;
} gen_open_t;


static void
segment_release(gen_segment_t *s)
{
    if (s != NULL && --s->refs == 0) {
        munmap(s->map, s->len);
        free(s);
    }
}


/* A segment of o->reuse with identity id, or NULL. */
static gen_segment_t *
find_reusable(const gen_open_t *o, const mv_snapshot_identity_t *id)
{
    uint32_t  i;

    if (o->reuse == NULL || !id->has_header) {
        return NULL;
    }
    for (i = 0; i < o->reuse->info.n_segments; i++) {
        if (mv_snapshot_identity_equal(&o->reuse->segments[i]->id, id)) {
            return o->reuse->segments[i];
        }
    }
    return NULL;
}


/*
 * The segment open as fd (path names it in errors), whose identity is id:
 * shared from o->reuse, or mapped and validated.  Adds to g's info.
 */
static gen_segment_t *
segment_attach(const gen_open_t *o, mv_generation_t *g, int fd,
    const char *path, const mv_snapshot_identity_t *id)
{
    gen_segment_t  *s;
    void           *map;

    g->info.bytes += id->size;
    s = find_reusable(o, id);
    if (s != NULL) {
        s->refs++;
        g->info.segments_reused++;
        return s;
    }

    if (id->size < MV_SNAPSHOT_HEADER_SIZE || id->size > SIZE_MAX) {
        mv_err_set(o->err, "%s: %llu bytes is not a snapshot", path,
                   (unsigned long long) id->size);
        return NULL;
    }
    map = mmap(NULL, (size_t) id->size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        mv_err_set(o->err, "mmap(%s): %s", path, strerror(errno));
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        mv_err_set(o->err, "out of memory");
        munmap(map, (size_t) id->size);
        return NULL;
    }
    s->refs = 1;
    s->map = map;
    s->len = (size_t) id->size;
    s->id = *id;
    g->info.bytes_validated += id->size;

    if (mv_snapshot_validate(map, s->len, &s->view, o->err) != MV_OK) {
        segment_release(s);
        return NULL;
    }
    return s;
}


/* ---- a plain snapshot --------------------------------------------------- */

static int
open_snapshot(const gen_open_t *o, mv_generation_t *g, int fd,
    const char *path)
{
    mv_snapshot_identity_t   id;
    const mv_snapshot_view_t *v;
    mv_err_t                 sub;

    if (mv_snapshot_identity_fd(fd, path, &id, o->err) != MV_OK) {
        return MV_ERR;
    }
    g->segments[0] = segment_attach(o, g, fd, path, &id);
    if (g->segments[0] == NULL) {
        if (o->err != NULL) {
            sub = *o->err;
            mv_err_set(o->err, "%s: %s", path, sub.msg);
        }
        return MV_ERR;
    }

    v = &g->segments[0]->view;
    g->info.n_segments = 1;
    g->info.generation = v->generation;
    g->info.created_at_ms = v->created_at_ms;
    g->info.dim = v->dim;
    g->info.metric = v->metric;
    g->info.n_users = v->n_users;
    g->info.n_positions = v->n_positions;
    g->info.positions = v->positions;
    return MV_OK;
}


/* ---- a manifest --------------------------------------------------------- */

/*
 * Opens the directory the manifest `path` names lives in: path's own, or,
 * when path is a symlink whose text has a '/', the target's.
 */
static int
open_manifest_dir(const char *path, mv_err_t *err)
{
    char         dir[PATH_MAX], target[PATH_MAX];
    const char  *slash;
    ssize_t      n;
    size_t       len;
    int          fd;

    slash = strrchr(path, '/');
    len = slash == NULL ? 0 : slash == path ? 1 : (size_t) (slash - path);
    if (len >= sizeof(dir)) {
        return mv_err_set(err, "path too long: %s", path);
    }
    memcpy(dir, slash == NULL ? "." : path, slash == NULL ? 1 : len);
    dir[slash == NULL ? 1 : len] = '\0';

    n = readlink(path, target, sizeof(target) - 1);
    if (n > 0) {
        target[n] = '\0';
        slash = strrchr(target, '/');
        if (slash != NULL) {
            len = slash == target ? 1 : (size_t) (slash - target);
            target[len] = '\0';
            if (target[0] == '/') {
                memcpy(dir, target, len + 1);
            } else if (strlen(dir) + 1 + len >= sizeof(dir)) {
                return mv_err_set(err, "path too long: %s", path);
            } else {
                strcat(dir, "/");
                strcat(dir, target);
            }
        }
    }

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return mv_err_set(err, "open(%s): %s", dir, strerror(errno));
    }
    return fd;
}


/* Reads the whole manifest from fd into a malloc'd buffer. */
static uint8_t *
read_manifest(int fd, const char *path, size_t *len, mv_err_t *err)
{
    struct stat  st;
    uint8_t     *buf;
    ssize_t      n;
    size_t       got = 0;

    if (fstat(fd, &st) != 0) {
        mv_err_set(err, "fstat(%s): %s", path, strerror(errno));
        return NULL;
    }
    if (st.st_size < 0 || (uint64_t) st.st_size > MV_GEN_MANIFEST_MAX) {
        mv_err_set(err, "%s: manifest of %lld bytes (at most %u)", path,
                   (long long) st.st_size, MV_GEN_MANIFEST_MAX);
        return NULL;
    }
    buf = malloc((size_t) st.st_size + 1);
    if (buf == NULL) {
        mv_err_set(err, "out of memory");
        return NULL;
    }
    /* one more byte than fstat said, to notice a file that grew */
    while (got <= (size_t) st.st_size) {
        n = pread(fd, buf + got, (size_t) st.st_size + 1 - got, (off_t) got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            mv_err_set(err, "read(%s): %s", path, strerror(errno));
            free(buf);
            return NULL;
        }
        if (n == 0) {
            break;
        }
        got += (size_t) n;
    }
    *len = got;
    return buf;
}


/* Checks segment i's view against the manifest's entry and kind. */
static int
check_segment(const mv_manifest_input_t *m, const mv_gen_entry_t *e,
    const mv_snapshot_view_t *v, uint32_t i, mv_err_t *err)
{
    if (v->dim != m->dim || v->metric != m->metric) {
        return mv_err_set(err, "segment %s: dim %u metric %d, the "
                          "generation's are %u, %d", e->name, v->dim,
                          (int) v->metric, m->dim, (int) m->metric);
    }
    if (v->n_items != e->n_items || v->n_users != e->n_users) {
        return mv_err_set(err, "segment %s: %u items, %u users, the "
                          "manifest says %u, %u", e->name, v->n_items,
                          v->n_users, e->n_items, e->n_users);
    }
    if (i > 0 && (v->n_items != 0 || v->n_categories != 0)) {
        return mv_err_set(err, "segment %s: a user segment with items or "
                          "categories", e->name);
    }
    return MV_OK;
}


/* Opens manifest entry i (in dirfd) into g->segments[i]. */
static int
open_segment(const gen_open_t *o, mv_generation_t *g, int dirfd,
    const mv_manifest_input_t *m, const mv_gen_entry_t *e, uint32_t i)
{
    mv_snapshot_identity_t  id;
    gen_segment_t          *s;
    int                     fd, rc;

    fd = openat(dirfd, e->name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && o->moved != NULL) {
            *o->moved = 1;
        }
        return mv_err_set(o->err, "segment %s: open: %s", e->name,
                          strerror(errno));
    }
    if (mv_snapshot_identity_fd(fd, e->name, &id, o->err) != MV_OK) {
        close(fd);
        return MV_ERR;
    }
    if (!id.has_header || id.size != e->size
        || id.generation != e->generation || id.header_crc != e->header_crc)
    {
        close(fd);
        if (o->moved != NULL) {
            *o->moved = 1;
        }
        return mv_err_set(o->err, "segment %s: not the file the manifest "
                          "names (size %llu, generation %llu, header CRC "
                          "0x%08x; recorded %llu, %llu, 0x%08x)", e->name,
                          (unsigned long long) id.size,
                          (unsigned long long) id.generation, id.header_crc,
                          (unsigned long long) e->size,
                          (unsigned long long) e->generation, e->header_crc);
    }

    s = segment_attach(o, g, fd, e->name, &id);
    close(fd);
    if (s == NULL) {
        return MV_ERR;
    }
    g->segments[i] = s;
    g->info.n_segments = i + 1;

    rc = check_segment(m, e, &s->view, i, o->err);
    return rc;
}


static int
open_manifest(const gen_open_t *o, mv_generation_t *g, int fd,
    const char *path)
{
    mv_manifest_input_t   m;
    mv_gen_entry_t        e;
    uint8_t              *buf;
    void                 *mem = NULL;
    size_t                len;
    uint32_t              i;
    int                   dirfd, rc = MV_ERR;

    buf = read_manifest(fd, path, &len, o->err);
    if (buf == NULL) {
        return MV_ERR;
    }
    if (mv_manifest_parse(buf, len, &m, &mem, o->err) != MV_OK) {
        free(buf);
        return MV_ERR;
    }
    dirfd = open_manifest_dir(path, o->err);
    if (dirfd < 0) {
        goto done;
    }

    g->info.bytes = len;
    g->info.bytes_validated = len;
    for (i = 0; i < m.n_segments; i++) {
        memcpy(&e, buf + MV_GEN_HEADER_SIZE + (size_t) i * MV_GEN_ENTRY_SIZE,
               sizeof(e));
        if (open_segment(o, g, dirfd, &m, &e, i) != MV_OK) {
            goto done;
        }
    }

    g->info.generation = m.generation;
    g->info.created_at_ms = m.created_at_ms;
    g->info.dim = m.dim;
    g->info.metric = m.metric;
    g->info.n_users = m.n_users;
    g->info.n_positions = m.n_positions;
    if (m.n_positions > 0) {
        memcpy(g->positions, m.positions,
               m.n_positions * sizeof(mv_stream_pos_t));
    }
    g->info.positions = g->positions;
    g->manifest = m;
    g->manifest_mem = mem;
    g->has_manifest = 1;
    mem = NULL;
    rc = MV_OK;

done:
    if (dirfd >= 0) {
        close(dirfd);
    }
    free(mem);
    free(buf);
    return rc;
}


/* ---- the generation ----------------------------------------------------- */

/* Opens path as a generation (see generation.h). */
mv_generation_t *
mv_generation_open(const char *path, const mv_generation_t *reuse,
    int *moved, mv_err_t *err)
{
    mv_generation_t  *g;
    gen_open_t        o;
    struct stat       st;
    char              magic[MV_SNAP_MAGIC_LEN];
    ssize_t           n;
    int               fd, rc;

    if (moved != NULL) {
        *moved = 0;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* a link whose target was pruned after `current` moved on */
        if (errno == ENOENT && moved != NULL && lstat(path, &st) == 0
            && S_ISLNK(st.st_mode))
        {
            *moved = 1;
        }
        mv_err_set(err, "open(%s): %s", path, strerror(errno));
        return NULL;
    }

    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        close(fd);
        mv_err_set(err, "out of memory");
        return NULL;
    }
    o.reuse = reuse;
    o.moved = moved;
    o.err = err;

    if (mv_snapshot_identity_fd(fd, path, &g->info.identity, err) != MV_OK) {
        close(fd);
        free(g);
        return NULL;
    }

    do {
        n = pread(fd, magic, sizeof(magic), 0);
    } while (n < 0 && errno == EINTR);

    if (n == (ssize_t) sizeof(magic)
        && memcmp(magic, MV_GEN_MAGIC, MV_GEN_MAGIC_LEN) == 0)
    {
        rc = open_manifest(&o, g, fd, path);
    } else if (n == (ssize_t) sizeof(magic)
               && memcmp(magic, MV_SNAP_MAGIC, MV_SNAP_MAGIC_LEN) == 0)
    {
        rc = open_snapshot(&o, g, fd, path);
    } else {
        rc = mv_err_set(err, "%s: neither a manifest nor a snapshot", path);
    }
    close(fd);

    if (rc != MV_OK) {
        mv_generation_close(g);
        return NULL;
    }
    return g;
}


const mv_generation_info_t *
mv_generation_info(const mv_generation_t *g)
{
    return &g->info;
}


const mv_snapshot_view_t *
mv_generation_items(const mv_generation_t *g)
{
    return &g->segments[0]->view;
}


const mv_manifest_input_t *
mv_generation_manifest(const mv_generation_t *g)
{
    return g->has_manifest ? &g->manifest : NULL;
}


const mv_snapshot_view_t *
mv_generation_segment(const mv_generation_t *g, uint32_t i)
{
    return i < g->info.n_segments ? &g->segments[i]->view : NULL;
}


/* The vector of id in segments [0, below): the newest that has it. */
static const float *
find_user(const mv_generation_t *g, uint32_t below, const char *id,
    size_t len)
{
    const mv_snapshot_view_t  *v;
    int64_t                    idx;
    uint32_t                   i;

    for (i = below; i-- > 0; ) {
        v = &g->segments[i]->view;
        idx = mv_idtable_find(&v->users, id, len);
        if (idx >= 0) {
            return v->user_vectors + (size_t) idx * v->dim;
        }
    }
    return NULL;
}


const float *
mv_generation_user(const mv_generation_t *g, const char *id, size_t len)
{
    return find_user(g, g->info.n_segments, id, len);
}


void
mv_generation_close(mv_generation_t *g)
{
    uint32_t  i;

    if (g == NULL) {
        return;
    }
    for (i = 0; i < MV_GEN_MAX_SEGMENTS; i++) {
        segment_release(g->segments[i]);
    }
    free(g->manifest_mem);
    free(g);
}


/* ---- compaction --------------------------------------------------------- */

/* Writes every user of g once, newest vector, to dir/name (generation.h). */
int
mv_generation_compact_users(const char *dir, const mv_generation_t *g,
    const char *name, mv_err_t *err)
{
    const mv_snapshot_view_t  *v;
    mv_snapshot_input_t        in;
    const char               **ids = NULL;
    char                      *bytes = NULL, path[PATH_MAX];
    float                     *vectors = NULL;
    const char                *id;
    uint64_t                   total = 0, n_bytes = 0;
    uint32_t                   i, u, n = 0;
    size_t                     len, at = 0, dim = g->info.dim;
    int                        rc;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name)
        >= (int) sizeof(path))
    {
        return mv_err_set(err, "path too long: %s", dir);
    }
    for (i = 0; i < g->info.n_segments; i++) {
        v = &g->segments[i]->view;
        total += v->n_users;
        n_bytes += v->users.offsets[v->n_users] + (uint64_t) v->n_users;
    }
    if (total > MV_SNAP_MAX_COUNT) {
        return mv_err_set(err, "%llu users: more than a snapshot holds",
                          (unsigned long long) total);
    }

    ids = malloc((total + 1) * sizeof(*ids));
    bytes = malloc(n_bytes + 1);
    vectors = malloc((total + 1) * dim * sizeof(float));
    if (ids == NULL || bytes == NULL || vectors == NULL) {
        rc = mv_err_set(err, "out of memory");
        goto done;
    }

    /* newest segment first; a user newer segments have is already in */
    for (i = g->info.n_segments; i-- > 0; ) {
        v = &g->segments[i]->view;
        for (u = 0; u < v->n_users; u++) {
            id = mv_idtable_get(&v->users, u, &len);
            if (find_user(g, g->info.n_segments, id, len)
                != v->user_vectors + (size_t) u * dim)
            {
                continue;
            }
            memcpy(bytes + at, id, len);
            bytes[at + len] = '\0';
            ids[n] = bytes + at;
            at += len + 1;
            memcpy(vectors + (size_t) n * dim,
                   v->user_vectors + (size_t) u * dim, dim * sizeof(float));
            n++;
        }
    }

    memset(&in, 0, sizeof(in));
    in.generation = g->info.generation;
    in.created_at_ms = g->info.created_at_ms;
    in.dim = g->info.dim;
    in.metric = g->info.metric;
    in.n_users = n;
    in.user_ids = ids;
    in.user_vectors = vectors;
    in.n_positions = g->info.n_positions;
    in.positions = g->info.positions;
    rc = mv_snapshot_write(path, &in, err);

done:
    free(ids);
    free(bytes);
    free(vectors);
    return rc;
}
