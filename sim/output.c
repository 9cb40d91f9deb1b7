// fedrec-sim outputs: JSON Lines, metrics.csv, summary.json and SVG plots.
// The SVG is written by hand (no dependencies) and opens in any browser.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "sim.h"

// JSON has no NaN/Infinity: such values become null.
static void
jnum(FILE *f, const char *key, double v, int comma)
{
    if (isfinite(v)) {
        fprintf(f, "\"%s\":%.6g%s", key, v, comma ? "," : "");
    } else {
        fprintf(f, "\"%s\":null%s", key, comma ? "," : "");
    }
}

static void
jmetrics(FILE *f, const fri_sim_config *c, int evaluated, double a,
         double b)
{
    const char *ka = c->implicit ? "hr10" : "rmse";
    const char *kb = c->implicit ? "ndcg10" : "mae";
    jnum(f, ka, evaluated ? a : NAN, 1);
    jnum(f, kb, evaluated ? b : NAN, 1);
}

void
fri_sim_json_round(FILE *f, const fri_sim_config *c, const fri_sim_round *r)
{
    fprintf(f, "{\"round\":%u,", r->round);
    if (c->implicit) {
        jmetrics(f, c, r->evaluated, r->hr10, r->ndcg10);
    } else {
        jmetrics(f, c, r->evaluated, r->rmse, r->mae);
    }
    if (r->evaluated) {
        fprintf(f, "\"eval_users\":%u,\"eval_ratings\":%llu,",
                r->eval_users, (unsigned long long) r->eval_ratings);
    } else {
        fprintf(f, "\"eval_users\":null,\"eval_ratings\":null,");
    }
    fprintf(f, "\"eval_bytes\":%llu,", (unsigned long long) r->eval_bytes);
    jnum(f, "eval_seconds", r->eval_seconds, 1);
    fprintf(f,
            "\"clients\":%u,\"dropped\":%u,\"failed\":%u,"
            "\"abandoned\":%s,\"bytes_up\":%llu,\"bytes_down\":%llu,",
            r->clients, r->dropped, r->failed,
            r->abandoned ? "true" : "false",
            (unsigned long long) r->bytes_up,
            (unsigned long long) r->bytes_down);
    jnum(f, "seconds", r->seconds, 1);
    jnum(f, "agg_seconds", r->agg_seconds, 1);
    jnum(f, "client_seconds_median", r->client_seconds_median, 1);
    if (c->new_items > 0) {
        jnum(f, "new_rmse", r->evaluated ? r->new_rmse : NAN, 1);
        jnum(f, "matched_rmse", r->evaluated ? r->matched_rmse : NAN, 1);
    }
    jnum(f, "client_seconds_max", r->client_seconds_max, 0);
    if (c->buffer > 0) {
        fprintf(f, ",\"steps\":%u,\"stale\":%u,\"staleness_sum\":%llu",
                r->steps, r->stale, (unsigned long long) r->staleness_sum);
    }
    fri_sim_privacy_json(f, &c->priv, &r->priv, 0);
    fputc('}', f);
}

