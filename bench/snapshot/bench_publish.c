/*
 * bench_publish.c -- what a publish costs as a generation of several files
 * (shared/generation.h, worker/publish/publisher.h) against the old single
 * file per publish (mv_snapshot_publish), and what the reader and the
 * compaction cost, at U users.
 *
 * For each U (10k, 100k, 1M by default), with 10,000 items, dim 64, cosine
 * and the trainer's HNSW defaults (M 16, ef_construction 200, SQ8):
 *   setup    generation 1 = items-1.mvs (a real HNSW over the items) and
 *            users-1.base.mvs (U random users), mv_generation_publish;
 *   NEW      mvw_publisher_run of a batch with 10,000 changed users (half
 *            existing, half new) and every item, 5,000 of them moved (new
 *            vectors, re-linked in the graph): the report's index_s,
 *            write_s, total_s and bytes, and the sizes of items-G.mvs and
 *            users-G.mvs.  Before each run the publisher is resumed from
 *            generation 1, so every run publishes items-G + base-1 +
 *            users-G (generations 2, 3, ... are equivalent);
 *   SEGMENTS mv_snapshot_write of the items segment alone and of the
 *            delta alone (same inputs), timed apart;
 *   OLD      mv_snapshot_publish of the whole model (U + 5,000 users, the
 *            items, the graph) into a directory of its own, keep 1;
 *   READER   mv_generation_open of the last published generation without
 *            reuse (every file validated) and with reuse = generation 1
 *            open (only the new files validated);
 *   COMPACT  mv_generation_compact_users of that generation (base + delta
 *            into one base).
 * Each timed measurement is repeated --runs times; medians are printed.
 * Everything runs in a temp directory under --dir (default "."), so on the
 * disk of the caller's choice; writes are fsynced (the writers do), reads
 * find the page cache warm (the files were just written).
 *
 *   bench_publish [--users 10000,100000,1000000] [--items 10000] [--dim 64]
 *                 [--changed 10000] [--moved 5000] [--runs 3] [--dir DIR]
 *                 [--keep-files] [--json] [--json-out FILE]
 * --json prints one JSON object instead of the tables; --json-out FILE
 * writes it to FILE besides them.
 */
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "generation.h"
#include "hnsw.h"
#include "snapshot.h"
#include "synth.h"
#include "vec.h"

#include "data/idmap.h"
#include "publish/publish_batch.h"
#include "publish/publisher.h"

#define CATEGORIES  50
#define MAX_U       16
#define KEEP_ALL    1000        /* the generation dir prunes nothing */


typedef struct row {
    uint32_t  users;
    double    old_bytes, old_s;
    double    idx_s, write_s, total_s, new_bytes;
    double    items_bytes, delta_bytes, items_s, delta_s;
    double    base_bytes;
    double    full_s, reuse_s, full_validated, reuse_validated;
    uint32_t  reused;
    double    compact_s, compact_bytes;
    double    setup_s;
} row_t;


static double
now_seconds(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static double
median(double *v, int n)
{
    qsort(v, (size_t) n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}


/* snprintf into a path buffer; a path that does not fit ends the run. */
static void pathf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= len) {
        fprintf(stderr, "bench_publish: path too long\n");
        exit(1);
    }
}


static double
file_bytes(const char *dir, const char *name)
{
    char         path[PATH_MAX];
    struct stat  st;

    pathf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (double) st.st_size : 0;
}


