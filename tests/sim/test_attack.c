#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attack.h"
#include "dp.h"
#include "mf.h"
#include "pseudo.h"
#include "rng.h"
#include "secagg.h"

// ------------------------------------------------------------------ AUC

Test(sim_attack, auc_hand_computed)
{
    double auc;
    // Textbook case: pos {0.35, 0.8}, neg {0.1, 0.4}: 3 of 4 pairs right.
    float s1[] = { 0.1f, 0.4f, 0.35f, 0.8f };
    uint8_t l1[] = { 0, 0, 1, 1 };
    cr_assert_eq(fri_atk_auc(&auc, s1, l1, 4), FR_OK);
    cr_assert(fabs(auc - 0.75) < 1e-12, "%f", auc);
    // One tie between a positive and a negative: (1 + 1 + 0.5 + 1) / 4.
    float s2[] = { 3, 2, 2, 1 };
    uint8_t l2[] = { 1, 1, 0, 0 };
    cr_assert_eq(fri_atk_auc(&auc, s2, l2, 4), FR_OK);
    cr_assert(fabs(auc - 0.875) < 1e-12, "%f", auc);
    // Pairs (1,1)=.5 (1,0)=1 (0,1)=0 (0,0)=.5 -> 0.5.
    float s3[] = { 1, 1, 0, 0 };
    uint8_t l3[] = { 1, 0, 1, 0 };
    cr_assert_eq(fri_atk_auc(&auc, s3, l3, 4), FR_OK);
    cr_assert(fabs(auc - 0.5) < 1e-12, "%f", auc);
    // All tied: 0.5 whatever the labels.
    float s4[] = { 2, 2, 2, 2, 2 };
    uint8_t l4[] = { 1, 0, 0, 1, 0 };
    cr_assert_eq(fri_atk_auc(&auc, s4, l4, 5), FR_OK);
    cr_assert(fabs(auc - 0.5) < 1e-12, "%f", auc);
    // Perfect and inverted orderings.
    float s5[] = { 5, 4, 3, 2, 1 };
    uint8_t l5[] = { 1, 1, 0, 0, 0 };
    uint8_t l6[] = { 0, 0, 0, 1, 1 };
    cr_assert_eq(fri_atk_auc(&auc, s5, l5, 5), FR_OK);
    cr_assert(fabs(auc - 1.0) < 1e-12);
    cr_assert_eq(fri_atk_auc(&auc, s5, l6, 5), FR_OK);
    cr_assert(fabs(auc) < 1e-12);
    // Mixed ties: pos {2, 1, 1}, neg {2, 1, 0}.
    // 2: vs 2 .5, vs 1 1, vs 0 1 = 2.5; each 1: .5+... vs 2 0, vs 1 .5,
    // vs 0 1 = 1.5 -> (2.5 + 1.5 + 1.5) / 9.
    float s7[] = { 2, 1, 1, 2, 1, 0 };
    uint8_t l7[] = { 1, 1, 1, 0, 0, 0 };
    cr_assert_eq(fri_atk_auc(&auc, s7, l7, 6), FR_OK);
    cr_assert(fabs(auc - 5.5 / 9.0) < 1e-12, "%f", auc);
    // Undefined without both classes; NaN scores refused.
    uint8_t none[] = { 0, 0, 0, 0 };
    cr_assert_eq(fri_atk_auc(&auc, s1, none, 4), FR_EINVAL);
    float bad[] = { 0.1f, NAN, 0.2f, 0.3f };
    cr_assert_eq(fri_atk_auc(&auc, bad, l1, 4), FR_EINVAL);
}

