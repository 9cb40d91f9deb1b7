// The wire side of the aggregator: the request -> reply dispatch of
// fri_agg_handle() over the session table (session.c); decoded requests go
// to the round state (agg.c) and secure-aggregation ones to handle_sa.c.
//
// Flow per client check-in (each on its own secure session):
//   HELLO     -> WELCOME (plain; creates the session)
//   CHECKIN   -> TASK (RUN or NONE + retry_after; NONE ends the session)
//                With the MODEL_ONLY flag: TASK MODEL, and the session may
//                only fetch the model (a reader: no cohort, no update).
//   GET_MODEL -> MODEL (the round's frame, signed once, sealed per session)
//   UPDATE    -> ACK, or ERROR with FR_ELATE/FR_EDUP/FR_EDENIED/FR_EPROTO
//                (either ends the session)
// Refusals before a session exists, or for frames that do not open, are
// plain ERROR frames; the rest are sealed.
#include "agg_int.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "channel.h"
#include "counters.h"
#include "frame.h"
#include "handle_sa.h"
#include "keys.h"
#include "linalg.h"
#include "msg.h"
#include "msg_edge.h"
#include "rounds.h"
#include "session.h"
#include "snap.h"
#include "vbmf.h"
#include "wire.h"

size_t
fri_agg_reply_bound(const fri_agg *a)
{
    const uint32_t ni = fri_agg_n_items(a);
    size_t m = a->vb != NULL ? fri_model_vb_size(FRI_MENC_F32, a->cfg.k, ni)
                             : fri_model_size(FRI_MENC_F32, a->cfg.k, ni);
    size_t e = fri_error_size(FRI_MAX_ERRTEXT);
    size_t b = m > e ? m : e;
    size_t s = fri_agg_sa_reply_bound(a);
    b        = s > b ? s : b;
    if (b < FRI_WELCOME_CRED_LEN) {
        b = FRI_WELCOME_CRED_LEN;
    }
    return b + FRI_SEAL_HEADROOM + FRI_SEAL_OVERHEAD + 64;
}

// ---- replies --------------------------------------------------------------

typedef struct reply {
    uint8_t *buf;
    size_t   cap;
    size_t   len;
} reply;

// Seals the plen plaintext bytes an encoder wrote at
// r->buf + FRI_SEAL_HEADROOM into r (in place), unless encoding failed.
static fr_err
seal_if_ok(reply *r, fri_session *s, fr_err rv, size_t plen)
{
    if (rv == FR_OK) {
        rv = fri_seal(s, r->buf, r->cap, plen, &r->len);
    }
    return rv;
}

// ERROR frame, sealed with s when s != NULL.
static fr_err
put_error(reply *r, fri_session *s, fr_err code, uint16_t of_type,
          uint64_t round, uint32_t retry_ms, const char *text)
{
    fri_error e;
    memset(&e, 0, sizeof(e));
    e.code           = (uint32_t) code;
    e.of_type        = of_type;
    e.round_id       = round;
    e.retry_after_ms = retry_ms;
    e.text           = text;
    size_t tl        = strlen(text);
    e.text_len = (uint16_t) (tl > FRI_MAX_ERRTEXT ? FRI_MAX_ERRTEXT : tl);
    if (s == NULL) {
        return fri_error_encode(r->buf, r->cap, &r->len, &e);
    }
    if (r->cap < FRI_SEAL_HEADROOM) {
        return FR_ENOSPC;
    }
    size_t plen = 0;
    fr_err rv   = fri_error_encode(r->buf + FRI_SEAL_HEADROOM,
                                   r->cap - FRI_SEAL_HEADROOM, &plen, &e);
    return seal_if_ok(r, s, rv, plen);
}

static fr_err
map_reject(fr_err e, fri_agg_reject *why)
{
    switch (e) {
    case FR_ELATE:
        *why = FRI_REJ_LATE;
        break;
    case FR_EDUP:
        *why = FRI_REJ_DUP;
        break;
    case FR_ESTALE:
        *why = FRI_REJ_STALE;
        break;
    case FR_ERESYNC:
        *why = FRI_REJ_RESYNC;
        break;
    case FR_EDENIED:
        *why = FRI_REJ_NOT_MEMBER;
        break;
    case FR_ESTATE:
        *why = FRI_REJ_STATE;
        break;
    default:
        *why = FRI_REJ_MALFORMED;
        break;
    }
    return e;
}

