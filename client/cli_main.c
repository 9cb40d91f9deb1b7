// fedrec-client: a command-line device. Loads one user's ratings from a
// ratings file, takes part in federated rounds over NNG, keeps its state
// in an encrypted file and prints on-device recommendations.
//
// Item ids: the raw external item id of the ratings file is used as the
// catalog index of the aggregator's model, so it must be < the model's
// n_items (items beyond it are kept but ignored by the fit and scoring).
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "dataset.h"
#include "fedrec/client.h"
#include "keys.h"

#define EXIT_USAGE 2

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: fedrec-client --connect URL --server-key FILE.pub "
        "--ratings FILE --user ID [options]\n"
        "\n"
        "  --connect URL         aggregator address (tcp://host:port, "
        "ipc://path)\n"
        "  --server-key FILE     the aggregator's public key (PREFIX.pub "
        "from fedrec-keygen)\n"
        "  --ratings FILE        ratings file (MovieLens 100K/1M, CSV, "
        "whitespace)\n"
        "  --user ID             external user id whose ratings this "
        "device holds\n"
        "  --rounds N            rounds to contribute to (default 1; 0: "
        "offline)\n"
        "  --state FILE          encrypted state file (loaded, then saved)\n"
        "  --state-key-file F    32-byte key (raw or 64 hex chars) for "
        "--state;\n"
        "                        default: derived from --identity\n"
        "  --identity FILE.key   this device's identity (fedrec-keygen); "
        "default:\n"
        "                        the one in --state, else a fresh one\n"
        "  --top K               print the top-K recommendations at the "
        "end\n"
        "  --explain             with --top: after each recommendation, the "
        "3 of\n"
        "                        your ratings that raise its score most "
        "(exact\n"
        "                        leave-one-out effects)\n"
        "  --diverse L           with --top: re-rank for variety (maximal "
        "marginal\n"
        "                        relevance, L in [0, 1]: 1 = plain ranking, "
        "lower\n"
        "                        = less similar items; 0.7 is a mild "
        "setting)\n"
        "  --recency H           implicit feedback: weigh each of your "
        "interactions\n"
        "                        2^(-r/H), r = your interactions newer "
        "than it\n"
        "                        (default 3; 0 = all alike)\n"
        "  --transition W        implicit feedback: weight of the similarity "
        "to your\n"
        "                        newest interaction in the ranking "
        "(default 1; 0 = off)\n"
        "  --svdpp W             explicit ratings (VBMF): weight of the set "
        "of items\n"
        "                        you rated in your prior (default 0.3; 0 = "
        "off)\n"
        "  --verify-adverts      secure rounds: verify the neighbours' advert\n"
        "                        signatures here too (the aggregator always "
        "does)\n"
        "  --timeout-ms MS       per-request timeout (default 10000)\n"
        "  --json                machine-readable output\n"
        "  --help                this text\n"
        "\n"
        "Item ids in the ratings file are used as the model's catalog "
        "indices\n"
        "and must be below its number of items.\n");
}

typedef struct opts {
    const char *connect;
    const char *server_key;
    const char *ratings;
    const char *state;
    const char *state_key_file;
    const char *identity;
    int64_t     user;
    int         have_user;
    long        rounds;
    long        top;
    int         explain;
    float       diverse; // MMR lambda; 1 = plain ranking
    double      recency; // implicit user-fit half-life, interactions
    double      svdpp;   // rated-set weight in the VB prior
    double      transition; // implicit last-item term weight
    int         verify_adverts; // check the roster's signatures too
    long        timeout_ms;
    int         json;
} opts;

static int
parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno  = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

enum {
    OPT_CONNECT = 256,
    OPT_SERVER_KEY,
    OPT_RATINGS,
    OPT_USER,
    OPT_ROUNDS,
    OPT_STATE,
    OPT_STATE_KEY_FILE,
    OPT_IDENTITY,
    OPT_TOP,
    OPT_EXPLAIN,
    OPT_DIVERSE,
    OPT_RECENCY,
    OPT_SVDPP,
    OPT_TRANSITION,
    OPT_VERIFY_ADVERTS,
    OPT_TIMEOUT_MS,
    OPT_JSON,
};

