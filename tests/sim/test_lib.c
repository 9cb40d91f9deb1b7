// libfedrec-sim (fedrec/sim.h): a run through the library gives what the
// same flags give on fedrec-sim's command line; stepping, reporting, the
// model and every misuse get a defined answer.
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "fedrec/sim.h"

#define SYNTH "users=80,items=50,k=3,density=0.2,seed=5"

static char out[1 << 16];

// Runs "$FR_BIN_DIR/fedrec-sim ARGS" (stdout only), returns the status.
static int
run_cli(const char *args)
{
    const char *bin = getenv("FR_BIN_DIR");
    cr_assert(bin != NULL && *bin, "FR_BIN_DIR is not set");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s/fedrec-sim' %s", bin, args);
    FILE *f = popen(cmd, "r");
    cr_assert(f != NULL, "cannot run %s", cmd);
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n]   = '\0';
    int st   = pclose(f);
    cr_assert(WIFEXITED(st), "fedrec-sim did not exit normally");
    return WEXITSTATUS(st);
}

// The number after "key": in the JSON text s.
static double
jget(const char *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(s, pat);
    cr_assert(p != NULL, "no %s in %s", key, s);
    return strtod(p + strlen(pat), NULL);
}

static fr_sim *
make(size_t n, const char *const *names, const char *const *values)
{
    fr_sim *sim      = NULL;
    char    err[512] = "";
    fr_err  e        = fr_sim_create(&sim, n, names, values, err, sizeof(err));
    cr_assert_eq(e, FR_OK, "fr_sim_create: %s", err);
    cr_assert(sim != NULL);
    return sim;
}

static fr_sim *
make_small(const char *algo, const char *rounds)
{
    const char *names[]  = { "synthetic", "rounds", "algo", "no_reference",
         "threads", "seed", "transport" };
    const char *values[] = { SYNTH, rounds, algo, NULL, "1", "9", "direct" };
    return make(7, names, values);
}

// The library's per-round RMSE and final summary match fedrec-sim --json
// with the same flags (JSON prints 6 significant digits).
static void
same_as_cli(const char *algo)
{
    fr_sim *sim = make_small(algo, "4");
    cr_assert_eq(fr_sim_run(sim), FR_OK, "%s", fr_sim_errmsg(sim));
    char   sum[8192];
    size_t len = 0;
    cr_assert_eq(fr_sim_summary_json(sim, sum, sizeof(sum), &len), FR_OK);
    cr_assert_eq(strlen(sum), len);
    char args[512];
    snprintf(args, sizeof(args),
        "--synthetic %s --rounds 4 --algo %s --no-reference --threads 1 "
        "--seed 9 --transport direct --json",
        SYNTH, algo);
    cr_assert_eq(run_cli(args), 0, "fedrec-sim failed: %s", out);
    const char *last = strstr(out, "{\"summary\":true");
    cr_assert(last != NULL, "no summary line in %s", out);
    double lib_rmse = jget(sum, "rmse"), cli_rmse = jget(last, "rmse");
    cr_assert(isfinite(lib_rmse) && lib_rmse > 0.1);
    cr_assert(fabs(lib_rmse - cli_rmse) <= 1e-6, "library %.9g, CLI %.9g",
        lib_rmse, cli_rmse);
    cr_assert(fabs(jget(sum, "mae") - jget(last, "mae")) <= 1e-6);
    cr_assert_eq(jget(sum, "bytes_up"), jget(last, "bytes_up"));
    // Each round line: the same RMSE as the library's metrics.
    const char *p = out;
    for (uint32_t r = 1; r <= 4; r++) {
        char pat[32];
        snprintf(pat, sizeof(pat), "{\"round\":%u,", r);
        p = strstr(p, pat);
        cr_assert(p != NULL, "round %u missing from the CLI output", r);
        fr_sim_metrics m;
        cr_assert_eq(fr_sim_round_metrics(sim, r, &m), FR_OK);
        cr_assert_eq(m.round, r);
        cr_assert(m.evaluated);
        cr_assert(fabs(m.rmse - jget(p, "rmse")) <= 1e-6,
            "round %u: library %.9g, CLI %.9g", r, m.rmse, jget(p, "rmse"));
        cr_assert_eq(m.clients, (uint32_t)jget(p, "clients"));
    }
    fr_sim_destroy(sim);
}

Test(sim_lib, same_rmse_as_cli_als) { same_as_cli("als"); }

Test(sim_lib, same_rmse_as_cli_vbmf) { same_as_cli("vbmf"); }

