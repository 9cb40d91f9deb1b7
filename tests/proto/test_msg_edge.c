// EDGE_SUMS codec (SPEC.md §10): round trips and every receiver rule,
// each negative case on a frame that is otherwise valid.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "msg_edge.h"

#define K 2
// ALS, k = 2: width P + d = 6 + 3 = 9, no global block.
static uint32_t items[3] = { 1, 5, 9 };
static double   rows[3 * 9];
static double   glob[3 + 6 + 2];

static fri_edge_sums_msg
sample(uint8_t algo)
{
    fri_edge_sums_msg m;
    memset(&m, 0, sizeof(m));
    m.round_id  = 77;
    m.n_devices = 12;
    m.algo      = algo;
    m.k         = K;
    m.n_items   = 10;
    cr_assert_eq(fri_edge_sums_shape(algo, K, &m.width, &m.n_glob), FR_OK);
    m.n_rows      = 3;
    m.sum_ratings = 123.25;
    m.count       = 40;
    m.weight      = 40;
    for (size_t t = 0; t < sizeof(rows) / sizeof(rows[0]); t++) {
        rows[t] = 0.1 * (double)t - 1.0 / 3.0;
    }
    for (size_t t = 0; t < sizeof(glob) / sizeof(glob[0]); t++) {
        glob[t] = 1.0 + 1e-12 * (double)t;
    }
    m.items = items;
    m.rows  = rows;
    m.glob  = m.n_glob > 0 ? glob : NULL;
    return m;
}

static size_t
encode(uint8_t *buf, size_t cap, const fri_edge_sums_msg *m)
{
    size_t len = 0;
    cr_assert_eq(fri_edge_sums_encode(buf, cap, &len, m), FR_OK);
    return len;
}

Test(proto_msg_edge, shapes_per_algorithm)
{
    uint32_t w, g;
    cr_assert_eq(fri_edge_sums_shape(FRI_EDGE_ALS, 2, &w, &g), FR_OK);
    cr_assert(w == 9 && g == 0);
    cr_assert_eq(fri_edge_sums_shape(FRI_EDGE_IALS, 2, &w, &g), FR_OK);
    cr_assert(w == 5 && g == 3);
    cr_assert_eq(fri_edge_sums_shape(FRI_EDGE_GRAD, 2, &w, &g), FR_OK);
    cr_assert(w == 3 && g == 0);
    cr_assert_eq(fri_edge_sums_shape(FRI_EDGE_VBMF, 2, &w, &g), FR_OK);
    cr_assert(w == 9 && g == 11);
    cr_assert_eq(fri_edge_sums_shape(0, 2, &w, &g), FR_EPROTO);
    cr_assert_eq(fri_edge_sums_shape(5, 2, &w, &g), FR_EPROTO);
    cr_assert_eq(fri_edge_sums_shape(FRI_EDGE_ALS, 0, &w, &g), FR_EPROTO);
    cr_assert_eq(
        fri_edge_sums_shape(FRI_EDGE_ALS, FRI_MAX_K + 1, &w, &g), FR_ETOOBIG);
}

Test(proto_msg_edge, round_trip_is_exact)
{
    uint8_t algos[2] = { FRI_EDGE_ALS, FRI_EDGE_VBMF };
    for (int a = 0; a < 2; a++) {
        fri_edge_sums_msg m = sample(algos[a]), r;
        uint8_t           buf[2048];
        size_t            len = encode(buf, sizeof(buf), &m);
        cr_assert_eq(len, fri_edge_sums_size(m.n_glob, m.width, m.n_rows));
        cr_assert_eq(len, 16 + 64 + 8 * m.n_glob + 3 * (4 + 8 * m.width));
        cr_assert_eq(fri_edge_sums_decode(&r, buf, len), FR_OK);
        cr_assert(r.round_id == 77 && r.n_devices == 12 && r.algo == algos[a]);
        cr_assert(r.k == K && r.n_items == 10 && r.n_rows == 3);
        cr_assert(r.sum_ratings == 123.25 && r.count == 40 && r.weight == 40);
        uint32_t it[3];
        double   rw[3 * 9], gl[11];
        fri_edge_sums_get(&r, it, rw, gl);
        cr_assert_eq(memcmp(it, items, sizeof(it)), 0);
        cr_assert_eq(memcmp(rw, rows, sizeof(double) * 3 * m.width), 0);
        if (m.n_glob > 0) {
            cr_assert_eq(memcmp(gl, glob, sizeof(double) * m.n_glob), 0);
        }
        // A body shorter or longer than its fields (same minor): R3/R7.
        cr_assert_eq(fri_edge_sums_decode(&r, buf, len - 1), FR_EPROTO);
        buf[12]  = (uint8_t)(buf[12] + 1); // body_len one more
        buf[len] = 0;
        cr_assert_eq(fri_edge_sums_decode(&r, buf, len + 1), FR_EPROTO);
        // From a newer minor the extra byte is ignored.
        buf[5] = 1;
        cr_assert_eq(fri_edge_sums_decode(&r, buf, len + 1), FR_OK);
        cr_assert_eq(fri_edge_sums_encode(buf, len - 1, &len, &m), FR_ENOSPC);
    }
}

