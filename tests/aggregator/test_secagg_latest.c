// Latest statistics under secure aggregation (docs/SECAGG.md §9): real
// client handles against fri_agg_handle, partial cohorts. The masked
// deltas give the plain latest-statistics model within fixed-point error
// (VBMF and ALS); every masked UPDATE has one size whatever the member
// rated; a member that drops out before its masked input does not commit
// its contribution, and its next delta (against the contribution it still
// holds) keeps the running sum exact; an abandoned round commits nothing.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg.h"
#include "dataset.h"
#include "e2e_harness.h"
#include "model_diff.h"
#include "sa.h"
#include "state_dir.h"
#include "fedrec/client.h"

#define NU 12
#define NIT 30
#define KK 3
#define COHORT 6
#define DEADLINE 2000

typedef e2e_world world;

static void
agg_config(fri_agg_config *cfg, const world *w, fri_agg_algo algo,
           int secagg);

static void
world_init(world *w, fri_agg_algo algo, int secagg)
{
    memset(w, 0, sizeof(*w));
    e2e_synth(&w->d, &w->by_user, NU, NIT, 0.4, 23);
    fri_agg_config c;
    agg_config(&c, w, algo, secagg);
    char err[256];
    cr_assert_eq(
        fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s", err);
    e2e_clients_create(w, NU, 900, 11, 0.0f);
    e2e_reply_alloc(w);
}

static void
agg_config(fri_agg_config *cfg, const world *w, fri_agg_algo algo,
           int secagg)
{
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = w->d.n_items;
    c.k                 = KK;
    c.algo              = algo;
    c.stats_latest      = 1;
    c.clients_per_round = COHORT;
    c.min_clients       = 2;
    c.round_deadline_ms = DEADLINE;
    c.robust            = 0; // deltas: no per-device bounds either way
    c.secagg            = secagg ? FRI_AGG_SECAGG_PLUS : FRI_AGG_SECAGG_OFF;
    c.has_identity      = 1;
    memset(c.identity_seed, 5, sizeof(c.identity_seed));
    *cfg = c;
}

// One plain round of the given users (those with drop[j] set stay away);
// the round closes with its cohort or at its deadline.
static int
plain_round(world *w, const uint32_t *users, const uint8_t *drop, uint64_t t0)
{
    int n = 0;
    for (uint32_t j = 0; j < COHORT; j++) {
        if (drop != NULL && drop[j]) {
            continue;
        }
        n += e2e_world_checkin(w, users[j], t0) == FR_CHECKIN_CONTRIBUTED;
    }
    fri_agg_tick(w->a, t0 + DEADLINE + 1);
    return n;
}

static int
secure_round(world *w, const uint32_t *users, const uint8_t *drop, uint64_t t0,
    size_t *len, fr_checkin_status *st)
{
    return e2e_secure_round(w, users, COHORT, drop, NULL, t0, len, st);
}

// Largest difference between the two worlds' models (and the model's own
// scale in *scale).
static double
model_diff(world *s, world *p, uint64_t want_version, double *scale)
{
    model_diff_out d = model_diff_of(s->a, p->a, NIT, KK);
    cr_assert_eq(d.va, want_version, "secure rounds completed: %llu",
        (unsigned long long)d.va);
    cr_assert_eq(d.vb, want_version, "plain rounds completed: %llu",
        (unsigned long long)d.vb);
    *scale = fmax(d.q_max, d.b_max);
    return d.worst;
}

static const uint32_t R_A[COHORT] = { 0, 1, 2, 3, 4, 5 };
static const uint32_t R_B[COHORT] = { 0, 1, 2, 6, 7, 8 };
static const uint32_t R_C[COHORT] = { 1, 3, 6, 9, 10, 11 };

// Census, first reports of 0..5, then a round in which user 1 (which
// committed in the round before) drops out before its masked input, then
// a round in which it reports again: its delta is against the
// contribution it still holds, which is what the aggregator holds for it.
static void
secure_equals_plain(fri_agg_algo algo)
{
    world *s = malloc(sizeof(*s)), *p = malloc(sizeof(*p));
    cr_assert(s != NULL && p != NULL);
    world_init(s, algo, 1);
    world_init(p, algo, 0);
    fr_checkin_status st[COHORT];
    size_t            len[COHORT] = { 0 };
    cr_assert_eq(secure_round(s, R_A, NULL, 10, NULL, st), COHORT);
    cr_assert_eq(plain_round(p, R_A, NULL, 10), COHORT);
    cr_assert_eq(secure_round(s, R_A, NULL, 10000, len, st), COHORT);
    cr_assert_eq(plain_round(p, R_A, NULL, 10000), COHORT);
    // Dense over every item: one size for every member.
    uint32_t nmin = NIT, nmax = 0;
    for (uint32_t j = 0; j < COHORT; j++) {
        uint32_t u = R_A[j];
        uint32_t n = (uint32_t)(s->by_user.ptr[u + 1] - s->by_user.ptr[u]);
        nmin       = n < nmin ? n : nmin;
        nmax       = n > nmax ? n : nmax;
        cr_assert_eq(len[j], len[0], "user %u sent %zu bytes, user 0 %zu", u,
            len[j], len[0]);
    }
    cr_assert(nmin < nmax, "the members rate different numbers of items");
    size_t w = (KK + 1) * (KK + 2) / 2 + KK + 1;
    cr_assert_geq(len[0], 4 * (size_t)NIT * w + 8);
    uint8_t drop[COHORT] = { 0, 1, 0, 0, 0, 0 }; // user 1
    cr_assert_eq(secure_round(s, R_B, drop, 20000, NULL, st), COHORT - 1);
    cr_assert_eq(st[1], FR_CHECKIN_RUNNING);
    cr_assert_eq(plain_round(p, R_B, drop, 20000), COHORT - 1);
    cr_assert_eq(secure_round(s, R_C, NULL, 30000, NULL, st), COHORT);
    cr_assert_eq(plain_round(p, R_C, NULL, 30000), COHORT);
    double scale = 0.0, worst = model_diff(s, p, 4, &scale);
    cr_log_info("latest statistics (%s), secure vs plain after 4 rounds with "
                "a dropout: max diff %.3g (model scale %.3g), masked UPDATE "
                "%zu bytes",
        algo == FRI_AGG_VBMF ? "VBMF" : "ALS", worst, scale, len[0]);
    cr_assert(scale > 0.05, "the plain solve did nothing");
    // f = 24 for 6 members: 2^-25 of a scale (<= 2 U^2 = 200) per word
    // and member; the solves amplify it a little.
    cr_assert(worst < 5e-4, "secure and plain models differ by %g", worst);
    e2e_world_free(s);
    e2e_world_free(p);
    free(s);
    free(p);
}

Test(agg_secagg_latest, vbmf_masked_deltas_equal_plain_with_a_dropout)
{
    secure_equals_plain(FRI_AGG_VBMF);
}

Test(agg_secagg_latest, als_masked_deltas_equal_plain_with_a_dropout)
{
    secure_equals_plain(FRI_AGG_ALS);
}

// A secure and a plain world (VBMF) after the census and the first
// reports of R_A.
static void
twin_worlds_first_reports(world **sp, world **pp)
{
    world *s = malloc(sizeof(*s)), *p = malloc(sizeof(*p));
    cr_assert(s != NULL && p != NULL);
    world_init(s, FRI_AGG_VBMF, 1);
    world_init(p, FRI_AGG_VBMF, 0);
    fr_checkin_status st[COHORT];
    for (uint64_t t = 10; t <= 10000; t += 9990) {
        cr_assert_eq(secure_round(s, R_A, NULL, t, NULL, st), COHORT);
        cr_assert_eq(plain_round(p, R_A, NULL, t), COHORT);
    }
    *sp = s;
    *pp = p;
}

// A round in which all but one member drop out before their masked input
// is abandoned (fewer than min-clients survive): the one that sent its
// delta learns that the round did not apply it (its check-in fails) and
// keeps its old contribution, so the next round equals a plain run in
// which the abandoned round never happened.
Test(agg_secagg_latest, abandoned_round_commits_nothing)
{
    world *s, *p;
    twin_worlds_first_reports(&s, &p);
    fr_checkin_status st[COHORT];
    uint8_t drop[COHORT] = { 0, 1, 1, 1, 1, 1 };
    cr_assert_eq(secure_round(s, R_A, drop, 20000, NULL, st), 0);
    cr_assert_eq(st[0], FR_CHECKIN_FAILED, "status %d", (int)st[0]);
    float    mu, bi[NIT], Q[NIT * KK];
    uint64_t ver = 0;
    fri_agg_model_copy(s->a, &mu, bi, NIT, Q, NIT * KK, &ver);
    cr_assert_eq(ver, 2, "the round with one survivor completed");
    cr_assert_eq(secure_round(s, R_A, NULL, 30000, NULL, st), COHORT);
    cr_assert_eq(plain_round(p, R_A, NULL, 30000), COHORT);
    double scale = 0.0, worst = model_diff(s, p, 3, &scale);
    cr_log_info(
        "abandoned round: max diff %.3g (model scale %.3g)", worst, scale);
    cr_assert(worst < 5e-4, "secure and plain models differ by %g", worst);
    e2e_world_free(s);
    e2e_world_free(p);
    free(s);
    free(p);
}

// What a member's outcome poll (SA_POLL want UPDATE, after its masked
// delta) can learn, for any round id it sends: applied only for a
// survivor of the last completed round; a round that is not over yet or
// lies in the future is a state error, without a retry; any other round
// or key is "not applied" (its delta stays pending).
Test(agg_secagg_latest, outcome_poll_answers_every_round_id)
{
    world *s = malloc(sizeof(*s));
    cr_assert_not_null(s);
    world_init(s, FRI_AGG_VBMF, 1);
    fr_checkin_status st[COHORT];
    cr_assert_eq(secure_round(s, R_A, NULL, 10, NULL, st), COHORT);
    cr_assert_eq(secure_round(s, R_A, NULL, 10000, NULL, st), COHORT);
    fr_checkin_info info;
    fr_client_checkin_info_get(s->c[R_A[0]], &info);
    const uint64_t done = info.round; // the member's applied round
    fri_agg_metrics m;
    fri_agg_metrics_get(s->a, &m);
    cr_assert(m.round > done && m.round_open, "open %llu, done %llu",
              (unsigned long long) m.round, (unsigned long long) done);
    uint8_t member[FR_PUBLICKEYBYTES], outsider[FR_PUBLICKEYBYTES];
    fr_client_public_key(s->c[R_A[0]], member);
    fr_client_public_key(s->c[R_B[3]], outsider); // user 6: not in R_A
    uint32_t retry = 99;
    cr_assert_eq(fri_agg_sa_outcome(s->a, member, done, &retry), FR_OK);
    cr_assert_eq(retry, 0);
    cr_assert_eq(fri_agg_sa_outcome(s->a, outsider, done, &retry), FR_ELATE);
    cr_assert_eq(fri_agg_sa_outcome(s->a, member, done - 1, &retry),
                 FR_ELATE);
    cr_assert_eq(fri_agg_sa_outcome(s->a, member, 0, &retry), FR_ELATE);
    // The open round: ask again later.
    cr_assert_eq(fri_agg_sa_outcome(s->a, member, m.round, &retry), FR_OK);
    cr_assert_gt(retry, 0);
    retry = 99;
    cr_assert_eq(fri_agg_sa_outcome(s->a, member, m.round + 1, &retry),
                 FR_ESTATE);
    cr_assert_eq(fri_agg_sa_outcome(s->a, member, UINT64_MAX, &retry),
                 FR_ESTATE);
    cr_assert_eq(retry, 0);
    e2e_world_free(s);
    free(s);
}

// Mean rating of users us[0..n) as their clients hold them now.
static double
clients_mean(world *w, const uint32_t *us, size_t n, uint32_t extra_user,
             const float *extra_vals, size_t n_extra, uint32_t gone_user,
             uint32_t gone_item)
{
    double sum = 0.0, cnt = 0.0;
    for (size_t j = 0; j < n; j++) {
        uint32_t u = us[j];
        for (uint64_t t = w->by_user.ptr[u]; t < w->by_user.ptr[u + 1]; t++) {
            if (u == gone_user && w->by_user.idx[t] == gone_item) {
                continue;
            }
            sum += w->by_user.val[t];
            cnt += 1.0;
        }
        if (u == extra_user) {
            for (size_t e = 0; e < n_extra; e++) {
                sum += extra_vals[e];
                cnt += 1.0;
            }
        }
    }
    return sum / cnt;
}

// A member whose rated items change between reports (new ratings on the
// device, one removed) keeps contributing. Masked: its dense delta is the
// new contribution minus the old one slot by slot, so the running sum
// holds its new contribution at once (the global mean, the running
// rating sum over count, says so exactly). Plain (one Gram per update):
// the report retracts its old contribution and the next one sends the
// new one whole.
Test(agg_secagg_latest, member_whose_rated_items_change_keeps_contributing)
{
    world *s, *p;
    twin_worlds_first_reports(&s, &p);
    fr_checkin_status st[COHORT];
    // User 0 rates two items it had not rated; user 1 removes one.
    uint32_t new_items[2];
    size_t   nn = 0;
    for (uint32_t i = 0; i < NIT && nn < 2; i++) {
        int rated = 0;
        for (uint64_t t = s->by_user.ptr[0]; t < s->by_user.ptr[1]; t++) {
            rated |= s->by_user.idx[t] == i;
        }
        if (!rated) {
            new_items[nn++] = i;
        }
    }
    cr_assert_eq(nn, 2);
    const float vals[2] = {5.0f, 4.0f};
    uint32_t    gone    = s->by_user.idx[s->by_user.ptr[1]];
    world      *ws[2]   = {s, p};
    for (int w = 0; w < 2; w++) {
        for (size_t e = 0; e < 2; e++) {
            cr_assert_eq(fr_client_add(ws[w]->c[0], new_items[e], vals[e], 0),
                         FR_OK);
        }
        cr_assert_eq(fr_client_remove(ws[w]->c[1], gone), FR_OK);
    }
    cr_assert_eq(secure_round(s, R_A, NULL, 20000, NULL, st), COHORT);
    for (uint32_t j = 0; j < COHORT; j++) {
        cr_assert_eq(st[j], FR_CHECKIN_CONTRIBUTED, "member %u: %d (%s)", j,
                     (int) st[j], fr_client_errmsg(s->c[R_A[j]]));
    }
    cr_assert_eq(plain_round(p, R_A, NULL, 20000), COHORT);
    float    mu_s, mu_p;
    uint64_t ver = 0;
    fri_agg_model_copy(s->a, &mu_s, NULL, 0, NULL, 0, &ver);
    cr_assert_eq(ver, 3);
    fri_agg_model_copy(p->a, &mu_p, NULL, 0, NULL, 0, &ver);
    cr_assert_eq(ver, 3);
    double all = clients_mean(s, R_A, COHORT, 0, vals, 2, 1, gone);
    // Plain: users 0 and 1 retracted (their new contributions come next
    // time).
    double without01 = clients_mean(s, R_A + 2, COHORT - 2, 0, vals, 2, 1, gone);
    cr_log_info("mu: masked %.6f (expected %.6f), plain %.6f (expected %.6f)",
                (double) mu_s, all, (double) mu_p, without01);
    cr_assert(fabs(mu_s - all) < 1e-4, "masked mu %g, expected %g",
              (double) mu_s, all);
    cr_assert(fabs(mu_p - without01) < 1e-4, "plain mu %g, expected %g",
              (double) mu_p, without01);
    // The next round: both hold every member's new contribution, and the
    // masked and plain models agree again up to the history they took.
    cr_assert_eq(secure_round(s, R_A, NULL, 30000, NULL, st), COHORT);
    cr_assert_eq(plain_round(p, R_A, NULL, 30000), COHORT);
    fri_agg_model_copy(s->a, &mu_s, NULL, 0, NULL, 0, &ver);
    fri_agg_model_copy(p->a, &mu_p, NULL, 0, NULL, 0, &ver);
    cr_assert(fabs(mu_s - all) < 1e-4, "masked mu %g, expected %g",
              (double) mu_s, all);
    cr_assert(fabs(mu_p - all) < 1e-4, "plain mu %g, expected %g",
              (double) mu_p, all);
    e2e_world_free(s);
    e2e_world_free(p);
    free(s);
    free(p);
}

// Client u of w re-created on a state file (the app restarted): same
// identity and seed as the harness gives it; its ratings are added only
// when the file does not exist yet.
static void
open_on_state(world *w, uint32_t u, const char *path)
{
    fr_client_destroy(w->c[u]);
    w->c[u] = NULL;
    fr_client_config cc;
    e2e_client_config(w, u, 900, 11, &cc); // as world_init makes them
    cc.state_path = path;
    memset(cc.state_key, 0x5a, sizeof(cc.state_key));
    int fresh = access(path, F_OK) != 0;
    cr_assert_eq(fr_client_create(&w->c[u], &cc), FR_OK);
    if (fresh) {
        e2e_client_add_ratings(w, u, w->c[u]);
    }
}

// A device app that restarts between rounds (handle saved, destroyed and
// re-created from its state file) still takes its next delta against the
// contribution the aggregator holds for it: the state file keeps it. A
// device that lost it would send its whole contribution again and the
// running sum would count it twice (the global mean shows it).
static void
restart_keeps_contribution(int secagg)
{
    world *w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    world_init(w, FRI_AGG_VBMF, secagg);
    char dir[64], path[96];
    snprintf(dir, sizeof(dir), "/tmp/fr-restart-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/device0", dir);
    open_on_state(w, 0, path);
    fr_checkin_status st[COHORT];
    for (uint64_t t = 10; t <= 10000; t += 9990) {
        int n = secagg ? secure_round(w, R_A, NULL, t, NULL, st)
                       : plain_round(w, R_A, NULL, t);
        cr_assert_eq(n, COHORT);
    }
    cr_assert_eq(fr_client_save(w->c[0]), FR_OK);
    open_on_state(w, 0, path); // the app restarts
    int n = secagg ? secure_round(w, R_A, NULL, 20000, NULL, st)
                   : plain_round(w, R_A, NULL, 20000);
    cr_assert_eq(n, COHORT);
    float    mu;
    uint64_t ver = 0;
    fri_agg_model_copy(w->a, &mu, NULL, 0, NULL, 0, &ver);
    cr_assert_eq(ver, 3);
    double all = clients_mean(w, R_A, COHORT, UINT32_MAX, NULL, 0, UINT32_MAX,
                              UINT32_MAX);
    cr_log_info("after a device restart (%s): mu %.6f, expected %.6f",
                secagg ? "masked" : "plain", (double) mu, all);
    cr_assert(fabs(mu - all) < 1e-4, "mu %g, expected %g", (double) mu, all);
    unlink(path);
    rmdir(dir);
    e2e_world_free(w);
    free(w);
}

Test(agg_secagg_latest, device_restart_keeps_its_contribution_masked)
{
    restart_keeps_contribution(1);
}

Test(agg_secagg_latest, device_restart_keeps_its_contribution_plain)
{
    restart_keeps_contribution(0);
}

// The aggregator restarts between rounds (checkpoint, destroy, create on
// the same --state dir): the checkpoint holds the running sum of every
// device's latest statistics, so the devices' next deltas (taken against
// what they committed) land on the sum they were taken against and the
// global mean stays exact. Without it the restarted aggregator adds the
// deltas to nothing.
// A plain device whose record differs from what the aggregator holds for
// it (here: its state was lost, so it sends its whole contribution again,
// which the running sum would count twice) is put back in step: the
// aggregator takes its standing contribution out, answers FR_ERESYNC, and
// the device's next report, whole, makes the sum exact again.
Test(agg_secagg_latest, plain_device_that_lost_its_record_is_put_back_in_step)
{
    world *w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    world_init(w, FRI_AGG_VBMF, 0);
    for (uint64_t t = 10; t <= 10000; t += 9990) {
        cr_assert_eq(plain_round(w, R_A, NULL, t), COHORT);
    }
    char dir[64], path[96];
    snprintf(dir, sizeof(dir), "/tmp/fr-resync-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/device0", dir);
    open_on_state(w, 0, path); // a fresh state: no record of what it sent
    cr_assert_eq(plain_round(w, R_A, NULL, 20000), COHORT - 1,
        "the device out of step was not refused");
    cr_assert(strstr(fr_client_errmsg(w->c[0]), "FR_ERESYNC") != NULL,
        "device 0: %s", fr_client_errmsg(w->c[0]));
    cr_assert_eq(plain_round(w, R_A, NULL, 30000), COHORT);
    float    mu;
    uint64_t ver = 0;
    fri_agg_model_copy(w->a, &mu, NULL, 0, NULL, 0, &ver);
    cr_assert_eq(ver, 4);
    double all = clients_mean(
        w, R_A, COHORT, UINT32_MAX, NULL, 0, UINT32_MAX, UINT32_MAX);
    cr_log_info("after a device lost its record (plain): mu %.6f, expected "
                "%.6f",
        (double)mu, all);
    cr_assert(fabs(mu - all) < 1e-4, "mu %g, expected %g", (double)mu, all);
    unlink(path);
    rmdir(dir);
    e2e_world_free(w);
    free(w);
}

static void
aggregator_restart_keeps_running_sum(int secagg)
{
    world *w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    memset(w, 0, sizeof(*w));
    e2e_synth(&w->d, &w->by_user, NU, NIT, 0.4, 23);
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/fr-aggrestart-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    fri_agg_config c;
    agg_config(&c, w, FRI_AGG_VBMF, secagg);
    c.state_dir = dir;
    char err[256];
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    e2e_clients_create(w, NU, 900, 11, 0.0f);
    e2e_reply_alloc(w);
    // The same rounds without a restart.
    world *tw = malloc(sizeof(*tw));
    cr_assert_not_null(tw);
    world_init(tw, FRI_AGG_VBMF, secagg);
    fr_checkin_status st[COHORT];
    for (uint64_t t = 10; t <= 30000; t += 9990) {
        int n = secagg ? secure_round(tw, R_A, NULL, t, NULL, st)
                       : plain_round(tw, R_A, NULL, t);
        cr_assert_eq(n, COHORT);
    }
    for (uint64_t t = 10; t <= 10000; t += 9990) {
        int n = secagg ? secure_round(w, R_A, NULL, t, NULL, st)
                       : plain_round(w, R_A, NULL, t);
        cr_assert_eq(n, COHORT);
    }
    fri_agg_destroy(w->a);
    w->a = NULL;
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    for (uint64_t t = 20000; t <= 30000; t += 9990) {
        int n = secagg ? secure_round(w, R_A, NULL, t, NULL, st)
                       : plain_round(w, R_A, NULL, t);
        cr_assert_eq(n, COHORT);
    }
    double scale = 0.0, worst = model_diff(w, tw, 4, &scale);
    cr_log_info("aggregator restart (%s): max diff to the run without it "
                "%.3g (model scale %.3g)",
                secagg ? "masked" : "plain", worst, scale);
    cr_assert(scale > 0.05);
    cr_assert(worst < 1e-5, "restarted and uninterrupted models differ by %g",
              worst);
    e2e_world_free(tw);
    free(tw);
    float    mu;
    uint64_t ver = 0;
    fri_agg_model_copy(w->a, &mu, NULL, 0, NULL, 0, &ver);
    cr_assert_eq(ver, 4, "the rounds after the restart did not complete");
    double all = clients_mean(w, R_A, COHORT, UINT32_MAX, NULL, 0, UINT32_MAX,
                              UINT32_MAX);
    cr_log_info("after an aggregator restart (%s): mu %.6f, expected %.6f",
                secagg ? "masked" : "plain", (double) mu, all);
    cr_assert(fabs(mu - all) < 1e-4, "mu %g, expected %g", (double) mu, all);
    e2e_world_free(w);
    free(w);
    state_dir_remove(dir);
}

Test(agg_secagg_latest, aggregator_restart_keeps_running_sum_masked)
{
    aggregator_restart_keeps_running_sum(1);
}

Test(agg_secagg_latest, aggregator_restart_keeps_running_sum_plain)
{
    aggregator_restart_keeps_running_sum(0);
}

// A member whose masked delta was applied but which vanished before it
// asked for the round's outcome (the delta is in the running sum, still
// pending on the device) resolves it from its next SA_PARAMS, which names
// the round of its last applied delta: it commits, and its next delta is
// taken against the contribution the sum holds. Without that it would
// take it against the older one and the sum would keep a stale delta for
// good. With restart, the app also restarts in between: the pending
// contribution and its round are in the state file.
enum { SAME_APP, APP_RESTART, AGG_RESTART };

static void
vanish_before_outcome(int restart)
{
    world *s = malloc(sizeof(*s)), *p = malloc(sizeof(*p));
    cr_assert(s != NULL && p != NULL);
    char dir[64], path[96], adir[64];
    snprintf(dir, sizeof(dir), "/tmp/fr-vanish-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/device1", dir);
    snprintf(adir, sizeof(adir), "/tmp/fr-vanishagg-XXXXXX");
    cr_assert_not_null(mkdtemp(adir));
    fri_agg_config ac;
    char           err[256];
    if (restart == AGG_RESTART) {
        // The secure aggregator keeps checkpoints (the applied rounds too).
        memset(s, 0, sizeof(*s));
        e2e_synth(&s->d, &s->by_user, NU, NIT, 0.4, 23);
        agg_config(&ac, s, FRI_AGG_VBMF, 1);
        ac.state_dir = adir;
        cr_assert_eq(fri_agg_create(&s->a, &ac, 0, err, sizeof(err)), FR_OK,
                     "%s", err);
        e2e_clients_create(s, NU, 900, 11, 0.0f);
        e2e_reply_alloc(s);
    } else {
        world_init(s, FRI_AGG_VBMF, 1);
    }
    world_init(p, FRI_AGG_VBMF, 0);
    if (restart == APP_RESTART) {
        open_on_state(s, 1, path);
    }
    fr_checkin_status st[COHORT];
    for (uint64_t t = 10; t <= 10000; t += 9990) {
        cr_assert_eq(secure_round(s, R_A, NULL, t, NULL, st), COHORT);
        cr_assert_eq(plain_round(p, R_A, NULL, t), COHORT);
    }
    // User 1 vanishes right after its masked input: counted, never told.
    uint8_t vanish[COHORT] = { 0, 1, 0, 0, 0, 0 };
    cr_assert_eq(e2e_secure_round(s, R_B, COHORT, NULL, vanish, 20000, NULL,
                                  st),
                 COHORT - 1);
    cr_assert_eq(plain_round(p, R_B, NULL, 20000), COHORT);
    if (restart == APP_RESTART) {
        cr_assert_eq(fr_client_save(s->c[1]), FR_OK);
        open_on_state(s, 1, path); // the app restarts
    } else if (restart == AGG_RESTART) {
        // The aggregator restarts from its checkpoint of that round.
        fri_agg_destroy(s->a);
        s->a = NULL;
        cr_assert_eq(fri_agg_create(&s->a, &ac, 0, err, sizeof(err)), FR_OK,
                     "%s", err);
    }
    // R_C and R_A hold user 1 again: it resolves, then reports.
    cr_assert_eq(secure_round(s, R_C, NULL, 30000, NULL, st), COHORT);
    cr_assert_eq(plain_round(p, R_C, NULL, 30000), COHORT);
    cr_assert_eq(secure_round(s, R_A, NULL, 40000, NULL, st), COHORT);
    cr_assert_eq(plain_round(p, R_A, NULL, 40000), COHORT);
    double scale = 0.0, worst = model_diff(s, p, 5, &scale);
    cr_log_info("member vanished before the outcome (%s): secure vs plain "
                "max diff %.3g (model scale %.3g)",
                restart == APP_RESTART   ? "app restarted"
                : restart == AGG_RESTART ? "aggregator restarted"
                                         : "same app",
                worst, scale);
    cr_assert(scale > 0.05, "the plain solve did nothing");
    cr_assert(worst < 5e-4, "secure and plain models differ by %g", worst);
    unlink(path);
    rmdir(dir);
    e2e_world_free(s);
    e2e_world_free(p);
    free(s);
    free(p);
    state_dir_remove(adir);
}

Test(agg_secagg_latest, member_vanishing_before_the_outcome_resolves_it)
{
    vanish_before_outcome(SAME_APP);
}

Test(agg_secagg_latest, member_vanishing_before_the_outcome_restarts)
{
    vanish_before_outcome(APP_RESTART);
}

// The aggregator restarts between the round that applied the vanished
// member's delta and its next one: the applied rounds come back from the
// checkpoint (format 5).
Test(agg_secagg_latest, member_vanishing_before_the_outcome_aggregator_restarts)
{
    vanish_before_outcome(AGG_RESTART);
}

// Devices that verify every neighbour's advert signature themselves
// (fr_client_config.verify_adverts = 1) and devices that leave it to the
// aggregator (the default) run the same rounds to the same model: the
// aggregator verified every advert on arrival either way.
Test(secagg_latest, verify_adverts_on_the_device_or_not_same_model)
{
    world *d = malloc(sizeof(*d)), *v = malloc(sizeof(*v));
    cr_assert(d != NULL && v != NULL);
    world_init(d, FRI_AGG_VBMF, 1);
    memset(v, 0, sizeof(*v));
    e2e_synth(&v->d, &v->by_user, NU, NIT, 0.4, 23);
    fri_agg_config c;
    agg_config(&c, v, FRI_AGG_VBMF, 1);
    char err[256];
    cr_assert_eq(fri_agg_create(&v->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    for (uint32_t u = 0; u < NU; u++) {
        fr_client_config cc;
        e2e_client_config(v, u, 900, 11, &cc);
        cc.verify_adverts = 1;
        cr_assert_eq(fr_client_create(&v->c[u], &cc), FR_OK);
        v->n_users = u + 1;
        e2e_client_add_ratings(v, u, v->c[u]);
    }
    e2e_reply_alloc(v);
    fr_checkin_status st[COHORT];
    cr_assert_eq(secure_round(d, R_A, NULL, 10, NULL, st), COHORT);
    cr_assert_eq(secure_round(v, R_A, NULL, 10, NULL, st), COHORT);
    cr_assert_eq(secure_round(d, R_B, NULL, 10000, NULL, st), COHORT);
    cr_assert_eq(secure_round(v, R_B, NULL, 10000, NULL, st), COHORT);
    double scale = 0.0;
    double worst = model_diff(d, v, 2, &scale);
    cr_assert(scale > 0.01, "the model did not train");
    cr_assert(worst < 1e-6, "differ by %g", worst);
    // Only 0 and 1.
    fr_client_config cc;
    e2e_client_config(v, 0, 900, 11, &cc);
    cc.verify_adverts = 2;
    fr_client *bad    = NULL;
    cr_assert_eq(fr_client_create(&bad, &cc), FR_EINVAL);
    e2e_world_free(d);
    e2e_world_free(v);
    free(d);
    free(v);
}

