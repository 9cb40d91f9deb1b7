// Poisoning attacks by malicious devices and the target item's exposure
// (poison.h).
#include "poison.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../aggregator/agg.h"
#include "../aggregator/bounds.h"
#include "client_fit.h"
#include "client_internal.h"
#include "linalg.h"
#include "rng.h"
#include "sim.h"

// What "absurd" sends: finite, far beyond anything a rating produces.
#define ABSURD 1e30f

// ---- options ---------------------------------------------------------------

void
fri_sim_poison_init(fri_sim_poison *p)
{
    memset(p, 0, sizeof(*p));
    p->malicious   = 0.01;
    p->target_item = -1;
    p->scale       = 10.0f;
    p->robust      = 1;
}

void
fri_sim_poison_stats_init(fri_sim_poison_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->target_er5  = NAN;
    s->target_hr10 = NAN;
}

static const char poison_usage[]
    = "Poisoning (docs/BENCHMARKS.md, robust aggregation):\n"
      "  --attack scale|signflip|random|absurd|promote\n"
      "                        malicious devices tamper with their updates:\n"
      "                        scaled, sign-flipped or random rows, absurd\n"
      "                        (1e30) values, or promotion of --target-item\n"
      "                        with crafted user vectors (FedRecAttack /\n"
      "                        PipAttack style); explicit ratings, no\n"
      "                        secure aggregation\n"
      "  --malicious F         fraction of devices that are malicious,\n"
      "                        0..0.5 (default 0.01 with --attack)\n"
      "  --target-item I       item to promote; also measured without an\n"
      "                        attack: target_er5 / target_hr10 = share of\n"
      "                        honest evaluating devices that did not rate\n"
      "                        it with it in their top 5 / top 10\n"
      "  --attack-scale S      attack strength (default 10)\n"
      "  --robust on|off       the aggregator's robust bounds (default on)\n"
      "\n";

const char *
fri_sim_poison_usage(void)
{
    return poison_usage;
}

static fr_err
bad(char *err, size_t cap, const char *flag, const char *val, const char *what)
{
    if (cap > 0) {
        snprintf(err, cap, "%s: invalid value '%s' (%s)", flag, val ? val : "",
            what);
    }
    return FR_EINVAL;
}

static int
parse_num(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    errno    = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo
        || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

int
fri_sim_poison_flag(fri_sim_poison *p, const char *flag, const char *val,
    fr_err *rv, char *err, size_t err_cap)
{
    static const char *const kinds[]
        = { NULL, "scale", "signflip", "random", "absurd", "promote" };
    double v = 0.0;
    *rv      = FR_OK;
    if (strcmp(flag, "--attack") == 0) {
        for (int i = 1; i <= FRI_SIM_POISON_PROMOTE; i++) {
            if (strcmp(val, kinds[i]) == 0) {
                p->kind = i;
                return 1;
            }
        }
        return 0; // a privacy attack, or an error reported there
    } else if (strcmp(flag, "--malicious") == 0) {
        if (parse_num(val, 0.0, 0.5, &v) != 0) {
            *rv = bad(err, err_cap, flag, val, "0..0.5");
        } else {
            p->malicious     = v;
            p->malicious_set = 1;
        }
    } else if (strcmp(flag, "--target-item") == 0) {
        char *end            = NULL;
        errno                = 0;
        unsigned long long t = strtoull(val, &end, 10);
        if (*val < '0' || *val > '9' || errno != 0 || *end != '\0'
            || t >= (1ull << 24)) {
            *rv = bad(err, err_cap, flag, val, "item index 0..16777215");
        } else {
            p->target_item = (int64_t)t;
        }
    } else if (strcmp(flag, "--attack-scale") == 0) {
        if (parse_num(val, 1e-3, 1e6, &v) != 0) {
            *rv = bad(err, err_cap, flag, val, "0.001..1e6");
        } else {
            p->scale = (float)v;
        }
    } else if (strcmp(flag, "--robust") == 0) {
        if (strcmp(val, "on") == 0 || strcmp(val, "off") == 0) {
            p->robust = strcmp(val, "on") == 0;
        } else {
            *rv = bad(err, err_cap, flag, val, "on|off");
        }
    } else {
        return 0;
    }
    return 1;
}

fr_err
fri_sim_poison_check(const fri_sim_config *c, char *err, size_t err_cap)
{
    const fri_sim_poison *p   = &c->poison;
    const char           *why = NULL;
    if (p->malicious_set && p->kind == FRI_SIM_POISON_NONE) {
        why = "--malicious needs --attack scale|signflip|random|absurd|"
              "promote";
    } else if (p->kind == FRI_SIM_POISON_PROMOTE && p->target_item < 0) {
        why = "--attack promote needs --target-item";
    } else if ((p->kind != FRI_SIM_POISON_NONE || p->target_item >= 0)
        && c->implicit) {
        why = "--attack (poisoning) and --target-item need explicit ratings";
    } else if (p->kind != FRI_SIM_POISON_NONE && c->priv.secagg) {
        why = "poisoning attacks need plain updates (no --secure-agg)";
    }
    if (why != NULL) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s", why);
        }
        return FR_EINVAL;
    }
    return FR_OK;
}

