// Secure channel: handshake, sealed frames (R20-R24), allow-list (R25),
// model signatures (R26), round binding (R27).
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "samples.h"
#include "wire.h"

typedef struct pair {
    fri_identity srv, cli;
    fri_session *c, *s;
} pair;

static fr_err
handshake(pair *p, const uint8_t *pinned, const fri_allowlist *allow)
{
    uint8_t        hello[256], welcome[256];
    size_t         hl, wl;
    fri_hs_client *hs = NULL;
    p->c = p->s = NULL;
    fr_err e = fri_hs_client_hello(&hs, hello, sizeof(hello), &hl, &p->cli,
                                   pinned, FRI_CAP_ALS);
    cr_assert_eq(e, FR_OK);
    cr_assert_eq(hl, FRI_HELLO_LEN);
    e = fri_hs_server_accept(&p->s, welcome, sizeof(welcome), &wl, &p->srv,
                             allow, FRI_CAP_ALS | FRI_CAP_FP16, hello, hl);
    if (e != FR_OK) {
        fri_hs_client_destroy(hs);
        return e;
    }
    e = fri_hs_client_finish(&p->c, hs, welcome, wl);
    fri_hs_client_destroy(hs);
    return e;
}

static void
setup(pair *p)
{
    sample_identity(&p->srv, 1);
    sample_identity(&p->cli, 50);
    cr_assert_eq(handshake(p, p->srv.kx_pk, NULL), FR_OK);
}

static void
teardown(pair *p)
{
    fri_session_destroy(p->c);
    fri_session_destroy(p->s);
    fri_identity_wipe(&p->srv);
    fri_identity_wipe(&p->cli);
}

// Encodes the sample UPDATE at buf + headroom and seals it.
static size_t
sealed_update(fri_session *s, uint8_t *buf, size_t cap, uint64_t round)
{
    fri_update u = sample_update_als();
    size_t     n, sl;
    u.round_id = round;
    cr_assert_eq(fri_update_encode(buf + FRI_SEAL_HEADROOM,
                                   cap - FRI_SEAL_HEADROOM, &n, &u),
                 FR_OK);
    cr_assert_eq(fri_seal(s, buf, cap, n, &sl), FR_OK);
    cr_assert_eq(sl, n + FRI_SEAL_OVERHEAD);
    return sl;
}

Test(proto_channel, handshake_and_both_directions)
{
    pair p;
    setup(&p);
    cr_assert_eq(memcmp(fri_session_id(p.c), fri_session_id(p.s), 8), 0);
    cr_assert_eq(memcmp(fri_session_peer(p.s), p.cli.kx_pk, 32), 0);
    cr_assert_eq(fri_session_peer_caps(p.s), FRI_CAP_ALS);
    cr_assert_eq(fri_session_peer_caps(p.c), FRI_CAP_ALS | FRI_CAP_FP16);
    cr_assert_eq(fri_session_confirmed(p.s), 0);
    uint8_t buf[1024];
    for (uint64_t r = 1; r <= 3; r++) {
        size_t n = sealed_update(p.c, buf, sizeof(buf), r);
        uint8_t sid[8];
        cr_assert_eq(fri_frame_sid(sid, buf, n), FR_OK);
        cr_assert_eq(memcmp(sid, fri_session_id(p.s), 8), 0);
        const uint8_t *pl;
        size_t         pn;
        cr_assert_eq(fri_open(p.s, buf, n, &pl, &pn), FR_OK);
        cr_assert_eq(fri_session_confirmed(p.s), 1);
        fri_update d;
        cr_assert_eq(fri_update_decode(&d, pl, pn), FR_OK);
        cr_assert_eq(d.round_id, r);
        // Reply.
        fri_ack a = { FRI_T_UPDATE, r };
        size_t  an, sl;
        cr_assert_eq(fri_ack_encode(buf + FRI_SEAL_HEADROOM,
                                    sizeof(buf) - FRI_SEAL_HEADROOM, &an, &a),
                     FR_OK);
        cr_assert_eq(fri_seal(p.s, buf, sizeof(buf), an, &sl), FR_OK);
        cr_assert_eq(fri_open(p.c, buf, sl, &pl, &pn), FR_OK);
        fri_ack a2;
        cr_assert_eq(fri_ack_decode(&a2, pl, pn), FR_OK);
        cr_assert_eq(a2.round_id, r);
    }
    teardown(&p);
}

