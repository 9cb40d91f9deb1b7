// The aggregator core: sessions, rounds, cohort selection, accumulation of
// client statistics, the item solve or server optimizer step, checkpoints
// and metrics. No sockets here: fri_agg_handle() turns one request frame
// into one reply frame, so the NNG server (net.c), the simulator and the
// tests drive the very same code.
//
// Threads: every function taking a fri_agg * is thread-safe unless noted.
// fri_agg_handle() may run on many threads at once: decryption, decoding
// and validation run outside the global lock; only the cohort bookkeeping
// and the accumulation of an accepted update are serialised. The thread
// whose update (or tick) closes a round solves the new model; meanwhile
// check-ins get "retry later" and updates for that round FR_ELATE.
//
// Time is passed in (now_ms, any monotonic millisecond clock), so tests
// drive rounds with a fake clock.
#ifndef FR_AGGREGATOR_AGG_H
#define FR_AGGREGATOR_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/common.h" // fr_err, fr_log_fn, fr_log_level, key sizes

typedef struct fri_agg fri_agg;

// Clients are identified by their static X25519 public key (what the
// handshake authenticates).
#define FRI_AGG_KEYBYTES 32

typedef enum fri_agg_algo {
    FRI_AGG_ALS  = 0, // clients send sufficient statistics, server solves
    FRI_AGG_GRAD = 1, // clients send gradient rows, server optimizer steps
    FRI_AGG_VBMF = 2, // variational Bayes: ALS statistics with covariances
                      // plus a global block, server item step (vbmf.h)
} fri_agg_algo;

// Differential privacy (DP-FedAvg, docs/DP.md).
typedef enum fri_agg_dp {
    FRI_AGG_DP_OFF         = 0,
    FRI_AGG_DP_CENTRAL     = 1, // the aggregator noises the cohort sum
    FRI_AGG_DP_DISTRIBUTED = 2, // clients add noise shares (secure agg.)
} fri_agg_dp;

// Secure aggregation of masked fixed-point updates (docs/SECAGG.md).
typedef enum fri_agg_secagg {
    FRI_AGG_SECAGG_OFF  = 0,
    FRI_AGG_SECAGG_FULL = 1, // every pair of the cohort shares a mask
    FRI_AGG_SECAGG_PLUS = 2, // SecAgg+: masks along a sparse random graph
} fri_agg_secagg;

typedef enum fri_agg_opt {
    FRI_AGG_OPT_SGD      = 0,
    FRI_AGG_OPT_MOMENTUM = 1,
    FRI_AGG_OPT_ADAM     = 2,
} fri_agg_opt;

// Transparent; fri_agg_config_init() fills the defaults. Pointers are
// borrowed for fri_agg_create() only (everything is copied).
#define FRI_AGG_MAX_ITEMS (1u << 24) // the catalog's largest size (wire's)
#define FRI_AGG_CREDBYTES 136 // an edge credential (proto FRI_CRED_LEN)

