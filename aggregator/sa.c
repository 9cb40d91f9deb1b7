// Secure aggregation in the aggregator (Bonawitz et al., CCS 2017; SecAgg+
// graphs of Bell et al., CCS 2020): the phase machine of one round. The
// aggregator relays adverts and sealed shares, sums masked vectors mod
// 2^32, collects the revealed shares, reconstructs the self-mask seeds of
// the survivors and the mask keys of the dropped members, and unmasks the
// SUM. It never holds an individual update in the clear. Cryptography is
// common/secagg.[ch] and common/shamir.[ch].
//
// Threat model: honest-but-curious aggregator. Adverts are signed with
// the members' Ed25519 identity keys and verified by the peers, but
// without a PKI binding those keys to devices a malicious aggregator could
// substitute adverts (Bonawitz's semi-honest variant).
#include "agg_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "accumulate.h"
#include "keymap.h"
#include "bounds.h"
#include "counters.h"
#include "fixpt.h"
#include "log.h"
#include "sa.h"
#include "secagg.h"
#include "secagg_als.h"
#include "secagg_ials.h"
#include "secagg_stats.h"
#include "shamir.h"
#include "sorted.h"

#define SHARE FRI_SECAGG_SHAREBYTES

typedef struct sa_member {
    uint8_t  pk[FRI_AGG_KEYBYTES];
    uint8_t  id_pk[32];
    uint8_t  advert[FRI_SECAGG_ADVERTBYTES];
    uint8_t  c_pk[FRI_SECAGG_PKBYTES];
    uint8_t  b_commit[FRI_SECAGG_COMMITBYTES];
    int      advertised, shared, masked, answered;
    int      corrected; // its dropout correction is in the sum
    // Per neighbour slot (fri_secagg_ring_slot; eff_degree slots, so
    // O(n degree) for the cohort, not O(n^2)):
    uint8_t *out;     // sealed shares this member sent (slot of recipient)
    uint8_t *has_out; // flags
    uint8_t *rev;     // revealed shares about this member (slot of holder)
    uint8_t *has_rev; // flags
} sa_member;

struct fri_sa {
    uint32_t   n;         // cohort size (clients_per_round)
    uint32_t   joined;
    uint32_t   degree;    // requested graph degree (0: complete)
    uint32_t   eff_degree;
    uint32_t   threshold;
    unsigned   frac_bits;
    float      clip;
    size_t     dim;     // the masked vector's length for the catalog
    size_t     sum_cap; // room in sum (the catalog only grows)
    int        phase;
    uint64_t   round;
    uint64_t   phase_deadline;
    uint8_t    graph_seed[32];
    uint32_t  *pos;  // n ring positions of the round's graph (SecAgg+)
    uint32_t  *perm; // n: the client at each ring position
    // Member lookup by key: open addressing, mcap (a power of two >= 2n)
    // slots of member index + 1 (0: empty), keyed SipHash.
    uint32_t  *mtab;
    uint32_t   mcap;
    uint8_t    mkey[crypto_shorthash_KEYBYTES];
    int        als; // explicit ALS statistics (secagg_als.h)
    int        ials; // iALS statistics (secagg_ials.h)
    int        stats; // latest-statistics deltas (secagg_stats.h)
    fri_sa_als_bounds ab;
    sa_member *m;
    uint32_t  *sum; // dim words, the running masked sum
    uint32_t   n_adv, n_shared, n_masked, n_answered;
    uint32_t n_max; // clients-per-round: the most members a round takes
    // Public-value tables for the Lagrange weights of the n secrets the
    // closer reconstructs each round (shamir.h).
    fri_gf16_tables *gf;
};

// The round's parameters for a cohort of n members: fixed-point bits, the
// SecAgg+ degree, and the Shamir threshold (half the neighbours, plus one).
static void
size_params(fri_sa *s, int secagg, uint32_t n)
{
    s->n         = n;
    s->frac_bits = fri_sa_frac_bits(s->clip, n);
    s->degree = secagg == FRI_AGG_SECAGG_PLUS ? fri_secagg_plus_degree(n) : 0;
    s->eff_degree = fri_secagg_graph_degree(n, s->degree);
    s->threshold  = fri_secagg_threshold(s->eff_degree);
}

// The masked vector's length for a catalog of n items (SPEC §9): the
// latest statistics' deltas, else ALS or iALS statistics, else gradients.
static size_t
sa_dim(const fri_agg *a, uint32_t n)
{
    const fri_agg_config *c = &a->cfg;
    if (c->stats_latest) {
        return fri_sa_stats_dim(n, c->k, a->vb != NULL);
    }
    if (c->algo == FRI_AGG_ALS) {
        return c->implicit ? fri_sa_ials_dim(n, c->k)
                           : fri_sa_als_dim(n, c->k);
    }
    return (size_t) n * a->d + 2;
}

fr_err
fri_sa_reserve(fri_agg *a, uint32_t n_items)
{
    fri_sa *s = a->sa;
    if (s == NULL) {
        return FR_OK;
    }
    size_t dim = sa_dim(a, n_items);
    fr_err rv  = FR_OK;
    pthread_mutex_lock(&a->rs.mtx);
    if (dim > s->sum_cap) {
        uint32_t *sum = realloc(s->sum, dim * sizeof(uint32_t));
        if (sum == NULL) {
            rv = FR_ENOMEM;
        } else {
            memset(sum + s->sum_cap, 0, (dim - s->sum_cap) * sizeof(uint32_t));
            s->sum     = sum;
            s->sum_cap = dim;
        }
    }
    pthread_mutex_unlock(&a->rs.mtx);
    return rv;
}

void
fri_sa_fit(fri_agg *a)
{
    fri_sa *s = a->sa;
    if (s == NULL) {
        return;
    }
    size_t dim = sa_dim(a, fri_agg_n_items(a));
    pthread_mutex_lock(&a->rs.mtx);
    if (dim <= s->sum_cap) {
        s->dim = dim;
    }
    pthread_mutex_unlock(&a->rs.mtx);
}

