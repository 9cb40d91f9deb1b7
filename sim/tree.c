// A simulation spread over a group of processes (tree.h).
#include "tree.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <sodium.h>

#include "../aggregator/tree.h"
#include "../aggregator/uplink.h"
#include "channel.h"
#include "keys.h"

// How long (real time) an edge waits for the root to open a round.
#define TREE_OPEN_WAIT_MS 120000u

struct fri_sim_tree {
    const fr_sim_group   *g;
    fri_agg              *root; // rank 0
    fri_sim_server       *srv;  // rank 0: the root's tcp server
    _Atomic uint64_t      root_ms; // rank 0: the root's virtual clock
    uint64_t              deadline_ms;
    uint64_t              root_done, root_lost; // rank 0: root rounds
                                                 // completed, abandoned
    fri_agg              *edge;
    fri_uplink           *up;
    char                  url[256]; // the root's, as the edges dial it
    size_t               *lens; // rank 0: a gather's byte count per rank
};

void
fri_sim_identity_seed(uint64_t seed, uint32_t who, uint8_t out[32])
{
    // who 0: the aggregator (a single simulator's, or the tree's root),
    // the bytes fedrec-sim always used; who 1 + e: edge e.
    uint8_t in[24] = "fedrec-sim agg";
    size_t  len    = 16;
    for (int i = 0; i < 8; i++) {
        in[8 + i] ^= (uint8_t)(seed >> (8 * i));
    }
    if (who > 0) {
        for (int i = 0; i < 4; i++) {
            in[16 + i] = (uint8_t)(who >> (8 * i));
        }
        len = sizeof(in);
    }
    crypto_generichash(out, 32, in, len, NULL, 0);
}

static uint64_t
root_clock(void *ctx)
{
    fri_sim_tree *t = ctx;
    return atomic_load(&t->root_ms);
}

static fr_err
fail(char *err, size_t cap, fr_err e, const char *msg)
{
    if (cap > 0) {
        snprintf(err, cap, "--mpi: %s", msg);
    }
    return e;
}

// Why c cannot run as a tree yet (NULL: it can). The tree carries
// per-round sums (docs/DEPLOY-TREE.md): statistics carried across rounds,
// DP noise and a masked sum across edges are not implemented there.
static const char *
unsupported(const fri_sim_config *c, const fri_agg_config *ac)
{
    if (ac->stats_latest || ac->stats_forget < 1.0f) {
        return "a tree of aggregators does not carry item statistics "
               "across rounds yet (latest or carried statistics, the "
               "defaults with partial cohorts): run every device every "
               "round, or give --algo grad, or --algo als --stats-forget 1";
    }
    if (ac->dp != FRI_AGG_DP_OFF || c->priv.dp) {
        return "DP noise across a tree of aggregators is not implemented";
    }
    if (c->buffer > 0) {
        return "buffered mode is not available in a tree of aggregators";
    }
    if (c->new_items > 0 || c->report_cold_start || c->state_dir != NULL ||
        c->priv.attack != 0 || c->priv.pseudo_rho > 0.0f ||
        c->poison.kind != FRI_SIM_POISON_NONE) {
        return "--new-items, --report cold-start, --state, attacks, "
               "pseudo-items and poisoning run in one process only";
    }
    return NULL;
}