typedef struct fri_agg_config {
    // Model shape and algorithm.
    uint32_t     n_items;
    uint32_t     k;
    fri_agg_algo algo;
    int          implicit; // iALS / implicit feedback
    float        reg;
    float        reg_bias;
    int          weighted; // weighted-lambda (see common/mf.h)
    float        alpha;    // iALS confidence slope
    float        init_std; // initial Q ~ N(0, init_std^2)
    uint64_t     seed;     // model init and cohort sampling
    // Server optimizer (algo == FRI_AGG_GRAD).
    fri_agg_opt server_opt;
    float       server_lr;
    float       momentum; // momentum coefficient, also Adam beta1
    float       beta2;    // Adam
    float       adam_eps;
    // Rounds.
    uint32_t clients_per_round; // 0: no cap
    double   fraction;          // 0: every check-in is selected
    uint32_t min_clients;       // reports needed to close at the deadline
    uint64_t round_deadline_ms;
    uint64_t rounds;         // completed rounds to run; 0 = forever
    uint32_t retry_after_ms; // told to clients without a task
    // Sessions.
    uint32_t max_sessions;
    uint64_t session_ttl_ms; // idle sessions expire after this
    size_t   max_frame;      // largest accepted request frame in bytes
    // Identity: the seed of the aggregator's identity (proto key file).
    uint8_t identity_seed[FR_SEEDBYTES];
    int     has_identity; // 0: a fresh identity (tests)
    // Optional allow-list: n_allow client X25519 keys, FRI_AGG_KEYBYTES
    // each (enforced in the handshake and at check-in).
    const uint8_t *allow;
    size_t         n_allow;
    // Checkpoint directory; NULL or "" keeps state in memory only.
    const char *state_dir;
    // Log sink (NULL: silent). Messages are logfmt: msg="..." key=value.
    fr_log_fn    log;
    void        *log_ctx;
    fr_log_level log_level;
    // ---- Privacy (appended; 0 everywhere = off) ----
    // L2 bound on each client's whole update, sent in TASK; 0 = no
    // clipping. Required (> 0) when dp != OFF: it is the sensitivity.
    float clip;
    // DP-FedAvg. dp == CENTRAL: at round close the aggregator adds
    // N(0, (noise_multiplier * clip)^2) to every coordinate of the summed
    // update (all items, touched or not, plus the rating sum and count) and
    // divides by the EXPECTED cohort size instead of the clients' weights.
    // Only algo == FRI_AGG_GRAD (see docs/DP.md, "ALS statistics").
    // DISTRIBUTED needs secagg != OFF (clients add the noise).
    fri_agg_dp dp;
    double     noise_multiplier; // z > 0 when dp != OFF
    // Number of users that may take part (the accountant's N); required
    // when dp != OFF. The sampling rate is q = expected cohort / population,
    // expected cohort = fraction * population (capped by clients_per_round)
    // or clients_per_round when fraction == 0.
    uint64_t population;
    double   dp_delta; // target delta of the reported epsilon (1e-5)
    // Nonzero: DP noise drawn from a stream seeded by (dp_seed, round) for
    // reproducible simulations and tests. It gives NO privacy against
    // anyone who knows the seed. 0: a fresh secret seed per round.
    uint64_t dp_seed;
    // Secure aggregation (Bonawitz et al. 2017; SecAgg+ with PLUS): members
    // send masked fixed-point dense updates and the aggregator learns only
    // their sum (fri_agg_sa_* below, SPEC.md §9). Needs algo GRAD with
    // clip > 0 (the quantization range), or explicit ALS without clip
    // (dense statistics bounded by max_user_norm, max_residual and the
    // rating range, docs/SECAGG.md §10), and clients_per_round >= 2 (the cohort is
    // fixed when the round opens). Shamir threshold: a strict majority of
    // each member's neighbours (fri_secagg_threshold), so a round survives
    // up to just under half of the cohort going silent after sending its
    // masked input.
    fri_agg_secagg secagg;
    // ---- Partial participation (appended) ----
    // Explicit ALS solves each item from sums over the users who rated it.
    // With every client in every round (the default, 1) one round's sums are
    // exact. When a round sees only a fraction q of the population, 1 keeps
    // only the cohort's sums and the model jumps from cohort to cohort;
    // stats_forget = q instead carries the item statistics across rounds,
    // S = (1 - q) S + cohort sums, whose expectation is the population's
    // sums. In (0, 1]; explicit ALS only. Carried sums live in memory: after
    // a restart they rebuild from the next rounds.
    float stats_forget;
    // ---- Bounded influence of one device (appended; docs/ROBUSTNESS.md)
    // Every UPDATE is checked against these before it is accumulated, and
    // every new model before it is committed. Defaults: rating range 1..5,
    // max_user_norm 10, max_residual 0 (= 3 * (rating_max - rating_min)),
    // max_ratings 0 (= n_items), max_item_norm 100.
    float    rating_min;    // explicit ratings lie in [rating_min,
    float    rating_max;    // rating_max]; iALS values in [0, rating_max]
    float    max_user_norm; // ||p_u|| of a device's user vector
    float    max_residual;  // |rating - mu - b_u| (|rating - prediction|)
    uint32_t max_ratings;   // rows (ratings + pseudo items) per update
    float    max_item_norm; // ||[q_i; b_i]|| of a committed model

    // ---- Pre-authentication limits and the closer (appended) ----
    // Sessions one client key may hold, unconfirmed (HELLO seen, no frame
    // authenticated yet) and confirmed each (default 4). A HELLO for a key
    // at its unconfirmed cap evicts that key's oldest unconfirmed session
    // (what forged HELLOs claiming an enrolled key can take is bounded);
    // a session confirmed past the confirmed cap evicts the key's least
    // recently used confirmed one (only the key's holder can do that).
    uint32_t max_sessions_per_key;
    // Nonzero: rounds are closed (solve, sign, checkpoint) by a dedicated
    // thread the aggregator owns, signalled by submit/tick, so transport
    // callbacks never block on a solve or an fsync. Zero (the default):
    // the call that ends the round closes it before returning, which keeps
    // virtual-clock simulations deterministic.
    int closer_thread;
    // ---- Robust aggregation (appended) ----
    // Nonzero (the default): statistical bounds on each device's influence
    // (unit weight, user-vector norm, per-item contribution caps, global
    // mean and count; aggregator/robust.h). 0 turns them off.
    int robust;
    // Latest statistics (explicit ALS or VBMF, plain aggregation): devices
    // send the change of their contribution since their last acknowledged
    // report (TASK stats_delta) and the aggregator keeps the running sum,
    // i.e. the sum of every device's latest statistics, re-centred on each
    // new mu (latest.c). Needs stats_forget == 1; clip only with dp
    // central, where it bounds each report's statistics norm and every
    // round's sums are noised (docs/DP.md, section 6). Like the carried
    // sums it lives in memory only.
    int stats_latest;
    // ---- Tree of aggregators (appended; docs/DEPLOY-TREE.md, tree.h) ----
    // Nonzero: an edge. It serves devices as usual but opens each round
    // from the root's signed MODEL frame (fri_agg_edge_open, verified
    // with upstream_pk) and closes it by handing the round's sums out
    // (fri_agg_edge_take) instead of solving. Plain aggregation only.
    int     edge;
    uint8_t upstream_pk[FR_PUBLICKEYBYTES]; // the root's X25519 | Ed25519
    // Nonzero: a root, accepting an edge's sums for the open round from a
    // member of its cohort (fri_agg_submit_sums), of at most this many
    // devices each.
    uint32_t root_max_devices;
    // Edge: the root's credential for this edge (SPEC.md §6.1.1), sent in
    // WELCOME to devices that accept one, so that devices pinning only
    // the root's key can use this edge.
    int     has_edge_cred;
    uint8_t edge_cred[FRI_AGG_CREDBYTES];
    // Edge: edge_shards > 0 makes this edge serve only the devices of shard
    // edge_shard (fri_agg_shard_of), so that with one edge per shard a
    // device can report through one edge only (two edges would otherwise
    // each count it in the same root round). 0: every device.
    uint32_t edge_shard;
    uint32_t edge_shards;
    // ---- Asynchronous buffered mode (appended; FedBuff, Nguyen et al.
    // 2022; docs/DESIGN.md "Buffered mode") ----
    // buffer = K > 0: no cohort and no round barrier. A "round" is one
    // model version: every check-in (thinned by fraction) gets a task for
    // the current version, reports computed on a version at most
    // max_staleness steps old are buffered (older ones: FR_ESTALE), and
    // the model steps as soon as K reports are in (or at the deadline
    // with >= min_clients; with fewer the buffer stays open). Gradient
    // reports are weighted 1/sqrt(1 + staleness); latest-statistics
    // deltas are re-centred on the current mu and added whole (exact).
    // With a state_dir the open buffer is journaled (journal.h) and
    // survives a restart. Needs secagg off, dp off, clients_per_round 0
    // and no tree.
    uint32_t buffer;
    uint32_t max_staleness; // <= FRI_AGG_MAX_STALENESS
    // ---- Model downloads (appended; SPEC 5.6 row encodings) ----
    // The encoding of the factor rows a device downloads, among those its
    // GET_MODEL accepts (F32 always): FRI_AGG_MF_* (auto: the smallest).
    int model_format;
    // ---- Item content features (appended; VBMF only) ----
    // item_feature_rows x n_item_features floats (genres, tags; item i's
    // row i, items from item_feature_rows on have none), copied at create:
    // each item's prior mean is regressed on them (fri_vb_set_features),
    // so that an item with few ratings, a new one above all, starts from
    // the items like it. NULL / 0: one prior for every item.
    const float *item_features;
    uint32_t     n_item_features; // <= FRI_AGG_MAX_FEATURES
    uint32_t     item_feature_rows; // <= FRI_AGG_MAX_ITEMS
} fri_agg_config;

