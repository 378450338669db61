#!/usr/bin/env bash
# Validates the OpenAPI document (openapi-spec-validator), then runs schemathesis, every
# check, against the released binary on each store: the embedded
# store, a private redis-server on a free port, and a private Redis Cluster (three
# primaries, a replica each). Fails on any failure.
#
#   scripts/schemathesis.sh [BINARY]     (default: target/debug/akti-link)
#
# The cases come from a fixed seed (SCHEMATHESIS_SEED, default 1), so that the generated
# cases are mostly the same from run to run (the stateful phase still follows the
# service's answers) and CI rarely meets a case no local run saw; set another seed (or
# "random") to explore other cases.
#
# Schemathesis comes from PyPI into a virtual environment under target/, pinned in
# tests/schemathesis/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/debug/akti-link}
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/st" ] || ! cmp -s tests/schemathesis/requirements.txt "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/schemathesis/requirements.txt
  cp tests/schemathesis/requirements.txt "$venv/requirements.txt"
fi
seed=(--seed "${SCHEMATHESIS_SEED:-1}")
if [ "${SCHEMATHESIS_SEED:-}" = random ]; then seed=(); fi
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() {
  for _ in $(seq 100); do
    if curl -sf "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "nothing answers at $1" >&2
  return 1
}

# run STORE_NAME [ENV...]: starts the binary with ENV, runs schemathesis, stops it.
run() {
  local name=$1; shift
  local public admin token=schemathesis-token
  public=$(free_port); admin=$(free_port)
  mkdir -p "$work/$name"
  env -i PATH="$PATH" "$@" \
    AKTI_PUBLIC_ADDR=127.0.0.1:$public AKTI_ADMIN_ADDR=127.0.0.1:$admin \
    AKTI_BASE_URL=http://127.0.0.1:$public AKTI_ADMIN_TOKEN=$token \
    AKTI_DATA_DIR="$work/$name/data" AKTI_LOG=warn \
    "$binary" > "$work/$name/akti.log" 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:$admin/healthz"
  # The document itself, webhooks included, against the OpenAPI 3.1 specification.
  curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$admin/v1/openapi.json" \
    > "$work/$name/openapi.json"
  "$venv/bin/openapi-spec-validator" "$work/$name/openapi.json"
  echo "schemathesis: $name store" >&2
  if ! "$venv/bin/st" --config-file tests/schemathesis/schemathesis.toml run \
      "http://127.0.0.1:$admin/v1/openapi.json" \
      -H "Authorization: Bearer $token" --checks all \
      --max-examples "${SCHEMATHESIS_EXAMPLES:-50}" "${seed[@]}" --no-color; then
    echo "schemathesis failed on the $name store; the service's log:" >&2
    tail -50 "$work/$name/akti.log" >&2
    return 1
  fi
}

run embedded
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" > "$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
run redis AKTI_REDIS_URL=redis://127.0.0.1:$redis_port

# Six nodes whose ports and bus ports (+10000) are free, below the ephemeral range.
cluster_ports=$(python3 - <<'PY'
import socket
def free(p):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p)); return True
        except OSError:
            return False
ports, p = [], 14000
while len(ports) < 6:
    if free(p) and free(p + 10000):
        ports.append(p)
    p += 1
print(" ".join(map(str, ports)))
PY
)
nodes=()
for port in $cluster_ports; do
  mkdir -p "$work/cluster/$port"
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-node-timeout 1000 \
    --cluster-require-full-coverage no --repl-diskless-sync-delay 0 --save "" \
    --appendonly no --dir "$work/cluster/$port" > "$work/cluster/$port/redis.log" 2>&1 &
  pids+=($!)
  nodes+=("127.0.0.1:$port")
done
for port in $cluster_ports; do
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes > "$work/cluster/create.log"
for port in $cluster_ports; do
  for _ in $(seq 200); do
    redis-cli -p "$port" cluster info | grep -q "cluster_state:ok" && break
    sleep 0.1
  done
done
primaries=$(for port in $cluster_ports; do
  if redis-cli -p "$port" info replication | grep -q "role:master"; then
    echo "redis://127.0.0.1:$port"
  fi
done | paste -sd, -)
run cluster AKTI_REDIS_URL="$primaries"
