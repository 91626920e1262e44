"""Predicting with a versioned model on Spark: ``predict_udf`` returns a pandas UDF (Arrow batches).

>>> from mlark.spark import predict_udf
>>> score = predict_udf(spark, "models:/churn@production")
>>> scores = df.withColumn("score", score(*df.columns))          # columns matched by name
>>> scores = df.withColumn("score", score("tenure", "plan"))      # or only those

What happens:

1. On the driver, the reference is resolved now (``models:/churn@production`` -> ``churn-rf:v5``),
   through the repository (``repo=``, else ``MLARK_REPO``, else found by walking up from the
   current folder) or taken as a model folder. The version's files are materialised and verified
   as ``mlark get`` does.
2. The model folder is shipped to the executors with ``spark.sparkContext.addFile(folder,
   recursive=True)`` under a name made from its digest (``mlark-model-<digest>``), once per
   SparkContext and version. Executors need **mlark and the model's framework installed**, not
   access to the repository: they read the copy Spark gives them (``SparkFiles.get``).
3. On an executor, the first batch a Python worker process sees loads the model (checking every
   file against its manifest, as ``mlark.models.load_model`` always does) and keeps it in a
   process-wide cache keyed by reference and digest; Spark reuses its Python workers across tasks
   (``spark.python.worker.reuse``, on by default), so a model is loaded once per worker process,
   not once per task or batch. Each batch is predicted through :class:`mlark.pipelines.Predictor`:
   checked against the signature, predicted exactly like ``mlark predict`` and ``mlark serve``.

The UDF is bound to the version resolved when it was made: a job does not change models half way
when an alias moves. Make a new UDF to pick up a new version.

On a cluster: install mlark (with the model's extra, e.g. ``pip install 'mlark[sklearn]'``) in the
Python environment the executors use (a cluster image, ``spark.archives`` with a packed venv, or
``--py-files`` is not enough: mlark has compiled dependencies). The driver needs the repository
(a local folder, or a team server's database and store); the executors do not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator

__all__ = ["predict_udf"]

_PREFIX = "mlark-model-"
_LOAD_LOG_ENV = "MLARK_SPARK_LOAD_LOG"  # tests: a file each executor-side load appends "pid key" to
_shipped: dict[tuple[str, str], str] = {}  # (application id, digest) -> the name given to addFile
_ship_lock = threading.Lock()
_models: dict[tuple[str, str], Any] = {}  # executor side: (ref, digest) -> Predictor
_models_lock = threading.Lock()


def predict_udf(spark: Any, ref: str | os.PathLike[str], *, result_type: Any = None, repo: Any = None,
                trust: str | Iterable[str] | None = None) -> "PredictUDF":
    """A pandas UDF predicting with model ``ref`` (``models:/NAME@STAGE``, ``NAME@ALIAS``, ``NAME:vN``, a folder).

    ``result_type``: a Spark ``DataType`` or DDL string; by default it follows the model's output
    signature (``int64`` -> ``long``, floats -> ``double``, ``string``, ``bool``; a 2-D output ->
    ``array<double>``), else ``double``. ``trust`` is passed to ``load_model`` on the executors.
    """
    from mlark.models import load_model
    from mlark.models.safety import parse_trust

    parse_trust(trust)
    trust_list = None if trust is None else ([trust] if isinstance(trust, str) else list(trust))
    resolution, folder = _resolve(ref, repo)
    model = load_model(folder, trust=trust_list)  # checked on the driver first: a bad model fails here, not in a task
    signature = model.signature
    del model
    name = _ship(spark, resolution.digest, folder)
    columns = None
    if signature is not None and signature.inputs.kind == "columns":
        columns = [str(s.name) for s in signature.inputs.specs]
    return PredictUDF(spark, str(resolution.ref), resolution.version, resolution.digest, name,
                      _result_type(result_type, signature), columns, trust_list)


def _resolve(ref: str | os.PathLike[str], repo: Any) -> tuple[Any, Path]:
    from mlark.serving.source import FolderSource, RepoSource, Sources

    text = os.fspath(ref)
    if isinstance(ref, os.PathLike) or Sources.is_folder(text):
        source: Any = FolderSource()
    else:
        from mlark.api import _open_repo
        from mlark.ops.run_inputs import materialise

        opened = _open_repo(repo)
        source = RepoSource(opened.db, lambda version: materialise(opened, version))
    resolution = source.resolve(text)
    return resolution, Path(source.fetch(resolution))


def _ship(spark: Any, digest: str, folder: Path) -> str:
    """Give ``folder`` to Spark (``addFile``, recursive) under a name made from the digest; once per app."""
    sc = spark.sparkContext
    key = (str(sc.applicationId), digest)
    with _ship_lock:
        name = _shipped.get(key)
        if name is not None:
            return name
        name = f"{_PREFIX}{digest[:32]}"
        staging = Path(tempfile.mkdtemp(prefix="mlark-spark-")) / name
        shutil.copytree(folder, staging)
        sc.addFile(str(staging), recursive=True)
        _shipped[key] = name
        return name


def _result_type(given: Any, signature: Any) -> Any:
    from pyspark.sql import types as T

    if given is not None:
        return given
    if signature is None or signature.outputs is None or len(signature.outputs.specs) != 1:
        return T.DoubleType()
    spec = signature.outputs.specs[0]
    shape = spec.shape
    if shape is not None and len(shape) == 2:
        return T.ArrayType(T.DoubleType())
    if shape is not None and len(shape) > 2:
        return T.DoubleType()
    dtype = spec.dtype
    if dtype.startswith(("int", "uint")):
        return T.LongType()
    if dtype == "bool":
        return T.BooleanType()
    if dtype == "string":
        return T.StringType()
    return T.DoubleType()


class PredictUDF:
    """``udf(*columns)`` -> a Column of predictions. Columns are passed by name (strings or Columns);
    none means the signature's columns. ``.version`` is the version it predicts with."""

    def __init__(self, spark: Any, ref: str, version: str, digest: str, shipped: str, return_type: Any,
                 columns: list[str] | None, trust: list[str] | None) -> None:
        from pyspark.sql.functions import pandas_udf

        self.ref, self.version, self.digest = ref, version, digest
        self.return_type = return_type
        self.columns = columns
        key = (ref, digest)
        array_out = type(return_type).__name__ == "ArrayType"

        def predict(batches: Iterator[Any]) -> Iterator[Any]:
            import pandas as pd

            predictor = _executor_model(key, shipped, trust)
            for frame in batches:
                out = predictor.predict(frame)
                if isinstance(out, pd.DataFrame):
                    yield out
                elif array_out:
                    yield pd.Series(list(out))
                else:
                    yield pd.Series(out)

        import pandas as pd

        # pandas_udf reads the kind of UDF from the annotations: batches of a struct (a DataFrame) in, Series out.
        predict.__annotations__ = {"batches": Iterator[pd.DataFrame], "return": Iterator[pd.Series]}
        self._udf = pandas_udf(predict, returnType=return_type)  # type: ignore[call-overload]

    def __call__(self, *cols: Any) -> Any:
        from pyspark.sql import functions as F

        if not cols:
            if self.columns is None:
                from mlark.errors import InvalidInput

                raise InvalidInput("the model has no column signature: pass the input columns, e.g. udf(*df.columns)",
                                   field="columns")
            cols = tuple(self.columns)
        return self._udf(F.struct(*[F.col(c) if isinstance(c, str) else c for c in cols]))

    def __repr__(self) -> str:
        return f"<mlark predict_udf {self.ref} = {self.version} ({self.digest[:12]})>"


def _executor_model(key: tuple[str, str], shipped: str, trust: list[str] | None) -> Any:
    """The model of ``key`` in this worker process, loaded from Spark's copy on first use."""
    found = _models.get(key)
    if found is not None:
        return found
    with _models_lock:
        found = _models.get(key)
        if found is None:
            from pyspark import SparkFiles

            from mlark.models import load_model
            from mlark.pipelines.predictor import Predictor

            found = Predictor(load_model(SparkFiles.get(shipped), trust=trust))
            _models[key] = found
            log = os.environ.get(_LOAD_LOG_ENV)
            if log:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(f"{os.getpid()} {key[0]} {key[1]}\n")
    return found
