"""The run filter language: a tokenizer, a recursive-descent parser and a typed AST.

This module is the language's front door: the grammar below, the entry points
(:func:`parse_filter`, :func:`parse_order_by`, :func:`parse_field`) and every
public name of its parts: the vocabulary and the tree in
:mod:`~mlark.tracking.filter_ast`, the tokenizer in
:mod:`~mlark.tracking.filter_lexer`, the parser in
:mod:`~mlark.tracking.filter_parser`. :mod:`mlark.tracking.query` compiles the
tree to SQL.

Grammar (docs/design/tracking.md, "Filter language")::

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | atom
    atom       := "(" expr ")" | comparison
    comparison := field op value | field "in" "(" value ("," value)* ")" | field "like" string
    field      := ("params" | "metrics" | "tags" | "attributes") "." key ["." ("last"|"min"|"max")]
                  | "status" | "name" | "start_time" | "end_time" | "id"
    op         := "=" | "!=" | "<" | "<=" | ">" | ">="
    value      := number | string | true | false | null

    order_by   := order_key ("," order_key)*
    order_key  := field ["asc" | "desc"]

Lexical rules:

- Keywords (``and or not in like true false null asc desc``) and field
  prefixes are case-insensitive; keys are case-sensitive.
- A key is letters, digits, ``_`` and ``-`` (``params.max_depth``,
  ``metrics.top-5``); any other key is quoted with backticks
  (``metrics.`val/auc` ``, ``params.`optimizer.lr` ``). Inside backticks and
  strings a backslash escapes the next character (``\\n``, ``\\t`` too).
- Strings take single or double quotes. Numbers: ``8``, ``-1``, ``0.5``,
  ``.5``, ``1e-3``.
- ``metrics.KEY`` means ``metrics.KEY.last``.
- ``attributes.NAME`` names one of :data:`ATTRIBUTES` (``run_id`` and
  ``run_name`` are accepted for ``id`` and ``name``, as in MLflow); the bare
  fields ``status``, ``name``, ``start_time``, ``end_time`` and ``id`` are the
  same attributes.

Checks done while parsing (each an error pointing at the offending token):
metrics compare with numbers; ``like`` takes a string and works on text
(params, tags, text attributes); ``null`` only with ``=`` and ``!=`` (it means
"the key is missing" / "the attribute is unset"); ``start_time`` and
``end_time`` take ISO 8601 strings or epoch seconds (numbers above 1e11 are
taken as epoch milliseconds, MLflow's unit) and become :class:`Time` values;
``status`` values must be run statuses (compared in lower case).

A filter holds at most :data:`MAX_COMPARISONS` comparisons and
:data:`MAX_DEPTH` nested ``not``s and parentheses (an error past that, not a
crash deep in the parser or the database). Nothing is ever evaluated as Python: ``__import__('os')`` is a field name
that does not exist, hence a syntax error.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from mlark.errors import FilterSyntaxError
from mlark.tracking.filter_ast import (
    ATTRIBUTES,
    BARE_FIELDS,
    COMPARISON_OPS,
    RUN_STATUSES,
    TIME_ATTRIBUTES,
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
    String,
    Time,
    Value,
)
from mlark.tracking.filter_lexer import Token, tokenize
from mlark.tracking.filter_parser import MAX_COMPARISONS, MAX_DEPTH, Parser

__all__ = [
    "And",
    "ATTRIBUTES",
    "BARE_FIELDS",
    "Boolean",
    "Comparison",
    "COMPARISON_OPS",
    "Expr",
    "Field",
    "In",
    "Like",
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "Not",
    "Null",
    "Number",
    "Or",
    "OrderKey",
    "parse_field",
    "parse_filter",
    "parse_order_by",
    "RUN_STATUSES",
    "String",
    "Time",
    "TIME_ATTRIBUTES",
    "Token",
    "tokenize",
    "Value",
]


def parse_filter(text: str | None) -> Expr | None:
    """Parse a filter; None (match every run) for None or blank text.

    Raises :class:`mlark.errors.FilterSyntaxError` (an ``InvalidInput``) with
    the position and what was expected.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise FilterSyntaxError(str(text), 0, "a filter string", found=type(text).__name__)
    return Parser(text, "filter").parse_filter()


def parse_order_by(spec: str | Sequence[str] | None) -> tuple[OrderKey, ...]:
    """Parse ``"metrics.val_auc desc, start_time"`` (or a list of such strings) into order keys.

    Each key is ascending unless followed by ``desc``. Blank input gives ``()``.
    """
    if spec is None:
        return ()
    items: Iterable[str] = [spec] if isinstance(spec, str) else spec
    keys: list[OrderKey] = []
    for item in items:
        if not isinstance(item, str):
            raise FilterSyntaxError(str(item), 0, "an order-by string", found=type(item).__name__, kind="order-by")
        keys.extend(Parser(item, "order-by").parse_order_by())
    return tuple(keys)


def parse_field(text: str) -> Field:
    """Parse a single field (``metrics.loss.min``, ``params.lr``, ``status``)."""
    parser = Parser(text, "field")
    field = parser.field()
    if parser.tok.kind != "end":
        raise parser.fail("the end of the field")
    return field
