// Message codec: round trips, size queries, and one negative test per
// SPEC.md rule (the rule number is in each test name).
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "samples.h"
#include "wire.h"

static uint8_t buf[1 << 16];
static size_t  blen;

static void
enc_update(const fri_update *u)
{
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &blen, u), FR_OK);
}

// ---- round trips ----------------------------------------------------------

Test(proto_msg, checkin_round_trip)
{
    fri_checkin c = sample_checkin(), d;
    cr_assert_eq(fri_checkin_encode(buf, sizeof(buf), &blen, &c), FR_OK);
    cr_assert_eq(blen, FRI_HDR_LEN + FRI_CHECKIN_BODY);
    cr_assert_eq(fri_checkin_decode(&d, buf, blen), FR_OK);
    cr_assert_eq(d.client_id, c.client_id);
    cr_assert_eq(d.caps, c.caps);
    cr_assert_eq(d.proto_major, 1);
    cr_assert_eq(d.model_version, 42);
}

Test(proto_msg, checkin_model_only_flag)
{
    fri_checkin c = sample_checkin(), d;
    c.flags = FRI_CHECKIN_MODEL_ONLY;
    cr_assert_eq(fri_checkin_encode(buf, sizeof(buf), &blen, &c), FR_OK);
    cr_assert_eq(fri_checkin_decode(&d, buf, blen), FR_OK);
    cr_assert_eq(d.flags, FRI_CHECKIN_MODEL_ONLY);
    cr_assert_eq(d.model_version, 42);
    // Undefined flags are refused both ways.
    c.flags = 0x0002;
    cr_assert_eq(fri_checkin_encode(buf, sizeof(buf), &blen, &c), FR_EINVAL);
    c.flags = 0;
    cr_assert_eq(fri_checkin_encode(buf, sizeof(buf), &blen, &c), FR_OK);
    fri_put16(buf + FRI_HDR_LEN + 14, 0x0003);
    cr_assert_eq(fri_checkin_decode(&d, buf, blen), FR_EPROTO);
}

Test(proto_msg, task_model_status)
{
    fri_task t = sample_task(), d;
    t.status   = FRI_TASK_MODEL;
    cr_assert_eq(fri_task_encode(buf, sizeof(buf), &blen, &t), FR_OK);
    cr_assert_eq(fri_task_decode(&d, buf, blen), FR_OK);
    cr_assert_eq(d.status, FRI_TASK_MODEL);
    cr_assert_eq(d.round_id, 7);
    cr_assert_eq(d.model_version, 6);
    cr_assert_eq(d.k, S_K);
    // A model read takes no part in the masking; status 3 is undefined.
    buf[FRI_HDR_LEN + 3] = 1;
    cr_assert_eq(fri_task_decode(&d, buf, blen), FR_EPROTO);
    buf[FRI_HDR_LEN + 3] = 0;
    buf[FRI_HDR_LEN]     = 3;
    cr_assert_eq(fri_task_decode(&d, buf, blen), FR_EPROTO);
}

Test(proto_msg, task_round_trip)
{
    fri_task t = sample_task(), d;
    cr_assert_eq(fri_task_encode(buf, sizeof(buf), &blen, &t), FR_OK);
    cr_assert_eq(fri_task_decode(&d, buf, blen), FR_OK);
    cr_assert_eq(d.status, FRI_TASK_RUN);
    cr_assert_eq(d.algo, FRI_ALGO_ALS);
    cr_assert_eq(d.round_id, 7);
    cr_assert_eq(d.model_version, 6);
    cr_assert_eq(d.k, S_K);
    cr_assert_float_eq(d.reg, 0.1f, 0);
    cr_assert_float_eq(d.lr, 0.05f, 0);
    cr_assert_eq(d.deadline_ms, 30000);
    t = sample_task_none();
    t.k = 99; // ignored for NONE, encoded as zero (R18)
    cr_assert_eq(fri_task_encode(buf, sizeof(buf), &blen, &t), FR_OK);
    cr_assert_eq(fri_task_decode(&d, buf, blen), FR_OK);
    cr_assert_eq(d.status, FRI_TASK_NONE);
    cr_assert_eq(d.retry_after_ms, 5000);
    cr_assert_eq(d.k, 0);
}

