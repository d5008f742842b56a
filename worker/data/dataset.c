/*
 * dataset.c -- interaction datasets: id maps, loaders, splits, matrix views
 * (see dataset.h for the formats and the contract).
 *
 * Id maps keep every id NUL-terminated in one growing byte array (offsets
 * into it per index) and find them through open addressing with linear
 * probing on mv_id_hash_seeded, at load factor <= 1/2.  The seed is drawn
 * from getrandom() per map, because user and item ids of an action log are
 * chosen by clients and must not be able to make loading quadratic; it only
 * decides where ids sit in the slots, never their indices, so everything
 * observable stays deterministic.  The (user, item) pair index that merges
 * repeated pairs is the same kind of table over interaction indices, the
 * pair hashed with MurmurHash3's finaliser after a random seed is XORed in;
 * it lives only while a dataset is being built (a loaded dataset drops it,
 * the next mvw_dataset_add rebuilds it).
 *
 * Adding an interaction first reserves room in every array it may touch,
 * then writes: a failed add leaves the dataset exactly as it was.  Loaders
 * fill a fresh dataset and swap it in only on success.
 *
 * Files are mapped (or, for pipes and stdin, read whole) and handed to the
 * buffer loader, which walks lines with memchr and parses fields in place:
 * no per-line allocation except inside mv_action_parse for jsonl.  Line
 * numbers count every line, blank ones included, as an editor does.
 *
 * Splits group each user's interactions in input order with a counting
 * sort, decide per interaction whether it goes to test, and copy in input
 * order, so that train and test are subsequences of the input.  Matrix
 * views are two counting sorts (by column, then stably by row), which gives
 * rows with ascending columns in O(n + rows + cols).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"
#include "synth.h"

/* Most ids a map holds (its slots must stay a uint32_t power of two). */
#define IDMAP_MAX           (1u << 30)

/* Unix seconds and ms of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define UNIX_S_MIN          INT64_C(-62135596800)
#define UNIX_S_MAX          INT64_C(253402300799)
#define UNIX_MS_MIN         (UNIX_S_MIN * 1000)
#define UNIX_MS_MAX         (UNIX_S_MAX * 1000 + 999)

/* The smallest double that rounds to infinity as a float. */
#define FLOAT_OVERFLOW      0x1.ffffffp127

/* Longest number field parsed (strtod gets a NUL-terminated copy). */
#define NUMBER_MAX          63

/* Fields of a line looked at; more are counted, not stored. */
#define FIELDS_MAX          8

#define ID_RULE             "1 to 64 bytes of [A-Za-z0-9._:-]"

typedef struct field {
    const char  *s;
    size_t       len;
} field_t;

/* One parsed line. */
typedef struct record {
    const char  *user;
    size_t       user_len;
    const char  *item;
    size_t       item_len;
    float        weight;        /* <= 0: read but not a positive */
    int64_t      time_ms;
} record_t;

/* What the line parsers need beyond the line. */
typedef struct line_ctx {
    const mvw_load_opts_t  *o;
    const float            *weights;    /* jsonl, MV_ACTION_TYPES */
    int                     first;      /* first non-blank line */
    mv_action_t             action;     /* jsonl ids live here */
} line_ctx_t;

/* What a line parser found (MV_ERR for a bad line). */
enum { LINE_ADD = 1, LINE_DROP, LINE_HEADER };


static uint64_t
random_seed(const void *salt)
{
    uint64_t  seed = 0;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed)) {
        /* No entropy yet (early boot): the address and the clock still
           keep a precomputed set of colliding ids from working. */
        seed = (uint64_t) (uintptr_t) salt ^ (uint64_t) time(NULL)
               ^ (uint64_t) clock();
    }

    return seed;
}


static uint64_t
fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;

    return k;
}


/* ---- id maps ------------------------------------------------------------- */

void
mvw_idmap_init(mvw_idmap_t *m)
{
    memset(m, 0, sizeof(*m));
    m->seed = random_seed(m);
}


void
mvw_idmap_free(mvw_idmap_t *m)
{
    free(m->offsets);
    free(m->bytes);
    free(m->slots);
    mvw_idmap_init(m);
}


int64_t
mvw_idmap_find(const mvw_idmap_t *m, const char *s, size_t len)
{
    uint32_t  mask, h, v;

    if (m->slot_cap == 0) {
        return -1;
    }
    mask = m->slot_cap - 1;
    h = (uint32_t) mv_id_hash_seeded(m->seed, s, len) & mask;
    while ((v = m->slots[h]) != 0) {
        size_t  off = m->offsets[v - 1];

        if (m->offsets[v] - off - 1 == len
            && memcmp(m->bytes + off, s, len) == 0)
        {
            return (int64_t) v - 1;
        }
        h = (h + 1) & mask;
    }

    return -1;
}


