#!/usr/bin/env python3
"""Where a redirect's CPU goes: the service's and its Redis' CPU time per request.

    bench/cpu_split.py [BINARY]   # default: target/release/akti-link; BENCH_SPLIT_ROUNDS=3

Redis shares the servers' core in the benchmark, so every microsecond it spends on a
click is taken from the redirects; requests per second alone cannot tell the two apart.
Each scenario (the bare axum handler, S1, S2, S3 on Redis) runs with only its processes
going (`Frozen`), and the processes' user and system time (`/proc/<pid>/stat`) over the
run is divided by the requests wrk completed. Medians of the rounds. On a shared machine
the figures of one process move with its neighbours' load (a slow moment makes every
microsecond longer), so compare figures of the same run.
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
args = sys.argv[1:]
sys.argv = sys.argv[:1]
import run as bench  # noqa: E402  (reads sys.argv at import)

BINARY = args[0] if args else bench.BIN
ROUNDS = int(os.environ.get("BENCH_SPLIT_ROUNDS", "3"))
SECONDS = 10
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User and system time of every thread of `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main():
    bench.BIN = BINARY
    baseline_codes = bench.write_codes([f"c{i}" for i in range(bench.LINKS)], "split-baseline")
    port = bench.free_port()
    baseline = bench.spawn([bench.BASELINE, f"127.0.0.1:{port}", baseline_codes], name="baseline")
    bench.wait_for(f"http://127.0.0.1:{port}/c1")
    (repeat_env, repeat_store), (fresh_env, fresh_store) = bench.own_redis(), bench.own_redis()
    repeat = bench.Service("split-repeat", repeat_env, AKTI_DEDUP_WINDOW="1h")
    fresh = bench.Service("split-fresh", fresh_env, AKTI_DEDUP_WINDOW="1ms")
    repeat_codes, _ = repeat.bulk(bench.LINKS, "repeat", "1")
    fresh_codes, _ = fresh.bulk(bench.LINKS, "fresh", "2")
    repeat_file = bench.write_codes(repeat_codes, "split-repeat")
    fresh_file = bench.write_codes(fresh_codes, "split-fresh")
    # Opens every lead's window for S2; caches S3's links.
    bench.wrk(repeat.public, repeat_file, bench.HUMAN, seconds=20)
    bench.wrk(fresh.public, fresh_file, bench.BOT, seconds=SECONDS)
    targets = {
        "bare axum": (f"http://127.0.0.1:{port}", baseline_codes, bench.HUMAN, baseline, None),
        "S1 bots": (repeat.public, repeat_file, bench.BOT, repeat.proc, repeat_store[0]),
        "S2 repeats in window": (repeat.public, repeat_file, bench.HUMAN, repeat.proc, repeat_store[0]),
        "S3 new window + event": (fresh.public, fresh_file, bench.HUMAN, fresh.proc, fresh_store[0]),
    }
    rows = {name: [] for name in targets}
    for r in range(ROUNDS):
        for name, (url, codes, agent, server, redis) in targets.items():
            procs = [server] + ([redis] if redis else [])
            with bench.Frozen(*procs):
                before = [cpu_seconds(p.pid) for p in procs]
                load = bench.wrk(url, codes, agent, seconds=SECONDS)
                after = [cpu_seconds(p.pid) for p in procs]
            requests = load.rps * SECONDS
            micros = [(b - a) / requests * 1e6 for a, b in zip(before, after)] + [0.0]
            rows[name].append((load.rps, micros[0], micros[1]))
            bench.log(f"round {r + 1}, {name}: {load.rps:,.0f} req/s, service {micros[0]:.2f} µs, "
                      f"Redis {micros[1]:.2f} µs per request")
    print(f"\nCPU per request, {bench.LINKS:,} links, medians of {ROUNDS} rounds of {SECONDS} s")
    print("\n| scenario | req/s | service µs | Redis µs |\n| --- | ---: | ---: | ---: |")
    for name, runs in rows.items():
        rps, service, redis = (statistics.median(column) for column in zip(*runs))
        print(f"| {name} | {rps:,.0f} | {service:.2f} | {redis:.2f} |")


if __name__ == "__main__":
    bench.run_then_stop(main)
