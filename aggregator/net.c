#include "net.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/http/http.h>

#include "errbuf.h"

typedef struct worker {
    struct fri_net *net;
    nng_aio        *aio;
    nng_ctx         ctx;
    int             sending;
} worker;

struct fri_net {
    fri_agg          *a;
    nng_socket        sock;
    int               sock_open;
    worker           *w;
    int               n_w;
    size_t            reply_bound;
    pthread_t         timer;
    int               timer_started;
    atomic_int        stop;
    nng_http_server  *http;
};

uint64_t
fri_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void
recv_next(worker *w)
{
    w->sending = 0;
    nng_ctx_recv(w->ctx, w->aio);
}

// The context state machine: a received request is handled on the NNG
// callback thread and the reply sent on the same context.
static void
worker_cb(void *arg)
{
    worker *w  = arg;
    int     rv = nng_aio_result(w->aio);
    if (w->sending) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(w->aio));
        }
        if (rv == NNG_ECLOSED || atomic_load(&w->net->stop)) {
            return;
        }
        recv_next(w);
        return;
    }
    if (rv != 0) {
        if (rv == NNG_ECLOSED || atomic_load(&w->net->stop)) {
            return;
        }
        recv_next(w);
        return;
    }
    nng_msg *req = nng_aio_get_msg(w->aio);
    nng_msg *rep = NULL;
    // Sized to the bound; pages never written are never touched.
    if (nng_msg_alloc(&rep, w->net->reply_bound) != 0) {
        nng_msg_free(req);
        recv_next(w);
        return;
    }
    size_t rlen = 0;
    fr_err e    = fri_agg_handle(w->net->a, fri_now_ms(), nng_msg_body(req),
                                 nng_msg_len(req), nng_msg_body(rep),
                                 nng_msg_len(rep), &rlen);
    nng_msg_free(req);
    if (e != FR_OK || rlen == 0) {
        // No reply possible: the client's REQ resend/timeout handles it.
        nng_msg_free(rep);
        recv_next(w);
        return;
    }
    (void) nng_msg_chop(rep, nng_msg_len(rep) - rlen);
    nng_aio_set_msg(w->aio, rep);
    w->sending = 1;
    nng_ctx_send(w->ctx, w->aio);
}

static void *
timer_main(void *arg)
{
    fri_net *n = arg;
    while (!atomic_load(&n->stop)) {
        fri_agg_tick(n->a, fri_now_ms());
        nng_msleep(100);
    }
    return NULL;
}

