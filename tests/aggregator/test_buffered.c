// Asynchronous buffered mode (cfg.buffer = K, cfg.max_staleness = S):
// the model steps exactly when K reports are buffered, reports older than
// S versions are refused with FR_ESTALE and change nothing, one device
// gets at most one report into a buffer, and latest statistics reach the
// running sum synchronous rounds reach with the same reports.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "linalg.h"
#include "state_dir.h"

#define K 2
#define D (K + 1)
#define NI 6
#define P ((D * (D + 1)) / 2)

static void
key(uint8_t pk[FRI_AGG_KEYBYTES], uint32_t i)
{
    for (int b = 0; b < FRI_AGG_KEYBYTES; b++) {
        pk[b] = (uint8_t)((i * 2654435761u) >> ((b % 4) * 8)) ^ (uint8_t)b;
    }
    pk[31] = (uint8_t)i;
    pk[30] = (uint8_t)(i >> 8);
}

static void
buf_cfg(fri_agg_config *c, uint32_t buffer, uint32_t stale)
{
    fri_agg_config_init(c);
    c->n_items           = NI;
    c->k                 = K;
    c->buffer            = buffer;
    c->max_staleness     = stale;
    c->min_clients       = 1;
    c->round_deadline_ms = 1000;
}

static fri_agg *
make(const fri_agg_config *c, uint64_t now)
{
    fri_agg *a = NULL;
    char     err[256];
    fr_err   rv = fri_agg_create(&a, c, now, err, sizeof(err));
    cr_assert_eq(rv, FR_OK, "create: %s: %s", fr_errname(rv), err);
    return a;
}

// Device u's explicit-ALS contribution computed against mu: user vector
// x = [p_u; 1] (bias 0), ratings on items u % NI and (u + 2) % NI.
typedef struct dev {
    uint32_t       items[2];
    float          gram[P];
    float          rows[2 * D];
    fri_agg_update u;
} dev;

static void
make_dev(dev *x, uint32_t u, uint64_t round, float mu)
{
    memset(x, 0, sizeof(*x));
    float xu[D] = { 0.3f + 0.1f * (float)u, 0.5f - 0.05f * (float)u, 1.0f };
    float r[2]  = { 1.0f + (float)(u % 5), 5.0f - (float)(u % 3) };
    for (int a = 0; a < D; a++) {
        for (int b = a; b < D; b++) {
            x->gram[fri_packed_index(D, a, b)] = xu[a] * xu[b];
        }
    }
    uint32_t i0 = u % NI, i1 = (u + 2) % NI;
    int      sw = i0 > i1;
    x->items[0] = sw ? i1 : i0;
    x->items[1] = sw ? i0 : i1;
    for (int j = 0; j < 2; j++) {
        float rating = r[sw ? 1 - j : j];
        for (int c = 0; c < D; c++) {
            x->rows[j * D + c] = xu[c] * (rating - mu);
        }
    }
    x->u.round       = round;
    x->u.n           = 2;
    x->u.items       = x->items;
    x->u.gram        = x->gram;
    x->u.gram_len    = P;
    x->u.rows        = x->rows;
    x->u.rows_len    = 2 * D;
    x->u.sum_ratings = r[0] + r[1];
    x->u.count       = 2;
    x->u.weight      = 2;
}

static uint64_t
version_of(fri_agg *a)
{
    uint64_t v = 0;
    fri_agg_model_copy(a, NULL, NULL, 0, NULL, 0, &v);
    return v;
}

static float
mu_of(fri_agg *a)
{
    float mu = 0.0f;
    fri_agg_model_copy(a, &mu, NULL, 0, NULL, 0, NULL);
    return mu;
}

// Checks device u in; returns the task's round (asserts a task).
static uint64_t
task_of(fri_agg *a, uint64_t now, uint32_t u)
{
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    key(pk, u);
    cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
    cr_assert(t.has_task, "device %u got no task", u);
    return t.round;
}

