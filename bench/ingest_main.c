// fedrec-bench-ingest: how fast the aggregator takes in client updates.
//
// Builds a fri_agg in-process (gradient algorithm, no cohort cap, a round
// that stays open), lets N real client handles (libfedrec-client core)
// open their own sessions and check in, and keeps each one's sealed UPDATE
// frame instead of sending it. Then T threads feed those frames to
// fri_agg_handle as fast as they can: decryption, decoding, validation and
// accumulation of dense n_items x (k + 1) gradient rows. For comparison
// the same threads run raw crypto_aead_xchacha20poly1305_ietf decryption
// over frames of the same sizes. Prints one JSON object (medians over
// --runs).
//
// With --conns N --connect URL --server-key FILE.pub it is instead a load
// generator for a running fedrec-aggregator: N REQ sockets, each dialled
// on its own connection, each running one whole check-in at the same time
// (asynchronous NNG I/O), and it counts the check-ins that fail.
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "agg.h"
#include "fedrec/client.h"
#include "keys.h"
#include "msg.h"

typedef struct opts {
    uint32_t n_updates;
    uint32_t threads;
    uint32_t items;
    uint32_t k;
    uint32_t runs;
    // load-generator mode
    uint32_t    conns;
    const char *connect;
    const char *server_key;
    uint32_t    timeout_ms;
} opts;

typedef struct frames {
    uint8_t **buf;
    size_t   *len;
    uint32_t  n;
} frames;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: fedrec-bench-ingest [options]\n"
            "  --updates N   sealed UPDATE frames per run (default 256)\n"
            "  --threads T   threads calling fri_agg_handle (default 2)\n"
            "  --items N     catalog size (default 1682)\n"
            "  --k K         latent factors (default 32)\n"
            "  --runs R      runs; the medians are printed (default 5)\n"
            "load generator for a running fedrec-aggregator:\n"
            "  --conns N --connect URL --server-key FILE.pub\n"
            "                N concurrent check-ins, one REQ socket and\n"
            "                connection each; ratings items 0..--items-1\n"
            "  --timeout-ms MS  per request (default 60000)\n"
            "Prints one JSON object. Exit 0 ok, 1 failure, 2 usage.\n");
}

static int
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char         *end;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = (uint32_t) v;
    return 0;
}

static int
parse_args(opts *o, int argc, char **argv)
{
    o->n_updates = 256;
    o->threads   = 2;
    o->items     = 1682;
    o->k         = 32;
    o->runs       = 5;
    o->conns      = 0;
    o->connect    = NULL;
    o->server_key = NULL;
    o->timeout_ms = 60000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            return -1;
        }
        const char *v = argv[++i];
        int         bad;
        if (strcmp(a, "--updates") == 0) {
            bad = parse_u32(v, 1, 100000, &o->n_updates);
        } else if (strcmp(a, "--threads") == 0) {
            bad = parse_u32(v, 1, 64, &o->threads);
        } else if (strcmp(a, "--items") == 0) {
            bad = parse_u32(v, 1, 1u << 20, &o->items);
        } else if (strcmp(a, "--k") == 0) {
            bad = parse_u32(v, 1, 256, &o->k);
        } else if (strcmp(a, "--runs") == 0) {
            bad = parse_u32(v, 1, 1000, &o->runs);
        } else if (strcmp(a, "--conns") == 0) {
            bad = parse_u32(v, 1, 100000, &o->conns);
        } else if (strcmp(a, "--timeout-ms") == 0) {
            bad = parse_u32(v, 1, 3600000, &o->timeout_ms);
        } else if (strcmp(a, "--connect") == 0) {
            o->connect = v;
            bad        = 0;
        } else if (strcmp(a, "--server-key") == 0) {
            o->server_key = v;
            bad           = 0;
        } else {
            bad = -1;
        }
        if (bad) {
            fprintf(stderr, "fedrec-bench-ingest: bad %s '%s'\n", a, v);
            return -1;
        }
    }
    if (o->conns > 0 && (o->connect == NULL || o->server_key == NULL)) {
        fprintf(stderr, "fedrec-bench-ingest: --conns needs --connect and "
                        "--server-key\n");
        return -1;
    }
    return 0;
}

// ---- load generator -------------------------------------------------------

typedef struct conn {
    nng_socket      s;
    nng_aio        *aio;
    fr_client      *c;
    int             recving;
    int             ok;
    struct loadgen *lg;
} conn;

