// Handshake, sealed frames and model signatures. SPEC.md §6.
#include "channel.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "wire.h"

#define DIR_C2S 1
#define DIR_S2C 2
#define KEYBYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define TAGBYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define NONCEBYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

static const char LBL_TH[] = "fedrec/hs/transcript/v1";
static const char LBL_KDF[] = "fedrec/hs/keys/v1";
static const char LBL_SIG[] = "fedrec/model-signature/v1";
static const char LBL_CRED[] = "fedrec/edge-credential/v1";

struct fri_session {
    uint8_t  sid[FRI_SID_BYTES];
    uint8_t  tx_key[KEYBYTES];
    uint8_t  rx_key[KEYBYTES];
    uint8_t  tx_dir; // direction byte in nonces we send
    uint8_t  rx_dir;
    uint64_t tx_ctr; // last counter sent
    uint64_t rx_ctr; // last counter accepted
    uint8_t  peer[FRI_PKBYTES];
    uint32_t peer_caps;
    int      confirmed;
};

struct fri_hs_client {
    int      used;
    uint8_t  e_pk[32], e_sk[32];
    uint8_t  s_sk[32];
    uint8_t  server_pk[32];
    uint8_t  hello[FRI_HELLO_LEN];
    int      has_root; // accepts an edge credential signed by root_sign
    uint8_t  root_sign[32];
    uint64_t now_s;
};

static void
make_nonce(uint8_t n[NONCEBYTES], uint8_t dir, const uint8_t sid[8],
           uint64_t ctr)
{
    memset(n, 0, NONCEBYTES);
    n[0] = dir;
    memcpy(n + 8, sid, 8);
    fri_put64(n + 16, ctr);
}

// The session keys: BLAKE2b-512(label | DH1 | DH2 | DH3 | transcript),
// split into client->server and server->client keys. The transcript hash
// covers HELLO, WELCOME's header, e_s, sid and the server's static key.
static fr_err
derive(uint8_t c2s[KEYBYTES], uint8_t s2c[KEYBYTES], const uint8_t dh[96],
       const uint8_t *hello, size_t hello_len, const uint8_t *welcome_head56,
       const uint8_t server_pk[32])
{
    uint8_t                  th[64], okm[64];
    crypto_generichash_state st;
    if (crypto_generichash_init(&st, NULL, 0, sizeof(th)) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *) LBL_TH,
                                  sizeof(LBL_TH)) != 0 ||
        crypto_generichash_update(&st, hello, hello_len) != 0 ||
        crypto_generichash_update(&st, welcome_head56, 56) != 0 ||
        crypto_generichash_update(&st, server_pk, 32) != 0 ||
        crypto_generichash_final(&st, th, sizeof(th)) != 0) {
        return FR_EINTERNAL;
    }
    fr_err e = FR_EINTERNAL;
    if (crypto_generichash_init(&st, NULL, 0, sizeof(okm)) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *) LBL_KDF,
                                  sizeof(LBL_KDF)) != 0 ||
        crypto_generichash_update(&st, dh, 96) != 0 ||
        crypto_generichash_update(&st, th, sizeof(th)) != 0 ||
        crypto_generichash_final(&st, okm, sizeof(okm)) != 0) {
        goto out;
    }
    memcpy(c2s, okm, KEYBYTES);
    memcpy(s2c, okm + 32, KEYBYTES);
    e = FR_OK;
out:
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(okm, sizeof(okm));
    return e;
}

static fri_session *
session_new(void)
{
    fri_session *s = calloc(1, sizeof(*s));
    return s;
}

void
fri_session_destroy(fri_session *s)
{
    if (s != NULL) {
        sodium_memzero(s, sizeof(*s));
        free(s);
    }
}

const uint8_t *
fri_session_id(const fri_session *s)
{
    return s->sid;
}

const uint8_t *
fri_session_peer(const fri_session *s)
{
    return s->peer;
}

uint32_t
fri_session_peer_caps(const fri_session *s)
{
    return s->peer_caps;
}

int
fri_session_confirmed(const fri_session *s)
{
    return s->confirmed;
}

// ---- handshake ----------------------------------------------------------

