/*
 * publisher_internal.h -- the publisher's state, shared by publisher.c
 * (the work of one publish) and publisher_thread.c (running it on a
 * thread of its own).  Nothing else includes it.
 */
#ifndef MVW_PUBLISHER_INTERNAL_H
#define MVW_PUBLISHER_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "generation.h"
#include "hnsw.h"
#include "publish/publisher.h"

typedef struct mvw_user_segment {
    char      name[MV_GEN_NAME_MAX + 1];
    uint32_t  kind;                    /* MV_GEN_SEGMENT_USER_* */
} mvw_user_segment_t;

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

#endif /* MVW_PUBLISHER_INTERNAL_H */
