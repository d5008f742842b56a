/*
 * publisher_internal.h -- the publisher's state, shared by publisher.c
 * (the work of one publish) and publisher_thread.c (running it on a
 * thread of its own).  Nothing else includes it.
 */
#ifndef MVW_PUBLISHER_INTERNAL_H
#define MVW_PUBLISHER_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "generation.h"
#include "hnsw.h"
#include "publish/publisher.h"

/* User segments a manifest may name before a publish waits for the
   compaction that merges them. */
#define MVW_MAX_USER_SEGMENTS  32

typedef struct mvw_user_segment {
    char      name[MV_GEN_NAME_MAX + 1];
    uint32_t  kind;                    /* MV_GEN_SEGMENT_USER_* */
    uint64_t  bytes;
} mvw_user_segment_t;

/*
 * A compaction running on a thread of its own (publisher_compact.c): it
 * merges the user segments of generation `source` into dir/part (a temp
 * name pruning leaves alone); the publisher renames it to `base` and names
 * it in place of the first `prefix` user segments.  Allocated apart from
 * the publisher so that a job abandoned at exit can outlive it.
 */
typedef struct mvw_compaction {
    pthread_t      thread;
    _Atomic int    done;               /* set last by the thread */
    char           dir[PATH_MAX];
    char           manifest[PATH_MAX + 128];
    char           part[MV_GEN_NAME_MAX + 32];
    int            threaded;           /* runs on `thread` */
    char           base[MV_GEN_NAME_MAX + 1];
    uint32_t       prefix;
    int            ok;
    uint64_t       bytes;
    double         seconds;
    mv_err_t       err;
} mvw_compaction_t;

struct mvw_publisher {
    char                  dir[PATH_MAX];
    unsigned              keep;
    mv_hnsw_params_t      hp;
    mv_hnsw_t            *hnsw;        /* the item graph, owned */
    uint64_t              last_generation;   /* published or tried */
    uint64_t              last_published;    /* its manifest, 0: none */

    /* the user segments the last published manifest named, oldest first */
    mvw_user_segment_t    user_segs[MV_GEN_MAX_SEGMENTS];
    uint32_t              n_user_segs;
    uint32_t              n_deltas;
    uint64_t              base_bytes;
    uint64_t              delta_bytes;
    uint32_t              max_deltas;
    double                base_ratio;

    char                  crash_at[32];      /* MVW_TEST_CRASH_AT */

    mvw_compaction_t     *job;         /* running or done, not applied */
    uint64_t              compaction_waits;  /* publishes that waited */

    /* publisher_thread.c: one batch in flight at most */
    pthread_t             thread;
    pthread_mutex_t       lock;
    pthread_cond_t        cond;
    int                   started;
    int                   stopping;
    int                   has_work;    /* batch handed over, not yet run */
    int                   has_result;  /* batch run, not yet collected */
    mvw_publish_batch_t   batch;
    mvw_publish_report_t  report;
};

/* Whether the user segments are due for a compaction (the policy). */
int mvw_compaction_due(const mvw_publisher_t *p);

/*
 * Starts a compaction of the last published generation's user segments on
 * a thread (inline when p has no thread of its own: tests, offline
 * publishes).  Failures are reported in r->compact_err.
 */
void mvw_compaction_start(mvw_publisher_t *p, mvw_publish_report_t *r);

/*
 * Applies a finished compaction (with wait: waits for a running one):
 * renames its base into place and makes it the first user segment in
 * place of those it merged.  Fills r's compaction fields.
 */
void mvw_compaction_collect(mvw_publisher_t *p, int wait,
    mvw_publish_report_t *r);

/* At free: waits for nothing; a running job is abandoned (detached). */
void mvw_compaction_abandon(mvw_publisher_t *p);

/* Appends a user segment to p's list.  MV_OK or MV_ERR. */
int mvw_segments_append(mvw_publisher_t *p, const char *name, uint32_t kind,
    uint64_t bytes, mv_err_t *err);

/* Forgets p's user segments. */
void mvw_segments_reset(mvw_publisher_t *p);

#endif /* MVW_PUBLISHER_INTERNAL_H */
