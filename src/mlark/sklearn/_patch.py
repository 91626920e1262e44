"""Patching ``fit``: every estimator class, present and future, gets a wrapper that logs the outermost fit."""

from __future__ import annotations

import functools
import threading
import types
from typing import Any, Callable

from mlark.sklearn import _state as state
from mlark.sklearn._fit import logged_fit

__all__ = ["patch_all", "unpatch_all"]

_MARK = "__mlark_autolog_original__"
_patched: dict[type, Callable[..., Any]] = {}
_had_init_subclass = False
_orig_init_subclass: Any = None
# Process-wide depth of autologged fits: only depth 0 -> 1 logs.
_depth = 0
_depth_lock = threading.Lock()


def patch_all(base: type) -> None:
    global _had_init_subclass, _orig_init_subclass
    todo: list[type] = [base]
    seen: set[type] = set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        _patch_class(cls)
        todo.extend(cls.__subclasses__())
    if "__init_subclass__" not in base.__dict__ or not getattr(base.__dict__["__init_subclass__"], _MARK, None):
        # Classes defined (or sklearn modules imported) after autolog() get patched as they are created.
        _had_init_subclass = "__init_subclass__" in base.__dict__
        _orig_init_subclass = base.__dict__.get("__init_subclass__")

        def __init_subclass__(cls: type, **kwargs: Any) -> None:
            if _orig_init_subclass is not None:
                _orig_init_subclass.__get__(None, cls)(**kwargs)
            else:
                super(base, cls).__init_subclass__(**kwargs)  # type: ignore[misc]
            if state.config is not None:
                _patch_class(cls)

        hook = classmethod(__init_subclass__)
        setattr(hook, _MARK, True)
        setattr(base, "__init_subclass__", hook)


def _patch_class(cls: type) -> None:
    fit = cls.__dict__.get("fit")
    if not isinstance(fit, types.FunctionType) or hasattr(fit, _MARK):
        return
    wrapper = _make_wrapper(fit)
    setattr(cls, "fit", wrapper)
    _patched[cls] = fit


def unpatch_all() -> None:
    global _had_init_subclass, _orig_init_subclass
    for cls, original in list(_patched.items()):
        if hasattr(cls.__dict__.get("fit"), _MARK):
            setattr(cls, "fit", original)
    _patched.clear()
    try:
        import sklearn.base
    except ImportError:
        return
    base = sklearn.base.BaseEstimator
    hook = base.__dict__.get("__init_subclass__")
    if hook is not None and getattr(hook, _MARK, None):
        if _had_init_subclass:
            setattr(base, "__init_subclass__", _orig_init_subclass)
        else:
            delattr(base, "__init_subclass__")
    _had_init_subclass, _orig_init_subclass = False, None


def _make_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _depth
        config = state.config
        with _depth_lock:
            outermost = _depth == 0
            _depth += 1
        try:
            if not outermost or config is None:
                return original(self, *args, **kwargs)
            return logged_fit(config, original, self, args, kwargs)
        finally:
            with _depth_lock:
                _depth -= 1

    setattr(fit, _MARK, original)
    return fit
