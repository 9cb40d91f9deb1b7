// Privacy options of fedrec-sim and the aggregator-side attacks on what
// the aggregator sees (docs/PRIVACY.md threat model): plain updates through
// fri_agg_set_update_hook, masked vectors through fri_agg_set_masked_hook.
//
// (a) Rated-item inference: every reporting client of an attacked round is
//     scored (fri_atk_score_rows / fri_atk_score_masked) against its true
//     training items. Under secure aggregation the member index of a masked
//     vector is mapped to its device through the round's roster (Ed25519
//     identity keys), fetched between the driver's passes.
// (b) Rating reconstruction: the updates of the same user in two
//     consecutive rounds, with the public models those rounds published
//     (fri_atk_reconstruct), pooled over the recovered ratings. Only plain
//     updates have rows to attack; under secure aggregation it is NaN.
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../aggregator/agg.h"
#include "attack.h"
#include "secagg.h"
#include "sim.h"

// ---- options ---------------------------------------------------------------

void
fri_sim_privacy_init(fri_sim_privacy *p)
{
    memset(p, 0, sizeof(*p));
    p->dp_delta = 1e-5;
}

void
fri_sim_priv_stats_init(fri_sim_priv_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->epsilon = NAN;
    s->attack_auc = NAN;
    s->attack_precision = NAN;
    s->attack_recall = NAN;
    s->attack_prec_at_r = NAN;
    s->attack_rating_rmse = NAN;
}

static const char privacy_usage[] =
    "Privacy (docs/PRIVACY.md, docs/DP.md, docs/SECAGG.md):\n"
    "  --secure-agg off|full|plus\n"
    "                        secure aggregation of masked fixed-point dense\n"
    "                        updates (plus: SecAgg+ sparse graph); needs\n"
    "                        --algo grad with --clip > 0, explicit\n"
    "                        --algo als, or vbmf with latest statistics\n"
    "                        (dense statistics, no --clip), and a cohort\n"
    "                        >= 2. Default: plus with partial cohorts and\n"
    "                        no --algo (VBMF latest statistics, private by\n"
    "                        default; not with poisoning, --clip, --dp or\n"
    "                        --pseudo-items), off otherwise\n"
    "  --clip C              L2 bound of each client's update (0: none);\n"
    "                        with --dp on the latest statistics, the bound\n"
    "                        of each report's statistics (docs/DP.md 7)\n"
    "  --dp off|central|distributed\n"
    "                        DP-FedAvg: the aggregator noises the sum\n"
    "                        (central) or each member adds a noise share\n"
    "                        under --secure-agg (distributed); population =\n"
    "                        the simulated users; noise seeded by --seed\n"
    "                        (reproducible, hence NOT private). The default\n"
    "                        VBMF (latest statistics, partial cohorts) takes\n"
    "                        --dp central with --secure-agg off\n"
    "  --noise-multiplier Z  noise stddev in units of --clip (dp only)\n"
    "  --dp-delta D          delta of the reported epsilon (1e-5)\n"
    "  --pseudo-items RHO    each client adds RHO fake rows per real one\n"
    "  --attack items|ratings|both\n"
    "                        the aggregator's attacks on what it saw:\n"
    "                        rated-item inference over the reporting clients\n"
    "                        of every --eval-every rounds (attack_auc,\n"
    "                        attack_precision, attack_recall), rating\n"
    "                        reconstruction from two consecutive updates of\n"
    "                        the same users (attack_rating_rmse)\n"
    "\n";

const char *
fri_sim_privacy_usage(void)
{
    return privacy_usage;
}

