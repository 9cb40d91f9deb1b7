// fedrec-bench-foldin: real-time behaviour on the device. A device holding
// a model of N items (k factors) and H past ratings gets one new
// interaction and asks for its top 10: fr_client_add, fr_client_fold_in,
// fr_client_recommend, timed together, REPS times (each a new item), on
// one thread. Prints one JSON line with the p50 / p99 / max in ms, and the
// median cost of an explanation (fr_client_explain of one item, top 3)
// against a prediction from scratch (fold-in + fr_client_predict).
// Usage: fedrec-bench-foldin [ITEMS [K [HISTORY [REPS [MODEL [W]]]]]]
// (defaults 100000 32 50 1000 explicit). MODEL explicit: a ridge (ALS)
// model; vbmf: a variational one (item variances, user prior, the
// device's default rated-set prior shift); implicit: an iALS model and
// the implicit fold-in, with the device's default recency weighting over
// the timestamped history and its last-item term of weight W (default:
// the library's) (no explanation timing: its per-interaction
// refits are the implicit fold-in repeated). The model is random (its
// values do not change the work); it is installed the way a verified
// download is (model cache).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "linalg.h"
#include "rng.h"
#include "timing.h"

// Monotonic wall clock, milliseconds.
static double
now_ms(void)
{
    return wall_s() * 1e3;
}

