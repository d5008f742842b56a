/*
 * ngx_milvuso.h -- what the files of ngx_http_milvuso_module share.
 *
 * The module is nginx glue around libmilvuso (shared/):
 *
 *   ngx_milvuso_module.c     directives, configuration, zone registration,
 *                            process init/exit (the action-log writer),
 *                            variables
 *   ngx_milvuso_zone.c       the shared zone: real-time user profiles, fresh
 *                            items, the L1 result cache, counters
 *   ngx_milvuso_snapshot.c   the per-process mapping of the snapshot, its
 *                            swap on reload and by polling (check=)
 *   ngx_milvuso_request.c    request plumbing: context, JSON answers and
 *                            errors, counters, method checks, bodies
 *   ngx_milvuso_handlers.c   POST /actions, POST /items, /health, /metrics
 *   ngx_milvuso_actlog.c     the action log: its directive, its lock (its
 *                            own small zone), appending to it (in a thread
 *                            pool with sync=on)
 *   ngx_milvuso_kafka.c      Kafka as the transport instead: its directive,
 *                            the per-process producer, delivery reports,
 *                            the log as its fallback (spooling)
 *   ngx_milvuso_search.c     the search both GETs share (HNSW + fresh items,
 *                            filters, merge, rendering) and GET /similar
 *   ngx_milvuso_recommend.c  GET /recommendations, step by step
 *
 * Calls go one way: module.c reaches every file; the handlers reach the
 * plumbing, the search, the snapshot and the zone; the snapshot reaches
 * the zone (dropping fresh items a new model includes); the zone reaches
 * no other file of the module.
 *
 * Data layers, as in nginx's limit_req: node structures overlaid on rbtree
 * nodes in shared memory, one ngx_milvuso_shctx_t at the start of the zone
 * (trees, queues, counters), and per-process state (the mapped snapshot,
 * search scratch, the action-log writer) in ngx_milvuso_proc.
 *
 * Locking: everything in the zone is guarded by the slab pool's mutex (the
 * master releases it when a worker dies holding it).  Critical sections copy
 * data in or out or score fresh items; the action log has its own lock (the
 * slab mutex of a second, tiny zone: ngx_milvuso_actlog.c); the only
 * snapshot reads under the lock are the id lookups that drop fresh items
 * after a swap.  Counters are atomics updated without the lock.
 */
#ifndef NGX_MILVUSO_H
#define NGX_MILVUSO_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "mv_common.h"     /* MV_DIM_MAX, MV_SEARCH_K_MAX, the clocks */
#include "ids.h"           /* MV_ID_MAX */
#include "actlog.h"
#include "events.h"
#include "hnsw.h"
#include "profile.h"
#include "snapshot.h"
#include "generation.h"
#include "vec.h"


/* "4096" from 4096: a limit's number in a fixed message */
#define NGX_MILVUSO_STRINGIFY(n)     NGX_MILVUSO_STRINGIFY_(n)
#define NGX_MILVUSO_STRINGIFY_(n)    #n

#define NGX_MILVUSO_KEY_MAX          200
#define NGX_MILVUSO_ACTION_PAYLOAD_MAX  512  /* an action's log payload */
#define NGX_MILVUSO_ZONE_MIN         (512 * 1024)
#define NGX_MILVUSO_LAYOUT_VERSION   7   /* 7: last_accept_ms;
                                              6: kafka_spooled; 5: the
                                              log's disk use; 4:
                                              Kafka counters; 3: log_seq
                                              moved to the log's zone,
                                              layout fields first */

/* endpoints, for counters */
#define NGX_MILVUSO_EP_ACTIONS       0
#define NGX_MILVUSO_EP_ITEMS         1
#define NGX_MILVUSO_EP_RECOMMEND     2
#define NGX_MILVUSO_EP_SIMILAR       3
#define NGX_MILVUSO_EP_HEALTH        4
#define NGX_MILVUSO_EP_METRICS       5
#define NGX_MILVUSO_EP_N             6

/* statuses counted per endpoint; anything else counts as "other" */
#define NGX_MILVUSO_ST_N             11

