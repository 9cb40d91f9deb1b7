// A catalog that grows: the operator asks for more items (SIGHUP with a
// larger `items` in the --config file, or fri_agg_grow_items), and the
// exclusive closer extends the model after the next completed round,
// before the round after it opens (agg.c). New items enter the model no
// device has fetched yet, so no version is served at two sizes, and every
// later round (its masked vector, its updates, the checkpoint) has the new
// size. The checkpoint written at that round's close still has the old size; a
// restart grows it again the same way (fri_agg_init_rows), so the model
// served after the restart is the one served before it.
#include "grow.h"

#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "log.h"
#include "rng.h"
#include "vbmf.h"

#include <sodium.h>

void
fri_agg_fingerprint(const fri_agg *a, uint32_t n_items, uint8_t out[32])
{
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    memcpy(buf, "fedrec-agg-1", 12);
    uint32_t v[5] = {n_items, a->cfg.k, (uint32_t) a->cfg.algo,
                     (uint32_t) a->cfg.implicit,
                     a->cfg.algo == FRI_AGG_GRAD ? (uint32_t) a->cfg.server_opt
                                                 : 0u};
    for (int i = 0; i < 5; i++) {
        buf[12 + 4 * i]     = (uint8_t) v[i];
        buf[12 + 4 * i + 1] = (uint8_t) (v[i] >> 8);
        buf[12 + 4 * i + 2] = (uint8_t) (v[i] >> 16);
        buf[12 + 4 * i + 3] = (uint8_t) (v[i] >> 24);
    }
    crypto_generichash(out, 32, buf, sizeof(buf), NULL, 0);
}

_Static_assert(FRI_AGG_MAX_FEATURES == FRI_VB_MAX_FEATURES,
               "one bound on item features");

#define GROW_STREAM 0x47524f57u // "GROW"

void
fri_agg_init_rows(const fri_agg *a, float *Q, float *bi, uint32_t from,
                  uint32_t to)
{
    const size_t k = a->cfg.k;
    fri_rng      r;
    fri_rng_seed2(&r, a->cfg.seed ^ ((uint64_t) from << 32), GROW_STREAM);
    for (size_t t = (size_t) from * k; t < (size_t) to * k; t++) {
        Q[t] = (float) (fri_rng_normal(&r) * a->cfg.init_std);
    }
    for (uint32_t i = from; i < to; i++) {
        bi[i] = 0.0f;
    }
}

// p reallocated to n elements of size sz, those after n0 zeroed; NULL
// (p untouched) when out of memory.
static void *
grown(void *p, size_t n0, size_t n, size_t sz)
{
    void *q = realloc(p, n * sz + 1);
    if (q != NULL) {
        memset((char *) q + n0 * sz, 0, (n - n0) * sz);
    }
    return q;
}

#define GROW(field, n0, n)                                                    \
    do {                                                                      \
        void *t_ = grown((field), (n0), (n), sizeof(*(field)));               \
        if (t_ == NULL) {                                                     \
            goto oom;                                                         \
        }                                                                     \
        (field) = t_;                                                         \
    } while (0)

