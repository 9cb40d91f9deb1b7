// The state file: everything a device must keep between runs, encrypted at
// rest and replaced atomically.
//
// Layout (little-endian):
//   header (40 bytes, the AEAD's associated data)
//     0  magic "FRCS"
//     4  u16 format version (1)
//     6  u16 flags (0; others rejected)
//     8  u64 plaintext length L
//    16  nonce[24] (random per write)
//   ciphertext: XChaCha20-Poly1305 of the L-byte body, then the 16-byte tag
// Body:
//   identity seed[32]
//   fit: f32 reg, f32 reg_bias, f32 alpha, u32 weighted, u32 implicit
//   u64 last_round
//   user: f32 b_u, u32 k, u32 fitted, u64 fitted_version, k x f32 p_u
//   u64 n, then n x (u32 item, f32 value, i64 ts), items strictly increasing
//   (version 2) u8 has_last; if 1, the last acknowledged contribution of
//     latest-statistics mode (what the aggregator's running sum holds for
//     this device): u32 n, u32 width, u32 n_extra, f32 mu,
//     n x u32 item (strictly increasing), n*width x f32 rows,
//     n_extra x f32 extra
//   (version 3) u8 has_pending; if 1, a masked contribution sent whose
//     outcome the device has not learnt yet: u64 round, then the same
//     layout as the last contribution (after its has_last byte)
//   u8 has_model; if 1: u64 version, u64 round, u32 n_items, u32 k,
//     u32 implicit, f32 mu, signer[32], n_items x f32 b_i,
//     n_items*k x f32 Q
// The model was verified against the aggregator's signature when fetched;
// on load it is trusted because the AEAD authenticates the whole body.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "client_internal.h"
#include "mf.h"
#include "wire.h"

#define STATE_MAGIC "FRCS"
#define STATE_VERSION 3
// Version 1 files (no last contribution) still load: such a device has no
// acknowledged contribution to take its next delta against; version 2
// files (no pending contribution) load with none pending.
#define STATE_VERSION_MIN 1
#define STATE_HDR 40
#define STATE_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define STATE_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
// Largest body accepted: bounded by the model limits plus interactions.
#define STATE_MAX_BODY ((uint64_t) 1 << 34)

// ---- body layout sizes --------------------------------------------------

#define FIXED_PART (32 + 20 + 8 + 20 + 8 + 1)
#define INTER_REC 16
#define MODEL_FIXED (8 + 8 + 4 + 4 + 4 + 4 + 32)
#define LAST_FIXED (4 + 4 + 4 + 4)
// A contribution's extras: at most the VB layout of the widest model.
#define LAST_MAX_EXTRA(w) (2 * (size_t) (w) * ((w) + 1) + (w) + 8)

static size_t
last_size(const fri_stats_last *l)
{
    return l == NULL ? 1
                     : 1 + LAST_FIXED + (size_t) l->n * 4 +
                           ((size_t) l->n * l->width + l->n_extra) * 4;
}

// The pending contribution worth keeping: a masked one, whose outcome the
// next SA_PARAMS resolves (a plain one is committed by its ACK or never).
static const fri_stats_last *
kept_pending(const fr_client *c)
{
    return c->pending_round != 0 ? c->pending : NULL;
}

static int
add_ovf(size_t *acc, size_t v)
{
    if (*acc > SIZE_MAX - v) {
        return 1;
    }
    *acc += v;
    return 0;
}

static fr_err
body_size(const fr_client *c, size_t *out)
{
    size_t n = FIXED_PART;
    const fri_stats_last *pd = kept_pending(c);
    if (add_ovf(&n, last_size(c->last)) ||
        add_ovf(&n, last_size(pd) + (pd != NULL ? 8 : 0)) ||
        add_ovf(&n, (size_t) c->p_k * 4) ||
        c->n_inter > SIZE_MAX / INTER_REC ||
        add_ovf(&n, c->n_inter * INTER_REC)) {
        return FR_ETOOBIG;
    }
    const fri_cmodel *m = c->model;
    if (m != NULL) {
        size_t floats = (size_t) m->n_items * (1 + (size_t) m->k);
        if (floats > SIZE_MAX / 4 || add_ovf(&n, MODEL_FIXED) ||
            add_ovf(&n, floats * 4)) {
            return FR_ETOOBIG;
        }
    }
    *out = n;
    return FR_OK;
}

