// Secure aggregation core (Bonawitz et al., CCS 2017, "Practical Secure
// Aggregation for Privacy-Preserving Machine Learning"), with the sparse
// neighbour graphs of SecAgg+ (Bell et al., CCS 2020).
//
// Transport-independent: pure functions over caller buffers and structs,
// no I/O, no global state. Thread-safe on distinct arguments. Every
// function that handles secret material wipes its temporaries. Protocol,
// formulas and parameter choices are in docs/SECAGG.md.
//
// Roles, per round (round_id is a 64-bit number both sides agree on):
//   client u: fri_secagg_keygen -> fri_secagg_advert_sign (send advert);
//             verify peers' adverts; split b_u and c_sk_u with fri_shamir
//             to its neighbours, fri_secagg_share_seal each pair of
//             shares; fri_secagg_mask its quantized update; on request,
//             fri_secagg_share_open the shares it holds and reveal, per
//             peer, the b-share (peer survived) or the c_sk-share (peer
//             dropped), never both.
//   server:   sums masked vectors mod 2^32, reconstructs secrets with
//             fri_shamir_combine, calls fri_secagg_unmask, then
//             fri_secagg_dequantize.
// Client indices are 0..n_clients-1; Shamir share x-coordinates are
// index+1, so n_clients <= FRI_SECAGG_MAX_CLIENTS.
#ifndef FR_COMMON_SECAGG_H
#define FR_COMMON_SECAGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"
#include "rng.h"
#include "shamir.h"

#define FRI_SECAGG_MAX_CLIENTS 65535u
#define FRI_SECAGG_SEEDBYTES 32u // PRG seeds b_u, s_uv; graph seed
#define FRI_SECAGG_PKBYTES 32u // X25519 public key
#define FRI_SECAGG_SKBYTES 32u // X25519 secret key
#define FRI_SECAGG_ID_PKBYTES 32u // Ed25519 identity public key
#define FRI_SECAGG_ID_SKBYTES 64u // Ed25519 identity secret key (libsodium)
#define FRI_SECAGG_SIGBYTES 64u // Ed25519 signature
// Advert wire form: round_id u64 LE | client u32 LE | c_pk | s_pk |
// b_commit | sig.
#define FRI_SECAGG_ADVERTBYTES (8u + 4u + 32u + 32u + 32u + 64u)
// Commitment to the self-mask seed b_u (fri_secagg_seed_commit).
#define FRI_SECAGG_COMMITBYTES 32u
// Shamir share of one 32-byte secret (GF(2^16), x implicit = index+1).
#define FRI_SECAGG_SHAREBYTES 32u
// Plaintext carried from u to v: share of b_u || share of c_sk_u.
#define FRI_SECAGG_SHAREMSGBYTES (2u * FRI_SECAGG_SHAREBYTES)
// Sealed box overhead: 24-byte random nonce prefix + 16-byte Poly1305 tag.
#define FRI_SECAGG_SEAL_OVERHEAD (24u + 16u)
#define FRI_SECAGG_SEALEDBYTES                                                \
    (FRI_SECAGG_SHAREMSGBYTES + FRI_SECAGG_SEAL_OVERHEAD)

// ---------------------------------------------------------------------------
// 1. Fixed-point encoding in Z_{2^32}

// Quantizes n floats: clamp to [-clip, clip], scale by 2^frac_bits, round,
// store as two's complement uint32. rng == NULL: round half away from zero
// (deterministic, |error| <= 2^-(frac_bits+1)). rng != NULL: stochastic
// rounding, floor(v + U[0,1)), unbiased, |error| < 2^-frac_bits.
// |result| <= ceil(clip * 2^frac_bits) either way.
// Errors: FR_EINVAL (NULL with n > 0, clip not finite or <= 0, frac_bits >
// 30, ceil(clip * 2^frac_bits) > 2^31 - 1, NaN input; out is then
// unspecified).
FR_NODISCARD fr_err fri_secagg_quantize(uint32_t *out, const float *in,
    size_t n, float clip, unsigned frac_bits, fri_rng *rng);

// Decodes a sum of n_summands quantized vectors: each word is read as a
// signed 32-bit integer (the wrapped sum is exact while
// n_summands <= fri_secagg_max_cohort), divided by 2^frac_bits and by
// n_summands, i.e. out is the MEAN. Pass n_summands = 1 to get the sum.
// Errors: FR_EINVAL (NULL with n > 0, n_summands == 0, frac_bits > 30).
FR_NODISCARD fr_err fri_secagg_dequantize(float *out, const uint32_t *sum,
    size_t n, unsigned frac_bits, uint32_t n_summands);

