// Client handle: interactions, fold-in, prediction, recommendation, memory.
#include <criterion/criterion.h>
#include <math.h>

#include "testutil.h"

static fr_client *
new_client(fr_model_cache *mc)
{
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    cfg.seed        = 7;
    cfg.model_cache = mc;
    for (int i = 0; i < FR_PUBLICKEYBYTES; i++) {
        cfg.server_pk[i] = (uint8_t) (i + 1);
    }
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    return c;
}

Test(client, create_defaults_and_destroy_null)
{
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    cr_assert_eq(cfg.max_items, 1u << 24);
    cr_assert_eq(cfg.max_k, 256u);
    fr_client_destroy(NULL);
    cr_assert_eq(fr_client_create(NULL, &cfg), FR_EINVAL);
    fr_client *c = (fr_client *) 1;
    cr_assert_eq(fr_client_create(&c, NULL), FR_EINVAL);
    cr_assert_null(c);
    fr_client *a = new_client(NULL);
    uint8_t    pk[FR_PUBLICKEYBYTES] = {0}, zero[FR_PUBLICKEYBYTES] = {0};
    fr_client_public_key(a, pk);
    cr_assert(memcmp(pk, zero, sizeof pk) != 0, "public key not derived");
    fr_client_destroy(a);
}

Test(client, interactions_add_replace_remove)
{
    fr_client *c = new_client(NULL);
    cr_assert_eq(fr_client_add(c, 5, 4.0f, 10), FR_OK);
    cr_assert_eq(fr_client_add(c, 2, 3.0f, 11), FR_OK);
    cr_assert_eq(fr_client_add(c, 9, 1.0f, 12), FR_OK);
    cr_assert_eq(fr_client_count(c), 3);
    cr_assert_eq(fr_client_add(c, 5, 2.5f, 13), FR_OK); // replace
    cr_assert_eq(fr_client_count(c), 3);
    cr_assert_eq(c->items[0], 2);
    cr_assert_eq(c->items[1], 5);
    cr_assert_eq(c->items[2], 9);
    cr_assert_float_eq(c->values[1], 2.5f, 0);
    cr_assert_eq(c->ts[1], 13);
    cr_assert_eq(fr_client_add(c, 3, NAN, 0), FR_EINVAL);
    cr_assert_eq(fr_client_add(c, 3, INFINITY, 0), FR_EINVAL);
    cr_assert_eq(fr_client_count(c), 3);
    cr_assert_eq(fr_client_remove(c, 5), FR_OK);
    cr_assert_eq(fr_client_remove(c, 5), FR_ENOENT);
    cr_assert_eq(fr_client_count(c), 2);
    cr_assert_eq(c->items[0], 2);
    cr_assert_eq(c->items[1], 9);
    // Many insertions in reverse order stay sorted.
    for (uint32_t i = 1000; i > 10; i--) {
        cr_assert_eq(fr_client_add(c, i, (float) (i % 5), 0), FR_OK);
    }
    for (size_t i = 1; i < fr_client_count(c); i++) {
        cr_assert(c->items[i - 1] < c->items[i]);
    }
    fr_client_destroy(c);
}

Test(client, no_model_gives_estate)
{
    fr_client *c = new_client(NULL);
    float      s;
    size_t     n;
    uint32_t   it[4];
    float      sc[4];
    cr_assert_eq(fr_client_fold_in(c), FR_ESTATE);
    cr_assert_eq(fr_client_predict(c, 1, &s), FR_ESTATE);
    cr_assert_eq(fr_client_recommend(c, it, sc, 4, &n), FR_ESTATE);
    cr_assert(strlen(fr_client_errmsg(c)) > 0);
    fr_client_destroy(c);
}

