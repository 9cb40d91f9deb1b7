#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "errbuf.h"
#include "channel.h"
#include "keys.h"
#include "itemfeat.h"
#include "kvfile.h"
#include "msg_edge.h"
#include "secagg_ials.h"

// In parts: C guarantees string literals of 4095 characters only.
static const char usage_head[] =
    "usage: fedrec-aggregator --listen URL --items N [options]\n"
    "\n"
    "Runs federated rounds: clients check in, get a task and the signed\n"
    "item model, and send encrypted statistics; the aggregator solves the\n"
    "item model after each round and checkpoints it.\n"
    "\n"
    "Network and identity:\n"
    "  --listen URL            NNG URL to serve, tcp://HOST:PORT or\n"
    "                          ipc:///path (required)\n"
    "  --key PREFIX.key        identity secret from fedrec-keygen (without\n"
    "                          it a throwaway identity is used and logged)\n"
    "  --allow FILE            enrolled client public keys, one hex key per\n"
    "                          line (128 hex chars from PREFIX.pub's hex, or\n"
    "                          the 64-char X25519 half); '#' starts a comment\n"
    "  --item-features FILE    item content features, MovieLens u.item lines\n"
    "                          'id|title|date|video date|URL|f1|...|fd' (id =\n"
    "                          catalog index; e.g. the 19 genre flags): VBMF\n"
    "                          regresses each item's prior on them, so an\n"
    "                          item with few or no ratings starts from the\n"
    "                          items like it; rows past --items serve items\n"
    "                          added later; SIGHUP re-reads it\n"
    "  --http HOST:PORT        serve /metrics (Prometheus) and /status (JSON)\n"
    "  --contexts N            concurrent NNG request contexts (default 128)\n"
    "  --max-sessions N        live secure sessions cap (default 10000)\n"
    "  --session-ttl SECONDS   idle session expiry (default 300)\n"
    "  --max-frame BYTES       largest request accepted, also the\n"
    "                          transport's receive limit (default 64 MiB)\n"
    "  --max-sessions-per-key N  sessions one client key may hold,\n"
    "                          unconfirmed and confirmed each (default 4)\n"
    "  --max-connections N     open connections cap (default 20000, 0 = none)\n"
    "  --handshake-timeout SECONDS  close connections with no handshake\n"
    "                          done by then (default 10, 0 = never)\n"
    "  --hello-rate N          HELLOs per second per remote address\n"
    "                          (default 1000, 0 = no limit)\n"
    "  --hello-burst N         burst of that rate (default 2000)\n"
    "Tree of aggregators (docs/DEPLOY-TREE.md; no DP or latest\n"
    "statistics; --secure-agg runs within each edge's cohort):\n"
    "  --upstream URL          run as an edge of the root at URL: serve\n"
    "                          devices, send each round's sums to the root\n"
    "                          and serve the root's signed model\n"
    "  --upstream-key PREFIX.pub  the root's public key (with --upstream)\n"
    "  --upstream-margin SECONDS  close the edge's round this long before\n"
    "                          the root's deadline (default 1/10 of\n"
    "                          --round-deadline)\n"
    "  --edge-credential FILE  the root's credential for this edge\n"
    "                          (fedrec-keygen --credential): devices that\n"
    "                          pin only the root's key may use this edge\n"
    "  --edge-shard I/N        this edge serves only the devices of shard\n"
    "                          I of N (one edge per shard: a device then\n"
    "                          reports through one edge only)\n"
    "  --root-max-devices N    run as a root: accept edges' sums (edges\n"
    "                          enrolled with --allow) of at most N devices\n"
    "                          each per round\n"
    ;
static const char usage_state[] =
    "State:\n"
    "  --state DIR             checkpoint directory (resumes from it)\n"
    "Model:\n"
    "  --items N               number of catalog items (required); the\n"
    "                          catalog only grows: SIGHUP re-reads items\n"
    "                          from --config, a checkpoint's larger size\n"
    "                          is kept\n"
    "  --k K                   latent factors (default 32)\n"
    "  --algo als|grad|vbmf    sufficient statistics + server solve,\n"
    "                          gradient FedAvg, or variational Bayes MF\n"
    "                          (statistics with covariances; explicit\n"
    "                          only, ignores --reg). Default: with\n"
    "                          --clients-per-round >= 2 and none of\n"
    "                          --algo, --secure-agg, --dp, --clip,\n"
    "                          --stats-forget, --stats-latest 0: the\n"
    "                          private default, vbmf on latest statistics\n"
    "                          (--loss implicit: iALS statistics) masked\n"
    "                          with SecAgg+ (--secure-agg off opts out);\n"
    "                          otherwise als, plain\n"
    "  --loss explicit|implicit  ratings, or iALS on interactions\n"
    "  --reg X                 factor L2 penalty (default 0.1)\n"
    "  --reg-bias X            bias L2 penalty (default 0.1)\n"
    "  --alpha X               iALS confidence slope (default 10)\n"
    "  --init-std X            initial factor stddev (default 0.1)\n"
    "  --seed N                model init and cohort sampling seed\n"
    "  --server-opt sgd|momentum|adam  (grad; default adam)\n"
    "  --server-lr X           server learning rate (default 0.01)\n"
    "  --momentum X            momentum / Adam beta1 (default 0.9)\n"
    ;
