/*
 * ngx_milvuso_actlog.c -- the action log's own lock, and appending to the
 * log from a request.
 *
 * Every worker appends to the same segment files (shared/actlog.h), so the
 * appends need one lock shared by the workers, and the segment number they
 * write to must be read and advanced under it.  That lock is not the zone's
 * slab mutex: with `sync=on` each append waits for fdatasync, and the zone's
 * mutex is taken by every GET /recommendations (profile copy, cache, fresh
 * scan), so a slow disk would stall the reads.
 *
 * The lock is the slab mutex of a second, tiny shared zone ("<zone>_log",
 * NGX_MILVUSO_LOG_ZONE_SIZE) that holds the segment number and nothing
 * else.  Why a zone rather than an ngx_shmtx_t inside the main zone: when a
 * worker dies, the nginx master force-unlocks the slab mutex of every shared
 * zone the dead process held (ngx_unlock_mutexes); a private ngx_shmtx_t
 * would stay locked forever and block every later write.  The zone is
 * reused as is on reload, like the main one.
 *
 * Lock order: the log lock is never held while taking the zone's mutex and
 * the other way round; an append is applied to the zone only after the log
 * lock is released (ngx_milvuso_handlers.c).
 *
 * With sync=on an append waits for fdatasync, and a wait in the event loop
 * would stall every request of that worker, reads included, whatever lock
 * is held.  So the append then runs in a thread of nginx's thread pool
 * ("default" unless the directive names another; `thread_pool default
 * threads=N;` sizes it), and the request, blocked meanwhile as nginx's own
 * thread tasks block theirs, is answered from the event loop when the
 * record is on disk: 202 still means durable.  Appends of the pool's
 * threads serialise on the same lock as the workers' (each thread is the
 * worker as far as the lock goes), so records keep whole.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_milvuso.h"


#define NGX_MILVUSO_LOG_ZONE_SIZE   (8 * ngx_pagesize)


/* per process: when the last log-write error was logged (rate limit) */
static time_t  ngx_milvuso_log_error_logged;


/*
 * Registers the log's zone beside the main zone; called at configuration
 * time when both milvuso_zone and milvuso_action_log are given.
 */
ngx_int_t
ngx_milvuso_log_zone_add(ngx_conf_t *cf, ngx_milvuso_main_conf_t *mcf)
{
    ngx_str_t               name;
    ngx_milvuso_log_ctx_t  *ctx;

    name.len = mcf->zone_name.len + sizeof("_log") - 1;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "%V_log", &mcf->zone_name);

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_milvuso_log_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    mcf->log_zone = ngx_shared_memory_add(cf, &name,
                                          NGX_MILVUSO_LOG_ZONE_SIZE,
                                          &ngx_http_milvuso_module);
    if (mcf->log_zone == NULL) {
        return NGX_ERROR;
    }

    if (mcf->log_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_ERROR;
    }

    mcf->log_zone->init = ngx_milvuso_log_zone_init;
    mcf->log_zone->data = ctx;

    return NGX_OK;
}


ngx_int_t
ngx_milvuso_log_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_milvuso_log_ctx_t  *octx = data;

    ngx_milvuso_log_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(ctx->shpool, sizeof(ngx_milvuso_log_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    return NGX_OK;
}


/*
 * Appends under the log's lock; MV_OK with *pos, or MV_ERR with err.  Runs
 * in the event loop (sync=off) or in a thread of the pool (sync=on): the
 * per-process writer is only ever touched under the lock, which serialises
 * the pool's threads as it serialises the workers.
 */
static int
ngx_milvuso_log_append_locked(ngx_milvuso_log_ctx_t *lctx, uint16_t type,
    const char *payload, size_t len, mv_actlog_pos_t *pos, mv_err_t *err)
{
    int  rc;

    if (ngx_milvuso_proc.log == NULL) {
        ngx_cpystrn((u_char *) err->msg, (u_char *) "the writer could not "
                    "be set up at start (see the error log)",
                    sizeof(err->msg));
        return MV_ERR;
    }

    ngx_shmtx_lock(&lctx->shpool->mutex);
    rc = mv_actlog_append(ngx_milvuso_proc.log, &lctx->sh->seq, type,
                          payload, len, pos, err);
    ngx_shmtx_unlock(&lctx->shpool->mutex);

    return rc;
}


/*
 * Counts an append's outcome and logs a failure (rate-limited); in the
 * event loop.  Returns NGX_OK or NGX_ERROR.
 */
static ngx_int_t
ngx_milvuso_log_outcome(ngx_http_request_t *r, int rc, const mv_err_t *err)
{
    ngx_milvuso_zone_ctx_t   *z;
    ngx_milvuso_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    z = mcf->shm_zone->data;

    if (rc != MV_OK) {
        (void) ngx_atomic_fetch_add(&z->sh->log_errors, 1);

        if (ngx_time() != ngx_milvuso_log_error_logged) {
            ngx_milvuso_log_error_logged = ngx_time();
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "milvuso: action log \"%V\": %s",
                          &mcf->log_dir, err->msg);
        }

        return NGX_ERROR;
    }

    (void) ngx_atomic_fetch_add(&z->sh->log_records, 1);

    return NGX_OK;
}


