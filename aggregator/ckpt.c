#include "ckpt.h"
#include "keymap.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "errbuf.h"
#include "linalg.h"
#include "wire.h"

#define CKPT_FORMAT 6u
#define CKPT_APPLIED_REC (32 + 8) // format 5: key, round
#define CKPT_CARRY_FIXED (4 + 4 + 8 + 8 + 4) // format 4 tail's fixed part
#define CKPT_TAIL_LEN(n) (4 + 8 + 8 * (size_t) (n)) // accountant, format 2
#define CKPT_HDR_LEN (4 + 4 + FRI_CKPT_FPBYTES + 8 + 8 + 8 + 4 + 4 + 4 + 4 + 8 + 8 + 4)
#define CKPT_SUMBYTES 32
// Sanity bounds for reading: a file claiming more is damaged.
#define CKPT_MAX_ITEMS (1u << 26)
#define CKPT_MAX_K 256u

void
fri_ckpt_free(fri_ckpt *c)
{
    if (c == NULL) {
        return;
    }
    free(c->bi);
    free(c->Q);
    free(c->vb);
    free(c->carried);
    free(c->carry);
    free(c->glob);
    free(c->applied_keys);
    free(c->applied_rounds);
    free(c->ledger);
    for (int i = 0; i < FRI_CKPT_MAX_OPT; i++) {
        free(c->opt_state[i]);
    }
    memset(c, 0, sizeof(*c));
}

// Writes all of buf and feeds it to the checksum.
static int
put(int fd, crypto_generichash_state *h, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    crypto_generichash_update(h, p, len);
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t) w;
    }
    return 0;
}

// 32-bit words (u32) and 64-bit doubles in little-endian, in chunks of one
// stack buffer: one write per 4 KiB, not one per value.
static int
put_u32s(int fd, crypto_generichash_state *h, const uint32_t *v, size_t n)
{
    uint8_t buf[4096];
    while (n > 0) {
        size_t m = n < sizeof(buf) / 4 ? n : sizeof(buf) / 4;
        for (size_t i = 0; i < m; i++) {
            fri_put32(buf + 4 * i, v[i]);
        }
        if (put(fd, h, buf, m * 4) != 0) {
            return -1;
        }
        v += m;
        n -= m;
    }
    return 0;
}

static int
put_f64s(int fd, crypto_generichash_state *h, const double *v, size_t n)
{
    uint8_t buf[4096];
    while (n > 0) {
        size_t m = n < sizeof(buf) / 8 ? n : sizeof(buf) / 8;
        for (size_t i = 0; i < m; i++) {
            uint64_t bits;
            memcpy(&bits, &v[i], sizeof(bits));
            fri_put64(buf + 8 * i, bits);
        }
        if (put(fd, h, buf, m * 8) != 0) {
            return -1;
        }
        v += m;
        n -= m;
    }
    return 0;
}

// Floats in little-endian, in chunks to bound the stack buffer.
static int
put_floats(int fd, crypto_generichash_state *h, const float *v, size_t n)
{
    uint8_t buf[4096];
    while (n > 0) {
        size_t m = n < sizeof(buf) / 4 ? n : sizeof(buf) / 4;
        fri_put_array32(buf, v, m);
        if (put(fd, h, buf, m * 4) != 0) {
            return -1;
        }
        v += m;
        n -= m;
    }
    return 0;
}

static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

