// fedrec-sim internals: every user of a dataset is a virtual device that
// runs the real client library (fr_client) against the real aggregator core
// (fri_agg), over NNG (inproc, ipc, tcp) or by direct calls.
//
// The pieces: command-line configuration (args.c), the population of
// virtual devices (population.c), the round driver and its worker pool
// (run.c), the NNG REP server used when the aggregator runs in-process
// (server.c), evaluation on the devices (run.c), and the outputs: JSON
// lines, metrics.csv, summary.json and SVG plots (output.c).
#ifndef FR_SIM_SIM_H
#define FR_SIM_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "coldstart.h"
#include "dataset.h"
#include "fedrec/err.h"
#include "listmetrics.h"
#include "mf.h"
#include "poison.h"
#include "privacy.h"

typedef enum fri_sim_transport {
    FRI_SIM_DIRECT = 0, // fri_agg_handle called in-process, no sockets
    FRI_SIM_INPROC = 1,
    FRI_SIM_IPC = 2,
    FRI_SIM_TCP = 3,
} fri_sim_transport;

typedef enum fri_sim_algo {
    FRI_SIM_ALS = 0,  // federated ALS: clients send sufficient statistics
    FRI_SIM_GRAD = 1, // gradient FedAvg with a server optimizer
    FRI_SIM_VBMF = 2, // federated variational Bayes MF (explicit only)
} fri_sim_algo;

// Default rounds of --algo vbmf: the census round (the aggregator learns
// mu) plus the 15 sweeps of fri_vbmf_config_init.
#define FRI_SIM_VBMF_ROUNDS 16
// Rounds of the partial-cohort default (VBMF, latest statistics).
#define FRI_SIM_LATEST_ROUNDS 60
// iALS with partial cohorts runs about two reports per device, at most
// this many rounds.
#define FRI_SIM_IALS_MAX_ROUNDS 100u

typedef enum fri_sim_server_opt {
    FRI_SIM_OPT_SGD = 0,
    FRI_SIM_OPT_MOMENTUM = 1,
    FRI_SIM_OPT_ADAM = 2,
} fri_sim_server_opt;

// Groups of users in the per-group metrics.
enum {
    FRI_SIM_GRP_LIGHT  = 0,
    FRI_SIM_GRP_HEAVY  = 1,
    FRI_SIM_GRP_FEMALE = 2, // + gender (userattr.h)
    FRI_SIM_GRP_AGE    = 4, // + age band
    FRI_SIM_NGRP       = 8
};

