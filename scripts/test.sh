#!/usr/bin/env bash
# Runs the whole test suite. The integration tests start their own redis-server processes
# on free ports, so redis-server must be on PATH; install it first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server not found: installing it with apt-get" >&2
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server >/dev/null
fi

# The unit tests, then the integration suite (tests/api), so that the run closes on the
# suite's count. The benchmark helpers in examples/ have no tests; clippy builds them.
cargo test --lib --test api "$@"
