/*
 * daemon.c -- `milvuso-worker --config FILE --worker-type all|trainer|feature`:
 * the long-running worker that follows the action stream, trains, and
 * publishes snapshots (feature and drain run their own process:
 * daemon_feature.c, daemon_drain.c).
 *
 * One thread, one loop:
 *
 *   restore   newest valid snapshot in worker.snapshot_dir (`current`, or
 *             when that is unusable the newest snapshot-*.mvs that
 *             validates): model, catalogue, generation, stream positions
 *   open      the source (source.h) at those positions: the embedded
 *             action log (worker.action_log), or with [kafka] enabled a
 *             consumer of log_topic and feature_topic in group_id
 *   loop      read and apply records (at most training.batch_size or
 *             BATCH_MS at a time); publish when publish_every records are pending or
 *             publish_interval has passed with any pending; sleep
 *             poll_interval when the stream is idle
 *   stop      on SIGTERM / SIGINT: publish what is pending, write the
 *             metrics once more, exit 0
 *
 * Exactly once.  A snapshot holds the model and the stream position after
 * the last record the model includes, published atomically together.
 * After a crash (kill -9 at any moment) the restart resumes from the
 * newest published snapshot: records after its position were not in it,
 * so they are applied now, once; records before it are not read again.
 * Work done after the last publish is lost and redone, never doubled.
 *
 * One writer: the worker holds an exclusive flock on
 * snapshot_dir/.milvuso-worker.lock for its lifetime, so a second worker
 * on the same directory refuses to start instead of interleaving
 * generations.
 *
 * Standby (--standby): a second worker on the same snapshot directory
 * waits for that lock instead of refusing, checking every 100 ms.  It
 * holds nothing meanwhile: no model, no Kafka partition, no group
 * membership.  When the active worker dies (kill -9 included: the kernel
 * drops the lock with the process) it takes the lock, restores the newest
 * snapshot the active published, and opens the source at that snapshot's
 * positions, like any restart: nothing the snapshot holds is applied
 * again, nothing after it is skipped.  Over Kafka it joins the group with
 * the same static instance id (host + directory), so the dead member's
 * partitions come to it at once.  The directory is the unit: a standby on
 * another host needs the directory on storage whose flock both hosts see.
 *
 * After a publish the source is told the positions that are now durable
 * (mvw_source_durable): Kafka gets them as the group's committed offsets,
 * for lag monitoring only; the action log registers this trainer's
 * position as a consumer ("trainer-CRC", CRC of the snapshot directory's
 * real path) and removes the segments that retention lets go
 * (worker.action_log_retention*, sources/source_actlog.c).  The snapshot
 * stays the truth.
 *
 * Roles.  On the embedded action log the stream carries both item and
 * action records and there is no training_examples stream to hand
 * examples over, so the feature role (catalogue, popularity, joins) runs
 * inside the trainer: `all` and `trainer` are the same process here, and
 * `feature` alone is refused with that explanation.  Over Kafka the
 * trainer does the same today (it consumes the items topic itself); a
 * separate feature process handing examples over training_topic is a
 * later step, and `feature` is refused until then.
 *
 * Client retries: the trainer applies an action marked with a client
 * event id once (trainer.h); its set of ids is written beside each
 * snapshot and taken back on resume with the generation resumed from, so
 * a crash neither forgets an id the snapshot includes nor remembers one it
 * does not.  A missing or damaged set is a warning (an empty set, counted
 * in dedupe_state_lost_total), not a refusal to start.
 *
 * The worker's counters go to the log at every publish and, when
 * worker.metrics_file is set, to that file in Prometheus text format
 * (written to a temp file and renamed, so a scraper never reads half),
 * with the source's backlog and the lag of the published model
 * (daemon_metrics.c: how the trainer says it falls behind).
 *
 * The only process-wide state is the signal flag, as signal handlers need.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/daemon_drain.h"
#include "cli/daemon_feature.h"
#include "cli/daemon_metrics.h"
#include "cli/logging.h"
#include "cli/offline.h"
#include "cli/process.h"
#include "config/config.h"
#include "crc32c.h"
#include "mv_common.h"
#include "model/trainer.h"
#include "generation.h"
#include "publish/publish_batch.h"
#include "publish/publisher.h"
#include "publish/trainer_snapshot.h"
#include "snapshot.h"
#include "sources/source.h"
#include "worker.h"

#define BATCH_MS        50
#define METRICS_MS      5000
#define ERROR_LOG_MS    10000
#define PUBLISH_RETRY_MS 1000
#define STOP_COMPACTION_MS 30000

struct daemon;
static struct mvw_source *open_source(struct daemon *d,
    const mv_stream_pos_t *positions, size_t n, mv_err_t *err);

typedef struct daemon_opts {
    const char  *config;
    const char  *worker_type;
    int          foreground;
    int          print_config;
    int          standby;
} daemon_opts_t;

typedef struct daemon {
    mvw_config_t          cfg;
    mvw_log_t             log;
    mvw_trainer_t        *trainer;
    mvw_source_t         *source;
    mvw_publisher_t      *publisher;      /* the trainer's, on its thread */
    char                  follows[MVW_CONFIG_PATH_MAX + MVW_CONFIG_URL_MAX
                                  + 3 * MVW_CONFIG_NAME_MAX + 64];
    int                   lock_fd;

    int64_t               last_publish_mono;
    uint64_t              records_since_publish;  /* not yet frozen */
    uint64_t              records_in_flight;      /* frozen, publishing */
    mvw_update_rate_t     rate;           /* since the metrics' last write */
    int64_t               publish_retry_mono;   /* after a failure */
    int                   failed;               /* stop, don't publish */
    int64_t               reopen_mono;          /* last reopen attempt */
    mvw_lag_t             lag;                  /* of the unpublished */

    mvw_log_limit_t       lim_source;
    mvw_log_limit_t       lim_record;
    mvw_log_limit_t       lim_duplicate;
    mvw_log_limit_t       lim_publish;
} daemon_t;


