// The closer: what ends a round, on the closer thread or (direct API)
// synchronously in the call that ended it. Waits for in-flight updates,
// solves the new model from the round's sums (solve.c), refuses it unless
// it passes the sanity check, commits it, counts the DP release, writes
// the checkpoint, and builds the signed MODEL frame of the next round.
// Opening that round is the round state's (agg.c), which calls in here.
#include "agg_int.h"

#include <stdlib.h>
#include <string.h>

#include "accumulate.h"
#include "keymap.h"
#include "ledger.h"
#include "bounds.h"
#include "ckpt.h"
#include "closer.h"
#include "dp.h"
#include "edge_sums.h"
#include "errbuf.h"
#include "grow.h"
#include "log.h"
#include "snap.h"
#include "solve.h"
#include "vbmf.h"

static int
cmp_item(const void *x, const void *y)
{
    uint32_t p = *(const uint32_t *) x, q = *(const uint32_t *) y;
    return (p > q) - (p < q);
}

// The carried statistics into c (arrays malloc'd; the caller frees them),
// items in increasing order. Closer only.
static fr_err
carry_state(fri_agg *a, fri_ckpt *c)
{
    const fri_stats *st = &a->stats;
    uint32_t         n  = st->carry != NULL ? st->n_carried : 0;
    c->acc_len          = (uint32_t) a->acc_len;
    c->n_carried        = n;
    c->carry_sum        = st->carry_sum;
    c->carry_count      = st->carry_count;
    // The global block: VBMF's latest one, or iALS's carried Gram.
    const int igram     = a->cfg.implicit && st->carry_gram != NULL;
    c->n_glob           = a->vb != NULL ? (uint32_t) fri_vb_latest_len(a->vb)
                          : igram       ? (uint32_t) a->gram_len
                                        : 0;
    c->carried          = malloc((n > 0 ? n : 1) * sizeof(uint32_t));
    c->carry = malloc((n > 0 ? (size_t) n * a->acc_len : 1) * sizeof(float));
    c->glob  = malloc((c->n_glob > 0 ? c->n_glob : 1) * sizeof(double));
    if (c->carried == NULL || c->carry == NULL || c->glob == NULL) {
        return FR_ENOMEM;
    }
    if (n > 0) {
        memcpy(c->carried, st->carried, n * sizeof(uint32_t));
        qsort(c->carried, n, sizeof(uint32_t), cmp_item);
    }
    for (uint32_t j = 0; j < n; j++) {
        memcpy(c->carry + (size_t) j * a->acc_len, st->carry[c->carried[j]],
               a->acc_len * sizeof(float));
    }
    if (c->n_glob > 0 && a->vb != NULL) {
        fri_vb_latest_get(a->vb, c->glob);
    } else if (igram) {
        for (size_t t = 0; t < a->gram_len; t++) {
            c->glob[t] = st->carry_gram[t];
        }
    }
    return FR_OK;
}