// Largest cohort n whose sum cannot leave int32: n * B <= 2^31 - 1 with
// B = ceil(clip * 2^frac_bits) the largest quantized magnitude (so
// clip * 2^f * n < 2^31). Returns 0 on invalid parameters.
uint32_t fri_secagg_max_cohort(float clip, unsigned frac_bits);

// ---------------------------------------------------------------------------
// 2. Keys, adverts, pairwise seeds, masks

// A client's two ephemeral X25519 key pairs for one round: c_* for masking
// (pairwise seeds), s_* for encrypting shares.
typedef struct fri_secagg_keys {
    uint8_t c_pk[FRI_SECAGG_PKBYTES];
    uint8_t c_sk[FRI_SECAGG_SKBYTES];
    uint8_t s_pk[FRI_SECAGG_PKBYTES];
    uint8_t s_sk[FRI_SECAGG_SKBYTES];
} fri_secagg_keys;

// Generates both key pairs. seed == NULL: from randombytes_buf.
// seed != NULL: derived deterministically from the 32-byte seed
// (simulation and tests). Errors: FR_EINVAL.
FR_NODISCARD fr_err fri_secagg_keygen(fri_secagg_keys *k, const uint8_t *seed);
// Zeroes k (sodium_memzero). NULL is a no-op.
void fri_secagg_keys_wipe(fri_secagg_keys *k);

// Signed advertisement of a client's round keys.
typedef struct fri_secagg_advert {
    uint64_t round_id;
    uint32_t client;
    uint8_t  c_pk[FRI_SECAGG_PKBYTES];
    uint8_t  s_pk[FRI_SECAGG_PKBYTES];
    uint8_t  b_commit[FRI_SECAGG_COMMITBYTES];
    uint8_t  sig[FRI_SECAGG_SIGBYTES];
} fri_secagg_advert;

// Commitment to a client's self-mask seed b, published in its signed
// advert so that the server can check the b it reconstructs from Shamir
// shares (a wrong share from one holder would otherwise corrupt the sum
// silently): BLAKE2b-256("fedrec secagg self-mask commit" || round_id ||
// client || b). b is 256 uniform bits, so the hash hides it.
void fri_secagg_seed_commit(uint8_t out[FRI_SECAGG_COMMITBYTES],
    const uint8_t b[FRI_SECAGG_SEEDBYTES], uint64_t round_id, uint32_t client);

// Fills out and signs (Ed25519, identity key id_sk) the domain-separated
// message "fedrec secagg advert v2" || round_id || client || c_pk || s_pk
// || b_commit. Errors: FR_EINVAL (NULL, client > FRI_SECAGG_MAX_CLIENTS - 1).
FR_NODISCARD fr_err fri_secagg_advert_sign(fri_secagg_advert *out,
    uint64_t round_id, uint32_t client, const uint8_t c_pk[FRI_SECAGG_PKBYTES],
    const uint8_t s_pk[FRI_SECAGG_PKBYTES],
    const uint8_t b_commit[FRI_SECAGG_COMMITBYTES],
    const uint8_t id_sk[FRI_SECAGG_ID_SKBYTES]);

// Verifies a against the expected round and client and the claimed
// identity key. FR_ECRYPTO on a bad signature, another round (replay),
// another client index, or c_pk == s_pk; FR_EINVAL on NULL.
FR_NODISCARD fr_err fri_secagg_advert_verify(const fri_secagg_advert *a,
    uint64_t round_id, uint32_t client,
    const uint8_t id_pk[FRI_SECAGG_ID_PKBYTES]);

// Wire form (FRI_SECAGG_ADVERTBYTES, little-endian). encode: FR_ENOSPC if
// dst_cap is short. decode: FR_EPROTO unless src_len is exact. Decoding
// does not verify; call fri_secagg_advert_verify.
FR_NODISCARD fr_err fri_secagg_advert_encode(
    uint8_t *dst, size_t dst_cap, size_t *dst_len, const fri_secagg_advert *a);
FR_NODISCARD fr_err fri_secagg_advert_decode(
    fri_secagg_advert *a, const uint8_t *src, size_t src_len);

