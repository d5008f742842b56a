/*
 * config.c -- the worker's configuration (see config.h for the rules).
 *
 * The schema table below is the only place that knows the keys.  Each row
 * gives the dotted name, the kind, the field (offset and size), the
 * default as text, the range or the allowed words, and the description.
 * Everything else is generic over the rows:
 *
 *   mvw_config_defaults  zeroes the struct and sets every default through
 *                        config_set_text, the path the environment takes,
 *                        so a default that breaks its own range fails the
 *                        tests at once;
 *   apply_value          checks one TOML value against a row and stores
 *                        it, or leaves the struct alone and says what the
 *                        row wants ("must be an integer from 1 to 65535");
 *   loading              walks the parsed document's nodes in order:
 *                        tables must be sections (a prefix of some key),
 *                        values must be keys;
 *   the environment      compares each MILVUSO_* name with the name each
 *                        row generates;
 *   mvw_config_print     writes every row with its description, in table
 *                        order (rows of a section are contiguous), floats
 *                        with the fewest digits that read back to the same
 *                        double.
 *
 * Enum keys store the type of the module that reads them (mv_metric_t,
 * mvw_optim_kind_t, ...), through a words[] / values[] pair per key, so
 * the order of the words is the documentation's, not the enum's.
 *
 * Loading works on a copy and copies it out only when everything passed.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/toml.h"
#include "sources/source.h"       /* the Kafka name checks */
#include "worker.h"               /* MVW_STRINGIFY */

typedef enum cfg_kind {
    K_BOOL = 1,
    K_INT,
    K_NUM,
    K_STR,
    K_ENUM
} cfg_kind_t;

#define F_MIN_OPEN   0x01       /* number: min itself is refused */
#define F_MAX_OPEN   0x02       /* number: max itself is refused */
#define F_EMPTY_OK   0x04       /* string: "" is allowed */
#define F_TOPIC      0x08       /* string: a Kafka topic that a snapshot
                                   can store positions of */
#define F_BROKERS    0x10       /* string: host:port[,host:port...] */

typedef struct cfg_key {
    const char         *name;
    cfg_kind_t          kind;
    size_t              offset;
    size_t              size;
    const char         *def;        /* default, as mvw_config_set text */
    double              min;        /* K_NUM (max HUGE_VAL: unbounded) */
    double              max;
    uint64_t            imin;       /* K_INT */
    uint64_t            imax;
    unsigned            flags;
    const char *const  *words;      /* K_ENUM, NULL-terminated */
    const int          *values;     /* K_ENUM, what words[i] stores */
    const char         *doc;
} cfg_key_t;

typedef struct cfg_section {
    const char  *name;
    const char  *doc;
} cfg_section_t;

_Static_assert(sizeof(mv_metric_t) == sizeof(int), "enum size");
_Static_assert(sizeof(mvw_optim_kind_t) == sizeof(int), "enum size");
_Static_assert(sizeof(mvw_init_kind_t) == sizeof(int), "enum size");
_Static_assert(sizeof(mvw_mf_loss_t) == sizeof(int), "enum size");
_Static_assert(sizeof(mvw_log_level_t) == sizeof(int), "enum size");
_Static_assert(sizeof(mvw_trainer_input_t) == sizeof(int), "enum size");

/* The words of each enum key, and the value each word stores. */
static const char *const  metric_words[] = {
    "ip", "cosine", "l2", NULL
};
static const int  metric_values[] = {
    MV_METRIC_IP, MV_METRIC_COSINE, MV_METRIC_L2
};
static const char *const  optimizer_words[] = {
    "sgd", "adam", "adagrad", NULL
};
static const int  optimizer_values[] = {
    MVW_OPTIM_SGD, MVW_OPTIM_ADAM, MVW_OPTIM_ADAGRAD
};
static const char *const  initializer_words[] = {
    "xavier_normal", "xavier_uniform", "he_normal", "he_uniform",
    "lecun_normal", "lecun_uniform", "orthogonal", "sparse", "normal", NULL
};
static const int  initializer_values[] = {
    MVW_INIT_XAVIER_NORMAL, MVW_INIT_XAVIER_UNIFORM, MVW_INIT_HE_NORMAL,
    MVW_INIT_HE_UNIFORM, MVW_INIT_LECUN_NORMAL, MVW_INIT_LECUN_UNIFORM,
    MVW_INIT_ORTHOGONAL, MVW_INIT_SPARSE, MVW_INIT_NORMAL
};
static const char *const  loss_words[] = {
    "logistic", "bpr", "softmax", NULL
};
static const int  loss_values[] = {
    MVW_MF_LOGISTIC, MVW_MF_BPR, MVW_MF_SOFTMAX
};
static const char *const  lr_schedule_words[] = {
    "constant", "linear", NULL
};
static const int  lr_schedule_values[] = { 0, 1 };
static const char *const  log_level_words[] = {
    "error", "warn", "info", "debug", NULL
};
static const int  log_level_values[] = {
    MVW_LOG_ERROR, MVW_LOG_WARN, MVW_LOG_INFO, MVW_LOG_DEBUG
};
static const char *const  trainer_input_words[] = {
    "actions", "examples", NULL
};
static const int  trainer_input_values[] = {
    MVW_TRAINER_INPUT_ACTIONS, MVW_TRAINER_INPUT_EXAMPLES
};

