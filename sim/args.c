// Command-line parsing for fedrec-sim (getopt_long, exact flag names).
// Every flag but the switches takes "--flag VALUE" or "--flag=VALUE";
// numbers are checked for range and trailing garbage.
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg.h"
#include "kvfile.h"
#include "bayes.h"
#include "recency.h"
#include "sim.h"

// Two halves (each under the 4095 characters C guarantees for a literal);
// the privacy section (privacy.c) goes between them.
static const char usage_head[]
    = "usage: fedrec-sim [options]\n"
      "\n"
      "Runs every user of a dataset as its own virtual device (a real\n"
      "fedrec client with its own keys, training ratings and held-out test\n"
      "ratings) against the real aggregator code, with full encryption.\n"
      "Without --train/--synthetic it uses the built-in seeded synthetic "
      "data.\n"
      "\n"
      "Data:\n"
      "  --train PATH          training ratings (MovieLens, CSV or "
      "whitespace)\n"
      "  --test PATH           held-out ratings, evaluated on the devices\n"
      "  --users PATH          MovieLens u.user (id|age|gender|...): the\n"
      "                        summary's groups add gender and age bands\n"
      "  --item-features PATH  MovieLens u.item (id|title|date|video date|\n"
      "                        URL|f1|...): VBMF regresses each item's prior\n"
      "                        on these features (e.g. the genres), so items\n"
      "                        with few ratings start from items like them\n"
      "  --synthetic SPEC      seeded generator, e.g. users=1000,items=500,\n"
      "                        k=8,density=0.06,zipf=0.8,noise=0.5,seed=1;\n"
      "                        each user's ratings are split 80/20 at random\n"
      "  --holdout F           test fraction for --synthetic (default 0.2)\n"
      "  --loss explicit|implicit\n"
      "                        explicit: RMSE, MAE; implicit (iALS): HR@10,\n"
      "                        NDCG@10 over each user's held-out items\n"
      "  --alpha A             iALS confidence slope (default 5, tuned)\n"
      "  --split leave-last-out  with --train alone: each user's latest\n"
      "                        rating by timestamp is held out (file needs\n"
      "                        timestamps; users with one rating train only)\n"
      "  --model-format auto|fp32|fp16|int8  encoding of the model devices\n"
      "                        download (default auto: the smallest they\n"
      "                        accept, int8 rows with f16 biases and 8-bit\n"
      "                        VB variances, ~29% of fp32)\n"
      "  --replay time         reveal training interactions in time order:\n"
      "                        in round r each device holds those up to the\n"
      "                        time r/rounds of them had happened (needs\n"
      "                        timestamps; with leave-last-out the test is\n"
      "                        what each user did next)\n"
      "  --negatives N         implicit: rank each held-out item among N\n"
      "                        seeded items the user never touched (ties "
      "count\n"
      "                        against it; 0 = all); default 99 (NCF) with\n"
      "                        leave-last-out, else the full top-10 list\n"
      "\n";
static const char usage_rounds[]
    = "Rounds:\n"
      "  --rounds N            federated rounds (default: the trainer's "
      "tuned\n"
      "                        epochs; 60 for explicit partial cohorts,\n"
      "                        ceil(2 / cohort share) for implicit ones)\n"
      "  --clients-per-round N cohort size (default: every client)\n"
      "  --fraction F          cohort as a fraction of clients, 0 < F <= 1\n"
      "  --local-epochs N      local passes per round for --algo grad (1)\n"
      "  --dropout P           a selected client vanishes after check-in "
      "with\n"
      "                        probability P (seeded; default 0)\n"
      "  --deadline S          round deadline in seconds (default 30)\n"
      "  --stats-latest 0|1    ALS/VBMF: the aggregator keeps the sum of\n"
      "                        every device's latest statistics, devices\n"
      "                        send the change of theirs (masked under\n"
      "                        --secure-agg). Default with partial cohorts\n"
      "                        and no --algo: 1 (VBMF, 60 rounds); 0: ALS\n"
      "                        carrying item statistics, which keeps the\n"
      "                        robust bounds (also the default with "
      "--poison)\n"
      "  --buffer K            asynchronous buffered mode (FedBuff): a round\n"
      "                        is a tick of continuous arrivals (--fraction "
      "/\n"
      "                        --clients-per-round of the idle devices "
      "arrive\n"
      "                        each tick); the aggregator steps whenever K\n"
      "                        reports are in. Plain aggregation (secure\n"
      "                        aggregation needs a fixed cohort): default\n"
      "                        --secure-agg off; default 0 (rounds)\n"
      "  --max-staleness S     buffered: reports on a model more than S\n"
      "                        versions old are refused (ESTALE) and the "
      "device\n"
      "                        retries on its next arrival (default 4)\n"
      "  --slow P              buffered: an arriving device is slow with\n"
      "                        probability P (seeded; default 0.2) ...\n"
      "  --slow-ticks N        ... and reports 1..N ticks later (default 3)\n"
      "  --stats-forget F      ALS or iALS with partial cohorts: carry item\n"
      "                        statistics across rounds, S = (1-F) S + round\n"
      "                        sums (default: the cohort's share of the\n"
      "                        clients; 1 = each round's sums alone)\n"
      "\n";
