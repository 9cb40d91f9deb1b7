// fedrec-sim poisoning attacks by malicious devices and their measurement
// (docs/BENCHMARKS.md, robust aggregation).
//
// A seeded fraction of the devices (--malicious F) is malicious. Each one
// runs the real client up to its update (handshake, check-in, signed
// model, user fit) and then, instead of sending what the client computed,
// tampers with it and hands the result to the aggregator's update entry
// (fri_agg_submit, the call the wire decoder makes after opening the
// sealed frame) under its own authenticated key:
//
//   scale     the whole honest update times S (one device posing as S users)
//   signflip  the honest rows times -S (Gram and mean untouched)
//   random    Gaussian rows with S times the honest rows' norms; with
//             explicit ALS/VBMF random residuals (fake ratings) with S
//             times the honest residuals' RMS, on the device's own x
//
// Attacks on explicit ALS/VBMF know the aggregator's public hard bounds
// (aggregator/bounds.h) and keep every residual under 3 x the rating span,
// so what reaches the model is what the robust bounds have to stop.
//   absurd    1e30 in every reported quantity (finite, non-negative where
//             validation requires it): the class that poisons the mean
//   promote   FedRecAttack / PipAttack-style item promotion: a crafted
//             user vector (the mean factor of the items with the largest
//             biases, at the device's own norm) that rates --target-item
//             the maximum, its residual boosted S times; gradient mode
//             sends the matching boosted gradient row
//
// S is --attack-scale (default 10). With --target-item every run also
// measures the target's exposure on the honest evaluating devices after
// the last round: target_er5 / target_hr10, the share of those that did
// not rate it in training whose top 5 / top 10 recommendations
// (fr_client_recommend) contain it. --robust off turns the aggregator's
// bounds (aggregator/robust.h) off.
//
// Standalone (no sim.h), like privacy.h: sim.h embeds these structs.
#ifndef FR_SIM_POISON_H
#define FR_SIM_POISON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fedrec/err.h"

typedef enum fri_sim_poison_kind {
    FRI_SIM_POISON_NONE = 0,
    FRI_SIM_POISON_SCALE,
    FRI_SIM_POISON_SIGNFLIP,
    FRI_SIM_POISON_RANDOM,
    FRI_SIM_POISON_ABSURD,
    FRI_SIM_POISON_PROMOTE,
} fri_sim_poison_kind;

typedef struct fri_sim_poison {
    int     kind; // fri_sim_poison_kind
    double  malicious; // fraction of devices; default 0.01 with an attack
    int     malicious_set; // --malicious given
    int64_t target_item; // -1: none
    float   scale; // S
    int     robust; // aggregator bounds (default 1)
} fri_sim_poison;

// Results (summary): NaN / 0 when no target item.
typedef struct fri_sim_poison_stats {
    double   target_er5;
    double   target_hr10;
    uint64_t target_users; // honest evaluating devices counted
    uint64_t target_ratings; // training ratings of the target item
    uint64_t malicious; // malicious devices in the population
    uint64_t poisoned; // crafted updates accepted by the aggregator
    uint64_t refused; // crafted updates the aggregator refused
} fri_sim_poison_stats;

void fri_sim_poison_init(fri_sim_poison *p);
void fri_sim_poison_stats_init(fri_sim_poison_stats *s);

// If flag is a poisoning flag (--attack with a poisoning value,
// --malicious, --target-item, --attack-scale, --robust), parses val into
// p, sets *rv (FR_OK or FR_EINVAL with a message in err) and returns 1;
// else returns 0 (--attack items|ratings|both is a privacy flag).
int fri_sim_poison_flag(fri_sim_poison *p, const char *flag, const char *val,
    fr_err *rv, char *err, size_t err_cap);

// The --help section (static text).
const char *fri_sim_poison_usage(void);

// JSON keys (each preceded by a comma) for the summary line.
void fri_sim_poison_json(
    FILE *f, const fri_sim_poison *p, const fri_sim_poison_stats *s);

#endif
