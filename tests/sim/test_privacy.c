// fedrec-sim privacy flags on small synthetic populations: every defence
// runs, secure aggregation reproduces the plain model up to quantization,
// the item-inference attack is perfect on plain sparse updates and at
// chance under masking, epsilon grows with rounds, bad combinations are
// usage errors (exit 2).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sim.h"

#define SYN "users=40,items=60,k=3,density=0.2,seed=5"

typedef struct res {
    fri_sim_summary s;
    fri_sim_round   r[8];
    uint8_t         hash[32];
} res;

static void
run_sim(res *out, const char *extra)
{
    char  line[1024];
    char *argv[64];
    int   argc = 0;
    snprintf(line, sizeof(line),
             "fedrec-sim --synthetic " SYN " --algo grad --rounds 4 "
             "--no-reference --transport direct --lr 0.05 --threads 2 %s",
             extra);
    for (char *t = strtok(line, " "); t != NULL && argc < 63;
         t = strtok(NULL, " ")) {
        argv[argc++] = t;
    }
    argv[argc] = NULL;
    fri_sim_config c;
    int            help = 0;
    char           err[256];
    fri_sim_config_init(&c);
    cr_assert_eq(fri_sim_parse_args(&c, argc, argv, &help, err, sizeof(err)),
                 FR_OK, "%s: %s", extra, err);
    cr_assert(c.rounds <= 8);
    fri_sim_pop p;
    cr_assert_eq(fri_sim_pop_load(&p, &c, err, sizeof(err)), FR_OK, "%s",
                 err);
    memset(out, 0, sizeof(*out));
    cr_assert_eq(fri_sim_run(&c, &p, out->r, &out->s, out->hash, NULL, NULL,
                             err, sizeof(err)),
                 FR_OK, "%s: %s", extra, err);
    fri_sim_pop_free(&p);
}

Test(sim_privacy, every_flag_combination_runs)
{
    static const char *const combos[] = {
        "--attack both",
        "--clip 1 --attack both",
        "--pseudo-items 1 --attack both",
        "--secure-agg full --clip 1 --clients-per-round 12 --attack both",
        "--secure-agg plus --clip 1 --clients-per-round 12 --dropout 0.3",
        "--dp central --clip 1 --noise-multiplier 1 --clients-per-round 10",
        "--secure-agg full --clip 1 --dp distributed --noise-multiplier 1 "
        "--clients-per-round 10 --transport inproc",
    };
    res *r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    for (size_t i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
        run_sim(r, combos[i]);
        cr_assert(r->s.last.evaluated && isfinite(r->s.last.rmse) &&
                      r->s.last.rmse < 3.0,
                  "%s: rmse %f", combos[i], r->s.last.rmse);
        cr_assert(r->s.total_clients > 0, "%s", combos[i]);
        cr_log_info("%s: rmse %.4f auc %.3f eps %.3f", combos[i],
                    r->s.last.rmse, r->s.priv.attack_auc, r->s.priv.epsilon);
    }
    free(r);
}

// Plain and secure rounds with the same seed, both dividing by the expected
// cohort under (negligible) central DP noise: the models agree up to the
// fixed-point error.
Test(sim_privacy, secure_model_matches_plain)
{
    res *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    cr_assert(a != NULL && b != NULL);
    const char *dp = "--clip 1 --dp central --noise-multiplier 1e-6 "
                     "--clients-per-round 40";
    char        s[256];
    run_sim(a, dp);
    snprintf(s, sizeof(s), "%s --secure-agg full", dp);
    run_sim(b, s);
    cr_assert_eq(a->s.total_clients, b->s.total_clients);
    double d = fabs(a->s.last.rmse - b->s.last.rmse);
    cr_log_info("plain %.6f secure %.6f", a->s.last.rmse, b->s.last.rmse);
    cr_assert(d < 1e-3, "plain %f vs secure %f", a->s.last.rmse,
              b->s.last.rmse);
    free(a);
    free(b);
}