// The algorithm and penalties of a task (RUN or MODEL): what a device
// needs to fit its user vector against the served model.
static void
task_fit_fields(const fri_agg *a, fri_task *t)
{
    if (a->cfg.algo == FRI_AGG_GRAD) {
        t->algo        = FRI_ALGO_GRAD;
        t->update_kind = FRI_UPD_GRAD;
    } else if (a->cfg.algo == FRI_AGG_VBMF) {
        t->algo        = FRI_ALGO_VBMF;
        t->update_kind = FRI_UPD_VB;
    } else {
        t->algo        = a->cfg.implicit ? FRI_ALGO_IALS : FRI_ALGO_ALS;
        t->update_kind = FRI_UPD_ALS;
    }
    t->k        = a->cfg.k;
    t->reg      = a->cfg.reg;
    t->reg_bias = a->cfg.reg_bias;
    t->alpha    = a->cfg.alpha;
    t->weighted = (uint8_t) a->cfg.weighted;
    t->stats_delta = a->cfg.stats_latest ? 1 : 0;
}

// A MODEL_ONLY check-in: the device may fetch the latest published model
// and leaves. It never joins a cohort (no slot, no secure-aggregation
// index, no sampling draw), so it changes neither the round, its privacy
// accounting nor the check-in count.
static fr_err
on_model_read(fri_agg *a, fri_sess_entry *e, uint64_t held, reply *r, int *drop)
{
    if (!fri_agg_allowed(a, e->client)) {
        fri_agg_reject_count(a, FRI_REJ_DENIED);
        *drop = 1;
        return put_error(r, e->s, FR_EDENIED, FRI_T_CHECKIN, 0, 0,
                         "not enrolled");
    }
    fri_task t;
    memset(&t, 0, sizeof(t));
    fri_snap *s = fri_agg_snap_get(a);
    if (s == NULL || s->frame == NULL) {
        t.status         = FRI_TASK_NONE;
        t.retry_after_ms = a->cfg.retry_after_ms;
        *drop            = 1;
    } else {
        atomic_fetch_add(&a->ctr.model_reads, 1);
        t.status        = FRI_TASK_MODEL;
        t.round_id      = s->round;
        t.model_version = s->version;
        task_fit_fields(a, &t);
        e->reader     = 1;
        e->read_round = s->round;
        // A device that holds this model already sends nothing more
        // (0 means it holds none).
        *drop = held != 0 && held == s->version;
    }
    fri_snap_unref(s);
    size_t plen = 0;
    fr_err rv   = fri_task_encode(r->buf + FRI_SEAL_HEADROOM,
                                  r->cap - FRI_SEAL_HEADROOM, &plen, &t);
    return seal_if_ok(r, e->s, rv, plen);
}

static fr_err
on_checkin(fri_agg *a, fri_sess_entry *e, uint64_t now_ms, const uint8_t *plain,
           size_t plain_len, reply *r, int *drop)
{
    fri_checkin c;
    fr_err      rv = fri_checkin_decode(&c, plain, plain_len);
    if (rv != FR_OK) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
        *drop = 1;
        return put_error(r, e->s, rv, FRI_T_CHECKIN, 0, 0,
                         "malformed CHECKIN");
    }
    if (e->reader) {
        // One check-in per session.
        fri_agg_reject_count(a, FRI_REJ_STATE);
        *drop = 1;
        return put_error(r, e->s, FR_ESTATE, FRI_T_CHECKIN, 0, 0,
                         "session already checked in");
    }
    if (c.flags & FRI_CHECKIN_MODEL_ONLY) {
        return on_model_read(a, e, c.model_version, r, drop);
    }
    fri_agg_task at;
    rv = fri_agg_checkin(a, now_ms, e->client, &at);
    if (rv != FR_OK) {
        *drop = 1;
        return put_error(r, e->s, rv, FRI_T_CHECKIN, 0, 0, "not enrolled");
    }
    fri_task t;
    memset(&t, 0, sizeof(t));
    if (!at.has_task) {
        t.status         = FRI_TASK_NONE;
        t.retry_after_ms = at.retry_after_ms;
        *drop            = 1;
    } else {
        t.status = FRI_TASK_RUN;
        task_fit_fields(a, &t);
        t.round_id      = at.round;
        t.model_version = at.model_version;
        t.local_epochs  = 1;
        t.lr            = 0.0f;
        t.clip          = a->cfg.clip;
        t.deadline_ms   = at.ms_left;
        t.secagg        = at.secagg ? 1 : 0;
    }
    size_t plen = 0;
    rv = fri_task_encode(r->buf + FRI_SEAL_HEADROOM, r->cap - FRI_SEAL_HEADROOM,
                         &plen, &t);
    return seal_if_ok(r, e->s, rv, plen);
}

