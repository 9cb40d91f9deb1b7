// Ratings datasets: id maps, the line parser, the file loader, splits, CSR
// views, the synthetic generator and the tiny worked example.
#include "dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
// Id map: open addressing (linear probing); a slot holds the external id
// next to dense index + 1 (0 = empty), so a lookup touches one cache line.
// The dense array ext[] is the reverse map. Load factor stays <= 1/2.

typedef struct idslot {
    int64_t  ext;
    uint32_t idx1; // dense index + 1, 0 = empty
} idslot;

struct fri_idmap {
    int64_t *ext; // dense index -> external id
    uint32_t n;
    uint32_t ext_cap;
    idslot  *slot; // slot_mask + 1 entries
    size_t   slot_mask;
};

#define IDMAP_MAX (UINT32_MAX - 1u)

static size_t
idmap_hash(int64_t ext)
{
    uint64_t x = (uint64_t)ext;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (size_t)x;
}

static fr_err
idmap_rehash(fri_idmap *m, size_t n_slots)
{
    idslot *s = calloc(n_slots, sizeof(*s));
    if (s == NULL) {
        return FR_ENOMEM;
    }
    size_t mask = n_slots - 1;
    for (uint32_t i = 0; i < m->n; i++) {
        size_t h = idmap_hash(m->ext[i]) & mask;
        while (s[h].idx1 != 0) {
            h = (h + 1) & mask;
        }
        s[h].ext  = m->ext[i];
        s[h].idx1 = i + 1;
    }
    free(m->slot);
    m->slot      = s;
    m->slot_mask = mask;
    return FR_OK;
}

fr_err
fri_idmap_create(fri_idmap **out)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out         = NULL;
    fri_idmap *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return FR_ENOMEM;
    }
    if (idmap_rehash(m, 64) != FR_OK) {
        free(m);
        return FR_ENOMEM;
    }
    *out = m;
    return FR_OK;
}

void
fri_idmap_destroy(fri_idmap *m)
{
    if (m == NULL) {
        return;
    }
    free(m->ext);
    free(m->slot);
    free(m);
}

fr_err
fri_idmap_get(fri_idmap *m, int64_t ext, int insert, uint32_t *idx)
{
    if (m == NULL || idx == NULL) {
        return FR_EINVAL;
    }
    size_t h = idmap_hash(ext) & m->slot_mask;
    for (;;) {
        const idslot *s = &m->slot[h];
        if (s->idx1 == 0) {
            break;
        }
        if (s->ext == ext) {
            *idx = s->idx1 - 1;
            return FR_OK;
        }
        h = (h + 1) & m->slot_mask;
    }
    if (!insert) {
        return FR_ENOENT;
    }
    if (m->n >= IDMAP_MAX) {
        return FR_ETOOBIG;
    }
    if (m->n == m->ext_cap) {
        uint32_t nc = m->ext_cap < 64    ? 64
            : m->ext_cap > IDMAP_MAX / 2 ? IDMAP_MAX
                                         : m->ext_cap * 2;
        int64_t *e  = realloc(m->ext, (size_t)nc * sizeof(*e));
        if (e == NULL) {
            return FR_ENOMEM;
        }
        m->ext     = e;
        m->ext_cap = nc;
    }
    // Keep load <= 1/2; slot_mask + 1 is a power of two.
    if ((size_t)m->n + 1 > (m->slot_mask + 1) / 2) {
        size_t ns = (m->slot_mask + 1) * 2;
        if (ns / 2 != m->slot_mask + 1 || ns > SIZE_MAX / sizeof(idslot)) {
            return FR_ETOOBIG;
        }
        fr_err e = idmap_rehash(m, ns);
        if (e != FR_OK) {
            return e;
        }
        h = idmap_hash(ext) & m->slot_mask;
        while (m->slot[h].idx1 != 0) {
            h = (h + 1) & m->slot_mask;
        }
    }
    m->ext[m->n]    = ext;
    m->slot[h].ext  = ext;
    m->slot[h].idx1 = m->n + 1;
    *idx            = m->n++;
    return FR_OK;
}

uint32_t
fri_idmap_size(const fri_idmap *m)
{
    return m == NULL ? 0 : m->n;
}

int64_t
fri_idmap_ext(const fri_idmap *m, uint32_t idx)
{
    return (m == NULL || idx >= m->n) ? -1 : m->ext[idx];
}

// Forgets every id inserted after the map had n entries (failed loads leave
// the maps as they were). Rebuilding at the current table size cannot fail.
static void
idmap_truncate(fri_idmap *m, uint32_t n)
{
    if (m == NULL || n >= m->n) {
        return;
    }
    m->n = n;
    memset(m->slot, 0, (m->slot_mask + 1) * sizeof(*m->slot));
    for (uint32_t i = 0; i < n; i++) {
        size_t h = idmap_hash(m->ext[i]) & m->slot_mask;
        while (m->slot[h].idx1 != 0) {
            h = (h + 1) & m->slot_mask;
        }
        m->slot[h].ext  = m->ext[i];
        m->slot[h].idx1 = i + 1;
    }
}

// ---------------------------------------------------------------------------
// Parser

void
fri_load_opts_init(fri_load_opts *o)
{
    if (o == NULL) {
        return;
    }
    o->min_rating = 0.5f;
    o->max_rating = 5.0f;
    o->max_line   = 4096;
    o->max_id     = (int64_t)1 << 40;
}

enum fmt { FMT_NONE, FMT_TAB, FMT_ML1M, FMT_CSV, FMT_WS };

static const char *const fmt_name[] = {
    "unknown",
    "tab-separated",
    "'::'-separated",
    "comma-separated",
    "whitespace-separated",
};

typedef struct parser {
    const char          *name;
    fri_idmap           *users;
    fri_idmap           *items;
    const fri_load_opts *o;
    int                  filter; // keep only lines of user filter_ext
    int64_t              filter_ext;
    int                  filter_hit;
    enum fmt             fmt;
    int                  n_fields; // fixed by the first line, 0 = not yet
    size_t               lineno;
    fri_triplet         *r;
    size_t               n;
    size_t               cap;
    char                *err;
    size_t               err_cap;
    int                  have_last; // cache: consecutive lines, same user
    int64_t              last_ext;
    uint32_t             last_idx;
} parser;

static fr_err
set_err(char *err, size_t err_cap, fr_err e, const char *fmt, ...)
{
    if (err != NULL && err_cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_cap, fmt, ap);
        va_end(ap);
    }
    return e;
}

