/*
 * ngx_milvuso_snapshot.c -- each worker's mapping of the model generation.
 *
 * A worker opens what `milvuso_snapshot` names (normally the `current`
 * link the trainer swaps) in init_process: a manifest naming the files of
 * a generation -- items segment, user base, user deltas -- or a plain
 * snapshot file (shared/generation.h).  Every file is mapped read-only and
 * shared, so the page cache holds one copy whatever the number of
 * workers, and validated completely (shared/snapshot_read.c) before the
 * worker trusts a byte of it.  A generation is used whole or not at all:
 * a file that does not match its manifest (pruned or replaced meanwhile)
 * makes the attempt fail as "moved", retried at the next tick.  A new
 * generation shares the files it has in common with the one in use
 * (same device, inode, size, generation and header CRC): only its new
 * files are mapped and validated, so a swap costs what changed.  A missing or bad file is logged and the worker serves without
 * a model ("degraded"): nginx never fails to start because of a snapshot.
 *
 * Swaps:
 *   - on `nginx -s reload` the new workers map whatever `current` names;
 *   - with check=T every worker reads the identity of the file the path
 *     names every T (mv_snapshot_identity: device, inode, size, and the
 *     generation and header CRC from its first bytes) and, when it is
 *     another file, opens and validates that one, and swaps only when it is
 *     good; a bad new file is refused (logged once per distinct reason) and
 *     the previous model keeps serving.
 *
 * After a swap the worker drops the fresh items the new model includes
 * (ngx_milvuso_fresh_drop_included in the zone: their action-log record
 * lies before the snapshot's stored position).
 *
 * Validation of a polled file runs in a short-lived thread (all signals
 * blocked), never in the event loop: at 1M items it takes about half a
 * second (BENCHMARKS.md).  The poll timer starts the thread when the path
 * names a new file and, on a later tick, joins the finished thread and
 * swaps in the main thread.  A file that was refused is not validated again
 * until the path names another file.  "Another" is decided by the whole
 * identity, not the inode alone: once a refused file is pruned its inode
 * may be reused by a later, good generation, which must not be skipped.
 * The identity is read before and after the attempt; a refusal is
 * remembered only when both agree (the path did not move in between),
 * otherwise the next tick tries again.  The first mapping, in init_process,
 * is done inline: the worker serves nothing before it anyway.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <pthread.h>
#include <signal.h>

#include "ngx_milvuso.h"


#define NGX_MILVUSO_JOIN_MS  20      /* tick while a loader thread runs */


/* The loader thread's job: open and validate one path. */
typedef struct {
    pthread_t            tid;
    ngx_uint_t           running;    /* started, not joined yet */
    ngx_atomic_t         done;       /* set by the thread when finished */
    char                 path[NGX_MAX_PATH];
    mv_generation_t     *result;
    const mv_generation_t  *reuse;   /* the one in use: not closed before
                                        the thread is joined */
    int                  moved;
    mv_err_t             err;
    mv_snapshot_identity_t  tried;   /* the file tried, when tried_known */
    ngx_uint_t           tried_known;
} ngx_milvuso_loader_t;


static void ngx_milvuso_snapshot_load(ngx_log_t *log,
    ngx_milvuso_main_conf_t *mcf);
static mv_generation_t *ngx_milvuso_snapshot_try(const char *path,
    const mv_generation_t *reuse, mv_err_t *err,
    mv_snapshot_identity_t *tried, ngx_uint_t *tried_known);
static void ngx_milvuso_snapshot_install(ngx_log_t *log,
    ngx_milvuso_main_conf_t *mcf, mv_generation_t *g, mv_err_t *err,
    const mv_snapshot_identity_t *tried);
static void ngx_milvuso_snapshot_refuse(ngx_log_t *log,
    ngx_milvuso_main_conf_t *mcf, const mv_snapshot_identity_t *tried,
    const char *reason);
