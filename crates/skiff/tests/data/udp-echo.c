/* udp-echo PORT: answers each datagram with "echo:" + its payload. For tests/network.rs
 * (busybox has no UDP server applet); built there with `cc -static`. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) return 1;
    char in[1500], out[1510];
    for (;;) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(s, in, sizeof in, 0, (struct sockaddr *)&peer, &len);
        if (n < 0) continue;
        memcpy(out, "echo:", 5);
        memcpy(out + 5, in, (size_t)n);
        sendto(s, out, (size_t)n + 5, 0, (struct sockaddr *)&peer, len);
    }
}
