// A tree of aggregators in process (docs/DEPLOY-TREE.md): a root and two
// edges, real client handles checking in with the edges. The tree must
// give the model one aggregator gives with the same devices; an edge that
// never reports costs only its devices' contributions; a root refuses
// sums outside what the devices an edge claims could send.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agg.h"
#include "channel.h"
#include "e2e_harness.h"
#include "keys.h"
#include "model_diff.h"
#include "tree.h"

#define NU 24
#define KK 3
#define DEADLINE 1000

typedef struct tree_world {
    e2e_world  single; // one aggregator, every device
    fri_agg   *root;
    fri_agg   *edge[2];
    fr_client *dev[NU]; // devices of the tree: user u at edge u % 2
    uint8_t   *reply[2];
    size_t     reply_cap[2];
} tree_world;

static void
cfg_of(fri_agg_config *c, uint32_t n_items, fri_agg_algo algo, int implicit,
    uint8_t seed)
{
    fri_agg_config_init(c);
    c->n_items           = n_items;
    c->k                 = KK;
    c->algo              = algo;
    c->implicit          = implicit;
    c->min_clients       = 1;
    c->round_deadline_ms = DEADLINE;
    c->robust            = 0; // robust bounds come from each edge's devices
    c->has_identity      = 1;
    // Edges serve the root's signed F32 frame: the single aggregator
    // serves F32 too, so devices fit against the same model.
    c->model_format = FRI_AGG_MF_FP32;
    if (implicit) {
        c->rating_min = 0.0f;
    }
    memset(c->identity_seed, seed, sizeof(c->identity_seed));
}

// The root's credential for the edge whose identity seed is filled with
// edge_seed (the root's with root_seed), as fedrec-keygen --credential
// makes it.
static void
edge_cred(fri_agg_config *c, uint8_t root_seed, uint8_t edge_seed)
{
    uint8_t      seed[FR_SEEDBYTES];
    fri_identity root, edge;
    memset(seed, root_seed, sizeof(seed));
    cr_assert_eq(fri_identity_from_seed(&root, seed), FR_OK);
    memset(seed, edge_seed, sizeof(seed));
    cr_assert_eq(fri_identity_from_seed(&edge, seed), FR_OK);
    fri_pubkeys ep;
    fri_identity_pub(&ep, &edge);
    cr_assert_eq(
        fri_cred_make(c->edge_cred, &root, &ep, (uint64_t)time(NULL) + 3600),
        FR_OK);
    c->has_edge_cred = 1;
    fri_identity_wipe(&root);
    fri_identity_wipe(&edge);
}

static void
create_or_fail(fri_agg **a, const fri_agg_config *c)
{
    char err[256];
    cr_assert_eq(fri_agg_create(a, c, 0, err, sizeof(err)), FR_OK, "%s", err);
}

static fr_client *
device(const tree_world *w, uint32_t u, const uint8_t pk[FR_PUBLICKEYBYTES])
{
    fr_client_config cc;
    fr_client_config_init(&cc);
    memcpy(cc.server_pk, pk, FR_PUBLICKEYBYTES);
    cc.seed         = 100 + u;
    cc.has_identity = 1;
    memset(cc.identity_seed, 1 + (int)u, FR_SEEDBYTES);
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cc), FR_OK);
    const fri_csr *r = &w->single.by_user;
    for (size_t j = r->ptr[u]; j < r->ptr[u + 1]; j++) {
        cr_assert_eq(fr_client_add(c, r->idx[j], r->val[j], 0), FR_OK);
    }
    return c;
}