// Stepping: one round per call, in-cohort evaluation reports a round one
// step late, the summary and hash exist only at the end, and a step after
// the end is refused without harm.
Test(sim_lib, steps_and_reports)
{
    fr_sim     *sim = make_small("als", "3");
    fr_sim_info info;
    fr_sim_get_info(sim, &info);
    cr_assert_eq(info.rounds, 3);
    cr_assert_eq(info.n_users, 80);
    cr_assert_eq(info.k, 10); // the simulator's default, not the data's
    cr_assert_eq(info.implicit, 0);
    char    buf[8192];
    size_t  len = 0;
    uint8_t h[32];
    cr_assert_eq(fr_sim_summary_json(sim, buf, sizeof(buf), &len), FR_ESTATE);
    cr_assert(strstr(fr_sim_errmsg(sim), "not finished") != NULL);
    cr_assert_eq(fr_sim_model_hash(sim, h), FR_ESTATE);
    fr_sim_metrics m;
    cr_assert_eq(fr_sim_round_metrics(sim, 1, &m), FR_EINVAL);
    cr_assert_eq(fr_sim_step(sim), FR_OK, "%s", fr_sim_errmsg(sim));
    cr_assert_eq(fr_sim_rounds_run(sim), 1);
    // Every device in every round: round 1 is scored in round 2.
    cr_assert_eq(fr_sim_rounds_reported(sim), 0);
    cr_assert_eq(fr_sim_step(sim), FR_OK, "%s", fr_sim_errmsg(sim));
    cr_assert_eq(fr_sim_rounds_reported(sim), 1);
    cr_assert_eq(fr_sim_round_metrics(sim, 1, &m), FR_OK);
    cr_assert(m.evaluated && m.rmse > 0.1 && isnan(m.hr10));
    cr_assert_eq(fr_sim_round_metrics(sim, 2, &m), FR_EINVAL);
    cr_assert(strstr(fr_sim_errmsg(sim), "not reported") != NULL);
    cr_assert_eq(fr_sim_finished(sim), 0);
    cr_assert_eq(fr_sim_step(sim), FR_OK, "%s", fr_sim_errmsg(sim));
    cr_assert_eq(fr_sim_finished(sim), 1);
    cr_assert_eq(fr_sim_rounds_reported(sim), 3);
    cr_assert_eq(fr_sim_step(sim), FR_ECLOSED);
    cr_assert_eq(fr_sim_run(sim), FR_OK); // nothing left to run
    // JSON: too small a buffer says how much is needed.
    cr_assert_eq(fr_sim_summary_json(sim, buf, 8, &len), FR_ENOSPC);
    cr_assert_gt(len, 8);
    cr_assert_eq(fr_sim_summary_json(sim, buf, len + 1, NULL), FR_OK);
    cr_assert_eq(strncmp(buf, "{\"summary\":true", 15), 0);
    cr_assert_eq(fr_sim_round_json(sim, 3, buf, sizeof(buf), &len), FR_OK);
    cr_assert_eq(strncmp(buf, "{\"round\":3,", 11), 0);
    cr_assert_eq(fr_sim_summary_text(sim, buf, sizeof(buf), &len), FR_OK);
    cr_assert(strstr(buf, "federated:   test RMSE") != NULL);
    fr_sim_destroy(sim);
}

// The model is the aggregator's: right shape, finite, identical for the
// same seed, different for another seed; short buffers are refused.
Test(sim_lib, model_and_hash)
{
    fr_sim *a = make_small("als", "2");
    fr_sim *b = make_small("als", "2");
    cr_assert_eq(fr_sim_run(a), FR_OK);
    cr_assert_eq(fr_sim_run(b), FR_OK);
    fr_sim_info info;
    fr_sim_get_info(a, &info);
    size_t nq = (size_t)info.n_items * info.k;
    float *Qa = calloc(nq, sizeof(float)), *Qb = calloc(nq, sizeof(float));
    float *ba = calloc(info.n_items, sizeof(float));
    float  mu = 0;
    cr_assert_eq(fr_sim_model(a, &mu, ba, info.n_items, Qa, nq), FR_OK);
    cr_assert_eq(fr_sim_model(b, NULL, NULL, 0, Qb, nq), FR_OK);
    cr_assert(mu > 1.0f && mu < 5.0f, "mu %g", mu);
    cr_assert_eq(memcmp(Qa, Qb, nq * sizeof(float)), 0);
    double norm = 0;
    for (size_t i = 0; i < nq; i++) {
        cr_assert(isfinite(Qa[i]));
        norm += fabs(Qa[i]);
    }
    cr_assert_gt(norm, 0.0);
    cr_assert_eq(fr_sim_model(a, NULL, NULL, 0, Qa, nq - 1), FR_ENOSPC);
    cr_assert_eq(
        fr_sim_model(a, NULL, ba, info.n_items - 1, NULL, 0), FR_ENOSPC);
    uint8_t ha[32], hb[32], hc[32];
    cr_assert_eq(fr_sim_model_hash(a, ha), FR_OK);
    cr_assert_eq(fr_sim_model_hash(b, hb), FR_OK);
    cr_assert_eq(memcmp(ha, hb, 32), 0);
    const char *names[]  = { "synthetic", "rounds", "algo", "no-reference",
         "seed", "transport" };
    const char *values[] = { SYNTH, "2", "als", NULL, "10", "direct" };
    fr_sim     *c        = make(6, names, values);
    cr_assert_eq(fr_sim_run(c), FR_OK);
    cr_assert_eq(fr_sim_model_hash(c, hc), FR_OK);
    cr_assert_neq(memcmp(ha, hc, 32), 0);
    free(Qa);
    free(Qb);
    free(ba);
    fr_sim_destroy(a);
    fr_sim_destroy(b);
    fr_sim_destroy(c);
}

