// The edge's client of the root (uplink.h). Each exchange runs in a fresh
// session (HELLO/WELCOME with the edge's identity, the root's pinned X25519
// key), so a root restart or an expired session costs one handshake:
//   1. the edge's round closed: EDGE_SUMS -> ACK, or ERROR (refused, late:
//      its devices' contributions are lost, the tree goes on);
//   2. CHECKIN -> TASK; when it names a round after the last one served,
//      GET_MODEL -> MODEL, and the edge opens that round with the root's
//      frame and deadline minus the margin.
// Transport failures are retried after a pause; the sums of a round are
// given up once the root has moved past it (ELATE).
#include "agg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "channel.h"
#include "log.h"
#include "msg.h"
#include "msg_edge.h"
#include "uplink.h"

struct fri_uplink {
    fri_agg     *a;
    nng_socket   sock;
    pthread_t    thread;
    int          threaded; // fri_uplink_start's thread runs the steps
    atomic_int   quit;
    uint64_t     margin_ms;
    size_t       recv_max;
    fri_agg_sums pending; // a closed round's sums not yet taken by the root
    int          has_pending;
    uint64_t     last_err_log;
};

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

// Sleeps ms in slices, returning early on quit.
static void
pause_ms(fri_uplink *u, uint64_t ms)
{
    while (ms > 0 && !atomic_load(&u->quit)) {
        uint64_t s = ms < 50 ? ms : 50;
        nng_msleep((nng_duration)s);
        ms -= s;
    }
}

// One request/reply: sends len bytes of req, receives into *rep (nng
// allocated; free with nng_free(*rep, *rep_len)).
static fr_err
roundtrip(fri_uplink *u, const uint8_t *req, size_t len, uint8_t **rep,
    size_t *rep_len)
{
    *rep   = NULL;
    int rv = nng_send(u->sock, (void *)req, len, 0);
    if (rv == 0) {
        rv = nng_recv(u->sock, rep, rep_len, NNG_FLAG_ALLOC);
    }
    return rv == 0 ? FR_OK : rv == NNG_ETIMEDOUT ? FR_ETIMEDOUT : FR_ENET;
}

static fr_err
handshake(fri_uplink *u, fri_session **s)
{
    uint8_t        hello[FRI_HELLO_LEN];
    size_t         hl = 0;
    fri_hs_client *hs = NULL;
    fr_err   e = fri_hs_client_hello(&hs, hello, sizeof(hello), &hl, &u->a->id,
          u->a->cfg.upstream_pk,
          FRI_CAP_ALS | FRI_CAP_GRAD | FRI_CAP_IALS | FRI_CAP_VBMF
              | FRI_CAP_SPARSE);
    uint8_t *rep = NULL;
    size_t   rl  = 0;
    if (e == FR_OK) {
        e = roundtrip(u, hello, hl, &rep, &rl);
    }
    if (e == FR_OK) {
        e = fri_hs_client_finish(s, hs, rep, rl);
        if (e != FR_OK) {
            // A plain ERROR (e.g. not on the root's allow-list).
            fri_error er;
            if (fri_error_decode(&er, rep, rl) == FR_OK) {
                e = (fr_err)er.code;
            }
        }
    }
    if (rep != NULL) {
        nng_free(rep, rl);
    }
    fri_hs_client_destroy(hs);
    return e;
}

