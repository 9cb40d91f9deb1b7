#include "secagg.h"

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(FR_WITH_OPENSSL)
#include <openssl/evp.h>
#endif

#include "shamir.h"
#include "sorted.h"

// ---------------------------------------------------------------------------
// Little-endian helpers

static void
put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void
put64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t
get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
        | (uint32_t)p[3] << 24;
}

static uint64_t
get64le(const uint8_t *p)
{
    return (uint64_t)get32le(p) | (uint64_t)get32le(p + 4) << 32;
}

// ---------------------------------------------------------------------------
// 1. Fixed-point encoding

// Largest quantized magnitude, or 0 if the parameters are unusable.
static double
quant_bound(float clip, unsigned frac_bits)
{
    if (!isfinite(clip) || !(clip > 0.0f) || frac_bits > 30) {
        return 0.0;
    }
    double b = ceil((double)clip * ldexp(1.0, (int)frac_bits));
    return b <= (double)INT32_MAX ? b : 0.0;
}

fr_err
fri_secagg_quantize(uint32_t *out, const float *in, size_t n, float clip,
    unsigned frac_bits, fri_rng *rng)
{
    if ((n > 0 && (out == NULL || in == NULL))
        || quant_bound(clip, frac_bits) == 0.0) {
        return FR_EINVAL;
    }
    double c     = (double)clip;
    double scale = ldexp(1.0, (int)frac_bits);
    for (size_t i = 0; i < n; i++) {
        double v = (double)in[i];
        if (isnan(v)) {
            return FR_EINVAL;
        }
        v = v < -c ? -c : (v > c ? c : v);
        v *= scale; // exact: power-of-two scaling of a float in a double
        double q;
        if (rng == NULL) {
            q = v >= 0.0 ? floor(v + 0.5) : -floor(-v + 0.5);
        } else if (v == 0.0) {
            q = 0.0; // floor(0 + u) for any u in [0, 1): no draw needed
        } else {
            q = floor(v + fri_rng_uniform(rng));
        }
        // Two's complement in Z_2^32; int64 -> uint32 conversion is modular.
        out[i] = (uint32_t)(int64_t)q;
    }
    return FR_OK;
}

fr_err
fri_secagg_dequantize(float *out, const uint32_t *sum, size_t n,
    unsigned frac_bits, uint32_t n_summands)
{
    if ((n > 0 && (out == NULL || sum == NULL)) || n_summands == 0
        || frac_bits > 30) {
        return FR_EINVAL;
    }
    double inv = 1.0 / (ldexp(1.0, (int)frac_bits) * (double)n_summands);
    for (size_t i = 0; i < n; i++) {
        // Signed reading without the implementation-defined uint->int cast.
        int64_t s = sum[i] >= 0x80000000u ? (int64_t)sum[i] - 0x100000000LL
                                          : (int64_t)sum[i];
        out[i]    = (float)((double)s * inv);
    }
    return FR_OK;
}

uint32_t
fri_secagg_max_cohort(float clip, unsigned frac_bits)
{
    double b = quant_bound(clip, frac_bits);
    if (b == 0.0) {
        return 0;
    }
    return (uint32_t)((uint64_t)INT32_MAX / (uint64_t)b);
}

// ---------------------------------------------------------------------------
// 2. Keys and adverts

static const char ADVERT_TAG[] = "fedrec secagg advert v2";
static const char COMMIT_TAG[] = "fedrec secagg self-mask commit";
static const char PAIR_TAG[]   = "fedrec secagg pair";
static const char SHARE_TAG[]  = "fedrec secagg share";
#define TAGLEN(t) (sizeof(t) - 1)

fr_err
fri_secagg_keygen(fri_secagg_keys *k, const uint8_t *seed)
{
    if (k == NULL) {
        return FR_EINVAL;
    }
    if (seed == NULL) {
        randombytes_buf(k->c_sk, sizeof k->c_sk);
        randombytes_buf(k->s_sk, sizeof k->s_sk);
    } else {
        static const uint8_t lc[] = "fedrec secagg c_sk";
        static const uint8_t ls[] = "fedrec secagg s_sk";
        if (crypto_generichash(k->c_sk, sizeof k->c_sk, lc, sizeof lc - 1,
                seed, FRI_SECAGG_SEEDBYTES)
                != 0
            || crypto_generichash(k->s_sk, sizeof k->s_sk, ls, sizeof ls - 1,
                   seed, FRI_SECAGG_SEEDBYTES)
                != 0) {
            fri_secagg_keys_wipe(k);
            return FR_EINTERNAL;
        }
    }
    if (crypto_scalarmult_base(k->c_pk, k->c_sk) != 0
        || crypto_scalarmult_base(k->s_pk, k->s_sk) != 0) {
        fri_secagg_keys_wipe(k);
        return FR_EINTERNAL;
    }
    return FR_OK;
}

void
fri_secagg_keys_wipe(fri_secagg_keys *k)
{
    if (k != NULL) {
        sodium_memzero(k, sizeof *k);
    }
}

#define ADVERT_MSGBYTES (TAGLEN(ADVERT_TAG) + 8 + 4 + 32 + 32 + 32)