typedef struct fri_sim_config {
    // Data: files (any loader format) or the seeded generator.
    const char      *train_path;
    const char      *test_path;
    const char      *users_path;  // --users: u.user, for per-group metrics
    // --item-features: u.item, content features for VBMF's item prior
    // (fri_agg_config.item_features).
    const char      *item_features_path;
    int              synthetic;   // 1: use synth (also the default data)
    fri_synth_config synth;
    double           holdout;     // per-user random test fraction (synth)
    int              implicit;    // --loss implicit
    int              leave_last;  // --split leave-last-out (one --train)
    // --replay time: training interactions are revealed in timestamp
    // order, round r showing each device those up to the time by which
    // r/rounds of all training interactions had happened (its past only).
    int              replay_time;
    int              model_format; // --model-format: FRI_AGG_MF_* (auto)
    int              negatives_set; // --negatives given
    uint32_t         negatives;   // sampled negatives, 0 = every item
    float            alpha;       // iALS confidence slope
    // Rounds.
    uint32_t rounds;
    uint32_t clients_per_round; // 0: use fraction
    double   fraction;          // of registered clients per round
    uint32_t local_epochs;
    double   dropout;           // probability a selected client vanishes
    float    diverse; // devices' MMR lambda for lists, 1 = plain
    float    recency; // devices' implicit recency half-life, 0 = off
    float    svdpp;   // devices' rated-set weight in the VB prior, 0 = off
    float    transition; // devices' implicit last-item term weight, 0 = off
    int      verify_adverts; // devices verify the roster's signatures too
    double   deadline_s;        // round deadline, seconds
    double   stats_forget;      // explicit ALS carry rate; 0 = cohort share
    int      stats_latest;      // latest statistics: 1 on, 0 off, -1 auto
    // Asynchronous buffered mode (buffer = K > 0; fri_agg_config.buffer):
    // a round is one tick of continuous arrivals. Each tick a seeded
    // cohort-sized draw of the idle devices arrives, checks in on the
    // current model version and reports at once or, for a slow device
    // (probability slow), 1..slow_ticks ticks later; the aggregator steps
    // whenever K reports are buffered and refuses reports more than
    // max_staleness versions old (the device retries when it next
    // arrives).
    uint32_t buffer;
    uint32_t max_staleness;
    double   slow;
    uint32_t slow_ticks;
    // Model and optimizer.
    uint32_t           k;
    float              reg;
    float              reg_bias;
    int                weighted; // weighted-lambda (see common/mf.h)
    float              init_std;
    float              lr;
    fri_sim_algo       algo;
    int                algo_auto; // --algo not given: fri_sim_config_resolve
    int                rounds_set; // --rounds given
    fri_sim_server_opt server_opt;
    // Execution.
    uint32_t          threads;
    uint64_t          seed;
    fri_sim_transport transport;
    // Evaluation: every evaluated round is scored by the same evaluation
    // users (run.c). eval_every 0: only after the last round; not given
    // (eval_every_set 0) with evaluation visits: every ceil(evaluation
    // users / cohort) rounds.
    uint32_t          eval_every;
    int               eval_every_set;
    uint32_t          eval_users;  // 0: every user with test data
    // --report cold-start: a seeded tenth of the users with >= 20 training
    // ratings is held out of training for the cold-start curve.
    int               report_cold_start;
    // --new-items N[@R]: the last N items of the data (in the order the
    // files first mention them: the population's item index) are not in the
    // catalog at the start; the aggregator is asked to add them
    // (fri_agg_grow_items) in round R (default half the rounds), so they
    // enter after it. Explicit feedback: the evaluation also scores the
    // ratings of those items apart, and those of old items matched to
    // them by training rating count (fri_sim_round.new_rmse).
    // N@0 is the control: the items are in the catalog from the start and
    // only scored apart.
    uint32_t          new_items;
    uint32_t          new_items_round; // with new_items_at; else rounds / 2
    int               new_items_at;    // @R given
    int               reference;   // compute the centralized reference
    int               shared_cache; // devices share one verified model
    // Output.
    int         json;
    const char *out_dir;
    int         progress; // -1 auto (stderr is a TTY), 0 off, 1 on
    int         quiet;    // no text summary on stdout
    // Aggregator checkpoint directory (fedrec-aggregator --state): the
    // model after every completed round, resumed from if present. NULL:
    // none.
    const char *state_dir;
    // --mpi: one rank of a run spread over processes (tree.h); group is
    // set by fr_sim_create_group. mpi_host: the address the other ranks
    // reach rank 0's root at (NULL: 127.0.0.1, every rank on one host).
    int                        mpi;
    const char                *mpi_host;
    const struct fr_sim_group *group;
    // Privacy: secure aggregation, clipping, DP, pseudo-items, attacks.
    fri_sim_privacy priv;
    // Poisoning attacks, target-item exposure, robust aggregation
    // (poison.h).
    fri_sim_poison poison;
} fri_sim_config;

// Defaults: the centralized trainer's tuned ALS settings
// (fri_train_config_init), every client in every round, the built-in
// synthetic data, inproc NNG, 2 threads.
void fri_sim_config_init(fri_sim_config *c);

// Parses argv[1..argc) on top of c. Returns FR_OK, or FR_EINVAL with a
// message in err. *help is set to 1 when --help was given (c untouched
// beyond that point).
FR_NODISCARD fr_err fri_sim_parse_args(fri_sim_config *c, int argc,
                                       char **argv, int *help, char *err,
                                       size_t err_cap);
// The --help text (static).
const char *fri_sim_usage(void);

