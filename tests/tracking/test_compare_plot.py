"""Comparing runs side by side, and plotting metric curves into a real PNG."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from mlark.errors import InvalidInput, NotFound
from mlark.meta.db import Database
from mlark.tracking.compare import ComparedRun, compare_runs, load_compared_runs
from mlark.tracking.metrics import MetricSummary
from mlark.tracking.plot import Curve, plot_metric

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def summary(last: float, low: float | None, high: float | None, key: str = "m") -> MetricSummary:
    return MetricSummary(key=key, count=3, last=last, last_step=2, last_time=0.0, min=low, max=high)


def three_runs() -> list[ComparedRun]:
    return [
        ComparedRun("id-a", "rf-4", "finished", {"max_depth": 4, "model": "rf", "seed": 1},
                    {"auc": summary(0.80, 0.5, 0.81), "loss": summary(0.3, 0.3, 1.0)}),
        ComparedRun("id-b", "rf-8", "finished", {"max_depth": 8, "model": "rf", "seed": 1, "flag": True},
                    {"auc": summary(0.90, 0.5, 0.92), "loss": summary(0.3, 0.3, 1.0)}),
        ComparedRun("id-c", "gbm", "failed", {"max_depth": 8, "model": "gbm", "seed": 1},
                    {"auc": summary(float("nan"), 0.4, 0.7)}),
    ]


# --------------------------------------------------------------------------- compare (pure)


def test_params_side_by_side_with_deltas() -> None:
    result = compare_runs(three_runs())
    rows = {r.key: r for r in result.params}
    assert list(rows) == ["flag", "max_depth", "model", "seed"]
    depth = rows["max_depth"]
    assert depth.values == (4, 8, 8)
    assert depth.deltas == (0.0, 4.0, 4.0)
    assert depth.differs
    assert rows["model"].values == ("rf", "rf", "gbm")
    assert rows["model"].deltas == (None, None, None)
    assert rows["model"].differs
    assert not rows["seed"].differs
    assert rows["seed"].deltas == (0.0, 0.0, 0.0)
    flag = rows["flag"]
    assert flag.present == (False, True, False)
    assert flag.values == (None, True, None)
    assert flag.deltas == (None, None, None)  # bools get no delta
    assert flag.differs


def test_metrics_last_min_max_with_deltas() -> None:
    result = compare_runs(three_runs())
    rows = {r.label: r for r in result.metrics}
    assert list(rows) == ["auc.last", "auc.min", "auc.max", "loss.last", "loss.min", "loss.max"]
    last = rows["auc.last"]
    assert last.values[:2] == (0.80, 0.90)
    assert math.isnan(last.values[2])
    assert last.deltas[0] == 0.0
    assert last.deltas[1] == pytest.approx(0.10)
    assert last.deltas[2] is None  # NaN: no delta
    assert last.differs
    assert rows["auc.min"].deltas == (0.0, 0.0, pytest.approx(-0.1))
    assert rows["auc.max"].deltas == (0.0, pytest.approx(0.11), pytest.approx(-0.11))
    loss = rows["loss.last"]
    assert loss.values == (0.3, 0.3, None)  # the third run has no loss
    assert loss.deltas == (0.0, 0.0, None)
    assert loss.differs


def test_only_differences() -> None:
    result = compare_runs(three_runs(), only_differences=True)
    assert [r.key for r in result.params] == ["flag", "max_depth", "model"]
    assert "seed" not in {r.key for r in result.params}
    assert all(r.differs for r in result.metrics)
    assert result.only_diff
    # two identical runs: nothing differs
    a, b, _ = three_runs()
    same = ComparedRun("id-z", "rf-4-again", "finished", dict(a.params), dict(a.metrics))
    empty = compare_runs([a, same]).only_differences()
    assert empty.params == () and empty.metrics == ()
    assert compare_runs([a, same]).params != ()


def test_nan_equals_nan_for_differences() -> None:
    a = ComparedRun("a", "a", "finished", {}, {"m": summary(float("nan"), None, None)})
    b = ComparedRun("b", "b", "finished", {}, {"m": summary(float("nan"), None, None)})
    result = compare_runs([a, b], only_differences=True)
    assert result.metrics == ()


def test_to_dict_is_json() -> None:
    doc = compare_runs(three_runs()).to_dict()
    text = json.dumps(doc, allow_nan=True)
    back = json.loads(text)
    assert back["baseline"] == "id-a"
    assert [r["name"] for r in back["runs"]] == ["rf-4", "rf-8", "gbm"]
    depth = next(p for p in back["params"] if p["key"] == "max_depth")
    assert depth == {"key": "max_depth", "values": [4, 8, 8], "present": [True, True, True],
                     "deltas": [0.0, 4.0, 4.0], "differs": True}
    auc_min = next(m for m in back["metrics"] if m["key"] == "auc" and m["aggregate"] == "min")
    assert auc_min["values"] == [0.5, 0.5, 0.4]
    assert back["only_differences"] is False


def test_compare_needs_a_run() -> None:
    with pytest.raises(InvalidInput):
        compare_runs([])


# --------------------------------------------------------------------------- compare from the database


@pytest.fixture()
def db(database_url: str) -> Iterator[Database]:
    database = Database.open(database_url, create=True)
    try:
        yield database
    finally:
        database.close()


def _store_run(db: Database, name: str, params: dict[str, Any], points: dict[str, list[float]]) -> str:
    from datetime import datetime, timezone

    from mlark.core.ids import new_id
    from mlark.tracking import metrics, records
    from mlark.tracking.values import param_row

    rid = new_id()
    now = datetime.now(timezone.utc)

    def write(conn: Any) -> None:
        records.insert_run(conn, run_id=rid, project="p", name=name, parent_id=None, now=now, pid=None,
                           host=None, user=None, command=None, git=None, environment=None)
        records.write_params(conn, rid, [param_row(k, v) for k, v in params.items()])
        series = {k: (list(range(len(v))), v, [now.timestamp() + i for i in range(len(v))]) for k, v in points.items()}
        if series:
            metrics.write_points(conn, rid, series)

    db.run_write(write)
    return rid


def test_load_compared_runs_from_the_database(db: Database) -> None:
    a = _store_run(db, "a", {"lr": 0.1, "model": "rf", "bad": float("nan")}, {"auc": [0.5, 0.7, 0.6], "loss": [1.0, 0.5]})
    b = _store_run(db, "b", {"lr": 0.2, "model": "rf"}, {"auc": [0.5, 0.8, float("nan")]})
    with db.read() as conn:
        loaded = load_compared_runs(conn, [b, a])
    assert [r.name for r in loaded] == ["b", "a"]
    result = compare_runs(loaded)
    params = {r.key: r for r in result.params}
    assert params["lr"].values == (0.2, 0.1)
    assert params["lr"].deltas == (0.0, pytest.approx(-0.1))
    assert not params["model"].differs
    assert math.isnan(params["bad"].values[1])  # non-finite params come back as floats
    metrics = {r.label: r for r in result.metrics}
    assert math.isnan(metrics["auc.last"].values[0]) and metrics["auc.last"].values[1] == 0.6
    assert metrics["auc.max"].values == (0.8, 0.7)
    assert metrics["auc.min"].values == (0.5, 0.5)
    assert metrics["loss.last"].values == (None, 0.5)
    with db.read() as conn:
        with pytest.raises(NotFound):
            load_compared_runs(conn, [a, "00000000-0000-7000-8000-000000000000"])


# --------------------------------------------------------------------------- plot


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_plot_writes_a_real_png(tmp_path: Path) -> None:
    out = tmp_path / "auc.png"
    curves = [
        Curve("rf-4", list(range(50)), [0.5 + 0.004 * i for i in range(50)]),
        Curve("rf-8", list(range(0, 100, 2)), [0.5 + 0.008 * math.sqrt(i) for i in range(0, 100, 2)]),
        Curve("gbm", [0, 1, 2, 3], [0.4, float("nan"), float("inf"), 0.6]),
        Curve("single", [5], [0.55]),
    ]
    assert plot_metric(curves, metric="val_auc", path=out) == out
    assert out.stat().st_size > 10_000
    width, height = _png_size(out)
    assert (width, height) == (960, 600)  # 8 x 5 inches at 120 dpi
    import matplotlib.image

    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (600, 960)
    assert pixels.std() > 0.01  # not a blank image: lines, text, legend


def test_plot_legend_lists_every_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    seen: dict[str, Any] = {}
    original = matplotlib.axes.Axes.legend

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        legend = original(self, *args, **kwargs)
        seen["labels"] = [t.get_text() for t in legend.get_texts()]
        seen["xlabel"] = self.get_xlabel()
        return legend

    monkeypatch.setattr(matplotlib.axes.Axes, "legend", spy)
    plot_metric([Curve("rf-depth-8", [0, 1], [1, 2]), Curve("empty", [], [])], metric="loss", path=tmp_path / "p.png")
    assert seen["labels"] == ["rf-depth-8", "empty (no points)"]
    assert seen["xlabel"] == "step"


def test_plot_leaves_pyplot_alone(tmp_path: Path) -> None:
    code = (
        "import sys; from mlark.tracking.plot import Curve, plot_metric; "
        f"plot_metric([Curve('a', [0, 1], [0, 1])], metric='m', path={str(tmp_path / 'x.png')!r}); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
    assert (tmp_path / "x.png").read_bytes()[:8] == PNG_SIGNATURE


def test_plot_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        plot_metric([], metric="m", path=tmp_path / "x.png")
    with pytest.raises(InvalidInput, match=r"\.png"):
        plot_metric([Curve("a", [0], [1])], metric="m", path=tmp_path / "x.jpg")
    with pytest.raises(InvalidInput, match="2 steps but 1 values"):
        plot_metric([Curve("a", [0, 1], [1])], metric="m", path=tmp_path / "x.png")


def test_plot_without_matplotlib_gives_an_install_hint(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'matplotlib' or name.startswith('matplotlib.'):\n"
        "            raise ImportError('no matplotlib here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from mlark.errors import InvalidInput\n"
        "from mlark.tracking.plot import Curve, plot_metric\n"
        "try:\n"
        f"    plot_metric([Curve('a', [0], [1])], metric='m', path={str(tmp_path / 'x.png')!r})\n"
        "except InvalidInput as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install matplotlib" in out
    assert not (tmp_path / "x.png").exists()
