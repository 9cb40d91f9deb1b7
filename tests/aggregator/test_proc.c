// Multi-process: build/bin/fedrec-aggregator and fedrec-client over tcp
// loopback. Clients train rounds, the aggregator is SIGKILLed, restarts
// from its checkpoint and the clients continue; SIGTERM exits 0.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROC_MAX_KIDS 16
#include "proc_harness.h"

static int
file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    char line[2048];
    int  found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        found = strstr(line, needle) != NULL;
    }
    fclose(f);
    return found;
}

// Polls path for needle up to ms milliseconds: the aggregator logs from
// its closer thread, after the devices already got their answers.
static int
file_gets(const char *path, const char *needle, int ms)
{
    for (int t = 0; t <= ms; t += 50) {
        if (file_has(path, needle)) {
            return 1;
        }
        sleep_ms(50);
    }
    return 0;
}

static void
setup(void)
{
    proc_setup("/tmp/fr-agg-proc-XXXXXX");
    // Ratings: 3 users x 20 items, "user item rating".
    char path[400];
    snprintf(path, sizeof(path), "%s/ratings.txt", tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int u = 1; u <= 3; u++) {
        for (int i = 1; i < 20; i++) {
            if ((u + i) % 3 != 0) {
                fprintf(f, "%d %d %d\n", u, i, 1 + (u * i) % 5);
            }
        }
    }
    fclose(f);
}

static void
teardown(void)
{
    proc_teardown();
}

static pid_t
start_agg(const char *url, const char *log)
{
    char exe[600], key[400], st[400];
    snprintf(exe, sizeof(exe), "%s/fedrec-aggregator", bin);
    snprintf(key, sizeof(key), "%s/agg.key", tmp);
    snprintf(st, sizeof(st), "%s/state", tmp);
    char *argv[] = {exe,     "--listen",          (char *) url,
                    "--key", key,                 "--state",
                    st,      "--items",           "25",
                    "--k",   "3",                 "--clients-per-round",
                    "3",     "--round-deadline",  "5",
                    "--min-clients", "1",         NULL};
    return spawn(log, argv);
}

static void
run_clients(const char *url, int rounds)
{
    char exe[600], pub[400], rat[400], r[16];
    snprintf(exe, sizeof(exe), "%s/fedrec-client", bin);
    snprintf(pub, sizeof(pub), "%s/agg.pub", tmp);
    snprintf(rat, sizeof(rat), "%s/ratings.txt", tmp);
    snprintf(r, sizeof(r), "%d", rounds);
    pid_t p[3];
    for (int u = 0; u < 3; u++) {
        char user[8], log[400];
        snprintf(user, sizeof(user), "%d", u + 1);
        snprintf(log, sizeof(log), "%s/client%d.log", tmp, u + 1);
        char *argv[] = {exe,       "--connect", (char *) url, "--server-key",
                        pub,       "--ratings", rat,          "--user",
                        user,      "--rounds",  r,            "--timeout-ms",
                        "3000",    NULL};
        p[u] = spawn(log, argv);
    }
    for (int u = 0; u < 3; u++) {
        int rc = wait_for(p[u], 30000);
        cr_assert_eq(rc, 0, "client %d exit %d (see %s/client%d.log)", u + 1,
                     rc, tmp, u + 1);
    }
}

Test(agg_proc, sigkill_restart_resumes_from_checkpoint, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char exe[600], prefix[400], url[64], log[400];
    snprintf(exe, sizeof(exe), "%s/fedrec-keygen", bin);
    snprintf(prefix, sizeof(prefix), "%s/agg", tmp);
    char *kg[] = {exe, "--out", prefix, NULL};
    snprintf(log, sizeof(log), "%s/keygen.log", tmp);
    cr_assert_eq(wait_for(spawn(log, kg), 10000), 0, "keygen failed");
    srand((unsigned) (getpid() ^ time(NULL)));
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", 20000 + rand() % 30000);
    snprintf(log, sizeof(log), "%s/agg1.log", tmp);

    pid_t agg = start_agg(url, log);
    sleep_ms(300);
    run_clients(url, 2);
    // "round opened" for round 3 follows round 2's checkpoint ("round
    // closed" is logged before it is written).
    cr_assert(file_gets(log, "msg=\"round opened\" round=3", 20000),
              "two rounds did not close; see %s", log);
    // SIGKILL: nothing runs at exit; the checkpoint must carry the rounds.
    kill(agg, SIGKILL);
    cr_assert_neq(wait_for(agg, 5000), -1);

    snprintf(log, sizeof(log), "%s/agg2.log", tmp);
    agg = start_agg(url, log);
    sleep_ms(300);
    cr_assert(file_gets(log, "msg=\"checkpoint loaded\"", 20000), "see %s",
              log);
    cr_assert(file_gets(log, "model_version=2", 20000), "see %s", log);
    run_clients(url, 1);
    cr_assert(file_gets(log, "model_version=3", 20000),
              "no third round; see %s",
              log);
    kill(agg, SIGTERM);
    cr_assert_eq(wait_for(agg, 10000), 0, "SIGTERM exit status");
    cr_assert(file_has(log, "msg=\"stopped\" rounds_completed=3"), "see %s",
              log);
}

Test(agg_proc, bad_flag_exits_2, .init = setup, .fini = teardown)
{
    char exe[600], log[400];
    snprintf(exe, sizeof(exe), "%s/fedrec-aggregator", bin);
    snprintf(log, sizeof(log), "%s/bad.log", tmp);
    char *argv[] = {exe, "--listen", "tcp://127.0.0.1:1", "--items", "10",
                    "--fraction", "7", NULL};
    cr_assert_eq(wait_for(spawn(log, argv), 10000), 2);
    cr_assert(file_has(log, "fraction"), "message does not name the flag");
}

