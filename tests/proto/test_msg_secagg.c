// Secure-aggregation message codecs: round trips and the malformed-frame
// rules (wrong type, bad length, unsorted ids, zero retry, bad params).
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "msg.h"
#include "msg_secagg.h"
#include "wire.h"

Test(proto_msg_secagg, advert_round_trip_and_length)
{
    uint8_t id[32], adv[FRI_SA_ADVERTBYTES], buf[512];
    memset(id, 1, sizeof(id));
    memset(adv, 2, sizeof(adv));
    fri_sa_advert_msg m = {.round_id = 9, .id_pk = id, .advert = adv}, r;
    size_t            len;
    cr_assert_eq(fri_sa_advert_encode(buf, sizeof(buf), &len, &m), FR_OK);
    cr_assert_eq(len, 16 + FRI_SA_ADVERT_BODY);
    cr_assert_eq(fri_sa_advert_decode(&r, buf, len), FR_OK);
    cr_assert_eq(r.round_id, 9);
    cr_assert_eq(memcmp(r.id_pk, id, 32), 0);
    cr_assert_eq(memcmp(r.advert, adv, sizeof(adv)), 0);
    cr_assert_eq(fri_sa_advert_decode(&r, buf, len - 1), FR_EPROTO);
    cr_assert_eq(fri_sa_advert_encode(buf, 100, &len, &m), FR_ENOSPC);
}

Test(proto_msg_secagg, lists_round_trip_and_refuse_unsorted_ids)
{
    uint16_t types[] = {FRI_T_SA_ROSTER, FRI_T_SA_SHARES,
                        FRI_T_SA_SHARES_FWD, FRI_T_SA_UNMASK};
    for (size_t t = 0; t < 4; t++) {
        size_t   rl = fri_sa_rec_len(types[t]);
        uint32_t ids[3] = {1, 4, 7};
        uint8_t  recs[3 * 256];
        cr_assert(rl > 0 && rl <= 256, "record length %zu", rl);
        for (size_t i = 0; i < sizeof(recs); i++) {
            recs[i] = (uint8_t) i;
        }
        fri_sa_list l = {.round_id = 3, .count = 3, .ids = ids, .recs = recs};
        uint8_t     buf[1024];
        size_t      len;
        cr_assert_eq(fri_sa_list_encode(buf, sizeof(buf), &len, types[t], &l),
                     FR_OK);
        cr_assert_eq(len, fri_sa_list_size(types[t], 3));
        fri_sa_list r;
        cr_assert_eq(fri_sa_list_decode(&r, types[t], buf, len), FR_OK);
        cr_assert_eq(r.count, 3);
        for (uint32_t j = 0; j < 3; j++) {
            uint32_t       id;
            const uint8_t *rec;
            fri_sa_list_get(&r, types[t], j, &id, &rec);
            cr_assert_eq(id, ids[j]);
            cr_assert_eq(memcmp(rec, recs + j * rl, rl), 0);
        }
        // Another type's decoder refuses it (R5).
        cr_assert_neq(fri_sa_list_decode(&r, types[(t + 1) % 4], buf, len),
                      FR_OK);
        // Unsorted ids: the encoder refuses, and so does the decoder.
        ids[1] = 0;
        cr_assert_eq(fri_sa_list_encode(buf, sizeof(buf), &len, types[t], &l),
                     FR_EINVAL);
        ids[1] = 4;
        cr_assert_eq(fri_sa_list_encode(buf, sizeof(buf), &len, types[t], &l),
                     FR_OK);
        buf[16 + 12 + 4 + rl] = 0; // second id -> 0
        cr_assert_eq(fri_sa_list_decode(&r, types[t], buf, len), FR_EPROTO);
        // A count that does not match the body.
        cr_assert_eq(fri_sa_list_decode(&r, types[t], buf, len - 1),
                     FR_EPROTO);
    }
    cr_assert_eq(fri_sa_rec_len(FRI_T_TASK), 0);
}

