// fedrec-train: centralized training of the same matrix factorisation the
// federated system runs, for baselines and tuning. See --help.
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bayes.h"
#include "bpr.h"
#include "dataset.h"
#include "fedrec/common.h"
#include "itemfeat.h"
#include "knn.h"
#include "metrics.h"
#include "mf.h"
#include "recency.h"
#include "tbias.h"

typedef struct opts {
    float            transition; // implicit: the devices' last-item weight
    const char      *train;
    const char      *test;
    const char      *synthetic;
    fri_train_config tc;
    int              algo_set;
    fri_train_algo         algo;
    int              json;
    double           val_frac;
    double           test_frac;
    uint32_t         topk;
    fri_rank_protocol protocol;
    int              protocol_set;
    int              leave_last;  // --split leave-last-out
    int              eval_val;    // --eval val: score the validation item
    int              negatives_set;
    uint32_t         negatives;   // --negatives N (0 = every item)
    int              pop;         // --algo pop (item popularity)
    int              bpr;         // --algo bpr (pairwise ranking, SGD)
    int              itemmean;    // --algo itemmean (damped item mean)
    int              knn;         // --algo usercf|itemcf
    fri_knn_config   kc;          // --neighbours, --min-support
    int              content;     // --algo content
    const char      *item_features; // --item-features FILE (u.item)
    // Which numeric knobs were given explicitly, so algo defaults do not
    // overwrite them.
    int k_set, epochs_set, lr_set, lr_decay_set, reg_set, reg_bias_set;
    int weighted_set, init_std_set, bias_epochs_set, alpha_set, recency_set;
    int patience_set, seed_set;
    fri_train_config given;
    int             bpmf; // --algo bpmf (Gibbs sampling, bayes.h)
    fri_bpmf_config bc;
    int             vbmf; // --algo vbmf (variational, bayes.h)
    fri_vbmf_config vc;
    int              tbias; // --time-bias: time-aware biases (tbias.h)
    fri_tbias_config tb;
    uint32_t         tbias_rounds; // refits of the base model (>= 1)
} opts;

static void
usage(FILE *f)
{
    fprintf(f,
"usage: fedrec-train [options]\n"
"Trains biased matrix factorisation centrally and reports accuracy.\n"
"Without data options it runs on the built-in synthetic default.\n"
"\n"
"data:\n"
"  --train PATH        training ratings (MovieLens, CSV or whitespace)\n"
"  --test PATH         test ratings; without it a random 20%% of --train\n"
"  --synthetic SPEC    generated data, e.g. users=500,items=300,k=5,\n"
"                      density=0.05,zipf=0.8,noise=0.5,seed=1; split 80/20\n"
"  --test-frac F       hold-out fraction when no --test is given (0.2)\n"
"  --val-frac F        hold out F of train for early stopping (0 = off)\n"
"  --split random|leave-last-out  with --train alone: a random --test-frac\n"
"                      per user (default), or each user's latest rating by\n"
"                      timestamp as test and the one before as validation\n"
"                      (users with one rating: train only; equal timestamps:\n"
"                      the later line is newer; a file without timestamps\n"
"                      is refused)\n"
"  --eval test|val     leave-last-out: train on all but the test item and\n"
"                      score it (default), or train on all but the last two\n"
"                      and score the validation item (for tuning)\n"
"model and training:\n"
"  --algo als|sgd|bpmf|vbmf|pop|bpr|itemmean|usercf|itemcf|content\n"
"                      alternating least squares, SGD,\n"
"                      Bayesian MF by Gibbs sampling, variational Bayesian\n"
"                      MF; baselines: itemmean (explicit: the item's mean\n"
"                      rating shrunk toward the global mean), usercf and\n"
"                      itemcf (k-nearest-neighbour CF, cosine similarity:\n"
"                      --neighbours, --min-support; explicit or implicit),\n"
"                      content (genre cosine: needs --item-features);\n"
"                      for --loss implicit also item popularity or BPR\n"
"                      (pairwise SGD: --k --epochs --lr --lr-decay --reg\n"
"                      --reg-bias --init-std --seed)\n"
"                      (default bpmf for explicit, als for implicit;\n"
"                      bpmf/vbmf use --k, --epochs (vbmf\n"
"                      sweeps), --init-std, --seed and the options below)\n"
"  --loss explicit|implicit  ratings, or weighted ALS on interactions\n"
"  --k N               latent dimension, 1..%u\n"
"  --epochs N          ALS sweeps / SGD passes\n"
"  --lr F              SGD initial learning rate\n"
"  --lr-decay F        SGD schedule lr/(1 + F*epoch)\n"
"  --reg F             factor regularisation\n"
"  --reg-bias F        bias regularisation\n"
"  --weighted 0|1|2    ALS penalty scaling: 0 plain ridge, 1 by #ratings\n"
"                      (weighted-lambda), 2 by sqrt(#ratings)\n"
"  --init-std F        stddev of the initial factors\n"
"  --bias-epochs N     ALS bias-only warm-start sweeps\n"
"  --alpha F           implicit confidence c = 1 + F*r\n"
"  --recency H         implicit: user solves weigh each interaction 2^(-r/H),\n"
"                      r = the user's interactions newer than it (default 3,\n"
"                      as on the devices; 0 = all alike)\n"
"  --transition W      implicit: rankings add W times the standardized\n"
"                      similarity to the user's newest training interaction\n"
"                      (default 1, as on the devices; 0 = off)\n"
"  --patience N        early-stopping patience with --val-frac (3)\n"
"  --burnin N          bpmf: discarded sweeps (20)\n"
"  --samples N         bpmf: averaged sweeps (80)\n",
            FRI_MF_MAX_K);
    fputs(
"  --beta F            bpmf/vbmf: fixed noise precision (default: learned)\n"
"  --svdpp W           vbmf: each user's prior mean moves towards the items\n"
"                      it rated (SVD++ with tied factors; default 0.3 as on\n"
"                      the devices, 0 = off)\n"
"  --seed N            seed for init, shuffles and splits\n"
"  --neighbours N      usercf/itemcf/content: neighbours per prediction (40)\n"
"  --min-support N     usercf/itemcf: co-rated entries a similarity\n"
"                      needs (1)\n"
"  --item-features PATH  content: MovieLens u.item ('|'-separated: id,\n"
"                      title, dates, URL, then numeric features such as\n"
"                      the 19 genre flags); ratings are predicted from the\n"
"                      --neighbours rated items of most similar features,\n"
"                      ranking by the cosine of the item's features and\n"
"                      the user's profile (mean-centred ratings times\n"
"                      features; plain counts for --loss implicit)\n",
          f);
    fputs(
"  --time-bias on|item|off  explicit als/sgd/vbmf: time-aware biases\n"
"                      (common/tbias.h) fitted on the model's residuals:\n"
"                      a user-day bias (on) and item biases per time bin\n"
"                      (with --time-bins N > 0, default 0); item: bins\n"
"                      only. Default off. --time-reg-bin F (200),\n"
"                      --time-reg-day F (6): ridge strengths;\n"
"                      --time-rounds N (1): fits of the base model, each\n"
"                      refit on the ratings minus the offsets\n",
          f);
    fputs(
"evaluation and output:\n"
"  --topk N            ranking list length (10)\n"
"  --protocol full|sampled  rank all unrated items, or 100 negatives\n"
"  --negatives N       rank each held-out item among N seeded random items\n"
"                      the user never interacted with (ties count against\n"
"                      it); 0 = among all of them; default 99 (the NCF\n"
"                      protocol) with --split leave-last-out\n"
"  --json              JSON Lines: one object per epoch, then a summary\n"
"  --help              this text\n"
"Exit status: 0 ok, 1 runtime error, 2 usage error.\n",
          f);
}

