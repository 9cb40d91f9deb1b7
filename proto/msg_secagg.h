// Secure-aggregation messages (types 16-24, SPEC.md §9). Same conventions
// as msg.h: encoders write one plain frame, decoders validate before
// anything is used and return views into src.
//
// Record lists (ROSTER, SHARES, SHARES_FWD, UNMASK) share one layout:
//   u64 round | u32 count | count x (u32 id | rec_len bytes)
// with rec_len fixed by the type (FRI_SA_REC_*). Ids are member indices
// (ROSTER: the member, SHARES: the recipient, SHARES_FWD: the sender,
// UNMASK: the member the share is about), strictly increasing.
#ifndef FR_PROTO_MSG_SECAGG_H
#define FR_PROTO_MSG_SECAGG_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

enum {
    // 16..21 are named in msg.h (FRI_T_SA_*); these complete the range.
    FRI_T_SA_POLL   = 22, // client: "send me message type `want`"
    FRI_T_SA_WAIT   = 23, // server: that phase has not started, retry
    FRI_T_SA_PARAMS = 24, // server: the member's cohort parameters
};

#define FRI_SA_ADVERTBYTES 172 // fri_secagg_advert wire form
#define FRI_SA_ADVERT_BODY (8 + 32 + FRI_SA_ADVERTBYTES)
#define FRI_SA_REC_ROSTER (32 + FRI_SA_ADVERTBYTES) // id_pk | advert
#define FRI_SA_REC_SHARE 104                          // sealed share pair
#define FRI_SA_REC_UNMASK 32                          // one revealed share
#define FRI_SA_LIST_FIXED 12
#define FRI_SA_POLL_BODY 12
#define FRI_SA_WAIT_BODY 16
#define FRI_SA_PARAMS_BODY 96
#define FRI_SA_UNMASK_REQ_FIXED 16
#define FRI_SA_MAX_MEMBERS 65535u

// SA_ADVERT: u64 round | Ed25519 identity key | advert.
typedef struct fri_sa_advert_msg {
    uint64_t       round_id;
    const uint8_t *id_pk;  // 32 bytes
    const uint8_t *advert; // FRI_SA_ADVERTBYTES
} fri_sa_advert_msg;

FR_NODISCARD fr_err fri_sa_advert_encode(uint8_t *dst, size_t dst_cap,
                                         size_t *dst_len,
                                         const fri_sa_advert_msg *m);
FR_NODISCARD fr_err fri_sa_advert_decode(fri_sa_advert_msg *m,
                                         const uint8_t *src, size_t src_len);

// A record list. Encode input: ids[count] and recs (count * rec_len
// bytes). Decode output: raw (count records of 4 + rec_len bytes, view
// into src); read record j with fri_sa_list_get.
// SA_UNMASK only: an optional dropout correction after the records,
// u32 n_corr | n_corr x u32 (SPEC §9.2, S4a; a member sends it only to an
// aggregator that announced SA_CORRECT). Encode: corr (n_corr words, NULL
// and 0 for none); decode: n_corr and corr_raw (view into src), read with
// fri_sa_list_corr_get.
typedef struct fri_sa_list {
    uint64_t        round_id;
    uint32_t        count;
    const uint32_t *ids;
    const uint8_t  *recs;
    const uint8_t  *raw;
    const uint32_t *corr;
    uint32_t        n_corr;
    const uint8_t  *corr_raw;
} fri_sa_list;

// Record length of a list type (17, 18, 19, 21); 0 for other types.
size_t fri_sa_rec_len(uint16_t type);
// Encoded frame size; 0 if count exceeds FRI_SA_MAX_MEMBERS or the frame
// limit, or type is not a list type.
size_t fri_sa_list_size(uint16_t type, uint32_t count);
FR_NODISCARD fr_err fri_sa_list_encode(uint8_t *dst, size_t dst_cap,
                                       size_t *dst_len, uint16_t type,
                                       const fri_sa_list *l);
FR_NODISCARD fr_err fri_sa_list_decode(fri_sa_list *l, uint16_t type,
                                       const uint8_t *src, size_t src_len);
