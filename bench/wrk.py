"""Request rates through wrk (Debian's `wrk`, C and LuaJIT), for `serve --workers 2` against one worker.

The Python client spends about a core of its own at these rates, and the machine has two: with it,
a second Dockyard process would have no core to run on, and no gain from `--workers` could show.
wrk drives the same requests for a fraction of that. Every answer is still checked: the Lua below
counts those that are not a 200 with the expected `Docker-Content-Digest` and `Content-Length`,
and any such answer fails the run.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from dataclasses import dataclass

from bench.client import Mismatch

CHECK = """\
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) digest = args[1]; length = args[2]; good = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and headers["Docker-Content-Digest"] == digest and headers["Content-Length"] == length then
    good = good + 1
  else
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do g = g + t:get("good"); b = b + t:get("bad") end
  io.write(string.format("CHECKED good=%d bad=%d p50_us=%d p99_us=%d seconds=%f\\n",
    g, b, latency:percentile(50), latency:percentile(99), summary.duration / 1e6))
end
"""

_CHECKED = re.compile(r"CHECKED good=(\d+) bad=(\d+) p50_us=(\d+) p99_us=(\d+) seconds=([\d.]+)")


@dataclass
class Rate:
    rps: float
    p50_ms: float
    p99_ms: float


def available() -> str | None:
    return shutil.which("wrk")


async def rate(url: str, headers: dict[str, str], seconds: float, connections: int, digest: str, length: int) -> Rate:
    """GET ``url`` over ``connections`` kept-alive connections from one wrk thread for ``seconds``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(CHECK)
        script.flush()
        args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "-s", script.name]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        process = await asyncio.create_subprocess_exec(
            *args, url, "--", digest, str(length), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out = (await process.communicate())[0].decode(errors="replace")
    found = _CHECKED.search(out)
    if process.returncode != 0 or not found:
        raise Mismatch(f"wrk failed ({process.returncode}): {out[-500:]}")
    good, bad, p50, p99, elapsed = int(found[1]), int(found[2]), int(found[3]), int(found[4]), float(found[5])
    if bad or not good:
        raise Mismatch(f"wrk: {bad} of {good + bad} answers from {url} were not a 200 with digest {digest}")
    return Rate(good / elapsed, p50 / 1000, p99 / 1000)
