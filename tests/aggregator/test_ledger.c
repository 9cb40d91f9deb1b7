// The ledger of standing contributions (aggregator/ledger.h): reports add
// up per device, a round's changes stand only if the round is kept, a
// change naming other items is refused, a retraction empties the record,
// and the serialized form round-trips and refuses damaged bytes.
#include <criterion/criterion.h>
#include <string.h>

#include "ledger.h"
#include "linalg.h"

#define D 3
#define GL 6 // packed D x D

static void
upd(fri_agg_update *u, uint32_t n, const uint32_t *items, float *rows,
    float *gram, double count)
{
    memset(u, 0, sizeof *u);
    u->n           = n;
    u->items       = items;
    u->rows        = rows;
    u->rows_len    = (size_t)n * D;
    u->gram        = gram;
    u->gram_len    = GL;
    u->count       = count;
    u->sum_ratings = 3.0 * count;
}

static void
standing(const fri_ledger_entry *e, fri_agg_update *v)
{
    fri_ledger_view(e, 1, v);
}

Test(ledger, reports_add_up_and_stand_only_when_kept)
{
    fri_ledger *L = fri_ledger_create(D, GL, 0, 0);
    cr_assert_not_null(L);
    uint8_t  key[32]  = { 1 };
    uint32_t items[2] = { 4, 9 };
    float    rows[2 * D], gram[GL];
    for (int t = 0; t < 2 * D; t++) {
        rows[t] = 0.5f * (float)(t + 1);
    }
    for (int t = 0; t < GL; t++) {
        gram[t] = 1.0f;
    }
    fri_agg_update    u;
    fri_ledger_entry *e     = NULL;
    int               empty = 0;
    const char       *why   = NULL;
    upd(&u, 2, items, rows, gram, 2.0);
    cr_assert_eq(fri_ledger_reserve(L), FR_OK);
    cr_assert_eq(fri_ledger_apply(L, key, &u, 3.0f, &e, &empty, &why), FR_OK);
    cr_assert_eq(empty, 0);
    cr_assert_eq(fri_ledger_stage(L, key, e), FR_OK);
    // Dropped: the round was abandoned; a second whole report starts from 0.
    cr_assert_eq(fri_ledger_settle(L, 0), FR_OK);
    cr_assert_eq(fri_ledger_devices(L), 0);
    cr_assert_eq(fri_ledger_reserve(L), FR_OK);
    cr_assert_eq(fri_ledger_apply(L, key, &u, 3.0f, &e, &empty, &why), FR_OK);
    cr_assert_eq(fri_ledger_stage(L, key, e), FR_OK);
    cr_assert_eq(fri_ledger_settle(L, 1), FR_OK);
    cr_assert_eq(fri_ledger_devices(L), 1);
    // The same report again doubles it (the caller refuses that).
    cr_assert_eq(fri_ledger_apply(L, key, &u, 3.0f, &e, &empty, &why), FR_OK);
    fri_agg_update v;
    standing(e, &v);
    cr_assert_float_eq(v.gram[0], 2.0f, 1e-6);
    cr_assert_float_eq(v.count, 4.0, 1e-9);
    fri_ledger_entry_free(e);
    // Other items than the standing contribution: refused.
    uint32_t other[2] = { 4, 8 };
    upd(&u, 2, other, rows, gram, 0.0);
    cr_assert_eq(
        fri_ledger_apply(L, key, &u, 3.0f, &e, &empty, &why), FR_ESTATE);
    cr_assert_not_null(why);
    cr_assert_null(e);
    // The retraction the ledger makes, applied, leaves the empty record.
    fri_ledger_entry *neg = NULL;
    cr_assert_eq(fri_ledger_retraction(L, key, 3.0f, &neg), FR_OK);
    cr_assert_not_null(neg);
    fri_ledger_view(neg, 1, &v);
    v.gram_len = GL;
    v.rows_len = (size_t)v.n * D;
    cr_assert_eq(fri_ledger_apply(L, key, &v, 3.0f, &e, &empty, &why), FR_OK);
    cr_assert_eq(empty, 1);
    fri_ledger_entry_free(e);
    fri_ledger_entry_free(neg);
    fri_ledger_destroy(L);
}