static const char usage_model[] =
    "Model:\n"
    "  --k K                 factor dimension (default 10; 32 implicit)\n"
    "  --reg R               ALS/grad factor penalty (default 13, plain\n"
    "                        ridge; tuned on validation slices)\n"
    "  --reg-bias R          ALS/grad bias penalty (default 3, tuned)\n"
    "  --lr LR               learning rate for --algo grad (0.01)\n"
    "  --algo als|grad|vbmf  federated ALS, gradient FedAvg or variational\n"
    "                        Bayes MF (default: vbmf for explicit ratings\n"
    "                        when every client takes part in every round,\n"
    "                        vbmf runs 16 rounds: a census round + 15\n"
    "                        sweeps; with partial cohorts: vbmf on every\n"
    "                        device's latest statistics, masked with\n"
    "                        SecAgg+ unless --secure-agg is set (private\n"
    "                        default); als (iALS) for --loss implicit, its\n"
    "                        statistics masked the same way with partial\n"
    "                        cohorts)\n"
    "  --server-opt sgd|momentum|adam\n"
    "                        server optimizer for --algo grad (sgd)\n"
    "  --recency H           implicit: devices fit their user vector with\n"
    "                        each interaction weighed 2^(-r/H), r = their\n"
    "                        interactions newer than it (default 3; 0 = all\n"
    "                        alike; interactions without timestamps are\n"
    "                        weighed alike)\n"
    "  --transition W        implicit: devices add W times the standardized\n"
    "                        similarity to their newest interaction to each\n"
    "                        item's score (FPMC's transition, tied factors;\n"
    "                        default 1, 0 = off, at most 100)\n"
    "  --svdpp W             explicit VBMF: devices move their user prior\n"
    "                        towards the items they rated (SVD++ with tied\n"
    "                        factors; default 0.3, 0 = off, at most 10)\n"
    "\n"
    ;
static const char usage_tail[] =
    "Execution:\n"
    "  --transport direct|inproc|ipc|tcp\n"
    "                        how messages travel (default inproc): direct\n"
    "                        calls the aggregator in-process with the same\n"
    "                        encrypted bytes; the others use NNG sockets\n"
    "  --threads N           worker threads for the cohort (default 4 per\n"
    "                        online CPU, at most 64: a worker waits out\n"
    "                        each NNG round trip, so more workers than\n"
    "                        cores keep the cores busy; results do not\n"
    "                        depend on it)\n"
    "  --seed S              seed for data, cohorts, dropout, keys (42)\n"
    "  --eval-every N        evaluate every N rounds (0: only after the last\n"
    "                        round). Every evaluated round is scored by the\n"
    "                        same evaluation users: inside the cohort when\n"
    "                        every device takes part (default: every round);\n"
    "                        otherwise by model-only visits that send no\n"
    "                        update and join no cohort (default: every\n"
    "                        ceil(evaluation users / cohort) rounds, about\n"
    "                        as many visits as training check-ins)\n"
    "  --eval-users N|all    evaluate a seeded sample of N users with test\n"
    "                        ratings (default all, or a 10000-user sample\n"
    "                        above 50000 users)\n"
    "  --diverse L           devices re-rank their top-10 lists for variety\n"
    "                        (fr_client_recommend_diverse, L in [0, 1];\n"
    "                        default 1 = plain ranking): the lists' HR@10,\n"
    "                        NDCG@10 (full ranking) and list metrics\n"
    "  --report cold-start   hold a seeded tenth of the users with >= 20\n"
    "                        training ratings out of training; after the\n"
    "                        last round each folds in its first 1, 3, 5,\n"
    "                        10, 20 ratings on its device: the summary's\n"
    "                        cold_start curve (RMSE vs the item-mean\n"
    "                        baseline; implicit: HR@10 vs popularity)\n"
    "  --new-items N[@R]     a catalog that grows: the data's last N items\n"
    "                        (in the order the files first mention them)\n"
    "                        join the aggregator's catalog after round\n"
    "                        R (default half the rounds; @0: present from\n"
    "                        the start, the control); the summary's\n"
    "                        new_items compares their RMSE with old items\n"
    "                        of the same training rating counts\n"
    "  --no-reference        skip the centralized fedrec-train reference\n"
    "  --verify-adverts      secure rounds: devices verify every neighbour's\n"
    "                        advert signature themselves too\n"
    "                        (fr_client_config.verify_adverts; default: the\n"
    "                        aggregator's check on arrival only)\n"
    "  --mpi                 one rank of a run spread over processes (run\n"
    "                        it as mpirun -np N fedrec-sim --mpi ...): rank\n"
    "                        r serves the devices u with u % N == r from its\n"
    "                        own edge aggregator, rank 0 also the root they\n"
    "                        report to over NNG tcp (docs/DEPLOY-TREE.md);\n"
    "                        per-round sums only (every device every round,\n"
    "                        or --algo grad); secure aggregation within\n"
    "                        each rank's edge\n"
    "  --mpi-host HOST       the address other nodes reach rank 0 at\n"
    "                        (default 127.0.0.1: every rank on one host)\n"
    "  --shared-model        devices of the process share one downloaded,\n"
    "                        verified model (fr_model_cache) instead of each\n"
    "                        fetching its own: faster, fewer bytes down;\n"
    "                        for very large populations\n"
    "\n";
static const char usage_output[] =
    "Output:\n"
    "  --json                JSON Lines on stdout: one object per round with\n"
    "                        round, rmse, mae (explicit) or hr10, ndcg10\n"
    "                        (implicit), clients, dropped, bytes_up,\n"
    "                        bytes_down, seconds; then a summary line with the\n"
    "                        same keys plus rounds and the reference\n"
    "  --out DIR             write metrics.csv, summary.json and SVG plots\n"
    "  --progress, --no-progress\n"
    "                        progress bar on stderr (default: if a TTY)\n"
    "  --quiet               no text summary\n"
    "  --state DIR           checkpoint the aggregator's model there after\n"
    "                        every round, in fedrec-aggregator's format\n"
    "                        (--state of fedrec-aggregator; a checkpoint\n"
    "                        already in DIR is resumed from)\n"
    "  --config FILE         'name = value' lines with the flag names\n"
    "                        (fedrec-aggregator's format; '#' comments;\n"
    "                        switches take true/false); flags given on\n"
    "                        the command line override the file\n"
    "  --sweep NAME=V1,V2,.. repeatable: run the grid of every combination\n"
    "                        (last --sweep varies fastest); one JSON line\n"
    "                        per run on stdout: run, sweep, config,\n"
    "                        config_hash, seed, version, git, summary;\n"
    "                        with --out DIR: DIR/sweep.csv (final-round\n"
    "                        metrics per run) and DIR/run-NNNN/\n"
    "  --help                this text\n"
    "\n"
    "Exit status: 0 on success, 1 on a run error, 2 on a usage error.\n";

