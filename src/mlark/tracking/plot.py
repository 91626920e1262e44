"""Metric curves of several runs in one PNG (matplotlib, Agg backend, imported only when plotting).

matplotlib is optional: without it :func:`plot_metric` raises
:class:`mlark.errors.InvalidInput` with the command that installs it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from mlark.errors import InvalidInput, StorageError

__all__ = ["INSTALL_HINT", "Curve", "plot_metric"]

INSTALL_HINT = "pip install matplotlib"


@dataclass(frozen=True)
class Curve:
    """One run's series of a metric: ``label`` (the run's name) and the points (step, value)."""

    label: str
    steps: Sequence[float]
    values: Sequence[float]


def _new_figure() -> Any:
    """A matplotlib Figure drawn by the Agg canvas; pyplot (and the user's backend choice) is left alone."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise InvalidInput(
            f"plotting needs matplotlib, which is not installed; install it with: {INSTALL_HINT}",
            field="matplotlib",
            hint=INSTALL_HINT,
        ) from exc
    fig = Figure(figsize=(8, 5))
    FigureCanvasAgg(fig)
    return fig


def plot_metric(curves: Sequence[Curve], *, metric: str, path: str | os.PathLike[str],
                title: str | None = None, dpi: int = 120) -> Path:
    """Draw ``curves`` (x = step, y = value; one line per run, legend with the labels) into the PNG ``path``.

    NaN and infinite values are left out of the line (a gap) rather than
    failing. A curve with no points is still listed in the legend. Returns
    the path written.
    """
    if not curves:
        raise InvalidInput("plot needs at least one run", field="runs")
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise InvalidInput(f"the plot is written as PNG; give a file name ending in .png, not {out.name!r}",
                           field="output", value=str(out))
    fig = _new_figure()
    ax = fig.subplots()
    for curve in curves:
        steps = [float(s) for s in curve.steps]
        values = [float(v) if math.isfinite(float(v)) else float("nan") for v in curve.values]
        if len(steps) != len(values):
            raise InvalidInput(f"curve {curve.label!r} has {len(steps)} steps but {len(values)} values", field="curve")
        label = curve.label if steps else f"{curve.label} (no points)"
        ax.plot(steps, values, label=label, marker="o" if len(steps) == 1 else None, linewidth=1.5)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    try:
        fig.savefig(out, format="png", dpi=dpi)
    except OSError as exc:
        raise StorageError(f"cannot write the plot to {out}: {exc.strerror or exc}", path=str(out)) from exc
    return out
