// The round driver. Each round a seeded cohort of virtual devices checks in
// with the aggregator; a pool of worker threads runs their check-ins. A
// device is a real fr_client handle created for the check-in from its
// compact record (identity derived from the population key, ratings from
// the shared CSR) and destroyed afterwards: with the closed-form user fit
// nothing else survives between rounds, which keeps idle devices tiny.
//
// Time is virtual: the aggregator and the server see a clock that stands
// still during a round and jumps past the deadline when every device of the
// cohort is done, so rounds close at the same point whatever the machine's
// speed, and vanished (dropped) devices cost no wall time.
//
// Evaluation happens on the devices, always by the same evaluation users.
// When every device takes part in every round (plain aggregation), each
// evaluating device of round r+1, having fetched model r+1 and fitted its
// user vector to it, scores its own held-out items (fr_client_predict /
// fr_client_recommend) before sending its update. Otherwise (partial
// cohorts, secure aggregation) and after the last round, the evaluation
// users pay a model-only visit (fr_client_model_begin): they fetch the
// model, fit, score and leave; the aggregator does not enrol them in any
// round, so the model, the cohorts and the privacy accounting are those of
// a run without evaluation.
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../aggregator/agg.h"
#include "client_internal.h"
#include "fedrec/client.h"
#include "bayes.h"
#include "metrics.h"
#include "coldstart.h"
#include "recency.h"
#include "sim.h"
#include "tree.h"
#include "userattr.h"

// Frame header: magic(4) major minor type(u16 LE) ...
#define HDR_TYPE_OFF 6
#define T_UPDATE 7 // proto/msg.h FRI_T_UPDATE (the header is plaintext)
#define FRI_SIM_HDR_MIN 16

enum {
    DEV_NONE = 0,
    DEV_CONTRIBUTED,
    DEV_DROPPED,
    DEV_NOT_SELECTED,
    DEV_FAILED,
    DEV_EVALUATED, // model-only evaluation visit
    DEV_STALE,     // buffered mode: report refused as too stale
};

typedef struct dev_out {
    uint8_t  status;
    uint8_t  evaluated;
    uint32_t n_eval;    // explicit: scored test ratings
    uint32_t n_held;    // the device's held-out ratings (implicit: items)
    double   sq, ab;    // explicit: sums of squared / absolute errors
    // --new-items: squared errors on the new items' ratings and on those
    // of the old items matched to them, and their counts.
    double   sq_new, sq_matched;
    uint32_t n_new, n_matched;
    double   hr, ndcg;  // implicit: this user's HR@10 / NDCG@10
    uint64_t up, down;
    // Thread CPU seconds in the client library (poll + receive) and, with
    // --transport direct, in the aggregator handling its requests.
    double cpu_client, cpu_agg;
    uint64_t unsent; // bytes of the request a vanishing device never sent
    // The final evaluation visit: the device's own top list under the
    // final model (what its user would see), for the beyond-accuracy
    // metrics.
    uint32_t top[FRI_SIM_LIST_K];
    uint8_t  n_top;
} dev_out;

typedef struct sim_state sim_state;
typedef struct dev_live  dev_live;

enum { HOOK_BUILTIN = 0, HOOK_CALLER = 1, N_HOOKS = 2 };

typedef struct job {
    const uint32_t *users;
    size_t          n;
    atomic_size_t   next;
    int             eval_visit; // model-only visits of the evaluation users
    int             cold;       // visits of the cold-start users (coldstart.h)
    uint64_t        round;      // our round counter (1-based), for seeds
    dev_out        *out;
} job;

struct sim_state {
    const fri_sim_config *c;
    const fri_sim_pop    *p;
    fri_agg              *agg;
    fri_sim_server       *srv;
    fr_model_cache       *cache;
    uint8_t               server_pk[FR_PUBLICKEYBYTES];
    char                  url[256];
    atomic_uint_fast64_t  clock_ms;
    const uint8_t        *eval_mask; // per user
    // --new-items: items at or after grow_from are the new ones; matched
    // (per item) marks the old items matched to them; NULL otherwise.
    uint32_t              grow_from;
    uint8_t              *matched;
    // --replay time: cutoff[r] for round r = 1..rounds (a device holds its
    // training interactions with ts <= cutoff[r]); NULL otherwise.
    int64_t *cutoff;
    uint32_t n_cutoff;
    // Latest statistics: each device's last acknowledged contribution,
    // kept here while its handle is closed between check-ins.
    fri_stats_last      **last;
    job                  *job;
    pthread_mutex_t       err_mtx;
    char                  first_err[256];
    // Privacy: the aggregator's view (attacks, epsilon) and, under secure
    // aggregation, the cohort's live check-ins (run in passes).
    fri_sim_atk          *atk;
    fri_sim_poison_run   *poison; // malicious devices, target exposure
    fri_sim_cold         *cold;   // --report cold-start, else NULL
    dev_live             *live;
    // Buffered mode: each device's check-in, parked with its built UPDATE
    // until the tick it reports (indexed by user).
    dev_live             *park;
    atomic_uint           pass_progress;
    uint64_t              deadline_ms;
    double                tick_cpu; // main thread: CPU in fri_agg_tick
    // The update and masked-vector hooks, in call order: the built-in
    // attacks' (HOOK_BUILTIN, fri_sim_atk_hooks) and the caller's
    // (HOOK_CALLER, fri_sim_runner_set_*_hook), one path for both; the
    // round's devices by key, to name the device of each update.
    struct {
        fri_sim_update_hook fn;
        void               *ctx;
    } upd[N_HOOKS];
    struct {
        fri_sim_masked_hook fn;
        void               *ctx;
    } msk[N_HOOKS];
    // Device-update hooks: the built-in poisoning's (HOOK_BUILTIN) and the
    // caller's (HOOK_CALLER); they run caller first (dev_step).
    fri_sim_dev_hook      dev[N_HOOKS];
    fri_sim_sum_hook      sum_fn; // the sum hook
    void                 *sum_ctx;
    atomic_int            hook_failed;
    uint32_t              hook_round;
    char                  hook_err[16]; // the round it stopped, as text
    pthread_mutex_t       reg_mtx;
    uint8_t              *reg_pk; // reg_cap X25519 keys
    uint32_t             *reg_u;
    size_t                n_reg, reg_cap;
};

static uint64_t
clock_now(void *ctx)
{
    sim_state *st = ctx;
    return atomic_load(&st->clock_ms);
}

static double
wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

// This thread's CPU time: a device's or the aggregator's own work, not the
// time spent waiting for the other one or for the shared cores.
static double
cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

// fri_agg_tick, its CPU time counted as the aggregator's (main thread).
static void
agg_tick(sim_state *st)
{
    double t0 = cpu_s();
    fri_agg_tick(st->agg, clock_now(st));
    st->tick_cpu += cpu_s() - t0;
}

static uint64_t
mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void
note_error(sim_state *st, uint32_t u, const char *what, fr_err e,
           const char *detail)
{
    pthread_mutex_lock(&st->err_mtx);
    if (st->first_err[0] == '\0') {
        snprintf(st->first_err, sizeof(st->first_err),
                 "device %u: %s: %s (%s)", u, what, fr_errname(e),
                 detail ? detail : "");
    }
    pthread_mutex_unlock(&st->err_mtx);
}

typedef struct worker {
    sim_state *st;
    uint8_t   *req;
    size_t     req_cap;
    uint8_t   *reply; // direct mode
    size_t     reply_cap;
} worker;

// The sampled protocol of fri_eval_ranking (metrics.h), on the device: each
// held-out item against negatives drawn from the same per-user stream
// (seed 1, stream u) among the items the device never touched, scored with
// its own user vector. Averaged over the device's held-out items.
static void
eval_device_sampled(sim_state *st, fr_client *c, uint32_t u, dev_out *o)
{
    const fri_csr *t = &st->p->test, *tr = &st->p->train;
    const uint32_t ni = st->p->n_items;
    const uint32_t n_neg = st->c->negatives_set ? st->c->negatives : 99;
    size_t cap = n_neg == 0 || n_neg > ni ? ni : n_neg;
    uint32_t *neg = malloc((cap + 1) * sizeof(uint32_t));
    uint8_t *mark = calloc(ni > 0 ? ni : 1, 1);
    fri_rng rng;
    fri_rank_config rc;
    fri_rank_config_init(&rc);
    fri_rng_seed2(&rng, rc.seed, u);
    double hr = 0.0, nd = 0.0;
    size_t n_case = 0;
    for (size_t j = t->ptr[u]; neg && mark && j < t->ptr[u + 1]; j++) {
        float target, sc;
        size_t got = 0;
        if (fr_client_predict(c, t->idx[j], &target) != FR_OK ||
            fri_sample_negatives(neg, cap, &got, &rng, ni,
                                 tr->idx + tr->ptr[u],
                                 tr->ptr[u + 1] - tr->ptr[u],
                                 t->idx + t->ptr[u],
                                 t->ptr[u + 1] - t->ptr[u], n_neg,
                                 mark) != FR_OK) {
            continue;
        }
        uint32_t rank = 0;
        for (size_t q = 0; q < got; q++) {
            // Ties (and failures) count against the held-out item.
            if (fr_client_predict(c, neg[q], &sc) != FR_OK || !(sc < target)) {
                rank++;
            }
        }
        hr += rank < 10 ? 1.0 : 0.0;
        nd += rank < 10 ? 1.0 / log2((double) rank + 2.0) : 0.0;
        n_case++;
    }
    free(neg);
    free(mark);
    if (n_case > 0) {
        o->hr = hr / (double) n_case;
        o->ndcg = nd / (double) n_case;
        o->evaluated = 1;
    }
}

// Scores the device's held-out items with its own user vector.
static void
eval_device(sim_state *st, fr_client *c, uint32_t u, dev_out *o)
{
    const fri_csr *t = &st->p->test;
    size_t         a = t->ptr[u], b = t->ptr[u + 1];
    if (st->job->eval_visit && st->job->round == st->c->rounds) {
        // The device's own list under the final model.
        float  sc[FRI_SIM_LIST_K];
        size_t got = 0;
        if (fr_client_recommend_diverse(
                c, st->c->diverse, o->top, sc, FRI_SIM_LIST_K, &got)
            == FR_OK) {
            o->n_top = (uint8_t) got;
        }
    }
    if (a == b) {
        return;
    }
    o->n_held = (uint32_t) (b - a);
    if (!st->c->implicit) {
        for (size_t j = a; j < b; j++) {
            float s;
            // At the rating's time: the device adds its bias of that day.
            int64_t ts = st->p->test_ts != NULL ? st->p->test_ts[j] : 0;
            if (fr_client_predict_at(c, t->idx[j], ts, &s) != FR_OK) {
                continue;
            }
            // Clamped to the rating range, as a device displays it.
            s = fminf(fmaxf(s, st->p->min_rating), st->p->max_rating);
            double e = (double) s - (double) t->val[j];
            o->sq += e * e;
            o->ab += fabs(e);
            o->n_eval++;
            if (st->matched != NULL) {
                uint32_t i = t->idx[j];
                if (i >= st->grow_from) {
                    o->sq_new += e * e;
                    o->n_new++;
                } else if (st->matched[i]) {
                    o->sq_matched += e * e;
                    o->n_matched++;
                }
            }
        }
        o->evaluated = o->n_eval > 0;
        return;
    }
    if (st->c->leave_last || st->c->negatives_set) {
        eval_device_sampled(st, c, u, o);
        return;
    }
    uint32_t top[10];
    float    sc[10];
    size_t   n_out = 0;
    if (fr_client_recommend_diverse(c, st->c->diverse, top, sc, 10, &n_out)
        != FR_OK) {
        return;
    }
    double dcg = 0.0, idcg = 0.0;
    size_t hits = 0, n_rel = b - a;
    for (size_t pos = 0; pos < n_out; pos++) {
        // The test row is sorted by item: binary search.
        size_t lo = a, hi = b;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (t->idx[mid] < top[pos]) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo < b && t->idx[lo] == top[pos]) {
            hits++;
            dcg += 1.0 / log2((double) pos + 2.0);
        }
    }
    for (size_t i = 0; i < n_rel && i < 10; i++) {
        idcg += 1.0 / log2((double) i + 2.0);
    }
    o->hr = hits > 0 ? 1.0 : 0.0;
    o->ndcg = idcg > 0.0 ? dcg / idcg : 0.0;
    o->evaluated = 1;
}

