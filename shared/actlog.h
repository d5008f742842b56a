/*
 * actlog.h -- the embedded action log: the transport between nginx (which
 * appends every accepted POST /actions and POST /items) and milvuso-worker
 * (which tails it).  It plays the part Kafka plays in a larger deployment.
 *
 * On disk: a directory of segments named actions-<seq, 20 digits>.log,
 * seq = 1, 2, 3 ...  A segment is a sequence of records:
 *
 *   offset  size  field
 *        0     4  magic: bytes FF 4D 56 FE ("\xffMV\xfe")
 *        4     4  payload length, little-endian, 1 .. MV_ACTLOG_MAX_PAYLOAD
 *        8     2  record type (MV_RECORD_ACTION, MV_RECORD_ITEM)
 *       10     2  flags, 0
 *       12     4  CRC-32C of bytes 4..11 followed by the payload
 *       16     -  payload (canonical JSON, see events.h)
 *
 * The magic's bytes FF and FE never occur in UTF-8, and payloads are
 * validated UTF-8, so a magic inside a payload can only come from damage.
 *
 * Writers.  Several processes (nginx workers) append to the same directory.
 * The caller serialises them with one process-shared lock (nginx: the zone's
 * mutex, which the master releases if a worker dies) and keeps the current
 * segment number in memory every writer sees (the zone).  Under that lock an
 * append is one write() of header + payload to the segment open with
 * O_APPEND; a short write is cut back with ftruncate, so a failed append
 * leaves nothing behind (unless the process dies mid-write: that is the torn
 * record readers skip).  When a segment reaches the size limit the writer
 * that filled it starts the next one, still under the lock: once segment
 * N + 1 exists nothing more is ever written to segment N.
 *
 * Readers (the worker) tail the directory from a position.  A record is
 * accepted only when its magic, length and CRC hold.  At a damaged record
 * the reader resynchronises on the next offset where a complete valid
 * record starts.  An incomplete record at the end of the newest segment may
 * be a write in progress: the reader waits for it; once a later segment
 * exists (the segment is sealed), or a complete valid record follows the
 * incomplete one, the incomplete bytes are known torn and are skipped.
 * Skipped bytes are counted, never silently.
 *
 * A position is (segment, byte offset); mv_actlog_pos_pack folds it into
 * one 64-bit stream offset (segment << 40 | offset) for the snapshot header.
 *
 * Retention.  Writers never remove anything.  Segments are removed by
 * mv_actlog_trim (actlog_trim.c), which a consumer calls once its own
 * position is durable (the trainer: after a snapshot is published).  A
 * segment goes only when all of these hold:
 *   - it is not the newest segment present.  Writers append only to the
 *     newest segment, or create the one after it (the number in the
 *     writers' shared memory never falls below the newest file), and the
 *     newest file carries the numbering on when nginx restarts and finds
 *     the current number again by listing the directory;
 *   - every live registered consumer (below) is at a position in a later
 *     segment, so the segment is wholly before all of them;
 *   - its last write (mtime) is at least keep_ms old, or the log is larger
 *     than max_bytes (a cap on what keep_ms keeps; never on what a
 *     consumer still needs);
 *   - every older segment goes too.  Segments are removed oldest first
 *     and the first one that must stay keeps every later one, so the
 *     directory always holds one unbroken run of segments, also after a
 *     crash in the middle of a trim.
 * Removal is unlink(): a reader or a writer that has the file open goes on
 * with it (its space is freed at the close; an nginx worker keeps open at
 * most the segment it appended to last), and a reader that moves on to a
 * segment that is gone counts it as skipped (actlog_read.c).
 *
 * Consumers (actlog_consumers.c).  Every process that reads the log and
 * needs it kept registers a position under a name: dir/consumers/<name>, a
 * few lines of text (format, name, segment and offset, the time it was
 * written, a note saying who it is for people, a CRC-32C of the rest)
 * written atomically (temp file, fsync, rename, fsync of the directory).
 * The position is the oldest one the consumer may have to read from again:
 * for the trainer, that of the oldest snapshot generation it keeps, since
 * it may fall back to any of them (segment 0: before everything, holding
 * the whole log).  A registration is
 *   live      written within expire_ms (or expire_ms is 0): it holds every
 *             segment from its position on;
 *   expired   not rewritten for expire_ms: its consumer is taken to be
 *             gone for good, and the trim removes the file, so that one
 *             forgotten consumer cannot fill the disk.  A consumer that
 *             comes back registers again and reads from what is left,
 *             the gap counted by its reader;
 *   damaged   present but unreadable (not the format, CRC mismatch): its
 *             position is unknown, so it holds the whole log until its
 *             file's mtime is expire_ms old (then it is removed as
 *             expired), and the trim reports it.
 * With no live or damaged registration nothing is removed: no consumer
 * vouches for any position.
 *
 * Registrations and trims take dir/consumers/.lock (flock, exclusive).  A
 * consumer that registers at a lower position than the log's start (a new
 * consumer, which registers segment 0 before its reader lists the
 * directory) is therefore either seen by a trim or registers once it is
 * over, and then reads from what the trim left.  A trim that finds the
 * lock taken does nothing: the other trim is doing the work.
 */
