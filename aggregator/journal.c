// The buffered mode's journal (journal.h). One record per accepted report:
//   "FRBJ" | u32 body length | body | BLAKE2b-256 of everything before
// body: u64 round | key (32) | u32 staleness | f32 stale_dmu | u32 n |
// u32 gram_len | u32 rows_len | u32 vb_len | f64 sum_ratings | f64 count |
// f64 weight | u32 items[n] | f32 gram | f32 rows | f32 vb,
// little-endian. The file is read only by this aggregator's restart;
// the checksum catches a torn last record, the size checks a damaged one.
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#define J_MAGIC "FRBJ"
#define J_HEAD 8
#define J_SUM 32
#define J_FIXED (8 + FRI_AGG_KEYBYTES + 4 * 6 + 8 * 3)
#define J_MAX_BODY ((size_t)1 << 30)

static void
put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void
put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
        | ((uint32_t)p[3] << 24);
}

static uint64_t
get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

static void
putf(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put32(p, v);
}

static float
getf(const uint8_t *p)
{
    uint32_t v = get32(p);
    float    f;
    memcpy(&f, &v, 4);
    return f;
}

static void
putd(uint8_t *p, double x)
{
    uint64_t v;
    memcpy(&v, &x, 8);
    put64(p, v);
}

static double
getd(const uint8_t *p)
{
    uint64_t v = get64(p);
    double   x;
    memcpy(&x, &v, 8);
    return x;
}

fr_err
fri_journal_open(const char *dir, int *fd)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/buffer.journal", dir)
        >= (int)sizeof(path)) {
        return FR_EINVAL;
    }
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    return *fd >= 0 ? FR_OK : FR_EIO;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

fr_err
fri_journal_append(int fd, uint64_t round, const uint8_t pk[FRI_AGG_KEYBYTES],
    const fri_agg_update *u, off_t *undo)
{
    const size_t gl   = u->gram != NULL ? u->gram_len : 0;
    const size_t vl   = u->vb != NULL ? u->vb_len : 0;
    const size_t body = J_FIXED + 4 * ((size_t)u->n + gl + u->rows_len + vl);
    if (body > J_MAX_BODY) {
        return FR_ETOOBIG;
    }
    uint8_t *rec = malloc(J_HEAD + body + J_SUM);
    if (rec == NULL) {
        return FR_ENOMEM;
    }
    memcpy(rec, J_MAGIC, 4);
    put32(rec + 4, (uint32_t)body);
    uint8_t *p = rec + J_HEAD;
    put64(p, round);
    memcpy(p + 8, pk, FRI_AGG_KEYBYTES);
    p += 8 + FRI_AGG_KEYBYTES;
    put32(p, u->staleness);
    putf(p + 4, u->stale_dmu);
    put32(p + 8, u->n);
    put32(p + 12, (uint32_t)gl);
    put32(p + 16, (uint32_t)u->rows_len);
    put32(p + 20, (uint32_t)vl);
    putd(p + 24, u->sum_ratings);
    putd(p + 32, u->count);
    putd(p + 40, u->weight);
    p += 48;
    for (uint32_t j = 0; j < u->n; j++, p += 4) {
        put32(p, u->items[j]);
    }
    for (size_t j = 0; j < gl; j++, p += 4) {
        putf(p, u->gram[j]);
    }
    for (size_t j = 0; j < u->rows_len; j++, p += 4) {
        putf(p, u->rows[j]);
    }
    for (size_t j = 0; j < vl; j++, p += 4) {
        putf(p, u->vb[j]);
    }
    crypto_generichash(p, J_SUM, rec, J_HEAD + body, NULL, 0);
    fr_err rv = FR_OK;
    *undo     = lseek(fd, 0, SEEK_END);
    if (*undo < 0 || write_all(fd, rec, J_HEAD + body + J_SUM) != 0
        || fdatasync(fd) != 0) {
        if (*undo >= 0) {
            fri_journal_undo(fd, *undo);
        }
        rv = FR_EIO;
    }
    free(rec);
    return rv;
}

void
fri_journal_undo(int fd, off_t at)
{
    if (ftruncate(fd, at) == 0) {
        (void)fdatasync(fd);
    }
}