static void
jnum(FILE *f, const char *key, double v)
{
    if (isfinite(v)) {
        fprintf(f, ",\"%s\":%.6g", key, v);
    } else {
        fprintf(f, ",\"%s\":null", key);
    }
}

void
fri_sim_poison_json(
    FILE *f, const fri_sim_poison *p, const fri_sim_poison_stats *s)
{
    static const char *const kinds[]
        = { "none", "scale", "signflip", "random", "absurd", "promote" };
    fprintf(f, ",\"robust\":%s", p->robust ? "true" : "false");
    if (p->kind != FRI_SIM_POISON_NONE) {
        fprintf(f, ",\"poison\":\"%s\"", kinds[p->kind % 6]);
        jnum(f, "malicious", p->malicious);
        jnum(f, "attack_scale", p->scale);
        fprintf(f,
            ",\"malicious_devices\":%llu,\"poisoned_updates\":%llu,"
            "\"refused_updates\":%llu",
            (unsigned long long)s->malicious, (unsigned long long)s->poisoned,
            (unsigned long long)s->refused);
    }
    if (p->target_item >= 0) {
        fprintf(f, ",\"target_item\":%lld", (long long)p->target_item);
        jnum(f, "target_er5", s->target_er5);
        jnum(f, "target_hr10", s->target_hr10);
        fprintf(f, ",\"target_users\":%llu,\"target_ratings\":%llu",
            (unsigned long long)s->target_users,
            (unsigned long long)s->target_ratings);
    }
}

// ---- the run ---------------------------------------------------------------

static int rated(const fri_sim_pop *p, uint32_t u, uint32_t t);

struct fri_sim_poison_run {
    const fri_sim_config *c;
    const fri_sim_pop    *p;
    fri_agg              *agg;
    uint8_t              *bad; // per user: malicious
    pthread_mutex_t       mtx;
    fri_sim_poison_stats  st;
    uint64_t              hits5, hits10;
};

fr_err
fri_sim_poison_create(fri_sim_poison_run **out, const fri_sim_config *c,
    const fri_sim_pop *p, fri_agg *agg, char *err, size_t err_cap)
{
    *out                    = NULL;
    const fri_sim_poison *o = &c->poison;
    if (o->kind == FRI_SIM_POISON_NONE && o->target_item < 0) {
        return FR_OK;
    }
    if (o->target_item >= (int64_t)p->n_items) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "--target-item %lld: the data has %u items",
                (long long)o->target_item, p->n_items);
        }
        return FR_EINVAL;
    }
    fri_sim_poison_run *r    = calloc(1, sizeof(*r));
    uint32_t           *elig = malloc(sizeof(uint32_t) * (p->n_users + 1));
    if (r == NULL || elig == NULL
        || (r->bad = calloc(p->n_users + 1, 1)) == NULL) {
        free(elig);
        if (r != NULL) {
            free(r->bad);
        }
        free(r);
        return FR_ENOMEM;
    }
    r->c   = c;
    r->p   = p;
    r->agg = agg;
    pthread_mutex_init(&r->mtx, NULL);
    fri_sim_poison_stats_init(&r->st);
    // A seeded round(F n) of the devices with ratings: partial
    // Fisher-Yates.
    size_t n = 0;
    for (uint32_t u = 0; u < p->n_users; u++) {
        if (p->train.ptr[u + 1] > p->train.ptr[u]) {
            elig[n++] = u;
        }
    }
    size_t  m = o->kind == FRI_SIM_POISON_NONE
         ? 0
         : (size_t)floor(o->malicious * (double)n + 0.5);
    fri_rng rng;
    fri_rng_seed2(&rng, c->seed, 0xbad0);
    for (size_t i = 0; i < m && i < n; i++) {
        size_t   j      = i + fri_rng_below(&rng, (uint32_t)(n - i));
        uint32_t t      = elig[i];
        elig[i]         = elig[j];
        elig[j]         = t;
        r->bad[elig[i]] = 1;
    }
    r->st.malicious = m;
    free(elig);
    for (uint32_t u = 0; o->target_item >= 0 && u < p->n_users; u++) {
        r->st.target_ratings
            += (uint64_t)rated(p, u, (uint32_t)o->target_item);
    }
    *out = r;
    return FR_OK;
}

