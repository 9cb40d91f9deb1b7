// In-process end to end: real client handles (libfedrec-client core,
// poll/receive) against fri_agg_handle on synthetic ratings; the item
// model's training RMSE must drop. Also wire-level refusals: garbage,
// replayed frames, non-enrolled keys, unknown sessions.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "dataset.h"
#include "e2e_harness.h"
#include "e2e_rmse.h"
#include "fedrec/client.h"
#include "mf.h"
#include "msg.h"

#define NU 40
#define NIT 30
#define KK 3

typedef e2e_world world;

static void
world_init(world *w, uint32_t cpr, int allow_all_but_last)
{
    memset(w, 0, sizeof(*w));
    e2e_synth(&w->d, &w->by_user, NU, NIT, 0.4, 11);

    // Clients first, to enrol their keys.
    uint8_t *allow = malloc((size_t) NU * FRI_AGG_KEYBYTES);
    cr_assert_not_null(allow);
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = w->d.n_items;
    c.k                 = KK;
    c.clients_per_round = cpr;
    c.min_clients       = 1;
    c.round_deadline_ms = 5000;
    c.has_identity      = 1;
    memset(c.identity_seed, 7, sizeof(c.identity_seed));
    char err[256];
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    e2e_clients_create(w, NU, 100, 1, 0.0f);
    for (uint32_t u = 0; u < NU; u++) {
        uint8_t pk[FR_PUBLICKEYBYTES];
        fr_client_public_key(w->c[u], pk);
        memcpy(allow + (size_t) u * FRI_AGG_KEYBYTES, pk, FRI_AGG_KEYBYTES);
    }
    if (allow_all_but_last) {
        // Same identity (same pinned key), now enforcing an allow-list
        // without the last client.
        fri_agg_destroy(w->a);
        c.allow   = allow;
        c.n_allow = NU - 1;
        memset(c.identity_seed, 7, sizeof(c.identity_seed));
        cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK,
                     "%s", err);
    }
    free(allow);
    e2e_reply_alloc(w);
}

Test(agg_e2e, clients_train_and_rmse_drops)
{
    world w;
    world_init(&w, NU, 0);
    double r0 = e2e_train_rmse(&w, KK);
    double r1 = 0, rl = 0;
    for (int round = 0; round < 6; round++) {
        uint64_t now = (uint64_t) round * 100;
        for (uint32_t u = 0; u < NU; u++) {
            fr_checkin_status st = e2e_world_checkin(&w, u, now);
            cr_assert_eq(st, FR_CHECKIN_CONTRIBUTED, "round %d user %u: %s",
                         round, u, fr_client_errmsg(w.c[u]));
        }
        fri_agg_metrics m;
        fri_agg_metrics_get(w.a, &m);
        cr_assert_eq(m.model_version, (uint64_t) round + 1);
        rl = e2e_train_rmse(&w, KK);
        if (round == 0) {
            r1 = rl;
        }
    }
    cr_assert(rl < r0 - 0.1, "RMSE %f -> %f (after 1 round %f)", r0, rl, r1);
    cr_assert(rl <= r1 + 1e-3, "RMSE rose: %f after round 1, %f at end", r1,
              rl);
    cr_assert(rl < 0.72, "final RMSE %f", rl);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.updates_accepted, 6 * NU);
    cr_assert_eq(m.sessions, 0, "sessions leak: %llu",
                 (unsigned long long) m.sessions);
    e2e_world_free(&w);
}

Test(agg_e2e, non_members_wait_and_round_completes)
{
    world w;
    world_init(&w, 5, 0);
    int contributed = 0, waiting = 0;
    for (uint32_t u = 0; u < 8; u++) {
        fr_checkin_status st = e2e_world_checkin(&w, u, 10);
        contributed += st == FR_CHECKIN_CONTRIBUTED;
        waiting += st == FR_CHECKIN_NOT_SELECTED;
    }
    // Five fill the cohort and close round 1; the sixth to eighth join
    // round 2 (which is open at once).
    cr_assert_eq(contributed, 8, "contributed %d waiting %d", contributed,
                 waiting);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.model_version, 1);
    cr_assert_eq(m.reported, 3);
    e2e_world_free(&w);
}

