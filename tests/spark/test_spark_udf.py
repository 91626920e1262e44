"""``mlark.spark.predict_udf`` on real pyspark in local mode: 100,000+ rows, equal to local predictions,
the model loaded once per Python worker process, shipped with addFile (the executors never open the
repository)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("sklearn")
pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs a Java runtime (java on PATH or JAVA_HOME)", allow_module_level=True)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlark.ops.repo import Repo  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

FEATURES = ["tenure", "monthly", "support_calls", "age"]
ROWS = 120_000


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": np.arange(n, dtype=np.int64),
        "tenure": rng.integers(0, 72, n),
        "monthly": rng.normal(60.0, 20.0, n).round(2),
        "support_calls": rng.integers(0, 9, n),
        "age": rng.integers(18, 90, n),
        "plan": rng.choice(["basic", "plus"], n),
    })


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    log = tmp_path_factory.mktemp("spark") / "loads.txt"
    os.environ["MLARK_SPARK_LOAD_LOG"] = str(log)  # inherited by the Python workers in local mode
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run this venv's Python (mlark installed)
    session = (SparkSession.builder.master("local[2]").appName("mlark-tests")
               .config("spark.pyspark.python", sys.executable)
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")
               .config("spark.driver.memory", "1g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    session.load_log = log  # type: ignore[attr-defined]
    yield session
    session.stop()
    os.environ.pop("MLARK_SPARK_LOAD_LOG", None)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    from mlark.ops import registry
    from mlark.ops.run_start import start_run
    from mlark.tracking.capture import Capture

    root = tmp_path_factory.mktemp("spark-repo") / "project"
    r = Repo.init(root, author="tester@spark")
    train = _frame(3000, seed=1)
    y = ((train["support_calls"] > 4) | (train["tenure"] < 6)).astype(int)
    clf = RandomForestClassifier(n_estimators=30, random_state=0).fit(train[FEATURES], y)
    reg = RandomForestRegressor(n_estimators=10, random_state=0).fit(train[FEATURES], train["monthly"] * 2)
    with start_run(r, "spark-tests", None, None, None, capture_options=Capture.none()) as run:
        v = run.log_model(clf, name="churn-rf", input_example=train[FEATURES].head(3), message="forest for Spark")
        vp = run.log_model(clf, name="churn-proba", input_example=train[FEATURES].head(3), method="predict_proba",
                           message="probabilities")
        vr = run.log_model(reg, name="spend", input_example=train[FEATURES].head(3), message="regressor")
    registry.register(r, "churn", v.ref, "First candidate")
    registry.promote(r, "churn", 1, "production", "Goes live")
    yield {"repo": r, "clf": clf, "reg": reg, "version": v, "proba": vp, "spend": vr}
    r.close()


def test_predict_udf_equals_local_predict_on_many_rows(spark: Any, repo: dict[str, Any]) -> None:
    from mlark.spark import predict_udf

    data = _frame(ROWS, seed=7)
    df = spark.createDataFrame(data).repartition(6)
    score = predict_udf(spark, "models:/churn@production", repo=repo["repo"])
    assert score.version == repo["version"].ref
    out = df.withColumn("score", score(*df.columns)).select("id", "score").toPandas().sort_values("id")
    assert len(out) == ROWS
    assert out["score"].tolist() == repo["clf"].predict(data[FEATURES]).tolist()
    assert str(df.withColumn("s", score()).schema["s"].dataType) == "LongType()"

    loads = [line.split() for line in Path(spark.load_log).read_text().splitlines()]
    pids = [pid for pid, *_ in loads]
    assert loads and len(pids) == len(set(pids))  # each worker process loaded the model once (6+ tasks ran)
    assert all(digest == repo["version"].digest for *_, digest in loads)


def test_other_outputs_and_column_choices(spark: Any, repo: dict[str, Any]) -> None:
    from mlark.spark import predict_udf

    data = _frame(5000, seed=8)
    df = spark.createDataFrame(data)
    proba = predict_udf(spark, "churn-proba@latest", repo=repo["repo"])
    spend = predict_udf(spark, repo["spend"].ref, repo=repo["repo"])
    out = (df.withColumn("p", proba("tenure", "monthly", "support_calls", "age"))
             .withColumn("spend", spend(*[c for c in df.columns if c != "plan"]))
             .select("id", "p", "spend").toPandas().sort_values("id"))
    assert np.allclose(np.stack(out["p"].to_numpy()), repo["clf"].predict_proba(data[FEATURES]))
    assert out["spend"].tolist() == repo["reg"].predict(data[FEATURES]).tolist()


def test_a_model_folder_and_errors(spark: Any, repo: dict[str, Any], tmp_path: Path) -> None:
    from mlark.errors import NotFound
    from mlark.models import save_model
    from mlark.spark import predict_udf

    folder = tmp_path / "m"
    save_model(repo["clf"], folder, input_example=_frame(3, 0)[FEATURES])
    data = _frame(2000, seed=9)
    df = spark.createDataFrame(data)
    out = df.select("id", predict_udf(spark, folder)(*df.columns).alias("s")).toPandas().sort_values("id")
    assert out["s"].tolist() == repo["clf"].predict(data[FEATURES]).tolist()
    with pytest.raises(NotFound):
        predict_udf(spark, "models:/churn@staging", repo=repo["repo"])