static void
advert_message(uint8_t m[ADVERT_MSGBYTES], uint64_t round_id, uint32_t client,
    const uint8_t *c_pk, const uint8_t *s_pk, const uint8_t *b_commit)
{
    size_t o = TAGLEN(ADVERT_TAG);
    memcpy(m, ADVERT_TAG, o);
    put64le(m + o, round_id);
    put32le(m + o + 8, client);
    memcpy(m + o + 12, c_pk, 32);
    memcpy(m + o + 44, s_pk, 32);
    memcpy(m + o + 76, b_commit, 32);
}

void
fri_secagg_seed_commit(uint8_t out[FRI_SECAGG_COMMITBYTES],
    const uint8_t b[FRI_SECAGG_SEEDBYTES], uint64_t round_id, uint32_t client)
{
    uint8_t                  hdr[12];
    crypto_generichash_state st;
    put64le(hdr, round_id);
    put32le(hdr + 8, client);
    crypto_generichash_init(&st, NULL, 0, FRI_SECAGG_COMMITBYTES);
    crypto_generichash_update(
        &st, (const uint8_t *)COMMIT_TAG, TAGLEN(COMMIT_TAG));
    crypto_generichash_update(&st, hdr, sizeof hdr);
    crypto_generichash_update(&st, b, FRI_SECAGG_SEEDBYTES);
    crypto_generichash_final(&st, out, FRI_SECAGG_COMMITBYTES);
    sodium_memzero(&st, sizeof st);
}

fr_err
fri_secagg_advert_sign(fri_secagg_advert *out, uint64_t round_id,
    uint32_t client, const uint8_t c_pk[32], const uint8_t s_pk[32],
    const uint8_t b_commit[32], const uint8_t id_sk[64])
{
    if (out == NULL || c_pk == NULL || s_pk == NULL || b_commit == NULL
        || id_sk == NULL || client >= FRI_SECAGG_MAX_CLIENTS) {
        return FR_EINVAL;
    }
    uint8_t m[ADVERT_MSGBYTES];
    advert_message(m, round_id, client, c_pk, s_pk, b_commit);
    out->round_id = round_id;
    out->client   = client;
    memcpy(out->c_pk, c_pk, 32);
    memcpy(out->s_pk, s_pk, 32);
    memcpy(out->b_commit, b_commit, 32);
    if (crypto_sign_detached(out->sig, NULL, m, sizeof m, id_sk) != 0) {
        return FR_EINTERNAL;
    }
    return FR_OK;
}

fr_err
fri_secagg_advert_verify(const fri_secagg_advert *a, uint64_t round_id,
    uint32_t client, const uint8_t id_pk[32])
{
    if (a == NULL || id_pk == NULL) {
        return FR_EINVAL;
    }
    if (a->round_id != round_id || a->client != client
        || sodium_memcmp(a->c_pk, a->s_pk, 32) == 0) {
        return FR_ECRYPTO;
    }
    uint8_t m[ADVERT_MSGBYTES];
    advert_message(m, a->round_id, a->client, a->c_pk, a->s_pk, a->b_commit);
    if (crypto_sign_verify_detached(a->sig, m, sizeof m, id_pk) != 0) {
        return FR_ECRYPTO;
    }
    return FR_OK;
}

fr_err
fri_secagg_advert_encode(
    uint8_t *dst, size_t dst_cap, size_t *dst_len, const fri_secagg_advert *a)
{
    if (dst == NULL || dst_len == NULL || a == NULL) {
        return FR_EINVAL;
    }
    *dst_len = FRI_SECAGG_ADVERTBYTES;
    if (dst_cap < FRI_SECAGG_ADVERTBYTES) {
        return FR_ENOSPC;
    }
    put64le(dst, a->round_id);
    put32le(dst + 8, a->client);
    memcpy(dst + 12, a->c_pk, 32);
    memcpy(dst + 44, a->s_pk, 32);
    memcpy(dst + 76, a->b_commit, 32);
    memcpy(dst + 108, a->sig, 64);
    return FR_OK;
}

fr_err
fri_secagg_advert_decode(
    fri_secagg_advert *a, const uint8_t *src, size_t src_len)
{
    if (a == NULL || src == NULL) {
        return FR_EINVAL;
    }
    if (src_len != FRI_SECAGG_ADVERTBYTES) {
        return FR_EPROTO;
    }
    a->round_id = get64le(src);
    a->client   = get32le(src + 8);
    memcpy(a->c_pk, src + 12, 32);
    memcpy(a->s_pk, src + 44, 32);
    memcpy(a->b_commit, src + 76, 32);
    memcpy(a->sig, src + 108, 64);
    return FR_OK;
}

// ---------------------------------------------------------------------------
// Pairwise seeds and PRG

// X25519 with the all-zero (low-order peer key) result refused.
static fr_err
dh(uint8_t shared[32], const uint8_t sk[32], const uint8_t pk[32])
{
    if (crypto_scalarmult(shared, sk, pk) != 0 || sodium_is_zero(shared, 32)) {
        sodium_memzero(shared, 32);
        return FR_ECRYPTO;
    }
    return FR_OK;
}

