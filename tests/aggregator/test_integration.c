// Multi-process integration: build/bin/fedrec-aggregator with many
// fedrec-client processes over tcp loopback (and once over ipc). Federated
// accuracy is compared with fedrec-train on the same split; a client that
// dies after check-in must not hold the round past its deadline; garbage,
// a wrongly pinned server key and replayed frames are refused while the
// round completes for the others. Every wait is bounded and every child is
// SIGKILLed on failure (teardown).
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "ckpt.h"
#include "dataset.h"
#include "fedrec/client.h"
#include "keys.h"
#include "mf.h"
#include "proc_harness.h"

static int port; // NNG port; port + 1 serves HTTP

// GET http://127.0.0.1:port+1/status into buf; 0 on success.
static int
http_status(char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family      = AF_INET;
    sa.sin_port        = htons((uint16_t) (port + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    const char req[] = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Connection: close\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t) (sizeof(req) - 1)) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0) {
            break;
        }
        len += (size_t) r;
        if (len + 1 >= cap) {
            break;
        }
    }
    close(fd);
    buf[len] = 0;
    return strstr(buf, "\"round\"") != NULL ? 0 : -1;
}

// Value of "key": in the JSON text (first occurrence), or -1.
static double
json_num(const char *json, const char *key)
{
    char pat[96];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p != NULL ? strtod(p + strlen(pat), NULL) : -1.0;
}

// Polls /status until key >= want (or timeout); returns the last value.
static double
status_wait(const char *key, double want, int ms)
{
    char   buf[8192];
    double v   = -1;
    double end = now_ms() + ms;
    do {
        if (http_status(buf, sizeof(buf)) == 0) {
            v = json_num(buf, key);
            if (v >= want) {
                break;
            }
        }
        sleep_ms(20);
    } while (now_ms() < end);
    return v;
}

static void
keygen(const char *name)
{
    char exe[600], prefix[400], log[400];
    snprintf(exe, sizeof(exe), "%s/fedrec-keygen", bin);
    path_of(prefix, sizeof(prefix), name);
    path_of(log, sizeof(log), "keygen.log");
    char *kg[] = {exe, "--out", prefix, NULL};
    cr_assert_eq(wait_for(spawn(log, kg), 10000), 0, "keygen failed");
}

// Synthetic ratings, split 80/20 by position: train.txt and test.txt as
// "user item rating" with item ids = catalog indices.
#define NU 20
#define NI 40
static fri_dataset data;

static void
write_data(void)
{
    fri_synth_config sc;
    fri_synth_config_init(&sc);
    sc.n_users = NU;
    sc.n_items = NI;
    sc.k       = 2;
    sc.density = 0.9;
    sc.noise   = 0.3;
    sc.seed    = 5;
    cr_assert_eq(fri_synth_generate(&data, &sc), FR_OK);
    char tr[400], te[400];
    path_of(tr, sizeof(tr), "train.txt");
    path_of(te, sizeof(te), "test.txt");
    FILE *ft = fopen(tr, "w"), *fe = fopen(te, "w");
    cr_assert(ft != NULL && fe != NULL);
    for (size_t i = 0; i < data.n; i++) {
        const fri_triplet *t = &data.r[i];
        fprintf(i % 5 == 4 ? fe : ft, "%u %u %g\n", t->user + 1, t->item,
                (double) t->rating);
    }
    fclose(ft);
    fclose(fe);
}

static int
pick_port(void)
{
    // Below the ephemeral range (32768+), so no outgoing connection of a
    // concurrent test holds it; even: port + 1 serves HTTP.
    return 20000 + 2 * (rand() % 6000);
}

static void
setup(void)
{
    proc_setup("/tmp/fr-integ-XXXXXX");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    srand((unsigned) (getpid() ^ ts.tv_nsec));
    port = pick_port();
    memset(&data, 0, sizeof(data));
    keygen("agg");
    write_data();
}

static void
teardown(void)
{
    proc_teardown();
    fri_dataset_free(&data);
}