fr_err
fri_sa_create(fri_agg *a, char *err, size_t err_cap)
{
    const fri_agg_config *c = &a->cfg;
    if (c->secagg == FRI_AGG_SECAGG_OFF) {
        return FR_OK;
    }
    fri_sa *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return FR_ENOMEM;
    }
    s->n         = c->clients_per_round;
    s->clip      = c->clip;
    if (c->algo == FRI_AGG_ALS) {
        // Normalized statistics (docs/SECAGG.md §10): every honest value in
        // [-1, 1], so clip 1 and the cohort sets the fractional bits.
        fri_bounds b;
        fri_bounds_of(c, &b);
        s->als           = 1;
        s->ab.user_norm  = (float) b.user_norm;
        s->ab.residual   = (float) b.residual;
        s->ab.rating_abs = (float) fmax(fabs(b.rmin), fabs(b.rmax));
        s->clip          = 1.0f;
        if (c->implicit) {
            // iALS (docs/SECAGG.md §11): residual carries the bound C on
            // the confidence weight alpha r (config.c makes it > 0).
            s->ials        = 1;
            s->ab.residual = (float)((double)c->alpha * b.rmax);
        }
    }
    if (c->stats_latest) {
        // The same bounds and normalization for the deltas of every
        // device's latest ALS or VBMF statistics (docs/SECAGG.md §9).
        fri_bounds b;
        fri_bounds_of(c, &b);
        s->als           = 1;
        s->stats         = 1;
        s->ab.user_norm  = (float) b.user_norm;
        s->ab.residual   = (float) b.residual;
        s->ab.rating_abs = (float) fmax(fabs(b.rmin), fabs(b.rmax));
        s->clip          = 1.0f;
    }
    s->dim   = sa_dim(a, c->n_items);
    s->n_max = s->n;
    size_params(s, c->secagg, s->n);
    s->m          = calloc(s->n, sizeof(*s->m));
    s->sum        = calloc(s->dim, sizeof(uint32_t));
    s->sum_cap    = s->dim;
    a->rs.sa_out_pk = calloc(s->n, FRI_AGG_KEYBYTES);
    s->pos          = calloc(s->n, sizeof(uint32_t));
    s->perm         = calloc(s->n, sizeof(uint32_t));
    for (s->mcap = 2; s->mcap < 2 * s->n; s->mcap *= 2) {
    }
    s->mtab = calloc(s->mcap, sizeof(uint32_t));
    s->gf   = fri_gf16_tables_create();
    crypto_shorthash_keygen(s->mkey);
    if (s->m == NULL || s->sum == NULL || a->rs.sa_out_pk == NULL ||
        s->pos == NULL || s->perm == NULL || s->mtab == NULL ||
        s->gf == NULL) {
        fri_gf16_tables_destroy(s->gf);
        free(s->m);
        free(s->sum);
        free(s->pos);
        free(s->perm);
        free(s->mtab);
        free(a->rs.sa_out_pk);
        a->rs.sa_out_pk = NULL;
        free(s);
        return FR_ENOMEM;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        sa_member *m = &s->m[i];
        m->out       = malloc((size_t) s->eff_degree * FRI_AGG_SA_SEALED);
        m->has_out   = calloc(s->eff_degree, 1);
        m->rev       = malloc((size_t) s->eff_degree * SHARE);
        m->has_rev   = calloc(s->eff_degree, 1);
        if (m->out == NULL || m->has_out == NULL || m->rev == NULL ||
            m->has_rev == NULL) {
            a->sa = s;
            fri_sa_destroy(a);
            return FR_ENOMEM;
        }
        // Touched now, at start-up: a round's first shares would otherwise
        // page-fault their way in (~20 us per member on a virtual machine,
        // most of what storing them costs).
        memset(m->out, 0, (size_t) s->eff_degree * FRI_AGG_SA_SEALED);
    }
    (void) err;
    (void) err_cap;
    a->sa = s;
    return FR_OK;
}

void
fri_sa_destroy(fri_agg *a)
{
    fri_sa *s = a->sa;
    if (s == NULL) {
        return;
    }
    // Arrays are sized for the largest cohort (n_max and its degree).
    size_params(s, a->cfg.secagg, s->n_max);
    for (uint32_t i = 0; i < s->n && s->m != NULL; i++) {
        free(s->m[i].out);
        free(s->m[i].has_out);
        if (s->m[i].rev != NULL) {
            sodium_memzero(s->m[i].rev, (size_t) s->eff_degree * SHARE);
        }
        free(s->m[i].rev);
        free(s->m[i].has_rev);
    }
    free(s->m);
    free(s->sum);
    free(s->pos);
    free(s->perm);
    free(s->mtab);
    fri_gf16_tables_destroy(s->gf);
    free(a->rs.sa_out_pk);
    a->rs.sa_out_pk = NULL;
    free(s);
    a->sa = NULL;
}

void
fri_sa_round_open(fri_agg *a, uint64_t now_ms)
{
    fri_sa *s = a->sa;
    if (s == NULL) {
        return;
    }
    // Provisionally the largest cohort; cohort_close sizes the round.
    size_params(s, a->cfg.secagg, s->n_max);
    for (uint32_t i = 0; i < s->n; i++) {
        sa_member *m = &s->m[i];
        memset(m->pk, 0, sizeof(m->pk));
        m->advertised = m->shared = m->masked = m->answered = 0;
        m->corrected = 0;
        memset(m->has_out, 0, s->eff_degree);
        memset(m->has_rev, 0, s->eff_degree);
        sodium_memzero(m->rev, (size_t) s->eff_degree * SHARE);
    }
    memset(s->sum, 0, s->dim * sizeof(uint32_t));
    memset(s->mtab, 0, s->mcap * sizeof(uint32_t));
    s->joined = s->n_adv = s->n_shared = s->n_masked = s->n_answered = 0;
    s->phase          = FRI_AGG_SA_JOIN;
    s->round          = a->rs.round;
    s->phase_deadline = now_ms + a->cfg.round_deadline_ms;
    randombytes_buf(s->graph_seed, sizeof(s->graph_seed));
}