static fr_err
report(fri_agg *a, uint64_t now, uint32_t u, uint64_t round, float mu)
{
    uint8_t pk[FRI_AGG_KEYBYTES];
    dev     x;
    key(pk, u);
    make_dev(&x, u, round, mu);
    return fri_agg_submit(a, now, pk, &x.u);
}

Test(agg_buffered, config_refusals)
{
    fri_agg_config c;
    char           err[256];
    buf_cfg(&c, 4, 2);
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_OK, "%s", err);
    c.secagg            = FRI_AGG_SECAGG_FULL;
    c.clients_per_round = 4;
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "secure-agg off") != NULL, "%s", err);
    buf_cfg(&c, 4, 2);
    c.clients_per_round = 4;
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "no cohort") != NULL, "%s", err);
    buf_cfg(&c, 0, 2);
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "max-staleness needs buffer") != NULL, "%s", err);
    buf_cfg(&c, 4, FRI_AGG_MAX_STALENESS + 1);
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL);
    buf_cfg(&c, 2, 0);
    c.min_clients = 3;
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL);
}

// Any number of devices get a task for the current version (no cohort
// cap); the model steps on the K-th report, not before, not after.
Test(agg_buffered, steps_exactly_when_k_reports_are_in)
{
    fri_agg_config c;
    buf_cfg(&c, 3, 1);
    c.algo       = FRI_AGG_GRAD;
    c.server_opt = FRI_AGG_OPT_SGD;
    fri_agg *a   = make(&c, 0);
    uint64_t r1  = 0;
    for (uint32_t u = 0; u < 8; u++) {
        uint64_t r = task_of(a, 0, u);
        cr_assert(u == 0 || r == r1);
        r1 = r;
    }
    cr_assert_eq(version_of(a), 0);
    cr_assert_eq(report(a, 1, 0, r1, 0.0f), FR_OK);
    cr_assert_eq(report(a, 1, 1, r1, 0.0f), FR_OK);
    cr_assert_eq(version_of(a), 0, "stepped before K reports");
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.reported, 2);
    cr_assert_eq(m.rounds_completed, 0);
    cr_assert_eq(report(a, 1, 2, r1, 0.0f), FR_OK);
    cr_assert_eq(version_of(a), 1, "no step on the K-th report");
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.rounds_completed, 1);
    cr_assert_eq(m.reported, 0);
    cr_assert_eq(m.round, r1 + 1);
    // Tasks of version r1 still count (staleness 1 <= S), weighted.
    cr_assert_eq(report(a, 2, 3, r1, 0.0f), FR_OK);
    cr_assert_eq(report(a, 2, 4, r1, 0.0f), FR_OK);
    cr_assert_eq(version_of(a), 1);
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.staleness_sum, 2);
    cr_assert_eq(report(a, 2, 5, r1, 0.0f), FR_OK);
    cr_assert_eq(version_of(a), 2);
    fri_agg_destroy(a);
}

