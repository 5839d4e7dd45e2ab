"""Summaries of py-spy's raw (collapsed-stack) profiles: where Dockyard's time goes.

    .venv/bin/python -m bench.profile bench/profiles/tags_create.txt bench/profiles/tags_create.gil.txt

``<name>.txt`` (recorded with --threads) holds every non-idle sample of every thread;
``<name>.gil.txt`` (recorded with --gil) only the samples where a thread held the GIL, which is
the Python CPU time that the one event loop competes for.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
# Frames every sample of the main thread passes through: start-up and the event loop's own frames.
_ROOTS = (
    "<frozen runpy>", "typer/", "dockyard/__main__.py", "dockyard/cli/__init__.py", "asyncio/runners.py",
    "run_forever (asyncio/base_events.py", "_run_once (asyncio/base_events.py", "run_until_complete (asyncio/base_events.py",
    "Handle._run (asyncio/events.py", "main (dockyard/server.py", "threading.py", "Thread.run",
)
_LAYERS = (
    ("sqlalchemy/", "SQLAlchemy (statement building, compile/cache, execute, results)"),
    ("aiosqlite/", "aiosqlite (thread hand-off) and SQLite itself"),
    ("sqlite3", "aiosqlite (thread hand-off) and SQLite itself"),
    ("greenlet", "SQLAlchemy (statement building, compile/cache, execute, results)"),
    ("aiohttp/", "aiohttp (HTTP parsing, routing, responses)"),
    ("multidict", "aiohttp (HTTP parsing, routing, responses)"),
    ("yarl/", "aiohttp (HTTP parsing, routing, responses)"),
    ("jwt/", "token verification (PyJWT, cryptography)"),
    ("cryptography/", "token verification (PyJWT, cryptography)"),
    ("dockyard/", "Dockyard's own code"),
    ("asyncio/", "event loop and thread hand-offs"),
    ("selectors.py", "event loop and thread hand-offs"),
    ("concurrent/futures", "event loop and thread hand-offs"),
    ("json/", "json"),
    ("hashlib", "hashing"),
)


def _frame(frame: str) -> str:
    """'name (path/to/file.py:123)' -> 'name (file path without the line)'."""
    frame = _LINE.sub(")", frame.strip())
    frame = re.sub(r"\(.*?site-packages/", "(", frame)
    frame = re.sub(r"\(/\S*?/lib/python3[.\d]*/", "(", frame)
    frame = re.sub(r"\(.*?/work/main/", "(", frame)
    return frame


def _thread_kind(frame: str) -> str:
    name = frame.split(":", 1)[-1].strip()
    if "MainThread" in name:
        return "event loop (main thread)"
    if "_connection_worker_thread" in name:
        return "aiosqlite connection threads"
    if name.startswith("asyncio_") or "ThreadPoolExecutor" in name or "_worker" in name:
        return "to_thread pool (file I/O, hashing)"
    return name or "other"


def _layer(frame: str) -> str:
    for needle, layer in _LAYERS:
        if needle in frame:
            return layer
    return "other"


def load(path: Path):
    threads: Counter = Counter()
    inclusive: Counter = Counter()
    own: Counter = Counter()
    layers: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        raw = stack.split(";")
        thread = "all threads"
        if raw and raw[0].startswith("thread "):
            thread = _thread_kind(raw[0])
        frames = [_frame(f) for f in raw if not f.startswith(("thread ", "process "))]
        if not frames:
            continue
        total += n
        threads[thread] += n
        for frame in set(frames):
            if not any(root in frame for root in _ROOTS):
                inclusive[frame] += n
        own[frames[-1]] += n
        layers[_layer(frames[-1])] += n
    return threads, inclusive, own, layers, total


def summary(path: Path, top: int = 20) -> str:
    threads, inclusive, own, layers, total = load(path)
    if not total:
        return f"{path}: no samples"
    pct = lambda n: f"{100 * n / total:5.1f}%"  # noqa: E731
    lines = [f"{path.name}: {total} samples"]
    if len(threads) > 1 or "all threads" not in threads:
        lines += ["", "by thread:"] + [f"  {pct(n)}  {name}" for name, n in threads.most_common()]
    lines += ["", "by layer (where the sampled frame itself was):"] + [f"  {pct(n)}  {name}" for name, n in layers.most_common()]
    lines += ["", "inclusive (function on the stack):"] + [f"  {pct(n)}  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "self (function itself running):"] + [f"  {pct(n)}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    for path in args.paths:
        print(summary(path, args.top))
        print()


if __name__ == "__main__":
    main()