// Root, edges and the single aggregator share a configuration (the root
// and the single one also their identity, hence their initial model).
static void
tree_setup(tree_world *w, fri_agg_algo algo, int implicit)
{
    memset(w, 0, sizeof(*w));
    e2e_synth(&w->single.d, &w->single.by_user, NU, 30, 0.3, 42);
    if (implicit) {
        for (size_t t = 0; t < w->single.d.n; t++) {
            w->single.d.r[t].rating = 1.0f;
        }
        fri_csr_free(&w->single.by_user);
        cr_assert_eq(fri_csr_by_user(&w->single.by_user, &w->single.d), FR_OK);
    }
    fri_agg_config c;
    cfg_of(&c, w->single.d.n_items, algo, implicit, 7);
    create_or_fail(&w->single.a, &c);
    c.root_max_devices = 64;
    create_or_fail(&w->root, &c);
    uint8_t rpk[FR_PUBLICKEYBYTES];
    fri_agg_public_key(w->root, rpk);
    for (int e = 0; e < 2; e++) {
        cfg_of(&c, w->single.d.n_items, algo, implicit, (uint8_t)(20 + e));
        c.edge = 1;
        memcpy(c.upstream_pk, rpk, sizeof(rpk));
        edge_cred(&c, 7, (uint8_t)(20 + e));
        create_or_fail(&w->edge[e], &c);
        w->reply_cap[e] = fri_agg_reply_bound(w->edge[e]);
        w->reply[e]     = malloc(w->reply_cap[e]);
        cr_assert_not_null(w->reply[e]);
    }
    e2e_reply_alloc(&w->single);
    e2e_clients_create(&w->single, NU, 100, 1, 0.0f);
    for (uint32_t u = 0; u < NU; u++) {
        // A device pins only the root: its edge shows the root's
        // credential in the handshake, and the models it verifies are
        // signed by the root.
        w->dev[u] = device(w, u, rpk);
    }
}

static void
tree_free(tree_world *w)
{
    for (uint32_t u = 0; u < NU; u++) {
        fr_client_destroy(w->dev[u]);
    }
    for (int e = 0; e < 2; e++) {
        fri_agg_destroy(w->edge[e]);
        free(w->reply[e]);
    }
    fri_agg_destroy(w->root);
    e2e_world_free(&w->single);
}

static void
edge_pk(fri_agg *edge, uint8_t kx[FRI_AGG_KEYBYTES])
{
    uint8_t pk[FR_PUBLICKEYBYTES];
    fri_agg_public_key(edge, pk);
    memcpy(kx, pk, FRI_AGG_KEYBYTES);
}

// One round of the tree at time t. Edge e joins the root's round and
// serves its model; live[e] == 0: the edge dies after its devices
// reported (its sums never reach the root). in_single[u]: user u also
// reports to the single aggregator this round.
static void
tree_round(tree_world *w, uint64_t t, const int live[2], int *in_single)
{
    for (int e = 0; e < 2; e++) {
        uint8_t      kx[FRI_AGG_KEYBYTES];
        fri_agg_task task;
        edge_pk(w->edge[e], kx);
        cr_assert_eq(fri_agg_checkin(w->root, t, kx, &task), FR_OK);
        cr_assert(task.has_task);
        uint8_t *f  = NULL;
        size_t   fl = 0;
        uint64_t r  = 0;
        cr_assert_eq(fri_agg_model_frame(w->root, &f, &fl, &r), FR_OK);
        cr_assert_eq(r, task.round);
        cr_assert_eq(
            fri_agg_edge_open(w->edge[e], t, f, fl, t + DEADLINE / 2), FR_OK);
        free(f);
    }
    for (uint32_t u = 0; u < NU; u++) {
        int e = (int)(u % 2);
        cr_assert_eq(e2e_checkin(w->edge[e], w->reply[e], w->reply_cap[e],
                         w->dev[u], t + 10),
            FR_CHECKIN_CONTRIBUTED, "user %u", u);
        if (in_single[u]) {
            cr_assert_eq(e2e_world_checkin(&w->single, u, t + 10),
                FR_CHECKIN_CONTRIBUTED);
        }
    }
    for (int e = 0; e < 2; e++) {
        fri_agg_tick(w->edge[e], t + DEADLINE / 2);
        uint64_t served = 0;
        cr_assert(fri_agg_edge_waiting(w->edge[e], &served));
        fri_agg_sums s;
        cr_assert_eq(fri_agg_edge_take(w->edge[e], &s), FR_OK);
        cr_assert_eq(s.round, served);
        cr_assert_eq(s.n_devices, NU / 2);
        if (live[e]) {
            uint8_t kx[FRI_AGG_KEYBYTES];
            edge_pk(w->edge[e], kx);
            cr_assert_eq(
                fri_agg_submit_sums(w->root, t + DEADLINE / 2, kx, &s), FR_OK);
        }
        fri_agg_sums_free(&s);
    }
    fri_agg_tick(w->root, t + DEADLINE + 1);
    fri_agg_tick(w->single.a, t + DEADLINE + 1);
}

