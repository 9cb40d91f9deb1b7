// In-memory secure-aggregation round driver (test support); see
// secagg_round.h.
#include "common/secagg_round.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "secagg.h"
#include "shamir.h"

enum { ST_NONE = 0, ST_SUBMITTED = 1, ST_SILENT = 2 };

struct fri_secagg_round {
    fri_secagg_round_config cfg;
    fri_secagg_graph        graph;
    uint32_t                k; // neighbours per client
    uint32_t                t; // Shamir threshold
    fri_secagg_keys        *keys; // [n] client secrets
    uint8_t                *b; // [n][32] self-mask seeds (secret)
    uint8_t                *c_pk; // [n][32] from verified adverts
    uint8_t                *b_commit; // [n][32] from verified adverts
    uint8_t                *nbr_pk; // [k][32] scratch for submit
    uint32_t               *nbr; // [n][k] sorted neighbour lists
    uint8_t                *held; // [n][k][64] shares v holds from nbr
    uint8_t                *state; // [n]
    uint32_t               *sum; // [dim] server's running sum
    bool                    finished;
};

void
fri_secagg_round_config_init(fri_secagg_round_config *cfg)
{
    if (cfg != NULL) {
        memset(cfg, 0, sizeof *cfg);
        cfg->round_id = 1;
        cfg->seed     = 1;
    }
}

static size_t
held_bytes(const fri_secagg_round *r)
{
    return (size_t)r->cfg.n_clients * r->k * FRI_SECAGG_SHAREMSGBYTES;
}

void
fri_secagg_round_destroy(fri_secagg_round *r)
{
    if (r == NULL) {
        return;
    }
    size_t n = r->cfg.n_clients;
    if (r->keys != NULL) {
        sodium_memzero(r->keys, n * sizeof *r->keys);
    }
    if (r->b != NULL) {
        sodium_memzero(r->b, n * 32);
    }
    if (r->held != NULL) {
        sodium_memzero(r->held, held_bytes(r));
    }
    free(r->keys);
    free(r->b);
    free(r->c_pk);
    free(r->b_commit);
    free(r->nbr_pk);
    free(r->nbr);
    free(r->held);
    free(r->state);
    free(r->sum);
    sodium_memzero(r, sizeof *r);
    free(r);
}

// out = BLAKE2b-256(key = master, label || index): per-client sim secrets.
static fr_err
derive(uint8_t out[32], const uint8_t master[32], const char *label,
    uint32_t index)
{
    uint8_t m[32 + 4] = { 0 };
    size_t  l         = strlen(label);
    memcpy(m, label, l < 32 ? l : 32);
    for (int i = 0; i < 4; i++) { // little-endian, as on the wire
        m[32 + i] = (uint8_t)(index >> (8 * i));
    }
    return crypto_generichash(out, 32, m, sizeof m, master, 32) == 0
        ? FR_OK
        : FR_EINTERNAL;
}

static size_t
nbr_index(const fri_secagg_round *r, uint32_t holder, uint32_t owner)
{
    const uint32_t *v  = r->nbr + (size_t)holder * r->k;
    size_t          lo = 0, hi = r->k;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < owner) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo; // callers only ask for actual neighbours
}

