// libFuzzer target for the aggregator's checkpoint decoder
// (fri_ckpt_decode, the code fri_ckpt_read_file runs on a file's bytes).
// Each input is decoded twice: as is (nearly always a checksum mismatch),
// and with its last 32 bytes replaced by the BLAKE2b-256 of the rest, so
// mutations reach the layout parser behind the checksum. Either gives
// FR_OK with a sound checkpoint, or an error with a "checkpoint" message
// and a zeroed struct; never a crash, overread or leak.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ckpt.h"
#include "ledger.h"
#include "vbmf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
    if (!cond) {
        abort();
    }
}

static int
finite_all(const float *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            return 0;
        }
    }
    return 1;
}

static void
decode_one(const uint8_t *buf, size_t len)
{
    fri_ckpt c;
    char     err[512];
    err[0]   = '\0';
    fr_err e = fri_ckpt_decode(buf, len, "fuzz", &c, err, sizeof(err));
    if (e != FR_OK) {
        static const fri_ckpt zero;
        check(e == FR_EFORMAT || e == FR_ENOMEM);
        check(strncmp(err, "checkpoint fuzz: ", 17) == 0);
        check(memcmp(&c, &zero, sizeof(c)) == 0);
        return;
    }
    check(c.n_items > 0 && c.k > 0 && c.bi != NULL && c.Q != NULL);
    check(c.n_opt <= FRI_CKPT_MAX_OPT && c.n_rdp <= FRI_CKPT_MAX_RDP);
    check(isfinite(c.mu) && finite_all(c.bi, c.n_items)
        && finite_all(c.Q, (uint64_t)c.n_items * c.k));
    for (uint32_t i = 0; i < c.n_opt; i++) {
        check(c.opt_state[i] != NULL && finite_all(c.opt_state[i], c.opt_len));
    }
    for (uint32_t i = 0; i < c.n_rdp; i++) {
        check(c.rdp[i] >= 0.0);
    }
    check((c.n_vb == 0) == (c.vb == NULL));
    // Every decoded float came from the input.
    check(4 * ((uint64_t)c.n_items * (c.k + 1) + c.n_opt * c.opt_len + c.n_vb)
        <= len);
    if (c.n_vb > 0) {
        // What the aggregator does next with a VBMF state: it must be
        // refused or taken whole, whatever its length.
        fri_vb *v = NULL;
        if (fri_vb_create(&v, c.n_items, c.k, 0.0f, 0.0f, 0.0f) == FR_OK) {
            (void)fri_vb_state_set(v, c.vb, (size_t)c.n_vb);
            fri_vb_destroy(v);
        }
    }
    if (c.ledger_len > 0) {
        // What the aggregator does next with a ledger: refused whole (the
        // ledger left as it was) or taken whole.
        uint32_t    d = c.k + 1;
        fri_ledger *L = fri_ledger_create(d, (size_t)d * (d + 1) / 2, 0, 0);
        if (L != NULL) {
            fr_err le = fri_ledger_load(L, c.ledger, (size_t)c.ledger_len,
                c.n_items, 1e6);
            check(le == FR_OK || le == FR_EFORMAT || le == FR_ENOMEM);
            check(le == FR_OK || fri_ledger_devices(L) == 0);
            fri_ledger_destroy(L);
        }
    }
    fri_ckpt_free(&c);
    check(c.bi == NULL && c.Q == NULL && c.vb == NULL && c.ledger == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    // Exact-size heap copy so ASan sees any overread.
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    decode_one(buf, size);
    if (size >= 32) {
        crypto_generichash(buf + size - 32, 32, buf, size - 32, NULL, 0);
        decode_one(buf, size);
    }
    free(buf);
    return 0;
}
