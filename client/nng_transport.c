#include "client_internal.h"
void
fri_nng_free(fr_client *c)
{
    (void) c;
}
fr_err
fr_client_checkin_nng(fr_client *c, const char *url, int timeout_ms)
{
    return FR_ESTATE;
}
