// fedrec-sim --config FILE (fedrec-aggregator's 'name = value' format) and
// --sweep name=v1,v2 (a grid, one JSON line per run with its provenance,
// sweep.csv); the library's provenance (config, hash, seed, version, git).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fedrec/sim.h"

#define SYNTH "users=60,items=40,k=3,density=0.2,seed=5"

static char out[1 << 17];

// Runs "$FR_BIN_DIR/fedrec-sim ARGS" (stdout, stderr too when err_too).
static int
run_cli(const char *args, int err_too)
{
    const char *bin = getenv("FR_BIN_DIR");
    cr_assert(bin != NULL && *bin, "FR_BIN_DIR is not set");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s/fedrec-sim' %s%s", bin, args,
        err_too ? " 2>&1" : "");
    FILE *f = popen(cmd, "r");
    cr_assert(f != NULL, "cannot run %s", cmd);
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n]   = '\0';
    int st   = pclose(f);
    cr_assert(WIFEXITED(st), "fedrec-sim did not exit normally");
    return WEXITSTATUS(st);
}

static double
jget(const char *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(s, pat);
    cr_assert(p != NULL, "no %s in %.300s", key, s);
    return strtod(p + strlen(pat), NULL);
}

// A temporary file with the given text; path receives its name.
static void
temp_file(char *path, size_t cap, const char *text)
{
    snprintf(path, cap, "/tmp/fr_sweep_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    cr_assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

static const char *
summary_of(const char *s)
{
    const char *p = strstr(s, "{\"summary\":true");
    cr_assert(p != NULL, "no summary in %.300s", s);
    return p;
}

// A config file gives the run its flags give; flags override the file.
Test(sim_config, file_equals_flags)
{
    char path[64];
    temp_file(path, sizeof(path),
        "# the small run\n"
        "synthetic = " SYNTH "\n"
        "  --rounds=3\n"
        "no-reference = true\n"
        "json = yes   # a switch\n"
        "quiet = false\n"
        "algo = als\n"
        "seed = 4\n"
        "transport = direct\n");
    char args[256];
    snprintf(args, sizeof(args), "--config %s", path);
    cr_assert_eq(run_cli(args, 0), 0, "%s", out);
    double a = jget(summary_of(out), "rmse");
    cr_assert_eq((int)jget(summary_of(out), "rounds"), 3);
    cr_assert_eq(run_cli("--synthetic " SYNTH " --rounds 3 --no-reference "
                         "--json --algo als --seed 4 --transport direct",
                     0),
        0, "%s", out);
    double b = jget(summary_of(out), "rmse");
    cr_assert(fabs(a - b) <= 1e-6, "config %.9g, flags %.9g", a, b);
    snprintf(args, sizeof(args), "--config=%s --rounds 2", path);
    cr_assert_eq(run_cli(args, 0), 0, "%s", out);
    cr_assert_eq((int)jget(summary_of(out), "rounds"), 2);
    unlink(path);
}

static void
config_refused(const char *text, int status, const char *msg)
{
    char path[64], args[128];
    temp_file(path, sizeof(path), text);
    snprintf(args, sizeof(args), "--config %s", path);
    cr_assert_eq(run_cli(args, 1), status, "%s", out);
    cr_assert(strstr(out, msg) != NULL, "'%s' does not say '%s'", out, msg);
    unlink(path);
}

Test(sim_config, bad_files)
{
    config_refused("rounds 3\n", 2, ":1: expected 'name = value'");
    config_refused("\n\nno-such = 1\n", 2, ":3: unknown option 'no-such'");
    config_refused(
        "json = maybe\n", 2, "json is a switch: its value is true or false");
    config_refused("config = other.conf\n", 2,
        "'config' is not allowed in a config file");
    config_refused("rounds = 0\n", 2, "--rounds: invalid value '0'");
    char line[1200];
    memset(line, 'x', sizeof(line));
    line[sizeof(line) - 1] = '\0';
    config_refused(line, 2, ":1: line too long");
    cr_assert_eq(run_cli("--config /nonexistent/x.conf", 1), 1);
    cr_assert(
        strstr(out, "--config /nonexistent/x.conf: cannot open") != NULL);
    cr_assert_eq(run_cli("--config", 1), 2);
    cr_assert(strstr(out, "--config needs a value") != NULL, "%s", out);
}

// A 2 x 2 grid: four JSON lines in order (last --sweep fastest), each the
// run the same flags give alone, with its provenance; sweep.csv.
Test(sim_sweep, grid)
{
    char dir[] = "/tmp/fr_sweep_dirXXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    char args[512];
    snprintf(args, sizeof(args),
        "--synthetic " SYNTH " --rounds 2 --no-reference --algo als "
        "--transport direct --threads 1 --sweep k=2,4 --sweep=seed=1,2 "
        "--out %s/s",
        dir);
    cr_assert_eq(run_cli(args, 0), 0, "%s", out);
    static const char *const want[4][2]
        = { { "2", "1" }, { "2", "2" }, { "4", "1" }, { "4", "2" } };
    char        hashes[4][33];
    double      rmse[4];
    const char *p = out;
    for (int r = 0; r < 4; r++) {
        char head[128];
        snprintf(head, sizeof(head),
            "{\"run\":%d,\"sweep\":{\"k\":\"%s\",\"seed\":\"%s\"},"
            "\"config\":{",
            r + 1, want[r][0], want[r][1]);
        cr_assert(
            strncmp(p, head, strlen(head)) == 0, "line %d: %.200s", r + 1, p);
        const char *h = strstr(p, "\"config_hash\":\"");
        cr_assert(h != NULL);
        snprintf(hashes[r], sizeof(hashes[r]), "%.32s", h + 15);
        cr_assert_eq((int)jget(h, "seed"), atoi(want[r][1]));
        cr_assert(strstr(p, "\"version\":\"") != NULL);
        cr_assert(strstr(p, "\"git\":\"") != NULL);
        // Output-only flags are not part of the configuration.
        const char *sum = summary_of(p);
        cr_assert(strstr(p, "\"out\"") == NULL || strstr(p, "\"out\"") > sum);
        rmse[r] = jget(sum, "rmse");
        cr_assert_eq((int)jget(sum, "k"), atoi(want[r][0]));
        p = strchr(p, '\n');
        cr_assert(p != NULL);
        p++;
    }
    cr_assert_eq(*p, '\0', "more than four lines");
    for (int i = 0; i < 4; i++) {
        for (int j = i + 1; j < 4; j++) {
            cr_assert_str_neq(hashes[i], hashes[j]);
        }
    }
    // Run 3 alone: the same RMSE.
    cr_assert_eq(run_cli("--synthetic " SYNTH " --rounds 2 --no-reference "
                         "--algo als --transport direct --threads 1 --k 4 "
                         "--seed 1 --json",
                     0),
        0);
    cr_assert(fabs(jget(summary_of(out), "rmse") - rmse[2]) <= 1e-6);
    char path[600];
    snprintf(path, sizeof(path), "%s/s/sweep.csv", dir);
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL, "no %s", path);
    char line[1024];
    cr_assert(fgets(line, sizeof(line), f) != NULL);
    cr_assert_str_eq(line,
        "run,k,seed,config_hash,run_seed,rounds,rmse,"
        "mae,hr10,ndcg10,epsilon,attack_auc\n");
    for (int r = 0; r < 4; r++) {
        cr_assert(fgets(line, sizeof(line), f) != NULL, "row %d", r + 1);
        char pre[256];
        snprintf(pre, sizeof(pre), "%d,%s,%s,%s,%s,2,", r + 1, want[r][0],
            want[r][1], hashes[r], want[r][1]);
        cr_assert(strncmp(line, pre, strlen(pre)) == 0, "%s vs %s", line, pre);
        cr_assert(fabs(strtod(line + strlen(pre), NULL) - rmse[r]) <= 1e-5);
    }
    cr_assert(fgets(line, sizeof(line), f) == NULL);
    fclose(f);
    snprintf(path, sizeof(path), "%s/s/run-0004/summary.json", dir);
    cr_assert_eq(access(path, R_OK), 0, "no %s", path);
    // A plot of each final metric against each swept parameter, the runs
    // of one value averaged: two points each.
    static const char *const plots[]
        = { "rmse-vs-k", "mae-vs-k", "rmse-vs-seed", "mae-vs-seed" };
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/s/%s.svg", dir, plots[i]);
        f = fopen(path, "r");
        cr_assert(f != NULL, "no %s", path);
        size_t n = fread(out, 1, sizeof(out) - 1, f);
        out[n]   = '\0';
        fclose(f);
        cr_assert(strncmp(out, "<svg", 4) == 0);
        cr_assert(strstr(out, "</svg>") != NULL);
        cr_assert(strstr(out, "(mean over the other swept values)") != NULL);
        const char *pts = strstr(out, "points=\"");
        cr_assert(pts != NULL);
        int n_pts = 0;
        for (const char *q = pts + 8; *q != '"'; q++) {
            n_pts += *q == ',';
        }
        cr_assert_eq(n_pts, 2, "%s: %d points", plots[i], n_pts);
    }
    snprintf(path, sizeof(path), "%s/s/hr10-vs-k.svg", dir);
    cr_assert_neq(access(path, R_OK), 0, "a plot of a metric never computed");
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    cr_assert_eq(system(path), 0);
}

