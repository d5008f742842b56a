/*
 * worker.h -- what the parts of milvuso-worker share: the subcommand table,
 * the exit-code convention and strict command-line number parsing.
 *
 * main() only dispatches: it looks the first argument up in a table of
 * mvw_command_t and hands the remaining arguments (argv[0] = the command's
 * name) to its run function, which parses its own options with getopt_long.
 * A new mode (the trainer and feature daemons) is one more table row.
 *
 * Exit codes, the same for every command: 0 success, 1 the work failed (bad
 * input, invalid snapshot, I/O error), 2 the command line is wrong (usage
 * printed on stderr).
 *
 * The folders follow the data, from where events come in to where results
 * go out (a file includes another folder's header by its path from worker/,
 * as "model/mf.h"; the Makefile builds the .c files of every folder but
 * tests/ and fuzz/):
 *
 *   sources/   where events come from: the source interface (source.h),
 *              the embedded action-log reader and the Kafka consumer
 *              (librdkafka; the only part of the worker that links it,
 *              with cli/cmd_topics.c).
 *   feature/   the feature worker: the item table and the join of an
 *              action with its item's features into a training example
 *              (join.c), and its Kafka pipeline (pipeline.c).
 *   drain/     the drain: the action log nginx spooled to while Kafka was
 *              away, produced into Kafka in transactions (drain.c).
 *   model/     what learns from them: matrix factorisation (mf), its
 *              optimisers, initialisers, the negative sampler, the learner
 *              (one example, one epoch) and the online trainer that owns
 *              the catalogue, the model and the kept HNSW graph.
 *   publish/   where results go: the trainer's model as a snapshot
 *              generation; Redis, PostgreSQL and Milvus sinks come next.
 *   data/      what is read and measured offline: the growable id map,
 *              interaction datasets (formats, splits, matrix views), the
 *              item/user catalogue, synthetic data and evaluation.
 *   config/    the TOML reader and the worker's configuration on top.
 *   cli/       the command line and the daemon: main, the subcommands
 *              (cmd_*: snapshot, inspect, train, eval, and topics, which
 *              creates the Kafka topics), the offline helpers they share,
 *              logging.
 *   tests/     cmocka programs (test_*.c) and the command-line checks.
 *   fuzz/      libFuzzer targets for the parsers of outside bytes.
 */
#ifndef MVW_WORKER_H
#define MVW_WORKER_H

#include <stdint.h>
#include <stdio.h>

#define MVW_EXIT_OK     0
#define MVW_EXIT_FAIL   1
#define MVW_EXIT_USAGE  2

#define MVW_VERSION     "0.1.0"

/* A number macro as a string literal, for messages: "1.."
   MVW_STRINGIFY(MV_DIM_MAX) is "1..4096". */
#define MVW_STRINGIFY(x)   MVW_STRINGIFY_(x)
#define MVW_STRINGIFY_(x)  #x

typedef struct mvw_command {
    const char  *name;
    const char  *summary;                    /* one line for the usage */
    int        (*run)(int argc, char **argv); /* returns an exit code */
    void       (*usage)(FILE *out);           /* the command's options */
} mvw_command_t;

/* `milvuso-worker snapshot`: build and publish a snapshot (cmd_snapshot.c). */
int mvw_cmd_snapshot(int argc, char **argv);
void mvw_cmd_snapshot_usage(FILE *out);

/* `milvuso-worker inspect`: check and describe a snapshot (cmd_inspect.c). */
int mvw_cmd_inspect(int argc, char **argv);
void mvw_cmd_inspect_usage(FILE *out);

/* `milvuso-worker train`: train on a file and publish (cmd_train.c). */
int mvw_cmd_train(int argc, char **argv);
void mvw_cmd_train_usage(FILE *out);

/* `milvuso-worker eval`: offline evaluation (cmd_eval.c). */
int mvw_cmd_eval(int argc, char **argv);
void mvw_cmd_eval_usage(FILE *out);

/* `milvuso-worker topics`: create the Kafka topics (cmd_topics.c). */
int mvw_cmd_topics(int argc, char **argv);
void mvw_cmd_topics_usage(FILE *out);

/* The daemon: --config FILE --worker-type T (daemon.c).  argv[0] is the
   program; options start at argv[1]. */
int mvw_cmd_daemon(int argc, char **argv);
void mvw_cmd_daemon_usage(FILE *out);

/*
 * Parses s as a whole decimal number in [min, max] (no sign, no spaces, no
 * trailing characters).  Returns 0 and sets *out, or -1 leaving *out alone.
 */
int mvw_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* mvw_parse_u64 for 32-bit values. */
int mvw_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);

/*
 * Prints "milvuso-worker CMD: " and fmt (one %s, filled with arg) on stderr,
 * then the command's usage; returns MVW_EXIT_USAGE.
 */
int mvw_usage_error(const char *cmd, void (*usage)(FILE *out),
    const char *fmt, const char *arg);

#endif /* MVW_WORKER_H */