const char *
fri_sim_usage(void)
{
    static char buf[sizeof(usage_head) + sizeof(usage_rounds)
        + sizeof(usage_model) + sizeof(usage_tail) + sizeof(usage_output)
        + 8192];
    if (buf[0] == '\0') {
        snprintf(buf, sizeof(buf), "%s%s%s%s%s%s%s", usage_head, usage_rounds,
            usage_model, fri_sim_privacy_usage(), fri_sim_poison_usage(),
            usage_tail, usage_output);
    }
    return buf;
}

const char *
fri_sim_transport_name(fri_sim_transport t)
{
    switch (t) {
    case FRI_SIM_DIRECT:
        return "direct";
    case FRI_SIM_INPROC:
        return "inproc";
    case FRI_SIM_IPC:
        return "ipc";
    case FRI_SIM_TCP:
        return "tcp";
    }
    return "?";
}

// Workers block on each synchronous NNG round trip to the in-process
// aggregator, so 4 per core keep the cores busy (ML-100K u1, private
// default, 20 rounds on 2 cores: 27.4 s wall with 2 workers, 21.9 s with
// 8; the results are the same).
static uint32_t
default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) {
        n = 1;
    }
    return n > 16 ? 64u : (uint32_t) (4 * n);
}

void
fri_sim_config_init(fri_sim_config *c)
{
    fri_train_config tc;
    memset(c, 0, sizeof(*c));
    fri_train_config_init(&tc, FRI_TRAIN_ALS);
    c->synthetic = 1;
    fri_synth_config_init(&c->synth);
    c->holdout = 0.2;
    c->implicit = 0;
    c->alpha = tc.alpha;
    c->rounds = tc.epochs;
    c->clients_per_round = 0;
    c->fraction = 1.0;
    c->local_epochs = 1;
    c->dropout = 0.0;
    c->diverse = 1.0f;
    c->recency = FRI_RECENCY_DEFAULT;
    c->svdpp   = FRI_SVDPP_DEFAULT;
    c->transition = FRI_TRANSITION_DEFAULT;
    c->buffer        = 0;
    c->max_staleness = 4;
    c->slow          = 0.2;
    c->slow_ticks    = 3;
    c->stats_latest = -1;
    c->deadline_s = 30.0;
    c->k = tc.k;
    c->reg = tc.reg;
    c->reg_bias = tc.reg_bias;
    c->weighted = tc.weighted;
    c->init_std = tc.init_std;
    c->lr = tc.lr;
    c->algo = FRI_SIM_ALS;
    c->server_opt = FRI_SIM_OPT_SGD;
    c->threads = default_threads();
    c->seed = 42;
    c->transport = FRI_SIM_INPROC;
    c->eval_every = 1;
    c->eval_users = 0;
    c->reference = 1;
    c->json = 0;
    c->out_dir = NULL;
    c->progress = -1;
    c->quiet = 0;
    fri_sim_privacy_init(&c->priv);
    fri_sim_poison_init(&c->poison);
}

static fr_err
bad(char *err, size_t cap, const char *flag, const char *val,
    const char *what)
{
    if (cap > 0) {
        snprintf(err, cap, "%s: invalid value '%s' (%s)", flag,
                 val ? val : "", what);
    }
    return FR_EINVAL;
}

static int
parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+') {
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = (uint64_t) v;
    return 0;
}

static int
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v;
    if (parse_u64(s, lo, hi, &v) != 0) {
        return -1;
    }
    *out = (uint32_t) v;
    return 0;
}

static int
parse_dbl(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo ||
        v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int
parse_flt(const char *s, double lo, double hi, float *out)
{
    double v;
    if (parse_dbl(s, lo, hi, &v) != 0) {
        return -1;
    }
    *out = (float) v;
    return 0;
}

// Every flag takes a value except the switches; apply() and the privacy
// and poisoning modules (privacy.c, poison.c) check the values.
static const char *const value_flags[]  = { "train", "test", "users",
     "synthetic", "holdout", "loss", "split", "negatives", "replay",
     "model-format", "alpha", "rounds", "clients-per-round", "fraction",
     "local-epochs", "dropout", "stats-latest", "stats-forget", "deadline", "k",
     "reg", "buffer", "max-staleness", "slow", "slow-ticks", "reg-bias", "lr",
     "algo", "server-opt", "threads", "seed", "eval-every", "eval-users",
     "report", "diverse", "recency", "svdpp", "transition", "transport", "out", "state",
     "new-items", "item-features", "mpi-host",
     // Read before parsing: fri_sim_expand_config and fedrec-sim's main.
     "config", "sweep",
     // privacy.c
     "secure-agg", "clip", "dp", "noise-multiplier", "dp-delta", "pseudo-items",
     "attack",
     // poison.c (--attack is shared with privacy.c)
     "malicious", "target-item", "attack-scale", "robust" };
static const char *const switch_flags[] = {
    "json", "no-reference", "shared-model", "progress", "no-progress",
    "quiet", "verify-adverts", "mpi"};
#define N_VALUE (sizeof(value_flags) / sizeof(value_flags[0]))
#define N_SWITCH (sizeof(switch_flags) / sizeof(switch_flags[0]))
#define OPT_HELP 'h'
#define OPT_BASE 256

// Which flags were given, for the defaults that depend on them.
typedef struct {
    int have_synth, have_train, have_cpr, have_frac;
    int have_algo, have_rounds;
    int have_k, have_reg, have_alpha;
} given;

static int
is_switch(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SWITCH; i++) {
        if (strlen(switch_flags[i]) == len &&
            strncmp(name, switch_flags[i], len) == 0) {
            return 1;
        }
    }
    return 0;
}

