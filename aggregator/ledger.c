// Standing contributions of plain latest-statistics devices (ledger.h):
// a keymap from device key to a slot in an array of entries.
#include "ledger.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "keymap.h"
#include "linalg.h"
#include "wire.h"

struct fri_ledger_entry {
    float     mu; // the served mean the entry is expressed against
    uint32_t  n; // rows
    double    sum, count, weight;
    uint32_t *items; // n
    float    *rows; // n * d
    float    *gram; // gram_len
    float    *vb; // vb_len
};

struct fri_ledger {
    uint32_t           d;
    size_t             gram_len, vb_len;
    int                implicit;
    fri_keymap        *index; // key -> slot + 1
    uint8_t           *keys; // n * 32
    fri_ledger_entry **e; // n
    size_t             n, cap;
    // Staged for the end of the round (fri_ledger_settle).
    uint8_t           *skeys; // ns * 32
    fri_ledger_entry **se; // ns
    size_t             ns, scap;
    size_t             nres; // reserved stagings not yet used
};

fri_ledger *
fri_ledger_create(uint32_t d, size_t gram_len, size_t vb_len, int implicit)
{
    fri_ledger *L = calloc(1, sizeof *L);
    if (L == NULL) {
        return NULL;
    }
    L->d        = d;
    L->gram_len = gram_len;
    L->vb_len   = vb_len;
    L->implicit = implicit;
    L->index    = fri_keymap_create();
    if (L->index == NULL) {
        free(L);
        return NULL;
    }
    return L;
}

void
fri_ledger_entry_free(fri_ledger_entry *e)
{
    if (e != NULL) {
        free(e->items);
        free(e->rows);
        free(e->gram);
        free(e->vb);
        free(e);
    }
}

static void
clear(fri_ledger *L)
{
    for (size_t j = 0; j < L->n; j++) {
        fri_ledger_entry_free(L->e[j]);
    }
    free(L->e);
    free(L->keys);
    L->e    = NULL;
    L->keys = NULL;
    L->n = L->cap = 0;
}

void
fri_ledger_destroy(fri_ledger *L)
{
    if (L != NULL) {
        (void)fri_ledger_settle(L, 0);
        free(L->se);
        free(L->skeys);
        clear(L);
        fri_keymap_destroy(L->index);
        free(L);
    }
}

size_t
fri_ledger_devices(const fri_ledger *L)
{
    return L != NULL ? L->n : 0;
}

static fri_ledger_entry *
entry_new(const fri_ledger *L, uint32_t n)
{
    fri_ledger_entry *e = calloc(1, sizeof *e);
    if (e == NULL) {
        return NULL;
    }
    e->n     = n;
    e->items = malloc((n > 0 ? n : 1) * sizeof *e->items);
    e->rows  = calloc((n > 0 ? (size_t)n * L->d : 1), sizeof *e->rows);
    e->gram  = calloc(L->gram_len > 0 ? L->gram_len : 1, sizeof *e->gram);
    e->vb    = calloc(L->vb_len > 0 ? L->vb_len : 1, sizeof *e->vb);
    if (e->items == NULL || e->rows == NULL || e->gram == NULL
        || e->vb == NULL) {
        fri_ledger_entry_free(e);
        return NULL;
    }
    return e;
}

static const fri_ledger_entry *
lookup(const fri_ledger *L, const uint8_t *key)
{
    uint64_t s = fri_keymap_get(L->index, key);
    return s != 0 ? L->e[s - 1] : NULL;
}

// Copies src (or zeros when NULL) into dst, re-centred from src->mu to mu
// as the device re-centres its own record (client/stats_delta.c): h -=
// dmu E[x] (the Gram's last column) and, for VBMF, the squared residuals
// sq += -2 dmu A + n dmu^2 (A the sum of the rows' last entries).
static void
recentred(const fri_ledger *L, const fri_ledger_entry *src, float mu,
    fri_ledger_entry *dst)
{
    const size_t d   = L->d;
    const double dmu = L->implicit ? 0.0 : (double)mu - (double)src->mu;
    double       A   = 0.0;
    for (uint32_t j = 0; j < src->n; j++) {
        const float *o = src->rows + (size_t)j * d;
        A += o[d - 1];
        for (size_t a = 0; a < d; a++) {
            double g
                = L->implicit ? 0.0 : src->gram[fri_packed_index(d, a, d - 1)];
            dst->rows[(size_t)j * d + a] = (float)((double)o[a] - dmu * g);
        }
    }
    memcpy(dst->gram, src->gram, L->gram_len * sizeof(float));
    memcpy(dst->vb, src->vb, L->vb_len * sizeof(float));
    if (L->vb_len > 0) {
        size_t sq   = d + fri_packed_len(d);
        dst->vb[sq] = (float)((double)src->vb[sq] - 2.0 * dmu * A
            + (double)src->n * dmu * dmu);
    }
    dst->sum    = src->sum;
    dst->count  = src->count;
    dst->weight = src->weight;
    dst->mu     = mu;
}