#define OFF(f)   offsetof(mvw_config_t, f)
#define SIZE(f)  sizeof(((mvw_config_t *) 0)->f)

#define BOOL(n, f, def, doc)                                               \
    { n, K_BOOL, OFF(f), SIZE(f), def, 0, 0, 0, 0, 0, NULL, NULL, doc }
#define INT(n, f, def, lo, hi, doc)                                        \
    { n, K_INT, OFF(f), SIZE(f), def, 0, 0, lo, hi, 0, NULL, NULL, doc }
#define NUM(n, f, def, lo, hi, fl, doc)                                    \
    { n, K_NUM, OFF(f), SIZE(f), def, lo, hi, 0, 0, fl, NULL, NULL, doc }
#define STR(n, f, def, fl, doc)                                            \
    { n, K_STR, OFF(f), SIZE(f), def, 0, 0, 0, 0, fl, NULL, NULL, doc }
#define ENUM(n, f, def, w, doc)                                            \
    { n, K_ENUM, OFF(f), SIZE(f), def, 0, 0, 0, 0, 0, w##_words,          \
      w##_values, doc }

#define I64  ((uint64_t) INT64_MAX)
#define NONE HUGE_VAL
#define AW(a) training.action_weights[a]

static const cfg_key_t  schema[] = {
    STR("server.host", server.host, "127.0.0.1", 0,
        "address the recommendation API listens on"),
    INT("server.port", server.port, "8080", 1, 65535,
        "port the recommendation API listens on"),

    BOOL("milvus.enabled", milvus.enabled, "false",
         "use a Milvus server as the vector store"),
    STR("milvus.host", milvus.host, "127.0.0.1", 0, "Milvus host"),
    INT("milvus.port", milvus.port, "19530", 1, 65535, "Milvus port"),
    STR("milvus.collection_name", milvus.collection_name,
        "recommendation_vectors", 0, "collection holding the vectors"),
    INT("milvus.dimension", milvus.dimension, "64", 1, MV_DIM_MAX,
        "vector dimension of the collection"),

    BOOL("kafka.enabled", kafka.enabled, "false",
         "the worker follows the Kafka topics below instead of "
         "worker.action_log (the feature worker needs it)"),
    STR("kafka.brokers", kafka.brokers, "127.0.0.1:9092", F_BROKERS,
        "bootstrap brokers"),
    STR("kafka.log_topic", kafka.log_topic, "user_actions", F_TOPIC,
        "topic of user actions (records are actions, keyed by user)"),
    STR("kafka.feature_topic", kafka.feature_topic, "features", F_TOPIC,
        "topic of posted items (records are items, keyed by item)"),
    STR("kafka.training_topic", kafka.training_topic, "training_examples",
        F_TOPIC, "topic of training examples (written by the feature "
        "worker in transactions, keyed by user)"),
    STR("kafka.group_id", kafka.group_id, "milvuso-worker", 0,
        "consumer group of the trainer (where it resumes is kept in each "
        "snapshot; the group's offsets follow each publish, for lag "
        "monitoring)"),
    INT("kafka.partitions", kafka.partitions, "4", 1, 1024,
        "partitions of each topic when it is created (keyed by user)"),
    INT("kafka.replication", kafka.replication, "1", 1, 16,
        "replication factor of each topic when it is created"),
    ENUM("kafka.trainer_input", kafka.trainer_input, "actions",
         trainer_input, "what the trainer learns from: actions = log_topic, "
         "joined with feature_topic by the trainer itself (no feature "
         "worker); examples = training_topic, written by a feature worker "
         "(--worker-type trainer, not all)"),

    STR("feature.group_id", feature.group_id, "milvuso-feature", 0,
        "consumer group of the feature worker on log_topic, and its "
        "transactional id: one feature worker per group (a new one fences "
        "the old one out)"),
    STR("feature.popularity_topic", feature.popularity_topic,
        "item_popularity", F_TOPIC,
        "compacted topic where the feature worker keeps each item's action "
        "count, written in the same transactions as the examples (its "
        "state after a restart)"),
    NUM("feature.commit_interval", feature.commit_interval, "0.2", 0, 10,
        F_MIN_OPEN, "seconds between transaction commits: the longest an "
        "example waits before the trainer can read it"),
    INT("feature.commit_records", feature.commit_records, "5000", 1, 100000,
        "also commit after this many action records"),
    STR("feature.metrics_file", feature.metrics_file, "", F_EMPTY_OK,
        "Prometheus text-format metrics file of the feature worker, empty "
        "= off"),

    NUM("drain.commit_interval", drain.commit_interval, "1.0", 0, 10,
        F_MIN_OPEN, "seconds between the drain's transaction commits"),
    INT("drain.commit_records", drain.commit_records, "5000", 1, 100000,
        "also commit after this many log records"),
    STR("drain.metrics_file", drain.metrics_file, "", F_EMPTY_OK,
        "Prometheus text-format metrics file of the drain, empty = off"),

    BOOL("redis.enabled", redis.enabled, "false", "use Redis"),
    STR("redis.url", redis.url, "redis://127.0.0.1:6379/0", 0,
        "Redis URL"),

    BOOL("postgres.enabled", postgres.enabled, "false", "use PostgreSQL"),
    STR("postgres.dsn", postgres.dsn,
        "postgresql://milvuso@127.0.0.1/milvuso", 0,
        "PostgreSQL connection string"),

    INT("recommendation.embedding_dim", recommendation.embedding_dim, "64",
        1, MV_DIM_MAX, "dimension of user and item embeddings"),
    INT("recommendation.top_k", recommendation.top_k, "50", 1,
        MV_SEARCH_K_MAX,
        "recommendations returned when the request does not say"),
    NUM("recommendation.similarity_threshold",
        recommendation.similarity_threshold, "0.7", -1, 1, 0,
        "lowest similarity a recommendation may have"),
    ENUM("recommendation.metric", recommendation.metric, "ip", metric,
         "similarity: inner product, cosine or Euclidean distance"),
    INT("recommendation.hnsw_m", recommendation.hnsw_m, "16", 2, 100,
        "HNSW links per node"),
    INT("recommendation.hnsw_ef_construction",
        recommendation.hnsw_ef_construction, "200", 1, MV_SEARCH_K_MAX,
        "HNSW beam width while building"),

    INT("training.batch_size", training.batch_size, "1024", 1, 1000000,
        "records the daemon applies between checks of its publish and "
        "stop conditions (every event is its own update)"),
    NUM("training.learning_rate", training.learning_rate, "0.05", 0, 10,
        F_MIN_OPEN, "step size of the optimizer"),
    NUM("training.negative_sampling_ratio",
        training.negative_sampling_ratio, "4.0", 0, 1000, 0,
        "negatives per positive, the fraction being the chance of one "
        "more"),
    ENUM("training.optimizer", training.optimizer, "adagrad", optimizer,
         "update rule"),
    ENUM("training.initializer", training.initializer, "xavier_normal",
         initializer, "distribution of the initial embeddings"),
    NUM("training.init_scale", training.init_scale, "1.0", 0, NONE,
        F_MIN_OPEN, "multiplier of the initializer's scale"),
    NUM("training.sparse_density", training.sparse_density, "0.1", 0, 1,
        F_MIN_OPEN, "non-zero share of the sparse initializer"),
    ENUM("training.loss", training.loss, "softmax", loss,
         "training objective"),
    NUM("training.l2", training.l2, "0.01", 0, NONE, 0,
        "L2 regularisation strength"),
    NUM("training.adam_beta1", training.adam_beta1, "0.9", 0, 1, F_MAX_OPEN,
        "Adam's decay of the first moment"),
    NUM("training.adam_beta2", training.adam_beta2, "0.999", 0, 1,
        F_MAX_OPEN, "Adam's decay of the second moment"),
    NUM("training.adam_epsilon", training.adam_epsilon, "1e-8", 0, NONE,
        F_MIN_OPEN, "Adam's offset of the denominator"),
    BOOL("training.item_bias", training.item_bias, "true",
         "learn a bias per item"),
    INT("training.epochs", training.epochs, "40", 1, 100000,
        "passes over the data in offline training"),
    NUM("training.replay_ratio", training.replay_ratio, "1.0", 0, 100, 0,
        "past examples replayed per new event"),
    INT("training.replay_window", training.replay_window, "100000", 0,
        1000000000, "most recent events that replay draws from"),
    INT("training.dedupe_window", training.dedupe_window, "1000000", 0,
        1073741824, "client event ids (actions posted with their own "
        "event_id) remembered to apply each once: a retry older than this "
        "many such ids is applied again; 0 = no deduplication"),
    INT("training.seed", training.seed, "42", 0, I64,
        "random seed: the same seed and data give the same model"),
    NUM("training.sampler_power", training.sampler_power, "0.75", 0, 2, 0,
        "negatives are drawn with probability popularity^power (0 = "
        "uniform, which the logistic and bpr losses want)"),
    ENUM("training.lr_schedule", training.lr_schedule, "linear",
         lr_schedule, "offline training: constant, or linear decay to 0 "
         "over all epochs (the daemon always uses constant)"),

    NUM("training.action_weights.view", AW(MV_ACTION_VIEW), "1.0", 0, NONE,
        0, "weight of a view"),
    NUM("training.action_weights.click", AW(MV_ACTION_CLICK), "2.0", 0,
        NONE, 0, "weight of a click"),
    NUM("training.action_weights.like", AW(MV_ACTION_LIKE), "3.0", 0, NONE,
        0, "weight of a like"),
    NUM("training.action_weights.share", AW(MV_ACTION_SHARE), "3.0", 0,
        NONE, 0, "weight of a share"),
    NUM("training.action_weights.add_to_cart", AW(MV_ACTION_ADD_TO_CART),
        "4.0", 0, NONE, 0, "weight of an add to cart"),
    NUM("training.action_weights.purchase", AW(MV_ACTION_PURCHASE), "5.0",
        0, NONE, 0, "weight of a purchase"),
    NUM("training.action_weights.dislike", AW(MV_ACTION_DISLIKE), "0.0", 0,
        NONE, 0, "weight of a dislike, 0 = not a positive"),

    STR("worker.action_log", worker.action_log, "/var/lib/milvuso/actions",
        0, "directory of the action log the trainer tails (unless "
        "[kafka] is enabled)"),
    NUM("worker.action_log_retention", worker.action_log_retention,
        "86400.0", 0, 1e9, 0,
        "seconds a segment of the action log is kept after its last "
        "record once every consumer has it in a durable snapshot (a day, "
        "for a new trainer or a rebuild to replay); 0 = remove it as soon "
        "as that is so"),
    INT("worker.action_log_retention_bytes",
        worker.action_log_retention_bytes, "0", 0, I64,
        "cap on what action_log_retention keeps: above this many bytes of "
        "log, segments every consumer has go even when younger; 0 = no "
        "cap (what a consumer still needs is never removed)"),
    NUM("worker.action_log_consumer_expiry",
        worker.action_log_consumer_expiry, "604800.0", 0, 1e9, 0,
        "seconds after which a consumer of the action log that stopped "
        "updating its registration no longer holds segments back (and its "
        "registration is removed); 0 = never"),
    STR("worker.snapshot_dir", worker.snapshot_dir,
        "/var/lib/milvuso/snapshots", 0,
        "directory the snapshots are published in"),
    NUM("worker.publish_interval", worker.publish_interval, "5.0", 0, 1e9,
        F_MIN_OPEN, "seconds between publications"),
    INT("worker.publish_every", worker.publish_every, "10000", 0, I64,
        "also publish after this many updates, 0 = off"),
    INT("worker.keep_generations", worker.keep_generations, "3", 1, 1000,
        "published generations kept on disk (they share their unchanged "
        "files)"),
    INT("worker.compact_max_deltas", worker.compact_max_deltas, "8", 1, 60,
        "user delta files a generation may name before they are merged "
        "into one base"),
    NUM("worker.compact_ratio", worker.compact_ratio, "0.5", 0, 1e9,
        F_MIN_OPEN, "also merge them once their bytes exceed this times "
        "the base's"),
    ENUM("worker.log_level", worker.log_level, "info", log_level,
         "least severe message logged"),
    STR("worker.metrics_file", worker.metrics_file, "", F_EMPTY_OK,
        "Prometheus text-format metrics file, empty = off"),
    NUM("worker.popularity_half_life", worker.popularity_half_life,
        "604800.0", 0, 1e9, 0,
        "seconds for an item's popularity to halve, 0 = no decay"),
    NUM("worker.poll_interval", worker.poll_interval, "0.1", 0, 1e9,
        F_MIN_OPEN, "seconds between polls of the action log"),
};

#define N_KEYS  (sizeof(schema) / sizeof(schema[0]))

static const cfg_section_t  sections[] = {
    { "server", "The recommendation API (served by nginx)." },
    { "milvus", "Milvus as an external vector store (optional)." },
    { "kafka", "Kafka topics of the event pipeline (optional)." },
    { "feature", "The feature worker (--worker-type feature, Kafka only)." },
    { "drain", "The drain (--worker-type drain, beside nginx)." },
    { "redis", "Redis (optional)." },
    { "postgres", "PostgreSQL (optional)." },
    { "recommendation", "Retrieval: embeddings, result size, HNSW index." },
    { "training", "The two-tower trainer." },
    { "training.action_weights",
      "How much each action counts as a positive example." },
    { "worker", "The trainer daemon: action log, snapshots, publishing." },
};

#define N_SECTIONS  (sizeof(sections) / sizeof(sections[0]))


/* ---- the schema ---------------------------------------------------------- */

static const cfg_key_t *
find_key(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(schema[i].name, name) == 0) {
            return &schema[i];
        }
    }
    return NULL;
}


