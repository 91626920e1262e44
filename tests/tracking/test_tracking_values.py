"""Metric values, param values, tags and keys: what is accepted, how it is stored, and the errors."""

from __future__ import annotations

import enum
import math
from pathlib import Path

import numpy as np
import pytest

from mlark.errors import InvalidInput
from mlark.tracking.keys import check_key
from mlark.tracking.values import (
    check_step,
    from_json_value,
    metric_value,
    param_row,
    same_param,
    tag_value,
    to_json_value,
)


@pytest.mark.parametrize(
    "value, expected",
    [(1.5, 1.5), (3, 3.0), (True, 1.0), (False, 0.0), (np.float32(0.5), 0.5), (np.int64(7), 7.0),
     (np.bool_(True), 1.0), (np.float64("nan"), math.nan), (float("inf"), math.inf), (-math.inf, -math.inf)],
)
def test_metric_values_that_are_numbers_become_floats(value: object, expected: float) -> None:
    got = metric_value("loss", value)
    assert type(got) is float
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@pytest.mark.parametrize("value", ["0.5", None, [1.0], {"a": 1}, 1 + 2j, np.array([1.0, 2.0]), np.complex64(1), b"1"])
def test_non_numeric_metric_values_are_refused_naming_the_key(value: object) -> None:
    with pytest.raises(InvalidInput, match="metric 'val_auc' must be a number") as info:
        metric_value("val_auc", value)
    assert info.value.fields["key"] == "val_auc"


def test_a_one_element_array_gets_a_hint() -> None:
    with pytest.raises(InvalidInput, match=r"\.item\(\)"):
        metric_value("loss", np.array(0.5))


def test_huge_integers_are_refused() -> None:
    with pytest.raises(InvalidInput, match="too large"):
        metric_value("n", 10**400)


@pytest.mark.parametrize("step", [0, 5, np.int32(3), 2**63 - 1, -1])
def test_steps_are_whole_numbers(step: object) -> None:
    assert check_step(step) == int(step)  # type: ignore[call-overload]


@pytest.mark.parametrize("step", [1.0, "1", True, 2**63, None])
def test_bad_steps_are_refused(step: object) -> None:
    with pytest.raises(InvalidInput, match="step"):
        check_step(step)


@pytest.mark.parametrize("key", ["loss", "val/auc", "train loss", "a.b-c_d:e", "x" * 250, "mlark.callback"])
def test_keys(key: str) -> None:
    assert check_key(key, "metric") == key


@pytest.mark.parametrize("key", ["", " lead", "trail ", "x" * 251, "a\nb", "nul\x00", "back`tick", 3, None])
def test_bad_keys_are_refused(key: object) -> None:
    with pytest.raises(InvalidInput, match="metric key"):
        check_key(key, "metric")


class Color(enum.Enum):
    RED = "red"


def test_param_rows_keep_the_value_with_a_canonical_text_and_number() -> None:
    assert param_row("depth", 8) == {"key": "depth", "value": 8, "text": "8", "number": 8.0}
    assert param_row("lr", 0.1) == {"key": "lr", "value": 0.1, "text": "0.1", "number": 0.1}
    assert param_row("opt", "adam") == {"key": "opt", "value": "adam", "text": "adam", "number": None}
    assert param_row("bn", True) == {"key": "bn", "value": True, "text": "true", "number": None}
    assert param_row("none", None)["text"] == "null"
    assert param_row("layers", (64, 32))["value"] == [64, 32]
    assert param_row("cfg", {"b": 1, "a": [1, 2]})["text"] == '{"a":[1,2],"b":1}'
    assert param_row("n", np.int64(3))["value"] == 3
    assert param_row("w", np.array([1.0, 2.0]))["value"] == [1.0, 2.0]
    assert param_row("path", Path("/data/x"))["value"] == "/data/x"
    assert param_row("color", Color.RED)["value"] == "red"


def test_non_finite_param_values_round_trip_through_json() -> None:
    row = param_row("tol", float("inf"))
    assert row["value"] == {"$float": "inf"} and row["text"] == "inf" and row["number"] == math.inf
    assert from_json_value(row["value"]) == math.inf
    nan = param_row("x", float("nan"))
    assert nan["number"] is None and math.isnan(from_json_value(nan["value"]))
    nested = to_json_value({"a": [1.0, float("-inf")]}, what="summary")
    assert from_json_value(nested) == {"a": [1.0, -math.inf]}


def test_objects_that_are_not_json_are_refused() -> None:
    with pytest.raises(InvalidInput, match="param 'model'.*str\\(value\\)"):
        param_row("model", object())
    with pytest.raises(InvalidInput, match="keys must be strings"):
        param_row("cfg", {1: "a"})


def test_same_param_compares_numbers_by_value() -> None:
    stored = param_row("depth", 8)
    assert same_param(stored["value"], stored["text"], param_row("depth", 8.0))
    assert not same_param(stored["value"], stored["text"], param_row("depth", 9))
    assert not same_param(stored["value"], stored["text"], param_row("depth", "8"))
    flag = param_row("bn", True)
    assert not same_param(flag["value"], flag["text"], param_row("bn", 1))


def test_tag_values_are_text() -> None:
    assert tag_value("k", "v") == "v"
    assert tag_value("k", 3) == "3"
    assert tag_value("k", 0.5) == "0.5"
    assert tag_value("k", True) == "true"
    with pytest.raises(InvalidInput, match="tag 'k'"):
        tag_value("k", [1])
