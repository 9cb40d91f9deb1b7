// Checkpoints: round trip, damage detection naming the file, fallback to
// checkpoint.prev, and an aggregator resuming from its state directory.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg.h"
#include "ckpt.h"
#include "linalg.h"
#include "state_dir.h"

static char dir[256];

static void
mkstate(void)
{
    state_dir_make(dir, sizeof(dir), "/tmp/fr-agg-ckpt-XXXXXX");
}

static void
fill(fri_ckpt *c, float base, float *bi, float *Q, float *m)
{
    memset(c, 0, sizeof(*c));
    memset(c->fingerprint, 0xab, sizeof(c->fingerprint));
    c->version    = 7;
    c->round      = 9;
    c->next_round = 12;
    c->n_items    = 4;
    c->k          = 3;
    c->mu         = 3.25f;
    for (int i = 0; i < 4; i++) {
        bi[i] = base + (float) i;
    }
    for (int i = 0; i < 12; i++) {
        Q[i] = base * 0.5f - (float) i;
    }
    for (int i = 0; i < 16; i++) {
        m[i] = (float) i * 0.125f;
    }
    c->bi           = bi;
    c->Q            = Q;
    c->opt          = 2;
    c->opt_t        = 5;
    c->opt_len      = 16;
    c->n_opt        = 1;
    c->opt_state[0] = m;
}

static void
flip_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, off, SEEK_SET), 0);
    int ch = fgetc(f);
    cr_assert_eq(fseek(f, off, SEEK_SET), 0);
    fputc(ch ^ 0x40, f);
    fclose(f);
}

Test(agg_ckpt, round_trip)
{
    mkstate();
    float    bi[4], Q[12], m[16];
    fri_ckpt c, r;
    fill(&c, 1.0f, bi, Q, m);
    char err[512];
    cr_assert_eq(fri_ckpt_write(dir, &c, err, sizeof(err)), FR_OK, "%s", err);
    int prev = -1;
    cr_assert_eq(fri_ckpt_load(dir, &r, &prev, err, sizeof(err)), FR_OK, "%s",
                 err);
    cr_assert_eq(prev, 0);
    cr_assert_eq(r.version, 7);
    cr_assert_eq(r.round, 9);
    cr_assert_eq(r.next_round, 12);
    cr_assert_eq(r.n_items, 4);
    cr_assert_eq(r.k, 3);
    cr_assert_eq(r.mu, 3.25f);
    cr_assert_eq(r.opt, 2);
    cr_assert_eq(r.opt_t, 5);
    cr_assert_eq(r.n_opt, 1);
    cr_assert_eq(r.opt_len, 16);
    cr_assert_eq(memcmp(r.fingerprint, c.fingerprint, 32), 0);
    cr_assert_eq(memcmp(r.bi, bi, sizeof(bi)), 0);
    cr_assert_eq(memcmp(r.Q, Q, sizeof(Q)), 0);
    cr_assert_eq(memcmp(r.opt_state[0], m, sizeof(m)), 0);
    fri_ckpt_free(&r);
    cr_assert_null(r.bi);
    // No temporary files are left behind.
    char p[400];
    snprintf(p, sizeof(p), "%s/checkpoint.tmp", dir);
    cr_assert_neq(access(p, F_OK), 0);
    state_dir_remove(dir);
}

Test(agg_ckpt, damaged_file_refused_and_prev_used)
{
    mkstate();
    float    bi[4], Q[12], m[16];
    fri_ckpt c, r;
    char     err[512], path[400];
    fill(&c, 1.0f, bi, Q, m);
    cr_assert_eq(fri_ckpt_write(dir, &c, err, sizeof(err)), FR_OK, "%s", err);
    c.version = 8;
    fill(&c, 2.0f, bi, Q, m);
    c.version = 8;
    cr_assert_eq(fri_ckpt_write(dir, &c, err, sizeof(err)), FR_OK, "%s", err);

    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    flip_byte(path, 100);
    // The file alone: refused, naming the file.
    cr_assert_eq(fri_ckpt_read_file(path, &r, err, sizeof(err)), FR_EFORMAT);
    cr_assert(strstr(err, path) != NULL, "'%s' does not name %s", err, path);
    cr_assert(strstr(err, "checksum") != NULL, "%s", err);
    // The directory: falls back to the previous round's checkpoint.
    int prev = 0;
    cr_assert_eq(fri_ckpt_load(dir, &r, &prev, err, sizeof(err)), FR_OK, "%s",
                 err);
    cr_assert_eq(prev, 1);
    cr_assert_eq(r.version, 7);
    cr_assert_eq(r.bi[0], 1.0f);
    cr_assert(strstr(err, path) != NULL, "%s", err);
    fri_ckpt_free(&r);

    // Both damaged: refused.
    snprintf(path, sizeof(path), "%s/checkpoint.prev", dir);
    flip_byte(path, 60);
    cr_assert_eq(fri_ckpt_load(dir, &r, &prev, err, sizeof(err)), FR_EFORMAT);
    cr_assert(strstr(err, "checkpoint.prev") != NULL, "%s", err);

    // Truncated.
    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    cr_assert_eq(truncate(path, 50), 0);
    cr_assert_eq(fri_ckpt_read_file(path, &r, err, sizeof(err)), FR_EFORMAT);
    state_dir_remove(dir);
}