// Starts the aggregator with extra flags (NULL-terminated) and waits until
// its /status answers. url == "" means tcp loopback: the chosen URL is
// written into it. If the aggregator exits at once (a port in use), it is
// retried on other ports.
static pid_t
start_agg(char *url, size_t url_cap, const char *const *extra)
{
    char exe[600], key[400], log[400], http[64];
    snprintf(exe, sizeof(exe), "%s/fedrec-aggregator", bin);
    path_of(key, sizeof(key), "agg.key");
    path_of(log, sizeof(log), "agg.log");
    int tcp = url[0] == 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        if (attempt > 0) {
            port = pick_port();
        }
        if (tcp) {
            snprintf(url, url_cap, "tcp://127.0.0.1:%d", port);
        }
        snprintf(http, sizeof(http), "127.0.0.1:%d", port + 1);
        char *argv[48];
        int   n   = 0;
        argv[n++] = exe;
        argv[n++] = "--listen";
        argv[n++] = url;
        argv[n++] = "--key";
        argv[n++] = key;
        argv[n++] = "--http";
        argv[n++] = http;
        argv[n++] = "--items";
        argv[n++] = "40";
        argv[n++] = "--retry-after";
        argv[n++] = "0.05";
        argv[n++] = "--log-level";
        argv[n++] = "debug";
        for (int i = 0; extra[i] != NULL && n < 46; i++) {
            argv[n++] = (char *) extra[i];
        }
        argv[n]    = NULL;
        pid_t  p   = spawn(log, argv);
        // Generous: a sanitizer build on a loaded machine starts slowly.
        double end = now_ms() + 20000;
        while (now_ms() < end) {
            char buf[8192];
            if (wait_for(p, 0) != -1) {
                break; // exited: try another port
            }
            if (http_status(buf, sizeof(buf)) == 0) {
                return p;
            }
            sleep_ms(20);
        }
        kill(p, SIGKILL);
        (void) wait_for(p, 5000);
    }
    cr_assert_fail("aggregator did not come up; see %s", log);
    return -1;
}

// fedrec-client for user u (1-based) with rounds rounds; state file
// cU.state under the fixed key file when with_state.
static pid_t
start_client(const char *url, int u, int rounds, const char *server_pub,
             int with_state)
{
    char exe[600], pub[400], rat[400], r[16], user[16], log[400], st[400],
        sk[400];
    snprintf(exe, sizeof(exe), "%s/fedrec-client", bin);
    path_of(pub, sizeof(pub), server_pub);
    path_of(rat, sizeof(rat), "train.txt");
    snprintf(r, sizeof(r), "%d", rounds);
    snprintf(user, sizeof(user), "%d", u);
    snprintf(log, sizeof(log), "%s/client%d.log", tmp, u);
    snprintf(st, sizeof(st), "%s/c%d.state", tmp, u);
    path_of(sk, sizeof(sk), "state.key");
    char *argv[] = {exe,         "--connect",  (char *) url, "--server-key",
                    pub,         "--ratings",  rat,          "--user",
                    user,        "--rounds",   r,            "--timeout-ms",
                    "3000",      "--json",     NULL,         NULL,
                    NULL,        NULL,         NULL};
    if (with_state) {
        argv[14] = "--state";
        argv[15] = st;
        argv[16] = "--state-key-file";
        argv[17] = sk;
    }
    return spawn(log, argv);
}

static void
wait_clients(const pid_t *p, int n, int ms)
{
    double end = now_ms() + ms;
    for (int i = 0; i < n; i++) {
        int left = (int) (end - now_ms());
        int rc   = wait_for(p[i], left > 0 ? left : 1);
        cr_assert_eq(rc, 0, "client %d exit %d (see %s/client%d.log)", i + 1,
                     rc, tmp, i + 1);
    }
}

