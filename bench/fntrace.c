/* fntrace: list the functions of an executable that a run of it calls, in order of first call,
 * in the command and in the processes it forks (until they exec something else).
 * A one-shot breakpoint (int3) goes on the entry of every function given; on the first hit the
 * original byte is put back and the offset printed. Used by bench/hot-sections.sh to find the
 * code the start path runs, so the linker can place it together (fewer text pages faulted in,
 * lower peak RSS).
 * Usage: fntrace FUNCS OUT CMD [ARGS...]
 *   FUNCS: one hex offset (from the load base, as `nm` prints for a PIE) per line.
 * fntrace returns when CMD exits, with its status; processes CMD left behind (a created
 * container's init) stay traced by a background tracer, which holds flock(OUT) until the last
 * of them exits or execs: `flock OUT true` waits for the complete list. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

struct bp { uintptr_t off; long orig; int hit; };
static struct bp *bps;
static size_t nbps;
static uintptr_t base;

static int cmp(const void *a, const void *b) {
    uintptr_t x = ((const struct bp *)a)->off, y = ((const struct bp *)b)->off;
    return x < y ? -1 : x > y;
}

static struct bp *find(uintptr_t off) {
    struct bp key = {.off = off};
    return bsearch(&key, bps, nbps, sizeof *bps, cmp);
}

static uintptr_t load_base(pid_t pid, const char *exe) {
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    uintptr_t b = 0;
    while (fgets(line, sizeof line, f)) {
        uintptr_t a, off; char name[4096] = "";
        if (sscanf(line, "%lx-%*x %*s %lx %*s %*s %4095s", &a, &off, name) == 3 &&
            off == 0 && strcmp(name, exe) == 0) { b = a; break; }
    }
    fclose(f);
    if (!b) { fprintf(stderr, "fntrace: %s is not mapped\n", exe); exit(2); }
    return b;
}

static void arm(pid_t pid) {
    for (size_t i = 0; i < nbps; i++) {
        uintptr_t addr = base + bps[i].off;
        errno = 0;
        long w = ptrace(PTRACE_PEEKTEXT, pid, addr, 0);
        if (errno) continue;
        bps[i].orig = w;
        ptrace(PTRACE_POKETEXT, pid, addr, (w & ~0xffL) | 0xcc);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: fntrace FUNCS OUT CMD [ARGS...]\n"); return 2; }
    FILE *in = fopen(argv[1], "r");
    if (!in) { perror(argv[1]); return 2; }
    size_t cap = 1024;
    bps = calloc(cap, sizeof *bps);
    unsigned long o;
    while (fscanf(in, "%lx", &o) == 1) {
        if (nbps == cap) bps = realloc(bps, (cap *= 2) * sizeof *bps);
        bps[nbps++] = (struct bp){.off = o};
    }
    fclose(in);
    qsort(bps, nbps, sizeof *bps, cmp);
    FILE *out = fopen(argv[2], "w");
    if (!out) { perror(argv[2]); return 2; }
    char exe[4096];
    if (!realpath(argv[3], exe)) { perror(argv[3]); return 2; }
    flock(fileno(out), LOCK_EX);
    int done[2];
    if (pipe(done) < 0) { perror("pipe"); return 2; }
    if (fork() != 0) { /* foreground: report CMD's status as soon as the tracer sends it */
        close(done[1]);
        unsigned char c;
        return read(done[0], &c, 1) == 1 ? c : 2;
    }
    close(done[0]);
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execv(exe, argv + 3);
        _exit(127);
    }
    int st, code, execed = 0;
    waitpid(child, &st, 0);
    ptrace(PTRACE_SETOPTIONS, child, 0,
           PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC);
    ptrace(PTRACE_CONT, child, 0, 0);
    for (;;) {
        pid_t pid = waitpid(-1, &st, __WALL);
        if (pid < 0) { if (errno == EINTR) continue; break; }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (pid == child) {
                code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                fflush(out);
                unsigned char c = code;
                if (write(done[1], &c, 1) < 0) perror("fntrace: write");
                close(done[1]);
            }
            continue;
        }
        if (!WIFSTOPPED(st)) continue;
        int sig = WSTOPSIG(st), event = st >> 16, deliver = 0;
        if (event == PTRACE_EVENT_EXEC) {
            if (pid == child && !execed) { execed = 1; base = load_base(pid, exe); arm(pid); }
            else { ptrace(PTRACE_DETACH, pid, 0, 0); continue; } /* it left our binary */
        } else if (event) {
            /* fork/clone: the new task reports its own initial stop */
        } else if (sig == SIGTRAP && execed) {
            struct user_regs_struct r;
            ptrace(PTRACE_GETREGS, pid, 0, &r);
            struct bp *b = find(r.rip - 1 - base);
            if (b) {
                if (!b->hit) { b->hit = 1; fprintf(out, "%lx\n", (unsigned long)b->off); }
                /* restore in this process; forked copies restore on their own hit */
                long w = ptrace(PTRACE_PEEKTEXT, pid, base + b->off, 0);
                ptrace(PTRACE_POKETEXT, pid, base + b->off, (w & ~0xffL) | (b->orig & 0xff));
                r.rip -= 1;
                ptrace(PTRACE_SETREGS, pid, 0, &r);
            } else {
                deliver = sig;
            }
        } else if (sig != SIGSTOP || pid == child) {
            deliver = sig == SIGSTOP ? 0 : sig;
        }
        ptrace(PTRACE_CONT, pid, 0, deliver);
    }
    fclose(out); /* releases the lock */
    return 0;
}
