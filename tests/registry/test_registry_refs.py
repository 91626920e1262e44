"""References to registered models: models:/NAME/N, models:/NAME@ALIAS_OR_STAGE, models:/NAME; parse_any_ref."""

from __future__ import annotations

import pytest

from mlark.core.refs import RegistryRef, VersionRef, parse_any_ref, parse_ref, parse_registry_ref
from mlark.errors import InvalidRef


@pytest.mark.parametrize("text, expected", [
    ("models:/churn@production", RegistryRef("churn", alias="production")),
    ("models:/churn@champion", RegistryRef("churn", alias="champion")),
    ("models:/churn/4", RegistryRef("churn", number=4)),
    ("models:/churn", RegistryRef("churn")),
    ("models:/churn.eu-2@latest", RegistryRef("churn.eu-2", alias="latest")),
])
def test_registry_refs(text: str, expected: RegistryRef) -> None:
    assert parse_any_ref(text) == expected
    assert str(expected) == text


def test_effective_alias() -> None:
    assert RegistryRef("churn").effective_alias == "latest"
    assert RegistryRef("churn", number=2).effective_alias is None
    assert RegistryRef("churn", alias="staging").effective_alias == "staging"


@pytest.mark.parametrize("text", ["churn-rf:v3", "churn-rf@best", "churn-rf", "churn-rf:train@latest"])
def test_version_refs_are_unchanged(text: str) -> None:
    assert parse_any_ref(text) == parse_ref(text)
    assert isinstance(parse_any_ref(text), VersionRef)


def test_scheme_optional_where_only_registered_models_are_meant() -> None:
    assert parse_registry_ref("churn@production", scheme_optional=True) == RegistryRef("churn", alias="production")
    assert parse_registry_ref("churn/2", scheme_optional=True) == RegistryRef("churn", number=2)
    with pytest.raises(InvalidRef, match="does not start with 'models:/'"):
        parse_registry_ref("churn/2")


@pytest.mark.parametrize("text, fragment", [
    ("models:/", "registered model name is empty"),
    ("models:/churn/Production", "write models:/churn@production"),
    ("models:/churn/0", "'0' is not a version number"),
    ("models:/churn/-1", "is not a version number"),
    ("models:/churn@v3", "write models:/churn/3"),
    ("models:/churn/1@champion", "not both"),
    ("models:/../etc@x", "invalid registered model name"),
    ("models:/churn@", "alias is empty"),
    ("models:/churn@a/b", "invalid alias"),
    ("models:/" + "x" * 200, "characters long"),
])
def test_bad_registry_refs(text: str, fragment: str) -> None:
    with pytest.raises(InvalidRef, match="expected models:/NAME") as info:
        parse_any_ref(text)
    assert fragment in str(info.value)
    assert info.value.fields["value"] == text