// Setup phases: adverts, verification, sealed share exchange.
static fr_err
round_setup(fri_secagg_round *r)
{
    const uint32_t n   = r->cfg.n_clients;
    const uint64_t rid = r->cfg.round_id;
    fr_err         rc  = FR_OK;
    uint8_t        master[32], tmp[32], seedb[8];
    uint8_t       *id_pk = NULL, *id_sk = NULL, *s_pk = NULL, *xshares = NULL;
    fri_secagg_advert *adv = NULL;
    uint32_t          *xs  = NULL;

    for (int i = 0; i < 8; i++) { // little-endian, as on the wire
        seedb[i] = (uint8_t)(r->cfg.seed >> (8 * i));
    }
    if (crypto_generichash(master, 32, seedb, 8, NULL, 0) != 0) {
        return FR_EINTERNAL;
    }
    id_pk   = malloc((size_t)n * 32);
    id_sk   = malloc((size_t)n * 64);
    s_pk    = malloc((size_t)n * 32);
    adv     = malloc((size_t)n * sizeof *adv);
    xs      = malloc((size_t)r->k * sizeof *xs);
    xshares = malloc((size_t)r->k * 2 * 32);
    if (id_pk == NULL || id_sk == NULL || s_pk == NULL || adv == NULL
        || xs == NULL || xshares == NULL) {
        rc = FR_ENOMEM;
        goto out;
    }
    rc = derive(tmp, master, "graph", 0);
    memcpy(r->graph.seed, tmp, 32);
    // Keys and signed adverts.
    for (uint32_t u = 0; u < n && rc == FR_OK; u++) {
        rc = derive(tmp, master, "identity", u);
        if (rc == FR_OK
            && crypto_sign_seed_keypair(
                   id_pk + 32 * (size_t)u, id_sk + 64 * (size_t)u, tmp)
                != 0) {
            rc = FR_EINTERNAL;
        }
        if (rc == FR_OK) {
            rc = derive(tmp, master, "ephemeral", u);
        }
        if (rc == FR_OK) {
            rc = fri_secagg_keygen(&r->keys[u], tmp);
        }
        if (rc == FR_OK) {
            rc = derive(r->b + 32 * (size_t)u, master, "self mask", u);
        }
        if (rc == FR_OK) {
            fri_secagg_seed_commit(tmp, r->b + 32 * (size_t)u, rid, u);
            rc = fri_secagg_advert_sign(&adv[u], rid, u, r->keys[u].c_pk,
                r->keys[u].s_pk, tmp, id_sk + 64 * (size_t)u);
        }
        if (rc == FR_OK) {
            rc = fri_secagg_neighbors(r->nbr + (size_t)u * r->k, r->k,
                &(size_t) { 0 }, u, n, r->cfg.degree, r->graph.seed);
        }
    }
    // Clients check their neighbours' adverts before using the keys; the
    // check is the same for every neighbour, so it runs once per advert.
    for (uint32_t v = 0; v < n && rc == FR_OK; v++) {
        rc = fri_secagg_advert_verify(&adv[v], rid, v, id_pk + 32 * (size_t)v);
    }
    for (uint32_t u = 0; u < n && rc == FR_OK; u++) {
        memcpy(r->c_pk + 32 * (size_t)u, adv[u].c_pk, 32);
        memcpy(r->b_commit + 32 * (size_t)u, adv[u].b_commit, 32);
        memcpy(s_pk + 32 * (size_t)u, adv[u].s_pk, 32);
    }
    // Share exchange: u splits b_u and c_sk_u over its neighbours
    // (x = index + 1), seals each pair to its holder, the server relays,
    // the holder opens and stores.
    for (uint32_t u = 0; u < n && rc == FR_OK; u++) {
        const uint32_t *nb = r->nbr + (size_t)u * r->k;
        for (uint32_t i = 0; i < r->k; i++) {
            xs[i] = nb[i] + 1;
        }
        size_t half = (size_t)r->k * 32;
        rc          = fri_shamir_split_at(
                     xshares, half, xs, r->k, r->t, r->b + 32 * (size_t)u, 32, NULL);
        if (rc == FR_OK) {
            rc = fri_shamir_split_at(xshares + half, half, xs, r->k, r->t,
                r->keys[u].c_sk, 32, NULL);
        }
        for (uint32_t i = 0; i < r->k && rc == FR_OK; i++) {
            uint32_t v = nb[i];
            uint8_t  msg[FRI_SECAGG_SHAREMSGBYTES];
            uint8_t  box[FRI_SECAGG_SEALEDBYTES];
            uint8_t  key[32];
            size_t   len = 0;
            memcpy(msg, xshares + 32 * (size_t)i, 32);
            memcpy(msg + 32, xshares + half + 32 * (size_t)i, 32);
            // Sender and holder derive the same key (X25519 is symmetric);
            // the simulation computes it once per pair.
            rc = fri_secagg_share_key(
                key, r->keys[u].s_sk, s_pk + 32 * (size_t)v, rid);
            if (rc == FR_OK) {
                rc = fri_secagg_share_seal_k(
                    box, sizeof box, &len, msg, sizeof msg, rid, u, v, key);
            }
            sodium_memzero(msg, sizeof msg);
            if (rc == FR_OK) {
                uint8_t *dst = r->held
                    + ((size_t)v * r->k + nbr_index(r, v, u))
                        * FRI_SECAGG_SHAREMSGBYTES;
                rc = fri_secagg_share_open_k(dst, FRI_SECAGG_SHAREMSGBYTES,
                    &len, box, len, rid, u, v, key);
            }
            sodium_memzero(key, sizeof key);
        }
        sodium_memzero(xshares, 2 * half);
    }
out:
    sodium_memzero(master, sizeof master);
    sodium_memzero(tmp, sizeof tmp);
    if (id_sk != NULL) {
        sodium_memzero(id_sk, (size_t)n * 64);
    }
    if (xshares != NULL) {
        sodium_memzero(xshares, (size_t)r->k * 2 * 32);
    }
    free(id_pk);
    free(id_sk);
    free(s_pk);
    free(adv);
    free(xs);
    free(xshares);
    return rc;
}

