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
 * is held.  So the append then runs in a thread of an nginx thread pool
 * ("default", or the directive's thread_pool=NAME), and the request,
 * blocked meanwhile as nginx's own thread tasks block theirs, is answered
 * from the event loop when the record is on disk: 202 still means durable.
 * The event is applied to the zone when the record is known written, in
 * the event loop, also for a request terminated meanwhile.  Appends of the pool's
 * threads serialise on the same lock as the workers' (each thread is the
 * worker as far as the lock goes), so records keep whole.
 *
 * Disk use (/health, /metrics).  The log's bytes and segment count are
 * cached in the main zone and refreshed at most once a second: the first
 * request to find them a second old claims the refresh under the zone's
 * mutex, lists the directory outside it (shared/actlog_trim.c's
 * mv_actlog_usage: one readdir and one fstatat per segment, so the time
 * the event loop spends is bounded by the number of segments, which
 * retention keeps small) and stores the figures.  In the zone rather than
 * per process: every worker answers the same figures (a scrape that lands
 * on another worker sees no jump), and the directory is listed at most
 * once a second whatever the number of workers and scrapers.  A claim
 * expires after a second, so a worker that dies in the middle of a
 * refresh does not stop the next one.  Nothing lists the directory when
 * nobody asks.  Segments are removed by the trainer, never by nginx
 * (actlog.h, "Retention").
 *
 * Beside milvuso_kafka the log is Kafka's fallback (ngx_milvuso_kafka.c):
 * a request's record Kafka did not take comes through
 * ngx_milvuso_log_write like any other (counted as spooled through the
 * request's ctx->spooled), and a record no request waits for any more (an
 * ack=off delivery report that failed after the 202) through
 * ngx_milvuso_log_spool, which copies the payload into a task of its own
 * pool for the thread pool when sync=on.  The drain (milvuso-worker
 * --worker-type drain) is then the log's consumer and trims it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_milvuso.h"


#define NGX_MILVUSO_LOG_ZONE_SIZE   (8 * ngx_pagesize)

/* How long an append in a thread may take before it is logged (the timer
   that also keeps a shutting-down worker waiting for it). */
#define NGX_MILVUSO_LOG_TASK_TIMEOUT  60000


/* The cached disk use is refreshed when it is this old. */
#define NGX_MILVUSO_LOG_DISK_MS       1000


/* per process: when the last log-write error was logged (rate limit) */
static time_t  ngx_milvuso_log_error_logged;

/* per process: when the last disk-use error was logged (rate limit) */
static time_t  ngx_milvuso_log_disk_error_logged;


/*
 * milvuso_action_log dir [segment=size] [sync=on|off] [thread_pool=name]:
 * checked whole at configuration time (nginx -t).
 */
char *
ngx_milvuso_action_log_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_milvuso_main_conf_t *mcf = conf;

    off_t        seg;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (mcf->log_dir.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty path";
    }

    mcf->log_dir = value[1];

    if (ngx_conf_full_name(cf->cycle, &mcf->log_dir, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "segment=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            seg = ngx_parse_offset(&s);
            if (seg == NGX_ERROR || seg < 4096
                || (uint64_t) seg > MV_ACTLOG_SEGMENT_MAX)
            {
                goto invalid;
            }

            mcf->log_segment = seg;
            continue;
        }

        if (ngx_strcmp(value[i].data, "sync=on") == 0) {
            mcf->log_sync = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "sync=off") == 0) {
            mcf->log_sync = 0;
            continue;
        }

#if (NGX_THREADS)
        if (ngx_strncmp(value[i].data, "thread_pool=", 12) == 0) {
            mcf->log_pool_name.data = value[i].data + 12;
            mcf->log_pool_name.len = value[i].len - 12;

            if (mcf->log_pool_name.len == 0) {
                goto invalid;
            }
            continue;
        }
#endif

        goto invalid;
    }