void
fri_sim_poison_destroy(fri_sim_poison_run *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_destroy(&r->mtx);
    free(r->bad);
    free(r);
}

void
fri_sim_poison_summary(const fri_sim_poison_run *r, fri_sim_summary *s)
{
    fri_sim_poison_stats_init(&s->poison);
    if (r == NULL) {
        return;
    }
    s->poison = r->st;
    if (r->c->poison.target_item >= 0 && r->st.target_users > 0) {
        s->poison.target_er5  = (double)r->hits5 / (double)r->st.target_users;
        s->poison.target_hr10 = (double)r->hits10 / (double)r->st.target_users;
    }
}

// Whether user u rated item t in training.
static int
rated(const fri_sim_pop *p, uint32_t u, uint32_t t)
{
    size_t lo = p->train.ptr[u], hi = p->train.ptr[u + 1];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->train.idx[mid] < t) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < p->train.ptr[u + 1] && p->train.idx[lo] == t;
}

// The target's rank among an honest device's recommendations.
static void
measure(fri_sim_poison_run *r, fr_client *c, uint32_t u)
{
    uint32_t t = (uint32_t)r->c->poison.target_item;
    if (rated(r->p, u, t)) {
        return;
    }
    uint32_t top[10];
    float    sc[10];
    size_t   n = 0;
    if (fr_client_recommend(c, top, sc, 10, &n) != FR_OK) {
        return;
    }
    int pos = -1;
    for (size_t i = 0; i < n; i++) {
        if (top[i] == t) {
            pos = (int)i;
        }
    }
    pthread_mutex_lock(&r->mtx);
    r->st.target_users++;
    r->hits5 += pos >= 0 && pos < 5;
    r->hits10 += pos >= 0;
    pthread_mutex_unlock(&r->mtx);
}

// The honest update the client just computed, recomputed (the client
// frees its copy once sealed; the fit is deterministic).
static fr_err
honest_update(const fri_sim_config *c, fr_client *cl, fri_update_buf *ub)
{
    fri_fit_task ft;
    memset(&ft, 0, sizeof(ft));
    ft.algo         = c->algo == FRI_SIM_VBMF ? FRI_FIT_VBMF
                : c->algo == FRI_SIM_ALS      ? FRI_FIT_ALS
                                              : FRI_FIT_GRAD;
    ft.k            = c->k;
    ft.reg          = c->reg;
    ft.reg_bias     = c->reg_bias;
    ft.alpha        = c->alpha;
    ft.clip         = c->priv.clip;
    ft.lr           = c->lr;
    ft.local_epochs = 1;
    ft.weighted     = (uint32_t)c->weighted;
    return fri_client_compute_update(cl, &ft, ub);
}

// The largest |residual| the aggregator accepts (bounds.h, with the
// data's rating range as fedrec-sim configures it), with a margin for
// float rounding. Malicious devices that know the public bounds stay
// inside them.
static double
residual_cap(const fri_sim_pop *p)
{
    fri_agg_config ac;
    fri_agg_config_init(&ac);
    if (p->min_rating < p->max_rating) {
        ac.rating_min = p->min_rating;
        ac.rating_max = p->max_rating;
    }
    fri_bounds b;
    fri_bounds_of(&ac, &b);
    return 0.99 * b.residual;
}

