// The check-in state machine: bytes in, bytes out, no I/O.
//
//   poll  HELLO      -> receive WELCOME  (handshake, session keys)
//   poll  CHECKIN    -> receive TASK     (RUN, or NONE + retry_after)
//   poll  GET_MODEL  -> receive MODEL    (only if the model of the task is
//                                         neither in use nor cached)
//   poll  UPDATE     -> receive ACK
// A model-only check-in (fr_client_model_begin) sends CHECKIN with the
// MODEL_ONLY flag, gets TASK MODEL, fetches the model if it lacks it and
// ends as FR_CHECKIN_MODEL_ONLY without an update.
// After HELLO every frame is sealed. An ERROR reply at any step, or any
// failure, ends the check-in as FR_CHECKIN_FAILED; the session (and its
// keys) is wiped at the end of every check-in, so the idle handle keeps
// nothing of it.
#include <math.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "channel.h"
#include "client_fit.h"
#include "client_internal.h"
#include "checkin_sa.h"
#include "msg.h"
#include "msg_secagg.h"

// Capabilities this client implements.
#define CLIENT_CAPS                                                         \
    (FRI_CAP_ALS | FRI_CAP_GRAD | FRI_CAP_IALS | FRI_CAP_FP16 |             \
     FRI_CAP_INT8 | FRI_CAP_SPARSE | FRI_CAP_VBMF)

typedef enum step {
    SEND_HELLO,
    WAIT_WELCOME,
    SEND_CHECKIN,
    WAIT_TASK,
    SEND_GET_MODEL,
    WAIT_MODEL,
    SEND_UPDATE,
    WAIT_ACK,
    SEND_SA, // secure aggregation exchange (checkin_sa.c)
    WAIT_SA,
    DONE,
} step;

struct fri_session {
    step           step;
    fri_hs_client *hs;
    fri_session   *sess;
    fri_task       task;
    int            have_task;
    fri_update_buf upd; // computed once, kept until sent
    int            have_upd;
    uint64_t       started_ms;
    struct fri_sa_client *sa; // secure aggregation state, or NULL
    int                   sa_paused; // a SA_WAIT arrived: poll idles once
    int                   model_only; // fetch the model, send no update
};

void
fri_session_free(fr_client *c)
{
    struct fri_session *s = c->session;
    if (s == NULL) {
        return;
    }
    fri_hs_client_destroy(s->hs);
    fri_session_destroy(s->sess);
    if (s->have_upd) {
        fri_update_buf_free(c, &s->upd);
    }
    fri_sa_client_free(c, s->sa);
    fri_client_free_wipe(c, s, sizeof *s);
    c->session = NULL;
}

// Ends the check-in with a status; frees the session.
static void
finish(fr_client *c, fr_checkin_status st)
{
    c->info.status = st;
    fri_session_free(c);
}

static fr_err
fail(fr_client *c, fr_err err, const char *what)
{
    if (err == FR_OK) {
        err = FR_EINTERNAL;
    }
    fri_client_fail(c, err, "check-in: %s: %s", what, fr_strerror(err));
    finish(c, FR_CHECKIN_FAILED);
    return err;
}

static fri_fit_algo
fit_algo(const fri_task *t)
{
    if (t->update_kind == FRI_UPD_DELTA) {
        return FRI_FIT_DELTA;
    }
    switch (t->algo) {
    case FRI_ALGO_ALS:
        return FRI_FIT_ALS;
    case FRI_ALGO_IALS:
        return FRI_FIT_IALS;
    case FRI_ALGO_VBMF:
        return FRI_FIT_VBMF;
    default:
        return FRI_FIT_GRAD;
    }
}

static size_t
update_bound(const fr_client *c, uint32_t k, size_t n)
{
    if (n > FRI_MAX_ITEMS) {
        n = FRI_MAX_ITEMS;
    }
    uint32_t ne = fri_update_vb_extra(k); // the longest extra (VB)
    size_t   sz = fri_update_size(FRI_UPD_SPARSE, k + 1, (uint32_t) n,
                                  ne > 0 ? ne
                                         : (uint32_t) ((k + 1) * (k + 2) / 2 + 2));
    (void) c;
    return sz == 0 ? 0 : sz + FRI_SEAL_OVERHEAD;
}

