// Scratch --state directories for the checkpoint tests: made by mkdtemp,
// removed together with every file fri_ckpt_write may leave in them.
#ifndef FR_TESTS_AGGREGATOR_STATE_DIR_H
#define FR_TESTS_AGGREGATOR_STATE_DIR_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

// dir (cap bytes) = a fresh directory from tmpl ("/tmp/x-XXXXXX").
static inline void
state_dir_make(char *dir, size_t cap, const char *tmpl)
{
    snprintf(dir, cap, "%s", tmpl);
    cr_assert_not_null(mkdtemp(dir));
}

static inline void
state_dir_remove(const char *dir)
{
    const char *names[] = {"checkpoint", "checkpoint.prev", "checkpoint.tmp",
                           "checkpoint.prev.tmp", "buffer.journal"};
    char        p[400];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

#endif