fr_err
fri_secagg_pair_seed(uint8_t seed[32], const uint8_t my_c_sk[32],
    const uint8_t peer_c_pk[32], uint64_t round_id, uint32_t me, uint32_t peer)
{
    if (seed == NULL || my_c_sk == NULL || peer_c_pk == NULL || me == peer) {
        return FR_EINVAL;
    }
    uint8_t shared[32];
    fr_err  rc = dh(shared, my_c_sk, peer_c_pk);
    if (rc != FR_OK) {
        return rc;
    }
    uint8_t m[TAGLEN(PAIR_TAG) + 16];
    size_t  o = TAGLEN(PAIR_TAG);
    memcpy(m, PAIR_TAG, o);
    put64le(m + o, round_id);
    put32le(m + o + 8, me < peer ? me : peer);
    put32le(m + o + 12, me < peer ? peer : me);
    int r = crypto_generichash(seed, 32, m, sizeof m, shared, sizeof shared);
    sodium_memzero(shared, sizeof shared);
    return r == 0 ? FR_OK : FR_EINTERNAL;
}

#define PRG_CHUNK_BLOCKS 256u // 16 KiB of keystream per call
static const uint8_t prg_zero[PRG_CHUNK_BLOCKS * 64];

// The mask PRG is the ChaCha20 keystream of RFC 8439 (key: the seed, nonce
// 0, block counter from 0), as libsodium's crypto_stream_chacha20_ietf
// computes it. Mask expansion is most of a secure round's CPU (degree x
// vector length per device), so host builds with FR_WITH_OPENSSL take the
// same keystream from OpenSSL's wider SIMD implementation (about 3x
// libsodium's here); tests/common/test_secagg.c pins the two streams
// equal, so devices built either way mask compatibly.
typedef struct prg_stream {
#if defined(FR_WITH_OPENSSL)
    EVP_CIPHER_CTX *ctx;
#else
    const uint8_t *seed;
    uint32_t       ic;
#endif
} prg_stream;

static fr_err
prg_open(prg_stream *ps, const uint8_t seed[32])
{
#if defined(FR_WITH_OPENSSL)
    // EVP_chacha20's IV: the 32-bit block counter (little-endian), then
    // the 96-bit nonce.
    static const unsigned char iv[16] = { 0 };
    ps->ctx = EVP_CIPHER_CTX_new();
    if (ps->ctx == NULL) {
        return FR_ENOMEM;
    }
    if (EVP_EncryptInit_ex(ps->ctx, EVP_chacha20(), NULL, seed, iv) != 1) {
        EVP_CIPHER_CTX_free(ps->ctx);
        return FR_EINTERNAL;
    }
#else
    ps->seed = seed;
    ps->ic   = 0;
#endif
    return FR_OK;
}

// The next `bytes` (a multiple of 64) of keystream into ks.
static fr_err
prg_next(prg_stream *ps, uint8_t *ks, size_t bytes)
{
#if defined(FR_WITH_OPENSSL)
    int out = 0;
    if (EVP_EncryptUpdate(ps->ctx, ks, &out, prg_zero, (int)bytes) != 1
        || (size_t)out != bytes) {
        return FR_EINTERNAL;
    }
#else
    static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = { 0 };
    crypto_stream_chacha20_ietf_xor_ic(ks, prg_zero, bytes, nonce, ps->ic,
        ps->seed);
    ps->ic += (uint32_t)(bytes / 64);
#endif
    return FR_OK;
}

static void
prg_close(prg_stream *ps)
{
#if defined(FR_WITH_OPENSSL)
    EVP_CIPHER_CTX_free(ps->ctx); // cleanses the key schedule
#else
    (void)ps;
#endif
}

// acc = (mode 0) PRG, (mode 1) acc + PRG, (mode -1) acc - PRG, mod 2^32.
static fr_err
prg_apply(uint32_t *acc, size_t n, const uint8_t seed[32], int mode)
{
    if ((n > 0 && acc == NULL) || seed == NULL) {
        return FR_EINVAL;
    }
    // 16 words per ChaCha20 block and a 32-bit block counter.
    uint64_t blocks = (uint64_t)n / 16; // never past 2^32 with a 32-bit size_t
    if ((blocks >> 32) != 0) {
        return FR_ETOOBIG;
    }
    prg_stream ps;
    fr_err     rc = prg_open(&ps, seed);
    if (rc != FR_OK) {
        return rc;
    }
    uint8_t ks[sizeof prg_zero];
    for (size_t i = 0; i < n && rc == FR_OK;) {
        size_t words = n - i;
        if (words > sizeof ks / 4) {
            words = sizeof ks / 4;
        }
        size_t bytes = (words * 4 + 63) & ~(size_t)63;
        rc           = prg_next(&ps, ks, bytes);
        if (rc != FR_OK) {
            break;
        }
        for (size_t w = 0; w < words; w++) {
            uint32_t m = get32le(ks + 4 * w);
            if (mode == 0) {
                acc[i + w] = m;
            } else if (mode > 0) {
                acc[i + w] += m;
            } else {
                acc[i + w] -= m;
            }
        }
        i += words;
    }
    prg_close(&ps);
    sodium_memzero(ks, sizeof ks);
    return rc;
}

fr_err
fri_secagg_prg(uint32_t *out, size_t n, const uint8_t seed[32])
{
    return prg_apply(out, n, seed, 0);
}