void
fri_sim_text_summary(
    FILE *f, const fri_sim_config *c, const fri_sim_summary *s)
{
    const fri_sim_round *r = &s->last;
    fprintf(f, "fedrec-sim: %s, %u virtual clients, %s transport, %u rounds\n",
        s->data_name, s->n_clients, fri_sim_transport_name(c->transport),
        s->rounds);
    if (c->implicit) {
        fprintf(f, "  federated:   HR@10 %.4f  NDCG@10 %.4f\n", r->hr10,
            r->ndcg10);
        if (s->has_reference) {
            fprintf(f,
                "  centralized: HR@10 %.4f  NDCG@10 %.4f  (fedrec-train, "
                "same split and settings)\n",
                s->ref_hr10, s->ref_ndcg10);
        }
    } else {
        fprintf(
            f, "  federated:   test RMSE %.4f  MAE %.4f\n", r->rmse, r->mae);
        if (s->has_reference) {
            fprintf(f,
                "  centralized: test RMSE %.4f  MAE %.4f  (fedrec-train "
                "default, %s, same split; %+.2f%%)\n",
                s->ref_rmse, s->ref_mae, s->ref_name ? s->ref_name : "?",
                100.0 * (r->rmse - s->ref_rmse) / s->ref_rmse);
            fprintf(f, "  centralized ALS %.4f, VBMF %.4f (same split)\n",
                s->ref_als_rmse, s->ref_vbmf_rmse);
        }
    }
    if (s->lists.n_lists > 0) {
        fprintf(f,
            "  devices' top-10 lists (%zu): coverage %.3f  exposure gini "
            "%.3f  avg popularity %.1f  novelty %.2f  ILD %.3f\n",
            s->lists.n_lists, s->lists.coverage, s->lists.gini,
            s->lists.avg_popularity, s->lists.novelty, s->lists.ild);
    }
    fprintf(f,
        "  updates %llu, dropped %llu, up %.1f MB, down %.1f MB, "
        "%.2f s in rounds (%.2f rounds/s)\n",
        (unsigned long long)s->total_clients,
        (unsigned long long)s->total_dropped, (double)s->total_bytes_up / 1e6,
        (double)s->total_bytes_down / 1e6, s->total_seconds,
        s->rounds_per_second);
    fprintf(f,
        "  per client update: %.1f us wall (raw cost of its bytes: "
        "XChaCha20-Poly1305 %.1f us, memcpy %.1f us)\n",
        s->us_per_update, s->us_crypto_per_update, s->us_memcpy_per_update);
    if (c->buffer > 0) {
        fprintf(f,
                "  buffered (K %u, max staleness %u): %llu steps, %llu "
                "reports accepted (mean staleness %.2f), %llu refused as "
                "stale\n",
                c->buffer, c->max_staleness,
                (unsigned long long) s->total_steps,
                (unsigned long long) s->total_clients, s->mean_staleness,
                (unsigned long long) s->total_stale);
    }
    fprintf(f, "  peak RSS %.1f MiB, %.1f bytes per idle virtual client\n",
        (double)s->peak_rss_kib / 1024.0, s->bytes_per_idle_client);
}

