// Cold start on the device (`fedrec-sim --report cold-start`): a seeded
// tenth of the users with enough ratings never take part in training;
// after the last round each of them visits for the final model (a
// model-only check-in, like evaluation visits) and, on its own device,
// folds in its first n training ratings for n in FRI_SIM_CS_STEPS and
// scores its held-out ones: RMSE after n ratings (explicit) or HR@10 of
// its own top 10 (implicit), against the item-mean and popularity
// baselines computed from the training users' ratings.
#ifndef FR_SIM_COLDSTART_H
#define FR_SIM_COLDSTART_H

#include <stdint.h>
#include <stdio.h>

#include "fedrec/client.h"
#include "fedrec/err.h"

#define FRI_SIM_CS_N 5
// Ratings folded in at each point of the curve (the largest is the least
// number of training ratings a cold-start user needs).
extern const uint32_t FRI_SIM_CS_STEPS[FRI_SIM_CS_N];

typedef struct fri_sim_config fri_sim_config;
typedef struct fri_sim_pop    fri_sim_pop;

// One point of the curve, over the cold-start users.
typedef struct fri_sim_cs_point {
    uint32_t ratings;        // n
    double   rmse, mae;      // explicit: the device after n ratings
    double   item_mean_rmse; // explicit: the items' training means
    double   hr10;           // implicit: the device's own top 10
    double   popularity_hr10; // the 10 most popular items it has not seen
    uint64_t n_scored;       // held-out ratings (explicit) or users
} fri_sim_cs_point;

typedef struct fri_sim_cold fri_sim_cold;

// NULL *out (and FR_OK) when c does not ask for the report. FR_EINVAL with
// a message when no user has enough ratings.
FR_NODISCARD fr_err fri_sim_cold_create(fri_sim_cold **out,
                                        const fri_sim_config *c,
                                        const fri_sim_pop *p, char *err,
                                        size_t err_cap);
void fri_sim_cold_destroy(fri_sim_cold *cs);
// Whether user u is held out of training (0 when cs is NULL).
int fri_sim_cold_is(const fri_sim_cold *cs, uint32_t u);
// The held-out users, ascending.
const uint32_t *fri_sim_cold_users(const fri_sim_cold *cs, size_t *n);
// Runs the curve on device u's handle c, which holds the final model (its
// interactions are replaced). Different u may run concurrently.
void fri_sim_cold_device(fri_sim_cold *cs, fr_client *c, uint32_t u);
// The curve over every device run so far.
void fri_sim_cold_curve(const fri_sim_cold *cs,
                        fri_sim_cs_point pts[FRI_SIM_CS_N]);

#endif