// Applies one flag ("--name"; val NULL for a switch).
static fr_err
apply(fri_sim_config *c, given *st, const char *flag, const char *val,
      char *err, size_t err_cap)
{
    fr_err pe = FR_OK;
    if (strcmp(flag, "--json") == 0) {
        c->json = 1;
    } else if (strcmp(flag, "--no-reference") == 0) {
        c->reference = 0;
    } else if (strcmp(flag, "--shared-model") == 0) {
        c->shared_cache = 1;
    } else if (strcmp(flag, "--verify-adverts") == 0) {
        c->verify_adverts = 1;
    } else if (strcmp(flag, "--mpi") == 0) {
        c->mpi = 1;
    } else if (strcmp(flag, "--mpi-host") == 0) {
        if (val[0] == '\0' || strlen(val) > 200 || strpbrk(val, "/: ") != NULL) {
            return bad(err, err_cap, flag, val, "a host name or IPv4 address");
        }
        c->mpi_host = val;
    } else if (strcmp(flag, "--progress") == 0) {
        c->progress = 1;
    } else if (strcmp(flag, "--no-progress") == 0) {
        c->progress = 0;
    } else if (strcmp(flag, "--quiet") == 0) {
        c->quiet = 1;
    } else if (strcmp(flag, "--train") == 0) {
        c->train_path = val;
        c->synthetic = 0;
        st->have_train = 1;
    } else if (strcmp(flag, "--test") == 0) {
        c->test_path = val;
    } else if (strcmp(flag, "--users") == 0) {
        c->users_path = val;
    } else if (strcmp(flag, "--item-features") == 0) {
        c->item_features_path = val;
    } else if (strcmp(flag, "--synthetic") == 0) {
        char e2[160];
        if (fri_synth_config_parse(&c->synth, val, e2, sizeof(e2)) !=
            FR_OK) {
            return bad(err, err_cap, flag, val, e2);
        }
        c->synthetic = 1;
        st->have_synth = 1;
    } else if (strcmp(flag, "--holdout") == 0) {
        if (parse_dbl(val, 0.01, 0.99, &c->holdout) != 0) {
            return bad(err, err_cap, flag, val, "0.01..0.99");
        }
    } else if (strcmp(flag, "--loss") == 0) {
        if (strcmp(val, "explicit") == 0) {
            c->implicit = 0;
        } else if (strcmp(val, "implicit") == 0) {
            c->implicit = 1;
        } else {
            return bad(err, err_cap, flag, val, "explicit|implicit");
        }
    } else if (strcmp(flag, "--split") == 0) {
        if (strcmp(val, "leave-last-out") == 0) {
            c->leave_last = 1;
        } else if (strcmp(val, "random") == 0) {
            c->leave_last = 0;
        } else {
            return bad(err, err_cap, flag, val, "random|leave-last-out");
        }
    } else if (strcmp(flag, "--model-format") == 0) {
        int mf = fri_agg_model_format_parse(val);
        if (mf < 0) {
            return bad(err, err_cap, flag, val, "auto|fp32|fp16|int8");
        }
        c->model_format = mf;
    } else if (strcmp(flag, "--replay") == 0) {
        if (strcmp(val, "time") == 0) {
            c->replay_time = 1;
        } else if (strcmp(val, "off") == 0) {
            c->replay_time = 0;
        } else {
            return bad(err, err_cap, flag, val, "time|off");
        }
    } else if (strcmp(flag, "--negatives") == 0) {
        if (parse_u32(val, 0, UINT32_MAX, &c->negatives) != 0) {
            return bad(err, err_cap, flag, val, "an integer >= 0");
        }
        c->negatives_set = 1;
    } else if (strcmp(flag, "--alpha") == 0) {
        st->have_alpha = 1;
        if (parse_flt(val, 0.0, 1e6, &c->alpha) != 0) {
            return bad(err, err_cap, flag, val, "0..1e6");
        }
    } else if (strcmp(flag, "--rounds") == 0) {
        st->have_rounds = 1;
        if (parse_u32(val, 1, 1000000, &c->rounds) != 0) {
            return bad(err, err_cap, flag, val, "1..1000000");
        }
    } else if (strcmp(flag, "--clients-per-round") == 0) {
        if (parse_u32(val, 1, UINT32_MAX, &c->clients_per_round) != 0) {
            return bad(err, err_cap, flag, val, ">= 1");
        }
        st->have_cpr = 1;
    } else if (strcmp(flag, "--fraction") == 0) {
        if (parse_dbl(val, 1e-9, 1.0, &c->fraction) != 0) {
            return bad(err, err_cap, flag, val, "0 < F <= 1");
        }
        st->have_frac = 1;
    } else if (strcmp(flag, "--local-epochs") == 0) {
        if (parse_u32(val, 1, 1000, &c->local_epochs) != 0) {
            return bad(err, err_cap, flag, val, "1..1000");
        }
    } else if (strcmp(flag, "--dropout") == 0) {
        if (parse_dbl(val, 0.0, 1.0, &c->dropout) != 0) {
            return bad(err, err_cap, flag, val, "0..1");
        }
    } else if (strcmp(flag, "--stats-latest") == 0) {
        uint32_t v = 0;
        if (parse_u32(val, 0, 1, &v) != 0) {
            return bad(err, err_cap, flag, val, "0 or 1");
        }
        c->stats_latest = (int) v;
    } else if (strcmp(flag, "--buffer") == 0) {
        if (parse_u32(val, 0, 1000000, &c->buffer) != 0) {
            return bad(err, err_cap, flag, val, "0..1000000");
        }
    } else if (strcmp(flag, "--max-staleness") == 0) {
        if (parse_u32(val, 0, 1000, &c->max_staleness) != 0) {
            return bad(err, err_cap, flag, val, "0..1000");
        }
    } else if (strcmp(flag, "--slow") == 0) {
        if (parse_dbl(val, 0.0, 1.0, &c->slow) != 0) {
            return bad(err, err_cap, flag, val, "0..1");
        }
    } else if (strcmp(flag, "--slow-ticks") == 0) {
        if (parse_u32(val, 1, 1000, &c->slow_ticks) != 0) {
            return bad(err, err_cap, flag, val, "1..1000");
        }
    } else if (strcmp(flag, "--stats-forget") == 0) {
        if (parse_dbl(val, 1e-6, 1.0, &c->stats_forget) != 0) {
            return bad(err, err_cap, flag, val, "0 < F <= 1");
        }
    } else if (strcmp(flag, "--deadline") == 0) {
        if (parse_dbl(val, 0.1, 86400.0, &c->deadline_s) != 0) {
            return bad(err, err_cap, flag, val, "0.1..86400 s");
        }
    } else if (strcmp(flag, "--k") == 0) {
        st->have_k = 1;
        if (parse_u32(val, 1, FRI_MF_MAX_K, &c->k) != 0) {
            return bad(err, err_cap, flag, val, "1..256");
        }
    } else if (strcmp(flag, "--reg") == 0) {
        st->have_reg = 1;
        if (parse_flt(val, 0.0, 1e6, &c->reg) != 0) {
            return bad(err, err_cap, flag, val, "0..1e6");
        }
    } else if (strcmp(flag, "--reg-bias") == 0) {
        if (parse_flt(val, 0.0, 1e6, &c->reg_bias) != 0) {
            return bad(err, err_cap, flag, val, "0..1e6");
        }
    } else if (strcmp(flag, "--lr") == 0) {
        if (parse_flt(val, 1e-9, 1e3, &c->lr) != 0) {
            return bad(err, err_cap, flag, val, "0 < lr <= 1000");
        }
    } else if (strcmp(flag, "--algo") == 0) {
        if (strcmp(val, "als") == 0) {
            c->algo = FRI_SIM_ALS;
        } else if (strcmp(val, "grad") == 0) {
            c->algo = FRI_SIM_GRAD;
        } else if (strcmp(val, "vbmf") == 0) {
            c->algo = FRI_SIM_VBMF;
        } else {
            return bad(err, err_cap, flag, val, "als|grad|vbmf");
        }
        st->have_algo = 1;
    } else if (strcmp(flag, "--server-opt") == 0) {
        if (strcmp(val, "sgd") == 0) {
            c->server_opt = FRI_SIM_OPT_SGD;
        } else if (strcmp(val, "momentum") == 0) {
            c->server_opt = FRI_SIM_OPT_MOMENTUM;
        } else if (strcmp(val, "adam") == 0) {
            c->server_opt = FRI_SIM_OPT_ADAM;
        } else {
            return bad(err, err_cap, flag, val, "sgd|momentum|adam");
        }
    } else if (strcmp(flag, "--threads") == 0) {
        if (parse_u32(val, 1, 256, &c->threads) != 0) {
            return bad(err, err_cap, flag, val, "1..256");
        }
    } else if (strcmp(flag, "--seed") == 0) {
        if (parse_u64(val, 0, UINT64_MAX, &c->seed) != 0) {
            return bad(err, err_cap, flag, val, "unsigned integer");
        }
    } else if (strcmp(flag, "--eval-every") == 0) {
        if (parse_u32(val, 0, 1000000, &c->eval_every) != 0) {
            return bad(err, err_cap, flag, val, "0..1000000");
        }
        c->eval_every_set = 1;
    } else if (strcmp(flag, "--recency") == 0) {
        if (parse_flt(val, 0.0, FRI_RECENCY_MAX, &c->recency) != 0) {
            return bad(err, err_cap, flag, val, "0..1e6");
        }
    } else if (strcmp(flag, "--transition") == 0) {
        if (parse_flt(val, 0.0, FRI_TRANSITION_MAX, &c->transition) != 0) {
            return bad(err, err_cap, flag, val, "0..100");
        }
    } else if (strcmp(flag, "--svdpp") == 0) {
        if (parse_flt(val, 0.0, FRI_SVDPP_MAX, &c->svdpp) != 0) {
            return bad(err, err_cap, flag, val, "0..10");
        }
    } else if (strcmp(flag, "--diverse") == 0) {
        if (parse_flt(val, 0.0, 1.0, &c->diverse) != 0) {
            return bad(err, err_cap, flag, val, "0..1");
        }
    } else if (strcmp(flag, "--report") == 0) {
        if (strcmp(val, "cold-start") != 0) {
            return bad(err, err_cap, flag, val, "cold-start");
        }
        c->report_cold_start = 1;
    } else if (strcmp(flag, "--new-items") == 0) {
        char  nb[32];
        const char *at = strchr(val, '@');
        size_t      nl = at != NULL ? (size_t) (at - val) : strlen(val);
        if (nl == 0 || nl >= sizeof(nb)) {
            return bad(err, err_cap, flag, val, "N or N@R");
        }
        memcpy(nb, val, nl);
        nb[nl] = 0;
        c->new_items_round = 0;
        c->new_items_at    = at != NULL;
        if (parse_u32(nb, 1, FRI_AGG_MAX_ITEMS, &c->new_items) != 0 ||
            (at != NULL &&
             parse_u32(at + 1, 0, 1000000, &c->new_items_round) != 0)) {
            return bad(err, err_cap, flag, val, "N or N@R, N >= 1, R >= 0");
        }
    } else if (strcmp(flag, "--eval-users") == 0) {
        if (strcmp(val, "all") == 0) {
            c->eval_users = 0;
        } else if (parse_u32(val, 1, UINT32_MAX, &c->eval_users) != 0) {
            return bad(err, err_cap, flag, val, "N >= 1 or all");
        }
    } else if (strcmp(flag, "--transport") == 0) {
        if (strcmp(val, "direct") == 0) {
            c->transport = FRI_SIM_DIRECT;
        } else if (strcmp(val, "inproc") == 0) {
            c->transport = FRI_SIM_INPROC;
        } else if (strcmp(val, "ipc") == 0) {
            c->transport = FRI_SIM_IPC;
        } else if (strcmp(val, "tcp") == 0) {
            c->transport = FRI_SIM_TCP;
        } else {
            return bad(err, err_cap, flag, val,
                       "direct|inproc|ipc|tcp");
        }
    } else if (strcmp(flag, "--out") == 0) {
        if (*val == '\0') {
            return bad(err, err_cap, flag, val, "empty path");
        }
        c->out_dir = val;
    } else if (strcmp(flag, "--state") == 0) {
        if (*val == '\0') {
            return bad(err, err_cap, flag, val, "empty path");
        }
        c->state_dir = val;
    } else if (strcmp(flag, "--config") == 0) {
        // fri_sim_expand_config replaces it with the file's settings.
        return bad(err, err_cap, flag, val,
                   "a config file is read before the options: "
                   "fri_sim_expand_config");
    } else if (strcmp(flag, "--sweep") == 0) {
        if (err_cap > 0) {
            snprintf(err, err_cap,
                     "--sweep runs a grid of runs: give it to fedrec-sim's "
                     "command line (or use fedrec.sweep in Python), not to "
                     "one run");
        }
        return FR_EINVAL;
    } else if (fri_sim_poison_flag(&c->poison, flag, val, &pe, err, err_cap)) {
        // Poisoning and robust aggregation (poison.h); before the
        // privacy flags, which own the other --attack values.
        if (pe != FR_OK) {
            return pe;
        }
    } else if (fri_sim_privacy_flag(&c->priv, flag, val, &pe, err, err_cap)) {
        if (pe != FR_OK) {
            return pe;
        }
    } else {
        // Only names from the tables reach here, and each is handled.
        if (err_cap > 0) {
            snprintf(err, err_cap, "unknown option %s (see --help)", flag);
        }
        return FR_EINVAL;
    }
    return FR_OK;
}

