#!/usr/bin/env python3
"""Lineage benchmark: a full upstream walk and an impact query on a 100,000-node lineage graph.

Usage (from the repository root, with mlark installed in .venv):

    .venv/bin/python bench/bench_lineage.py                         # 100,000 nodes, SQLite
    .venv/bin/python bench/bench_lineage.py --nodes 10000           # quick structural run
    .venv/bin/python bench/bench_lineage.py --database postgresql+psycopg://user@host/db   # an EMPTY database

Scenario. A repository is made and its tables are filled directly (one bulk insert per table;
building 100,000 nodes through runs would take hours and measure something else): a history of
training pipelines in which every run uses the newest version so far plus 0 to 2 older ones
(chosen at random from the whole history) and produces 1 or 2 versions; every 25th run produces
a model version, half of which are registered (5 registered models: the newest version of each in
production, aliases champion and challenger, older ones staging or archived); every 200th step a
version is derived from an older one by hand (a ``derived_from`` edge). Versions belong to 40
data sets and 10 model artifacts. Because each run uses the previous newest version, the graph is
one long chain with random fan-in: the upstream of the last version, and the downstream of the
first, is nearly the whole graph. That is the worst case for both queries.

Measured (wall seconds, median of --repeat):

  upstream walk   mlark.ops.lineage.lineage(repo, LEAF, "up"): the LineageGraph of everything the
                  newest version was made from: every node and edge found, and everything live
                  about them read (run names and status, aliases, stages, removals) in one
                  transaction; Node and Edge values are built when first used, which is timed
                  apart ("then every Node and Edge built")        target: < 1 s
  impact query    mlark.ops.lineage.impact(repo, ROOT) and its answer: the production stages and
                  aliases, every registered model version and every alias that depends on the
                  first version (report.production, .model_versions, .aliases)
                                                                target: < 1 s

each in two states: "warm", a process that has not read the index yet (the saved index file is
read and checked against the database; what a CLI call pays), and "hot", a process that already
holds it (a notebook, a server). Reported without a target: "cold" (no index file: the first
query after a clone, which reads the whole edge table), the update after one more run, the
topological order and the exports of the whole upstream graph, the acyclicity check of an edge
that would close a cycle through the whole graph, and - for comparison - the same upstream walk
as one recursive SQL query (ids only), the approach this index replaced.

Every walk is checked against the generator's own graph (node counts) and against the SQL walk.
Results go to stdout (a table, or JSON with --json) and to bench/.work/last_lineage.json.
Exit status: 0 every target met, 1 a target missed, 3 a step failed (argparse usage errors are 2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
WORK_ROOT = BENCH_DIR / ".work"
RESULT_FILE = WORK_ROOT / "last_lineage.json"
SEED = 20240511
TARGET_S = 1.0
MODELS = ("churn", "fraud", "ltv", "upsell", "support")


# --------------------------------------------------------------------------- the graph


def generate(n_nodes: int, seed: int) -> dict[str, Any]:
    """Rows for artifacts, versions, runs, registered models and lineage edges (about ``n_nodes`` nodes)."""
    from mlark.core.ids import new_id

    rng = random.Random(seed)
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    tick = [0]

    def now() -> datetime:
        tick[0] += 1
        return t0 + timedelta(seconds=tick[0])

    artifacts = [{"id": new_id(), "name": f"data-{i:02d}", "type": "dataset"} for i in range(40)]
    artifacts += [{"id": new_id(), "name": f"model-{i}", "type": "model"} for i in range(10)]
    next_number = [1] * len(artifacts)
    versions: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    rmvs: list[dict[str, Any]] = []
    model_rows = [{"id": new_id(), "name": m} for m in MODELS]
    model_next = [1] * len(MODELS)

    def version(art: int) -> str:
        vid = new_id()
        versions.append({"id": vid, "artifact_id": artifacts[art]["id"], "number": next_number[art],
                         "created_at": now(), "digest": f"{len(versions):064x}"})
        next_number[art] += 1
        return vid

    def edge(kind: str, st: str, s: str, dt: str, d: str) -> None:
        edges.append({"id": new_id(), "kind": kind, "src_type": st, "src_id": s, "dst_type": dt, "dst_id": d,
                      "created_at": now()})

    history = [version(0)]  # data-00:v1, the raw data every later version descends from
    root = history[0]
    step = 0
    while len(versions) + len(runs) + len(rmvs) < n_nodes:
        step += 1
        if step % 200 == 0:  # a hand-made fix of an older version
            parent = history[rng.randrange(len(history))]
            child = version(rng.randrange(40))
            edge("derived_from", "version", parent, "version", child)
            history.append(child)
            continue
        run_id = new_id()
        runs.append({"id": run_id, "name": f"step-{step}", "start": now()})
        inputs = {history[-1]} | {history[rng.randrange(len(history))] for _ in range(rng.randint(0, 2))}
        for v in sorted(inputs):
            edge("used", "version", v, "run", run_id)
        if step % 25 == 0:
            art = 40 + rng.randrange(10)
            out = version(art)
            edge("produced", "run", run_id, "version", out)
            history.append(out)
            if step % 50 == 0:
                m = rng.randrange(len(MODELS))
                rid = new_id()
                rmvs.append({"id": rid, "model_id": model_rows[m]["id"], "number": model_next[m], "version_id": out,
                             "run_id": run_id, "model": m})
                model_next[m] += 1
                edge("registered_as", "version", out, "registered_model_version", rid)
        else:
            for _ in range(rng.randint(1, 2)):
                out = version(rng.randrange(40))
                edge("produced", "run", run_id, "version", out)
                history.append(out)
    leaf = history[-1]
    return {"artifacts": artifacts, "next_number": next_number, "versions": versions, "runs": runs, "edges": edges,
            "models": model_rows, "rmvs": rmvs, "root": root, "leaf": leaf}


def insert(repo: Any, g: dict[str, Any]) -> None:
    """Bulk-insert the generated rows in one write transaction."""
    from mlark.meta.schema import (
        aliases,
        artifacts,
        lineage_edges,
        registered_model_aliases,
        registered_model_versions,
        registered_models,
        runs,
        versions,
    )

    t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    last_of: dict[str, str] = {}
    for v in g["versions"]:
        last_of[v["artifact_id"]] = v["id"]
    stages: dict[str, str] = {}
    model_aliases: list[dict[str, Any]] = []
    by_model: dict[int, list[dict[str, Any]]] = {}
    for r in g["rmvs"]:
        by_model.setdefault(r["model"], []).append(r)
    for m, items in by_model.items():
        for k, r in enumerate(items):
            stages[r["id"]] = ("production" if k == len(items) - 1 else "staging" if k == len(items) - 2
                               else "archived")
        model_aliases.append({"model_id": g["models"][m]["id"], "alias": "champion", "rmv_id": items[-1]["id"],
                              "updated_at": t})
        if len(items) > 1:
            model_aliases.append({"model_id": g["models"][m]["id"], "alias": "challenger", "rmv_id": items[-2]["id"],
                                  "updated_at": t})
    with repo.db.write() as conn:
        conn.execute(artifacts.insert(), [
            {"id": a["id"], "name": a["name"], "type": a["type"], "created_at": t, "created_by": "bench",
             "next_number": g["next_number"][i]} for i, a in enumerate(g["artifacts"])])
        conn.execute(versions.insert(), [
            {"id": v["id"], "artifact_id": v["artifact_id"], "number": v["number"], "digest": v["digest"],
             "message": "bench", "author": "bench", "created_at": v["created_at"], "metadata": {}, "tags": [],
             "parent_id": None, "size": 1, "new_bytes": 1, "file_count": 1} for v in g["versions"]])
        conn.execute(aliases.insert(), [
            {"artifact_id": art, "name": "latest", "version_id": vid, "updated_at": t} for art, vid in last_of.items()])
        conn.execute(runs.insert(), [
            {"id": r["id"], "project": "bench", "name": r["name"], "status": "finished", "parent_id": None,
             "start_time": r["start"], "end_time": r["start"], "heartbeat_at": r["start"], "summary": {}}
            for r in g["runs"]])
        conn.execute(registered_models.insert(), [
            {"id": m["id"], "name": m["name"], "description": None, "tags": {}, "created_at": t, "created_by": "bench",
             "next_number": 1 + sum(1 for r in g["rmvs"] if r["model_id"] == m["id"])} for m in g["models"]])
        if g["rmvs"]:
            conn.execute(registered_model_versions.insert(), [
                {"id": r["id"], "model_id": r["model_id"], "number": r["number"], "version_id": r["version_id"],
                 "stage": stages[r["id"]], "stage_changed_at": t, "description": None, "tags": {}, "created_at": t,
                 "created_by": "bench", "source_run_id": r["run_id"]} for r in g["rmvs"]])
            conn.execute(registered_model_aliases.insert(), model_aliases)
        conn.execute(lineage_edges.insert(), g["edges"])


def expected_counts(g: dict[str, Any]) -> tuple[int, int]:
    """(nodes upstream of the leaf, nodes downstream of the root), both including the start, from the rows."""
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for e in g["edges"]:
        up.setdefault(e["dst_id"], []).append(e["src_id"])
        down.setdefault(e["src_id"], []).append(e["dst_id"])

    def reach(start: str, adj: dict[str, list[str]]) -> int:
        seen = {start}
        stack = [start]
        while stack:
            for v in adj.get(stack.pop(), ()):
                if v not in seen:
                    seen.add(v)
                    stack.append(v)
        return len(seen)

    return reach(g["leaf"], up), reach(g["root"], down)


# --------------------------------------------------------------------------- timing


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


_cpu: list[float] = []  # CPU seconds of the last median_of, per run


def median_of(repeat: int, fn: Callable[[], Any], before: Callable[[], None] | None = None) -> tuple[float, list[float], Any]:
    """Median wall seconds of ``repeat`` calls (``before`` runs untimed before each); CPU seconds go to ``_cpu``."""
    times: list[float] = []
    value = None
    _cpu.clear()
    for _ in range(repeat):
        if before is not None:
            before()
        cpu = time.process_time()
        seconds, value = timed(fn)
        _cpu.append(time.process_time() - cpu)
        times.append(seconds)
    return statistics.median(times), times, value


def entry(median: float, times: list[float] | None = None, target: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"median_s": median, "cpu_median_s": statistics.median(_cpu) if _cpu else None}
    if times is not None:
        out["runs_s"] = times
    if target is not None:
        out["target_s"] = target
    return out


def sql_upstream_ids(repo: Any, leaf: str) -> set[str]:
    from mlark.lineage import rawsql

    query = ("WITH RECURSIVE walk(id) AS (SELECT CAST(? AS VARCHAR(36)) UNION SELECT e.src_id FROM lineage_edges e "
             "JOIN walk w ON e.dst_id = w.id) SELECT id FROM walk")
    with repo.db.read() as conn:
        return {r[0] for r in rawsql.rows(conn, query, (leaf,))}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from mlark.lineage import edges, index
    from mlark.ops import lineage as ops
    from mlark.ops.repo import Repo

    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="lineage-", dir=WORK_ROOT))
    result: dict[str, Any] = {"nodes_requested": args.nodes, "seed": args.seed, "repeat": args.repeat}
    try:
        repo = Repo.init(folder / "repo", database=args.database, author="bench")
        result["database"] = repo.db.engine.dialect.name
        seconds, g = timed(lambda: generate(args.nodes, args.seed))
        result["generate_s"] = seconds
        seconds, _ = timed(lambda: insert(repo, g))
        result["insert_s"] = seconds
        result["graph"] = {"nodes": len(g["versions"]) + len(g["runs"]) + len(g["rmvs"]), "versions": len(g["versions"]),
                           "runs": len(g["runs"]), "registered_model_versions": len(g["rmvs"]), "edges": len(g["edges"])}
        want_up, want_down = expected_counts(g)
        leaf_ref = _ref(repo, g["leaf"])
        root_ref = _ref(repo, g["root"])
        result["leaf"], result["root"] = leaf_ref, root_ref
        idx_file = ops.index_path(repo)

        def cold() -> None:
            index.forget()
            idx_file.unlink(missing_ok=True)

        timings: dict[str, Any] = {}
        t, _, graph = median_of(1, lambda: ops.lineage(repo, leaf_ref, "up"), before=cold)
        timings["upstream walk, cold (index built from the table)"] = entry(t)
        assert len(graph) == want_up, (len(graph), want_up)
        t, times, graph = median_of(args.repeat, lambda: ops.lineage(repo, leaf_ref, "up"), before=index.forget)
        timings["upstream walk, warm"] = entry(t, times, TARGET_S)
        assert len(graph) == want_up
        t, times, graph = median_of(args.repeat, lambda: ops.lineage(repo, leaf_ref, "up"))
        timings["upstream walk, hot"] = entry(t, times, TARGET_S)
        def build_all() -> Any:
            fresh = ops.lineage(repo, leaf_ref, "up")
            return len(fresh.nodes) + len(fresh.edges)

        t, times, _ = median_of(args.repeat, build_all)
        timings["upstream walk, hot, then every Node and Edge built"] = entry(t, times)

        def impact() -> Any:
            found = ops.impact(repo, root_ref)
            return found, found.production, found.model_versions, found.aliases

        t, times, (report, *_) = median_of(args.repeat, impact, before=index.forget)
        timings["impact query, warm"] = entry(t, times, TARGET_S)
        assert len(report.graph) == want_down, (len(report.graph), want_down)
        t, times, (report, *_) = median_of(args.repeat, impact)
        timings["impact query, hot"] = entry(t, times, TARGET_S)
        t, times, _ = median_of(1, report.to_dict)
        timings["impact report as JSON (to_dict: every node, edge and path)"] = entry(t, times)
        result["upstream_nodes"], result["upstream_edges"] = len(graph), len(graph.edges)
        result["impact"] = {"runs": len(report.runs), "versions": len(report.versions),
                            "registered_model_versions": len(report.model_versions),
                            "production": [h.ref for h in report.production]}
        if not report.production:
            raise AssertionError("the impact report found no production model downstream of the root")

        graph = ops.lineage(repo, leaf_ref, "up")
        t, _, order = median_of(args.repeat, graph.topological)
        timings["topological order of the upstream graph"] = entry(t)
        position = {n.id: i for i, n in enumerate(order)}
        assert all(position[e.source] < position[e.target] for e in graph.edges)
        timings["Mermaid export of the upstream graph"] = entry(median_of(1, graph.to_mermaid)[0])
        timings["DOT export of the upstream graph"] = entry(median_of(1, graph.to_dot)[0])
        timings["JSON (to_dict) of the upstream graph"] = entry(median_of(1, graph.to_dict)[0])
        depth3 = ops.lineage(repo, leaf_ref, "up", depth=3)
        result["upstream_nodes_depth_3"] = len(depth3)

        from mlark.core.ids import new_id

        run_id, out_id = new_id(), new_id()
        stamp = datetime.now(timezone.utc)

        def one_more_run(conn: Any) -> None:
            edges.record_used(conn, g["leaf"], run_id, now=stamp)
            edges.record_produced(conn, run_id, out_id, now=stamp)

        t, _, _ = median_of(1, lambda: repo.db.run_write(one_more_run))
        timings["recording a run's 2 edges (with the acyclicity checks)"] = entry(t)
        t, _, grown = median_of(1, lambda: ops.lineage(repo, leaf_ref, "down"))
        timings["next query after one more run (index updated, hot)"] = entry(t)
        assert len(grown) == 3

        def refused(conn: Any) -> None:
            edges.record_derived(conn, g["leaf"], g["root"], now=stamp, message="bench", author="bench")

        def refuse() -> Any:
            try:
                repo.db.run_write(refused)
            except edges.CycleRefused as exc:
                return exc
            raise AssertionError("an edge closing a cycle was accepted")

        t, _, exc = median_of(1, refuse)
        timings["refusing an edge that closes a cycle through the whole graph"] = {
            **entry(t), "cycle_length": len(exc.fields["cycle_ids"]) - 1}
        t, _, ids = median_of(1, lambda: sql_upstream_ids(repo, g["leaf"]))
        timings["for comparison: the upstream walk as one recursive SQL query (ids only)"] = entry(t)
        assert ids == {n.id for n in graph.nodes}
        result["index_file_bytes"] = idx_file.stat().st_size
        result["timings"] = timings
        repo.close()
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return result


def _ref(repo: Any, version_id: str) -> str:
    from mlark.meta import catalog

    with repo.db.read() as conn:
        return catalog.version_by_id(conn, version_id).ref


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000, help="graph size (default 100,000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timed query (median reported)")
    parser.add_argument("--database", metavar="URL", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the repository in bench/.work/")
    args = parser.parse_args()
    try:
        result = run(args)
    except Exception as exc:  # a failed step: nothing to compare
        import traceback

        traceback.print_exc()
        print(f"bench_lineage: failed: {exc}", file=sys.stderr)
        return 3
    result["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                         "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]}
    result["at"] = datetime.now(timezone.utc).isoformat()
    ok = all(v["median_s"] < v["target_s"] for v in result["timings"].values() if "target_s" in v)
    result["status"] = "PASS" if ok else "FAIL"
    RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        gr = result["graph"]
        print(f"lineage benchmark on {result['database']}: {gr['nodes']:,} nodes ({gr['versions']:,} versions, "
              f"{gr['runs']:,} runs, {gr['registered_model_versions']:,} registered model versions), "
              f"{gr['edges']:,} edges")
        print(f"  upstream of {result['leaf']}: {result['upstream_nodes']:,} nodes, {result['upstream_edges']:,} edges; "
              f"impact of {result['root']}: {result['impact']['runs']:,} runs, {result['impact']['versions']:,} versions, "
              f"{result['impact']['registered_model_versions']:,} registered model versions "
              f"(production: {', '.join(result['impact']['production'])})")
        print(f"  built in {result['generate_s']:.1f} s, inserted in {result['insert_s']:.1f} s; "
              f"index file {result['index_file_bytes'] / 2**20:.1f} MiB")
        print()
        width = max(len(k) for k in result["timings"])
        for name, v in result["timings"].items():
            verdict = ""
            if "target_s" in v:
                verdict = f"  {'PASS' if v['median_s'] < v['target_s'] else 'FAIL'} (< {v['target_s']:g} s)"
            cpu = f"  (CPU {v['cpu_median_s']:.3f} s)" if v.get("cpu_median_s") is not None else ""
            print(f"  {name.ljust(width)}  {v['median_s']:8.3f} s{cpu}{verdict}")
        print()
        print(f"  {result['status']}")
        load = result["machine"]["load_1min"]
        if load > (os.cpu_count() or 1) / 2:
            print(f"  warning: the 1-minute load average was {load:.1f} on {os.cpu_count()} cores; "
                  "figures from a busy machine are not figures to publish")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
