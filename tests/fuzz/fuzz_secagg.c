// libFuzzer: the secure-aggregation message decoders (proto/msg_secagg.h,
// SPEC.md §9). The first input byte picks the decoder; the rest is the
// frame. Accepted messages are re-encoded and must decode again.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "msg_secagg.h"

static void
check(int cond)
{
    if (!cond) {
        abort();
    }
}

static const uint16_t list_types[] = { FRI_T_SA_ROSTER, FRI_T_SA_SHARES,
                                       FRI_T_SA_SHARES_FWD,
                                       FRI_T_SA_UNMASK };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint8_t sel = data[0];
    size_t  n   = size - 1;
    // Exact-size heap copy so ASan sees any overread.
    uint8_t *f = malloc(n ? n : 1);
    if (f == NULL) {
        return 0;
    }
    memcpy(f, data + 1, n);
    static uint8_t out[1 << 20];
    size_t         m = 0;
    switch (sel % 8) {
    case 0: {
        fri_sa_advert_msg a;
        if (fri_sa_advert_decode(&a, f, n) == FR_OK) {
            check(fri_sa_advert_encode(out, sizeof(out), &m, &a) == FR_OK);
            check(fri_sa_advert_decode(&a, out, m) == FR_OK);
        }
        break;
    }
    case 1:
    case 2:
    case 3:
    case 4: {
        uint16_t    type = list_types[sel % 8 - 1];
        fri_sa_list l;
        if (fri_sa_list_decode(&l, type, f, n) == FR_OK) {
            size_t    rl  = fri_sa_rec_len(type);
            uint32_t *ids = malloc(4 * (size_t) l.count + 4);
            uint8_t  *rec = malloc(rl * l.count + 1);
            if (ids != NULL && rec != NULL) {
                for (uint32_t j = 0; j < l.count; j++) {
                    const uint8_t *r;
                    fri_sa_list_get(&l, type, j, &ids[j], &r);
                    memcpy(rec + (size_t) j * rl, r, rl);
                }
                fri_sa_list e = l;
                e.ids         = ids;
                e.recs        = rec;
                check(fri_sa_list_encode(out, sizeof(out), &m, type, &e) ==
                      FR_OK);
                check(fri_sa_list_decode(&e, type, out, m) == FR_OK);
                check(e.count == l.count);
            }
            free(ids);
            free(rec);
        }
        break;
    }
    case 5: {
        fri_sa_poll p;
        uint16_t    type = (sel & 0x80) ? FRI_T_SA_WAIT : FRI_T_SA_POLL;
        if (fri_sa_poll_decode(&p, type, f, n) == FR_OK) {
            check(fri_sa_poll_encode(out, sizeof(out), &m, type, &p) ==
                  FR_OK);
            check(fri_sa_poll_decode(&p, type, out, m) == FR_OK);
        }
        break;
    }
    case 6: {
        fri_sa_params p;
        if (fri_sa_params_decode(&p, f, n) == FR_OK) {
            check(fri_sa_params_encode(out, sizeof(out), &m, &p) == FR_OK);
            check(fri_sa_params_decode(&p, out, m) == FR_OK);
        }
        break;
    }
    case 7: {
        fri_sa_unmask_req r;
        if (fri_sa_unmask_req_decode(&r, f, n) == FR_OK) {
            uint32_t  tot = r.n_surv + r.n_drop;
            uint32_t *ids = malloc(4 * (size_t) tot + 4);
            if (ids != NULL) {
                for (uint32_t j = 0; j < tot; j++) {
                    ids[j] = fri_sa_unmask_req_id(&r, j);
                }
                fri_sa_unmask_req e = r;
                e.surv              = ids;
                e.drop              = ids + r.n_surv;
                check(fri_sa_unmask_req_encode(out, sizeof(out), &m, &e) ==
                      FR_OK);
                check(fri_sa_unmask_req_decode(&e, out, m) == FR_OK);
                check(e.n_surv == r.n_surv && e.n_drop == r.n_drop);
            }
            free(ids);
        }
        break;
    }
    }
    free(f);
    return 0;
}