const char *
mvw_idmap_get(const mvw_idmap_t *m, uint32_t i)
{
    return m->bytes + m->offsets[i];
}


static void
idmap_slot_put(const mvw_idmap_t *m, uint32_t *slots, uint32_t cap,
    uint32_t i)
{
    size_t    off = m->offsets[i];
    size_t    len = m->offsets[i + 1] - off - 1;
    uint32_t  mask = cap - 1;
    uint32_t  h = (uint32_t) mv_id_hash_seeded(m->seed, m->bytes + off, len)
                  & mask;

    while (slots[h] != 0) {
        h = (h + 1) & mask;
    }
    slots[h] = i + 1;
}


/* Makes room for one more id of len bytes; m's contents stay as they are. */
static int
idmap_reserve(mvw_idmap_t *m, size_t len)
{
    if (m->n >= IDMAP_MAX - 1) {
        return MV_ERR;
    }

    if (m->n + 2 > m->cap) {
        uint32_t  ncap = m->cap ? m->cap * 2 : 64;
        size_t   *no = realloc(m->offsets, (size_t) ncap * sizeof(size_t));

        if (no == NULL) {
            return MV_ERR;
        }
        if (m->cap == 0) {
            no[0] = 0;
        }
        m->offsets = no;
        m->cap = ncap;
    }

    if (len + 1 > m->bytes_cap - m->bytes_len) {
        size_t  ncap = m->bytes_cap ? m->bytes_cap : 1024;
        char   *nb;

        while (ncap - m->bytes_len < len + 1) {
            if (ncap > SIZE_MAX / 2) {
                return MV_ERR;
            }
            ncap *= 2;
        }
        nb = realloc(m->bytes, ncap);
        if (nb == NULL) {
            return MV_ERR;
        }
        m->bytes = nb;
        m->bytes_cap = ncap;
    }

    if ((uint64_t) (m->n + 1) * 2 > m->slot_cap) {
        uint32_t   ncap = m->slot_cap ? m->slot_cap * 2 : 64;
        uint32_t  *ns = calloc(ncap, sizeof(uint32_t));

        if (ns == NULL) {
            return MV_ERR;
        }
        for (uint32_t i = 0; i < m->n; i++) {
            idmap_slot_put(m, ns, ncap, i);
        }
        free(m->slots);
        m->slots = ns;
        m->slot_cap = ncap;
    }

    return MV_OK;
}


/* Appends a new id; idmap_reserve(m, len) must have succeeded. */
static uint32_t
idmap_append(mvw_idmap_t *m, const char *s, size_t len)
{
    uint32_t  i = m->n;

    memcpy(m->bytes + m->bytes_len, s, len);
    m->bytes[m->bytes_len + len] = '\0';
    m->bytes_len += len + 1;
    m->offsets[i + 1] = m->bytes_len;
    m->n = i + 1;
    idmap_slot_put(m, m->slots, m->slot_cap, i);

    return i;
}


int
mvw_idmap_intern(mvw_idmap_t *m, const char *s, size_t len, uint32_t *idx,
    int *added, mv_err_t *err)
{
    int64_t  found;

    if (!mv_id_valid(s, len)) {
        return mv_err_set(err, "invalid id (want " ID_RULE ")");
    }
    found = mvw_idmap_find(m, s, len);
    if (found >= 0) {
        *idx = (uint32_t) found;
        if (added != NULL) {
            *added = 0;
        }
        return MV_OK;
    }
    if (m->n >= IDMAP_MAX - 1) {
        return mv_err_set(err, "too many ids (at most %u)", IDMAP_MAX - 2);
    }
    if (idmap_reserve(m, len) != MV_OK) {
        return mv_err_set(err, "out of memory");
    }
    *idx = idmap_append(m, s, len);
    if (added != NULL) {
        *added = 1;
    }

    return MV_OK;
}


int
mvw_idmap_copy(mvw_idmap_t *dst, const mvw_idmap_t *src, mv_err_t *err)
{
    mvw_idmap_t  c;

    mvw_idmap_free(dst);
    if (src->n == 0) {
        return MV_OK;
    }

    memset(&c, 0, sizeof(c));
    c.n = src->n;
    c.cap = src->n + 1;
    c.bytes_len = src->bytes_len;
    c.bytes_cap = src->bytes_len;
    c.slot_cap = src->slot_cap;
    c.seed = src->seed;
    c.offsets = malloc((size_t) c.cap * sizeof(size_t));
    c.bytes = malloc(c.bytes_cap);
    c.slots = malloc((size_t) c.slot_cap * sizeof(uint32_t));
    if (c.offsets == NULL || c.bytes == NULL || c.slots == NULL) {
        free(c.offsets);
        free(c.bytes);
        free(c.slots);
        return mv_err_set(err, "out of memory");
    }
    memcpy(c.offsets, src->offsets, (size_t) c.cap * sizeof(size_t));
    memcpy(c.bytes, src->bytes, c.bytes_len);
    memcpy(c.slots, src->slots, (size_t) c.slot_cap * sizeof(uint32_t));
    *dst = c;

    return MV_OK;
}


