// Helpers shared by the client tests (header only).
#ifndef FR_TESTS_CLIENT_TESTUTIL_H
#define FR_TESTS_CLIENT_TESTUTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_internal.h"
#include "rng.h"

// A random explicit (or implicit) model signed by signer_pk (Ed25519 half).
static inline fri_cmodel *
tu_model(uint32_t n_items, uint32_t k, uint64_t version, uint64_t seed,
         const uint8_t signer[32], int implicit)
{
    fri_cmodel *m = NULL;
    if (fri_cmodel_alloc(&m, n_items, k) != FR_OK) {
        return NULL;
    }
    fri_rng r;
    fri_rng_seed(&r, seed);
    m->version  = version;
    m->round    = version;
    m->implicit = implicit;
    m->mu       = implicit ? 0.0f : 3.5f;
    for (uint32_t i = 0; i < n_items; i++) {
        m->bi[i] = implicit ? 0.0f : (float) (0.3 * fri_rng_normal(&r));
        for (uint32_t f = 0; f < k; f++) {
            m->Q[(size_t) i * k + f] = (float) (0.4 * fri_rng_normal(&r));
        }
    }
    memcpy(m->signer, signer, 32);
    if (fri_cmodel_finish(m) != FR_OK) {
        fri_cmodel_unref(m);
        return NULL;
    }
    return m;
}

// Installs m as the model of c (through c's cache, as a fetch would).
static inline void
tu_install(fr_client *c, fri_cmodel *m)
{
    fri_cmodel *used = NULL;
    (void) fri_model_cache_put(c->cache, m, &used);
    fri_client_set_model(c, used);
    fri_cmodel_unref(used);
}

// The first of bad[0..n) that fr_client_create does not refuse (FR_EINVAL,
// no handle) when set in the double field at byte offset off of
// fr_client_config (offsetof); n when every one is refused.
static inline size_t
tu_first_accepted(size_t off, const double *bad, size_t n)
{
    for (size_t t = 0; t < n; t++) {
        fr_client_config cfg;
        fr_client_config_init(&cfg);
        memcpy((char *) &cfg + off, &bad[t], sizeof(double));
        fr_client *c = NULL;
        fr_err     e = fr_client_create(&c, &cfg);
        if (e != FR_EINVAL || c != NULL) {
            fr_client_destroy(c);
            return t;
        }
    }
    return n;
}

// A fresh temporary directory (mkdtemp); caller removes it.
static inline void
tu_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/frclientXXXXXX", base ? base : "/tmp");
    if (mkdtemp(out) == NULL) {
        out[0] = '\0';
    }
}

static inline void
tu_rmtree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", dir);
    }
}

#endif
