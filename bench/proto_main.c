// fedrec-bench-proto: encode+seal and open+decode throughput of UPDATE
// frames next to raw XChaCha20-Poly1305 on the same byte counts, same run.
// Prints one JSON object. Usage: fedrec-bench-proto [--runs N] [--ms M]
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"
#include "keys.h"
#include "msg.h"

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
    qsort(v, (size_t) n, sizeof(double), cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct ctx {
    fri_session *c, *s;
    fri_update   u;
    uint8_t     *buf;
    uint8_t     *scratch;
    size_t       cap;
    size_t       plain_len;
    volatile float sink;
} ctx;

static void
die(const char *what, fr_err e)
{
    fprintf(stderr, "fedrec-bench-proto: %s: %s\n", what, fr_strerror(e));
    exit(1);
}

static size_t
encode_seal(ctx *x)
{
    size_t n, sl;
    fr_err e = fri_update_encode(x->buf + FRI_SEAL_HEADROOM,
                                 x->cap - FRI_SEAL_HEADROOM, &n, &x->u);
    if (e != FR_OK) {
        die("encode", e);
    }
    if ((e = fri_seal(x->c, x->buf, x->cap, n, &sl)) != FR_OK) {
        die("seal", e);
    }
    x->plain_len = n;
    return sl;
}

static void
open_decode(ctx *x, size_t sl)
{
    const uint8_t *pl;
    size_t         pn;
    fri_update     d;
    fr_err         e = fri_open(x->s, x->buf, sl, &pl, &pn);
    if (e != FR_OK) {
        die("open", e);
    }
    if ((e = fri_update_decode(&d, pl, pn)) != FR_OK) {
        die("decode", e);
    }
    x->sink = (float) d.n_rows;
}

// One measurement of each of the four operations; MB/s of plain bytes.
static void
measure(ctx *x, double ms, double out[4])
{
    uint8_t  key[32], nonce[24], tag[16];
    double   t0, tsum;
    long     it;
    randombytes_buf(key, sizeof(key));
    randombytes_buf(nonce, sizeof(nonce));
    size_t   len = x->plain_len;
    double   mb = (double) len / 1e6;

    // encode + seal
    it = 0;
    t0 = now();
    do {
        encode_seal(x);
        it++;
    } while (now() - t0 < ms / 1e3);
    out[0] = mb * (double) it / (now() - t0);

    // open + decode (sealing each frame untimed: counters must increase)
    it = 0;
    tsum = 0;
    t0 = now();
    do {
        size_t sl = encode_seal(x);
        double a = now();
        open_decode(x, sl);
        tsum += now() - a;
        it++;
    } while (now() - t0 < ms / 1e3);
    out[1] = mb * (double) it / tsum;

    // raw AEAD, in place, same byte count
    uint8_t *p = x->buf;
    it = 0;
    t0 = now();
    do {
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            p, tag, NULL, p, len, p, 0, NULL, nonce, key);
        it++;
    } while (now() - t0 < ms / 1e3);
    out[2] = mb * (double) it / (now() - t0);
    // Out of place so the ciphertext (and its tag) stay valid.
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        p, tag, NULL, p, len, NULL, 0, NULL, nonce, key);
    it = 0;
    t0 = now();
    do {
        if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                x->scratch, NULL, p, len, tag, NULL, 0, nonce, key) != 0) {
            die("raw decrypt", FR_ECRYPTO);
        }
        it++;
    } while (now() - t0 < ms / 1e3);
    out[3] = mb * (double) it / (now() - t0);
}

