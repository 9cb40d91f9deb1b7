// A tree of aggregator processes on loopback (docs/DEPLOY-TREE.md): a root
// (--root-max-devices, the edges on its allow-list) and two edges
// (--upstream, --upstream-key) serving fedrec-client processes whose pinned
// key is their edge's X25519 key with the root's Ed25519 key (the models
// they verify are the root's). The tree's checkpointed model must equal
// one aggregator's with the same devices; an edge killed with SIGKILL
// mid-round costs its devices' contributions, not the round, and serves
// again after a restart. Every wait is bounded; children are SIGKILLed on
// failure (teardown).
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "dataset.h"
#include "keys.h"
#include "proc_harness.h"

#define NU 16
#define NI 30
#define KK 3

static int port;

static void
keygen(const char *name)
{
    char exe[600], prefix[400], log[400];
    snprintf(exe, sizeof(exe), "%s/fedrec-keygen", bin);
    path_of(prefix, sizeof(prefix), name);
    path_of(log, sizeof(log), "keygen.log");
    char *kg[] = { exe, "--out", prefix, NULL };
    cr_assert_eq(wait_for(spawn(log, kg), 10000), 0, "keygen failed");
}

static fri_pubkeys
pub_of(const char *name)
{
    char p[400];
    path_of(p, sizeof(p), name);
    fri_pubkeys k;
    cr_assert_eq(fri_pub_load(&k, p), FR_OK, "%s", p);
    return k;
}

