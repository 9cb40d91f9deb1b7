// Optional NNG adapter: runs a whole check-in over a REQ socket. The socket
// stays open (and dialled) across check-ins to the same URL and is
// re-created after a transport failure.
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#ifdef FR_CLIENT_WITH_NNG
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

// NNG allocates what a frame's length header declares before the client
// sees a byte, so its receive limit is what bounds a hostile or confused
// peer: it is set before every request to fri_client_reply_bound, the
// largest reply the handle accepts at that step (a few hundred bytes
// before the handshake, then what max_items/max_k/max_sa_members allow).

struct fri_nng {
    nng_socket sock;
    nng_dialer dialer;
    int        open;
    char      *url;
};

// Applies the receive limit of the current step to the connection (the
// TCP and IPC transports update live pipes; inproc has no limit, and
// fr_client_receive checks the length again).
static fr_err
set_recv_limit(fr_client *c)
{
    size_t lim = fri_client_reply_bound(c);
    int    rv  = nng_dialer_set_size(c->nng->dialer, NNG_OPT_RECVMAXSZ, lim);
    if (rv != 0 && rv != NNG_ENOTSUP) {
        return fri_client_fail(c, fri_err_from_nng(rv), "receive limit: %s",
                               nng_strerror(rv));
    }
    return FR_OK;
}

// The single place where NNG's error numbers become fr_err.
fr_err
fri_err_from_nng(int rv)
{
    switch (rv) {
    case 0:
        return FR_OK;
    case NNG_ENOMEM:
        return FR_ENOMEM;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
        return FR_EINVAL;
    case NNG_ETIMEDOUT:
        return FR_ETIMEDOUT;
    case NNG_ECLOSED:
        return FR_ECLOSED;
    case NNG_EMSGSIZE:
        return FR_ETOOBIG;
    case NNG_ESTATE:
        return FR_ESTATE;
    case NNG_EPERM:
    case NNG_EPEERAUTH:
        return FR_EDENIED;
    case NNG_ECRYPTO:
        return FR_ECRYPTO;
    case NNG_EPROTO:
        return FR_EPROTO;
    default:
        // ECONNREFUSED, ECONNRESET, EUNREACHABLE, EADDRINUSE, ...
        return FR_ENET;
    }
}

static void
close_sock(fr_client *c)
{
    struct fri_nng *t = c->nng;
    if (t == NULL) {
        return;
    }
    if (t->open) {
        nng_close(t->sock);
        t->open = 0;
    }
}

void
fri_nng_free(fr_client *c)
{
    struct fri_nng *t = c->nng;
    if (t == NULL) {
        return;
    }
    close_sock(c);
    fri_client_free(c, t->url);
    fri_client_free(c, t);
    c->nng = NULL;
}

static fr_err
ensure_socket(fr_client *c, const char *url, int timeout_ms)
{
    struct fri_nng *t  = c->nng;
    int             rv = 0;
    if (t != NULL && t->open && strcmp(t->url, url) == 0) {
        goto timeouts;
    }
    if (t == NULL) {
        t = fri_client_calloc(c, 1, sizeof *t);
        if (t == NULL) {
            return fri_client_fail(c, FR_ENOMEM, "out of memory (nng)");
        }
        c->nng = t;
    }
    close_sock(c);
    size_t len = strlen(url);
    char  *u   = fri_client_alloc(c, len + 1);
    if (u == NULL) {
        return fri_client_fail(c, FR_ENOMEM, "out of memory (nng)");
    }
    memcpy(u, url, len + 1);
    fri_client_free(c, t->url);
    t->url = u;
    rv = nng_req0_open(&t->sock);
    if (rv != 0) {
        return fri_client_fail(c, fri_err_from_nng(rv), "nng_req0_open: %s",
                               nng_strerror(rv));
    }
    t->open = 1;
    // A resent request would be a replay to the aggregator (and rejected):
    // never resend; a lost reply fails the check-in instead.
    rv = nng_socket_set_ms(t->sock, NNG_OPT_REQ_RESENDTIME,
                           NNG_DURATION_INFINITE);
    if (rv == 0) {
        // New connections start with the pre-handshake limit.
        rv = nng_socket_set_size(t->sock, NNG_OPT_RECVMAXSZ,
                                 fri_client_reply_bound(c));
    }
    if (rv == 0) {
        rv = nng_dial(t->sock, url, &t->dialer, 0);
    }
    if (rv != 0) {
        fr_err e = fri_err_from_nng(rv);
        close_sock(c);
        return fri_client_fail(c, e, "dial %s: %s", url, nng_strerror(rv));
    }
timeouts:;
    nng_duration d = timeout_ms > 0 ? (nng_duration) timeout_ms
                                    : NNG_DURATION_INFINITE;
    rv = nng_socket_set_ms(t->sock, NNG_OPT_SENDTIMEO, d);
    if (rv == 0) {
        rv = nng_socket_set_ms(t->sock, NNG_OPT_RECVTIMEO, d);
    }
    if (rv != 0) {
        return fri_client_fail(c, fri_err_from_nng(rv), "nng options: %s",
                               nng_strerror(rv));
    }
    return FR_OK;
}