Test(proto_channel, R21_tampered_any_byte_is_ecrypto)
{
    pair p;
    setup(&p);
    uint8_t orig[1024], buf[1024];
    size_t  n = sealed_update(p.c, orig, sizeof(orig), 1);
    for (size_t i = 0; i < n; i++) {
        memcpy(buf, orig, n);
        buf[i] ^= 0x01;
        const uint8_t *pl;
        size_t         pn;
        fr_err         e = fri_open(p.s, buf, n, &pl, &pn);
        cr_assert_neq(e, FR_OK, "byte %zu", i);
        if (i >= 32 || (i >= 16 && i < 24)) {
            cr_assert_eq(e, FR_ECRYPTO, "byte %zu", i); // ct, tag, sid
        }
    }
    // The untampered frame still opens: failures changed no state.
    const uint8_t *pl;
    size_t         pn;
    cr_assert_eq(fri_open(p.s, orig, n, &pl, &pn), FR_OK);
    teardown(&p);
}

Test(proto_channel, R21_header_is_authenticated)
{
    pair p;
    setup(&p);
    uint8_t buf[1024];
    size_t  n = sealed_update(p.c, buf, sizeof(buf), 1);
    fri_put16(buf + 6, FRI_T_CHECKIN); // retype the frame
    const uint8_t *pl;
    size_t         pn;
    cr_assert_eq(fri_open(p.s, buf, n, &pl, &pn), FR_ECRYPTO);
    n = sealed_update(p.c, buf, sizeof(buf), 1);
    buf[5] = 3; // minor
    cr_assert_eq(fri_open(p.s, buf, n, &pl, &pn), FR_ECRYPTO);
    teardown(&p);
}

Test(proto_channel, R22_replay_and_reorder_are_ereplay)
{
    pair p;
    setup(&p);
    uint8_t f1[1024], f2[1024], copy[1024];
    size_t  n1 = sealed_update(p.c, f1, sizeof(f1), 1);
    size_t  n2 = sealed_update(p.c, f2, sizeof(f2), 1);
    const uint8_t *pl;
    size_t         pn;
    // Reorder: frame 2 first, then frame 1.
    memcpy(copy, f2, n2);
    cr_assert_eq(fri_open(p.s, copy, n2, &pl, &pn), FR_OK);
    memcpy(copy, f1, n1);
    cr_assert_eq(fri_open(p.s, copy, n1, &pl, &pn), FR_EREPLAY);
    // Replay of an accepted frame.
    memcpy(copy, f2, n2);
    cr_assert_eq(fri_open(p.s, copy, n2, &pl, &pn), FR_EREPLAY);
    // A forged higher counter fails the MAC and does not advance.
    memcpy(copy, f1, n1);
    fri_put64(copy + 24, 100);
    cr_assert_eq(fri_open(p.s, copy, n1, &pl, &pn), FR_ECRYPTO);
    size_t n3 = sealed_update(p.c, f1, sizeof(f1), 1);
    cr_assert_eq(fri_open(p.s, f1, n3, &pl, &pn), FR_OK);
    teardown(&p);
}

Test(proto_channel, R21_reflected_frame_fails)
{
    // A client frame sent back to the client (same session, other
    // direction) must not open.
    pair p;
    setup(&p);
    uint8_t buf[1024];
    size_t  n = sealed_update(p.c, buf, sizeof(buf), 1);
    const uint8_t *pl;
    size_t         pn;
    cr_assert_eq(fri_open(p.c, buf, n, &pl, &pn), FR_ECRYPTO);
    teardown(&p);
}