// A report computed on a model more than S versions old is refused with
// FR_ESTALE, counted, and leaves model and buffer as they were.
Test(agg_buffered, stale_report_refused_and_changes_nothing)
{
    fri_agg_config c;
    buf_cfg(&c, 2, 1);
    c.algo       = FRI_AGG_GRAD;
    c.server_opt = FRI_AGG_OPT_SGD;
    fri_agg *a   = make(&c, 0);
    uint64_t old = task_of(a, 0, 100); // device 100: a slow one
    for (uint32_t step = 0; step < 2; step++) {
        uint64_t r = task_of(a, 0, 2 * step);
        cr_assert_eq(task_of(a, 0, 2 * step + 1), r);
        cr_assert_eq(report(a, 1, 2 * step, r, 0.0f), FR_OK);
        cr_assert_eq(report(a, 1, 2 * step + 1, r, 0.0f), FR_OK);
    }
    cr_assert_eq(version_of(a), 2);
    // One report in the open buffer, then the stale one.
    uint64_t r = task_of(a, 0, 10);
    cr_assert_eq(report(a, 2, 10, r, 0.0f), FR_OK);
    float    mu0, bi0[NI], Q0[NI * K], mu1, bi1[NI], Q1[NI * K];
    uint64_t v0, v1;
    fri_agg_model_copy(a, &mu0, bi0, NI, Q0, NI * K, &v0);
    fri_agg_metrics m0, m1;
    fri_agg_metrics_get(a, &m0);
    cr_assert_eq(report(a, 3, 100, old, 0.0f), FR_ESTALE);
    fri_agg_model_copy(a, &mu1, bi1, NI, Q1, NI * K, &v1);
    fri_agg_metrics_get(a, &m1);
    cr_assert_eq(v1, v0);
    cr_assert_eq(memcmp(Q0, Q1, sizeof(Q0)), 0);
    cr_assert_eq(memcmp(bi0, bi1, sizeof(bi0)), 0);
    cr_assert_eq(m1.reported, m0.reported, "the stale report was buffered");
    cr_assert_eq(m1.updates_accepted, m0.updates_accepted);
    cr_assert_eq(m1.rejected[FRI_REJ_STALE], m0.rejected[FRI_REJ_STALE] + 1);
    cr_assert_str_eq(fri_agg_reject_name(FRI_REJ_STALE), "stale");
    // The device simply retries on the current model.
    uint64_t rn = task_of(a, 3, 100);
    cr_assert_eq(rn, r);
    cr_assert_eq(report(a, 3, 100, rn, 0.0f), FR_OK);
    cr_assert_eq(version_of(a), 3);
    fri_agg_destroy(a);
}

// A stale report is refused before it is validated or summed: a flood
// of them (even malformed ones) costs a lookup each and changes nothing.
Test(agg_buffered, stale_refused_before_validation)
{
    fri_agg_config c;
    buf_cfg(&c, 1, 0);
    c.algo       = FRI_AGG_GRAD;
    c.server_opt = FRI_AGG_OPT_SGD;
    fri_agg *a   = make(&c, 0);
    uint64_t old = task_of(a, 0, 1);
    cr_assert_eq(task_of(a, 0, 2), old);
    cr_assert_eq(report(a, 1, 2, old, 0.0f), FR_OK); // steps (K = 1)
    cr_assert_eq(version_of(a), 1);
    uint8_t pk[FRI_AGG_KEYBYTES];
    dev     x;
    key(pk, 1);
    make_dev(&x, 1, old, 0.0f);
    x.u.rows_len = 1; // malformed: validation would say FR_EPROTO
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(fri_agg_submit(a, 2, pk, &x.u), FR_ESTALE);
    }
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.rejected[FRI_REJ_STALE], 1000);
    cr_assert_eq(m.rejected[FRI_REJ_MALFORMED], 0);
    cr_assert_eq(m.reported, 0);
    cr_assert_eq(version_of(a), 1);
    fri_agg_destroy(a);
}

// One device cannot get a second report into a buffer: a resend is a
// duplicate and a new check-in gets no task until the next version.
Test(agg_buffered, one_device_cannot_fill_a_buffer)
{
    fri_agg_config c;
    buf_cfg(&c, 2, 3);
    c.algo       = FRI_AGG_GRAD;
    c.server_opt = FRI_AGG_OPT_SGD;
    fri_agg *a   = make(&c, 0);
    uint64_t r   = task_of(a, 0, 7);
    cr_assert_eq(report(a, 1, 7, r, 0.0f), FR_OK);
    cr_assert_eq(report(a, 1, 7, r, 0.0f), FR_EDUP);
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    key(pk, 7);
    cr_assert_eq(fri_agg_checkin(a, 2, pk, &t), FR_OK);
    cr_assert_eq(t.has_task, 0, "a second task in the same buffer");
    cr_assert_gt(t.retry_after_ms, 0);
    // Nor by claiming a round it was not tasked for.
    cr_assert_neq(report(a, 2, 7, r + 1, 0.0f), FR_OK);
    cr_assert_eq(version_of(a), 0, "one device stepped the model");
    // Nor for a round never issued (0 is no round; the future neither).
    cr_assert_eq(report(a, 2, 7, 0, 0.0f), FR_ESTATE);
    cr_assert_eq(report(a, 2, 7, r + 5, 0.0f), FR_ESTATE);
    // A device that never checked in cannot report at all.
    cr_assert_eq(report(a, 2, 8, r, 0.0f), FR_EDENIED);
    cr_assert_eq(version_of(a), 0);
    cr_assert_eq(task_of(a, 2, 9), r);
    cr_assert_eq(report(a, 2, 9, r, 0.0f), FR_OK);
    cr_assert_eq(version_of(a), 1);
    // Next version: device 7 takes part again.
    cr_assert_eq(task_of(a, 3, 7), r + 1);
    fri_agg_destroy(a);
}

