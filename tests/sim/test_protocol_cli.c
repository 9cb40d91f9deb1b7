// --split leave-last-out and --negatives on fedrec-train and fedrec-sim:
// flag errors, files without timestamps, and the JSON summary.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim.h"

static char buf[1 << 16];

// Runs "$FR_BIN_DIR/PROG ARGS 2>&1", captures output and status.
static int
run(const char *prog, const char *args)
{
    const char *bin = getenv("FR_BIN_DIR");
    cr_assert(bin != NULL && *bin, "FR_BIN_DIR is not set");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s/%s' %s 2>&1", bin, prog, args);
    FILE *f = popen(cmd, "r");
    cr_assert(f != NULL, "cannot run %s", cmd);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n]   = '\0';
    int st   = pclose(f);
    cr_assert(WIFEXITED(st), "%s did not exit normally", prog);
    return WEXITSTATUS(st);
}

// A small interaction file: 40 users, 30 items, timestamps unless no_ts.
// User u (0-based) has 3 + u % 5 interactions; user 39 has one.
static void
write_file(char *path, size_t cap, int no_ts)
{
    snprintf(path, cap, "/tmp/fr_protocol_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    cr_assert(f != NULL);
    for (int u = 0; u < 40; u++) {
        int n = u == 39 ? 1 : 3 + u % 5;
        for (int j = 0; j < n; j++) {
            int item = (u * 7 + j * 3) % 30;
            if (no_ts) {
                fprintf(f, "%d %d 1\n", u + 1, item + 1);
            } else {
                fprintf(f, "%d %d 1 %d\n", u + 1, item + 1, 1000 + j);
            }
        }
    }
    fclose(f);
}

static double
json_number(const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *last = strstr(buf, "{\"algo\"");
    cr_assert(last != NULL, "no summary: %s", buf);
    const char *k = strstr(last, pat);
    cr_assert(k != NULL, "no %s in %s", key, last);
    return strtod(k + strlen(pat), NULL);
}

Test(protocol_cli, train_flag_errors)
{
    char f[64], a[512];
    write_file(f, sizeof(f), 0);
    // FILE stands for a valid file with timestamps.
    const char *bad[] = {
        "--split leave-last-out --loss implicit",
        "--split sideways --loss implicit --train FILE",
        "--split leave-last-out --synthetic users=50,items=20",
        "--negatives -1 --loss implicit --train FILE",
        "--negatives ten --loss implicit --train FILE",
        "--negatives 5 --protocol full --loss implicit --train FILE",
        "--eval val --loss implicit --train FILE",
        "--eval train --split leave-last-out --loss implicit --train FILE",
        "--algo pop --split leave-last-out --train FILE",
    };
    for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
        const char *at = strstr(bad[j], "FILE");
        if (at != NULL) {
            snprintf(a, sizeof(a), "%.*s%s", (int)(at - bad[j]), bad[j], f);
        } else {
            snprintf(a, sizeof(a), "%s", bad[j]);
        }
        cr_assert_eq(run("fedrec-train", a), 2, "accepted: %s\n%s", a, buf);
        cr_assert(strstr(buf, "fedrec-train:") != NULL, "no message: %s", buf);
    }
    // --test next to leave-last-out: one file only.
    snprintf(a, sizeof(a),
        "--split leave-last-out --loss implicit "
        "--train %s --test %s",
        f, f);
    cr_assert_eq(run("fedrec-train", a), 2, "%s", buf);
    unlink(f);
}

Test(protocol_cli, train_refuses_file_without_timestamps)
{
    char f[64], a[512];
    write_file(f, sizeof(f), 1);
    snprintf(a, sizeof(a),
        "--split leave-last-out --loss implicit "
        "--train %s",
        f);
    cr_assert_eq(run("fedrec-train", a), 1, "%s", buf);
    cr_assert(strstr(buf, f) != NULL, "message does not name %s: %s", f, buf);
    cr_assert(strstr(buf, "timestamps") != NULL, "%s", buf);
    unlink(f);
}

