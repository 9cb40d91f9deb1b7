// The secure channel (SPEC.md §6): authenticated key exchange, sealed
// frames, model signatures. Transport-agnostic: every function maps bytes
// to bytes; the caller moves them (NNG, HTTP, a test).
//
// Handshake (one request/reply):
//   client: fri_hs_client_hello()  -> HELLO bytes, keeps a fri_hs_client
//   server: fri_hs_server_accept(HELLO) -> WELCOME bytes + fri_session
//   client: fri_hs_client_finish(WELCOME) -> fri_session
// Session keys come from X25519 DH(e_c,e_s), DH(s_c,S_s), DH(e_c,S_s) and
// the transcript hash: only holders of both static secrets derive them
// (mutual authentication), the ephemeral DH gives forward secrecy, and the
// keys are fresh per session so counters start at 0. The server proves
// possession of S_s by WELCOME's sealed payload, the client of s_c by its
// first sealed frame (the server should treat the session as unconfirmed
// until one opens).
//
// Sealed frame = header(type T, flags|SEALED) | sid[8] | u64 ctr |
// XChaCha20-Poly1305(body) | tag[16]; AD = the first 32 bytes.
//
// Sessions and handshake states are not thread-safe; use one per thread
// or lock. Destroy functions accept NULL and wipe keys.
#ifndef FR_PROTO_CHANNEL_H
#define FR_PROTO_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"
#include "keys.h"
#include "msg.h"

#define FRI_SID_BYTES 8
// Bytes to leave free in front of a plain frame that will be sealed in
// place; a sealed frame is FRI_SEAL_OVERHEAD bytes longer than the plain.
#define FRI_SEAL_HEADROOM 16
#define FRI_SEAL_OVERHEAD 32
#define FRI_HELLO_LEN (FRI_HDR_LEN + FRI_HELLO_BODY)
#define FRI_WELCOME_LEN (FRI_HDR_LEN + FRI_WELCOME_BODY)

// Edge credential (SPEC.md §6.1.1): edge X25519 key (32) | edge Ed25519
// key (32) | u64 not_after (Unix seconds) | Ed25519 signature by the root
// over "fedrec/edge-credential/v1\0" and the 72 bytes before it. An edge
// appends it to WELCOME for clients whose HELLO has FRI_CAP_EDGE_CRED.
#define FRI_CRED_LEN 136
#define FRI_WELCOME_CRED_LEN (FRI_WELCOME_LEN + FRI_CRED_LEN)
// Credential file (fedrec-keygen --credential): "FRCR", version 1, three
// zero bytes, the credential.
#define FRI_CREDFILE_LEN (8 + FRI_CRED_LEN)

typedef struct fri_session  fri_session;
typedef struct fri_hs_client fri_hs_client;

// Optional list of enrolled client X25519 public keys.
typedef struct fri_allowlist {
    const uint8_t (*keys)[FRI_PKBYTES];
    size_t n;
} fri_allowlist;

// Client step 1. Writes HELLO (FRI_HELLO_LEN bytes) into dst and creates
// the pending state *out (free with fri_hs_client_destroy). server_kx is
// the pinned aggregator X25519 key. caps: FRI_CAP_* advertised.
FR_NODISCARD fr_err fri_hs_client_hello(fri_hs_client **out, uint8_t *dst,
                                        size_t dst_cap, size_t *dst_len,
                                        const fri_identity *me,
                                        const uint8_t server_kx[FRI_PKBYTES],
                                        uint32_t caps);

// As fri_hs_client_hello for a client that pins the root of a tree:
// root_sign is the root's Ed25519 key. HELLO then advertises
// FRI_CAP_EDGE_CRED, and fri_hs_client_finish accepts a WELCOME that
// carries an edge credential signed with root_sign (not expired at
// now_s), taking the credential's X25519 key as the server's; a WELCOME
// without one must come from server_kx as usual.
FR_NODISCARD fr_err fri_hs_client_hello_root(
    fri_hs_client **out, uint8_t *dst, size_t dst_cap, size_t *dst_len,
    const fri_identity *me, const uint8_t server_kx[FRI_PKBYTES],
    const uint8_t root_sign[FRI_PKBYTES], uint64_t now_s, uint32_t caps);

// An edge credential for edge (its X25519 and Ed25519 keys), valid until
// not_after, signed by root.
FR_NODISCARD fr_err fri_cred_make(uint8_t out[FRI_CRED_LEN],
                                  const fri_identity *root,
                                  const fri_pubkeys *edge, uint64_t not_after);
// FR_OK when cred is signed by root_sign and not expired at now_s
// (FR_ECRYPTO: bad signature; FR_ELATE: expired); *edge gets its keys.
FR_NODISCARD fr_err fri_cred_check(const uint8_t cred[FRI_CRED_LEN],
                                   const uint8_t root_sign[FRI_PKBYTES],
                                   uint64_t now_s, fri_pubkeys *edge);