/* 1 if path names a section: a proper prefix of some key. */
static int
is_section(const char *path)
{
    size_t  len = strlen(path);

    for (size_t i = 0; i < N_KEYS; i++) {
        if (strncmp(schema[i].name, path, len) == 0
            && schema[i].name[len] == '.')
        {
            return 1;
        }
    }
    return 0;
}


/* Length of the section part of a key's name (up to its last dot). */
static size_t
section_len(const char *name)
{
    const char  *dot = strrchr(name, '.');

    return dot == NULL ? 0 : (size_t) (dot - name);
}


/* "MILVUSO_" + name upper-cased, dots as underscores. */
static void
env_name(const char *name, size_t len, char *out, size_t size)
{
    size_t  n = 0;

    for (const char *p = "MILVUSO_"; *p != '\0' && n + 1 < size; p++) {
        out[n++] = *p;
    }
    for (size_t i = 0; i < len && n + 1 < size; i++) {
        char  c = name[i];

        out[n++] = c == '.' ? '_' : (c >= 'a' && c <= 'z') ? c - 32 : c;
    }
    out[n] = '\0';
}


/* What a row accepts, as in "must be PHRASE" and the printed comments. */
static void
phrase(const cfg_key_t *k, char *buf, size_t size)
{
    size_t  n;

    switch (k->kind) {
    case K_BOOL:
        snprintf(buf, size, "true or false");
        break;
    case K_INT:
        snprintf(buf, size, "an integer from %" PRIu64 " to %" PRIu64,
                 k->imin, k->imax);
        break;
    case K_NUM:
        if (isinf(k->max)) {
            snprintf(buf, size, "a finite number %s %.15g",
                     k->flags & F_MIN_OPEN ? ">" : ">=", k->min);
        } else {
            snprintf(buf, size, "a number %s %.15g and %s %.15g",
                     k->flags & F_MIN_OPEN ? ">" : ">=", k->min,
                     k->flags & F_MAX_OPEN ? "<" : "<=", k->max);
        }
        break;
    case K_STR:
        snprintf(buf, size, "%s",
                 k->flags & F_TOPIC ? "a Kafka topic name of at most "
                                      MVW_STRINGIFY(MV_SNAPSHOT_STREAM_MAX)
                                      " bytes"
                 : k->flags & F_BROKERS ? "host:port[,host:port...]"
                 : k->flags & F_EMPTY_OK ? "a string" : "a non-empty string");
        break;
    case K_ENUM:
        n = (size_t) snprintf(buf, size, "one of");
        for (size_t i = 0; k->words[i] != NULL && n < size; i++) {
            n += (size_t) snprintf(buf + n, size - n, "%s \"%s\"",
                                   i ? "," : "", k->words[i]);
        }
        break;
    }
}


