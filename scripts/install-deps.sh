#!/usr/bin/env bash
# Installs the Debian 12 packages that rvs needs to build, test and run its
# network-namespace lab (rvs-lab): iproute2, nftables, ethtool, nginx, curl,
# wrk, procps, ping and keepalived; plus clang (builds the XDP packet generator of
# `rvs bench`) and haproxy (a baseline of `rvs bench`). Idempotent: packages already installed are skipped,
# and `apt-get update` runs at most once, only when something is missing.
# Must run as root. Exits non-zero with a message on any failure.
set -euo pipefail

PACKAGES=(
    iproute2      # ip netns / link / addr / route / neigh
    nftables      # nft, for data-plane steering rules
    ethtool       # ethtool -K <veth> tx off (veth checksum trap)
    nginx-light   # real-server HTTP daemon in each real-server namespace
    curl          # HTTP client in the client namespace
    wrk           # HTTP load generator for the benchmarks
    procps        # sysctl, ps
    iputils-ping  # ping
    keepalived    # VRRP peer for the failover interop tests (started per namespace by the tests)
    clang         # compiles crates/rvs/bpf/bench_xdp.c (rvs bench's XDP generator)
    haproxy       # TCP-mode proxy baseline of rvs bench (run in the lab only)
)

die() {
    echo "install-deps: error: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get install needs it)"
command -v cargo >/dev/null || die "cargo not found: install Rust 1.95 or newer with rustup first"
command -v dpkg-query >/dev/null || die "dpkg-query not found: this script supports Debian only"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian only"

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"

# Installing nginx would start it as a service in the host namespace; the lab
# starts its own instances per namespace, so keep package scripts from starting
# services while we install (only if the machine has no policy of its own).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
fi
cleanup() {
    if [[ $created_policy -eq 1 ]]; then rm -f "$policy"; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/install-deps.XXXXXX.log)
if ! apt-get update -qq >"$log" 2>&1; then
    cat "$log" >&2
    die "apt-get update failed (log above)"
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "apt-get install ${missing[*]} failed (log tail above, full log: $log)"
fi

for pkg in "${missing[@]}"; do
    is_installed "$pkg" || die "$pkg is still not installed after apt-get install (log: $log)"
done
for tool in ip nft ethtool nginx curl wrk sysctl ping keepalived clang haproxy; do
    command -v "$tool" >/dev/null || die "$tool is not on PATH after installing packages"
done
rm -f "$log"
echo "install-deps: installed ${missing[*]}"
