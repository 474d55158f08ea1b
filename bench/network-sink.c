/* network-sink: the TCP sink of bench/network.sh's throughput section, built static and put
 * into the benchmark's busybox image (so every engine runs the very same binary) and run on
 * the host for the loopback baseline.
 *
 *   network-sink PORT [ADDRESS]     (ADDRESS default 0.0.0.0)
 *
 * Accepts connections one after the other; reads each one to EOF with 1 MiB reads, then writes
 * the byte count it received ("N\n") back and closes it. The client's timing ends when that
 * reply arrives, so it covers every byte delivered to the program in the container, not only
 * what sits in socket buffers. SIGTERM ends it (as pid 1 of a container it would otherwise be
 * ignored).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[1 << 20];

static void on_term(int sig) {
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: network-sink PORT [ADDRESS]\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    if (inet_pton(AF_INET, argc == 3 ? argv[2] : "0.0.0.0", &sa.sin_addr) != 1) {
        fprintf(stderr, "network-sink: bad address\n");
        return 2;
    }
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 16) < 0) {
        perror("network-sink: listen");
        return 1;
    }
    for (;;) {
        int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        unsigned long long total = 0;
        ssize_t n;
        while ((n = read(c, buf, sizeof buf)) > 0)
            total += (unsigned long long)n;
        char reply[32];
        int len = snprintf(reply, sizeof reply, "%llu\n", total);
        if (write(c, reply, (size_t)len) < 0) {
            /* the client went away: nothing to report to */
        }
        close(c);
    }
}