void
fri_sim_json_summary(FILE *f, const fri_sim_config *c,
                     const fri_sim_summary *s)
{
    const fri_sim_round *r = &s->last;
    fprintf(f, "{\"summary\":true,\"rounds\":%u,\"rounds_abandoned\":%u,",
            s->rounds, s->rounds_abandoned);
    if (c->buffer > 0) {
        fprintf(f,
                "\"buffer\":%u,\"max_staleness\":%u,\"steps\":%llu,"
                "\"reports_accepted\":%llu,\"reports_stale\":%llu,"
                "\"mean_staleness\":%.4f,",
                c->buffer, c->max_staleness,
                (unsigned long long) s->total_steps,
                (unsigned long long) s->total_clients,
                (unsigned long long) s->total_stale, s->mean_staleness);
    }
    if (c->implicit) {
        jmetrics(f, c, r->evaluated, r->hr10, r->ndcg10);
    } else {
        jmetrics(f, c, r->evaluated, r->rmse, r->mae);
    }
    fprintf(f,
            "\"eval_users\":%u,\"eval_ratings\":%llu,\"eval_every\":%u,"
            "\"eval_bytes\":%llu,",
            r->evaluated ? r->eval_users : 0,
            (unsigned long long) (r->evaluated ? r->eval_ratings : 0),
            s->eval_every, (unsigned long long) s->total_eval_bytes);
    jnum(f, "eval_seconds", s->total_eval_seconds, 1);
    fprintf(f, "\"checkins\":%llu,\"model_reads\":%llu,",
            (unsigned long long) s->agg_checkins,
            (unsigned long long) s->agg_model_reads);
    fprintf(f,
            "\"clients\":%llu,\"dropped\":%llu,\"bytes_up\":%llu,"
            "\"bytes_down\":%llu,",
            (unsigned long long) s->total_clients,
            (unsigned long long) s->total_dropped,
            (unsigned long long) s->total_bytes_up,
            (unsigned long long) s->total_bytes_down);
    jnum(f, "seconds", s->total_seconds, 1);
    jnum(f, "agg_seconds_per_round", s->agg_seconds_per_round, 1);
    jnum(f, "client_seconds_median", s->client_seconds_median, 1);
    jnum(f, "client_seconds_max", s->client_seconds_max, 1);
    if (r->evaluated) {
        // The final metrics for light and heavy users (below / at least
        // the evaluation users' median number of training ratings).
        // With --users also by gender and age band (groups nobody of the
        // evaluation users is in are left out).
        static const char *const name[FRI_SIM_NGRP] = {
            "light", "heavy", "female", "male",
            "age_under_25", "age_25_34", "age_35_44", "age_45_plus"};
        fprintf(f, "\"groups\":{");
        for (int g = 0; g < FRI_SIM_NGRP; g++) {
            if (g >= 2 && r->grp_users[g] == 0) {
                continue;
            }
            fprintf(f, "%s\"%s\":{\"users\":%u,", g ? "," : "", name[g],
                    r->grp_users[g]);
            jnum(f, c->implicit ? "hr10" : "rmse",
                 c->implicit ? r->grp_hr10[g] : r->grp_rmse[g], 0);
            fprintf(f, "}");
        }
        fprintf(f, "},");
    }
    if (c->new_items > 0 && r->evaluated) {
        // The items that joined the catalog during the run, against old
        // items with as many training ratings (sim.h, --new-items).
        fprintf(f, "\"new_items\":{\"items\":%u,\"after_round\":%u,"
                   "\"ratings\":%llu,\"matched_ratings\":%llu,",
                c->new_items, fri_sim_new_items_round(c),
                (unsigned long long) r->new_ratings,
                (unsigned long long) r->matched_ratings);
        jnum(f, "rmse", r->new_rmse, 1);
        jnum(f, "matched_rmse", r->matched_rmse, 1);
        jnum(f, "ratio", r->new_rmse / r->matched_rmse, 0);
        fprintf(f, "},");
    }
    if (s->has_cold_start) {
        fprintf(f, "\"cold_start\":[");
        for (size_t i = 0; i < FRI_SIM_CS_N; i++) {
            const fri_sim_cs_point *pt = &s->cold_start[i];
            fprintf(f, "%s{\"ratings\":%u,", i ? "," : "", pt->ratings);
            jnum(f, "rmse", pt->rmse, 1);
            jnum(f, "mae", pt->mae, 1);
            jnum(f, "item_mean_rmse", pt->item_mean_rmse, 1);
            jnum(f, "hr10", pt->hr10, 1);
            jnum(f, "popularity_hr10", pt->popularity_hr10, 1);
            fprintf(f, "\"scored\":%llu}",
                    (unsigned long long) pt->n_scored);
        }
        fprintf(f, "],");
    }
    if (s->lists.n_lists > 0) {
        // Beyond accuracy of the devices' own final top-10 lists.
        jnum(f, "coverage", s->lists.coverage, 1);
        jnum(f, "gini", s->lists.gini, 1);
        jnum(f, "avg_popularity", s->lists.avg_popularity, 1);
        jnum(f, "novelty", s->lists.novelty, 1);
        jnum(f, "ild", s->lists.ild, 1);
        fprintf(f, "\"list_users\":%zu,", s->lists.n_lists);
    }
    if (s->has_reference) {
        if (c->implicit) {
            jnum(f, "ref_hr10", s->ref_hr10, 1);
            jnum(f, "ref_ndcg10", s->ref_ndcg10, 1);
        } else {
            jnum(f, "ref_rmse", s->ref_rmse, 1);
            jnum(f, "ref_mae", s->ref_mae, 1);
            jnum(f, "ref_als_rmse", s->ref_als_rmse, 1);
            jnum(f, "ref_vbmf_rmse", s->ref_vbmf_rmse, 1);
        }
        jnum(f, "ref_seconds", s->ref_seconds, 1);
    }
    fprintf(f, "\"data\":\"");
    for (const char *p = s->data_name; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            fputc('\\', f);
        }
        if ((unsigned char) *p >= 0x20) {
            fputc(*p, f);
        }
    }
    fprintf(f,
            "\",\"transport\":\"%s\",\"algo\":\"%s\",\"k\":%u,"
            "\"threads\":%u,\"diverse\":%g,\"recency\":%g,\"svdpp\":%g,\"transition\":%g,"
            "\"item_features\":%s,\"seed\":%llu,\"n_clients\":%u,"
            "\"n_train\":%llu,\"n_test\":%llu,\"peak_rss_kib\":%ld,",
            fri_sim_transport_name(c->transport),
            c->algo == FRI_SIM_ALS    ? "als"
            : c->algo == FRI_SIM_VBMF ? "vbmf"
                                      : "grad",
            c->k, c->threads, (double) c->diverse, (double) c->recency,
            (double) c->svdpp, (double) c->transition,
            c->item_features_path != NULL ? "true" : "false",
            (unsigned long long) c->seed, s->n_clients,
            (unsigned long long) s->n_train, (unsigned long long) s->n_test,
            s->peak_rss_kib);
    jnum(f, "bytes_per_idle_client", s->bytes_per_idle_client, 1);
    jnum(f, "rounds_per_second", s->rounds_per_second, 1);
    jnum(f, "us_per_update", s->us_per_update, 1);
    jnum(f, "us_crypto_per_update", s->us_crypto_per_update, 1);
    jnum(f, "us_memcpy_per_update", s->us_memcpy_per_update, 0);
    fri_sim_privacy_json(f, &c->priv, &s->priv, 1);
    fri_sim_poison_json(f, &c->poison, &s->poison);
    fputc('}', f);
}