// Ends the join phase: the round is sized for the members that joined (a
// cohort that did not fill gets the graph, threshold and fixed-point range
// of its real size, instead of counting the missing members as dropouts)
// and the advert phase begins. Under mtx.
static void
cohort_close(fri_agg *a, uint64_t now_ms)
{
    fri_sa *s = a->sa;
    size_params(s, a->cfg.secagg, s->joined >= 2 ? s->joined : 2);
    s->phase          = FRI_AGG_SA_ADVERT;
    s->phase_deadline = now_ms + a->cfg.round_deadline_ms;
    // Adjacency and neighbour slots in O(1) for the whole round (checked
    // for every share a member sends and every roster entry); n is a
    // valid cohort size, so this cannot fail.
    if (s->eff_degree < s->n - 1) {
        fr_err prv = fri_secagg_ring_positions(s->pos, s->perm, s->n,
                                               s->graph_seed);
        (void) prv;
    }
}

int
fri_sa_joinable(const fri_agg *a)
{
    return a->sa != NULL && a->sa->phase == FRI_AGG_SA_JOIN
        && a->sa->joined < a->sa->n_max;
}

static uint32_t
mslot(const fri_sa *s, const uint8_t *pk)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, pk, FRI_AGG_KEYBYTES, s->mkey);
    return ((uint32_t) h[0] | ((uint32_t) h[1] << 8) |
            ((uint32_t) h[2] << 16) | ((uint32_t) h[3] << 24)) &
           (s->mcap - 1);
}

uint32_t
fri_sa_join(fri_agg *a, const uint8_t *pk, uint64_t now_ms)
{
    fri_sa  *s = a->sa;
    uint32_t i = s->joined++;
    memcpy(s->m[i].pk, pk, FRI_AGG_KEYBYTES);
    // At most n members in 2n slots: an empty one is always reached.
    uint32_t h = mslot(s, pk);
    while (s->mtab[h] != 0) {
        h = (h + 1) & (s->mcap - 1);
    }
    s->mtab[h] = i + 1;
    if (s->joined == s->n_max) {
        cohort_close(a, now_ms);
    }
    return i;
}

void
fri_sa_task(const fri_agg *a, uint32_t index, fri_agg_task *t)
{
    const fri_sa *s = a->sa;
    t->secagg       = 1;
    t->sa_index     = index;
    // 0 while the cohort fills: the parameters are not final yet.
    t->sa_n         = s->phase == FRI_AGG_SA_JOIN ? 0 : s->n;
    t->sa_degree    = s->degree;
    t->sa_threshold = s->threshold;
    t->sa_frac_bits = s->frac_bits;
    t->sa_clip      = s->clip;
    t->sa_dim       = s->dim;
    memcpy(t->sa_graph_seed, s->graph_seed, 32);
    t->sa_noise_sd   = 0.0f;
    t->sa_als        = s->als;
    t->sa_user_norm  = s->als ? s->ab.user_norm : 0.0f;
    t->sa_residual   = s->als ? s->ab.residual : 0.0f;
    t->sa_rating_abs = s->als ? s->ab.rating_abs : 0.0f;
    if (a->cfg.dp == FRI_AGG_DP_DISTRIBUTED) {
        // The sum of at least m members' shares carries the full noise.
        uint32_t m = a->cfg.min_clients > 2 ? a->cfg.min_clients : 2;
        t->sa_noise_sd = (float) fri_dp_distributed_stddev(
            a->cfg.noise_multiplier * (double) a->cfg.clip, m);
    }
}

// Member index of pk in the current round, or -1. Under mtx.
// The member index of pk in this round, -1 if none: O(1) for the polls
// every member repeats while it waits (keys are public: memcmp).
static int64_t
member(const fri_agg *a, const uint8_t *pk)
{
    const fri_sa *s = a->sa;
    for (uint32_t h = mslot(s, pk); s->mtab[h] != 0;
         h = (h + 1) & (s->mcap - 1)) {
        uint32_t i = s->mtab[h] - 1;
        if (memcmp(s->m[i].pk, pk, FRI_AGG_KEYBYTES) == 0) {
            return i;
        }
    }
    return -1;
}

// Whether v is a neighbour of u in the round's graph.
static int
neighbours(const fri_sa *s, uint32_t u, uint32_t v)
{
    return fri_secagg_ring_adjacent(s->pos, s->n, s->degree, u, v);
}

// v's slot among u's neighbours (they must be neighbours).
static uint32_t
slot_of(const fri_sa *s, uint32_t u, uint32_t v)
{
    return fri_secagg_ring_slot(s->pos, s->n, s->degree, u, v);
}

static int
cmp_key(const void *x, const void *y)
{
    return memcmp(x, y, FRI_AGG_KEYBYTES);
}

// u's neighbours among the joined members (and u itself with self), in
// increasing index order, into out (eff_degree + 1 entries); returns their
// count. O(degree) from the ring positions, where testing every member for
// adjacency is O(n) (O(n^2) per round over the cohort's polls).
static uint32_t
neighbours_into(const fri_sa *s, uint32_t u, int self, uint32_t *out)
{
    uint32_t c = 0;
    for (uint32_t sl = 0; sl < s->eff_degree; sl++) {
        uint32_t v =
            fri_secagg_ring_peer(s->perm, s->pos, s->n, s->degree, u, sl);
        if (v < s->joined) {
            out[c++] = v;
        }
    }
    if (self) {
        out[c++] = u;
    }
    qsort(out, c, sizeof(*out), fri_cmp_u32);
    return c;
}

// The same list malloc'd (NULL: out of memory), its count in *n.
static uint32_t *
neighbour_list(const fri_sa *s, uint32_t u, int self, uint32_t *n)
{
    uint32_t *out = malloc(((size_t) s->eff_degree + 1) * sizeof(uint32_t));
    if (out != NULL) {
        *n = neighbours_into(s, u, self, out);
    }
    return out;
}

// Common entry: round and membership checks. Returns the member index or
// sets *rv. Under mtx.
static int64_t
enter(fri_agg *a, const uint8_t *pk, uint64_t round, fr_err *rv)
{
    if (a->sa == NULL) {
        *rv = FR_ESTATE;
        return -1;
    }
    if (a->rs.state != RS_OPEN || round != a->rs.round) {
        *rv = round > a->rs.round ? FR_ESTATE : FR_ELATE;
        return -1;
    }
    int64_t i = member(a, pk);
    if (i < 0) {
        *rv = FR_EDENIED;
    }
    return i;
}

static uint32_t
wait_ms(const fri_agg *a)
{
    uint32_t r = a->cfg.retry_after_ms / 4;
    return r < 10 ? 10 : r;
}