Test(sim_attack, membership_eval_counts_ties_fractionally)
{
    fri_atk_membership m;
    // Top-1 cut falls in a 3-way tie holding the one rated item: 1/3.
    float s[] = { 1, 1, 1, 0 };
    uint32_t rated[] = { 0 };
    cr_assert_eq(fri_atk_membership_eval(&m, s, 4, rated, 1, 0.0f), FR_OK);
    cr_assert(fabs(m.prec_at_r - 1.0 / 3.0) < 1e-12);
    cr_assert(fabs(m.flag_precision - 1.0 / 3.0) < 1e-12);
    cr_assert(fabs(m.flag_recall - 1.0) < 1e-12);
    cr_assert_eq(m.n_flagged, 3);
    cr_assert(fabs(m.auc - (2 * 0.5 + 1) / 3.0) < 1e-12, "%f", m.auc);
    // Clean separation.
    float s2[] = { 0, 3, 0, 2, 0 };
    uint32_t r2[] = { 1, 3 };
    cr_assert_eq(fri_atk_membership_eval(&m, s2, 5, r2, 2, 0.0f), FR_OK);
    cr_assert(m.prec_at_r == 1.0 && m.auc == 1.0 && m.flag_precision == 1.0);
    uint32_t unsorted[] = { 3, 1 };
    cr_assert_eq(fri_atk_membership_eval(&m, s2, 5, unsorted, 2, 0.0f),
                 FR_EINVAL);
}

// ------------------------------------------------------ synthetic users

#define N_ITEMS 600u
#define K 8u
#define D (K + 1u)
#define N_USERS 60u
#define REG 0.05f
#define REG_BIAS 0.05f

typedef struct world {
    float        Q[N_ITEMS * K], bi[N_ITEMS];
    fri_mf_items it;
} world;

typedef struct user {
    uint32_t items[N_ITEMS];
    float    ratings[N_ITEMS];
    size_t   n;
    float    p[K], bu; // fitted by the client's closed-form solve
} user;

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : (x > y);
}

static void
world_make(world *w, uint64_t seed, const world *base, double drift)
{
    fri_rng r;
    fri_rng_seed(&r, seed);
    for (size_t i = 0; i < N_ITEMS * K; i++) {
        w->Q[i] = (base ? base->Q[i] : 0.0f) +
                  (float)((base ? drift : 0.4) * fri_rng_normal(&r));
    }
    for (size_t i = 0; i < N_ITEMS; i++) {
        w->bi[i] = (base ? base->bi[i] : 0.0f) +
                   (float)((base ? drift : 0.4) * fri_rng_normal(&r));
    }
    w->it = (fri_mf_items){ .n_items = N_ITEMS, .k = K, .mu = 3.6f,
                            .bi = w->bi, .Q = w->Q };
}

// Ratings 1..5 (half stars) of a latent user on 15..74 random items.
static void
user_make(user *u, const world *w, uint64_t seed)
{
    fri_rng r;
    fri_rng_seed(&r, seed);
    uint32_t perm[N_ITEMS];
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        perm[i] = i;
    }
    fri_rng_shuffle_u32(&r, perm, N_ITEMS);
    u->n = 15 + fri_rng_below(&r, 60);
    memcpy(u->items, perm, u->n * sizeof(uint32_t));
    qsort(u->items, u->n, sizeof(uint32_t), cmp_u32);
    float p[K];
    for (size_t a = 0; a < K; a++) {
        p[a] = (float)(0.5 * fri_rng_normal(&r));
    }
    float bu = (float)(0.4 * fri_rng_normal(&r));
    for (size_t j = 0; j < u->n; j++) {
        double v = fri_mf_predict_with(&w->it, p, bu, u->items[j]) +
                   0.7 * fri_rng_normal(&r);
        v = round(v * 2.0) / 2.0;
        u->ratings[j] = (float)(v < 1.0 ? 1.0 : v > 5.0 ? 5.0 : v);
    }
}

// What a client does every round: refit (p_u, b_u) in closed form.
static void
user_fit(user *u, const world *w)
{
    cr_assert_eq(fri_mf_user_solve(u->p, &u->bu, &w->it, u->items,
                                   u->ratings, u->n, REG, REG_BIAS, 1, NULL,
                                   0),
                 FR_OK);
}

