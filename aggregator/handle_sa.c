// Secure aggregation on the wire: decodes the SA_* requests (and the
// masked UPDATE) of an authenticated member and answers with a plain
// frame that handle.c seals. The phase logic is in sa.c.
#include "agg_int.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "counters.h"
#include "handle_sa.h"
#include "msg.h"
#include "msg_secagg.h"
#include "rounds.h"
#include "sa.h"

int
fri_agg_sa_wire_type(uint16_t type)
{
    return type == FRI_T_SA_ADVERT || type == FRI_T_SA_SHARES ||
           type == FRI_T_SA_UNMASK || type == FRI_T_SA_POLL ||
           type == FRI_T_UPDATE;
}

size_t
fri_agg_sa_reply_bound(const fri_agg *a)
{
    if (a->sa == NULL) {
        return 0;
    }
    uint32_t n = a->cfg.clients_per_round;
    size_t   r = fri_sa_list_size(FRI_T_SA_ROSTER, n);
    size_t   f = fri_sa_list_size(FRI_T_SA_SHARES_FWD, n);
    size_t   u = fri_sa_unmask_req_size(n, 0);
    size_t   b = r > f ? r : f;
    return b > u ? b : u;
}

static fr_err
put_err(uint8_t *out, size_t cap, size_t *len, fr_err code,
        uint16_t of_type, uint64_t round, uint32_t retry, const char *text)
{
    fri_error er;
    memset(&er, 0, sizeof(er));
    er.code           = (uint32_t) code;
    er.of_type        = of_type;
    er.round_id       = round;
    er.retry_after_ms = retry;
    er.text           = text;
    er.text_len       = (uint16_t) strlen(text);
    return fri_error_encode(out, cap, len, &er);
}

static fr_err
put_ack(uint8_t *out, size_t cap, size_t *len, uint16_t of_type,
        uint64_t round)
{
    fri_ack ack = {.of_type = of_type, .round_id = round};
    return fri_ack_encode(out, cap, len, &ack);
}

static fr_err
put_wait(uint8_t *out, size_t cap, size_t *len, uint16_t want,
         uint64_t round, uint32_t retry)
{
    fri_sa_poll w = {.round_id = round, .want = want, .retry_after_ms = retry};
    return fri_sa_poll_encode(out, cap, len, FRI_T_SA_WAIT, &w);
}

static const char *
why(fr_err rv)
{
    switch (rv) {
    case FR_ELATE:
        return "phase is over";
    case FR_EDUP:
        return "already sent in this phase";
    case FR_EDENIED:
        return "not in this round's cohort";
    case FR_ECRYPTO:
        return "advert signature does not verify";
    case FR_ESTATE:
        return "phase has not started";
    default:
        return "secure aggregation request refused";
    }
}

// The retry hint of a poll that came too early.
static uint32_t
sa_retry_ms(const fri_agg *a)
{
    return a->cfg.retry_after_ms / 4 > 10 ? a->cfg.retry_after_ms / 4 : 10;
}

