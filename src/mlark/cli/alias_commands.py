"""mlark alias: set, rm, undo, log, ls."""

from __future__ import annotations

import click

from mlark.cli.main import Ctx, cli, json_option, pass_ctx
from mlark.cli.output import emit_json, stamp


@cli.group()
def alias() -> None:
    """Movable names for versions (best, production, ...); every move is logged."""


def _print_move(move: object, as_json: bool) -> None:
    if move is None:
        if as_json:
            emit_json(None)
        else:
            click.echo("nothing to do: the alias already points there")
        return
    doc = move.to_dict()  # type: ignore[attr-defined]
    if as_json:
        emit_json(doc)
    else:
        click.echo(f"{doc['artifact']}@{doc['alias']}: {doc['from'] or '(unset)'} -> {doc['to'] or '(unset)'}")


@alias.command("set")
@click.argument("ref")
@click.argument("name")
@click.option("--message", "-m", default="", help="Why the alias moves.")
@json_option
@pass_ctx
def alias_set(ctx: Ctx, ref: str, name: str, message: str, as_json: bool) -> None:
    """Point alias NAME at version REF (moving it if it is elsewhere)."""
    _print_move(ctx.repo().alias_set(ref, name, message=message), as_json)


@alias.command("rm")
@click.argument("artifact")
@click.argument("name")
@click.option("--message", "-m", default="", help="Why the alias goes.")
@json_option
@pass_ctx
def alias_rm(ctx: Ctx, artifact: str, name: str, message: str, as_json: bool) -> None:
    """Remove alias NAME from ARTIFACT."""
    _print_move(ctx.repo().alias_remove(artifact, name, message=message), as_json)


@alias.command("undo")
@click.argument("ref", metavar="ARTIFACT@ALIAS")
@click.option("--message", "-m", default="", help="Why.")
@json_option
@pass_ctx
def alias_undo(ctx: Ctx, ref: str, message: str, as_json: bool) -> None:
    """Move ARTIFACT@ALIAS back to where it was before its last move."""
    _print_move(ctx.repo().alias_undo(ref, message=message), as_json)


@alias.command("log")
@click.argument("artifact")
@click.option("--alias", "alias_name", help="Only this alias.")
@json_option
@pass_ctx
def alias_log(ctx: Ctx, artifact: str, alias_name: str | None, as_json: bool) -> None:
    """Every alias move of ARTIFACT: who, when, from, to, why."""
    moves = ctx.repo().alias_log(artifact, alias_name)
    if as_json:
        emit_json([m.to_dict() for m in moves])
        return
    from rich.table import Table

    from mlark.cli.output import console

    table = Table("when", "alias", "from", "to", "who", "why")
    for m in moves:
        d = m.to_dict()
        table.add_row(stamp(m.at), m.alias, d["from"] or "-", d["to"] or "-", m.author, m.message)
    console().print(table)


@alias.command("ls")
@click.argument("artifact")
@json_option
@pass_ctx
def alias_ls(ctx: Ctx, artifact: str, as_json: bool) -> None:
    """Current aliases of ARTIFACT."""
    targets = ctx.repo().aliases(artifact)
    if as_json:
        emit_json({k: f"{artifact}:v{v}" for k, v in targets.items()})
        return
    for name, number in targets.items():
        click.echo(f"{artifact}@{name} -> {artifact}:v{number}")
from mlark.cli import demo_command  # noqa: E402,F401
from mlark.cli import runs_commands  # noqa: E402,F401
from mlark.cli import models_commands  # noqa: E402,F401
from mlark.cli import serve_commands  # noqa: E402,F401
from mlark.cli import lineage_commands  # noqa: E402,F401
from mlark.cli import diff_commands  # noqa: E402,F401