static const char usage_mid[] =
    "Rounds:\n"
    "  --clients-per-round N   first N distinct clients to check in\n"
    "                          (0 = no cap, default)\n"
    "  --fraction F            select each check-in with probability F\n"
    "                          (seeded; 0 = everyone)\n"
    "  --min-clients N         reports needed at the deadline (default 1)\n"
    "  --round-deadline SECONDS  (default 60)\n"
    "  --rounds N              completed rounds to run, 0 = forever\n"
    "  --retry-after SECONDS   told to clients without a task (default 1)\n"
    "  --stats-forget F        ALS or iALS with partial participation:\n"
    "                          carry item statistics across rounds,\n"
    "                          S = (1-F) S + round sums; set F to the\n"
    "                          cohort's share of the population\n"
    "                          (default 1: each round's sums alone, exact\n"
    "                          when every client reports every round; the\n"
    "                          implicit private default carries at\n"
    "                          clients-per-round / population when\n"
    "                          --population or an allow-list gives it)\n"
    "  --stats-latest 0|1      explicit ALS or VBMF: keep the sum of every\n"
    "                          device's latest statistics, devices send the\n"
    "                          change of theirs (partial participation;\n"
    "                          masked under --secure-agg; default 0)\n"
    "  --buffer K              asynchronous buffered mode (FedBuff): no\n"
    "                          cohort, no round barrier; every check-in\n"
    "                          gets a task for the current model version\n"
    "                          and the model steps as soon as K reports\n"
    "                          are in (--rounds counts steps; at the\n"
    "                          deadline a buffer of >= --min-clients\n"
    "                          steps). Plain aggregation only: needs\n"
    "                          --secure-agg off, --dp off, no\n"
    "                          --clients-per-round (default 0: rounds)\n"
    "  --max-staleness S       buffered mode: accept reports computed on a\n"
    "                          model at most S versions old (older ones:\n"
    "                          error ESTALE, the device retries on the new\n"
    "                          model); gradients weigh 1/sqrt(1+staleness),\n"
    "                          statistics are re-centred and stay exact\n"
    "                          (0..1000, default 0)\n"
    ;
static const char usage_tail[]
    = "Bounds on one device (docs/ROBUSTNESS.md; updates outside are "
      "refused,\n"
      "models outside are not committed):\n"
      "  --rating-min X          lowest rating (default 1)\n"
      "  --rating-max X          highest rating (default 5; iALS: highest "
      "value)\n"
      "  --max-user-norm X       bound on a device's |p_u| (default 10)\n"
      "  --max-residual X        bound on |rating - mu - b_u| (default 3 x\n"
      "                          the rating span)\n"
      "  --max-ratings N         rows per update (default: --items)\n"
      "  --max-item-norm X       bound on |[q_i; b_i]| of a model (default "
      "100)\n"
      "Privacy (docs/DP.md):\n"
      "  --clip C                L2 bound on each client's update, sent in\n"
      "                          the task (0 = none, default)\n"
      "  --dp off|central|distributed  DP noise (default off; needs\n"
      "                          --clip, --noise-multiplier, --population "
      "and\n"
      "                          a sampled cohort, and --algo grad or\n"
      "                          --stats-latest 1 with als|vbmf: central "
      "only,\n"
      "                          --secure-agg off; docs/DP.md section 7)\n"
      "  --noise-multiplier Z    noise stddev / clip\n"
      "  --population N          users that may take part (for epsilon)\n"
      "  --dp-delta D            delta of the reported epsilon (1e-5)\n"
      "  --dp-seed N             reproducible noise (NOT private; tests and\n"
      "                          simulations only; 0 = secret, default)\n"
      "  --secure-agg off|full|plus  masked aggregation: only the cohort's\n"
      "                          sum is revealed (needs --algo grad with\n"
      "                          --clip, or explicit --algo als or --algo\n"
      "                          vbmf --stats-latest 1, bounded by\n"
      "                          --max-user-norm/--max-residual; and\n"
      "                          --clients-per-round >= 2; plus = SecAgg+)\n"
      "  --model-format auto|fp32|fp16|int8  encoding of the model a device\n"
      "                          downloads, among those it accepts (fp32\n"
      "                          always; int8: int8 rows, and for devices\n"
      "                          that accept it f16 biases and 8-bit VB\n"
      "                          variances; auto: the smallest; default\n"
      "                          auto)\n"
      "  --robust on|off         bounds on each device's influence: unit\n"
      "                          weight, user-vector norm, per-item caps,\n"
      "                          mean and count (default on)\n"
      "Other:\n"
      "  --config FILE           'name = value' lines with the flag names\n"
      "                          above; flags on the command line override;\n"
      "                          SIGHUP re-reads its items (a larger catalog)\n"
      "  --log-level error|warn|info|debug  (default info)\n"
      "  --help                  this text\n"
      "\n"
      "Exit status: 0 after --rounds rounds or SIGTERM/SIGINT, 1 on a "
      "runtime\n"
      "failure, 2 on a bad argument or unusable file.\n";

void
fri_agg_usage(FILE *f)
{
    fputs(usage_head, f);
    fputs(usage_state, f);
    fputs(usage_mid, f);
    fputs(usage_tail, f);
}