Test(proto_msg, get_model_ack_error_round_trip)
{
    fri_get_model g = sample_get_model(), g2;
    cr_assert_eq(fri_get_model_encode(buf, sizeof(buf), &blen, &g), FR_OK);
    cr_assert_eq(fri_get_model_decode(&g2, buf, blen), FR_OK);
    cr_assert_eq(g2.round_id, 7);
    cr_assert_eq(g2.have_version, 5);
    cr_assert_eq(g2.accept, g.accept);

    fri_ack a = sample_ack(), a2;
    cr_assert_eq(fri_ack_encode(buf, sizeof(buf), &blen, &a), FR_OK);
    cr_assert_eq(fri_ack_decode(&a2, buf, blen), FR_OK);
    cr_assert_eq(a2.of_type, FRI_T_UPDATE);
    cr_assert_eq(a2.round_id, 7);

    fri_error e = sample_error(), e2;
    cr_assert_eq(fri_error_encode(buf, sizeof(buf), &blen, &e), FR_OK);
    cr_assert_eq(blen, fri_error_size(e.text_len));
    cr_assert_eq(fri_error_decode(&e2, buf, blen), FR_OK);
    cr_assert_eq(e2.code, FR_ELATE);
    cr_assert_eq(e2.of_type, FRI_T_UPDATE);
    cr_assert_eq(e2.retry_after_ms, 1000);
    cr_assert_eq(e2.text_len, e.text_len);
    cr_assert_eq(memcmp(e2.text, e.text, e.text_len), 0);
    cr_assert(e2.text >= (const char *) buf &&
              e2.text < (const char *) buf + blen); // zero-copy view
}

Test(proto_msg, model_round_trip_all_encodings)
{
    const uint8_t encs[3] = { FRI_MENC_F32, FRI_MENC_F16, FRI_MENC_I8 };
    const float   tol[3] = { 0.0f, 2e-3f, 3.0f / 127 * 0.5f + 1e-6f };
    for (int t = 0; t < 3; t++) {
        fri_model m = sample_model(encs[t]), d;
        cr_assert_eq(fri_model_encode(buf, sizeof(buf), &blen, &m), FR_OK);
        cr_assert_eq(blen, fri_model_size(encs[t], S_K, S_ITEMS));
        cr_assert_eq(fri_model_decode(&d, buf, blen), FR_OK);
        cr_assert_eq(d.round_id, 7);
        cr_assert_eq(d.version, 6);
        cr_assert_eq(d.enc, encs[t]);
        cr_assert_float_eq(d.mu, 3.5f, 0);
        float bias[S_ITEMS], fac[S_ITEMS * 5];
        cr_assert_eq(fri_model_get(&d, bias, fac, 5), FR_OK); // stride 5
        for (int i = 0; i < S_ITEMS; i++) {
            cr_assert_float_eq(bias[i], s_bias[i], 0);
            for (int j = 0; j < S_K; j++) {
                float want = s_fac[i * S_K + j];
                float got = fac[i * 5 + j];
                float rel = tol[t] * (t == 1 ? fabsf(want) + 1e-3f : 1.0f);
                if (t == 2) { // int8: half a step of the row's scale
                    float mx = 0;
                    for (int q = 0; q < S_K; q++) {
                        mx = fmaxf(mx, fabsf(s_fac[i * S_K + q]));
                    }
                    rel = mx / 127.0f * 0.5f + 1e-6f;
                }
                cr_assert(fabsf(got - want) <= rel, "enc %d item %d: %g vs %g",
                          t, i, got, want);
            }
        }
    }
}

