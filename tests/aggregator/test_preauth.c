// The pre-authentication path: what a peer without a client secret can
// make the aggregator hold (sessions, connections, buffers), and the round
// close handed to the closer thread. Direct calls with a virtual clock for
// the session table, an in-process NNG server on tcp loopback for the
// transport limits.
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "agg.h"
#include "channel.h"
#include "fedrec/client.h"
#include "keys.h"
#include "msg.h"
#include "net.h"

#define N_ITEMS 20u

typedef struct world {
    fri_agg *a;
    uint8_t *reply;
    size_t   reply_cap;
    uint8_t  spk[FR_PUBLICKEYBYTES];
} world;

static void
world_init(world *w, fri_agg_config *cfg)
{
    char err[256] = { 0 };
    cr_assert_eq(
        fri_agg_create(&w->a, cfg, 0, err, sizeof(err)), FR_OK, "%s", err);
    w->reply_cap = fri_agg_reply_bound(w->a);
    w->reply     = malloc(w->reply_cap);
    cr_assert_not_null(w->reply);
    fri_agg_public_key(w->a, w->spk);
}

static void
world_free(world *w)
{
    fri_agg_destroy(w->a);
    free(w->reply);
}

static void
base_config(fri_agg_config *cfg)
{
    fri_agg_config_init(cfg);
    cfg->n_items           = N_ITEMS;
    cfg->k                 = 2;
    cfg->round_deadline_ms = 1000000;
    cfg->session_ttl_ms    = 2000;
}

// A client handle whose identity seed is the byte id.
static fr_client *
client_new(const world *w, int id)
{
    fr_client_config cc;
    fr_client_config_init(&cc);
    memcpy(cc.server_pk, w->spk, sizeof(w->spk));
    cc.seed         = 1;
    cc.has_identity = 1;
    memset(cc.identity_seed, id, FR_SEEDBYTES);
    memset(cc.state_key, 7, sizeof(cc.state_key));
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cc), FR_OK);
    for (uint32_t i = 0; i < 5; i++) {
        cr_assert_eq(fr_client_add(c, i * 3, 1.0f + (float)i, 0), FR_OK);
    }
    return c;
}

static void
kx_pk_of(int id, uint8_t pk[32])
{
    uint8_t      seed[FRI_SEEDBYTES];
    fri_identity ident;
    memset(seed, id, sizeof(seed));
    cr_assert_eq(fri_identity_from_seed(&ident, seed), FR_OK);
    memcpy(pk, ident.kx_pk, 32);
    fri_identity_wipe(&ident);
}

// One request of c answered at now; returns the reply's frame type.
static uint16_t
step(world *w, fr_client *c, uint64_t now)
{
    size_t   cap = fr_client_request_bound(c);
    uint8_t *buf = malloc(cap);
    size_t   len = 0, rl = 0;
    cr_assert_eq(fr_client_poll(c, buf, cap, &len), FR_OK);
    cr_assert(len > 0);
    cr_assert_eq(
        fri_agg_handle(w->a, now, buf, len, w->reply, w->reply_cap, &rl),
        FR_OK);
    free(buf);
    fri_hdr h;
    cr_assert_eq(fri_hdr_get(&h, w->reply, rl), FR_OK);
    fr_err rr = fr_client_receive(c, w->reply, rl);
    (void)rr; // an ERROR reply is a valid outcome here
    return h.type;
}

// A HELLO that claims client key claimed (its holder's secret unknown):
// what anyone who saw a public key can send. Returns the reply type.
static uint16_t
forged_hello(world *w, const uint8_t claimed[32], uint64_t now)
{
    fri_identity me;
    cr_assert_eq(fri_identity_generate(&me), FR_OK);
    uint8_t        hello[FRI_HELLO_LEN];
    size_t         hl = 0, rl = 0;
    fri_hs_client *hs = NULL;
    cr_assert_eq(fri_hs_client_hello(
                     &hs, hello, sizeof(hello), &hl, &me, w->spk, FRI_CAP_ALS),
        FR_OK);
    fri_hs_client_destroy(hs);
    fri_identity_wipe(&me);
    memcpy(hello + FRI_HDR_LEN + 32, claimed, 32);
    cr_assert_eq(
        fri_agg_handle(w->a, now, hello, hl, w->reply, w->reply_cap, &rl),
        FR_OK);
    fri_hdr h;
    cr_assert_eq(fri_hdr_get(&h, w->reply, rl), FR_OK);
    return h.type;
}