// "name:line: what"
static fr_err
fail(parser *p, fr_err e, const char *fmt, ...)
{
    if (p->err != NULL && p->err_cap > 0) {
        int k = p->lineno > 0
            ? snprintf(p->err, p->err_cap, "%s:%zu: ", p->name, p->lineno)
            : snprintf(p->err, p->err_cap, "%s: ", p->name);
        if (k >= 0 && (size_t)k < p->err_cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + k, p->err_cap - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return e;
}

// Copies a field into out for quoting in messages: at most 24 bytes,
// non-printable bytes shown as '?'.
static const char *
quote(char out[32], const char *s, size_t len)
{
    size_t n = len > 24 ? 24 : len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i]          = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > n) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

// Decimal integer with optional sign. 0 ok, -1 syntax, -2 overflow.
static int
parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i   = 0;
    int    neg = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    if (i == len) {
        return -1;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) {
            return -1;
        }
        if (v > (UINT64_MAX - d) / 10) {
            return -2;
        }
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return -2;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) {
            return -2;
        }
        *out = (int64_t)v;
    }
    return 0;
}

// Plain decimal "[-+]digits[.digits]" (no exponent, no nan/inf): strict and
// locale-independent. At most 18 significant digits.
static int
parse_rating(const char *s, size_t len, double *out)
{
    static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
        1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18 };
    size_t              i     = 0;
    int                 neg   = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    uint64_t mant   = 0;
    int      digits = 0, sig = 0, frac = 0, dot = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '.' && !dot) {
            dot = 1;
            continue;
        }
        unsigned d = (unsigned)(unsigned char)c - '0';
        if (d > 9) {
            return -1;
        }
        digits++;
        if (dot && ++frac > 18) {
            return -1;
        }
        if (mant == 0 && d == 0) {
            continue; // leading zeros are not significant
        }
        if (++sig > 18) {
            return -1;
        }
        mant = mant * 10 + d;
    }
    if (digits == 0) {
        return -1;
    }
    double v = (double)mant / p10[frac];
    *out     = neg ? -v : v;
    return 0;
}

static enum fmt
classify(const char *s, size_t len)
{
    int tab = 0, space = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ':' && i + 1 < len && s[i + 1] == ':') {
            return FMT_ML1M;
        }
        if (c == ',') {
            return FMT_CSV;
        }
        tab |= c == '\t';
        space |= c == ' ';
    }
    return (tab && !space) ? FMT_TAB : FMT_WS;
}

#define MAX_FIELDS 5 // one more than allowed, to detect extras

// Splits a line into fields by the file's separator. Returns the field
// count (MAX_FIELDS means "too many"), or -1 for an empty field (its
// 1-based position in *empty_at).
static int
split(enum fmt f, const char *s, size_t len, const char *fs[MAX_FIELDS],
    size_t fl[MAX_FIELDS], int *empty_at)
{
    int    n = 0;
    size_t i = 0;
    if (f == FMT_WS) {
        for (;;) {
            while (i < len && (s[i] == ' ' || s[i] == '\t')) {
                i++;
            }
            if (i == len) {
                return n;
            }
            if (n == MAX_FIELDS) {
                return n;
            }
            size_t b = i;
            while (i < len && s[i] != ' ' && s[i] != '\t') {
                i++;
            }
            fs[n] = s + b;
            fl[n] = i - b;
            n++;
        }
    }
    size_t seplen = f == FMT_ML1M ? 2 : 1;
    char   sep    = f == FMT_TAB ? '\t' : f == FMT_CSV ? ',' : ':';
    for (;;) {
        if (n == MAX_FIELDS) {
            return n;
        }
        size_t b = i;
        while (i < len
            && !(s[i] == sep
                && (seplen == 1 || (i + 1 < len && s[i + 1] == ':')))) {
            i++;
        }
        if (i == b) {
            *empty_at = n + 1;
            return -1;
        }
        fs[n] = s + b;
        fl[n] = i - b;
        n++;
        if (i == len) {
            return n;
        }
        i += seplen;
        if (i == len) { // trailing separator: empty last field
            *empty_at = n + 1;
            return -1;
        }
    }
}

static fr_err
parse_id(parser *p, const char *what, const char *s, size_t len, int64_t *id)
{
    char q[32];
    int  rc = parse_i64(s, len, id);
    if (rc == -1) {
        return fail(p, FR_EFORMAT, "%s id '%s' is not an integer", what,
            quote(q, s, len));
    }
    if (rc == -2 || *id > p->o->max_id) {
        return fail(p, FR_EFORMAT, "absurd %s id '%s' (max %lld)", what,
            quote(q, s, len), (long long)p->o->max_id);
    }
    if (*id < 0) {
        return fail(
            p, FR_EFORMAT, "negative %s id '%s'", what, quote(q, s, len));
    }
    return FR_OK;
}

static fr_err
map_id(parser *p, fri_idmap *m, const char *what, int64_t ext, uint32_t *idx)
{
    fr_err e = fri_idmap_get(m, ext, 1, idx);
    if (e == FR_ETOOBIG) {
        return fail(p, e, "too many distinct %s ids", what);
    }
    if (e != FR_OK) {
        return fail(p, e, "cannot map %s id", what);
    }
    return FR_OK;
}

