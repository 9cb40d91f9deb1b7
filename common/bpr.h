// Bayesian personalised ranking (Rendle et al. 2009), the pairwise
// baseline for implicit feedback: SGD on -log sigmoid(x_ui - x_uj) for an
// observed item i and an unobserved item j of user u, with
// x_ui = b_i + p_u . q_i. Centralized only; a comparison point for iALS.
#ifndef FR_COMMON_BPR_H
#define FR_COMMON_BPR_H

#include "dataset.h"
#include "fedrec/err.h"
#include "mf.h"

// Trains on train (CSR by user; any stored value counts as one
// interaction). Uses c->k, epochs, lr (constant; lr_decay as in SGD),
// reg (factors), reg_bias (item biases), init_std and seed. One epoch is
// nnz(train) updates, each on a uniformly drawn observed (u, i) and an item
// j drawn uniformly among those u has not touched. Deterministic for a
// fixed seed. FR_EINVAL for an empty matrix or bad config; *out is NULL on
// failure. cb (may be NULL) is called after every epoch.
FR_NODISCARD fr_err fri_train_bpr(fri_mf_model **out, const fri_csr *train,
    const fri_train_config *c, fri_train_epoch_fn cb, void *ctx);

#endif