static int
grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap ? *cap : 4096;
    while (n < need) {
        n *= 2;
    }
    uint8_t *p = realloc(*buf, n);
    if (p == NULL) {
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

// A device inside a check-in. Plain rounds run one to completion; under
// secure aggregation every cohort member stays alive across the driver's
// passes, since its check-in pauses between phases.
struct dev_live {
    fr_client *c;
    nng_socket sock;
    int        sock_open;
    int        drop;
    int        evaluate;
    int        state; // LIVE_* below
    uint8_t   *frame; // buffered mode: the UPDATE built, not sent yet
    size_t     frame_len;
};

enum { LIVE_IDLE = 0, LIVE_RUNNING, LIVE_OVER };
enum { STEP_MORE = 0, STEP_PAUSED, STEP_DONE, STEP_DONE_INFO };

// --replay time: cutoff[r] (r = 1..rounds; [0] unused) is the time by
// which ceil(n r / rounds) of the n training interactions had happened.
static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static fr_err
replay_cutoffs(
    const fri_sim_pop *p, uint32_t rounds, int64_t **out, uint32_t *n_out)
{
    size_t n = p->train.ptr[p->n_users];
    if (p->train_ts == NULL || n == 0 || rounds == 0) {
        return FR_EFORMAT;
    }
    int64_t *ts  = malloc(n * sizeof(int64_t));
    int64_t *cut = malloc(((size_t)rounds + 1) * sizeof(int64_t));
    if (ts == NULL || cut == NULL) {
        free(ts);
        free(cut);
        return FR_ENOMEM;
    }
    memcpy(ts, p->train_ts, n * sizeof(int64_t));
    qsort(ts, n, sizeof(int64_t), cmp_i64);
    cut[0] = ts[0];
    for (uint32_t r = 1; r <= rounds; r++) {
        size_t k = (size_t)(((uint64_t)n * r + rounds - 1) / rounds);
        cut[r]   = ts[(k > 0 ? k : 1) - 1];
    }
    free(ts);
    *out   = cut;
    *n_out = rounds + 1;
    return FR_OK;
}

// Marks the run failed by a hook (it stops at the end of the round).
static void
hook_stop(sim_state *st)
{
    if (!atomic_exchange(&st->hook_failed, 1)) {
        snprintf(st->hook_err, sizeof(st->hook_err), "%u", st->hook_round);
    }
}

// Creates the device's handle, loads its ratings and starts the check-in.
// Returns 0, or -1 (o->status stays FAILED, d is closed).
static int
dev_open(worker *w, const job *jb, size_t slot, dev_live *d)
{
    sim_state            *st = w->st;
    const fri_sim_config *cf = st->c;
    const fri_csr        *tr = &st->p->train;
    uint32_t              u = jb->users[slot];
    dev_out              *o = &jb->out[slot];
    fr_client_config      cfg;
    fr_err                e;

    memset(d, 0, sizeof(*d));
    d->sock = (nng_socket) NNG_SOCKET_INITIALIZER;
    d->state = LIVE_OVER;
    memset(o, 0, sizeof(*o));
    o->status = DEV_FAILED;
    fr_client_config_init(&cfg);
    memcpy(cfg.server_pk, st->server_pk, FR_PUBLICKEYBYTES);
    fri_sim_pop_identity(st->p, u, cfg.identity_seed);
    cfg.has_identity = 1;
    // Like a deployment, each device fetches and verifies the model
    // itself unless the process-wide cache is asked for.
    cfg.model_cache = cf->shared_cache ? st->cache : NULL;
    cfg.seed = mix64(cf->seed ^ mix64((uint64_t) u + 1)) | 1;
    cfg.pseudo_items_rho = cf->priv.pseudo_rho;
    cfg.recency_half_life = cf->recency;
    cfg.svdpp_weight      = cf->svdpp;
    cfg.transition_weight = cf->transition;
    cfg.verify_adverts    = cf->verify_adverts;
    e = fr_client_create(&d->c, &cfg);
    sodium_memzero(cfg.identity_seed, sizeof(cfg.identity_seed));
    if (e != FR_OK) {
        note_error(st, u, "create", e, "");
        return -1;
    }
    if (st->atk != NULL && !jb->eval_visit) {
        uint8_t pk[FR_PUBLICKEYBYTES];
        fr_client_public_key(d->c, pk);
        fri_sim_atk_register(st->atk, u, pk);
    }
    if (st->upd[HOOK_CALLER].fn != NULL && !jb->eval_visit) {
        uint8_t pk[FR_PUBLICKEYBYTES];
        fr_client_public_key(d->c, pk);
        pthread_mutex_lock(&st->reg_mtx);
        if (st->n_reg < st->reg_cap) {
            memcpy(st->reg_pk + st->n_reg * 32, pk, 32);
            st->reg_u[st->n_reg++] = u;
        }
        pthread_mutex_unlock(&st->reg_mtx);
    }
    // --replay time: only the device's past at this round.
    int64_t cut = INT64_MAX;
    if (st->cutoff != NULL) {
        uint64_t r = jb->round < 1 ? 1 : jb->round;
        cut        = st->cutoff[r < st->n_cutoff ? r : st->n_cutoff - 1];
    }
    size_t added = 0;
    for (size_t j = tr->ptr[u]; j < tr->ptr[u + 1]; j++) {
        int64_t ts = st->p->train_ts != NULL ? st->p->train_ts[j] : 0;
        if (ts > cut) {
            continue;
        }
        if ((e = fr_client_add(d->c, tr->idx[j], tr->val[j], ts)) != FR_OK) {
            note_error(st, u, "add", e, fr_client_errmsg(d->c));
            goto fail;
        }
        added++;
    }
    if (st->cutoff != NULL && added == 0 && !jb->eval_visit) {
        // Nothing happened on this device yet: it has nothing to report.
        o->status = DEV_NONE;
        goto fail;
    }
    // Dropout is a pure function of (seed, round, device).
    fri_rng rng;
    fri_rng_seed2(&rng, cf->seed ^ 0xd509d509ull,
                  (jb->round << 32) ^ (uint64_t) u);
    d->drop = !jb->eval_visit && cf->dropout > 0.0 &&
              fri_rng_uniform(&rng) < cf->dropout;
    d->evaluate = st->eval_mask != NULL && st->eval_mask[u];

    if (cf->transport != FRI_SIM_DIRECT) {
        int rv = nng_req0_open(&d->sock);
        if (rv == 0) {
            d->sock_open = 1;
            // Never resend: a repeated request would be a replay.
            nng_socket_set_ms(d->sock, NNG_OPT_REQ_RESENDTIME,
                              NNG_DURATION_INFINITE);
            nng_socket_set_ms(d->sock, NNG_OPT_RECVTIMEO, 600000);
            nng_socket_set_ms(d->sock, NNG_OPT_SENDTIMEO, 600000);
            nng_socket_set_size(d->sock, NNG_OPT_RECVMAXSZ, 0);
            rv = nng_dial(d->sock, st->url, NULL, 0);
        }
        if (rv != 0) {
            note_error(st, u, "dial", FR_ENET, nng_strerror(rv));
            goto fail;
        }
    }
    if (st->last != NULL) {
        d->c->last  = st->last[u];
        st->last[u] = NULL;
    }
    e = jb->eval_visit ? fr_client_model_begin(d->c, clock_now(st))
                       : fr_client_checkin_begin(d->c, clock_now(st));
    if (e != FR_OK) {
        note_error(st, u, "checkin_begin", e, fr_client_errmsg(d->c));
        goto fail;
    }
    d->state = LIVE_RUNNING;
    return 0;
fail:
    if (st->last != NULL && d->c->last != NULL) {
        st->last[u]  = d->c->last;
        d->c->last   = NULL;
    }
    if (d->sock_open) {
        nng_close(d->sock);
        d->sock_open = 0;
    }
    fr_client_destroy(d->c);
    d->c = NULL;
    return -1;
}

// One request and its reply. STEP_PAUSED: the check-in waits for the next
// secure-aggregation phase; STEP_DONE(_INFO): it is over (with _INFO its
// counters are valid).
static int
dev_step(worker *w, const job *jb, size_t slot, dev_live *d)
{
    sim_state            *st = w->st;
    const fri_sim_config *cf = st->c;
    uint32_t              u = jb->users[slot];
    dev_out              *o = &jb->out[slot];
    fr_client            *c = d->c;
    fr_err                e;
    size_t                len = 0;

    if (grow(&w->req, &w->req_cap, fr_client_request_bound(c)) != 0) {
        note_error(st, u, "poll", FR_ENOMEM, "request buffer");
        return STEP_DONE;
    }
    double t0 = cpu_s();
    e = fr_client_poll(c, w->req, w->req_cap, &len);
    o->cpu_client += cpu_s() - t0;
    if (e != FR_OK) {
        note_error(st, u, "poll", e, fr_client_errmsg(c));
        return STEP_DONE;
    }
    if (len == 0) {
        fr_checkin_info info;
        fr_client_checkin_info_get(c, &info);
        if (info.status == FR_CHECKIN_MODEL_ONLY && jb->cold) {
            // A user who never trained, on its own device, from its first
            // ratings against the final model.
            fri_sim_cold_device(st->cold, c, u);
            o->status = DEV_EVALUATED;
        } else if (info.status == FR_CHECKIN_MODEL_ONLY && jb->eval_visit) {
            // The visit has the current model; predictions fit on demand.
            if (d->evaluate) {
                eval_device(st, c, u, o);
            }
            if (jb->round == cf->rounds) {
                // Target exposure under the final model (poison.h).
                fri_sim_poison_measure(st->poison, c, u, d->evaluate);
            }
            o->status = DEV_EVALUATED;
        }
        return info.status == FR_CHECKIN_RUNNING ? STEP_PAUSED
                                                 : STEP_DONE_INFO;
    }
    if (len >= FRI_SIM_HDR_MIN) {
        unsigned type = w->req[HDR_TYPE_OFF] | (w->req[HDR_TYPE_OFF + 1] << 8);
        if (type == T_UPDATE) {
            // The device has the round's model and its fitted vector.
            if (d->evaluate) {
                eval_device(st, c, u, o);
            }
            // Device-update hooks (one path, sim.h): the caller's, then
            // the built-in poisoning (a malicious device tampers last).
            // The rewritten update goes to the aggregator in place of
            // this frame.
            int bad = fri_sim_poison_malicious(st->poison, u);
            if (!d->drop && (bad || st->dev[HOOK_CALLER].fn != NULL)) {
                int    took = 0;
                fr_err he   = FR_EINTERNAL;
                if (st->dev[HOOK_CALLER].fn == NULL ||
                    !atomic_load(&st->hook_failed)) {
                    const fri_sim_dev_hook chain[N_HOOKS] = {
                        st->dev[HOOK_CALLER], st->dev[HOOK_BUILTIN]
                    };
                    he = fri_sim_device_rewrite(cf, st->agg, c, u,
                                                st->hook_round, clock_now(st),
                                                chain, N_HOOKS, &took);
                }
                if (bad) {
                    fri_sim_poison_count(st->poison, he == FR_OK && took);
                }
                if (he == FR_EINTERNAL) {
                    hook_stop(st);
                } else if (he != FR_OK && !bad) {
                    note_error(st, u, "device hook", he, "update");
                }
                o->status = took ? DEV_CONTRIBUTED : DEV_FAILED;
                o->unsent = len;
                return STEP_DONE_INFO;
            }
            if (d->drop) {
                o->status = DEV_DROPPED; // vanishes mid-round
                o->unsent = len; // built (and counted by the client), not sent
                return STEP_DONE_INFO;
            }
            if (st->park != NULL && d == &st->park[u]) {
                // Buffered mode: the report goes out when the device's
                // tick comes (device_deliver).
                d->frame = malloc(len);
                if (d->frame == NULL) {
                    note_error(st, u, "park", FR_ENOMEM, "update");
                    return STEP_DONE;
                }
                memcpy(d->frame, w->req, len);
                d->frame_len = len;
                return STEP_PAUSED;
            }
        }
    }
    const uint8_t *rep = NULL;
    size_t         rep_len = 0;
    void          *nng_buf = NULL;
    if (cf->transport == FRI_SIM_DIRECT) {
        t0 = cpu_s();
        e  = fri_sim_handle(st->agg, clock_now(st), w->req, len, &w->reply,
                            &w->reply_cap, &rep_len);
        o->cpu_agg += cpu_s() - t0;
        if (e != FR_OK) {
            note_error(st, u, "aggregator", e, "no reply");
            return STEP_DONE;
        }
        rep = w->reply;
    } else {
        int rv = nng_send(d->sock, w->req, len, 0);
        if (rv == 0) {
            rv = nng_recv(d->sock, &nng_buf, &rep_len, NNG_FLAG_ALLOC);
        }
        if (rv != 0) {
            note_error(st, u, "exchange", FR_ENET, nng_strerror(rv));
            return STEP_DONE;
        }
        rep = nng_buf;
    }
    t0 = cpu_s();
    e = fr_client_receive(c, rep, rep_len);
    o->cpu_client += cpu_s() - t0;
    if (nng_buf != NULL) {
        nng_free(nng_buf, rep_len);
    }
    if (e != FR_OK) {
        note_error(st, u, "receive", e, fr_client_errmsg(c));
        return STEP_DONE_INFO;
    }
    return STEP_MORE;
}

// Ends the device's check-in: its counters (after STEP_DONE_INFO), status,
// socket and handle.
static void
dev_close(sim_state *st, const job *jb, size_t slot, dev_live *d, int info_ok)
{
    dev_out *o = &jb->out[slot];
    if (info_ok && d->c != NULL) {
        fr_checkin_info info;
        fr_client_checkin_info_get(d->c, &info);
        o->up = info.bytes_up >= o->unsent ? info.bytes_up - o->unsent : 0;
        o->down = info.bytes_down;
        if (o->status == DEV_FAILED) {
            switch (info.status) {
            case FR_CHECKIN_CONTRIBUTED:
                o->status = DEV_CONTRIBUTED;
                break;
            case FR_CHECKIN_NOT_SELECTED:
                o->status = DEV_NOT_SELECTED;
                break;
            default:
                if (st->first_err[0] == '\0') {
                    note_error(st, jb->users[slot], "check-in", FR_ESTATE,
                               fr_client_errmsg(d->c));
                }
                break;
            }
        }
    }
    if (d->sock_open) {
        nng_close(d->sock);
        d->sock_open = 0;
    }
    if (st->last != NULL && d->c != NULL) {
        uint32_t u = jb->users[slot];
        st->last[u] = d->c->last;
        d->c->last = NULL;
    }
    fr_client_destroy(d->c);
    d->c = NULL;
    d->state = LIVE_OVER;
}

// One device's check-in (or its model-only evaluation visit).
static void
device_run(worker *w, const job *jb, size_t slot)
{
    dev_live d;
    if (dev_open(w, jb, slot, &d) != 0) {
        return;
    }
    int s;
    while ((s = dev_step(w, jb, slot, &d)) == STEP_MORE) {
    }
    // A plain check-in never pauses; if one does, it ends here unfinished.
    dev_close(w->st, jb, slot, &d, s != STEP_DONE);
}

// Buffered mode: the device arrives, checks in on the current version
// and fits; its built UPDATE waits in st->park[u] (device_deliver).
static void
device_park(worker *w, const job *jb, size_t slot)
{
    sim_state *st = w->st;
    dev_live  *d  = &st->park[jb->users[slot]];
    if (dev_open(w, jb, slot, d) != 0) {
        return;
    }
    int s;
    while ((s = dev_step(w, jb, slot, d)) == STEP_MORE) {
    }
    if (s == STEP_PAUSED && d->frame != NULL) {
        jb->out[slot].status = DEV_NONE; // counted when it reports
        return;
    }
    dev_close(st, jb, slot, d, s != STEP_DONE);
}

// Buffered mode, main thread: device u sends the UPDATE it built when it
// arrived and ends its check-in (*o: its counters; DEV_STALE when the
// aggregator refused the report as too stale).
static void
device_deliver(sim_state *st, worker *w, uint32_t u, uint64_t round,
               dev_out *o)
{
    const fri_sim_config *cf  = st->c;
    dev_live             *d   = &st->park[u];
    job                   one = {.users = &u, .n = 1, .round = round,
                                 .out = o};
    memset(o, 0, sizeof(*o));
    o->status = DEV_FAILED;
    fri_agg_metrics m0, m1;
    fri_agg_metrics_get(st->agg, &m0);
    const uint8_t *rep     = NULL;
    size_t         rep_len = 0;
    void          *nng_buf = NULL;
    fr_err         e       = FR_OK;
    if (cf->transport == FRI_SIM_DIRECT) {
        double t0 = cpu_s();
        e         = fri_sim_handle(st->agg, clock_now(st), d->frame,
                                   d->frame_len, &w->reply, &w->reply_cap,
                                   &rep_len);
        o->cpu_agg += cpu_s() - t0;
        rep = w->reply;
    } else {
        int rv = nng_send(d->sock, d->frame, d->frame_len, 0);
        if (rv == 0) {
            rv = nng_recv(d->sock, &nng_buf, &rep_len, NNG_FLAG_ALLOC);
        }
        e   = rv == 0 ? FR_OK : FR_ENET;
        rep = nng_buf;
    }
    free(d->frame);
    d->frame = NULL;
    if (e != FR_OK) {
        note_error(st, u, "deliver", e, "no reply");
        dev_close(st, &one, 0, d, 0);
        return;
    }
    double t0 = cpu_s();
    e = fr_client_receive(d->c, rep, rep_len);
    o->cpu_client += cpu_s() - t0;
    if (nng_buf != NULL) {
        nng_free(nng_buf, rep_len);
    }
    fri_agg_metrics_get(st->agg, &m1);
    int s = STEP_DONE_INFO;
    if (e == FR_OK) {
        while ((s = dev_step(w, &one, 0, d)) == STEP_MORE) {
        }
    } else if (m1.rejected[FRI_REJ_STALE] > m0.rejected[FRI_REJ_STALE]) {
        o->status = DEV_STALE; // it retries when it next arrives
    } else {
        note_error(st, u, "receive", e, fr_client_errmsg(d->c));
    }
    dev_close(st, &one, 0, d, s != STEP_DONE);
}

// Secure aggregation: advances one device until it pauses or ends.
static void
device_pass(worker *w, const job *jb, size_t slot)
{
    sim_state *st = w->st;
    dev_live  *d = &st->live[slot];
    if (d->state == LIVE_OVER) {
        return;
    }
    if (d->state == LIVE_IDLE) {
        if (dev_open(w, jb, slot, d) != 0) {
            atomic_fetch_add(&st->pass_progress, 1);
            return;
        }
    }
    for (int n = 0;; n++) {
        int s = dev_step(w, jb, slot, d);
        if (s == STEP_MORE) {
            continue;
        }
        if (s == STEP_PAUSED) {
            // Only a SA_WAIT (one exchange, then the pause): no progress.
            if (n > 1) {
                atomic_fetch_add(&st->pass_progress, 1);
            }
            return;
        }
        dev_close(st, jb, slot, d, s != STEP_DONE);
        atomic_fetch_add(&st->pass_progress, 1);
        return;
    }
}

static void *
worker_main(void *arg)
{
    worker *w = arg;
    job    *jb = w->st->job;
    for (;;) {
        size_t i = atomic_fetch_add(&jb->next, 1);
        if (i >= jb->n) {
            break;
        }
        if (w->st->park != NULL && !jb->eval_visit) {
            device_park(w, jb, i);
        } else if (w->st->live != NULL) {
            device_pass(w, jb, i);
        } else {
            device_run(w, jb, i);
        }
    }
    return NULL;
}

static void
run_pool(sim_state *st, worker *ws, job *jb)
{
    uint32_t  nt = st->c->threads;
    pthread_t th[256];
    uint32_t  started = 0;
    st->job = jb;
    atomic_store(&jb->next, 0);
    if (nt > jb->n) {
        nt = jb->n > 0 ? (uint32_t) jb->n : 1;
    }
    for (uint32_t i = 1; i < nt; i++) {
        if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0) {
            break;
        }
        started = i;
    }
    worker_main(&ws[0]);
    for (uint32_t i = 1; i <= started; i++) {
        pthread_join(th[i], NULL);
    }
}