fr_err
fri_ckpt_write(const char *dir, const fri_ckpt *c, char *err, size_t err_cap)
{
    if (dir == NULL || c == NULL || c->n_items == 0 || c->k == 0
        || c->bi == NULL || c->Q == NULL || c->n_opt > FRI_CKPT_MAX_OPT
        || c->n_rdp > FRI_CKPT_MAX_RDP || (c->n_vb > 0 && c->vb == NULL)
        || (c->n_carried > 0 && (c->carried == NULL || c->carry == NULL))
        || (c->n_glob > 0 && c->glob == NULL)
        || (c->n_applied > 0
            && (c->applied_keys == NULL || c->applied_rounds == NULL))
        || (c->ledger_len > 0 && c->ledger == NULL)) {
        fri_agg_seterr(err, err_cap, "checkpoint: invalid arguments");
        return FR_EINVAL;
    }
    for (uint32_t i = 0; i < c->n_opt; i++) {
        if (c->opt_state[i] == NULL && c->opt_len > 0) {
            fri_agg_seterr(
                err, err_cap, "checkpoint: missing optimizer state");
            return FR_EINVAL;
        }
    }
    size_t plen = strlen(dir) + 32;
    char  *tmp  = malloc(plen);
    char  *cur  = malloc(plen);
    char  *prev = malloc(plen);
    char  *ptmp = malloc(plen);
    fr_err rv   = FR_OK;
    int    fd   = -1;
    if (tmp == NULL || cur == NULL || prev == NULL || ptmp == NULL) {
        rv = FR_ENOMEM;
        fri_agg_seterr(err, err_cap, "checkpoint: out of memory");
        goto out;
    }
    snprintf(tmp, plen, "%s/checkpoint.tmp", dir);
    snprintf(cur, plen, "%s/checkpoint", dir);
    snprintf(prev, plen, "%s/checkpoint.prev", dir);
    snprintf(ptmp, plen, "%s/checkpoint.prev.tmp", dir);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fri_agg_seterr(err, err_cap, "checkpoint %s: cannot create: %s", tmp,
            strerror(errno));
        rv = FR_EIO;
        goto out;
    }
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, CKPT_SUMBYTES);
    uint8_t hdr[CKPT_HDR_LEN];
    uint8_t *p = hdr;
    memcpy(p, "FRCK", 4);
    p += 4;
    fri_put32(p, CKPT_FORMAT);
    p += 4;
    memcpy(p, c->fingerprint, FRI_CKPT_FPBYTES);
    p += FRI_CKPT_FPBYTES;
    fri_put64(p, c->version);
    p += 8;
    fri_put64(p, c->round);
    p += 8;
    fri_put64(p, c->next_round);
    p += 8;
    fri_put32(p, c->n_items);
    p += 4;
    fri_put32(p, c->k);
    p += 4;
    fri_putf32(p, c->mu);
    p += 4;
    fri_put32(p, c->opt);
    p += 4;
    fri_put64(p, c->opt_t);
    p += 8;
    fri_put64(p, c->n_opt > 0 ? c->opt_len : 0);
    p += 8;
    fri_put32(p, c->n_opt);
    p += 4;
    int bad = put(fd, &h, hdr, sizeof(hdr)) != 0 ||
              put_floats(fd, &h, c->bi, c->n_items) != 0 ||
              put_floats(fd, &h, c->Q, (size_t) c->n_items * c->k) != 0;
    for (uint32_t i = 0; !bad && i < c->n_opt; i++) {
        bad = put_floats(fd, &h, c->opt_state[i], c->opt_len) != 0;
    }
    if (!bad) {
        uint8_t tail[CKPT_TAIL_LEN(FRI_CKPT_MAX_RDP)];
        fri_put32(tail, c->n_rdp);
        fri_put64(tail + 4, c->dp_rounds);
        for (uint32_t i = 0; i < c->n_rdp; i++) {
            uint64_t bits;
            memcpy(&bits, &c->rdp[i], sizeof(bits));
            fri_put64(tail + 12 + 8 * (size_t) i, bits);
        }
        bad = put(fd, &h, tail, CKPT_TAIL_LEN(c->n_rdp)) != 0;
    }
    if (!bad) {
        uint8_t nvb[8];
        fri_put64(nvb, c->n_vb);
        bad = put(fd, &h, nvb, sizeof(nvb)) != 0 ||
              (c->n_vb > 0 && put_floats(fd, &h, c->vb, c->n_vb) != 0);
    }
    if (!bad) {
        uint8_t  fx[CKPT_CARRY_FIXED];
        uint64_t bits;
        fri_put32(fx, c->acc_len);
        fri_put32(fx + 4, c->n_carried);
        memcpy(&bits, &c->carry_sum, sizeof(bits));
        fri_put64(fx + 8, bits);
        memcpy(&bits, &c->carry_count, sizeof(bits));
        fri_put64(fx + 16, bits);
        fri_put32(fx + 24, c->n_glob);
        bad = put(fd, &h, fx, sizeof(fx)) != 0 ||
              put_f64s(fd, &h, c->glob, c->n_glob) != 0 ||
              put_u32s(fd, &h, c->carried, c->n_carried) != 0;
        bad = bad || (c->n_carried > 0 &&
                      put_floats(fd, &h, c->carry,
                                 (size_t) c->n_carried * c->acc_len) != 0);
    }
    if (!bad) {
        uint8_t na[4];
        fri_put32(na, c->n_applied);
        bad = put(fd, &h, na, sizeof(na)) != 0;
        // About 4 KiB per write.
        uint8_t recs[100 * CKPT_APPLIED_REC];
        for (uint32_t j = 0; !bad && j < c->n_applied;) {
            size_t m = 0;
            for (; m < 100 && j < c->n_applied; m++, j++) {
                uint8_t *rec = recs + m * CKPT_APPLIED_REC;
                memcpy(rec, c->applied_keys + 32 * (size_t) j, 32);
                fri_put64(rec + 32, c->applied_rounds[j]);
            }
            bad = put(fd, &h, recs, m * CKPT_APPLIED_REC) != 0;
        }
    }
    if (!bad) {
        uint8_t ll[8];
        fri_put64(ll, c->ledger_len);
        bad = put(fd, &h, ll, sizeof(ll)) != 0;
        for (uint64_t o = 0; !bad && o < c->ledger_len; o += 4096) {
            size_t m = c->ledger_len - o < 4096 ? (size_t)(c->ledger_len - o)
                                                : 4096;
            bad      = put(fd, &h, c->ledger + o, m) != 0;
        }
    }
    uint8_t sum[CKPT_SUMBYTES];
    crypto_generichash_final(&h, sum, sizeof(sum));
    if (!bad) {
        crypto_generichash_state dummy;
        crypto_generichash_init(&dummy, NULL, 0, CKPT_SUMBYTES);
        bad = put(fd, &dummy, sum, sizeof(sum)) != 0;
    }
    if (bad || fsync(fd) != 0) {
        fri_agg_seterr(err, err_cap, "checkpoint %s: write failed: %s", tmp,
            strerror(errno));
        rv = FR_EIO;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        fri_agg_seterr(err, err_cap, "checkpoint %s: close failed: %s", tmp,
            strerror(errno));
        rv = FR_EIO;
        goto out;
    }
    fd = -1;
    // Keep the current file as .prev: link, then rename over the old one,
    // so that DIR/checkpoint exists at every instant.
    struct stat st;
    if (stat(cur, &st) == 0) {
        (void) unlink(ptmp);
        if (link(cur, ptmp) != 0 || rename(ptmp, prev) != 0) {
            fri_agg_seterr(err, err_cap,
                "checkpoint %s: cannot keep previous: %s", prev,
                strerror(errno));
            rv = FR_EIO;
            goto out;
        }
    }
    if (rename(tmp, cur) != 0) {
        fri_agg_seterr(err, err_cap, "checkpoint %s: rename failed: %s", cur,
            strerror(errno));
        rv = FR_EIO;
        goto out;
    }
    if (fsync_dir(dir) != 0) {
        fri_agg_seterr(err, err_cap,
            "checkpoint %s: fsync of directory failed: %s", dir,
            strerror(errno));
        rv = FR_EIO;
        goto out;
    }
