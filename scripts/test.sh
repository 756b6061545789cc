#!/usr/bin/env bash
# Every test of rvs, on a Debian 12 machine as root: installs what the tests need, then
# checks formatting, runs clippy with warnings as errors, and runs the workspace's tests
# (unit, property, golden-frame, fuzz-corpus replay, and network-namespace end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