Test(proto_msg, update_round_trip_dense_sparse_fixed)
{
    fri_update u = sample_update_als(), d;
    enc_update(&u);
    cr_assert_eq(blen, fri_update_size(FRI_UPD_DENSE, 4, S_ITEMS, 12));
    cr_assert_eq(fri_update_decode(&d, buf, blen), FR_OK);
    cr_assert_eq(d.kind, FRI_UPD_ALS);
    cr_assert_eq(d.n_rows, S_ITEMS);
    cr_assert_float_eq(d.weight, 11.0f, 0);
    float x[12], row[4];
    fri_update_get_extra(&d, x);
    cr_assert_eq(memcmp(x, s_extra, sizeof(x)), 0);
    for (uint32_t r = 0; r < S_ITEMS; r++) {
        uint32_t item = 99;
        fri_update_get_row(&d, r, row, &item);
        cr_assert_eq(item, r);
        cr_assert_eq(memcmp(row, s_rows + 4 * r, sizeof(row)), 0);
    }

    u = sample_update_sparse();
    enc_update(&u);
    cr_assert_eq(fri_update_decode(&d, buf, blen), FR_OK);
    cr_assert_eq(d.layout, FRI_UPD_SPARSE);
    for (uint32_t r = 0; r < 2; r++) {
        uint32_t item;
        fri_update_get_row(&d, r, row, &item);
        cr_assert_eq(item, s_items[r]);
        cr_assert_eq(memcmp(row, s_rows + 4 * r, sizeof(row)), 0);
    }

    u = sample_update_fixed();
    enc_update(&u);
    cr_assert_eq(fri_update_decode(&d, buf, blen), FR_OK);
    cr_assert_eq(d.vtype, FRI_VAL_FIXED);
    cr_assert_eq(d.frac_bits, 16);
    uint32_t ur[4];
    fri_update_get_row(&d, 1, ur, NULL);
    cr_assert_eq(ur[0], 0xffffffffu); // NaN bit patterns are fine as u32
    cr_assert_eq(ur[1], 0x80000000u);
}

Test(proto_msg, update_strided_input_matches_packed)
{
    float wide[S_ITEMS * 6];
    for (int r = 0; r < S_ITEMS; r++) {
        for (int j = 0; j < 6; j++) {
            wide[r * 6 + j] = j < 4 ? s_rows[r * 4 + j] : NAN; // pad: unread
        }
    }
    fri_update u = sample_update_als();
    uint8_t    packed[512];
    size_t     plen;
    cr_assert_eq(fri_update_encode(packed, sizeof(packed), &plen, &u), FR_OK);
    u.rows = wide;
    u.stride = 6;
    enc_update(&u);
    cr_assert_eq(blen, plen);
    cr_assert_eq(memcmp(buf, packed, plen), 0);
}

Test(proto_msg, f16_conversion_known_values)
{
    cr_assert_eq(fri_f32_to_f16(1.0f), 0x3c00);
    cr_assert_eq(fri_f32_to_f16(-2.0f), 0xc000);
    cr_assert_eq(fri_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(fri_f32_to_f16(65520.0f), 0x7c00); // overflow -> inf
    cr_assert_eq(fri_f32_to_f16(5.9604645e-8f), 0x0001); // min subnormal
    cr_assert_eq(fri_f32_to_f16(0.0f), 0x0000);
    cr_assert_float_eq(fri_f16_to_f32(0x3555), 0.333251953125f, 0);
    for (uint32_t h = 0; h < 0x7c00; h++) { // all finite positive halves
        cr_assert_eq(fri_f32_to_f16(fri_f16_to_f32((uint16_t) h)), h);
    }
}

// ---- encoder buffer handling ------------------------------------------

Test(proto_msg, encoders_report_enospc_for_every_short_capacity)
{
    for (size_t v = 0; v < S_N_VECTORS; v++) {
        size_t n;
        cr_assert_eq(s_vectors[v].fn(buf, sizeof(buf), &n), FR_OK);
        for (size_t cap = 0; cap < n; cap++) {
            size_t got = 0;
            cr_assert_eq(s_vectors[v].fn(buf, cap, &got), FR_ENOSPC,
                         "%s cap %zu", s_vectors[v].name, cap);
        }
    }
}

Test(proto_msg, encoders_refuse_nonfinite_input_R11)
{
    float      rows[S_ITEMS * 4];
    fri_update u = sample_update_als();
    memcpy(rows, s_rows, sizeof(rows));
    rows[13] = NAN;
    u.rows = rows;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &blen, &u), FR_EINVAL);
    rows[13] = INFINITY;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &blen, &u), FR_EINVAL);
    fri_model m = sample_model(FRI_MENC_F16);
    float     b[S_ITEMS];
    memcpy(b, s_bias, sizeof(b));
    b[2] = -INFINITY;
    m.bias = b;
    cr_assert_eq(fri_model_encode(buf, sizeof(buf), &blen, &m), FR_EINVAL);
    fri_task t = sample_task();
    t.lr = NAN;
    cr_assert_eq(fri_task_encode(buf, sizeof(buf), &blen, &t), FR_EINVAL);
    u = sample_update_sparse();
    uint32_t items[2] = { 5, 5 };
    u.items = items;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &blen, &u), FR_EINVAL);
}

// ---- negative tests per rule ------------------------------------------------

