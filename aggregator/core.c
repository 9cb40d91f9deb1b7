// Composition of the aggregator: create and destroy wire every part
// (identity, sessions, model and checkpoint, robust bounds, secure
// aggregation, rounds and the closer thread), and the timer tick drives
// the session table and the round state. The one file that may call every
// layer; nothing in the aggregator calls it (agg_int.h, "Layers").
#include "agg_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "bounds.h"
#include "keymap.h"
#include "ledger.h"
#include "carry.h"
#include "ckpt.h"
#include "config.h"
#include "dp.h"
#include "edge_sums.h"
#include "errbuf.h"
#include "grow.h"
#include "linalg.h"
#include "log.h"
#include "rng.h"
#include "robust.h"
#include "rounds.h"
#include "sa.h"
#include "session.h"
#include "snap.h"
#include "vbmf.h"


static int
cmp_key(const void *x, const void *y)
{
    return memcmp(x, y, FRI_AGG_KEYBYTES);
}

// Semantic check of a loaded checkpoint: the model it holds must pass the
// same sanity check as a freshly solved one (a poisoned model saved by an
// older version, or a file forged with a valid checksum, is refused and the
// previous checkpoint tried). Shape mismatches are reported by init_model.
// The carried / latest statistics of a checkpoint (format 4; none in
// older ones), which devices' next deltas are taken against.
static fr_err
restore_carry(fri_agg *a, const fri_ckpt *c)
{
    int carries = a->cfg.stats_latest || a->cfg.stats_forget < 1.0f;
    if (c->n_carried == 0 && c->n_glob == 0 && c->carry_count == 0.0) {
        return FR_OK;
    }
    if (!carries || (c->n_carried > 0 && c->acc_len != a->acc_len)) {
        return FR_EFORMAT;
    }
    if (c->n_glob > 0 && a->cfg.implicit) {
        // iALS: the carried Gram of every device.
        if (c->n_glob != a->gram_len) {
            return FR_EFORMAT;
        }
        float *g = malloc(a->gram_len * sizeof *g);
        if (g == NULL) {
            return FR_ENOMEM;
        }
        for (size_t t = 0; t < a->gram_len; t++) {
            g[t] = (float) c->glob[t];
            if (!isfinite(g[t])) {
                free(g);
                return FR_EFORMAT;
            }
        }
        free(a->stats.carry_gram);
        a->stats.carry_gram = g;
    } else if (c->n_glob > 0 &&
               (a->vb == NULL ||
                fri_vb_latest_set(a->vb, c->glob, c->n_glob) != FR_OK)) {
        return FR_EFORMAT;
    }
    return fri_agg_carry_restore(a, c->carried, c->carry, c->n_carried,
                                 c->carry_sum, c->carry_count);
}

// The per-device applied rounds of the checkpoint (latest statistics under
// secure aggregation; aggregator/keymap.h).
static fr_err
restore_applied(fri_agg *a, const fri_ckpt *c)
{
    for (uint32_t j = 0; j < c->n_applied; j++) {
        fr_err rv = fri_keymap_set(a->rs.applied,
            c->applied_keys + 32 * (size_t)j, c->applied_rounds[j]);
        if (rv != FR_OK) {
            return rv;
        }
    }
    return FR_OK;
}

static int
ckpt_check(void *ctx, const fri_ckpt *c, char *why, size_t why_cap)
{
    const fri_agg *a = ctx;
    if (c->k != a->cfg.k) {
        return 0;
    }
    // The catalog only grows, so a checkpoint of another size is restored
    // into the larger of the two (init_model); its own rows are checked.
    fri_agg_config cc = a->cfg;
    cc.n_items        = c->n_items;
    // mu 0 is the initial model's (no rating seen yet).
    return fri_bounds_model(&cc, c->mu, 0.0f, c->bi, c->Q, why, why_cap);
}