fr_err
fri_sim_parse_args(fri_sim_config *c, int argc, char **argv, int *help,
                   char *err, size_t err_cap)
{
    given  g  = {0};
    fr_err pe = FR_OK;
    *help     = 0;
    if (err_cap > 0) {
        err[0] = '\0';
    }
    struct option opts[N_VALUE + N_SWITCH + 2];
    for (size_t i = 0; i < N_VALUE; i++) {
        opts[i] = (struct option){value_flags[i], required_argument, NULL,
                                  OPT_BASE + (int) i};
    }
    for (size_t i = 0; i < N_SWITCH; i++) {
        opts[N_VALUE + i] = (struct option){switch_flags[i], no_argument,
                                            NULL, OPT_BASE + (int) (N_VALUE + i)};
    }
    opts[N_VALUE + N_SWITCH] = (struct option){"help", no_argument, NULL,
                                               OPT_HELP};
    opts[N_VALUE + N_SWITCH + 1] = (struct option){NULL, 0, NULL, 0};
    // "+": stop at the first non-option; ":" reports a missing value as ':'.
    optind   = 0; // glibc: re-initialise (parse may run more than once)
    opterr   = 0;
    int last = 1; // first argv element not consumed by an option
    for (;;) {
        int at = optind == 0 ? 1 : optind;
        int ch = getopt_long(argc, argv, "+:h", opts, NULL);
        if (ch == -1) {
            break;
        }
        const char *tok = at < argc ? argv[at] : "";
        size_t nl = strncmp(tok, "--", 2) == 0 ? strcspn(tok + 2, "=") : 0;
        if (ch == '?' || ch == ':') {
            if (err_cap == 0) {
                return FR_EINVAL;
            }
            if (ch == ':') {
                snprintf(err, err_cap, "--%.*s needs a value", (int) nl,
                         tok + 2);
            } else if (nl == 0) {
                snprintf(err, err_cap, "unexpected argument '%s' (see --help)",
                         tok);
            } else if (tok[2 + nl] == '=' &&
                       (is_switch(tok + 2, nl) ||
                        (nl == 4 && strncmp(tok + 2, "help", 4) == 0))) {
                snprintf(err, err_cap, "--%.*s takes no value", (int) nl,
                         tok + 2);
            } else {
                snprintf(err, err_cap, "unknown option --%.*s (see --help)",
                         (int) nl, tok + 2);
            }
            return FR_EINVAL;
        }
        if (ch == OPT_HELP) {
            *help = 1;
            return FR_OK;
        }
        const char *name = ch - OPT_BASE < (int) N_VALUE
                               ? value_flags[ch - OPT_BASE]
                               : switch_flags[ch - OPT_BASE - (int) N_VALUE];
        // getopt_long accepts unambiguous prefixes; flags are exact.
        if (nl != strlen(name) || strncmp(tok + 2, name, nl) != 0) {
            if (err_cap > 0) {
                snprintf(err, err_cap, "unknown option --%.*s (see --help)",
                         (int) nl, tok + 2);
            }
            return FR_EINVAL;
        }
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", name);
        pe = apply(c, &g, flag, optarg, err, err_cap);
        if (pe != FR_OK) {
            return pe;
        }
        last = optind;
    }
    // getopt_long takes a bare "--" as the end of the options: the
    // simulator has no operands, so it is as unexpected as any other.
    if (optind < argc || (last < argc && optind > last &&
                          strcmp(argv[last], "--") == 0)) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "unexpected argument '%s' (see --help)",
                     optind < argc ? argv[optind] : argv[last]);
        }
        return FR_EINVAL;
    }
    if (g.have_train && g.have_synth) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "--train and --synthetic exclude each "
                                   "other");
        }
        return FR_EINVAL;
    }
    if (c->leave_last && (!g.have_train || c->test_path != NULL)) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "--split leave-last-out needs --train "
                                   "alone (one file with timestamps)");
        }
        return FR_EINVAL;
    }
    if (c->replay_time && !g.have_train) {
        if (err_cap > 0) {
            snprintf(err, err_cap,
                "--replay time needs --train (rating "
                "files with timestamps)");
        }
        return FR_EINVAL;
    }
    if (c->item_features_path != NULL && !g.have_train) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "--item-features needs --train (the "
                                   "item ids of a rating file)");
        }
        return FR_EINVAL;
    }
    if (c->users_path != NULL && !g.have_train) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "--users needs --train (the user ids of "
                                   "a rating file)");
        }
        return FR_EINVAL;
    }
    if (c->negatives_set && !c->implicit) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "--negatives needs --loss implicit");
        }
        return FR_EINVAL;
    }
    if (!c->leave_last && g.have_train != (c->test_path != NULL)) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "--train and --test go together");
        }
        return FR_EINVAL;
    }
    if (g.have_cpr && g.have_frac) {
        if (err_cap > 0) {
            snprintf(err, err_cap,
                     "--clients-per-round and --fraction exclude each other");
        }
        return FR_EINVAL;
    }
    if (g.have_frac) {
        c->clients_per_round = 0;
    }
    if (!g.have_algo) {
        c->algo = c->implicit ? FRI_SIM_ALS : FRI_SIM_VBMF;
    }
    c->algo_auto  = !g.have_algo;
    c->rounds_set = g.have_rounds;
    if (c->implicit) {
        // The tuned iALS settings, unless given.
        fri_train_config ic;
        fri_train_config_init_implicit(&ic);
        c->k        = g.have_k ? c->k : ic.k;
        c->reg      = g.have_reg ? c->reg : ic.reg;
        c->alpha    = g.have_alpha ? c->alpha : ic.alpha;
        c->rounds   = g.have_rounds ? c->rounds : ic.epochs;
        c->init_std = ic.init_std;
    }
    if (c->algo == FRI_SIM_VBMF && c->implicit) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "--algo vbmf needs explicit ratings");
        }
        return FR_EINVAL;
    }
    if (c->algo == FRI_SIM_VBMF && !g.have_rounds) {
        c->rounds = FRI_SIM_VBMF_ROUNDS;
    }
    pe = fri_sim_poison_check(c, err, err_cap);
    return pe != FR_OK ? pe : fri_sim_privacy_check(c, err, err_cap);
}

