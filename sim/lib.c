// libfedrec-sim (fedrec/sim.h): a fedrec-sim run behind an opaque handle.
// Options go through the command-line parser (args.c), so the library and
// fedrec-sim share names, checks and defaults; the run is the stepped
// round driver of run.c.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../aggregator/agg.h"
#include "client_fit.h"
#include "fedrec/sim.h"
#include "sim.h"

struct fr_sim {
    fri_sim_config  c;
    fri_sim_pop     pop;
    int             pop_ok;
    fri_sim_summary s;
    fri_sim_round  *rounds;
    fri_sim_runner *rn;
    // The command line the config was parsed from: c points into it.
    char **argv;
    int    argc;
    char   err[512];
    // The caller's update hook (fr_sim_set_update_hook).
    fr_sim_update_fn hook_fn;
    void            *hook_ctx;
    fr_sim_device_fn dev_fn; // the device-update hook
    void            *dev_ctx;
    fr_sim_sum_fn    sum_fn; // the sum hook
    void            *sum_ctx;
    fr_sim_masked_fn masked_fn; // the masked-vector hook
    void            *masked_ctx;
};

static fr_err
seterr(fr_sim *sim, fr_err e, const char *msg)
{
    snprintf(sim->err, sizeof(sim->err), "%s", msg);
    return e;
}

void
fr_sim_destroy(fr_sim *sim)
{
    if (sim == NULL) {
        return;
    }
    fri_sim_runner_destroy(sim->rn);
    if (sim->pop_ok) {
        fri_sim_pop_free(&sim->pop);
    }
    free(sim->rounds);
    for (int i = 0; i < sim->argc; i++) {
        free(sim->argv[i]);
    }
    free(sim->argv);
    free(sim);
}

const char *
fr_sim_errmsg(const fr_sim *sim)
{
    return sim != NULL ? sim->err : "no simulation";
}

const char *
fr_sim_usage(void)
{
    return fri_sim_usage();
}

// Takes ownership of argv (argc strings, each malloc'd, argv[0] a name).
// *help: 1 for --help, 2 for a usage error (see fr_sim_create_argv).
static fr_err
create_owned(fr_sim **out, int argc, char **argv, const fr_sim_group *group,
    int *help, char *err, size_t err_cap)
{
    fr_err e;
    *out  = NULL;
    *help = 0;
    if (err_cap > 0) {
        err[0] = '\0';
    }
    fr_sim *sim = calloc(1, sizeof(*sim));
    if (sim == NULL) {
        for (int i = 0; i < argc; i++) {
            free(argv[i]);
        }
        free(argv);
        if (err_cap > 0) {
            snprintf(err, err_cap, "out of memory");
        }
        return FR_ENOMEM;
    }
    // --config FILE: its settings become arguments (the handle owns them).
    int    eargc = 0;
    char **eargv = NULL;
    e = fri_sim_expand_config(argc, argv, &eargc, &eargv, err, err_cap);
    fri_sim_argv_free(argc, argv);
    if (e != FR_OK) {
        *help = e == FR_EINVAL ? 2 : 0;
        free(sim);
        return e;
    }
    argc      = eargc;
    argv      = eargv;
    sim->argv = argv;
    sim->argc = argc;
    fri_sim_config_init(&sim->c);
    e = fri_sim_parse_args(&sim->c, argc, argv, help, err, err_cap);
    if (e != FR_OK || *help) {
        *help = e != FR_OK ? 2 : 1;
        fr_sim_destroy(sim);
        return e;
    }
    if (sim->c.mpi != (group != NULL)) {
        snprintf(err, err_cap, "%s",
            group == NULL
                ? "--mpi: run it under mpirun, from a fedrec-sim built with "
                  "MPI (libopenmpi-dev)"
                : "a process group needs --mpi on the command line");
        *help = 2;
        fr_sim_destroy(sim);
        return FR_EINVAL;
    }
    sim->c.group = group;
    e = fri_sim_pop_load(&sim->pop, &sim->c, err, err_cap);
    if (e != FR_OK) {
        fr_sim_destroy(sim);
        return e;
    }
    sim->pop_ok = 1;
    fri_sim_config_resolve(&sim->c, &sim->pop);
    if (sim->c.reference && (group == NULL || group->rank == 0)) {
        fr_err re = fri_sim_reference(&sim->c, &sim->pop, &sim->s);
        if (re != FR_OK) {
            // The run does not depend on it: said, not fatal.
            fprintf(stderr, "fedrec-sim: reference training failed: %s\n",
                fr_strerror(re));
        }
    }
    sim->rounds = calloc(sim->c.rounds, sizeof(*sim->rounds));
    if (sim->rounds == NULL) {
        fr_sim_destroy(sim);
        if (err_cap > 0) {
            snprintf(err, err_cap, "out of memory");
        }
        return FR_ENOMEM;
    }
    e = fri_sim_runner_create(&sim->rn, &sim->c, &sim->pop, sim->rounds,
        &sim->s, NULL, NULL, err, err_cap);
    if (e != FR_OK) {
        fr_sim_destroy(sim);
        return e;
    }
    *out = sim;
    return FR_OK;
}

