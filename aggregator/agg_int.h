// Internals of the aggregator shared by its .c files. Includes neither
// common/mf.h nor proto/msg.h: both define FRI_ALGO_* enumerators, so the
// model math (round.c) and the wire glue (handle.c) live in separate
// translation units.
#ifndef FR_AGGREGATOR_AGG_INT_H
#define FR_AGGREGATOR_AGG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "agg.h"
#include "dp.h"
#include "keys.h"

// The signed MODEL frame of one round, built once when the round opens and
// shared by reference: handlers serving GET_MODEL hold a reference while
// they seal it for their session.
typedef struct fri_snap {
    atomic_uint refs;
    uint64_t    version;
    uint64_t    round;
    uint8_t    *frame; // signed plain MODEL frame, or NULL
    size_t      frame_len;
} fri_snap;

// Cohort slot states.
// SLOT_REFUSED: a member whose update failed validation; it is done for
// the round (it counts toward closing early, not toward min_clients).
enum {
    SLOT_EMPTY    = 0,
    SLOT_MEMBER   = 1,
    SLOT_REPORTED = 2,
    SLOT_INFLIGHT = 3,
    SLOT_REFUSED  = 4
};

typedef struct fri_slot {
    uint8_t  pk[FRI_AGG_KEYBYTES];
    uint8_t  state;
    uint32_t sa_index; // secure aggregation: member index in the round
} fri_slot;

enum { RS_OPEN = 0, RS_CLOSING = 1, RS_DONE = 2 };

typedef struct fri_sessions fri_sessions; // handle.c
typedef struct fri_sa       fri_sa;       // sa.c

struct fri_agg {
    fri_agg_config cfg;        // copied; cfg.allow points at allow below
    uint8_t       *allow;      // sorted n_allow keys
    char          *state_dir;
    uint8_t        fingerprint[32];
    fri_identity   id;         // the aggregator's identity (secret)
    uint8_t        pk[FR_PUBLICKEYBYTES]; // X25519 || Ed25519
    uint32_t       d;          // k + 1
    size_t         gram_len;   // floats in a client's Gram
    size_t         acc_len;    // floats in one item accumulator

    pthread_mutex_t mtx;       // everything below until "acc"
    pthread_cond_t  cond;      // inflight reached zero
    int             state;     // RS_*
    uint64_t        round;     // current round id
    uint64_t        next_round;
    uint64_t        opened_ms;
    uint64_t        deadline_ms;
    fri_slot       *slots;     // cohort hash set (open addressing)
    uint32_t        slot_cap;  // power of two
    uint32_t        n_members;
    uint32_t        n_reported;
    uint32_t        n_refused; // members in SLOT_REFUSED
    uint32_t        n_inflight;
    uint64_t        rounds_completed;
    uint64_t        rounds_abandoned;
    uint64_t        sa_share_mismatch; // secrets rebuilt only on a retry
    uint64_t        sa_unmask_failed;  // secure rounds that did not unmask
    uint64_t        last_completed; // id of the last completed round
    fri_snap       *snap;      // MODEL frame of the current round
    // The model. Replaced only by the (exclusive) closer, under mtx, so the
    // closer reads it without the lock and others copy it under the lock.
    float           mu;
    float          *bi;        // n_items
    float          *Q;         // n_items * k
    uint64_t        version;
    uint8_t         sel_key[16]; // cohort sampling key of this round

    // Privacy accountant of the released models, under mtx (the closer
    // adds a round under the lock).
    fri_dp_accountant dp_acc;
    uint64_t          dp_rounds;
    double            dp_q;      // sampling rate per round
    double            dp_cohort; // expected cohort size (the denominator)
    fri_agg_release_fn dp_hook;   // test hook (closer reads it)
    void              *dp_hook_ctx;
    fri_agg_update_fn  upd_hook;   // test hook
    void              *upd_hook_ctx;

    // Optimizer state (closer only).
    float   *opt_m;
    float   *opt_v;
    uint64_t opt_t;

