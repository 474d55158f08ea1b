#!/bin/sh
# mkrootfs.sh DIR: makes DIR a minimal busybox root filesystem (static /bin/busybox from the
# busybox-static package, one symlink per applet in /bin, a root user). Used by the demo, the
# integration tests and the benchmarks. Needs no root. Replaces DIR's content if it exists.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
DIR=$1
BUSYBOX=${BUSYBOX:-/bin/busybox}
if ! [ -x "$BUSYBOX" ]; then
    echo "mkrootfs: $BUSYBOX not found (apt-get install busybox-static)" >&2
    exit 1
fi
if ldd "$BUSYBOX" >/dev/null 2>&1; then
    echo "mkrootfs: $BUSYBOX is dynamically linked; the rootfs needs a static busybox" >&2
    exit 1
fi

rm -rf "$DIR"
mkdir -p "$DIR"
cd "$DIR"
mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys tmp root run var/tmp
chmod 1777 tmp var/tmp
chmod 700 root
cp "$BUSYBOX" bin/busybox
# Relative links (not `busybox --install -s`, which would point at the host path).
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "bin/$applet"
done

cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
tty:x:5:
nogroup:x:65534:
GROUP
echo "skiff" > etc/hostname
: > etc/resolv.conf