// ---- save ----------------------------------------------------------------

// has byte; if l: (u64 round when round != 0) and the contribution.
static uint8_t *
put_contribution(uint8_t *p, const fri_stats_last *l, uint64_t round)
{
    *p++ = l != NULL;
    if (l == NULL) {
        return p;
    }
    if (round != 0) {
        fri_put64(p, round);
        p += 8;
    }
    fri_put32(p, l->n);
    fri_put32(p + 4, l->width);
    fri_put32(p + 8, (uint32_t) l->n_extra);
    fri_putf32(p + 12, l->mu);
    p += LAST_FIXED;
    for (uint32_t j = 0; j < l->n; j++) {
        fri_put32(p + 4 * (size_t) j, l->items[j]);
    }
    p += (size_t) l->n * 4;
    fri_put_array32(p, l->rows, (size_t) l->n * l->width);
    p += (size_t) l->n * l->width * 4;
    fri_put_array32(p, l->extra, l->n_extra);
    return p + l->n_extra * 4;
}

static void
serialize(const fr_client *c, uint8_t *b)
{
    uint8_t *p = b;
    memcpy(p, c->identity_seed, 32);
    p += 32;
    fri_putf32(p, c->fit.reg);
    fri_putf32(p + 4, c->fit.reg_bias);
    fri_putf32(p + 8, c->fit.alpha);
    fri_put32(p + 12, c->fit.weighted);
    fri_put32(p + 16, c->fit.implicit);
    p += 20;
    fri_put64(p, c->last_round);
    p += 8;
    fri_putf32(p, c->bu);
    fri_put32(p + 4, c->p_k);
    fri_put32(p + 8, (uint32_t) (c->fitted != 0));
    fri_put64(p + 12, c->fitted_version);
    p += 20;
    if (c->p_k > 0) {
        fri_put_array32(p, c->p, c->p_k);
        p += (size_t) c->p_k * 4;
    }
    fri_put64(p, (uint64_t) c->n_inter);
    p += 8;
    for (size_t i = 0; i < c->n_inter; i++) {
        fri_put32(p, c->items[i]);
        fri_putf32(p + 4, c->values[i]);
        fri_put64(p + 8, (uint64_t) c->ts[i]);
        p += INTER_REC;
    }
    p = put_contribution(p, c->last, 0);
    const fri_stats_last *pd = kept_pending(c);
    p = put_contribution(p, pd, pd != NULL ? c->pending_round : 0);
    const fri_cmodel *m = c->model;
    *p++                = m != NULL;
    if (m != NULL) {
        fri_put64(p, m->version);
        fri_put64(p + 8, m->round);
        fri_put32(p + 16, m->n_items);
        fri_put32(p + 20, m->k);
        fri_put32(p + 24, (uint32_t) m->implicit);
        fri_putf32(p + 28, m->mu);
        memcpy(p + 32, m->signer, 32);
        p += MODEL_FIXED;
        fri_put_array32(p, m->bi, m->n_items);
        p += (size_t) m->n_items * 4;
        fri_put_array32(p, m->Q, (size_t) m->n_items * m->k);
    }
}

static fr_err
write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return FR_EIO;
        }
        p += (size_t) w;
        n -= (size_t) w;
    }
    return FR_OK;
}

// Directory part of path ("." if none) into dir.
static void
dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, cap, ".");
    } else if (slash == path) {
        snprintf(dir, cap, "/");
    } else {
        snprintf(dir, cap, "%.*s", (int) (slash - path), path);
    }
}