// Without DP, with Adam and penalties other than the client's defaults:
// secure aggregation equals plain FedAvg with the same clip. Pins three
// fixes: the masked sum steps only items the cohort rated (Adam's momentum
// would move every other item too), both paths divide by the summed
// clipped counts, and a device that leaves a secure round before its
// update predicts with the task's penalties, not the defaults.
Test(sim_privacy, secure_equals_plain_same_clip_adam)
{
    res *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    cr_assert(a != NULL && b != NULL);
    const char *base = "--clip 1 --server-opt adam --lr 0.03 --reg 2 "
                       "--reg-bias 1 --clients-per-round 5 --rounds 6";
    char        s[256];
    run_sim(a, base);
    snprintf(s, sizeof(s), "%s --secure-agg full", base);
    run_sim(b, s);
    cr_assert_eq(a->s.total_clients, b->s.total_clients);
    cr_assert(a->s.last.evaluated && b->s.last.evaluated);
    double d = fabs(a->s.last.rmse - b->s.last.rmse);
    cr_log_info("plain+clip %.7f secure %.7f", a->s.last.rmse,
                b->s.last.rmse);
    cr_assert(d < 1e-5 * a->s.last.rmse, "plain+clip %.7f vs secure %.7f",
              a->s.last.rmse, b->s.last.rmse);
    free(a);
    free(b);
}

// Explicit ALS under SecAgg+ with partial cohorts (carried statistics)
// and dropouts, over the real protocol (direct and inproc transports):
// the same RMSE as the plain run up to the fixed-point error, every round
// unmasked.
static void
run_als(res *out, const char *extra)
{
    char line[512];
    snprintf(line, sizeof(line),
             "--synthetic users=100,items=60,k=3,density=0.2,seed=5 "
             "--algo als --rounds 6 --fraction 0.2 --dropout 0.1 %s",
             extra);
    run_sim(out, line);
}

Test(sim_privacy, secure_als_reaches_plain_rmse)
{
    res *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    cr_assert(a != NULL && b != NULL);
    static const char *const tr[] = {"--transport direct",
                                     "--transport inproc"};
    for (int t = 0; t < 2; t++) {
        char s[256];
        run_als(a, tr[t]);
        snprintf(s, sizeof(s), "%s --secure-agg plus", tr[t]);
        run_als(b, s);
        cr_assert(a->s.last.evaluated && b->s.last.evaluated);
        cr_assert_eq(b->s.rounds_abandoned, 0);
        cr_assert_eq(a->s.total_clients, b->s.total_clients);
        double rel = fabs(b->s.last.rmse - a->s.last.rmse) / a->s.last.rmse;
        cr_log_info("%s: ALS plain %.6f secure %.6f (rel %.2g)", tr[t],
                    a->s.last.rmse, b->s.last.rmse, rel);
        cr_assert(a->s.last.rmse < 1.5, "plain ALS did not learn: %f",
                  a->s.last.rmse);
        cr_assert(rel < 0.02, "plain %f vs secure %f", a->s.last.rmse,
                  b->s.last.rmse);
    }
    // The rest of that gap is the plain path's robust bounds, which need a
    // per-device view: without them the two runs agree to quantization.
    run_als(a, "--robust off");
    run_als(b, "--robust off --secure-agg plus");
    double rel = fabs(b->s.last.rmse - a->s.last.rmse) / a->s.last.rmse;
    cr_log_info("--robust off: ALS plain %.7f secure %.7f", a->s.last.rmse,
                b->s.last.rmse);
    cr_assert(rel < 1e-4, "plain %f vs secure %f", a->s.last.rmse,
              b->s.last.rmse);
    free(a);
    free(b);
}

