// The carried / latest item statistics' tables (cfg.stats_forget < 1 or
// cfg.stats_latest), shared by the solve (solve.c) and the latest
// statistics (latest.c).
#include "agg_int.h"

#include <stdlib.h>
#include <string.h>

#include "carry.h"

static fr_err
carry_tables(fri_agg *a)
{
    if (a->stats.carry != NULL) {
        return FR_OK;
    }
    a->stats.carry   = calloc(a->cfg.n_items, sizeof(float *));
    a->stats.carried = malloc((size_t)a->cfg.n_items * sizeof(uint32_t));
    if (a->stats.carry == NULL || a->stats.carried == NULL) {
        free(a->stats.carry);
        free(a->stats.carried);
        a->stats.carry   = NULL;
        a->stats.carried = NULL;
        return FR_ENOMEM;
    }
    a->stats.n_carried = 0;
    return FR_OK;
}

fr_err
fri_agg_carry_ensure(fri_agg *a)
{
    fr_err rv = carry_tables(a);
    if (rv != FR_OK) {
        return rv;
    }
    for (uint32_t j = 0; j < a->sums.n_touched; j++) {
        uint32_t i = a->sums.touched[j];
        if (a->stats.carry[i] == NULL) {
            a->stats.carry[i] = calloc(a->acc_len, sizeof(float));
            if (a->stats.carry[i] == NULL) {
                return FR_ENOMEM;
            }
            a->stats.carried[a->stats.n_carried++] = i;
        }
    }
    return FR_OK;
}

fr_err
fri_agg_carry_restore(fri_agg *a, const uint32_t *items, const float *rows,
                      uint32_t n, double sum, double count)
{
    fr_err rv = carry_tables(a);
    if (rv != FR_OK) {
        return rv;
    }
    for (uint32_t j = 0; j < n; j++) {
        float *r = malloc(a->acc_len * sizeof(float));
        if (r == NULL) {
            for (uint32_t t = 0; t < a->stats.n_carried; t++) {
                free(a->stats.carry[a->stats.carried[t]]);
                a->stats.carry[a->stats.carried[t]] = NULL;
            }
            a->stats.n_carried = 0;
            return FR_ENOMEM;
        }
        memcpy(r, rows + (size_t)j * a->acc_len, a->acc_len * sizeof(float));
        a->stats.carry[items[j]]               = r;
        a->stats.carried[a->stats.n_carried++] = items[j];
    }
    a->stats.carry_sum   = sum;
    a->stats.carry_count = count;
    return FR_OK;
}
