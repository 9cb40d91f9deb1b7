// fedrec-aggregator's command line and config file: every bad value is a
// clear error (the binary exits 2 on them).
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"

static fr_err
parse(fri_agg_args *a, char *err, size_t cap, int argc, const char **argv)
{
    return fri_agg_args_parse(a, argc, (char **) argv, err, cap);
}

#define ARGV(...) ((const char *[]){"fedrec-aggregator", __VA_ARGS__})
#define N(...) ((int) (sizeof(ARGV(__VA_ARGS__)) / sizeof(char *)))
#define EXPECT_BAD(needle, ...)                                             \
    do {                                                                    \
        fri_agg_args a_;                                                    \
        char         err_[512] = "";                                        \
        fr_err       rv = parse(&a_, err_, sizeof(err_), N(__VA_ARGS__),       \
                                ARGV(__VA_ARGS__));                         \
        cr_assert_neq(rv, FR_OK, "accepted");                               \
        cr_assert(strstr(err_, needle) != NULL, "'%s' lacks '%s'", err_,      \
                  needle);                                                  \
        fri_agg_args_free(&a_);                                              \
    } while (0)

Test(agg_args, good_and_bad_flags)
{
    fri_agg_args a;
    char         err[512] = "";
    cr_assert_eq(parse(&a, err, sizeof(err),
                       N("--listen", "tcp://127.0.0.1:5555", "--items",
                         "100", "--k", "8", "--algo", "grad",
                         "--server-opt=momentum", "--fraction", "0.5",
                         "--round-deadline", "2.5", "--rounds", "3"),
                       ARGV("--listen", "tcp://127.0.0.1:5555", "--items",
                            "100", "--k", "8", "--algo", "grad",
                            "--server-opt=momentum", "--fraction", "0.5",
                            "--round-deadline", "2.5", "--rounds", "3")),
                 FR_OK, "%s", err);
    cr_assert_eq(a.cfg.n_items, 100);
    cr_assert_eq(a.cfg.k, 8);
    cr_assert_eq(a.cfg.algo, FRI_AGG_GRAD);
    cr_assert_eq(a.cfg.server_opt, FRI_AGG_OPT_MOMENTUM);
    cr_assert_eq(a.cfg.round_deadline_ms, 2500);
    cr_assert_eq(a.cfg.rounds, 3);
    fri_agg_args_free(&a);

    EXPECT_BAD("--listen URL is required", "--items", "5");
    EXPECT_BAD("--items N is required", "--listen", "tcp://127.0.0.1:1");
    EXPECT_BAD("inproc", "--listen", "inproc://x", "--items", "5");
    EXPECT_BAD("--k wants an integer", "--listen", "tcp://h:1", "--items",
               "5", "--k", "abc");
    EXPECT_BAD("k must be in", "--listen", "tcp://h:1", "--items", "5",
               "--k", "0");
    EXPECT_BAD("--algo wants als, grad or vbmf", "--listen", "tcp://h:1",
               "--items", "5", "--algo", "svd");
    EXPECT_BAD("--loss wants", "--listen", "tcp://h:1", "--items", "5",
               "--loss", "hinge");
    EXPECT_BAD("fraction must be", "--listen", "tcp://h:1", "--items", "5",
               "--fraction", "2");
    EXPECT_BAD("--reg wants a number", "--listen", "tcp://h:1", "--items",
               "5", "--reg", "1x");
    EXPECT_BAD("--server-opt wants", "--listen", "tcp://h:1", "--items", "5",
               "--server-opt", "rmsprop");
    EXPECT_BAD("--http wants HOST:PORT", "--listen", "tcp://h:1", "--items",
               "5", "--http", "nope");
    EXPECT_BAD("unknown option --bogus", "--listen", "tcp://h:1", "--items",
               "5", "--bogus", "1");
    EXPECT_BAD("--rounds needs a value", "--listen", "tcp://h:1", "--items",
               "5", "--rounds");
    EXPECT_BAD("exceeds clients-per-round", "--listen", "tcp://h:1",
               "--items", "5", "--clients-per-round", "2", "--min-clients",
               "3");
    EXPECT_BAD("--log-level wants", "--listen", "tcp://h:1", "--items", "5",
               "--log-level", "loud");
    EXPECT_BAD("--key /nonexistent.key", "--listen", "tcp://h:1", "--items",
               "5", "--key", "/nonexistent.key");
    EXPECT_BAD("--allow /nonexistent", "--listen", "tcp://h:1", "--items",
               "5", "--allow", "/nonexistent");
}

