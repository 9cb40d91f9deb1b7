// libfedrec-client: the on-device half of fedrec.
//
// A client keeps one user's interactions (ratings or clicks), the user's
// factor vector and bias on the device; they never leave it. Per federated
// round it fetches the task and (when changed) the signed item model, fits
// the user vector in closed form, computes the item-side update for the
// user's items, and sends it encrypted. It also recommends on-device.
//
// The core does no I/O: fr_client_poll() produces the bytes to send to the
// aggregator and fr_client_receive() consumes its reply, so an app can carry
// them over any transport. fr_client_checkin_nng() runs the same exchange
// over NNG when the library is built with FR_CLIENT_WITH_NNG.
//
// Threads: there is no global mutable state. Different handles may be used
// from different threads at once; one handle is not thread-safe. A
// fr_model_cache may be shared by many handles and is thread-safe.
//
// Items are identified by their catalog index in [0, n_items) of the model
// the aggregator serves. Interactions with items beyond the current model's
// n_items are kept but ignored by the fit, the update and scoring.
//
// Memory: an idle handle (no check-in running) holds about 1 KiB plus 16
// bytes per interaction and 4*k bytes for its user vector; session keys and
// update buffers exist only during a check-in. Models live in the
// fr_model_cache (allocated with malloc, shared by reference).
#ifndef FEDREC_CLIENT_H
#define FEDREC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/common.h" // errors, FR_API, version, key sizes, logging

