// fedrec-sim --algo vbmf: the federated run over the real client and
// aggregator reproduces the centralized fri_train_vbmf (census round + the
// same number of sweeps) on the same split, and beats federated ALS.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "sim.h"

static void
config(fri_sim_config *c, fri_sim_algo algo)
{
    fri_sim_config_init(c);
    char err[160];
    cr_assert_eq(fri_synth_config_parse(&c->synth,
                     "users=300,items=120,density=0.12,"
                     "seed=5",
                     err, sizeof(err)),
        FR_OK, "%s", err);
    c->algo       = algo;
    c->rounds     = algo == FRI_SIM_VBMF ? 8 : 7;
    c->threads    = 2;
    c->transport  = FRI_SIM_DIRECT;
    c->eval_every = 0;
    c->progress   = 0;
    // Exact reproduction of the centralized trainers: without the robust
    // bounds, which clip (a few) honest residuals by design.
    c->poison.robust = 0;
}

static double
run(const fri_sim_config *c, fri_sim_summary *s)
{
    fri_sim_pop   pop;
    fri_sim_round rounds[8];
    uint8_t       hash[32];
    char          err[512] = "";
    memset(s, 0, sizeof(*s));
    cr_assert_eq(
        fri_sim_pop_load(&pop, c, err, sizeof(err)), FR_OK, "%s", err);
    fr_err e
        = fri_sim_run(c, &pop, rounds, s, hash, NULL, NULL, err, sizeof(err));
    cr_assert_eq(e, FR_OK, "fri_sim_run: %s", err);
    cr_assert_eq(fri_sim_reference(c, &pop, s), FR_OK);
    fri_sim_pop_free(&pop);
    return s->last.rmse;
}

Test(sim_vbmf, reproduces_centralized_vbmf)
{
    fri_sim_config  c;
    fri_sim_summary s, sa;
    config(&c, FRI_SIM_VBMF);
    double fed = run(&c, &s);
    cr_assert(s.has_reference);
    cr_assert(s.ref_vbmf_rmse > 0.0);
    // Devices refit against the final items before scoring; centralized
    // scores its last sweep's users: a small difference remains.
    cr_assert(fabs(fed - s.ref_vbmf_rmse) < 0.002, "federated %f vs %f", fed,
        s.ref_vbmf_rmse);
    config(&c, FRI_SIM_ALS);
    double als = run(&c, &sa);
    cr_assert(fed < als, "vbmf %f not below als %f", fed, als);
}

Test(sim_vbmf, cli_default_is_vbmf_for_explicit)
{
    fri_sim_config c;
    fri_sim_config_init(&c);
    char  err[256];
    int   help    = 0;
    char *argv1[] = { "fedrec-sim", NULL };
    cr_assert_eq(fri_sim_parse_args(&c, 1, argv1, &help, err, sizeof(err)),
        FR_OK, "%s", err);
    cr_assert_eq(c.algo, FRI_SIM_VBMF);
    cr_assert_eq(c.rounds, FRI_SIM_VBMF_ROUNDS);
    fri_sim_config_init(&c);
    char *argv2[] = { "fedrec-sim", "--loss", "implicit", NULL };
    cr_assert_eq(fri_sim_parse_args(&c, 3, argv2, &help, err, sizeof(err)),
        FR_OK, "%s", err);
    cr_assert_eq(c.algo, FRI_SIM_ALS);
    fri_sim_config_init(&c);
    char *argv3[] = { "fedrec-sim", "--algo", "vbmf", "--rounds", "5", NULL };
    cr_assert_eq(fri_sim_parse_args(&c, 5, argv3, &help, err, sizeof(err)),
        FR_OK, "%s", err);
    cr_assert_eq(c.rounds, 5);
    fri_sim_config_init(&c);
    char *argv4[]
        = { "fedrec-sim", "--algo", "vbmf", "--loss", "implicit", NULL };
    cr_assert_eq(
        fri_sim_parse_args(&c, 5, argv4, &help, err, sizeof(err)), FR_EINVAL);
}

static double
run_rounds(const fri_sim_config *c)
{
    fri_sim_pop     pop;
    fri_sim_round   rounds[40];
    fri_sim_summary s;
    uint8_t         hash[32];
    char            err[512] = "";
    cr_assert(c->rounds <= 40);
    memset(&s, 0, sizeof(s));
    cr_assert_eq(
        fri_sim_pop_load(&pop, c, err, sizeof(err)), FR_OK, "%s", err);
    fr_err e
        = fri_sim_run(c, &pop, rounds, &s, hash, NULL, NULL, err, sizeof(err));
    cr_assert_eq(e, FR_OK, "fri_sim_run: %s", err);
    fri_sim_pop_free(&pop);
    return s.last.rmse;
}

// Partial cohorts with dropout: with the sum of every device's latest
// statistics (devices send deltas), VBMF lands near the full-participation
// run, unlike solving from each round's cohort alone.
Test(sim_vbmf, latest_statistics_partial_cohorts_with_dropout)
{
    fri_sim_config c;
    config(&c, FRI_SIM_VBMF);
    double full = run_rounds(&c);
    config(&c, FRI_SIM_VBMF);
    c.fraction     = 0.25;
    c.dropout      = 0.1;
    c.rounds       = 30;
    c.stats_latest = 1;
    double latest  = run_rounds(&c);
    // (Solving from each round's cohort alone: 0.864 here; latest 0.834,
    // full participation 0.824.)
    cr_assert(latest < full * 1.02, "latest %f vs full %f", latest, full);
}
