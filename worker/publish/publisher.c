/*
 * publisher.c -- one publish of a frozen batch as a generation of several
 * files (see publisher.h for what is written and why).  This file is the
 * work itself, run on whichever thread calls mvw_publisher_run;
 * publisher_thread.c runs it on a thread of its own.
 *
 * Order of a publish of G (each file: temp, fsync, rename, fsync of the
 * directory -- mv_snapshot_write, mvw_dedupe_write, mv_generation_publish):
 *   1. graph up to date with the batch's items (in memory);
 *   2. items-G.mvs;
 *   3. a compaction that finished since (publisher_compact.c): its base
 *      renamed into place, named by G's manifest in place of the segments
 *      it merged;
 *   4. users-G.mvs when the batch has users;
 *   5. gen-G.mvm.dedupe;  6. gen-G.mvm, `current`, prune;
 *   7. when the segments are due for one, a compaction starts on its own
 *      thread: publishing goes on meanwhile (a user is looked up in the
 *      newest segment first), and waits for it only when the segments
 *      reach MVW_MAX_USER_SEGMENTS.
 * A crash anywhere leaves `current` on a complete generation: the manifest
 * is renamed into place only after every file it names is durable, and
 * files no manifest names are removed at the next start
 * (mv_generation_remove_orphans).
 *
 * The test hook MVW_TEST_CRASH_AT=<step> (environment, read at creation)
 * kills the process with SIGKILL right after the named step of every
 * publish: "index", "items", "users", "dedupe", "manifest", "compact"; the
 * crash test runs the worker once per step and checks that a restart
 * resumes with nothing lost or applied twice.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/trainer_internal.h"
#include "model/dedupe.h"
#include "publish/publisher_internal.h"


/* Kills the process after step when the test hook names it. */
static void
crash_point(const mvw_publisher_t *p, const char *step)
{
    if (p->crash_at[0] != '\0' && strcmp(p->crash_at, step) == 0) {
        raise(SIGKILL);
    }
}


static double
seconds_since(int64_t t0_us)
{
    return (double) (mv_clock_monotonic_us() - t0_us) / 1e6;
}


static int
path_of(const mvw_publisher_t *p, const char *name, char *buf, size_t len,
    mv_err_t *err)
{
    int  n = snprintf(buf, len, "%s/%s", p->dir, name);

    if (n < 0 || (size_t) n >= len) {
        return mv_err_set(err, "path too long: %s/%s", p->dir, name);
    }
    return MV_OK;
}


static uint64_t
file_size(const char *path)
{
    struct stat  st;

    return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}


mvw_publisher_t *
mvw_publisher_new_graph(const mv_hnsw_params_t *hp, mv_hnsw_t *hnsw,
    uint64_t after, const char *dir, unsigned keep, mv_err_t *err)
{
    mvw_publisher_t  *p;
    uint64_t          newest;
    const char       *crash;

    if (keep < 1) {
        mv_err_set(err, "keep must be at least 1");
        return NULL;
    }
    if (strlen(dir) >= sizeof(p->dir)) {
        mv_err_set(err, "path too long: %s", dir);
        return NULL;
    }
    if (mv_generation_newest(dir, &newest, err) != MV_OK) {
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        mv_err_set(err, "out of memory");
        return NULL;
    }
    strcpy(p->dir, dir);
    p->keep = keep;
    p->max_deltas = 8;
    p->base_ratio = 0.5;
    p->hp = *hp;
    p->hnsw = hnsw;
    p->last_generation = newest > after ? newest : after;
    crash = getenv("MVW_TEST_CRASH_AT");
    if (crash != NULL) {
        snprintf(p->crash_at, sizeof(p->crash_at), "%s", crash);
    }
    return p;
}


