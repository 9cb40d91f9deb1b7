// Poisoning by malicious devices (sim/poison.h) against the aggregator's
// robust bounds (aggregator/robust.h): the attacks work without the
// bounds, the bounds contain them, and cost little on honest data.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void
small_config(fri_sim_config *c)
{
    fri_sim_config_init(c);
    char err[160];
    cr_assert_eq(fri_synth_config_parse(&c->synth,
                     "users=300,items=120,density=0.1,"
                     "seed=3",
                     err, sizeof(err)),
        FR_OK, "%s", err);
    c->algo      = FRI_SIM_VBMF;
    c->rounds    = 6;
    c->threads   = 2;
    c->seed      = 42;
    c->reference = 0;
    c->progress  = 0;
    c->transport = FRI_SIM_DIRECT;
}

typedef struct result {
    fri_sim_round   rounds[16];
    fri_sim_summary s;
    uint8_t         hash[32];
} result;

static fr_err
run(const fri_sim_config *c, result *r, char *err, size_t cap)
{
    fri_sim_pop pop;
    memset(r, 0, sizeof(*r));
    cr_assert_eq(fri_sim_pop_load(&pop, c, err, cap), FR_OK, "%s", err);
    fr_err e = fri_sim_run(
        c, &pop, r->rounds, &r->s, r->hash, NULL, NULL, err, cap);
    fri_sim_pop_free(&pop);
    return e;
}

static void
run_ok(const fri_sim_config *c, result *r)
{
    char err[512] = "";
    cr_assert_eq(run(c, r, err, sizeof(err)), FR_OK, "fri_sim_run: %s", err);
}

Test(sim_poison, promotion_raises_exposure_and_robust_bounds_it)
{
    fri_sim_config c;
    result         clean, off, on;
    small_config(&c);
    c.poison.target_item = 100;
    run_ok(&c, &clean); // no attack: the keys are measured too
    c.poison.kind      = FRI_SIM_POISON_PROMOTE;
    c.poison.malicious = 0.02;
    c.poison.robust    = 0;
    run_ok(&c, &off);
    c.poison.robust = 1;
    run_ok(&c, &on);
    cr_assert(isfinite(clean.s.poison.target_er5));
    cr_assert_gt(clean.s.poison.target_users, 200u);
    cr_assert_eq(off.s.poison.malicious, 6u);
    cr_assert_eq(off.s.poison.poisoned, 6u * c.rounds);
    cr_assert_eq(on.s.poison.poisoned, 6u * c.rounds);
    cr_assert_geq(off.s.poison.target_er5, clean.s.poison.target_er5 + 0.5,
        "without defences: er5 %g vs %g clean", off.s.poison.target_er5,
        clean.s.poison.target_er5);
    cr_assert_leq(on.s.poison.target_er5, clean.s.poison.target_er5 + 0.1,
        "with defences: er5 %g vs %g clean", on.s.poison.target_er5,
        clean.s.poison.target_er5);
    cr_assert_geq(off.s.poison.target_hr10, off.s.poison.target_er5);
}

Test(sim_poison, robust_costs_little_on_honest_data)
{
    fri_sim_config c;
    small_config(&c);
    for (int algo = 0; algo < 3; algo++) {
        result on, off;
        c.algo          = algo == 0 ? FRI_SIM_VBMF
                     : algo == 1    ? FRI_SIM_ALS
                                    : FRI_SIM_GRAD;
        c.poison.robust = 1;
        run_ok(&c, &on);
        c.poison.robust = 0;
        run_ok(&c, &off);
        double a = on.s.last.rmse, b = off.s.last.rmse;
        cr_assert(isfinite(a) && isfinite(b));
        cr_assert_leq(
            fabs(a - b) / b, 0.01, "algo %d: rmse %g on, %g off", algo, a, b);
    }
}

// Untargeted attacks at 5%: each one harms the model without the bounds
// more than with them, and with them the RMSE stays near the honest one.
Test(sim_poison, untargeted_attacks_are_contained)
{
    fri_sim_config c;
    result         honest;
    small_config(&c);
    c.algo = FRI_SIM_ALS;
    run_ok(&c, &honest);
    const int kinds[] = { FRI_SIM_POISON_SCALE, FRI_SIM_POISON_SIGNFLIP,
        FRI_SIM_POISON_RANDOM };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        result on, off;
        c.poison.kind      = kinds[i];
        c.poison.malicious = 0.05;
        c.poison.robust    = 0;
        run_ok(&c, &off);
        c.poison.robust = 1;
        run_ok(&c, &on);
        double h = honest.s.last.rmse;
        fprintf(stderr, "kind %d: honest %g off %g on %g\n", kinds[i], h,
            off.s.last.rmse, on.s.last.rmse);
        cr_assert_lt(on.s.last.rmse, h * 1.02, "kind %d: on %g honest %g",
            kinds[i], on.s.last.rmse, h);
        if (kinds[i] == FRI_SIM_POISON_SCALE) {
            // S users' worth of statistics from one device cannot pass
            // the hard bounds (rating count, Gram scale): every one is
            // refused, with or without the robust bounds.
            cr_assert_eq(off.s.poison.poisoned, 0u);
            cr_assert_eq(off.s.poison.refused, off.s.poison.malicious * c.rounds);
            cr_assert_eq(on.s.poison.refused, on.s.poison.malicious * c.rounds);
            continue;
        }
        // Sign-flipped and random residuals inside the hard bounds pass
        // them (every crafted update is accepted) and harm the model
        // unless the robust bounds contain them.
        cr_assert_eq(off.s.poison.poisoned, off.s.poison.malicious * c.rounds);
        cr_assert_gt(off.s.last.rmse, h * 1.01, "kind %d: off %g honest %g",
            kinds[i], off.s.last.rmse, h);
        cr_assert_lt(on.s.last.rmse, off.s.last.rmse);
    }
}