static void
equivalence(fri_agg_algo algo, int implicit, int rounds)
{
    tree_world w;
    tree_setup(&w, algo, implicit);
    int live[2] = { 1, 1 };
    int all[NU];
    for (uint32_t u = 0; u < NU; u++) {
        all[u] = 1;
    }
    for (int r = 0; r < rounds; r++) {
        tree_round(&w, 10000u * (uint64_t)(r + 1), live, all);
    }
    fri_agg_metrics m;
    fri_agg_metrics_get(w.root, &m);
    cr_assert_eq(m.rounds_completed, (uint64_t)rounds);
    model_diff_out d
        = model_diff_of(w.root, w.single.a, w.single.d.n_items, KK);
    cr_assert_eq(d.va, d.vb);
    cr_assert_eq(d.va, (uint64_t)rounds);
    cr_assert(d.q_max + d.b_max > 0.05, "the model did not train (%g %g)",
        d.q_max, d.b_max);
    cr_assert(d.worst < 1e-4, "tree and single differ by %g (q %g b %g)",
        d.worst, d.q_max, d.b_max);
    tree_free(&w);
}

Test(tree, als_root_and_two_edges_equal_one_aggregator)
{
    equivalence(FRI_AGG_ALS, 0, 4);
}

Test(tree, vbmf_root_and_two_edges_equal_one_aggregator)
{
    equivalence(FRI_AGG_VBMF, 0, 4);
}

Test(tree, ials_root_and_two_edges_equal_one_aggregator)
{
    equivalence(FRI_AGG_ALS, 1, 3);
}

Test(tree, grad_root_and_two_edges_equal_one_aggregator)
{
    equivalence(FRI_AGG_GRAD, 0, 3);
}

// Edge 1 dies in round 2 after its devices reported: the root's round
// completes at its deadline from edge 0 alone, exactly as a single
// aggregator that had received only edge 0's devices that round; in the
// next round edge 1 is back and its devices count again.
Test(tree, dead_edge_costs_its_devices_not_the_round)
{
    tree_world w;
    tree_setup(&w, FRI_AGG_ALS, 0);
    int both[2] = { 1, 1 }, one[2] = { 1, 0 };
    int all[NU], even[NU];
    for (uint32_t u = 0; u < NU; u++) {
        all[u]  = 1;
        even[u] = u % 2 == 0;
    }
    tree_round(&w, 10000, both, all);
    tree_round(&w, 20000, one, even);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.root, &m);
    cr_assert_eq(m.rounds_completed, 2);
    cr_assert_eq(m.rounds_abandoned, 0);
    tree_round(&w, 30000, both, all);
    model_diff_out d
        = model_diff_of(w.root, w.single.a, w.single.d.n_items, KK);
    cr_assert_eq(d.va, 3);
    cr_assert(d.q_max + d.b_max > 0.05);
    cr_assert(d.worst < 1e-4, "tree and single differ by %g", d.worst);
    tree_free(&w);
}