static void
bench(const char *name, ctx *x, int runs, double ms, int last)
{
    double r[4][64];
    encode_seal(x); // sets plain_len
    for (int i = 0; i < runs; i++) {
        double o[4];
        measure(x, ms, o);
        for (int j = 0; j < 4; j++) {
            r[j][i] = o[j];
        }
    }
    double m[4];
    for (int j = 0; j < 4; j++) {
        m[j] = median(r[j], runs);
    }
    printf("    \"%s\": {\"rows\": %u, \"width\": %u, \"frame_bytes\": %zu, "
           "\"encode_seal_MBps\": %.1f, \"open_decode_MBps\": %.1f, "
           "\"raw_encrypt_MBps\": %.1f, \"raw_decrypt_MBps\": %.1f, "
           "\"seal_ratio\": %.3f, \"open_ratio\": %.3f}%s\n",
           name, x->u.n_rows, x->u.width, x->plain_len, m[0], m[1], m[2],
           m[3], m[0] / m[2], m[1] / m[3], last ? "" : ",");
}

int
main(int argc, char **argv)
{
    int    runs = 7;
    double ms = 200;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc) {
            ms = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--runs N] [--ms M]\n", argv[0]);
            return 2;
        }
    }
    runs = runs < 1 ? 1 : (runs > 64 ? 64 : runs);
    if (sodium_init() < 0) {
        return 1;
    }
    fri_identity srv, cli;
    if (fri_identity_generate(&srv) != FR_OK ||
        fri_identity_generate(&cli) != FR_OK) {
        return 1;
    }
    ctx            x;
    uint8_t        hello[FRI_HELLO_LEN], welcome[FRI_WELCOME_LEN];
    size_t         hl, wl;
    fri_hs_client *hs;
    memset(&x, 0, sizeof(x));
    fr_err e = fri_hs_client_hello(&hs, hello, sizeof(hello), &hl, &cli,
                                   srv.kx_pk, 0);
    if (e == FR_OK) {
        e = fri_hs_server_accept(&x.s, welcome, sizeof(welcome), &wl, &srv,
                                 NULL, 0, hello, hl);
    }
    if (e == FR_OK) {
        e = fri_hs_client_finish(&x.c, hs, welcome, wl);
    }
    fri_hs_client_destroy(hs);
    if (e != FR_OK) {
        die("handshake", e);
    }

    const uint32_t k = 32, w = k + 1, n_items = 1682, n_sparse = 100;
    const uint32_t n_extra = (k + 1) * (k + 2) / 2 + 2;
    float         *rows = malloc(sizeof(float) * n_items * w);
    float         *extra = malloc(sizeof(float) * n_extra);
    uint32_t      *items = malloc(sizeof(uint32_t) * n_sparse);
    for (size_t i = 0; i < (size_t) n_items * w; i++) {
        rows[i] = (float) ((i * 2654435761u) % 1000) / 997.0f - 0.5f;
    }
    for (uint32_t i = 0; i < n_extra; i++) {
        extra[i] = (float) i * 0.01f;
    }
    for (uint32_t i = 0; i < n_sparse; i++) {
        items[i] = i * 16 + 3;
    }
    x.cap = fri_update_size(FRI_UPD_DENSE, w, n_items, n_extra) +
            FRI_SEAL_OVERHEAD;
    x.buf = malloc(x.cap);
    x.scratch = malloc(x.cap);
    if (!rows || !extra || !items || !x.buf || !x.scratch) {
        return 1;
    }
    printf("{\n  \"bench\": \"proto\",\n  \"unit\": \"MB/s of plain frame "
           "bytes, median of %d runs x %.0f ms\",\n  \"results\": {\n",
           runs, ms);
    x.u = (fri_update) { .round_id = 1, .kind = FRI_UPD_ALS,
                         .layout = FRI_UPD_DENSE, .k = k, .width = w,
                         .n_rows = n_items, .n_extra = n_extra,
                         .weight = 50.0f, .extra = extra, .rows = rows };
    bench("dense_1682x33", &x, runs, ms, 0);
    x.u.layout = FRI_UPD_SPARSE;
    x.u.n_rows = n_sparse;
    x.u.items = items;
    bench("sparse_100x33", &x, runs, ms, 1);
    printf("  }\n}\n");
    fri_session_destroy(x.c);
    fri_session_destroy(x.s);
    fri_identity_wipe(&srv);
    fri_identity_wipe(&cli);
    free(rows);
    free(extra);
    free(items);
    free(x.buf);
    free(x.scratch);
    return 0;
}