// Within the rounding of a sum of a and b, relative to their sizes.
static int
near0(double v, double a, double b)
{
    return fabs(v) <= 1e-4 * (fabs(a) + fabs(b)) + 1e-6;
}

fr_err
fri_ledger_apply(const fri_ledger *L, const uint8_t *key,
    const fri_agg_update *u, float mu, fri_ledger_entry **next, int *empty,
    const char **why)
{
    *next                       = NULL;
    *empty                      = 0;
    *why                        = NULL;
    const fri_ledger_entry *o   = lookup(L, key);
    const int               had = o != NULL && o->n > 0;
    if (o == NULL && L->n + L->ns + L->nres > FRI_KEYMAP_MAX) {
        *why = "ledger full";
        return FR_ETOOBIG; // a device it could not record is not summed
    }
    if (had
        && (u->n != o->n
            || memcmp(u->items, o->items, (size_t)o->n * sizeof(uint32_t))
                != 0)) {
        *why = "change names other items than the standing contribution";
        return FR_ESTATE;
    }
    if (u->gram_len != L->gram_len || u->vb_len != L->vb_len) {
        return FR_EINVAL;
    }
    fri_ledger_entry *e = entry_new(L, u->n);
    if (e == NULL) {
        return FR_ENOMEM;
    }
    if (had) {
        recentred(L, o, mu, e);
    } else {
        // A device without entry, or with the empty one, starts from 0.
        e->mu = mu;
        if (o != NULL) {
            e->sum    = o->sum;
            e->count  = o->count;
            e->weight = o->weight;
            memcpy(e->gram, o->gram, L->gram_len * sizeof(float));
            memcpy(e->vb, o->vb, L->vb_len * sizeof(float));
        }
    }
    if (u->n > 0) {
        memcpy(e->items, u->items, (size_t)u->n * sizeof(uint32_t));
    }
    int zero = 1;
    for (size_t t = 0; t < (size_t)u->n * L->d; t++) {
        double a = e->rows[t], b = u->rows[t];
        e->rows[t] = (float)(a + b);
        zero &= near0(e->rows[t], a, b);
    }
    for (size_t t = 0; t < L->gram_len; t++) {
        double a = e->gram[t], b = u->gram[t];
        e->gram[t] = (float)(a + b);
        zero &= near0(e->gram[t], a, b);
    }
    for (size_t t = 0; t < L->vb_len; t++) {
        double a = e->vb[t], b = u->vb[t];
        e->vb[t] = (float)(a + b);
        zero &= near0(e->vb[t], a, b);
    }
    double s0 = e->sum, c0 = e->count;
    e->sum += u->sum_ratings;
    e->count += u->count;
    // The weight is the report's own (each report states it whole).
    e->weight = u->weight;
    zero &= near0(e->sum, s0, u->sum_ratings) && near0(e->count, c0, u->count);
    if (zero) {
        // A retraction: the empty contribution, exactly.
        fri_ledger_entry *z = entry_new(L, 0);
        fri_ledger_entry_free(e);
        if (z == NULL) {
            return FR_ENOMEM;
        }
        z->mu  = mu;
        e      = z;
        *empty = 1;
    }
    *next = e;
    return FR_OK;
}

void
fri_ledger_view(const fri_ledger_entry *e, uint64_t round, fri_agg_update *u)
{
    memset(u, 0, sizeof *u);
    u->round       = round;
    u->n           = e->n;
    u->items       = e->items;
    u->rows        = e->rows;
    u->gram        = e->gram;
    u->sum_ratings = e->sum;
    u->count       = e->count;
    u->weight      = e->weight;
    u->vb          = e->vb;
    // Lengths are the ledger's (set by the caller's shape).
}

static fr_err
put(fri_ledger *L, const uint8_t *key, fri_ledger_entry *e)
{
    uint64_t s = fri_keymap_get(L->index, key);
    if (s != 0) {
        fri_ledger_entry_free(L->e[s - 1]);
        L->e[s - 1] = e;
        return FR_OK;
    }
    if (L->n == L->cap) {
        size_t cap = L->cap > 0 ? 2 * L->cap : 64;
        void  *ne  = realloc(L->e, cap * sizeof *L->e);
        if (ne == NULL) {
            fri_ledger_entry_free(e);
            return FR_ENOMEM;
        }
        L->e     = ne;
        void *nk = realloc(L->keys, cap * FRI_KEYMAP_KEYBYTES);
        if (nk == NULL) {
            fri_ledger_entry_free(e);
            return FR_ENOMEM;
        }
        L->keys = nk;
        L->cap  = cap;
    }
    fr_err rv = fri_keymap_set(L->index, key, (uint64_t)L->n + 1);
    if (rv != FR_OK) {
        fri_ledger_entry_free(e);
        return rv;
    }
    memcpy(L->keys + L->n * FRI_KEYMAP_KEYBYTES, key, FRI_KEYMAP_KEYBYTES);
    L->e[L->n++] = e;
    return FR_OK;
}