static fr_err
poll(fri_agg *a, uint64_t now_ms, const uint8_t *pk, const uint8_t *plain,
     size_t plain_len, uint8_t *out, size_t cap, size_t *len, int *last)
{
    fri_sa_poll p;
    fr_err      rv = fri_sa_poll_decode(&p, FRI_T_SA_POLL, plain, plain_len);
    if (rv != FR_OK) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
        return put_err(out, cap, len, rv, FRI_T_SA_POLL, 0, 0,
                       "malformed SA_POLL");
    }
    uint32_t n     = a->cfg.clients_per_round;
    uint32_t retry = 0;
    size_t   cnt   = 0;
    if (p.want == FRI_T_SA_PARAMS) {
        fri_agg_task t;
        // The member's task again (idempotent, not a new check-in).
        rv = fri_agg_task_again(a, now_ms, pk, &t);
        if (rv == FR_OK && (!t.has_task || t.round != p.round_id)) {
            rv = FR_ELATE;
        }
        if (rv != FR_OK) {
            return put_err(out, cap, len, rv, FRI_T_SA_POLL, p.round_id, 0,
                           why(rv));
        }
        if (t.sa_n == 0) {
            // The cohort is still filling: its size, graph and threshold
            // are set when it closes.
            return put_wait(out, cap, len, p.want, p.round_id,
                            sa_retry_ms(a));
        }
        fri_sa_params sp;
        memset(&sp, 0, sizeof(sp));
        sp.round_id  = t.round;
        sp.index     = t.sa_index;
        sp.n         = t.sa_n;
        sp.degree    = t.sa_degree;
        sp.threshold = t.sa_threshold;
        sp.frac_bits = t.sa_frac_bits;
        sp.clip      = t.sa_clip;
        sp.dim       = t.sa_dim;
        memcpy(sp.graph_seed, t.sa_graph_seed, 32);
        sp.noise_sd   = t.sa_noise_sd;
        sp.user_norm  = t.sa_user_norm;
        sp.residual   = t.sa_residual;
        sp.rating_abs = t.sa_rating_abs;
        if (a->cfg.stats_latest) {
            uint32_t wait = 0;
            sp.applied_round = fri_agg_sa_applied_round(a, pk, &wait);
            if (wait > 0) {
                return put_wait(out, cap, len, p.want, p.round_id, wait);
            }
        }
        return fri_sa_params_encode(out, cap, len, &sp);
    }
    if (p.want == FRI_T_UPDATE) {
        // Latest statistics: was the member's masked delta applied?
        rv    = fri_agg_sa_outcome(a, pk, p.round_id, &retry);
        *last = retry == 0; // answered: the member is done
        if (rv == FR_OK && retry == 0) {
            return put_ack(out, cap, len, FRI_T_UPDATE, p.round_id);
        }
        if (rv != FR_OK) {
            return put_err(out, cap, len, rv, FRI_T_SA_POLL, p.round_id, 0,
                           rv == FR_ELATE ? "the round did not apply this "
                                            "member's statistics"
                                          : why(rv));
        }
    } else if (p.want == FRI_T_SA_ROSTER) {
        // Counted first (no buffers): a poll before the phase is a cheap
        // WAIT, and the buffers are the member's neighbourhood, not the
        // cohort's size.
        rv = fri_agg_sa_roster(a, now_ms, pk, p.round_id, NULL, NULL, NULL,
                               0, &cnt, &retry);
        uint32_t *idx = NULL;
        uint8_t  *rec = NULL, *ids = NULL, *adv = NULL;
        if (rv == FR_ENOSPC && retry == 0) {
            size_t c = cnt;
            idx = malloc(c * sizeof(uint32_t));
            rec = malloc(c * FRI_SA_REC_ROSTER);
            ids = malloc(c * 32);
            adv = malloc(c * FRI_SA_ADVERTBYTES);
            rv  = idx == NULL || rec == NULL || ids == NULL || adv == NULL
                      ? FR_ENOMEM
                      : fri_agg_sa_roster(a, now_ms, pk, p.round_id, idx, ids,
                                          adv, c, &cnt, &retry);
            if (rv == FR_ENOSPC) { // changed in between: ask again
                rv    = FR_OK;
                retry = sa_retry_ms(a);
            }
        }
        if (rv == FR_OK && retry == 0) {
            for (size_t j = 0; j < cnt; j++) {
                memcpy(rec + j * FRI_SA_REC_ROSTER, ids + j * 32, 32);
                memcpy(rec + j * FRI_SA_REC_ROSTER + 32,
                       adv + j * FRI_SA_ADVERTBYTES, FRI_SA_ADVERTBYTES);
            }
            fri_sa_list l = {.round_id = p.round_id,
                             .count    = (uint32_t) cnt,
                             .ids      = idx,
                             .recs     = rec};
            rv = fri_sa_list_encode(out, cap, len, FRI_T_SA_ROSTER, &l);
        }
        free(idx);
        free(rec);
        free(ids);
        free(adv);
    } else if (p.want == FRI_T_SA_SHARES_FWD) {
        rv = fri_agg_sa_inbox(a, now_ms, pk, p.round_id, NULL, NULL, 0, &cnt,
                              &retry);
        uint32_t *from = NULL;
        uint8_t  *sh   = NULL;
        if (rv == FR_ENOSPC && retry == 0) {
            size_t c = cnt;
            from = malloc(c * sizeof(uint32_t));
            sh   = malloc(c * FRI_SA_REC_SHARE);
            rv   = from == NULL || sh == NULL
                       ? FR_ENOMEM
                       : fri_agg_sa_inbox(a, now_ms, pk, p.round_id, from, sh,
                                          c, &cnt, &retry);
            if (rv == FR_ENOSPC) { // changed in between: ask again
                rv    = FR_OK;
                retry = sa_retry_ms(a);
            }
        }
        if (rv == FR_OK && retry == 0) {
            fri_sa_list l = {.round_id = p.round_id,
                             .count    = (uint32_t) cnt,
                             .ids      = from,
                             .recs     = sh};
            rv = fri_sa_list_encode(out, cap, len, FRI_T_SA_SHARES_FWD, &l);
        }
        free(from);
        free(sh);
    } else { // FRI_T_SA_UNMASK_REQ
        uint32_t *sv = malloc((size_t) n * sizeof(uint32_t) + 1);
        uint32_t *dr = malloc((size_t) n * sizeof(uint32_t) + 1);
        size_t    ns = 0, nd = 0;
        if (sv == NULL || dr == NULL) {
            rv = FR_ENOMEM;
        } else {
            rv = fri_agg_sa_unmask_req(a, now_ms, pk, p.round_id, sv, n, &ns,
                                       dr, n, &nd, &retry);
        }
        if (rv == FR_OK && retry == 0) {
            fri_sa_unmask_req q = {.round_id = p.round_id,
                                   .n_surv   = (uint32_t) ns,
                                   .n_drop   = (uint32_t) nd,
                                   .surv     = sv,
                                   .drop     = dr};
            rv = fri_sa_unmask_req_encode(out, cap, len, &q);
        }
        free(sv);
        free(dr);
    }
    if (rv == FR_OK && retry > 0) {
        return put_wait(out, cap, len, p.want, p.round_id, retry);
    }
    if (rv != FR_OK && rv != FR_ENOSPC) {
        return put_err(out, cap, len, rv, FRI_T_SA_POLL, p.round_id,
                       rv == FR_ENOMEM ? a->cfg.retry_after_ms : 0, why(rv));
    }
    return rv;
}

