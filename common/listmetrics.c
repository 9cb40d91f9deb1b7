#include "listmetrics.h"

#include <math.h>
#include <stdlib.h>

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

// Gini of non-negative counts (sorted in place): with x ascending and
// i = 1..n, G = sum (2i - n - 1) x_i / (n sum x).
static double
gini(uint64_t *x, size_t n)
{
    qsort(x, n, sizeof *x, cmp_u64);
    double num = 0.0, tot = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += (2.0 * (double) (i + 1) - (double) n - 1.0) * (double) x[i];
        tot += (double) x[i];
    }
    return tot > 0.0 ? num / ((double) n * tot) : 0.0;
}

fr_err
fri_list_metrics_eval(fri_list_metrics *out, const uint32_t *lists,
                      const uint8_t *lens, size_t n_lists, size_t K,
                      uint32_t n_items, const uint32_t *pop, uint32_t n_users,
                      const float *Q, uint32_t k)
{
    if (out == NULL || (n_lists > 0 && (lists == NULL || lens == NULL)) ||
        pop == NULL || K == 0 || n_items == 0 || (Q != NULL && k == 0)) {
        return FR_EINVAL;
    }
    for (size_t r = 0; r < n_lists; r++) {
        if (lens[r] > K) {
            return FR_EINVAL;
        }
        for (size_t t = 0; t < lens[r]; t++) {
            if (lists[r * K + t] >= n_items) {
                return FR_EINVAL;
            }
        }
    }
    uint64_t *expo = calloc(n_items, sizeof *expo);
    double   *nrm  = Q != NULL ? malloc(n_items * sizeof *nrm) : NULL;
    if (expo == NULL || (Q != NULL && nrm == NULL)) {
        free(expo);
        free(nrm);
        return FR_ENOMEM;
    }
    for (uint32_t i = 0; Q != NULL && i < n_items; i++) {
        double s = 0.0;
        for (uint32_t f = 0; f < k; f++) {
            s += (double) Q[(size_t) i * k + f] * Q[(size_t) i * k + f];
        }
        nrm[i] = sqrt(s);
    }
    double pop_sum = 0.0, nov_sum = 0.0, ild_sum = 0.0;
    size_t n_rec = 0, n_used = 0, n_ild = 0;
    for (size_t r = 0; r < n_lists; r++) {
        const uint32_t *l = lists + r * K;
        size_t          n = lens[r];
        n_used += n > 0;
        for (size_t t = 0; t < n; t++) {
            expo[l[t]]++;
            pop_sum += pop[l[t]];
            nov_sum -= log2(((double) pop[l[t]] + 1.0) /
                            ((double) n_users + 1.0));
            n_rec++;
        }
        double s = 0.0;
        size_t pairs = 0;
        for (size_t a = 0; Q != NULL && a < n; a++) {
            for (size_t b = a + 1; b < n; b++) {
                const double na = nrm[l[a]], nb = nrm[l[b]];
                if (na == 0.0 || nb == 0.0) {
                    continue; // no direction to compare
                }
                const float *qa = Q + (size_t) l[a] * k;
                const float *qb = Q + (size_t) l[b] * k;
                double       dot = 0.0;
                for (uint32_t f = 0; f < k; f++) {
                    dot += (double) qa[f] * qb[f];
                }
                s += 1.0 - dot / (na * nb);
                pairs++;
            }
        }
        if (pairs > 0) {
            ild_sum += s / (double) pairs;
            n_ild++;
        }
    }
    size_t covered = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        covered += expo[i] > 0;
    }
    out->coverage       = (double) covered / (double) n_items;
    out->gini           = gini(expo, n_items);
    out->avg_popularity = n_rec > 0 ? pop_sum / (double) n_rec : NAN;
    out->novelty        = n_rec > 0 ? nov_sum / (double) n_rec : NAN;
    out->ild            = n_ild > 0 ? ild_sum / (double) n_ild : NAN;
    out->n_lists        = n_used;
    free(expo);
    free(nrm);
    return FR_OK;
}