// The fields of one non-blank line of the file's format.
static fr_err
parse_record(parser *p, const char *s, size_t len)
{
    char        q[32];
    const char *fs[MAX_FIELDS];
    size_t      fl[MAX_FIELDS];
    int         ea = 0;
    int         nf = split(p->fmt, s, len, fs, fl, &ea);
    if (nf < 0) {
        return fail(p, FR_EFORMAT, "missing field %d (empty)", ea);
    }
    if (nf >= MAX_FIELDS) {
        return fail(p, FR_EFORMAT, "extra fields after the timestamp");
    }
    if (nf < 3) {
        return fail(p, FR_EFORMAT,
            "missing field: expected user item rating [timestamp], "
            "got %d field%s",
            nf, nf == 1 ? "" : "s");
    }
    if (p->n_fields == 0) {
        p->n_fields = nf;
    } else if (nf != p->n_fields) {
        return fail(
            p, FR_EFORMAT, "expected %d fields, got %d", p->n_fields, nf);
    }

    int64_t uext, iext, ts = 0;
    double  rating;
    fr_err  e;
    if ((e = parse_id(p, "user", fs[0], fl[0], &uext)) != FR_OK
        || (e = parse_id(p, "item", fs[1], fl[1], &iext)) != FR_OK) {
        return e;
    }
    if (parse_rating(fs[2], fl[2], &rating) != 0) {
        return fail(p, FR_EFORMAT, "rating '%s' is not a decimal number",
            quote(q, fs[2], fl[2]));
    }
    if (!(rating >= p->o->min_rating && rating <= p->o->max_rating)) {
        return fail(p, FR_EFORMAT, "rating %s outside [%g, %g]",
            quote(q, fs[2], fl[2]), (double)p->o->min_rating,
            (double)p->o->max_rating);
    }
    if (nf == 4) {
        int rc = parse_i64(fs[3], fl[3], &ts);
        if (rc != 0) {
            return fail(p, FR_EFORMAT, "timestamp '%s' is %s",
                quote(q, fs[3], fl[3]),
                rc == -1 ? "not an integer" : "out of range");
        }
    }

    uint32_t ui, ii;
    if (p->filter) {
        if (uext != p->filter_ext) {
            // Items of other users still get indices, so that the item map
            // matches the one a full load builds.
            return map_id(p, p->items, "item", iext, &ii);
        }
        p->filter_hit = 1;
        ui            = 0;
    } else if (p->have_last && p->last_ext == uext) {
        ui = p->last_idx;
    } else {
        if ((e = map_id(p, p->users, "user", uext, &ui)) != FR_OK) {
            return e;
        }
        p->have_last = 1;
        p->last_ext  = uext;
        p->last_idx  = ui;
    }
    if ((e = map_id(p, p->items, "item", iext, &ii)) != FR_OK) {
        return e;
    }
    if (p->n == p->cap) {
        size_t nc = p->cap < 1024 ? 1024 : p->cap * 2;
        if (nc > SIZE_MAX / sizeof(fri_triplet) || nc < p->cap) {
            return fail(p, FR_ETOOBIG, "too many ratings");
        }
        fri_triplet *r = realloc(p->r, nc * sizeof(*r));
        if (r == NULL) {
            return fail(p, FR_ENOMEM, "out of memory");
        }
        p->r   = r;
        p->cap = nc;
    }
    p->r[p->n].user   = ui;
    p->r[p->n].item   = ii;
    p->r[p->n].rating = (float)rating;
    p->r[p->n].ts     = ts;
    p->n++;
    return FR_OK;
}

// One line without its '\n'. The separators and fields are strict, so a
// NUL byte or a line of another format always fails parse_record; only then
// are those causes looked for, to name them (keeps the hot path lean).
static fr_err
parse_line(parser *p, const char *s, size_t len)
{
    p->lineno++;
    if (len > 0 && s[len - 1] == '\r') {
        len--;
    }
    if (len > p->o->max_line) {
        return fail(
            p, FR_ETOOBIG, "line longer than %zu bytes", p->o->max_line);
    }
    size_t b = 0;
    while (b < len && (s[b] == ' ' || s[b] == '\t')) {
        b++;
    }
    if (b == len) {
        return FR_OK; // blank line
    }
    if (p->fmt == FMT_NONE) {
        if (memchr(s, '\0', len) != NULL) {
            return fail(p, FR_EFORMAT, "embedded NUL byte");
        }
        enum fmt f       = classify(s, len);
        p->fmt           = f;
        unsigned char c0 = (unsigned char)s[0];
        if (f == FMT_CSV
            && (((c0 | 0x20) >= 'a' && (c0 | 0x20) <= 'z') || c0 == '"')) {
            // Header line ("userId,movieId,rating,timestamp"): fixes the
            // column count; names are not checked.
            const char *fs[MAX_FIELDS];
            size_t      fl[MAX_FIELDS];
            int         ea = 0;
            int         nf = split(f, s, len, fs, fl, &ea);
            if (nf < 0) {
                return fail(
                    p, FR_EFORMAT, "empty column name %d in header", ea);
            }
            if (nf < 3 || nf > 4) {
                return fail(p, FR_EFORMAT,
                    "header must name 3 or 4 columns "
                    "(user,item,rating[,timestamp])");
            }
            p->n_fields = nf;
            return FR_OK;
        }
    }
    fr_err e = parse_record(p, s, len);
    if (e == FR_EFORMAT) {
        enum fmt f = classify(s, len);
        if (memchr(s, '\0', len) != NULL) {
            return fail(p, FR_EFORMAT, "embedded NUL byte");
        }
        if (f != p->fmt && !(p->fmt == FMT_WS && f == FMT_TAB)) {
            return fail(p, FR_EFORMAT, "%s line in a %s file (mixed formats)",
                fmt_name[f], fmt_name[p->fmt]);
        }
    }
    return e;
}

// A later line for the same (user, item) replaces the earlier one; the
// survivors keep their relative order. O(n): group by user (counting sort
// of positions), mark all but the last position of each item in the group.
static fr_err
dedupe(fri_triplet *r, size_t *n_io, uint32_t n_users, uint32_t n_items)
{
    size_t n = *n_io;
    if (n < 2) {
        return FR_OK;
    }
    if (n > UINT32_MAX) {
        return FR_ETOOBIG;
    }
    size_t   *ptr  = calloc((size_t)n_users + 1, sizeof(*ptr));
    uint32_t *perm = malloc(n * sizeof(*perm));
    uint32_t *last = malloc(((size_t)n_items + 1) * sizeof(*last));
    if (ptr == NULL || perm == NULL || last == NULL) {
        free(ptr);
        free(perm);
        free(last);
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        ptr[r[i].user + 1]++;
    }
    for (uint32_t u = 0; u < n_users; u++) {
        ptr[u + 1] += ptr[u];
    }
    for (size_t i = 0; i < n; i++) {
        perm[ptr[r[i].user]++] = (uint32_t)i;
    }
    // ptr[u] is now the end of row u; row u starts at ptr[u-1].
    size_t dups = 0;
    size_t beg  = 0;
    for (uint32_t u = 0; u < n_users; u++) {
        size_t end = ptr[u];
        for (size_t j = beg; j < end; j++) {
            last[r[perm[j]].item] = perm[j];
        }
        for (size_t j = beg; j < end; j++) {
            if (last[r[perm[j]].item] != perm[j]) {
                dups++;
                r[perm[j]].user = UINT32_MAX; // marked; compacted below
            }
        }
        beg = end;
    }
    free(ptr);
    free(perm);
    free(last);
    if (dups > 0) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (r[i].user != UINT32_MAX) {
                r[k++] = r[i];
            }
        }
        *n_io = k;
    }
    return FR_OK;
}

static void
parser_init(parser *p, const char *name, fri_idmap *users, fri_idmap *items,
    const fri_load_opts *o, char *err, size_t err_cap)
{
    memset(p, 0, sizeof(*p));
    p->name    = name != NULL ? name : "(buffer)";
    p->users   = users;
    p->items   = items;
    p->o       = o;
    p->err     = err;
    p->err_cap = err_cap;
}

