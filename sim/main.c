// fedrec-sim: every user of a dataset as its own virtual device running the
// real client library against the real aggregator code. See --help.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

typedef struct ui {
    const fri_sim_config *c;
    fri_sim_summary      *s;
    int                   bar;
    struct timespec       t0;
} ui;

static double
since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) (t.tv_sec - t0->tv_sec) +
           (double) (t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static void
on_round(void *ctx, const fri_sim_round *r)
{
    ui *u = ctx;
    if (u->c->json) {
        fri_sim_json_round(stdout, u->c, r);
        fputc('\n', stdout);
        fflush(stdout);
    }
    if (u->bar) {
        double el = since(&u->t0);
        double eta = el / r->round * (u->c->rounds - r->round);
        int    w = 30, done = (int) (w * (double) r->round / u->c->rounds);
        char   bar[64];
        for (int i = 0; i < w; i++) {
            bar[i] = i < done ? '#' : '.';
        }
        bar[w] = '\0';
        char met[64] = "";
        if (r->evaluated) {
            if (u->c->implicit) {
                snprintf(met, sizeof(met), "HR@10 %.4f", r->hr10);
            } else {
                snprintf(met, sizeof(met), "RMSE %.4f", r->rmse);
            }
        }
        fprintf(stderr, "\r[%s] round %u/%u %s  ETA %.0fs   ", bar, r->round,
                u->c->rounds, met, eta);
        if (r->round == u->c->rounds) {
            fputc('\n', stderr);
        }
        fflush(stderr);
    }
}

static void
print_text(const fri_sim_config *c, const fri_sim_summary *s)
{
    const fri_sim_round *r = &s->last;
    printf("fedrec-sim: %s, %u virtual clients, %s transport, %u rounds\n",
           s->data_name, s->n_clients, fri_sim_transport_name(c->transport),
           s->rounds);
    if (c->implicit) {
        printf("  federated:   HR@10 %.4f  NDCG@10 %.4f\n", r->hr10,
               r->ndcg10);
        if (s->has_reference) {
            printf("  centralized: HR@10 %.4f  NDCG@10 %.4f  (fedrec-train, "
                   "same split and settings)\n",
                   s->ref_hr10, s->ref_ndcg10);
        }
    } else {
        printf("  federated:   test RMSE %.4f  MAE %.4f\n", r->rmse, r->mae);
        if (s->has_reference) {
            printf("  centralized: test RMSE %.4f  MAE %.4f  (fedrec-train "
                   "default, %s, same split; %+.2f%%)\n",
                   s->ref_rmse, s->ref_mae, s->ref_name ? s->ref_name : "?",
                   100.0 * (r->rmse - s->ref_rmse) / s->ref_rmse);
            printf("  centralized ALS %.4f, VBMF %.4f (same split)\n",
                   s->ref_als_rmse, s->ref_vbmf_rmse);
        }
    }
    if (s->lists.n_lists > 0) {
        printf("  devices' top-10 lists (%zu): coverage %.3f  exposure gini "
               "%.3f  avg popularity %.1f  novelty %.2f  ILD %.3f\n",
               s->lists.n_lists, s->lists.coverage, s->lists.gini,
               s->lists.avg_popularity, s->lists.novelty, s->lists.ild);
    }
    printf("  updates %llu, dropped %llu, up %.1f MB, down %.1f MB, "
           "%.2f s in rounds (%.2f rounds/s)\n",
           (unsigned long long) s->total_clients,
           (unsigned long long) s->total_dropped,
           (double) s->total_bytes_up / 1e6,
           (double) s->total_bytes_down / 1e6, s->total_seconds,
           s->rounds_per_second);
    printf("  per client update: %.1f us wall (raw cost of its bytes: "
           "XChaCha20-Poly1305 %.1f us, memcpy %.1f us)\n",
           s->us_per_update, s->us_crypto_per_update,
           s->us_memcpy_per_update);
    printf("  peak RSS %.1f MiB, %.1f bytes per idle virtual client\n",
           (double) s->peak_rss_kib / 1024.0, s->bytes_per_idle_client);
}

int
main(int argc, char **argv)
{
    fri_sim_config c;
    fri_sim_summary s;
    fri_sim_pop    pop;
    char           err[512];
    int            help = 0;
    uint8_t        hash[32];

    fri_sim_config_init(&c);
    if (fri_sim_parse_args(&c, argc, argv, &help, err, sizeof(err)) !=
        FR_OK) {
        fprintf(stderr, "fedrec-sim: %s\nTry 'fedrec-sim --help'.\n", err);
        return 2;
    }
    if (help) {
        fputs(fri_sim_usage(), stdout);
        return 0;
    }
    if (fri_sim_pop_load(&pop, &c, err, sizeof(err)) != FR_OK) {
        fprintf(stderr, "fedrec-sim: %s\n", err);
        return 1;
    }
    fri_sim_config_resolve(&c, &pop);
    memset(&s, 0, sizeof(s));
    if (c.reference) {
        fr_err e = fri_sim_reference(&c, &pop, &s);
        if (e != FR_OK) {
            fprintf(stderr, "fedrec-sim: reference training failed: %s\n",
                    fr_strerror(e));
        }
    }
    fri_sim_round *rounds = calloc(c.rounds, sizeof(*rounds));
    if (rounds == NULL) {
        fprintf(stderr, "fedrec-sim: out of memory\n");
        fri_sim_pop_free(&pop);
        return 1;
    }
    ui u = {.c = &c, .s = &s};
    u.bar = c.progress == 1 || (c.progress == -1 && isatty(2));
    clock_gettime(CLOCK_MONOTONIC, &u.t0);
    fri_sim_summary run = s;
    fr_err e = fri_sim_run(&c, &pop, rounds, &run, hash, on_round, &u, err,
                           sizeof(err));
    if (e != FR_OK) {
        fprintf(stderr, "fedrec-sim: %s\n", err);
        free(rounds);
        fri_sim_pop_free(&pop);
        return 1;
    }
    if (c.json) {
        fri_sim_json_summary(stdout, &c, &run);
        fputc('\n', stdout);
    } else if (!c.quiet) {
        print_text(&c, &run);
    }
    int rc = 0;
    if (c.out_dir != NULL) {
        if (fri_sim_write_outputs(c.out_dir, &c, rounds, c.rounds, &run, err,
                                  sizeof(err)) != FR_OK) {
            fprintf(stderr, "fedrec-sim: %s\n", err);
            rc = 1;
        }
    }
    free(rounds);
    fri_sim_pop_free(&pop);
    return rc;
}