#if (NGX_THREADS)

/* In a thread of the pool: the append, fdatasync included. */
static void
ngx_milvuso_log_thread(void *data, ngx_log_t *log)
{
    ngx_milvuso_log_task_t  *t = data;

    t->rc = ngx_milvuso_log_append_locked(t->lctx, t->type, t->payload,
                                          t->len, &t->pos, &t->err);
}


/* Back in the event loop once the thread is done (nginx's own pattern for
   thread tasks of a request: unblock, then the request's write handler). */
static void
ngx_milvuso_log_thread_done(ngx_event_t *ev)
{
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_milvuso_log_task_t  *t;

    t = ev->data;
    r = t->r;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;
    t->completed = 1;

    r->write_event_handler(r);
    ngx_http_run_posted_requests(c);
}


/* The request's write handler while an append runs: acts once it is done
   (a write event before that is ignored); replaced by nginx's finalizer if
   the request was terminated meanwhile. */
static void
ngx_milvuso_log_resume(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_milvuso_req_ctx_t   *ctx;
    ngx_milvuso_log_task_t  *t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    t = ctx ? ctx->log_task : NULL;

    if (t == NULL || !t->completed) {
        return;
    }

    ctx->log_task = NULL;
    r->write_event_handler = ngx_http_request_empty_handler;

    rc = ngx_milvuso_log_outcome(r, t->rc, &t->err);

    t->done(r, rc, rc == NGX_OK ? mv_actlog_pos_pack(t->pos) : 0);
}

#endif


/*
 * Writes a record to the action log, then calls done(r, rc, pos) in the
 * event loop: rc NGX_OK with the packed position (0 when no log is
 * configured), or NGX_ERROR (logged, counted).  With sync=on the append and
 * its fdatasync run in a thread of the pool and this returns NGX_AGAIN at
 * once, the request blocked until done has run, so the worker's event loop
 * (and every GET it serves) never waits for the disk; otherwise, and when
 * the pool's queue is full, the append is made here and done is called
 * before this returns NGX_OK.  NGX_ERROR: out of memory, done not called.
 */
ngx_int_t
ngx_milvuso_log_write(ngx_http_request_t *r, uint16_t type,
    const char *payload, size_t len, ngx_milvuso_log_done_pt done)
{
    int                       rc;
    mv_err_t                  err;
    mv_actlog_pos_t           pos;
    ngx_milvuso_main_conf_t  *mcf;
#if (NGX_THREADS)
    ngx_thread_task_t        *task;
    ngx_milvuso_req_ctx_t    *ctx;
    ngx_milvuso_log_task_t   *t;
#endif

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);

    if (mcf->log_dir.len == 0) {
        done(r, NGX_OK, 0);
        return NGX_OK;
    }

#if (NGX_THREADS)

    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);

    if (mcf->log_sync && mcf->log_pool != NULL && ctx != NULL) {

        task = ngx_thread_task_alloc(r->pool, sizeof(ngx_milvuso_log_task_t));
        if (task == NULL) {
            return NGX_ERROR;
        }

        t = task->ctx;
        t->r = r;
        t->lctx = mcf->log_zone->data;
        t->type = type;
        t->payload = payload;
        t->len = len;
        t->done = done;

        task->handler = ngx_milvuso_log_thread;
        task->event.handler = ngx_milvuso_log_thread_done;
        task->event.data = t;

        if (ngx_thread_task_post(mcf->log_pool, task) == NGX_OK) {
            ctx->log_task = t;
            r->main->blocked++;
            r->aio = 1;
            r->write_event_handler = ngx_milvuso_log_resume;
            return NGX_AGAIN;
        }

        /* the queue is full (logged by nginx): append here instead */
    }

#endif

    rc = ngx_milvuso_log_append_locked(mcf->log_zone->data, type, payload,
                                       len, &pos, &err);
    rc = ngx_milvuso_log_outcome(r, rc, &err);

    done(r, rc, rc == NGX_OK ? mv_actlog_pos_pack(pos) : 0);

    return NGX_OK;
}
