// fedrec-bench-unmask: the aggregator's unmasking step of one secure round
// (fri_secagg_unmask) at a given size, on 1 thread and on the automatic
// count, median wall time of REPS runs each. Prints one JSON line.
// Usage: fedrec-bench-unmask [MEMBERS [DEGREE [DROPOUT [WORDS [REPS]]]]]
// (defaults 1000 100 0.3 22002 3: the 1,000-client round of
// docs/BENCHMARKS.md). The cost does not depend on the values summed.
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secagg.h"
#include "timing.h"

int
main(int argc, char **argv)
{
    uint32_t m    = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000;
    uint32_t deg  = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 100;
    double   drop = argc > 3 ? strtod(argv[3], NULL) : 0.3;
    size_t   n    = argc > 4 ? (size_t)strtoul(argv[4], NULL, 10) : 22002;
    int      reps = argc > 5 ? atoi(argv[5]) : 3;
    if (sodium_init() < 0 || m < 2 || m > FRI_SECAGG_MAX_CLIENTS
        || !(drop >= 0.0 && drop < 1.0) || n == 0 || reps < 1 || reps > 99) {
        fprintf(stderr,
            "usage: fedrec-bench-unmask [MEMBERS [DEGREE "
            "[DROPOUT [WORDS [REPS]]]]]\n");
        return 2;
    }
    uint32_t *surv = malloc(m * sizeof(uint32_t));
    uint32_t *drp  = malloc(m * sizeof(uint32_t));
    uint8_t  *s_pk = malloc((size_t)m * 32), *s_b = malloc((size_t)m * 32);
    uint8_t  *d_sk = malloc((size_t)m * 32);
    uint32_t *sum  = malloc(n * sizeof(uint32_t));
    if (!surv || !drp || !s_pk || !s_b || !d_sk || !sum) {
        fprintf(stderr, "fedrec-bench-unmask: out of memory\n");
        return 1;
    }
    size_t ns = 0, nd = 0;
    size_t n_drop = (size_t)(drop * m + 0.5);
    for (uint32_t u = 0; u < m; u++) {
        fri_secagg_keys k;
        if (fri_secagg_keygen(&k, NULL) != FR_OK) {
            return 1;
        }
        // Evenly spread dropped members.
        if (nd < n_drop && (uint64_t)u * n_drop / m >= nd) {
            memcpy(d_sk + 32 * nd, k.c_sk, 32);
            drp[nd++] = u;
        } else {
            memcpy(s_pk + 32 * ns, k.c_pk, 32);
            randombytes_buf(s_b + 32 * ns, 32);
            surv[ns++] = u;
        }
        fri_secagg_keys_wipe(&k);
    }
    fri_secagg_graph g = { .n_clients = m, .degree = deg };
    randombytes_buf(g.seed, sizeof(g.seed));
    double t[2][99];
    for (int mode = 0; mode < 2; mode++) {
        for (int r = 0; r < reps; r++) {
            randombytes_buf(sum, n * sizeof(uint32_t));
            fri_secagg_unmask_input in = { .round_id = 1,
                .graph                               = &g,
                .survivors                           = surv,
                .survivor_c_pk                       = s_pk,
                .survivor_b                          = s_b,
                .n_survivors                         = ns,
                .dropped                             = drp,
                .dropped_c_sk                        = d_sk,
                .n_dropped                           = nd,
                .threads                             = mode == 0 ? 1 : 0 };
            double                  t0 = wall_s();
            if (fri_secagg_unmask(sum, n, &in) != FR_OK) {
                fprintf(stderr, "fedrec-bench-unmask: unmask failed\n");
                return 1;
            }
            t[mode][r] = wall_s() - t0;
        }
        qsort(t[mode], (size_t)reps, sizeof(double), cmp_d);
    }
    double one = t[0][reps / 2], aut = t[1][reps / 2];
    printf("{\"members\":%u,\"degree\":%u,\"dropped\":%zu,\"words\":%zu,"
           "\"reps\":%d,\"seconds_1_thread\":%.4f,\"seconds_auto\":%.4f,"
           "\"speedup\":%.2f}\n",
        m, deg, nd, n, reps, one, aut, aut > 0 ? one / aut : 0.0);
    sodium_memzero(d_sk, (size_t)m * 32);
    sodium_memzero(s_b, (size_t)m * 32);
    free(surv);
    free(drp);
    free(s_pk);
    free(s_b);
    free(d_sk);
    free(sum);
    return 0;
}