Test(proto_channel, R21_cross_session_frame_is_ecrypto)
{
    pair a, b;
    setup(&a);
    b.srv = a.srv;
    sample_identity(&b.cli, 50); // same client, second session
    cr_assert_eq(handshake(&b, b.srv.kx_pk, NULL), FR_OK);
    cr_assert_neq(memcmp(fri_session_id(a.s), fri_session_id(b.s), 8), 0);
    uint8_t buf[1024];
    size_t  n = sealed_update(a.c, buf, sizeof(buf), 1);
    const uint8_t *pl;
    size_t         pn;
    cr_assert_eq(fri_open(b.s, buf, n, &pl, &pn), FR_ECRYPTO);
    // Even with the other session's id patched in (AD + key differ).
    n = sealed_update(a.c, buf, sizeof(buf), 1);
    memcpy(buf + 16, fri_session_id(b.s), 8);
    cr_assert_eq(fri_open(b.s, buf, n, &pl, &pn), FR_ECRYPTO);
    teardown(&a);
    fri_session_destroy(b.c);
    fri_session_destroy(b.s);
}

Test(proto_channel, R20_unsealed_or_short_sealed_frame)
{
    pair p;
    setup(&p);
    uint8_t buf[1024];
    size_t  n;
    fri_ack a = { 1, 1 };
    cr_assert_eq(fri_ack_encode(buf, sizeof(buf), &n, &a), FR_OK);
    const uint8_t *pl;
    size_t         pn;
    cr_assert_eq(fri_open(p.s, buf, n, &pl, &pn), FR_EPROTO);
    fri_put32(buf + 8, FRI_F_SEALED); // sealed but body < 32
    cr_assert_eq(fri_open(p.s, buf, n, &pl, &pn), FR_EPROTO);
    uint8_t sid[8];
    cr_assert_eq(fri_frame_sid(sid, buf, n), FR_EPROTO);
    teardown(&p);
}

Test(proto_channel, R24_wrong_pinned_server_key_fails)
{
    pair         p;
    fri_identity other;
    sample_identity(&p.srv, 1);
    sample_identity(&p.cli, 50);
    sample_identity(&other, 77);
    cr_assert_eq(handshake(&p, other.kx_pk, NULL), FR_ECRYPTO);
    cr_assert_null(p.c);
    fri_session_destroy(p.s);
    p.s = NULL;
    fri_identity_wipe(&other);
    teardown(&p);
}

Test(proto_channel, R24_client_without_its_secret_cannot_talk)
{
    // An attacker replays the client's static public key with its own
    // ephemeral: the server's keys differ from the attacker's.
    pair         p, q;
    fri_identity mallory;
    setup(&p);
    sample_identity(&mallory, 90);
    q.srv = p.srv;
    q.cli = mallory;
    memcpy(q.cli.kx_pk, p.cli.kx_pk, 32); // claims the victim's key
    fr_err e = handshake(&q, q.srv.kx_pk, NULL);
    cr_assert_eq(e, FR_ECRYPTO); // its WELCOME does not open
    fri_session_destroy(q.s);
    fri_identity_wipe(&mallory);
    teardown(&p);
}

Test(proto_channel, R24_low_order_ephemeral_refused)
{
    fri_identity srv;
    sample_identity(&srv, 1);
    uint8_t hello[FRI_HELLO_LEN], welcome[FRI_WELCOME_LEN];
    size_t  wl;
    fri_hdr h = { 1, 0, FRI_T_HELLO, 0, FRI_HELLO_BODY };
    fri_hdr_put(hello, &h);
    memset(hello + 16, 0, 64); // zero points: all-zero DH output
    fri_session *s = NULL;
    cr_assert_eq(fri_hs_server_accept(&s, welcome, sizeof(welcome), &wl,
                                      &srv, NULL, 0, hello, sizeof(hello)),
                 FR_ECRYPTO);
    cr_assert_null(s);
    fri_identity_wipe(&srv);
}

