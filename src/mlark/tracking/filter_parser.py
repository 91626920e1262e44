"""The run filter language's recursive-descent parser: tokens into the syntax tree, checked as it goes.

Each error is a :class:`~mlark.errors.FilterSyntaxError` that points at the token where the
parser stopped and says what it expected there. The entry points are in
:mod:`mlark.tracking.filterlang`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from mlark.errors import FilterSyntaxError
from mlark.tracking.filter_ast import (
    ATTRIBUTES,
    BARE_FIELDS,
    EXPECT_AFTER_EXPR,
    EXPECT_AFTER_ORDER_KEY,
    EXPECT_AGGREGATE,
    EXPECT_ATTRIBUTE,
    EXPECT_FIELD,
    EXPECT_KEY,
    EXPECT_OPERATOR,
    EXPECT_VALUE,
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

__all__ = ["MAX_COMPARISONS", "MAX_DEPTH", "Parser"]

_ATTRIBUTE_ALIASES = {"run_id": "id", "run_name": "name"}
_PREFIXES = {"params": "param", "metrics": "metric", "tags": "tag", "attributes": "attribute"}
_AGGREGATES = ("last", "min", "max")
_KEYWORDS = frozenset({"and", "or", "not", "in", "like", "true", "false", "null", "asc", "desc"})

#: Limits that keep a filter within what the parser's recursion and the databases' expression depth allow.
MAX_DEPTH = 100
MAX_COMPARISONS = 500


class Parser:
    """One parse of ``text`` (a filter, an order-by or a field, as ``kind`` says): its tokens and where it is."""

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

    def token(self, parser: Parser) -> Token:
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
