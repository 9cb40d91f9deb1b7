// The carried / latest item statistics' tables (cfg.stats_forget < 1 or
// cfg.stats_latest), shared by the solve (solve.c) and the latest
// statistics (latest.c).
#include "agg_int.h"

#include <stdlib.h>

fr_err
fri_agg_carry_ensure(fri_agg *a)
{
    if (a->carry != NULL) {
        return FR_OK;
    }
    a->carry   = calloc(a->cfg.n_items, sizeof(float *));
    a->carried = malloc((size_t)a->cfg.n_items * sizeof(uint32_t));
    if (a->carry == NULL || a->carried == NULL) {
        free(a->carry);
        free(a->carried);
        a->carry   = NULL;
        a->carried = NULL;
        return FR_ENOMEM;
    }
    a->n_carried = 0;
    return FR_OK;
}
