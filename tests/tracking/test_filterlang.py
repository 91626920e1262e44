"""The filter language: what parses into which AST, and where and why the rest is refused."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

import pytest

from mlark.errors import FilterSyntaxError, InvalidInput
from mlark.tracking.filterlang import (
    And,
    Boolean,
    Comparison,
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
    parse_field,
    parse_filter,
    parse_order_by,
    tokenize,
)

P = lambda key: Field("param", key)  # noqa: E731
M = lambda key, agg="last": Field("metric", key, agg)  # noqa: E731
T = lambda key: Field("tag", key)  # noqa: E731
A = lambda key: Field("attribute", key)  # noqa: E731


def num(text: str) -> Number:
    return Number(float(text), text)


# --------------------------------------------------------------------------- valid filters


@pytest.mark.parametrize(
    ("text", "ast"),
    [
        ("params.max_depth >= 8", Comparison(P("max_depth"), ">=", num("8"))),
        ("params.max_depth>=8", Comparison(P("max_depth"), ">=", num("8"))),
        ("params.lr = 0.01", Comparison(P("lr"), "=", num("0.01"))),
        ("params.lr != 1e-3", Comparison(P("lr"), "!=", num("1e-3"))),
        ("params.lr < .5", Comparison(P("lr"), "<", num(".5"))),
        ("params.offset > -1", Comparison(P("offset"), ">", num("-1"))),
        ("params.offset>-1.5", Comparison(P("offset"), ">", num("-1.5"))),
        ("params.offset <= +2", Comparison(P("offset"), "<=", num("+2"))),
        ("params.model = 'rf'", Comparison(P("model"), "=", String("rf"))),
        ('params.model = "rf"', Comparison(P("model"), "=", String("rf"))),
        ("params.quote = 'it\\'s'", Comparison(P("quote"), "=", String("it's"))),
        ("params.quote = \"say \\\"hi\\\"\"", Comparison(P("quote"), "=", String('say "hi"'))),
        ("params.flag = true", Comparison(P("flag"), "=", Boolean(True))),
        ("params.flag = FALSE", Comparison(P("flag"), "=", Boolean(False))),
        ("params.seed = null", Comparison(P("seed"), "=", Null())),
        ("params.seed != NULL", Comparison(P("seed"), "!=", Null())),
        ("metrics.val_auc > 0.9", Comparison(M("val_auc"), ">", num("0.9"))),
        ("metrics.val_auc.last > 0.9", Comparison(M("val_auc"), ">", num("0.9"))),
        ("metrics.loss.min < 0.1", Comparison(M("loss", "min"), "<", num("0.1"))),
        ("metrics.loss.MAX < 0.1", Comparison(M("loss", "max"), "<", num("0.1"))),
        ("metrics.`val/auc` > 0.5", Comparison(M("val/auc"), ">", num("0.5"))),
        ("metrics.`val/auc`.max > 0.5", Comparison(M("val/auc", "max"), ">", num("0.5"))),
        ("metrics.`a.max` > 0.5", Comparison(M("a.max"), ">", num("0.5"))),
        ("params.`optimizer.lr` = 0.1", Comparison(P("optimizer.lr"), "=", num("0.1"))),
        ("params.`odd\\`key` = 1", Comparison(P("odd`key"), "=", num("1"))),
        ("metrics.top-5 >= 0.8", Comparison(M("top-5"), ">=", num("0.8"))),
        ("metrics.5x > 1", Comparison(M("5x"), ">", num("1"))),
        ("params.and = 1", Comparison(P("and"), "=", num("1"))),
        ("tags.team = 'growth'", Comparison(T("team"), "=", String("growth"))),
        ("tags.epochs = 5", Comparison(T("epochs"), "=", num("5"))),
        ("tags.x != ''", Comparison(T("x"), "!=", String(""))),
        ("status = 'finished'", Comparison(A("status"), "=", String("finished"))),
        ("status = 'FINISHED'", Comparison(A("status"), "=", String("finished"))),
        ("attributes.status != 'failed'", Comparison(A("status"), "!=", String("failed"))),
        ("name = 'rf-depth-8'", Comparison(A("name"), "=", String("rf-depth-8"))),
        ("attributes.run_name = 'x'", Comparison(A("name"), "=", String("x"))),
        ("attributes.run_id = 'abc'", Comparison(A("id"), "=", String("abc"))),
        ("id = 'abc'", Comparison(A("id"), "=", String("abc"))),
        ("attributes.user = 'ana'", Comparison(A("user"), "=", String("ana"))),
        ("attributes.project = 'churn'", Comparison(A("project"), "=", String("churn"))),
        ("PARAMS.x = 1", Comparison(P("x"), "=", num("1"))),
        ("end_time = null", Comparison(A("end_time"), "=", Null())),
        ("params.lr in (0.1, 0.01)", In(P("lr"), (num("0.1"), num("0.01")))),
        ("params.lr IN (0.1,'x',true)", In(P("lr"), (num("0.1"), String("x"), Boolean(True)))),
        ("params.lr in (1)", In(P("lr"), (num("1"),))),
        ("status in ('running', 'FAILED')", In(A("status"), (String("running"), String("failed")))),
        ("metrics.acc in (1, 0.5)", In(M("acc"), (num("1"), num("0.5")))),
        ("name like 'rf-%'", Like(A("name"), "rf-%")),
        ("params.model LIKE '%forest_'", Like(P("model"), "%forest_")),
        ("tags.note like \"%x%\"", Like(T("note"), "%x%")),
        ("status like 'FIN%'", Like(A("status"), "fin%")),
    ],
)
def test_valid_comparisons(text: str, ast: object) -> None:
    assert parse_filter(text) == ast


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    a = Comparison(P("a"), "=", num("1"))
    b = Comparison(P("b"), "=", num("2"))
    c = Comparison(P("c"), "=", num("3"))
    assert parse_filter("params.a = 1 or params.b = 2 and params.c = 3") == Or((a, And((b, c))))
    assert parse_filter("(params.a = 1 or params.b = 2) and params.c = 3") == And((Or((a, b)), c))
    assert parse_filter("not params.a = 1 and params.b = 2") == And((Not(a), b))
    assert parse_filter("not (params.a = 1 and params.b = 2)") == Not(And((a, b)))
    assert parse_filter("not not params.a = 1") == Not(Not(a))
    assert parse_filter("params.a = 1 AND params.b = 2 AND params.c = 3") == And((a, b, c))
    assert parse_filter("params.a = 1 Or params.b = 2 OR params.c = 3") == Or((a, b, c))
    assert parse_filter("((params.a = 1))") == a
    assert parse_filter("NOT(params.a=1)") == Not(a)


def test_blank_filters_match_everything() -> None:
    assert parse_filter(None) is None
    assert parse_filter("") is None
    assert parse_filter("   \n\t ") is None


def test_time_attributes_take_iso_strings_and_epoch_numbers() -> None:
    day = datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_filter("start_time > '2024-05-01'") == Comparison(A("start_time"), ">", Time(day))
    assert parse_filter("start_time > '2024-05-01T00:00:00Z'") == Comparison(A("start_time"), ">", Time(day))
    assert parse_filter("start_time > '2024-05-01T02:00:00+02:00'") == Comparison(A("start_time"), ">", Time(day))
    epoch = day.timestamp()
    assert parse_filter(f"start_time >= {epoch:.0f}") == Comparison(A("start_time"), ">=", Time(day))
    # MLflow's epoch milliseconds are recognised by their size
    assert parse_filter(f"end_time < {epoch * 1000:.0f}") == Comparison(A("end_time"), "<", Time(day))
    assert parse_filter("start_time in ('2024-05-01', 1714521600)") == In(A("start_time"), (Time(day), Time(day)))


def test_positions_are_recorded_but_do_not_affect_equality() -> None:
    expr = parse_filter("  params.x = 'a'")
    assert isinstance(expr, Comparison)
    assert expr.field.position == 2
    assert expr.value.position == 13
    assert expr == Comparison(P("x"), "=", String("a"))


def test_ast_nodes_are_frozen() -> None:
    expr = parse_filter("params.x = 1")
    with pytest.raises(AttributeError):
        expr.op = "<"  # type: ignore[misc,union-attr]


# --------------------------------------------------------------------------- invalid filters


def _error(text: str) -> FilterSyntaxError:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("params.max_depth 8", 17, "a comparison operator (=, !=, <, <=, >, >=, in, like)"),
        ("params.max_depth", 16, "a comparison operator"),
        ("params.x =", 10, "a value"),
        ("params.x = ", 11, "a value"),
        ("params.x = )", 11, "a value"),
        ("params.x = foo", 11, "a value"),
        ("params.x = 1 and", 16, "a field"),
        ("params.x = 1 or or params.y = 2", 16, "a field"),
        ("and params.x = 1", 0, "a field"),
        ("params.x = 1 params.y = 2", 13, "'and', 'or' or the end of the filter"),
        ("params.x = 1 && params.y = 2", 13, "'and', 'or' or the end of the filter"),
        ("params.x = 1 || params.y = 2", 13, "'and', 'or' or the end of the filter"),
        ("(params.x = 1", 13, "'and', 'or' or ')'"),
        ("params.x = 1)", 12, "'and', 'or' or the end of the filter"),
        ("()", 1, "a field"),
        ("params", 6, "'.' and a key after 'params'"),
        ("params x = 1", 7, "'.' and a key after 'params'"),
        ("params.", 7, "a key"),
        ("params. = 1", 8, "a key"),
        ("params.'x' = 1", 7, "a key"),
        ("params.`` = 1", 7, "a key"),
        ("params.a.b = 1", 8, "a comparison operator"),
        ("metrics.x.avg > 1", 10, "last, min or max"),
        ("metrics.x. > 1", 11, "last, min or max"),
        ("metrics.x like 'a%'", 10, "a comparison operator (=, !=, <, <=, >, >=, in)"),
        ("start_time like '2024%'", 11, "a comparison operator (=, !=, <, <=, >, >=, in)"),
        ("metrics.x > 'high'", 12, "a number (metrics are numbers)"),
        ("metrics.x = true", 12, "a number (metrics are numbers)"),
        ("metrics.x in (1, 'a')", 17, "a number (metrics are numbers)"),
        ("tags.x < 5", 9, "a 'string' (tags are text"),
        ("name = 5", 7, "a 'string' (name is text)"),
        ("status = 'done'", 9, "a run status (running, finished, failed, killed, crashed)"),
        ("status in ('running', 'paused')", 22, "a run status"),
        ("start_time > 'yesterday'", 13, "an ISO 8601 time"),
        ("start_time > true", 13, "an ISO 8601 time"),
        ("params.x < null", 11, "a number or a 'string' (null only compares with = and !=)"),
        ("params.x in (1, null)", 16, "a number, a 'string', true or false"),
        ("params.x in 1", 12, "'(' to start the list of values after 'in'"),
        ("params.x in (1 2)", 15, "',' or ')' to end the list of values"),
        ("params.x in (1,", 15, "a value"),
        ("params.x in ()", 13, "a value"),
        ("params.x like 5", 14, "a quoted pattern after 'like'"),
        ("params.x = 'open", 11, "a closing ' for the string that starts here"),
        ('params.x = "open', 11, 'a closing " for the string that starts here'),
        ("params.`open = 1", 7, "a closing ` for the key that starts here"),
        ("params.x == 1", 9, "'=' (equality is a single '=')"),
        ("params.x <> 1", 9, "'!=' (inequality is written '!=')"),
        ("params.x ! 1", 9, "a comparison operator"),
        ("params.x = 8abc", 11, "a number"),
        ("params.x = 1.2.3", 11, "a number"),
        ("params.x = 1 ; drop table runs", 13, "'and', 'or' or the end of the filter"),
        ("max_depth > 3", 0, "a field"),
        ("attributes.colour = 'red'", 11, "an attribute name (id, name, status"),
        ("foo.bar = 1", 0, "a field"),
        ("params.x = 1 and $", 17, "a field"),
        ("1 = params.x", 0, "a field"),
        ("'x' = params.x", 0, "a field"),
    ],
)
def test_invalid_filters_report_position_and_expected(text: str, position: int, expected: str) -> None:
    err = _error(text)
    assert err.position == position, str(err)
    assert err.expected.startswith(expected), str(err)
    assert err.text == text
    assert f"at position {position}" in str(err)


def test_the_message_is_one_line_then_the_text_then_a_caret() -> None:
    err = _error("params.max_depth 8")
    lines = str(err).split("\n")
    assert lines[0] == (
        "invalid filter: expected a comparison operator (=, !=, <, <=, >, >=, in, like) at position 17, found '8'"
    )
    assert lines[1] == "    params.max_depth 8"
    assert lines[2] == "    " + " " * 17 + "^"
    assert len(lines) == 3
    assert lines[2].index("^") == lines[1].index("8")


def test_caret_at_the_end_of_the_text() -> None:
    err = _error("params.x =")
    line, caret = err.caret_lines()
    assert line == "params.x ="
    assert caret == " " * 10 + "^"
    assert "found the end of the filter" in err.message


def test_caret_on_the_right_line_of_a_multi_line_filter() -> None:
    text = "params.x = 1\nand metrics.y >> 2"
    err = _error(text)
    assert err.position == text.index(">>") + 1
    line, caret = err.caret_lines()
    assert line == "and metrics.y >> 2"
    assert caret.index("^") == line.index(">>") + 1


def test_error_is_invalid_input_with_structured_fields() -> None:
    err = _error("params.x = 1 params.y = 2")
    assert isinstance(err, InvalidInput) and isinstance(err, ValueError)
    doc = err.to_dict()
    assert doc["error"] == "FilterSyntaxError"
    assert doc["position"] == 13
    assert doc["expected"] == "'and', 'or' or the end of the filter"
    assert doc["found"] == "'params'"
    assert doc["text"] == "params.x = 1 params.y = 2"
    assert "\n" not in doc["message"]


def test_error_survives_pickling() -> None:
    err = _error("params.x 1")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err)
    assert (back.position, back.expected, back.text) == (err.position, err.expected, err.text)


def test_hints_name_the_fix() -> None:
    assert "params.`a.b`" in str(_error("params.a.b = 1"))
    assert "a key needs a prefix: params.max_depth" in str(_error("max_depth > 3"))
    assert "write 'and'" in str(_error("params.x = 1 && params.y = 2"))
    assert "quote text values" in str(_error("name = foo"))
    assert "has no matching '('" in str(_error("params.x = 1)"))


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "__import__('os').system('touch /tmp/mlark-pwned')",
        "exec('1')",
        "params.x = __import__('os')",
        "params.x = (1)",
        "params.x = [1]",
        "lambda: 1",
        "params.x.__class__ = 1",
        "params.x = 1 or __builtins__",
        "{}",
        "params.x = 1; import os",
    ],
)
def test_python_is_never_evaluated(text: str, tmp_path: object) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(text)


def test_import_is_a_syntax_error_at_position_zero() -> None:
    err = _error("__import__('os')")
    assert err.position == 0
    assert err.expected.startswith("a field")
    assert err.found == "'__import__'"


def test_non_string_filter_is_refused() -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- order by


def test_order_by() -> None:
    assert parse_order_by("metrics.val_auc desc, start_time") == (
        OrderKey(M("val_auc"), True),
        OrderKey(A("start_time"), False),
    )
    assert parse_order_by(["params.lr ASC", "metrics.loss.min DESC", "name"]) == (
        OrderKey(P("lr"), False),
        OrderKey(M("loss", "min"), True),
        OrderKey(A("name"), False),
    )
    assert parse_order_by("tags.`team name` desc") == (OrderKey(T("team name"), True),)
    assert parse_order_by("") == ()
    assert parse_order_by(None) == ()
    assert parse_order_by([]) == ()


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("metrics.x desc desc", 15, "asc, desc, ',' or the end of the order-by"),
        ("metrics.x,", 10, "a field"),
        (", metrics.x", 0, "a field"),
        ("metrics.x up", 10, "asc, desc, ',' or the end"),
        ("metrics.x > 1", 10, "asc, desc, ',' or the end"),
        ("params.a.b", 8, "asc, desc, ',' or the end"),
        ("max_depth", 0, "a field"),
        ("metrics.x.median", 10, "last, min or max"),
    ],
)
def test_invalid_order_by(text: str, position: int, expected: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by(text)
    err = info.value
    assert (err.position, err.kind) == (position, "order-by")
    assert err.expected.startswith(expected)
    assert str(err).startswith("invalid order-by: expected ")


def test_order_key_and_field_render_back_to_the_grammar() -> None:
    keys = parse_order_by("metrics.val_auc desc, metrics.`val/auc`.max, params.lr, status, attributes.user")
    assert [str(k) for k in keys] == [
        "metrics.val_auc desc",
        "metrics.`val/auc`.max asc",
        "params.lr asc",
        "status asc",
        "attributes.user asc",
    ]
    for key in keys:
        assert parse_field(str(key.field)) == key.field


def test_parse_field() -> None:
    assert parse_field("metrics.loss.min") == M("loss", "min")
    with pytest.raises(FilterSyntaxError):
        parse_field("metrics.loss desc")


def test_tokenizer_positions() -> None:
    tokens = tokenize("params.x>=-1 and name like 'a%'")
    assert [(t.kind, t.text, t.position) for t in tokens] == [
        ("ident", "params", 0),
        (".", ".", 6),
        ("ident", "x", 7),
        ("op", ">=", 8),
        ("number", "-1", 10),
        ("ident", "and", 13),
        ("ident", "name", 17),
        ("ident", "like", 22),
        ("string", "'a%'", 27),
        ("end", "", 31),
    ]