static int
parse_num(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static fr_err
bad(char *err, size_t cap, const char *flag, const char *val,
    const char *what)
{
    if (cap > 0) {
        snprintf(err, cap, "%s: invalid value '%s' (%s)", flag,
                 val ? val : "", what);
    }
    return FR_EINVAL;
}

int
fri_sim_privacy_flag(fri_sim_privacy *p, const char *flag, const char *val,
                     fr_err *rv, char *err, size_t err_cap)
{
    double v = 0;
    *rv = FR_OK;
    if (strcmp(flag, "--secure-agg") == 0) {
        p->secagg_set = 1;
        if (strcmp(val, "off") == 0) {
            p->secagg = 0;
        } else if (strcmp(val, "full") == 0) {
            p->secagg = 1;
        } else if (strcmp(val, "plus") == 0) {
            p->secagg = 2;
        } else {
            *rv = bad(err, err_cap, flag, val, "off|full|plus");
        }
    } else if (strcmp(flag, "--clip") == 0) {
        if (parse_num(val, 0.0, 1e6, &v) != 0) {
            *rv = bad(err, err_cap, flag, val, "0..1e6");
        } else {
            p->clip = (float) v;
        }
    } else if (strcmp(flag, "--dp") == 0) {
        if (strcmp(val, "off") == 0) {
            p->dp = 0;
        } else if (strcmp(val, "central") == 0) {
            p->dp = 1;
        } else if (strcmp(val, "distributed") == 0) {
            p->dp = 2;
        } else {
            *rv = bad(err, err_cap, flag, val, "off|central|distributed");
        }
    } else if (strcmp(flag, "--noise-multiplier") == 0) {
        if (parse_num(val, 1e-9, 1e6, &v) != 0) {
            *rv = bad(err, err_cap, flag, val, "0 < Z <= 1e6");
        } else {
            p->noise_multiplier = v;
        }
    } else if (strcmp(flag, "--dp-delta") == 0) {
        if (parse_num(val, 1e-300, 0.999999, &v) != 0 || v <= 0.0) {
            *rv = bad(err, err_cap, flag, val, "0 < D < 1");
        } else {
            p->dp_delta = v;
        }
    } else if (strcmp(flag, "--pseudo-items") == 0) {
        if (parse_num(val, 0.0, 100.0, &v) != 0) {
            *rv = bad(err, err_cap, flag, val, "0..100");
        } else {
            p->pseudo_rho = (float) v;
        }
    } else if (strcmp(flag, "--attack") == 0) {
        if (strcmp(val, "items") == 0) {
            p->attack = FRI_SIM_ATTACK_ITEMS;
        } else if (strcmp(val, "ratings") == 0) {
            p->attack = FRI_SIM_ATTACK_RATINGS;
        } else if (strcmp(val, "both") == 0) {
            p->attack = FRI_SIM_ATTACK_ITEMS | FRI_SIM_ATTACK_RATINGS;
        } else if (strcmp(val, "off") == 0) {
            p->attack = 0;
        } else {
            *rv = bad(err, err_cap, flag, val, "items|ratings|both");
        }
    } else {
        return 0;
    }
    return 1;
}

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            if (err_cap > 0) {                                               \
                snprintf(err, err_cap, __VA_ARGS__);                         \
            }                                                                \
            return FR_EINVAL;                                                \
        }                                                                    \
    } while (0)

