#!/usr/bin/env python3
"""S2 and S3 on a Redis Cluster beside the same scenarios on standalone Redis, in one run.

    cargo build --release && bench/cluster.py

Starts nginx, a standalone Redis and a private cluster of three primaries with a replica
each (cluster mode, node timeout 1 s), and akti-link instances on each: S2 (human clicks in
open windows), S3 (human clicks that each open a window and queue an event: a 1 ms window),
and S3 again with AKTI_REDIS_WAIT_REPLICAS=1 on the cluster. Interleaved rounds, medians,
ratios to nginx from the same rounds; then how the commands of one S3 run split over the
primaries (INFO commandstats before and after). Uses bench/run.py's helpers, so
bench/run.sh must have run once (nginx, wrk). BENCH_CLUSTER_ROUNDS (default 3),
BENCH_CLUSTER_SECONDS (default 8) and BENCH_CLUSTER_LINKS (default 50000) set the size.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.argv = sys.argv[:1]
import run as bench  # noqa: E402  (reads sys.argv at import)

ROUNDS = int(os.environ.get("BENCH_CLUSTER_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_CLUSTER_SECONDS", "8"))
LINKS = int(os.environ.get("BENCH_CLUSTER_LINKS", "50000"))


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout


def info(port, section, field):
    for line in cli(port, "INFO", section).splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


class Cluster:
    """Three primaries with a replica each, on ports whose bus ports (+10000) are free."""

    def __init__(self):
        self.ports = []
        port = 12000
        while len(self.ports) < 6:
            if bench.port_is_free(port) and bench.port_is_free(port + 10000):
                self.ports.append(port)
            port += 1
        root = tempfile.mkdtemp(dir=bench.WORK)
        for p in self.ports:
            d = os.path.join(root, str(p))
            os.makedirs(d)
            bench.spawn(["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                         "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
                         "--cluster-require-full-coverage", "no", "--repl-diskless-sync-delay", "0",
                         "--save", "", "--appendonly", "no", "--dir", d], name=f"cluster-{p}")
        for p in self.ports:
            while cli(p, "PING").strip() != "PONG":
                time.sleep(0.05)
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-replicas", "1", "--cluster-yes"], capture_output=True, check=True)
        deadline = time.time() + 30
        while not all(info(p, "replication", "role") == "master" or
                      info(p, "replication", "master_link_status") == "up" for p in self.ports) \
                or any("cluster_state:ok" not in cli(p, "CLUSTER", "INFO") for p in self.ports):
            assert time.time() < deadline, "the cluster did not form"
            time.sleep(0.1)
        self.url = ",".join(f"redis://127.0.0.1:{p}" for p in self.primaries())

    def primaries(self):
        return [p for p in self.ports if info(p, "replication", "role") == "master"]

    def calls(self):
        """Commands run so far on each primary."""
        out = {}
        for p in self.primaries():
            total = 0
            for line in cli(p, "INFO", "commandstats").splitlines():
                if "calls=" in line:
                    total += int(line.split("calls=")[1].split(",")[0])
            out[p] = total
        return out


def main():
    nginx_port = bench.free_port()
    bench.nginx(nginx_port)
    redis, cluster = bench.Redis(), Cluster()
    bench.log(f"cluster primaries: {cluster.primaries()}")
    setups = {
        "standalone": ({"AKTI_REDIS_URL": redis.url}, {}),
        "cluster": ({"AKTI_REDIS_URL": cluster.url}, {}),
        "cluster WAIT 1": ({"AKTI_REDIS_URL": cluster.url}, {"AKTI_REDIS_WAIT_REPLICAS": "1"}),
    }
    targets = {}
    for name, (store, extra) in setups.items():
        slug = name.replace(" ", "-")
        fresh = bench.Service(f"{slug}-fresh", store, AKTI_DEDUP_WINDOW="1ms", **extra)
        fresh_codes, rate = fresh.bulk(LINKS, f"fresh-{slug}", "3" if "WAIT" in name else "2")
        fresh_file = bench.write_codes(fresh_codes, f"cluster-{slug}-fresh")
        bench.log(f"{name}: {LINKS} links, bulk {rate:,.0f} links/s")
        bench.wrk(fresh.public, fresh_file, bench.BOT, seconds=SECONDS)  # caches the links
        targets[f"{name} S3"] = (fresh, fresh_file)
        if "WAIT" not in name:
            repeat = bench.Service(f"{slug}-repeat", store, AKTI_DEDUP_WINDOW="1h", **extra)
            codes, _ = repeat.bulk(LINKS, f"repeat-{slug}", "1")
            codes_file = bench.write_codes(codes, f"cluster-{slug}-repeat")
            bench.wrk(repeat.public, codes_file, bench.HUMAN, seconds=max(SECONDS, 15))  # opens windows
            targets[f"{name} S2"] = (repeat, codes_file)

    rates = {}
    split = None
    for r in range(ROUNDS):
        nginx_url = f"http://127.0.0.1:{nginx_port}"
        rates.setdefault("nginx", []).append(bench.wrk(nginx_url, targets["standalone S2"][1], bench.HUMAN, SECONDS).rps)
        order = list(targets) if r % 2 == 0 else list(reversed(targets))
        for name in order:
            service, codes_file = targets[name]
            before = cluster.calls() if name == "cluster S3" and split is None else None
            rates.setdefault(name, []).append(bench.wrk(service.public, codes_file, bench.HUMAN, SECONDS).rps)
            if before is not None:
                after = cluster.calls()
                split = {p: after[p] - before.get(p, 0) for p in after}
        bench.log(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()))
    nginx = statistics.median(rates["nginx"])
    print(f"\n{LINKS} links per instance, {ROUNDS} rounds of {SECONDS} s, medians\n")
    print("| | req/s | vs nginx |\n| --- | ---: | ---: |")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / nginx:.2f} |")
    total = sum(split.values())
    print("\nCommands of one S3 run (cluster, no WAIT) on each primary: " +
          ", ".join(f"{p}: {n:,} ({n / total:.0%})" for p, n in sorted(split.items())))


if __name__ == "__main__":
    bench.run_then_stop(main)