static int
wrong(const cfg_key_t *k, mv_err_t *err)
{
    char  want[192];

    phrase(k, want, sizeof(want));
    return mv_err_set(err, "%s: must be %s", k->name, want);
}


/* ---- storing values ------------------------------------------------------ */

/*
 * Checks v against row k and stores it in c, or returns MV_ERR with c
 * untouched.  v may be of any type (0 for "not a value at all").
 */
static int
apply_value(mvw_config_t *c, const cfg_key_t *k, const mvw_toml_value_t *v,
    mv_err_t *err)
{
    char      *field = (char *) c + k->offset;
    double     d;
    uint64_t   u;
    uint32_t   u32;
    int        b;

    switch (k->kind) {
    case K_BOOL:
        if (v->type != MVW_TOML_BOOL) {
            return wrong(k, err);
        }
        b = v->boolean;
        memcpy(field, &b, sizeof(b));
        return MV_OK;

    case K_INT:
        if (v->type != MVW_TOML_INTEGER || v->integer < 0
            || (uint64_t) v->integer < k->imin
            || (uint64_t) v->integer > k->imax)
        {
            return wrong(k, err);
        }
        u = (uint64_t) v->integer;
        if (k->size == sizeof(uint32_t)) {
            u32 = (uint32_t) u;
            memcpy(field, &u32, sizeof(u32));
        } else {
            memcpy(field, &u, sizeof(u));
        }
        return MV_OK;

    case K_NUM:
        if (v->type == MVW_TOML_INTEGER) {
            d = (double) v->integer;
        } else if (v->type == MVW_TOML_FLOAT) {
            d = v->number;
        } else {
            return wrong(k, err);
        }
        if (!isfinite(d)
            || (k->flags & F_MIN_OPEN ? d <= k->min : d < k->min)
            || (k->flags & F_MAX_OPEN ? d >= k->max : d > k->max))
        {
            return wrong(k, err);
        }
        memcpy(field, &d, sizeof(d));
        return MV_OK;

    case K_STR:
        if (v->type != MVW_TOML_STRING
            || (v->len == 0 && !(k->flags & F_EMPTY_OK)))
        {
            return wrong(k, err);
        }
        if (v->len >= k->size) {
            return mv_err_set(err, "%s: must be at most %zu bytes", k->name,
                              k->size - 1);
        }
        if (!mvw_toml_utf8_valid(v->str, v->len)) {
            return mv_err_set(err, "%s: must be valid UTF-8", k->name);
        }
        for (size_t i = 0; i < v->len; i++) {
            unsigned char  ch = (unsigned char) v->str[i];

            if (ch < 0x20 || ch == 0x7f) {
                return mv_err_set(err, "%s: must not contain control "
                                  "characters", k->name);
            }
        }
        if (k->flags & (F_TOPIC | F_BROKERS)) {
            char      text[MVW_CONFIG_URL_MAX];
            mv_err_t  why;

            memcpy(text, v->str, v->len);
            text[v->len] = '\0';
            if ((k->flags & F_TOPIC
                 ? mvw_kafka_topic_check(text, &why)
                 : mvw_kafka_brokers_check(text, &why)) != MV_OK)
            {
                return mv_err_set(err, "%s: %s", k->name, why.msg);
            }
        }
        memset(field, 0, k->size);
        memcpy(field, v->str, v->len);
        return MV_OK;

    case K_ENUM:
        if (v->type == MVW_TOML_STRING) {
            for (int i = 0; k->words[i] != NULL; i++) {
                if (strlen(k->words[i]) == v->len
                    && memcmp(k->words[i], v->str, v->len) == 0)
                {
                    memcpy(field, &k->values[i], sizeof(int));
                    return MV_OK;
                }
            }
        }
        return wrong(k, err);
    }
    return wrong(k, err);
}