// Explicit ALS/VBMF rows are x * r_j (times the clip scale) with x[k] = 1,
// and the Gram's (k, k) entry is that scale: rescales each row whose
// residual exceeds the cap down to it.
static void
cap_residuals(fri_update_buf *ub, uint32_t k, double cap)
{
    const uint32_t d  = ub->width;
    double         gk = ub->extra[fri_packed_index(d, k, k)];
    if (!(gk > 0.0)) {
        return;
    }
    for (uint32_t j = 0; j < ub->n_rows; j++) {
        float *row = ub->rows + (size_t)j * d;
        double r   = fabs(row[k] / gk);
        if (r > cap) {
            for (uint32_t a = 0; a < d; a++) {
                row[a] = (float)(row[a] * (cap / r));
            }
        }
    }
}

// Promotion: one crafted row for the target (see poison.h).
static fr_err
craft_promote(const fri_sim_config *c, const fri_sim_pop *pop,
    const fr_client *cl, fri_update_buf *ub)
{
    const fri_cmodel *m = cl->model;
    const uint32_t    k = m->k, d = k + 1;
    const uint32_t    t = (uint32_t)c->poison.target_item;
    size_t            P = fri_packed_len(d);
    if (t >= m->n_items || cl->p == NULL) {
        return FR_EINVAL;
    }
    // Direction most users like: the mean factor of the items with the
    // largest biases, at a tenth of the device's own user-vector norm:
    // the push goes mostly into the target's bias, which raises its score
    // for every user (a large p would also swing q_t along p, lowering it
    // for users on the other side).
    uint32_t n_top = m->n_items / 20 + 1;
    if (n_top > 50) {
        n_top = 50;
    }
    uint32_t *top = calloc(n_top, sizeof(uint32_t));
    double    p[FRI_MF_MAX_K];
    if (top == NULL) {
        return FR_ENOMEM;
    }
    uint32_t have = 0;
    for (uint32_t i = 0; i < m->n_items; i++) {
        uint32_t pos = have < n_top ? have++ : n_top;
        while (pos > 0 && m->bi[top[pos - 1]] < m->bi[i]) {
            if (pos < n_top) {
                top[pos] = top[pos - 1];
            }
            pos--;
        }
        if (pos < n_top) {
            top[pos] = i;
        }
    }
    double nrm = 0.0, own = 0.0;
    for (uint32_t f = 0; f < k; f++) {
        p[f] = 0.0;
        for (uint32_t j = 0; j < have; j++) {
            p[f] += m->Q[(size_t)top[j] * k + f];
        }
        nrm += p[f] * p[f];
        own += (double)cl->p[f] * cl->p[f];
    }
    free(top);
    nrm = sqrt(nrm);
    own = own > 1e-6 ? sqrt(own) : 1.0;
    for (uint32_t f = 0; f < k; f++) {
        p[f] = nrm > 0.0 ? p[f] / nrm * own * 0.1 : 0.0;
    }
    const double S    = c->poison.scale;
    const double rmax = pop->max_rating;
    double       s0   = rmax - m->mu;
    if (s0 < 0.5) {
        s0 = 0.5;
    }
    // The boosted residual stays inside the aggregator's public bound
    // (bounds.h): an attacker that exceeds it is simply refused.
    double es = S * s0 < residual_cap(pop) ? S * s0 : residual_cap(pop);
    // Keep the honest buffer's extra length (its layout is the
    // algorithm's); one row.
    ub->n_rows   = 1;
    ub->items[0] = t;
    float *row   = ub->rows;
    memset(ub->extra, 0, ub->n_extra * sizeof(float));
    if (c->algo == FRI_SIM_GRAD) {
        // Loss gradient of rating rmax with the residual boosted S times.
        double pred = m->mu + m->bi[t];
        for (uint32_t f = 0; f < k; f++) {
            pred += p[f] * m->Q[(size_t)t * k + f];
        }
        double e = S * (rmax - pred > 0.5 ? rmax - pred : 0.5);
        for (uint32_t f = 0; f < k; f++) {
            row[f] = (float)(-e * p[f]);
        }
        row[k] = (float)-e;
    } else {
        // x = [p; 1], Gram x x^T, row x s.
        double x[FRI_MF_MAX_K + 1];
        for (uint32_t f = 0; f < k; f++) {
            x[f] = p[f];
        }
        x[k] = 1.0;
        for (uint32_t a = 0; a < d; a++) {
            row[a] = (float)(x[a] * es);
            for (uint32_t b = a; b < d; b++) {
                ub->extra[fri_packed_index(d, a, b)] = (float)(x[a] * x[b]);
            }
        }
        if (c->algo == FRI_SIM_VBMF) {
            // Global block: E[u] = [p; 0], E[u u^T], squared error, 1.
            float *g = ub->extra + P;
            for (uint32_t a = 0; a < k; a++) {
                g[a] = (float)p[a];
                for (uint32_t b = a; b < k; b++) {
                    g[d + fri_packed_index(d, a, b)] = (float)(p[a] * p[b]);
                }
            }
            g[d + P]     = (float)(es * es);
            g[d + P + 1] = 1.0f;
        }
    }
    ub->extra[ub->n_extra - 2] = (float)rmax;
    ub->extra[ub->n_extra - 1] = 1.0f;
    ub->weight                 = 1.0f;
    return FR_OK;
}