void
mvw_cmd_daemon_usage(FILE *out)
{
    fprintf(out,
        "usage: milvuso-worker --config FILE --worker-type all|trainer|"
        "feature|drain\n"
        "                      [--foreground] [--standby] [--print-config]\n"
        "\n"
        "trainer, all: follow the action stream (worker.action_log, or\n"
        "with [kafka] enabled log_topic -- or training_topic when\n"
        "trainer_input = \"examples\" -- and feature_topic), train the\n"
        "model online and publish snapshots into worker.snapshot_dir.\n"
        "feature (Kafka only): join each action of log_topic with its\n"
        "item's features from feature_topic into training_topic, in\n"
        "transactions ([feature] section).\n"
        "drain (beside nginx): produce what nginx spooled to\n"
        "worker.action_log while Kafka was away into log_topic and\n"
        "feature_topic, exactly once ([drain] section).\n"
        "\n"
        "  --config FILE       TOML configuration (conf/milvuso.toml);\n"
        "                      MILVUSO_<SECTION>_<KEY> variables override it\n"
        "  --worker-type T     all (the trainer, joining items itself) |\n"
        "                      trainer (the same, or on training examples)\n"
        "                      | feature | drain\n"
        "  --foreground        stay attached to the terminal (default:\n"
        "                      detach and run as a daemon)\n"
        "  --standby           when another worker publishes into\n"
        "                      worker.snapshot_dir, wait and take over when\n"
        "                      it dies (instead of refusing to start)\n"
        "  --print-config      print the effective configuration and exit\n"
        "\n"
        "SIGTERM or SIGINT: publish (feature, drain: commit) what is\n"
        "pending, then\n"
        "exit 0.\n");
}


/*
 * Opens the generation to resume from: `current`, or when it is missing
 * or invalid the newest generation (manifest gen-*.mvm or plain
 * snapshot-*.mvs) that opens.  Returns NULL when the directory has none
 * (a first start) -- *found tells whether any was there at all, so that
 * "every generation is broken" is an error, not a fresh start.
 */
static mv_generation_t *
open_newest(daemon_t *d, int *found)
{
    const char            *dir = d->cfg.worker.snapshot_dir;
    char                   path[MVW_CONFIG_PATH_MAX + 64];
    mv_generation_t       *g;
    mv_generation_list_t   list;
    mv_err_t               err;

    *found = 0;
    snprintf(path, sizeof(path), "%s/current", dir);
    g = mv_generation_open(path, NULL, NULL, &err);
    if (g != NULL) {
        *found = 1;
        return g;
    }
    if (access(path, F_OK) == 0) {
        *found = 1;
        mvw_log(&d->log, MVW_LOG_WARN, "%s is unusable (%s); looking for "
                "an older generation", path, err.msg);
    }

    if (mv_generation_list(dir, &list, &err) != MV_OK) {
        mvw_log(&d->log, MVW_LOG_WARN, "%s", err.msg);
        return NULL;
    }
    for (size_t i = 0; i < list.n && g == NULL; i++) {
        *found = 1;
        g = mv_generation_open(list.paths[i], NULL, NULL, &err);
        if (g == NULL) {
            mvw_log(&d->log, MVW_LOG_WARN, "%s is unusable: %s",
                    list.paths[i], err.msg);
        }
    }
    mv_generation_list_free(&list);
    return g;
}