Test(client, recommend_sorted_and_excludes_seen)
{
    fr_client  *c = new_client(NULL);
    fri_cmodel *m = tu_model(300, 8, 1, 42, c->server_pk + 32, 0);
    cr_assert_not_null(m);
    tu_install(c, m);
    fri_cmodel_unref(m);
    for (uint32_t i = 0; i < 300; i += 7) {
        cr_assert_eq(fr_client_add(c, i, (float) (1 + i % 5), 0), FR_OK);
    }
    uint32_t items[50];
    float    scores[50];
    size_t   n = 0;
    cr_assert_eq(fr_client_recommend(c, items, scores, 50, &n), FR_OK);
    cr_assert_eq(n, 50);
    for (size_t j = 0; j < n; j++) {
        cr_assert(items[j] % 7 != 0, "seen item %u recommended", items[j]);
        cr_assert(items[j] < 300);
        if (j > 0) {
            cr_assert(scores[j - 1] >= scores[j], "not sorted at %zu", j);
        }
        float s = 0;
        cr_assert_eq(fr_client_predict(c, items[j], &s), FR_OK);
        cr_assert_float_eq(s, scores[j], 1e-5f);
    }
    // The top entry is the best among all unseen items.
    for (uint32_t i = 0; i < 300; i++) {
        float s;
        cr_assert_eq(fr_client_predict(c, i, &s), FR_OK);
        if (i % 7 != 0) {
            cr_assert(s <= scores[0] + 1e-6f);
        }
    }
    // Asking for more than available returns what exists.
    uint32_t all[400];
    float    alls[400];
    cr_assert_eq(fr_client_recommend(c, all, alls, 400, &n), FR_OK);
    cr_assert_eq(n, 300 - 43);
    float s;
    cr_assert_eq(fr_client_predict(c, 300, &s), FR_ENOENT);
    fr_client_destroy(c);
}

Test(client, fold_in_moves_prediction_toward_ratings)
{
    fr_client  *c = new_client(NULL);
    fri_cmodel *m = tu_model(200, 8, 1, 5, c->server_pk + 32, 0);
    tu_install(c, m);
    fri_cmodel_unref(m);
    for (uint32_t i = 0; i < 20; i++) {
        cr_assert_eq(fr_client_add(c, i, 3.0f, 0), FR_OK);
    }
    cr_assert_eq(fr_client_fold_in(c), FR_OK);
    float before[10], after[10];
    for (uint32_t i = 0; i < 10; i++) {
        cr_assert_eq(fr_client_predict(c, 100 + i, &before[i]), FR_OK);
    }
    // Rate items 100..109 high: their predictions must rise.
    for (uint32_t i = 0; i < 10; i++) {
        cr_assert_eq(fr_client_add(c, 100 + i, 5.0f, 0), FR_OK);
    }
    // predict refits automatically after a change.
    double gain = 0;
    for (uint32_t i = 0; i < 10; i++) {
        cr_assert_eq(fr_client_predict(c, 100 + i, &after[i]), FR_OK);
        gain += after[i] - before[i];
    }
    cr_assert(gain > 0.5, "mean gain %f too small", gain / 10);
    fr_client_destroy(c);
}

Test(client, implicit_fold_in)
{
    fr_client  *c = new_client(NULL);
    fri_cmodel *m = tu_model(100, 4, 1, 9, c->server_pk + 32, 1);
    tu_install(c, m);
    fri_cmodel_unref(m);
    c->fit.implicit = 1;
    for (uint32_t i = 0; i < 10; i++) {
        cr_assert_eq(fr_client_add(c, i, 1.0f, 0), FR_OK);
    }
    cr_assert_eq(fr_client_fold_in(c), FR_OK);
    cr_assert_float_eq(c->bu, 0.0f, 0);
    double sq = 0;
    for (uint32_t f = 0; f < c->p_k; f++) {
        sq += c->p[f] * c->p[f];
    }
    cr_assert(sq > 0, "implicit fold-in left p_u at zero");
    fr_client_destroy(c);
}

