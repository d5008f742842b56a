/*
 * config.h -- milvuso-worker's typed configuration: defaults, a TOML file,
 * then environment variables, all checked against one schema.
 *
 * Every key is one row of the schema table in config.c: its dotted name
 * ("training.learning_rate"), its type, where it lives in mvw_config_t,
 * its range or its allowed words, and a one-line description.  Loading,
 * the environment, mvw_config_set, the error messages and
 * mvw_config_print (which conf/milvuso.toml is made from) all read that
 * table, so a new key is one field here and one row there.
 *
 * Order of precedence: the defaults below, then the file, then the
 * environment.  Nothing is applied unless everything is valid: a load
 * either fills the whole struct or leaves it untouched.
 *
 * Types and the rules the file follows:
 *   integer  a TOML integer in the key's range (a float is refused, even
 *            2.0); stored as uint32_t or uint64_t
 *   number   a TOML float or integer, finite, in the key's range
 *   bool     true or false
 *   string   a TOML string without control characters, of at most the
 *            field's size - 1 bytes; non-empty unless noted
 *   enum     a string, one of the listed lower-case words; stored as the
 *            enum of the module that uses it (mv_metric_t,
 *            mvw_optim_kind_t, mvw_init_kind_t, mvw_mf_loss_t,
 *            mvw_log_level_t, mvw_trainer_input_t), so the trainer and the logger take the
 *            value as it is
 * Unknown sections and keys are errors, with their line, so that a typo
 * never silently leaves a default in place.
 *
 * The environment: MILVUSO_<KEY> where KEY is the dotted name upper-cased
 * with '.' turned into '_' (MILVUSO_TRAINING_LEARNING_RATE,
 * MILVUSO_TRAINING_ACTION_WEIGHTS_CLICK).  Underscores make the name
 * ambiguous, so each key's name is generated and compared.  A variable
 * MILVUSO_<SECTION>_... that names a section but no key is an error;
 * other MILVUSO_* variables (MILVUSO_KERNELS) are not configuration.
 * Values are the key's type as text: strings raw, numbers and booleans in
 * TOML syntax (strict: "1.5" for an integer, " 5" or "yes" are refused).
 *
 * TOML integers are signed 64-bit, so the unbounded 64-bit keys (seed,
 * publish_every) top out at 2^63 - 1.  Durations in seconds are capped at
 * 1e9 so that converting them to milliseconds or nanoseconds cannot
 * overflow.
 */
#ifndef MVW_CONFIG_H
#define MVW_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "cli/logging.h"          /* mvw_log_level_t */
#include "events.h"               /* mv_action_type_t */
#include "model/mf.h"             /* mvw_mf_loss_t, mvw_optim_kind_t,
                                     mvw_init_kind_t */
#include "mv_common.h"
#include "vec.h"                  /* mv_metric_t */

/* What the trainer learns from on Kafka ([kafka] trainer_input). */
typedef enum mvw_trainer_input {
    MVW_TRAINER_INPUT_ACTIONS = 0,     /* log_topic: it joins items itself */
    MVW_TRAINER_INPUT_EXAMPLES         /* training_topic: a feature worker
                                          joins them */
} mvw_trainer_input_t;

#define MVW_CONFIG_NAME_MAX  256        /* hosts, topics, names */
#define MVW_CONFIG_URL_MAX   1024       /* broker lists, URLs, DSNs */
#define MVW_CONFIG_PATH_MAX  4096       /* file and directory paths */