// At the deadline a short buffer steps when min_clients allow; with
// fewer reports it stays open (its reports are not dropped).
Test(agg_buffered, deadline_steps_short_buffer_or_keeps_it)
{
    fri_agg_config c;
    buf_cfg(&c, 4, 1);
    c.algo        = FRI_AGG_GRAD;
    c.server_opt  = FRI_AGG_OPT_SGD;
    c.min_clients = 2;
    fri_agg *a    = make(&c, 0);
    uint64_t r    = task_of(a, 0, 1);
    cr_assert_eq(report(a, 10, 1, r, 0.0f), FR_OK);
    fri_agg_tick(a, 5000);
    cr_assert_eq(version_of(a), 0);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.reported, 1, "the deadline dropped a buffered report");
    cr_assert_eq(m.rounds_abandoned, 0);
    cr_assert_eq(task_of(a, 5001, 2), r);
    cr_assert_eq(report(a, 5002, 2, r, 0.0f), FR_OK);
    fri_agg_tick(a, 12000);
    cr_assert_eq(version_of(a), 1);
    fri_agg_destroy(a);
}

// Latest statistics: the same devices' contributions, each computed
// against the mu of the model its task named, reach the same running sum
// (hence the same solved model) in buffered mode, where half of them
// arrive one version late and are re-centred on the current mu, as in
// synchronous rounds where all of them arrive together.
Test(agg_buffered, latest_statistics_match_synchronous_rounds)
{
    enum { N = 4 };
    fri_agg_config c;
    // Synchronous: census round, then one round with everyone.
    buf_cfg(&c, 0, 0);
    c.clients_per_round = N;
    c.min_clients       = N;
    c.stats_latest      = 1;
    fri_agg *s          = make(&c, 0);
    for (int round = 0; round < 2; round++) {
        uint64_t r  = task_of(s, 0, 0);
        float    mu = mu_of(s);
        for (uint32_t u = 1; u < N; u++) {
            cr_assert_eq(task_of(s, 0, u), r);
        }
        for (uint32_t u = 0; u < N; u++) {
            cr_assert_eq(report(s, 1, u, r, mu), FR_OK);
        }
        cr_assert_eq(version_of(s), (uint64_t)round + 1);
    }
    // Buffered, K = 2: devices 2 and 3 make the census (so the census mu
    // is theirs); then everyone checks in on version 1, devices 0 and 1
    // step the model (mu moves to theirs) and 2 and 3 arrive one version
    // late, computed against the version-1 mu.
    buf_cfg(&c, 2, 2);
    c.stats_latest = 1;
    fri_agg *b     = make(&c, 0);
    uint64_t r0    = task_of(b, 0, 2);
    cr_assert_eq(task_of(b, 0, 3), r0);
    cr_assert_eq(report(b, 1, 2, r0, mu_of(b)), FR_OK);
    cr_assert_eq(report(b, 1, 3, r0, mu_of(b)), FR_OK);
    cr_assert_eq(version_of(b), 1);
    float    mu1 = mu_of(b);
    uint64_t r1  = task_of(b, 2, 0);
    for (uint32_t u = 1; u < N; u++) {
        cr_assert_eq(task_of(b, 2, u), r1);
    }
    cr_assert_eq(report(b, 3, 0, r1, mu1), FR_OK);
    cr_assert_eq(report(b, 3, 1, r1, mu1), FR_OK);
    cr_assert_eq(version_of(b), 2);
    cr_assert(fabsf(mu_of(b) - mu1) > 0.1f, "mu did not move (%g, %g)",
        (double)mu_of(b), (double)mu1);
    cr_assert_eq(report(b, 4, 2, r1, mu1), FR_OK);
    cr_assert_eq(report(b, 4, 3, r1, mu1), FR_OK);
    cr_assert_eq(version_of(b), 3);

    float mus, bis[NI], Qs[NI * K], mub, bib[NI], Qb[NI * K];
    fri_agg_model_copy(s, &mus, bis, NI, Qs, NI * K, NULL);
    fri_agg_model_copy(b, &mub, bib, NI, Qb, NI * K, NULL);
    cr_assert_float_eq(mub, mus, 1e-5f);
    for (int i = 0; i < NI; i++) {
        cr_assert_float_eq(bib[i], bis[i], 1e-4f, "b[%d] %g vs %g", i,
            (double)bib[i], (double)bis[i]);
        for (int f = 0; f < K; f++) {
            cr_assert_float_eq(Qb[i * K + f], Qs[i * K + f], 1e-4f,
                "Q[%d][%d] %g vs %g", i, f, (double)Qb[i * K + f],
                (double)Qs[i * K + f]);
        }
    }
    fri_agg_destroy(s);
    fri_agg_destroy(b);
}

