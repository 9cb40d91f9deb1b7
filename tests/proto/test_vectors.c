// Golden vectors: encoder output must equal tests/vectors/*.bin byte for
// byte, and each file must decode (and re-encode) to itself. Regenerate
// the files with fedrec-gen-vectors only when the format changes on purpose.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "samples.h"

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

Test(proto_vectors, encoders_match_golden_bytes)
{
    static uint8_t want[4096], got[4096];
    for (size_t v = 0; v < S_N_VECTORS; v++) {
        size_t wn = read_vector(s_vectors[v].name, want, sizeof(want));
        size_t gn = 0;
        cr_assert_eq(s_vectors[v].fn(got, sizeof(got), &gn), FR_OK);
        cr_assert_eq(gn, wn, "%s: %zu bytes, golden %zu", s_vectors[v].name,
                     gn, wn);
        for (size_t i = 0; i < wn; i++) {
            cr_assert_eq(got[i], want[i], "%s: byte %zu differs",
                         s_vectors[v].name, i);
        }
    }
}

Test(proto_vectors, golden_model_signature_verifies)
{
    static uint8_t b[4096];
    fri_identity   id;
    sample_identity(&id, 100);
    const char *names[3] = { "model_f32.bin", "model_f16.bin",
                             "model_i8.bin" };
    for (int i = 0; i < 3; i++) {
        size_t    n = read_vector(names[i], b, sizeof(b));
        fri_model m;
        cr_assert_eq(fri_model_decode(&m, b, n), FR_OK);
        cr_assert_eq(fri_model_verify(b, n, id.sign_pk), FR_OK, "%s",
                     names[i]);
    }
    fri_identity_wipe(&id);
}

Test(proto_vectors, golden_update_reencodes_identically)
{
    static uint8_t b[4096], again[4096];
    size_t         n = read_vector("update_als_dense.bin", b, sizeof(b));
    fri_update     d;
    cr_assert_eq(fri_update_decode(&d, b, n), FR_OK);
    float extra[12], rows[S_ITEMS * 4];
    fri_update_get_extra(&d, extra);
    for (uint32_t r = 0; r < d.n_rows; r++) {
        fri_update_get_row(&d, r, rows + 4 * r, NULL);
    }
    d.extra = extra;
    d.rows = rows;
    size_t m;
    cr_assert_eq(fri_update_encode(again, sizeof(again), &m, &d), FR_OK);
    cr_assert_eq(m, n);
    cr_assert_eq(memcmp(again, b, n), 0);
}

Test(proto_vectors, golden_key_files_decode)
{
    uint8_t      b[128], seed[32];
    fri_identity id;
    fri_pubkeys  pk;
    sample_identity(&id, 100);
    size_t n = read_vector("keyfile.bin", b, sizeof(b));
    cr_assert_eq(fri_keyfile_decode(seed, b, n), FR_OK);
    cr_assert_eq(memcmp(seed, id.seed, 32), 0);
    n = read_vector("pubfile.bin", b, sizeof(b));
    cr_assert_eq(fri_pubfile_decode(&pk, b, n), FR_OK);
    cr_assert_eq(memcmp(pk.kx, id.kx_pk, 32), 0);
    cr_assert_eq(memcmp(pk.sign, id.sign_pk, 32), 0);
    fri_identity_wipe(&id);
}
