"""The run filter language's vocabulary and syntax tree: fields, values, expressions, order keys.

The grammar, and what each node means, is in :mod:`mlark.tracking.filterlang`. Nodes are frozen
dataclasses; where a node was written (``position``) does not take part in equality.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dc_field
from datetime import datetime
from typing import Literal, Union

from mlark.tracking.keys import STATUSES

__all__ = [
    "ATTRIBUTES", "And", "BARE_FIELDS", "Boolean", "COMPARISON_OPS", "Comparison", "Expr", "Field", "In",
    "KEY_RE", "Like", "Not", "Null", "Number", "Or", "OrderKey", "RUN_STATUSES", "String", "TIME_ATTRIBUTES",
    "Time", "Value",
]

# --------------------------------------------------------------------------- vocabulary

RUN_STATUSES: tuple[str, ...] = STATUSES

#: Attribute names usable as ``attributes.NAME`` (canonical names).
ATTRIBUTES: tuple[str, ...] = ("id", "name", "status", "start_time", "end_time", "project", "user", "host", "parent_id")
#: Attributes that may be written without the ``attributes.`` prefix.
BARE_FIELDS: tuple[str, ...] = ("status", "name", "start_time", "end_time", "id")
TIME_ATTRIBUTES = frozenset({"start_time", "end_time"})
COMPARISON_OPS: tuple[str, ...] = ("=", "!=", "<", "<=", ">", ">=")

#: A key written without backticks: letters, digits, ``_`` and ``-``.
KEY_RE = re.compile(r"\w[\w-]*")

# What the tokenizer and the parser say they expected, in their errors.
EXPECT_FIELD = (
    "a field (params.KEY, metrics.KEY[.last|.min|.max], tags.KEY, attributes.NAME, "
    "status, name, start_time, end_time or id)"
)
EXPECT_OPERATOR = "a comparison operator (=, !=, <, <=, >, >=, in, like)"
EXPECT_VALUE = "a value (a number, a 'string', true, false or null)"
EXPECT_KEY = "a key (letters, digits, _ and -, or any text in `backticks`)"
EXPECT_ATTRIBUTE = "an attribute name (" + ", ".join(ATTRIBUTES) + ")"
EXPECT_AGGREGATE = "last, min or max"
EXPECT_AFTER_EXPR = "'and', 'or' or the end of the filter"
EXPECT_AFTER_ORDER_KEY = "asc, desc, ',' or the end of the order-by"

# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Field:
    """A thing a run has: ``kind`` is param, metric, tag or attribute.

    ``aggregate`` is last, min or max for metrics (``metrics.x`` is last) and
    None otherwise. ``position`` (where it was written) does not take part in
    equality.
    """

    kind: Literal["param", "metric", "tag", "attribute"]
    key: str
    aggregate: Literal["last", "min", "max"] | None = None
    position: int = dc_field(default=0, compare=False)

    def __str__(self) -> str:
        if self.kind == "attribute" and self.key in BARE_FIELDS:
            return self.key
        prefix = {"param": "params", "metric": "metrics", "tag": "tags", "attribute": "attributes"}[self.kind]
        key = self.key if KEY_RE.fullmatch(self.key) else "`" + self.key.replace("\\", "\\\\").replace("`", "\\`") + "`"
        text = f"{prefix}.{key}"
        if self.kind == "metric" and self.aggregate != "last":
            text += f".{self.aggregate}"
        return text


@dataclass(frozen=True)
class Number:
    value: float
    text: str  # as written, e.g. "8" or "1e-3"
    position: int = dc_field(default=0, compare=False)


@dataclass(frozen=True)
class String:
    value: str
    position: int = dc_field(default=0, compare=False)


@dataclass(frozen=True)
class Boolean:
    value: bool
    position: int = dc_field(default=0, compare=False)


@dataclass(frozen=True)
class Null:
    position: int = dc_field(default=0, compare=False)

    @property
    def value(self) -> None:
        return None


@dataclass(frozen=True)
class Time:
    """A time literal for ``start_time`` / ``end_time``, from an ISO string or epoch number; UTC-aware."""

    value: datetime
    position: int = dc_field(default=0, compare=False)


Value = Union[Number, String, Boolean, Null, Time]


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: Literal["=", "!=", "<", "<=", ">", ">="]
    value: Value


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Like:
    field: Field
    pattern: str  # SQL LIKE pattern: % any run of characters, _ one character; case-sensitive


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    operand: Expr


Expr = Union[Comparison, In, Like, And, Or, Not]


@dataclass(frozen=True)
class OrderKey:
    field: Field
    descending: bool = False

    def __str__(self) -> str:
        return f"{self.field} {'desc' if self.descending else 'asc'}"