    pthread_mutex_t acc_mtx;   // accumulators
    // Sums in double: a float accumulator overflows on two devices sending
    // +-3e38 (and loses honest precision over large cohorts). The closer
    // converts them to float (accf) for the solve.
    double        **acc;       // per item, lazily allocated acc_len doubles
    float         **accf;      // closer: float copies of acc (touched)
    uint32_t       *touched;   // items with an accumulator, in order
    uint32_t        n_touched;
    double         *gram_all;  // iALS: sum of all client Grams
    float          *gram_allf; // its float copy (closer)
    double          sum_ratings;
    double          count;
    double          weight;

    // Explicit ALS with cfg.stats_forget < 1: item statistics carried
    // across rounds, kept centred on the served mu (closer only).
    float         **carry;     // per item, lazily allocated acc_len floats
    uint32_t       *carried;   // items with carried statistics, in order
    uint32_t        n_carried;
    double          carry_sum; // carried rating sum and count (for mu)
    double          carry_count;

    fri_sessions *sessions;
    fri_sa       *sa; // secure aggregation state, NULL when off
    fri_agg_masked_fn sa_hook;
    void             *sa_hook_ctx;

    atomic_uint_fast64_t clients_seen;
    atomic_uint_fast64_t checkins;
    atomic_uint_fast64_t model_reads; // MODEL_ONLY check-ins (not above)
    atomic_uint_fast64_t accepted;
    atomic_uint_fast64_t rejected[FRI_REJ_COUNT_];
    atomic_uint_fast64_t bytes_in;
    atomic_uint_fast64_t bytes_out;
    atomic_uint_fast64_t n_sessions;
    atomic_int           done;

    struct fri_vb *vb; // VBMF state (vbmf.h), NULL for other algorithms

    // Robustness (docs/ROBUSTNESS.md).
    atomic_uint_fast64_t models_refused;   // failed the sanity check
    atomic_uint_fast64_t ckpt_failures;    // checkpoint writes that failed
    atomic_uint_fast64_t items_skipped;    // item solves that failed
    // Under DP, the model served while newer ones wait for a checkpoint
    // that holds their privacy accounting (held != 0; under mtx).
    int       held;
    float     pub_mu;
    float    *pub_bi;
    float    *pub_Q;
    uint64_t  pub_version;

    // The closer thread (cfg.closer_thread): the round-ending call sets
    // close_act under closer_mtx and signals; the thread closes.
    pthread_t       closer;
    int             closer_ready;   // closer_mtx/cond initialised
    int             closer_started;
    pthread_mutex_t closer_mtx;
    pthread_cond_t  closer_cond;
    int             close_act;    // 0 none, 1 close, 2 abandon
    const char     *close_why;    // abandon reason (a string literal)
    uint64_t        close_now_ms;
    int             closer_quit;
    struct fri_robust *robust; // robust.h, NULL when cfg.robust == 0
};

// Accumulation (accumulate.c). validate: shape and bounds of a plain
// update (*bounds = 1 when refused by the bounds); acc_add: adds a
// validated update (robust bounds first); acc_reset: drops the round's
// sums (closer or abandoner, exclusive) and fixes the next round's
// robust bounds.
fr_err fri_agg_validate(const fri_agg *a, const fri_agg_update *u,
                        int *bounds);
fr_err fri_agg_acc_add(fri_agg *a, const fri_agg_update *u);
void   fri_agg_acc_reset(fri_agg *a);

// The carried / latest item statistics' tables (solve.c), allocated on
// first use; FR_ENOMEM leaves them unallocated.
fr_err fri_agg_carry_ensure(fri_agg *a);

// The end-of-round model step (solve.c): new mu, biases and factors from
// the round's sums (and the previous model in them); the closer only.
fr_err fri_agg_solve(fri_agg *a, uint64_t round, float *mu, float *bi,
                     float *Q);

// Expected cohort size of a round under DP (config.c): the fixed
// denominator of DP-FedAvg; 0 when not determined.
double fri_agg_dp_expected_cohort(const fri_agg_config *c);

