/*
 * publisher_thread.c -- running publishes on a thread of the publisher's
 * own (see publisher.h), so that the trainer's thread only freezes a batch
 * (O(items + changed users)) and goes on applying records.
 *
 * Hand-off: one slot under a mutex.  The trainer submits a batch only when
 * the slot is free (no batch in flight, no result uncollected); while the
 * publisher is busy the trainer keeps learning and its changes accumulate
 * in the trainer's change marks, to be frozen into the next batch -- so
 * under overload generations simply come less often, and the lag metrics
 * say so; nothing is dropped or queued without bound.  The trainer
 * collects each result on its own thread (mvw_publisher_poll): the stream
 * source, the trainer and the logger are not thread-safe, and only the
 * trainer's thread touches them.  The publisher's thread touches only the
 * batch and the publisher (graph, segment list, files).
 */
#include <stdlib.h>
#include <string.h>

#include "publish/publisher_internal.h"


static void *
publisher_main(void *arg)
{
    mvw_publisher_t  *p = arg;

    pthread_mutex_lock(&p->lock);
    for ( ;; ) {
        while (!p->has_work && !p->stopping) {
            pthread_cond_wait(&p->cond, &p->lock);
        }
        if (!p->has_work) {
            break;
        }
        pthread_mutex_unlock(&p->lock);

        (void) mvw_publisher_run(p, &p->batch, &p->report);

        pthread_mutex_lock(&p->lock);
        p->has_work = 0;
        p->has_result = 1;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}


int
mvw_publisher_start(mvw_publisher_t *p, mv_err_t *err)
{
    int  rc;

    if (p->started) {
        return MV_OK;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    rc = pthread_create(&p->thread, NULL, publisher_main, p);
    if (rc != 0) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        return mv_err_set(err, "cannot start the publisher thread: %s",
                          strerror(rc));
    }
    p->started = 1;
    return MV_OK;
}


int
mvw_publisher_busy(mvw_publisher_t *p)
{
    int  busy;

    if (!p->started) {
        return 0;
    }
    pthread_mutex_lock(&p->lock);
    busy = p->has_work || p->has_result;
    pthread_mutex_unlock(&p->lock);
    return busy;
}


int
mvw_publisher_submit(mvw_publisher_t *p, mvw_publish_batch_t *b)
{
    int  taken = 0;

    pthread_mutex_lock(&p->lock);
    if (!p->has_work && !p->has_result) {
        p->batch = *b;
        memset(b, 0, sizeof(*b));
        mvw_idmap_init(&b->item_ids);
        mvw_idmap_init(&b->categories);
        mvw_idmap_init(&b->user_ids);
        p->has_work = 1;
        taken = 1;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return taken;
}


int
mvw_publisher_poll(mvw_publisher_t *p, int wait, mvw_publish_batch_t *b,
    mvw_publish_report_t *r)
{
    int  got = 0;

    if (!p->started) {
        return 0;
    }
    pthread_mutex_lock(&p->lock);
    while (wait && p->has_work && !p->has_result) {
        pthread_cond_wait(&p->cond, &p->lock);
    }
    if (p->has_result) {
        *b = p->batch;
        *r = p->report;
        memset(&p->batch, 0, sizeof(p->batch));
        p->has_result = 0;
        got = 1;
    }
    pthread_mutex_unlock(&p->lock);
    return got;
}


void
mvw_publisher_free(mvw_publisher_t *p)
{
    mvw_publish_batch_t   b;
    mvw_publish_report_t  r;

    if (p == NULL) {
        return;
    }
    if (p->started) {
        pthread_mutex_lock(&p->lock);
        p->stopping = 1;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
        if (mvw_publisher_poll(p, 0, &b, &r)) {
            mvw_publish_batch_free(&b);
        }
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
    }
    mvw_compaction_abandon(p);
    mv_hnsw_free(p->hnsw);
    free(p);
}
