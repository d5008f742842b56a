/*
 * source_actlog.c -- the embedded action log as a worker source (see
 * source.h): a thin adapter over shared/actlog.h's tailing reader.
 *
 * The position stored in a snapshot is the reader's position after the
 * last record handed out, packed into one offset of stream "actlog",
 * partition 0.  The reader itself skips (and counts) damaged bytes, waits
 * for records still being written, and follows segment rotation.
 */
#include <stdlib.h>
#include <string.h>

#include "actlog.h"
#include "sources/source.h"

typedef struct {
    mvw_source_t         base;        /* first: the public part */
    mv_actlog_reader_t  *reader;
    uint64_t             records;
} actlog_source_t;


static int
actlog_next(mvw_source_t *s, mvw_record_t *rec, mv_err_t *err)
{
    actlog_source_t     *a = (actlog_source_t *) s;
    mv_actlog_record_t   r;
    int                  rc;

    rc = mv_actlog_next(a->reader, &r, err);
    if (rc != 1) {
        return rc;
    }

    rec->type = r.type;
    rec->payload = r.payload;
    rec->len = r.len;
    a->records++;
    return 1;
}


static size_t
actlog_positions(const mvw_source_t *s, mv_stream_pos_t *out, size_t cap)
{
    const actlog_source_t  *a = (const actlog_source_t *) s;
    mv_actlog_pos_t         pos = mv_actlog_reader_pos(a->reader);

    /* nothing read yet from "the oldest segment": no position to store
       (a reopen without one starts at the oldest segment again) */
    if (cap == 0 || pos.segment == 0) {
        return 0;
    }

    memset(out, 0, sizeof(*out));
    memcpy(out->stream, MV_ACTLOG_STREAM_NAME,
           sizeof(MV_ACTLOG_STREAM_NAME));
    out->partition = 0;
    out->offset = mv_actlog_pos_pack(pos);
    return 1;
}


static void
actlog_stats(const mvw_source_t *s, mvw_source_stats_t *st)
{
    const actlog_source_t  *a = (const actlog_source_t *) s;
    mv_actlog_stats_t       as;

    mv_actlog_reader_stats(a->reader, &as);
    memset(st, 0, sizeof(*st));
    st->records = a->records;
    st->skipped_bytes = as.skipped_bytes;
    st->skipped_runs = as.skipped_runs;
}


static void
actlog_free(mvw_source_t *s)
{
    actlog_source_t  *a = (actlog_source_t *) s;

    mv_actlog_reader_free(a->reader);
    free(a);
}


static const mvw_source_ops_t  actlog_ops = {
    "actlog", actlog_next, actlog_positions, actlog_stats, actlog_free,
    NULL
};


mvw_source_t *
mvw_source_actlog_open(const char *dir, const mv_stream_pos_t *positions,
    size_t n, mv_err_t *err)
{
    actlog_source_t  *a;
    mv_actlog_pos_t   start = { 0, 0 };

    for (size_t i = 0; i < n; i++) {
        if (strcmp(positions[i].stream, MV_ACTLOG_STREAM_NAME) == 0
            && positions[i].partition == 0)
        {
            start = mv_actlog_pos_unpack(positions[i].offset);
            if (start.segment == 0) {
                mv_err_set(err, "stored actlog position has segment 0");
                return NULL;
            }
        }
    }

    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        mv_err_set(err, "out of memory");
        return NULL;
    }

    a->reader = mv_actlog_reader_new(dir, start, err);
    if (a->reader == NULL) {
        free(a);
        return NULL;
    }

    a->base.ops = &actlog_ops;
    return &a->base;
}