#define FRI_AGG_MAX_FEATURES 64

typedef enum fri_agg_model_format {
    FRI_AGG_MF_AUTO = 0,
    FRI_AGG_MF_FP32 = 1,
    FRI_AGG_MF_FP16 = 2,
    FRI_AGG_MF_INT8 = 3,
} fri_agg_model_format;

// "auto", "fp32", "fp16" or "int8" as FRI_AGG_MF_*, -1 for anything else.
int fri_agg_model_format_parse(const char *s);

#define FRI_AGG_MAX_STALENESS 1000u

void fri_agg_config_init(fri_agg_config *cfg);

// Checks the configuration; on error writes a sentence naming the field
// into err (if err_cap > 0) and returns FR_EINVAL.
FR_NODISCARD fr_err fri_agg_config_check(const fri_agg_config *cfg,
                                         char *err, size_t err_cap);

// Creates an aggregator: validates cfg, loads the last checkpoint from
// cfg->state_dir if there is one (else initialises a model from cfg->seed)
// and opens the first round at now_ms. On failure *out is NULL and, if
// err_cap > 0, err says why (naming the checkpoint file when it is bad).
// Errors: FR_EINVAL (config), FR_EFORMAT (damaged checkpoint), FR_ESTATE
// (checkpoint made for another model shape/algorithm), FR_EIO, FR_ENOMEM.
FR_NODISCARD fr_err fri_agg_create(fri_agg **out, const fri_agg_config *cfg,
                                   uint64_t now_ms, char *err,
                                   size_t err_cap);
