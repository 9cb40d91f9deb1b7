// fedrec wire messages: frame header, message structs, encoders, decoders.
// proto/SPEC.md is normative; rule numbers (R1...) below refer to it.
//
// Conventions
// - Encoders write one plain frame (16-byte header + body) into
//   (dst, dst_cap) and set *dst_len; FR_ENOSPC if dst_cap is too small
//   (nothing useful is written then), FR_EINVAL if the struct breaks a
//   rule the decoder would reject (non-finite float, k > FRI_MAX_K, ...).
//   fri_*_size() gives the exact encoded size for a struct, so that a
//   caller can allocate once.
// - Decoders take one complete frame (src, src_len), validate everything
//   before touching memory they would allocate, and fill a struct. They
//   never allocate: variable-length parts are returned as pointers INTO
//   src (fields named *_le / *_raw, little-endian wire bytes). The decoded
//   struct is valid only while src is alive and unmodified. Convert with
//   the fri_*_get_* accessors (memcpy speed on little-endian hosts).
// - Decoders return FR_EPROTO (malformed), FR_EVERSION (other major),
//   FR_ETOOBIG (a size limit), and never read outside src.
// - All functions are thread-safe (no shared state).
#ifndef FR_PROTO_MSG_H
#define FR_PROTO_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

// ---- Versions, limits -------------------------------------------------

#define FRI_PROTO_MAJOR 1
#define FRI_PROTO_MINOR 0

#define FRI_HDR_LEN 16
#define FRI_MAX_FRAME ((size_t) 1 << 28) // whole frame, header included
#define FRI_MAX_K 512                     // latent factors
#define FRI_MAX_ITEMS ((uint32_t) 1 << 24) // item ids < this; rows <= this
#define FRI_MAX_WIDTH 1024                // floats per UPDATE row
// Longest "extra" vector: packed (k+1)x(k+1) Gram at FRI_MAX_K plus 16.
#define FRI_MAX_EXTRA                                                       \
    ((uint32_t) ((FRI_MAX_K + 1) * (FRI_MAX_K + 2) / 2 + 16))
#define FRI_MAX_ERRTEXT 256

// ---- Message types (R5: never reused) ---------------------------------

enum {
    FRI_T_HELLO = 1,
    FRI_T_WELCOME = 2,
    FRI_T_CHECKIN = 3,
    FRI_T_TASK = 4,
    FRI_T_GET_MODEL = 5,
    FRI_T_MODEL = 6,
    FRI_T_UPDATE = 7,
    FRI_T_ACK = 8,
    FRI_T_ERROR = 9,
    // 16..31 reserved for the secure-aggregation exchange (SPEC.md §5.10):
    FRI_T_SA_ADVERT = 16,     // client: key advertisement
    FRI_T_SA_ROSTER = 17,     // server: the cohort's adverts
    FRI_T_SA_SHARES = 18,     // client: encrypted shares for peers
    FRI_T_SA_SHARES_FWD = 19, // server: shares addressed to a client
    FRI_T_SA_UNMASK_REQ = 20, // server: survivors/dropouts, asks for shares
    FRI_T_SA_UNMASK = 21,     // client: the requested shares
};

// ---- Header flags (R4: undefined bits must be zero) --------------------

#define FRI_F_SEALED 0x00000001u // body is [session id|counter|ct|tag]
// With SEALED: the body is authenticated, not encrypted (a masked UPDATE
// only: it is one-time padded already; SPEC 6.3, R38).
#define FRI_F_CLEAR 0x00000002u
#define FRI_F_DEFINED (FRI_F_SEALED | FRI_F_CLEAR)

typedef struct fri_hdr {
    uint8_t  major;
    uint8_t  minor;
    uint16_t type;
    uint32_t flags;
    uint32_t body_len;
} fri_hdr;

// Writes the 16-byte header (magic "FRMF").
void fri_hdr_put(uint8_t dst[FRI_HDR_LEN], const fri_hdr *h);

// Parses and checks the header alone (R1-R4, R6): needs src_len >= 16;
// checks magic, major, reserved flag bits and body_len <= limit. Does NOT
// check body_len against src_len (a stream reader may use it to know how
// much to read).
FR_NODISCARD fr_err fri_hdr_get(fri_hdr *h, const uint8_t *src,
                                size_t src_len);

// fri_hdr_get plus R7 (body_len == src_len - 16). The common entry for a
// receiver that has a whole frame: it dispatches on h->type.
FR_NODISCARD fr_err fri_frame_check(fri_hdr *h, const uint8_t *src,
                                    size_t src_len);

// ---- Handshake bodies (built by channel.c; plain, never sealed) -------