static void
refused(size_t n, const char *const *names, const char *const *values,
    const char *msg)
{
    fr_sim *sim      = (fr_sim *)1;
    char    err[512] = "";
    cr_assert_eq(
        fr_sim_create(&sim, n, names, values, err, sizeof(err)), FR_EINVAL);
    cr_assert_null(sim);
    cr_assert(strstr(err, msg) != NULL, "'%s' does not say '%s'", err, msg);
}

// Options: the CLI's checks, with the CLI's messages.
Test(sim_lib, bad_options)
{
    const char *n1[] = { "rounds" }, *v1[] = { "0" };
    refused(1, n1, v1, "--rounds: invalid value '0'");
    const char *n2[] = { "no-such-flag" }, *v2[] = { "1" };
    refused(1, n2, v2, "unknown option --no-such-flag");
    const char *n3[] = { "json" }, *v3[] = { "1" };
    refused(1, n3, v3, "--json takes no value");
    const char *n4[] = { "rounds" }, *v4[] = { NULL };
    refused(1, n4, v4, "--rounds needs a value");
    const char *n5[] = { "--rounds" }, *v5[] = { "3" };
    refused(1, n5, v5, "not an option");
    const char *n6[] = { "help" }, *v6[] = { NULL };
    refused(1, n6, v6, "not an option");
    const char *n7[] = { "train" }, *v7[] = { "/nonexistent" };
    refused(1, n7, v7, "--train and --test go together");
    const char *n9[] = { "rounds", "rounds" }, *v9[] = { "-3", "2" };
    refused(2, n9, v9, "--rounds: invalid value '-3'");
    const char *n10[] = { "diverse" }, *v10[] = { "1.5" };
    refused(1, n10, v10, "--diverse: invalid value '1.5'");
    fr_sim *sim = NULL;
    char    err[256];
    cr_assert_eq(
        fr_sim_create(NULL, 0, NULL, NULL, err, sizeof(err)), FR_EINVAL);
    cr_assert_eq(
        fr_sim_create(&sim, 1, NULL, NULL, err, sizeof(err)), FR_EINVAL);
    // A value that looks like a flag stays a value.
    const char *nt[] = { "synthetic", "rounds", "no_reference", "out" };
    const char *vt[] = { SYNTH, "1", NULL, "--json" };
    sim              = make(4, nt, vt);
    fr_sim_info info;
    fr_sim_get_info(sim, &info);
    cr_assert_eq(info.json, 0);
    cr_assert_str_eq(info.out_dir, "--json");
    fr_sim_destroy(sim);
    fr_sim_destroy(NULL);
}

// The command-line entry: --help is reported, not run; a usage error is
// told apart from a run that cannot start.
Test(sim_lib, argv_entry)
{
    fr_sim *sim      = NULL;
    int     cli      = -1;
    char    err[256] = "";
    char   *help[]   = { "fedrec-sim", "--help" };
    cr_assert_eq(
        fr_sim_create_argv(&sim, 2, help, &cli, err, sizeof(err)), FR_OK);
    cr_assert_eq(cli, 1);
    cr_assert_null(sim);
    cr_assert(strstr(fr_sim_usage(), "usage: fedrec-sim") != NULL);
    char *bad[] = { "fedrec-sim", "--rounds" };
    cr_assert_eq(
        fr_sim_create_argv(&sim, 2, bad, &cli, err, sizeof(err)), FR_EINVAL);
    cr_assert_eq(cli, 2);
    char  *missing[] = { "fedrec-sim", "--train", "/nonexistent/a", "--test",
         "/nonexistent/b" };
    fr_err e = fr_sim_create_argv(&sim, 5, missing, &cli, err, sizeof(err));
    cr_assert_neq(e, FR_OK);
    cr_assert_eq(cli, 0, "a missing file is not a usage error");
    cr_assert_null(sim);
    cr_assert(strstr(err, "/nonexistent/a") != NULL, "%s", err);
}

typedef struct seen {
    pthread_mutex_t mtx;
    uint32_t        per_round[8];
    uint32_t        bad_device, bad_shape;
    uint32_t        stop_in; // round whose first update stops the run
    double          sum; // of every row value (plain updates)
} seen;

static int
count_updates(void *ctx, const fr_sim_update *u)
{
    seen *s = ctx;
    pthread_mutex_lock(&s->mtx);
    if (u->round < 8) {
        s->per_round[u->round]++;
    }
    if (u->device >= 80) {
        s->bad_device++;
    }
    if (u->n == 0 || u->width != 11 || u->items == NULL || u->key == NULL) {
        s->bad_shape++;
    }
    for (size_t i = 0; i < (size_t)u->n * u->width; i++) {
        s->sum += u->rows[i];
    }
    int stop = s->stop_in != 0 && u->round == s->stop_in;
    pthread_mutex_unlock(&s->mtx);
    return stop;
}

