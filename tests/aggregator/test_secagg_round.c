// Secure aggregation through the aggregator's phase machine
// (fri_agg_sa_*), with members that run the real client-side cryptography
// of common/secagg.h: the masked round's model equals the plain round's
// within quantization error, 30% of the cohort may go silent after sending
// its masked input, SecAgg+ graphs work, and the per-member data the
// aggregator sees is masked (item-inference AUC ~ 0.5).
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "agg.h"
#include "attack.h"
#include "dp.h"
#include "secagg.h"
#include "sa_driver.h"
#include "model_diff.h"
#include "shamir.h"

#define NIT 40
#define K 3
#define D (K + 1)
#define DIM (NIT * D + 2)
#define MAXN 100

typedef struct sim_member {
    sa_drv_member sa; // sa.x points at x
    float         x[DIM];
    uint8_t       rated[NIT];
} sim_member;

// Members that reveal wrong shares in the unmask phase (a malicious
// share holder): each revealed share (1) or each revealed share of a
// survivor's self-mask seed (2) has one byte flipped.
static uint8_t corrupt[MAXN];

// Members that send their dropout correction in the unmask phase.
static uint8_t correct[MAXN];

// Added to the first word of the first correction sent (0: honest).
static uint32_t evil_corr;

static void
tamper_corr(uint32_t *c, size_t dim)
{
    (void) dim;
    c[0] += evil_corr;
}

typedef struct masked_seen {
    uint32_t *y[MAXN];
    int       n;
} masked_seen;

static void
on_masked(void *ctx, uint32_t index, const uint32_t *y, size_t dim)
{
    masked_seen *s = ctx;
    cr_assert(index < MAXN && dim == DIM);
    s->y[index] = malloc(dim * sizeof(uint32_t));
    cr_assert_not_null(s->y[index]);
    memcpy(s->y[index], y, dim * sizeof(uint32_t));
    s->n++;
}

static void
agg_config(fri_agg_config *c, uint32_t n, fri_agg_secagg mode)
{
    fri_agg_config_init(c);
    c->n_items           = NIT;
    c->k                 = K;
    c->algo              = FRI_AGG_GRAD;
    c->server_opt        = FRI_AGG_OPT_SGD;
    c->server_lr         = 1.0f;
    c->clients_per_round = n;
    c->min_clients       = 2;
    c->clip              = 1.0f;
    c->secagg            = mode;
    c->round_deadline_ms = 1000;
}

// A sparse "gradient" over a few rated items, dense layout, |x_j| < 0.3,
// then (sum, count), both clipped to C / sqrt(2) like a client's (the
// plain path clips server-side, the masked one cannot).
static void
make_update(sim_member *m, uint32_t u)
{
    fri_rng r;
    fri_rng_seed(&r, 1000 + u);
    memset(m->x, 0, sizeof(m->x));
    memset(m->rated, 0, sizeof(m->rated));
    for (int j = 0; j < 8; j++) {
        uint32_t i  = (uint32_t) (fri_rng_next(&r) % NIT);
        m->rated[i] = 1;
        for (int f = 0; f < D; f++) {
            m->x[i * D + f] = (float) (fri_rng_uniform(&r) * 0.6 - 0.3);
        }
    }
    (void) fri_dp_clip_l2(m->x, NIT * D, 0.7f, NULL);
    m->x[NIT * D]     = 0.4f + 0.1f * (float) (u % 3);
    m->x[NIT * D + 1] = 0.15f;
}

// Added by member 0 to its first quantized word, and to every word (0:
// honest).
static uint32_t evil_offset, evil_spread;

static void
tamper(uint32_t *q, size_t dim)
{
    q[0] += evil_offset;
    for (size_t t = 0; t < dim; t++) {
        q[t] += evil_spread;
    }
}

static void
members_init(sim_member *ms, uint32_t n)
{
    for (uint32_t u = 0; u < n; u++) {
        memset(&ms[u], 0, sizeof(ms[u]));
        sa_drv_member_init(&ms[u].sa);
        ms[u].sa.x = ms[u].x;
        make_update(&ms[u], u);
    }
}