fr_err
fri_secagg_prg_add(uint32_t *acc, size_t n, const uint8_t seed[32], int sign)
{
    if (sign == 0) {
        return FR_EINVAL;
    }
    return prg_apply(acc, n, seed, sign > 0 ? 1 : -1);
}

// y += sum over peers of +-PRG(s_uv), + when the peer's index is larger:
// the pair masks of fri_secagg_mask.
static fr_err
add_pair_masks(uint32_t *y, size_t d, uint32_t me, const uint32_t *peers,
    const uint8_t *peer_c_pk, size_t n_peers, const uint8_t c_sk[32],
    uint64_t round_id)
{
    uint8_t s[32];
    fr_err  rc = FR_OK;
    for (size_t i = 0; i < n_peers && rc == FR_OK; i++) {
        rc = fri_secagg_pair_seed(
            s, c_sk, peer_c_pk + 32 * i, round_id, me, peers[i]);
        if (rc == FR_OK) {
            rc = prg_apply(y, d, s, peers[i] > me ? 1 : -1);
        }
    }
    sodium_memzero(s, sizeof s);
    return rc;
}

fr_err
fri_secagg_mask(uint32_t *y, const uint32_t *x, size_t d, uint32_t me,
    const uint32_t *peers, const uint8_t *peer_c_pk, size_t n_peers,
    const uint8_t c_sk[32], const uint8_t b_seed[32], uint64_t round_id)
{
    if ((d > 0 && (y == NULL || x == NULL))
        || (n_peers > 0 && (peers == NULL || peer_c_pk == NULL))
        || c_sk == NULL || b_seed == NULL) {
        return FR_EINVAL;
    }
    for (size_t i = 0; i < n_peers; i++) {
        if (peers[i] == me) {
            return FR_EINVAL;
        }
    }
    if (y != x && d > 0) {
        memmove(y, x, d * sizeof *y);
    }
    fr_err rc = add_pair_masks(y, d, me, peers, peer_c_pk, n_peers, c_sk,
                               round_id);
    if (rc == FR_OK) {
        rc = prg_apply(y, d, b_seed, 1);
    }
    return rc;
}

fr_err
fri_secagg_correction(uint32_t *c, size_t d, uint32_t me,
    const uint32_t *peers, const uint8_t *peer_c_pk, size_t n_peers,
    const uint8_t c_sk[32], uint64_t round_id)
{
    if ((d > 0 && c == NULL)
        || (n_peers > 0 && (peers == NULL || peer_c_pk == NULL))
        || c_sk == NULL) {
        return FR_EINVAL;
    }
    for (size_t i = 0; i < n_peers; i++) {
        if (peers[i] == me) {
            return FR_EINVAL;
        }
    }
    memset(c, 0, d * sizeof *c);
    return add_pair_masks(c, d, me, peers, peer_c_pk, n_peers, c_sk,
                          round_id);
}

// ---------------------------------------------------------------------------
// 3. Share transport

#define SHARE_ADBYTES (TAGLEN(SHARE_TAG) + 8 + 4 + 4)

static void
share_ad(
    uint8_t ad[SHARE_ADBYTES], uint64_t round_id, uint32_t from, uint32_t to)
{
    size_t o = TAGLEN(SHARE_TAG);
    memcpy(ad, SHARE_TAG, o);
    put64le(ad + o, round_id);
    put32le(ad + o + 8, from);
    put32le(ad + o + 12, to);
}

fr_err
fri_secagg_share_key(uint8_t key[32], const uint8_t my_s_sk[32],
    const uint8_t peer_s_pk[32], uint64_t round_id)
{
    if (key == NULL || my_s_sk == NULL || peer_s_pk == NULL) {
        return FR_EINVAL;
    }
    uint8_t shared[32];
    fr_err  rc = dh(shared, my_s_sk, peer_s_pk);
    if (rc != FR_OK) {
        return rc;
    }
    // The key covers tag and round; the AD adds direction and parties.
    uint8_t m[TAGLEN(SHARE_TAG) + 8];
    memcpy(m, SHARE_TAG, TAGLEN(SHARE_TAG));
    put64le(m + TAGLEN(SHARE_TAG), round_id);
    int r = crypto_generichash(key, 32, m, sizeof m, shared, sizeof shared);
    sodium_memzero(shared, sizeof shared);
    return r == 0 ? FR_OK : FR_EINTERNAL;
}

fr_err
fri_secagg_share_seal_k(uint8_t *dst, size_t dst_cap, size_t *dst_len,
    const uint8_t *msg, size_t msg_len, uint64_t round_id, uint32_t from,
    uint32_t to, const uint8_t key[32])
{
    if (dst == NULL || dst_len == NULL || (msg == NULL && msg_len > 0)
        || key == NULL || from == to) {
        return FR_EINVAL;
    }
    if (msg_len > SIZE_MAX - FRI_SECAGG_SEAL_OVERHEAD
        || msg_len > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX) {
        return FR_ETOOBIG;
    }
    *dst_len = msg_len + FRI_SECAGG_SEAL_OVERHEAD;
    if (dst_cap < *dst_len) {
        return FR_ENOSPC;
    }
    uint8_t ad[SHARE_ADBYTES];
    share_ad(ad, round_id, from, to);
    uint8_t *nonce = dst; // random: the key is reused for both directions
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    unsigned long long clen = 0;
    int                r    = crypto_aead_xchacha20poly1305_ietf_encrypt(
                          dst + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, msg,
                          msg_len, ad, sizeof ad, NULL, nonce, key);
    return r == 0 ? FR_OK : FR_EINTERNAL;
}