static void
grad_rows(float *rows, const user *u, const world *w)
{
    cr_assert_eq(fri_mf_user_item_grad(rows, N_ITEMS * D, &w->it, u->p, u->bu,
                                       u->items, u->ratings, u->n, REG,
                                       REG_BIAS),
                 FR_OK);
}

static void
als_rows(float *gram, float *rows, const user *u, const world *w)
{
    cr_assert_eq(fri_mf_user_item_stats(gram, (D * (D + 1)) / 2, rows,
                                        N_ITEMS * D, u->p, u->bu, K,
                                        w->it.mu, u->ratings, u->n),
                 FR_OK);
}

static world W;

static void
setup(void)
{
    world_make(&W, 77, NULL, 0.0);
}

// ----------------------------------------------- (a) rated-item inference

Test(sim_attack, plain_sparse_updates_reveal_rated_items, .init = setup)
{
    for (int kind = 0; kind < 2; kind++) {
        fri_atk_membership_acc acc;
        fri_atk_membership_acc_init(&acc);
        for (uint32_t k = 0; k < N_USERS; k++) {
            user u;
            user_make(&u, &W, 1000 + k);
            user_fit(&u, &W);
            static float rows[N_ITEMS * D];
            float gram[(D * (D + 1)) / 2];
            if (kind == 0) {
                grad_rows(rows, &u, &W);
            } else {
                als_rows(gram, rows, &u, &W);
            }
            float scores[N_ITEMS];
            cr_assert_eq(fri_atk_score_rows(scores, N_ITEMS, u.items, rows,
                                            u.n, D),
                         FR_OK);
            fri_atk_membership m;
            cr_assert_eq(fri_atk_membership_eval(&m, scores, N_ITEMS, u.items,
                                                 u.n, 0.0f),
                         FR_OK);
            fri_atk_membership_acc_add(&acc, &m);
        }
        fri_atk_membership mean = fri_atk_membership_acc_mean(&acc);
        cr_assert_eq(acc.n_users, N_USERS);
        cr_assert_eq(mean.auc, 1.0, "kind %d auc %f", kind, mean.auc);
        cr_assert_eq(mean.prec_at_r, 1.0);
        cr_assert_eq(mean.flag_precision, 1.0);
        cr_assert_eq(mean.flag_recall, 1.0);
    }
}

// A dense update over all items without masking hides nothing: the rows of
// unrated items are exactly zero.
Test(sim_attack, dense_unmasked_updates_still_reveal, .init = setup)
{
    user u;
    user_make(&u, &W, 5);
    user_fit(&u, &W);
    static float sparse[N_ITEMS * D], dense[N_ITEMS * D];
    grad_rows(sparse, &u, &W);
    memset(dense, 0, sizeof(dense));
    uint32_t all[N_ITEMS];
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        all[i] = i;
    }
    for (size_t j = 0; j < u.n; j++) {
        memcpy(dense + (size_t)u.items[j] * D, sparse + j * D,
               D * sizeof(float));
    }
    float scores[N_ITEMS];
    cr_assert_eq(fri_atk_score_rows(scores, N_ITEMS, all, dense, N_ITEMS, D),
                 FR_OK);
    fri_atk_membership m;
    cr_assert_eq(fri_atk_membership_eval(&m, scores, N_ITEMS, u.items, u.n,
                                         0.0f),
                 FR_OK);
    cr_assert_eq(m.auc, 1.0);
}

