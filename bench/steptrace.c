/* steptrace: single-step a command (and the processes it forks, until they exec something
 * else) with ptrace, and print every distinct instruction offset executed inside the command's
 * own executable, as hex offsets from its load base, in order of first execution.
 * Used by bench/hot-sections.sh to find the code the start path really runs, so the linker can
 * place it together (fewer text pages faulted in: lower peak RSS).
 * Usage: steptrace OUT CMD [ARGS...]   (slow: ~1 s per million instructions) */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define SET_BITS (1u << 26) /* bitmap over the first 64 MiB of the executable */
static uint8_t seen[SET_BITS / 8];
static FILE *out;
static uintptr_t lo, hi; /* r-x range of the traced executable, and its load base */
static uintptr_t base;

static void find_text(pid_t pid, const char *exe) {
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    while (fgets(line, sizeof line, f)) {
        uintptr_t a, b, off; char perms[8]; char name[4096] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &a, &b, perms, &off, name) < 4) continue;
        if (strcmp(name, exe) != 0) continue;
        if (off == 0) base = a;
        if (perms[2] == 'x') { lo = a; hi = b; }
    }
    fclose(f);
    if (!lo) { fprintf(stderr, "steptrace: no text mapping for %s\n", exe); exit(2); }
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: steptrace OUT CMD [ARGS...]\n"); return 2; }
    out = fopen(argv[1], "w");
    if (!out) { perror(argv[1]); return 2; }
    char exe[4096];
    if (!realpath(argv[2], exe)) { perror(argv[2]); return 2; }
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execv(exe, argv + 2);
        _exit(127);
    }
    int st, code = 0;
    waitpid(child, &st, 0);
    ptrace(PTRACE_SETOPTIONS, child, 0,
           PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC |
               PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT, child, 0, 0);
    int execed = 0; /* the first exec is the command itself */
    for (;;) {
        pid_t pid = waitpid(-1, &st, __WALL);
        if (pid < 0) { if (errno == ECHILD) break; if (errno == EINTR) continue; perror("waitpid"); break; }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (pid == child) code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            continue;
        }
        if (!WIFSTOPPED(st)) continue;
        int sig = WSTOPSIG(st), event = st >> 16, deliver = 0;
        if (event == PTRACE_EVENT_EXEC) {
            if (pid == child && !execed) { execed = 1; find_text(pid, exe); }
            else { ptrace(PTRACE_DETACH, pid, 0, 0); continue; } /* left our binary */
        } else if (event == PTRACE_EVENT_STOP || event) {
            /* fork/clone event: the new task starts traced and stopped on its own */
        } else if (sig != SIGTRAP && sig != SIGSTOP) {
            deliver = sig;
        }
        if (execed) {
            struct user_regs_struct r;
            if (ptrace(PTRACE_GETREGS, pid, 0, &r) == 0 && r.rip >= lo && r.rip < hi) {
                uintptr_t o = r.rip - base;
                if (o < SET_BITS && !(seen[o / 8] & (1u << (o % 8)))) {
                    seen[o / 8] |= 1u << (o % 8);
                    fprintf(out, "%lx\n", (unsigned long)o);
                }
            }
        }
        ptrace(execed ? PTRACE_SINGLESTEP : PTRACE_CONT, pid, 0, deliver);
    }
    fclose(out);
    return code;
}