static void
die(const char *what, const mv_err_t *err)
{
    fprintf(stderr, "bench_publish: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}


static void *
xmalloc(size_t n)
{
    void  *p = malloc(n ? n : 1);

    if (p == NULL) {
        die("out of memory", NULL);
    }
    return p;
}


static void
random_vectors(float *v, size_t n, uint32_t dim, mv_rng_t *rng)
{
    for (size_t i = 0; i < n * dim; i++) {
        v[i] = (float) (mv_rng_uniform(rng) * 2.0 - 1.0);
    }
}


/* Ids "<prefix><i>" for i in [0, n) as one block of NUL-terminated
   strings, with a pointer to each. */
static const char **
make_ids(const char *prefix, uint32_t n, char **block)
{
    const char  **ids = xmalloc((size_t) n * sizeof(char *));
    char         *b = xmalloc((size_t) n * 24), *s = b;

    for (uint32_t i = 0; i < n; i++) {
        ids[i] = s;
        s += snprintf(s, 24, "%s%08u", prefix, i) + 1;
    }
    *block = b;
    return ids;
}


static void
idmap_fill(mvw_idmap_t *m, const char *const *ids, uint32_t n)
{
    mv_err_t  err;
    uint32_t  idx;

    mvw_idmap_init(m);
    for (uint32_t i = 0; i < n; i++) {
        if (mvw_idmap_intern(m, ids[i], strlen(ids[i]), &idx, NULL, &err)
            != MV_OK)
        {
            die("idmap", &err);
        }
    }
}


/* ---- machine notes ------------------------------------------------------ */

typedef struct machine {
    long  cores;
    char  model[128];
    char  kernel[400];
    char  fs[64];
    char  mount[PATH_MAX];
    char  source[128];
} machine_t;


static void
machine_notes(const char *dir, machine_t *m)
{
    FILE           *f;
    char            line[4096], real[PATH_MAX];
    struct utsname  u;
    size_t          best = 0;

    memset(m, 0, sizeof(*m));
    m->cores = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(m->model, sizeof(m->model), "?");
    f = fopen("/proc/cpuinfo", "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char  *c = strchr(line, ':');

        if (strncmp(line, "model name", 10) == 0 && c != NULL) {
            c += 2;
            c[strcspn(c, "\n")] = '\0';
            snprintf(m->model, sizeof(m->model), "%s", c);
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    if (uname(&u) == 0) {
        snprintf(m->kernel, sizeof(m->kernel), "%s %s %s", u.sysname,
                 u.release, u.machine);
    }

    /* the mount with the longest mount point that holds dir */
    snprintf(m->fs, sizeof(m->fs), "?");
    if (realpath(dir, real) == NULL) {
        return;
    }
    f = fopen("/proc/self/mountinfo", "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char    mnt[PATH_MAX], fstype[64], src[128], *dash;
        size_t  len;

        /* id parent major:minor root mountpoint ... - fstype source ... */
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1
            || (dash = strstr(line, " - ")) == NULL
            || sscanf(dash + 3, "%63s %127s", fstype, src) != 2)
        {
            continue;
        }
        len = strlen(mnt);
        if (strncmp(real, mnt, len) == 0
            && (real[len] == '/' || real[len] == '\0' || len == 1)
            && len >= best)
        {
            best = len;
            snprintf(m->fs, sizeof(m->fs), "%s", fstype);
            snprintf(m->mount, sizeof(m->mount), "%s", mnt);
            snprintf(m->source, sizeof(m->source), "%s", src);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
}


/* ---- one U ---------------------------------------------------------------- */

typedef struct items {
    uint32_t          n, dim;
    const char      **ids;
    char             *ids_block;
    const char      **cats;
    char             *cats_block;
    float            *vectors;
    mv_item_meta_t   *meta;
    mv_hnsw_params_t  hp;
    mv_hnsw_t        *hnsw;            /* generation 1's graph */
    double            build_s;
} items_t;


static void
items_make(items_t *it, uint32_t n, uint32_t dim)
{
    mv_err_t  err;
    mv_rng_t  rng;
    double    t;

    it->n = n;
    it->dim = dim;
    it->ids = make_ids("item-", n, &it->ids_block);
    it->cats = make_ids("cat-", CATEGORIES, &it->cats_block);
    it->vectors = xmalloc((size_t) n * dim * sizeof(float));
    it->meta = calloc(n, sizeof(mv_item_meta_t));
    mv_synth_clustered(it->vectors, n, dim, CATEGORIES, 0.5f, 1, NULL);
    for (uint32_t i = 0; i < n; i++) {
        mv_normalize(it->vectors + (size_t) i * dim, dim);
    }
    mv_rng_seed(&rng, 3);
    for (uint32_t i = 0; i < n; i++) {
        it->meta[i].category = i % CATEGORIES;
        it->meta[i].popularity = (float) mv_rng_uniform(&rng);
        it->meta[i].created_at_ms = 1700000000000LL + i;
    }

    /* the trainer's defaults (mvw_trainer_params_default), cosine */
    memset(&it->hp, 0, sizeof(it->hp));
    it->hp.dim = dim;
    it->hp.metric = MV_METRIC_COSINE;
    it->hp.M = 16;
    it->hp.ef_construction = 200;
    it->hp.seed = 42;
    it->hp.sq8 = 1;

    t = now_seconds();
    it->hnsw = mv_hnsw_new(&it->hp, n, &err);
    if (it->hnsw == NULL
        || mv_hnsw_add_batch(it->hnsw, it->vectors, n, &err) != MV_OK)
    {
        die("hnsw build", &err);
    }
    it->build_s = now_seconds() - t;
}


static void
items_free(items_t *it)
{
    mv_hnsw_free(it->hnsw);
    free(it->ids);
    free(it->ids_block);
    free(it->cats);
    free(it->cats_block);
    free(it->vectors);
    free(it->meta);
}


static void
items_input(const items_t *it, mv_hnsw_graph_t *g, mv_snapshot_input_t *in)
{
    mv_hnsw_graph(it->hnsw, g);
    memset(in, 0, sizeof(*in));
    in->created_at_ms = 1700000000000LL;
    in->dim = it->dim;
    in->metric = MV_METRIC_COSINE;
    in->n_items = it->n;
    in->item_ids = it->ids;
    in->item_vectors = it->vectors;
    in->item_meta = it->meta;
    in->n_categories = CATEGORIES;
    in->category_names = it->cats;
    in->graph = g;
}


/*
 * A batch as mvw_trainer_freeze would make it: every item (moved of them
 * with new vectors, marked moved), n_changed users of which half are
 * existing (spread over [0, users)) and half new (users + k), with new
 * vectors; their vectors also go into all_vectors (the model's users, for
 * the old full snapshot).
 */
static void
batch_make(mvw_publish_batch_t *b, const items_t *it, uint32_t users,
    uint32_t n_changed, uint32_t moved, const char *const *user_ids,
    float *all_vectors, int run, mv_rng_t *rng)
{
    uint32_t  dim = it->dim, half = n_changed / 2, n_new = n_changed - half;
    mv_err_t  err;

    memset(b, 0, sizeof(*b));
    b->now_ms = 1700000000000LL + run;
    b->dim = dim;
    b->metric = MV_METRIC_COSINE;
    b->n_items = it->n;
    idmap_fill(&b->item_ids, it->ids, it->n);
    b->item_vectors = xmalloc((size_t) it->n * dim * sizeof(float));
    memcpy(b->item_vectors, it->vectors, (size_t) it->n * dim * sizeof(float));
    b->item_meta = xmalloc((size_t) it->n * sizeof(mv_item_meta_t));
    memcpy(b->item_meta, it->meta, (size_t) it->n * sizeof(mv_item_meta_t));
    b->item_moved = calloc(it->n, 1);
    for (uint32_t k = 0; k < moved && k < it->n; k++) {
        /* moved items spread over the range, shifted by run */
        uint32_t  i = (uint32_t) (((uint64_t) k * it->n / moved + run)
                                  % it->n);
        float    *v = b->item_vectors + (size_t) i * dim;

        for (uint32_t d = 0; d < dim; d++) {
            v[d] += (float) (mv_rng_uniform(rng) - 0.5) * 0.2f;
        }
        mv_normalize(v, dim);
        b->item_moved[i] = 1;
    }
    idmap_fill(&b->categories, it->cats, CATEGORIES);

    b->n_users_total = users + n_new;
    b->n_changed = n_changed;
    b->user_index = xmalloc((size_t) n_changed * sizeof(uint32_t));
    b->user_vectors = xmalloc((size_t) n_changed * dim * sizeof(float));
    random_vectors(b->user_vectors, n_changed, dim, rng);
    mvw_idmap_init(&b->user_ids);
    for (uint32_t k = 0; k < n_changed; k++) {
        uint32_t  u;

        if (k < half) {
            u = (uint32_t) (((uint64_t) k * users / half + run) % users);
        } else {
            u = users + (k - half);
        }
        b->user_index[k] = u;
        if (mvw_idmap_intern(&b->user_ids, user_ids[u], strlen(user_ids[u]),
                             &(uint32_t) { 0 }, NULL, &err) != MV_OK)
        {
            die("idmap", &err);
        }
        memcpy(all_vectors + (size_t) u * dim,
               b->user_vectors + (size_t) k * dim, dim * sizeof(float));
    }
}


static void
bench_users(const items_t *it, uint32_t users, uint32_t n_changed,
    uint32_t moved, int runs, const char *top, row_t *row)
{
    char                  dir[PATH_MAX], old[PATH_MAX], path[PATH_MAX];
    char                  items1[64], base1[64], man[64], name[64];
    char                 *ids_block;
    const char          **user_ids;
    float                *user_vectors;
    uint32_t              n_new = n_changed - n_changed / 2, dim = it->dim;
    uint32_t              all = users + n_new;
    mv_hnsw_graph_t       g;
    mv_snapshot_input_t   in;
    mv_manifest_input_t   m;
    mv_generation_t      *g1, *gg;
    mvw_publisher_t      *p;
    mvw_publish_batch_t   b;
    mvw_publish_report_t  rep;
    mv_rng_t              rng;
    mv_err_t              err;
    uint64_t              last = 0;
    double                t, *v[12];
    const char           *names[2];
    uint32_t              kinds[2] = { MV_GEN_SEGMENT_ITEMS,
                                       MV_GEN_SEGMENT_USER_BASE };

    for (int i = 0; i < 12; i++) {
        v[i] = xmalloc((size_t) runs * sizeof(double));
    }
    memset(row, 0, sizeof(*row));
    row->users = users;
    pathf(dir, sizeof(dir), "%s/u%u-gen", top, users);
    pathf(old, sizeof(old), "%s/u%u-old", top, users);
    if (mkdir(dir, 0755) != 0 || mkdir(old, 0755) != 0) {
        fprintf(stderr, "bench_publish: mkdir %s: %s\n", dir, strerror(errno));
        exit(1);
    }

    /* ---- setup: generation 1 = items + one base of U users ---- */
    t = now_seconds();
    mv_rng_seed(&rng, 7 + users);
    user_ids = make_ids("user-", all, &ids_block);
    user_vectors = xmalloc((size_t) all * dim * sizeof(float));
    random_vectors(user_vectors, all, dim, &rng);

    items_input(it, &g, &in);
    in.generation = 1;
    mv_gen_items_name(1, items1, sizeof(items1));
    mv_gen_base_name(1, base1, sizeof(base1));
    pathf(path, sizeof(path), "%s/%s", dir, items1);
    if (mv_snapshot_write(path, &in, &err) != MV_OK) {
        die("write items-1", &err);
    }
    memset(&in, 0, sizeof(in));
    in.generation = 1;
    in.created_at_ms = 1700000000000LL;
    in.dim = dim;
    in.metric = MV_METRIC_COSINE;
    in.n_users = users;
    in.user_ids = user_ids;
    in.user_vectors = user_vectors;
    pathf(path, sizeof(path), "%s/%s", dir, base1);
    if (mv_snapshot_write(path, &in, &err) != MV_OK) {
        die("write base-1", &err);
    }
    names[0] = items1;
    names[1] = base1;
    memset(&m, 0, sizeof(m));
    m.generation = 1;
    m.created_at_ms = 1700000000000LL;
    m.dim = dim;
    m.metric = MV_METRIC_COSINE;
    m.n_users = users;
    m.n_segments = 2;
    m.segments = names;
    m.kinds = kinds;
    if (mv_generation_publish(dir, &m, KEEP_ALL, &err) != MV_OK) {
        die("publish generation 1", &err);
    }
    row->base_bytes = file_bytes(dir, base1);
    mv_gen_manifest_name(1, man, sizeof(man));
    pathf(path, sizeof(path), "%s/%s", dir, man);
    g1 = mv_generation_open(path, NULL, NULL, &err);
    if (g1 == NULL) {
        die("open generation 1", &err);
    }

    /* the publisher, with a copy of generation 1's graph */
    {
        mv_hnsw_graph_t  g0;
        mv_hnsw_t       *h;

        mv_hnsw_graph(it->hnsw, &g0);
        h = mv_hnsw_from_graph(&g0, &it->hp, &err);
        if (h == NULL) {
            die("hnsw copy", &err);
        }
        p = mvw_publisher_new_graph(&it->hp, h, 1, dir, KEEP_ALL, &err);
        if (p == NULL) {
            die("publisher", &err);
        }
    }
    row->setup_s = now_seconds() - t;

    /* ---- NEW: publish of changed users + items, moved items re-linked ---- */
    for (int r = 0; r < runs; r++) {
        if (mvw_publisher_resume(p, g1, &err) != MV_OK) {
            die("resume", &err);
        }
        batch_make(&b, it, users, n_changed, moved, user_ids, user_vectors,
                   r, &rng);
        if (mvw_publisher_run(p, &b, &rep) != MV_OK) {
            die("publish", &rep.err);
        }
        last = b.generation;
        v[0][r] = rep.index_s;
        v[1][r] = rep.write_s;
        v[2][r] = rep.total_s;
        v[3][r] = (double) rep.bytes;
        v[4][r] = file_bytes(dir, mv_gen_items_name(last, name, sizeof(name)));
        v[5][r] = file_bytes(dir, mv_gen_delta_name(last, name, sizeof(name)));

        /* the two segments written apart, same inputs, timed */
        {
            const char  **ids = mvw_idmap_pointers(&b.user_ids);

            items_input(it, &g, &in);
            in.generation = last;
            pathf(path, sizeof(path), "%s/bench-items.mvs", dir);
            t = now_seconds();
            if (mv_snapshot_write(path, &in, &err) != MV_OK) {
                die("write items alone", &err);
            }
            v[6][r] = now_seconds() - t;
            unlink(path);

            memset(&in, 0, sizeof(in));
            in.generation = last;
            in.created_at_ms = b.now_ms;
            in.dim = dim;
            in.metric = MV_METRIC_COSINE;
            in.n_users = b.n_changed;
            in.user_ids = ids;
            in.user_vectors = b.user_vectors;
            pathf(path, sizeof(path), "%s/bench-users.mvs", dir);
            t = now_seconds();
            if (mv_snapshot_write(path, &in, &err) != MV_OK) {
                die("write delta alone", &err);
            }
            v[7][r] = now_seconds() - t;
            unlink(path);
            free(ids);
        }
        mvw_publish_batch_free(&b);
    }
    row->idx_s = median(v[0], runs);
    row->write_s = median(v[1], runs);
    row->total_s = median(v[2], runs);
    row->new_bytes = median(v[3], runs);
    row->items_bytes = median(v[4], runs);
    row->delta_bytes = median(v[5], runs);
    row->items_s = median(v[6], runs);
    row->delta_s = median(v[7], runs);
    mvw_publisher_free(p);

    /* ---- OLD: one file with the whole model ---- */
    for (int r = 0; r < runs; r++) {
        char  out[PATH_MAX];

        items_input(it, &g, &in);
        in.generation = (uint64_t) r + 1;
        in.n_users = all;
        in.user_ids = user_ids;
        in.user_vectors = user_vectors;
        t = now_seconds();
        if (mv_snapshot_publish(old, &in, 1, out, sizeof(out), &err)
            != MV_OK)
        {
            die("old publish", &err);
        }
        v[8][r] = now_seconds() - t;
        {
            struct stat  st;

            v[9][r] = stat(out, &st) == 0 ? (double) st.st_size : 0;
        }
    }
    row->old_s = median(v[8], runs);
    row->old_bytes = median(v[9], runs);

    /* ---- READER: the last generation, without and with reuse ---- */
    mv_gen_manifest_name(last, man, sizeof(man));
    pathf(path, sizeof(path), "%s/%s", dir, man);
    for (int r = 0; r < runs; r++) {
        const mv_generation_info_t  *info;

        t = now_seconds();
        gg = mv_generation_open(path, NULL, NULL, &err);
        v[10][r] = now_seconds() - t;
        if (gg == NULL) {
            die("open without reuse", &err);
        }
        info = mv_generation_info(gg);
        row->full_validated = (double) info->bytes_validated;
        mv_generation_close(gg);

        t = now_seconds();
        gg = mv_generation_open(path, g1, NULL, &err);
        v[11][r] = now_seconds() - t;
        if (gg == NULL) {
            die("open with reuse", &err);
        }
        info = mv_generation_info(gg);
        row->reuse_validated = (double) info->bytes_validated;
        row->reused = info->segments_reused;
        mv_generation_close(gg);
    }
    row->full_s = median(v[10], runs);
    row->reuse_s = median(v[11], runs);

    /* ---- COMPACTION: base + delta -> one base ---- */
    gg = mv_generation_open(path, g1, NULL, &err);
    if (gg == NULL) {
        die("open for compaction", &err);
    }
    mv_gen_base_name(last, name, sizeof(name));
    for (int r = 0; r < runs; r++) {
        t = now_seconds();
        if (mv_generation_compact_users(dir, gg, name, &err) != MV_OK) {
            die("compact", &err);
        }
        v[0][r] = now_seconds() - t;
        v[1][r] = file_bytes(dir, name);
        pathf(path, sizeof(path), "%s/%s", dir, name);
        unlink(path);
    }
    row->compact_s = median(v[0], runs);
    row->compact_bytes = median(v[1], runs);
    mv_generation_close(gg);
    mv_generation_close(g1);

    free(user_ids);
    free(ids_block);
    free(user_vectors);
    for (int i = 0; i < 12; i++) {
        free(v[i]);
    }
}


/* Removes dir and the files in it (one level: the bench's own dirs). */
static void
remove_tree(const char *top)
{
    char  cmd[PATH_MAX + 16];

    /* only paths this program made with mkdtemp */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_publish: could not remove %s\n", top);
    }
}


int
main(int argc, char **argv)
{
    uint32_t    users[MAX_U], n_u = 0, n_items = 10000, dim = 64;
    uint32_t    changed = 10000, moved = 5000;
    int         runs = 3, json = 0, keep_files = 0;
    const char *dir = ".", *json_out = NULL, *ulist = "10000,100000,1000000";
    char        top[PATH_MAX];
    machine_t   mach;
    items_t     it;
    row_t       rows[MAX_U];

    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--users") == 0 && a + 1 < argc) {
            ulist = argv[++a];
        } else if (strcmp(argv[a], "--items") == 0 && a + 1 < argc) {
            n_items = (uint32_t) strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--dim") == 0 && a + 1 < argc) {
            dim = (uint32_t) strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--changed") == 0 && a + 1 < argc) {
            changed = (uint32_t) strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--moved") == 0 && a + 1 < argc) {
            moved = (uint32_t) strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--runs") == 0 && a + 1 < argc) {
            runs = atoi(argv[++a]);
        } else if (strcmp(argv[a], "--dir") == 0 && a + 1 < argc) {
            dir = argv[++a];
        } else if (strcmp(argv[a], "--keep-files") == 0) {
            keep_files = 1;
        } else if (strcmp(argv[a], "--json-out") == 0 && a + 1 < argc) {
            json_out = argv[++a];
        } else if (strcmp(argv[a], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "usage: bench_publish [--users U[,U...]] "
                    "[--items N] [--dim D] [--changed C] [--moved M] "
                    "[--runs R] [--dir DIR] [--keep-files] [--json] "
                    "[--json-out FILE]\n");
            return 2;
        }
    }
    {
        char  *s = strdup(ulist), *tok, *save = NULL;

        for (tok = strtok_r(s, ",", &save); tok != NULL && n_u < MAX_U;
             tok = strtok_r(NULL, ",", &save))
        {
            users[n_u++] = (uint32_t) strtoul(tok, NULL, 10);
        }
        free(s);
    }
    if (n_u == 0 || n_items < 2 || dim == 0 || runs < 1 || changed < 2
        || moved > n_items)
    {
        fprintf(stderr, "bench_publish: need users, items >= 2, dim >= 1, "
                "runs >= 1, changed >= 2, moved <= items\n");
        return 2;
    }
    for (uint32_t i = 0; i < n_u; i++) {
        if (users[i] < changed) {
            fprintf(stderr, "bench_publish: users (%u) must be >= changed "
                    "(%u)\n", users[i], changed);
            return 2;
        }
    }

    pathf(top, sizeof(top), "%s/bench-publish-XXXXXX", dir);
    if (mkdtemp(top) == NULL) {
        fprintf(stderr, "bench_publish: mkdtemp %s: %s\n", top,
                strerror(errno));
        return 1;
    }
    machine_notes(top, &mach);
    if (!json) {
        printf("machine: %ld cores, %s; %s\n", mach.cores, mach.model,
               mach.kernel);
        printf("temp dir: %s (%s on %s, mounted at %s)\n", top, mach.fs,
               mach.source, mach.mount);
        printf("model: %u items x %u dims, cosine, HNSW M 16 ef_construction "
               "200 sq8; a publish carries %u changed users (%u existing, "
               "%u new) and every item, %u moved; median of %d runs; "
               "files fsynced, reads from a warm page cache\n",
               n_items, dim, changed, changed / 2, changed - changed / 2,
               moved, runs);
        fflush(stdout);
    }

    items_make(&it, n_items, dim);
    if (!json) {
        printf("setup: HNSW over %u items built in %.2f s\n", n_items,
               it.build_s);
        fflush(stdout);
    }

    for (uint32_t i = 0; i < n_u; i++) {
        bench_users(&it, users[i], changed, moved, runs, top, &rows[i]);
        if (!json) {
            fprintf(stderr, "bench_publish: %u users done (setup %.1f s)\n",
                    users[i], rows[i].setup_s);
        }
    }
    items_free(&it);
    if (!keep_files) {
        remove_tree(top);
    }

#define MB(x) ((x) / 1e6)
    if (json || json_out != NULL) {
        FILE  *jf = stdout;

        if (json_out != NULL && (jf = fopen(json_out, "w")) == NULL) {
            fprintf(stderr, "bench_publish: %s: %s\n", json_out,
                    strerror(errno));
            return 1;
        }
        fprintf(jf, "{\"machine\":{\"cores\":%ld,\"model\":\"%s\",\"kernel\":\"%s\","
               "\"fs\":\"%s\",\"mount\":\"%s\"},", mach.cores, mach.model,
               mach.kernel, mach.fs, mach.mount);
        fprintf(jf, "\"items\":%u,\"dim\":%u,\"metric\":\"cosine\",\"hnsw_m\":16,"
               "\"hnsw_ef_construction\":200,\"sq8\":true,\"changed_users\":%u,"
               "\"moved_items\":%u,\"runs\":%d,\"hnsw_build_seconds\":%.3f,"
               "\"rows\":[", n_items, dim, changed, moved, runs, it.build_s);
        for (uint32_t i = 0; i < n_u; i++) {
            const row_t  *w = &rows[i];

            fprintf(jf, "%s{\"users\":%u,\"old_bytes\":%.0f,\"old_publish_s\":%.4f,"
                   "\"new_index_s\":%.4f,\"new_write_s\":%.4f,"
                   "\"new_total_s\":%.4f,\"new_bytes\":%.0f,"
                   "\"ratio_old_new_bytes\":%.2f,"
                   "\"items_segment_bytes\":%.0f,\"items_segment_write_s\":%.4f,"
                   "\"delta_bytes\":%.0f,\"delta_write_s\":%.4f,"
                   "\"base_bytes\":%.0f,"
                   "\"reader_full_s\":%.4f,\"reader_full_validated_bytes\":%.0f,"
                   "\"reader_reuse_s\":%.4f,\"reader_reuse_validated_bytes\":%.0f,"
                   "\"reader_segments_reused\":%u,"
                   "\"compact_s\":%.4f,\"compact_bytes\":%.0f}",
                   i ? "," : "", w->users, w->old_bytes, w->old_s, w->idx_s,
                   w->write_s, w->total_s, w->new_bytes,
                   w->old_bytes / w->new_bytes, w->items_bytes, w->items_s,
                   w->delta_bytes, w->delta_s, w->base_bytes, w->full_s,
                   w->full_validated, w->reuse_s, w->reuse_validated,
                   w->reused, w->compact_s, w->compact_bytes);
        }
        fprintf(jf, "]}\n");
        if (jf != stdout) {
            fclose(jf);
        }
        if (json) {
            return 0;
        }
    }

    printf("\n%9s %8s %8s %17s %8s %9s %8s %8s %8s\n", "users", "old MB",
           "old s", "new s (idx/files)", "new MB", "old/new B",
           "rd full", "rd reuse", "compact");
    for (uint32_t i = 0; i < n_u; i++) {
        const row_t  *w = &rows[i];
        char          ns[32];

        snprintf(ns, sizeof(ns), "%.3f/%.3f", w->idx_s, w->write_s);
        printf("%9u %8.1f %8.3f %17s %8.2f %8.1fx %8.4f %8.4f %8.3f\n",
               w->users, MB(w->old_bytes), w->old_s, ns, MB(w->new_bytes),
               w->old_bytes / w->new_bytes, w->full_s, w->reuse_s,
               w->compact_s);
    }
    printf("\n%9s %8s %9s %8s %9s %10s %12s %12s %10s\n", "users",
           "items MB", "items s", "delta MB", "delta s", "new total",
           "rd full MB", "rd reuse MB", "compact MB");
    for (uint32_t i = 0; i < n_u; i++) {
        const row_t  *w = &rows[i];

        printf("%9u %8.2f %9.4f %8.2f %9.4f %10.3f %12.1f %12.2f %10.1f\n",
               w->users, MB(w->items_bytes), w->items_s, MB(w->delta_bytes),
               w->delta_s, w->total_s, MB(w->full_validated),
               MB(w->reuse_validated), MB(w->compact_bytes));
    }
    printf("\nold s: mv_snapshot_publish of the whole model (U + %u users, "
           "items, graph), write only (the old path re-linked the graph "
           "too, as idx does);\nnew s: mvw_publisher_run, idx = graph "
           "update, files = items-G + users-G + manifest + publish; "
           "items s / delta s: each segment written alone;\nrd: "
           "mv_generation_open of the new generation without / with reuse "
           "of generation 1; compact: mv_generation_compact_users (base + "
           "delta -> one base)\n", changed - changed / 2);
    return 0;
}