/* Writes worker.metrics_file (daemon_metrics.c); none: nothing. */
static int
write_metrics(daemon_t *d)
{
    mvw_daemon_metrics_t  m;

    m.path = d->cfg.worker.metrics_file;
    m.trainer = d->trainer;
    m.source = d->source;
    m.updates_per_s = d->rate.per_s;
    m.pending_records = d->records_since_publish;
    m.lag = &d->lag;
    m.publish_interval = d->cfg.worker.publish_interval;
    m.now_ms = mv_clock_realtime_ms();
    return mvw_daemon_write_metrics(&m);
}


/*
 * Freezes what is pending and hands it to the publisher's thread, unless
 * a publish is still in flight (then the changes keep accumulating and
 * the next call hands them over).  Returns 1 when handed over.
 */
static int
publish(daemon_t *d)
{
    mv_stream_pos_t       pos[MV_SNAPSHOT_MAX_POSITIONS];
    mvw_publish_batch_t   b;
    size_t                n;
    mv_err_t              err;

    if (mvw_publisher_busy(d->publisher)) {
        return 0;
    }
    n = mvw_source_positions(d->source, pos, MV_SNAPSHOT_MAX_POSITIONS);
    if (mvw_trainer_freeze(d->trainer, pos, n, mv_clock_realtime_ms(), &b,
                           &err) != MV_OK)
    {
        mvw_log_every(&d->log, &d->lim_publish, ERROR_LOG_MS, MVW_LOG_ERROR,
                      "publish into %s failed: %s",
                      d->cfg.worker.snapshot_dir, err.msg);
        d->publish_retry_mono = mvw_monotonic_ms() + PUBLISH_RETRY_MS;
        return 0;
    }
    if (!mvw_publisher_submit(d->publisher, &b)) {
        /* not busy a moment ago, and only this thread submits */
        mvw_trainer_unfreeze(d->trainer, &b);
        mvw_publish_batch_free(&b);
        return 0;
    }
    d->records_in_flight = d->records_since_publish;
    d->records_since_publish = 0;
    mvw_lag_frozen(&d->lag);
    d->last_publish_mono = mvw_monotonic_ms();
    return 1;
}


/*
 * Takes the result of the publish in flight, if it is done (with wait:
 * waits for it): the trainer's statistics, the log line, the positions
 * made durable, the metrics; a failure puts the batch's changes back and
 * retries after PUBLISH_RETRY_MS.  Returns -1 when a publish failed, 1
 * when one succeeded, 0 when there was none to take.
 */
static int
collect(daemon_t *d, int wait)
{
    mvw_publish_batch_t   b;
    mvw_publish_report_t  r;
    mvw_trainer_stats_t   st;

    if (!mvw_publisher_poll(d->publisher, wait, &b, &r)) {
        return 0;
    }
    mvw_trainer_published(d->trainer, &b, &r);
    if (!r.ok) {
        mvw_log_every(&d->log, &d->lim_publish, ERROR_LOG_MS, MVW_LOG_ERROR,
                      "publish of generation %llu into %s failed: %s",
                      (unsigned long long) r.generation,
                      d->cfg.worker.snapshot_dir, r.err.msg);
        d->records_since_publish += d->records_in_flight;
        d->records_in_flight = 0;
        mvw_lag_failed(&d->lag);
        d->publish_retry_mono = mvw_monotonic_ms() + PUBLISH_RETRY_MS;
        mvw_publish_batch_free(&b);
        return -1;
    }

    mvw_trainer_stats(d->trainer, &st);
    mvw_log(&d->log, MVW_LOG_INFO, "published generation %llu (%u items, "
            "%u users of which %u in its delta, %u user segments, %u "
            "re-inserted, %llu records, %llu bytes, graph %.3f s, files "
            "%.3f s)", (unsigned long long) r.generation, b.n_items,
            b.n_users_total, b.n_changed, r.user_segments, r.reinserted,
            (unsigned long long) d->records_in_flight,
            (unsigned long long) r.bytes, r.index_s, r.write_s);
    if (r.compacted) {
        mvw_log(&d->log, MVW_LOG_INFO, "compacted the users of generation "
                "%llu into one base (%llu bytes, %.3f s in the background%s)",
                (unsigned long long) r.generation,
                (unsigned long long) r.compact_bytes, r.compact_s,
                r.compact_waited ? "; this publish waited for it" : "");
    } else if (r.compact_err.msg[0] != '\0') {
        mvw_log(&d->log, MVW_LOG_WARN, "compaction by generation %llu "
                "failed (the deltas stay): %s",
                (unsigned long long) r.generation, r.compact_err.msg);
    }
    d->records_in_flight = 0;
    mvw_lag_published(&d->lag);
    mvw_source_durable(d->source, b.positions, b.n_positions);
    mvw_publish_batch_free(&b);
    write_metrics(d);
    return 1;
}