void fri_agg_log(const fri_agg *a, fr_log_level lv, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

void fri_snap_unref(fri_snap *s);
// Current snapshot with a reference held (never NULL after create).
fri_snap *fri_agg_snap_get(fri_agg *a);
// Counts a refusal.
void fri_agg_reject_count(fri_agg *a, fri_agg_reject r);

// ---- sa.c (secure aggregation phases) ----
// Creates the state (cfg.secagg != OFF); err says why on FR_EINVAL.
fr_err fri_sa_create(fri_agg *a, char *err, size_t err_cap);
void   fri_sa_destroy(fri_agg *a);
// A new round opened at now_ms (under mtx).
void fri_sa_round_open(fri_agg *a, uint64_t now_ms);
// A new member joined (under mtx): records its key, returns its index.
uint32_t fri_sa_join(fri_agg *a, const uint8_t *pk);
// Fills the secure-aggregation fields of a task (under mtx).
void fri_sa_task(const fri_agg *a, uint32_t index, fri_agg_task *t);
// Phase deadlines (not under mtx; may complete or abandon the round).
void fri_sa_tick(fri_agg *a, uint64_t now_ms);
// Parameters, for config checks: fractional bits for a cohort of n at
// clip C, 0 if none fits.
unsigned fri_sa_frac_bits(float clip, uint32_t n);

// ---- handle_sa.c (secure aggregation on the wire) ----
// Whether a sealed request of this type goes to fri_agg_sa_wire when
// secure aggregation is on (UPDATE included: the masked input).
int fri_agg_sa_wire_type(uint16_t type);
// Largest plain reply fri_agg_sa_wire can write (0 when off).
size_t fri_agg_sa_reply_bound(const fri_agg *a);
// Handles one opened request of an authenticated member; writes a plain
// reply frame (ACK, SA_* or ERROR) into out. *last is set when the
// member's part of the round is over (the session may be dropped).
fr_err fri_agg_sa_wire(fri_agg *a, uint64_t now_ms,
                       const uint8_t pk[FRI_AGG_KEYBYTES], uint16_t type,
                       const uint8_t *plain, size_t plain_len, uint8_t *out,
                       size_t cap, size_t *len, int *last);

// ---- entry points for sa.c ----
// Replaces the accumulators with a dense released vector (accumulate.c;
// grad: n_items rows of k + 1, rating sum, count); the closer only.
fr_err fri_agg_acc_set_dense(fri_agg *a, const float *v, size_t n);
// Completes / abandons the current round; state must be RS_CLOSING.
void fri_agg_close_round(fri_agg *a, uint64_t now_ms);
void fri_agg_abandon_round(fri_agg *a, uint64_t now_ms, const char *why);

// ---- latest.c (latest statistics, cfg.stats_latest) ----
// Folds the round's delta sums into the running sum of every device's
// latest statistics (a->carry), sets mu from its rating sum and count,
// re-centres it on that mu and solves every item from it. Closer only.
fr_err fri_latest_solve(fri_agg *a, float mu_old, float *mu, float *bi,
                        float *Q, float *work, size_t wl);

// ---- latest_sa.c (latest statistics under secure aggregation) ----
// Checks the decoded sum of the survivors' masked deltas
// (secagg_stats.h) and sets the round's accumulators from it. Closer only.
fr_err fri_latest_sa_set(fri_agg *a, const float *v, size_t n);
// The outcome of a member's masked delta (SA_POLL want UPDATE): FR_OK
// when the round completed with pk among its survivors, *retry_after_ms
// > 0 while it is still open or closing, FR_ELATE when it was abandoned
// (or its outcome is no longer kept). Takes mtx (sa.c).
fr_err fri_agg_sa_outcome(fri_agg *a, const uint8_t *pk, uint64_t round,
                          uint32_t *retry_after_ms);

// ---- handle.c (wire + sessions) ----
fr_err fri_sessions_create(fri_agg *a);
void   fri_sessions_destroy(fri_agg *a);
void   fri_sessions_expire(fri_agg *a, uint64_t now_ms);
// Identity from cfg (seed or fresh) into a->sk / a->pk.
fr_err fri_agg_identity_init(fri_agg *a);
// Encodes and signs the MODEL frame of the current model for s->round and
// s->version into s->frame. Called by the exclusive closer/opener.
fr_err fri_agg_snap_frame(fri_agg *a, fri_snap *s);

#endif
