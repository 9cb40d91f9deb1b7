// Check-in state machine against an in-test aggregator (fakeagg.h) that
// uses proto's server-side functions: handshake, TASK, signed MODEL, ACK.
#include <criterion/criterion.h>
#include <math.h>

#include "fakeagg.h"
#include "linalg.h"
#include "testutil.h"

static fr_client *
client_for(const fake_agg *a, uint32_t max_items)
{
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    fake_agg_pk(a, cfg.server_pk);
    cfg.seed = 5;
    if (max_items) {
        cfg.max_items = max_items;
    }
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    for (uint32_t i = 0; i < 30; i++) {
        cr_assert_eq(fr_client_add(c, i * 5, (float) (1 + i % 5), i), FR_OK);
    }
    return c;
}

// Runs one check-in to its end; returns the first error.
static fr_err
run(fr_client *c, fake_agg *a)
{
    fr_err e = fr_client_checkin_begin(c, 0);
    if (e != FR_OK) {
        return e;
    }
    for (int i = 0; i < 10; i++) {
        size_t   cap = fr_client_request_bound(c);
        uint8_t *buf = malloc(cap);
        size_t   len = 0;
        e            = fr_client_poll(c, buf, cap, &len);
        if (e != FR_OK || len == 0) {
            free(buf);
            return e;
        }
        cr_assert(len <= cap);
        uint8_t *rep = NULL;
        size_t   rl  = 0;
        fr_err   ae  = fake_agg_handle(a, buf, len, &rep, &rl);
        free(buf);
        cr_assert_eq(ae, FR_OK, "aggregator: %s", fr_errname(ae));
        e = fr_client_receive(c, rep, rl);
        free(rep);
        if (e != FR_OK) {
            return e;
        }
    }
    cr_assert_fail("check-in did not end");
    return FR_EINTERNAL;
}

Test(client_checkin, als_round_and_cached_model)
{
    fake_agg a;
    fake_agg_init(&a, 200, 6, 1);
    fr_client *c = client_for(&a, 0);
    cr_assert_eq(run(c, &a), FR_OK, "%s", fr_client_errmsg(c));
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_CONTRIBUTED);
    cr_assert_eq(info.round, 7);
    cr_assert_eq(info.model_version, 3);
    cr_assert(info.bytes_up > 0 && info.bytes_down > 200 * 7 * 4);
    cr_assert_eq(a.n_get_model, 1);
    cr_assert_eq(a.checkin_model_version, 0);
    // The update: one row per rating, the Gram of [p; 1] and (sum, count).
    cr_assert_eq(a.upd_kind, FRI_UPD_ALS);
    cr_assert_eq(a.upd_rows, 30);
    cr_assert_eq(a.upd_width, 7);
    cr_assert_eq(a.upd_extra, fri_packed_len(7) + 2);
    cr_assert_float_eq(a.upd_weight, 30.0f, 0);
    double sum = 0;
    for (uint32_t i = 0; i < 30; i++) {
        sum += 1 + i % 5;
        cr_assert_eq(a.upd_items[i], i * 5);
    }
    cr_assert_float_eq(a.upd_extra_vals[a.upd_extra - 2], (float) sum, 1e-3);
    cr_assert_float_eq(a.upd_extra_vals[a.upd_extra - 1], 30.0f, 0);
    // Gram[k][k] = 1 * 1; Gram[0][k] = p_0. Row j = [p; 1] * residual.
    cr_assert_float_eq(a.upd_extra_vals[fri_packed_index(7, 6, 6)], 1.0f,
                       1e-6);
    cr_assert_float_eq(a.upd_extra_vals[fri_packed_index(7, 0, 6)], c->p[0],
                       1e-6);
    float resid = c->values[3] - 3.5f - c->bu;
    cr_assert_float_eq(a.upd_row_vals[3 * 7 + 6], resid, 1e-4);
    cr_assert_float_eq(a.upd_row_vals[3 * 7 + 2], c->p[2] * resid, 1e-4);
    // The user vector is fitted: recommendations work right away.
    uint32_t items[5];
    float    scores[5];
    size_t   n;
    cr_assert_eq(fr_client_recommend(c, items, scores, 5, &n), FR_OK);
    cr_assert_eq(n, 5);
    // Second check-in, same model version: no GET_MODEL.
    a.task.round_id = 8;
    cr_assert_eq(run(c, &a), FR_OK, "%s", fr_client_errmsg(c));
    cr_assert_eq(a.n_get_model, 1);
    cr_assert_eq(a.checkin_model_version, 3);
    cr_assert_eq(a.n_hello, 2);
    fr_client_destroy(c);
    fake_agg_free(&a);
}

