// Internals of libfedrec-client shared by its source files (not installed).
//
// Memory budget: an idle handle (no check-in running) holds only what is
// listed in struct fr_client plus its interactions, its user vector (k
// floats) and a copy of the state path. Session keys, encode/decode
// buffers and solver workspaces live only for the duration of a call or a
// check-in, so thousands of idle handles stay small (target <= 2 KiB each
// beyond their interactions).
#ifndef FR_CLIENT_INTERNAL_H
#define FR_CLIENT_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fedrec/client.h"
#include "rng.h"

#define FRI_CLIENT_ERRMSG_CAP 128

// Config layouts the library accepts besides the current one. Layout 1
// ends at pseudo_fill (layout 2 appended max_sa_members); its sizeof is
// that end padded as the compiler pads the whole struct. Appending a field
// adds a layout here: a config of a known smaller size is copied up to its
// last field and the rest takes the defaults. A field that fits in the
// tail padding would leave sizeof unchanged: pad it out explicitly.
#define FRI_CLIENT_CONFIG_V1_END                                            \
    (offsetof(fr_client_config, pseudo_fill) + sizeof(int))
#define FRI_CLIENT_CONFIG_V1_SIZE                                           \
    ((FRI_CLIENT_CONFIG_V1_END + _Alignof(fr_client_config) - 1) /          \
     _Alignof(fr_client_config) * _Alignof(fr_client_config))

// Layout 2 ended with max_sa_members.
#define FRI_CLIENT_CONFIG_V2_END                                            \
    (offsetof(fr_client_config, max_sa_members) + sizeof(uint32_t))
#define FRI_CLIENT_CONFIG_V2_SIZE                                           \
    ((FRI_CLIENT_CONFIG_V2_END + _Alignof(fr_client_config) - 1) /          \
     _Alignof(fr_client_config) * _Alignof(fr_client_config))
_Static_assert(sizeof(fr_client_config) > FRI_CLIENT_CONFIG_V2_SIZE,
               "config layout 3 must differ in size from layout 2");

// Layout 3 ended with recency_half_life.
#define FRI_CLIENT_CONFIG_V3_END                                            \
    (offsetof(fr_client_config, recency_half_life) + sizeof(double))
#define FRI_CLIENT_CONFIG_V3_SIZE                                           \
    ((FRI_CLIENT_CONFIG_V3_END + _Alignof(fr_client_config) - 1) /          \
     _Alignof(fr_client_config) * _Alignof(fr_client_config))
_Static_assert(sizeof(fr_client_config) > FRI_CLIENT_CONFIG_V3_SIZE,
               "config layout 4 must differ in size from layout 3");

// Layout 4 ended with verify_adverts.
#define FRI_CLIENT_CONFIG_V4_END                                            \
    (offsetof(fr_client_config, verify_adverts) + sizeof(int))
#define FRI_CLIENT_CONFIG_V4_SIZE                                           \
    ((FRI_CLIENT_CONFIG_V4_END + _Alignof(fr_client_config) - 1) /          \
     _Alignof(fr_client_config) * _Alignof(fr_client_config))
_Static_assert(sizeof(fr_client_config) > FRI_CLIENT_CONFIG_V4_SIZE,
               "config layout 5 must differ in size from layout 4");

// Largest reply the handle accepts now: before the handshake a WELCOME or
// an ERROR; after it the largest sealed reply its bounds (max_items,
// max_k, max_sa_members) allow. fr_client_receive refuses longer input
// with FR_ETOOBIG and the NNG adapter sets it as the receive limit.
size_t fri_client_reply_bound(const fr_client *c);

// An immutable, verified item model. Shared by reference count between the
// model cache and every handle that uses it; never modified once published.
typedef struct fri_cmodel {
    atomic_uint_fast32_t refs;
    uint64_t             version;
    uint64_t             round;
    uint32_t             n_items;
    uint32_t             k;
    int                  implicit; // bi unused (zero) for implicit models
    float                mu;
    float               *bi;  // n_items
    float               *Q;   // n_items * k, row-major
    float               *qtq; // packed Q^T Q, k(k+1)/2 floats
    float *q_inv_norm; // implicit models: 1 / |q_i| (0 for a zero row)
    // Ed25519 key that signed the model (the pinned aggregator key of the
    // handle that verified it); a handle only uses models its own pinned
    // key vouches for.
    uint8_t signer[32];
    // Variational (VBMF) models only, else vb == 0 and NULL arrays (d =
    // k + 1): noise precision, user prior mean (d) and precision (packed
    // d(d+1)/2, and full d x d), items' covariance diagonals (n_items * d).
    int    vb;
    float  beta;
    float *umean;
    float *uprec_packed;
    float *uprec;
    float *item_var;
} fri_cmodel;

