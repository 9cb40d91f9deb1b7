// fedrec-aggregator: argument handling, signals and logging. Everything
// else is in the core (agg.c, handle.c) and the NNG server (net.c).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "args.h"
#include "itemfeat.h"
#include "net.h"
#include "uplink.h"

// The only process globals: the signal flags.
static volatile sig_atomic_t stop_signal   = 0;
static volatile sig_atomic_t reload_signal = 0;

static void
on_signal(int sig)
{
    stop_signal = sig;
}

static void
on_reload(int sig)
{
    (void) sig;
    reload_signal = 1;
}

static void
log_stderr(void *ctx, fr_log_level lv, const char *msg)
{
    (void) ctx;
    static const char *names[] = {"error", "warn", "info", "debug"};
    struct timeval     tv;
    struct tm          tm;
    char               ts[32];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "ts=%s.%03ldZ level=%s %s\n", ts,
            (long) (tv.tv_usec / 1000),
            names[(unsigned) lv < 4 ? (unsigned) lv : 3], msg);
}

// SIGHUP: a larger `items` in the --config file grows the catalog
// (fri_agg_grow_items); the rest of the file needs a restart.
static void
reload(fri_agg *a, const fri_agg_args *args)
{
    char     err[512], line[640];
    uint32_t n = 0;
    err[0]     = 0;
    fr_err rv  = args->config_path == NULL
                     ? FR_ENOENT
                     : fri_agg_args_config_items(args->config_path, &n, err,
                                                 sizeof(err));
    if (args->config_path == NULL) {
        snprintf(err, sizeof(err), "no --config file to re-read");
    }
    if (rv == FR_OK) {
        fri_agg_metrics m;
        fri_agg_metrics_get(a, &m);
        uint32_t have = m.n_items_pending > m.n_items ? m.n_items_pending
                                                      : m.n_items;
        if (n == have) {
            snprintf(line, sizeof(line),
                     "msg=\"SIGHUP: catalog unchanged\" items=%u", n);
            log_stderr(NULL, FR_LOG_INFO, line);
        } else {
            rv = fri_agg_grow_items(a, n, err, sizeof(err));
        }
    }
    if (rv != FR_OK) {
        snprintf(line, sizeof(line),
                 "msg=\"SIGHUP: configuration not applied\" err=%s "
                 "detail=\"%s\"",
                 fr_errname(rv), err);
        log_stderr(NULL, FR_LOG_WARN, line);
    }
    if (args->item_features_path != NULL) {
        // New items' features, read again (the file may have grown too).
        float   *F = NULL;
        uint32_t rows = 0, g = 0;
        rv = fri_item_features_load(args->item_features_path, NULL,
                                    FRI_AGG_MAX_ITEMS, &F, &rows, &g, err,
                                    sizeof(err));
        if (rv == FR_OK) {
            rv = fri_agg_set_item_features(a, F, g, rows, err, sizeof(err));
        }
        free(F);
        if (rv != FR_OK) {
            snprintf(line, sizeof(line),
                     "msg=\"SIGHUP: item features not re-read; the previous "
                     "ones stay\" err=%s detail=\"%s\"",
                     fr_errname(rv), err);
            log_stderr(NULL, FR_LOG_WARN, line);
        }
    }
}