fr_err
fri_secagg_round_create(
    fri_secagg_round **out, const fri_secagg_round_config *cfg)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (cfg == NULL || cfg->n_clients < 2
        || cfg->n_clients > FRI_SECAGG_MAX_CLIENTS || cfg->dim == 0
        || cfg->dim > SIZE_MAX / sizeof(uint32_t)) {
        return FR_EINVAL;
    }
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    uint32_t k = fri_secagg_graph_degree(cfg->n_clients, cfg->degree);
    uint32_t t
        = cfg->threshold != 0 ? cfg->threshold : fri_secagg_threshold(k);
    if (t == 0 || t > k) {
        return FR_EINVAL;
    }
    size_t n = cfg->n_clients;
    if ((size_t)k > SIZE_MAX / FRI_SECAGG_SHAREMSGBYTES / n) {
        return FR_ETOOBIG;
    }
    fri_secagg_round *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return FR_ENOMEM;
    }
    r->cfg             = *cfg;
    r->k               = k;
    r->t               = t;
    r->graph.n_clients = cfg->n_clients;
    r->graph.degree    = cfg->degree;
    r->keys            = calloc(n, sizeof *r->keys);
    r->b               = calloc(n, 32);
    r->c_pk            = calloc(n, 32);
    r->b_commit        = calloc(n, 32);
    r->nbr_pk          = calloc(k, 32);
    r->nbr             = calloc(n * k, sizeof *r->nbr);
    r->held            = calloc(n * k, FRI_SECAGG_SHAREMSGBYTES);
    r->state           = calloc(n, 1);
    r->sum             = calloc(cfg->dim, sizeof *r->sum);
    fr_err rc          = FR_ENOMEM;
    if (r->keys != NULL && r->b != NULL && r->c_pk != NULL
        && r->b_commit != NULL && r->nbr_pk != NULL && r->nbr != NULL
        && r->held != NULL && r->state != NULL && r->sum != NULL) {
        rc = round_setup(r);
    }
    if (rc != FR_OK) {
        fri_secagg_round_destroy(r);
        return rc;
    }
    *out = r;
    return FR_OK;
}

fr_err
fri_secagg_round_submit(
    fri_secagg_round *r, uint32_t client, const uint32_t *x)
{
    if (r == NULL || x == NULL || client >= r->cfg.n_clients) {
        return FR_EINVAL;
    }
    if (r->finished) {
        return FR_ESTATE;
    }
    if (r->state[client] != ST_NONE) {
        return FR_EDUP;
    }
    const uint32_t *nb = r->nbr + (size_t)client * r->k;
    for (uint32_t i = 0; i < r->k; i++) {
        memcpy(r->nbr_pk + 32 * (size_t)i, r->c_pk + 32 * (size_t)nb[i], 32);
    }
    uint32_t *y = malloc(r->cfg.dim * sizeof *y);
    if (y == NULL) {
        return FR_ENOMEM;
    }
    fr_err rc = fri_secagg_mask(y, x, r->cfg.dim, client, nb, r->nbr_pk, r->k,
        r->keys[client].c_sk, r->b + 32 * (size_t)client, r->cfg.round_id);
    if (rc == FR_OK) {
        // The server only ever sees y.
        for (size_t i = 0; i < r->cfg.dim; i++) {
            r->sum[i] += y[i];
        }
        r->state[client] = ST_SUBMITTED;
    }
    sodium_memzero(y, r->cfg.dim * sizeof *y);
    free(y);
    return rc;
}

fr_err
fri_secagg_round_go_silent(fri_secagg_round *r, uint32_t client)
{
    if (r == NULL || client >= r->cfg.n_clients) {
        return FR_EINVAL;
    }
    if (r->finished || r->state[client] == ST_NONE) {
        return FR_ESTATE;
    }
    r->state[client] = ST_SILENT;
    return FR_OK;
}

