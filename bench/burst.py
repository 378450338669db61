#!/usr/bin/env python3
"""A campaign burst, end to end, on standalone Redis, a Redis Cluster and the embedded store.

    cargo build --release --bin akti-link --example campaign_burst && bench/burst.py

For each store: one akti-link instance, a campaign of BURST_LINKS links (default
1,000,000) created through the bulk API, then examples/campaign_burst: ten subscribers
(eight healthy, one answering after 1 s, one failing with 500) and BURST_CLICKS clicks
(default 200,000) over BURST_SECONDS (default 60) from 70 % first taps, 20 % repeat taps and
10 % previews. The service and its store share one core, the burst program has the other.
BURST_STORES (default redis,cluster,embedded) picks the stores. Prints a table and writes
bench/results/burst-<time>.json.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.argv = sys.argv[:1]
import run as bench  # noqa: E402  (reads sys.argv at import)
import cluster  # noqa: E402

BURST = os.path.join(bench.ROOT, "target/release/examples/campaign_burst")
LINKS = int(os.environ.get("BURST_LINKS", "1000000"))
CLICKS = int(os.environ.get("BURST_CLICKS", "200000"))
SECONDS = int(os.environ.get("BURST_SECONDS", "60"))
STORES = os.environ.get("BURST_STORES", "redis,cluster,embedded").split(",")
bench.BIN = os.environ.get("BURST_BIN", bench.BIN)


def redis_pid(port):
    return int(cluster.info(port, "server", "process_id"))


def store(name):
    """The store's environment for the service, and the ports of its Redis servers."""
    if name == "redis":
        redis = bench.Redis()
        return {"AKTI_REDIS_URL": redis.url}, [redis.port]
    if name == "cluster":
        nodes = cluster.Cluster()
        return {"AKTI_REDIS_URL": nodes.url}, nodes.ports
    return {"AKTI_DATA_DIR": tempfile.mkdtemp(dir=bench.WORK)}, []


def burst(name):
    env, ports = store(name)
    service = bench.Service(f"burst-{name}", env)
    codes, rate = service.bulk(LINKS, "burst", "7")
    bench.log(f"{name}: {LINKS:,} links at {rate:,.0f} links/s")
    codes_file = bench.write_codes(codes, f"burst-{name}")
    pids = [service.proc.pid] + [redis_pid(p) for p in ports]
    receiver = f"127.0.0.1:{bench.free_port()}"
    cmd = [BURST, service.public, service.admin, bench.TOKEN, codes_file, receiver, str(CLICKS), str(SECONDS),
           ",".join(map(str, pids))]
    out = subprocess.run(bench.pinned(cmd, cpu=bench.LOAD_CPU), capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    result["bulk_links_per_s"] = rate
    bench.log(f"{name}: {result}")
    service.stop()
    for port in ports:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)
    return result


def main():
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": bench.machine(),
               "links": LINKS, "clicks": CLICKS, "seconds": SECONDS,
               "healthy_subscribers": int(os.environ.get("BURST_HEALTHY", "8")),
               "stores": {name: burst(name) for name in STORES}}
    mb = 1024 * 1024
    print(f"\n{LINKS:,} links, {CLICKS:,} clicks over {SECONDS} s\n")
    print("| | redirect p50 / p99 | webhook p50 / p99 (healthy) | healthy received | slow backlog at end | "
          "slow drains | failing attempts | RSS service / store |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results["stores"].items():
        print(f"| {name} | {r['redirect_p50_ms']:.2f} / {r['redirect_p99_ms']:.2f} ms "
              f"| {r['webhook_p50_ms']:.0f} / {r['webhook_p99_ms']:.0f} ms "
              f"| {r['healthy_received']:,} of {r['healthy_expected']:,} "
              f"| {r['slow_backlog_at_end']:,} | {r['slow_drain_per_s']:.0f}/s, ~{r['slow_drain_projected_s'] / 60:.0f} min "
              f"| {r['failing_attempts']:,} "
              f"| {r['peak_rss_service_bytes'] / mb:.0f} / {r['peak_rss_store_bytes'] / mb:.0f} MB |")
    os.makedirs(os.path.join(bench.ROOT, "bench/results"), exist_ok=True)
    name = "burst-" + time.strftime("%Y-%m-%dT%H%M", time.gmtime()) + ".json"
    with open(os.path.join(bench.ROOT, "bench/results", name), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    bench.run_then_stop(main)