static fr_err
on_get_model(fri_agg *a, fri_sess_entry *e, const uint8_t *plain,
             size_t plain_len, reply *r, int *drop)
{
    fri_get_model g;
    fr_err        rv = fri_get_model_decode(&g, plain, plain_len);
    if (rv != FR_OK) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
        *drop = 1;
        return put_error(r, e->s, rv, FRI_T_GET_MODEL, 0, 0,
                         "malformed GET_MODEL");
    }
    fri_snap *s = fri_agg_snap_get(a);
    if (s == NULL || s->frame == NULL || s->round != g.round_id) {
        uint64_t cur = s != NULL ? s->round : 0;
        fri_snap_unref(s);
        fri_agg_reject_count(a, FRI_REJ_LATE);
        *drop = 1;
        return put_error(r, e->s, FR_ELATE, FRI_T_GET_MODEL, cur,
                         a->cfg.retry_after_ms, "round is not open");
    }
    if (e->reader) {
        // A reader fetches the model it was told about, then leaves.
        *drop = 1;
        if (g.round_id != e->read_round) {
            fri_snap_unref(s);
            fri_agg_reject_count(a, FRI_REJ_STATE);
            return put_error(r, e->s, FR_ESTATE, FRI_T_GET_MODEL,
                             g.round_id, 0, "not the model of the task");
        }
    } else if (!fri_agg_is_member(a, e->client, g.round_id)) {
        fri_snap_unref(s);
        fri_agg_reject_count(a, FRI_REJ_NOT_MEMBER);
        *drop = 1;
        return put_error(r, e->s, FR_EDENIED, FRI_T_GET_MODEL, g.round_id,
                         a->cfg.retry_after_ms, "not in this round's cohort");
    }
    const uint8_t *f  = NULL;
    size_t         fl = 0;
    fri_snap_pick(s, g.accept, &f, &fl);
    rv = fri_seal_copy(e->s, r->buf, r->cap, &r->len, f, fl);
    fri_snap_unref(s);
    return rv;
}