#define NGX_MILVUSO_LAT_BUCKETS      12

/* where an answer came from ($milvuso_source) */
#define NGX_MILVUSO_SRC_NONE         0
#define NGX_MILVUSO_SRC_CACHE        1
#define NGX_MILVUSO_SRC_INDEX        2
#define NGX_MILVUSO_SRC_PROFILE      3
#define NGX_MILVUSO_SRC_POPULAR      4


/* ---- shared memory -------------------------------------------------- */

/* The head every zone entry starts with: tree node, queue link, key. */
typedef struct {
    ngx_rbtree_node_t      node;       /* node.key = crc32 of key */
    ngx_queue_t            queue;      /* LRU (most recent at head) */
    u_short                key_len;
    u_char                 key[NGX_MILVUSO_KEY_MAX];
} ngx_milvuso_entry_t;

/* One action in a profile's ring. */
typedef struct {
    int64_t                time_ms;
    float                  weight;
    uint8_t                type;       /* mv_action_type_t */
    uint8_t                id_len;
    u_char                 id[MV_ID_MAX];
} ngx_milvuso_action_rec_t;

/* A user's real-time profile: the last `size` actions (key = user id). */
typedef struct {
    ngx_milvuso_entry_t    e;
    uint64_t               version;    /* bumped by every action */
    uint32_t               n;          /* actions held, <= size */
    uint32_t               head;       /* next slot to write */
    ngx_milvuso_action_rec_t  ring[];
} ngx_milvuso_profile_t;

/* An item posted since the snapshot (key = item id). */
typedef struct {
    ngx_milvuso_entry_t    e;
    int64_t                created_at_ms;
    int64_t                posted_ms;
    uint64_t               log_pos;    /* packed actlog position, 0 = none */
    float                  popularity;
    float                  norm;       /* |vec| */
    uint8_t                cat_len;
    u_char                 category[MV_ID_MAX];
    uint32_t               dim;
    float                  vec[];
} ngx_milvuso_fresh_t;

/* A cached recommendation list (key = user, k, filters, versions). */
typedef struct {
    ngx_milvuso_entry_t    e;
    int64_t                expires_ms;
    uint32_t               candidates;
    uint8_t                source;
    uint32_t               body_len;
    u_char                 body[];     /* the "recommendations" JSON array */
} ngx_milvuso_cache_t;

typedef struct {
    /* layout: a reload that changes one of these is refused (the zone's
       size is checked against the old cycle at configuration time).  They
       come first and keep their type in every layout version, so a module
       of another version can still read them and say what changed. */
    ngx_uint_t             layout_version;
    ngx_uint_t             profile_size;

    ngx_rbtree_t           profiles;
    ngx_rbtree_node_t      profiles_sentinel;
    ngx_queue_t            profiles_lru;
    ngx_rbtree_t           fresh;
    ngx_rbtree_node_t      fresh_sentinel;
    ngx_queue_t            fresh_age;       /* newest at head */
    ngx_rbtree_t           cache;
    ngx_rbtree_node_t      cache_sentinel;
    ngx_queue_t            cache_lru;

    ngx_uint_t             n_profiles;
    ngx_uint_t             n_fresh;
    ngx_uint_t             n_cache;
    uint64_t               fresh_version;   /* bumped by every change */
    uint64_t               version_seq;     /* profile versions */

    /* counters (atomics, no lock) */
    ngx_atomic_t           event_seq;
    ngx_atomic_t           requests[NGX_MILVUSO_EP_N][NGX_MILVUSO_ST_N + 1];
    ngx_atomic_t           latency[NGX_MILVUSO_EP_N][NGX_MILVUSO_LAT_BUCKETS];
    ngx_atomic_t           latency_sum_us[NGX_MILVUSO_EP_N];
    ngx_atomic_t           cache_hits;
    ngx_atomic_t           cache_misses;
    ngx_atomic_t           log_records;
    ngx_atomic_t           log_errors;
    ngx_atomic_t           evictions;
    ngx_atomic_t           sources[5];
    ngx_atomic_t           kafka_queued;
    ngx_atomic_t           kafka_delivered;
    ngx_atomic_t           kafka_failed;
    ngx_atomic_t           kafka_refused;
    ngx_atomic_t           kafka_spooled;   /* appended to the log instead */
    /* wall-clock ms of the newest action or item accepted into the stream
       (0: none since the zone was created); only ever raised
       (ngx_milvuso_note_accepted) */
    ngx_atomic_t           last_accept_ms;

    /* the action log's disk use, refreshed at most once a second (under
       the mutex; ngx_milvuso_log_disk_usage) */
    int64_t                log_disk_claimed_ms;   /* monotonic, 0: never */
    uint64_t               log_disk_bytes;
    uint64_t               log_disk_segments;
} ngx_milvuso_shctx_t;