// Secure aggregation: one client's masked vector is uniform in Z_2^32.
// Under the null, the AUC of one user (n+ rated of n items) has sd
// sqrt((n + 1) / (12 n+ n-)) ~ 0.03 for n+ = 45; the mean over 60 users
// ~ 0.004, so |mean - 0.5| < 0.03 is a > 7-sd bound.
Test(sim_attack, masked_vectors_give_chance_auc, .init = setup)
{
    uint32_t all[N_ITEMS];
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        all[i] = i;
    }
    for (int variant = 0; variant < 2; variant++) {
        fri_atk_membership_acc acc;
        fri_atk_membership_acc_init(&acc);
        fri_rng r;
        fri_rng_seed(&r, 4242 + (uint64_t)variant);
        for (uint32_t k = 0; k < N_USERS; k++) {
            user u;
            user_make(&u, &W, 2000 + k);
            user_fit(&u, &W);
            static uint32_t words[N_ITEMS * D];
            if (variant == 0) {
                // Plainly uniform words.
                for (size_t t = 0; t < N_ITEMS * D; t++) {
                    words[t] = (uint32_t)fri_rng_next(&r);
                }
            } else {
                // The real thing: the quantized dense update plus the
                // client's self-mask PRG(b_u) (pair masks only add more
                // uniform noise).
                static float sparse[N_ITEMS * D], dense[N_ITEMS * D];
                grad_rows(sparse, &u, &W);
                memset(dense, 0, sizeof(dense));
                for (size_t j = 0; j < u.n; j++) {
                    memcpy(dense + (size_t)u.items[j] * D, sparse + j * D,
                           D * sizeof(float));
                }
                cr_assert_eq(fri_secagg_quantize(words, dense, N_ITEMS * D,
                                                 8.0f, 16, NULL),
                             FR_OK);
                uint8_t seed[FRI_SECAGG_SEEDBYTES];
                for (size_t b = 0; b < sizeof(seed); b++) {
                    seed[b] = (uint8_t)fri_rng_next(&r);
                }
                cr_assert_eq(fri_secagg_prg_add(words, N_ITEMS * D, seed, 1),
                             FR_OK);
            }
            float scores[N_ITEMS];
            cr_assert_eq(fri_atk_score_masked(scores, N_ITEMS, all, words,
                                              N_ITEMS, D, 16),
                         FR_OK);
            fri_atk_membership m;
            cr_assert_eq(fri_atk_membership_eval(&m, scores, N_ITEMS, u.items,
                                                 u.n, 0.0f),
                         FR_OK);
            fri_atk_membership_acc_add(&acc, &m);
        }
        fri_atk_membership mean = fri_atk_membership_acc_mean(&acc);
        cr_log_info("masked variant %d: auc %.4f prec@|I| %.4f", variant,
                    mean.auc, mean.prec_at_r);
        cr_assert(fabs(mean.auc - 0.5) < 0.03, "variant %d auc %f", variant,
                  mean.auc);
        // Top-|I_u| precision at chance (~ |I_u| / n_items ~ 0.075).
        cr_assert(mean.prec_at_r < 0.15, "prec %f", mean.prec_at_r);
        cr_assert_eq(mean.flag_recall, 1.0); // every word looks touched
    }
}

