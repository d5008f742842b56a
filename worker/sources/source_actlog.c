/*
 * source_actlog.c -- the embedded action log as a worker source (see
 * source.h): a thin adapter over shared/actlog.h's tailing reader, plus
 * the log's retention on the consumer side.
 *
 * The position stored in a snapshot is the reader's position after the
 * last record handed out, packed into one offset of stream "actlog",
 * partition 0.  The reader itself skips (and counts) damaged bytes, waits
 * for records still being written, and follows segment rotation.
 *
 * Retention (actlog.h, "Retention").  The source registers as a consumer
 * of the log, and what it registers is the oldest position it could have
 * to read from again: the trainer keeps `keep` snapshot generations and
 * falls back to an older one when the newest is unusable (or an operator
 * points `current` back at one), so the position to keep is that of the
 * oldest generation on disk, not of the newest.  The source remembers the
 * positions of the last `keep` durable generations in a ring; the ring
 * starts full of zeros ("before everything"), since the generations a
 * restarted trainer finds on disk hold positions it has not seen, and
 * after `keep` publishes it holds exactly the generations on disk.  So a
 * restart trims nothing until `keep` generations were published since.
 *
 * After each durable publish: register the ring's minimum, then trim.  A
 * trim only ever removes what every registered consumer is past, so doing
 * it here after our own registration is safe for any number of trainers
 * on one log (each trims for all).  While the stream is idle nothing is
 * published; the registration is rewritten anyway every quarter of the
 * expiry (at most hourly) so that a running trainer never expires.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actlog.h"
#include "sources/source.h"

#define REGISTER_WAIT_MS    5000     /* another trim holds the lock */
#define ERROR_LOG_MS        60000
#define REFRESH_MAX_MS      (3600 * 1000LL)
#define REFRESH_MIN_MS      1000

typedef struct {
    mvw_source_t            base;        /* first: the public part */
    mv_actlog_reader_t     *reader;
    uint64_t                records;

    /* retention; consumer[0] == '\0': none */
    char                   *dir;
    char                    consumer[MV_ACTLOG_CONSUMER_NAME_MAX + 1];
    char                    note[MV_ACTLOG_CONSUMER_NOTE_MAX + 1];
    mv_actlog_retention_t   retention;
    const mvw_log_t        *log;
    uint64_t               *kept;        /* packed positions, a ring */
    unsigned                keep;
    unsigned                next_slot;
    int                     registered;  /* the last attempt worked */
    int64_t                 registered_ms;
    int64_t                 refresh_ms;
    uint64_t                removed_segments;
    uint64_t                removed_bytes;
    mvw_log_limit_t         lim_register;
    mvw_log_limit_t         lim_trim;
    mvw_log_limit_t         lim_damaged;
} actlog_source_t;


/* ---- retention --------------------------------------------------------- */

static void
retention_log(const actlog_source_t *a, mvw_log_limit_t *lim,
    mvw_log_level_t level, const char *what, const char *detail)
{
    if (a->log != NULL) {
        mvw_log_every(a->log, lim, ERROR_LOG_MS, level, "action log %s: "
                      "%s: %s", a->dir, what, detail);
    }
}


/* Registers the oldest position of the ring, written at now_ms. */
static int
actlog_register(actlog_source_t *a, int64_t now_ms)
{
    mv_actlog_consumer_t  c;
    mv_err_t              err;
    uint64_t              low = a->kept[0];

    for (unsigned i = 1; i < a->keep; i++) {
        low = a->kept[i] < low ? a->kept[i] : low;
    }

    memset(&c, 0, sizeof(c));
    memcpy(c.name, a->consumer, sizeof(c.name));
    memcpy(c.note, a->note, sizeof(c.note));
    c.pos = mv_actlog_pos_unpack(low);
    c.updated_ms = now_ms;

    a->registered = mv_actlog_register(a->dir, &c, REGISTER_WAIT_MS, &err)
                    == MV_OK;
    if (!a->registered) {
        retention_log(a, &a->lim_register, MVW_LOG_ERROR, "cannot register "
                      "this trainer as a consumer (nothing is removed until "
                      "it can)", err.msg);
        return MV_ERR;
    }
    a->registered_ms = now_ms;
    return MV_OK;
}