/* The action log's zone (ngx_milvuso_actlog.c): its slab mutex is the
   log's lock, and it holds the segment every worker appends to. */
typedef struct {
    uint64_t               seq;             /* 0: not known yet */
} ngx_milvuso_log_sh_t;

typedef struct {
    ngx_milvuso_log_sh_t  *sh;
    ngx_slab_pool_t       *shpool;
} ngx_milvuso_log_ctx_t;

typedef struct {
    ngx_milvuso_shctx_t   *sh;
    ngx_slab_pool_t       *shpool;
    ngx_uint_t             profile_size;    /* from the configuration */
    ngx_uint_t             fresh_max;
} ngx_milvuso_zone_ctx_t;

/* One scored item of an answer, copied out of the zone or the snapshot. */
typedef struct {
    float                  score;
    uint8_t                id_len;
    uint8_t                cat_len;
    u_char                 id[MV_ID_MAX];
    u_char                 category[MV_ID_MAX];
} ngx_milvuso_hit_t;

/* What a category argument means to the snapshot. */
typedef enum {
    NGX_MILVUSO_CATEGORY_ANY = 0,      /* no category asked */
    NGX_MILVUSO_CATEGORY_KNOWN,        /* asked, in the snapshot's table */
    NGX_MILVUSO_CATEGORY_UNKNOWN       /* asked, unknown to the snapshot:
                                          nothing comes from the snapshot */
} ngx_milvuso_category_e;

typedef struct {
    const mv_snapshot_view_t  *view;
    ngx_milvuso_category_e     category;
    uint32_t                   category_index;   /* when KNOWN */
    const uint32_t            *excluded;     /* sorted snapshot indices */
    size_t                     n_excluded;
} ngx_milvuso_snap_filter_t;

typedef struct {
    const mv_snapshot_view_t  *view;
    ngx_str_t                  category;     /* empty: any */
    ngx_milvuso_action_rec_t  *excluded;
    ngx_uint_t                 n_excluded;
} ngx_milvuso_fresh_filter_t;


/* Asked about each fresh item a scan could return. */
typedef ngx_int_t (*ngx_milvuso_fresh_allow_pt)(void *data,
    const ngx_milvuso_fresh_t *f);


/* ---- configuration ------------------------------------------------------ */

typedef struct {
    ngx_shm_zone_t        *shm_zone;
    ngx_str_t              zone_name;

    ngx_str_t              snapshot_path;   /* empty: none */
    ngx_msec_t             snapshot_check;  /* 0: no polling */
    ngx_msec_t             snapshot_behind; /* behind=: the trainer is
                                               behind past this */

    ngx_str_t              log_dir;         /* empty: no log */
    ngx_shm_zone_t        *log_zone;        /* with log_dir */
    off_t                  log_segment;
    ngx_flag_t             log_sync;
#if (NGX_THREADS)
    ngx_str_t              log_pool_name;   /* thread_pool=, "" default */
    ngx_thread_pool_t     *log_pool;        /* sync=on: appends run here */
#endif

    ngx_str_t              kafka_brokers;   /* empty: no Kafka */
    ngx_str_t              kafka_topic;
    ngx_str_t              kafka_items_topic;
    ngx_flag_t             kafka_ack;
    ngx_msec_t             kafka_timeout;
    ngx_array_t           *kafka_props;     /* ngx_keyval_t, librdkafka's */

    ngx_uint_t             dim;             /* 0: the snapshot's */
    ngx_uint_t             profile_size;
    ngx_msec_t             profile_half_life;
    float                  profile_weight;
    float                  action_weights[MV_ACTION_TYPES];
    ngx_uint_t             fresh_max;
} ngx_milvuso_main_conf_t;