// Buffered mode end to end: the aggregator binary with --buffer 2 and
// three real clients over tcp (the closer thread steps the model while
// clients keep arriving; refused or no-task check-ins are retried).
Test(agg_proc, buffered_mode_with_real_clients, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char exe[600], prefix[400], url[64], log[400], key[400], st[400];
    snprintf(exe, sizeof(exe), "%s/fedrec-keygen", bin);
    snprintf(prefix, sizeof(prefix), "%s/agg", tmp);
    char *kg[] = {exe, "--out", prefix, NULL};
    snprintf(log, sizeof(log), "%s/keygen.log", tmp);
    cr_assert_eq(wait_for(spawn(log, kg), 10000), 0, "keygen failed");
    srand((unsigned) (getpid() ^ time(NULL)));
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", 20000 + rand() % 30000);
    snprintf(log, sizeof(log), "%s/agg.log", tmp);
    snprintf(exe, sizeof(exe), "%s/fedrec-aggregator", bin);
    snprintf(key, sizeof(key), "%s/agg.key", tmp);
    snprintf(st, sizeof(st), "%s/state", tmp);
    char *argv[] = {exe,        "--listen",       url,  "--key",
                    key,        "--state",        st,   "--items",
                    "25",       "--k",            "3",  "--buffer",
                    "2",        "--max-staleness", "2", "--round-deadline",
                    "5",        NULL};
    pid_t agg = spawn(log, argv);
    sleep_ms(300);
    cr_assert(file_gets(log, "buffer=2 max_staleness=2", 5000), "see %s",
              log);
    run_clients(url, 2); // six reports: three steps of two if none is late
    // A report can arrive while the model steps, or too stale on a slow
    // (sanitized, loaded) machine: those are refused by design, so more
    // check-ins make up for them.
    for (int more = 0; more < 4 && !file_has(log, "model_version=3"); more++) {
        run_clients(url, 1);
    }
    cr_assert(file_gets(log, "model_version=3", 20000),
              "fewer than three steps; see %s", log);
    kill(agg, SIGTERM);
    cr_assert_eq(wait_for(agg, 10000), 0, "SIGTERM exit status");
}

static void
write_config(const char *path, int items)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "# test\nitems = %d\nk = 3\nclients-per-round = 3\n"
               "round-deadline = 5\nmin-clients = 1\n",
            items);
    fclose(f);
}

// A catalog that grows: SIGHUP with a larger `items` in the --config file;
// the devices rate items beyond the first catalog, fetch the larger model
// and keep contributing; a smaller `items` is refused and logged.
Test(agg_proc, sighup_grows_the_catalog, .init = setup, .fini = teardown,
     .timeout = 90)
{
    char exe[600], prefix[400], url[64], log[400], key[400], st[400],
        conf[400], rat[400];
    snprintf(exe, sizeof(exe), "%s/fedrec-keygen", bin);
    snprintf(prefix, sizeof(prefix), "%s/agg", tmp);
    char *kg[] = {exe, "--out", prefix, NULL};
    snprintf(log, sizeof(log), "%s/keygen.log", tmp);
    cr_assert_eq(wait_for(spawn(log, kg), 10000), 0, "keygen failed");
    // Ratings of items 30..35, beyond the first catalog of 25.
    snprintf(rat, sizeof(rat), "%s/ratings.txt", tmp);
    FILE *f = fopen(rat, "a");
    cr_assert_not_null(f);
    for (int u = 1; u <= 3; u++) {
        for (int i = 30; i < 36; i++) {
            fprintf(f, "%d %d %d\n", u, i, 1 + (u + i) % 5);
        }
    }
    fclose(f);
    snprintf(conf, sizeof(conf), "%s/agg.conf", tmp);
    write_config(conf, 25);
    srand((unsigned) (getpid() ^ time(NULL)));
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", 20000 + rand() % 30000);
    snprintf(log, sizeof(log), "%s/agg.log", tmp);
    snprintf(exe, sizeof(exe), "%s/fedrec-aggregator", bin);
    snprintf(key, sizeof(key), "%s/agg.key", tmp);
    snprintf(st, sizeof(st), "%s/state", tmp);
    char *argv[] = {exe, "--listen", url, "--key", key, "--state", st,
                    "--config", conf, NULL};
    pid_t agg = spawn(log, argv);
    sleep_ms(300);
    run_clients(url, 1);
    cr_assert(file_gets(log, "model_version=1", 20000), "see %s", log);

    write_config(conf, 40);
    kill(agg, SIGHUP);
    cr_assert(file_gets(log, "msg=\"catalog growth asked", 5000), "see %s",
              log);
    run_clients(url, 2);
    cr_assert(file_gets(log, "msg=\"catalog grown\" items=25 new_items=40",
                        20000),
              "see %s", log);
    cr_assert(file_gets(log, "model_version=3", 20000), "see %s", log);

    write_config(conf, 30);
    kill(agg, SIGHUP);
    cr_assert(file_gets(log, "SIGHUP: configuration not applied", 5000),
              "see %s", log);
    cr_assert(file_has(log, "only grows"), "see %s", log);
    kill(agg, SIGTERM);
    cr_assert_eq(wait_for(agg, 10000), 0, "SIGTERM exit status");

    // A restart with the first --config keeps the 40 items.
    write_config(conf, 25);
    snprintf(log, sizeof(log), "%s/agg2.log", tmp);
    agg = spawn(log, argv);
    cr_assert(file_gets(log, "checkpoint_items=40", 20000), "see %s", log);
    run_clients(url, 1);
    cr_assert(file_gets(log, "model_version=4", 20000), "see %s", log);
    kill(agg, SIGTERM);
    cr_assert_eq(wait_for(agg, 10000), 0, "SIGTERM exit status");
}