fr_err
fri_sim_tree_create(fri_sim_tree **out, const fri_sim_config *c,
    fri_agg_config *ac, size_t cohort, uint8_t server_pk[FR_PUBLICKEYBYTES],
    char *err, size_t err_cap)
{
    *out                  = NULL;
    const fr_sim_group *g = c->group;
    if (g == NULL || g->size == 0 || g->rank >= g->size || g->bcast == NULL
        || g->gather == NULL || g->barrier == NULL) {
        return fail(err, err_cap, FR_EINVAL,
            "needs a process group: run fedrec-sim --mpi under mpirun");
    }
    const char *why = unsupported(c, ac);
    if (why != NULL) {
        return fail(err, err_cap, FR_EINVAL, why);
    }
    fri_sim_tree *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return FR_ENOMEM;
    }
    t->g           = g;
    t->deadline_ms = ac->round_deadline_ms;
    atomic_init(&t->root_ms, 1000);
    // Edges serve the root's signed F32 frame byte for byte.
    ac->model_format = FRI_AGG_MF_FP32;
    fr_err  e        = FR_OK;
    char    aerr[256];
    uint8_t root_pk[FR_PUBLICKEYBYTES + 256]; // root key | its url
    uint8_t *creds = calloc(g->size, FRI_CRED_LEN);
    if (creds == NULL) {
        free(t);
        return FR_ENOMEM;
    }
    memset(root_pk, 0, sizeof(root_pk));
    if (g->rank == 0) {
        // The root: the edges are its cohort, enrolled by key, each
        // holding a root-signed credential for its devices.
        fri_agg_config rc = *ac;
        uint8_t       *allow = calloc(g->size, FRI_AGG_KEYBYTES);
        fri_identity   root, edge;
        memset(&root, 0, sizeof(root));
        fri_sim_identity_seed(c->seed, 0, rc.identity_seed);
        rc.has_identity      = 1;
        // Robust bounds act per device, at the edges (each from its own
        // devices' history); the root sees sums.
        rc.robust            = 0;
        // Secure aggregation runs within each edge's cohort; the root
        // takes the edges' unmasked sums.
        rc.secagg            = FRI_AGG_SECAGG_OFF;
        rc.root_max_devices  = (uint32_t)(cohort > 0 ? cohort : 1);
        rc.clients_per_round = g->size;
        rc.fraction          = 0.0;
        rc.min_clients       = 1;
        rc.max_sessions      = 4 * g->size + 64;
        rc.session_ttl_ms    = rc.round_deadline_ms;
        rc.allow             = allow;
        rc.n_allow           = g->size;
        e = allow == NULL ? FR_ENOMEM
                          : fri_identity_from_seed(&root, rc.identity_seed);
        for (uint32_t q = 0; e == FR_OK && q < g->size; q++) {
            uint8_t     s[32];
            fri_pubkeys ep;
            fri_sim_identity_seed(c->seed, 1 + q, s);
            e = fri_identity_from_seed(&edge, s);
            if (e == FR_OK) {
                fri_identity_pub(&ep, &edge);
                memcpy(allow + (size_t)q * FRI_AGG_KEYBYTES, edge.kx_pk,
                    FRI_AGG_KEYBYTES);
                e = fri_cred_make(creds + (size_t)q * FRI_CRED_LEN, &root, &ep,
                    (uint64_t)time(NULL) + 7 * 86400u);
                fri_identity_wipe(&edge);
            }
            sodium_memzero(s, sizeof(s));
        }
        fri_identity_wipe(&root);
        if (e == FR_OK) {
            e = fri_agg_create(
                &t->root, &rc, root_clock(t), aerr, sizeof(aerr));
            if (e != FR_OK) {
                snprintf(err, err_cap, "--mpi: root: %s", aerr);
            }
        }
        sodium_memzero(rc.identity_seed, sizeof(rc.identity_seed));
        free(allow); // the root keeps its own copy
        char bound[256] = "";
        if (e == FR_OK) {
            const char *host = c->mpi_host != NULL ? c->mpi_host : "127.0.0.1";
            e = fri_sim_server_start(&t->srv, t->root,
                c->mpi_host != NULL ? "tcp://0.0.0.0:0" : "tcp://127.0.0.1:0",
                4, root_clock, t, bound, sizeof(bound), aerr, sizeof(aerr));
            const char *port = strrchr(bound, ':');
            if (e != FR_OK || port == NULL) {
                snprintf(err, err_cap, "--mpi: root server: %s",
                    e != FR_OK ? aerr : bound);
                e = e != FR_OK ? e : FR_ENET;
            } else {
                snprintf((char *)root_pk + FR_PUBLICKEYBYTES, 256,
                    "tcp://%s%s", host, port);
                fri_agg_public_key(t->root, root_pk);
            }
        }
    }
    // Every rank learns whether rank 0 is up, the root's key and url and
    // its own credential.
    uint8_t ok = e == FR_OK;
    if (g->bcast(g->ctx, &ok, 1) != 0
        || (ok && (g->bcast(g->ctx, root_pk, sizeof(root_pk)) != 0
                   || g->bcast(g->ctx, creds, (size_t)g->size * FRI_CRED_LEN)
                       != 0))) {
        e = FR_ENET;
        snprintf(err, err_cap, "--mpi: a collective failed");
    } else if (!ok && e == FR_OK) {
        e = FR_ESTATE;
        snprintf(err, err_cap, "--mpi: rank 0 could not start the root");
    }
    if (e != FR_OK) {
        free(creds);
        fri_sim_tree_destroy(t);
        return e;
    }
    memcpy(server_pk, root_pk, FR_PUBLICKEYBYTES);
    snprintf(t->url, sizeof(t->url), "%s", (char *)root_pk + FR_PUBLICKEYBYTES);
    ac->edge = 1;
    memcpy(ac->upstream_pk, root_pk, FR_PUBLICKEYBYTES);
    memcpy(ac->edge_cred, creds + (size_t)g->rank * FRI_CRED_LEN,
        FRI_CRED_LEN);
    ac->has_edge_cred = 1;
    free(creds);
    fri_sim_identity_seed(c->seed, 1 + g->rank, ac->identity_seed);
    ac->has_identity = 1;
    t->lens          = calloc(g->size, sizeof(size_t));
    if (t->lens == NULL) {
        fri_sim_tree_destroy(t);
        return FR_ENOMEM;
    }
    *out = t;
    return FR_OK;
}