#define FRI_HELLO_BODY 68   // e_c[32] s_c[32] u32 caps
#define FRI_WELCOME_BODY 64 // e_s[32] sid[8] sealed{u32 caps, u32 0}+tag

// ---- CHECKIN ----------------------------------------------------------

// Capability bits (CHECKIN.caps, HELLO caps, TASK needs).
#define FRI_CAP_ALS 0x0001u
#define FRI_CAP_GRAD 0x0002u
#define FRI_CAP_FP16 0x0004u
#define FRI_CAP_INT8 0x0008u
#define FRI_CAP_DELTA 0x0010u
#define FRI_CAP_SPARSE 0x0020u
#define FRI_CAP_SECAGG 0x0040u
#define FRI_CAP_IALS 0x0080u
#define FRI_CAP_VBMF 0x0100u
#define FRI_CAP_EDGE_CRED 0x0200u // HELLO: accepts an edge credential (§6.1.1)
// WELCOME: masked UPDATEs may come sealed CLEAR (§6.3, R38).
#define FRI_CAP_CLEAR_MASKED 0x0400u
// WELCOME: SA_UNMASK may carry a dropout correction (§9.2, S4a).
#define FRI_CAP_SA_CORRECT 0x0800u

// CHECKIN flags. MODEL_ONLY: the device only wants the current model (to
// recommend or to evaluate it) and will send no update; the aggregator
// answers TASK status MODEL and leaves the cohort untouched.
#define FRI_CHECKIN_MODEL_ONLY 0x0001u
#define FRI_CHECKIN_FLAGS_KNOWN FRI_CHECKIN_MODEL_ONLY

typedef struct fri_checkin {
    uint64_t client_id;     // application's id, 0 if none
    uint32_t caps;          // FRI_CAP_* (unknown bits are kept, not errors)
    uint8_t  proto_major;   // the client's protocol version
    uint8_t  proto_minor;
    uint64_t model_version; // model version held, 0 = none
    // FRI_CHECKIN_* (unknown bits: FR_EPROTO). Last, so that positional
    // initializers written before it existed keep their meaning.
    uint16_t flags;
} fri_checkin;

#define FRI_CHECKIN_BODY 24

// ---- TASK -------------------------------------------------------------

// MODEL: answer to a MODEL_ONLY check-in: fetch the model of round_id
// (GET_MODEL) and fit with the task's penalties; no update is expected.
enum { FRI_TASK_RUN = 0, FRI_TASK_NONE = 1, FRI_TASK_MODEL = 2 };
enum {
    FRI_ALGO_ALS  = 1,
    FRI_ALGO_IALS = 2,
    FRI_ALGO_GRAD = 3,
    FRI_ALGO_VBMF = 4, // variational Bayes MF (MODEL kind VB, UPDATE kind VB)
};

typedef struct fri_task {
    uint8_t  status;       // FRI_TASK_RUN, FRI_TASK_NONE or FRI_TASK_MODEL
    uint8_t  algo;         // FRI_ALGO_* (RUN only)
    uint8_t  update_kind;  // FRI_UPD_* the client must send
    uint8_t  secagg;       // 1: send fixed-point masked values
    uint64_t round_id;
    uint64_t model_version;
    uint32_t k;            // 1..FRI_MAX_K (RUN)
    uint32_t local_epochs;
    float    reg;          // L2 on factors, >= 0
    float    reg_bias;     // L2 on biases, >= 0
    float    lr;           // local learning rate, >= 0
    float    clip;         // L2 clip of the update, 0 = none, >= 0
    float    alpha;        // iALS confidence scale, >= 0
    uint32_t deadline_ms;  // time left to send UPDATE
    uint32_t retry_after_ms; // NONE: check in again after this
    uint8_t  weighted;     // user-solve penalty scaling: 0 plain, 1 x n,
                           // 2 x sqrt(n) (n = the user's ratings)
    uint8_t  stats_delta;  // 1: ALS/VB statistics as the change since the
                           // device's last acknowledged report (SPEC §10)
} fri_task;

#define FRI_TASK_BODY 60

// ---- GET_MODEL --------------------------------------------------------

#define FRI_ENC_F32_BIT 0x01u
#define FRI_ENC_F16_BIT 0x02u
#define FRI_ENC_I8_BIT 0x04u
#define FRI_ENC_I8C_BIT 0x08u

typedef struct fri_get_model {
    uint64_t round_id;
    uint64_t have_version; // a version the client holds (delta base), 0
    uint8_t  accept;       // FRI_ENC_*_BIT, at least F32
} fri_get_model;

#define FRI_GET_MODEL_BODY 20

// ---- MODEL ------------------------------------------------------------