void fri_agg_destroy(fri_agg *a); // NULL is a no-op; wipes keys

// Public key of the aggregator's identity (clients pin it).
void fri_agg_public_key(const fri_agg *a, uint8_t pk[FR_PUBLICKEYBYTES]);

// Upper bound of any reply frame (size reply buffers with it).
size_t fri_agg_reply_bound(const fri_agg *a);

// Processes one request frame and writes the reply frame (always, also for
// refusals: an ERROR frame). Returns FR_OK when a reply was written, even
// an ERROR reply; FR_ENOSPC if reply_cap is too small (see
// fri_agg_reply_bound); other codes only when no reply can be produced
// (the transport should then drop the request).
FR_NODISCARD fr_err fri_agg_handle(fri_agg *a, uint64_t now_ms,
                                   const uint8_t *req, size_t req_len,
                                   uint8_t *reply, size_t reply_cap,
                                   size_t *reply_len);

// fri_agg_handle for a request buffer the caller owns and lets be
// overwritten: a sealed request is opened in place instead of copied.
FR_NODISCARD fr_err fri_agg_handle_inplace(fri_agg *a, uint64_t now_ms,
                                           uint8_t *req, size_t req_len,
                                           uint8_t *reply, size_t reply_cap,
                                           size_t *reply_len);

// Advances time-based state: expires idle sessions, closes or abandons a
// round whose deadline passed. Call it every ~100 ms.
void fri_agg_tick(fri_agg *a, uint64_t now_ms);

// Stops: abandons the open round (its partial sums are dropped; completed
// rounds are all checkpointed already) so that later check-ins get no task.
void fri_agg_stop(fri_agg *a, uint64_t now_ms);

// Nonzero once cfg->rounds completed rounds have been run (never when
// rounds == 0) or after fri_agg_stop().
int fri_agg_done(const fri_agg *a);

// ---- transport-independent round interface -------------------------------
// What fri_agg_handle() calls after the secure channel has authenticated a
// client key. Exposed for the simulator and the tests.

typedef struct fri_agg_task {
    int      has_task;       // 0: no task, retry after retry_after_ms
    uint32_t retry_after_ms;
    uint64_t round;
    uint64_t model_version;
    uint64_t deadline_ms;    // absolute, on the caller's clock
    uint32_t ms_left;        // deadline - now
    // Secure aggregation (secagg != 0): the cohort parameters. The client
    // is cohort member sa_index of sa_n (Shamir x = sa_index + 1); masks
    // run along fri_secagg_neighbors(sa_n, sa_degree, sa_graph_seed)
    // (sa_degree 0: complete graph); secrets are split with threshold
    // sa_threshold; the update is the dense vector of sa_dim values
    // (n_items rows of k + 1, then rating sum and count) quantized with
    // fri_secagg_quantize(clip = sa_clip, frac_bits = sa_frac_bits).
    int      secagg;
    uint32_t sa_index;
    uint32_t sa_n;
    uint32_t sa_degree;
    uint32_t sa_threshold;
    uint32_t sa_frac_bits;
    float    sa_clip;
    size_t   sa_dim;
    uint8_t  sa_graph_seed[32];
    // Distributed DP: per-member noise stddev (0 = none), i.e.
    // fri_dp_distributed_stddev(z * clip, m) with m the fewest masked
    // inputs a round is unmasked with (max(min_clients, 2)).
    float sa_noise_sd;
    // Explicit ALS (sa_als = 1): the vector is the normalized statistics
    // of common/secagg_als.h (sa_dim = n_items * (P + k + 1) + 2, sa_clip 1)
    // and the member clips its statistics to these bounds, the
    // aggregator's max-user-norm, max-residual (or 3 * rating span) and
    // max(|rating-min|, |rating-max|).
    int   sa_als;
    float sa_user_norm;
    float sa_residual;
    float sa_rating_abs;
} fri_agg_task;

