"""Metric logging: validation, buffering, batches, summaries, NaN and infinities, reading histories."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy import func, select

from mlark.errors import Conflict, InvalidInput, NotFound
from mlark.meta.schema import metric_batches, metric_summaries
from mlark.ops import run_search, run_start
from mlark.ops import runs as ops_runs
from mlark.ops.repo import Repo
from mlark.tracking import metrics as metric_store
from mlark.tracking import writer as writer_module
from mlark.tracking.capture import Capture

#: Record nothing slow or machine-specific except the host (the crash check compares it).
QUIET = replace(Capture.none(), host=True)


def start(repo: Repo, **kwargs: object) -> ops_runs.Run:
    return run_start.start_run(repo, "churn", capture_options=QUIET, **kwargs)  # type: ignore[arg-type]


def stored_points(repo: Repo, run_id: str) -> int:
    return int(repo.db.run_read(lambda c: c.execute(
        select(func.coalesce(func.sum(metric_batches.c.count), 0)).where(metric_batches.c.run_id == run_id)
    ).scalar_one()))


def test_history_comes_back_as_arrays_in_logging_order(repo: Repo) -> None:
    with start(repo) as run:
        for epoch in range(100):
            run.log({"loss": 1 / (epoch + 1), "val_auc": epoch / 100}, step=epoch)
    history = run_search.get_run(repo, run.id).history("loss")
    assert len(history) == 100
    assert history.steps.dtype == np.int64 and history.values.dtype == np.float64
    assert history.timestamps.dtype == np.float64
    assert history.steps.tolist() == list(range(100))
    assert history.values.tolist() == [1 / (e + 1) for e in range(100)]
    assert np.all(np.diff(history.timestamps) >= 0) and history.timestamps[0] > 1.6e9
    assert run_search.get_run(repo, run.id).metrics == {"loss": 0.01, "val_auc": 0.99}


def test_steps_auto_increment_when_omitted(repo: Repo) -> None:
    with start(repo) as run:
        run.log({"a": 1.0})
        run.log({"a": 2.0})
        run.log({"a": 3.0}, step=10)
        run.log({"a": 4.0})
        run.log({"b": 5.0}, step=3)  # an explicit earlier step does not move the counter back
        run.log({"a": 6.0})
    assert run.history("a").steps.tolist() == [0, 1, 10, 11, 12]
    assert run.history("b").steps.tolist() == [3]


def test_nan_and_infinities_are_stored_exactly(repo: Repo) -> None:
    values = [1.0, math.nan, math.inf, -math.inf, 5e-324, -0.0, 1.7976931348623157e308]
    with start(repo) as run:
        for v in values:
            run.log({"x": v})
        run.log({"only_nan": math.nan})
    back = run_search.get_run(repo, run.id)
    got = back.history("x").values
    assert np.array_equal(got, np.array(values), equal_nan=True)
    assert math.copysign(1, got[5]) == -1  # the sign of zero survives
    summaries = back.metric_summaries()
    x = summaries["x"]
    assert (x.count, x.last, x.min, x.max) == (7, 1.7976931348623157e308, -math.inf, math.inf)
    nan = summaries["only_nan"]
    assert math.isnan(nan.last) and nan.min is None and nan.max is None
    assert math.isnan(back.metrics["only_nan"])


def test_non_numeric_values_are_refused_naming_the_key_and_nothing_is_logged(repo: Repo) -> None:
    with start(repo) as run:
        run.log({"ok": 1.0})
        with pytest.raises(InvalidInput, match="metric 'acc' must be a number.*str"):
            run.log({"loss": 0.5, "acc": "high"})
        with pytest.raises(InvalidInput, match="metric key"):
            run.log({"": 1.0})
        with pytest.raises(InvalidInput, match="dict"):
            run.log([("a", 1.0)])  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="step"):
            run.log({"a": 1.0}, step=1.5)  # type: ignore[arg-type]
        run.log({"ok": 2.0})
    assert sorted(run.metrics) == ["ok"]  # the refused call logged nothing, "loss" included
    assert run.history("ok").steps.tolist() == [0, 1]


def test_numpy_and_bool_values(repo: Repo) -> None:
    with start(repo) as run:
        run.log({"f32": np.float32(0.25), "i64": np.int64(3), "flag": True, "nb": np.bool_(False), "i": 7})
    assert run.metrics == {"f32": 0.25, "flag": 1.0, "i": 7.0, "i64": 3.0, "nb": 0.0}


def test_log_returns_at_once_and_finish_makes_everything_durable(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "FLUSH_INTERVAL", 3600.0)  # no timed flush during the test
    run = start(repo)
    for i in range(5000):
        run.log({"loss": float(i)})
    assert stored_points(repo, run.id) == 0  # log() did not touch the database
    run.finish()
    assert stored_points(repo, run.id) == 5000


def test_the_background_thread_flushes_on_its_own(repo: Repo) -> None:
    import time

    with start(repo) as run:
        run.log({"loss": 1.0})
        deadline = time.monotonic() + 30
        while stored_points(repo, run.id) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored_points(repo, run.id) == 1


def test_a_full_buffer_is_flushed_without_waiting_for_the_interval(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setattr(writer_module, "FLUSH_INTERVAL", 3600.0)
    monkeypatch.setattr(writer_module, "FLUSH_POINTS", 100)
    with start(repo) as run:
        for i in range(150):
            run.log({"loss": float(i)})
        deadline = time.monotonic() + 30
        while stored_points(repo, run.id) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored_points(repo, run.id) >= 100


def test_many_points_are_few_batch_rows_and_small_flushes_are_merged(repo: Repo) -> None:
    with start(repo) as run:
        for i in range(10_000):
            run.log({"loss": float(i)})
        run.flush()
        for i in range(5):  # small flushes top up the last batch instead of adding rows
            run.log({"acc": float(i)})
            run.flush()
    rows = repo.db.run_read(lambda c: c.execute(
        select(metric_batches.c.key, metric_batches.c.seq, metric_batches.c.count)
        .where(metric_batches.c.run_id == run.id).order_by(metric_batches.c.key, metric_batches.c.seq)
    ).all())
    loss = [r.count for r in rows if r.key == "loss"]
    assert sum(loss) == 10_000 and len(loss) <= 10_000 // metric_store.BATCH_MAX + 2
    assert all(n <= metric_store.BATCH_MAX for n in loss)
    assert [r.count for r in rows if r.key == "acc"] == [5]
    assert run.history("acc").values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert run.history("loss").values.tolist() == [float(i) for i in range(10_000)]


def test_reading_a_long_history_is_a_handful_of_queries(repo: Repo) -> None:
    from sqlalchemy import event

    with start(repo) as run:
        for i in range(100_000):
            run.log({"loss": float(i)}, step=i)
    statements: list[str] = []
    event.listen(repo.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    history = run.history("loss")
    assert len(history) == 100_000 and history.steps[-1] == 99_999
    assert len(statements) <= 5


def test_last_is_the_value_at_the_highest_step(repo: Repo) -> None:
    with start(repo) as run:
        run.log({"m": 1.0}, step=5)
        run.log({"m": 2.0}, step=2)
        run.flush()
        run.log({"m": 3.0}, step=4)
        run.flush()
        run.log({"m": 4.0}, step=5)  # a tie: the latest logged wins
    summary = run.metric_summaries()["m"]
    assert (summary.last, summary.last_step, summary.count, summary.min, summary.max) == (4.0, 5, 4, 1.0, 4.0)


def test_unknown_metric(repo: Repo) -> None:
    with start(repo) as run:
        run.log({"loss": 1.0})
    with pytest.raises(NotFound, match="no metric 'acc'; its metrics: loss"):
        run.history("acc")


def test_a_view_can_log_synchronously(repo: Repo) -> None:
    with start(repo) as run:
        run.log({"loss": 1.0})
    view = run_search.get_run(repo, run.id)
    view.log({"loss": 0.5})
    assert view.history("loss").steps.tolist() == [0, 1]
    assert view.status == "finished"


def test_summaries_are_updated_with_the_batches(repo: Repo) -> None:
    with start(repo) as run:
        for i in range(3):
            run.log({"a": float(i), "b": float(-i)})
    rows = repo.db.run_read(lambda c: c.execute(
        select(metric_summaries).where(metric_summaries.c.run_id == run.id).order_by(metric_summaries.c.key)
    ).all())
    assert [(r.key, r.count, r.last, r.min, r.max, r.last_step) for r in rows] == [
        ("a", 3, 2.0, 0.0, 2.0, 2), ("b", 3, -2.0, -2.0, 0.0, 2)
    ]


def test_a_finished_run_refuses_summary_changes_through_its_writer(repo: Repo) -> None:
    run = start(repo)
    run.finish()
    with pytest.raises(Conflict):
        run._writer.set_summary("x", 1)  # type: ignore[union-attr]


def test_points_that_could_not_be_written_are_kept_and_written_later(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlark.errors import StorageError

    real = writer_module.write_points
    calls = {"n": 0}

    def failing_once(conn: object, run_id: str, series: object) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk on fire")
        return real(conn, run_id, series)  # type: ignore[arg-type]

    monkeypatch.setattr(writer_module, "FLUSH_INTERVAL", 3600.0)
    monkeypatch.setattr(writer_module, "write_points", failing_once)
    run = start(repo)
    for i in range(10):
        run.log({"loss": float(i)})
    with pytest.raises(StorageError, match="disk on fire"):
        run.flush()
    for i in range(10, 15):
        run.log({"loss": float(i)})
    run.finish()
    assert run.history("loss").values.tolist() == [float(i) for i in range(15)]  # nothing lost, order kept
