// fedrec-bench-dpz: the smallest noise multiplier z whose (epsilon, delta)
// after `rounds` rounds at sampling rate q meets a target epsilon (the
// accountant of common/dp.c), as JSON. Used by bench/dpstats.sh to choose
// z before a run; the run then reports its own epsilon.
#include <stdio.h>
#include <stdlib.h>

#include "dp.h"

int
main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s Q ROUNDS EPSILON DELTA\n", argv[0]);
        return 2;
    }
    double   q = strtod(argv[1], NULL), eps = strtod(argv[3], NULL);
    double   delta  = strtod(argv[4], NULL);
    uint64_t rounds = strtoull(argv[2], NULL, 10);
    double   z = 0.0, got = 0.0;
    if (fri_dp_noise_for_epsilon(q, rounds, delta, eps, &z) != FR_OK
        || fri_dp_epsilon(q, z, rounds, delta, &got, NULL) != FR_OK) {
        fprintf(stderr, "%s: no noise multiplier found\n", argv[0]);
        return 1;
    }
    printf("{\"q\":%g,\"rounds\":%llu,\"target_epsilon\":%g,\"delta\":%g,"
           "\"noise_multiplier\":%.6g,\"epsilon\":%.6g}\n",
        q, (unsigned long long)rounds, eps, delta, z, got);
    return 0;
}
