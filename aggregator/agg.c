// Aggregator core: rounds and cohorts (check-in, submit, close, abandon,
// the closer thread), checkpoints, create/destroy. Configuration is in
// config.c, metrics in metrics.c, accumulation in accumulate.c, the
// end-of-round solve in solve.c.
#include "agg_int.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "bounds.h"
#include "ckpt.h"
#include "dp.h"
#include "errbuf.h"
#include "linalg.h"
#include "mf.h"
#include "rng.h"
#include "robust.h"
#include "secagg_als.h"
#include "vbmf.h"

void
fri_agg_log(const fri_agg *a, fr_log_level lv, const char *fmt, ...)
{
    if (a->cfg.log == NULL || lv > a->cfg.log_level) {
        return;
    }
    char    buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    a->cfg.log(a->cfg.log_ctx, lv, buf);
}

// ---- snapshots ------------------------------------------------------------

void
fri_snap_unref(fri_snap *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1) {
        free(s->frame);
        free(s);
    }
}

fri_snap *
fri_agg_snap_get(fri_agg *a)
{
    pthread_mutex_lock(&a->mtx);
    fri_snap *s = a->snap;
    if (s != NULL) {
        atomic_fetch_add(&s->refs, 1);
    }
    pthread_mutex_unlock(&a->mtx);
    return s;
}

// ---- cohort hash set ------------------------------------------------------

// Client keys are chosen by clients (with open enrolment, by anyone): a
// hash keyed with a secret per-process key keeps probe chains short even
// for keys picked to collide. Slot order is never observable.
static uint8_t        pk_hash_key[crypto_shorthash_KEYBYTES];
static pthread_once_t pk_hash_once = PTHREAD_ONCE_INIT;

static void
pk_hash_init(void)
{
    crypto_shorthash_keygen(pk_hash_key);
}

static uint32_t
pk_hash(const uint8_t *pk)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, pk, FRI_AGG_KEYBYTES, pk_hash_key);
    return (uint32_t) h[0] | ((uint32_t) h[1] << 8) |
           ((uint32_t) h[2] << 16) | ((uint32_t) h[3] << 24);
}

// Slot of pk, or the empty slot where it would go. Table never full.
static fri_slot *
slot_find(fri_agg *a, const uint8_t *pk)
{
    uint32_t mask = a->slot_cap - 1;
    for (uint32_t i = pk_hash(pk) & mask;; i = (i + 1) & mask) {
        fri_slot *s = &a->slots[i];
        if (s->state == SLOT_EMPTY ||
            memcmp(s->pk, pk, FRI_AGG_KEYBYTES) == 0) {
            return s;
        }
    }
}

// Makes room for one more member (load <= 1/2). Under mtx.
static fr_err
slot_reserve(fri_agg *a)
{
    if ((uint64_t) (a->n_members + 1) * 2 <= a->slot_cap) {
        return FR_OK;
    }
    if (a->slot_cap >= (1u << 30)) {
        return FR_ETOOBIG;
    }
    uint32_t  ncap = a->slot_cap * 2;
    fri_slot *ns   = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        return FR_ENOMEM;
    }
    fri_slot *old  = a->slots;
    uint32_t  ocap = a->slot_cap;
    a->slots       = ns;
    a->slot_cap    = ncap;
    for (uint32_t i = 0; i < ocap; i++) {
        if (old[i].state != SLOT_EMPTY) {
            *slot_find(a, old[i].pk) = old[i];
        }
    }
    free(old);
    return FR_OK;
}

static void
slots_clear(fri_agg *a)
{
    memset(a->slots, 0, (size_t) a->slot_cap * sizeof(*a->slots));
    a->n_members  = 0;
    a->n_reported = 0;
    a->n_refused  = 0;
}

// Seeded Bernoulli(fraction) draw per (round, key): the same client gets
// the same answer however often it checks in during a round.
static int
sampled(const fri_agg *a, const uint8_t *pk)
{
    if (a->cfg.fraction <= 0.0 || a->cfg.fraction >= 1.0) {
        return 1;
    }
    uint8_t h[8];
    crypto_shorthash(h, pk, FRI_AGG_KEYBYTES, a->sel_key);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | h[i];
    }
    return (double) (v >> 11) * (1.0 / 9007199254740992.0) < a->cfg.fraction;
}

static fr_err
checkpoint(fri_agg *a, uint64_t round, char *err, size_t err_cap)
{
    if (a->state_dir == NULL) {
        return FR_OK;
    }
    fri_ckpt c;
    memset(&c, 0, sizeof(c));
    memcpy(c.fingerprint, a->fingerprint, sizeof(c.fingerprint));
    c.version    = a->version;
    c.round      = round;
    c.next_round = a->next_round;
    c.n_items    = a->cfg.n_items;
    c.k          = a->cfg.k;
    c.mu         = a->mu;
    c.bi         = a->bi;
    c.Q          = a->Q;
    c.opt        = (uint32_t) a->cfg.server_opt;
    c.opt_t      = a->opt_t;
    pthread_mutex_lock(&a->mtx);
    c.dp_rounds = a->dp_rounds;
    c.n_rdp     = a->dp_rounds > 0 ? FRI_DP_N_ORDERS : 0;
    memcpy(c.rdp, a->dp_acc.rdp, sizeof(a->dp_acc.rdp));
    pthread_mutex_unlock(&a->mtx);
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
    if (a->opt_m != NULL) {
        c.opt_len      = (uint64_t) a->cfg.n_items * a->d;
        c.opt_state[0] = a->opt_m;
        c.n_opt        = 1;
        if (a->opt_v != NULL) {
            c.opt_state[1] = a->opt_v;
            c.n_opt        = 2;
        }
    }
    fr_err rv = fri_ckpt_write(a->state_dir, &c, err, err_cap);
    free(c.vb);
    return rv;
}