/*
 * After a read error: when the source gave up on its handle for good
 * (stats().fatal: a Kafka consumer fenced after a coordinator restart),
 * opens a new one at the positions of the records applied so far (the
 * model holds exactly those), then frees the old one.  Tried at most once
 * a second; a failed open keeps the old source and is tried again.
 */
static void
reopen_if_fatal(daemon_t *d)
{
    mvw_source_stats_t  st;
    mvw_source_t       *src;
    mv_stream_pos_t     pos[MV_SNAPSHOT_MAX_POSITIONS];
    mv_err_t            err;
    size_t              n;
    int64_t             now = mvw_monotonic_ms();

    mvw_source_stats(d->source, &st);
    if (!st.fatal || now - d->reopen_mono < 1000) {
        return;
    }
    d->reopen_mono = now;
    n = mvw_source_positions(d->source, pos, MV_SNAPSHOT_MAX_POSITIONS);
    src = open_source(d, pos, n, &err);
    if (src == NULL) {
        mvw_log(&d->log, MVW_LOG_ERROR, "cannot reopen %s: %s; trying "
                "again", d->follows, err.msg);
        return;
    }
    mvw_source_free(d->source);
    d->source = src;
    mvw_log(&d->log, MVW_LOG_WARN, "reopened %s at the %zu positions "
            "applied so far (the old handle had failed for good)",
            d->follows, n);
}


/* Reads and applies records for at most BATCH_MS; returns how many. */
static size_t
drain(daemon_t *d)
{
    mvw_record_t  rec;
    mv_err_t      err;
    int64_t       start = mvw_monotonic_ms(), now_ms;
    size_t        n = 0;
    int           rc;

    while (!mvw_process_stopping()) {
        rc = mvw_source_next(d->source, &rec, &err);
        if (rc == 0) {
            break;
        }
        if (rc < 0) {
            mvw_log_every(&d->log, &d->lim_source, ERROR_LOG_MS,
                          MVW_LOG_ERROR, "reading %s: %s", d->follows,
                          err.msg);
            reopen_if_fatal(d);
            break;
        }

        now_ms = mv_clock_realtime_ms();
        rc = mvw_trainer_apply(d->trainer, rec.type, rec.payload, rec.len,
                               now_ms, &err);
        if (rc == MVW_TRAINER_FAILED) {
            /* a valid record we could not apply: stop without publishing
               a position past it, so that the restart reads it again */
            mvw_log(&d->log, MVW_LOG_ERROR, "cannot apply a record: %s; "
                    "stopping without publishing (a restart resumes from "
                    "the last published generation)", err.msg);
            d->failed = 1;
            mvw_process_stop(SIGABRT);
            break;
        }
        if (rc == MVW_TRAINER_DUPLICATE) {
            mvw_log_every(&d->log, &d->lim_duplicate, ERROR_LOG_MS,
                          MVW_LOG_INFO, "client event id \"%s\" was "
                          "applied before: the retry is skipped",
                          mvw_trainer_last_duplicate(d->trainer));
        } else if (rc != MV_OK) {
            mvw_log_every(&d->log, &d->lim_record, ERROR_LOG_MS,
                          MVW_LOG_WARN, "record skipped: %s", err.msg);
        }
        mvw_lag_applied(&d->lag, rec.type, rec.payload, rec.len, now_ms);
        d->records_since_publish++;
        n++;

        if (n >= d->cfg.training.batch_size
            || (n % 256 == 0 && mvw_monotonic_ms() - start >= BATCH_MS))
        {
            break;
        }
    }
    return n;
}


static int
due(const daemon_t *d, int64_t now)
{
    const mvw_config_t  *c = &d->cfg;

    if (now < d->publish_retry_mono) {
        return 0;
    }
    if (d->records_since_publish == 0) {
        /* a base merged in the background is named without waiting for
           new records */
        return !mvw_publisher_busy(d->publisher)
               && mvw_publisher_compaction_ready(d->publisher);
    }
    if (c->worker.publish_every > 0
        && d->records_since_publish >= c->worker.publish_every)
    {
        return 1;
    }
    return now - d->last_publish_mono
           >= (int64_t) (c->worker.publish_interval * 1000.0);
}


static int
detach_or_log(daemon_t *d)
{
    if (mvw_process_detach() != 0) {
        mvw_log(&d->log, MVW_LOG_ERROR, "cannot detach: %s",
                strerror(errno));
        return -1;
    }
    return 0;
}