static fr_err
checkpoint(fri_agg *a, uint64_t round, char *err, size_t err_cap)
{
    if (a->state_dir == NULL) {
        return FR_OK;
    }
    fri_ckpt c;
    memset(&c, 0, sizeof(c));
    fri_agg_fingerprint(a, a->cfg.n_items, c.fingerprint);
    c.version    = a->model.version;
    c.round      = round;
    c.next_round = a->rs.next_round;
    c.n_items    = a->cfg.n_items;
    c.k          = a->cfg.k;
    c.mu         = a->model.mu;
    c.bi         = a->model.bi;
    c.Q          = a->model.Q;
    c.opt        = (uint32_t) a->cfg.server_opt;
    c.opt_t      = a->opt.opt_t;
    pthread_mutex_lock(&a->rs.mtx);
    c.dp_rounds = a->dp.dp_rounds;
    c.n_rdp     = a->dp.dp_rounds > 0 ? FRI_DP_N_ORDERS : 0;
    memcpy(c.rdp, a->dp.dp_acc.rdp, sizeof(a->dp.dp_acc.rdp));
    pthread_mutex_unlock(&a->rs.mtx);
    if (a->vb != NULL) {
        // Closer only: the state is stable between solves.
        c.n_vb = fri_vb_state_len(a->vb);
        c.vb   = malloc((size_t) c.n_vb * sizeof(float));
        if (c.vb == NULL) {
            fri_agg_seterr(err, err_cap, "checkpoint: out of memory");
            return FR_ENOMEM;
        }
        fri_vb_state_get(a->vb, c.vb);
    }
    if (a->opt.opt_m != NULL) {
        c.opt_len      = (uint64_t) a->cfg.n_items * a->d;
        c.opt_state[0] = a->opt.opt_m;
        c.n_opt        = 1;
        if (a->opt.opt_v != NULL) {
            c.opt_state[1] = a->opt.opt_v;
            c.n_opt        = 2;
        }
    }
    if (a->stats.carry != NULL || (a->vb != NULL && fri_vb_latest_len(a->vb) > 0)) {
        // What devices' latest-statistics deltas are taken against: without
        // it a restarted aggregator would add their next deltas to nothing.
        fr_err sv = carry_state(a, &c);
        if (sv != FR_OK) {
            free(c.vb);
            fri_agg_seterr(err, err_cap, "checkpoint: out of memory");
            return sv;
        }
    }
    if (a->rs.ledger != NULL) {
        // Closer only, between rounds: nothing is staged or read.
        size_t need = 0;
        fr_err sz   = fri_ledger_save(a->rs.ledger, NULL, 0, &need);
        (void)sz; // FR_ENOSPC: the size needed is in need
        c.ledger = malloc(need);
        if (c.ledger == NULL
            || fri_ledger_save(a->rs.ledger, c.ledger, need, &need) != FR_OK) {
            free(c.ledger);
            free(c.vb);
            free(c.carried);
            free(c.carry);
            free(c.glob);
            fri_agg_seterr(err, err_cap, "checkpoint: out of memory");
            return FR_ENOMEM;
        }
        c.ledger_len = need;
    }
    pthread_mutex_lock(&a->rs.mtx);
    size_t na = fri_keymap_count(a->rs.applied);
    if (na > 0) {
        c.applied_keys   = malloc(na * 32);
        c.applied_rounds = malloc(na * sizeof(uint64_t));
        if (c.applied_keys != NULL && c.applied_rounds != NULL
            && fri_keymap_export(
                   a->rs.applied, c.applied_keys, c.applied_rounds, na)
                == FR_OK) {
            c.n_applied = (uint32_t) na;
        }
    }
    pthread_mutex_unlock(&a->rs.mtx);
    fr_err rv = na > 0 && c.n_applied == 0
                    ? FR_ENOMEM
                    : fri_ckpt_write(a->state_dir, &c, err, err_cap);
    if (rv == FR_ENOMEM) {
        fri_agg_seterr(err, err_cap, "checkpoint: out of memory");
    }
    free(c.applied_keys);
    free(c.applied_rounds);
    free(c.ledger);
    free(c.vb);
    free(c.carried);
    free(c.carry);
    free(c.glob);
    return rv;
}

// Latest statistics under secure aggregation: round, completed with its
// model kept, is the last applied one of each of its survivors (keymap.h).
// Under mtx.
static void
commit_applied(fri_agg *a, uint64_t round)
{
    if (a->rs.applied == NULL || a->rs.sa_out_round != round) {
        return;
    }
    uint32_t lost = 0;
    for (uint32_t j = 0; j < a->rs.sa_out_n; j++) {
        lost += fri_keymap_set(a->rs.applied,
                    a->rs.sa_out_pk + (size_t)j * FRI_AGG_KEYBYTES, round)
            != FR_OK;
    }
    if (lost > 0) {
        // Those devices drop an unresolved pending delta (keymap.h).
        fri_agg_log(a, FR_LOG_WARN,
            "msg=\"applied rounds not recorded\" round=%llu "
            "devices=%u recorded=%zu",
            (unsigned long long)round, lost, fri_keymap_count(a->rs.applied));
    }
}