// Runs one secure round. drop_before_mask: members that share but never
// send a masked input; silent: members that send it but never answer the
// unmask request. Returns the number of survivors.
static uint32_t
secure_round(fri_agg *a, sim_member *ms, uint32_t n,
             const uint8_t *drop_before_mask, const uint8_t *silent)
{
    uint64_t       now = 10;
    sa_drv_member *mp[MAXN];
    for (uint32_t u = 0; u < n; u++) {
        cr_assert_eq(fri_agg_checkin(a, now, ms[u].sa.pk, &ms[u].sa.t), FR_OK);
        cr_assert(ms[u].sa.t.has_task && ms[u].sa.t.secagg);
        cr_assert_eq(ms[u].sa.t.sa_dim, DIM);
        mp[u] = &ms[u].sa;
    }
    sa_drv_faults f = {drop_before_mask, silent, corrupt, tamper, correct,
                       tamper_corr};
    return sa_drv_round(a, mp, n, now, &f);
}

// The same updates through the plain path (dense rows, weight = count).
static void
plain_round(fri_agg *a, sim_member *ms, uint32_t n, const uint8_t *skip)
{
    static uint32_t items[NIT];
    for (uint32_t i = 0; i < NIT; i++) {
        items[i] = i;
    }
    for (uint32_t u = 0; u < n; u++) {
        if (skip != NULL && skip[u]) {
            continue;
        }
        fri_agg_task t;
        cr_assert_eq(fri_agg_checkin(a, 1, ms[u].sa.pk, &t), FR_OK);
        cr_assert(t.has_task);
        fri_agg_update up;
        memset(&up, 0, sizeof(up));
        up.round       = t.round;
        up.n           = NIT;
        up.items       = items;
        up.rows        = ms[u].x;
        up.rows_len    = NIT * D;
        up.sum_ratings = ms[u].x[NIT * D];
        up.count       = ms[u].x[NIT * D + 1];
        up.weight      = ms[u].x[NIT * D + 1];
        cr_assert_eq(fri_agg_submit(a, 1, ms[u].sa.pk, &up), FR_OK);
    }
    fri_agg_tick(a, 2000); // closes with whoever reported
}

static void
compare(fri_agg *sec, fri_agg *pl, double tol)
{
    model_diff_out d = model_diff_of(sec, pl, NIT, K);
    cr_assert_eq(d.va, 1, "secure round did not complete");
    cr_assert_eq(d.vb, 1);
    double worst = d.worst;
    cr_log_info("max |secure - plain| = %.3g (tol %.3g)", worst, tol);
    cr_assert(worst < tol, "secure vs plain differ by %g", worst);
}

