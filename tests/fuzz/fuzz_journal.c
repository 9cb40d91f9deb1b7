// libFuzzer target for the buffered mode's journal replay
// (fri_journal_replay, what a restart runs on <state>/buffer.journal).
// Each input is replayed twice: as is, and with every record's checksum
// recomputed so that mutations reach the record parser behind it. Every
// report handed out must have the sizes the replay promises; nothing may
// crash, overread or leak.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_ITEMS 50
#define D 4
#define GRAM 10
#define VB 16

static void
check(int cond)
{
    if (!cond) {
        abort();
    }
}

static void
on_report(void *ctx, uint64_t round, const uint8_t pk[FRI_AGG_KEYBYTES],
          const fri_agg_update *u)
{
    (void) ctx;
    (void) pk;
    check(round > 0);
    check(u->n <= N_ITEMS && u->rows_len == (size_t) u->n * D);
    check(u->gram == NULL ? u->gram_len == 0 : u->gram_len == GRAM);
    check(u->vb == NULL ? u->vb_len == 0 : u->vb_len == VB);
    volatile float acc = 0.0f;
    for (uint32_t j = 0; j < u->n; j++) {
        acc += (float) u->items[j];
    }
    for (size_t j = 0; j < u->rows_len; j++) {
        acc += u->rows[j];
    }
    for (size_t j = 0; j < u->gram_len; j++) {
        acc += u->gram[j];
    }
    for (size_t j = 0; j < u->vb_len; j++) {
        acc += u->vb[j];
    }
    (void) acc;
}

static void
replay(const uint8_t *buf, size_t len)
{
    int fd = memfd_create("journal", 0);
    check(fd >= 0);
    check(write(fd, buf, len) == (ssize_t) len);
    size_t n = 0;
    fr_err e = fri_journal_replay(fd, 0, N_ITEMS, D, GRAM, VB, on_report,
                                  NULL, &n);
    check(e == FR_OK || e == FR_ENOMEM);
    close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0) {
        return 0;
    }
    replay(data, size);
    uint8_t *b = malloc(size > 0 ? size : 1);
    check(b != NULL);
    memcpy(b, data, size);
    for (size_t off = 0; off + 8 <= size;) {
        size_t body = (size_t) b[off + 4] | ((size_t) b[off + 5] << 8) |
                      ((size_t) b[off + 6] << 16) |
                      ((size_t) b[off + 7] << 24);
        if (memcmp(b + off, "FRBJ", 4) != 0 || body > size - off - 8 ||
            size - off - 8 - body < 32) {
            break;
        }
        crypto_generichash(b + off + 8 + body, 32, b + off, 8 + body, NULL,
                           0);
        off += 8 + body + 32;
    }
    replay(b, size);
    free(b);
    return 0;
}