fr_err
fri_state_save(fr_client *c, const char *path)
{
    size_t body_len;
    fr_err err = body_size(c, &body_len);
    if (err != FR_OK || body_len > SIZE_MAX - STATE_HDR - STATE_TAG) {
        return fri_client_fail(c, FR_ETOOBIG, "state too large to save");
    }
    size_t   file_len = STATE_HDR + body_len + STATE_TAG;
    uint8_t *plain    = fri_client_alloc(c, body_len);
    uint8_t *file     = fri_client_alloc(c, file_len);
    if (plain == NULL || file == NULL) {
        fri_client_free(c, plain);
        fri_client_free(c, file);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (state save)");
    }
    serialize(c, plain);
    memcpy(file, STATE_MAGIC, 4);
    fri_put16(file + 4, STATE_VERSION);
    fri_put16(file + 6, 0);
    fri_put64(file + 8, (uint64_t) body_len);
    randombytes_buf(file + 16, STATE_NONCE);
    unsigned long long ct_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        file + STATE_HDR, &ct_len, plain, body_len, file, STATE_HDR, NULL,
        file + 16, c->state_key);
    fri_client_free_wipe(c, plain, body_len);

    // PATH.tmp in the same directory, then rename over PATH: a crash or an
    // error at any point leaves either the old or the new file, complete.
    size_t plen = strlen(path);
    char  *tmp  = fri_client_alloc(c, plen + 5);
    if (tmp == NULL) {
        fri_client_free(c, file);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (state save)");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        fri_client_free(c, tmp);
        fri_client_free(c, file);
        return fri_client_fail(c, FR_EIO, "cannot create %s.tmp: %s", path,
                               strerror(e));
    }
    err = write_all(fd, file, file_len);
    int e = errno;
    fri_client_free(c, file);
    if (err == FR_OK && fsync(fd) != 0) {
        err = FR_EIO;
        e   = errno;
    }
    if (close(fd) != 0 && err == FR_OK) {
        err = FR_EIO;
        e   = errno;
    }
    if (err == FR_OK && rename(tmp, path) != 0) {
        err = FR_EIO;
        e   = errno;
    }
    if (err != FR_OK) {
        unlink(tmp);
        fri_client_free(c, tmp);
        return fri_client_fail(c, FR_EIO, "cannot write state %s: %s", path,
                               strerror(e));
    }
    fri_client_free(c, tmp);
    // Persist the rename itself.
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void) fsync(dfd);
        close(dfd);
    }
    return FR_OK;
}

// ---- load ----------------------------------------------------------------

// Reads the whole file into a fresh buffer. FR_ENOENT if it does not exist.
static fr_err
read_file(fr_client *c, const char *path, uint8_t **out, size_t *out_len)
{
    *out   = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return FR_ENOENT;
        }
        return fri_client_fail(c, FR_EIO, "cannot open %s: %s", path,
                               strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fri_client_fail(c, FR_EIO, "%s is not a regular file", path);
    }
    if ((uint64_t) st.st_size >
        STATE_MAX_BODY + STATE_HDR + STATE_TAG ||
        (uint64_t) st.st_size > SIZE_MAX) {
        close(fd);
        return fri_client_fail(c, FR_EFORMAT, "%s: state file too large",
                               path);
    }
    size_t   len = (size_t) st.st_size;
    uint8_t *buf = fri_client_alloc(c, len);
    if (buf == NULL) {
        close(fd);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (state load)");
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t) r;
    }
    close(fd);
    if (got != len) {
        fri_client_free(c, buf);
        return fri_client_fail(c, FR_EIO, "%s: short read", path);
    }
    *out     = buf;
    *out_len = len;
    return FR_OK;
}

typedef struct reader {
    const uint8_t *p;
    size_t         left;
} reader;

