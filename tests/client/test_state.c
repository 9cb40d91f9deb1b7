// State file: round trip, wrong key, damaged files, atomic replacement.
#include <criterion/criterion.h>
#include <sodium.h>
#include <sys/stat.h>

#include "testutil.h"
#include "wire.h"

static fr_err
open_client(fr_client **c, const char *path, uint8_t key_byte,
            fr_model_cache *mc)
{
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    cfg.state_path = path;
    memset(cfg.state_key, key_byte, sizeof cfg.state_key);
    memset(cfg.server_pk, 0x33, sizeof cfg.server_pk);
    cfg.model_cache = mc;
    cfg.seed        = 11;
    return fr_client_create(c, &cfg);
}

static void
read_all(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t) n + 1);
    cr_assert_eq(fread(*buf, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    *len = (size_t) n;
}

static void
write_all(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

// Creates a state file with interactions and a model; returns the client's
// public key.
static void
make_state(const char *path, uint8_t pk[FR_PUBLICKEYBYTES])
{
    fr_client *c = NULL;
    cr_assert_eq(open_client(&c, path, 0x5a, NULL), FR_OK);
    for (uint32_t i = 0; i < 40; i++) {
        cr_assert_eq(fr_client_add(c, i * 3, (float) (1 + i % 5),
                                   1000 + i), FR_OK);
    }
    fri_cmodel *m = tu_model(150, 6, 4, 8, c->server_pk + 32, 0);
    tu_install(c, m);
    fri_cmodel_unref(m);
    cr_assert_eq(fr_client_fold_in(c), FR_OK);
    cr_assert_eq(fr_client_save(c), FR_OK);
    fr_client_public_key(c, pk);
    fr_client_destroy(c);
}

Test(client_state, round_trip)
{
    char dir[256], path[300];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/state.bin", dir);
    uint8_t pk[FR_PUBLICKEYBYTES];
    make_state(path, pk);

    // A fresh cache so the model must come from the file.
    fr_model_cache *mc = NULL;
    cr_assert_eq(fr_model_cache_create(&mc), FR_OK);
    fr_client *c = NULL;
    cr_assert_eq(open_client(&c, path, 0x5a, mc), FR_OK,
                 "%s", c ? fr_client_errmsg(c) : "");
    uint8_t pk2[FR_PUBLICKEYBYTES];
    fr_client_public_key(c, pk2);
    cr_assert(memcmp(pk, pk2, sizeof pk) == 0, "identity not restored");
    cr_assert_eq(fr_client_count(c), 40);
    cr_assert_eq(c->items[5], 15);
    cr_assert_float_eq(c->values[5], 1.0f, 0);
    cr_assert_eq(c->ts[5], 1005);
    cr_assert_not_null(c->model);
    cr_assert_eq(c->model->version, 4);
    cr_assert_eq(c->model->n_items, 150);
    cr_assert(c->fitted, "user vector should still be fitted");
    float s;
    cr_assert_eq(fr_client_predict(c, 1, &s), FR_OK);
    fr_client_destroy(c);
    fr_model_cache_destroy(mc);
    tu_rmtree(dir);
}

Test(client_state, wrong_key_is_ecrypto)
{
    char dir[256], path[300];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/state.bin", dir);
    uint8_t pk[FR_PUBLICKEYBYTES];
    make_state(path, pk);
    fr_client *c = (fr_client *) 1;
    cr_assert_eq(open_client(&c, path, 0x5b, NULL), FR_ECRYPTO);
    cr_assert_null(c);
    tu_rmtree(dir);
}

Test(client_state, damaged_files_fail_cleanly)
{
    char dir[256], path[300];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/state.bin", dir);
    uint8_t pk[FR_PUBLICKEYBYTES];
    make_state(path, pk);
    uint8_t *orig;
    size_t   len;
    read_all(path, &orig, &len);

    // Truncations of every interesting size.
    size_t cuts[] = {0, 3, 39, 40, 55, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all(path, orig, cuts[i]);
        fr_client *c = NULL;
        fr_err     e = open_client(&c, path, 0x5a, NULL);
        cr_assert(e == FR_EFORMAT || e == FR_ECRYPTO,
                  "cut %zu gave %s", cuts[i], fr_errname(e));
        cr_assert_null(c);
    }
    // A bit flip anywhere is detected.
    for (size_t pos = 0; pos < len; pos += len / 97 + 1) {
        orig[pos] ^= 0x10;
        write_all(path, orig, len);
        orig[pos] ^= 0x10;
        fr_client *c = NULL;
        fr_err     e = open_client(&c, path, 0x5a, NULL);
        cr_assert(e == FR_EFORMAT || e == FR_ECRYPTO,
                  "flip at %zu gave %s", pos, fr_errname(e));
    }
    // Appended garbage.
    uint8_t *big = malloc(len + 8);
    memcpy(big, orig, len);
    memset(big + len, 0, 8);
    write_all(path, big, len + 8);
    fr_client *c = NULL;
    cr_assert_eq(open_client(&c, path, 0x5a, NULL), FR_EFORMAT);
    // The failed loads never modified the file.
    uint8_t *now;
    size_t   now_len;
    read_all(path, &now, &now_len);
    cr_assert_eq(now_len, len + 8);
    cr_assert(memcmp(now, big, now_len) == 0);
    free(big);
    free(now);
    free(orig);
    tu_rmtree(dir);
}

Test(client_state, failed_save_leaves_old_file_intact)
{
    // A directory squatting on PATH.tmp makes the write fail even for
    // root, who ignores directory permissions.
    char dir[256], path[300], tmp[310];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/state.bin", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    uint8_t pk[FR_PUBLICKEYBYTES];
    make_state(path, pk);
    uint8_t *orig;
    size_t   len;
    read_all(path, &orig, &len);

    fr_client *c = NULL;
    cr_assert_eq(open_client(&c, path, 0x5a, NULL), FR_OK);
    cr_assert_eq(fr_client_add(c, 999, 5.0f, 0), FR_OK);
    cr_assert_eq(mkdir(tmp, 0700), 0); // PATH.tmp cannot be opened
    cr_assert_eq(fr_client_save(c), FR_EIO);
    cr_assert(strstr(fr_client_errmsg(c), "tmp") != NULL,
              "message: %s", fr_client_errmsg(c));
    uint8_t *now;
    size_t   now_len;
    read_all(path, &now, &now_len);
    cr_assert_eq(now_len, len);
    cr_assert(memcmp(now, orig, len) == 0, "old state was modified");
    // Once the obstacle is gone the save succeeds and leaves no tmp file.
    cr_assert_eq(rmdir(tmp), 0);
    cr_assert_eq(fr_client_save(c), FR_OK);
    cr_assert_neq(access(tmp, F_OK), 0);
    fr_client_destroy(c);
    cr_assert_eq(open_client(&c, path, 0x5a, NULL), FR_OK);
    cr_assert_eq(fr_client_count(c), 41);
    // Each save uses a fresh nonce: two saves of the same state differ.
    cr_assert_eq(fr_client_save(c), FR_OK);
    uint8_t *a;
    size_t   alen;
    read_all(path, &a, &alen);
    cr_assert_eq(fr_client_save(c), FR_OK);
    uint8_t *b;
    size_t   blen;
    read_all(path, &b, &blen);
    cr_assert_eq(alen, blen);
    cr_assert(memcmp(a, b, alen) != 0, "nonce reused across saves");
    fr_client_destroy(c);
    free(a);
    free(b);
    free(orig);
    free(now);
    tu_rmtree(dir);
}

Test(client_state, memory_only_client_cannot_save)
{
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    cr_assert_eq(fr_client_save(c), FR_ESTATE);
    fr_client_destroy(c);
}

// The last acknowledged contribution of latest-statistics mode survives a
// restart (a device that lost it would send its whole contribution again
// and the aggregator's running sum would count it twice), and a version 1
// file, which has none, still loads.
Test(client_state, last_contribution_round_trip_and_version_1)
{
    char dir[256], path[300];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/state.bin", dir);
    uint8_t pk[FR_PUBLICKEYBYTES];
    make_state(path, pk);
    fr_client *c = NULL;
    cr_assert_eq(open_client(&c, path, 0x5a, NULL), FR_OK);
    cr_assert_null(c->last, "no contribution acknowledged yet");
    fri_stats_last *l = calloc(1, sizeof *l);
    cr_assert_not_null(l);
    l->n       = 3;
    l->width   = 5;
    l->n_extra = 17;
    l->mu      = 3.25f;
    l->items   = malloc(3 * sizeof *l->items);
    l->rows    = malloc(15 * sizeof *l->rows);
    l->extra   = malloc(17 * sizeof *l->extra);
    cr_assert(l->items && l->rows && l->extra);
    for (uint32_t j = 0; j < 3; j++) {
        l->items[j] = 3 * j + 1;
    }
    for (int t = 0; t < 15; t++) {
        l->rows[t] = 0.5f * (float) t - 2.0f;
    }
    for (int t = 0; t < 17; t++) {
        l->extra[t] = (float) t * 1.25f;
    }
    c->last = l;
    // A masked contribution sent in round 9 whose outcome is unknown
    // (version 3): kept with its round.
    fri_stats_last *pd = calloc(1, sizeof *pd);
    cr_assert_not_null(pd);
    pd->n       = 1;
    pd->width   = 5;
    pd->n_extra = 2;
    pd->mu      = 3.5f;
    pd->items   = malloc(sizeof *pd->items);
    pd->rows    = calloc(5, sizeof *pd->rows);
    pd->extra   = calloc(2, sizeof *pd->extra);
    cr_assert(pd->items && pd->rows && pd->extra);
    pd->items[0]     = 11;
    pd->rows[4]      = -1.5f;
    pd->extra[1]     = 2.0f;
    c->pending       = pd;
    c->pending_round = 9;
    cr_assert_eq(fr_client_save(c), FR_OK);
    fr_client_destroy(c);

    cr_assert_eq(open_client(&c, path, 0x5a, NULL), FR_OK, "%s",
                 c ? fr_client_errmsg(c) : "");
    const fri_stats_last *g = c->last;
    cr_assert_not_null(g, "the last contribution was not restored");
    cr_assert_eq(g->n, 3);
    cr_assert_eq(g->width, 5);
    cr_assert_eq(g->n_extra, 17);
    cr_assert_float_eq(g->mu, 3.25f, 0);
    cr_assert_eq(g->items[2], 7);
    cr_assert_float_eq(g->rows[14], 5.0f, 0);
    cr_assert_float_eq(g->extra[16], 20.0f, 0);
    cr_assert_eq(fr_client_count(c), 40);
    const fri_stats_last *gp = c->pending;
    cr_assert_not_null(gp, "the pending contribution was not restored");
    cr_assert_eq(c->pending_round, 9);
    cr_assert_eq(gp->n, 1);
    cr_assert_eq(gp->items[0], 11);
    cr_assert_float_eq(gp->rows[4], -1.5f, 0);
    cr_assert_float_eq(gp->extra[1], 2.0f, 0);
    cr_assert_float_eq(gp->mu, 3.5f, 0);
    // A plain pending report (round 0) is not kept: its ACK commits it.
    c->pending_round = 0;
    cr_assert_eq(fr_client_save(c), FR_OK);
    fr_client_destroy(c);
    cr_assert_eq(open_client(&c, path, 0x5a, NULL), FR_OK);
    cr_assert_null(c->pending);
    cr_assert_eq(c->pending_round, 0);
    cr_assert_not_null(c->last);
    fr_client_destroy(c);

    // A version 1 file: the same body without the contribution sections.
    unlink(path);
    make_state(path, pk); // has_last = has_pending = 0 after the interactions
    uint8_t *buf;
    size_t   len;
    read_all(path, &buf, &len);
    uint8_t key[FR_STATEKEYBYTES];
    memset(key, 0x5a, sizeof key);
    size_t   blen  = len - 40 - crypto_aead_xchacha20poly1305_ietf_ABYTES;
    uint8_t *plain = malloc(blen);
    cr_assert_eq(crypto_aead_xchacha20poly1305_ietf_decrypt(
                     plain, NULL, NULL, buf + 40, len - 40, buf, 40,
                     buf + 16, key),
                 0);
    uint32_t k   = fri_get32(plain + 32 + 20 + 8 + 4);
    size_t   off = 32 + 20 + 8 + 20 + (size_t) k * 4;
    off += 8 + (size_t) fri_get64(plain + off) * 16; // the interactions
    cr_assert(plain[off] == 0 && plain[off + 1] == 0,
              "has_last and has_pending bytes expected at %zu", off);
    memmove(plain + off, plain + off + 2, blen - off - 2);
    size_t   nlen = 40 + (blen - 2) + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    uint8_t *v1   = malloc(nlen);
    memcpy(v1, buf, 40);
    fri_put16(v1 + 4, 1);
    fri_put64(v1 + 8, blen - 2);
    cr_assert_eq(crypto_aead_xchacha20poly1305_ietf_encrypt(
                     v1 + 40, NULL, plain, blen - 2, v1, 40, NULL, v1 + 16,
                     key),
                 0);
    write_all(path, v1, nlen);
    cr_assert_eq(open_client(&c, path, 0x5a, NULL), FR_OK, "%s",
                 c ? fr_client_errmsg(c) : "");
    cr_assert_null(c->last);
    cr_assert_eq(fr_client_count(c), 40);
    cr_assert_not_null(c->model);
    fr_client_destroy(c);
    // Version 4 is not known.
    fri_put16(v1 + 4, 4);
    write_all(path, v1, nlen);
    cr_assert_eq(open_client(&c, path, 0x5a, NULL), FR_EFORMAT);
    free(plain);
    free(v1);
    free(buf);
    tu_rmtree(dir);
}
