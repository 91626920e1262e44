"""Helpers of the registry tests (importable as ``registry_testkit``): real data, real scikit-learn models
logged through runs, and a snapshot of the whole registry state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from mlark.meta.schema import (
    lineage_edges,
    registered_model_aliases,
    registered_model_versions,
    registered_models,
    registry_events,
    versions,
)
from mlark.ops import registry, run_start
from mlark.ops.repo import Repo
from mlark.tracking.capture import Capture

QUIET = Capture.none()
COLUMNS = ["tenure", "monthly", "support_calls", "age"]


def churn_frame(seed: int = 0, rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "tenure": rng.integers(0, 72, rows),
        "monthly": rng.normal(60.0, 20.0, rows).round(2),
        "support_calls": rng.integers(0, 9, rows),
        "age": rng.integers(18, 90, rows),
    })
    frame["churned"] = ((frame["support_calls"] > 4) | (frame["tenure"] < 6)).astype("int64")
    return frame


@dataclass
class Trained:
    """What the ``churn`` fixture made: data versions, runs, model versions, and a holdout to predict on."""

    data: Any  # churn-data:v1 (Version)
    runs: list[Any] = field(default_factory=list)
    models: list[Any] = field(default_factory=list)  # churn-rf:v1, churn-rf:v2 (Version)
    holdout: pd.DataFrame | None = None


def train(repo: Repo, data_ref: str, depth: int, *, aliases: tuple[str, ...] = (), seed: int = 0) -> tuple[Any, Any]:
    """One training run: uses ``data_ref``, logs params and metrics, logs the fitted forest as churn-rf."""
    from sklearn.ensemble import RandomForestClassifier

    with run_start.start_run(repo, "churn", f"rf-depth-{depth}", {"max_depth": depth, "n_estimators": 12},
                             capture_options=QUIET) as run:
        folder = run.use(data_ref)
        frame = pd.read_csv(folder / "train.csv")
        X, y = frame[COLUMNS], frame["churned"]
        model = RandomForestClassifier(max_depth=depth, n_estimators=12, random_state=seed).fit(X, y)
        run.log({"train_accuracy": float(model.score(X, y)), "val_auc": 0.8 + depth / 100})
        version = run.log_model(model, name="churn-rf", input_example=X.head(), aliases=aliases)
    return run, version


def state(repo: Repo) -> dict[str, Any]:
    """Everything the registry holds, plus row counts of every registry table and the lineage edges."""
    models = registry.list_models(repo)
    with repo.db.read() as conn:
        counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar()
                  for t in (registered_models, registered_model_versions, registered_model_aliases,
                            registry_events, lineage_edges, versions)}
    return {
        "models": [m.to_dict() for m in models],
        "history": {m.name: [e.to_dict() for e in registry.history(repo, m.name)] for m in models},
        "counts": counts,
    }