// Pairwise seed s_uv = BLAKE2b-256(key = X25519(my_c_sk, peer_c_pk),
// "fedrec secagg pair" || round_id || min(u,v) || max(u,v)); both ends get
// the same seed. `me` and `peer` are the two client indices.
// Errors: FR_EINVAL (me == peer, NULL), FR_ECRYPTO (low-order peer key:
// all-zero shared secret).
FR_NODISCARD fr_err fri_secagg_pair_seed(uint8_t seed[FRI_SECAGG_SEEDBYTES],
    const uint8_t                                my_c_sk[FRI_SECAGG_SKBYTES],
    const uint8_t peer_c_pk[FRI_SECAGG_PKBYTES], uint64_t round_id,
    uint32_t me, uint32_t peer);

// PRG: ChaCha20 (IETF, zero nonce, key = seed) keystream read as n
// little-endian uint32 words. prg_add adds (sign > 0) or subtracts
// (sign < 0) the PRG output to acc mod 2^32. n is limited to 2^36 words
// by the 32-bit block counter (FR_ETOOBIG beyond).
FR_NODISCARD fr_err fri_secagg_prg(
    uint32_t *out, size_t n, const uint8_t seed[FRI_SECAGG_SEEDBYTES]);
FR_NODISCARD fr_err fri_secagg_prg_add(uint32_t *acc, size_t n,
    const uint8_t seed[FRI_SECAGG_SEEDBYTES], int sign);

// Client-side masking: y = x + sum_{v in peers, v > me} PRG(s_uv)
//                           - sum_{v in peers, v < me} PRG(s_uv)
//                           + PRG(b_seed)   (mod 2^32).
// peers[i] has mask public key peer_c_pk + i*FRI_SECAGG_PKBYTES. y may
// alias x. b_seed is the client's fresh self-mask seed (randombytes_buf in
// production; it must also be Shamir-shared). Errors: FR_EINVAL (peer ==
// me, NULL), FR_ECRYPTO (bad peer key); y is then unspecified.
FR_NODISCARD fr_err fri_secagg_mask(uint32_t *y, const uint32_t *x, size_t d,
    uint32_t me, const uint32_t *peers, const uint8_t *peer_c_pk,
    size_t n_peers, const uint8_t c_sk[FRI_SECAGG_SKBYTES],
    const uint8_t b_seed[FRI_SECAGG_SEEDBYTES], uint64_t round_id);

// A survivor's dropout correction (docs/SECAGG.md §5): the sum of the
// pair masks it added with the listed peers, the members that dropped
// after the shares, c = sum_{v > me} PRG(s_uv) - sum_{v < me} PRG(s_uv)
// over peers (mod 2^32), which the server subtracts instead of
// recomputing each pair from the dropped member's reconstructed key.
// Reveals what that key would, for these pairs only. Errors as
// fri_secagg_mask.
FR_NODISCARD fr_err fri_secagg_correction(uint32_t *c, size_t d,
    uint32_t me, const uint32_t *peers, const uint8_t *peer_c_pk,
    size_t n_peers, const uint8_t c_sk[FRI_SECAGG_SKBYTES],
    uint64_t round_id);

// ---------------------------------------------------------------------------
// 3. Encrypted share transport (client to client, relayed by the server)

// Seals msg for client `to`: key = BLAKE2b-256(key = X25519(s_sk_from,
// s_pk_to), "fedrec secagg share" || round_id), XChaCha20-Poly1305 with a
// random 24-byte nonce prefixed; associated data binds round_id, from, to.
// dst receives msg_len + FRI_SECAGG_SEAL_OVERHEAD bytes.
// Errors: FR_EINVAL, FR_ENOSPC, FR_ECRYPTO (low-order key).
FR_NODISCARD fr_err fri_secagg_share_seal(uint8_t *dst, size_t dst_cap,
    size_t *dst_len, const uint8_t *msg, size_t msg_len, uint64_t round_id,
    uint32_t from, uint32_t to, const uint8_t s_sk_from[FRI_SECAGG_SKBYTES],
    const uint8_t s_pk_to[FRI_SECAGG_PKBYTES]);

// Opens a sealed share at the receiver `to`. FR_ECRYPTO if it was altered,
// or sealed for another round, sender or receiver. FR_EPROTO if shorter
// than the overhead, FR_ENOSPC if msg_cap is short.
FR_NODISCARD fr_err fri_secagg_share_open(uint8_t *msg, size_t msg_cap,
    size_t *msg_len, const uint8_t *src, size_t src_len, uint64_t round_id,
    uint32_t from, uint32_t to, const uint8_t s_sk_to[FRI_SECAGG_SKBYTES],
    const uint8_t s_pk_from[FRI_SECAGG_PKBYTES]);