static uint64_t
sessions(world *w)
{
    fri_agg_metrics m;
    fri_agg_metrics_get(w->a, &m);
    return m.sessions;
}

Test(preauth, forged_hello_flood_does_not_lock_out_an_honest_device)
{
    // 32 enrolled keys; the attacker knows them all (public keys) but no
    // secret, and floods HELLOs well past the session table's size.
    uint8_t allow[32 * 32];
    for (int i = 0; i < 32; i++) {
        kx_pk_of(10 + i, allow + 32 * i);
    }
    fri_agg_config cfg;
    base_config(&cfg);
    cfg.max_sessions = 16;
    cfg.allow        = allow;
    cfg.n_allow      = 32;
    world w;
    world_init(&w, &cfg);
    for (int i = 0; i < 200; i++) {
        // Every other HELLO claims the honest device's own key.
        const uint8_t *k = allow + 32 * (i % 2 == 0 ? 0 : 1 + i % 31);
        (void)forged_hello(&w, k, 1);
    }
    cr_assert_leq(sessions(&w), 16);
    fr_client *c = client_new(&w, 10);
    cr_assert_eq(fr_client_checkin_begin(c, 2), FR_OK);
    cr_assert_eq(step(&w, c, 2), FRI_T_WELCOME, "honest HELLO refused");
    for (int s = 0; s < 4; s++) {
        fr_checkin_info info;
        fr_client_checkin_info_get(c, &info);
        if (info.status != FR_CHECKIN_RUNNING) {
            break;
        }
        (void)step(&w, c, 2);
    }
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(
        info.status, FR_CHECKIN_CONTRIBUTED, "status %d", (int)info.status);
    fr_client_destroy(c);
    world_free(&w);
}

Test(preauth, junk_frames_do_not_keep_a_session_alive)
{
    fri_agg_config cfg;
    base_config(&cfg);
    world w;
    world_init(&w, &cfg);
    fr_client *c = client_new(&w, 3);
    cr_assert_eq(fr_client_checkin_begin(c, 0), FR_OK);
    cr_assert_eq(step(&w, c, 0), FRI_T_WELCOME);
    cr_assert_eq(step(&w, c, 0), FRI_T_TASK); // confirmed, stays open
    cr_assert_eq(sessions(&w), 1);
    // The next request (GET_MODEL) carries the session id; a junk frame
    // with that id and a broken tag is what anyone on the path can send.
    size_t   cap = fr_client_request_bound(c);
    uint8_t *buf = malloc(cap);
    size_t   len = 0, rl = 0;
    cr_assert_eq(fr_client_poll(c, buf, cap, &len), FR_OK);
    buf[len - 1] ^= 1;
    for (uint64_t t = 500; t <= 1900; t += 350) {
        cr_assert_eq(
            fri_agg_handle(w.a, t, buf, len, w.reply, w.reply_cap, &rl),
            FR_OK);
        fri_agg_tick(w.a, t);
    }
    cr_assert_eq(sessions(&w), 1);
    fri_agg_tick(w.a, 2001); // TTL since the last authenticated frame
    cr_assert_eq(sessions(&w), 0, "junk frames refreshed the session");
    fri_agg_metrics m;
    fri_agg_metrics_get(w.a, &m);
    cr_assert_geq(m.rejected[FRI_REJ_CRYPTO], 5);
    free(buf);
    fr_client_destroy(c);
    world_free(&w);
}