#ifndef MV_ACTLOG_H
#define MV_ACTLOG_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MV_ACTLOG_HEADER_SIZE     16
#define MV_ACTLOG_MAX_PAYLOAD     (1u << 20)           /* 1 MiB */
#define MV_ACTLOG_SEGMENT_DEFAULT (64ull << 20)        /* 64 MiB */
#define MV_ACTLOG_SEGMENT_MAX     ((1ull << 40) - 1)
#define MV_ACTLOG_STREAM_NAME     "actlog"   /* mv_stream_pos_t.stream */

#define MV_RECORD_ACTION          1
#define MV_RECORD_ITEM            2
/* A training example (events.h): a stream record type of Kafka's
   training_topic only, never appended to this log. */
#define MV_RECORD_EXAMPLE         3

typedef struct mv_actlog_pos {
    uint64_t  segment;        /* >= 1 */
    uint64_t  offset;         /* byte offset inside the segment */
} mv_actlog_pos_t;

/* (segment << 40) | offset; offset must be < 2^40, segment < 2^24. */
uint64_t mv_actlog_pos_pack(mv_actlog_pos_t pos);
mv_actlog_pos_t mv_actlog_pos_unpack(uint64_t packed);

/*
 * Writes the file name of segment seq ("actions-00000000000000000001.log")
 * into buf (at least 33 bytes).  Returns buf.
 */
char *mv_actlog_segment_name(uint64_t seq, char *buf, size_t len);

/*
 * Frames one record into buf (cap bytes): header + payload.  Returns the
 * record's size, or 0 when cap is too small or len is 0 or above
 * MV_ACTLOG_MAX_PAYLOAD.
 */
size_t mv_actlog_frame(uint16_t type, const void *payload, size_t len,
    void *buf, size_t cap);

/*
 * Decodes the record at buf[0 .. avail): returns its full size (header +
 * payload) and sets *type, *payload, *len when a complete, valid record
 * starts there; 0 when the bytes are a valid prefix of a record that is not
 * complete yet (a correct header whose payload is cut short, or fewer than
 * MV_ACTLOG_HEADER_SIZE bytes that match the start of a header); -1 when no
 * record starts there (bad magic, bad length, CRC mismatch).
 */
long mv_actlog_decode(const void *buf, size_t avail, uint16_t *type,
    const void **payload, uint32_t *len);

/* ---- writer (one per process) ----------------------------------------- */

typedef struct mv_actlog_writer mv_actlog_writer_t;

/*
 * Prepares a writer for dir (created with mode 0755 if missing).
 * segment_bytes is the rotation size (0 = MV_ACTLOG_SEGMENT_DEFAULT); sync
 * non-zero makes every append fdatasync before returning.  Opens nothing
 * else yet.  Returns NULL with err set.
 */
mv_actlog_writer_t *mv_actlog_writer_new(const char *dir,
    uint64_t segment_bytes, int sync, mv_err_t *err);

/*
 * Appends one framed record.  The caller holds the lock shared by every
 * writer of dir, and *shared_seq is the current segment number kept where
 * every writer sees it; 0 means not known yet, and the writer then uses the
 * highest segment present in dir (or 1 when there is none) and stores it.
 * The writer (re)opens segment *shared_seq when its own descriptor is for
 * another one.  After the write, when the segment has reached the rotation
 * size, it creates segment *shared_seq + 1 and stores that number.
 * On success pos (when not NULL) receives the record's position.  Returns
 * MV_OK, or MV_ERR with err set and nothing appended.
 */
