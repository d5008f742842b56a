/*
 * daemon_loop.c -- the one run loop of the feature worker and the drain
 * (see daemon_loop.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/daemon_drain.h"
#include "cli/daemon_feature.h"
#include "cli/daemon_loop.h"
#include "cli/process.h"
#include "worker.h"

#define METRICS_MS       1000
#define METRICS_IDLE_MS  5000
#define REPORT_MS        10000

/* The last stats of the object, whichever it is. */
typedef struct {
    mvw_drain_stats_t    d;
    mvw_feature_stats_t  f;
} stats_t;


int
mvw_daemon_begin(const mvw_config_t *c, mvw_log_t *log)
{
    log->out = stderr;
    log->level = c->worker.log_level;
    if (mvw_process_signals() != 0) {
        fprintf(stderr, "milvuso-worker: cannot start: %s\n",
                strerror(errno));
        return MVW_EXIT_FAIL;
    }
    return MVW_EXIT_OK;
}


static void
abandon(mvw_daemon_obj_t o)
{
    if (o.drain != NULL) {
        mvw_drain_abandon(o.drain);
    } else {
        mvw_feature_abandon(o.feature);
    }
}


int
mvw_daemon_detach(mvw_daemon_obj_t o, const mvw_log_t *log, int foreground)
{
    if (!foreground && mvw_process_detach() != 0) {
        mvw_log(log, MVW_LOG_ERROR, "cannot detach: %s", strerror(errno));
        abandon(o);
        return MVW_EXIT_FAIL;
    }
    return MVW_EXIT_OK;
}


/* One step, then the stats: the step's result; changed and progress are
   what the metrics and the progress line follow. */
static int
step(mvw_daemon_obj_t o, stats_t *st, uint64_t *changed, uint64_t *progress,
    mv_err_t *err)
{
    int  n;

    if (o.drain != NULL) {
        n = mvw_drain_step(o.drain, err);
        mvw_drain_stats(o.drain, &st->d);
        *changed = st->d.transactions + st->d.aborts + st->d.pending
                   + st->d.phase;
        *progress = st->d.actions + st->d.items;
    } else {
        n = mvw_feature_step(o.feature, err);
        mvw_feature_stats(o.feature, &st->f);
        *changed = st->f.transactions + st->f.aborts + st->f.pending
                   + st->f.items;
        *progress = st->f.transactions;
    }
    return n;
}


/* The metrics file (log NULL) or the progress line, from st. */
static void
publish(const mvw_config_t *c, const mvw_log_t *log, mvw_daemon_obj_t o,
    const stats_t *st)
{
    if (o.drain != NULL && log == NULL) {
        mvw_drain_write_metrics(c, &st->d);
    } else if (o.drain != NULL) {
        mvw_drain_report(log, &st->d);
    } else if (log == NULL) {
        mvw_feature_write_metrics(c, &st->f);
    } else {
        mvw_feature_report(log, &st->f);
    }
}


int
mvw_daemon_loop(const mvw_config_t *c, const mvw_log_t *log,
    mvw_daemon_obj_t o)
{
    stats_t   st;
    mv_err_t  err;
    int64_t   now, last_metrics = 0, last_report;
    uint64_t  changed, progress, seen = 0, reported = 0;
    int       n, rc;

    memset(&st, 0, sizeof(st));
    last_report = mvw_monotonic_ms();
    while (!mvw_process_stopping()) {
        n = step(o, &st, &changed, &progress, &err);
        if (n < 0) {
            mvw_log(log, MVW_LOG_ERROR, "%s; stopping without committing "
                    "(the next start aborts what is open and %s again)",
                    err.msg, o.drain != NULL ? "drains it" : "joins it");
            publish(c, NULL, o, &st);
            abandon(o);
            return MVW_EXIT_FAIL;
        }

        now = mvw_monotonic_ms();
        if ((changed != seen && now - last_metrics >= METRICS_MS)
            || now - last_metrics >= METRICS_IDLE_MS)
        {
            publish(c, NULL, o, &st);
            seen = changed;
            last_metrics = now;
        }
        if (progress != reported && now - last_report >= REPORT_MS) {
            publish(c, log, o, &st);
            reported = progress;
            last_report = now;
        }
        if (n == 0 && !mvw_process_stopping()) {
            mvw_process_sleep_ms(c->worker.poll_interval * 1000.0);
        }
    }

    mvw_log(log, MVW_LOG_INFO, "signal %d: stopping",
            mvw_process_stopping());
    rc = o.drain != NULL ? mvw_drain_close(o.drain, &st.d, &err)
                         : mvw_feature_close(o.feature, &st.f, &err);
    if (rc != MV_OK) {
        mvw_log(log, MVW_LOG_ERROR, "%s", err.msg);
    }
    publish(c, log, o, &st);
    publish(c, NULL, o, &st);
    return rc == MV_OK ? MVW_EXIT_OK : MVW_EXIT_FAIL;
}