Test(client, shared_cache_serves_other_handles)
{
    fr_model_cache *mc = NULL;
    cr_assert_eq(fr_model_cache_create(&mc), FR_OK);
    fr_client  *a = new_client(mc);
    fr_client  *b = new_client(mc);
    fri_cmodel *m = tu_model(50, 4, 3, 1, a->server_pk + 32, 0);
    tu_install(a, m);
    cr_assert_eq(fr_client_add(b, 1, 4.0f, 0), FR_OK);
    cr_assert_eq(fr_client_fold_in(b), FR_OK); // adopts the cached model
    cr_assert_eq(b->model, m, "handles must share one model copy");
    fri_cmodel_unref(m);
    fr_client_destroy(a);
    fr_client_destroy(b);
    fr_model_cache_destroy(mc);
}

// ---- idle memory through a counting allocator --------------------------

typedef struct counter {
    size_t live;
    size_t peak;
} counter;

static void *
count_alloc(void *ctx, size_t size)
{
    counter *k = ctx;
    size_t  *p = malloc(size + 16);
    if (p == NULL) {
        return NULL;
    }
    p[0] = size;
    k->live += size;
    if (k->live > k->peak) {
        k->peak = k->live;
    }
    return (char *) p + 16;
}

static void
count_free(void *ctx, void *ptr)
{
    counter *k = ctx;
    size_t  *p = (size_t *) ((char *) ptr - 16);
    k->live -= p[0];
    free(p);
}

Test(client, idle_handle_is_small)
{
    fr_model_cache *mc = NULL;
    cr_assert_eq(fr_model_cache_create(&mc), FR_OK);
    counter          cnt = {0, 0};
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    cfg.model_cache     = mc;
    cfg.allocator.alloc = count_alloc;
    cfg.allocator.free  = count_free;
    cfg.allocator.ctx   = &cnt;
    cfg.seed            = 3;
    fr_client *c        = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    fri_cmodel *m = tu_model(1682, 32, 1, 2, c->server_pk + 32, 0);
    tu_install(c, m);
    fri_cmodel_unref(m);
    for (uint32_t i = 0; i < 120; i++) {
        cr_assert_eq(fr_client_add(c, i * 13 % 1682, 4.0f, i), FR_OK);
    }
    cr_assert_eq(fr_client_fold_in(c), FR_OK);
    uint32_t items[10];
    float    scores[10];
    size_t   n;
    cr_assert_eq(fr_client_recommend(c, items, scores, 10, &n), FR_OK);
    size_t inter = c->inter_cap * (sizeof(uint32_t) + sizeof(float) +
                                   sizeof(int64_t));
    size_t idle  = cnt.live - inter;
    cr_log_info("idle handle: %zu bytes (+%zu interactions), k=32", idle,
                inter);
    cr_assert(idle <= 2048, "idle handle uses %zu bytes", idle);
    fr_client_destroy(c);
    cr_assert_eq(cnt.live, 0, "leaked %zu bytes", cnt.live);
    fr_model_cache_destroy(mc);
}

// ---- checked sizes (32-bit size_t on armv7) -------------------------------

Test(client, calloc2_refuses_a_product_that_wraps_size_t)
{
    counter          cnt = {0, 0};
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    cfg.allocator.alloc = count_alloc;
    cfg.allocator.free  = count_free;
    cfg.allocator.ctx   = &cnt;
    for (int i = 0; i < FR_PUBLICKEYBYTES; i++) {
        cfg.server_pk[i] = (uint8_t) (i + 1);
    }
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    // a * b is exactly 2^bits: 0 after wrapping, which a plain a * b would
    // have turned into a 1-byte block for an a * b-element array.
    const size_t half = (size_t) 1 << (sizeof(size_t) * 4);
    size_t       live = cnt.live, peak = cnt.peak;
    cr_assert_null(fri_client_calloc2(c, half, half, 1));
    cr_assert_null(fri_client_calloc2(c, half, half / 2, sizeof(float)));
    cr_assert_null(fri_client_calloc2(c, SIZE_MAX, 3, 1));
    cr_assert_eq(cnt.live, live, "nothing may be allocated");
    cr_assert_eq(cnt.peak, peak, "nothing may be allocated");
    // In range: zeroed, through the hook.
    float *p = fri_client_calloc2(c, 3, 5, sizeof(float));
    cr_assert_not_null(p);
    cr_assert_eq(cnt.live, live + 15 * sizeof(float));
    for (int i = 0; i < 15; i++) {
        cr_assert_eq(p[i], 0.0f);
    }
    fri_client_free(c, p);
    fr_client_destroy(c);
    cr_assert_eq(cnt.live, 0u);
}