// RMSE of held-out ratings predicted by the clients' own saved state.
static double
client_test_rmse(void)
{
    char pub[400], te[400];
    path_of(pub, sizeof(pub), "agg.pub");
    path_of(te, sizeof(te), "test.txt");
    fri_pubkeys pk;
    cr_assert_eq(fri_pub_load(&pk, pub), FR_OK);
    uint8_t key[FR_STATEKEYBYTES];
    memset(key, 0x42, sizeof(key));
    fr_client *c[NU + 1] = {NULL};
    for (int u = 1; u <= NU; u++) {
        fr_client_config cfg;
        fr_client_config_init(&cfg);
        memcpy(cfg.server_pk, pk.kx, 32);
        memcpy(cfg.server_pk + 32, pk.sign, 32);
        char st[400];
        snprintf(st, sizeof(st), "%s/c%d.state", tmp, u);
        cfg.state_path = st;
        memcpy(cfg.state_key, key, sizeof(key));
        cr_assert_eq(fr_client_create(&c[u], &cfg), FR_OK, "state %s", st);
        cr_assert_eq(fr_client_fold_in(c[u]), FR_OK, "%s",
                     fr_client_errmsg(c[u]));
    }
    FILE *f = fopen(te, "r");
    cr_assert_not_null(f);
    unsigned u, i;
    double   r, se = 0;
    size_t   n = 0;
    while (fscanf(f, "%u %u %lf", &u, &i, &r) == 3) {
        cr_assert(u >= 1 && u <= NU);
        float s = 0;
        cr_assert_eq(fr_client_predict(c[u], i, &s), FR_OK);
        se += ((double) s - r) * ((double) s - r);
        n++;
    }
    fclose(f);
    for (int k = 1; k <= NU; k++) {
        fr_client_destroy(c[k]);
    }
    cr_assert(n > 20);
    return sqrt(se / (double) n);
}

// RMSE of held-out ratings under the aggregator's checkpointed item model,
// each user's vector solved centrally from its training ratings.
static double
server_test_rmse_in(const char *state, uint64_t *version, float *mu)
{
    char dir[400], err[256] = "";
    path_of(dir, sizeof(dir), state);
    fri_ckpt ck;
    int      prev = 0;
    cr_assert_eq(fri_ckpt_load(dir, &ck, &prev, err, sizeof(err)), FR_OK,
                 "%s", err);
    *version        = ck.version;
    if (mu != NULL) {
        *mu = ck.mu;
    }
    fri_mf_items it = {.n_items = ck.n_items, .k = ck.k, .mu = ck.mu,
                       .bi = ck.bi, .Q = ck.Q};
    cr_assert_eq(ck.n_items, NI);
    // The factors must carry signal (a collapse to Q = 0 leaves a
    // biases-only model).
    double qn = 0;
    for (size_t z = 0; z < (size_t) NI * ck.k; z++) {
        qn += ck.Q[z] * (double) ck.Q[z];
    }
    cr_assert_gt(qn, 1e-2, "item factors collapsed: |Q|^2 = %g", qn);
    float  p[NU + 1][3], bu[NU + 1];
    double se = 0;
    size_t n  = 0;
    for (uint32_t u = 0; u < NU; u++) {
        uint32_t items[NI];
        float    vals[NI];
        size_t   m = 0;
        for (size_t j = 0; j < data.n; j++) {
            if (j % 5 != 4 && data.r[j].user == u) {
                items[m]  = data.r[j].item;
                vals[m++] = data.r[j].rating;
            }
        }
        cr_assert_eq(fri_mf_user_solve(p[u], &bu[u], &it, items, vals, m,
                                       2.0f, 1.0f, 0, NULL, 0),
                     FR_OK);
    }
    for (size_t j = 4; j < data.n; j += 5) {
        const fri_triplet *t = &data.r[j];
        double d = fri_mf_predict_with(&it, p[t->user], bu[t->user], t->item) -
                   (double) t->rating;
        se += d * d;
        n++;
    }
    fri_ckpt_free(&ck);
    return sqrt(se / (double) n);
}

static double
server_test_rmse(uint64_t *version)
{
    return server_test_rmse_in("state", version, NULL);
}

// fedrec-train on the same split; returns its test RMSE.
static double
central_rmse(const char *epochs)
{
    char exe[600], tr[400], te[400], out[400];
    snprintf(exe, sizeof(exe), "%s/fedrec-train", bin);
    path_of(tr, sizeof(tr), "train.txt");
    path_of(te, sizeof(te), "test.txt");
    path_of(out, sizeof(out), "train.json");
    char *argv[] = {exe,           "--train", tr,         "--test",   te,
                    "--algo",      "als",     "--k",      "3",        "--reg",
                    "2",           "--reg-bias", "1",      "--weighted", "0",
                    "--bias-epochs", "0",     "--epochs", (char *) epochs,
                    "--json",      NULL};
    cr_assert_eq(wait_for(spawn(out, argv), 20000), 0,
                 "fedrec-train failed; see %s", out);
    FILE *f = fopen(out, "r");
    cr_assert_not_null(f);
    char   line[4096];
    double rmse = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "\"algo\"") != NULL) {
            rmse = json_num(line, "rmse");
        }
    }
    fclose(f);
    cr_assert_gt(rmse, 0, "no summary in %s", out);
    return rmse;
}

