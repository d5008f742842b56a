/*
 * bench_validate.c -- how long mv_snapshot_open (map + full validation)
 * takes on a large snapshot, against a plain pass over the same bytes.
 *
 * A trainer-sized snapshot is written once: n items with seeded clustered
 * vectors, a random graph that obeys every rule of the format (levels drawn
 * as HNSW draws them, links to distinct other nodes of a high enough level,
 * SQ8 codes), metadata over a few categories, and users.  A random graph is
 * used because building a real HNSW over 1M items takes many minutes, and
 * validation reads every link whatever the graph looks like, so its cost is
 * the same.  Then the file is opened `--runs` times (page cache warm) and the
 * median is reported beside the median of the peer: one CRC-32C pass over
 * the mapped file, the least any checksum-verifying reader must do.
 *
 *   bench_validate [--n 1000000] [--dim 64] [--users 200000] [--runs 5]
 *                  [--dir /tmp] [--json]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "hnsw.h"
#include "snapshot.h"
#include "synth.h"
#include "vec.h"

#define LINKS_M    16
#define CATEGORIES 50


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


/* Picks a node other than self whose level is at least level. */
static uint32_t
pick_node(mv_rng_t *rng, const uint32_t *by_level_start,
    const uint32_t *order, uint32_t n, uint32_t level, uint32_t self)
{
    uint32_t  first, count, v;

    first = by_level_start[level];
    count = n - first;

    do {
        v = order[first + (uint32_t) (mv_rng_next(rng) % count)];
    } while (v == self && count > 1);

    return v;
}


/*
 * Builds a random graph that satisfies mv_hnsw_graph_validate into freshly
 * allocated arrays described by g.
 */
static void
random_graph(mv_hnsw_graph_t *g, uint32_t n, uint32_t dim, float *vectors,
    mv_rng_t *rng)
{
    uint32_t  *level, *order, *start, *offsets, *links, i, l, j, maxl;
    uint32_t   count[MV_HNSW_MAX_LEVEL + 2], *rec, cap;
    size_t     stride, code_stride, total;
    uint8_t   *level0, *codes;
    float     *sq_min, *sq_scale;

    level = malloc(n * sizeof(uint32_t));
    order = malloc(n * sizeof(uint32_t));
    start = calloc(MV_HNSW_MAX_LEVEL + 2, sizeof(uint32_t));
    offsets = malloc(((size_t) n + 1) * sizeof(uint32_t));
    memset(count, 0, sizeof(count));
    maxl = 0;

    for (i = 0; i < n; i++) {
        l = (uint32_t) floor(-log(1.0 - mv_rng_uniform(rng)) / log(LINKS_M));
        level[i] = l > MV_HNSW_MAX_LEVEL ? MV_HNSW_MAX_LEVEL : l;
        maxl = level[i] > maxl ? level[i] : maxl;
        count[level[i]]++;
    }

    /* order: nodes sorted by level, so "level >= l" is a suffix */
    for (l = 1; l <= MV_HNSW_MAX_LEVEL + 1; l++) {
        start[l] = start[l - 1] + count[l - 1];
    }
    {
        uint32_t  fill[MV_HNSW_MAX_LEVEL + 1];

        memcpy(fill, start, sizeof(fill));
        for (i = 0; i < n; i++) {
            order[fill[level[i]]++] = i;
        }
    }

    total = 0;
    for (i = 0; i < n; i++) {
        offsets[i] = (uint32_t) total;
        total += (size_t) level[i] * (LINKS_M + 1);
    }
    offsets[n] = (uint32_t) total;
    links = calloc(total ? total : 1, sizeof(uint32_t));

    stride = mv_hnsw_level0_stride(2 * LINKS_M);
    code_stride = mv_hnsw_code_stride(dim);
    level0 = calloc(n, stride);
    codes = calloc(n, code_stride);
    sq_min = malloc(dim * sizeof(float));
    sq_scale = malloc(dim * sizeof(float));
    mv_sq8_train(vectors, n, dim, sq_min, sq_scale);

    for (i = 0; i < n; i++) {
        rec = (uint32_t *) (level0 + (size_t) i * stride);
        cap = n - 1 < 2 * LINKS_M ? n - 1 : 2 * LINKS_M;
        rec[0] = cap;
        for (j = 0; j < cap; j++) {
            rec[1 + j] = pick_node(rng, start, order, n, 0, i);
        }
        mv_sq8_encode(vectors + (size_t) i * dim, dim, sq_min, sq_scale,
                      codes + (size_t) i * code_stride);

        for (l = 1; l <= level[i]; l++) {
            uint32_t  *block = links + offsets[i] + (size_t) (l - 1) * (LINKS_M + 1);
            uint32_t   others = n - start[l] - 1;

            block[0] = others < LINKS_M ? others : LINKS_M;
            for (j = 0; j < block[0]; j++) {
                block[1 + j] = pick_node(rng, start, order, n, l, i);
            }
        }
    }

    memset(g, 0, sizeof(*g));
    g->n = n;
    g->dim = dim;
    g->metric = MV_METRIC_COSINE;
    g->M = LINKS_M;
    g->M0 = 2 * LINKS_M;
    g->max_level = maxl;
    g->entry = order[n - 1];
    g->level0 = level0;
    g->level0_stride = stride;
    g->codes = codes;
    g->code_stride = code_stride;
    g->upper_offsets = offsets;
    g->upper_links = links;
    g->vectors = vectors;
    g->sq_min = sq_min;
    g->sq_scale = sq_scale;

    free(level);
    free(order);
    free(start);
}


static char **
make_ids(const char *fmt, uint32_t n)
{
    char      **ids = malloc(n * sizeof(char *));
    uint32_t    i;

    for (i = 0; i < n; i++) {
        ids[i] = malloc(24);
        snprintf(ids[i], 24, fmt, i);
    }

    return ids;
}


