// fedrec-sim --mpi: the process group of fr_sim_create_group over MPI
// (mpi_group.c, linked into the fedrec-sim front end only, so that
// libfedrec-sim and its Python bindings do not depend on MPI).
#ifndef FR_SIM_MPI_GROUP_H
#define FR_SIM_MPI_GROUP_H

#include "fedrec/sim.h"

// Whether argv asks for --mpi.
int fri_mpi_wanted(int argc, char **argv);
// MPI_Init and the group of MPI_COMM_WORLD. 0 on success.
int fri_mpi_group_init(int *argc, char ***argv, fr_sim_group *g);
// A failed rank ends every rank (the others would wait in a collective).
void fri_mpi_abort(int code);
void fri_mpi_finalize(void);

#endif