// Seals the plain frame at buf + FRI_SEAL_HEADROOM (plain_len bytes), sends
// it and opens the reply into *plain (a view into *rep). An ERROR reply
// becomes its code (*err_round its round, *retry its retry hint).
static fr_err
exchange(fri_uplink *u, fri_session *s, uint8_t *buf, size_t cap,
    size_t plain_len, uint16_t want, uint8_t **rep, size_t *rep_len,
    const uint8_t **plain, size_t *pl, uint32_t *retry)
{
    size_t sl = 0;
    fr_err e  = fri_seal(s, buf, cap, plain_len, &sl);
    if (e == FR_OK) {
        e = roundtrip(u, buf, sl, rep, rep_len);
    }
    if (e != FR_OK) {
        return e;
    }
    e = fri_open(s, *rep, *rep_len, plain, pl);
    if (e != FR_OK) {
        fri_error er;
        // A pre-session ERROR (unknown session) travels plain.
        return fri_error_decode(&er, *rep, *rep_len) == FR_OK ? (fr_err)er.code
                                                              : e;
    }
    fri_hdr h;
    if (fri_hdr_get(&h, *plain, *pl) != FR_OK) {
        return FR_EPROTO;
    }
    if (h.type == FRI_T_ERROR) {
        fri_error er;
        if (fri_error_decode(&er, *plain, *pl) != FR_OK) {
            return FR_EPROTO;
        }
        *retry = er.retry_after_ms;
        return er.code != 0 ? (fr_err)er.code : FR_EPROTO;
    }
    return h.type == want ? FR_OK : FR_EPROTO;
}

// Sends one round's sums. FR_OK: acknowledged; FR_ENET/FR_ETIMEDOUT: try
// again; anything else: the root refused them for good.
static fr_err
send_sums(fri_uplink *u, const fri_agg_sums *s)
{
    fri_agg          *a = u->a;
    fri_edge_sums_msg m;
    memset(&m, 0, sizeof(m));
    m.round_id    = s->round;
    m.n_devices   = s->n_devices;
    m.algo        = a->cfg.algo == FRI_AGG_GRAD ? FRI_EDGE_GRAD
               : a->cfg.algo == FRI_AGG_VBMF    ? FRI_EDGE_VBMF
               : a->cfg.implicit                ? FRI_EDGE_IALS
                                                : FRI_EDGE_ALS;
    m.k           = a->cfg.k;
    m.n_items     = a->cfg.n_items;
    m.width       = s->width;
    m.n_rows      = s->n_rows;
    m.n_glob      = s->n_glob;
    m.sum_ratings = s->sum_ratings;
    m.count       = s->count;
    m.weight      = s->weight;
    m.items       = s->items;
    m.rows        = s->rows;
    m.glob        = s->glob;
    size_t len    = fri_edge_sums_size(m.n_glob, m.width, m.n_rows);
    if (len == 0) {
        return FR_ETOOBIG;
    }
    size_t   cap = len + FRI_SEAL_HEADROOM + FRI_SEAL_OVERHEAD;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        return FR_ENOMEM;
    }
    size_t       pl0 = 0;
    fri_session *ss  = NULL;
    fr_err       e   = fri_edge_sums_encode(
                buf + FRI_SEAL_HEADROOM, cap - FRI_SEAL_HEADROOM, &pl0, &m);
    if (e == FR_OK) {
        e = handshake(u, &ss);
    }
    uint8_t       *rep = NULL;
    size_t         rl = 0, pl = 0;
    const uint8_t *plain = NULL;
    uint32_t       retry = 0;
    if (e == FR_OK) {
        e = exchange(
            u, ss, buf, cap, pl0, FRI_T_ACK, &rep, &rl, &plain, &pl, &retry);
    }
    if (e == FR_OK) {
        fri_ack ack;
        e = fri_ack_decode(&ack, plain, pl) == FR_OK
                && ack.of_type == FRI_T_EDGE_SUMS && ack.round_id == s->round
            ? FR_OK
            : FR_EPROTO;
    }
    if (rep != NULL) {
        nng_free(rep, rl);
    }
    fri_session_destroy(ss);
    free(buf);
    return e;
}

