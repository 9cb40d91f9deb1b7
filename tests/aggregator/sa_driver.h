// A secure-aggregation round through the aggregator's phase machine
// (fri_agg_sa_*), with members that run the real client-side cryptography
// of common/secagg.h: adverts, verified rosters, Shamir shares sealed to
// the neighbours, masked inputs, and the unmasking, with dropouts, silent
// members, corrupted shares and a tampered input on request. Shared by
// the aggregator tests of secure rounds (gradients, ALS statistics).
// Static inline so an executable that uses only part of it does not warn.
#ifndef FR_TESTS_AGGREGATOR_SA_DRIVER_H
#define FR_TESTS_AGGREGATOR_SA_DRIVER_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "agg.h"
#include "secagg.h"
#include "shamir.h"

#define SA_DRV_MAXN 100

// A member's side of the protocol. The test fills x (t.sa_dim floats, the
// input it masks) and checks the member in (t) before a round.
typedef struct sa_drv_member {
    uint8_t         pk[FRI_AGG_KEYBYTES];
    uint8_t         id_pk[32], id_sk[64];
    fri_secagg_keys keys;
    uint8_t         b[32];
    fri_agg_task    t;
    const float    *x;
    // Shares received: from[j] and the opened 64-byte plaintext.
    uint32_t from[SA_DRV_MAXN];
    uint8_t  held[SA_DRV_MAXN][FRI_SECAGG_SHAREMSGBYTES];
    size_t   n_from;
} sa_drv_member;

// What goes wrong in a round (all optional, indexed by member).
// drop_before_mask: members that share but never send a masked input;
// silent: members that send it but never answer the unmask request;
// corrupt: members that reveal wrong shares (1: each revealed share, 2:
// each revealed share of a survivor's self-mask seed, one byte flipped);
// tamper: applied to member 0's quantized input before masking.
typedef struct sa_drv_faults {
    const uint8_t *drop_before_mask;
    const uint8_t *silent;
    const uint8_t *corrupt;
    void (*tamper)(uint32_t *q, size_t dim);
    // Members that send their dropout correction with the unmask answer
    // when they reveal a dropped member's shares (NULL: none).
    const uint8_t *correct;
    // Applied to the first correction sent (a member lying in it).
    void (*tamper_corr)(uint32_t *c, size_t dim);
} sa_drv_faults;

// Fresh random client key and identity (signing) key pair.
static inline void
sa_drv_member_init(sa_drv_member *m)
{
    randombytes_buf(m->pk, sizeof(m->pk));
    crypto_sign_keypair(m->id_pk, m->id_sk);
}