/* A row's value from text: strings raw, the rest as a TOML scalar. */
static int
config_set_text(mvw_config_t *c, const cfg_key_t *k, const char *text,
    mv_err_t *err)
{
    mvw_toml_value_t  v;

    memset(&v, 0, sizeof(v));
    if (k->kind == K_STR || k->kind == K_ENUM) {
        v.type = MVW_TOML_STRING;
        v.str = (char *) text;
        v.len = strlen(text);
    } else if (mvw_toml_parse_scalar(text, strlen(text), &v, NULL)
               != MV_OK)
    {
        return wrong(k, err);
    }
    return apply_value(c, k, &v, err);
}


void
mvw_config_defaults(mvw_config_t *c)
{
    int  rc;

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_KEYS; i++) {
        rc = config_set_text(c, &schema[i], schema[i].def, NULL);
        assert(rc == MV_OK);
        (void) rc;
    }
}


int
mvw_config_set(mvw_config_t *c, const char *dotted_key, const char *text,
    mv_err_t *err)
{
    const cfg_key_t  *k = find_key(dotted_key);

    if (k == NULL) {
        return mv_err_set(err, "unknown key \"%.200s\"", dotted_key);
    }
    return config_set_text(c, k, text, err);
}


/* ---- loading ------------------------------------------------------------- */

