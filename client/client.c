// Handle lifecycle, allocation, errors and the interaction store.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bayes.h"
#include "client_internal.h"
#include "keys.h"
#include "mf.h"
#include "msg_secagg.h"
#include "recency.h"

// ---- allocation ----------------------------------------------------------

void *
fri_client_alloc(fr_client *c, size_t size)
{
    if (size == 0) {
        size = 1;
    }
    if (c->alloc.alloc != NULL) {
        return c->alloc.alloc(c->alloc.ctx, size);
    }
    return malloc(size);
}

void *
fri_client_calloc(fr_client *c, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = fri_client_alloc(c, n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

void *
fri_client_calloc2(fr_client *c, size_t a, size_t b, size_t size)
{
    if (b != 0 && a > SIZE_MAX / b) {
        return NULL;
    }
    return fri_client_calloc(c, a * b, size);
}

void
fri_client_free(fr_client *c, void *p)
{
    if (p == NULL) {
        return;
    }
    if (c->alloc.free != NULL) {
        c->alloc.free(c->alloc.ctx, p);
    } else {
        free(p);
    }
}

void
fri_client_free_wipe(fr_client *c, void *p, size_t len)
{
    if (p == NULL) {
        return;
    }
    sodium_memzero(p, len);
    fri_client_free(c, p);
}

// ---- errors and logging --------------------------------------------------

fr_err
fri_client_fail(fr_client *c, fr_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    if (c->log != NULL && c->log_level >= FR_LOG_ERROR) {
        c->log(c->log_ctx, FR_LOG_ERROR, c->errmsg);
    }
    return err;
}

void
fri_client_logf(fr_client *c, fr_log_level lvl, const char *fmt, ...)
{
    if (c->log == NULL || lvl > c->log_level) {
        return;
    }
    char    msg[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->log(c->log_ctx, lvl, msg);
}

const char *
fr_client_errmsg(const fr_client *c)
{
    if (c == NULL) {
        return "no client";
    }
    return c->errmsg[0] != '\0' ? c->errmsg : "no error";
}

// ---- lifecycle -----------------------------------------------------------

void
fri_fit_params_default(fri_fit_params *fp)
{
    // The tuned explicit ALS defaults (fri_train_config_init); replaced by
    // the hyperparameters of every task received.
    fri_train_config tc;
    fri_train_config_init(&tc, FRI_TRAIN_ALS);
    fp->reg      = tc.reg;
    fp->reg_bias = tc.reg_bias;
    fp->alpha    = tc.alpha;
    fp->weighted = (uint32_t) tc.weighted;
    fp->implicit = 0;
}

static void
config_log(const fr_client_config *cfg, const char *msg)
{
    if (cfg->log != NULL && cfg->log_level >= FR_LOG_ERROR) {
        cfg->log(cfg->log_ctx, FR_LOG_ERROR, msg);
    }
}

static void
config_defaults(fr_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size    = sizeof *cfg;
    cfg->max_items      = 1u << 24;
    cfg->max_k          = 256;
    cfg->log_level      = FR_LOG_WARN;
    cfg->max_sa_members = FRI_SA_MAX_MEMBERS;
    cfg->recency_half_life = FRI_RECENCY_DEFAULT;
    cfg->svdpp_weight      = FRI_SVDPP_DEFAULT;
    cfg->transition_weight = FRI_TRANSITION_DEFAULT;
}

void
fr_client_config_init_size(fr_client_config *cfg, size_t size)
{
    if (cfg == NULL || size < sizeof cfg->struct_size) {
        return;
    }
    // Writes only the size bytes the caller's struct has: an application
    // built against an older, smaller header must not have the bytes past
    // its struct overwritten.
    fr_client_config def;
    config_defaults(&def);
    size_t n = size < sizeof def ? size : sizeof def;
    memcpy(cfg, &def, n);
    if (size > n) {
        // A newer header: zero what this library does not know;
        // fr_client_create refuses the config (FR_EVERSION).
        memset((uint8_t *) cfg + n, 0, size - n);
    }
    cfg->struct_size = size;
}

// Copies the caller's config (of whatever known layout) over the defaults
// into *full. The reason for a refusal goes to the caller's log hook, the
// only channel before a handle exists.
static fr_err
config_import(fr_client_config *full, const fr_client_config *cfg)
{
    size_t size = cfg->struct_size;
    size_t n    = 0;
    if (size == sizeof *full) {
        n = sizeof *full;
    } else if (size == FRI_CLIENT_CONFIG_V1_SIZE) {
        n = FRI_CLIENT_CONFIG_V1_END;
    } else if (size == FRI_CLIENT_CONFIG_V2_SIZE) {
        n = FRI_CLIENT_CONFIG_V2_END;
    } else if (size == FRI_CLIENT_CONFIG_V3_SIZE) {
        n = FRI_CLIENT_CONFIG_V3_END;
    } else if (size == FRI_CLIENT_CONFIG_V4_SIZE) {
        n = FRI_CLIENT_CONFIG_V4_END;
    } else if (size > sizeof *full) {
        config_log(cfg, "fr_client_config from a newer fedrec header "
                        "(struct_size larger than this library's)");
        return FR_EVERSION;
    } else {
        // Not a layout this library made: even cfg->log may lie past the
        // caller's struct, so nothing more is read.
        return FR_EINVAL;
    }
    config_defaults(full);
    memcpy(full, cfg, n);
    full->struct_size = sizeof *full;
    return FR_OK;
}

fr_err
fri_client_derive_public(fr_client *c)
{
    fri_identity id;
    fr_err       err = fri_identity_from_seed(&id, c->identity_seed);
    if (err == FR_OK) {
        memcpy(c->public_key, id.kx_pk, 32);
        memcpy(c->public_key + 32, id.sign_pk, 32);
    }
    fri_identity_wipe(&id);
    return err;
}

// fr_client_create on a config of the current layout.
static fr_err
create(fr_client **out, const fr_client_config *cfg)
{
    fr_err err = FR_OK;
    if (cfg->max_k == 0 || cfg->max_items == 0 ||
        (cfg->allocator.alloc == NULL) != (cfg->allocator.free == NULL) ||
        !(cfg->pseudo_items_rho >= 0.0f && cfg->pseudo_items_rho <= 100.0f) ||
        cfg->pseudo_fill < 0 || cfg->pseudo_fill > 2 ||
        cfg->max_sa_members < 2 ||
        cfg->max_sa_members > FRI_SA_MAX_MEMBERS ||
        !(cfg->recency_half_life >= 0.0 &&
          cfg->recency_half_life <= FRI_RECENCY_MAX) ||
        (cfg->verify_adverts != 0 && cfg->verify_adverts != 1) ||
        !(cfg->svdpp_weight >= 0.0 && cfg->svdpp_weight <= FRI_SVDPP_MAX) ||
        !(cfg->transition_weight >= 0.0 &&
          cfg->transition_weight <= FRI_TRANSITION_MAX)) {
        config_log(cfg, "fr_client_config: a field is out of range");
        return FR_EINVAL;
    }
    if (cfg->state_path != NULL &&
        sodium_is_zero(cfg->state_key, sizeof cfg->state_key)) {
        // What fr_client_config_init leaves: the state (identity seed,
        // interactions) would be sealed under a key everyone knows.
        config_log(cfg, "fr_client_config: state_path needs a secret "
                        "state_key; the all-zero key is refused");
        return FR_EINVAL;
    }
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    fr_client tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.alloc = cfg->allocator;
    fr_client *c = fri_client_alloc(&tmp, sizeof *c);
    if (c == NULL) {
        return FR_ENOMEM;
    }
    memset(c, 0, sizeof *c);
    c->alloc     = cfg->allocator;
    c->log       = cfg->log;
    c->log_ctx   = cfg->log_ctx;
    c->log_level = cfg->log_level;
    c->max_items = cfg->max_items;
    c->max_k     = cfg->max_k > FRI_MF_MAX_K ? FRI_MF_MAX_K : cfg->max_k;
    c->max_sa_members = cfg->max_sa_members;
    c->recency_hl  = (float) cfg->recency_half_life;
    c->verify_adverts = cfg->verify_adverts;
    c->svdpp          = (float) cfg->svdpp_weight;
    c->trans_w        = (float) cfg->transition_weight;
    c->pseudo_rho  = cfg->pseudo_items_rho;
    c->pseudo_fill = cfg->pseudo_fill;
    memcpy(c->server_pk, cfg->server_pk, sizeof c->server_pk);
    memcpy(c->state_key, cfg->state_key, sizeof c->state_key);
    fri_fit_params_default(&c->fit);
    uint64_t seed = cfg->seed;
    if (seed == 0) {
        randombytes_buf(&seed, sizeof seed);
    }
    fri_rng_seed(&c->rng, seed);
    if (cfg->model_cache != NULL) {
        c->cache = cfg->model_cache;
    } else {
        err = fr_model_cache_create(&c->cache);
        if (err != FR_OK) {
            fri_client_free(c, c);
            return err;
        }
        c->own_cache = 1;
    }
    if (cfg->state_path != NULL) {
        size_t len    = strlen(cfg->state_path);
        c->state_path = fri_client_alloc(c, len + 1);
        if (c->state_path == NULL) {
            fr_client_destroy(c);
            return FR_ENOMEM;
        }
        memcpy(c->state_path, cfg->state_path, len + 1);
        err = fri_state_load(c, c->state_path);
        if (err == FR_ENOENT) {
            err = FR_OK; // first run: no state yet
        } else if (err != FR_OK) {
            fr_client_destroy(c);
            return err;
        }
    }
    if (cfg->has_identity) {
        // An explicit identity wins over the one in the state file.
        memcpy(c->identity_seed, cfg->identity_seed, FR_SEEDBYTES);
    } else if (sodium_is_zero(c->identity_seed, FR_SEEDBYTES)) {
        randombytes_buf(c->identity_seed, FR_SEEDBYTES);
    }
    err = fri_client_derive_public(c);
    if (err != FR_OK) {
        fr_client_destroy(c);
        return err;
    }
    c->errmsg[0] = '\0';
    *out         = c;
    return FR_OK;
}

fr_err
fr_client_create(fr_client **out, const fr_client_config *cfg)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (cfg == NULL) {
        return FR_EINVAL;
    }
    fr_client_config full;
    fr_err           err = config_import(&full, cfg);
    if (err == FR_OK) {
        err = create(out, &full);
    }
    sodium_memzero(&full, sizeof full); // held the state key and identity
    return err;
}

void
fr_client_destroy(fr_client *c)
{
    if (c == NULL) {
        return;
    }
    fri_session_free(c);
    fri_stats_last_free(c->last);
    fri_stats_last_free(c->pending);
    c->last    = NULL;
    c->pending = NULL;
    fri_nng_free(c);
    fri_cmodel_unref(c->model);
    c->model = NULL;
    if (c->own_cache) {
        fr_model_cache_destroy(c->cache);
    }
    fri_client_free_wipe(c, c->items, c->inter_cap * sizeof *c->items);
    fri_client_free_wipe(c, c->values, c->inter_cap * sizeof *c->values);
    fri_client_free_wipe(c, c->ts, c->inter_cap * sizeof *c->ts);
    fri_client_free_wipe(c, c->p, (size_t) c->p_k * sizeof *c->p);
    fri_client_free_wipe(c, c->trans_t, (size_t) c->p_k * sizeof *c->trans_t);
    fri_client_free_wipe(c, c->trans_scores,
                         c->trans_n * sizeof *c->trans_scores);
    if (c->state_path != NULL) {
        fri_client_free(c, c->state_path);
    }
    fr_allocator a = c->alloc;
    sodium_memzero(c, sizeof *c);
    c->alloc = a;
    fri_client_free(c, c);
}

void
fr_client_public_key(const fr_client *c, uint8_t pk[FR_PUBLICKEYBYTES])
{
    if (c == NULL || pk == NULL) {
        return;
    }
    memcpy(pk, c->public_key, FR_PUBLICKEYBYTES);
}

// ---- model in use and user vector ---------------------------------------

void
fri_client_set_model(fr_client *c, fri_cmodel *m)
{
    if (m == c->model) {
        return;
    }
    if (m != NULL) {
        fri_cmodel_ref(m);
    }
    fri_cmodel_unref(c->model);
    c->model = m;
}

fr_err
fri_client_set_k(fr_client *c, uint32_t k)
{
    if (k == c->p_k && c->p != NULL) {
        return FR_OK;
    }
    float *p = fri_client_calloc(c, k == 0 ? 1 : k, sizeof *p);
    float *t = fri_client_calloc(c, k == 0 ? 1 : k, sizeof *t);
    if (p == NULL || t == NULL) {
        fri_client_free(c, p);
        fri_client_free(c, t);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (user vector)");
    }
    fri_client_free_wipe(c, c->p, (size_t) c->p_k * sizeof *c->p);
    fri_client_free_wipe(c, c->trans_t, (size_t) c->p_k * sizeof *c->trans_t);
    c->p      = p;
    c->trans_t     = t;
    c->trans_kappa = 0.0f;
    c->trans_ready = 0;
    c->p_k    = k;
    c->bu     = 0.0f;
    c->fitted = 0;
    return FR_OK;
}

// ---- interactions --------------------------------------------------------

// Index of the first entry with item >= key.
static size_t
lower_bound(const uint32_t *items, size_t n, uint32_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (items[mid] < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static fr_err
grow(fr_client *c)
{
    size_t cap = c->inter_cap < 8 ? 8 : c->inter_cap + c->inter_cap / 2;
    if (cap > SIZE_MAX / sizeof(int64_t)) {
        return fri_client_fail(c, FR_ETOOBIG, "too many interactions");
    }
    uint32_t *items  = fri_client_alloc(c, cap * sizeof *items);
    float    *values = fri_client_alloc(c, cap * sizeof *values);
    int64_t  *ts     = fri_client_alloc(c, cap * sizeof *ts);
    if (items == NULL || values == NULL || ts == NULL) {
        fri_client_free(c, items);
        fri_client_free(c, values);
        fri_client_free(c, ts);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (interactions)");
    }
    if (c->n_inter > 0) {
        memcpy(items, c->items, c->n_inter * sizeof *items);
        memcpy(values, c->values, c->n_inter * sizeof *values);
        memcpy(ts, c->ts, c->n_inter * sizeof *ts);
    }
    fri_client_free_wipe(c, c->items, c->inter_cap * sizeof *c->items);
    fri_client_free_wipe(c, c->values, c->inter_cap * sizeof *c->values);
    fri_client_free_wipe(c, c->ts, c->inter_cap * sizeof *c->ts);
    c->items     = items;
    c->values    = values;
    c->ts        = ts;
    c->inter_cap = cap;
    return FR_OK;
}

fr_err
fr_client_add(fr_client *c, uint32_t item, float value, int64_t ts)
{
    if (c == NULL) {
        return FR_EINVAL;
    }
    if (!isfinite(value)) {
        return fri_client_fail(c, FR_EINVAL, "value for item %u is not finite",
                               (unsigned) item);
    }
    if (item >= c->max_items) {
        return fri_client_fail(c, FR_EINVAL,
                               "item %u is beyond max_items (%u)",
                               (unsigned) item, (unsigned) c->max_items);
    }
    size_t pos = lower_bound(c->items, c->n_inter, item);
    if (pos < c->n_inter && c->items[pos] == item) {
        c->values[pos] = value;
        c->ts[pos]     = ts;
        c->inter_gen++;
        return FR_OK;
    }
    if (c->n_inter == c->inter_cap) {
        fr_err err = grow(c);
        if (err != FR_OK) {
            return err;
        }
    }
    size_t tail = c->n_inter - pos;
    memmove(c->items + pos + 1, c->items + pos, tail * sizeof *c->items);
    memmove(c->values + pos + 1, c->values + pos, tail * sizeof *c->values);
    memmove(c->ts + pos + 1, c->ts + pos, tail * sizeof *c->ts);
    c->items[pos]  = item;
    c->values[pos] = value;
    c->ts[pos]     = ts;
    c->n_inter++;
    c->inter_gen++;
    return FR_OK;
}

fr_err
fr_client_remove(fr_client *c, uint32_t item)
{
    if (c == NULL) {
        return FR_EINVAL;
    }
    size_t pos = lower_bound(c->items, c->n_inter, item);
    if (pos >= c->n_inter || c->items[pos] != item) {
        return fri_client_fail(c, FR_ENOENT, "no interaction with item %u",
                               (unsigned) item);
    }
    size_t tail = c->n_inter - pos - 1;
    memmove(c->items + pos, c->items + pos + 1, tail * sizeof *c->items);
    memmove(c->values + pos, c->values + pos + 1, tail * sizeof *c->values);
    memmove(c->ts + pos, c->ts + pos + 1, tail * sizeof *c->ts);
    c->n_inter--;
    // Do not leave the removed entry's bytes behind the live prefix.
    c->items[c->n_inter]  = 0;
    c->values[c->n_inter] = 0.0f;
    c->ts[c->n_inter]     = 0;
    c->inter_gen++;
    return FR_OK;
}

size_t
fr_client_count(const fr_client *c)
{
    return c == NULL ? 0 : c->n_inter;
}

fr_err
fr_client_save(fr_client *c)
{
    if (c == NULL) {
        return FR_EINVAL;
    }
    if (c->state_path == NULL) {
        return fri_client_fail(c, FR_ESTATE, "no state_path configured");
    }
    return fri_state_save(c, c->state_path);
}