void fri_sa_list_get(const fri_sa_list *l, uint16_t type, uint32_t j,
                     uint32_t *id, const uint8_t **rec);
// Size of an SA_UNMASK frame with count records and n_corr correction
// words (0: none); 0 when over the limits.
size_t fri_sa_unmask_size(uint32_t count, uint32_t n_corr);
// The decoded correction's words into out (l->n_corr of them).
void fri_sa_list_corr_get(const fri_sa_list *l, uint32_t *out);

// SA_POLL: u64 round | u16 want | u16 0. want is 7, 17, 19, 20 or 24.
// SA_WAIT: u64 round | u16 want | u16 0 | u32 retry_after_ms (> 0).
typedef struct fri_sa_poll {
    uint64_t round_id;
    uint16_t want;
    uint32_t retry_after_ms; // WAIT only
} fri_sa_poll;

FR_NODISCARD fr_err fri_sa_poll_encode(uint8_t *dst, size_t dst_cap,
                                       size_t *dst_len, uint16_t type,
                                       const fri_sa_poll *p);
FR_NODISCARD fr_err fri_sa_poll_decode(fri_sa_poll *p, uint16_t type,
                                       const uint8_t *src, size_t src_len);

// SA_PARAMS: u64 round | u32 index | u32 n | u32 degree | u32 threshold |
// u32 frac_bits | f32 clip | u64 dim | graph_seed[32] | f32 noise_sd |
// f32 user_norm | f32 residual | f32 rating_abs | u64 applied_round.
typedef struct fri_sa_params {
    uint64_t round_id;
    uint32_t index; // < n
    uint32_t n;     // 2..FRI_SA_MAX_MEMBERS
    uint32_t degree;
    uint32_t threshold; // 1..n-1
    uint32_t frac_bits; // <= 30
    float    clip;      // finite, > 0
    uint64_t dim;       // masked vector length in words, >= 1
    uint8_t  graph_seed[32];
    // Distributed DP: stddev of the Gaussian noise the member adds to each
    // coordinate before quantizing (0 = none); finite, >= 0.
    float noise_sd;
    // Explicit ALS (docs/SECAGG.md §10; all 0 for GRAD): the bounds the
    // member clips its statistics to, which also scale the normalized
    // vector: ||p|| <= user_norm, |r - mu - b_u| <= residual,
    // |r| <= rating_abs. Either all 0 or all finite and > 0.
    float user_norm;
    float residual;
    float rating_abs;
    // Latest statistics: the round of this member's last masked delta the
    // server applied (0 = none it knows of), < round_id. A member that
    // never learnt the outcome of its pending delta resolves it with this.
    uint64_t applied_round;
} fri_sa_params;

FR_NODISCARD fr_err fri_sa_params_encode(uint8_t *dst, size_t dst_cap,
                                         size_t *dst_len,
                                         const fri_sa_params *p);
FR_NODISCARD fr_err fri_sa_params_decode(fri_sa_params *p,
                                         const uint8_t *src, size_t src_len);

// SA_UNMASK_REQ: u64 round | u32 n_surv | u32 n_drop | n_surv u32 |
// n_drop u32 (each list strictly increasing, disjoint).
typedef struct fri_sa_unmask_req {
    uint64_t        round_id;
    uint32_t        n_surv;
    uint32_t        n_drop;
    const uint32_t *surv; // encode input
    const uint32_t *drop;
    const uint8_t  *ids_le; // decode output: n_surv + n_drop u32
} fri_sa_unmask_req;

size_t fri_sa_unmask_req_size(uint32_t n_surv, uint32_t n_drop);
FR_NODISCARD fr_err fri_sa_unmask_req_encode(uint8_t *dst, size_t dst_cap,
                                             size_t *dst_len,
                                             const fri_sa_unmask_req *r);
FR_NODISCARD fr_err fri_sa_unmask_req_decode(fri_sa_unmask_req *r,
                                             const uint8_t *src,
                                             size_t src_len);
// Id j of the decoded lists: survivors first, then dropped.
uint32_t fri_sa_unmask_req_id(const fri_sa_unmask_req *r, uint32_t j);

#endif
