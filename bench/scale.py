"""The catalogue at scale: listings while the org edits jobs, this code beside a baseline.

One run per catalogue size (``--sizes``): one private Redis and one sandbox org seeded with N
demo jobs (its own process, REST and the Pub/Sub API), shared by the two codes measured in
turn, each with its own `ats-gateway events` subscriber (the change path) and gunicorn
(``--workers`` processes x 4 threads):

* **baseline**: the code of ``--baseline-ref`` (default d842b96, main before issue [18]), run
  from a `git worktree` of it (``--baseline-dir``) with this checkout's virtualenv;
* **this**: the checkout this script is in.

Per code: `wrk` (``--connections``, ``--seconds`` per measurement) on `/healthz`, the listing
(`GET /v1/jobs?limit=20`) and a `q` search (`GET /v1/jobs?q=engineer`), quiet and then under
each edit rate of ``--rates`` (title edits made through the sandbox's REST API as its admin,
at a steady rate, for ``--edit-seconds`` in all); change -> visible is timed for every edit
from the org's answer until `GET /v1/jobs/{id}` shows it (one poller, 100 ms rounds);
RSS of each gunicorn worker process when quiet and after the edits; the Indeed feed's and the
sitemap's first (building) request. Appended to bench/RESULTS.md.

The machine this runs on may be shared: compare the two codes' *ratios* measured in the same
run, not absolute figures across runs.

    python bench/scale.py [--sizes 10000,50000] [--rates 1] [--seconds 10] [--edit-seconds 60]
                          [--no-baseline] [--no-write]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from freshness import Probe, state
from harness import (
    HOST,
    ROOT,
    Stack,
    _children,
    append_results,
    machine_line,
    percentile,
    rss_mb,
    wait_for,
)

from ats_gateway.embedded import ManagedProcess, free_port
from ats_gateway.embedded.stack import child_env, gunicorn_argv

FEED_KEY = "bench-feed-key"
#: settings this change added: a baseline's Settings would not know them
RELOAD_LINE = "jobs catalogue loaded whole"
NEW_SETTINGS = ("ATS_GATEWAY_JOBS_COMPACT_EVERY", "ATS_GATEWAY_FEEDS_REBUILD_SECONDS")


# --------------------------------------------------------------------------- measuring


def wrk(url: str, key: str | None, seconds: float, connections: int) -> tuple[float, float]:
    """(requests/s, p99 ms) of `wrk` on ``url``; non-2xx answers are counted as failures."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    if key:
        argv += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60)
    text = out.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if bad:
        print(f"  ! {bad.group(1)} non-2xx answers on {url}", flush=True)
    return rate, float(p99.group(1)) * scale


class Editor:
    """Title edits in the org at ``rate`` per second; one poller times each until the gateway
    shows it (``GET /v1/jobs/{id}``, every pending edit once per 100 ms round), so the
    measuring load stays one request at a time however far behind the gateway falls."""

    def __init__(self, probe: Probe, jobs: list[str], rate: float) -> None:
        self.probe = probe
        self.jobs = jobs
        self.rate = rate
        self.latencies: list[float] = []
        self.missed = 0
        self._pending: dict[str, tuple[str, float]] = {}  # job -> (title, committed at)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._edit, daemon=True),
            threading.Thread(target=self._poll, daemon=True),
        ]

    def _edit(self) -> None:
        n = 0
        start = time.monotonic()
        while not self._stop.is_set():
            title = f"edit{uuid.uuid4().hex[:10]}"
            job = self.jobs[n % len(self.jobs)]
            try:
                self.probe.admin.update("bpats__Job__c", job, {"bpats__Job_Title__c": title})
            except Exception as exc:  # the org refused: report, keep the rate
                print(f"  ! edit failed: {type(exc).__name__}", flush=True)
            else:
                with self._lock:
                    if job in self._pending:
                        self.missed += 1  # edited again before the first edit showed
                    self._pending[job] = (title, time.monotonic())
            n += 1
            self._stop.wait(max(0.0, start + n / self.rate - time.monotonic()))

    def _poll(self) -> None:
        http = requests.Session()
        http.headers.update(self.probe.http.headers)
        base = self.probe.stack.gateway_url
        while not (self._stop.is_set() and not self._pending):
            with self._lock:
                pending = list(self._pending.items())
            for job, (title, committed) in pending:
                try:
                    response = http.get(f"{base}/v1/jobs/{job}", timeout=30)
                    shown = response.ok and response.json()["data"]["title"] == title
                except requests.RequestException:
                    shown = False
                with self._lock:
                    if self._pending.get(job, (None,))[0] != title:
                        continue
                    if shown:
                        self.latencies.append(time.monotonic() - committed)
                        del self._pending[job]
                    elif time.monotonic() - committed > 60:
                        self.missed += 1
                        del self._pending[job]
            time.sleep(0.1)

    def __enter__(self) -> Editor:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)