// The update hook sees every device's plain update once per round (with the
// device it came from), changes nothing, and a hook that says stop ends the
// run with a clear error and a handle that stays usable.
Test(sim_lib, update_hook)
{
    seen s;
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.mtx, NULL);
    const char *names[]
        = { "synthetic", "rounds", "algo", "no-reference", "seed", "threads" };
    const char *values[] = { SYNTH, "3", "als", NULL, "9", "2" };
    fr_sim     *a        = make(6, names, values);
    cr_assert_eq(fr_sim_set_update_hook(a, count_updates, &s), FR_OK);
    cr_assert_eq(fr_sim_run(a), FR_OK, "%s", fr_sim_errmsg(a));
    for (uint32_t r = 1; r <= 3; r++) {
        fr_sim_metrics m;
        cr_assert_eq(fr_sim_round_metrics(a, r, &m), FR_OK);
        cr_assert_eq(s.per_round[r], m.clients, "round %u: %u of %u", r,
            s.per_round[r], m.clients);
    }
    cr_assert_eq(s.bad_device, 0);
    cr_assert_eq(s.bad_shape, 0);
    cr_assert(s.sum != 0.0);
    // The same run without the hook: the same model.
    fr_sim *b = make(6, names, values);
    cr_assert_eq(fr_sim_run(b), FR_OK);
    uint8_t ha[32], hb[32];
    cr_assert_eq(fr_sim_model_hash(a, ha), FR_OK);
    cr_assert_eq(fr_sim_model_hash(b, hb), FR_OK);
    cr_assert_eq(memcmp(ha, hb, 32), 0);
    fr_sim_destroy(a);
    fr_sim_destroy(b);
    // Stop in round 2.
    memset(s.per_round, 0, sizeof(s.per_round));
    s.stop_in = 2;
    fr_sim *c = make(6, names, values);
    cr_assert_eq(fr_sim_set_update_hook(c, count_updates, &s), FR_OK);
    cr_assert_eq(fr_sim_step(c), FR_OK);
    cr_assert_eq(fr_sim_step(c), FR_EINTERNAL);
    cr_assert(strstr(fr_sim_errmsg(c),
                  "hook stopped the run in "
                  "round 2")
            != NULL,
        "%s", fr_sim_errmsg(c));
    cr_assert_eq(s.per_round[2], 1, "the hook ran after it said stop");
    cr_assert_eq(fr_sim_step(c), FR_ESTATE);
    cr_assert_eq(fr_sim_finished(c), 0);
    float mu = 0;
    cr_assert_eq(fr_sim_model(c, &mu, NULL, 0, NULL, 0), FR_OK);
    fr_sim_destroy(c);
    // No single update to show under secure aggregation.
    const char *sn[] = { "synthetic", "rounds", "no-reference", "secure-agg",
        "clients-per-round" };
    const char *sv[] = { SYNTH, "2", NULL, "plus", "20" };
    fr_sim     *d    = make(5, sn, sv);
    cr_assert_eq(fr_sim_set_update_hook(d, count_updates, &s), FR_EINVAL);
    cr_assert(strstr(fr_sim_errmsg(d), "secure aggregation") != NULL);
    cr_assert_eq(fr_sim_set_update_hook(d, NULL, NULL), FR_OK);
    fr_sim_destroy(d);
    pthread_mutex_destroy(&s.mtx);
}

typedef struct defence {
    float           scale; // rows are multiplied by it
    uint32_t        stop_in; // round in which the first device stops the run
    uint32_t        calls;
    uint32_t        bad;
    pthread_mutex_t mtx;
} defence;

static int
scale_rows(void *ctx, fr_sim_device_update *u)
{
    defence *d = ctx;
    pthread_mutex_lock(&d->mtx);
    d->calls++;
    if (u->device >= 80 || u->width != 11 || u->extra_len < 2
        || *u->weight <= 0.0f) {
        d->bad++;
    }
    int stop = d->stop_in != 0 && u->round == d->stop_in;
    pthread_mutex_unlock(&d->mtx);
    for (size_t i = 0; i < (size_t)u->n * u->width; i++) {
        u->rows[i] *= d->scale;
    }
    return stop;
}

// threads: the simulator's worker threads (NULL: its default). With more
// than one, devices of a round call the hook concurrently, so a call may
// already be under way when another returns stop.
static void
device_run(defence *d, const char *threads, uint8_t hash[32], fr_err *last)
{
    const char *names[]
        = { "synthetic", "rounds", "algo", "no-reference", "seed", "threads" };
    const char *values[] = { SYNTH, "3", "als", NULL, "9", threads };
    fr_sim     *sim      = make(threads != NULL ? 6 : 5, names, values);
    if (d != NULL) {
        cr_assert_eq(fr_sim_set_device_hook(sim, scale_rows, d), FR_OK);
    }
    *last = fr_sim_run(sim);
    if (*last == FR_OK) {
        cr_assert_eq(fr_sim_model_hash(sim, hash), FR_OK);
        fr_sim_metrics m;
        cr_assert_eq(fr_sim_round_metrics(sim, 3, &m), FR_OK);
        cr_assert_eq(m.clients, 80, "updates refused: %u", m.clients);
    } else {
        cr_assert(strstr(fr_sim_errmsg(sim),
                      "hook stopped the run in "
                      "round 2")
                != NULL,
            "%s", fr_sim_errmsg(sim));
    }
    fr_sim_destroy(sim);
}

