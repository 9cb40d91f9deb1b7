// Comparing two aggregators' models (secure against plain runs): the
// largest difference over mu, the biases and the factors, and how far the
// second model moved from zero (so a comparison of two untrained models
// cannot pass). Header only, for the aggregator tests.
#ifndef FR_TESTS_AGGREGATOR_MODEL_DIFF_H
#define FR_TESTS_AGGREGATOR_MODEL_DIFF_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "agg.h"

typedef struct model_diff_out {
    double   worst;     // max |a - b| over mu, biases and factors
    double   q_max;     // max |factor| of b
    double   b_max;     // max |bias| of b
    uint64_t va, vb;    // the models' versions
} model_diff_out;

static inline model_diff_out
model_diff_of(fri_agg *a, fri_agg *b, uint32_t n_items, uint32_t k)
{
    model_diff_out o  = {0};
    size_t         nq = (size_t) n_items * k;
    float         *ba = malloc(sizeof(float) * n_items);
    float         *bb = malloc(sizeof(float) * n_items);
    float         *qa = malloc(sizeof(float) * nq);
    float         *qb = malloc(sizeof(float) * nq);
    cr_assert(ba != NULL && bb != NULL && qa != NULL && qb != NULL);
    float mua, mub;
    fri_agg_model_copy(a, &mua, ba, n_items, qa, nq, &o.va);
    fri_agg_model_copy(b, &mub, bb, n_items, qb, nq, &o.vb);
    o.worst = fabs((double) mua - mub);
    for (size_t i = 0; i < nq; i++) {
        o.worst = fmax(o.worst, fabs((double) qa[i] - qb[i]));
        o.q_max = fmax(o.q_max, fabs((double) qb[i]));
    }
    for (uint32_t i = 0; i < n_items; i++) {
        o.worst = fmax(o.worst, fabs((double) ba[i] - bb[i]));
        o.b_max = fmax(o.b_max, fabs((double) bb[i]));
    }
    free(ba);
    free(bb);
    free(qa);
    free(qb);
    return o;
}

#endif
