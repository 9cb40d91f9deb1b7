// fedrec-sim: transports agree, seeded runs repeat, dropout is handled, the
// command line is checked and --out writes well-formed files.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim.h"

static void
small_config(fri_sim_config *c)
{
    fri_sim_config_init(c);
    char err[160];
    cr_assert_eq(fri_synth_config_parse(&c->synth,
                                        "users=120,items=60,density=0.15,"
                                        "seed=7",
                                        err, sizeof(err)),
                 FR_OK, "%s", err);
    c->rounds = 3;
    c->threads = 1;
    c->seed = 11;
    c->reference = 0;
    c->progress = 0;
}

typedef struct result {
    fri_sim_round   rounds[16];
    fri_sim_summary s;
    uint8_t         hash[32];
} result;

static void
run(const fri_sim_config *c, result *r)
{
    fri_sim_pop pop;
    char        err[512] = "";
    memset(r, 0, sizeof(*r));
    cr_assert_eq(fri_sim_pop_load(&pop, c, err, sizeof(err)), FR_OK, "%s",
                 err);
    cr_assert_leq(c->rounds, 16);
    fr_err e = fri_sim_run(c, &pop, r->rounds, &r->s, r->hash, NULL, NULL,
                           err, sizeof(err));
    fri_sim_pop_free(&pop);
    cr_assert_eq(e, FR_OK, "fri_sim_run: %s", err);
}

Test(sim, direct_equals_inproc)
{
    fri_sim_config c;
    result         a, b;
    small_config(&c);
    c.transport = FRI_SIM_DIRECT;
    run(&c, &a);
    c.transport = FRI_SIM_INPROC;
    run(&c, &b);
    cr_assert(a.s.last.evaluated && isfinite(a.s.last.rmse));
    cr_assert_eq(memcmp(a.hash, b.hash, 32), 0,
                 "direct and inproc models differ");
    for (uint32_t r = 0; r < c.rounds; r++) {
        cr_assert_eq(a.rounds[r].clients, b.rounds[r].clients);
        cr_assert_eq(a.rounds[r].bytes_up, b.rounds[r].bytes_up);
        cr_assert_eq(a.rounds[r].bytes_down, b.rounds[r].bytes_down);
        cr_assert_eq(a.rounds[r].rmse, b.rounds[r].rmse, "round %u", r + 1);
    }
    cr_assert_gt(a.s.last.clients, 100u);
}

Test(sim, seeded_runs_repeat)
{
    fri_sim_config c;
    result         a, b, d;
    small_config(&c);
    c.transport = FRI_SIM_DIRECT;
    run(&c, &a);
    run(&c, &b);
    cr_assert_eq(memcmp(a.hash, b.hash, 32), 0);
    cr_assert_eq(a.s.last.rmse, b.s.last.rmse);
    c.seed = 12; // another seed: other keys, other split
    run(&c, &d);
    cr_assert_neq(memcmp(a.hash, d.hash, 32), 0);
}

Test(sim, two_threads_agree_closely)
{
    fri_sim_config c;
    result         a, b;
    small_config(&c);
    c.transport = FRI_SIM_DIRECT;
    run(&c, &a);
    c.threads = 2;
    run(&c, &b);
    // Only the aggregator's summation order may differ.
    cr_assert_eq(a.s.total_clients, b.s.total_clients);
    cr_assert(fabs(a.s.last.rmse - b.s.last.rmse) < 1e-4, "%f vs %f",
              a.s.last.rmse, b.s.last.rmse);
}

Test(sim, dropout_is_counted_and_rounds_complete)
{
    fri_sim_config c;
    result         a;
    small_config(&c);
    c.transport = FRI_SIM_DIRECT;
    c.dropout = 0.3;
    c.rounds = 4;
    run(&c, &a);
    uint64_t dropped = 0;
    for (uint32_t r = 0; r < c.rounds; r++) {
        cr_assert_gt(a.rounds[r].clients, 0u, "round %u had no updates",
                     r + 1);
        cr_assert_eq(a.rounds[r].failed, 0u);
        cr_assert_eq(a.rounds[r].clients + a.rounds[r].dropped, 120u,
                     "round %u: %u + %u", r + 1, a.rounds[r].clients,
                     a.rounds[r].dropped);
        dropped += a.rounds[r].dropped;
    }
    // 30% of 480 check-ins: far from 0 and from all.
    cr_assert(dropped > 100 && dropped < 190, "dropped %llu",
              (unsigned long long) dropped);
    cr_assert_eq(dropped, a.s.total_dropped);
    cr_assert(a.s.last.evaluated && a.s.last.rmse < 1.5);
}