fr_err
fri_hs_client_hello(fri_hs_client **out, uint8_t *dst, size_t dst_cap,
                    size_t *dst_len, const fri_identity *me,
                    const uint8_t server_kx[FRI_PKBYTES], uint32_t caps)
{
    *out = NULL;
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    if (dst == NULL || dst_cap < FRI_HELLO_LEN) {
        return FR_ENOSPC;
    }
    fri_hs_client *hs = calloc(1, sizeof(*hs));
    if (hs == NULL) {
        return FR_ENOMEM;
    }
    crypto_kx_keypair(hs->e_pk, hs->e_sk);
    memcpy(hs->s_sk, me->kx_sk, 32);
    memcpy(hs->server_pk, server_kx, 32);
    uint8_t *b;
    if (fri_frame_begin(hs->hello, sizeof(hs->hello), FRI_T_HELLO,
                        FRI_HELLO_BODY, &b) != FR_OK) {
        fri_hs_client_destroy(hs);
        return FR_EINTERNAL;
    }
    memcpy(b, hs->e_pk, 32);
    memcpy(b + 32, me->kx_pk, 32);
    fri_put32(b + 64, caps);
    memcpy(dst, hs->hello, FRI_HELLO_LEN);
    *dst_len = FRI_HELLO_LEN;
    *out = hs;
    return FR_OK;
}

fr_err
fri_hs_client_hello_root(fri_hs_client **out, uint8_t *dst, size_t dst_cap,
                         size_t *dst_len, const fri_identity *me,
                         const uint8_t server_kx[FRI_PKBYTES],
                         const uint8_t root_sign[FRI_PKBYTES], uint64_t now_s,
                         uint32_t caps)
{
    fr_err e = fri_hs_client_hello(out, dst, dst_cap, dst_len, me, server_kx,
                                   caps | FRI_CAP_EDGE_CRED);
    if (e == FR_OK) {
        (*out)->has_root = 1;
        (*out)->now_s    = now_s;
        memcpy((*out)->root_sign, root_sign, 32);
    }
    return e;
}

// The signed message of a credential: label | its first 72 bytes.
static void
cred_msg(uint8_t msg[sizeof(LBL_CRED) + 72], const uint8_t *cred)
{
    memcpy(msg, LBL_CRED, sizeof(LBL_CRED));
    memcpy(msg + sizeof(LBL_CRED), cred, 72);
}

fr_err
fri_cred_make(uint8_t out[FRI_CRED_LEN], const fri_identity *root,
              const fri_pubkeys *edge, uint64_t not_after)
{
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    memcpy(out, edge->kx, 32);
    memcpy(out + 32, edge->sign, 32);
    fri_put64(out + 64, not_after);
    uint8_t msg[sizeof(LBL_CRED) + 72];
    cred_msg(msg, out);
    crypto_sign_detached(out + 72, NULL, msg, sizeof(msg), root->sign_sk);
    return FR_OK;
}

fr_err
fri_cred_check(const uint8_t cred[FRI_CRED_LEN],
               const uint8_t root_sign[FRI_PKBYTES], uint64_t now_s,
               fri_pubkeys *edge)
{
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    uint8_t msg[sizeof(LBL_CRED) + 72];
    cred_msg(msg, cred);
    if (crypto_sign_verify_detached(cred + 72, msg, sizeof(msg), root_sign) !=
        0) {
        return FR_ECRYPTO;
    }
    if (fri_get64(cred + 64) < now_s) {
        return FR_ELATE;
    }
    memcpy(edge->kx, cred, 32);
    memcpy(edge->sign, cred + 32, 32);
    return FR_OK;
}

void
fri_hs_client_destroy(fri_hs_client *hs)
{
    if (hs != NULL) {
        sodium_memzero(hs, sizeof(*hs));
        free(hs);
    }
}

static int
allowed(const fri_allowlist *allow, const uint8_t pk[32])
{
    int found = 0;
    for (size_t i = 0; i < allow->n; i++) {
        found |= sodium_memcmp(allow->keys[i], pk, 32) == 0;
    }
    return found;
}

fr_err
fri_hs_server_accept(fri_session **out, uint8_t *dst, size_t dst_cap,
                     size_t *dst_len, const fri_identity *server,
                     const fri_allowlist *allow, uint32_t caps,
                     const uint8_t *hello, size_t hello_len)
{
    return fri_hs_server_accept_cred(out, dst, dst_cap, dst_len, server, allow,
                                     caps, hello, hello_len, NULL);
}

