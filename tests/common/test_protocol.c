// The standard implicit protocol: leave-last-out by timestamp (with a
// validation item) and the held-out item ranked among sampled negatives.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "metrics.h"
#include "mf.h"

static fri_idmap  *U, *I;
static fri_dataset D;
static char        ERR[512];

static void
setup(void)
{
    cr_assert_eq(fri_idmap_create(&U), FR_OK);
    cr_assert_eq(fri_idmap_create(&I), FR_OK);
    memset(&D, 0, sizeof(D));
}

static void
teardown(void)
{
    fri_dataset_free(&D);
    fri_idmap_destroy(U);
    fri_idmap_destroy(I);
}

static fr_err
parse(const char *s)
{
    return fri_dataset_parse(
        &D, "mem.txt", s, strlen(s), U, I, NULL, ERR, sizeof(ERR));
}

// 1 if (ext user, ext item) is in d.
static int
has_pair(const fri_dataset *d, int64_t u, int64_t i)
{
    for (size_t j = 0; j < d->n; j++) {
        if (fri_idmap_ext(U, d->r[j].user) == u
            && fri_idmap_ext(I, d->r[j].item) == i) {
            return 1;
        }
    }
    return 0;
}

TestSuite(protocol_split, .init = setup, .fini = teardown);

Test(protocol_split, hand_file_last_val_and_train_only_users)
{
    // user 1: ts 300 twice (lines 1 and 4): the later line (item 13) is the
    //         newest -> test 13, validation 10 (ts 300, line 1), train 11 12
    // user 2: two ratings -> test 11, no validation, train 10
    // user 3: one rating -> train only
    cr_assert_eq(parse("1 10 5 300\n1 11 4 100\n1 12 3 200\n1 13 2 300\n"
                       "2 11 3 60\n2 10 4 50\n3 12 5 7\n"),
        FR_OK, "%s", ERR);
    cr_assert(fri_dataset_has_ts(&D));
    fri_dataset tr, va, te;
    cr_assert_eq(fri_split_leave_last_out(&D, &tr, &va, &te), FR_OK);
    cr_assert_eq(te.n, 2);
    cr_assert(has_pair(&te, 1, 13) && has_pair(&te, 2, 11));
    cr_assert_eq(va.n, 1);
    cr_assert(has_pair(&va, 1, 10));
    cr_assert_eq(tr.n, 4);
    cr_assert(has_pair(&tr, 1, 11) && has_pair(&tr, 1, 12)
        && has_pair(&tr, 2, 10) && has_pair(&tr, 3, 12));
    // No leakage: neither held-out item is in train.
    cr_assert(!has_pair(&tr, 1, 13) && !has_pair(&tr, 2, 11)
        && !has_pair(&tr, 1, 10));
    cr_assert_eq(tr.n_users, D.n_users);
    cr_assert_eq(tr.n_items, D.n_items);
    fri_dataset_free(&tr);
    fri_dataset_free(&va);
    fri_dataset_free(&te);
    // Without a validation set it stays in train.
    cr_assert_eq(fri_split_leave_last_out(&D, &tr, NULL, &te), FR_OK);
    cr_assert_eq(te.n, 2);
    cr_assert_eq(tr.n, 5);
    cr_assert(has_pair(&tr, 1, 10) && !has_pair(&tr, 1, 13));
    fri_dataset_free(&tr);
    fri_dataset_free(&te);
    cr_assert_eq(fri_split_leave_last_out(&D, &tr, &tr, &te), FR_EINVAL);
    cr_assert_eq(fri_split_leave_last_out(&D, &D, NULL, &te), FR_EINVAL);
    cr_assert_eq(fri_split_leave_last_out(&D, NULL, NULL, &te), FR_EINVAL);
}