// --config FILE (fedrec-aggregator's 'name = value' format, common/kvfile.h):
// a new command line with the file's settings as "--name=value" right
// after argv[0], then the other arguments (flags given on the command line
// override the file's). A switch takes true/false (1/0, yes/no, on/off) in
// the file. *out_argv: malloc'd strings, freed by fri_sim_argv_free.
FR_NODISCARD fr_err fri_sim_expand_config(int argc, char **argv,
                                          int *out_argc, char ***out_argv,
                                          char *err, size_t err_cap);
void fri_sim_argv_free(int argc, char **argv);

// One setting of a parsed command line: the flag's name and its value
// (NULL for a switch), pointing into argv.
typedef struct fri_sim_setting {
    char        name[64];
    const char *value;
} fri_sim_setting;
// The settings that define a run (output-only flags left out), a later
// value of a flag replacing an earlier one, sorted by name. FR_ENOSPC
// beyond cap settings. argv must have passed fri_sim_parse_args.
FR_NODISCARD fr_err fri_sim_settings(int argc, char **argv,
                                     fri_sim_setting *out, size_t cap,
                                     size_t *n_out);

const char *fri_sim_transport_name(fri_sim_transport t);

// ---- population (population.c) -------------------------------------------

#define FRI_SIM_SEEDBYTES 32

// Every user of the data as a virtual device. An idle device is nothing but
// its rows in the two shared CSRs: its identity is derived from the
// population key and its index, its user vector is refitted from the model
// at every check-in (closed form), so no per-device record is kept.
typedef struct fri_sim_pop {
    uint32_t n_users;
    uint32_t n_items;
    fri_csr  train; // by user
    fri_csr  test;  // by user, same n_rows
    // Timestamps parallel to train.idx / test.idx, NULL when the data has
    // none: devices store them and predict a held-out rating at its time.
    int64_t *train_ts;
    int64_t *test_ts;
    float    min_rating, max_rating;
    // Per-user gender and age band (userattr.h), NULL without --users.
    uint8_t *gender;
    uint8_t *age_band;
    // Item content features (--item-features), n_items x n_feat, NULL
    // without.
    float   *item_feat;
    uint32_t n_feat;
    uint8_t  key[32]; // derives device identities (simulation only)
    char     name[128];
} fri_sim_pop;

// Loads --train/--test or generates --synthetic data and splits it.
FR_NODISCARD fr_err fri_sim_pop_load(fri_sim_pop *p, const fri_sim_config *c,
                                     char *err, size_t err_cap);
void fri_sim_pop_free(fri_sim_pop *p);
// Settles the defaults that depend on the data: without --algo, explicit
// ratings use VBMF; when rounds see only part of the population it runs on
// the sum of every device's latest statistics (fri_agg_config.stats_latest,
// FRI_SIM_LATEST_ROUNDS rounds unless --rounds, masked with SecAgg+ unless
// --secure-agg is given), or with --stats-latest 0 (or poisoning) ALS with
// carried item statistics (fri_agg_config.stats_forget). Implicit feedback
// with partial cohorts: iALS with carried statistics, masked, for
// ceil(2 / cohort share) rounds (at most FRI_SIM_IALS_MAX_ROUNDS) unless
// --rounds.
void fri_sim_config_resolve(fri_sim_config *c, const fri_sim_pop *p);
// Clients per round out of n_eligible (those with training ratings):
// --clients-per-round, or --fraction rounded up, within [1, n_eligible].
size_t fri_sim_cohort_size(const fri_sim_config *c, size_t n_eligible);
// --new-items: the round in which the items are asked for (R of N@R, or
// half the rounds); 0 is the control (in the catalog from the start).
uint32_t fri_sim_new_items_round(const fri_sim_config *c);
// The identity seed of device u (deterministic for the population).
void fri_sim_pop_identity(const fri_sim_pop *p, uint32_t u,
                          uint8_t seed[FRI_SIM_SEEDBYTES]);
// Bytes the population keeps beyond the ratings themselves.
size_t fri_sim_pop_overhead(const fri_sim_pop *p);

