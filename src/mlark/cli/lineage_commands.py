"""mlark lineage, mlark impact, mlark derive: trace any result to its sources and see what a version touched."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import click

from mlark.cli.main import Ctx, cli, json_option, pass_ctx, warn
from mlark.cli.output import emit_json

_FORMATS = ("text", "mermaid", "dot", "json", "png", "svg")
_REF_HELP = """\b
REF is a version (churn-data, churn-data:v3, churn-data@best), a run
(run:<id or unique prefix>) or a registered model version
(models:/churn/2, models:/churn@production, models:/churn@champion)."""


@cli.command("lineage")
@click.argument("ref")
@click.option("--up/--down", "up", default=True,
              help="--up (default): what REF was made from, back to raw data. --down: everything made from REF.")
@click.option("--depth", type=click.IntRange(min=0), metavar="N",
              help="At most N edges away from REF (default: no bound).")
@click.option("--format", "-f", "fmt", type=click.Choice(_FORMATS), default="text", show_default=True,
              help="text: a tree; mermaid: a diagram GitHub renders (in a ```mermaid block); dot: Graphviz; "
                   "json; png/svg: drawn by Graphviz dot (must be installed).")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write to FILE instead of stdout (needed for png). Mermaid to a .mmd file is written "
                   "without the ``` fence.")
@json_option
@pass_ctx
def lineage_command(ctx: Ctx, ref: str, up: bool, depth: int | None, fmt: str, output: str | None,
                    as_json: bool) -> None:
    """The lineage graph of REF: the runs and versions it was made from (--up), or made from it (--down).

    \b
    Edges: used (version -> run), produced (run -> version),
    registered_as (version -> registered model version),
    derived_from (version -> version, recorded with `mlark derive`).

    \b
    Examples:
      mlark lineage models:/churn@production --up
      mlark lineage churn-data:v3 --down --depth 2
      mlark lineage models:/churn@production --format mermaid > lineage.md
      mlark lineage churn-rf:v4 --format svg -o lineage.svg
    """
    from mlark.lineage import export
    from mlark.ops import lineage as ops

    if as_json:
        fmt = "json"
    if fmt == "png" and output is None and sys.stdout.isatty():
        from mlark.errors import InvalidInput

        raise InvalidInput("PNG is binary: write it to a file with -o FILE (or redirect stdout)", field="output")
    if fmt in export.IMAGE_FORMATS and export.dot_program() is None:  # refuse before any work
        export.render("", fmt)
    graph = ops.lineage(ctx.repo(), ref, "up" if up else "down", depth)
    if fmt == "json":
        if output is None:
            emit_json(graph.to_dict())
            return
        _write(output, graph.to_json() + "\n")
    elif fmt == "text":
        _write(output, graph.to_text() + "\n")
    elif fmt == "mermaid":
        if len(graph.edges) > export.MERMAID_MAX_EDGES:
            warn(f"the diagram has {len(graph.edges)} edges; Mermaid renderers (GitHub's among them) refuse more "
                 f"than {export.MERMAID_MAX_EDGES} by default: narrow it with --depth, or use --format svg")
        raw = output is not None and Path(output).suffix.lower() in (".mmd", ".mermaid")
        _write(output, graph.to_mermaid(fenced=not raw))
    elif fmt == "dot":
        _write(output, graph.to_dot())
    else:
        _write(output, graph.render(fmt))
    if graph.truncated and fmt != "json":
        warn(f"--depth {depth} left part of the graph out (nodes marked 'more'); raise it to see everything")


def _write(output: str | None, data: str | bytes) -> None:
    if output is None:
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            click.echo(data, nl=False)
        return
    from mlark.errors import StorageError

    try:
        Path(output).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    except OSError as exc:
        raise StorageError(f"could not write {output}: {exc.strerror or exc}", path=output) from exc
    click.echo(f"wrote {output}", err=True)


@cli.command("impact")
@click.argument("ref")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, metavar="N",
              help="List at most N runs and N versions in the text output (--json lists all).")
@json_option
@pass_ctx
def impact_command(ctx: Ctx, ref: str, limit: int, as_json: bool) -> None:
    """What depends on REF: every run, version and registered model version made from it, directly or
    transitively, and the stages and aliases (production!) that point at them now.

    \b
    Example ("found a bug in churn-data:v3"):
      mlark impact churn-data:v3
    """
    from mlark.ops import lineage as ops

    report = ops.impact(ctx.repo(), ref)
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(report.to_text(limit=limit))


@cli.command("derive")
@click.argument("child")
@click.option("--from", "parent", required=True, metavar="PARENT",
              help="The version CHILD was made from.")
@click.option("--message", "-m", required=True, help="How CHILD was made from PARENT, and why.")
@json_option
@pass_ctx
def derive_command(ctx: Ctx, child: str, parent: str, message: str, as_json: bool) -> None:
    """Record that version CHILD was derived from version PARENT outside any run.

    \b
    Example:
      mlark derive churn-data:v4 --from churn-data:v3 -m "Fixed 12 mislabeled rows by hand"
    """
    from mlark.ops import lineage as ops
    from mlark.ops.add import VagueMessageWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VagueMessageWarning)
        done: Any = ops.derive(ctx.repo(), child, parent, message)
    for w in caught:
        if issubclass(w.category, VagueMessageWarning):
            warn(str(w.message))
    if as_json:
        emit_json(done.to_dict())
    elif done.created:
        click.echo(f"{done.child} derived from {done.parent}")
    else:
        click.echo(f"already recorded: {done.child} derived from {done.parent} ({done.message})")


lineage_command.help = (lineage_command.help or "") + "\n\n" + _REF_HELP
impact_command.help = (impact_command.help or "") + "\n\n" + _REF_HELP
