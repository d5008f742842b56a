/*
 * actlog_consumers.c -- the action log's consumer registrations: who reads
 * the log and from where it must be kept (see "Retention" and "Consumers"
 * in actlog.h; the trim that reads them is actlog_trim.c).
 *
 * A registration is dir/consumers/<name>, a few lines of text that a person
 * can read with cat and remove with rm:
 *
 *   milvuso-actlog-consumer 1
 *   name trainer-5f0c1d2e
 *   position 12 3456                (segment, byte offset)
 *   updated_ms 1733420000000        (unix ms it was written)
 *   note milvuso-worker, snapshots in /var/lib/milvuso/snapshots
 *   crc32c 1a2b3c4d                 (of every byte before this line)
 *
 * The reader is strict: every line, in this order, with nothing else; the
 * name must be the file's; the CRC must match.  Anything else is damage,
 * reported with the reason, never guessed at.
 *
 * Files whose names are not consumer names (mv_actlog_consumer_name_ok)
 * are not registrations and are left alone.
 *
 * Writing: dir/consumers/.<name>.tmp (one per name: a name has one writer,
 * so a fixed temp name is safe, and a temp left by a crash is simply
 * overwritten next time), fsync, rename over the registration, fsync of the
 * directory, all under the consumers' lock (dir/consumers/.lock, flock), so
 * that a trim never decides on a list a registration is changing.  Names
 * starting with '.' are never registrations (temps, the lock).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "actlog.h"
#include "actlog_internal.h"
#include "crc32c.h"
#include "files.h"


#define CONSUMER_MAGIC      "milvuso-actlog-consumer 1"
#define CONSUMER_FILE_MAX   1024        /* a registration is far smaller */
#define LOCK_NAME           ".lock"
#define LOCK_RETRY_MS       5


/* ---- names and paths --------------------------------------------------- */

int
mv_actlog_consumer_name_ok(const char *name)
{
    size_t  i;

    if (name == NULL || name[0] == '\0' || name[0] == '.') {
        return 0;
    }
    for (i = 0; name[i] != '\0'; i++) {
        char  ch = name[i];

        if (i == MV_ACTLOG_CONSUMER_NAME_MAX
            || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
                 || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_'
                 || ch == '-'))
        {
            return 0;
        }
    }
    return 1;
}


int
mv_actlog_consumer_path(const char *dir, const char *name, char *path,
    size_t len, mv_err_t *err)
{
    int  n;

    if (name == NULL) {
        n = snprintf(path, len, "%s/%s", dir, MV_ACTLOG_CONSUMERS_DIR);
    } else {
        n = snprintf(path, len, "%s/%s/%s", dir, MV_ACTLOG_CONSUMERS_DIR,
                     name);
    }
    if (n < 0 || (size_t) n >= len) {
        return mv_err_set(err, "path too long: %s", dir);
    }
    return MV_OK;
}


static void
sleep_ms(int ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long) (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}


int
mv_actlog_consumers_lock(const char *dir, int wait_ms, int create, int *fd,
    mv_err_t *err)
{
    char  cdir[PATH_MAX], path[PATH_MAX];
    int   waited = 0;

    *fd = -1;
    if (mv_actlog_consumer_path(dir, NULL, cdir, sizeof(cdir), err) != MV_OK
        || mv_actlog_consumer_path(dir, LOCK_NAME, path, sizeof(path), err)
           != MV_OK)
    {
        return MV_ERR;
    }
    if (create && mv_dir_make(cdir, err) != MV_OK) {
        return MV_ERR;
    }

    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) {
        if (errno == ENOENT && !create) {
            return 1;             /* no consumers directory: none to lock */
        }
        return mv_err_set(err, "open(%s): %s", path, strerror(errno));
    }

    while (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            mv_err_set(err, "flock(%s): %s", path, strerror(errno));
            close(*fd);
            *fd = -1;
            return MV_ERR;
        }
        if (waited >= wait_ms) {
            close(*fd);
            *fd = -1;
            return 0;
        }
        sleep_ms(LOCK_RETRY_MS);
        waited += LOCK_RETRY_MS;
    }
    return 1;
}