fr_err
fri_sim_privacy_check(const fri_sim_config *c, char *err, size_t err_cap)
{
    const fri_sim_privacy *p = &c->priv;
    CHECK(p->secagg == 0 || c->algo == FRI_SIM_GRAD || c->algo == FRI_SIM_ALS
            || (c->algo == FRI_SIM_VBMF
                && (c->stats_latest == 1
                    || (c->algo_auto && c->stats_latest != 0))),
        "--secure-agg needs --algo grad, --algo als (explicit or "
        "implicit) or --algo vbmf with latest statistics (masked dense "
        "gradients or statistics)");
    CHECK(p->secagg == 0 || c->algo != FRI_SIM_GRAD || p->clip > 0.0f,
          "--secure-agg needs --clip > 0 (it bounds the fixed-point range)");
    CHECK(p->secagg == 0 || c->algo != FRI_SIM_ALS || p->clip == 0.0f,
          "--secure-agg with --algo als bounds each member by the "
          "aggregator's max user norm and residual, not --clip");
    CHECK(p->secagg == 0 || c->clients_per_round != 1,
          "--secure-agg needs a cohort of at least 2 clients");
    CHECK(c->buffer == 0 || (p->secagg == 0 && p->dp == 0),
          "--buffer (asynchronous buffered mode) needs --secure-agg off and "
          "no --dp: masks cancel only within a cohort fixed when a round "
          "opens, and a buffer fills with whoever arrives");
    CHECK(c->buffer > 0 || c->max_staleness == 4,
          "--max-staleness needs --buffer K");
    CHECK(p->dp == 0 || c->algo == FRI_SIM_GRAD ||
              (c->algo == FRI_SIM_ALS && !c->implicit &&
               c->stats_latest == 1) ||
              (c->algo == FRI_SIM_VBMF &&
               (c->stats_latest == 1 ||
                (c->algo_auto && c->stats_latest != 0))),
          "--dp needs --algo grad, or the latest statistics (the default "
          "VBMF with partial cohorts, or --algo als|vbmf --stats-latest 1; "
          "docs/DP.md)");
    CHECK(p->dp != 2 || c->algo == FRI_SIM_GRAD,
          "--dp distributed needs --algo grad (on the statistics path only "
          "--dp central with --secure-agg off is implemented)");
    CHECK(p->dp == 0 || c->algo == FRI_SIM_GRAD || p->secagg == 0,
          "--dp on the statistics path needs --secure-agg off (--dp "
          "central; masked statistics under DP are not implemented)");
    CHECK(p->dp == 0 || p->clip > 0.0f,
          "--dp needs --clip > 0 (the L2 sensitivity of an update)");
    CHECK(p->dp == 0 || p->noise_multiplier > 0.0,
          "--dp needs --noise-multiplier > 0");
    CHECK(p->dp != 2 || p->secagg != 0,
          "--dp distributed needs --secure-agg full|plus (without it use "
          "--dp central)");
    CHECK(p->dp != 0 || p->noise_multiplier == 0.0,
          "--noise-multiplier needs --dp central|distributed");
    CHECK(p->pseudo_rho == 0.0f || p->secagg == 0,
          "--pseudo-items has no use under --secure-agg (masked updates "
          "are dense over all items)");
    CHECK(p->pseudo_rho == 0.0f || c->algo != FRI_SIM_VBMF,
          "--pseudo-items needs --algo als or grad");
    CHECK((p->attack & FRI_SIM_ATTACK_RATINGS) == 0 ||
              c->algo != FRI_SIM_VBMF,
          "--attack ratings|both needs --algo als or grad (items works "
          "with every algorithm)");
    CHECK((p->attack & FRI_SIM_ATTACK_RATINGS) == 0 || !c->implicit,
        "--attack ratings|both needs explicit ratings (items works with "
        "implicit feedback too)");
    CHECK(p->clip == 0.0f || c->algo != FRI_SIM_VBMF || p->dp != 0,
          "--clip needs --algo als or grad (with VBMF it is the --dp "
          "contribution bound)");
    return FR_OK;
}

void
fri_sim_privacy_agg_config(const fri_sim_config *c, const fri_sim_pop *p,
                           size_t cohort, fri_agg_config *ac)
{
    const fri_sim_privacy *pv = &c->priv;
    ac->clip = pv->clip;
    ac->secagg = (fri_agg_secagg) pv->secagg;
    ac->dp = (fri_agg_dp) pv->dp;
    ac->noise_multiplier = pv->dp ? pv->noise_multiplier : 0.0;
    ac->population = p->n_users;
    ac->dp_delta = pv->dp_delta;
    // Reproducible noise for experiments; anyone with the seed can remove
    // it, so such runs measure utility, not privacy in practice.
    ac->dp_seed = c->seed;
    if (pv->secagg || pv->dp) {
        // The cohort is fixed when the round opens (secure aggregation)
        // and is the expected cohort of the accountant: q = cohort / N.
        ac->clients_per_round = (uint32_t) cohort;
        ac->fraction = 0.0;
    }
    if (pv->secagg) {
        ac->min_clients = 2;
        // A member's session lives through up to four phase deadlines.
        ac->session_ttl_ms = ac->round_deadline_ms * 16;
    }
    if (pv->dp == 2) {
        // Each member adds noise for the fewest survivors a round is
        // unmasked with (min_clients): the expected survivors less three
        // standard deviations of the dropout count.
        double n = (double) cohort, q = c->dropout;
        double m = floor(n * (1.0 - q) - 3.0 * sqrt(n * q * (1.0 - q)));
        ac->min_clients = m < 2.0 ? 2u : (uint32_t) m;
    }
}

// ---- JSON --------------------------------------------------------------------

static void
jkey(FILE *f, const char *key, double v)
{
    if (isfinite(v)) {
        fprintf(f, ",\"%s\":%.6g", key, v);
    } else {
        fprintf(f, ",\"%s\":null", key);
    }
}

