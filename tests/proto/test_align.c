// Byte order and alignment: the wire is little-endian (SPEC.md §1) and a
// frame may sit at any address (inside a transport buffer, after a length
// prefix). Every encoder must write the golden bytes into a buffer at any
// offset, and every decoder must read a frame at any offset, on any host;
// the cross builds run this under qemu-user on aarch64 and 32-bit armhf.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "samples.h"
#include "wire.h"

#define MAX_OFF 8 // offsets 0..7 cover every alignment up to 8 bytes

static size_t
read_vector(const char *name, uint8_t *dst, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", FR_TEST_VECTORS, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "missing golden vector %s", path);
    size_t n = fread(dst, 1, cap, f);
    fclose(f);
    return n;
}

// Bit-exact float comparison (the wire carries exact f32 bits).
static int
same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

Test(proto_align, wire_helpers_are_little_endian_at_every_offset)
{
    // 16-byte aligned storage so that base + off has the alignment off.
    _Alignas(16) uint8_t b[32];
    for (size_t off = 0; off < MAX_OFF; off++) {
        memset(b, 0xee, sizeof b);
        fri_put32(b + off, 0x01020304u);
        cr_assert(b[off] == 4 && b[off + 1] == 3 && b[off + 2] == 2
                && b[off + 3] == 1,
            "put32 is not little-endian at offset %zu", off);
        cr_assert_eq(fri_get32(b + off), 0x01020304u);
        fri_put16(b + off, 0xa1b2);
        cr_assert(b[off] == 0xb2 && b[off + 1] == 0xa1);
        fri_put64(b + off, 0x0102030405060708ull);
        for (int i = 0; i < 8; i++) {
            cr_assert_eq(b[off + (size_t)i], 8 - i, "put64 byte %d", i);
        }
        cr_assert_eq(fri_get64(b + off), 0x0102030405060708ull);
        // IEEE 754 binary32 1.0f is 0x3f800000: bytes 00 00 80 3f.
        fri_putf32(b + off, 1.0f);
        cr_assert(b[off] == 0 && b[off + 1] == 0 && b[off + 2] == 0x80
            && b[off + 3] == 0x3f);
        cr_assert_eq(fri_getf32(b + off), 1.0f);
        // Bulk arrays to and from unaligned bytes.
        const float v[3] = { 1.0f, -2.5f, 0.1f };
        float       back[3];
        fri_put_array32(b + off, v, 3);
        cr_assert(b[off + 4] == 0x00 && b[off + 5] == 0x00
                && b[off + 6] == 0x20 && b[off + 7] == 0xc0,
            "-2.5f must be 00 00 20 c0 on the wire");
        fri_get_array32(back, b + off, 3);
        cr_assert(same_bits(v, back, 3));
    }
}

Test(proto_align, encoders_write_golden_bytes_at_every_offset)
{
    static _Alignas(16) uint8_t want[4096], got[4096 + MAX_OFF];
    for (size_t v = 0; v < S_N_VECTORS; v++) {
        size_t wn = read_vector(s_vectors[v].name, want, sizeof want);
        for (size_t off = 1; off < MAX_OFF; off++) {
            size_t gn = 0;
            cr_assert_eq(s_vectors[v].fn(got + off, sizeof want, &gn), FR_OK);
            cr_assert_eq(gn, wn, "%s at offset %zu", s_vectors[v].name, off);
            cr_assert_eq(memcmp(got + off, want, wn), 0,
                "%s at offset %zu differs from the golden bytes",
                s_vectors[v].name, off);
        }
    }
}

