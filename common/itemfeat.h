// Item content features (genres, tags) from a MovieLens u.item file:
// "id|title|release date|video release date|URL|f1|...|fd" per line, every
// line with the same d (1..FRI_ITEMFEAT_MAX), values finite numbers (the
// 19 genre flags of ML-100K). Used by fedrec-train (--algo content), the
// aggregator and the simulator (VBMF's item prior, --item-features).
#ifndef FR_COMMON_ITEMFEAT_H
#define FR_COMMON_ITEMFEAT_H

#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "fedrec/err.h"

#define FRI_ITEMFEAT_MAX 59 // features per item (64 fields less 5)

// Reads path into *out (malloc'd, *n_rows x *n_feat floats, row-major).
// With map, row r is the item of dense index r (n_rows = the map's size;
// ids the map lacks are skipped). Without it, the id is the row: n_rows is
// the largest id + 1, at most max_rows (a larger id is an error). Rows of
// items without a line stay zero. Errors (FR_EIO, FR_EFORMAT, FR_ENOMEM)
// name the file and the line in err.
FR_NODISCARD fr_err fri_item_features_load(const char *path, fri_idmap *map,
                                           uint32_t max_rows, float **out,
                                           uint32_t *n_rows, uint32_t *n_feat,
                                           char *err, size_t err_cap);

// The same from an open stream; path names it in messages.
FR_NODISCARD fr_err fri_item_features_read(FILE *f, const char *path,
                                           fri_idmap *map, uint32_t max_rows,
                                           float **out, uint32_t *n_rows,
                                           uint32_t *n_feat, char *err,
                                           size_t err_cap);

#endif