// Runs the job's check-ins. Under secure aggregation (st->live set) the
// devices are interleaved in passes; between passes the aggregator ticks,
// and when a whole pass made no progress (everyone waits for a phase that
// waits for vanished members) virtual time jumps past the phase deadline.
// Aggregator log sink: errors only (a lost round's reason), on stderr.
static void
agg_log(void *ctx, fr_log_level lv, const char *msg)
{
    (void) ctx;
    (void) lv;
    fprintf(stderr, "fedrec-sim: aggregator: %s\n", msg);
}

static fr_err
run_job(sim_state *st, worker *ws, job *jb)
{
    if (st->live == NULL || jb->eval_visit) {
        dev_live *live = st->live;
        st->live = NULL; // a model-only visit takes part in no phase
        run_pool(st, ws, jb);
        st->live = live;
        return FR_OK;
    }
    memset(st->live, 0, sizeof(*st->live) * jb->n);
    for (int pass = 0; pass < 100000; pass++) {
        atomic_store(&st->pass_progress, 0);
        run_pool(st, ws, jb);
        size_t active = 0;
        for (size_t i = 0; i < jb->n; i++) {
            active += st->live[i].state != LIVE_OVER;
        }
        if (active == 0) {
            return FR_OK;
        }
        fri_sim_atk_poll(st->atk, clock_now(st));
        if (atomic_load(&st->pass_progress) == 0) {
            atomic_fetch_add(&st->clock_ms, st->deadline_ms + 1);
        }
        agg_tick(st);
    }
    for (size_t i = 0; i < jb->n; i++) {
        if (st->live[i].state != LIVE_OVER) {
            dev_close(st, jb, i, &st->live[i], 0);
        }
    }
    return FR_EINTERNAL;
}

// Beyond accuracy over the lists the final evaluation visit's devices
// computed (jb->out): popularity is each item's number of training users,
// diversity uses the final item factors.
static fr_err
list_metrics(sim_state *st, const job *jb, fri_sim_summary *s)
{
    const fri_sim_pop *p  = st->p;
    const uint32_t     ni = p->n_items, k = st->c->k;
    const size_t       n  = jb->n;
    uint32_t          *pop   = calloc(ni ? ni : 1, sizeof(*pop));
    float             *Q     = malloc(sizeof(float) * ((size_t) ni * k + 1));
    uint32_t          *lists = malloc(sizeof(uint32_t) * FRI_SIM_LIST_K *
                                      (n ? n : 1));
    uint8_t           *lens  = malloc(n ? n : 1);
    fr_err             e     = FR_ENOMEM;
    if (pop != NULL && Q != NULL && lists != NULL && lens != NULL && ni > 0) {
        for (size_t j = 0; j < p->train.ptr[p->n_users]; j++) {
            if (p->train.idx[j] < ni) {
                pop[p->train.idx[j]]++;
            }
        }
        for (size_t i = 0; i < n; i++) {
            memcpy(lists + i * FRI_SIM_LIST_K, jb->out[i].top,
                   sizeof(jb->out[i].top));
            lens[i] = jb->out[i].n_top;
        }
        fri_agg_model_copy(st->agg, NULL, NULL, 0, Q, (size_t) ni * k, NULL);
        e = fri_list_metrics_eval(&s->lists, lists, lens, n, FRI_SIM_LIST_K,
                                  ni, pop, p->n_users, Q, k);
    }
    free(pop);
    free(Q);
    free(lists);
    free(lens);
    return e;
}

static int
is_eval_round(const fri_sim_config *c, uint32_t r)
{
    return r == c->rounds || (c->eval_every > 0 && r % c->eval_every == 0);
}

static int
cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *) a, y = *(const size_t *) b;
    return (x > y) - (x < y);
}

// heavy[u] = 1 for the evaluation users with at least the median number
// of training ratings among them.
static fr_err
mark_heavy(const fri_sim_pop *p, const uint32_t *evals, size_t n,
           uint8_t *heavy)
{
    size_t *cnt = malloc(sizeof(size_t) * (n ? n : 1));
    if (cnt == NULL) {
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        cnt[i] = p->train.ptr[evals[i] + 1] - p->train.ptr[evals[i]];
    }
    qsort(cnt, n, sizeof(size_t), cmp_size);
    size_t median = n > 0 ? cnt[n / 2] : 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = evals[i];
        heavy[u] = p->train.ptr[u + 1] - p->train.ptr[u] >= median;
    }
    free(cnt);
    return FR_OK;
}

// Default cadence of evaluation visits: every ceil(evaluation users /
// cohort) rounds, so that the visits add about as many check-ins as the
// training itself (a visit costs about one check-in: handshake, model
// download and signature check, fit).
static uint32_t
default_eval_every(size_t n_evals, size_t cohort)
{
    size_t e = cohort > 0 ? (n_evals + cohort - 1) / cohort : 1;
    return e < 1 ? 1 : e > 1000000 ? 1000000 : (uint32_t) e;
}

