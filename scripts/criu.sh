#!/bin/sh
# Prints the path of a CRIU that works on this kernel, fetching one if needed.
#
# Debian 12's criu 3.17 cannot dump on kernels >= 6.13 ("vdso: Unexpected rt vDSO area
# bounds"; runc fails the same way with it). CRIU 4.1 can. When `criu check` fails, this script
# fetches Debian 13's criu 4.1.1 and the libraries it needs (glibc 2.41 among them) from
# deb.debian.org, checks them against the archive's signed InRelease (gpgv with
# debian-archive-keyring), unpacks them under $SKIFF_CRIU_DIR (default
# /var/cache/skiff/criu-4.1.1) and writes a `criu` wrapper there that runs the binary
# through its own dynamic loader. Nothing is installed system-wide.
#
# Usage: scripts/criu.sh   -> prints the criu to use (exit 1, with the reason, if none works)
set -eu

if command -v criu >/dev/null 2>&1 && criu check >/dev/null 2>&1; then
    command -v criu
    exit 0
fi

DIR="${SKIFF_CRIU_DIR:-/var/cache/skiff/criu-4.1.1}"
if [ -x "$DIR/criu" ] && "$DIR/criu" check >/dev/null 2>&1; then
    echo "$DIR/criu"
    exit 0
fi

MIRROR="${SKIFF_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=trixie
PKGS="criu libcompel1 libc6 libbsd0 libgnutls30t64 libnet1 libnftables1 libnl-3-200 libprotobuf-c1 libuuid1 libmd0 libidn2-0 libp11-kit0 libtasn1-6 libunistring5 libnettle8t64 libhogweed6t64 libgmp10 libffi8 libmnl0 libnftnl11 libxtables12 libjansson4 libedit2 libtinfo6 libgcc-s1 libcap2 libselinux1 libpcre2-8-0 libzstd1 liblzma5 zlib1g"

TMP="$(mktemp -d /tmp/skiff-criu.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
fetch() { curl -fsS --retry 2 -m 120 -o "$2" "$1" || { echo "criu.sh: cannot fetch $1" >&2; exit 1; }; }

fetch "$MIRROR/dists/$SUITE/InRelease" "$TMP/InRelease"
gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg --output "$TMP/Release" "$TMP/InRelease" 2>/dev/null \
    || { echo "criu.sh: the signature of $SUITE's InRelease does not verify" >&2; exit 1; }
fetch "$MIRROR/dists/$SUITE/main/binary-amd64/Packages.xz" "$TMP/Packages.xz"
want=$(awk '/^SHA256:/{s=1;next} /^[A-Z]/{s=0} s && $3=="main/binary-amd64/Packages.xz"{print $1}' "$TMP/Release")
got=$(sha256sum "$TMP/Packages.xz" | cut -d' ' -f1)
[ -n "$want" ] && [ "$want" = "$got" ] || { echo "criu.sh: Packages.xz does not match the signed Release" >&2; exit 1; }
xz -d "$TMP/Packages.xz"

mkdir -p "$TMP/root"
for p in $PKGS; do
    # The first stanza of package $p: its file and sha256.
    set -- $(awk -v p="$p" '
        /^Package: /{cur=$2; next}
        cur==p && /^Filename: /{f=$2}
        cur==p && /^SHA256: /{s=$2}
        /^$/{ if (cur==p && f!="") { print f, s; exit } cur="" }' "$TMP/Packages")
    [ $# -eq 2 ] || { echo "criu.sh: $p is not in $SUITE" >&2; exit 1; }
    fetch "$MIRROR/$1" "$TMP/$p.deb"
    [ "$(sha256sum "$TMP/$p.deb" | cut -d' ' -f1)" = "$2" ] || { echo "criu.sh: $p.deb does not match its signed checksum" >&2; exit 1; }
    dpkg-deb -x "$TMP/$p.deb" "$TMP/root"
done

mkdir -p "$(dirname "$DIR")"
rm -rf "$DIR.new"
mv "$TMP/root" "$DIR.new"
LIB="$DIR/usr/lib/x86_64-linux-gnu"
cat > "$DIR.new/criu" <<EOF
#!/bin/sh
# CRIU 4.1.1 from Debian $SUITE with its own libraries (written by skiff's scripts/criu.sh).
exec "$LIB/ld-linux-x86-64.so.2" --library-path "$LIB" "$DIR/usr/sbin/criu" "\$@"
EOF
chmod 755 "$DIR.new/criu"
rm -rf "$DIR"
mv "$DIR.new" "$DIR"
if ! "$DIR/criu" check >/dev/null 2>&1; then
    echo "criu.sh: $DIR/criu check fails on this kernel too:" >&2
    "$DIR/criu" check >&2 || true
    exit 1
fi
echo "$DIR/criu"