// Sums of one honest edge, then altered copies the root must refuse.
Test(tree, root_refuses_sums_outside_the_devices_bounds)
{
    tree_world w;
    tree_setup(&w, FRI_AGG_ALS, 0);
    int live[2] = { 0, 0 }, all[NU];
    for (uint32_t u = 0; u < NU; u++) {
        all[u] = 1;
    }
    // Round 1 is the census (only mu); round 2 has item statistics.
    tree_round(&w, 10000, (int[2]) { 1, 1 }, all);
    uint64_t t = 20000;
    uint8_t  kx[2][FRI_AGG_KEYBYTES];
    for (int e = 0; e < 2; e++) {
        edge_pk(w.edge[e], kx[e]);
    }
    (void)live;
    for (int e = 0; e < 2; e++) {
        fri_agg_task task;
        cr_assert_eq(fri_agg_checkin(w.root, t, kx[e], &task), FR_OK);
        uint8_t *f  = NULL;
        size_t   fl = 0;
        uint64_t r  = 0;
        cr_assert_eq(fri_agg_model_frame(w.root, &f, &fl, &r), FR_OK);
        cr_assert_eq(fri_agg_edge_open(w.edge[e], t, f, fl, t + 500), FR_OK);
        free(f);
    }
    for (uint32_t u = 0; u < NU; u++) {
        int e = (int)(u % 2);
        cr_assert_eq(e2e_checkin(w.edge[e], w.reply[e], w.reply_cap[e],
                         w.dev[u], t + 10),
            FR_CHECKIN_CONTRIBUTED);
    }
    fri_agg_sums s[2];
    for (int e = 0; e < 2; e++) {
        fri_agg_tick(w.edge[e], t + 500);
        cr_assert_eq(fri_agg_edge_take(w.edge[e], &s[e]), FR_OK);
        cr_assert(s[e].n_rows > 0);
    }
    // Nothing more to take.
    fri_agg_sums none;
    cr_assert_eq(fri_agg_edge_take(w.edge[0], &none), FR_ESTATE);

    uint32_t d = KK + 1, gl = d * (d + 1) / 2;
    size_t   bias = (size_t)gl - 1; // packed (k, k): the rater count
    // Too many devices for one edge.
    s[0].n_devices = 65;
    cr_assert_eq(
        fri_agg_submit_sums(w.root, t + 500, kx[0], &s[0]), FR_ETOOBIG);
    // The refused edge is done for the round.
    s[0].n_devices = NU / 2;
    cr_assert_eq(fri_agg_submit_sums(w.root, t + 500, kx[0], &s[0]), FR_EDUP);

    // Edge 1: an item with more raters than devices; a row beyond the
    // residual bound; a rating sum outside its count's range; NaN. Each is
    // refused on a fresh copy (a refused member is done, so they are
    // checked against a non-member first: the check precedes membership).
    fri_agg_sums bad  = s[1];
    double      *rows = malloc(sizeof(double) * s[1].n_rows * s[1].width);
    cr_assert_not_null(rows);
    bad.rows = rows;
    uint8_t stranger[FRI_AGG_KEYBYTES];
    memset(stranger, 0xee, sizeof(stranger));
    memcpy(rows, s[1].rows, sizeof(double) * s[1].n_rows * s[1].width);
    rows[bias] = NU / 2 + 1;
    cr_assert_eq(
        fri_agg_submit_sums(w.root, t + 500, stranger, &bad), FR_EPROTO);
    memcpy(rows, s[1].rows, sizeof(double) * s[1].n_rows * s[1].width);
    rows[gl + KK] = 1e6; // h of the bias coordinate
    cr_assert_eq(
        fri_agg_submit_sums(w.root, t + 500, stranger, &bad), FR_EPROTO);
    memcpy(rows, s[1].rows, sizeof(double) * s[1].n_rows * s[1].width);
    rows[0] = NAN;
    cr_assert_eq(
        fri_agg_submit_sums(w.root, t + 500, stranger, &bad), FR_EPROTO);
    memcpy(rows, s[1].rows, sizeof(double) * s[1].n_rows * s[1].width);
    bad.sum_ratings = bad.count * 100.0;
    cr_assert_eq(
        fri_agg_submit_sums(w.root, t + 500, stranger, &bad), FR_EPROTO);
    bad.sum_ratings = s[1].sum_ratings;
    // Honest sums from a non-member are denied; from edge 1 accepted.
    cr_assert_eq(
        fri_agg_submit_sums(w.root, t + 500, stranger, &bad), FR_EDENIED);
    cr_assert_eq(fri_agg_submit_sums(w.root, t + 500, kx[1], &s[1]), FR_OK);
    cr_assert_eq(fri_agg_submit_sums(w.root, t + 500, kx[1], &s[1]), FR_EDUP);
    free(rows);
    fri_agg_tick(w.root, t + DEADLINE + 1);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.root, &m);
    cr_assert_eq(m.rounds_completed, 2);
    fri_agg_sums_free(&s[0]);
    fri_agg_sums_free(&s[1]);
    tree_free(&w);
}

