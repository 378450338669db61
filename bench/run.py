#!/usr/bin/env python3
"""akti-link benchmark: every figure beside nginx and a bare axum handler, in one run.

Servers (nginx, the axum baseline, akti-link, redis-server) run pinned to one core, wrk
to the other. Redirect scenarios run in interleaved rounds; the table reports medians and
ratios to both baselines measured in the same rounds. See the README's Benchmark section.
"""

import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/akti-link")
BASELINE = os.path.join(ROOT, "target/release/examples/baseline")
LATENCY = os.path.join(ROOT, "target/release/examples/click_latency")
LUA = os.path.join(ROOT, "bench/clicks.lua")
QUICK = "--quick" in sys.argv
# Phases to run (comma-separated): redirects, dispatcher, latency, memory. Default: all.
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "redirects,dispatcher,latency,memory").split(",")))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5" if QUICK else "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1" if QUICK else "3"))
LINKS = int(os.environ.get("BENCH_LINKS", "20000" if QUICK else "100000"))
MEMORY_RUNS = int(os.environ.get("BENCH_MEMORY_RUNS", "1" if QUICK else "5"))
MEMORY_LINKS = int(os.environ.get("BENCH_MEMORY_LINKS", "200000" if QUICK else "1000000"))
CPUS = os.cpu_count() or 1
SERVER_CPU = "1" if CPUS > 1 else "0"
LOAD_CPU = "0"
TOKEN = "bench-token"
HUMAN = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
BOT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"

WORK = tempfile.mkdtemp(prefix="akti-bench-")
PROCS = []


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def run_then_stop(main):
    """Runs main, then stops every process it spawned, whatever happened."""
    try:
        main()
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.terminate()
        for p in PROCS:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def pinned(cmd, cpu=SERVER_CPU):
    return ["taskset", "-c", cpu] + cmd


def spawn(cmd, env=None, name="proc"):
    out = open(os.path.join(WORK, f"{name}.log"), "w")
    proc = subprocess.Popen(pinned(cmd), env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    PROCS.append(proc)
    return proc


def wait_for(url, timeout=30):
    """Waits until `url` answers anything (redirects are not followed)."""
    parsed = urllib.parse.urlsplit(url)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=1)
            conn.request("GET", parsed.path or "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def request(method, url, body=None, token=TOKEN):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=120) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Redis:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(dir=WORK)
        self.proc = spawn(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", self.dir], name=f"redis-{self.port}")
        for _ in range(200):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}"

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True).stdout.strip()


class Service:
    def __init__(self, name, store_env, **env):
        self.name = name
        self.public_port, self.admin_port = free_port(), free_port()
        self.env = {
            "AKTI_PUBLIC_ADDR": f"127.0.0.1:{self.public_port}",
            "AKTI_ADMIN_ADDR": f"127.0.0.1:{self.admin_port}",
            "AKTI_ADMIN_TOKEN": TOKEN,
            "AKTI_BASE_URL": "https://l.bench",
            "AKTI_LOG": os.environ.get("AKTI_LOG", "warn"),
            "AKTI_WEBHOOK_ALLOW_PRIVATE": "true",
            **store_env,
            **env,
        }
        self.start()

    def start(self):
        self.proc = spawn([BIN], env=self.env, name=f"akti-{self.name}-{self.public_port}")
        wait_for(f"{self.admin}/healthz")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    @property
    def public(self):
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def admin(self):
        return f"http://127.0.0.1:{self.admin_port}"

    def api(self, method, path, body=None):
        return request(method, self.admin + path, body)

    def bulk(self, n, campaign, prefix, **fields):
        """Creates n lead links, 10,000 per call, with the extra `fields` (e.g. iosUrl);
        returns (codes, links per second). Bodies are encoded before and answers decoded
        after the clock, which times the service."""
        bodies = []
        for offset in range(0, n, 10_000):
            leads = [{"phone": f"+1{prefix}{i:08d}"} for i in range(offset, min(n, offset + 10_000))]
            body = {"campaignId": campaign, "url": "https://example.com/landing", "leads": leads, **fields}
            bodies.append(json.dumps(body).encode())
        answers, start = [], time.time()
        for body in bodies:
            req = urllib.request.Request(self.admin + "/v1/links/bulk", data=body, method="POST")
            req.add_header("content-type", "application/json")
            req.add_header("authorization", f"Bearer {TOKEN}")
            with urllib.request.urlopen(req, timeout=120) as resp:
                answers.append(resp.read())
        rate = n / (time.time() - start)
        codes = [l["code"] for a in answers for l in json.loads(a)["links"]]
        return codes, rate