fr_err
fri_secagg_share_open_k(uint8_t *msg, size_t msg_cap, size_t *msg_len,
    const uint8_t *src, size_t src_len, uint64_t round_id, uint32_t from,
    uint32_t to, const uint8_t key[32])
{
    if (msg_len == NULL || src == NULL || key == NULL || from == to) {
        return FR_EINVAL;
    }
    if (src_len < FRI_SECAGG_SEAL_OVERHEAD) {
        return FR_EPROTO;
    }
    *msg_len = src_len - FRI_SECAGG_SEAL_OVERHEAD;
    if (msg_cap < *msg_len || (msg == NULL && *msg_len > 0)) {
        return FR_ENOSPC;
    }
    uint8_t ad[SHARE_ADBYTES];
    share_ad(ad, round_id, from, to);
    unsigned long long mlen = 0;
    int r = crypto_aead_xchacha20poly1305_ietf_decrypt(msg, &mlen, NULL,
        src + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
        src_len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, ad, sizeof ad,
        src, key);
    if (r != 0 && msg != NULL) {
        sodium_memzero(msg, *msg_len);
    }
    return r == 0 ? FR_OK : FR_ECRYPTO;
}

fr_err
fri_secagg_share_seal(uint8_t *dst, size_t dst_cap, size_t *dst_len,
    const uint8_t *msg, size_t msg_len, uint64_t round_id, uint32_t from,
    uint32_t to, const uint8_t s_sk_from[32], const uint8_t s_pk_to[32])
{
    if (dst == NULL || dst_len == NULL || (msg == NULL && msg_len > 0)
        || s_sk_from == NULL || s_pk_to == NULL || from == to) {
        return FR_EINVAL;
    }
    uint8_t key[32];
    fr_err  rc = fri_secagg_share_key(key, s_sk_from, s_pk_to, round_id);
    if (rc == FR_OK) {
        rc = fri_secagg_share_seal_k(
            dst, dst_cap, dst_len, msg, msg_len, round_id, from, to, key);
    }
    sodium_memzero(key, sizeof key);
    return rc;
}

fr_err
fri_secagg_share_open(uint8_t *msg, size_t msg_cap, size_t *msg_len,
    const uint8_t *src, size_t src_len, uint64_t round_id, uint32_t from,
    uint32_t to, const uint8_t s_sk_to[32], const uint8_t s_pk_from[32])
{
    if (msg_len == NULL || src == NULL || s_sk_to == NULL || s_pk_from == NULL
        || from == to) {
        return FR_EINVAL;
    }
    if (src_len < FRI_SECAGG_SEAL_OVERHEAD) {
        return FR_EPROTO;
    }
    uint8_t key[32];
    fr_err  rc = fri_secagg_share_key(key, s_sk_to, s_pk_from, round_id);
    if (rc == FR_OK) {
        rc = fri_secagg_share_open_k(
            msg, msg_cap, msg_len, src, src_len, round_id, from, to, key);
    }
    sodium_memzero(key, sizeof key);
    return rc;
}

// ---------------------------------------------------------------------------
// 4. Neighbour graph

uint32_t
fri_secagg_graph_degree(uint32_t n_clients, uint32_t degree)
{
    if (n_clients < 2) {
        return 0;
    }
    if (degree == 0 || degree >= n_clients - 1) {
        return n_clients - 1;
    }
    uint32_t k = degree + (degree & 1u);
    return k >= n_clients - 1 ? n_clients - 1 : k;
}

uint32_t
fri_secagg_plus_degree(uint32_t n)
{
    if (n < 2) {
        return 0;
    }
    uint32_t lg = 0;
    while (lg < 32 && ((uint64_t)1 << lg) < n) {
        lg++;
    }
    uint32_t k = 10 * lg;
    k += k & 1u;
    return k >= n - 1 ? n - 1 : k;
}

uint32_t
fri_secagg_threshold(uint32_t k)
{
    return k == 0 ? 0 : k / 2 + 1;
}

// ChaCha20 word stream for the public permutation (nonce separates it
// from mask expansion under the same key).
typedef struct chacha_words {
    uint8_t  key[32];
    uint8_t  buf[64];
    uint32_t ic;
    unsigned pos;
} chacha_words;

static uint32_t
chacha_next(chacha_words *c)
{
    static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES]
        = { 'f', 'r', ' ', 'g', 'r', 'a', 'p', 'h', 0, 0, 0, 1 };
    if (c->pos >= 64) {
        crypto_stream_chacha20_ietf_xor_ic(
            c->buf, prg_zero, 64, nonce, c->ic++, c->key);
        c->pos = 0;
    }
    uint32_t v = get32le(c->buf + c->pos);
    c->pos += 4;
    return v;
}

