// A minimal NNG REP server over fri_agg for the simulator: one REP socket,
// n_ctx contexts each running recv -> fri_agg_handle -> send on NNG's
// completion threads, so up to n_ctx requests are served at once.
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../aggregator/agg.h"
#include "sim.h"

enum { ST_RECV = 0, ST_SEND = 1 };

typedef struct srv_ctx {
    struct fri_sim_server *srv;
    nng_aio               *aio;
    nng_ctx                ctx;
    int                    state;
    uint8_t               *reply;
    size_t                 reply_cap;
} srv_ctx;

struct fri_sim_server {
    nng_socket       sock;
    int              open;
    fri_agg         *agg;
    fri_sim_clock_fn clock;
    void            *clock_ctx;
    srv_ctx         *ctxs;
    uint32_t         n_ctx;
};

static void
ctx_cb(void *arg)
{
    srv_ctx *c = arg;
    int      rv = nng_aio_result(c->aio);
    nng_msg *msg;

    if (c->state == ST_SEND) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio));
            if (rv == NNG_ECLOSED) {
                return;
            }
        }
        c->state = ST_RECV;
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    if (rv != 0) {
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
            return;
        }
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    msg = nng_aio_get_msg(c->aio);
    size_t rlen = 0;
    fr_err e = fri_sim_handle(c->srv->agg, c->srv->clock(c->srv->clock_ctx),
                              nng_msg_body(msg), nng_msg_len(msg), &c->reply,
                              &c->reply_cap, &rlen);
    nng_msg_clear(msg);
    if (e != FR_OK || nng_msg_append(msg, c->reply, rlen) != 0) {
        // No reply can be produced: drop it; the client times out.
        nng_msg_free(msg);
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    nng_aio_set_msg(c->aio, msg);
    c->state = ST_SEND;
    nng_ctx_send(c->ctx, c->aio);
}

static void
server_free(fri_sim_server *s)
{
    if (s->open) {
        nng_close(s->sock); // fails pending aios with NNG_ECLOSED
    }
    for (uint32_t i = 0; i < s->n_ctx; i++) {
        if (s->ctxs[i].aio != NULL) {
            nng_aio_stop(s->ctxs[i].aio);
            nng_aio_free(s->ctxs[i].aio);
        }
        free(s->ctxs[i].reply);
    }
    free(s->ctxs);
    free(s);
}

fr_err
fri_sim_server_start(fri_sim_server **out, fri_agg *agg, const char *url,
                     uint32_t n_ctx, fri_sim_clock_fn clock, void *clock_ctx,
                     char *bound_url, size_t bound_cap, char *err,
                     size_t err_cap)
{
    fri_sim_server *s;
    nng_listener    l;
    int             rv;
    *out = NULL;
    if (agg == NULL || url == NULL || n_ctx == 0 || clock == NULL) {
        return FR_EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return FR_ENOMEM;
    }
    s->agg = agg;
    s->clock = clock;
    s->clock_ctx = clock_ctx;
    s->ctxs = calloc(n_ctx, sizeof(*s->ctxs));
    if (s->ctxs == NULL) {
        free(s);
        return FR_ENOMEM;
    }
    s->n_ctx = n_ctx;
    if ((rv = nng_rep0_open(&s->sock)) != 0) {
        goto nng_fail;
    }
    s->open = 1;
    // Models can be large; the bound of fri_agg covers every reply.
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, 0);
    size_t cap = fri_agg_reply_bound(agg);
    for (uint32_t i = 0; i < n_ctx; i++) {
        srv_ctx *c = &s->ctxs[i];
        c->srv = s;
        c->reply_cap = cap;
        c->reply = malloc(cap);
        if (c->reply == NULL) {
            server_free(s);
            return FR_ENOMEM;
        }
        if ((rv = nng_aio_alloc(&c->aio, ctx_cb, c)) != 0 ||
            (rv = nng_ctx_open(&c->ctx, s->sock)) != 0) {
            goto nng_fail;
        }
    }
    if ((rv = nng_listener_create(&l, s->sock, url)) != 0) {
        goto nng_fail;
    }
    nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, 0);
    if ((rv = nng_listener_start(l, 0)) != 0) {
        goto nng_fail;
    }
    if (bound_cap > 0) {
        snprintf(bound_url, bound_cap, "%s", url);
        int port = 0;
        if (strncmp(url, "tcp://", 6) == 0 &&
            nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
            const char *colon = strrchr(url, ':');
            int         n = (int) (colon - url);
            snprintf(bound_url, bound_cap, "%.*s:%d", n, url, port);
        }
    }
    for (uint32_t i = 0; i < n_ctx; i++) {
        s->ctxs[i].state = ST_RECV;
        nng_ctx_recv(s->ctxs[i].ctx, s->ctxs[i].aio);
    }
    *out = s;
    return FR_OK;
nng_fail:
    if (err_cap > 0) {
        snprintf(err, err_cap, "%s: %s", url, nng_strerror(rv));
    }
    server_free(s);
    return FR_ENET;
}

void
fri_sim_server_stop(fri_sim_server *s)
{
    if (s != NULL) {
        server_free(s);
    }
}

fr_err
fri_sim_handle(struct fri_agg *agg, uint64_t now_ms, const uint8_t *req,
               size_t req_len, uint8_t **buf, size_t *cap, size_t *reply_len)
{
    size_t need = fri_agg_reply_bound(agg);
    if (need > *cap) {
        uint8_t *b = realloc(*buf, need);
        if (b == NULL) {
            return FR_ENOMEM;
        }
        *buf = b;
        *cap = need;
    }
    return fri_agg_handle(agg, now_ms, req, req_len, *buf, *cap, reply_len);
}