// iALS statistics masked (SPEC S1c): the masked rounds reach the plain
// rounds' model (without the robust bounds, which need a per-device
// view) up to the fixed-point error, every round unmasked, and the
// aggregator's item inference falls from perfect to chance.
Test(sim_privacy, secure_ials_matches_plain_and_hides_items)
{
    res *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    cr_assert(a != NULL && b != NULL);
    run_als(a, "--loss implicit --robust off --attack items");
    run_als(
        b, "--loss implicit --robust off --attack items --secure-agg plus");
    cr_assert(a->s.last.evaluated && b->s.last.evaluated);
    cr_assert_eq(b->s.rounds_abandoned, 0);
    cr_assert_eq(a->s.total_clients, b->s.total_clients);
    cr_log_info("iALS plain HR@10 %.6f NDCG@10 %.6f AUC %.3f; secure HR@10 "
                "%.6f NDCG@10 %.6f AUC %.3f",
        a->s.last.hr10, a->s.last.ndcg10, a->s.priv.attack_auc, b->s.last.hr10,
        b->s.last.ndcg10, b->s.priv.attack_auc);
    cr_assert(a->s.last.hr10 > 0.3, "plain iALS did not learn: HR@10 %f",
        a->s.last.hr10);
    cr_assert(fabs(a->s.last.ndcg10 - b->s.last.ndcg10) < 1e-3,
        "NDCG@10 plain %f vs secure %f", a->s.last.ndcg10, b->s.last.ndcg10);
    cr_assert(fabs(a->s.last.hr10 - b->s.last.hr10) < 0.015,
        "HR@10 plain %f vs secure %f", a->s.last.hr10, b->s.last.hr10);
    cr_assert(
        a->s.priv.attack_auc > 0.99, "plain AUC %f", a->s.priv.attack_auc);
    cr_assert(fabs(b->s.priv.attack_auc - 0.5) < 0.1, "masked AUC %f",
        b->s.priv.attack_auc);
    free(a);
    free(b);
}

// The item-inference attack on what the aggregator saw: perfect on plain
// sparse ALS statistics, at chance on the masked dense ones.
Test(sim_privacy, als_item_attack_chance_under_masking)
{
    res *r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    run_als(r, "--attack items");
    double plain = r->s.priv.attack_auc;
    run_als(r, "--attack items --secure-agg full");
    cr_log_info("ALS item-inference AUC: plain %.3f, masked %.3f", plain,
                r->s.priv.attack_auc);
    cr_assert(plain > 0.99, "plain AUC %f", plain);
    cr_assert(fabs(r->s.priv.attack_auc - 0.5) < 0.1, "masked AUC %f",
              r->s.priv.attack_auc);
    free(r);
}

// The private default's configuration (VBMF on latest statistics, the
// deltas masked with SecAgg+): the aggregator's item inference is perfect
// on the plain deltas and at chance on the masked ones.
Test(sim_privacy, vbmf_latest_item_attack_chance_under_masking)
{
    res *r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    const char *cfg = "--synthetic users=100,items=60,k=3,density=0.2,seed=5 "
                      "--algo vbmf --stats-latest 1 --rounds 4 --fraction 0.2 "
                      "--dropout 0.1 --attack items";
    char line[512];
    snprintf(line, sizeof(line), "%s --secure-agg off", cfg);
    run_sim(r, line);
    double plain = r->s.priv.attack_auc;
    snprintf(line, sizeof(line), "%s --secure-agg plus", cfg);
    run_sim(r, line);
    cr_log_info("VBMF latest item-inference AUC: plain %.3f, masked %.3f",
                plain, r->s.priv.attack_auc);
    cr_assert(plain > 0.99, "plain AUC %f", plain);
    cr_assert_gt(r->s.priv.attack_users, 0);
    cr_assert(fabs(r->s.priv.attack_auc - 0.5) < 0.1, "masked AUC %f",
              r->s.priv.attack_auc);
    free(r);
}