Test(proto_channel, R24_altered_welcome_fails)
{
    fri_identity srv, cli;
    sample_identity(&srv, 1);
    sample_identity(&cli, 50);
    uint8_t hello[FRI_HELLO_LEN], welcome[FRI_WELCOME_LEN];
    for (size_t i = 0; i < FRI_WELCOME_LEN; i++) {
        size_t         hl, wl;
        fri_hs_client *hs;
        fri_session   *s, *c = NULL;
        cr_assert_eq(fri_hs_client_hello(&hs, hello, sizeof(hello), &hl, &cli,
                                         srv.kx_pk, 0),
                     FR_OK);
        cr_assert_eq(fri_hs_server_accept(&s, welcome, sizeof(welcome), &wl,
                                          &srv, NULL, 0, hello, hl),
                     FR_OK);
        welcome[i] ^= 0x40;
        cr_assert_neq(fri_hs_client_finish(&c, hs, welcome, wl), FR_OK,
                      "byte %zu", i);
        cr_assert_null(c);
        cr_assert_eq(fri_hs_client_finish(&c, hs, welcome, wl), FR_ESTATE);
        fri_hs_client_destroy(hs);
        fri_session_destroy(s);
    }
    fri_identity_wipe(&srv);
    fri_identity_wipe(&cli);
}

Test(proto_channel, R25_allow_list)
{
    pair         p;
    fri_identity other;
    sample_identity(&p.srv, 1);
    sample_identity(&p.cli, 50);
    sample_identity(&other, 60);
    uint8_t       keys[2][32];
    memcpy(keys[0], other.kx_pk, 32);
    memcpy(keys[1], p.srv.kx_pk, 32);
    fri_allowlist allow = { (const uint8_t(*)[32]) keys, 2 };
    cr_assert_eq(handshake(&p, p.srv.kx_pk, &allow), FR_EDENIED);
    cr_assert_null(p.s);
    memcpy(keys[1], p.cli.kx_pk, 32); // enrol
    cr_assert_eq(handshake(&p, p.srv.kx_pk, &allow), FR_OK);
    fri_identity_wipe(&other);
    teardown(&p);
}

Test(proto_channel, R27_cross_round_update_is_visible_to_round_check)
{
    // The round id is inside the authenticated body: an UPDATE sealed for
    // round 6 cannot be relabelled as round 7; the aggregator sees 6 and
    // answers FR_ELATE (its round check).
    pair p;
    setup(&p);
    uint8_t buf[1024];
    size_t  n = sealed_update(p.c, buf, sizeof(buf), 6);
    fri_put64(buf + 32, 7 ^ fri_get64(buf + 32) ^ 6); // flip ct bits
    const uint8_t *pl;
    size_t         pn;
    cr_assert_eq(fri_open(p.s, buf, n, &pl, &pn), FR_ECRYPTO);
    n = sealed_update(p.c, buf, sizeof(buf), 6);
    cr_assert_eq(fri_open(p.s, buf, n, &pl, &pn), FR_OK);
    fri_update d;
    cr_assert_eq(fri_update_decode(&d, pl, pn), FR_OK);
    uint64_t open_round = 7;
    fr_err   verdict = d.round_id == open_round ? FR_OK : FR_ELATE;
    cr_assert_eq(verdict, FR_ELATE);
    teardown(&p);
}

Test(proto_channel, seal_enospc_and_seal_copy)
{
    pair p;
    setup(&p);
    uint8_t plain[512], buf[600];
    size_t  pn, n;
    fri_update u = sample_update_als();
    cr_assert_eq(fri_update_encode(plain, sizeof(plain), &pn, &u), FR_OK);
    cr_assert_eq(fri_seal_copy(p.c, buf, pn + FRI_SEAL_OVERHEAD - 1, &n,
                               plain, pn),
                 FR_ENOSPC);
    cr_assert_eq(fri_seal_copy(p.c, buf, sizeof(buf), &n, plain, pn), FR_OK);
    const uint8_t *pl;
    size_t         pln;
    cr_assert_eq(fri_open(p.s, buf, n, &pl, &pln), FR_OK);
    cr_assert_eq(pln, pn);
    cr_assert_eq(memcmp(pl, plain, pn), 0);
    teardown(&p);
}

