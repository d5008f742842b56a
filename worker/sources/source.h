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
 * The snapshot is the truth: whatever a transport remembers by itself
 * (Kafka's committed offsets) is only told, after a snapshot is durable,
 * through the optional durable() op, for monitoring.
 *
 * Implementations:
 *   actlog   the embedded action log that nginx appends to (shared/actlog.h):
 *            one stream "actlog", partition 0, offset = packed segment and
 *            byte offset.  It registers as a consumer of the log and, in
 *            durable(), removes the segments retention lets go.
 *            (source_actlog.c)
 *   kafka    a consumer in [kafka] group_id of log_topic (actions), or of
 *            training_topic (training examples, when a feature worker
 *            writes them), and feature_topic (items): one stream per topic
 *            and partition, stream = the topic's name, offset = the next
 *            Kafka offset to read.  Record = the same canonical JSON
 *            payload the action log carries (or a training example); the
 *            topic says its type.  (source_kafka.c)
 *
 * A source is used by one thread.
 */
#ifndef MVW_SOURCE_H
#define MVW_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "actlog.h"
#include "cli/logging.h"
#include "mv_common.h"
#include "snapshot.h"

/* The longest payload a source hands out (what the action log takes);
   a larger Kafka record is skipped and counted. */
#define MVW_SOURCE_RECORD_MAX  (1u << 20)

typedef struct mvw_record {
    uint16_t      type;        /* MV_RECORD_ACTION, MV_RECORD_ITEM,
                                  MV_RECORD_EXAMPLE */
    const char   *payload;     /* valid until the next next() call */
    size_t        len;
} mvw_record_t;

typedef struct mvw_source_stats {
    uint64_t  records;         /* handed out since open */
    uint64_t  skipped_bytes;   /* damaged or torn bytes skipped */
    uint64_t  skipped_runs;
    uint64_t  skipped_records; /* whole records not handed out: Kafka
                                  tombstones (no value), oversized values */
    uint64_t  errors;          /* transport errors seen (broker down ...) */
    uint64_t  eofs;            /* Kafka: partition ends reached */
    uint64_t  removed_segments;  /* action log: segments removed by
                                    retention (durable()) */
    uint64_t  removed_bytes;     /* and their bytes */
    uint32_t  fatal;             /* the transport gave up on its handle
                                    (Kafka: a fenced static member): the
                                    caller reopens it at positions() */
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
    /* Optional (NULL: nothing to do).  Called once a snapshot holding
       positions[0 .. n) is durable; the source may tell its transport
       (Kafka: an asynchronous offset commit, for lag monitoring; the
       action log: its registration, then retention).  It never waits on
       the network (local file work is fine) and cannot fail: problems
       are logged and counted, and the snapshot stays the truth. */
    void       (*durable)(mvw_source_t *s, const mv_stream_pos_t *positions,
                          size_t n);
    /* Optional (NULL: unknown).  How far the source is behind its
       transport, from what it knows locally (never a network round trip):
       records (Kafka) and bytes (action log) not handed out yet, each -1
       when unknown. */
    void       (*backlog)(const mvw_source_t *s, int64_t *records,
                          int64_t *bytes);
} mvw_source_ops_t;

struct mvw_source {
    const mvw_source_ops_t  *ops;
};

/* What the action-log source reads, and the retention it applies. */
typedef struct mvw_actlog_params {
    const char             *dir;        /* the log (need not exist yet) */
    /* the consumer it registers as (actlog.h, "Consumers"); NULL or "":
       a plain reader that neither registers nor removes anything */
    const char             *consumer;
    const char             *note;       /* who it is, in the registration */
    unsigned                keep;       /* snapshot generations kept (>= 1) */
    mv_actlog_retention_t   retention;
    const mvw_log_t        *log;        /* retention's messages; NULL: none */
} mvw_actlog_params_t;

/*
 * Opens the embedded action log p->dir at the "actlog" position among
 * positions[0 .. n) -- or at the oldest segment's start when there is none
 * (a first start).  Positions of other streams are ignored.
 *
 * With p->consumer, the source keeps the log for itself and trims it:
 *   - it registers at once at segment 0 (holding the whole log: the
 *     snapshot generations kept on disk, which it may have to fall back
 *     to, hold positions it does not know), before its reader lists the
 *     directory;
 *   - durable() registers the oldest position among the last p->keep
 *     durable ones (the generations on disk), then calls mv_actlog_trim
 *     with p->retention; what it removed is counted in stats and logged;
 *   - while idle, it rewrites its registration often enough that it never
 *     expires while the trainer runs.
 * A registration that fails (a read-only log directory ...) is logged,
 * rate-limited, and tried again; the source reads on, and removes nothing
 * until it is registered.  Returns NULL with err set.
 */
mvw_source_t *mvw_source_actlog_open(const mvw_actlog_params_t *p,
    const mv_stream_pos_t *positions, size_t n, mv_err_t *err);

/* What the Kafka source consumes, and how (all strings are copied). */
typedef struct mvw_kafka_params {
    const char         *brokers;        /* bootstrap.servers */
    const char         *group_id;
    const char         *log_topic;      /* records are MV_RECORD_ACTION */
    /* 1: log_topic is a training_topic, its records MV_RECORD_EXAMPLE
       (written in transactions: only committed ones are read) */
    int                 examples;
    const char         *feature_topic;  /* MV_RECORD_ITEM; NULL or "": none */
    /* group.instance.id: static membership, so that a restarted worker
       (even after kill -9) takes its partitions back at once instead of
       after the dead member's session timeout; NULL or "": dynamic */
    const char         *instance_id;
    const mvw_log_t    *log;            /* librdkafka's errors; NULL: none */
    /* more librdkafka properties, "name=value", NULL-terminated (tests:
       shorter session and retry timeouts); NULL: none */
    const char *const  *extra;
} mvw_kafka_params_t;

/*
 * Opens a Kafka consumer of p's topics in group p->group_id.  Nothing is
 * contacted yet: a broker that is down does not fail the open, next()
 * reports it and consumes once it is back.  When the group assigns a
 * partition, reading starts at its position among positions[0 .. n) (the
 * snapshot's: stream = topic name) or, when there is none, at the
 * partition's beginning; Kafka's committed offsets are never used.
 * Positions of other streams are ignored.
 *
 * Offsets are never committed by themselves: durable() commits the
 * positions of a durable snapshot (asynchronously).
 *
 * next() polls without waiting: 1 with a record (type from its topic,
 * payload = the record's value), 0 when nothing is there, MV_ERR on a
 * transport error (counted; the source stays usable and recovers by
 * itself).  Only records of committed transactions are read
 * (isolation.level read_committed).  Records without a value or larger
 * than MVW_SOURCE_RECORD_MAX are skipped and counted
 * (stats.skipped_records).  positions() lists one position per partition
 * it has read from or was given.
 *
 * Returns NULL with err set when a topic name is empty, longer than
 * MV_SNAPSHOT_STREAM_MAX bytes or not a Kafka name, both topics are the
 * same, or librdkafka refuses the configuration.
 */
mvw_source_t *mvw_source_kafka_open(const mvw_kafka_params_t *p,
    const mv_stream_pos_t *positions, size_t n, mv_err_t *err);

/*
 * Checks a Kafka topic name as a source stream: 1 .. MV_SNAPSHOT_STREAM_MAX
 * bytes of [A-Za-z0-9._-], not "." or "..".  Returns MV_OK, or MV_ERR with
 * the reason in err (without the name).
 */
int mvw_kafka_topic_check(const char *topic, mv_err_t *err);

/*
 * Checks a broker list: host:port[,host:port...], host a name, an IPv4
 * address or an [IPv6] one, port 1..65535.  Returns MV_OK, or MV_ERR
 * with the reason (naming the bad element) in err.
 */
int mvw_kafka_brokers_check(const char *brokers, mv_err_t *err);

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

static inline void
mvw_source_durable(mvw_source_t *s, const mv_stream_pos_t *positions,
    size_t n)
{
    if (s->ops->durable != NULL) {
        s->ops->durable(s, positions, n);
    }
}

/*
 * What is still to read, as far as the source can tell without waiting:
 *   *records  Kafka: over the assigned partitions, the high watermark
 *             librdkafka last saw (a fetch response's; with
 *             read_committed the last stable offset, so transaction
 *             markers count as records) minus the consumer's position;
 *             -1 when a partition's watermark or position is not known
 *             yet, or nothing is assigned.  The action log: -1 (its
 *             records are not counted without reading them).
 *   *bytes    the action log: the bytes of its segments past the
 *             reader's position (all of them when it has read nothing);
 *             -1 when the directory cannot be read.  Kafka: -1.
 */
static inline void
mvw_source_backlog(const mvw_source_t *s, int64_t *records, int64_t *bytes)
{
    *records = -1;
    *bytes = -1;
    if (s->ops->backlog != NULL) {
        s->ops->backlog(s, records, bytes);
    }
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