static const uint8_t *
take(reader *r, size_t n)
{
    if (n > r->left) {
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static int
finite_floats(const uint8_t *p, size_t n)
{
    return !fri_any_nonfinite_le(p, n);
}

// The last acknowledged contribution (version 2), validated; *out NULL
// when the file has none. -1: malformed; 1: out of memory.
static int
parse_last(reader *r, fri_stats_last **out, uint64_t *round)
{
    *out             = NULL;
    const uint8_t *h = take(r, 1);
    if (h == NULL || *h > 1) {
        return -1;
    }
    if (*h == 0) {
        return 0;
    }
    if (round != NULL) {
        // A pending contribution: the secure round it was sent in.
        const uint8_t *rb = take(r, 8);
        if (rb == NULL || fri_get64(rb) == 0) {
            return -1;
        }
        *round = fri_get64(rb);
    }
    const uint8_t *f = take(r, LAST_FIXED);
    if (f == NULL) {
        return -1;
    }
    uint32_t n = fri_get32(f), w = fri_get32(f + 4), ne = fri_get32(f + 8);
    if (w < 2 || w > FRI_MF_MAX_K + 1 || ne > LAST_MAX_EXTRA(w) ||
        !finite_floats(f + 12, 1) || n > r->left / 4 / (1 + (size_t) w)) {
        return -1;
    }
    const uint8_t *it = take(r, (size_t) n * 4);
    const uint8_t *rw = take(r, (size_t) n * w * 4);
    const uint8_t *ex = take(r, (size_t) ne * 4);
    if (ex == NULL || !finite_floats(rw, (size_t) n * w) ||
        !finite_floats(ex, ne)) {
        return -1;
    }
    for (size_t j = 1; j < n; j++) {
        if (fri_get32(it + 4 * j) <= fri_get32(it + 4 * (j - 1))) {
            return -1;
        }
    }
    fri_stats_last *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return 1;
    }
    l->items = malloc((n > 0 ? n : 1) * sizeof *l->items);
    l->rows  = malloc((n > 0 ? (size_t) n * w : 1) * sizeof *l->rows);
    l->extra = malloc((ne > 0 ? ne : 1) * sizeof *l->extra);
    if (l->items == NULL || l->rows == NULL || l->extra == NULL) {
        fri_stats_last_free(l);
        return 1;
    }
    l->n       = n;
    l->width   = w;
    l->n_extra = ne;
    l->mu      = fri_getf32(f + 12);
    for (size_t j = 0; j < n; j++) {
        l->items[j] = fri_get32(it + 4 * j);
    }
    fri_get_array32(l->rows, rw, (size_t) n * w);
    fri_get_array32(l->extra, ex, ne);
    *out = l;
    return 0;
}

// Parses a decrypted body (format version) into c. On error c is left
// unchanged.
static fr_err
parse_body(fr_client *c, const uint8_t *body, size_t len, unsigned version,
           const char *path)
{
    reader         r = {body, len};
    const uint8_t *seed = take(&r, 32);
    const uint8_t *fit  = take(&r, 20);
    const uint8_t *lr   = take(&r, 8);
    const uint8_t *user = take(&r, 20);
    if (user == NULL) {
        goto bad;
    }
    fri_fit_params fp;
    fp.reg      = fri_getf32(fit);
    fp.reg_bias = fri_getf32(fit + 4);
    fp.alpha    = fri_getf32(fit + 8);
    fp.weighted = fri_get32(fit + 12);
    fp.implicit = fri_get32(fit + 16);
    if (!finite_floats(fit, 3) || fp.weighted > 2 || fp.implicit > 1) {
        goto bad;
    }
    float    bu      = fri_getf32(user);
    uint32_t k       = fri_get32(user + 4);
    uint32_t fitted  = fri_get32(user + 8);
    uint64_t fit_ver = fri_get64(user + 12);
    if (!finite_floats(user, 1) || k > FRI_MF_MAX_K || fitted > 1) {
        goto bad;
    }
    const uint8_t *pu = take(&r, (size_t) k * 4);
    const uint8_t *nb = take(&r, 8);
    if (nb == NULL || !finite_floats(pu, k)) {
        goto bad;
    }
    uint64_t n = fri_get64(nb);
    if (n > r.left / INTER_REC) {
        goto bad;
    }
    const uint8_t *inter = take(&r, (size_t) n * INTER_REC);
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *e = inter + i * INTER_REC;
        if (!finite_floats(e + 4, 1) ||
            (i > 0 && fri_get32(e) <= fri_get32(e - INTER_REC))) {
            goto bad;
        }
    }
    fri_stats_last *last = NULL, *pend = NULL;
    uint64_t        pend_round = 0;
    if (version >= 2) {
        int lrv = parse_last(&r, &last, NULL);
        if (lrv == 0 && version >= 3) {
            lrv = parse_last(&r, &pend, &pend_round);
        }
        if (lrv != 0) {
            fri_stats_last_free(last);
            fri_stats_last_free(pend);
            if (lrv > 0) {
                return fri_client_fail(c, FR_ENOMEM,
                                       "out of memory (state load)");
            }
            goto bad;
        }
    }
    const uint8_t *hm = take(&r, 1);
    if (hm == NULL || *hm > 1) {
        goto bad_last;
    }
    fri_cmodel *model = NULL;
    if (*hm == 1) {
        const uint8_t *mh = take(&r, MODEL_FIXED);
        if (mh == NULL) {
            goto bad_last;
        }
        uint32_t n_items = fri_get32(mh + 16);
        uint32_t mk      = fri_get32(mh + 20);
        uint32_t impl    = fri_get32(mh + 24);
        if (n_items == 0 || mk == 0 || mk > FRI_MF_MAX_K || impl > 1 ||
            !finite_floats(mh + 28, 1) ||
            (size_t) n_items * (1 + (size_t) mk) > r.left / 4 ||
            (size_t) n_items * (1 + (size_t) mk) * 4 != r.left) {
            goto bad_last;
        }
        const uint8_t *bi = take(&r, (size_t) n_items * 4);
        const uint8_t *q  = take(&r, (size_t) n_items * mk * 4);
        if (!finite_floats(bi, n_items) ||
            !finite_floats(q, (size_t) n_items * mk)) {
            goto bad_last;
        }
        fr_err err = fri_cmodel_alloc(&model, n_items, mk);
        if (err != FR_OK) {
            fri_stats_last_free(last);
            fri_stats_last_free(pend);
            return fri_client_fail(c, err, "%s: cannot allocate model: %s",
                                   path, fr_strerror(err));
        }
        model->version  = fri_get64(mh);
        model->round    = fri_get64(mh + 8);
        model->implicit = (int) impl;
        model->mu       = fri_getf32(mh + 28);
        memcpy(model->signer, mh + 32, 32);
        fri_get_array32(model->bi, bi, n_items);
        fri_get_array32(model->Q, q, (size_t) n_items * mk);
        err = fri_cmodel_finish(model);
        if (err != FR_OK) {
            fri_cmodel_unref(model);
            fri_stats_last_free(last);
            fri_stats_last_free(pend);
            return fri_client_fail(c, err, "%s: model: %s", path,
                                   fr_strerror(err));
        }
    }
    if (r.left != 0) {
        fri_cmodel_unref(model);
        goto bad_last;
    }

    // Everything validated: allocate, then commit.
    size_t    cap    = n > 0 ? (size_t) n : 0;
    uint32_t *items  = NULL;
    float    *values = NULL;
    int64_t  *ts     = NULL;
    float    *p      = NULL;
    if (cap > 0) {
        items  = fri_client_alloc(c, cap * sizeof *items);
        values = fri_client_alloc(c, cap * sizeof *values);
        ts     = fri_client_alloc(c, cap * sizeof *ts);
    }
    if (k > 0) {
        p = fri_client_alloc(c, (size_t) k * sizeof *p);
    }
    if ((cap > 0 && (items == NULL || values == NULL || ts == NULL)) ||
        (k > 0 && p == NULL)) {
        fri_client_free(c, items);
        fri_client_free(c, values);
        fri_client_free(c, ts);
        fri_client_free(c, p);
        fri_cmodel_unref(model);
        fri_stats_last_free(last);
        fri_stats_last_free(pend);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (state load)");
    }
    for (size_t i = 0; i < cap; i++) {
        const uint8_t *e = inter + i * INTER_REC;
        items[i]         = fri_get32(e);
        values[i]        = fri_getf32(e + 4);
        ts[i]            = (int64_t) fri_get64(e + 8);
    }
    if (k > 0) {
        fri_get_array32(p, pu, k);
    }
    fri_client_free_wipe(c, c->items, c->inter_cap * sizeof *c->items);
    fri_client_free_wipe(c, c->values, c->inter_cap * sizeof *c->values);
    fri_client_free_wipe(c, c->ts, c->inter_cap * sizeof *c->ts);
    fri_client_free_wipe(c, c->p, (size_t) c->p_k * sizeof *c->p);
    memcpy(c->identity_seed, seed, 32);
    c->fit        = fp;
    c->last_round = fri_get64(lr);
    c->bu         = bu;
    c->p          = p;
    c->p_k        = k;
    c->items      = items;
    c->values     = values;
    c->ts         = ts;
    c->n_inter    = cap;
    c->inter_cap  = cap;
    c->inter_gen++;
    // What the aggregator's running sum holds for this device (a device
    // that lost it would send its whole contribution again: counted twice).
    fri_stats_last_free(c->last);
    fri_stats_last_free(c->pending);
    c->last          = last;
    c->pending       = pend;
    c->pending_round = pend != NULL ? pend_round : 0;
    if (model != NULL) {
        fri_cmodel *used = NULL;
        (void) fri_model_cache_put(c->cache, model, &used);
        fri_client_set_model(c, used);
        fri_cmodel_unref(used);
        fri_cmodel_unref(model);
    }
    // The user vector stays valid only for the model it was fitted to.
    c->fitted         = fitted && k > 0;
    c->trans_ready    = 0;
    c->fitted_version = fit_ver;
    c->fitted_gen     = c->inter_gen;
    if (c->model == NULL || c->model->version != fit_ver ||
        c->model->k != k) {
        c->fitted = 0;
    }
    return FR_OK;
bad_last:
    fri_stats_last_free(last);
    fri_stats_last_free(pend);
bad:
    return fri_client_fail(c, FR_EFORMAT, "%s: malformed state body", path);
}