Test(protocol_split, file_without_timestamps_is_detected)
{
    cr_assert_eq(parse("1 10 5\n1 11 4\n2 10 3\n"), FR_OK, "%s", ERR);
    cr_assert(!fri_dataset_has_ts(&D));
    fri_dataset_free(&D);
    cr_assert_eq(parse("1 10 5 0\n1 11 4 1\n"), FR_OK, "%s", ERR);
    cr_assert(fri_dataset_has_ts(&D));
}

Test(protocol_split, movielens_last_by_time_no_leakage)
{
    const char *dir = getenv("FR_DATA_DIR");
    cr_assert(dir != NULL, "FR_DATA_DIR is not set");
    char path[4096];
    snprintf(path, sizeof(path), "%s/u.data", dir);
    cr_assert_eq(access(path, R_OK), 0, "MovieLens 100K missing: %s", path);
    cr_assert_eq(fri_dataset_load(&D, path, U, I, NULL, ERR, sizeof(ERR)),
        FR_OK, "%s", ERR);
    fri_dataset tr, va, te;
    cr_assert_eq(fri_split_leave_last_out(&D, &tr, &va, &te), FR_OK);
    // Every ML-100K user has >= 20 ratings: one test and one val each.
    cr_assert_eq(te.n, 943);
    cr_assert_eq(va.n, 943);
    cr_assert_eq(tr.n + va.n + te.n, D.n);
    int64_t  *t_ts = calloc(D.n_users, sizeof(int64_t));
    int64_t  *v_ts = calloc(D.n_users, sizeof(int64_t));
    uint32_t *t_it = calloc(D.n_users, sizeof(uint32_t));
    uint32_t *v_it = calloc(D.n_users, sizeof(uint32_t));
    cr_assert(t_ts && v_ts && t_it && v_it);
    for (size_t j = 0; j < te.n; j++) {
        t_ts[te.r[j].user] = te.r[j].ts;
        t_it[te.r[j].user] = te.r[j].item;
    }
    for (size_t j = 0; j < va.n; j++) {
        v_ts[va.r[j].user] = va.r[j].ts;
        v_it[va.r[j].user] = va.r[j].item;
        cr_assert_leq(va.r[j].ts, t_ts[va.r[j].user]);
        cr_assert_neq(va.r[j].item, t_it[va.r[j].user]);
    }
    for (size_t j = 0; j < tr.n; j++) {
        uint32_t u = tr.r[j].user;
        cr_assert_leq(tr.r[j].ts, v_ts[u], "train newer than val, user %u", u);
        cr_assert_neq(tr.r[j].item, t_it[u], "test item in train");
        cr_assert_neq(tr.r[j].item, v_it[u], "val item in train");
    }
    // The test item is the user's newest in the whole file.
    for (size_t j = 0; j < D.n; j++) {
        cr_assert_leq(D.r[j].ts, t_ts[D.r[j].user]);
    }
    free(t_ts);
    free(v_ts);
    free(t_it);
    free(v_it);
    fri_dataset_free(&tr);
    fri_dataset_free(&va);
    fri_dataset_free(&te);
}

// ---- negatives ----------------------------------------------------------

Test(protocol_negatives, distinct_not_interacted_seeded)
{
    enum { NI = 60, NN = 20 };
    uint32_t seen[15], held[2] = { 7, 40 };
    for (uint32_t j = 0; j < 15; j++) {
        seen[j] = 3 * j; // 0, 3, ..., 42 (none is 7 or 40)
    }
    uint8_t  mark[NI] = { 0 };
    uint32_t a[NI], b[NI];
    size_t   na = 0, nb = 0;
    fri_rng  r;
    fri_rng_seed2(&r, 1, 5);
    cr_assert_eq(
        fri_sample_negatives(a, NI, &na, &r, NI, seen, 15, held, 2, NN, mark),
        FR_OK);
    cr_assert_eq(na, NN);
    uint8_t hit[NI] = { 0 };
    for (size_t j = 0; j < na; j++) {
        cr_assert_lt(a[j], NI);
        cr_assert_eq(hit[a[j]], 0, "item %u drawn twice", a[j]);
        hit[a[j]] = 1;
        cr_assert(a[j] % 3 != 0 || a[j] > 42, "interacted item %u", a[j]);
        cr_assert(a[j] != 7 && a[j] != 40, "held-out item %u", a[j]);
    }
    for (size_t j = 0; j < NI; j++) {
        cr_assert_eq(mark[j], 0, "scratch not cleared");
    }
    // Same stream, same draw; another stream, another draw.
    fri_rng_seed2(&r, 1, 5);
    cr_assert_eq(
        fri_sample_negatives(b, NI, &nb, &r, NI, seen, 15, held, 2, NN, mark),
        FR_OK);
    cr_assert_eq(nb, na);
    cr_assert_eq(memcmp(a, b, na * sizeof(uint32_t)), 0);
    fri_rng_seed2(&r, 1, 6);
    cr_assert_eq(
        fri_sample_negatives(b, NI, &nb, &r, NI, seen, 15, held, 2, NN, mark),
        FR_OK);
    cr_assert_neq(memcmp(a, b, na * sizeof(uint32_t)), 0);
}

