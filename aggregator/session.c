// The session table of the wire side (handle.c): sessions by id and by
// client key, the unconfirmed FIFO, expiry, eviction and the per-key cap.
// Sessions are checked out for one request at a time.
#include "agg_int.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "channel.h"
#include "frame.h"
#include "session.h"
#include "wire.h"

// Sessions that never sent a sealed frame are dropped sooner: a HELLO
// costs the sender nothing.
#define UNCONFIRMED_TTL_MS 10000u

struct fri_sessions {
    pthread_mutex_t  mtx;
    fri_sess_entry **buckets; // by session id
    fri_sess_entry **kbuckets; // by client key (keyed hash)
    uint32_t         n_buckets; // power of two, both tables
    uint32_t         n;
    fri_sess_entry  *ufirst; // unconfirmed sessions, oldest first: HELLOs
    fri_sess_entry  *ulast; // cost nothing, so they go before anyone else
    uint8_t          hkey[crypto_shorthash_KEYBYTES];
};

static uint32_t
sid_hash(const uint8_t *sid)
{
    // Session ids are random.
    return fri_get32(sid);
}

// Client keys are chosen by the client: a keyed hash keeps chains short.
static uint32_t
key_hash(const fri_sessions *t, const uint8_t *pk)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, pk, FRI_PKBYTES, t->hkey);
    return fri_get32(h);
}

fr_err
fri_sessions_create(fri_agg *a)
{
    fri_sessions *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return FR_ENOMEM;
    }
    uint32_t nb = 64;
    while (nb < a->cfg.max_sessions && nb < (1u << 20)) {
        nb *= 2;
    }
    t->buckets  = calloc(nb, sizeof(*t->buckets));
    t->kbuckets = calloc(nb, sizeof(*t->kbuckets));
    if (t->buckets == NULL || t->kbuckets == NULL) {
        free(t->buckets);
        free(t->kbuckets);
        free(t);
        return FR_ENOMEM;
    }
    t->n_buckets = nb;
    crypto_shorthash_keygen(t->hkey);
    pthread_mutex_init(&t->mtx, NULL);
    a->sessions = t;
    return FR_OK;
}

void
fri_sessions_destroy(fri_agg *a)
{
    fri_sessions *t = a->sessions;
    if (t == NULL) {
        return;
    }
    for (uint32_t b = 0; b < t->n_buckets; b++) {
        fri_sess_entry *e = t->buckets[b];
        while (e != NULL) {
            fri_sess_entry *n = e->next;
            fri_session_destroy(e->s);
            free(e);
            e = n;
        }
    }
    free(t->buckets);
    free(t->kbuckets);
    pthread_mutex_destroy(&t->mtx);
    free(t);
    a->sessions = NULL;
}

static void
unconf_unlink(fri_sessions *t, fri_sess_entry *e)
{
    if (e->uprev != NULL) {
        e->uprev->unext = e->unext;
    } else if (t->ufirst == e) {
        t->ufirst = e->unext;
    }
    if (e->unext != NULL) {
        e->unext->uprev = e->uprev;
    } else if (t->ulast == e) {
        t->ulast = e->uprev;
    }
    e->uprev = e->unext = NULL;
}

// Unlinks and frees e (under t->mtx).
static void
sess_remove(fri_agg *a, fri_sess_entry *e)
{
    fri_sessions    *t  = a->sessions;
    fri_sess_entry **pp = &t->buckets[sid_hash(e->sid) & (t->n_buckets - 1)];
    while (*pp != NULL && *pp != e) {
        pp = &(*pp)->next;
    }
    if (*pp == e) {
        *pp = e->next;
        t->n--;
        atomic_fetch_sub(&a->ctr.n_sessions, 1);
    }
    pp = &t->kbuckets[key_hash(t, e->client) & (t->n_buckets - 1)];
    while (*pp != NULL && *pp != e) {
        pp = &(*pp)->knext;
    }
    if (*pp == e) {
        *pp = e->knext;
    }
    if (!e->confirmed) {
        unconf_unlink(t, e);
    }
    fri_session_destroy(e->s);
    free(e);
}

static void
expire_locked(fri_agg *a, uint64_t now_ms)
{
    fri_sessions *t = a->sessions;
    for (uint32_t b = 0; b < t->n_buckets; b++) {
        fri_sess_entry *e = t->buckets[b];
        while (e != NULL) {
            fri_sess_entry *n = e->next;
            uint64_t        ttl
                = e->confirmed ? a->cfg.session_ttl_ms : UNCONFIRMED_TTL_MS;
            if (!e->busy && now_ms >= e->last_ms + ttl) {
                sess_remove(a, e);
            }
            e = n;
        }
    }
}

void
fri_sessions_expire(fri_agg *a, uint64_t now_ms)
{
    if (a->sessions == NULL) {
        return;
    }
    pthread_mutex_lock(&a->sessions->mtx);
    expire_locked(a, now_ms);
    pthread_mutex_unlock(&a->sessions->mtx);
}