// Pseudo-items (rho = 1, default fill): the touched set is twice the rated
// set and fake rows look real, so precision@|I_u| drops to ~0.5 and the AUC
// among the visible rows to ~0.5. Over all items the AUC stays high
// (untouched items are still exposed as unrated), but clearly below 1.
Test(sim_attack, pseudo_items_hide_which_rows_are_real, .init = setup)
{
    for (int kind = 0; kind < 2; kind++) {
        fri_atk_membership_acc acc;
        fri_atk_membership_acc_init(&acc);
        double vis_auc = 0.0;
        for (uint32_t k = 0; k < N_USERS; k++) {
            user u;
            user_make(&u, &W, 3000 + k);
            user_fit(&u, &W);
            static float rows[N_ITEMS * D], mrows[N_ITEMS * D];
            float gram[(D * (D + 1)) / 2];
            if (kind == 0) {
                grad_rows(rows, &u, &W);
            } else {
                als_rows(gram, rows, &u, &W);
            }
            fri_pseudo_config c;
            fri_pseudo_config_init(&c);
            fri_rng r;
            fri_rng_seed(&r, 9000 + k);
            uint32_t mitems[N_ITEMS];
            uint8_t fake[N_ITEMS];
            size_t n = 0;
            cr_assert_eq(fri_pseudo_merge(mitems, mrows, fake, N_ITEMS, &n,
                                          NULL, (fri_pseudo_rows)kind, &W.it,
                                          u.p, u.bu, REG, REG_BIAS, u.items,
                                          u.ratings, rows, u.n, &c, &r),
                         FR_OK);
            cr_assert_eq(n, 2 * u.n);
            float scores[N_ITEMS];
            cr_assert_eq(fri_atk_score_rows(scores, N_ITEMS, mitems, mrows, n,
                                            D),
                         FR_OK);
            fri_atk_membership m;
            cr_assert_eq(fri_atk_membership_eval(&m, scores, N_ITEMS, u.items,
                                                 u.n, 0.0f),
                         FR_OK);
            fri_atk_membership_acc_add(&acc, &m);
            // AUC among the visible rows only.
            float vs[N_ITEMS];
            uint8_t vl[N_ITEMS];
            for (size_t t = 0; t < n; t++) {
                vs[t] = scores[mitems[t]];
                vl[t] = !fake[t];
            }
            double a;
            cr_assert_eq(fri_atk_auc(&a, vs, vl, n), FR_OK);
            vis_auc += a;
        }
        fri_atk_membership mean = fri_atk_membership_acc_mean(&acc);
        vis_auc /= N_USERS;
        cr_log_info("pseudo rho=1 kind %d: auc %.4f prec@|I| %.4f "
                    "flag_prec %.3f visible-auc %.4f",
                    kind, mean.auc, mean.prec_at_r, mean.flag_precision,
                    vis_auc);
        cr_assert(mean.auc < 0.99, "kind %d auc %f", kind, mean.auc);
        cr_assert(mean.prec_at_r < 0.7, "kind %d prec %f", kind,
                  mean.prec_at_r);
        cr_assert(fabs(mean.flag_precision - 0.5) < 1e-9);
        cr_assert(fabs(vis_auc - 0.5) < 0.1, "kind %d visible auc %f", kind,
                  vis_auc);
    }
}

// --------------------------------------------- (b) rating reconstruction

typedef enum setting {
    PLAIN = 0,
    NOISY = 1,
    PSEUDO = 2,
    CLIPPED = 3, // whole ALS update (Gram, rows, sum, count) clipped to 1
} setting;