Test(agg_args, config_file_and_override)
{
    char path[] = "/tmp/fr-agg-cfg-XXXXXX";
    int  fd     = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# aggregator\nlisten = tcp://127.0.0.1:7000\nitems = 50\n"
               "k = 4   # small\nmin-clients = 2\n");
    fclose(f);
    fri_agg_args a;
    char         err[512] = "";
    cr_assert_eq(parse(&a, err, sizeof(err), N("--config", path, "--k", "6"),
                       ARGV("--config", path, "--k", "6")),
                 FR_OK, "%s", err);
    cr_assert_eq(a.cfg.n_items, 50);
    cr_assert_eq(a.cfg.k, 6, "flag must override the file");
    cr_assert_eq(a.cfg.min_clients, 2);
    cr_assert_str_eq(a.listen, "tcp://127.0.0.1:7000");
    fri_agg_args_free(&a);

    f = fopen(path, "w");
    fprintf(f, "items = 50\nthis line is wrong\n");
    fclose(f);
    char want[600];
    snprintf(want, sizeof(want), "%s:2", path);
    EXPECT_BAD(want, "--config", path);
    f = fopen(path, "w");
    fprintf(f, "itemz = 50\n");
    fclose(f);
    EXPECT_BAD("unknown option --itemz", "--config", path);
    unlink(path);

    // Allow-list file: one hex key per line.
    char ap[] = "/tmp/fr-agg-allow-XXXXXX";
    fd        = mkstemp(ap);
    f         = fdopen(fd, "w");
    fprintf(f, "# enrolled\n%064d\n", 1);
    fprintf(f, "zz\n");
    fclose(f);
    EXPECT_BAD("expected a hex public key", "--listen", "tcp://h:1",
               "--items", "5", "--allow", ap);
    f = fopen(ap, "w");
    fprintf(f, "%064d\n%0128d\n", 1, 2);
    fclose(f);
    cr_assert_eq(parse(&a, err, sizeof(err),
                       N("--listen", "tcp://h:1", "--items", "5", "--allow",
                         ap),
                       ARGV("--listen", "tcp://h:1", "--items", "5",
                            "--allow", ap)),
                 FR_OK, "%s", err);
    cr_assert_eq(a.cfg.n_allow, 2);
    fri_agg_args_free(&a);
    unlink(ap);
}

Test(agg_args, preauth_limits)
{
    fri_agg_args a;
    char         err[512] = "";
    cr_assert_eq(
        parse(&a, err, sizeof(err),
              N("--listen", "tcp://h:1", "--items", "5", "--max-frame",
                "1048576", "--handshake-timeout", "2.5", "--max-connections",
                "7", "--max-sessions-per-key", "2", "--hello-rate=3.5",
                "--hello-burst", "9", "--contexts", "16"),
              ARGV("--listen", "tcp://h:1", "--items", "5", "--max-frame",
                   "1048576", "--handshake-timeout", "2.5",
                   "--max-connections", "7", "--max-sessions-per-key", "2",
                   "--hello-rate=3.5", "--hello-burst", "9", "--contexts",
                   "16")),
        FR_OK, "%s", err);
    cr_assert_eq(a.net.max_frame, 1048576);
    cr_assert_eq(a.net.handshake_timeout_ms, 2500);
    cr_assert_eq(a.net.max_connections, 7);
    cr_assert_eq(a.cfg.max_sessions_per_key, 2);
    cr_assert_float_eq(a.net.hello_rate, 3.5, 1e-9);
    cr_assert_eq(a.net.hello_burst, 9);
    cr_assert_eq(a.net.n_contexts, 16);
    cr_assert(a.cfg.closer_thread, "the server closes rounds off I/O");
    fri_agg_args_free(&a);
    EXPECT_BAD("--handshake-timeout wants seconds", "--listen", "tcp://h:1",
               "--items", "5", "--handshake-timeout", "-1");
    EXPECT_BAD("--hello-burst must be >= 1", "--listen", "tcp://h:1",
               "--items", "5", "--hello-burst", "0");
    EXPECT_BAD("max-sessions-per-key must be >= 1", "--listen", "tcp://h:1",
               "--items", "5", "--max-sessions-per-key", "0");
    // getopt_long would take a unique prefix; flags are exact.
    EXPECT_BAD("unknown option --item", "--listen", "tcp://h:1", "--item",
               "5");
    EXPECT_BAD("unexpected argument 'stray'", "--listen", "tcp://h:1",
               "--items", "5", "stray");
}