Test(sim_privacy, item_attack_perfect_on_plain_chance_under_masking)
{
    res *r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    run_sim(r, "--attack both");
    cr_assert(r->s.priv.attack_users >= 40);
    cr_assert_gt(r->s.priv.attack_auc, 0.99);
    cr_assert_gt(r->s.priv.attack_precision, 0.99);
    cr_assert(r->s.priv.attack_rating_rmse < 1e-3, "recon rmse %g",
              r->s.priv.attack_rating_rmse);
    run_sim(r, "--secure-agg full --clip 1 --clients-per-round 20 "
               "--attack both");
    // Every masked input was mapped to its device and scored.
    cr_assert_eq(r->s.priv.attack_users, r->s.total_clients);
    cr_assert(fabs(r->s.priv.attack_auc - 0.5) < 0.07, "auc %f",
              r->s.priv.attack_auc);
    cr_assert(isnan(r->s.priv.attack_rating_rmse));
    free(r);
}

Test(sim_privacy, epsilon_reported_and_grows)
{
    res *r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    run_sim(r, "--dp central --clip 1 --noise-multiplier 1.5 "
               "--clients-per-round 10");
    for (int i = 1; i < 4; i++) {
        cr_assert_gt(r->r[i].priv.epsilon, r->r[i - 1].priv.epsilon,
                     "round %d", i + 1);
    }
    cr_assert_gt(r->r[0].priv.epsilon, 0.0);
    cr_assert_eq(r->s.priv.epsilon, r->r[3].priv.epsilon);
    free(r);
}

static int
exit_code(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "'%s/fedrec-sim' --synthetic " SYN " --rounds 1 "
             "--no-reference %s >/dev/null 2>&1",
             getenv("FR_BIN_DIR") ? getenv("FR_BIN_DIR") : FR_BINARY_DIR "/bin",
             args);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "%s", cmd);
    return WEXITSTATUS(st);
}

Test(sim_privacy, bad_combinations_exit_2)
{
    static const char *const bad[] = {
        "--algo grad --secure-agg full",
        "--algo als --secure-agg full --clip 1",
        "--algo als --loss implicit --secure-agg full --attack ratings",
        "--algo vbmf --secure-agg full",
        "--algo grad --dp central --clip 1",
        "--algo grad --dp central --noise-multiplier 1",
        "--algo grad --dp distributed --clip 1 --noise-multiplier 1",
        "--algo grad --noise-multiplier 1",
        "--algo als --dp central --clip 1 --noise-multiplier 1",
        "--algo grad --secure-agg full --clip 1 --pseudo-items 1",
        "--algo grad --secure-agg maybe",
        "--algo grad --attack everything",
        "--algo grad --clip -1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(exit_code(bad[i]), 2, "%s", bad[i]);
    }
    cr_assert_eq(exit_code("--algo grad --clip 1 --attack items"), 0);
}

// A secure round that cannot be unmasked (5 members, threshold 3, most of
// them vanish before their masked input) is abandoned; the summary says so
// (rounds_abandoned) and flags the round, instead of silently reporting a
// model without the round's update.
Test(sim_privacy, abandoned_secure_round_is_reported)
{
    res *r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    run_sim(r, "--secure-agg full --clip 1 --clients-per-round 5 "
               "--dropout 0.7 --rounds 6");
    uint32_t flagged = 0;
    for (uint32_t i = 0; i < 6; i++) {
        flagged += r->r[i].abandoned != 0;
    }
    cr_log_info("abandoned %u flagged %u", r->s.rounds_abandoned, flagged);
    cr_assert(r->s.rounds_abandoned > 0, "no round abandoned");
    cr_assert_eq(r->s.rounds_abandoned, flagged);
    char  *buf = NULL;
    size_t len = 0;
    FILE  *f   = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    fri_sim_config c;
    fri_sim_config_init(&c);
    fri_sim_json_summary(f, &c, &r->s);
    fclose(f);
    char want[64];
    snprintf(want, sizeof(want), "\"rounds_abandoned\":%u",
             r->s.rounds_abandoned);
    cr_assert_not_null(strstr(buf, want), "%s", buf);
    free(buf);
    free(r);
}