Test(sim, partial_cohorts)
{
    fri_sim_config c;
    result         a;
    small_config(&c);
    c.transport = FRI_SIM_DIRECT;
    c.clients_per_round = 30;
    run(&c, &a);
    for (uint32_t r = 0; r < c.rounds; r++) {
        cr_assert_eq(a.rounds[r].clients, 30u);
    }
    cr_assert(a.s.last.evaluated);
}

// Users with test ratings and their count (what every evaluated round
// must be scored by).
static void
test_counts(const fri_sim_config *c, uint32_t *users, uint64_t *ratings)
{
    fri_sim_pop pop;
    char        err[256] = "";
    cr_assert_eq(fri_sim_pop_load(&pop, c, err, sizeof(err)), FR_OK, "%s",
                 err);
    *users = 0;
    for (uint32_t u = 0; u < pop.n_users; u++) {
        *users += pop.test.ptr[u + 1] > pop.test.ptr[u];
    }
    *ratings = pop.test.ptr[pop.n_users];
    fri_sim_pop_free(&pop);
}

// With partial cohorts every evaluated round is scored by the same users:
// all of those with test ratings (the cohort's own would be a quarter).
Test(sim, partial_cohorts_evaluated_by_the_same_users)
{
    fri_sim_config c;
    result         a;
    uint32_t       users;
    uint64_t       ratings;
    small_config(&c);
    c.transport = FRI_SIM_DIRECT;
    c.clients_per_round = 30;
    c.rounds = 4;
    c.eval_every = 1;
    c.eval_every_set = 1;
    test_counts(&c, &users, &ratings);
    run(&c, &a);
    cr_assert_gt(users, 100u);
    for (uint32_t r = 0; r < c.rounds; r++) {
        cr_assert(a.rounds[r].evaluated, "round %u", r + 1);
        cr_assert_eq(a.rounds[r].eval_users, users, "round %u: %u users",
                     r + 1, a.rounds[r].eval_users);
        cr_assert_eq(a.rounds[r].eval_ratings, ratings, "round %u", r + 1);
        cr_assert_gt(a.rounds[r].eval_bytes, 0u);
        // Visits are not check-ins of the round.
        cr_assert_eq(a.rounds[r].clients, 30u);
    }
    // The final RMSE is the one over everyone.
    cr_assert_eq(a.s.last.eval_users, users);
    cr_assert_eq(a.s.last.eval_ratings, ratings);
    cr_assert_eq(a.s.agg_checkins, 4u * 30u);
    cr_assert_eq(a.s.agg_model_reads, 4u * users);
}

// Evaluation does not change the model: the same seed with and without
// per-round evaluation reaches the identical model and final metrics; the
// default cadence visits every ceil(users / cohort) rounds.
Test(sim, evaluation_visits_do_not_change_the_model)
{
    fri_sim_config c;
    result         a, b, d;
    small_config(&c);
    c.transport = FRI_SIM_DIRECT;
    c.clients_per_round = 30;
    c.rounds = 6;
    c.dropout = 0.2;
    c.eval_every = 1;
    c.eval_every_set = 1;
    run(&c, &a);
    c.eval_every = 0;
    run(&c, &b);
    cr_assert_eq(memcmp(a.hash, b.hash, 32), 0,
                 "per-round evaluation changed the model");
    cr_assert_eq(a.s.last.rmse, b.s.last.rmse);
    cr_assert_eq(a.s.last.mae, b.s.last.mae);
    cr_assert_eq(a.s.agg_checkins, b.s.agg_checkins);
    for (uint32_t r = 0; r < c.rounds; r++) {
        cr_assert_eq(a.rounds[r].clients, b.rounds[r].clients);
        cr_assert_eq(a.rounds[r].dropped, b.rounds[r].dropped);
        cr_assert_eq(a.rounds[r].bytes_up, b.rounds[r].bytes_up);
        cr_assert_eq(b.rounds[r].evaluated, r + 1 == c.rounds);
    }
    c.eval_every = 1;
    c.eval_every_set = 0; // the default cadence
    run(&c, &d);
    cr_assert_eq(memcmp(a.hash, d.hash, 32), 0);
    uint32_t every = d.s.eval_every;
    cr_assert_eq(every, (d.s.last.eval_users + 29) / 30);
    for (uint32_t r = 1; r <= c.rounds; r++) {
        cr_assert_eq(d.rounds[r - 1].evaluated,
                     r % every == 0 || r == c.rounds, "round %u", r);
    }
}