void
fri_sim_privacy_json(FILE *f, const fri_sim_privacy *p,
                     const fri_sim_priv_stats *s, int summary)
{
    static const char *const sa[] = {"off", "full", "plus"};
    static const char *const dp[] = {"off", "central", "distributed"};
    int any = p->secagg || p->dp || p->clip > 0.0f ||
              p->pseudo_rho > 0.0f || p->attack;
    if (summary) {
        fprintf(f, ",\"secure_agg\":\"%s\"", sa[p->secagg % 3]);
    }
    if (summary && any) {
        fprintf(f, ",\"dp\":\"%s\"", dp[p->dp % 3]);
        jkey(f, "clip", p->clip);
        jkey(f, "noise_multiplier", p->noise_multiplier);
        jkey(f, "pseudo_items", p->pseudo_rho);
    }
    if (p->dp) {
        jkey(f, "epsilon", s->epsilon);
        jkey(f, "delta", p->dp_delta);
    }
    if (p->attack & FRI_SIM_ATTACK_ITEMS) {
        jkey(f, "attack_auc", s->attack_auc);
        jkey(f, "attack_precision", s->attack_precision);
        jkey(f, "attack_recall", s->attack_recall);
        jkey(f, "attack_prec_at_r", s->attack_prec_at_r);
        fprintf(f, ",\"attack_users\":%llu",
                (unsigned long long) s->attack_users);
    }
    if (p->attack & FRI_SIM_ATTACK_RATINGS) {
        jkey(f, "attack_rating_rmse", s->attack_rating_rmse);
        fprintf(f, ",\"attack_ratings\":%llu",
                (unsigned long long) s->attack_ratings);
    }
}

// ---- the aggregator's view -------------------------------------------------

typedef struct obs {
    uint32_t *items; // strictly increasing
    float    *rows;  // n * width
    uint32_t  n;
    double    sum, count;
} obs;

typedef struct model {
    float  mu;
    float *bi, *Q;
    int    valid;
} model;

struct fri_sim_atk {
    const fri_sim_config *c;
    const fri_sim_pop    *p;
    fri_agg              *agg;
    uint32_t              n_items, k, width;
    int                   items, ratings;
    pthread_mutex_t       mtx;
    // The round.
    uint32_t round;
    int      attacked;
    // Devices registered this round: user and public key (64 bytes).
    size_t    reg_cap, n_reg;
    uint32_t *reg_u;
    uint8_t  *reg_pk;
    // Secure aggregation: per member index, scores and the device.
    size_t    m_cap;
    float    *m_scores; // m_cap * n_items
    uint8_t  *m_have;
    int64_t  *m_user;
    uint32_t *all_items; // 0..n_items-1
    int       roster_done;
    // Reconstruction: this and the previous round's updates per user.
    obs  **cur, **prev;
    model  mcur, mprev;
    // Results.
    fri_atk_membership_acc racc, tacc;
    fri_atk_recon_acc      rrec, trec;
};

static void
obs_free(obs *o)
{
    if (o != NULL) {
        free(o->items);
        free(o->rows);
        free(o);
    }
}

// The device that sent an update with X25519 key pk, or -1. Under mtx.
static int64_t
find_user(const fri_sim_atk *a, const uint8_t *pk, size_t off)
{
    for (size_t i = 0; i < a->n_reg; i++) {
        if (memcmp(a->reg_pk + i * 64 + off, pk, 32) == 0) {
            return a->reg_u[i];
        }
    }
    return -1;
}

// Membership metrics of one user's scores against its training items.
static void
score_user(fri_sim_atk *a, uint32_t u, const float *scores,
           fri_atk_membership_acc *acc)
{
    const fri_csr *t = &a->p->train;
    size_t         n = t->ptr[u + 1] - t->ptr[u];
    fri_atk_membership m;
    if (n == 0 || n >= a->n_items) {
        return;
    }
    if (fri_atk_membership_eval(&m, scores, a->n_items, t->idx + t->ptr[u],
                                n, 0.0f) == FR_OK) {
        fri_atk_membership_acc_add(acc, &m);
    }
}

static int
cmp_u32_idx(const void *x, const void *y, void *ctx)
{
    const uint32_t *items = ctx;
    uint32_t        a = items[*(const uint32_t *) x];
    uint32_t        b = items[*(const uint32_t *) y];
    return (a > b) - (a < b);
}