// Entry for the polls (roster, inbox, unmask request): enter() and, while
// the round has not reached phase yet, a retry hint in *retry_after_ms with
// rv left FR_OK. Returns the member index, or -1 when the caller has nothing
// to report. Under mtx.
static int64_t
enter_poll(fri_agg *a, const uint8_t *pk, uint64_t round, int phase,
           fr_err *rv, uint32_t *retry_after_ms)
{
    int64_t i = enter(a, pk, round, rv);
    if (i >= 0 && a->sa->phase < phase) {
        *retry_after_ms = wait_ms(a);
        return -1;
    }
    return i;
}

// Whether a member may submit its step of phase now: ready says it did
// the step before, done that it already did this one. FR_ESTATE too early,
// FR_ELATE after the phase or without the earlier step, FR_EDUP twice.
static fr_err
step_check(const fri_sa *s, int phase, int ready, int done)
{
    if (s->phase != phase || !ready) {
        return s->phase < phase ? FR_ESTATE : FR_ELATE;
    }
    if (done) {
        return FR_EDUP;
    }
    return FR_OK;
}

// Moves to the next phase when everybody still in has acted. Under mtx.
static void
advance(fri_agg *a, uint64_t now_ms)
{
    fri_sa *s = a->sa;
    for (;;) {
        int next = 0;
        if (s->phase == FRI_AGG_SA_ADVERT) {
            next = s->joined == s->n && s->n_adv == s->n;
        } else if (s->phase == FRI_AGG_SA_SHARE) {
            next = s->n_shared == s->n_adv;
        } else if (s->phase == FRI_AGG_SA_MASKED) {
            next = s->n_masked == s->n_shared;
        }
        if (!next) {
            return;
        }
        s->phase++;
        s->phase_deadline = now_ms + a->cfg.round_deadline_ms;
    }
}

fr_err
fri_agg_sa_advert(fri_agg *a, uint64_t now_ms,
                  const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round,
                  const uint8_t id_pk[32], const uint8_t *advert,
                  size_t advert_len)
{
    fri_secagg_advert adv;
    if (advert == NULL || id_pk == NULL ||
        fri_secagg_advert_decode(&adv, advert, advert_len) != FR_OK) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
        return FR_EPROTO;
    }
    fr_err rv = FR_OK;
    pthread_mutex_lock(&a->rs.mtx);
    int64_t i = enter(a, pk, round, &rv);
    if (i < 0) {
        goto out;
    }
    fri_sa    *s = a->sa;
    sa_member *m = &s->m[i];
    if (s->phase != FRI_AGG_SA_ADVERT) {
        rv = s->phase < FRI_AGG_SA_ADVERT ? FR_ESTATE : FR_ELATE;
        goto out;
    }
    if (m->advertised) {
        rv = FR_EDUP;
        goto out;
    }
    // Signature, round and index; verified here so that a bad advert is
    // refused at once (peers may verify again). Outside the round mutex:
    // an Ed25519 check (~45 us) under it would stall every other member's
    // request; the member's index and the phase are checked again after.
    pthread_mutex_unlock(&a->rs.mtx);
    rv = fri_secagg_advert_verify(&adv, round, (uint32_t) i, id_pk);
    pthread_mutex_lock(&a->rs.mtx);
    if (rv != FR_OK) {
        goto out;
    }
    if (enter(a, pk, round, &rv) != i) {
        rv = rv != FR_OK ? rv : FR_ELATE;
        goto out;
    }
    s = a->sa;
    m = &s->m[i];
    if (s->phase != FRI_AGG_SA_ADVERT || m->advertised) {
        rv = m->advertised ? FR_EDUP : FR_ELATE;
        goto out;
    }
    memcpy(m->advert, advert, FRI_SECAGG_ADVERTBYTES);
    memcpy(m->id_pk, id_pk, 32);
    memcpy(m->c_pk, adv.c_pk, sizeof(m->c_pk));
    memcpy(m->b_commit, adv.b_commit, sizeof(m->b_commit));
    m->advertised = 1;
    s->n_adv++;
    advance(a, now_ms);
out:
    pthread_mutex_unlock(&a->rs.mtx);
    if (rv != FR_OK) {
        fri_agg_reject_count(a, rv == FR_ELATE    ? FRI_REJ_LATE
                                : rv == FR_EDUP   ? FRI_REJ_DUP
                                : rv == FR_EDENIED ? FRI_REJ_NOT_MEMBER
                                : rv == FR_ECRYPTO ? FRI_REJ_CRYPTO
                                                   : FRI_REJ_STATE);
    }
    return rv;
}

fr_err
fri_agg_sa_roster(fri_agg *a, uint64_t now_ms,
                  const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round,
                  uint32_t *idx, uint8_t *id_pk, uint8_t *adverts, size_t cap,
                  size_t *n_out, uint32_t *retry_after_ms)
{
    (void) now_ms;
    fr_err rv       = FR_OK;
    *n_out          = 0;
    *retry_after_ms = 0;
    pthread_mutex_lock(&a->rs.mtx);
    int64_t i = enter_poll(a, pk, round, FRI_AGG_SA_SHARE, &rv, retry_after_ms);
    if (i < 0) {
        goto out;
    }
    fri_sa   *s    = a->sa;
    size_t    n    = 0;
    uint32_t  n_nb = 0;
    if (idx == NULL || id_pk == NULL || adverts == NULL || cap == 0) {
        // Counting only (the caller sizes its buffers): no order needed.
        n = s->m[i].advertised;
        for (uint32_t sl = 0; sl < s->eff_degree; sl++) {
            uint32_t v = fri_secagg_ring_peer(s->perm, s->pos, s->n,
                                              s->degree, (uint32_t) i, sl);
            n += v < s->joined && s->m[v].advertised;
        }
        *n_out = n;
        rv     = n > cap ? FR_ENOSPC : FR_OK;
        goto out;
    }
    // A member needs its own advert and its neighbours' (SPEC S2): under
    // SecAgg+ that keeps the roster, its sealing and the member's
    // signature checks O(degree) instead of O(n). In index order.
    uint32_t *nb = neighbour_list(s, (uint32_t) i, 1, &n_nb);
    if (nb == NULL) {
        rv = FR_ENOMEM;
        goto out;
    }
    for (uint32_t q = 0; q < n_nb; q++) {
        uint32_t j = nb[q];
        if (!s->m[j].advertised) {
            continue;
        }
        if (n < cap && idx != NULL && id_pk != NULL && adverts != NULL) {
            idx[n] = j;
            memcpy(id_pk + n * 32, s->m[j].id_pk, 32);
            memcpy(adverts + n * FRI_SECAGG_ADVERTBYTES, s->m[j].advert,
                   FRI_SECAGG_ADVERTBYTES);
        }
        n++;
    }
    free(nb);
    *n_out = n;
    if (n > cap) {
        rv = FR_ENOSPC;
    }
out:
    pthread_mutex_unlock(&a->rs.mtx);
    return rv;
}