Test(preauth, per_key_session_cap)
{
    fri_agg_config cfg;
    base_config(&cfg);
    cfg.max_sessions_per_key = 4;
    world w;
    world_init(&w, &cfg);
    // Forged HELLOs for one key displace each other, not others.
    uint8_t k[32];
    kx_pk_of(5, k);
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(forged_hello(&w, k, 1), FRI_T_WELCOME);
    }
    cr_assert_eq(sessions(&w), 4);
    // Confirmed sessions of one key (a device that lost replies or
    // restarted): the fifth confirmed one evicts the least recently used.
    fr_client *c[5];
    for (int i = 0; i < 5; i++) {
        c[i] = client_new(&w, 5);
        cr_assert_eq(fr_client_checkin_begin(c[i], 2), FR_OK);
        cr_assert_eq(
            step(&w, c[i], 2 + (uint64_t)i), FRI_T_WELCOME, "session %d", i);
        cr_assert_eq(step(&w, c[i], 2 + (uint64_t)i), FRI_T_TASK);
    }
    // 4 confirmed (the cap) + 3 forged: the first honest HELLO found the
    // key at its unconfirmed cap and displaced the oldest forged one.
    cr_assert_eq(
        sessions(&w), 7, "%llu sessions", (unsigned long long)sessions(&w));
    // The evicted one is the oldest: its next request finds no session.
    cr_assert_eq(step(&w, c[0], 10), FRI_T_ERROR);
    cr_assert_eq(step(&w, c[4], 10), FRI_T_MODEL);
    for (int i = 0; i < 5; i++) {
        fr_client_destroy(c[i]);
    }
    world_free(&w);
}

// ---- the closer thread -----------------------------------------------------

static pthread_t  closed_by;
static atomic_int closed_seen;

static void
log_closer(void *ctx, fr_log_level lv, const char *msg)
{
    (void)ctx;
    (void)lv;
    if (strstr(msg, "round closed") != NULL) {
        closed_by = pthread_self();
        atomic_store(&closed_seen, 1);
    }
}

Test(preauth, round_closes_on_the_closer_thread)
{
    fri_agg_config cfg;
    base_config(&cfg);
    cfg.clients_per_round = 1;
    cfg.closer_thread     = 1;
    cfg.log               = log_closer;
    cfg.log_level         = FR_LOG_INFO;
    atomic_store(&closed_seen, 0);
    world w;
    world_init(&w, &cfg);
    fr_client *c = client_new(&w, 4);
    cr_assert_eq(fr_client_checkin_begin(c, 1), FR_OK);
    for (int s = 0; s < 4; s++) {
        (void)step(&w, c, 1);
    }
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_CONTRIBUTED);
    fri_agg_metrics m;
    for (int i = 0; i < 500; i++) {
        fri_agg_metrics_get(w.a, &m);
        if (m.rounds_completed == 1 && m.round_open) {
            break;
        }
        nng_msleep(10);
    }
    cr_assert_eq(m.rounds_completed, 1);
    cr_assert(atomic_load(&closed_seen));
    cr_assert(!pthread_equal(closed_by, pthread_self()),
        "the submitting thread closed the round");
    fr_client_destroy(c);
    world_free(&w);
}

// ---- transport limits over tcp loopback
// -------------------------------------

typedef struct server {
    world    w;
    fri_net *net;
    int      port;
} server;

static void
server_start(server *s, fri_agg_config *cfg, fri_net_opts *o)
{
    world_init(&s->w, cfg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    srand((unsigned)(getpid() ^ ts.tv_nsec));
    char err[256] = { 0 };
    for (int attempt = 0; attempt < 10; attempt++) {
        // Below the ephemeral range; odd ports (test_integration uses even).
        s->port = 20001 + 2 * (rand() % 6000);
        char url[64];
        snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", s->port);
        if (fri_net_start(&s->net, s->w.a, url, NULL, o, err, sizeof(err))
            == FR_OK) {
            return;
        }
    }
    cr_assert_fail("cannot listen: %s", err);
}

static void
server_stop(server *s)
{
    fri_net_stop(s->net);
    world_free(&s->w);
}

// A raw TCP connection that has done the SP handshake as a REQ peer.
static int
raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family      = AF_INET;
    sa.sin_port        = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const uint8_t sp[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 }; // REQ v0
    cr_assert_eq(write(fd, sp, sizeof(sp)), 8);
    return fd;
}

// Whether the server closed fd within ms (EOF or reset).
static int
closed_within(int fd, int ms)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long left = ms
            - ((t1.tv_sec - t0.tv_sec) * 1000
                + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0) {
            return 0;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0) {
            continue;
        }
        uint8_t b[64];
        ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            return 1;
        }
        // The server's SP header: keep reading.
    }
}