static void
write_state_key(void)
{
    char sk[400];
    path_of(sk, sizeof(sk), "state.key");
    FILE *f = fopen(sk, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 32; i++) {
        fputs("42", f);
    }
    fclose(f);
}

#define ROUNDS 8

Test(integration, twenty_clients_match_centralized, .init = setup,
     .fini = teardown)
{
    char url[64] = "";
    write_state_key();
    char st[400];
    path_of(st, sizeof(st), "state");
    const char *extra[] = {"--algo", "als", "--k", "3", "--reg", "2",
                           "--reg-bias", "1",
                           "--clients-per-round", "20", "--min-clients", "20",
                           "--round-deadline", "60", "--state", st, NULL};
    start_agg(url, sizeof(url), extra);
    // One process per device and round, a round at a time: every round
    // has the full cohort (a device that already reported is told to come
    // back at the round's deadline, which could make it miss the next
    // round when this one closes early; see the report on retry policy).
    for (int r = 1; r <= ROUNDS; r++) {
        pid_t p[NU];
        for (int u = 1; u <= NU; u++) {
            p[u - 1] = start_client(url, u, 1, "agg.pub", 1);
        }
        // Fixed cohorts close as soon as everyone reported; the long
        // deadline and waits only matter on slow (sanitizer, loaded) runs.
        wait_clients(p, NU, 60000);
        cr_assert_geq(status_wait("rounds_completed", r, 60000), r,
                      "round %d did not complete", r);
    }
    // Round 1 is a census (mu only); the clients' cached model is the one
    // of their last round, version ROUNDS - 1: ROUNDS - 2 ALS sweeps.
    char ep[8];
    snprintf(ep, sizeof(ep), "%d", ROUNDS - 2);
    double   fed = client_test_rmse();
    double   cen = central_rmse(ep);
    uint64_t ver = 0;
    double   srv = server_test_rmse(&ver);
    for (int t = 0; t < 50 && ver < ROUNDS; t++) { // checkpoint in flight
        sleep_ms(40);
        srv = server_test_rmse(&ver);
    }
    cr_log_info("test RMSE: clients %.4f, server model v%llu %.4f, "
                "fedrec-train %.4f",
                fed, (unsigned long long) ver, srv, cen);
    cr_assert_eq(ver, ROUNDS);
    cr_assert(fabs(fed - cen) < 0.05, "clients' RMSE %.4f vs centralized %.4f",
              fed, cen);
    cr_assert(fabs(srv - cen) < 0.05, "server RMSE %.4f vs centralized %.4f",
              srv, cen);
    // And well below a biases-only fit (one census + one sweep: 0.68).
    cr_assert_lt(fed, 0.62);
}

// ---- raw NNG requests and an in-process device ----------------------------

static nng_socket
req_open(const char *url)
{
    nng_socket s;
    cr_assert_eq(nng_req0_open(&s), 0);
    cr_assert_eq(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000), 0);
    cr_assert_eq(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 3000), 0);
    // Never resend on our own: a resend would itself be a replay.
    cr_assert_eq(nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME,
                                   NNG_DURATION_INFINITE),
                 0);
    int rv = nng_dial(s, url, NULL, 0);
    cr_assert_eq(rv, 0, "dial %s: %s", url, nng_strerror(rv));
    return s;
}

// One request/reply; returns the reply length (0: none) and the reply in
// *out (nng_free(*out, len)).
static size_t
req_rt(nng_socket s, const void *req, size_t len, void **out)
{
    *out = NULL;
    if (nng_send(s, (void *) req, len, 0) != 0) {
        return 0;
    }
    size_t rl = 0;
    if (nng_recv(s, out, &rl, NNG_FLAG_ALLOC) != 0) {
        *out = NULL;
        return 0;
    }
    return rl;
}

