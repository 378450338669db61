#!/usr/bin/env bash
# Memory under a long admin load: starts the release binary (embedded store, or Redis with
# SOAK_REDIS_URL), seeds 1,000 links, then runs bench/admin_mix.lua with wrk for
# SOAK_SECONDS (default 1200) and samples the process's RSS every 10 s into
# bench/results/soak-<time>.csv (seconds, requests so far, RSS KiB).
#
#   cargo build --release && bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SOAK_SECONDS:-1200}
work=$(mktemp -d)
out=bench/results/soak-$(date -u +%Y-%m-%dT%H%M).csv
mkdir -p bench/results
env -i PATH="$PATH" AKTI_ADMIN_TOKEN=soak-token AKTI_PUBLIC_ADDR=127.0.0.1:18280 \
  AKTI_ADMIN_ADDR=127.0.0.1:18281 AKTI_DATA_DIR="$work/data" AKTI_LOG=warn \
  ${SOAK_REDIS_URL:+AKTI_REDIS_URL=$SOAK_REDIS_URL} \
  target/release/akti-link > "$work/akti.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18281/healthz >/dev/null && break; sleep 0.1; done
python3 - "$work/codes.txt" <<'PY'
import json, sys, urllib.request
leads = [{"phone": "+1415%07d" % i} for i in range(1000)]
body = json.dumps({"campaignId": "soak", "url": "https://soak.test/", "leads": leads}).encode()
req = urllib.request.Request("http://127.0.0.1:18281/v1/links/bulk", body, method="POST",
    headers={"Authorization": "Bearer soak-token", "Content-Type": "application/json"})
links = json.load(urllib.request.urlopen(req))["links"]
open(sys.argv[1], "w").write("\n".join(l["code"] for l in links) + "\n")
PY
requests() {
  curl -s http://127.0.0.1:18281/metrics | awk '/^akti_http_requests_total\{listener="admin"/ {s += $2} END {printf "%d", s}'
}
echo "seconds,requests,rss_kib" > "$out"
start=$(date +%s)
wrk -t1 -c32 -d"${seconds}s" -s bench/admin_mix.lua http://127.0.0.1:18281 -- "$work/codes.txt" > "$work/wrk.txt" &
wrk_pid=$!
while kill -0 $wrk_pid 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  echo "$(( $(date +%s) - start )),$(requests),$rss" >> "$out"
  sleep 10
done
cat "$work/wrk.txt"
echo "samples in $out"
