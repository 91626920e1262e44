"""mlark.sklearn.autolog logs model versions through run.log_model: ready to register and load by reference."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import numpy as np
import pytest
from registry_testkit import COLUMNS, churn_frame

import mlark
import mlark.sklearn
from mlark.ops import registry
from mlark.ops.repo import Repo
from mlark.tracking.capture import Capture


@pytest.fixture(autouse=True)
def _disable_autolog() -> Iterator[None]:
    yield
    mlark.sklearn.autolog(disable=True)


def test_autologged_model_is_a_model_version_with_its_manifest_summary(repo: Repo) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    frame = churn_frame(0)
    X, y = frame[COLUMNS], frame["churned"]
    mlark.sklearn.autolog(project="churn", repo=repo, capture=replace(Capture.none(), host=True),
                          model_name="churn-gb")
    clf = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y)
    (run,) = mlark.runs("churn", repo=repo)
    (version,) = run.outputs()
    assert version.ref == "churn-gb:v1" and version.type == "model"
    assert version.metadata["flavor"] == "sklearn" and version.metadata["run_id"] == run.id
    assert [c["name"] for c in version.metadata["signature"]["inputs"]["columns"]] == COLUMNS
    assert version.metadata["metadata"]["logged_by"] == "mlark.sklearn.autolog"
    registry.register(repo, "churn", "churn-gb:v1", "Autologged gradient boosting")
    assert registry.show(repo, "churn").versions[0].source_run_id == run.id
    np.testing.assert_array_equal(mlark.load_model("models:/churn/1", repo=repo).predict(X.head(10)),
                                  clf.predict(X.head(10)))