// An edge opens rounds only from models its root signed, for rounds after
// the last it served, and only when it has no round open.
Test(tree, edge_opens_only_root_signed_newer_models)
{
    tree_world w;
    tree_setup(&w, FRI_AGG_ALS, 0);
    uint8_t *f = NULL, *g = NULL;
    size_t   fl = 0, gl = 0;
    uint64_t r = 0;
    // Edge 1's own initial frame: a model signed by another key.
    cr_assert_eq(fri_agg_model_frame(w.edge[1], &g, &gl, &r), FR_OK);
    cr_assert_eq(fri_agg_edge_open(w.edge[0], 1, g, gl, 500), FR_ECRYPTO);
    cr_assert_eq(fri_agg_model_frame(w.root, &f, &fl, &r), FR_OK);
    f[fl - 1] ^= 1;
    cr_assert_eq(fri_agg_edge_open(w.edge[0], 1, f, fl, 500), FR_ECRYPTO);
    f[fl - 1] ^= 1;
    cr_assert_eq(fri_agg_edge_open(w.edge[0], 1, f, 20, 500), FR_EPROTO);
    cr_assert_eq(fri_agg_edge_open(w.edge[0], 1, f, fl, 500), FR_OK);
    // A round is open: no second one.
    cr_assert_eq(fri_agg_edge_open(w.edge[0], 2, f, fl, 500), FR_ESTATE);
    // Closed without updates: nothing to hand up, and the same round's
    // model does not open again.
    fri_agg_tick(w.edge[0], 501);
    fri_agg_sums s;
    cr_assert_eq(fri_agg_edge_take(w.edge[0], &s), FR_ESTATE);
    cr_assert_eq(fri_agg_edge_open(w.edge[0], 502, f, fl, 900), FR_ELATE);
    // Not an edge, not a root.
    cr_assert_eq(fri_agg_edge_open(w.single.a, 1, f, fl, 500), FR_ESTATE);
    cr_assert_eq(fri_agg_submit_sums(w.single.a, 1, f, &s), FR_ESTATE);
    free(f);
    free(g);
    tree_free(&w);
}