typedef struct mvw_config {
    struct {
        char      host[MVW_CONFIG_NAME_MAX];
        uint32_t  port;
    } server;

    struct {
        int       enabled;
        char      host[MVW_CONFIG_NAME_MAX];
        uint32_t  port;
        char      collection_name[MVW_CONFIG_NAME_MAX];
        uint32_t  dimension;
    } milvus;

    struct {
        int       enabled;
        char      brokers[MVW_CONFIG_URL_MAX];
        char      log_topic[MVW_CONFIG_NAME_MAX];
        char      feature_topic[MVW_CONFIG_NAME_MAX];
        char      training_topic[MVW_CONFIG_NAME_MAX];
        char      group_id[MVW_CONFIG_NAME_MAX];
        uint32_t  partitions;
        uint32_t  replication;
        mvw_trainer_input_t  trainer_input;
    } kafka;

    struct {
        char      group_id[MVW_CONFIG_NAME_MAX];
        char      popularity_topic[MVW_CONFIG_NAME_MAX];
        double    commit_interval;
        uint32_t  commit_records;
        char      metrics_file[MVW_CONFIG_PATH_MAX];
    } feature;

    struct {
        double    commit_interval;
        uint32_t  commit_records;
        char      metrics_file[MVW_CONFIG_PATH_MAX];
    } drain;

    struct {
        int       enabled;
        char      url[MVW_CONFIG_URL_MAX];
    } redis;

    struct {
        int       enabled;
        char      dsn[MVW_CONFIG_URL_MAX];
    } postgres;

    struct {
        uint32_t      embedding_dim;
        uint32_t      top_k;
        double        similarity_threshold;
        mv_metric_t   metric;
        uint32_t      hnsw_m;
        uint32_t      hnsw_ef_construction;
    } recommendation;

    struct {
        uint32_t           batch_size;
        double             learning_rate;
        double             negative_sampling_ratio;
        mvw_optim_kind_t   optimizer;
        mvw_init_kind_t    initializer;
        double             init_scale;
        double             sparse_density;
        mvw_mf_loss_t      loss;
        double             l2;
        double             adam_beta1;
        double             adam_beta2;
        double             adam_epsilon;
        int                item_bias;
        uint32_t           epochs;
        double             replay_ratio;
        uint64_t           replay_window;
        uint64_t           dedupe_window;
        uint64_t           seed;
        double             sampler_power;
        int                lr_schedule;   /* 0 constant, 1 linear */
        /* [training.action_weights], indexed by mv_action_type_t */
        double             action_weights[MV_ACTION_TYPES];
    } training;

    struct {
        char             action_log[MVW_CONFIG_PATH_MAX];
        double           action_log_retention;        /* seconds */
        uint64_t         action_log_retention_bytes;  /* 0: no cap */
        double           action_log_consumer_expiry;  /* seconds, 0: never */
        char             snapshot_dir[MVW_CONFIG_PATH_MAX];
        double           publish_interval;
        uint64_t         publish_every;
        uint32_t         keep_generations;
        uint32_t         compact_max_deltas;
        double           compact_ratio;
        mvw_log_level_t  log_level;
        char             metrics_file[MVW_CONFIG_PATH_MAX];
        double           popularity_half_life;
        double           poll_interval;
    } worker;
} mvw_config_t;

/*
 * Fills c with the defaults (every byte set, so two configurations with
 * the same values compare equal with memcmp).
 */
void mvw_config_defaults(mvw_config_t *c);

/*
 * Loads the defaults, then the TOML file at path (NULL: no file), then the
 * MILVUSO_* variables of envp ("NAME=value" strings, NULL-terminated, such
 * as environ; NULL: none).  Returns MV_OK with c filled, or MV_ERR with c
 * untouched and err set to the first problem:
 *   "PATH: No such file or directory"
 *   "PATH:LINE:COL: duplicate key \"server.port\" (first on line 2)"
 *   "PATH:LINE: unknown key \"training.lerning_rate\""
 *   "PATH:LINE: training.learning_rate: must be a number > 0 and <= 10"
 *   "environment MILVUSO_TRAINING_X: unknown key"
 *   "environment MILVUSO_SERVER_PORT: server.port: must be an integer
 *    from 1 to 65535"
 */
int mvw_config_load(mvw_config_t *c, const char *path, char *const *envp,
    mv_err_t *err);

/*
 * mvw_config_load for a document already in memory: buf[0..len) is read
 * as the file name names (used in messages only).  buf NULL: no file.
 */
int mvw_config_load_buffer(mvw_config_t *c, const char *name,
    const char *buf, size_t len, char *const *envp, mv_err_t *err);

/*
 * Sets one key from text, as the environment does (strings raw, numbers
 * and booleans in TOML syntax).  Returns MV_OK, or MV_ERR with c untouched
 * and err set to "unknown key \"KEY\"" or "KEY: must be ...".
 */
int mvw_config_set(mvw_config_t *c, const char *dotted_key, const char *text,
    mv_err_t *err);

/*
 * Writes c as a commented TOML document (every key, in schema order, with
 * its description and range) that mvw_config_load reads back to the same
 * values, bit for bit.
 */
void mvw_config_print(const mvw_config_t *c, FILE *out);

#endif /* MVW_CONFIG_H */