static char *
dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char  *d = malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

static void
free_argv(char **argv, int argc)
{
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    free(argv);
}

fr_err
fr_sim_create_argv(
    fr_sim **out, int argc, char **argv, int *cli, char *err, size_t err_cap)
{
    return fr_sim_create_group(out, argc, argv, NULL, cli, err, err_cap);
}

fr_err
fr_sim_create_group(fr_sim **out, int argc, char **argv,
    const fr_sim_group *group, int *cli, char *err, size_t err_cap)
{
    if (out == NULL || cli == NULL || argc < 1 || argv == NULL) {
        if (out != NULL) {
            *out = NULL;
        }
        if (err_cap > 0) {
            snprintf(err, err_cap, "fr_sim_create_argv: bad arguments");
        }
        return FR_EINVAL;
    }
    char **own = calloc((size_t)argc + 1, sizeof(*own));
    for (int i = 0; own != NULL && i < argc; i++) {
        own[i] = dup_str(argv[i] != NULL ? argv[i] : "");
        if (own[i] == NULL) {
            free_argv(own, i);
            own = NULL;
        }
    }
    if (own == NULL) {
        *out = NULL;
        if (err_cap > 0) {
            snprintf(err, err_cap, "out of memory");
        }
        return FR_ENOMEM;
    }
    return create_owned(out, argc, own, group, cli, err, err_cap);
}

// An option name: lower-case letters, digits, '-' or '_' (as '-').
static int
name_ok(const char *n)
{
    if (n == NULL || *n == '\0' || *n == '-' || *n == '_' || strlen(n) > 64) {
        return 0;
    }
    for (const char *p = n; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'
                || *p == '_')) {
            return 0;
        }
    }
    return 1;
}

fr_err
fr_sim_create(fr_sim **out, size_t n_opts, const char *const *names,
    const char *const *values, char *err, size_t err_cap)
{
    if (out == NULL || (n_opts > 0 && (names == NULL || values == NULL))
        || n_opts > 4096) {
        if (out != NULL) {
            *out = NULL;
        }
        if (err_cap > 0) {
            snprintf(err, err_cap, "fr_sim_create: bad arguments");
        }
        return FR_EINVAL;
    }
    *out = NULL;
    for (size_t i = 0; i < n_opts; i++) {
        if (!name_ok(names[i]) || strcmp(names[i], "help") == 0) {
            if (err_cap > 0) {
                snprintf(err, err_cap,
                    "option name '%s': not an option (names are "
                    "fedrec-sim's flags without the dashes)",
                    names[i] != NULL ? names[i] : "(null)");
            }
            return FR_EINVAL;
        }
    }
    int    argc = (int)n_opts + 1;
    char **argv = calloc((size_t)argc + 1, sizeof(*argv));
    int    made = 0;
    if (argv != NULL && (argv[0] = dup_str("fedrec-sim")) != NULL) {
        made = 1;
        for (size_t i = 0; i < n_opts; i++) {
            // "--name=value": a value that starts with '-' is not taken
            // for an option, and a switch given a value is refused by
            // the parser with a clear message.
            size_t nl = strlen(names[i]);
            size_t vl = values[i] != NULL ? strlen(values[i]) + 1 : 0;
            char  *a  = malloc(2 + nl + vl + 1);
            if (a == NULL) {
                break;
            }
            memcpy(a, "--", 2);
            for (size_t j = 0; j < nl; j++) {
                a[2 + j] = names[i][j] == '_' ? '-' : names[i][j];
            }
            a[2 + nl] = '\0';
            if (values[i] != NULL) {
                a[2 + nl] = '=';
                memcpy(a + 3 + nl, values[i], vl);
            }
            argv[made++] = a;
        }
    }
    if (made != argc) {
        free_argv(argv, made);
        if (err_cap > 0) {
            snprintf(err, err_cap, "out of memory");
        }
        return FR_ENOMEM;
    }
    int help = 0;
    return create_owned(out, argc, argv, NULL, &help, err, err_cap);
}