static void
write_file(const char *name, const void *b, size_t n)
{
    char p[400];
    path_of(p, sizeof(p), name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void
setup(void)
{
    proc_setup("/tmp/fr-tree-XXXXXX");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    srand((unsigned)(getpid() ^ ts.tv_nsec));
    port = 20000 + 8 * (rand() % 1500);
    keygen("root");
    keygen("e1");
    keygen("e2");
    fri_pubkeys root                                = pub_of("root.pub");
    char        allow[2 * (FRI_PUBHEX_LEN + 1) + 1] = "";
    for (int e = 1; e <= 2; e++) {
        char name[16], hex[FRI_PUBHEX_LEN + 1];
        snprintf(name, sizeof(name), "e%d.pub", e);
        fri_pubkeys ek = pub_of(name);
        fri_pubkeys_hex(hex, &ek);
        strcat(allow, hex);
        strcat(allow, "\n");
        // The device's pin: its edge's handshake key, the root's
        // signature key (fedrec-keygen --edge-pin).
        char exe[600], ep[400], rp[400], out[400], log[400];
        snprintf(exe, sizeof(exe), "%s/fedrec-keygen", bin);
        path_of(ep, sizeof(ep), name);
        path_of(rp, sizeof(rp), "root.pub");
        snprintf(name, sizeof(name), "dev%d", e);
        path_of(out, sizeof(out), name);
        path_of(log, sizeof(log), "keygen.log");
        char *kg[]
            = { exe, "--edge-pin", ep, "--root", rp, "--out", out, NULL };
        cr_assert_eq(wait_for(spawn(log, kg), 10000), 0, "keygen --edge-pin");
        snprintf(name, sizeof(name), "dev%d.pub", e);
        fri_pubkeys pin = pub_of(name);
        cr_assert_eq(memcmp(pin.kx, ek.kx, 32), 0);
        cr_assert_eq(memcmp(pin.sign, root.sign, 32), 0);
    }
    write_file("edges.allow", allow, strlen(allow));
    // The root's credentials for its edges (fedrec-keygen --credential).
    for (int e = 1; e <= 2; e++) {
        char exe[600], sk[400], sub[400], out[400], log[400], name[16];
        snprintf(exe, sizeof(exe), "%s/fedrec-keygen", bin);
        path_of(sk, sizeof(sk), "root.key");
        snprintf(name, sizeof(name), "e%d.pub", e);
        path_of(sub, sizeof(sub), name);
        snprintf(name, sizeof(name), "e%d", e);
        path_of(out, sizeof(out), name);
        path_of(log, sizeof(log), "keygen.log");
        char *kg[] = { exe, "--credential", "--signer", sk, "--subject", sub,
            "--days", "1", "--out", out, NULL };
        cr_assert_eq(
            wait_for(spawn(log, kg), 10000), 0, "keygen --credential");
    }
    fri_dataset      d;
    fri_synth_config sc;
    fri_synth_config_init(&sc);
    sc.n_users = NU;
    sc.n_items = NI;
    sc.k       = 2;
    sc.density = 0.5;
    sc.seed    = 9;
    cr_assert_eq(fri_synth_generate(&d, &sc), FR_OK);
    char p[400];
    path_of(p, sizeof(p), "ratings.txt");
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    for (size_t i = 0; i < d.n; i++) {
        fprintf(f, "%u %u %g\n", d.r[i].user + 1, d.r[i].item,
            (double)d.r[i].rating);
    }
    fclose(f);
    fri_dataset_free(&d);
}

static void
teardown(void)
{
    proc_teardown();
}

// 1 once something accepts TCP connections on 127.0.0.1:p.
static int
listening(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return 0;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family      = AF_INET;
    sa.sin_port        = htons((uint16_t)p);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok             = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

// fedrec-aggregator on port + off with the common model flags, its log
// name.log, extra flags (NULL-terminated); waits until it listens.
static pid_t
start_agg(const char *name, int off, const char *const *extra)
{
    char exe[600], key[400], log[400], url[64], items[16], k[16];
    snprintf(exe, sizeof(exe), "%s/fedrec-aggregator", bin);
    snprintf(log, sizeof(log), "%s/%s.log", tmp, name);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port + off);
    snprintf(items, sizeof(items), "%d", NI);
    snprintf(k, sizeof(k), "%d", KK);
    char kn[32];
    snprintf(kn, sizeof(kn), "%s.key", name[0] == 's' ? "root" : name);
    path_of(key, sizeof(key), kn);
    char       *argv[48];
    int         n      = 0;
    const char *base[] = { exe, "--listen", url, "--key", key, "--items",
        items, "--k", k, "--algo", "als", "--robust", "off", "--retry-after",
        "0.05", "--min-clients", "1", "--log-level", "info" };
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        argv[n++] = (char *)base[i];
    }
    for (int i = 0; extra[i] != NULL && n < 46; i++) {
        argv[n++] = (char *)extra[i];
    }
    argv[n]    = NULL;
    pid_t  p   = spawn(log, argv);
    double end = now_ms() + 20000;
    while (now_ms() < end) {
        cr_assert_eq(wait_for(p, 0), -1, "%s exited; see %s", name, log);
        if (listening(port + off)) {
            return p;
        }
        sleep_ms(20);
    }
    cr_assert_fail("%s did not come up; see %s", name, log);
    return -1;
}

// Edge e; secure: SecAgg+ within its cohort.
static pid_t
start_edge_sa(int e, const char *cpr, int secure)
{
    char up[64], rk[400], name[8], cred[400], cn[16];
    snprintf(up, sizeof(up), "tcp://127.0.0.1:%d", port);
    path_of(rk, sizeof(rk), "root.pub");
    snprintf(name, sizeof(name), "e%d", e);
    snprintf(cn, sizeof(cn), "e%d.cred", e);
    path_of(cred, sizeof(cred), cn);
    const char *x[]
        = { "--upstream", up, "--upstream-key", rk, "--edge-credential", cred,
              "--clients-per-round", cpr, "--round-deadline", "5",
              secure ? "--secure-agg" : NULL, "plus", NULL };
    return start_agg(name, e, x);
}

static pid_t
start_edge(int e, const char *cpr)
{
    return start_edge_sa(e, cpr, 0);
}

// fedrec-client for user u (1-based) at port + off pinned to pin.
static pid_t
start_client(int u, int off, const char *pin, int rounds, const char *tag)
{
    char exe[600], pub[400], rat[400], url[64], r[16], user[16], log[400];
    snprintf(exe, sizeof(exe), "%s/fedrec-client", bin);
    path_of(pub, sizeof(pub), pin);
    path_of(rat, sizeof(rat), "ratings.txt");
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port + off);
    snprintf(r, sizeof(r), "%d", rounds);
    snprintf(user, sizeof(user), "%d", u);
    snprintf(log, sizeof(log), "%s/%s-c%d.log", tmp, tag, u);
    char *argv[] = { exe, "--connect", url, "--server-key", pub, "--ratings",
        rat, "--user", user, "--rounds", r, "--timeout-ms", "20000", "--json",
        NULL };
    return spawn(log, argv);
}