Test(sim_sweep, bad_sweeps)
{
    cr_assert_eq(run_cli("--sweep k=", 1), 2);
    cr_assert(strstr(out, "expected name=value1,value2") != NULL, "%s", out);
    cr_assert_eq(run_cli("--sweep k=1,,2", 1), 2);
    cr_assert(strstr(out, "--sweep k: empty value") != NULL, "%s", out);
    cr_assert_eq(run_cli("--sweep k=1 --sweep k=2", 1), 2);
    cr_assert(strstr(out, "k is swept twice") != NULL, "%s", out);
    cr_assert_eq(run_cli("--sweep out=a,b", 1), 2);
    cr_assert(strstr(out, "out cannot be swept") != NULL, "%s", out);
    cr_assert_eq(run_cli("--synthetic " SYNTH " --sweep nope=1,2", 1), 2);
    cr_assert(strstr(out, "run 1: unknown option --nope") != NULL, "%s", out);
    cr_assert_eq(run_cli("--sweep", 1), 2);
    cr_assert(strstr(out, "--sweep needs a value") != NULL, "%s", out);
}

static void
provenance(fr_sim *sim, char *buf, size_t cap)
{
    cr_assert_eq(fr_sim_provenance_json(sim, buf, cap, NULL), FR_OK, "%s",
        fr_sim_errmsg(sim));
}