// Runs the phases of one secure round at time now for the n members, all
// checked in. Returns the number of members that sent a masked input.
static inline uint32_t
sa_drv_round(fri_agg *a, sa_drv_member *const *ms, uint32_t n, uint64_t now,
    const sa_drv_faults *o)
{
    cr_assert(n <= SA_DRV_MAXN);
    // The round's parameters are set when its cohort closes (full, or at
    // the join deadline): read them again, as a device polls SA_PARAMS.
    for (uint32_t u = 0; u < n; u++) {
        cr_assert_eq(fri_agg_checkin(a, now, ms[u]->pk, &ms[u]->t), FR_OK);
        cr_assert(ms[u]->t.has_task && ms[u]->t.sa_n >= 2,
            "member %u: the cohort is still filling", u);
    }
    const size_t dim = ms[0]->t.sa_dim;
    uint32_t    *q   = malloc(dim * sizeof(uint32_t));
    cr_assert_not_null(q);
    uint32_t retry;
    // Phase 1: adverts. Before it closes, the roster is "wait".
    for (uint32_t u = 0; u < n; u++) {
        sa_drv_member *m = ms[u];
        cr_assert_eq(fri_secagg_keygen(&m->keys, NULL), FR_OK);
        randombytes_buf(m->b, sizeof(m->b));
        uint8_t commit[FRI_SECAGG_COMMITBYTES];
        fri_secagg_seed_commit(commit, m->b, m->t.round, m->t.sa_index);
        fri_secagg_advert adv;
        cr_assert_eq(fri_secagg_advert_sign(&adv, m->t.round, m->t.sa_index,
                         m->keys.c_pk, m->keys.s_pk, commit, m->id_sk),
            FR_OK);
        uint8_t w[FRI_AGG_SA_ADVERTBYTES];
        size_t  wl;
        cr_assert_eq(fri_secagg_advert_encode(w, sizeof(w), &wl, &adv), FR_OK);
        if (u == 0) {
            size_t nr;
            cr_assert_eq(fri_agg_sa_roster(a, now, m->pk, m->t.round, NULL,
                             NULL, NULL, 0, &nr, &retry),
                FR_OK);
            cr_assert(retry > 0, "roster before the adverts are in");
        }
        cr_assert_eq(
            fri_agg_sa_advert(a, now, m->pk, m->t.round, m->id_pk, w, wl),
            FR_OK);
    }
    // Phase 2: roster, verify, split and seal for the neighbours.
    static uint32_t ridx[SA_DRV_MAXN];
    static uint8_t  rid[SA_DRV_MAXN * 32],
        radv[SA_DRV_MAXN * FRI_AGG_SA_ADVERTBYTES];
    // Every advert seen in some roster, by member id (for phase 3).
    static uint8_t adv_by_id[SA_DRV_MAXN * FRI_AGG_SA_ADVERTBYTES];
    for (uint32_t u = 0; u < n; u++) {
        sa_drv_member *m  = ms[u];
        size_t         nr = 0;
        cr_assert_eq(fri_agg_sa_roster(a, now, m->pk, m->t.round, ridx, rid,
                         radv, SA_DRV_MAXN, &nr, &retry),
            FR_OK);
        cr_assert_eq(retry, 0);
        uint32_t nb[SA_DRV_MAXN];
        size_t   nn = 0;
        cr_assert_eq(fri_secagg_neighbors(nb, SA_DRV_MAXN, &nn, m->t.sa_index,
                         m->t.sa_n, m->t.sa_degree, m->t.sa_graph_seed),
            FR_OK);
        // The roster: the member's own advert and its neighbours' (all
        // advertised here), in increasing id order.
        cr_assert_eq(nr, nn + 1, "member %u: roster of %zu, %zu neighbours",
                     m->t.sa_index, nr, nn);
        uint8_t  s_pk[SA_DRV_MAXN][32];
        uint32_t xs[SA_DRV_MAXN];
        for (size_t j = 0; j < nn; j++) {
            size_t r = 0;
            while (r < nr && ridx[r] != nb[j]) {
                r++;
            }
            cr_assert(r < nr, "neighbour %u missing from the roster", nb[j]);
            fri_secagg_advert adv;
            cr_assert_eq(fri_secagg_advert_decode(&adv,
                             radv + r * FRI_AGG_SA_ADVERTBYTES,
                             FRI_AGG_SA_ADVERTBYTES),
                FR_OK);
            cr_assert_eq(fri_secagg_advert_verify(&adv, m->t.round, nb[j],
                             rid + r * 32),
                FR_OK);
            memcpy(adv_by_id + (size_t)nb[j] * FRI_AGG_SA_ADVERTBYTES,
                   radv + r * FRI_AGG_SA_ADVERTBYTES, FRI_AGG_SA_ADVERTBYTES);
            memcpy(s_pk[j], adv.s_pk, 32);
            xs[j] = nb[j] + 1;
        }
        static uint8_t bsh[SA_DRV_MAXN * 32], csh[SA_DRV_MAXN * 32];
        cr_assert_eq(fri_shamir_split_at(bsh, sizeof(bsh), xs, nn,
                         m->t.sa_threshold, m->b, 32, NULL),
            FR_OK);
        cr_assert_eq(fri_shamir_split_at(csh, sizeof(csh), xs, nn,
                         m->t.sa_threshold, m->keys.c_sk, 32, NULL),
            FR_OK);
        static uint8_t sealed[SA_DRV_MAXN * FRI_AGG_SA_SEALED];
        for (size_t j = 0; j < nn; j++) {
            uint8_t msg[64];
            memcpy(msg, bsh + j * 32, 32);
            memcpy(msg + 32, csh + j * 32, 32);
            size_t sl;
            cr_assert_eq(fri_secagg_share_seal(sealed + j * FRI_AGG_SA_SEALED,
                             FRI_AGG_SA_SEALED, &sl, msg, 64, m->t.round,
                             m->t.sa_index, nb[j], m->keys.s_sk, s_pk[j]),
                FR_OK);
        }
        if (u == 0 && nn >= 2) {
            // A list naming one recipient twice is refused whole, and
            // leaves nothing behind: the correct list is taken after it.
            uint32_t twice[SA_DRV_MAXN];
            memcpy(twice, nb, nn * sizeof(uint32_t));
            twice[nn - 1] = twice[0];
            cr_assert_eq(fri_agg_sa_shares(a, now, m->pk, m->t.round, twice,
                             sealed, nn),
                FR_EPROTO);
        }
        cr_assert_eq(
            fri_agg_sa_shares(a, now, m->pk, m->t.round, nb, sealed, nn),
            FR_OK);
    }
    // Phase 3: open incoming shares, mask, send.
    uint32_t survivors = 0;
    for (uint32_t u = 0; u < n; u++) {
        sa_drv_member  *m = ms[u];
        static uint32_t from[SA_DRV_MAXN];
        static uint8_t  in[SA_DRV_MAXN * FRI_AGG_SA_SEALED];
        size_t          ni = 0;
        cr_assert_eq(fri_agg_sa_inbox(a, now, m->pk, m->t.round, from, in,
                         SA_DRV_MAXN, &ni, &retry),
            FR_OK);
        cr_assert_eq(retry, 0);
        m->n_from = ni;
        uint8_t peer_c_pk[SA_DRV_MAXN * 32];
        for (size_t j = 0; j < ni; j++) {
            fri_secagg_advert adv;
            cr_assert_eq(fri_secagg_advert_decode(&adv,
                             adv_by_id + (size_t)from[j] * FRI_AGG_SA_ADVERTBYTES,
                             FRI_AGG_SA_ADVERTBYTES),
                FR_OK);
            size_t ml;
            cr_assert_eq(
                fri_secagg_share_open(m->held[j], sizeof(m->held[j]), &ml,
                    in + j * FRI_AGG_SA_SEALED, FRI_AGG_SA_SEALED, m->t.round,
                    from[j], m->t.sa_index, m->keys.s_sk, adv.s_pk),
                FR_OK);
            m->from[j] = from[j];
            memcpy(peer_c_pk + j * 32, adv.c_pk, 32);
        }
        if (o->drop_before_mask != NULL && o->drop_before_mask[u]) {
            continue;
        }
        cr_assert_eq(fri_secagg_quantize(
                         q, m->x, dim, m->t.sa_clip, m->t.sa_frac_bits, NULL),
            FR_OK);
        if (u == 0 && o->tamper != NULL) {
            o->tamper(q, dim); // a member bypassing the quantizer
        }
        cr_assert_eq(fri_secagg_mask(q, q, dim, m->t.sa_index, m->from,
                         peer_c_pk, ni, m->keys.c_sk, m->b, m->t.round),
            FR_OK);
        cr_assert_eq(
            fri_agg_sa_masked(a, now, m->pk, m->t.round, q, dim), FR_OK);
        survivors++;
    }
    if (o->drop_before_mask != NULL) {
        // The masked phase closes at its deadline without the dropped.
        now += 1001;
        fri_agg_tick(a, now);
    }
    // Phase 4: reveal b-shares of survivors, c_sk-shares of the dropped.
    int silent_any = 0, corrected_any = 0;
    for (uint32_t u = 0; u < n; u++) {
        sa_drv_member *m = ms[u];
        if (o->drop_before_mask != NULL && o->drop_before_mask[u]) {
            continue;
        }
        if (o->silent != NULL && o->silent[u]) {
            silent_any = 1;
            continue;
        }
        uint32_t sv[SA_DRV_MAXN], dr[SA_DRV_MAXN];
        size_t   ns, nd;
        cr_assert_eq(fri_agg_sa_unmask_req(a, now, m->pk, m->t.round, sv,
                         SA_DRV_MAXN, &ns, dr, SA_DRV_MAXN, &nd, &retry),
            FR_OK);
        cr_assert_eq(retry, 0);
        cr_assert_eq(ns, survivors);
        uint32_t about[SA_DRV_MAXN];
        uint8_t  sh[SA_DRV_MAXN * 32];
        for (size_t j = 0; j < m->n_from; j++) {
            int surv = 0;
            for (size_t s = 0; s < ns; s++) {
                surv |= sv[s] == m->from[j];
            }
            about[j] = m->from[j];
            memcpy(sh + j * 32, m->held[j] + (surv ? 0 : 32), 32);
            if (o->corrupt != NULL
                && (o->corrupt[u] == 1 || (o->corrupt[u] == 2 && surv))) {
                sh[j * 32 + (u % 32)] ^= 0x5a;
            }
        }
        if (u == 0 && m->n_from >= 2) {
            // The same subject twice: refused whole, nothing recorded.
            uint32_t twice[SA_DRV_MAXN];
            memcpy(twice, about, m->n_from * sizeof(uint32_t));
            twice[m->n_from - 1] = twice[0];
            cr_assert_eq(fri_agg_sa_unmask(a, now, m->pk, m->t.round, twice,
                             sh, m->n_from, NULL, 0),
                FR_EPROTO);
        }
        // The correction: the pair masks with the dropped it reveals.
        uint32_t *corr = NULL, dpeer[SA_DRV_MAXN];
        uint8_t   dpk[SA_DRV_MAXN * 32];
        size_t    n_dp = 0;
        for (size_t j = 0; j < m->n_from; j++) {
            int surv = 0;
            for (size_t s = 0; s < ns; s++) {
                surv |= sv[s] == m->from[j];
            }
            if (!surv) {
                fri_secagg_advert adv;
                cr_assert_eq(fri_secagg_advert_decode(&adv,
                                 adv_by_id
                                     + (size_t)m->from[j]
                                         * FRI_AGG_SA_ADVERTBYTES,
                                 FRI_AGG_SA_ADVERTBYTES),
                    FR_OK);
                dpeer[n_dp] = m->from[j];
                memcpy(dpk + n_dp * 32, adv.c_pk, 32);
                n_dp++;
            }
        }
        if (o->correct != NULL && o->correct[u] && n_dp > 0) {
            corr = malloc(dim * sizeof(uint32_t));
            cr_assert_not_null(corr);
            cr_assert_eq(fri_secagg_correction(corr, dim, m->t.sa_index,
                             dpeer, dpk, n_dp, m->keys.c_sk, m->t.round),
                FR_OK);
            // A correction of the wrong length is refused whole.
            cr_assert_eq(fri_agg_sa_unmask(a, now, m->pk, m->t.round, about,
                             sh, m->n_from, corr, dim - 1),
                FR_EPROTO);
            if (!corrected_any && o->tamper_corr != NULL) {
                o->tamper_corr(corr, dim);
            }
            corrected_any = 1;
        }
        fr_err rv = fri_agg_sa_unmask(a, now, m->pk, m->t.round, about, sh,
            m->n_from, corr, corr != NULL ? dim : 0);
        free(corr);
        cr_assert_eq(rv, FR_OK, "unmask: %s", fr_strerror(rv));
    }
    if (silent_any) {
        now += 1001;
        fri_agg_tick(a, now);
    }
    free(q);
    return survivors;
}

#endif
