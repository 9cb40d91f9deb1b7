// In-memory secure-aggregation round driver (test support, docs/SECAGG.md
// section 6). Simulates a cohort end to end with the common/secagg.h
// functions: identity keys, signed adverts (verified), encrypted share
// exchange relayed through a simulated server, masked submissions,
// dropouts, recovery, unmasking. It holds every client's secrets in one
// process, so it lives with the tests and is linked only into the test
// executables that use it, never into a shipped library.
#ifndef FR_TESTS_COMMON_SECAGG_ROUND_H
#define FR_TESTS_COMMON_SECAGG_ROUND_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

typedef struct fri_secagg_round_config {
    uint64_t round_id;
    uint32_t n_clients;
    uint32_t degree; // 0: complete graph; else SecAgg+ graph degree
    uint32_t threshold; // 0: fri_secagg_threshold(graph degree)
    size_t   dim; // vector length d (uint32 words)
    uint64_t seed; // derives all keys and seeds (reproducible runs)
} fri_secagg_round_config;

typedef struct fri_secagg_round fri_secagg_round;

// Sets n_clients 0, degree 0, threshold 0, dim 0, seed 1, round_id 1.
void fri_secagg_round_config_init(fri_secagg_round_config *cfg);

// Runs the setup phases for all clients: keys, adverts (each verified by
// the others), Shamir splits sealed to every neighbour and opened by them.
// Errors: FR_EINVAL (n_clients < 2, dim 0, threshold > degree, ...),
// FR_ENOMEM, FR_ECRYPTO (should not happen). *out is NULL on failure.
FR_NODISCARD fr_err fri_secagg_round_create(
    fri_secagg_round **out, const fri_secagg_round_config *cfg);
// Wipes all secrets and frees. NULL is a no-op.
void fri_secagg_round_destroy(fri_secagg_round *r);

// Client `client` masks its quantized vector x (cfg.dim words) and the
// server adds it to the running sum. FR_EDUP if already submitted,
// FR_EINVAL on a bad index.
FR_NODISCARD fr_err fri_secagg_round_submit(
    fri_secagg_round *r, uint32_t client, const uint32_t *x);

// Marks a client that submitted as unresponsive in the recovery phase (it
// dropped after sending its masked vector): its vector stays in the sum,
// but it reveals no shares. FR_ESTATE if it has not submitted.
FR_NODISCARD fr_err fri_secagg_round_go_silent(
    fri_secagg_round *r, uint32_t client);

// Recovery: clients that never submitted are dropped; every responsive
// survivor reveals, per neighbour, the b-share of a survivor or the
// c_sk-share of a dropped client; the server reconstructs each secret with
// fri_secagg_recover (b against its advert commitment, c_sk against its
// advertised c_pk) and unmasks.
// sum_out (cfg.dim words) receives the plain mod-2^32 sum of the
// survivors' x; *n_survivors their number. FR_ESTATE if some client has
// fewer than t responsive neighbours or nobody submitted; FR_ECRYPTO on
// an inconsistent reconstruction. May be called once.
FR_NODISCARD fr_err fri_secagg_round_finish(
    fri_secagg_round *r, uint32_t *sum_out, size_t dim, uint32_t *n_survivors);

#endif
