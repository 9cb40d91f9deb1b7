// Round state: the cohort of the open round (sampling, membership, who
// reported), the plain rounds' check-in and submit, deadlines, opening the
// next round, and the hand-over of a round that must end to the closer
// (closer.c; on the closer thread when cfg.closer_thread). The secure
// rounds' phases are in sa.c, which reports their outcome here.
#include "agg_int.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "accumulate.h"
#include "bounds.h"
#include "closer.h"
#include "grow.h"
#include "counters.h"
#include "edge_sums.h"
#include "journal.h"
#include "ledger.h"
#include "log.h"
#include "rounds.h"
#include "sa.h"
#include "snap.h"
#include "upstream.h"
#include "vbmf.h"

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
    uint32_t mask = a->rs.slot_cap - 1;
    for (uint32_t i = pk_hash(pk) & mask;; i = (i + 1) & mask) {
        fri_slot *s = &a->rs.slots[i];
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
    if ((uint64_t) (a->rs.n_members + 1) * 2 <= a->rs.slot_cap) {
        return FR_OK;
    }
    if (a->rs.slot_cap >= (1u << 30)) {
        return FR_ETOOBIG;
    }
    uint32_t  ncap = a->rs.slot_cap * 2;
    fri_slot *ns   = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        return FR_ENOMEM;
    }
    fri_slot *old  = a->rs.slots;
    uint32_t  ocap = a->rs.slot_cap;
    a->rs.slots       = ns;
    a->rs.slot_cap    = ncap;
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
    memset(a->rs.slots, 0, (size_t) a->rs.slot_cap * sizeof(*a->rs.slots));
    a->rs.n_members  = 0;
    a->rs.n_reported = 0;
    a->rs.n_refused  = 0;
}

static int
buffered(const fri_agg *a)
{
    return a->cfg.buffer > 0;
}

// Buffered mode, opening round `id`: the slots of devices whose task may
// still report (task round >= id - max_staleness) carry over as members;
// the buffer's reporters and refused devices start afresh. Under mtx.
static void
slots_carry(fri_agg *a, uint64_t id)
{
    const uint64_t S  = a->cfg.max_staleness;
    uint32_t       kept = 0;
    // In place: collect the kept slots at the front, then re-insert them.
    for (uint32_t i = 0; i < a->rs.slot_cap; i++) {
        fri_slot s = a->rs.slots[i];
        a->rs.slots[i].state = SLOT_EMPTY;
        if (s.state == SLOT_MEMBER && s.task_round + S >= id) {
            a->rs.slots[kept++] = s;
        }
    }
    fri_slot *tmp = kept > 0 ? malloc((size_t) kept * sizeof(*tmp)) : NULL;
    if (kept > 0 && tmp == NULL) {
        kept = 0; // out of memory: those tasks are refused, devices retry
    }
    if (kept > 0) {
        memcpy(tmp, a->rs.slots, (size_t) kept * sizeof(*tmp));
    }
    memset(a->rs.slots, 0, (size_t) a->rs.slot_cap * sizeof(*a->rs.slots));
    for (uint32_t j = 0; j < kept; j++) {
        *slot_find(a, tmp[j].pk) = tmp[j];
    }
    free(tmp);
    a->rs.n_members  = kept;
    a->rs.n_reported = 0;
    a->rs.n_refused  = 0;
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
    crypto_shorthash(h, pk, FRI_AGG_KEYBYTES, a->rs.sel_key);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | h[i];
    }
    return (double) (v >> 11) * (1.0 / 9007199254740992.0) < a->cfg.fraction;
}

// ---- opening and ending rounds, the closer thread -----------------------

// Opens the next round (or finishes). Caller is the exclusive closer:
// state is RS_CLOSING and no update is in flight.
static void
open_round(fri_agg *a, uint64_t now_ms)
{
    uint64_t  id = a->rs.next_round++;
    fri_snap *s  = fri_closer_snap(a, id);
    pthread_mutex_lock(&a->rs.mtx);
    fri_snap *old = a->model.snap;
    a->model.snap       = s;
    if (buffered(a)) {
        slots_carry(a, id);
        fri_round_info *h =
            &a->rs.hist[id % ((uint64_t) a->cfg.max_staleness + 1)];
        h->round   = id;
        h->version = a->model.version;
        h->mu      = a->model.mu;
    } else {
        slots_clear(a);
    }
    randombytes_buf(a->rs.sel_key, sizeof(a->rs.sel_key));
    a->rs.round       = id;
    a->rs.opened_ms   = now_ms;
    a->rs.deadline_ms = now_ms + a->cfg.round_deadline_ms;
    fri_sa_round_open(a, now_ms);
    if (atomic_load(&a->rs.done)) {
        a->rs.state = RS_DONE;
    } else {
        a->rs.state = RS_OPEN;
    }
    pthread_mutex_unlock(&a->rs.mtx);
    fri_snap_unref(old);
    if (a->cfg.edge) {
        return; // an edge's rounds open from the root's model (logged there)
    }
    fri_agg_log(a, FR_LOG_INFO,
                "msg=\"round opened\" round=%llu model_version=%llu "
                "deadline_ms=%llu",
                (unsigned long long) id,
                (unsigned long long) (a->model.held ? a->model.pub_version
                                                    : a->model.version),
                (unsigned long long) a->cfg.round_deadline_ms);
}

