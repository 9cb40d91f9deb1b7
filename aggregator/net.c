#include "net.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/http/http.h>

#include <sodium.h>

#include "errbuf.h"
#include "msg.h"

typedef struct worker {
    struct fri_net *net;
    nng_aio        *aio;
    nng_ctx         ctx;
    int             sending;
} worker;

// A connection (NNG pipe) from its arrival until its removal.
typedef struct conn {
    struct conn *next;
    nng_pipe     pipe;
    uint64_t     added_ms;
    int          greeted; // a request of it got a WELCOME or sealed reply
    int          closing; // handshake timeout hit, close requested
} conn;

#define CONN_BUCKETS 4096u
#define RATE_SLOTS 4096u

// Token bucket of one remote address (IP, without the port).
typedef struct rate_slot {
    uint8_t  addr[17]; // family byte + up to 16 address bytes
    double   tokens;
    uint64_t last_ms;
} rate_slot;

struct fri_net {
    fri_agg          *a;
    nng_socket        sock;
    int               sock_open;
    worker           *w;
    int               n_w;
    fri_net_opts      o;
    pthread_t         timer;
    int               timer_started;
    atomic_int        stop;
    nng_http_server  *http;

    pthread_mutex_t   conn_mtx;
    conn             *conns[CONN_BUCKETS];
    uint32_t          n_conns;
    atomic_uint_fast64_t refused_conns;  // over max_connections
    atomic_uint_fast64_t timed_out;      // no handshake in time
    atomic_uint_fast64_t rate_limited;   // HELLOs over the address rate

    pthread_mutex_t   rate_mtx;
    rate_slot        *rate;              // RATE_SLOTS, NULL when off
    uint8_t           rate_key[crypto_shorthash_KEYBYTES];
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

// ---- connections ----------------------------------------------------------

static uint32_t
conn_bucket(nng_pipe p)
{
    return (uint32_t) nng_pipe_id(p) * 2654435761u % CONN_BUCKETS;
}

// Pipe events. ADD_PRE enforces the connection cap (closing a pipe there
// refuses it before the protocol sees it) and starts the handshake clock;
// REM_POST forgets it.
static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    fri_net *n = arg;
    uint32_t b = conn_bucket(p);
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        pthread_mutex_lock(&n->conn_mtx);
        int full = n->o.max_connections > 0 &&
                   n->n_conns >= n->o.max_connections;
        conn *c = full ? NULL : calloc(1, sizeof(*c));
        if (c != NULL) {
            c->pipe     = p;
            c->added_ms = fri_now_ms();
            c->next     = n->conns[b];
            n->conns[b] = c;
            n->n_conns++;
        }
        pthread_mutex_unlock(&n->conn_mtx);
        if (c == NULL) {
            atomic_fetch_add(&n->refused_conns, 1);
            nng_pipe_close(p);
        }
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        pthread_mutex_lock(&n->conn_mtx);
        conn **pp = &n->conns[b];
        while (*pp != NULL && nng_pipe_id((*pp)->pipe) != nng_pipe_id(p)) {
            pp = &(*pp)->next;
        }
        if (*pp != NULL) {
            conn *c = *pp;
            *pp     = c->next;
            n->n_conns--;
            free(c);
        }
        pthread_mutex_unlock(&n->conn_mtx);
    }
}

static void
conn_greeted(fri_net *n, nng_pipe p)
{
    pthread_mutex_lock(&n->conn_mtx);
    conn *c = n->conns[conn_bucket(p)];
    while (c != NULL && nng_pipe_id(c->pipe) != nng_pipe_id(p)) {
        c = c->next;
    }
    if (c != NULL) {
        c->greeted = 1;
    }
    pthread_mutex_unlock(&n->conn_mtx);
}

// Closes connections that got no handshake through in time: an idle or
// half-open connection costs a file descriptor and buffers for nothing.
static void
conn_sweep(fri_net *n, uint64_t now)
{
    if (n->o.handshake_timeout_ms == 0) {
        return;
    }
    nng_pipe victims[64];
    int      nv = 0;
    pthread_mutex_lock(&n->conn_mtx);
    for (uint32_t b = 0; b < CONN_BUCKETS && nv < 64; b++) {
        for (conn *c = n->conns[b]; c != NULL && nv < 64; c = c->next) {
            if (!c->greeted && !c->closing &&
                now >= c->added_ms + n->o.handshake_timeout_ms) {
                c->closing   = 1;
                victims[nv++] = c->pipe;
            }
        }
    }
    pthread_mutex_unlock(&n->conn_mtx);
    // Outside the lock: closing runs REM_POST, which takes it.
    for (int i = 0; i < nv; i++) {
        atomic_fetch_add(&n->timed_out, 1);
        nng_pipe_close(victims[i]);
    }
}

// ---- per-address HELLO rate -----------------------------------------------