// Every flag the usage text documents reaches apply(): a flag documented
// but missing from the getopt table would be "unknown".
Test(agg_args, every_documented_flag_is_parsed)
{
    char  *text = NULL;
    size_t len  = 0;
    FILE  *f    = open_memstream(&text, &len);
    cr_assert_not_null(f);
    fri_agg_usage(f);
    fclose(f);
    int         n_seen = 0;
    const char *p      = text;
    while ((p = strstr(p, "\n  --")) != NULL) {
        p += 5;
        char   name[64];
        size_t nl = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
        cr_assert(nl > 0 && nl < sizeof(name));
        snprintf(name, sizeof(name), "--%.*s", (int) nl, p);
        if (strcmp(name, "--help") == 0) {
            continue;
        }
        fri_agg_args a;
        char         err[512] = "";
        const char  *argv[]   = {"fedrec-aggregator", "--listen",
                                 "tcp://127.0.0.1:1", "--items", "5", name,
                                 "1"};
        fr_err rv = parse(&a, err, sizeof(err), 7, argv);
        cr_assert(rv == FR_OK || strstr(err, "unknown option") == NULL,
                  "%s: %s", name, err);
        fri_agg_args_free(&a);
        n_seen++;
    }
    free(text);
    cr_assert_geq(n_seen, 40, "usage lists %d flags", n_seen);
}

// Private by default: bounded cohorts without a choice of algorithm or
// aggregation run VBMF on latest statistics under SecAgg+; any choice, or
// unbounded cohorts, keeps the plain defaults.
#define DEFAULTS(algo_, latest_, secagg_, priv_, ...)                       \
    do {                                                                    \
        fri_agg_args a_;                                                    \
        char         err_[512] = "";                                        \
        cr_assert_eq(parse(&a_, err_, sizeof(err_), N(__VA_ARGS__),         \
                           ARGV(__VA_ARGS__)),                              \
                     FR_OK, "%s", err_);                                    \
        cr_assert_eq(a_.cfg.algo, (algo_));                                 \
        cr_assert_eq(a_.cfg.stats_latest, (latest_));                       \
        cr_assert_eq(a_.cfg.secagg, (secagg_));                             \
        cr_assert_eq(a_.private_default, (priv_));                          \
        fri_agg_args_free(&a_);                                             \
    } while (0)