// Secure aggregation within each edge's cohort (SecAgg+): an edge unmasks
// only its cohort's sum and hands that up; the root's model matches one
// plain aggregator's with the same devices up to the fixed-point
// quantization of the masked statistics.
Test(tree, secure_edges_match_plain_single_aggregator)
{
    tree_world w;
    memset(&w, 0, sizeof(w));
    e2e_synth(&w.single.d, &w.single.by_user, NU, 30, 0.3, 42);
    fri_agg_config c;
    cfg_of(&c, w.single.d.n_items, FRI_AGG_ALS, 0, 7);
    create_or_fail(&w.single.a, &c);
    c.root_max_devices = 64;
    create_or_fail(&w.root, &c);
    uint8_t rpk[FR_PUBLICKEYBYTES];
    fri_agg_public_key(w.root, rpk);
    for (int e = 0; e < 2; e++) {
        cfg_of(&c, w.single.d.n_items, FRI_AGG_ALS, 0, (uint8_t)(20 + e));
        c.edge              = 1;
        c.secagg            = FRI_AGG_SECAGG_PLUS;
        c.clients_per_round = NU / 2;
        c.min_clients       = 2;
        memcpy(c.upstream_pk, rpk, sizeof(rpk));
        create_or_fail(&w.edge[e], &c);
        w.reply_cap[e] = fri_agg_reply_bound(w.edge[e]);
        w.reply[e]     = malloc(w.reply_cap[e]);
        cr_assert_not_null(w.reply[e]);
    }
    e2e_reply_alloc(&w.single);
    e2e_clients_create(&w.single, NU, 100, 1, 0.0f);
    for (uint32_t u = 0; u < NU; u++) {
        uint8_t pk[FR_PUBLICKEYBYTES];
        fri_agg_public_key(w.edge[u % 2], pk);
        memcpy(pk + 32, rpk + 32, 32);
        w.dev[u] = device(&w, u, pk);
    }
    const int rounds = 3;
    for (int r = 0; r < rounds; r++) {
        uint64_t t = 100000u * (uint64_t)(r + 1);
        for (int e = 0; e < 2; e++) {
            uint8_t      kx[FRI_AGG_KEYBYTES];
            fri_agg_task task;
            edge_pk(w.edge[e], kx);
            cr_assert_eq(fri_agg_checkin(w.root, t, kx, &task), FR_OK);
            uint8_t *f  = NULL;
            size_t   fl = 0;
            uint64_t id = 0;
            cr_assert_eq(fri_agg_model_frame(w.root, &f, &fl, &id), FR_OK);
            cr_assert_eq(
                fri_agg_edge_open(w.edge[e], t, f, fl, t + 50000), FR_OK);
            free(f);
            // The edge's cohort through the whole SecAgg+ exchange.
            e2e_world v;
            memset(&v, 0, sizeof(v));
            v.a         = w.edge[e];
            v.reply     = w.reply[e];
            v.reply_cap = w.reply_cap[e];
            uint32_t          users[NU / 2];
            fr_checkin_status st[NU / 2];
            for (uint32_t j = 0; j < NU / 2; j++) {
                v.c[j]   = w.dev[2 * j + (uint32_t)e];
                users[j] = j;
            }
            v.n_users = NU / 2;
            int done  = e2e_secure_round(
                 &v, users, NU / 2, NULL, NULL, t + 10, NULL, st);
            cr_assert_eq(done, NU / 2, "edge %d round %d", e, r);
            uint64_t served = 0;
            cr_assert(fri_agg_edge_waiting(w.edge[e], &served));
            fri_agg_sums s;
            cr_assert_eq(fri_agg_edge_take(w.edge[e], &s), FR_OK);
            cr_assert_eq(s.n_devices, NU / 2);
            fr_err sr = fri_agg_submit_sums(w.root, t + 60000, kx, &s);
            cr_assert_eq(
                sr, FR_OK, "round %d edge %d: %s", r, e, fr_errname(sr));
            fri_agg_sums_free(&s);
        }
        for (uint32_t u = 0; u < NU; u++) {
            cr_assert_eq(e2e_world_checkin(&w.single, u, t + 10),
                FR_CHECKIN_CONTRIBUTED);
        }
        fri_agg_tick(w.root, t + 90000);
        fri_agg_tick(w.single.a, t + 90000);
    }
    model_diff_out d
        = model_diff_of(w.root, w.single.a, w.single.d.n_items, KK);
    cr_assert_eq(d.va, (uint64_t)rounds);
    cr_assert_eq(d.vb, (uint64_t)rounds);
    cr_assert(d.q_max + d.b_max > 0.05);
    cr_log_info("secure edges vs plain single: max diff %.3g", d.worst);
    cr_assert(
        d.worst < 1e-4, "secure tree and plain single differ by %g", d.worst);
    tree_free(&w);
}

