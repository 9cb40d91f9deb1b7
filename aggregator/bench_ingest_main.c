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
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "agg.h"
#include "fedrec/client.h"
#include "msg.h"

typedef struct opts {
    uint32_t n_updates;
    uint32_t threads;
    uint32_t items;
    uint32_t k;
    uint32_t runs;
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
    o->runs      = 5;
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
        } else {
            bad = -1;
        }
        if (bad) {
            fprintf(stderr, "fedrec-bench-ingest: bad %s '%s'\n", a, v);
            return -1;
        }
    }
    return 0;
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
        double   ti = rc == 0 ? run_workers(&o, a, &f, NULL, NULL, &bytes)
                              : -1;
        double   tr = rc == 0 ? run_workers(&o, a, &f, ct, key, &rbytes)
                              : -1;
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
