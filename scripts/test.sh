#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the integration suite (tests/api), then
# schemathesis against the built binary on each store (embedded, Redis, Redis Cluster). The integration tests and
# schemathesis start their own redis-server processes on free ports, so redis-server must
# be on PATH, and the dashboard's test drives Debian's Chromium through chromedriver; what
# is missing is installed first.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server redis-tools)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  echo "not found: installing ${missing[*]} with apt-get" >&2
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The unit tests, then the integration suite (tests/api). The benchmark helpers in
# examples/ have no tests; clippy builds them.
cargo test --lib --test api "$@"
# The OpenAPI document against the binary the integration suite just built.
scripts/schemathesis.sh target/debug/akti-link