fr_err
fri_hs_server_accept_cred(fri_session **out, uint8_t *dst, size_t dst_cap,
                          size_t *dst_len, const fri_identity *server,
                          const fri_allowlist *allow, uint32_t caps,
                          const uint8_t *hello, size_t hello_len,
                          const uint8_t *cred)
{
    const uint8_t *b;
    *out = NULL;
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    fr_err e =
        fri_body_fixed(hello, hello_len, FRI_T_HELLO, FRI_HELLO_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    if (allow != NULL && !allowed(allow, b + 32)) {
        return FR_EDENIED; // R25
    }
    // The credential goes only to clients that asked for one (older
    // clients take trailing bytes for a longer payload).
    int    with_cred = cred != NULL && (fri_get32(b + 64) & FRI_CAP_EDGE_CRED);
    size_t body      = FRI_WELCOME_BODY + (with_cred ? FRI_CRED_LEN : 0);
    if (dst == NULL || dst_cap < FRI_HDR_LEN + body) {
        return FR_ENOSPC;
    }
    fri_session *s = session_new();
    if (s == NULL) {
        return FR_ENOMEM;
    }
    uint8_t e_pk[32], e_sk[32], dh[96];
    crypto_kx_keypair(e_pk, e_sk);
    randombytes_buf(s->sid, sizeof(s->sid));
    e = FR_ECRYPTO; // R24: a low-order point gives an all-zero secret
    if (crypto_scalarmult(dh, e_sk, b) != 0 ||
        crypto_scalarmult(dh + 32, server->kx_sk, b + 32) != 0 ||
        crypto_scalarmult(dh + 64, server->kx_sk, b) != 0) {
        goto fail;
    }
    uint8_t *w;
    if ((e = fri_frame_begin(dst, dst_cap, FRI_T_WELCOME, body, &w)) !=
        FR_OK) {
        goto fail;
    }
    if (with_cred) {
        memcpy(w + FRI_WELCOME_BODY, cred, FRI_CRED_LEN);
    }
    memcpy(w, e_pk, 32);
    memcpy(w + 32, s->sid, 8);
    uint8_t c2s[KEYBYTES], s2c[KEYBYTES];
    if ((e = derive(c2s, s2c, dh, hello, hello_len, dst, server->kx_pk)) != FR_OK) {
        goto fail;
    }
    memcpy(s->rx_key, c2s, KEYBYTES);
    memcpy(s->tx_key, s2c, KEYBYTES);
    sodium_memzero(c2s, sizeof(c2s));
    sodium_memzero(s2c, sizeof(s2c));
    s->tx_dir = DIR_S2C;
    s->rx_dir = DIR_C2S;
    memcpy(s->peer, b + 32, 32);
    s->peer_caps = fri_get32(b + 64);
    // The server's proof of S_s: WELCOME's payload sealed under s2c with
    // counter 0 (data frames start at 1).
    uint8_t nonce[NONCEBYTES];
    make_nonce(nonce, DIR_S2C, s->sid, 0);
    fri_put32(w + 40, caps);
    fri_put32(w + 44, 0);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        w + 40, w + 48, NULL, w + 40, 8, dst, 56, NULL, nonce, s->tx_key);
    *dst_len = FRI_HDR_LEN + body;
    *out = s;
    sodium_memzero(e_sk, sizeof(e_sk));
    sodium_memzero(dh, sizeof(dh));
    return FR_OK;
fail:
    sodium_memzero(e_sk, sizeof(e_sk));
    sodium_memzero(dh, sizeof(dh));
    fri_session_destroy(s);
    return e;
}