/*
 * Takes snapshot_dir's lock (creating the directory).  Held by another
 * worker: -1 saying so, or with standby, waits for it (checking every 100
 * ms) until it is free (0) or a stop signal came (1).
 */
static int
take_lock(daemon_t *d, int standby)
{
    char  path[MVW_CONFIG_PATH_MAX + 32];

    if (mkdir(d->cfg.worker.snapshot_dir, 0755) != 0 && errno != EEXIST) {
        mvw_log(&d->log, MVW_LOG_ERROR, "mkdir %s: %s",
                d->cfg.worker.snapshot_dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/.milvuso-worker.lock",
             d->cfg.worker.snapshot_dir);
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->lock_fd < 0) {
        mvw_log(&d->log, MVW_LOG_ERROR, "open %s: %s", path,
                strerror(errno));
        return -1;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) == 0) {
        return 0;
    }
    if (!standby || errno != EWOULDBLOCK) {
        mvw_log(&d->log, MVW_LOG_ERROR, "another worker publishes into %s "
                "(%s is locked)", d->cfg.worker.snapshot_dir, path);
        return -1;
    }
    mvw_log(&d->log, MVW_LOG_INFO, "standby: another worker publishes into "
            "%s; taking over when it stops (pid %d)",
            d->cfg.worker.snapshot_dir, (int) getpid());
    while (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            mvw_log(&d->log, MVW_LOG_ERROR, "flock %s: %s", path,
                    strerror(errno));
            return -1;
        }
        if (mvw_process_stopping()) {
            mvw_log(&d->log, MVW_LOG_INFO, "standby: stopped before taking "
                    "over");
            return 1;
        }
        mvw_process_sleep_ms(100);
    }
    mvw_log(&d->log, MVW_LOG_INFO, "standby: the lock on %s is free: taking "
            "over", d->cfg.worker.snapshot_dir);
    return 0;
}


/*
 * crc32c of the snapshot directory's real path: what names this worker
 * to the outside (its Kafka group member id, its action-log consumer).
 * One worker publishes into a directory (the lock), so the name is
 * unique, and the same worker restarted gets the same name.
 */
static uint32_t
snapshot_dir_crc(const daemon_t *d)
{
    char      *real = realpath(d->cfg.worker.snapshot_dir, NULL);
    uint32_t   crc;

    crc = real ? mv_crc32c(0, real, strlen(real))
               : mv_crc32c(0, d->cfg.worker.snapshot_dir,
                           strlen(d->cfg.worker.snapshot_dir));
    free(real);
    return crc;
}


/* The Kafka group's static member id of this worker: "milvuso-HOST-CRC". */
static void
kafka_instance_id(const daemon_t *d, char *out, size_t size)
{
    char      host[65];
    size_t    i;

    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "host");
    }
    host[sizeof(host) - 1] = '\0';
    for (i = 0; host[i] != '\0'; i++) {
        char  ch = host[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'))
        {
            host[i] = '_';
        }
    }
    snprintf(out, size, "milvuso-%s-%08x", host,
             (unsigned) snapshot_dir_crc(d));
}


/* The topic the trainer learns from on Kafka ([kafka] trainer_input). */
static const char *
trainer_topic(const mvw_config_t *c)
{
    return c->kafka.trainer_input == MVW_TRAINER_INPUT_EXAMPLES
           ? c->kafka.training_topic : c->kafka.log_topic;
}


/*
 * Refuses a model trained on the other Kafka input: its snapshot has
 * positions of log_topic (resp. training_topic) and none of the topic the
 * trainer would follow now, which it would then read from its beginning,
 * applying again every action the model holds.
 */
static int
check_input(daemon_t *d, const mv_snapshot_view_t *v)
{
    const mvw_config_t  *c = &d->cfg;
    const char          *want = trainer_topic(c), *other;
    int                  has_want = 0, has_other = 0;

    if (!c->kafka.enabled) {
        return 0;
    }
    other = want == c->kafka.log_topic ? c->kafka.training_topic
                                       : c->kafka.log_topic;
    for (uint32_t i = 0; i < v->n_positions; i++) {
        has_want |= strcmp(v->positions[i].stream, want) == 0;
        has_other |= strcmp(v->positions[i].stream, other) == 0;
    }
    if (has_other && !has_want) {
        mvw_log(&d->log, MVW_LOG_ERROR, "generation %llu was trained on "
                "Kafka topic %s, and [kafka] trainer_input now names %s: "
                "following it from its beginning would apply again the "
                "actions the model holds; set trainer_input back, or start "
                "from an empty worker.snapshot_dir",
                (unsigned long long) v->generation, other, want);
        return -1;
    }
    return 0;
}


