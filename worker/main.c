/*
 * main.c -- milvuso-worker's entry point: global options and dispatch.
 *
 *   milvuso-worker [--help | --version]
 *   milvuso-worker COMMAND [options]      (COMMAND --help for its options)
 *
 * Commands live in a table (worker.h); main() owns nothing but argv.  The
 * daemon modes (--worker-type trainer|feature|all) will be one more entry
 * when they exist; until then the usage lists only what is built.
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
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))


static void
usage(FILE *out)
{
    fprintf(out,
            "usage: milvuso-worker COMMAND [options]\n"
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