// ---- SVG -----------------------------------------------------------------

static void
svg_text_escaped(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

// A "nice" tick step (1, 2 or 5 times a power of ten) for a span.
static double
nice_step(double span, int n_ticks)
{
    double raw = span / (n_ticks > 0 ? n_ticks : 1);
    if (!(raw > 0.0) || !isfinite(raw)) {
        return 1.0;
    }
    double p = pow(10.0, floor(log10(raw)));
    double m = raw / p;
    return (m < 1.5 ? 1.0 : m < 3.5 ? 2.0 : m < 7.5 ? 5.0 : 10.0) * p;
}

static int
svg_plot(FILE *f, const char *title, const char *xlabel, int integer_x,
         const char *ylabel, const double *xs, const double *ys, size_t n,
         int has_ref, double ref, const char *ref_label)
{
    const double W = 720, H = 440, L = 80, R = 30, T = 50, B = 60;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY,
           ymax = -INFINITY;
    size_t n_ok = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(xs[i]) || !isfinite(ys[i])) {
            continue;
        }
        n_ok++;
        xmin = fmin(xmin, xs[i]);
        xmax = fmax(xmax, xs[i]);
        ymin = fmin(ymin, ys[i]);
        ymax = fmax(ymax, ys[i]);
    }
    if (has_ref && isfinite(ref)) {
        ymin = fmin(ymin, ref);
        ymax = fmax(ymax, ref);
    } else {
        has_ref = 0;
    }
    if (n_ok == 0) {
        xmin = 0, xmax = 1;
        if (!has_ref) {
            ymin = 0, ymax = 1;
        }
    }
    if (xmax - xmin < 1e-12) {
        xmin -= 0.5, xmax += 0.5;
    }
    if (ymax - ymin < 1e-12) {
        double d = fabs(ymin) > 1e-12 ? fabs(ymin) * 0.01 : 0.5;
        ymin -= d, ymax += d;
    }
    double pad = (ymax - ymin) * 0.06;
    ymin -= pad, ymax += pad;
    double pw = W - L - R, ph = H - T - B;