size_t
fr_client_request_bound(const fr_client *c)
{
    if (c == NULL) {
        return 0;
    }
    uint32_t k = c->max_k;
    if (c->session != NULL && c->session->have_task) {
        k = c->session->task.k;
    } else if (c->model != NULL) {
        k = c->model->k;
    }
    if (k > FRI_MAX_K) {
        k = FRI_MAX_K;
    }
    size_t b   = FRI_HELLO_LEN;
    size_t fix = FRI_HDR_LEN + FRI_CHECKIN_BODY + FRI_SEAL_OVERHEAD;
    if (fix > b) {
        b = fix;
    }
    fix = FRI_HDR_LEN + FRI_GET_MODEL_BODY + FRI_SEAL_OVERHEAD;
    if (fix > b) {
        b = fix;
    }
    // Pseudo-items add up to ceil(rho * n) rows (fri_pseudo_count rounds).
    size_t rows = c->n_inter;
    if (c->last != NULL && c->last->n > rows) {
        rows = c->last->n; // a retraction of a larger contribution
    }
    if (c->pseudo_rho > 0.0f) {
        double extra = ceil((double) c->pseudo_rho * (double) c->n_inter);
        rows += extra < (double) FRI_MAX_ITEMS ? (size_t) extra
                                               : (size_t) FRI_MAX_ITEMS;
    }
    size_t u = update_bound(c, k, rows);
    if (c->session != NULL && c->session->have_task &&
        c->session->task.secagg) {
        uint32_t ni = c->model != NULL ? c->model->n_items : c->max_items;
        size_t   sa = fri_sa_client_bound(c->session->sa, k, ni,
                                          c->session->task.algo ==
                                              FRI_ALGO_ALS,
                                          c->session->task.algo ==
                                              FRI_ALGO_VBMF,
                                          c->session->task.algo ==
                                              FRI_ALGO_IALS) +
                    FRI_SEAL_OVERHEAD;
        u = sa > u ? sa : u;
    }
    return u > b ? u : b;
}

// Room for fields a newer protocol minor appends to a reply (SPEC.md:
// older decoders skip the tail).
#define REPLY_TAIL_SLACK 4096

static size_t
max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

size_t
fri_client_reply_bound(const fr_client *c)
{
    // Before the handshake the peer is not authenticated yet: a WELCOME or
    // an unsealed ERROR, nothing larger.
    size_t pre = max_size(FRI_WELCOME_CRED_LEN,
                          fri_error_size(FRI_MAX_ERRTEXT));
    if (c->session == NULL || c->session->step <= WAIT_WELCOME) {
        return pre + REPLY_TAIL_SLACK;
    }
    // After it: the largest sealed reply the device's bounds allow. A
    // model above max_items x max_k is refused anyway (recv_model), so
    // there is no point in receiving one.
    size_t   b = max_size(pre, FRI_HDR_LEN + FRI_TASK_BODY);
    uint32_t k = c->max_k < FRI_MAX_K ? c->max_k : FRI_MAX_K;
    uint32_t n = c->max_items < FRI_MAX_ITEMS ? c->max_items : FRI_MAX_ITEMS;
    size_t   m = max_size(fri_model_size(FRI_MENC_F32, k, n),
                          fri_model_vb_size(FRI_MENC_F32, k, n));
    // 0: beyond the protocol's frame limit, which then is the bound.
    b = max_size(b, m == 0 ? FRI_MAX_FRAME : m);
    // Secure aggregation: lists of up to max_sa_members records.
    static const uint16_t lists[] = {FRI_T_SA_ROSTER, FRI_T_SA_SHARES_FWD};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        b = max_size(b, fri_sa_list_size(lists[i], c->max_sa_members));
    }
    b = max_size(b, fri_sa_unmask_req_size(c->max_sa_members, 0));
    b = max_size(b, FRI_HDR_LEN + FRI_SA_PARAMS_BODY);
    if (b > FRI_MAX_FRAME) {
        b = FRI_MAX_FRAME;
    }
    return b + FRI_SEAL_OVERHEAD + REPLY_TAIL_SLACK;
}

