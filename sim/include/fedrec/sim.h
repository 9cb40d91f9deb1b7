// libfedrec-sim: the federated simulator as a library.
//
// One fr_sim handle is one fedrec-sim run: every user of a dataset a
// virtual device running the real client library against the real
// aggregator code. Configure it with the options of fedrec-sim (same names,
// same values, same defaults; see fr_sim_usage()), then step it round by
// round or run it to the end, read each round's metrics, the summary (the
// JSON object fedrec-sim --json prints last) and the aggregator's item
// model. fedrec-sim itself is a front end over this API, so a run through
// the library gives the same results as the same flags on the command line.
//
// Errors: every call returns an fr_err (fedrec/err.h); a failing call on a
// handle leaves a message in fr_sim_errmsg(). A failed round ends the run:
// further steps fail with FR_ESTATE, reading what was reported stays valid.
//
// Threads: a handle is not thread-safe; different handles may be used from
// different threads, except that fr_sim_create/fr_sim_create_argv parse
// options with getopt_long, whose state is process-wide: create handles
// from one thread at a time. A run uses its own worker threads (--threads).
#ifndef FEDREC_SIM_H
#define FEDREC_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/common.h" // fr_err, FR_API, FR_NODISCARD, version

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fr_sim fr_sim;

// Creates a run from options named as fedrec-sim's flags without the
// leading dashes ("rounds", "no-reference"; '_' may stand for '-'). A
// switch (json, no-reference, quiet, ...) takes value NULL; every other
// option a string value, exactly as on the command line. Loads the data,
// settles the defaults that depend on it and, unless no-reference is given,
// trains the centralized reference (which can take a while). On failure
// *out is NULL and err (if err_cap > 0) says why: FR_EINVAL for a bad
// option, FR_EIO / FR_EFORMAT for unreadable data.
FR_API FR_NODISCARD fr_err fr_sim_create(fr_sim **out, size_t n_opts,
    const char *const *names, const char *const *values, char *err,
    size_t err_cap);
// The same from a command line (argv[0] is the program name). *cli is set
// to 1 when --help was given (then *out is NULL and the call returns
// FR_OK), to 2 when the command line itself is wrong (a usage error, as
// opposed to a run that cannot start), else to 0.
FR_API FR_NODISCARD fr_err fr_sim_create_argv(
    fr_sim **out, int argc, char **argv, int *cli, char *err, size_t err_cap);

// A run spread over a group of processes (fedrec-sim --mpi): process
// `rank` of `size` owns the devices u with u % size == rank and serves
// them from its own edge aggregator (docs/DEPLOY-TREE.md); rank 0 also
// runs the root, which the edges reach over NNG tcp. The caller supplies
// its group's collectives (fedrec-sim uses MPI; the library does not link
// it). Every rank creates its handle with the same options and steps it
// in lockstep; rank 0's metrics and summary are the run's. A collective
// returns 0 on success.
typedef struct fr_sim_group {
    uint32_t rank;
    uint32_t size;
    void    *ctx;
    // Copies rank 0's len bytes into buf on every rank.
    int (*bcast)(void *ctx, void *buf, size_t len);
    // Rank 0 receives every rank's len bytes, concatenated in rank order,
    // into out; lens[q] is rank q's len (out and lens: rank 0 only).
    int (*gather)(void *ctx, const void *buf, size_t len, void *out,
        const size_t *lens);
    int (*barrier)(void *ctx);
} fr_sim_group;

// fr_sim_create_argv for one rank of a group (the command line must carry
// --mpi). The group (and its ctx) must outlive the handle.
FR_API FR_NODISCARD fr_err fr_sim_create_group(fr_sim **out, int argc,
    char **argv, const fr_sim_group *group, int *cli, char *err,
    size_t err_cap);
FR_API void fr_sim_destroy(fr_sim *sim); // NULL is a no-op
// The last error on sim ("" if none). Valid until the next call on sim.
FR_API const char *fr_sim_errmsg(const fr_sim *sim);
// fedrec-sim's --help text (static).
FR_API const char *fr_sim_usage(void);

// What the run is, once created.
typedef struct fr_sim_info {
    uint32_t rounds; // rounds the run will have
    uint32_t n_users; // virtual devices
    uint32_t n_items; // catalog size (rows of the item model)
    uint32_t k; // factor dimension
    int      implicit; // 1: HR@10 / NDCG@10, 0: RMSE / MAE
    // Output options as given (for a front end).
    int         json;
    int         quiet;
    int         progress; // -1: auto (stderr is a terminal), 0 off, 1 on
    const char *out_dir; // NULL when not given
} fr_sim_info;
FR_API void fr_sim_get_info(const fr_sim *sim, fr_sim_info *info);

