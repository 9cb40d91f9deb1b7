// Check-in state machine (placeholder until the channel lands).
#include "client_internal.h"
void
fri_session_free(fr_client *c)
{
    (void) c;
}
size_t
fr_client_request_bound(const fr_client *c)
{
    (void) c;
    return 0;
}
fr_err
fr_client_checkin_begin(fr_client *c, uint64_t now_ms)
{
    (void) now_ms;
    return fri_client_fail(c, FR_ESTATE, "not implemented");
}
fr_err
fr_client_poll(fr_client *c, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    *dst_len = 0;
    return FR_ESTATE;
}
fr_err
fr_client_receive(fr_client *c, const uint8_t *src, size_t src_len)
{
    return FR_ESTATE;
}
void
fr_client_checkin_info_get(const fr_client *c, fr_checkin_info *info)
{
    *info = c->info;
}
