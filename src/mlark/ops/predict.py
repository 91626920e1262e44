"""Batch prediction against a repository: resolve the model, find the input, and optionally record the
output as a dataset version made by a run that used the model version and the input.

``mlark predict`` and the demo call these; :mod:`mlark.pipelines` does the reading, predicting and
writing, and knows nothing of repositories.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from mlark.errors import InvalidInput


def repo_source(repo: Any) -> Any:
    """The serving package's source for ``repo``: references resolved by the catalog and the registry,
    versions materialised (verified) in the repository's cache."""
    from mlark.ops.run_inputs import materialise, model_cache
    from mlark.serving.source import RepoSource

    return RepoSource(repo.db, lambda version: materialise(repo, version), cache=model_cache(repo))


def input_path(repo: Any, text: str, run: Any | None) -> tuple[Path, Any]:
    """A local file for an input: a path, or a reference to a version holding one file (``NAME:PATH@ALIAS``
    for one of several). Returns the path and the version (None for a plain path). With ``run``, the
    version is recorded as one of its inputs."""
    path = Path(text)
    if path.exists() or repo is None:
        return path, None
    from mlark.core.refs import parse_ref

    parsed = parse_ref(text)
    version = repo.resolve(text)
    if run is not None:
        local = run.use(text if parsed.path is not None else version)
    else:
        from mlark.ops.run_inputs import materialise, sub_path

        local = materialise(repo, version)
        if parsed.path is not None:
            local = sub_path(repo, version, local, parsed.path)
    if local.is_dir():
        files = [p for p in sorted(local.rglob("*")) if p.is_file()]
        if len(files) != 1:
            raise InvalidInput(
                f"{version.ref} holds {len(files)} files; name the one to predict on as NAME:PATH@ALIAS "
                f"(e.g. {version.name}:{files[0].relative_to(local).as_posix() if files else 'data.parquet'}"
                f"@{parsed.alias or 'latest'})",
                field="input",
            )
        local = files[0]
    return local, version


@dataclass
class PredictOptions:
    """How a file is predicted: passed through to :func:`mlark.pipelines.predict_file`."""

    passthrough: Sequence[str] = ()
    batch_size: int = 65_536
    prediction_column: str = "prediction"
    input_format: str | None = None
    workers: int | None = None
    trust: Sequence[str] = ()
    progress: Any = None

    def run(self, model: Any, path: Path, output: str | Path) -> Any:
        from mlark.pipelines import Predictor, predict_file

        return predict_file(Predictor(model), path, output, passthrough=list(self.passthrough),
                            batch_size=self.batch_size, prediction_column=self.prediction_column,
                            input_format=self.input_format, workers=self.workers, progress=self.progress)


def predict_recorded(repo: Any, ref: str, input_: str | Path, output: str | Path, *, record: str, message: str,
                     options: PredictOptions | None = None, project: str = "batch-predict",
                     input_name: str | None = None, capture_options: Any = None) -> tuple[Any, dict[str, Any]]:
    """Predict ``input_`` with model ``ref`` into ``output`` (Parquet) inside a run of ``project``, and
    commit the output as a version of dataset ``record``.

    The run uses the model version and the input version; an input that is a plain file is committed
    first as a version of dataset ``input_name`` (default: the file's stem), since lineage needs a version
    to point at. Returns the batch report and what was recorded (refs and the run id).
    """
    from mlark.core.names import validate_name
    from mlark.models import load_model
    from mlark.ops.run_start import start_run

    options = options or PredictOptions()
    validate_name(record)
    if not message:
        raise InvalidInput("recording predictions needs a message saying what they are for", field="message")
    source = repo_source(repo)
    res = source.resolve(ref)
    input_version = None
    in_path = Path(input_)
    if in_path.exists():
        name = validate_name(input_name or stem_name(in_path), kind="input dataset name")
        input_version = repo.add(in_path, name=name, type="dataset",
                                 message=f"Input of batch prediction with {ref} into {record}")
    params = {"model": ref, "model_version": res.version, "batch_size": options.batch_size,
              "passthrough": ",".join(options.passthrough) or "-", "output": record}
    if res.registered:
        params["registered_version"] = res.registered
    with start_run(repo, project, None, params, {"kind": "batch-predict"}, capture_options=capture_options) as run:
        run.use(res.handle)  # the lineage edge: this run used that model version
        model = load_model(source.fetch(res), trust=list(options.trust) or None, cache=source.cache)
        if input_version is not None:
            run.use(input_version)
            path = in_path
        else:
            path, input_version = input_path(repo, str(input_), run)
        report = options.run(model, path, output)
        run.log({"rows": report.rows, "seconds": report.seconds, "rows_per_second": report.rows_per_second})
        meta = {"rows": report.rows, "model": res.version, "input": input_version.ref,
                "prediction_columns": report.prediction_columns, "passthrough": report.passthrough}
        if res.registered:
            meta["registered_model"] = res.registered
        version = run.log_artifact(output, name=record, type="dataset", message=message, metadata=meta)
    return report, {"recorded": version.ref, "run": run.id, "model_version": res.version,
                    "registered": res.registered, "input_version": input_version.ref}


def stem_name(path: Path) -> str:
    """A dataset name made from a file's name: ``customers.2024-05.parquet`` -> ``customers``."""
    stem = path.name.split(".")[0] or "input"
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._") or "input"
    return cleaned[:128]