static size_t
load_vec(const char *name, uint8_t *dst)
{
    for (size_t v = 0; v < S_N_VECTORS; v++) {
        if (strcmp(s_vectors[v].name, name) == 0) {
            size_t n;
            cr_assert_eq(s_vectors[v].fn(dst, sizeof(buf), &n), FR_OK);
            return n;
        }
    }
    cr_assert_fail("no vector %s", name);
    return 0;
}

// Decodes any frame with the decoder for its type.
static fr_err
decode_any(const uint8_t *p, size_t n)
{
    fri_hdr h;
    fr_err  e = fri_hdr_get(&h, p, n);
    if (e != FR_OK) {
        return e;
    }
    union {
        fri_checkin c;
        fri_task t;
        fri_get_model g;
        fri_model m;
        fri_update u;
        fri_ack a;
        fri_error er;
    } m;
    switch (h.type) {
    case FRI_T_CHECKIN:
        return fri_checkin_decode(&m.c, p, n);
    case FRI_T_TASK:
        return fri_task_decode(&m.t, p, n);
    case FRI_T_GET_MODEL:
        return fri_get_model_decode(&m.g, p, n);
    case FRI_T_MODEL:
        return fri_model_decode(&m.m, p, n);
    case FRI_T_UPDATE:
        return fri_update_decode(&m.u, p, n);
    case FRI_T_ACK:
        return fri_ack_decode(&m.a, p, n);
    case FRI_T_ERROR:
        return fri_error_decode(&m.er, p, n);
    }
    return FR_EPROTO;
}

#define N_MSG_VECTORS 12 // the first 12 vectors are frames

Test(proto_rules, R1_bad_magic)
{
    for (size_t v = 0; v < N_MSG_VECTORS; v++) {
        size_t n = load_vec(s_vectors[v].name, buf);
        buf[v % 4] ^= 0x20;
        cr_assert_eq(decode_any(buf, n), FR_EPROTO, "%s", s_vectors[v].name);
    }
}

Test(proto_rules, R2_unknown_major_is_eversion)
{
    const uint8_t majors[3] = { 0, 2, 255 };
    for (size_t v = 0; v < N_MSG_VECTORS; v++) {
        for (int i = 0; i < 3; i++) {
            size_t n = load_vec(s_vectors[v].name, buf);
            buf[4] = majors[i];
            cr_assert_eq(decode_any(buf, n), FR_EVERSION);
        }
    }
}

Test(proto_rules, R3_newer_minor_trailing_bytes_skipped)
{
    for (size_t v = 0; v < N_MSG_VECTORS; v++) {
        size_t n = load_vec(s_vectors[v].name, buf);
        memset(buf + n, 0xAB, 7);
        fri_put32(buf + 12, fri_get32(buf + 12) + 7);
        // Same minor: trailing bytes are an error.
        cr_assert_eq(decode_any(buf, n + 7), FR_EPROTO, "%s",
                     s_vectors[v].name);
        buf[5] = FRI_PROTO_MINOR + 1;
        cr_assert_eq(decode_any(buf, n + 7), FR_OK, "%s", s_vectors[v].name);
    }
    // And the decoded fields are the known ones.
    size_t n = load_vec("update_als_dense.bin", buf);
    memset(buf + n, 0xAB, 8);
    fri_put32(buf + 12, fri_get32(buf + 12) + 8);
    buf[5] = 9;
    fri_update d;
    cr_assert_eq(fri_update_decode(&d, buf, n + 8), FR_OK);
    cr_assert_eq(d.n_rows, S_ITEMS);
    float row[4];
    fri_update_get_row(&d, 3, row, NULL);
    cr_assert_float_eq(row[3], 6.5f, 0);
}

Test(proto_rules, R4_reserved_flag_bits)
{
    for (int bit = 1; bit < 32; bit++) {
        size_t n = load_vec("checkin.bin", buf);
        fri_put32(buf + 8, 1u << bit);
        cr_assert_eq(decode_any(buf, n), FR_EPROTO, "bit %d", bit);
    }
    // SEALED set on a frame handed to a plain decoder.
    size_t n = load_vec("ack.bin", buf);
    fri_put32(buf + 8, FRI_F_SEALED);
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
}