// direct and inproc agree bit for bit with evaluation visits too.
Test(sim, direct_equals_inproc_with_evaluation_visits)
{
    fri_sim_config c;
    result         a, b;
    small_config(&c);
    c.clients_per_round = 25;
    c.eval_every = 1;
    c.eval_every_set = 1;
    c.transport = FRI_SIM_DIRECT;
    run(&c, &a);
    c.transport = FRI_SIM_INPROC;
    run(&c, &b);
    cr_assert_eq(memcmp(a.hash, b.hash, 32), 0);
    for (uint32_t r = 0; r < c.rounds; r++) {
        cr_assert(a.rounds[r].evaluated);
        cr_assert_eq(a.rounds[r].rmse, b.rounds[r].rmse, "round %u", r + 1);
        cr_assert_eq(a.rounds[r].eval_users, b.rounds[r].eval_users);
        cr_assert_eq(a.rounds[r].eval_bytes, b.rounds[r].eval_bytes);
    }
}

Test(sim_args, parses_and_rejects)
{
    fri_sim_config c;
    char           err[256];
    int            help;
    fri_sim_config_init(&c);
    char *ok[] = {"x", "--rounds", "7", "--k=16", "--fraction", "0.5",
                  "--transport", "direct", "--dropout", "0.1", "--json"};
    cr_assert_eq(fri_sim_parse_args(&c, 11, ok, &help, err, sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert_eq(c.rounds, 7u);
    cr_assert_eq(c.k, 16u);
    cr_assert_eq(c.transport, FRI_SIM_DIRECT);
    cr_assert(c.json && fabs(c.fraction - 0.5) < 1e-12);
    const char *bad[][3] = {
        {"--rounds", "0", ""},         {"--rounds", "3x", ""},
        {"--fraction", "1.5", ""},     {"--dropout", "-0.1", ""},
        {"--transport", "udp", ""},    {"--algo", "bpr", ""},
        {"--server-opt", "rms", ""},   {"--nope", "1", ""},
        {"--k", "0", ""},              {"--synthetic", "users=0", ""},
        {"--train", "a", ""},          {"--threads", "", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[] = {"x", (char *) bad[i][0], (char *) bad[i][1]};
        fri_sim_config_init(&c);
        cr_assert_eq(fri_sim_parse_args(&c, 3, argv, &help, err,
                                        sizeof(err)),
                     FR_EINVAL, "%s %s accepted", bad[i][0], bad[i][1]);
        cr_assert_neq(err[0], '\0');
    }
    char *h[] = {"x", "--help"};
    cr_assert_eq(fri_sim_parse_args(&c, 2, h, &help, err, sizeof(err)),
                 FR_OK);
    cr_assert_eq(help, 1);
}

static int
sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    static char buf[1 << 20];
    size_t      n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *
bin_dir(void)
{
    const char *d = getenv("FR_BIN_DIR");
    return d != NULL ? d : FR_BINARY_DIR "/bin";
}

Test(sim_cli, help_documents_every_flag_and_bad_flags_exit_2)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/fedrec-sim --help > /tmp/fr-sim-help-%d",
             bin_dir(), (int) getpid());
    cr_assert_eq(sh(cmd), 0, "fedrec-sim --help failed (FR_BIN_DIR=%s)",
                 bin_dir());
    char path[128];
    snprintf(path, sizeof(path), "/tmp/fr-sim-help-%d", (int) getpid());
    char *text = slurp(path);
    cr_assert_not_null(text);
    const char *flags[] = {
        "--train", "--test", "--users", "--synthetic", "--rounds",
        "--clients-per-round", "--fraction", "--local-epochs", "--k",
        "--reg", "--reg-bias", "--lr", "--algo", "--server-opt",
        "--dropout", "--deadline", "--threads", "--seed", "--eval-every",
        "--transport", "--json", "--out", "--help", "--loss"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        cr_assert_not_null(strstr(text, flags[i]), "--help lacks %s",
                           flags[i]);
    }
    unlink(path);
    const char *bad[] = {"--bogus", "--rounds 0", "--transport carrier",
                         "--train /nonexistent"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(cmd, sizeof(cmd), "%s/fedrec-sim %s 2>/dev/null", bin_dir(),
                 bad[i]);
        cr_assert_eq(sh(cmd), 2, "'%s' did not exit 2", bad[i]);
    }
}

Test(sim_cli, out_writes_csv_json_and_svg)
{
    char dir[128], cmd[1024], path[256];
    snprintf(dir, sizeof(dir), "/tmp/fr-sim-out-%d", (int) getpid());
    snprintf(cmd, sizeof(cmd),
             "%s/fedrec-sim --synthetic users=100,items=50,density=0.2 "
             "--rounds 3 --transport direct --out %s --json > %s.jsonl",
             bin_dir(), dir, dir);
    cr_assert_eq(sh(cmd), 0, "fedrec-sim --out failed");
    snprintf(path, sizeof(path), "%s.jsonl", dir);
    char *j = slurp(path);
    cr_assert_not_null(j);
    cr_assert_not_null(strstr(j, "{\"round\":1,\"rmse\":"));
    cr_assert_not_null(strstr(j, "\"summary\":true,\"rounds\":3"));
    cr_assert_not_null(strstr(j, "\"ref_rmse\":"));
    unlink(path);
    snprintf(path, sizeof(path), "%s/metrics.csv", dir);
    char *csv = slurp(path);
    cr_assert_not_null(csv);
    cr_assert_eq(strncmp(csv, "round,rmse,mae,", 15), 0);
    int lines = 0;
    for (char *p = csv; *p; p++) {
        lines += *p == '\n';
    }
    cr_assert_eq(lines, 4);
    snprintf(path, sizeof(path), "%s/summary.json", dir);
    cr_assert_not_null(slurp(path));
    snprintf(path, sizeof(path), "%s/rmse.svg", dir);
    char *svg = slurp(path);
    cr_assert_not_null(svg);
    cr_assert_eq(strncmp(svg, "<svg", 4), 0);
    cr_assert_not_null(strstr(svg, "<polyline"));
    cr_assert_not_null(strstr(svg, "stroke-dasharray")); // reference line
    cr_assert_not_null(strstr(svg, "</svg>"));
    // Every element opened is closed: count '<' tags vs closers roughly.
    size_t open = 0, selfclose = 0, close = 0;
    for (char *p = svg; *p; p++) {
        if (p[0] == '<' && p[1] == '/') {
            close++;
        } else if (p[0] == '<') {
            open++;
        } else if (p[0] == '/' && p[1] == '>') {
            selfclose++;
        }
    }
    cr_assert_eq(open, close + selfclose, "unbalanced SVG");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    sh(cmd);
}

// Implicit feedback over the wire: the client sends the Gram of [p_u; 1]
// (R15) and the aggregator takes its p_u p_u^T block; federated iALS then
// ranks about as well as centralized iALS on the same split.
Test(sim, implicit_over_inproc_matches_reference)
{
    fri_sim_config c;
    result         a;
    fri_sim_pop    pop;
    char           err[512] = "";
    const char    *argv[] = {"fedrec-sim", "--loss", "implicit"};
    int            help = 0;
    fri_sim_config_init(&c);
    cr_assert_eq(fri_sim_parse_args(&c, 3, (char **) argv, &help, err,
                                    sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert_eq(fri_synth_config_parse(&c.synth,
                                        "users=200,items=100,density=0.15,"
                                        "seed=7",
                                        err, sizeof(err)),
                 FR_OK, "%s", err);
    c.threads   = 1;
    c.progress  = 0;
    c.transport = FRI_SIM_INPROC;
    cr_assert_eq(c.k, 32u, "iALS default k");
    cr_assert_leq(c.rounds, 16);
    memset(&a, 0, sizeof(a));
    cr_assert_eq(fri_sim_pop_load(&pop, &c, err, sizeof(err)), FR_OK, "%s",
                 err);
    cr_assert_eq(fri_sim_run(&c, &pop, a.rounds, &a.s, a.hash, NULL, NULL,
                             err, sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert_eq(fri_sim_reference(&c, &pop, &a.s), FR_OK);
    fri_sim_pop_free(&pop);
    cr_assert_eq(a.s.last.failed, 0u);
    cr_assert(a.s.has_reference && a.s.last.hr10 > 0.0);
    cr_assert(fabs(a.s.last.hr10 - a.s.ref_hr10) < 0.03, "hr10 %f ref %f",
              a.s.last.hr10, a.s.ref_hr10);
}

// Implicit feedback with partial cohorts: iALS with carried statistics for
// ceil(2 / cohort share) rounds lands near every device in every round;
// each round's cohort alone (--stats-forget 1) does not.
static double
implicit_hr(const char *const *extra, int n_extra, uint32_t *rounds,
            float *forget)
{
    fri_sim_config c;
    result         a;
    fri_sim_pop    pop;
    char           err[512] = "";
    const char    *argv[12] = {"fedrec-sim", "--loss", "implicit",
                               "--secure-agg", "off"};
    int            argc = 5, help = 0;
    for (int i = 0; i < n_extra; i++) {
        argv[argc++] = extra[i];
    }
    fri_sim_config_init(&c);
    cr_assert_eq(fri_sim_parse_args(&c, argc, (char **) argv, &help, err,
                                    sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert_eq(fri_synth_config_parse(&c.synth,
                                        "users=400,items=300,density=0.05,"
                                        "seed=5",
                                        err, sizeof(err)),
                 FR_OK, "%s", err);
    c.threads   = 2;
    c.progress  = 0;
    c.transport = FRI_SIM_DIRECT;
    memset(&a, 0, sizeof(a));
    cr_assert_eq(fri_sim_pop_load(&pop, &c, err, sizeof(err)), FR_OK, "%s",
                 err);
    fri_sim_config_resolve(&c, &pop);
    *rounds = c.rounds;
    *forget = (float) c.stats_forget;
    fri_sim_round *rs = calloc(c.rounds, sizeof *rs);
    cr_assert_not_null(rs);
    cr_assert_eq(fri_sim_run(&c, &pop, rs, &a.s, a.hash, NULL, NULL, err,
                             sizeof(err)),
                 FR_OK, "%s", err);
    free(rs);
    fri_sim_pop_free(&pop);
    cr_assert_eq(a.s.last.failed, 0u);
    return a.s.last.hr10;
}

Test(sim, implicit_partial_cohorts_carry_and_converge)
{
    uint32_t    r_full, r_part, r_alone;
    float       f;
    const char *part[]  = {"--fraction", "0.05"};
    const char *alone[] = {"--fraction", "0.05", "--stats-forget", "1",
                           "--rounds", "40"};
    double      full = implicit_hr(NULL, 0, &r_full, &f);
    double      hp   = implicit_hr(part, 2, &r_part, &f);
    cr_assert_eq(r_part, 40u, "ceil(2 / 0.05) rounds, got %u", r_part);
    cr_assert_eq(f, 0.0f, "the default: the cohort's share");
    double ha = implicit_hr(alone, 6, &r_alone, &f);
    cr_assert(hp >= full - 0.04, "carried %f vs full %f", hp, full);
    cr_assert(ha < hp - 0.03, "each round alone %f vs carried %f", ha, hp);
}

// Without --algo, explicit ratings run VBMF; with partial cohorts on the
// sum of every device's latest statistics under secure aggregation
// (SecAgg+; --secure-agg off opts out), or with --stats-latest 0 ALS with
// carried item statistics (also masked); an explicit --algo is kept.
Test(sim_args, algo_default_depends_on_participation)
{
    const char *full[]    = { "fedrec-sim" };
    const char *partial[] = { "fedrec-sim", "--clients-per-round", "30" };
    const char *latest[]  = { "fedrec-sim", "--clients-per-round", "30",
                              "--stats-latest", "1" };
    const char *plain[]   = { "fedrec-sim", "--clients-per-round", "30",
                              "--secure-agg", "off" };
    const char *forced[]  = { "fedrec-sim", "--clients-per-round", "30",
                              "--algo", "vbmf" };
    const char *carried[] = { "fedrec-sim", "--clients-per-round", "30",
                              "--stats-latest", "0" };
    struct {
        const char **argv;
        int          argc;
        fri_sim_algo want;
        int          latest;
        int          secagg; // private by default with partial cohorts
    } cases[] = { { full, 1, FRI_SIM_VBMF, -1, 0 },
                  { partial, 3, FRI_SIM_VBMF, 1, 2 },
                  { latest, 5, FRI_SIM_VBMF, 1, 2 },
                  { plain, 5, FRI_SIM_VBMF, 1, 0 },
                  { forced, 5, FRI_SIM_VBMF, -1, 0 },
                  { carried, 5, FRI_SIM_ALS, 0, 2 } };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fri_sim_config c;
        fri_sim_pop    pop;
        char           err[512] = "";
        int            help     = 0;
        fri_sim_config_init(&c);
        cr_assert_eq(fri_sim_parse_args(&c, cases[i].argc,
                                        (char **) cases[i].argv, &help, err,
                                        sizeof(err)),
                     FR_OK, "%s", err);
        cr_assert_eq(fri_synth_config_parse(&c.synth,
                                            "users=120,items=60,"
                                            "density=0.15,seed=7",
                                            err, sizeof(err)),
                     FR_OK, "%s", err);
        cr_assert_eq(fri_sim_pop_load(&pop, &c, err, sizeof(err)), FR_OK,
                     "%s", err);
        fri_sim_config_resolve(&c, &pop);
        fri_sim_pop_free(&pop);
        cr_assert_eq(c.algo, cases[i].want, "case %zu", i);
        cr_assert_eq(c.stats_latest, cases[i].latest, "case %zu", i);
        cr_assert_eq(c.priv.secagg, cases[i].secagg, "case %zu", i);
    }
}

// Beyond accuracy: every evaluated device's own final list enters the
// summary's coverage, exposure Gini, popularity, novelty and diversity,
// in full participation and with partial cohorts (evaluation visits).
Test(sim, list_metrics_from_the_devices_own_lists)
{
    for (int partial = 0; partial <= 1; partial++) {
        fri_sim_config c;
        result         a;
        small_config(&c);
        c.transport = FRI_SIM_DIRECT;
        if (partial) {
            c.clients_per_round = 30;
        }
        run(&c, &a);
        const fri_list_metrics *l = &a.s.lists;
        cr_assert_eq(l->n_lists, a.s.last.eval_users, "%zu lists, %u users",
                     l->n_lists, a.s.last.eval_users);
        // 120 users' top-10 out of 60 items cannot all be the same 10.
        cr_assert(l->coverage > 10.0 / 60.0 && l->coverage <= 1.0,
                  "coverage %g", l->coverage);
        cr_assert(l->gini > 0.0 && l->gini < 1.0, "gini %g", l->gini);
        cr_assert(l->avg_popularity > 0.0 && l->avg_popularity <= 120.0);
        cr_assert(l->novelty > 0.0 && isfinite(l->novelty));
        cr_assert(l->ild > 0.0 && l->ild <= 2.0, "ild %g", l->ild);
        // Light and heavy users split the evaluation users at the median.
        const fri_sim_round *r = &a.s.last;
        cr_assert_eq(r->grp_users[0] + r->grp_users[1], r->eval_users);
        cr_assert(r->grp_users[0] > 0 && r->grp_users[1] >= r->grp_users[0]);
        cr_assert(isfinite(r->grp_rmse[0]) && isfinite(r->grp_rmse[1]));
        // The overall RMSE lies between the groups' (a weighted mean of
        // their squared errors).
        double lo = fmin(r->grp_rmse[0], r->grp_rmse[1]);
        double hi = fmax(r->grp_rmse[0], r->grp_rmse[1]);
        cr_assert(r->rmse >= lo - 1e-12 && r->rmse <= hi + 1e-12,
                  "%g outside [%g, %g]", r->rmse, lo, hi);
    }
}

// Cold start: the held-out users never check in to train, and each point
// of the curve scores the same held-out ratings after a new fold-in.
Test(sim, cold_start_curve_from_held_out_users)
{
    fri_sim_config c;
    result         plain, cold;
    small_config(&c);
    char err[160];
    cr_assert_eq(fri_synth_config_parse(&c.synth,
                                        "users=200,items=80,density=0.45,"
                                        "seed=7",
                                        err, sizeof(err)),
                 FR_OK, "%s", err);
    c.transport = FRI_SIM_DIRECT;
    c.rounds    = 6;
    run(&c, &plain);
    cr_assert_eq(plain.s.has_cold_start, 0);
    c.report_cold_start = 1;
    run(&c, &cold);
    cr_assert(cold.s.has_cold_start);
    // A tenth of the users with >= 20 training ratings and a test rating
    // trained in no round.
    fri_sim_pop pop;
    cr_assert_eq(fri_sim_pop_load(&pop, &c, err, sizeof(err)), FR_OK);
    uint32_t cand = 0;
    for (uint32_t u = 0; u < pop.n_users; u++) {
        cand += pop.train.ptr[u + 1] - pop.train.ptr[u] >= 20 &&
                pop.test.ptr[u + 1] > pop.test.ptr[u];
    }
    fri_sim_pop_free(&pop);
    uint32_t held = plain.rounds[0].clients - cold.rounds[0].clients;
    cr_assert(cand >= 50, "%u candidates", cand);
    cr_assert_eq(held, cand / 10, "%u users held out of %u", held, cand);
    const fri_sim_cs_point *pt = cold.s.cold_start;
    for (size_t i = 0; i < FRI_SIM_CS_N; i++) {
        cr_assert_eq(pt[i].ratings, FRI_SIM_CS_STEPS[i]);
        cr_assert_gt(pt[i].n_scored, 0u);
        cr_assert_eq(pt[i].n_scored, pt[0].n_scored, "point %zu", i);
        cr_assert(isfinite(pt[i].rmse) && isfinite(pt[i].item_mean_rmse));
        cr_assert_float_eq(pt[i].item_mean_rmse, pt[0].item_mean_rmse, 1e-12);
        cr_assert(isnan(pt[i].hr10));
    }
    // The device refits at every point (its accuracy on ML-100K is a
    // benchmark: bench/features.sh).
    for (size_t i = 1; i < FRI_SIM_CS_N; i++) {
        cr_assert(pt[i].rmse != pt[i - 1].rmse, "points %zu and %zu equal",
                  i - 1, i);
    }
}

Test(sim_args, report_flag)
{
    fri_sim_config c;
    char           err[256];
    fri_sim_config_init(&c);
    int   help = 0;
    char *ok[] = {"fedrec-sim", "--report", "cold-start"};
    cr_assert_eq(fri_sim_parse_args(&c, 3, ok, &help, err, sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert(c.report_cold_start);
    char *bad[] = {"fedrec-sim", "--report", "warm-start"};
    cr_assert_neq(fri_sim_parse_args(&c, 3, bad, &help, err, sizeof(err)),
                  FR_OK);
    cr_assert(strstr(err, "cold-start") != NULL, "%s", err);
}

// --new-items: the last items join the catalog in the middle of the run;
// no round is lost, the devices score them after they joined (never
// before), against old items matched by rating count; the control (@0)
// has them from the start and scores the same ratings. Plain ALS with
// every device, and the private default (VBMF latest, SecAgg+).
static void
new_items_run(int secure)
{
    fri_sim_config c;
    result         grown, control;
    small_config(&c);
    char err[160];
    cr_assert_eq(fri_synth_config_parse(&c.synth,
                                        "users=150,items=60,density=0.3,"
                                        "seed=9",
                                        err, sizeof(err)),
                 FR_OK, "%s", err);
    c.transport       = FRI_SIM_DIRECT;
    c.rounds          = 8;
    c.new_items       = 12;
    c.new_items_round = 4;
    c.new_items_at    = 1;
    if (secure) {
        // The private default for partial cohorts (VBMF on the latest
        // statistics, SecAgg+), as fedrec-sim resolves it.
        c.fraction  = 0.3;
        c.algo      = FRI_SIM_VBMF;
        c.algo_auto = 1; // no --algo
        fri_sim_pop pop;
        cr_assert_eq(fri_sim_pop_load(&pop, &c, err, sizeof(err)), FR_OK);
        fri_sim_config_resolve(&c, &pop);
        fri_sim_pop_free(&pop);
        cr_assert_eq(c.priv.secagg, 2);
        c.rounds = 8;
    }
    run(&c, &grown);
    c.new_items_round = 0;
    run(&c, &control);
    cr_assert_eq(grown.s.rounds_abandoned, 0);
    for (uint32_t r = 0; r < c.rounds; r++) {
        cr_assert_eq(grown.rounds[r].failed, 0, "round %u", r + 1);
        cr_assert_gt(grown.rounds[r].clients, 0, "round %u", r + 1);
        if (!grown.rounds[r].evaluated) {
            continue;
        }
        // Before they joined (after round 4) nothing scores them.
        if (r + 1 < 4) {
            cr_assert_eq(grown.rounds[r].new_ratings, 0, "round %u", r + 1);
            cr_assert_lt(grown.rounds[r].eval_ratings,
                         control.rounds[r].eval_ratings);
        }
    }
    const fri_sim_round *g = &grown.s.last, *k = &control.s.last;
    cr_assert(g->evaluated && k->evaluated);
    cr_assert_gt(g->new_ratings, 10);
    cr_assert_eq(g->new_ratings, k->new_ratings);
    cr_assert_eq(g->eval_ratings, k->eval_ratings);
    cr_assert_gt(g->matched_ratings, 10);
    cr_assert(isfinite(g->new_rmse) && isfinite(g->matched_rmse));
    // Learned, not left at the prior: within a quarter of the control.
    cr_assert_lt(g->new_rmse, 1.25 * k->new_rmse, "grown %g, control %g",
                 g->new_rmse, k->new_rmse);
}

Test(sim, new_items_join_the_catalog) { new_items_run(0); }

Test(sim, new_items_join_under_secure_aggregation) { new_items_run(1); }

Test(sim_args, new_items_flag)
{
    fri_sim_config c;
    char           err[256];
    int            help = 0;
    fri_sim_config_init(&c);
    char *ok[] = {"fedrec-sim", "--new-items", "25@7"};
    cr_assert_eq(fri_sim_parse_args(&c, 3, ok, &help, err, sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert_eq(c.new_items, 25);
    cr_assert_eq(c.new_items_round, 7);
    cr_assert(c.new_items_at);
    const char *bad[] = {"0", "x", "5@", "@5", "5@x", "5@-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[] = {"fedrec-sim", "--new-items", (char *) bad[i]};
        fri_sim_config_init(&c);
        cr_assert_neq(fri_sim_parse_args(&c, 3, argv, &help, err,
                                         sizeof(err)),
                      FR_OK, "%s accepted", bad[i]);
    }
    // Checked against the data and the rounds when the run starts.
    fri_sim_config cc;
    small_config(&cc);
    cc.new_items = 60; // the data has 60 items
    fri_sim_pop pop;
    cr_assert_eq(fri_sim_pop_load(&pop, &cc, err, sizeof(err)), FR_OK);
    fri_sim_round   rr[16];
    fri_sim_summary s;
    uint8_t         h[32];
    cr_assert_eq(fri_sim_run(&cc, &pop, rr, &s, h, NULL, NULL, err,
                             sizeof(err)),
                 FR_EINVAL);
    cr_assert(strstr(err, "has 60 items") != NULL, "%s", err);
    cc.new_items       = 5;
    cc.new_items_round = 3; // rounds = 3
    cc.new_items_at    = 1;
    cr_assert_eq(fri_sim_run(&cc, &pop, rr, &s, h, NULL, NULL, err,
                             sizeof(err)),
                 FR_EINVAL);
    cr_assert(strstr(err, "below --rounds") != NULL, "%s", err);
    fri_sim_pop_free(&pop);
}
