"""mlark runs: ls, show, compare, plot.

Run ids may be given whole or as a unique prefix of at least six characters.
Heavy modules (SQLAlchemy through the tracking package, rich, matplotlib) are
imported inside the commands.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Sequence

import click

from mlark.cli.main import Ctx, cli, json_option, pass_ctx, warn
from mlark.cli.output import ago, console, emit_json, human_bytes, stamp

#: The id column of tables shows at least this many characters (more when needed to be unique).
ID_WIDTH = 8
#: Params and metrics shown per row by ``runs ls`` (keys named in --filter / --order-by first).
LS_KEYS = 4
_STATUS_STYLE = {"finished": "green", "failed": "red", "crashed": "red", "killed": "magenta", "running": "yellow"}


@cli.group()
def runs() -> None:
    """Experiment runs: list and filter, show one, compare several, plot their metrics."""


# --------------------------------------------------------------------------- helpers


def _resolve(repo: Any, texts: Sequence[str]) -> list[str]:
    from mlark.tracking.query import resolve_run_ids

    with repo.db.read() as conn:
        return resolve_run_ids(conn, texts)


def _console() -> Any:
    """The shared rich console; when stdout is not a terminal, wide enough that tables are not cut."""
    out = console()
    if not out.is_terminal:
        out.width = max(out.width, 240)
    return out


def _unique_prefix_width(conn: Any, ids: Sequence[str], minimum: int = ID_WIDTH) -> int:
    """How many leading characters make each of ``ids`` unique among all runs (at least ``minimum``).

    Compares each id with its neighbours in id order: two indexed look-ups per
    id for a few ids, one scan of every id for many.
    """
    from bisect import bisect_left

    from sqlalchemy import func, select

    from mlark.meta.schema import runs as runs_t

    every = sorted(conn.execute(select(runs_t.c.id)).scalars()) if len(ids) > 50 else None

    def neighbours(run_id: str) -> list[str | None]:
        if every is not None:
            i = bisect_left(every, run_id)
            return [every[i - 1] if i > 0 else None, every[i + 1] if i + 1 < len(every) else None]
        return [
            conn.execute(select(func.max(runs_t.c.id)).where(runs_t.c.id < run_id)).scalar(),
            conn.execute(select(func.min(runs_t.c.id)).where(runs_t.c.id > run_id)).scalar(),
        ]

    width = minimum
    for run_id in ids:
        for other in neighbours(run_id):
            if other:
                common = len(os.path.commonprefix([run_id, other]))
                width = max(width, common + 1)
    return min(width, 36)


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    return ((end or datetime.now(timezone.utc)) - start).total_seconds()


def _human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def _short_time(when: datetime | None) -> str:
    return "-" if when is None else when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def _fmt(value: Any) -> str:
    """A value for a table cell: numbers compact, None as '-'."""
    import json
    import math

    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _delta(value: float | None) -> str:
    if value is None or value == 0:
        return ""
    return f" ({value:+.4g})"


def _status_text(status: str) -> Any:
    from rich.text import Text

    return Text(status, style=_STATUS_STYLE.get(status, ""))


def _keys_in(filter_text: str | None, order_by: Sequence[str]) -> tuple[list[str], list[str]]:
    """Param and metric keys named in the filter and order-by, in order of appearance."""
    from mlark.tracking.filterlang import And, Comparison, In, Like, Not, Or, parse_filter, parse_order_by

    params: list[str] = []
    metrics: list[str] = []

    def note(field: Any) -> None:
        bucket = params if field.kind == "param" else metrics if field.kind == "metric" else None
        if bucket is not None and field.key not in bucket:
            bucket.append(field.key)

    def walk(expr: Any) -> None:
        if isinstance(expr, (And, Or)):
            for e in expr.operands:
                walk(e)
        elif isinstance(expr, Not):
            walk(expr.operand)
        elif isinstance(expr, (Comparison, In, Like)):
            note(expr.field)

    walk(parse_filter(filter_text))
    for key in parse_order_by(list(order_by)):
        note(key.field)
    return params, metrics


def _pick(values: dict[str, Any], first: list[str], limit: int = LS_KEYS) -> str:
    """Up to ``limit`` ``key=value`` lines, the keys in ``first`` first; "+N more" for the rest."""
    keys = [k for k in first if k in values] + [k for k in values if k not in first]
    lines = [f"{k}={_fmt(values[k])}" for k in keys[:limit]]
    if len(keys) > limit:
        lines.append(f"+{len(keys) - limit} more")
    return "\n".join(lines) or "-"


def _run_doc(run: Any) -> dict[str, Any]:
    """A run (``mlark.ops.runs.Run``) as JSON: its ``to_dict()`` plus the duration in seconds."""
    doc = run.to_dict()
    doc["duration"] = _duration(run.start_time, run.end_time)
    return doc


# --------------------------------------------------------------------------- ls


@runs.command("ls")
@click.argument("project", required=False)
@click.option("--filter", "-f", "filter_text", metavar="EXPR",
              help="Filter, e.g. \"params.max_depth >= 8 and metrics.val_auc > 0.9\".")
@click.option("--order-by", "order_by", multiple=True, metavar="KEYS",
              help="Order, e.g. \"metrics.val_auc desc, start_time\" (repeatable; default start_time desc).")
@click.option("--limit", "-n", type=click.IntRange(min=0), help="Show at most N runs.")
@json_option
@pass_ctx
def runs_ls(ctx: Ctx, project: str | None, filter_text: str | None, order_by: tuple[str, ...],
            limit: int | None, as_json: bool) -> None:
    """List the runs of PROJECT (every project when omitted), filtered and ordered.

    \b
    Filter fields: params.KEY, metrics.KEY[.last|.min|.max], tags.KEY,
    attributes.NAME, status, name, start_time, end_time, id.
    Operators: = != < <= > >= in (...) like; and, or, not, parentheses.
    """
    from mlark import api
    from mlark.tracking.filterlang import parse_filter, parse_order_by

    # Parse first: a bad filter is a usage error even outside a repository.
    parse_filter(filter_text)
    parse_order_by(list(order_by))
    repo = ctx.repo()
    found = api.runs(project, filter=filter_text, order_by=list(order_by) or None, limit=limit, repo=repo)
    if as_json:
        emit_json([_run_doc(r) for r in found])
        return
    if not found:
        where = f" in project {project!r}" if project else ""
        click.echo(f"no runs{where}" + (" match the filter" if filter_text else ""))
        return
    from rich.table import Table

    with repo.db.read() as conn:
        width = _unique_prefix_width(conn, [r.id for r in found])
    first_params, first_metrics = _keys_in(filter_text, order_by)
    table = Table()
    table.add_column("id", no_wrap=True)
    table.add_column("name")
    table.add_column("status", no_wrap=True)
    table.add_column("start", no_wrap=True)
    table.add_column("duration", no_wrap=True, justify="right")
    table.add_column("params")
    table.add_column("metrics")
    if project is None:
        table.add_column("project")
    for r in found:
        row = [r.id[:width], r.name, _status_text(r.status), _short_time(r.start_time),
               _human_duration(_duration(r.start_time, r.end_time)),
               _pick(r.params, first_params), _pick(r.metrics, first_metrics)]
        if project is None:
            row.append(r.project)
        table.add_row(*row)
    _console().print(table)


# --------------------------------------------------------------------------- show


def _get_run(repo: Any, run_id: str) -> Any:
    """The run (a ``mlark.ops.runs.Run`` view) for a full id or a unique prefix of at least six characters."""
    from mlark import api

    (full,) = _resolve(repo, [run_id])
    return api.get_run(full, repo=repo)


def _show_doc(run: Any) -> dict[str, Any]:
    summaries = run.metric_summaries()
    doc = _run_doc(run)
    doc["metrics"] = {k: s.to_dict() for k, s in summaries.items()}
    doc.update({
        "environment": run.environment,
        "summary": dict(run.summary),
        "inputs": [_version_doc(v) for v in run.inputs()],
        "outputs": [_version_doc(v) for v in run.outputs()],
        "children": [c.id for c in run.children()],
    })
    return doc


def _version_doc(version: Any) -> Any:
    if hasattr(version, "to_dict"):
        return version.to_dict()
    return str(version)


def _version_line(version: Any) -> str:
    ref = getattr(version, "ref", None) or str(version)
    digest = getattr(version, "digest", None)
    size = getattr(version, "size", None)
    parts = [ref]
    if digest:
        parts.append(digest[:12])
    if size is not None:
        parts.append(human_bytes(size))
    return "  ".join(parts)


@runs.command("show")
@click.argument("run_id")
@json_option
@pass_ctx
def runs_show(ctx: Ctx, run_id: str, as_json: bool) -> None:
    """Params, final and best metrics, code, environment, inputs, outputs, tags and summary of a run."""
    run = _get_run(ctx.repo(), run_id)
    doc = _show_doc(run)
    if as_json:
        emit_json(doc)
        return
    _print_show(run, doc)


def _print_show(run: Any, doc: dict[str, Any]) -> None:
    from rich.table import Table

    out = _console()
    style = _STATUS_STYLE.get(run.status)
    status = f"[{style}]{run.status}[/]" if style else run.status
    out.print(f"[bold]run {run.id}[/bold]  {run.project}/{run.name}", markup=True, highlight=False)
    out.print(f"status:      {status}", highlight=False)
    if run.error:
        out.print(f"error:       {run.error.strip().splitlines()[-1][:300]}", markup=False)
    out.print(f"started:     {stamp(run.start_time)} ({ago(run.start_time)})")
    if run.end_time:
        out.print(f"ended:       {stamp(run.end_time)}")
    out.print(f"duration:    {_human_duration(doc['duration'])}" + ("" if run.end_time else "  (still running)"))
    if run.parent_id:
        out.print(f"parent:      {run.parent_id}")
    if doc["children"]:
        out.print(f"children:    {len(doc['children'])}: " + ", ".join(doc["children"][:10]))
    who = " on ".join(x for x in (run.user, run.host) if x)
    if who:
        out.print(f"by:          {who}", markup=False)
    if run.command:
        import shlex

        out.print(f"command:     {shlex.join(str(a) for a in run.command)}", markup=False)
    out.print(f"code:        {_git_line(run.git)}", markup=False)
    out.print(f"environment: {_environment_line(doc['environment'])}", markup=False)
    if run.seeds:
        out.print(f"seeds:       {_fmt(run.seeds)}", markup=False)

    params = doc["params"]
    if params:
        table = Table("param", "value", title="params", title_justify="left")
        for key, value in params.items():
            table.add_row(key, _fmt(value))
        out.print(table)
    summaries = run.metric_summaries()
    if summaries:
        table = Table("metric", "final", "at step", "min", "max", "points", title="metrics", title_justify="left")
        for key, s in summaries.items():
            table.add_row(key, _fmt(s.last), str(s.last_step), _fmt(s.min), _fmt(s.max), str(s.count))
        out.print(table)
    for title, mapping in (("summary", doc["summary"]), ("tags", doc["tags"])):
        if mapping:
            out.print(f"[bold]{title}[/bold]")
            for key, value in mapping.items():
                out.print(f"  {key}: {_fmt(value)}", markup=False)
    for title, versions in (("inputs", run.inputs()), ("outputs", run.outputs())):
        out.print(f"[bold]{title}[/bold]" + ("" if versions else ":  -"))
        for v in versions:
            out.print(f"  {_version_line(v)}", markup=False)


def _git_line(git: dict[str, Any] | None) -> str:
    if not git:
        return "- (not a git checkout, or capture was off)"
    parts = []
    if git.get("commit"):
        parts.append(f"commit {str(git['commit'])[:12]}")
    if git.get("branch"):
        parts.append(f"on {git['branch']}")
    if git.get("dirty"):
        diff = git.get("diff")
        parts.append("dirty" + (f" (diff stored as blob {str(diff)[:12]})" if diff else ""))
    elif "dirty" in git:
        parts.append("clean")
    if git.get("remote"):
        parts.append(f"from {git['remote']}")
    return ", ".join(parts) or _fmt(git)


def _environment_line(env: dict[str, Any] | None) -> str:
    if not env:
        return "- (capture was off)"
    parts = []
    if env.get("python"):
        parts.append(f"Python {env['python']}")
    if env.get("platform"):
        parts.append(str(env["platform"]))
    packages = env.get("packages")
    if isinstance(packages, dict) and packages:
        notable = [f"{k} {packages[k]}" for k in ("numpy", "pandas", "scikit-learn", "torch", "mlark") if k in packages]
        parts.append(f"{len(packages)} packages" + (f" ({', '.join(notable)})" if notable else ""))
    elif isinstance(packages, list) and packages:
        parts.append(f"{len(packages)} packages")
    return "; ".join(parts) or _fmt(env)


# --------------------------------------------------------------------------- compare


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID RUN_ID...")
@click.option("--only-diff", is_flag=True, help="Show only the params and metrics that differ.")
@json_option
@pass_ctx
def runs_compare(ctx: Ctx, run_ids: tuple[str, ...], only_diff: bool, as_json: bool) -> None:
    """Params and metrics (last, min, max) of runs side by side; deltas relative to the first run."""
    from mlark.tracking.compare import compare_runs, load_compared_runs

    if len(run_ids) < 2:
        raise click.UsageError("compare needs at least two runs")
    repo = ctx.repo()
    ids = _resolve(repo, run_ids)
    if len(set(ids)) != len(ids):
        raise click.UsageError("the same run is given twice")
    with repo.db.read() as conn:
        result = compare_runs(load_compared_runs(conn, ids), only_differences=only_diff)
        width = _unique_prefix_width(conn, ids) if not as_json else ID_WIDTH
    if as_json:
        emit_json(result.to_dict())
        return
    _print_comparison(result, width)


def _print_comparison(result: Any, width: int) -> None:
    from rich.table import Table

    out = _console()
    table = Table("", *[f"{r.name}\n{r.id[:width]}" for r in result.runs])
    table.add_row("status", *[_status_text(r.status) for r in result.runs])
    if result.params:
        table.add_section()
        for row in result.params:
            cells = [_fmt(v) if present else "-" for v, present in zip(row.values, row.present)]
            cells = [cells[0]] + [c + _delta(d) for c, d in zip(cells[1:], row.deltas[1:])]
            table.add_row(f"params.{row.key}", *cells, style="bold" if row.differs and not result.only_diff else None)
    if result.metrics:
        table.add_section()
        for row in result.metrics:
            cells = [_fmt(v) for v in row.values]
            cells = [cells[0]] + [c + _delta(d) for c, d in zip(cells[1:], row.deltas[1:])]
            table.add_row(f"metrics.{row.label}", *cells,
                          style="bold" if row.differs and not result.only_diff else None)
    out.print(table)
    if result.only_diff and not result.params and not result.metrics:
        click.echo("no differences in params or metrics")
    click.echo(f"deltas are relative to {result.runs[0].name} ({result.runs[0].id[:width]})")


# --------------------------------------------------------------------------- plot


@runs.command("plot")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID...")
@click.option("--metric", "-m", required=True, help="The metric to plot (x = step).")
@click.option("--output", "-o", "output", required=True, type=click.Path(dir_okay=False), metavar="FILE.png",
              help="Where to write the PNG.")
@click.option("--title", help="Plot title (default: the metric).")
@json_option
@pass_ctx
def runs_plot(ctx: Ctx, run_ids: tuple[str, ...], metric: str, output: str, title: str | None,
              as_json: bool) -> None:
    """Curves of one metric of several runs in one PNG (needs matplotlib)."""
    from mlark import api
    from mlark.errors import NotFound
    from mlark.tracking.plot import Curve, plot_metric

    repo = ctx.repo()
    ids = list(dict.fromkeys(_resolve(repo, run_ids)))
    found = [api.get_run(i, repo=repo) for i in ids]
    with repo.db.read() as conn:
        width = _unique_prefix_width(conn, ids)
    names = [r.name for r in found]
    curves, used, skipped = [], [], []
    for run in found:
        label = run.name if names.count(run.name) == 1 else f"{run.name} ({run.id[:width]})"
        try:
            history = run.history(metric)
        except NotFound:
            skipped.append(run)
            continue
        curves.append(Curve(label, history.steps.tolist(), history.values.tolist()))
        used.append((run, len(history)))
    if not curves:
        raise NotFound(f"none of the runs has logged the metric {metric!r}", kind="metric", key=metric)
    path = plot_metric(curves, metric=metric, path=output, title=title)
    if as_json:
        emit_json({
            "path": str(path),
            "metric": metric,
            "runs": [{"id": r.id, "name": r.name, "points": n} for r, n in used],
            "skipped": [{"id": r.id, "name": r.name, "reason": f"no metric {metric!r}"} for r in skipped],
        })
        return
    for run in skipped:
        warn(f"run {run.id[:width]} ({run.name}) has no metric {metric!r}; left out of the plot")
    click.echo(f"wrote {path}: {metric} of {len(used)} run(s), {sum(n for _, n in used)} point(s)")
