// Aggregator metrics: the counters' snapshot and its Prometheus and JSON
// pages (agg.h).
#include "agg_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "counters.h"

// ---- metrics ----------------------------------------------------------------

static const char *reject_names[FRI_REJ_COUNT_] = {
    "late",
    "duplicate",
    "not_member",
    "malformed",
    "crypto",
    "replay",
    "denied",
    "session_cap",
    "no_session",
    "state",
    "too_big",
    "out_of_bounds",
    "stale",
    "resync",
};

const char *
fri_agg_reject_name(fri_agg_reject r)
{
    return (unsigned) r < FRI_REJ_COUNT_ ? reject_names[r] : "unknown";
}

void
fri_agg_reject_count(fri_agg *a, fri_agg_reject r)
{
    if ((unsigned) r < FRI_REJ_COUNT_) {
        atomic_fetch_add(&a->ctr.rejected[r], 1);
    }
}

void
fri_agg_metrics_get(fri_agg *a, fri_agg_metrics *m)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_lock(&a->rs.mtx);
    m->round            = a->rs.round;
    m->rounds_completed = a->rs.rounds_completed;
    m->rounds_abandoned = a->rs.rounds_abandoned;
    m->sa_share_mismatch = a->rs.sa_share_mismatch;
    m->sa_unmask_failed  = a->rs.sa_unmask_failed;
    m->model_version =
        a->model.held ? a->model.pub_version : a->model.version;
    m->n_items          = fri_agg_n_items(a);
    m->n_items_pending  = a->catalog.grow_to > m->n_items ? a->catalog.grow_to : 0;
    m->cohort           = a->rs.n_members;
    m->reported         = a->rs.n_reported;
    m->round_open       = a->rs.state == RS_OPEN;
    m->mu               = a->model.mu;
    fri_dp_accountant acc = a->dp.dp_acc;
    m->dp_rounds          = a->dp.dp_rounds;
    pthread_mutex_unlock(&a->rs.mtx);
    m->dp               = (int) a->cfg.dp;
    m->clip             = a->cfg.clip;
    m->noise_multiplier = a->cfg.noise_multiplier;
    m->dp_q             = a->dp.dp_q;
    m->dp_delta         = a->cfg.dp_delta;
    m->dp_epsilon       = 0.0;
    if (m->dp_rounds > 0 &&
        fri_dp_accountant_epsilon(&acc, a->cfg.dp_delta, FRI_DP_CONV_BEST,
                                  &m->dp_epsilon, NULL) != FR_OK) {
        m->dp_epsilon = INFINITY;
    }
    m->clients_seen     = atomic_load(&a->ctr.clients_seen);
    m->checkins         = atomic_load(&a->ctr.checkins);
    m->model_reads      = atomic_load(&a->ctr.model_reads);
    m->staleness_sum    = atomic_load(&a->ctr.staleness_sum);
    m->clear_frames     = atomic_load(&a->ctr.clear_frames);
    m->sa_corrections   = atomic_load(&a->ctr.sa_corrections);
    m->updates_accepted = atomic_load(&a->ctr.accepted);
    for (int i = 0; i < FRI_REJ_COUNT_; i++) {
        m->rejected[i] = atomic_load(&a->ctr.rejected[i]);
    }
    m->bytes_in  = atomic_load(&a->ctr.bytes_in);
    m->bytes_out = atomic_load(&a->ctr.bytes_out);
    m->sessions  = atomic_load(&a->ctr.n_sessions);
    m->models_refused      = atomic_load(&a->ctr.models_refused);
    m->checkpoint_failures = atomic_load(&a->ctr.ckpt_failures);
    m->item_solves_skipped = atomic_load(&a->ctr.items_skipped);
    pthread_mutex_lock(&a->rs.mtx);
    m->model_held = a->model.held;
    pthread_mutex_unlock(&a->rs.mtx);
}

// Appends to (dst, cap) at *len; returns -1 when it does not fit.
static int
app(char *dst, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= cap - *len) {
        return -1;
    }
    *len += (size_t) n;
    return 0;
}