// ---- NNG REP server over fri_agg (server.c) --------------------------------

struct fri_agg;
typedef struct fri_sim_server fri_sim_server;
typedef uint64_t (*fri_sim_clock_fn)(void *ctx);

// Listens on url with a REP socket and n_ctx contexts; each context
// receives a request, passes it to fri_agg_handle at clock(clock_ctx) and
// sends the reply. For "tcp://host:0" the bound port is written into
// bound_url. FR_ENET on a socket error (err says which).
FR_NODISCARD fr_err fri_sim_server_start(fri_sim_server **out,
                                         struct fri_agg *agg, const char *url,
                                         uint32_t n_ctx, fri_sim_clock_fn clock,
                                         void *clock_ctx, char *bound_url,
                                         size_t bound_cap, char *err,
                                         size_t err_cap);
void fri_sim_server_stop(fri_sim_server *s); // NULL is a no-op

// fri_agg_handle into *buf (*cap bytes, malloc'd), first made large
// enough for any reply of agg, whose bound grows with the catalog
// (fri_agg_grow_items). FR_ENOMEM leaves the buffer as it was.
FR_NODISCARD fr_err fri_sim_handle(struct fri_agg *agg, uint64_t now_ms,
                                   const uint8_t *req, size_t req_len,
                                   uint8_t **buf, size_t *cap,
                                   size_t *reply_len);

// ---- per-round results ---------------------------------------------------

typedef struct fri_sim_round {
    uint32_t round;     // 1-based
    int      evaluated; // metrics below are valid
    double   rmse, mae; // explicit
    double   hr10, ndcg10; // implicit
    // Who scored it: evaluation users and their held-out ratings (implicit:
    // items), the same set in every evaluated round.
    uint32_t eval_users;
    uint64_t eval_ratings;
    // The same metrics per group of users (FRI_SIM_GRP_*): light and heavy
    // (fewer training ratings than the evaluation users' median, or not),
    // then, with --users, by gender and age band (users without the
    // attribute are in neither group of it).
    double   grp_rmse[FRI_SIM_NGRP], grp_hr10[FRI_SIM_NGRP];
    uint32_t grp_users[FRI_SIM_NGRP];
    // Model-only evaluation visits (0 when evaluated inside the cohort):
    // their bytes up + down and wall time, not in the counters below.
    uint64_t eval_bytes;
    double   eval_seconds;
    uint32_t clients;   // contributed updates
    uint32_t dropped;   // selected, checked in, vanished
    uint32_t failed;    // check-ins that ended in an error
    int      abandoned; // the aggregator gave the round up (updates lost)
    uint64_t bytes_up;
    uint64_t bytes_down;
    double   seconds;   // wall time of the round (not of evaluation)
    // CPU seconds (thread time): the aggregator's own (its request
    // handling with --transport direct, plus its ticks) and one
    // contributing device's client-library work (median, max). A deployed
    // round's critical path is about agg_seconds + client_seconds_max.
    double   agg_seconds;
    double   client_seconds_median, client_seconds_max;
    fri_sim_priv_stats priv; // epsilon so far, attacks on this round
    // Buffered mode (appended): model steps during this tick, reports
    // refused as stale, and the summed staleness of the accepted ones.
    uint32_t steps;
    uint32_t stale;
    uint64_t staleness_sum;
    // --new-items (appended): RMSE of the evaluation ratings of the new
    // items and of the old items matched to them, and their counts.
    double   new_rmse, matched_rmse;
    uint64_t new_ratings, matched_ratings;
} fri_sim_round;

// Length of the device lists behind the beyond-accuracy metrics.
#define FRI_SIM_LIST_K 10

