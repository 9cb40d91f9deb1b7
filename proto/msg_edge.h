// Messages of a tree of aggregators (SPEC.md §10, docs/DEPLOY-TREE.md).
// Same conventions as msg.h: encoders write one plain frame, decoders
// validate every length and value before anything is used and return
// views into src.
#ifndef FR_PROTO_MSG_EDGE_H
#define FR_PROTO_MSG_EDGE_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

enum {
    FRI_T_EDGE_SUMS = 32, // edge -> root: one round's sums
};

// Algorithm of the sums (the layout of their rows and global block).
enum {
    FRI_EDGE_ALS  = 1,
    FRI_EDGE_IALS = 2,
    FRI_EDGE_GRAD = 3,
    FRI_EDGE_VBMF = 4,
};

#define FRI_EDGE_SUMS_FIXED 64
// Devices one EDGE_SUMS may claim (a root's own cap is lower).
#define FRI_EDGE_MAX_DEVICES (1u << 24)

// EDGE_SUMS. Encode input: items[n_rows] (strictly increasing, <
// n_items), rows (n_rows * width doubles), glob (n_glob doubles). Decode
// output: the fixed fields, and views glob_le / rows_raw read with
// fri_edge_sums_get.
typedef struct fri_edge_sums_msg {
    uint64_t        round_id;
    uint32_t        n_devices; // 1..FRI_EDGE_MAX_DEVICES
    uint8_t         algo; // FRI_EDGE_*
    uint32_t        k;
    uint32_t        n_items; // the model's item count
    uint32_t        width; // fri_edge_sums_shape
    uint32_t        n_rows; // <= n_items
    uint32_t        n_glob; // fri_edge_sums_shape
    double          sum_ratings;
    double          count; // >= 0
    double          weight; // >= 0
    const uint32_t *items;
    const double   *rows;
    const double   *glob;
    const uint8_t  *glob_le;
    const uint8_t  *rows_raw;
} fri_edge_sums_msg;

// Row width and global block length for (algo, k); FR_EPROTO for an
// unknown algo, FR_ETOOBIG / FR_EPROTO for k outside 1..FRI_MAX_K.
FR_NODISCARD fr_err fri_edge_sums_shape(
    uint8_t algo, uint32_t k, uint32_t *width, uint32_t *n_glob);
// Encoded frame size, 0 if a limit is exceeded.
size_t fri_edge_sums_size(uint32_t n_glob, uint32_t width, uint32_t n_rows);
FR_NODISCARD fr_err fri_edge_sums_encode(
    uint8_t *dst, size_t dst_cap, size_t *dst_len, const fri_edge_sums_msg *m);
FR_NODISCARD fr_err fri_edge_sums_decode(
    fri_edge_sums_msg *m, const uint8_t *src, size_t src_len);
// Decoded rows and global block into host arrays (items: n_rows, rows:
// n_rows * width, glob: n_glob); any may be NULL.
void fri_edge_sums_get(
    const fri_edge_sums_msg *m, uint32_t *items, double *rows, double *glob);

#endif