mvw_publisher_t *
mvw_publisher_new(mvw_trainer_t *t, const char *dir, unsigned keep,
    mv_err_t *err)
{
    mvw_publisher_t   *p;
    mv_hnsw_params_t   hp;

    mvw_trainer_hnsw_params(t, &hp);
    p = mvw_publisher_new_graph(&hp, t->hnsw, t->st.generation, dir, keep,
                                err);
    if (p != NULL) {
        t->hnsw = NULL;
    }
    return p;
}


mv_hnsw_t *
mvw_publisher_release_index(mvw_publisher_t *p)
{
    mv_hnsw_t  *h = p->hnsw;

    p->hnsw = NULL;
    return h;
}


void
mvw_publisher_set_compaction(mvw_publisher_t *p, uint32_t max_deltas,
    double base_ratio)
{
    p->max_deltas = max_deltas;
    p->base_ratio = base_ratio;
}


/* Drops the user segments remembered; they are named by no next manifest. */
void
mvw_segments_reset(mvw_publisher_t *p)
{
    p->n_user_segs = 0;
    p->base_bytes = 0;
    p->delta_bytes = 0;
    p->n_deltas = 0;
}


int
mvw_segments_append(mvw_publisher_t *p, const char *name, uint32_t kind,
    uint64_t bytes, mv_err_t *err)
{
    mvw_user_segment_t  *s;

    if (p->n_user_segs + 1 >= MV_GEN_MAX_SEGMENTS) {
        return mv_err_set(err, "too many user segments");
    }
    s = &p->user_segs[p->n_user_segs++];
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->kind = kind;
    s->bytes = bytes;
    if (kind == MV_GEN_SEGMENT_USER_BASE) {
        p->base_bytes += bytes;
    } else {
        p->delta_bytes += bytes;
        p->n_deltas++;
    }
    return MV_OK;
}


int
mvw_publisher_resume(mvw_publisher_t *p, const mv_generation_t *g,
    mv_err_t *err)
{
    const mv_manifest_input_t  *m = mv_generation_manifest(g);
    const mv_generation_info_t *info = mv_generation_info(g);

    mvw_segments_reset(p);
    if (m != NULL) {
        for (uint32_t i = 1; i < m->n_segments; i++) {
            if (mvw_segments_append(p, m->segments[i], m->kinds[i],
                                mv_generation_segment(g, i)->file_size, err)
                != MV_OK)
            {
                mvw_segments_reset(p);
                return MV_ERR;
            }
        }
    }
    if (info->generation > p->last_generation) {
        p->last_generation = info->generation;
    }
    p->last_published = m != NULL ? info->generation : 0;
    return MV_OK;
}


/* Step 1: the graph follows the batch's items. */
static int
sync_index(mvw_publisher_t *p, const mvw_publish_batch_t *b,
    mvw_publish_report_t *r, mv_err_t *err)
{
    uint32_t  n = b->n_items, have, moved = 0;

    if (p->hnsw == NULL) {
        p->hnsw = mv_hnsw_new(&p->hp, n, err);
        if (p->hnsw == NULL) {
            return MV_ERR;
        }
    }
    have = (uint32_t) mv_hnsw_size(p->hnsw);
    if (have > n) {
        return mv_err_set(err, "the graph has %u items, the batch %u", have,
                          n);
    }
    if (p->hp.sq8 && n > 0) {
        mv_hnsw_train_quantizer(p->hnsw, b->item_vectors, n);
    }
    for (uint32_t i = 0; i < have; i++) {
        if (b->item_moved[i]) {
            if (mv_hnsw_update(p->hnsw, i,
                               b->item_vectors + (size_t) i * b->dim, err)
                != MV_OK)
            {
                return MV_ERR;
            }
            moved++;
        }
    }
    for (uint32_t i = have; i < n; i++) {
        if (mv_hnsw_add(p->hnsw, b->item_vectors + (size_t) i * b->dim, err)
            == UINT32_MAX)
        {
            return MV_ERR;
        }
        moved++;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (mv_hnsw_set_deleted(p->hnsw, i,
                                (b->item_meta[i].flags & MV_ITEM_DELETED)
                                != 0, err) != MV_OK)
        {
            return MV_ERR;
        }
    }
    r->reinserted = moved;
    return MV_OK;
}


