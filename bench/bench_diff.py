#!/usr/bin/env python3
"""Table diff benchmark: `mlark.diff.diff_tables` on two versions of a large Parquet file.

Usage (from the repository root, with mlark installed in .venv):

    .venv/bin/python bench/bench_diff.py                    # full size: 1,000,000 rows x 20 columns, 1% changed
    .venv/bin/python bench/bench_diff.py --rows 100000      # quick structural run

Scenario: version A is a 1,000,000-row, 20-column Parquet file (an int64 key `id`, 9 float64,
5 int64, 2 low-cardinality strings, 1 unique string, 1 timestamp, 1 bool), written with
pyarrow's default writer settings. Version B is A with 1% of its rows changed (1 to 3 non-key
cells each), in the same order. `diff_tables(A, B, key="id")` runs in a fresh process, with
statistics and drift on (the defaults); the answer is checked against what the generator changed.

  time      wall seconds of diff_tables, median of --repeat fresh processes (CPU seconds are
            printed too: on a shared machine they vary less than wall time)
                                                    target: < 5 s
  memory    peak RSS of the process (VmHWM from /proc/self/status, read in the worker after
            the diff), against the in-memory Arrow size of one table (`Table.nbytes`, measured
            in another process)                     target: peak < 3 x data size

Peer, for scale (not a target): the usual ad-hoc diff with pandas - read both files, merge on
the key, compare every column - in its own fresh process, timed and measured the same way; and
mlark once more with `stats=False`, which computes what the peer computes (rows and columns).

Results go to stdout (a table, or JSON with --json) and to bench/.work/last_diff.json.
Exit status: 0 every target met, 1 a target missed, 3 a step failed (argparse usage errors are 2).

The orchestrating part uses only the standard library; the measuring parts run as workers
(`bench_diff.py --worker TASK ...`) under .venv/bin/python.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_PY = REPO_ROOT / ".venv" / "bin" / "python"
WORK_ROOT = BENCH_DIR / ".work"
RESULT_FILE = WORK_ROOT / "last_diff.json"
SEED = 20240705
#: Bump when the generated data changes: the cached files are rebuilt.
DATA_VERSION = "diff-v2"
TIME_TARGET_S = 5.0
MEMORY_TARGET_X = 3.0


class Status(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"


class ExitStatus(enum.IntEnum):
    OK = 0
    TARGET_MISSED = 1
    STEP_FAILED = 3


# -- workers (run under the measured interpreter) -------------------------------------------------------


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def worker_generate(folder: Path, rows: int, changed_share: float) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    cats = np.array(["red", "green", "blue", "yellow", "black", "white", "orange", "purple"])
    cols: dict[str, Any] = {"id": np.arange(rows, dtype=np.int64)}
    for i in range(9):
        cols[f"f{i}"] = rng.normal(size=rows)
    for i in range(5):
        cols[f"i{i}"] = rng.integers(0, 1000, size=rows)
    cols["color"] = pa.array(cats[rng.integers(0, 8, size=rows)])
    cols["segment"] = pa.array(cats[rng.integers(0, 4, size=rows)])
    cols["customer"] = pa.array([f"customer-{x:09d}" for x in rng.permutation(rows)])
    cols["seen_at"] = pa.array((np.int64(1_700_000_000_000_000) + rng.integers(0, 10**12, size=rows))
                               .astype("datetime64[us]"))
    cols["active"] = rng.random(rows) < 0.7
    table = pa.table(cols)
    assert table.num_columns == 20
    pq.write_table(table, folder / "a.parquet")

    changed = np.sort(rng.choice(rows, int(rows * changed_share), replace=False))
    editable = [n for n in table.column_names if n != "id"]
    per_column = {n: [] for n in editable}
    for r in changed.tolist():
        for n in rng.choice(editable, rng.integers(1, 4), replace=False).tolist():
            per_column[n].append(r)
    for n, idx in per_column.items():
        if not idx:
            continue
        idx_arr = np.asarray(idx)
        col = table.column(n).to_numpy(zero_copy_only=False).copy() if n not in ("color", "segment", "customer") \
            else np.asarray(table.column(n).to_pylist(), dtype=object)
        if n.startswith("f"):
            col[idx_arr] += 1.0
        elif n.startswith("i"):
            col[idx_arr] += 1
        elif n == "seen_at":
            col[idx_arr] += np.timedelta64(1, "s")
        elif n == "active":
            col[idx_arr] = ~col[idx_arr]
        else:
            col[idx_arr] = [f"{v}-edited" for v in col[idx_arr]]
        i = table.schema.get_field_index(n)
        table = table.set_column(i, table.schema.field(i), pa.array(col, type=table.schema.field(i).type))
    pq.write_table(table, folder / "b.parquet")
    shuffled = table.take(pa.array(rng.permutation(rows)))
    pq.write_table(shuffled, folder / "b_shuffled.parquet")
    del shuffled
    expected = {"changed": int(changed.size), "by_column": {n: len(v) for n, v in per_column.items() if v}}
    (folder / "expected.json").write_text(json.dumps(expected))
    return expected


def worker_size(path: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return {"rows": table.num_rows, "columns": table.num_columns, "arrow_bytes": int(table.nbytes),
            "file_bytes": path.stat().st_size}


def worker_mlark(a: Path, b: Path, stats: bool = True) -> dict[str, Any]:
    import numpy  # noqa: F401  (the libraries the diff loads, so the baseline RSS includes them)
    import pyarrow  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from mlark.diff import diff_tables

    before = _proc_status()
    cpu = _cpu_seconds()
    start = time.perf_counter()
    d = diff_tables(a, b, key="id", stats=stats)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    after = _proc_status()
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss": after["VmHWM"], "rss_before": before["VmRSS"],
            "changed": d.rows.changed, "added": d.rows.added, "removed": d.rows.removed,
            "by_column": d.rows.changed_by_column, "summary": d.summary()}


def worker_pandas(a: Path, b: Path) -> dict[str, Any]:
    import pandas as pd

    before = _proc_status()
    cpu = _cpu_seconds()
    start = time.perf_counter()
    da, db = pd.read_parquet(a), pd.read_parquet(b)
    merged = da.merge(db, on="id", how="outer", suffixes=("_a", "_b"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    by_column = {}
    any_change = None
    for col in da.columns:
        if col == "id":
            continue
        x, y = both[f"{col}_a"], both[f"{col}_b"]
        differ = (x != y) & ~(x.isna() & y.isna())
        by_column[col] = int(differ.sum())
        any_change = differ if any_change is None else (any_change | differ)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    after = _proc_status()
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss": after["VmHWM"], "rss_before": before["VmRSS"],
            "changed": int(any_change.sum()), "by_column": {k: v for k, v in by_column.items() if v}}


WORKERS = {"generate": worker_generate, "size": worker_size, "mlark": worker_mlark, "pandas": worker_pandas}


def run_worker(argv: list[str]) -> int:
    task, args = argv[0], argv[1:]
    if task == "generate":
        result = worker_generate(Path(args[0]), int(args[1]), float(args[2]))
    elif task == "size":
        result = worker_size(Path(args[0]))
    elif task == "mlark-nostats":
        result = worker_mlark(Path(args[0]), Path(args[1]), stats=False)
    else:
        result = WORKERS[task](Path(args[0]), Path(args[1]))
    print(json.dumps(result))
    return 0


# -- orchestration (standard library only) ----------------------------------------------------------------


class StepFailed(Exception):
    pass


def call(python: Path, *args: str, timeout: float = 1800) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([str(python), str(Path(__file__).resolve()), "--worker", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO_ROOT)
    if proc.returncode != 0:
        raise StepFailed(f"worker {args[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per table (default 1,000,000)")
    parser.add_argument("--changed", type=float, default=0.01, help="share of rows changed (default 0.01)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs of the diff (default 3)")
    parser.add_argument("--no-peer", action="store_true", help="skip the pandas reference")
    parser.add_argument("--shuffled", action="store_true",
                        help="also diff against B with its rows in random order (informational)")
    parser.add_argument("--python", type=Path, default=DEFAULT_PY, help="interpreter with mlark (default .venv)")
    parser.add_argument("--work", type=Path, default=WORK_ROOT, help="where the data is made (default bench/.work)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args.worker)
    if args.rows < 1000 or not 0 < args.changed < 1 or args.repeat < 1:
        parser.error("--rows must be >= 1000, --changed in (0, 1), --repeat >= 1")

    folder = args.work / "diff" / f"{DATA_VERSION}-{args.rows}-{args.changed}"
    try:
        if not (folder / "expected.json").exists():
            folder.mkdir(parents=True, exist_ok=True)
            print(f"generating {args.rows:,} x 20 in {folder} ...", file=sys.stderr)
            call(args.python, "generate", str(folder), str(args.rows), str(args.changed))
        expected = json.loads((folder / "expected.json").read_text())
        a, b = folder / "a.parquet", folder / "b.parquet"
        size = call(args.python, "size", str(a))
        load_before = os.getloadavg()[0]
        runs = [call(args.python, "mlark", str(a), str(b)) for _ in range(args.repeat)]
        lean = None if args.no_peer else call(args.python, "mlark-nostats", str(a), str(b))
        peer = None if args.no_peer else call(args.python, "pandas", str(a), str(b))
        shuffled = call(args.python, "mlark", str(a), str(folder / "b_shuffled.parquet")) if args.shuffled else None
        load_after = os.getloadavg()[0]
    except (StepFailed, subprocess.TimeoutExpired, OSError, json.JSONDecodeError) as exc:
        print(f"bench_diff: {exc}", file=sys.stderr)
        return ExitStatus.STEP_FAILED

    correct = all(r["changed"] == expected["changed"] and r["by_column"] == expected["by_column"]
                  and r["added"] == 0 and r["removed"] == 0 for r in runs + ([shuffled] if shuffled else []))
    seconds = statistics.median(r["seconds"] for r in runs)
    peak = max(r["peak_rss"] for r in runs)
    base = min(r["rss_before"] for r in runs)
    data = size["arrow_bytes"]
    time_status = Status.PASS if seconds < TIME_TARGET_S else Status.FAIL
    memory_status = Status.PASS if peak < MEMORY_TARGET_X * data else Status.FAIL
    check_status = Status.PASS if correct else Status.FAIL
    doc: dict[str, Any] = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average": [load_before, load_after]},
        "data": {**size, "changed_rows": expected["changed"], "folder": str(folder)},
        "mlark": {"runs": runs, "median_seconds": seconds, "peak_rss": peak, "rss_after_imports": base},
        "mlark_without_stats": lean,
        "mlark_shuffled": shuffled,
        "peer_pandas": peer,
        "targets": {
            "time": {"value": seconds, "target": f"< {TIME_TARGET_S} s", "status": time_status.value},
            "memory": {"value": peak / data, "target": f"peak RSS < {MEMORY_TARGET_X} x data", "status":
                       memory_status.value},
            "answer": {"value": correct, "target": "counts match what was changed", "status": check_status.value},
        },
    }
    overall = Status.PASS if {time_status, memory_status, check_status} == {Status.PASS} else Status.FAIL
    doc["overall"] = overall.value
    RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(doc, indent=2))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"table diff: {size['rows']:,} rows x {size['columns']} columns, {expected['changed']:,} rows changed "
              f"({args.changed:.0%}); Parquet {mib(size['file_bytes'])} per file, in Arrow {mib(data)} per table")
        cpu = statistics.median(r["cpu_seconds"] for r in runs)
        print(f"  {'':22} {'seconds':>9} {'cpu s':>6} {'peak RSS':>11} {'x data':>7} {'RSS after imports':>18}")
        print(f"  {'mlark diff_tables':22} {seconds:9.2f} {cpu:6.2f} {mib(peak):>11} {peak / data:7.2f} {mib(base):>18}"
              f"   (median of {len(runs)}: {', '.join(format(r['seconds'], '.2f') for r in runs)})")
        if lean:
            print(f"  {'  same, stats=False':22} {lean['seconds']:9.2f} {lean['cpu_seconds']:6.2f} "
                  f"{mib(lean['peak_rss']):>11} "
                  f"{lean['peak_rss'] / data:7.2f} {mib(lean['rss_before']):>18}"
                  "   (rows and columns only, like the peer)")
        if shuffled:
            print(f"  {'  same, B shuffled':22} {shuffled['seconds']:9.2f} {shuffled['cpu_seconds']:6.2f} "
                  f"{mib(shuffled['peak_rss']):>11} "
                  f"{shuffled['peak_rss'] / data:7.2f} {mib(shuffled['rss_before']):>18}"
                  "   (rows of B in random order)")
        if peer:
            print(f"  {'pandas merge+compare':22} {peer['seconds']:9.2f} {peer['cpu_seconds']:6.2f} "
                  f"{mib(peer['peak_rss']):>11} "
                  f"{peer['peak_rss'] / data:7.2f} {mib(peer['rss_before']):>18}"
                  f"   (time ratio pandas/mlark {peer['seconds'] / seconds:.2f} with stats, "
                  f"{peer['seconds'] / lean['seconds']:.2f} without; memory ratio {peer['peak_rss'] / peak:.2f})")
        print(f"  {time_status.value}  time {seconds:.2f} s < {TIME_TARGET_S} s")
        print(f"  {memory_status.value}  peak memory {peak / data:.2f} x data < {MEMORY_TARGET_X} x "
              f"(the diff itself, above the interpreter and libraries: {(peak - base) / data:.2f} x)")
        print(f"  {check_status.value}  answer: {runs[0]['summary']}")
        print(f"overall: {overall.value}   (load average {load_before:.1f} before, {load_after:.1f} after, "
              f"{os.cpu_count()} CPUs)")
    return ExitStatus.OK if overall is Status.PASS else ExitStatus.TARGET_MISSED


if __name__ == "__main__":
    sys.exit(main())