// The same with the key derived once per peer: fri_secagg_share_key gives
// BLAKE2b-256(key = X25519(my_s_sk, peer_s_pk), "fedrec secagg share" ||
// round_id), identical at both ends, usable for both directions (random
// nonces; the AD fixes the direction). Wipe it with sodium_memzero.
FR_NODISCARD fr_err fri_secagg_share_key(uint8_t key[32],
    const uint8_t                                my_s_sk[FRI_SECAGG_SKBYTES],
    const uint8_t peer_s_pk[FRI_SECAGG_PKBYTES], uint64_t round_id);
FR_NODISCARD fr_err fri_secagg_share_seal_k(uint8_t *dst, size_t dst_cap,
    size_t *dst_len, const uint8_t *msg, size_t msg_len, uint64_t round_id,
    uint32_t from, uint32_t to, const uint8_t key[32]);
FR_NODISCARD fr_err fri_secagg_share_open_k(uint8_t *msg, size_t msg_cap,
    size_t *msg_len, const uint8_t *src, size_t src_len, uint64_t round_id,
    uint32_t from, uint32_t to, const uint8_t key[32]);

// ---------------------------------------------------------------------------
// 4. SecAgg+ neighbour graph

// The public graph of a round. degree >= n_clients - 1 (or 0) means the
// complete graph (plain Bonawitz). Otherwise a Harary graph: clients are
// placed on a ring by a permutation drawn from ChaCha20(seed), and each is
// linked to the degree/2 nearest ring positions on both sides; an odd
// degree is rounded up to even, so the graph is exactly
// (degree rounded up)-regular and symmetric.
typedef struct fri_secagg_graph {
    uint32_t n_clients;
    uint32_t degree;
    uint8_t  seed[FRI_SECAGG_SEEDBYTES];
} fri_secagg_graph;

// Writes the sorted neighbour indices of client (never client itself) to
// out. *n_out is set even on FR_ENOSPC, as a size query (cap 0, out NULL
// allowed). Errors: FR_EINVAL (client >= n_clients, n_clients 0 or >
// FRI_SECAGG_MAX_CLIENTS), FR_ENOSPC, FR_ENOMEM (O(n) scratch).
FR_NODISCARD fr_err fri_secagg_neighbors(uint32_t *out, size_t cap,
    size_t *n_out, uint32_t client, uint32_t n_clients, uint32_t degree,
    const uint8_t seed[32]);

// The ring order of the graph of seed: perm[position] = client and
// pos[client] = position (n_clients entries each; no allocation). With
// them, the functions below answer in O(1) what fri_secagg_neighbors
// lists in O(n). FR_EINVAL only.
FR_NODISCARD fr_err fri_secagg_ring_positions(uint32_t *pos, uint32_t *perm,
    uint32_t n_clients, const uint8_t seed[32]);
// Whether u and v are neighbours in the graph (n_clients, degree) whose
// positions pos holds (unused for the complete graph); never u == v.
bool fri_secagg_ring_adjacent(const uint32_t *pos, uint32_t n_clients,
    uint32_t degree, uint32_t u, uint32_t v);
// For neighbours u and v: v's slot among u's neighbours, in
// [0, fri_secagg_graph_degree) (dense per-neighbour storage), and back.
uint32_t fri_secagg_ring_slot(const uint32_t *pos, uint32_t n_clients,
    uint32_t degree, uint32_t u, uint32_t v);
uint32_t fri_secagg_ring_peer(const uint32_t *perm, const uint32_t *pos,
    uint32_t n_clients, uint32_t degree, uint32_t u, uint32_t slot);

// Effective degree of every node: n-1 for the complete graph, else degree
// rounded up to even.
uint32_t fri_secagg_graph_degree(uint32_t n_clients, uint32_t degree);

// SecAgg+ degree for n clients: 10*ceil(log2 n) rounded up to even,
// capped at n-1 (complete graph for small cohorts). See docs/SECAGG.md for
// the dropout tolerance this buys.
uint32_t fri_secagg_plus_degree(uint32_t n);

// Default Shamir threshold for k share holders: floor(k/2) + 1 (a strict
// majority of the neighbourhood). 0 for k == 0.
uint32_t fri_secagg_threshold(uint32_t k);

// ---------------------------------------------------------------------------
// 5. Server-side unmasking