static ngx_int_t ngx_milvuso_loader_start(ngx_log_t *log,
    ngx_milvuso_main_conf_t *mcf);
static void *ngx_milvuso_loader_main(void *arg);
static void ngx_milvuso_snapshot_poll(ngx_event_t *ev);
static void ngx_milvuso_snapshot_fail(ngx_log_t *log,
    ngx_milvuso_main_conf_t *mcf, const char *reason);


static ngx_milvuso_loader_t  ngx_milvuso_loader;

/* identity of the last file refused: not validated again */
static mv_snapshot_identity_t  ngx_milvuso_refused;
static ngx_uint_t              ngx_milvuso_refused_known;


ngx_int_t
ngx_milvuso_snapshot_init_process(ngx_cycle_t *cycle,
    ngx_milvuso_main_conf_t *mcf)
{
    ngx_milvuso_proc_t  *pr = &ngx_milvuso_proc;

    pr->kern = mv_kernels_best();

    pr->scratch = mv_hnsw_scratch_new(0, 1, MV_SEARCH_K_MAX);
    if (pr->scratch == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "milvuso: cannot allocate the search scratch");
        return NGX_ERROR;
    }

    if (mcf->snapshot_path.len == 0) {
        ngx_cpystrn(pr->error, (u_char *) "no milvuso_snapshot configured",
                    sizeof(pr->error));
        return NGX_OK;
    }

    ngx_milvuso_snapshot_load(cycle->log, mcf);

    if (mcf->snapshot_check) {
        pr->poll_ev.handler = ngx_milvuso_snapshot_poll;
        pr->poll_ev.log = cycle->log;
        pr->poll_ev.data = mcf;
        pr->poll_ev.cancelable = 1;
        ngx_add_timer(&pr->poll_ev, mcf->snapshot_check);
    }

    return NGX_OK;
}


void
ngx_milvuso_snapshot_exit_process(void)
{
    ngx_milvuso_proc_t  *pr = &ngx_milvuso_proc;

    if (pr->poll_ev.timer_set) {
        ngx_del_timer(&pr->poll_ev);
    }

    if (ngx_milvuso_loader.running) {
        (void) pthread_join(ngx_milvuso_loader.tid, NULL);
        ngx_milvuso_loader.running = 0;
        mv_generation_close(ngx_milvuso_loader.result);
        ngx_milvuso_loader.result = NULL;
    }

    mv_generation_close(pr->gen);
    pr->gen = NULL;
    pr->view = NULL;
    pr->info = NULL;

    mv_hnsw_scratch_free(pr->scratch);
    pr->scratch = NULL;
}