// Reports computed on the census model were sent whole and not recorded
// by the devices: outside the census buffer they would be counted again.
Test(agg_buffered, census_reports_only_in_the_census_buffer)
{
    fri_agg_config c;
    buf_cfg(&c, 2, 3);
    c.stats_latest = 1;
    fri_agg *a     = make(&c, 0);
    uint64_t r0    = task_of(a, 0, 0);
    cr_assert_eq(task_of(a, 0, 1), r0);
    cr_assert_eq(task_of(a, 0, 2), r0);
    cr_assert_eq(report(a, 1, 0, r0, 0.0f), FR_OK);
    cr_assert_eq(report(a, 1, 1, r0, 0.0f), FR_OK);
    cr_assert_eq(version_of(a), 1);
    cr_assert_eq(report(a, 2, 2, r0, 0.0f), FR_ESTALE);
    fri_agg_destroy(a);
}

// A restart keeps the open buffer: every acknowledged report was
// journaled before its ACK, and the restart puts the reports the last
// checkpoint lacks back into the buffer (a torn record at the journal's
// end, never acknowledged, is dropped). Nothing is lost or counted twice:
// a resend is a duplicate, a task issued before the restart is refused,
// and the model after the next step is the model of a run without the
// restart.
static void
restart_run(int crash, float *mu, float *bi, float *Q)
{
    char dir[64];
    state_dir_make(dir, sizeof(dir), "/tmp/fr-buffered-XXXXXX");
    fri_agg_config c;
    buf_cfg(&c, 3, 2);
    c.stats_latest = 1;
    c.state_dir    = dir;
    fri_agg *a     = make(&c, 0);
    uint64_t r0    = task_of(a, 0, 0);
    for (uint32_t u = 1; u < 3; u++) {
        cr_assert_eq(task_of(a, 0, u), r0);
    }
    for (uint32_t u = 0; u < 3; u++) {
        cr_assert_eq(report(a, 1, u, r0, 0.0f), FR_OK);
    }
    cr_assert_eq(version_of(a), 1); // the census step, checkpointed
    float    mu1 = mu_of(a);
    uint64_t r1  = task_of(a, 2, 3);
    for (uint32_t u = 4; u < 6; u++) {
        cr_assert_eq(task_of(a, 2, u), r1);
    }
    cr_assert_eq(report(a, 3, 3, r1, mu1), FR_OK);
    cr_assert_eq(report(a, 3, 4, r1, mu1), FR_OK);
    if (crash) {
        fri_agg_destroy(a); // a crash with two reports acknowledged
        char path[128];
        snprintf(path, sizeof(path), "%s/buffer.journal", dir);
        FILE *f = fopen(path, "ab");
        cr_assert_not_null(f);
        fwrite("FRBJ\x40\0\0\0torn", 1, 12, f); // a torn third record
        fclose(f);
        a = make(&c, 10);
        cr_assert_eq(version_of(a), 1);
        fri_agg_metrics m;
        fri_agg_metrics_get(a, &m);
        cr_assert_eq(m.reported, 2, "the acknowledged reports were lost");
        // Resends are duplicates, the old task of device 5 is refused.
        cr_assert_eq(report(a, 11, 3, r1, mu1), FR_EDUP);
        cr_assert_neq(report(a, 11, 5, r1, mu1), FR_OK);
        fri_agg_metrics_get(a, &m);
        cr_assert_eq(m.reported, 2);
        cr_assert_eq(m.updates_accepted, 0);
        uint64_t r = task_of(a, 12, 5);
        cr_assert_eq(report(a, 13, 5, r, mu_of(a)), FR_OK);
    } else {
        cr_assert_eq(report(a, 13, 5, r1, mu1), FR_OK);
    }
    cr_assert_eq(version_of(a), 2);
    fri_agg_model_copy(a, mu, bi, NI, Q, NI * K, NULL);
    fri_agg_destroy(a);
    if (crash) {
        // The step emptied the journal: a second restart replays nothing.
        a = make(&c, 20);
        fri_agg_metrics m;
        fri_agg_metrics_get(a, &m);
        cr_assert_eq(m.reported, 0);
        cr_assert_eq(version_of(a), 2);
        fri_agg_destroy(a);
    }
    state_dir_remove(dir);
}