static const struct option long_opts[] = {
    {"connect", required_argument, NULL, OPT_CONNECT},
    {"server-key", required_argument, NULL, OPT_SERVER_KEY},
    {"ratings", required_argument, NULL, OPT_RATINGS},
    {"user", required_argument, NULL, OPT_USER},
    {"rounds", required_argument, NULL, OPT_ROUNDS},
    {"state", required_argument, NULL, OPT_STATE},
    {"state-key-file", required_argument, NULL, OPT_STATE_KEY_FILE},
    {"identity", required_argument, NULL, OPT_IDENTITY},
    {"top", required_argument, NULL, OPT_TOP},
    {"explain", no_argument, NULL, OPT_EXPLAIN},
    {"diverse", required_argument, NULL, OPT_DIVERSE},
    {"recency", required_argument, NULL, OPT_RECENCY},
    {"svdpp", required_argument, NULL, OPT_SVDPP},
    {"transition", required_argument, NULL, OPT_TRANSITION},
    {"verify-adverts", no_argument, NULL, OPT_VERIFY_ADVERTS},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

// A bounded integer option; prints the error itself.
static int
long_opt(const char *name, const char *v, long lo, long hi, long *out)
{
    if (parse_long(v, lo, hi, out) != 0) {
        fprintf(stderr, "fedrec-client: bad --%s '%s' (%ld..%ld)\n", name, v,
                lo, hi);
        return -1;
    }
    return 0;
}


// A number in [lo, hi] from the flag's value; -1 (message printed) if not.
static int
parse_range(const char *flag, const char *v, double lo, double hi,
            const char *range, double *out)
{
    char *end = NULL;
    errno     = 0;
    double x  = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(x >= lo) || !(x <= hi)) {
        fprintf(stderr, "fedrec-client: %s: '%s' is not a number in %s\n",
                flag, v, range);
        return -1;
    }
    *out = x;
    return 0;
}
static int
parse_args(opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->rounds     = 1;
    o->timeout_ms = 10000;
    o->diverse    = 1.0f;
    o->recency    = -1.0; // the library's default
    o->svdpp      = -1.0;
    o->transition = -1.0;
    opterr        = 0; // our own messages, without argv[0]'s path
    optind        = 1;
    int c;
    // Leading ':' makes a missing value ':' rather than '?'.
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        const char *v = optarg;
        switch (c) {
        case 'h':
            usage(stdout);
            exit(0);
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_EXPLAIN:
            o->explain = 1;
            break;
        case OPT_DIVERSE: {
            double f = 0.0;
            if (parse_range("--diverse", v, 0.0, 1.0, "[0, 1]", &f) != 0) {
                return -1;
            }
            o->diverse = (float) f;
            break;
        }
        case OPT_VERIFY_ADVERTS:
            o->verify_adverts = 1;
            break;
        case OPT_RECENCY:
            if (parse_range("--recency", v, 0.0, 1e6, "[0, 1e6]",
                            &o->recency) != 0) {
                return -1;
            }
            break;
        case OPT_TRANSITION:
            if (parse_range("--transition", v, 0.0, 100.0, "[0, 100]",
                            &o->transition) != 0) {
                return -1;
            }
            break;
        case OPT_SVDPP:
            if (parse_range("--svdpp", v, 0.0, 10.0, "[0, 10]", &o->svdpp) !=
                0) {
                return -1;
            }
            break;
        case OPT_CONNECT:
            o->connect = v;
            break;
        case OPT_SERVER_KEY:
            o->server_key = v;
            break;
        case OPT_RATINGS:
            o->ratings = v;
            break;
        case OPT_STATE:
            o->state = v;
            break;
        case OPT_STATE_KEY_FILE:
            o->state_key_file = v;
            break;
        case OPT_IDENTITY:
            o->identity = v;
            break;
        case OPT_USER: {
            char *end;
            errno   = 0;
            o->user = strtoll(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0') {
                fprintf(stderr, "fedrec-client: bad --user '%s'\n", v);
                return -1;
            }
            o->have_user = 1;
            break;
        }
        case OPT_ROUNDS:
            if (long_opt("rounds", v, 0, 1000000, &o->rounds) != 0) {
                return -1;
            }
            break;
        case OPT_TOP:
            if (long_opt("top", v, 1, 100000, &o->top) != 0) {
                return -1;
            }
            break;
        case OPT_TIMEOUT_MS:
            if (long_opt("timeout-ms", v, 1, 3600000, &o->timeout_ms) != 0) {
                return -1;
            }
            break;
        case ':':
            fprintf(stderr, "fedrec-client: %s needs a value\n",
                    argv[optind - 1]);
            return -1;
        default:
            if (optopt >= OPT_CONNECT) {
                fprintf(stderr, "fedrec-client: '%s' takes no value\n",
                        argv[optind - 1]);
            } else {
                fprintf(stderr, "fedrec-client: unknown or ambiguous "
                                "option '%s'\n", argv[optind - 1]);
            }
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fedrec-client: unexpected argument '%s'\n",
                argv[optind]);
        return -1;
    }
    if (o->rounds > 0 && (o->connect == NULL || o->server_key == NULL)) {
        fprintf(stderr, "fedrec-client: --connect and --server-key are "
                        "required (or --rounds 0)\n");
        return -1;
    }
    if (o->explain && o->top == 0) {
        fprintf(stderr, "fedrec-client: --explain needs --top K\n");
        return -1;
    }
    if (o->diverse != 1.0f && o->top == 0) {
        fprintf(stderr, "fedrec-client: --diverse needs --top K\n");
        return -1;
    }
    if ((o->ratings == NULL) != (!o->have_user)) {
        fprintf(stderr, "fedrec-client: --ratings and --user go together\n");
        return -1;
    }
    if (o->ratings == NULL && o->state == NULL) {
        fprintf(stderr, "fedrec-client: give --ratings/--user or --state\n");
        return -1;
    }
    if (o->state != NULL && o->state_key_file == NULL &&
        o->identity == NULL) {
        fprintf(stderr, "fedrec-client: --state needs --state-key-file or "
                        "--identity\n");
        return -1;
    }
    return 0;
}