typedef struct fri_sim_summary {
    uint32_t rounds;
    uint32_t rounds_abandoned; // training rounds the aggregator gave up
    fri_sim_round last;       // last round's counters and final metrics
    uint64_t total_clients;
    uint64_t total_dropped;
    uint64_t total_bytes_up;
    uint64_t total_bytes_down;
    uint64_t total_eval_bytes;   // evaluation visits, up + down
    double   total_eval_seconds; // their wall time (not in total_seconds)
    uint32_t eval_every;         // the cadence used
    // The aggregator's own counters over the run: check-ins (training)
    // and model-only reads (evaluation visits).
    uint64_t agg_checkins;
    uint64_t agg_model_reads;
    double   total_seconds;   // wall time in rounds
    double   rounds_per_second;
    // Means over rounds of the per-round CPU split; the max over rounds.
    double   agg_seconds_per_round;
    double   client_seconds_median;
    double   client_seconds_max;
    double   us_per_update;   // wall time per contributed update
    // Raw cost of the same bytes: XChaCha20-Poly1305 seal + open and a
    // memcpy, per update (microseconds), measured in the same run.
    double   us_crypto_per_update;
    double   us_memcpy_per_update;
    // Centralized reference: fedrec-train's default on the same split
    // (explicit: fri_train_bpmf with its defaults; implicit: fri_train_ials
    // with the run's settings), plus, explicit only, centralized ALS
    // (the run's settings) and VBMF (its defaults, rounds - 1 sweeps when
    // --algo vbmf) for comparison.
    int      has_reference;
    double   ref_rmse, ref_mae, ref_hr10, ref_ndcg10;
    double   ref_seconds;
    const char *ref_name;        // "bpmf", "ials"
    double      ref_als_rmse;    // 0 when not computed
    double      ref_vbmf_rmse;
    // Scale.
    uint32_t n_clients;       // registered virtual clients
    uint64_t n_train, n_test;
    long     peak_rss_kib;
    double   bytes_per_idle_client;
    char     data_name[128];
    fri_sim_priv_stats priv; // final epsilon, attacks pooled over rounds
    fri_sim_poison_stats poison; // target exposure, poisoned updates
    // Beyond accuracy (common/listmetrics.h) of the evaluated devices'
    // own top-FRI_SIM_LIST_K lists under the final model.
    fri_list_metrics lists;
    // Buffered mode: model steps, reports accepted and refused as stale,
    // mean staleness (versions) of the accepted ones.
    uint64_t total_steps;
    uint64_t total_stale;
    double   mean_staleness;
    // --report cold-start: the curve over the held-out users.
    int              has_cold_start;
    fri_sim_cs_point cold_start[FRI_SIM_CS_N];
} fri_sim_summary;

// ---- the run (run.c) -------------------------------------------------------

// Called in round order once a round's counters and (if it is evaluated)
// its metrics are known.
typedef void (*fri_sim_round_fn)(void *ctx, const fri_sim_round *r);

// Runs c->rounds federated rounds over p. rounds[] (c->rounds entries) and
// *s receive the results; model_hash (32 bytes) a hash of the final item
// model (mu, b_i, Q) for comparing runs. Returns FR_OK or the first error
// that stopped the run (err says what).
FR_NODISCARD fr_err fri_sim_run(const fri_sim_config *c, const fri_sim_pop *p,
                                fri_sim_round *rounds, fri_sim_summary *s,
                                uint8_t model_hash[32], fri_sim_round_fn cb,
                                void *cb_ctx, char *err, size_t err_cap);

// The same run one round at a time (fri_sim_run is create, step until
// finished, destroy). rounds[] and *s must outlive the runner; the config
// is copied, but the strings it points to (paths) must outlive it too.
// cb is called as in fri_sim_run.
typedef struct fri_sim_runner fri_sim_runner;
FR_NODISCARD fr_err fri_sim_runner_create(fri_sim_runner **out,
                                          const fri_sim_config *c,
                                          const fri_sim_pop *p,
                                          fri_sim_round *rounds,
                                          fri_sim_summary *s,
                                          fri_sim_round_fn cb, void *cb_ctx,
                                          char *err, size_t err_cap);
// Runs the next round; after the last one also completes *s (the summary).
// FR_ECLOSED once every round has run; after a failed step every further
// step fails with FR_ESTATE (the run's state is not trusted any more).
FR_NODISCARD fr_err fri_sim_runner_step(fri_sim_runner *rn, char *err,
                                        size_t err_cap);
