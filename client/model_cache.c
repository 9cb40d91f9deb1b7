// Refcounted immutable item models and the thread-safe cache that shares
// them between client handles. Models use malloc (not a handle's allocator)
// because they outlive any single handle.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client_internal.h"
#include "linalg.h"
#include "recency.h"
#include "mf.h"

fr_err
fri_cmodel_alloc(fri_cmodel **out, uint32_t n_items, uint32_t k)
{
    *out = NULL;
    if (k == 0 || k > FRI_MF_MAX_K || n_items == 0) {
        return FR_EINVAL;
    }
    if ((size_t) n_items > SIZE_MAX / sizeof(float) / k) {
        return FR_ETOOBIG;
    }
    fri_cmodel *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return FR_ENOMEM;
    }
    atomic_init(&m->refs, 1);
    m->n_items = n_items;
    m->k       = k;
    m->bi      = calloc(n_items, sizeof *m->bi);
    m->Q       = calloc((size_t) n_items * k, sizeof *m->Q);
    m->qtq     = calloc(fri_packed_len(k), sizeof *m->qtq);
    if (m->bi == NULL || m->Q == NULL || m->qtq == NULL) {
        fri_cmodel_unref(m);
        return FR_ENOMEM;
    }
    *out = m;
    return FR_OK;
}

fr_err
fri_cmodel_finish(fri_cmodel *m)
{
    // Only the implicit user solve needs Q^T Q; skipping it for explicit
    // models saves n_items * k^2 flops per model.
    if (m->vb) {
        return fri_cmodel_vb_finish(m);
    }
    if (!m->implicit) {
        return FR_OK;
    }
    // The last-item term's cosines (common/recency.h) need every row's norm.
    free(m->q_inv_norm);
    m->q_inv_norm = malloc((m->n_items > 0 ? m->n_items : 1) * sizeof(float));
    if (m->q_inv_norm == NULL) {
        return FR_ENOMEM;
    }
    fri_transition_inv_norms(m->q_inv_norm, m->Q, m->n_items, m->k);
    return fri_mf_gram(m->qtq, fri_packed_len(m->k), m->Q, m->n_items, m->k);
}

fri_cmodel *
fri_cmodel_ref(fri_cmodel *m)
{
    if (m != NULL) {
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    }
    return m;
}

void
fri_cmodel_unref(fri_cmodel *m)
{
    if (m == NULL) {
        return;
    }
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    free(m->bi);
    free(m->Q);
    free(m->qtq);
    free(m->q_inv_norm);
    fri_cmodel_vb_free(m);
    free(m);
}

size_t
fri_cmodel_bytes(const fri_cmodel *m)
{
    return sizeof *m + (size_t) m->n_items * sizeof(float) * (1 + m->k) +
           fri_packed_len(m->k) * sizeof(float);
}

// A handful of slots: one per aggregator key in use by the process (in
// practice one). Each slot holds the newest model of its signer.
#define CACHE_SLOTS 8

struct fr_model_cache {
    pthread_mutex_t lock;
    fri_cmodel      *slot[CACHE_SLOTS];
};

fr_err
fr_model_cache_create(fr_model_cache **out)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out                 = NULL;
    fr_model_cache *mc = calloc(1, sizeof *mc);
    if (mc == NULL) {
        return FR_ENOMEM;
    }
    if (pthread_mutex_init(&mc->lock, NULL) != 0) {
        free(mc);
        return FR_EINTERNAL;
    }
    *out = mc;
    return FR_OK;
}

void
fr_model_cache_destroy(fr_model_cache *mc)
{
    if (mc == NULL) {
        return;
    }
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        fri_cmodel_unref(mc->slot[i]);
    }
    pthread_mutex_destroy(&mc->lock);
    free(mc);
}

static int
same_signer(const fri_cmodel *m, const uint8_t signer[32])
{
    return sodium_memcmp(m->signer, signer, 32) == 0;
}

fri_cmodel *
fri_model_cache_get(fr_model_cache *mc, uint64_t version,
                    const uint8_t signer[32])
{
    fri_cmodel *r = NULL;
    pthread_mutex_lock(&mc->lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        fri_cmodel *m = mc->slot[i];
        if (m != NULL && m->version == version && same_signer(m, signer)) {
            r = fri_cmodel_ref(m);
            break;
        }
    }
    pthread_mutex_unlock(&mc->lock);
    return r;
}

fri_cmodel *
fri_model_cache_latest(fr_model_cache *mc, const uint8_t signer[32])
{
    fri_cmodel *r = NULL;
    pthread_mutex_lock(&mc->lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        fri_cmodel *m = mc->slot[i];
        if (m != NULL && same_signer(m, signer)) {
            r = fri_cmodel_ref(m);
            break;
        }
    }
    pthread_mutex_unlock(&mc->lock);
    return r;
}

fr_err
fri_model_cache_put(fr_model_cache *mc, fri_cmodel *m, fri_cmodel **used)
{
    *used          = NULL;
    fri_cmodel *old = NULL;
    pthread_mutex_lock(&mc->lock);
    size_t free_slot = CACHE_SLOTS;
    size_t i;
    for (i = 0; i < CACHE_SLOTS; i++) {
        if (mc->slot[i] == NULL) {
            if (free_slot == CACHE_SLOTS) {
                free_slot = i;
            }
            continue;
        }
        if (same_signer(mc->slot[i], m->signer)) {
            break;
        }
    }
    if (i < CACHE_SLOTS) {
        fri_cmodel *cur = mc->slot[i];
        if (cur->version == m->version) {
            *used = fri_cmodel_ref(cur);
        } else if (cur->version < m->version) {
            old         = cur;
            mc->slot[i] = fri_cmodel_ref(m);
            *used       = fri_cmodel_ref(m);
        } else {
            // Older than what is cached: usable by this handle, not cached.
            *used = fri_cmodel_ref(m);
        }
    } else {
        if (free_slot == CACHE_SLOTS) {
            // Evict slot 0; its holders keep their references.
            free_slot = 0;
            old       = mc->slot[0];
        }
        mc->slot[free_slot] = fri_cmodel_ref(m);
        *used               = fri_cmodel_ref(m);
    }
    pthread_mutex_unlock(&mc->lock);
    fri_cmodel_unref(old);
    return FR_OK;
}
