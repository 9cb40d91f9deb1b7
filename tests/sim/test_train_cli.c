#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// Runs "$FR_BIN_DIR/fedrec-train ARGS 2>&1", captures output and status.
static int
run(const char *args, char *out, size_t cap)
{
    const char *bin = getenv("FR_BIN_DIR");
    cr_assert(bin != NULL && *bin, "FR_BIN_DIR is not set");
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s/fedrec-train' %s 2>&1", bin, args);
    FILE *f = popen(cmd, "r");
    cr_assert(f != NULL, "cannot run %s", cmd);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    cr_assert(WIFEXITED(st), "fedrec-train did not exit normally");
    return WEXITSTATUS(st);
}

static char buf[1 << 16];

Test(train_cli, help_lists_flags)
{
    cr_assert_eq(run("--help", buf, sizeof(buf)), 0);
    const char *flags[] = {"--train", "--test", "--synthetic", "--k",
                           "--epochs", "--lr", "--reg", "--reg-bias",
                           "--algo", "--loss", "--seed", "--json",
                           "--val-frac", "--help"};
    for (size_t j = 0; j < sizeof(flags) / sizeof(flags[0]); j++) {
        cr_assert(strstr(buf, flags[j]) != NULL, "--help lacks %s",
                  flags[j]);
    }
}

Test(train_cli, bad_flags_exit_2_with_message)
{
    cr_assert_eq(run("--no-such-flag", buf, sizeof(buf)), 2);
    cr_assert(strstr(buf, "--no-such-flag") != NULL, "message: %s", buf);
    cr_assert_eq(run("--k abc", buf, sizeof(buf)), 2);
    cr_assert(strstr(buf, "--k") != NULL, "message: %s", buf);
    cr_assert_eq(run("--algo foo", buf, sizeof(buf)), 2);
    cr_assert_eq(run("--epochs", buf, sizeof(buf)), 2);
    cr_assert_eq(run("--synthetic users=oops", buf, sizeof(buf)), 2);
}

static double
last_json_number(const char *text, const char *key)
{
    const char *last = text, *p;
    while ((p = strstr(last, "\n{")) != NULL && p[2] != '\0') {
        last = p + 1;
    }
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *k = strstr(last, pat);
    cr_assert(k != NULL, "no %s in last line: %s", key, last);
    return strtod(k + strlen(pat), NULL);
}

Test(train_cli, synthetic_json_run_prints_summary)
{
    cr_assert_eq(run("--synthetic users=200,items=100,k=3,density=0.2,"
                     "noise=0.3,seed=2 --algo als --k 5 --epochs 5 --json",
                     buf, sizeof(buf)),
                 0, "output: %s", buf);
    // JSON Lines: 5 epoch lines + 1 summary.
    size_t lines = 0;
    for (const char *p = buf; *p; p++) {
        lines += *p == '\n';
    }
    cr_assert_eq(lines, 6, "output: %s", buf);
    cr_assert(strstr(buf, "\"epoch\":1,") != NULL);
    double rmse = last_json_number(buf, "rmse");
    double secs = last_json_number(buf, "seconds");
    cr_assert(rmse > 0.0 && rmse < 1.5, "rmse %g", rmse);
    cr_assert(secs >= 0.0);
    last_json_number(buf, "mae");
    cr_assert(strstr(buf, "\"algo\":\"als\"") != NULL);
    // Beyond accuracy over every training user's top-10 list.
    double cov = last_json_number(buf, "coverage");
    double gini = last_json_number(buf, "gini");
    cr_assert(cov > 0.1 && cov <= 1.0, "coverage %g", cov);
    cr_assert(gini > 0.0 && gini < 1.0, "gini %g", gini);
    cr_assert(last_json_number(buf, "avg_popularity") > 0.0);
    cr_assert(last_json_number(buf, "novelty") > 0.0);
    double ild = last_json_number(buf, "ild");
    cr_assert(ild > 0.0 && ild <= 2.0, "ild %g", ild);
    cr_assert_eq(last_json_number(buf, "list_users"), 200.0);
}

Test(train_cli, implicit_reports_ranking)
{
    cr_assert_eq(run("--synthetic users=200,items=100,seed=3 --loss implicit "
                     "--k 4 --epochs 3 --json",
                     buf, sizeof(buf)),
                 0, "output: %s", buf);
    double hr = last_json_number(buf, "hr10");
    double ndcg = last_json_number(buf, "ndcg10");
    cr_assert(hr >= 0.0 && hr <= 1.0);
    cr_assert(ndcg >= 0.0 && ndcg <= 1.0);
}