/*
 * Opens the configured source at positions[0 .. n) and sets d->follows,
 * what the log lines say it reads.
 */
static mvw_source_t *
open_source(daemon_t *d, const mv_stream_pos_t *positions, size_t n,
    mv_err_t *err)
{
    const mvw_config_t  *c = &d->cfg;
    mvw_kafka_params_t   kp;
    mvw_actlog_params_t  ap;
    char                 instance[128];
    int                  examples;
    char                 consumer[MV_ACTLOG_CONSUMER_NAME_MAX + 1];
    char                 note[MV_ACTLOG_CONSUMER_NOTE_MAX + 1];

    if (!c->kafka.enabled) {
        /* the log's consumer "trainer-CRC" (actlog.h, "Consumers") */
        snprintf(consumer, sizeof(consumer), "trainer-%08x",
                 (unsigned) snapshot_dir_crc(d));
        snprintf(note, sizeof(note), "milvuso-worker, snapshots in %.160s",
                 c->worker.snapshot_dir);
        snprintf(d->follows, sizeof(d->follows), "action log %s (consumer "
                 "%s)", c->worker.action_log, consumer);
        memset(&ap, 0, sizeof(ap));
        ap.dir = c->worker.action_log;
        ap.consumer = consumer;
        ap.note = note;
        ap.keep = c->worker.keep_generations;
        ap.retention.keep_ms =
            (int64_t) (c->worker.action_log_retention * 1000.0);
        ap.retention.max_bytes = c->worker.action_log_retention_bytes;
        ap.retention.expire_ms =
            (int64_t) (c->worker.action_log_consumer_expiry * 1000.0);
        ap.log = &d->log;
        return mvw_source_actlog_open(&ap, positions, n, err);
    }

    examples = c->kafka.trainer_input == MVW_TRAINER_INPUT_EXAMPLES;
    kafka_instance_id(d, instance, sizeof(instance));
    snprintf(d->follows, sizeof(d->follows), "Kafka topics %s (%s) "
             "and %s (items) at %s, group %s (member %s)",
             trainer_topic(c), examples ? "training examples" : "actions",
             c->kafka.feature_topic, c->kafka.brokers, c->kafka.group_id,
             instance);
    memset(&kp, 0, sizeof(kp));
    kp.brokers = c->kafka.brokers;
    kp.group_id = c->kafka.group_id;
    kp.log_topic = trainer_topic(c);
    kp.examples = examples;
    kp.feature_topic = c->kafka.feature_topic;
    kp.log = &d->log;
    kp.instance_id = instance;
    return mvw_source_kafka_open(&kp, positions, n, err);
}


static int
start(daemon_t *d)
{
    mvw_trainer_params_t   tp;
    mv_generation_t       *gen;
    const mv_generation_info_t  *info = NULL;
    mvw_trainer_stats_t    st;
    mv_err_t               err;
    int                    found, rc;

    rc = mv_generation_remove_orphans(d->cfg.worker.snapshot_dir, &err);
    if (rc > 0) {
        mvw_log(&d->log, MVW_LOG_INFO, "removed %d file(s) of an "
                "interrupted publish", rc);
    }

    mvw_trainer_params_from_config(&d->cfg, &tp);
    d->trainer = mvw_trainer_new(&tp, &err);
    if (d->trainer == NULL) {
        mvw_log(&d->log, MVW_LOG_ERROR, "trainer: %s", err.msg);
        return -1;
    }

    gen = open_newest(d, &found);
    if (gen == NULL && found) {
        mvw_log(&d->log, MVW_LOG_ERROR, "no usable snapshot in %s, but "
                "some exist: refusing to start from scratch over them "
                "(move them away to start afresh)",
                d->cfg.worker.snapshot_dir);
        return -1;
    }
    if (gen != NULL) {
        info = mv_generation_info(gen);
        if (check_input(d, mv_generation_items(gen)) != 0) {
            mv_generation_close(gen);
            return -1;
        }
        if (mvw_trainer_restore_generation(d->trainer, gen, &err) != MV_OK) {
            mvw_log(&d->log, MVW_LOG_ERROR, "cannot resume from generation "
                    "%llu: %s", (unsigned long long) info->generation,
                    err.msg);
            mv_generation_close(gen);
            return -1;
        }
        mvw_trainer_stats(d->trainer, &st);
        mvw_log(&d->log, MVW_LOG_INFO, "resumed from generation %llu (%u "
                "items, %u users) of %u file(s)",
                (unsigned long long) info->generation, st.n_items,
                st.n_users, info->n_segments);
        if (mvw_trainer_restore_dedupe(d->trainer,
                                       d->cfg.worker.snapshot_dir, gen, &err)
            != MV_OK)
        {
            mvw_log(&d->log, MVW_LOG_WARN, "no dedupe set for generation "
                    "%llu (%s): starting with an empty one, so a client "
                    "retry of an action that generation includes may be "
                    "applied again", (unsigned long long) info->generation,
                    err.msg);
        }
    } else {
        mvw_log(&d->log, MVW_LOG_INFO, "no snapshot in %s: starting an "
                "empty model", d->cfg.worker.snapshot_dir);
    }

    /* The publisher numbers generations after the newest file present,
       not after the one resumed from (an older generation when `current`
       was unusable or rolled back), so that no file is ever replaced. */
    d->publisher = mvw_trainer_publisher(d->trainer,
                                         d->cfg.worker.snapshot_dir, &err);
    if (d->publisher == NULL
        || (gen != NULL && mvw_trainer_resume(d->trainer,
                                              d->cfg.worker.snapshot_dir,
                                              gen, &err) != MV_OK)
        || (mvw_publisher_set_compaction(d->publisher,
                                         d->cfg.worker.compact_max_deltas,
                                         d->cfg.worker.compact_ratio), 0))
    {
        mvw_log(&d->log, MVW_LOG_ERROR, "publisher: %s", err.msg);
        mv_generation_close(gen);
        return -1;
    }

    d->source = open_source(d, info ? info->positions : NULL,
                            info ? info->n_positions : 0, &err);
    mv_generation_close(gen);
    if (d->source == NULL) {
        mvw_log(&d->log, MVW_LOG_ERROR, "%s: %s", d->follows, err.msg);
        return -1;
    }
    return 0;
}


