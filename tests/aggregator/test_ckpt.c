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
