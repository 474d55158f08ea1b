# Shell helpers the engine benchmarks' wrappers (engine.sh, network.sh, pull.sh) share for
# their cleanup at exit. Sourced; they expect $WORK (the run's temp dir).

kill_naming() {   # processes whose command line names $WORK: TERM, then KILL, by pid
    local sig pids
    for sig in TERM KILL; do
        pids=$(grep -l -a -F "$WORK" /proc/[0-9]*/cmdline 2>/dev/null | sed 's,/proc/\([0-9]*\)/cmdline,\1,' | grep -v -x -e "$$" -e "$BASHPID" || true)
        [ -n "$pids" ] || return 0
        # shellcheck disable=SC2086
        kill -s $sig $pids 2>/dev/null || true
        for _ in $(seq 50); do
            pids=$(for p in $pids; do [ -e /proc/$p ] && echo "$p"; done)
            [ -n "$pids" ] || return 0
            sleep 0.2
        done
    done
}

rmdir_tree() {   # empty cgroup dirs only: rmdir never removes a cgroup in use
    [ -d "$1" ] || return 0
    find "$1" -depth -mindepth 1 -type d -exec rmdir {} \; 2>/dev/null || true
    rmdir "$1" 2>/dev/null || true
}
