// Aggregator configuration: defaults and the checks fri_agg_create runs
// (agg.h).
#include "agg_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ckpt.h"
#include "config.h"
#include "dp.h"
#include "errbuf.h"
#include "fixpt.h"
#include "mf.h"
#include "secagg_als.h"
#include "secagg_ials.h"


// ---- configuration --------------------------------------------------------

void
fri_agg_config_init(fri_agg_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    fri_train_config tc;
    fri_train_config_init(&tc, FRI_TRAIN_ALS);
    cfg->n_items           = 0;
    cfg->k                 = tc.k;
    cfg->algo              = FRI_AGG_ALS;
    cfg->implicit          = 0;
    cfg->reg               = tc.reg;
    cfg->reg_bias          = tc.reg_bias;
    cfg->weighted          = tc.weighted;
    cfg->alpha             = tc.alpha;
    cfg->init_std          = tc.init_std;
    cfg->seed              = tc.seed;
    cfg->server_opt        = FRI_AGG_OPT_ADAM;
    cfg->server_lr         = 0.01f;
    cfg->momentum          = 0.9f;
    cfg->beta2             = 0.999f;
    cfg->adam_eps          = 1e-8f;
    cfg->clients_per_round = 0;
    cfg->fraction          = 0.0;
    cfg->min_clients       = 1;
    cfg->round_deadline_ms = 60000;
    cfg->rounds            = 0;
    cfg->retry_after_ms    = 1000;
    cfg->max_sessions      = 10000;
    cfg->session_ttl_ms    = 300000;
    cfg->max_frame         = (size_t) 64 << 20;
    cfg->log_level         = FR_LOG_INFO;
    cfg->dp                = FRI_AGG_DP_OFF;
    cfg->dp_delta          = 1e-5;
    cfg->secagg            = FRI_AGG_SECAGG_OFF;
    cfg->stats_forget      = 1.0f;
    cfg->rating_min        = 1.0f;
    cfg->rating_max        = 5.0f;
    cfg->max_user_norm     = 10.0f;
    cfg->max_residual      = 0.0f;
    cfg->max_ratings       = 0;
    cfg->max_item_norm     = 100.0f;

    cfg->max_sessions_per_key = 4;
    cfg->closer_thread        = 0;

    cfg->robust            = 1;
}

_Static_assert(FRI_CKPT_MAX_RDP == FRI_DP_N_ORDERS,
               "checkpoint accountant size");

// Expected cohort size of a round under DP (the fixed denominator of
// DP-FedAvg) and the per-user sampling rate q. 0 when not determined.
double
fri_agg_dp_expected_cohort(const fri_agg_config *c)
{
    double m = 0.0;
    if (c->fraction > 0.0 && c->fraction < 1.0) {
        m = c->fraction * (double) c->population;
        if (c->clients_per_round > 0 && m > (double) c->clients_per_round) {
            m = (double) c->clients_per_round;
        }
    } else if (c->clients_per_round > 0) {
        m = (double) c->clients_per_round;
    } else if (c->fraction >= 1.0) {
        m = (double) c->population;
    }
    return m;
}

static int
finite_nonneg(float v)
{
    return isfinite(v) && v >= 0.0f;
}

// Values per item of a masked statistics row (SPEC S1a, S1c).
static size_t
masked_row(int implicit, uint32_t k)
{
    return implicit ? fri_sa_ials_width(k) : fri_sa_als_width(k);
}

