"""Lifecycle stages of registered model versions, alias names, and the per-model settings read from tags."""

from __future__ import annotations

from typing import Any, Mapping

from mlark.core.names import validate_alias, validate_name
from mlark.errors import InvalidInput, InvalidName

DEVELOPMENT = "development"
STAGING = "staging"
PRODUCTION = "production"
ARCHIVED = "archived"
#: Every stage, in lifecycle order. A new registered version starts in ``development``.
STAGES: tuple[str, ...] = (DEVELOPMENT, STAGING, PRODUCTION, ARCHIVED)
#: Stages that one version holds at a time (unless the caller or the model keeps the previous holder).
EXCLUSIVE_STAGES: frozenset[str] = frozenset({PRODUCTION})

#: Registered model tag that sets whether promoting to production archives the previous holder.
ARCHIVE_PREVIOUS_TAG = "mlark.archive_previous"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

TAG_VALUE_MAX = 5000
DESCRIPTION_MAX = 20_000


def check_stage(stage: object) -> str:
    """A stage name (case-insensitive; stored lower-case), or InvalidInput listing the stages."""
    if isinstance(stage, str) and stage.strip().lower() in STAGES:
        return stage.strip().lower()
    shown = stage if not isinstance(stage, str) or len(stage) <= 60 else stage[:57] + "..."
    raise InvalidInput(
        f"unknown stage {shown!r}; the stages are: {', '.join(STAGES)}",
        field="stage",
        value=str(stage)[:200],
        allowed=list(STAGES),
    )


def is_stage(name: str) -> bool:
    return name.lower() in STAGES


def check_alias(alias: object) -> str:
    """An alias a user may set on a registered model: a valid name, not ``latest``, not a stage, not v<number>."""
    name = validate_alias(alias)
    if is_stage(name):
        raise InvalidName(
            f"alias {name!r} is a lifecycle stage; move a version into it with promote "
            f"(the stages are {', '.join(STAGES)}), or choose another alias such as 'champion'",
            field="alias",
            value=name,
            allowed=list(STAGES),
        )
    return name


def check_tags(tags: Mapping[str, Any] | None, *, allow_delete: bool = False) -> dict[str, str | None]:
    """Tags as ``{key: value}``: keys are names, values strings (``None`` deletes, where allowed)."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInput(
            f"tags must be a mapping of names to strings, got {type(tags).__name__}", field="tags"
        )
    out: dict[str, str | None] = {}
    for key, value in tags.items():
        validate_name(key, kind="tag key")
        if value is None and allow_delete:
            out[key] = None
            continue
        if not isinstance(value, str):
            raise InvalidInput(
                f"tag {key!r} must have a string value, got {type(value).__name__} (pass str(value))",
                field="tags",
                value=key,
            )
        if len(value) > TAG_VALUE_MAX:
            raise InvalidInput(f"tag {key!r} is longer than {TAG_VALUE_MAX} characters", field="tags", value=key)
        out[key] = value
    if ARCHIVE_PREVIOUS_TAG in out and out[ARCHIVE_PREVIOUS_TAG] is not None:
        archive_previous_setting({ARCHIVE_PREVIOUS_TAG: out[ARCHIVE_PREVIOUS_TAG]})
    return out


def check_description(description: object) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidInput(f"description must be a string, got {type(description).__name__}", field="description")
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(f"description is longer than {DESCRIPTION_MAX} characters", field="description")
    return description.strip() or None


def archive_previous_setting(model_tags: Mapping[str, Any]) -> bool:
    """The model's choice for promotions to production: archive the previous holder (default) or keep it."""
    raw = model_tags.get(ARCHIVE_PREVIOUS_TAG)
    if raw is None:
        return True
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(
        f"tag {ARCHIVE_PREVIOUS_TAG} must be true or false, got {raw!r}",
        field="tags",
        value=ARCHIVE_PREVIOUS_TAG,
        allowed=["true", "false"],
    )