/* What stopped a trim, for the log line. */
static void
trim_stop_text(const mv_actlog_trim_report_t *rep, char *buf, size_t len)
{
    switch (rep->stop) {
    case MV_ACTLOG_STOP_CONSUMER:
        snprintf(buf, len, "held by consumer %s at segment %llu",
                 rep->held_by, (unsigned long long) rep->floor.segment);
        break;
    case MV_ACTLOG_STOP_RETENTION:
        snprintf(buf, len, "the rest is within the retention");
        break;
    default:
        snprintf(buf, len, "the newest segment stays");
        break;
    }
}


static void
actlog_trim(actlog_source_t *a, int64_t now_ms)
{
    mv_actlog_trim_report_t  rep;
    mv_err_t                 err;
    char                     why[MV_ACTLOG_CONSUMER_NAME_MAX
                                 + MV_ACTLOG_CONSUMER_NOTE_MAX + 32];
    int                      rc;

    rc = mv_actlog_trim(a->dir, &a->retention, now_ms, &rep, &err);
    a->removed_segments += rep.removed_segments;
    a->removed_bytes += rep.removed_bytes;

    if (rc != MV_OK) {
        retention_log(a, &a->lim_trim, MVW_LOG_ERROR, "trimming failed",
                      err.msg);
    }
    if (rep.expired > 0 && a->log != NULL) {
        mvw_log(a->log, MVW_LOG_WARN, "action log %s: %u consumer "
                "registration(s) not updated for %.0f s expired and were "
                "removed (%s first); they no longer hold segments back",
                a->dir, rep.expired, (double) a->retention.expire_ms / 1000,
                rep.expired_name);
    }
    if (rep.damaged > 0) {
        snprintf(why, sizeof(why), "%s/%s: %s", MV_ACTLOG_CONSUMERS_DIR,
                 rep.damaged_name, rep.damaged_why);
        retention_log(a, &a->lim_damaged, MVW_LOG_WARN, "a damaged consumer "
                      "registration holds the whole log until it is "
                      "removed or expires", why);
    }
    if (rep.removed_segments > 0 && a->log != NULL) {
        trim_stop_text(&rep, why, sizeof(why));
        mvw_log(a->log, MVW_LOG_INFO, "action log %s: removed %llu "
                "segment(s), %llu bytes; %llu segment(s), %llu bytes left "
                "(%s)", a->dir, (unsigned long long) rep.removed_segments,
                (unsigned long long) rep.removed_bytes,
                (unsigned long long) rep.left.segments,
                (unsigned long long) rep.left.bytes, why);
    }
}


static void
actlog_durable(mvw_source_t *s, const mv_stream_pos_t *positions, size_t n)
{
    actlog_source_t  *a = (actlog_source_t *) s;
    int64_t           now = mv_clock_realtime_ms();
    size_t            i;

    if (a->consumer[0] == '\0') {
        return;
    }
    for (i = 0; i < n; i++) {
        if (strcmp(positions[i].stream, MV_ACTLOG_STREAM_NAME) == 0
            && positions[i].partition == 0)
        {
            break;
        }
    }
    if (i == n) {
        return;
    }

    a->kept[a->next_slot] = positions[i].offset;
    a->next_slot = (a->next_slot + 1) % a->keep;

    if (actlog_register(a, now) == MV_OK) {
        actlog_trim(a, now);
    }
}


/* ---- the source -------------------------------------------------------- */