int
mvw_idmap_equal(const mvw_idmap_t *a, const mvw_idmap_t *b)
{
    if (a->n != b->n || a->bytes_len != b->bytes_len) {
        return 0;
    }
    if (a->n == 0) {
        return 1;
    }

    return memcmp(a->offsets, b->offsets, (a->n + 1) * sizeof(size_t)) == 0
           && memcmp(a->bytes, b->bytes, a->bytes_len) == 0;
}


/* ---- the (user, item) pair index ----------------------------------------- */

static uint64_t
pair_key(uint32_t user, uint32_t item)
{
    return (uint64_t) user << 32 | item;
}


static size_t
pair_slot(const mvw_pairs_t *p, uint32_t user, uint32_t item)
{
    return (size_t) fmix64(pair_key(user, item) ^ p->seed) & (p->cap - 1);
}


/* Interaction index of a pair of d, or -1. */
static int64_t
pairs_find(const mvw_dataset_t *d, uint32_t user, uint32_t item)
{
    const mvw_pairs_t  *p = &d->pairs;
    size_t              h, v;

    if (p->cap == 0) {
        return -1;
    }
    h = pair_slot(p, user, item);
    while ((v = p->slots[h]) != 0) {
        if (d->x[v - 1].user == user && d->x[v - 1].item == item) {
            return (int64_t) v - 1;
        }
        h = (h + 1) & (p->cap - 1);
    }

    return -1;
}


/* Enters interaction idx of x (a pair not in the index yet). */
static void
pairs_put(mvw_pairs_t *p, const mvw_interaction_t *x, size_t idx)
{
    size_t  h = pair_slot(p, x->user, x->item);

    while (p->slots[h] != 0) {
        h = (h + 1) & (p->cap - 1);
    }
    p->slots[h] = idx + 1;
}


/* Makes the index hold every interaction of d with room for want in all. */
static int
pairs_reserve(mvw_dataset_t *d, size_t want)
{
    mvw_pairs_t  np;
    size_t       cap;

    if (d->pairs.cap != 0 && want <= d->pairs.cap / 2) {
        return MV_OK;
    }
    cap = d->pairs.cap ? d->pairs.cap : 64;
    while (cap / 2 < want) {
        if (cap > SIZE_MAX / 2 / sizeof(size_t)) {
            return MV_ERR;
        }
        cap *= 2;
    }

    np.cap = cap;
    np.seed = d->pairs.cap ? d->pairs.seed : random_seed(d);
    np.slots = calloc(cap, sizeof(size_t));
    if (np.slots == NULL) {
        return MV_ERR;
    }
    for (size_t j = 0; j < d->n; j++) {
        pairs_put(&np, &d->x[j], j);
    }
    free(d->pairs.slots);
    d->pairs = np;

    return MV_OK;
}


/* Frees the pair index (loaded datasets do not keep it). */
static void
pairs_drop(mvw_dataset_t *d)
{
    free(d->pairs.slots);
    memset(&d->pairs, 0, sizeof(d->pairs));
}


/* ---- datasets ------------------------------------------------------------ */

void
mvw_dataset_init(mvw_dataset_t *d)
{
    memset(d, 0, sizeof(*d));
    mvw_idmap_init(&d->users);
    mvw_idmap_init(&d->items);
}


void
mvw_dataset_free(mvw_dataset_t *d)
{
    mvw_idmap_free(&d->users);
    mvw_idmap_free(&d->items);
    free(d->x);
    free(d->pairs.slots);
    mvw_dataset_init(d);
}


static int
reserve_interactions(mvw_dataset_t *d, size_t want)
{
    mvw_interaction_t  *nx;
    size_t              ncap;

    if (want <= d->cap) {
        return MV_OK;
    }
    ncap = d->cap ? d->cap : 256;
    while (ncap < want) {
        if (ncap > SIZE_MAX / 2 / sizeof(mvw_interaction_t)) {
            return MV_ERR;
        }
        ncap *= 2;
    }
    nx = realloc(d->x, ncap * sizeof(mvw_interaction_t));
    if (nx == NULL) {
        return MV_ERR;
    }
    d->x = nx;
    d->cap = ncap;

    return MV_OK;
}


