/*
 * actlog_tool.c -- what check-retention.sh needs of the action log without
 * nginx (a test helper, not part of milvuso-worker):
 *
 *   actlog_tool append DIR SEGMENT_BYTES
 *       appends one record per stdin line "action JSON" or "item JSON",
 *       rotating at SEGMENT_BYTES (any size: nginx's directive takes 4k
 *       and up), and prints "SEGMENT OFFSET" of each record it appended.
 *       One writer, so a local segment number stands in for the one nginx
 *       keeps in shared memory; it starts at the newest segment present.
 *   actlog_tool register DIR NAME SEGMENT AGE_MS
 *       registers consumer NAME at (SEGMENT, 0), written AGE_MS ago.
 *
 * Exit status 0, or 1 with the reason on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actlog.h"


static int
fail(const char *what, const char *why)
{
    fprintf(stderr, "actlog_tool: %s: %s\n", what, why);
    return 1;
}


static int
append(const char *dir, const char *size)
{
    mv_actlog_writer_t  *w;
    mv_actlog_pos_t      pos;
    mv_err_t             err;
    uint64_t             seq = 0;
    char                 line[1 << 16];
    size_t               len;
    uint16_t             type;
    char                *json;

    w = mv_actlog_writer_new(dir, strtoull(size, NULL, 10), 0, &err);
    if (w == NULL) {
        return fail(dir, err.msg);
    }
    while (fgets(line, sizeof(line), stdin) != NULL) {
        len = strcspn(line, "\n");
        line[len] = '\0';
        if (strncmp(line, "action ", 7) == 0) {
            type = MV_RECORD_ACTION;
            json = line + 7;
        } else if (strncmp(line, "item ", 5) == 0) {
            type = MV_RECORD_ITEM;
            json = line + 5;
        } else {
            mv_actlog_writer_free(w);
            return fail(line, "not \"action JSON\" or \"item JSON\"");
        }
        if (mv_actlog_append(w, &seq, type, json, strlen(json), &pos, &err)
            != MV_OK)
        {
            mv_actlog_writer_free(w);
            return fail(dir, err.msg);
        }
        printf("%llu %llu\n", (unsigned long long) pos.segment,
               (unsigned long long) pos.offset);
    }
    mv_actlog_writer_free(w);
    return fflush(stdout) == 0 ? 0 : 1;
}


static int
register_consumer(char **argv)
{
    mv_actlog_consumer_t  c;
    mv_err_t              err;

    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "%s", argv[3]);
    snprintf(c.note, sizeof(c.note), "check-retention");
    c.pos.segment = strtoull(argv[4], NULL, 10);
    c.updated_ms = mv_clock_realtime_ms() - strtoll(argv[5], NULL, 10);
    if (mv_actlog_register(argv[2], &c, 1000, &err) != MV_OK) {
        return fail(argv[3], err.msg);
    }
    return 0;
}


int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "append") == 0) {
        return append(argv[2], argv[3]);
    }
    if (argc == 6 && strcmp(argv[1], "register") == 0) {
        return register_consumer(argv);
    }
    fprintf(stderr, "usage: actlog_tool append DIR SEGMENT_BYTES < lines\n"
                    "       actlog_tool register DIR NAME SEGMENT AGE_MS\n");
    return 2;
}
