// The process group of fedrec-sim --mpi over MPI_COMM_WORLD (mpi_group.h).
// MPI carries only the collectives that keep the ranks in lockstep and
// bring results to rank 0; the edges' sums travel to the root over NNG
// tcp, on the same path a deployment's tree uses.
#include "mpi_group.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

static int
bcast(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    // In slices: MPI counts are ints.
    for (size_t off = 0; off < len;) {
        size_t n = len - off < INT_MAX ? len - off : INT_MAX;
        if (MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD)
            != MPI_SUCCESS) {
            return -1;
        }
        off += n;
    }
    return 0;
}

static int
gather(void *ctx, const void *buf, size_t len, void *out, const size_t *lens)
{
    (void)ctx;
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int *counts = NULL, *displs = NULL;
    if (len > INT_MAX) {
        return -1;
    }
    if (rank == 0) {
        counts = malloc(sizeof(int) * (size_t)size);
        displs = malloc(sizeof(int) * (size_t)size);
        size_t off = 0;
        for (int q = 0; counts != NULL && displs != NULL && q < size; q++) {
            if (lens[q] > INT_MAX || off > INT_MAX - lens[q]) {
                free(counts);
                free(displs);
                return -1;
            }
            counts[q] = (int)lens[q];
            displs[q] = (int)off;
            off += lens[q];
        }
        if (counts == NULL || displs == NULL) {
            free(counts);
            free(displs);
            return -1;
        }
    }
    int rc = MPI_Gatherv(buf, (int)len, MPI_BYTE, out, counts, displs,
        MPI_BYTE, 0, MPI_COMM_WORLD);
    free(counts);
    free(displs);
    return rc == MPI_SUCCESS ? 0 : -1;
}

static int
barrier(void *ctx)
{
    (void)ctx;
    return MPI_Barrier(MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

int
fri_mpi_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            break;
        }
        if (strcmp(argv[i], "--mpi") == 0) {
            return 1;
        }
    }
    return 0;
}

int
fri_mpi_group_init(int *argc, char ***argv, fr_sim_group *g)
{
    int provided = 0, rank = 0, size = 0;
    // The simulator's worker threads never call MPI.
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided)
            != MPI_SUCCESS
        || MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS
        || MPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS) {
        return -1;
    }
    memset(g, 0, sizeof(*g));
    g->rank    = (uint32_t)rank;
    g->size    = (uint32_t)size;
    g->bcast   = bcast;
    g->gather  = gather;
    g->barrier = barrier;
    return 0;
}

void
fri_mpi_abort(int code)
{
    MPI_Abort(MPI_COMM_WORLD, code);
}

void
fri_mpi_finalize(void)
{
    MPI_Finalize();
}