typedef struct loadgen {
    pthread_mutex_t mtx;
    pthread_cond_t  cv;
    uint32_t        done, ok, contributed, not_selected;
    uint32_t        n_err_shown;
} loadgen;

static void
conn_finish(conn *k, const char *why)
{
    loadgen        *lg = k->lg;
    fr_checkin_info info;
    fr_client_checkin_info_get(k->c, &info);
    pthread_mutex_lock(&lg->mtx);
    int good = why == NULL && (info.status == FR_CHECKIN_CONTRIBUTED ||
                               info.status == FR_CHECKIN_NOT_SELECTED);
    lg->ok += (uint32_t) good;
    lg->contributed += info.status == FR_CHECKIN_CONTRIBUTED;
    lg->not_selected += info.status == FR_CHECKIN_NOT_SELECTED;
    if (!good && lg->n_err_shown++ < 5) {
        fprintf(stderr, "fedrec-bench-ingest: check-in failed: %s\n",
                why != NULL ? why : fr_client_errmsg(k->c));
    }
    lg->done++;
    pthread_cond_signal(&lg->cv);
    pthread_mutex_unlock(&lg->mtx);
}

// Next request of k's check-in, or the end of it.
static void
conn_step(conn *k)
{
    size_t   cap = fr_client_request_bound(k->c);
    nng_msg *m   = NULL;
    size_t   len = 0;
    if (nng_msg_alloc(&m, cap) != 0) {
        conn_finish(k, "out of memory");
        return;
    }
    if (fr_client_poll(k->c, nng_msg_body(m), cap, &len) != FR_OK ||
        len == 0) {
        nng_msg_free(m);
        conn_finish(k, NULL);
        return;
    }
    (void) nng_msg_realloc(m, len); // shrinking never fails
    k->recving = 0;
    nng_aio_set_msg(k->aio, m);
    nng_send_aio(k->s, k->aio);
}

static void
conn_cb(void *arg)
{
    conn *k  = arg;
    int   rv = nng_aio_result(k->aio);
    if (!k->recving) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(k->aio));
            conn_finish(k, nng_strerror(rv));
            return;
        }
        k->recving = 1;
        nng_recv_aio(k->s, k->aio);
        return;
    }
    if (rv != 0) {
        conn_finish(k, nng_strerror(rv));
        return;
    }
    nng_msg *m = nng_aio_get_msg(k->aio);
    fr_err   e = fr_client_receive(k->c, nng_msg_body(m), nng_msg_len(m));
    nng_msg_free(m);
    if (e != FR_OK) {
        conn_finish(k, NULL);
        return;
    }
    conn_step(k);
}