Test(client_checkin, not_selected_reports_retry_after)
{
    fake_agg a;
    fake_agg_init(&a, 50, 4, 2);
    a.task.status         = FRI_TASK_NONE;
    a.task.retry_after_ms = 1234;
    fr_client *c          = client_for(&a, 0);
    cr_assert_eq(run(c, &a), FR_OK);
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_NOT_SELECTED);
    cr_assert_eq(info.retry_after_ms, 1234);
    cr_assert_eq(a.n_get_model, 0);
    cr_assert_eq(a.n_update, 0);
    fr_client_destroy(c);
    fake_agg_free(&a);
}

Test(client_checkin, rejects_bad_model_signature_then_recovers)
{
    fake_agg a;
    fake_agg_init(&a, 80, 4, 3);
    a.bad_signature = 1;
    fr_client *c    = client_for(&a, 0);
    cr_assert_eq(run(c, &a), FR_ECRYPTO);
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_FAILED);
    cr_assert_null(c->model, "an unverified model was installed");
    cr_assert_eq(a.n_update, 0);
    cr_assert(strstr(fr_client_errmsg(c), "signature") != NULL, "%s",
              fr_client_errmsg(c));
    // The handle stays usable.
    a.bad_signature = 0;
    cr_assert_eq(run(c, &a), FR_OK, "%s", fr_client_errmsg(c));
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_CONTRIBUTED);
    fr_client_destroy(c);
    fake_agg_free(&a);
}

Test(client_checkin, rejects_model_above_max_items)
{
    fake_agg a;
    fake_agg_init(&a, 300, 4, 4);
    fr_client *c = client_for(&a, 200);
    cr_assert_eq(run(c, &a), FR_ETOOBIG);
    cr_assert_null(c->model);
    cr_assert_eq(a.n_update, 0);
    fr_client_destroy(c);
    fake_agg_free(&a);
}

Test(client_checkin, quantized_models_are_accepted)
{
    fake_agg a;
    fake_agg_init(&a, 100, 8, 5);
    a.enc        = FRI_MENC_F16;
    fr_client *c = client_for(&a, 0);
    cr_assert_eq(run(c, &a), FR_OK, "%s", fr_client_errmsg(c));
    cr_assert_float_eq(c->model->Q[17], a.Q[17], 1e-3);
    fr_client_destroy(c);
    fake_agg_free(&a);
}

Test(client_checkin, wrong_pinned_key_fails_handshake)
{
    fake_agg a;
    fake_agg_init(&a, 50, 4, 6);
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    fake_agg_pk(&a, cfg.server_pk);
    cfg.server_pk[3] ^= 1;
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    fr_err e = run(c, &a);
    cr_assert(e == FR_ECRYPTO || e == FR_EPROTO, "got %s", fr_errname(e));
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_FAILED);
    fr_client_destroy(c);
    fake_agg_free(&a);
}

Test(client_checkin, error_reply_fails_with_its_code)
{
    fake_agg a;
    fake_agg_init(&a, 60, 4, 7);
    a.reply_error = FR_ELATE;
    fr_client *c  = client_for(&a, 0);
    cr_assert_eq(run(c, &a), FR_ELATE);
    cr_assert(strstr(fr_client_errmsg(c), "round closed") != NULL, "%s",
              fr_client_errmsg(c));
    // Next check-in succeeds.
    a.reply_error = 0;
    cr_assert_eq(run(c, &a), FR_OK, "%s", fr_client_errmsg(c));
    fr_client_destroy(c);
    fake_agg_free(&a);
}