// The library's provenance: sorted settings, output flags left out, a
// later value winning; the same settings in another order hash the same.
Test(sim_config, provenance)
{
    const char *n1[]
        = { "synthetic", "rounds", "no-reference", "json", "seed", "rounds" };
    const char *v1[] = { SYNTH, "3", NULL, NULL, "8", "1" };
    const char *n2[] = { "seed", "no_reference", "rounds", "synthetic" };
    const char *v2[] = { "8", NULL, "1", SYNTH };
    fr_sim     *a = NULL, *b = NULL;
    char        err[256];
    cr_assert_eq(
        fr_sim_create(&a, 6, n1, v1, err, sizeof(err)), FR_OK, "%s", err);
    cr_assert_eq(
        fr_sim_create(&b, 4, n2, v2, err, sizeof(err)), FR_OK, "%s", err);
    char pa[2048], pb[2048];
    provenance(a, pa, sizeof(pa));
    provenance(b, pb, sizeof(pb));
    cr_assert_str_eq(pa, pb);
    char want[512];
    snprintf(want, sizeof(want),
        "{\"config\":{\"no-reference\":true,\"rounds\":\"1\","
        "\"seed\":\"8\",\"synthetic\":\"%s\"},\"config_hash\":\"",
        SYNTH);
    cr_assert(strncmp(pa, want, strlen(want)) == 0, "%s", pa);
    cr_assert(strstr(pa, ",\"seed\":8,") != NULL, "%s", pa);
    char ver[64];
    snprintf(ver, sizeof(ver), "\"version\":\"%s\"", fr_version_string());
    cr_assert(strstr(pa, ver) != NULL, "%s", pa);
    size_t need = 0;
    cr_assert_eq(fr_sim_provenance_json(a, pa, 10, &need), FR_ENOSPC);
    cr_assert_eq(need, strlen(pb));
    fr_sim_destroy(a);
    fr_sim_destroy(b);
    // Another value, another hash.
    v2[0] = "9";
    cr_assert_eq(fr_sim_create(&b, 4, n2, v2, err, sizeof(err)), FR_OK);
    provenance(b, pa, sizeof(pa));
    cr_assert_str_neq(strstr(pa, "config_hash"), strstr(pb, "config_hash"));
    fr_sim_destroy(b);
}
