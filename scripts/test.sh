#!/bin/sh
# All tests: set up (packages only), then the workspace's unit and integration tests (the
# `ci` profile: release code without fat LTO; the container tests need root), then clippy
# with warnings as errors.
set -eu
cd "$(dirname "$0")/.."
SKIFF_SETUP_NO_BUILD=1 ./scripts/setup.sh
cargo test --workspace --profile ci --no-fail-fast -- --test-threads=2
cargo clippy --workspace --all-targets --profile ci -- -D warnings