static int
load_main(const opts *o)
{
    fri_pubkeys pk;
    if (fri_pub_load(&pk, o->server_key) != FR_OK) {
        fprintf(stderr, "fedrec-bench-ingest: cannot load %s\n",
                o->server_key);
        return 1;
    }
    conn           *ks = calloc(o->conns, sizeof(*ks));
    fr_model_cache *mc = NULL;
    loadgen         lg;
    memset(&lg, 0, sizeof(lg));
    pthread_mutex_init(&lg.mtx, NULL);
    pthread_cond_init(&lg.cv, NULL);
    if (ks == NULL || fr_model_cache_create(&mc) != FR_OK) {
        return 1;
    }
    uint32_t n = 0, dial_err = 0;
    for (; n < o->conns; n++) {
        conn            *k = &ks[n];
        fr_client_config cc;
        fr_client_config_init(&cc);
        memcpy(cc.server_pk, pk.kx, 32);
        memcpy(cc.server_pk + 32, pk.sign, 32);
        cc.model_cache = mc;
        cc.seed        = 1 + n;
        k->lg          = &lg;
        if (fr_client_create(&k->c, &cc) != FR_OK ||
            nng_req0_open(&k->s) != 0 ||
            nng_aio_alloc(&k->aio, conn_cb, k) != 0) {
            fprintf(stderr, "fedrec-bench-ingest: setup of connection %u "
                            "failed\n", (unsigned) n);
            break;
        }
        int bad = 0;
        for (uint32_t i = 0; i < o->items && !bad; i++) {
            bad = fr_client_add(k->c, i, (float) (1 + (n + i) % 5), 0) !=
                  FR_OK;
        }
        if (bad) {
            break;
        }
        nng_aio_set_timeout(k->aio, (nng_duration) o->timeout_ms);
        (void) nng_socket_set_ms(k->s, NNG_OPT_REQ_RESENDTIME,
                                 NNG_DURATION_INFINITE);
        if (nng_dial(k->s, o->connect, NULL, 0) != 0) {
            dial_err++;
        }
    }
    double t0 = now_s();
    for (uint32_t i = 0; i < n; i++) {
        if (fr_client_checkin_begin(ks[i].c, (uint64_t) (now_s() * 1e3)) !=
            FR_OK) {
            conn_finish(&ks[i], "checkin_begin");
            continue;
        }
        conn_step(&ks[i]);
    }
    pthread_mutex_lock(&lg.mtx);
    while (lg.done < n) {
        pthread_cond_wait(&lg.cv, &lg.mtx);
    }
    pthread_mutex_unlock(&lg.mtx);
    double dt = now_s() - t0;
    for (uint32_t i = 0; i < n; i++) {
        nng_aio_free(ks[i].aio);
        nng_close(ks[i].s);
        fr_client_destroy(ks[i].c);
    }
    fr_model_cache_destroy(mc);
    free(ks);
    uint32_t errors = o->conns - lg.ok;
    printf("{\"conns\":%u,\"ok\":%u,\"errors\":%u,\"dial_errors\":%u,"
           "\"contributed\":%u,\"not_selected\":%u,\"seconds\":%.3f,"
           "\"checkins_per_s\":%.1f}\n",
           (unsigned) o->conns, (unsigned) lg.ok, (unsigned) errors,
           (unsigned) dial_err, (unsigned) lg.contributed,
           (unsigned) lg.not_selected, dt, (double) n / dt);
    return errors == 0 ? 0 : 1;
}

static fri_agg *
make_agg(const opts *o)
{
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = o->items;
    c.k                 = o->k;
    c.algo              = FRI_AGG_GRAD;
    c.clients_per_round = 0; // everyone who checks in is selected
    c.min_clients       = 1;
    c.round_deadline_ms = 86400000; // never closes during a run
    c.max_sessions      = o->n_updates + 16;
    c.has_identity      = 1;
    memset(c.identity_seed, 3, sizeof(c.identity_seed));
    fri_agg *a = NULL;
    char     err[256];
    if (fri_agg_create(&a, &c, 0, err, sizeof(err)) != FR_OK) {
        fprintf(stderr, "fedrec-bench-ingest: %s\n", err);
        return NULL;
    }
    return a;
}

static void
frames_free(frames *f)
{
    for (uint32_t i = 0; f->buf != NULL && i < f->n; i++) {
        free(f->buf[i]);
    }
    free(f->buf);
    free(f->len);
    memset(f, 0, sizeof(*f));
}

// One device per frame: handshake, CHECKIN and (first device only)
// GET_MODEL go to the aggregator; the UPDATE is kept, not sent.
static int
build_frames(frames *f, fri_agg *a, const opts *o)
{
    memset(f, 0, sizeof(*f));
    f->buf = calloc(o->n_updates, sizeof(*f->buf));
    f->len = calloc(o->n_updates, sizeof(*f->len));
    size_t   rcap  = fri_agg_reply_bound(a);
    uint8_t *reply = malloc(rcap);
    fr_model_cache *mc = NULL;
    if (f->buf == NULL || f->len == NULL || reply == NULL ||
        fr_model_cache_create(&mc) != FR_OK) {
        free(reply);
        return -1;
    }
    uint8_t spk[FR_PUBLICKEYBYTES];
    fri_agg_public_key(a, spk);
    int rc = 0;
    for (uint32_t u = 0; u < o->n_updates && rc == 0; u++) {
        fr_client_config cc;
        fr_client_config_init(&cc);
        memcpy(cc.server_pk, spk, sizeof(spk));
        cc.model_cache = mc;
        cc.seed        = 1 + u;
        fr_client *c   = NULL;
        if (fr_client_create(&c, &cc) != FR_OK) {
            rc = -1;
            break;
        }
        for (uint32_t i = 0; i < o->items && rc == 0; i++) {
            if (fr_client_add(c, i, (float) (1 + (u + i) % 5), 0) != FR_OK) {
                rc = -1;
            }
        }
        if (rc == 0 && fr_client_checkin_begin(c, 1) != FR_OK) {
            rc = -1;
        }
        for (int step = 0; rc == 0 && step < 8; step++) {
            size_t   cap = fr_client_request_bound(c);
            uint8_t *buf = malloc(cap);
            size_t   len = 0, rl = 0;
            fri_hdr  h;
            if (buf == NULL || fr_client_poll(c, buf, cap, &len) != FR_OK ||
                len == 0 || fri_hdr_get(&h, buf, len) != FR_OK) {
                free(buf);
                rc = -1;
                break;
            }
            if (h.type == FRI_T_UPDATE) {
                f->buf[f->n] = buf;
                f->len[f->n] = len;
                f->n++;
                break;
            }
            if (fri_agg_handle(a, 1, buf, len, reply, rcap, &rl) != FR_OK ||
                fr_client_receive(c, reply, rl) != FR_OK) {
                fprintf(stderr, "fedrec-bench-ingest: device %u: %s\n",
                        (unsigned) u, fr_client_errmsg(c));
                rc = -1;
            }
            free(buf);
        }
        fr_client_destroy(c);
    }
    fr_model_cache_destroy(mc);
    free(reply);
    if (rc == 0 && f->n != o->n_updates) {
        rc = -1;
    }
    return rc;
}