#define SX(x) (L + ((x) - xmin) / (xmax - xmin) * pw)
#define SY(y) (T + ph - ((y) - ymin) / (ymax - ymin) * ph)
    int rc = 0;
    rc |= fprintf(f,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
                  "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                  "font-family=\"sans-serif\" font-size=\"12\">\n",
                  W, H, W, H) < 0;
    rc |= fprintf(f, "<rect width=\"100%%\" height=\"100%%\" "
                     "fill=\"white\"/>\n") < 0;
    fprintf(f, "<text x=\"%.0f\" y=\"28\" text-anchor=\"middle\" "
               "font-size=\"16\">", W / 2);
    svg_text_escaped(f, title);
    fputs("</text>\n", f);
    // Axes and grid.
    fprintf(f, "<g stroke=\"#ccc\" stroke-width=\"1\">\n");
    double ys_step = nice_step(ymax - ymin, 6);
    for (double y = ceil(ymin / ys_step) * ys_step; y <= ymax + 1e-12;
         y += ys_step) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                L, SY(y), L + pw, SY(y));
    }
    fputs("</g>\n", f);
    fprintf(f, "<g fill=\"#333\" text-anchor=\"end\">\n");
    for (double y = ceil(ymin / ys_step) * ys_step; y <= ymax + 1e-12;
         y += ys_step) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%.4g</text>\n", L - 6,
                SY(y) + 4, fabs(y) < ys_step * 1e-6 ? 0.0 : y);
    }
    fputs("</g>\n", f);
    double xs_step = nice_step(xmax - xmin, 8);
    if (integer_x && xs_step < 1.0) {
        xs_step = 1.0; // rounds are integers
    }
    fprintf(f, "<g fill=\"#333\" text-anchor=\"middle\">\n");
    for (double x = ceil(xmin / xs_step) * xs_step; x <= xmax + 1e-12;
         x += xs_step) {
        fprintf(f,
                integer_x ? "<text x=\"%.1f\" y=\"%.1f\">%.0f</text>\n"
                          : "<text x=\"%.1f\" y=\"%.1f\">%.4g</text>\n",
                SX(x), T + ph + 18, fabs(x) < xs_step * 1e-6 ? 0.0 : x);
    }
    fputs("</g>\n", f);
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"none\" stroke=\"#333\"/>\n",
            L, T, pw, ph);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
            L + pw / 2, H - 18);
    svg_text_escaped(f, xlabel);
    fputs("</text>\n", f);
    fprintf(f, "<text transform=\"translate(20,%.1f) rotate(-90)\" "
               "text-anchor=\"middle\">", T + ph / 2);
    svg_text_escaped(f, ylabel);
    fputs("</text>\n", f);
    if (has_ref) {
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#d62728\" stroke-width=\"1.5\" "
                "stroke-dasharray=\"6,4\"/>\n",
                L, SY(ref), L + pw, SY(ref));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                   "fill=\"#d62728\">", L + pw - 4, SY(ref) - 5);
        svg_text_escaped(f, ref_label ? ref_label : "reference");
        fprintf(f, " %.4f</text>\n", ref);
    }
    fputs("<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" "
          "points=\"", f);
    for (size_t i = 0; i < n; i++) {
        if (isfinite(xs[i]) && isfinite(ys[i])) {
            fprintf(f, "%.1f,%.1f ", SX(xs[i]), SY(ys[i]));
        }
    }
    fputs("\"/>\n", f);
    fprintf(f, "<g fill=\"#1f77b4\">\n");
    for (size_t i = 0; i < n; i++) {
        if (isfinite(xs[i]) && isfinite(ys[i])) {
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>\n",
                    SX(xs[i]), SY(ys[i]));
        }
    }
    fputs("</g>\n", f);
    rc |= fputs("</svg>\n", f) < 0;
#undef SX
#undef SY
    return rc || ferror(f) ? -1 : 0;
}

int
fri_sim_svg_plot(FILE *f, const char *title, const char *ylabel,
                 const double *xs, const double *ys, size_t n, int has_ref,
                 double ref, const char *ref_label)
{
    return svg_plot(f, title, "round", 1, ylabel, xs, ys, n, has_ref, ref,
                    ref_label);
}

int
fri_sim_svg_plot_xy(FILE *f, const char *title, const char *xlabel,
                    const char *ylabel, const double *xs, const double *ys,
                    size_t n)
{
    return svg_plot(f, title, xlabel, 0, ylabel, xs, ys, n, 0, 0.0, NULL);
}

// ---- files ---------------------------------------------------------------

static fr_err
open_in(FILE **out, const char *dir, const char *name, char *path,
        size_t path_cap, char *err, size_t err_cap)
{
    int n = snprintf(path, path_cap, "%s/%s", dir, name);
    if (n < 0 || (size_t) n >= path_cap) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s/%s: path too long", dir, name);
        }
        return FR_EIO;
    }
    *out = fopen(path, "w");
    if (*out == NULL) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        }
        return FR_EIO;
    }
    return FR_OK;
}

static fr_err
close_checked(FILE *f, const char *path, char *err, size_t err_cap)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s: write failed", path);
        }
        return FR_EIO;
    }
    return FR_OK;
}

static void
csv_num(FILE *f, int ok, double v)
{
    if (ok && isfinite(v)) {
        fprintf(f, ",%.6g", v);
    } else {
        fputc(',', f);
    }
}