// Runs the next round; after the last also completes the summary.
// FR_ECLOSED when every round has run.
FR_API FR_NODISCARD fr_err fr_sim_step(fr_sim *sim);
// Runs every remaining round.
FR_API FR_NODISCARD fr_err fr_sim_run(fr_sim *sim);
FR_API uint32_t            fr_sim_rounds_run(const fr_sim *sim);
// Rounds whose metrics are final. With evaluation inside the cohort (every
// device in every round, plain aggregation) round r is scored by the
// devices of round r+1, so it is reported one step later.
FR_API uint32_t fr_sim_rounds_reported(const fr_sim *sim);
FR_API int      fr_sim_finished(const fr_sim *sim);

// One reported round (1-based). Metrics not computed in that round
// (evaluated 0, or the other kind of loss) are NaN.
typedef struct fr_sim_metrics {
    uint32_t round;
    int      evaluated;
    double   rmse, mae; // explicit ratings
    double   hr10, ndcg10; // implicit feedback
    uint32_t clients; // contributed updates
    uint32_t dropped; // selected, checked in, vanished
    uint32_t failed; // check-ins that ended in an error
    int      abandoned; // the aggregator gave the round up
    uint64_t bytes_up, bytes_down;
    double   seconds; // wall time of the round
    double   epsilon; // DP epsilon spent so far (NaN without DP)
    double   attack_auc; // item-inference attack AUC (NaN without --attack)
} fr_sim_metrics;
// FR_EINVAL for a round not yet reported.
FR_API FR_NODISCARD fr_err fr_sim_round_metrics(
    fr_sim *sim, uint32_t round, fr_sim_metrics *m);

// JSON texts, NUL-terminated into buf; *len (may be NULL) receives the
// length without the NUL. FR_ENOSPC when cap <= that length (*len still
// says how much is needed). The round object is the line fedrec-sim --json
// prints for it; the summary is its last line (FR_ESTATE before the end).
FR_API FR_NODISCARD fr_err fr_sim_round_json(
    fr_sim *sim, uint32_t round, char *buf, size_t cap, size_t *len);
FR_API FR_NODISCARD fr_err fr_sim_summary_json(
    fr_sim *sim, char *buf, size_t cap, size_t *len);
// Where the run comes from, for reproducing it: {"config": the settings
// that define the run (flag -> value, true for a switch; output-only flags
// left out; after --config, a later value replacing an earlier one; sorted),
// "config_hash": BLAKE2b-128 of that object's text (hex), "seed": the seed
// in force, "version": the library's, "git": the source revision at
// configure time ("-dirty" with uncommitted changes)}. Any time.
FR_API FR_NODISCARD fr_err fr_sim_provenance_json(
    fr_sim *sim, char *buf, size_t cap, size_t *len);
// fedrec-sim's text summary (FR_ESTATE before the end).
FR_API FR_NODISCARD fr_err fr_sim_summary_text(
    fr_sim *sim, char *buf, size_t cap, size_t *len);
// Writes metrics.csv, summary.json and the SVG plots into dir, as --out
// (FR_ESTATE before the end, FR_EIO when a file cannot be written).
FR_API FR_NODISCARD fr_err fr_sim_write_outputs(fr_sim *sim, const char *dir);

// The aggregator's current item model: the global mean, the item biases
// (n_items) and the item factors (n_items x k, row-major). Any pointer may
// be NULL to skip that part; FR_ENOSPC when a buffer is too short.
FR_API FR_NODISCARD fr_err fr_sim_model(
    fr_sim *sim, float *mu, float *bi, size_t bi_len, float *Q, size_t Q_len);
// A hash of the final item model (32 bytes), equal for equal runs
// (FR_ESTATE before the end).
FR_API FR_NODISCARD fr_err fr_sim_model_hash(fr_sim *sim, uint8_t out[32]);

// A sweep's plot: an SVG line chart of ys against xs (n points; several
// ys at the same x are averaged, NaN ones left out), written to path.
// FR_EIO (err says which file) when it cannot be written, FR_EINVAL for
// no finite point.
FR_API FR_NODISCARD fr_err fr_sim_plot_svg(const char *path, const char *title,
    const char *xlabel, const char *ylabel, const double *xs, const double *ys,
    size_t n, char *err, size_t err_cap);

// ---- hooks ----------------------------------------------------------------

// One plain update as the aggregator receives it, after the wire decoder
// and its shape checks, before it is accumulated: what an honest-but-curious
// aggregator sees of one device. Valid only during the call (copy what you
// keep). Rows are in the model's item order; for ALS a row is the item's
// statistics [h | count-like term], for gradient FedAvg the item's
// gradient [factors | bias] (width floats each).
typedef struct fr_sim_update {
    uint32_t round; // the simulator's round (1-based)
    uint32_t device; // who sent it: simulation ground truth (user
                     // index), the aggregator only sees key;
                     // UINT32_MAX if unknown
    const uint8_t  *key; // the device's X25519 public key (32 bytes)
    uint32_t        n; // rows
    const uint32_t *items; // n item indices
    const float    *rows; // n * width floats
    uint32_t        width;
    const float    *gram; // ALS: the packed Gram block, else NULL
    size_t          gram_len;
    double          sum_ratings, count, weight;
} fr_sim_update;