fr_err
fri_secagg_round_finish(
    fri_secagg_round *r, uint32_t *sum_out, size_t dim, uint32_t *n_survivors)
{
    if (r == NULL || sum_out == NULL || dim != r->cfg.dim) {
        return FR_EINVAL;
    }
    if (r->finished) {
        return FR_ESTATE;
    }
    r->finished     = true;
    const size_t n  = r->cfg.n_clients;
    size_t       ns = 0;
    for (size_t u = 0; u < n; u++) {
        ns += r->state[u] != ST_NONE;
    }
    if (ns == 0) {
        return FR_ESTATE;
    }
    size_t    nd     = n - ns;
    uint32_t *surv   = malloc(ns * sizeof *surv);
    uint32_t *drop   = malloc((nd ? nd : 1) * sizeof *drop);
    uint8_t  *s_pk   = malloc(ns * 32);
    uint8_t  *s_b    = malloc(ns * 32);
    uint8_t  *d_sk   = malloc((nd ? nd : 1) * 32);
    uint8_t  *shares = malloc((size_t)r->k * 32);
    uint32_t *xs     = malloc((size_t)r->k * sizeof *xs);
    fr_err    rc     = FR_OK;
    if (surv == NULL || drop == NULL || s_pk == NULL || s_b == NULL
        || d_sk == NULL || shares == NULL || xs == NULL) {
        rc = FR_ENOMEM;
        goto out;
    }
    size_t is = 0, id = 0;
    for (uint32_t w = 0; w < n && rc == FR_OK; w++) {
        bool survived = r->state[w] != ST_NONE;
        // Responsive neighbours reveal exactly one share of w's secrets:
        // of b_w if w survived, of c_sk_w if it dropped.
        const uint32_t *nb  = r->nbr + (size_t)w * r->k;
        uint32_t        got = 0;
        for (uint32_t i = 0; i < r->k; i++) {
            uint32_t v = nb[i];
            if (r->state[v] != ST_SUBMITTED) {
                continue;
            }
            const uint8_t *h = r->held
                + ((size_t)v * r->k + nbr_index(r, v, w))
                    * FRI_SECAGG_SHAREMSGBYTES;
            memcpy(shares + 32 * (size_t)got, survived ? h : h + 32, 32);
            xs[got++] = v + 1;
        }
        if (got < r->t) {
            rc = FR_ESTATE;
            break;
        }
        // Every secret is checked (b against its advert commitment, c_sk
        // against c_pk): a wrong share cannot silently corrupt the sum.
        if (survived) {
            fri_secagg_seed_check ck
                = { r->b_commit + 32 * (size_t)w, r->cfg.round_id, w };
            surv[is] = w;
            memcpy(s_pk + 32 * is, r->c_pk + 32 * (size_t)w, 32);
            rc = fri_secagg_recover(s_b + 32 * is, shares, xs, got, r->t,
                fri_secagg_check_seed, &ck, r->cfg.seed ^ w, 64, NULL, NULL);
            is++;
        } else {
            drop[id] = w;
            rc = fri_secagg_recover(d_sk + 32 * id, shares, xs, got, r->t,
                fri_secagg_check_sk, r->c_pk + 32 * (size_t)w, r->cfg.seed ^ w,
                64, NULL, NULL);
            id++;
        }
    }
    if (rc == FR_OK) {
        memcpy(sum_out, r->sum, dim * sizeof *sum_out);
        fri_secagg_unmask_input in = {
            .round_id      = r->cfg.round_id,
            .graph         = &r->graph,
            .survivors     = surv,
            .survivor_c_pk = s_pk,
            .survivor_b    = s_b,
            .n_survivors   = ns,
            .dropped       = drop,
            .dropped_c_sk  = d_sk,
            .n_dropped     = nd,
        };
        rc = fri_secagg_unmask(sum_out, dim, &in);
        if (rc == FR_OK && n_survivors != NULL) {
            *n_survivors = (uint32_t)ns;
        }
    }
out:
    if (s_b != NULL) {
        sodium_memzero(s_b, ns * 32);
    }
    if (d_sk != NULL) {
        sodium_memzero(d_sk, (nd ? nd : 1) * 32);
    }
    if (shares != NULL) {
        sodium_memzero(shares, (size_t)r->k * 32);
    }
    free(surv);
    free(drop);
    free(s_pk);
    free(s_b);
    free(d_sk);
    free(shares);
    free(xs);
    return rc;
}