// Checks a reconstructed 32-byte secret (returns nonzero when it is right).
typedef int (*fri_secagg_check_fn)(void *ctx, const uint8_t secret[32]);

// Verified Shamir reconstruction of a 32-byte secret from n >= t shares
// (shares + 32*i at x-coordinate xs[i]): combines a t-subset and accepts
// the result only if check() does. On a mismatch (some holder sent a wrong
// share) it tries other t-subsets: the n cyclic windows of t consecutive
// shares, then up to max_tries subsets drawn from subset_seed (public
// randomness; the search reveals nothing about the secret). *tries (may
// be NULL) receives the number of subsets combined. gf (may be NULL):
// tables for the public Lagrange weights (fri_shamir_combine_tab).
// FR_ECRYPTO when no
// subset checks out (too many wrong shares, or n == t and one is wrong),
// FR_ESTATE when n < t, FR_EINVAL on bad arguments, FR_ENOMEM. out is
// zeroed on failure.
FR_NODISCARD fr_err fri_secagg_recover(uint8_t out[32], const uint8_t *shares,
    const uint32_t *xs, size_t n, size_t t, fri_secagg_check_fn check,
    void *ctx, uint64_t subset_seed, size_t max_tries, size_t *tries,
    const fri_gf16_tables *gf);

// Checks for fri_secagg_recover: the self-mask seed against its advert
// commitment, the mask key against its advertised public key.
typedef struct fri_secagg_seed_check {
    const uint8_t *commit; // FRI_SECAGG_COMMITBYTES
    uint64_t       round_id;
    uint32_t       client;
} fri_secagg_seed_check;
int fri_secagg_check_seed(void *ctx, const uint8_t b[32]);
// ctx: the advertised c_pk (32 bytes).
int fri_secagg_check_sk(void *ctx, const uint8_t sk[32]);


// What the server knows after the recovery phase. Arrays are aligned:
// survivors[i] (clients whose masked vector is in the sum) has mask
// public key survivor_c_pk + i*32 and reconstructed self-mask seed
// survivor_b + i*32; dropped[j] (clients that advertised keys and shared
// but whose vector is absent) has reconstructed mask secret key
// dropped_c_sk + j*32. graph == NULL: complete graph.
typedef struct fri_secagg_unmask_input {
    uint64_t                round_id;
    const fri_secagg_graph *graph;
    const uint32_t         *survivors;
    const uint8_t          *survivor_c_pk;
    const uint8_t          *survivor_b;
    size_t                  n_survivors;
    const uint32_t         *dropped;
    const uint8_t          *dropped_c_sk;
    size_t                  n_dropped;
    // Optional, n_survivors flags: survivor i sent its dropout correction
    // (fri_secagg_correction, already subtracted from the sum), so its
    // pairs with the dropped are not recomputed. NULL: none did.
    const uint8_t          *survivor_corrected;
    // Threads to spread the work over: 0 chooses (the online CPUs, up to
    // 8, none for small sums); tests force a count.
    uint32_t                threads;
} fri_secagg_unmask_input;

// Turns the mod-2^32 sum of the survivors' masked vectors into the plain
// sum of their inputs: subtracts PRG(b_u) for every survivor and, for each
// dropped d and surviving neighbour u that sent no correction, removes
// the pair mask u added
// (recomputing s_ud from c_sk_d and c_pk_u), on several threads for large
// sums (the result does not depend on their number). Errors: FR_EINVAL (NULL,
// index out of range or listed twice), FR_ECRYPTO (bad key), FR_ENOMEM.
// On error sum_inout is partially unmasked (unspecified).
FR_NODISCARD fr_err fri_secagg_unmask(
    uint32_t *sum_inout, size_t n, const fri_secagg_unmask_input *in);

// ---------------------------------------------------------------------------
// 7. Communication accounting

typedef struct fri_secagg_cost {
    uint64_t advert; // signed advert, FRI_SECAGG_ADVERTBYTES
    uint64_t shares; // k sealed share messages incl. 8-byte routing header
    uint64_t masked; // 4 d
    uint64_t unmask; // k revealed shares incl. 4-byte client index
    uint64_t total; // sum of the above
    uint64_t plain; // 4 d: the float32 vector sent in the clear
    double   expansion; // total / plain
} fri_secagg_cost;

// Bytes one client uploads in a round with k share holders (n-1 for the
// complete graph) and vector length d. Formula in docs/SECAGG.md.
fri_secagg_cost fri_secagg_client_cost(uint32_t k, uint64_t d);

#endif