/* ---- the file's text --------------------------------------------------- */

/* 1 when note is printable ASCII or UTF-8 bytes without control bytes. */
static int
note_ok(const char *note)
{
    const unsigned char  *p = (const unsigned char *) note;

    if (strlen(note) > MV_ACTLOG_CONSUMER_NOTE_MAX) {
        return 0;
    }
    for (; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}


/* The registration's text into buf; returns its length (0: no room). */
static size_t
consumer_format(const mv_actlog_consumer_t *c, char *buf, size_t cap)
{
    int       n, m;
    uint32_t  crc;

    n = snprintf(buf, cap, CONSUMER_MAGIC "\nname %s\nposition %" PRIu64
                 " %" PRIu64 "\nupdated_ms %" PRId64 "\nnote %s\n", c->name,
                 c->pos.segment, c->pos.offset, c->updated_ms, c->note);
    if (n < 0 || (size_t) n >= cap) {
        return 0;
    }
    crc = mv_crc32c(0, buf, (size_t) n);
    m = snprintf(buf + n, cap - (size_t) n, "crc32c %08" PRIx32 "\n", crc);
    if (m < 0 || (size_t) m >= cap - (size_t) n) {
        return 0;
    }
    return (size_t) (n + m);
}


typedef struct {
    const char  *p;
    const char  *end;
} cursor_t;


/* The next line must be "key value": [*v, *v + *len) is the value. */
static int
next_line(cursor_t *c, const char *key, const char **v, size_t *len)
{
    size_t       k = strlen(key);
    const char  *nl;

    nl = memchr(c->p, '\n', (size_t) (c->end - c->p));
    if (nl == NULL || (size_t) (nl - c->p) < k + 1
        || memcmp(c->p, key, k) != 0 || c->p[k] != ' ')
    {
        return 0;
    }
    *v = c->p + k + 1;
    *len = (size_t) (nl - *v);
    c->p = nl + 1;
    return 1;
}


/* Decimal digits [s, s + len) as a number at most max. */
static int
parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t  v = 0;
    size_t    i;

    if (len == 0 || len > 20) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9'
            || v > (max - (uint64_t) (s[i] - '0')) / 10)
        {
            return 0;
        }
        v = v * 10 + (uint64_t) (s[i] - '0');
    }
    *out = v;
    return 1;
}


/*
 * Parses the text of registration name (buf[0 .. len), NUL-terminated)
 * into c.  Returns MV_OK, or MV_ERR with the reason in err.
 */
static int
consumer_parse(const char *name, const char *buf, size_t len,
    mv_actlog_consumer_t *c, mv_err_t *err)
{
    cursor_t     cur = { buf, buf + len };
    const char  *v, *sp, *crc_line;
    size_t       n;
    uint64_t     seg, off, ms, crc;

    crc_line = len >= 16 ? buf + len - 16 : NULL;      /* "crc32c %08x\n" */
    if (crc_line == NULL || memcmp(crc_line, "crc32c ", 7) != 0
        || buf[len - 1] != '\n')
    {
        return mv_err_set(err, "no crc32c line at the end");
    }
    crc = 0;
    for (n = 7; n < 15; n++) {
        char  ch = crc_line[n];
        int   d = ch >= '0' && ch <= '9' ? ch - '0'
                  : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;

        if (d < 0) {
            return mv_err_set(err, "crc32c is not 8 hex digits");
        }
        crc = crc << 4 | (uint64_t) d;
    }
    if (mv_crc32c(0, buf, (size_t) (crc_line - buf)) != (uint32_t) crc) {
        return mv_err_set(err, "crc32c mismatch");
    }
    cur.end = crc_line;

    if (len < sizeof(CONSUMER_MAGIC)
        || memcmp(buf, CONSUMER_MAGIC "\n", sizeof(CONSUMER_MAGIC)) != 0)
    {
        return mv_err_set(err, "not a registration (format line)");
    }
    cur.p += sizeof(CONSUMER_MAGIC);

    memset(c, 0, sizeof(*c));
    if (!next_line(&cur, "name", &v, &n) || n != strlen(name)
        || memcmp(v, name, n) != 0)
    {
        return mv_err_set(err, "the name line is not \"name %s\"", name);
    }
    memcpy(c->name, name, n + 1);

    if (!next_line(&cur, "position", &v, &n)
        || (sp = memchr(v, ' ', n)) == NULL
        || !parse_u64(v, (size_t) (sp - v), UINT64_MAX, &seg)
        || !parse_u64(sp + 1, n - (size_t) (sp + 1 - v), UINT64_MAX, &off))
    {
        return mv_err_set(err, "bad position line");
    }
    c->pos.segment = seg;
    c->pos.offset = off;

    if (!next_line(&cur, "updated_ms", &v, &n)
        || !parse_u64(v, n, INT64_MAX, &ms))
    {
        return mv_err_set(err, "bad updated_ms line");
    }
    c->updated_ms = (int64_t) ms;

    if (!next_line(&cur, "note", &v, &n) || n > MV_ACTLOG_CONSUMER_NOTE_MAX
        || cur.p != cur.end)
    {
        return mv_err_set(err, "bad note line, or lines after it");
    }
    memcpy(c->note, v, n);
    c->note[n] = '\0';
    return MV_OK;
}


