#!/usr/bin/env bash
# The main job of rvs, on a Debian 12 machine as root: installs what it needs, builds, and
# runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --locked -p rvs
exec ./target/release/rvs demo "$@"