// A copy of u's rows sorted by item (pseudo-items come unsorted); NULL on
// ENOMEM or duplicate ids.
static obs *
obs_copy(const fri_agg_update *up, uint32_t width)
{
    obs      *o = calloc(1, sizeof(*o));
    uint32_t *ord = malloc(sizeof(uint32_t) * (up->n ? up->n : 1));
    if (o == NULL || ord == NULL) {
        free(ord);
        free(o);
        return NULL;
    }
    o->n = up->n;
    o->items = malloc(sizeof(uint32_t) * (up->n ? up->n : 1));
    o->rows = malloc(sizeof(float) * (size_t) width * (up->n ? up->n : 1));
    if (o->items == NULL || o->rows == NULL) {
        free(ord);
        obs_free(o);
        return NULL;
    }
    for (uint32_t i = 0; i < up->n; i++) {
        ord[i] = i;
    }
    // Insertion sort: updates are short and usually already sorted.
    for (uint32_t i = 1; i < up->n; i++) {
        uint32_t v = ord[i], j = i;
        while (j > 0 && cmp_u32_idx(&ord[j - 1], &v, (void *) up->items) > 0) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = v;
    }
    for (uint32_t i = 0; i < up->n; i++) {
        o->items[i] = up->items[ord[i]];
        memcpy(o->rows + (size_t) i * width,
               up->rows + (size_t) ord[i] * width, sizeof(float) * width);
        if (i > 0 && o->items[i] <= o->items[i - 1]) {
            free(ord);
            obs_free(o);
            return NULL;
        }
    }
    o->sum = up->sum_ratings;
    o->count = up->count;
    free(ord);
    return o;
}

static void
on_update(void *ctx, const uint8_t pk[FRI_AGG_KEYBYTES],
          const fri_agg_update *up)
{
    fri_sim_atk *a = ctx;
    pthread_mutex_lock(&a->mtx);
    int64_t u = a->attacked || a->ratings ? find_user(a, pk, 0) : -1;
    int     attacked = a->attacked;
    pthread_mutex_unlock(&a->mtx);
    if (u < 0 || up->rows == NULL ||
        up->rows_len != (size_t) up->n * a->width) {
        return;
    }
    if (a->items && attacked) {
        float *scores = malloc(sizeof(float) * a->n_items);
        fri_atk_membership_acc one;
        fri_atk_membership_acc_init(&one);
        if (scores != NULL &&
            fri_atk_score_rows(scores, a->n_items, up->items, up->rows,
                               up->n, a->width) == FR_OK) {
            score_user(a, (uint32_t) u, scores, &one);
        }
        free(scores);
        pthread_mutex_lock(&a->mtx);
        if (one.n_users > 0) {
            fri_atk_membership m = fri_atk_membership_acc_mean(&one);
            fri_atk_membership_acc_add(&a->racc, &m);
        }
        pthread_mutex_unlock(&a->mtx);
    }
    if (a->ratings) {
        obs *o = obs_copy(up, a->width);
        pthread_mutex_lock(&a->mtx);
        obs_free(a->cur[u]);
        a->cur[u] = o;
        pthread_mutex_unlock(&a->mtx);
    }
}

// Under the aggregator's lock: only score and store.
static void
on_masked(void *ctx, uint32_t index, const uint32_t *y, size_t dim)
{
    fri_sim_atk *a = ctx;
    if (!a->items || !a->attacked || index >= a->m_cap ||
        dim < (size_t) a->n_items * a->width + 2) {
        return;
    }
    // Rows of k + 1 (gradients) or of the statistics block ([packed Gram
    // | h], ALS and latest statistics; VBMF's global block after the rows
    // is shorter than the catalog, so the division drops it).
    size_t width = (dim - 2) / a->n_items;
    // The scorer is scale-free (AUC of row norms), so the dequantization
    // scale is irrelevant; 16 fractional bits keep int32/2^f finite.
    if (fri_atk_score_masked(a->m_scores + (size_t) index * a->n_items,
                             a->n_items, a->all_items, y, a->n_items,
                             width, 16) == FR_OK) {
        a->m_have[index] = 1;
    }
}

