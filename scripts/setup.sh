#!/usr/bin/env bash
# Prepares a new Linux machine for Tendril: Debian packages the lab and the
# tests use, the npm packages, and bpffs. Safe to run again; it only installs
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: command -> package.
declare -A need=(
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [nft]=nftables
  [iperf3]=iperf3
  [wrk]=wrk
  [haproxy]=haproxy
  [busybox]=busybox
  [curl]=curl
  [ip]=iproute2
  [bridge]=iproute2
  [nsenter]=util-linux
  [bpftool]=bpftool
  [tc]=iproute2
  [perl]=perl-base
  [taskset]=util-linux
  [getent]=libc-bin
  [getconf]=libc-bin
  [mkfifo]=coreutils
  [stat]=coreutils
  [ls]=coreutils
  [cat]=coreutils
  [sleep]=coreutils
  [true]=coreutils
  [stty]=coreutils
  [script]=bsdutils
  [kubectl]=kubernetes-client
  [umount]=mount
  [mount]=mount
  [sh]=dash
  [bash]=bash
  [chromium]=chromium
)
missing=()
for cmd in "${!need[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/usr/bin/$cmd" ]; then
    missing+=("${need[$cmd]}")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != "0" ]; then
    echo "tendril setup: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
  else
    echo "tendril setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The Debian etcd package may try to start a system-wide etcd; Tendril runs its own.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
  fi
fi

# npm packages, when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "tendril setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# bpffs for pinned maps and links.
if [ "$(id -u)" = "0" ] && ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
  mkdir -p /sys/fs/bpf
  mount -t bpf bpf /sys/fs/bpf
fi
echo "tendril setup: ready"