// Two clusters of items (A: factor axis 0, B: axis 1) in an implicit
// model, and a device with the given recency half-life and last-item
// weight that touched items[0..n) at ts[] (or without timestamps).
static fr_client *
two_cluster_client(double half_life, double transition,
                   const uint32_t *items, const int64_t *ts, int n,
                   int timestamps)
{
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    cr_assert_float_eq(cfg.recency_half_life, 3.0, 0); // the defaults
    cr_assert_float_eq(cfg.transition_weight, 1.0, 0);
    cfg.seed              = 7;
    cfg.recency_half_life = half_life;
    cfg.transition_weight = transition;
    for (int i = 0; i < FR_PUBLICKEYBYTES; i++) {
        cfg.server_pk[i] = (uint8_t) (i + 1);
    }
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    fri_cmodel *m = NULL;
    cr_assert_eq(fri_cmodel_alloc(&m, 20, 2), FR_OK);
    m->version  = 1;
    m->round    = 1;
    m->implicit = 1;
    for (uint32_t i = 0; i < 20; i++) {
        int a           = i < 10;
        m->Q[2 * i]     = a ? 1.0f - 0.01f * (float) i : 0.0f;
        m->Q[2 * i + 1] = a ? 0.0f : 1.0f - 0.01f * (float) i;
    }
    memcpy(m->signer, c->server_pk + 32, 32);
    cr_assert_eq(fri_cmodel_finish(m), FR_OK);
    tu_install(c, m);
    fri_cmodel_unref(m);
    c->fit.implicit = 1;
    for (int j = 0; j < n; j++) {
        cr_assert_eq(fr_client_add(c, items[j], 1.0f, timestamps ? ts[j] : 0),
                     FR_OK);
    }
    return c;
}

// Four A items long ago and two B items last; recency alone (the
// last-item term: below).
static fr_client *
recency_client(double half_life, int timestamps)
{
    const uint32_t items[6] = { 0, 1, 2, 3, 10, 11 };
    const int64_t  ts[6]    = { 100, 101, 102, 103, 200, 201 };
    return two_cluster_client(half_life, 0.0, items, ts, 6, timestamps);
}

Test(client, implicit_recency_follows_the_latest_interactions)
{
    uint32_t top[3];
    float    sc[3];
    size_t   n = 0;
    // Every interaction alike: the four A items outweigh the two B ones.
    fr_client *c = recency_client(0.0, 1);
    cr_assert_eq(fr_client_recommend(c, top, sc, 3, &n), FR_OK);
    cr_assert_eq(n, 3);
    cr_assert(top[0] < 10, "no recency: top %u should be an A item", top[0]);
    fr_client_destroy(c);
    // Half-life 1: the two newest (B) dominate.
    c = recency_client(1.0, 1);
    cr_assert_eq(fr_client_recommend(c, top, sc, 3, &n), FR_OK);
    for (size_t j = 0; j < n; j++) {
        cr_assert(top[j] >= 10, "recency: item %u is not a B item", top[j]);
    }
    fr_client_destroy(c);
    // Without timestamps every weight is 1: the same user vector as off.
    fr_client *a = recency_client(0.0, 0), *b = recency_client(1.0, 0);
    cr_assert_eq(fr_client_fold_in(a), FR_OK);
    cr_assert_eq(fr_client_fold_in(b), FR_OK);
    cr_assert_eq(memcmp(a->p, b->p, 2 * sizeof *a->p), 0);
    fr_client_destroy(a);
    fr_client_destroy(b);
}

