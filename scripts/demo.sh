#!/usr/bin/env bash
# The main job of rvs, on a Debian 12 machine as root: installs what it needs, builds, and
# runs the lab demo: for DR, NAT and TUN, a cluster in network namespaces (client, router,
# switch, an rvs director, three nginx real servers), real HTTP requests from the client to
# the VIP over IPv4 and IPv6, and how they were spread per scheduler.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --locked -p rvs -p rvsd -p rvsadm
exec ./target/release/rvs lab demo "$@"