static void
ngx_milvuso_snapshot_poll(ngx_event_t *ev)
{
    ngx_milvuso_main_conf_t  *mcf = ev->data;

    mv_err_t                 err;
    mv_snapshot_identity_t   id;
    ngx_milvuso_proc_t      *pr = &ngx_milvuso_proc;
    ngx_milvuso_loader_t    *ld = &ngx_milvuso_loader;

    if (ld->running) {
        if (!ld->done) {
            ngx_add_timer(ev, NGX_MILVUSO_JOIN_MS);
            return;
        }

        (void) pthread_join(ld->tid, NULL);
        ld->running = 0;

        if (!(ngx_exiting || ngx_quit || ngx_terminate)) {
            ngx_milvuso_snapshot_install(ev->log, mcf, ld->result, &ld->err,
                                         ld->tried_known ? &ld->tried : NULL);

        } else {
            mv_generation_close(ld->result);
        }

        ld->result = NULL;
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* a manifest is read, not kept mapped, so its inode may be reused by
       a later one: files are told apart by the whole identity */

    if (mv_snapshot_identity((char *) mcf->snapshot_path.data, &id, &err)
        == MV_OK
        && !(pr->gen && mv_snapshot_identity_equal(&id, &pr->ident))
        && !(ngx_milvuso_refused_known
             && mv_snapshot_identity_equal(&id, &ngx_milvuso_refused)))
    {
        if (ngx_milvuso_loader_start(ev->log, mcf) == NGX_OK) {
            ngx_add_timer(ev, NGX_MILVUSO_JOIN_MS);
            return;
        }

        /* no thread: validate inline rather than never */
        ngx_milvuso_snapshot_load(ev->log, mcf);
    }

    ngx_add_timer(ev, mcf->snapshot_check);
}


static ngx_int_t
ngx_milvuso_loader_start(ngx_log_t *log, ngx_milvuso_main_conf_t *mcf)
{
    int                    err;
    sigset_t               all, old;
    ngx_milvuso_loader_t  *ld = &ngx_milvuso_loader;

    ngx_cpystrn((u_char *) ld->path, mcf->snapshot_path.data,
                sizeof(ld->path));
    ld->result = NULL;
    ld->reuse = ngx_milvuso_proc.gen;
    ld->err.msg[0] = '\0';
    ld->done = 0;

    /* the thread must never run nginx's signal handlers */
    sigfillset(&all);
    (void) pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&ld->tid, NULL, ngx_milvuso_loader_main, ld);
    (void) pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (err != 0) {
        ngx_log_error(NGX_LOG_ALERT, log, err,
                      "milvuso: cannot start the snapshot loader thread");
        return NGX_ERROR;
    }

    ld->running = 1;

    return NGX_OK;
}


static void *
ngx_milvuso_loader_main(void *arg)
{
    ngx_milvuso_loader_t  *ld = arg;

    ld->result = ngx_milvuso_snapshot_try(ld->path, ld->reuse, &ld->err,
                                          &ld->tried, &ld->tried_known);

    ngx_memory_barrier();
    ld->done = 1;

    return NULL;
}


/* Logs a failed attempt once per distinct reason (polling repeats them). */
static void
ngx_milvuso_snapshot_fail(ngx_log_t *log, ngx_milvuso_main_conf_t *mcf,
    const char *reason)
{
    ngx_milvuso_proc_t  *pr = &ngx_milvuso_proc;

    pr->failures++;

    if (ngx_strcmp(pr->error, reason) == 0) {
        return;
    }

    ngx_cpystrn(pr->error, (u_char *) reason, sizeof(pr->error));

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "milvuso: snapshot \"%V\" refused: %s; %s",
                  &mcf->snapshot_path, reason,
                  pr->gen ? "the previous model keeps serving"
                           : "serving without a model (degraded)");
}


/*
 * Opens and validates path, sharing what reuse has (any thread: no nginx
 * call).  *tried_known is set when the path named one and the same file
 * before and after the attempt, and no file of the generation had moved,
 * *tried then being its identity: only such a file may be remembered as
 * refused.
 */
static mv_generation_t *
ngx_milvuso_snapshot_try(const char *path, const mv_generation_t *reuse,
    mv_err_t *err, mv_snapshot_identity_t *tried, ngx_uint_t *tried_known)
{
    int                      moved;
    mv_generation_t         *g;
    mv_snapshot_identity_t   after;

    *tried_known = 0;

    if (mv_snapshot_identity(path, tried, err) != MV_OK) {
        return NULL;
    }

    g = mv_generation_open(path, reuse, &moved, err);

    if (!moved
        && mv_snapshot_identity(path, &after, NULL) == MV_OK
        && mv_snapshot_identity_equal(tried, &after))
    {
        *tried_known = 1;
    }

    return g;
}


static void
ngx_milvuso_snapshot_load(ngx_log_t *log, ngx_milvuso_main_conf_t *mcf)
{
    mv_err_t                 err;
    ngx_uint_t               known;
    mv_generation_t         *g;
    mv_snapshot_identity_t   tried;

    g = ngx_milvuso_snapshot_try((char *) mcf->snapshot_path.data,
                                 ngx_milvuso_proc.gen, &err, &tried, &known);

    ngx_milvuso_snapshot_install(log, mcf, g, &err, known ? &tried : NULL);
}