uint32_t
fri_sim_new_items_round(const fri_sim_config *c)
{
    return c->new_items_at ? c->new_items_round : c->rounds / 2;
}

size_t
fri_sim_cohort_size(const fri_sim_config *c, size_t n_eligible)
{
    size_t cohort;
    if (c->clients_per_round > 0) {
        cohort = c->clients_per_round;
    } else {
        cohort = (size_t) ceil(c->fraction * (double) n_eligible - 1e-9);
    }
    if (cohort < 1) {
        cohort = 1;
    }
    return cohort > n_eligible ? n_eligible : cohort;
}

// The statistical bounds act on each plain update; masked ones reach the
// aggregator only as a sum (the summary then says robust false).
static void
robust_effective(fri_sim_config *c)
{
    if (c->priv.secagg != 0) {
        c->poison.robust = 0;
    }
}

// Private by default: the deployment profile (partial cohorts) masks its
// statistics (SecAgg+) unless --secure-agg says otherwise, or something
// that needs each plain update is asked for (poisoning, pseudo-items,
// --clip, DP).
static void
private_default(fri_sim_config *c, size_t eligible)
{
    fri_sim_privacy *pv = &c->priv;
    if (!pv->secagg_set && pv->clip == 0.0f && pv->dp == 0 &&
        c->buffer == 0 &&
        pv->pseudo_rho == 0.0f && c->poison.kind == FRI_SIM_POISON_NONE &&
        fri_sim_cohort_size(c, eligible) >= 2) {
        pv->secagg = 2;
    }
}