Test(train_cli, default_run_and_sgd_work)
{
    cr_assert_eq(run("--epochs 2", buf, sizeof(buf)), 0, "output: %s", buf);
    cr_assert(strstr(buf, "RMSE") != NULL, "output: %s", buf);
    cr_assert_eq(run("--algo sgd --k 4 --epochs 3 --val-frac 0.1 --json",
                     buf, sizeof(buf)),
                 0, "output: %s", buf);
    cr_assert(strstr(buf, "\"algo\":\"sgd\"") != NULL);
    // Explicit ratings default to BPMF (best on validation data).
    cr_assert_eq(run("--json", buf, sizeof(buf)), 0, "output: %s", buf);
    cr_assert(strstr(buf, "\"algo\":\"bpmf\"") != NULL, "output: %s", buf);
    double rmse = last_json_number(buf, "rmse");
    cr_assert(rmse > 0.0 && rmse < 1.0, "rmse %g", rmse);
}

// Every flag --help documents is accepted (--burnin, --samples and --beta
// were documented but refused as unknown), and nothing else is.
Test(train_cli, documented_bpmf_flags_accepted_strays_refused)
{
    cr_assert_eq(run("--synthetic users=100,items=50,seed=1 --algo bpmf "
                     "--k 2 --epochs 2 --burnin 1 --samples 2 --beta=2 "
                     "--json",
                     buf, sizeof(buf)),
                 0, "output: %s", buf);
    cr_assert(strstr(buf, "\"algo\":\"bpmf\"") != NULL, "output: %s", buf);
    cr_assert_eq(run("--epochs 2 stray", buf, sizeof(buf)), 2);
    cr_assert(strstr(buf, "stray") != NULL, "message: %s", buf);
    cr_assert_eq(run("--json=1", buf, sizeof(buf)), 2);
    cr_assert_eq(run("--k=0", buf, sizeof(buf)), 2);
    cr_assert(strstr(buf, "--k") != NULL, "message: %s", buf);
}

// The classic baselines: item mean and neighbourhood CF run, name
// themselves in the summary and refuse bad settings.
Test(train_cli, baselines_run_and_refuse_bad_settings)
{
    cr_assert_eq(run("--help", buf, sizeof(buf)), 0);
    const char *doc[] = {"itemmean", "usercf", "itemcf", "--neighbours",
                         "--min-support"};
    for (size_t j = 0; j < sizeof(doc) / sizeof(doc[0]); j++) {
        cr_assert(strstr(buf, doc[j]) != NULL, "--help lacks %s", doc[j]);
    }
    const char *algos[] = {"itemmean", "usercf", "itemcf"};
    for (size_t j = 0; j < 3; j++) {
        char args[256], name[64];
        snprintf(args, sizeof(args),
                 "--synthetic users=200,items=100,k=3,density=0.2,"
                 "noise=0.3,seed=2 --algo %s --neighbours 20 "
                 "--min-support 2 --json",
                 algos[j]);
        cr_assert_eq(run(args, buf, sizeof(buf)), 0, "output: %s", buf);
        snprintf(name, sizeof(name), "\"algo\":\"%s\"", algos[j]);
        cr_assert(strstr(buf, name) != NULL, "output: %s", buf);
        double rmse = last_json_number(buf, "rmse");
        cr_assert(rmse > 0.1 && rmse < 1.5, "%s rmse %g", algos[j], rmse);
        double hr = last_json_number(buf, "hr10");
        cr_assert(hr > 0.0 && hr <= 1.0, "%s hr %g", algos[j], hr);
    }
    cr_assert_eq(run("--synthetic users=200,items=100,seed=3 --loss implicit "
                     "--algo usercf --json",
                     buf, sizeof(buf)),
                 0, "output: %s", buf);
    cr_assert(strstr(buf, "\"k\":40,") != NULL, "output: %s", buf);
    double hr = last_json_number(buf, "hr10");
    cr_assert(hr > 0.0 && hr <= 1.0, "hr %g", hr);
    cr_assert_eq(run("--algo usercf --neighbours 0", buf, sizeof(buf)), 2);
    cr_assert(strstr(buf, "--neighbours") != NULL, "message: %s", buf);
    cr_assert_eq(run("--algo usercf --min-support x", buf, sizeof(buf)), 2);
    cr_assert_eq(run("--algo itemmean --loss implicit", buf, sizeof(buf)), 2);
    cr_assert(strstr(buf, "itemmean") != NULL, "message: %s", buf);
    cr_assert_eq(run("--algo knn", buf, sizeof(buf)), 2);
    cr_assert(strstr(buf, "--algo") != NULL, "message: %s", buf);
}