// VB: a FULL model followed by the variational block (R31).
enum { FRI_MODEL_FULL = 0, FRI_MODEL_DELTA = 1, FRI_MODEL_VB = 2 };
// I8C (compact): f16 biases, rows f16 scale + i8[k], and for kind VB the
// item variances as 8-bit log codes (R37).
enum { FRI_MENC_F32 = 0, FRI_MENC_F16 = 1, FRI_MENC_I8 = 2, FRI_MENC_I8C = 3 };

#define FRI_SIGBYTES 64
#define FRI_MODEL_FIXED 104 // body bytes before the data: sig[64] + 40

typedef struct fri_model {
    uint64_t round_id;
    uint64_t version;
    uint64_t base_version; // DELTA: applies on top of this version; FULL: 0
    uint8_t  kind;         // FRI_MODEL_FULL / DELTA
    uint8_t  enc;          // FRI_MENC_*
    uint32_t k;            // 1..FRI_MAX_K
    uint32_t n_items;      // <= FRI_MAX_ITEMS
    float    mu;           // global mean (DELTA: its change)
    // Encode input: n_items biases and n_items rows of k floats at
    // factors + i * stride (stride >= k; 0 means k).
    const float *bias;
    const float *factors;
    size_t       stride;
    // Decode output (views into src): signature, bias bytes (f32 LE; f16
    // LE for I8C), factor bytes in the wire encoding.
    const uint8_t *sig;
    const uint8_t *bias_le;
    const uint8_t *fac_raw;
    // kind FRI_MODEL_VB only (d = k + 1): the noise precision beta > 0,
    // the user prior (mean: d floats, precision: packed upper triangle,
    // d(d+1)/2 floats, positive diagonal) and the diagonal of every
    // item's posterior covariance of [q_i; b_i] (n_items rows of d
    // variances >= 0). Encode input; decode sets beta and vb_le (view of
    // the block after beta: mean, precision, variances in the layout of
    // enc; read with fri_model_get_vb).
    float          beta;
    const float   *uprior_mean;
    const float   *uprior_prec;
    const float   *item_var; // row i at item_var + i * d
    const uint8_t *vb_le;
} fri_model;

// Encoded frame size for (enc, k, n_items); 0 if a limit is exceeded.
size_t fri_model_size(uint8_t enc, uint32_t k, uint32_t n_items);
// The same for kind FRI_MODEL_VB (FULL size plus the variational block).
size_t fri_model_vb_size(uint8_t enc, uint32_t k, uint32_t n_items);
// Variational block of a decoded VB model into host floats: mean (d),
// prec (d(d+1)/2 packed), item_var (n_items * d); any may be NULL.
// FR_EINVAL if m is not a decoded VB model.
FR_NODISCARD fr_err fri_model_get_vb(const fri_model *m, float *mean,
                                     float *prec, float *item_var);
// Encodes with an all-zero signature; sign with fri_model_sign
// (channel.h) before sending. FR_EINVAL also when a value does not fit
// the encoding (F16 and I8C: magnitudes >= 65504; I8C variances
// >= e^88).
FR_NODISCARD fr_err fri_model_encode(uint8_t *dst, size_t dst_cap,
                                     size_t *dst_len, const fri_model *m);
FR_NODISCARD fr_err fri_model_decode(fri_model *m, const uint8_t *src,
                                     size_t src_len);
// Decoded model -> host floats: bias[n_items], factors row i at
// factors + i * stride (stride >= k, 0 means k). Dequantizes f16/int8.
FR_NODISCARD fr_err fri_model_get(const fri_model *m, float *bias,
                                  float *factors, size_t stride);

// ---- UPDATE -----------------------------------------------------------

// VB: ALS rows plus the variational extras (fri_update_vb_extra, R32).
enum {
    FRI_UPD_ALS   = 1,
    FRI_UPD_GRAD  = 2,
    FRI_UPD_DELTA = 3,
    FRI_UPD_VB    = 4,
};
enum { FRI_UPD_DENSE = 0, FRI_UPD_SPARSE = 1 };
enum { FRI_VAL_F32 = 0, FRI_VAL_FIXED = 1 }; // FIXED: u32 mod 2^32