fr_err
fri_ledger_reserve(fri_ledger *L)
{
    size_t want = L->ns + L->nres + 1;
    if (want > L->scap) {
        size_t cap = L->scap > 0 ? 2 * L->scap : 64;
        cap        = cap < want ? want : cap;
        void *ne   = realloc(L->se, cap * sizeof *L->se);
        if (ne == NULL) {
            return FR_ENOMEM;
        }
        L->se    = ne;
        void *nk = realloc(L->skeys, cap * FRI_KEYMAP_KEYBYTES);
        if (nk == NULL) {
            return FR_ENOMEM;
        }
        L->skeys = nk;
        L->scap  = cap;
    }
    L->nres++;
    return FR_OK;
}

void
fri_ledger_release(fri_ledger *L)
{
    if (L->nres > 0) {
        L->nres--;
    }
}

fr_err
fri_ledger_empty(const fri_ledger *L, float mu, fri_ledger_entry **out)
{
    *out = entry_new(L, 0);
    if (*out == NULL) {
        return FR_ENOMEM;
    }
    (*out)->mu = mu;
    return FR_OK;
}

fr_err
fri_ledger_stage(fri_ledger *L, const uint8_t *key, fri_ledger_entry *e)
{
    if (L == NULL || key == NULL || e == NULL || L->nres == 0) {
        fri_ledger_entry_free(e);
        return L != NULL && L->nres == 0 ? FR_ENOMEM : FR_EINVAL;
    }
    L->nres--;
    memcpy(L->skeys + L->ns * FRI_KEYMAP_KEYBYTES, key, FRI_KEYMAP_KEYBYTES);
    L->se[L->ns++] = e;
    return FR_OK;
}

fr_err
fri_ledger_settle(fri_ledger *L, int keep)
{
    if (L == NULL) {
        return FR_OK;
    }
    fr_err rv = FR_OK;
    for (size_t j = 0; j < L->ns; j++) {
        if (keep) {
            fr_err r = put(L, L->skeys + j * FRI_KEYMAP_KEYBYTES, L->se[j]);
            rv       = rv == FR_OK ? r : rv;
        } else {
            fri_ledger_entry_free(L->se[j]);
        }
        L->se[j] = NULL;
    }
    L->ns = 0;
    return rv;
}

fr_err
fri_ledger_retraction(
    const fri_ledger *L, const uint8_t *key, float mu, fri_ledger_entry **out)
{
    *out                      = NULL;
    const fri_ledger_entry *o = lookup(L, key);
    if (o == NULL || (o->n == 0 && o->count == 0.0)) {
        return FR_OK;
    }
    fri_ledger_entry *e = entry_new(L, o->n);
    if (e == NULL) {
        return FR_ENOMEM;
    }
    recentred(L, o, mu, e);
    if (o->n > 0) {
        memcpy(e->items, o->items, (size_t)o->n * sizeof(uint32_t));
    }
    for (size_t t = 0; t < (size_t)o->n * L->d; t++) {
        e->rows[t] = -e->rows[t];
    }
    for (size_t t = 0; t < L->gram_len; t++) {
        e->gram[t] = -e->gram[t];
    }
    for (size_t t = 0; t < L->vb_len; t++) {
        e->vb[t] = -e->vb[t];
    }
    e->sum    = -e->sum;
    e->count  = -e->count;
    e->weight = 0.0; // as a device's own retraction
    *out      = e;
    return FR_OK;
}

// ---- serialized form -------------------------------------------------------

static size_t
rec_size(const fri_ledger *L, uint32_t n)
{
    return FRI_KEYMAP_KEYBYTES + 4 + 4 + 3 * 8
        + (size_t)n * (4 + 4 * (size_t)L->d) + 4 * (L->gram_len + L->vb_len);
}

static void
put_f32s(uint8_t **p, const float *v, size_t n)
{
    for (size_t t = 0; t < n; t++) {
        fri_putf32(*p, v[t]);
        *p += 4;
    }
}

static void
put_f64(uint8_t **p, double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    fri_put64(*p, b);
    *p += 8;
}