// Latest statistics, plain: the round's staged standing contributions
// become the ledger's if its sums entered the running sum (keep), else
// they are dropped (ledger.h).
static void
settle_ledger(fri_agg *a, uint64_t round, int keep)
{
    if (a->rs.ledger == NULL) {
        return;
    }
    pthread_mutex_lock(&a->rs.ledger_mtx);
    fr_err rv = fri_ledger_settle(a->rs.ledger, keep);
    pthread_mutex_unlock(&a->rs.ledger_mtx);
    if (rv != FR_OK) {
        // Those devices are put back in step on their next report.
        fri_agg_log(a, FR_LOG_ERROR,
            "msg=\"standing contributions not all recorded\" "
            "round=%llu err=%s",
            (unsigned long long)round, fr_errname(rv));
    }
}

static void
wait_inflight(fri_agg *a)
{
    pthread_mutex_lock(&a->rs.mtx);
    while (a->rs.n_inflight > 0) {
        pthread_cond_wait(&a->rs.cond, &a->rs.mtx);
    }
    pthread_mutex_unlock(&a->rs.mtx);
}

// What the closer saves before a solve so that a refused model leaves no
// trace: the optimizer state (stepped in place) and the VBMF state.
typedef struct solve_backup {
    float   *opt_m, *opt_v;
    uint64_t opt_t;
    float   *vb;
} solve_backup;

static fr_err
backup_take(fri_agg *a, solve_backup *b)
{
    memset(b, 0, sizeof(*b));
    size_t ol = (size_t) a->cfg.n_items * a->d;
    b->opt_t  = a->opt.opt_t;
    if (a->opt.opt_m != NULL) {
        b->opt_m = malloc(ol * sizeof(float));
        if (b->opt_m == NULL) {
            return FR_ENOMEM;
        }
        memcpy(b->opt_m, a->opt.opt_m, ol * sizeof(float));
    }
    if (a->opt.opt_v != NULL) {
        b->opt_v = malloc(ol * sizeof(float));
        if (b->opt_v == NULL) {
            return FR_ENOMEM;
        }
        memcpy(b->opt_v, a->opt.opt_v, ol * sizeof(float));
    }
    if (a->vb != NULL) {
        b->vb = malloc(fri_vb_state_len(a->vb) * sizeof(float));
        if (b->vb == NULL) {
            return FR_ENOMEM;
        }
        fri_vb_state_get(a->vb, b->vb);
    }
    return FR_OK;
}

// Undoes a solve: optimizer and VBMF state back, carried statistics (which
// the refused round already folded in) dropped; they rebuild from the next
// rounds as after a restart.
static void
backup_restore(fri_agg *a, const solve_backup *b)
{
    size_t ol = (size_t) a->cfg.n_items * a->d;
    a->opt.opt_t  = b->opt_t;
    if (b->opt_m != NULL) {
        memcpy(a->opt.opt_m, b->opt_m, ol * sizeof(float));
    }
    if (b->opt_v != NULL) {
        memcpy(a->opt.opt_v, b->opt_v, ol * sizeof(float));
    }
    if (b->vb != NULL) {
        // The saved state was valid when taken: this cannot fail.
        fr_err e = fri_vb_state_set(a->vb, b->vb, fri_vb_state_len(a->vb));
        (void) e;
    }
    if (a->stats.carry != NULL) {
        for (uint32_t j = 0; j < a->stats.n_carried; j++) {
            free(a->stats.carry[a->stats.carried[j]]);
            a->stats.carry[a->stats.carried[j]] = NULL;
        }
        a->stats.n_carried   = 0;
        a->stats.carry_sum   = 0.0;
        a->stats.carry_count = 0.0;
    }
}

static void
backup_free(solve_backup *b)
{
    free(b->opt_m);
    free(b->opt_v);
    free(b->vb);
    memset(b, 0, sizeof(*b));
}

