// fr_client_checkin_nng over inproc:// against the in-test aggregator
// served from a REP socket on a thread.
#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>

#include "fakeagg.h"
#include "testutil.h"

typedef struct server {
    fake_agg   agg;
    nng_socket sock;
    int        drop_first; // swallow the first request (tests timeouts)
} server;

static void *
serve(void *arg)
{
    server *s = arg;
    for (;;) {
        nng_msg *req = NULL;
        if (nng_recvmsg(s->sock, &req, 0) != 0) {
            return NULL; // closed
        }
        if (s->drop_first) {
            s->drop_first = 0;
            nng_msg_free(req);
            continue;
        }
        uint8_t *rep = NULL;
        size_t   rl  = 0;
        fr_err   e   = fake_agg_handle(&s->agg, nng_msg_body(req),
                                       nng_msg_len(req), &rep, &rl);
        nng_msg_free(req);
        if (e != FR_OK) {
            continue;
        }
        nng_msg *m = NULL;
        if (nng_msg_alloc(&m, 0) == 0 && nng_msg_append(m, rep, rl) == 0) {
            if (nng_sendmsg(s->sock, m, 0) != 0) {
                nng_msg_free(m);
            }
        }
        free(rep);
    }
}

Test(client_nng, checkins_over_inproc, .timeout = 60)
{
    server s;
    memset(&s, 0, sizeof s);
    fake_agg_init(&s.agg, 1500, 16, 3);
    cr_assert_eq(nng_rep0_open(&s.sock), 0);
    nng_socket_set_size(s.sock, NNG_OPT_RECVMAXSZ, 64 << 20);
    cr_assert_eq(nng_listen(s.sock, "inproc://frclient", NULL, 0), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, serve, &s), 0);

    fr_client_config cfg;
    fr_client_config_init(&cfg);
    fake_agg_pk(&s.agg, cfg.server_pk);
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    for (uint32_t i = 0; i < 40; i++) {
        cr_assert_eq(fr_client_add(c, i * 31, 4.0f, 0), FR_OK);
    }
    // The model (1500 x 16 floats, ~100 KB) crosses NNG in one reply.
    cr_assert_eq(fr_client_checkin_nng(c, "inproc://frclient", 5000), FR_OK,
                 "%s", fr_client_errmsg(c));
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_CONTRIBUTED);
    cr_assert(info.bytes_down > 1500 * 17 * 4);
    s.agg.task.round_id = 8;
    cr_assert_eq(fr_client_checkin_nng(c, "inproc://frclient", 5000), FR_OK,
                 "%s", fr_client_errmsg(c));
    cr_assert_eq(s.agg.n_update, 2);

    // A lost reply times out (no resend) and the next check-in redials.
    s.drop_first = 1;
    cr_assert_eq(fr_client_checkin_nng(c, "inproc://frclient", 300),
                 FR_ETIMEDOUT);
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_FAILED);
    s.agg.task.round_id = 9;
    cr_assert_eq(fr_client_checkin_nng(c, "inproc://frclient", 5000), FR_OK,
                 "%s", fr_client_errmsg(c));
    // Nobody listening: a dial error, not a crash.
    fr_err e = fr_client_checkin_nng(c, "inproc://nobody", 200);
    cr_assert(e == FR_ENET || e == FR_ETIMEDOUT, "got %s", fr_errname(e));
    fr_client_destroy(c);
    nng_close(s.sock);
    pthread_join(th, NULL);
    fake_agg_free(&s.agg);
}
