// libFuzzer target for the ratings parser: any input must give FR_OK with
// in-range triplets, or an error with a "name:" message, never a crash or
// leak.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fri_idmap *users = NULL, *items = NULL;
    if (fri_idmap_create(&users) != FR_OK
        || fri_idmap_create(&items) != FR_OK) {
        fri_idmap_destroy(users);
        return 0;
    }
    fri_load_opts o;
    fri_load_opts_init(&o);
    o.max_line = 256; // exercise the limit too
    fri_dataset d;
    char        err[256];
    fr_err e = fri_dataset_parse(&d, "fuzz", (const char *)data, size, users,
        items, &o, err, sizeof(err));
    if (e == FR_OK) {
        if (d.n == 0 || d.n_users != fri_idmap_size(users)
            || d.n_items != fri_idmap_size(items)) {
            __builtin_trap();
        }
        for (size_t i = 0; i < d.n; i++) {
            if (d.r[i].user >= d.n_users || d.r[i].item >= d.n_items
                || !(d.r[i].rating >= o.min_rating
                    && d.r[i].rating <= o.max_rating)) {
                __builtin_trap();
            }
        }
        fri_csr c;
        if (fri_csr_by_user(&c, &d) == FR_OK) {
            fri_csr_free(&c);
        }
        fri_dataset tr, te;
        if (fri_split_last(&d, 1, &tr, &te) == FR_OK) {
            if (tr.n + te.n != d.n) {
                __builtin_trap();
            }
            fri_dataset_free(&tr);
            fri_dataset_free(&te);
        }
        fri_dataset_free(&d);
    } else {
        if (d.r != NULL || d.n != 0 || strncmp(err, "fuzz", 4) != 0
            || fri_idmap_size(users) != 0 || fri_idmap_size(items) != 0) {
            __builtin_trap();
        }
    }
    fri_idmap_destroy(users);
    fri_idmap_destroy(items);
    return 0;
}