fr_err
fri_hs_client_finish(fri_session **out, fri_hs_client *hs,
                     const uint8_t *welcome, size_t welcome_len)
{
    const uint8_t *w;
    size_t         n;
    int            newer;
    *out = NULL;
    if (hs == NULL || hs->used) {
        return FR_ESTATE;
    }
    hs->used = 1;
    uint8_t      dh[96];
    uint8_t      c2s[KEYBYTES], s2c[KEYBYTES];
    fri_session *s = NULL;
    fr_err       e = fri_body_get(welcome, welcome_len, FRI_T_WELCOME,
                                  FRI_WELCOME_BODY, &w, &n, &newer);
    if (e != FR_OK) {
        goto out;
    }
    if (hs->has_root && n == FRI_WELCOME_BODY + FRI_CRED_LEN) {
        // An edge's WELCOME (§6.1.1): the server's key is the one the
        // root's credential names.
        fri_pubkeys edge;
        if ((e = fri_cred_check(w + FRI_WELCOME_BODY, hs->root_sign,
                                hs->now_s, &edge)) != FR_OK) {
            e = FR_ECRYPTO;
            goto out;
        }
        memcpy(hs->server_pk, edge.kx, 32);
        n = FRI_WELCOME_BODY;
    } else if ((e = fri_body_end(n, FRI_WELCOME_BODY, newer)) != FR_OK) {
        goto out;
    }
    e = FR_ECRYPTO; // R24
    if (crypto_scalarmult(dh, hs->e_sk, w) != 0 ||
        crypto_scalarmult(dh + 32, hs->s_sk, hs->server_pk) != 0 ||
        crypto_scalarmult(dh + 64, hs->e_sk, hs->server_pk) != 0) {
        goto out;
    }
    if ((e = derive(c2s, s2c, dh, hs->hello, sizeof(hs->hello), welcome,
                    hs->server_pk)) != FR_OK) {
        goto out;
    }
    if ((s = session_new()) == NULL) {
        e = FR_ENOMEM;
        goto out;
    }
    memcpy(s->sid, w + 32, 8);
    memcpy(s->tx_key, c2s, KEYBYTES);
    memcpy(s->rx_key, s2c, KEYBYTES);
    s->tx_dir = DIR_C2S;
    s->rx_dir = DIR_S2C;
    memcpy(s->peer, hs->server_pk, 32);
    // A newer server may append payload fields: ct = body - 40 - tag.
    size_t  pl = n - 40 - TAGBYTES;
    uint8_t payload[8];
    uint8_t nonce[NONCEBYTES];
    make_nonce(nonce, DIR_S2C, s->sid, 0);
    if (pl > 8) {
        // Verify the whole (longer) payload; keep the fields we know.
        uint8_t *tmp = malloc(pl);
        if (tmp == NULL) {
            e = FR_ENOMEM;
            goto out;
        }
        int r = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            tmp, NULL, w + 40, pl, w + 40 + pl, welcome, 56, nonce,
            s->rx_key);
        memcpy(payload, tmp, 8);
        sodium_memzero(tmp, pl);
        free(tmp);
        if (r != 0) {
            e = FR_ECRYPTO;
            goto out;
        }
    } else if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                   payload, NULL, w + 40, 8, w + 48, welcome, 56, nonce,
                   s->rx_key) != 0) {
        e = FR_ECRYPTO; // not the pinned server, or altered
        goto out;
    }
    if (fri_get32(payload + 4) != 0) {
        e = FR_EPROTO; // R9
        goto out;
    }
    s->peer_caps = fri_get32(payload);
    s->confirmed = 1;
    *out = s;
    s = NULL;
    e = FR_OK;
out:
    sodium_memzero(dh, sizeof(dh));
    sodium_memzero(c2s, sizeof(c2s));
    sodium_memzero(s2c, sizeof(s2c));
    fri_session_destroy(s);
    // One use only: forget the ephemeral secret now.
    sodium_memzero(hs->e_sk, sizeof(hs->e_sk));
    sodium_memzero(hs->s_sk, sizeof(hs->s_sk));
    return e;
}

// ---- sealed frames --------------------------------------------------------

fr_err
fri_frame_sid(uint8_t sid[FRI_SID_BYTES], const uint8_t *frame,
              size_t frame_len)
{
    fri_hdr h;
    fr_err  e = fri_frame_check(&h, frame, frame_len);
    if (e != FR_OK) {
        return e;
    }
    if ((h.flags & FRI_F_SEALED) == 0 ||
        h.body_len < FRI_SEAL_OVERHEAD) {
        return FR_EPROTO; // R20
    }
    memcpy(sid, frame + FRI_HDR_LEN, FRI_SID_BYTES);
    return FR_OK;
}

