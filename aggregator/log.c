// The aggregator's log line, through cfg.log (a leaf: every layer logs).
#include "agg_int.h"

#include <stdarg.h>
#include <stdio.h>

#include "log.h"

void
fri_agg_log(const fri_agg *a, fr_log_level lv, const char *fmt, ...)
{
    if (a->cfg.log == NULL || lv > a->cfg.log_level) {
        return;
    }
    char    buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    a->cfg.log(a->cfg.log_ctx, lv, buf);
}
