// fedrec-sim privacy options: secure aggregation, clipping, differential
// privacy (central or distributed), pseudo-items, and the honest-but-curious
// aggregator's attacks (sim/attack.h) run on exactly what the aggregator
// sees, through its update and masked-vector hooks.
//
// Standalone (no sim.h): sim.h embeds these structs in its configuration
// and results; privacy.c implements the functions below.
#ifndef FR_SIM_PRIVACY_H
#define FR_SIM_PRIVACY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fedrec/err.h"

enum {
    FRI_SIM_ATTACK_ITEMS   = 1, // rated-item inference (AUC, precision)
    FRI_SIM_ATTACK_RATINGS = 2, // rating reconstruction, two rounds
};

// Values mirror fri_agg_secagg / fri_agg_dp (aggregator/agg.h).
typedef struct fri_sim_privacy {
    int      secagg;           // 0 off, 1 full, 2 plus
    int      secagg_set;       // --secure-agg given (else the default)
    float    clip;             // L2 bound of a client's update; 0 = none
    int      dp;               // 0 off, 1 central, 2 distributed
    double   noise_multiplier; // z
    double   dp_delta;         // target delta of the reported epsilon
    float    pseudo_rho;       // pseudo-items per real item (client)
    int      attack;           // FRI_SIM_ATTACK_* bits
} fri_sim_privacy;

// Privacy figures of one round, or pooled over a run (summary). NaN where
// not applicable (no DP, attack not run, or no individual rows to attack).
typedef struct fri_sim_priv_stats {
    double   epsilon;            // spent so far (after this round)
    double   attack_auc;         // mean over attacked user updates
    double   attack_precision;   // flagged (touched) precision
    double   attack_recall;      // flagged recall
    double   attack_prec_at_r;   // precision of the top |I_u|
    double   attack_rating_rmse; // reconstruction, pooled over ratings
    uint64_t attack_users;       // user updates scored by (a)
    uint64_t attack_ratings;     // ratings recovered by (b)
} fri_sim_priv_stats;

void fri_sim_privacy_init(fri_sim_privacy *p);
void fri_sim_priv_stats_init(fri_sim_priv_stats *s); // all NaN / 0

// If flag is a privacy flag, parses val into p, sets *rv (FR_OK or
// FR_EINVAL with a message in err) and returns 1; else returns 0.
int fri_sim_privacy_flag(fri_sim_privacy *p, const char *flag,
                         const char *val, fr_err *rv, char *err,
                         size_t err_cap);

// The --help section for the privacy flags (static text).
const char *fri_sim_privacy_usage(void);

// JSON keys of s (each preceded by a comma) for the round or summary line.
void fri_sim_privacy_json(FILE *f, const fri_sim_privacy *p,
                          const fri_sim_priv_stats *s, int summary);

#endif
