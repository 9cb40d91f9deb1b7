// Internals of the aggregator shared by its .c files. Includes neither
// common/mf.h nor proto/msg.h: both define FRI_ALGO_* enumerators, so the
// model math (solve.c) and the wire glue (handle.c, snap.c) live in
// separate translation units.
//
// Layers. A file calls only files of a lower layer (never its own layer,
// never a higher one), so a request flows one way: transport -> wire
// (session, decode) -> round state -> accumulator, and a round that must
// end is handed to the closer, which owns solve, sign and checkpoint.
// scripts/check-agg-layers.sh checks the built objects against this table.
//
//   9  args.c                 command line of the server
//   8  net.c uplink.c         transport (NNG), timers; an edge's link
//                             to its root
//   7  core.c                 composition: create, destroy, tick
//   6  handle.c               wire: sessions' frames, decode, seal
//   5  handle_sa.c            wire: secure-aggregation requests
//   4  agg.c session.c        round state (cohort, check-in, submit,
//                             deadlines, opening, hand-over to the
//                             closer and its thread); the session table
//   3  sa.c closer.c upstream.c
//                             secure round phases (report an outcome to
//                             agg.c); the closer (close, abandon, frame);
//                             the root's model installed at an edge
//   2  accumulate.c solve.c snap.c config.c edge_sums.c grow.c
//                             accumulators; model step; published model
//                             (identity, signed frame, served arrays);
//                             configuration checks; a tree's edge sums;
//                             the catalog's growth
//   1  latest.c latest_sa.c robust.c ckpt.c metrics.c journal.c ledger.c
//   0  carry.c bounds.c vbmf.c log.c errbuf.c keymap.c
//
// Each file's functions are declared in its own header (x.c: x.h; agg.c:
// rounds.h; metrics.c: counters.h; the public ones in agg.h), which a file
// includes only to call down; fixpt.h is a leaf of inline helpers. This
// header holds the data alone (struct fri_agg, one member per concern)
// and includes none of them, so aggregator headers include no cycle.
//
// Threads: many I/O threads run the wire and round state at once (round
// state under rs.mtx, the sums under sums.acc_mtx); one closer at a time
// runs closer.c, solve.c and latest.c (with cfg.closer_thread, on its
// thread).
#ifndef FR_AGGREGATOR_AGG_INT_H
#define FR_AGGREGATOR_AGG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "agg.h"
#include "dp.h"
#include "keys.h"
#include "tree.h"

typedef struct fri_snap fri_snap; // snap.h

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
    // Buffered mode: the round (model version) of the device's task while
    // SLOT_MEMBER. Slots survive a step while that task may still report.
    uint64_t task_round;
} fri_slot;

// Buffered mode: what a report computed on round r is checked and
// re-centred against (ring indexed by r mod max_staleness + 1).
typedef struct fri_round_info {
    uint64_t round;
    uint64_t version; // model version served in that round
    float    mu;      // its global mean
} fri_round_info;

enum { RS_OPEN = 0, RS_CLOSING = 1, RS_DONE = 2 };

typedef struct fri_sessions fri_sessions; // session.c
typedef struct fri_sa       fri_sa;       // sa.c