// Reads a 32-byte key: the raw bytes, or 64 hex digits (whitespace
// around them allowed).
static int
load_state_key(const char *path, uint8_t key[FR_STATEKEYBYTES])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fedrec-client: cannot open %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    uint8_t buf[160];
    size_t  n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int rc = -1;
    if (n == FR_STATEKEYBYTES) {
        memcpy(key, buf, FR_STATEKEYBYTES);
        rc = 0;
    } else {
        size_t bin_len = 0;
        if (n < sizeof buf &&
            sodium_hex2bin(key, FR_STATEKEYBYTES, (const char *) buf, n,
                           " \t\r\n", &bin_len, NULL) == 0 &&
            bin_len == FR_STATEKEYBYTES) {
            rc = 0;
        }
    }
    sodium_memzero(buf, sizeof buf);
    if (rc != 0) {
        fprintf(stderr, "fedrec-client: %s: expected 32 raw bytes or 64 hex "
                        "digits\n", path);
    }
    return rc;
}

static void
sleep_ms(uint32_t ms)
{
    struct timespec ts;
    ts.tv_sec  = ms / 1000;
    ts.tv_nsec = (long) (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

// Adds the rows of external user o->user; returns the count or -1.
static long
load_ratings(fr_client *c, const opts *o)
{
    fri_idmap *users = NULL, *items = NULL;
    if (fri_idmap_create(&users) != FR_OK ||
        fri_idmap_create(&items) != FR_OK) {
        fri_idmap_destroy(users);
        fprintf(stderr, "fedrec-client: out of memory\n");
        return -1;
    }
    fri_load_opts lo;
    fri_load_opts_init(&lo);
    fri_dataset d;
    char        err[256] = "";
    fr_err      e = fri_dataset_load(&d, o->ratings, users, items, &lo, err,
                                     sizeof err);
    if (e != FR_OK) {
        fprintf(stderr, "fedrec-client: %s\n", err[0] ? err : fr_strerror(e));
        fri_idmap_destroy(users);
        fri_idmap_destroy(items);
        return -1;
    }
    long     added = 0;
    uint32_t u;
    if (fri_idmap_get(users, o->user, 0, &u) == FR_OK) {
        for (size_t i = 0; i < d.n; i++) {
            if (d.r[i].user != u) {
                continue;
            }
            int64_t ext = fri_idmap_ext(items, d.r[i].item);
            if (ext < 0 || ext > (int64_t) UINT32_MAX) {
                fprintf(stderr, "fedrec-client: item id %" PRId64
                                " cannot be a catalog index\n", ext);
                added = -1;
                break;
            }
            e = fr_client_add(c, (uint32_t) ext, d.r[i].rating, d.r[i].ts);
            if (e != FR_OK) {
                fprintf(stderr, "fedrec-client: %s\n", fr_client_errmsg(c));
                added = -1;
                break;
            }
            added++;
        }
    }
    fri_dataset_free(&d);
    fri_idmap_destroy(users);
    fri_idmap_destroy(items);
    return added;
}

int
main(int argc, char **argv)
{
    opts o;
    if (parse_args(&o, argc, argv) != 0) {
        fprintf(stderr, "try 'fedrec-client --help'\n");
        return EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "fedrec-client: libsodium failed to start\n");
        return 1;
    }
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    if (o.recency >= 0.0) {
        cfg.recency_half_life = o.recency;
    }
    if (o.svdpp >= 0.0) {
        cfg.svdpp_weight = o.svdpp;
    }
    if (o.transition >= 0.0) {
        cfg.transition_weight = o.transition;
    }
    cfg.verify_adverts = o.verify_adverts;
    if (o.server_key != NULL) {
        fri_pubkeys pk;
        fr_err      e = fri_pub_load(&pk, o.server_key);
        if (e != FR_OK) {
            fprintf(stderr, "fedrec-client: cannot load server key %s: %s\n",
                    o.server_key, fr_strerror(e));
            return 1;
        }
        memcpy(cfg.server_pk, pk.kx, 32);
        memcpy(cfg.server_pk + 32, pk.sign, 32);
    }
    if (o.identity != NULL) {
        fri_identity id;
        fr_err       e = fri_key_load(&id, o.identity);
        if (e != FR_OK) {
            fprintf(stderr, "fedrec-client: cannot load identity %s: %s\n",
                    o.identity, fr_strerror(e));
            return 1;
        }
        memcpy(cfg.identity_seed, id.seed, FR_SEEDBYTES);
        cfg.has_identity = 1;
        fri_identity_wipe(&id);
    }
    if (o.state != NULL) {
        cfg.state_path = o.state;
        if (o.state_key_file != NULL) {
            if (load_state_key(o.state_key_file, cfg.state_key) != 0) {
                return 1;
            }
            if (sodium_is_zero(cfg.state_key, FR_STATEKEYBYTES)) {
                // The library refuses it too; say why here.
                fprintf(stderr, "fedrec-client: %s holds the all-zero key, "
                                "which protects nothing\n",
                        o.state_key_file);
                return 1;
            }
        } else {
            // Bound to the identity: a KDF subkey of its seed.
            crypto_kdf_derive_from_key(cfg.state_key, FR_STATEKEYBYTES, 1,
                                       "frstate_", cfg.identity_seed);
        }
    }
    fr_client *c = NULL;
    fr_err     e = fr_client_create(&c, &cfg);
    sodium_memzero(&cfg, sizeof cfg);
    if (e != FR_OK) {
        fprintf(stderr, "fedrec-client: cannot start: %s%s%s\n",
                fr_strerror(e), o.state ? " (state file " : "",
                o.state ? "unreadable or wrong key)" : "");
        return 1;
    }
    int rc = 0;
    if (o.ratings != NULL) {
        long n = load_ratings(c, &o);
        if (n < 0) {
            fr_client_destroy(c);
            return 1;
        }
        if (n == 0) {
            fprintf(stderr, "fedrec-client: warning: no ratings for user %"
                            PRId64 " in %s\n", o.user, o.ratings);
        }
    }
    long     done = 0, attempts = 0, failures = 0;
    uint64_t up = 0, down = 0, last_round = 0;
    while (done < o.rounds) {
        attempts++;
        e = fr_client_checkin_nng(c, o.connect, (int) o.timeout_ms);
        fr_checkin_info info;
        fr_client_checkin_info_get(c, &info);
        up += info.bytes_up;
        down += info.bytes_down;
        if (e == FR_OK && info.status == FR_CHECKIN_CONTRIBUTED) {
            done++;
            failures   = 0;
            last_round = info.round;
            if (!o.json) {
                printf("round %" PRIu64 ": contributed (model %" PRIu64
                       ", %" PRIu64 " B up, %" PRIu64 " B down)\n",
                       info.round, info.model_version, info.bytes_up,
                       info.bytes_down);
                fflush(stdout);
            }
            continue;
        }
        uint32_t wait = info.retry_after_ms;
        if (e == FR_OK && info.status == FR_CHECKIN_NOT_SELECTED) {
            if (wait == 0) {
                wait = 100;
            }
        } else {
            failures++;
            fprintf(stderr, "fedrec-client: check-in failed: %s\n",
                    fr_client_errmsg(c));
            if (failures >= 5) {
                rc = 1;
                break;
            }
            if (wait == 0) {
                wait = 200u << failures; // back off
            }
        }
        if (wait > 60000) {
            wait = 60000;
        }
        sleep_ms(wait);
    }
    if (rc == 0 && o.state != NULL && fr_client_save(c) != FR_OK) {
        fprintf(stderr, "fedrec-client: %s\n", fr_client_errmsg(c));
        rc = 1;
    }
    uint32_t *items  = NULL;
    float    *scores = NULL;
    size_t    n_top  = 0;
    if (rc == 0 && o.top > 0) {
        items  = calloc((size_t) o.top, sizeof *items);
        scores = calloc((size_t) o.top, sizeof *scores);
        if (items == NULL || scores == NULL) {
            fprintf(stderr, "fedrec-client: out of memory\n");
            rc = 1;
        } else if (fr_client_recommend_diverse(c, o.diverse, items, scores,
                                               (size_t) o.top,
                                               &n_top) != FR_OK) {
            fprintf(stderr, "fedrec-client: cannot recommend: %s\n",
                    fr_client_errmsg(c));
            rc = 1;
        }
    }
    // Explanations: the user's ratings with the largest leave-one-out
    // effect on each recommended item's score.
    enum { N_WHY = 3 };
    uint32_t *why_items = NULL;
    float    *why_w     = NULL;
    size_t   *n_why     = NULL;
    if (rc == 0 && o.explain && n_top > 0) {
        why_items = calloc(n_top * N_WHY, sizeof *why_items);
        why_w     = calloc(n_top * N_WHY, sizeof *why_w);
        n_why     = calloc(n_top, sizeof *n_why);
        if (why_items == NULL || why_w == NULL || n_why == NULL) {
            fprintf(stderr, "fedrec-client: out of memory\n");
            rc = 1;
        }
        for (size_t i = 0; i < n_top && rc == 0; i++) {
            if (fr_client_explain(c, items[i], why_items + i * N_WHY,
                                  why_w + i * N_WHY, N_WHY,
                                  &n_why[i]) != FR_OK) {
                fprintf(stderr, "fedrec-client: cannot explain item %u: %s\n",
                        (unsigned) items[i], fr_client_errmsg(c));
                rc = 1;
            }
        }
    }
    if (o.json) {
        printf("{\"ok\":%s,\"rounds\":%ld,\"attempts\":%ld,"
               "\"last_round\":%" PRIu64 ",\"ratings\":%zu,"
               "\"bytes_up\":%" PRIu64 ",\"bytes_down\":%" PRIu64
               ",\"top\":[",
               rc == 0 ? "true" : "false", done, attempts, last_round,
               fr_client_count(c), up, down);
        for (size_t i = 0; i < n_top; i++) {
            printf("%s{\"item\":%u,\"score\":%.6g", i ? "," : "",
                   (unsigned) items[i], (double) scores[i]);
            if (n_why != NULL) {
                printf(",\"because\":[");
                for (size_t j = 0; j < n_why[i]; j++) {
                    printf("%s{\"item\":%u,\"effect\":%.6g}", j ? "," : "",
                           (unsigned) why_items[i * N_WHY + j],
                           (double) why_w[i * N_WHY + j]);
                }
                printf("]");
            }
            printf("}");
        }
        printf("]}\n");
    } else {
        for (size_t i = 0; i < n_top; i++) {
            printf("%zu\t%u\t%.4f\n", i + 1, (unsigned) items[i],
                   (double) scores[i]);
            for (size_t j = 0; n_why != NULL && j < n_why[i]; j++) {
                printf("\tbecause you rated item %u (%+.4f)\n",
                       (unsigned) why_items[i * N_WHY + j],
                       (double) why_w[i * N_WHY + j]);
            }
        }
    }
    free(why_items);
    free(why_w);
    free(n_why);
    free(items);
    free(scores);
    fr_client_destroy(c);
    return rc;
}