static fr_err checkin_start(fr_client *c, uint64_t now_ms, int model_only);

fr_err
fr_client_checkin_begin(fr_client *c, uint64_t now_ms)
{
    return checkin_start(c, now_ms, 0);
}

fr_err
fr_client_model_begin(fr_client *c, uint64_t now_ms)
{
    return checkin_start(c, now_ms, 1);
}

static fr_err
checkin_start(fr_client *c, uint64_t now_ms, int model_only)
{
    if (c == NULL) {
        return FR_EINVAL;
    }
    if (c->session != NULL) {
        // Abandon a check-in left half-way (e.g. the transport failed).
        fri_session_free(c);
    }
    struct fri_session *s = fri_client_calloc(c, 1, sizeof *s);
    if (s == NULL) {
        return fri_client_fail(c, FR_ENOMEM, "out of memory (check-in)");
    }
    s->step         = SEND_HELLO;
    s->started_ms   = now_ms;
    s->model_only   = model_only;
    c->session      = s;
    memset(&c->info, 0, sizeof c->info);
    c->info.status = FR_CHECKIN_RUNNING;
    c->errmsg[0]   = '\0';
    return FR_OK;
}

// Seals the plain frame at dst + FRI_SEAL_HEADROOM in place. A masked
// UPDATE (values FIXED: one-time padded by secure aggregation) is only
// authenticated when the aggregator announced it takes that (SPEC 6.3,
// R38): encrypting a uniformly random vector again protects nothing and
// is the largest AEAD pass of the round.
static fr_err
seal_out(fr_client *c, uint8_t *dst, size_t dst_cap, size_t plain_len,
         size_t *dst_len)
{
    int bare = (fri_session_peer_caps(c->session->sess) &
                FRI_CAP_CLEAR_MASKED) != 0 &&
               fri_frame_is_masked_update(dst + FRI_SEAL_HEADROOM, plain_len);
    fr_err err = (bare ? fri_seal_clear : fri_seal)(c->session->sess, dst,
                                                    dst_cap, plain_len,
                                                    dst_len);
    if (err == FR_OK) {
        c->info.bytes_up += *dst_len;
    }
    return err;
}

static fr_err
poll_hello(fr_client *c, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    struct fri_session *s = c->session;
    if (dst_cap < FRI_HELLO_LEN) {
        return fri_client_fail(c, FR_ENOSPC, "need %zu bytes for HELLO",
                               (size_t) FRI_HELLO_LEN);
    }
    fri_identity id;
    fr_err       err = fri_identity_from_seed(&id, c->identity_seed);
    if (err == FR_OK) {
        // The pinned Ed25519 key may authorize edges of a tree (SPEC.md
        // §6.1.1): their credentials are checked against the wall clock.
        err = fri_hs_client_hello_root(&s->hs, dst, dst_cap, dst_len, &id,
                                       c->server_pk, c->server_pk + 32,
                                       (uint64_t) time(NULL), CLIENT_CAPS);
    }
    fri_identity_wipe(&id);
    if (err != FR_OK) {
        return fail(c, err, "building HELLO");
    }
    c->info.bytes_up += *dst_len;
    s->step = WAIT_WELCOME;
    return FR_OK;
}

static fr_err
poll_checkin(fr_client *c, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    fri_checkin ci;
    memset(&ci, 0, sizeof ci);
    ci.caps          = CLIENT_CAPS;
    ci.proto_major   = FRI_PROTO_MAJOR;
    ci.proto_minor   = FRI_PROTO_MINOR;
    ci.model_version = c->model != NULL ? c->model->version : 0;
    ci.flags         = c->session->model_only ? FRI_CHECKIN_MODEL_ONLY : 0;
    if (dst_cap < FRI_SEAL_HEADROOM) {
        return fri_client_fail(c, FR_ENOSPC, "buffer too small (CHECKIN)");
    }
    size_t plain = 0;
    fr_err err   = fri_checkin_encode(dst + FRI_SEAL_HEADROOM,
                                      dst_cap - FRI_SEAL_HEADROOM, &plain,
                                      &ci);
    if (err == FR_OK) {
        err = seal_out(c, dst, dst_cap, plain, dst_len);
    }
    if (err == FR_ENOSPC) {
        return fri_client_fail(c, err, "buffer too small (CHECKIN)");
    }
    if (err != FR_OK) {
        return fail(c, err, "building CHECKIN");
    }
    c->session->step = WAIT_TASK;
    return FR_OK;
}

