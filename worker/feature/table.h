/*
 * table.h -- a Kafka topic read as a table: every partition from its
 * beginning, record after record, with a flag that says when each
 * partition has been read to its end once ("caught up").  The feature
 * worker reads its two tables this way at every start: the features topic
 * (the item table; then it keeps following it) and the popularity topic
 * (its own action counts, read once, before any action is joined).
 *
 * The reader is a librdkafka consumer with a manual assignment: it joins
 * no group and commits nothing (librdkafka wants a group.id for the
 * consumer API all the same: "<group>.table", never joined).  Reading is
 * read_committed, so the records of aborted transactions are never seen
 * and reading stops at an open one.  The partitions are those the topic
 * has when the reader first gets its metadata; partitions added later are
 * read after a restart.
 *
 * Never blocking for long: poll hands out what has been fetched; getting
 * the metadata waits at most METADATA_MS, once per poll until it is there
 * (a topic that does not exist yet, a broker that is down: logged
 * rate-limited, retried at the next poll).  One thread.
 */
#ifndef MVW_TABLE_H
#define MVW_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "cli/logging.h"
#include "mv_common.h"

typedef struct mvw_table mvw_table_t;

/*
 * What a table hands each record to: the key (may be NULL), the value
 * (NULL for a tombstone) and their lengths.  A record the callback refuses
 * is its business (count, log); reading goes on.
 */
typedef void (*mvw_table_fn)(void *ctx, const char *key, size_t key_len,
    const char *value, size_t len);

/*
 * A reader of topic at brokers; group names it ("<group>.table"), what
 * names the lines it logs through log (may be NULL) at most once per
 * 10 s of lim (the caller's, shared with its other handles), extra holds
 * more librdkafka properties ("name=value", NULL-terminated; NULL: none).
 * Nothing is contacted yet.  Returns NULL with err set when librdkafka
 * refuses the configuration.
 */
mvw_table_t *mvw_table_open(const char *brokers, const char *topic,
    const char *group, const char *what, const mvw_log_t *log,
    mvw_log_limit_t *lim, const char *const *extra, mv_err_t *err);

/*
 * Hands at most max records to fn(ctx, ...), in offset order within each
 * partition, and returns how many.  MV_ERR with err set when librdkafka
 * gave up on the handle (a fatal error).
 */
int mvw_table_poll(mvw_table_t *t, size_t max, mvw_table_fn fn, void *ctx,
    mv_err_t *err);

/* 1 once every partition has been read to its end at least once. */
int mvw_table_caught_up(const mvw_table_t *t);

/* Records handed out, transport errors seen. */
uint64_t mvw_table_records(const mvw_table_t *t);
uint64_t mvw_table_errors(const mvw_table_t *t);

/* Frees t (may be NULL). */
void mvw_table_free(mvw_table_t *t);

#endif /* MVW_TABLE_H */