@dataclass
class Figures:
    code: str
    public: int = 0
    healthz: float = 0.0
    quiet: tuple[float, float] = (0.0, 0.0)
    quiet_q: tuple[float, float] = (0.0, 0.0)
    rss_quiet: list[float] = field(default_factory=list)
    feed_s: float = 0.0
    feed_mb: float = 0.0
    sitemap_s: float = 0.0
    edits: dict[float, dict] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    reloads: int | None = None  # whole-catalogue loads in gunicorn after the first


def worker_rss(master: int) -> list[float]:
    return [round(rss_mb(pid, tree=False)) for pid in sorted(_children(master))]


def timed_get(url: str) -> tuple[float, int]:
    started = time.monotonic()
    response = requests.get(url, timeout=600)
    response.raise_for_status()
    return time.monotonic() - started, len(response.content)


# --------------------------------------------------------------------------- one code


class RssSampler:
    """The gunicorn workers' summed RSS every ``every`` seconds while the edits run: growth
    that a before/after pair hides (a plateau, a steady climb, a step at compaction)."""

    def __init__(self, master: int, every: float) -> None:
        self.master, self.every = master, every
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - started, sum(worker_rss(self.master))))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def measure(
    stack: Stack,
    code: str,
    root: Path,
    args,
    key: str,
    jobs: list[str],
    extra_env: dict[str, str] | None = None,
) -> Figures:
    figures = Figures(code, env=dict(extra_env or {}))
    for pattern in ("ats-gateway:jobs:*", "ats-gateway:events:*", "ats-gateway:feeds:*"):
        for name in stack.redis.scan_iter(match=pattern):
            stack.redis.delete(name)
    env = child_env(stack.settings)
    env["PYTHONPATH"] = str(root)
    if root != ROOT:
        for name in NEW_SETTINGS:
            env.pop(name, None)
    events = ManagedProcess(
        "events",
        [sys.executable, "-m", "ats_gateway.cli", "events"],
        env=env,
        cwd=root,
        log_path=stack.log_dir / f"events-{code}.log",
    ).start()
    port = free_port()
    url = f"http://{HOST}:{port}"
    gateway = ManagedProcess(
        "gateway",
        gunicorn_argv(HOST, port, workers=args.workers, threads=args.threads),
        # INFO: the code logs each whole-catalogue load after a process's first (counted).
        env={**env, "ATS_GATEWAY_LOG_LEVEL": "INFO", **figures.env},
        cwd=root,
        ready=lambda: requests.get(url + "/healthz", timeout=1).ok,
        log_path=stack.log_dir / f"gateway-{code}.log",
    )
    try:
        wait_for(lambda: state(stack.redis).get("mode") == "stream", 600, "the event stream")
        gateway.start(timeout=120)
        stack.gateway_url = url
        probe = Probe(stack, key, jobs)
        listing = f"{url}/v1/jobs?limit=20"
        search = f"{url}/v1/jobs?q=engineer&limit=20"
        for _ in range(4 * args.workers):  # every worker loads the catalogue
            response = requests.get(listing, headers=probe.http.headers, timeout=600)
            figures.public = response.json()["meta"]["total"]
        figures.healthz = wrk(url + "/healthz", None, args.seconds, args.connections)[0]
        figures.quiet = wrk(listing, key, args.seconds, args.connections)
        figures.quiet_q = wrk(search, key, args.seconds, args.connections)
        figures.feed_s, size = timed_get(f"{url}/feeds/indeed.xml?token={FEED_KEY}")
        figures.feed_mb = size / 1e6
        figures.sitemap_s = timed_get(f"{url}/jobs/sitemap.xml")[0]
        # After the feeds (a built feed stays in the process that served it): quiet RSS.
        figures.rss_quiet = worker_rss(gateway.process.pid)
        print(f"  {code}: quiet {figures}", flush=True)
        for rate in args.rates:
            started = time.monotonic()
            sampler = RssSampler(gateway.process.pid, args.rss_every)
            with sampler, Editor(probe, jobs, rate) as editor:
                time.sleep(3)
                # The same server's /healthz under the edits: how much of a drop is the
                # machine's (the org, the subscriber and the poller share its CPUs).
                health_under = wrk(url + "/healthz", None, args.seconds, args.connections)[0]
                under = wrk(listing, key, args.seconds, args.connections)
                under_q = wrk(search, key, args.seconds, args.connections)
                time.sleep(max(0.0, started + args.edit_seconds - time.monotonic()))
                rss_after = worker_rss(gateway.process.pid)
            figures.edits[rate] = {
                "healthz": health_under,
                "listing": under,
                "q": under_q,
                "rss_after": rss_after,
                "rss_series": sampler.samples,
                "latencies": editor.latencies,
                "missed": editor.missed,
                "seconds": time.monotonic() - started,
            }
            print(f"  {code} @ {rate}/s: {figures.edits[rate] | {'latencies': '...'}}")
    finally:
        gateway.stop()
        events.stop()
    service = root / "ats_gateway" / "services" / "jobs" / "service.py"
    if RELOAD_LINE in service.read_text():  # a code that logs them
        logged = (stack.log_dir / f"gateway-{code}.log").read_text(errors="replace")
        figures.reloads = logged.count(RELOAD_LINE)
    return figures


