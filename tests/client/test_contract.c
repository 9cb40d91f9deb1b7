// The library's contract with applications: the versioned config (older
// smaller layouts accepted, unknown larger ones refused, nothing written
// past the caller's struct), the all-zero state key refused, the version
// macros and functions, and the reply limit derived from the handle's
// bounds (in fr_client_receive and as NNG's receive limit over TCP).
#include <criterion/criterion.h>
#ifdef FR_CLIENT_WITH_NNG
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "bayes.h"
#include "fakeagg.h"
#include "testutil.h"

// ---- log capture ----------------------------------------------------------

typedef struct logbuf {
    char text[1024];
} logbuf;

static void
capture(void *ctx, fr_log_level level, const char *msg)
{
    logbuf *b = ctx;
    (void) level;
    size_t n = strlen(b->text);
    snprintf(b->text + n, sizeof b->text - n, "%s\n", msg);
}

// ---- versioned config -----------------------------------------------------

// fr_client_config as a header of config layout 1 declared it: the fields
// up to pseudo_fill, without max_sa_members. An application compiled
// against that header passes sizeof(struct config_v1).
struct config_v1 {
    size_t          struct_size;
    uint8_t         server_pk[FR_PUBLICKEYBYTES];
    uint8_t         identity_seed[FR_SEEDBYTES];
    int             has_identity;
    const char     *state_path;
    uint8_t         state_key[FR_STATEKEYBYTES];
    uint32_t        max_items;
    uint32_t        max_k;
    fr_model_cache *model_cache;
    fr_allocator    allocator;
    fr_log_fn       log;
    void           *log_ctx;
    fr_log_level    log_level;
    uint64_t        seed;
    float           pseudo_items_rho;
    int             pseudo_fill;
};

// Layout 2: layout 1 plus max_sa_members.
struct config_v2 {
    struct config_v1 v1;
    uint32_t         max_sa_members;
};

// Layout 3: layout 2 plus recency_half_life.
struct config_v3 {
    struct config_v2 v2;
    double           recency_half_life;
};

// Layout 4: layout 3 plus verify_adverts.
struct config_v4 {
    struct config_v3 v3;
    int              verify_adverts;
};

Test(client_contract, v4_layout_is_a_prefix_of_the_current_one)
{
    cr_assert_eq(sizeof(struct config_v4), FRI_CLIENT_CONFIG_V4_SIZE);
    cr_assert_eq(offsetof(struct config_v4, verify_adverts),
                 offsetof(fr_client_config, verify_adverts));
    cr_assert(sizeof(struct config_v4) < sizeof(fr_client_config));
    struct config_v4 old;
    fr_client_config_init_size((fr_client_config *) &old, sizeof old);
    memset(old.v3.v2.v1.server_pk, 0x33, sizeof old.v3.v2.v1.server_pk);
    old.verify_adverts = 1;
    fr_client *c       = NULL;
    cr_assert_eq(fr_client_create(&c, (const fr_client_config *) &old),
                 FR_OK);
    cr_assert_eq(c->verify_adverts, 1);
    // The field layout 4 lacks takes its default.
    cr_assert_float_eq(c->svdpp, FRI_SVDPP_DEFAULT, 0);
    fr_client_destroy(c);
}

Test(client_contract, v3_layout_is_a_prefix_of_the_current_one)
{
    cr_assert_eq(sizeof(struct config_v3), FRI_CLIENT_CONFIG_V3_SIZE);
    cr_assert_eq(offsetof(struct config_v3, recency_half_life),
                 offsetof(fr_client_config, recency_half_life));
    cr_assert(sizeof(struct config_v3) < sizeof(fr_client_config));
    struct config_v3 old;
    fr_client_config_init_size((fr_client_config *) &old, sizeof old);
    memset(old.v2.v1.server_pk, 0x33, sizeof old.v2.v1.server_pk);
    old.recency_half_life = 7.0;
    fr_client *c          = NULL;
    cr_assert_eq(fr_client_create(&c, (const fr_client_config *) &old),
                 FR_OK);
    cr_assert_float_eq(c->recency_hl, 7.0f, 0);
    // The field layout 3 lacks takes its default.
    cr_assert_eq(c->verify_adverts, 0);
    fr_client_destroy(c);
}