/*
 * Refuses a file: remembers its identity (when known) so that polling does
 * not validate it again until the path names another file, and logs why.
 * A transient failure (out of descriptors, say) on a good file also waits
 * for the next publish: logged either way.
 */
static void
ngx_milvuso_snapshot_refuse(ngx_log_t *log, ngx_milvuso_main_conf_t *mcf,
    const mv_snapshot_identity_t *tried, const char *reason)
{
    if (tried) {
        ngx_milvuso_refused = *tried;
        ngx_milvuso_refused_known = 1;
    }

    ngx_milvuso_snapshot_fail(log, mcf, reason);
}


/*
 * Takes an opened generation (or NULL and the reason it could not be) and
 * swaps it in after the checks that need the configuration and the scratch.
 * Runs in the main thread.
 */
static void
ngx_milvuso_snapshot_install(ngx_log_t *log, ngx_milvuso_main_conf_t *mcf,
    mv_generation_t *g, mv_err_t *err, const mv_snapshot_identity_t *tried)
{
    char                         reason[300];
    ngx_milvuso_proc_t          *pr = &ngx_milvuso_proc;
    const mv_snapshot_view_t    *view;
    const mv_generation_info_t  *info;

    if (g == NULL) {
        ngx_milvuso_snapshot_refuse(log, mcf, tried, err->msg);
        return;
    }

    info = mv_generation_info(g);

    if (tried && !mv_snapshot_identity_equal(tried, &info->identity)) {
        tried = NULL;       /* not the file that was opened */
    }

    if (pr->gen && mv_snapshot_identity_equal(&info->identity, &pr->ident)) {
        /* `current` moved back and forth between stat and open */
        mv_generation_close(g);
        return;
    }

    view = mv_generation_items(g);

    if (mcf->dim && view->dim != mcf->dim) {
        ngx_snprintf((u_char *) reason, sizeof(reason) - 1,
                     "dimension %uD, but milvuso_dim is %ui%Z",
                     view->dim, mcf->dim);
        mv_generation_close(g);
        ngx_milvuso_snapshot_refuse(log, mcf, tried, reason);
        return;
    }

    if (mv_hnsw_scratch_reserve(pr->scratch, view->n_items, view->dim,
                                MV_SEARCH_K_MAX)
        != MV_OK)
    {
        mv_generation_close(g);
        ngx_milvuso_snapshot_refuse(log, mcf, tried,
                                    "no memory for the search scratch");
        return;
    }

    if (pr->gen && info->generation < pr->info->generation) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "milvuso: snapshot generation %uL replaces the newer "
                      "%uL (the link was pointed back)",
                      info->generation, pr->info->generation);
    }

    mv_generation_close(pr->gen);

    pr->gen = g;
    pr->view = view;
    pr->info = info;
    pr->ident = info->identity;
    pr->error[0] = '\0';

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "milvuso: snapshot generation %uL mapped from \"%V\" "
                  "(%uD items, %uL users, dim %uD; %uD files, %uD shared "
                  "with the previous, %uL bytes validated)",
                  info->generation, &mcf->snapshot_path, view->n_items,
                  info->n_users, view->dim, info->n_segments,
                  info->segments_reused, info->bytes_validated);

    if (mcf->shm_zone) {
        (void) ngx_milvuso_fresh_drop_included(mcf->shm_zone->data, view);
    }
}


uint32_t
ngx_milvuso_dim(ngx_milvuso_main_conf_t *mcf)
{
    if (ngx_milvuso_proc.view) {
        return ngx_milvuso_proc.view->dim;
    }

    return (uint32_t) mcf->dim;
}


mv_metric_t
ngx_milvuso_metric(void)
{
    if (ngx_milvuso_proc.view) {
        return ngx_milvuso_proc.view->metric;
    }

    return MV_METRIC_COSINE;
}