// Opens the next round (or finishes). Caller is the exclusive closer:
// state is RS_CLOSING and no update is in flight.
static void
open_round(fri_agg *a, uint64_t now_ms)
{
    fri_snap *s = calloc(1, sizeof(*s));
    uint64_t  id = a->next_round++;
    if (s != NULL) {
        atomic_init(&s->refs, 1);
        s->version = a->held ? a->pub_version : a->version;
        s->round   = id;
        fr_err rv  = fri_agg_snap_frame(a, s);
        if (rv != FR_OK) {
            fri_agg_log(a, FR_LOG_ERROR,
                        "msg=\"cannot build model frame\" round=%llu err=%s",
                        (unsigned long long) id, fr_errname(rv));
        }
    }
    pthread_mutex_lock(&a->mtx);
    fri_snap *old = a->snap;
    a->snap       = s;
    slots_clear(a);
    randombytes_buf(a->sel_key, sizeof(a->sel_key));
    a->round       = id;
    a->opened_ms   = now_ms;
    a->deadline_ms = now_ms + a->cfg.round_deadline_ms;
    fri_sa_round_open(a, now_ms);
    if (atomic_load(&a->done)) {
        a->state = RS_DONE;
    } else {
        a->state = RS_OPEN;
    }
    pthread_mutex_unlock(&a->mtx);
    fri_snap_unref(old);
    fri_agg_log(a, FR_LOG_INFO,
                "msg=\"round opened\" round=%llu model_version=%llu "
                "deadline_ms=%llu",
                (unsigned long long) id,
                (unsigned long long) (a->held ? a->pub_version : a->version),
                (unsigned long long) a->cfg.round_deadline_ms);
}