// Whether a HELLO from pipe p may be handled now (token bucket per remote
// IP address; a direct-mapped table, so many addresses can only reset
// each other's buckets, never exhaust memory).
static int
rate_ok(fri_net *n, nng_pipe p)
{
    if (n->rate == NULL) {
        return 1;
    }
    nng_sockaddr sa;
    uint8_t      key[17];
    memset(key, 0, sizeof(key));
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
        return 1; // not an IP transport (ipc): nothing to key on
    }
    if (sa.s_family == NNG_AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &sa.s_in.sa_addr, 4);
    } else if (sa.s_family == NNG_AF_INET6) {
        key[0] = 6;
        memcpy(key + 1, sa.s_in6.sa_addr, 16);
    } else {
        return 1;
    }
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, sizeof(key), n->rate_key);
    uint32_t  i   = ((uint32_t) h[0] | (uint32_t) h[1] << 8) % RATE_SLOTS;
    uint64_t  now = fri_now_ms();
    double    cap = n->o.hello_burst > 0 ? n->o.hello_burst : 1;
    pthread_mutex_lock(&n->rate_mtx);
    rate_slot *r = &n->rate[i];
    if (memcmp(r->addr, key, sizeof(key)) != 0) {
        memcpy(r->addr, key, sizeof(key));
        r->tokens  = cap;
        r->last_ms = now;
    }
    r->tokens += (double) (now - r->last_ms) * n->o.hello_rate / 1000.0;
    r->tokens  = r->tokens > cap ? cap : r->tokens;
    r->last_ms = now;
    int ok     = r->tokens >= 1.0;
    if (ok) {
        r->tokens -= 1.0;
    }
    pthread_mutex_unlock(&n->rate_mtx);
    return ok;
}

static int
is_hello(const uint8_t *b, size_t len)
{
    fri_hdr h;
    return fri_hdr_get(&h, b, len) == FR_OK && h.type == FRI_T_HELLO &&
           !(h.flags & FRI_F_SEALED);
}

// A reply that proves the connection's peer got through a handshake.
static int
is_greeting(const uint8_t *b, size_t len)
{
    fri_hdr h;
    return fri_hdr_get(&h, b, len) == FR_OK &&
           (h.type == FRI_T_WELCOME || (h.flags & FRI_F_SEALED));
}

// The context state machine: a received request is handled on the NNG
// callback thread and the reply sent on the same context. Round closes
// are handed to the aggregator's closer thread (cfg.closer_thread), so a
// callback never waits for a solve or a checkpoint.
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
    nng_msg *req  = nng_aio_get_msg(w->aio);
    nng_pipe pipe = nng_msg_get_pipe(req);
    if (is_hello(nng_msg_body(req), nng_msg_len(req)) &&
        !rate_ok(w->net, pipe)) {
        // No reply: the client's REQ resend is its back-off.
        atomic_fetch_add(&w->net->rate_limited, 1);
        nng_msg_free(req);
        recv_next(w);
        return;
    }
    nng_msg *rep = NULL;
    // Sized to the bound (which grows with the catalog); pages never
    // written are never touched.
    if (nng_msg_alloc(&rep, fri_agg_reply_bound(w->net->a)) != 0) {
        nng_msg_free(req);
        recv_next(w);
        return;
    }
    size_t rlen = 0;
    // The message is ours: a sealed request is opened in place.
    fr_err e = fri_agg_handle_inplace(w->net->a, fri_now_ms(),
                                      nng_msg_body(req), nng_msg_len(req),
                                      nng_msg_body(rep), nng_msg_len(rep),
                                      &rlen);
    nng_msg_free(req);
    if (e != FR_OK || rlen == 0) {
        // No reply possible: the client's REQ resend/timeout handles it.
        nng_msg_free(rep);
        recv_next(w);
        return;
    }
    if (is_greeting(nng_msg_body(rep), rlen)) {
        conn_greeted(w->net, pipe);
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
        uint64_t now = fri_now_ms();
        fri_agg_tick(n->a, now);
        conn_sweep(n, now);
        nng_msleep(100);
    }
    return NULL;
}

static void
http_cb(nng_aio *aio)
{
    nng_http_req     *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h   = nng_aio_get_input(aio, 1);
    fri_net          *n   = nng_http_handler_get_data(h);
    const char       *uri = nng_http_req_get_uri(req);
    fri_agg_metrics   m;
    fri_net_stats     ns;
    char              buf[8192];
    size_t            len = 0;
    fri_agg_metrics_get(n->a, &m);
    fri_net_stats_get(n, &ns);
    int    json = strncmp(uri, "/status", 7) == 0;
    fr_err rv   = json ? fri_agg_metrics_json(&m, buf, sizeof(buf), &len)
                       : fri_agg_metrics_prometheus(&m, buf, sizeof(buf),
                                                    &len);
    if (rv == FR_OK) {
        rv = fri_net_stats_append(&ns, json, buf, sizeof(buf), &len);
    }
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
            (rv = nng_http_handler_set_data(h, n, NULL)) != 0 ||
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
    for (uint32_t b = 0; b < CONN_BUCKETS; b++) {
        while (n->conns[b] != NULL) {
            conn *c     = n->conns[b];
            n->conns[b] = c->next;
            free(c);
        }
    }
    pthread_mutex_destroy(&n->conn_mtx);
    pthread_mutex_destroy(&n->rate_mtx);
    free(n->rate);
    free(n->w);
    free(n);
}