// Whether an inner frame (type, body) is a masked UPDATE: values FIXED,
// the one-time-padded vector of secure aggregation (R38).
static int
masked_update(uint16_t type, const uint8_t *body, size_t body_len)
{
    return type == FRI_T_UPDATE && body_len > 10 &&
           body[10] == FRI_VAL_FIXED;
}

int
fri_frame_is_masked_update(const uint8_t *frame, size_t frame_len)
{
    fri_hdr h;
    return fri_frame_check(&h, frame, frame_len) == FR_OK &&
           (h.flags & FRI_F_SEALED) == 0 &&
           masked_update(h.type, frame + FRI_HDR_LEN, h.body_len);
}

// fri_seal and fri_seal_clear: clear authenticates the body (AD) and
// encrypts nothing.
static fr_err
seal_in_place(fri_session *s, uint8_t *buf, size_t buf_cap, size_t plain_len,
              size_t *out_len, int clear)
{
    fri_hdr h;
    if (buf == NULL || plain_len > SIZE_MAX - FRI_SEAL_OVERHEAD ||
        buf_cap < plain_len + FRI_SEAL_OVERHEAD) {
        return FR_ENOSPC;
    }
    fr_err e = fri_frame_check(&h, buf + FRI_SEAL_HEADROOM, plain_len);
    if (e != FR_OK || (h.flags & FRI_F_SEALED) != 0) {
        return FR_EINVAL;
    }
    if (clear && !masked_update(h.type, buf + FRI_SEAL_HEADROOM + FRI_HDR_LEN,
                                h.body_len)) {
        return FR_EINVAL; // everything else stays confidential
    }
    if ((size_t) h.body_len + FRI_SEAL_OVERHEAD >
        FRI_MAX_FRAME - FRI_HDR_LEN) {
        return FR_ETOOBIG;
    }
    if (s->tx_ctr == UINT64_MAX) {
        return FR_ESTATE; // R23: never reuse a nonce
    }
    uint64_t ctr = s->tx_ctr + 1;
    h.flags |= FRI_F_SEALED | (clear ? FRI_F_CLEAR : 0u);
    size_t body = h.body_len;
    h.body_len = (uint32_t) (body + FRI_SEAL_OVERHEAD);
    // The plain header at buf+16 has been parsed; overwrite it with
    // sid | ctr. The body stays where it is and is encrypted in place
    // (clear: authenticated as it stands, header and body as the AD).
    fri_hdr_put(buf, &h);
    memcpy(buf + 16, s->sid, FRI_SID_BYTES);
    fri_put64(buf + 24, ctr);
    uint8_t nonce[NONCEBYTES];
    make_nonce(nonce, s->tx_dir, s->sid, ctr);
    if (clear) {
        // Empty message (a valid pointer, nothing written): the tag is
        // over the AD alone.
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            buf + 32, buf + 32 + body, NULL, buf + 32, 0, buf, 32 + body,
            NULL, nonce, s->tx_key);
    } else {
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            buf + 32, buf + 32 + body, NULL, buf + 32, body, buf, 32, NULL,
            nonce, s->tx_key);
    }
    s->tx_ctr = ctr;
    *out_len = plain_len + FRI_SEAL_OVERHEAD;
    return FR_OK;
}

fr_err
fri_seal(fri_session *s, uint8_t *buf, size_t buf_cap, size_t plain_len,
         size_t *out_len)
{
    return seal_in_place(s, buf, buf_cap, plain_len, out_len, 0);
}

fr_err
fri_seal_clear(fri_session *s, uint8_t *buf, size_t buf_cap,
               size_t plain_len, size_t *out_len)
{
    return seal_in_place(s, buf, buf_cap, plain_len, out_len, 1);
}

fr_err
fri_seal_copy(fri_session *s, uint8_t *dst, size_t dst_cap, size_t *dst_len,
              const uint8_t *plain, size_t plain_len)
{
    if (dst == NULL || plain_len > SIZE_MAX - FRI_SEAL_OVERHEAD ||
        dst_cap < plain_len + FRI_SEAL_OVERHEAD) {
        return FR_ENOSPC;
    }
    memmove(dst + FRI_SEAL_HEADROOM, plain, plain_len);
    return fri_seal(s, dst, dst_cap, plain_len, dst_len);
}