// The catalog and the secure round's vector grow to n items together:
// the vector gets room first. Exclusive closer or opener, between rounds.
static fr_err
grow_catalog_to(fri_agg *a, uint32_t n)
{
    fr_err rv = fri_sa_reserve(a, n);
    if (rv == FR_OK) {
        rv = fri_agg_grow_apply(a, n);
    }
    fri_sa_fit(a);
    return rv;
}

// A catalog growth asked for (grow.c) enters the model the closer just
// committed, which no device has fetched yet.
static void
grow_catalog(fri_agg *a)
{
    if (fri_agg_take_item_features(a) != FR_OK) {
        fri_agg_log(a, FR_LOG_ERROR,
                    "msg=\"new item features not installed; the previous "
                    "ones stay\" alert=1");
    }
    const uint32_t n = fri_agg_grow_pending(a), n0 = a->cfg.n_items;
    if (n == 0) {
        return;
    }
    fr_err rv = grow_catalog_to(a, n);
    if (rv != FR_OK) {
        fri_agg_log(a, FR_LOG_WARN,
                    "msg=\"catalog not grown yet, retried after the next "
                    "round\" items=%u new_items=%u err=%s",
                    n0, n, fr_errname(rv));
        return;
    }
    fri_agg_log(a, FR_LOG_INFO,
                "msg=\"catalog grown\" items=%u new_items=%u "
                "model_version=%llu",
                n0, n, (unsigned long long) a->model.version);
}

// Ends the round on the closer (act 1 close, 2 abandon; closer.c), then
// opens the next one. The caller is the exclusive closer.
static void
finish_round(fri_agg *a, uint64_t now_ms, int act, const char *why)
{
    if (act == 1) {
        const uint64_t v0 = a->model.version;
        fri_closer_close(a);
        if (a->model.version != v0) {
            grow_catalog(a);
        }
        if (a->rs.journal_fd >= 0) {
            // The buffer is in the checkpoint just written (or was
            // dropped with a refused model). A shutdown (abandon) keeps
            // the journal: the restart takes the reports back.
            pthread_mutex_lock(&a->rs.jmtx);
            if (fri_journal_clear(a->rs.journal_fd) != FR_OK) {
                fri_agg_log(a, FR_LOG_ERROR,
                            "msg=\"cannot empty the buffer journal\" "
                            "alert=1");
            }
            pthread_mutex_unlock(&a->rs.jmtx);
        }
    } else {
        fri_closer_abandon(a, why);
    }
    if (a->cfg.edge && !atomic_load(&a->rs.done)) {
        // The next round opens from the root's model (fri_agg_edge_open).
        pthread_mutex_lock(&a->rs.mtx);
        a->tree.waiting = 1;
        pthread_mutex_unlock(&a->rs.mtx);
        return;
    }
    open_round(a, now_ms);
}

// Ends the round the caller moved to RS_CLOSING: at once, or (with the
// closer thread) by handing it over, so that an I/O callback returns
// without waiting for a solve or an fsync. Only one round is ever
// closing, so at most one hand-over is pending.
static void
end_round(fri_agg *a, uint64_t now_ms, int act, const char *why)
{
    if (!a->closer.closer_started) {
        finish_round(a, now_ms, act, why);
        return;
    }
    pthread_mutex_lock(&a->closer.closer_mtx);
    a->closer.close_act    = act;
    a->closer.close_why    = why;
    a->closer.close_now_ms = now_ms;
    pthread_cond_signal(&a->closer.closer_cond);
    pthread_mutex_unlock(&a->closer.closer_mtx);
}

static void *
closer_main(void *arg)
{
    fri_agg *a = arg;
    pthread_mutex_lock(&a->closer.closer_mtx);
    for (;;) {
        while (a->closer.close_act == 0 && !a->closer.closer_quit) {
            pthread_cond_wait(&a->closer.closer_cond, &a->closer.closer_mtx);
        }
        if (a->closer.close_act == 0) {
            break; // quitting with nothing pending
        }
        int         act = a->closer.close_act;
        const char *why = a->closer.close_why;
        uint64_t    now = a->closer.close_now_ms;
        a->closer.close_act    = 0;
        pthread_mutex_unlock(&a->closer.closer_mtx);
        finish_round(a, now, act, why);
        pthread_mutex_lock(&a->closer.closer_mtx);
    }
    pthread_mutex_unlock(&a->closer.closer_mtx);
    return NULL;
}

// Finishes a pending close, then stops the thread.
static void
closer_join(fri_agg *a)
{
    if (!a->closer.closer_started) {
        return;
    }
    pthread_mutex_lock(&a->closer.closer_mtx);
    a->closer.closer_quit = 1;
    pthread_cond_signal(&a->closer.closer_cond);
    pthread_mutex_unlock(&a->closer.closer_mtx);
    pthread_join(a->closer.thread, NULL);
    a->closer.closer_started = 0;
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

uint32_t
fri_agg_shard_of(const uint8_t pk[FRI_AGG_KEYBYTES], uint32_t n)
{
    uint8_t h[32];
    crypto_generichash(h, sizeof h, pk, FRI_AGG_KEYBYTES, NULL, 0);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | h[i];
    }
    return n > 1 ? (uint32_t) (v % n) : 0;
}

static fr_err checkin(fri_agg *a, uint64_t now_ms,
    const uint8_t pk[FRI_AGG_KEYBYTES], fri_agg_task *task, int count);

fr_err
fri_agg_checkin(fri_agg *a, uint64_t now_ms,
                const uint8_t pk[FRI_AGG_KEYBYTES], fri_agg_task *task)
{
    return checkin(a, now_ms, pk, task, 1);
}