Test(agg_ckpt, empty_dir_is_enoent)
{
    mkstate();
    fri_ckpt r;
    int      prev = 0;
    char     err[512];
    cr_assert_eq(fri_ckpt_load(dir, &r, &prev, err, sizeof(err)), FR_ENOENT);
    state_dir_remove(dir);
}

// A round's statistics: one user, two items.
static void
one_round(fri_agg *a, uint64_t now, uint8_t tag)
{
    uint8_t pk[FRI_AGG_KEYBYTES];
    memset(pk, tag, sizeof(pk));
    fri_agg_task t;
    cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
    cr_assert(t.has_task);
    float    gram[6] = {0.25f, 0.1f, 0.5f, 0.04f, 0.2f, 1.0f};
    float    rows[6] = {0.5f, 0.2f, 1.0f, 1.0f, 0.4f, 2.0f};
    uint32_t items[2] = {1, 3};
    fri_agg_update u = {.round       = t.round,
                        .n           = 2,
                        .items       = items,
                        .gram        = gram,
                        .gram_len    = 6,
                        .rows        = rows,
                        .rows_len    = 6,
                        .sum_ratings = 8.0,
                        .count       = 2};
    cr_assert_eq(fri_agg_submit(a, now, pk, &u), FR_OK);
}

Test(agg_ckpt, aggregator_resumes_from_state_dir)
{
    mkstate();
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = 5;
    c.k                 = 2;
    c.clients_per_round = 1;
    c.state_dir         = dir;
    fri_agg *a          = NULL;
    char     err[512];
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    one_round(a, 1, 1);
    one_round(a, 2, 2);
    float    Q[10], bi[5], mu;
    uint64_t v;
    fri_agg_model_copy(a, &mu, bi, 5, Q, 10, &v);
    cr_assert_eq(v, 2);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    uint64_t round = m.round;
    fri_agg_destroy(a); // as if killed: nothing written at exit

    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    float    Q2[10], bi2[5], mu2;
    uint64_t v2;
    fri_agg_model_copy(a, &mu2, bi2, 5, Q2, 10, &v2);
    cr_assert_eq(v2, 2);
    cr_assert_eq(mu2, mu);
    cr_assert_eq(memcmp(Q, Q2, sizeof(Q)), 0);
    cr_assert_eq(memcmp(bi, bi2, sizeof(bi)), 0);
    fri_agg_metrics_get(a, &m);
    cr_assert(m.round >= round, "round id went back: %llu < %llu",
              (unsigned long long) m.round, (unsigned long long) round);
    fri_agg_destroy(a);

    // Another model shape must not load this state.
    c.k = 3;
    a   = (fri_agg *) 1;
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_ESTATE);
    cr_assert_null(a);
    cr_assert(strstr(err, dir) != NULL, "%s", err);

    // A damaged current checkpoint: resumes from the previous round.
    c.k = 2;
    char path[400];
    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    flip_byte(path, 90);
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    fri_agg_model_copy(a, NULL, NULL, 0, NULL, 0, &v2);
    cr_assert_eq(v2, 1);
    fri_agg_destroy(a);
    state_dir_remove(dir);
}