uint32_t fri_sim_runner_rounds_run(const fri_sim_runner *rn);
// Rounds whose results are final (handed to cb): with evaluation inside
// the cohort a round's metrics are known one round later.
uint32_t fri_sim_runner_rounds_reported(const fri_sim_runner *rn);
int      fri_sim_runner_finished(const fri_sim_runner *rn);
// The settings in force (the evaluation cadence settled from the data).
const fri_sim_config *fri_sim_runner_config(const fri_sim_runner *rn);
// The hash of the final item model (as fri_sim_run's), NULL before the end.
const uint8_t *fri_sim_runner_hash(const fri_sim_runner *rn);
// The aggregator (its model: fri_agg_model_copy).
struct fri_agg *fri_sim_runner_agg(const fri_sim_runner *rn);
void fri_sim_runner_destroy(fri_sim_runner *rn); // NULL is a no-op
// The caller's view of every plain update the aggregator validates (the
// view the built-in attacks have): round (1-based), the device it came from
// (simulation ground truth; UINT32_MAX if unknown), its key and the update.
// Called on the submitting thread, possibly from several at once. Non-zero
// stops the run: the round finishes, then the step fails (FR_EINTERNAL).
struct fri_agg_update;
typedef int (*fri_sim_update_hook)(void *ctx, uint32_t round,
                                   uint32_t device, const uint8_t pk[32],
                                   const struct fri_agg_update *u);
// Between steps only. FR_EINVAL under secure aggregation. NULL removes it.
// A device-update hook: the round, the device, its client (the served
// model, its fitted vector) and its update, whose values the hook may
// change in place. Returns 0 to go on (the next hook, then the
// aggregator), FRI_SIM_HOOK_WITHHOLD to send nothing for this device (it
// counts as failed), anything else to stop the run as the update hook
// does. The built-in poisoning (fri_sim_poison_hook) and the caller's
// hook (fr_sim_set_device_hook) are both of this kind, on one path
// (fri_sim_device_rewrite).
struct fri_update_buf;
struct fr_client;
typedef int (*fri_sim_device_hook)(void *ctx, uint32_t round,
                                   uint32_t device, struct fr_client *cl,
                                   struct fri_update_buf *ub);
#define FRI_SIM_HOOK_WITHHOLD (-1)
typedef struct fri_sim_dev_hook {
    fri_sim_device_hook fn; // NULL: skipped
    void               *ctx;
} fri_sim_dev_hook;
// The caller's device-update hook for every device that sends an update,
// from the next round on; it runs before the built-in poisoning, so a
// malicious device (--malicious) tampers last. Between steps only.
// FR_EINVAL under secure aggregation or latest statistics (devices send
// masked vectors or changes of statistics there, not one plain update) and
// in buffered mode (devices hold their sealed report until their tick).
// NULL removes it.
FR_NODISCARD fr_err fri_sim_runner_set_device_hook(fri_sim_runner *rn,
                                                   fri_sim_device_hook fn,
                                                   void *ctx, char *err,
                                                   size_t err_cap);
FR_NODISCARD fr_err fri_sim_runner_set_update_hook(fri_sim_runner *rn,
                                                   fri_sim_update_hook fn,
                                                   void *ctx, char *err,
                                                   size_t err_cap);
// The sum hook: the round and the aggregator's sums before the step
// (fri_agg_set_sum_hook), which it may change; non-zero stops the run as
// the update hook does. Plain and secure rounds alike. Between steps
// only; NULL removes it.
// The masked-vector hook: the round, the member's index in the round's
// roster and the masked words as received; non-zero stops the run. Under
// secure aggregation only (FR_EINVAL otherwise). The built-in attacks keep
// seeing every masked vector. NULL removes it.
typedef int (*fri_sim_masked_hook)(void *ctx, uint32_t round,
                                   uint32_t member, const uint32_t *y,
                                   size_t dim);