// A device pinning only the root may use any edge the root issued a
// credential to, and no other: it contributes through edge 0, then
// through edge 1; an edge without a credential is refused in the
// handshake.
Test(tree, root_pinned_device_uses_any_credentialed_edge)
{
    tree_world w;
    tree_setup(&w, FRI_AGG_ALS, 0);
    uint64_t t = 10000;
    for (int e = 0; e < 2; e++) {
        uint8_t      kx[FRI_AGG_KEYBYTES];
        fri_agg_task task;
        edge_pk(w.edge[e], kx);
        cr_assert_eq(fri_agg_checkin(w.root, t, kx, &task), FR_OK);
        uint8_t *f  = NULL;
        size_t   fl = 0;
        uint64_t r  = 0;
        cr_assert_eq(fri_agg_model_frame(w.root, &f, &fl, &r), FR_OK);
        cr_assert_eq(fri_agg_edge_open(w.edge[e], t, f, fl, t + 500), FR_OK);
        free(f);
    }
    // Device 0 belongs to edge 0 in the other tests; here it uses both.
    cr_assert_eq(
        e2e_checkin(w.edge[0], w.reply[0], w.reply_cap[0], w.dev[0], t + 10),
        FR_CHECKIN_CONTRIBUTED);
    cr_assert_eq(
        e2e_checkin(w.edge[1], w.reply[1], w.reply_cap[1], w.dev[2], t + 10),
        FR_CHECKIN_CONTRIBUTED);
    // Edge 1 does not know it reported at edge 0: a device can report
    // once per edge and round (docs/DEPLOY-TREE.md, known gap).
    cr_assert_eq(
        e2e_checkin(w.edge[1], w.reply[1], w.reply_cap[1], w.dev[0], t + 20),
        FR_CHECKIN_CONTRIBUTED);
    // An edge of the same root without a credential.
    fri_agg_config c;
    cfg_of(&c, w.single.d.n_items, FRI_AGG_ALS, 0, 30);
    c.edge = 1;
    fri_agg_public_key(w.root, c.upstream_pk);
    fri_agg *rogue = NULL;
    create_or_fail(&rogue, &c);
    uint8_t *f  = NULL;
    size_t   fl = 0;
    uint64_t r  = 0;
    cr_assert_eq(fri_agg_model_frame(w.root, &f, &fl, &r), FR_OK);
    cr_assert_eq(fri_agg_edge_open(rogue, t, f, fl, t + 500), FR_OK);
    free(f);
    cr_assert_eq(
        e2e_checkin(rogue, w.reply[0], w.reply_cap[0], w.dev[4], t + 30),
        FR_CHECKIN_FAILED);
    fri_agg_destroy(rogue);
    tree_free(&w);
}