static int
parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '\0' || *s == '-') {
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX) {
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int
parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '\0' || *s == '-') {
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

static int
parse_f(const char *s, float *out)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0.0) {
        return -1;
    }
    *out = (float)v;
    return 0;
}

static int
parse_frac(const char *s, double *out)
{
    float f;
    if (parse_f(s, &f) != 0 || f >= 1.0f) {
        return -1;
    }
    *out = f;
    return 0;
}

// Returns 0 ok, 1 for --help, 2 usage error (message printed).
static int
parse_args(opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->algo = FRI_TRAIN_ALS;
    o->test_frac = 0.2;
    o->topk = 10;
    o->protocol = FRI_RANK_FULL;
    o->transition = FRI_TRANSITION_DEFAULT;
    fri_train_config_init(&o->given, FRI_TRAIN_ALS);
    fri_bpmf_config_init(&o->bc);
    fri_vbmf_config_init(&o->vc);
    fri_tbias_config_init(&o->tb);
    o->tbias_rounds = 1;
    fri_knn_config_init(&o->kc);
    // Every option but --json and --help takes a value (--name value or
    // --name=value); getopt_long reports them as 0 with their index.
    static const struct option long_opts[] = {
        {"train", required_argument, NULL, 0},
        {"test", required_argument, NULL, 0},
        {"synthetic", required_argument, NULL, 0},
        {"test-frac", required_argument, NULL, 0},
        {"val-frac", required_argument, NULL, 0},
        {"algo", required_argument, NULL, 0},
        {"loss", required_argument, NULL, 0},
        {"k", required_argument, NULL, 0},
        {"epochs", required_argument, NULL, 0},
        {"lr", required_argument, NULL, 0},
        {"lr-decay", required_argument, NULL, 0},
        {"reg", required_argument, NULL, 0},
        {"reg-bias", required_argument, NULL, 0},
        {"weighted", required_argument, NULL, 0},
        {"init-std", required_argument, NULL, 0},
        {"bias-epochs", required_argument, NULL, 0},
        {"alpha", required_argument, NULL, 0},
        {"recency", required_argument, NULL, 0},
        {"transition", required_argument, NULL, 0},
        {"svdpp", required_argument, NULL, 0},
        {"patience", required_argument, NULL, 0},
        {"seed", required_argument, NULL, 0},
        {"burnin", required_argument, NULL, 0},
        {"samples", required_argument, NULL, 0},
        {"beta", required_argument, NULL, 0},
        {"topk", required_argument, NULL, 0},
        {"protocol", required_argument, NULL, 0},
        {"split", required_argument, NULL, 0},
        {"eval", required_argument, NULL, 0},
        {"time-bias", required_argument, NULL, 0},
        {"time-bins", required_argument, NULL, 0},
        {"time-reg-bin", required_argument, NULL, 0},
        {"time-reg-day", required_argument, NULL, 0},
        {"time-rounds", required_argument, NULL, 0},
        {"negatives", required_argument, NULL, 0},
        {"neighbours", required_argument, NULL, 0},
        {"min-support", required_argument, NULL, 0},
        {"item-features", required_argument, NULL, 0},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0; // our own messages
    optind = 1;
    int c, idx = -1;
    // Leading ':' reports a missing value as ':'.
    while ((c = getopt_long(argc, argv, ":h", long_opts, &idx)) != -1) {
        if (c == 'h') {
            return 1;
        }
        if (c == 'j') {
            o->json = 1;
            continue;
        }
        if (c == ':') {
            fprintf(stderr, "fedrec-train: option %s needs a value\n",
                    argv[optind - 1]);
            return 2;
        }
        if (c != 0) {
            fprintf(stderr, "fedrec-train: unknown option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
        char name[64];
        snprintf(name, sizeof(name), "--%s", long_opts[idx].name);
        const char *val = optarg;
        int bad = 0;
        fri_train_config *g = &o->given;
        if (strcmp(name, "--train") == 0) {
            o->train = val;
        } else if (strcmp(name, "--test") == 0) {
            o->test = val;
        } else if (strcmp(name, "--synthetic") == 0) {
            o->synthetic = val;
        } else if (strcmp(name, "--test-frac") == 0) {
            bad = parse_frac(val, &o->test_frac) || o->test_frac <= 0.0;
        } else if (strcmp(name, "--val-frac") == 0) {
            bad = parse_frac(val, &o->val_frac);
        } else if (strcmp(name, "--algo") == 0) {
            o->algo_set = 1;
            if (strcmp(val, "als") == 0) {
                o->algo = FRI_TRAIN_ALS;
            } else if (strcmp(val, "sgd") == 0) {
                o->algo = FRI_TRAIN_SGD;
            } else if (strcmp(val, "bpmf") == 0) {
                o->algo = FRI_TRAIN_ALS;
                o->bpmf = 1;
            } else if (strcmp(val, "vbmf") == 0) {
                o->algo = FRI_TRAIN_ALS;
                o->vbmf = 1;
            } else if (strcmp(val, "pop") == 0) {
                o->algo = FRI_TRAIN_ALS;
                o->pop = 1;
            } else if (strcmp(val, "bpr") == 0) {
                o->algo = FRI_TRAIN_ALS;
                o->bpr = 1;
            } else if (strcmp(val, "itemmean") == 0) {
                o->itemmean = 1;
            } else if (strcmp(val, "usercf") == 0) {
                o->knn = 1;
                o->kc.kind = FRI_KNN_USER;
            } else if (strcmp(val, "itemcf") == 0) {
                o->knn = 1;
                o->kc.kind = FRI_KNN_ITEM;
            } else if (strcmp(val, "content") == 0) {
                o->knn = 1;
                o->content = 1;
                o->kc.kind = FRI_KNN_ITEM;
            } else {
                bad = 1;
            }
        } else if (strcmp(name, "--loss") == 0) {
            if (strcmp(val, "explicit") == 0) {
                g->implicit = 0;
            } else if (strcmp(val, "implicit") == 0) {
                g->implicit = 1;
            } else {
                bad = 1;
            }
        } else if (strcmp(name, "--k") == 0) {
            bad = parse_u32(val, &g->k) || g->k == 0 || g->k > FRI_MF_MAX_K;
            o->k_set = 1;
        } else if (strcmp(name, "--epochs") == 0) {
            bad = parse_u32(val, &g->epochs) || g->epochs == 0;
            o->epochs_set = 1;
        } else if (strcmp(name, "--lr") == 0) {
            bad = parse_f(val, &g->lr) || g->lr <= 0.0f;
            o->lr_set = 1;
        } else if (strcmp(name, "--lr-decay") == 0) {
            bad = parse_f(val, &g->lr_decay);
            o->lr_decay_set = 1;
        } else if (strcmp(name, "--reg") == 0) {
            bad = parse_f(val, &g->reg);
            o->reg_set = 1;
        } else if (strcmp(name, "--reg-bias") == 0) {
            bad = parse_f(val, &g->reg_bias);
            o->reg_bias_set = 1;
        } else if (strcmp(name, "--weighted") == 0) {
            uint32_t w;
            bad = parse_u32(val, &w) || w > 2;
            g->weighted = (int)w;
            o->weighted_set = 1;
        } else if (strcmp(name, "--init-std") == 0) {
            bad = parse_f(val, &g->init_std);
            o->init_std_set = 1;
        } else if (strcmp(name, "--bias-epochs") == 0) {
            bad = parse_u32(val, &g->bias_epochs);
            o->bias_epochs_set = 1;
        } else if (strcmp(name, "--alpha") == 0) {
            bad = parse_f(val, &g->alpha);
            o->alpha_set = 1;
        } else if (strcmp(name, "--recency") == 0) {
            bad = parse_f(val, &g->recency) ||
                  !(g->recency >= 0.0f && g->recency <= FRI_RECENCY_MAX);
            o->recency_set = 1;
        } else if (strcmp(name, "--patience") == 0) {
            bad = parse_u32(val, &g->patience);
            o->patience_set = 1;
        } else if (strcmp(name, "--seed") == 0) {
            bad = parse_u64(val, &g->seed);
            o->seed_set = 1;
        } else if (strcmp(name, "--burnin") == 0) {
            bad = parse_u32(val, &o->bc.burnin);
        } else if (strcmp(name, "--samples") == 0) {
            bad = parse_u32(val, &o->bc.samples) || o->bc.samples == 0;
        } else if (strcmp(name, "--transition") == 0) {
            bad = parse_f(val, &o->transition) ||
                  !(o->transition >= 0.0f &&
                    o->transition <= FRI_TRANSITION_MAX);
        } else if (strcmp(name, "--svdpp") == 0) {
            bad = parse_f(val, &o->vc.svdpp) ||
                  !(o->vc.svdpp >= 0.0f && o->vc.svdpp <= FRI_SVDPP_MAX);
        } else if (strcmp(name, "--beta") == 0) {
            bad = parse_f(val, &o->bc.beta) || !(o->bc.beta > 0.0f);
            o->bc.sample_beta = 0;
            o->vc.beta = o->bc.beta;
            o->vc.update_beta = 0;
        } else if (strcmp(name, "--topk") == 0) {
            bad = parse_u32(val, &o->topk) || o->topk == 0;
        } else if (strcmp(name, "--protocol") == 0) {
            if (strcmp(val, "full") == 0) {
                o->protocol = FRI_RANK_FULL;
            } else if (strcmp(val, "sampled") == 0) {
                o->protocol = FRI_RANK_SAMPLED;
            } else {
                bad = 1;
            }
            o->protocol_set = 1;
        } else if (strcmp(name, "--split") == 0) {
            if (strcmp(val, "random") == 0) {
                o->leave_last = 0;
            } else if (strcmp(val, "leave-last-out") == 0) {
                o->leave_last = 1;
            } else {
                bad = 1;
            }
        } else if (strcmp(name, "--eval") == 0) {
            if (strcmp(val, "test") == 0) {
                o->eval_val = 0;
            } else if (strcmp(val, "val") == 0) {
                o->eval_val = 1;
            } else {
                bad = 1;
            }
        } else if (strcmp(name, "--negatives") == 0) {
            bad = parse_u32(val, &o->negatives);
            o->negatives_set = 1;
        } else if (strcmp(name, "--neighbours") == 0) {
            bad = parse_u32(val, &o->kc.k) || o->kc.k == 0;
        } else if (strcmp(name, "--min-support") == 0) {
            bad = parse_u32(val, &o->kc.min_support);
        } else if (strcmp(name, "--item-features") == 0) {
            o->item_features = val;
        } else if (strcmp(name, "--time-bias") == 0) {
            if (strcmp(val, "off") == 0) {
                o->tbias = 0;
            } else if (strcmp(val, "on") == 0) {
                o->tbias = 1;
                o->tb.user_day = 1;
            } else if (strcmp(val, "item") == 0) {
                o->tbias = 1;
                o->tb.user_day = 0;
            } else {
                bad = 1;
            }
        } else if (strcmp(name, "--time-bins") == 0) {
            bad = parse_u32(val, &o->tb.item_bins) || o->tb.item_bins > 1024;
        } else if (strcmp(name, "--time-reg-bin") == 0) {
            bad = parse_f(val, &o->tb.reg_item_bin) ||
                  !(o->tb.reg_item_bin > 0.0f);
        } else if (strcmp(name, "--time-reg-day") == 0) {
            bad = parse_f(val, &o->tb.reg_user_day) ||
                  !(o->tb.reg_user_day > 0.0f);
        } else if (strcmp(name, "--time-rounds") == 0) {
            bad = parse_u32(val, &o->tbias_rounds) || o->tbias_rounds == 0;
        }
        if (bad) {
            fprintf(stderr, "fedrec-train: bad value '%s' for %s\n", val,
                    name);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fedrec-train: unexpected argument '%s'\n",
                argv[optind]);
        return 2;
    }
    if (o->synthetic != NULL && o->train != NULL) {
        fprintf(stderr, "fedrec-train: --synthetic and --train exclude each "
                        "other\n");
        return 2;
    }
    if (o->test != NULL && o->train == NULL) {
        fprintf(stderr, "fedrec-train: --test needs --train\n");
        return 2;
    }
    if (o->leave_last && (o->train == NULL || o->test != NULL)) {
        fprintf(stderr, "fedrec-train: --split leave-last-out needs --train "
                        "and no --test or --synthetic (one file, split by "
                        "timestamp)\n");
        return 2;
    }
    if (o->eval_val && !o->leave_last) {
        fprintf(stderr, "fedrec-train: --eval val needs --split "
                        "leave-last-out (use --val-frac otherwise)\n");
        return 2;
    }
    if (o->negatives_set && o->protocol_set &&
        o->protocol == FRI_RANK_FULL) {
        fprintf(stderr, "fedrec-train: --negatives and --protocol full "
                        "exclude each other\n");
        return 2;
    }
    if ((o->pop || o->bpr) && !o->given.implicit) {
        fprintf(stderr, "fedrec-train: --algo %s needs --loss implicit\n",
                o->pop ? "pop" : "bpr");
        return 2;
    }
    if (o->content != (o->item_features != NULL) ||
        (o->content && o->train == NULL)) {
        fprintf(stderr, "fedrec-train: --algo content and --item-features "
                        "go together, with --train\n");
        return 2;
    }
    if (o->itemmean && o->given.implicit) {
        fprintf(stderr, "fedrec-train: --algo itemmean needs --loss "
                        "explicit (on interactions every mean is 1)\n");
        return 2;
    }
    // Co-rated norms for ratings (as Surprise's KNNBasic); on 0/1 data
    // those make every overlapping pair similarity 1, so whole-vector norms.
    o->kc.norm = o->given.implicit ? FRI_KNN_NORM_FULL : FRI_KNN_NORM_COMMON;
    o->kc.centre = !o->given.implicit;
    // Defaults of the chosen algorithm, then the explicit overrides.
    const fri_train_config *g = &o->given;
    fri_train_config_init(&o->tc, o->algo);
    if (g->implicit) {
        fri_train_config_init_implicit(&o->tc);
    }
    o->tc.implicit = g->implicit;
    if (o->bpr) {
        // Chosen on the ML-100K leave-last-out validation item
        // (docs/BENCHMARKS.md).
        o->tc.k = 64;
        o->tc.epochs = 60;
        o->tc.lr = 0.05f;
        o->tc.lr_decay = 0.0f;
        o->tc.reg = 0.01f;
        o->tc.reg_bias = 0.01f;
        o->tc.init_std = 0.1f;
    }
    // Explicit ratings default to BPMF, the best on validation data
    // (docs/TUNING.md, docs/BAYES.md); implicit feedback to iALS.
    if (!o->algo_set && !g->implicit && !o->itemmean && !o->knn) {
        o->bpmf = 1;
    }
    if (o->tbias && (o->given.implicit || o->bpmf || o->pop || o->bpr ||
                     o->itemmean || o->knn || o->content)) {
        fprintf(stderr, "fedrec-train: --time-bias needs explicit ratings "
                        "and --algo als, sgd or vbmf\n");
        return 2;
    }
#define TAKE(flag, field)                                                   \
    if (o->flag) {                                                          \
        o->tc.field = g->field;                                             \
    }
    TAKE(k_set, k)
    TAKE(epochs_set, epochs)
    TAKE(lr_set, lr)
    TAKE(lr_decay_set, lr_decay)
    TAKE(reg_set, reg)
    TAKE(reg_bias_set, reg_bias)
    TAKE(weighted_set, weighted)
    TAKE(init_std_set, init_std)
    TAKE(bias_epochs_set, bias_epochs)
    TAKE(alpha_set, alpha)
    TAKE(recency_set, recency)
    TAKE(patience_set, patience)
    TAKE(seed_set, seed)
#undef TAKE
    if (o->val_frac > 0.0 && !o->patience_set) {
        o->tc.patience = 3;
    }
    if (o->bpmf) {
        if (o->tc.implicit) {
            fprintf(stderr, "fedrec-train: --algo bpmf is explicit only\n");
            return 2;
        }
        if (o->k_set) {
            o->bc.k = g->k;
        }
        if (o->init_std_set) {
            o->bc.init_std = g->init_std;
        }
        o->bc.seed = o->tc.seed;
    }
    if (o->vbmf) {
        if (o->tc.implicit) {
            fprintf(stderr, "fedrec-train: --algo vbmf is explicit only\n");
            return 2;
        }
        if (o->k_set) {
            o->vc.k = g->k;
        }
        if (o->epochs_set) {
            o->vc.sweeps = g->epochs;
        }
        if (o->init_std_set) {
            o->vc.init_std = g->init_std;
        }
        o->vc.seed = o->tc.seed;
        o->tc.k = o->vc.k;
        o->tc.epochs = o->vc.sweeps;
    }
    if (o->tc.implicit && o->algo == FRI_TRAIN_SGD) {
        fprintf(stderr, "fedrec-train: --loss implicit needs --algo als\n");
        return 2;
    }
    if (o->tc.implicit && !(o->tc.reg > 0.0f)) {
        fprintf(stderr, "fedrec-train: --loss implicit needs --reg > 0\n");
        return 2;
    }
    return 0;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// The ranking protocol of the options: --negatives N ranks among N sampled
// negatives; leave-last-out defaults to the NCF protocol's 99.
static void
rank_config(const opts *o, fri_rank_config *rc)
{
    fri_rank_config_init(rc);
    rc->k = o->topk;
    rc->protocol = o->protocol;
    if (o->negatives_set || (o->leave_last && !o->protocol_set)) {
        rc->protocol = FRI_RANK_SAMPLED;
        rc->n_neg = o->negatives_set ? o->negatives : 99;
    }
}

// Item popularity: b_i = the item's number of training interactions, no
// factors, so every user gets the same ranking.
static fr_err
train_pop(fri_mf_model **out, const fri_csr *train)
{
    fr_err e = fri_mf_create(out, train->n_rows, train->n_cols, 1);
    if (e != FR_OK) {
        return e;
    }
    for (size_t j = 0; j < train->ptr[train->n_rows]; j++) {
        (*out)->bi[train->idx[j]] += 1.0f;
    }
    return FR_OK;
}

// Item mean: mu + b_i with b_i = the item's damped mean minus mu, no
// factors; unseen items get mu.
static fr_err
train_itemmean(fri_mf_model **out, const fri_csr *train)
{
    size_t nnz = train->ptr[train->n_rows];
    if (nnz == 0) {
        return FR_EINVAL;
    }
    fr_err e = fri_mf_create(out, train->n_rows, train->n_cols, 1);
    if (e != FR_OK) {
        return e;
    }
    fri_mf_model *m = *out;
    double sum = 0.0;
    float *cnt = calloc(train->n_cols, sizeof(float));
    if (cnt == NULL) {
        fri_mf_destroy(m);
        *out = NULL;
        return FR_ENOMEM;
    }
    for (size_t j = 0; j < nnz; j++) {
        sum += train->val[j];
    }
    m->mu = (float)(sum / (double)nnz);
    // b_i = sum (r - mu) / (n + damp): the mean shrunk toward mu.
    for (size_t j = 0; j < nnz; j++) {
        m->bi[train->idx[j]] += train->val[j] - m->mu;
        cnt[train->idx[j]] += 1.0f;
    }
    for (uint32_t i = 0; i < train->n_cols; i++) {
        m->bi[i] /= cnt[i] + FRI_KNN_DAMP;
    }
    free(cnt);
    return FR_OK;
}

static fr_err
score_knn(const void *ctx, float *out, size_t out_len, const uint32_t *users,
          size_t n_users)
{
    return fri_knn_score_users(ctx, out, out_len, users, n_users);
}

static const char *
algo_name(const opts *o)
{
    return o->pop        ? "pop"
           : o->bpr      ? "bpr"
           : o->bpmf     ? "bpmf"
           : o->vbmf     ? "vbmf"
           : o->itemmean ? "itemmean"
           : o->content  ? "content"
           : o->knn      ? (o->kc.kind == FRI_KNN_USER ? "usercf" : "itemcf")
           : o->algo == FRI_TRAIN_SGD ? "sgd"
                                      : "als";
}

typedef struct run {
    const opts        *o;
    const fri_csr     *train;
    const fri_csr     *train_raw; // ratings, for implicit ranking exclusion
    const fri_dataset *test;
    const fri_csr     *test_csr;
    double             t0;
    double             eval_s; // time spent in callbacks, not training
    uint32_t           epochs_run;
} run;

static double
csr_rmse(const fri_mf_model *m, const fri_csr *c, float lo, float hi)
{
    double se = 0.0;
    size_t n = c->ptr[c->n_rows];
    for (uint32_t u = 0; u < c->n_rows && u < m->n_users; u++) {
        for (size_t j = c->ptr[u]; j < c->ptr[u + 1]; j++) {
            float p = fri_mf_predict(m, u, c->idx[j]);
            p = p < lo ? lo : (p > hi ? hi : p);
            double e = (double)c->val[j] - p;
            se += e * e;
        }
    }
    return n > 0 ? sqrt(se / (double)n) : 0.0;
}

static float
base_predict(const fri_mf_model *m, uint32_t u, uint32_t i)
{
    if (u < m->n_users && i < m->n_items) {
        return fri_mf_predict(m, u, i);
    }
    return m->mu + (u < m->n_users ? m->bu[u] : 0.0f) +
           (i < m->n_items ? m->bi[i] : 0.0f);
}

// Time-aware biases (tbias.h) alternated with the base model: fit the
// offsets on the base model's residuals, refit the base model on the
// ratings minus the offsets, o->tbias_rounds times, ending on a fit of the
// offsets. *m is replaced by the last base model.
static fr_err
fit_time_bias(const opts *o, fri_mf_model **m, fri_tbias *tb,
              const fri_dataset *train)
{
    float       *res = malloc((train->n > 0 ? train->n : 1) * sizeof(float));
    fri_dataset  adj = *train;
    fr_err       e = res != NULL ? FR_OK : FR_ENOMEM;
    adj.r = malloc((train->n > 0 ? train->n : 1) * sizeof(fri_triplet));
    if (adj.r == NULL) {
        e = FR_ENOMEM;
    }
    for (uint32_t round = 0; e == FR_OK; round++) {
        for (size_t j = 0; j < train->n; j++) {
            res[j] = train->r[j].rating -
                     base_predict(*m, train->r[j].user, train->r[j].item);
        }
        fri_tbias_free(tb);
        e = fri_tbias_fit(tb, train->r, res, train->n, (*m)->n_items, &o->tb);
        if (e != FR_OK || round + 1 >= o->tbias_rounds) {
            break;
        }
        for (size_t j = 0; j < train->n; j++) {
            const fri_triplet *t = &train->r[j];
            adj.r[j] = *t;
            adj.r[j].rating -= fri_tbias_offset(tb, t->user, t->item, t->ts);
        }
        fri_csr csr = {0};
        e = fri_csr_by_user(&csr, &adj);
        fri_mf_model *m2 = NULL;
        if (e == FR_OK) {
            e = o->vbmf ? fri_train_vbmf(&m2, &csr, &o->vc, NULL, NULL)
                : o->algo == FRI_TRAIN_SGD
                    ? fri_train_sgd(&m2, &csr, NULL, &o->tc, NULL, NULL)
                    : fri_train_als(&m2, &csr, NULL, &o->tc, NULL, NULL);
        }
        fri_csr_free(&csr);
        if (e == FR_OK) {
            fri_mf_destroy(*m);
            *m = m2;
        }
    }
    free(res);
    free(adj.r);
    return e;
}

// Implicit rankings as the devices rank (fedrec/client.h): with the
// last-item term from each user's training interactions (never the held-
// out ones) when the weight is positive and the data has timestamps and
// the model factors; *s unchanged otherwise. ls is freed by the caller
// (fri_last_item_scorer_free) either way.
static fr_err
as_devices(fri_last_item_scorer *ls, fri_scorer *s, const opts *o,
           const fri_csr *train)
{
    memset(ls, 0, sizeof(*ls));
    if (!o->tc.implicit) {
        return FR_OK;
    }
    fri_scorer base = *s;
    return fri_last_item_scorer_init(ls, s, &base, train, train->ts,
                                     o->transition);
}

static int
on_epoch(void *ctx, uint32_t epoch, const fri_mf_model *m)
{
    run *r = ctx;
    double t = now_s();
    double secs = t - r->t0 - r->eval_s;
    r->epochs_run = epoch;
    const fri_train_config *c = &r->o->tc;
    if (!c->implicit) {
        double tr = csr_rmse(m, r->train, c->clamp_lo, c->clamp_hi);
        fri_rating_metrics te = {0};
        fr_err e = fri_eval_rating(&te, m, r->test->r, r->test->n,
                                   c->clamp_lo, c->clamp_hi);
        if (r->o->json) {
            printf("{\"epoch\":%u,\"train_rmse\":%.6f,\"test_rmse\":%.6f,"
                   "\"seconds\":%.4f}\n",
                   epoch, tr, e == FR_OK ? te.rmse : NAN, secs);
        } else {
            printf("epoch %3u  train rmse %.4f  test rmse %.4f  %.3f s\n",
                   epoch, tr, e == FR_OK ? te.rmse : NAN, secs);
        }
    } else {
        fri_rank_config rc;
        rank_config(r->o, &rc);
        fri_rank_metrics rm = {0};
        fri_scorer           s = fri_scorer_of_mf(m);
        fri_last_item_scorer ls;
        fr_err e = as_devices(&ls, &s, r->o, r->train);
        if (e == FR_OK) {
            e = fri_eval_ranking_with(&rm, &s, r->train_raw, r->test_csr,
                                      &rc);
        }
        fri_last_item_scorer_free(&ls);
        if (r->o->json) {
            printf("{\"epoch\":%u,\"hr%u\":%.6f,\"ndcg%u\":%.6f,"
                   "\"seconds\":%.4f}\n",
                   epoch, rc.k, e == FR_OK ? rm.hr : NAN, rc.k,
                   e == FR_OK ? rm.ndcg : NAN, secs);
        } else {
            printf("epoch %3u  HR@%u %.4f  NDCG@%u %.4f  %.3f s\n", epoch,
                   rc.k, e == FR_OK ? rm.hr : NAN, rc.k,
                   e == FR_OK ? rm.ndcg : NAN, secs);
        }
    }
    fflush(stdout);
    r->eval_s += now_s() - t;
    return 0;
}

// Concatenates a and b into out (same id space).
static fr_err
concat(fri_dataset *out, const fri_dataset *a, const fri_dataset *b)
{
    memset(out, 0, sizeof(*out));
    size_t n = a->n + b->n;
    out->r = malloc((n > 0 ? n : 1) * sizeof(fri_triplet));
    if (out->r == NULL) {
        return FR_ENOMEM;
    }
    if (a->n > 0) {
        memcpy(out->r, a->r, a->n * sizeof(fri_triplet));
    }
    if (b->n > 0) {
        memcpy(out->r + a->n, b->r, b->n * sizeof(fri_triplet));
    }
    out->n = n;
    out->n_users = a->n_users > b->n_users ? a->n_users : b->n_users;
    out->n_items = a->n_items > b->n_items ? a->n_items : b->n_items;
    return FR_OK;
}

// Leave-last-out of all into train and test, plus other: the user's held-out
// interaction that is neither trained on nor scored (the test item under
// --eval val), excluded from the sampled negatives all the same.
static fr_err
split_leave_last(const opts *o, const fri_dataset *all, fri_dataset *train,
                 fri_dataset *test, fri_dataset *other)
{
    fri_dataset tr = {0}, va = {0}, te = {0};
    fr_err e = fri_split_leave_last_out(all, &tr, &va, &te);
    if (e != FR_OK) {
        return e;
    }
    if (o->eval_val) {
        *train = tr;
        *test = va;
        *other = te;
        return FR_OK;
    }
    e = concat(train, &tr, &va);
    fri_dataset_free(&tr);
    fri_dataset_free(&va);
    if (e != FR_OK) {
        fri_dataset_free(&te);
        return e;
    }
    *test = te;
    return FR_OK;
}


static int
load_data(const opts *o, fri_dataset *train, fri_dataset *test,
          fri_dataset *other, float **feat, size_t *feat_len,
          uint32_t *n_feat)
{
    char err[512] = "";
    fr_err e;
    if (o->train != NULL) {
        fri_idmap *users = NULL, *items = NULL;
        fri_load_opts lo;
        fri_load_opts_init(&lo);
        e = fri_idmap_create(&users);
        if (e == FR_OK) {
            e = fri_idmap_create(&items);
        }
        if (e == FR_OK) {
            fri_dataset all;
            e = fri_dataset_load(&all, o->train, users, items, &lo, err,
                                 sizeof(err));
            if (e == FR_OK && o->leave_last && !fri_dataset_has_ts(&all)) {
                fri_dataset_free(&all);
                fprintf(stderr, "fedrec-train: %s has no timestamps: "
                        "--split leave-last-out needs them to know each "
                        "user's latest interaction\n", o->train);
                fri_idmap_destroy(users);
                fri_idmap_destroy(items);
                return 1;
            }
            if (e == FR_OK && o->leave_last) {
                e = split_leave_last(o, &all, train, test, other);
                fri_dataset_free(&all);
            } else if (e == FR_OK && o->test != NULL) {
                *train = all;
                e = fri_dataset_load(test, o->test, users, items, &lo, err,
                                     sizeof(err));
                if (e != FR_OK) {
                    fri_dataset_free(train);
                }
            } else if (e == FR_OK) {
                e = fri_split_random(&all, o->test_frac, o->tc.seed, train,
                                     test);
                fri_dataset_free(&all);
            }
        }
        uint32_t frows = 0;
        char     ferr[600];
        if (e == FR_OK && o->item_features != NULL &&
            fri_item_features_load(o->item_features, items, 0, feat, &frows,
                                   n_feat, ferr, sizeof(ferr)) != FR_OK) {
            fprintf(stderr, "fedrec-train: %s\n", ferr);
            fri_dataset_free(train);
            fri_dataset_free(test);
            fri_dataset_free(other);
            fri_idmap_destroy(users);
            fri_idmap_destroy(items);
            return 1;
        }
        if (o->item_features != NULL) {
            *feat_len = (size_t) frows * *n_feat;
        }
        fri_idmap_destroy(users);
        fri_idmap_destroy(items);
    } else {
        fri_synth_config sc;
        fri_synth_config_init(&sc);
        if (o->synthetic != NULL) {
            e = fri_synth_config_parse(&sc, o->synthetic, err, sizeof(err));
            if (e != FR_OK) {
                fprintf(stderr, "fedrec-train: --synthetic: %s\n", err);
                return 2;
            }
        }
        fri_dataset all;
        e = fri_synth_generate(&all, &sc);
        if (e == FR_OK) {
            e = fri_split_random(&all, o->test_frac, o->tc.seed, train, test);
            fri_dataset_free(&all);
        }
    }
    if (e != FR_OK) {
        fprintf(stderr, "fedrec-train: loading data: %s%s%s\n",
                fr_strerror(e), err[0] ? ": " : "", err);
        return 1;
    }
    if (train->n == 0 || test->n == 0) {
        fprintf(stderr, "fedrec-train: empty train or test set%s\n",
                o->leave_last ? " (leave-last-out needs users with at "
                                "least 2 ratings, 3 for --eval val)"
                              : "");
        fri_dataset_free(train);
        fri_dataset_free(test);
        fri_dataset_free(other);
        return 1;
    }
    // Test ids share the maps; keep row/column counts consistent.
    if (test->n_users > train->n_users) {
        train->n_users = test->n_users;
    }
    if (test->n_items > train->n_items) {
        train->n_items = test->n_items;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc == 1) {
        usage(stdout);
        return 0;
    }
    if (rc != 0) {
        return 2;
    }
    fri_dataset train_all = {0}, test = {0}, train = {0}, val = {0};
    fri_dataset other = {0};
    float   *feat = NULL;
    uint32_t n_feat = 0;
    size_t   feat_len = 0;
    rc = load_data(&o, &train_all, &test, &other, &feat, &feat_len, &n_feat);
    if (rc != 0) {
        return rc;
    }
    fr_err e = FR_OK;
    int have_val = 0;
    if (o.val_frac > 0.0) {
        e = fri_split_random(&train_all, o.val_frac, o.tc.seed + 1, &train,
                             &val);
        if (e == FR_OK) {
            train.n_users = train_all.n_users;
            train.n_items = train_all.n_items;
            have_val = val.n > 0;
        }
    } else {
        train = train_all;
        train_all = (fri_dataset){0};
    }
    // Clamp to the observed rating range.
    float lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < train.n; j++) {
        lo = train.r[j].rating < lo ? train.r[j].rating : lo;
        hi = train.r[j].rating > hi ? train.r[j].rating : hi;
    }
    o.tc.clamp_lo = lo;
    o.tc.clamp_hi = hi;
    o.bc.clamp_lo = lo;
    o.bc.clamp_hi = hi;
    fri_csr csr = {0}, raw = {0}, test_csr = {0};
    if (e == FR_OK) {
        e = fri_csr_by_user(&csr, &train);
    }
    if (e == FR_OK && other.n > 0) {
        // Ranking excludes every interaction of the user that is not the
        // scored one: the training ones and the unscored held-out one.
        fri_dataset ex = {0};
        e = concat(&ex, &train, &other);
        if (e == FR_OK) {
            ex.n_users = train.n_users;
            ex.n_items = train.n_items;
            e = fri_csr_by_user(&raw, &ex);
        }
        fri_dataset_free(&ex);
    } else if (e == FR_OK) {
        e = fri_csr_by_user(&raw, &train);
    }
    if (e == FR_OK) {
        fri_dataset tmp = test;
        tmp.n_users = train.n_users;
        tmp.n_items = train.n_items;
        e = fri_csr_by_user(&test_csr, &tmp);
    }
    if (e == FR_OK && o.tc.implicit) {
        // Interactions: every observed pair counts once.
        for (size_t j = 0; j < csr.ptr[csr.n_rows]; j++) {
            csr.val[j] = 1.0f;
        }
    }
    fri_mf_model *m = NULL;
    float *pred = NULL, *truth = NULL;
    if (e == FR_OK && (o.bpmf || o.knn)) {
        pred = malloc(test.n * sizeof(float));
        truth = malloc(test.n * sizeof(float));
        if (pred == NULL || truth == NULL) {
            e = FR_ENOMEM;
        }
        for (size_t j = 0; e == FR_OK && j < test.n; j++) {
            truth[j] = test.r[j].rating;
        }
    }
    run r = {&o, &csr, &raw, &test, &test_csr, now_s(), 0.0, 0};
    fri_knn *knn = NULL;
    if (e == FR_OK) {
        r.t0 = now_s();
        if (o.pop) {
            e = train_pop(&m, &csr);
            r.epochs_run = 0;
        } else if (o.itemmean) {
            e = train_itemmean(&m, &csr);
        } else if (o.knn) {
            e = o.content ? fri_knn_fit_content(&knn, &csr, feat, feat_len,
                                                n_feat, &o.kc)
                          : fri_knn_fit(&knn, &csr, &o.kc);
            // Test predictions now, so they count as the model's time.
            for (size_t j = 0; e == FR_OK && j < test.n; j++) {
                e = fri_knn_predict(knn, test.r[j].user, test.r[j].item,
                                    &pred[j], NULL);
                pred[j] = pred[j] < lo ? lo : (pred[j] > hi ? hi : pred[j]);
            }
        } else if (o.bpr) {
            e = fri_train_bpr(&m, &csr, &o.tc, NULL, NULL);
            r.epochs_run = o.tc.epochs;
        } else if (o.bpmf) {
            // Test predictions are averaged over the kept samples as they
            // are drawn; m holds the averaged factors (ranking uses it).
            e = fri_train_bpmf(&m, pred, test.r, test.n, &csr, &o.bc, NULL,
                               NULL);
            r.epochs_run = o.bc.burnin + o.bc.samples * o.bc.thin;
        } else if (o.vbmf) {
            e = fri_train_vbmf(&m, &csr, &o.vc, on_epoch, &r);
        } else if (o.tc.implicit) {
            e = fri_train_ials(&m, &csr, &o.tc, on_epoch, &r);
        } else if (o.algo == FRI_TRAIN_SGD) {
            e = fri_train_sgd(&m, &csr, have_val ? &val : NULL, &o.tc,
                              on_epoch, &r);
        } else {
            e = fri_train_als(&m, &csr, have_val ? &val : NULL, &o.tc,
                              on_epoch, &r);
        }
    }
    fri_tbias tb = {0};
    int       tb_on = e == FR_OK && o.tbias && !o.tc.implicit && m != NULL &&
                !o.bpmf && !o.knn && !o.pop && !o.itemmean && !o.bpr;
    if (tb_on) {
        e = fit_time_bias(&o, &m, &tb, &train);
    }
    double secs = now_s() - r.t0 - r.eval_s;
    fri_rating_metrics rm = {0};
    fri_rank_metrics km = {0};
    fri_rank_config rcfg;
    rank_config(&o, &rcfg);
    fri_scorer sc = {0};
    if (e == FR_OK && knn != NULL) {
        sc = (fri_scorer){score_knn, knn, fri_knn_n_users(knn),
                          fri_knn_n_items(knn), NULL, 0};
    } else if (e == FR_OK) {
        sc = fri_scorer_of_mf(m);
    }
    if (e == FR_OK && tb_on && test.n > 0) {
        double se = 0.0, ae = 0.0;
        for (size_t j = 0; j < test.n; j++) {
            const fri_triplet *t = &test.r[j];
            float p = base_predict(m, t->user, t->item) +
                      fri_tbias_offset(&tb, t->user, t->item, t->ts);
            p = p < lo ? lo : (p > hi ? hi : p);
            double d = (double)t->rating - p;
            se += d * d;
            ae += fabs(d);
        }
        rm.n = test.n;
        rm.rmse = sqrt(se / (double)test.n);
        rm.mae = ae / (double)test.n;
    } else if (e == FR_OK && (o.bpmf || o.knn)) {
        rm.n = test.n;
        e = fri_rmse_mae(&rm.rmse, &rm.mae, pred, truth, test.n);
    } else if (e == FR_OK) {
        e = fri_eval_rating(&rm, m, test.r, test.n, o.tc.clamp_lo,
                            o.tc.clamp_hi);
    }
    fri_last_item_scorer lis;
    memset(&lis, 0, sizeof(lis));
    if (e == FR_OK) {
        e = as_devices(&lis, &sc, &o, &csr);
    }
    fr_err ke = FR_EINVAL;
    if (e == FR_OK && rcfg.k <= sc.n_items) {
        ke = fri_eval_ranking_with(&km, &sc, &raw, &test_csr, &rcfg);
    }
    // Beyond accuracy: every training user's own top-K list.
    fri_list_metrics lm = {0};
    fr_err           le = FR_EINVAL;
    if (e == FR_OK && rcfg.k <= sc.n_items) {
        le = fri_eval_lists_with(&lm, &sc, &raw, rcfg.k);
    }
    if (e != FR_OK) {
        fprintf(stderr, "fedrec-train: training failed: %s\n",
                fr_strerror(e));
        rc = 1;
    } else if (o.json) {
        const fri_train_config *c = &o.tc;
        printf("{\"algo\":\"%s\",\"loss\":\"%s\",\"k\":%u,\"epochs\":%u,"
               "\"epochs_run\":%u,\"lr\":%g,\"lr_decay\":%g,\"reg\":%g,"
               "\"reg_bias\":%g,\"weighted\":%d,\"alpha\":%g,\"recency\":%g,"
               "\"transition\":%g,\"seed\":%llu,"
               "\"n_train\":%zu,\"n_val\":%zu,\"n_test\":%zu,"
               "\"rmse\":%.6f,\"mae\":%.6f,",
               algo_name(&o), c->implicit ? "implicit" : "explicit",
               o.bpmf ? o.bc.k : (o.knn ? o.kc.k : c->k),
               c->epochs,
               r.epochs_run, c->lr, c->lr_decay, c->reg, c->reg_bias,
               c->weighted, c->alpha, c->implicit ? c->recency : 0.0,
               lis.base.score != NULL ? (double)o.transition : 0.0,
               (unsigned long long)c->seed, train.n,
               val.n, test.n, rm.rmse, rm.mae);
        printf("\"split\":\"%s\",\"eval\":\"%s\",",
               o.leave_last ? "leave-last-out" : "random",
               o.eval_val ? "val" : "test");
        if (rcfg.protocol == FRI_RANK_SAMPLED) {
            printf("\"negatives\":%u,", rcfg.n_neg);
        }
        if (ke == FR_OK) {
            printf("\"hr%u\":%.6f,\"ndcg%u\":%.6f,\"precision%u\":%.6f,"
                   "\"recall%u\":%.6f,\"coverage%u\":%.6f,",
                   rcfg.k, km.hr, rcfg.k, km.ndcg, rcfg.k, km.precision,
                   rcfg.k, km.recall, rcfg.k, km.coverage);
        }
        if (le == FR_OK) {
            printf("\"coverage\":%.6f,\"gini\":%.6f,\"avg_popularity\":%.4f,"
                   "\"novelty\":%.6f,",
                   lm.coverage, lm.gini, lm.avg_popularity, lm.novelty);
            if (isnan(lm.ild)) {
                printf("\"ild\":null,"); // no factors (e.g. --algo pop)
            } else {
                printf("\"ild\":%.6f,", lm.ild);
            }
            printf("\"list_users\":%zu,", lm.n_lists);
        }
        printf("\"seconds\":%.4f}\n", secs);
    } else {
        printf("%s %s k=%u:", algo_name(&o),
               o.tc.implicit ? "implicit" : "explicit",
               o.bpmf ? o.bc.k : (o.knn ? o.kc.k : o.tc.k));
        if (!o.tc.implicit) {
            printf(" test RMSE %.4f  MAE %.4f", rm.rmse, rm.mae);
        }
        if (ke == FR_OK) {
            printf("  HR@%u %.4f  NDCG@%u %.4f  coverage %.3f", rcfg.k,
                   km.hr, rcfg.k, km.ndcg, km.coverage);
        }
        printf("  (%u epochs, %.3f s training, %zu train / %zu test)\n",
               r.epochs_run, secs, train.n, test.n);
        if (le == FR_OK) {
            printf("  top-%u lists of %zu users: coverage %.3f  gini %.3f"
                   "  avg popularity %.1f  novelty %.2f  ILD %.3f\n",
                   rcfg.k, lm.n_lists, lm.coverage, lm.gini,
                   lm.avg_popularity, lm.novelty, lm.ild);
        }
    }
    fri_mf_destroy(m);
    fri_tbias_free(&tb);
    fri_knn_destroy(knn);
    free(feat);
    free(pred);
    free(truth);
    fri_csr_free(&csr);
    fri_csr_free(&raw);
    fri_last_item_scorer_free(&lis);
    fri_csr_free(&test_csr);
    fri_dataset_free(&train_all);
    fri_dataset_free(&train);
    fri_dataset_free(&val);
    fri_dataset_free(&test);
    fri_dataset_free(&other);
    return rc;
}
