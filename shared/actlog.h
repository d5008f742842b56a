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

#ifdef __cplusplus
}
#endif

#endif /* MV_ACTLOG_H */