Test(client_contract, v2_layout_is_a_prefix_of_the_current_one)
{
    cr_assert_eq(sizeof(struct config_v2), FRI_CLIENT_CONFIG_V2_SIZE);
    cr_assert_eq(offsetof(struct config_v2, max_sa_members),
                 offsetof(fr_client_config, max_sa_members));
    cr_assert(sizeof(struct config_v2) < sizeof(fr_client_config));
    struct config_v2 old;
    fr_client_config_init_size((fr_client_config *) &old, sizeof old);
    memset(old.v1.server_pk, 0x33, sizeof old.v1.server_pk);
    old.max_sa_members = 100;
    fr_client *c       = NULL;
    cr_assert_eq(fr_client_create(&c, (const fr_client_config *) &old),
                 FR_OK);
    cr_assert_eq(c->max_sa_members, 100);
    // The field layout 2 lacks takes its default.
    cr_assert_float_eq(c->recency_hl, 3.0f, 0);
    fr_client_destroy(c);
}

Test(client_contract, v1_layout_is_a_prefix_of_the_current_one)
{
    // The mirror above must be the real layout 1, or the next tests prove
    // nothing.
    cr_assert_eq(sizeof(struct config_v1), FRI_CLIENT_CONFIG_V1_SIZE);
    cr_assert_eq(offsetof(struct config_v1, pseudo_fill),
                 offsetof(fr_client_config, pseudo_fill));
    cr_assert_eq(offsetof(struct config_v1, log),
                 offsetof(fr_client_config, log));
    cr_assert(sizeof(struct config_v1) < sizeof(fr_client_config));
}

Test(client_contract, init_writes_only_the_callers_size)
{
    struct {
        struct config_v1 cfg;
        uint8_t          canary[64];
    } s;
    memset(&s, 0xa5, sizeof s);
    fr_client_config_init_size((fr_client_config *) &s.cfg, sizeof s.cfg);
    for (size_t i = 0; i < sizeof s.canary; i++) {
        cr_assert_eq(s.canary[i], 0xa5, "byte %zu past the struct written",
                     i);
    }
    cr_assert_eq(s.cfg.struct_size, sizeof s.cfg);
    cr_assert_eq(s.cfg.max_k, 256);
    cr_assert_eq(s.cfg.max_items, 1u << 24);
    cr_assert_eq(s.cfg.log_level, FR_LOG_WARN);
    cr_assert_eq(s.cfg.pseudo_fill, 0);

    fr_client_config cur;
    memset(&cur, 0xa5, sizeof cur);
    fr_client_config_init(&cur);
    cr_assert_eq(cur.struct_size, sizeof cur);
    cr_assert_eq(cur.max_sa_members, 65535);
}

Test(client_contract, older_smaller_config_is_accepted)
{
    struct config_v1 old;
    fr_client_config_init_size((fr_client_config *) &old, sizeof old);
    memset(old.server_pk, 0x33, sizeof old.server_pk);
    old.max_k     = 8;
    old.max_items = 1000;
    old.seed      = 3;
    fr_client *c  = NULL;
    cr_assert_eq(fr_client_create(&c, (const fr_client_config *) &old),
                 FR_OK);
    cr_assert_eq(c->max_k, 8);
    cr_assert_eq(c->max_items, 1000);
    cr_assert_eq(c->server_pk[0], 0x33);
    // The field layout 1 lacks takes its default.
    cr_assert_eq(c->max_sa_members, 65535);
    fr_client_destroy(c);
}

Test(client_contract, newer_larger_config_is_refused)
{
    // What a header with one more field would give this library.
    struct {
        fr_client_config cfg;
        uint64_t         field_from_the_future;
    } big;
    memset(&big, 0xa5, sizeof big);
    fr_client_config_init_size(&big.cfg, sizeof big);
    cr_assert_eq(big.cfg.struct_size, sizeof big);
    cr_assert_eq(big.field_from_the_future, 0, "unknown tail not zeroed");
    logbuf lb = {{0}};
    big.cfg.log     = capture;
    big.cfg.log_ctx = &lb;
    fr_client *c    = (fr_client *) &lb; // must come back NULL
    cr_assert_eq(fr_client_create(&c, &big.cfg), FR_EVERSION);
    cr_assert_null(c);
    cr_assert(strstr(lb.text, "newer") != NULL, "log: %s", lb.text);
}