fr_err
fri_sim_atk_create(fri_sim_atk **out, const fri_sim_config *c,
                   const fri_sim_pop *p, size_t cohort, fri_agg *agg)
{
    fri_sim_atk *a = calloc(1, sizeof(*a));
    *out = NULL;
    if (a == NULL) {
        return FR_ENOMEM;
    }
    a->c = c;
    a->p = p;
    a->agg = agg;
    a->n_items = p->n_items;
    a->k = c->k;
    a->width = c->k + 1;
    a->items = (c->priv.attack & FRI_SIM_ATTACK_ITEMS) != 0;
    a->ratings = (c->priv.attack & FRI_SIM_ATTACK_RATINGS) != 0 &&
                 c->priv.secagg == 0;
    pthread_mutex_init(&a->mtx, NULL);
    fri_atk_membership_acc_init(&a->racc);
    fri_atk_membership_acc_init(&a->tacc);
    fri_atk_recon_acc_init(&a->rrec);
    fri_atk_recon_acc_init(&a->trec);
    *out = a;
    if (c->priv.attack == 0) {
        return FR_OK; // epsilon only
    }
    a->reg_cap = p->n_users;
    a->reg_u = malloc(sizeof(uint32_t) * (a->reg_cap ? a->reg_cap : 1));
    a->reg_pk = malloc(64 * (a->reg_cap ? a->reg_cap : 1));
    if (a->reg_u == NULL || a->reg_pk == NULL) {
        return FR_ENOMEM;
    }
    if (c->priv.secagg && a->items) {
        a->m_cap = cohort;
        a->m_scores = malloc(sizeof(float) * cohort * a->n_items);
        a->m_have = calloc(cohort ? cohort : 1, 1);
        a->m_user = malloc(sizeof(int64_t) * (cohort ? cohort : 1));
        a->all_items = malloc(sizeof(uint32_t) * a->n_items);
        if (a->m_scores == NULL || a->m_have == NULL || a->m_user == NULL ||
            a->all_items == NULL) {
            return FR_ENOMEM;
        }
        for (uint32_t i = 0; i < a->n_items; i++) {
            a->all_items[i] = i;
        }
    }
    if (a->ratings) {
        size_t nq = (size_t) a->n_items * a->k;
        a->cur = calloc(p->n_users ? p->n_users : 1, sizeof(obs *));
        a->prev = calloc(p->n_users ? p->n_users : 1, sizeof(obs *));
        a->mcur.bi = malloc(sizeof(float) * a->n_items);
        a->mcur.Q = malloc(sizeof(float) * (nq ? nq : 1));
        a->mprev.bi = malloc(sizeof(float) * a->n_items);
        a->mprev.Q = malloc(sizeof(float) * (nq ? nq : 1));
        if (a->cur == NULL || a->prev == NULL || a->mcur.bi == NULL ||
            a->mcur.Q == NULL || a->mprev.bi == NULL || a->mprev.Q == NULL) {
            return FR_ENOMEM;
        }
    }
    return FR_OK;
}

void
fri_sim_atk_hooks(const fri_sim_atk *a, int *updates, int *masked)
{
    *updates = a != NULL && a->c->priv.attack != 0 && !a->c->priv.secagg;
    *masked  = a != NULL && a->m_have != NULL;
}

int
fri_sim_atk_update_hook(void *ctx, uint32_t round, uint32_t device,
    const uint8_t pk[32], const struct fri_agg_update *up)
{
    (void)round;
    (void)device; // the attacks name devices from their own registry
    on_update(ctx, pk, up);
    return 0;
}

int
fri_sim_atk_masked_hook(void *ctx, uint32_t round, uint32_t member,
    const uint32_t *y, size_t dim)
{
    (void)round;
    on_masked(ctx, member, y, dim);
    return 0;
}

void
fri_sim_atk_destroy(fri_sim_atk *a)
{
    if (a == NULL) {
        return;
    }
    for (uint32_t u = 0; a->cur != NULL && u < a->p->n_users; u++) {
        obs_free(a->cur[u]);
        obs_free(a->prev[u]);
    }
    free(a->cur);
    free(a->prev);
    free(a->mcur.bi);
    free(a->mcur.Q);
    free(a->mprev.bi);
    free(a->mprev.Q);
    free(a->reg_u);
    free(a->reg_pk);
    free(a->m_scores);
    free(a->m_have);
    free(a->m_user);
    free(a->all_items);
    pthread_mutex_destroy(&a->mtx);
    free(a);
}