// The masked input: a dense FIXED UPDATE of n_items rows and 2 extra
// words, the layout of the task's sa_dim vector: rows of k + 1 words
// (GRAD) or of (k+1)(k+2)/2 + k + 1 words (ALS statistics, SPEC S1a;
// VBMF statistics deltas also carry the global block, S1b), or of
// k(k+1)/2 + k + 1 words and a k(k+1)/2-word tail block (iALS, S1c).
static fr_err
masked(fri_agg *a, uint64_t now_ms, const uint8_t *pk, const uint8_t *plain,
       size_t plain_len, uint8_t *out, size_t cap, size_t *len)
{
    fri_update u;
    fr_err     rv   = fri_update_decode(&u, plain, plain_len);
    int        vb   = a->cfg.algo == FRI_AGG_VBMF;
    int        als  = a->cfg.algo == FRI_AGG_ALS || vb;
    uint32_t   d    = als ? (uint32_t) (a->gram_len + a->d) : a->cfg.k + 1;
    uint8_t    kind = vb ? FRI_UPD_VB : als ? FRI_UPD_ALS : FRI_UPD_GRAD;
    // iALS: a gram_len-word Y^T Y block before (sum, count) (SPEC S1c).
    uint32_t   ne   = vb                ? (uint32_t) (a->d + a->gram_len + 4)
                      : a->cfg.implicit ? (uint32_t) a->gram_len + 2
                                        : 2;
    if (rv == FR_OK &&
        (u.kind != kind || u.vtype != FRI_VAL_FIXED ||
         u.layout != FRI_UPD_DENSE || u.k != a->cfg.k || u.width != d ||
         u.n_rows != fri_agg_n_items(a) || u.n_extra != ne)) {
        rv = FR_EPROTO;
    }
    if (rv != FR_OK) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
        return put_err(out, cap, len, rv, FRI_T_UPDATE, 0, 0,
                       "masked UPDATE does not match the task");
    }
    size_t    nr  = (size_t) u.n_rows * d;
    uint32_t *y   = malloc((nr + ne) * sizeof(uint32_t));
    if (y == NULL) {
        return put_err(out, cap, len, FR_ENOMEM, FRI_T_UPDATE, u.round_id,
                       a->cfg.retry_after_ms, "out of memory");
    }
    uint32_t item;
    for (uint32_t j = 0; j < u.n_rows; j++) {
        fri_update_get_row(&u, j, y + (size_t) j * d, &item);
    }
    fri_update_get_extra(&u, y + nr);
    rv = fri_agg_sa_masked(a, now_ms, pk, u.round_id, y, nr + ne);
    free(y);
    if (rv != FR_OK) {
        return put_err(out, cap, len, rv, FRI_T_UPDATE, u.round_id, 0,
                       why(rv));
    }
    return put_ack(out, cap, len, FRI_T_UPDATE, u.round_id);
}