void
fr_sim_get_info(const fr_sim *sim, fr_sim_info *info)
{
    memset(info, 0, sizeof(*info));
    info->rounds   = sim->c.rounds;
    info->n_users  = sim->pop.n_users;
    info->n_items  = sim->pop.n_items;
    info->k        = sim->c.k;
    info->implicit = sim->c.implicit;
    info->json     = sim->c.json;
    info->quiet    = sim->c.quiet;
    info->progress = sim->c.progress;
    info->out_dir  = sim->c.out_dir;
}

fr_err
fr_sim_step(fr_sim *sim)
{
    sim->err[0] = '\0';
    return fri_sim_runner_step(sim->rn, sim->err, sizeof(sim->err));
}

fr_err
fr_sim_run(fr_sim *sim)
{
    fr_err e = FR_OK;
    while (e == FR_OK && !fri_sim_runner_finished(sim->rn)) {
        e = fr_sim_step(sim);
    }
    return e;
}

uint32_t
fr_sim_rounds_run(const fr_sim *sim)
{
    return fri_sim_runner_rounds_run(sim->rn);
}

uint32_t
fr_sim_rounds_reported(const fr_sim *sim)
{
    return fri_sim_runner_rounds_reported(sim->rn);
}

int
fr_sim_finished(const fr_sim *sim)
{
    return fri_sim_runner_finished(sim->rn);
}

static const fri_sim_round *
reported(fr_sim *sim, uint32_t round)
{
    if (round < 1 || round > fri_sim_runner_rounds_reported(sim->rn)) {
        snprintf(sim->err, sizeof(sim->err),
            "round %u is not reported (rounds 1..%u are)", round,
            fri_sim_runner_rounds_reported(sim->rn));
        return NULL;
    }
    return &sim->rounds[round - 1];
}

fr_err
fr_sim_round_metrics(fr_sim *sim, uint32_t round, fr_sim_metrics *m)
{
    const fri_sim_round *r = reported(sim, round);
    if (r == NULL) {
        return FR_EINVAL;
    }
    int ex = r->evaluated && !sim->c.implicit;
    int im = r->evaluated && sim->c.implicit;
    memset(m, 0, sizeof(*m));
    m->round      = r->round;
    m->evaluated  = r->evaluated;
    m->rmse       = ex ? r->rmse : NAN;
    m->mae        = ex ? r->mae : NAN;
    m->hr10       = im ? r->hr10 : NAN;
    m->ndcg10     = im ? r->ndcg10 : NAN;
    m->clients    = r->clients;
    m->dropped    = r->dropped;
    m->failed     = r->failed;
    m->abandoned  = r->abandoned;
    m->bytes_up   = r->bytes_up;
    m->bytes_down = r->bytes_down;
    m->seconds    = r->seconds;
    m->epsilon    = r->priv.epsilon;
    m->attack_auc = r->priv.attack_auc;
    return FR_OK;
}

// Writes what fn prints into buf (see the header for cap and *len).
typedef void (*print_fn)(FILE *f, const fr_sim *sim, const void *arg);

static fr_err
to_buf(fr_sim *sim, print_fn fn, const void *arg, char *buf, size_t cap,
    size_t *len)
{
    char  *mem = NULL;
    size_t n   = 0;
    FILE  *f   = open_memstream(&mem, &n);
    if (f == NULL) {
        return seterr(sim, FR_ENOMEM, "out of memory");
    }
    fn(f, sim, arg);
    if (fclose(f) != 0 || mem == NULL) {
        free(mem);
        return seterr(sim, FR_ENOMEM, "out of memory");
    }
    if (len != NULL) {
        *len = n;
    }
    fr_err e = FR_OK;
    if (buf == NULL || cap <= n) {
        snprintf(sim->err, sizeof(sim->err), "buffer of %zu bytes, %zu needed",
            cap, n + 1);
        e = FR_ENOSPC;
    } else {
        memcpy(buf, mem, n + 1);
    }
    free(mem);
    return e;
}

static void
print_round(FILE *f, const fr_sim *sim, const void *arg)
{
    fri_sim_json_round(f, &sim->c, arg);
}

static void
print_summary(FILE *f, const fr_sim *sim, const void *arg)
{
    (void)arg;
    fri_sim_json_summary(f, &sim->c, &sim->s);
}