// A client's CHECKIN for the current round. Always FR_OK for a valid key
// (a refusal is has_task == 0). FR_EDENIED if an allow-list is set and the
// key is not in it.
FR_NODISCARD fr_err fri_agg_checkin(fri_agg *a, uint64_t now_ms,
                                    const uint8_t pk[FRI_AGG_KEYBYTES],
                                    fri_agg_task *task);
// The same for a device re-reading its task in the open round (SA_PARAMS
// polls, repeated while its cohort fills): not counted as a check-in.
FR_NODISCARD fr_err fri_agg_task_again(fri_agg *a, uint64_t now_ms,
    const uint8_t pk[FRI_AGG_KEYBYTES], fri_agg_task *task);

// A decoded UPDATE. items are distinct catalog indices; row j belongs to
// items[j]. Content by mode (d = k + 1):
//  - ALS explicit: gram = x x^T packed (fri_packed_len(d)), rows[j] = h_uj
//    (d floats), sum_ratings/count for the global mean.
//  - ALS implicit: gram = p p^T packed (fri_packed_len(k)), rows[j] =
//    [c_j - 1, c_j p] (d floats).
//  - GRAD: gram unused, rows[j] = gradient w.r.t. [q_i; b_i] (d floats) of
//    the client's summed loss; weight = its interaction count;
//    sum_ratings/count for the global mean.
typedef struct fri_agg_update {
    uint64_t        round;
    uint32_t        n;
    const uint32_t *items;
    const float    *gram;
    size_t          gram_len;
    const float    *rows;
    size_t          rows_len; // n * (k + 1)
    double          sum_ratings;
    double          count;
    double          weight;
    // VBMF: the client's global block (vbmf.h, fri_vb_glob_len floats).
    const float    *vb;
    size_t          vb_len;
    // Buffered mode, set by the aggregator (callers leave them 0): how
    // many versions old the report's model is, and mu now minus the mu it
    // was computed against (latest statistics are re-centred by it).
    uint32_t staleness;
    float    stale_dmu;
} fri_agg_update;

// Submits an update from an authenticated client key. FR_OK: accepted.
// FR_ELATE (round closed or unknown), FR_EDUP (already reported this
// round), FR_EDENIED (not in the round's cohort), FR_EPROTO (shape,
// indices or values invalid); in buffered mode (cfg.buffer) also
// FR_ESTALE (computed on a version more than max_staleness steps old,
// refused before validation) and FR_EINTERNAL (the journal write failed). Every refusal is counted by reason. May
// close the round (and solve) before returning, or, with
// cfg.closer_thread, hand the close to the closer thread.
// The shard of a device key among n (n >= 1): the first 8 bytes of
// BLAKE2b-256(key), little-endian, mod n (docs/DEPLOY-TREE.md).
uint32_t fri_agg_shard_of(const uint8_t pk[FRI_AGG_KEYBYTES], uint32_t n);

FR_NODISCARD fr_err fri_agg_submit(fri_agg *a, uint64_t now_ms,
                                   const uint8_t pk[FRI_AGG_KEYBYTES],
                                   const fri_agg_update *u);

// ---- secure aggregation (cfg.secagg != OFF) -----------------------------
// Bonawitz et al. 2017 over the aggregator, phase by phase. Every call
// names the round; a call for a phase that has not started yet returns
// FR_OK with *retry_after_ms > 0 ("wait"), for a phase that is over
// FR_ELATE. Members are identified by the key they checked in with.
// Phases: ADVERT (members send signed key adverts) -> SHARE (they fetch
// the roster and send sealed shares for their neighbours) -> MASKED (they
// fetch the shares addressed to them, send the masked input) -> UNMASK
// (survivors reveal b-shares of survivors and c_sk-shares of dropped
// members). A phase ends when every live member has acted or at its
// deadline (round_deadline_ms after it began); the round then completes
// with the unmasked SUM only, or is abandoned if too few remain.

