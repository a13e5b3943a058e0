/* bench/mpi.c: the MPI programs of bench/cluster's start-up rows.
 *   mpi hello       MPI_Init and MPI_Finalize only
 *   mpi allreduce   and one MPI_Allreduce across all ranks, checked
 */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	int rank, size, mine, sum = 0;

	MPI_Init(&argc, &argv);
	if (argc > 1 && !strcmp(argv[1], "allreduce")) {
		MPI_Comm_rank(MPI_COMM_WORLD, &rank);
		MPI_Comm_size(MPI_COMM_WORLD, &size);
		mine = rank + 1;
		MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
		if (sum != size * (size + 1) / 2) {
			fprintf(stderr, "rank %d: sum %d, want %d\n", rank, sum, size * (size + 1) / 2);
			MPI_Abort(MPI_COMM_WORLD, 1);
		}
	}
	MPI_Finalize();
	return 0;
}