def write_codes(codes, name):
    path = os.path.join(WORK, f"{name}.txt")
    with open(path, "w") as f:
        f.write("\n".join(codes) + "\n")
    return path


class Load:
    """One wrk run: requests per second, answers that were not redirects, and how busy
    each core was meanwhile (0..1). A server core below SATURATED means the server was
    not the limit (the load generator was, or latency); a load core at or above it means
    wrk itself was saturated, and a ratio then measures wrk."""

    SATURATED = 0.95

    def __init__(self, rps, non_redirects, server_busy, load_busy):
        self.rps, self.non_redirects = rps, non_redirects
        self.server_busy, self.load_busy = server_busy, load_busy

    @property
    def flags(self):
        flags = []
        if self.load_busy >= self.SATURATED:
            flags.append(f"wrk saturated ({self.load_busy:.0%} of its core)")
        if self.server_busy < self.SATURATED:
            flags.append(f"server core only {self.server_busy:.0%} busy")
        return flags


def core_times():
    """(busy, total) jiffies per core, from /proc/stat."""
    times = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                values = [int(v) for v in fields]
                idle = values[3] + values[4]
                times[name[3:]] = (sum(values) - idle, sum(values))
    return times


def busy_between(before, after, cpu):
    (busy0, total0), (busy1, total1) = before[cpu], after[cpu]
    return (busy1 - busy0) / max(1, total1 - total0)


def wrk(base, codes_file, agent, seconds=SECONDS):
    before = core_times()
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c64", f"-d{seconds}s", "-s", LUA, base],
        env={**os.environ, "CODES": codes_file, "UA": agent}, capture_output=True, text=True,
    ).stdout
    after = core_times()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        log(f"  wrk socket errors: {errors.group(1)}")
    return Load(rps, int(non2xx.group(1)) if non2xx else 0,
                busy_between(before, after, SERVER_CPU), busy_between(before, after, LOAD_CPU))


class Frozen:
    """Stops (SIGSTOP) every process of ours but `keep` for the duration of a measurement,
    so that idle instances' timers (counts flushes, feed markers, dispatcher polls) do not
    run on the measured server's core."""

    def __init__(self, *keep):
        self.keep = {p.pid for p in keep}

    def __enter__(self):
        self.stopped = [p for p in PROCS if p.poll() is None and p.pid not in self.keep]
        for p in self.stopped:
            os.kill(p.pid, signal.SIGSTOP)
        time.sleep(0.3)

    def __exit__(self, *exc):
        for p in self.stopped:
            os.kill(p.pid, signal.SIGCONT)


