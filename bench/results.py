"""Rows of measurements, the issue's targets, and the table and RESULTS.md made from them."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

MiB = 1 << 20


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


@dataclass
class Row:
    key: str
    label: str
    unit: str  # "MiB/s", "req/s", "blobs/s", "ms", "s", "MiB"
    higher_better: bool
    dockyard: list[float] = field(default_factory=list)
    distribution: list[float] = field(default_factory=list)
    scaleout: list[float] = field(default_factory=list)  # Dockyard on PostgreSQL + Azure Blob (Azurite)
    scaleout_proxy: list[float] = field(default_factory=list)  # the same, blob_delivery: proxy (pull rows only)
    workers2: list[float] = field(default_factory=list)  # embedded Dockyard as `serve --workers 2` (wrk rows only)
    limit_name: str | None = None  # the machine limit this row is held against
    limit_value: float | None = None
    note: str = ""

    @property
    def dy(self) -> float:
        return median(self.dockyard)

    @property
    def di(self) -> float:
        return median(self.distribution)

    @property
    def ratio(self) -> float:
        if not self.distribution or not self.dockyard or self.di == 0:
            return math.nan
        return self.dy / self.di

    def samples(self, target: str) -> list[float]:
        """The samples of one target: dockyard, distribution, scaleout or scaleout_proxy."""
        return getattr(self, target)

    def of(self, target: str) -> float:
        return median(self.samples(target))

    def ratio_of(self, target: str, other: str) -> float:
        mine, theirs = self.samples(target), self.samples(other)
        if not mine or not theirs or median(theirs) == 0:
            return math.nan
        return median(mine) / median(theirs)


@dataclass
class Target:
    text: str
    measured: str
    need: float  # how many times better Dockyard must get to meet it (<= 1: met)
    rows: tuple[str, ...] = ()

    @property
    def met(self) -> bool:
        return self.need <= 1.0


def fmt(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "ms":
        return f"{value:,.2f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit == "s":
        return f"{value:,.2f} s" if value < 100 else f"{value:,.0f} s"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:,.1f} {unit}"


class Results:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.limits: dict[str, dict] = {}
        self.notes: list[str] = []
        self.facts: dict[str, str] = {}
        self.targets: list[Target] = []
        self.memory: list[tuple[str, list[str]]] = []
        self.started = datetime.now(timezone.utc)
        self.elapsed = 0.0

    def row(self, key: str, label: str, unit: str, higher_better: bool, **kwargs) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(key, label, unit, higher_better, **kwargs)
        return self.rows[key]

    def add(self, key: str, target: str, value: float) -> None:
        """A sample of ``target``: dockyard, distribution, scaleout or scaleout_proxy (a server's ``key``)."""
        self.rows[key].samples(target).append(value)

    @property
    def has_scaleout(self) -> bool:
        return any(row.scaleout for row in self.rows.values())

    def get(self, key: str) -> Row | None:
        return self.rows.get(key)

    # -- the table -------------------------------------------------------
    def table_lines(self) -> list[str]:
        lines = [
            "| Scenario | Dockyard (median) | Distribution (median) | Dockyard / Distribution | Dockyard vs machine limit |",
            "|---|---:|---:|---:|---|",
        ]
        for row in self.rows.values():
            if not row.dockyard and not row.distribution:
                continue
            ratio = row.ratio
            if math.isnan(ratio):
                ratio_text = "n/a"
            else:
                digits = 2 if ratio >= 0.1 else 4 if ratio < 0.01 else 3
                ratio_text = f"{ratio:.{digits}f}x ({'higher' if row.higher_better else 'lower'} is better)"
            limit = ""
            if row.limit_value and not math.isnan(row.dy):
                limit = f"{100 * row.dy / row.limit_value:.0f}% of {row.limit_name} ({fmt(row.limit_value, row.unit)})"
            label = row.label + (f" — {row.note}" if row.note else "")
            lines.append(
                f"| {label} | {fmt(row.dy, row.unit)} | {fmt(row.di, row.unit) if row.distribution else 'n/a'} "
                f"| {ratio_text} | {limit} |"
            )
        return lines

    def scaleout_lines(self) -> list[str]:
        """The scale-out target next to the other two; pull rows get a second line for ``blob_delivery: proxy``."""
        lines = [
            "| Scenario | Dockyard PG+Azure (median) | Dockyard embedded | Distribution | PG+Azure / Distribution | PG+Azure / embedded |",
            "|---|---:|---:|---:|---:|---:|",
        ]

        def ratio_text(value: float, higher_better: bool) -> str:
            if math.isnan(value):
                return "n/a"
            digits = 2 if value >= 0.1 else 4 if value < 0.01 else 3
            return f"{value:.{digits}f}x"

        for row in self.rows.values():
            for target, suffix in (("scaleout", ""), ("scaleout_proxy", " — **proxy** (`DOCKYARD_BLOB_DELIVERY=proxy`: Dockyard streams from Azurite)")):
                if not row.samples(target):
                    continue
                label = row.label + suffix
                if target == "scaleout" and row.scaleout_proxy:
                    label += " — **redirect** (307 to Azurite: the bytes come from Azurite)"
                better = "higher" if row.higher_better else "lower"
                lines.append(
                    f"| {label} | {fmt(row.of(target), row.unit)} | {fmt(row.dy, row.unit) if row.dockyard else 'n/a'} "
                    f"| {fmt(row.di, row.unit) if row.distribution else 'n/a'} "
                    f"| {ratio_text(row.ratio_of(target, 'distribution'), row.higher_better)} "
                    f"| {ratio_text(row.ratio_of(target, 'dockyard'), row.higher_better)} ({better} is better) |"
                )
        return lines

    def limit_lines(self) -> list[str]:
        lines = ["| Limit | Median | Samples |", "|---|---:|---|"]
        for name, info in self.limits.items():
            samples = ", ".join(fmt(v, info["unit"]).rsplit(" ", 1)[0] for v in info["samples"])
            extra = ""
            if "p99_ms" in info:
                extra = f" (p50 {info['p50_ms']:.2f} ms, p99 {info['p99_ms']:.2f} ms)"
            lines.append(f"| {name} | {fmt(info['median'], info['unit'])}{extra} | {samples} |")
        return lines

    def scaleout_section(self) -> list[str]:
        if not self.has_scaleout:
            return []
        config = self.facts.get("scaleout_config", "")
        return [
            "### Dockyard's scale-out configuration: PostgreSQL + Azure Blob (Azurite)",
            "",
            *([config, ""] if config else []),
            "The same scenarios and checks as above. Ratios are the PG+Azure median over Distribution's and over "
            "embedded Dockyard's; whether higher or lower is better is said per row.",
            "",
            *self.scaleout_lines(),
            "",
        ]

    def target_lines(self) -> list[str]:
        lines = ["| Target (from the issue) | Measured now | Met | Dockyard must get this many times better |", "|---|---|:-:|---:|"]
        for target in self.targets:
            need = "—" if target.met else (f"{target.need:.2f}x" if target.need < 2 else f"{target.need:.1f}x")
            lines.append(f"| {target.text} | {target.measured} | {'yes' if target.met else '**no**'} | {need} |")
        return lines

    def furthest(self, count: int = 2) -> list[Target]:
        return sorted((t for t in self.targets if not t.met), key=lambda t: -t.need)[:count]

    # -- files -------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "started": self.started.isoformat(timespec="seconds"),
            "elapsed_seconds": round(self.elapsed, 1),
            "facts": self.facts,
            "limits": self.limits,
            "notes": self.notes,
            "memory": self.memory,
            "rows": [
                asdict(row) | {
                    "dockyard_median": row.dy, "distribution_median": row.di, "ratio": row.ratio,
                    "scaleout_median": row.of("scaleout"), "scaleout_proxy_median": row.of("scaleout_proxy"),
                    "scaleout_ratio_to_distribution": row.ratio_of("scaleout", "distribution"),
                    "scaleout_ratio_to_dockyard": row.ratio_of("scaleout", "dockyard"),
                }
                for row in self.rows.values()
            ],
            "targets": [asdict(t) | {"met": t.met} for t in self.targets],
        }

    def write(self, results_md: Path, results_json: Path | None) -> None:
        preserved = _preserved_sections(results_md)
        text = self.markdown(preserved)
        results_md.write_text(text)
        if results_json is not None:
            results_json.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")

    def markdown(self, preserved: str = "") -> str:
        f = self.facts
        out = [
            "# Dockyard benchmark results",
            "",
            f"Run on {self.started.strftime('%Y-%m-%d %H:%M UTC')}, {self.elapsed / 60:.1f} minutes, with "
            f"`{f.get('command', 'bench/run')}`.",
            "",
            f"**Machine:** {f.get('cpus')} cores ({f.get('cpu_model')}), {f.get('memory')}, {f.get('kernel')}; "
            f"Python {f.get('python')}, aiohttp {f.get('aiohttp')}; CNCF Distribution {f.get('distribution')} (Debian `docker-registry`). "
            "The machine is shared and has only 2 cores, which the server under test and the Python client "
            "split between them: absolute figures vary from run to run, the ratios hold better but move too when other "
            "work shares the cores (Distribution, multi-threaded Go, gains more from a free second core than Dockyard's "
            "single event loop). "
            f"Load average (1/5/15 min) before the run {' '.join(f.get('load_before', []))}, after it "
            f"{' '.join(f.get('load_after', []))}: other work on the machine shares the cores.",
            "",
            "## How it was measured",
            "",
            *[note if note.startswith("  - ") else f"- {note}" for note in self.notes],
            "",
            "## Results",
            "",
            "Medians over the repetitions listed in each row's samples (`bench/results.json`). "
            "The ratio column is Dockyard's median over Distribution's; whether higher or lower is better is said per row.",
            "",
            *self.table_lines(),
            "",
            *self.scaleout_section(),
            "### Machine limits and the client's own ceilings, measured in the same run",
            "",
            *self.limit_lines(),
            "",
            "### Server memory after each phase (RSS now, peak so far, OS threads)",
            "",
            *[f"- after {phase}: " + "; ".join(parts) for phase, parts in self.memory],
            "",
            "## Targets from the issue",
            "",
            *self.target_lines(),
            "",
        ]
        far = self.furthest()
        if far:
            out += [
                "Furthest from their targets now: " + "; ".join(f"{t.text} ({t.need:.1f}x short)" for t in far) + ".",
                "",
            ]
        if preserved:
            out += [preserved.rstrip(), ""]
        return "\n".join(out)


def _preserved_sections(path: Path) -> str:
    """The hand-written analysis ('## Where the time goes' onward) of an earlier RESULTS.md, kept as is."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    match = re.search(r"^## Where the time goes.*", text, flags=re.S | re.M)
    return match.group(0) if match else ""


def machine_facts() -> dict[str, str]:
    facts = {"cpus": str(os.cpu_count()), "kernel": f"Linux {platform.release()}", "python": platform.python_version()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                facts["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                facts["memory"] = f"{int(line.split()[1]) / (1 << 20):.0f} GiB RAM"
                break
    except OSError:
        pass
    try:
        import aiohttp

        facts["aiohttp"] = aiohttp.__version__
    except ImportError:
        pass
    return facts