void
fri_net_opts_init(fri_net_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->n_contexts           = 128;
    o->max_connections      = 20000;
    o->handshake_timeout_ms = 10000;
    o->hello_rate           = 1000.0;
    o->hello_burst          = 2000;
    o->max_frame            = (size_t) 64 << 20;
}

void
fri_net_stats_get(fri_net *n, fri_net_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&n->conn_mtx);
    st->connections = n->n_conns;
    pthread_mutex_unlock(&n->conn_mtx);
    st->refused_connections = atomic_load(&n->refused_conns);
    st->handshake_timeouts  = atomic_load(&n->timed_out);
    st->hellos_rate_limited = atomic_load(&n->rate_limited);
}

fr_err
fri_net_stats_append(const fri_net_stats *st, int json, char *dst,
                     size_t cap, size_t *len)
{
    size_t at = *len;
    int    w;
    int    nl = 0; // the JSON page ends with a newline
    if (json) {
        // Reopen the object: its closing brace ends the page.
        nl = at > 0 && dst[at - 1] == '\n';
        at -= (size_t) nl;
        if (at == 0 || dst[at - 1] != '}') {
            return FR_EINVAL;
        }
        at--;
        w = snprintf(dst + at, cap - at,
                     ",\"transport\":{\"connections\":%llu,"
                     "\"connections_refused_total\":%llu,"
                     "\"handshake_timeouts_total\":%llu,"
                     "\"hellos_rate_limited_total\":%llu}}%s",
                     (unsigned long long) st->connections,
                     (unsigned long long) st->refused_connections,
                     (unsigned long long) st->handshake_timeouts,
                     (unsigned long long) st->hellos_rate_limited,
                     nl ? "\n" : "");
    } else {
        w = snprintf(dst + at, cap - at,
                     "# TYPE fedrec_connections gauge\n"
                     "fedrec_connections %llu\n"
                     "# TYPE fedrec_connections_refused_total counter\n"
                     "fedrec_connections_refused_total %llu\n"
                     "# TYPE fedrec_handshake_timeouts_total counter\n"
                     "fedrec_handshake_timeouts_total %llu\n"
                     "# TYPE fedrec_hellos_rate_limited_total counter\n"
                     "fedrec_hellos_rate_limited_total %llu\n",
                     (unsigned long long) st->connections,
                     (unsigned long long) st->refused_connections,
                     (unsigned long long) st->handshake_timeouts,
                     (unsigned long long) st->hellos_rate_limited);
    }
    if (w < 0 || (size_t) w >= cap - at) {
        // Leave the page as it was (snprintf wrote a truncated tail).
        if (json) {
            dst[at++] = '}';
            if (nl && at < cap) {
                dst[at++] = '\n';
            }
        }
        if (at < cap) {
            dst[at] = '\0';
        }
        return FR_ENOSPC;
    }
    *len = at + (size_t) w;
    return FR_OK;
}

fr_err
fri_net_start(fri_net **out, fri_agg *a, const char *url, const char *http,
              const fri_net_opts *o, char *err, size_t err_cap)
{
    *out       = NULL;
    fri_net *n = calloc(1, sizeof(*n));
    if (n == NULL || o == NULL || o->n_contexts <= 0 || o->max_frame == 0) {
        free(n);
        fri_agg_seterr(err, err_cap, "bad arguments or out of memory");
        return FR_EINVAL;
    }
    int n_contexts = o->n_contexts;
    n->o           = *o;
    n->a           = a;
    pthread_mutex_init(&n->conn_mtx, NULL);
    pthread_mutex_init(&n->rate_mtx, NULL);
    if (o->hello_rate > 0) {
        n->rate = calloc(RATE_SLOTS, sizeof(*n->rate));
        if (n->rate == NULL) {
            fri_net_stop(n);
            fri_agg_seterr(err, err_cap, "out of memory");
            return FR_ENOMEM;
        }
        crypto_shorthash_keygen(n->rate_key);
    }
    int rv = nng_rep0_open(&n->sock);
    if (rv != 0) {
        fri_agg_seterr(
            err, err_cap, "cannot open REP socket: %s", nng_strerror(rv));
        fri_net_stop(n);
        return FR_ENET;
    }
    n->sock_open = 1;
    // NNG allocates what a length header declares before handing the
    // message over: cap it at the largest frame accepted (plus the REQ
    // backtrace NNG counts in), so an oversized header drops the
    // connection without the allocation.
    (void) nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ, o->max_frame + 64);
    // Half-open connections (a peer that vanished) are found and closed.
    (void) nng_socket_set_bool(n->sock, NNG_OPT_TCP_KEEPALIVE, true);
    if ((rv = nng_pipe_notify(n->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, n)) !=
            0 ||
        (rv = nng_pipe_notify(n->sock, NNG_PIPE_EV_REM_POST, pipe_cb, n)) !=
            0) {
        fri_net_stop(n);
        fri_agg_seterr(
            err, err_cap, "cannot watch connections: %s", nng_strerror(rv));
        return FR_ENET;
    }
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