// Validates and deduplicates, then hands the triplets to out.
static fr_err
parser_finish(parser *p, fri_dataset *out)
{
    if (p->filter) {
        if (!p->filter_hit) {
            return fail(p, FR_ENOENT, "no ratings for user %lld",
                (long long)p->filter_ext);
        }
    } else if (p->n == 0) {
        return fail(p, FR_EFORMAT, "no ratings");
    }
    uint32_t n_users = p->filter ? 1 : fri_idmap_size(p->users);
    uint32_t n_items = fri_idmap_size(p->items);
    fr_err   e       = dedupe(p->r, &p->n, n_users, n_items);
    if (e != FR_OK) {
        return fail(p, e, "cannot check duplicates: %s", fr_strerror(e));
    }
    if (p->n < p->cap) {
        fri_triplet *r = realloc(p->r, p->n * sizeof(*r));
        if (r != NULL) {
            p->r = r;
        }
    }
    out->r       = p->r;
    out->n       = p->n;
    out->n_users = n_users;
    out->n_items = n_items;
    p->r         = NULL;
    return FR_OK;
}

static fr_err
check_args(fri_dataset *out, fri_idmap *users, fri_idmap *items,
    const fri_load_opts **o, fri_load_opts *dflt, int filter, char *err,
    size_t err_cap)
{
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
    }
    if (out == NULL || items == NULL || (users == NULL && !filter)) {
        return set_err(
            err, err_cap, FR_EINVAL, "dataset: NULL output or id map");
    }
    if (*o == NULL) {
        fri_load_opts_init(dflt);
        *o = dflt;
    }
    const fri_load_opts *p = *o;
    if (!(p->min_rating <= p->max_rating) || p->max_line == 0
        || p->max_id < 0) {
        return set_err(err, err_cap, FR_EINVAL, "dataset: bad load options");
    }
    return FR_OK;
}

static fr_err
parse_buffer(parser *p, const char *buf, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl  = memchr(buf + pos, '\n', len - pos);
        size_t      end = nl != NULL ? (size_t)(nl - buf) : len;
        fr_err      e   = parse_line(p, buf + pos, end - pos);
        if (e != FR_OK) {
            return e;
        }
        pos = end + 1;
    }
    return FR_OK;
}

static fr_err
parse_fd(parser *p, int fd)
{
    // Chunked reads; a partial line longer than max_line is reported before
    // more of it is read, so a huge line never sits in memory.
    size_t max_line = p->o->max_line;
    size_t cap      = (size_t)1 << 20;
    size_t fill     = 0;
    char  *buf      = malloc(cap);
    fr_err e        = FR_OK;
    if (buf == NULL) {
        return fail(p, FR_ENOMEM, "out of memory");
    }
    for (;;) {
        if (fill == cap) {
            // The pending line fills the buffer and is still short enough.
            size_t nc = cap * 2;
            if (nc < cap) {
                e = fail(p, FR_ETOOBIG, "line too long");
                break;
            }
            char *nb = realloc(buf, nc);
            if (nb == NULL) {
                e = fail(p, FR_ENOMEM, "out of memory");
                break;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t r = read(fd, buf + fill, cap - fill);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            p->lineno++;
            e = fail(p, FR_EIO, "read error: %s", strerror(errno));
            break;
        }
        if (r == 0) {
            if (fill > 0) {
                e = parse_line(p, buf, fill);
            }
            break;
        }
        // Only the new bytes can hold newlines: the carried prefix has none.
        size_t scan = fill;
        fill += (size_t)r;
        size_t pos = 0;
        for (;;) {
            const char *nl = memchr(buf + scan, '\n', fill - scan);
            if (nl == NULL) {
                break;
            }
            size_t end = (size_t)(nl - buf);
            if ((e = parse_line(p, buf + pos, end - pos)) != FR_OK) {
                break;
            }
            pos  = end + 1;
            scan = pos;
        }
        if (e != FR_OK) {
            break;
        }
        size_t rest = fill - pos;
        if (rest > max_line + 1) { // + 1: a '\r' may still come
            p->lineno++;
            e = fail(p, FR_ETOOBIG, "line longer than %zu bytes", max_line);
            break;
        }
        if (pos > 0) {
            memmove(buf, buf + pos, rest);
        }
        fill = rest;
    }
    free(buf);
    return e;
}

static fr_err
load_path(parser *p, fri_dataset *out, const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return fail(p, FR_EIO, "cannot open: %s", strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int en = errno;
        close(fd);
        return fail(p, FR_EIO, "cannot stat: %s", strerror(en));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return fail(p, FR_EIO, "is a directory");
    }
    fr_err e = parse_fd(p, fd);
    close(fd);
    if (e == FR_OK) {
        e = parser_finish(p, out);
    }
    return e;
}

static fr_err
run(parser *p, fri_dataset *out, const char *path, const char *buf, size_t len)
{
    uint32_t nu = fri_idmap_size(p->users);
    uint32_t ni = fri_idmap_size(p->items);
    fr_err   e;
    if (path != NULL) {
        e = load_path(p, out, path);
    } else {
        e = parse_buffer(p, buf, len);
        if (e == FR_OK) {
            e = parser_finish(p, out);
        }
    }
    if (e != FR_OK) {
        free(p->r);
        p->r = NULL;
        memset(out, 0, sizeof(*out));
        idmap_truncate(p->users, nu);
        idmap_truncate(p->items, ni);
    }
    return e;
}

fr_err
fri_dataset_load(fri_dataset *out, const char *path, fri_idmap *users,
    fri_idmap *items, const fri_load_opts *opts, char *err, size_t err_cap)
{
    fri_load_opts dflt;
    fr_err e = check_args(out, users, items, &opts, &dflt, 0, err, err_cap);
    if (e != FR_OK) {
        return e;
    }
    if (path == NULL) {
        return set_err(err, err_cap, FR_EINVAL, "dataset: NULL path");
    }
    parser p;
    parser_init(&p, path, users, items, opts, err, err_cap);
    return run(&p, out, path, NULL, 0);
}

fr_err
fri_dataset_parse(fri_dataset *out, const char *name, const char *buf,
    size_t len, fri_idmap *users, fri_idmap *items, const fri_load_opts *opts,
    char *err, size_t err_cap)
{
    fri_load_opts dflt;
    fr_err e = check_args(out, users, items, &opts, &dflt, 0, err, err_cap);
    if (e != FR_OK) {
        return e;
    }
    if (buf == NULL && len > 0) {
        return set_err(err, err_cap, FR_EINVAL, "dataset: NULL buffer");
    }
    parser p;
    parser_init(&p, name, users, items, opts, err, err_cap);
    return run(&p, out, NULL, buf, len);
}

fr_err
fri_dataset_load_user(fri_dataset *out, const char *path, int64_t user,
    fri_idmap *items, const fri_load_opts *opts, char *err, size_t err_cap)
{
    fri_load_opts dflt;
    fr_err e = check_args(out, NULL, items, &opts, &dflt, 1, err, err_cap);
    if (e != FR_OK) {
        return e;
    }
    if (path == NULL) {
        return set_err(err, err_cap, FR_EINVAL, "dataset: NULL path");
    }
    parser p;
    parser_init(&p, path, NULL, items, opts, err, err_cap);
    p.filter     = 1;
    p.filter_ext = user;
    return run(&p, out, path, NULL, 0);
}

void
fri_dataset_free(fri_dataset *d)
{
    if (d == NULL) {
        return;
    }
    free(d->r);
    memset(d, 0, sizeof(*d));
}

// ---------------------------------------------------------------------------
// Splits

static fr_err
check_dataset(const fri_dataset *d)
{
    if (d == NULL || (d->r == NULL && d->n > 0)) {
        return FR_EINVAL;
    }
    if (d->n > UINT32_MAX) {
        return FR_ETOOBIG;
    }
    for (size_t i = 0; i < d->n; i++) {
        if (d->r[i].user >= d->n_users || d->r[i].item >= d->n_items) {
            return FR_EINVAL;
        }
    }
    return FR_OK;
}

// Positions of d's ratings grouped by user, file order within a user:
// row u is perm[ptr[u] .. ptr[u+1]).
static fr_err
group_by_user(const fri_dataset *d, size_t **ptr_out, uint32_t **perm_out)
{
    size_t   *ptr  = calloc((size_t)d->n_users + 2, sizeof(*ptr));
    uint32_t *perm = malloc((d->n > 0 ? d->n : 1) * sizeof(*perm));
    if (ptr == NULL || perm == NULL) {
        free(ptr);
        free(perm);
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < d->n; i++) {
        ptr[d->r[i].user + 2]++;
    }
    for (uint32_t u = 0; u < d->n_users; u++) {
        ptr[u + 2] += ptr[u + 1];
    }
    for (size_t i = 0; i < d->n; i++) {
        perm[ptr[d->r[i].user + 1]++] = (uint32_t)i;
    }
    *ptr_out  = ptr;
    *perm_out = perm;
    return FR_OK;
}

// Copies the ratings of d with mark[i] == 0 to train and the others to
// test, keeping order.
static fr_err
split_by_mark(const fri_dataset *d, const uint8_t *mark, fri_dataset *train,
    fri_dataset *test)
{
    size_t n_test = 0;
    for (size_t i = 0; i < d->n; i++) {
        n_test += mark[i];
    }
    size_t       n_train = d->n - n_test;
    fri_triplet *a       = malloc((n_train > 0 ? n_train : 1) * sizeof(*a));
    fri_triplet *b       = malloc((n_test > 0 ? n_test : 1) * sizeof(*b));
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return FR_ENOMEM;
    }
    size_t ia = 0, ib = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (mark[i]) {
            b[ib++] = d->r[i];
        } else {
            a[ia++] = d->r[i];
        }
    }
    train->r       = a;
    train->n       = n_train;
    train->n_users = d->n_users;
    train->n_items = d->n_items;
    test->r        = b;
    test->n        = n_test;
    test->n_users  = d->n_users;
    test->n_items  = d->n_items;
    return FR_OK;
}