static int
actlog_next(mvw_source_t *s, mvw_record_t *rec, mv_err_t *err)
{
    actlog_source_t     *a = (actlog_source_t *) s;
    mv_actlog_record_t   r;
    int64_t              now;
    int                  rc;

    rc = mv_actlog_next(a->reader, &r, err);
    if (rc != 1) {
        /* idle: keep the registration fresh (or try it again) */
        if (rc == 0 && a->consumer[0] != '\0') {
            now = mv_clock_realtime_ms();
            if (now - a->registered_ms >= a->refresh_ms) {
                a->registered_ms = now;      /* a failure waits as long */
                (void) actlog_register(a, now);
            }
        }
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
    st->removed_segments = a->removed_segments;
    st->removed_bytes = a->removed_bytes;
}


static void
actlog_free(mvw_source_t *s)
{
    actlog_source_t  *a = (actlog_source_t *) s;

    mv_actlog_reader_free(a->reader);
    free(a->kept);
    free(a->dir);
    free(a);
}


/* The bytes of the log past the reader (records: not counted). */
static void
actlog_backlog(const mvw_source_t *s, int64_t *records, int64_t *bytes)
{
    const actlog_source_t  *a = (const actlog_source_t *) s;
    uint64_t                b;
    mv_err_t                err;

    *records = -1;
    *bytes = -1;
    if (mv_actlog_bytes_after(a->dir, mv_actlog_reader_pos(a->reader), &b,
                              &err) == MV_OK)
    {
        *bytes = b > INT64_MAX ? INT64_MAX : (int64_t) b;
    }
}


static const mvw_source_ops_t  actlog_ops = {
    "actlog", actlog_next, actlog_positions, actlog_stats, actlog_free,
    actlog_durable, actlog_backlog
};


/* The retention part of p into a; MV_OK or MV_ERR (bad parameters). */
static int
actlog_retention_init(actlog_source_t *a, const mvw_actlog_params_t *p,
    mv_err_t *err)
{
    int64_t  refresh;

    if (p->consumer == NULL || p->consumer[0] == '\0') {
        return MV_OK;
    }
    if (!mv_actlog_consumer_name_ok(p->consumer) || p->keep == 0
        || (p->note != NULL && strlen(p->note) > MV_ACTLOG_CONSUMER_NOTE_MAX))
    {
        return mv_err_set(err, "bad action-log consumer \"%.80s\", note or "
                          "generations kept (%u)", p->consumer, p->keep);
    }
    memcpy(a->consumer, p->consumer, strlen(p->consumer) + 1);
    if (p->note != NULL) {
        memcpy(a->note, p->note, strlen(p->note) + 1);
    }
    a->retention = p->retention;
    a->log = p->log;
    a->keep = p->keep;
    a->kept = calloc(p->keep, sizeof(*a->kept));
    if (a->kept == NULL) {
        return mv_err_set(err, "out of memory");
    }

    refresh = p->retention.expire_ms / 4;
    a->refresh_ms = refresh <= 0 || refresh > REFRESH_MAX_MS
                    ? REFRESH_MAX_MS
                    : refresh < REFRESH_MIN_MS ? REFRESH_MIN_MS : refresh;

    /* before the reader lists the directory: see actlog.h */
    (void) actlog_register(a, mv_clock_realtime_ms());
    return MV_OK;
}


mvw_source_t *
mvw_source_actlog_open(const mvw_actlog_params_t *p,
    const mv_stream_pos_t *positions, size_t n, mv_err_t *err)
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

    if (p == NULL || p->dir == NULL || p->dir[0] == '\0') {
        mv_err_set(err, "no action log directory");
        return NULL;
    }

    a = calloc(1, sizeof(*a));
    if (a == NULL || (a->dir = strdup(p->dir)) == NULL) {
        free(a);
        mv_err_set(err, "out of memory");
        return NULL;
    }
    a->base.ops = &actlog_ops;

    if (actlog_retention_init(a, p, err) != MV_OK) {
        actlog_free(&a->base);
        return NULL;
    }

    a->reader = mv_actlog_reader_new(p->dir, start, err);
    if (a->reader == NULL) {
        actlog_free(&a->base);
        return NULL;
    }

    return &a->base;
}