out:
    if (fd >= 0) {
        close(fd);
        (void) unlink(tmp);
    }
    free(tmp);
    free(cur);
    free(prev);
    free(ptmp);
    return rv;
}

static float *
get_floats(const uint8_t *p, size_t n)
{
    float *v = malloc(n > 0 ? n * sizeof(float) : 1);
    if (v != NULL) {
        fri_get_array32(v, p, n);
    }
    return v;
}

fr_err
fri_ckpt_decode(const uint8_t *buf, size_t len, const char *name,
                fri_ckpt *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof(*out));
    if (name == NULL) {
        name = "(buffer)";
    }
    if (buf == NULL || len < CKPT_HDR_LEN + CKPT_SUMBYTES) {
        fri_agg_seterr(
            err, err_cap, "checkpoint %s: truncated (%zu bytes)", name, len);
        return FR_EFORMAT;
    }
    fr_err  rv = FR_OK;
    uint8_t sum[CKPT_SUMBYTES];
    crypto_generichash(sum, sizeof(sum), buf, len - CKPT_SUMBYTES, NULL, 0);
    if (sodium_memcmp(sum, buf + len - CKPT_SUMBYTES, CKPT_SUMBYTES) != 0) {
        fri_agg_seterr(err, err_cap,
            "checkpoint %s: checksum mismatch (file is damaged)", name);
        return FR_EFORMAT;
    }
    const uint8_t *p = buf;
    uint32_t format = memcmp(p, "FRCK", 4) == 0 ? fri_get32(p + 4) : 0;
    if (format < 1 || format > CKPT_FORMAT) {
        fri_agg_seterr(err, err_cap,
            "checkpoint %s: not a format-1..%u checkpoint", name, CKPT_FORMAT);
        return FR_EFORMAT;
    }
    p += 8;
    memcpy(out->fingerprint, p, FRI_CKPT_FPBYTES);
    p += FRI_CKPT_FPBYTES;
    out->version = fri_get64(p);
    p += 8;
    out->round = fri_get64(p);
    p += 8;
    out->next_round = fri_get64(p);
    p += 8;
    out->n_items = fri_get32(p);
    p += 4;
    out->k = fri_get32(p);
    p += 4;
    out->mu = fri_getf32(p);
    p += 4;
    out->opt = fri_get32(p);
    p += 4;
    out->opt_t = fri_get64(p);
    p += 8;
    out->opt_len = fri_get64(p);
    p += 8;
    out->n_opt = fri_get32(p);
    p += 4;
    if (out->n_items == 0 || out->n_items > CKPT_MAX_ITEMS || out->k == 0 ||
        out->k > CKPT_MAX_K || out->n_opt > FRI_CKPT_MAX_OPT ||
        out->opt_len > (uint64_t) CKPT_MAX_ITEMS * (CKPT_MAX_K + 1)) {
        fri_agg_seterr(
            err, err_cap, "checkpoint %s: implausible header", name);
        rv = FR_EFORMAT;
        goto out;
    }
    // The bounds above keep every size below 2^40, so no sum overflows;
    // offsets into buf are only formed once len covers them.
    size_t nq   = (size_t) out->n_items * out->k;
    size_t need = CKPT_HDR_LEN + 4 * ((size_t) out->n_items + nq +
                                      (size_t) out->n_opt * out->opt_len) +
                  CKPT_SUMBYTES;
    if (format >= 2) {
        // The accountant tail sits between the arrays and the checksum.
        if (len < need + CKPT_TAIL_LEN(0)) {
            fri_agg_seterr(
                err, err_cap, "checkpoint %s: truncated accountant", name);
            rv = FR_EFORMAT;
            goto out;
        }
        const uint8_t *t = buf + need - CKPT_SUMBYTES;
        out->n_rdp       = fri_get32(t);
        out->dp_rounds   = fri_get64(t + 4);
        if (out->n_rdp > FRI_CKPT_MAX_RDP) {
            fri_agg_seterr(
                err, err_cap, "checkpoint %s: implausible accountant", name);
            rv = FR_EFORMAT;
            goto out;
        }
        need += CKPT_TAIL_LEN(out->n_rdp);
    }
    const uint8_t *vb_at = NULL;
    if (format >= 3) {
        // The VBMF tail follows the accountant.
        if (len < need + 8) {
            fri_agg_seterr(
                err, err_cap, "checkpoint %s: truncated VBMF state", name);
            rv = FR_EFORMAT;
            goto out;
        }
        const uint8_t *t   = buf + need - CKPT_SUMBYTES;
        uint64_t       nvb = fri_get64(t);
        // At most beta, two priors and a packed covariance per item.
        uint64_t d = (uint64_t) out->k + 1;
        if (nvb > 1 + 2 * (d + d * (d + 1) / 2) +
                      (uint64_t) out->n_items * (d * (d + 1) / 2)) {
            fri_agg_seterr(
                err, err_cap, "checkpoint %s: implausible VBMF state", name);
            rv = FR_EFORMAT;
            goto out;
        }
        out->n_vb = nvb;
        vb_at     = t + 8;
        need += 8 + 4 * (size_t) nvb;
    }
    const uint8_t *carry_at = NULL;
    if (format >= 4) {
        // The carried statistics follow the VBMF state.
        if (len < need + CKPT_CARRY_FIXED) {
            fri_agg_seterr(
                err, err_cap, "checkpoint %s: truncated statistics", name);
            rv = FR_EFORMAT;
            goto out;
        }
        const uint8_t *t = buf + need - CKPT_SUMBYTES;
        uint64_t       bits;
        out->acc_len   = fri_get32(t);
        out->n_carried = fri_get32(t + 4);
        bits           = fri_get64(t + 8);
        memcpy(&out->carry_sum, &bits, sizeof(bits));
        bits = fri_get64(t + 16);
        memcpy(&out->carry_count, &bits, sizeof(bits));
        out->n_glob = fri_get32(t + 24);
        // An item's row: a packed Gram and h (or the gradient layout).
        uint64_t d = (uint64_t) out->k + 1;
        if (out->acc_len > d * (d + 1) / 2 + d ||
            out->n_carried > out->n_items ||
            (out->n_carried > 0 && out->acc_len == 0) ||
            out->n_glob > d + d * (d + 1) / 2 + 2 ||
            !isfinite(out->carry_sum) || !(out->carry_count >= 0.0) ||
            !isfinite(out->carry_count)) {
            fri_agg_seterr(err, err_cap,
                "checkpoint %s: implausible carried statistics", name);
            rv = FR_EFORMAT;
            goto out;
        }
        carry_at = t + CKPT_CARRY_FIXED;
        need += CKPT_CARRY_FIXED + 8 * (size_t) out->n_glob +
                4 * (size_t) out->n_carried * (1 + (size_t) out->acc_len);
    }
    const uint8_t *applied_at = NULL;
    if (format >= 5) {
        // The per-device applied rounds follow the carried statistics.
        if (len < need + 4) {
            fri_agg_seterr(
                err, err_cap, "checkpoint %s: truncated applied rounds", name);
            rv = FR_EFORMAT;
            goto out;
        }
        out->n_applied = fri_get32(buf + need - CKPT_SUMBYTES);
        if (out->n_applied > FRI_KEYMAP_MAX
            || (len - need - 4) / CKPT_APPLIED_REC < out->n_applied) {
            fri_agg_seterr(
                err, err_cap, "checkpoint %s: implausible applied rounds", name);
            rv = FR_EFORMAT;
            goto out;
        }
        applied_at = buf + need - CKPT_SUMBYTES + 4;
        need += 4 + CKPT_APPLIED_REC * (size_t) out->n_applied;
    }
    const uint8_t *ledger_at = NULL;
    if (format >= 6) {
        // The ledger of standing contributions (opaque here, ledger.h).
        if (len < need + 8) {
            fri_agg_seterr(
                err, err_cap, "checkpoint %s: truncated ledger", name);
            rv = FR_EFORMAT;
            goto out;
        }
        out->ledger_len = fri_get64(buf + need - CKPT_SUMBYTES);
        if (out->ledger_len > len - need - 8) {
            fri_agg_seterr(
                err, err_cap, "checkpoint %s: implausible ledger", name);
            rv = FR_EFORMAT;
            goto out;
        }
        ledger_at = buf + need - CKPT_SUMBYTES + 8;
        need += 8 + (size_t)out->ledger_len;
    }
    if (need != len) {
        fri_agg_seterr(err, err_cap,
            "checkpoint %s: size %zu does not match header (%zu)", name, len,
            need);
        rv = FR_EFORMAT;
        goto out;
    }
    out->bi = get_floats(p, out->n_items);
    p += 4 * (size_t) out->n_items;
    out->Q = get_floats(p, nq);
    p += 4 * nq;
    int oom = out->bi == NULL || out->Q == NULL;
    if (out->n_vb > 0) {
        out->vb = get_floats(vb_at, (size_t) out->n_vb);
        oom |= out->vb == NULL;
    }
    if (carry_at != NULL) {
        const uint8_t *g  = carry_at;
        const uint8_t *it = g + 8 * (size_t) out->n_glob;
        const uint8_t *rw = it + 4 * (size_t) out->n_carried;
        out->glob    = malloc((out->n_glob > 0 ? out->n_glob : 1) *
                              sizeof(double));
        out->carried = malloc((out->n_carried > 0 ? out->n_carried : 1) *
                              sizeof(uint32_t));
        out->carry =
            get_floats(rw, (size_t) out->n_carried * out->acc_len);
        oom |= out->glob == NULL || out->carried == NULL || out->carry == NULL;
        for (uint32_t t = 0; !oom && t < out->n_glob; t++) {
            uint64_t bits = fri_get64(g + 8 * (size_t) t);
            memcpy(&out->glob[t], &bits, sizeof(bits));
        }
        for (uint32_t j = 0; !oom && j < out->n_carried; j++) {
            out->carried[j] = fri_get32(it + 4 * (size_t) j);
        }
    }
    if (applied_at != NULL && out->n_applied > 0) {
        out->applied_keys   = malloc(32 * (size_t) out->n_applied);
        out->applied_rounds = malloc(8 * (size_t) out->n_applied);
        oom |= out->applied_keys == NULL || out->applied_rounds == NULL;
        for (uint32_t j = 0; !oom && j < out->n_applied; j++) {
            const uint8_t *r = applied_at + CKPT_APPLIED_REC * (size_t) j;
            memcpy(out->applied_keys + 32 * (size_t) j, r, 32);
            out->applied_rounds[j] = fri_get64(r + 32);
        }
    }
    if (ledger_at != NULL && out->ledger_len > 0) {
        out->ledger = malloc((size_t)out->ledger_len);
        oom |= out->ledger == NULL;
        if (out->ledger != NULL) {
            memcpy(out->ledger, ledger_at, (size_t)out->ledger_len);
        }
    }
    for (uint32_t i = 0; i < out->n_opt; i++) {
        out->opt_state[i] = get_floats(p, out->opt_len);
        p += 4 * out->opt_len;
        oom |= out->opt_state[i] == NULL;
    }
    if (oom) {
        fri_agg_seterr(err, err_cap, "checkpoint %s: out of memory", name);
        rv = FR_ENOMEM;
        goto out;
    }
    // A checksum only proves the file is what was written: a model that was
    // already broken when it was saved must not be served again.
    if (!isfinite(out->mu) || !fri_all_finite(out->bi, out->n_items) ||
        !fri_all_finite(out->Q, nq) ||
        (out->n_vb > 0 && !fri_all_finite(out->vb, (size_t) out->n_vb))) {
        fri_agg_seterr(err, err_cap,
            "checkpoint %s: non-finite model value", name);
        rv = FR_EFORMAT;
        goto out;
    }
    for (uint32_t j = 0; j < out->n_carried; j++) {
        if (out->carried[j] >= out->n_items ||
            (j > 0 && out->carried[j] <= out->carried[j - 1])) {
            fri_agg_seterr(err, err_cap,
                "checkpoint %s: carried items out of order or range", name);
            rv = FR_EFORMAT;
            goto out;
        }
    }
    if ((out->n_carried > 0 &&
         !fri_all_finite(out->carry,
                         (size_t) out->n_carried * out->acc_len))) {
        fri_agg_seterr(err, err_cap,
            "checkpoint %s: non-finite carried statistics", name);
        rv = FR_EFORMAT;
        goto out;
    }
    for (uint32_t t = 0; t < out->n_glob; t++) {
        if (!isfinite(out->glob[t])) {
            fri_agg_seterr(err, err_cap,
                "checkpoint %s: non-finite carried statistics", name);
            rv = FR_EFORMAT;
            goto out;
        }
    }
    for (uint32_t j = 0; j < out->n_applied; j++) {
        if (out->applied_rounds[j] == 0 ||
            out->applied_rounds[j] > out->round) {
            fri_agg_seterr(err, err_cap,
                "checkpoint %s: applied round out of range", name);
            rv = FR_EFORMAT;
            goto out;
        }
    }
    for (uint32_t i = 0; i < out->n_opt; i++) {
        if (!fri_all_finite(out->opt_state[i], out->opt_len)) {
            fri_agg_seterr(err, err_cap,
                "checkpoint %s: non-finite optimizer state", name);
            rv = FR_EFORMAT;
            goto out;
        }
    }
    if (out->n_rdp > 0) {
        p += CKPT_TAIL_LEN(0);
        for (uint32_t i = 0; i < out->n_rdp; i++) {
            uint64_t bits = fri_get64(p + 8 * (size_t) i);
            memcpy(&out->rdp[i], &bits, sizeof(bits));
            if (!(out->rdp[i] >= 0.0)) { // also refuses NaN
                fri_agg_seterr(
                    err, err_cap, "checkpoint %s: bad accountant value", name);
                rv = FR_EFORMAT;
                goto out;
            }
        }
    }
