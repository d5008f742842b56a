/*
 * metrics.h -- a Prometheus text-format metrics file, written whole:
 * begin opens PATH.tmp, each counter or gauge adds its HELP, TYPE and
 * value lines, end renames the temp file over PATH, so a scraper never
 * reads half a file.  The trainer daemon and the feature worker each
 * write one (worker.metrics_file, feature.metrics_file).
 */
#ifndef MVW_METRICS_H
#define MVW_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "config/config.h"          /* MVW_CONFIG_PATH_MAX */

typedef struct mvw_metrics_file {
    FILE        *f;
    const char  *prefix;            /* of every name: "milvuso_worker_" */
    char         path[MVW_CONFIG_PATH_MAX];
    char         tmp[MVW_CONFIG_PATH_MAX + 8];
} mvw_metrics_file_t;

/* Opens path's temp file.  Returns 0, or -1 (nothing is written). */
int mvw_metrics_begin(mvw_metrics_file_t *m, const char *path,
    const char *prefix);

/* Adds counter prefix+name with its help text and value. */
void mvw_metrics_counter(mvw_metrics_file_t *m, const char *name,
    const char *help, uint64_t v);

/* Adds gauge prefix+name; its value is printed with fmt. */
void mvw_metrics_gauge(mvw_metrics_file_t *m, const char *name,
    const char *help, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Closes and renames it over the path: 0, or -1 (the old file stays). */
int mvw_metrics_end(mvw_metrics_file_t *m);

#endif /* MVW_METRICS_H */