fr_err
fri_agg_task_again(fri_agg *a, uint64_t now_ms,
    const uint8_t pk[FRI_AGG_KEYBYTES], fri_agg_task *task)
{
    return checkin(a, now_ms, pk, task, 0);
}

static fr_err
checkin(fri_agg *a, uint64_t now_ms, const uint8_t pk[FRI_AGG_KEYBYTES],
    fri_agg_task *task, int count)
{
    memset(task, 0, sizeof(*task));
    task->retry_after_ms = a->cfg.retry_after_ms;
    if (!allowed(a, pk) ||
        (a->cfg.edge_shards > 0 &&
         fri_agg_shard_of(pk, a->cfg.edge_shards) != a->cfg.edge_shard)) {
        fri_agg_reject_count(a, FRI_REJ_DENIED);
        return FR_EDENIED;
    }
    if (count) {
        atomic_fetch_add(&a->ctr.checkins, 1);
    }
    pthread_mutex_lock(&a->rs.mtx);
    if (a->rs.state != RS_OPEN) {
        pthread_mutex_unlock(&a->rs.mtx);
        return FR_OK;
    }
    uint64_t left = a->rs.deadline_ms > now_ms ? a->rs.deadline_ms - now_ms : 0;
    // Non-selected clients come back when this round should be over.
    uint32_t later = (uint32_t) (left + 100 < a->cfg.retry_after_ms
                                     ? a->cfg.retry_after_ms
                                     : (left + 100 > UINT32_MAX ? UINT32_MAX
                                                                : left + 100));
    fri_slot *s = slot_find(a, pk);
    if (buffered(a)) {
        // No cohort: a device gets a task for the current version unless
        // it is not drawn (fraction) or already reported (or was refused)
        // into this buffer; a newer task replaces an older one.
        if (s->state == SLOT_EMPTY) {
            if (!sampled(a, pk) || slot_reserve(a) != FR_OK) {
                pthread_mutex_unlock(&a->rs.mtx);
                return FR_OK;
            }
            s = slot_find(a, pk); // the table may have grown
            memcpy(s->pk, pk, FRI_AGG_KEYBYTES);
            s->state = SLOT_MEMBER;
            a->rs.n_members++;
        } else if (s->state != SLOT_MEMBER) {
            pthread_mutex_unlock(&a->rs.mtx);
            return FR_OK;
        }
        s->task_round = a->rs.round;
    } else if (s->state == SLOT_EMPTY) {
        int full = (a->cfg.clients_per_round > 0
                       && a->rs.n_members >= a->cfg.clients_per_round)
            || (a->sa != NULL && !fri_sa_joinable(a));
        if (full || !sampled(a, pk) || slot_reserve(a) != FR_OK) {
            pthread_mutex_unlock(&a->rs.mtx);
            task->retry_after_ms = later;
            return FR_OK;
        }
        s = slot_find(a, pk); // the table may have grown
        memcpy(s->pk, pk, FRI_AGG_KEYBYTES);
        s->state = SLOT_MEMBER;
        a->rs.n_members++;
        if (a->sa != NULL) {
            s->sa_index = fri_sa_join(a, pk, now_ms);
        }
    } else if (s->state != SLOT_MEMBER) {
        // Already contributed (or contributing) to this round. The round
        // may close well before its deadline (when everyone reported), so
        // such clients poll at the normal interval rather than waiting out
        // the deadline and missing most of the next round.
        pthread_mutex_unlock(&a->rs.mtx);
        task->retry_after_ms = a->cfg.retry_after_ms;
        return FR_OK;
    }
    task->has_task      = 1;
    task->round         = a->rs.round;
    task->model_version =
        a->model.held ? a->model.pub_version : a->model.version;
    task->deadline_ms   = a->rs.deadline_ms;
    task->ms_left       = (uint32_t) (left > UINT32_MAX ? UINT32_MAX : left);
    if (a->sa != NULL) {
        fri_sa_task(a, s->sa_index, task);
    }
    pthread_mutex_unlock(&a->rs.mtx);
    return FR_OK;
}

int
fri_agg_is_member(fri_agg *a, const uint8_t pk[FRI_AGG_KEYBYTES],
                  uint64_t round)
{
    pthread_mutex_lock(&a->rs.mtx);
    const fri_slot *s = slot_find(a, pk);
    int ok = a->rs.state == RS_OPEN && a->rs.round == round &&
             s->state == SLOT_MEMBER &&
             (!buffered(a) || s->task_round == round);
    pthread_mutex_unlock(&a->rs.mtx);
    return ok;
}

// Whether everyone who joined the round is done (under mtx): then it
// closes without waiting for its deadline. 0 none, 1 close, 2 abandon.
static int
all_done_act(const fri_agg *a)
{
    if (a->rs.state != RS_OPEN || a->cfg.clients_per_round == 0 ||
        a->rs.n_members < a->cfg.clients_per_round ||
        a->rs.n_reported + a->rs.n_refused < a->rs.n_members) {
        return 0;
    }
    return a->rs.n_reported >= a->cfg.min_clients ? 1 : 2;
}

