#!/usr/bin/env bash
# Regenerate crates/skiff-runtime/hot-symbols.txt: the functions skiff-runtime calls while it
# runs, creates, starts, execs into, lists and deletes a container, in order of first call.
# build.rs hands the list to the linker (--symbol-ordering-file), which places those functions
# together so a start faults in few text pages (peak RSS). A stale list costs memory, never
# correctness. It goes stale when code moves, and wholesale when a crate's dependencies, the
# profile or rustc change: symbol names carry a hash of those (issue 13: 3.0 -> 3.9 MB exec).
# Usage: bench/hot-symbols.sh           regenerate the list (root)
#        bench/hot-symbols.sh --check   only say how much of the list the binary still has;
#                                       exit 1 under 90%
set -euo pipefail
CHECK=0
if [ "${1:-}" = "--check" ]; then CHECK=1; fi
cd "$(dirname "$0")/.."
ROOT="$PWD"
WORK="$(mktemp -d /tmp/skiff-hot.XXXXXX)"
B="$WORK/tgt/release/skiff-runtime"
S="--root $WORK/state"
cleanup() {
    "$B" $S delete --force hot-run >/dev/null 2>&1 || true
    "$B" $S delete --force hot-exec >/dev/null 2>&1 || true
    "$B" $S delete --force hot-cycle >/dev/null 2>&1 || true
    "$B" $S delete --force hot-limits >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The same profile as the shipped binary (symbol hashes depend on it), plus a link map that
# names every function section and its address.
cargo rustc -q --release -p skiff-runtime --bin skiff-runtime --target-dir "$WORK/tgt" -- \
    -C link-arg=-Wl,-Map="$WORK/map.txt"
gcc -O2 -o "$WORK/fntrace" bench/fntrace.c
python3 - "$WORK/map.txt" "$WORK/funcs" <<'PY'
import re, sys
# lld map lines: VMA LMA SIZE ALIGN  path.o:(.text[.unlikely|.startup|.hot].SYMBOL)
pat = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\S*:\(\.text\.(?:(?:unlikely|startup|hot|exit)\.)?([^)]+)\)$")
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        m = pat.match(line)
        if m and int(m.group(2), 16) > 0:
            out.write(f"{m.group(1)} {m.group(3)}\n")
PY
cut -d' ' -f1 "$WORK/funcs" > "$WORK/addrs"
if [ "$CHECK" = 1 ]; then
    python3 - "$WORK/funcs" "$ROOT/crates/skiff-runtime/hot-symbols.txt" <<'PY'
import sys
have = {line.split()[1] for line in open(sys.argv[1])}
listed = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
found = sum(1 for n in listed if n in have)
pct = 100 * found / max(1, len(listed))
print(f"hot-symbols.txt: {found} of {len(listed)} listed functions are in the binary ({pct:.0f}%)")
if pct < 90:
    print("stale: regenerate it with bench/hot-symbols.sh")
    sys.exit(1)
PY
    exit $?
fi

scripts/mkrootfs.sh "$WORK/bundle/rootfs" >/dev/null
cd "$WORK/bundle"
"$B" spec
set_args() { python3 -c '
import json, sys
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = sys.argv[1:]
json.dump(c, open("config.json", "w"))' "$@"; }
n=0
trace() { n=$((n + 1)); "$WORK/fntrace" "$WORK/addrs" "$WORK/hit.$(printf %02d $n)" "$B" "$@" >/dev/null; }

# exec first: its functions are nearly all shared with run, so placing them first keeps both
# paths compact, and exec (a smaller path) would otherwise be spread over run's.
set_args sleep 30
"$B" $S run -d hot-exec
trace $S exec hot-exec /bin/true
set_args /bin/true
trace $S run hot-run                       # the benchmarked paths first
python3 -c '
import json
c = json.load(open("config.json"))
c["linux"]["resources"] = {"memory": {"limit": 268435456, "swap": 268435456},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000}, "pids": {"limit": 100}}
json.dump(c, open("config.json", "w"))'
trace $S run hot-limits                    # the same with limits (bench/run.sh measures both)
trace $S create hot-cycle
trace $S state hot-cycle
trace $S start hot-cycle
sleep 0.2
trace $S delete hot-cycle
trace $S ps hot-exec
trace $S list
trace $S kill hot-exec KILL
sleep 0.2
trace $S delete hot-exec
trace --version

for f in "$WORK"/hit.*; do flock "$f" true; done   # tracers of leftover processes are done
python3 - "$WORK/funcs" "$ROOT/crates/skiff-runtime/hot-symbols.txt" "$WORK"/hit.* <<'PY'
import sys
names = {}
for line in open(sys.argv[1]):
    addr, name = line.split()
    names.setdefault(int(addr, 16), name)
order, seen = [], set()
for f in sys.argv[3:]:
    for line in open(f):
        name = names.get(int(line, 16))
        if name and name not in seen:
            seen.add(name)
            order.append(name)
open(sys.argv[2], "w").write("".join(n + "\n" for n in order))
print(f"hot-symbols.txt: {len(order)} functions")
PY