// Offsets of the body's fields (after the 16-byte header).
#define B 16

static void
put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

Test(proto_msg_edge, decoder_refuses_bad_fields)
{
    fri_edge_sums_msg m = sample(FRI_EDGE_ALS), r;
    uint8_t           ok[2048], buf[2048];
    size_t            len = encode(ok, sizeof(ok), &m);
    struct {
        size_t      off;
        uint32_t    v;
        fr_err      want;
        const char *what;
    } cases[] = {
        { B + 8, 0, FR_EPROTO, "no devices" },
        { B + 8, FRI_EDGE_MAX_DEVICES + 1, FR_ETOOBIG, "too many devices" },
        { B + 12, 9, FR_EPROTO, "unknown algo (R10)" },
        { B + 13, 1, FR_EPROTO, "reserved byte (R9)" },
        { B + 16, 0, FR_EPROTO, "k = 0 (R12)" },
        { B + 16, FRI_MAX_K + 1, FR_ETOOBIG, "k too big (R12)" },
        { B + 20, 8, FR_EPROTO, "width not the algorithm's" },
        { B + 28, 1, FR_EPROTO, "global block not the algorithm's" },
        { B + 24, 11, FR_EPROTO, "more rows than items" },
        { B + 24, FRI_MAX_ITEMS + 1, FR_ETOOBIG, "rows over the limit" },
        { B + 24, 4, FR_EPROTO, "rows the body does not hold (R13)" },
        { B + 24, 2, FR_EPROTO, "body longer than its rows" },
        { B + 56, FRI_MAX_ITEMS + 1, FR_ETOOBIG, "items over the limit" },
        { B + 60, 1, FR_EPROTO, "reserved word (R9)" },
        { B + 64 + (4 + 72), 0, FR_EPROTO, "items not increasing (R14)" },
        { B + 64 + 2 * (4 + 72), 10, FR_EPROTO, "item out of range" },
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        memcpy(buf, ok, len);
        if (cases[c].off == B + 12 || cases[c].off == B + 13) {
            buf[cases[c].off] = (uint8_t)cases[c].v;
        } else {
            put32(buf + cases[c].off, cases[c].v);
        }
        cr_assert_eq(fri_edge_sums_decode(&r, buf, len), cases[c].want, "%s",
            cases[c].what);
    }
    // Non-finite and negative values (R11): rating sum, count, a row value.
    size_t offs[3] = { B + 32, B + 40, B + 64 + 4 + 8 * 3 };
    double bad[2]  = { NAN, INFINITY };
    for (int o = 0; o < 3; o++) {
        for (int v = 0; v < 2; v++) {
            memcpy(buf, ok, len);
            uint64_t u;
            memcpy(&u, &bad[v], 8);
            for (int i = 0; i < 8; i++) {
                buf[offs[o] + i] = (uint8_t)(u >> (8 * i));
            }
            cr_assert_eq(fri_edge_sums_decode(&r, buf, len), FR_EPROTO,
                "offset %zu", offs[o]);
        }
    }
    memcpy(buf, ok, len);
    buf[B + 40 + 7] |= 0x80; // count -40
    cr_assert_eq(fri_edge_sums_decode(&r, buf, len), FR_EPROTO);
    // Another type (R5).
    memcpy(buf, ok, len);
    buf[6] = FRI_T_UPDATE;
    cr_assert_eq(fri_edge_sums_decode(&r, buf, len), FR_EPROTO);
    cr_assert_eq(fri_edge_sums_decode(&r, ok, len), FR_OK);
}

Test(proto_msg_edge, encoder_refuses_what_the_decoder_would)
{
    uint8_t           buf[2048];
    size_t            len;
    fri_edge_sums_msg m = sample(FRI_EDGE_ALS);
    rows[4]             = NAN;
    cr_assert_eq(fri_edge_sums_encode(buf, sizeof(buf), &len, &m), FR_EINVAL);
    m              = sample(FRI_EDGE_ALS);
    uint32_t un[3] = { 5, 1, 9 };
    m.items        = un;
    cr_assert_eq(fri_edge_sums_encode(buf, sizeof(buf), &len, &m), FR_EINVAL);
    m       = sample(FRI_EDGE_ALS);
    m.width = 8;
    cr_assert_eq(fri_edge_sums_encode(buf, sizeof(buf), &len, &m), FR_EINVAL);
    m       = sample(FRI_EDGE_ALS);
    m.count = -1;
    cr_assert_eq(fri_edge_sums_encode(buf, sizeof(buf), &len, &m), FR_EINVAL);
    m      = sample(FRI_EDGE_VBMF);
    m.glob = NULL;
    cr_assert_eq(fri_edge_sums_encode(buf, sizeof(buf), &len, &m), FR_EINVAL);
    // A frame over FRI_MAX_FRAME: refused from the counts alone.
    cr_assert_eq(fri_edge_sums_size(0, 131071, FRI_MAX_ITEMS), 0);
}