fr_err
fri_agg_grow_apply(fri_agg *a, uint32_t n)
{
    const uint32_t n0 = a->cfg.n_items;
    if (n <= n0) {
        return FR_OK;
    }
    if (a->model.held) {
        return FR_ESTATE;
    }
    const size_t k = a->cfg.k, d = a->d;
    fr_err       rv = FR_OK;
    pthread_mutex_lock(&a->rs.mtx);
    pthread_mutex_lock(&a->sums.acc_mtx);
    // Room first (nothing reads beyond n0 until the count is published).
    GROW(a->model.bi, n0, n);
    GROW(a->model.Q, n0 * k, (size_t) n * k);
    GROW(a->sums.acc, n0, n);
    GROW(a->sums.accf, n0, n);
    GROW(a->sums.touched, n0, n);
    if (a->opt.opt_m != NULL) {
        GROW(a->opt.opt_m, n0 * d, (size_t) n * d);
    }
    if (a->opt.opt_v != NULL) {
        GROW(a->opt.opt_v, n0 * d, (size_t) n * d);
    }
    if (a->stats.carry != NULL) {
        GROW(a->stats.carry, n0, n);
        GROW(a->stats.carried, n0, n);
    }
    fri_agg_init_rows(a, a->model.Q, a->model.bi, n0, n);
    if (a->vb != NULL) {
        rv = fri_vb_grow(a->vb, n, a->model.Q, a->model.bi);
    }
    if (rv == FR_OK) {
        __atomic_store_n(&a->cfg.n_items, n, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&a->sums.acc_mtx);
    pthread_mutex_unlock(&a->rs.mtx);
    return rv;
oom:
    pthread_mutex_unlock(&a->sums.acc_mtx);
    pthread_mutex_unlock(&a->rs.mtx);
    return FR_ENOMEM;
}

fr_err
fri_agg_grow_items(fri_agg *a, uint32_t n_items, char *err, size_t err_cap)
{
    if (a == NULL) {
        return FR_EINVAL;
    }
    if (a->cfg.edge) {
        fri_agg_seterr(err, err_cap,
            "an edge's catalog follows its root's: grow the root");
        return FR_ESTATE;
    }
    pthread_mutex_lock(&a->rs.mtx);
    uint32_t cur  = fri_agg_n_items(a);
    uint32_t want = a->catalog.grow_to > cur ? a->catalog.grow_to : cur;
    fr_err   rv   = FR_OK;
    if (n_items < want) {
        fri_agg_seterr(err, err_cap,
            "the catalog only grows: it has %u items%s, %u asked", want,
            want > cur ? " (pending)" : "", n_items);
        rv = FR_EINVAL;
    } else if (n_items > FRI_AGG_MAX_ITEMS) {
        fri_agg_seterr(err, err_cap, "items must be at most %u (got %u)",
            (unsigned) FRI_AGG_MAX_ITEMS, n_items);
        rv = FR_EINVAL;
    } else if (n_items > want) {
        a->catalog.grow_to = n_items;
    }
    pthread_mutex_unlock(&a->rs.mtx);
    if (rv == FR_OK && n_items > want) {
        fri_agg_log(a, FR_LOG_INFO,
                    "msg=\"catalog growth asked; applied after the next "
                    "completed round\" items=%u new_items=%u",
                    cur, n_items);
    }
    return rv;
}

fr_err
fri_agg_set_item_features(fri_agg *a, const float *F, uint32_t n_features,
                          uint32_t rows, char *err, size_t err_cap)
{
    if (a == NULL) {
        return FR_EINVAL;
    }
    if (a->vb == NULL) {
        fri_agg_seterr(err, err_cap, "item features need algo vbmf");
        return FR_EINVAL;
    }
    if (rows > FRI_AGG_MAX_ITEMS || !fri_vb_features_ok(F, n_features, rows)) {
        fri_agg_seterr(err, err_cap, "item features: 1..%u finite values per "
                       "item and at most %u items", FRI_AGG_MAX_FEATURES,
                       FRI_AGG_MAX_ITEMS);
        return FR_EINVAL;
    }
    float *c = malloc(((size_t) rows * n_features + 1) * sizeof(float));
    if (c == NULL) {
        fri_agg_seterr(err, err_cap, "out of memory");
        return FR_ENOMEM;
    }
    memcpy(c, F, (size_t) rows * n_features * sizeof(float));
    pthread_mutex_lock(&a->rs.mtx);
    float *old        = a->catalog.feat_next;
    a->catalog.feat_next      = c;
    a->catalog.feat_next_g    = n_features;
    a->catalog.feat_next_rows = rows;
    pthread_mutex_unlock(&a->rs.mtx);
    free(old);
    return FR_OK;
}

fr_err
fri_agg_take_item_features(fri_agg *a)
{
    pthread_mutex_lock(&a->rs.mtx);
    float   *F = a->catalog.feat_next;
    uint32_t g = a->catalog.feat_next_g, rows = a->catalog.feat_next_rows;
    a->catalog.feat_next = NULL;
    pthread_mutex_unlock(&a->rs.mtx);
    if (F == NULL || a->vb == NULL) {
        free(F);
        return FR_OK;
    }
    // The prior's regression starts over from the served model's items.
    fr_err rv = fri_vb_set_features(a->vb, F, g, rows);
    if (rv == FR_OK) {
        rv = fri_vb_refit_features(a->vb, a->model.Q, a->model.bi,
                                   a->cfg.n_items);
    }
    free(F);
    if (rv == FR_OK) {
        fri_agg_log(a, FR_LOG_INFO,
                    "msg=\"item features replaced\" features=%u rows=%u",
                    g, rows);
    }
    return rv;
}

uint32_t
fri_agg_grow_pending(fri_agg *a)
{
    pthread_mutex_lock(&a->rs.mtx);
    uint32_t n = a->catalog.grow_to;
    pthread_mutex_unlock(&a->rs.mtx);
    return n > a->cfg.n_items ? n : 0;
}