static fr_err
on_update(fri_agg *a, fri_sess_entry *e, uint64_t now_ms, const uint8_t *plain,
          size_t plain_len, reply *r, int *drop)
{
    *drop = 1; // an UPDATE ends the check-in whatever the outcome
    fri_update u;
    fr_err     rv = fri_update_decode(&u, plain, plain_len);
    const uint32_t d = a->cfg.k + 1;
    const char    *why = "malformed UPDATE";
    if (rv == FR_OK) {
        uint8_t kind = a->cfg.algo == FRI_AGG_GRAD   ? FRI_UPD_GRAD
                       : a->cfg.algo == FRI_AGG_VBMF ? FRI_UPD_VB
                                                     : FRI_UPD_ALS;
        if (u.kind != kind || u.vtype != FRI_VAL_F32 || u.k != a->cfg.k ||
            u.width != d ||
            (u.layout == FRI_UPD_DENSE && u.n_rows != fri_agg_n_items(a))) {
            rv  = FR_EPROTO;
            why = "UPDATE does not match the task";
        } else if (a->cfg.algo == FRI_AGG_ALS &&
                   u.n_extra != fri_packed_len(d) + 2) {
            rv  = FR_EPROTO;
            why = "UPDATE statistics have the wrong size";
        }
    }
    if (rv != FR_OK) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
        return put_error(r, e->s, rv, FRI_T_UPDATE, 0, 0, why);
    }
    uint32_t *items = malloc(((size_t) u.n_rows + 1) * sizeof(uint32_t));
    float    *rows  = malloc(((size_t) u.n_rows * d + 1) * sizeof(float));
    float    *extra = malloc(((size_t) u.n_extra + 1) * sizeof(float));
    if (items == NULL || rows == NULL || extra == NULL) {
        free(items);
        free(rows);
        free(extra);
        return put_error(r, e->s, FR_ENOMEM, FRI_T_UPDATE, u.round_id,
                         a->cfg.retry_after_ms, "out of memory");
    }
    for (uint32_t j = 0; j < u.n_rows; j++) {
        fri_update_get_row(&u, j, rows + (size_t) j * d, &items[j]);
    }
    fri_update_get_extra(&u, extra);
    fri_agg_update au;
    memset(&au, 0, sizeof(au));
    au.round    = u.round_id;
    au.n        = u.n_rows;
    au.items    = items;
    au.rows     = rows;
    au.rows_len = (size_t) u.n_rows * d;
    au.weight   = u.weight;
    if (a->cfg.algo == FRI_AGG_ALS || a->cfg.algo == FRI_AGG_VBMF) {
        au.gram     = extra;
        au.gram_len = a->gram_len;
    }
    if (a->cfg.implicit) {
        // The wire carries the Gram of [p_u; 1] for both losses (R15);
        // iALS needs its top-left k x k block, p_u p_u^T. Row r of that
        // block is contiguous in the packed (k+1) layout, so compact it
        // in place (destinations never pass their sources).
        for (uint32_t row = 0; row < a->cfg.k; row++) {
            memmove(extra + fri_packed_index(a->cfg.k, row, row),
                    extra + fri_packed_index(d, row, row),
                    (size_t) (a->cfg.k - row) * sizeof(float));
        }
    }
    if (a->cfg.algo == FRI_AGG_VBMF) {
        // [Gram | global block | sum of ratings, count] (R32).
        au.vb     = extra + a->gram_len;
        au.vb_len = u.n_extra - a->gram_len - 2;
    }
    if (u.n_extra >= 2) {
        // The last two extras: sum of ratings, number of ratings.
        au.sum_ratings = extra[u.n_extra - 2];
        au.count       = extra[u.n_extra - 1];
    }
    rv = fri_agg_submit(a, now_ms, e->client, &au);
    free(items);
    free(rows);
    free(extra);
    if (rv != FR_OK) {
        fri_agg_reject why_r;
        (void) map_reject(rv, &why_r); // counted by fri_agg_submit
        // A stale report is worth redoing on the current model at once.
        return put_error(r, e->s, rv, FRI_T_UPDATE, u.round_id,
                         rv == FR_ENOMEM || rv == FR_ESTALE
                             ? a->cfg.retry_after_ms
                             : 0,
                         rv == FR_ESTALE
                             ? "stale: computed on a model more than "
                               "max-staleness versions old; check in again"
                             : fri_agg_reject_name(why_r));
    }
    fri_ack ack = {.of_type = FRI_T_UPDATE, .round_id = u.round_id};
    size_t  plen = 0;
    rv = fri_ack_encode(r->buf + FRI_SEAL_HEADROOM, r->cap - FRI_SEAL_HEADROOM,
                        &plen, &ack);
    return seal_if_ok(r, e->s, rv, plen);
}