// A member of the open round sent an update that failed validation: it is
// done for the round, so that a device sending garbage cannot hold every
// round open until its deadline.
static void
member_refused(fri_agg *a, uint64_t now_ms,
               const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round)
{
    pthread_mutex_lock(&a->rs.mtx);
    int act = 0;
    if (a->rs.state == RS_OPEN && (round == a->rs.round || buffered(a))) {
        fri_slot *s = slot_find(a, pk);
        if (s->state == SLOT_MEMBER &&
            (!buffered(a) || s->task_round == round)) {
            s->state = SLOT_REFUSED;
            a->rs.n_refused++;
            act = all_done_act(a);
            if (act != 0) {
                a->rs.state = RS_CLOSING;
            }
        }
    }
    pthread_mutex_unlock(&a->rs.mtx);
    if (act != 0) {
        end_round(a, now_ms, act, "every member reported or was refused");
    }
}

// Buffered mode, under mtx: whether a report computed on round `round`
// may enter the open buffer; its staleness and the change of mu since.
// Cheap (no look at the update), so a flood of stale reports costs a
// lookup each. Counts the refusal.
static fr_err
buffered_admit(fri_agg *a, const uint8_t pk[FRI_AGG_KEYBYTES],
               uint64_t round, fri_slot **slot, uint32_t *stale, float *dmu)
{
    const uint64_t L = (uint64_t) a->cfg.max_staleness + 1;
    if (a->rs.state != RS_OPEN) {
        // Stepping (or stopped): the report may still fit the next
        // buffer; the device sends it again on its next check-in.
        fri_agg_reject_count(a, FRI_REJ_LATE);
        return FR_ELATE;
    }
    if (round == 0 || round > a->rs.round) { // never issued
        fri_agg_reject_count(a, FRI_REJ_STATE);
        return FR_ESTATE;
    }
    const fri_round_info *then = &a->rs.hist[round % L];
    const fri_round_info *now  = &a->rs.hist[a->rs.round % L];
    // A round not in the ring is older than max_staleness or from before
    // a restart (whose buffer was discarded). Latest statistics against
    // the census model were sent whole and not recorded by the device:
    // only the census buffer may take them.
    if (a->rs.round - round > a->cfg.max_staleness || then->round != round ||
        (a->cfg.stats_latest && then->version == 0 && now->version != 0)) {
        fri_agg_reject_count(a, FRI_REJ_STALE);
        return FR_ESTALE;
    }
    fri_slot *s = slot_find(a, pk);
    if (s->state == SLOT_REPORTED || s->state == SLOT_INFLIGHT) {
        fri_agg_reject_count(a, FRI_REJ_DUP);
        return FR_EDUP;
    }
    if (s->state != SLOT_MEMBER || s->task_round != round) {
        fri_agg_reject_count(a, FRI_REJ_NOT_MEMBER);
        return FR_EDENIED;
    }
    *slot  = s;
    *stale = (uint32_t) (a->rs.round - round);
    *dmu   = now->mu - then->mu;
    return FR_OK;
}

// Buffered mode: adds a device's report to the open buffer; the report
// that makes it K steps the model.
static fr_err
submit_buffered(fri_agg *a, uint64_t now_ms,
                const uint8_t pk[FRI_AGG_KEYBYTES], const fri_agg_update *u)
{
    fri_agg_update uc = *u;
    fri_slot      *s  = NULL;
    pthread_mutex_lock(&a->rs.mtx);
    fr_err rv = buffered_admit(a, pk, u->round, &s, &uc.staleness,
                               &uc.stale_dmu);
    if (rv != FR_OK) {
        pthread_mutex_unlock(&a->rs.mtx);
        return rv;
    }
    const uint64_t buf_round = a->rs.round;
    s->state = SLOT_INFLIGHT;
    a->rs.n_inflight++;
    fri_agg_update_fn hook     = a->rs.upd_hook;
    void             *hook_ctx = a->rs.upd_hook_ctx;
    pthread_mutex_unlock(&a->rs.mtx);
    if (hook != NULL) {
        hook(hook_ctx, pk, &uc);
    }

    // Durable before it is summed and acknowledged (journal.h).
    const int jfd   = a->rs.journal_fd;
    off_t     undo  = 0;
    if (jfd >= 0) {
        pthread_mutex_lock(&a->rs.jmtx);
        rv = fri_journal_append(jfd, buf_round, pk, &uc, &undo);
        if (rv != FR_OK) {
            fri_agg_log(a, FR_LOG_ERROR,
                        "msg=\"cannot journal a report, refused\" err=%s "
                        "alert=1",
                        fr_errname(rv));
            rv = FR_EINTERNAL;
        }
    }
    if (rv == FR_OK) {
        rv = fri_agg_acc_add(a, &uc);
        if (rv != FR_OK && jfd >= 0) {
            fri_journal_undo(jfd, undo);
        }
    }
    if (jfd >= 0) {
        pthread_mutex_unlock(&a->rs.jmtx);
    }

    pthread_mutex_lock(&a->rs.mtx);
    s = slot_find(a, pk); // the table may have grown meanwhile
    s->state = rv == FR_OK ? SLOT_REPORTED : SLOT_MEMBER;
    a->rs.n_inflight--;
    if (a->rs.n_inflight == 0) {
        pthread_cond_broadcast(&a->rs.cond);
    }
    int close = 0;
    if (rv == FR_OK) {
        s->task_round = 0;
        a->rs.n_reported++;
        if (a->rs.state == RS_OPEN && a->rs.n_reported >= a->cfg.buffer) {
            a->rs.state = RS_CLOSING;
            close       = 1;
        }
    }
    pthread_mutex_unlock(&a->rs.mtx);
    if (rv != FR_OK) {
        return rv;
    }
    atomic_fetch_add(&a->ctr.accepted, 1);
    atomic_fetch_add(&a->ctr.staleness_sum, uc.staleness);
    if (close) {
        end_round(a, now_ms, 1, "buffer full");
    }
    return FR_OK;
}

