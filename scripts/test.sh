#!/bin/sh
# All tests: set up (packages only), then the workspace's unit and integration tests (the
# `ci` profile: release code without fat LTO; the container tests need root), the
# kernel-dependent ones again in a QEMU guest on pure cgroup v2 and pure v1 (tests/vm/ci.sh),
# then clippy with warnings as errors.
set -eu
cd "$(dirname "$0")/.."
# Each phase's wall time, printed as it ends (CI's budget is 30 minutes on 2 cores).
start=$(date +%s)
t0=$start
took() { t=$(date +%s); echo "test: $1 took $((t - t0)) s (total $((t - start)) s)" >&2; t0=$t; }
SKIFF_SETUP_NO_BUILD=1 ./scripts/setup.sh
# A criu that works on this kernel, for tests/checkpoint.rs (fetched once; they skip without).
./scripts/criu.sh >/dev/null || echo "test: no working criu (scripts/criu.sh failed): the checkpoint tests will skip" >&2
took setup
rc=0
cargo test --workspace --profile ci --no-fail-fast -- --test-threads=2 || rc=$?
took "host tests"
tests/vm/ci.sh || rc=$?
took "VM tests"
[ "$rc" -eq 0 ] || exit "$rc"
cargo clippy --workspace --all-targets --profile ci -- -D warnings
took clippy