// The device-update hook: unchanged updates give the model of a run
// without it; changed ones another model; a hook that says stop ends the
// run; refused where devices send no single plain update.
Test(sim_lib, device_hook)
{
    defence d;
    memset(&d, 0, sizeof(d));
    pthread_mutex_init(&d.mtx, NULL);
    uint8_t plain[32], same[32], scaled[32];
    fr_err  e;
    device_run(NULL, NULL, plain, &e);
    cr_assert_eq(e, FR_OK);
    d.scale = 1.0f;
    device_run(&d, NULL, same, &e);
    cr_assert_eq(e, FR_OK);
    cr_assert_eq(d.calls, 240);
    cr_assert_eq(d.bad, 0);
    cr_assert_eq(memcmp(plain, same, 32), 0);
    d.scale = 0.9f;
    device_run(&d, NULL, scaled, &e);
    cr_assert_eq(e, FR_OK);
    cr_assert_neq(memcmp(plain, scaled, 32), 0);
    // One thread: no call is under way when the stop comes, so exactly
    // one call of round 2 happens.
    d.stop_in = 2;
    d.calls   = 0;
    device_run(&d, "1", scaled, &e);
    cr_assert_eq(e, FR_EINTERNAL);
    cr_assert_eq(d.calls, 81, "called after the stop: %u", d.calls);
    const char *sn[]
        = { "synthetic", "rounds", "no-reference", "clients-per-round" };
    const char *sv[] = { SYNTH, "2", NULL, "20" };
    fr_sim     *s    = make(4, sn, sv); // VBMF on latest statistics, SecAgg+
    cr_assert_eq(fr_sim_set_device_hook(s, scale_rows, &d), FR_EINVAL);
    cr_assert(strstr(fr_sim_errmsg(s), "plain updates") != NULL);
    fr_sim_destroy(s);
    pthread_mutex_destroy(&d.mtx);
}

// The built-in poisoning is a device-update hook on the caller's path: an
// unchanged caller hook sees every sending device, the malicious ones
// included, and the run is the attacked run without the hook (same model,
// same count of crafted updates), because a malicious device tampers
// after the caller's hook.
static void
poisoned_run(defence *d, uint8_t hash[32], double *poisoned)
{
    const char *names[] = { "synthetic", "rounds", "algo", "no-reference",
        "seed", "attack", "malicious", "attack-scale" };
    const char *values[] = { SYNTH, "3", "als", NULL, "9", "random", "0.1",
        "5" };
    fr_sim *sim = make(8, names, values);
    if (d != NULL) {
        cr_assert_eq(fr_sim_set_device_hook(sim, scale_rows, d), FR_OK);
    }
    cr_assert_eq(fr_sim_run(sim), FR_OK, "%s", fr_sim_errmsg(sim));
    cr_assert_eq(fr_sim_model_hash(sim, hash), FR_OK);
    static char js[16384];
    size_t      len = 0;
    cr_assert_eq(fr_sim_summary_json(sim, js, sizeof js, &len), FR_OK);
    *poisoned = jget(js, "poisoned_updates");
    cr_assert(jget(js, "malicious_devices") > 0, "%s", js);
    fr_sim_destroy(sim);
}

Test(sim_lib, device_hook_and_builtin_poisoning_share_one_path)
{
    defence d;
    memset(&d, 0, sizeof(d));
    pthread_mutex_init(&d.mtx, NULL);
    d.scale = 1.0f;
    uint8_t clean[32], attacked[32], hooked[32];
    fr_err  e;
    device_run(NULL, NULL, clean, &e);
    cr_assert_eq(e, FR_OK);
    double p0 = 0.0, p1 = 0.0;
    poisoned_run(NULL, attacked, &p0);
    cr_assert_eq(p0, 24.0, "8 malicious devices x 3 rounds: %g", p0);
    cr_assert_neq(memcmp(clean, attacked, 32), 0, "the attack changed nothing");
    poisoned_run(&d, hooked, &p1);
    cr_assert_eq(d.calls, 240, "the hook saw %u updates", d.calls);
    cr_assert_eq(memcmp(attacked, hooked, 32), 0);
    cr_assert_eq(p0, p1);
    // Buffered mode holds sealed reports: no device hook there.
    const char *bn[] = { "synthetic", "rounds", "algo", "no-reference",
        "buffer" };
    const char *bv[] = { SYNTH, "2", "als", NULL, "10" };
    fr_sim     *b    = make(5, bn, bv);
    cr_assert_eq(fr_sim_set_device_hook(b, scale_rows, &d), FR_EINVAL);
    cr_assert(strstr(fr_sim_errmsg(b), "buffered") != NULL, "%s",
        fr_sim_errmsg(b));
    fr_sim_destroy(b);
    pthread_mutex_destroy(&d.mtx);
}

// ---- the sum hook ------------------------------------------------------

typedef struct sums_seen {
    double   h[8], count[8], ratings[8]; // per round, from the sum hook
    double   up_h[8], up_count[8], up_ratings[8]; // from the update hook
    uint32_t calls, cohort[8], bad;
    uint32_t stop_in; // round in which the hook says stop
    float    scale; // applied to every row of the sum (1: unchanged)
    pthread_mutex_t mtx;
} sums_seen;