void
fri_sim_config_resolve(fri_sim_config *c, const fri_sim_pop *p)
{
    size_t eligible = 0;
    for (uint32_t u = 0; u < p->n_users; u++) {
        eligible += p->train.ptr[u + 1] > p->train.ptr[u];
    }
    int partial = fri_sim_cohort_size(c, eligible) < eligible;
    if (c->algo_auto && c->implicit && partial) {
        // iALS with partial cohorts: its per-round statistics masked
        // (SPEC S1c), private by default like the explicit profile, and
        // carried across rounds (fri_agg_config.stats_forget); enough
        // rounds for every device to report about twice (chosen on the
        // leave-last-out validation item: docs/BENCHMARKS.md, "Implicit
        // feedback with partial cohorts").
        private_default(c, eligible);
        if (!c->rounds_set) {
            double per = (double) eligible /
                         (double) fri_sim_cohort_size(c, eligible);
            double r   = ceil(2.0 * per);
            r          = r < (double) c->rounds ? (double) c->rounds : r;
            c->rounds  = r > FRI_SIM_IALS_MAX_ROUNDS ? FRI_SIM_IALS_MAX_ROUNDS
                                                     : (uint32_t) r;
        }
    }
    if (!c->algo_auto || c->algo != FRI_SIM_VBMF) {
        robust_effective(c);
        return;
    }
    if (!partial && c->priv.secagg_set && c->priv.secagg != 0) {
        // Every device in every round, masked: per-round VBMF statistics
        // cannot be masked, their latest-statistics deltas can.
        c->stats_latest = 1;
    }
    // Poisoning experiments keep the ALS path with the robust bounds
    // unless --stats-latest 1 asks otherwise.
    if (partial && (c->stats_latest == 1 ||
                    (c->stats_latest == -1 &&
                     c->poison.kind == FRI_SIM_POISON_NONE))) {
        // Partial cohorts: VBMF on the sum of every device's latest
        // statistics (docs/BENCHMARKS.md, private default).
        c->stats_latest = 1;
        // The aggregator cannot apply its statistical bounds to changes
        // of contributions (docs/ROBUSTNESS.md); the summary says so.
        c->poison.robust = 0;
        if (!c->rounds_set) {
            c->rounds = FRI_SIM_LATEST_ROUNDS;
        }
        private_default(c, eligible);
    } else if (partial) {
        // --stats-latest 0 (or poisoning): ALS with item statistics
        // carried across rounds (keeps the robust bounds).
        fri_train_config tc;
        fri_train_config_init(&tc, FRI_TRAIN_ALS);
        c->algo = FRI_SIM_ALS;
        if (!c->rounds_set) {
            c->rounds = tc.epochs;
        }
        private_default(c, eligible);
    }
    robust_effective(c);
}

// ---- --config FILE and the settings of a command line ----------------------

// Value flags, by name.
static int
is_value_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < N_VALUE; i++) {
        if (strlen(value_flags[i]) == len &&
            strncmp(name, value_flags[i], len) == 0) {
            return 1;
        }
    }
    return 0;
}

typedef struct argv_buf {
    char **v;
    int    n, cap;
} argv_buf;