fr_err
fri_agg_config_check(const fri_agg_config *c, char *err, size_t err_cap)
{
#define BAD(...)                                                              \
    do {                                                                      \
        fri_agg_seterr(err, err_cap, __VA_ARGS__);                            \
        return FR_EINVAL;                                                     \
    } while (0)
    if (c == NULL) {
        BAD("no configuration");
    }
    if (c->n_item_features > 0 &&
        (c->algo != FRI_AGG_VBMF || c->n_item_features > FRI_AGG_MAX_FEATURES
         || c->item_feature_rows > FRI_AGG_MAX_ITEMS
         || (c->item_feature_rows > 0 && c->item_features == NULL))) {
        BAD("item features need algo vbmf, at most %u features and %u rows "
            "(got %u features, %u rows)", FRI_AGG_MAX_FEATURES,
            FRI_AGG_MAX_ITEMS, c->n_item_features, c->item_feature_rows);
    }
    if (c->n_items == 0 || c->n_items > FRI_AGG_MAX_ITEMS) {
        BAD("items must be in 1..%u (got %u)", FRI_AGG_MAX_ITEMS, c->n_items);
    }
    if (c->k == 0 || c->k > FRI_MF_MAX_K) {
        BAD("k must be in 1..%u (got %u)", FRI_MF_MAX_K, c->k);
    }
    if (c->algo != FRI_AGG_ALS && c->algo != FRI_AGG_GRAD &&
        c->algo != FRI_AGG_VBMF) {
        BAD("algo must be als, grad or vbmf");
    }
    if (c->implicit && c->algo != FRI_AGG_ALS) {
        BAD("implicit loss needs algo als (iALS)");
    }
    if (!finite_nonneg(c->reg) || !finite_nonneg(c->reg_bias)) {
        BAD("reg and reg-bias must be finite and >= 0");
    }
    if (c->algo == FRI_AGG_ALS && !c->weighted && c->reg <= 0.0f) {
        BAD("reg must be > 0 for unweighted ALS (singular systems)");
    }
    if (!finite_nonneg(c->alpha) || !finite_nonneg(c->init_std)) {
        BAD("alpha and init-std must be finite and >= 0");
    }
    if (c->server_opt != FRI_AGG_OPT_SGD &&
        c->server_opt != FRI_AGG_OPT_MOMENTUM &&
        c->server_opt != FRI_AGG_OPT_ADAM) {
        BAD("server-opt must be sgd, momentum or adam");
    }
    if (!isfinite(c->server_lr) || c->server_lr <= 0.0f) {
        BAD("server-lr must be > 0");
    }
    if (!isfinite(c->momentum) || c->momentum < 0.0f || c->momentum >= 1.0f ||
        !isfinite(c->beta2) || c->beta2 < 0.0f || c->beta2 >= 1.0f) {
        BAD("momentum and beta2 must be in [0, 1)");
    }
    if (!isfinite(c->adam_eps) || c->adam_eps <= 0.0f) {
        BAD("adam-eps must be > 0");
    }
    if (!isfinite(c->fraction) || c->fraction < 0.0 || c->fraction > 1.0) {
        BAD("fraction must be in [0, 1] (got %g)", c->fraction);
    }
    if (c->min_clients == 0) {
        BAD("min-clients must be >= 1");
    }
    if (c->clients_per_round > 0 && c->min_clients > c->clients_per_round) {
        BAD("min-clients (%u) exceeds clients-per-round (%u)",
            c->min_clients, c->clients_per_round);
    }
    if (c->round_deadline_ms < 100 ||
        c->round_deadline_ms > (uint64_t) 7 * 24 * 3600 * 1000) {
        BAD("round-deadline must be between 0.1 s and 7 days");
    }
    if (c->retry_after_ms == 0) {
        BAD("retry-after must be > 0");
    }
    if (!(c->stats_forget > 0.0f && c->stats_forget <= 1.0f)) {
        BAD("stats-forget must be in (0, 1] (got %g)",
            (double) c->stats_forget);
    }
    if (c->stats_forget < 1.0f && c->algo != FRI_AGG_ALS) {
        BAD("stats-forget < 1 needs ALS (explicit or implicit)");
    }
    if (c->stats_latest &&
        ((c->algo != FRI_AGG_ALS && c->algo != FRI_AGG_VBMF) || c->implicit ||
         c->stats_forget < 1.0f ||
         (c->dp != FRI_AGG_DP_OFF && c->dp != FRI_AGG_DP_CENTRAL) ||
         (c->clip > 0.0f && c->dp == FRI_AGG_DP_OFF))) {
        BAD("stats-latest needs explicit ALS or VBMF without stats-forget; "
            "under it, clip is the DP contribution bound (dp central only)");
    }
    if (c->stats_latest && c->dp != FRI_AGG_DP_OFF &&
        c->secagg != FRI_AGG_SECAGG_OFF) {
        // docs/DP.md, section 6: the masked statistics are bounded by
        // max-user-norm and max-residual, not by the DP norm, and their
        // members add no noise shares yet.
        BAD("dp with stats-latest needs secure-agg off (dp central on the "
            "plain statistics; masked statistics under DP are not "
            "implemented)");
    }
    if (c->model_format < FRI_AGG_MF_AUTO
        || c->model_format > FRI_AGG_MF_INT8) {
        BAD("model-format must be auto, fp32, fp16 or int8");
    }
    if (c->edge_shards > 0 &&
        (!c->edge || c->edge_shard >= c->edge_shards ||
         c->edge_shards > 1024)) {
        BAD("edge-shard I/N needs an edge (upstream), N in 1..1024 and I < N");
    }
    if (c->edge || c->root_max_devices > 0) {
        // docs/DEPLOY-TREE.md: the plain path first. An edge forwards its
        // round's sums; carried or latest statistics, DP noise and masked
        // sums across the tree are not implemented.
        if (c->edge && c->root_max_devices > 0) {
            BAD("an aggregator is an edge (upstream) or a root, not both");
        }
        if (c->dp != FRI_AGG_DP_OFF || c->stats_latest ||
            c->stats_forget < 1.0f) {
            BAD("a tree of aggregators needs dp off, stats-latest 0 and "
                "stats-forget 1 (not implemented yet)");
        }
        if (c->root_max_devices > 0 && c->secagg != FRI_AGG_SECAGG_OFF) {
            // Edges unmask their own cohorts' sums; the root sees sums.
            BAD("a root takes its edges' sums: secure-agg runs at the edges");
        }
        if (c->edge) {
            uint8_t acc = 0;
            for (size_t t = 0; t < sizeof(c->upstream_pk); t++) {
                acc |= c->upstream_pk[t];
            }
            if (acc == 0) {
                BAD("an edge needs the root's public key (upstream-key)");
            }
        }
    }
    if (c->buffer > 0) {
        // docs/DESIGN.md "Buffered mode". Masking needs a cohort fixed when
        // a round opens (every member's pairwise masks cancel only in the
        // sum of exactly the members that shared keys); a buffer fills
        // with whoever arrives, so there is no such group. The DP
        // accountant assumes one Poisson-sampled cohort per release.
        if (c->secagg != FRI_AGG_SECAGG_OFF) {
            BAD("buffer (asynchronous buffered mode) needs secure-agg off: "
                "masks cancel only within a cohort fixed when a round "
                "opens, and a buffer has none");
        }
        if (c->dp != FRI_AGG_DP_OFF) {
            BAD("buffer (asynchronous buffered mode) needs dp off (the "
                "accountant assumes one sampled cohort per model release)");
        }
        if (c->edge || c->root_max_devices > 0) {
            BAD("buffer (asynchronous buffered mode) is not available in a "
                "tree of aggregators");
        }
        if (c->clients_per_round != 0) {
            BAD("buffer (asynchronous buffered mode) has no cohort: "
                "clients-per-round must be 0 (fraction may thin arrivals)");
        }
        if (c->min_clients > c->buffer) {
            BAD("min-clients (%u) exceeds buffer (%u)", c->min_clients,
                c->buffer);
        }
        if (c->max_staleness > FRI_AGG_MAX_STALENESS) {
            BAD("max-staleness must be <= %u (got %u)", FRI_AGG_MAX_STALENESS,
                c->max_staleness);
        }
    } else if (c->max_staleness != 0) {
        BAD("max-staleness needs buffer > 0 (asynchronous buffered mode)");
    }
    if (c->max_sessions == 0) {
        BAD("max-sessions must be >= 1");
    }
    if (c->max_sessions_per_key == 0) {
        BAD("max-sessions-per-key must be >= 1");
    }
    if (c->session_ttl_ms < 1000) {
        BAD("session-ttl must be >= 1 s");
    }
    if (c->max_frame < 4096) {
        BAD("max-frame must be >= 4096 bytes");
    }
    if (c->n_allow > 0 && c->allow == NULL) {
        BAD("allow-list pointer missing");
    }
    if (!isfinite(c->clip) || c->clip < 0.0f) {
        BAD("clip must be finite and >= 0 (got %g)", (double) c->clip);
    }
    if (c->secagg != FRI_AGG_SECAGG_OFF && c->secagg != FRI_AGG_SECAGG_FULL &&
        c->secagg != FRI_AGG_SECAGG_PLUS) {
        BAD("secure-agg must be off, full or plus");
    }
    if (c->secagg != FRI_AGG_SECAGG_OFF) {
        if (c->algo != FRI_AGG_GRAD && c->algo != FRI_AGG_ALS
            && (c->algo != FRI_AGG_VBMF || !c->stats_latest)) {
            BAD("secure-agg needs algo grad, als (explicit or implicit) or "
                "vbmf with stats-latest (dense fixed-point updates)");
        }
        if (c->implicit && !(c->alpha > 0.0f && c->rating_max > 0.0f)) {
            BAD("secure-agg with implicit loss needs alpha > 0 and "
                "rating-max > 0 (alpha * rating-max bounds each masked "
                "confidence weight)");
        }
        if (c->clients_per_round < 2 || c->clients_per_round > 65535) {
            BAD("secure-agg needs clients-per-round in 2..65535 (the "
                "cohort is fixed when the round opens)");
        }
        if (c->algo == FRI_AGG_ALS || c->algo == FRI_AGG_VBMF) {
            if (c->clip > 0.0f) {
                BAD("secure-agg with algo als or vbmf bounds each member by "
                    "max-user-norm and max-residual, not clip (set clip 0)");
            }
            if (masked_row(c->implicit, c->k) > FRI_AGG_SA_MAX_WIDTH) {
                uint32_t kmax = 1;
                while (masked_row(c->implicit, kmax + 1) <=
                       FRI_AGG_SA_MAX_WIDTH) {
                    kmax++;
                }
                BAD("secure-agg with algo als or vbmf needs k <= %u (a "
                    "masked item row of %s values must fit the wire's %u; "
                    "got k = %u): lower k, or run plain with secure-agg off",
                    kmax,
                    c->implicit ? "k(k+1)/2 + k + 1" : "(k+1)(k+2)/2 + k + 1",
                    (unsigned) FRI_AGG_SA_MAX_WIDTH, c->k);
            }
        } else if (c->clip <= 0.0f) {
            BAD("secure-agg needs clip > 0 (it bounds the fixed-point "
                "range)");
        }
        if (c->algo == FRI_AGG_GRAD &&
            fri_sa_frac_bits(c->clip, c->clients_per_round) == 0) {
            BAD("clip %g is too large for a cohort of %u in 32-bit fixed "
                "point with >= 8 fractional bits",
                (double) c->clip, c->clients_per_round);
        }
    }
    if (!isfinite(c->rating_min) || !isfinite(c->rating_max) ||
        !(c->rating_min < c->rating_max)) {
        BAD("rating-min must be below rating-max (got %g, %g)",
            (double) c->rating_min, (double) c->rating_max);
    }
    if (!isfinite(c->max_user_norm) || !(c->max_user_norm > 0.0f) ||
        !isfinite(c->max_item_norm) || !(c->max_item_norm > 0.0f)) {
        BAD("max-user-norm and max-item-norm must be finite and > 0");
    }
    if (!isfinite(c->max_residual) || c->max_residual < 0.0f) {
        BAD("max-residual must be finite and >= 0 (0: 3 * rating span)");
    }
    if (c->dp != FRI_AGG_DP_OFF && c->dp != FRI_AGG_DP_CENTRAL &&
        c->dp != FRI_AGG_DP_DISTRIBUTED) {
        BAD("dp must be off, central or distributed");
    }
    if (c->dp != FRI_AGG_DP_OFF) {
        if (c->algo != FRI_AGG_GRAD && !c->stats_latest) {
            // Per-round statistics are re-sent whole every round, and the
            // bound counts each Gram once per rated item: only the latest
            // statistics (bounded deltas, noise on every round's sums) are
            // supported under DP (docs/DP.md, section 6).
            BAD("dp needs algo grad, or explicit als / vbmf with "
                "stats-latest (see docs/DP.md)");
        }
        if (c->dp == FRI_AGG_DP_DISTRIBUTED &&
            c->secagg == FRI_AGG_SECAGG_OFF) {
            BAD("dp distributed needs secure aggregation (secure-agg full "
                "or plus); without it use dp central");
        }
        if (c->clip <= 0.0f) {
            BAD("dp needs clip > 0 (the L2 sensitivity of an update)");
        }
        if (!isfinite(c->noise_multiplier) || c->noise_multiplier <= 0.0) {
            BAD("dp needs noise-multiplier > 0 (got %g)",
                c->noise_multiplier);
        }
        if (c->population == 0) {
            BAD("dp needs population (number of users that may take part)");
        }
        if (!(c->dp_delta > 0.0 && c->dp_delta < 1.0)) {
            BAD("dp-delta must be in (0, 1) (got %g)", c->dp_delta);
        }
        double m = fri_agg_dp_expected_cohort(c);
        if (m <= 0.0) {
            BAD("dp needs a sampled cohort: set clients-per-round or "
                "fraction");
        }
        if (m > (double) c->population) {
            BAD("expected cohort (%.0f) exceeds population (%llu)", m,
                (unsigned long long) c->population);
        }
    } else if (c->noise_multiplier != 0.0) {
        BAD("noise-multiplier needs dp central or distributed");
    }
    return FR_OK;
#undef BAD
}

int
fri_agg_model_format_parse(const char *s)
{
    static const char *const names[] = { "auto", "fp32", "fp16", "int8" };
    for (int i = 0; s != NULL && i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}
