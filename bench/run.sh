#!/usr/bin/env bash
# The benchmark, in one command: installs what it needs (nginx, wrk, redis-server from
# Debian), builds the release binary and the baselines, and runs bench/run.py.
# Usage: bench/run.sh [--quick]     (results: bench/results/<date>.json and a table)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --bin akti-link --example baseline --example click_latency
exec python3 bench/run.py "$@"