// --algo content reads u.item-style features; malformed files are
// refused with the file and line.
Test(train_cli, content_reads_item_features)
{
    char dir[] = "/tmp/fr_train_content_XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    char ratings[128], items[128], bad[128], args[512];
    snprintf(ratings, sizeof(ratings), "%s/r.data", dir);
    snprintf(items, sizeof(items), "%s/u.item", dir);
    snprintf(bad, sizeof(bad), "%s/bad.item", dir);
    FILE *f = fopen(ratings, "w");
    cr_assert(f != NULL);
    // 30 users x 12 items, two taste groups by genre.
    for (int u = 1; u <= 30; u++) {
        for (int i = 1; i <= 12; i++) {
            if ((u + i) % 3 != 0) {
                int like = (u % 2) == (i % 2);
                fprintf(f, "%d\t%d\t%d\t%d\n", u, i, like ? 5 : 1, u * 100 + i);
            }
        }
    }
    fclose(f);
    f = fopen(items, "w");
    cr_assert(f != NULL);
    for (int i = 1; i <= 12; i++) {
        fprintf(f, "%d|Movie %d (1995)|01-Jan-1995||http://x|%d|%d\n", i, i,
                i % 2, 1 - i % 2);
    }
    fprintf(f, "99|Unrated|||http://x|1|1\n"); // not in the ratings
    fclose(f);
    f = fopen(bad, "w");
    cr_assert(f != NULL);
    fprintf(f, "1|A|||u|1|0\n2|B|||u|1|x\n");
    fclose(f);
    snprintf(args, sizeof(args),
             "--train %s --algo content --item-features %s --json", ratings,
             items);
    cr_assert_eq(run(args, buf, sizeof(buf)), 0, "output: %s", buf);
    cr_assert(strstr(buf, "\"algo\":\"content\"") != NULL, "output: %s", buf);
    // The genre predicts the rating exactly: every neighbour of the same
    // genre carries the user's one rating for that genre.
    double rmse = last_json_number(buf, "rmse");
    cr_assert(rmse < 0.01, "rmse %g", rmse);
    snprintf(args, sizeof(args),
             "--train %s --algo content --item-features %s", ratings, bad);
    cr_assert_eq(run(args, buf, sizeof(buf)), 1, "output: %s", buf);
    cr_assert(strstr(buf, "bad.item:2: bad feature value") != NULL,
              "output: %s", buf);
    snprintf(args, sizeof(args), "--train %s --algo content", ratings);
    cr_assert_eq(run(args, buf, sizeof(buf)), 2, "output: %s", buf);
    unlink(ratings);
    unlink(items);
    unlink(bad);
    rmdir(dir);
}

// The devices' last-item term in centralized rankings: on by default for
// timestamped implicit data (ML-100K leave-last-out, validation item),
// off with --transition 0, refused out of range; profiles come from the
// training interactions only (the validation ranking would otherwise see
// the test item, which is newer).
Test(train_cli, implicit_rankings_add_the_last_item_term, .timeout = 300)
{
    const char *dir = getenv("FR_DATA_DIR");
    cr_assert(dir != NULL, "FR_DATA_DIR is not set");
    char path[4096], args[4400];
    snprintf(path, sizeof(path), "%s/u.data", dir);
    cr_assert_eq(access(path, R_OK), 0, "MovieLens 100K missing: %s", path);
    double ndcg[2];
    for (int w = 0; w < 2; w++) {
        snprintf(args, sizeof(args),
                 "--train '%s' --split leave-last-out --eval val --loss "
                 "implicit --epochs 5 --json%s",
                 path, w ? "" : " --transition 0");
        cr_assert_eq(run(args, buf, sizeof(buf)), 0, "%s", buf);
        cr_assert_eq(last_json_number(buf, "transition"), w ? 1.0 : 0.0);
        ndcg[w] = last_json_number(buf, "ndcg10");
    }
    cr_assert(ndcg[1] > ndcg[0] + 0.02, "NDCG@10 %g with, %g without",
              ndcg[1], ndcg[0]);
    cr_assert_eq(run("--transition -1", buf, sizeof(buf)), 2);
    cr_assert(strstr(buf, "--transition") != NULL, "message: %s", buf);
}
