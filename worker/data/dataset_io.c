/*
 * dataset_io.c -- reading dataset files and writing the tsv format (see
 * dataset.h for the contract).
 *
 * Files are mapped (or, for pipes and stdin, read whole) and handed to the
 * buffer loader, which walks lines with memchr and has each one parsed in
 * place by its format (dataset_formats.c): no per-line allocation except
 * inside mv_action_parse for jsonl.  Line numbers count every line, blank
 * ones included, as an editor does.  Loaders fill a fresh dataset and swap
 * it in only on success.
 *
 * The tsv writer is crash-safe the usual way: a temporary file beside the
 * target, fsync, rename over it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/dataset_internal.h"


static int
blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
            return 0;
        }
    }

    return 1;
}


/*
 * Reads the lines of bytes[0..len) into d (which may already hold ids and
 * interactions).  *added counts the interactions read (merged ones too).
 * On error d holds part of the input: callers load into a scratch dataset.
 */
static int
load_into(mvw_dataset_t *d, const char *name, const char *bytes, size_t len,
    const mvw_load_opts_t *o, size_t *added, mv_err_t *err)
{
    mvw_line_ctx_t   c;
    float        defaults[MV_ACTION_TYPES];
    size_t       pos = 0, lineno = 0;
    mv_err_t     e;
    mvw_line_rec_t     r;
    int          rc;

    *added = 0;
    memset(&c, 0, sizeof(c));
    c.o = o;
    c.first = 1;
    if (o->action_weights != NULL) {
        c.weights = o->action_weights;
        for (int t = 0; t < MV_ACTION_TYPES; t++) {
            if (!isfinite(c.weights[t])) {
                return mv_err_set(err, "%s: the weight of %s is not finite",
                                  name,
                                  mv_action_type_name((mv_action_type_t) t));
            }
        }
    } else {
        mvw_action_weights_default(defaults);
        c.weights = defaults;
    }
    if ((unsigned) o->format > MVW_FORMAT_JSONL) {
        return mv_err_set(err, "%s: unknown format %d", name, (int) o->format);
    }

    while (pos < len) {
        const char  *line = bytes + pos;
        const char  *nl = memchr(line, '\n', len - pos);
        size_t       n = nl ? (size_t) (nl - line) : len - pos;

        pos += n + (nl != NULL);
        lineno++;
        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }
        if (blank(line, n)) {
            continue;
        }

        rc = mvw_dataset_parse_line(&c, line, n, &r, &e);

        if (rc == LINE_ADD) {
            rc = mvw_dataset_add_bytes(d, r.user, r.user_len, r.item,
                                       r.item_len, r.weight, r.time_ms, &e);
            if (rc == MV_OK) {
                (*added)++;
            }
        } else if (rc == LINE_DROP) {
            /* Not a positive, but the ids must still be well formed. */
            rc = !mv_id_valid(r.user, r.user_len)
                 ? mv_err_set(&e, "user id must be " MVW_ID_RULE)
                 : !mv_id_valid(r.item, r.item_len)
                 ? mv_err_set(&e, "item id must be " MVW_ID_RULE)
                 : MV_OK;
        } else if (rc == LINE_HEADER) {
            rc = MV_OK;
        }
        if (rc != MV_OK) {
            return mv_err_set(err, "%s:%zu: %s", name, lineno, e.msg);
        }
    }

    return MV_OK;
}


int
mvw_dataset_load_buffer(mvw_dataset_t *d, const char *name,
    const char *bytes, size_t len, const mvw_load_opts_t *o, mv_err_t *err)
{
    mvw_dataset_t  tmp;
    size_t         added;

    mvw_dataset_init(&tmp);
    if (load_into(&tmp, name, bytes, len, o, &added, err) != MV_OK) {
        mvw_dataset_free(&tmp);
        return MV_ERR;
    }
    if (added == 0) {
        mvw_dataset_free(&tmp);
        return mv_err_set(err, "%s: no interactions", name);
    }
    mvw_dataset_drop_pairs(&tmp);
    mvw_dataset_free(d);
    *d = tmp;

    return MV_OK;
}


/* Reads all of fd into a malloc'd buffer. */
static int
read_all(int fd, char **out, size_t *len)
{
    char    *buf = NULL, *nb;
    size_t   cap = 0, n = 0;
    ssize_t  got;

    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                errno = ENOMEM;
                return MV_ERR;
            }
            buf = nb;
        }
        got = read(fd, buf + n, cap - n);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            free(buf);
            return MV_ERR;
        }
        if (got == 0) {
            break;
        }
        n += (size_t) got;
    }
    *out = buf;
    *len = n;

    return MV_OK;
}


/* Loads the file at path into d (see load_into); no interactions is an
   error. */