// SA_UNMASK with a dropout correction (S4a): round trip, size, and the
// malformed trailers (zero count, a count the body does not hold, a
// stray word), each refused whole.
Test(proto_msg_secagg, unmask_correction_round_trip_and_malformed)
{
    uint32_t ids[2] = {2, 5}, corr[6] = {1, 0xffffffffu, 7, 0, 42, 9};
    uint8_t  recs[2 * FRI_SA_REC_UNMASK], buf[512];
    memset(recs, 3, sizeof(recs));
    fri_sa_list l = {.round_id = 4, .count = 2, .ids = ids, .recs = recs,
                     .corr = corr, .n_corr = 6};
    size_t      len;
    cr_assert_eq(fri_sa_list_encode(buf, sizeof(buf), &len, FRI_T_SA_UNMASK,
                                    &l),
                 FR_OK);
    cr_assert_eq(len, fri_sa_unmask_size(2, 6));
    cr_assert_eq(len, fri_sa_list_size(FRI_T_SA_UNMASK, 2) + 4 + 24);
    fri_sa_list r;
    cr_assert_eq(fri_sa_list_decode(&r, FRI_T_SA_UNMASK, buf, len), FR_OK);
    cr_assert_eq(r.count, 2);
    cr_assert_eq(r.n_corr, 6);
    uint32_t back[6];
    fri_sa_list_corr_get(&r, back);
    cr_assert_eq(memcmp(back, corr, sizeof(corr)), 0);
    // Only SA_UNMASK carries one.
    cr_assert_eq(fri_sa_list_encode(buf, sizeof(buf), &len, FRI_T_SA_SHARES,
                                    &l),
                 FR_EINVAL);
    l.corr = NULL;
    cr_assert_eq(fri_sa_list_encode(buf, sizeof(buf), &len, FRI_T_SA_UNMASK,
                                    &l),
                 FR_EINVAL, "n_corr without words");
    l.corr = corr;
    cr_assert_eq(fri_sa_list_encode(buf, sizeof(buf), &len, FRI_T_SA_UNMASK,
                                    &l),
                 FR_OK);
    size_t at = fri_sa_list_size(FRI_T_SA_UNMASK, 2); // the word count
    // A word short, a count of zero, a count beyond the body.
    cr_assert_eq(fri_sa_list_decode(&r, FRI_T_SA_UNMASK, buf, len - 4),
                 FR_EPROTO);
    fri_put32(buf + at, 0);
    cr_assert_eq(fri_sa_list_decode(&r, FRI_T_SA_UNMASK, buf, len),
                 FR_EPROTO);
    fri_put32(buf + at, 7);
    cr_assert_eq(fri_sa_list_decode(&r, FRI_T_SA_UNMASK, buf, len),
                 FR_EPROTO);
    fri_put32(buf + at, 5); // one stray word after five
    cr_assert_eq(fri_sa_list_decode(&r, FRI_T_SA_UNMASK, buf, len),
                 FR_EPROTO);
    cr_assert_eq(fri_sa_unmask_size(2, 0), fri_sa_list_size(FRI_T_SA_UNMASK, 2));
    cr_assert_eq(fri_sa_unmask_size(2, 0x40000000u), 0, "over the limit");
}