fr_err
fri_agg_sa_shares(fri_agg *a, uint64_t now_ms,
                  const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round,
                  const uint32_t *to, const uint8_t *sealed, size_t n)
{
    if ((n > 0 && (to == NULL || sealed == NULL))) {
        return FR_EPROTO;
    }
    fr_err rv = FR_OK;
    pthread_mutex_lock(&a->rs.mtx);
    int64_t i = enter(a, pk, round, &rv);
    if (i < 0) {
        goto out;
    }
    fri_sa    *s = a->sa;
    sa_member *m = &s->m[i];
    rv = step_check(s, FRI_AGG_SA_SHARE, m->advertised, m->shared);
    if (rv != FR_OK) {
        goto out;
    }
    // Every recipient: an advertised neighbour, once, checked before any
    // share is stored: its slot is marked as it passes (a second share
    // for it finds the mark) and the marks are undone if one fails.
    size_t j = 0;
    for (; j < n; j++) {
        uint32_t v = to[j];
        if (v >= s->joined || !s->m[v].advertised ||
            !neighbours(s, (uint32_t) i, v) ||
            m->has_out[slot_of(s, (uint32_t) i, v)]) {
            break;
        }
        m->has_out[slot_of(s, (uint32_t) i, v)] = 1;
    }
    if (j < n) {
        while (j-- > 0) {
            m->has_out[slot_of(s, (uint32_t) i, to[j])] = 0;
        }
        rv = FR_EPROTO;
        goto out;
    }
    for (j = 0; j < n; j++) {
        uint32_t sl = slot_of(s, (uint32_t) i, to[j]);
        memcpy(m->out + (size_t) sl * FRI_AGG_SA_SEALED,
               sealed + j * FRI_AGG_SA_SEALED, FRI_AGG_SA_SEALED);
    }
    m->shared = 1;
    s->n_shared++;
    advance(a, now_ms);
out:
    pthread_mutex_unlock(&a->rs.mtx);
    if (rv == FR_EPROTO) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
    }
    return rv;
}

fr_err
fri_agg_sa_inbox(fri_agg *a, uint64_t now_ms,
                 const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round,
                 uint32_t *from, uint8_t *sealed, size_t cap, size_t *n_out,
                 uint32_t *retry_after_ms)
{
    (void) now_ms;
    fr_err rv       = FR_OK;
    *n_out          = 0;
    *retry_after_ms = 0;
    pthread_mutex_lock(&a->rs.mtx);
    int64_t i = enter_poll(a, pk, round, FRI_AGG_SA_MASKED, &rv, retry_after_ms);
    if (i < 0) {
        goto out;
    }
    fri_sa   *s    = a->sa;
    size_t    n    = 0;
    uint32_t  n_nb = 0;
    if (from == NULL || sealed == NULL || cap == 0) {
        // Counting only (the caller sizes its buffers): no order needed.
        for (uint32_t sl = 0; sl < s->eff_degree; sl++) {
            uint32_t u = fri_secagg_ring_peer(s->perm, s->pos, s->n,
                                              s->degree, (uint32_t) i, sl);
            n += u < s->joined && s->m[u].shared &&
                 s->m[u].has_out[slot_of(s, u, (uint32_t) i)];
        }
        *n_out = n;
        rv     = n > cap ? FR_ENOSPC : FR_OK;
        goto out;
    }
    uint32_t *nb   = neighbour_list(s, (uint32_t) i, 0, &n_nb);
    if (nb == NULL) {
        rv = FR_ENOMEM;
        goto out;
    }
    for (uint32_t q = 0; q < n_nb; q++) {
        uint32_t u = nb[q];
        if (!s->m[u].shared) {
            continue;
        }
        uint32_t sl = slot_of(s, u, (uint32_t) i);
        if (!s->m[u].has_out[sl]) {
            continue;
        }
        if (n < cap && from != NULL && sealed != NULL) {
            from[n] = u;
            memcpy(sealed + n * FRI_AGG_SA_SEALED,
                   s->m[u].out + (size_t) sl * FRI_AGG_SA_SEALED,
                   FRI_AGG_SA_SEALED);
        }
        n++;
    }
    free(nb);
    *n_out = n;
    if (n > cap) {
        rv = FR_ENOSPC;
    }
out:
    pthread_mutex_unlock(&a->rs.mtx);
    return rv;
}

fr_err
fri_agg_sa_masked(fri_agg *a, uint64_t now_ms,
                  const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round,
                  const uint32_t *y, size_t dim)
{
    fr_err rv = FR_OK;
    pthread_mutex_lock(&a->rs.mtx);
    int64_t i = enter(a, pk, round, &rv);
    if (i < 0) {
        goto out;
    }
    fri_sa    *s = a->sa;
    sa_member *m = &s->m[i];
    if (y == NULL || dim != s->dim) {
        rv = FR_EPROTO;
        goto out;
    }
    rv = step_check(s, FRI_AGG_SA_MASKED, m->shared, m->masked);
    if (rv != FR_OK) {
        goto out;
    }
    if (a->sa_hook != NULL) {
        a->sa_hook(a->sa_hook_ctx, (uint32_t) i, y, dim);
    }
    // The running sum is all the aggregator keeps of a masked vector.
    for (size_t j = 0; j < dim; j++) {
        s->sum[j] += y[j];
    }
    m->masked = 1;
    s->n_masked++;
    atomic_fetch_add(&a->ctr.accepted, 1);
    a->rs.n_reported++;
    advance(a, now_ms);
out:
    pthread_mutex_unlock(&a->rs.mtx);
    if (rv == FR_EPROTO) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
    }
    return rv;
}