/*
 * Adds (or merges) one interaction given by id bytes.  Everything is
 * checked and reserved before the first write, so d is unchanged on error.
 */
static int
add_ids(mvw_dataset_t *d, const char *us, size_t ulen, const char *is,
    size_t ilen, float weight, int64_t time_ms, mv_err_t *err)
{
    int64_t             fu, fi, fp = -1;
    mvw_interaction_t  *x;

    if (!mv_id_valid(us, ulen)) {
        return mv_err_set(err, "user id must be " ID_RULE);
    }
    if (!mv_id_valid(is, ilen)) {
        return mv_err_set(err, "item id must be " ID_RULE);
    }
    if (!isfinite(weight) || !(weight > 0.0f)) {
        return mv_err_set(err, "weight must be finite and > 0");
    }

    fu = mvw_idmap_find(&d->users, us, ulen);
    fi = mvw_idmap_find(&d->items, is, ilen);
    if (fu >= 0 && fi >= 0) {
        /* A loaded or split dataset has no pair index yet. */
        if (pairs_reserve(d, d->n + 1) != MV_OK) {
            return mv_err_set(err, "out of memory");
        }
        fp = pairs_find(d, (uint32_t) fu, (uint32_t) fi);
    }
    if (fp >= 0) {
        float  sum;

        x = &d->x[fp];
        sum = x->weight + weight;
        if (!isfinite(sum)) {
            return mv_err_set(err, "the summed weight of the repeated pair "
                              "is not finite");
        }
        x->weight = sum;
        if (time_ms > x->time_ms) {
            x->time_ms = time_ms;
        }
        return MV_OK;
    }

    if (fu < 0 && d->users.n >= IDMAP_MAX - 1) {
        return mv_err_set(err, "too many users (at most %u)", IDMAP_MAX - 2);
    }
    if (fi < 0 && d->items.n >= IDMAP_MAX - 1) {
        return mv_err_set(err, "too many items (at most %u)", IDMAP_MAX - 2);
    }
    if ((fu < 0 && idmap_reserve(&d->users, ulen) != MV_OK)
        || (fi < 0 && idmap_reserve(&d->items, ilen) != MV_OK)
        || reserve_interactions(d, d->n + 1) != MV_OK
        || pairs_reserve(d, d->n + 1) != MV_OK)
    {
        return mv_err_set(err, "out of memory");
    }

    if (fu < 0) {
        fu = idmap_append(&d->users, us, ulen);
    }
    if (fi < 0) {
        fi = idmap_append(&d->items, is, ilen);
    }
    x = &d->x[d->n];
    x->user = (uint32_t) fu;
    x->item = (uint32_t) fi;
    x->weight = weight;
    x->time_ms = time_ms;
    pairs_put(&d->pairs, x, d->n);
    d->n++;

    return MV_OK;
}


int
mvw_dataset_add(mvw_dataset_t *d, const char *user, const char *item,
    float weight, int64_t time_ms, mv_err_t *err)
{
    return add_ids(d, user, strnlen(user, MV_ID_MAX + 1), item,
                   strnlen(item, MV_ID_MAX + 1), weight, time_ms, err);
}


void
mvw_action_weights_default(float w[MV_ACTION_TYPES])
{
    w[MV_ACTION_VIEW] = 1.0f;
    w[MV_ACTION_CLICK] = 2.0f;
    w[MV_ACTION_LIKE] = 3.0f;
    w[MV_ACTION_SHARE] = 3.0f;
    w[MV_ACTION_ADD_TO_CART] = 4.0f;
    w[MV_ACTION_PURCHASE] = 5.0f;
    w[MV_ACTION_DISLIKE] = 0.0f;
}


static const char *const format_names[] = {
    "movielens", "csv", "tsv", "jsonl"
};


int
mvw_format_from_name(const char *name, mvw_format_t *fmt, mv_err_t *err)
{
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]);
         i++)
    {
        if (strcmp(name, format_names[i]) == 0) {
            *fmt = (mvw_format_t) i;
            return MV_OK;
        }
    }

    return mv_err_set(err, "unknown dataset format \"%.64s\" (movielens, "
                      "csv, tsv, jsonl)", name);
}


const char *
mvw_format_name(mvw_format_t fmt)
{
    if ((unsigned) fmt >= sizeof(format_names) / sizeof(format_names[0])) {
        return "?";
    }

    return format_names[fmt];
}


/* ---- fields and numbers -------------------------------------------------- */

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}


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
 * Splits s[0..len) at every sep (seplen bytes) into at most FIELDS_MAX
 * trimmed fields; returns the number of fields there are.
 */
