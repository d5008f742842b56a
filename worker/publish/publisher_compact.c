/*
 * publisher_compact.c -- merging the user segments into one base on a
 * thread of its own, so that publishing never waits for it (see
 * publisher.h).  A base of millions of users takes seconds to tens of
 * seconds to write on a busy machine; meanwhile generations go on naming
 * the old segments plus their new deltas.
 *
 * The job merges the user segments of the last published generation L
 * (mv_generation_compact_users of gen-L.mvm) into `users-L.base.mvs.part`
 * -- a name pruning and listing leave alone (mv_snapshot_remove_temps
 * removes it at the next start if the job never finishes).  The thread
 * touches nothing but the job; the files it reads stay named by every
 * manifest published until the publisher applies the result, so pruning
 * cannot take them away (a manifest pruned after the job opened it stays
 * readable through the open descriptors and mappings).  Applying, on the
 * publisher's thread at its next publish: rename the part to
 * users-L.base.mvs, fsync the directory, and make it the first user
 * segment in place of the `prefix` segments it merged; the deltas
 * published since stay after it.  Nothing else coordinates with the
 * thread but the `done` flag, set last (release) and read first
 * (acquire).
 *
 * Without a thread of its own (mvw_publisher_run called directly: tests,
 * offline publishes) the job runs inline, so the result is deterministic.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"
#include "publish/publisher_internal.h"

#define PART_SUFFIX  ".tmp-compaction"


int
mvw_compaction_due(const mvw_publisher_t *p)
{
    if (p->n_deltas == 0 || p->last_published == 0) {
        return 0;
    }
    if (p->n_deltas > p->max_deltas) {
        return 1;
    }
    return p->base_bytes > 0
           && (double) p->delta_bytes > p->base_ratio * (double) p->base_bytes;
}


static void *
compaction_main(void *arg)
{
    mvw_compaction_t  *c = arg;
    mv_generation_t   *g;
    struct stat        st;
    char               path[PATH_MAX + 128];
    int64_t            t0 = mv_clock_monotonic_us();

    g = mv_generation_open(c->manifest, NULL, NULL, &c->err);
    if (g != NULL) {
        if (mv_generation_compact_users(c->dir, g, c->part, &c->err)
            == MV_OK)
        {
            snprintf(path, sizeof(path), "%s/%s", c->dir, c->part);
            c->bytes = stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
            c->ok = 1;
        }
        mv_generation_close(g);
    }
    c->seconds = (double) (mv_clock_monotonic_us() - t0) / 1e6;
    atomic_store_explicit(&c->done, 1, memory_order_release);
    return NULL;
}


void
mvw_compaction_start(mvw_publisher_t *p, mvw_publish_report_t *r)
{
    mvw_compaction_t  *c;
    char               name[64];
    sigset_t           all, old;
    int                rc;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        mv_err_set(&r->compact_err, "out of memory for a compaction");
        return;
    }
    mv_gen_manifest_name(p->last_published, name, sizeof(name));
    mv_gen_base_name(p->last_published, c->base, sizeof(c->base));
    snprintf(c->dir, sizeof(c->dir), "%s", p->dir);
    snprintf(c->manifest, sizeof(c->manifest), "%s/%s", p->dir, name);
    snprintf(c->part, sizeof(c->part), "%s%s", c->base, PART_SUFFIX);
    c->prefix = p->n_user_segs;
    p->job = c;
    r->compact_started = 1;

    if (!p->started) {
        compaction_main(c);
        return;
    }

    /* signals are the trainer thread's business */
    c->threaded = 1;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&c->thread, NULL, compaction_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        c->threaded = 0;
        compaction_main(c);             /* no thread: inline, not never */
    }
}


int
mvw_publisher_compacting(mvw_publisher_t *p)
{
    return p->job != NULL;
}


int
mvw_publisher_compaction_ready(mvw_publisher_t *p)
{
    return p->job != NULL
           && (!p->job->threaded
               || atomic_load_explicit(&p->job->done, memory_order_acquire));
}


/* The part's path in the job's directory. */
static void
part_path(const mvw_compaction_t *c, const char *name, char *buf,
    size_t len)
{
    snprintf(buf, len, "%s/%s", c->dir, name);
}


void
mvw_compaction_collect(mvw_publisher_t *p, int wait, mvw_publish_report_t *r)
{
    mvw_compaction_t  *c = p->job;
    char               from[PATH_MAX + 128], to[PATH_MAX + 128];
    mvw_user_segment_t rest[MV_GEN_MAX_SEGMENTS];
    uint32_t           n_rest, i;

    if (c == NULL) {
        return;
    }
    if (c->threaded) {
        if (!wait && !atomic_load_explicit(&c->done, memory_order_acquire)) {
            return;
        }
        pthread_join(c->thread, NULL);
    }
    p->job = NULL;
    r->compact_s = c->seconds;
    part_path(c, c->part, from, sizeof(from));

    if (!c->ok) {
        r->compact_err = c->err;
        goto done;
    }
    part_path(c, c->base, to, sizeof(to));
    if (rename(from, to) != 0) {
        mv_err_set(&r->compact_err, "rename %s: %s", from, strerror(errno));
        goto done;
    }
    if (mv_dir_fsync(c->dir, &r->compact_err) != MV_OK
        || c->prefix > p->n_user_segs)
    {
        goto done;
    }

    /* the base, then the segments published after the job began */
    n_rest = p->n_user_segs - c->prefix;
    memcpy(rest, p->user_segs + c->prefix, n_rest * sizeof(rest[0]));
    mvw_segments_reset(p);
    mvw_segments_append(p, c->base, MV_GEN_SEGMENT_USER_BASE, c->bytes,
                        NULL);
    for (i = 0; i < n_rest; i++) {
        mvw_segments_append(p, rest[i].name, rest[i].kind, rest[i].bytes,
                            NULL);
    }
    r->compacted = 1;
    r->compact_bytes = c->bytes;
    r->bytes += c->bytes;
    if (p->crash_at[0] != '\0' && strcmp(p->crash_at, "compact") == 0) {
        raise(SIGKILL);
    }

done:
    unlink(from);
    free(c);
}


void
mvw_compaction_abandon(mvw_publisher_t *p)
{
    mvw_compaction_t  *c = p->job;
    char               path[PATH_MAX + 128];

    if (c == NULL) {
        return;
    }
    p->job = NULL;
    if (c->threaded
        && !atomic_load_explicit(&c->done, memory_order_acquire))
    {
        /* still writing: left to finish or die with the process; its part
           file is removed at the next start */
        pthread_detach(c->thread);
        return;
    }
    if (c->threaded) {
        pthread_join(c->thread, NULL);
    }
    part_path(c, c->part, path, sizeof(path));
    unlink(path);
    free(c);
}