// fit_vbmf.c: allocates the VB arrays of m (sets m->vb); fri_cmodel_finish
// then derives the full precision. Freed by fri_cmodel_vb_free (called
// by fri_cmodel_unref).
fr_err fri_cmodel_vb_alloc(fri_cmodel *m);
fr_err fri_cmodel_vb_finish(fri_cmodel *m);
void   fri_cmodel_vb_free(fri_cmodel *m);
// Posterior mean of [p_u; b_u] against a VB model (c->model->vb): the
// variational user step (bayes.h fri_bpmf_user_step, rng NULL) over the
// interactions with items in the catalog. cov_out (packed d(d+1)/2 floats,
// may be NULL) receives the posterior covariance.
fr_err fri_client_vb_solve(fr_client *c, float *cov_out);
// The variational user step on the given interactions (catalog items,
// sorted) against c->model (a VB model), into p_out (k) and *bu_out;
// cov_out (packed, or NULL) receives the user's posterior covariance.
fr_err fri_client_vb_fit(fr_client *c, const uint32_t *items,
                         const float *values, size_t n, float *p_out,
                         float *bu_out, float *cov_out);

// Allocates a zeroed model of the given shape (arrays allocated, refs = 1).
// FR_EINVAL for k == 0, k > FRI_MF_MAX_K or n_items == 0, FR_ETOOBIG on
// size overflow, FR_ENOMEM.
fr_err fri_cmodel_alloc(fri_cmodel **out, uint32_t n_items, uint32_t k);
// Computes the derived data (Q^T Q) once arrays are filled.
fr_err fri_cmodel_finish(fri_cmodel *m);
fri_cmodel *fri_cmodel_ref(fri_cmodel *m);
void       fri_cmodel_unref(fri_cmodel *m); // NULL is a no-op
size_t     fri_cmodel_bytes(const fri_cmodel *m);

// The cache keeps the newest model per signer key. Thread-safe.
// Returns a new reference to the cached model with this version and
// signer, or NULL.
fri_cmodel *fri_model_cache_get(fr_model_cache *mc, uint64_t version,
                               const uint8_t signer[32]);
// Newest cached model of this signer (new reference) or NULL.
fri_cmodel *fri_model_cache_latest(fr_model_cache *mc,
                                  const uint8_t signer[32]);
// Publishes m (takes a reference of its own). If a model of the same
// version and signer is already cached, keeps that one and returns it in
// *used (new reference) so concurrent fetchers converge on one copy.
fr_err fri_model_cache_put(fr_model_cache *mc, fri_cmodel *m,
                           fri_cmodel **used);

// Hyperparameters of the fit, from the last task (defaults until one
// arrives). Persisted in the state file.
typedef struct fri_fit_params {
    float    reg;
    float    reg_bias;
    float    alpha;    // implicit confidence slope
    uint32_t weighted; // weighted-lambda regularisation
    uint32_t implicit;
} fri_fit_params;

void fri_fit_params_default(fri_fit_params *fp);

struct fri_session; // a running check-in (checkin.c)
struct fri_nng;     // the NNG adapter's socket (nng_transport.c)

struct fr_client {
    fr_allocator alloc;
    fr_log_fn    log;
    void        *log_ctx;
    fr_log_level log_level;

    uint8_t  server_pk[FR_PUBLICKEYBYTES];
    uint8_t  identity_seed[FR_SEEDBYTES];
    uint8_t  public_key[FR_PUBLICKEYBYTES];
    uint8_t  state_key[FR_STATEKEYBYTES];
    char    *state_path; // NULL: memory only
    uint32_t max_items;
    uint32_t max_k;
    uint32_t max_sa_members;

    fri_rng rng;

    fr_model_cache *cache;
    int             own_cache;
    fri_cmodel      *model; // reference to the model in use, or NULL

    // Interactions, sorted by item, parallel arrays of inter_cap entries.
    uint32_t *items;
    float    *values;
    int64_t  *ts;
    size_t    n_inter;
    size_t    inter_cap;