fr_err
fri_journal_clear(int fd)
{
    if (ftruncate(fd, 0) != 0 || fdatasync(fd) != 0) {
        return FR_EIO;
    }
    return FR_OK;
}

static int
read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

// One record's body into u (arrays malloc'd in *bufs); 0 if well-formed.
static int
parse(const uint8_t *b, size_t len, uint32_t n_items, uint32_t d,
    size_t gram_len, size_t vb_len, uint64_t *round, uint8_t *pk,
    fri_agg_update *u, void **bufs)
{
    if (len < J_FIXED) {
        return -1;
    }
    *round = get64(b);
    memcpy(pk, b + 8, FRI_AGG_KEYBYTES);
    const uint8_t *p = b + 8 + FRI_AGG_KEYBYTES;
    memset(u, 0, sizeof(*u));
    u->staleness   = get32(p);
    u->stale_dmu   = getf(p + 4);
    u->n           = get32(p + 8);
    size_t gl      = get32(p + 12);
    u->rows_len    = get32(p + 16);
    size_t vl      = get32(p + 20);
    u->sum_ratings = getd(p + 24);
    u->count       = getd(p + 32);
    u->weight      = getd(p + 40);
    p += 48;
    if (u->n > n_items || u->rows_len != (size_t)u->n * d
        || (gl != 0 && gl != gram_len) || vl != vb_len
        || len != J_FIXED + 4 * ((size_t)u->n + gl + u->rows_len + vl)) {
        return -1;
    }
    uint32_t *items = malloc(((size_t)u->n + 1) * sizeof(uint32_t));
    float    *f     = malloc((gl + u->rows_len + vl + 1) * sizeof(float));
    bufs[0]         = items;
    bufs[1]         = f;
    if (items == NULL || f == NULL) {
        return -1;
    }
    for (uint32_t j = 0; j < u->n; j++, p += 4) {
        items[j] = get32(p);
    }
    for (size_t j = 0; j < gl + u->rows_len + vl; j++, p += 4) {
        f[j] = getf(p);
    }
    u->items    = items;
    u->gram     = gl > 0 ? f : NULL;
    u->gram_len = gl;
    u->rows     = f + gl;
    u->vb       = vl > 0 ? f + gl + u->rows_len : NULL;
    u->vb_len   = vl;
    return 0;
}

fr_err
fri_journal_replay(int fd, uint64_t after, uint32_t n_items, uint32_t d,
    size_t gram_len, size_t vb_len, fri_journal_fn fn, void *ctx,
    size_t *n_out)
{
    *n_out = 0;
    if (lseek(fd, 0, SEEK_SET) != 0) {
        return FR_EIO;
    }
    off_t good = 0;
    for (;;) {
        uint8_t head[J_HEAD];
        if (read_all(fd, head, J_HEAD) != 0) {
            break;
        }
        size_t body = get32(head + 4);
        if (memcmp(head, J_MAGIC, 4) != 0 || body > J_MAX_BODY) {
            break;
        }
        uint8_t *rec = malloc(J_HEAD + body + J_SUM);
        if (rec == NULL) {
            return FR_ENOMEM;
        }
        memcpy(rec, head, J_HEAD);
        uint8_t sum[J_SUM];
        if (read_all(fd, rec + J_HEAD, body + J_SUM) != 0) {
            free(rec);
            break;
        }
        crypto_generichash(sum, J_SUM, rec, J_HEAD + body, NULL, 0);
        uint64_t       round = 0;
        uint8_t        pk[FRI_AGG_KEYBYTES];
        fri_agg_update u;
        void          *bufs[2] = { NULL, NULL };
        int            ok = sodium_memcmp(sum, rec + J_HEAD + body, J_SUM) == 0
            && parse(rec + J_HEAD, body, n_items, d, gram_len, vb_len, &round,
                   pk, &u, bufs)
                == 0;
        if (ok && round > after) {
            fn(ctx, round, pk, &u);
            (*n_out)++;
        }
        free(bufs[0]);
        free(bufs[1]);
        free(rec);
        if (!ok) {
            break;
        }
        good = lseek(fd, 0, SEEK_CUR);
    }
    if (lseek(fd, 0, SEEK_END) != good) {
        fri_journal_undo(fd, good); // the torn or damaged tail
    }
    return FR_OK;
}