Test(preauth, oversized_length_header_is_dropped)
{
    fri_agg_config cfg;
    base_config(&cfg);
    cfg.max_frame = (size_t)1 << 20;
    fri_net_opts o;
    fri_net_opts_init(&o);
    o.n_contexts           = 4;
    o.handshake_timeout_ms = 0; // only the length limit may close it
    o.max_frame            = cfg.max_frame;
    server s;
    server_start(&s, &cfg, &o);
    int fd = raw_connect(s.port);
    // 32 MiB declared: over --max-frame, under NNG's former 64 MiB floor.
    const uint8_t len[8] = { 0, 0, 0, 0, 0x02, 0, 0, 0 };
    cr_assert_eq(write(fd, len, sizeof(len)), 8);
    cr_assert(closed_within(fd, 3000),
        "a 32 MiB length header was accepted (buffer allocated)");
    close(fd);
    // A frame within the limit still gets through (a HELLO, answered).
    nng_socket req;
    cr_assert_eq(nng_req0_open(&req), 0);
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", s.port);
    cr_assert_eq(nng_dial(req, url, NULL, 0), 0);
    cr_assert_eq(nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 3000), 0);
    fri_identity me;
    cr_assert_eq(fri_identity_generate(&me), FR_OK);
    uint8_t        hello[FRI_HELLO_LEN];
    size_t         hl = 0;
    fri_hs_client *hs = NULL;
    cr_assert_eq(fri_hs_client_hello(&hs, hello, sizeof(hello), &hl, &me,
                     s.w.spk, FRI_CAP_ALS),
        FR_OK);
    cr_assert_eq(nng_send(req, hello, hl, 0), 0);
    void  *rb = NULL;
    size_t rl = 0;
    cr_assert_eq(nng_recv(req, &rb, &rl, NNG_FLAG_ALLOC), 0);
    fri_session *sess = NULL;
    cr_assert_eq(fri_hs_client_finish(&sess, hs, rb, rl), FR_OK);
    fri_session_destroy(sess);
    nng_free(rb, rl);
    fri_hs_client_destroy(hs);
    fri_identity_wipe(&me);
    nng_close(req);
    server_stop(&s);
}

Test(preauth, connection_without_hello_is_closed_after_the_timeout)
{
    fri_agg_config cfg;
    base_config(&cfg);
    fri_net_opts o;
    fri_net_opts_init(&o);
    o.n_contexts           = 4;
    o.handshake_timeout_ms = 400;
    o.max_frame            = cfg.max_frame;
    server s;
    server_start(&s, &cfg, &o);
    int fd = raw_connect(s.port);
    cr_assert(!closed_within(fd, 200), "closed before the timeout");
    cr_assert(closed_within(fd, 3000), "idle connection kept open");
    close(fd);
    fri_net_stats st;
    fri_net_stats_get(s.net, &st);
    cr_assert_eq(st.handshake_timeouts, 1);
    server_stop(&s);
}

Test(preauth, connection_cap)
{
    fri_agg_config cfg;
    base_config(&cfg);
    fri_net_opts o;
    fri_net_opts_init(&o);
    o.n_contexts           = 4;
    o.handshake_timeout_ms = 0;
    o.max_connections      = 3;
    o.max_frame            = cfg.max_frame;
    server s;
    server_start(&s, &cfg, &o);
    int fd[4];
    for (int i = 0; i < 3; i++) {
        fd[i] = raw_connect(s.port);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert(!closed_within(fd[i], 150), "connection %d refused", i);
    }
    fd[3] = raw_connect(s.port);
    cr_assert(closed_within(fd[3], 3000), "fourth connection kept");
    for (int i = 0; i < 3; i++) {
        cr_assert(!closed_within(fd[i], 50), "connection %d dropped", i);
    }
    fri_net_stats st;
    fri_net_stats_get(s.net, &st);
    cr_assert_eq(st.connections, 3);
    cr_assert_geq(st.refused_connections, 1);
    for (int i = 0; i < 4; i++) {
        close(fd[i]);
    }
    server_stop(&s);
}