def ensure_baseline(ref: str, where: Path) -> Path:
    if not (where / "ats_gateway").is_dir():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(where), ref], cwd=ROOT, check=True
        )
    return where


# --------------------------------------------------------------------------- report


def series(samples: list[tuple[float, float]], points: int = 7) -> str:
    """About ``points`` samples, evenly spread, as "t s: MB" (the first and the last kept)."""
    if not samples:
        return "-"
    step = max(1, (len(samples) - 1) // (points - 1))
    picked = samples[::step]
    if picked[-1] is not samples[-1]:
        picked.append(samples[-1])
    return ", ".join(f"{t:.0f}: {mb:,.0f}" for t, mb in picked)


def rows(size: int, results: list[Figures], rates: list[float]) -> list[str]:
    out = []
    for f in results:
        rq, pq = f.quiet
        sq, spq = f.quiet_q
        for rate in rates:
            e = f.edits[rate]
            (ru, pu), (su, spu) = e["listing"], e["q"]
            lat = e["latencies"]
            out.append(
                f"| {size:,} ({f.public:,}) | {f.code} | {rate:g} | "
                f"{f.healthz:,.0f} -> {e.get('healthz', 0):,.0f} | "
                f"{rq:,.0f} ({rq / max(f.healthz, 1):.2f}x) | {pq:.0f} | "
                f"{ru:,.0f} ({ru / max(rq, 1):.2f}x) | {pu:.0f} ({pu / max(pq, 0.1):.1f}x) | "
                f"{sq:,.0f} / {spq:.0f} | {su:,.0f} / {spu:.0f} | "
                f"{percentile(lat, 50):.2f} / {percentile(lat, 95):.2f} "
                f"({len(lat)}, {e['missed']} missed) | "
                f"{'+'.join(map(str, map(round, f.rss_quiet)))} -> "
                f"{'+'.join(map(str, map(round, e['rss_after'])))} "
                f"({sum(e['rss_after']) / max(sum(f.rss_quiet), 1):.2f}x, "
                f"{e['seconds']:.0f} s) | "
                f"{f.feed_s:.1f} ({f.feed_mb:.0f} MB) / {f.sitemap_s:.1f} | "
                f"{series(e.get('rss_series', []))} | "
                f"{'-' if f.reloads is None else f.reloads} |"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--rates", default="1", help="edits per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="per wrk measurement")
    parser.add_argument("--edit-seconds", type=float, default=60.0, help="edits per rate")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument(
        "--rss-every", type=float, default=5.0, help="seconds between RSS samples under edits"
    )
    parser.add_argument(
        "--this-env",
        action="append",
        default=[],
        metavar="NAME=VALUE[,NAME=VALUE]",
        help="also run this code with these variables in gunicorn's environment (repeatable: "
        "one more code per use, e.g. MALLOC_ARENA_MAX=2)",
    )
    parser.add_argument("--baseline-ref", default="d842b96")
    parser.add_argument("--baseline-dir", default="/tmp/ats-gateway-baseline-d842b96")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    # Rate 0 is the quiet measurement every code gets anyway.
    args.rates = [float(r) for r in args.rates.split(",") if r and float(r) > 0]
    codes: list[tuple[str, Path, dict[str, str]]] = [("this", ROOT, {})]
    for spec in args.this_env:
        env = dict(pair.split("=", 1) for pair in spec.split(",") if pair)
        codes.append((f"this, {spec}", ROOT, env))
    if not args.no_baseline:
        base = ensure_baseline(args.baseline_ref, Path(args.baseline_dir))
        codes.insert(0, (f"baseline {args.baseline_ref}", base, {}))
    table = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"== {size:,} jobs", flush=True)
        stack = Stack(jobs=size, jobs_staleness_seconds=3600, feed_key_indeed=FEED_KEY)
        try:
            port = int(stack.sandbox_url.rsplit(":", 1)[1])
            stack.settings = stack.settings.replace(
                pubsub_endpoint=f"{HOST}:{port + 1}", pubsub_tls=False
            )
            key = stack.api_key(["jobs:read"])
            jobs = stack.open_jobs()
            results = [
                measure(stack, code, root, args, key, jobs, env) for code, root, env in codes
            ]
        finally:
            stack.close()
        table += rows(size, results, args.rates)
        print("\n".join(table[-len(results) * len(args.rates) :]), flush=True)
    append_results(
        f"\n## scale.py: {machine_line()}\n\n"
        f"gunicorn {args.workers} x {args.threads} threads, `ats-gateway events` keeping the "
        f"catalogue current; wrk {args.connections} connections, {args.seconds:.0f} s per "
        f"figure; title edits through the sandbox's REST API for {args.edit_seconds:.0f} s "
        "per rate. "
        "req/s and p99 (ms) of `GET /v1/jobs?limit=20`, of `q=engineer` (req/s / p99); "
        "change -> visible (s, p50 / p95, edits timed); RSS (MB) per gunicorn worker, quiet -> "
        "after the edits; first Indeed feed / sitemap request (s, builds it); the workers' "
        f"summed RSS sampled every {args.rss_every:g} s under the edits (s: MB); whole-catalogue "
        "loads in gunicorn after each worker's first (`-`: the code does not log them). "
        "**The machine is "
        "shared with other jobs: compare the ratios within a row and between the two codes of "
        "one size, not absolute figures.**\n\n"
        "| jobs (public) | code | edits/s | /healthz req/s quiet -> under edits "
        "| listing quiet req/s (x healthz) "
        "| p99 quiet | listing under edits (x quiet) | p99 under edits (x quiet) | q quiet "
        "| q under edits | change->visible p50 / p95 | RSS per worker | feed / sitemap s "
        "| RSS over the edits | whole reloads |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(table) + "\n",
        not args.no_write,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