int mv_actlog_append(mv_actlog_writer_t *w, uint64_t *shared_seq,
    uint16_t type, const void *payload, size_t len, mv_actlog_pos_t *pos,
    mv_err_t *err);

/* Closes the descriptor and frees.  w may be NULL. */
void mv_actlog_writer_free(mv_actlog_writer_t *w);

/* ---- reader (the worker) --------------------------------------------- */

typedef struct mv_actlog_reader mv_actlog_reader_t;

typedef struct mv_actlog_record {
    uint16_t         type;
    const void      *payload;   /* valid until the next mv_actlog_next */
    uint32_t         len;
    mv_actlog_pos_t  pos;       /* where the record starts */
    mv_actlog_pos_t  next;      /* where the record after it starts: the
                                   position to store once it is applied */
} mv_actlog_record_t;

typedef struct mv_actlog_stats {
    uint64_t  records;          /* accepted */
    uint64_t  skipped_bytes;    /* torn or damaged bytes skipped */
    uint64_t  skipped_runs;     /* number of damaged stretches */
} mv_actlog_stats_t;

/*
 * Opens a reader of dir that starts at pos (segment 0 means "the oldest
 * segment present, offset 0").  The directory need not exist yet.
 */
mv_actlog_reader_t *mv_actlog_reader_new(const char *dir, mv_actlog_pos_t pos,
    mv_err_t *err);

/*
 * Reads the next record.  Returns 1 with rec filled; 0 when no complete
 * record is available now (call again later); MV_ERR on an I/O error.  Moves
 * to the next segment when the current one is sealed and exhausted; skips
 * (and counts) damaged and torn bytes as described at the top.  A segment
 * that disappeared (removed by retention) before it was read is counted as
 * skipped and reported through err only when it is the starting one.
 */
int mv_actlog_next(mv_actlog_reader_t *r, mv_actlog_record_t *rec,
    mv_err_t *err);

/* The position after the last record returned (where to resume). */
mv_actlog_pos_t mv_actlog_reader_pos(const mv_actlog_reader_t *r);

void mv_actlog_reader_stats(const mv_actlog_reader_t *r,
    mv_actlog_stats_t *stats);

void mv_actlog_reader_free(mv_actlog_reader_t *r);

/* ---- retention: consumers (actlog_consumers.c) ------------------------ */

#define MV_ACTLOG_CONSUMERS_DIR      "consumers"
#define MV_ACTLOG_CONSUMER_NAME_MAX  64       /* [A-Za-z0-9._-], no leading . */
#define MV_ACTLOG_CONSUMER_NOTE_MAX  200

typedef struct mv_actlog_consumer {
    char             name[MV_ACTLOG_CONSUMER_NAME_MAX + 1];
    mv_actlog_pos_t  pos;          /* segment 0: holds the whole log */
    int64_t          updated_ms;   /* unix ms it was written; for a damaged
                                      one, its file's mtime */
    int              damaged;      /* 1: unreadable; note says why */
    char             note[MV_ACTLOG_CONSUMER_NOTE_MAX + 1];
} mv_actlog_consumer_t;

/*
 * Registers (or moves) consumer c->name at c->pos, written at
 * c->updated_ms, with c->note (printable, no newline; may be empty): the
 * file dir/consumers/<name> is replaced atomically, under the consumers'
 * lock (waited for at most wait_ms; then MV_ERR saying so).  Creates
 * dir/consumers (and dir) when missing.  Returns MV_OK, or MV_ERR with err
 * set and the previous registration, if any, untouched.
 */
int mv_actlog_register(const char *dir, const mv_actlog_consumer_t *c,
    int wait_ms, mv_err_t *err);

/*
 * Lists the registrations of dir, sorted by name, into *list (malloc'd;
 * the caller frees it; NULL when there are none) and their number into *n.
 * Files named as consumers that do not read are listed with damaged = 1
 * and the reason in note; other names (temps, the lock) are not
 * registrations.  A missing dir or dir/consumers has none.  Returns MV_OK,
 * or MV_ERR with err set when the directory cannot be read.
 */