typedef struct {
    ngx_msec_t             cache_ttl;
    ngx_uint_t             max_k;
    ngx_uint_t             ef;
    size_t                 body_max;
} ngx_milvuso_loc_conf_t;


/* ---- per process ------------------------------------------------------ */

typedef struct {
    mv_generation_t           *gen;      /* NULL: none loaded */
    const mv_snapshot_view_t  *view;     /* its items segment */
    const mv_generation_info_t *info;
    mv_snapshot_identity_t     ident;    /* of the file `current` named */
    u_char                     error[256];  /* why the last attempt failed */
    ngx_uint_t                 failures;    /* attempts that failed */
    const mv_kernels_t        *kern;
    mv_hnsw_scratch_t         *scratch;
    mv_actlog_writer_t        *log;
    ngx_event_t                poll_ev;
} ngx_milvuso_proc_t;

/* Called in the event loop once a record is in the log (its packed
   position): applies the event to the zone.  Runs even when the request
   was terminated meanwhile (the record is durable). */
typedef void (*ngx_milvuso_log_apply_pt)(ngx_http_request_t *r,
    uint64_t pos);

/* Then, unless the request was terminated: answers it (rc NGX_OK, or
   NGX_ERROR when the record could not be written) and finalizes it. */
typedef void (*ngx_milvuso_log_done_pt)(ngx_http_request_t *r, ngx_int_t rc,
    uint64_t pos);

/* An append running in a thread of the pool (sync=on). */
typedef struct {
    ngx_http_request_t        *r;
    void                      *lctx;    /* ngx_milvuso_log_ctx_t */
    uint16_t                   type;
    const char                *payload; /* in r->pool */
    size_t                     len;
    ngx_milvuso_log_apply_pt   apply;
    ngx_milvuso_log_done_pt    done;
    ngx_uint_t                 completed;
    ngx_int_t                  outcome;   /* NGX_OK or NGX_ERROR, once done */
    int                        rc;      /* the thread's outcome */
    mv_actlog_pos_t            pos;
    mv_err_t                   err;
} ngx_milvuso_log_task_t;

/* Per request. */
typedef struct {
    ngx_uint_t             endpoint;
    int64_t                start_us;
    ngx_uint_t             source;
    uint64_t               generation;
    ngx_uint_t             candidates;
    ngx_uint_t             has_generation;
    ngx_milvuso_log_task_t *log_task;       /* an append in a thread */
    void                  *event;           /* the POST's parsed event */
    char                  *refusal;         /* why the transport refused */
    unsigned               maybe_stored:1;  /* ... and the record may have
                                               reached Kafka all the same */
    unsigned               spooled:1;       /* Kafka did not take it: it
                                               goes to the log instead */
} ngx_milvuso_req_ctx_t;


extern ngx_module_t             ngx_http_milvuso_module;
extern ngx_milvuso_proc_t       ngx_milvuso_proc;


/* ngx_milvuso_actlog.c */
char *ngx_milvuso_action_log_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_milvuso_log_zone_add(ngx_conf_t *cf,
    ngx_milvuso_main_conf_t *mcf);
ngx_int_t ngx_milvuso_log_zone_init(ngx_shm_zone_t *shm_zone, void *data);
ngx_int_t ngx_milvuso_log_write(ngx_http_request_t *r, uint16_t type,
    const char *payload, size_t len, ngx_milvuso_log_apply_pt apply,
    ngx_milvuso_log_done_pt done);
void ngx_milvuso_log_disk_usage(ngx_http_request_t *r, uint64_t *bytes,
    uint64_t *segments);
ngx_int_t ngx_milvuso_log_spool(ngx_log_t *log,
    ngx_milvuso_main_conf_t *mcf, uint16_t type, const void *payload,
    size_t len, ngx_uint_t now);

