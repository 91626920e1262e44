"""search_runs on SQLite and PostgreSQL: every operator, and/or/not, metrics last/min/max, tags, attributes, order, limit.

The runs are written straight into the tracking tables (so that NaN summaries,
missing keys and exact times are under the test's control); test_query_api.py
checks the same query through runs made by mlark.start_run.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from sqlalchemy import insert, select

from mlark.core.ids import new_id
from mlark.errors import FilterSyntaxError, InvalidInput, NotFound
from mlark.meta import schema
from mlark.meta.db import Database
from mlark.tracking.query import build_query, resolve_run_ids, search_runs
from mlark.tracking.values import param_row

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)


def _param_row(run_id: str, key: str, value: Any) -> dict[str, Any]:
    return {"run_id": run_id, **param_row(key, value)}  # the canonical text and number mlark stores


def add_run(
    db: Database,
    name: str,
    *,
    project: str = "churn",
    status: str = "finished",
    start: datetime,
    end: datetime | None = None,
    user: str | None = "ana",
    params: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    metrics: dict[str, tuple[float | None, float | None, float | None]] | None = None,
    run_id: str | None = None,
) -> str:
    """One run; a metric is (last, min, max) with last=NaN stored as NULL + last_is_nan."""
    rid = run_id or new_id()
    with db.write() as conn:
        conn.execute(insert(schema.runs).values(
            id=rid, project=project, name=name, status=status, start_time=start, end_time=end,
            heartbeat_at=end or start, user=user, host="box", summary={},
        ))
        if params:
            conn.execute(insert(schema.params), [_param_row(rid, k, v) for k, v in params.items()])
        if tags:
            conn.execute(insert(schema.run_tags), [{"run_id": rid, "key": k, "value": v} for k, v in tags.items()])
        for key, (last, low, high) in (metrics or {}).items():
            nan = last is not None and last != last
            conn.execute(insert(schema.metric_summaries).values(
                run_id=rid, key=key, count=10, last=None if nan else last, last_step=9,
                last_time=start.timestamp(), min=low, max=high, last_is_nan=nan,
            ))
    return rid


@pytest.fixture()
def db(database_url: str) -> Iterator[Database]:
    database = Database.open(database_url, create=True)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture()
def runs(db: Database) -> dict[str, str]:
    """r1..r4 in project churn (started an hour apart), r5 in project other; name -> id."""
    h = timedelta(hours=1)
    ids = {
        "r1": add_run(db, "rf-depth-8", start=T0 + h, end=T0 + 2 * h,
                      params={"max_depth": 8, "model": "rf", "lr": 0.1, "flag": True},
                      tags={"team": "growth"},
                      metrics={"val_auc": (0.91, 0.5, 0.93), "loss": (0.2, 0.2, 1.0)}),
        "r2": add_run(db, "rf-depth-12", start=T0 + 2 * h, end=T0 + 3 * h, user="bo",
                      params={"max_depth": 12, "model": "rf", "lr": 0.01},
                      tags={"team": "Growth"},
                      metrics={"val_auc": (0.95, 0.6, 0.95)}),
        "r3": add_run(db, "gbm-1", status="failed", start=T0 + 3 * h, end=T0 + 3.5 * h,
                      params={"max_depth": 4, "model": "gbm", "lr": "auto"},
                      metrics={"val_auc": (float("nan"), 0.4, 0.7)}),
        "r4": add_run(db, "lin", status="running", start=T0 + 4 * h, user=None,
                      params={"max_depth": "none", "model": "linear"}),
        "r5": add_run(db, "rf-other", project="other", start=T0, end=T0 + h,
                      params={"max_depth": 20, "model": "rf"}, metrics={"val_auc": (0.99, 0.9, 0.99)}),
    }
    return ids


def names(db: Database, runs: dict[str, str], filter: str | None = None, *, project: str | None = "churn",
          order_by: Any = None, limit: int | None = None) -> list[str]:
    by_id = {v: k for k, v in runs.items()}
    with db.read() as conn:
        return [by_id[i] for i in search_runs(conn, project=project, filter=filter, order_by=order_by, limit=limit)]


def matched(db: Database, runs: dict[str, str], filter: str, project: str | None = "churn") -> set[str]:
    return set(names(db, runs, filter, project=project))


# --------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("params.max_depth >= 8", {"r1", "r2"}),
        ("params.max_depth > 8", {"r2"}),
        ("params.max_depth <= 8", {"r1", "r3"}),
        ("params.max_depth < 8", {"r3"}),
        ("params.max_depth = 8", {"r1"}),
        ("params.max_depth = 8.0", {"r1"}),
        ("params.max_depth != 8", {"r2", "r3", "r4"}),  # r4's "none" differs from 8
        ("params.max_depth = 'none'", {"r4"}),
        ("params.max_depth = '8'", {"r1"}),  # canonical text of 8
        ("params.max_depth in (4, 12)", {"r2", "r3"}),
        ("params.max_depth in (4, 'none')", {"r3", "r4"}),
        ("params.model = 'rf'", {"r1", "r2"}),
        ("params.model != 'rf'", {"r3", "r4"}),
        ("params.model < 'l'", {"r3"}),
        ("params.model >= 'linear'", {"r1", "r2", "r4"}),
        ("params.model in ('gbm', 'linear', 'svm')", {"r3", "r4"}),
        ("params.lr = 0.1", {"r1"}),
        ("params.lr < 0.05", {"r2"}),
        ("params.lr = 'auto'", {"r3"}),
        ("params.lr in (0.1, 'auto')", {"r1", "r3"}),
        ("params.flag = true", {"r1"}),
        ("params.flag = false", set()),
        ("params.flag = null", {"r2", "r3", "r4"}),
        ("params.flag != null", {"r1"}),
        ("params.model like 'r%'", {"r1", "r2"}),
        ("params.model like 'R%'", set()),  # case-sensitive on both backends
        ("params.model like '_bm'", {"r3"}),
        ("params.model like '%in%'", {"r4"}),
        ("params.model like '%'", {"r1", "r2", "r3", "r4"}),
        ("params.missing = 1", set()),
        ("params.missing != 1", set()),
        ("params.missing like '%'", set()),
    ],
)
def test_params(db: Database, runs: dict[str, str], flt: str, expected: set[str]) -> None:
    assert matched(db, runs, flt) == expected


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("metrics.val_auc > 0.9", {"r1", "r2"}),
        ("metrics.val_auc.last > 0.9", {"r1", "r2"}),
        ("metrics.val_auc >= 0.95", {"r2"}),
        ("metrics.val_auc < 0.95", {"r1"}),  # r3's last is NaN: no comparison matches it
        ("metrics.val_auc <= 1", {"r1", "r2"}),
        ("metrics.val_auc = 0.91", {"r1"}),
        ("metrics.val_auc != 0.91", {"r2"}),
        ("metrics.val_auc in (0.91, 0.95, 0.99)", {"r1", "r2"}),
        ("metrics.val_auc = null", {"r3", "r4"}),  # NaN last, and no metric at all
        ("metrics.val_auc != null", {"r1", "r2"}),
        ("metrics.val_auc.min >= 0.5", {"r1", "r2"}),
        ("metrics.val_auc.min < 0.5", {"r3"}),
        ("metrics.val_auc.max < 0.9", {"r3"}),
        ("metrics.val_auc.max = 0.95", {"r2"}),
        ("metrics.val_auc.max != null", {"r1", "r2", "r3"}),
        ("metrics.loss < 1", {"r1"}),
        ("metrics.loss != 0.2", set()),
        ("metrics.loss.max >= 1", {"r1"}),
        ("metrics.nothing > -1e300", set()),
    ],
)
def test_metrics(db: Database, runs: dict[str, str], flt: str, expected: set[str]) -> None:
    assert matched(db, runs, flt) == expected


# --------------------------------------------------------------------------- tags and attributes


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("tags.team = 'growth'", {"r1"}),
        ("tags.team != 'growth'", {"r2"}),
        ("tags.team like 'G%'", {"r2"}),
        ("tags.team like '%row%'", {"r1", "r2"}),
        ("tags.team in ('growth', 'Growth')", {"r1", "r2"}),
        ("tags.team > 'a'", {"r1"}),
        ("tags.team = null", {"r3", "r4"}),
        ("tags.team != null", {"r1", "r2"}),
        ("status = 'finished'", {"r1", "r2"}),
        ("status = 'FINISHED'", {"r1", "r2"}),
        ("attributes.status != 'finished'", {"r3", "r4"}),
        ("status in ('failed', 'running')", {"r3", "r4"}),
        ("status like 'f%'", {"r1", "r2", "r3"}),
        ("name = 'lin'", {"r4"}),
        ("name like 'rf-%'", {"r1", "r2"}),
        ("attributes.run_name like '%-1%'", {"r2", "r3"}),
        ("name != 'lin'", {"r1", "r2", "r3"}),
        ("name > 'm'", {"r1", "r2"}),
        ("attributes.user = 'ana'", {"r1", "r3"}),
        ("attributes.user != 'ana'", {"r2"}),  # r4 has no user: unset never compares
        ("attributes.user = null", {"r4"}),
        ("start_time > '2024-05-01T10:30:00Z'", {"r3", "r4"}),
        ("start_time >= '2024-05-01T10:00:00+00:00'", {"r2", "r3", "r4"}),
        ("start_time < '2024-05-01T11:30:00+02:00'", {"r1"}),  # 09:30 UTC
        (f"start_time >= {(T0 + timedelta(hours=2)).timestamp():.0f}", {"r2", "r3", "r4"}),
        (f"start_time >= {(T0 + timedelta(hours=2)).timestamp() * 1000:.0f}", {"r2", "r3", "r4"}),
        ("start_time = '2024-05-01T09:00:00Z'", {"r1"}),
        ("start_time in ('2024-05-01T09:00:00Z', '2024-05-01T12:00:00Z')", {"r1", "r4"}),
        ("start_time > '2024-05-02'", set()),
        ("end_time = null", {"r4"}),
        ("end_time != null", {"r1", "r2", "r3"}),
        ("end_time <= '2024-05-01T11:00:00Z'", {"r1", "r2"}),
        ("end_time > '2000-01-01'", {"r1", "r2", "r3"}),
    ],
)
def test_tags_and_attributes(db: Database, runs: dict[str, str], flt: str, expected: set[str]) -> None:
    assert matched(db, runs, flt) == expected


def test_id_attribute(db: Database, runs: dict[str, str]) -> None:
    assert matched(db, runs, f"id = '{runs['r2']}'") == {"r2"}
    assert matched(db, runs, f"attributes.run_id != '{runs['r2']}'") == {"r1", "r3", "r4"}
    assert matched(db, runs, f"id in ('{runs['r1']}', '{runs['r5']}')") == {"r1"}
    assert matched(db, runs, f"id in ('{runs['r1']}', '{runs['r5']}')", project=None) == {"r1", "r5"}
    assert matched(db, runs, f"id like '%{runs['r3'][-12:]}'") == {"r3"}


# --------------------------------------------------------------------------- boolean structure


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("params.max_depth >= 8 and metrics.val_auc > 0.92", {"r2"}),
        ("params.model = 'rf' and metrics.val_auc > 0.92 or status = 'running'", {"r2", "r4"}),
        ("(params.model = 'rf' and metrics.val_auc > 0.92) or status = 'running'", {"r2", "r4"}),
        ("params.model = 'rf' and (metrics.val_auc > 0.92 or tags.team = 'growth')", {"r1", "r2"}),
        ("params.model = 'gbm' or params.model = 'linear' or tags.team = 'growth'", {"r1", "r3", "r4"}),
        ("not params.max_depth >= 8", {"r3", "r4"}),  # complement: r4 has no numeric max_depth
        ("not metrics.val_auc > 0.9", {"r3", "r4"}),
        ("not tags.team = 'growth'", {"r2", "r3", "r4"}),
        ("not end_time != null", {"r4"}),
        ("not attributes.user = 'ana'", {"r2", "r4"}),
        ("not (status = 'finished' or status = 'failed')", {"r4"}),
        ("not not status = 'running'", {"r4"}),
        ("not params.model like 'r%' and not params.model = 'linear'", {"r3"}),
        ("status = 'finished' and not (params.lr < 0.05)", {"r1"}),
        ("params.max_depth >= 8 and params.max_depth <= 8", {"r1"}),
        ("metrics.val_auc > 0.9 and metrics.val_auc.min > 0.55 and metrics.val_auc.max >= 0.95", {"r2"}),
        ("params.max_depth > 100 or metrics.val_auc.min < 0.45", {"r3"}),
        ("(((status = 'failed')))", {"r3"}),
    ],
)
def test_and_or_not_parentheses(db: Database, runs: dict[str, str], flt: str, expected: set[str]) -> None:
    assert matched(db, runs, flt) == expected


def test_project_scoping(db: Database, runs: dict[str, str]) -> None:
    assert matched(db, runs, "params.max_depth >= 8") == {"r1", "r2"}
    assert matched(db, runs, "params.max_depth >= 8", project="other") == {"r5"}
    assert matched(db, runs, "params.max_depth >= 8", project=None) == {"r1", "r2", "r5"}
    assert matched(db, runs, "attributes.project = 'other'", project=None) == {"r5"}
    assert names(db, runs, project="nobody") == []


# --------------------------------------------------------------------------- ordering and limit


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (None, ["r4", "r3", "r2", "r1"]),  # start_time desc
        ("", ["r4", "r3", "r2", "r1"]),
        ("start_time", ["r1", "r2", "r3", "r4"]),
        ("start_time desc", ["r4", "r3", "r2", "r1"]),
        # NaN (r3) and missing (r4) sort last in both directions; ties by start_time desc
        ("metrics.val_auc desc", ["r2", "r1", "r4", "r3"]),
        ("metrics.val_auc", ["r1", "r2", "r4", "r3"]),
        ("metrics.val_auc.min desc", ["r2", "r1", "r3", "r4"]),
        ("metrics.val_auc.max asc", ["r3", "r1", "r2", "r4"]),
        # numeric values by number, then text values, then missing
        ("params.max_depth desc", ["r2", "r1", "r3", "r4"]),
        ("params.max_depth asc", ["r3", "r1", "r2", "r4"]),
        ("params.lr", ["r2", "r1", "r3", "r4"]),
        ("params.flag desc", ["r1", "r4", "r3", "r2"]),
        ("tags.team", ["r2", "r1", "r4", "r3"]),  # binary order: 'Growth' < 'growth'
        ("tags.team desc", ["r1", "r2", "r4", "r3"]),
        ("name", ["r3", "r4", "r2", "r1"]),
        ("attributes.run_name desc", ["r1", "r2", "r4", "r3"]),
        ("end_time desc", ["r3", "r2", "r1", "r4"]),
        ("end_time asc", ["r1", "r2", "r3", "r4"]),
        ("attributes.user", ["r3", "r1", "r2", "r4"]),  # ana, ana (later start first), bo, unset
        ("status, start_time", ["r3", "r1", "r2", "r4"]),
        ("params.model asc, metrics.val_auc desc", ["r3", "r4", "r2", "r1"]),
        (["params.model desc", "metrics.val_auc"], ["r1", "r2", "r4", "r3"]),
    ],
)
def test_order_by(db: Database, runs: dict[str, str], order_by: Any, expected: list[str]) -> None:
    assert names(db, runs, order_by=order_by) == expected


def test_ties_break_on_start_time_then_id(db: Database) -> None:
    ids = sorted(new_id() for _ in range(3))
    for rid in ids:
        add_run(db, "same", start=T0, run_id=rid, metrics={"m": (1.0, 1.0, 1.0)})
    with db.read() as conn:
        assert search_runs(conn, project="churn", order_by="metrics.m desc") == ids[::-1]
        assert search_runs(conn, project="churn") == ids[::-1]


def test_filter_order_and_limit_together(db: Database, runs: dict[str, str]) -> None:
    flt = "params.max_depth >= 4 and metrics.val_auc.max > 0.5"
    assert names(db, runs, flt, order_by="metrics.val_auc.max desc") == ["r2", "r1", "r3"]
    assert names(db, runs, flt, order_by="metrics.val_auc.max desc", limit=2) == ["r2", "r1"]
    assert names(db, runs, flt, order_by="metrics.val_auc.max desc", limit=1) == ["r2"]
    assert names(db, runs, flt, order_by="metrics.val_auc.max desc", limit=0) == []
    assert names(db, runs, flt, order_by="metrics.val_auc.max desc", limit=100) == ["r2", "r1", "r3"]
    # the ordered metric is also filtered on: the inner join serves both
    assert names(db, runs, "metrics.val_auc > 0", order_by="metrics.val_auc desc", limit=10) == ["r2", "r1"]
    assert names(db, runs, None, order_by="metrics.val_auc desc", limit=2) == ["r2", "r1"]


def test_bad_input(db: Database, runs: dict[str, str]) -> None:
    with db.read() as conn:
        with pytest.raises(FilterSyntaxError) as info:
            search_runs(conn, project="churn", filter="params.max_depth 8")
        assert info.value.position == 17
        with pytest.raises(FilterSyntaxError) as info:
            search_runs(conn, project="churn", order_by="metrics.x sideways")
        assert info.value.kind == "order-by"
        for bad in (-1, 1.5, True, "10"):
            with pytest.raises(InvalidInput):
                search_runs(conn, project="churn", limit=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            search_runs(conn, project="churn", order_by=[1, 2])  # type: ignore[list-item]


def test_like_metacharacters_are_literal_except_percent_and_underscore(db: Database) -> None:
    odd = add_run(db, "odd", start=T0, params={"pattern": "a*[b]?c\\d%e"})
    plain = add_run(db, "plain", start=T0, params={"pattern": "aXXbc"})
    by_id = {odd: "odd", plain: "plain"}

    def like(pattern: str) -> set[str]:
        literal = pattern.replace("\\", "\\\\").replace("'", "\\'")
        with db.read() as conn:
            return {by_id[i] for i in search_runs(conn, filter=f"params.pattern like '{literal}'")}

    assert like("a*[b]?c\\d%e") == {"odd"}
    assert like("a*%") == {"odd"}
    assert like("a%") == {"odd", "plain"}
    assert like("a_[b]%") == {"odd"}
    assert like("%\\d%") == {"odd"}
    assert like("a__bc") == {"plain"}
    assert like("A%") == set()


def test_one_select_statement() -> None:
    stmt = build_query(project="churn", filter="params.a = 1 or (metrics.b > 2 and not tags.c = 'x')",
                       order_by="metrics.b desc, params.a", limit=10)
    sql = str(stmt)
    assert sql.count("SELECT runs.id") == 1
    assert sql.strip().startswith("SELECT runs.id")


def test_matches_a_python_reference_on_random_filters(db: Database) -> None:
    """A small randomized cross-check: SQL results equal a straightforward Python evaluation."""
    import random

    rnd = random.Random(7)
    data: dict[str, dict[str, Any]] = {}
    for i in range(30):
        params = {}
        if rnd.random() < 0.8:
            params["depth"] = rnd.choice([2, 4, 8, 16])
        if rnd.random() < 0.8:
            params["algo"] = rnd.choice(["rf", "gbm", "lin"])
        metric = rnd.choice([None, rnd.random()])
        rid = add_run(db, f"run-{i}", start=T0 + timedelta(minutes=i), params=params,
                      metrics={} if metric is None else {"auc": (metric, metric, metric)})
        data[rid] = {"params": params, "auc": metric}

    def atom() -> tuple[str, Any]:
        kind = rnd.choice(["depth", "algo", "auc"])
        if kind == "depth":
            op, v = rnd.choice(["=", "!=", "<", ">=", ">"]), rnd.choice([2, 4, 8, 16])
            ops = {"=": lambda a: a == v, "!=": lambda a: a != v, "<": lambda a: a < v,
                   ">=": lambda a: a >= v, ">": lambda a: a > v}
            return f"params.depth {op} {v}", lambda r: "depth" in r["params"] and ops[op](r["params"]["depth"])
        if kind == "algo":
            v = rnd.choice(["rf", "gbm", "lin"])
            op = rnd.choice(["=", "!="])
            return (f"params.algo {op} '{v}'",
                    lambda r: "algo" in r["params"] and ((r["params"]["algo"] == v) == (op == "=")))
        v = round(rnd.random(), 2)
        return f"metrics.auc > {v}", lambda r: r["auc"] is not None and r["auc"] > v

    def expr(depth: int = 0) -> tuple[str, Any]:
        roll = rnd.random()
        if depth > 2 or roll < 0.4:
            return atom()
        if roll < 0.55:
            text, fn = expr(depth + 1)
            return f"not ({text})", lambda r, fn=fn: not fn(r)
        (lt, lf), (rt, rf) = expr(depth + 1), expr(depth + 1)
        if roll < 0.8:
            return f"({lt}) and ({rt})", lambda r, lf=lf, rf=rf: lf(r) and rf(r)
        return f"({lt}) or ({rt})", lambda r, lf=lf, rf=rf: lf(r) or rf(r)

    with db.read() as conn:
        for _ in range(60):
            text, fn = expr()
            expected = {rid for rid, rec in data.items() if fn(rec)}
            assert set(search_runs(conn, project="churn", filter=text)) == expected, text


def test_selects_from_the_tracking_tables_of_the_schema() -> None:
    # The names of docs/design/tracking.md ("Tables"): the query reads these columns.
    for table, cols in [
        (schema.runs, {"id", "project", "name", "status", "start_time", "end_time", "user", "host", "parent_id"}),
        (schema.params, {"run_id", "key", "value", "text", "number"}),
        (schema.run_tags, {"run_id", "key", "value"}),
        (schema.metric_summaries, {"run_id", "key", "last", "min", "max", "last_is_nan"}),
    ]:
        assert cols <= set(table.c.keys()), table.name
    assert select(schema.runs.c.id) is not None


def test_resolve_run_ids(db: Database) -> None:
    base = "0190aaaa-bbbb-7ccc-8ddd-"
    a = add_run(db, "a", start=T0, run_id=base + "000000000001")
    b = add_run(db, "b", start=T0, run_id=base + "000000000002")
    c = add_run(db, "c", start=T0, run_id="0190ffff-0000-7000-8000-000000000000")
    with db.read() as conn:
        assert resolve_run_ids(conn, [a, b.upper()[:-1] + "2", "0190ff", c[:10]]) == [a, b, c, c]
        with pytest.raises(InvalidInput, match="ambiguous") as info:
            resolve_run_ids(conn, ["0190aaaa"])
        assert set(info.value.fields["matches"]) == {a, b}
        assert a in str(info.value) and b in str(info.value)
        with pytest.raises(InvalidInput, match="too short"):
            resolve_run_ids(conn, ["0190f"])
        with pytest.raises(NotFound):
            resolve_run_ids(conn, ["0190abcdef"])
        with pytest.raises(NotFound):
            resolve_run_ids(conn, ["0190a%"])
        with pytest.raises(InvalidInput):
            resolve_run_ids(conn, [""])


def test_runs_made_by_start_run(database_url: str, tmp_path: Any) -> None:
    """The same query over runs written by mlark.start_run (the writer, the summaries it keeps)."""
    from mlark import api
    from mlark.ops.repo import Repo
    from mlark.tracking.capture import Capture

    repo = Repo.init(tmp_path, database=database_url)
    try:
        for depth in (4, 8, 12):
            with api.start_run(project="churn", name=f"d{depth}", params={"max_depth": depth, "algo": "rf"},
                               repo=repo, capture=Capture.none()) as run:
                for step in range(5):
                    run.log({"val_auc": depth / 20 + step / 100, "loss": 1.0 / (step + 1)}, step=step)
                run.set_tag("kind", "forest" if depth > 4 else "stump")
        with api.start_run(project="churn", name="nan", params={"max_depth": 9}, repo=repo,
                           capture=Capture.none()) as run:
            run.log({"val_auc": 0.7}, step=0)
            run.log({"val_auc": float("nan")}, step=1)
        flt = "params.max_depth >= 8 and metrics.val_auc > 0.4"
        with repo.db.read() as conn:
            by_id = {rid: name for rid, name in conn.execute(select(schema.runs.c.id, schema.runs.c.name))}
            ids = search_runs(conn, project="churn", filter=flt, order_by="metrics.val_auc desc", limit=10)
            assert [by_id[i] for i in ids] == ["d12", "d8"]
            ids = search_runs(conn, project="churn", filter="metrics.val_auc.max >= 0.4", order_by="metrics.val_auc")
            assert [by_id[i] for i in ids] == ["d8", "d12", "nan"]  # nan's last is NaN: sorts last
            ids = search_runs(conn, filter="tags.kind = 'forest' and metrics.loss.min < 0.25 and status = 'finished'")
            assert sorted(by_id[i] for i in ids) == ["d12", "d8"]
        found = api.runs("churn", filter=flt, order_by="metrics.val_auc desc", limit=10, repo=repo)
        assert [r.name for r in found] == ["d12", "d8"]
        assert found[0].params["max_depth"] == 12
    finally:
        repo.close()


def test_many_keys_past_the_join_budget(db: Database) -> None:
    """More keys than joins allowed: the rest become semi-joins and scalar sub-queries, with the same answers."""
    n = 40
    metrics_a = {f"m{i}": (1.0, 1.0, 1.0) for i in range(n)}
    metrics_b = dict(metrics_a, m35=(2.0, 2.0, 2.0))
    a = add_run(db, "a", start=T0, params={f"p{i}": i for i in range(n)}, metrics=metrics_a)
    b = add_run(db, "b", start=T0 - timedelta(hours=1), params={f"p{i}": i for i in range(n)}, metrics=metrics_b)
    add_run(db, "c", start=T0, params={**{f"p{i}": i for i in range(n)}, "p39": -1}, metrics=metrics_a)
    flt = " and ".join(f"params.p{i} = {i}" for i in range(n))
    order = ", ".join(f"metrics.m{i} desc" for i in range(n))
    with db.read() as conn:
        assert search_runs(conn, filter=flt) == [a, b]  # start_time desc
        assert search_runs(conn, filter=flt, order_by=order) == [b, a]  # decided by m35, past the budget
        assert search_runs(conn, filter=flt, order_by=order.replace("m35 desc", "m35 asc")) == [a, b]


def test_filter_size_limits() -> None:
    from mlark.tracking.filterlang import MAX_COMPARISONS, MAX_DEPTH

    with pytest.raises(FilterSyntaxError, match="at most"):
        build_query(filter=" or ".join(f"params.p{i} = 1" for i in range(MAX_COMPARISONS + 1)))
    with pytest.raises(FilterSyntaxError, match="nested"):
        build_query(filter="not " * (MAX_DEPTH + 1) + "params.x = 1")
    with pytest.raises(FilterSyntaxError, match="nested"):
        build_query(filter="(" * (MAX_DEPTH + 1) + "params.x = 1" + ")" * (MAX_DEPTH + 1))
    build_query(filter="(" * MAX_DEPTH + "params.x = 1" + ")" * MAX_DEPTH)
    build_query(filter="params.x in (" + ", ".join(str(i) for i in range(20_000)) + ")")
