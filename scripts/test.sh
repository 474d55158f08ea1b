#!/bin/sh
# All tests: set up, then the workspace's unit and integration tests (release build; the
# container tests need root), then clippy with warnings as errors.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo test --workspace --release -- --test-threads=2
cargo clippy --workspace --all-targets --release -- -D warnings