fr_err
fri_agg_metrics_prometheus(const fri_agg_metrics *m, char *dst,
                           size_t dst_cap, size_t *dst_len)
{
    size_t len = 0;
    int    bad = 0;
    if (dst == NULL || dst_cap == 0) {
        return FR_ENOSPC;
    }
    dst[0] = 0;
#define G(name, help, type, val)                                            \
    bad |= app(dst, dst_cap, &len,                                          \
               "# HELP " name " " help "\n# TYPE " name " " type "\n" name \
               " %llu\n",                                                   \
               (unsigned long long) (val))
    G("fedrec_round", "Id of the current round.", "gauge", m->round);
    G("fedrec_model_version", "Version of the served model.", "gauge",
      m->model_version);
    G("fedrec_items", "Items in the served model's catalog.", "gauge",
      m->n_items);
    G("fedrec_rounds_completed_total", "Rounds completed.", "counter",
      m->rounds_completed);
    G("fedrec_rounds_abandoned_total", "Rounds abandoned below min-clients.",
      "counter", m->rounds_abandoned);
    G("fedrec_secagg_share_mismatch_total",
      "Secure aggregation secrets whose first share subset failed its check.",
      "counter", m->sa_share_mismatch);
    G("fedrec_secagg_unmask_failed_total",
      "Secure aggregation rounds abandoned because unmasking failed.",
      "counter", m->sa_unmask_failed);
    G("fedrec_clients_seen_total", "Secure sessions established.",
      "counter", m->clients_seen);
    G("fedrec_checkins_total", "Check-ins received.", "counter",
      m->checkins);
    G("fedrec_model_reads_total",
      "Model-only check-ins (no update, no cohort membership).", "counter",
      m->model_reads);
    G("fedrec_updates_accepted_total", "Updates accepted.", "counter",
      m->updates_accepted);
    G("fedrec_staleness_sum_total",
      "Buffered mode: summed staleness (versions) of accepted updates.",
      "counter", m->staleness_sum);
    G("fedrec_clear_frames_total",
      "Masked updates sealed CLEAR (authenticated, not re-encrypted).",
      "counter", m->clear_frames);
    G("fedrec_secagg_corrections_total",
      "Secure aggregation dropout corrections taken from survivors.",
      "counter", m->sa_corrections);
    bad |= app(dst, dst_cap, &len,
               "# HELP fedrec_updates_rejected_total Requests refused, by "
               "reason.\n# TYPE fedrec_updates_rejected_total counter\n");
    for (int i = 0; i < FRI_REJ_COUNT_; i++) {
        bad |= app(dst, dst_cap, &len,
                   "fedrec_updates_rejected_total{reason=\"%s\"} %llu\n",
                   reject_names[i], (unsigned long long) m->rejected[i]);
    }
    G("fedrec_bytes_in_total", "Request bytes received.", "counter",
      m->bytes_in);
    G("fedrec_bytes_out_total", "Reply bytes sent.", "counter",
      m->bytes_out);
    G("fedrec_sessions", "Live secure sessions.", "gauge", m->sessions);
    G("fedrec_cohort_size", "Members of the open round.", "gauge",
      m->cohort);
    G("fedrec_cohort_reported", "Accepted updates in the open round.",
      "gauge", m->reported);
    G("fedrec_dp_rounds_total", "Rounds released with DP noise.", "counter",
      m->dp_rounds);
    G("fedrec_models_refused_total",
      "New models refused by the sanity check (previous model kept).",
      "counter", m->models_refused);
    G("fedrec_checkpoint_failures_total", "Checkpoint writes that failed.",
      "counter", m->checkpoint_failures);
    G("fedrec_item_solves_skipped_total",
      "Item solves that failed (item kept at its previous row).", "counter",
      m->item_solves_skipped);
    G("fedrec_model_held",
      "1 while DP holds back models whose accounting is not checkpointed.",
      "gauge", m->model_held);
#undef G
#define GF(name, help, val)                                                 \
    bad |= app(dst, dst_cap, &len,                                          \
               "# HELP " name " " help "\n# TYPE " name " gauge\n" name     \
               " %.17g\n",                                                  \
               (double) (val))
    // +Inf is valid in the exposition format ("+Inf").
    if (isinf(m->dp_epsilon)) {
        bad |= app(dst, dst_cap, &len,
                   "# HELP fedrec_dp_epsilon Privacy spent: epsilon at "
                   "fedrec_dp_delta over all DP rounds.\n# TYPE "
                   "fedrec_dp_epsilon gauge\nfedrec_dp_epsilon +Inf\n");
    } else {
        GF("fedrec_dp_epsilon",
           "Privacy spent: epsilon at fedrec_dp_delta over all DP rounds.",
           m->dp_epsilon);
    }
    GF("fedrec_dp_delta", "Delta of the reported epsilon.", m->dp_delta);
    GF("fedrec_dp_noise_multiplier", "DP noise stddev / clip (0 = off).",
       m->noise_multiplier);
    GF("fedrec_dp_clip", "L2 clip of a client update (0 = none).", m->clip);
    GF("fedrec_dp_sampling_rate", "Expected cohort / population.", m->dp_q);
#undef GF
    if (bad) {
        return FR_ENOSPC;
    }
    *dst_len = len;
    return FR_OK;
}