// Evicts the oldest idle unconfirmed session, of client pk if pk != NULL.
// Returns whether one was evicted (under t->mtx).
static int
evict_unconfirmed(fri_agg *a, const uint8_t *pk)
{
    fri_sessions *t = a->sessions;
    for (fri_sess_entry *e = t->ufirst; e != NULL; e = e->unext) {
        if (!e->busy
            && (pk == NULL || memcmp(e->client, pk, FRI_PKBYTES) == 0)) {
            sess_remove(a, e);
            return 1;
        }
    }
    return 0;
}

// Sessions of client pk that are confirmed (or not, per want_confirmed),
// and the least recently used idle one of them other than skip (under
// t->mtx).
static uint32_t
count_key(fri_sessions *t, const uint8_t *pk, int want_confirmed,
    const fri_sess_entry *skip, fri_sess_entry **oldest)
{
    uint32_t        n = 0;
    fri_sess_entry *e = t->kbuckets[key_hash(t, pk) & (t->n_buckets - 1)];
    *oldest           = NULL;
    for (; e != NULL; e = e->knext) {
        if (e->confirmed != want_confirmed
            || memcmp(e->client, pk, FRI_PKBYTES) != 0) {
            continue;
        }
        n++;
        if (e != skip && !e->busy
            && (*oldest == NULL || e->last_ms < (*oldest)->last_ms)) {
            *oldest = e;
        }
    }
    return n;
}

// Checks a session out for one request. NULL if unknown or busy (*busy).
// Does not refresh it: only a frame that authenticates does.
fri_sess_entry *
fri_sess_acquire(fri_agg *a, const uint8_t *sid, int *busy)
{
    fri_sessions *t = a->sessions;
    *busy           = 0;
    pthread_mutex_lock(&t->mtx);
    fri_sess_entry *e = t->buckets[sid_hash(sid) & (t->n_buckets - 1)];
    while (e != NULL && memcmp(e->sid, sid, FRI_SID_BYTES) != 0) {
        e = e->next;
    }
    if (e != NULL && e->busy) {
        *busy = 1;
        e     = NULL;
    } else if (e != NULL) {
        e->busy = 1;
    }
    pthread_mutex_unlock(&t->mtx);
    return e;
}

// authed: the request opened under this session's keys.
void
fri_sess_release(
    fri_agg *a, fri_sess_entry *e, uint64_t now_ms, int authed, int drop)
{
    fri_sessions *t = a->sessions;
    pthread_mutex_lock(&t->mtx);
    e->busy = 0;
    if (authed) {
        e->last_ms = now_ms;
        if (!e->confirmed) {
            unconf_unlink(t, e);
            e->confirmed = 1;
            // Only the key's holder gets here, so its sessions over the
            // cap (left behind by a crash or a lost reply) make room for
            // its newest, least recently used first.
            fri_sess_entry *old = NULL;
            if (count_key(t, e->client, 1, e, &old)
                    > a->cfg.max_sessions_per_key
                && old != NULL) {
                sess_remove(a, old);
            }
        }
    }
    if (drop || e->dead) {
        sess_remove(a, e);
    }
    pthread_mutex_unlock(&t->mtx);
}

const char *
fri_sess_add(fri_agg *a, uint64_t now_ms, fri_sess_entry *e)
{
    // Make room. A HELLO proves nothing (anyone may claim an enrolled
    // key), so it may only displace sessions that proved nothing either:
    // first its own key's oldest unconfirmed one, then the oldest
    // unconfirmed one overall. Confirmed sessions are never displaced by
    // a HELLO (their cap is enforced when a new one is confirmed).
    fri_sessions *t   = a->sessions;
    const char   *why = NULL;
    pthread_mutex_lock(&t->mtx);
    fri_sess_entry *old = NULL;
    if (count_key(t, e->client, 0, NULL, &old)
        >= a->cfg.max_sessions_per_key) {
        if (old != NULL) {
            sess_remove(a, old);
        } else {
            why = "too many sessions for this key";
        }
    }
    if (why == NULL && t->n >= a->cfg.max_sessions
        && !evict_unconfirmed(a, NULL)) {
        expire_locked(a, now_ms);
        if (t->n >= a->cfg.max_sessions) {
            why = "too many sessions";
        }
    }
    if (why == NULL) {
        uint32_t m      = t->n_buckets - 1;
        uint32_t bs     = sid_hash(e->sid) & m;
        uint32_t bk     = key_hash(t, e->client) & m;
        e->next         = t->buckets[bs];
        t->buckets[bs]  = e;
        e->knext        = t->kbuckets[bk];
        t->kbuckets[bk] = e;
        e->uprev        = t->ulast;
        if (t->ulast != NULL) {
            t->ulast->unext = e;
        } else {
            t->ufirst = e;
        }
        t->ulast = e;
        t->n++;
        atomic_fetch_add(&a->ctr.n_sessions, 1);
    }
    pthread_mutex_unlock(&t->mtx);
    return why;
}