void
fri_agg_args_free(fri_agg_args *a)
{
    free(a->listen);
    free(a->key_path);
    free(a->state_dir);
    free(a->http);
    free(a->allow_path);
    free(a->allow);
    free(a->upstream);
    free(a->upstream_key_path);
    free(a->edge_cred_path);
    free(a->config_path);
    free(a->item_features_path);
    free(a->item_features);
    sodium_memzero(a->cfg.identity_seed, sizeof(a->cfg.identity_seed));
    memset(a, 0, sizeof(*a));
}

static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == 0 || !isdigit((unsigned char) *s)) {
        return -1;
    }
    errno        = 0;
    char              *end = NULL;
    unsigned long long v   = strtoull(s, &end, 10);
    if (errno != 0 || *end != 0 || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int
parse_f(const char *s, double *out)
{
    if (s == NULL || *s == 0) {
        return -1;
    }
    errno     = 0;
    char  *end = NULL;
    double v   = strtod(s, &end);
    if (errno != 0 || *end != 0 || !isfinite(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

static int
set_str(char **dst, const char *v)
{
    char *c = strdup(v);
    if (c == NULL) {
        return -1;
    }
    free(*dst);
    *dst = c;
    return 0;
}

// Applies one option. name without dashes.
static fr_err
apply(fri_agg_args *a, const char *name, const char *val, const char *where,
      char *err, size_t cap)
{
    fri_agg_config *c = &a->cfg;
    uint64_t        u = 0;
    double          f = 0;
    a->given |= strcmp(name, "algo") == 0         ? FRI_AGG_GIVEN_ALGO
              : strcmp(name, "secure-agg") == 0   ? FRI_AGG_GIVEN_SECAGG
              : strcmp(name, "loss") == 0         ? FRI_AGG_GIVEN_LOSS
              : strcmp(name, "dp") == 0           ? FRI_AGG_GIVEN_DP
              : strcmp(name, "stats-forget") == 0 ? FRI_AGG_GIVEN_FORGET
              : strcmp(name, "stats-latest") == 0 ? FRI_AGG_GIVEN_LATEST
              : strcmp(name, "clip") == 0         ? FRI_AGG_GIVEN_CLIP
                                                  : 0u;
#define NEED_U(max)                                                           \
    if (parse_u64(val, (max), &u) != 0) {                                     \
        fri_agg_seterr(err, cap,                                              \
            "%s: --%s wants an integer in 0..%llu, got '%s'", where, name,    \
            (unsigned long long)(max), val);                                  \
        return FR_EINVAL;                                                     \
    }
#define NEED_F()                                                              \
    if (parse_f(val, &f) != 0) {                                              \
        fri_agg_seterr(                                                       \
            err, cap, "%s: --%s wants a number, got '%s'", where, name, val); \
        return FR_EINVAL;                                                     \
    }
#define NEED_SECS()                                                           \
    NEED_F();                                                                 \
    if (f < 0 || f > 1e9) {                                                   \
        fri_agg_seterr(err, cap, "%s: --%s wants seconds >= 0, got '%s'",     \
            where, name, val);                                                \
        return FR_EINVAL;                                                     \
    }
    int oom = 0;
    if (strcmp(name, "listen") == 0) {
        if (strncmp(val, "tcp://", 6) != 0 && strncmp(val, "ipc://", 6) != 0 &&
            strncmp(val, "tls+tcp://", 10) != 0 &&
            strncmp(val, "ws://", 5) != 0) {
            fri_agg_seterr(err, cap,
                "%s: --listen wants tcp://HOST:PORT or ipc:///path, got "
                "'%s' (inproc:// cannot reach another process)",
                where, val);
            return FR_EINVAL;
        }
        oom = set_str(&a->listen, val);
    } else if (strcmp(name, "key") == 0) {
        oom = set_str(&a->key_path, val);
    } else if (strcmp(name, "state") == 0) {
        oom = set_str(&a->state_dir, val);
    } else if (strcmp(name, "http") == 0) {
        const char *colon = strrchr(val, ':');
        uint64_t    port  = 0;
        if (colon == NULL || colon == val ||
            parse_u64(colon + 1, 65535, &port) != 0) {
            fri_agg_seterr(
                err, cap, "%s: --http wants HOST:PORT, got '%s'", where, val);
            return FR_EINVAL;
        }
        oom = set_str(&a->http, val);
    } else if (strcmp(name, "allow") == 0) {
        oom = set_str(&a->allow_path, val);
    } else if (strcmp(name, "item-features") == 0) {
        oom = set_str(&a->item_features_path, val);
    } else if (strcmp(name, "upstream") == 0) {
        if (strncmp(val, "tcp://", 6) != 0 && strncmp(val, "ipc://", 6) != 0) {
            fri_agg_seterr(err, cap,
                "%s: --upstream wants tcp://HOST:PORT or ipc:///path, got "
                "'%s'", where, val);
            return FR_EINVAL;
        }
        oom = set_str(&a->upstream, val);
        c->edge = 1;
    } else if (strcmp(name, "edge-credential") == 0) {
        oom = set_str(&a->edge_cred_path, val);
    } else if (strcmp(name, "upstream-key") == 0) {
        oom = set_str(&a->upstream_key_path, val);
    } else if (strcmp(name, "upstream-margin") == 0) {
        NEED_SECS();
        a->upstream_margin_ms = (uint64_t) (f * 1000.0);
    } else if (strcmp(name, "edge-shard") == 0) {
        // I/N: this edge serves the devices of shard I of N.
        unsigned long long i = 0, n = 0;
        char               tail = 0;
        if (sscanf(val, "%llu/%llu%c", &i, &n, &tail) != 2 || n == 0 ||
            n > 1024 || i >= n) {
            fri_agg_seterr(err, cap,
                "%s: --edge-shard wants I/N with N in 1..1024 and I < N, got "
                "'%s'", where, val);
            return FR_EINVAL;
        }
        c->edge_shard  = (uint32_t) i;
        c->edge_shards = (uint32_t) n;
    } else if (strcmp(name, "root-max-devices") == 0) {
        NEED_U(FRI_EDGE_MAX_DEVICES);
        c->root_max_devices = (uint32_t) u;
    } else if (strcmp(name, "contexts") == 0) {
        NEED_U(4096);
        if (u == 0) {
            fri_agg_seterr(err, cap, "%s: --contexts must be >= 1", where);
            return FR_EINVAL;
        }
        a->contexts        = (int) u;
        a->net.n_contexts  = (int) u;
    } else if (strcmp(name, "max-sessions") == 0) {
        NEED_U(UINT32_MAX);
        c->max_sessions = (uint32_t) u;
    } else if (strcmp(name, "session-ttl") == 0) {
        NEED_SECS();
        c->session_ttl_ms = (uint64_t) (f * 1000.0);
    } else if (strcmp(name, "max-frame") == 0) {
        NEED_U((uint64_t) 1 << 28);
        c->max_frame = (size_t) u;
    } else if (strcmp(name, "max-sessions-per-key") == 0) {
        NEED_U(UINT32_MAX);
        c->max_sessions_per_key = (uint32_t) u;
    } else if (strcmp(name, "max-connections") == 0) {
        NEED_U(UINT32_MAX);
        a->net.max_connections = (uint32_t) u;
    } else if (strcmp(name, "handshake-timeout") == 0) {
        NEED_SECS();
        a->net.handshake_timeout_ms = (uint64_t) (f * 1000.0);
    } else if (strcmp(name, "hello-rate") == 0) {
        NEED_F();
        if (f < 0 || f > 1e9) {
            fri_agg_seterr(err, cap,
                "%s: --hello-rate wants a rate >= 0, got '%s'", where, val);
            return FR_EINVAL;
        }
        a->net.hello_rate = f;
    } else if (strcmp(name, "hello-burst") == 0) {
        NEED_U(UINT32_MAX);
        if (u == 0) {
            fri_agg_seterr(err, cap, "%s: --hello-burst must be >= 1", where);
            return FR_EINVAL;
        }
        a->net.hello_burst = (uint32_t) u;
    } else if (strcmp(name, "items") == 0) {
        NEED_U(UINT32_MAX);
        c->n_items = (uint32_t) u;
    } else if (strcmp(name, "k") == 0) {
        NEED_U(UINT32_MAX);
        c->k = (uint32_t) u;
    } else if (strcmp(name, "algo") == 0) {
        if (strcmp(val, "als") == 0) {
            c->algo = FRI_AGG_ALS;
        } else if (strcmp(val, "grad") == 0) {
            c->algo = FRI_AGG_GRAD;
        } else if (strcmp(val, "vbmf") == 0) {
            c->algo = FRI_AGG_VBMF;
        } else {
            fri_agg_seterr(err, cap,
                "%s: --algo wants als, grad or vbmf, got '%s'", where, val);
            return FR_EINVAL;
        }
    } else if (strcmp(name, "loss") == 0) {
        if (strcmp(val, "explicit") == 0) {
            c->implicit = 0;
        } else if (strcmp(val, "implicit") == 0) {
            c->implicit = 1;
        } else {
            fri_agg_seterr(err, cap,
                "%s: --loss wants explicit or implicit, got '%s'", where, val);
            return FR_EINVAL;
        }
    } else if (strcmp(name, "reg") == 0) {
        NEED_F();
        c->reg = (float) f;
    } else if (strcmp(name, "reg-bias") == 0) {
        NEED_F();
        c->reg_bias = (float) f;
    } else if (strcmp(name, "alpha") == 0) {
        NEED_F();
        c->alpha = (float) f;
    } else if (strcmp(name, "init-std") == 0) {
        NEED_F();
        c->init_std = (float) f;
    } else if (strcmp(name, "seed") == 0) {
        NEED_U(UINT64_MAX);
        c->seed = u;
    } else if (strcmp(name, "server-opt") == 0) {
        if (strcmp(val, "sgd") == 0) {
            c->server_opt = FRI_AGG_OPT_SGD;
        } else if (strcmp(val, "momentum") == 0) {
            c->server_opt = FRI_AGG_OPT_MOMENTUM;
        } else if (strcmp(val, "adam") == 0) {
            c->server_opt = FRI_AGG_OPT_ADAM;
        } else {
            fri_agg_seterr(err, cap,
                "%s: --server-opt wants sgd, momentum or adam, got '%s'",
                where, val);
            return FR_EINVAL;
        }
    } else if (strcmp(name, "server-lr") == 0) {
        NEED_F();
        c->server_lr = (float) f;
    } else if (strcmp(name, "momentum") == 0) {
        NEED_F();
        c->momentum = (float) f;
    } else if (strcmp(name, "clients-per-round") == 0) {
        NEED_U(UINT32_MAX);
        c->clients_per_round = (uint32_t) u;
    } else if (strcmp(name, "fraction") == 0) {
        NEED_F();
        c->fraction = f;
    } else if (strcmp(name, "min-clients") == 0) {
        NEED_U(UINT32_MAX);
        c->min_clients = (uint32_t) u;
    } else if (strcmp(name, "round-deadline") == 0) {
        NEED_SECS();
        c->round_deadline_ms = (uint64_t) (f * 1000.0);
    } else if (strcmp(name, "rounds") == 0) {
        NEED_U(UINT64_MAX);
        c->rounds = u;
    } else if (strcmp(name, "stats-forget") == 0) {
        NEED_F();
        c->stats_forget = (float) f;
    } else if (strcmp(name, "stats-latest") == 0) {
        NEED_U(1);
        c->stats_latest = (int) u;
    } else if (strcmp(name, "buffer") == 0) {
        NEED_U(UINT32_MAX);
        c->buffer = (uint32_t) u;
    } else if (strcmp(name, "max-staleness") == 0) {
        NEED_U(FRI_AGG_MAX_STALENESS);
        c->max_staleness = (uint32_t) u;
    } else if (strcmp(name, "retry-after") == 0) {
        NEED_SECS();
        c->retry_after_ms = (uint32_t) (f * 1000.0 > 3.6e6 ? 3.6e6 : f * 1000.0);
    } else if (strcmp(name, "rating-min") == 0) {
        NEED_F();
        c->rating_min = (float) f;
    } else if (strcmp(name, "rating-max") == 0) {
        NEED_F();
        c->rating_max = (float) f;
    } else if (strcmp(name, "max-user-norm") == 0) {
        NEED_F();
        c->max_user_norm = (float) f;
    } else if (strcmp(name, "max-residual") == 0) {
        NEED_F();
        c->max_residual = (float) f;
    } else if (strcmp(name, "max-ratings") == 0) {
        NEED_U(UINT32_MAX);
        c->max_ratings = (uint32_t) u;
    } else if (strcmp(name, "max-item-norm") == 0) {
        NEED_F();
        c->max_item_norm = (float) f;
    } else if (strcmp(name, "clip") == 0) {
        NEED_F();
        c->clip = (float) f;
    } else if (strcmp(name, "noise-multiplier") == 0) {
        NEED_F();
        c->noise_multiplier = f;
    } else if (strcmp(name, "population") == 0) {
        NEED_U(UINT64_MAX);
        c->population = u;
    } else if (strcmp(name, "dp-delta") == 0) {
        NEED_F();
        c->dp_delta = f;
    } else if (strcmp(name, "dp-seed") == 0) {
        NEED_U(UINT64_MAX);
        c->dp_seed = u;
    } else if (strcmp(name, "dp") == 0) {
        if (strcmp(val, "off") == 0) {
            c->dp = FRI_AGG_DP_OFF;
        } else if (strcmp(val, "central") == 0) {
            c->dp = FRI_AGG_DP_CENTRAL;
        } else if (strcmp(val, "distributed") == 0) {
            c->dp = FRI_AGG_DP_DISTRIBUTED;
        } else {
            fri_agg_seterr(err, cap,
                "%s: --dp wants off, central or distributed, got '%s'", where,
                val);
            return FR_EINVAL;
        }
    } else if (strcmp(name, "secure-agg") == 0) {
        if (strcmp(val, "off") == 0) {
            c->secagg = FRI_AGG_SECAGG_OFF;
        } else if (strcmp(val, "full") == 0) {
            c->secagg = FRI_AGG_SECAGG_FULL;
        } else if (strcmp(val, "plus") == 0) {
            c->secagg = FRI_AGG_SECAGG_PLUS;
        } else {
            fri_agg_seterr(err, cap,
                "%s: --secure-agg wants off, full or plus, got '%s'", where,
                val);
            return FR_EINVAL;
        }
    } else if (strcmp(name, "model-format") == 0) {
        int mf = fri_agg_model_format_parse(val);
        if (mf < 0) {
            fri_agg_seterr(err, cap,
                "%s: --model-format wants auto, fp32, fp16 or int8, got '%s'",
                where, val);
            return FR_EINVAL;
        }
        c->model_format = mf;
    } else if (strcmp(name, "robust") == 0) {
        // Robust aggregation bounds (aggregator/robust.h).
        if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0) {
            fri_agg_seterr(err, cap,
                "%s: --robust wants on or off, got '%s'", where, val);
            return FR_EINVAL;
        }
        c->robust = strcmp(val, "on") == 0;
    } else if (strcmp(name, "log-level") == 0) {
        if (strcmp(val, "error") == 0) {
            c->log_level = FR_LOG_ERROR;
        } else if (strcmp(val, "warn") == 0) {
            c->log_level = FR_LOG_WARN;
        } else if (strcmp(val, "info") == 0) {
            c->log_level = FR_LOG_INFO;
        } else if (strcmp(val, "debug") == 0) {
            c->log_level = FR_LOG_DEBUG;
        } else {
            fri_agg_seterr(err, cap,
                "%s: --log-level wants error, warn, info or debug, got "
                "'%s'",
                where, val);
            return FR_EINVAL;
        }
    } else {
        fri_agg_seterr(
            err, cap, "%s: unknown option --%s (see --help)", where, name);
        return FR_EINVAL;
    }
    if (oom) {
        fri_agg_seterr(err, cap, "out of memory");
        return FR_ENOMEM;
    }
    return FR_OK;
#undef NEED_U
#undef NEED_F
#undef NEED_SECS
}

static char *
trim(char *s)
{
    while (isspace((unsigned char) *s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char) s[n - 1])) {
        s[--n] = 0;
    }
    return s;
}

static fr_err
config_line(void *ctx, const char *name, const char *val, const char *where,
            char *err, size_t cap)
{
    return apply(ctx, name, val, where, err, cap);
}

static fr_err
load_config(fri_agg_args *a, const char *path, char *err, size_t cap)
{
    return fri_kv_file_read(path, "--config", config_line, a, err, cap);
}

typedef struct items_line {
    uint32_t n;
    int      seen;
} items_line;

static fr_err
items_only(void *ctx, const char *name, const char *val, const char *where,
           char *err, size_t cap)
{
    items_line *l = ctx;
    uint64_t    u = 0;
    if (strcmp(name, "items") != 0) {
        return FR_OK;
    }
    if (parse_u64(val, UINT32_MAX, &u) != 0) {
        fri_agg_seterr(err, cap, "%s: items wants an integer, got '%s'",
                       where, val);
        return FR_EINVAL;
    }
    l->n    = (uint32_t) u;
    l->seen = 1;
    return FR_OK;
}

fr_err
fri_agg_args_config_items(const char *path, uint32_t *n_items, char *err,
                          size_t err_cap)
{
    items_line l  = {0, 0};
    fr_err     rv = fri_kv_file_read(path, "--config", items_only, &l, err,
                                     err_cap);
    if (rv == FR_OK && !l.seen) {
        fri_agg_seterr(err, err_cap, "--config %s has no items line", path);
        rv = FR_ENOENT;
    }
    if (rv == FR_OK) {
        *n_items = l.n;
    }
    return rv;
}

static fr_err
load_allow(fri_agg_args *a, char *err, size_t cap)
{
    FILE *f = fopen(a->allow_path, "r");
    if (f == NULL) {
        fri_agg_seterr(err, cap, "--allow %s: cannot open: %s", a->allow_path,
            strerror(errno));
        return FR_EIO;
    }
    char   line[512];
    int    ln  = 0;
    size_t n   = 0, capk = 0;
    fr_err rv  = FR_OK;
    while (fgets(line, sizeof(line), f) != NULL) {
        ln++;
        char *hash = strchr(line, '#');
        if (hash != NULL) {
            *hash = 0;
        }
        char *s = trim(line);
        if (*s == 0) {
            continue;
        }
        size_t  len = strlen(s);
        uint8_t bin[64];
        size_t  got = 0;
        if ((len != 128 && len != 64) ||
            sodium_hex2bin(bin, sizeof(bin), s, len, NULL, &got, NULL) != 0 ||
            got != len / 2) {
            fri_agg_seterr(err, cap,
                "--allow %s:%d: expected a hex public key of 128 or 64 "
                "characters",
                a->allow_path, ln);
            rv = FR_EINVAL;
            break;
        }
        if (n == capk) {
            size_t   nc = capk ? capk * 2 : 64;
            uint8_t *nb = realloc(a->allow, nc * FRI_AGG_KEYBYTES);
            if (nb == NULL) {
                rv = FR_ENOMEM;
                fri_agg_seterr(err, cap, "out of memory");
                break;
            }
            a->allow = nb;
            capk     = nc;
        }
        // The X25519 half identifies the client in the handshake.
        memcpy(a->allow + n * FRI_AGG_KEYBYTES, bin, FRI_AGG_KEYBYTES);
        n++;
    }
    fclose(f);
    if (rv == FR_OK && n == 0) {
        fri_agg_seterr(err, cap,
            "--allow %s: no keys (an empty allow-list would "
            "refuse everyone)",
            a->allow_path);
        rv = FR_EINVAL;
    }
    a->cfg.allow   = a->allow;
    a->cfg.n_allow = rv == FR_OK ? n : 0;
    return rv;
}

// Every flag takes a value except --help; apply() checks the values.
static const char *const flag_names[] = { "listen", "key", "state", "http",
    "allow", "item-features", "contexts", "max-sessions", "session-ttl", "max-frame",
    "max-sessions-per-key", "max-connections", "handshake-timeout",
    "hello-rate", "hello-burst", "items", "k", "algo", "loss", "reg",
    "reg-bias", "alpha", "init-std", "seed", "server-opt", "server-lr",
    "momentum", "clients-per-round", "fraction", "min-clients",
    "round-deadline", "rounds", "stats-forget", "stats-latest", "buffer",
    "max-staleness", "retry-after", "clip", "noise-multiplier", "population",
    "dp-delta", "dp-seed", "dp", "secure-agg", "rating-min", "rating-max",
    "max-user-norm", "max-residual", "max-ratings", "max-item-norm", "robust",
    "log-level", "upstream", "upstream-key", "upstream-margin", "edge-shard",
    "model-format", "root-max-devices", "edge-credential", "config" };
#define N_FLAGS (sizeof(flag_names) / sizeof(flag_names[0]))
#define OPT_HELP 'h'
#define OPT_BASE 256

// Private by default (docs/SECAGG.md section 9): when the user chose no
// algorithm or aggregation (none of the FRI_AGG_GIVEN_* flags, except
// --stats-latest 1) and cohorts are bounded (--clients-per-round >= 2,
// which secure aggregation needs), explicit ratings run VBMF on every
// device's latest statistics with the deltas masked by SecAgg+, the
// configuration fedrec-sim uses for partial cohorts. Anything else keeps
// the plain defaults.
static void
private_default(fri_agg_args *a)
{
    fri_agg_config *c      = &a->cfg;
    // The loss picks the private profile (iALS or VBMF), it does not opt
    // out of it.
    unsigned choice = a->given & ~(unsigned) (FRI_AGG_GIVEN_LATEST |
                                              FRI_AGG_GIVEN_LOSS);
    if (c->implicit) {
        // iALS carries its statistics (below); the rate is not a choice
        // of privacy.
        choice &= ~(unsigned) FRI_AGG_GIVEN_FORGET;
    }
    // A tree aggregates plainly for now (docs/DEPLOY-TREE.md).
    if (choice != 0 || c->clients_per_round < 2 || c->edge ||
        c->buffer > 0 ||
        c->root_max_devices > 0 ||
        ((a->given & FRI_AGG_GIVEN_LATEST) && !c->stats_latest)) {
        return;
    }
    if (c->implicit) {
        // iALS: its per-round statistics masked (SPEC S1c), carried across
        // rounds with the cohort's share of the population as the
        // forgetting rate when the population is known (--population or
        // the allow-list): each round's cohort alone solves the items
        // from a tenth of the users (docs/BENCHMARKS.md, "Implicit
        // feedback with partial cohorts").
        if (c->alpha > 0.0f && c->rating_max > 0.0f &&
            fri_sa_ials_width(c->k) <= FRI_AGG_SA_MAX_WIDTH) {
            c->secagg          = FRI_AGG_SECAGG_PLUS;
            c->robust          = 0; // bounds need a per-device view
            a->private_default = 1;
        }
        uint64_t pop = c->population > 0 ? c->population : c->n_allow;
        if (!(a->given & FRI_AGG_GIVEN_FORGET) && pop > c->clients_per_round) {
            c->stats_forget = (float) ((double) c->clients_per_round /
                                       (double) pop);
        }
        return;
    }
    c->algo            = FRI_AGG_VBMF;
    c->stats_latest    = 1;
    c->secagg          = FRI_AGG_SECAGG_PLUS;
    a->private_default = 1;
}

// --edge-credential: a file of fedrec-keygen --credential, for this
// edge's key (--key), signed by the root (--upstream-key), not expired.
static fr_err
load_cred(fri_agg_args *a, char *err, size_t cap)
{
    if (!a->cfg.edge || !a->cfg.has_identity) {
        fri_agg_seterr(err, cap,
            "--edge-credential needs --upstream, --upstream-key and --key");
        return FR_EINVAL;
    }
    uint8_t buf[FRI_CREDFILE_LEN + 1];
    FILE   *f = fopen(a->edge_cred_path, "rb");
    size_t  n = f != NULL ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    fri_pubkeys edge;
    fr_err      e = FR_EFORMAT;
    if (n == FRI_CREDFILE_LEN && memcmp(buf, "FRCR\1\0\0\0", 8) == 0) {
        e = fri_cred_check(buf + 8, a->cfg.upstream_pk + 32,
                           (uint64_t) time(NULL), &edge);
    }
    fri_identity id;
    if (e == FR_OK &&
        fri_identity_from_seed(&id, a->cfg.identity_seed) == FR_OK) {
        int mine = sodium_memcmp(id.kx_pk, edge.kx, 32) == 0 &&
                   sodium_memcmp(id.sign_pk, edge.sign, 32) == 0;
        fri_identity_wipe(&id);
        e = mine ? FR_OK : FR_EDENIED;
    }
    if (e != FR_OK) {
        fri_agg_seterr(err, cap, "--edge-credential %s: %s",
            a->edge_cred_path,
            f == NULL && n == 0 ? "cannot read"
            : e == FR_EFORMAT   ? "not a fedrec credential file"
            : e == FR_ECRYPTO   ? "not signed by the --upstream-key root"
            : e == FR_ELATE     ? "expired"
            : e == FR_EDENIED   ? "made for another key than --key"
                                : fr_errname(e));
        return FR_EINVAL;
    }
    memcpy(a->cfg.edge_cred, buf + 8, FRI_CRED_LEN);
    a->cfg.has_edge_cred = 1;
    return FR_OK;
}

fr_err
fri_agg_args_parse(fri_agg_args *a, int argc, char **argv, char *err,
                   size_t err_cap)
{
    memset(a, 0, sizeof(*a));
    fri_agg_config_init(&a->cfg);
    fri_net_opts_init(&a->net);
    // The server closes rounds off its I/O threads.
    a->cfg.closer_thread = 1;
    a->contexts          = a->net.n_contexts;
    struct option opts[N_FLAGS + 2];
    for (size_t i = 0; i < N_FLAGS; i++) {
        opts[i] = (struct option){flag_names[i], required_argument, NULL,
                                  OPT_BASE + (int) i};
    }
    opts[N_FLAGS]     = (struct option){"help", no_argument, NULL, OPT_HELP};
    opts[N_FLAGS + 1] = (struct option){NULL, 0, NULL, 0};
    // Two passes: --config first, so that flags override it. "+": stop at
    // the first non-option; ":" reports a missing value as ':'.
    for (int pass = 0; pass < 2; pass++) {
        optind = 0; // glibc: re-initialise (parse may run more than once)
        opterr = 0;
        for (;;) {
            int at  = optind == 0 ? 1 : optind;
            int idx = -1;
            int c   = getopt_long(argc, argv, "+:h", opts, &idx);
            if (c == -1) {
                break;
            }
            const char *tok = at < argc ? argv[at] : "";
            if (c == '?' || c == ':') {
                if (pass == 1) {
                    continue; // reported in pass 0
                }
                char   name[64];
                size_t nl = strncmp(tok, "--", 2) == 0 ? strcspn(tok + 2, "=")
                                                       : 0;
                snprintf(name, sizeof(name), "%.*s", (int) nl, tok + 2);
                if (c == ':') {
                    fri_agg_seterr(err, err_cap, "--%s needs a value", name);
                } else if (nl == 0) {
                    fri_agg_seterr(err, err_cap,
                        "unexpected argument '%s' (see --help)", tok);
                } else {
                    fri_agg_seterr(err, err_cap,
                        "unknown option --%s (see --help)", name);
                }
                return FR_EINVAL;
            }
            if (c == OPT_HELP) {
                a->help = 1;
                return FR_OK;
            }
            const char *name = flag_names[c - OPT_BASE];
            // getopt_long accepts unambiguous prefixes; flags are exact.
            size_t nl = strncmp(tok, "--", 2) == 0 ? strcspn(tok + 2, "=") : 0;
            if (nl != strlen(name) || strncmp(tok + 2, name, nl) != 0) {
                fri_agg_seterr(err, err_cap,
                    "unknown option --%.*s (see --help)", (int) nl, tok + 2);
                return FR_EINVAL;
            }
            int    is_config = strcmp(name, "config") == 0;
            fr_err rv        = FR_OK;
            if (pass == 0 && is_config) {
                free(a->config_path);
                a->config_path = strdup(optarg);
                rv = a->config_path == NULL
                         ? FR_ENOMEM
                         : load_config(a, optarg, err, err_cap);
            } else if (pass == 1 && !is_config) {
                rv = apply(a, name, optarg, "command line", err, err_cap);
            }
            if (rv != FR_OK) {
                return rv;
            }
        }
        if (optind < argc) {
            fri_agg_seterr(err, err_cap,
                "unexpected argument '%s' (see --help)", argv[optind]);
            return FR_EINVAL;
        }
    }
    a->net.max_frame = a->cfg.max_frame;
    private_default(a);
    if ((a->upstream == NULL) != (a->upstream_key_path == NULL)) {
        fri_agg_seterr(err, err_cap,
            "--upstream and --upstream-key go together (see --help)");
        return FR_EINVAL;
    }
    if (a->upstream_key_path != NULL) {
        fri_pubkeys pk;
        fr_err      e = fri_pub_load(&pk, a->upstream_key_path);
        if (e != FR_OK) {
            fri_agg_seterr(err, err_cap, "--upstream-key %s: %s",
                a->upstream_key_path,
                e == FR_EFORMAT ? "not a fedrec public key file"
                                : "cannot read");
            return e == FR_EIO ? FR_EIO : FR_EINVAL;
        }
        memcpy(a->cfg.upstream_pk, pk.kx, sizeof(pk.kx));
        memcpy(a->cfg.upstream_pk + sizeof(pk.kx), pk.sign, sizeof(pk.sign));
        if (a->upstream_margin_ms == 0) {
            a->upstream_margin_ms = a->cfg.round_deadline_ms / 10;
        }
    }
    if (a->listen == NULL) {
        fri_agg_seterr(err, err_cap, "--listen URL is required (see --help)");
        return FR_EINVAL;
    }
    if (a->cfg.n_items == 0) {
        fri_agg_seterr(err, err_cap, "--items N is required (see --help)");
        return FR_EINVAL;
    }
    if (a->item_features_path != NULL) {
        // Catalog indices are the ids; rows beyond --items are kept for
        // items added later.
        char ferr[600];
        fr_err rv = fri_item_features_load(a->item_features_path, NULL,
            FRI_AGG_MAX_ITEMS, &a->item_features, &a->cfg.item_feature_rows,
            &a->cfg.n_item_features, ferr, sizeof(ferr));
        if (rv != FR_OK) {
            fri_agg_seterr(err, err_cap, "--item-features %s", ferr);
            return rv;
        }
        a->cfg.item_features = a->item_features;
    }
    fr_err rv = fri_agg_config_check(&a->cfg, err, err_cap);
    if (rv != FR_OK) {
        return rv;
    }
    if (a->allow_path != NULL) {
        rv = load_allow(a, err, err_cap);
        if (rv != FR_OK) {
            return rv;
        }
    }
    if (a->key_path != NULL) {
        fri_identity id;
        rv = fri_key_load(&id, a->key_path);
        if (rv != FR_OK) {
            fri_agg_seterr(err, err_cap, "--key %s: %s%s", a->key_path,
                rv == FR_EDENIED ? "readable by group or others (chmod 600)"
                    : rv == FR_EFORMAT ? "not a fedrec secret key file"
                                       : "cannot read",
                rv == FR_EIO && errno != 0 ? "" : "");
            return rv == FR_EIO ? FR_EIO : FR_EINVAL;
        }
        memcpy(a->cfg.identity_seed, id.seed, FRI_SEEDBYTES);
        a->cfg.has_identity = 1;
        fri_identity_wipe(&id);
    }
    a->cfg.state_dir = a->state_dir;
    if (a->edge_cred_path != NULL) {
        rv = load_cred(a, err, err_cap);
    }
    return rv;
}