Test(proto_channel, R26_model_signature_any_bit_flip_fails)
{
    fri_identity srv, other;
    sample_identity(&srv, 1);
    sample_identity(&other, 2);
    uint8_t   frame[512], copy[512];
    size_t    n;
    fri_model m = sample_model(FRI_MENC_F32);
    cr_assert_eq(fri_model_encode(frame, sizeof(frame), &n, &m), FR_OK);
    cr_assert_eq(fri_model_sign(frame, n, &srv), FR_OK);
    cr_assert_eq(fri_model_verify(frame, n, srv.sign_pk), FR_OK);
    cr_assert_eq(fri_model_verify(frame, n, other.sign_pk), FR_ECRYPTO);
    for (size_t i = 0; i < n * 8; i++) {
        memcpy(copy, frame, n);
        copy[i / 8] ^= (uint8_t) (1u << (i % 8));
        cr_assert_neq(fri_model_verify(copy, n, srv.sign_pk), FR_OK,
                      "bit %zu", i);
    }
    fri_identity_wipe(&srv);
    fri_identity_wipe(&other);
}

// ---- edge credentials (§6.1.1) ---------------------------------------------

// A client pinning the root (kx and Ed25519 of root) shakes hands with
// server srv, which sends cred (or none); client_caps_cred: whether the
// client asks for credentials at all.
static fr_err
handshake_root(fri_session **c, fri_session **s, const fri_identity *root,
               const fri_identity *srv, const fri_identity *cli,
               const uint8_t *cred, uint64_t now_s, int client_caps_cred,
               size_t *welcome_len)
{
    uint8_t        hello[256], welcome[512];
    size_t         hl, wl;
    fri_hs_client *hs = NULL;
    *c = *s = NULL;
    fr_err e = client_caps_cred
                   ? fri_hs_client_hello_root(&hs, hello, sizeof(hello), &hl,
                                              cli, root->kx_pk, root->sign_pk,
                                              now_s, FRI_CAP_ALS)
                   : fri_hs_client_hello(&hs, hello, sizeof(hello), &hl, cli,
                                         root->kx_pk, FRI_CAP_ALS);
    cr_assert_eq(e, FR_OK);
    e = fri_hs_server_accept_cred(s, welcome, sizeof(welcome), &wl, srv, NULL,
                                  FRI_CAP_ALS, hello, hl, cred);
    cr_assert_eq(e, FR_OK);
    *welcome_len = wl;
    e = fri_hs_client_finish(c, hs, welcome, wl);
    fri_hs_client_destroy(hs);
    return e;
}