// Untargeted tampering of the honest update. Explicit ALS/VBMF attacks
// keep the form the aggregator's hard bounds check (rows x * r_j with
// |r_j| under the public cap): what they change is within those bounds,
// which is the case the robust bounds exist for.
static void
tamper(const fri_sim_config *c, const fri_sim_pop *p, uint32_t u,
    uint64_t round, fri_update_buf *ub)
{
    const double S  = c->poison.scale;
    size_t       nr = (size_t)ub->n_rows * ub->width;
    const int    xr = c->algo != FRI_SIM_GRAD && !c->implicit;
    const uint32_t k = ub->width - 1;
    switch (c->poison.kind) {
    case FRI_SIM_POISON_SCALE:
        for (size_t i = 0; i < nr; i++) {
            ub->rows[i] = (float)(ub->rows[i] * S);
        }
        for (size_t i = 0; i < ub->n_extra; i++) {
            ub->extra[i] = (float)(ub->extra[i] * S);
        }
        ub->weight = (float)(ub->weight * S);
        break;
    case FRI_SIM_POISON_SIGNFLIP:
        for (size_t i = 0; i < nr; i++) {
            ub->rows[i] = (float)(ub->rows[i] * -S);
        }
        if (xr) {
            cap_residuals(ub, k, residual_cap(p));
        }
        break;
    case FRI_SIM_POISON_RANDOM: {
        fri_rng rng;
        fri_rng_seed2(&rng, c->seed ^ 0x7a4d0000ull, (round << 32) ^ u);
        if (xr) {
            // Random residuals (fake ratings) with S times the honest
            // residuals' RMS, on the device's own x.
            const uint32_t d  = ub->width;
            double         gk = ub->extra[fri_packed_index(d, k, k)];
            double         r2 = 0.0;
            for (uint32_t j = 0; j < ub->n_rows && gk > 0.0; j++) {
                double r = ub->rows[(size_t)j * d + k] / gk;
                r2 += r * r;
            }
            double sd = ub->n_rows > 0 ? S * sqrt(r2 / ub->n_rows) : 0.0;
            for (uint32_t j = 0; j < ub->n_rows && gk > 0.0; j++) {
                float *row = ub->rows + (size_t)j * d;
                double rn  = fri_rng_normal(&rng) * sd;
                for (uint32_t a = 0; a < d; a++) {
                    // s x_a is the Gram's (a, k) entry (x_k = 1).
                    size_t ak = a <= k ? fri_packed_index(d, a, k)
                                       : fri_packed_index(d, k, a);
                    row[a] = (float)(ub->extra[ak] * rn);
                }
            }
            cap_residuals(ub, k, residual_cap(p));
            break;
        }
        for (uint32_t j = 0; j < ub->n_rows; j++) {
            float *row = ub->rows + (size_t)j * ub->width;
            double n2  = 0.0;
            for (uint32_t a = 0; a < ub->width; a++) {
                n2 += (double)row[a] * row[a];
            }
            double sd = S * sqrt(n2 / ub->width);
            for (uint32_t a = 0; a < ub->width; a++) {
                row[a] = (float)(fri_rng_normal(&rng) * sd);
            }
        }
        break;
    }
    case FRI_SIM_POISON_ABSURD:
        // Everything but the rating count (kept, so that the rating sum
        // drags the global mean to ~1e30 / ratings).
        for (size_t i = 0; i < nr; i++) {
            ub->rows[i] = ABSURD;
        }
        for (size_t i = 0; i + 1 < ub->n_extra; i++) {
            ub->extra[i] = ABSURD;
        }
        ub->weight = ABSURD;
        break;
    default:
        break;
    }
}

