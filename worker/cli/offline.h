/*
 * offline.h -- what the offline commands (`train`, `eval`) share with each
 * other and with the daemon: the mapping from the configuration to the
 * trainer's parameters, the common options (data file, format,
 * configuration file, --set overrides), and the generation a command that
 * publishes (`snapshot`, `train`) gives its output.
 *
 * Hyper-parameters come from one place for every mode: the [training] and
 * [recommendation] keys of the configuration (file, then environment, then
 * each --set KEY=VALUE in order), so an offline evaluation measures
 * exactly the model the daemon would train with the same file.
 */
#ifndef MVW_OFFLINE_H
#define MVW_OFFLINE_H

#include <stdio.h>

#include "config/config.h"
#include "data/dataset.h"
#include "model/trainer.h"

#define MVW_OFFLINE_MAX_SETS  64

typedef struct mvw_offline_opts {
    const char    *data;             /* --data FILE (or BASE for files:) */
    mvw_format_t   format;           /* --format, default movielens */
    int            weight_from_rating;
    const char    *config;           /* --config FILE or NULL */
    const char    *sets[MVW_OFFLINE_MAX_SETS];    /* --set KEY=VALUE */
    size_t         n_sets;
} mvw_offline_opts_t;

/* Maps c onto p (starting from mvw_trainer_params_default). */
void mvw_trainer_params_from_config(const mvw_config_t *c,
    mvw_trainer_params_t *p);

/*
 * Handles one of the shared options (getopt long-option code from the
 * MVW_OFFLINE_OPT_* range, and its argument).  Returns 0 when handled, or
 * prints the problem (prefixed with cmd) and returns MVW_EXIT_USAGE --
 * also for any other code (getopt's '?'), so a command's default case
 * can hand everything it does not know here.
 */
enum {
    MVW_OFFLINE_OPT_DATA = 1000,
    MVW_OFFLINE_OPT_FORMAT,
    MVW_OFFLINE_OPT_RATING,
    MVW_OFFLINE_OPT_CONFIG,
    MVW_OFFLINE_OPT_SET
};

#define MVW_OFFLINE_LONGOPTS                                                 \
    { "data",   required_argument, NULL, MVW_OFFLINE_OPT_DATA },             \
    { "format", required_argument, NULL, MVW_OFFLINE_OPT_FORMAT },           \
    { "weight-from-rating", no_argument, NULL, MVW_OFFLINE_OPT_RATING },     \
    { "config", required_argument, NULL, MVW_OFFLINE_OPT_CONFIG },           \
    { "set",    required_argument, NULL, MVW_OFFLINE_OPT_SET }

#define MVW_OFFLINE_USAGE                                                    \
    "  --data FILE        interactions (one positive each)\n"                \
    "  --format F         movielens (default) | csv | tsv | jsonl\n"         \
    "  --weight-from-rating  movielens: weight = rating, not 1\n"            \
    "  --config FILE      TOML configuration ([training] and\n"              \
    "                     [recommendation] keys); MILVUSO_* variables\n"     \
    "                     override it\n"                                     \
    "  --set KEY=VALUE    override one key (repeatable), e.g.\n"             \
    "                     --set training.epochs=30\n"

int mvw_offline_opt(mvw_offline_opts_t *o, int code, const char *arg,
    const char *cmd, void (*usage)(FILE *out));

/*
 * Loads the configuration: defaults, the --config file, the environment,
 * then the --set overrides.  Returns MV_OK or MV_ERR with err set.
 */
int mvw_offline_config(const mvw_offline_opts_t *o, mvw_config_t *c,
    mv_err_t *err);

/*
 * Fills lo from the options (format, weight_from_rating) and the
 * configuration's action weights, copied into weights (MV_ACTION_TYPES
 * floats, which lo then points at).
 */
void mvw_offline_load_opts(const mvw_offline_opts_t *o,
    const mvw_config_t *c, float *weights, mvw_load_opts_t *lo);

/*
 * Settles where an offline command publishes: creates dir when it is
 * missing, then chooses the generation: requested when it is newer than
 * every snapshot file in dir, one more than the newest when requested is 0.
 * No published file is ever replaced, whatever `current` names.  Returns
 * MV_OK with *generation set, or MV_ERR with err set (mkdir failed, dir
 * unreadable, requested not newer, generations exhausted).
 */
int mvw_offline_out_generation(const char *dir, uint64_t requested,
    uint64_t *generation, mv_err_t *err);

#endif /* MVW_OFFLINE_H */