/* ---- registering ------------------------------------------------------- */

/* temp, fsync, rename, fsync of the directory; the lock is held. */
static int
replace_file(const char *dir, const char *name, const char *text,
    size_t len, mv_err_t *err)
{
    char  cdir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX], tmpname[80];
    int   fd, rc;

    snprintf(tmpname, sizeof(tmpname), ".%s.tmp", name);
    if (mv_actlog_consumer_path(dir, NULL, cdir, sizeof(cdir), err) != MV_OK
        || mv_actlog_consumer_path(dir, tmpname, tmp, sizeof(tmp), err)
           != MV_OK
        || mv_actlog_consumer_path(dir, name, path, sizeof(path), err)
           != MV_OK)
    {
        return MV_ERR;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return mv_err_set(err, "open(%s): %s", tmp, strerror(errno));
    }
    rc = mv_file_commit(fd, mv_file_write_all(fd, text, len, tmp, err), tmp, path,
                        err);
    return rc == MV_OK ? mv_dir_fsync(cdir, err) : MV_ERR;
}


int
mv_actlog_register(const char *dir, const mv_actlog_consumer_t *c,
    int wait_ms, mv_err_t *err)
{
    char  text[CONSUMER_FILE_MAX];
    int   fd, rc;
    size_t  len;

    if (dir == NULL || dir[0] == '\0' || c == NULL) {
        return mv_err_set(err, "no directory or consumer");
    }
    if (!mv_actlog_consumer_name_ok(c->name)) {
        return mv_err_set(err, "bad consumer name \"%.80s\" (1..%d bytes of "
                          "[A-Za-z0-9._-], not starting with '.')", c->name,
                          MV_ACTLOG_CONSUMER_NAME_MAX);
    }
    if (!note_ok(c->note) || c->updated_ms < 0) {
        return mv_err_set(err, "consumer %s: note with control bytes or "
                          "over %d bytes, or a negative time", c->name,
                          MV_ACTLOG_CONSUMER_NOTE_MAX);
    }
    len = consumer_format(c, text, sizeof(text));

    rc = mv_actlog_consumers_lock(dir, wait_ms, 1, &fd, err);
    if (rc == 0) {
        return mv_err_set(err, "%s/%s/%s is locked by another process for "
                          "over %d ms", dir, MV_ACTLOG_CONSUMERS_DIR,
                          LOCK_NAME, wait_ms);
    }
    if (rc != 1) {
        return MV_ERR;
    }
    rc = replace_file(dir, c->name, text, len, err);
    close(fd);
    return rc;
}


/* ---- listing ----------------------------------------------------------- */