Test(client_contract, config_not_from_init_is_refused)
{
    fr_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_items = 100;
    cfg.max_k     = 4;
    fr_client *c  = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_EINVAL);
    cr_assert_null(c);
    fr_client_config_init(&cfg);
    cfg.struct_size = FRI_CLIENT_CONFIG_V1_SIZE - 8; // no known layout
    cr_assert_eq(fr_client_create(&c, &cfg), FR_EINVAL);
    fr_client_config_init(&cfg);
    cfg.max_sa_members = 1;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_EINVAL);
    cr_assert_null(c);
}

// ---- state key ------------------------------------------------------------

Test(client_contract, all_zero_state_key_is_refused)
{
    char dir[256];
    tu_tmpdir(dir, sizeof dir);
    cr_assert(dir[0] != '\0');
    char path[300];
    snprintf(path, sizeof path, "%s/dev.state", dir);

    fr_client_config cfg;
    fr_client_config_init(&cfg);
    memset(cfg.server_pk, 0x33, sizeof cfg.server_pk);
    cfg.state_path = path;
    logbuf lb      = {{0}};
    cfg.log        = capture;
    cfg.log_ctx    = &lb;
    fr_client *c   = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_EINVAL);
    cr_assert_null(c);
    cr_assert(strstr(lb.text, "state_key") != NULL, "log: %s", lb.text);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "a state file was written");

    // A secret key works, and so does the zero key without a state file
    // (it is never used then).
    cfg.state_key[5] = 1;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    cr_assert_eq(fr_client_add(c, 3, 4.0f, 0), FR_OK);
    cr_assert_eq(fr_client_save(c), FR_OK);
    fr_client_destroy(c);
    memset(cfg.state_key, 0, sizeof cfg.state_key);
    cfg.state_path = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    fr_client_destroy(c);
    tu_rmtree(dir);
}

// ---- version --------------------------------------------------------------

Test(client_contract, version_matches_macros_and_cmake_project)
{
    cr_assert_eq(fr_version(), (unsigned) FR_VERSION_NUMBER);
    cr_assert_str_eq(fr_version_string(), FR_VERSION_STRING);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", FR_VERSION_MAJOR,
             FR_VERSION_MINOR, FR_VERSION_PATCH);
    cr_assert_str_eq(fr_version_string(), want);
    cr_assert_eq(fr_version(), (unsigned) (FR_VERSION_MAJOR * 10000 +
                                           FR_VERSION_MINOR * 100 +
                                           FR_VERSION_PATCH));
    // The macros come from project(... VERSION x.y.z) in CMakeLists.txt.
    FILE *f = fopen(FR_SOURCE_DIR "/CMakeLists.txt", "r");
    cr_assert_not_null(f);
    char line[256];
    char found[32] = "";
    while (fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, "project(fedrec VERSION ");
        if (p != NULL) {
            sscanf(p + strlen("project(fedrec VERSION "), "%31[0-9.]",
                   found);
            break;
        }
    }
    fclose(f);
    cr_assert_str_eq(found, FR_VERSION_STRING);
}

// ---- reply limit ------------------------------------------------------------

static fr_client *
small_client(const fake_agg *a)
{
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    fake_agg_pk(a, cfg.server_pk);
    cfg.seed           = 5;
    cfg.max_items      = a->n_items;
    cfg.max_k          = a->k;
    cfg.max_sa_members = 16;
    fr_client *c       = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    for (uint32_t i = 0; i < 20; i++) {
        cr_assert_eq(fr_client_add(c, i * 3, (float) (1 + i % 5), i), FR_OK);
    }
    return c;
}