// Submits ub as device cl's update of the aggregator's round: what the
// wire decoder hands to fri_agg_submit (handle.c).
static fr_err
submit_buf(const fri_sim_config *c, fri_agg *agg, fr_client *cl,
    const fri_update_buf *ub, uint64_t round, uint64_t now_ms)
{
    const uint32_t d  = ub->width;
    size_t         gl = c->algo == FRI_SIM_GRAD ? 0 : fri_packed_len(d);
    fri_agg_update au;
    memset(&au, 0, sizeof(au));
    au.round    = round;
    au.n        = ub->n_rows;
    au.items    = ub->items;
    au.rows     = ub->rows;
    au.rows_len = (size_t)ub->n_rows * d;
    au.weight   = ub->weight;
    if (gl > 0) {
        au.gram     = ub->extra;
        au.gram_len = gl;
    }
    if (c->algo == FRI_SIM_VBMF) {
        au.vb     = ub->extra + gl;
        au.vb_len = ub->n_extra - gl - 2;
    }
    au.sum_ratings = ub->extra[ub->n_extra - 2];
    au.count       = ub->extra[ub->n_extra - 1];
    uint8_t pk[FR_PUBLICKEYBYTES];
    fr_client_public_key(cl, pk);
    return fri_agg_submit(agg, now_ms, pk, &au);
}

fr_err
fri_sim_device_rewrite(const fri_sim_config *c, struct fri_agg *agg,
    fr_client *cl, uint32_t u, uint32_t round, uint64_t now_ms,
    const fri_sim_dev_hook *chain, size_t n, int *accepted)
{
    *accepted = 0;
    if (cl->model == NULL) {
        return FR_ESTATE;
    }
    fri_agg_metrics am;
    fri_agg_metrics_get(agg, &am);
    fri_update_buf ub;
    fr_err         e    = honest_update(c, cl, &ub);
    int            send = e == FR_OK;
    for (size_t h = 0; h < n && send; h++) {
        if (chain[h].fn == NULL) {
            continue;
        }
        int rv = chain[h].fn(chain[h].ctx, round, u, cl, &ub);
        if (rv == FRI_SIM_HOOK_WITHHOLD) {
            send = 0;
        } else if (rv != 0) {
            send = 0;
            e    = FR_EINTERNAL; // stop the run: nothing is sent
        }
    }
    if (send) {
        *accepted = submit_buf(c, agg, cl, &ub, am.round, now_ms) == FR_OK;
    }
    fri_update_buf_free(cl, &ub); // zeroed when the fit failed
    return e;
}

int
fri_sim_poison_malicious(const fri_sim_poison_run *r, uint32_t u)
{
    return r != NULL && r->bad[u];
}

int
fri_sim_poison_hook(void *ctx, uint32_t round, uint32_t u, fr_client *cl,
    fri_update_buf *ub)
{
    (void)round; // the attacks key their draws on the aggregator's round
    fri_sim_poison_run *r = ctx;
    if (!r->bad[u]) {
        return 0;
    }
    const fri_sim_config *c = r->c;
    if (c->poison.kind == FRI_SIM_POISON_PROMOTE) {
        if (ub->n_rows == 0 || craft_promote(c, r->p, cl, ub) != FR_OK) {
            return FRI_SIM_HOOK_WITHHOLD; // no row to overwrite
        }
    } else {
        fri_agg_metrics am;
        fri_agg_metrics_get(r->agg, &am);
        tamper(c, r->p, u, am.round, ub);
    }
    return 0;
}

void
fri_sim_poison_count(fri_sim_poison_run *r, int accepted)
{
    pthread_mutex_lock(&r->mtx);
    if (accepted) {
        r->st.poisoned++;
    } else {
        r->st.refused++;
    }
    pthread_mutex_unlock(&r->mtx);
}

void
fri_sim_poison_measure(fri_sim_poison_run *r, fr_client *cl, uint32_t u,
    int evaluate)
{
    if (r != NULL && evaluate && !r->bad[u] && r->c->poison.target_item >= 0) {
        measure(r, cl, u);
    }
}
