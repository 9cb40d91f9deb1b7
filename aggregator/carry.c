// The carried / latest item statistics' tables (cfg.stats_forget < 1 or
// cfg.stats_latest), shared by the solve (solve.c) and the latest
// statistics (latest.c).
#include "agg_int.h"

#include <stdlib.h>

#include "carry.h"

fr_err
fri_agg_carry_ensure(fri_agg *a)
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