static void
wait_inflight(fri_agg *a)
{
    pthread_mutex_lock(&a->mtx);
    while (a->n_inflight > 0) {
        pthread_cond_wait(&a->cond, &a->mtx);
    }
    pthread_mutex_unlock(&a->mtx);
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
    b->opt_t  = a->opt_t;
    if (a->opt_m != NULL) {
        b->opt_m = malloc(ol * sizeof(float));
        if (b->opt_m == NULL) {
            return FR_ENOMEM;
        }
        memcpy(b->opt_m, a->opt_m, ol * sizeof(float));
    }
    if (a->opt_v != NULL) {
        b->opt_v = malloc(ol * sizeof(float));
        if (b->opt_v == NULL) {
            return FR_ENOMEM;
        }
        memcpy(b->opt_v, a->opt_v, ol * sizeof(float));
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
    a->opt_t  = b->opt_t;
    if (b->opt_m != NULL) {
        memcpy(a->opt_m, b->opt_m, ol * sizeof(float));
    }
    if (b->opt_v != NULL) {
        memcpy(a->opt_v, b->opt_v, ol * sizeof(float));
    }
    if (b->vb != NULL) {
        // The saved state was valid when taken: this cannot fail.
        fr_err e = fri_vb_state_set(a->vb, b->vb, fri_vb_state_len(a->vb));
        (void) e;
    }
    if (a->carry != NULL) {
        for (uint32_t j = 0; j < a->n_carried; j++) {
            free(a->carry[a->carried[j]]);
            a->carry[a->carried[j]] = NULL;
        }
        a->n_carried   = 0;
        a->carry_sum   = 0.0;
        a->carry_count = 0.0;
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

// Completes the round (exclusive closer). The new model must pass the
// sanity check (bounds.h) before it is committed; under DP it is served
// only once a checkpoint holds the accounting of its rounds.
static void
close_round(fri_agg *a, uint64_t now_ms)
{
    wait_inflight(a);
    const size_t nq = (size_t) a->cfg.n_items * a->cfg.k;
    uint32_t     reported;
    uint64_t     round;
    pthread_mutex_lock(&a->mtx);
    reported = a->n_reported;
    round    = a->round;
    pthread_mutex_unlock(&a->mtx);

    float        mu = a->mu;
    float       *bi = malloc((size_t) a->cfg.n_items * sizeof(float));
    float       *Q  = malloc(nq * sizeof(float));
    solve_backup bk;
    fr_err       rv = backup_take(a, &bk);
    if (rv == FR_OK && (bi == NULL || Q == NULL)) {
        rv = FR_ENOMEM;
    }
    if (rv == FR_OK) {
        memcpy(bi, a->bi, (size_t) a->cfg.n_items * sizeof(float));
        memcpy(Q, a->Q, nq * sizeof(float));
        rv = fri_agg_solve(a, round, &mu, bi, Q);
    }
    uint32_t n_items_touched = a->n_touched;
    fri_agg_acc_reset(a);
    char why[256];
    int  refused = rv == FR_OK &&
                  fri_bounds_model(&a->cfg, mu, a->mu, bi, Q, why,
                                   sizeof(why)) != 0;
    if (rv != FR_OK || refused) {
        backup_restore(a, &bk);
        backup_free(&bk);
        free(bi);
        free(Q);
        pthread_mutex_lock(&a->mtx);
        a->rounds_abandoned++;
        pthread_mutex_unlock(&a->mtx);
        if (refused) {
            atomic_fetch_add(&a->models_refused, 1);
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
        open_round(a, now_ms);
        return;
    }
    backup_free(&bk);
    pthread_mutex_lock(&a->mtx);
    int      dp_fail = 0;
    float   *obi = a->bi, *oQ = a->Q;
    float    omu = a->mu;
    uint64_t over = a->version;
    a->bi        = bi;
    a->Q         = Q;
    a->mu        = mu;
    a->version++;
    a->rounds_completed++;
    a->last_completed = round;
    if (a->cfg.dp != FRI_AGG_DP_OFF) {
        // One more release of the subsampled Gaussian mechanism. q and z
        // were validated at create, so this cannot fail; if it did, the
        // accountant would be left unchanged and the epsilon understated,
        // hence the loud log below.
        if (fri_dp_accountant_add(&a->dp_acc, a->dp_q,
                                  a->cfg.noise_multiplier, 1) == FR_OK) {
            a->dp_rounds++;
        } else {
            dp_fail = 1;
        }
        if (a->state_dir != NULL && !a->held) {
            // Serve the previous model until the checkpoint below holds
            // this round's accounting (released on success).
            a->held        = 1;
            a->pub_mu      = omu;
            a->pub_bi      = obi;
            a->pub_Q       = oQ;
            a->pub_version = over;
            obi = oQ = NULL;
        }
    }
    if (a->cfg.rounds > 0 && a->rounds_completed >= a->cfg.rounds) {
        atomic_store(&a->done, 1);
    }
    pthread_mutex_unlock(&a->mtx);
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
                (unsigned long long) a->version, (double) mu);
    char   err[512];
    fr_err ck = checkpoint(a, round, err, sizeof(err));
    if (ck != FR_OK) {
        atomic_fetch_add(&a->ckpt_failures, 1);
        fri_agg_log(a, FR_LOG_ERROR,
                    "msg=\"checkpoint failed\" round=%llu model_version=%llu "
                    "held=%d alert=1 detail=\"%s\"",
                    (unsigned long long) round,
                    (unsigned long long) a->version,
                    a->cfg.dp != FRI_AGG_DP_OFF, err);
    } else {
        pthread_mutex_lock(&a->mtx);
        float *pbi = a->pub_bi, *pQ = a->pub_Q;
        a->held    = 0;
        a->pub_bi  = NULL;
        a->pub_Q   = NULL;
        pthread_mutex_unlock(&a->mtx);
        free(pbi);
        free(pQ);
    }
    open_round(a, now_ms);
}

static void
abandon_round(fri_agg *a, uint64_t now_ms, const char *why)
{
    wait_inflight(a);
    uint32_t reported;
    uint64_t round;
    pthread_mutex_lock(&a->mtx);
    reported = a->n_reported;
    round    = a->round;
    a->rounds_abandoned++;
    pthread_mutex_unlock(&a->mtx);
    fri_agg_acc_reset(a);
    fri_agg_log(a, FR_LOG_WARN,
                "msg=\"round abandoned\" round=%llu clients=%u min_clients=%u "
                "reason=%s",
                (unsigned long long) round, reported, a->cfg.min_clients, why);
    open_round(a, now_ms);
}

// Ends the round the caller moved to RS_CLOSING: at once, or (with the
// closer thread) by handing it over, so that an I/O callback returns
// without waiting for a solve or an fsync. Only one round is ever
// closing, so at most one hand-over is pending.
static void
end_round(fri_agg *a, uint64_t now_ms, int act, const char *why)
{
    if (!a->closer_started) {
        if (act == 1) {
            close_round(a, now_ms);
        } else {
            abandon_round(a, now_ms, why);
        }
        return;
    }
    pthread_mutex_lock(&a->closer_mtx);
    a->close_act    = act;
    a->close_why    = why;
    a->close_now_ms = now_ms;
    pthread_cond_signal(&a->closer_cond);
    pthread_mutex_unlock(&a->closer_mtx);
}

static void *
closer_main(void *arg)
{
    fri_agg *a = arg;
    pthread_mutex_lock(&a->closer_mtx);
    for (;;) {
        while (a->close_act == 0 && !a->closer_quit) {
            pthread_cond_wait(&a->closer_cond, &a->closer_mtx);
        }
        if (a->close_act == 0) {
            break; // quitting with nothing pending
        }
        int         act = a->close_act;
        const char *why = a->close_why;
        uint64_t    now = a->close_now_ms;
        a->close_act    = 0;
        pthread_mutex_unlock(&a->closer_mtx);
        if (act == 1) {
            close_round(a, now);
        } else {
            abandon_round(a, now, why);
        }
        pthread_mutex_lock(&a->closer_mtx);
    }
    pthread_mutex_unlock(&a->closer_mtx);
    return NULL;
}

// Finishes a pending close, then stops the thread.
static void
closer_join(fri_agg *a)
{
    if (!a->closer_started) {
        return;
    }
    pthread_mutex_lock(&a->closer_mtx);
    a->closer_quit = 1;
    pthread_cond_signal(&a->closer_cond);
    pthread_mutex_unlock(&a->closer_mtx);
    pthread_join(a->closer, NULL);
    a->closer_started = 0;
}

void
fri_agg_close_round(fri_agg *a, uint64_t now_ms)
{
    end_round(a, now_ms, 1, NULL);
}

void
fri_agg_abandon_round(fri_agg *a, uint64_t now_ms, const char *why)
{
    end_round(a, now_ms, 2, why);
}

// ---- rounds: public entry points ------------------------------------------

static int
allowed(const fri_agg *a, const uint8_t *pk)
{
    if (a->cfg.n_allow == 0) {
        return 1;
    }
    size_t lo = 0, hi = a->cfg.n_allow;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int    c = memcmp(a->allow + mid * FRI_AGG_KEYBYTES, pk,
                          FRI_AGG_KEYBYTES);
        if (c == 0) {
            return 1;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}

int
fri_agg_allowed(const fri_agg *a, const uint8_t pk[FRI_AGG_KEYBYTES])
{
    return allowed(a, pk);
}

fr_err
fri_agg_checkin(fri_agg *a, uint64_t now_ms,
                const uint8_t pk[FRI_AGG_KEYBYTES], fri_agg_task *task)
{
    memset(task, 0, sizeof(*task));
    task->retry_after_ms = a->cfg.retry_after_ms;
    if (!allowed(a, pk)) {
        fri_agg_reject_count(a, FRI_REJ_DENIED);
        return FR_EDENIED;
    }
    atomic_fetch_add(&a->checkins, 1);
    pthread_mutex_lock(&a->mtx);
    if (a->state != RS_OPEN) {
        pthread_mutex_unlock(&a->mtx);
        return FR_OK;
    }
    uint64_t left = a->deadline_ms > now_ms ? a->deadline_ms - now_ms : 0;
    // Non-selected clients come back when this round should be over.
    uint32_t later = (uint32_t) (left + 100 < a->cfg.retry_after_ms
                                     ? a->cfg.retry_after_ms
                                     : (left + 100 > UINT32_MAX ? UINT32_MAX
                                                                : left + 100));
    fri_slot *s = slot_find(a, pk);
    if (s->state == SLOT_EMPTY) {
        int full = a->cfg.clients_per_round > 0 &&
                   a->n_members >= a->cfg.clients_per_round;
        if (full || !sampled(a, pk) || slot_reserve(a) != FR_OK) {
            pthread_mutex_unlock(&a->mtx);
            task->retry_after_ms = later;
            return FR_OK;
        }
        s = slot_find(a, pk); // the table may have grown
        memcpy(s->pk, pk, FRI_AGG_KEYBYTES);
        s->state = SLOT_MEMBER;
        a->n_members++;
        if (a->sa != NULL) {
            s->sa_index = fri_sa_join(a, pk);
        }
    } else if (s->state != SLOT_MEMBER) {
        // Already contributed (or contributing) to this round. The round
        // may close well before its deadline (when everyone reported), so
        // such clients poll at the normal interval rather than waiting out
        // the deadline and missing most of the next round.
        pthread_mutex_unlock(&a->mtx);
        task->retry_after_ms = a->cfg.retry_after_ms;
        return FR_OK;
    }
    task->has_task      = 1;
    task->round         = a->round;
    task->model_version = a->held ? a->pub_version : a->version;
    task->deadline_ms   = a->deadline_ms;
    task->ms_left       = (uint32_t) (left > UINT32_MAX ? UINT32_MAX : left);
    if (a->sa != NULL) {
        fri_sa_task(a, s->sa_index, task);
    }
    pthread_mutex_unlock(&a->mtx);
    return FR_OK;
}

int
fri_agg_is_member(fri_agg *a, const uint8_t pk[FRI_AGG_KEYBYTES],
                  uint64_t round)
{
    pthread_mutex_lock(&a->mtx);
    int ok = a->state == RS_OPEN && a->round == round &&
             slot_find(a, pk)->state == SLOT_MEMBER;
    pthread_mutex_unlock(&a->mtx);
    return ok;
}

// Whether everyone who joined the round is done (under mtx): then it
// closes without waiting for its deadline. 0 none, 1 close, 2 abandon.
static int
all_done_act(const fri_agg *a)
{
    if (a->state != RS_OPEN || a->cfg.clients_per_round == 0 ||
        a->n_members < a->cfg.clients_per_round ||
        a->n_reported + a->n_refused < a->n_members) {
        return 0;
    }
    return a->n_reported >= a->cfg.min_clients ? 1 : 2;
}

// A member of the open round sent an update that failed validation: it is
// done for the round, so that a device sending garbage cannot hold every
// round open until its deadline.
static void
member_refused(fri_agg *a, uint64_t now_ms,
               const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round)
{
    pthread_mutex_lock(&a->mtx);
    int act = 0;
    if (a->state == RS_OPEN && round == a->round) {
        fri_slot *s = slot_find(a, pk);
        if (s->state == SLOT_MEMBER) {
            s->state = SLOT_REFUSED;
            a->n_refused++;
            act = all_done_act(a);
            if (act != 0) {
                a->state = RS_CLOSING;
            }
        }
    }
    pthread_mutex_unlock(&a->mtx);
    if (act != 0) {
        end_round(a, now_ms, act, "every member reported or was refused");
    }
}

fr_err
fri_agg_submit(fri_agg *a, uint64_t now_ms,
               const uint8_t pk[FRI_AGG_KEYBYTES], const fri_agg_update *u)
{
    if (a->sa != NULL) {
        // Under secure aggregation only masked vectors are accepted.
        fri_agg_reject_count(a, FRI_REJ_STATE);
        return FR_ESTATE;
    }
    int    oob = 0;
    fr_err rv  = fri_agg_validate(a, u, &oob);
    if (rv != FR_OK) {
        fri_agg_reject_count(a, oob ? FRI_REJ_BOUNDS : FRI_REJ_MALFORMED);
        member_refused(a, now_ms, pk, u->round);
        return rv;
    }
    pthread_mutex_lock(&a->mtx);
    if (a->state != RS_OPEN || u->round != a->round) {
        int future = a->state == RS_OPEN && u->round > a->round;
        pthread_mutex_unlock(&a->mtx);
        // An id the aggregator never issued is not "late" but wrong.
        fri_agg_reject_count(a, future ? FRI_REJ_STATE : FRI_REJ_LATE);
        return future ? FR_ESTATE : FR_ELATE;
    }
    fri_slot *s = slot_find(a, pk);
    if (s->state == SLOT_EMPTY) {
        pthread_mutex_unlock(&a->mtx);
        fri_agg_reject_count(a, FRI_REJ_NOT_MEMBER);
        return FR_EDENIED;
    }
    if (s->state != SLOT_MEMBER) {
        pthread_mutex_unlock(&a->mtx);
        fri_agg_reject_count(a, FRI_REJ_DUP);
        return FR_EDUP;
    }
    s->state = SLOT_INFLIGHT;
    a->n_inflight++;
    fri_agg_update_fn hook     = a->upd_hook;
    void             *hook_ctx = a->upd_hook_ctx;
    pthread_mutex_unlock(&a->mtx);
    if (hook != NULL) {
        hook(hook_ctx, pk, u);
    }

    rv = fri_agg_acc_add(a, u);

    pthread_mutex_lock(&a->mtx);
    s = slot_find(a, pk); // the table may have grown meanwhile
    s->state = rv == FR_OK ? SLOT_REPORTED : SLOT_MEMBER;
    a->n_inflight--;
    if (a->n_inflight == 0) {
        pthread_cond_broadcast(&a->cond);
    }
    int close = 0;
    if (rv == FR_OK) {
        a->n_reported++;
        close = all_done_act(a);
        if (close != 0) {
            a->state = RS_CLOSING;
        }
    }
    pthread_mutex_unlock(&a->mtx);
    if (rv != FR_OK) {
        return rv;
    }
    atomic_fetch_add(&a->accepted, 1);
    if (close != 0) {
        end_round(a, now_ms, close, "every member reported or was refused");
    }
    return FR_OK;
}

void
fri_agg_tick(fri_agg *a, uint64_t now_ms)
{
    fri_sessions_expire(a, now_ms);
    if (a->sa != NULL) {
        fri_sa_tick(a, now_ms);
        return;
    }
    pthread_mutex_lock(&a->mtx);
    int act = 0; // 1 close, 2 abandon
    if (a->state == RS_OPEN && now_ms >= a->deadline_ms) {
        // In-flight updates will be counted: they were accepted in time.
        act      = a->n_reported + a->n_inflight >= a->cfg.min_clients ? 1 : 2;
        a->state = RS_CLOSING;
    }
    pthread_mutex_unlock(&a->mtx);
    if (act != 0) {
        end_round(a, now_ms, act, "deadline");
    }
}

void
fri_agg_stop(fri_agg *a, uint64_t now_ms)
{
    atomic_store(&a->done, 1);
    pthread_mutex_lock(&a->mtx);
    int act  = a->state == RS_OPEN;
    if (act) {
        a->state = RS_CLOSING;
    }
    pthread_mutex_unlock(&a->mtx);
    if (act) {
        abandon_round(a, now_ms, "shutdown");
    }
}

int
fri_agg_done(const fri_agg *a)
{
    return atomic_load(&((fri_agg *) a)->done) != 0;
}

void
fri_agg_set_release_hook(fri_agg *a, fri_agg_release_fn fn, void *ctx)
{
    pthread_mutex_lock(&a->mtx);
    a->dp_hook     = fn;
    a->dp_hook_ctx = ctx;
    pthread_mutex_unlock(&a->mtx);
}

void
fri_agg_set_update_hook(fri_agg *a, fri_agg_update_fn fn, void *ctx)
{
    pthread_mutex_lock(&a->mtx);
    a->upd_hook     = fn;
    a->upd_hook_ctx = ctx;
    pthread_mutex_unlock(&a->mtx);
}

void
fri_agg_model_copy(fri_agg *a, float *mu, float *bi, size_t bi_len, float *Q,
                   size_t Q_len, uint64_t *version)
{
    size_t nb = a->cfg.n_items;
    size_t nq = nb * a->cfg.k;
    pthread_mutex_lock(&a->mtx);
    // The released model (under DP, possibly an older one: close_round).
    const float *sbi = a->held ? a->pub_bi : a->bi;
    const float *sQ  = a->held ? a->pub_Q : a->Q;
    if (mu != NULL) {
        *mu = a->held ? a->pub_mu : a->mu;
    }
    if (bi != NULL) {
        memcpy(bi, sbi, (bi_len < nb ? bi_len : nb) * sizeof(float));
    }
    if (Q != NULL) {
        memcpy(Q, sQ, (Q_len < nq ? Q_len : nq) * sizeof(float));
    }
    if (version != NULL) {
        *version = a->held ? a->pub_version : a->version;
    }
    pthread_mutex_unlock(&a->mtx);
}

// Model arrays of the current version for the frame builder (exclusive
// closer/opener only).
void
fri_agg_model_view(const fri_agg *a, float *mu, const float **bi,
                   const float **Q)
{
    *mu = a->held ? a->pub_mu : a->mu;
    *bi = a->held ? a->pub_bi : a->bi;
    *Q  = a->held ? a->pub_Q : a->Q;
}

// ---- create / destroy ---------------------------------------------------

static void
fingerprint(fri_agg *a)
{
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    memcpy(buf, "fedrec-agg-1", 12);
    uint32_t v[5] = {a->cfg.n_items, a->cfg.k, (uint32_t) a->cfg.algo,
                     (uint32_t) a->cfg.implicit,
                     a->cfg.algo == FRI_AGG_GRAD ? (uint32_t) a->cfg.server_opt
                                                 : 0u};
    for (int i = 0; i < 5; i++) {
        buf[12 + 4 * i]     = (uint8_t) v[i];
        buf[12 + 4 * i + 1] = (uint8_t) (v[i] >> 8);
        buf[12 + 4 * i + 2] = (uint8_t) (v[i] >> 16);
        buf[12 + 4 * i + 3] = (uint8_t) (v[i] >> 24);
    }
    crypto_generichash(a->fingerprint, sizeof(a->fingerprint), buf,
                       sizeof(buf), NULL, 0);
}

static int
cmp_key(const void *x, const void *y)
{
    return memcmp(x, y, FRI_AGG_KEYBYTES);
}

// Semantic check of a loaded checkpoint: the model it holds must pass the
// same sanity check as a freshly solved one (a poisoned model saved by an
// older version, or a file forged with a valid checksum, is refused and the
// previous checkpoint tried). Shape mismatches are reported by init_model.
static int
ckpt_check(void *ctx, const fri_ckpt *c, char *why, size_t why_cap)
{
    const fri_agg *a = ctx;
    if (c->n_items != a->cfg.n_items || c->k != a->cfg.k) {
        return 0;
    }
    // mu 0 is the initial model's (no rating seen yet).
    return fri_bounds_model(&a->cfg, c->mu, 0.0f, c->bi, c->Q, why, why_cap);
}

static fr_err
init_model(fri_agg *a, char *err, size_t err_cap)
{
    const size_t nq = (size_t) a->cfg.n_items * a->cfg.k;
    a->bi = calloc(a->cfg.n_items, sizeof(float));
    a->Q  = malloc(nq * sizeof(float));
    if (a->cfg.algo == FRI_AGG_GRAD && a->cfg.server_opt != FRI_AGG_OPT_SGD) {
        a->opt_m = calloc((size_t) a->cfg.n_items * a->d, sizeof(float));
        if (a->cfg.server_opt == FRI_AGG_OPT_ADAM) {
            a->opt_v = calloc((size_t) a->cfg.n_items * a->d, sizeof(float));
        }
    }
    if (a->bi == NULL || a->Q == NULL ||
        (a->cfg.algo == FRI_AGG_GRAD && a->cfg.server_opt != FRI_AGG_OPT_SGD &&
         a->opt_m == NULL) ||
        (a->cfg.server_opt == FRI_AGG_OPT_ADAM && a->cfg.algo == FRI_AGG_GRAD &&
         a->opt_v == NULL)) {
        fri_agg_seterr(err, err_cap, "out of memory for the model");
        return FR_ENOMEM;
    }
    fri_rng r;
    fri_rng_seed2(&r, a->cfg.seed, 0x4147u); // same stream for a given seed
    if (a->cfg.algo == FRI_AGG_VBMF) {
        // fri_mf_init's item stream: the federated run starts from the
        // items fri_train_vbmf starts from (same seed).
        fri_rng_seed2(&r, a->cfg.seed, 2);
    }
    for (size_t i = 0; i < nq; i++) {
        a->Q[i] = (float) (fri_rng_normal(&r) * a->cfg.init_std);
    }
    a->mu         = 0.0f;
    a->version    = 0;
    a->next_round = 1;
    if (a->state_dir == NULL) {
        return FR_OK;
    }
    fri_ckpt c;
    int      used_prev = 0;
    char     why[1024];
    fr_err   rv = fri_ckpt_load_checked(a->state_dir, &c, &used_prev,
                                        ckpt_check, a, why, sizeof(why));
    if (rv == FR_ENOENT) {
        fri_agg_log(a, FR_LOG_INFO,
                    "msg=\"no checkpoint, fresh model\" state=\"%s\"",
                    a->state_dir);
        return FR_OK;
    }
    if (rv != FR_OK) {
        fri_agg_seterr(err, err_cap, "%s", why);
        return rv;
    }
    if (used_prev) {
        fri_agg_log(a, FR_LOG_WARN, "msg=\"current checkpoint refused\" "
                                    "detail=\"%s\"",
                    why);
    }
    if (memcmp(c.fingerprint, a->fingerprint, sizeof(c.fingerprint)) != 0 ||
        c.n_items != a->cfg.n_items || c.k != a->cfg.k) {
        fri_agg_seterr(err, err_cap,
            "checkpoint in %s was made for another model (items=%u k=%u "
            "or another algo/loss/server-opt); use a new --state dir",
            a->state_dir, c.n_items, c.k);
        fri_ckpt_free(&c);
        return FR_ESTATE;
    }
    size_t ol = (size_t) a->cfg.n_items * a->d;
    if ((a->opt_m != NULL && (c.n_opt < 1 || c.opt_len != ol)) ||
        (a->opt_v != NULL && (c.n_opt < 2 || c.opt_len != ol))) {
        fri_agg_seterr(err, err_cap, "checkpoint in %s lacks optimizer state",
            a->state_dir);
        fri_ckpt_free(&c);
        return FR_EFORMAT;
    }
    if (a->vb != NULL && c.version > 0 &&
        (c.n_vb == 0 ||
         fri_vb_state_set(a->vb, c.vb, (size_t) c.n_vb) != FR_OK)) {
        fri_agg_seterr(err, err_cap,
            "checkpoint in %s lacks a valid VBMF state", a->state_dir);
        fri_ckpt_free(&c);
        return FR_EFORMAT;
    }
    memcpy(a->bi, c.bi, (size_t) a->cfg.n_items * sizeof(float));
    memcpy(a->Q, c.Q, nq * sizeof(float));
    if (a->opt_m != NULL) {
        memcpy(a->opt_m, c.opt_state[0], ol * sizeof(float));
    }
    if (a->opt_v != NULL) {
        memcpy(a->opt_v, c.opt_state[1], ol * sizeof(float));
    }
    a->opt_t          = c.opt_t;
    a->mu             = c.mu;
    if (c.n_rdp == FRI_DP_N_ORDERS) {
        // Privacy already spent before the restart keeps counting.
        memcpy(a->dp_acc.rdp, c.rdp, sizeof(a->dp_acc.rdp));
        a->dp_rounds = c.dp_rounds;
    } else if (a->cfg.dp != FRI_AGG_DP_OFF && c.version > 0) {
        fri_agg_log(a, FR_LOG_WARN,
                    "msg=\"checkpoint has no privacy accountant; earlier "
                    "rounds were not noised and are not counted\"");
    }
    a->version        = c.version;
    a->last_completed = c.round;
    // Rounds completed before the restart count towards cfg.rounds.
    a->rounds_completed = c.version;
    a->next_round = c.next_round > c.round ? c.next_round : c.round + 1;
    fri_agg_log(a, FR_LOG_INFO,
                "msg=\"checkpoint loaded\" state=\"%s\" round=%llu "
                "model_version=%llu prev=%d",
                a->state_dir, (unsigned long long) c.round,
                (unsigned long long) c.version, used_prev);
    fri_ckpt_free(&c);
    return FR_OK;
}

fr_err
fri_agg_create(fri_agg **out, const fri_agg_config *cfg, uint64_t now_ms,
               char *err, size_t err_cap)
{
    *out      = NULL;
    fr_err rv = fri_agg_config_check(cfg, err, err_cap);
    if (rv != FR_OK) {
        return rv;
    }
    if (sodium_init() < 0) {
        fri_agg_seterr(err, err_cap, "libsodium initialisation failed");
        return FR_EINTERNAL;
    }
    pthread_once(&pk_hash_once, pk_hash_init);
    fri_agg *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        fri_agg_seterr(err, err_cap, "out of memory");
        return FR_ENOMEM;
    }
    a->cfg      = *cfg;
    a->d        = cfg->k + 1;
    a->gram_len = cfg->implicit ? fri_packed_len(cfg->k)
                                : fri_packed_len(a->d);
    a->acc_len  = cfg->algo == FRI_AGG_GRAD ? a->d
                  : cfg->implicit           ? a->gram_len + cfg->k
                                            : a->gram_len + a->d;
    pthread_mutex_init(&a->mtx, NULL);
    pthread_mutex_init(&a->acc_mtx, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->state    = RS_CLOSING;
    a->slot_cap = 64;
    a->slots    = calloc(a->slot_cap, sizeof(*a->slots));
    a->acc      = calloc(cfg->n_items, sizeof(double *));
    a->accf     = calloc(cfg->n_items, sizeof(float *));
    a->touched  = malloc((size_t) cfg->n_items * sizeof(uint32_t));
    if (cfg->implicit) {
        a->gram_all  = calloc(a->gram_len, sizeof(double));
        a->gram_allf = calloc(a->gram_len, sizeof(float));
    }
    if (cfg->algo == FRI_AGG_VBMF &&
        fri_vb_create(&a->vb, cfg->n_items, cfg->k, 0.0f, 0.0f, 0.0f) !=
            FR_OK) {
        a->vb = NULL; // reported with the other allocations below
    }
    if (cfg->n_allow > 0) {
        a->allow = malloc(cfg->n_allow * FRI_AGG_KEYBYTES);
        if (a->allow != NULL) {
            memcpy(a->allow, cfg->allow, cfg->n_allow * FRI_AGG_KEYBYTES);
            qsort(a->allow, cfg->n_allow, FRI_AGG_KEYBYTES, cmp_key);
        }
    }
    a->cfg.allow     = a->allow;
    a->cfg.state_dir = NULL;
    fri_dp_accountant_init(&a->dp_acc);
    if (cfg->dp != FRI_AGG_DP_OFF) {
        a->dp_cohort = fri_agg_dp_expected_cohort(cfg);
        a->dp_q      = a->dp_cohort / (double) cfg->population;
    }
    if (cfg->state_dir != NULL && cfg->state_dir[0] != 0) {
        a->state_dir = strdup(cfg->state_dir);
        if (a->state_dir != NULL) {
            struct stat st;
            if (stat(a->state_dir, &st) != 0 &&
                mkdir(a->state_dir, 0700) != 0 && errno != EEXIST) {
                fri_agg_seterr(err, err_cap, "state dir %s: cannot create: %s",
                    a->state_dir, strerror(errno));
                fri_agg_destroy(a);
                return FR_EIO;
            }
            if (stat(a->state_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
                fri_agg_seterr(err, err_cap, "state dir %s: not a directory",
                    a->state_dir);
                fri_agg_destroy(a);
                return FR_EIO;
            }
        }
        a->cfg.state_dir = a->state_dir;
    }
    if (a->slots == NULL || a->acc == NULL || a->accf == NULL ||
        a->touched == NULL ||
        (cfg->implicit && (a->gram_all == NULL || a->gram_allf == NULL)) ||
        (cfg->algo == FRI_AGG_VBMF && a->vb == NULL) ||
        (cfg->n_allow > 0 && a->allow == NULL) ||
        (cfg->state_dir != NULL && cfg->state_dir[0] != 0 &&
         a->state_dir == NULL)) {
        fri_agg_seterr(err, err_cap, "out of memory");
        fri_agg_destroy(a);
        return FR_ENOMEM;
    }
    fingerprint(a);
    rv = fri_agg_identity_init(a);
    if (rv == FR_OK) {
        rv = fri_sessions_create(a);
    }
    if (rv != FR_OK) {
        fri_agg_seterr(err, err_cap, "identity/session setup failed: %s",
            fr_strerror(rv));
        fri_agg_destroy(a);
        return rv;
    }
    rv = init_model(a, err, err_cap);
    if (rv != FR_OK) {
        fri_agg_destroy(a);
        return rv;
    }
    // Statistical bounds need whole contributions; latest statistics are
    // changes of them (hard delta bounds only, bounds.c).
    if (cfg->robust && !cfg->stats_latest &&
        fri_robust_create(&a->robust, cfg) != FR_OK) {
        fri_agg_seterr(err, err_cap, "out of memory");
        fri_agg_destroy(a);
        return FR_ENOMEM;
    }
    rv = fri_sa_create(a, err, err_cap);
    if (rv != FR_OK) {
        fri_agg_seterr(err, err_cap, "secure aggregation setup failed: %s",
            fr_strerror(rv));
        fri_agg_destroy(a);
        return rv;
    }
    if (cfg->rounds > 0 && a->rounds_completed >= cfg->rounds) {
        atomic_store(&a->done, 1);
    }
    open_round(a, now_ms);
    pthread_mutex_init(&a->closer_mtx, NULL);
    pthread_cond_init(&a->closer_cond, NULL);
    a->closer_ready = 1;
    if (cfg->closer_thread) {
        if (pthread_create(&a->closer, NULL, closer_main, a) != 0) {
            fri_agg_seterr(err, err_cap, "cannot start the closer thread");
            fri_agg_destroy(a);
            return FR_EINTERNAL;
        }
        a->closer_started = 1;
    }
    *out = a;
    return FR_OK;
}

void
fri_agg_destroy(fri_agg *a)
{
    if (a == NULL) {
        return;
    }
    if (a->closer_ready) {
        closer_join(a);
        pthread_mutex_destroy(&a->closer_mtx);
        pthread_cond_destroy(&a->closer_cond);
    }
    fri_sessions_destroy(a);
    fri_sa_destroy(a);
    if (a->acc != NULL) {
        for (uint32_t j = 0; j < a->n_touched; j++) {
            free(a->acc[a->touched[j]]);
            if (a->accf != NULL) {
                free(a->accf[a->touched[j]]);
            }
        }
    }
    free(a->acc);
    free(a->accf);
    free(a->pub_bi);
    free(a->pub_Q);
    if (a->carry != NULL) {
        for (uint32_t j = 0; j < a->n_carried; j++) {
            free(a->carry[a->carried[j]]);
        }
    }
    free(a->carry);
    free(a->carried);
    free(a->touched);
    free(a->gram_all);
    free(a->gram_allf);
    fri_vb_destroy(a->vb);
    fri_robust_destroy(a->robust);
    free(a->slots);
    free(a->allow);
    free(a->state_dir);
    free(a->bi);
    free(a->Q);
    free(a->opt_m);
    free(a->opt_v);
    fri_snap_unref(a->snap);
    fri_identity_wipe(&a->id);
    sodium_memzero(a->cfg.identity_seed, sizeof(a->cfg.identity_seed));
    pthread_mutex_destroy(&a->mtx);
    pthread_mutex_destroy(&a->acc_mtx);
    pthread_cond_destroy(&a->cond);
    free(a);
}

void
fri_agg_public_key(const fri_agg *a, uint8_t pk[FR_PUBLICKEYBYTES])
{
    memcpy(pk, a->pk, FR_PUBLICKEYBYTES);
}