// Round and cohort state (agg.c; sa.c reads state and round), under mtx.
// mtx also guards the swap of the served model (fri_model_state) and the DP
// accountant (fri_dp_state).
typedef struct fri_rounds {
    pthread_mutex_t mtx;
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
    // The last completed round whose checkpoint was written (or failed):
    // devices learn that their masked delta was applied only then, so a
    // crash before the checkpoint cannot leave them committed to a delta
    // the restarted aggregator never saw.
    uint64_t        outcome_round;
    // Latest statistics under secure aggregation: the survivors of the
    // last round that unmasked (sa.c), kept after the round so that each
    // can learn whether its delta was applied, and each device's last
    // applied round (keymap.h; the closer adds a kept round's survivors),
    // told to it in SA_PARAMS. NULL / 0 otherwise.
    uint64_t            sa_out_round;
    uint32_t            sa_out_n;
    uint8_t            *sa_out_pk; // cohort-size keys
    struct fri_keymap  *applied;
    // Latest statistics without secure aggregation (rounds, not
    // buffered): each device's standing contribution (ledger.h), under
    // ledger_mtx; NULL otherwise.
    struct fri_ledger *ledger;
    pthread_mutex_t    ledger_mtx;
    uint8_t         sel_key[16]; // cohort sampling key of this round
    fri_agg_update_fn upd_hook;   // test hook
    void             *upd_hook_ctx;
    atomic_int        done;       // no round opens any more (lock-free)
    fri_round_info   *hist;       // buffered mode: max_staleness + 1
    // Buffered mode with a state directory: the journal of the open
    // buffer's reports (journal.h), -1 when none; jmtx orders appends.
    int               journal_fd;
    pthread_mutex_t   jmtx;
} fri_rounds;

// The model and what is published of it (snap.c, closer.c). Replaced only
// by the (exclusive) closer, under rounds.mtx, so the closer reads it
// without the lock and others copy it under the lock.
typedef struct fri_model_state {
    fri_snap *snap;    // MODEL frame of the current round
    float     mu;
    float    *bi;      // n_items
    float    *Q;       // n_items * k
    uint64_t  version;
    // Under DP, the model served while newer ones wait for a checkpoint
    // that holds their privacy accounting (held != 0).
    int       held;
    float     pub_mu;
    float    *pub_bi;
    float    *pub_Q;
    uint64_t  pub_version;
} fri_model_state;

// Privacy accountant of the released models, under rounds.mtx (the closer
// adds a round under the lock).
typedef struct fri_dp_state {
    fri_dp_accountant  dp_acc;
    uint64_t           dp_rounds;
    double             dp_q;      // sampling rate per round
    double             dp_cohort; // expected cohort size (the denominator)
    fri_agg_release_fn dp_hook;   // test hook (closer reads it)
    void              *dp_hook_ctx;
    fri_agg_sum_fn     sum_hook;  // simulation hook (closer reads it)
    void              *sum_hook_ctx;
} fri_dp_state;

// Server optimizer state (solve.c; closer only).
typedef struct fri_opt {
    float   *opt_m;
    float   *opt_v;
    uint64_t opt_t;
} fri_opt;

// The round's sums (accumulate.c), under acc_mtx. Sums in double: a float
// accumulator overflows on two devices sending +-3e38 (and loses honest
// precision over large cohorts). The closer converts them to float (accf)
// for the solve.
typedef struct fri_sums {
    pthread_mutex_t acc_mtx;
    double        **acc;       // per item, lazily allocated acc_len doubles
    float         **accf;      // closer: float copies of acc (touched)
    uint32_t       *touched;   // items with an accumulator, in order
    uint32_t        n_touched;
    double         *gram_all;  // iALS: sum of all client Grams
    float          *gram_allf; // its float copy (closer)
    double          sum_ratings;
    double          count;
    double          weight;
} fri_sums;

// Explicit ALS with cfg.stats_forget < 1 or cfg.stats_latest: item
// statistics carried across rounds, kept centred on the served mu (carry.c,
// solve.c, latest.c; closer only).
typedef struct fri_stats {
    float   **carry;     // per item, lazily allocated acc_len floats
    uint32_t *carried;   // items with carried statistics, in order
    uint32_t  n_carried;
    double    carry_sum; // carried rating sum and count (for mu)
    double    carry_count;
    float    *carry_gram; // iALS: the carried sum of the devices' Grams
} fri_stats;

// The closer thread (cfg.closer_thread, agg.c): the round-ending call sets
// close_act under closer_mtx and signals; the thread closes.
typedef struct fri_closer {
    pthread_t       thread;
    int             closer_ready;   // closer_mtx/cond initialised
    int             closer_started;
    pthread_mutex_t closer_mtx;
    pthread_cond_t  closer_cond;
    int             close_act;    // 0 none, 1 close, 2 abandon
    const char     *close_why;    // abandon reason (a string literal)
    uint64_t        close_now_ms;
    int             closer_quit;
} fri_closer;