Test(proto_channel, edge_credential_lets_a_root_pinned_client_in)
{
    fri_identity root, edge, other, cli;
    sample_identity(&root, 1);
    sample_identity(&edge, 2);
    sample_identity(&other, 3);
    sample_identity(&cli, 50);
    fri_pubkeys ep, op, got;
    fri_identity_pub(&ep, &edge);
    fri_identity_pub(&op, &other);
    uint8_t cred[FRI_CRED_LEN], cred_other[FRI_CRED_LEN], forged[FRI_CRED_LEN];
    cr_assert_eq(fri_cred_make(cred, &root, &ep, 2000), FR_OK);
    cr_assert_eq(fri_cred_make(cred_other, &root, &op, 2000), FR_OK);
    cr_assert_eq(fri_cred_make(forged, &other, &ep, 2000), FR_OK);
    cr_assert_eq(fri_cred_check(cred, root.sign_pk, 1000, &got), FR_OK);
    cr_assert_eq(memcmp(got.kx, edge.kx_pk, 32), 0);
    cr_assert_eq(fri_cred_check(forged, root.sign_pk, 1000, &got), FR_ECRYPTO);
    cr_assert_eq(fri_cred_check(cred, root.sign_pk, 2001, &got), FR_ELATE);
    uint8_t bad[FRI_CRED_LEN];
    for (size_t i = 0; i < FRI_CRED_LEN; i += 7) {
        memcpy(bad, cred, sizeof(bad));
        bad[i] ^= 0x10;
        cr_assert_eq(fri_cred_check(bad, root.sign_pk, 1000, &got), FR_ECRYPTO,
                     "byte %zu", i);
    }

    fri_session *c, *s;
    size_t       wl;
    // The edge with its credential: the session works both ways.
    cr_assert_eq(handshake_root(&c, &s, &root, &edge, &cli, cred, 1000, 1, &wl),
                 FR_OK);
    cr_assert_eq(wl, FRI_WELCOME_CRED_LEN);
    cr_assert_eq(memcmp(fri_session_peer(c), edge.kx_pk, 32), 0);
    uint8_t buf[1024];
    size_t  sl = sealed_update(c, buf, sizeof(buf), 5);
    const uint8_t *pl;
    size_t         pn;
    cr_assert_eq(fri_open(s, buf, sl, &pl, &pn), FR_OK);
    fri_session_destroy(c);
    fri_session_destroy(s);
    // The root itself, no credential: as before.
    cr_assert_eq(handshake_root(&c, &s, &root, &root, &cli, NULL, 1000, 1, &wl),
                 FR_OK);
    cr_assert_eq(wl, FRI_WELCOME_LEN);
    fri_session_destroy(c);
    fri_session_destroy(s);
    // Refused: an edge without credential, an expired one, one signed by
    // another key, another edge's credential (the DH fails: the edge does
    // not hold that key).
    cr_assert_eq(handshake_root(&c, &s, &root, &edge, &cli, NULL, 1000, 1, &wl),
                 FR_ECRYPTO);
    fri_session_destroy(s);
    cr_assert_eq(handshake_root(&c, &s, &root, &edge, &cli, cred, 2001, 1, &wl),
                 FR_ECRYPTO);
    fri_session_destroy(s);
    cr_assert_eq(
        handshake_root(&c, &s, &root, &edge, &cli, forged, 1000, 1, &wl),
        FR_ECRYPTO);
    fri_session_destroy(s);
    cr_assert_eq(
        handshake_root(&c, &s, &root, &edge, &cli, cred_other, 1000, 1, &wl),
        FR_ECRYPTO);
    fri_session_destroy(s);
    // A client that did not ask gets the plain WELCOME (and, pinning the
    // root, cannot talk to the edge).
    cr_assert_eq(handshake_root(&c, &s, &root, &edge, &cli, cred, 1000, 0, &wl),
                 FR_ECRYPTO);
    cr_assert_eq(wl, FRI_WELCOME_LEN);
    fri_session_destroy(s);
    fri_identity_wipe(&root);
    fri_identity_wipe(&edge);
    fri_identity_wipe(&other);
    fri_identity_wipe(&cli);
}

// ---- CLEAR: a masked UPDATE authenticated, not encrypted (R38) -------------

static size_t
plain_fixed(uint8_t *buf, size_t cap)
{
    fri_update u = sample_update_fixed();
    size_t     n;
    cr_assert_eq(fri_update_encode(buf + FRI_SEAL_HEADROOM,
                                   cap - FRI_SEAL_HEADROOM, &n, &u),
                 FR_OK);
    return n;
}

Test(proto_channel, R38_clear_masked_update_round_trip)
{
    pair p;
    setup(&p);
    uint8_t buf[1024], plain[1024];
    size_t  n = plain_fixed(buf, sizeof buf), sl;
    memcpy(plain, buf + FRI_SEAL_HEADROOM, n);
    cr_assert_eq(fri_seal_clear(p.c, buf, sizeof buf, n, &sl), FR_OK);
    cr_assert_eq(sl, n + FRI_SEAL_OVERHEAD);
    fri_hdr h;
    cr_assert_eq(fri_frame_check(&h, buf, sl), FR_OK);
    cr_assert_eq(h.flags, FRI_F_SEALED | FRI_F_CLEAR);
    // The body travels as it is (the masked vector is one-time padded).
    cr_assert_eq(memcmp(buf + 32, plain + FRI_HDR_LEN, n - FRI_HDR_LEN), 0);
    uint8_t copy[1024];
    memcpy(copy, buf, sl);
    const uint8_t *pl;
    size_t         pn;
    cr_assert_eq(fri_open(p.s, buf, sl, &pl, &pn), FR_OK);
    cr_assert_eq(pn, n);
    cr_assert_eq(memcmp(pl, plain, n), 0, "the plain frame comes back");
    cr_assert_eq(fri_open(p.s, copy, sl, &pl, &pn), FR_EREPLAY);
    teardown(&p);
}