// Evaluation visits under secure aggregation and DP take no part in the
// masking or the accounting: the same model (secure aggregation alone is
// bit-reproducible), the same rounds and the same epsilon with every round
// evaluated as with only the last one, and every evaluated round is scored
// by every user with test ratings.
Test(sim_privacy, evaluation_visits_leave_secure_rounds_and_epsilon_alone)
{
    res *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    cr_assert(a != NULL && b != NULL);
    const char *base = "--secure-agg full --clip 1 --clients-per-round 12 "
                       "--dropout 0.2 --threads 1";
    char args[512];
    snprintf(args, sizeof(args), "%s --eval-every 1", base);
    run_sim(a, args);
    snprintf(args, sizeof(args), "%s --eval-every 0", base);
    run_sim(b, args);
    cr_assert_eq(memcmp(a->hash, b->hash, 32), 0,
                 "evaluation visits changed the secure model");
    cr_assert_eq(a->s.agg_checkins, b->s.agg_checkins);
    cr_assert_eq(b->s.agg_model_reads, a->s.last.eval_users);
    cr_assert_eq(a->s.agg_model_reads, 4ull * a->s.last.eval_users);
    cr_assert_gt(a->s.last.eval_users, 30u);
    for (int i = 0; i < 4; i++) {
        cr_assert(a->r[i].evaluated, "round %d", i + 1);
        cr_assert_eq(a->r[i].clients, b->r[i].clients, "round %d", i + 1);
        cr_assert_eq(a->r[i].dropped, b->r[i].dropped, "round %d", i + 1);
        cr_assert_eq(a->r[i].eval_users, a->s.last.eval_users);
        cr_assert_eq(a->r[i].eval_ratings, a->s.last.eval_ratings);
    }
    cr_assert_eq(a->s.last.rmse, b->s.last.rmse);
    // With distributed DP on top: the same cohorts and epsilon per round.
    const char *dp = "--secure-agg full --clip 1 --dp distributed "
                     "--noise-multiplier 1 --clients-per-round 12";
    snprintf(args, sizeof(args), "%s --eval-every 1", dp);
    run_sim(a, args);
    snprintf(args, sizeof(args), "%s --eval-every 0", dp);
    run_sim(b, args);
    cr_assert_eq(a->s.agg_checkins, b->s.agg_checkins);
    for (int i = 0; i < 4; i++) {
        cr_assert(a->r[i].evaluated, "round %d", i + 1);
        cr_assert_eq(a->r[i].clients, b->r[i].clients, "round %d", i + 1);
        cr_assert_gt(a->r[i].priv.epsilon, 0.0);
        cr_assert_eq(a->r[i].priv.epsilon, b->r[i].priv.epsilon);
    }
    free(a);
    free(b);
}

// DP on the latest statistics (docs/DP.md section 7): the default
// algorithm with partial cohorts takes --dp central on plain aggregation;
// masked statistics and distributed noise on them are refused clearly.
Test(sim_privacy, dp_on_the_default_algorithm)
{
    cr_assert_eq(exit_code("--fraction 0.2 --secure-agg off --dp central "
                           "--clip 5 --noise-multiplier 1"),
                 0);
    cr_assert_eq(exit_code("--algo vbmf --stats-latest 1 --fraction 0.2 "
                           "--secure-agg off --dp central --clip 5 "
                           "--noise-multiplier 1"),
                 0);
    static const char *const bad[] = {
        "--fraction 0.2 --secure-agg full --dp central --clip 5 "
        "--noise-multiplier 1",
        "--fraction 0.2 --secure-agg full --dp distributed --clip 5 "
        "--noise-multiplier 1",
        "--algo vbmf --stats-latest 0 --dp central --clip 5 "
        "--noise-multiplier 1",
        "--algo vbmf --stats-latest 1 --fraction 0.2 --clip 5",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(exit_code(bad[i]), 2, "%s", bad[i]);
    }
}