#ifdef __cplusplus
extern "C" {
#endif

// Caller-supplied allocator (zstd's ZSTD_customMem). All fields NULL means
// malloc/free.
typedef struct fr_allocator {
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} fr_allocator;

// A verified item model shared by many client handles of one process (the
// simulator runs thousands of virtual devices against one model). Thread-safe.
// It keeps the newest model per aggregator signing key; a handle only uses
// models signed by its own pinned key, and skips GET_MODEL when the task's
// model version is already cached.
typedef struct fr_model_cache fr_model_cache;

FR_API FR_NODISCARD fr_err fr_model_cache_create(fr_model_cache **out);
// Frees the cache. Every handle using it must be destroyed first.
FR_API void fr_model_cache_destroy(fr_model_cache *mc);

typedef struct fr_client fr_client;

// Transparent; filled with defaults by fr_client_config_init(). Fields are
// only ever appended, and struct_size tells the library which layout the
// application was compiled with: a library newer than the header accepts
// the older, smaller config (the fields it lacks take their defaults); a
// library older than the header refuses the larger one with FR_EVERSION
// instead of reading past its end.
typedef struct fr_client_config {
    // sizeof(fr_client_config) as the application compiled it. Set by
    // fr_client_config_init(); never change it.
    size_t struct_size;
    // The aggregator's public key, pinned. Required.
    uint8_t server_pk[FR_PUBLICKEYBYTES];
    // This device's identity seed. If has_identity is 0, the identity of
    // the state file is used, else a fresh one is drawn from the system RNG
    // (and kept in the state file, if any). has_identity != 0 overrides the
    // state file's identity.
    uint8_t identity_seed[FR_SEEDBYTES];
    int     has_identity;
    // State file (interactions, user vector, identity, cached model):
    // encrypted at rest with state_key, written atomically. NULL: memory
    // only. With a state_path, state_key must be a secret of the app's
    // (e.g. from the platform keystore): an all-zero key, what
    // fr_client_config_init() leaves, is refused with FR_EINVAL.
    const char *state_path;
    uint8_t     state_key[FR_STATEKEYBYTES];
    // Bounds that protect the device: largest model accepted. They also
    // bound the size of a reply the device accepts (fr_client_receive,
    // and the NNG adapter's receive limit).
    uint32_t max_items; // default 1 << 24
    uint32_t max_k;     // default 256
    // Optional shared model cache; NULL gives the handle a private one.
    fr_model_cache *model_cache;
    fr_allocator    allocator;
    fr_log_fn       log;     // NULL: silent
    void           *log_ctx;
    fr_log_level    log_level;
    // Seed for the handle's local randomness (initialisation, sampling);
    // 0 draws one from the system RNG. Simulations set it to be
    // reproducible. Never used for key material.
    uint64_t seed;
    // Pseudo-items (hiding which items the user rated, FedRec): besides
    // its rated items the update carries rows for round(rho * |I_u|)
    // unrated items with plausible virtual ratings, and reports (sum,
    // count) over the whole visible set. 0 = off (default); at most 100.
    // The fake set is drawn from a stream keyed by the identity seed, so it
    // stays the same across rounds while the interactions do not change
    // (fresh fakes every round could be intersected away). Applies to
    // explicit ALS statistics and gradient updates; implicit (iALS) and
    // local-delta tasks are sent without pseudo-items (logged at warn).
    float pseudo_items_rho;
    // Virtual-rating fill: 0 the current prediction plus noise of the
    // user's residual spread (default), 1 the same with a zero-mean
    // gradient row, 2 the user's mean rating (common/pseudo.h).
    int pseudo_fill;
    // ---- appended (config layout 2) ----
    // Largest secure-aggregation cohort the device takes part in (members
    // listed in a ROSTER); bounds the replies of a secure round. Default
    // 65535 (the protocol's maximum); 2..65535.
    uint32_t max_sa_members;
    // ---- appended (config layout 3) ----
    // Implicit feedback: the user fit weighs each interaction's strength
    // by 2^(-r / h), r = the number of the device's interactions newer
    // than it (by timestamp), h = this half-life in interactions, so that
    // recommendations follow what the user did last. Default 3 (chosen
    // on next-item validation); 0 = every interaction alike; at most 1e6.
    // Interactions without timestamps (all equal) are weighed alike.
    // Explicit ratings are not affected.
    double recency_half_life;
    // ---- appended (config layout 4) ----
    // Secure rounds: 1 verifies every neighbour's advert signature against
    // the identity key the roster gives for it; 0 (default) leaves that to
    // the aggregator, which verifies each advert against the sender's
    // authenticated session when it arrives. The roster's identity keys
    // come from the aggregator itself, so the device's check cannot catch
    // a dishonest aggregator (it would list keys of its own), and the
    // roster reaches the device sealed by the pinned aggregator: the check
    // costs 70 signature verifications per check-in at SecAgg+ degree 70
    // and guards nothing in fedrec's threat model (docs/SECAGG.md, section
    // 2). Set it where devices know each other's identities independently.
    int verify_adverts;
    // ---- appended (config layout 5) ----
    // Explicit ratings with a variational (VBMF) model: weight w of the
    // set of items the user rated in its own prior, SVD++'s implicit term
    // with tied factors (the prior mean of the user vector moves by
    // w |N|^-1/2 times the sum of the rated items' factors). Which items
    // a user chose says something the ratings alone do not. Device-side
    // only: nothing changes on the wire. Default 0.3 (chosen on
    // validation splits); 0 = off; at most 10.
    double svdpp_weight;
    // Implicit feedback: weight w of the last-item term in the device's
    // ranking and scores. Item i's score becomes p . q_i plus
    // kappa cos(t, q_i), t the unit factor vector of the newest
    // interaction by timestamp, kappa = w times the ratio of the two
    // scores' spreads over the catalog (FPMC's transition term with tied
    // factors). Needs timestamps (a history all at one time gets no term).
    // Default 1 (chosen on next-item validation); 0 = off; at most 100.
    // Device-side only: nothing changes on the wire.
    double transition_weight;
} fr_client_config;

// Fills cfg with defaults. A macro so that the size the application was
// compiled with reaches the library: only `size` bytes are written.
#define fr_client_config_init(cfg)                                          \
    fr_client_config_init_size((cfg), sizeof *(cfg))
FR_API void fr_client_config_init_size(fr_client_config *cfg, size_t size);

// Creates a client. If cfg->state_path names an existing file it is loaded
// (FR_ECRYPTO if state_key is wrong, FR_EFORMAT if the file is damaged; the
// file is left untouched). FR_EVERSION if cfg comes from a newer header
// than this library (cfg->struct_size larger than it knows), FR_EINVAL for
// a config not set up by fr_client_config_init(), an all-zero state_key
// with a state_path, or out-of-range fields; the reason goes to cfg->log
// (unless struct_size is unknown: then no field is trusted). On failure
// *out is NULL.
FR_API FR_NODISCARD fr_err fr_client_create(fr_client **out,
                                            const fr_client_config *cfg);
// Destroys c, wiping keys and the user vector. NULL is a no-op.
FR_API void fr_client_destroy(fr_client *c);

// Detail for the last error on this handle ("no error" if none); never
// NULL. The pointer is into the handle and stays valid until
// fr_client_destroy(c); the text is replaced by the next call on c that
// fails and cleared when a check-in begins, so copy it before calling into
// c again if it must be kept. Like the handle, not to be read while
// another thread uses c.
FR_API const char *fr_client_errmsg(const fr_client *c);

// This device's public key (to enrol it in an aggregator's allow-list).
FR_API void fr_client_public_key(const fr_client *c,
                                 uint8_t pk[FR_PUBLICKEYBYTES]);

// ---- Interactions --------------------------------------------------------

// Records a rating (explicit) or an interaction strength (implicit, e.g.
// 1 for a click) for item. A second call for the same item replaces the
// value. FR_EINVAL for a non-finite value.
FR_API FR_NODISCARD fr_err fr_client_add(fr_client *c, uint32_t item,
                                         float value, int64_t ts);
FR_API FR_NODISCARD fr_err fr_client_remove(fr_client *c, uint32_t item);
FR_API size_t fr_client_count(const fr_client *c);

// Writes the state file now (atomically: PATH.tmp in the same directory,
// fsync, rename, fsync of the directory), encrypted with
// XChaCha20-Poly1305 under state_key with a fresh random nonce. On failure
// the previous file is untouched. FR_ESTATE without a state_path, FR_EIO.
// It holds the identity, the interactions, the user vector, the model and
// the last contribution the aggregator acknowledged (latest-statistics
// mode), so save after each check-in: a device that forgets that
// contribution sends it again whole and is counted twice.
FR_API FR_NODISCARD fr_err fr_client_save(fr_client *c);

// ---- On-device recommendation --------------------------------------------

// Refits the user vector to the current interactions against the cached
// model (fold-in: new ratings count immediately, and a new user gets a
// vector from its first ratings). FR_ESTATE if no model has been fetched.
FR_API FR_NODISCARD fr_err fr_client_fold_in(fr_client *c);

// Predicted score for item. FR_ESTATE without a model, FR_ENOENT for an
// item outside the catalog.
FR_API FR_NODISCARD fr_err fr_client_predict(fr_client *c, uint32_t item,
                                             float *score);
// Predicted rating for item at time ts (seconds since the epoch): with an
// explicit model, fr_client_predict plus the user's bias on ts's day (UTC),
// the ridge mean of the day's residuals of this device's own ratings that
// carry timestamps (it adapts to the day's mood and never leaves the
// device). ts == 0 or an implicit model: fr_client_predict. Same errors.
FR_API FR_NODISCARD fr_err fr_client_predict_at(fr_client *c, uint32_t item,
                                                int64_t ts, float *score);

// Top-n items, excluding items the user has interacted with, best first.
// Writes min(n, available) entries and their count. With a point-estimate
// model (ALS, iALS, gradient) scores[j] is the predicted score; with a
// variational model (VBMF) items rank by what the model knows: scores[j]
// is the lower bound mean - sd of the predicted rating under the item's
// posterior variances, so an item few devices rated ranks below an equally
// scored well-known one.
FR_API FR_NODISCARD fr_err fr_client_recommend(fr_client *c, uint32_t *items,
                                               float *scores, size_t n,
                                               size_t *n_out);

// fr_client_recommend re-ranked for variety (maximal marginal relevance):
// from the FRI_MMR_POOL (5) x n best-ranked items (at least 50), picks
// greedily the item maximizing lambda * relevance - (1 - lambda) * its
// largest factor cosine with the items already picked, relevance being
// the rank score scaled to [0, 1] over that pool. lambda 1 is
// fr_client_recommend; lower trades accuracy for lists of less similar
// items. scores[j] is the item's rank score, as fr_client_recommend gives
// it (so the list is not sorted by it). FR_EINVAL for lambda outside
// [0, 1]; otherwise the errors of fr_client_recommend.
FR_API FR_NODISCARD fr_err fr_client_recommend_diverse(fr_client *c,
                                                       float      lambda,
                                                       uint32_t  *items,
                                                       float     *scores,
                                                       size_t     n,
                                                       size_t    *n_out);

// Explains item's score by this user's own interactions. weights[j] is the
// exact leave-one-out effect of interaction items[j]: the item's predicted
// score minus its score after a fold-in without that interaction (positive:
// the interaction raised the score). Writes the min(n, interactions)
// largest effects, largest first. With a ridge (ALS) or variational (VBMF)
// model the effects come in closed form from the user's one system, and
// only those that can reach the top n are computed: about the cost of one
// to two fold-ins. Implicit models refit once per interaction (with the
// last-item term of the shorter history: the score fr_client_predict
// reports).
// FR_ESTATE without a model, FR_ENOENT for an item outside the catalog; an
// empty history gives *n_out = 0.
FR_API FR_NODISCARD fr_err fr_client_explain(fr_client *c, uint32_t item,
                                             uint32_t *items, float *weights,
                                             size_t n, size_t *n_out);

// ---- Federated rounds ----------------------------------------------------

typedef enum fr_checkin_status {
    FR_CHECKIN_IDLE = 0,     // nothing started
    FR_CHECKIN_RUNNING,      // poll/receive in progress
    FR_CHECKIN_CONTRIBUTED,  // update accepted by the aggregator
    FR_CHECKIN_NOT_SELECTED, // no task for us now; see retry_after_ms
    FR_CHECKIN_FAILED,       // see the returned error and errmsg
    FR_CHECKIN_MODEL_ONLY,   // fr_client_model_begin: model fetched (or
                             // already current), nothing sent
} fr_checkin_status;

typedef struct fr_checkin_info {
    fr_checkin_status status;
    uint64_t          round;
    uint64_t          model_version;
    uint32_t          retry_after_ms;
    uint64_t          bytes_up;   // this check-in, all frames
    uint64_t          bytes_down;
} fr_checkin_info;

// Upper bound on the size of the next request this client will produce
// (it depends on the number of interactions and, once the task is known,
// its k). Call it before each fr_client_poll to size the buffer.
FR_API size_t fr_client_request_bound(const fr_client *c);

// Starts a check-in (a new secure session). now_ms is a monotonic clock.
FR_API FR_NODISCARD fr_err fr_client_checkin_begin(fr_client *c,
                                                   uint64_t now_ms);
// Starts a model-only check-in: the device fetches the aggregator's current
// model (unless it already holds it) to recommend or to evaluate it, and
// sends no update. The aggregator does not make it a member of any round,
// so it neither changes the model nor counts as a participant. Driven by
// the same poll/receive calls; ends as FR_CHECKIN_MODEL_ONLY.
FR_API FR_NODISCARD fr_err fr_client_model_begin(fr_client *c,
                                                 uint64_t now_ms);
// Writes the next request into dst. *dst_len == 0 means the check-in is
// over (see fr_client_checkin_info), unless its status is still
// FR_CHECKIN_RUNNING: then (secure aggregation) the aggregator asked the
// device to wait for the next phase; poll again after retry_after_ms. FR_ENOSPC (dst_cap too small) is
// recoverable: poll again with a larger buffer. Any other error ends the
// check-in as FR_CHECKIN_FAILED; the handle stays usable. Every request
// must be answered through fr_client_receive before the next poll.
FR_API FR_NODISCARD fr_err fr_client_poll(fr_client *c, uint8_t *dst,
                                          size_t dst_cap, size_t *dst_len);
// Consumes the aggregator's reply to the last request. An error (bad
// signature: FR_ECRYPTO; model above max_items/max_k: FR_ETOOBIG; an ERROR
// reply: its code) ends the check-in as FR_CHECKIN_FAILED with detail in
// fr_client_errmsg; the handle stays usable for the next check-in.
FR_API FR_NODISCARD fr_err fr_client_receive(fr_client *c, const uint8_t *src,
                                             size_t src_len);
FR_API void fr_client_checkin_info_get(const fr_client *c,
                                       fr_checkin_info *info);

// Runs a whole check-in over NNG (REQ socket dialled to url, e.g.
// "tcp://host:port", "ipc://path", "inproc://name"). The socket stays open
// across check-ins to the same url and is redialled after a transport
// error. Requests are never resent (a resend would be a replay); a missing
// reply gives FR_ETIMEDOUT after timeout_ms (<= 0: wait forever), a
// refused dial FR_ENET. Available when built with FR_CLIENT_WITH_NNG;
// otherwise returns FR_ESTATE.
FR_API FR_NODISCARD fr_err fr_client_checkin_nng(fr_client *c,
                                                 const char *url,
                                                 int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif // FEDREC_CLIENT_H