static unsigned
split_fields(const char *s, size_t len, const char *sep, size_t seplen,
    field_t *f)
{
    unsigned  n = 0;
    size_t    start = 0, i = 0;

    for (;;) {
        int  at_end = i + seplen > len;

        if (at_end || memcmp(s + i, sep, seplen) == 0) {
            size_t  a = start, b = at_end ? len : i;

            while (a < b && (s[a] == ' ' || s[a] == '\t')) {
                a++;
            }
            while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) {
                b--;
            }
            if (n < FIELDS_MAX) {
                f[n].s = s + a;
                f[n].len = b - a;
            }
            n++;
            if (at_end) {
                return n;
            }
            i += seplen;
            start = i;
        } else {
            i++;
        }
    }
}


/* 1 when s[0..len) is [+-]?(d+(.d*)?|.d+)([eE][+-]?d+)? */
static int
is_decimal(const char *s, size_t len)
{
    size_t  i = 0, digits = 0;

    if (i < len && (s[i] == '+' || s[i] == '-')) {
        i++;
    }
    while (i < len && is_digit(s[i])) {
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && is_digit(s[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0) {
        return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        if (i >= len || !is_digit(s[i])) {
            return 0;
        }
        while (i < len && is_digit(s[i])) {
            i++;
        }
    }

    return i == len;
}


/* A decimal number that is finite as a float, >= 0.  MV_OK or MV_ERR. */
static int
parse_weight(const field_t *f, float *out)
{
    char    buf[NUMBER_MAX + 1];
    double  v;

    if (f->len > NUMBER_MAX || !is_decimal(f->s, f->len)) {
        return MV_ERR;
    }
    memcpy(buf, f->s, f->len);
    buf[f->len] = '\0';
    v = strtod(buf, NULL);
    if (!(fabs(v) < FLOAT_OVERFLOW) || v < 0.0) {
        return MV_ERR;
    }
    *out = (float) v;

    return MV_OK;
}


/* A whole number [+-]?d+ within lo..hi.  MV_OK or MV_ERR. */
static int
parse_int(const field_t *f, int64_t lo, int64_t hi, int64_t *out)
{
    size_t    i = 0;
    int       neg = 0;
    uint64_t  v = 0;

    if (f->len > 0 && (f->s[0] == '+' || f->s[0] == '-')) {
        neg = f->s[0] == '-';
        i = 1;
    }
    if (i == f->len) {
        return MV_ERR;
    }
    for (; i < f->len; i++) {
        if (!is_digit(f->s[i])) {
            return MV_ERR;
        }
        v = v * 10 + (uint64_t) (f->s[i] - '0');
        if (v > (uint64_t) INT64_MAX) {
            return MV_ERR;
        }
    }
    *out = neg ? -(int64_t) v : (int64_t) v;

    return *out >= lo && *out <= hi ? MV_OK : MV_ERR;
}


static int
all_digits(const field_t *f)
{
    size_t  i = f->len > 0 && (f->s[0] == '+' || f->s[0] == '-');

    if (i == f->len) {
        return 0;
    }
    for (; i < f->len; i++) {
        if (!is_digit(f->s[i])) {
            return 0;
        }
    }

    return 1;
}


/* ---- line parsers -------------------------------------------------------- */

/* movielens and tsv: four tab- (or, for movielens, "::") separated fields. */
static int
parse_four(line_ctx_t *c, const char *line, size_t len, record_t *r,
    mv_err_t *err)
{
    field_t   f[FIELDS_MAX];
    unsigned  nf;
    int64_t   t;
    int       tsv = c->o->format == MVW_FORMAT_TSV;
    float     v;

    if (tsv || memchr(line, '\t', len) != NULL) {
        nf = split_fields(line, len, "\t", 1, f);
    } else {
        nf = split_fields(line, len, "::", 2, f);
    }
    if (nf != 4) {
        return mv_err_set(err, tsv
                          ? "expected 4 tab-separated fields (user_id, "
                            "item_id, weight, time_ms), got %u"
                          : "expected 4 fields separated by tabs or \"::\" "
                            "(user, item, rating, timestamp), got %u", nf);
    }

    r->user = f[0].s;
    r->user_len = f[0].len;
    r->item = f[1].s;
    r->item_len = f[1].len;
    if (parse_weight(&f[2], &v) != MV_OK) {
        return mv_err_set(err, tsv ? "weight must be a finite number >= 0"
                                   : "rating must be a finite number >= 0");
    }

    if (tsv) {
        if (parse_int(&f[3], UNIX_MS_MIN, UNIX_MS_MAX, &t) != MV_OK) {
            return mv_err_set(err, "time_ms must be whole unix milliseconds "
                              "within years 0001..9999");
        }
        r->weight = v;
        r->time_ms = t;
    } else {
        if (parse_int(&f[3], UNIX_S_MIN, UNIX_S_MAX, &t) != MV_OK) {
            return mv_err_set(err, "timestamp must be whole unix seconds "
                              "within years 0001..9999");
        }
        r->weight = c->o->weight_from_rating ? v : 1.0f;
        r->time_ms = t * 1000;
    }

    return r->weight > 0.0f ? LINE_ADD : LINE_DROP;
}


static int
is_header_name(const field_t *f)
{
    static const char *const names[] = { "user", "user_id", "userid", "uid" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (f->len == strlen(names[i])
            && strncasecmp(f->s, names[i], f->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static int
parse_csv(line_ctx_t *c, const char *line, size_t len, record_t *r,
    mv_err_t *err)
{
    field_t   f[FIELDS_MAX];
    unsigned  nf;
    int64_t   t;

    nf = split_fields(line, len, ",", 1, f);
    if (c->first && is_header_name(&f[0])) {
        return LINE_HEADER;
    }
    if (nf < 2 || nf > 4) {
        return mv_err_set(err, "expected 2 to 4 comma-separated fields "
                          "(user, item[, weight[, timestamp]]), got %u", nf);
    }

    r->user = f[0].s;
    r->user_len = f[0].len;
    r->item = f[1].s;
    r->item_len = f[1].len;
    r->weight = 1.0f;
    r->time_ms = 0;

    if (nf >= 3 && f[2].len != 0 && parse_weight(&f[2], &r->weight) != MV_OK)
    {
        return mv_err_set(err, "weight must be a finite number >= 0");
    }
    if (nf == 4 && f[3].len != 0) {
        if (all_digits(&f[3])) {
            if (parse_int(&f[3], UNIX_S_MIN, UNIX_S_MAX, &t) != MV_OK) {
                return mv_err_set(err, "timestamp must be whole unix seconds "
                                  "within years 0001..9999");
            }
            r->time_ms = t * 1000;
        } else if (mv_time_parse(f[3].s, f[3].len, &r->time_ms) != MV_OK) {
            return mv_err_set(err, "timestamp must be unix seconds or an "
                              "RFC 3339 date-time (1970..9999)");
        }
    }

    return r->weight > 0.0f ? LINE_ADD : LINE_DROP;
}


static int
parse_jsonl(line_ctx_t *c, const char *line, size_t len, record_t *r,
    mv_err_t *err)
{
    mv_event_error_t  e;

    if (mv_action_parse(line, len, 0, &c->action, &e) != MV_OK) {
        return mv_err_set(err, "%s", e.detail);
    }
    r->user = c->action.user_id;
    r->user_len = strlen(c->action.user_id);
    r->item = c->action.item_id;
    r->item_len = strlen(c->action.item_id);
    r->weight = c->weights[c->action.type];
    r->time_ms = c->action.timestamp_ms;

    return r->weight > 0.0f ? LINE_ADD : LINE_DROP;
}


/* ---- loading ------------------------------------------------------------- */

/*
 * Reads the lines of bytes[0..len) into d (which may already hold ids and
 * interactions).  *added counts the interactions read (merged ones too).
 * On error d holds part of the input: callers load into a scratch dataset.
 */
static int
load_into(mvw_dataset_t *d, const char *name, const char *bytes, size_t len,
    const mvw_load_opts_t *o, size_t *added, mv_err_t *err)
{
    line_ctx_t   c;
    float        defaults[MV_ACTION_TYPES];
    size_t       pos = 0, lineno = 0;
    mv_err_t     e;
    record_t     r;
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

        switch (o->format) {
        case MVW_FORMAT_MOVIELENS:
        case MVW_FORMAT_TSV:
            rc = parse_four(&c, line, n, &r, &e);
            break;
        case MVW_FORMAT_CSV:
            rc = parse_csv(&c, line, n, &r, &e);
            break;
        default:
            rc = parse_jsonl(&c, line, n, &r, &e);
            break;
        }
        c.first = 0;

        if (rc == LINE_ADD) {
            rc = add_ids(d, r.user, r.user_len, r.item, r.item_len, r.weight,
                         r.time_ms, &e);
            if (rc == MV_OK) {
                (*added)++;
            }
        } else if (rc == LINE_DROP) {
            /* Not a positive, but the ids must still be well formed. */
            rc = !mv_id_valid(r.user, r.user_len)
                 ? mv_err_set(&e, "user id must be " ID_RULE)
                 : !mv_id_valid(r.item, r.item_len)
                 ? mv_err_set(&e, "item id must be " ID_RULE)
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
    pairs_drop(&tmp);
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
    pairs_drop(&tmp);
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
    pairs_drop(&a);
    pairs_drop(&b);
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


/* ---- splits -------------------------------------------------------------- */

/*
 * Interaction indices grouped by user, input order within a user: user u's
 * are order[start[u] .. start[u + 1]).  Both arrays are malloc'd.
 */
static int
group_by_user(const mvw_dataset_t *d, size_t **start_out,
    size_t **order_out)
{
    uint32_t  nu = d->users.n;
    size_t   *start, *order, *fill;

    start = calloc((size_t) nu + 1, sizeof(size_t));
    order = malloc((d->n ? d->n : 1) * sizeof(size_t));
    fill = malloc(((size_t) nu + 1) * sizeof(size_t));
    if (start == NULL || order == NULL || fill == NULL) {
        free(start);
        free(order);
        free(fill);
        return MV_ERR;
    }
    for (size_t j = 0; j < d->n; j++) {
        start[d->x[j].user + 1]++;
    }
    for (uint32_t u = 0; u < nu; u++) {
        start[u + 1] += start[u];
    }
    memcpy(fill, start, ((size_t) nu + 1) * sizeof(size_t));
    for (size_t j = 0; j < d->n; j++) {
        order[fill[d->x[j].user]++] = j;
    }
    free(fill);
    *start_out = start;
    *order_out = order;

    return MV_OK;
}


/* Copies d into train and test by to_test[j], with d's id maps. */
static int
split_emit(const mvw_dataset_t *d, const unsigned char *to_test,
    mvw_dataset_t *train, mvw_dataset_t *test, mv_err_t *err)
{
    mvw_dataset_t  a, b;
    size_t         nb = 0;

    for (size_t j = 0; j < d->n; j++) {
        nb += to_test[j];
    }

    mvw_dataset_init(&a);
    mvw_dataset_init(&b);
    if (mvw_idmap_copy(&a.users, &d->users, err) != MV_OK
        || mvw_idmap_copy(&a.items, &d->items, err) != MV_OK
        || mvw_idmap_copy(&b.users, &d->users, err) != MV_OK
        || mvw_idmap_copy(&b.items, &d->items, err) != MV_OK
        || reserve_interactions(&a, d->n - nb) != MV_OK
        || reserve_interactions(&b, nb) != MV_OK)
    {
        mvw_dataset_free(&a);
        mvw_dataset_free(&b);
        return mv_err_set(err, "out of memory");
    }
    for (size_t j = 0; j < d->n; j++) {
        if (to_test[j]) {
            b.x[b.n++] = d->x[j];
        } else {
            a.x[a.n++] = d->x[j];
        }
    }

    mvw_dataset_free(train);
    mvw_dataset_free(test);
    *train = a;
    *test = b;

    return MV_OK;
}


/* Uniform in [0, bound), bound >= 1, without modulo bias. */
static uint64_t
rng_below(mv_rng_t *r, uint64_t bound)
{
    uint64_t  threshold = (0 - bound) % bound;
    uint64_t  v;

    do {
        v = mv_rng_next(r);
    } while (v < threshold);

    return v % bound;
}


int
mvw_split_random(const mvw_dataset_t *d, double train_frac, uint64_t seed,
    mvw_dataset_t *train, mvw_dataset_t *test, mv_err_t *err)
{
    size_t         *start, *order;
    unsigned char  *to_test;
    mv_rng_t        rng;
    int             rc;

    if (!(train_frac >= 0.0 && train_frac <= 1.0)) {
        return mv_err_set(err, "train fraction must be within [0, 1]");
    }
    if (group_by_user(d, &start, &order) != MV_OK) {
        return mv_err_set(err, "out of memory");
    }
    to_test = calloc(d->n ? d->n : 1, 1);
    if (to_test == NULL) {
        free(start);
        free(order);
        return mv_err_set(err, "out of memory");
    }

    mv_rng_seed(&rng, seed);
    for (uint32_t u = 0; u < d->users.n; u++) {
        size_t  *p = order + start[u];
        size_t   m = start[u + 1] - start[u], keep;

        if (m == 0) {
            continue;
        }
        for (size_t i = m - 1; i > 0; i--) {
            size_t  j = (size_t) rng_below(&rng, (uint64_t) i + 1);
            size_t  t = p[i];

            p[i] = p[j];
            p[j] = t;
        }
        keep = (size_t) floor(train_frac * (double) m + 0.5);
        if (keep < 1) {
            keep = 1;
        }
        if (keep > m) {
            keep = m;
        }
        for (size_t i = keep; i < m; i++) {
            to_test[p[i]] = 1;
        }
    }

    rc = split_emit(d, to_test, train, test, err);
    free(to_test);
    free(start);
    free(order);
    return rc;
}


int
mvw_split_leave_last_out(const mvw_dataset_t *d, mvw_dataset_t *train,
    mvw_dataset_t *test, mv_err_t *err)
{
    size_t         *start, *order;
    unsigned char  *to_test;
    int             rc;

    if (group_by_user(d, &start, &order) != MV_OK) {
        return mv_err_set(err, "out of memory");
    }
    to_test = calloc(d->n ? d->n : 1, 1);
    if (to_test == NULL) {
        free(start);
        free(order);
        return mv_err_set(err, "out of memory");
    }

    for (uint32_t u = 0; u < d->users.n; u++) {
        size_t  last, a = start[u], b = start[u + 1];

        if (b - a < 2) {
            continue;
        }
        last = order[a];
        for (size_t i = a + 1; i < b; i++) {
            /* Input order within a user: >= lets a later tie win. */
            if (d->x[order[i]].time_ms >= d->x[last].time_ms) {
                last = order[i];
            }
        }
        to_test[last] = 1;
    }

    rc = split_emit(d, to_test, train, test, err);
    free(to_test);
    free(start);
    free(order);
    return rc;
}


/* ---- matrix views -------------------------------------------------------- */

static uint32_t
row_of(const mvw_interaction_t *x, int by_user)
{
    return by_user ? x->user : x->item;
}


static uint32_t
col_of(const mvw_interaction_t *x, int by_user)
{
    return by_user ? x->item : x->user;
}


static int
build_csr(const mvw_dataset_t *d, int by_user, mvw_csr_t *out,
    mv_err_t *err)
{
    uint32_t  nr = by_user ? d->users.n : d->items.n;
    uint32_t  nc = by_user ? d->items.n : d->users.n;
    size_t   *cstart = NULL, *order = NULL, *fill = NULL;
    size_t    n = d->n ? d->n : 1;
    mvw_csr_t m;

    memset(out, 0, sizeof(*out));
    memset(&m, 0, sizeof(m));
    m.n_rows = nr;
    m.n_cols = nc;
    m.offsets = calloc((size_t) nr + 1, sizeof(size_t));
    m.cols = malloc(n * sizeof(uint32_t));
    m.vals = malloc(n * sizeof(float));
    cstart = calloc((size_t) nc + 1, sizeof(size_t));
    order = malloc(n * sizeof(size_t));
    fill = malloc(((size_t) (nr > nc ? nr : nc) + 1) * sizeof(size_t));
    if (m.offsets == NULL || m.cols == NULL || m.vals == NULL
        || cstart == NULL || order == NULL || fill == NULL)
    {
        mvw_csr_free(&m);
        free(cstart);
        free(order);
        free(fill);
        return mv_err_set(err, "out of memory");
    }

    /* Pass 1: interaction indices ordered by column. */
    for (size_t j = 0; j < d->n; j++) {
        cstart[col_of(&d->x[j], by_user) + 1]++;
    }
    for (uint32_t c = 0; c < nc; c++) {
        cstart[c + 1] += cstart[c];
    }
    memcpy(fill, cstart, ((size_t) nc + 1) * sizeof(size_t));
    for (size_t j = 0; j < d->n; j++) {
        order[fill[col_of(&d->x[j], by_user)]++] = j;
    }

    /* Pass 2: stably by row, so each row's columns come out ascending. */
    for (size_t j = 0; j < d->n; j++) {
        m.offsets[row_of(&d->x[j], by_user) + 1]++;
    }
    for (uint32_t r = 0; r < nr; r++) {
        m.offsets[r + 1] += m.offsets[r];
    }
    memcpy(fill, m.offsets, ((size_t) nr + 1) * sizeof(size_t));
    for (size_t k = 0; k < d->n; k++) {
        const mvw_interaction_t  *x = &d->x[order[k]];
        size_t                    at = fill[row_of(x, by_user)]++;

        m.cols[at] = col_of(x, by_user);
        m.vals[at] = x->weight;
    }

    free(cstart);
    free(order);
    free(fill);
    *out = m;

    return MV_OK;
}


int
mvw_dataset_by_user(const mvw_dataset_t *d, mvw_csr_t *out, mv_err_t *err)
{
    return build_csr(d, 1, out, err);
}


int
mvw_dataset_by_item(const mvw_dataset_t *d, mvw_csr_t *out, mv_err_t *err)
{
    return build_csr(d, 0, out, err);
}


void
mvw_csr_free(mvw_csr_t *m)
{
    free(m->offsets);
    free(m->cols);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}


void
mvw_dataset_item_counts(const mvw_dataset_t *d, uint32_t *counts)
{
    memset(counts, 0, (size_t) d->items.n * sizeof(uint32_t));
    for (size_t j = 0; j < d->n; j++) {
        counts[d->x[j].item]++;
    }
}
