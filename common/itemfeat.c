#include "itemfeat.h"
#include "textline.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Room for rows [0, need) of d floats, zeroed beyond *have.
static int
rows_room(float **feat, uint32_t *have, uint32_t need, uint32_t d)
{
    if (need <= *have) {
        return 0;
    }
    uint32_t cap = *have > 0 ? *have : 64;
    while (cap < need) {
        cap = cap > UINT32_MAX / 2 ? need : cap * 2;
    }
    float *f = realloc(*feat, (size_t) cap * d * sizeof(float));
    if (f == NULL) {
        return -1;
    }
    memset(f + (size_t) *have * d, 0, (size_t) (cap - *have) * d * sizeof(float));
    *feat = f;
    *have = cap;
    return 0;
}

fr_err
fri_item_features_load(const char *path, fri_idmap *map, uint32_t max_rows,
                       float **out, uint32_t *n_rows, uint32_t *n_feat,
                       char *err, size_t err_cap)
{
    *out    = NULL;
    *n_rows = 0;
    *n_feat = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        }
        return FR_EIO;
    }
    fr_err rv = fri_item_features_read(f, path, map, max_rows, out, n_rows,
                                       n_feat, err, err_cap);
    fclose(f);
    return rv;
}

fr_err
fri_item_features_read(FILE *f, const char *path, fri_idmap *map,
                       uint32_t max_rows, float **out, uint32_t *n_rows,
                       uint32_t *n_feat, char *err, size_t err_cap)
{
    *out    = NULL;
    *n_rows = 0;
    *n_feat = 0;
    char        line[4096];
    size_t      ln   = 0;
    float      *feat = NULL;
    uint32_t    have = 0, rows = map != NULL ? fri_idmap_size(map) : 0, d = 0;
    const char *why  = NULL;
    fr_err      rv   = FR_EFORMAT;
    int got;
    while (why == NULL && (got = fri_line_next(f, line, sizeof(line), &ln))) {
        if (got < 0) {
            why = "line too long";
            break;
        }
        char  *field[FRI_ITEMFEAT_MAX + 5];
        size_t nf = fri_line_split(line, '|', field, FRI_ITEMFEAT_MAX + 5);
        if (nf > FRI_ITEMFEAT_MAX + 5) {
            why = "too many fields";
            break;
        }
        if (nf < 6) {
            why = "expected id|title|date|video date|URL|features...";
            break;
        }
        if (d == 0) {
            d = (uint32_t) (nf - 5);
        } else if (nf - 5 != d) {
            why = "number of fields differs from the first line";
            break;
        }
        char              *end;
        errno              = 0;
        unsigned long long ext = strtoull(field[0], &end, 10);
        if (field[0][0] < '0' || field[0][0] > '9' || *end != '\0' ||
            errno != 0 || ext > INT64_MAX) {
            why = "bad item id";
            break;
        }
        float x[FRI_ITEMFEAT_MAX];
        for (uint32_t j = 0; j < d && why == NULL; j++) {
            errno    = 0;
            double v = strtod(field[5 + j], &end);
            if (field[5 + j][0] == '\0' || *end != '\0' || errno != 0 ||
                !isfinite(v) || fabs(v) > 1e30) {
                why = "bad feature value";
            }
            x[j] = (float) v;
        }
        if (why != NULL) {
            break;
        }
        uint32_t row;
        if (map != NULL) {
            if (fri_idmap_get(map, (int64_t) ext, 0, &row) != FR_OK) {
                continue; // an item the data does not have
            }
        } else if (ext >= max_rows) {
            why = "item id beyond the largest catalog";
            break;
        } else {
            row  = (uint32_t) ext;
            rows = row + 1 > rows ? row + 1 : rows;
        }
        if (rows_room(&feat, &have, row + 1 > rows ? row + 1 : rows, d) != 0) {
            why = "out of memory";
            rv  = FR_ENOMEM;
            break;
        }
        memcpy(feat + (size_t) row * d, x, d * sizeof(float));
    }
    if (why == NULL && ferror(f)) {
        why = "read error";
        rv  = FR_EIO;
    }
    if (why == NULL && d == 0) {
        why = "no features";
    }
    if (why == NULL && rows_room(&feat, &have, rows > 0 ? rows : 1, d) != 0) {
        why = "out of memory";
        rv  = FR_ENOMEM;
    }
    if (why != NULL) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s:%zu: %s", path, ln, why);
        }
        free(feat);
        return rv;
    }
    *out    = feat;
    *n_rows = rows;
    *n_feat = d;
    return FR_OK;
}