Test(protocol_cli, train_summary_has_protocol_and_metrics)
{
    char f[64], a[512];
    write_file(f, sizeof(f), 0);
    snprintf(a, sizeof(a),
        "--split leave-last-out --loss implicit --k 4 "
        "--epochs 2 --json --train %s",
        f);
    cr_assert_eq(run("fedrec-train", a), 0, "%s", buf);
    // 39 users with >= 2 interactions, one test item each.
    cr_assert_eq(json_number("n_test"), 39.0, "%s", buf);
    cr_assert_eq(json_number("negatives"), 99.0);
    double hr = json_number("hr10"), nd = json_number("ndcg10");
    cr_assert(hr >= 0.0 && hr <= 1.0 && nd >= 0.0 && nd <= hr);
    cr_assert(strstr(buf, "\"split\":\"leave-last-out\"") != NULL);
    // 30 items, at least 3 interacted per scored user: fewer than 99
    // candidates, so 99 and 0 (all) rank against the same items.
    double hr99 = hr, nd99 = nd;
    snprintf(a, sizeof(a),
        "--split leave-last-out --loss implicit --k 4 "
        "--epochs 2 --json --negatives 0 --train %s",
        f);
    cr_assert_eq(run("fedrec-train", a), 0, "%s", buf);
    cr_assert_float_eq(json_number("hr10"), hr99, 1e-9);
    cr_assert_float_eq(json_number("ndcg10"), nd99, 1e-9);
    // Validation: users with >= 3 interactions (all 39) score the second
    // to last, trained on the rest; popularity runs too.
    snprintf(a, sizeof(a),
        "--split leave-last-out --eval val --loss "
        "implicit --algo pop --negatives 5 --json "
        "--train %s",
        f);
    cr_assert_eq(run("fedrec-train", a), 0, "%s", buf);
    cr_assert_eq(json_number("n_test"), 39.0, "%s", buf);
    cr_assert_eq(json_number("negatives"), 5.0);
    cr_assert(strstr(buf, "\"eval\":\"val\"") != NULL);
    cr_assert(strstr(buf, "\"algo\":\"pop\"") != NULL);
    unlink(f);
}

Test(protocol_cli, sim_args_and_population)
{
    fri_sim_config c;
    char           err[256];
    int            help;
    char           f[64];
    write_file(f, sizeof(f), 0);
    const char *bad[][6] = {
        { "--split", "leave-last-out", "--loss", "implicit", NULL, NULL },
        { "--split", "leave-last-out", "--train", f, "--test", f },
        { "--split", "sideways", "--train", f, NULL, NULL },
        { "--negatives", "x", "--loss", "implicit", NULL, NULL },
        { "--negatives", "-3", "--loss", "implicit", NULL, NULL },
        { "--negatives", "9", "--loss", "explicit", NULL, NULL },
    };
    for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
        char *argv[7] = { "x" };
        int   argc    = 1;
        for (int q = 0; q < 6 && bad[j][q] != NULL; q++) {
            argv[argc++] = (char *)bad[j][q];
        }
        fri_sim_config_init(&c);
        cr_assert_eq(
            fri_sim_parse_args(&c, argc, argv, &help, err, sizeof(err)),
            FR_EINVAL, "accepted: %s %s", bad[j][0], bad[j][1]);
        cr_assert_neq(err[0], '\0');
    }
    char *ok[] = { "x", "--train", f, "--split", "leave-last-out", "--loss",
        "implicit", "--negatives", "7" };
    fri_sim_config_init(&c);
    cr_assert_eq(fri_sim_parse_args(&c, 9, ok, &help, err, sizeof(err)), FR_OK,
        "%s", err);
    cr_assert(c.leave_last && c.negatives_set && c.negatives == 7);
    fri_sim_pop p;
    cr_assert_eq(fri_sim_pop_load(&p, &c, err, sizeof(err)), FR_OK, "%s", err);
    // One held-out item per user with >= 2 interactions.
    cr_assert_eq(p.test.ptr[p.test.n_rows], 39);
    // 3 * 39 + (7 * 10 + 0 + 1 + 2 + 3) + 1 = 194 interactions in all.
    cr_assert_eq(p.train.ptr[p.train.n_rows], 194 - 39);
    fri_sim_pop_free(&p);
    unlink(f);
    write_file(f, sizeof(f), 1);
    cr_assert_eq(fri_sim_pop_load(&p, &c, err, sizeof(err)), FR_EFORMAT);
    cr_assert(strstr(err, f) != NULL && strstr(err, "timestamps") != NULL,
        "%s", err);
    unlink(f);
}

Test(protocol_cli, sim_devices_match_centralized_reference_protocol)
{
    char f[64], a[512];
    write_file(f, sizeof(f), 0);
    // Two rounds of federated iALS scored on the devices, and the
    // centralized reference on the same protocol.
    snprintf(a, sizeof(a),
        "--train %s --split leave-last-out --loss "
        "implicit --k 4 --rounds 2 --threads 1 --json "
        "--no-progress --transport direct",
        f);
    cr_assert_eq(run("fedrec-sim", a), 0, "%s", buf);
    const char *s = strstr(buf, "\"summary\":true");
    cr_assert(s != NULL, "%s", buf);
    const char *h = strstr(s, "\"hr10\":"), *r = strstr(s, "\"ref_hr10\":");
    cr_assert(h != NULL && r != NULL, "%s", s);
    double hv = strtod(h + 7, NULL), rv = strtod(r + 11, NULL);
    cr_assert(hv > 0.0 && hv <= 1.0 && rv > 0.0 && rv <= 1.0, "%s", s);
    unlink(f);
}