Test(protocol_negatives, all_candidates_when_zero_or_too_few)
{
    // Exclusions overlap (item 1 in both) and run past the catalog (9).
    uint32_t ex_a[3] = { 0, 1, 9 }, ex_b[2] = { 1, 2 };
    uint8_t  mark[5] = { 0 };
    uint32_t out[5];
    size_t   n = 0;
    fri_rng  r;
    fri_rng_seed(&r, 3);
    cr_assert_eq(
        fri_sample_negatives(out, 5, &n, &r, 5, ex_a, 3, ex_b, 2, 0, mark),
        FR_OK);
    cr_assert_eq(n, 2);
    cr_assert(out[0] == 3 && out[1] == 4);
    cr_assert_eq(
        fri_sample_negatives(out, 5, &n, &r, 5, ex_a, 3, ex_b, 2, 2, mark),
        FR_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(
        fri_sample_negatives(out, 5, &n, &r, 5, ex_a, 3, ex_b, 2, 1, mark),
        FR_OK);
    cr_assert_eq(n, 1);
    cr_assert(out[0] == 3 || out[0] == 4);
    // Errors: no room, unsorted exclusions, NULLs.
    cr_assert_eq(
        fri_sample_negatives(out, 1, &n, &r, 5, ex_a, 3, ex_b, 2, 0, mark),
        FR_ENOSPC);
    uint32_t uns[2] = { 3, 1 };
    cr_assert_eq(
        fri_sample_negatives(out, 5, &n, &r, 5, uns, 2, NULL, 0, 1, mark),
        FR_EINVAL);
    cr_assert_eq(
        fri_sample_negatives(out, 5, &n, NULL, 5, NULL, 0, NULL, 0, 1, mark),
        FR_EINVAL);
}

// ---- HR@K / NDCG@K by hand ---------------------------------------------

// 2 users x 12 items, k = 1: q_i = i except q_3 = 5 (a tie with item 5);
// user 0 scores q_i, user 1 scores -q_i. Both hold out item 5; user 0 has
// trained on item 0, user 1 on item 11.
static fri_mf_model *
tie_model(fri_csr *train, fri_csr *test, size_t *tr_ptr, uint32_t *tr_idx,
    float *tr_val, size_t *te_ptr, uint32_t *te_idx, float *te_val)
{
    fri_mf_model *m = NULL;
    cr_assert_eq(fri_mf_create(&m, 2, 12, 1), FR_OK);
    m->P[0] = 1.0f;
    m->P[1] = -1.0f;
    for (int i = 0; i < 12; i++) {
        m->Q[i] = (float)i;
    }
    m->Q[3]   = 5.0f;
    tr_ptr[0] = 0, tr_ptr[1] = 1, tr_ptr[2] = 2;
    tr_idx[0] = 0, tr_idx[1] = 11;
    tr_val[0] = tr_val[1] = 1.0f;
    te_ptr[0] = 0, te_ptr[1] = 1, te_ptr[2] = 2;
    te_idx[0] = te_idx[1] = 5;
    te_val[0] = te_val[1] = 1.0f;
    *train                = (fri_csr) {2, 12, tr_ptr, tr_idx, tr_val, NULL};
    *test                 = (fri_csr) {2, 12, te_ptr, te_idx, te_val, NULL};
    return m;
}

Test(protocol_metric, all_items_hand_count_ties_pessimistic)
{
    size_t          tp[3], ep[3];
    uint32_t        ti[2], ei[2];
    float           tv[2], ev[2];
    fri_csr         train, test;
    fri_mf_model   *m = tie_model(&train, &test, tp, ti, tv, ep, ei, ev);
    fri_rank_config c;
    fri_rank_config_init(&c);
    c.protocol = FRI_RANK_SAMPLED;
    c.n_neg    = 0; // every item the user never touched
    c.k        = 10;
    fri_rank_metrics r;
    cr_assert_eq(fri_eval_ranking(&r, m, &train, &test, &c), FR_OK);
    // user 0: candidates 1..4, 6..11; >= 5: item 3 (tie) and 6..11 -> rank
    // 7. user 1: candidates 0..4, 6..10; -q >= -5: items 0..4 -> rank 5.
    double n0 = 1.0 / log2(9.0), n1 = 1.0 / log2(7.0);
    cr_assert_eq(r.n_cases, 2);
    cr_assert_float_eq(r.hr, 1.0, 1e-12);
    cr_assert_float_eq(r.ndcg, (n0 + n1) / 2.0, 1e-9);
    c.k = 6; // rank 7 misses, rank 5 hits
    cr_assert_eq(fri_eval_ranking(&r, m, &train, &test, &c), FR_OK);
    cr_assert_float_eq(r.hr, 0.5, 1e-12);
    cr_assert_float_eq(r.ndcg, n1 / 2.0, 1e-9);
    c.k = 7; // rank 7 is the 8th place: still a miss with the tie
    cr_assert_eq(fri_eval_ranking(&r, m, &train, &test, &c), FR_OK);
    cr_assert_float_eq(r.hr, 0.5, 1e-12);
    fri_mf_destroy(m);
}

Test(protocol_metric, sampled_matches_count_over_the_drawn_negatives)
{
    size_t          tp[3], ep[3];
    uint32_t        ti[2], ei[2];
    float           tv[2], ev[2];
    fri_csr         train, test;
    fri_mf_model   *m = tie_model(&train, &test, tp, ti, tv, ep, ei, ev);
    fri_rank_config c;
    fri_rank_config_init(&c);
    c.protocol = FRI_RANK_SAMPLED;
    c.n_neg    = 4;
    c.k        = 2;
    c.seed     = 77;
    fri_rank_metrics r;
    cr_assert_eq(fri_eval_ranking(&r, m, &train, &test, &c), FR_OK);
    // Redraw each user's negatives from its stream and count by hand.
    double hr = 0.0, nd = 0.0;
    for (uint32_t u = 0; u < 2; u++) {
        fri_rng rng;
        fri_rng_seed2(&rng, 77, u);
        uint32_t neg[4];
        uint8_t  mark[12] = { 0 };
        size_t   n        = 0;
        cr_assert_eq(fri_sample_negatives(
                         neg, 4, &n, &rng, 12, &ti[u], 1, &ei[u], 1, 4, mark),
            FR_OK);
        cr_assert_eq(n, 4);
        float    target = m->P[u] * m->Q[5];
        uint32_t rank   = 0;
        for (size_t j = 0; j < n; j++) {
            rank += m->P[u] * m->Q[neg[j]] >= target;
        }
        hr += rank < 2;
        nd += rank < 2 ? 1.0 / log2(rank + 2.0) : 0.0;
    }
    cr_assert_float_eq(r.hr, hr / 2.0, 1e-12);
    cr_assert_float_eq(r.ndcg, nd / 2.0, 1e-9);
    fri_mf_destroy(m);
}