fr_err
fri_open(fri_session *s, uint8_t *frame, size_t frame_len,
         const uint8_t **plain, size_t *plain_len)
{
    fri_hdr h;
    *plain = NULL;
    *plain_len = 0;
    fr_err e = fri_frame_check(&h, frame, frame_len);
    if (e != FR_OK) {
        return e;
    }
    if ((h.flags & FRI_F_SEALED) == 0 || h.body_len < FRI_SEAL_OVERHEAD) {
        return FR_EPROTO; // R20
    }
    if (memcmp(frame + 16, s->sid, FRI_SID_BYTES) != 0) {
        return FR_ECRYPTO; // R21: another session's frame
    }
    uint64_t ctr = fri_get64(frame + 24);
    if (ctr <= s->rx_ctr) {
        return FR_EREPLAY; // R22
    }
    size_t    body  = (size_t) h.body_len - FRI_SEAL_OVERHEAD;
    const int clear = (h.flags & FRI_F_CLEAR) != 0;
    if (clear && !masked_update(h.type, frame + 32, body)) {
        return FR_EPROTO; // R38: only a masked UPDATE travels clear
    }
    uint8_t nonce[NONCEBYTES];
    make_nonce(nonce, s->rx_dir, s->sid, ctr);
    int bad = clear ? crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                          frame + 32, NULL, frame + 32, 0, frame + 32 + body,
                          frame, 32 + body, nonce, s->rx_key)
                    : crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                          frame + 32, NULL, frame + 32, body,
                          frame + 32 + body, frame, 32, nonce, s->rx_key);
    if (bad != 0) {
        return FR_ECRYPTO; // R21
    }
    s->rx_ctr = ctr;
    s->confirmed = 1;
    // Rebuild the plain header in front of the plaintext body.
    h.flags &= ~(FRI_F_SEALED | FRI_F_CLEAR);
    h.body_len = (uint32_t) body;
    fri_hdr_put(frame + 16, &h);
    *plain = frame + 16;
    *plain_len = FRI_HDR_LEN + body;
    return FR_OK;
}

// ---- model signatures -------------------------------------------------------

static fr_err
model_digest(uint8_t d[64], const uint8_t *frame, size_t frame_len)
{
    fri_hdr h;
    fr_err  e = fri_frame_check(&h, frame, frame_len);
    if (e != FR_OK) {
        return e;
    }
    if (h.type != FRI_T_MODEL || (h.flags & FRI_F_SEALED) != 0 ||
        h.body_len < FRI_MODEL_FIXED) {
        return FR_EPROTO;
    }
    crypto_generichash_state st;
    if (crypto_generichash_init(&st, NULL, 0, 64) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *) LBL_SIG,
                                  sizeof(LBL_SIG)) != 0 ||
        crypto_generichash_update(&st, frame, FRI_HDR_LEN) != 0 ||
        crypto_generichash_update(&st, frame + FRI_HDR_LEN + FRI_SIGBYTES,
                                  h.body_len - FRI_SIGBYTES) != 0 ||
        crypto_generichash_final(&st, d, 64) != 0) {
        return FR_EINTERNAL;
    }
    return FR_OK;
}

fr_err
fri_model_sign(uint8_t *frame, size_t frame_len, const fri_identity *id)
{
    uint8_t d[64];
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    fr_err e = model_digest(d, frame, frame_len);
    if (e != FR_OK) {
        return e;
    }
    if (crypto_sign_detached(frame + FRI_HDR_LEN, NULL, d, sizeof(d),
                             id->sign_sk) != 0) {
        return FR_EINTERNAL;
    }
    return FR_OK;
}

fr_err
fri_model_verify(const uint8_t *frame, size_t frame_len,
                 const uint8_t sign_pk[FRI_PKBYTES])
{
    uint8_t d[64];
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    fr_err e = model_digest(d, frame, frame_len);
    if (e != FR_OK) {
        return e;
    }
    if (crypto_sign_verify_detached(frame + FRI_HDR_LEN, d, sizeof(d),
                                    sign_pk) != 0) {
        return FR_ECRYPTO; // R26
    }
    return FR_OK;
}