static fr_err
plot_file(const char *dir, const char *name, const char *title,
          const char *ylabel, const double *xs, const double *ys, size_t n,
          int has_ref, double ref, char *err, size_t err_cap)
{
    char  path[4096];
    FILE *f;
    fr_err e = open_in(&f, dir, name, path, sizeof(path), err, err_cap);
    if (e != FR_OK) {
        return e;
    }
    if (fri_sim_svg_plot(f, title, ylabel, xs, ys, n, has_ref, ref,
                         "centralized fedrec-train") != 0) {
        fclose(f);
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s: write failed", path);
        }
        return FR_EIO;
    }
    return close_checked(f, path, err, err_cap);
}

fr_err
fri_sim_write_outputs(const char *dir, const fri_sim_config *c,
                      const fri_sim_round *rounds, size_t n_rounds,
                      const fri_sim_summary *s, char *err, size_t err_cap)
{
    char   path[4096];
    FILE  *f;
    fr_err e;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s: %s", dir, strerror(errno));
        }
        return FR_EIO;
    }
    // metrics.csv: one row per round; empty cells where not evaluated.
    e = open_in(&f, dir, "metrics.csv", path, sizeof(path), err, err_cap);
    if (e != FR_OK) {
        return e;
    }
    fprintf(f, "round,%s,eval_users,eval_ratings,clients,dropped,failed,"
               "bytes_up,bytes_down,seconds\n",
            c->implicit ? "hr10,ndcg10" : "rmse,mae");
    for (size_t i = 0; i < n_rounds; i++) {
        const fri_sim_round *r = &rounds[i];
        fprintf(f, "%u", r->round);
        csv_num(f, r->evaluated, c->implicit ? r->hr10 : r->rmse);
        csv_num(f, r->evaluated, c->implicit ? r->ndcg10 : r->mae);
        csv_num(f, r->evaluated, r->eval_users);
        csv_num(f, r->evaluated, (double) r->eval_ratings);
        fprintf(f, ",%u,%u,%u,%llu,%llu,%.6f\n", r->clients, r->dropped,
                r->failed, (unsigned long long) r->bytes_up,
                (unsigned long long) r->bytes_down, r->seconds);
    }
    e = close_checked(f, path, err, err_cap);
    if (e != FR_OK) {
        return e;
    }
    e = open_in(&f, dir, "summary.json", path, sizeof(path), err, err_cap);
    if (e != FR_OK) {
        return e;
    }
    fri_sim_json_summary(f, c, s);
    fputc('\n', f);
    e = close_checked(f, path, err, err_cap);
    if (e != FR_OK) {
        return e;
    }
    // Plots: only evaluated rounds carry points.
    double xs[2048], ya[2048], yb[2048];
    size_t step = n_rounds / 2048 + 1, m = 0;
    for (size_t i = 0; i < n_rounds && m < 2048; i += step) {
        size_t j = i;
        // Prefer an evaluated round within the stride.
        while (j < n_rounds && j < i + step && !rounds[j].evaluated) {
            j++;
        }
        if (j >= n_rounds || j >= i + step) {
            continue;
        }
        xs[m] = rounds[j].round;
        ya[m] = c->implicit ? rounds[j].hr10 : rounds[j].rmse;
        yb[m] = c->implicit ? rounds[j].ndcg10 : rounds[j].mae;
        m++;
    }
    if (c->implicit) {
        e = plot_file(dir, "hr10.svg", "HR@10 on the devices' held-out items",
                      "HR@10", xs, ya, m, s->has_reference, s->ref_hr10, err,
                      err_cap);
        if (e == FR_OK) {
            e = plot_file(dir, "ndcg10.svg",
                          "NDCG@10 on the devices' held-out items",
                          "NDCG@10", xs, yb, m, s->has_reference,
                          s->ref_ndcg10, err, err_cap);
        }
    } else {
        e = plot_file(dir, "rmse.svg", "Test RMSE on the devices", "RMSE", xs,
                      ya, m, s->has_reference, s->ref_rmse, err, err_cap);
        if (e == FR_OK) {
            e = plot_file(dir, "mae.svg", "Test MAE on the devices", "MAE",
                          xs, yb, m, s->has_reference, s->ref_mae, err,
                          err_cap);
        }
    }
    return e;
}