Test(proto_rules, R5_wrong_type_for_decoder)
{
    size_t      n = load_vec("checkin.bin", buf);
    fri_task    t;
    fri_update  u;
    fri_model   m;
    cr_assert_eq(fri_task_decode(&t, buf, n), FR_EPROTO);
    cr_assert_eq(fri_update_decode(&u, buf, n), FR_EPROTO);
    cr_assert_eq(fri_model_decode(&m, buf, n), FR_EPROTO);
    fri_put16(buf + 6, 0x7777); // unknown type
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
}

Test(proto_rules, R6_body_len_over_limit_is_etoobig)
{
    uint8_t h[FRI_HDR_LEN];
    load_vec("update_als_dense.bin", buf);
    memcpy(h, buf, FRI_HDR_LEN);
    fri_put32(h + 12, (uint32_t) (FRI_MAX_FRAME - FRI_HDR_LEN + 1));
    fri_hdr hd;
    cr_assert_eq(fri_hdr_get(&hd, h, sizeof(h)), FR_ETOOBIG);
    fri_put32(h + 12, 0xffffffffu);
    cr_assert_eq(fri_hdr_get(&hd, h, sizeof(h)), FR_ETOOBIG);
    fri_put32(h + 12, (uint32_t) (FRI_MAX_FRAME - FRI_HDR_LEN));
    cr_assert_eq(fri_hdr_get(&hd, h, sizeof(h)), FR_OK);
}

Test(proto_rules, R7_truncated_or_overlong_frames)
{
    for (size_t v = 0; v < N_MSG_VECTORS; v++) {
        size_t n = load_vec(s_vectors[v].name, buf);
        for (size_t cut = 0; cut < n; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1); // ASan catches overreads
            memcpy(copy, buf, cut);
            cr_assert_neq(decode_any(copy, cut), FR_OK, "%s cut %zu",
                          s_vectors[v].name, cut);
            free(copy);
        }
        buf[n] = 0;
        cr_assert_eq(decode_any(buf, n + 1), FR_EPROTO); // body_len mismatch
    }
}

Test(proto_rules, R8_body_shorter_than_fixed_part)
{
    // A newer minor may append, never shorten.
    size_t n = load_vec("task.bin", buf);
    buf[5] = 7;
    fri_put32(buf + 12, FRI_TASK_BODY - 4);
    cr_assert_eq(decode_any(buf, n - 4), FR_EPROTO);
    n = load_vec("update_als_dense.bin", buf);
    fri_put32(buf + 12, FRI_UPDATE_FIXED - 1);
    cr_assert_eq(decode_any(buf, FRI_HDR_LEN + FRI_UPDATE_FIXED - 1),
                 FR_EPROTO);
}

Test(proto_rules, R9_reserved_fields_nonzero)
{
    size_t n = load_vec("checkin.bin", buf);
    buf[16 + 15] = 1;
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("get_model.bin", buf);
    buf[16 + 18] = 1;
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("ack.bin", buf);
    buf[16 + 2] = 1;
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("model_f32.bin", buf);
    buf[16 + 90] = 1;
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("task.bin", buf);
    buf[16 + 58] = 1; // TASK reserved after weighted
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
}

Test(proto_rules, R10_unknown_enumerations)
{
    size_t n = load_vec("update_als_dense.bin", buf);
    buf[16 + 8] = 9; // kind
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("update_als_dense.bin", buf);
    buf[16 + 9] = 2; // layout
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("update_als_dense.bin", buf);
    buf[16 + 10] = 2; // vtype
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("model_f32.bin", buf);
    buf[16 + 89] = 4; // enc
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("task.bin", buf);
    buf[16] = 3; // status: RUN, NONE or MODEL
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("task.bin", buf);
    buf[17] = 0; // algo
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("task.bin", buf);
    buf[16 + 56] = 3; // weighted: 0, 1 or 2
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("task.bin", buf);
    buf[16 + 56] = 2;
    cr_assert_eq(decode_any(buf, n), FR_OK);
    n = load_vec("task.bin", buf);
    buf[16 + 57] = 2; // stats_delta: 0 or 1
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("task.bin", buf);
    cr_assert_eq(buf[16 + 2], 1); // the vector is an ALS task
    buf[16 + 57] = 1;             // which may ask for deltas
    cr_assert_eq(decode_any(buf, n), FR_OK);
    buf[16 + 2] = 3; // a gradient update cannot be a delta
    buf[16 + 1] = 3;
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("get_model.bin", buf);
    buf[16 + 16] = FRI_ENC_F16_BIT; // fp32 missing
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
}