static int
on_sum(void *ctx, fr_sim_sum *v)
{
    sums_seen *s = ctx;
    s->calls++;
    uint32_t r = v->round < 8 ? v->round : 0;
    if (v->n == 0 || v->items == NULL || v->rows == NULL || v->bi == NULL
        || v->Q == NULL || v->n_items != 50 || v->k == 0
        || v->width < v->k + 1) {
        s->bad++;
    }
    s->cohort[r]  = v->cohort;
    s->count[r]   = *v->count;
    s->ratings[r] = *v->sum_ratings;
    // The last k + 1 floats of a row are ALS's h (or the whole gradient).
    for (uint32_t j = 0; j < v->n; j++) {
        for (uint32_t e = v->width - (v->k + 1); e < v->width; e++) {
            s->h[r] += v->rows[(size_t)j * v->width + e];
        }
    }
    for (size_t i = 0; i < (size_t)v->n * v->width; i++) {
        v->rows[i] *= s->scale;
    }
    return s->stop_in != 0 && v->round == s->stop_in;
}

static int
on_update_total(void *ctx, const fr_sim_update *u)
{
    sums_seen *s = ctx;
    uint32_t   r = u->round < 8 ? u->round : 0;
    pthread_mutex_lock(&s->mtx);
    s->up_count[r] += u->count;
    s->up_ratings[r] += u->sum_ratings;
    for (size_t i = 0; i < (size_t)u->n * u->width; i++) {
        s->up_h[r] += u->rows[i];
    }
    pthread_mutex_unlock(&s->mtx);
    return 0;
}

static void
close_to(double a, double b, double rel, const char *what, uint32_t r)
{
    cr_assert(fabs(a - b) <= rel * (fabs(a) + fabs(b)) + 1e-6,
        "%s round %u: %.9g vs %.9g", what, r, a, b);
}

// The sum hook sees, once per round, the sum of exactly the updates the
// aggregator received (cross-checked with the update hook); an unchanged
// sum gives the model of a run without the hook, a changed one another
// model; a hook that says stop ends the run with a clear error.
Test(sim_lib, sum_hook_plain)
{
    const char *names[]
        = { "synthetic", "rounds", "algo", "no-reference", "seed", "threads" };
    const char *values[] = { SYNTH, "3", "als", NULL, "9", "2" };
    sums_seen   s;
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.mtx, NULL);
    s.scale   = 1.0f;
    fr_sim *a = make(6, names, values);
    cr_assert_eq(fr_sim_set_sum_hook(a, on_sum, &s), FR_OK);
    cr_assert_eq(fr_sim_set_update_hook(a, on_update_total, &s), FR_OK);
    cr_assert_eq(fr_sim_run(a), FR_OK, "%s", fr_sim_errmsg(a));
    cr_assert_eq(s.calls, 3);
    cr_assert_eq(s.bad, 0);
    for (uint32_t r = 1; r <= 3; r++) {
        fr_sim_metrics m;
        cr_assert_eq(fr_sim_round_metrics(a, r, &m), FR_OK);
        cr_assert_eq(s.cohort[r], m.clients, "round %u", r);
        cr_assert(s.count[r] > 0.0);
        close_to(s.count[r], s.up_count[r], 1e-9, "count", r);
        close_to(s.ratings[r], s.up_ratings[r], 1e-9, "rating sum", r);
        close_to(s.h[r], s.up_h[r], 1e-4, "h", r);
    }
    fr_sim *b = make(6, names, values);
    cr_assert_eq(fr_sim_run(b), FR_OK);
    uint8_t ha[32], hb[32], hc[32];
    cr_assert_eq(fr_sim_model_hash(a, ha), FR_OK);
    cr_assert_eq(fr_sim_model_hash(b, hb), FR_OK);
    cr_assert_eq(memcmp(ha, hb, 32), 0, "an unchanged sum changed the model");
    // A defence that shrinks the sums: another model.
    memset(&s, 0, sizeof(s));
    s.scale   = 0.5f;
    fr_sim *c = make(6, names, values);
    cr_assert_eq(fr_sim_set_sum_hook(c, on_sum, &s), FR_OK);
    cr_assert_eq(fr_sim_run(c), FR_OK, "%s", fr_sim_errmsg(c));
    cr_assert_eq(fr_sim_model_hash(c, hc), FR_OK);
    cr_assert_neq(memcmp(ha, hc, 32), 0, "the hook's change was ignored");
    // Stop in round 2.
    memset(&s, 0, sizeof(s));
    s.scale   = 1.0f;
    s.stop_in = 2;
    fr_sim *d = make(6, names, values);
    cr_assert_eq(fr_sim_set_sum_hook(d, on_sum, &s), FR_OK);
    cr_assert_eq(fr_sim_step(d), FR_OK);
    cr_assert_eq(fr_sim_step(d), FR_EINTERNAL);
    cr_assert(
        strstr(fr_sim_errmsg(d), "hook stopped the run in round 2") != NULL,
        "%s", fr_sim_errmsg(d));
    cr_assert_eq(fr_sim_step(d), FR_ESTATE);
    cr_assert_eq(s.calls, 2);
    fr_sim_destroy(a);
    fr_sim_destroy(b);
    fr_sim_destroy(c);
    fr_sim_destroy(d);
    pthread_mutex_destroy(&s.mtx);
}