static fr_err
init_model(fri_agg *a, char *err, size_t err_cap)
{
    const size_t nq = (size_t) a->cfg.n_items * a->cfg.k;
    a->model.bi = calloc(a->cfg.n_items, sizeof(float));
    a->model.Q  = malloc(nq * sizeof(float));
    if (a->cfg.algo == FRI_AGG_GRAD && a->cfg.server_opt != FRI_AGG_OPT_SGD) {
        a->opt.opt_m = calloc((size_t) a->cfg.n_items * a->d, sizeof(float));
        if (a->cfg.server_opt == FRI_AGG_OPT_ADAM) {
            a->opt.opt_v =
                calloc((size_t) a->cfg.n_items * a->d, sizeof(float));
        }
    }
    if (a->cfg.stats_latest && a->cfg.secagg != FRI_AGG_SECAGG_OFF) {
        a->rs.applied = fri_keymap_create();
    }
    const int ledger = a->cfg.stats_latest
        && a->cfg.secagg == FRI_AGG_SECAGG_OFF && a->cfg.buffer == 0
        && !a->cfg.edge && a->cfg.root_max_devices == 0;
    if (ledger) {
        a->rs.ledger = fri_ledger_create(a->d, a->gram_len,
            a->cfg.algo == FRI_AGG_VBMF ? fri_vb_glob_len(a->cfg.k) : 0,
            a->cfg.implicit);
    }
    if (a->model.bi == NULL || a->model.Q == NULL
        || (ledger && a->rs.ledger == NULL)
        || (a->cfg.stats_latest && a->cfg.secagg != FRI_AGG_SECAGG_OFF
            && a->rs.applied == NULL)
        || (a->cfg.algo == FRI_AGG_GRAD && a->cfg.server_opt != FRI_AGG_OPT_SGD
            && a->opt.opt_m == NULL)
        || (a->cfg.server_opt == FRI_AGG_OPT_ADAM
            && a->cfg.algo == FRI_AGG_GRAD && a->opt.opt_v == NULL)) {
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
        a->model.Q[i] = (float) (fri_rng_normal(&r) * a->cfg.init_std);
    }
    a->model.mu         = 0.0f;
    a->model.version    = 0;
    a->rs.next_round = 1;
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
    // The catalog only grows (grow.c): a checkpoint with more items than
    // --items is the catalog; one with fewer is restored into the first
    // rows and the new items start as a running aggregator starts them.
    if (c.n_items > a->cfg.n_items) {
        fri_agg_log(a, FR_LOG_WARN,
                    "msg=\"the checkpoint has more items than --items; the "
                    "catalog only grows, its size is kept\" items=%u "
                    "checkpoint_items=%u",
                    a->cfg.n_items, c.n_items);
        fr_err g = c.k != a->cfg.k ? FR_ESTATE
                                   : fri_agg_grow_apply(a, c.n_items);
        if (g != FR_OK) {
            fri_agg_seterr(err, err_cap, "checkpoint in %s was made for "
                "another model (items=%u k=%u) or does not fit in memory",
                a->state_dir, c.n_items, c.k);
            fri_ckpt_free(&c);
            return g;
        }
    }
    const uint32_t n_ck = c.n_items;
    uint8_t        fp[FRI_CKPT_FPBYTES];
    fri_agg_fingerprint(a, n_ck, fp);
    if (memcmp(c.fingerprint, fp, sizeof(fp)) != 0 || c.k != a->cfg.k) {
        fri_agg_seterr(err, err_cap,
            "checkpoint in %s was made for another model (items=%u k=%u "
            "or another algo/loss/server-opt); use a new --state dir",
            a->state_dir, c.n_items, c.k);
        fri_ckpt_free(&c);
        return FR_ESTATE;
    }
    size_t ol = (size_t) n_ck * a->d;
    if ((a->opt.opt_m != NULL && (c.n_opt < 1 || c.opt_len != ol)) ||
        (a->opt.opt_v != NULL && (c.n_opt < 2 || c.opt_len != ol))) {
        fri_agg_seterr(err, err_cap, "checkpoint in %s lacks optimizer state",
            a->state_dir);
        fri_ckpt_free(&c);
        return FR_EFORMAT;
    }
    if (a->vb != NULL && c.version > 0 &&
        (c.n_vb == 0 ||
         fri_vb_state_set_prefix(a->vb, c.vb, (size_t) c.n_vb, n_ck) !=
             FR_OK ||
         fri_vb_refit_features(a->vb, c.Q, c.bi, n_ck) != FR_OK ||
         fri_vb_prior_rows(a->vb, n_ck, a->model.Q, a->model.bi) != FR_OK)) {
        fri_agg_seterr(err, err_cap,
            "checkpoint in %s lacks a valid VBMF state", a->state_dir);
        fri_ckpt_free(&c);
        return FR_EFORMAT;
    }
    if (a->rs.ledger != NULL && c.ledger_len == 0 && c.carry_count != 0.0) {
        // A running sum without the record of who holds what in it (a
        // checkpoint older than format 6): start the sum afresh; each
        // device is put back in step on its next report and sends its
        // contribution whole (ledger.h). The model is kept.
        fri_agg_log(a, FR_LOG_WARN,
            "msg=\"checkpoint has running statistics but no "
            "ledger: they restart from devices' whole "
            "contributions\"");
        rv = FR_OK;
    } else {
        rv = restore_carry(a, &c);
    }
    if (rv == FR_OK && c.ledger_len > 0) {
        fri_bounds bb;
        fri_bounds_of(&a->cfg, &bb);
        rv = a->rs.ledger != NULL ? fri_ledger_load(a->rs.ledger, c.ledger,
                 (size_t)c.ledger_len, a->cfg.n_items, bb.max_rows)
                                  : FR_EFORMAT;
    }
    if (rv == FR_OK && c.n_applied > 0) {
        rv = a->rs.applied != NULL ? restore_applied(a, &c) : FR_EFORMAT;
    }
    if (rv != FR_OK) {
        fri_agg_seterr(err, err_cap,
            "checkpoint in %s: carried statistics do not fit this "
            "configuration (%s)",
            a->state_dir, fr_errname(rv));
        fri_ckpt_free(&c);
        return rv;
    }
    if (a->vb == NULL && n_ck < a->cfg.n_items && c.version > 0) {
        fri_agg_init_rows(a, a->model.Q, a->model.bi, n_ck, a->cfg.n_items);
    }
    memcpy(a->model.bi, c.bi, (size_t) n_ck * sizeof(float));
    memcpy(a->model.Q, c.Q, (size_t) n_ck * a->cfg.k * sizeof(float));
    if (a->opt.opt_m != NULL) {
        memcpy(a->opt.opt_m, c.opt_state[0], ol * sizeof(float));
    }
    if (a->opt.opt_v != NULL) {
        memcpy(a->opt.opt_v, c.opt_state[1], ol * sizeof(float));
    }
    a->opt.opt_t          = c.opt_t;
    a->model.mu             = c.mu;
    if (c.n_rdp == FRI_DP_N_ORDERS) {
        // Privacy already spent before the restart keeps counting.
        memcpy(a->dp.dp_acc.rdp, c.rdp, sizeof(a->dp.dp_acc.rdp));
        a->dp.dp_rounds = c.dp_rounds;
    } else if (a->cfg.dp != FRI_AGG_DP_OFF && c.version > 0) {
        fri_agg_log(a, FR_LOG_WARN,
                    "msg=\"checkpoint has no privacy accountant; earlier "
                    "rounds were not noised and are not counted\"");
    }
    a->model.version        = c.version;
    a->rs.last_completed = c.round;
    a->rs.outcome_round  = c.round;
    // Rounds completed before the restart count towards cfg.rounds.
    a->rs.rounds_completed = c.version;
    a->rs.next_round = c.next_round > c.round ? c.next_round : c.round + 1;
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
    pthread_mutex_init(&a->rs.mtx, NULL);
    pthread_mutex_init(&a->rs.jmtx, NULL);
    pthread_mutex_init(&a->rs.ledger_mtx, NULL);
    a->rs.journal_fd = -1;
    pthread_mutex_init(&a->sums.acc_mtx, NULL);
    pthread_cond_init(&a->rs.cond, NULL);
    a->rs.state    = RS_CLOSING;
    a->rs.slot_cap = 64;
    a->rs.slots    = calloc(a->rs.slot_cap, sizeof(*a->rs.slots));
    a->sums.acc      = calloc(cfg->n_items, sizeof(double *));
    a->sums.accf     = calloc(cfg->n_items, sizeof(float *));
    a->sums.touched  = malloc((size_t) cfg->n_items * sizeof(uint32_t));
    if (cfg->implicit) {
        a->sums.gram_all  = calloc(a->gram_len, sizeof(double));
        a->sums.gram_allf = calloc(a->gram_len, sizeof(float));
    }
    if (cfg->algo == FRI_AGG_VBMF &&
        fri_vb_create(&a->vb, cfg->n_items, cfg->k, 0.0f, 0.0f, 0.0f) !=
            FR_OK) {
        a->vb = NULL; // reported with the other allocations below
    }
    if (a->vb != NULL && cfg->dp != FRI_AGG_DP_OFF) {
        fri_vb_set_noisy(a->vb, 1);
    }
    if (a->vb != NULL && cfg->n_item_features > 0 &&
        fri_vb_set_features(a->vb, cfg->item_features, cfg->n_item_features,
                            cfg->item_feature_rows) != FR_OK) {
        fri_agg_seterr(err, err_cap, "item features: not finite, or out of "
                                     "memory");
        fri_agg_destroy(a);
        return FR_EINVAL;
    }
    a->cfg.item_features = NULL; // the copy is the VBMF state's
    if (cfg->n_allow > 0) {
        a->allow = malloc(cfg->n_allow * FRI_AGG_KEYBYTES);
        if (a->allow != NULL) {
            memcpy(a->allow, cfg->allow, cfg->n_allow * FRI_AGG_KEYBYTES);
            qsort(a->allow, cfg->n_allow, FRI_AGG_KEYBYTES, cmp_key);
        }
    }
    a->cfg.allow     = a->allow;
    a->cfg.state_dir = NULL;
    fri_dp_accountant_init(&a->dp.dp_acc);
    if (cfg->dp != FRI_AGG_DP_OFF) {
        a->dp.dp_cohort = fri_agg_dp_expected_cohort(cfg);
        a->dp.dp_q      = a->dp.dp_cohort / (double) cfg->population;
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
    if (a->rs.slots == NULL || a->sums.acc == NULL || a->sums.accf == NULL ||
        a->sums.touched == NULL ||
        (cfg->implicit &&
         (a->sums.gram_all == NULL || a->sums.gram_allf == NULL)) ||
        (cfg->algo == FRI_AGG_VBMF && a->vb == NULL) ||
        (cfg->n_allow > 0 && a->allow == NULL) ||
        (cfg->state_dir != NULL && cfg->state_dir[0] != 0 &&
         a->state_dir == NULL)) {
        fri_agg_seterr(err, err_cap, "out of memory");
        fri_agg_destroy(a);
        return FR_ENOMEM;
    }
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
    if (cfg->rounds > 0 && a->rs.rounds_completed >= cfg->rounds) {
        atomic_store(&a->rs.done, 1);
    }
    rv = fri_agg_rounds_start(a, now_ms);
    if (rv != FR_OK) {
        fri_agg_seterr(err, err_cap, "%s",
                       rv == FR_ENOMEM ? "out of memory"
                       : rv == FR_EIO  ? "cannot open or read the buffer "
                                         "journal in the state dir"
                                       : "cannot start the closer thread");
        fri_agg_destroy(a);
        return rv;
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
    fri_agg_rounds_stop(a);
    fri_sessions_destroy(a);
    fri_sa_destroy(a);
    fri_keymap_destroy(a->rs.applied);
    fri_ledger_destroy(a->rs.ledger);
    if (a->sums.acc != NULL) {
        for (uint32_t j = 0; j < a->sums.n_touched; j++) {
            free(a->sums.acc[a->sums.touched[j]]);
            if (a->sums.accf != NULL) {
                free(a->sums.accf[a->sums.touched[j]]);
            }
        }
    }
    free(a->sums.acc);
    free(a->sums.accf);
    fri_agg_sums_free(&a->tree.out);
    free(a->model.pub_bi);
    free(a->model.pub_Q);
    if (a->stats.carry != NULL) {
        for (uint32_t j = 0; j < a->stats.n_carried; j++) {
            free(a->stats.carry[a->stats.carried[j]]);
        }
    }
    free(a->stats.carry);
    free(a->stats.carry_gram);
    free(a->stats.carried);
    free(a->catalog.feat_next);
    free(a->sums.touched);
    free(a->sums.gram_all);
    free(a->sums.gram_allf);
    fri_vb_destroy(a->vb);
    fri_robust_destroy(a->robust);
    free(a->rs.slots);
    free(a->rs.hist);
    free(a->allow);
    free(a->state_dir);
    free(a->model.bi);
    free(a->model.Q);
    free(a->opt.opt_m);
    free(a->opt.opt_v);
    fri_snap_unref(a->model.snap);
    fri_identity_wipe(&a->id);
    sodium_memzero(a->cfg.identity_seed, sizeof(a->cfg.identity_seed));
    if (a->rs.journal_fd >= 0) {
        close(a->rs.journal_fd);
    }
    pthread_mutex_destroy(&a->rs.jmtx);
    pthread_mutex_destroy(&a->rs.ledger_mtx);
    pthread_mutex_destroy(&a->rs.mtx);
    pthread_mutex_destroy(&a->sums.acc_mtx);
    pthread_cond_destroy(&a->rs.cond);
    free(a);
}


void
fri_agg_tick(fri_agg *a, uint64_t now_ms)
{
    fri_sessions_expire(a, now_ms);
    fri_agg_round_tick(a, now_ms);
}