fr_err
fri_ledger_save(const fri_ledger *L, uint8_t *buf, size_t cap, size_t *len)
{
    size_t need = 4;
    for (size_t j = 0; j < L->n; j++) {
        need += rec_size(L, L->e[j]->n);
    }
    *len = need;
    if (cap < need || buf == NULL) {
        return FR_ENOSPC;
    }
    uint8_t *p = buf;
    fri_put32(p, (uint32_t)L->n);
    p += 4;
    for (size_t j = 0; j < L->n; j++) {
        const fri_ledger_entry *e = L->e[j];
        memcpy(p, L->keys + j * FRI_KEYMAP_KEYBYTES, FRI_KEYMAP_KEYBYTES);
        p += FRI_KEYMAP_KEYBYTES;
        fri_putf32(p, e->mu);
        fri_put32(p + 4, e->n);
        p += 8;
        put_f64(&p, e->sum);
        put_f64(&p, e->count);
        put_f64(&p, e->weight);
        for (uint32_t t = 0; t < e->n; t++) {
            fri_put32(p, e->items[t]);
            p += 4;
        }
        put_f32s(&p, e->rows, (size_t)e->n * L->d);
        put_f32s(&p, e->gram, L->gram_len);
        put_f32s(&p, e->vb, L->vb_len);
    }
    return FR_OK;
}

static int
get_f32s(const uint8_t **p, float *v, size_t n)
{
    int ok = 1;
    for (size_t t = 0; t < n; t++) {
        v[t] = fri_getf32(*p);
        ok &= isfinite(v[t]) != 0;
        *p += 4;
    }
    return ok;
}

static double
get_f64(const uint8_t **p)
{
    uint64_t b = fri_get64(*p);
    double   v;
    memcpy(&v, &b, 8);
    *p += 8;
    return v;
}

fr_err
fri_ledger_load(fri_ledger *L, const uint8_t *buf, size_t len,
    uint32_t n_items, double max_rows)
{
    if (buf == NULL || len < 4) {
        return FR_EFORMAT;
    }
    fri_ledger tmp = *L;
    tmp.index      = fri_keymap_create();
    tmp.e          = NULL;
    tmp.keys       = NULL;
    tmp.n = tmp.cap = 0;
    tmp.se          = NULL;
    tmp.skeys       = NULL;
    tmp.ns = tmp.scap = 0;
    if (tmp.index == NULL) {
        return FR_ENOMEM;
    }
    const uint8_t *p   = buf;
    const uint8_t *end = buf + len;
    uint32_t       n   = fri_get32(p);
    p += 4;
    fr_err rv = n > FRI_KEYMAP_MAX ? FR_EFORMAT : FR_OK;
    for (uint32_t j = 0; j < n && rv == FR_OK; j++) {
        if ((size_t)(end - p) < rec_size(L, 0)) {
            rv = FR_EFORMAT;
            break;
        }
        const uint8_t *key = p;
        p += FRI_KEYMAP_KEYBYTES;
        float    mu = fri_getf32(p);
        uint32_t r  = fri_get32(p + 4);
        p += 8;
        if (!isfinite(mu) || (double)r > max_rows
            || (size_t)(end - key) < rec_size(L, r)
            || fri_keymap_get(tmp.index, key) != 0) {
            rv = FR_EFORMAT;
            break;
        }
        fri_ledger_entry *e = entry_new(L, r);
        if (e == NULL) {
            rv = FR_ENOMEM;
            break;
        }
        e->mu     = mu;
        e->sum    = get_f64(&p);
        e->count  = get_f64(&p);
        e->weight = get_f64(&p);
        int ok = isfinite(e->sum) && isfinite(e->count) && isfinite(e->weight);
        for (uint32_t t = 0; t < r; t++) {
            e->items[t] = fri_get32(p);
            ok &= e->items[t] < n_items;
            p += 4;
        }
        ok &= get_f32s(&p, e->rows, (size_t)r * L->d);
        ok &= get_f32s(&p, e->gram, L->gram_len);
        ok &= get_f32s(&p, e->vb, L->vb_len);
        if (!ok) {
            fri_ledger_entry_free(e);
            rv = FR_EFORMAT;
            break;
        }
        rv = put(&tmp, key, e);
    }
    if (rv == FR_OK && p != end) {
        rv = FR_EFORMAT;
    }
    if (rv != FR_OK) {
        clear(&tmp);
        fri_keymap_destroy(tmp.index);
        return rv;
    }
    clear(L);
    fri_keymap_destroy(L->index);
    L->index = tmp.index;
    L->keys  = tmp.keys;
    L->e     = tmp.e;
    L->n     = tmp.n;
    L->cap   = tmp.cap;
    return FR_OK;
}
