"""Demo steps for diffs, the model registry and lineage: compare the data versions, register a model
trained on the pinned data, serve it from the registry, and trace what it depends on."""

from __future__ import annotations

from mlark.demo.context import DemoContext, step
from mlark.demo.data import ARTIFACT
from mlark.demo.tracking import PROJECT, _frames

MODEL = "digits"
MODEL_ARTIFACT = "digits-forest"


@step("Diff the two data versions")
def diff_versions(ctx: DemoContext) -> None:
    import mlark

    d = mlark.diff(f"{ARTIFACT}:v1", f"{ARTIFACT}:v2", table="train/labels.csv", key="sample_id", repo=ctx.repo)
    ctx.out.command(f"mlark diff {ARTIFACT}:v1 {ARTIFACT}:v2 --table train/labels.csv --key sample_id")
    doc = d.to_dict()
    files = doc["files"]
    table = doc["tables"]["train/labels.csv"]
    rows = table["rows"]
    ctx.out.say(d.summary())
    ctx.out.table("train/labels.csv, by key sample_id", ["rows added", "rows removed", "rows changed", "columns changed"],
                  [[str(rows["added"]), str(rows["removed"]), str(rows["changed"]),
                    ", ".join(sorted(rows.get("changed_by_column", {})))]])
    ctx.require("the diff finds the 27 relabelled rows and the 100 appended ones",
                rows["changed"] == 27 and rows["added"] == 100 and rows["removed"] == 0,
                f"changed {rows['changed']}, added {rows['added']}")
    ctx.summary["diff"] = {"files_modified": len(files.get("modified", [])), "rows": rows}


@step("Register a model and promote it to production")
def register_model(ctx: DemoContext) -> None:
    import mlark
    from sklearn.ensemble import RandomForestClassifier

    with mlark.start_run(project=PROJECT, name="forest-for-production", repo=ctx.repo,
                         params={"n_estimators": 100, "max_depth": 12, "random_state": 7}) as run:
        data = run.use(f"{ARTIFACT}@best")
        X, y = _frames(data, "train")
        X_test, y_test = _frames(data, "test")
        forest = RandomForestClassifier(n_estimators=100, max_depth=12, random_state=7).fit(X, y)
        logged_accuracy = forest.score(X_test, y_test)
        run.log({"test_accuracy": logged_accuracy}, step=0)
        version = run.log_model(forest, name=MODEL_ARTIFACT, input_example=X.head(5),
                                message="Random forest on the pinned digits data")
    ctx.out.command(f'run.log_model(forest, name="{MODEL_ARTIFACT}", input_example=X.head(5))')
    number = mlark.registry.register(MODEL, version.ref, message="First candidate for digit recognition",
                                     repo=ctx.repo)
    mlark.registry.promote(MODEL, number, "production",
                           message=f"{logged_accuracy:.1%} test accuracy on the pinned data", repo=ctx.repo)
    ctx.out.command(f'mlark models register {MODEL} {version.ref} -m "First candidate ..." && '
                    f'mlark models promote {MODEL} {number} production -m "..."')
    served = mlark.load_model(f"models:/{MODEL}@production", repo=ctx.repo)
    predicted = served.predict(X_test)
    accuracy = float((predicted == y_test.to_numpy()).mean())
    ctx.out.say(f"models:/{MODEL}@production is {version.ref}; loaded back through the registry (every file's "
                f"digest checked, the input checked against the signature) it scores {accuracy:.4f} on the "
                "test split, the same as the forest that was logged.")
    events = mlark.registry.history(MODEL, repo=ctx.repo)
    ctx.out.table(f"history of {MODEL}", ["what", "from", "to", "why"],
                  [[e.kind + (f" {e.field}" if e.field else ""), str(e.from_value or "-"), str(e.to_value or "-"),
                    e.message] for e in events])
    ctx.require("the production model predicts like the logged one",
                abs(accuracy - logged_accuracy) < 1e-12)
    ctx.state.update(production_ref=version.ref, production_forest=forest, test_split=(X_test, y_test))
    ctx.summary["registry"] = {"model": MODEL, "version": number, "artifact": version.ref,
                               "stage": "production", "test_accuracy": accuracy}


@step("Trace lineage and impact")
def trace(ctx: DemoContext) -> None:
    import mlark

    graph = mlark.lineage(f"models:/{MODEL}@production", direction="up", repo=ctx.repo)
    ctx.out.command(f"mlark lineage models:/{MODEL}@production --up")
    order = [n.label for n in graph.topological()]
    ctx.out.say("Upstream, dependencies first: " + "  ->  ".join(order))
    report = mlark.impact(f"{ARTIFACT}:v1", repo=ctx.repo)
    ctx.out.command(f"mlark impact {ARTIFACT}:v1")
    hits = [h.ref for h in report.aliases]
    ctx.out.say(f"If a bug is found in {ARTIFACT}:v1, these names depend on it: {', '.join(hits)}.")
    ctx.require(f"the production model traces back to {ARTIFACT}:v1",
                any(n.ref == f"{ARTIFACT}:v1" for n in graph.topological()))
    ctx.require(f"impact of {ARTIFACT}:v1 reaches models:/{MODEL}@production",
                f"models:/{MODEL}@production" in hits)
    ctx.summary["lineage"] = {"upstream": order, "impact": hits, "mermaid_lines": len(graph.to_mermaid().splitlines())}


STEPS = (diff_versions, register_model, trace)