// Runs the attack over N_USERS users and returns the pooled accumulator.
static fri_atk_recon_acc
recon_run(fri_atk_kind kind, fri_atk_bu bu, int with_gram, int two_rounds,
          setting s, double noise_sd, float prm_reg_bias)
{
    static world W2;
    world_make(&W2, 78, &W, 0.1); // next round's model
    fri_atk_recon_acc acc;
    fri_atk_recon_acc_init(&acc);
    fri_rng nr;
    fri_rng_seed(&nr, 31337);
    for (uint32_t k = 0; k < N_USERS; k++) {
        user u;
        user_make(&u, &W, 4000 + k);
        static float rows1[N_ITEMS * D], rows2[N_ITEMS * D];
        static float prow[N_ITEMS * D];
        static uint32_t pitems[N_ITEMS];
        float gram1[(D * (D + 1)) / 2], gram2[(D * (D + 1)) / 2];
        fri_atk_obs o[2];
        const world *ws[2] = { &W, &W2 };
        float *rows[2] = { rows1, rows2 };
        float *grams[2] = { gram1, gram2 };
        for (int t = 0; t < 2; t++) {
            user_fit(&u, ws[t]);
            if (kind == FRI_ATK_GRAD) {
                grad_rows(rows[t], &u, ws[t]);
            } else {
                als_rows(grams[t], rows[t], &u, ws[t]);
            }
            double sum = 0.0;
            for (size_t j = 0; j < u.n; j++) {
                sum += u.ratings[j];
            }
            o[t] = (fri_atk_obs){ .items = u.items,
                                  .rows = rows[t],
                                  .n_rows = u.n,
                                  .gram = with_gram ? grams[t] : NULL,
                                  .rating_sum = sum,
                                  .count = 0.0,
                                  .model = ws[t]->it };
            if (s == CLIPPED) {
                float extra[2] = { (float)sum, (float)u.n };
                float *parts[3] = { grams[t], rows[t], extra };
                size_t lens[3] = { (D * (D + 1)) / 2, u.n * D, 2 };
                float before = 0.0f;
                float f = fri_dp_clip_l2_rows(parts, lens, 3, 1.0f, &before);
                cr_assert(f < 0.1f, "clip factor %f", f);
                o[t].rating_sum = extra[0];
                o[t].count = extra[1];
            }
            if (s == NOISY) {
                cr_assert_eq(fri_dp_add_gaussian(rows[t], u.n * D, noise_sd,
                                                 &nr),
                             FR_OK);
            }
        }
        if (s == PSEUDO) {
            // Round 1 only, rho = 1, rating sum not reported.
            fri_pseudo_config c;
            fri_pseudo_config_init(&c);
            fri_rng r;
            fri_rng_seed(&r, 7000 + k);
            user_fit(&u, &W);
            size_t n = 0;
            cr_assert_eq(fri_pseudo_merge(pitems, prow, NULL, N_ITEMS, &n,
                                          NULL,
                                          kind == FRI_ATK_GRAD
                                              ? FRI_PSEUDO_ROWS_GRAD
                                              : FRI_PSEUDO_ROWS_ALS,
                                          &W.it, u.p, u.bu, REG, REG_BIAS,
                                          u.items, u.ratings, rows1, u.n, &c,
                                          &r),
                         FR_OK);
            o[0].items = pitems;
            o[0].rows = prow;
            o[0].n_rows = n;
            o[0].rating_sum = NAN;
        }
        fri_atk_params prm;
        fri_atk_params_init(&prm);
        prm.kind = kind;
        prm.k = K;
        prm.reg = REG;
        prm.reg_bias = prm_reg_bias;
        prm.weighted = 1;
        prm.bu = bu;
        float out[N_ITEMS];
        fri_atk_recon_info info;
        cr_assert_eq(fri_atk_reconstruct(out, N_ITEMS, &info, &o[0],
                                         two_rounds ? &o[1] : NULL, &prm),
                     FR_OK);
        cr_assert_eq(fri_atk_recon_acc_add(&acc, o[0].items, out,
                                           o[0].n_rows, u.items, u.ratings,
                                           u.n),
                     FR_OK);
    }
    return acc;
}

Test(sim_attack, als_statistics_reveal_ratings_exactly, .init = setup)
{
    struct {
        fri_atk_bu bu;
        int        gram, two;
        float      rb;
    } cases[] = {
        { FRI_ATK_BU_RIDGE, 1, 0, REG_BIAS },      // one round, optimality
        { FRI_ATK_BU_RIDGE, 0, 0, REG_BIAS },      // p_u from the rows
        { FRI_ATK_BU_RATING_SUM, 1, 0, REG_BIAS }, // reported sum
        { FRI_ATK_BU_TWO_ROUNDS, 1, 1, 0.0f },     // reg unknown
        { FRI_ATK_BU_AUTO, 1, 0, REG_BIAS },
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        fri_atk_recon_acc a =
            recon_run(FRI_ATK_ALS, cases[c].bu, cases[c].gram, cases[c].two,
                      PLAIN, 0.0, cases[c].rb);
        cr_assert_eq(a.n_missed, 0);
        cr_assert_eq(a.n_false, 0);
        cr_log_info("ALS case %zu: rmse %.3g mae %.3g", c,
                    fri_atk_recon_rmse(&a), fri_atk_recon_mae(&a));
        cr_assert(fri_atk_recon_rmse(&a) < 1e-3, "case %zu rmse %g", c,
                  fri_atk_recon_rmse(&a));
        cr_assert_eq(fri_atk_recon_within(&a), 1.0);
    }
    // L2 clipping does not help: the Gram's corner gives the factor back.
    fri_atk_bu clipped[] = { FRI_ATK_BU_RIDGE, FRI_ATK_BU_RATING_SUM };
    for (size_t c = 0; c < 2; c++) {
        fri_atk_recon_acc a =
            recon_run(FRI_ATK_ALS, clipped[c], 1, 0, CLIPPED, 0.0, REG_BIAS);
        cr_log_info("ALS clipped case %zu: rmse %.3g", c,
                    fri_atk_recon_rmse(&a));
        cr_assert(fri_atk_recon_rmse(&a) < 1e-3, "clipped %zu rmse %g", c,
                  fri_atk_recon_rmse(&a));
    }
}

