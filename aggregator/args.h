// Command line and config file of fedrec-aggregator, parsed into a
// fri_agg_config plus the process options. In the core so that tests can
// check every validation message.
#ifndef FR_AGGREGATOR_ARGS_H
#define FR_AGGREGATOR_ARGS_H

#include <stddef.h>
#include <stdio.h>

#include "agg.h"
#include "net.h"

typedef struct fri_agg_args {
    fri_agg_config cfg;
    char          *listen;    // NNG URL
    char          *key_path;  // PREFIX.key
    char          *state_dir;
    char          *http;      // HOST:PORT or NULL
    char          *allow_path;
    char          *upstream;   // edge: the root's NNG URL
    char          *upstream_key_path; // edge: the root's PREFIX.pub
    uint64_t       upstream_margin_ms; // edge: close before the root
    char          *edge_cred_path; // edge: the root's credential for it
    uint8_t       *allow;     // n_allow X25519 keys
    int            contexts;  // NNG contexts (also net.n_contexts)
    fri_net_opts   net;       // connection limits
    int            help;      // --help given
    unsigned       given;     // FRI_AGG_GIVEN_* flags named by the user
    // Set when no algorithm or aggregation was chosen and cohorts are
    // bounded: the private default (VBMF on every device's latest
    // statistics, the deltas masked with SecAgg+) is in cfg.
    int            private_default;
    char          *config_path; // --config FILE, re-read on SIGHUP
    char          *item_features_path; // --item-features FILE (u.item)
    float         *item_features; // its rows (cfg.item_features)
} fri_agg_args;

// The flags that choose the algorithm or the aggregation; naming any of
// them keeps the plain defaults of fri_agg_config_init.
enum {
    FRI_AGG_GIVEN_ALGO   = 1u << 0,
    FRI_AGG_GIVEN_SECAGG = 1u << 1,
    FRI_AGG_GIVEN_LOSS   = 1u << 2,
    FRI_AGG_GIVEN_DP     = 1u << 3,
    FRI_AGG_GIVEN_FORGET = 1u << 4,
    FRI_AGG_GIVEN_LATEST = 1u << 5,
    FRI_AGG_GIVEN_CLIP   = 1u << 6
};

// Parses argv (argv[0] is skipped). A --config FILE is read first and the
// flags override it. Loads --key and --allow. On error returns FR_EINVAL
// (or FR_EIO for unreadable files) with a sentence in err; callers exit 2.
// Release with fri_agg_args_free even on error.
FR_NODISCARD fr_err fri_agg_args_parse(fri_agg_args *a, int argc,
                                       char **argv, char *err,
                                       size_t err_cap);
void fri_agg_args_free(fri_agg_args *a);

// The --help text.
void fri_agg_usage(FILE *f);

// SIGHUP: the `items` line of the --config file (what main.c hands to
// fri_agg_grow_items). FR_ENOENT when the file has none; FR_EINVAL or
// FR_EIO (err says why) when it cannot be read or the value is not an
// integer. Nothing else in the file is re-read.
FR_NODISCARD fr_err fri_agg_args_config_items(const char *path,
                                              uint32_t *n_items, char *err,
                                              size_t err_cap);

#endif