Test(proto_channel, R38_clear_is_refused_for_anything_but_a_masked_update)
{
    pair p;
    setup(&p);
    uint8_t buf[1024];
    size_t  n, sl;
    // The sealing side: an F32 update, an ACK.
    n = plain_fixed(buf, sizeof buf);
    cr_assert(fri_frame_is_masked_update(buf + FRI_SEAL_HEADROOM, n));
    cr_assert(!fri_frame_is_masked_update(buf + FRI_SEAL_HEADROOM, 20));
    fri_update u = sample_update_als();
    cr_assert_eq(fri_update_encode(buf + FRI_SEAL_HEADROOM,
                                   sizeof buf - FRI_SEAL_HEADROOM, &n, &u),
                 FR_OK);
    cr_assert(!fri_frame_is_masked_update(buf + FRI_SEAL_HEADROOM, n));
    cr_assert_eq(fri_seal_clear(p.c, buf, sizeof buf, n, &sl), FR_EINVAL);
    fri_ack a = sample_ack();
    cr_assert_eq(fri_ack_encode(buf + FRI_SEAL_HEADROOM,
                                sizeof buf - FRI_SEAL_HEADROOM, &n, &a),
                 FR_OK);
    cr_assert_eq(fri_seal_clear(p.s, buf, sizeof buf, n, &sl), FR_EINVAL);
    // The opening side: CLEAR set on an encrypted F32 update is refused
    // before any key is used, and on an encrypted masked one the tag
    // fails or its ciphertext is no masked update (the flag is
    // authenticated either way).
    size_t  m = sealed_update(p.c, buf, sizeof buf, 1);
    uint8_t f[1024];
    memcpy(f, buf, m);
    f[8] |= FRI_F_CLEAR;
    const uint8_t *pl;
    size_t         pn;
    cr_assert_eq(fri_open(p.s, f, m, &pl, &pn), FR_EPROTO);
    n = plain_fixed(buf, sizeof buf);
    cr_assert_eq(fri_seal(p.c, buf, sizeof buf, n, &sl), FR_OK);
    memcpy(f, buf, sl);
    f[8] |= FRI_F_CLEAR;
    fr_err e = fri_open(p.s, f, sl, &pl, &pn);
    cr_assert(e == FR_ECRYPTO || e == FR_EPROTO, "%s", fr_errname(e));
    // ... and a CLEAR frame with the flag stripped does not open either.
    n = plain_fixed(buf, sizeof buf);
    cr_assert_eq(fri_seal_clear(p.c, buf, sizeof buf, n, &sl), FR_OK);
    memcpy(f, buf, sl);
    f[8] &= (uint8_t) ~FRI_F_CLEAR;
    cr_assert_eq(fri_open(p.s, f, sl, &pl, &pn), FR_ECRYPTO);
    // Nothing above changed the session: the CLEAR frame still opens.
    cr_assert_eq(fri_open(p.s, buf, sl, &pl, &pn), FR_OK);
    // R4: CLEAR without SEALED is refused by every decoder.
    n = plain_fixed(buf, sizeof buf);
    uint8_t *plainf = buf + FRI_SEAL_HEADROOM;
    plainf[8] |= FRI_F_CLEAR;
    fri_update d;
    cr_assert_eq(fri_update_decode(&d, plainf, n), FR_EPROTO);
    teardown(&p);
}

Test(proto_channel, R38_clear_tampered_any_byte_fails)
{
    pair p;
    setup(&p);
    uint8_t orig[1024], buf[1024];
    size_t  n = plain_fixed(orig, sizeof orig), sl;
    cr_assert_eq(fri_seal_clear(p.c, orig, sizeof orig, n, &sl), FR_OK);
    for (size_t i = 0; i < sl; i++) {
        memcpy(buf, orig, sl);
        buf[i] ^= 0x01;
        const uint8_t *pl;
        size_t         pn;
        fr_err         e = fri_open(p.s, buf, sl, &pl, &pn);
        cr_assert_neq(e, FR_OK, "byte %zu", i);
        if (i >= 32 && i != 32 + 10) { // vtype: no longer a masked update
            cr_assert_eq(e, FR_ECRYPTO, "byte %zu", i);
        }
    }
    const uint8_t *pl;
    size_t         pn;
    cr_assert_eq(fri_open(p.s, orig, sl, &pl, &pn), FR_OK);
    teardown(&p);
}
