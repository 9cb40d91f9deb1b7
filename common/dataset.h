// Ratings datasets: loading (format detected from content), dense id
// remapping, splits, the seeded synthetic generator and the built-in tiny
// example. Used by the trainer, the simulator, the command-line client and
// the tests; the embeddable client itself does not load files.
//
// Formats recognised (one rating per line):
//   - MovieLens 100K:  user<TAB>item<TAB>rating<TAB>timestamp
//   - MovieLens 1M:    user::item::rating::timestamp
//   - CSV with header: userId,movieId,rating,timestamp   (ml-latest)
//   - whitespace:      user item rating [timestamp]
// CRLF line ends are accepted. Every error names the file and the line.
#ifndef FR_COMMON_DATASET_H
#define FR_COMMON_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"
#include "rng.h"

typedef struct fri_triplet {
    uint32_t user; // dense index
    uint32_t item; // dense index
    float    rating;
    int64_t  ts;   // 0 when the format has none
} fri_triplet;

// External id <-> dense index, both directions. Shared by a train and a test
// file so that the same external id gets the same dense index.
typedef struct fri_idmap fri_idmap;

fr_err   fri_idmap_create(fri_idmap **out);
void     fri_idmap_destroy(fri_idmap *m);
// Looks up ext; if absent and insert != 0, assigns the next dense index.
// FR_ENOENT if absent and insert == 0.
fr_err   fri_idmap_get(fri_idmap *m, int64_t ext, int insert, uint32_t *idx);
uint32_t fri_idmap_size(const fri_idmap *m);
int64_t  fri_idmap_ext(const fri_idmap *m, uint32_t idx);

typedef struct fri_dataset {
    fri_triplet *r;
    size_t       n;
    uint32_t     n_users; // dense ids are < n_users / n_items
    uint32_t     n_items;
} fri_dataset;

typedef struct fri_load_opts {
    float  min_rating;  // ratings outside [min, max] are an error
    float  max_rating;
    size_t max_line;    // longest accepted line in bytes (default 4096)
    int64_t max_id;     // larger external ids are "absurd" (default 2^40)
} fri_load_opts;

void fri_load_opts_init(fri_load_opts *o); // [0.5, 5] by default

// Loads path, mapping ids through users/items (inserting new ones).
// On error returns FR_EIO (cannot read), FR_EFORMAT (bad content) or
// FR_ETOOBIG, writes "path:line: what" into err (if err_cap > 0), and leaves
// *out zeroed. n_users/n_items are set to the maps' sizes after loading.
fr_err fri_dataset_load(fri_dataset *out, const char *path, fri_idmap *users,
                        fri_idmap *items, const fri_load_opts *opts,
                        char *err, size_t err_cap);
// Same, from a memory buffer; name is used in error messages.
fr_err fri_dataset_parse(fri_dataset *out, const char *name, const char *buf,
                         size_t len, fri_idmap *users, fri_idmap *items,
                         const fri_load_opts *opts, char *err, size_t err_cap);
void   fri_dataset_free(fri_dataset *d);

// Splits: seeded random hold-out of fraction test_frac of every user's
// ratings (users with one rating keep it in train), and leave-last-out by
// timestamp (each user's latest n_last ratings go to test).
fr_err fri_split_random(const fri_dataset *all, double test_frac,
                        uint64_t seed, fri_dataset *train, fri_dataset *test);
fr_err fri_split_last(const fri_dataset *all, uint32_t n_last,
                      fri_dataset *train, fri_dataset *test);

// Leave-last-out (the NCF protocol): per user, the latest rating by
// timestamp goes to test and, when val != NULL, the one before it to val;
// the rest is train. A user keeps at least one rating in train, so users
// with one rating are train only and users with two get no val item. Equal
// timestamps are ordered by file position (the later line is newer), as
// in fri_split_last; a file without timestamps (every ts 0) thus splits by
// file order; callers that need real time check fri_dataset_has_ts first.
// On error all outputs are zeroed.
fr_err fri_split_leave_last_out(const fri_dataset *all, fri_dataset *train,
                                fri_dataset *val, fri_dataset *test);
