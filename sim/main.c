// fedrec-sim: every user of a dataset as its own virtual device running the
// real client library against the real aggregator code. See --help.
//
// A front end over libfedrec-sim (fedrec/sim.h): it parses the command
// line into a run, steps it, and prints what the library reports.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fedrec/sim.h"
#ifdef FR_HAVE_MPI
#include "mpi_group.h"
#endif

typedef struct ui {
    fr_sim_info     info;
    int             bar;
    struct timespec t0;
    char           *buf;
    size_t          cap;
} ui;

static double
since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec)
        + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

// A JSON or text output of the library into u->buf, grown as needed.
typedef fr_err (*text_fn)(
    fr_sim *sim, uint32_t round, char *buf, size_t cap, size_t *len);

static fr_err
round_json(fr_sim *sim, uint32_t round, char *buf, size_t cap, size_t *len)
{
    return fr_sim_round_json(sim, round, buf, cap, len);
}

static fr_err
summary_json(fr_sim *sim, uint32_t round, char *buf, size_t cap, size_t *len)
{
    (void)round;
    return fr_sim_summary_json(sim, buf, cap, len);
}

static fr_err
summary_text(fr_sim *sim, uint32_t round, char *buf, size_t cap, size_t *len)
{
    (void)round;
    return fr_sim_summary_text(sim, buf, cap, len);
}

static fr_err
provenance_json(
    fr_sim *sim, uint32_t round, char *buf, size_t cap, size_t *len)
{
    (void)round;
    return fr_sim_provenance_json(sim, buf, cap, len);
}

static void
json_string(FILE *f, const char *s)
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

static fr_err
get_text(ui *u, fr_sim *sim, text_fn fn, uint32_t round)
{
    size_t need = 0;
    fr_err e    = fn(sim, round, u->buf, u->cap, &need);
    if (e == FR_ENOSPC) {
        char *nb = realloc(u->buf, need + 1);
        if (nb == NULL) {
            return FR_ENOMEM;
        }
        u->buf = nb;
        u->cap = need + 1;
        e      = fn(sim, round, u->buf, u->cap, &need);
    }
    return e;
}

