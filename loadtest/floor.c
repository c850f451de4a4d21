/*
 * parley-floor - the raw floor for delivery cost on this machine: one small
 * WebSocket-sized frame per write(2) over a loopback TCP connection, read by
 * the peer. Reports nanoseconds of CPU (user+sys, both ends) per frame. A
 * gateway that writes one syscall per delivery cannot go below this; packing
 * several messages into one write can.
 *
 *   parley-floor [frames (default 1000000)] [bytes per frame (default 120)]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    long frames = argc > 1 ? atol(argv[1]) : 1000000;
    int size = argc > 2 ? atoi(argv[2]) : 120;
    if (frames < 1000 || frames > 100000000 || size < 2 || size > 65536) {
        fprintf(stderr, "usage: parley-floor [frames 1000..1e8] [bytes 2..65536]\n");
        return 2;
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0x7f000001u); /* loopback only */
    socklen_t al = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&a, &al)) {
        perror("listen");
        return 1;
    }
    pid_t reader = fork();
    if (reader == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a)) _exit(1);
        char buf[65536];
        long long want = (long long)frames * size, got = 0;
        while (got < want) {
            ssize_t n = read(s, buf, sizeof buf);
            if (n <= 0) _exit(1);
            got += n;
        }
        _exit(0);
    }
    int c = accept(ls, NULL, NULL);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char *frame = malloc((size_t)size);
    memset(frame, 'x', (size_t)size);
    frame[0] = (char)0x81; /* a text frame header, for realism */
    frame[1] = (char)(size - 2 < 126 ? size - 2 : 126);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double c0 = cpu_s(RUSAGE_SELF);
    for (long i = 0; i < frames; i++) {
        ssize_t off = 0;
        while (off < size) {
            ssize_t n = write(c, frame + off, (size_t)(size - off));
            if (n <= 0) {
                perror("write");
                return 1;
            }
            off += n;
        }
    }
    int st;
    waitpid(reader, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double writer = cpu_s(RUSAGE_SELF) - c0, rd = cpu_s(RUSAGE_CHILDREN);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"frames\":%ld,\"bytes\":%d,\"writer_cpu_ns_per_frame\":%.0f,"
           "\"reader_cpu_ns_per_frame\":%.0f,\"frames_per_s\":%.0f}\n",
           frames, size, writer * 1e9 / (double)frames, rd * 1e9 / (double)frames,
           (double)frames / wall);
    free(frame);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
