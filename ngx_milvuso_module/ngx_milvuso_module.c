/*
 * ngx_milvuso_module.c -- the module's definition: directives and their
 * validation, configuration merge, the zone's registration, process init
 * and exit, and the $milvuso_* variables.
 *
 * Everything a directive can get wrong is refused here, at `nginx -t`; no
 * directive touches the snapshot or the log directory at configuration time
 * (the snapshot may be large, and `nginx -t` must stay fast).  The snapshot
 * is mapped in init_process, per worker (ngx_milvuso_snapshot.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>

#include "ngx_milvuso.h"


typedef ngx_int_t (*ngx_milvuso_handler_pt)(ngx_http_request_t *r);


static void *ngx_milvuso_create_main_conf(ngx_conf_t *cf);
static char *ngx_milvuso_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_milvuso_create_loc_conf(ngx_conf_t *cf);
static char *ngx_milvuso_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_milvuso_preconfiguration(ngx_conf_t *cf);

static ngx_uint_t ngx_milvuso_zone_resized(ngx_conf_t *cf, ngx_str_t *name,
    size_t size);
static char *ngx_milvuso_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_milvuso_snapshot_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_milvuso_profile_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_milvuso_action_weights_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_milvuso_handler_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_milvuso_check_search_limit(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_milvuso_check_dim(ngx_conf_t *cf, void *post, void *data);
static char *ngx_milvuso_check_fresh_max(ngx_conf_t *cf, void *post,
    void *data);

static ngx_int_t ngx_milvuso_init_process(ngx_cycle_t *cycle);
static void ngx_milvuso_exit_process(ngx_cycle_t *cycle);

static ngx_int_t ngx_milvuso_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_conf_post_handler_pt  ngx_milvuso_search_limit_post =
    ngx_milvuso_check_search_limit;
static ngx_conf_post_handler_pt  ngx_milvuso_dim_post = ngx_milvuso_check_dim;
static ngx_conf_post_handler_pt  ngx_milvuso_fresh_max_post =
    ngx_milvuso_check_fresh_max;


static ngx_command_t  ngx_milvuso_commands[] = {

    { ngx_string("milvuso_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_milvuso_zone_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("milvuso_snapshot"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE123,
      ngx_milvuso_snapshot_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("milvuso_action_log"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE123,
      ngx_milvuso_action_log_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("milvuso_kafka"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_milvuso_kafka_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("milvuso_dim"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_milvuso_main_conf_t, dim),
      &ngx_milvuso_dim_post },

    { ngx_string("milvuso_profile"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_milvuso_profile_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("milvuso_action_weights"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_milvuso_action_weights_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("milvuso_fresh_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_milvuso_main_conf_t, fresh_max),
      &ngx_milvuso_fresh_max_post },

    { ngx_string("milvuso_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_milvuso_loc_conf_t, cache_ttl),
      NULL },

    { ngx_string("milvuso_max_k"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_milvuso_loc_conf_t, max_k),
      &ngx_milvuso_search_limit_post },

    { ngx_string("milvuso_ef"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_milvuso_loc_conf_t, ef),
      &ngx_milvuso_search_limit_post },

    { ngx_string("milvuso_body_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_milvuso_loc_conf_t, body_max),
      NULL },

    { ngx_string("milvuso_actions"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_milvuso_handler_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_milvuso_actions_handler },

    { ngx_string("milvuso_items"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_milvuso_handler_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_milvuso_items_handler },

    { ngx_string("milvuso_recommend"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_milvuso_handler_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_milvuso_recommend_handler },

    { ngx_string("milvuso_similar"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_milvuso_handler_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_milvuso_similar_handler },

    { ngx_string("milvuso_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_milvuso_handler_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_milvuso_health_handler },

    { ngx_string("milvuso_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_milvuso_handler_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_milvuso_metrics_handler },

      ngx_null_command
};


static ngx_http_module_t  ngx_milvuso_module_ctx = {
    ngx_milvuso_preconfiguration,          /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_milvuso_create_main_conf,          /* create main configuration */
    ngx_milvuso_init_main_conf,            /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_milvuso_create_loc_conf,           /* create location configuration */
    ngx_milvuso_merge_loc_conf             /* merge location configuration */
};


