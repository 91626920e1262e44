"""A forest logged before mlark saved tree arrays gets them computed on its first load through a repository
(``mlark.load_model``, the server, ``mlark predict``) and kept in ``.mlark/cache/models``; the next load
predicts from them without reading the skops file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("onnxruntime")

import numpy as np  # noqa: E402
from serving_testkit import COLUMNS, churn_frame, new_repo, train  # noqa: E402

import mlark  # noqa: E402
from mlark.models import MANIFEST_NAME, save_model  # noqa: E402
from mlark.models.flavors.sklearn_trees import TREES_FILE  # noqa: E402
from mlark.serving.served import load_version  # noqa: E402


@pytest.fixture
def old_model(tmp_path: Path) -> tuple[Any, Any, Any]:
    """A repository holding churn-rf:v1 as an older mlark saved it: model.skops without model.trees.npz."""
    repo = new_repo(tmp_path / "project")
    model = train(0)
    folder = tmp_path / "churn-rf"
    save_model(model, folder, input_example=churn_frame(9, rows=3)[COLUMNS])
    (folder / TREES_FILE).unlink()
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["files"] = [r for r in manifest["files"] if r["path"] != TREES_FILE]
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    version = repo.add(folder, name="churn-rf", type="model", message="a forest saved before tree arrays")
    yield repo, version, model
    repo.close()


def test_arrays_are_computed_once_and_kept_in_the_repository_cache(old_model: tuple[Any, Any, Any]) -> None:
    repo, version, model = old_model
    cache = repo.meta_dir / "cache" / "models" / "sklearn-trees"
    rows = churn_frame(3, rows=50)[COLUMNS]
    first = mlark.load_model(version.ref, repo=repo)
    assert first.compiled is not None and len(list(cache.iterdir())) == 1
    from mlark.ops.predict import repo_source
    from mlark.pipelines import Predictor

    source = repo_source(repo)
    res = source.resolve(version.ref)
    loaded = load_version("churn-rf", source.fetch, res, cache=source.cache)
    assert loaded.model.compiled is not None and loaded.model._predictor._raw is None  # skops not read
    np.testing.assert_array_equal(loaded.predictor.predict(rows), model.predict(rows))
    assert Predictor(first).fast and np.array_equal(Predictor(first).predict(rows), model.predict(rows))


def test_mlark_predict_on_an_old_model_imports_no_framework_the_second_time(old_model: tuple[Any, Any, Any],
                                                                            tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo, version, model = old_model
    rows = churn_frame(4, rows=5000)[COLUMNS]
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), tmp_path / "in.parquet")
    code = (
        "import sys\n"
        "from mlark.cli.main import main\n"
        f"sys.argv = ['mlark', '--repo', {str(repo.root)!r}, 'predict', {version.ref!r}, '--input', "
        f"{str(tmp_path / 'in.parquet')!r}, '--output', {str(tmp_path / 'out.parquet')!r}, '--json']\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print(sorted(m for m in ('sklearn', 'skops', 'torch') if m in sys.modules), file=sys.stderr)\n"
    )
    seen = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        seen.append(done.stderr.strip().splitlines()[-1])
        assert pq.read_table(tmp_path / "out.parquet").column("prediction").to_pylist() == model.predict(rows).tolist()
    assert seen == ["['sklearn', 'skops']", "[]"]