#if (NGX_THREADS)
    /* sync=on: appends and their fdatasync run in a thread pool ("default"
       or thread_pool=NAME, declared with nginx's `thread_pool` directive or
       created with its defaults), never in the event loop */
    if (mcf->log_pool_name.len && mcf->log_sync != 1) {
        return "uses thread_pool= with sync=on only";
    }

    if (mcf->log_sync == 1) {
        mcf->log_pool = ngx_thread_pool_add(cf, mcf->log_pool_name.len
                                                ? &mcf->log_pool_name : NULL);
        if (mcf->log_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }
#endif

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


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
 * Counts an append's outcome (spooled: a record Kafka did not take) and
 * logs a failure (rate-limited); in the event loop.  Returns NGX_OK or
 * NGX_ERROR.
 */
static ngx_int_t
ngx_milvuso_log_count(ngx_log_t *log, ngx_milvuso_main_conf_t *mcf, int rc,
    const mv_err_t *err, ngx_uint_t spooled)
{
    ngx_milvuso_zone_ctx_t  *z = mcf->shm_zone->data;

    if (rc != MV_OK) {
        (void) ngx_atomic_fetch_add(&z->sh->log_errors, 1);

        if (ngx_time() != ngx_milvuso_log_error_logged) {
            ngx_milvuso_log_error_logged = ngx_time();
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "milvuso: action log \"%V\": %s%s",
                          &mcf->log_dir, err->msg,
                          spooled ? " (a record Kafka did not take)" : "");
        }

        return NGX_ERROR;
    }

    (void) ngx_atomic_fetch_add(&z->sh->log_records, 1);

    if (spooled) {
        (void) ngx_atomic_fetch_add(&z->sh->kafka_spooled, 1);
    }

    return NGX_OK;
}


/* A request's append counted (ngx_milvuso_log_count). */
static ngx_int_t
ngx_milvuso_log_outcome(ngx_http_request_t *r, int rc, const mv_err_t *err)
{
    ngx_milvuso_req_ctx_t    *ctx;
    ngx_milvuso_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);

    return ngx_milvuso_log_count(r->connection->log, mcf, rc, err,
                                 ctx != NULL && ctx->spooled);
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


/*
 * Back in the event loop once the thread is done (nginx's own pattern for a
 * request's thread task: unblock, then the request's write handler).  The
 * record is durable by now, so it is counted and applied to the zone here,
 * whatever became of the request; answering is the write handler's part,
 * which a terminated request has replaced with nginx's finalizer.
 *
 * The event's timer is not cancelable: a worker that is shutting down
 * (quit, reload) waits for it instead of exiting with the request blocked
 * (nginx 1.25.4 does the same for its own thread tasks).  It only rings if
 * an append takes longer than NGX_MILVUSO_LOG_TASK_TIMEOUT; then it is
 * logged and set again, since the thread cannot be interrupted.
 */
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

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "milvuso: an action-log append is taking more than "
                      "%M ms", (ngx_msec_t) NGX_MILVUSO_LOG_TASK_TIMEOUT);
        ev->timedout = 0;
        ngx_add_timer(ev, NGX_MILVUSO_LOG_TASK_TIMEOUT);
        return;
    }

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    r->main->blocked--;
    r->aio = 0;

    t->outcome = ngx_milvuso_log_outcome(r, t->rc, &t->err);
    if (t->outcome == NGX_OK) {
        t->apply(r, mv_actlog_pos_pack(t->pos));
    }
    t->completed = 1;

    r->write_event_handler(r);
    ngx_http_run_posted_requests(c);
}


/* The request's write handler while an append runs: answers once it is
   done (a write event before that is ignored). */
static void
ngx_milvuso_log_resume(ngx_http_request_t *r)
{
    ngx_milvuso_req_ctx_t   *ctx;
    ngx_milvuso_log_task_t  *t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);
    t = ctx ? ctx->log_task : NULL;

    if (t == NULL || !t->completed) {
        return;
    }

    ctx->log_task = NULL;
    r->write_event_handler = ngx_http_request_empty_handler;

    t->done(r, t->outcome,
            t->outcome == NGX_OK ? mv_actlog_pos_pack(t->pos) : 0);
}

