// fedrec-sim: every user of a dataset as its own virtual device running the
// real client library against the real aggregator code. See --help.
//
// A front end over libfedrec-sim (fedrec/sim.h): it parses the command
// line into a run, steps it, and prints what the library reports.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fedrec/sim.h"

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

int
main(int argc, char **argv)
{
    fr_sim *sim = NULL;
    char    err[512];
    int     cli = 0;

    fr_err e = fr_sim_create_argv(&sim, argc, argv, &cli, err, sizeof(err));
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
    u.bar = u.info.progress == 1 || (u.info.progress == -1 && isatty(2));
    clock_gettime(CLOCK_MONOTONIC, &u.t0);
    uint32_t shown = 0;
    while (e == FR_OK && !fr_sim_finished(sim)) {
        e = fr_sim_step(sim);
        // Rounds are shown as soon as their metrics are final.
        while (shown < fr_sim_rounds_reported(sim)) {
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
