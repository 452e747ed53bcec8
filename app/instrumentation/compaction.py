"""Fold the metric files of dead workers into one archive file per metric type.

prometheus_client's multiprocess mode gives every worker its own files
(`counter_<pid>.db`, `histogram_<pid>.db`, ...) and every scrape reads them all. A
worker that dies (a crash, uvicorn replacing it, `--limit-max-requests`) leaves its
files behind, and they must stay counted or the counters would go backwards; so in a
long-running server the files, and the scrape time, grow with every worker ever
started (prometheus/client_python#568 and friends). Here the dead workers' files are
merged into `<type>_archive.db`, with the value each metric type's aggregation needs
(sum for counters, histograms, summaries and `sum` gauges, max/min for `max`/`min`
gauges, the newest for `mostrecent`), then deleted: the totals a scrape reports do
not change, and the file count stays at the live workers' plus one archive per type.
Live-gauge files (`live*` modes) are simply removed, as `mark_process_dead` does;
`all`-mode gauges are left as they are (their per-pid series are the point).

Concurrency: any worker may compact at scrape time. `scrape_lock` is an flock on a
file in the directory: compaction holds it exclusively, scrapes hold it shared, so a
scrape never sees a dead worker both in the archive and in its own file, nor a file
vanish between listing and reading it.

Workers come and go while a scrape reads: a worker that has just created its file has
not sized it yet (prometheus_client opens, then truncates it to its initial size), and
reading that empty file fails the whole scrape. `ChurnSafeCollector` skips such files;
the worker's values, all still zero, appear from the next scrape on.

Crash safety (a worker killed mid-compaction): the new archives are written under
names the collector ignores (`*.db.new`), then a journal naming the renames and
deletions is written atomically; only then are archives replaced and dead files
deleted. A journal found later is replayed (roll forward; every step is idempotent),
partial `.db.new` files without a journal are discarded.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

from app.instrumentation.multiproc import pid_alive

ARCHIVE = "archive"
LOCK_FILE = "compaction.lock"
JOURNAL = "compaction.journal"
NEW_SUFFIX = ".new"

# How values of one key from several files combine, by the file's type prefix.
Merge = Callable[[tuple[float, float], tuple[float, float]], tuple[float, float]]


def _sum(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a[0] + b[0], max(a[1], b[1])


def _max(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a if a[0] >= b[0] else b


def _min(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a if a[0] <= b[0] else b


def _newest(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a if a[1] >= b[1] else b


MERGES: dict[str, Merge] = {
    "counter": _sum,
    "histogram": _sum,
    "summary": _sum,
    "gauge_sum": _sum,
    "gauge_max": _max,
    "gauge_min": _min,
    "gauge_mostrecent": _newest,
}
LIVE_GAUGE_PREFIX = "gauge_live"


def _split(name: str) -> tuple[str, str] | None:
    """`counter_123.db` -> ("counter", "123"); None for anything else."""
    if not name.endswith(".db"):
        return None
    prefix, _, owner = name[:-3].rpartition("_")
    return (prefix, owner) if prefix else None


# A file smaller than its 8-byte header is one a worker is creating right now.
HEADER_BYTES = 8


class ChurnSafeCollector(MultiProcessCollector):
    """prometheus_client's MultiProcessCollector, skipping files still being created."""

    def collect(self) -> Iterator[Metric]:
        files = []
        for path in Path(self._path).glob("*.db"):
            try:
                if path.stat().st_size >= HEADER_BYTES:
                    files.append(str(path))
            except FileNotFoundError:  # a live gauge's worker marked itself dead
                continue
        return iter(self.merge(files, accumulate=True))


@contextmanager
def scrape_lock(directory: Path, exclusive: bool = False) -> Iterator[None]:
    with open(directory / LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def compact(directory: Path, alive: Callable[[int], bool] = pid_alive) -> int:
    """Fold every dead worker's files into the archives; returns how many files went."""
    with scrape_lock(directory, exclusive=True):
        _replay(directory)
        dead: dict[str, list[Path]] = {}
        removed = 0
        for path in directory.glob("*.db"):
            parts = _split(path.name)
            if parts is None or not parts[1].isdigit() or alive(int(parts[1])):
                continue
            prefix = parts[0]
            if prefix.startswith(LIVE_GAUGE_PREFIX):
                path.unlink(missing_ok=True)  # a dead worker has no live value
                removed += 1
            elif prefix in MERGES:
                dead.setdefault(prefix, []).append(path)
        if not dead:
            return removed
        renames = []
        for prefix, files in dead.items():
            archive = directory / f"{prefix}_{ARCHIVE}.db"
            staged = archive.with_name(archive.name + NEW_SUFFIX)
            _write(staged, _merged([archive, *files], MERGES[prefix]))
            renames.append((str(staged), str(archive)))
        doomed = [str(p) for files in dead.values() for p in files]
        _write_journal(directory, {"renames": renames, "remove": doomed})
        _replay(directory)
        return removed + len(doomed)


def _merged(paths: list[Path], merge: Merge) -> dict[str, tuple[float, float]]:
    values: dict[str, tuple[float, float]] = {}
    for path in paths:
        if not path.exists():
            continue
        for key, value, timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            new = (value, timestamp)
            values[key] = merge(values[key], new) if key in values else new
    return values


def _write(path: Path, values: dict[str, tuple[float, float]]) -> None:
    path.unlink(missing_ok=True)
    out = MmapedDict(str(path))
    try:
        for key, (value, timestamp) in values.items():
            out.write_value(key, value, timestamp)
    finally:
        out.close()


def _write_journal(directory: Path, plan: dict[str, list]) -> None:
    tmp = directory / (JOURNAL + NEW_SUFFIX)
    tmp.write_text(json.dumps(plan))
    os.replace(tmp, directory / JOURNAL)


def _replay(directory: Path) -> None:
    """Finish a committed compaction (journal present), or drop an uncommitted one."""
    journal = directory / JOURNAL
    if journal.exists():
        plan = json.loads(journal.read_text())
        for staged, final in plan["renames"]:
            if os.path.exists(staged):
                os.replace(staged, final)
        for path in plan["remove"]:
            Path(path).unlink(missing_ok=True)
        journal.unlink()
    for leftover in directory.glob("*" + NEW_SUFFIX):
        leftover.unlink(missing_ok=True)
