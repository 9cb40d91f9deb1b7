// Per-device applied rounds (keymap.h): open addressing with linear
// probing over a power-of-two table kept at most half full.
#include "keymap.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

typedef struct slot {
    uint8_t  key[FRI_KEYMAP_KEYBYTES];
    uint64_t round; // 0: empty
} slot;

struct fri_keymap {
    slot   *s;
    size_t  cap; // power of two
    size_t  n;
    uint8_t hkey[crypto_shorthash_KEYBYTES];
};

fri_keymap *
fri_keymap_create(void)
{
    fri_keymap *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->cap = 64;
    t->s   = calloc(t->cap, sizeof(slot));
    if (t->s == NULL) {
        free(t);
        return NULL;
    }
    crypto_shorthash_keygen(t->hkey);
    return t;
}

void
fri_keymap_destroy(fri_keymap *t)
{
    if (t != NULL) {
        free(t->s);
        sodium_memzero(t->hkey, sizeof(t->hkey));
        free(t);
    }
}

static size_t
home(const fri_keymap *t, const uint8_t *key)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, FRI_KEYMAP_KEYBYTES, t->hkey);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)h[i] << (8 * i);
    }
    return (size_t)(v & (t->cap - 1));
}

// The slot holding key, or the empty slot where it would go.
static slot *
find(const fri_keymap *t, const uint8_t *key)
{
    size_t i = home(t, key);
    for (;;) {
        slot *e = &t->s[i];
        if (e->round == 0 || memcmp(e->key, key, FRI_KEYMAP_KEYBYTES) == 0) {
            return e;
        }
        i = (i + 1) & (t->cap - 1);
    }
}

static fr_err
grow(fri_keymap *t)
{
    fri_keymap g = *t;
    g.cap        = t->cap * 2;
    g.s          = calloc(g.cap, sizeof(slot));
    if (g.s == NULL) {
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (t->s[i].round != 0) {
            *find(&g, t->s[i].key) = t->s[i];
        }
    }
    free(t->s);
    t->s   = g.s;
    t->cap = g.cap;
    return FR_OK;
}

fr_err
fri_keymap_set(fri_keymap *t, const uint8_t *key, uint64_t round)
{
    if (t == NULL || key == NULL || round == 0) {
        return FR_EINVAL;
    }
    slot *e = find(t, key);
    if (e->round == 0) {
        if (t->n >= FRI_KEYMAP_MAX) {
            return FR_ETOOBIG;
        }
        if (2 * (t->n + 1) > t->cap) {
            fr_err rv = grow(t);
            if (rv != FR_OK) {
                return rv;
            }
            e = find(t, key);
        }
        memcpy(e->key, key, FRI_KEYMAP_KEYBYTES);
        t->n++;
    }
    e->round = round;
    return FR_OK;
}

uint64_t
fri_keymap_get(const fri_keymap *t, const uint8_t *key)
{
    if (t == NULL || key == NULL) {
        return 0;
    }
    return find(t, key)->round;
}

size_t
fri_keymap_count(const fri_keymap *t)
{
    return t != NULL ? t->n : 0;
}

fr_err
fri_keymap_export(
    const fri_keymap *t, uint8_t *keys, uint64_t *rounds, size_t cap)
{
    if (t == NULL || (t->n > 0 && (keys == NULL || rounds == NULL))) {
        return FR_EINVAL;
    }
    if (cap < t->n) {
        return FR_ENOSPC;
    }
    size_t j = 0;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->s[i].round != 0) {
            memcpy(keys + j * FRI_KEYMAP_KEYBYTES, t->s[i].key,
                FRI_KEYMAP_KEYBYTES);
            rounds[j++] = t->s[i].round;
        }
    }
    return FR_OK;
}