/*
 * Reads registration name of cdir into c (damaged = 1, with the reason in
 * note, when it does not read).  Returns 0 when the file is gone (removed
 * meanwhile), 1 otherwise.
 */
static int
consumer_read(const char *cdir, const char *name, mv_actlog_consumer_t *c)
{
    char         path[PATH_MAX], buf[CONSUMER_FILE_MAX + 1];
    struct stat  st;
    mv_err_t     why;
    ssize_t      got = 0;
    size_t       len = 0;
    int          fd;

    memset(c, 0, sizeof(*c));
    memcpy(c->name, name, strlen(name) + 1);   /* a checked name: fits */
    if ((size_t) snprintf(path, sizeof(path), "%s/%s", cdir, c->name)
        >= sizeof(path))
    {
        mv_err_set(&why, "path too long");
        c->updated_ms = mv_clock_realtime_ms();
        goto damaged;
    }

    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        mv_err_set(&why, "stat: %s", strerror(errno));
        c->updated_ms = mv_clock_realtime_ms();  /* age unknown: not old */
        goto damaged;
    }
    c->updated_ms = (int64_t) st.st_mtim.tv_sec * 1000
                    + st.st_mtim.tv_nsec / 1000000;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        mv_err_set(&why, "open: %s", strerror(errno));
        goto damaged;
    }
    while (len < sizeof(buf) - 1) {
        got = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        len += (size_t) got;
    }
    if (got < 0) {
        mv_err_set(&why, "read: %s", strerror(errno));
    }
    close(fd);
    if (got < 0) {
        goto damaged;
    }

    buf[len] = '\0';
    if (len >= CONSUMER_FILE_MAX) {
        mv_err_set(&why, "larger than %d bytes", CONSUMER_FILE_MAX);
    } else if (memchr(buf, '\0', len) != NULL) {
        mv_err_set(&why, "NUL bytes");
    } else if (consumer_parse(name, buf, len, c, &why) == MV_OK) {
        return 1;
    }

damaged:

    c->damaged = 1;
    snprintf(c->note, sizeof(c->note), "%.*s", MV_ACTLOG_CONSUMER_NOTE_MAX,
             why.msg);
    return 1;
}


static int
by_name(const void *a, const void *b)
{
    return strcmp(((const mv_actlog_consumer_t *) a)->name,
                  ((const mv_actlog_consumer_t *) b)->name);
}


int
mv_actlog_consumers(const char *dir, mv_actlog_consumer_t **list, size_t *n,
    mv_err_t *err)
{
    char                   cdir[PATH_MAX];
    DIR                   *d;
    struct dirent         *e;
    mv_actlog_consumer_t  *out = NULL, *grown;
    size_t                 cap = 0, count = 0;

    *list = NULL;
    *n = 0;
    if (mv_actlog_consumer_path(dir, NULL, cdir, sizeof(cdir), err)
        != MV_OK)
    {
        return MV_ERR;
    }

    d = opendir(cdir);
    if (d == NULL) {
        if (errno == ENOENT) {
            return MV_OK;
        }
        return mv_err_set(err, "opendir(%s): %s", cdir, strerror(errno));
    }

    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (!mv_actlog_consumer_name_ok(e->d_name)) {
            continue;             /* the lock, temps, . and .., strangers */
        }
        if (count == cap) {
            cap = cap == 0 ? 8 : cap * 2;
            grown = realloc(out, cap * sizeof(*out));
            if (grown == NULL) {
                free(out);
                closedir(d);
                return mv_err_set(err, "out of memory");
            }
            out = grown;
        }
        count += (size_t) consumer_read(cdir, e->d_name, &out[count]);
        errno = 0;
    }
    if (errno != 0) {
        mv_err_set(err, "readdir(%s): %s", cdir, strerror(errno));
        free(out);
        closedir(d);
        return MV_ERR;
    }
    closedir(d);

    if (count > 0) {
        qsort(out, count, sizeof(*out), by_name);
    }
    *list = out;
    *n = count;
    return MV_OK;
}