// The same two clusters; recency off, so the user vector leans to A (four
// old A interactions against one new B one), and the last-item term with
// weight w.
static fr_client *
transition_client(double w, int timestamps)
{
    const uint32_t items[5] = { 0, 1, 2, 3, 10 };
    const int64_t  ts[5]    = { 100, 101, 102, 103, 200 };
    return two_cluster_client(0.0, w, items, ts, 5, timestamps);
}

Test(client, implicit_transition_follows_the_newest_interaction)
{
    uint32_t top[3];
    float    sc[3];
    size_t   n = 0;
    // Off: the four A items decide, and a score is the factor model's.
    fr_client *c = transition_client(0.0, 1);
    cr_assert_eq(fr_client_recommend(c, top, sc, 3, &n), FR_OK);
    cr_assert(top[0] < 10, "off: top %u should be an A item", top[0]);
    float s = 0.0f;
    cr_assert_eq(fr_client_predict(c, 11, &s), FR_OK);
    double dot = (double) c->p[0] * c->model->Q[22] +
                 (double) c->p[1] * c->model->Q[23];
    cr_assert(fabs(s - dot) < 1e-6, "%g vs %g", s, dot);
    fr_client_destroy(c);
    // On, strongly: the B items, like the newest interaction, come first;
    // the score is the factor model's plus the term.
    c = transition_client(5.0, 1);
    cr_assert_eq(fr_client_recommend(c, top, sc, 3, &n), FR_OK);
    for (size_t j = 0; j < n; j++) {
        cr_assert(top[j] >= 10, "transition: item %u is not a B item",
                  top[j]);
    }
    cr_assert_eq(fr_client_predict(c, 11, &s), FR_OK);
    cr_assert(c->trans_kappa > 0.0f);
    dot = (double) c->p[0] * c->model->Q[22] +
          (double) c->p[1] * c->model->Q[23];
    cr_assert(fabs(s - dot - c->trans_kappa) < 1e-5, "%g vs %g + %g", s,
              dot, (double) c->trans_kappa);
    fr_client_destroy(c);
    // Without timestamps there is no newest interaction: no term.
    fr_client *a = transition_client(0.0, 0), *b = transition_client(5.0, 0);
    float      sa = 0.0f, sb = 0.0f;
    cr_assert_eq(fr_client_predict(a, 11, &sa), FR_OK);
    cr_assert_eq(fr_client_predict(b, 11, &sb), FR_OK);
    cr_assert_eq(sa, sb);
    cr_assert_eq(b->trans_kappa, 0.0f);
    fr_client_destroy(a);
    fr_client_destroy(b);
}

Test(client, transition_weight_out_of_range_is_refused)
{
    const double bad[] = { -1.0, NAN, 101.0, INFINITY };
    const size_t n     = sizeof bad / sizeof bad[0];
    size_t t = tu_first_accepted(offsetof(fr_client_config, transition_weight), bad, n);
    cr_assert_eq(t, n, "%g accepted", t < n ? bad[t] : 0.0);
}

Test(client, recency_half_life_out_of_range_is_refused)
{
    const double bad[] = { -1.0, NAN, 2e6, INFINITY };
    const size_t n     = sizeof bad / sizeof bad[0];
    size_t t = tu_first_accepted(offsetof(fr_client_config, recency_half_life), bad, n);
    cr_assert_eq(t, n, "%g accepted", t < n ? bad[t] : 0.0);
}

// Explanations of an implicit model refit without one interaction at a
// time, each refit weighed by recency over the remaining history: the
// newest (B) interactions explain a B item.
Test(client, implicit_explanations_follow_recency)
{
    fr_client *c = recency_client(1.0, 1);
    uint32_t   why[3];
    float      w[3];
    size_t     n = 0;
    cr_assert_eq(fr_client_explain(c, 12, why, w, 3, &n), FR_OK, "%s",
                 fr_client_errmsg(c));
    cr_assert_eq(n, 3);
    cr_assert(why[0] == 10 || why[0] == 11, "top reason %u", why[0]);
    cr_assert(w[0] >= w[1] && w[1] >= w[2]);
    cr_assert(w[0] > 0.0f);
    fr_client_destroy(c);
}
