"""The lineage tests' pipeline, made by real runs and registered in the model registry.

The pipeline (edges point from what was used to what was made)::

    churn-data:v1 --used--> run featurize --produced--> churn-features:v1
    churn-data:v1 --used--> run rf-depth-8 <--used-- churn-features:v1
    churn-features:v1 --used--> run rf-depth-3
    run rf-depth-8 --produced--> churn-rf:v1 (@best) --registered_as--> models:/churn/1 [production, champion]
    run rf-depth-3 --produced--> churn-rf:v2          --registered_as--> models:/churn/2 [staging]
    churn-data:v2 (@latest): a newer export nothing used
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlark
from mlark.ops import registry
from mlark.ops.repo import Repo
from mlark.tracking.capture import Capture

QUIET = Capture.none()


@dataclass
class Churn:
    repo: Repo
    root: Path
    versions: dict[str, Any] = field(default_factory=dict)  # ref -> Version
    runs: dict[str, Any] = field(default_factory=dict)  # name -> Run

    def vid(self, ref: str) -> str:
        return self.versions[ref].id

    def rid(self, name: str) -> str:
        return self.runs[name].id


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def build_churn(repo: Repo, root: Path) -> Churn:
    c = Churn(repo, root)
    data = write_folder(root / "export", {"train.csv": "tenure,churned\n1,1\n40,0\n3,1\n"})
    c.versions["churn-data:v1"] = repo.add(data, name="churn-data", type="dataset", message="May export of customers")
    with mlark.start_run("churn", "featurize", repo=repo, capture=QUIET) as run:
        folder = run.use("churn-data:v1")
        rows = (folder / "train.csv").read_text().splitlines()
        features = write_folder(root / "features", {"features.csv": "\n".join(rows + ["# bucketed"]) + "\n"})
        c.versions["churn-features:v1"] = run.log_artifact(features, name="churn-features", type="dataset",
                                                           message="Tenure buckets")
    c.runs["featurize"] = run
    for depth, inputs in ((8, ("churn-features:v1", "churn-data:v1")), (3, ("churn-features:v1",))):
        with mlark.start_run("churn", f"rf-depth-{depth}", {"max_depth": depth}, repo=repo, capture=QUIET) as run:
            for ref in inputs:
                run.use(ref)
            model = write_folder(root / f"model-{depth}", {"weights.bin": f"forest of depth {depth}\n"})
            version = run.log_artifact(model, name="churn-rf", type="model", message=f"Random forest, depth {depth}",
                                       aliases=["best"] if depth == 8 else [])
        c.runs[f"rf-depth-{depth}"] = run
        c.versions[version.ref] = version
    c.versions["churn-data:v2"] = repo.add(
        write_folder(root / "export", {"train.csv": "tenure,churned\n1,1\n40,0\n3,1\n7,0\n"}),
        name="churn-data", message="June export: one more customer")
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    registry.promote(repo, "churn", 1, "production", "Passed offline evaluation")
    registry.set_alias(repo, "churn", 1, "champion", "Best so far")
    registry.register(repo, "churn", "churn-rf:v2", "Shallower candidate")
    registry.promote(repo, "churn", 2, "staging", "Shadow traffic")
    return c