// Checks in with the root; when its task names a round after `served`,
// fetches the model and opens the edge's round. *retry_ms: when to ask
// again.
static fr_err
next_round(fri_uplink *u, uint64_t now_ms, uint64_t served, uint32_t *retry_ms)
{
    fri_agg       *a   = u->a;
    fri_session   *ss  = NULL;
    fr_err         e   = handshake(u, &ss);
    size_t         cap = u->recv_max;
    uint8_t       *buf = malloc(FRI_SEAL_HEADROOM + 256);
    uint8_t       *rep = NULL;
    size_t         rl = 0, pl = 0, plen = 0;
    const uint8_t *plain = NULL;
    fri_task       t;
    memset(&t, 0, sizeof(t));
    *retry_ms = a->cfg.retry_after_ms;
    if (buf == NULL) {
        e = FR_ENOMEM;
    }
    if (e == FR_OK) {
        fri_checkin c = { .caps = FRI_CAP_ALS | FRI_CAP_GRAD | FRI_CAP_IALS
                | FRI_CAP_VBMF | FRI_CAP_SPARSE,
            .proto_major = FRI_PROTO_MAJOR,
            .proto_minor = FRI_PROTO_MINOR };
        e = fri_checkin_encode(buf + FRI_SEAL_HEADROOM, 256, &plen, &c);
    }
    if (e == FR_OK) {
        e = exchange(u, ss, buf, FRI_SEAL_HEADROOM + 256, plen, FRI_T_TASK,
            &rep, &rl, &plain, &pl, retry_ms);
    }
    if (e == FR_OK) {
        e = fri_task_decode(&t, plain, pl);
    }
    if (rep != NULL) {
        nng_free(rep, rl);
        rep = NULL;
    }
    uint64_t t0 = now_ms;
    if (e == FR_OK && t.status == FRI_TASK_NONE) {
        *retry_ms = t.retry_after_ms;
        e         = FR_ESTATE;
    } else if (e == FR_OK
        && (t.status != FRI_TASK_RUN || t.round_id <= served)) {
        e = FR_ESTATE; // this round was served (its sums went up)
    }
    if (e == FR_OK) {
        fri_get_model g
            = { .round_id = t.round_id, .accept = FRI_ENC_F32_BIT };
        e = fri_get_model_encode(buf + FRI_SEAL_HEADROOM, 256, &plen, &g);
    }
    if (e == FR_OK) {
        e = exchange(u, ss, buf, FRI_SEAL_HEADROOM + 256, plen, FRI_T_MODEL,
            &rep, &rl, &plain, &pl, retry_ms);
    }
    if (e == FR_OK) {
        // Close the edge's round the margin before the root's deadline.
        uint64_t left = t.deadline_ms > u->margin_ms
            ? t.deadline_ms - u->margin_ms
            : t.deadline_ms / 2;
        e             = fri_agg_edge_open(a, t0, plain, pl, t0 + left);
        if (e != FR_OK) {
            fri_agg_log(a, FR_LOG_ERROR,
                "msg=\"root's model refused\" round=%llu err=%s "
                "alert=1",
                (unsigned long long)t.round_id, fr_errname(e));
        }
    }
    if (rep != NULL) {
        nng_free(rep, rl);
    }
    (void)cap;
    fri_session_destroy(ss);
    free(buf);
    return e;
}

fr_err
fri_uplink_step(fri_uplink *u, uint64_t now_ms, uint32_t *retry_ms)
{
    fri_agg *a      = u->a;
    uint64_t served = 0;
    *retry_ms       = 20;
    if (!fri_agg_edge_waiting(a, &served)) {
        return FR_ESTATE; // a round is open: nothing for the root yet
    }
    if (!u->has_pending && fri_agg_edge_take(a, &u->pending) == FR_OK) {
        u->has_pending = 1;
    }
    if (u->has_pending) {
        fr_err e = send_sums(u, &u->pending);
        if (e == FR_ENET || e == FR_ETIMEDOUT || e == FR_ECLOSED) {
            // Kept for the next step while the root is unreachable;
            // ELATE/EDUP and refusals end it.
            *retry_ms = 200;
            return e;
        }
        fri_agg_log(a, e == FR_OK ? FR_LOG_INFO : FR_LOG_WARN,
            "msg=\"%s\" round=%llu devices=%u items=%u err=%s",
            e == FR_OK ? "sums sent to the root"
                       : "sums not taken by the root",
            (unsigned long long)u->pending.round, u->pending.n_devices,
            u->pending.n_rows, fr_errname(e));
        fri_agg_sums_free(&u->pending);
        u->has_pending = 0;
    }
    uint32_t retry = 0;
    fr_err   e     = next_round(u, now_ms, served, &retry);
    if (e != FR_OK) {
        if (e != FR_ESTATE && now_ms - u->last_err_log > 5000) {
            u->last_err_log = now_ms;
            fri_agg_log(a, FR_LOG_WARN,
                "msg=\"root not reachable or refusing\" err=%s",
                fr_errname(e));
        }
        *retry_ms = retry > 0 && retry < 5000 ? retry : 200;
    }
    return e;
}