// Adds a checked contribution of member pk to round `round`: a device's
// update u, or (root) an edge's sums es.
// ---- latest statistics: the ledger of standing contributions (ledger.h) --

// Whether e, a device's standing contribution after its report, is one it
// could hold: empty, or a whole contribution within the bounds (under DP
// the per-report norm bound, since devices scale their contribution).
static const char *
standing_why(const fri_agg *a, const fri_ledger_entry *e, uint64_t round)
{
    fri_agg_update v;
    fri_ledger_view(e, round, &v);
    v.gram_len = a->gram_len;
    v.rows_len = (size_t)v.n * a->d;
    v.vb_len   = a->vb != NULL ? fri_vb_glob_len(a->cfg.k) : 0;
    if (v.n > 0 && !(v.count > 0.0)) {
        // A first report carries the device's rating count (SPEC 5.4.1).
        return "contribution without its rating count";
    }
    if (a->cfg.dp != FRI_AGG_DP_OFF) {
        double n2 = 0.0;
        if (fri_agg_dp_stats_norm2(a, &v, &n2) != FR_OK) {
            return "out of memory";
        }
        double cl = (double)a->cfg.clip * (1.0 + 1e-4);
        return n2 <= cl * cl ? NULL : "contribution norm above the DP bound";
    }
    const char *why = NULL;
    return fri_bounds_standing(&a->cfg, &v, &why) == 0 ? NULL : why;
}

// Before u is added to the round's sums: the standing contribution it
// leads to, staged in *next for the caller to hand to the ledger once u is
// in the sums. A report that does not lead to one the device could hold
// puts the device back in step instead: its standing contribution leaves
// the sum (through this round's sums) and FR_ERESYNC tells it to send its
// contribution whole next time.
static fr_err
ledger_prepare(fri_agg *a, const uint8_t pk[FRI_AGG_KEYBYTES],
    const fri_agg_update *u, float mu, fri_ledger_entry **next)
{
    const char *why   = NULL;
    int         empty = 0;
    pthread_mutex_lock(&a->rs.ledger_mtx);
    // Room to stage this device's record, whatever happens below.
    fr_err rv = fri_ledger_reserve(a->rs.ledger);
    if (rv == FR_OK) {
        rv = fri_ledger_apply(a->rs.ledger, pk, u, mu, next, &empty, &why);
        if (rv != FR_OK && rv != FR_ESTATE) {
            fri_ledger_release(a->rs.ledger);
        }
    }
    pthread_mutex_unlock(&a->rs.ledger_mtx);
    if (rv != FR_OK && rv != FR_ESTATE) {
        return rv;
    }
    if (rv == FR_OK && !empty) {
        why = standing_why(a, *next, u->round);
    }
    if (why == NULL) {
        return FR_OK;
    }
    fri_ledger_entry_free(*next);
    *next                 = NULL;
    fri_ledger_entry *neg = NULL, *z = NULL;
    pthread_mutex_lock(&a->rs.ledger_mtx);
    rv = fri_ledger_retraction(a->rs.ledger, pk, mu, &neg);
    if (rv == FR_OK) {
        rv = fri_ledger_empty(a->rs.ledger, mu, &z);
    }
    pthread_mutex_unlock(&a->rs.ledger_mtx);
    if (rv == FR_OK && neg != NULL) {
        fri_agg_update nu;
        fri_ledger_view(neg, u->round, &nu);
        nu.gram_len = a->gram_len;
        nu.rows_len = (size_t)nu.n * a->d;
        nu.vb_len   = u->vb_len;
        rv          = fri_agg_acc_add(a, &nu);
    }
    fri_ledger_entry_free(neg);
    pthread_mutex_lock(&a->rs.ledger_mtx);
    if (rv == FR_OK) {
        rv = fri_ledger_stage(a->rs.ledger, pk, z); // reserved: cannot fail
    } else {
        fri_ledger_release(a->rs.ledger);
        fri_ledger_entry_free(z);
    }
    pthread_mutex_unlock(&a->rs.ledger_mtx);
    if (rv != FR_OK) {
        return rv;
    }
    fri_agg_reject_count(a, FRI_REJ_RESYNC);
    fri_agg_log(a, FR_LOG_WARN,
        "msg=\"report out of step with the device's standing "
        "contribution: taken out, device asked to resend it whole\" "
        "round=%llu reason=\"%s\"",
        (unsigned long long)u->round, why);
    return FR_ERESYNC;
}