// A checkpoint that uses every section of format 6: two optimizer arrays,
// the accountant, a VBMF state, carried statistics, applied rounds and a
// ledger. Its bytes are the golden vector
// tests/vectors/checkpoint.bin (also the fuzz_ckpt seed).
static uint8_t *
full_checkpoint(size_t *len)
{
    static float bi[4], Q[12], m[16], v[16], vb[69];
    fri_ckpt     c;
    fill(&c, 1.0f, bi, Q, m);
    for (int i = 0; i < 16; i++) {
        v[i] = 0.5f + (float) i;
    }
    c.opt          = 3;
    c.n_opt        = 2;
    c.opt_state[1] = v;
    c.n_rdp        = 5;
    c.dp_rounds    = 3;
    for (int i = 0; i < 5; i++) {
        c.rdp[i] = 0.25 * (i + 1);
    }
    for (int i = 0; i < 69; i++) {
        vb[i] = 0.5f + 0.01f * (float) i;
    }
    c.n_vb = 69; // fri_vb_state_len for 4 items, k = 3
    c.vb   = vb;
    // Carried statistics of items 1 and 3 (acc_len = packed Gram 10 + h 4)
    // and the VBMF running global block (d + P + 2 = 16).
    static uint32_t carried[2] = {1, 3};
    static float    carry[28];
    static double   glob[16];
    for (int i = 0; i < 28; i++) {
        carry[i] = 0.25f * (float) i - 1.0f;
    }
    for (int i = 0; i < 16; i++) {
        glob[i] = 1.5 + (double) i;
    }
    c.acc_len     = 14;
    c.n_carried   = 2;
    c.carried     = carried;
    c.carry       = carry;
    c.carry_sum   = 123.5;
    c.carry_count = 37.0;
    c.n_glob      = 16;
    c.glob        = glob;
    // Two devices' applied rounds (latest statistics under masking).
    static uint8_t  akeys[64];
    static uint64_t arounds[2] = {2, 7};
    for (int i = 0; i < 64; i++) {
        akeys[i] = (uint8_t) (3 * i + 1);
    }
    c.n_applied      = 2;
    c.applied_keys   = akeys;
    c.applied_rounds = arounds;
    // A ledger's bytes (opaque to the checkpoint, ledger.h).
    static uint8_t ledger[40];
    for (int i = 0; i < 40; i++) {
        ledger[i] = (uint8_t)(7 * i + 2);
    }
    c.ledger_len = sizeof(ledger);
    c.ledger     = ledger;
    char err[512], path[400];
    mkstate();
    cr_assert_eq(fri_ckpt_write(dir, &c, err, sizeof(err)), FR_OK, "%s", err);
    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    uint8_t *buf = malloc(8192);
    cr_assert_not_null(buf);
    *len = fread(buf, 1, 8192, f);
    fclose(f);
    state_dir_remove(dir);
    cr_assert(*len > 0 && *len < 8192);
    return buf;
}

Test(agg_ckpt, format_matches_golden_vector)
{
    size_t   len = 0;
    uint8_t *got = full_checkpoint(&len);
    char     path[1024];
    snprintf(path, sizeof(path), "%s/checkpoint.bin", FR_TEST_VECTORS);
    if (getenv("FR_WRITE_VECTORS") != NULL) {
        // Only when the format changes on purpose.
        FILE *w = fopen(path, "wb");
        cr_assert_not_null(w);
        cr_assert_eq(fwrite(got, 1, len, w), len);
        cr_assert_eq(fclose(w), 0);
    }
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "missing golden vector %s", path);
    static uint8_t want[8192];
    size_t         wn = fread(want, 1, sizeof(want), f);
    fclose(f);
    cr_assert_eq(wn, len, "checkpoint is %zu bytes, golden %zu", len, wn);
    cr_assert_eq(memcmp(got, want, len), 0, "checkpoint bytes differ");
    // And the golden file decodes to what was written.
    fri_ckpt r;
    char     err[512];
    cr_assert_eq(fri_ckpt_decode(want, wn, "golden", &r, err, sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert_eq(r.n_opt, 2);
    cr_assert_eq(r.opt_state[1][3], 3.5f);
    cr_assert_eq(r.n_rdp, 5);
    cr_assert_eq(r.rdp[4], 1.25);
    cr_assert_eq(r.dp_rounds, 3);
    cr_assert_eq(r.n_vb, 69);
    cr_assert_eq(r.vb[0], 0.5f);
    cr_assert_eq(r.ledger_len, 40);
    cr_assert_eq(r.ledger[39], (uint8_t)(7 * 39 + 2));
    cr_assert_eq(r.n_carried, 2);
    cr_assert_eq(r.acc_len, 14);
    cr_assert_eq(r.carried[1], 3);
    cr_assert_eq(r.carry[27], 5.75f);
    cr_assert_eq(r.carry_sum, 123.5);
    cr_assert_eq(r.carry_count, 37.0);
    cr_assert_eq(r.n_glob, 16);
    cr_assert_eq(r.glob[15], 16.5);
    cr_assert_eq(r.n_applied, 2);
    cr_assert_eq(r.applied_keys[63], (uint8_t) (3 * 63 + 1));
    cr_assert_eq(r.applied_rounds[1], 7);
    fri_ckpt_free(&r);
    free(got);
}


// A format 3 checkpoint (before carried statistics) still loads, with
// none.
// Decodes the older-format vector tests/vectors/NAME into *r.
static void
decode_vector(const char *name, fri_ckpt *r)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", FR_TEST_VECTORS, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "missing vector %s", path);
    static uint8_t b[8192];
    size_t         n = fread(b, 1, sizeof(b), f);
    fclose(f);
    char err[512];
    cr_assert_eq(fri_ckpt_decode(b, n, name, r, err, sizeof(err)), FR_OK,
                 "%s", err);
}