Test(proto_msg_secagg, poll_wait_params_unmask_req)
{
    uint8_t     buf[256];
    size_t      len;
    fri_sa_poll p = {.round_id = 5, .want = FRI_T_SA_ROSTER}, r;
    cr_assert_eq(fri_sa_poll_encode(buf, sizeof(buf), &len, FRI_T_SA_POLL, &p),
                 FR_OK);
    cr_assert_eq(fri_sa_poll_decode(&r, FRI_T_SA_POLL, buf, len), FR_OK);
    cr_assert_eq(r.want, FRI_T_SA_ROSTER);
    // WAIT needs a retry delay.
    cr_assert_eq(fri_sa_poll_encode(buf, sizeof(buf), &len, FRI_T_SA_WAIT, &p),
                 FR_EINVAL);
    p.retry_after_ms = 250;
    cr_assert_eq(fri_sa_poll_encode(buf, sizeof(buf), &len, FRI_T_SA_WAIT, &p),
                 FR_OK);
    cr_assert_eq(fri_sa_poll_decode(&r, FRI_T_SA_WAIT, buf, len), FR_OK);
    cr_assert_eq(r.retry_after_ms, 250);
    p.want = FRI_T_TASK;
    cr_assert_eq(fri_sa_poll_encode(buf, sizeof(buf), &len, FRI_T_SA_POLL, &p),
                 FR_EINVAL);

    fri_sa_params sp, sr;
    memset(&sp, 0, sizeof(sp));
    sp.round_id  = 2;
    sp.index     = 3;
    sp.n         = 10;
    sp.degree    = 0;
    sp.threshold = 5;
    sp.frac_bits = 20;
    sp.clip      = 1.5f;
    sp.dim       = 1234;
    memset(sp.graph_seed, 7, 32);
    sp.noise_sd = 0.25f;
    cr_assert_eq(fri_sa_params_encode(buf, sizeof(buf), &len, &sp), FR_OK);
    cr_assert_eq(len, 16 + FRI_SA_PARAMS_BODY);
    cr_assert_eq(fri_sa_params_decode(&sr, buf, len), FR_OK);
    cr_assert_eq(memcmp(&sr, &sp, sizeof(sp)), 0);
    sp.noise_sd = -1.0f;
    cr_assert_eq(fri_sa_params_encode(buf, sizeof(buf), &len, &sp),
                 FR_EINVAL);
    sp.noise_sd = 0.0f;
    // The ALS bounds (SPEC §9.4): all three set round-trip, one missing
    // or non-finite is refused by the encoder and the decoder.
    sp.user_norm  = 10.0f;
    sp.residual   = 12.0f;
    sp.rating_abs = 5.0f;
    cr_assert_eq(fri_sa_params_encode(buf, sizeof(buf), &len, &sp), FR_OK);
    cr_assert_eq(len, 16 + 96);
    cr_assert_eq(fri_sa_params_decode(&sr, buf, len), FR_OK);
    cr_assert_eq(memcmp(&sr, &sp, sizeof(sp)), 0);
    // applied_round: an earlier round round-trips, the current or a later
    // one is refused (a member's applied delta is always from the past).
    sp.applied_round = 1;
    cr_assert_eq(fri_sa_params_encode(buf, sizeof(buf), &len, &sp), FR_OK);
    cr_assert_eq(fri_sa_params_decode(&sr, buf, len), FR_OK);
    cr_assert_eq(sr.applied_round, 1);
    fri_put64(buf + 16 + 88, 2);
    cr_assert_eq(fri_sa_params_decode(&sr, buf, len), FR_EPROTO);
    sp.applied_round = 2;
    cr_assert_eq(fri_sa_params_encode(buf, sizeof(buf), &len, &sp),
                 FR_EINVAL);
    sp.applied_round = 1;
    cr_assert_eq(fri_sa_params_encode(buf, sizeof(buf), &len, &sp), FR_OK);
    buf[16 + 80] = buf[16 + 81] = buf[16 + 82] = buf[16 + 83] = 0; // R = 0
    cr_assert_eq(fri_sa_params_decode(&sr, buf, len), FR_EPROTO);
    sp.rating_abs = INFINITY;
    cr_assert_eq(fri_sa_params_encode(buf, sizeof(buf), &len, &sp),
                 FR_EINVAL);
    sp.user_norm = sp.residual = sp.rating_abs = 0.0f;
    sp.index    = 10; // >= n
    cr_assert_eq(fri_sa_params_encode(buf, sizeof(buf), &len, &sp),
                 FR_EINVAL);

    uint32_t          surv[3] = {0, 2, 5}, drop[1] = {3};
    fri_sa_unmask_req q = {.round_id = 8, .n_surv = 3, .n_drop = 1,
                           .surv = surv, .drop = drop},
                      qr;
    cr_assert_eq(fri_sa_unmask_req_encode(buf, sizeof(buf), &len, &q), FR_OK);
    cr_assert_eq(len, fri_sa_unmask_req_size(3, 1));
    cr_assert_eq(fri_sa_unmask_req_decode(&qr, buf, len), FR_OK);
    cr_assert_eq(qr.n_surv, 3);
    cr_assert_eq(qr.n_drop, 1);
    cr_assert_eq(fri_sa_unmask_req_id(&qr, 2), 5);
    cr_assert_eq(fri_sa_unmask_req_id(&qr, 3), 3);
    cr_assert_eq(fri_sa_unmask_req_decode(&qr, buf, len + 4), FR_EPROTO);
}
