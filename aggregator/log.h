// The aggregator's log line (log.c), through cfg.log.
#ifndef FR_AGGREGATOR_LOG_H
#define FR_AGGREGATOR_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

void fri_agg_log(const fri_agg *a, fr_log_level lv, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
