#!/usr/bin/env bash
# Network benchmark: skiff (bridge skiff0, nftables DNAT) against podman 4.3 (netavark with
# iptables, conmon, runc) and Docker 20.10 (our own dockerd: iptables + docker-proxy, its
# defaults), side by side in one run, all in the host's network namespace; prints medians, p90
# and ratios (bench/network.py measures; see there):
#   start   `run -d --network bridge -p 127.0.0.1:PORT:80 IMAGE httpd -f -p 80`, the command's
#           wall time, and the time until an HTTP GET through the port is answered
#                                                      target: skiff >= 5x faster than the fastest peer
#   user    `run -d --network NET IMAGE httpd -f -p 80` on a user network (no -p), for reference
#   tput    host -> container TCP throughput through 127.0.0.1:PORT to the same static sink
#           (bench/network-sink.c) in every engine's container, 2 GiB per run; references: the
#           sink on the host (loopback) and each container's own address (no port mapping)
#                                                      target: skiff no lower than the peers
# Engines take turns round-robin, warm-up dropped; a turn starts once nothing of the previous
# one still works on the temp dir.
#
# Usage: bench/network.sh [--quick] [--no-build] [SECTION[=ITERATIONS] ...]   (root)
#   default: start=20, user=20 (+3 warm-up each), tput=5 (+1), about 5 minutes on the 2-core
#   dev VM; --quick: 4/3/2 iterations and 512 MiB per transfer. --no-build: use
#   target/release/skiff as it is (otherwise `cargo build --release` of skiff, skiff-monitor,
#   skiff-dns first).
#
# Safety and cleanup. Traffic goes only to 127.0.0.1 and to the bridges this script makes;
# images are imported from a local busybox rootfs tar (scripts/mkrootfs.sh + the sink), nothing
# is pulled. Stores, dockerd's data/exec roots, socket and pidfile live in a temp dir under /tmp
# removed at exit; everything runs in one private mount namespace (engines' mounts stay there;
# /var/lib/containers, where podman writes its blob-info cache whatever its configuration says,
# is a dir of the temp dir there). Subnets: 10.201.0.0/16 (user networks 10.201.{1,2,3}.0/24,
# Docker's docker0 --bip 10.201.4.1/24; refused if the host routes any of it), skiff's default
# 172.17.0.0/16, podman's default 10.88.0.0/16. At exit (trap): dockerd is stopped by its pid,
# processes naming the temp dir are killed by pid; iptables/ip6tables rules and chains that
# appeared during the run and belong to Docker or netavark (DOCKER*, NETAVARK*, docker0,
# podman*, br-*, our subnets) are deleted, changed chain policies restored; the bridges this
# run made (docker0, podman0, skiff0 if they did not exist before, the user networks' bridges)
# and skiff's `inet skiff` nft table (if it did not exist before) are deleted when nothing is
# attached to them any more; sysctls the peers flip (ip_forward, route_localnet,
# bridge-nf-call-*) are restored; /run/docker, /run/netns, /run/containerd, /run/runc are
# removed if they did not exist before and are empty. Then the host is compared with the start
# (`== host check`).
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=""
BUILD=1
SECTIONS=()
for a in "$@"; do
    case $a in
        --quick) QUICK=--quick ;;
        --no-build) BUILD=0 ;;
        start|user|tput|start=*|user=*|tput=*) SECTIONS+=("$a") ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $a (sections: start user tput, optionally NAME=ITERATIONS)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "network.sh needs root" >&2; exit 1; }
for b in gcc nft iptables-save ip unshare; do
    command -v "$b" >/dev/null || { echo "network.sh: $b not found" >&2; exit 1; }
done
if ip -4 route show | awk '{print $1}' | grep -q '^10\.201\.'; then
    echo "network.sh: the host routes part of 10.201.0.0/16, which this benchmark uses:" >&2
    ip -4 route show | grep '^10\.201\.' >&2
    exit 1
fi
if [ "$BUILD" = 1 ]; then
    cargo build --release -q -p skiff -p skiff-monitor -p skiff-dns
fi
SKIFF="$PWD/target/release/skiff"
for b in skiff skiff-monitor skiff-dns; do
    [ -x "$PWD/target/release/$b" ] || { echo "no target/release/$b (cargo build --release)" >&2; exit 1; }
done

