// libFuzzer target for the item features parser (operator files): any
// input gives FR_OK with finite rows within the limit, or an error with a
// "name:line:" message, never a crash or leak.
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itemfeat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    FILE *f = fmemopen((void *) data, size, "r");
    if (f == NULL) {
        return 0;
    }
    float   *F = NULL;
    uint32_t rows = 0, d = 0;
    char     err[256] = "";
    fr_err   e = fri_item_features_read(f, "fuzz", NULL, 4096, &F, &rows, &d,
                                        err, sizeof(err));
    fclose(f);
    if (e == FR_OK) {
        if (F == NULL || rows == 0 || rows > 4096 || d == 0 ||
            d > FRI_ITEMFEAT_MAX) {
            __builtin_trap();
        }
        for (size_t i = 0; i < (size_t) rows * d; i++) {
            if (!isfinite(F[i])) {
                __builtin_trap();
            }
        }
    } else if (F != NULL || strncmp(err, "fuzz:", 5) != 0) {
        __builtin_trap();
    }
    free(F);
    return 0;
}