out:
    if (rv != FR_OK) {
        fri_ckpt_free(out);
    }
    return rv;
}

fr_err
fri_ckpt_read_file(const char *path, fri_ckpt *out, char *err,
                   size_t err_cap)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        fri_agg_seterr(
            err, err_cap, "checkpoint %s: cannot open: %s", path, strerror(e));
        return e == ENOENT ? FR_ENOENT : FR_EIO;
    }
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0) {
        sz = ftell(f);
    }
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fri_agg_seterr(err, err_cap, "checkpoint %s: cannot read", path);
        fclose(f);
        return FR_EIO;
    }
    size_t len = (size_t) sz;
    if (len < CKPT_HDR_LEN + CKPT_SUMBYTES) {
        fri_agg_seterr(
            err, err_cap, "checkpoint %s: truncated (%zu bytes)", path, len);
        fclose(f);
        return FR_EFORMAT;
    }
    uint8_t *buf = malloc(len);
    if (buf == NULL) {
        fclose(f);
        fri_agg_seterr(err, err_cap, "checkpoint %s: out of memory", path);
        return FR_ENOMEM;
    }
    fr_err rv;
    if (fread(buf, 1, len, f) != len) {
        fri_agg_seterr(err, err_cap, "checkpoint %s: short read", path);
        rv = FR_EIO;
    } else {
        rv = fri_ckpt_decode(buf, len, path, out, err, err_cap);
    }
    free(buf);
    fclose(f);
    return rv;
}