// The groups (FRI_SIM_GRP_*) user u is in: its activity group, then its
// gender and age band groups when known (FRI_SIM_NGRP entries, -1 = none).
static void
groups_of(const fri_sim_pop *p, const uint8_t *heavy, uint32_t u, int *g)
{
    g[0] = heavy[u] ? FRI_SIM_GRP_HEAVY : FRI_SIM_GRP_LIGHT;
    g[1] = p != NULL && p->gender != NULL && p->gender[u] < FRI_GENDER_N
               ? FRI_SIM_GRP_FEMALE + p->gender[u]
               : -1;
    g[2] = p != NULL && p->age_band != NULL && p->age_band[u] < FRI_AGE_N
               ? FRI_SIM_GRP_AGE + p->age_band[u]
               : -1;
}

// Sums the devices' evaluation in slot order (deterministic).
static void
collect_eval(const fri_sim_config *c, const fri_sim_pop *p, const job *jb,
             const uint8_t *heavy, fri_sim_round *r)
{
    double sq = 0, ab = 0, hr = 0, nd = 0, sq_new = 0, sq_m = 0;
    size_t n = 0, nu = 0, held = 0, n_new = 0, n_m = 0;
    double g_sq[FRI_SIM_NGRP] = {0}, g_hr[FRI_SIM_NGRP] = {0};
    size_t g_n[FRI_SIM_NGRP] = {0}, g_nu[FRI_SIM_NGRP] = {0};
    for (size_t i = 0; i < jb->n; i++) {
        const dev_out *o = &jb->out[i];
        if (jb->eval_visit) {
            r->eval_bytes += o->up + o->down;
        }
        if (!o->evaluated) {
            continue;
        }
        held += o->n_held;
        sq += o->sq;
        ab += o->ab;
        n += o->n_eval;
        hr += o->hr;
        nd += o->ndcg;
        nu++;
        sq_new += o->sq_new;
        n_new += o->n_new;
        sq_m += o->sq_matched;
        n_m += o->n_matched;
        int gs[3];
        groups_of(p, heavy, jb->users[i], gs);
        for (int t = 0; t < 3; t++) {
            if (gs[t] < 0) {
                continue;
            }
            g_sq[gs[t]] += o->sq;
            g_n[gs[t]] += o->n_eval;
            g_hr[gs[t]] += o->hr;
            g_nu[gs[t]]++;
        }
    }
    r->new_ratings     = n_new;
    r->matched_ratings = n_m;
    r->new_rmse        = n_new > 0 ? sqrt(sq_new / (double) n_new) : NAN;
    r->matched_rmse    = n_m > 0 ? sqrt(sq_m / (double) n_m) : NAN;
    for (int g = 0; g < FRI_SIM_NGRP; g++) {
        r->grp_users[g] = (uint32_t) g_nu[g];
        r->grp_rmse[g] = g_n[g] > 0 ? sqrt(g_sq[g] / (double) g_n[g]) : NAN;
        r->grp_hr10[g] = g_nu[g] > 0 ? g_hr[g] / (double) g_nu[g] : NAN;
    }
    r->evaluated = c->implicit ? nu > 0 : n > 0;
    r->eval_users = (uint32_t) nu;
    r->eval_ratings = c->implicit ? held : n;
    r->rmse = n > 0 ? sqrt(sq / (double) n) : NAN;
    r->mae = n > 0 ? ab / (double) n : NAN;
    r->hr10 = nu > 0 ? hr / (double) nu : NAN;
    r->ndcg10 = nu > 0 ? nd / (double) nu : NAN;
}