Test(sim_attack, gradient_rows_reveal_ratings, .init = setup)
{
    fri_atk_bu bus[] = { FRI_ATK_BU_RIDGE, FRI_ATK_BU_RATING_SUM,
                         FRI_ATK_BU_TWO_ROUNDS };
    for (size_t c = 0; c < 3; c++) {
        fri_atk_recon_acc a = recon_run(FRI_ATK_GRAD, bus[c], 0, c == 2,
                                        PLAIN, 0.0, REG_BIAS);
        cr_log_info("GRAD case %zu: rmse %.3g mae %.3g", c,
                    fri_atk_recon_rmse(&a), fri_atk_recon_mae(&a));
        cr_assert(fri_atk_recon_rmse(&a) < 1e-3, "case %zu rmse %g", c,
                  fri_atk_recon_rmse(&a));
        cr_assert_eq(fri_atk_recon_within(&a), 1.0);
    }
    // Without b_u the ratings are off by the user's offset only.
    fri_atk_recon_acc z =
        recon_run(FRI_ATK_GRAD, FRI_ATK_BU_ZERO, 0, 0, PLAIN, 0.0, REG_BIAS);
    cr_assert(fri_atk_recon_rmse(&z) > 0.05);
}

Test(sim_attack, dp_noise_and_pseudo_items_raise_the_error, .init = setup)
{
    for (int kind = 0; kind < 2; kind++) {
        fri_atk_kind k = kind ? FRI_ATK_GRAD : FRI_ATK_ALS;
        fri_atk_recon_acc a0 =
            recon_run(k, FRI_ATK_BU_RIDGE, 1, 0, PLAIN, 0.0, REG_BIAS);
        double plain = fri_atk_recon_rmse(&a0);
        double last = plain;
        double sds[] = { 0.01, 0.1, 1.0 };
        for (int s = 0; s < 3; s++) {
            fri_atk_recon_acc a =
                recon_run(k, FRI_ATK_BU_RIDGE, 1, 0, NOISY, sds[s], REG_BIAS);
            double e = fri_atk_recon_rmse(&a);
            cr_log_info("kind %d noise sd %g: rmse %.4f mae %.4f within "
                        "%.3f",
                        kind, sds[s], e, fri_atk_recon_mae(&a),
                        fri_atk_recon_within(&a));
            cr_assert(e > last, "kind %d sd %g: rmse %g <= %g", kind, sds[s],
                      e, last);
            last = e;
        }
        cr_assert(last > 0.5, "kind %d: noise 1.0 leaves rmse %g", kind,
                  last);
        fri_atk_recon_acc p =
            recon_run(k, FRI_ATK_BU_RIDGE, 1, 0, PSEUDO, 0.0, REG_BIAS);
        cr_log_info("kind %d plain rmse %.3g; pseudo rho=1 rmse %.4f mae "
                    "%.4f within %.3f (false rows %llu)",
                    kind, plain, fri_atk_recon_rmse(&p),
                    fri_atk_recon_mae(&p), fri_atk_recon_within(&p),
                    (unsigned long long)p.n_false);
        cr_assert_eq(p.n_missed, 0);
        cr_assert(p.n_false > 0);
        cr_assert(fri_atk_recon_rmse(&p) > 100.0 * plain + 0.01,
                  "kind %d pseudo rmse %g vs plain %g", kind,
                  fri_atk_recon_rmse(&p), plain);
    }
}