int mv_actlog_consumers(const char *dir, mv_actlog_consumer_t **list,
    size_t *n, mv_err_t *err);

/* 1 when name is a valid consumer name (see MV_ACTLOG_CONSUMER_NAME_MAX). */
int mv_actlog_consumer_name_ok(const char *name);

/* ---- retention: disk use and trimming (actlog_trim.c) ------------------- */

typedef struct mv_actlog_usage {
    uint64_t  segments;       /* segment files present */
    uint64_t  bytes;          /* their sizes, summed */
    uint64_t  lowest;         /* oldest segment number, 0 when none */
    uint64_t  highest;        /* newest, 0 when none */
} mv_actlog_usage_t;

/*
 * The segments of dir (files named as segments; nothing else counts): one
 * readdir and one fstatat per entry, so its cost is bounded by the size of
 * the directory, which retention keeps small.  A missing dir is empty.
 * Returns MV_OK, or MV_ERR with err set (u then holds zeros).
 */
int mv_actlog_usage(const char *dir, mv_actlog_usage_t *u, mv_err_t *err);

/*
 * The bytes of dir's segments past pos: the rest of segment pos.segment
 * (its size minus pos.offset, never below 0) plus every newer segment;
 * segments before pos.segment do not count.  pos.segment 0 ("before
 * everything", a reader that has read nothing yet) counts them all.  One
 * directory listing, as mv_actlog_usage.  Returns MV_OK with *bytes set,
 * or MV_ERR with err set.
 */
int mv_actlog_bytes_after(const char *dir, mv_actlog_pos_t pos,
    uint64_t *bytes, mv_err_t *err);

typedef struct mv_actlog_retention {
    int64_t   keep_ms;        /* keep segments written to within this long */
    uint64_t  max_bytes;      /* 0: no cap; above it, applied segments go
                                 even when younger than keep_ms */
    int64_t   expire_ms;      /* a registration not rewritten for this long
                                 is expired; 0: never */
} mv_actlog_retention_t;

/* Why a trim stopped where it did (the first segment it left). */
typedef enum mv_actlog_trim_stop {
    MV_ACTLOG_STOP_NEWEST = 0,     /* reached the newest segment (or none) */
    MV_ACTLOG_STOP_CONSUMER,       /* a consumer's position (held_by) */
    MV_ACTLOG_STOP_RETENTION,      /* younger than keep_ms, within max_bytes */
    MV_ACTLOG_STOP_BUSY,           /* another trim held the lock: nothing */
    MV_ACTLOG_STOP_ERROR           /* an unlink failed (err says which) */
} mv_actlog_trim_stop_t;

typedef struct mv_actlog_trim_report {
    mv_actlog_trim_stop_t  stop;
    uint64_t               removed_segments;
    uint64_t               removed_bytes;
    mv_actlog_usage_t      left;        /* the log after the trim */
    mv_actlog_pos_t        floor;       /* the lowest live position (0, 0:
                                           the whole log is held) */
    char                   held_by[MV_ACTLOG_CONSUMER_NAME_MAX + 1];
    unsigned               live, expired, damaged;   /* registrations */
    char                   expired_name[MV_ACTLOG_CONSUMER_NAME_MAX + 1];
    char                   damaged_name[MV_ACTLOG_CONSUMER_NAME_MAX + 1];
    char                   damaged_why[MV_ACTLOG_CONSUMER_NOTE_MAX + 1];
} mv_actlog_trim_report_t;

/*
 * Removes the segments of dir that retention r lets go (see "Retention" at
 * the top), at unix time now_ms, and the files of expired registrations,
 * under the consumers' lock (not waited for: when another trim holds it,
 * nothing is done and rep->stop is MV_ACTLOG_STOP_BUSY).  rep (always
 * filled) says what was removed, what is left, and why it stopped; the
 * first expired and damaged registrations are named in it.  Returns MV_OK,
 * or MV_ERR with err set when a directory cannot be read or a removal
 * failed (rep then counts what was removed before).
 */
int mv_actlog_trim(const char *dir, const mv_actlog_retention_t *r,
    int64_t now_ms, mv_actlog_trim_report_t *rep, mv_err_t *err);

#ifdef __cplusplus
}
#endif

#endif /* MV_ACTLOG_H */