static void
poll_one(fr_client *c, uint8_t **buf, size_t *len)
{
    size_t cap = fr_client_request_bound(c);
    *buf       = malloc(cap);
    cr_assert_eq(fr_client_poll(c, *buf, cap, len), FR_OK, "%s",
                 fr_client_errmsg(c));
    cr_assert(*len > 0);
}

Test(client_contract, reply_bound_follows_the_handle_bounds)
{
    fake_agg a;
    fake_agg_init(&a, 200, 6, 1);
    fr_client *c = small_client(&a);
    cr_assert_eq(fr_client_checkin_begin(c, 0), FR_OK);
    size_t pre = fri_client_reply_bound(c);
    cr_assert(pre >= FRI_WELCOME_LEN && pre <= 8192, "pre %zu", pre);

    uint8_t *req = NULL;
    size_t   rl  = 0;
    poll_one(c, &req, &rl); // HELLO
    uint8_t *rep = NULL;
    size_t   pl  = 0;
    cr_assert_eq(fake_agg_handle(&a, req, rl, &rep, &pl), FR_OK);
    free(req);
    cr_assert_eq(fr_client_receive(c, rep, pl), FR_OK);
    free(rep);
    // After the handshake: room for the 200 x 6 model, but far below the
    // protocol's 256 MiB frame limit.
    size_t post = fri_client_reply_bound(c);
    size_t msz  = fri_model_size(FRI_MENC_F32, 6, 200);
    cr_assert(post >= msz + FRI_SEAL_OVERHEAD, "post %zu", post);
    cr_assert(post < ((size_t) 1 << 20), "post %zu", post);

    // A larger catalog gets a larger bound.
    fake_agg a2;
    fake_agg_init(&a2, 20000, 32, 2);
    fr_client *c2 = small_client(&a2);
    cr_assert_eq(fr_client_checkin_begin(c2, 0), FR_OK);
    poll_one(c2, &req, &rl);
    cr_assert_eq(fake_agg_handle(&a2, req, rl, &rep, &pl), FR_OK);
    free(req);
    cr_assert_eq(fr_client_receive(c2, rep, pl), FR_OK);
    free(rep);
    cr_assert(fri_client_reply_bound(c2) >=
              fri_model_size(FRI_MENC_F32, 32, 20000) + FRI_SEAL_OVERHEAD);
    fr_client_destroy(c2);
    fake_agg_free(&a2);

    // One byte above the bound, in answer to CHECKIN, is refused before
    // anything is parsed.
    poll_one(c, &req, &rl);
    free(req);
    cr_assert_eq(fri_client_reply_bound(c), post);
    uint8_t *junk = calloc(post + 1, 1);
    cr_assert_eq(fr_client_receive(c, junk, post + 1), FR_ETOOBIG);
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_FAILED);
    cr_assert(strstr(fr_client_errmsg(c), "larger") != NULL, "%s",
              fr_client_errmsg(c));
    free(junk);
    fr_client_destroy(c);
    fake_agg_free(&a);
}

Test(client_contract, oversized_reply_before_handshake_is_refused)
{
    fake_agg a;
    fake_agg_init(&a, 200, 6, 1);
    fr_client *c = small_client(&a);
    cr_assert_eq(fr_client_checkin_begin(c, 0), FR_OK);
    uint8_t *req = NULL;
    size_t   rl  = 0;
    poll_one(c, &req, &rl);
    free(req);
    // 64 KiB is far above what a WELCOME or ERROR can be.
    size_t   n    = (size_t) 64 << 10;
    uint8_t *junk = calloc(n, 1);
    cr_assert_eq(fr_client_receive(c, junk, n), FR_ETOOBIG);
    free(junk);
    fr_client_destroy(c);
    fake_agg_free(&a);
}

// ---- the same limit as NNG's receive limit, over TCP ----------------------

#ifdef FR_CLIENT_WITH_NNG

typedef struct tcp_server {
    fake_agg   agg;
    nng_socket sock;
    atomic_size_t junk_len; // > 0: answer requests with this many junk bytes
    atomic_int    n_requests;
} tcp_server;