// Moving mu re-centres the standing rows as a device re-centres its own
// record: h -= dmu * (the Gram's last column).
Test(ledger, standing_contribution_follows_mu)
{
    fri_ledger *L        = fri_ledger_create(D, GL, 0, 0);
    uint8_t     key[32]  = { 2 };
    uint32_t    items[1] = { 0 };
    float       rows[D]  = { 1.0f, 2.0f, 3.0f }, gram[GL];
    for (int t = 0; t < GL; t++) {
        gram[t] = 0.5f + (float)t;
    }
    fri_agg_update    u;
    fri_ledger_entry *e = NULL;
    int               empty;
    const char       *why;
    upd(&u, 1, items, rows, gram, 1.0);
    cr_assert_eq(fri_ledger_reserve(L), FR_OK);
    cr_assert_eq(fri_ledger_apply(L, key, &u, 3.0f, &e, &empty, &why), FR_OK);
    cr_assert_eq(fri_ledger_stage(L, key, e), FR_OK);
    cr_assert_eq(fri_ledger_settle(L, 1), FR_OK);
    float zr[D] = { 0 }, zg[GL] = { 0 };
    upd(&u, 1, items, zr, zg, 0.0);
    u.sum_ratings = 0.0;
    cr_assert_eq(fri_ledger_apply(L, key, &u, 3.5f, &e, &empty, &why), FR_OK);
    fri_agg_update v;
    standing(e, &v);
    for (int r = 0; r < D; r++) {
        double want = rows[r] - 0.5 * gram[fri_packed_index(D, r, D - 1)];
        cr_assert_float_eq(v.rows[r], want, 1e-6, "row %d", r);
    }
    fri_ledger_entry_free(e);
    fri_ledger_destroy(L);
}

Test(ledger, serialized_form_round_trips_and_refuses_damage)
{
    fri_ledger *L        = fri_ledger_create(D, GL, 0, 0);
    uint32_t    items[2] = { 1, 5 };
    float       rows[2 * D], gram[GL];
    for (int t = 0; t < 2 * D; t++) {
        rows[t] = (float)t - 2.0f;
    }
    for (int t = 0; t < GL; t++) {
        gram[t] = (float)t;
    }
    for (uint8_t k = 1; k <= 3; k++) {
        uint8_t           key[32] = { k };
        fri_agg_update    u;
        fri_ledger_entry *e = NULL;
        int               empty;
        const char       *why;
        upd(&u, k == 3 ? 1 : 2, items, rows, gram, k);
        cr_assert_eq(fri_ledger_reserve(L), FR_OK);
        cr_assert_eq(
            fri_ledger_apply(L, key, &u, 3.0f, &e, &empty, &why), FR_OK);
        cr_assert_eq(fri_ledger_stage(L, key, e), FR_OK);
    }
    cr_assert_eq(fri_ledger_settle(L, 1), FR_OK);
    size_t need = 0;
    cr_assert_eq(fri_ledger_save(L, NULL, 0, &need), FR_ENOSPC);
    uint8_t *b = malloc(need);
    cr_assert_eq(fri_ledger_save(L, b, need, &need), FR_OK);
    fri_ledger *R = fri_ledger_create(D, GL, 0, 0);
    cr_assert_eq(fri_ledger_load(R, b, need, 10, 100.0), FR_OK);
    cr_assert_eq(fri_ledger_devices(R), 3);
    size_t   n2 = 0;
    uint8_t *b2 = malloc(need);
    cr_assert_eq(fri_ledger_save(R, b2, need, &n2), FR_OK);
    cr_assert_eq(n2, need);
    cr_assert_eq(memcmp(b, b2, need), 0);
    // Every truncation is refused and leaves the ledger as it was.
    for (size_t cut = 0; cut < need; cut++) {
        cr_assert_eq(fri_ledger_load(R, b, cut, 10, 100.0), FR_EFORMAT,
            "cut at %zu", cut);
        cr_assert_eq(fri_ledger_devices(R), 3);
    }
    // An item beyond the catalog, too many rows, a duplicate key.
    cr_assert_eq(fri_ledger_load(R, b, need, 5, 100.0), FR_EFORMAT);
    cr_assert_eq(fri_ledger_load(R, b, need, 10, 1.0), FR_EFORMAT);
    memcpy(b2, b, need);
    size_t rec0 = 32 + 8 + 24 + 2 * (4 + 4 * D) + 4 * GL;
    memcpy(b2 + 4 + rec0, b2 + 4, 32); // second key = first key
    cr_assert_eq(fri_ledger_load(R, b2, need, 10, 100.0), FR_EFORMAT);
    // A non-finite value.
    memcpy(b2, b, need);
    memset(b2 + 4 + 32 + 8 + 24 + 2 * 4, 0xff, 4); // first row value
    cr_assert_eq(fri_ledger_load(R, b2, need, 10, 100.0), FR_EFORMAT);
    cr_assert_eq(fri_ledger_devices(R), 3);
    free(b);
    free(b2);
    fri_ledger_destroy(R);
    fri_ledger_destroy(L);
}