// A client handle holding the training ratings of user u (0-based).
static fr_client *
device(uint32_t u)
{
    char pub[400];
    path_of(pub, sizeof(pub), "agg.pub");
    fri_pubkeys pk;
    cr_assert_eq(fri_pub_load(&pk, pub), FR_OK);
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    memcpy(cfg.server_pk, pk.kx, 32);
    memcpy(cfg.server_pk + 32, pk.sign, 32);
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    for (size_t j = 0; j < data.n; j++) {
        if (j % 5 != 4 && data.r[j].user == u) {
            cr_assert_eq(fr_client_add(c, data.r[j].item, data.r[j].rating, 0),
                         FR_OK);
        }
    }
    return c;
}

#define MAXREQ 8
typedef struct capture {
    uint8_t *req[MAXREQ];
    size_t   len[MAXREQ];
    int      n;
} capture;

// Runs a check-in of c over s, keeping a copy of every request. Stops
// after the reply to request index stop_after (-1: run to the end).
// Returns the check-in status (FR_CHECKIN_FAILED also when a request gets
// no reply). No assertions: the device process below uses it too.
static fr_checkin_status
raw_checkin(fr_client *c, nng_socket s, capture *cap, int stop_after)
{
    memset(cap, 0, sizeof(*cap));
    if (fr_client_checkin_begin(c, (uint64_t) now_ms()) != FR_OK) {
        return FR_CHECKIN_FAILED;
    }
    for (int step = 0; step < MAXREQ; step++) {
        size_t   bound = fr_client_request_bound(c);
        uint8_t *buf   = malloc(bound);
        size_t   len   = 0;
        if (buf == NULL || fr_client_poll(c, buf, bound, &len) != FR_OK ||
            len == 0) {
            free(buf);
            break;
        }
        cap->req[cap->n] = buf;
        cap->len[cap->n] = len;
        cap->n++;
        void  *rep = NULL;
        size_t rl  = req_rt(s, buf, len, &rep);
        if (rl == 0) {
            return FR_CHECKIN_FAILED;
        }
        fr_err e = fr_client_receive(c, rep, rl);
        nng_free(rep, rl);
        if (e != FR_OK || step == stop_after) {
            break;
        }
    }
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    return info.status;
}

// The vanishing device, run as a separate process: this test executable
// re-executed with FR_INTEG_DEVICE="URL PUBFILE" (NNG cannot be used in a
// plain fork of a process that has loaded it). It checks in (so it is in
// the cohort), prints 'y' and hangs until it is killed.
__attribute__((constructor)) static void
vanishing_device(void)
{
    const char *env = getenv("FR_INTEG_DEVICE");
    if (env == NULL) {
        return;
    }
    char url[512], pub[512];
    if (sscanf(env, "%511s %511s", url, pub) != 2) {
        _exit(2);
    }
    fri_pubkeys pk;
    if (fri_pub_load(&pk, pub) != FR_OK) {
        _exit(2);
    }
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    memcpy(cfg.server_pk, pk.kx, 32);
    memcpy(cfg.server_pk + 32, pk.sign, 32);
    fr_client *c = NULL;
    nng_socket s;
    if (fr_client_create(&c, &cfg) != FR_OK || nng_req0_open(&s) != 0 ||
        nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000) != 0 ||
        nng_dial(s, url, NULL, 0) != 0) {
        _exit(3);
    }
    for (uint32_t i = 0; i < 10; i++) {
        if (fr_client_add(c, i, (float) (1 + i % 5), 0) != FR_OK) {
            _exit(3);
        }
    }
    capture           cap;
    fr_checkin_status st = raw_checkin(c, s, &cap, 1);
    char ok = st == FR_CHECKIN_RUNNING && cap.n == 2 ? 'y' : 'n';
    if (write(1, &ok, 1) != 1) {
        _exit(3);
    }
    sleep_ms(30000);
    _exit(4);
}

static void
capture_free(capture *cap)
{
    for (int i = 0; i < cap->n; i++) {
        free(cap->req[i]);
    }
    cap->n = 0;
}

// ---- (b) a device dies after check-in ------------------------------------