static fr_err
argv_push(argv_buf *b, const char *a, size_t len)
{
    if (b->n + 1 >= b->cap) {
        int    nc = b->cap ? b->cap * 2 : 16;
        char **nv = realloc(b->v, sizeof(*nv) * (size_t) nc);
        if (nv == NULL) {
            return FR_ENOMEM;
        }
        b->v = nv;
        b->cap = nc;
    }
    char *s = malloc(len + 1);
    if (s == NULL) {
        return FR_ENOMEM;
    }
    memcpy(s, a, len);
    s[len] = '\0';
    b->v[b->n++] = s;
    b->v[b->n] = NULL;
    return FR_OK;
}

void
fri_sim_argv_free(int argc, char **argv)
{
    for (int i = 0; argv != NULL && i < argc; i++) {
        free(argv[i]);
    }
    free(argv);
}

// One setting of a config file: "--name=value", or "--name" for a switch
// whose value is true (a false one is left out).
static fr_err
config_setting(void *ctx, const char *name, const char *val,
               const char *where, char *err, size_t err_cap)
{
    argv_buf *b = ctx;
    size_t    nl = strlen(name);
    char      arg[1200];
    if (is_switch(name, nl)) {
        if (strcmp(val, "1") == 0 || strcmp(val, "true") == 0 ||
            strcmp(val, "yes") == 0 || strcmp(val, "on") == 0) {
            snprintf(arg, sizeof(arg), "--%s", name);
            return argv_push(b, arg, strlen(arg));
        }
        if (strcmp(val, "0") == 0 || strcmp(val, "false") == 0 ||
            strcmp(val, "no") == 0 || strcmp(val, "off") == 0) {
            return FR_OK;
        }
        if (err_cap > 0) {
            snprintf(err, err_cap,
                     "%s: %s is a switch: its value is true or false, not "
                     "'%s'",
                     where, name, val);
        }
        return FR_EINVAL;
    }
    if (!is_value_flag(name, nl)) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s: unknown option '%s' (see --help)",
                     where, name);
        }
        return FR_EINVAL;
    }
    int n = snprintf(arg, sizeof(arg), "--%s=%s", name, val);
    if (n < 0 || (size_t) n >= sizeof(arg)) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s: value too long", where);
        }
        return FR_EINVAL;
    }
    return argv_push(b, arg, (size_t) n);
}

fr_err
fri_sim_expand_config(int argc, char **argv, int *out_argc, char ***out_argv,
                      char *err, size_t err_cap)
{
    argv_buf file = {0}, rest = {0};
    fr_err   e = FR_OK;
    *out_argc = 0;
    *out_argv = NULL;
    e = argv_push(&rest, argc > 0 ? argv[0] : "fedrec-sim",
                  strlen(argc > 0 ? argv[0] : "fedrec-sim"));
    for (int i = 1; e == FR_OK && i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            // The parser reports what follows; nothing is a flag there.
            for (; e == FR_OK && i < argc; i++) {
                e = argv_push(&rest, argv[i], strlen(argv[i]));
            }
            break;
        }
        const char *path = NULL;
        if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                if (err_cap > 0) {
                    snprintf(err, err_cap, "--config needs a value");
                }
                e = FR_EINVAL;
                break;
            }
            path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
        }
        if (path != NULL) {
            e = fri_kv_file_read(path, "--config", config_setting, &file,
                                 err, err_cap);
            continue;
        }
        e = argv_push(&rest, a, strlen(a));
        // A value flag's separate value is a value, whatever it looks like.
        size_t nl = strncmp(a, "--", 2) == 0 ? strcspn(a + 2, "=") : 0;
        if (e == FR_OK && nl > 0 && a[2 + nl] == '\0' &&
            is_value_flag(a + 2, nl) && i + 1 < argc) {
            i++;
            e = argv_push(&rest, argv[i], strlen(argv[i]));
        }
    }
    if (e == FR_OK) {
        // argv[0], the file's settings, then the command line's flags
        // (which override them: a later value replaces an earlier one).
        argv_buf all = {0};
        for (int i = 0; e == FR_OK && i < rest.n; i++) {
            e = argv_push(&all, rest.v[i], strlen(rest.v[i]));
            for (int j = 0; e == FR_OK && i == 0 && j < file.n; j++) {
                e = argv_push(&all, file.v[j], strlen(file.v[j]));
            }
        }
        if (e == FR_OK) {
            *out_argc = all.n;
            *out_argv = all.v;
        } else {
            fri_sim_argv_free(all.n, all.v);
        }
    }
    if (e == FR_ENOMEM && err_cap > 0) {
        snprintf(err, err_cap, "out of memory");
    }
    fri_sim_argv_free(file.n, file.v);
    fri_sim_argv_free(rest.n, rest.v);
    return e;
}

// Flags that change what is printed or written, not the run.
static int
output_only(const char *name)
{
    static const char *const names[] = {"json",     "out",         "progress",
                                        "no-progress", "quiet"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

fr_err
fri_sim_settings(int argc, char **argv, fri_sim_setting *out, size_t cap,
                 size_t *n_out)
{
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            continue; // the parser refused anything else already
        }
        size_t      nl = strcspn(a + 2, "=");
        const char *val = NULL;
        if (a[2 + nl] == '=') {
            val = a + 3 + nl;
        } else if (is_value_flag(a + 2, nl) && i + 1 < argc) {
            val = argv[++i];
        }
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int) nl, a + 2);
        if (output_only(name)) {
            continue;
        }
        // A later value replaces an earlier one, as in the parser.
        size_t j = 0;
        while (j < n && strcmp(out[j].name, name) != 0) {
            j++;
        }
        if (j == n) {
            if (n == cap) {
                return FR_ENOSPC;
            }
            n++;
        }
        snprintf(out[j].name, sizeof(out[j].name), "%s", name);
        out[j].value = val;
    }
    // Sorted by name: the same settings in any order are the same config.
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(out[j - 1].name, out[j].name) > 0;
             j--) {
            fri_sim_setting t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    *n_out = n;
    return FR_OK;
}