static void
http_cb(nng_aio *aio)
{
    nng_http_req     *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h   = nng_aio_get_input(aio, 1);
    fri_agg          *a   = nng_http_handler_get_data(h);
    const char       *uri = nng_http_req_get_uri(req);
    fri_agg_metrics   m;
    char              buf[8192];
    size_t            len = 0;
    fri_agg_metrics_get(a, &m);
    int    json = strncmp(uri, "/status", 7) == 0;
    fr_err rv   = json ? fri_agg_metrics_json(&m, buf, sizeof(buf), &len)
                       : fri_agg_metrics_prometheus(&m, buf, sizeof(buf),
                                                    &len);
    nng_http_res *res = NULL;
    if (rv != FR_OK || nng_http_res_alloc(&res) != 0) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    if (nng_http_res_set_header(res, "Content-Type",
                                json ? "application/json"
                                     : "text/plain; version=0.0.4") != 0 ||
        nng_http_res_copy_data(res, buf, len) != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static int
http_start(fri_net *n, const char *hostport, char *err, size_t cap)
{
    char url[300];
    snprintf(url, sizeof(url), "http://%s", hostport);
    nng_url *u  = NULL;
    int      rv = nng_url_parse(&u, url);
    if (rv != 0) {
        fri_agg_seterr(err, cap, "--http %s: %s", hostport, nng_strerror(rv));
        return -1;
    }
    rv = nng_http_server_hold(&n->http, u);
    nng_url_free(u);
    if (rv != 0) {
        fri_agg_seterr(err, cap, "--http %s: %s", hostport, nng_strerror(rv));
        return -1;
    }
    const char *paths[] = {"/metrics", "/status"};
    for (int i = 0; i < 2; i++) {
        nng_http_handler *h = NULL;
        if ((rv = nng_http_handler_alloc(&h, paths[i], http_cb)) != 0 ||
            (rv = nng_http_handler_set_method(h, "GET")) != 0 ||
            (rv = nng_http_handler_set_data(h, n->a, NULL)) != 0 ||
            (rv = nng_http_server_add_handler(n->http, h)) != 0) {
            if (h != NULL) {
                nng_http_handler_free(h);
            }
            fri_agg_seterr(
                err, cap, "--http %s: %s", hostport, nng_strerror(rv));
            return -1;
        }
    }
    if ((rv = nng_http_server_start(n->http)) != 0) {
        fri_agg_seterr(err, cap, "--http %s: cannot listen: %s", hostport,
            nng_strerror(rv));
        return -1;
    }
    return 0;
}

void
fri_net_stop(fri_net *n)
{
    if (n == NULL) {
        return;
    }
    atomic_store(&n->stop, 1);
    if (n->timer_started) {
        pthread_join(n->timer, NULL);
    }
    if (n->http != NULL) {
        nng_http_server_stop(n->http);
        nng_http_server_release(n->http);
    }
    // Stop every aio first (waits for running callbacks), then free.
    for (int i = 0; i < n->n_w; i++) {
        if (n->w[i].aio != NULL) {
            nng_aio_stop(n->w[i].aio);
        }
    }
    if (n->sock_open) {
        nng_close(n->sock);
    }
    for (int i = 0; i < n->n_w; i++) {
        if (n->w[i].aio != NULL) {
            nng_aio_free(n->w[i].aio);
        }
    }
    free(n->w);
    free(n);
}

fr_err
fri_net_start(fri_net **out, fri_agg *a, const char *url, const char *http,
              int n_contexts, char *err, size_t err_cap)
{
    *out       = NULL;
    fri_net *n = calloc(1, sizeof(*n));
    if (n == NULL || n_contexts <= 0) {
        free(n);
        fri_agg_seterr(err, err_cap, "bad arguments or out of memory");
        return FR_EINVAL;
    }
    n->a           = a;
    n->reply_bound = fri_agg_reply_bound(a);
    int rv         = nng_rep0_open(&n->sock);
    if (rv != 0) {
        fri_agg_seterr(
            err, err_cap, "cannot open REP socket: %s", nng_strerror(rv));
        free(n);
        return FR_ENET;
    }
    n->sock_open = 1;
    // Updates can be several MB; the default cap (1 MiB) would drop them.
    (void) nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ,
                               fri_agg_reply_bound(a) > (64u << 20)
                                   ? fri_agg_reply_bound(a)
                                   : (size_t) 64 << 20);
    n->w = calloc((size_t) n_contexts, sizeof(*n->w));
    if (n->w == NULL) {
        fri_net_stop(n);
        fri_agg_seterr(err, err_cap, "out of memory");
        return FR_ENOMEM;
    }
    n->n_w = n_contexts;
    for (int i = 0; i < n_contexts; i++) {
        n->w[i].net = n;
        if ((rv = nng_aio_alloc(&n->w[i].aio, worker_cb, &n->w[i])) != 0 ||
            (rv = nng_ctx_open(&n->w[i].ctx, n->sock)) != 0) {
            fri_net_stop(n);
            fri_agg_seterr(
                err, err_cap, "cannot create context: %s", nng_strerror(rv));
            return FR_ENET;
        }
    }
    if ((rv = nng_listen(n->sock, url, NULL, 0)) != 0) {
        fri_net_stop(n);
        fri_agg_seterr(
            err, err_cap, "cannot listen on %s: %s", url, nng_strerror(rv));
        return FR_ENET;
    }
    if (http != NULL && http_start(n, http, err, err_cap) != 0) {
        fri_net_stop(n);
        return FR_ENET;
    }
    for (int i = 0; i < n_contexts; i++) {
        recv_next(&n->w[i]);
    }
    if (pthread_create(&n->timer, NULL, timer_main, n) != 0) {
        fri_net_stop(n);
        fri_agg_seterr(err, err_cap, "cannot start the timer thread");
        return FR_EINTERNAL;
    }
    n->timer_started = 1;
    *out             = n;
    return FR_OK;
}