Test(proto_align, models_decode_and_verify_at_every_offset)
{
    static _Alignas(16) uint8_t gold[4096], buf[4096 + MAX_OFF];
    fri_identity                id;
    sample_identity(&id, 100);
    const struct {
        const char *name;
        uint8_t     enc;
    } files[] = { { "model_f32.bin", FRI_MENC_F32 },
        { "model_f16.bin", FRI_MENC_F16 }, { "model_i8.bin", FRI_MENC_I8 },
        { "model_vb.bin", FRI_MENC_F32 },
        { "model_vb_i8c.bin", FRI_MENC_I8C } };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n = read_vector(files[f].name, gold, sizeof gold);
        float  bias0[S_ITEMS], fac0[S_ITEMS * S_K];
        for (size_t off = 0; off < MAX_OFF; off++) {
            memcpy(buf + off, gold, n);
            fri_model m;
            cr_assert_eq(fri_model_decode(&m, buf + off, n), FR_OK, "%s @%zu",
                files[f].name, off);
            cr_assert_eq(fri_model_verify(buf + off, n, id.sign_pk), FR_OK,
                "%s @%zu: signature", files[f].name, off);
            cr_assert_eq(m.k, S_K);
            cr_assert_eq(m.n_items, S_ITEMS);
            cr_assert_eq(m.mu, 3.5f);
            float bias[S_ITEMS], fac[S_ITEMS * S_K];
            cr_assert_eq(fri_model_get(&m, bias, fac, 0), FR_OK);
            if (off == 0) {
                memcpy(bias0, bias, sizeof bias);
                memcpy(fac0, fac, sizeof fac);
            }
            // Same values at every offset; exact for f32 (the sample
            // biases are exact in f16 too).
            cr_assert(same_bits(bias, bias0, S_ITEMS));
            cr_assert(same_bits(fac, fac0, S_ITEMS * S_K));
            cr_assert(same_bits(bias, s_bias, S_ITEMS), "%s", files[f].name);
            if (files[f].enc == FRI_MENC_F32) {
                cr_assert(same_bits(fac, s_fac, S_ITEMS * S_K), "%s @%zu",
                    files[f].name, off);
            }
            if (m.kind == FRI_MODEL_VB) {
                float mean[S_K + 1], prec[(S_K + 1) * (S_K + 2) / 2];
                float var[S_ITEMS * (S_K + 1)];
                cr_assert_eq(fri_model_get_vb(&m, mean, prec, var), FR_OK);
                cr_assert_eq(m.beta, 1.25f);
                cr_assert(same_bits(mean, s_vb_mean, S_K + 1));
                cr_assert(same_bits(prec, s_vb_prec, 10));
                if (files[f].enc == FRI_MENC_F32) {
                    cr_assert(same_bits(var, s_vb_var, S_ITEMS * (S_K + 1)));
                } else { // I8C: 8-bit log codes, zeros exact
                    for (int t = 0; t < S_ITEMS * (S_K + 1); t++) {
                        cr_assert(s_vb_var[t] == 0.0f
                                ? var[t] == 0.0f
                                : fabsf(var[t] / s_vb_var[t] - 1) < 0.01f,
                            "var %d: %g vs %g", t, var[t], s_vb_var[t]);
                    }
                }
            }
        }
    }
    fri_identity_wipe(&id);
}

Test(proto_align, updates_decode_at_every_offset)
{
    static _Alignas(16) uint8_t gold[4096], buf[4096 + MAX_OFF];
    for (size_t off = 0; off < MAX_OFF; off++) {
        // Dense ALS statistics: rows and extras bit-exact.
        size_t n = read_vector("update_als_dense.bin", gold, sizeof gold);
        memcpy(buf + off, gold, n);
        fri_update u;
        cr_assert_eq(fri_update_decode(&u, buf + off, n), FR_OK, "@%zu", off);
        cr_assert_eq(u.round_id, 7u);
        cr_assert_eq(u.weight, 11.0f);
        float extra[12], row[S_K + 1];
        fri_update_get_extra(&u, extra);
        cr_assert(same_bits(extra, s_extra, 12));
        for (uint32_t r = 0; r < u.n_rows; r++) {
            uint32_t item = 99;
            fri_update_get_row(&u, r, row, &item);
            cr_assert_eq(item, r);
            cr_assert(same_bits(row, s_rows + r * (S_K + 1), S_K + 1));
        }
        // Sparse: item ids read from unaligned bytes.
        n = read_vector("update_grad_sparse.bin", gold, sizeof gold);
        memcpy(buf + off, gold, n);
        cr_assert_eq(fri_update_decode(&u, buf + off, n), FR_OK);
        cr_assert_eq(u.n_rows, 2u);
        for (uint32_t r = 0; r < 2; r++) {
            uint32_t item = 0;
            fri_update_get_row(&u, r, row, &item);
            cr_assert_eq(item, s_items[r]);
            cr_assert(same_bits(row, s_rows + r * (S_K + 1), S_K + 1));
        }
        // Fixed-point u32 values, including the top bit.
        n = read_vector("update_fixed.bin", gold, sizeof gold);
        memcpy(buf + off, gold, n);
        cr_assert_eq(fri_update_decode(&u, buf + off, n), FR_OK);
        for (uint32_t r = 0; r < u.n_rows; r++) {
            uint32_t fx[S_K + 1];
            fri_update_get_row(&u, r, fx, NULL);
            cr_assert_eq(memcmp(fx, s_fixed + r * (S_K + 1), sizeof fx), 0);
        }
    }
}

// What the target is (shown in the test log): byte order, size_t width.
Test(proto_align, host_is_described)
{
    cr_log_info("host: %s-endian, sizeof(size_t)=%zu, sizeof(void *)=%zu, "
                "_Alignof(max_align_t)=%zu",
        FRI_HOST_LE ? "little" : "big", sizeof(size_t), sizeof(void *),
        _Alignof(max_align_t));
    cr_assert(sizeof(size_t) == 4 || sizeof(size_t) == 8);
    cr_assert_eq(sizeof(float), 4u);
}
