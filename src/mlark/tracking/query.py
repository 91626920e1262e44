"""Run search: a parsed filter and order-by compiled into one SQLAlchemy Core query.

``search_runs(conn, project=..., filter=..., order_by=..., limit=...)`` returns
run ids, in order, from one ``SELECT runs.id FROM runs ...``:

- each comparison in the top-level ``and`` of the filter on a param, metric
  or tag becomes an inner join of that key's row (``params``, ``run_tags``,
  ``metric_summaries``, all keyed by ``(run_id, key)``, so at most one row per
  run) plus a ``WHERE`` condition on it. With an index on
  ``metric_summaries (key, last)`` / ``params (key, number)`` the database can
  start from the few matching rows, in order, and stop after ``limit``;
- every other comparison (under ``or`` or ``not``, or ``= null``) is a
  semi-join ``runs.id IN (SELECT run_id FROM params WHERE key = ... AND ...)``;
- each order-by key reuses the inner join of the same key, or adds a
  ``LEFT OUTER JOIN``.

Semantics (close to MLflow's ``search_runs``):

- A comparison on a key a run does not have is false: runs missing the key
  never match, ``!=`` included. Every compiled comparison is two-valued (never
  SQL NULL), so ``not`` is the plain complement: ``not params.x = 1`` also
  matches the runs that have no ``x``.
- ``params``: a number literal compares with the numeric value (``number``);
  for ``=``, ``!=`` and ``in`` a param with no numeric value falls back to
  comparing its canonical text with the number as written. A string literal
  compares with the canonical text; ``true``/``false`` with the text of a
  boolean param.
- ``metrics.KEY[.last|.min|.max]`` reads ``metric_summaries``; a NULL there
  (no finite value, or a NaN last value) matches no comparison.
- ``tags`` compare as text.
- Attributes are columns of ``runs``; ``start_time``/``end_time`` compare
  with times. ``field = null`` matches runs where the field is missing or
  unset, ``field != null`` the runs where it has a value.
- ``like`` is case-sensitive on both backends (a ``GLOB`` on SQLite): ``%``
  matches any run of characters, ``_`` one character; there is no escape.
- Ordering: NULLs (missing keys, unset attributes, NaN) sort last in both
  directions; params sort numeric values first (by number), then the others
  by text. The default order, and the tie-breaker after any order-by, is
  ``start_time`` descending, then ``id`` descending.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from sqlalchemy import ColumnElement, Select, and_, literal, not_, or_, select
from sqlalchemy.engine import Connection

from mlark.errors import InvalidInput, NotFound
from mlark.tracking.filterlang import (
    And,
    Boolean,
    Comparison,
    Expr,
    Field,
    In,
    Like,
    Not,
    Null,
    Number,
    Or,
    OrderKey,
    Value,
    parse_filter,
    parse_order_by,
)

__all__ = ["DEFAULT_ORDER", "MIN_PREFIX", "build_query", "resolve_run_ids", "search_runs"]

#: The shortest run id prefix accepted where a run id is expected (the CLI).
MIN_PREFIX = 6

#: At most this many joins per query (SQLite allows 64 tables in a join); further
#: comparisons become semi-joins and further order keys scalar sub-queries.
MAX_JOINS = 16

#: Order used when none is given, and as the tie-breaker after the given keys.
DEFAULT_ORDER = "start_time desc"

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _tables() -> Any:
    from mlark.meta import schema

    return schema


def search_runs(
    conn: Connection,
    *,
    project: str | None = None,
    filter: str | Expr | None = None,  # noqa: A002  (the public name of the argument)
    order_by: str | Sequence[str] | Sequence[OrderKey] | None = None,
    limit: int | None = None,
) -> list[str]:
    """Ids of the runs of ``project`` (every project when None) that match ``filter``, ordered, at most ``limit``.

    ``filter`` and ``order_by`` follow the grammar of :mod:`mlark.tracking.filterlang`
    (``order_by`` may also be a list of strings); a bad one raises
    :class:`mlark.errors.FilterSyntaxError`. Runs one query on ``conn``.
    """
    stmt = build_query(project=project, filter=filter, order_by=order_by, limit=limit, dialect=conn.dialect.name)
    return [row[0] for row in conn.execute(stmt)]


def build_query(
    *,
    project: str | None = None,
    filter: str | Expr | None = None,  # noqa: A002
    order_by: str | Sequence[str] | Sequence[OrderKey] | None = None,
    limit: int | None = None,
    dialect: str = "sqlite",
) -> Select[Any]:
    """The ``SELECT runs.id ...`` statement :func:`search_runs` runs, for ``dialect`` ("sqlite" or "postgresql")."""
    expr = parse_filter(filter) if filter is None or isinstance(filter, str) else filter
    keys = _order_keys(order_by)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInput(f"limit must be a whole number >= 0, got {limit!r}", field="limit", value=repr(limit))
    return _Compiler(_tables(), dialect).build(project, expr, keys, limit)


def resolve_run_ids(conn: Connection, texts: Sequence[str], *, min_prefix: int = MIN_PREFIX) -> list[str]:
    """Full run ids for ``texts``, each a full id or a unique prefix of at least ``min_prefix`` characters.

    A prefix that matches no run is :class:`NotFound`; one that is too short,
    or that matches several runs, is :class:`InvalidInput` listing (up to five
    of) the candidates.
    """
    runs = _tables().runs
    out: list[str] = []
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"a run id must be a non-empty string, got {text!r:.40}", field="run")
        given = text.strip()
        if conn.execute(select(runs.c.id).where(runs.c.id == given)).first() is not None:
            out.append(given)
            continue
        prefix = given.lower()
        if len(prefix) < min_prefix:
            raise InvalidInput(
                f"run id prefix {given!r} is too short: give at least {min_prefix} characters of the id",
                field="run", value=given,
            )
        if any(c not in "0123456789abcdef-" for c in prefix):
            raise NotFound(f"no run with id {given!r} (run ids are hexadecimal UUIDs)", kind="run", id=given)
        rows = conn.execute(
            select(runs.c.id, runs.c.name, runs.c.project, runs.c.start_time)
            .where(runs.c.id.like(prefix + "%"))
            .order_by(runs.c.start_time.desc())
            .limit(6)
        ).all()
        if not rows:
            raise NotFound(f"no run whose id starts with {given!r}", kind="run", id=given)
        if len(rows) > 1:
            shown = "; ".join(f"{r.id} ({r.project}/{r.name})" for r in rows[:5])
            more = ", and more" if len(rows) > 5 else ""
            raise InvalidInput(
                f"run id prefix {given!r} is ambiguous: it matches {shown}{more}; give more characters",
                field="run", value=given, matches=[r.id for r in rows[:5]],
            )
        out.append(rows[0].id)
    return out


def _order_keys(order_by: str | Sequence[str] | Sequence[OrderKey] | None) -> tuple[OrderKey, ...]:
    if order_by is None:
        return ()
    if isinstance(order_by, str):
        return parse_order_by(order_by)
    items = list(order_by)
    if all(isinstance(k, OrderKey) for k in items):
        return tuple(items)  # type: ignore[arg-type]
    if all(isinstance(k, str) for k in items):
        return parse_order_by(items)  # type: ignore[arg-type]
    raise InvalidInput(
        "order_by must be a string or a list of strings like 'metrics.val_auc desc'",
        field="order_by",
        value=repr(order_by),
    )


def _conjuncts(expr: Expr | None) -> list[Expr]:
    if expr is None:
        return []
    if isinstance(expr, And):
        return [c for e in expr.operands for c in _conjuncts(e)]
    return [expr]


def _text_of(value: Value) -> str:
    if isinstance(value, Boolean):
        return "true" if value.value else "false"
    if isinstance(value, Number):
        return value.text
    return str(value.value)


class _Compiler:
    def __init__(self, tables: Any, dialect: str) -> None:
        self.t = tables
        self.runs = tables.runs
        self.dialect = dialect
        self.source: Any = tables.runs
        self.inner: dict[tuple[str, str], Any] = {}
        self.outer: dict[tuple[str, str], Any] = {}

    # ------------------------------------------------------------- statement

    def build(self, project: str | None, expr: Expr | None, keys: tuple[OrderKey, ...], limit: int | None) -> Select[Any]:
        where: list[Any] = []
        if project is not None:
            where.append(self.runs.c.project == project)
        for part in _conjuncts(expr):
            if self._joinable(part) and self._can_join(part.field):  # type: ignore[union-attr]
                alias = self._join(part.field, inner=True)  # type: ignore[union-attr]
                where.append(self._row_condition(alias, part))
            else:
                where.append(self._compile(part))
        order: list[Any] = []
        for key in keys:
            order.extend(self._order(key))
        order.extend([self.runs.c.start_time.desc(), self.runs.c.id.desc()])
        stmt = select(self.runs.c.id).select_from(self.source)
        if where:
            stmt = stmt.where(*where)
        stmt = stmt.order_by(*order)
        if limit is not None:
            stmt = stmt.limit(limit)
        return stmt

    @staticmethod
    def _joinable(part: Expr) -> bool:
        if not isinstance(part, (Comparison, In, Like)) or part.field.kind == "attribute":
            return False
        return not (isinstance(part, Comparison) and isinstance(part.value, Null))

    def _table(self, field: Field) -> Any:
        return {"param": self.t.params, "tag": self.t.run_tags, "metric": self.t.metric_summaries}[field.kind]

    def _can_join(self, field: Field) -> bool:
        ident = (field.kind, field.key)
        return ident in self.inner or ident in self.outer or len(self.inner) + len(self.outer) < MAX_JOINS

    def _join(self, field: Field, *, inner: bool) -> Any:
        ident = (field.kind, field.key)
        if ident in self.inner:
            return self.inner[ident]
        if not inner and ident in self.outer:
            return self.outer[ident]
        n = len(self.inner) + len(self.outer)
        table = self._table(field)
        alias = table.alias(f"{table.name}_{n}")
        on = and_(alias.c.run_id == self.runs.c.id, alias.c.key == field.key)
        if inner:
            self.source = self.source.join(alias, on)
            self.inner[ident] = alias
        else:
            self.source = self.source.outerjoin(alias, on)
            self.outer[ident] = alias
        return alias

    # ------------------------------------------------------------- ordering

    def _order(self, key: OrderKey) -> list[Any]:
        field = key.field

        def directed(col: Any) -> Any:
            return (col.desc() if key.descending else col.asc()).nulls_last()

        if field.kind == "attribute":
            return [directed(self.runs.c[field.key])]
        if not self._can_join(field):
            return [directed(self._scalar(field, col)) for col in self._order_columns(field)]
        row = self._join(field, inner=False)
        if field.kind == "param":
            # numeric values first (by number), then the others by text; missing last
            return [directed(row.c.number), directed(row.c.text)]
        if field.kind == "tag":
            return [directed(row.c.value)]
        return [directed(row.c[field.aggregate or "last"])]

    @staticmethod
    def _order_columns(field: Field) -> list[str]:
        if field.kind == "param":
            return ["number", "text"]
        if field.kind == "tag":
            return ["value"]
        return [field.aggregate or "last"]

    def _scalar(self, field: Field, column: str) -> Any:
        """``(SELECT column FROM table WHERE run_id = runs.id AND key = ...)``: ordering past the join budget."""
        table = self._table(field)
        return (
            select(table.c[column])
            .where(table.c.run_id == self.runs.c.id, table.c.key == field.key)
            .scalar_subquery()
        )

    # ------------------------------------------------------------- filter

    def _compile(self, expr: Expr) -> ColumnElement[bool]:
        if isinstance(expr, And):
            return and_(*(self._compile(e) for e in expr.operands))
        if isinstance(expr, Or):
            return or_(*(self._compile(e) for e in expr.operands))
        if isinstance(expr, Not):
            return not_(self._compile(expr.operand))
        field = expr.field
        if field.kind == "attribute":
            return self._attribute_condition(expr)
        table = self._table(field)
        if isinstance(expr, Comparison) and isinstance(expr.value, Null):
            present = [] if field.kind == "param" else [self._value_column(table, field).is_not(None)]
            cond = self._exists(table, field, *present)
            return not_(cond) if expr.op == "=" else cond
        return self._exists(table, field, self._row_condition(table, expr))

    def _exists(self, table: Any, field: Field, *conditions: Any) -> ColumnElement[bool]:
        """``runs.id IN (SELECT run_id FROM table WHERE key = ... AND conditions)``: true or false, never NULL.

        A semi-join rather than a correlated EXISTS: the database can answer
        the sub-query from the ``(key, value)`` indexes once, which makes
        ``or`` and ``not`` over selective comparisons cheap.
        """
        return self.runs.c.id.in_(select(table.c.run_id).where(table.c.key == field.key, *conditions))

    @staticmethod
    def _value_column(row: Any, field: Field) -> Any:
        if field.kind == "tag":
            return row.c.value
        if field.kind == "metric":
            return row.c[field.aggregate or "last"]
        return row.c.text

    def _row_condition(self, row: Any, expr: Comparison | In | Like) -> ColumnElement[bool]:
        """The condition on the key's row (a table or an alias of it) for ``expr``."""
        field = expr.field
        if isinstance(expr, Like):
            col = row.c.text if field.kind == "param" else row.c.value
            return self._like(col, expr.pattern)
        if field.kind == "param":
            return self._param_condition(row, expr)
        col = self._value_column(row, field)
        if field.kind == "metric":
            if isinstance(expr, In):
                return and_(col.is_not(None), col.in_([float(v.value) for v in expr.values]))  # type: ignore[arg-type]
            return and_(col.is_not(None), _OPS[expr.op](col, float(expr.value.value)))  # type: ignore[arg-type]
        if isinstance(expr, In):
            return col.in_([_text_of(v) for v in expr.values])
        return _OPS[expr.op](col, _text_of(expr.value))

    @staticmethod
    def _param_condition(row: Any, expr: Comparison | In) -> ColumnElement[bool]:
        number, text = row.c.number, row.c.text
        if isinstance(expr, In):
            nums = [v for v in expr.values if isinstance(v, Number)]
            others = [_text_of(v) for v in expr.values if not isinstance(v, Number)]
            conds = []
            if nums:
                conds.append(and_(number.is_not(None), number.in_([v.value for v in nums])))
                conds.append(and_(number.is_(None), text.in_([v.text for v in nums])))
            if others:
                conds.append(text.in_(others))
            return or_(*conds)
        cmp = _OPS[expr.op]
        value = expr.value
        if isinstance(value, Number):
            numeric = and_(number.is_not(None), cmp(number, value.value))
            if expr.op in ("=", "!="):
                return or_(numeric, and_(number.is_(None), cmp(text, value.text)))
            return numeric
        return cmp(text, _text_of(value))

    def _attribute_condition(self, expr: Comparison | In | Like) -> ColumnElement[bool]:
        col = self.runs.c[expr.field.key]
        if isinstance(expr, Like):
            return and_(col.is_not(None), self._like(col, expr.pattern))
        if isinstance(expr, In):
            return and_(col.is_not(None), col.in_([v.value for v in expr.values]))
        if isinstance(expr.value, Null):
            return col.is_(None) if expr.op == "=" else col.is_not(None)
        return and_(col.is_not(None), _OPS[expr.op](col, expr.value.value))

    def _like(self, col: Any, pattern: str) -> ColumnElement[bool]:
        """``col LIKE pattern``, case-sensitive on both backends, with no escape character.

        SQLite's LIKE ignores ASCII case, so there the pattern becomes a GLOB
        (``%`` -> ``*``, ``_`` -> ``?``, GLOB's own metacharacters bracketed).
        PostgreSQL's LIKE is case-sensitive but treats backslash as an escape:
        backslashes are doubled so that they match themselves.
        """
        if self.dialect == "sqlite":
            glob = "".join({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(c, c) for c in pattern)
            return col.op("GLOB", is_comparison=True)(literal(glob))
        return col.like(pattern.replace("\\", "\\\\"))