def nginx(port):
    conf = os.path.join(WORK, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
pid {WORK}/nginx.pid;
error_log {WORK}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {WORK}/nginx-body;
  proxy_temp_path {WORK}/nginx-proxy;
  fastcgi_temp_path {WORK}/nginx-fastcgi;
  uwsgi_temp_path {WORK}/nginx-uwsgi;
  scgi_temp_path {WORK}/nginx-scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location = /hook {{ return 204; }}
    location = /nginx_status {{ stub_status; }}
    location / {{ add_header Cache-Control "private, no-store"; return 302 https://example.com/landing; }}
  }}
}}
""")
    proc = spawn(["nginx", "-c", conf, "-p", WORK], name="nginx")
    wait_for(f"http://127.0.0.1:{port}/x")
    return proc


def own_redis():
    """A store of its own for one instance, and the processes that serve it. Instances that
    shared one Redis would take over each other's work whenever `Frozen` stops one for longer
    than a heartbeat's expiry: a round's figure would then include its neighbour's work."""
    redis = Redis()
    return {"AKTI_REDIS_URL": redis.url}, [redis.proc]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "quick": QUICK,
               "seconds": SECONDS, "rounds": ROUNDS, "links": LINKS}
    nginx_port, base_port = free_port(), free_port()
    nginx_proc = nginx(nginx_port)
    redis = Redis()
    stores = {"redis": own_redis, "embedded": lambda: ({"AKTI_DATA_DIR": tempfile.mkdtemp(dir=WORK)}, [])}
    if "redirects" in ONLY:
        redirects(results, stores, nginx_proc, nginx_port, base_port)
    # Each later phase starts the processes it measures; the earlier ones are stopped.
    if "dispatcher" in ONLY:
        with Frozen(nginx_proc):
            results["dispatcher"] = {store: dispatcher(store, nginx_port) for store in stores}
    if "latency" in ONLY:
        with Frozen(redis.proc):
            results["latency"] = latency(redis)
    if "memory" in ONLY:
        with Frozen():
            results["memory"] = memory()
    report(results)
    os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
    name = time.strftime("%Y-%m-%dT%H%M", time.gmtime()) + ("-quick" if QUICK else "") + ".json"
    with open(os.path.join(ROOT, "bench/results", name), "w") as f:
        json.dump(results, f, indent=2)


def redirects(results, stores, nginx_proc, nginx_port, base_port):
    """S1 to S3 beside nginx and the axum baseline, and S6 (bulk creation). Each
    measurement runs with every other process of ours stopped (`Frozen`)."""
    targets, bulk = {}, {}
    for store, store_of in stores.items():
        # S1 and S2 share an instance whose windows outlast the run; S3's window is 1 ms,
        # so that every click opens one and emits an event.
        (repeat_env, repeat_store), (fresh_env, fresh_store) = store_of(), store_of()
        repeat = Service(f"{store}-repeat", repeat_env, AKTI_DEDUP_WINDOW="1h")
        fresh = Service(f"{store}-fresh", fresh_env, AKTI_DEDUP_WINDOW="1ms")
        codes, rate = repeat.bulk(LINKS, "repeat", "1")
        bulk[store] = rate
        fresh_codes, _ = fresh.bulk(LINKS, "fresh", "2")
        repeat_file, fresh_file = write_codes(codes, f"{store}-repeat"), write_codes(fresh_codes, f"{store}-fresh")
        log(f"{store}: {LINKS} links, bulk {rate:,.0f} links/s; warming caches and windows")
        wrk(repeat.public, repeat_file, HUMAN, seconds=max(SECONDS, 20))
        wrk(fresh.public, fresh_file, BOT, seconds=SECONDS)
        targets[f"{store} S1 no tracking (bot)"] = (repeat.public, repeat_file, BOT, [repeat.proc, *repeat_store])
        targets[f"{store} S2 repeat in window"] = (repeat.public, repeat_file, HUMAN, [repeat.proc, *repeat_store])
        targets[f"{store} S3 new window + event"] = (fresh.public, fresh_file, HUMAN, [fresh.proc, *fresh_store])
    baseline_codes = write_codes([f"c{i}" for i in range(LINKS)], "baseline")
    baseline = spawn([BASELINE, f"127.0.0.1:{base_port}", baseline_codes], name="baseline")
    wait_for(f"http://127.0.0.1:{base_port}/c1")
    targets = {
        "nginx": (f"http://127.0.0.1:{nginx_port}", baseline_codes, HUMAN, [nginx_proc]),
        "axum baseline": (f"http://127.0.0.1:{base_port}", baseline_codes, HUMAN, [baseline]),
        **targets,
    }

    rounds = {name: [] for name in targets}
    warnings = []
    for r in range(ROUNDS):
        log(f"round {r + 1}/{ROUNDS}")
        for name, (url, codes_file, agent, keep) in targets.items():
            with Frozen(*keep):
                load = wrk(url, codes_file, agent)
            if load.non_redirects:
                log(f"  {name}: {load.non_redirects} non-redirect answers")
            rounds[name].append(load)
            for flag in load.flags:
                warnings.append(f"round {r + 1}, {name}: {flag}")
            log(f"  {name}: {load.rps:,.0f} req/s (server core {load.server_busy:.0%}, wrk core {load.load_busy:.0%})")
        if rounds["nginx"][-1].rps < rounds["axum baseline"][-1].rps:
            warnings.append(f"round {r + 1}: nginx slower than bare axum: not the limit, ratios to it overstate")
    for warning in warnings:
        log(f"WARNING {warning}")
    nginx_rps = median([load.rps for load in rounds["nginx"]])
    axum_rps = median([load.rps for load in rounds["axum baseline"]])
    results["redirects"] = {
        name: {"rps": median([x.rps for x in loads]), "runs": [x.rps for x in loads],
               "server_busy": [x.server_busy for x in loads], "load_busy": [x.load_busy for x in loads],
               "vs_nginx": median([x.rps for x in loads]) / nginx_rps, "vs_axum": median([x.rps for x in loads]) / axum_rps}
        for name, loads in rounds.items()
    }
    results["warnings"] = warnings
    results["bulk_links_per_s"] = bulk