fr_err
fri_agg_sa_unmask_req(fri_agg *a, uint64_t now_ms,
                      const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round,
                      uint32_t *survivors, size_t surv_cap, size_t *n_surv,
                      uint32_t *dropped, size_t drop_cap, size_t *n_drop,
                      uint32_t *retry_after_ms)
{
    (void) now_ms;
    fr_err rv       = FR_OK;
    *n_surv         = 0;
    *n_drop         = 0;
    *retry_after_ms = 0;
    pthread_mutex_lock(&a->rs.mtx);
    int64_t i = enter_poll(a, pk, round, FRI_AGG_SA_UNMASK, &rv, retry_after_ms);
    if (i < 0) {
        goto out;
    }
    fri_sa *s = a->sa;
    size_t ns = 0, nd = 0;
    for (uint32_t u = 0; u < s->joined; u++) {
        if (s->m[u].masked) {
            if (ns < surv_cap && survivors != NULL) {
                survivors[ns] = u;
            }
            ns++;
        } else if (s->m[u].shared) {
            if (nd < drop_cap && dropped != NULL) {
                dropped[nd] = u;
            }
            nd++;
        }
    }
    *n_surv = ns;
    *n_drop = nd;
    if (ns > surv_cap || nd > drop_cap) {
        rv = FR_ENOSPC;
    }
out:
    pthread_mutex_unlock(&a->rs.mtx);
    return rv;
}

// Subsets fri_secagg_recover may try per secret after the cyclic windows.
#define SA_RECOVER_TRIES 256

// Logs why unmasking failed, at ERROR: the round's update is lost.
static void
unmask_failed(fri_agg *a, const char *why, uint32_t member, size_t shares)
{
    fri_agg_log(a, FR_LOG_ERROR,
                "msg=\"secure aggregation: unmasking failed, round "
                "abandoned\" round=%llu reason=\"%s\" member=%u shares=%zu "
                "threshold=%u",
                (unsigned long long) a->sa->round, why, member, shares,
                a->sa->threshold);
}

// Whether every coordinate of the unmasked sum (two's complement) lies in
// [-n B, n B], B = ceil(clip 2^f): the most n honest encodings can reach.
// A member that masked an out-of-range input (the server cannot see it)
// shows up here unless the others' inputs hide it (docs/SECAGG.md §8).
static int
sum_in_range(const fri_sa *s, uint32_t n)
{
    double  b     = ceil((double) s->clip * ldexp(1.0, (int) s->frac_bits));
    int64_t bound = (int64_t) ((double) n * b);
    for (size_t j = 0; j < s->dim; j++) {
        int64_t v = (int64_t) (int32_t) s->sum[j];
        if (v > bound || v < -bound) {
            return 0;
        }
    }
    return 1;
}

// Latest statistics: keeps who survived the round being closed, for
// fri_agg_sa_outcome. The closer; the polls read it under mtx.
static void
record_survivors(fri_agg *a, const uint32_t *surv, uint32_t ns)
{
    fri_sa *s = a->sa;
    if (!s->stats) {
        return;
    }
    pthread_mutex_lock(&a->rs.mtx);
    for (uint32_t j = 0; j < ns; j++) {
        memcpy(a->rs.sa_out_pk + (size_t) j * FRI_AGG_KEYBYTES, s->m[surv[j]].pk,
               FRI_AGG_KEYBYTES);
    }
    // Sorted, so that each survivor's outcome poll is a binary search.
    qsort(a->rs.sa_out_pk, ns, FRI_AGG_KEYBYTES, cmp_key);
    a->rs.sa_out_n     = ns;
    a->rs.sa_out_round = s->round;
    pthread_mutex_unlock(&a->rs.mtx);
}

uint64_t
fri_agg_sa_applied_round(fri_agg *a, const uint8_t *pk, uint32_t *retry_ms)
{
    pthread_mutex_lock(&a->rs.mtx);
    uint64_t r = fri_keymap_get(a->rs.applied, pk);
    *retry_ms  = 0;
    if (r > a->rs.outcome_round) {
        // Told only once that round's checkpoint is written (S6).
        *retry_ms = wait_ms(a);
        r         = 0;
    }
    pthread_mutex_unlock(&a->rs.mtx);
    return r;
}

fr_err
fri_agg_sa_outcome(fri_agg *a, const uint8_t *pk, uint64_t round,
                   uint32_t *retry_after_ms)
{
    fr_err rv       = FR_ELATE;
    *retry_after_ms = 0;
    pthread_mutex_lock(&a->rs.mtx);
    const fri_sa *s = a->sa;
    if (s == NULL || !s->stats || round > a->rs.round ||
        (round == a->rs.round && a->rs.state == RS_DONE)) {
        rv = FR_ESTATE;
    } else if (round == a->rs.round) {
        *retry_after_ms = wait_ms(a); // still open or being closed
        rv              = FR_OK;
    } else if (a->rs.sa_out_round == round && a->rs.last_completed == round &&
               a->rs.outcome_round != round) {
        // Completed, its checkpoint not yet written: ask again shortly.
        *retry_after_ms = wait_ms(a);
        rv              = FR_OK;
    } else if (a->rs.sa_out_round == round && a->rs.last_completed == round) {
        // Unmasked, and the solve kept the model (a refused model drops
        // the round's sums: nothing was applied).
        // Public keys: no need for a constant-time comparison.
        if (bsearch(pk, a->rs.sa_out_pk, a->rs.sa_out_n, FRI_AGG_KEYBYTES,
                    cmp_key) != NULL) {
            rv = FR_OK;
        }
    } else if (s->stats && round <= a->rs.outcome_round
        && fri_keymap_get(a->rs.applied, pk) == round) {
        // An older round: the device's last applied delta is this one.
        rv = FR_OK;
    }
    pthread_mutex_unlock(&a->rs.mtx);
    return rv;
}