Test(integration, vanished_client_does_not_stall_round, .init = setup,
     .fini = teardown)
{
    char url[64] = "";
    const char *extra[] = {"--k", "3", "--clients-per-round", "4",
                           "--min-clients", "3", "--round-deadline", "3",
                           NULL};
    double t0 = now_ms();
    start_agg(url, sizeof(url), extra);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    char env[1200], pub[400];
    path_of(pub, sizeof(pub), "agg.pub");
    snprintf(env, sizeof(env), "%s %s", url, pub);
    pid_t victim = fork();
    cr_assert(victim >= 0);
    if (victim == 0) {
        close(pfd[0]);
        dup2(pfd[1], 1);
        // A clean environment: nothing of the test runner's own worker
        // protocol may reach the re-executed binary.
        char  var[1300];
        snprintf(var, sizeof(var), "FR_INTEG_DEVICE=%s", env);
        char *envp[] = {var, NULL};
        execle("/proc/self/exe", "fr-integ-device", (char *) NULL, envp);
        _exit(127);
    }
    *kid_slot() = victim;
    close(pfd[1]);
    char ok = 0;
    struct timeval tv = {10, 0};
    fd_set         rs;
    FD_ZERO(&rs);
    FD_SET(pfd[0], &rs);
    cr_assert_eq(select(pfd[0] + 1, &rs, NULL, NULL, &tv), 1,
                 "device did not check in");
    cr_assert_eq(read(pfd[0], &ok, 1), 1);
    close(pfd[0]);
    cr_assert_eq(ok, 'y', "device check-in did not get a task");
    cr_assert_geq(status_wait("cohort", 1, 2000), 1);
    kill(victim, SIGKILL);
    cr_assert_eq(wait_for(victim, 5000), 128 + SIGKILL);

    pid_t p[3];
    for (int u = 1; u <= 3; u++) {
        p[u - 1] = start_client(url, u, 1, "agg.pub", 0);
    }
    wait_clients(p, 3, 15000);
    // The round waits for the dead member only until its deadline (3 s
    // after the round opened at start-up), then closes with the others.
    double done = status_wait("rounds_completed", 1, 6000);
    double took = now_ms() - t0;
    cr_assert_geq(done, 1, "round did not complete");
    char buf[8192];
    cr_assert_eq(http_status(buf, sizeof(buf)), 0);
    cr_assert_eq(json_num(buf, "updates_accepted_total"), 3);
    cr_assert_eq(json_num(buf, "rounds_abandoned"), 0);
    cr_assert_lt(took, 3000 + 2500, "round took %.0f ms", took);
}

// ---- (c) garbage, a wrongly pinned key and replays -----------------------