fr_err
fri_state_load(fr_client *c, const char *path)
{
    uint8_t *buf = NULL;
    size_t   len = 0;
    fr_err   err = read_file(c, path, &buf, &len);
    if (err != FR_OK) {
        return err;
    }
    if (len < STATE_HDR + STATE_TAG || memcmp(buf, STATE_MAGIC, 4) != 0) {
        fri_client_free(c, buf);
        return fri_client_fail(c, FR_EFORMAT, "%s: not a fedrec state file",
                               path);
    }
    unsigned version = fri_get16(buf + 4);
    if (version < STATE_VERSION_MIN || version > STATE_VERSION ||
        fri_get16(buf + 6) != 0) {
        fri_client_free(c, buf);
        return fri_client_fail(c, FR_EFORMAT,
                               "%s: unsupported state format %u", path,
                               version);
    }
    uint64_t body_len = fri_get64(buf + 8);
    if (body_len != (uint64_t) (len - STATE_HDR - STATE_TAG)) {
        fri_client_free(c, buf);
        return fri_client_fail(c, FR_EFORMAT,
                               "%s: truncated or padded state file", path);
    }
    uint8_t *plain = fri_client_alloc(c, (size_t) body_len);
    if (plain == NULL) {
        fri_client_free(c, buf);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (state load)");
    }
    unsigned long long plain_len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, &plain_len, NULL, buf + STATE_HDR,
            (unsigned long long) (len - STATE_HDR), buf, STATE_HDR,
            buf + 16, c->state_key) != 0) {
        fri_client_free(c, buf);
        fri_client_free_wipe(c, plain, (size_t) body_len);
        return fri_client_fail(c, FR_ECRYPTO,
                               "%s: wrong state key or tampered file", path);
    }
    fri_client_free(c, buf);
    err = parse_body(c, plain, (size_t) plain_len, version, path);
    fri_client_free_wipe(c, plain, (size_t) body_len);
    return err;
}