static int
apply_document(mvw_config_t *c, const char *name, const mvw_toml_t *doc,
    mv_err_t *err)
{
    const mvw_toml_node_t  *nd;
    const cfg_key_t        *k;
    mv_err_t                why;

    for (size_t i = 0; i < doc->n_nodes; i++) {
        nd = &doc->nodes[i];
        if (nd->value.type == MVW_TOML_TABLE) {
            if (!is_section(nd->path)) {
                return mv_err_set(err, "%s:%" PRIu32 ": unknown section "
                                  "\"%s\"", name, nd->line, nd->path);
            }
            continue;
        }
        k = find_key(nd->path);
        if (k == NULL) {
            return mv_err_set(err, "%s:%" PRIu32 ": unknown key \"%s\"",
                              name, nd->line, nd->path);
        }
        if (apply_value(c, k, &nd->value, &why) != MV_OK) {
            return mv_err_set(err, "%s:%" PRIu32 ": %s", name, nd->line,
                              why.msg);
        }
    }
    return MV_OK;
}


static int
apply_environment(mvw_config_t *c, char *const *envp, mv_err_t *err)
{
    char         want[128];
    const char  *e, *eq;
    size_t       len;
    mv_err_t     why;
    int          matched;

    if (envp == NULL) {
        return MV_OK;
    }
    for (size_t i = 0; envp[i] != NULL; i++) {
        e = envp[i];
        eq = strchr(e, '=');
        if (strncmp(e, "MILVUSO_", 8) != 0 || eq == NULL) {
            continue;
        }
        len = (size_t) (eq - e);

        matched = 0;
        for (size_t j = 0; j < N_KEYS && !matched; j++) {
            env_name(schema[j].name, strlen(schema[j].name), want,
                     sizeof(want));
            if (strlen(want) == len && memcmp(want, e, len) == 0) {
                matched = 1;
                if (config_set_text(c, &schema[j], eq + 1, &why) != MV_OK) {
                    return mv_err_set(err, "environment %.*s: %s", (int) len,
                                      e, why.msg);
                }
            }
        }
        if (matched) {
            continue;
        }

        /* MILVUSO_<top-level section>_... that is no key is a mistake. */
        for (size_t j = 0; j < N_KEYS; j++) {
            const char  *dot = strchr(schema[j].name, '.');

            env_name(schema[j].name, (size_t) (dot - schema[j].name), want,
                     sizeof(want) - 1);
            strcat(want, "_");
            if (len >= strlen(want) && strncmp(e, want, strlen(want)) == 0) {
                return mv_err_set(err, "environment %.*s: unknown key",
                                  (int) (len > 100 ? 100 : len), e);
            }
        }
    }
    return MV_OK;
}