// An edge does not solve: it keeps the round's sums for the root
// (fri_agg_edge_take) and serves the root's model, which opens its next
// round. A round that summed nothing hands out nothing.
static void
edge_forward(fri_agg *a)
{
    uint32_t reported;
    uint64_t round;
    pthread_mutex_lock(&a->rs.mtx);
    reported = a->rs.n_reported;
    round    = a->rs.round;
    pthread_mutex_unlock(&a->rs.mtx);
    fri_agg_sums s;
    fr_err       rv = fri_edge_sums_take(a, round, reported, &s);
    fri_agg_acc_reset(a);
    pthread_mutex_lock(&a->rs.mtx);
    if (rv == FR_OK) {
        fri_agg_sums_free(&a->tree.out);
        a->tree.out     = s;
        a->tree.has_out = 1;
        a->rs.rounds_completed++;
        a->rs.last_completed = round;
    } else {
        a->rs.rounds_abandoned++;
    }
    pthread_mutex_unlock(&a->rs.mtx);
    fri_agg_log(a, rv == FR_OK ? FR_LOG_INFO : FR_LOG_WARN,
                "msg=\"%s\" round=%llu clients=%u items=%u err=%s",
                rv == FR_OK ? "round forwarded" : "round not forwarded",
                (unsigned long long) round, reported,
                rv == FR_OK ? s.n_rows : 0, fr_errname(rv));
}

// Completes the round (exclusive closer). The new model must pass the
// sanity check (bounds.h) before it is committed; under DP it is served
// only once a checkpoint holds the accounting of its rounds.
void
fri_closer_close(fri_agg *a)
{
    wait_inflight(a);
    if (a->cfg.edge) {
        edge_forward(a);
        return;
    }
    const size_t nq = (size_t) a->cfg.n_items * a->cfg.k;
    uint32_t     reported;
    uint64_t     round;
    pthread_mutex_lock(&a->rs.mtx);
    reported = a->rs.n_reported;
    round    = a->rs.round;
    pthread_mutex_unlock(&a->rs.mtx);

    float        mu = a->model.mu;
    float       *bi = malloc((size_t) a->cfg.n_items * sizeof(float));
    float       *Q  = malloc(nq * sizeof(float));
    solve_backup bk;
    fr_err       rv = backup_take(a, &bk);
    if (rv == FR_OK && (bi == NULL || Q == NULL)) {
        rv = FR_ENOMEM;
    }
    if (rv == FR_OK) {
        memcpy(bi, a->model.bi, (size_t) a->cfg.n_items * sizeof(float));
        memcpy(Q, a->model.Q, nq * sizeof(float));
        rv = fri_agg_solve(a, round, &mu, bi, Q);
    }
    uint32_t n_items_touched = a->sums.n_touched;
    fri_agg_acc_reset(a);
    char why[256];
    int  refused = rv == FR_OK &&
                  fri_bounds_model(&a->cfg, mu, a->model.mu, bi, Q, why,
                                   sizeof(why)) != 0;
    if (rv != FR_OK || refused) {
        backup_restore(a, &bk);
        backup_free(&bk);
        settle_ledger(a, round, 0);
        free(bi);
        free(Q);
        pthread_mutex_lock(&a->rs.mtx);
        a->rs.rounds_abandoned++;
        pthread_mutex_unlock(&a->rs.mtx);
        if (refused) {
            atomic_fetch_add(&a->ctr.models_refused, 1);
            fri_agg_log(a, FR_LOG_ERROR,
                        "msg=\"new model refused, previous model kept\" "
                        "round=%llu reason=\"%s\" alert=1",
                        (unsigned long long) round, why);
        } else {
            fri_agg_log(a, FR_LOG_ERROR,
                        "msg=\"round solve failed, round abandoned\" "
                        "round=%llu err=%s",
                        (unsigned long long) round, fr_errname(rv));
        }
        return;
    }
    backup_free(&bk);
    pthread_mutex_lock(&a->rs.mtx);
    int      dp_fail = 0;
    float   *obi = a->model.bi, *oQ = a->model.Q;
    float    omu = a->model.mu;
    uint64_t over = a->model.version;
    a->model.bi        = bi;
    a->model.Q         = Q;
    a->model.mu        = mu;
    a->model.version++;
    a->rs.rounds_completed++;
    a->rs.last_completed = round;
    commit_applied(a, round);
    settle_ledger(a, round, 1);
    if (a->cfg.dp != FRI_AGG_DP_OFF) {
        // One more release of the subsampled Gaussian mechanism. q and z
        // were validated at create, so this cannot fail; if it did, the
        // accountant would be left unchanged and the epsilon understated,
        // hence the loud log below.
        if (fri_dp_accountant_add(&a->dp.dp_acc, a->dp.dp_q,
                                  a->cfg.noise_multiplier, 1) == FR_OK) {
            a->dp.dp_rounds++;
        } else {
            dp_fail = 1;
        }
        if (a->state_dir != NULL && !a->model.held) {
            // Serve the previous model until the checkpoint below holds
            // this round's accounting (released on success).
            a->model.held        = 1;
            a->model.pub_mu      = omu;
            a->model.pub_bi      = obi;
            a->model.pub_Q       = oQ;
            a->model.pub_version = over;
            obi = oQ = NULL;
        }
    }
    if (a->cfg.rounds > 0 && a->rs.rounds_completed >= a->cfg.rounds) {
        atomic_store(&a->rs.done, 1);
    }
    pthread_mutex_unlock(&a->rs.mtx);
    free(obi);
    free(oQ);
    if (dp_fail) {
        fri_agg_log(a, FR_LOG_ERROR,
                    "msg=\"privacy accountant failed; epsilon understated\" "
                    "round=%llu",
                    (unsigned long long) round);
    }
    fri_agg_log(a, FR_LOG_INFO,
                "msg=\"round closed\" round=%llu clients=%u items=%u "
                "model_version=%llu mu=%.4f",
                (unsigned long long) round, reported, n_items_touched,
                (unsigned long long) a->model.version, (double) mu);
    char   err[512];
    fr_err ck = checkpoint(a, round, err, sizeof(err));
    pthread_mutex_lock(&a->rs.mtx);
    a->rs.outcome_round = round;
    pthread_mutex_unlock(&a->rs.mtx);
    if (ck != FR_OK) {
        atomic_fetch_add(&a->ctr.ckpt_failures, 1);
        fri_agg_log(a, FR_LOG_ERROR,
                    "msg=\"checkpoint failed\" round=%llu model_version=%llu "
                    "held=%d alert=1 detail=\"%s\"",
                    (unsigned long long) round,
                    (unsigned long long) a->model.version,
                    a->cfg.dp != FRI_AGG_DP_OFF, err);
    } else {
        pthread_mutex_lock(&a->rs.mtx);
        float *pbi = a->model.pub_bi, *pQ = a->model.pub_Q;
        a->model.held    = 0;
        a->model.pub_bi  = NULL;
        a->model.pub_Q   = NULL;
        pthread_mutex_unlock(&a->rs.mtx);
        free(pbi);
        free(pQ);
    }
}

