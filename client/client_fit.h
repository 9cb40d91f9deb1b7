// The round's local fit (fit.c), independent of the wire format.
#ifndef FR_CLIENT_FIT_H
#define FR_CLIENT_FIT_H

#include "client_internal.h"

typedef enum fri_fit_algo {
    FRI_FIT_ALS  = 1, // explicit ALS sufficient statistics
    FRI_FIT_IALS = 2, // implicit (weighted) ALS statistics
    FRI_FIT_GRAD = 3, // gradient rows w.r.t. [q_i; b_i]
    FRI_FIT_DELTA = 4, // local SGD epochs, rows = change of [q_i; b_i]
    FRI_FIT_VBMF = 5,  // variational statistics (fit_vbmf.c)
} fri_fit_algo;

typedef struct fri_fit_task {
    fri_fit_algo algo;
    uint32_t     k;
    float        reg;
    float        reg_bias;
    float        alpha;
    float        clip; // L2 bound on the whole update, 0 = none
    float        lr;   // DELTA: local learning rate
    uint32_t     local_epochs; // DELTA: passes (0 counts as 1)
    uint32_t     weighted;     // user-solve penalty scaling (mf.h)
    int          stats_delta;  // ALS/VBMF: send the change since the last
                               // acknowledged contribution (stats_delta.c)
} fri_fit_task;

// An update in host floats: rows[r*width ..] belongs to items[r] (strictly
// increasing), extra holds the per-user statistics:
//   ALS, IALS: packed Gram of [p_u; 1] ((k+1)(k+2)/2), sum, count
//   GRAD, DELTA: sum of values, count
// Rows: ALS h_ui = [p_u; 1](r_ui - mu - b_u); IALS [c_ui - 1, c_ui p_u];
// GRAD the loss gradient w.r.t. [q_i; b_i]; DELTA the local change of it.
typedef struct fri_update_buf {
    float    *extra;
    size_t    n_extra;
    float    *rows;
    uint32_t *items;
    uint32_t  n_rows;
    uint32_t  width; // k + 1
    float     weight; // number of interactions used
} fri_update_buf;

// Refits the user vector to c->model with the task's hyperparameters
// (stored as the handle's fit parameters) and fills u. On error u is empty.
fr_err fri_client_compute_update(fr_client *c, const fri_fit_task *t,
                                 fri_update_buf *u);
void   fri_update_buf_free(fr_client *c, fri_update_buf *u);
// VBMF (fit_vbmf.c): the variational user step against c->model (a VB
// model) and the update of kind VB: rows E[x (r - mu - b_u)], x = [p_u; 1];
// extra = packed E[x x^T], sum E[u], packed sum E[u u^T] (u = [p_u; b_u]),
// sum_j E[(r_j - mu - b_u)^2], 1 (user count), sum of ratings, count.
fr_err fri_client_vb_update(fr_client *c, const fri_fit_task *t,
                            fri_update_buf *u);

// Latest-statistics mode (stats_delta.c): keeps the full update u as the
// pending contribution and turns u into its difference from the last
// acknowledged one (re-centred on the model's mu). vb: VBMF extras layout.
// When the rated items changed since then: with old (dense deltas, one
// slot per item) u stays whole and *old gets the last contribution
// re-centred on mu (free with fri_stats_last_free; NULL otherwise), for
// the caller to subtract slot by slot; without old (sparse, one Gram per
// update) u becomes the retraction of the last contribution and the new
// one is sent whole next time.
struct fri_stats_last;
fr_err fri_client_stats_delta(fr_client *c, fri_update_buf *u, float mu,
                              int vb, struct fri_stats_last **old);
// The same with a contribution bound (the task's clip > 0, plain updates
// only): the contribution is scaled so its statistics norm
// (fri_dp_stats_norm2) is <= clip, then the delta that u becomes is
// bounded by clip as well, and the pending contribution is what the
// aggregator will hold after adding it (the last one plus the bounded
// delta, a point between old and new: still within clip). One report thus
// changes the released sums by at most clip (docs/DP.md, section 6).
fr_err fri_client_stats_delta_dp(fr_client *c, fri_update_buf *u, float mu,
                                 int vb, float clip);
// The pending contribution was acknowledged: it becomes the last one.
void fri_client_stats_commit(fr_client *c);
// The aggregator no longer holds any contribution of this device
// (FR_ERESYNC): forget the acknowledged and the pending one, so the next
// report is the whole contribution.
void fri_client_stats_forget(fr_client *c);
// A masked pending contribution whose outcome the device never learnt:
// commits it when applied_round (SA_PARAMS: the round of this device's
// last delta the aggregator applied) is the round it was sent in, drops
// it otherwise. Nothing for a plain pending one.
void fri_client_stats_resolve(fr_client *c, uint64_t applied_round);

#endif
