/*
 * main.c -- milvuso-worker's entry point: global options and dispatch.
 *
 *   milvuso-worker [--help | --version]
 *   milvuso-worker --config FILE --worker-type all|trainer|feature|drain
 *                  [...]
 *   milvuso-worker COMMAND [options]      (COMMAND --help for its options)
 *
 * Commands live in a table (worker.h); main() owns nothing but argv.  A
 * first argument that is one of the daemon's options (--config,
 * --worker-type, --foreground, --print-config) starts the daemon
 * (daemon.c) with the whole command line.
 *
 * setlocale() is never called, so the process stays in the "C" locale and
 * number parsing and printing (ours and cJSON's) use '.' everywhere.
 */
#include <stdio.h>
#include <string.h>

#include "worker.h"

static const mvw_command_t  commands[] = {
    { "snapshot", "build a snapshot from a JSONL catalogue or synthetic "
                  "data and publish it",
      mvw_cmd_snapshot, mvw_cmd_snapshot_usage },
    { "inspect",  "validate a snapshot and describe it",
      mvw_cmd_inspect, mvw_cmd_inspect_usage },
    { "train",    "train the model on an interactions file and publish "
                  "it",
      mvw_cmd_train, mvw_cmd_train_usage },
    { "eval",     "split, train and rank: P/R/NDCG/MAP/HR@K, coverage, "
                  "diversity, novelty against baselines",
      mvw_cmd_eval, mvw_cmd_eval_usage },
    { "topics",   "create the configured Kafka topics (idempotent)",
      mvw_cmd_topics, mvw_cmd_topics_usage },
};

static const char *const  daemon_options[] = {
    "--config", "--worker-type", "--foreground", "--print-config"
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))


static void
usage(FILE *out)
{
    fprintf(out,
            "usage: milvuso-worker --config FILE --worker-type "
            "all|trainer|feature|drain\n"
            "                      [--foreground] [--standby] [--print-config]\n"
            "       milvuso-worker COMMAND [options]\n"
            "       milvuso-worker --help | --version\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\n`milvuso-worker COMMAND --help` lists a command's "
            "options.\n"
            "exit status: 0 success, 1 failure, 2 bad command line\n");
}


int
main(int argc, char **argv)
{
    const char  *cmd;

    if (argc < 2) {
        usage(stderr);
        return MVW_EXIT_USAGE;
    }

    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0
        || strcmp(cmd, "help") == 0)
    {
        usage(stdout);
        return MVW_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("milvuso-worker %s\n", MVW_VERSION);
        return MVW_EXIT_OK;
    }

    for (size_t i = 0; i < sizeof(daemon_options) / sizeof(char *); i++) {
        size_t  len = strlen(daemon_options[i]);

        if (strncmp(cmd, daemon_options[i], len) == 0
            && (cmd[len] == '\0' || cmd[len] == '='))
        {
            return mvw_cmd_daemon(argc, argv);
        }
    }

    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }

    fprintf(stderr, "milvuso-worker: unknown %s '%s'\n\n",
            cmd[0] == '-' ? "option" : "command", cmd);
    usage(stderr);
    return MVW_EXIT_USAGE;
}