Test(client_checkin, gradient_and_implicit_tasks)
{
    fake_agg a;
    fake_agg_init(&a, 90, 4, 8);
    a.task.algo        = FRI_ALGO_GRAD;
    a.task.update_kind = FRI_UPD_GRAD;
    fr_client *c       = client_for(&a, 0);
    cr_assert_eq(run(c, &a), FR_OK, "%s", fr_client_errmsg(c));
    cr_assert_eq(a.upd_kind, FRI_UPD_GRAD);
    cr_assert_eq(a.upd_extra, 2);
    cr_assert_eq(a.upd_rows, 18); // items 0..85 step 5 inside 90 items
    fr_client_destroy(c);
    fake_agg_free(&a);

    fake_agg_init(&a, 200, 4, 9);
    a.task.algo        = FRI_ALGO_IALS;
    a.task.update_kind = FRI_UPD_ALS;
    a.task.alpha       = 2.0f;
    c                  = client_for(&a, 0);
    cr_assert_eq(run(c, &a), FR_OK, "%s", fr_client_errmsg(c));
    cr_assert_eq(a.upd_extra, fri_packed_len(5) + 2);
    // Row j = [c_j - 1, c_j p]: c_j - 1 = alpha * value.
    cr_assert_float_eq(a.upd_row_vals[0], 2.0f * c->values[0], 1e-5);
    fr_client_destroy(c);
    fake_agg_free(&a);
}

Test(client_checkin, clip_bounds_update_norm)
{
    fake_agg a;
    fake_agg_init(&a, 90, 4, 10);
    a.task.algo        = FRI_ALGO_GRAD;
    a.task.update_kind = FRI_UPD_GRAD;
    a.task.clip        = 0.5f;
    fr_client *c       = client_for(&a, 0);
    cr_assert_eq(run(c, &a), FR_OK, "%s", fr_client_errmsg(c));
    double sq = 0;
    for (size_t i = 0; i < a.upd_extra; i++) {
        sq += a.upd_extra_vals[i] * a.upd_extra_vals[i];
    }
    for (size_t i = 0; i < (size_t) a.upd_rows * a.upd_width; i++) {
        sq += a.upd_row_vals[i] * a.upd_row_vals[i];
    }
    cr_assert(sqrt(sq) <= 0.5 + 1e-6, "norm %f", sqrt(sq));
    fr_client_destroy(c);
    fake_agg_free(&a);
}

Test(client_checkin, protocol_misuse_is_estate)
{
    fake_agg a;
    fake_agg_init(&a, 50, 4, 11);
    fr_client *c = client_for(&a, 0);
    uint8_t    junk[64] = {0};
    cr_assert_eq(fr_client_receive(c, junk, sizeof junk), FR_ESTATE);
    size_t len = 99;
    cr_assert_eq(fr_client_poll(c, junk, sizeof junk, &len), FR_OK);
    cr_assert_eq(len, 0);
    cr_assert_eq(fr_client_checkin_begin(c, 0), FR_OK);
    cr_assert_eq(fr_client_poll(c, junk, 10, &len), FR_ENOSPC);
    uint8_t big[256];
    cr_assert_eq(fr_client_poll(c, big, sizeof big, &len), FR_OK);
    cr_assert(len > 0);
    cr_assert_eq(fr_client_poll(c, big, sizeof big, &len), FR_ESTATE);
    // Garbage as the WELCOME fails the check-in, not the handle.
    cr_assert_neq(fr_client_receive(c, junk, sizeof junk), FR_OK);
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_FAILED);
    cr_assert_eq(run(c, &a), FR_OK, "%s", fr_client_errmsg(c));
    fr_client_destroy(c);
    fake_agg_free(&a);
}