def dispatcher(store, nginx_port):
    """S4: deliveries per second draining a backlog to nginx answering 204."""
    n = LINKS
    if store == "redis":
        redis = Redis()
        store_env = {"AKTI_REDIS_URL": redis.url}
    else:
        store_env = {"AKTI_DATA_DIR": tempfile.mkdtemp(dir=WORK)}
    producer = Service(f"{store}-producer", store_env, AKTI_DISPATCH="false", AKTI_DEDUP_WINDOW="1h")
    producer.api("POST", "/v1/webhooks", {"url": f"http://127.0.0.1:{nginx_port}/hook"})
    codes, _ = producer.bulk(n, "backlog", "3")
    codes_file = write_codes(codes, f"{store}-backlog")
    log(f"{store}: building a backlog of {n} events")
    # One human click per link emits one event each (a 1 h window).
    while True:
        wrk(producer.public, codes_file, HUMAN, seconds=5)
        stats = producer.api("GET", "/v1/campaigns/backlog/stats")
        if stats["clickEvents"] >= n:
            break
    producer.stop()
    # Deliveries are counted where they arrive: nginx's request counter (each poll adds one).
    before, polls = nginx_requests(nginx_port), 0
    consumer = Service(f"{store}-dispatcher", store_env)
    start = time.time()
    while nginx_requests(nginx_port) - before - polls < n:
        polls += 1
        time.sleep(0.05)
        if time.time() - start > 600:
            raise RuntimeError("the backlog did not drain in 10 minutes")
    elapsed = time.time() - start
    consumer.stop()
    rate = n / elapsed
    log(f"{store}: dispatcher {rate:,.0f} deliveries/s")
    return {"events": n, "seconds": elapsed, "deliveries_per_s": rate}