static fr_err
submit_checked(fri_agg *a, uint64_t now_ms,
               const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round,
               const fri_agg_update *u, const fri_agg_sums *es)
{
    pthread_mutex_lock(&a->rs.mtx);
    if (a->rs.state != RS_OPEN || round != a->rs.round) {
        int future = a->rs.state == RS_OPEN && round > a->rs.round;
        pthread_mutex_unlock(&a->rs.mtx);
        // An id the aggregator never issued is not "late" but wrong.
        fri_agg_reject_count(a, future ? FRI_REJ_STATE : FRI_REJ_LATE);
        return future ? FR_ESTATE : FR_ELATE;
    }
    fri_slot *s = slot_find(a, pk);
    if (s->state == SLOT_EMPTY) {
        pthread_mutex_unlock(&a->rs.mtx);
        fri_agg_reject_count(a, FRI_REJ_NOT_MEMBER);
        return FR_EDENIED;
    }
    if (s->state != SLOT_MEMBER) {
        pthread_mutex_unlock(&a->rs.mtx);
        fri_agg_reject_count(a, FRI_REJ_DUP);
        return FR_EDUP;
    }
    s->state = SLOT_INFLIGHT;
    a->rs.n_inflight++;
    fri_agg_update_fn hook     = a->rs.upd_hook;
    void             *hook_ctx = a->rs.upd_hook_ctx;
    // The census round's reports are not recorded by devices (SPEC 5.4.1).
    const int ledger
        = u != NULL && a->rs.ledger != NULL && a->model.version > 0;
    const float mu = a->model.mu;
    pthread_mutex_unlock(&a->rs.mtx);
    if (hook != NULL && u != NULL) {
        hook(hook_ctx, pk, u);
    }

    fri_ledger_entry *next = NULL;
    fr_err rv = ledger ? ledger_prepare(a, pk, u, mu, &next) : FR_OK;
    if (rv == FR_OK) {
        rv = u != NULL ? fri_agg_acc_add(a, u) : fri_edge_sums_add(a, es);
    }
    if (next != NULL) {
        pthread_mutex_lock(&a->rs.ledger_mtx);
        if (rv == FR_OK) {
            // Reserved in ledger_prepare: cannot fail once u is summed.
            rv = fri_ledger_stage(a->rs.ledger, pk, next);
        } else {
            fri_ledger_release(a->rs.ledger);
            fri_ledger_entry_free(next);
        }
        pthread_mutex_unlock(&a->rs.ledger_mtx);
    }

    pthread_mutex_lock(&a->rs.mtx);
    s = slot_find(a, pk); // the table may have grown meanwhile
    // A device put back in step is done for the round, like a refused one.
    s->state = rv == FR_OK ? SLOT_REPORTED
        : rv == FR_ERESYNC ? SLOT_REFUSED
                           : SLOT_MEMBER;
    a->rs.n_inflight--;
    if (a->rs.n_inflight == 0) {
        pthread_cond_broadcast(&a->rs.cond);
    }
    int close = 0;
    if (rv == FR_OK || rv == FR_ERESYNC) {
        a->rs.n_reported += rv == FR_OK;
        a->rs.n_refused += rv == FR_ERESYNC;
        close = all_done_act(a);
        if (close != 0) {
            a->rs.state = RS_CLOSING;
        }
    }
    pthread_mutex_unlock(&a->rs.mtx);
    if (rv == FR_OK) {
        atomic_fetch_add(&a->ctr.accepted, 1);
    }
    if (close != 0) {
        end_round(a, now_ms, close, "every member reported or was refused");
    }
    return rv;
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
    if (buffered(a)) {
        // Refuse stale, duplicate and unknown reports before validating
        // them: a flood of those costs a lookup each.
        fri_slot *s     = NULL;
        uint32_t  stale = 0;
        float     dmu   = 0.0f;
        pthread_mutex_lock(&a->rs.mtx);
        fr_err rv = buffered_admit(a, pk, u->round, &s, &stale, &dmu);
        pthread_mutex_unlock(&a->rs.mtx);
        if (rv != FR_OK) {
            return rv;
        }
    }
    int    oob = 0;
    fr_err rv  = fri_agg_validate(a, u, &oob);
    if (rv != FR_OK) {
        fri_agg_reject_count(a, oob ? FRI_REJ_BOUNDS : FRI_REJ_MALFORMED);
        member_refused(a, now_ms, pk, u->round);
        return rv;
    }
    if (buffered(a)) {
        return submit_buffered(a, now_ms, pk, u);
    }
    return submit_checked(a, now_ms, pk, u->round, u, NULL);
}

// ---- a tree of aggregators (tree.h) ---------------------------------------

fr_err
fri_agg_submit_sums(fri_agg *a, uint64_t now_ms,
                    const uint8_t pk[FRI_AGG_KEYBYTES], const fri_agg_sums *s)
{
    if (a->cfg.root_max_devices == 0 || s == NULL) {
        fri_agg_reject_count(a, FRI_REJ_STATE);
        return FR_ESTATE;
    }
    const char *why = NULL;
    fr_err      rv  = fri_edge_sums_check(a, s, &why);
    if (rv != FR_OK) {
        fri_agg_reject_count(a, FRI_REJ_BOUNDS);
        fri_agg_log(a, FR_LOG_WARN,
                    "msg=\"edge sums refused\" round=%llu devices=%u "
                    "reason=\"%s\" alert=1",
                    (unsigned long long) s->round, s->n_devices, why);
        member_refused(a, now_ms, pk, s->round);
        return rv;
    }
    return submit_checked(a, now_ms, pk, s->round, NULL, s);
}

fr_err
fri_agg_edge_take(fri_agg *a, fri_agg_sums *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&a->rs.mtx);
    int has = a->tree.has_out;
    if (has) {
        *out            = a->tree.out;
        a->tree.has_out = 0;
        memset(&a->tree.out, 0, sizeof(a->tree.out));
    }
    pthread_mutex_unlock(&a->rs.mtx);
    return has ? FR_OK : FR_ESTATE;
}

int
fri_agg_edge_waiting(fri_agg *a, uint64_t *round)
{
    pthread_mutex_lock(&a->rs.mtx);
    int w  = a->cfg.edge && a->tree.waiting;
    *round = a->tree.served;
    pthread_mutex_unlock(&a->rs.mtx);
    return w;
}

