/*
 * source.h -- the worker's transport: where the stream of accepted events
 * (POST /actions, POST /items) comes from, behind one small interface.
 *
 * A source hands out records one at a time, in stream order, each with its
 * type and payload (canonical JSON, see shared/events.h).  It also tells,
 * as a list of mv_stream_pos_t, how far it has been consumed: the trainer
 * stores that list in every snapshot it publishes, and a source opened
 * again with the same list resumes exactly after the last record the
 * snapshot includes.  That pairing (model and positions in one atomic file)
 * is what gives "nothing lost, nothing applied twice" across crashes.
 *
 * Implementations:
 *   actlog   the embedded action log that nginx appends to (shared/actlog.h):
 *            one stream "actlog", partition 0, offset = packed segment and
 *            byte offset.  (source_actlog.c)
 *   kafka    consumer of the user_actions and features topics: its own
 *            issue; it plugs in here as one more mvw_source_ops_t.
 *
 * A source is used by one thread.
 */
#ifndef MVW_SOURCE_H
#define MVW_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"
#include "snapshot.h"

typedef struct mvw_record {
    uint16_t      type;        /* MV_RECORD_ACTION, MV_RECORD_ITEM */
    const char   *payload;     /* valid until the next next() call */
    size_t        len;
} mvw_record_t;

typedef struct mvw_source_stats {
    uint64_t  records;         /* handed out since open */
    uint64_t  skipped_bytes;   /* damaged or torn bytes skipped */
    uint64_t  skipped_runs;
} mvw_source_stats_t;

typedef struct mvw_source mvw_source_t;

typedef struct mvw_source_ops {
    const char  *name;
    /* 1 = rec filled, 0 = nothing available now, MV_ERR = error (the
       source stays usable: the caller logs and retries later). */
    int        (*next)(mvw_source_t *s, mvw_record_t *rec, mv_err_t *err);
    /* Writes at most cap positions (after the last record handed out)
       into out and returns how many. */
    size_t     (*positions)(const mvw_source_t *s, mv_stream_pos_t *out,
                            size_t cap);
    void       (*stats)(const mvw_source_t *s, mvw_source_stats_t *st);
    void       (*free)(mvw_source_t *s);
} mvw_source_ops_t;

struct mvw_source {
    const mvw_source_ops_t  *ops;
};

/*
 * Opens the embedded action log in dir (which need not exist yet) at the
 * "actlog" position among positions[0 .. n) -- or at the oldest segment's
 * start when there is none (a first start).  Positions of other streams
 * are ignored.  Returns NULL with err set.
 */
mvw_source_t *mvw_source_actlog_open(const char *dir,
    const mv_stream_pos_t *positions, size_t n, mv_err_t *err);

/* Convenience wrappers over s->ops. */
static inline int
mvw_source_next(mvw_source_t *s, mvw_record_t *rec, mv_err_t *err)
{
    return s->ops->next(s, rec, err);
}

static inline size_t
mvw_source_positions(const mvw_source_t *s, mv_stream_pos_t *out,
    size_t cap)
{
    return s->ops->positions(s, out, cap);
}

static inline void
mvw_source_stats(const mvw_source_t *s, mvw_source_stats_t *st)
{
    s->ops->stats(s, st);
}

/* Frees s (may be NULL). */
static inline void
mvw_source_free(mvw_source_t *s)
{
    if (s != NULL) {
        s->ops->free(s);
    }
}

#endif /* MVW_SOURCE_H */