// 1 if any rating carries a non-zero timestamp.
int fri_dataset_has_ts(const fri_dataset *d);

// Compressed rows: ratings grouped by user (or by item). Row r holds
// idx[ptr[r] .. ptr[r+1]) with values val[...]; within a row, sorted by idx.
typedef struct fri_csr {
    uint32_t n_rows;
    uint32_t n_cols;
    size_t  *ptr; // n_rows + 1
    uint32_t *idx;
    float    *val;
    int64_t  *ts; // per entry (0 when the format has none); may be NULL
} fri_csr;

fr_err fri_csr_by_user(fri_csr *out, const fri_dataset *d);
fr_err fri_csr_by_item(fri_csr *out, const fri_dataset *d);
void   fri_csr_free(fri_csr *c);
// Length of the longest row (0 for an empty matrix): sizes per-row buffers.
// Inline: the model code (mf.c) needs it on the device, where the loaders
// in dataset.c are not linked (client/CMakeLists.txt).
static inline size_t
fri_csr_max_row_len(const fri_csr *c)
{
    size_t max_n = 0;
    for (uint32_t r = 0; r < c->n_rows; r++) {
        size_t n = c->ptr[r + 1] - c->ptr[r];
        max_n    = n > max_n ? n : max_n;
    }
    return max_n;
}

// Seeded synthetic explicit-rating data: latent ground truth of rank k,
// power-law item popularity (Zipf exponent), per-user activity, Gaussian
// noise of stddev noise, ratings rounded and clipped to [1, 5] unless
// continuous != 0. The same config gives the same data on every machine.
typedef struct fri_synth_config {
    uint32_t n_users;
    uint32_t n_items;
    uint32_t k;
    double   density;  // mean fraction of items a user rated
    double   zipf;     // item popularity exponent
    double   noise;    // observation noise stddev
    int      continuous;
    uint64_t seed;
} fri_synth_config;

void   fri_synth_config_init(fri_synth_config *c);
// Parses "users=N,items=M,k=K,density=D,zipf=Z,noise=S,seed=X" on top of
// the current values. FR_EINVAL with a message naming the bad key.
fr_err fri_synth_config_parse(fri_synth_config *c, const char *spec,
                              char *err, size_t err_cap);
fr_err fri_synth_generate(fri_dataset *out, const fri_synth_config *c);

// The worked example of the recommender article fedrec follows: 10 users x
// 5 movies, ratings 1..5, one unrated cell (user 1, movie 4).
fr_err fri_dataset_tiny(fri_dataset *out);

// Loader details (all loaders above):
//   - The format is fixed by the first non-blank line; a line of another
//     format later on is an error ("mixed formats"), as is a line whose
//     field count differs from the first line's. Blank lines are skipped.
//     A comma-separated file whose first field is not a number starts with
//     a header of 3 or 4 columns (names not checked).
//   - Ids are decimal integers in [0, max_id]; ratings are plain decimals
//     ("4", "3.5"; no exponent, nan or inf) in [min_rating, max_rating];
//     timestamps are optional, decimal int64.
//   - Duplicate (user, item) pairs within one file: the later line wins and
//     replaces the earlier one; surviving ratings keep file order.
//   - On error the id maps are restored to their size before the call.
//   - max_line counts bytes without the LF or CRLF terminator; a longer
//     line is FR_ETOOBIG, detected without reading the rest of it.
// Splits: both keep file order within train and test, and keep at least one
// rating of every user in train (test gets min(round(frac * c), c - 1),
// resp. min(n_last, c - 1) of a user's c ratings). In fri_split_last equal
// timestamps are ordered by position: the later rating counts as newer.

// Loads only the ratings of external user id `user` from path (one client's
// local data): the whole file is validated, every item id is mapped through
// items (so item indices match a full load of the same file with the same
// map), and the result has n_users = 1, user index 0. FR_ENOENT (message
// "path:line: no ratings for user N") if the user has none.
fr_err fri_dataset_load_user(fri_dataset *out, const char *path, int64_t user,
                             fri_idmap *items, const fri_load_opts *opts,
                             char *err, size_t err_cap);

#endif