#endif


/*
 * Writes a record to the action log; once it is there, apply(r, pos) runs
 * (pos: the packed position, 0 when no log is configured), then done(r,
 * NGX_OK, pos) answers; when it could not be written (logged, counted),
 * done(r, NGX_ERROR, 0) alone.  Both run in the event loop.  With sync=on
 * the append and its fdatasync run in a thread of the pool and this
 * returns NGX_AGAIN at once, the request blocked until then, so the
 * worker's event loop (and every GET it serves) never waits for the disk;
 * otherwise, and when the pool's queue is full, the append is made here and
 * both run before this returns NGX_OK.  NGX_ERROR: out of memory, nothing
 * written, neither called.
 */
ngx_int_t
ngx_milvuso_log_write(ngx_http_request_t *r, uint16_t type,
    const char *payload, size_t len, ngx_milvuso_log_apply_pt apply,
    ngx_milvuso_log_done_pt done)
{
    int                       rc;
    uint64_t                  packed;
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
        apply(r, 0);
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
        t->apply = apply;
        t->done = done;

        task->handler = ngx_milvuso_log_thread;
        task->event.handler = ngx_milvuso_log_thread_done;
        task->event.data = t;
        task->event.log = r->connection->log;

        if (ngx_thread_task_post(mcf->log_pool, task) == NGX_OK) {
            ngx_add_timer(&task->event, NGX_MILVUSO_LOG_TASK_TIMEOUT);
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
    if (ngx_milvuso_log_outcome(r, rc, &err) != NGX_OK) {
        done(r, NGX_ERROR, 0);
        return NGX_OK;
    }

    packed = mv_actlog_pos_pack(pos);
    apply(r, packed);
    done(r, NGX_OK, packed);

    return NGX_OK;
}


#if (NGX_THREADS)

/* A record spooled without a request (sync=on): its own pool holds it. */
typedef struct {
    ngx_pool_t               *pool;
    ngx_log_t                *log;
    ngx_milvuso_main_conf_t  *mcf;
    uint16_t                  type;
    u_char                   *payload;
    size_t                    len;
    int                       rc;
    mv_actlog_pos_t           pos;
    mv_err_t                  err;
} ngx_milvuso_spool_task_t;


/* In a thread of the pool. */
static void
ngx_milvuso_spool_thread(void *data, ngx_log_t *log)
{
    ngx_milvuso_spool_task_t  *t = data;

    t->rc = ngx_milvuso_log_append_locked(t->mcf->log_zone->data, t->type,
                                          (const char *) t->payload, t->len,
                                          &t->pos,
                                          &t->err);
}


/* Back in the event loop: counted, the pool freed. */
static void
ngx_milvuso_spool_done(ngx_event_t *ev)
{
    ngx_milvuso_spool_task_t  *t = ev->data;

    (void) ngx_milvuso_log_count(t->log, t->mcf, t->rc, &t->err, 1);
    ngx_destroy_pool(t->pool);
}

#endif


/*
 * Appends a record Kafka did not take and that no request waits for (its
 * delivery report failed after it was answered 202 with ack=off; or the
 * process is exiting) to the log, counted as spooled.  The payload is
 * copied.  With sync=on the append and its fdatasync run in a thread of
 * the pool, unless now is set (exit_process: the pool may be gone, and
 * the process waits for its flush anyway) or the pool's queue is full;
 * otherwise here.  Returns NGX_OK once appended or handed to the pool,
 * NGX_ERROR when it could not be (logged, counted: the record is lost).
 */
ngx_int_t
ngx_milvuso_log_spool(ngx_log_t *log, ngx_milvuso_main_conf_t *mcf,
    uint16_t type, const void *payload, size_t len, ngx_uint_t now)
{
    int                        rc;
    mv_err_t                   err;
    mv_actlog_pos_t            pos;
#if (NGX_THREADS)
    ngx_pool_t                *pool;
    ngx_thread_task_t         *task;
    ngx_milvuso_spool_task_t  *t;

    if (mcf->log_sync && mcf->log_pool != NULL && !now) {

        pool = ngx_create_pool(1024, log);
        if (pool == NULL) {
            return NGX_ERROR;
        }

        task = ngx_thread_task_alloc(pool, sizeof(ngx_milvuso_spool_task_t));
        if (task == NULL) {
            ngx_destroy_pool(pool);
            return NGX_ERROR;
        }

        t = task->ctx;
        t->pool = pool;
        t->log = log;
        t->mcf = mcf;
        t->type = type;
        t->len = len;
        t->payload = ngx_pnalloc(pool, len);
        if (t->payload == NULL) {
            ngx_destroy_pool(pool);
            return NGX_ERROR;
        }
        ngx_memcpy(t->payload, payload, len);

        task->handler = ngx_milvuso_spool_thread;
        task->event.handler = ngx_milvuso_spool_done;
        task->event.data = t;
        task->event.log = log;

        if (ngx_thread_task_post(mcf->log_pool, task) == NGX_OK) {
            return NGX_OK;
        }

        ngx_destroy_pool(pool);             /* the queue is full: here */
    }
#endif

    rc = ngx_milvuso_log_append_locked(mcf->log_zone->data, type, payload,
                                       len, &pos, &err);

    return ngx_milvuso_log_count(log, mcf, rc, &err, 1);
}


/*
 * The log's disk use into *bytes and *segments, as of at most
 * NGX_MILVUSO_LOG_DISK_MS ago (see the top); zeros without a log, or
 * before the first listing worked.  In the event loop; a failed listing is
 * logged (at most once a second per process) and the previous figures
 * stay.
 */
void
ngx_milvuso_log_disk_usage(ngx_http_request_t *r, uint64_t *bytes,
    uint64_t *segments)
{
    int64_t                   now;
    mv_err_t                  err;
    ngx_uint_t                mine;
    mv_actlog_usage_t         u;
    ngx_milvuso_zone_ctx_t   *z;
    ngx_milvuso_main_conf_t  *mcf;

    *bytes = 0;
    *segments = 0;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);
    if (mcf->log_dir.len == 0) {
        return;
    }

    z = mcf->shm_zone->data;
    now = mv_clock_monotonic_us() / 1000;
    mine = 0;

    ngx_shmtx_lock(&z->shpool->mutex);
    if (z->sh->log_disk_claimed_ms == 0
        || now - z->sh->log_disk_claimed_ms >= NGX_MILVUSO_LOG_DISK_MS)
    {
        z->sh->log_disk_claimed_ms = now;
        mine = 1;
    }
    ngx_shmtx_unlock(&z->shpool->mutex);

    if (mine) {
        /* log_dir comes from ngx_conf_full_name: NUL-terminated */
        if (mv_actlog_usage((const char *) mcf->log_dir.data, &u, &err)
            == MV_OK)
        {
            ngx_shmtx_lock(&z->shpool->mutex);
            z->sh->log_disk_bytes = u.bytes;
            z->sh->log_disk_segments = u.segments;
            ngx_shmtx_unlock(&z->shpool->mutex);

        } else if (ngx_time() != ngx_milvuso_log_disk_error_logged) {
            ngx_milvuso_log_disk_error_logged = ngx_time();
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "milvuso: action log \"%V\": disk use: %s",
                          &mcf->log_dir, err.msg);
        }
    }

    ngx_shmtx_lock(&z->shpool->mutex);
    *bytes = z->sh->log_disk_bytes;
    *segments = z->sh->log_disk_segments;
    ngx_shmtx_unlock(&z->shpool->mutex);
}
