// libFuzzer: the frame header parser and every message decoder. The first
// input byte picks the decoder (so every decoder sees every shape); the
// rest is the frame. Accepted messages are re-encoded and must decode to
// the same bytes.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "msg_edge.h"

static void
check(int cond)
{
    if (!cond) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint8_t        sel = data[0];
    const uint8_t *p = data + 1;
    size_t         n = size - 1;
    // Exact-size heap copy so ASan sees any overread.
    uint8_t *f = malloc(n ? n : 1);
    if (f == NULL) {
        return 0;
    }
    memcpy(f, p, n);
    static uint8_t out[1 << 20];
    size_t         m = 0;
    fri_hdr        h;
    (void) fri_frame_check(&h, f, n);
    switch (sel % 8) {
    case 0: {
        fri_checkin c;
        if (fri_checkin_decode(&c, f, n) == FR_OK) {
            check(fri_checkin_encode(out, sizeof(out), &m, &c) == FR_OK);
        }
        break;
    }
    case 1: {
        fri_task t;
        if (fri_task_decode(&t, f, n) == FR_OK) {
            check(fri_task_encode(out, sizeof(out), &m, &t) == FR_OK);
        }
        break;
    }
    case 2: {
        fri_get_model g;
        if (fri_get_model_decode(&g, f, n) == FR_OK) {
            check(fri_get_model_encode(out, sizeof(out), &m, &g) == FR_OK);
        }
        break;
    }
    case 3: {
        fri_model md;
        if (fri_model_decode(&md, f, n) == FR_OK) {
            size_t nk = (size_t) md.n_items * md.k;
            float *b = malloc(4 * (size_t) md.n_items + 1);
            float *q = malloc(4 * nk + 1);
            if (b && q) {
                check(fri_model_get(&md, b, q, 0) == FR_OK);
                for (size_t i = 0; i < nk; i++) {
                    check(q[i] == q[i]); // no NaN after dequantization
                }
                for (size_t i = 0; i < md.n_items; i++) {
                    check(b[i] == b[i] && b[i] - b[i] == 0.0f); // finite
                }
            }
            // A decoded VB block holds finite variances >= 0 (R31, R37).
            size_t nv = (size_t) md.n_items * (md.k + 1);
            float *v  = md.kind == FRI_MODEL_VB ? malloc(4 * nv + 4) : NULL;
            if (v != NULL) {
                check(fri_model_get_vb(&md, NULL, NULL, v) == FR_OK);
                for (size_t i = 0; i < nv; i++) {
                    check(v[i] >= 0.0f && v[i] - v[i] == 0.0f);
                }
            }
            free(v);
            free(b);
            free(q);
        }
        break;
    }
    case 4: {
        fri_update u;
        if (fri_update_decode(&u, f, n) == FR_OK) {
            float   *x = malloc(4 * (size_t) u.n_extra + 4);
            float   *r = malloc(4 * (size_t) u.n_rows * u.width + 4);
            uint32_t *it = malloc(4 * (size_t) u.n_rows + 4);
            if (x && r && it) {
                fri_update_get_extra(&u, x);
                for (uint32_t i = 0; i < u.n_rows; i++) {
                    fri_update_get_row(&u, i, r + (size_t) i * u.width,
                                       &it[i]);
                }
                fri_update v = u;
                v.extra = x;
                v.rows = r;
                v.items = it;
                v.stride = 0;
                size_t need = fri_update_size(u.layout, u.width, u.n_rows,
                                              u.n_extra);
                if (need <= sizeof(out)) {
                    check(fri_update_encode(out, sizeof(out), &m, &v) ==
                          FR_OK);
                    check(m == need);
                    // Same minor: byte-identical round trip.
                    if (f[5] <= FRI_PROTO_MINOR) {
                        check(m == n && memcmp(out, f, n) == 0);
                    }
                }
            }
            free(x);
            free(r);
            free(it);
        }
        break;
    }
    case 5: {
        fri_ack a;
        if (fri_ack_decode(&a, f, n) == FR_OK) {
            check(fri_ack_encode(out, sizeof(out), &m, &a) == FR_OK);
        }
        break;
    }
    case 6: {
        fri_edge_sums_msg es;
        if (fri_edge_sums_decode(&es, f, n) == FR_OK) {
            uint32_t *it = malloc(4 * (size_t) es.n_rows + 4);
            double   *r  = malloc(8 * (size_t) es.n_rows * es.width + 8);
            double   *g  = malloc(8 * (size_t) es.n_glob + 8);
            if (it && r && g) {
                fri_edge_sums_get(&es, it, r, g);
                fri_edge_sums_msg v = es;
                v.items = it;
                v.rows  = r;
                v.glob  = g;
                size_t need = fri_edge_sums_size(es.n_glob, es.width,
                                                 es.n_rows);
                if (need <= sizeof(out)) {
                    check(fri_edge_sums_encode(out, sizeof(out), &m, &v) ==
                          FR_OK);
                    if (f[5] <= FRI_PROTO_MINOR) {
                        check(m == n && memcmp(out, f, n) == 0);
                    }
                }
            }
            free(it);
            free(r);
            free(g);
        }
        break;
    }
    default: {
        fri_error e;
        if (fri_error_decode(&e, f, n) == FR_OK) {
            check(fri_error_encode(out, sizeof(out), &m, &e) == FR_OK);
            if (f[5] <= FRI_PROTO_MINOR) {
                check(m == n && memcmp(out, f, n) == 0);
            }
        }
        break;
    }
    }
    free(f);
    return 0;
}