void
fri_sim_atk_round_begin(fri_sim_atk *a, uint32_t r, int attacked)
{
    if (a == NULL) {
        return;
    }
    pthread_mutex_lock(&a->mtx);
    a->round = r;
    a->attacked = attacked && a->c->priv.attack != 0;
    a->n_reg = 0;
    a->roster_done = 0;
    if (a->m_have != NULL) {
        memset(a->m_have, 0, a->m_cap);
        for (size_t i = 0; i < a->m_cap; i++) {
            a->m_user[i] = -1;
        }
    }
    fri_atk_membership_acc_init(&a->racc);
    fri_atk_recon_acc_init(&a->rrec);
    pthread_mutex_unlock(&a->mtx);
    if (a->ratings) {
        // The model the round's clients fit to.
        fri_agg_model_copy(a->agg, &a->mcur.mu, a->mcur.bi, a->n_items,
                           a->mcur.Q, (size_t) a->n_items * a->k, NULL);
        a->mcur.valid = 1;
    }
}

void
fri_sim_atk_register(fri_sim_atk *a, uint32_t u, const uint8_t pk[64])
{
    if (a == NULL || a->reg_pk == NULL) {
        return;
    }
    pthread_mutex_lock(&a->mtx);
    if (a->n_reg < a->reg_cap) {
        a->reg_u[a->n_reg] = u;
        memcpy(a->reg_pk + a->n_reg * 64, pk, 64);
        a->n_reg++;
    }
    pthread_mutex_unlock(&a->mtx);
}

void
fri_sim_atk_poll(fri_sim_atk *a, uint64_t now_ms)
{
    if (a == NULL || a->m_have == NULL || !a->attacked || a->roster_done ||
        a->n_reg == 0) {
        return;
    }
    fri_agg_metrics m;
    fri_agg_metrics_get(a->agg, &m);
    size_t    cap = a->m_cap;
    uint32_t *idx = malloc(sizeof(uint32_t) * cap);
    uint8_t  *ids = malloc(32 * cap);
    uint8_t  *adv = malloc((size_t) FRI_AGG_SA_ADVERTBYTES * cap);
    size_t    n = 0;
    uint32_t  retry = 0;
    if (idx != NULL && ids != NULL && adv != NULL) {
        pthread_mutex_lock(&a->mtx);
        // Any member's key opens the roster; it has no side effects.
        fr_err e = fri_agg_sa_roster(a->agg, now_ms, a->reg_pk, m.round, idx,
                                     ids, adv, cap, &n, &retry);
        if (e == FR_OK && retry == 0) {
            for (size_t j = 0; j < n; j++) {
                if (idx[j] < a->m_cap) {
                    a->m_user[idx[j]] = find_user(a, ids + 32 * j, 32);
                }
            }
            a->roster_done = 1;
        }
        pthread_mutex_unlock(&a->mtx);
    }
    free(idx);
    free(ids);
    free(adv);
}

static double
nan_if_empty(double v, uint64_t n)
{
    return n > 0 ? v : NAN;
}

// Reconstructs every user seen in both the previous and this round.
static void
reconstruct_round(fri_sim_atk *a)
{
    const fri_csr *t = &a->p->train;
    fri_atk_params prm;
    fri_atk_params_init(&prm);
    prm.kind = a->c->algo == FRI_SIM_ALS ? FRI_ATK_ALS : FRI_ATK_GRAD;
    prm.k = a->k;
    prm.reg = a->c->reg;
    prm.reg_bias = a->c->reg_bias;
    prm.weighted = a->c->weighted;
    prm.bu = FRI_ATK_BU_AUTO;
    float *out = NULL;
    size_t out_cap = 0;
    for (uint32_t u = 0; u < a->p->n_users; u++) {
        obs *o1 = a->prev[u], *o2 = a->cur[u];
        if (o1 == NULL || o2 == NULL || o1->n == 0) {
            continue;
        }
        if (o1->n > out_cap) {
            free(out);
            out_cap = o1->n;
            out = malloc(sizeof(float) * out_cap);
            if (out == NULL) {
                return;
            }
        }
        fri_atk_obs r1 = {.items = o1->items,
                          .rows = o1->rows,
                          .n_rows = o1->n,
                          .rating_sum = o1->sum,
                          .count = o1->count,
                          .model = {a->n_items, a->k, a->mprev.mu,
                                    a->mprev.bi, a->mprev.Q}};
        fri_atk_obs r2 = {.items = o2->items,
                          .rows = o2->rows,
                          .n_rows = o2->n,
                          .rating_sum = o2->sum,
                          .count = o2->count,
                          .model = {a->n_items, a->k, a->mcur.mu,
                                    a->mcur.bi, a->mcur.Q}};
        if (fri_atk_reconstruct(out, out_cap, NULL, &r1, &r2, &prm) !=
            FR_OK) {
            continue;
        }
        size_t b = t->ptr[u], n = t->ptr[u + 1] - b;
        fr_err ae = fri_atk_recon_acc_add(&a->rrec, o1->items, out, o1->n,
                                          t->idx + b, t->val + b, n);
        (void) ae; // only unsorted input fails, and both lists are sorted
    }
    free(out);
}