typedef struct worker {
    fri_agg       *a;
    const frames  *f;
    _Atomic uint32_t *next;
    // raw decryption mode
    uint8_t      **ct;
    const uint8_t *key;
    int            raw;
    uint64_t       bytes;
    uint32_t       failed;
} worker;

static void *
work(void *arg)
{
    worker  *w   = arg;
    size_t   cap = 0;
    for (uint32_t i = 0; i < w->f->n; i++) {
        cap = w->f->len[i] > cap ? w->f->len[i] : cap;
    }
    if (!w->raw) {
        cap = fri_agg_reply_bound(w->a);
    }
    uint8_t *out = malloc(cap);
    if (out == NULL) {
        w->failed++;
        return NULL;
    }
    for (;;) {
        uint32_t i = atomic_fetch_add(w->next, 1);
        if (i >= w->f->n) {
            break;
        }
        size_t len = w->f->len[i];
        if (w->raw) {
            // Same layout as a sealed frame: 32 bytes of AD, ct, tag.
            uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES] = {
                (uint8_t) i};
            size_t body = len - 32 - 16;
            if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                    out, NULL, w->ct[i] + 32, body, w->ct[i] + 32 + body,
                    w->ct[i], 32, nonce, w->key) != 0) {
                w->failed++;
            }
        } else {
            size_t rl = 0;
            if (fri_agg_handle(w->a, 2, w->f->buf[i], len, out, cap, &rl) !=
                FR_OK) {
                w->failed++;
            }
        }
        w->bytes += len;
    }
    free(out);
    return NULL;
}

// Runs T workers over f; returns the wall time, or -1.
static double
run_workers(const opts *o, fri_agg *a, const frames *f, uint8_t **ct,
            const uint8_t *key, uint64_t *bytes)
{
    pthread_t        th[64];
    worker           w[64];
    _Atomic uint32_t next = 0;
    double           t0   = now_s();
    for (uint32_t t = 0; t < o->threads; t++) {
        w[t] = (worker){.a = a, .f = f, .next = &next, .ct = ct, .key = key,
                        .raw = ct != NULL};
        if (pthread_create(&th[t], NULL, work, &w[t]) != 0) {
            return -1;
        }
    }
    uint32_t failed = 0;
    *bytes          = 0;
    for (uint32_t t = 0; t < o->threads; t++) {
        pthread_join(th[t], NULL);
        failed += w[t].failed;
        *bytes += w[t].bytes;
    }
    double dt = now_s() - t0;
    return failed == 0 ? dt : -1;
}

// perf record --control=fifo:CTL,ACK: with FR_PERF_CTL and FR_PERF_ACK
// naming those fifos, only the ingest phase is recorded.
static void
perf_ctl(const char *cmd)
{
    const char *ctl = getenv("FR_PERF_CTL"), *ack = getenv("FR_PERF_ACK");
    if (ctl == NULL || ack == NULL) {
        return;
    }
    FILE *c = fopen(ctl, "w");
    if (c == NULL) {
        return;
    }
    fputs(cmd, c);
    fclose(c);
    FILE *a = fopen(ack, "r");
    if (a != NULL) {
        char buf[16];
        if (fgets(buf, sizeof(buf), a) == NULL) {
            buf[0] = 0;
        }
        fclose(a);
    }
}