// Returns 0 to go on; anything else stops the run: the round in progress
// runs to its end (its devices cannot be recalled), then fr_sim_step fails
// with FR_EINTERNAL and a message naming the round, and the handle only
// answers about what was reported before (no further step). Called on the
// thread that submits the update, possibly from several threads at once
// (--threads > 1): the hook must be thread-safe.
typedef int (*fr_sim_update_fn)(void *ctx, const fr_sim_update *u);

// Installs (fn NULL: removes) the per-update hook, between steps. The
// built-in attacks (--attack) keep seeing every update as before. FR_EINVAL
// under secure aggregation, where the aggregator sees no single update.
FR_API FR_NODISCARD fr_err fr_sim_set_update_hook(
    fr_sim *sim, fr_sim_update_fn fn, void *ctx);

// One device's update before it leaves the device, which a defence may
// change in place (values only: the items and their number are fixed).
typedef struct fr_sim_device_update {
    uint32_t        round; // the simulator's round (1-based)
    uint32_t        device; // the user index
    uint32_t        n; // rows
    const uint32_t *items; // n item indices
    float          *rows; // n * width floats
    uint32_t        width;
    float          *extra; // ALS: packed Gram; VBMF: its block; then the
                  // sum of ratings and the count (last two)
    size_t extra_len;
    float *weight; // interactions used
} fr_sim_device_update;

// Returns 0 to send the (possibly changed) update; anything else stops the
// run as an update hook does (nothing is sent for this device).
typedef int (*fr_sim_device_fn)(void *ctx, fr_sim_device_update *u);

// Installs (NULL: removes) the device-update hook, between steps: every
// device that sends an update recomputes it as the poisoning path does
// (the client's own fit, deterministic), hands it to fn, and submits it to
// the aggregator directly in place of its sealed frame (so the bytes of
// that frame are not counted as sent). The built-in poisoning
// (--malicious) is a hook on the same path that runs after fn: a
// malicious device tampers last. FR_EINVAL under secure aggregation or
// latest statistics, where a device sends no single plain update, and in
// buffered mode (--buffer), where devices hold their sealed report until
// their tick.
FR_API FR_NODISCARD fr_err fr_sim_set_device_hook(
    fr_sim *sim, fr_sim_device_fn fn, void *ctx);

// One member's masked vector under secure aggregation, as the aggregator
// receives it: fixed-point words (uint32, two's complement: the member's
// statistics dense over every item, then the rating sum and count) plus
// its pairwise and self masks, so alone it should look uniform; only the
// round's sum unmasks (fr_sim_set_sum_hook). member is the index in the
// round's roster (the aggregator knows which key that is; the simulator
// does not map it to a user here). Valid only during the call.
typedef struct fr_sim_masked {
    uint32_t        round; // the simulator's round (1-based)
    uint32_t        member; // index in the round's roster
    const uint32_t *words;
    size_t          n_words;
} fr_sim_masked;

// Returns 0 to go on; anything else stops the run as an update hook does.
// Called while the aggregator holds its round lock: keep it short.
typedef int (*fr_sim_masked_fn)(void *ctx, const fr_sim_masked *m);

// Installs (fn NULL: removes) the masked-vector hook, between steps.
// FR_EINVAL without secure aggregation. The built-in attacks (--attack
// items) keep seeing every masked vector.
FR_API FR_NODISCARD fr_err fr_sim_set_masked_hook(
    fr_sim *sim, fr_sim_masked_fn fn, void *ctx);

// The aggregator's sums of one round before the model step: under secure
// aggregation the unmasked sum (what the aggregator learns of the cohort),
// else the sum of the plain updates. A defence may change the values in
// place (e.g. noise or clip the sum); an attack reads them. Valid only
// during the call. ALS rows are [packed Gram | h] per item, gradient rows
// [factors | bias]; DP noise is added after this hook (central DP), and
// under distributed DP the members' noise shares are already in the sum.
// Implicit ALS's summed Gram over all items is not shown.
typedef struct fr_sim_sum {
    uint32_t        round; // the simulator's round (1-based)
    uint32_t        cohort; // updates (or unmasked members) in the sum
    uint32_t        n; // items with a sum
    const uint32_t *items; // n item indices
    float          *rows; // n * width floats, writable
    uint32_t        width;
    double         *sum_ratings, *count; // writable
    float           mu; // the model before the step
    const float    *bi, *Q; // n_items, n_items * k
    uint32_t        n_items, k;
} fr_sim_sum;

// Returns 0 to step with the (possibly changed) sums; anything else stops
// the run as an update hook does (the sums are left unchanged). Called on
// the thread that closes the round, once per round.
typedef int (*fr_sim_sum_fn)(void *ctx, fr_sim_sum *s);

// Installs (fn NULL: removes) the sum hook, between steps, from the next
// round on. Plain and secure aggregation alike.
FR_API FR_NODISCARD fr_err fr_sim_set_sum_hook(
    fr_sim *sim, fr_sim_sum_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif // FEDREC_SIM_H