static void
merge_recon(fri_atk_recon_acc *dst, const fri_atk_recon_acc *src)
{
    dst->sse += src->sse;
    dst->sae += src->sae;
    dst->n_found += src->n_found;
    dst->n_missed += src->n_missed;
    dst->n_false += src->n_false;
    dst->n_within += src->n_within;
}

static void
fill_stats(fri_sim_priv_stats *s, const fri_atk_membership_acc *m,
           const fri_atk_recon_acc *r, int items, int ratings)
{
    if (items && m->n_users > 0) {
        fri_atk_membership mm = fri_atk_membership_acc_mean(m);
        s->attack_auc = mm.auc;
        s->attack_precision = mm.flag_precision;
        s->attack_recall = mm.flag_recall;
        s->attack_prec_at_r = mm.prec_at_r;
        s->attack_users = m->n_users;
    }
    if (ratings) {
        s->attack_rating_rmse = nan_if_empty(fri_atk_recon_rmse(r),
                                             r->n_found);
        s->attack_ratings = r->n_found;
    }
}

static void
merge_membership(fri_atk_membership_acc *dst,
                 const fri_atk_membership_acc *src)
{
    dst->prec_at_r += src->prec_at_r;
    dst->flag_precision += src->flag_precision;
    dst->flag_recall += src->flag_recall;
    dst->auc += src->auc;
    dst->n_users += src->n_users;
}

void
fri_sim_atk_round_end(fri_sim_atk *a, fri_sim_round *r)
{
    fri_sim_priv_stats_init(&r->priv);
    if (a == NULL) {
        return;
    }
    fri_agg_metrics m;
    fri_agg_metrics_get(a->agg, &m);
    if (a->c->priv.dp) {
        r->priv.epsilon = m.dp_epsilon;
    }
    if (a->c->priv.attack == 0) {
        return;
    }
    pthread_mutex_lock(&a->mtx);
    if (a->attacked && a->m_have != NULL) {
        for (size_t i = 0; i < a->m_cap; i++) {
            if (a->m_have[i] && a->m_user[i] >= 0) {
                score_user(a, (uint32_t) a->m_user[i],
                           a->m_scores + i * a->n_items, &a->racc);
            }
        }
    }
    if (a->ratings && a->attacked && a->mprev.valid) {
        reconstruct_round(a);
    }
    if (a->attacked) {
        merge_membership(&a->tacc, &a->racc);
        merge_recon(&a->trec, &a->rrec);
        fill_stats(&r->priv, &a->racc, &a->rrec, a->items,
                   (a->c->priv.attack & FRI_SIM_ATTACK_RATINGS) != 0);
    }
    if (a->ratings) {
        // This round becomes the previous one.
        for (uint32_t u = 0; u < a->p->n_users; u++) {
            obs_free(a->prev[u]);
            a->prev[u] = a->cur[u];
            a->cur[u] = NULL;
        }
        model t = a->mprev;
        a->mprev = a->mcur;
        a->mcur = t;
        a->mcur.valid = 0;
    }
    pthread_mutex_unlock(&a->mtx);
}

void
fri_sim_atk_summary(const fri_sim_atk *a, fri_sim_summary *s)
{
    fri_sim_priv_stats_init(&s->priv);
    if (a == NULL) {
        return;
    }
    s->priv.epsilon = s->last.priv.epsilon;
    fill_stats(&s->priv, &a->tacc, &a->trec, a->items,
               (a->c->priv.attack & FRI_SIM_ATTACK_RATINGS) != 0);
}
