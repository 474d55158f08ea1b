#!/bin/sh
# Installs what skiff needs to build, test and demo (only the missing Debian packages), then
# builds the release binaries. Safe to run again: it does nothing that is already done.
set -eu
cd "$(dirname "$0")/.."

PKGS="busybox-static runc crun nftables uidmap procps libseccomp-dev pkg-config podman conmon containerd skopeo umoci netavark aardvark-dns iptables tini docker.io util-linux docker-registry apache2-utils openssl curl passt slirp4netns qemu-system-x86"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install a Rust toolchain (https://rustup.rs)" >&2
    exit 1
fi

if [ -n "${SKIFF_SETUP_NO_BUILD:-}" ]; then
    exit 0
fi
cargo build --release --workspace
echo "setup: built $(pwd)/target/release/skiff, skiff-monitor and skiff-runtime"