static int
load_path(mvw_dataset_t *d, const char *path, const mvw_load_opts_t *o,
    mv_err_t *err)
{
    struct stat  st;
    int          fd, rc, mapped = 0;
    char        *buf = NULL;
    size_t       len = 0, added = 0;

    fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY);
    if (fd < 0) {
        return mv_err_set(err, "%s: %s", path, strerror(errno));
    }

    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0
        && (uint64_t) st.st_size <= SIZE_MAX)
    {
        len = (size_t) st.st_size;
        buf = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (buf == MAP_FAILED) {
            buf = NULL;
        } else {
            mapped = 1;
            (void) madvise(buf, len, MADV_SEQUENTIAL);
        }
    }
    if (!mapped && read_all(fd, &buf, &len) != MV_OK) {
        mv_err_set(err, "%s: %s", path, strerror(errno));
        if (fd != STDIN_FILENO) {
            close(fd);
        }
        return MV_ERR;
    }
    if (fd != STDIN_FILENO) {
        close(fd);
    }

    rc = load_into(d, path, buf, len, o, &added, err);
    if (rc == MV_OK && added == 0) {
        rc = mv_err_set(err, "%s: no interactions", path);
    }

    if (mapped) {
        munmap(buf, len);
    } else {
        free(buf);
    }
    return rc;
}


int
mvw_dataset_load_opts(mvw_dataset_t *d, const char *path,
    const mvw_load_opts_t *o, mv_err_t *err)
{
    mvw_dataset_t  tmp;

    mvw_dataset_init(&tmp);
    if (load_path(&tmp, path, o, err) != MV_OK) {
        mvw_dataset_free(&tmp);
        return MV_ERR;
    }
    mvw_dataset_drop_pairs(&tmp);
    mvw_dataset_free(d);
    *d = tmp;

    return MV_OK;
}


int
mvw_dataset_load(mvw_dataset_t *d, const char *path, mvw_format_t fmt,
    const float *action_weights, mv_err_t *err)
{
    mvw_load_opts_t  o = { fmt, action_weights, 0 };

    return mvw_dataset_load_opts(d, path, &o, err);
}


int
mvw_dataset_load_pair_opts(const char *base_path, const char *test_path,
    const mvw_load_opts_t *o, mvw_dataset_t *train, mvw_dataset_t *test,
    mv_err_t *err)
{
    mvw_dataset_t  a, b;

    mvw_dataset_init(&a);
    mvw_dataset_init(&b);
    if (load_path(&a, base_path, o, err) != MV_OK
        || mvw_idmap_copy(&b.users, &a.users, err) != MV_OK
        || mvw_idmap_copy(&b.items, &a.items, err) != MV_OK
        || load_path(&b, test_path, o, err) != MV_OK
        || mvw_idmap_copy(&a.users, &b.users, err) != MV_OK
        || mvw_idmap_copy(&a.items, &b.items, err) != MV_OK)
    {
        mvw_dataset_free(&a);
        mvw_dataset_free(&b);
        return MV_ERR;
    }
    mvw_dataset_drop_pairs(&a);
    mvw_dataset_drop_pairs(&b);
    mvw_dataset_free(train);
    mvw_dataset_free(test);
    *train = a;
    *test = b;

    return MV_OK;
}


int
mvw_dataset_load_pair(const char *base_path, const char *test_path,
    mvw_format_t fmt, const float *action_weights, mvw_dataset_t *train,
    mvw_dataset_t *test, mv_err_t *err)
{
    mvw_load_opts_t  o = { fmt, action_weights, 0 };

    return mvw_dataset_load_pair_opts(base_path, test_path, &o, train, test,
                                      err);
}


int
mvw_dataset_write_tsv(const mvw_dataset_t *d, const char *path,
    mv_err_t *err)
{
    size_t   plen = strlen(path);
    char    *tmp;
    FILE    *f = NULL;
    int      fd;

    tmp = malloc(plen + sizeof(".tmp.XXXXXX"));
    if (tmp == NULL) {
        return mv_err_set(err, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));
    fd = mkstemp(tmp);
    if (fd < 0) {
        mv_err_set(err, "%s: %s", path, strerror(errno));
        free(tmp);
        return MV_ERR;
    }
    f = fdopen(fd, "w");
    if (f == NULL) {
        mv_err_set(err, "%s: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }

    for (size_t j = 0; j < d->n; j++) {
        const mvw_interaction_t  *x = &d->x[j];

        if (fprintf(f, "%s\t%s\t%.9g\t%lld\n",
                    mvw_idmap_get(&d->users, x->user),
                    mvw_idmap_get(&d->items, x->item), (double) x->weight,
                    (long long) x->time_ms) < 0)
        {
            break;
        }
    }
    if (ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        mv_err_set(err, "%s: %s", path, strerror(errno));
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0) {
        mv_err_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        mv_err_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    free(tmp);

    return MV_OK;

fail:
    unlink(tmp);
    free(tmp);
    return MV_ERR;
}
