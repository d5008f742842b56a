/*
 * metrics.c -- Prometheus text-format metrics files (see metrics.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/metrics.h"


int
mvw_metrics_begin(mvw_metrics_file_t *m, const char *path,
    const char *prefix)
{
    m->prefix = prefix;
    snprintf(m->path, sizeof(m->path), "%s", path);
    snprintf(m->tmp, sizeof(m->tmp), "%s.tmp", path);
    m->f = fopen(m->tmp, "w");
    return m->f != NULL ? 0 : -1;
}


void
mvw_metrics_counter(mvw_metrics_file_t *m, const char *name,
    const char *help, uint64_t v)
{
    fprintf(m->f, "# HELP %s%s %s\n# TYPE %s%s counter\n%s%s %llu\n",
            m->prefix, name, help, m->prefix, name, m->prefix, name,
            (unsigned long long) v);
}


void
mvw_metrics_gauge(mvw_metrics_file_t *m, const char *name,
    const char *help, const char *fmt, ...)
{
    va_list  ap;

    fprintf(m->f, "# HELP %s%s %s\n# TYPE %s%s gauge\n%s%s ", m->prefix,
            name, help, m->prefix, name, m->prefix, name);
    va_start(ap, fmt);
    vfprintf(m->f, fmt, ap);
    va_end(ap);
    fputc('\n', m->f);
}


int
mvw_metrics_end(mvw_metrics_file_t *m)
{
    int  ok = fflush(m->f) == 0 && !ferror(m->f);

    ok = (fclose(m->f) == 0) && ok;
    m->f = NULL;
    if (!ok || rename(m->tmp, m->path) != 0) {
        unlink(m->tmp);
        return -1;
    }
    return 0;
}
