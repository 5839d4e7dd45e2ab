"""The benchmark: Dockyard (embedded, and optionally scale-out on PostgreSQL + Azurite) against CNCF Distribution
on this machine, next to the machine's limits.

    .venv/bin/python -m bench            # or bench/run; 7-10 minutes on 2 cores
    .venv/bin/python -m bench --targets dockyard,distribution,dockyard-pg-azure   # + PostgreSQL/Azurite; ~18 minutes
    .venv/bin/python -m bench --quick    # small sizes, to check the harness (writes nothing unless --out)
    .venv/bin/python -m bench --only tags --profile   # a scenario again, Dockyard under py-spy

Servers run on 127.0.0.1 in a temporary directory that is removed at the end. Every loop
is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


from bench import client as c
from bench import fill, rawget, rawput, servers, wrk
from bench.results import MiB, Results, Target, fmt, machine_facts, median

BENCH_DIR = Path(__file__).resolve().parent
# Azurite's Copy Blob (how Dockyard commits an upload on Azure) fails for blobs above this: it reads the source into
# one Node.js string (max 0x1fffffe8 characters). Azure itself copies asynchronously and has no such limit.
AZURITE_COPY_LIMIT = 512 * MiB
SCENARIOS = ("limits", "rss", "blobs", "small", "rate", "tags", "catalog", "large")
# --targets: embedded Dockyard, Distribution, and Dockyard's scale-out configuration (PostgreSQL + Azure Blob on
# Azurite, which comes with a second node in blob_delivery: proxy for the pull scenarios)
TARGETS = ("dockyard", "distribution", "dockyard-pg-azure")
# the scale-out target roughly doubles the run (~18 min for all three on 2 cores, against ~7-10 for two): opt-in
DEFAULT_TARGETS = ("dockyard", "distribution")


@dataclass
class Sizes:
    big: int = 256 * MiB
    chunk: int = 8 * MiB
    huge: int = 1024 * MiB
    small_count: int = 500
    small_size: int = 4096
    rate_seconds: float = 5.0
    reps: int = 3
    tags: int = 5000
    tags_first: int = 1000
    repos: int = 2000
    repos_first: int = 1000
    large: int = 100_000
    http_fill_seconds: float = 20.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            big=16 * MiB, chunk=4 * MiB, huge=64 * MiB, small_count=50, rate_seconds=1.0, reps=1, tags=300,
            tags_first=100, repos=200, repos_first=100, large=3000, http_fill_seconds=2.0,
        )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Bench:
    def __init__(self, sizes: Sizes, results: Results, only: set[str], profile: bool, targets: tuple[str, ...] = DEFAULT_TARGETS) -> None:
        self.wanted_targets = targets
        self.proxy: c.Target | None = None  # the scale-out node with blob_delivery: proxy, pull scenarios only
        self.sizes = sizes
        self.results = results
        self.only = only
        self.profile = profile
        self.targets: list[c.Target] = []
        self.servers: dict[str, servers.Server] = {}
        self.repos: set[str] = set()  # every repository created (the same on both servers)
        self.app: dict = {}
        self.profiles: list[Path] = []
        # Whole listings and walks take milliseconds: at least 5 of each per server (as the client's floor
        # gets), so that one slow sample (the first listing renders the page the later ones find cached)
        # does not decide the median; under the profiler, long enough to give it samples.
        self.listing_reps = 30 if profile else max(5, sizes.reps)

    def wanted(self, scenario: str) -> bool:
        return not self.only or scenario in self.only

    def by_name(self, name: str) -> c.Target:
        return next(t for t in self.targets if t.name == name)

    def order(self, rep: int, pulls: bool = False) -> list[c.Target]:
        """Alternate which server goes first, so neither always meets a warmer or colder machine. ``pulls``:
        with the scale-out proxy node too (it shares the scale-out node's database and blobs)."""
        targets = self.targets + ([self.proxy] if pulls and self.proxy else [])
        return targets if rep % 2 == 0 else targets[::-1]

    @property
    def every_target(self) -> list[c.Target]:
        return self.targets + ([self.proxy] if self.proxy else [])

    # -- profiling -----------------------------------------------------------
    def _profiler(self, name: str):
        """py-spy on the Dockyard process, twice: every non-idle sample per thread (``<name>.txt``) and only
        the samples where a thread holds the GIL (``<name>.gil.txt``, the Python CPU time that the single
        event loop competes for)."""
        if not self.profile:
            return None
        spy = Path(sys.executable).parent / "py-spy"
        if not spy.exists():
            raise SystemExit("--profile needs py-spy in the venv: .venv/bin/pip install py-spy")
        (BENCH_DIR / "profiles" / "raw").mkdir(parents=True, exist_ok=True)
        # the first Dockyard among --targets: the embedded one unless it was left out
        server = next(t.server for t in self.targets if t.server.is_dockyard)
        if server.key != "dockyard":
            name += "." + server.key
        processes = []
        for suffix, extra in ((".txt", ["--threads"]), (".gil.txt", ["--gil"])):
            out = BENCH_DIR / "profiles" / "raw" / f"{name}{suffix}"
            self.profiles.append(out)
            processes.append(subprocess.Popen(
                [str(spy), "record", "--pid", str(server.pid), "--rate", "250", "--format", "raw",
                 "--output", str(out), "--nonblocking", *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        time.sleep(1.0)
        return processes

    @staticmethod
    def _stop_profiler(processes) -> None:
        for process in processes or ():
            process.send_signal(2)  # SIGINT: py-spy writes its output and exits
        for process in processes or ():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

    # -- the run -------------------------------------------------------------
    async def run(self, workspace: servers.Workspace) -> None:
        r = self.results
        self.workspace = workspace
        if self.wanted("limits"):
            await self.machine_limits(workspace)
        log("starting " + ", ".join(self.wanted_targets))
        if "dockyard" in self.wanted_targets:
            self.servers["dockyard"] = servers.start_dockyard(workspace.path)
        if "distribution" in self.wanted_targets:
            self.servers["distribution"] = servers.start_distribution(workspace.path)
        if "dockyard-pg-azure" in self.wanted_targets:
            start = time.monotonic()
            for server in servers.start_scaleout(workspace.path, proxy=True)[::-1]:
                self.servers[server.key] = server  # the proxy node first, so it stops before the helpers
            log(f"  PostgreSQL, Azurite and two Dockyard nodes up in {time.monotonic() - start:.1f} s ({'; '.join(self.servers['scaleout'].notes)})")
        self.targets = [c.Target(self.servers[k]) for k in ("dockyard", "distribution", "scaleout") if k in self.servers]
        for server in self.servers.values():
            self.results.facts.update(server.facts)
        if "scaleout_proxy" in self.servers:
            self.proxy = c.Target(self.servers["scaleout_proxy"])
        async with c.session(8) as s:
            for t in self.every_target:
                await t.discover(s)
                if t.auth:
                    await t.headers(s, c.push_scope("app"))  # the token path is warm before idle is read
        await asyncio.sleep(3)
        for t in self.targets:
            status = t.server.rss()
            r.row("rss_idle", "Server RSS, idle after start", "MiB", False)
            r.add("rss_idle", t.key, status["VmRSS"] / MiB)
            r.facts[f"startup_peak_{t.key}"] = f"{status['VmHWM'] / MiB:.0f} MiB"
            servers.reset_peak(t.server.pid)
        await self.setup_app()
        self.memory_mark("setup")
        phases = (
            ("rss", self.huge_push, "the 1 GiB push"),
            ("blobs", self.big_blobs, "big blobs"),
            ("small", self.small_blobs, "small blobs"),
            ("rate", self.rates, "request rates"),
            ("tags", self.tags, "5,000 tags"),
            ("catalog", self.catalog, "2,000 repositories"),
            ("large", self.large, "100,000 tags and repositories"),
        )
        for key, phase, label in phases:
            if self.wanted(key) or (key in ("tags", "catalog") and self.wanted("large")):
                await phase()
                self.memory_mark(label)
        for t in self.targets:
            status = t.server.rss()
            r.row("rss_peak", "Server RSS, peak over the whole run (VmHWM)", "MiB", False)
            r.add("rss_peak", t.key, status["VmHWM"] / MiB)
        for t in self.every_target:
            if not t.server.alive():
                raise RuntimeError(f"{t.name} died during the run:\n{t.server.log_tail()}")
            if t.redirects:
                r.facts[f"redirects_{t.key}"] = str(t.redirects)

    def memory_mark(self, phase: str) -> None:
        """Each server's RSS now, its peak so far (peaks are reset once, before the 1 GiB push) and its thread count."""
        parts = []
        for t in self.every_target:
            status = t.server.rss()
            parts.append(f"{t.name} {status['VmRSS'] / MiB:.0f} MiB (peak {status['VmHWM'] / MiB:.0f}, {status['Threads']} threads)")
            for helper, pid in t.server.helpers.items():
                try:
                    status = servers.proc_status(pid)
                except OSError:
                    continue
                parts.append(f"{helper} {status['VmRSS'] / MiB:.0f} MiB (peak {status['VmHWM'] / MiB:.0f})")
        self.results.memory.append((phase, parts))
        log(f"  memory after {phase}: " + "; ".join(parts))

    # -- machine limits --------------------------------------------------------
    async def machine_limits(self, workspace: servers.Workspace) -> None:
        r = self.results
        for which, label in (("sha256", "sha256, one core"), ("loopback", "loopback TCP, one stream")):
            log(f"machine limit: {label}")
            out = subprocess.run(
                [sys.executable, "-m", "bench.limits", which], capture_output=True, text=True, check=True, cwd=BENCH_DIR.parent
            ).stdout
            info = json.loads(out)
            r.limits[label] = {"median": info["median"], "samples": info["samples"], "unit": "MiB/s"}
        log("context: disk write of 256 MiB then fsync, in the servers' temporary directory")
        out = subprocess.run(
            [sys.executable, "-m", "bench.limits", "disk", str(workspace.path)],
            capture_output=True, text=True, check=True, cwd=BENCH_DIR.parent,
        ).stdout
        info = json.loads(out)
        r.limits["disk write + fsync (context)"] = {"median": info["median"], "samples": info["samples"], "unit": "MiB/s"}

    # -- common content ---------------------------------------------------------
    async def setup_app(self) -> None:
        """Repository ``app``: a config blob, one 4 KiB layer and a manifest tagged ``latest``."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = os.urandom(4096)
        manifest = c.make_manifest(config, [layer])
        self.app = {
            "config": config, "layer": layer, "layer_digest": c.sha256(layer), "manifest": manifest,
            "manifest_digest": c.sha256(manifest),
        }
        async with c.session(4) as s:
            for t in self.targets:
                await self.push_image(s, t, "app", "latest")
        self.repos.add("app")

    async def push_image(self, s, t: c.Target, repo: str, tag: str) -> None:
        a = self.app
        h = await t.headers(s, c.push_scope(repo))
        for blob in (a["config"], a["layer"]):
            await c.push_monolithic(s, t, h, repo, blob, c.sha256(blob))
        await c.put_manifest(s, t, h, repo, tag, a["manifest"], a["manifest_digest"])

    # -- 1 GiB push and memory -------------------------------------------------------
    async def huge_push(self) -> None:
        r = self.results
        size = self.sizes.huge
        log(f"1 GiB push with memory watch ({size // MiB} MiB)")
        data = bytearray(os.urandom(size // 4)) * 4
        for quarter in range(4):
            data[quarter * (size // 4) : quarter * (size // 4) + 8] = quarter.to_bytes(8, "big")
        digest = c.sha256(data)
        self.repos.add("huge")
        r.row("huge_push", f"Monolithic push of a {size // MiB} MiB blob", "MiB/s", True)
        r.row("rss_huge_peak", f"Server RSS, peak during the {size // MiB} MiB push (VmHWM)", "MiB", False)
        r.row("rss_huge_added", f"Server RSS added over idle by the {size // MiB} MiB push", "MiB", False)
        for t in self.targets:
            if t.key == "scaleout" and size > AZURITE_COPY_LIMIT:
                note = (f"not run on PG+Azure: Dockyard commits an upload with a server-side Copy Blob, which Azurite "
                        f"{self.results.facts.get('scaleout_azurite', '')} fails above ~512 MiB (its copy reads the source "
                        "into one Node.js string: \"Cannot create a string longer than 0x1fffffe8 characters\"), so Dockyard "
                        "answers the closing PUT with 503")
                for key in ("huge_push", "rss_huge_peak", "rss_huge_added"):
                    r.rows[key].note = note if key == "huge_push" else "not run on PG+Azure, see above"
                log(f"  {t.name}: skipped, {note}")
                async with c.session(1) as s:  # the repository exists on every server, for the catalog checks
                    small = os.urandom(4096)
                    await c.push_monolithic(s, t, await t.headers(s, c.push_scope("huge")), "huge", small, c.sha256(small))
                continue
            pid = t.server.pid
            async with c.session(1) as s:
                h = await t.headers(s, c.push_scope("huge"))
                before = t.server.rss()["VmRSS"]
                servers.reset_peak(pid)
                sampled = [before]
                done = asyncio.Event()

                async def watch() -> None:
                    while not done.is_set():
                        sampled.append(servers.proc_status(pid)["VmRSS"])
                        await asyncio.sleep(0.02)

                watcher = asyncio.create_task(watch())
                start = time.perf_counter()
                try:
                    await c.push_monolithic(s, t, h, "huge", data, digest)
                    elapsed = time.perf_counter() - start
                finally:
                    done.set()
                    await watcher
                peak = max(t.server.rss()["VmHWM"], max(sampled))
            idle = median(r.rows["rss_idle"].samples(t.key)) * MiB
            r.add("huge_push", t.key, size / MiB / elapsed)
            r.add("rss_huge_peak", t.key, peak / MiB)
            r.add("rss_huge_added", t.key, (peak - idle) / MiB)
            log(f"  {t.name}: {size / MiB / elapsed:,.0f} MiB/s, RSS before {before / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB")
        del data
        gc.collect()

    # -- big blobs: push and pull ------------------------------------------------------
    async def big_blobs(self) -> None:
        r = self.results
        sz = self.sizes
        base = os.urandom(sz.big)

        def variant(i: int) -> bytes:
            return i.to_bytes(16, "big") + base[16:]

        sha = self.results.limits.get("sha256, one core", {}).get("median")
        loop = self.results.limits.get("loopback TCP, one stream", {}).get("median")
        mib = sz.big // MiB
        r.row("push_mono", f"Push {mib} MiB, monolithic (POST + one PUT)", "MiB/s", True, limit_name="sha256", limit_value=sha)
        r.row("push_chunked", f"Push {mib} MiB, chunked ({sz.chunk // MiB} MiB PATCHes + PUT)", "MiB/s", True,
              limit_name="sha256", limit_value=sha)
        r.row("pull_1", f"Pull {mib} MiB, one stream", "MiB/s", True, limit_name="loopback", limit_value=loop)
        r.row("pull_8", f"Pull {mib} MiB, 8 concurrent streams (aggregate)", "MiB/s", True, limit_name="loopback", limit_value=loop)
        self.repos.update({"big", "chunked"})

        await self.client_ceilings(base)

        log(f"push {mib} MiB monolithic x{sz.reps}")
        profiler = self._profiler("push_mono") if "blobs" in self.only else None
        try:
            for rep in range(sz.reps):
                data = variant(rep + 1)
                digest = c.sha256(data)
                for t in self.order(rep):
                    async with c.session(1) as s:
                        h = await t.headers(s, c.push_scope("big"))
                        start = time.perf_counter()
                        await c.push_monolithic(s, t, h, "big", data, digest, raw=True)
                        r.add("push_mono", t.key, mib / (time.perf_counter() - start))
                if rep == 0:
                    pulled, pulled_digest = data, digest
                del data
        finally:
            self._stop_profiler(profiler)

        log(f"push {mib} MiB chunked x{sz.reps}")
        for rep in range(sz.reps):
            data = variant(100 + rep)
            digest = c.sha256(data)
            for t in self.order(rep):
                async with c.session(1) as s:
                    h = await t.headers(s, c.push_scope("chunked"))
                    start = time.perf_counter()
                    patches = await c.push_chunked(s, t, h, "chunked", data, digest, sz.chunk, raw=True)
                    r.add("push_chunked", t.key, mib / (time.perf_counter() - start))
                    c.expect(patches == -(-len(data) // sz.chunk), "wrong number of PATCHes")
            del data
        del base
        gc.collect()

        log(f"pull {mib} MiB, one stream x{sz.reps}, then 8 streams x{sz.reps}")
        for streams, key in ((1, "pull_1"), (8, "pull_8")):
            for rep in range(sz.reps):
                for t in self.order(rep, pulls=True):
                    async with c.session(streams) as s:
                        h = await t.headers(s, c.pull_scope("big"))
                        start = time.perf_counter()
                        await asyncio.gather(*(c.pull(s, t, h, "big", pulled_digest, pulled, raw=True) for _ in range(streams)))
                        r.add(key, t.key, streams * mib / (time.perf_counter() - start))

    async def client_ceilings(self, data: bytes) -> None:
        """What this client itself can push and pull: the same calls against a bare sendfile/sink server."""
        r = self.results
        sz = self.sizes
        mib = len(data) // MiB
        path = self.workspace.path / "ceiling.bin"
        path.write_bytes(data)
        log(f"client ceilings: push and pull {mib} MiB against a bare HTTP server (sendfile / sink)")
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.limits", "rawserver", str(path)],
            stdout=subprocess.PIPE, text=True, cwd=BENCH_DIR.parent,
        )
        try:
            base = f"http://127.0.0.1:{process.stdout.readline().strip()}"
            pushes, pulls1, pulls8 = [], [], []
            for _ in range(sz.reps):
                start = time.perf_counter()  # the same bare request as the big pushes
                status, _, _ = await rawput.send("PUT", base + "/sink", {}, data, "bare server push")
                c.expect(status == 201, "the sink refused the body")
                pushes.append(mib / (time.perf_counter() - start))
                for streams, samples in ((1, pulls1), (8, pulls8)):
                    async with c.session(streams) as s:
                        start = time.perf_counter()

                        async def get() -> None:  # the same bare GET as the big pulls
                            status, _, _ = await rawget.get(base + "/blob", {}, data, "bare server pull")
                            c.expect(status == 200, "the bare server failed")

                        await asyncio.gather(*(get() for _ in range(streams)))
                        samples.append(streams * mib / (time.perf_counter() - start))
            for label, samples in (("client push ceiling, one stream", pushes), ("client pull ceiling, one stream", pulls1),
                                   ("client pull ceiling, 8 streams", pulls8)):
                r.limits[label] = {"median": median(samples), "samples": samples, "unit": "MiB/s"}
        finally:
            process.kill()
            process.wait()
            path.unlink()

    # -- many small blobs ------------------------------------------------------------
    async def small_blobs(self) -> None:
        r = self.results
        sz = self.sizes
        n, size, conc = sz.small_count, sz.small_size, 16
        r.row("small_push", f"{n} blobs of {size // 1024} KiB pushed (POST + PUT each), concurrency {conc}", "blobs/s", True)
        r.row("small_pull", f"{n} blobs of {size // 1024} KiB pulled, concurrency {conc}", "blobs/s", True)
        log(f"{n} small blobs, push then pull at concurrency {conc}, x{sz.reps}")
        profiler = self._profiler("small") if "small" in self.only else None
        try:
            await self._small_blobs(n, size, conc)
        finally:
            self._stop_profiler(profiler)

    async def _small_blobs(self, n: int, size: int, conc: int) -> None:
        r = self.results
        sz = self.sizes
        for rep in range(sz.reps):
            raw = os.urandom(n * size)
            blobs = [raw[i * size : (i + 1) * size] for i in range(n)]
            digests = [c.sha256(b) for b in blobs]
            repo = f"small{rep}"
            self.repos.add(repo)
            for t in self.order(rep):
                async with c.session(conc) as s:
                    h = await t.headers(s, c.push_scope(repo))

                    async def push(i: int) -> None:
                        await c.push_monolithic(s, t, h, repo, blobs[i], digests[i])

                    async def get(i: int) -> None:
                        await c.pull(s, t, h, repo, digests[i], blobs[i])

                    start = time.perf_counter()
                    done = await c.bounded(conc, n, push)
                    r.add("small_push", t.key, done / (time.perf_counter() - start))
                    start = time.perf_counter()
                    done = await c.bounded(conc, n, get)
                    r.add("small_pull", t.key, done / (time.perf_counter() - start))
                    c.expect(done == n, "not every small blob was pulled")
            if self.proxy:  # the same blobs, pushed through the scale-out node, pulled through the proxy node
                t = self.proxy
                async with c.session(conc) as s:
                    h = await t.headers(s, c.pull_scope(repo))

                    async def get_proxied(i: int) -> None:
                        await c.pull(s, t, h, repo, digests[i], blobs[i])

                    start = time.perf_counter()
                    done = await c.bounded(conc, n, get_proxied)
                    r.add("small_pull", t.key, done / (time.perf_counter() - start))
                    c.expect(done == n, "not every small blob was pulled")
                    c.expect(t.redirects == 0, f"{t.name} redirected a blob GET despite blob_delivery: proxy")

    # -- request rates ----------------------------------------------------------------
    async def rates(self) -> None:
        r = self.results
        sz = self.sizes
        a = self.app
        conc = 32
        cases = (
            ("manifest_get", "GET manifest by tag", lambda s, t, h: c.get_manifest(s, t, h, "app", "latest", a["manifest"], a["manifest_digest"])),
            ("manifest_head", "HEAD manifest by digest", lambda s, t, h: c.head_manifest(s, t, h, "app", a["manifest_digest"], len(a["manifest"]))),
            ("blob_head", "HEAD blob", lambda s, t, h: c.head_blob(s, t, h, "app", a["layer_digest"], len(a["layer"]))),
        )
        for key, label, _ in cases:
            r.row(key, f"{label}, concurrency {conc}", "req/s", True, limit_name="trivial aiohttp")
            r.row(key + "_p50", f"{label}, p50 latency", "ms", False)
            r.row(key + "_p99", f"{label}, p99 latency", "ms", False)
        r.row("base_get", f"GET /v2/ (Dockyard: Bearer check; Distribution: no auth), concurrency {conc}", "req/s", True,
              limit_name="trivial aiohttp")
        trivial_rate = await self.trivial_rate(conc)  # the limit, measured right before the servers' runs
        for key, _, _ in cases:
            r.rows[key].limit_value = trivial_rate
        for key, label, call in cases:
            log(f"{label}: {sz.reps} x {sz.rate_seconds:.0f} s per server")
            profiler = self._profiler(key) if key in self.only else None
            try:
                for rep in range(sz.reps):
                    for t in self.order(rep):
                        async with c.session(conc) as s:
                            h = await t.headers(s, c.pull_scope("app"))
                            result = await c.rate(s, conc, sz.rate_seconds, lambda: call(s, t, h))
                        r.add(key, t.key, result.rps)
                        r.add(key + "_p50", t.key, result.percentile(50) * 1000)
                        r.add(key + "_p99", t.key, result.percentile(99) * 1000)
            finally:
                self._stop_profiler(profiler)
        log(f"GET /v2/: {sz.reps} x {sz.rate_seconds:.0f} s per server")
        for rep in range(sz.reps):
            for t in self.order(rep):
                async with c.session(conc) as s:
                    h = await t.headers(s, c.pull_scope("app"))

                    async def ping() -> None:
                        async with s.get(t.base + "/v2/", headers=h) as response:
                            await response.read()
                            c.expect(response.status == 200, f"{t.name}: GET /v2/ answered {response.status}")

                    result = await c.rate(s, conc, sz.rate_seconds, ping)
                r.add("base_get", t.key, result.rps)
        r.rows["base_get"].limit_value = trivial_rate
        await self.workers_rate(conc)

    async def workers_rate(self, conc: int) -> None:
        """``serve --workers 2`` against one process: GET manifest by tag driven by wrk (bench/wrk.py), whose
        client costs little enough CPU for a second server process to find a core. The second server shares
        the embedded Dockyard's data dir (and so its keys: the same token works on both). Distribution is
        measured with the same client, for context."""
        if "dockyard" not in self.servers:
            return
        r, sz, a = self.results, self.sizes, self.app
        if not wrk.available():
            r.notes.append("`wrk` is not installed (`apt-get install wrk`), so `serve --workers 2` was not measured.")
            return
        key = "wrk_manifest_get"
        r.row(key, f"GET manifest by tag, concurrency {conc}, driven by wrk (C) instead of the Python client", "req/s", True)
        main = self.servers["dockyard"]
        log(f"serve --workers 2 against one process, GET manifest by tag with wrk: {sz.reps} x {sz.rate_seconds:.0f} s per server")
        second = servers.start_dockyard(self.workspace.path, name="Dockyard --workers 2", key="workers2",
                                        workdir_name="dockyard-workers2", password=main.password,
                                        data=main.data_root, args=("--workers", "2"))
        try:
            runs = []
            async with c.session(2) as s:
                for t in self.targets:
                    if t.key in ("dockyard", "distribution"):
                        runs.append((t.key, t.base, await t.headers(s, c.pull_scope("app"))))
                        if t.key == "dockyard":
                            runs.append(("workers2", second.base, runs[-1][2]))
            for rep in range(sz.reps):
                for target, base, headers in runs if rep % 2 == 0 else runs[::-1]:
                    result = await wrk.rate(f"{base}/v2/app/manifests/latest", {**headers, "Accept": c.MANIFEST_TYPE},
                                            sz.rate_seconds, conc, a["manifest_digest"], len(a["manifest"]))
                    r.add(key, target, result.rps)
        finally:
            second.stop()
        row = r.rows[key]
        row.note = (f"`serve --workers 2` on the same data: {fmt(row.of('workers2'), 'req/s')}, "
                    f"{row.ratio_of('workers2', 'dockyard'):.2f}x one process")

    async def trivial_rate(self, conc: int) -> float:
        """The machine's request-rate limit: a one-handler aiohttp app, the same client, the same concurrency.
        Measured here, right before the servers' rate runs, so it meets the same load on the machine."""
        r = self.results
        sz = self.sizes
        log(f"machine limit: trivial aiohttp handler, {sz.reps} x {sz.rate_seconds:.0f} s at concurrency {conc}")
        trivial = servers.start_trivial(self.workspace.path)
        try:
            samples, p50s, p99s = [], [], []
            async with c.session(conc) as s:

                async def hello() -> None:
                    async with s.get(trivial.base + "/") as response:
                        body = await response.read()
                        c.expect(response.status == 200 and body == b"ok", "trivial handler answered wrong")

                for _ in range(sz.reps):
                    result = await c.rate(s, conc, sz.rate_seconds, hello)
                    samples.append(result.rps)
                    p50s.append(result.percentile(50) * 1000)
                    p99s.append(result.percentile(99) * 1000)
        finally:
            trivial.stop()
        r.limits["trivial aiohttp handler"] = {
            "median": median(samples), "samples": samples, "unit": "req/s", "p50_ms": median(p50s), "p99_ms": median(p99s),
        }
        return median(samples)

    # -- tags ---------------------------------------------------------------------------
    def tag(self, i: int) -> str:
        return f"t{i:06d}"

    async def create_tags(self, s, t: c.Target, repo: str, first: int, count: int, conc: int, deadline: float | None = None) -> int:
        a = self.app
        h = await t.headers(s, c.push_scope(repo))

        async def put(i: int) -> None:
            await c.put_manifest(s, t, h, repo, self.tag(first + i), a["manifest"], a["manifest_digest"])

        return await c.bounded(conc, count, put, deadline)

    async def page_latency(self, row: str, t: c.Target, h, path: str, key: str, expected: list[str], full: list[str], samples: int = 15, budget: float = 8.0) -> tuple[float, int]:
        """Median latency (ms) of GET ``path``, each answer checked against ``expected``; the samples one after
        another on one warm kept-alive connection (``c.warm_connection``).

        A server that ignores ``n`` (Distribution on tags/list) must answer ``full`` instead.
        Returns (median ms, items per answer)."""
        times = []
        stop = time.monotonic() + budget
        items = 0
        clock = time.perf_counter
        async with c.warm_connection(t, h) as conn:
            while len(times) < samples and (len(times) < 3 or time.monotonic() < stop):
                start = clock()
                page, _ = await c.list_page(conn, t, h, path, key)
                times.append((clock() - start) * 1000)
                items = len(page)
                if page != expected:  # only a server that ignores n may answer the whole list instead
                    c.expect(len(page) == len(full) and sorted(page) == full, f"{t.name}: {path} answered {len(page)} items, not the expected page")
            self._one_connection(conn, t, row)
        return median(times), items

    async def timed_walk(self, row: str, t: c.Target, h, path: str, key: str) -> tuple[list[str], int]:
        """A timed listing (``c.walk``: ``path`` and every page its Link leads to) on one warm kept-alive connection;
        the milliseconds go to ``row``. Returns (every item, pages)."""
        async with c.warm_connection(t, h) as conn:
            start = time.perf_counter()
            items, pages = await c.walk(conn, t, h, path, key)
            self.results.add(row, t.key, (time.perf_counter() - start) * 1000)
            self._one_connection(conn, t, row)
        return items, pages

    def _one_connection(self, conn, t: c.Target, row: str) -> None:
        """A timed sequence is meant to stay on its warm connection; say so on the row if the server made the
        client open another (it answered ``Connection: close`` or dropped the connection)."""
        if conn.connects > 1:
            note = f"{t.name} closed the kept-alive connection: {conn.connects - 1} reconnect(s) inside timed requests"
            r = self.results.rows[row]
            r.note = (r.note + "; " if r.note else "") + note
            log(f"  {row}: {note}")

    async def tags(self) -> None:
        r = self.results
        sz = self.sizes
        repo, conc = "tags", 32
        self.repos.add(repo)
        r.row("tags_create", f"Create {sz.tags:,} tags (PUT manifest by tag, concurrency {conc})", "s", False)
        r.row("tags_list", f"List {sz.tags:,} tags whole (no n; following Link)", "ms", False)
        r.row("tags_walk", f"Walk {sz.tags:,} tags with n=100", "ms", False)
        r.row("tags_page1k_first", f"tags/list?n=100, first page, {sz.tags_first:,} tags", "ms", False)
        r.row("tags_page1k_deep", f"tags/list?n=100&last=<80%>, {sz.tags_first:,} tags", "ms", False)
        log(f"tags: create {sz.tags:,} in two steps, page latency at {sz.tags_first:,}")
        async with c.session(conc) as s:
            for t in self.targets:
                await self.push_image(s, t, repo, "base")
        expected_all = sorted([self.tag(i) for i in range(sz.tags)] + ["base"])
        profiler = self._profiler("tags_create") if "tags" in self.only else None
        try:
            for rep, t in enumerate(self.targets):
                async with c.session(conc) as s:
                    h = await t.headers(s, c.push_scope(repo))
                    start = time.perf_counter()
                    await self.create_tags(s, t, repo, 0, sz.tags_first, conc)
                    first = time.perf_counter() - start
                    have = sorted([self.tag(i) for i in range(sz.tags_first)] + ["base"])
                    for key, last in (("tags_page1k_first", None), ("tags_page1k_deep", have[int(0.8 * len(have))])):
                        path = f"/v2/{repo}/tags/list?n=100" + (f"&last={last}" if last else "")
                        begin = have.index(last) + 1 if last else 0
                        ms, items = await self.page_latency(key, t, h, path, "tags", have[begin : begin + 100], have)
                        r.add(key, t.key, ms)
                        if items > 100:
                            r.rows[key].note = f"Distribution ignores n: answers all {items:,}"
                    start = time.perf_counter()
                    await self.create_tags(s, t, repo, sz.tags_first, sz.tags - sz.tags_first, conc)
                    total = first + time.perf_counter() - start
                    r.add("tags_create", t.key, total)
                    log(f"  {t.name}: {sz.tags:,} tags in {total:.1f} s ({sz.tags / total:,.0f}/s)")
        finally:
            self._stop_profiler(profiler)
        profiler = self._profiler("tags_list") if "tags" in self.only else None
        try:
            for rep in range(self.listing_reps):
                for t in self.order(rep):
                    async with c.session(1) as s:  # the token (cached after the first rep), untimed
                        h = await t.headers(s, c.pull_scope(repo))
                    for key, path in (("tags_list", f"/v2/{repo}/tags/list"), ("tags_walk", f"/v2/{repo}/tags/list?n=100")):
                        items, pages = await self.timed_walk(key, t, h, path, "tags")
                        self._check_listing(t, items, expected_all, r.rows[key], pages)
        finally:
            self._stop_profiler(profiler)
        await self.listing_floor(repo, expected_all)

    async def listing_floor(self, repo: str, expected: list[str]) -> None:
        """What the client itself needs for the two tag listings: the same JSON from the bare server
        (bench.limits rawserver, HTTP/1.1 keep-alive), fetched and parsed by ``list_page`` with the servers'
        connection policy (``c.warm_connection``: one kept-alive connection, warmed by one untimed GET) — the
        whole list as one request, and as many 100-tag pages as the walk takes, one after another."""
        r = self.results
        pages = [expected[i : i + 100] for i in range(0, len(expected), 100)]
        bodies = {"whole": {"name": repo, "tags": expected}, "page": {"name": repo, "tags": pages[0]}}
        processes, bases = [], {}
        try:
            for name, document in bodies.items():
                path = self.workspace.path / f"floor-{name}.json"
                path.write_bytes(json.dumps(document).encode())
                process = subprocess.Popen([sys.executable, "-m", "bench.limits", "rawserver", str(path)],
                                           stdout=subprocess.PIPE, text=True, cwd=BENCH_DIR.parent)
                processes.append(process)
                bases[name] = c.Target(servers.Server(f"bare server ({name})", f"http://127.0.0.1:{process.stdout.readline().strip()}",
                                                      process, self.workspace.path, self.workspace.path / "floor.log"))
            whole, walked, connects = [], [], 0
            for _ in range(max(5, self.sizes.reps)):  # milliseconds each: more samples than the servers get
                # the warming GET (/v2/, answered with the same JSON) is untimed, as for the servers
                async with c.warm_connection(bases["whole"], {}) as conn:
                    start = time.perf_counter()
                    items, _ = await c.list_page(conn, bases["whole"], {}, "/blob", "tags")
                    whole.append((time.perf_counter() - start) * 1000)
                    c.expect(items == expected, "the bare server's whole list differs")
                    connects = max(connects, conn.connects)
                async with c.warm_connection(bases["page"], {}) as conn:
                    start = time.perf_counter()
                    for _ in pages:
                        items, _ = await c.list_page(conn, bases["page"], {}, "/blob", "tags")
                    walked.append((time.perf_counter() - start) * 1000)
                    c.expect(items == pages[0], "the bare server's page differs")
                    connects = max(connects, conn.connects)
            c.expect(connects == 1, "the bare server did not keep its connections alive")
        finally:
            for process in processes:
                process.kill()
                process.wait()
        r.limits[f"client floor: list {len(expected):,} tags whole (same JSON, bare server, one warm kept-alive connection)"] = {
            "median": median(whole), "samples": whole, "unit": "ms"}
        r.limits[f"client floor: walk {len(expected):,} tags, n=100 ({len(pages)} pages, bare server, one warm kept-alive connection)"] = {
            "median": median(walked), "samples": walked, "unit": "ms"}

    def _check_listing(self, t: c.Target, items: list[str], expected: list[str], row, pages: int) -> None:
        if items != expected:
            c.expect(sorted(items) == expected, f"{t.name}: listing has {len(items)} items, not the {len(expected)} expected")
            if "unordered" not in row.note:
                row.note = (row.note + "; " if row.note else "") + f"{t.name} answers unordered"
        if t.key == "distribution" and pages == 1 and len(items) > 100 and "n=100" in row.label:
            if "ignores n" not in row.note:
                row.note = (row.note + "; " if row.note else "") + "Distribution 2.8 ignores n on tags/list: one answer with every tag"

    # -- catalog --------------------------------------------------------------------------
    def repo_name(self, i: int) -> str:
        return f"repo-{i:06d}"

    async def repo_tokens(self, s, t: c.Target, first: int, count: int, batch: int) -> list[dict]:
        """Dockyard's tokens for new repositories, each naming ``batch`` of them plus the mount source."""
        if not t.auth:
            return [{} for _ in range(0, count, batch)]
        out: list[dict] = [{}] * (-(-count // batch))

        async def fetch(j: int) -> None:
            names = [self.repo_name(first + i) for i in range(j * batch, min(count, (j + 1) * batch))]
            token = await t.fetch_token(s, tuple(c.push_scope(n) for n in names) + (c.pull_scope("app"),))
            out[j] = {"Authorization": "Bearer " + token}

        await c.bounded(8, len(out), fetch)
        return out

    async def create_repos(self, s, t: c.Target, first: int, count: int, conc: int, tokens: list[dict], batch: int, deadline: float | None = None) -> int:
        """Mount the app layer into ``count`` new repositories; returns how many were created (a prefix)."""
        digest = self.app["layer_digest"]

        async def make(j: int) -> None:
            for i in range(j * batch, min(count, (j + 1) * batch)):
                await c.mount(s, t, tokens[j], self.repo_name(first + i), "app", digest)

        batches = await c.bounded(conc, len(tokens), make, deadline)
        return min(count, batches * batch)

    async def catalog(self) -> None:
        r = self.results
        sz = self.sizes
        conc = 32
        r.row("repos_create", f"Create {sz.repos:,} repositories (cross-repo blob mount, concurrency {conc})", "s", False,
              note="Dockyard's per-repository tokens fetched beforehand, see next row")
        r.row("repos_tokens", f"Dockyard only: {sz.repos:,} tokens, one per new repository (docker's flow)", "s", False)
        r.row("catalog_list", f"_catalog whole, {sz.repos:,}+ repositories (no n; following Link)", "ms", False)
        r.row("catalog_walk", f"_catalog walked with n=100, {sz.repos:,}+ repositories", "ms", False)
        r.row("catalog_page1k_first", f"_catalog?n=100, first page, ~{sz.repos_first:,} repositories", "ms", False)
        r.row("catalog_page1k_deep", f"_catalog?n=100&last=<80%>, ~{sz.repos_first:,} repositories", "ms", False)
        log(f"catalog: create {sz.repos:,} repositories in two steps, page latency at ~{sz.repos_first:,}")
        profiler = self._profiler("repos_create") if "catalog" in self.only else None
        try:
            for t in self.targets:
                async with c.session(conc) as s:
                    start = time.perf_counter()
                    tokens = await self.repo_tokens(s, t, 0, sz.repos, 1)
                    if t.auth:
                        r.add("repos_tokens", t.key, time.perf_counter() - start)
                    start = time.perf_counter()
                    made = await self.create_repos(s, t, 0, sz.repos_first, conc, tokens[: sz.repos_first], 1)
                    first = time.perf_counter() - start
                    c.expect(made == sz.repos_first, "not every repository was created")
                    have = sorted(self.repos | {self.repo_name(i) for i in range(sz.repos_first)})
                    h = await t.headers(s, c.CATALOG_SCOPE)
                    for key, last in (("catalog_page1k_first", None), ("catalog_page1k_deep", have[int(0.8 * len(have))])):
                        path = "/v2/_catalog?n=100" + (f"&last={last}" if last else "")
                        begin = have.index(last) + 1 if last else 0
                        ms, _ = await self.page_latency(key, t, h, path, "repositories", have[begin : begin + 100], have)
                        r.add(key, t.key, ms)
                    start = time.perf_counter()
                    made = await self.create_repos(
                        s, t, sz.repos_first, sz.repos - sz.repos_first, conc, tokens[sz.repos_first :], 1
                    )
                    c.expect(made == sz.repos - sz.repos_first, "not every repository was created")
                    total = first + time.perf_counter() - start
                    r.add("repos_create", t.key, total)
                    log(f"  {t.name}: {sz.repos:,} repositories in {total:.1f} s ({sz.repos / total:,.0f}/s)")
        finally:
            self._stop_profiler(profiler)
        self.repos.update(self.repo_name(i) for i in range(sz.repos))
        expected = sorted(self.repos)
        profiler = self._profiler("catalog_list") if "catalog" in self.only else None
        try:
            for rep in range(self.listing_reps):
                for t in self.order(rep):
                    async with c.session(1) as s:  # the token (cached), untimed
                        h = await t.headers(s, c.CATALOG_SCOPE)
                    for key, path in (("catalog_list", "/v2/_catalog"), ("catalog_walk", "/v2/_catalog?n=100")):
                        items, pages = await self.timed_walk(key, t, h, path, "repositories")
                        self._check_listing(t, items, expected, r.rows[key], pages)
        finally:
            self._stop_profiler(profiler)

    # -- 100,000 tags and repositories ----------------------------------------------------------
    async def large(self) -> None:
        r = self.results
        sz = self.sizes
        n, conc = sz.large, 64
        a = self.app
        r.row("large_tags_http", f"Tags created over HTTP toward {n:,} (concurrency {conc}, {sz.http_fill_seconds:.0f} s bound)", "tags/s", True)
        r.row("large_repos_http", f"Repositories created over HTTP toward {n:,} (mount, concurrency {conc}, {sz.http_fill_seconds:.0f} s bound)", "repos/s", True)
        r.row("tags_page100k_first", f"tags/list?n=100, first page, {n:,} tags", "ms", False)
        r.row("tags_page100k_deep", f"tags/list?n=100&last=<80%>, {n:,} tags", "ms", False)
        r.row("tags_list100k", f"List {n:,} tags whole (no n; following Link)", "ms", False)
        r.row("catalog_page100k_first", f"_catalog?n=100, first page, ~{n:,} repositories", "ms", False)
        r.row("catalog_page100k_deep", f"_catalog?n=100&last=<80%>, ~{n:,} repositories", "ms", False)
        fill_notes = []

        log(f"large: tags toward {n:,} (HTTP for up to {sz.http_fill_seconds:.0f} s each, the rest written directly)")
        for t in self.targets:
            async with c.session(conc) as s:
                start = time.perf_counter()
                made = await self.create_tags(s, t, "tags", sz.tags, n - sz.tags, conc, time.monotonic() + sz.http_fill_seconds)
                elapsed = time.perf_counter() - start
            r.add("large_tags_http", t.key, made / elapsed)
            rest = [self.tag(i) for i in range(sz.tags + made, n)]
            start = time.perf_counter()
            if t.server.is_dockyard:
                await fill.dockyard_tags(t.server.database_url, "dockyard", "tags", rest, a["manifest_digest"])
            else:
                await asyncio.to_thread(fill.distribution_tags, t.server.data_root, "tags", rest, a["manifest_digest"])
            fill_notes.append(
                f"{t.name}: {sz.tags + made:,} tags over HTTP ({made / elapsed:,.0f}/s, so all {n:,} would take "
                f"~{n / max(made / elapsed, 1) / 60:,.0f} min), {len(rest):,} written directly in {time.perf_counter() - start:.1f} s"
            )
            log("  " + fill_notes[-1])

        log(f"large: repositories toward {n:,}")
        batch = 40
        for t in self.targets:
            async with c.session(conc) as s:
                start = time.perf_counter()
                count = n - sz.repos
                tokens = await self.repo_tokens(s, t, sz.repos, min(count, int(sz.http_fill_seconds * 600)), batch)
                made = await self.create_repos(s, t, sz.repos, count, conc, tokens, batch, time.monotonic() + sz.http_fill_seconds)
                elapsed = time.perf_counter() - start
            r.add("large_repos_http", t.key, made / elapsed)
            rest = [self.repo_name(i) for i in range(sz.repos + made, n)]
            start = time.perf_counter()
            if t.server.is_dockyard:
                await fill.dockyard_repositories(t.server.database_url, "dockyard", rest, a["layer_digest"])
            else:
                await asyncio.to_thread(fill.distribution_repositories, t.server.data_root, rest, a["layer_digest"])
            fill_notes.append(
                f"{t.name}: {sz.repos + made:,} repositories over HTTP ({made / elapsed:,.0f}/s incl. tokens of {batch} "
                f"repositories each; all {n:,} would take ~{n / max(made / elapsed, 1) / 60:,.0f} min), "
                f"{len(rest):,} written directly in {time.perf_counter() - start:.1f} s"
            )
            log("  " + fill_notes[-1])
        self.repos.update(self.repo_name(i) for i in range(n))
        self.results.facts["large_fill"] = " / ".join(fill_notes)

        log(f"large: page latency at {n:,}")
        tags_all = sorted([self.tag(i) for i in range(n)] + ["base"])
        repos_all = sorted(self.repos)
        for rep in range(2):
            for t in self.order(rep):
                async with c.session(1) as s:  # the tokens, untimed
                    h = await t.headers(s, c.pull_scope("tags"))
                    ch = await t.headers(s, c.CATALOG_SCOPE)
                if rep == 0:
                    for key, last in (("tags_page100k_first", None), ("tags_page100k_deep", tags_all[int(0.8 * len(tags_all))])):
                        path = "/v2/tags/tags/list?n=100" + (f"&last={last}" if last else "")
                        begin = tags_all.index(last) + 1 if last else 0
                        ms, items = await self.page_latency(key, t, h, path, "tags", tags_all[begin : begin + 100], tags_all, samples=9, budget=10)
                        r.add(key, t.key, ms)
                        if items > 100:
                            r.rows[key].note = f"Distribution ignores n: answers all {items:,}"
                    for key, last in (("catalog_page100k_first", None), ("catalog_page100k_deep", repos_all[int(0.8 * len(repos_all))])):
                        path = "/v2/_catalog?n=100" + (f"&last={last}" if last else "")
                        begin = repos_all.index(last) + 1 if last else 0
                        ms, _ = await self.page_latency(key, t, ch, path, "repositories", repos_all[begin : begin + 100], repos_all, samples=9, budget=10)
                        r.add(key, t.key, ms)
                else:
                    items, pages = await self.timed_walk("tags_list100k", t, h, "/v2/tags/tags/list", "tags")
                    self._check_listing(t, items, tags_all, r.rows["tags_list100k"], pages)


# -- targets ----------------------------------------------------------------------------------

def evaluate(results: Results) -> None:
    """The issue's targets against this run."""
    rows = results.rows
    targets = results.targets

    def have(*keys: str) -> bool:
        return all(k in rows and rows[k].dockyard for k in keys)

    def both(*keys: str) -> bool:
        return all(k in rows and rows[k].dockyard and rows[k].distribution for k in keys)

    def need_ge(value: float, goal: float) -> float:
        return goal / value if value > 0 else float("inf")

    loop = results.limits.get("loopback TCP, one stream", {}).get("median")
    sha = results.limits.get("sha256, one core", {}).get("median")
    trivial = results.limits.get("trivial aiohttp handler", {}).get("median")
    if have("pull_1") and loop:
        v = rows["pull_1"].dy
        targets.append(Target("Pull, one stream ≥ 60% of loopback", f"{100 * v / loop:.0f}% ({fmt(v, 'MiB/s')} of {fmt(loop, 'MiB/s')})", need_ge(v, 0.6 * loop), ("pull_1",)))
        if both("pull_1"):
            targets.append(Target("Pull, one stream ≥ 1.5x Distribution", f"{rows['pull_1'].ratio:.2f}x", need_ge(rows["pull_1"].ratio, 1.5), ("pull_1",)))
    for key, label in (("push_mono", "Push monolithic"), ("push_chunked", "Push chunked")):
        if have(key) and sha:
            v = rows[key].dy
            targets.append(Target(f"{label} ≥ 60% of the sha256 limit", f"{100 * v / sha:.0f}% ({fmt(v, 'MiB/s')} of {fmt(sha, 'MiB/s')})", need_ge(v, 0.6 * sha), (key,)))
    for key, label in (("manifest_get", "Manifest GET by tag"), ("manifest_head", "Manifest HEAD by digest"), ("blob_head", "Blob HEAD")):
        if not both(key):
            continue
        row, p99 = rows[key], rows[key + "_p99"]
        targets.append(Target(f"{label} ≥ 6x Distribution's req/s", f"{row.ratio:.2f}x ({fmt(row.dy, 'req/s')} vs {fmt(row.di, 'req/s')})", need_ge(row.ratio, 6.0), (key,)))
        targets.append(Target(f"{label} p99 lower than Distribution's", f"{fmt(p99.dy, 'ms')} vs {fmt(p99.di, 'ms')}", p99.dy / p99.di if p99.di > 0 else float("inf"), (key + "_p99",)))
        if trivial:
            targets.append(Target(f"{label} ≥ 30% of the trivial aiohttp handler's rate", f"{100 * row.dy / trivial:.0f}% ({fmt(row.dy, 'req/s')} of {fmt(trivial, 'req/s')})", need_ge(row.dy, 0.3 * trivial), (key,)))
    if have("wrk_manifest_get") and rows["wrk_manifest_get"].workers2:
        v = rows["wrk_manifest_get"].ratio_of("workers2", "dockyard")
        targets.append(Target("`serve --workers 2` ≥ 1.7x one process (GET manifest by tag, wrk)", f"{v:.2f}x", need_ge(v, 1.7), ("wrk_manifest_get",)))
    for key, label in (("small_push", "Small blobs, push"), ("small_pull", "Small blobs, pull")):
        if both(key):
            targets.append(Target(f"{label} ≥ 3x Distribution's ops/s", f"{rows[key].ratio:.2f}x ({fmt(rows[key].dy, 'blobs/s')} vs {fmt(rows[key].di, 'blobs/s')})", need_ge(rows[key].ratio, 3.0), (key,)))
    if both("tags_create"):
        row = rows["tags_create"]
        targets.append(Target("Creating 5,000 tags ≥ 3x faster than Distribution", f"{row.di / row.dy:.2f}x as fast ({fmt(row.dy, 's')} vs {fmt(row.di, 's')})", 3.0 * row.dy / row.di, ("tags_create",)))
    for key, label in (("tags_list", "Listing 5,000 tags"), ("tags_walk", "Walking 5,000 tags, n=100"), ("catalog_list", "Listing the catalog"), ("catalog_walk", "Walking the catalog, n=100")):
        if both(key):
            row = rows[key]
            measured = f"{row.di / row.dy:.2f}x as fast ({fmt(row.dy, 'ms')} vs {fmt(row.di, 'ms')})"
            floor = next((info["median"] for name, info in results.limits.items()
                          if name.startswith(f"client floor: {'list' if key == 'tags_list' else 'walk'} ") and key.startswith("tags")), None)
            if floor is not None:  # what the client alone needs for the same JSON from a bare server
                measured += f"; the client's own floor is {fmt(floor, 'ms')}, 10x needs ≤ {fmt(row.di / 10, 'ms')}"
            targets.append(Target(f"{label} ≥ 10x faster than Distribution", measured, 10.0 * row.dy / row.di, (key,)))
    for kind, label in (("tags", "tags/list"), ("catalog", "_catalog")):
        for which in ("first", "deep"):
            big, small = f"{kind}_page100k_{which}", f"{kind}_page1k_{which}"
            if have(big, small):
                ratio = rows[big].dy / rows[small].dy
                where = "first page" if which == "first" else "page after the 80% mark"
                targets.append(Target(f"{label} n=100 {where}: at 100,000 within 3x of at 1,000", f"{ratio:.2f}x ({fmt(rows[big].dy, 'ms')} vs {fmt(rows[small].dy, 'ms')})", ratio / 3.0, (big, small)))
    if have("rss_idle"):
        v = rows["rss_idle"].dy
        targets.append(Target("Idle RSS ≤ 100 MiB", fmt(v, "MiB"), v / 100.0, ("rss_idle",)))
    if have("rss_huge_added"):
        v = rows["rss_huge_added"].dy
        targets.append(Target("1 GiB push adds ≤ 64 MiB over idle", f"+{fmt(v, 'MiB')} (peak {fmt(rows['rss_huge_peak'].dy, 'MiB')})", max(v, 0) / 64.0, ("rss_huge_added",)))


def notes(results: Results, sizes: Sizes) -> None:
    results.notes += [
        "Both servers run on 127.0.0.1 in a fresh temporary directory. **Dockyard** on its embedded defaults "
        "(SQLite in WAL mode + filesystem blobs), auth on as always: the client does docker's token flow "
        "(the /v2/ challenge, a token per scope from `/oauth2/token` with Basic `owner:<password>`, then `Bearer`). "
        "**Distribution** (`/usr/bin/docker-registry serve config.yml`) with filesystem storage and the in-memory blob "
        "descriptor cache, **no auth** (so it does no token checks; Dockyard does), access log off.",
        "Durability differs: Dockyard fsyncs each blob and its directory before linking it; Distribution 2.8's "
        "filesystem driver does not fsync.",
        "The client is aiohttp (ClientSession, a TCPConnector limit equal to the concurrency) on uvloop, in one "
        "process on the same 2 cores as the server, except for the big blobs' bodies: the 256 MiB pulls are read by a "
        "bare HTTP/1.1 GET (`bench/rawget.py`) and the 256 MiB pushes sent by a bare HTTP/1.1 request "
        "(`bench/rawput.py`, from the blob's buffer, one connection per request), because aiohttp's reader and writer "
        "cost more CPU than the servers' own work on those bytes. Its own ceilings are measured too: the same push and "
        "pull calls against a bare sendfile/sink HTTP server, and requests against the trivial aiohttp handler. A "
        "figure near a client ceiling says more about the client than about the server.",
        "Listings (tags/list and `_catalog`, whole, walked with n=100, and the single-page latencies at 1,000 and "
        "100,000) are timed through a bare HTTP/1.1 keep-alive client instead (`bench/http1.py`: asyncio streams, "
        "`Content-Length` or chunked bodies), because aiohttp's ~1 ms per request was more than Dockyard's whole "
        "server time for one and hid the difference between the servers. The policy is the same for both servers: "
        "one connection per measured sequence (a whole listing, a walk, a page's latency samples), opened and warmed "
        "by one untimed `GET /v2/` with the same credentials, then the timed requests on it, as docker keeps its "
        "connection alive; each body is parsed with `json.loads`, `Link` is followed and the items are checked as "
        "before. The client's floor rows are the same JSON from the bare server, fetched with the same client and "
        "policy.",
        "Every answer is checked: statuses, `Docker-Content-Digest`, `Content-Length`, `Range` after each PATCH, "
        "pulled bytes compared with the pushed ones as they arrive (`bytes.startswith` at the offset: a memcmp in place), listing contents and counts.",
        f"Repetitions: {sizes.reps} for each throughput and rate scenario, alternating which server goes first; "
        f"request rates over {sizes.rate_seconds:.0f} s windows after 0.5 s warm-up; tag and repository creation once; "
        f"whole listings and walks {max(5, sizes.reps)} times each, alternating; "
        "page latencies are medians of up to 15 requests on one warm connection (9 at 100,000).",
        "Machine limits: hashlib sha256 over 1 MiB buffers on one core; one TCP stream over loopback between two "
        "processes (sendall/recv_into of 1 MiB buffers, 1 GiB); a one-handler aiohttp app on the stdlib asyncio loop "
        "(as Dockyard runs) driven by the same client at concurrency 32, measured right before the servers' rate runs. "
        "For context only: a 256 MiB write + fsync in the servers' directory.",
        "Tag creation is PUT of one manifest under new tags; repository creation is a cross-repository blob mount "
        "(docker's push of a layer another repository has). Dockyard's tokens for new repositories are fetched before "
        "the timed creation and timed on their own row.",
    ]
    if results.has_scaleout:
        results.facts["scaleout_config"] = (
            "**Dockyard PG+Azure** is the same `python -m dockyard serve` with `DOCKYARD_DATABASE_URL=postgresql://…` "
            "(PostgreSQL " + results.facts.get("scaleout_postgres", "?") + " from Debian's binaries, started by the test "
            "suite's `tests/servers/postgres.py` on 127.0.0.1: trust auth, **fsync, synchronous_commit and "
            "full_page_writes off**, a fresh empty database that Dockyard migrates when it starts) and "
            "`DOCKYARD_STORAGE_URL=azure://<container>` with `AZURE_STORAGE_CONNECTION_STRING` pointing at a local "
            "**Azurite " + results.facts.get("scaleout_azurite", "?") + "** (Microsoft's emulator, Node.js, one process; "
            "`tests/servers/azurite.py`, data on this machine's disk), one node, background work inline. Blob GETs "
            "answer 307 to a short-lived SAS URL on Azurite (`blob_delivery: redirect`, the default): the client follows "
            "it as docker does, without the registry's `Authorization`, and checks the bytes from Azurite, so the "
            "**redirect pull rows measure Azurite's serving (Node.js)**, not Dockyard's. A second node on the same "
            "database and container with `DOCKYARD_BLOB_DELIVERY=proxy` pulls the same blobs again, Dockyard streaming "
            "them from Azurite (the **proxy** lines). PostgreSQL and Azurite run on the same 2 cores as Dockyard and the "
            "client; Azurite and PostgreSQL are not in the RSS rows (Azurite's RSS is in the memory notes)."
        )
        results.notes.append(results.facts["scaleout_config"])
    fill_fact = results.facts.get("large_fill")
    if fill_fact:
        results.notes.append(
            "100,000 tags / repositories: neither server can take that many creations over HTTP inside the run's budget, "
            "so each got HTTP at concurrency 64 for a bounded time and the rest was written directly the way that server "
            "stores it (Dockyard: rows through its own `dockyard.metadata` database layer, in-process, into SQLite or "
            "PostgreSQL; Distribution: its link files):"
        )
        results.notes += [f"  - {part}" for part in fill_fact.split(" / ")]


async def amain(args) -> int:
    sizes = Sizes.quick() if args.quick else Sizes()
    only = set(args.only.split(",")) if args.only else set()
    unknown = only - set(SCENARIOS) - {"manifest_get", "manifest_head", "blob_head"}
    if unknown:
        print(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    if "manifest_get" in only or "manifest_head" in only or "blob_head" in only:
        only.add("rate")
    targets = tuple(t.strip() for t in (args.targets or ",".join(DEFAULT_TARGETS)).split(",") if t.strip())
    unknown = set(targets) - set(TARGETS)
    if unknown or not targets:
        print(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    targets = tuple(t for t in TARGETS if t in targets)
    if "distribution" in targets:
        problem = servers.check_distribution_installed()
        if problem:
            print(problem, file=sys.stderr)
            return 2
    if "dockyard-pg-azure" in targets:
        problem = servers.check_scaleout_available(install=True)
        if problem:
            print(f"dockyard-pg-azure: {problem}\n(leave it out with --targets dockyard,distribution)", file=sys.stderr)
            return 2
    results = Results()
    results.facts.update(machine_facts())
    results.facts["distribution"] = servers.distribution_version() if "distribution" in targets else "not run"
    results.facts["targets"] = ",".join(targets)
    results.facts["command"] = "bench/run" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    results.facts["load_before"] = open("/proc/loadavg").read().split(" ", 3)[:3]
    workspace = servers.Workspace(keep=args.keep)
    bench = Bench(sizes, results, only, args.profile, targets)
    started = time.monotonic()
    log(f"workspace {workspace.path}")
    finished = False
    try:
        await bench.run(workspace)
        finished = True
    finally:
        for server in bench.servers.values():
            server.stop()
            if not finished and server.is_dockyard:
                print(f"\n== the last lines of {server.name}'s log ({server.log_path}) ==\n{server.log_tail(40)}", file=sys.stderr)
        if not finished:
            workspace.close()
    results.elapsed = time.monotonic() - started
    results.facts["load_after"] = open("/proc/loadavg").read().split(" ", 3)[:3]
    evaluate(results)
    notes(results, sizes)
    print()
    print("\n".join(results.table_lines()))
    print()
    if results.has_scaleout:
        print("\n".join(results.scaleout_lines()))
        print()
    print("\n".join(results.target_lines()))
    far = results.furthest()
    if far:
        print("\nFurthest from target: " + "; ".join(f"{t.text} ({t.need:.1f}x short)" for t in far))
    print()
    print("\n".join(results.limit_lines()))
    print(f"Whole run: {results.elapsed / 60:.1f} min (then the temporary directory is removed)")
    out = Path(args.out) if args.out else (None if (args.quick or only) else BENCH_DIR / "RESULTS.md")
    if out is not None:
        results.write(out, out.with_name("results.json") if out.name == "RESULTS.md" else out.with_suffix(".json"))
        print(f"wrote {out}")
    start = time.monotonic()
    workspace.close()
    log(f"removed the temporary directory in {time.monotonic() - start:.0f} s")
    if bench.profiles:
        from bench import profile

        for path in bench.profiles:
            if path.exists():
                text = profile.summary(path)
                summary = BENCH_DIR / "profiles" / path.name.replace(".txt", ".summary.txt")
                summary.write_text(text + "\n")
                print(f"\n== profile {path.name} (Dockyard, py-spy; raw in {path}, summary in {summary}) ==")
                print(text)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and one repetition, to check the harness")
    parser.add_argument("--only", help=f"comma-separated scenarios: {', '.join(SCENARIOS)} (setup always runs); "
                        "manifest_get, manifest_head or blob_head runs the rate scenario and profiles just that test")
    parser.add_argument("--targets", help=f"comma-separated servers to run: {', '.join(TARGETS)} (default: dockyard,distribution; all three take ~18 min instead of ~7-10). "
                        "dockyard-pg-azure is Dockyard on PostgreSQL + Azure Blob (Azurite), started with the test suite's "
                        "starters; it brings a second node with blob_delivery: proxy for the pull scenarios")
    parser.add_argument("--profile", action="store_true", help="record Dockyard with py-spy during the --only scenarios "
                        "(the first Dockyard among --targets: --targets dockyard-pg-azure profiles the scale-out node)")
    parser.add_argument("--out", help="write the results here (default bench/RESULTS.md for a full run)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    try:
        import uvloop

        code = uvloop.run(amain(args))
    except ImportError:
        code = asyncio.run(amain(args))
    sys.exit(code)
