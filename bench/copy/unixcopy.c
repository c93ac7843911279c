/* SPDX-License-Identifier: MIT */
/*
 * The protocol-free baseline of `make bench-copy`: a file copied by two
 * processes through one AF_UNIX stream socket, with nothing on the way
 * (no frames, no credit, no hash). The reader read()s SRC in 256 KiB
 * pieces into the socket; the writer write()s what it receives to DST and
 * fsyncs, as a copy that must be durable does. Both ends get socket
 * buffers of 4 MiB (vmic's link keeps its send buffer at 48..128 KiB), so
 * the baseline is the best this socket does here, not held back by the
 * default size. Prints the seconds taken.
 *
 *   unixcopy SRC DST
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF (256 * 1024)

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy in to out until EOF; 0 or -1. */
static int pump(int in, int out, char *buf)
{
	for (;;) {
		ssize_t r = read(in, buf, BUF);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		if (write_all(out, buf, (size_t)r) < 0)
			return -1;
	}
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	int sv[2], src, dst, status;
	char *buf = malloc(BUF);
	pid_t pid;

	if (argc != 3 || !buf) {
		fprintf(stderr, "usage: unixcopy SRC DST\n");
		return 2;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	for (int i = 0; i < 2; i++) {
		int sz = 4 << 20;

		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(sv[0]);
		src = open(argv[1], O_RDONLY);
		if (src < 0 || pump(src, sv[1], buf) < 0)
			_exit(1);
		_exit(0);
	}
	close(sv[1]);
	dst = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (dst < 0 || pump(sv[0], dst, buf) < 0 || fsync(dst) < 0 ||
	    close(dst) < 0)
		return 1;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.6f\n", (double)(t1.tv_sec - t0.tv_sec) +
				 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	free(buf);
	return 0;
}