fr_err
fr_client_checkin_nng(fr_client *c, const char *url, int timeout_ms)
{
    if (c == NULL) {
        return FR_EINVAL;
    }
    if (url == NULL) {
        return fri_client_fail(c, FR_EINVAL, "NULL url");
    }
    fr_err err = ensure_socket(c, url, timeout_ms);
    if (err == FR_OK) {
        err = fr_client_checkin_begin(c, 0);
    }
    if (err != FR_OK) {
        c->info.status = FR_CHECKIN_FAILED;
        return err;
    }
    for (;;) {
        size_t   cap = fr_client_request_bound(c);
        nng_msg *msg = NULL;
        int      rv  = nng_msg_alloc(&msg, cap);
        if (rv != 0) {
            err = fri_client_fail(c, FR_ENOMEM, "out of memory (request)");
            break;
        }
        size_t len = 0;
        err        = fr_client_poll(c, nng_msg_body(msg), cap, &len);
        if (err == FR_OK && len == 0 && c->session != NULL &&
            c->info.status == FR_CHECKIN_RUNNING) {
            // Secure aggregation: the phase has not started yet.
            nng_msg_free(msg);
            nng_msleep(c->info.retry_after_ms > 0 ? c->info.retry_after_ms
                                                  : 10);
            continue;
        }
        if (err != FR_OK || len == 0) {
            nng_msg_free(msg);
            break;
        }
        (void) nng_msg_realloc(msg, len); // shrinking never fails
        err = set_recv_limit(c);
        if (err != FR_OK) {
            nng_msg_free(msg);
            break;
        }
        rv = nng_sendmsg(c->nng->sock, msg, 0);
        if (rv != 0) {
            nng_msg_free(msg);
            err = fri_client_fail(c, fri_err_from_nng(rv), "send to %s: %s",
                                  url, nng_strerror(rv));
            break;
        }
        nng_msg *reply = NULL;
        rv             = nng_recvmsg(c->nng->sock, &reply, 0);
        if (rv != 0) {
            err = fri_client_fail(c, fri_err_from_nng(rv),
                                  "receive from %s: %s", url,
                                  nng_strerror(rv));
            break;
        }
        err = fr_client_receive(c, nng_msg_body(reply), nng_msg_len(reply));
        nng_msg_free(reply);
        if (err != FR_OK) {
            break;
        }
    }
    if (c->session != NULL) {
        // Transport failure mid-way: abandon the session and redial next
        // time (the REQ socket may hold a stale request).
        char msg[FRI_CLIENT_ERRMSG_CAP];
        memcpy(msg, c->errmsg, sizeof msg);
        fri_session_free(c);
        c->info.status = FR_CHECKIN_FAILED;
        memcpy(c->errmsg, msg, sizeof msg);
        close_sock(c);
        if (err == FR_OK) {
            err = FR_EINTERNAL;
        }
    }
    return err;
}

#else // !FR_CLIENT_WITH_NNG

void
fri_nng_free(fr_client *c)
{
    (void) c;
}

fr_err
fr_client_checkin_nng(fr_client *c, const char *url, int timeout_ms)
{
    (void) url;
    (void) timeout_ms;
    if (c == NULL) {
        return FR_EINVAL;
    }
    return fri_client_fail(c, FR_ESTATE, "built without NNG support");
}

#endif
