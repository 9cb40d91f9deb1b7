// Aggregator checkpoints: the item model and optimizer state after each
// completed round, in DIR/checkpoint, written atomically (temporary file,
// fsync, rename, fsync of the directory) and sealed with a BLAKE2b-256
// checksum. The file it replaces is kept (hard link) as
// DIR/checkpoint.prev, so a damaged current file never loses more than the
// last round and a torn write never loses anything: the rename only
// happens after the new file is complete and on disk.
//
// Layout, little-endian (format 6):
//   "FRCK" | u32 format | fingerprint[32] | u64 version | u64 round
//   | u64 next_round | u32 n_items | u32 k | f32 mu | u32 opt | u64 opt_t
//   | u64 opt_len | u32 n_opt | bi[n_items] f32 | Q[n_items*k] f32
//   | n_opt arrays of opt_len f32
//   | u32 n_rdp | u64 dp_rounds | n_rdp f64 (privacy accountant)
//   | u64 n_vb | n_vb f32 (VBMF state, aggregator/vbmf.h; 0 otherwise)
//   | u32 acc_len | u32 n_carried | f64 carry_sum | f64 carry_count
//   | u32 n_glob | n_glob f64 | n_carried u32 items (increasing)
//   | n_carried * acc_len f32 (the carried / latest item statistics and
//   the VBMF running global block: what devices' latest-statistics deltas
//   are taken against; 0 / empty otherwise)
//   | u32 n_applied | n_applied * (key[32] | u64 round) (latest statistics
//   under secure aggregation: each device's last applied round,
//   aggregator/keymap.h)
//   | u64 ledger_len | ledger_len bytes (latest statistics without secure
//   aggregation: each device's standing contribution, aggregator/ledger.h,
//   whose loader checks it)
//   | BLAKE2b-256 of everything before
// Format 1 is format 2 without the accountant tail, format 2 is format 3
// without the VBMF tail, format 3 is format 4 without the carried
// statistics, format 4 is format 5 without the applied rounds, format 5
// is format 6 without the ledger; all still load (n_rdp = 0 / n_vb = 0 /
// n_carried = 0 / n_applied = 0 / ledger_len = 0).
#ifndef FR_AGGREGATOR_CKPT_H
#define FR_AGGREGATOR_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

#define FRI_CKPT_FPBYTES 32
#define FRI_CKPT_MAX_OPT 2
// Renyi orders of the DP accountant (FRI_DP_N_ORDERS in common/dp.h).
#define FRI_CKPT_MAX_RDP 160

typedef struct fri_ckpt {
    uint8_t  fingerprint[FRI_CKPT_FPBYTES]; // config the model belongs to
    uint64_t version;    // model version
    uint64_t round;      // last completed round id
    uint64_t next_round; // first round id to use after a restart
    uint32_t n_items;
    uint32_t k;
    float    mu;
    float   *bi; // n_items
    float   *Q;  // n_items * k
    uint32_t opt;   // server optimizer kind (fri_agg_opt)
    uint64_t opt_t; // optimizer step count
    uint64_t opt_len;           // floats per optimizer array
    uint32_t n_opt;             // number of optimizer arrays in use
    float   *opt_state[FRI_CKPT_MAX_OPT];
    // Privacy accountant: RDP spent so far at each order, and the number
    // of noised rounds (n_rdp == 0: none recorded).
    uint32_t n_rdp;
    uint64_t dp_rounds;
    double   rdp[FRI_CKPT_MAX_RDP];
    // VBMF state (fri_vb_state_get layout): n_vb floats, NULL when none.
    uint64_t n_vb;
    float   *vb;
    // Carried / latest item statistics: acc_len floats per carried item.
    uint32_t  acc_len;
    uint32_t  n_carried;
    double    carry_sum;
    double    carry_count;
    uint32_t *carried; // n_carried items, increasing
    float    *carry;   // n_carried * acc_len
    uint32_t  n_glob;  // VBMF running global block (fri_vb_latest_len)
    double   *glob;
    // Per-device applied rounds: n_applied keys (32 bytes each) and rounds
    // (each in 1..round).
    uint32_t  n_applied;
    uint8_t  *applied_keys;
    uint64_t *applied_rounds;
    // The ledger's serialized form (fri_ledger_save), NULL when none.
    uint64_t ledger_len;
    uint8_t *ledger;
} fri_ckpt;

// Writes c as DIR/checkpoint (see above). FR_EIO with a message naming the
// file on failure; the previous checkpoint is then left intact.
FR_NODISCARD fr_err fri_ckpt_write(const char *dir, const fri_ckpt *c,
                                   char *err, size_t err_cap);

// Reads and verifies one checkpoint file into *out (arrays allocated;
// release with fri_ckpt_free). FR_EIO if unreadable (FR_ENOENT if it does
// not exist), FR_EFORMAT if the checksum or layout is wrong or a model or
// optimizer value is not finite. Messages name the file.
FR_NODISCARD fr_err fri_ckpt_read_file(const char *path, fri_ckpt *out,
                                       char *err, size_t err_cap);

// The decoder fri_ckpt_read_file applies to the file's bytes: verifies and
// parses len bytes of buf (untrusted; the caller keeps ownership) into
// *out. FR_EFORMAT (or FR_ENOMEM) with a message "checkpoint NAME: ..." on
// any damage, *out then zeroed; name may be NULL.
FR_NODISCARD fr_err fri_ckpt_decode(const uint8_t *buf, size_t len,
                                    const char *name, fri_ckpt *out,
                                    char *err, size_t err_cap);

// Loads the newest good checkpoint of dir: DIR/checkpoint, or, if that one
// is damaged or missing, DIR/checkpoint.prev (*used_prev = 1, and err then
// describes what was wrong with the current file). FR_ENOENT if dir holds
// none; FR_EFORMAT if the current file is damaged and there is no good
// previous one.
FR_NODISCARD fr_err fri_ckpt_load(const char *dir, fri_ckpt *out,
                                  int *used_prev, char *err, size_t err_cap);

// As fri_ckpt_load, with a semantic check of each sound file (values
// within the configured bounds, sizes matching the configuration): check
// returns 0 to accept, nonzero with a reason in why to refuse, and a
// refused current file falls back to .prev like a damaged one.
typedef int (*fri_ckpt_check_fn)(void *ctx, const fri_ckpt *c, char *why,
                                 size_t why_cap);
FR_NODISCARD fr_err fri_ckpt_load_checked(const char *dir, fri_ckpt *out,
                                          int *used_prev,
                                          fri_ckpt_check_fn check, void *ctx,
                                          char *err, size_t err_cap);

void fri_ckpt_free(fri_ckpt *c); // frees the arrays, zeroes the struct

#endif
