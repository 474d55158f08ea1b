/* vmtime: the guest side of bench/vm.sh. Runs a command, then prints one line on stdout:
 *   BENCH LABEL RUNTIME MS MAXRSS_KB STATUS
 * MS is the wall time from fork to wait4 (CLOCK_MONOTONIC), MAXRSS_KB the peak RSS of the
 * command and the processes it reaped (wait4's ru_maxrss), as bench/maxrss.c measures on the
 * host. Static, so that the busybox guest needs nothing else; the command's own output goes
 * to /dev/null (its stderr to stderr, for failures).
 * Usage: vmtime LABEL RUNTIME CMD [ARGS...]; exits with the command's status. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: vmtime LABEL RUNTIME CMD [ARGS...]\n"); return 2; }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) { dup2(fd, 0); dup2(fd, 1); }
        execvp(argv[3], argv + 3);
        perror(argv[3]);
        _exit(127);
    }
    int status; struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("BENCH %s %s %.3f %ld %d\n", argv[1], argv[2], ms, ru.ru_maxrss, rc);
    return rc;
}
