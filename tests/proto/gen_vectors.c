// Writes the golden wire vectors (tests/vectors/*.bin) from samples.h.
// Run once when the format changes on purpose; the files are checked in
// and test_vectors.c compares encoder output with them byte for byte.
// Usage: fedrec-gen-vectors DIR
#include <stdio.h>

#include "samples.h"

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    static uint8_t buf[4096];
    for (size_t i = 0; i < S_N_VECTORS; i++) {
        size_t n = 0;
        fr_err e = s_vectors[i].fn(buf, sizeof(buf), &n);
        if (e != FR_OK) {
            fprintf(stderr, "%s: %s\n", s_vectors[i].name, fr_strerror(e));
            return 1;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", argv[1], s_vectors[i].name);
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
            fprintf(stderr, "%s: write failed\n", path);
            return 1;
        }
        printf("%s %zu bytes\n", path, n);
    }
    return 0;
}