    // User vector: p_u (p_k floats) and b_u. fitted_version is the model
    // version it was fitted against and fitted_n the interaction count then;
    // a change triggers a fold-in before scoring.
    float   *p;
    uint32_t p_k;
    float    bu;
    int      fitted;
    uint64_t fitted_version;
    uint64_t inter_gen;  // bumped by every add/remove
    uint64_t fitted_gen; // inter_gen at the last fit

    fri_fit_params fit;
    float          recency_hl;  // implicit user fit half-life, 0 = off
    int            verify_adverts; // check the roster's signatures too
    float          svdpp;          // rated-set weight in the VB prior
    // Implicit last-item term (common/recency.h): weight, and what the
    // current fit gives: the profile t (k floats), kappa (0: no term) and
    // then every catalog item's score with the term (trans_n floats).
    float          trans_w;
    float         *trans_t;
    float          trans_kappa;
    int            trans_ready; // t, kappa and scores are the current fit's
    float         *trans_scores;
    size_t         trans_n;
    float          pseudo_rho;  // pseudo-items per rated item, 0 = off
    int            pseudo_fill; // fri_pseudo_fill
    uint64_t       last_round; // last round contributed to

    fr_checkin_info      info;
    struct fri_session  *session;
    struct fri_nng      *nng;

    char errmsg[FRI_CLIENT_ERRMSG_CAP];

    // Latest-statistics mode (TASK stats_delta): the contribution the
    // aggregator holds for this device (fri_stats_last) and the one just
    // sent, which replaces it once acknowledged.
    struct fri_stats_last *last;
    struct fri_stats_last *pending;
    // The secure round pending was sent in (0: a plain report, committed
    // only by its ACK). A masked member that never learnt the round's
    // outcome resolves it from its next SA_PARAMS (applied_round).
    uint64_t pending_round;
};

// A device's full contribution to the summed statistics: its rows (n x
// width, for items), its extras (Gram, VB global block, sum, count) and
// the global mean they were computed against. malloc'd (it may move
// between handles: the simulator keeps it while the handle is closed).
typedef struct fri_stats_last {
    uint32_t *items;
    float    *rows;
    uint32_t  n;
    uint32_t  width;
    float    *extra;
    size_t    n_extra;
    float     mu;
} fri_stats_last;

void fri_stats_last_free(fri_stats_last *l);


// Allocation through the handle's allocator. fri_free_wipe zeroes len bytes
// first (for anything that held plaintext state or keys).
void *fri_client_alloc(fr_client *c, size_t size);
void *fri_client_calloc(fr_client *c, size_t n, size_t size);
// Zeroed a * b * size bytes; NULL if the product overflows size_t (32 bits
// on armv7: counts from a reply times k times 4 can pass 4 GiB there).
void *fri_client_calloc2(fr_client *c, size_t a, size_t b, size_t size);
void  fri_client_free(fr_client *c, void *p);
void  fri_client_free_wipe(fr_client *c, void *p, size_t len);

// Sets the handle's error message (printf-style) and returns err; logs at
// error level when a log callback is set.
fr_err fri_client_fail(fr_client *c, fr_err err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void fri_client_logf(fr_client *c, fr_log_level lvl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// Makes m the model in use (takes a new reference; drops the old one).
void fri_client_set_model(fr_client *c, fri_cmodel *m);
// Ensures p has room for k floats (reallocates and zeroes on change).
fr_err fri_client_set_k(fr_client *c, uint32_t k);
// Refits the user vector against c->model with c->fit (fold-in).
fr_err fri_client_refit(fr_client *c);
// Refits only if the interactions or the model changed since the last fit.
fr_err fri_client_ensure_fitted(fr_client *c);

// Derives the public key (X25519 || Ed25519) from c->identity_seed.
fr_err fri_client_derive_public(fr_client *c);

// State file (state.c). Loading an absent file returns FR_ENOENT and leaves
// c untouched.
fr_err fri_state_load(fr_client *c, const char *path);
fr_err fri_state_save(fr_client *c, const char *path);

// Check-in teardown (checkin.c): frees the session, wiping its keys.
void fri_session_free(fr_client *c);
// NNG adapter teardown (nng_transport.c).
void fri_nng_free(fr_client *c);
#ifdef FR_CLIENT_WITH_NNG
// Maps an NNG error number to fr_err (the only place that does).
fr_err fri_err_from_nng(int rv);
#endif

#endif