// One device reporting 1e30 everywhere must not stop training: every
// round completes and the model stays useful. (The hard validation bounds
// of the aggregator and the robust bounds both stand in its way.)
Test(sim_poison, absurd_device_does_not_stop_training)
{
    fri_sim_config c;
    result         honest, r;
    small_config(&c);
    run_ok(&c, &honest);
    c.poison.kind      = FRI_SIM_POISON_ABSURD;
    c.poison.malicious = 0.01;
    run_ok(&c, &r);
    cr_assert_eq(r.s.poison.malicious, 3u);
    for (uint32_t i = 0; i < c.rounds; i++) {
        cr_assert_gt(r.rounds[i].clients, 250u, "round %u", i + 1);
    }
    cr_assert(isfinite(r.s.last.rmse));
    cr_assert_lt(r.s.last.rmse, honest.s.last.rmse * 1.05, "rmse %g vs %g",
        r.s.last.rmse, honest.s.last.rmse);
}

Test(sim_poison, target_outside_the_catalog_is_refused)
{
    fri_sim_config c;
    result         r;
    char           err[512] = "";
    small_config(&c);
    c.poison.target_item = 120;
    cr_assert_eq(run(&c, &r, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "target-item") != NULL, "%s", err);
}

static fr_err
parse(fri_sim_config *c, const char *const *args, int n, char *err, size_t cap)
{
    char *argv[16];
    int   help = 0;
    argv[0]    = "fedrec-sim";
    for (int i = 0; i < n; i++) {
        argv[i + 1] = (char *)args[i];
    }
    fri_sim_config_init(c);
    return fri_sim_parse_args(c, n + 1, argv, &help, err, cap);
}

Test(sim_poison, flags_parse_and_bad_values_are_refused)
{
    fri_sim_config c;
    char           err[256];
    const char    *ok[] = { "--attack", "promote", "--malicious", "0.05",
           "--target-item", "7", "--robust", "off", "--attack-scale", "3" };
    cr_assert_eq(parse(&c, ok, 10, err, sizeof(err)), FR_OK, "%s", err);
    cr_assert_eq(c.poison.kind, FRI_SIM_POISON_PROMOTE);
    cr_assert_float_eq(c.poison.malicious, 0.05, 1e-12);
    cr_assert_eq(c.poison.target_item, 7);
    cr_assert_eq(c.poison.robust, 0);
    cr_assert_float_eq(c.poison.scale, 3.0f, 1e-6);
    // Defaults: robust on, 1% malicious, no target; privacy attacks keep
    // their --attack values.
    const char *priv[] = { "--attack", "items", "--algo", "als" };
    cr_assert_eq(parse(&c, priv, 4, err, sizeof(err)), FR_OK, "%s", err);
    cr_assert_eq(c.poison.kind, FRI_SIM_POISON_NONE);
    cr_assert_eq(c.poison.robust, 1);
    cr_assert_neq(c.priv.attack, 0);
    const char *scale[] = { "--attack", "scale", "--algo", "als" };
    cr_assert_eq(parse(&c, scale, 4, err, sizeof(err)), FR_OK, "%s", err);
    cr_assert_float_eq(c.poison.malicious, 0.01, 1e-12);
    const char *const bad[][4] = {
        { "--attack", "bogus", NULL },
        { "--attack", "promote", NULL }, // no target
        { "--malicious", "0.05", NULL }, // no attack
        { "--attack", "scale", "--malicious", "0.6" }, // > 0.5
        { "--attack", "scale", "--malicious", "-0.1" },
        { "--target-item", "abc", NULL },
        { "--target-item", "-3", NULL },
        { "--robust", "maybe", NULL },
        { "--attack-scale", "0", NULL },
        { "--attack", "signflip", "--loss", "implicit" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int n  = bad[i][2] != NULL ? 4 : 2;
        err[0] = '\0';
        cr_assert_eq(parse(&c, bad[i], n, err, sizeof(err)), FR_EINVAL,
            "case %zu accepted", i);
        cr_assert_neq(err[0], '\0', "case %zu: no message", i);
    }
    cr_assert(strstr(fri_sim_usage(), "--target-item") != NULL);
    cr_assert(strstr(fri_sim_usage(), "--robust on|off") != NULL);
}