// Under secure aggregation the hook sees the unmasked sum: equal to the
// plain sum of the same clipped updates (fixed-point rounding apart).
Test(sim_lib, sum_hook_secure)
{
    const char *names[] = { "synthetic", "rounds", "algo", "no-reference",
        "seed", "clients-per-round", "clip", "secure-agg" };
    const char *plain_v[]
        = { SYNTH, "3", "grad", NULL, "9", "20", "5", "off" };
    const char *sec_v[] = { SYNTH, "3", "grad", NULL, "9", "20", "5", "full" };
    sums_seen   p, q;
    memset(&p, 0, sizeof(p));
    memset(&q, 0, sizeof(q));
    p.scale = q.scale = 1.0f;
    fr_sim *a         = make(8, names, plain_v);
    fr_sim *b         = make(8, names, sec_v);
    cr_assert_eq(fr_sim_set_sum_hook(a, on_sum, &p), FR_OK);
    cr_assert_eq(fr_sim_set_sum_hook(b, on_sum, &q), FR_OK);
    cr_assert_eq(fr_sim_run(a), FR_OK, "%s", fr_sim_errmsg(a));
    cr_assert_eq(fr_sim_run(b), FR_OK, "%s", fr_sim_errmsg(b));
    cr_assert_eq(q.calls, 3);
    cr_assert_eq(q.bad, 0);
    for (uint32_t r = 1; r <= 3; r++) {
        cr_assert_eq(q.cohort[r], 20, "round %u: %u", r, q.cohort[r]);
        cr_assert_eq(p.cohort[r], q.cohort[r]);
        cr_assert(p.h[r] != 0.0);
        close_to(q.h[r], p.h[r], 1e-3, "unmasked sum", r);
        close_to(q.count[r], p.count[r], 1e-3, "count", r);
    }
    fr_sim_destroy(a);
    fr_sim_destroy(b);
}

// ---- the masked-vector hook --------------------------------------------

typedef struct masked_seen {
    uint32_t        per_round[8], bad, stop_in;
    size_t          dim;
    uint64_t        nonzero;
    pthread_mutex_t mtx;
} masked_seen;

static int
on_masked_vec(void *ctx, const fr_sim_masked *m)
{
    masked_seen *s = ctx;
    pthread_mutex_lock(&s->mtx);
    if (m->round < 8) {
        s->per_round[m->round]++;
    }
    if (m->words == NULL || m->n_words == 0 || m->member >= 20
        || (s->dim != 0 && s->dim != m->n_words)) {
        s->bad++;
    }
    s->dim = m->n_words;
    for (size_t i = 0; i < m->n_words; i++) {
        s->nonzero += m->words[i] != 0;
    }
    int stop = s->stop_in != 0 && m->round == s->stop_in;
    pthread_mutex_unlock(&s->mtx);
    return stop;
}

static double
masked_run(masked_seen *s, fr_err *last, char *msg, size_t cap)
{
    const char *names[] = { "synthetic", "rounds", "algo", "no-reference",
        "seed", "clients-per-round", "clip", "secure-agg", "attack" };
    const char *values[]
        = { SYNTH, "2", "grad", NULL, "9", "20", "5", "full", "items" };
    fr_sim *sim = make(9, names, values);
    if (s != NULL) {
        cr_assert_eq(fr_sim_set_masked_hook(sim, on_masked_vec, s), FR_OK);
    }
    *last      = fr_sim_run(sim);
    double auc = NAN;
    if (*last == FR_OK) {
        fr_sim_metrics m;
        cr_assert_eq(fr_sim_round_metrics(sim, 2, &m), FR_OK);
        auc = m.attack_auc;
    }
    snprintf(msg, cap, "%s", fr_sim_errmsg(sim));
    fr_sim_destroy(sim);
    return auc;
}

// Every member's masked vector once per round, the built-in masked attack
// unchanged beside it (the same dispatch), a stop ends the run, and no
// masked vector exists without secure aggregation.
Test(sim_lib, masked_hook)
{
    masked_seen s;
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.mtx, NULL);
    char   msg[512];
    fr_err e;
    double without = masked_run(NULL, &e, msg, sizeof(msg));
    cr_assert_eq(e, FR_OK, "%s", msg);
    double with = masked_run(&s, &e, msg, sizeof(msg));
    cr_assert_eq(e, FR_OK, "%s", msg);
    cr_assert_eq(s.per_round[1], 20);
    cr_assert_eq(s.per_round[2], 20);
    cr_assert_eq(s.bad, 0);
    cr_assert(s.dim > 50, "dim %zu", s.dim);
    cr_assert(s.nonzero > 40 * s.dim / 2, "masked words mostly zero");
    // The masks come from the system RNG: the AUC is near 0.5 and varies
    // between runs; the point is that the built-in still scores.
    cr_assert(isfinite(without) && isfinite(with), "%g %g", without, with);
    memset(s.per_round, 0, sizeof(s.per_round));
    s.stop_in = 2;
    masked_run(&s, &e, msg, sizeof(msg));
    cr_assert_eq(e, FR_EINTERNAL);
    cr_assert(
        strstr(msg, "hook stopped the run in round 2") != NULL, "%s", msg);
    cr_assert_eq(s.per_round[2], 1, "called after the stop");
    const char *pn[] = { "synthetic", "rounds", "algo", "no-reference" };
    const char *pv[] = { SYNTH, "1", "als", NULL };
    fr_sim     *p    = make(4, pn, pv);
    cr_assert_eq(fr_sim_set_masked_hook(p, on_masked_vec, &s), FR_EINVAL);
    cr_assert(strstr(fr_sim_errmsg(p), "secure-agg") != NULL);
    fr_sim_destroy(p);
    pthread_mutex_destroy(&s.mtx);
}