Test(agg_args, private_by_default)
{
    DEFAULTS(FRI_AGG_VBMF, 1, FRI_AGG_SECAGG_PLUS, 1, "--listen",
             "tcp://h:1", "--items", "50", "--clients-per-round", "3");
    DEFAULTS(FRI_AGG_VBMF, 1, FRI_AGG_SECAGG_PLUS, 1, "--listen",
             "tcp://h:1", "--items", "50", "--clients-per-round", "3",
             "--stats-latest", "1");
    // Opting out, or choosing, keeps the plain defaults.
    DEFAULTS(FRI_AGG_ALS, 0, FRI_AGG_SECAGG_OFF, 0, "--listen", "tcp://h:1",
             "--items", "50", "--clients-per-round", "3", "--secure-agg",
             "off");
    DEFAULTS(FRI_AGG_ALS, 0, FRI_AGG_SECAGG_OFF, 0, "--listen", "tcp://h:1",
             "--items", "50", "--clients-per-round", "3", "--algo", "als");
    DEFAULTS(FRI_AGG_ALS, 0, FRI_AGG_SECAGG_OFF, 0, "--listen", "tcp://h:1",
             "--items", "50", "--clients-per-round", "3", "--stats-latest",
             "0");
    // Implicit feedback: iALS, its statistics masked (SPEC S1c).
    DEFAULTS(FRI_AGG_ALS, 0, FRI_AGG_SECAGG_PLUS, 1, "--listen", "tcp://h:1",
        "--items", "50", "--clients-per-round", "3", "--loss", "implicit");
    DEFAULTS(FRI_AGG_ALS, 0, FRI_AGG_SECAGG_OFF, 0, "--listen", "tcp://h:1",
        "--items", "50", "--clients-per-round", "3", "--loss", "implicit",
        "--secure-agg", "off");
    // ... carried across rounds at the cohort's share when the population
    // is known; --stats-forget sets the rate without leaving the profile.
    {
        const char *argv[] = { "fedrec-aggregator", "--listen", "tcp://h:1",
            "--items", "50", "--clients-per-round", "10", "--loss",
            "implicit", "--population", "200" };
        fri_agg_args a;
        char         err[256];
        cr_assert_eq(fri_agg_args_parse(&a, 11, (char **) argv, err,
                         sizeof(err)),
            FR_OK, "%s", err);
        cr_assert_float_eq(a.cfg.stats_forget, 0.05f, 1e-7f);
        cr_assert_eq(a.private_default, 1);
        fri_agg_args_free(&a);
        const char *argv2[] = { "fedrec-aggregator", "--listen", "tcp://h:1",
            "--items", "50", "--clients-per-round", "10", "--loss",
            "implicit", "--stats-forget", "0.3" };
        cr_assert_eq(fri_agg_args_parse(&a, 11, (char **) argv2, err,
                         sizeof(err)),
            FR_OK, "%s", err);
        cr_assert_float_eq(a.cfg.stats_forget, 0.3f, 1e-7f);
        cr_assert_eq(a.cfg.secagg, FRI_AGG_SECAGG_PLUS);
        cr_assert_eq(a.private_default, 1);
        fri_agg_args_free(&a);
        // Unknown population: each round alone (logged at start-up).
        cr_assert_eq(fri_agg_args_parse(&a, 9, (char **) argv, err,
                         sizeof(err)),
            FR_OK, "%s", err);
        cr_assert_float_eq(a.cfg.stats_forget, 1.0f, 0);
        fri_agg_args_free(&a);
    }
    // Secure aggregation needs a bounded cohort of at least 2.
    DEFAULTS(FRI_AGG_ALS, 0, FRI_AGG_SECAGG_OFF, 0, "--listen", "tcp://h:1",
             "--items", "50");
    DEFAULTS(FRI_AGG_ALS, 0, FRI_AGG_SECAGG_OFF, 0, "--listen", "tcp://h:1",
             "--items", "50", "--clients-per-round", "1");
    // The same from a config file.
    char path[] = "/tmp/fr_args_cfgXXXXXX";
    int  fd     = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char txt[] = "clients-per-round = 4\n";
    cr_assert_eq(write(fd, txt, sizeof(txt) - 1), (ssize_t) (sizeof(txt) - 1));
    close(fd);
    DEFAULTS(FRI_AGG_VBMF, 1, FRI_AGG_SECAGG_PLUS, 1, "--listen",
             "tcp://h:1", "--items", "50", "--config", path);
    unlink(path);
}