static void
put_f32_at(size_t off, float f)
{
    fri_putf32(buf + off, f);
}

Test(proto_rules, R11_nonfinite_and_negative_floats)
{
    const float bad[3] = { NAN, INFINITY, -INFINITY };
    for (int i = 0; i < 3; i++) {
        size_t n = load_vec("update_als_dense.bin", buf);
        put_f32_at(n - 4, bad[i]); // last row value
        cr_assert_eq(decode_any(buf, n), FR_EPROTO);
        n = load_vec("update_als_dense.bin", buf);
        put_f32_at(16 + FRI_UPDATE_FIXED, bad[i]); // extra[0]
        cr_assert_eq(decode_any(buf, n), FR_EPROTO);
        n = load_vec("update_als_dense.bin", buf);
        put_f32_at(16 + 28, bad[i]); // weight
        cr_assert_eq(decode_any(buf, n), FR_EPROTO);
        n = load_vec("update_grad_sparse.bin", buf);
        put_f32_at(n - 8, bad[i]);
        cr_assert_eq(decode_any(buf, n), FR_EPROTO);
        n = load_vec("model_f32.bin", buf);
        put_f32_at(16 + 100, bad[i]); // mu
        cr_assert_eq(decode_any(buf, n), FR_EPROTO);
        n = load_vec("model_f32.bin", buf);
        put_f32_at(16 + FRI_MODEL_FIXED + 8, bad[i]); // bias[2]
        cr_assert_eq(decode_any(buf, n), FR_EPROTO);
        n = load_vec("model_f32.bin", buf);
        put_f32_at(n - 4, bad[i]); // last factor
        cr_assert_eq(decode_any(buf, n), FR_EPROTO);
        n = load_vec("model_i8.bin", buf);
        put_f32_at(16 + FRI_MODEL_FIXED + 16, bad[i]); // row 0 scale
        cr_assert_eq(decode_any(buf, n), FR_EPROTO);
        n = load_vec("task.bin", buf);
        put_f32_at(16 + 28, bad[i]); // reg
        cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    }
    size_t n = load_vec("model_f16.bin", buf);
    fri_put16(buf + n - 2, 0x7c00); // half inf
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("task.bin", buf);
    put_f32_at(16 + 36, -0.5f); // negative lr
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("update_als_dense.bin", buf);
    put_f32_at(16 + 28, -1.0f); // negative weight
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    // FIXED values are integers: no float rule applies.
    n = load_vec("update_fixed.bin", buf);
    fri_put32(buf + n - 4, 0x7fc00000u);
    cr_assert_eq(decode_any(buf, n), FR_OK);
}

Test(proto_rules, R12_k_zero_or_over_max)
{
    size_t n = load_vec("update_als_dense.bin", buf);
    fri_put32(buf + 16 + 12, 0);
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    fri_put32(buf + 16 + 12, FRI_MAX_K + 1);
    cr_assert_eq(decode_any(buf, n), FR_ETOOBIG);
    n = load_vec("model_f32.bin", buf);
    fri_put32(buf + 16 + 92, FRI_MAX_K + 1);
    cr_assert_eq(decode_any(buf, n), FR_ETOOBIG);
    n = load_vec("task.bin", buf);
    fri_put32(buf + 16 + 20, 100000);
    cr_assert_eq(decode_any(buf, n), FR_ETOOBIG);
    fri_task t = sample_task();
    t.k = FRI_MAX_K + 1;
    cr_assert_eq(fri_task_encode(buf, sizeof(buf), &blen, &t), FR_EINVAL);
}