def nginx_requests(port):
    """Requests nginx has answered so far (stub_status), counting this one."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx_status").read().decode()
    return int(text.splitlines()[2].split()[2])


def latency(redis):
    """S5: click-to-webhook latency at a steady 1,000 clicks/s (Redis)."""
    service = Service("latency", {"AKTI_REDIS_URL": redis.url})
    receiver = f"127.0.0.1:{free_port()}"
    service.api("POST", "/v1/webhooks", {"url": f"http://{receiver}/hook"})
    seconds = 5 if QUICK else 10
    codes, _ = service.bulk(1000 * seconds, "latency", "4")
    codes_file = write_codes(codes, "latency")
    out = subprocess.run(["taskset", "-c", LOAD_CPU, LATENCY, service.public, codes_file, receiver, "1000", str(seconds)],
                         capture_output=True, text=True).stdout
    service.stop()
    result = json.loads(out.strip().splitlines()[-1])
    log(f"latency: {result}")
    return result


def memory():
    """S7: resident size per cached link, with MEMORY_LINKS stored and 100,000 cached.

    The base is the same service serving the same kind of traffic (bot clicks, spread over
    enough codes that the per-interval click counters are as large as in the measurement)
    with 10,000 links cached; the figure is the growth from there to 100,000 cached, per
    link added. RSS is read once the traffic has stopped and the periodic work (counter
    flushes, metric upkeep) has run, as the median of several reads. The allocator keeps
    freed memory for a while, so one process's figure moves by tens of bytes per link;
    the median of MEMORY_RUNS fresh processes is reported."""
    redis = Redis()
    creator = Service("memory", {"AKTI_REDIS_URL": redis.url})
    codes, _ = creator.bulk(MEMORY_LINKS, "memory", "5")
    creator.stop()
    few = write_codes(codes[100_000:110_000], "memory-base")
    many = write_codes(codes[:100_000], "memory")

    def settled_rss(service):
        samples = []
        for _ in range(5):
            time.sleep(1.5)
            samples.append(rss_bytes(service.proc.pid))
        return statistics.median(samples)

    def cache_entries(service):
        metrics = urllib.request.urlopen(service.admin + "/metrics").read().decode()
        return float(re.search(r"^akti_link_cache_entries (\S+)", metrics, re.M).group(1))

    runs = []
    for run in range(MEMORY_RUNS):
        service = Service(f"memory{run}", {"AKTI_REDIS_URL": redis.url})
        for _ in range(2):
            wrk(service.public, few, BOT, seconds=5)
        base, base_entries = settled_rss(service), cache_entries(service)
        while True:
            wrk(service.public, many, BOT, seconds=5)
            entries = cache_entries(service)
            if entries >= 99_000:
                break
        # One more pass, so that the measured traffic is all hits, like the base's.
        wrk(service.public, many, BOT, seconds=5)
        after, entries = settled_rss(service), cache_entries(service)
        service.stop()
        per_link = (after - base) / (entries - base_entries)
        log(f"memory run {run}: {base / 2**20:.1f} MiB with {base_entries:.0f} cached, "
            f"{after / 2**20:.1f} MiB with {entries:.0f}: {per_link:.0f} B per cached link")
        runs.append({"base_rss": base, "base_cached": base_entries, "rss": after, "cached": entries,
                     "bytes_per_cached_link": per_link})
    median = statistics.median(r["bytes_per_cached_link"] for r in runs)
    return {"stored_links": MEMORY_LINKS, "runs": runs, "bytes_per_cached_link": median}


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{CPUS} cores, {model}"


def report(r):
    print(f"\nakti-link benchmark, {r['date']}, {r['machine']}; {r['rounds']} rounds of {r['seconds']} s, medians")
    if "redirects" in r:
        print("\n| scenario | req/s | vs nginx | vs axum |\n| --- | ---: | ---: | ---: |")
        for name, v in r["redirects"].items():
            print(f"| {name} | {v['rps']:,.0f} | {v['vs_nginx']:.2f} | {v['vs_axum']:.2f} |")
        print()
        for warning in r.get("warnings", []):
            print(f"- WARNING {warning}")
        for store, rate in r["bulk_links_per_s"].items():
            print(f"- S6 bulk creation ({store}): {rate:,.0f} links/s")
    for store, d in r.get("dispatcher", {}).items():
        print(f"- S4 dispatcher ({store}): {d['deliveries_per_s']:,.0f} deliveries/s ({d['events']} events in {d['seconds']:.1f} s)")
    if "latency" in r:
        lat = r["latency"]
        print(f"- S5 click-to-webhook at 1,000/s (redis): p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms ({lat['received']}/{lat['sent']} received)")
    if "memory" in r:
        m = r["memory"]
        each = ", ".join(f"{r['bytes_per_cached_link']:.0f}" for r in m["runs"])
        print(f"- S7 memory: {m['bytes_per_cached_link']:.0f} B resident per cached link, median of {len(m['runs'])} processes ({each}); "
              f"10,000 to 100,000 cached, {m['stored_links']:,} stored")


if __name__ == "__main__":
    run_then_stop(main)
