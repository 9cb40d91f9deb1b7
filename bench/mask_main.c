// fedrec-bench-mask: a device's masking step of one secure round
// (fri_secagg_mask: one pairwise mask per neighbour plus the self mask
// over the whole vector), median wall time of REPS runs. Prints one JSON
// line with the time and the keystream rate it implies.
// Usage: fedrec-bench-mask [DEGREE [WORDS [REPS]]] (defaults 70 129595 7:
// a member of the ML-100K deployment profile, SecAgg+ degree 70, the VBMF
// statistics vector at k = 10).
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secagg.h"
#include "timing.h"

int
main(int argc, char **argv)
{
    uint32_t deg  = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 70;
    size_t   n    = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 129595;
    int      reps = argc > 3 ? atoi(argv[3]) : 7;
    if (sodium_init() < 0 || deg == 0 || deg > 1000 || n == 0 || reps < 1
        || reps > 99) {
        fprintf(stderr, "usage: fedrec-bench-mask [DEGREE [WORDS [REPS]]]\n");
        return 2;
    }
    uint32_t *x = malloc(n * sizeof(uint32_t)), *y = malloc(n * sizeof *y);
    uint32_t *peers = malloc(deg * sizeof(uint32_t));
    uint8_t  *pk    = malloc((size_t)deg * 32);
    if (!x || !y || !peers || !pk) {
        fprintf(stderr, "fedrec-bench-mask: out of memory\n");
        return 1;
    }
    fri_secagg_keys me;
    if (fri_secagg_keygen(&me, NULL) != FR_OK) {
        return 1;
    }
    for (uint32_t i = 0; i < deg; i++) {
        fri_secagg_keys k;
        if (fri_secagg_keygen(&k, NULL) != FR_OK) {
            return 1;
        }
        memcpy(pk + 32 * i, k.c_pk, 32);
        peers[i] = i < deg / 2 ? i : i + 1; // me = deg / 2: both signs
        fri_secagg_keys_wipe(&k);
    }
    uint8_t b[32];
    randombytes_buf(b, sizeof b);
    randombytes_buf(x, n * sizeof *x);
    double t[99];
    for (int r = 0; r < reps; r++) {
        double t0 = wall_s();
        if (fri_secagg_mask(y, x, n, deg / 2, peers, pk, deg, me.c_sk, b, 1)
            != FR_OK) {
            fprintf(stderr, "fedrec-bench-mask: mask failed\n");
            return 1;
        }
        t[r] = wall_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    double med = t[reps / 2];
    printf("{\"degree\":%u,\"words\":%zu,\"reps\":%d,\"median_s\":%.6f,"
           "\"keystream_gb_per_s\":%.3f,\"check\":%u}\n",
        deg, n, reps, med, (double)(deg + 1) * (double)n * 4 / med / 1e9,
        y[0] ^ y[n - 1]);
    fri_secagg_keys_wipe(&me);
    free(x);
    free(y);
    free(peers);
    free(pk);
    return 0;
}