ngx_module_t  ngx_http_milvuso_module = {
    NGX_MODULE_V1,
    &ngx_milvuso_module_ctx,               /* module context */
    ngx_milvuso_commands,                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_milvuso_init_process,              /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_milvuso_exit_process,              /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_milvuso_proc_t  ngx_milvuso_proc;

/* Whether any location uses a handler: then milvuso_zone is required. */
static ngx_uint_t  ngx_milvuso_handlers_used;


static ngx_http_variable_t  ngx_milvuso_vars[] = {

    { ngx_string("milvuso_source"), NULL, ngx_milvuso_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("milvuso_generation"), NULL, ngx_milvuso_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("milvuso_candidates"), NULL, ngx_milvuso_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static const char  *ngx_milvuso_source_names[] = {
    "", "cache", "index", "profile", "popular"
};

/* default weight of each action type, in mv_action_type_t order */
static const float  ngx_milvuso_default_weights[MV_ACTION_TYPES] = {
    1.0f, 2.0f, 3.0f, 3.0f, 4.0f, 5.0f, -2.0f
};


static void *
ngx_milvuso_create_main_conf(ngx_conf_t *cf)
{
    ngx_uint_t                i;
    ngx_milvuso_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_milvuso_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->shm_zone = NULL;
     *     mcf->snapshot_path = { 0, NULL };
     *     mcf->log_dir = { 0, NULL };
     */

    mcf->snapshot_check = NGX_CONF_UNSET_MSEC;
    mcf->snapshot_behind = NGX_CONF_UNSET_MSEC;
    mcf->log_segment = NGX_CONF_UNSET;
    mcf->log_sync = NGX_CONF_UNSET;
    mcf->dim = NGX_CONF_UNSET_UINT;
    mcf->profile_size = NGX_CONF_UNSET_UINT;
    mcf->profile_half_life = NGX_CONF_UNSET_MSEC;
    mcf->profile_weight = -1.0f;
    mcf->fresh_max = NGX_CONF_UNSET_UINT;
    mcf->kafka_ack = NGX_CONF_UNSET;
    mcf->kafka_timeout = NGX_CONF_UNSET_MSEC;

    for (i = 0; i < MV_ACTION_TYPES; i++) {
        mcf->action_weights[i] = NAN;
    }

    return mcf;
}


static char *
ngx_milvuso_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_milvuso_main_conf_t *mcf = conf;

    ngx_uint_t               i;
    ngx_milvuso_zone_ctx_t  *zctx;

    ngx_conf_init_msec_value(mcf->snapshot_check, 0);
    ngx_conf_init_msec_value(mcf->snapshot_behind, 30000);
    ngx_conf_init_value(mcf->log_segment, (off_t) MV_ACTLOG_SEGMENT_DEFAULT);
    ngx_conf_init_value(mcf->log_sync, 0);
    ngx_conf_init_uint_value(mcf->dim, 0);
    ngx_conf_init_uint_value(mcf->profile_size, 32);
    ngx_conf_init_msec_value(mcf->profile_half_life, 3600 * 1000);
    ngx_conf_init_uint_value(mcf->fresh_max, 10000);

    if (mcf->profile_weight < 0.0f) {
        mcf->profile_weight = 0.5f;
    }

    for (i = 0; i < MV_ACTION_TYPES; i++) {
        if (isnan(mcf->action_weights[i])) {
            mcf->action_weights[i] = ngx_milvuso_default_weights[i];
        }
    }

    if (mcf->shm_zone) {
        zctx = mcf->shm_zone->data;
        zctx->profile_size = mcf->profile_size;
        zctx->fresh_max = mcf->fresh_max;
    }

    if (mcf->shm_zone && mcf->log_dir.len
        && ngx_milvuso_log_zone_add(cf, mcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_milvuso_handlers_used && mcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "milvuso handlers are used but no "
                           "\"milvuso_zone\" is defined in the http block");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_milvuso_create_loc_conf(ngx_conf_t *cf)
{
    ngx_milvuso_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_milvuso_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    lcf->cache_ttl = NGX_CONF_UNSET_MSEC;
    lcf->max_k = NGX_CONF_UNSET_UINT;
    lcf->ef = NGX_CONF_UNSET_UINT;
    lcf->body_max = NGX_CONF_UNSET_SIZE;

    return lcf;
}


static char *
ngx_milvuso_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_milvuso_loc_conf_t *prev = parent;
    ngx_milvuso_loc_conf_t *conf = child;

    ngx_conf_merge_msec_value(conf->cache_ttl, prev->cache_ttl, 30000);
    ngx_conf_merge_uint_value(conf->max_k, prev->max_k, 100);
    ngx_conf_merge_uint_value(conf->ef, prev->ef, 32);
    ngx_conf_merge_size_value(conf->body_max, prev->body_max, 64 * 1024);

    if (conf->body_max == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"milvuso_body_max\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_milvuso_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    ngx_milvuso_handlers_used = 0;

    for (v = ngx_milvuso_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * nginx quietly replaces a shared zone whose size changed on reload, which
 * would drop every profile and fresh item.  Refuse it instead: the operator
 * restarts when they mean it.
 */
static ngx_uint_t
ngx_milvuso_zone_resized(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *zone;

    if (cf->cycle->old_cycle == NULL
        || cf->cycle->old_cycle->shared_memory.part.elts == NULL)
    {
        return 0;
    }

    part = &cf->cycle->old_cycle->shared_memory.part;
    zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            zone = part->elts;
            i = 0;
        }

        if (zone[i].tag != &ngx_http_milvuso_module
            || zone[i].shm.name.len != name->len
            || ngx_strncmp(zone[i].shm.name.data, name->data, name->len) != 0)
        {
            continue;
        }

        if (zone[i].shm.size != size) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "milvuso_zone \"%V\" has size %uz, the new "
                               "configuration asks for %uz; changing it needs "
                               "a restart, not a reload",
                               name, zone[i].shm.size, size);
            return 1;
        }
    }

    return 0;
}


static char *
ngx_milvuso_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_milvuso_main_conf_t *mcf = conf;

    u_char                  *p;
    ssize_t                  size;
    ngx_str_t               *value, name, s;
    ngx_milvuso_zone_ctx_t  *ctx;

    if (mcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');
    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected name:size",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);
    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < NGX_MILVUSO_ZONE_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small, at least %uzk needed",
                           &value[1], (size_t) NGX_MILVUSO_ZONE_MIN / 1024);
        return NGX_CONF_ERROR;
    }

    if (ngx_milvuso_zone_resized(cf, &name, size)) {
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_milvuso_zone_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    mcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                          &ngx_http_milvuso_module);
    if (mcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (mcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    mcf->zone_name = name;
    mcf->shm_zone->init = ngx_milvuso_zone_init;
    mcf->shm_zone->data = ctx;

    return NGX_CONF_OK;
}


static char *
ngx_milvuso_snapshot_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_milvuso_main_conf_t *mcf = conf;

    ngx_str_t   *value, s;
    ngx_msec_t   check, behind;
    ngx_uint_t   i;

    if (mcf->snapshot_path.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty path";
    }

    mcf->snapshot_path = value[1];

    if (ngx_conf_full_name(cf->cycle, &mcf->snapshot_path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "check=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            check = ngx_parse_time(&s, 0);
            if (check == (ngx_msec_t) NGX_ERROR || s.len == 0) {
                goto invalid;
            }

            if (check != 0 && check < 100) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"check=\" must be 0 or at least 100ms "
                                   "in \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            mcf->snapshot_check = check;
            continue;
        }

        if (ngx_strncmp(value[i].data, "behind=", 7) == 0) {
            if (mcf->snapshot_behind != NGX_CONF_UNSET_MSEC) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"behind=\" is duplicate in \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            behind = ngx_parse_time(&s, 0);
            if (behind == (ngx_msec_t) NGX_ERROR || s.len == 0) {
                goto invalid;
            }

            if (behind < 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"behind=\" must be at least 1s "
                                   "in \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            mcf->snapshot_behind = behind;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/* Parses a non-negative decimal number ("0.5", "3", "-2" when signed). */
static ngx_int_t
ngx_milvuso_parse_float(ngx_str_t *s, ngx_uint_t allow_negative, float *out)
{
    u_char  *p, *last;
    double   v, frac;
    ngx_int_t  neg, digits;

    p = s->data;
    last = s->data + s->len;
    neg = 0;
    digits = 0;
    v = 0;

    if (p < last && (*p == '-' || *p == '+')) {
        if (*p == '-') {
            if (!allow_negative) {
                return NGX_ERROR;
            }
            neg = 1;
        }
        p++;
    }

    while (p < last && *p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        digits++;
        if (v > 1e6) {
            return NGX_ERROR;
        }
    }

    if (p < last && *p == '.') {
        p++;
        frac = 0.1;
        while (p < last && *p >= '0' && *p <= '9') {
            v += (*p++ - '0') * frac;
            frac /= 10;
            digits++;
        }
    }

    if (p != last || digits == 0) {
        return NGX_ERROR;
    }

    *out = (float) (neg ? -v : v);

    return NGX_OK;
}


static char *
ngx_milvuso_profile_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_milvuso_main_conf_t *mcf = conf;

    float        w;
    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_msec_t   t;
    ngx_uint_t   i;

    if (mcf->profile_size != NGX_CONF_UNSET_UINT
        || mcf->profile_half_life != NGX_CONF_UNSET_MSEC
        || mcf->profile_weight >= 0.0f)
    {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);
            if (n == NGX_ERROR || n < 1 || n > 1024) {
                goto invalid;
            }
            mcf->profile_size = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "half_life=", 10) == 0) {
            s.data = value[i].data + 10;
            s.len = value[i].len - 10;
            t = ngx_parse_time(&s, 0);
            if (t == (ngx_msec_t) NGX_ERROR || s.len == 0) {
                goto invalid;
            }
            mcf->profile_half_life = t;
            continue;
        }

        if (ngx_strncmp(value[i].data, "weight=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;
            if (ngx_milvuso_parse_float(&s, 0, &w) != NGX_OK || w > 1.0f) {
                goto invalid;
            }
            mcf->profile_weight = w;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


static char *
ngx_milvuso_action_weights_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_milvuso_main_conf_t *mcf = conf;

    int          type;
    float        w;
    u_char      *eq;
    ngx_str_t   *value, s;
    ngx_uint_t   i, j;

    for (j = 0; j < MV_ACTION_TYPES; j++) {
        if (!isnan(mcf->action_weights[j])) {
            return "is duplicate";
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        eq = (u_char *) ngx_strchr(value[i].data, '=');
        if (eq == NULL) {
            goto invalid;
        }

        type = mv_action_type_from_name((const char *) value[i].data,
                                        eq - value[i].data);
        if (type < 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown action type in \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        s.data = eq + 1;
        s.len = value[i].data + value[i].len - s.data;

        if (ngx_milvuso_parse_float(&s, 1, &w) != NGX_OK) {
            goto invalid;
        }

        if (!isnan(mcf->action_weights[type])) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "action type in \"%V\" is given twice",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        mcf->action_weights[type] = w;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


static char *
ngx_milvuso_handler_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate (the location already has a handler)";
    }

    clcf->handler = (ngx_milvuso_handler_pt) cmd->post;
    ngx_milvuso_handlers_used = 1;

    return NGX_CONF_OK;
}


/*
 * milvuso_max_k and milvuso_ef: 1 .. MV_SEARCH_K_MAX, the largest k or beam
 * a search takes (the per-process search scratch is sized for it).
 */
static char *
ngx_milvuso_check_search_limit(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *np = data;

    if (*np < 1 || *np > MV_SEARCH_K_MAX) {
        return "must be between 1 and "
               NGX_MILVUSO_STRINGIFY(MV_SEARCH_K_MAX);
    }

    return NGX_CONF_OK;
}


static char *
ngx_milvuso_check_dim(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *np = data;

    if (*np < 1 || *np > MV_DIM_MAX) {
        return "must be between 1 and " NGX_MILVUSO_STRINGIFY(MV_DIM_MAX);
    }

    return NGX_CONF_OK;
}


static char *
ngx_milvuso_check_fresh_max(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *np = data;

    if (*np > 1000000) {
        return "must be at most 1000000";
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_milvuso_init_process(ngx_cycle_t *cycle)
{
    mv_err_t                  err;
    ngx_milvuso_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_milvuso_module);
    if (mcf == NULL || mcf->shm_zone == NULL) {
        return NGX_OK;
    }

    /* a failure below is logged and served as "degraded" (or 503 for
       the writes), never fatal: a worker that fails init_process exits
       and is not respawned */

    ngx_memzero(&ngx_milvuso_proc, sizeof(ngx_milvuso_proc_t));

    if (mcf->log_dir.len) {
        ngx_milvuso_proc.log = mv_actlog_writer_new(
                                   (char *) mcf->log_dir.data,
                                   (uint64_t) mcf->log_segment,
                                   (int) mcf->log_sync, &err);
        if (ngx_milvuso_proc.log == NULL) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                          "milvuso: action log \"%V\" unusable: %s; "
                          "POST /actions and /items answer 503",
                          &mcf->log_dir, err.msg);
        }
    }

    if (mcf->kafka_brokers.len) {
        (void) ngx_milvuso_kafka_init_process(cycle, mcf);
    }

    (void) ngx_milvuso_snapshot_init_process(cycle, mcf);

    return NGX_OK;
}


static void
ngx_milvuso_exit_process(ngx_cycle_t *cycle)
{
    ngx_milvuso_snapshot_exit_process();
    ngx_milvuso_kafka_exit_process();

    mv_actlog_writer_free(ngx_milvuso_proc.log);
    ngx_milvuso_proc.log = NULL;
}


static ngx_int_t
ngx_milvuso_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                 *p;
    const char             *name;
    ngx_milvuso_req_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_milvuso_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case 0:
        if (ctx->source == NGX_MILVUSO_SRC_NONE) {
            v->not_found = 1;
            return NGX_OK;
        }
        name = ngx_milvuso_source_names[ctx->source];
        v->data = (u_char *) name;
        v->len = ngx_strlen(name);
        break;

    case 1:
        if (!ctx->has_generation) {
            v->not_found = 1;
            return NGX_OK;
        }
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }
        v->data = p;
        v->len = ngx_sprintf(p, "%uL", ctx->generation) - p;
        break;

    default:
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }
        v->data = p;
        v->len = ngx_sprintf(p, "%ui", ctx->candidates) - p;
        break;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