// Root: an edge's round sums (SPEC.md §10). The edge's key is its
// identity; membership of the round is checked by fri_agg_submit_sums.
static fr_err
on_edge_sums(fri_agg *a, fri_sess_entry *e, uint64_t now_ms,
             const uint8_t *plain, size_t plain_len, reply *r, int *drop)
{
    *drop = 1; // one EDGE_SUMS per session, like an UPDATE
    fri_edge_sums_msg m;
    fr_err            rv = fri_edge_sums_decode(&m, plain, plain_len);
    uint8_t algo = a->cfg.algo == FRI_AGG_GRAD   ? FRI_EDGE_GRAD
                   : a->cfg.algo == FRI_AGG_VBMF ? FRI_EDGE_VBMF
                   : a->cfg.implicit             ? FRI_EDGE_IALS
                                                 : FRI_EDGE_ALS;
    if (rv == FR_OK && (m.algo != algo || m.k != a->cfg.k ||
                        m.n_items != fri_agg_n_items(a))) {
        rv = FR_EPROTO;
    }
    if (rv != FR_OK) {
        fri_agg_reject_count(a, rv == FR_ETOOBIG ? FRI_REJ_TOO_BIG
                                                 : FRI_REJ_MALFORMED);
        return put_error(r, e->s, rv, FRI_T_EDGE_SUMS, 0, 0,
                         "malformed EDGE_SUMS or not this model's");
    }
    fri_agg_sums s;
    memset(&s, 0, sizeof(s));
    s.round       = m.round_id;
    s.n_devices   = m.n_devices;
    s.width       = m.width;
    s.n_rows      = m.n_rows;
    s.n_glob      = m.n_glob;
    s.sum_ratings = m.sum_ratings;
    s.count       = m.count;
    s.weight      = m.weight;
    s.items = malloc(((size_t) m.n_rows + 1) * sizeof(uint32_t));
    s.rows  = malloc(((size_t) m.n_rows * m.width + 1) * sizeof(double));
    s.glob  = malloc(((size_t) m.n_glob + 1) * sizeof(double));
    if (s.items == NULL || s.rows == NULL || s.glob == NULL) {
        fri_agg_sums_free(&s);
        return put_error(r, e->s, FR_ENOMEM, FRI_T_EDGE_SUMS, m.round_id,
                         a->cfg.retry_after_ms, "out of memory");
    }
    fri_edge_sums_get(&m, s.items, s.rows, s.glob);
    rv = fri_agg_submit_sums(a, now_ms, e->client, &s);
    fri_agg_sums_free(&s);
    if (rv != FR_OK) {
        fri_agg_reject why_r;
        (void) map_reject(rv, &why_r); // counted by fri_agg_submit_sums
        return put_error(r, e->s, rv, FRI_T_EDGE_SUMS, m.round_id, 0,
                         rv == FR_EPROTO || rv == FR_ETOOBIG
                             ? "sums outside the bounds of their devices"
                             : fri_agg_reject_name(why_r));
    }
    fri_ack ack  = {.of_type = FRI_T_EDGE_SUMS, .round_id = m.round_id};
    size_t  plen = 0;
    rv = fri_ack_encode(r->buf + FRI_SEAL_HEADROOM, r->cap - FRI_SEAL_HEADROOM,
                        &plen, &ack);
    return seal_if_ok(r, e->s, rv, plen);
}

// Secure aggregation requests (handle_sa.c), sealed here.
static fr_err
on_sa(fri_agg *a, fri_sess_entry *e, uint64_t now_ms, uint16_t type,
      const uint8_t *plain, size_t plain_len, reply *r, int *drop)
{
    size_t plen = 0;
    fr_err rv   = fri_agg_sa_wire(a, now_ms, e->client, type, plain,
                                  plain_len, r->buf + FRI_SEAL_HEADROOM,
                                  r->cap - FRI_SEAL_HEADROOM, &plen, drop);
    return seal_if_ok(r, e->s, rv, plen);
}