static void
collect_counts(const job *jb, fri_sim_round *r)
{
    for (size_t i = 0; i < jb->n; i++) {
        const dev_out *o = &jb->out[i];
        r->bytes_up += o->up;
        r->bytes_down += o->down;
        if (o->status == DEV_CONTRIBUTED) {
            r->clients++;
        } else if (o->status == DEV_DROPPED) {
            r->dropped++;
        } else if (o->status == DEV_FAILED ||
                   o->status == DEV_NOT_SELECTED) {
            r->failed++;
        }
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

// The round's CPU split: the aggregator's own time (its request handling,
// direct transport only, plus its ticks) and the contributing devices'
// client-library time (median, max). tmp: jb->n doubles.
static void
collect_cpu(const job *jb, double tick_cpu, double *tmp, fri_sim_round *r)
{
    size_t n = 0;
    r->agg_seconds = tick_cpu;
    for (size_t i = 0; i < jb->n; i++) {
        const dev_out *o = &jb->out[i];
        r->agg_seconds += o->cpu_agg;
        if (o->status == DEV_CONTRIBUTED) {
            tmp[n++] = o->cpu_client;
        }
    }
    if (n > 0) {
        qsort(tmp, n, sizeof(*tmp), cmp_double);
        r->client_seconds_median =
            n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
        r->client_seconds_max = tmp[n - 1];
    }
}

static fr_err
fail(char *err, size_t cap, fr_err e, const char *fmt, const char *a)
{
    if (cap > 0) {
        snprintf(err, cap, fmt, a);
    }
    return e;
}

// A run in progress: what fri_sim_run keeps between rounds, so that a
// caller (the library, sim/lib.c) can step it one round at a time.
struct fri_sim_runner {
    fri_sim_config     cc; // settings fixed once the data is known
    const fri_sim_pop *p;
    fri_sim_round     *rounds;
    fri_sim_summary   *s;
    fri_sim_round_fn   cb;
    void              *cb_ctx;
    sim_state          st;
    int                mtx_ok;
    fri_agg_config     ac;
    worker            *ws;
    uint32_t          *eligible, *evals;
    uint8_t           *heavy, *mask;
    dev_out           *out;
    double            *cpu_tmp;
    size_t             n_eligible, n_evals, cohort, n_cold;
    const uint32_t    *cold_users;
    int                in_cohort_eval;
    uint32_t           atk_every;
    uint32_t           grow_round; // --new-items: the round that asks
    uint32_t           next; // the next round to run (1-based)
    uint32_t           emitted; // rounds handed to cb
    uint32_t           n_abandoned;
    double             t_rounds;
    fri_rng            sel;
    fri_agg_metrics    m_start;
    int                finished; // the summary is complete
    int                failed; // a step failed: no further step
    uint8_t            hash[32]; // of the final item model
    // Buffered mode: per user whether a check-in is parked and the tick it
    // reports; the parked users in arrival order; this tick's arrivals
    // and deliveries.
    uint8_t           *busy;
    uint32_t          *due;
    // --mpi (tree.h): this rank's devices of a job, and on rank 0 every
    // rank's devices and results of it.
    fri_sim_tree      *tree;
    uint32_t          *shard, *g_users;
    dev_out           *g_out;
    uint32_t          *queue;
    size_t             n_queue;
    uint32_t          *arr;
    dev_out           *dout;
};

static void
emit(fri_sim_runner *rn, uint32_t upto)
{
    while (rn->emitted < upto) {
        if (rn->cb != NULL) {
            rn->cb(rn->cb_ctx, &rn->rounds[rn->emitted]);
        }
        rn->emitted++;
    }
}

// --new-items: for each new item (ids from `from` on), most rated first,
// the old item with the closest number of training ratings not matched
// yet (ties: the lower id), so that the two sets compare items with the
// same evidence. matched: n_items bytes, zeroed.
static fr_err
match_new_items(const fri_sim_pop *p, uint32_t from, uint8_t *matched)
{
    const uint32_t ni  = p->n_items;
    uint32_t      *cnt = calloc(ni, sizeof(uint32_t));
    uint32_t      *ord = malloc((size_t) (ni - from) * sizeof(uint32_t));
    if (cnt == NULL || ord == NULL) {
        free(cnt);
        free(ord);
        return FR_ENOMEM;
    }
    for (size_t j = 0; j < p->train.ptr[p->n_users]; j++) {
        if (p->train.idx[j] < ni) {
            cnt[p->train.idx[j]]++;
        }
    }
    uint32_t n = 0;
    for (uint32_t i = from; i < ni; i++) {
        uint32_t t = n++;
        while (t > 0 && cnt[ord[t - 1]] < cnt[i]) { // insertion, descending
            ord[t] = ord[t - 1];
            t--;
        }
        ord[t] = i;
    }
    for (uint32_t q = 0; q < n; q++) {
        uint32_t best = UINT32_MAX, gap = UINT32_MAX, c = cnt[ord[q]];
        for (uint32_t i = 0; i < from; i++) {
            uint32_t g = cnt[i] > c ? cnt[i] - c : c - cnt[i];
            if (!matched[i] && g < gap) {
                best = i;
                gap  = g;
            }
        }
        if (best != UINT32_MAX) {
            matched[best] = 1;
        }
    }
    free(cnt);
    free(ord);
    return FR_OK;
}

static void dispatch_update(void *ctx, const uint8_t pk[FRI_AGG_KEYBYTES],
    const fri_agg_update *up);
static void dispatch_masked(
    void *ctx, uint32_t index, const uint32_t *y, size_t dim);

fr_err
fri_sim_runner_create(fri_sim_runner **out_rn, const fri_sim_config *cfg,
    const fri_sim_pop *p, fri_sim_round *rounds, fri_sim_summary *s,
    fri_sim_round_fn cb, void *cb_ctx, char *err, size_t err_cap)
{
    fr_err e         = FR_OK;
    char   aerr[256] = "";
    *out_rn          = NULL;
    if (err_cap > 0) {
        err[0] = '\0';
    }
    fri_sim_runner *rn = calloc(1, sizeof(*rn));
    if (rn == NULL) {
        return fail(err, err_cap, FR_ENOMEM, "%s", "out of memory");
    }
    rn->cc                   = *cfg;
    const fri_sim_config *c  = &rn->cc;
    sim_state            *st = &rn->st;
    fri_agg_config       *ac = &rn->ac;
    rn->p                    = p;
    rn->rounds               = rounds;
    rn->s                    = s;
    rn->cb                   = cb;
    rn->cb_ctx               = cb_ctx;
    rn->next                 = 1;
    memset(rounds, 0, sizeof(*rounds) * c->rounds);
    st->c = c;
    st->p = p;
    pthread_mutex_init(&st->err_mtx, NULL);
    pthread_mutex_init(&st->reg_mtx, NULL);
    rn->mtx_ok = 1;
    atomic_store(&st->clock_ms, 1000);
    if (sodium_init() < 0) {
        e = fail(err, err_cap, FR_EINTERNAL, "%s", "sodium_init failed");
        goto out;
    }

    // Who can contribute (has training ratings) and who evaluates.
    rn->eligible = malloc(sizeof(uint32_t) * (p->n_users ? p->n_users : 1));
    rn->mask     = calloc(p->n_users ? p->n_users : 1, 1);
    rn->evals    = malloc(sizeof(uint32_t) * (p->n_users ? p->n_users : 1));
    if (rn->eligible == NULL || rn->mask == NULL || rn->evals == NULL) {
        e = FR_ENOMEM;
        goto out;
    }
    if ((e = fri_sim_cold_create(&st->cold, c, p, err, err_cap)) != FR_OK) {
        goto out;
    }
    for (uint32_t u = 0; u < p->n_users; u++) {
        if (fri_sim_cold_is(st->cold, u)) {
            continue; // neither trains nor scores the trained model
        }
        if (p->train.ptr[u + 1] > p->train.ptr[u]) {
            rn->eligible[rn->n_eligible++] = u;
        }
        if (p->test.ptr[u + 1] > p->test.ptr[u]) {
            rn->evals[rn->n_evals++] = u;
        }
    }
    if (rn->n_eligible == 0) {
        e = fail(err, err_cap, FR_EINVAL, "%s", "no device has ratings");
        goto out;
    }
    {
        uint32_t want = c->eval_users;
        if (want == 0 && rn->n_evals > 50000) {
            want = 10000; // a seeded sample keeps huge runs practical
        }
        if (want > 0 && want < rn->n_evals) {
            fri_rng r;
            fri_rng_seed2(&r, c->seed, 0xe7a1);
            for (size_t i = 0; i < want; i++) {
                size_t j = i + fri_rng_below(&r, (uint32_t)(rn->n_evals - i));
                uint32_t t   = rn->evals[i];
                rn->evals[i] = rn->evals[j];
                rn->evals[j] = t;
            }
            rn->n_evals = want;
        }
        for (size_t i = 0; i < rn->n_evals; i++) {
            rn->mask[rn->evals[i]] = 1;
        }
        st->eval_mask = rn->mask;
    }
    // Light and heavy users: below, or at least, the evaluation users'
    // median number of training ratings.
    rn->heavy = calloc(p->n_users ? p->n_users : 1, 1);
    if (rn->heavy == NULL
        || (e = mark_heavy(p, rn->evals, rn->n_evals, rn->heavy)) != FR_OK) {
        e = FR_ENOMEM;
        goto out;
    }
    if (c->new_items > 0) {
        if (c->implicit) {
            e = fail(err, err_cap, FR_EINVAL, "%s",
                "--new-items: explicit feedback only");
            goto out;
        }
        char why[128];
        rn->grow_round = fri_sim_new_items_round(c);
        if (c->new_items >= p->n_items) {
            snprintf(why, sizeof(why), "--new-items %u: the data has %u items",
                     c->new_items, p->n_items);
        } else if ((rn->grow_round == 0 && !c->new_items_at) ||
                   rn->grow_round >= c->rounds) {
            snprintf(why, sizeof(why),
                     "--new-items N@R: R must be in 0..%u (below --rounds)",
                     c->rounds > 1 ? c->rounds - 1 : 0);
        } else {
            why[0] = 0;
        }
        if (why[0] != 0) {
            e = fail(err, err_cap, FR_EINVAL, "%s", why);
            goto out;
        }
        st->grow_from = p->n_items - c->new_items;
        st->matched   = calloc(p->n_items, 1);
        if (st->matched == NULL
            || (e = match_new_items(p, st->grow_from, st->matched))
                   != FR_OK) {
            e = FR_ENOMEM;
            goto out;
        }
    }
    size_t cohort = fri_sim_cohort_size(c, rn->n_eligible);
    rn->cohort    = cohort;
    // Evaluation inside the cohort is free, and honest only when every
    // evaluation user is in every cohort and reaches the update (plain
    // aggregation); otherwise the evaluation users visit.
    // (Buffered mode: reports land in steps the devices do not see.)
    int in_cohort_eval =
        cohort == rn->n_eligible && !c->priv.secagg && c->buffer == 0;
    for (size_t i = 0; i < rn->n_evals && in_cohort_eval; i++) {
        in_cohort_eval
            = p->train.ptr[rn->evals[i] + 1] > p->train.ptr[rn->evals[i]];
    }
    rn->in_cohort_eval = in_cohort_eval;
    // The attacks keep the cadence --eval-every gives (every round by
    // default), whatever the evaluation visits' default.
    rn->atk_every = c->eval_every;
    if (!in_cohort_eval && !c->eval_every_set) {
        rn->cc.eval_every = default_eval_every(rn->n_evals, cohort);
    }
    s->eval_every  = c->eval_every;
    rn->cold_users = fri_sim_cold_users(st->cold, &rn->n_cold);
    size_t max_job = cohort > rn->n_evals ? cohort : rn->n_evals;
    max_job        = max_job > rn->n_cold ? max_job : rn->n_cold;
    rn->out        = calloc(max_job ? max_job : 1, sizeof(*rn->out));
    rn->cpu_tmp    = calloc(max_job ? max_job : 1, sizeof(*rn->cpu_tmp));
    if (rn->out == NULL || rn->cpu_tmp == NULL) {
        e = FR_ENOMEM;
        goto out;
    }

    // The aggregator, configured like a deployment except that the
    // simulator decides who is online (every check-in is selected) and
    // closes the round by letting the virtual clock reach the deadline.
    fri_agg_config_init(ac);
    ac->n_items           = st->matched != NULL && rn->grow_round > 0
                                ? st->grow_from
                                : p->n_items;
    ac->k                 = c->k;
    ac->algo              = c->algo == FRI_SIM_ALS ? FRI_AGG_ALS
                     : c->algo == FRI_SIM_VBMF     ? FRI_AGG_VBMF
                                                   : FRI_AGG_GRAD;
    ac->implicit          = c->implicit;
    if (p->item_feat != NULL) {
        if (ac->algo != FRI_AGG_VBMF) {
            e = fail(err, err_cap, FR_EINVAL, "%s",
                "--item-features: the item prior is VBMF's (no --algo, or "
                "--algo vbmf)");
            goto out;
        }
        ac->item_features     = p->item_feat;
        ac->n_item_features   = p->n_feat;
        ac->item_feature_rows = p->n_items;
    }
    ac->reg               = c->reg;
    ac->reg_bias          = c->reg_bias;
    ac->weighted          = c->weighted;
    ac->init_std          = c->init_std;
    ac->alpha             = c->alpha;
    ac->seed              = c->seed;
    ac->server_opt        = (fri_agg_opt)c->server_opt;
    ac->server_lr         = c->lr;
    ac->clients_per_round = 0;
    ac->fraction          = 0.0;
    ac->min_clients       = 1;
    ac->round_deadline_ms = (uint64_t)(c->deadline_s * 1000.0 + 0.5);
    if (ac->round_deadline_ms == 0) {
        ac->round_deadline_ms = 1;
    }
    ac->rounds = 0;
    if (c->stats_latest == 1 && !ac->implicit) {
        ac->stats_latest = 1;
    } else if (ac->algo == FRI_AGG_ALS && cohort < rn->n_eligible) {
        // Partial participation: carry item statistics across rounds with
        // the cohort's share as the forgetting rate (fri_agg_config).
        ac->stats_forget = c->stats_forget > 0.0
            ? (float)c->stats_forget
            : (float)((double)cohort / (double)rn->n_eligible);
    }
    if (p->min_rating < p->max_rating) {
        // The data's rating range is the aggregator's bound (bounds.h).
        ac->rating_min = p->min_rating;
        ac->rating_max = p->max_rating;
    }
    ac->max_sessions   = (uint32_t)(max_job * 2 + 64);
    ac->session_ttl_ms = ac->round_deadline_ms;
    ac->state_dir      = c->state_dir;
    ac->log            = agg_log;
    ac->log_level      = FR_LOG_ERROR;
    fri_sim_privacy_agg_config(c, p, cohort, ac);
    if (c->buffer > 0) {
        // Only a full buffer steps (a tick is no deadline), and a parked
        // device's session outlives its slowest report.
        ac->buffer         = c->buffer;
        ac->max_staleness  = c->max_staleness;
        ac->min_clients    = c->buffer;
        ac->session_ttl_ms = ac->round_deadline_ms * (c->slow_ticks + 4);
    }
    ac->robust      = c->poison.robust;
    ac->model_format = c->model_format;
    st->deadline_ms = ac->round_deadline_ms;
    fri_sim_identity_seed(c->seed, 0, ac->identity_seed);
    ac->has_identity = 1;
    if (c->mpi) {
        // This rank's aggregator is an edge of rank 0's root; devices pin
        // the root's key.
        rn->shard   = malloc(sizeof(uint32_t) * max_job);
        rn->g_users = malloc(sizeof(uint32_t) * max_job);
        rn->g_out   = calloc(max_job, sizeof(dev_out));
        if (rn->shard == NULL || rn->g_users == NULL || rn->g_out == NULL) {
            e = FR_ENOMEM;
            goto out;
        }
        e = fri_sim_tree_create(&rn->tree, c, ac, cohort, st->server_pk,
            err, err_cap);
        if (e != FR_OK) {
            sodium_memzero(ac->identity_seed, sizeof(ac->identity_seed));
            goto out;
        }
    }
    e = fri_agg_create(&st->agg, ac, clock_now(st), aerr, sizeof(aerr));
    sodium_memzero(ac->identity_seed, sizeof(ac->identity_seed));
    if (e != FR_OK) {
        e = fail(err, err_cap, e, "aggregator: %s", aerr);
        goto out;
    }
    if (rn->tree != NULL) {
        if ((e = fri_sim_tree_link(rn->tree, st->agg, err, err_cap))
            != FR_OK) {
            goto out;
        }
    } else {
        fri_agg_public_key(st->agg, st->server_pk);
    }
    if (ac->stats_latest) {
        st->last = calloc(p->n_users > 0 ? p->n_users : 1, sizeof(*st->last));
        if (st->last == NULL) {
            e = FR_ENOMEM;
            goto out;
        }
    }
    if (c->replay_time) {
        if ((e = replay_cutoffs(p, c->rounds, &st->cutoff, &st->n_cutoff))
            != FR_OK) {
            e = fail(err, err_cap, e,
                "--replay time needs timestamps in --train (%s)",
                fr_strerror(e));
            goto out;
        }
    }
    if ((e = fri_sim_atk_create(&st->atk, c, p, cohort, st->agg)) != FR_OK) {
        goto out;
    }
    {
        // The built-in attacks take the hooks a caller's attack takes.
        int upd = 0, msk = 0;
        fri_sim_atk_hooks(st->atk, &upd, &msk);
        if (upd) {
            st->upd[HOOK_BUILTIN].fn  = fri_sim_atk_update_hook;
            st->upd[HOOK_BUILTIN].ctx = st->atk;
            fri_agg_set_update_hook(st->agg, dispatch_update, st);
        }
        if (msk) {
            st->msk[HOOK_BUILTIN].fn  = fri_sim_atk_masked_hook;
            st->msk[HOOK_BUILTIN].ctx = st->atk;
            fri_agg_set_masked_hook(st->agg, dispatch_masked, st);
        }
    }
    if ((e = fri_sim_poison_create(&st->poison, c, p, st->agg, err, err_cap))
        != FR_OK) {
        goto out;
    }
    if (st->poison != NULL) {
        st->dev[HOOK_BUILTIN].fn  = fri_sim_poison_hook;
        st->dev[HOOK_BUILTIN].ctx = st->poison;
    }
    if (c->priv.secagg) {
        st->live = calloc(cohort, sizeof(*st->live));
        if (st->live == NULL) {
            e = FR_ENOMEM;
            goto out;
        }
    }
    if (c->buffer > 0) {
        size_t nu = p->n_users > 0 ? p->n_users : 1;
        st->park  = calloc(nu, sizeof(*st->park));
        rn->busy  = calloc(nu, 1);
        rn->due   = calloc(nu, sizeof(*rn->due));
        rn->queue = calloc(nu, sizeof(*rn->queue));
        rn->arr   = calloc(nu, sizeof(*rn->arr));
        rn->dout  = calloc(nu, sizeof(*rn->dout));
        free(rn->cpu_tmp);
        rn->cpu_tmp = calloc(nu, sizeof(*rn->cpu_tmp));
        if (st->park == NULL || rn->busy == NULL || rn->due == NULL ||
            rn->queue == NULL || rn->arr == NULL || rn->dout == NULL ||
            rn->cpu_tmp == NULL) {
            e = FR_ENOMEM;
            goto out;
        }
    }
    if ((e = fr_model_cache_create(&st->cache)) != FR_OK) {
        goto out;
    }
    if (c->transport != FRI_SIM_DIRECT) {
        char url[256];
        if (c->transport == FRI_SIM_INPROC) {
            snprintf(url, sizeof(url), "inproc://fedrec-sim-%ld-%p",
                (long)getpid(), (void *)st);
        } else if (c->transport == FRI_SIM_IPC) {
            snprintf(url, sizeof(url), "ipc:///tmp/fedrec-sim-%ld-%p.ipc",
                (long)getpid(), (void *)st);
        } else {
            snprintf(url, sizeof(url), "tcp://127.0.0.1:0");
        }
        e = fri_sim_server_start(&st->srv, st->agg, url, c->threads * 2 + 2,
            clock_now, st, st->url, sizeof(st->url), aerr, sizeof(aerr));
        if (e != FR_OK) {
            e = fail(err, err_cap, e, "server: %s", aerr);
            goto out;
        }
    }
    rn->ws = calloc(c->threads, sizeof(*rn->ws));
    if (rn->ws == NULL) {
        e = FR_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < c->threads; i++) {
        rn->ws[i].st = st;
        if (c->transport == FRI_SIM_DIRECT) {
            rn->ws[i].reply_cap = fri_agg_reply_bound(st->agg);
            rn->ws[i].reply     = malloc(rn->ws[i].reply_cap);
            if (rn->ws[i].reply == NULL) {
                e = FR_ENOMEM;
                goto out;
            }
        }
    }
    fri_rng_seed2(&rn->sel, c->seed, 0xc0407);
    fri_agg_metrics_get(st->agg, &rn->m_start);
out:
    if (e != FR_OK) {
        if (err_cap > 0 && err[0] == '\0') {
            snprintf(err, err_cap, "%s", fr_strerror(e));
        }
        fri_sim_runner_destroy(rn);
        return e;
    }
    *out_rn = rn;
    return FR_OK;
}

static void park_drain(fri_sim_runner *rn);

// After the last round: the cold-start visits, the aggregator's stop, the
// summary and the model hash.
static fr_err
runner_finish(fri_sim_runner *rn, char *err, size_t err_cap)
{
    const fri_sim_config *c      = &rn->cc;
    const fri_sim_pop    *p      = rn->p;
    sim_state            *st     = &rn->st;
    fri_sim_summary      *s      = rn->s;
    fri_sim_round        *rounds = rn->rounds;
    {
        fri_agg_metrics m_end;
        fri_agg_metrics_get(st->agg, &m_end);
        s->agg_checkins    = m_end.checkins - rn->m_start.checkins;
        s->agg_model_reads = m_end.model_reads - rn->m_start.model_reads;
        if (rn->tree != NULL) {
            // Every rank's edge served its share of them.
            uint64_t v[2] = { s->agg_checkins, s->agg_model_reads }, t[2];
            fr_err   e    = fri_sim_tree_sum(rn->tree, v, 2, t);
            if (e != FR_OK) {
                return fail(err, err_cap, e, "%s", "--mpi: summing counters");
            }
            if (fri_sim_tree_rank(rn->tree) == 0) {
                s->agg_checkins    = t[0];
                s->agg_model_reads = t[1];
            }
        }
    }
    if (st->cold != NULL) {
        // The cold-start users visit for the final model.
        st->eval_mask = NULL;
        memset(rn->out, 0, sizeof(*rn->out) * rn->n_cold);
        job cj = { .users = rn->cold_users,
            .n            = rn->n_cold,
            .eval_visit   = 1,
            .cold         = 1,
            .round        = c->rounds,
            .out          = rn->out };
        (void)run_job(st, rn->ws, &cj);
        for (size_t i = 0; i < rn->n_cold; i++) {
            if (rn->out[i].status != DEV_EVALUATED) {
                return fail(err, err_cap, FR_EINTERNAL, "cold-start visit: %s",
                    st->first_err[0] ? st->first_err : "failed");
            }
        }
        fri_sim_cold_curve(st->cold, s->cold_start);
        s->has_cold_start = 1;
    }
    park_drain(rn);
    fri_agg_stop(st->agg, clock_now(st));
    emit(rn, c->rounds);

    // Summary.
    s->rounds           = c->rounds;
    s->rounds_abandoned = rn->n_abandoned;
    s->last             = rounds[c->rounds - 1];
    fri_sim_atk_summary(st->atk, s);
    fri_sim_poison_summary(st->poison, s);
    for (uint32_t r = 0; r < c->rounds; r++) {
        s->total_clients += rounds[r].clients;
        s->total_dropped += rounds[r].dropped;
        s->total_bytes_up += rounds[r].bytes_up;
        s->total_bytes_down += rounds[r].bytes_down;
        s->total_eval_bytes += rounds[r].eval_bytes;
        s->total_eval_seconds += rounds[r].eval_seconds;
        s->agg_seconds_per_round += rounds[r].agg_seconds / c->rounds;
        s->client_seconds_median
            += rounds[r].client_seconds_median / c->rounds;
        if (rounds[r].client_seconds_max > s->client_seconds_max) {
            s->client_seconds_max = rounds[r].client_seconds_max;
        }
        s->total_steps += rounds[r].steps;
        s->total_stale += rounds[r].stale;
        s->mean_staleness += (double) rounds[r].staleness_sum;
    }
    s->mean_staleness = s->total_clients > 0
                            ? s->mean_staleness / (double) s->total_clients
                            : 0.0;
    double t_rounds      = rn->t_rounds;
    s->total_seconds     = t_rounds;
    s->rounds_per_second = t_rounds > 0 ? c->rounds / t_rounds : 0;
    s->us_per_update
        = s->total_clients > 0 ? t_rounds * 1e6 / (double)s->total_clients : 0;
    if (s->total_clients > 0) {
        size_t up   = (size_t)(s->total_bytes_up / s->total_clients);
        size_t down = (size_t)(s->total_bytes_down / s->total_clients);
        fri_sim_raw_cost(
            up, down, &s->us_crypto_per_update, &s->us_memcpy_per_update);
    }
    s->n_clients = p->n_users;
    s->n_train   = p->train.ptr[p->n_users];
    s->n_test    = p->test.ptr[p->n_users];
    // Idle devices: their CSR row pointers plus the simulator's per-device
    // arrays (eligible list, evaluation list and mask).
    s->bytes_per_idle_client
        = (double)(fri_sim_pop_overhead(p)
              + (size_t)p->n_users * (2 * sizeof(uint32_t) + 1))
        / (double)(p->n_users ? p->n_users : 1);
    snprintf(s->data_name, sizeof(s->data_name), "%s", p->name);
    {
        size_t nb = p->n_items, nq = (size_t)p->n_items * c->k;
        float *bi = calloc(nb ? nb : 1, sizeof(float));
        float *Q  = calloc(nq ? nq : 1, sizeof(float));
        float  mu = 0;
        memset(rn->hash, 0, sizeof(rn->hash));
        if (bi != NULL && Q != NULL) {
            crypto_generichash_state h;
            fri_agg_model_copy(st->agg, &mu, bi, nb, Q, nq, NULL);
            crypto_generichash_init(&h, NULL, 0, 32);
            crypto_generichash_update(&h, (const uint8_t *)&mu, sizeof(mu));
            crypto_generichash_update(
                &h, (const uint8_t *)bi, sizeof(float) * nb);
            crypto_generichash_update(
                &h, (const uint8_t *)Q, sizeof(float) * nq);
            crypto_generichash_final(&h, rn->hash, 32);
        }
        free(bi);
        free(Q);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        s->peak_rss_kib = ru.ru_maxrss;
    }
    return FR_OK;
}

// One round: the seeded cohort checks in, the deadline closes the round,
// the evaluation users score it when it is an evaluated round.
static fr_err
runner_round(fri_sim_runner *rn, char *err, size_t err_cap)
{
    const fri_sim_config *c        = &rn->cc;
    sim_state            *st       = &rn->st;
    uint32_t             *eligible = rn->eligible;
    dev_out              *out      = rn->out;
    fri_sim_round        *rounds   = rn->rounds;
    const uint32_t        r        = rn->next;
    const size_t          cohort   = rn->cohort;
    fr_err                e;
    // Seeded cohort: partial Fisher-Yates over the eligible devices.
    for (size_t i = 0; i < cohort; i++) {
        size_t j = i + fri_rng_below(&rn->sel, (uint32_t)(rn->n_eligible - i));
        uint32_t t  = eligible[i];
        eligible[i] = eligible[j];
        eligible[j] = t;
    }
    st->n_reg = 0; // no round is running: no device registers now
    st->hook_round = r;
    if (st->matched != NULL && rn->grow_round > 0 && r == rn->grow_round) {
        // The operator adds the items; they enter after this round.
        char gerr[256];
        e = fri_agg_grow_items(st->agg, rn->p->n_items, gerr, sizeof(gerr));
        if (e != FR_OK) {
            return fail(err, err_cap, e, "--new-items: %s", gerr);
        }
    }
    int eval_prev = rn->in_cohort_eval && r > 1 && is_eval_round(c, r - 1);
    st->eval_mask = eval_prev ? rn->mask : NULL;
    job jb        = { .users = eligible, .n = cohort, .round = r, .out = out };
    if (rn->tree != NULL) {
        // This rank's members, against its edge serving the root's round.
        jb.users = rn->shard;
        jb.n     = fri_sim_tree_shard(rn->tree, eligible, cohort, rn->shard);
        e        = fri_sim_tree_open(rn->tree, r, clock_now(st), err, err_cap);
        if (e != FR_OK) {
            return e;
        }
    }
    fri_agg_metrics m0, m1;
    fri_agg_metrics_get(st->agg, &m0);
    fri_sim_atk_round_begin(st->atk, r,
        r == c->rounds || (rn->atk_every > 0 && r % rn->atk_every == 0));
    double t0    = wall_s();
    st->tick_cpu = 0.0;
    if (run_job(st, rn->ws, &jb) != FR_OK) {
        return fail(err, err_cap, FR_EINTERNAL, "%s",
            "secure aggregation round did not finish");
    }
    // Every device is done: the deadline arrives (a secure round may
    // need several phase deadlines to give up on vanished members).
    fri_agg_metrics_get(st->agg, &m1);
    for (int t = 0; t < 8
         && m1.rounds_completed + m1.rounds_abandoned
             == m0.rounds_completed + m0.rounds_abandoned;
         t++) {
        atomic_fetch_add(&st->clock_ms, rn->ac.round_deadline_ms + 1);
        agg_tick(st);
        fri_agg_metrics_get(st->agg, &m1);
    }
    // A tree: the root's round ends once every edge handed its sums up;
    // rank 0 reports every rank's devices (gjb).
    int outcome = 0;
    job gjb     = { .users = jb.users, .n = jb.n, .round = r, .out = out };
    if (rn->tree != NULL) {
        e = fri_sim_tree_close(rn->tree, r, clock_now(st), &outcome, err,
            err_cap);
        if (e == FR_OK) {
            e = fri_sim_tree_gather(rn->tree, eligible, cohort, out, jb.n,
                sizeof(dev_out), rn->g_users, rn->g_out, &gjb.n);
            gjb.users = rn->g_users;
            gjb.out   = rn->g_out;
        }
        if (e != FR_OK) {
            return err[0] ? e : fail(err, err_cap, e, "%s", "--mpi: gather");
        }
    }
    int closed    = rn->tree != NULL
                     || m1.rounds_completed + m1.rounds_abandoned
                            != m0.rounds_completed + m0.rounds_abandoned;
    int abandoned = rn->tree != NULL
                      ? outcome == 2
                      : m1.rounds_abandoned > m0.rounds_abandoned;
    double dt = wall_s() - t0;
    rn->t_rounds += dt;
    if (atomic_load(&st->hook_failed)) {
        // The round ran to its end (devices cannot be recalled), but its
        // results are not reported: the caller's hook asked to stop.
        return fail(err, err_cap, FR_EINTERNAL,
                    "a hook stopped the run in round %s",
                    st->hook_err);
    }
    fri_sim_round *rr = &rounds[r - 1];
    rr->round         = r;
    rr->seconds       = dt;
    collect_counts(&gjb, rr);
    if (rn->cpu_tmp != NULL) {
        collect_cpu(&gjb, st->tick_cpu, rn->cpu_tmp, rr);
    }
    fri_sim_atk_round_end(st->atk, rr);
    // A round the aggregator gave up ends its members' check-ins with
    // an error; that is reported below, not a simulator failure.
    if (rr->clients == 0 && st->first_err[0] != '\0' && !abandoned) {
        return fail(err, err_cap, FR_EINTERNAL, "%s", st->first_err);
    }
    if (!closed) {
        return fail(err, err_cap, FR_ESTATE, "%s",
            "the aggregator did not close the round");
    }
    if (abandoned) {
        // The cohort's updates are lost: say so (the model is the
        // previous round's).
        rn->n_abandoned++;
        rr->abandoned = 1;
        fprintf(stderr,
            "fedrec-sim: round %u abandoned by the aggregator; its "
            "updates were not applied\n",
            r);
    }
    if (eval_prev) {
        collect_eval(c, st->p, &gjb, rn->heavy, &rounds[r - 2]);
    }
    if (is_eval_round(c, r) && (!rn->in_cohort_eval || r == c->rounds)) {
        // The round's model, scored by the evaluation users' visits.
        st->eval_mask = rn->mask;
        job    ev     = { .users = rn->evals,
                   .n            = rn->n_evals,
                   .eval_visit   = 1,
                   .round        = r,
                   .out          = out };
        if (rn->tree != NULL) {
            // The edges fetch the root's model of this round.
            e = fri_sim_tree_open(rn->tree, r + 1, clock_now(st), err,
                err_cap);
            if (e != FR_OK) {
                return e;
            }
            ev.users = rn->shard;
            ev.n     = fri_sim_tree_shard(rn->tree, rn->evals, rn->n_evals,
                rn->shard);
        }
        double te     = wall_s();
        (void)run_job(st, rn->ws, &ev); // no phases: always completes
        rr->eval_seconds = wall_s() - te;
        job gev          = ev;
        if (rn->tree != NULL) {
            e = fri_sim_tree_gather(rn->tree, rn->evals, rn->n_evals, out,
                ev.n, sizeof(dev_out), rn->g_users, rn->g_out, &gev.n);
            if (e != FR_OK) {
                return fail(err, err_cap, e, "%s", "--mpi: gather");
            }
            gev.users = rn->g_users;
            gev.out   = rn->g_out;
        }
        collect_eval(c, st->p, &gev, rn->heavy, rr);
        if (r == c->rounds && gev.n > 0
            && (e = list_metrics(st, &gev, rn->s)) != FR_OK) {
            return fail(err, err_cap, e, "list metrics: %s", fr_strerror(e));
        }
        for (size_t i = 0; i < gev.n; i++) {
            // A round scored by fewer users than the others would
            // not be comparable: a failed visit stops the run.
            if (gev.out[i].status != DEV_EVALUATED) {
                return fail(err, err_cap, FR_EINTERNAL, "evaluation visit: %s",
                    st->first_err[0] ? st->first_err : "failed");
            }
        }
    }
    // A round is reported once its metrics are known: at once, or,
    // with evaluation inside the cohort, after the next round.
    int defer = rn->in_cohort_eval && is_eval_round(c, r) && r < c->rounds;
    emit(rn, defer ? r - 1 : r);
    return FR_OK;
}

// Buffered mode: the parked check-ins that will never report (end of the
// run) are closed.
static void
park_drain(fri_sim_runner *rn)
{
    sim_state *st = &rn->st;
    for (size_t i = 0; st->park != NULL && i < rn->n_queue; i++) {
        uint32_t u   = rn->queue[i];
        dev_out  o;
        job      one = {.users = &u, .n = 1, .out = &o};
        memset(&o, 0, sizeof(o));
        free(st->park[u].frame);
        st->park[u].frame = NULL;
        dev_close(st, &one, 0, &st->park[u], 0);
        rn->busy[u] = 0;
    }
    rn->n_queue = 0;
}

// Buffered mode, one tick: a seeded cohort-sized draw of the devices
// arrives (those still busy with an earlier check-in do not), checks in on
// the current version and fits in parallel; then, one at a time in arrival
// order, every report due now goes out (the aggregator steps whenever K
// are buffered), a slow device's report 1..slow_ticks ticks after it
// arrived. The evaluation users score the model as in rounds.
static fr_err
runner_tick(fri_sim_runner *rn, char *err, size_t err_cap)
{
    const fri_sim_config *c        = &rn->cc;
    sim_state            *st       = &rn->st;
    uint32_t             *eligible = rn->eligible;
    dev_out              *out      = rn->out;
    const uint32_t        r        = rn->next;
    fr_err                e;
    for (size_t i = 0; i < rn->cohort; i++) {
        size_t j = i + fri_rng_below(&rn->sel, (uint32_t)(rn->n_eligible - i));
        uint32_t t  = eligible[i];
        eligible[i] = eligible[j];
        eligible[j] = t;
    }
    size_t na = 0;
    for (size_t i = 0; i < rn->cohort; i++) {
        if (!rn->busy[eligible[i]]) {
            rn->arr[na++] = eligible[i];
        }
    }
    st->n_reg      = 0;
    st->hook_round = r;
    st->eval_mask  = NULL;
    job jb = {.users = rn->arr, .n = na, .round = r, .out = out};
    fri_agg_metrics m0, m1;
    fri_agg_metrics_get(st->agg, &m0);
    fri_sim_atk_round_begin(st->atk, r,
        r == c->rounds || (rn->atk_every > 0 && r % rn->atk_every == 0));
    double t0    = wall_s();
    st->tick_cpu = 0.0;
    (void) run_job(st, rn->ws, &jb);
    fri_sim_round *rr = &rn->rounds[r - 1];
    collect_counts(&jb, rr);
    double arr_agg = 0.0;
    for (size_t i = 0; i < na; i++) {
        uint32_t u = rn->arr[i];
        arr_agg += out[i].cpu_agg;
        if (st->park[u].frame == NULL) {
            continue;
        }
        // Slowness is a pure function of (seed, tick, device).
        fri_rng g;
        fri_rng_seed2(&g, c->seed ^ 0x510e510eull, ((uint64_t) r << 32) ^ u);
        uint32_t delay = c->slow > 0.0 && fri_rng_uniform(&g) < c->slow
                             ? 1 + fri_rng_below(&g, c->slow_ticks)
                             : 0;
        rn->busy[u]              = 1;
        rn->due[u]               = r + delay;
        rn->queue[rn->n_queue++] = u;
    }
    size_t nd = 0, keep = 0;
    for (size_t i = 0; i < rn->n_queue; i++) {
        uint32_t u = rn->queue[i];
        if (rn->due[u] > r) {
            rn->queue[keep++] = u;
            continue;
        }
        device_deliver(st, &rn->ws[0], u, r, &rn->dout[nd++]);
        rn->busy[u] = 0;
    }
    rn->n_queue = keep;
    job dj = {.users = NULL, .n = nd, .round = r, .out = rn->dout};
    collect_counts(&dj, rr);
    // The tick ends; sessions of devices gone for good expire.
    atomic_fetch_add(&st->clock_ms, rn->ac.round_deadline_ms);
    agg_tick(st);
    collect_cpu(&dj, st->tick_cpu + arr_agg, rn->cpu_tmp, rr);
    double dt = wall_s() - t0;
    rn->t_rounds += dt;
    fri_agg_metrics_get(st->agg, &m1);
    rr->round         = r;
    rr->seconds       = dt;
    rr->steps         = (uint32_t) (m1.rounds_completed - m0.rounds_completed);
    rr->stale         = (uint32_t) (m1.rejected[FRI_REJ_STALE] -
                                    m0.rejected[FRI_REJ_STALE]);
    rr->staleness_sum = m1.staleness_sum - m0.staleness_sum;
    rn->n_abandoned += (uint32_t) (m1.rounds_abandoned - m0.rounds_abandoned);
    fri_sim_atk_round_end(st->atk, rr);
    if (atomic_load(&st->hook_failed)) {
        return fail(err, err_cap, FR_EINTERNAL,
                    "a hook stopped the run in round %s", st->hook_err);
    }
    if (rr->clients == 0 && rr->stale == 0 && st->first_err[0] != '\0') {
        return fail(err, err_cap, FR_EINTERNAL, "%s", st->first_err);
    }
    if (is_eval_round(c, r)) {
        if (r == c->rounds) {
            park_drain(rn);
        }
        st->eval_mask = rn->mask;
        job    ev     = {.users      = rn->evals,
                         .n          = rn->n_evals,
                         .eval_visit = 1,
                         .round      = r,
                         .out        = out};
        double te     = wall_s();
        (void) run_job(st, rn->ws, &ev);
        rr->eval_seconds = wall_s() - te;
        collect_eval(c, st->p, &ev, rn->heavy, rr);
        if (r == c->rounds && (e = list_metrics(st, &ev, rn->s)) != FR_OK) {
            return fail(err, err_cap, e, "list metrics: %s", fr_strerror(e));
        }
        for (size_t i = 0; i < rn->n_evals; i++) {
            if (out[i].status != DEV_EVALUATED) {
                return fail(err, err_cap, FR_EINTERNAL, "evaluation visit: %s",
                    st->first_err[0] ? st->first_err : "failed");
            }
        }
    }
    emit(rn, r);
    return FR_OK;
}

// The aggregator's one update hook: every registered hook in order, with
// the device the update came from.
static void
dispatch_update(void *ctx, const uint8_t pk[FRI_AGG_KEYBYTES],
                const fri_agg_update *up)
{
    sim_state *st  = ctx;
    uint32_t   dev = UINT32_MAX;
    if (st->upd[HOOK_CALLER].fn != NULL) {
        pthread_mutex_lock(&st->reg_mtx);
        for (size_t i = 0; i < st->n_reg; i++) {
            if (memcmp(st->reg_pk + i * 32, pk, 32) == 0) {
                dev = st->reg_u[i];
                break;
            }
        }
        pthread_mutex_unlock(&st->reg_mtx);
    }
    for (int h = 0; h < N_HOOKS && !atomic_load(&st->hook_failed); h++) {
        if (st->upd[h].fn != NULL &&
            st->upd[h].fn(st->upd[h].ctx, st->hook_round, dev, pk, up) != 0) {
            hook_stop(st);
        }
    }
}

fr_err
fri_sim_runner_set_update_hook(fri_sim_runner *rn, fri_sim_update_hook fn,
                               void *ctx, char *err, size_t err_cap)
{
    sim_state *st = &rn->st;
    if (fn != NULL && rn->cc.priv.secagg) {
        return fail(err, err_cap, FR_EINVAL, "%s",
                    "under secure aggregation the aggregator sees no "
                    "single update (only masked vectors and their sum)");
    }
    if (fn != NULL && st->reg_pk == NULL) {
        st->reg_cap = rn->cohort;
        st->reg_pk = malloc(32 * (st->reg_cap ? st->reg_cap : 1));
        st->reg_u = malloc(sizeof(uint32_t) * (st->reg_cap ? st->reg_cap : 1));
        if (st->reg_pk == NULL || st->reg_u == NULL) {
            free(st->reg_pk);
            free(st->reg_u);
            st->reg_pk = NULL;
            st->reg_u = NULL;
            return fail(err, err_cap, FR_ENOMEM, "%s", "out of memory");
        }
    }
    // Between rounds: no update is being handled.
    st->upd[HOOK_CALLER].fn  = fn;
    st->upd[HOOK_CALLER].ctx = ctx;
    fri_agg_set_update_hook(st->agg, dispatch_update, st);
    return FR_OK;
}

// The aggregator's sum hook, on the thread closing the round.
static void
dispatch_sum(void *ctx, fri_agg_sum_view *v)
{
    sim_state *st = ctx;
    if (st->sum_fn == NULL || atomic_load(&st->hook_failed)) {
        return;
    }
    if (st->sum_fn(st->sum_ctx, st->hook_round, v) != 0) {
        hook_stop(st);
    }
}

// The aggregator's masked-vector hook (under its round lock): every
// registered hook in order.
static void
dispatch_masked(void *ctx, uint32_t index, const uint32_t *y, size_t dim)
{
    sim_state *st = ctx;
    for (int h = 0; h < N_HOOKS && !atomic_load(&st->hook_failed); h++) {
        if (st->msk[h].fn != NULL &&
            st->msk[h].fn(st->msk[h].ctx, st->hook_round, index, y, dim)
                != 0) {
            hook_stop(st);
        }
    }
}

fr_err
fri_sim_runner_set_masked_hook(fri_sim_runner *rn, fri_sim_masked_hook fn,
                               void *ctx, char *err, size_t err_cap)
{
    if (fn != NULL && !rn->cc.priv.secagg) {
        return fail(err, err_cap, FR_EINVAL, "%s",
                    "a masked-vector hook needs --secure-agg full|plus "
                    "(plain updates go to the update hook)");
    }
    // Between rounds: no masked vector is being received.
    rn->st.msk[HOOK_CALLER].fn  = fn;
    rn->st.msk[HOOK_CALLER].ctx = ctx;
    fri_agg_set_masked_hook(rn->st.agg, dispatch_masked, &rn->st);
    return FR_OK;
}

fr_err
fri_sim_runner_set_sum_hook(fri_sim_runner *rn, fri_sim_sum_hook fn,
                            void *ctx)
{
    // Between rounds: no round is closing.
    rn->st.sum_fn  = fn;
    rn->st.sum_ctx = ctx;
    fri_agg_set_sum_hook(rn->st.agg, fn != NULL ? dispatch_sum : NULL,
                         &rn->st);
    return FR_OK;
}

fr_err
fri_sim_runner_set_device_hook(fri_sim_runner *rn, fri_sim_device_hook fn,
                               void *ctx, char *err, size_t err_cap)
{
    if (fn != NULL && (rn->cc.priv.secagg || rn->ac.stats_latest)) {
        return fail(err, err_cap, FR_EINVAL, "%s",
                    "a device-update hook needs plain updates: not under "
                    "secure aggregation or latest statistics (give --algo "
                    "als or --stats-latest 0)");
    }
    if (fn != NULL && rn->cc.buffer > 0) {
        return fail(err, err_cap, FR_EINVAL, "%s",
                    "a device-update hook is not available in buffered mode "
                    "(devices hold their sealed report until their tick)");
    }
    // Between rounds: no device is running.
    rn->st.dev[HOOK_CALLER].fn  = fn;
    rn->st.dev[HOOK_CALLER].ctx = ctx;
    return FR_OK;
}

fr_err
fri_sim_runner_step(fri_sim_runner *rn, char *err, size_t err_cap)
{
    if (err_cap > 0) {
        err[0] = '\0';
    }
    if (rn->failed) {
        return fail(err, err_cap, FR_ESTATE, "%s",
            "an earlier round failed: the run cannot go on");
    }
    if (rn->finished) {
        return fail(err, err_cap, FR_ECLOSED, "%s", "every round has run");
    }
    fr_err e = rn->cc.buffer > 0 ? runner_tick(rn, err, err_cap)
                                 : runner_round(rn, err, err_cap);
    if (e == FR_OK) {
        rn->next++;
        if (rn->next > rn->cc.rounds) {
            e            = runner_finish(rn, err, err_cap);
            rn->finished = e == FR_OK;
        }
    }
    if (e != FR_OK) {
        rn->failed = 1;
        if (err_cap > 0 && err[0] == '\0') {
            snprintf(err, err_cap, "%s", fr_strerror(e));
        }
    }
    return e;
}

uint32_t
fri_sim_runner_rounds_run(const fri_sim_runner *rn)
{
    return rn->next - 1;
}

uint32_t
fri_sim_runner_rounds_reported(const fri_sim_runner *rn)
{
    return rn->emitted;
}

int
fri_sim_runner_finished(const fri_sim_runner *rn)
{
    return rn->finished;
}

const fri_sim_config *
fri_sim_runner_config(const fri_sim_runner *rn)
{
    return &rn->cc;
}

const uint8_t *
fri_sim_runner_hash(const fri_sim_runner *rn)
{
    return rn->finished ? rn->hash : NULL;
}

struct fri_agg *
fri_sim_runner_agg(const fri_sim_runner *rn)
{
    return rn->st.agg;
}

void
fri_sim_runner_destroy(fri_sim_runner *rn)
{
    if (rn == NULL) {
        return;
    }
    sim_state *st = &rn->st;
    park_drain(rn);
    fri_sim_server_stop(st->srv);
    if (rn->ws != NULL) {
        for (uint32_t i = 0; i < rn->cc.threads; i++) {
            free(rn->ws[i].req);
            free(rn->ws[i].reply);
        }
        free(rn->ws);
    }
    fri_sim_atk_destroy(st->atk);
    fri_sim_poison_destroy(st->poison);
    fri_sim_cold_destroy(st->cold);
    free(st->live);
    free(st->park);
    free(rn->busy);
    free(rn->due);
    free(rn->queue);
    free(rn->arr);
    free(rn->dout);
    if (st->last != NULL) {
        for (uint32_t u = 0; u < rn->p->n_users; u++) {
            fri_stats_last_free(st->last[u]);
        }
        free(st->last);
    }
    free(st->cutoff);
    fri_sim_tree_destroy(rn->tree); // its uplink uses the edge
    free(rn->shard);
    free(rn->g_users);
    free(rn->g_out);
    fri_agg_destroy(st->agg);
    fr_model_cache_destroy(st->cache);
    free(rn->eligible);
    free(rn->evals);
    free(rn->heavy);
    free(st->matched);
    free(rn->mask);
    free(rn->out);
    free(rn->cpu_tmp);
    if (rn->mtx_ok) {
        pthread_mutex_destroy(&st->err_mtx);
        pthread_mutex_destroy(&st->reg_mtx);
    }
    free(st->reg_pk);
    free(st->reg_u);
    free(rn);
}

fr_err
fri_sim_run(const fri_sim_config *c, const fri_sim_pop *p,
    fri_sim_round *rounds, fri_sim_summary *s, uint8_t model_hash[32],
    fri_sim_round_fn cb, void *cb_ctx, char *err, size_t err_cap)
{
    fri_sim_runner *rn = NULL;
    fr_err          e  = fri_sim_runner_create(
                  &rn, c, p, rounds, s, cb, cb_ctx, err, err_cap);
    while (e == FR_OK && !rn->finished) {
        e = fri_sim_runner_step(rn, err, err_cap);
    }
    if (e == FR_OK && model_hash != NULL) {
        memcpy(model_hash, rn->hash, 32);
    }
    fri_sim_runner_destroy(rn);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        s->peak_rss_kib = ru.ru_maxrss;
    }
    return e;
}

// ---- reference and raw costs ---------------------------------------------

// Test triplets of the population (n = test ratings); NULL on ENOMEM.
static fri_triplet *
test_triplets(const fri_sim_pop *p, size_t *n_out)
{
    size_t       n = p->test.ptr[p->n_users];
    fri_triplet *t = malloc(sizeof(*t) * (n ? n : 1));
    if (t == NULL) {
        return NULL;
    }
    for (uint32_t u = 0; u < p->n_users; u++) {
        for (size_t j = p->test.ptr[u]; j < p->test.ptr[u + 1]; j++) {
            t[j].user = u;
            t[j].item = p->test.idx[j];
            t[j].rating = p->test.val[j];
            t[j].ts = 0;
        }
    }
    *n_out = n;
    return t;
}

// Explicit references: fedrec-train's default (BPMF, its defaults: the
// printed gap is against it), centralized ALS with the run's settings and
// VBMF (defaults; with --algo vbmf the run's k, init_std and rounds - 1
// sweeps, i.e. exactly what the federated run reproduces).
static fr_err
explicit_reference(const fri_sim_config *c, const fri_sim_pop *p,
                   const fri_train_config *tc, fri_sim_summary *s)
{
    size_t       n = 0;
    fri_triplet *t = test_triplets(p, &n);
    float       *pred = malloc(sizeof(float) * (n ? n : 1));
    float       *truth = malloc(sizeof(float) * (n ? n : 1));
    fri_mf_model *m = NULL;
    fr_err        e = FR_OK;
    if (t == NULL || pred == NULL || truth == NULL) {
        e = FR_ENOMEM;
    }
    for (size_t j = 0; e == FR_OK && j < n; j++) {
        truth[j] = t[j].rating;
    }
    fri_rating_metrics rm;
    if (e == FR_OK) {
        e = fri_train_als(&m, &p->train, NULL, tc, NULL, NULL);
    }
    if (e == FR_OK) {
        e = fri_eval_rating(&rm, m, t, n, p->min_rating, p->max_rating);
        s->ref_als_rmse = rm.rmse;
    }
    fri_mf_destroy(m);
    m = NULL;
    fri_vbmf_config vc;
    fri_vbmf_config_init(&vc);
    vc.seed  = c->seed;
    vc.svdpp = c->svdpp; // as the devices fit their user vectors
    if (c->algo == FRI_SIM_VBMF) {
        vc.k = c->k;
        vc.init_std = c->init_std;
        vc.sweeps = c->rounds > 1 ? c->rounds - 1 : 1;
    }
    if (e == FR_OK) {
        e = fri_train_vbmf(&m, &p->train, &vc, NULL, NULL);
    }
    if (e == FR_OK) {
        e = fri_eval_rating(&rm, m, t, n, p->min_rating, p->max_rating);
        s->ref_vbmf_rmse = rm.rmse;
    }
    fri_mf_destroy(m);
    m = NULL;
    fri_bpmf_config bc;
    fri_bpmf_config_init(&bc);
    bc.seed = c->seed;
    bc.clamp_lo = p->min_rating;
    bc.clamp_hi = p->max_rating;
    double t0 = wall_s();
    if (e == FR_OK) {
        e = fri_train_bpmf(&m, pred, t, n, &p->train, &bc, NULL, NULL);
    }
    s->ref_seconds = wall_s() - t0;
    if (e == FR_OK) {
        e = fri_rmse_mae(&s->ref_rmse, &s->ref_mae, pred, truth, n);
        s->ref_name = "bpmf";
    }
    fri_mf_destroy(m);
    free(t);
    free(pred);
    free(truth);
    return e;
}

// fri_eval_ranking of m, with the last-item term where the devices add it
// (c->transition > 0 and the data has timestamps).
static fr_err
eval_ranking_as_devices(fri_rank_metrics *rm, const fri_mf_model *m,
                        const fri_sim_config *c, const fri_sim_pop *p,
                        const fri_rank_config *rc)
{
    fri_last_item_scorer ls;
    fri_scorer           s, base = fri_scorer_of_mf(m);
    fr_err e = fri_last_item_scorer_init(&ls, &s, &base, &p->train,
                                         p->train_ts, c->transition);
    if (e == FR_OK) {
        e = fri_eval_ranking_with(rm, &s, &p->train, &p->test, rc);
    }
    fri_last_item_scorer_free(&ls);
    return e;
}

fr_err
fri_sim_reference(const fri_sim_config *c, const fri_sim_pop *p,
                  fri_sim_summary *s)
{
    fri_train_config tc;
    fri_mf_model    *m = NULL;
    fr_err           e;
    fri_train_config_init(&tc, FRI_TRAIN_ALS);
    tc.k = c->k;
    tc.epochs = c->rounds;
    tc.reg = c->reg;
    tc.reg_bias = c->reg_bias;
    tc.weighted = c->weighted;
    tc.init_std = c->init_std;
    // Federated rounds have no bias-only warm-up.
    tc.bias_epochs = 0;
    tc.alpha = c->alpha;
    tc.seed = c->seed;
    tc.clamp_lo = p->min_rating;
    tc.clamp_hi = p->max_rating;
    tc.patience = 0;
    if (!c->implicit) {
        e = explicit_reference(c, p, &tc, s);
        if (e == FR_OK) {
            s->has_reference = 1;
        }
        return e;
    }
    double t0 = wall_s();
    tc.implicit = 1;
    tc.recency = c->recency; // as the devices fit their user vectors
    e = fri_train_ials(&m, &p->train, &tc, NULL, NULL);
    s->ref_seconds = wall_s() - t0;
    if (e != FR_OK) {
        return e;
    }
    fri_rank_config  rc;
    fri_rank_metrics rm;
    fri_rank_config_init(&rc);
    rc.k = 10;
    rc.protocol = FRI_RANK_FULL;
    if (c->leave_last || c->negatives_set) {
        rc.protocol = FRI_RANK_SAMPLED; // as the devices evaluate
        rc.n_neg = c->negatives_set ? c->negatives : 99;
    }
    e = eval_ranking_as_devices(&rm, m, c, p, &rc);
    if (e == FR_OK) {
        s->ref_hr10 = rm.hr;
        s->ref_ndcg10 = rm.ndcg;
        s->ref_name = "ials";
    }
    fri_mf_destroy(m);
    if (e == FR_OK) {
        s->has_reference = 1;
    }
    return e;
}

static int
cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

void
fri_sim_raw_cost(size_t n_up, size_t n_down, double *us_crypto,
                 double *us_memcpy)
{
    size_t   n = n_up > n_down ? n_up : n_down;
    uint8_t *a = malloc(n + crypto_aead_xchacha20poly1305_ietf_ABYTES);
    uint8_t *b = malloc(n + crypto_aead_xchacha20poly1305_ietf_ABYTES);
    uint8_t  key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    uint8_t  nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    double   tc[5], tm[5];
    *us_crypto = *us_memcpy = 0;
    if (a == NULL || b == NULL || n == 0) {
        free(a);
        free(b);
        return;
    }
    randombytes_buf(key, sizeof(key));
    randombytes_buf(nonce, sizeof(nonce));
    randombytes_buf(a, n);
    const size_t sizes[2] = {n_up, n_down};
    for (int rep = 0; rep < 5; rep++) {
        double t0 = wall_s();
        for (int d = 0; d < 2; d++) {
            unsigned long long clen = 0, mlen = 0;
            crypto_aead_xchacha20poly1305_ietf_encrypt(
                b, &clen, a, sizes[d], NULL, 0, NULL, nonce, key);
            if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                    a, &mlen, NULL, b, clen, NULL, 0, nonce, key) != 0) {
                break;
            }
        }
        double t1 = wall_s();
        for (int d = 0; d < 2; d++) {
            memcpy(b, a, sizes[d]);
            memcpy(a, b, sizes[d]);
        }
        double t2 = wall_s();
        tc[rep] = (t1 - t0) * 1e6;
        tm[rep] = (t2 - t1) * 1e6;
    }
    qsort(tc, 5, sizeof(double), cmp_dbl);
    qsort(tm, 5, sizeof(double), cmp_dbl);
    *us_crypto = tc[2];
    *us_memcpy = tm[2];
    sodium_memzero(key, sizeof(key));
    free(a);
    free(b);
}
