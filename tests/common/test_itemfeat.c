// The u.item feature loader (common/itemfeat.h): rows by id or through an
// id map, items without a line zero, and every malformed file refused with
// its line named.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itemfeat.h"

static fr_err
parse(const char *text, fri_idmap *map, uint32_t max_rows, float **F,
      uint32_t *rows, uint32_t *d, char *err, size_t cap)
{
    FILE *f = fmemopen((void *) text, strlen(text), "r");
    cr_assert_not_null(f);
    fr_err e = fri_item_features_read(f, "u.item", map, max_rows, F, rows, d,
                                      err, cap);
    fclose(f);
    return e;
}

Test(itemfeat, rows_by_id_and_through_a_map)
{
    const char *text = "1|Toy Story (1995)|01-Jan-1995||http://x|0|1|1\n"
                       "\n"
                       "4|Get Shorty|01-Jan-1995||http://y|1|0|0.5\r\n";
    float   *F = NULL;
    uint32_t rows, d;
    char     err[256];
    cr_assert_eq(parse(text, NULL, 100, &F, &rows, &d, err, sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert_eq(d, 3);
    cr_assert_eq(rows, 5); // ids 0..4
    cr_assert_float_eq(F[1 * 3 + 1], 1.0f, 0);
    cr_assert_float_eq(F[4 * 3 + 2], 0.5f, 0);
    for (int j = 0; j < 3; j++) {
        cr_assert_float_eq(F[0 * 3 + j], 0.0f, 0); // no line: zero
        cr_assert_float_eq(F[2 * 3 + j], 0.0f, 0);
    }
    free(F);
    // Through a map: id 4 is row 0, id 1 is not in the data.
    fri_idmap *m = NULL;
    uint32_t   idx;
    cr_assert_eq(fri_idmap_create(&m), FR_OK);
    cr_assert_eq(fri_idmap_get(m, 4, 1, &idx), FR_OK);
    cr_assert_eq(fri_idmap_get(m, 7, 1, &idx), FR_OK);
    cr_assert_eq(parse(text, m, 0, &F, &rows, &d, err, sizeof(err)), FR_OK,
                 "%s", err);
    cr_assert_eq(rows, 2);
    cr_assert_float_eq(F[0], 1.0f, 0);
    cr_assert_float_eq(F[3], 0.0f, 0); // id 7 has no line
    free(F);
    fri_idmap_destroy(m);
}

Test(itemfeat, malformed_files_are_refused)
{
    const struct {
        const char *text, *want;
    } bad[] = {
        {"1|t|d||u\n", "u.item:1: expected"},
        {"1|t|d||u|1|0\n2|t|d||u|1\n", "u.item:2: number of fields"},
        {"x|t|d||u|1\n", "u.item:1: bad item id"},
        {"-1|t|d||u|1\n", "u.item:1: bad item id"},
        {"1|t|d||u|nan\n", "u.item:1: bad feature value"},
        {"1|t|d||u|1e300\n", "u.item:1: bad feature value"},
        {"1|t|d||u|\n", "u.item:1: bad feature value"},
        {"1|t|d||u|2x\n", "u.item:1: bad feature value"},
        {"100|t|d||u|1\n", "u.item:1: item id beyond"},
        {"", "no features"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        float   *F = (float *) 1;
        uint32_t rows = 7, d = 7;
        char     err[256] = "";
        cr_assert_neq(parse(bad[i].text, NULL, 100, &F, &rows, &d, err,
                            sizeof(err)),
                      FR_OK, "accepted: %s", bad[i].text);
        cr_assert(strstr(err, bad[i].want) != NULL, "%s: got '%s'",
                  bad[i].text, err);
        cr_assert_null(F);
        cr_assert_eq(rows, 0);
        cr_assert_eq(d, 0);
    }
    float   *F;
    uint32_t rows, d;
    char     err[256];
    cr_assert_eq(fri_item_features_load("/nonexistent/u.item", NULL, 10, &F,
                                        &rows, &d, err, sizeof(err)),
                 FR_EIO);
    cr_assert(strstr(err, "/nonexistent/u.item") != NULL, "%s", err);
}
