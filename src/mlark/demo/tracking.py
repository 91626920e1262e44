"""Demo steps for experiment tracking: train on each data version in a tracked run, then query,
compare and trace the runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlark.demo.context import DemoContext, step
from mlark.demo.data import ARTIFACT

PROJECT = "digits"
TREES = range(10, 101, 10)  # the forest grows by 10 trees per step; each step logs its accuracy


def _frames(folder: Path, split: str) -> tuple[Any, Any]:
    import pandas as pd

    features = pd.read_csv(folder / split / "features.csv").set_index("sample_id")
    labels = pd.read_csv(folder / split / "labels.csv").set_index("sample_id")["label"]
    return features, labels.loc[features.index]


def _train(ctx: DemoContext, ref: str, name: str) -> dict[str, Any]:
    import mlark
    from sklearn.ensemble import RandomForestClassifier

    params = {"n_estimators": TREES[-1], "max_depth": 12, "random_state": 7, "data": ref}
    with mlark.start_run(project=PROJECT, name=name, params=params, repo=ctx.repo) as run:
        data = run.use(ref)  # records exactly which version was used; returns a verified local copy
        X, y = _frames(data, "train")
        X_test, y_test = _frames(data, "test")
        forest = RandomForestClassifier(n_estimators=0, max_depth=12, random_state=7, warm_start=True)
        for step_number, trees in enumerate(TREES):
            forest.set_params(n_estimators=trees)
            forest.fit(X, y)
            run.log({"train_accuracy": forest.score(X, y), "test_accuracy": forest.score(X_test, y_test)},
                    step=step_number)
        run.summary["trees"] = trees
        run_id = run.id
    done = mlark.get_run(run_id, repo=ctx.repo)
    return {"id": done.id, "name": done.name, "status": done.status, "data": ref,
            "test_accuracy": done.metrics["test_accuracy"],
            "points": len(done.history("test_accuracy").steps)}


@step("Train on each data version in a tracked run")
def train_runs(ctx: DemoContext) -> None:
    ctx.out.say("Two runs train the same random forest, one on the pinned data (best = v1) and one on the "
                "relabelled v2. Each run records its params, the exact data version it used (run.use), "
                "the test accuracy as the forest grows, and the code and environment it ran in.")
    ctx.out.command(f'with mlark.start_run(project="{PROJECT}", params=...) as run: '
                    f'data = run.use("{ARTIFACT}@best"); ...; run.log({{"test_accuracy": acc}}, step=i)')
    runs = [_train(ctx, f"{ARTIFACT}:v1", "forest-on-v1"), _train(ctx, f"{ARTIFACT}:v2", "forest-on-v2")]
    ctx.state["runs"] = runs
    ctx.out.table("tracked runs", ["run", "id", "data", "status", "test accuracy", "points logged"],
                  [[r["name"], r["id"][:13], r["data"], r["status"], f"{r['test_accuracy']:.4f}",
                    str(r["points"])] for r in runs])
    ctx.require("both runs finished and logged every step",
                all(r["status"] == "finished" and r["points"] == len(TREES) for r in runs))
    ctx.summary["runs"] = runs


@step("Query, compare and trace the runs")
def query_runs(ctx: DemoContext) -> None:
    import mlark
    from mlark.tracking.compare import compare_runs, load_compared_runs

    best = mlark.runs(PROJECT, filter="params.max_depth >= 8 and metrics.test_accuracy > 0.5",
                      order_by="metrics.test_accuracy desc", limit=10, repo=ctx.repo)
    ctx.out.command(f'mlark runs ls {PROJECT} --filter "params.max_depth >= 8 and metrics.test_accuracy > 0.5" '
                    '--order-by "metrics.test_accuracy desc"')
    ctx.out.table("runs, best first", ["run", "data", "test accuracy"],
                  [[r.name, str(r.params["data"]), f"{r.metrics['test_accuracy']:.4f}"] for r in best])
    ids = [r["id"] for r in ctx.state["runs"]]
    with ctx.repo.db.read() as conn:
        comparison = compare_runs(load_compared_runs(conn, ids), only_differences=True)
    doc = comparison.to_dict()
    ctx.out.command(f"mlark runs compare {ids[0][:13]} {ids[1][:13]} --only-diff")
    rows = [[row["key"], *(str(v) for v in row["values"])] for row in doc.get("params", [])]
    rows += [[f"{row['key']} ({row['aggregate']})",
              *(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row["values"])]
             for row in doc.get("metrics", [])]
    ctx.out.table("what differs between the two runs", ["", "forest-on-v1", "forest-on-v2"], rows)
    users = ctx.repo.runs_using(f"{ARTIFACT}:v1")
    ctx.out.say(f"Lineage, both ways: {ARTIFACT}:v1 was used by "
                + ", ".join(r.name for r in users) + "; ask any run which data it trained on and get the "
                "exact version back.")
    ctx.require("the query found both runs, best first",
                len(best) == 2 and best[0].metrics["test_accuracy"] >= best[1].metrics["test_accuracy"])
    ctx.require(f"lineage: {ARTIFACT}:v1 is recorded as the input of forest-on-v1",
                [r.name for r in users] == ["forest-on-v1"])
    ctx.summary["query"] = {"best": best[0].name, "ranked": [r.name for r in best],
                            "used_v1": [r.name for r in users]}


STEPS = (train_runs, query_runs)
