// The aggregator's side of masked iALS statistics (SPEC S1c,
// accumulate.c): a decoded sum that agrees with honest statistics becomes
// the solver's accumulators (per item [sum w p p^T | sum c p], Y^T Y); one
// with a negative Gram diagonal or with confidences that do not add up to
// the interaction count is refused, and the round's sums stay empty.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "accumulate.h"
#include "agg_int.h"
#include "linalg.h"
#include "secagg_ials.h"

#define NIT 5
#define K 2
#define PK 3
#define W (PK + K + 1)

static fri_agg *
make(void)
{
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = NIT;
    c.k                 = K;
    c.algo              = FRI_AGG_ALS;
    c.implicit          = 1;
    c.alpha             = 2.0f;
    c.rating_min        = 0.0f;
    c.rating_max        = 1.0f;
    c.secagg            = FRI_AGG_SECAGG_PLUS;
    c.clients_per_round = 3;
    c.min_clients       = 2;
    c.robust            = 0;
    fri_agg *a          = NULL;
    char     err[256];
    fr_err   rv = fri_agg_create(&a, &c, 0, err, sizeof(err));
    cr_assert_eq(rv, FR_OK, "create: %s: %s", fr_errname(rv), err);
    a->rs.n_members = 2;
    return a;
}

// Two devices' summed statistics: device 1 clicked items 0 and 3, device
// 2 item 3 (w = alpha = 2, c = 3 for each click).
static void
honest_sum(float *v, size_t dim)
{
    const float p1[K] = { 0.5f, -0.25f }, p2[K] = { 0.1f, 0.4f };
    memset(v, 0, dim * sizeof(float));
    const float *ps[2]          = { p1, p2 };
    const int    clicks[2][NIT] = { { 1, 0, 0, 1, 0 }, { 0, 0, 0, 1, 0 } };
    for (int u = 0; u < 2; u++) {
        const float *p = ps[u];
        for (int i = 0; i < NIT; i++) {
            if (!clicks[u][i]) {
                continue;
            }
            float *row = v + i * W;
            for (int a = 0; a < K; a++) {
                for (int b = a; b < K; b++) {
                    row[fri_packed_index(K, a, b)] += 2.0f * p[a] * p[b];
                }
                row[PK + a] += 3.0f * p[a];
            }
            row[PK + K] += 3.0f;
        }
        for (int a = 0; a < K; a++) {
            for (int b = a; b < K; b++) {
                v[NIT * W + fri_packed_index(K, a, b)] += p[a] * p[b];
            }
        }
    }
    v[dim - 2] = 3.0f; // value sum
    v[dim - 1] = 3.0f; // clicks
}

Test(agg_secagg_ials, honest_sum_becomes_the_accumulators)
{
    fri_agg *a   = make();
    size_t   dim = fri_sa_ials_dim(NIT, K);
    cr_assert_eq(dim, NIT * W + PK + 2);
    float v[NIT * W + PK + 2];
    honest_sum(v, dim);
    cr_assert_eq(fri_agg_acc_set_dense(a, v, dim), FR_OK);
    cr_assert_eq(a->sums.n_touched, 2); // items 0 and 3
    for (size_t t = 0; t < PK; t++) {
        cr_assert_float_eq(a->sums.gram_all[t], v[NIT * W + t], 1e-7);
    }
    for (size_t r = 0; r < PK + K; r++) {
        cr_assert_float_eq(a->sums.acc[3][r], v[3 * W + r], 1e-7);
    }
    cr_assert_float_eq(a->sums.count, 3.0, 1e-9);
    cr_assert_eq(fri_agg_acc_set_dense(a, v, dim - 1), FR_EINVAL);
    fri_agg_destroy(a);
}

Test(agg_secagg_ials, inconsistent_sums_refused)
{
    size_t dim = fri_sa_ials_dim(NIT, K);
    float  v[NIT * W + PK + 2];
    // A negative Gram diagonal (no sum of w p_a^2 can be).
    fri_agg *a = make();
    honest_sum(v, dim);
    v[3 * W + fri_packed_index(K, 1, 1)] = -0.5f;
    cr_assert_eq(fri_agg_acc_set_dense(a, v, dim), FR_EPROTO);
    cr_assert_eq(a->sums.n_touched, 0);
    fri_agg_destroy(a);
    // A negative Y^T Y diagonal.
    a = make();
    honest_sum(v, dim);
    v[NIT * W] = -0.5f;
    cr_assert_eq(fri_agg_acc_set_dense(a, v, dim), FR_EPROTO);
    fri_agg_destroy(a);
    // Confidences below one per interaction: a count inflated past them.
    a = make();
    honest_sum(v, dim);
    v[dim - 1] = 40.0f;
    cr_assert_eq(fri_agg_acc_set_dense(a, v, dim), FR_EPROTO);
    fri_agg_destroy(a);
    // Confidences above (C + 1) per interaction (C = alpha = 2).
    a = make();
    honest_sum(v, dim);
    v[0 * W + PK + K] = 60.0f;
    cr_assert_eq(fri_agg_acc_set_dense(a, v, dim), FR_EPROTO);
    fri_agg_destroy(a);
}