Test(agg_ckpt, format_3_still_loads)
{
    fri_ckpt r;
    decode_vector("checkpoint_v3.bin", &r);
    cr_assert_eq(r.n_vb, 69);
    cr_assert_eq(r.n_carried, 0);
    cr_assert_eq(r.n_glob, 0);
    fri_ckpt_free(&r);
}

// A format 4 checkpoint (before the per-device applied rounds) still
// loads, with none.
Test(agg_ckpt, format_4_still_loads)
{
    fri_ckpt r;
    decode_vector("checkpoint_v4.bin", &r);
    cr_assert_eq(r.n_carried, 2);
    cr_assert_eq(r.n_glob, 16);
    cr_assert_eq(r.n_applied, 0);
    fri_ckpt_free(&r);
}

// A format 5 checkpoint (before the ledger) still loads, without one.
Test(agg_ckpt, format_5_still_loads)
{
    fri_ckpt r;
    decode_vector("checkpoint_v5.bin", &r);
    cr_assert_eq(r.n_applied, 2);
    cr_assert_eq(r.applied_rounds[1], 7);
    cr_assert_eq(r.ledger_len, 0);
    cr_assert_null(r.ledger);
    fri_ckpt_free(&r);
}

static void
assert_refused(const uint8_t *b, size_t n, const char *what, size_t at)
{
    fri_ckpt r;
    char     err[512];
    err[0]   = '\0';
    fr_err e = fri_ckpt_decode(b, n, "copy", &r, err, sizeof(err));
    cr_assert_eq(e, FR_EFORMAT, "%s at %zu: %s accepted", what, at,
                 fr_strerror(e));
    cr_assert(strncmp(err, "checkpoint copy: ", 17) == 0, "%s at %zu: '%s'",
              what, at, err);
    cr_assert_null(r.bi);
    cr_assert_null(r.Q);
    cr_assert_null(r.vb);
    cr_assert_null(r.opt_state[0]);
}

Test(agg_ckpt, decode_refuses_every_truncation_and_bit_flip)
{
    size_t   len = 0;
    uint8_t *good = full_checkpoint(&len);
    fri_ckpt r;
    char     err[512];
    cr_assert_eq(fri_ckpt_decode(good, len, "copy", &r, err, sizeof(err)),
                 FR_OK, "%s", err);
    fri_ckpt_free(&r);
    // Exact-size heap copies, so the sanitizers see any overread.
    for (size_t n = 0; n < len; n++) {
        uint8_t *t = malloc(n > 0 ? n : 1);
        cr_assert_not_null(t);
        memcpy(t, good, n);
        assert_refused(t, n, "truncated", n);
        free(t);
    }
    uint8_t *f = malloc(len);
    cr_assert_not_null(f);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(f, good, len);
            f[i] ^= (uint8_t) (1u << bit);
            assert_refused(f, len, "bit flip", i * 8 + (size_t) bit);
        }
    }
    // A longer buffer (trailing garbage) is damage too.
    uint8_t *x = malloc(len + 1);
    cr_assert_not_null(x);
    memcpy(x, good, len);
    x[len] = 0;
    assert_refused(x, len + 1, "extended", len);
    cr_assert_eq(fri_ckpt_decode(NULL, 0, NULL, &r, err, sizeof(err)),
                 FR_EFORMAT);
    free(x);
    free(f);
    free(good);
}