// Reads one file and, if it is sound, applies the caller's check.
static fr_err
read_checked(const char *path, fri_ckpt *out, fri_ckpt_check_fn check,
             void *ctx, char *err, size_t err_cap)
{
    fr_err rv = fri_ckpt_read_file(path, out, err, err_cap);
    if (rv == FR_OK && check != NULL) {
        char why[256];
        if (check(ctx, out, why, sizeof(why)) != 0) {
            fri_agg_seterr(err, err_cap, "checkpoint %s: refused: %s", path,
                why);
            fri_ckpt_free(out);
            rv = FR_EFORMAT;
        }
    }
    return rv;
}

fr_err
fri_ckpt_load(const char *dir, fri_ckpt *out, int *used_prev, char *err,
              size_t err_cap)
{
    return fri_ckpt_load_checked(dir, out, used_prev, NULL, NULL, err,
                                 err_cap);
}

fr_err
fri_ckpt_load_checked(const char *dir, fri_ckpt *out, int *used_prev,
                      fri_ckpt_check_fn check, void *ctx, char *err,
                      size_t err_cap)
{
    *used_prev = 0;
    memset(out, 0, sizeof(*out));
    size_t plen = strlen(dir) + 32;
    char  *cur  = malloc(plen);
    char  *prev = malloc(plen);
    if (cur == NULL || prev == NULL) {
        free(cur);
        free(prev);
        fri_agg_seterr(err, err_cap, "checkpoint: out of memory");
        return FR_ENOMEM;
    }
    snprintf(cur, plen, "%s/checkpoint", dir);
    snprintf(prev, plen, "%s/checkpoint.prev", dir);
    char   why[512];
    fr_err rv = read_checked(cur, out, check, ctx, why, sizeof(why));
    if (rv == FR_OK || rv == FR_ENOMEM) {
        if (rv != FR_OK) {
            fri_agg_seterr(err, err_cap, "%s", why);
        }
        goto done;
    }
    char   why2[512];
    fr_err rv2 = read_checked(prev, out, check, ctx, why2, sizeof(why2));
    if (rv2 == FR_OK) {
        *used_prev = 1;
        fri_agg_seterr(err, err_cap, "%s; using %s", why, prev);
        rv = FR_OK;
    } else if (rv == FR_ENOENT && rv2 == FR_ENOENT) {
        fri_agg_seterr(err, err_cap, "no checkpoint in %s", dir);
    } else {
        // Report the current file's damage first: that is what to repair.
        fri_agg_seterr(err, err_cap, "%s; %s", why, why2);
        if (rv == FR_ENOENT) {
            rv = rv2;
        }
    }
done:
    free(cur);
    free(prev);
    return rv;
}