fr_err
fri_split_random(const fri_dataset *all, double test_frac, uint64_t seed,
    fri_dataset *train, fri_dataset *test)
{
    if (train == NULL || test == NULL || train == test || train == all
        || test == all) {
        return FR_EINVAL;
    }
    memset(train, 0, sizeof(*train));
    memset(test, 0, sizeof(*test));
    if (!(test_frac >= 0.0 && test_frac < 1.0)) {
        return FR_EINVAL;
    }
    fr_err e = check_dataset(all);
    if (e != FR_OK) {
        return e;
    }
    size_t   *ptr;
    uint32_t *perm;
    if ((e = group_by_user(all, &ptr, &perm)) != FR_OK) {
        return e;
    }
    uint8_t *mark = calloc(all->n > 0 ? all->n : 1, 1);
    if (mark == NULL) {
        free(ptr);
        free(perm);
        return FR_ENOMEM;
    }
    fri_rng rng;
    fri_rng_seed(&rng, seed);
    for (uint32_t u = 0; u < all->n_users; u++) {
        uint32_t *row = perm + ptr[u];
        size_t    c   = ptr[u + 1] - ptr[u];
        if (c < 2) {
            continue;
        }
        // Round to nearest; at least one rating stays in train.
        size_t t = (size_t)floor(test_frac * (double)c + 0.5);
        if (t > c - 1) {
            t = c - 1;
        }
        // Partial Fisher-Yates: the first t of the row go to test.
        for (size_t j = 0; j < t; j++) {
            size_t   k   = j + fri_rng_below(&rng, (uint32_t)(c - j));
            uint32_t tmp = row[j];
            row[j]       = row[k];
            row[k]       = tmp;
            mark[row[j]] = 1;
        }
    }
    e = split_by_mark(all, mark, train, test);
    free(ptr);
    free(perm);
    free(mark);
    return e;
}

typedef struct ts_pos {
    int64_t  ts;
    uint32_t pos;
} ts_pos;