// Edges with --edge-shard I/N: each device key belongs to exactly one
// edge, so a device cannot report through two edges in one root round
// (each would count it). Every key is refused by all edges but its own,
// and the shards are used about evenly.
Test(tree, sharded_edges_each_take_their_devices_only)
{
    tree_world w;
    tree_setup(&w, FRI_AGG_ALS, 0);
    uint8_t rpk[FR_PUBLICKEYBYTES];
    fri_agg_public_key(w.root, rpk);
    fri_agg *e[3];
    for (uint32_t s = 0; s < 3; s++) {
        fri_agg_config c;
        cfg_of(&c, w.single.d.n_items, FRI_AGG_ALS, 0, (uint8_t)(40 + s));
        c.edge = 1;
        memcpy(c.upstream_pk, rpk, sizeof(rpk));
        c.edge_shard  = s;
        c.edge_shards = 3;
        create_or_fail(&e[s], &c);
    }
    uint32_t per[3] = { 0 };
    for (uint32_t d = 0; d < 300; d++) {
        uint8_t pk[FRI_AGG_KEYBYTES];
        memset(pk, 0, sizeof(pk));
        memcpy(pk, &d, sizeof(d));
        pk[31] = 0x5a;
        int ok = 0;
        for (uint32_t s = 0; s < 3; s++) {
            fri_agg_task t;
            fr_err       rv = fri_agg_checkin(e[s], 10, pk, &t);
            cr_assert(rv == FR_OK || rv == FR_EDENIED, "%s", fr_errname(rv));
            if (rv == FR_OK) {
                ok++;
                per[s]++;
                cr_assert_eq(fri_agg_shard_of(pk, 3), s);
            }
        }
        cr_assert_eq(ok, 1, "device %u accepted by %d edges", d, ok);
    }
    for (uint32_t s = 0; s < 3; s++) {
        cr_assert(per[s] > 60, "shard %u took %u of 300 devices", s, per[s]);
        fri_agg_destroy(e[s]);
    }
    // A shard outside 0..N-1, or shards without an edge: refused.
    fri_agg_config c;
    cfg_of(&c, w.single.d.n_items, FRI_AGG_ALS, 0, 50);
    c.edge_shard  = 0;
    c.edge_shards = 2;
    char     err[256];
    fri_agg *x = NULL;
    cr_assert_eq(fri_agg_create(&x, &c, 0, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "edge-shard") != NULL, "%s", err);
    c.edge = 1;
    memcpy(c.upstream_pk, rpk, sizeof(rpk));
    c.edge_shard = 2;
    cr_assert_eq(fri_agg_create(&x, &c, 0, err, sizeof(err)), FR_EINVAL);
    tree_free(&w);
}

// The root's catalog grows (README, "A catalog that grows"): the edges
// refuse to grow on their own, follow the root's larger model when they
// open the next round, and the tree still gives the single aggregator's
// model, grown the same way.
Test(tree, catalog_grows_at_the_root_and_edges_follow)
{
    tree_world w;
    tree_setup(&w, FRI_AGG_VBMF, 0);
    const uint32_t n0 = w.single.d.n_items, n1 = n0 + 4;
    int            live[2] = { 1, 1 }, all[NU];
    for (uint32_t u = 0; u < NU; u++) {
        all[u] = 1;
    }
    tree_round(&w, 10000, live, all);
    tree_round(&w, 20000, live, all);
    char err[256];
    cr_assert_eq(fri_agg_grow_items(w.root, n1, err, sizeof(err)), FR_OK,
                 "%s", err);
    cr_assert_eq(fri_agg_grow_items(w.single.a, n1, err, sizeof(err)), FR_OK,
                 "%s", err);
    cr_assert_eq(fri_agg_grow_items(w.edge[0], n1, err, sizeof(err)),
                 FR_ESTATE);
    tree_round(&w, 30000, live, all); // grown after this round
    for (int e = 0; e < 2; e++) {
        free(w.reply[e]);
        w.reply_cap[e] = fri_agg_reply_bound(w.root); // the edges' is next
        w.reply[e]     = malloc(2 * w.reply_cap[e]);
        w.reply_cap[e] *= 2;
        cr_assert_not_null(w.reply[e]);
    }
    free(w.single.reply);
    w.single.reply = NULL;
    e2e_reply_alloc(&w.single);
    tree_round(&w, 40000, live, all);
    tree_round(&w, 50000, live, all);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.root, &m);
    cr_assert_eq(m.n_items, n1);
    cr_assert_eq(m.rounds_completed, 5);
    for (int e = 0; e < 2; e++) {
        fri_agg_metrics_get(w.edge[e], &m);
        cr_assert_eq(m.n_items, n1, "edge %d", e);
    }
    model_diff_out d = model_diff_of(w.root, w.single.a, n1, KK);
    cr_assert_eq(d.va, 5);
    cr_assert_eq(d.vb, 5);
    cr_assert(d.worst < 1e-4, "tree and single differ by %g", d.worst);
    tree_free(&w);
}