/* ngx_milvuso_kafka.c */
char *ngx_milvuso_kafka_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_milvuso_kafka_init_process(ngx_cycle_t *cycle,
    ngx_milvuso_main_conf_t *mcf);
void ngx_milvuso_kafka_exit_process(void);
ngx_int_t ngx_milvuso_kafka_write(ngx_http_request_t *r, uint16_t type,
    const char *payload, size_t len, const char *key,
    ngx_milvuso_log_apply_pt apply, ngx_milvuso_log_done_pt done);
ngx_uint_t ngx_milvuso_kafka_outq(void);

/* ngx_milvuso_zone.c */
ngx_int_t ngx_milvuso_zone_init(ngx_shm_zone_t *shm_zone, void *data);
uint32_t ngx_milvuso_key_hash(const u_char *key, size_t len);
ngx_int_t ngx_milvuso_profile_add(ngx_milvuso_zone_ctx_t *z,
    ngx_milvuso_main_conf_t *mcf, const mv_action_t *a);
ngx_int_t ngx_milvuso_profile_copy(ngx_milvuso_zone_ctx_t *z,
    const u_char *user, size_t len, ngx_milvuso_action_rec_t *out,
    ngx_uint_t cap, ngx_uint_t *n, uint64_t *version,
    uint64_t *fresh_version);
ngx_int_t ngx_milvuso_fresh_put(ngx_milvuso_zone_ctx_t *z,
    ngx_milvuso_main_conf_t *mcf, const mv_item_event_t *item,
    uint64_t log_pos);
ngx_int_t ngx_milvuso_fresh_get(ngx_milvuso_zone_ctx_t *z, const u_char *id,
    size_t len, float *vec, uint32_t dim, u_char *category, size_t *cat_len);
ngx_uint_t ngx_milvuso_fresh_scan(ngx_milvuso_zone_ctx_t *z,
    const mv_kernels_t *kern, mv_metric_t metric, const float *query,
    uint32_t dim, ngx_milvuso_fresh_allow_pt allow, void *data,
    ngx_milvuso_hit_t *out, ngx_uint_t k, ngx_uint_t *n_out);
void ngx_milvuso_hits_insert(ngx_milvuso_hit_t *hits, ngx_uint_t *n,
    ngx_uint_t k, const ngx_milvuso_hit_t *h);
ngx_uint_t ngx_milvuso_fresh_drop_included(ngx_milvuso_zone_ctx_t *z,
    const mv_snapshot_view_t *view);
ngx_int_t ngx_milvuso_cache_get(ngx_milvuso_zone_ctx_t *z, const u_char *key,
    size_t len, ngx_pool_t *pool, ngx_str_t *body, ngx_uint_t *source,
    ngx_uint_t *candidates);
void ngx_milvuso_cache_put(ngx_milvuso_zone_ctx_t *z, const u_char *key,
    size_t len, ngx_msec_t ttl, const ngx_str_t *body, ngx_uint_t source,
    ngx_uint_t candidates);
void ngx_milvuso_zone_usage(ngx_milvuso_zone_ctx_t *z, size_t *size,
    size_t *used, ngx_uint_t *profiles, ngx_uint_t *fresh,
    ngx_uint_t *cached);
/* Raises sh->last_accept_ms to now_ms (a compare-and-swap maximum: never
   lowered by a worker whose clock read came earlier). */
void ngx_milvuso_note_accepted(ngx_milvuso_shctx_t *sh, int64_t now_ms);

/* ngx_milvuso_snapshot.c */
ngx_int_t ngx_milvuso_snapshot_init_process(ngx_cycle_t *cycle,
    ngx_milvuso_main_conf_t *mcf);
void ngx_milvuso_snapshot_exit_process(void);
uint32_t ngx_milvuso_dim(ngx_milvuso_main_conf_t *mcf);
mv_metric_t ngx_milvuso_metric(void);

/* ngx_milvuso_request.c: the plumbing (contracts at each definition) */
extern const ngx_uint_t   ngx_milvuso_statuses[NGX_MILVUSO_ST_N - 1];
extern const char        *ngx_milvuso_endpoint_names[NGX_MILVUSO_EP_N];
extern const char        *ngx_milvuso_lat_le_text[NGX_MILVUSO_LAT_BUCKETS];