static int
run(daemon_t *d)
{
    int64_t   now;
    size_t    n;
    mv_err_t  err;

    /* the publisher's thread starts here, after a detach: a fork keeps
       only the thread that calls it */
    if (mvw_publisher_start(d->publisher, &err) != MV_OK) {
        mvw_log(&d->log, MVW_LOG_ERROR, "publisher: %s", err.msg);
        return MVW_EXIT_FAIL;
    }
    d->last_publish_mono = mvw_monotonic_ms();
    d->rate.last_mono = d->last_publish_mono;

    while (!mvw_process_stopping()) {
        n = drain(d);
        now = mvw_monotonic_ms();

        collect(d, 0);
        if (due(d, now)) {
            publish(d);
        }
        if (now - d->rate.last_mono >= METRICS_MS) {
            mvw_update_rate(&d->rate, d->trainer, now);
            write_metrics(d);
        }
        if (n == 0 && !mvw_process_stopping()) {
            mvw_process_sleep_ms(d->cfg.worker.poll_interval * 1000.0);
        }
    }

    if (d->failed) {
        write_metrics(d);
        return MVW_EXIT_FAIL;
    }
    mvw_log(&d->log, MVW_LOG_INFO, "signal %d: stopping",
            mvw_process_stopping());
    /* the publish in flight; a compaction running in the background for
       at most STOP_COMPACTION_MS (else it is abandoned: its temp file goes
       at the next start); then what is pending, naming the base */
    if (collect(d, 1) < 0) {
        write_metrics(d);
        return MVW_EXIT_FAIL;
    }
    for (int64_t t0 = mvw_monotonic_ms();
         mvw_publisher_compacting(d->publisher)
         && !mvw_publisher_compaction_ready(d->publisher)
         && mvw_monotonic_ms() - t0 < STOP_COMPACTION_MS; )
    {
        mvw_process_sleep_ms(10);
    }
    if ((d->records_since_publish > 0
         || mvw_publisher_compaction_ready(d->publisher))
        && (!publish(d) || collect(d, 1) < 0))
    {
        write_metrics(d);
        return MVW_EXIT_FAIL;
    }
    write_metrics(d);
    return MVW_EXIT_OK;
}


