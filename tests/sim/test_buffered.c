// fedrec-sim in the asynchronous buffered mode (--buffer K): with one full
// buffer per tick and no slow device it is the synchronous run exactly;
// with slow devices the staleness is real (reports refused as stale, mean
// staleness > 0) and the model still converges to the synchronous run's
// accuracy; seeded runs repeat on two threads.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void
cfg(fri_sim_config *c, uint32_t rounds)
{
    fri_sim_config_init(c);
    char err[160];
    cr_assert_eq(fri_synth_config_parse(&c->synth,
                     "users=300,items=80,density=0.15,"
                     "seed=5",
                     err, sizeof(err)),
        FR_OK, "%s", err);
    c->rounds            = rounds;
    c->rounds_set        = 1;
    c->clients_per_round = 30;
    c->threads           = 1;
    c->seed              = 3;
    c->reference         = 0;
    c->progress          = 0;
    c->transport         = FRI_SIM_DIRECT;
    c->eval_every        = 0; // only after the last round
    c->eval_every_set    = 1;
    c->priv.secagg_set   = 1; // plain aggregation for both modes
    c->priv.secagg       = 0;
}

typedef struct result {
    fri_sim_round   rounds[64];
    fri_sim_summary s;
    uint8_t         hash[32];
} result;

static void
run(fri_sim_config *c, result *r)
{
    fri_sim_pop pop;
    char        err[512] = "";
    memset(r, 0, sizeof(*r));
    cr_assert_eq(
        fri_sim_pop_load(&pop, c, err, sizeof(err)), FR_OK, "%s", err);
    fri_sim_config_resolve(c, &pop);
    cr_assert_leq(c->rounds, 64);
    fr_err e = fri_sim_run(
        c, &pop, r->rounds, &r->s, r->hash, NULL, NULL, err, sizeof(err));
    fri_sim_pop_free(&pop);
    cr_assert_eq(e, FR_OK, "fri_sim_run: %s", err);
}

// K = the arrivals of a tick, nobody slow: one step per tick on exactly
// the reports a synchronous round gets, hence the same model.
Test(sim_buffered, one_full_buffer_per_tick_is_the_synchronous_run)
{
    fri_sim_config c;
    result         a, b;
    cfg(&c, 6);
    run(&c, &a);
    cfg(&c, 6);
    c.buffer    = 30;
    c.slow      = 0.0;
    c.transport = FRI_SIM_INPROC; // the real wire, sessions kept open
    run(&c, &b);
    cr_assert_eq(b.s.total_steps, 6u);
    cr_assert_eq(b.s.total_stale, 0u);
    cr_assert_eq(b.s.mean_staleness, 0.0);
    cr_assert_eq(b.s.total_clients, a.s.total_clients);
    cr_assert_eq(memcmp(a.hash, b.hash, 32), 0,
        "buffered (one buffer per tick) and synchronous models "
        "differ: rmse %g vs %g",
        b.s.last.rmse, a.s.last.rmse);
}

// Slow devices report 1..3 ticks late, several steps happen per tick:
// reports are really stale (some beyond S and refused), and the buffered
// model reaches the synchronous run's accuracy over the same ticks.
Test(sim_buffered, stale_reports_and_convergence)
{
    fri_sim_config c;
    result         sync, buf, buf2;
    cfg(&c, 30);
    run(&c, &sync);
    cfg(&c, 30);
    c.buffer        = 10;
    c.max_staleness = 3;
    c.slow          = 0.4;
    c.slow_ticks    = 3;
    c.threads       = 2;
    run(&c, &buf);
    cr_assert_gt(buf.s.total_steps, 30u, "steps %llu",
        (unsigned long long)buf.s.total_steps);
    cr_assert_gt(buf.s.total_stale, 0u, "no report was stale beyond S");
    cr_assert_gt(
        buf.s.mean_staleness, 0.5, "mean staleness %g", buf.s.mean_staleness);
    cr_assert(buf.s.last.evaluated && isfinite(buf.s.last.rmse));
    // Converged: within 2% of the synchronous run.
    cr_assert_lt(buf.s.last.rmse, 1.02 * sync.s.last.rmse,
        "buffered rmse %g vs synchronous %g", buf.s.last.rmse,
        sync.s.last.rmse);
    uint64_t stale_sum = 0, steps = 0;
    for (uint32_t r = 0; r < c.rounds; r++) {
        stale_sum += buf.rounds[r].staleness_sum;
        steps += buf.rounds[r].steps;
    }
    cr_assert_eq(steps, buf.s.total_steps);
    cr_assert_float_eq(buf.s.mean_staleness,
        (double)stale_sum / (double)buf.s.total_clients, 1e-9);
    // Seeded: the same run on two threads repeats exactly.
    run(&c, &buf2);
    cr_assert_eq(memcmp(buf.hash, buf2.hash, 32), 0);
    cr_assert_eq(buf2.s.total_stale, buf.s.total_stale);
}

Test(sim_buffered, secure_aggregation_is_refused)
{
    fri_sim_config c;
    char           err[512] = "";
    int            help     = 0;
    fri_sim_config_init(&c);
    char *argv[]
        = { "fedrec-sim", "--buffer", "8", "--secure-agg", "full", NULL };
    cr_assert_eq(
        fri_sim_parse_args(&c, 5, argv, &help, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "--buffer") != NULL, "%s", err);
}