// The tree's flags: an edge needs the root's key file and a valid
// credential for its own key; a root takes no secure aggregation.
Test(agg_args, tree_flags)
{
    EXPECT_BAD("--upstream and --upstream-key go together", "--listen",
               "tcp://h:1", "--items", "5", "--upstream", "tcp://h:2");
    EXPECT_BAD("--upstream wants tcp://", "--listen", "tcp://h:1", "--items",
               "5", "--upstream", "http://h:2");
    EXPECT_BAD("--edge-shard wants I/N", "--listen", "tcp://h:1", "--items",
               "5", "--edge-shard", "2/2");
    EXPECT_BAD("--edge-shard wants I/N", "--listen", "tcp://h:1", "--items",
               "5", "--edge-shard", "1");
    EXPECT_BAD("--upstream-key /nonexistent.pub", "--listen", "tcp://h:1",
               "--items", "5", "--upstream", "tcp://h:2", "--upstream-key",
               "/nonexistent.pub");
    EXPECT_BAD("--edge-credential needs --upstream", "--listen", "tcp://h:1",
               "--items", "5", "--edge-credential", "/nonexistent.cred");
    EXPECT_BAD("secure-agg runs at the edges", "--listen", "tcp://h:1",
               "--items", "5", "--root-max-devices", "10", "--secure-agg",
               "plus", "--clients-per-round", "4");
    EXPECT_BAD("dp off", "--listen", "tcp://h:1", "--items", "5",
               "--root-max-devices", "10", "--stats-latest", "1");
    // A credential file that is not one.
    char dir[] = "/tmp/fr-args-tree-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char key[128], pub[128], cred[128], cmd[512];
    snprintf(key, sizeof(key), "%s/k.key", dir);
    snprintf(pub, sizeof(pub), "%s/k.pub", dir);
    snprintf(cred, sizeof(cred), "%s/k.cred", dir);
    snprintf(cmd, sizeof(cmd), "%s/bin/fedrec-keygen --out %s/k >/dev/null",
             FR_BINARY_DIR, dir);
    cr_assert_eq(system(cmd), 0);
    FILE *f = fopen(cred, "w");
    cr_assert_not_null(f);
    fputs("not a credential", f);
    fclose(f);
    EXPECT_BAD("not a fedrec credential file", "--listen", "tcp://h:1",
               "--items", "5", "--key", key, "--upstream", "tcp://h:2",
               "--upstream-key", pub, "--edge-credential", cred);
    // Signed by the edge itself, not by the root it names.
    snprintf(cmd, sizeof(cmd),
             "%s/bin/fedrec-keygen --credential --signer %s --subject %s "
             "--out %s/self >/dev/null",
             FR_BINARY_DIR, key, pub, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(cred, sizeof(cred), "%s/self.cred", dir);
    char other[128];
    snprintf(cmd, sizeof(cmd), "%s/bin/fedrec-keygen --out %s/root >/dev/null",
             FR_BINARY_DIR, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(other, sizeof(other), "%s/root.pub", dir);
    EXPECT_BAD("not signed by the --upstream-key root", "--listen",
               "tcp://h:1", "--items", "5", "--key", key, "--upstream",
               "tcp://h:2", "--upstream-key", other, "--edge-credential",
               cred);
    fri_agg_args a;
    char         err[512] = "";
    const char  *ok[]     = {"fedrec-aggregator", "--listen", "tcp://h:1",
                             "--items", "5", "--key", key, "--upstream",
                             "tcp://h:2", "--upstream-key", pub,
                             "--edge-credential", cred};
    cr_assert_eq(parse(&a, err, sizeof(err), 13, ok), FR_OK, "%s", err);
    cr_assert(a.cfg.edge && a.cfg.has_edge_cred);
    fri_agg_args_free(&a);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

// Buffered mode's flags: parsed, documented limits, no private default
// (secure aggregation needs a cohort), and the clear refusals.
Test(agg_args, buffered_flags)
{
    fri_agg_args a;
    char         err[512] = "";
    cr_assert_eq(parse(&a, err, sizeof(err),
                       N("--listen", "tcp://h:1", "--items", "50",
                         "--buffer", "8", "--max-staleness", "3"),
                       ARGV("--listen", "tcp://h:1", "--items", "50",
                            "--buffer", "8", "--max-staleness", "3")),
                 FR_OK, "%s", err);
    cr_assert_eq(a.cfg.buffer, 8);
    cr_assert_eq(a.cfg.max_staleness, 3);
    cr_assert_eq(a.cfg.secagg, FRI_AGG_SECAGG_OFF);
    cr_assert_eq(a.private_default, 0);
    fri_agg_args_free(&a);
    EXPECT_BAD("secure-agg off", "--listen", "tcp://h:1", "--items", "50",
               "--buffer", "8", "--secure-agg", "full",
               "--clients-per-round", "4");
    EXPECT_BAD("no cohort", "--listen", "tcp://h:1", "--items", "50",
               "--buffer", "8", "--clients-per-round", "4");
    EXPECT_BAD("max-staleness needs buffer", "--listen", "tcp://h:1",
               "--items", "50", "--max-staleness", "2");
    EXPECT_BAD("--max-staleness wants an integer in 0..1000", "--listen",
               "tcp://h:1", "--items", "50", "--buffer", "2",
               "--max-staleness", "1001");
}

// SIGHUP re-reads only the items line of --config (a growing catalog).
Test(agg_args, config_items_reread)
{
    char path[] = "/tmp/fr-agg-hup-XXXXXX";
    int  fd     = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "k = 4\nitems = 1700   # grown\nunknown-later = 1\n");
    fclose(f);
    uint32_t n = 0;
    char     err[512] = "";
    cr_assert_eq(fri_agg_args_config_items(path, &n, err, sizeof(err)), FR_OK,
                 "%s", err);
    cr_assert_eq(n, 1700);
    f = fopen(path, "w");
    fprintf(f, "k = 4\n");
    fclose(f);
    cr_assert_eq(fri_agg_args_config_items(path, &n, err, sizeof(err)),
                 FR_ENOENT);
    cr_assert(strstr(err, "no items line") != NULL, "%s", err);
    const char *bad[] = {"items = many\n", "items = -3\n", "items =\n",
                         "items = 99999999999\n", "items 5\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        err[0] = 0;
        cr_assert_neq(fri_agg_args_config_items(path, &n, err, sizeof(err)),
                      FR_OK, "accepted: %s", bad[i]);
        cr_assert(err[0] != 0, "no message for: %s", bad[i]);
        cr_assert_eq(n, 1700, "unchanged on error");
    }
    unlink(path);
    cr_assert_neq(fri_agg_args_config_items(path, &n, err, sizeof(err)),
                  FR_OK);
}
