/* An MPI program for the multi-node tests: every rank adds rank+1 with
 * MPI_Allreduce and prints the sum with where it ran (node, Debian release). */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int rank, size, mine, sum = 0;
	char node[256] = "?", release[64] = "?";
	FILE *f;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	mine = rank + 1;
	MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	gethostname(node, sizeof node);
	if ((f = fopen("/etc/debian_version", "r"))) {
		if (fgets(release, sizeof release, f))
			release[strcspn(release, "\n")] = '\0';
		fclose(f);
	}
	printf("rank=%d size=%d sum=%d node=%s debian=%s\n", rank, size, sum, node, release);
	MPI_Finalize();
	return 0;
}