static void
print_text(FILE *f, const fr_sim *sim, const void *arg)
{
    (void)arg;
    fri_sim_text_summary(f, &sim->c, &sim->s);
}

static fr_err
need_end(fr_sim *sim)
{
    if (!fri_sim_runner_finished(sim->rn)) {
        return seterr(
            sim, FR_ESTATE, "the run has not finished (step it to the end)");
    }
    return FR_OK;
}

fr_err
fr_sim_round_json(
    fr_sim *sim, uint32_t round, char *buf, size_t cap, size_t *len)
{
    const fri_sim_round *r = reported(sim, round);
    if (r == NULL) {
        return FR_EINVAL;
    }
    return to_buf(sim, print_round, r, buf, cap, len);
}

fr_err
fr_sim_summary_json(fr_sim *sim, char *buf, size_t cap, size_t *len)
{
    fr_err e = need_end(sim);
    return e != FR_OK ? e : to_buf(sim, print_summary, NULL, buf, cap, len);
}

fr_err
fr_sim_summary_text(fr_sim *sim, char *buf, size_t cap, size_t *len)
{
    fr_err e = need_end(sim);
    return e != FR_OK ? e : to_buf(sim, print_text, NULL, buf, cap, len);
}

fr_err
fr_sim_write_outputs(fr_sim *sim, const char *dir)
{
    fr_err e = need_end(sim);
    if (e != FR_OK) {
        return e;
    }
    if (dir == NULL || *dir == '\0') {
        return seterr(sim, FR_EINVAL, "output folder: empty path");
    }
    return fri_sim_write_outputs(dir, &sim->c, sim->rounds, sim->c.rounds,
        &sim->s, sim->err, sizeof(sim->err));
}

fr_err
fr_sim_model(
    fr_sim *sim, float *mu, float *bi, size_t bi_len, float *Q, size_t Q_len)
{
    size_t ni = sim->pop.n_items, nq = ni * sim->c.k;
    if ((bi != NULL && bi_len < ni) || (Q != NULL && Q_len < nq)) {
        snprintf(sim->err, sizeof(sim->err),
            "model buffers: %zu biases and %zu factors needed", ni, nq);
        return FR_ENOSPC;
    }
    fri_agg_model_copy(fri_sim_runner_agg(sim->rn), mu, bi,
        bi != NULL ? ni : 0, Q, Q != NULL ? nq : 0, NULL);
    return FR_OK;
}

fr_err
fr_sim_model_hash(fr_sim *sim, uint8_t out[32])
{
    fr_err e = need_end(sim);
    if (e == FR_OK) {
        memcpy(out, fri_sim_runner_hash(sim->rn), 32);
    }
    return e;
}

// JSON string contents: quotes, backslashes and control characters escaped.
static void
json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p);
        } else {
            fputc(*p, f);
        }
    }
    fputc('"', f);
}

#ifndef FR_GIT_REVISION
#define FR_GIT_REVISION "unknown"
#endif

// {"config":{...}} of the settings that define the run (sorted).
static void
print_config(FILE *f, const fr_sim *sim, const void *arg)
{
    const fri_sim_setting *set = arg;
    size_t                 n   = 0;
    while (set[n].name[0] != '\0') {
        n++;
    }
    fputc('{', f);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? "," : "", f);
        json_str(f, set[i].name);
        fputc(':', f);
        if (set[i].value == NULL) {
            fputs("true", f);
        } else {
            json_str(f, set[i].value);
        }
    }
    fputc('}', f);
    (void)sim;
}