/* The parts of a snapshot input every segment of b shares. */
static void
input_init(mv_snapshot_input_t *in, const mvw_publish_batch_t *b)
{
    memset(in, 0, sizeof(*in));
    in->generation = b->generation;
    in->created_at_ms = b->now_ms;
    in->dim = b->dim;
    in->metric = b->metric;
    in->n_positions = b->n_positions;
    in->positions = b->positions;
}


/* Step 2: items-G.mvs. */
static int
write_items(mvw_publisher_t *p, const mvw_publish_batch_t *b,
    const char *name, mvw_publish_report_t *r, mv_err_t *err)
{
    mv_snapshot_input_t   in;
    mv_hnsw_graph_t       g;
    const char          **ids, **cats;
    char                  path[PATH_MAX];
    int                   rc = MV_ERR;

    ids = mvw_idmap_pointers(&b->item_ids);
    cats = mvw_idmap_pointers(&b->categories);
    if (ids == NULL || cats == NULL) {
        mv_err_set(err, "out of memory");
        goto done;
    }
    mv_hnsw_graph(p->hnsw, &g);
    input_init(&in, b);
    in.n_items = b->n_items;
    in.item_ids = ids;
    in.item_vectors = b->n_items ? b->item_vectors : NULL;
    in.item_meta = b->item_meta;
    in.n_categories = b->categories.n;
    in.category_names = cats;
    in.graph = &g;
    if (path_of(p, name, path, sizeof(path), err) != MV_OK
        || mv_snapshot_write(path, &in, err) != MV_OK)
    {
        goto done;
    }
    r->bytes += file_size(path);
    rc = MV_OK;

done:
    free(ids);
    free(cats);
    return rc;
}


/* Step 3: users-G.mvs with the batch's users; *bytes gets its size. */
static int
write_users(mvw_publisher_t *p, const mvw_publish_batch_t *b,
    const char *name, uint64_t *bytes, mv_err_t *err)
{
    mv_snapshot_input_t   in;
    const char          **ids;
    char                  path[PATH_MAX];
    int                   rc = MV_ERR;

    ids = mvw_idmap_pointers(&b->user_ids);
    if (ids == NULL) {
        return mv_err_set(err, "out of memory");
    }
    input_init(&in, b);
    in.n_users = b->n_changed;
    in.user_ids = ids;
    in.user_vectors = b->user_vectors;
    if (path_of(p, name, path, sizeof(path), err) == MV_OK
        && mv_snapshot_write(path, &in, err) == MV_OK)
    {
        *bytes = file_size(path);
        rc = MV_OK;
    }
    free(ids);
    return rc;
}


/* Step 5: the manifest naming items + the user segments, then `current`. */
static int
write_manifest(mvw_publisher_t *p, const mvw_publish_batch_t *b,
    const char *items, mvw_publish_report_t *r, mv_err_t *err)
{
    mv_manifest_input_t  m;
    const char          *names[MV_GEN_MAX_SEGMENTS];
    uint32_t             kinds[MV_GEN_MAX_SEGMENTS];
    char                 name[64], path[PATH_MAX];

    names[0] = items;
    kinds[0] = MV_GEN_SEGMENT_ITEMS;
    for (uint32_t i = 0; i < p->n_user_segs; i++) {
        names[i + 1] = p->user_segs[i].name;
        kinds[i + 1] = p->user_segs[i].kind;
    }
    memset(&m, 0, sizeof(m));
    m.generation = b->generation;
    m.created_at_ms = b->now_ms;
    m.dim = b->dim;
    m.metric = b->metric;
    m.n_users = b->n_users_total;
    m.n_segments = p->n_user_segs + 1;
    m.segments = names;
    m.kinds = kinds;
    m.n_positions = b->n_positions;
    m.positions = b->positions;
    if (mv_generation_publish(p->dir, &m, p->keep, err) != MV_OK) {
        return MV_ERR;
    }
    mv_gen_manifest_name(b->generation, name, sizeof(name));
    if (path_of(p, name, path, sizeof(path), NULL) == MV_OK) {
        r->bytes += file_size(path);
    }
    r->user_segments = p->n_user_segs;
    return MV_OK;
}


