// BPR: learns a planted two-block structure and refuses bad input.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bpr.h"

Test(bpr, ranks_own_block_first)
{
    // Users 0..9 touch items 0..5 except one; users 10..19 items 6..11
    // except one. The untouched item of the user's block must outrank
    // every item of the other block.
    fri_dataset d = { 0 };
    d.r           = calloc(20 * 5, sizeof(fri_triplet));
    cr_assert(d.r != NULL);
    for (uint32_t u = 0; u < 20; u++) {
        uint32_t base = u < 10 ? 0 : 6, skip = base + u % 6;
        for (uint32_t i = base; i < base + 6; i++) {
            if (i != skip) {
                d.r[d.n++] = (fri_triplet) { u, i, 1.0f, 0 };
            }
        }
    }
    d.n_users = 20;
    d.n_items = 12;
    fri_csr t;
    cr_assert_eq(fri_csr_by_user(&t, &d), FR_OK);
    fri_train_config c;
    fri_train_config_init(&c, FRI_TRAIN_SGD);
    c.k             = 4;
    c.epochs        = 200;
    c.lr            = 0.05f;
    c.lr_decay      = 0.0f;
    c.reg           = 0.01f;
    c.reg_bias      = 0.01f;
    c.init_std      = 0.1f;
    c.seed          = 3;
    fri_mf_model *m = NULL;
    cr_assert_eq(fri_train_bpr(&m, &t, &c, NULL, NULL), FR_OK);
    for (uint32_t u = 0; u < 20; u++) {
        uint32_t base = u < 10 ? 0 : 6, other = u < 10 ? 6 : 0;
        float    s = fri_mf_predict(m, u, base + u % 6);
        for (uint32_t i = other; i < other + 6; i++) {
            cr_assert_gt(s, fri_mf_predict(m, u, i), "user %u item %u", u, i);
        }
    }
    // Seeded: the same run gives the same model.
    fri_mf_model *m2 = NULL;
    cr_assert_eq(fri_train_bpr(&m2, &t, &c, NULL, NULL), FR_OK);
    cr_assert_eq(memcmp(m->Q, m2->Q, 12 * 4 * sizeof(float)), 0);
    fri_mf_destroy(m2);
    fri_mf_destroy(m);
    c.lr = 0.0f;
    cr_assert_eq(fri_train_bpr(&m, &t, &c, NULL, NULL), FR_EINVAL);
    cr_assert(m == NULL);
    c.lr = 0.05f;
    c.k  = 0;
    cr_assert_eq(fri_train_bpr(&m, &t, &c, NULL, NULL), FR_EINVAL);
    fri_csr_free(&t);
    free(d.r);
}