Test(sim_attack, masked_words_give_garbage_ratings, .init = setup)
{
    user u;
    user_make(&u, &W, 99);
    fri_rng r;
    fri_rng_seed(&r, 5);
    static uint32_t words[N_ITEMS * D];
    static float rows[N_ITEMS * D];
    for (size_t t = 0; t < u.n * D; t++) {
        words[t] = (uint32_t)fri_rng_next(&r);
    }
    cr_assert_eq(fri_secagg_dequantize(rows, words, u.n * D, 16, 1), FR_OK);
    fri_atk_obs o = { .items = u.items, .rows = rows, .n_rows = u.n,
                      .rating_sum = NAN, .model = W.it };
    fri_atk_params prm;
    fri_atk_params_init(&prm);
    prm.k = K;
    prm.reg = REG;
    prm.reg_bias = REG_BIAS;
    float out[N_ITEMS];
    cr_assert_eq(fri_atk_reconstruct(out, N_ITEMS, NULL, &o, NULL, &prm),
                 FR_OK);
    fri_atk_recon_acc a;
    fri_atk_recon_acc_init(&a);
    cr_assert_eq(fri_atk_recon_acc_add(&a, u.items, out, u.n, u.items,
                                       u.ratings, u.n),
                 FR_OK);
    cr_assert(fri_atk_recon_rmse(&a) > 100.0, "rmse %g",
              fri_atk_recon_rmse(&a));
}

Test(sim_attack, reconstruct_rejects_bad_input, .init = setup)
{
    user u;
    user_make(&u, &W, 1);
    static float rows[N_ITEMS * D];
    user_fit(&u, &W);
    grad_rows(rows, &u, &W);
    fri_atk_obs o = { .items = u.items, .rows = rows, .n_rows = u.n,
                      .rating_sum = NAN, .model = W.it };
    fri_atk_params prm;
    fri_atk_params_init(&prm);
    prm.kind = FRI_ATK_GRAD;
    prm.k = K;
    prm.reg = REG;
    prm.reg_bias = 0.0f;
    float out[N_ITEMS];
    prm.bu = FRI_ATK_BU_RIDGE; // needs reg_bias > 0
    cr_assert_eq(fri_atk_reconstruct(out, N_ITEMS, NULL, &o, NULL, &prm),
                 FR_EINVAL);
    prm.bu = FRI_ATK_BU_TWO_ROUNDS; // needs a second round
    cr_assert_eq(fri_atk_reconstruct(out, N_ITEMS, NULL, &o, NULL, &prm),
                 FR_EINVAL);
    prm.bu = FRI_ATK_BU_RATING_SUM; // sum hidden
    cr_assert_eq(fri_atk_reconstruct(out, N_ITEMS, NULL, &o, NULL, &prm),
                 FR_EINVAL);
    prm.bu = FRI_ATK_BU_AUTO;
    fri_atk_recon_info info;
    cr_assert_eq(fri_atk_reconstruct(out, N_ITEMS, &info, &o, NULL, &prm),
                 FR_OK);
    cr_assert_eq(info.method, FRI_ATK_BU_ZERO);
    cr_assert_eq(fri_atk_reconstruct(out, 1, NULL, &o, NULL, &prm),
                 FR_ENOSPC);
    fri_atk_obs o2 = o;
    o2.items = NULL; // rows without ids
    cr_assert_eq(fri_atk_reconstruct(out, N_ITEMS, NULL, &o, &o2, &prm),
                 FR_EINVAL);
    prm.k = K + 1;
    cr_assert_eq(fri_atk_reconstruct(out, N_ITEMS, NULL, &o, NULL, &prm),
                 FR_EINVAL);
    prm.k = K;
    uint32_t swapped[2] = { 5, 3 };
    o.items = swapped;
    o.n_rows = 2;
    cr_assert_eq(fri_atk_reconstruct(out, N_ITEMS, NULL, &o, NULL, &prm),
                 FR_EINVAL);
}