// Counters (metrics.c reads them), lock-free.
typedef struct fri_counters {
    atomic_uint_fast64_t clients_seen;
    atomic_uint_fast64_t checkins;
    atomic_uint_fast64_t model_reads; // MODEL_ONLY check-ins (not above)
    atomic_uint_fast64_t accepted;
    atomic_uint_fast64_t rejected[FRI_REJ_COUNT_];
    atomic_uint_fast64_t bytes_in;
    atomic_uint_fast64_t bytes_out;
    atomic_uint_fast64_t n_sessions;
    // Robustness (docs/ROBUSTNESS.md).
    atomic_uint_fast64_t models_refused; // failed the sanity check
    atomic_uint_fast64_t ckpt_failures;  // checkpoint writes that failed
    atomic_uint_fast64_t items_skipped;  // item solves that failed
    atomic_uint_fast64_t staleness_sum;  // buffered: of accepted reports
    atomic_uint_fast64_t clear_frames;   // masked UPDATEs opened CLEAR
    atomic_uint_fast64_t sa_corrections; // dropout corrections taken
} fri_counters;

// A tree of aggregators (tree.h), under rs.mtx. Edge: waiting is set
// when its round closed (or before the first) until the root's next
// model opens one; out holds the last closed round's sums until taken.
typedef struct fri_tree {
    int          waiting;
    int          has_out;
    fri_agg_sums out;
    uint64_t     served; // last round id opened from the root's model
} fri_tree;

// The operator's requests for the catalog (grow.c), under rs.mtx, taken by
// the closer between rounds: the size asked for by fri_agg_grow_items (0
// none) and item content features handed in by fri_agg_set_item_features
// (NULL none).
typedef struct fri_catalog {
    uint32_t grow_to;
    float   *feat_next;
    uint32_t feat_next_g, feat_next_rows;
} fri_catalog;

// The aggregator: what create fixes (configuration, identity, sizes),
// then one member per concern.
struct fri_agg {
    fri_agg_config cfg;        // copied; cfg.allow points at allow below
    uint8_t       *allow;      // sorted n_allow keys
    char          *state_dir;
    fri_identity   id;         // the aggregator's identity (secret)
    uint8_t        pk[FR_PUBLICKEYBYTES]; // X25519 || Ed25519
    uint32_t       d;          // k + 1
    size_t         gram_len;   // floats in a client's Gram
    size_t         acc_len;    // floats in one item accumulator

    fri_rounds   rs;     // round and cohort state (mtx)
    fri_catalog  catalog; // what the operator asked of it (rs.mtx)
    fri_model_state model;  // the model and its publication (rs.mtx)
    fri_dp_state dp;     // privacy accountant (rs.mtx)
    fri_opt      opt;    // optimizer (closer)
    fri_sums     sums;   // the round's sums (sums.acc_mtx)
    fri_stats    stats;  // carried statistics (closer)
    fri_closer   closer; // the closer thread
    fri_counters ctr;    // counters (atomic)
    fri_tree     tree;   // edge or root of a tree (rs.mtx)

    fri_sessions     *sessions; // session.c
    fri_sa           *sa;       // secure aggregation, NULL when off
    fri_agg_masked_fn sa_hook;  // test hook (sa.c, under rs.mtx)
    void             *sa_hook_ctx;
    struct fri_vb    *vb;     // VBMF state (vbmf.h), NULL for others
    struct fri_robust *robust; // robust.h, NULL when cfg.robust == 0
};

// The catalog size. It only grows, and only the closer (or create) changes
// it, under rs.mtx and sums.acc_mtx after every per-item array has room
// (grow.c): a thread that reads it without those locks sees the old or the
// new count, and finds arrays at least that large under either lock.
static inline uint32_t
fri_agg_n_items(const fri_agg *a)
{
    return __atomic_load_n(&a->cfg.n_items, __ATOMIC_ACQUIRE);
}

#endif