static void *
tcp_serve(void *arg)
{
    tcp_server *s = arg;
    for (;;) {
        nng_msg *req = NULL;
        if (nng_recvmsg(s->sock, &req, 0) != 0) {
            return NULL; // closed
        }
        s->n_requests++;
        nng_msg *m = NULL;
        size_t   junk = atomic_load(&s->junk_len);
        if (junk > 0) {
            nng_msg_free(req);
            if (nng_msg_alloc(&m, junk) == 0) {
                memset(nng_msg_body(m), 0x5a, junk);
                if (nng_sendmsg(s->sock, m, 0) != 0) {
                    nng_msg_free(m);
                }
            }
            continue;
        }
        uint8_t *rep = NULL;
        size_t   rl  = 0;
        fr_err   e   = fake_agg_handle(&s->agg, nng_msg_body(req),
                                       nng_msg_len(req), &rep, &rl);
        nng_msg_free(req);
        if (e != FR_OK) {
            continue;
        }
        if (nng_msg_alloc(&m, 0) == 0 && nng_msg_append(m, rep, rl) == 0) {
            if (nng_sendmsg(s->sock, m, 0) != 0) {
                nng_msg_free(m);
            }
        }
        free(rep);
    }
}

static void
tcp_listen(tcp_server *s, char *url, size_t cap)
{
    cr_assert_eq(nng_rep0_open(&s->sock), 0);
    // The server side accepts anything; only the client's limit counts.
    cr_assert_eq(nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, 0), 0);
    nng_listener l;
    cr_assert_eq(nng_listen(s->sock, "tcp://127.0.0.1:0", &l, 0), 0);
    int port = 0;
    cr_assert_eq(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    snprintf(url, cap, "tcp://127.0.0.1:%d", port);
}

Test(client_contract, nng_limit_drops_oversized_reply_and_admits_model,
     .timeout = 60)
{
    // Junk answer to HELLO: dropped by NNG, which closes the connection
    // when the length header exceeds the limit (before reading or
    // allocating the body), so the check-in fails on the transport
    // instead of handing 64 KiB to the parser (FR_ETOOBIG or FR_EPROTO).
    tcp_server s;
    memset(&s, 0, sizeof s);
    fake_agg_init(&s.agg, 2000, 8, 1);
    atomic_store(&s.junk_len, (size_t) 64 << 10);
    char url[64];
    tcp_listen(&s, url, sizeof url);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, tcp_serve, &s), 0);
    fr_client *c = small_client(&s.agg);
    fr_err     e = fr_client_checkin_nng(c, url, 1000);
    cr_assert(e == FR_ENET || e == FR_ETIMEDOUT, "got %s: %s",
              fr_errname(e), fr_client_errmsg(c));
    cr_assert(atomic_load(&s.n_requests) >= 1);

    // A well-behaved aggregator: the 2000 x 8 MODEL (72 KiB, above the
    // pre-handshake limit) arrives once the limit is raised for the
    // session on the same connection.
    atomic_store(&s.junk_len, 0);
    e = fr_client_checkin_nng(c, url, 5000);
    cr_assert_eq(e, FR_OK, "%s: %s", fr_errname(e), fr_client_errmsg(c));
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_CONTRIBUTED);
    cr_assert(info.bytes_down > fri_model_size(FRI_MENC_F32, 8, 2000));
    fr_client_destroy(c);
    nng_close(s.sock);
    pthread_join(th, NULL);
    fake_agg_free(&s.agg);
}

#else // !FR_CLIENT_WITH_NNG

// Without the adapter (FR_LEAN) the entry point stays, so an app links
// either way, and it says why it cannot run instead of pretending to.
Test(client_contract, checkin_nng_without_nng_is_refused_with_a_reason)
{
    fake_agg a;
    fake_agg_init(&a, 200, 6, 1);
    fr_client *c = small_client(&a);
    fr_err     e = fr_client_checkin_nng(c, "tcp://127.0.0.1:1", 100);
    cr_assert_eq(e, FR_ESTATE, "got %s", fr_errname(e));
    cr_assert(strstr(fr_client_errmsg(c), "without NNG") != NULL, "%s",
              fr_client_errmsg(c));
    fr_client_destroy(c);
    fake_agg_free(&a);
}

#endif