fr_err
fr_sim_provenance_json(fr_sim *sim, char *buf, size_t cap, size_t *len)
{
    enum { MAX_SET = 128 };
    fri_sim_setting set[MAX_SET + 1];
    size_t          n = 0;
    memset(set, 0, sizeof(set));
    if (fri_sim_settings(sim->argc, sim->argv, set, MAX_SET, &n) != FR_OK) {
        return seterr(sim, FR_ENOSPC, "too many settings");
    }
    // The configuration's text, then its hash (BLAKE2b-128, hex).
    char  *cfg = NULL;
    size_t cn  = 0;
    FILE  *f   = open_memstream(&cfg, &cn);
    if (f == NULL) {
        return seterr(sim, FR_ENOMEM, "out of memory");
    }
    print_config(f, sim, set);
    if (fclose(f) != 0 || cfg == NULL) {
        free(cfg);
        return seterr(sim, FR_ENOMEM, "out of memory");
    }
    uint8_t h[16];
    char    hex[33];
    crypto_generichash(h, sizeof(h), (const uint8_t *)cfg, cn, NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    char  *mem = NULL;
    size_t mn  = 0;
    f          = open_memstream(&mem, &mn);
    if (f == NULL) {
        free(cfg);
        return seterr(sim, FR_ENOMEM, "out of memory");
    }
    fprintf(f,
        "{\"config\":%s,\"config_hash\":\"%s\",\"seed\":%llu,"
        "\"version\":\"%s\",\"git\":",
        cfg, hex, (unsigned long long)sim->c.seed, fr_version_string());
    json_str(f, FR_GIT_REVISION);
    fputc('}', f);
    free(cfg);
    if (fclose(f) != 0 || mem == NULL) {
        free(mem);
        return seterr(sim, FR_ENOMEM, "out of memory");
    }
    if (len != NULL) {
        *len = mn;
    }
    fr_err e = FR_OK;
    if (buf == NULL || cap <= mn) {
        snprintf(sim->err, sizeof(sim->err), "buffer of %zu bytes, %zu needed",
            cap, mn + 1);
        e = FR_ENOSPC;
    } else {
        memcpy(buf, mem, mn + 1);
    }
    free(mem);
    return e;
}

static int
update_hook(void *ctx, uint32_t round, uint32_t device, const uint8_t pk[32],
    const fri_agg_update *u)
{
    const fr_sim *sim = ctx;
    fr_sim_update pu;
    memset(&pu, 0, sizeof(pu));
    pu.round       = round;
    pu.device      = device;
    pu.key         = pk;
    pu.n           = u->n;
    pu.items       = u->items;
    pu.rows        = u->rows;
    pu.width       = u->n > 0 ? (uint32_t)(u->rows_len / u->n) : 0;
    pu.gram        = u->gram;
    pu.gram_len    = u->gram_len;
    pu.sum_ratings = u->sum_ratings;
    pu.count       = u->count;
    pu.weight      = u->weight;
    return sim->hook_fn(sim->hook_ctx, &pu);
}

fr_err
fr_sim_set_update_hook(fr_sim *sim, fr_sim_update_fn fn, void *ctx)
{
    sim->err[0] = '\0';
    fr_err e    = fri_sim_runner_set_update_hook(sim->rn,
        fn != NULL ? update_hook : NULL, sim, sim->err, sizeof(sim->err));
    if (e == FR_OK) {
        sim->hook_fn  = fn;
        sim->hook_ctx = ctx;
    }
    return e;
}

static int
device_hook(void *ctx, uint32_t round, uint32_t device, struct fr_client *cl,
    fri_update_buf *ub)
{
    (void)cl;
    const fr_sim        *sim = ctx;
    fr_sim_device_update du;
    memset(&du, 0, sizeof(du));
    du.round     = round;
    du.device    = device;
    du.n         = ub->n_rows;
    du.items     = ub->items;
    du.rows      = ub->rows;
    du.width     = ub->width;
    du.extra     = ub->extra;
    du.extra_len = ub->n_extra;
    du.weight    = &ub->weight;
    // Any non-zero from the caller stops the run (sim.h), never withholds.
    return sim->dev_fn(sim->dev_ctx, &du) != 0 ? 1 : 0;
}

fr_err
fr_sim_set_device_hook(fr_sim *sim, fr_sim_device_fn fn, void *ctx)
{
    sim->err[0] = '\0';
    fr_err e    = fri_sim_runner_set_device_hook(sim->rn,
        fn != NULL ? device_hook : NULL, sim, sim->err, sizeof(sim->err));
    if (e == FR_OK) {
        sim->dev_fn  = fn;
        sim->dev_ctx = ctx;
    }
    return e;
}

// The aggregator's per-item rows, packed for the caller and copied back
// only if the hook accepts (a failing hook leaves the sums as they were).
static int
sum_hook(void *ctx, uint32_t round, fri_agg_sum_view *v)
{
    const fr_sim *sim = ctx;
    size_t        n = v->n, w = v->width;
    if (w > UINT32_MAX || (n > 0 && w > SIZE_MAX / sizeof(float) / n)) {
        return -1;
    }
    float *rows = malloc(sizeof(float) * (n * w > 0 ? n * w : 1));
    if (rows == NULL) {
        return -1;
    }
    for (size_t j = 0; j < n; j++) {
        memcpy(rows + j * w, v->rows[v->items[j]], sizeof(float) * w);
    }
    double     sum = *v->sum_ratings, count = *v->count;
    fr_sim_sum s;
    memset(&s, 0, sizeof(s));
    s.round       = round;
    s.cohort      = v->n_updates;
    s.n           = v->n;
    s.items       = v->items;
    s.rows        = rows;
    s.width       = (uint32_t)w;
    s.sum_ratings = &sum;
    s.count       = &count;
    s.mu          = v->mu;
    s.bi          = v->bi;
    s.Q           = v->Q;
    s.n_items     = v->n_items;
    s.k           = v->k;
    int rc        = sim->sum_fn(sim->sum_ctx, &s);
    if (rc == 0) {
        for (size_t j = 0; j < n; j++) {
            memcpy(v->rows[v->items[j]], rows + j * w, sizeof(float) * w);
        }
        *v->sum_ratings = sum;
        *v->count       = count;
    }
    free(rows);
    return rc;
}

static int
masked_hook(
    void *ctx, uint32_t round, uint32_t member, const uint32_t *y, size_t dim)
{
    const fr_sim *sim = ctx;
    fr_sim_masked m
        = { .round = round, .member = member, .words = y, .n_words = dim };
    return sim->masked_fn(sim->masked_ctx, &m);
}

fr_err
fr_sim_set_masked_hook(fr_sim *sim, fr_sim_masked_fn fn, void *ctx)
{
    sim->err[0] = '\0';
    fr_err e    = fri_sim_runner_set_masked_hook(sim->rn,
        fn != NULL ? masked_hook : NULL, sim, sim->err, sizeof(sim->err));
    if (e == FR_OK) {
        sim->masked_fn  = fn;
        sim->masked_ctx = ctx;
    }
    return e;
}

fr_err
fr_sim_set_sum_hook(fr_sim *sim, fr_sim_sum_fn fn, void *ctx)
{
    sim->err[0]  = '\0';
    sim->sum_fn  = fn;
    sim->sum_ctx = ctx;
    return fri_sim_runner_set_sum_hook(
        sim->rn, fn != NULL ? sum_hook : NULL, sim);
}

fr_err
fr_sim_plot_svg(const char *path, const char *title, const char *xlabel,
    const char *ylabel, const double *xs, const double *ys, size_t n,
    char *err, size_t err_cap)
{
    // The distinct finite xs, sorted, each with the mean of its ys.
    double *mx  = malloc(sizeof(double) * (n ? n : 1));
    double *my  = malloc(sizeof(double) * (n ? n : 1));
    size_t *cnt = calloc(n ? n : 1, sizeof(size_t));
    size_t  m   = 0;
    fr_err  e   = FR_OK;
    if (mx == NULL || my == NULL || cnt == NULL) {
        e = FR_ENOMEM;
    }
    for (size_t i = 0; e == FR_OK && i < n; i++) {
        if (!isfinite(xs[i]) || !isfinite(ys[i])) {
            continue;
        }
        size_t j = 0;
        while (j < m && mx[j] != xs[i]) {
            j++;
        }
        if (j == m) {
            mx[m] = xs[i];
            my[m] = 0.0;
            m++;
        }
        my[j] += ys[i];
        cnt[j]++;
    }
    for (size_t j = 0; e == FR_OK && j < m; j++) {
        my[j] /= (double)cnt[j];
    }
    for (size_t i = 1; e == FR_OK && i < m; i++) {
        for (size_t j = i; j > 0 && mx[j - 1] > mx[j]; j--) {
            double t  = mx[j];
            mx[j]     = mx[j - 1];
            mx[j - 1] = t;
            t         = my[j];
            my[j]     = my[j - 1];
            my[j - 1] = t;
        }
    }
    if (e == FR_OK && m == 0) {
        e = FR_EINVAL;
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s: no finite point to plot", path);
        }
    }
    if (e == FR_OK) {
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            e = FR_EIO;
            if (err_cap > 0) {
                snprintf(err, err_cap, "%s: %s", path, strerror(errno));
            }
        } else {
            int bad = fri_sim_svg_plot_xy(f, title, xlabel, ylabel, mx, my, m)
                != 0;
            if ((fclose(f) != 0 || bad) && (e = FR_EIO) == FR_EIO
                && err_cap > 0) {
                snprintf(err, err_cap, "%s: write error", path);
            }
        }
    } else if (e == FR_ENOMEM && err_cap > 0) {
        snprintf(err, err_cap, "out of memory");
    }
    free(mx);
    free(my);
    free(cnt);
    return e;
}