enum {
    // The cohort fills (check-ins join) until clients-per-round joined or
    // the phase deadline; the round's parameters (cohort size, graph,
    // threshold) are then set for the members that joined, and SA_PARAMS
    // is answered with SA_WAIT until then.
    FRI_AGG_SA_JOIN   = 0,
    FRI_AGG_SA_ADVERT = 1,
    FRI_AGG_SA_SHARE  = 2,
    FRI_AGG_SA_MASKED = 3,
    FRI_AGG_SA_UNMASK = 4,
};

// Sealed share size (fri_secagg_share_seal of b-share || c_sk-share).
#define FRI_AGG_SA_SEALED 104
#define FRI_AGG_SA_ADVERTBYTES 172 // fri_secagg_advert wire form
// Longest masked row (the wire's FRI_MAX_WIDTH): bounds k for masked ALS.
#define FRI_AGG_SA_MAX_WIDTH 1024

// Phase 1: the member's advert (wire form, FRI_AGG_SA_ADVERTBYTES bytes) and
// its Ed25519 identity key, which the advert's signature is checked
// against. FR_ECRYPTO on a bad signature or wrong index, FR_EDUP.
FR_NODISCARD fr_err fri_agg_sa_advert(fri_agg *a, uint64_t now_ms,
                                      const uint8_t pk[FRI_AGG_KEYBYTES],
                                      uint64_t round,
                                      const uint8_t id_pk[32],
                                      const uint8_t *advert,
                                      size_t advert_len);

// Roster after the advert phase: for each advertised member (ascending
// index) its index, Ed25519 key and advert. *n_out is set even on
// FR_ENOSPC (cap counts members). idx/id_pk/adverts are n_out-long arrays
// (id_pk 32 bytes, adverts FRI_AGG_SA_ADVERTBYTES bytes each).
FR_NODISCARD fr_err fri_agg_sa_roster(fri_agg *a, uint64_t now_ms,
                                      const uint8_t pk[FRI_AGG_KEYBYTES],
                                      uint64_t round, uint32_t *idx,
                                      uint8_t *id_pk, uint8_t *adverts,
                                      size_t cap, size_t *n_out,
                                      uint32_t *retry_after_ms);

// Phase 2: n sealed shares (FRI_AGG_SA_SEALED bytes each) for members
// to[0..n). Every recipient must be an advertised neighbour.
FR_NODISCARD fr_err fri_agg_sa_shares(fri_agg *a, uint64_t now_ms,
                                      const uint8_t pk[FRI_AGG_KEYBYTES],
                                      uint64_t round, const uint32_t *to,
                                      const uint8_t *sealed, size_t n);

// The sealed shares addressed to this member, from every member that
// completed phase 2 (ascending sender index). Available from the MASKED
// phase on; a member masks with exactly these senders.
FR_NODISCARD fr_err fri_agg_sa_inbox(fri_agg *a, uint64_t now_ms,
                                     const uint8_t pk[FRI_AGG_KEYBYTES],
                                     uint64_t round, uint32_t *from,
                                     uint8_t *sealed, size_t cap,
                                     size_t *n_out, uint32_t *retry_after_ms);

// Phase 3: the masked quantized vector (sa_dim words).
FR_NODISCARD fr_err fri_agg_sa_masked(fri_agg *a, uint64_t now_ms,
                                      const uint8_t pk[FRI_AGG_KEYBYTES],
                                      uint64_t round, const uint32_t *y,
                                      size_t dim);

// Phase 4 request: the members whose masked input is in the sum
// (survivors) and those that shared but sent no input (dropped).
FR_NODISCARD fr_err fri_agg_sa_unmask_req(
    fri_agg *a, uint64_t now_ms, const uint8_t pk[FRI_AGG_KEYBYTES],
    uint64_t round, uint32_t *survivors, size_t surv_cap, size_t *n_surv,
    uint32_t *dropped, size_t drop_cap, size_t *n_drop,
    uint32_t *retry_after_ms);