Test(integration, bad_peers_refused_round_completes, .init = setup,
     .fini = teardown)
{
    char url[64] = "";
    keygen("other");
    // Plain rounds: one captured device contributes on its own (a secure
    // round would wait for the cohort's adverts before its update).
    const char *extra[] = {"--k", "3", "--clients-per-round", "3",
                           "--min-clients", "3", "--round-deadline", "20",
                           "--secure-agg", "off", NULL};
    start_agg(url, sizeof(url), extra);
    // A device pinning another aggregator's key fails the handshake on
    // its side and gives up (exit 1) without ever checking in.
    pid_t wrong = start_client(url, 9, 1, "other.pub", 0);

    nng_socket s = req_open(url);
    // Garbage bytes: an ERROR reply, never a crash.
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (uint8_t) (i * 131u + 7u);
    }
    void  *rep = NULL;
    size_t rl  = req_rt(s, junk, sizeof(junk), &rep);
    cr_assert_gt(rl, 0, "no reply to garbage");
    nng_free(rep, rl);

    // A genuine device (user 3) contributes; its frames are captured.
    fr_client *c = device(2);
    capture    cap;
    cr_assert_eq(raw_checkin(c, s, &cap, -1), FR_CHECKIN_CONTRIBUTED, "%s",
                 fr_client_errmsg(c));
    cr_assert_geq(cap.n, 3);
    cr_assert_geq(status_wait("updates_accepted_total", 1, 2000), 1);
    // Replays of its CHECKIN and UPDATE frames, on the same and on a
    // fresh connection, are all refused.
    nng_socket s2     = req_open(url);
    int        sent[] = {1, cap.n - 1};
    for (int i = 0; i < 2; i++) {
        nng_socket ss[] = {s, s2};
        for (int j = 0; j < 2; j++) {
            rl = req_rt(ss[j], cap.req[sent[i]], cap.len[sent[i]], &rep);
            cr_assert_gt(rl, 0, "no reply to a replayed frame");
            nng_free(rep, rl);
        }
    }
    // The other two members complete the round.
    pid_t p[2];
    for (int u = 1; u <= 2; u++) {
        p[u - 1] = start_client(url, u, 1, "agg.pub", 0);
    }
    wait_clients(p, 2, 15000);
    cr_assert_geq(status_wait("rounds_completed", 1, 5000), 1);
    int rc = wait_for(wrong, 20000);
    cr_assert_eq(rc, 1, "wrongly pinned client exit %d", rc);

    char buf[8192];
    cr_assert_eq(http_status(buf, sizeof(buf)), 0);
    cr_assert_eq(json_num(buf, "updates_accepted_total"), 3, "%s", buf);
    cr_assert_geq(json_num(buf, "malformed"), 1, "%s", buf);
    // Each replay is refused for one reason or another (replayed nonce,
    // ended session, closed round...): all refusals but the garbage's.
    const char *why[] = {"late",  "duplicate", "not_member", "crypto",
                         "replay", "no_session", "state"};
    double      refused = 0;
    for (size_t i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
        refused += json_num(buf, why[i]);
    }
    cr_assert_geq(refused, 4, "replays not all refused: %s", buf);
    capture_free(&cap);
    fr_client_destroy(c);
    nng_close(s);
    nng_close(s2);
}

// ---- (d) the same over ipc -----------------------------------------------

Test(integration, ipc_rounds, .init = setup, .fini = teardown)
{
    char url[400];
    snprintf(url, sizeof(url), "ipc://%s/agg.ipc", tmp);
    const char *extra[] = {"--k", "3", "--clients-per-round", "3",
                           "--min-clients", "3", "--round-deadline", "30",
                           NULL};
    start_agg(url, sizeof(url), extra);
    for (int r = 1; r <= 3; r++) {
        pid_t p[3];
        for (int u = 1; u <= 3; u++) {
            p[u - 1] = start_client(url, u, 1, "agg.pub", 0);
        }
        wait_clients(p, 3, 60000);
    }
    // Nine accepted updates, at most three per round, no round lost.
    cr_assert_geq(status_wait("rounds_completed", 3, 60000), 3);
    char buf[8192];
    cr_assert_eq(http_status(buf, sizeof(buf)), 0);
    cr_assert_eq(json_num(buf, "updates_accepted_total"), 9, "%s", buf);
    cr_assert_eq(json_num(buf, "rounds_abandoned"), 0, "%s", buf);
    // With no algorithm or aggregation named and a bounded cohort, these
    // were the private default's rounds: VBMF on latest statistics, the
    // devices' deltas masked with SecAgg+.
    char log[400], line[1024];
    path_of(log, sizeof(log), "agg.log");
    FILE *f     = fopen(log, "r");
    int   found = 0;
    cr_assert_not_null(f, "%s", log);
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        found = strstr(line, "msg=\"aggregator starting\"") != NULL &&
                strstr(line, "algo=vbmf") != NULL &&
                strstr(line, "secure_agg=plus") != NULL &&
                strstr(line, "stats_latest=1 stats_forget=1 default=private") !=
                    NULL;
    }
    fclose(f);
    cr_assert(found, "the aggregator did not start private; see %s", log);
}

// ---- (e) a device reporting absurd but finite values ---------------------

#define EVIL_ROUNDS 4
#define EVIL_HONEST 8