typedef struct fri_update {
    uint64_t round_id;
    uint8_t  kind;      // FRI_UPD_*
    uint8_t  layout;    // FRI_UPD_DENSE (row i = item i) or SPARSE
    uint8_t  vtype;     // FRI_VAL_F32 or FRI_VAL_FIXED
    uint8_t  frac_bits; // FIXED: fractional bits (<= 31); F32: 0
    uint32_t k;         // 1..FRI_MAX_K
    uint32_t width;     // values per row; k + 1 for ALS/GRAD/DELTA
    uint32_t n_rows;    // <= FRI_MAX_ITEMS
    uint32_t n_extra;   // ALS: (k+1)(k+2)/2 + 2, else any <= FRI_MAX_EXTRA
    float    weight;    // sample weight (e.g. #ratings), finite, >= 0
    // Encode input (host order; float or uint32 per vtype):
    const void     *extra; // n_extra values
    const void     *rows;  // row r at rows + r * stride values
    size_t          stride; // in values, >= width; 0 means width
    const uint32_t *items; // SPARSE: n_rows strictly increasing ids
    // Decode output (views into src, little-endian):
    const uint8_t *extra_le; // n_extra * 4 bytes
    const uint8_t *rows_le;  // n_rows records of (4 if SPARSE) + width*4
} fri_update;

#define FRI_UPDATE_FIXED 32 // body bytes before extra

// n_extra of kind FRI_UPD_VB (P = (k+1)(k+2)/2, d = k + 1): the Gram of
// E[x x^T] (P), sum E[[p;b_u]] (d), sum E[[p;b_u][p;b_u]^T] packed (P),
// sum_j E[(r_j - mu - b_u)^2], user count, sum of ratings, count
// (2P + d + 4). 0 if it exceeds FRI_MAX_EXTRA (k above ~360).
uint32_t fri_update_vb_extra(uint32_t k);

// Exact encoded frame size; 0 if a limit is exceeded.
size_t fri_update_size(uint8_t layout, uint32_t width, uint32_t n_rows,
                       uint32_t n_extra);
FR_NODISCARD fr_err fri_update_encode(uint8_t *dst, size_t dst_cap,
                                      size_t *dst_len, const fri_update *u);
FR_NODISCARD fr_err fri_update_decode(fri_update *u, const uint8_t *src,
                                      size_t src_len);
// Accessors on a decoded update. Row r (r < n_rows): width values into
// out (float or uint32 per vtype), its item id into *item (dense: r).
void fri_update_get_row(const fri_update *u, uint32_t r, void *out,
                        uint32_t *item);
// All n_extra values into out.
void fri_update_get_extra(const fri_update *u, void *out);

// ---- ACK, ERROR -------------------------------------------------------

typedef struct fri_ack {
    uint16_t of_type; // the message type acknowledged
    uint64_t round_id;
} fri_ack;

#define FRI_ACK_BODY 12

typedef struct fri_error {
    uint32_t    code;     // an fr_err value (nonzero); unknown kept as is
    uint16_t    of_type;  // the message type refused, 0 if none
    uint64_t    round_id;
    uint32_t    retry_after_ms; // 0 = do not retry
    const char *text;     // UTF-8, not NUL-terminated on decode
    uint16_t    text_len; // <= FRI_MAX_ERRTEXT
} fri_error;

#define FRI_ERROR_FIXED 20 // body bytes before text

// ---- Fixed-size messages ----------------------------------------------
// Encoded size = 16 + FRI_*_BODY (fixed) or FRI_*_FIXED + variable part.

FR_NODISCARD fr_err fri_checkin_encode(uint8_t *dst, size_t dst_cap,
                                       size_t *dst_len, const fri_checkin *c);
FR_NODISCARD fr_err fri_checkin_decode(fri_checkin *c, const uint8_t *src,
                                       size_t src_len);
FR_NODISCARD fr_err fri_task_encode(uint8_t *dst, size_t dst_cap,
                                    size_t *dst_len, const fri_task *t);
FR_NODISCARD fr_err fri_task_decode(fri_task *t, const uint8_t *src,
                                    size_t src_len);
FR_NODISCARD fr_err fri_get_model_encode(uint8_t *dst, size_t dst_cap,
                                         size_t *dst_len,
                                         const fri_get_model *g);
FR_NODISCARD fr_err fri_get_model_decode(fri_get_model *g,
                                         const uint8_t *src, size_t src_len);
FR_NODISCARD fr_err fri_ack_encode(uint8_t *dst, size_t dst_cap,
                                   size_t *dst_len, const fri_ack *a);
FR_NODISCARD fr_err fri_ack_decode(fri_ack *a, const uint8_t *src,
                                   size_t src_len);
size_t              fri_error_size(uint16_t text_len);
FR_NODISCARD fr_err fri_error_encode(uint8_t *dst, size_t dst_cap,
                                     size_t *dst_len, const fri_error *e);
FR_NODISCARD fr_err fri_error_decode(fri_error *e, const uint8_t *src,
                                     size_t src_len);

// fp16 conversion used by FRI_MENC_F16 (round to nearest even).
uint16_t fri_f32_to_f16(float f);
float    fri_f16_to_f32(uint16_t h);

#endif