int
main(int argc, char **argv)
{
    uint32_t              n = 1000000, dim = 64, users = 200000, i;
    int                   runs = 5, json = 0, r, a;
    const char           *dir = "/tmp";
    char                  path[4096];
    float                *vectors, *user_vectors;
    mv_item_meta_t       *meta;
    char                **item_ids, **user_ids, **cat_ids;
    mv_hnsw_graph_t       g;
    mv_snapshot_input_t   in;
    mv_snapshot_t        *snap;
    mv_rng_t              rng;
    mv_err_t              err;
    double                t, write_s, *open_s, *crc_s;
    struct stat           st;
    int                   fd;
    void                 *map;
    volatile uint32_t     sink;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--n") == 0 && a + 1 < argc) {
            n = (uint32_t) strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--dim") == 0 && a + 1 < argc) {
            dim = (uint32_t) strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--users") == 0 && a + 1 < argc) {
            users = (uint32_t) strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--runs") == 0 && a + 1 < argc) {
            runs = atoi(argv[++a]);
        } else if (strcmp(argv[a], "--dir") == 0 && a + 1 < argc) {
            dir = argv[++a];
        } else if (strcmp(argv[a], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "usage: bench_validate [--n N] [--dim D] "
                    "[--users U] [--runs R] [--dir DIR] [--json]\n");
            return 2;
        }
    }

    if (n < 2 || dim == 0 || runs < 1) {
        fprintf(stderr, "bench_validate: need n >= 2, dim >= 1, runs >= 1\n");
        return 2;
    }

    vectors = malloc((size_t) n * dim * sizeof(float));
    user_vectors = malloc((size_t) (users ? users : 1) * dim * sizeof(float));
    meta = calloc(n, sizeof(mv_item_meta_t));
    mv_synth_clustered(vectors, n, dim, CATEGORIES, 0.5f, 1, NULL);
    mv_synth_clustered(user_vectors, users, dim, CATEGORIES, 0.5f, 2, NULL);
    for (i = 0; i < n; i++) {
        mv_normalize(vectors + (size_t) i * dim, dim);
    }

    mv_rng_seed(&rng, 3);
    for (i = 0; i < n; i++) {
        meta[i].category = i % CATEGORIES;
        meta[i].popularity = (float) mv_rng_uniform(&rng);
        meta[i].created_at_ms = 1700000000000LL + i;
    }

    random_graph(&g, n, dim, vectors, &rng);
    item_ids = make_ids("item-%07u", n);
    user_ids = make_ids("user-%07u", users);
    cat_ids = make_ids("cat-%02u", CATEGORIES);

    memset(&in, 0, sizeof(in));
    in.generation = 1;
    in.created_at_ms = 1700000000000LL;
    in.dim = dim;
    in.metric = MV_METRIC_COSINE;
    in.n_items = n;
    in.item_ids = (const char *const *) item_ids;
    in.item_vectors = vectors;
    in.item_meta = meta;
    in.n_categories = CATEGORIES;
    in.category_names = (const char *const *) cat_ids;
    in.graph = &g;
    in.n_users = users;
    in.user_ids = (const char *const *) user_ids;
    in.user_vectors = user_vectors;

    snprintf(path, sizeof(path), "%s/bench-validate-%ld.mvs", dir,
             (long) getpid());

    t = now_seconds();
    if (mv_snapshot_write(path, &in, &err) != MV_OK) {
        fprintf(stderr, "bench_validate: write: %s\n", err.msg);
        return 1;
    }
    write_s = now_seconds() - t;

    open_s = malloc(runs * sizeof(double));
    crc_s = malloc(runs * sizeof(double));

    for (r = 0; r < runs; r++) {
        t = now_seconds();
        snap = mv_snapshot_open(path, &err);
        open_s[r] = now_seconds() - t;
        if (snap == NULL) {
            fprintf(stderr, "bench_validate: open: %s\n", err.msg);
            unlink(path);
            return 1;
        }
        mv_snapshot_close(snap);

        fd = open(path, O_RDONLY);
        fstat(fd, &st);
        t = now_seconds();
        map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        sink = mv_crc32c(0, map, (size_t) st.st_size);
        munmap(map, (size_t) st.st_size);
        crc_s[r] = now_seconds() - t;
        close(fd);
    }
    (void) sink;

    unlink(path);

    {
        double  open_med = median(open_s, runs);
        double  crc_med = median(crc_s, runs);
        double  mb = (double) st.st_size / 1e6;

        if (json) {
            printf("{\"items\":%u,\"dim\":%u,\"users\":%u,\"file_bytes\":%lld,"
                   "\"write_seconds\":%.3f,\"open_validate_seconds\":%.4f,"
                   "\"crc_pass_seconds\":%.4f,\"ratio_to_crc_pass\":%.2f,"
                   "\"runs\":%d}\n", n, dim, users, (long long) st.st_size,
                   write_s, open_med, crc_med, open_med / crc_med, runs);
        } else {
            printf("snapshot: %u items x %u dims, %u users, %.0f MB "
                   "(written in %.2f s)\n", n, dim, users, mb, write_s);
            printf("%-34s %10s %10s\n", "median of runs", "seconds",
                   "MB/s");
            printf("%-34s %10.4f %10.0f\n", "mv_snapshot_open (map+validate)",
                   open_med, mb / open_med);
            printf("%-34s %10.4f %10.0f\n", "peer: one CRC-32C pass", crc_med,
                   mb / crc_med);
            printf("ratio open / CRC pass: %.2f (runs: %d)\n",
                   open_med / crc_med, runs);
        }
    }

    return 0;
}