// EVIL_ROUNDS rounds of EVIL_HONEST honest device processes, with (evil)
// or without an in-process device whose ratings are 1e15 (what an
// attacker feeds an unmodified client: a global-mean sum of ~1e16, a user
// vector of ~1e14). Returns the server model's test RMSE; *mu its mean.
static double
evil_run(int evil, const char *state, float *mu)
{
    char url[64] = "";
    char st[400], cpr[8];
    path_of(st, sizeof(st), state);
    snprintf(cpr, sizeof(cpr), "%d", EVIL_HONEST + (evil ? 1 : 0));
    const char *extra[] = {"--algo", "als", "--k", "3", "--reg", "2",
                           "--reg-bias", "1", "--clients-per-round", cpr,
                           "--min-clients", "1", "--round-deadline", "30",
                           "--handshake-timeout", "600", "--state", st,
                           NULL};
    // A fixed cohort: a round closes when its members are done (the
    // refused device included), so the long deadline costs nothing but
    // keeps slow (sanitizer, loaded CI) runs from abandoning rounds; the
    // long handshake timeout keeps the socket below (idle without the evil
    // device) open however long the run takes, so it shows on /status.
    pid_t       agg     = start_agg(url, sizeof(url), extra);
    nng_socket  s       = req_open(url);
    for (int r = 1; r <= EVIL_ROUNDS; r++) {
        if (evil) {
            // First in, so it takes a cohort slot; fresh each round.
            fr_client *c = device(0);
            for (uint32_t i = 0; i < 10; i++) {
                cr_assert_eq(fr_client_add(c, i, 1e15f, 0), FR_OK);
            }
            // Until it gets a task (the round may still be opening) and
            // its update is answered.
            fr_checkin_status stt = FR_CHECKIN_NOT_SELECTED;
            for (int tries = 0; tries < 100 && stt == FR_CHECKIN_NOT_SELECTED;
                 tries++) {
                capture cap;
                stt = raw_checkin(c, s, &cap, -1);
                capture_free(&cap);
                if (stt == FR_CHECKIN_NOT_SELECTED) {
                    sleep_ms(20);
                }
            }
            cr_assert_eq(stt, FR_CHECKIN_FAILED,
                         "round %d: absurd update not refused (%d)", r,
                         (int) stt);
            fr_client_destroy(c);
        }
        pid_t p[EVIL_HONEST];
        for (int u = 1; u <= EVIL_HONEST; u++) {
            p[u - 1] = start_client(url, u, 1, "agg.pub", 0);
        }
        // Every honest device fits and reports (the poisoned global mean
        // used to make their user solves fail).
        wait_clients(p, EVIL_HONEST, 15000);
        cr_assert_geq(status_wait("rounds_completed", r, 30000), r,
                      "round %d did not complete", r);
    }
    char buf[8192];
    cr_assert_eq(http_status(buf, sizeof(buf)), 0);
    cr_assert_eq(json_num(buf, "rounds_abandoned"), 0, "%s", buf);
    // The transport's counters are on the same page.
    cr_assert_eq(json_num(buf, "connections_refused_total"), 0, "%s", buf);
    cr_assert_eq(json_num(buf, "hellos_rate_limited_total"), 0, "%s", buf);
    cr_assert_geq(json_num(buf, "connections"), 1, "%s", buf);
    cr_assert_eq(json_num(buf, "updates_accepted_total"),
                 EVIL_ROUNDS * EVIL_HONEST, "%s", buf);
    cr_assert_eq(json_num(buf, "out_of_bounds"), evil ? EVIL_ROUNDS : 0,
                 "%s", buf);
    nng_close(s);
    kill(agg, SIGTERM);
    cr_assert_eq(wait_for(agg, 10000), 0);
    uint64_t ver = 0;
    double   rm  = server_test_rmse_in(state, &ver, mu);
    cr_assert_eq(ver, EVIL_ROUNDS);
    return rm;
}

Test(integration, absurd_device_refused_training_unchanged, .init = setup,
     .fini = teardown)
{
    float  mu_clean, mu_evil;
    double clean = evil_run(0, "state_clean", &mu_clean);
    double bad   = evil_run(1, "state_evil", &mu_evil);
    cr_log_info("server RMSE without the device %.5f, with it %.5f", clean,
                bad);
    cr_assert(mu_evil >= 1.0f && mu_evil <= 5.0f, "mu %g", (double) mu_evil);
    // Same cohorts of honest devices: the same model up to the order of
    // the (double) sums.
    cr_assert(fabsf(mu_evil - mu_clean) < 1e-5f);
    cr_assert(fabs(bad - clean) < 1e-4, "RMSE %.5f vs %.5f", bad, clean);
}