ngx_milvuso_req_ctx_t *ngx_milvuso_req_ctx(ngx_http_request_t *r,
    ngx_uint_t endpoint);
ngx_milvuso_zone_ctx_t *ngx_milvuso_zone(ngx_http_request_t *r);
ngx_int_t ngx_milvuso_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, u_char *body, size_t len);
ngx_int_t ngx_milvuso_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len);
ngx_int_t ngx_milvuso_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *fmt, ...);
ngx_int_t ngx_milvuso_check_method(ngx_http_request_t *r,
    ngx_uint_t allowed);
ngx_int_t ngx_milvuso_get_begin(ngx_http_request_t *r, ngx_uint_t endpoint,
    ngx_milvuso_req_ctx_t **ctx);
u_char *ngx_milvuso_json_str(u_char *p, u_char *last, const char *s);
ngx_int_t ngx_milvuso_last_segment(ngx_http_request_t *r, ngx_str_t *id);
ngx_int_t ngx_milvuso_read_body(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt done);
ngx_int_t ngx_milvuso_body_or_error(ngx_http_request_t *r, u_char **body,
    size_t *len);

/* ngx_milvuso_handlers.c */
ngx_int_t ngx_milvuso_actions_handler(ngx_http_request_t *r);
ngx_int_t ngx_milvuso_items_handler(ngx_http_request_t *r);
ngx_int_t ngx_milvuso_health_handler(ngx_http_request_t *r);
ngx_int_t ngx_milvuso_metrics_handler(ngx_http_request_t *r);

/* ngx_milvuso_search.c */

/*
 * The k best items for query that pass both filters: HNSW over the snapshot
 * plus the fresh items, merged into out (k entries); *candidates counts the
 * items scored.  Returns the number of hits.
 */
ngx_uint_t ngx_milvuso_search(ngx_http_request_t *r, const float *query,
    ngx_uint_t k, ngx_milvuso_snap_filter_t *sf,
    ngx_milvuso_fresh_filter_t *ff, ngx_milvuso_hit_t *out,
    ngx_uint_t *candidates);
/* The argument name as an integer 1..max (def, capped, when absent). */
ngx_int_t ngx_milvuso_arg_uint(ngx_http_request_t *r, char *name,
    ngx_uint_t def, ngx_uint_t max, ngx_uint_t *out);
int ngx_milvuso_cmp_u32(const void *a, const void *b);
/* Whether snapshot item id passes sf (an mv_filter_t callback). */
int ngx_milvuso_snap_allow(const void *data, uint32_t id);
/* Whether fresh item f passes the ngx_milvuso_fresh_filter_t data; runs
   under the zone's mutex: memory reads only. */
ngx_int_t ngx_milvuso_fresh_allow(void *data, const ngx_milvuso_fresh_t *f);
/* Snapshot item idx as a hit with the given score. */
void ngx_milvuso_snap_hit(const mv_snapshot_view_t *view, uint32_t idx,
    float score, ngx_milvuso_hit_t *h);
/* The k best of both lists into out, a fresh hit replacing the snapshot's
   hit of the same id.  Returns the number of hits. */
ngx_uint_t ngx_milvuso_merge(ngx_milvuso_hit_t *out, ngx_uint_t k,
    ngx_milvuso_hit_t *fresh, ngx_uint_t n_fresh, ngx_milvuso_hit_t *snap,
    ngx_uint_t n_snap);
/* The hits as a JSON array (allocated from r's pool). */
ngx_int_t ngx_milvuso_render(ngx_http_request_t *r, ngx_milvuso_hit_t *hits,
    ngx_uint_t n, ngx_str_t *out);
ngx_int_t ngx_milvuso_similar_handler(ngx_http_request_t *r);

/* ngx_milvuso_recommend.c */
ngx_int_t ngx_milvuso_recommend_handler(ngx_http_request_t *r);

#endif /* NGX_MILVUSO_H */
