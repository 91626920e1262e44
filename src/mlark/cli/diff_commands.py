"""mlark diff: compare two versions (files, tables, models) or two runs (params and metrics)."""

from __future__ import annotations

from typing import Any

import click

from mlark.cli.exit import ExitStatus
from mlark.cli.main import Ctx, cli, pass_ctx

_FORMATS = ("text", "json", "markdown")


def _keys(values: tuple[str, ...]) -> str | list[str] | None:
    from mlark.errors import InvalidInput

    if not values:
        return None
    keys = [k.strip() for v in values for k in v.split(",")]
    if not all(keys):
        raise InvalidInput(f"--key takes column names separated by commas, got {','.join(values)!r}", field="key")
    return keys[0] if len(keys) == 1 else keys


@cli.command("diff")
@click.argument("ref_a", metavar="A")
@click.argument("ref_b", metavar="B")
@click.option("--table", "table", is_flag=False, flag_value="", default=None, metavar="[PATH]",
              help="Compare the table PATH (a file, or a folder of Parquet/CSV/Arrow files) of both versions: "
                   "schema, rows added/removed/changed, column statistics and drift. Without PATH: the one "
                   "table file each version holds.")
@click.option("--key", "keys", multiple=True, metavar="COL[,COL...]",
              help="Key column(s) that identify a row (implies --table). Without a key, rows are matched by content.")
@click.option("--only-diff", is_flag=True, help="Runs: show only the params and metrics that differ.")
@click.option("--sample", type=click.IntRange(0, 1000), default=10, show_default=True,
              help="Tables: how many changed, added and removed rows to show.")
@click.option("--format", "-f", "fmt", type=click.Choice(_FORMATS), default="text", show_default=True,
              help="text: tables for a terminal; json; markdown: for pasting into a review.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--exit-code", is_flag=True, help=f"Exit with DIFFERS ({int(ExitStatus.DIFFERS)}) when A and B differ.")
@pass_ctx
def diff_command(ctx: Ctx, ref_a: str, ref_b: str, table: str | None, keys: tuple[str, ...], only_diff: bool,
                 sample: int, fmt: str, as_json: bool, exit_code: bool) -> None:
    """Compare A (old) with B (new): two versions, or two runs.

    \b
    A and B are versions (churn-data:v2, churn-data@best, churn-data:1f3a9c, churn-data),
    registered model versions (models:/churn/2, models:/churn@production), or runs
    (run:<id or unique prefix>). Both must be versions of one type, or two runs.

    \b
    Versions: files added, removed, modified and renamed (same content at a new path),
    sizes, and the bytes both versions share, from the stored trees (no file is read).
    Model versions also get their manifests compared (flavor, framework, signature,
    requirements) and their safetensors and ONNX files diffed.
    Runs: params and metrics side by side with deltas, tags, inputs and outputs.

    \b
    Examples:
      mlark diff churn-data:v2 churn-data:v3
      mlark diff churn-data:v2 churn-data:v3 --table train.parquet --key customer_id
      mlark diff churn-rf:v3 churn-rf:v4 --format markdown > review.md
      mlark diff run:0190a1 run:0190b2 --only-diff
    """
    from mlark.ops.diff import diff

    if as_json:
        fmt = "json"
    table_arg: str | bool | None = True if table == "" else table
    result: Any = diff(ctx.repo(), ref_a, ref_b, table=table_arg, key=_keys(keys), only_diff=only_diff,
                       sample=sample)
    if fmt == "json":
        click.echo(result.to_json())
    elif fmt == "markdown":
        click.echo(result.to_markdown(), nl=False)
    else:
        click.echo(result.render(), nl=False)
    if exit_code and result.has_changes:
        raise click.exceptions.Exit(ExitStatus.DIFFERS)