static fr_err
on_hello(fri_agg *a, uint64_t now_ms, const uint8_t *req, size_t req_len,
         reply *r)
{
    const uint8_t *b = NULL;
    fr_err rv = fri_body_fixed(req, req_len, FRI_T_HELLO, FRI_HELLO_BODY, &b);
    if (rv == FR_OK && !fri_agg_allowed(a, b + 32)) {
        rv = FR_EDENIED; // before any key agreement: refusing is cheap
    }
    fri_session *s = NULL;
    if (rv == FR_OK) {
        rv = fri_hs_server_accept_cred(
            &s, r->buf, r->cap, &r->len, &a->id, NULL,
            FRI_CAP_ALS | FRI_CAP_GRAD | FRI_CAP_IALS | FRI_CAP_SPARSE |
                FRI_CAP_VBMF | FRI_CAP_CLEAR_MASKED | FRI_CAP_SA_CORRECT,
            req, req_len, a->cfg.has_edge_cred ? a->cfg.edge_cred : NULL);
    }
    if (rv != FR_OK) {
        fri_agg_reject_count(a, rv == FR_EDENIED ? FRI_REJ_DENIED
                                : rv == FR_ECRYPTO ? FRI_REJ_CRYPTO
                                                   : FRI_REJ_MALFORMED);
        if (rv == FR_ENOSPC) {
            return rv;
        }
        return put_error(r, NULL, rv, FRI_T_HELLO, 0, 0,
                         rv == FR_EDENIED ? "client key not enrolled"
                                          : "bad HELLO");
    }
    fri_sess_entry *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        fri_session_destroy(s);
        return put_error(r, NULL, FR_ENOMEM, FRI_T_HELLO, 0,
                         a->cfg.retry_after_ms, "out of memory");
    }
    e->s = s;
    memcpy(e->sid, fri_session_id(s), FRI_SID_BYTES);
    memcpy(e->client, fri_session_peer(s), FRI_PKBYTES);
    e->last_ms = now_ms;
    const char *why = fri_sess_add(a, now_ms, e);
    if (why != NULL) {
        fri_session_destroy(e->s);
        free(e);
        fri_agg_reject_count(a, FRI_REJ_SESSION_CAP);
        return put_error(r, NULL, FR_ETOOBIG, FRI_T_HELLO, 0,
                         a->cfg.retry_after_ms, why);
    }
    atomic_fetch_add(&a->ctr.clients_seen, 1);
    return FR_OK;
}