static fr_err
poll_get_model(fr_client *c, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    fri_get_model g;
    memset(&g, 0, sizeof g);
    g.round_id     = c->session->task.round_id;
    g.have_version = 0; // no delta models: always a full one
    g.accept       = FRI_ENC_F32_BIT | FRI_ENC_F16_BIT | FRI_ENC_I8_BIT |
                     FRI_ENC_I8C_BIT;
    if (dst_cap < FRI_SEAL_HEADROOM) {
        return fri_client_fail(c, FR_ENOSPC, "buffer too small (GET_MODEL)");
    }
    size_t plain = 0;
    fr_err err   = fri_get_model_encode(dst + FRI_SEAL_HEADROOM,
                                        dst_cap - FRI_SEAL_HEADROOM, &plain,
                                        &g);
    if (err == FR_OK) {
        err = seal_out(c, dst, dst_cap, plain, dst_len);
    }
    if (err == FR_ENOSPC) {
        return fri_client_fail(c, err, "buffer too small (GET_MODEL)");
    }
    if (err != FR_OK) {
        return fail(c, err, "building GET_MODEL");
    }
    c->session->step = WAIT_MODEL;
    return FR_OK;
}

static fr_err
poll_update(fr_client *c, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    struct fri_session *s = c->session;
    const fri_task     *t = &s->task;
    if (!s->have_upd) {
        fri_fit_task ft;
        memset(&ft, 0, sizeof ft);
        ft.algo         = fit_algo(t);
        ft.k            = t->k;
        ft.reg          = t->reg;
        ft.reg_bias     = t->reg_bias;
        ft.alpha        = t->alpha;
        ft.clip         = t->clip;
        ft.lr           = t->lr;
        ft.local_epochs = t->local_epochs;
        ft.weighted     = t->weighted;
        ft.stats_delta  = t->stats_delta;
        fr_err err      = fri_client_compute_update(c, &ft, &s->upd);
        if (err != FR_OK) {
            char msg[FRI_CLIENT_ERRMSG_CAP];
            memcpy(msg, c->errmsg, sizeof msg);
            finish(c, FR_CHECKIN_FAILED);
            memcpy(c->errmsg, msg, sizeof msg);
            return err;
        }
        s->have_upd = 1;
    }
    fri_update u;
    memset(&u, 0, sizeof u);
    u.round_id  = t->round_id;
    u.kind      = t->update_kind;
    u.layout    = FRI_UPD_SPARSE;
    u.vtype     = FRI_VAL_F32;
    u.frac_bits = 0;
    u.k         = t->k;
    u.width     = s->upd.width;
    u.n_rows    = s->upd.n_rows;
    u.n_extra   = (uint32_t) s->upd.n_extra;
    u.weight    = s->upd.weight;
    u.extra     = s->upd.extra;
    u.rows      = s->upd.rows;
    u.stride    = 0;
    u.items     = s->upd.items;
    size_t need = fri_update_size(u.layout, u.width, u.n_rows, u.n_extra);
    if (need == 0) {
        return fail(c, FR_ETOOBIG, "update exceeds protocol limits");
    }
    if (dst_cap < need + FRI_SEAL_OVERHEAD) {
        // Recoverable: the caller may poll again with a larger buffer.
        return fri_client_fail(c, FR_ENOSPC, "need %zu bytes for UPDATE",
                               need + FRI_SEAL_OVERHEAD);
    }
    size_t plain = 0;
    fr_err err   = fri_update_encode(dst + FRI_SEAL_HEADROOM,
                                     dst_cap - FRI_SEAL_HEADROOM, &plain, &u);
    if (err == FR_OK) {
        err = seal_out(c, dst, dst_cap, plain, dst_len);
    }
    if (err != FR_OK) {
        return fail(c, err, "building UPDATE");
    }
    // The plaintext statistics are no longer needed.
    fri_update_buf_free(c, &s->upd);
    s->have_upd = 0;
    s->step     = WAIT_ACK;
    return FR_OK;
}