fr_err
fri_agg_metrics_json(const fri_agg_metrics *m, char *dst, size_t dst_cap,
                     size_t *dst_len)
{
    size_t len = 0;
    int    bad = 0;
    if (dst == NULL || dst_cap == 0) {
        return FR_ENOSPC;
    }
    bad |= app(dst, dst_cap, &len,
               "{\"round\":%llu,\"round_open\":%s,\"model_version\":%llu,"
               "\"rounds_completed\":%llu,\"rounds_abandoned\":%llu,"
               "\"clients_seen_total\":%llu,\"checkins_total\":%llu,"
               "\"model_reads_total\":%llu,"
               "\"updates_accepted_total\":%llu,"
               "\"staleness_sum_total\":%llu,\"clear_frames_total\":%llu,"
               "\"secagg_corrections_total\":%llu,"
               "\"updates_rejected_total\":{",
               (unsigned long long) m->round, m->round_open ? "true" : "false",
               (unsigned long long) m->model_version,
               (unsigned long long) m->rounds_completed,
               (unsigned long long) m->rounds_abandoned,
               (unsigned long long) m->clients_seen,
               (unsigned long long) m->checkins,
               (unsigned long long) m->model_reads,
               (unsigned long long) m->updates_accepted,
               (unsigned long long) m->staleness_sum,
               (unsigned long long) m->clear_frames,
               (unsigned long long) m->sa_corrections);
    for (int i = 0; i < FRI_REJ_COUNT_; i++) {
        bad |= app(dst, dst_cap, &len, "%s\"%s\":%llu", i ? "," : "",
                   reject_names[i], (unsigned long long) m->rejected[i]);
    }
    bad |= app(dst, dst_cap, &len,
               "},\"bytes_in_total\":%llu,\"bytes_out_total\":%llu,"
               "\"sessions\":%llu,\"cohort\":%u,\"reported\":%u,"
               "\"items\":%u,\"items_pending\":%u,\"mu\":%.6g,",
               (unsigned long long) m->bytes_in,
               (unsigned long long) m->bytes_out,
               (unsigned long long) m->sessions, m->cohort, m->reported,
               m->n_items, m->n_items_pending, isfinite(m->mu) ? (double) m->mu : 0.0);
    static const char *dp_names[] = {"off", "central", "distributed"};
    // JSON has no infinity: an unbounded epsilon is null.
    char eps[32];
    if (isfinite(m->dp_epsilon)) {
        snprintf(eps, sizeof(eps), "%.9g", m->dp_epsilon);
    } else {
        snprintf(eps, sizeof(eps), "null");
    }
    bad |= app(dst, dst_cap, &len,
               "\"dp\":{\"mode\":\"%s\",\"clip\":%.9g,"
               "\"noise_multiplier\":%.9g,\"sampling_rate\":%.9g,"
               "\"delta\":%.9g,\"epsilon\":%s,\"rounds\":%llu},"
               "\"models_refused_total\":%llu,"
               "\"checkpoint_failures_total\":%llu,"
               "\"item_solves_skipped_total\":%llu,\"model_held\":%s}\n",
               (unsigned) m->dp < 3 ? dp_names[m->dp] : "unknown",
               (double) m->clip, m->noise_multiplier, m->dp_q, m->dp_delta,
               eps, (unsigned long long) m->dp_rounds,
               (unsigned long long) m->models_refused,
               (unsigned long long) m->checkpoint_failures,
               (unsigned long long) m->item_solves_skipped,
               m->model_held ? "true" : "false");
    if (bad) {
        return FR_ENOSPC;
    }
    *dst_len = len;
    return FR_OK;
}

