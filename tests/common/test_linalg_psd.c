// fri_psd_project_packed: the nearest PSD matrix (eigenvalues raised to a
// floor), used on the noisy Grams of DP statistics (docs/DP.md, section 6).
#include <criterion/criterion.h>
#include <math.h>

#include "linalg.h"

Test(linalg_psd, raises_negative_eigenvalues_and_keeps_psd_input)
{
    // [[1, 2], [2, 1]]: eigenvalues 3 and -1 along (1,1) and (1,-1).
    float  G[3] = { 1.0f, 2.0f, 1.0f };
    double work[2 * 4 + 2];
    cr_assert_eq(fri_psd_project_packed(G, 2, 0.0, work), 1u);
    // 3 * (1,1)(1,1)^T / 2 = [[1.5, 1.5], [1.5, 1.5]]
    for (int t = 0; t < 3; t++) {
        cr_assert(fabsf(G[t] - 1.5f) < 1e-5f, "G[%d] = %f", t, (double)G[t]);
    }
    // A PD matrix above the floor is left exactly as it is.
    float H[6] = { 4.0f, 1.0f, 0.5f, 3.0f, 0.2f, 2.0f };
    float H0[6];
    for (int t = 0; t < 6; t++) {
        H0[t] = H[t];
    }
    double w3[2 * 9 + 3];
    cr_assert_eq(fri_psd_project_packed(H, 3, 0.5, w3), 0u);
    for (int t = 0; t < 6; t++) {
        cr_assert_eq(H[t], H0[t]);
    }
    // Floor: the zero matrix becomes floor * I.
    float Z[6] = { 0 };
    cr_assert_eq(fri_psd_project_packed(Z, 3, 2.0, w3), 3u);
    cr_assert(fabsf(Z[0] - 2.0f) < 1e-6f && fabsf(Z[1]) < 1e-6f
        && fabsf(Z[3] - 2.0f) < 1e-6f && fabsf(Z[5] - 2.0f) < 1e-6f);
}
