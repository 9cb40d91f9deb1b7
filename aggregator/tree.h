// A tree of aggregators (docs/DEPLOY-TREE.md): edges serve devices and
// hand their round's sums up, the root combines them, solves and signs.
// Public entry points of both roles; the round state parts live in agg.c,
// the sums and the root's model frame in edge_sums.c.
#ifndef FR_AGGREGATOR_TREE_H
#define FR_AGGREGATOR_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"

// One edge's sums of one round: exactly what the root's solve needs of
// them (aggregator/accumulate.c). Rows are per touched item, in increasing
// item order, width values each: ALS/VBMF [packed Gram | h], iALS
// [sum (c - 1) G_u | sum c p], gradient [g]. glob: iALS the summed Gram of
// every device (P = (k+1)(k+2)/2), VBMF the global block (d + P + 2),
// else none.
typedef struct fri_agg_sums {
    uint64_t  round;
    uint32_t  n_devices; // devices whose updates are in the sums
    uint32_t  width;
    uint32_t  n_rows;
    uint32_t *items; // n_rows
    double   *rows; // n_rows * width
    uint32_t  n_glob;
    double   *glob; // n_glob (NULL when 0)
    double    sum_ratings;
    double    count;
    double    weight;
} fri_agg_sums;

// Frees the arrays of sums taken with fri_agg_edge_take (zeroes *s).
void fri_agg_sums_free(fri_agg_sums *s);

// Row width and global block length the aggregator a expects.
void fri_agg_sums_shape(const fri_agg *a, uint32_t *width, uint32_t *n_glob);

// Edge: moves out the sums of the last round it closed (a round closed
// with no update or abandoned hands out nothing). FR_ESTATE when none is
// pending. The caller owns *out (fri_agg_sums_free).
FR_NODISCARD fr_err fri_agg_edge_take(fri_agg *a, fri_agg_sums *out);

// Edge: whether it waits for the root's next model (its round closed, or
// none opened yet). The round id it last served is in *round (0: none).
int fri_agg_edge_waiting(fri_agg *a, uint64_t *round);

// Edge: opens round `round id of the frame` from the root's signed MODEL
// frame (plain, as fri_agg_model_frame or GET_MODEL give it), with
// deadline_ms. The signature is checked with cfg.upstream_pk (FR_ECRYPTO),
// the model's shape with the configuration (FR_EPROTO), and the round id
// must be above every round the edge served (FR_ELATE). FR_ESTATE when a
// round is open or closing. The frame is served to devices byte for byte.
FR_NODISCARD fr_err fri_agg_edge_open(fri_agg *a, uint64_t now_ms,
    const uint8_t *frame, size_t frame_len, uint64_t deadline_ms);

// Root: adds an edge's sums to the open round. pk must be a member of the
// round that has not reported (FR_EDENIED, FR_EDUP), s->round the open
// round (FR_ELATE / FR_ESTATE). The sums are checked against the bounds
// that s->n_devices bounded devices satisfy (FR_EPROTO; n_devices above
// cfg.root_max_devices: FR_ETOOBIG); a refused edge is done for the
// round, like a refused device. FR_ESTATE when a is not a root.
FR_NODISCARD fr_err fri_agg_submit_sums(fri_agg *a, uint64_t now_ms,
    const uint8_t pk[FRI_AGG_KEYBYTES], const fri_agg_sums *s);

// A copy of the signed plain MODEL frame of the open round (what GET_MODEL
// serves), malloc'd into *frame; its round id in *round.
FR_NODISCARD fr_err fri_agg_model_frame(
    fri_agg *a, uint8_t **frame, size_t *frame_len, uint64_t *round);

#endif