FR_NODISCARD fr_err fri_sim_runner_set_masked_hook(fri_sim_runner *rn,
                                                   fri_sim_masked_hook fn,
                                                   void *ctx, char *err,
                                                   size_t err_cap);
struct fri_agg_sum_view;
typedef int (*fri_sim_sum_hook)(void *ctx, uint32_t round,
                                struct fri_agg_sum_view *v);
FR_NODISCARD fr_err fri_sim_runner_set_sum_hook(fri_sim_runner *rn,
                                                fri_sim_sum_hook fn,
                                                void *ctx);

// Centralized reference on the same split with the same hyperparameters
// (fri_train_als or fri_train_ials for c->rounds epochs), evaluated like the
// devices evaluate (clamped RMSE/MAE; full-ranking HR@10/NDCG@10).
FR_NODISCARD fr_err fri_sim_reference(const fri_sim_config *c,
                                      const fri_sim_pop *p,
                                      fri_sim_summary *s);

// Raw cost of moving n_up + n_down bytes: XChaCha20-Poly1305 seal+open and
// memcpy, in microseconds per call (median of a few repetitions).
void fri_sim_raw_cost(size_t n_up, size_t n_down, double *us_crypto,
                      double *us_memcpy);

// ---- privacy in the run (privacy.c) ---------------------------------------

struct fri_agg_config;
// Cross-flag checks of c->priv (after parsing); FR_EINVAL with a message.
FR_NODISCARD fr_err fri_sim_privacy_check(const fri_sim_config *c, char *err,
                                          size_t err_cap);
// Fills the aggregator's privacy fields; a DP or secure-aggregation run
// fixes the aggregator's cohort to the simulator's (cohort devices).
void fri_sim_privacy_agg_config(const fri_sim_config *c,
                                const fri_sim_pop *p, size_t cohort,
                                struct fri_agg_config *ac);

// The aggregator's view and the attacks on it. Thread-safe hooks.
typedef struct fri_sim_atk fri_sim_atk;
FR_NODISCARD fr_err fri_sim_atk_create(fri_sim_atk **out,
                                       const fri_sim_config *c,
                                       const fri_sim_pop *p, size_t cohort,
                                       struct fri_agg *agg);
void fri_sim_atk_destroy(fri_sim_atk *a); // NULL is a no-op
// Before round r's check-ins: attacked says whether (a) and (b) run on it.
void fri_sim_atk_round_begin(fri_sim_atk *a, uint32_t r, int attacked);
// A device of the round (u) and its public key (X25519 || Ed25519).
void fri_sim_atk_register(fri_sim_atk *a, uint32_t u, const uint8_t pk[64]);
// The built-in attacks as hooks of the kinds a caller installs
// (fri_sim_update_hook, fri_sim_masked_hook; ctx the fri_sim_atk): run.c
// registers them, ahead of the caller's, on the one hook path. *updates /
// *masked: whether the attacks asked for (a) need each hook.
void fri_sim_atk_hooks(const fri_sim_atk *a, int *updates, int *masked);
int  fri_sim_atk_update_hook(void *ctx, uint32_t round, uint32_t device,
     const uint8_t pk[32], const struct fri_agg_update *up);
int  fri_sim_atk_masked_hook(void *ctx, uint32_t round, uint32_t member,
     const uint32_t *y, size_t dim);
// Between passes of a secure round: learns member index -> device.
void fri_sim_atk_poll(fri_sim_atk *a, uint64_t now_ms);
// After round r closed: epsilon and the attacks' results into r->priv.
void fri_sim_atk_round_end(fri_sim_atk *a, fri_sim_round *r);
// Pooled results into s->priv.
void fri_sim_atk_summary(const fri_sim_atk *a, fri_sim_summary *s);

// ---- poisoning in the run (poison.c) ---------------------------------------

// Cross-flag checks of c->poison (after parsing); FR_EINVAL with a message.
FR_NODISCARD fr_err fri_sim_poison_check(const fri_sim_config *c, char *err,
                                         size_t err_cap);
