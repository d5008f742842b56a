/*
 * dedupe.h -- the trainer's memory of the last N client event ids it
 * applied (actions marked "client_event_id":true, shared/events.h), so
 * that a client retrying an unconfirmed post has its action applied once.
 *
 * An id is kept as its 64-bit FNV-1a hash (0 is read as 1: 0 marks an
 * empty slot).  A FIFO ring of window hashes gives the order of eviction:
 * the oldest is forgotten when a new one comes and the ring is full --
 * by count, never by wall clock, so replaying the same records from the
 * same starting set makes the same decisions (what crash recovery needs).
 * An open-addressing table (linear probing, backward-shift deletion, at
 * most half full) answers "seen?" in O(1).  Each hash is in the set at
 * most once, so ring and table hold the same hashes.  Two different ids
 * with the same hash would be taken for one: about window^2 / 2^65 for a
 * window of ids, 3e-8 for a million.
 *
 * The side file (mvw_dedupe_save / mvw_dedupe_load): the set as of one
 * snapshot generation, trainer-private, beside the snapshot it belongs to.
 * All integers little-endian:
 *
 *   offset  size       field
 *   0       8          magic "MVDEDUP\0"
 *   8       4          version (1)
 *   12      4          reserved, 0
 *   16      8          count: the hashes that follow
 *   24      8 * count  the hashes, oldest first: each non-zero, no two equal
 *   24+8c   4          CRC-32C of every byte before it
 *
 * The file is exactly 28 + 8 * count bytes; a reader checks every field.
 * Memory is allocated on the first insert (a window never used costs
 * nothing): ring 8 bytes and table 16 to 32 bytes per id of the window.
 */
#ifndef MVW_DEDUPE_H
#define MVW_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"

#define MVW_DEDUPE_MAGIC       "MVDEDUP"     /* 7 bytes + NUL = 8 */
#define MVW_DEDUPE_VERSION     1
#define MVW_DEDUPE_HEADER      24
#define MVW_DEDUPE_WINDOW_MAX  ((size_t) 1 << 30)

typedef struct mvw_dedupe {
    size_t     window;      /* ids remembered; 0 = off */
    uint64_t  *ring;        /* window hashes, oldest at head */
    size_t     head;
    size_t     len;
    uint64_t  *slots;       /* 0 = empty */
    size_t     mask;        /* slots - 1 */
} mvw_dedupe_t;

/* An empty set remembering up to window ids (0: off, remembers none). */
void mvw_dedupe_init(mvw_dedupe_t *d, size_t window);

/* Frees d's memory; d is then empty (same window). */
void mvw_dedupe_free(mvw_dedupe_t *d);

/* Forgets every id (keeps the memory). */
void mvw_dedupe_clear(mvw_dedupe_t *d);

/* The hash the set keeps of id (NUL-terminated): FNV-1a 64, never 0. */
uint64_t mvw_dedupe_hash(const char *id);

/*
 * Makes sure the next mvw_dedupe_add cannot fail.  MV_OK, or MV_ERR with
 * err set (out of memory).  Nothing to do when the window is 0.
 */
int mvw_dedupe_reserve(mvw_dedupe_t *d, mv_err_t *err);

/* 1 when h is in the set, 0 otherwise (always 0 when the window is 0). */
int mvw_dedupe_contains(const mvw_dedupe_t *d, uint64_t h);

/*
 * Remembers h, which must not be in the set, forgetting the oldest id when
 * the window is full.  MV_OK, or MV_ERR with err set (out of memory; the
 * set is unchanged); after mvw_dedupe_reserve it is always MV_OK.  A
 * window of 0 remembers nothing.
 */
int mvw_dedupe_add(mvw_dedupe_t *d, uint64_t h, mv_err_t *err);

/* Ids remembered now. */
size_t mvw_dedupe_count(const mvw_dedupe_t *d);

/*
 * The set's file bytes (the layout above) into *buf_out (malloc'd, the
 * caller frees it) and their size into *size_out: a copy another thread
 * can write.  MV_OK, or MV_ERR with err set (out of memory).
 */
int mvw_dedupe_encode(const mvw_dedupe_t *d, void **buf_out,
    size_t *size_out, mv_err_t *err);

/*
 * Writes size bytes of buf to path crash-safely: to a fresh temp file
 * beside it ("<path>.tmp-*", mv_file_open_temp), fsync'd, renamed over
 * path (mv_file_commit), then path's directory fsync'd.  MV_OK, or MV_ERR
 * with err set and path as it was.
 */
int mvw_dedupe_write(const char *path, const void *buf, size_t size,
    mv_err_t *err);

/*
 * Writes the set to path crash-safely (mvw_dedupe_encode, then
 * mvw_dedupe_write).  MV_OK, or MV_ERR with
 * err set and path as it was.
 */
int mvw_dedupe_save(const mvw_dedupe_t *d, const char *path,
    mv_err_t *err);

/*
 * Reads len bytes of a side file into d, which must be empty: every field
 * checked (size, magic, version, reserved, CRC, non-zero and distinct
 * among those kept).  When the file holds more ids than d's window, the
 * newest window of them are kept.  MV_OK, or MV_ERR with err set and d left
 * empty.
 */
int mvw_dedupe_decode(mvw_dedupe_t *d, const void *buf, size_t len,
    mv_err_t *err);

/* mvw_dedupe_decode of the file at path.  MV_OK or MV_ERR (d empty). */
int mvw_dedupe_load(mvw_dedupe_t *d, const char *path, mv_err_t *err);

#endif /* MVW_DEDUPE_H */