// The next request of the secure aggregation exchange. After a SA_WAIT
// reply it returns no bytes once (status RUNNING, retry_after_ms set): the
// caller comes back after that delay.
static fr_err
poll_sa(fr_client *c, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    struct fri_session *s = c->session;
    if (s->sa_paused) {
        s->sa_paused = 0;
        *dst_len     = 0;
        return FR_OK;
    }
    if (s->sa == NULL) {
        fr_err err = fri_sa_client_create(
            c, &s->sa, s->task.round_id,
            (fri_session_peer_caps(s->sess) & FRI_CAP_SA_CORRECT) != 0);
        if (err != FR_OK) {
            return fail(c, err, "secure aggregation state");
        }
    }
    if (dst_cap < FRI_SEAL_HEADROOM + FRI_SEAL_OVERHEAD) {
        return fri_client_fail(c, FR_ENOSPC, "buffer too small (SA)");
    }
    size_t plain = 0;
    fr_err err   = fri_sa_client_poll(c, s->sa, &s->task,
                                      dst + FRI_SEAL_HEADROOM,
                                      dst_cap - FRI_SEAL_HEADROOM, &plain);
    if (err == FR_OK) {
        err = seal_out(c, dst, dst_cap, plain, dst_len);
    }
    if (err == FR_ENOSPC) {
        return fri_client_fail(c, err, "buffer too small (SA)");
    }
    if (err != FR_OK) {
        return fail(c, err, "secure aggregation request");
    }
    c->info.retry_after_ms = 0;
    s->step                = WAIT_SA;
    return FR_OK;
}

fr_err
fr_client_poll(fr_client *c, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    if (c == NULL || dst_len == NULL) {
        return FR_EINVAL;
    }
    *dst_len = 0;
    if (c->session == NULL) {
        return FR_OK; // over (or never started): nothing to send
    }
    if (dst == NULL && dst_cap > 0) {
        return fri_client_fail(c, FR_EINVAL, "NULL buffer");
    }
    switch (c->session->step) {
    case SEND_HELLO:
        return poll_hello(c, dst, dst_cap, dst_len);
    case SEND_CHECKIN:
        return poll_checkin(c, dst, dst_cap, dst_len);
    case SEND_GET_MODEL:
        return poll_get_model(c, dst, dst_cap, dst_len);
    case SEND_UPDATE:
        return poll_update(c, dst, dst_cap, dst_len);
    case SEND_SA:
        return poll_sa(c, dst, dst_cap, dst_len);
    default:
        return fri_client_fail(c, FR_ESTATE,
                               "a reply is expected before the next poll");
    }
}

// ---- replies ---------------------------------------------------------------

// An ERROR frame: ends the check-in with the aggregator's code. A
// retry_after in it is reported like a NOT_SELECTED delay.
static fr_err
handle_error(fr_client *c, const uint8_t *plain, size_t plain_len, int sealed)
{
    fri_error e;
    fr_err    err = fri_error_decode(&e, plain, plain_len);
    if (err != FR_OK) {
        return fail(c, err, "malformed ERROR");
    }
    fr_err code = (fr_err) e.code;
    if (e.code == 0 || e.code > 1000) {
        code = FR_EPROTO;
    }
    if (code == FR_ERESYNC && sealed && e.of_type == FRI_T_UPDATE) {
        // The aggregator took this device's standing contribution out of
        // its sum: the next report sends the contribution whole (SPEC
        // 5.4.1). Only the authenticated session may ask that.
        fri_client_stats_forget(c);
    }
    c->info.retry_after_ms = e.retry_after_ms;
    char text[FRI_MAX_ERRTEXT + 1];
    size_t tl = e.text_len > FRI_MAX_ERRTEXT ? FRI_MAX_ERRTEXT : e.text_len;
    for (size_t i = 0; i < tl; i++) {
        // Printable ASCII only: the text ends up in logs.
        unsigned char ch = (unsigned char) e.text[i];
        text[i]          = (ch >= 0x20 && ch < 0x7f) ? (char) ch : '?';
    }
    text[tl] = '\0';
    fri_client_fail(c, code, "aggregator refused (%s, type %u): %s",
                    fr_errname((fr_err) e.code), (unsigned) e.of_type, text);
    finish(c, FR_CHECKIN_FAILED);
    return code;
}