// Phase 4 answer: n revealed 32-byte shares, shares[j] about member
// about[j]: its b-share if it survived, its c_sk-share if it dropped (the
// aggregator refuses the other kind: revealing both would unmask it).
// corr (n_corr = sa_dim words, or NULL and 0): the member's dropout
// correction, the sum of its pair masks with the dropped members it
// reveals shares of (at least one; fri_secagg_correction); the closer
// subtracts it instead of recomputing those pairs. May complete the
// round (unmask, model step) before returning.
FR_NODISCARD fr_err fri_agg_sa_unmask(fri_agg *a, uint64_t now_ms,
                                      const uint8_t pk[FRI_AGG_KEYBYTES],
                                      uint64_t round, const uint32_t *about,
                                      const uint8_t *shares, size_t n,
                                      const uint32_t *corr, size_t n_corr);

// Test hook: called with every masked vector the aggregator receives
// (what it sees of one member under secure aggregation).
typedef void (*fri_agg_masked_fn)(void *ctx, uint32_t index,
                                  const uint32_t *y, size_t dim);
void fri_agg_set_masked_hook(fri_agg *a, fri_agg_masked_fn fn, void *ctx);

// ---- model and metrics ---------------------------------------------------

// Test and simulation hook: under DP (gradient mode) the thread closing a
// round calls fn with the released vector before it is divided by the
// expected cohort: n_items rows of k + 1 summed, noised gradient values,
// then the noised rating sum and count (n = n_items * (k + 1) + 2). The
// vector is only valid during the call. NULL removes the hook.
typedef void (*fri_agg_release_fn)(void *ctx, const float *v, size_t n);
void fri_agg_set_release_hook(fri_agg *a, fri_agg_release_fn fn, void *ctx);

// Simulation hook: the round's sums as the aggregator holds them before
// the model step (plain rounds, or the unmasked sum of a secure round: the
// same accumulators), which fn may change in place. Called by the thread
// closing the round, before the step and before DP noise; the view is only
// valid during the call. NULL removes the hook.
typedef struct fri_agg_sum_view {
    uint64_t        round;     // the aggregator's round
    uint32_t        n_updates; // updates (or unmasked members) summed
    uint32_t        n;         // items with a sum, in first-touched order
    const uint32_t *items;     // n item indices
    float *const   *rows;      // by item id: rows[items[j]], width floats
                               // each (writable)
    size_t          width;     // ALS: packed Gram then h; grad: k + 1
    double         *sum_ratings, *count; // writable
    float           mu;        // the current model, before the step
    const float    *bi, *Q;    // n_items, n_items * k
    uint32_t        n_items, k;
} fri_agg_sum_view;
typedef void (*fri_agg_sum_fn)(void *ctx, fri_agg_sum_view *v);
void fri_agg_set_sum_hook(fri_agg *a, fri_agg_sum_fn fn, void *ctx);

// Test and simulation hook: called with every validated update, before it
// is accumulated (on the submitting thread, no lock held): exactly what the
// aggregator gets to see of one client. u is valid only during the call.
// NULL removes the hook.
typedef void (*fri_agg_update_fn)(void *ctx,
                                  const uint8_t pk[FRI_AGG_KEYBYTES],
                                  const fri_agg_update *u);
void fri_agg_set_update_hook(fri_agg *a, fri_agg_update_fn fn, void *ctx);

// A catalog that grows (README, "A catalog that grows"): asks
// for n_items items. The closer extends the model after the next completed
// round, before the round after it opens (new items start at the item
// prior for VBMF, small random factors otherwise, zero bias); devices fetch
// that larger model like any new version. FR_EINVAL (err says why) when
// n_items is below the current or pending size or above FRI_AGG_MAX_ITEMS,
// FR_ESTATE at an edge (an edge grows to its root's catalog when it opens
// a round from the root's larger model). A restart keeps the larger of
// the checkpoint's size and cfg.n_items. Thread-safe.
FR_NODISCARD fr_err fri_agg_grow_items(fri_agg *a, uint32_t n_items,
                                       char *err, size_t err_cap);

// Replaces the item content features (as fri_agg_config.item_features;
// copied) from the next round boundary on: VBMF's prior is refitted with
// them, and items added later start from them. FR_EINVAL (err says why)
// without VBMF or for bad sizes or values. Thread-safe.
FR_NODISCARD fr_err fri_agg_set_item_features(fri_agg *a, const float *F,
                                              uint32_t n_features,
                                              uint32_t rows, char *err,
                                              size_t err_cap);