// Reconstructs every needed secret and unmasks (the exclusive closer, the
// round in RS_CLOSING: no other thread touches the sa state). Every
// secret is checked: a survivor's self-mask seed against the commitment
// in its signed advert, a dropped member's mask key against its advertised
// public key; when the first t shares do not check out (a holder sent a
// wrong share) other t-subsets of the revealed shares are tried. *ok = 0
// (and an ERROR log) when some secret lacks t shares or none of the tried
// subsets checks out, or the unmasked sum is out of range.
static fr_err
finish(fri_agg *a, int *ok)
{
    fri_sa  *s  = a->sa;
    uint32_t ns = 0, nd = 0;
    uint64_t mismatch = 0;
    *ok         = 0;
    uint32_t *surv = malloc((size_t) s->n * sizeof(uint32_t));
    uint32_t *drop = malloc((size_t) s->n * sizeof(uint32_t));
    uint8_t  *s_pk = malloc((size_t) s->n * 32);
    uint8_t  *s_b  = malloc((size_t) s->n * 32);
    uint8_t  *d_sk = malloc((size_t) s->n * 32);
    uint8_t  *shs  = malloc((size_t) s->n * SHARE);
    uint32_t *xs   = malloc((size_t) s->n * sizeof(uint32_t));
    float    *v    = malloc(s->dim * sizeof(float));
    uint32_t *nb   = malloc(((size_t) s->eff_degree + 1) * sizeof(uint32_t));
    uint8_t  *corr = malloc(s->n);
    fr_err    rv   = FR_OK;
    if (surv == NULL || drop == NULL || s_pk == NULL || s_b == NULL ||
        d_sk == NULL || shs == NULL || xs == NULL || v == NULL || nb == NULL ||
        corr == NULL) {
        rv = FR_ENOMEM;
        goto out;
    }
    for (uint32_t u = 0; u < s->joined; u++) {
        sa_member *m = &s->m[u];
        if (!m->shared) {
            continue;
        }
        size_t   c    = 0;
        uint32_t n_nb = neighbours_into(s, u, 0, nb);
        for (uint32_t q = 0; q < n_nb; q++) {
            uint32_t h  = nb[q];
            uint32_t sl = slot_of(s, u, h);
            if (m->has_rev[sl]) {
                memcpy(shs + c * SHARE, m->rev + (size_t) sl * SHARE, SHARE);
                xs[c++] = h + 1;
            }
        }
        if (c < s->threshold) {
            unmask_failed(a, "too few shares", u, c);
            goto out;
        }
        uint8_t *dst = m->masked ? s_b + (size_t) ns * 32
                                 : d_sk + (size_t) nd * 32;
        fri_secagg_seed_check ck = {m->b_commit, s->round, u};
        size_t                tries = 0;
        rv = fri_secagg_recover(
            dst, shs, xs, c, s->threshold,
            m->masked ? fri_secagg_check_seed : fri_secagg_check_sk,
            m->masked ? (void *) &ck : (void *) m->c_pk,
            s->round * 0x9e3779b97f4a7c15ull ^ u, SA_RECOVER_TRIES, &tries,
            s->gf);
        if (tries > 1) {
            mismatch++;
            fri_agg_log(a, FR_LOG_WARN,
                        "msg=\"secure aggregation: a share subset did not "
                        "match the advert (wrong share from a holder)\" "
                        "round=%llu member=%u shares=%zu subsets_tried=%zu "
                        "recovered=%d",
                        (unsigned long long) s->round, u, c, tries,
                        rv == FR_OK);
        }
        if (rv == FR_ECRYPTO) {
            rv = FR_OK; // no subset checked out: abandon, not an error
            unmask_failed(a,
                          m->masked ? "no share subset matches the "
                                      "self-mask commitment"
                                    : "no share subset matches the "
                                      "advertised key",
                          u, c);
            goto out;
        }
        if (rv != FR_OK) {
            goto out;
        }
        if (m->masked) {
            surv[ns] = u;
            corr[ns] = (uint8_t) m->corrected;
            memcpy(s_pk + (size_t) ns * 32, m->c_pk, 32);
            ns++;
        } else {
            drop[nd++] = u;
        }
    }
    if (ns == 0) {
        unmask_failed(a, "no survivors", 0, 0);
        goto out;
    }
    fri_secagg_graph        g = {s->n, s->degree, {0}};
    fri_secagg_unmask_input in;
    memcpy(g.seed, s->graph_seed, 32);
    memset(&in, 0, sizeof(in));
    in.round_id      = s->round;
    in.graph         = s->eff_degree >= s->n - 1 ? NULL : &g;
    in.survivors     = surv;
    in.survivor_c_pk = s_pk;
    in.survivor_b    = s_b;
    in.n_survivors   = ns;
    in.dropped       = drop;
    in.dropped_c_sk  = d_sk;
    in.n_dropped     = nd;
    in.survivor_corrected = corr;
    rv               = fri_secagg_unmask(s->sum, s->dim, &in);
    if (rv == FR_OK && !sum_in_range(s, ns)) {
        unmask_failed(a, "unmasked sum outside the fixed-point range", 0,
                      0);
        goto out;
    }
    if (rv == FR_OK) {
        rv = s->stats  ? fri_sa_stats_decode(v, s->sum, s->dim, s->frac_bits,
                                             a->cfg.n_items, a->cfg.k,
                                             a->vb != NULL, &s->ab)
             : s->ials ? fri_sa_ials_decode(v, s->sum, s->dim, s->frac_bits,
                                            a->cfg.n_items, a->cfg.k, &s->ab)
             : s->als  ? fri_sa_als_decode(v, s->sum, s->dim, s->frac_bits,
                                           a->cfg.n_items, a->cfg.k, &s->ab)
                       : fri_secagg_dequantize(v, s->sum, s->dim,
                                               s->frac_bits, 1);
    }
    if (rv == FR_OK) {
        rv = fri_agg_acc_set_dense(a, v, s->dim);
    }
    if (rv == FR_OK) {
        *ok = 1;
        record_survivors(a, surv, ns);
        fri_agg_log(a, FR_LOG_INFO,
                    "msg=\"secure aggregation unmasked\" round=%llu "
                    "survivors=%u dropped=%u",
                    (unsigned long long) s->round, ns, nd);
    } else {
        unmask_failed(a, fr_strerror(rv), 0, 0);
    }
out:
    pthread_mutex_lock(&a->rs.mtx);
    a->rs.sa_share_mismatch += mismatch;
    if (!*ok) {
        a->rs.sa_unmask_failed++;
    }
    pthread_mutex_unlock(&a->rs.mtx);
    if (s_b != NULL) {
        sodium_memzero(s_b, (size_t) s->n * 32);
    }
    if (d_sk != NULL) {
        sodium_memzero(d_sk, (size_t) s->n * 32);
    }
    if (shs != NULL) {
        sodium_memzero(shs, (size_t) s->n * SHARE);
    }
    free(surv);
    free(drop);
    free(s_pk);
    free(s_b);
    free(d_sk);
    free(shs);
    free(xs);
    free(v);
    free(nb);
    free(corr);
    return rv;
}

