/*
 * actlog_internal.h -- what the appender (actlog.c) and the tailing reader
 * (actlog_read.c) of the action log share.  Not part of libmilvuso's
 * interface.
 */
#ifndef MV_ACTLOG_INTERNAL_H
#define MV_ACTLOG_INTERNAL_H

#include <stdint.h>

#include "actlog.h"

#define ACTLOG_PREFIX       "actions-"
#define ACTLOG_SUFFIX       ".log"
#define ACTLOG_NAME_SIZE    64
#define ACTLOG_MAX_SEQ      ((1ull << 24) - 1)
#define ACTLOG_MAX_RECORD   (MV_ACTLOG_HEADER_SIZE + MV_ACTLOG_MAX_PAYLOAD)

static const uint8_t  actlog_magic[4] = { 0xff, 0x4d, 0x56, 0xfe };

static inline void
put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
}


static inline void
put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}


static inline uint16_t
get_le16(const uint8_t *p)
{
    return (uint16_t) (p[0] | (p[1] << 8));
}


static inline uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8)
           | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}


typedef struct mv_actlog_seg_scan {
    uint64_t  lowest;       /* 0 when none */
    uint64_t  highest;      /* 0 when none */
    uint64_t  above;        /* the smallest > the asked number, 0 if none */
    uint64_t  after;        /* the asked number */
} mv_actlog_seg_scan_t;

/* Called for a segment file (name, number seq) of the directory open as
   dfd; MV_OK goes on, MV_ERR (with err set) stops the walk. */
typedef int (*mv_actlog_segment_fn)(void *arg, int dfd, const char *name,
    uint64_t seq, mv_err_t *err);

/*
 * Calls fn for every segment of dir (names that parse as segments, number
 * >= 1), in directory order: the one readdir loop of the log.  A missing
 * dir has none.  Returns MV_OK, or MV_ERR with err set (by fn, or when dir
 * cannot be read).
 */
int mv_actlog_each_segment(const char *dir, mv_actlog_segment_fn fn,
    void *arg, mv_err_t *err);

/*
 * Lists the segments of dir: the lowest and highest numbers and the
 * smallest above after.  A missing directory has none.  Returns MV_OK or
 * MV_ERR with err set.
 */
int mv_actlog_scan_segments(const char *dir, uint64_t after,
    mv_actlog_seg_scan_t *s, mv_err_t *err);

/* Writes dir/<segment seq's name> into path (len bytes).  MV_OK/MV_ERR. */
int mv_actlog_segment_path(const char *dir, uint64_t seq, char *path,
    size_t len, mv_err_t *err);

/*
 * Writes dir/consumers/<name> into path (len bytes), or dir/consumers when
 * name is NULL.  MV_OK/MV_ERR.
 */
int mv_actlog_consumer_path(const char *dir, const char *name, char *path,
    size_t len, mv_err_t *err);

/*
 * Takes the consumers' lock, dir/consumers/.lock (flock, exclusive),
 * trying again every few milliseconds for at most wait_ms.  With create,
 * dir/consumers is made when missing; without, a missing one means that
 * nothing is registered and there is nothing to lock (1 with *fd = -1).
 * Returns 1 with the lock's descriptor in *fd (close it to unlock), 0 when
 * another process still holds it (*fd = -1), MV_ERR with err set.
 */
int mv_actlog_consumers_lock(const char *dir, int wait_ms, int create,
    int *fd, mv_err_t *err);

#endif /* MV_ACTLOG_INTERNAL_H */