Test(agg_e2e, wire_refusals)
{
    world w;
    world_init(&w, NU, 1);
    size_t rl = 0;
    // Garbage: a plain ERROR, counted as malformed.
    uint8_t junk[64];
    memset(junk, 0x5a, sizeof(junk));
    cr_assert_eq(fri_agg_handle(w.a, 0, junk, sizeof(junk), w.reply,
                                w.reply_cap, &rl),
                 FR_OK);
    cr_assert(rl > 0);
    // The non-enrolled client is refused in the handshake.
    cr_assert_eq(e2e_world_checkin(&w, NU - 1, 0), FR_CHECKIN_FAILED);
    // A replayed frame does not open: capture client 0's CHECKIN.
    fr_client *c = w.c[0];
    cr_assert_eq(fr_client_checkin_begin(c, 0), FR_OK);
    size_t   cap = fr_client_request_bound(c);
    uint8_t *buf = malloc(cap), *saved = NULL;
    size_t   len = 0, saved_len = 0;
    for (int step = 0; step < 10; step++) {
        cr_assert_eq(fr_client_poll(c, buf, cap, &len), FR_OK);
        if (len == 0) {
            break;
        }
        if (step == 1) { // the first sealed request
            saved     = malloc(len);
            saved_len = len;
            memcpy(saved, buf, len);
        }
        cr_assert_eq(fri_agg_handle(w.a, 0, buf, len, w.reply, w.reply_cap,
                                    &rl),
                     FR_OK);
        cr_assert_eq(fr_client_receive(c, w.reply, rl), FR_OK,
                     "%s", fr_client_errmsg(c));
    }
    cr_assert_not_null(saved);
    cr_assert_eq(fri_agg_handle(w.a, 0, saved, saved_len, w.reply,
                                w.reply_cap, &rl),
                 FR_OK);
    // Everyone else completes the round.
    for (uint32_t u = 1; u < NU - 1; u++) {
        cr_assert_eq(e2e_world_checkin(&w, u, 1), FR_CHECKIN_CONTRIBUTED);
    }
    fri_agg_tick(w.a, 6000);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.model_version, 1);
    cr_assert_eq(m.rejected[FRI_REJ_DENIED], 1);
    cr_assert(m.rejected[FRI_REJ_MALFORMED] >= 1);
    cr_assert(m.rejected[FRI_REJ_REPLAY] + m.rejected[FRI_REJ_NO_SESSION] >= 1,
              "replay not refused");
    free(buf);
    free(saved);
    e2e_world_free(&w);
}

// A model-only check-in (fr_client_model_begin) of client c.
static fr_checkin_status
model_read(world *w, fr_client *c, uint64_t now)
{
    cr_assert_eq(fr_client_model_begin(c, now), FR_OK);
    size_t   cap = fr_client_request_bound(c);
    uint8_t *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (int step = 0; step < 10; step++) {
        size_t len = 0;
        if (fr_client_poll(c, buf, cap, &len) != FR_OK || len == 0) {
            break;
        }
        size_t rl = 0;
        cr_assert_eq(fri_agg_handle(w->a, now, buf, len, w->reply,
                                    w->reply_cap, &rl),
                     FR_OK);
        if (fr_client_receive(c, w->reply, rl) != FR_OK) {
            break;
        }
    }
    free(buf);
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    return info.status;
}

Test(agg_e2e, model_only_checkins_read_without_joining_the_cohort)
{
    world w;
    world_init(&w, 3, 0); // a fixed cohort of three
    float s0 = 0, s1 = 0;
    // Readers 3..5 come first: were they enrolled they would fill the
    // cohort and leave clients 0..2 without a task.
    for (uint32_t u = 3; u < 6; u++) {
        cr_assert_eq(model_read(&w, w.c[u], 10), FR_CHECKIN_MODEL_ONLY,
                     "reader %u: %s", u, fr_client_errmsg(w.c[u]));
    }
    cr_assert_eq(fr_client_predict(w.c[3], 0, &s0), FR_OK);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.model_reads, 3);
    cr_assert_eq(m.checkins, 0);
    cr_assert_eq(m.cohort, 0);
    cr_assert_eq(m.sessions, 0, "reader sessions linger");
    for (uint32_t u = 0; u < 3; u++) {
        cr_assert_eq(e2e_world_checkin(&w, u, 20), FR_CHECKIN_CONTRIBUTED,
                     "client %u: %s", u, fr_client_errmsg(w.c[u]));
    }
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.model_version, 1, "the cohort of three closed round 1");
    cr_assert_eq(m.checkins, 3);
    // The next read brings the new model; a read of a model the device
    // holds costs no download.
    cr_assert_eq(model_read(&w, w.c[3], 30), FR_CHECKIN_MODEL_ONLY);
    fr_checkin_info info;
    fr_client_checkin_info_get(w.c[3], &info);
    cr_assert_eq(info.model_version, 1);
    cr_assert_eq(fr_client_predict(w.c[3], 0, &s1), FR_OK);
    cr_assert_neq(s0, s1);
    uint64_t down = info.bytes_down;
    cr_assert_eq(model_read(&w, w.c[3], 40), FR_CHECKIN_MODEL_ONLY);
    fr_client_checkin_info_get(w.c[3], &info);
    // Only the check-in's own frames: at least the smallest model frame
    // (I8C, without a VB block) less than the read that brought it.
    const size_t frame = fri_model_size(FRI_MENC_I8C, KK, w.d.n_items);
    cr_assert(frame > 0);
    cr_assert_leq(info.bytes_down + frame, down, "%llu vs %llu",
        (unsigned long long)info.bytes_down, (unsigned long long)down);
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.model_reads, 5);
    cr_assert_eq(m.checkins, 3);
    cr_assert_eq(m.updates_accepted, 3);
    cr_assert_eq(m.sessions, 0);
    e2e_world_free(&w);
}
