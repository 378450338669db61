#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the integration suite (tests/api), then
# schemathesis against the built binary on each store (embedded, Redis, Redis Cluster). The integration tests and
# schemathesis start their own redis-server processes on free ports, so redis-server must
# be on PATH; it is installed first when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server not found: installing it with apt-get" >&2
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server redis-tools >/dev/null
fi

# The unit tests, then the integration suite (tests/api). The benchmark helpers in
# examples/ have no tests; clippy builds them.
cargo test --lib --test api "$@"
# The OpenAPI document against the binary the integration suite just built.
scripts/schemathesis.sh target/debug/akti-link