void
fri_closer_abandon(fri_agg *a, const char *why)
{
    wait_inflight(a);
    uint32_t reported;
    uint64_t round;
    pthread_mutex_lock(&a->rs.mtx);
    reported = a->rs.n_reported;
    round    = a->rs.round;
    a->rs.rounds_abandoned++;
    pthread_mutex_unlock(&a->rs.mtx);
    fri_agg_acc_reset(a);
    settle_ledger(a, round, 0);
    fri_agg_log(a, FR_LOG_WARN,
                "msg=\"round abandoned\" round=%llu clients=%u min_clients=%u "
                "reason=%s",
                (unsigned long long) round, reported, a->cfg.min_clients, why);
}

// The signed MODEL frame of round id for the served model (exclusive
// closer/opener); NULL when out of memory, without a frame (logged) when
// it cannot be built.
fri_snap *
fri_closer_snap(fri_agg *a, uint64_t id)
{
    fri_snap *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        atomic_init(&s->refs, 1);
        s->version = a->model.held ? a->model.pub_version : a->model.version;
        s->round   = id;
        fr_err rv  = fri_agg_snap_frame(a, s);
        if (rv != FR_OK) {
            fri_agg_log(a, FR_LOG_ERROR,
                        "msg=\"cannot build model frame\" round=%llu err=%s",
                        (unsigned long long) id, fr_errname(rv));
        }
    }
    return s;
}