static fr_err
list_req(fri_agg *a, uint64_t now_ms, const uint8_t *pk, uint16_t type,
         const uint8_t *plain, size_t plain_len, uint8_t *out, size_t cap,
         size_t *len, int *last)
{
    fri_sa_list l;
    fr_err      rv = fri_sa_list_decode(&l, type, plain, plain_len);
    if (rv != FR_OK) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
        return put_err(out, cap, len, rv, type, 0, 0, "malformed list");
    }
    size_t    rl  = fri_sa_rec_len(type);
    uint32_t *ids = malloc(((size_t) l.count + 1) * sizeof(uint32_t));
    uint8_t  *rec = malloc((size_t) l.count * rl + 1);
    if (ids == NULL || rec == NULL) {
        free(ids);
        free(rec);
        return put_err(out, cap, len, FR_ENOMEM, type, l.round_id,
                       a->cfg.retry_after_ms, "out of memory");
    }
    for (uint32_t j = 0; j < l.count; j++) {
        const uint8_t *p;
        fri_sa_list_get(&l, type, j, &ids[j], &p);
        memcpy(rec + (size_t) j * rl, p, rl);
    }
    if (type == FRI_T_SA_SHARES) {
        rv = fri_agg_sa_shares(a, now_ms, pk, l.round_id, ids, rec, l.count);
    } else {
        uint32_t *corr = NULL;
        if (l.n_corr > 0) {
            corr = malloc((size_t) l.n_corr * sizeof(uint32_t));
            if (corr == NULL) {
                rv = FR_ENOMEM;
            } else {
                fri_sa_list_corr_get(&l, corr);
            }
        }
        if (rv == FR_OK) {
            rv = fri_agg_sa_unmask(a, now_ms, pk, l.round_id, ids, rec,
                                   l.count, corr, l.n_corr);
        }
        free(corr);
        // Latest statistics: the member still asks for the outcome.
        *last = rv == FR_OK && !a->cfg.stats_latest;
    }
    sodium_memzero(rec, (size_t) l.count * rl);
    free(ids);
    free(rec);
    if (rv != FR_OK) {
        return put_err(out, cap, len, rv, type, l.round_id, 0, why(rv));
    }
    return put_ack(out, cap, len, type, l.round_id);
}

fr_err
fri_agg_sa_wire(fri_agg *a, uint64_t now_ms,
                const uint8_t pk[FRI_AGG_KEYBYTES], uint16_t type,
                const uint8_t *plain, size_t plain_len, uint8_t *out,
                size_t cap, size_t *len, int *last)
{
    *last = 0;
    switch (type) {
    case FRI_T_SA_ADVERT: {
        fri_sa_advert_msg m;
        fr_err            rv = fri_sa_advert_decode(&m, plain, plain_len);
        if (rv != FR_OK) {
            fri_agg_reject_count(a, FRI_REJ_MALFORMED);
            return put_err(out, cap, len, rv, type, 0, 0,
                           "malformed SA_ADVERT");
        }
        rv = fri_agg_sa_advert(a, now_ms, pk, m.round_id, m.id_pk, m.advert,
                               FRI_SA_ADVERTBYTES);
        if (rv != FR_OK) {
            return put_err(out, cap, len, rv, type, m.round_id, 0, why(rv));
        }
        return put_ack(out, cap, len, type, m.round_id);
    }
    case FRI_T_SA_SHARES:
    case FRI_T_SA_UNMASK:
        return list_req(a, now_ms, pk, type, plain, plain_len, out, cap, len,
                        last);
    case FRI_T_SA_POLL:
        return poll(a, now_ms, pk, plain, plain_len, out, cap, len, last);
    case FRI_T_UPDATE:
        return masked(a, now_ms, pk, plain, plain_len, out, cap, len);
    default:
        return put_err(out, cap, len, FR_EPROTO, type, 0, 0,
                       "unexpected message type");
    }
}

_Static_assert(FRI_AGG_SA_MAX_WIDTH == FRI_MAX_WIDTH, "masked row width");