// mut: req itself when the caller lets it be opened in place, else NULL
// (the request is then copied, after the session lookup).
static fr_err
dispatch(fri_agg *a, uint64_t now_ms, const uint8_t *req, uint8_t *mut,
         size_t req_len, reply *r)
{
    if (req_len > a->cfg.max_frame) {
        fri_agg_reject_count(a, FRI_REJ_TOO_BIG);
        return put_error(r, NULL, FR_ETOOBIG, 0, 0, 0, "frame too large");
    }
    fri_hdr h;
    fr_err  rv = fri_frame_check(&h, req, req_len);
    if (rv != FR_OK) {
        fri_agg_reject_count(a, rv == FR_ETOOBIG ? FRI_REJ_TOO_BIG
                                                 : FRI_REJ_MALFORMED);
        return put_error(r, NULL, rv, 0, 0, 0, "malformed frame");
    }
    if (!(h.flags & FRI_F_SEALED)) {
        if (h.type == FRI_T_HELLO) {
            return on_hello(a, now_ms, req, req_len, r);
        }
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
        return put_error(r, NULL, FR_EPROTO, h.type, 0, 0,
                         "expected HELLO or a sealed frame");
    }
    uint8_t sid[FRI_SID_BYTES];
    rv = fri_frame_sid(sid, req, req_len);
    if (rv != FR_OK) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
        return put_error(r, NULL, rv, h.type, 0, 0, "malformed sealed frame");
    }
    int         busy = 0;
    fri_sess_entry *e    = fri_sess_acquire(a, sid, &busy);
    if (e == NULL) {
        // Unknown (expired, or the aggregator restarted): start over.
        fri_agg_reject_count(a, busy ? FRI_REJ_STATE : FRI_REJ_NO_SESSION);
        return put_error(r, NULL, busy ? FR_ESTATE : FR_ECLOSED, h.type, 0,
                         a->cfg.retry_after_ms / 4 + 1,
                         busy ? "session busy" : "unknown session");
    }
    // fri_open works in place; a const request buffer is the caller's.
    uint8_t *copy = NULL;
    if (mut == NULL) {
        copy = malloc(req_len);
        if (copy == NULL) {
            fri_sess_release(a, e, now_ms, 0, 0);
            return put_error(r, NULL, FR_ENOMEM, h.type, 0,
                             a->cfg.retry_after_ms, "out of memory");
        }
        memcpy(copy, req, req_len);
        mut = copy;
    }
    const uint8_t *plain     = NULL;
    size_t         plain_len = 0;
    rv = fri_open(e->s, mut, req_len, &plain, &plain_len);
    int drop   = 0;
    int authed = rv == FR_OK;
    if (authed && (h.flags & FRI_F_CLEAR) != 0) {
        atomic_fetch_add(&a->ctr.clear_frames, 1);
    }
    if (rv != FR_OK) {
        fri_agg_reject_count(a, rv == FR_EREPLAY   ? FRI_REJ_REPLAY
                                : rv == FR_ECRYPTO ? FRI_REJ_CRYPTO
                                                   : FRI_REJ_MALFORMED);
        // The session stays: the genuine client may still use it.
        rv = put_error(r, NULL, rv, h.type, 0, 0, "frame does not open");
    } else {
        fri_hdr ph;
        rv = fri_hdr_get(&ph, plain, plain_len);
        if (rv != FR_OK) {
            fri_agg_reject_count(a, FRI_REJ_MALFORMED);
            drop = 1;
            rv   = put_error(r, e->s, rv, 0, 0, 0, "malformed inner frame");
        } else if (ph.type == FRI_T_CHECKIN) {
            rv = on_checkin(a, e, now_ms, plain, plain_len, r, &drop);
        } else if (ph.type == FRI_T_GET_MODEL) {
            rv = on_get_model(a, e, plain, plain_len, r, &drop);
        } else if (e->reader) {
            // A model-only session contributes nothing.
            fri_agg_reject_count(a, FRI_REJ_STATE);
            drop = 1;
            rv   = put_error(r, e->s, FR_EDENIED, ph.type, 0, 0,
                             "model-only session");
        } else if (a->sa != NULL && fri_agg_sa_wire_type(ph.type)) {
            rv = on_sa(a, e, now_ms, ph.type, plain, plain_len, r, &drop);
        } else if (ph.type == FRI_T_UPDATE) {
            rv = on_update(a, e, now_ms, plain, plain_len, r, &drop);
        } else if (ph.type == FRI_T_EDGE_SUMS && a->cfg.root_max_devices > 0) {
            rv = on_edge_sums(a, e, now_ms, plain, plain_len, r, &drop);
        } else {
            fri_agg_reject_count(a, FRI_REJ_MALFORMED);
            drop = 1;
            rv   = put_error(r, e->s, FR_EPROTO, ph.type, 0, 0,
                             "unexpected message type");
        }
    }
    free(copy);
    fri_sess_release(a, e, now_ms, authed, drop);
    return rv;
}

static fr_err
handle(fri_agg *a, uint64_t now_ms, const uint8_t *req, uint8_t *mut,
       size_t req_len, uint8_t *reply_buf, size_t reply_cap,
       size_t *reply_len)
{
    *reply_len = 0;
    if (a == NULL || (req == NULL && req_len > 0) || reply_buf == NULL) {
        return FR_EINVAL;
    }
    if (reply_cap < fri_agg_reply_bound(a)) {
        return FR_ENOSPC;
    }
    atomic_fetch_add(&a->ctr.bytes_in, req_len);
    reply  r  = {.buf = reply_buf, .cap = reply_cap, .len = 0};
    fr_err rv = dispatch(a, now_ms, req, mut, req_len, &r);
    if (rv != FR_OK) {
        return rv;
    }
    *reply_len = r.len;
    atomic_fetch_add(&a->ctr.bytes_out, r.len);
    return FR_OK;
}

fr_err
fri_agg_handle(fri_agg *a, uint64_t now_ms, const uint8_t *req,
               size_t req_len, uint8_t *reply_buf, size_t reply_cap,
               size_t *reply_len)
{
    return handle(a, now_ms, req, NULL, req_len, reply_buf, reply_cap,
                  reply_len);
}

fr_err
fri_agg_handle_inplace(fri_agg *a, uint64_t now_ms, uint8_t *req,
                       size_t req_len, uint8_t *reply_buf, size_t reply_cap,
                       size_t *reply_len)
{
    return handle(a, now_ms, req, req, req_len, reply_buf, reply_cap,
                  reply_len);
}
