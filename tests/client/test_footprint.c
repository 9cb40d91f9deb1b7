// Peak heap of one check-in through the fr_allocator hook (what a device
// must have free): ML-100K's catalog (1,682 items) and a 20,000-item one,
// with the busiest ML-100K user's 737 ratings, plain federated ALS against
// the in-test aggregator. The model itself lives in the model cache (its
// exact size, n_items * (k + 1) * 4 bytes plus a fixed part, is reported
// next to it); the hook sees everything else. docs/DEVICES.md gives the
// bound asserted here.
#include <criterion/criterion.h>

#include "fakeagg.h"
#include "testutil.h"

typedef struct meter {
    size_t live, peak;
} meter;

static void *
m_alloc(void *ctx, size_t size)
{
    meter  *m = ctx;
    size_t *p = malloc(size + 16);
    if (p == NULL) {
        return NULL;
    }
    p[0] = size;
    m->live += size;
    m->peak = m->live > m->peak ? m->live : m->peak;
    return (char *)p + 16;
}

static void
m_free(void *ctx, void *ptr)
{
    meter  *m = ctx;
    size_t *p = (size_t *)((char *)ptr - 16);
    m->live -= p[0];
    free(p);
}

// One check-in; returns the hook's peak during it (above the idle handle).
static size_t
checkin_peak(uint32_t n_items, uint32_t k, uint32_t n_ratings, size_t *idle)
{
    fake_agg a;
    fake_agg_init(&a, n_items, k, 1);
    meter            mt = { 0, 0 };
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    fake_agg_pk(&a, cfg.server_pk);
    cfg.seed            = 5;
    cfg.allocator.alloc = m_alloc;
    cfg.allocator.free  = m_free;
    cfg.allocator.ctx   = &mt;
    fr_client *c        = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    for (uint32_t i = 0; i < n_ratings; i++) {
        uint32_t item = (uint32_t)(((uint64_t)i * 7919u) % n_items);
        cr_assert_eq(fr_client_add(c, item, (float)(1 + i % 5), i), FR_OK);
    }
    *idle   = mt.live;
    mt.peak = mt.live;
    cr_assert_eq(fr_client_checkin_begin(c, 0), FR_OK);
    for (int step = 0;; step++) {
        cr_assert(step < 10, "check-in did not end");
        size_t   cap = fr_client_request_bound(c);
        uint8_t *buf = malloc(cap);
        size_t   len = 0;
        fr_err   e   = fr_client_poll(c, buf, cap, &len);
        cr_assert_eq(e, FR_OK, "%s", fr_client_errmsg(c));
        if (len == 0) {
            free(buf);
            break;
        }
        uint8_t *rep = NULL;
        size_t   rl  = 0;
        cr_assert_eq(fake_agg_handle(&a, buf, len, &rep, &rl), FR_OK);
        free(buf);
        e = fr_client_receive(c, rep, rl);
        free(rep);
        cr_assert_eq(e, FR_OK, "%s", fr_client_errmsg(c));
    }
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    cr_assert_eq(info.status, FR_CHECKIN_CONTRIBUTED);
    cr_assert_eq(a.upd_rows, n_ratings < n_items ? n_ratings : n_items);
    size_t peak = mt.peak - *idle;
    fr_client_destroy(c);
    cr_assert_eq(mt.live, 0u, "leaked %zu bytes", mt.live);
    fake_agg_free(&a);
    return peak;
}

// The bound of docs/DEVICES.md for a plain ALS check-in, N catalog items,
// n rated, k factors (d = k + 1, P = d(d+1)/2 + 2 floats of extra): the
// larger of the decoded MODEL (N x d floats, built before it replaces the
// cached one) and the UPDATE (the statistics, n x d floats + n ids + P,
// and their frame, about as large), plus 16 KiB for the session and the
// small frames. They are not live at once.
static size_t
bound(size_t items, size_t n, size_t k)
{
    size_t d = k + 1, p = d * (d + 1) / 2 + 2;
    size_t model  = items * d * 4;
    size_t update = 2 * (n * (d * 4 + 4) + p * 4);
    return (model > update ? model : update) + ((size_t)16 << 10);
}

Test(client_footprint, checkin_peak_heap_is_bounded, .timeout = 300)
{
    // ML-100K and a 20,000-item catalog with the busiest ML-100K user (737
    // ratings), and a device that rated its whole catalog (the statistics
    // outgrow the model there).
    const struct {
        uint32_t items, ratings;
    } cases[3]           = { { 1682, 737 }, { 20000, 737 }, { 1682, 1682 } };
    const uint32_t ks[2] = { 10, 32 };
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 2; j++) {
            size_t idle = 0;
            size_t peak
                = checkin_peak(cases[i].items, ks[j], cases[i].ratings, &idle);
            size_t b = bound(cases[i].items, cases[i].ratings, ks[j]);
            cr_log_info("checkin peak: items=%u k=%u ratings=%u "
                        "hook_peak=%zu idle=%zu bound=%zu",
                cases[i].items, ks[j], cases[i].ratings, peak, idle, b);
            cr_assert(peak <= b, "items=%u k=%u: peak %zu above the bound %zu",
                cases[i].items, ks[j], peak, b);
        }
    }
}
