#!/usr/bin/env python3
"""Same-session A/B of two akti-link binaries on the redirect path (S1, S2, S3; Redis).

    bench/ab.py OLD_BINARY NEW_BINARY          # e.g. a release build of another commit

Each binary gets its own Redis and 100,000 links on each of two instances; then nginx,
S1 (bot clicks), S2 (human clicks in open windows) and S3 (human clicks that each open a
window and queue an event: a 1 ms window) are measured in interleaved rounds (the order
of the two binaries alternates; every other process of ours is stopped meanwhile), and medians are printed as req/s and as ratios to nginx
from the same rounds. Uses bench/run.py's helpers, so bench/run.sh must have run once (nginx, wrk).
BENCH_AB_ROUNDS (default 3) and BENCH_AB_SECONDS (default 8) set the rounds.
Environment for one side only: BENCH_AB_ENV_OLD / BENCH_AB_ENV_NEW, e.g.
"MIMALLOC_PURGE_DELAY=0". Link fields for one side's links only: BENCH_AB_LINKS_OLD /
BENCH_AB_LINKS_NEW, JSON, e.g. '{"iosUrl": "https://apps.apple.com/app/id1"}' (the same
binary on both sides then measures what the fields cost).
"""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
binaries = {"old": sys.argv[1], "new": sys.argv[2]}
sys.argv = sys.argv[:1]
import run as bench  # noqa: E402  (reads sys.argv at import)

ROUNDS = int(os.environ.get("BENCH_AB_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_AB_SECONDS", "8"))


def main():
    nginx_port = bench.free_port()
    nginx_proc = bench.nginx(nginx_port)
    services = {}
    for side, binary in binaries.items():
        bench.BIN = binary
        # One Redis each (see `own_redis`).
        (repeat_env, repeat_store), (fresh_env, fresh_store) = bench.own_redis(), bench.own_redis()
        extra = os.environ.get(f"BENCH_AB_ENV_{side.upper()}", "")
        env = dict(pair.split("=", 1) for pair in extra.split())
        service = bench.Service(side, repeat_env, AKTI_DEDUP_WINDOW="1h", **env)
        fresh = bench.Service(f"{side}-fresh", fresh_env, AKTI_DEDUP_WINDOW="1ms", **env)
        fields = json.loads(os.environ.get(f"BENCH_AB_LINKS_{side.upper()}", "{}"))
        codes, rate = service.bulk(100_000, "repeat", "1", **fields)
        fresh_codes, _ = fresh.bulk(100_000, "fresh", "2", **fields)
        bench.log(f"{side}: {binary}, bulk {rate:,.0f} links/s")
        codes_file = bench.write_codes(codes, f"ab-{side}")
        fresh_file = bench.write_codes(fresh_codes, f"ab-{side}-fresh")
        # Opens every lead's window, so that S2's human clicks are repeats; caches S3's links.
        bench.wrk(service.public, codes_file, bench.HUMAN, seconds=20)
        bench.wrk(fresh.public, fresh_file, bench.BOT, seconds=SECONDS)
        services[side] = {"S1": (service, codes_file, repeat_store), "S2": (service, codes_file, repeat_store),
                          "S3": (fresh, fresh_file, fresh_store)}

    rates = {}
    for r in range(ROUNDS):
        nginx_url = f"http://127.0.0.1:{nginx_port}"
        with bench.Frozen(nginx_proc):
            rates.setdefault("nginx", []).append(bench.wrk(nginx_url, services["old"]["S1"][1], bench.HUMAN, SECONDS).rps)
        for scenario, agent in [("S1", bench.BOT), ("S2", bench.HUMAN), ("S3", bench.HUMAN)]:
            for side in ["old", "new"] if r % 2 == 0 else ["new", "old"]:
                service, codes_file, store = services[side][scenario]
                # Only the measured instance and its Redis run meanwhile.
                with bench.Frozen(service.proc, *store):
                    rates.setdefault(f"{side} {scenario}", []).append(
                        bench.wrk(service.public, codes_file, agent, SECONDS).rps)
        bench.log(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()))
    nginx = statistics.median(rates["nginx"])
    print("\n| | req/s | vs nginx |\n| --- | ---: | ---: |")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / nginx:.2f} |")


if __name__ == "__main__":
    bench.run_then_stop(main)