static int
cmp_ts_pos(const void *a, const void *b)
{
    const ts_pos *x = a, *y = b;
    if (x->ts != y->ts) {
        return x->ts < y->ts ? -1 : 1;
    }
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

fr_err
fri_split_last(const fri_dataset *all, uint32_t n_last, fri_dataset *train,
    fri_dataset *test)
{
    if (train == NULL || test == NULL || train == test || train == all
        || test == all) {
        return FR_EINVAL;
    }
    memset(train, 0, sizeof(*train));
    memset(test, 0, sizeof(*test));
    fr_err e = check_dataset(all);
    if (e != FR_OK) {
        return e;
    }
    size_t   *ptr;
    uint32_t *perm;
    if ((e = group_by_user(all, &ptr, &perm)) != FR_OK) {
        return e;
    }
    size_t max_row = 0;
    for (uint32_t u = 0; u < all->n_users; u++) {
        size_t c = ptr[u + 1] - ptr[u];
        max_row  = c > max_row ? c : max_row;
    }
    uint8_t *mark = calloc(all->n > 0 ? all->n : 1, 1);
    ts_pos  *tmp  = malloc((max_row > 0 ? max_row : 1) * sizeof(*tmp));
    if (mark == NULL || tmp == NULL) {
        e = FR_ENOMEM;
        goto out;
    }
    for (uint32_t u = 0; u < all->n_users; u++) {
        size_t c = ptr[u + 1] - ptr[u];
        if (c < 2 || n_last == 0) {
            continue;
        }
        // Newest = largest ts; equal ts: the later position is newer.
        for (size_t j = 0; j < c; j++) {
            uint32_t i = perm[ptr[u] + j];
            tmp[j].ts  = all->r[i].ts;
            tmp[j].pos = i;
        }
        size_t t = n_last < c - 1 ? n_last : c - 1;
        if (t == 1) {
            size_t best = 0;
            for (size_t j = 1; j < c; j++) {
                if (cmp_ts_pos(&tmp[j], &tmp[best]) > 0) {
                    best = j;
                }
            }
            mark[tmp[best].pos] = 1;
        } else {
            qsort(tmp, c, sizeof(*tmp), cmp_ts_pos);
            for (size_t j = c - t; j < c; j++) {
                mark[tmp[j].pos] = 1;
            }
        }
    }
    e = split_by_mark(all, mark, train, test);
out:
    free(ptr);
    free(perm);
    free(mark);
    free(tmp);
    return e;
}

int
fri_dataset_has_ts(const fri_dataset *d)
{
    for (size_t j = 0; d != NULL && j < d->n; j++) {
        if (d->r[j].ts != 0) {
            return 1;
        }
    }
    return 0;
}

fr_err
fri_split_leave_last_out(const fri_dataset *all, fri_dataset *train,
                         fri_dataset *val, fri_dataset *test)
{
    if (train == NULL || test == NULL || train == test || train == val ||
        test == val || all == train || all == val || all == test) {
        return FR_EINVAL;
    }
    memset(train, 0, sizeof(*train));
    memset(test, 0, sizeof(*test));
    if (val == NULL) {
        return fri_split_last(all, 1, train, test);
    }
    memset(val, 0, sizeof(*val));
    fri_dataset rest;
    fr_err      e = fri_split_last(all, 1, &rest, test);
    if (e != FR_OK) {
        return e;
    }
    // The second-to-last of the remainder is the original's second-to-last
    // (same order: timestamp, then position).
    e = fri_split_last(&rest, 1, train, val);
    fri_dataset_free(&rest);
    if (e != FR_OK) {
        fri_dataset_free(test);
    }
    return e;
}

// ---------------------------------------------------------------------------
// CSR: counting sort by column, then a stable counting sort by row, so
// every row comes out sorted by column in O(n + rows + cols).

static fr_err
csr_build(fri_csr *out, const fri_dataset *d, int by_item)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    fr_err e = check_dataset(d);
    if (e != FR_OK) {
        return e;
    }
    uint32_t  n_rows = by_item ? d->n_items : d->n_users;
    uint32_t  n_cols = by_item ? d->n_users : d->n_items;
    size_t    n      = d->n;
    size_t   *ptr    = calloc((size_t)n_rows + 1, sizeof(*ptr));
    size_t   *cnt    = calloc((size_t)n_cols + 1, sizeof(*cnt));
    uint32_t *perm   = malloc((n > 0 ? n : 1) * sizeof(*perm));
    uint32_t *idx    = malloc((n > 0 ? n : 1) * sizeof(*idx));
    float    *val    = malloc((n > 0 ? n : 1) * sizeof(*val));
    int64_t  *ts     = malloc((n > 0 ? n : 1) * sizeof(*ts));
    if (ptr == NULL || cnt == NULL || perm == NULL || idx == NULL
        || val == NULL || ts == NULL) {
        free(ptr);
        free(cnt);
        free(perm);
        free(idx);
        free(val);
        free(ts);
        return FR_ENOMEM;
    }
#define ROW(t) (by_item ? (t).item : (t).user)
#define COL(t) (by_item ? (t).user : (t).item)
    for (size_t i = 0; i < n; i++) {
        cnt[COL(d->r[i]) + 1]++;
    }
    for (uint32_t c = 0; c < n_cols; c++) {
        cnt[c + 1] += cnt[c];
    }
    for (size_t i = 0; i < n; i++) {
        perm[cnt[COL(d->r[i])]++] = (uint32_t)i;
    }
    for (size_t i = 0; i < n; i++) {
        ptr[ROW(d->r[i]) + 1]++;
    }
    for (uint32_t r = 0; r < n_rows; r++) {
        ptr[r + 1] += ptr[r];
    }
    // Walking perm (column order) with ptr[r] as row r's cursor leaves
    // every row sorted by column.
    free(cnt);
    for (size_t j = 0; j < n; j++) {
        const fri_triplet *t  = &d->r[perm[j]];
        size_t             at = ptr[ROW(*t)]++;
        idx[at]               = COL(*t);
        val[at]               = t->rating;
        ts[at]                = t->ts;
    }
    // ptr[r] now holds the end of row r; shift back to starts.
    for (uint32_t r = n_rows; r > 0; r--) {
        ptr[r] = ptr[r - 1];
    }
    ptr[0] = 0;
#undef ROW
#undef COL
    free(perm);
    out->n_rows = n_rows;
    out->n_cols = n_cols;
    out->ptr    = ptr;
    out->idx    = idx;
    out->val    = val;
    out->ts     = ts;
    return FR_OK;
}

fr_err
fri_csr_by_user(fri_csr *out, const fri_dataset *d)
{
    return csr_build(out, d, 0);
}

fr_err
fri_csr_by_item(fri_csr *out, const fri_dataset *d)
{
    return csr_build(out, d, 1);
}

void
fri_csr_free(fri_csr *c)
{
    if (c == NULL) {
        return;
    }
    free(c->ptr);
    free(c->idx);
    free(c->val);
    free(c->ts);
    memset(c, 0, sizeof(*c));
}

// ---------------------------------------------------------------------------
// Tiny worked example