fr_err
fri_sim_tree_link(fri_sim_tree *t, fri_agg *edge, char *err, size_t err_cap)
{
    t->edge = edge;
    char   uerr[256];
    fr_err e = fri_uplink_open(
        &t->up, edge, t->url, t->deadline_ms / 10, uerr, sizeof(uerr));
    if (e != FR_OK) {
        snprintf(err, err_cap, "--mpi: uplink: %s", uerr);
    }
    return e;
}

void
fri_sim_tree_destroy(fri_sim_tree *t)
{
    if (t == NULL) {
        return;
    }
    fri_uplink_stop(t->up);
    fri_sim_server_stop(t->srv);
    fri_agg_destroy(t->root);
    free(t->lens);
    free(t);
}

uint32_t
fri_sim_tree_rank(const fri_sim_tree *t)
{
    return t->g->rank;
}

static size_t
shard_of(uint32_t rank, uint32_t size, const uint32_t *users, size_t n,
    uint32_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (users[i] % size == rank) {
            if (out != NULL) {
                out[m] = users[i];
            }
            m++;
        }
    }
    return m;
}

size_t
fri_sim_tree_shard(const fri_sim_tree *t, const uint32_t *users, size_t n,
    uint32_t *out)
{
    return shard_of(t->g->rank, t->g->size, users, n, out);
}

fr_err
fri_sim_tree_open(fri_sim_tree *t, uint64_t round, uint64_t now_ms,
    char *err, size_t err_cap)
{
    for (uint32_t waited = 0; waited < TREE_OPEN_WAIT_MS;) {
        uint64_t served  = 0;
        int      waiting = fri_agg_edge_waiting(t->edge, &served);
        if (served == round && !waiting) {
            return FR_OK;
        }
        if (served > round || (served == round && waiting)) {
            snprintf(err, err_cap,
                "--mpi: the edge of rank %u serves round %llu, not %llu",
                t->g->rank, (unsigned long long)served,
                (unsigned long long)round);
            return FR_ESTATE;
        }
        uint32_t retry = 0;
        fr_err   e     = fri_uplink_step(t->up, now_ms, &retry);
        if (e != FR_OK) {
            nng_msleep(2); // the root opens it once every edge reported
            waited += 2;
        }
    }
    snprintf(err, err_cap, "--mpi: the root did not open round %llu",
        (unsigned long long)round);
    return FR_ETIMEDOUT;
}