fr_err
fri_agg_edge_open(fri_agg *a, uint64_t now_ms, const uint8_t *frame,
                  size_t frame_len, uint64_t deadline_ms)
{
    if (!a->cfg.edge) {
        return FR_ESTATE;
    }
    // Clearing waiting makes this call the exclusive opener: no round is
    // open and the closer finished the last one.
    pthread_mutex_lock(&a->rs.mtx);
    int      w     = a->tree.waiting;
    uint64_t after = a->tree.served;
    a->tree.waiting = 0;
    pthread_mutex_unlock(&a->rs.mtx);
    if (!w) {
        return FR_ESTATE;
    }
    uint64_t  id = 0;
    fri_snap *s  = NULL;
    uint32_t  ni = 0;
    fr_err    rv = fri_edge_model_items(a, frame, frame_len, &ni);
    if (rv == FR_OK && ni > a->cfg.n_items) {
        // The root's catalog grew: the edge follows before loading it.
        const uint32_t n0 = a->cfg.n_items;
        rv                = grow_catalog_to(a, ni);
        fri_agg_log(a, rv == FR_OK ? FR_LOG_INFO : FR_LOG_ERROR,
                    "msg=\"%s\" items=%u new_items=%u err=%s", rv == FR_OK
                        ? "catalog grown with the root's"
                        : "cannot grow to the root's catalog",
                    n0, ni, fr_errname(rv));
    }
    if (rv == FR_OK) {
        rv = fri_edge_model_load(a, frame, frame_len, after, &id, &s);
    }
    pthread_mutex_lock(&a->rs.mtx);
    if (rv != FR_OK) {
        a->tree.waiting = 1;
        pthread_mutex_unlock(&a->rs.mtx);
        return rv;
    }
    fri_snap *old = a->model.snap;
    a->model.snap = s;
    slots_clear(a);
    randombytes_buf(a->rs.sel_key, sizeof(a->rs.sel_key));
    a->rs.round       = id;
    a->rs.next_round  = id + 1;
    a->rs.opened_ms   = now_ms;
    a->rs.deadline_ms = deadline_ms;
    a->tree.served    = id;
    fri_sa_round_open(a, now_ms); // secure aggregation in the edge's cohort
    a->rs.state       = atomic_load(&a->rs.done) ? RS_DONE : RS_OPEN;
    pthread_mutex_unlock(&a->rs.mtx);
    fri_snap_unref(old);
    fri_agg_log(a, FR_LOG_INFO,
                "msg=\"round opened from the root's model\" round=%llu "
                "model_version=%llu deadline_ms=%llu",
                (unsigned long long) id, (unsigned long long) s->version,
                (unsigned long long) (deadline_ms > now_ms
                                          ? deadline_ms - now_ms
                                          : 0));
    return FR_OK;
}

fr_err
fri_agg_model_frame(fri_agg *a, uint8_t **frame, size_t *frame_len,
                    uint64_t *round)
{
    *frame     = NULL;
    *frame_len = 0;
    fri_snap *s = fri_agg_snap_get(a);
    if (s == NULL || s->frame == NULL) {
        fri_snap_unref(s);
        return FR_ESTATE;
    }
    *frame = malloc(s->frame_len);
    if (*frame == NULL) {
        fri_snap_unref(s);
        return FR_ENOMEM;
    }
    memcpy(*frame, s->frame, s->frame_len);
    *frame_len = s->frame_len;
    *round     = s->round;
    fri_snap_unref(s);
    return FR_OK;
}

void
fri_agg_round_tick(fri_agg *a, uint64_t now_ms)
{
    if (a->sa != NULL) {
        const char *why = NULL;
        int         act = fri_sa_tick(a, now_ms, &why);
        if (act != 0) {
            end_round(a, now_ms, act, why);
        }
        return;
    }
    pthread_mutex_lock(&a->rs.mtx);
    int act = 0; // 1 close, 2 abandon
    if (buffered(a) && a->rs.state == RS_OPEN &&
        now_ms >= a->rs.deadline_ms) {
        // A short buffer steps at the deadline when min_clients allow;
        // else it stays open (abandoning it would drop reports the
        // devices were told were taken).
        uint32_t n = a->rs.n_reported + a->rs.n_inflight;
        if (n > 0 && n >= a->cfg.min_clients) {
            act         = 1;
            a->rs.state = RS_CLOSING;
        } else {
            a->rs.deadline_ms = now_ms + a->cfg.round_deadline_ms;
        }
    } else if (a->rs.state == RS_OPEN && now_ms >= a->rs.deadline_ms) {
        // In-flight updates will be counted: they were accepted in time.
        act = a->rs.n_reported + a->rs.n_inflight >= a->cfg.min_clients ? 1
                                                                        : 2;
        a->rs.state = RS_CLOSING;
    }
    pthread_mutex_unlock(&a->rs.mtx);
    if (act != 0) {
        end_round(a, now_ms, act, "deadline");
    }
}

void
fri_agg_stop(fri_agg *a, uint64_t now_ms)
{
    atomic_store(&a->rs.done, 1);
    pthread_mutex_lock(&a->rs.mtx);
    int act  = a->rs.state == RS_OPEN;
    if (act) {
        a->rs.state = RS_CLOSING;
    }
    pthread_mutex_unlock(&a->rs.mtx);
    if (act) {
        finish_round(a, now_ms, 2, "shutdown");
    }
}