int
mvw_publisher_run(mvw_publisher_t *p, mvw_publish_batch_t *b,
    mvw_publish_report_t *r)
{
    char      items[64], users[64], side[64], path[PATH_MAX];
    uint64_t  user_bytes = 0;
    uint32_t  segs_before;
    int64_t   t0 = mv_clock_monotonic_us(), t1;
    mvw_user_segment_t  saved[MV_GEN_MAX_SEGMENTS];
    uint64_t  saved_base, saved_delta;
    uint32_t  saved_deltas;

    memset(r, 0, sizeof(*r));
    b->generation = ++p->last_generation;
    r->generation = b->generation;

    if (sync_index(p, b, r, &r->err) != MV_OK) {
        goto failed;
    }
    r->index_s = seconds_since(t0);
    crash_point(p, "index");
    t1 = mv_clock_monotonic_us();

    mv_gen_items_name(b->generation, items, sizeof(items));
    if (write_items(p, b, items, r, &r->err) != MV_OK) {
        goto failed;
    }
    crash_point(p, "items");

    /* a compaction that finished meanwhile replaces what it merged; one
       still running is waited for only when the segments would become too
       many to look a user up in quickly */
    mvw_compaction_collect(p, 0, r);
    if (p->job != NULL && p->n_user_segs + 1 >= MVW_MAX_USER_SEGMENTS) {
        p->compaction_waits++;
        r->compact_waited = 1;
        mvw_compaction_collect(p, 1, r);
    }
    segs_before = p->n_user_segs;
    saved_base = p->base_bytes;
    saved_delta = p->delta_bytes;
    saved_deltas = p->n_deltas;
    memcpy(saved, p->user_segs, sizeof(saved[0]) * segs_before);
    if (b->n_changed > 0) {
        mv_gen_delta_name(b->generation, users, sizeof(users));
        if (write_users(p, b, users, &user_bytes, &r->err) != MV_OK
            || mvw_segments_append(p, users, MV_GEN_SEGMENT_USER_DELTA,
                               user_bytes, &r->err) != MV_OK)
        {
            goto restore;
        }
        r->bytes += user_bytes;
        crash_point(p, "users");
    }

    if (b->dedupe != NULL) {
        mv_gen_manifest_name(b->generation, side, sizeof(side));
        strcat(side, ".dedupe");
        if (path_of(p, side, path, sizeof(path), &r->err) != MV_OK
            || mvw_dedupe_write(path, b->dedupe, b->dedupe_len, &r->err)
               != MV_OK)
        {
            goto restore;
        }
        r->bytes += b->dedupe_len;
        crash_point(p, "dedupe");
    }

    if (write_manifest(p, b, items, r, &r->err) != MV_OK) {
        goto restore;
    }
    crash_point(p, "manifest");
    p->last_published = b->generation;
    r->write_s = seconds_since(t1);
    r->ok = 1;
    if (p->job == NULL && mvw_compaction_due(p)) {
        mvw_compaction_start(p, r);
    }
    r->total_s = seconds_since(t0);
    return MV_OK;

restore:
    /* the next manifest names what the last published one did */
    memcpy(p->user_segs, saved, sizeof(saved[0]) * segs_before);
    p->n_user_segs = segs_before;
    p->base_bytes = saved_base;
    p->delta_bytes = saved_delta;
    p->n_deltas = saved_deltas;
failed:
    r->ok = 0;
    r->total_s = seconds_since(t0);
    return MV_ERR;
}