Test(proto_rules, R13_counts_limits_and_overflow)
{
    // n_rows * width * 4 overflows 32 bits; must be refused before use.
    size_t n = load_vec("update_grad_sparse.bin", buf);
    fri_put32(buf + 16 + 12, FRI_MAX_WIDTH - 1); // k
    fri_put32(buf + 16 + 16, FRI_MAX_WIDTH);     // width
    fri_put32(buf + 16 + 20, FRI_MAX_ITEMS);     // n_rows
    cr_assert_eq(decode_any(buf, n), FR_ETOOBIG);
    n = load_vec("update_grad_sparse.bin", buf);
    fri_put32(buf + 16 + 20, FRI_MAX_ITEMS + 1);
    cr_assert_eq(decode_any(buf, n), FR_ETOOBIG);
    n = load_vec("update_grad_sparse.bin", buf);
    fri_put32(buf + 16 + 20, 3); // one row more than present
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("update_grad_sparse.bin", buf);
    fri_put32(buf + 16 + 24, FRI_MAX_EXTRA + 1);
    cr_assert_eq(decode_any(buf, n), FR_ETOOBIG);
    n = load_vec("model_f32.bin", buf);
    fri_put32(buf + 16 + 96, 0xffffffffu); // n_items
    cr_assert_eq(decode_any(buf, n), FR_ETOOBIG);
    n = load_vec("model_f32.bin", buf);
    fri_put32(buf + 16 + 96, S_ITEMS + 1);
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("model_f32.bin", buf);
    fri_put32(buf + 16 + 96, FRI_MAX_ITEMS); // 2^24 * 516 B > frame limit
    cr_assert_eq(decode_any(buf, n), FR_ETOOBIG);
    cr_assert_eq(fri_update_size(FRI_UPD_DENSE, FRI_MAX_WIDTH, FRI_MAX_ITEMS,
                                 0),
                 0);
    cr_assert_eq(fri_model_size(FRI_MENC_F32, FRI_MAX_K, FRI_MAX_ITEMS), 0);
    n = load_vec("error.bin", buf);
    fri_put16(buf + 16 + 6, FRI_MAX_ERRTEXT + 1); // R17 text_len
    cr_assert_eq(decode_any(buf, n), FR_ETOOBIG);
}

Test(proto_rules, R14_sparse_ids_increasing_and_bounded)
{
    size_t n = load_vec("update_grad_sparse.bin", buf);
    size_t rec = 4 + 4 * 4;
    size_t first = 16 + FRI_UPDATE_FIXED;
    fri_put32(buf + first + rec, 3); // duplicate of row 0's id
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    fri_put32(buf + first + rec, 2); // decreasing
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    fri_put32(buf + first + rec, FRI_MAX_ITEMS);
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    fri_put32(buf + first + rec, FRI_MAX_ITEMS - 1);
    cr_assert_eq(decode_any(buf, n), FR_OK);
}

Test(proto_rules, R15_update_shape_rules)
{
    size_t n = load_vec("update_als_dense.bin", buf);
    fri_put32(buf + 16 + 12, 2); // k, width stays 4
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("update_als_dense.bin", buf);
    buf[16 + 8] = FRI_UPD_GRAD; // GRAD with 12 extras is fine
    cr_assert_eq(decode_any(buf, n), FR_OK);
    n = load_vec("update_grad_sparse.bin", buf);
    buf[16 + 8] = FRI_UPD_ALS; // ALS needs 12 extras, has 0
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("update_als_dense.bin", buf);
    buf[16 + 11] = 3; // frac_bits on f32
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("update_fixed.bin", buf);
    buf[16 + 11] = 32;
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
}

// R15a: kind ALS with FIXED values is the masked statistics vector,
// dense rows of (k+1)(k+2)/2 + k + 1 words and 2 extra words; any other
// shape of a FIXED ALS update is refused.
Test(proto_rules, R15a_masked_als_statistics_shape)
{
    enum { K2 = 2, W2 = 6 + 3, NI = 5 };
    static uint32_t rows[NI * W2];
    uint32_t        extra[2] = {7, 9};
    for (uint32_t j = 0; j < NI * W2; j++) {
        rows[j] = 0x9e3779b9u * (j + 1); // masked words: any bit pattern
    }
    fri_update u;
    memset(&u, 0, sizeof(u));
    u.round_id  = 3;
    u.kind      = FRI_UPD_ALS;
    u.layout    = FRI_UPD_DENSE;
    u.vtype     = FRI_VAL_FIXED;
    u.frac_bits = 24;
    u.k         = K2;
    u.width     = W2;
    u.n_rows    = NI;
    u.n_extra   = 2;
    u.rows      = rows;
    u.extra     = extra;
    size_t len  = 0;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &len, &u), FR_OK);
    fri_update d;
    cr_assert_eq(fri_update_decode(&d, buf, len), FR_OK);
    cr_assert_eq(d.width, W2);
    uint32_t r[W2], x[2];
    fri_update_get_row(&d, NI - 1, r, NULL);
    cr_assert_eq(memcmp(r, rows + (NI - 1) * W2, sizeof(r)), 0);
    fri_update_get_extra(&d, x);
    cr_assert_eq(x[1], 9);
    // The wire rules: width k + 1 on the encoded bytes is refused by the
    // decoder; the encoder refuses it, the plain ALS extras and a SPARSE
    // layout.
    fri_put32(buf + 16 + 16, K2 + 1);
    cr_assert_eq(decode_any(buf, len), FR_EPROTO);
    u.width = K2 + 1;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &len, &u), FR_EINVAL);
    u.width   = W2;
    u.n_extra = 6 + 2;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &len, &u), FR_EINVAL);
    u.n_extra = 2;
    u.layout  = FRI_UPD_SPARSE;
    static const uint32_t ids[NI] = {0, 1, 2, 3, 4};
    u.items                       = ids;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &len, &u), FR_EINVAL);
    // F32 ALS keeps the plain shape.
    u.layout    = FRI_UPD_DENSE;
    u.vtype     = FRI_VAL_F32;
    u.frac_bits = 0;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &len, &u), FR_EINVAL);
}