// Server step. Checks HELLO (R2-R8 as a frame, R24), the allow-list
// (FR_EDENIED if allow != NULL and the client key is not in it), writes
// WELCOME (FRI_WELCOME_LEN bytes) into dst and creates *out.
FR_NODISCARD fr_err fri_hs_server_accept(fri_session **out, uint8_t *dst,
                                         size_t dst_cap, size_t *dst_len,
                                         const fri_identity *server,
                                         const fri_allowlist *allow,
                                         uint32_t caps, const uint8_t *hello,
                                         size_t hello_len);

// fri_hs_server_accept for an edge holding a credential (NULL: none):
// appended to WELCOME (FRI_WELCOME_CRED_LEN bytes) when the client's
// HELLO advertises FRI_CAP_EDGE_CRED. cred must name server's keys.
FR_NODISCARD fr_err fri_hs_server_accept_cred(
    fri_session **out, uint8_t *dst, size_t dst_cap, size_t *dst_len,
    const fri_identity *server, const fri_allowlist *allow, uint32_t caps,
    const uint8_t *hello, size_t hello_len, const uint8_t *cred);

// Client step 2. FR_ECRYPTO if the WELCOME was not made by the holder of
// the pinned key (or was altered). hs may be used once (FR_ESTATE after);
// it is wiped on return either way and must still be destroyed.
FR_NODISCARD fr_err fri_hs_client_finish(fri_session **out,
                                         fri_hs_client *hs,
                                         const uint8_t *welcome,
                                         size_t welcome_len);
void fri_hs_client_destroy(fri_hs_client *hs);

void fri_session_destroy(fri_session *s);
// The 8-byte session id (the server's session-table key).
const uint8_t *fri_session_id(const fri_session *s);
// The peer's static X25519 public key (client: the pinned server key).
const uint8_t *fri_session_peer(const fri_session *s);
// The peer's capabilities from HELLO / WELCOME.
uint32_t fri_session_peer_caps(const fri_session *s);
// 1 once a frame from the peer opened (server side: the client has proven
// its static key); the client's session is confirmed by the handshake.
int fri_session_confirmed(const fri_session *s);

// Session id of a sealed frame, for looking the session up before
// fri_open. FR_EPROTO if frame is not a well-formed sealed frame.
FR_NODISCARD fr_err fri_frame_sid(uint8_t sid[FRI_SID_BYTES],
                                  const uint8_t *frame, size_t frame_len);

// Seals in place. buf[FRI_SEAL_HEADROOM .. +plain_len) holds a plain
// frame (as written by an encoder at buf + FRI_SEAL_HEADROOM); on FR_OK
// buf[0 .. *out_len) is the sealed frame, *out_len = plain_len + 32.
// buf_cap must be >= plain_len + FRI_SEAL_HEADROOM + 16 (FR_ENOSPC).
// FR_ESTATE when the send counter is exhausted.
FR_NODISCARD fr_err fri_seal(fri_session *s, uint8_t *buf, size_t buf_cap,
                             size_t plain_len, size_t *out_len);
// Whether a plain frame is a masked UPDATE (values FIXED), the one frame
// fri_seal_clear takes.
int fri_frame_is_masked_update(const uint8_t *frame, size_t frame_len);
// Seals in place like fri_seal but authenticates without encrypting (SPEC
// 6.3, R38): only for a masked UPDATE (values FIXED), whose vector is
// one-time padded already; FR_EINVAL for any other frame. Send it only to
// a peer whose WELCOME has FRI_CAP_CLEAR_MASKED.
FR_NODISCARD fr_err fri_seal_clear(fri_session *s, uint8_t *buf,
                                   size_t buf_cap, size_t plain_len,
                                   size_t *out_len);
// Same, copying plain (e.g. a signed MODEL shared by many sessions) into
// dst, which needs plain_len + FRI_SEAL_OVERHEAD bytes.
FR_NODISCARD fr_err fri_seal_copy(fri_session *s, uint8_t *dst,
                                  size_t dst_cap, size_t *dst_len,
                                  const uint8_t *plain, size_t plain_len);
// Opens in place. On FR_OK, *plain = frame + FRI_SEAL_HEADROOM is a plain
// frame of *plain_len = frame_len - 32 bytes, ready for the decoders (it
// points into frame). Errors: FR_EPROTO/FR_EVERSION/FR_ETOOBIG (header),
// FR_ECRYPTO (other session, tampered, wrong key), FR_EREPLAY (counter not
// above the last accepted one). On error the session is unchanged and
// frame's content is unspecified.
FR_NODISCARD fr_err fri_open(fri_session *s, uint8_t *frame, size_t frame_len,
                             const uint8_t **plain, size_t *plain_len);

// Model signatures (R26). fri_model_sign fills the signature field of an
// encoded plain MODEL frame in place: Ed25519 over BLAKE2b-512 of a label,
// the header and the body after the signature (round id, version, data).
FR_NODISCARD fr_err fri_model_sign(uint8_t *frame, size_t frame_len,
                                   const fri_identity *id);
// FR_OK if valid; FR_ECRYPTO if not; FR_EPROTO etc. if not a MODEL frame.
FR_NODISCARD fr_err fri_model_verify(const uint8_t *frame, size_t frame_len,
                                     const uint8_t sign_pk[FRI_PKBYTES]);

#endif