int
mvw_config_load_buffer(mvw_config_t *c, const char *name, const char *buf,
    size_t len, char *const *envp, mv_err_t *err)
{
    mvw_config_t  tmp;
    mvw_toml_t    doc;
    mv_err_t      why;
    int           rc;

    mvw_config_defaults(&tmp);
    if (name == NULL) {
        name = "configuration";
    }
    if (buf != NULL) {
        if (mvw_toml_parse(&doc, buf, len, &why) != MV_OK) {
            return mv_err_set(err, "%s:%s%s", name,
                              doc.err_line == 0 ? " " : "", why.msg);
        }
        rc = apply_document(&tmp, name, &doc, err);
        mvw_toml_free(&doc);
        if (rc != MV_OK) {
            return MV_ERR;
        }
    }
    if (apply_environment(&tmp, envp, err) != MV_OK) {
        return MV_ERR;
    }
    memcpy(c, &tmp, sizeof(tmp));
    return MV_OK;
}


int
mvw_config_load(mvw_config_t *c, const char *path, char *const *envp,
    mv_err_t *err)
{
    struct stat  st;
    char        *buf;
    size_t       len = 0;
    ssize_t      n;
    int          fd, rc;

    if (path == NULL) {
        return mvw_config_load_buffer(c, NULL, NULL, 0, envp, err);
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return mv_err_set(err, "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        rc = mv_err_set(err, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return mv_err_set(err, "%s: %s", path, strerror(EISDIR));
    }
    if (S_ISREG(st.st_mode) && st.st_size > (off_t) MVW_TOML_DOC_MAX) {
        close(fd);
        return mv_err_set(err, "%s: larger than %u bytes", path,
                          (unsigned) MVW_TOML_DOC_MAX);
    }

    /* One byte more than the limit, to see a pipe that is too long. */
    buf = malloc(MVW_TOML_DOC_MAX + 1);
    if (buf == NULL) {
        close(fd);
        return mv_err_set(err, "%s: out of memory", path);
    }
    for (;;) {
        n = read(fd, buf + len, MVW_TOML_DOC_MAX + 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = mv_err_set(err, "%s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return rc;
        }
        if (n == 0 || (len += (size_t) n) > MVW_TOML_DOC_MAX) {
            break;
        }
    }
    close(fd);

    if (len > MVW_TOML_DOC_MAX) {
        free(buf);
        return mv_err_set(err, "%s: larger than %u bytes", path,
                          (unsigned) MVW_TOML_DOC_MAX);
    }
    rc = mvw_config_load_buffer(c, path, buf, len, envp, err);
    free(buf);
    return rc;
}


/* ---- printing ------------------------------------------------------------ */

/*
 * The shortest "%.Ng" that reads back to d, as a TOML float: without an
 * exponent for magnitudes 1e-5..1e15 (604800.0, not 6.048e+05), and with
 * ".0" added to what would read as an integer.
 */
static void
print_double(double d, FILE *out)
{
    char    buf[48];
    double  a = fabs(d);
    int     plain = a == 0 || (a >= 1e-5 && a < 1e15);

    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d && (!plain || strchr(buf, 'e') == NULL)) {
            break;
        }
    }
    if (strpbrk(buf, ".en") == NULL) {
        strcat(buf, ".0");
    }
    fputs(buf, out);
}