Test(agg_buffered, restart_keeps_the_buffer_and_counts_nothing_twice)
{
    float mu0, bi0[NI], Q0[NI * K], mu1, bi1[NI], Q1[NI * K];
    restart_run(0, &mu0, bi0, Q0);
    restart_run(1, &mu1, bi1, Q1);
    cr_assert_float_eq(mu1, mu0, 1e-6f);
    for (int i = 0; i < NI; i++) {
        cr_assert_float_eq(bi1[i], bi0[i], 1e-5f);
        for (int f = 0; f < K; f++) {
            cr_assert_float_eq(Q1[i * K + f], Q0[i * K + f], 1e-5f);
        }
    }
}

// A damaged record (a flipped bit: its checksum fails) ends the replay:
// it and what follows are cut off, never summed.
Test(agg_buffered, damaged_journal_record_is_not_replayed)
{
    char dir[64];
    state_dir_make(dir, sizeof(dir), "/tmp/fr-buffered-XXXXXX");
    fri_agg_config c;
    buf_cfg(&c, 3, 2);
    c.algo       = FRI_AGG_GRAD;
    c.server_opt = FRI_AGG_OPT_SGD;
    c.state_dir  = dir;
    fri_agg *a   = make(&c, 0);
    uint64_t r   = task_of(a, 0, 1);
    cr_assert_eq(task_of(a, 0, 2), r);
    cr_assert_eq(report(a, 1, 1, r, 0.0f), FR_OK);
    cr_assert_eq(report(a, 1, 2, r, 0.0f), FR_OK);
    fri_agg_destroy(a);
    a = make(&c, 5);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.reported, 2);
    fri_agg_destroy(a);
    char path[128];
    snprintf(path, sizeof(path), "%s/buffer.journal", dir);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 60, SEEK_SET), 0); // inside the first record
    int ch = fgetc(f);
    cr_assert_eq(fseek(f, 60, SEEK_SET), 0);
    fputc(ch ^ 1, f);
    fclose(f);
    a = make(&c, 10);
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.reported, 0, "a damaged record was replayed");
    fri_agg_destroy(a);
    state_dir_remove(dir);
}