typedef struct fri_sim_poison_run fri_sim_poison_run;
struct fr_client;
// NULL *out (and FR_OK) when there is neither an attack nor a target item.
// FR_EINVAL (err says why) for a target outside the catalog.
FR_NODISCARD fr_err fri_sim_poison_create(fri_sim_poison_run **out,
                                          const fri_sim_config *c,
                                          const fri_sim_pop *p,
                                          struct fri_agg *agg, char *err,
                                          size_t err_cap);
void fri_sim_poison_destroy(fri_sim_poison_run *r); // NULL is a no-op
// Whether device u is one of the run's malicious devices (r NULL: no).
int fri_sim_poison_malicious(const fri_sim_poison_run *r, uint32_t u);
// The built-in poisoning as a device-update hook (ctx: the run): a
// malicious device's update is replaced by the attack's (poison.h); an
// honest device's passes unchanged. FRI_SIM_HOOK_WITHHOLD when the attack
// has nothing to work on (a promotion without a row).
int fri_sim_poison_hook(void *ctx, uint32_t round, uint32_t u,
                        struct fr_client *cl, struct fri_update_buf *ub);
// Counts a malicious device's crafted update: accepted by the aggregator
// or not (refused, or withheld).
void fri_sim_poison_count(fri_sim_poison_run *r, int accepted);
// On the final visit: an honest evaluating device's recommendations are
// scored for the target item (no-op without one, or for r NULL).
void fri_sim_poison_measure(fri_sim_poison_run *r, struct fr_client *cl,
                            uint32_t u, int evaluate);
void fri_sim_poison_summary(const fri_sim_poison_run *r,
                            fri_sim_summary *s);

// The one path of device-update hooks: device u (about to send its update
// of the aggregator's current round) recomputes its honest update (the
// client's own fit, deterministic), every hook of chain[0..n) with a
// function changes it in turn, and it is submitted to the aggregator in
// place of the device's sealed frame (plain aggregation only; what the
// wire decoder hands to fri_agg_submit). FR_OK: *accepted says whether
// the aggregator took it (0 also when a hook withheld it: nothing
// submitted); FR_EINTERNAL: a hook asked to stop the run (nothing
// submitted); another code: the update could not be computed.
FR_NODISCARD fr_err fri_sim_device_rewrite(const fri_sim_config *c,
                                           struct fri_agg *agg,
                                           struct fr_client *cl, uint32_t u,
                                           uint32_t round, uint64_t now_ms,
                                           const fri_sim_dev_hook *chain,
                                           size_t n, int *accepted);

// ---- outputs (output.c) --------------------------------------------------

// One JSON object on one line (no newline), keys as documented in --help.
void fri_sim_json_round(FILE *f, const fri_sim_config *c,
                        const fri_sim_round *r);
void fri_sim_json_summary(FILE *f, const fri_sim_config *c,
                          const fri_sim_summary *s);
// fedrec-sim's text summary (several lines).
void fri_sim_text_summary(FILE *f, const fri_sim_config *c,
                          const fri_sim_summary *s);
// Writes metrics.csv, summary.json and one SVG plot per metric into dir
// (created if missing). FR_EIO on failure (err names the file).
FR_NODISCARD fr_err fri_sim_write_outputs(const char *dir,
                                          const fri_sim_config *c,
                                          const fri_sim_round *rounds,
                                          size_t n_rounds,
                                          const fri_sim_summary *s, char *err,
                                          size_t err_cap);
// A self-contained SVG line chart of ys against xs with an optional
// horizontal reference line (has_ref). Returns bytes written, or -1.
// The same with xs on a labelled continuous axis (no reference line).
FR_NODISCARD int fri_sim_svg_plot_xy(FILE *f, const char *title,
                                     const char *xlabel, const char *ylabel,
                                     const double *xs, const double *ys,
                                     size_t n);
FR_NODISCARD int fri_sim_svg_plot(FILE *f, const char *title,
                                  const char *ylabel, const double *xs,
                                  const double *ys, size_t n, int has_ref,
                                  double ref, const char *ref_label);

#endif
