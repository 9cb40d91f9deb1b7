// A simulation spread over a group of processes (fedrec-sim --mpi,
// fr_sim_group): every rank serves its shard of the virtual devices
// (u % size == rank) from its own edge aggregator, and rank 0 also runs
// the root the edges report to over NNG tcp (docs/DEPLOY-TREE.md), each
// edge through the real uplink code (aggregator/uplink.h) on the
// simulator's virtual clocks. The group's collectives (MPI in fedrec-sim)
// keep the ranks in lockstep and bring the devices' results to rank 0.
//
// Devices pin the root's key only: each edge shows a root-signed
// credential, and the models they verify are the root's.
#ifndef FR_SIM_TREE_H
#define FR_SIM_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "../aggregator/agg.h"
#include "fedrec/sim.h"
#include "sim.h"

typedef struct fri_sim_tree fri_sim_tree;

// The identity seed of the simulator's aggregator (who 0: a single
// simulator's, or a tree's root) or of edge who - 1, derived from the
// run's seed so that every rank knows every public key.
void fri_sim_identity_seed(uint64_t seed, uint32_t who, uint8_t out[32]);

// Checks that c can run as a tree (say why in err if not), creates rank
// 0's root and its tcp server, and turns *ac (the configuration a single
// simulator aggregator would have) into this rank's edge configuration.
// server_pk receives the root's public key, which devices pin. cohort:
// the most devices one edge can claim in a round.
FR_NODISCARD fr_err fri_sim_tree_create(fri_sim_tree **out,
    const fri_sim_config *c, fri_agg_config *ac, size_t cohort,
    uint8_t server_pk[FR_PUBLICKEYBYTES], char *err, size_t err_cap);
// Connects this rank's edge (created from *ac) to the root.
FR_NODISCARD fr_err fri_sim_tree_link(fri_sim_tree *t, fri_agg *edge,
    char *err, size_t err_cap);
void fri_sim_tree_destroy(fri_sim_tree *t); // NULL is a no-op

uint32_t fri_sim_tree_rank(const fri_sim_tree *t);

// This rank's devices among users (in their order) into out; returns how
// many.
size_t fri_sim_tree_shard(const fri_sim_tree *t, const uint32_t *users,
    size_t n, uint32_t *out);

// Makes this rank's edge serve round `round` of the root (checking in
// with the root until it opens it), at the edge's time now_ms.
FR_NODISCARD fr_err fri_sim_tree_open(fri_sim_tree *t, uint64_t round,
    uint64_t now_ms, char *err, size_t err_cap);

// After this rank's edge closed round `round`: hands its sums to the root,
// waits for every rank, lets the root's deadline pass if some edge had
// nothing to send, and tells every rank how the root's round ended
// (*outcome: 1 completed, 2 abandoned).
FR_NODISCARD fr_err fri_sim_tree_close(fri_sim_tree *t, uint64_t round,
    uint64_t now_ms, int *outcome, char *err, size_t err_cap);

// Brings every rank's results for a job over users (the same list on
// every rank) to rank 0: local holds this rank's n_local records of size
// elem (in fri_sim_tree_shard's order); rank 0 gets in g_users / g_out
// the users and records of all ranks in rank order, *n_all of them.
FR_NODISCARD fr_err fri_sim_tree_gather(fri_sim_tree *t,
    const uint32_t *users, size_t n, const void *local, size_t n_local,
    size_t elem, uint32_t *g_users, void *g_out, size_t *n_all);

// Sums n counters over the ranks into sum (rank 0 only; every rank
// calls it). FR_ENET if the collective failed.
FR_NODISCARD fr_err fri_sim_tree_sum(fri_sim_tree *t, const uint64_t *v,
    size_t n, uint64_t *sum);

#endif