static void
wait_all(const pid_t *p, int n, int ms, const char *what)
{
    double end = now_ms() + ms;
    for (int i = 0; i < n; i++) {
        int left = (int)(end - now_ms());
        int rc   = wait_for(p[i], left > 0 ? left : 1);
        cr_assert_eq(rc, 0, "%s %d exit %d (logs in %s)", what, i, rc, tmp);
    }
}

static fri_ckpt
load_ckpt(const char *dir)
{
    char p[400], err[256] = "";
    path_of(p, sizeof(p), dir);
    fri_ckpt c;
    int      prev = 0;
    cr_assert_eq(
        fri_ckpt_load(p, &c, &prev, err, sizeof(err)), FR_OK, "%s", err);
    return c;
}

// Waits (up to ms) until dir's checkpoint holds model version v.
static void
wait_ckpt_version(const char *dir, uint64_t v, uint64_t ms)
{
    char p[400];
    path_of(p, sizeof(p), dir);
    uint64_t end = now_ms() + ms;
    do {
        fri_ckpt c;
        int      prev = 0;
        char     err[256];
        if (fri_ckpt_load(p, &c, &prev, err, sizeof(err)) == FR_OK) {
            uint64_t have = c.version;
            fri_ckpt_free(&c);
            if (have >= v) {
                return;
            }
        }
        sleep_ms(50);
    } while (now_ms() < end);
    cr_assert_fail("checkpoint %s did not reach version %llu", p,
                   (unsigned long long) v);
}

// Whether name.log holds a line with both needles.
static int
log_has(const char *name, const char *a, const char *b)
{
    char p[400], line[2048];
    snprintf(p, sizeof(p), "%s/%s.log", tmp, name);
    FILE *f = fopen(p, "r");
    if (f == NULL) {
        return 0;
    }
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        found = strstr(line, a) != NULL && (b == NULL || strstr(line, b));
    }
    fclose(f);
    return found;
}

static void
wait_log(const char *name, const char *a, const char *b, int ms)
{
    double end = now_ms() + ms;
    while (!log_has(name, a, b)) {
        cr_assert(now_ms() < end, "no '%s' '%s' in %s/%s.log", a, b ? b : "",
            tmp, name);
        sleep_ms(50);
    }
}

static void
tree_vs_single(int secure)
{
    const int R = 3;
    pid_t     c[NU];
    // One aggregator, every device, every round.
    const char *sx[] = { "--clients-per-round", "16", "--round-deadline", "30",
        "--rounds", "3", "--state", NULL, NULL };
    char        st[400];
    path_of(st, sizeof(st), "st_single");
    sx[7]   = st;
    pid_t s = start_agg("single", 4, sx);
    for (int u = 1; u <= NU; u++) {
        c[u - 1] = start_client(u, 4, "root.pub", R, "single");
    }
    wait_all(c, NU, 120000, "single-aggregator client");
    cr_assert_eq(wait_for(s, 20000), 0, "single aggregator");

    // The tree: each edge closes when its 8 devices reported, the root
    // when both edges did.
    char rs[400], allow[400];
    path_of(rs, sizeof(rs), "st_root");
    path_of(allow, sizeof(allow), "edges.allow");
    const char *rx[] = { "--root-max-devices", "64", "--allow", allow,
        "--clients-per-round", "2", "--round-deadline", "30", "--rounds", "3",
        "--state", rs, NULL };
    pid_t       root = start_agg("root", 0, rx);
    pid_t       e1   = start_edge_sa(1, "8", secure);
    pid_t       e2   = start_edge_sa(2, "8", secure);
    for (int u = 1; u <= NU; u++) {
        int e = 1 + (u % 2);
        // Plain run: the composite pin of fedrec-keygen --edge-pin;
        // secure run: the root's key alone (the edges' credentials).
        c[u - 1] = start_client(u, e,
            secure       ? "root.pub"
                : e == 1 ? "dev1.pub"
                         : "dev2.pub",
            R, "tree");
    }
    wait_all(c, NU, 120000, "tree client");
    // The clients are done once their edges took their updates; the
    // edges may still be handing the last round's sums to the root. Wait
    // for the root's checkpoint of round R, then stop the edges first: a
    // request of theirs still in flight when the root exits makes its
    // transport leak the reply under ASan.
    wait_ckpt_version("st_root", R, 60000);
    kill(e1, SIGTERM);
    kill(e2, SIGTERM);
    cr_assert_eq(wait_for(e1, 20000), 0, "edge 1 (see %s/e1.log)", tmp);
    cr_assert_eq(wait_for(e2, 20000), 0, "edge 2 (see %s/e2.log)", tmp);
    cr_assert_eq(wait_for(root, 20000), 0, "root (see %s/root.log)", tmp);

    fri_ckpt a = load_ckpt("st_single"), b = load_ckpt("st_root");
    cr_assert_eq(a.version, (uint64_t)R);
    cr_assert_eq(b.version, (uint64_t)R);
    double worst = fabs((double)a.mu - b.mu), qn = 0;
    for (size_t i = 0; i < (size_t)NI * KK; i++) {
        worst = fmax(worst, fabs((double)a.Q[i] - b.Q[i]));
        qn += (double)b.Q[i] * b.Q[i];
    }
    double bn = 0;
    for (size_t i = 0; i < NI; i++) {
        worst = fmax(worst, fabs((double)a.bi[i] - b.bi[i]));
        bn += (double)b.bi[i] * b.bi[i];
    }
    cr_assert_gt(
        qn + bn, 1e-2, "the tree's model did not train (%g %g)", qn, bn);
    cr_log_info("tree (secure %d) vs single: max diff %.3g", secure, worst);
    cr_assert_lt(
        worst, 1e-4, "tree and single aggregator differ by %g", worst);
    fri_ckpt_free(&a);
    fri_ckpt_free(&b);
}