// Unmasks the round (caller set RS_CLOSING): 1 when it is to complete,
// 2 when to be abandoned. The round owner (agg.c) ends it.
static int
complete(fri_agg *a)
{
    int    ok = 0;
    fr_err rv = finish(a, &ok);
    return rv == FR_OK && ok ? 1 : 2;
}

fr_err
fri_sa_unmask(fri_agg *a, const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round,
              const uint32_t *about, const uint8_t *shares, size_t n,
              const uint32_t *corr, size_t n_corr, int *act)
{
    *act = 0;
    if ((n > 0 && (about == NULL || shares == NULL)) ||
        (n_corr > 0 && corr == NULL)) {
        return FR_EPROTO;
    }
    fr_err rv   = FR_OK;
    int    done = 0;
    pthread_mutex_lock(&a->rs.mtx);
    int64_t i = enter(a, pk, round, &rv);
    if (i < 0) {
        goto out;
    }
    fri_sa    *s = a->sa;
    sa_member *m = &s->m[i];
    rv = step_check(s, FRI_AGG_SA_UNMASK, m->masked, m->answered);
    if (rv != FR_OK) {
        goto out;
    }
    // Only shares this member holds (the subject sent it one) about
    // members that shared, once each: marked as they pass, the marks
    // undone if one fails, nothing stored before all passed.
    size_t j = 0;
    for (; j < n; j++) {
        uint32_t u = about[j];
        if (u >= s->joined || !neighbours(s, u, (uint32_t) i) ||
            !s->m[u].shared) {
            break;
        }
        uint32_t sl = slot_of(s, u, (uint32_t) i);
        if (!s->m[u].has_out[sl] || s->m[u].has_rev[sl]) {
            break;
        }
        s->m[u].has_rev[sl] = 1;
    }
    // A correction: the vector's length, and only from a member that
    // reveals shares of at least one dropped member (S4a).
    int any_dropped = 0;
    for (size_t q = 0; q < j && n_corr > 0; q++) {
        any_dropped |= !s->m[about[q]].masked;
    }
    if (j < n || (n_corr > 0 && (n_corr != s->dim || !any_dropped))) {
        while (j-- > 0) {
            s->m[about[j]].has_rev[slot_of(s, about[j], (uint32_t) i)] = 0;
        }
        rv = FR_EPROTO;
        goto out;
    }
    // Subtracted at once: the masked phase is over, and the closer needs
    // only the sum without these pair masks.
    for (size_t w = 0; w < n_corr; w++) {
        s->sum[w] -= corr[w];
    }
    m->corrected = n_corr > 0;
    if (n_corr > 0) {
        atomic_fetch_add(&a->ctr.sa_corrections, 1);
    }
    for (j = 0; j < n; j++) {
        sa_member *t  = &s->m[about[j]];
        uint32_t   sl = slot_of(s, about[j], (uint32_t) i);
        memcpy(t->rev + (size_t) sl * SHARE, shares + j * SHARE, SHARE);
    }
    m->answered = 1;
    s->n_answered++;
    if (s->n_answered == s->n_masked && a->rs.state == RS_OPEN) {
        a->rs.state = RS_CLOSING;
        done     = 1;
    }
out:
    pthread_mutex_unlock(&a->rs.mtx);
    if (rv == FR_EPROTO) {
        fri_agg_reject_count(a, FRI_REJ_MALFORMED);
    }
    if (done) {
        *act = complete(a);
    }
    return rv;
}

int
fri_sa_tick(fri_agg *a, uint64_t now_ms, const char **why)
{
    pthread_mutex_lock(&a->rs.mtx);
    fri_sa *s   = a->sa;
    int     act = 0; // 1 complete, 2 abandon
    if (s == NULL || a->rs.state != RS_OPEN || now_ms < s->phase_deadline) {
        pthread_mutex_unlock(&a->rs.mtx);
        return 0;
    }
    uint32_t need = a->cfg.min_clients > 2 ? a->cfg.min_clients : 2;
    switch (s->phase) {
    case FRI_AGG_SA_JOIN:
        if (s->joined >= need) {
            // A cohort smaller than clients-per-round: sized as it is.
            cohort_close(a, now_ms);
            pthread_mutex_unlock(&a->rs.mtx);
            return 0;
        }
        act = 2;
        break;
    case FRI_AGG_SA_ADVERT:
        act = s->n_adv < need ? 2 : 0;
        break;
    case FRI_AGG_SA_SHARE:
        act = s->n_shared < need ? 2 : 0;
        break;
    case FRI_AGG_SA_MASKED:
        act = s->n_masked < need ? 2 : 0;
        break;
    default: // UNMASK: try with the shares that arrived
        act = 1;
        break;
    }
    if (act == 0) {
        // Go on without the members that did not act in time.
        s->phase++;
        s->phase_deadline = now_ms + a->cfg.round_deadline_ms;
        advance(a, now_ms);
        pthread_mutex_unlock(&a->rs.mtx);
        return 0;
    }
    a->rs.state = RS_CLOSING;
    pthread_mutex_unlock(&a->rs.mtx);
    if (act == 1) {
        *why = "secure aggregation recovery";
        return complete(a);
    }
    *why = "secure aggregation phase";
    return 2;
}

void
fri_agg_set_masked_hook(fri_agg *a, fri_agg_masked_fn fn, void *ctx)
{
    pthread_mutex_lock(&a->rs.mtx);
    a->sa_hook     = fn;
    a->sa_hook_ctx = ctx;
    pthread_mutex_unlock(&a->rs.mtx);
}

_Static_assert(FRI_AGG_SA_ADVERTBYTES == FRI_SECAGG_ADVERTBYTES,
               "advert size");
_Static_assert(FRI_AGG_SA_SEALED == FRI_SECAGG_SEALEDBYTES, "sealed size");