int
main(int argc, char **argv)
{
    uint32_t n    = argc > 1 ? (uint32_t) strtoul(argv[1], NULL, 10) : 100000;
    uint32_t k    = argc > 2 ? (uint32_t) strtoul(argv[2], NULL, 10) : 32;
    uint32_t hist = argc > 3 ? (uint32_t) strtoul(argv[3], NULL, 10) : 50;
    int      reps = argc > 4 ? atoi(argv[4]) : 1000;
    int      impl = argc > 5 && strcmp(argv[5], "implicit") == 0;
    int      vb   = argc > 5 && strcmp(argv[5], "vbmf") == 0;
    if (n < 100 || k == 0 || k > 256 || hist + (uint32_t) reps >= n ||
        reps < 1 ||
        (argc > 5 && !impl && !vb && strcmp(argv[5], "explicit") != 0)) {
        fprintf(stderr, "usage: fedrec-bench-foldin [ITEMS [K [HISTORY "
                        "[REPS [explicit|vbmf|implicit [W]]]]]]\n");
        return 2;
    }
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    cfg.seed = 1;
    if (argc > 6) {
        cfg.transition_weight = strtod(argv[6], NULL);
    }
    for (int i = 0; i < FR_PUBLICKEYBYTES; i++) {
        cfg.server_pk[i] = (uint8_t) (i + 1);
    }
    fr_client *c = NULL;
    if (fr_client_create(&c, &cfg) != FR_OK) {
        fprintf(stderr, "fedrec-bench-foldin: client create failed\n");
        return 1;
    }
    fri_cmodel *m = NULL;
    if (fri_cmodel_alloc(&m, n, k) != FR_OK) {
        fprintf(stderr, "fedrec-bench-foldin: out of memory\n");
        return 1;
    }
    fri_rng r;
    fri_rng_seed(&r, 7);
    m->version  = 1;
    m->round    = 1;
    m->implicit = impl;
    m->mu       = impl ? 0.0f : 3.5f;
    for (uint32_t i = 0; i < n; i++) {
        m->bi[i] = impl ? 0.0f : (float) (0.3 * fri_rng_normal(&r));
        for (uint32_t f = 0; f < k; f++) {
            m->Q[(size_t) i * k + f] = (float) (0.2 * fri_rng_normal(&r));
        }
    }
    if (vb) {
        const size_t d = (size_t) k + 1;
        if (fri_cmodel_vb_alloc(m) != FR_OK) {
            fprintf(stderr, "fedrec-bench-foldin: out of memory\n");
            return 1;
        }
        m->beta = 1.2f;
        for (size_t a = 0; a < d; a++) {
            m->umean[a] = 0.01f * (float) a;
            m->uprec_packed[fri_packed_index(d, a, a)] = 2.0f;
        }
        for (size_t j = 0; j < (size_t) n * d; j++) {
            m->item_var[j] = (float) (0.02 + 0.01 * fri_rng_uniform(&r));
        }
    }
    memcpy(m->signer, c->server_pk + 32, 32);
    fri_cmodel *used = NULL;
    if (fri_cmodel_finish(m) != FR_OK ||
        fri_model_cache_put(c->cache, m, &used) != FR_OK) {
        fprintf(stderr, "fedrec-bench-foldin: model install failed\n");
        return 1;
    }
    fri_client_set_model(c, used);
    fri_cmodel_unref(used);
    fri_cmodel_unref(m);
    c->fit.implicit = impl; // what an iALS task sets
    // Items 0, 7, 14, ... are the history; new ones follow from the top.
    for (uint32_t j = 0; j < hist; j++) {
        if (fr_client_add(c, j * 7 % n, (float) (1 + j % 5), j) != FR_OK) {
            return 1;
        }
    }
    if (fr_client_fold_in(c) != FR_OK) {
        fprintf(stderr, "fedrec-bench-foldin: %s\n", fr_client_errmsg(c));
        return 1;
    }
    double  *t = malloc((size_t) reps * sizeof(double));
    uint32_t top[10];
    float    sc[10];
    size_t   got = 0;
    if (t == NULL) {
        return 1;
    }
    for (int i = 0; i < reps; i++) {
        uint32_t item = n - 1 - (uint32_t) i;
        double   t0   = now_ms();
        if (fr_client_add(c, item, (float) (1 + i % 5), hist + i) != FR_OK ||
            fr_client_fold_in(c) != FR_OK ||
            fr_client_recommend(c, top, sc, 10, &got) != FR_OK || got != 10) {
            fprintf(stderr, "fedrec-bench-foldin: %s\n", fr_client_errmsg(c));
            return 1;
        }
        t[i] = now_ms() - t0;
    }
    qsort(t, (size_t) reps, sizeof(double), cmp_d);
    double p50 = t[reps / 2], p99 = t[(size_t) (reps * 0.99)],
           tmax = t[reps - 1];
    if (impl) {
        printf("{\"items\":%u,\"k\":%u,\"history\":%u,\"reps\":%d,"
               "\"model\":\"implicit\",\"recency\":%g,\"transition\":%g,"
               "\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f}\n",
               n, k, hist, reps, (double) c->recency_hl,
               (double) c->trans_w, p50, p99, tmax);
        free(t);
        fr_client_destroy(c);
        return 0;
    }
    // Explanation vs prediction from scratch, same history, alternating.
    double *te = malloc((size_t) reps * sizeof(double));
    if (te == NULL) {
        return 1;
    }
    for (int i = 0; i < reps; i++) {
        uint32_t item = (uint32_t) (1 + 7 * i) % n, why[3];
        float    s, w[3];
        c->fitted = 0; // the next call refits: a prediction from scratch
        double t0 = now_ms();
        if (fr_client_predict(c, item, &s) != FR_OK) {
            return 1;
        }
        double t1 = now_ms();
        if (fr_client_explain(c, item, why, w, 3, &got) != FR_OK ||
            got != 3) {
            fprintf(stderr, "fedrec-bench-foldin: %s\n", fr_client_errmsg(c));
            return 1;
        }
        t[i]  = t1 - t0;
        te[i] = now_ms() - t1;
    }
    qsort(t, (size_t) reps, sizeof(double), cmp_d);
    qsort(te, (size_t) reps, sizeof(double), cmp_d);
    printf("{\"items\":%u,\"k\":%u,\"history\":%u,\"reps\":%d,"
           "\"model\":\"%s\",\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f,"
           "\"explain_history\":%u,\"predict_scratch_p50_ms\":%.4f,"
           "\"explain_p50_ms\":%.4f,\"explain_over_predict\":%.2f}\n",
           n, k, hist, reps, vb ? "vbmf" : "explicit", p50, p99, tmax,
           hist + (uint32_t) reps, t[reps / 2],
           te[reps / 2], te[reps / 2] / t[reps / 2]);
    free(te);
    free(t);
    fr_client_destroy(c);
    return 0;
}