Test(preauth, hello_rate_per_address)
{
    fri_agg_config cfg;
    base_config(&cfg);
    fri_net_opts o;
    fri_net_opts_init(&o);
    o.n_contexts  = 4;
    o.hello_rate  = 1.0; // per second, from 127.0.0.1
    o.hello_burst = 3;
    o.max_frame   = cfg.max_frame;
    server s;
    server_start(&s, &cfg, &o);
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", s.port);
    int      answered = 0;
    nng_time t0       = nng_clock();
    for (int i = 0; i < 10; i++) {
        // A socket per HELLO: a dropped request must not be resent.
        nng_socket req;
        cr_assert_eq(nng_req0_open(&req), 0);
        cr_assert_eq(nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 300), 0);
        cr_assert_eq(nng_dial(req, url, NULL, 0), 0);
        fri_identity me;
        cr_assert_eq(fri_identity_generate(&me), FR_OK);
        uint8_t        hello[FRI_HELLO_LEN];
        size_t         hl = 0;
        fri_hs_client *hs = NULL;
        cr_assert_eq(fri_hs_client_hello(&hs, hello, sizeof(hello), &hl, &me,
                         s.w.spk, FRI_CAP_ALS),
            FR_OK);
        cr_assert_eq(nng_send(req, hello, hl, 0), 0);
        void  *rb = NULL;
        size_t rl = 0;
        if (nng_recv(req, &rb, &rl, NNG_FLAG_ALLOC) == 0) {
            answered++;
            nng_free(rb, rl);
        }
        fri_hs_client_destroy(hs);
        fri_identity_wipe(&me);
        nng_close(req);
    }
    // 3 from the burst, then one per second of the loop (each dropped
    // HELLO waits out its 300 ms).
    double secs = (double)(nng_clock() - t0) / 1000.0;
    cr_assert_geq(answered, 3);
    cr_assert_leq(answered, 3 + (int)secs + 1,
        "%d of 10 HELLOs answered in "
        "%.1f s",
        answered, secs);
    cr_assert_lt(answered, 10);
    fri_net_stats st;
    fri_net_stats_get(s.net, &st);
    cr_assert_eq(st.hellos_rate_limited, (uint64_t)(10 - answered));
    server_stop(&s);
}

// The transport counters reach /metrics and /status (net.c http_cb).
Test(preauth, transport_counters_on_the_metrics_pages)
{
    fri_net_stats st = {.connections         = 7,
                        .refused_connections = 3,
                        .handshake_timeouts  = 2,
                        .hellos_rate_limited = 5};
    char   buf[512];
    size_t len = (size_t) snprintf(buf, sizeof(buf), "fedrec_round 1\n");
    cr_assert_eq(fri_net_stats_append(&st, 0, buf, sizeof(buf), &len), FR_OK);
    cr_assert_eq(len, strlen(buf));
    cr_assert_not_null(strstr(buf, "fedrec_round 1\n"));
    cr_assert_not_null(strstr(buf, "\nfedrec_connections 7\n"));
    cr_assert_not_null(strstr(buf, "\nfedrec_connections_refused_total 3\n"));
    cr_assert_not_null(strstr(buf, "\nfedrec_handshake_timeouts_total 2\n"));
    cr_assert_not_null(strstr(buf, "\nfedrec_hellos_rate_limited_total 5\n"));
    len = (size_t) snprintf(buf, sizeof(buf), "{\"round\":1}\n");
    cr_assert_eq(fri_net_stats_append(&st, 1, buf, sizeof(buf), &len), FR_OK);
    cr_assert_str_eq(buf, "{\"round\":1,\"transport\":{\"connections\":7,"
                          "\"connections_refused_total\":3,"
                          "\"handshake_timeouts_total\":2,"
                          "\"hellos_rate_limited_total\":5}}\n");
    cr_assert_eq(len, strlen(buf));
    // No room: an error, the page unchanged.
    char small[24];
    len = (size_t) snprintf(small, sizeof(small), "{\"round\":1}\n");
    cr_assert_eq(fri_net_stats_append(&st, 1, small, sizeof(small), &len),
                 FR_ENOSPC);
    cr_assert_str_eq(small, "{\"round\":1}\n");
    cr_assert_eq(len, strlen(small));
}