static fr_err
recv_welcome(fr_client *c, const uint8_t *src, size_t src_len)
{
    struct fri_session *s = c->session;
    fri_hdr             h;
    if (fri_frame_check(&h, src, src_len) == FR_OK && h.type == FRI_T_ERROR &&
        !(h.flags & FRI_F_SEALED)) {
        return handle_error(c, src, src_len, 0);
    }
    fr_err err = fri_hs_client_finish(&s->sess, s->hs, src, src_len);
    fri_hs_client_destroy(s->hs);
    s->hs = NULL;
    if (err != FR_OK) {
        return fail(c, err, "handshake (WELCOME)");
    }
    s->step = SEND_CHECKIN;
    return FR_OK;
}

// The task's model is in place: send the update (or start the masking),
// or, for a model-only check-in, end here.
static fr_err
have_model(fr_client *c)
{
    struct fri_session *s = c->session;
    if (s->model_only) {
        finish(c, FR_CHECKIN_MODEL_ONLY);
        return FR_OK;
    }
    s->step = s->task.secagg ? SEND_SA : SEND_UPDATE;
    return FR_OK;
}

static fr_err
recv_task(fr_client *c, const uint8_t *plain, size_t plain_len)
{
    struct fri_session *s = c->session;
    fri_task            t;
    fr_err              err = fri_task_decode(&t, plain, plain_len);
    if (err != FR_OK) {
        return fail(c, err, "malformed TASK");
    }
    if (t.status == FRI_TASK_NONE) {
        c->info.retry_after_ms = t.retry_after_ms;
        finish(c, FR_CHECKIN_NOT_SELECTED);
        return FR_OK;
    }
    if ((t.status == FRI_TASK_MODEL) != (s->model_only != 0)) {
        return fail(c, FR_EPROTO, s->model_only
                                      ? "a model-only check-in got a task"
                                      : "a model-only reply to a check-in");
    }
    c->info.round         = t.round_id;
    c->info.model_version = t.model_version;
    if (t.secagg &&
        !((t.algo == FRI_ALGO_GRAD && t.update_kind == FRI_UPD_GRAD) ||
          (t.algo == FRI_ALGO_ALS && t.update_kind == FRI_UPD_ALS) ||
          (t.algo == FRI_ALGO_IALS && t.update_kind == FRI_UPD_ALS &&
           !t.stats_delta) ||
          (t.algo == FRI_ALGO_VBMF && t.update_kind == FRI_UPD_VB &&
           t.stats_delta))) {
        return fail(c, FR_EPROTO,
                    "secure aggregation needs a gradient, ALS, iALS or "
                    "latest-statistics VBMF task");
    }
    if (t.k == 0 || t.k > c->max_k) {
        return fail(c, FR_ETOOBIG, "task factor dimension above max_k");
    }
    if ((t.update_kind == FRI_UPD_ALS) !=
            (t.algo == FRI_ALGO_ALS || t.algo == FRI_ALGO_IALS) &&
        t.update_kind != FRI_UPD_DELTA) {
        return fail(c, FR_EPROTO, "task algorithm and update kind disagree");
    }
    if ((t.update_kind == FRI_UPD_VB) != (t.algo == FRI_ALGO_VBMF)) {
        return fail(c, FR_EPROTO, "task algorithm and update kind disagree");
    }
    s->task      = t;
    s->have_task = 1;
    // The task's penalties apply from now on, also to predictions made
    // before (or without) computing an update, e.g. a device that only
    // reads the model of a secure round; a change invalidates the fit.
    fri_fit_params fp = c->fit;
    fp.reg            = t.reg;
    fp.reg_bias       = t.reg_bias;
    fp.alpha          = t.alpha;
    fp.weighted       = t.weighted;
    fp.implicit       = t.algo == FRI_ALGO_IALS;
    if (memcmp(&fp, &c->fit, sizeof fp) != 0) {
        c->fit    = fp;
        c->fitted = 0;
    }
    const uint8_t *signer = c->server_pk + 32;
    if (c->model != NULL && c->model->version == t.model_version &&
        sodium_memcmp(c->model->signer, signer, 32) == 0) {
        return have_model(c);
    }
    fri_cmodel *m = fri_model_cache_get(c->cache, t.model_version, signer);
    if (m != NULL) {
        fri_client_set_model(c, m);
        fri_cmodel_unref(m);
        return have_model(c);
    }
    s->step = SEND_GET_MODEL;
    return FR_OK;
}