// --replay time: 40 users each rate 12 items at times 1000..1011 (the same
// for everyone), 9 for training; with 3 rounds the cutoffs are the times by
// which 1/3, 2/3 and all of the 360 training ratings had happened (1002,
// 1005, 1008), so in round r every device's plain update carries exactly
// 3 r rows: its past only.
typedef struct replay_seen {
    pthread_mutex_t mtx;
    uint32_t        wrong, n_round[4];
} replay_seen;

static int
replay_rows(void *ctx, const fr_sim_update *u)
{
    replay_seen *s = ctx;
    pthread_mutex_lock(&s->mtx);
    if (u->round >= 1 && u->round <= 3) {
        s->n_round[u->round]++;
        s->wrong += u->n != 3 * u->round;
    } else {
        s->wrong++;
    }
    pthread_mutex_unlock(&s->mtx);
    return 0;
}

Test(sim_lib, replay_time_shows_each_device_its_past)
{
    char tr[64], te[64];
    snprintf(tr, sizeof(tr), "/tmp/fr-replay-train-%d", (int)getpid());
    snprintf(te, sizeof(te), "/tmp/fr-replay-test-%d", (int)getpid());
    FILE *ft = fopen(tr, "w"), *fe = fopen(te, "w");
    cr_assert(ft != NULL && fe != NULL);
    for (int u = 1; u <= 40; u++) {
        for (int j = 0; j < 12; j++) {
            int item = 1 + (u * 7 + j * 3) % 30;
            fprintf(j < 9 ? ft : fe, "%d\t%d\t%d\t%d\n", u, item,
                1 + (u + item) % 5, 1000 + j);
        }
    }
    cr_assert_eq(fclose(ft) | fclose(fe), 0);
    replay_seen s;
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.mtx, NULL);
    const char *names[]  = { "train", "test", "replay", "rounds", "algo",
         "no-reference", "threads", "transport" };
    const char *values[] = { tr, te, "time", "3", "als", NULL, "1", "direct" };
    fr_sim     *a        = make(8, names, values);
    cr_assert_eq(fr_sim_set_update_hook(a, replay_rows, &s), FR_OK);
    cr_assert_eq(fr_sim_run(a), FR_OK, "%s", fr_sim_errmsg(a));
    cr_assert_eq(s.wrong, 0, "%u updates with rows from the future", s.wrong);
    for (int r = 1; r <= 3; r++) {
        cr_assert_eq(
            s.n_round[r], 40, "round %d: %u updates", r, s.n_round[r]);
    }
    fr_sim_destroy(a);
    // Without timestamps there is nothing to replay: a clear error.
    ft = fopen(tr, "w");
    cr_assert_not_null(ft);
    fprintf(ft, "1\t1\t3\n2\t2\t4\n");
    cr_assert_eq(fclose(ft), 0);
    fe = fopen(te, "w");
    cr_assert_not_null(fe);
    fprintf(fe, "1\t2\t3\n");
    cr_assert_eq(fclose(fe), 0);
    fr_sim *b        = NULL;
    char    err[256] = "";
    fr_err  e        = fr_sim_create(&b, 8, names, values, err, sizeof(err));
    if (e == FR_OK) {
        e = fr_sim_run(b);
        snprintf(err, sizeof(err), "%s", fr_sim_errmsg(b));
    }
    cr_assert_neq(e, FR_OK);
    cr_assert(strstr(err, "timestamps") != NULL, "%s", err);
    fr_sim_destroy(b);
    pthread_mutex_destroy(&s.mtx);
    unlink(tr);
    unlink(te);
}

// The simulator's centralized reference ranks as the devices do: with the
// last-item term when it is on and the data has timestamps (ML-100K
// leave-last-out), so the reference moves with --transition like the
// federated run, and the two stay close.
Test(sim_lib, implicit_reference_has_the_last_item_term, .timeout = 300)
{
    const char *dir = getenv("FR_DATA_DIR");
    cr_assert(dir != NULL, "FR_DATA_DIR is not set");
    char path[4096], args[4300];
    snprintf(path, sizeof path, "%s/u.data", dir);
    cr_assert_eq(access(path, R_OK), 0, "MovieLens 100K missing: %s", path);
    double ref[2], fed[2];
    for (int w = 0; w < 2; w++) {
        snprintf(args, sizeof args,
            "--train '%s' --split leave-last-out --loss implicit --rounds 3 "
            "--transport direct --json --quiet --transition %d 2>/dev/null "
            "| tail -1",
            path, w);
        cr_assert_eq(run_cli(args), 0, "%s", out);
        ref[w] = jget(out, "ref_ndcg10");
        fed[w] = jget(out, "ndcg10");
        cr_assert(fabs(fed[w] - ref[w]) < 0.03, "w %d: federated %g, ref %g",
            w, fed[w], ref[w]);
    }
    cr_assert(ref[1] > ref[0] + 0.01, "reference %g with, %g without", ref[1],
        ref[0]);
    cr_assert(fed[1] > fed[0] + 0.01, "federated %g with, %g without", fed[1],
        fed[0]);
}