// Unbiased integer in [0, n), Lemire's method.
static uint32_t
chacha_below(chacha_words *c, uint32_t n)
{
    uint64_t m = (uint64_t)chacha_next(c) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (l < t) {
            m = (uint64_t)chacha_next(c) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

// perm[position] = client: the round's ring order (Fisher-Yates over
// ChaCha20(seed)).
static void
ring_order(uint32_t *perm, uint32_t n_clients, const uint8_t seed[32])
{
    chacha_words cw;
    memcpy(cw.key, seed, 32);
    cw.ic  = 0;
    cw.pos = 64;
    for (uint32_t i = 0; i < n_clients; i++) {
        perm[i] = i;
    }
    for (uint32_t i = n_clients - 1; i > 0; i--) {
        uint32_t j = chacha_below(&cw, i + 1);
        uint32_t t = perm[i];
        perm[i]    = perm[j];
        perm[j]    = t;
    }
    sodium_memzero(&cw, sizeof cw);
}

fr_err
fri_secagg_ring_positions(uint32_t *pos, uint32_t *perm, uint32_t n_clients,
    const uint8_t seed[32])
{
    if (pos == NULL || perm == NULL || seed == NULL || n_clients == 0
        || n_clients > FRI_SECAGG_MAX_CLIENTS) {
        return FR_EINVAL;
    }
    ring_order(perm, n_clients, seed);
    for (uint32_t i = 0; i < n_clients; i++) {
        pos[perm[i]] = i;
    }
    return FR_OK;
}

uint32_t
fri_secagg_ring_slot(const uint32_t *pos, uint32_t n_clients,
    uint32_t degree, uint32_t u, uint32_t v)
{
    uint32_t k = fri_secagg_graph_degree(n_clients, degree);
    if (k == n_clients - 1) {
        return v < u ? v : v - 1;
    }
    // Offsets +1..+k/2 first, then -1..-k/2 (distinct: k < n - 1).
    uint32_t d = (pos[v] + n_clients - pos[u]) % n_clients;
    return d <= k / 2 ? d - 1 : k / 2 + (n_clients - d) - 1;
}

uint32_t
fri_secagg_ring_peer(const uint32_t *perm, const uint32_t *pos,
    uint32_t n_clients, uint32_t degree, uint32_t u, uint32_t slot)
{
    uint32_t k = fri_secagg_graph_degree(n_clients, degree);
    if (k == n_clients - 1) {
        return slot < u ? slot : slot + 1;
    }
    uint32_t h = k / 2;
    uint32_t p = slot < h ? pos[u] + slot + 1
                          : pos[u] + n_clients - (slot - h + 1);
    return perm[p % n_clients];
}

bool
fri_secagg_ring_adjacent(const uint32_t *pos, uint32_t n_clients,
    uint32_t degree, uint32_t u, uint32_t v)
{
    if (u == v || u >= n_clients || v >= n_clients) {
        return false;
    }
    uint32_t k = fri_secagg_graph_degree(n_clients, degree);
    if (k == n_clients - 1) {
        return true;
    }
    uint32_t d = pos[u] > pos[v] ? pos[u] - pos[v] : pos[v] - pos[u];
    if (n_clients - d < d) {
        d = n_clients - d;
    }
    return d <= k / 2;
}

fr_err
fri_secagg_neighbors(uint32_t *out, size_t cap, size_t *n_out, uint32_t client,
    uint32_t n_clients, uint32_t degree, const uint8_t seed[32])
{
    if (n_out == NULL || seed == NULL || n_clients == 0
        || n_clients > FRI_SECAGG_MAX_CLIENTS || client >= n_clients) {
        return FR_EINVAL;
    }
    uint32_t k = fri_secagg_graph_degree(n_clients, degree);
    *n_out     = k;
    if (cap < k || (out == NULL && k > 0)) {
        return FR_ENOSPC;
    }
    if (k == n_clients - 1) {
        for (uint32_t v = 0, o = 0; v < n_clients; v++) {
            if (v != client) {
                out[o++] = v;
            }
        }
        return FR_OK;
    }
    // perm[position] = client: a uniformly random ring order.
    uint32_t *perm = malloc((size_t)n_clients * sizeof *perm);
    if (perm == NULL) {
        return FR_ENOMEM;
    }
    ring_order(perm, n_clients, seed);
    uint32_t p = 0;
    while (perm[p] != client) {
        p++;
    }
    // Harary graph H(k, n), k even and k < n - 1: ring offsets +-1..+-k/2
    // are pairwise distinct mod n, so exactly k neighbours.
    for (uint32_t off = 1, o = 0; off <= k / 2; off++) {
        out[o++] = perm[(p + off) % n_clients];
        out[o++] = perm[(p + n_clients - off) % n_clients];
    }
    free(perm);
    qsort(out, k, sizeof *out, fri_cmp_u32);
    return FR_OK;
}

// ---------------------------------------------------------------------------
// Verified reconstruction

int
fri_secagg_check_seed(void *ctx, const uint8_t b[32])
{
    const fri_secagg_seed_check *c = ctx;
    uint8_t                      h[FRI_SECAGG_COMMITBYTES];
    fri_secagg_seed_commit(h, b, c->round_id, c->client);
    return sodium_memcmp(h, c->commit, sizeof h) == 0;
}

int
fri_secagg_check_sk(void *ctx, const uint8_t sk[32])
{
    uint8_t pk[32];
    return crypto_scalarmult_base(pk, sk) == 0
        && sodium_memcmp(pk, ctx, 32) == 0;
}

static uint64_t
splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z          = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

fr_err
fri_secagg_recover(uint8_t out[32], const uint8_t *shares, const uint32_t *xs,
    size_t n, size_t t, fri_secagg_check_fn check, void *ctx,
    uint64_t subset_seed, size_t max_tries, size_t *tries,
    const fri_gf16_tables *gf)
{
    if (tries != NULL) {
        *tries = 0;
    }
    if (out == NULL || shares == NULL || xs == NULL || check == NULL
        || t == 0) {
        return FR_EINVAL;
    }
    sodium_memzero(out, 32);
    if (n < t) {
        return FR_ESTATE;
    }
    uint8_t  *sub  = malloc(t * 32);
    uint32_t *sx   = malloc(t * sizeof *sx);
    size_t   *perm = malloc(n * sizeof *perm);
    fr_err    rv   = FR_ECRYPTO;
    size_t    done = 0;
    if (sub == NULL || sx == NULL || perm == NULL) {
        rv = FR_ENOMEM;
        goto out;
    }
    // Cyclic windows first (deterministic; any single wrong share is
    // outside n - t of them), then random subsets for several wrong ones.
    size_t n_win = n == t ? 1 : n;
    if (max_tries > 0 && n_win > max_tries) {
        n_win = max_tries;
    }
    size_t   n_rand = n == t ? 0 : max_tries;
    uint64_t rs     = subset_seed;
    for (size_t a = 0; a < n_win + n_rand && rv == FR_ECRYPTO; a++) {
        if (a < n_win) {
            for (size_t i = 0; i < t; i++) {
                perm[i] = (a + i) % n;
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                perm[i] = i;
            }
            for (size_t i = 0; i < t; i++) {
                size_t j = i + (size_t)(splitmix64(&rs) % (uint64_t)(n - i));
                size_t x = perm[i];
                perm[i]  = perm[j];
                perm[j]  = x;
            }
        }
        for (size_t i = 0; i < t; i++) {
            memcpy(sub + 32 * i, shares + 32 * perm[i], 32);
            sx[i] = xs[perm[i]];
        }
        done++;
        fr_err c = fri_shamir_combine_tab(gf, out, sub, sx, t, 32);
        if (c != FR_OK) {
            rv = c;
        } else if (check(ctx, out)) {
            rv = FR_OK;
        }
    }
out:
    if (sub != NULL) {
        sodium_memzero(sub, t * 32);
    }
    if (rv != FR_OK) {
        sodium_memzero(out, 32);
    }
    free(sub);
    free(sx);
    free(perm);
    if (tries != NULL) {
        *tries = done;
    }
    return rv;
}

// ---------------------------------------------------------------------------
// 5. Unmasking

// ---- unmasking on several threads -----------------------------------------

#define UNMASK_MAX_THREADS 8
// Below this many words per thread a second thread costs more than it saves.
#define UNMASK_MIN_WORDS ((size_t) 1 << 16)

typedef struct unmask_job {
    uint32_t                          *acc; // this part's sum (n words)
    size_t                             n;
    const fri_secagg_unmask_input     *in;
    size_t                             t, nt; // part t of nt
    fr_err                             rc;
} unmask_job;

// Threads for an unmask of n words over m members: the online CPUs, at
// most one per member and UNMASK_MIN_WORDS of PRG output.
static size_t
unmask_threads(size_t n, size_t m)
{
    long   cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nt   = cpus > 1 ? (size_t) cpus : 1;
    if (nt > UNMASK_MAX_THREADS) {
        nt = UNMASK_MAX_THREADS;
    }
    size_t work = n * m / UNMASK_MIN_WORDS;
    if (nt > work) {
        nt = work > 0 ? work : 1;
    }
    return nt;
}

// Part t of the unmask: survivors i and dropped members j with
// i, j = t mod nt.
static void *
unmask_main(void *arg)
{
    unmask_job                         *job = arg;
    const fri_secagg_unmask_input      *in  = job->in;
    const fri_secagg_graph             *g   = in->graph;
    fr_err                              rc  = FR_OK;
    for (size_t i = job->t; i < in->n_survivors && rc == FR_OK; i += job->nt) {
        rc = prg_apply(job->acc, job->n, in->survivor_b + 32 * i, -1);
    }
    bool complete = g == NULL
        || fri_secagg_graph_degree(g->n_clients, g->degree)
            == g->n_clients - 1;
    uint32_t *nbr = NULL;
    size_t    k   = 0;
    if (!complete && rc == FR_OK && in->n_dropped > job->t) {
        k   = fri_secagg_graph_degree(g->n_clients, g->degree);
        nbr = malloc(k * sizeof *nbr);
        if (nbr == NULL) {
            rc = FR_ENOMEM;
        }
    }
    uint8_t s[32];
    for (size_t j = job->t; j < in->n_dropped && rc == FR_OK; j += job->nt) {
        uint32_t d = in->dropped[j];
        if (!complete) {
            size_t got = 0;
            rc         = fri_secagg_neighbors(
                        nbr, k, &got, d, g->n_clients, g->degree, g->seed);
            if (rc != FR_OK) {
                break;
            }
        }
        for (size_t i = 0; i < in->n_survivors && rc == FR_OK; i++) {
            uint32_t u = in->survivors[i];
            if ((in->survivor_corrected != NULL
                    && in->survivor_corrected[i])
                || (!complete && !fri_in_sorted(nbr, k, u))) {
                continue;
            }
            rc = fri_secagg_pair_seed(s, in->dropped_c_sk + 32 * j,
                in->survivor_c_pk + 32 * i, in->round_id, d, u);
            // u added +PRG(s_ud) if d > u, -PRG(s_ud) if d < u: undo it.
            if (rc == FR_OK) {
                rc = prg_apply(job->acc, job->n, s, d > u ? -1 : 1);
            }
        }
    }
    sodium_memzero(s, sizeof s);
    free(nbr);
    job->rc = rc;
    return NULL;
}

fr_err
fri_secagg_unmask(
    uint32_t *sum_inout, size_t n, const fri_secagg_unmask_input *in)
{
    if (in == NULL || (n > 0 && sum_inout == NULL)
        || (in->n_survivors > 0
            && (in->survivors == NULL || in->survivor_c_pk == NULL
                || in->survivor_b == NULL))
        || (in->n_dropped > 0
            && (in->dropped == NULL || in->dropped_c_sk == NULL))) {
        return FR_EINVAL;
    }
    const fri_secagg_graph *g = in->graph;
    uint32_t limit = g != NULL ? g->n_clients : FRI_SECAGG_MAX_CLIENTS;
    if (limit > FRI_SECAGG_MAX_CLIENTS || in->n_survivors > limit
        || in->n_dropped > limit - in->n_survivors) {
        return FR_EINVAL;
    }
    // Each index at most once over both lists.
    uint8_t *seen = calloc(((size_t)limit + 7) / 8, 1);
    if (seen == NULL) {
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < in->n_survivors + in->n_dropped; i++) {
        uint32_t c = i < in->n_survivors ? in->survivors[i]
                                         : in->dropped[i - in->n_survivors];
        if (c >= limit || (seen[c / 8] >> (c % 8)) & 1u) {
            free(seen);
            return FR_EINVAL;
        }
        seen[c / 8] |= (uint8_t)(1u << (c % 8));
    }
    free(seen);

    // The work (one PRG expansion per survivor, one agreement and one
    // expansion per dropped member and neighbouring survivor) is split
    // over threads by member; each adds into its own buffer and the
    // buffers are summed at the end (addition mod 2^32 commutes).
    unmask_job jobs[UNMASK_MAX_THREADS];
    size_t     m  = in->n_survivors + in->n_dropped;
    size_t     nt = in->threads > 0 ? in->threads : unmask_threads(n, m);
    if (nt > UNMASK_MAX_THREADS) {
        nt = UNMASK_MAX_THREADS;
    }
    if (nt > m) {
        nt = m > 0 ? m : 1;
    }
    uint32_t  *bufs = NULL;
    if (nt > 1) {
        bufs = calloc((nt - 1) * n, sizeof(uint32_t));
        if (bufs == NULL) {
            nt = 1; // still correct, one thread
        }
    }
    for (size_t t = 0; t < nt; t++) {
        jobs[t] = (unmask_job){.acc = t == 0 ? sum_inout : bufs + (t - 1) * n,
                               .n   = n,
                               .in  = in,
                               .t   = t,
                               .nt  = nt,
                               .rc  = FR_OK};
    }
    pthread_t th[UNMASK_MAX_THREADS];
    size_t    started = 1;
    for (size_t t = 1; t < nt; t++) {
        if (pthread_create(&th[t], NULL, unmask_main, &jobs[t]) != 0) {
            break;
        }
        started++;
    }
    // Parts that got no thread run here, after part 0.
    unmask_main(&jobs[0]);
    for (size_t t = started; t < nt; t++) {
        unmask_main(&jobs[t]);
    }
    fr_err rc = FR_OK;
    for (size_t t = 1; t < nt; t++) {
        if (t < started) {
            pthread_join(th[t], NULL);
        }
        const uint32_t *b = bufs + (t - 1) * n;
        for (size_t w = 0; w < n; w++) {
            sum_inout[w] += b[w];
        }
    }
    for (size_t t = 0; t < nt; t++) {
        if (jobs[t].rc != FR_OK && rc == FR_OK) {
            rc = jobs[t].rc;
        }
    }
    if (bufs != NULL) {
        sodium_memzero(bufs, (nt - 1) * n * sizeof(uint32_t));
        free(bufs);
    }
    return rc;
}

// ---------------------------------------------------------------------------
// 7. Communication accounting

fri_secagg_cost
fri_secagg_client_cost(uint32_t k, uint64_t d)
{
    fri_secagg_cost c;
    c.advert    = FRI_SECAGG_ADVERTBYTES;
    c.shares    = (uint64_t)k * (FRI_SECAGG_SEALEDBYTES + 8u);
    c.masked    = 4u * d;
    c.unmask    = (uint64_t)k * (FRI_SECAGG_SHAREBYTES + 4u);
    c.total     = c.advert + c.shares + c.masked + c.unmask;
    c.plain     = 4u * d;
    c.expansion = c.plain > 0 ? (double)c.total / (double)c.plain : 0.0;
    return c;
}