int
main(int argc, char **argv)
{
    fri_agg_args args;
    char         err[1024];
    err[0]    = 0;
    fr_err rv = fri_agg_args_parse(&args, argc, argv, err, sizeof(err));
    if (rv != FR_OK) {
        fprintf(stderr, "fedrec-aggregator: %s\n", err);
        fri_agg_args_free(&args);
        return 2;
    }
    if (args.help) {
        fri_agg_usage(stdout);
        fri_agg_args_free(&args);
        return 0;
    }
    args.cfg.log = log_stderr;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_reload;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    fri_agg *a = NULL;
    rv = fri_agg_create(&a, &args.cfg, fri_now_ms(), err, sizeof(err));
    if (rv != FR_OK) {
        fprintf(stderr, "fedrec-aggregator: %s\n", err);
        fri_agg_args_free(&args);
        return rv == FR_EINVAL || rv == FR_EFORMAT || rv == FR_ESTATE ? 2 : 1;
    }
    uint8_t pk[FR_PUBLICKEYBYTES];
    char    hex[2 * FR_PUBLICKEYBYTES + 1];
    fri_agg_public_key(a, pk);
    for (int i = 0; i < FR_PUBLICKEYBYTES; i++) {
        snprintf(hex + 2 * i, 3, "%02x", pk[i]);
    }
    char line[512];
    snprintf(line, sizeof(line),
             "msg=\"aggregator starting\" listen=\"%s\" items=%u k=%u "
             "algo=%s loss=%s secure_agg=%s stats_latest=%d "
             "stats_forget=%g%s buffer=%u max_staleness=%u public_key=%s%s",
             args.listen, args.cfg.n_items, args.cfg.k,
             args.cfg.algo == FRI_AGG_GRAD   ? "grad"
             : args.cfg.algo == FRI_AGG_VBMF ? "vbmf"
                                             : "als",
             args.cfg.implicit ? "implicit" : "explicit",
             args.cfg.secagg == FRI_AGG_SECAGG_PLUS   ? "plus"
             : args.cfg.secagg == FRI_AGG_SECAGG_FULL ? "full"
                                                      : "off",
             args.cfg.stats_latest, (double) args.cfg.stats_forget,
             args.private_default ? " default=private" : "", args.cfg.buffer,
             args.cfg.max_staleness, hex,
             args.key_path == NULL ? " identity=ephemeral" : "");
    log_stderr(NULL, FR_LOG_INFO, line);
    if (args.cfg.implicit && args.cfg.clients_per_round > 0 &&
        args.cfg.stats_forget >= 1.0f) {
        // docs/BENCHMARKS.md, "Implicit feedback with partial cohorts".
        log_stderr(NULL, FR_LOG_WARN,
                   "msg=\"implicit feedback with bounded cohorts solves "
                   "each round's items from that cohort alone; give "
                   "--population N (or an --allow list) to carry the "
                   "statistics at clients-per-round / N, or --stats-forget "
                   "F\"");
    }
    if (args.cfg.n_allow == 0) {
        log_stderr(NULL, FR_LOG_WARN,
                   "msg=\"open enrolment: no --allow list, any key may "
                   "check in and contribute (see README, Enrolment)\"");
    }

    fri_net *net = NULL;
    rv = fri_net_start(&net, a, args.listen, args.http, &args.net, err,
                       sizeof(err));
    if (rv != FR_OK) {
        fprintf(stderr, "fedrec-aggregator: %s\n", err);
        fri_agg_destroy(a);
        fri_agg_args_free(&args);
        return 1;
    }
    fri_uplink *up = NULL;
    if (args.upstream != NULL) {
        rv = fri_uplink_start(&up, a, args.upstream, args.upstream_margin_ms,
                              err, sizeof(err));
        if (rv != FR_OK) {
            fprintf(stderr, "fedrec-aggregator: %s\n", err);
            fri_net_stop(net);
            fri_agg_destroy(a);
            fri_agg_args_free(&args);
            return 1;
        }
        snprintf(line, sizeof(line),
                 "msg=\"edge: serving the rounds of the root\" upstream=%s "
                 "margin_ms=%llu",
                 args.upstream,
                 (unsigned long long) args.upstream_margin_ms);
        log_stderr(NULL, FR_LOG_INFO, line);
    }
    uint64_t done_at = 0;
    while (!stop_signal) {
        nng_msleep(50);
        if (reload_signal) {
            reload_signal = 0;
            reload(a, &args);
        }
        if (fri_agg_done(a)) {
            // Let the last ACKs reach their clients.
            if (done_at == 0) {
                done_at = fri_now_ms();
            } else if (fri_now_ms() - done_at > 1000) {
                break;
            }
        }
    }
    if (stop_signal) {
        snprintf(line, sizeof(line), "msg=\"stopping\" signal=%d",
                 (int) stop_signal);
        log_stderr(NULL, FR_LOG_INFO, line);
    }
    // Completed rounds are checkpointed as they close; the open round is
    // abandoned (its clients get FR_ELATE and redo it after a restart).
    fri_uplink_stop(up);
    fri_agg_stop(a, fri_now_ms());
    fri_net_stop(net);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    snprintf(line, sizeof(line),
             "msg=\"stopped\" rounds_completed=%llu model_version=%llu",
             (unsigned long long) m.rounds_completed,
             (unsigned long long) m.model_version);
    log_stderr(NULL, FR_LOG_INFO, line);
    fri_agg_destroy(a);
    fri_agg_args_free(&args);
    return 0;
}
