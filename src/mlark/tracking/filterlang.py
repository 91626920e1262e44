"""The run filter language: a tokenizer, a recursive-descent parser and a typed AST.

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

import re
from dataclasses import dataclass, field as dc_field
from datetime import datetime, timezone
from typing import Iterable, Literal, Sequence, Union

from mlark.errors import FilterSyntaxError
from mlark.tracking.keys import STATUSES

__all__ = [
    "And",
    "ATTRIBUTES",
    "Boolean",
    "Comparison",
    "Expr",
    "Field",
    "In",
    "Like",
    "Not",
    "Null",
    "Number",
    "Or",
    "OrderKey",
    "RUN_STATUSES",
    "String",
    "Time",
    "Token",
    "Value",
    "parse_field",
    "parse_filter",
    "parse_order_by",
    "tokenize",
]

# --------------------------------------------------------------------------- vocabulary

RUN_STATUSES: tuple[str, ...] = STATUSES

#: Attribute names usable as ``attributes.NAME`` (canonical names).
ATTRIBUTES: tuple[str, ...] = ("id", "name", "status", "start_time", "end_time", "project", "user", "host", "parent_id")
_ATTRIBUTE_ALIASES = {"run_id": "id", "run_name": "name"}
#: Attributes that may be written without the ``attributes.`` prefix.
BARE_FIELDS: tuple[str, ...] = ("status", "name", "start_time", "end_time", "id")
TIME_ATTRIBUTES = frozenset({"start_time", "end_time"})

_PREFIXES = {"params": "param", "metrics": "metric", "tags": "tag", "attributes": "attribute"}
_AGGREGATES = ("last", "min", "max")
_KEYWORDS = frozenset({"and", "or", "not", "in", "like", "true", "false", "null", "asc", "desc"})
COMPARISON_OPS: tuple[str, ...] = ("=", "!=", "<", "<=", ">", ">=")

#: Limits that keep a filter within what the parser's recursion and the databases' expression depth allow.
MAX_DEPTH = 100
MAX_COMPARISONS = 500

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
        key = self.key if _KEY_RE.fullmatch(self.key) else "`" + self.key.replace("\\", "\\\\").replace("`", "\\`") + "`"
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


# --------------------------------------------------------------------------- tokenizer

TokenKind = Literal["ident", "quoted", "string", "number", "op", "(", ")", ",", ".", "bad", "end"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # source text of the token
    value: object  # decoded: the string, the float, the identifier
    position: int

    def shown(self, kind: str) -> str:
        if self.kind == "end":
            return f"the end of the {kind}"
        text = self.text if len(self.text) <= 24 else self.text[:21] + "..."
        return repr(text)


_IDENT_RE = re.compile(r"[^\W\d]\w*")
_KEY_RE = re.compile(r"\w[\w-]*")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def tokenize(text: str, kind: str = "filter") -> list[Token]:
    """Split ``text`` into tokens, the last one of kind ``end``.

    A character that starts no token becomes a ``bad`` token, so that the
    parser reports it with what it expected there; an unterminated string or
    key and a malformed number raise :class:`FilterSyntaxError` here.
    """
    tokens: list[Token] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        prev = tokens[-1].kind if tokens else None
        if c in "(),":
            tokens.append(Token(c, c, c, i))  # type: ignore[arg-type]
            i += 1
            continue
        if c == "." and (prev in ("ident", "quoted") or not (i + 1 < n and text[i + 1].isdigit())):
            tokens.append(Token(".", ".", ".", i))
            i += 1
            continue
        if prev == "." and c != "`":
            m = _KEY_RE.match(text, i)
            if m:
                tokens.append(Token("ident", m.group(), m.group(), i))
                i = m.end()
                continue
        if c in "'\"`":
            value, end = _read_quoted(text, i, kind)
            tokens.append(Token("quoted" if c == "`" else "string", text[i:end], value, i))
            i = end
            continue
        m = _NUMBER_RE.match(text, i)
        if m and (c not in "+-" or prev != "ident"):
            end = m.end()
            if end < n and (text[end].isalnum() or text[end] in "_."):
                raise FilterSyntaxError(text, i, "a number (like 8, -1, 0.5 or 1e-3)",
                                        found=repr(_word_at(text, i)), kind=kind)
            tokens.append(Token("number", m.group(), float(m.group()), i))
            i = end
            continue
        m = _IDENT_RE.match(text, i)
        if m:
            tokens.append(Token("ident", m.group(), m.group(), i))
            i = m.end()
            continue
        two = text[i:i + 2]
        if two in ("<=", ">=", "!="):
            tokens.append(Token("op", two, two, i))
            i += 2
            continue
        if two == "==":
            raise FilterSyntaxError(text, i, "'=' (equality is a single '=')", found="'=='", kind=kind)
        if two == "<>":
            raise FilterSyntaxError(text, i, "'!=' (inequality is written '!=')", found="'<>'", kind=kind)
        if c in "=<>":
            tokens.append(Token("op", c, c, i))
            i += 1
            continue
        tokens.append(Token("bad", c, c, i))
        i += 1
    tokens.append(Token("end", "", None, n))
    return tokens


def _word_at(text: str, i: int) -> str:
    j = i
    while j < len(text) and not text[j].isspace() and text[j] not in "(),=<>!":
        j += 1
    return text[i:j] or text[i:i + 1]


def _read_quoted(text: str, start: int, kind: str) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        if c == quote:
            value = "".join(out)
            if quote == "`" and not value:
                raise FilterSyntaxError(text, start, EXPECT_KEY, found="an empty key ``", kind=kind)
            return value, i + 1
        out.append(c)
        i += 1
    what = "key" if quote == "`" else "string"
    raise FilterSyntaxError(
        text, start, f"a closing {quote} for the {what} that starts here", found=f"the end of the {kind}", kind=kind
    )


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, kind: str) -> None:
        self.text = text
        self.kind = kind
        self.tokens = tokenize(text, kind)
        self.i = 0
        self.depth = 0
        self.comparisons = 0

    # ------------------------------------------------------------- helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at_keyword(self, *words: str) -> bool:
        tok = self.tok
        return tok.kind == "ident" and str(tok.value).lower() in words

    def fail(self, expected: str, tok: Token | None = None, hint: str | None = None) -> FilterSyntaxError:
        tok = tok or self.tok
        return FilterSyntaxError(self.text, tok.position, expected, found=tok.shown(self.kind), kind=self.kind, hint=hint)

    def expect(self, kind: str, expected: str) -> Token:
        if self.tok.kind != kind:
            raise self.fail(expected)
        return self.advance()

    # ------------------------------------------------------------- filter

    def parse_filter(self) -> Expr | None:
        if self.tok.kind == "end":
            return None
        expr = self.or_expr()
        if self.tok.kind != "end":
            if self.tok.kind == ")":
                raise self.fail(EXPECT_AFTER_EXPR, hint="this ')' has no matching '('")
            hint = {"&": "write 'and'", "|": "write 'or'", "!": "write 'not', or '!=' for inequality"}.get(self.tok.text)
            raise self.fail(EXPECT_AFTER_EXPR, hint=hint if self.tok.kind == "bad" else None)
        return expr

    def or_expr(self) -> Expr:
        operands = [self.and_expr()]
        while self.at_keyword("or"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Expr:
        operands = [self.not_expr()]
        while self.at_keyword("and"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"a simpler filter (at most {MAX_DEPTH} nested 'not's and parentheses)")

    def not_expr(self) -> Expr:
        if self.at_keyword("not"):
            self.nest()
            self.advance()
            expr: Expr = Not(self.not_expr())
            self.depth -= 1
            return expr
        return self.atom()

    def atom(self) -> Expr:
        if self.tok.kind == "(":
            self.nest()
            self.advance()
            expr = self.or_expr()
            self.expect(")", "'and', 'or' or ')'")
            self.depth -= 1
            return expr
        return self.comparison()

    def comparison(self) -> Expr:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise self.fail(f"a shorter filter (at most {MAX_COMPARISONS} comparisons)")
        field = self.field(expected=EXPECT_FIELD + " or '(' or 'not'")
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            value = self.value()
            return Comparison(field, tok.value, self.check(field, tok, value))  # type: ignore[arg-type]
        if self.at_keyword("in"):
            self.advance()
            self.expect("(", "'(' to start the list of values after 'in'")
            values = [self.check(field, tok, self.value(in_list=True))]
            while self.tok.kind == ",":
                self.advance()
                values.append(self.check(field, tok, self.value(in_list=True)))
            self.expect(")", "',' or ')' to end the list of values")
            return In(field, tuple(values))
        if self.at_keyword("like"):
            if not _is_text_field(field):
                raise self.fail(
                    "a comparison operator (=, !=, <, <=, >, >=, in)",
                    hint=f"'like' matches text: params, tags and the attributes "
                         f"{', '.join(a for a in ATTRIBUTES if a not in TIME_ATTRIBUTES)}; {field} is not text",
                )
            self.advance()
            if self.tok.kind != "string":
                raise self.fail("a quoted pattern after 'like' (% matches any text, _ one character)")
            pattern = str(self.advance().value)
            if field.kind == "attribute" and field.key == "status":
                pattern = pattern.lower()
            return Like(field, pattern)
        if tok.kind == "." and field.kind != "metric":
            raise self.fail(EXPECT_OPERATOR, hint=f"quote a key that holds dots in backticks, like {_prefix(field)}.`a.b`")
        raise self.fail(EXPECT_OPERATOR)

    # ------------------------------------------------------------- fields

    def field(self, expected: str = EXPECT_FIELD) -> Field:
        tok = self.tok
        if tok.kind != "ident":
            raise self.fail(expected)
        word = str(tok.value)
        low = word.lower()
        if low in _PREFIXES:
            self.advance()
            kind = _PREFIXES[low]
            if self.tok.kind != ".":
                raise self.fail(f"'.' and a key after {word!r} (like {low}.KEY)")
            self.advance()
            key_tok = self.tok
            if key_tok.kind not in ("ident", "quoted"):
                raise self.fail(EXPECT_ATTRIBUTE if kind == "attribute" else EXPECT_KEY)
            self.advance()
            key = str(key_tok.value)
            if kind == "attribute":
                canonical = _ATTRIBUTE_ALIASES.get(key.lower(), key.lower())
                if canonical not in ATTRIBUTES:
                    raise self.fail(EXPECT_ATTRIBUTE, key_tok)
                return Field("attribute", canonical, None, tok.position)
            if kind == "metric":
                aggregate = "last"
                if self.tok.kind == ".":
                    self.advance()
                    agg_tok = self.tok
                    if agg_tok.kind != "ident" or str(agg_tok.value).lower() not in _AGGREGATES:
                        raise self.fail(
                            EXPECT_AGGREGATE, hint="quote a metric key that holds dots in backticks, like metrics.`a.b`"
                        )
                    self.advance()
                    aggregate = str(agg_tok.value).lower()
                return Field("metric", key, aggregate, tok.position)  # type: ignore[arg-type]
            return Field(kind, key, None, tok.position)  # type: ignore[arg-type]
        if low in BARE_FIELDS:
            self.advance()
            return Field("attribute", low, None, tok.position)
        hint = None
        if low not in _KEYWORDS and self.tokens[self.i + 1].kind in ("op", "ident"):
            hint = f"a key needs a prefix: params.{word}, metrics.{word} or tags.{word}"
        raise self.fail(expected, hint=hint)

    # ------------------------------------------------------------- values

    def value(self, in_list: bool = False) -> Value:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return Number(float(tok.value), tok.text, tok.position)  # type: ignore[arg-type]
        if tok.kind == "string":
            self.advance()
            return String(str(tok.value), tok.position)
        if tok.kind == "ident":
            low = str(tok.value).lower()
            if low in ("true", "false"):
                self.advance()
                return Boolean(low == "true", tok.position)
            if low == "null":
                if in_list:
                    raise self.fail("a number, a 'string', true or false (null is not allowed in a list)")
                self.advance()
                return Null(tok.position)
        hint = "quote text values: 'like this'" if tok.kind == "ident" else None
        raise self.fail(EXPECT_VALUE, hint=hint)

    def check(self, field: Field, op_tok: Token, value: Value) -> Value:
        """Type-check ``value`` against ``field``; return it, converted where needed (times, statuses)."""
        op = str(op_tok.value)
        vtok = _TokenAt(value.position)
        if isinstance(value, Null):
            if op not in ("=", "!=", "in"):
                raise self.fail("a number or a 'string' (null only compares with = and !=)", vtok.token(self))
            return value
        if field.kind == "metric":
            if not isinstance(value, Number):
                raise self.fail("a number (metrics are numbers)", vtok.token(self))
            return value
        if field.kind == "tag":
            if isinstance(value, Number) and op not in ("=", "!=", "in"):
                raise self.fail("a 'string' (tags are text; compare them with quoted values)", vtok.token(self))
            return value
        if field.kind == "attribute":
            if field.key in TIME_ATTRIBUTES:
                return self.time_value(field, value)
            if not isinstance(value, String):
                raise self.fail(f"a 'string' ({field.key} is text)", vtok.token(self))
            if field.key == "status":
                status = value.value.lower()
                if op in ("=", "!=", "in") and status not in RUN_STATUSES:
                    raise self.fail("a run status (" + ", ".join(RUN_STATUSES) + ")", vtok.token(self))
                return String(status, value.position)
            return value
        return value  # params take any value

    def time_value(self, field: Field, value: Value) -> Value:
        tok = _TokenAt(value.position).token(self)
        expected = f"an ISO 8601 time ('2024-05-01', '2024-05-01T12:00:00Z') or epoch seconds for {field.key}"
        if isinstance(value, Number):
            seconds = value.value / 1000.0 if abs(value.value) > 1e11 else value.value
            try:
                return Time(datetime.fromtimestamp(seconds, timezone.utc), value.position)
            except (OverflowError, OSError, ValueError):
                raise self.fail(expected, tok) from None
        if isinstance(value, String):
            try:
                when = datetime.fromisoformat(value.value.strip())
            except ValueError:
                raise self.fail(expected, tok) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return Time(when.astimezone(timezone.utc), value.position)
        raise self.fail(expected, tok)

    # ------------------------------------------------------------- order by

    def parse_order_by(self) -> list[OrderKey]:
        keys: list[OrderKey] = []
        if self.tok.kind == "end":
            return keys
        while True:
            field = self.field()
            descending = False
            if self.at_keyword("asc", "desc"):
                descending = str(self.advance().value).lower() == "desc"
            keys.append(OrderKey(field, descending))
            if self.tok.kind == ",":
                self.advance()
                continue
            if self.tok.kind == "end":
                return keys
            if self.tok.kind == "." and field.kind != "metric":
                raise self.fail(EXPECT_AFTER_ORDER_KEY,
                                hint=f"quote a key that holds dots in backticks, like {_prefix(field)}.`a.b`")
            raise self.fail(EXPECT_AFTER_ORDER_KEY)


@dataclass(frozen=True)
class _TokenAt:
    position: int

    def token(self, parser: _Parser) -> Token:
        for tok in parser.tokens:
            if tok.position == self.position:
                return tok
        return parser.tokens[-1]


def _prefix(field: Field) -> str:
    return {"param": "params", "metric": "metrics", "tag": "tags", "attribute": "attributes"}[field.kind]


def _is_text_field(field: Field) -> bool:
    if field.kind in ("param", "tag"):
        return True
    return field.kind == "attribute" and field.key not in TIME_ATTRIBUTES


# --------------------------------------------------------------------------- entry points


def parse_filter(text: str | None) -> Expr | None:
    """Parse a filter; None (match every run) for None or blank text.

    Raises :class:`mlark.errors.FilterSyntaxError` (an ``InvalidInput``) with
    the position and what was expected.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise FilterSyntaxError(str(text), 0, "a filter string", found=type(text).__name__)
    return _Parser(text, "filter").parse_filter()


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
        keys.extend(_Parser(item, "order-by").parse_order_by())
    return tuple(keys)


def parse_field(text: str) -> Field:
    """Parse a single field (``metrics.loss.min``, ``params.lr``, ``status``)."""
    parser = _Parser(text, "field")
    field = parser.field()
    if parser.tok.kind != "end":
        raise parser.fail("the end of the field")
    return field