WORK="$(mktemp -d /tmp/skiff-net-bench.XXXXXX)"
# A copy of the binaries (skiff finds skiff-monitor and skiff-dns beside itself): a rebuild of
# target/release during the run does not change what is measured.
mkdir "$WORK/bin"
cp target/release/skiff target/release/skiff-monitor target/release/skiff-dns "$WORK/bin/"
SKIFF="$WORK/bin/skiff"
TABLES="filter nat mangle raw"
SYSCTLS="net/ipv4/ip_forward net/ipv6/conf/all/forwarding net/ipv6/conf/default/forwarding
net/ipv4/conf/all/route_localnet net/ipv4/conf/default/route_localnet
net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables"
rules() {   # iptables -S of every table, one "FAMILY TABLE RULE" per line
    local t
    for t in $TABLES; do
        iptables -t "$t" -S 2>/dev/null | sed "s/^/4 $t /" || true
        ip6tables -t "$t" -S 2>/dev/null | sed "s/^/6 $t /" || true
    done
}
links() { ip -o link 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | sort; }
snapshot() {
    echo "# mounts"; awk '{print $5}' /proc/self/mountinfo | sort
    echo "# links"; links
    echo "# nft tables"; nft list tables 2>/dev/null | sort || true
    echo "# iptables"; rules
    echo "# sysctls"; for s in $SYSCTLS; do echo "$s $(cat /proc/sys/$s 2>/dev/null || echo -)"; done
    echo "# files"
    ls -d /etc/docker /etc/docker/* /run/docker /run/docker/* /run/containerd /run/containerd/* /run/runc /run/netns \
        /run/netns/* /var/lib/docker /var/lib/containers /var/lib/containers/* /run/containers /run/containers/* \
        /run/containers/networks/* /run/libpod /dev/shm/* 2>/dev/null || true
    echo "# processes"; ps -eo comm= | grep -x -E 'dockerd|containerd|containerd-shim|conmon|docker-proxy|aardvark-dns|netavark|skiff-dns|skiff-monitor|network-sink' | sort || true
    echo "# listening"; { ss -Hltn 2>/dev/null || true; } | awk '{print $4}' | sort
}
snapshot > "$WORK/host.before"
rules > "$WORK/rules.before"
for s in $SYSCTLS; do echo "$s $(cat /proc/sys/$s 2>/dev/null || echo -)"; done > "$WORK/sysctls.before"
FRESH=()   # global paths that did not exist before, removed at exit if empty
for p in /etc/docker/key.json /run/docker /run/docker/plugins /run/containerd /run/containerd/s /run/runc /run/netns \
         /run/containers/networks/aardvark-dns /run/containers/networks/aardvark.lock /run/libpod; do
    [ -e "$p" ] || FRESH+=("$p")
done
FRESH_LINKS=()   # default bridges the engines make on first use
for l in skiff0 podman0 docker0; do
    [ -e "/sys/class/net/$l" ] || FRESH_LINKS+=("$l")
done
FRESH_CG=()
for h in /sys/fs/cgroup/*/; do
    for n in docker libpod_parent; do [ -e "$h$n" ] || FRESH_CG+=("$h$n"); done
done
SKIFF_TABLE_FRESH=0
nft list table inet skiff >/dev/null 2>&1 || SKIFF_TABLE_FRESH=1
: > "$WORK/created-links"

. bench/peers.sh   # kill_naming, rmdir_tree (the cwd is the repository)
clean_rules() {   # Docker's and netavark's rules and chains that appeared during the run
    python3 - "$WORK/rules.before" <<'EOF'
import re, shlex, subprocess, sys
before = set(open(sys.argv[1]).read().splitlines())
pat = re.compile(r"DOCKER|NETAVARK|docker0|podman|br-[0-9a-f]{12}|10\.201\.|10\.88\.")
for fam, tool in (("4", "iptables"), ("6", "ip6tables")):
    for t in ("filter", "nat", "mangle", "raw"):
        r = subprocess.run([tool, "-t", t, "-S"], capture_output=True, text=True)
        if r.returncode:
            continue
        now = r.stdout.splitlines()
        new_chains = [l.split()[1] for l in now if l.startswith("-N ") and f"{fam} {t} {l}" not in before
                      and pat.search(l)]
        for l in now:
            a = shlex.split(l)
            if a[0] == "-A" and a[1] not in new_chains and f"{fam} {t} {l}" not in before and pat.search(l):
                a[0] = "-D"
                subprocess.run([tool, "-t", t] + a)
            elif a[0] == "-P" and f"{fam} {t} {l}" not in before:
                old = [b.split()[4] for b in before if b.startswith(f"{fam} {t} -P {a[1]} ")]
                if old:
                    subprocess.run([tool, "-t", t, "-P", a[1], old[0]])
        for c in new_chains:
            subprocess.run([tool, "-t", t, "-F", c])
        for c in new_chains:
            subprocess.run([tool, "-t", t, "-X", c])
EOF
}
del_bridge() {   # a bridge this run made, if nothing is attached to it any more
    local l=$1
    [ -e "/sys/class/net/$l" ] || return 0
    if [ -n "$(ls "/sys/class/net/$l/brif" 2>/dev/null)" ]; then
        echo "== cleanup: bridge $l still has ports ($(ls "/sys/class/net/$l/brif" | tr '\n' ' ')): left in place"
        return 0
    fi
    ip link del "$l" 2>/dev/null || echo "== cleanup: could not delete $l"
}
cleanup() {
    local status=$?
    set +e
    trap - EXIT INT TERM
    # Normally network.py has removed every container and network and stopped dockerd; this is
    # for a run that was killed: dockerd first (it stops its containerd and docker-proxies).
    if [ -s "$WORK/docker/dockerd.pid" ]; then
        pid=$(cat "$WORK/docker/dockerd.pid")
        if grep -q -a -F "$WORK" "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid"; for _ in $(seq 150); do [ -e "/proc/$pid" ] || break; sleep 0.2; done
        fi
    fi
    # Our containers' processes (by the cgroups of the ids in our stores), then anything naming
    # $WORK (monitors, conmon, shims, skiff-dns, the host sink), then those cgroups.
    ours=$( (ls "$WORK/skiff/containers" 2>/dev/null | sed 's/^/skiff-/'
             ls "$WORK/podman/graph/overlay-containers" 2>/dev/null | sed 's,^,libpod_parent/libpod-,'
             ls "$WORK/docker/data/containers" 2>/dev/null | sed 's,^,docker/,') | grep -E '[0-9a-f]{64}$')
    for c in $ours; do
        for h in /sys/fs/cgroup/*/; do
            [ -d "$h$c" ] && find "$h$c" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
        done
    done
    kill_naming
    for c in $ours; do
        for h in /sys/fs/cgroup/*/; do rmdir_tree "$h$c"; done
    done
    # docker-proxies of our docker0 (their parent dockerd is gone if they are still here).
    for f in /proc/[0-9]*/cmdline; do
        if { tr '\0' ' ' < "$f"; } 2>/dev/null | grep -q '^/usr/sbin/docker-proxy .*-container-ip 10\.201\.'; then
            p=${f#/proc/}; kill "${p%/cmdline}" 2>/dev/null
        fi
    done
    clean_rules
    # Bridges: the user networks' (normally gone with `network rm`), then the default ones.
    while read -r l; do [ -n "$l" ] && del_bridge "$l"; done < "$WORK/created-links"
    for l in "${FRESH_LINKS[@]}"; do del_bridge "$l"; done
    if [ "$SKIFF_TABLE_FRESH" = 1 ] && nft list table inet skiff >/dev/null 2>&1; then
        if [ -e /sys/class/net/skiff0 ] || ls -d /sys/class/net/skbr-* >/dev/null 2>&1; then
            echo "== cleanup: a skiff bridge is still there (in use by someone else?): table inet skiff left in place"
        else
            nft delete table inet skiff
        fi
    fi
    while read -r s v; do
        [ "$v" = - ] && continue
        cur=$(cat "/proc/sys/$s" 2>/dev/null) || continue
        [ "$cur" = "$v" ] || echo "$v" > "/proc/sys/$s"
    done < "$WORK/sysctls.before"
    for d in "${FRESH_CG[@]}"; do rmdir_tree "$d"; done
    for ((i = ${#FRESH[@]} - 1; i >= 0; i--)); do
        p=${FRESH[$i]}
        if [ -d "$p" ]; then rmdir "$p" 2>/dev/null; elif [ -e "$p" ]; then rm -f "$p"; fi
    done
    snapshot > "$WORK/host.after" 2>/dev/null
    if diff -q "$WORK/host.before" "$WORK/host.after" >/dev/null; then
        echo "== host check: left as found (mounts, links, nft tables, iptables, sysctls, /run, /etc/docker, daemons, listening ports)"
    else
        echo "== host check: changed since the start (some may be other users' work):"
        diff "$WORK/host.before" "$WORK/host.after" | grep '^[<>]' | sed 's/^/   /'
    fi
    rm -rf --one-file-system "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

gcc -static -O2 -o "$WORK/network-sink" bench/network-sink.c
scripts/mkrootfs.sh "$WORK/rootfs" >/dev/null
cp "$WORK/network-sink" "$WORK/rootfs/bin/network-sink"
tar -C "$WORK/rootfs" -cf "$WORK/busybox.tar" .
echo "== versions: kernel $(uname -r); $(/bin/busybox 2>&1 | head -1 | cut -d' ' -f1-2) (image); $(nft --version);" \
     "$(iptables --version); python $(python3 -c 'import platform; print(platform.python_version())');" \
     "docker.io $(dpkg-query -W -f='${Version}' docker.io 2>/dev/null || echo ?)," \
     "netavark $(dpkg-query -W -f='${Version}' netavark 2>/dev/null || echo ?)," \
     "aardvark-dns $(dpkg-query -W -f='${Version}' aardvark-dns 2>/dev/null || echo ?)"
# One private mount namespace for every engine (their overlay and netns mounts stay there).
unshare -m --propagation private bash -c '
    set -eu
    W=$1; shift
    mkdir -p "$W/varlib/upper" "$W/varlib/work" "$W/varlib/containers"
    if [ -d /var/lib/containers ]; then
        mount --bind "$W/varlib/containers" /var/lib/containers
    elif ! mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$W/varlib/upper,workdir=$W/varlib/work" /var/lib; then
        echo "warning: podman may create /var/lib/containers/cache" >&2
    fi
    exec python3 bench/network.py "$@"
' network "$WORK" --work "$WORK" --skiff "$SKIFF" --tar "$WORK/busybox.tar" --sink "$WORK/network-sink" \
    $QUICK "${SECTIONS[@]}"
