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
 * Appends a record to the action log under the log's own lock.  NGX_OK
 * (pos set, 0 when no log is configured), or NGX_ERROR (logged,
 * rate-limited, counted in log_errors).
 */
ngx_int_t
ngx_milvuso_log_append(ngx_http_request_t *r, uint16_t type,
    const char *payload, size_t len, uint64_t *pos)
{
    int                       rc;
    mv_err_t                  err;
    mv_actlog_pos_t           p;
    ngx_milvuso_log_ctx_t    *lctx;
    ngx_milvuso_zone_ctx_t   *z;
    ngx_milvuso_main_conf_t  *mcf;

    *pos = 0;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_milvuso_module);

    if (mcf->log_dir.len == 0) {
        return NGX_OK;
    }

    z = mcf->shm_zone->data;
    lctx = mcf->log_zone->data;

    if (ngx_milvuso_proc.log == NULL) {
        ngx_cpystrn((u_char *) err.msg, (u_char *) "the writer could not "
                    "be set up at start (see the error log)",
                    sizeof(err.msg));
        rc = MV_ERR;

    } else {
        ngx_shmtx_lock(&lctx->shpool->mutex);
        rc = mv_actlog_append(ngx_milvuso_proc.log, &lctx->sh->seq, type,
                              payload, len, &p, &err);
        ngx_shmtx_unlock(&lctx->shpool->mutex);
    }

    if (rc != MV_OK) {
        (void) ngx_atomic_fetch_add(&z->sh->log_errors, 1);

        if (ngx_time() != ngx_milvuso_log_error_logged) {
            ngx_milvuso_log_error_logged = ngx_time();
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "milvuso: action log \"%V\": %s",
                          &mcf->log_dir, err.msg);
        }

        return NGX_ERROR;
    }

    (void) ngx_atomic_fetch_add(&z->sh->log_records, 1);
    *pos = mv_actlog_pos_pack(p);

    return NGX_OK;
}