static int
parse_args(int argc, char **argv, daemon_opts_t *o)
{
    static const struct option  longopts[] = {
        { "config",       required_argument, NULL, 'c' },
        { "worker-type",  required_argument, NULL, 't' },
        { "foreground",   no_argument,       NULL, 'f' },
        { "print-config", no_argument,       NULL, 'p' },
        { "standby",      no_argument,       NULL, 's' },
        { "help",         no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int  c;

    memset(o, 0, sizeof(*o));
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case 't': o->worker_type = optarg; break;
        case 'f': o->foreground = 1; break;
        case 'p': o->print_config = 1; break;
        case 's': o->standby = 1; break;
        case 'h':
            mvw_cmd_daemon_usage(stdout);
            return 1;
        default:
            return mvw_usage_error("", mvw_cmd_daemon_usage,
                                   "bad option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return mvw_usage_error("", mvw_cmd_daemon_usage,
                               "unexpected argument '%s'", argv[optind]);
    }
    if (o->worker_type == NULL && !o->print_config) {
        return mvw_usage_error("", mvw_cmd_daemon_usage, "%s",
                               "--worker-type is required");
    }
    return 0;
}


/*
 * 0 when worker type can run with configuration c, else the exit code
 * after saying why on stderr.
 */
static int
role_refused(const char *type, const mvw_config_t *c)
{
    int  kafka_examples = c->kafka.enabled
                          && c->kafka.trainer_input
                             == MVW_TRAINER_INPUT_EXAMPLES;

    if (strcmp(type, "feature") == 0 && !c->kafka.enabled) {
        fprintf(stderr, "milvuso-worker: --worker-type feature hands "
                "training examples to [kafka] training_topic and runs on "
                "Kafka only ([kafka] enabled = true); on the embedded "
                "action log the trainer joins actions with their items "
                "itself: run --worker-type all\n");
        return MVW_EXIT_FAIL;
    }
    if (strcmp(type, "all") == 0 && kafka_examples) {
        fprintf(stderr, "milvuso-worker: --worker-type all joins actions "
                "with their items itself (it follows [kafka] log_topic), "
                "but [kafka] trainer_input = \"examples\" expects a feature "
                "worker to do it: run --worker-type feature and "
                "--worker-type trainer, or set trainer_input = "
                "\"actions\"\n");
        return MVW_EXIT_FAIL;
    }
    if (strcmp(type, "all") != 0 && strcmp(type, "trainer") != 0
        && strcmp(type, "feature") != 0 && strcmp(type, "drain") != 0)
    {
        return mvw_usage_error("", mvw_cmd_daemon_usage,
                               "unknown worker type '%s'", type);
    }
    return 0;
}


int
mvw_cmd_daemon(int argc, char **argv)
{
    extern char   **environ;
    daemon_opts_t   o;
    daemon_t       *d;
    mv_err_t        err;
    int             rc, lock;

    rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? MVW_EXIT_OK : rc;
    }

    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        fprintf(stderr, "milvuso-worker: out of memory\n");
        return MVW_EXIT_FAIL;
    }
    d->lock_fd = -1;

    if (mvw_config_load(&d->cfg, o.config, environ, &err) != MV_OK) {
        fprintf(stderr, "milvuso-worker: %s\n", err.msg);
        free(d);
        return MVW_EXIT_FAIL;
    }
    if (o.print_config) {
        mvw_config_print(&d->cfg, stdout);
        free(d);
        return MVW_EXIT_OK;
    }

    rc = role_refused(o.worker_type, &d->cfg);
    if (rc != 0) {
        free(d);
        return rc;
    }
    if (strcmp(o.worker_type, "feature") == 0
        || strcmp(o.worker_type, "drain") == 0)
    {
        rc = strcmp(o.worker_type, "feature") == 0
             ? mvw_feature_daemon(&d->cfg, o.foreground)
             : mvw_drain_daemon(&d->cfg, o.foreground);
        free(d);
        return rc;
    }
    d->log.out = stderr;
    d->log.level = d->cfg.worker.log_level;

    if (mvw_process_signals() != 0) {
        fprintf(stderr, "milvuso-worker: cannot start: %s\n",
                strerror(errno));
        free(d);
        return MVW_EXIT_FAIL;
    }

    /* Lock, resume and open the log before detaching, so that a start
       that cannot work fails with its exit status (the lock is on the
       open file, which the detached child keeps).  A standby detaches
       first: it may wait for the lock for ever. */
    rc = MVW_EXIT_FAIL;
    lock = -1;
    if (!o.standby || o.foreground || detach_or_log(d) == 0) {
        lock = take_lock(d, o.standby);
    }
    if (lock == 1) {
        rc = MVW_EXIT_OK;

    } else if (lock == 0 && start(d) == 0
               && (o.foreground || o.standby || detach_or_log(d) == 0))
    {
        mvw_log(&d->log, MVW_LOG_INFO, "worker %s following %s, publishing "
                "into %s (pid %d)", o.worker_type, d->follows,
                d->cfg.worker.snapshot_dir, (int) getpid());
        rc = run(d);
    }

    mvw_source_free(d->source);
    mvw_trainer_free(d->trainer);
    if (d->lock_fd >= 0) {
        close(d->lock_fd);
    }
    free(d);
    return rc;
}