// R15a / S1c: the masked iALS vector, rows of k(k+1)/2 + k + 1 words and
// k(k+1)/2 + 2 extra words, is the other accepted FIXED ALS shape; the two
// shapes do not mix.
Test(proto_rules, R15a_masked_ials_statistics_shape)
{
    enum { K2 = 2, PK = 3, WI = PK + K2 + 1, NI = 4 };
    static uint32_t rows[NI * 9];
    uint32_t        extra[PK + 2] = { 1, 2, 3, 4, 5 };
    for (uint32_t j = 0; j < NI * 9; j++) {
        rows[j] = 0x85ebca6bu * (j + 3);
    }
    fri_update u;
    memset(&u, 0, sizeof(u));
    u.round_id  = 4;
    u.kind      = FRI_UPD_ALS;
    u.layout    = FRI_UPD_DENSE;
    u.vtype     = FRI_VAL_FIXED;
    u.frac_bits = 24;
    u.k         = K2;
    u.width     = WI;
    u.n_rows    = NI;
    u.n_extra   = PK + 2;
    u.rows      = rows;
    u.extra     = extra;
    size_t len  = 0;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &len, &u), FR_OK);
    fri_update d;
    cr_assert_eq(fri_update_decode(&d, buf, len), FR_OK);
    cr_assert_eq(d.width, WI);
    cr_assert_eq(d.n_extra, PK + 2);
    uint32_t x[PK + 2];
    fri_update_get_extra(&d, x);
    cr_assert_eq(x[PK + 1], 5);
    // iALS rows with the ALS extras, ALS rows with the iALS extras.
    u.n_extra = 2;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &len, &u), FR_EINVAL);
    u.width   = 6 + 3;
    u.n_extra = PK + 2;
    cr_assert_eq(fri_update_encode(buf, sizeof(buf), &len, &u), FR_EINVAL);
}

Test(proto_rules, R16_model_kind_and_scales)
{
    size_t n = load_vec("model_f32.bin", buf);
    fri_put64(buf + 16 + 80, 3); // FULL with a base version
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    n = load_vec("model_f32.bin", buf);
    buf[16 + 88] = FRI_MODEL_DELTA; // DELTA with base 0
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    fri_put64(buf + 16 + 80, 6); // base == version
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    fri_put64(buf + 16 + 80, 5);
    cr_assert_eq(decode_any(buf, n), FR_OK);
    n = load_vec("model_i8.bin", buf);
    put_f32_at(16 + FRI_MODEL_FIXED + 16, -1.0f); // negative scale
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
}

Test(proto_rules, R17_error_code_zero)
{
    size_t n = load_vec("error.bin", buf);
    fri_put32(buf + 16, 0);
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
    fri_error e = sample_error();
    e.code = 0;
    cr_assert_eq(fri_error_encode(buf, sizeof(buf), &blen, &e), FR_EINVAL);
}

Test(proto_rules, R18_no_task_carries_only_retry)
{
    size_t n = load_vec("task_none.bin", buf);
    fri_put64(buf + 16 + 4, 7); // a round id in a NONE
    cr_assert_eq(decode_any(buf, n), FR_EPROTO);
}

Test(proto_rules, every_vector_decodes)
{
    for (size_t v = 0; v < N_MSG_VECTORS; v++) {
        size_t n = load_vec(s_vectors[v].name, buf);
        cr_assert_eq(decode_any(buf, n), FR_OK, "%s", s_vectors[v].name);
    }
}