Test(tree_proc, root_and_two_edges_equal_one_aggregator, .init = setup,
    .fini = teardown, .timeout = 240)
{
    tree_vs_single(0);
}

// SecAgg+ within each edge's cohort; the single aggregator is plain: the
// models differ by the fixed-point rounding of the masked statistics.
Test(tree_proc, secure_edges_match_one_plain_aggregator, .init = setup,
    .fini = teardown, .timeout = 240)
{
    tree_vs_single(1);
}

Test(tree_proc, killed_edge_costs_its_devices_not_the_round, .init = setup,
    .fini = teardown, .timeout = 240)
{
    char allow[400];
    path_of(allow, sizeof(allow), "edges.allow");
    const char *rx[] = { "--root-max-devices", "64", "--allow", allow,
        "--clients-per-round", "2", "--round-deadline", "10", NULL };
    pid_t       root = start_agg("root", 0, rx);
    pid_t       e1   = start_edge(1, "8");
    pid_t       e2   = start_edge(2, "8");
    (void)root;
    (void)e1;
    pid_t c[NU];
    // Round 1: both edges.
    for (int u = 1; u <= NU; u++) {
        int e    = 1 + (u % 2);
        c[u - 1] = start_client(u, e, "root.pub", 1, "r1");
    }
    wait_all(c, NU, 60000, "round-1 client");
    wait_log("root", "round closed\" round=1 clients=2", NULL, 60000);
    // Round 2 is open at both edges; edge 2 dies in it.
    wait_log(
        "e2", "round opened from the root's model\" round=2", NULL, 60000);
    kill(e2, SIGKILL);
    cr_assert_eq(wait_for(e2, 5000), 128 + SIGKILL);
    int n1 = 0;
    for (int u = 2; u <= NU; u += 2) { // edge 1's devices (u % 2 == 0)
        c[n1++] = start_client(u, 1, "root.pub", 1, "r2");
    }
    wait_all(c, n1, 60000, "round-2 client");
    // The root closes round 2 at its deadline from edge 1 alone.
    wait_log("root", "round closed\" round=2 clients=1", NULL, 60000);
    cr_assert(!log_has("root", "round abandoned", NULL));
    // Edge 2 restarts and serves round 3 with edge 1.
    e2    = start_edge(2, "8");
    int n = 0;
    for (int u = 1; u <= NU; u++) {
        int e = 1 + (u % 2);
        // Devices pin the root only: any edge will do, so in round 3
        // they swap edges.
        c[n++] = start_client(u, 3 - e, "root.pub", 1, "r3");
    }
    wait_all(c, n, 60000, "round-3 client");
    wait_log("root", "round closed\" round=3 clients=2", NULL, 60000);
    wait_log("e2", "sums sent to the root\" round=3", NULL, 60000);
    cr_assert(!log_has("root", "round abandoned", NULL));
}