/* text as "# " comment lines of at most 78 columns. */
static void
print_comment(const char *text, FILE *out)
{
    const char  *p = text, *brk;
    size_t       width = 76;

    while (strlen(p) > width) {
        brk = NULL;
        for (const char *q = p; q <= p + width; q++) {
            if (*q == ' ') {
                brk = q;
            }
        }
        if (brk == NULL) {
            brk = strchr(p + width, ' ');
            if (brk == NULL) {
                break;
            }
        }
        fprintf(out, "# %.*s\n", (int) (brk - p), p);
        p = brk + 1;
    }
    fprintf(out, "# %s\n", p);
}


static void
print_string(const char *s, size_t len, FILE *out)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char  ch = (unsigned char) s[i];

        if (ch == '"' || ch == '\\') {
            fputc('\\', out);
            fputc(ch, out);
        } else if (ch < 0x20 || ch == 0x7f) {
            fprintf(out, "\\u%04X", ch);
        } else {
            fputc(ch, out);
        }
    }
    fputc('"', out);
}


void
mvw_config_print(const mvw_config_t *c, FILE *out)
{
    const cfg_key_t  *k;
    const char       *field;
    const char       *prev = NULL;
    size_t            prev_len = 0, slen;
    char              want[192], line[320];
    double            d;
    uint64_t          u;
    uint32_t          u32;
    int               i;

    fputs("# milvuso-worker configuration (TOML).\n"
          "#\n"
          "# Every key is optional: a missing key keeps the default.\n"
          "# Environment variables override the file: MILVUSO_ and the key\n"
          "# in upper case with '_' for '.', e.g.\n"
          "# MILVUSO_TRAINING_LEARNING_RATE=0.01.  Unknown keys are "
          "errors.\n", out);

    for (size_t j = 0; j < N_KEYS; j++) {
        k = &schema[j];
        field = (const char *) c + k->offset;
        slen = section_len(k->name);

        if (prev == NULL || slen != prev_len
            || strncmp(prev, k->name, slen) != 0)
        {
            fputc('\n', out);
            for (size_t s = 0; s < N_SECTIONS; s++) {
                if (strlen(sections[s].name) == slen
                    && strncmp(sections[s].name, k->name, slen) == 0)
                {
                    fprintf(out, "# %s\n", sections[s].doc);
                }
            }
            fprintf(out, "[%.*s]\n", (int) slen, k->name);
            prev = k->name;
            prev_len = slen;
        }

        phrase(k, want, sizeof(want));
        snprintf(line, sizeof(line), "%s (%s)", k->doc, want);
        fputc('\n', out);
        if (strlen(line) > 76) {
            print_comment(k->doc, out);
            snprintf(line, sizeof(line), "(%s)", want);
        }
        print_comment(line, out);
        fprintf(out, "%s = ", k->name + slen + 1);
        switch (k->kind) {
        case K_BOOL:
            memcpy(&i, field, sizeof(i));
            fputs(i ? "true" : "false", out);
            break;
        case K_INT:
            if (k->size == sizeof(uint32_t)) {
                memcpy(&u32, field, sizeof(u32));
                u = u32;
            } else {
                memcpy(&u, field, sizeof(u));
            }
            fprintf(out, "%" PRIu64, u);
            break;
        case K_NUM:
            memcpy(&d, field, sizeof(d));
            print_double(d, out);
            break;
        case K_STR:
            print_string(field, strnlen(field, k->size), out);
            break;
        case K_ENUM:
            memcpy(&i, field, sizeof(i));
            for (int w = 0; k->words[w] != NULL; w++) {
                if (k->values[w] == i) {
                    print_string(k->words[w], strlen(k->words[w]), out);
                }
            }
            break;
        }
        fputc('\n', out);
    }
}