static void
run_and_compare(uint32_t n, fri_agg_secagg mode, const uint8_t *drop,
                const uint8_t *silent, uint32_t want_survivors)
{
    static sim_member ms[MAXN];
    members_init(ms, n);
    fri_agg_config c;
    agg_config(&c, n, mode);
    fri_agg *sec = NULL, *pl = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&sec, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    uint32_t s = secure_round(sec, ms, n, drop, silent);
    cr_assert_eq(s, want_survivors);
    c.secagg = FRI_AGG_SECAGG_OFF;
    cr_assert_eq(fri_agg_create(&pl, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    plain_round(pl, ms, n, drop);
    // Quantization: |error| <= 2^-(f+1) per word, summed over the cohort,
    // then divided by the summed counts (>= 0.15 n).
    fri_agg_task t = ms[0].sa.t;
    double       q = ldexp(1.0, -(int) t.sa_frac_bits - 1) * n;
    compare(sec, pl, 4 * q / (0.15 * want_survivors) + 1e-5);
    fri_agg_destroy(sec);
    fri_agg_destroy(pl);
}

Test(agg_secagg, masked_round_equals_plain_round)
{
    run_and_compare(10, FRI_AGG_SECAGG_FULL, NULL, NULL, 10);
}

// Fewer devices check in than clients-per-round (availability dips): the
// cohort closes at the join deadline with the members it has and the round
// is sized for them (graph, threshold, fixed-point range), so it completes
// with the same model as the plain round. Sized for the configured 40, the
// 12 members' self-mask seeds would have fewer holders than the threshold
// and every such round would be abandoned.
Test(agg_secagg, cohort_smaller_than_configured_completes)
{
    for (int plus = 0; plus <= 1; plus++) {
        static sim_member ms[MAXN];
        const uint32_t    n = 12;
        members_init(ms, n);
        fri_agg_config c;
        agg_config(&c, 40, plus ? FRI_AGG_SECAGG_PLUS : FRI_AGG_SECAGG_FULL);
        fri_agg *sec = NULL, *pl = NULL;
        char     err[256];
        cr_assert_eq(
            fri_agg_create(&sec, &c, 0, err, sizeof(err)), FR_OK, "%s", err);
        sa_drv_member *mp[MAXN];
        for (uint32_t u = 0; u < n; u++) {
            cr_assert_eq(
                fri_agg_checkin(sec, 10, ms[u].sa.pk, &ms[u].sa.t), FR_OK);
            cr_assert_eq(ms[u].sa.t.sa_n, 0, "parameters before the close");
            mp[u] = &ms[u].sa;
        }
        // The join deadline passes: the cohort of 12 closes; a late
        // device is not taken.
        fri_agg_tick(sec, 10 + c.round_deadline_ms + 1);
        uint8_t      late[32];
        fri_agg_task lt;
        memset(late, 0xee, sizeof(late));
        cr_assert_eq(fri_agg_checkin(sec, 1100, late, &lt), FR_OK);
        cr_assert(!lt.has_task, "a device joined a closed cohort");
        sa_drv_faults f = { NULL, NULL, corrupt, tamper, NULL, NULL };
        cr_assert_eq(sa_drv_round(sec, mp, n, 1100, &f), n);
        cr_assert_eq(ms[0].sa.t.sa_n, n);
        cr_assert(ms[0].sa.t.sa_threshold <= n / 2 + 1, "threshold %u",
            ms[0].sa.t.sa_threshold);
        c.secagg = FRI_AGG_SECAGG_OFF;
        cr_assert_eq(
            fri_agg_create(&pl, &c, 0, err, sizeof(err)), FR_OK, "%s", err);
        plain_round(pl, ms, n, NULL);
        double q = ldexp(1.0, -(int)ms[0].sa.t.sa_frac_bits - 1) * n;
        compare(sec, pl, 4 * q / (0.15 * n) + 1e-5);
        fri_agg_destroy(sec);
        fri_agg_destroy(pl);
    }
}

Test(agg_secagg, thirty_percent_silent_after_masked_input)
{
    uint8_t silent[10] = {0, 1, 0, 0, 1, 0, 0, 1, 0, 0}; // 3 of 10
    run_and_compare(10, FRI_AGG_SECAGG_FULL, NULL, silent, 10);
}

Test(agg_secagg, dropped_before_masking_are_unmasked_out)
{
    uint8_t drop[10] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    uint8_t silent[10] = {0, 1, 0, 0, 0, 0, 0, 1, 0, 0};
    run_and_compare(10, FRI_AGG_SECAGG_FULL, drop, silent, 9);
}

Test(agg_secagg, secagg_plus_sparse_graph_with_dropouts)
{
    uint8_t silent[MAXN] = {0};
    for (int u = 0; u < MAXN; u += 4) { // 25 of 100 silent
        silent[u] = 1;
    }
    uint8_t drop[MAXN] = {0};
    drop[1] = drop[2] = drop[3] = drop[5] = drop[6] = 1; // 5 never mask
    fri_agg_config c;
    agg_config(&c, MAXN, FRI_AGG_SECAGG_PLUS);
    run_and_compare(MAXN, FRI_AGG_SECAGG_PLUS, drop, silent, MAXN - 5);
}

// Survivors that send their dropout correction (the sum of their pair
// masks with the members that dropped before masking) spare the closer
// those pairs; the result is the same model as the plain round, with
// every survivor correcting, with some, and with silent survivors whose
// pairs the closer still recomputes from the dropped members' keys.
Test(agg_secagg, dropout_corrections_give_the_plain_model)
{
    uint8_t drop[10]   = {0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
    uint8_t silent[10] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    memset(correct, 1, sizeof(correct));
    run_and_compare(10, FRI_AGG_SECAGG_FULL, drop, silent, 8);
    for (int u = 0; u < MAXN; u++) {
        correct[u] = (uint8_t)(u % 2);
    }
    run_and_compare(10, FRI_AGG_SECAGG_FULL, drop, silent, 8);
    uint8_t sdrop[MAXN] = {0}, ssil[MAXN] = {0};
    for (int u = 0; u < MAXN; u += 7) {
        sdrop[u] = 1; // 15 of 100 never mask
    }
    ssil[3] = ssil[50] = 1;
    run_and_compare(MAXN, FRI_AGG_SECAGG_PLUS, sdrop, ssil, MAXN - 15);
    memset(correct, 0, sizeof(correct));
}

// A fresh aggregator for secure rounds of n members (complete graph).
static fri_agg *
new_secure(uint32_t n)
{
    fri_agg_config c;
    agg_config(&c, n, FRI_AGG_SECAGG_FULL);
    fri_agg *a = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    return a;
}

// Its one round was refused by the range check on the unmasked sum, the
// model untouched.
static void
assert_range_refused(fri_agg *a)
{
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.model_version, 0);
    cr_assert_eq(m.rounds_completed, 0);
    cr_assert_eq(m.rounds_abandoned, 1);
    cr_assert_eq(m.sa_unmask_failed, 1);
}

// A correction is a vector the member controls, like its masked input:
// the worst single value (a word far outside what n encodings can reach)
// meets the same range check on the unmasked sum, and the round is
// refused with the model untouched.
Test(agg_secagg, a_lying_correction_is_refused_by_the_range_check)
{
    static sim_member ms[MAXN];
    const uint32_t    n = 10;
    uint8_t           drop[10] = {0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
    members_init(ms, n);
    fri_agg *a = new_secure(n);
    memset(correct, 1, sizeof(correct));
    evil_corr = 1u << 28;
    cr_assert_eq(secure_round(a, ms, n, drop, NULL), n - 2);
    evil_corr = 0;
    memset(correct, 0, sizeof(correct));
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_gt(m.sa_corrections, 0);
    assert_range_refused(a);
    fri_agg_destroy(a);
}

// A member that adds 2^28 to a word of its quantized input (far outside the
// encoding of a clipped update) makes the unmasked sum exceed the cohort's
// clip budget: the round is refused, the model untouched.
Test(agg_secagg, unmasked_sum_above_clip_budget_refused)
{
    static sim_member ms[MAXN];
    const uint32_t    n = 10;
    members_init(ms, n);
    // A word far outside n encodings: the fixed-point range check.
    fri_agg *a = new_secure(n);
    evil_offset = 1u << 28;
    secure_round(a, ms, n, NULL, NULL);
    evil_offset = 0;
    assert_range_refused(a);
    fri_agg_destroy(a);
    fri_agg_metrics m;

    // Every word at the clip (each coordinate inside the range n
    // encodings can reach, the norm sqrt(DIM) C far above n C / sqrt(2)):
    // the norm budget.
    a = new_secure(n);
    evil_spread =
        (uint32_t) ldexp(ms[0].sa.t.sa_clip, (int) ms[0].sa.t.sa_frac_bits);
    cr_assert_gt(evil_spread, 0);
    secure_round(a, ms, n, NULL, NULL);
    evil_spread = 0;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.model_version, 0);
    cr_assert_eq(m.rounds_completed, 0);
    cr_assert_eq(m.rounds_abandoned, 1);
    cr_assert_eq(m.models_refused, 1);
    fri_agg_destroy(a);
}

// One malicious holder reveals wrong shares of every secret it holds. With
// more than t shares per secret the aggregator finds a subset whose secret
// matches the advert (commitment to b, c_pk for c_sk) and the model equals
// the plain round's; the mismatches are counted.
Test(agg_secagg, corrupted_share_detected_and_recovered)
{
    uint8_t drop[10] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    memset(corrupt, 0, sizeof(corrupt));
    corrupt[3] = 1;
    static sim_member ms[MAXN];
    members_init(ms, 10);
    fri_agg_config c;
    agg_config(&c, 10, FRI_AGG_SECAGG_FULL);
    fri_agg *sec = NULL, *pl = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&sec, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    cr_assert_eq(secure_round(sec, ms, 10, drop, NULL), 9);
    memset(corrupt, 0, sizeof(corrupt));
    fri_agg_metrics m;
    fri_agg_metrics_get(sec, &m);
    cr_assert_eq(m.rounds_abandoned, 0);
    cr_assert_eq(m.rounds_completed, 1);
    // Every secret member 3 holds a share of: the 8 other survivors' b and
    // the dropped member's c_sk.
    cr_assert_eq(m.sa_share_mismatch, 9, "mismatches %llu",
                 (unsigned long long) m.sa_share_mismatch);
    cr_assert_eq(m.sa_unmask_failed, 0);
    c.secagg = FRI_AGG_SECAGG_OFF;
    cr_assert_eq(fri_agg_create(&pl, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    plain_round(pl, ms, 10, drop);
    double q = ldexp(1.0, -(int) ms[0].sa.t.sa_frac_bits - 1) * 10;
    compare(sec, pl, 4 * q / (0.15 * 9) + 1e-5);
    fri_agg_destroy(sec);
    fri_agg_destroy(pl);
}

// With exactly t shares per secret a wrong one cannot be corrected: the
// round is abandoned (counted, model unchanged), never a wrong model.
Test(agg_secagg, corrupted_share_without_spare_abandons_round)
{
    // 10 members, complete graph, t = 5; 4 never mask, so each survivor's
    // b has exactly 5 holders (the other survivors), one of them malicious.
    uint8_t drop[10] = {1, 0, 1, 0, 1, 0, 1, 0, 0, 0};
    memset(corrupt, 0, sizeof(corrupt));
    corrupt[5] = 2; // only b-shares: the mask keys check out
    static sim_member ms[MAXN];
    members_init(ms, 10);
    fri_agg_config c;
    agg_config(&c, 10, FRI_AGG_SECAGG_FULL);
    fri_agg *a = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    cr_assert_eq(secure_round(a, ms, 10, drop, NULL), 6);
    memset(corrupt, 0, sizeof(corrupt));
    cr_assert_eq(ms[1].sa.t.sa_threshold, 5);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.rounds_completed, 0);
    cr_assert_eq(m.rounds_abandoned, 1);
    cr_assert_eq(m.sa_unmask_failed, 1);
    cr_assert_eq(m.model_version, 0, "a wrong model was released");
    char   txt[8192];
    size_t tl;
    cr_assert_eq(fri_agg_metrics_prometheus(&m, txt, sizeof(txt), &tl), FR_OK);
    cr_assert_not_null(strstr(txt, "fedrec_secagg_unmask_failed_total 1"));
    fri_agg_destroy(a);
}

Test(agg_secagg, aggregator_sees_only_masked_vectors)
{
    static sim_member ms[MAXN];
    const uint32_t    n = 10;
    members_init(ms, n);
    fri_agg *a = new_secure(n);
    masked_seen seen = {0};
    fri_agg_set_masked_hook(a, on_masked, &seen);
    secure_round(a, ms, n, NULL, NULL);
    cr_assert_eq(seen.n, (int) n);
    // Item inference on what the aggregator saw (rows' norms), against the
    // same attack on the plaintext updates.
    float    scores[NIT];
    uint8_t  labels[NIT * 10];
    float    all_m[NIT * 10], all_p[NIT * 10];
    uint32_t items[NIT];
    for (uint32_t i = 0; i < NIT; i++) {
        items[i] = i;
    }
    for (uint32_t u = 0; u < n; u++) {
        uint32_t idx = ms[u].sa.t.sa_index;
        cr_assert_eq(fri_atk_score_masked(scores, NIT, items, seen.y[idx],
                                          NIT, D, ms[u].sa.t.sa_frac_bits),
                     FR_OK);
        memcpy(all_m + u * NIT, scores, sizeof(scores));
        cr_assert_eq(fri_atk_score_rows(scores, NIT, items, ms[u].x, NIT, D),
                     FR_OK);
        memcpy(all_p + u * NIT, scores, sizeof(scores));
        memcpy(labels + u * NIT, ms[u].rated, NIT);
        free(seen.y[idx]);
    }
    double auc_m, auc_p;
    cr_assert_eq(fri_atk_auc(&auc_m, all_m, labels, NIT * n), FR_OK);
    cr_assert_eq(fri_atk_auc(&auc_p, all_p, labels, NIT * n), FR_OK);
    cr_log_info("item-inference AUC: plain %.3f, masked %.3f", auc_p, auc_m);
    cr_assert(auc_p > 0.99, "plain AUC %f", auc_p);
    // At chance the AUC of np positives against nn negatives has standard
    // error sqrt((np + nn + 1) / (12 np nn)) (Hanley-McNeil under H0);
    // 4.5 of them keep a false failure below 1e-5 with 400 masked rows.
    double np = 0.0;
    for (uint32_t t = 0; t < NIT * n; t++) {
        np += labels[t];
    }
    double nn = (double) (NIT * n) - np;
    double se = sqrt((np + nn + 1.0) / (12.0 * np * nn));
    cr_assert(fabs(auc_m - 0.5) < 4.5 * se, "masked AUC %f (se %f)", auc_m,
              se);
    fri_agg_destroy(a);
}

Test(agg_secagg, plain_updates_refused_and_config_checked)
{
    fri_agg_config c;
    agg_config(&c, 4, FRI_AGG_SECAGG_FULL);
    fri_agg *a = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    uint8_t pk[32];
    memset(pk, 3, sizeof(pk));
    fri_agg_task t;
    cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
    // The cohort fills (three more members), which sets its parameters.
    for (uint8_t o = 4; o < 7; o++) {
        uint8_t opk[32];
        memset(opk, o, sizeof(opk));
        fri_agg_task ot;
        cr_assert_eq(fri_agg_checkin(a, 0, opk, &ot), FR_OK);
    }
    cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
    cr_assert_eq(t.sa_n, 4);
    fri_agg_update u;
    memset(&u, 0, sizeof(u));
    u.round = t.round;
    cr_assert_eq(fri_agg_submit(a, 0, pk, &u), FR_ESTATE);
    // A bad advert signature is refused.
    uint8_t id_pk[32], id_sk[64], other_pk[32], other_sk[64];
    crypto_sign_keypair(id_pk, id_sk);
    crypto_sign_keypair(other_pk, other_sk);
    fri_secagg_keys keys;
    cr_assert_eq(fri_secagg_keygen(&keys, NULL), FR_OK);
    fri_secagg_advert adv;
    uint8_t commit[FRI_SECAGG_COMMITBYTES] = {0};
    cr_assert_eq(fri_secagg_advert_sign(&adv, t.round, t.sa_index, keys.c_pk,
                                        keys.s_pk, commit, other_sk),
                 FR_OK);
    uint8_t w[FRI_AGG_SA_ADVERTBYTES];
    size_t  wl;
    cr_assert_eq(fri_secagg_advert_encode(w, sizeof(w), &wl, &adv), FR_OK);
    cr_assert_eq(fri_agg_sa_advert(a, 0, pk, t.round, id_pk, w, wl),
                 FR_ECRYPTO);
    // Non-members are refused.
    uint8_t stranger[32];
    memset(stranger, 9, sizeof(stranger));
    cr_assert_eq(fri_agg_sa_advert(a, 0, stranger, t.round, id_pk, w, wl),
                 FR_EDENIED);
    // The advert phase times out with too few members: abandoned.
    fri_agg_tick(a, 5000);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.rounds_abandoned, 1);
    fri_agg_destroy(a);
    char e[256];
    fri_agg_config b;
    agg_config(&b, 4, FRI_AGG_SECAGG_FULL);
    b.algo = FRI_AGG_VBMF; // per-round VBMF statistics are not masked
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_EINVAL);
    cr_assert(strstr(e,
                  "secure-agg needs algo grad, als (explicit or "
                  "implicit) or vbmf with stats-latest")
            != NULL,
        "%s", e);
    // iALS statistics are masked too (SPEC S1c), bounded by alpha *
    // rating-max: it must be > 0.
    b.algo     = FRI_AGG_ALS;
    b.implicit = 1;
    b.clip     = 0.0f;
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_OK, "%s", e);
    b.alpha = 0.0f;
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_EINVAL);
    cr_assert(strstr(e, "alpha > 0") != NULL, "%s", e);
    b.alpha = 1.0f;
    b.k     = 44; // a masked iALS row of 990 + 45 values
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_EINVAL);
    b.k = 43;
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_OK, "%s", e);
    b.k    = K;
    b.clip = 1.0f;
    // Explicit ALS is bounded by the per-device bounds, not by clip.
    b.implicit = 0;
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_EINVAL);
    cr_assert(strstr(e, "not clip") != NULL, "%s", e);
    b.clip = 0.0f;
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_OK, "%s", e);
    b.k = 43; // a masked row of 990 + 44 values: above the wire's width
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_EINVAL);
    cr_assert(strstr(e, "k <= 42") != NULL, "%s", e);
    agg_config(&b, 0, FRI_AGG_SECAGG_FULL);
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_EINVAL);
    cr_assert(strstr(e, "clients-per-round in 2..65535") != NULL, "%s", e);
    agg_config(&b, 4, FRI_AGG_SECAGG_PLUS);
    b.clip = 0;
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_EINVAL);
    cr_assert(strstr(e, "secure-agg needs clip > 0") != NULL, "%s", e);
    agg_config(&b, 1000, FRI_AGG_SECAGG_FULL);
    b.clip = 1e6f;
    cr_assert_eq(fri_agg_config_check(&b, e, sizeof(e)), FR_EINVAL);
    cr_assert(strstr(e, "too large for a cohort") != NULL, "%s", e);
}