static int
cmp_d(const void *x, const void *y)
{
    double a = *(const double *) x, b = *(const double *) y;
    return (a > b) - (a < b);
}

static double
median(double *v, uint32_t n)
{
    qsort(v, n, sizeof(*v), cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int
main(int argc, char **argv)
{
    opts o;
    if (parse_args(&o, argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        return 1;
    }
    if (o.conns > 0) {
        return load_main(&o);
    }
    double *ing = calloc(o.runs, sizeof(double));
    double *raw = calloc(o.runs, sizeof(double));
    double  frame_mb = 0, build_s = 0;
    if (ing == NULL || raw == NULL) {
        return 1;
    }
    int rc = 0;
    for (uint32_t r = 0; r < o.runs && rc == 0; r++) {
        fri_agg *a = make_agg(&o);
        frames   f;
        double   tb = now_s();
        if (a == NULL || build_frames(&f, a, &o) != 0) {
            fprintf(stderr, "fedrec-bench-ingest: could not build frames\n");
            fri_agg_destroy(a);
            rc = 1;
            break;
        }
        build_s += now_s() - tb;
        // Raw baseline input: same lengths, sealed under a random key.
        uint8_t   key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
        uint8_t **ct = calloc(f.n, sizeof(*ct));
        randombytes_buf(key, sizeof(key));
        for (uint32_t i = 0; ct != NULL && i < f.n; i++) {
            size_t len  = f.len[i], body = len - 32 - 16;
            uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES] = {
                (uint8_t) i};
            ct[i] = malloc(len);
            if (ct[i] == NULL) {
                rc = 1;
                break;
            }
            memcpy(ct[i], f.buf[i], len);
            crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
                ct[i] + 32, ct[i] + 32 + body, NULL, ct[i] + 32, body,
                ct[i], 32, NULL, nonce, key);
        }
        uint64_t bytes = 0, rbytes = 0;
        perf_ctl("enable\n");
        double ti = rc == 0 ? run_workers(&o, a, &f, NULL, NULL, &bytes) : -1;
        perf_ctl("disable\n");
        double tr = rc == 0 ? run_workers(&o, a, &f, ct, key, &rbytes) : -1;
        fri_agg_metrics m;
        fri_agg_metrics_get(a, &m);
        if (ti < 0 || tr < 0 || m.updates_accepted != f.n) {
            fprintf(stderr,
                    "fedrec-bench-ingest: run %u: %" PRIu64
                    " of %u updates accepted (malformed %" PRIu64
                    ", crypto %" PRIu64 ", replay %" PRIu64 ")\n",
                    (unsigned) r, m.updates_accepted, (unsigned) f.n,
                    m.rejected[FRI_REJ_MALFORMED],
                    m.rejected[FRI_REJ_CRYPTO], m.rejected[FRI_REJ_REPLAY]);
            rc = 1;
        }
        ing[r]   = (double) f.n / ti;
        raw[r]   = (double) f.n / tr;
        frame_mb = (double) bytes / f.n / 1e6;
        for (uint32_t i = 0; ct != NULL && i < f.n; i++) {
            free(ct[i]);
        }
        free(ct);
        frames_free(&f);
        fri_agg_destroy(a);
    }
    if (rc == 0) {
        double ui = median(ing, o.runs), ur = median(raw, o.runs);
        printf("{\"items\":%u,\"k\":%u,\"width\":%u,\"updates_per_run\":%u,"
               "\"threads\":%u,\"runs\":%u,\"frame_bytes\":%.0f,"
               "\"ingest_updates_per_s\":%.1f,\"ingest_mb_per_s\":%.1f,"
               "\"raw_decrypt_updates_per_s\":%.1f,"
               "\"raw_decrypt_mb_per_s\":%.1f,\"ingest_vs_raw\":%.3f,"
               "\"build_s_per_run\":%.2f}\n",
               (unsigned) o.items, (unsigned) o.k, (unsigned) o.k + 1,
               (unsigned) o.n_updates, (unsigned) o.threads,
               (unsigned) o.runs, frame_mb * 1e6, ui, ui * frame_mb, ur,
               ur * frame_mb, ui / ur, build_s / o.runs);
    }
    free(ing);
    free(raw);
    return rc;
}