static fr_err
on_round(ui *u, fr_sim *sim, uint32_t round)
{
    const fr_sim_info *c = &u->info;
    if (c->json) {
        fr_err e = get_text(u, sim, round_json, round);
        if (e != FR_OK) {
            return e;
        }
        fputs(u->buf, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    if (u->bar) {
        fr_sim_metrics r;
        if (fr_sim_round_metrics(sim, round, &r) != FR_OK) {
            return FR_EINTERNAL;
        }
        double el  = since(&u->t0);
        double eta = el / r.round * (c->rounds - r.round);
        int    w = 30, done = (int)(w * (double)r.round / c->rounds);
        char   bar[64];
        for (int i = 0; i < w; i++) {
            bar[i] = i < done ? '#' : '.';
        }
        bar[w]       = '\0';
        char met[64] = "";
        if (r.evaluated) {
            if (c->implicit) {
                snprintf(met, sizeof(met), "HR@10 %.4f", r.hr10);
            } else {
                snprintf(met, sizeof(met), "RMSE %.4f", r.rmse);
            }
        }
        fprintf(stderr, "\r[%s] round %u/%u %s  ETA %.0fs   ", bar, r.round,
            c->rounds, met, eta);
        if (r.round == c->rounds) {
            fputc('\n', stderr);
        }
        fflush(stderr);
    }
    return FR_OK;
}

// ---- --sweep name=v1,v2,... (repeatable): a grid of runs -----------------

#define SWEEP_MAX_DIMS 8
#define SWEEP_MAX_RUNS 10000

typedef struct dim {
    char   name[64];
    char  *list; // the values, NUL-separated in place
    char **vals;
    size_t n;
} dim;

typedef struct sweep {
    dim    d[SWEEP_MAX_DIMS];
    size_t n_dims;
    size_t n_runs;
} sweep;

static void
sweep_free(sweep *sw)
{
    for (size_t i = 0; i < sw->n_dims; i++) {
        free(sw->d[i].list);
        free(sw->d[i].vals);
    }
}

// "name=v1,v2,...": one dimension of the grid.
static int
sweep_add(sweep *sw, const char *spec, char *err, size_t cap)
{
    const char *eq = strchr(spec, '=');
    size_t      nl = eq != NULL ? (size_t)(eq - spec) : 0;
    if (eq == NULL || nl == 0 || nl >= sizeof(sw->d[0].name)
        || eq[1] == '\0') {
        snprintf(
            err, cap, "--sweep '%s': expected name=value1,value2,...", spec);
        return -1;
    }
    if (sw->n_dims == SWEEP_MAX_DIMS) {
        snprintf(err, cap, "--sweep: at most %d parameters", SWEEP_MAX_DIMS);
        return -1;
    }
    dim *d = &sw->d[sw->n_dims];
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%.*s", (int)nl, spec);
    if (strncmp(d->name, "--", 2) == 0) {
        memmove(d->name, d->name + 2, strlen(d->name + 2) + 1);
    }
    for (size_t i = 0; i < sw->n_dims; i++) {
        if (strcmp(sw->d[i].name, d->name) == 0) {
            snprintf(err, cap, "--sweep: %s is swept twice", d->name);
            return -1;
        }
    }
    if (strcmp(d->name, "config") == 0 || strcmp(d->name, "out") == 0
        || strcmp(d->name, "sweep") == 0) {
        snprintf(err, cap, "--sweep: %s cannot be swept", d->name);
        return -1;
    }
    size_t len = strlen(eq + 1);
    d->list    = malloc(len + 1);
    d->vals    = calloc(len + 1, sizeof(*d->vals));
    if (d->list == NULL || d->vals == NULL) {
        free(d->list);
        free(d->vals);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    memcpy(d->list, eq + 1, len + 1);
    sw->n_dims++;
    for (char *p = d->list;;) {
        char *c = strchr(p, ',');
        if (c != NULL) {
            *c = '\0';
        }
        if (*p == '\0') {
            snprintf(err, cap, "--sweep %s: empty value", d->name);
            return -1;
        }
        d->vals[d->n++] = p;
        if (c == NULL) {
            break;
        }
        p = c + 1;
    }
    return 0;
}

// Takes the --sweep arguments out of argv (in place); -1 on a bad one.
static int
sweep_parse(sweep *sw, int *argc, char **argv, char *err, size_t cap)
{
    int out = 1;
    memset(sw, 0, sizeof(*sw));
    for (int i = 1; i < *argc; i++) {
        const char *spec = NULL;
        if (strcmp(argv[i], "--") == 0) {
            while (i < *argc) {
                argv[out++] = argv[i++];
            }
            break;
        }
        if (strcmp(argv[i], "--sweep") == 0) {
            if (i + 1 >= *argc) {
                snprintf(err, cap, "--sweep needs a value");
                return -1;
            }
            spec = argv[++i];
        } else if (strncmp(argv[i], "--sweep=", 8) == 0) {
            spec = argv[i] + 8;
        }
        if (spec == NULL) {
            argv[out++] = argv[i];
        } else if (sweep_add(sw, spec, err, cap) != 0) {
            return -1;
        }
    }
    *argc      = out;
    argv[out]  = NULL;
    sw->n_runs = sw->n_dims > 0 ? 1 : 0;
    for (size_t i = 0; i < sw->n_dims; i++) {
        if (sw->n_runs > SWEEP_MAX_RUNS / sw->d[i].n) {
            snprintf(err, cap, "--sweep: more than %d runs", SWEEP_MAX_RUNS);
            return -1;
        }
        sw->n_runs *= sw->d[i].n;
    }
    return 0;
}

// Run r's value index in dimension i (the last dimension varies fastest).
static size_t
sweep_index(const sweep *sw, size_t r, size_t i)
{
    for (size_t j = sw->n_dims; j-- > i + 1;) {
        r /= sw->d[j].n;
    }
    return r % sw->d[i].n;
}

static void
csv_num(FILE *f, double v)
{
    if (isfinite(v)) {
        fprintf(f, ",%.9g", v);
    } else {
        fputs(",", f);
    }
}

// A CSV cell: quoted when it holds a comma, a quote or a line break.
static void
csv_cell(FILE *f, const char *s)
{
    fputc(',', f);
    if (strpbrk(s, ",\"\n\r") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') {
            fputc('"', f);
        }
        fputc(*s, f);
    }
    fputc('"', f);
}

// The metrics plotted against each numeric swept parameter.
#define N_PLOT 6
static const char *const plot_names[N_PLOT] = { "rmse", "mae", "hr10",
    "ndcg10", "epsilon", "attack_auc" };

// DIR/METRIC-vs-NAME.svg for every swept parameter whose values are all
// numbers (at least two distinct) and every metric with a value; the runs
// that share a value of the parameter are averaged.
static int
sweep_plots(const sweep *sw, const double *met, const char *dir)
{
    double *xs = malloc(sizeof(double) * sw->n_runs);
    double *ys = malloc(sizeof(double) * sw->n_runs);
    int     rc = xs == NULL || ys == NULL;
    for (size_t i = 0; rc == 0 && i < sw->n_dims; i++) {
        const dim *d       = &sw->d[i];
        int        numeric = d->n >= 2;
        for (size_t j = 0; numeric && j < d->n; j++) {
            char *end = NULL;
            (void)strtod(d->vals[j], &end);
            numeric = end != d->vals[j] && *end == '\0';
        }
        for (size_t k = 0; numeric && rc == 0 && k < N_PLOT; k++) {
            size_t n_ok = 0;
            for (size_t r = 0; r < sw->n_runs; r++) {
                xs[r] = strtod(d->vals[sweep_index(sw, r, i)], NULL);
                ys[r] = met[r * N_PLOT + k];
                n_ok += isfinite(ys[r]) != 0;
            }
            if (n_ok == 0) {
                continue;
            }
            char path[4600], title[256], err[512];
            snprintf(path, sizeof(path), "%s/%s-vs-%s.svg", dir,
                plot_names[k], d->name);
            snprintf(title, sizeof(title), "final %s against %s%s",
                plot_names[k], d->name,
                sw->n_dims > 1 ? " (mean over the other swept values)"
                               : "");
            if (fr_sim_plot_svg(path, title, d->name, plot_names[k], xs, ys,
                    sw->n_runs, err, sizeof(err))
                != FR_OK) {
                fprintf(stderr, "fedrec-sim: %s\n", err);
                rc = 1;
            }
        }
    }
    if (xs == NULL || ys == NULL) {
        fprintf(stderr, "fedrec-sim: out of memory\n");
    }
    free(xs);
    free(ys);
    return rc;
}

// One JSON line per run: {"run", "sweep": the point, the provenance
// (config, config_hash, seed, version, git), "summary"}; with --out DIR
// also DIR/sweep.csv and each run's outputs in DIR/run-NNNN.
static int
run_sweep(sweep *sw, int argc, char **argv)
{
    char   err[512]  = "";
    int    rc        = 0;
    FILE  *csv       = NULL;
    char **av        = calloc((size_t)argc + sw->n_dims + 2, sizeof(*av));
    char(*opt)[1200] = calloc(sw->n_dims, sizeof(*opt));
    ui u             = { 0 };
    // Final-round metrics of each run, for the plots (NaN: none).
    double *met = malloc(sizeof(double) * N_PLOT * sw->n_runs);
    char    dir[4096] = "";
    if (av == NULL || opt == NULL || met == NULL) {
        fprintf(stderr, "fedrec-sim: out of memory\n");
        free(av);
        free(opt);
        free(met);
        return 1;
    }
    for (size_t i = 0; i < N_PLOT * sw->n_runs; i++) {
        met[i] = NAN;
    }
    for (size_t r = 0; r < sw->n_runs && rc == 0; r++) {
        int n = 0;
        for (int i = 0; i < argc; i++) {
            av[n++] = argv[i];
        }
        // The point's values after the command line's: they win.
        for (size_t i = 0; i < sw->n_dims; i++) {
            snprintf(opt[i], sizeof(opt[i]), "--%s=%s", sw->d[i].name,
                sw->d[i].vals[sweep_index(sw, r, i)]);
            av[n++] = opt[i];
        }
        av[n]       = NULL;
        fr_sim *sim = NULL;
        int     cli = 0;
        fr_err  e   = fr_sim_create_argv(&sim, n, av, &cli, err, sizeof(err));
        if (e != FR_OK || cli == 1) {
            fprintf(stderr, "fedrec-sim: run %zu: %s\n", r + 1,
                cli == 1 ? "--help in a sweep" : err);
            rc = cli == 2 ? 2 : 1;
            break;
        }
        fr_sim_info info;
        fr_sim_get_info(sim, &info);
        e          = fr_sim_run(sim);
        char *prov = NULL;
        if (e == FR_OK) {
            e = get_text(&u, sim, provenance_json, 0);
            if (e == FR_OK && (prov = malloc(strlen(u.buf) + 1)) != NULL) {
                memcpy(prov, u.buf, strlen(u.buf) + 1);
            }
            if (e == FR_OK && prov == NULL) {
                e = FR_ENOMEM;
            }
        }
        if (e == FR_OK) {
            e = get_text(&u, sim, summary_json, 0);
        }
        if (e != FR_OK) {
            fprintf(stderr, "fedrec-sim: run %zu: %s\n", r + 1,
                fr_sim_errmsg(sim)[0] ? fr_sim_errmsg(sim) : fr_strerror(e));
            rc = 1;
        } else {
            printf("{\"run\":%zu,\"sweep\":{", r + 1);
            for (size_t i = 0; i < sw->n_dims; i++) {
                printf("%s\"%s\":", i ? "," : "", sw->d[i].name);
                json_string(stdout, sw->d[i].vals[sweep_index(sw, r, i)]);
            }
            // The provenance object's members, then the summary.
            size_t pl = strlen(prov);
            printf("},%.*s,\"summary\":%s}\n", (int)(pl - 2), prov + 1, u.buf);
            fflush(stdout);
        }
        if (rc == 0 && info.out_dir != NULL && mkdir(info.out_dir, 0777) != 0
            && errno != EEXIST) {
            fprintf(
                stderr, "fedrec-sim: %s: %s\n", info.out_dir, strerror(errno));
            rc = 1;
        }
        if (rc == 0 && info.out_dir != NULL) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/run-%04zu", info.out_dir, r + 1);
            if (fr_sim_write_outputs(sim, path) != FR_OK) {
                fprintf(stderr, "fedrec-sim: %s\n", fr_sim_errmsg(sim));
                rc = 1;
            }
            if (rc == 0 && csv == NULL) {
                snprintf(path, sizeof(path), "%s/sweep.csv", info.out_dir);
                csv = fopen(path, "w");
                if (csv == NULL) {
                    fprintf(
                        stderr, "fedrec-sim: %s: %s\n", path, strerror(errno));
                    rc = 1;
                } else {
                    fputs("run", csv);
                    for (size_t i = 0; i < sw->n_dims; i++) {
                        csv_cell(csv, sw->d[i].name);
                    }
                    fputs(",config_hash,run_seed,rounds,rmse,mae,hr10,ndcg10,"
                          "epsilon,attack_auc\n",
                        csv);
                }
            }
            fr_sim_metrics m;
            if (rc == 0
                && fr_sim_round_metrics(sim, info.rounds, &m) == FR_OK) {
                const double v[N_PLOT] = { m.rmse, m.mae, m.hr10, m.ndcg10,
                    m.epsilon, m.attack_auc };
                memcpy(met + r * N_PLOT, v, sizeof(v));
                snprintf(dir, sizeof(dir), "%s", info.out_dir);
                fprintf(csv, "%zu", r + 1);
                for (size_t i = 0; i < sw->n_dims; i++) {
                    csv_cell(csv, sw->d[i].vals[sweep_index(sw, r, i)]);
                }
                const char *h  = strstr(prov, "\"config_hash\":\"");
                const char *sd = h != NULL ? strstr(h, ",\"seed\":") : NULL;
                fprintf(csv, ",%.32s,%llu,%u", h != NULL ? h + 15 : "",
                    sd != NULL ? strtoull(sd + 8, NULL, 10) : 0ULL,
                    info.rounds);
                csv_num(csv, m.rmse);
                csv_num(csv, m.mae);
                csv_num(csv, m.hr10);
                csv_num(csv, m.ndcg10);
                csv_num(csv, m.epsilon);
                csv_num(csv, m.attack_auc);
                fputc('\n', csv);
                fflush(csv);
            }
        }
        free(prov);
        fr_sim_destroy(sim);
    }
    if (csv != NULL && (ferror(csv) | fclose(csv)) != 0 && rc == 0) {
        fprintf(stderr, "fedrec-sim: sweep.csv: write error\n");
        rc = 1;
    }
    if (rc == 0 && dir[0] != '\0' && sweep_plots(sw, met, dir) != 0) {
        rc = 1;
    }
    free(met);
    free(u.buf);
    free(av);
    free(opt);
    return rc;
}

static int mpi_main(
    const fr_sim_group *group, int rank, int argc, char **argv);

int
main(int argc, char **argv)
{
    char  err[512];
    sweep sw;

    if (sweep_parse(&sw, &argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "fedrec-sim: %s\nTry 'fedrec-sim --help'.\n", err);
        sweep_free(&sw);
        return 2;
    }
    if (sw.n_dims > 0) {
        int rc = run_sweep(&sw, argc, argv);
        sweep_free(&sw);
        return rc;
    }
    // --mpi: this process is one rank of an MPI job (mpi_group.h).
    const fr_sim_group *group = NULL;
    int                 rank  = 0;
#ifdef FR_HAVE_MPI
    fr_sim_group mg;
    if (fri_mpi_wanted(argc, argv)) {
        if (fri_mpi_group_init(&argc, &argv, &mg) != 0) {
            fprintf(stderr, "fedrec-sim: MPI_Init failed\n");
            return 1;
        }
        group = &mg;
        rank  = (int)mg.rank;
    }
#endif
    int rc = mpi_main(group, rank, argc, argv);
#ifdef FR_HAVE_MPI
    if (group != NULL) {
        if (rc != 0) {
            fri_mpi_abort(rc); // the other ranks wait in a collective
        }
        fri_mpi_finalize();
    }
#endif
    return rc;
}

// One run (one rank of it under --mpi: only rank 0 prints).
static int
mpi_main(const fr_sim_group *group, int rank, int argc, char **argv)
{
    fr_sim *sim = NULL;
    char    err[512];
    int     cli = 0;
    fr_err  e
        = fr_sim_create_group(&sim, argc, argv, group, &cli, err, sizeof(err));
    if (e != FR_OK && cli == 2) {
        fprintf(stderr, "fedrec-sim: %s\nTry 'fedrec-sim --help'.\n", err);
        return 2;
    }
    if (e != FR_OK) {
        fprintf(stderr, "fedrec-sim: %s\n", err);
        return 1;
    }
    if (cli == 1) {
        fputs(fr_sim_usage(), stdout);
        return 0;
    }
    ui u = { 0 };
    fr_sim_get_info(sim, &u.info);
    if (rank != 0) {
        // Rank 0 reports the run.
        u.info.json     = 0;
        u.info.quiet    = 1;
        u.info.progress = 0;
        u.info.out_dir  = NULL;
    }
    u.bar = u.info.progress == 1 || (u.info.progress == -1 && isatty(2));
    clock_gettime(CLOCK_MONOTONIC, &u.t0);
    uint32_t shown = 0;
    while (e == FR_OK && !fr_sim_finished(sim)) {
        e = fr_sim_step(sim);
        // Rounds are shown as soon as their metrics are final.
        while (rank == 0 && shown < fr_sim_rounds_reported(sim)) {
            fr_err oe = on_round(&u, sim, ++shown);
            if (oe != FR_OK && e == FR_OK) {
                e = oe;
            }
        }
    }
    int rc = 0;
    if (e != FR_OK) {
        fprintf(stderr, "fedrec-sim: %s\n",
            fr_sim_errmsg(sim)[0] ? fr_sim_errmsg(sim) : fr_strerror(e));
        rc = 1;
    } else if (u.info.json || !u.info.quiet) {
        e = get_text(&u, sim, u.info.json ? summary_json : summary_text, 0);
        if (e != FR_OK) {
            fprintf(stderr, "fedrec-sim: %s\n", fr_strerror(e));
            rc = 1;
        } else {
            fputs(u.buf, stdout);
            if (u.info.json) {
                fputc('\n', stdout);
            }
        }
    }
    if (rc == 0 && u.info.out_dir != NULL
        && fr_sim_write_outputs(sim, u.info.out_dir) != FR_OK) {
        fprintf(stderr, "fedrec-sim: %s\n", fr_sim_errmsg(sim));
        rc = 1;
    }
    free(u.buf);
    fr_sim_destroy(sim);
    return rc;
}