static fr_err
recv_model(fr_client *c, const uint8_t *plain, size_t plain_len)
{
    struct fri_session *s = c->session;
    const uint8_t      *signer = c->server_pk + 32;
    // The signature covers the whole frame; check it before trusting any
    // field.
    fr_err err = fri_model_verify(plain, plain_len, signer);
    if (err != FR_OK) {
        return fail(c, err == FR_ECRYPTO ? FR_ECRYPTO : err,
                    "MODEL signature");
    }
    fri_model mm;
    err = fri_model_decode(&mm, plain, plain_len);
    if (err != FR_OK) {
        return fail(c, err, "malformed MODEL");
    }
    if (mm.kind != FRI_MODEL_FULL && mm.kind != FRI_MODEL_VB) {
        return fail(c, FR_EPROTO, "delta MODEL not requested");
    }
    if ((mm.kind == FRI_MODEL_VB) != (s->task.algo == FRI_ALGO_VBMF)) {
        return fail(c, FR_EPROTO, "MODEL kind does not match the task");
    }
    if (mm.n_items > c->max_items || mm.k > c->max_k) {
        return fail(c, FR_ETOOBIG, "MODEL larger than max_items/max_k");
    }
    if (mm.version != s->task.model_version || mm.round_id !=
        s->task.round_id || mm.k != s->task.k) {
        return fail(c, FR_EPROTO, "MODEL does not match the task");
    }
    fri_cmodel *m = NULL;
    err           = fri_cmodel_alloc(&m, mm.n_items, mm.k);
    if (err != FR_OK) {
        return fail(c, err, "allocating the model");
    }
    m->version  = mm.version;
    m->round    = mm.round_id;
    m->mu       = mm.mu;
    m->implicit = s->task.algo == FRI_ALGO_IALS;
    memcpy(m->signer, signer, 32);
    err = fri_model_get(&mm, m->bi, m->Q, m->k);
    if (err == FR_OK && mm.kind == FRI_MODEL_VB) {
        err = fri_cmodel_vb_alloc(m);
        if (err == FR_OK) {
            m->beta = mm.beta;
            err = fri_model_get_vb(&mm, m->umean, m->uprec_packed,
                                   m->item_var);
        }
    }
    if (err == FR_OK) {
        err = fri_cmodel_finish(m);
    }
    if (err != FR_OK) {
        fri_cmodel_unref(m);
        return fail(c, err, "decoding the model");
    }
    fri_cmodel *used = NULL;
    (void) fri_model_cache_put(c->cache, m, &used);
    fri_client_set_model(c, used);
    fri_cmodel_unref(used);
    fri_cmodel_unref(m);
    return have_model(c);
}

static fr_err
recv_ack(fr_client *c, const uint8_t *plain, size_t plain_len)
{
    fri_ack a;
    fr_err  err = fri_ack_decode(&a, plain, plain_len);
    if (err != FR_OK) {
        return fail(c, err, "malformed ACK");
    }
    if (a.of_type != FRI_T_UPDATE || a.round_id != c->session->task.round_id) {
        return fail(c, FR_EPROTO, "ACK for another message");
    }
    c->last_round = a.round_id;
    fri_client_stats_commit(c);
    finish(c, FR_CHECKIN_CONTRIBUTED);
    return FR_OK;
}