fr_err
fri_dataset_tiny(fri_dataset *out)
{
    static const uint8_t m[10][5] = {
        { 5, 3, 4, 0, 2 },
        { 4, 5, 3, 4, 5 },
        { 2, 4, 5, 5, 1 },
        { 4, 4, 4, 4, 4 },
        { 3, 5, 5, 3, 3 },
        { 2, 2, 5, 4, 3 },
        { 1, 3, 4, 5, 4 },
        { 4, 4, 3, 5, 5 },
        { 3, 4, 5, 3, 5 },
        { 5, 5, 4, 3, 4 },
    };
    if (out == NULL) {
        return FR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    fri_triplet *r = malloc(49 * sizeof(*r));
    if (r == NULL) {
        return FR_ENOMEM;
    }
    size_t n = 0;
    for (uint32_t u = 0; u < 10; u++) {
        for (uint32_t i = 0; i < 5; i++) {
            if (m[u][i] != 0) {
                r[n].user   = u;
                r[n].item   = i;
                r[n].rating = (float)m[u][i];
                r[n].ts     = 0;
                n++;
            }
        }
    }
    out->r       = r;
    out->n       = n;
    out->n_users = 10;
    out->n_items = 5;
    return FR_OK;
}

// ---------------------------------------------------------------------------
// Synthetic data
//
// Ground truth: r = 3.5 + b_u + b_i + p_u . q_i + noise * N(0, 1), with
// b_u, b_i ~ N(0, 0.4^2) and factor entries ~ N(0, s^2), s^4 = 0.36 / k, so
// the interaction term has stddev 0.6 whatever k. Users draw a log-normal
// activity (mean density * n_items, at least SYNTH_MIN_PER_USER) and pick
// distinct items by Zipf popularity over a seeded random item ranking.
// Every user has its own RNG stream, so the data do not depend on the
// order of generation and users' factors need no storage.

#define SYNTH_MU 3.5
#define SYNTH_BIAS_SD 0.4
#define SYNTH_SIGNAL_SD 0.6
#define SYNTH_ACTIVITY_SD 0.8 // log-normal sigma of per-user counts
#define SYNTH_MIN_PER_USER 5u
#define SYNTH_MAX_K 1024u
#define SYNTH_TS_BASE 978300000 // 2001-01-01
#define SYNTH_TS_SPAN 94608000u // three years, in seconds
#define STREAM_ITEMS 1u
#define STREAM_USER0 16u

void
fri_synth_config_init(fri_synth_config *c)
{
    if (c == NULL) {
        return;
    }
    c->n_users    = 600;
    c->n_items    = 400;
    c->k          = 8;
    c->density    = 0.06;
    c->zipf       = 0.8;
    c->noise      = 0.5;
    c->continuous = 0;
    c->seed       = 1;
}

static fr_err
synth_check(const fri_synth_config *c, char *err, size_t err_cap)
{
    if (c->n_users == 0 || c->n_users > IDMAP_MAX) {
        return set_err(err, err_cap, FR_EINVAL, "synth: users must be >= 1");
    }
    if (c->n_items == 0 || c->n_items > IDMAP_MAX) {
        return set_err(err, err_cap, FR_EINVAL, "synth: items must be >= 1");
    }
    if (c->k == 0 || c->k > SYNTH_MAX_K) {
        return set_err(err, err_cap, FR_EINVAL, "synth: k must be in [1, %u]",
            SYNTH_MAX_K);
    }
    if (!(c->density > 0.0 && c->density <= 1.0)) {
        return set_err(
            err, err_cap, FR_EINVAL, "synth: density must be in (0, 1]");
    }
    if (!(c->zipf >= 0.0 && c->zipf <= 10.0)) {
        return set_err(
            err, err_cap, FR_EINVAL, "synth: zipf must be in [0, 10]");
    }
    if (!(c->noise >= 0.0 && c->noise <= 10.0)) {
        return set_err(
            err, err_cap, FR_EINVAL, "synth: noise must be in [0, 10]");
    }
    return FR_OK;
}

static int
parse_u64_full(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20) {
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int
parse_double_full(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    // strtod would also take leading blanks, hex, nan and inf.
    for (size_t i = 0; i < len; i++) {
        char ch = tmp[i];
        if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == 'e' || ch == 'E'
                || ch == '-' || ch == '+')) {
            return -1;
        }
    }
    char  *end;
    double v = strtod(tmp, &end);
    if (end != tmp + len || !isfinite(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

fr_err
fri_synth_config_parse(
    fri_synth_config *c, const char *spec, char *err, size_t err_cap)
{
    if (c == NULL || spec == NULL) {
        return set_err(err, err_cap, FR_EINVAL, "synth: NULL argument");
    }
    fri_synth_config t = *c; // committed only if everything parses
    const char      *s = spec;
    while (*s != '\0') {
        const char *end = strchr(s, ',');
        size_t      len = end != NULL ? (size_t)(end - s) : strlen(s);
        const char *eq  = memchr(s, '=', len);
        char        q[32];
        if (len == 0) {
            return set_err(
                err, err_cap, FR_EINVAL, "synth: empty item in '%s'", spec);
        }
        if (eq == NULL) {
            return set_err(err, err_cap, FR_EINVAL,
                "synth: '%s' is not key=value", quote(q, s, len));
        }
        size_t      kl  = (size_t)(eq - s);
        const char *v   = eq + 1;
        size_t      vl  = len - kl - 1;
        uint64_t    u   = 0;
        double      d   = 0;
        int         bad = 0;
#define KEY(name) (kl == sizeof(name) - 1 && memcmp(s, name, kl) == 0)
        if (KEY("users") || KEY("items") || KEY("k")) {
            bad = parse_u64_full(v, vl, &u) != 0 || u == 0 || u > IDMAP_MAX
                || (KEY("k") && u > SYNTH_MAX_K);
            if (!bad) {
                if (KEY("users")) {
                    t.n_users = (uint32_t)u;
                } else if (KEY("items")) {
                    t.n_items = (uint32_t)u;
                } else {
                    t.k = (uint32_t)u;
                }
            }
        } else if (KEY("seed")) {
            bad    = parse_u64_full(v, vl, &u) != 0;
            t.seed = u;
        } else if (KEY("continuous")) {
            bad          = parse_u64_full(v, vl, &u) != 0 || u > 1;
            t.continuous = (int)u;
        } else if (KEY("density")) {
            bad = parse_double_full(v, vl, &d) != 0 || !(d > 0 && d <= 1);
            t.density = d;
        } else if (KEY("zipf")) {
            bad    = parse_double_full(v, vl, &d) != 0 || !(d >= 0 && d <= 10);
            t.zipf = d;
        } else if (KEY("noise")) {
            bad = parse_double_full(v, vl, &d) != 0 || !(d >= 0 && d <= 10);
            t.noise = d;
        } else {
            return set_err(err, err_cap, FR_EINVAL, "synth: unknown key '%s'",
                quote(q, s, kl));
        }
#undef KEY
        if (bad) {
            char qv[32];
            return set_err(err, err_cap, FR_EINVAL,
                "synth: bad value '%s' for %s", quote(qv, v, vl),
                quote(q, s, kl));
        }
        s += len;
        if (*s == ',') {
            s++;
        }
    }
    *c = t;
    return FR_OK;
}

// Number of ratings of a user: the first draw of the user's stream.
static uint32_t
synth_count(fri_rng *r, const fri_synth_config *c)
{
    double   mean = c->density * (double)c->n_items;
    double   sd   = SYNTH_ACTIVITY_SD;
    double   x    = mean * exp(sd * fri_rng_normal(r) - 0.5 * sd * sd);
    uint32_t lo
        = c->n_items < SYNTH_MIN_PER_USER ? c->n_items : SYNTH_MIN_PER_USER;
    if (!(x >= (double)lo)) {
        return lo;
    }
    if (x >= (double)c->n_items) {
        return c->n_items;
    }
    return (uint32_t)floor(x + 0.5);
}

static double
clampd(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

fr_err
fri_synth_generate(fri_dataset *out, const fri_synth_config *c)
{
    if (out == NULL || c == NULL) {
        return FR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    fr_err e = synth_check(c, NULL, 0);
    if (e != FR_OK) {
        return e;
    }
    const uint32_t nu = c->n_users, ni = c->n_items, k = c->k;
    fri_rng        r;

    // Pass 1: exact total, so the output is allocated once.
    size_t total = 0;
    for (uint32_t u = 0; u < nu; u++) {
        fri_rng_seed2(&r, c->seed, STREAM_USER0 + (uint64_t)u);
        total += synth_count(&r, c);
    }
    if (total > SIZE_MAX / sizeof(fri_triplet) || total > UINT32_MAX) {
        return FR_ETOOBIG;
    }

    fri_triplet *rt     = malloc(total * sizeof(*rt));
    float       *q      = malloc((size_t)ni * k * sizeof(*q));
    float       *bi     = malloc((size_t)ni * sizeof(*bi));
    uint32_t    *rank   = malloc((size_t)ni * sizeof(*rank)); // rank -> item
    double      *prob   = malloc((size_t)ni * sizeof(*prob));
    uint32_t    *alias  = malloc((size_t)ni * sizeof(*alias));
    uint32_t    *work   = malloc((size_t)ni * 2 * sizeof(*work));
    uint32_t    *stamp  = calloc(ni, sizeof(*stamp));
    float       *p      = malloc((size_t)k * sizeof(*p));
    uint32_t    *chosen = malloc((size_t)ni * sizeof(*chosen));
    if (rt == NULL || q == NULL || bi == NULL || rank == NULL || prob == NULL
        || alias == NULL || work == NULL || stamp == NULL || p == NULL
        || chosen == NULL) {
        e = FR_ENOMEM;
        goto out;
    }

    // Items: factors, biases, popularity ranking.
    double s = pow(SYNTH_SIGNAL_SD * SYNTH_SIGNAL_SD / (double)k, 0.25);
    fri_rng_seed2(&r, c->seed, STREAM_ITEMS);
    for (size_t j = 0; j < (size_t)ni * k; j++) {
        q[j] = (float)(s * fri_rng_normal(&r));
    }
    for (uint32_t i = 0; i < ni; i++) {
        bi[i]   = (float)(SYNTH_BIAS_SD * fri_rng_normal(&r));
        rank[i] = i;
    }
    fri_rng_shuffle_u32(&r, rank, ni);

    // Vose's alias table over ranks, weight (rank + 1)^-zipf.
    double wsum = 0;
    for (uint32_t i = 0; i < ni; i++) {
        prob[i] = pow((double)i + 1.0, -c->zipf);
        wsum += prob[i];
    }
    {
        uint32_t *small = work, *large = work + ni;
        size_t    ns = 0, nl = 0;
        for (uint32_t i = 0; i < ni; i++) {
            prob[i]  = prob[i] * (double)ni / wsum;
            alias[i] = i;
            if (prob[i] < 1.0) {
                small[ns++] = i;
            } else {
                large[nl++] = i;
            }
        }
        while (ns > 0 && nl > 0) {
            uint32_t a = small[--ns], b = large[nl - 1];
            alias[a] = b;
            prob[b] -= 1.0 - prob[a];
            if (prob[b] < 1.0) {
                nl--;
                small[ns++] = b;
            }
        }
        while (nl > 0) {
            prob[large[--nl]] = 1.0;
        }
        while (ns > 0) {
            prob[small[--ns]] = 1.0; // rounding leftovers
        }
    }

    // Pass 2: users.
    size_t n = 0;
    for (uint32_t u = 0; u < nu; u++) {
        fri_rng_seed2(&r, c->seed, STREAM_USER0 + (uint64_t)u);
        uint32_t cnt = synth_count(&r, c);
        double   bu  = SYNTH_BIAS_SD * fri_rng_normal(&r);
        for (uint32_t f = 0; f < k; f++) {
            p[f] = (float)(s * fri_rng_normal(&r));
        }
        // Distinct items by popularity; rejection sampling, bounded, then
        // the most popular items not yet taken (heavy users, steep zipf).
        uint32_t got   = 0;
        uint64_t tries = 8 * (uint64_t)cnt + 64;
        while (got < cnt && tries-- > 0) {
            uint32_t j  = fri_rng_below(&r, ni);
            uint32_t rk = fri_rng_uniform(&r) < prob[j] ? j : alias[j];
            uint32_t it = rank[rk];
            if (stamp[it] != u + 1) {
                stamp[it]     = u + 1;
                chosen[got++] = it;
            }
        }
        for (uint32_t rk = 0; got < cnt && rk < ni; rk++) {
            uint32_t it = rank[rk];
            if (stamp[it] != u + 1) {
                stamp[it]     = u + 1;
                chosen[got++] = it;
            }
        }
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t     it  = chosen[j];
            const float *qi  = q + (size_t)it * k;
            double       dot = 0;
            for (uint32_t f = 0; f < k; f++) {
                dot += (double)p[f] * (double)qi[f];
            }
            double x
                = SYNTH_MU + bu + bi[it] + dot + c->noise * fri_rng_normal(&r);
            x            = c->continuous ? clampd(x, 1.0, 5.0)
                                         : clampd(floor(x + 0.5), 1.0, 5.0);
            rt[n].user   = u;
            rt[n].item   = it;
            rt[n].rating = (float)x;
            rt[n].ts
                = SYNTH_TS_BASE + (int64_t)fri_rng_below(&r, SYNTH_TS_SPAN);
            n++;
        }
    }
    out->r       = rt;
    out->n       = n;
    out->n_users = nu;
    out->n_items = ni;
    rt           = NULL;
out:
    free(rt);
    free(q);
    free(bi);
    free(rank);
    free(prob);
    free(alias);
    free(work);
    free(stamp);
    free(p);
    free(chosen);
    return e;
}