int
fri_agg_done(const fri_agg *a)
{
    return atomic_load(&((fri_agg *) a)->rs.done) != 0;
}

void
fri_agg_set_sum_hook(fri_agg *a, fri_agg_sum_fn fn, void *ctx)
{
    pthread_mutex_lock(&a->rs.mtx);
    a->dp.sum_hook     = fn;
    a->dp.sum_hook_ctx = ctx;
    pthread_mutex_unlock(&a->rs.mtx);
}

void
fri_agg_set_release_hook(fri_agg *a, fri_agg_release_fn fn, void *ctx)
{
    pthread_mutex_lock(&a->rs.mtx);
    a->dp.dp_hook     = fn;
    a->dp.dp_hook_ctx = ctx;
    pthread_mutex_unlock(&a->rs.mtx);
}

void
fri_agg_set_update_hook(fri_agg *a, fri_agg_update_fn fn, void *ctx)
{
    pthread_mutex_lock(&a->rs.mtx);
    a->rs.upd_hook     = fn;
    a->rs.upd_hook_ctx = ctx;
    pthread_mutex_unlock(&a->rs.mtx);
}


fr_err
fri_agg_sa_unmask(fri_agg *a, uint64_t now_ms,
                  const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round,
                  const uint32_t *about, const uint8_t *shares, size_t n,
                  const uint32_t *corr, size_t n_corr)
{
    int    act = 0;
    fr_err rv  = fri_sa_unmask(a, pk, round, about, shares, n, corr, n_corr,
                               &act);
    if (act != 0) {
        end_round(a, now_ms, act, "secure aggregation recovery");
    }
    return rv;
}

// A report of the journal back into the open buffer (start, before any
// request): its device counts as reported, a second record of the same
// device is ignored.
static void
replay_one(void *ctx, uint64_t round, const uint8_t pk[FRI_AGG_KEYBYTES],
           const fri_agg_update *u)
{
    fri_agg *a   = ctx;
    int      oob = 0;
    (void) round;
    if (slot_find(a, pk)->state != SLOT_EMPTY ||
        fri_agg_validate(a, u, &oob) != FR_OK || slot_reserve(a) != FR_OK ||
        fri_agg_acc_add(a, u) != FR_OK) {
        return;
    }
    fri_slot *s = slot_find(a, pk);
    memcpy(s->pk, pk, FRI_AGG_KEYBYTES);
    s->state = SLOT_REPORTED;
    a->rs.n_members++;
    a->rs.n_reported++;
}

// Buffered mode with a state directory: opens the journal and puts the
// reports the last checkpoint lacks back into the open buffer; a buffer
// that is full again steps at once.
static fr_err
journal_start(fri_agg *a, uint64_t now_ms)
{
    fr_err rv = fri_journal_open(a->cfg.state_dir, &a->rs.journal_fd);
    if (rv != FR_OK) {
        return rv;
    }
    size_t n = 0;
    rv = fri_journal_replay(a->rs.journal_fd, a->rs.last_completed,
                            a->cfg.n_items, a->d,
                            a->gram_len,
                            a->vb != NULL ? fri_vb_glob_len(a->cfg.k) : 0,
                            replay_one, a, &n);
    if (rv != FR_OK) {
        return rv;
    }
    if (n > 0) {
        fri_agg_log(a, FR_LOG_INFO,
                    "msg=\"buffer journal replayed\" reports=%zu "
                    "buffered=%u",
                    n, a->rs.n_reported);
    }
    if (a->rs.state == RS_OPEN && a->rs.n_reported >= a->cfg.buffer) {
        a->rs.state = RS_CLOSING;
        finish_round(a, now_ms, 1, "buffer full");
    }
    return FR_OK;
}

fr_err
fri_agg_rounds_start(fri_agg *a, uint64_t now_ms)
{
    pthread_once(&pk_hash_once, pk_hash_init);
    if (buffered(a)) {
        a->rs.hist = calloc((size_t) a->cfg.max_staleness + 1,
                            sizeof(*a->rs.hist));
        if (a->rs.hist == NULL) {
            return FR_ENOMEM;
        }
    }
    open_round(a, now_ms);
    if (a->cfg.edge) {
        // An edge serves no round until the root's model arrives.
        pthread_mutex_lock(&a->rs.mtx);
        if (a->rs.state == RS_OPEN) {
            a->rs.state = RS_CLOSING;
        }
        a->tree.waiting = 1;
        pthread_mutex_unlock(&a->rs.mtx);
    }
    pthread_mutex_init(&a->closer.closer_mtx, NULL);
    pthread_cond_init(&a->closer.closer_cond, NULL);
    a->closer.closer_ready = 1;
    if (buffered(a) && a->cfg.state_dir != NULL && !a->cfg.edge) {
        fr_err rv = journal_start(a, now_ms);
        if (rv != FR_OK) {
            return rv;
        }
    }
    if (a->cfg.closer_thread) {
        if (pthread_create(&a->closer.thread, NULL, closer_main, a) != 0) {
            return FR_EINTERNAL;
        }
        a->closer.closer_started = 1;
    }
    return FR_OK;
}

void
fri_agg_rounds_stop(fri_agg *a)
{
    if (a->closer.closer_ready) {
        closer_join(a);
        pthread_mutex_destroy(&a->closer.closer_mtx);
        pthread_cond_destroy(&a->closer.closer_cond);
    }
}