static fr_err
recv_sa(fr_client *c, uint16_t type, const uint8_t *plain, size_t plain_len)
{
    struct fri_session *s     = c->session;
    uint32_t            retry = 0;
    int                 done  = 0;
    fr_err err = fri_sa_client_receive(c, s->sa, &s->task, type, plain,
                                       plain_len, &retry, &done);
    if (err != FR_OK) {
        return fail(c, err, "secure aggregation reply");
    }
    if (done) {
        c->last_round = s->task.round_id;
        finish(c, FR_CHECKIN_CONTRIBUTED);
        return FR_OK;
    }
    s->step = SEND_SA;
    if (retry > 0) {
        c->info.retry_after_ms = retry;
        s->sa_paused           = 1;
    }
    return FR_OK;
}

fr_err
fr_client_receive(fr_client *c, const uint8_t *src, size_t src_len)
{
    if (c == NULL) {
        return FR_EINVAL;
    }
    struct fri_session *s = c->session;
    if (s == NULL || (s->step != WAIT_WELCOME && s->step != WAIT_TASK &&
                      s->step != WAIT_MODEL && s->step != WAIT_ACK &&
                      s->step != WAIT_SA)) {
        return fri_client_fail(c, FR_ESTATE, "no reply expected now");
    }
    if (src == NULL || src_len == 0) {
        return fail(c, FR_EPROTO, "empty reply");
    }
    if (src_len > fri_client_reply_bound(c)) {
        return fail(c, FR_ETOOBIG, "reply larger than the handle's bounds "
                                   "allow (max_items, max_k, "
                                   "max_sa_members)");
    }
    c->info.bytes_down += src_len;
    if (s->step == WAIT_WELCOME) {
        return recv_welcome(c, src, src_len);
    }
    fri_hdr h;
    fr_err  err = fri_frame_check(&h, src, src_len);
    if (err != FR_OK) {
        return fail(c, err, "reply frame");
    }
    if (!(h.flags & FRI_F_SEALED)) {
        // Only a plain ERROR may come unsealed (e.g. the server lost the
        // session); anything else must be sealed.
        if (h.type == FRI_T_ERROR) {
            return handle_error(c, src, src_len, 0);
        }
        return fail(c, FR_EPROTO, "unsealed reply");
    }
    // fri_open works in place; the caller's buffer is const, so copy.
    uint8_t *buf = fri_client_alloc(c, src_len);
    if (buf == NULL) {
        return fail(c, FR_ENOMEM, "reply buffer");
    }
    memcpy(buf, src, src_len);
    const uint8_t *plain     = NULL;
    size_t         plain_len = 0;
    err = fri_open(s->sess, buf, src_len, &plain, &plain_len);
    if (err != FR_OK) {
        fri_client_free(c, buf);
        return fail(c, err, "opening the reply");
    }
    if (h.type == FRI_T_ERROR) {
        err = handle_error(c, plain, plain_len, 1);
    } else if (s->step == WAIT_TASK && h.type == FRI_T_TASK) {
        err = recv_task(c, plain, plain_len);
    } else if (s->step == WAIT_MODEL && h.type == FRI_T_MODEL) {
        err = recv_model(c, plain, plain_len);
    } else if (s->step == WAIT_ACK && h.type == FRI_T_ACK) {
        err = recv_ack(c, plain, plain_len);
    } else if (s->step == WAIT_SA) {
        err = recv_sa(c, h.type, plain, plain_len);
    } else {
        err = fail(c, FR_EPROTO, "unexpected reply type");
    }
    // Replies carry nothing secret of the device's (task, public model,
    // acknowledgements): no wipe needed.
    fri_client_free(c, buf);
    return err;
}

void
fr_client_checkin_info_get(const fr_client *c, fr_checkin_info *info)
{
    if (info == NULL) {
        return;
    }
    if (c == NULL) {
        memset(info, 0, sizeof *info);
        return;
    }
    *info = c->info;
}