static void *
uplink_main(void *arg)
{
    fri_uplink *u = arg;
    while (!atomic_load(&u->quit)) {
        uint32_t retry = 0;
        if (fri_uplink_step(u, mono_ms(), &retry) != FR_OK) {
            pause_ms(u, retry);
        }
    }
    return NULL;
}

fr_err
fri_uplink_open(fri_uplink **out, fri_agg *a, const char *url,
    uint64_t margin_ms, char *err, size_t err_cap)
{
    *out = NULL;
    if (a == NULL || !a->cfg.edge || url == NULL) {
        return FR_EINVAL;
    }
    fri_uplink *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return FR_ENOMEM;
    }
    u->a         = a;
    u->margin_ms = margin_ms;
    // The largest reply is the MODEL (VB kind) plus the seal.
    size_t ms = fri_model_vb_size(FRI_MENC_F32, a->cfg.k, a->cfg.n_items);
    if (ms == 0) {
        ms = fri_model_size(FRI_MENC_F32, a->cfg.k, a->cfg.n_items);
    }
    // The root's catalog may grow: up to the frame limit the edge accepts
    // from anyone (cfg.max_frame), never below today's model.
    u->recv_max = ms + 4096 > a->cfg.max_frame ? ms + 4096 : a->cfg.max_frame;
    int rv      = nng_req0_open(&u->sock);
    if (rv == 0) {
        rv = nng_socket_set_size(u->sock, NNG_OPT_RECVMAXSZ, u->recv_max);
    }
    if (rv == 0) {
        rv = nng_socket_set_ms(u->sock, NNG_OPT_RECVTIMEO, 10000);
    }
    if (rv == 0) {
        rv = nng_socket_set_ms(u->sock, NNG_OPT_SENDTIMEO, 10000);
    }
    if (rv == 0) {
        // Non-blocking dial: the root may come up after the edge.
        rv = nng_dial(u->sock, url, NULL, NNG_FLAG_NONBLOCK);
    }
    if (rv != 0) {
        snprintf(err, err_cap, "--upstream %s: %s", url, nng_strerror(rv));
        nng_close(u->sock);
        free(u);
        return FR_ENET;
    }
    atomic_init(&u->quit, 0);
    *out = u;
    return FR_OK;
}

fr_err
fri_uplink_start(fri_uplink **out, fri_agg *a, const char *url,
    uint64_t margin_ms, char *err, size_t err_cap)
{
    fr_err e = fri_uplink_open(out, a, url, margin_ms, err, err_cap);
    if (e != FR_OK) {
        return e;
    }
    fri_uplink *u = *out;
    if (pthread_create(&u->thread, NULL, uplink_main, u) != 0) {
        *out = NULL;
        fri_uplink_stop(u);
        return FR_EINTERNAL;
    }
    u->threaded = 1;
    return FR_OK;
}

void
fri_uplink_stop(fri_uplink *u)
{
    if (u == NULL) {
        return;
    }
    atomic_store(&u->quit, 1);
    nng_close(u->sock); // wakes a blocked send/recv
    if (u->threaded) {
        pthread_join(u->thread, NULL);
    }
    if (u->has_pending) {
        fri_agg_sums_free(&u->pending);
    }
    free(u);
}