// Copies the current model (mu, bi: n_items, Q: n_items * k; copies at
// most bi_len / Q_len). Any output pointer may be NULL.
void fri_agg_model_copy(fri_agg *a, float *mu, float *bi, size_t bi_len,
                        float *Q, size_t Q_len, uint64_t *version);

typedef enum fri_agg_reject {
    FRI_REJ_LATE = 0,
    FRI_REJ_DUP,
    FRI_REJ_NOT_MEMBER,
    FRI_REJ_MALFORMED,
    FRI_REJ_CRYPTO,
    FRI_REJ_REPLAY,
    FRI_REJ_DENIED,
    FRI_REJ_SESSION_CAP,
    FRI_REJ_NO_SESSION,
    FRI_REJ_STATE,
    FRI_REJ_TOO_BIG,
    FRI_REJ_BOUNDS, // values outside the server-side bounds (bounds.h)
    FRI_REJ_STALE, // buffered mode: computed on a model too old
    FRI_REJ_RESYNC, // latest statistics: out of step with the ledger
    FRI_REJ_COUNT_
} fri_agg_reject;

// Prometheus label value of a reason ("late", "duplicate", ...).
const char *fri_agg_reject_name(fri_agg_reject r);

typedef struct fri_agg_metrics {
    uint64_t round;            // id of the current (open) round
    uint64_t rounds_completed;
    uint64_t rounds_abandoned;
    uint64_t model_version;
    uint64_t clients_seen;     // sessions established
    uint64_t checkins;
    uint64_t updates_accepted;
    uint64_t rejected[FRI_REJ_COUNT_];
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t sessions;         // live sessions
    uint32_t cohort;           // members of the open round
    uint32_t reported;         // their accepted updates
    int      round_open;
    float    mu;
    // Privacy (appended). dp_epsilon is the (epsilon, dp_delta) spent by
    // the dp_rounds noised rounds so far (across restarts); 0 when none.
    int      dp;               // fri_agg_dp
    float    clip;
    double   noise_multiplier;
    double   dp_q;             // sampling rate per round
    double   dp_delta;
    double   dp_epsilon;
    uint64_t dp_rounds;
    // Robustness (appended).
    uint64_t models_refused;      // new models that failed the sanity check
    uint64_t checkpoint_failures; // checkpoint writes that failed
    uint64_t item_solves_skipped; // items kept at their previous row
    int      model_held;          // DP: serving an older model until a
                                  // checkpoint holds the newer one's epsilon
    // Secure aggregation (appended): reconstructed secrets whose first
    // share subset failed its check (some holder sent a wrong share), and
    // rounds abandoned because unmasking failed (also in rounds_abandoned).
    uint64_t sa_share_mismatch;
    uint64_t sa_unmask_failed;
    // Model-only check-ins (CHECKIN flag MODEL_ONLY): devices that fetched
    // the model to recommend or evaluate and took no part in a round. Not
    // counted in checkins.
    uint64_t model_reads;
    // Buffered mode (appended): the sum over accepted reports of their
    // staleness (versions behind the model they were added to).
    uint64_t staleness_sum;
    // Masked UPDATEs that arrived sealed CLEAR (authenticated, not
    // encrypted: SPEC 6.3, R38), appended.
    uint64_t clear_frames;
    // Catalog (appended): items of the served model's catalog, and the
    // size asked for by fri_agg_grow_items and not applied yet (0 none).
    uint32_t n_items;
    uint32_t n_items_pending;
    // Secure aggregation (appended): dropout corrections taken (SPEC S4a;
    // each spares the closer the pairs of one survivor with the vanished).
    uint64_t sa_corrections;
} fri_agg_metrics;

void fri_agg_metrics_get(fri_agg *a, fri_agg_metrics *m);

// Renders metrics as Prometheus text (version 0.0.4) / as a JSON object.
// FR_ENOSPC if dst_cap is too small; 8192 bytes always suffice.
FR_NODISCARD fr_err fri_agg_metrics_prometheus(const fri_agg_metrics *m,
                                               char *dst, size_t dst_cap,
                                               size_t *dst_len);
FR_NODISCARD fr_err fri_agg_metrics_json(const fri_agg_metrics *m,
                                         char *dst, size_t dst_cap,
                                         size_t *dst_len);

#endif