fr_err
fri_sim_tree_close(fri_sim_tree *t, uint64_t round, uint64_t now_ms,
    int *outcome, char *err, size_t err_cap)
{
    *outcome          = 0;
    uint64_t served   = 0;
    fr_err   e        = FR_OK;
    if (!fri_agg_edge_waiting(t->edge, &served) || served != round) {
        snprintf(err, err_cap, "--mpi: the edge did not close round %llu",
            (unsigned long long)round);
        e = FR_ESTATE;
    }
    // Sends the sums (FR_ESTATE after that: the root's next round is not
    // open before every edge reported); transport errors are retried.
    for (int tries = 0; e == FR_OK && tries < 100; tries++) {
        uint32_t retry = 0;
        fr_err   s     = fri_uplink_step(t->up, now_ms, &retry);
        if (s == FR_OK || s == FR_ESTATE) {
            break;
        }
        nng_msleep(retry > 0 && retry < 1000 ? retry : 100);
    }
    if (t->g->barrier(t->g->ctx) != 0) {
        e = FR_ENET;
    }
    int32_t res = e == FR_OK ? 0 : -1;
    if (t->g->rank == 0 && e == FR_OK) {
        // Every edge that had sums sent them: the root closed the round,
        // or waits for an edge that had none until its deadline.
        fri_agg_metrics m;
        fri_agg_metrics_get(t->root, &m);
        for (int k = 0; k < 8
             && m.rounds_completed + m.rounds_abandoned
                 == t->root_done + t->root_lost;
             k++) {
            atomic_fetch_add(&t->root_ms, t->deadline_ms + 1);
            fri_agg_tick(t->root, root_clock(t));
            fri_agg_metrics_get(t->root, &m);
        }
        res = m.rounds_completed > t->root_done  ? 1
            : m.rounds_abandoned > t->root_lost ? 2
                                                : -1;
        t->root_done = m.rounds_completed;
        t->root_lost = m.rounds_abandoned;
    }
    if (t->g->bcast(t->g->ctx, &res, sizeof(res)) != 0) {
        res = -1;
    }
    if (res < 0) {
        if (err_cap > 0 && err[0] == '\0') {
            snprintf(err, err_cap, "--mpi: the root did not close round %llu",
                (unsigned long long)round);
        }
        return e != FR_OK ? e : FR_ESTATE;
    }
    *outcome = res;
    return FR_OK;
}

fr_err
fri_sim_tree_gather(fri_sim_tree *t, const uint32_t *users, size_t n,
    const void *local, size_t n_local, size_t elem, uint32_t *g_users,
    void *g_out, size_t *n_all)
{
    const fr_sim_group *g = t->g;
    *n_all                = 0;
    if (g->rank == 0) {
        size_t m = 0;
        for (uint32_t q = 0; q < g->size; q++) {
            size_t k   = shard_of(q, g->size, users, n, g_users + m);
            t->lens[q] = k * elem;
            m += k;
        }
        *n_all = m;
    }
    return g->gather(g->ctx, local, n_local * elem, g_out, t->lens) == 0
        ? FR_OK
        : FR_ENET;
}

fr_err
fri_sim_tree_sum(fri_sim_tree *t, const uint64_t *v, size_t n, uint64_t *sum)
{
    const fr_sim_group *g   = t->g;
    uint64_t           *all = NULL;
    if (g->rank == 0) {
        all = calloc((size_t)g->size * n, sizeof(uint64_t));
        if (all == NULL) {
            return FR_ENOMEM; // the other ranks then fail in a collective
        }
        for (uint32_t q = 0; q < g->size; q++) {
            t->lens[q] = n * sizeof(uint64_t);
        }
    }
    int rc = g->gather(g->ctx, v, n * sizeof(uint64_t), all, t->lens);
    for (size_t j = 0; rc == 0 && all != NULL && j < n; j++) {
        sum[j] = 0;
        for (uint32_t q = 0; q < g->size; q++) {
            sum[j] += all[(size_t)q * n + j];
        }
    }
    free(all);
    return rc == 0 ? FR_OK : FR_ENET;
}
