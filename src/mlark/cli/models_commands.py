"""mlark models: the model registry from the command line.

ls, register, show, promote, alias, unalias, history, rollback. Every command takes --json.
Registered versions are given by number (2) or reference (models:/churn/2, churn-rf:v3).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import click

from mlark.cli.main import Ctx, cli, json_option, pass_ctx, warn
from mlark.cli.output import console, emit_json, stamp

ID_WIDTH = 8


@cli.group("models")
def models() -> None:
    """Registered models: versions, stages (development, staging, production, archived), aliases, history.

    \b
    References: models:/NAME/N, models:/NAME@ALIAS, models:/NAME@STAGE.
    """


# --------------------------------------------------------------------------- helpers


@contextmanager
def _warnings_as_notes() -> Iterator[None]:
    """Vague-message warnings become one ``warning:`` line each instead of a Python warning."""
    from mlark.ops.add import VagueMessageWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VagueMessageWarning)
        yield
    for w in caught:
        if issubclass(w.category, VagueMessageWarning):
            warn(str(w.message))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _out() -> Any:
    out = console()
    if not out.is_terminal:
        out.width = max(out.width, 200)
    return out


def _print_events(events: Sequence[Any], model: str, nothing: str) -> None:
    if not events:
        click.echo(nothing)
        return
    for e in sorted(events, key=lambda e: (e.kind != "stage" or e.to_value != "archived", e.number or 0)):
        click.echo(f"{model} {e.describe()}")


def _events_doc(events: Sequence[Any]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events]


def _run_names(repo: Any, ids: Sequence[str]) -> dict[str, str]:
    from mlark.tracking import records

    wanted = [i for i in dict.fromkeys(ids) if i]
    if not wanted:
        return {}
    with repo.db.read() as conn:
        return {r.id: f"{r.project}/{r.name}" for r in records.load_records(conn, wanted)}


def _stages_text(stages: dict[str, list[int]]) -> str:
    return "\n".join(f"{s}: {', '.join(str(n) for n in numbers)}" for s, numbers in stages.items()) or "-"


def _aliases_text(aliases: dict[str, int]) -> str:
    return "\n".join(f"@{a} -> {n}" for a, n in aliases.items()) or "-"


def _fmt(value: Any) -> str:
    import json
    import math

    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, (str, int, bool)) or value is None:
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


# --------------------------------------------------------------------------- ls


@models.command("ls")
@json_option
@pass_ctx
def models_ls(ctx: Ctx, as_json: bool) -> None:
    """Registered models, with the stage and aliases of their versions."""
    from mlark.ops import registry

    found = registry.list_models(ctx.repo())
    if as_json:
        emit_json([m.to_dict() for m in found])
        return
    if not found:
        click.echo("no registered models yet; register one with: mlark models register NAME REF -m MESSAGE")
        return
    from rich.table import Table

    table = Table("name", "versions", "latest", "stages", "aliases", "description")
    for m in found:
        table.add_row(m.name, str(len(m.versions)), "-" if m.latest is None else str(m.latest),
                      _stages_text(m.stages), _aliases_text(m.aliases), m.description or "")
    _out().print(table)


# --------------------------------------------------------------------------- register


@models.command("register")
@click.argument("name")
@click.argument("ref")
@click.option("--message", "-m", required=True, help="Why this version is a candidate.")
@click.option("--description", help="Description of the registered version.")
@click.option("--tag", "tag_pairs", multiple=True, metavar="KEY=VALUE", help="Tag of the registered version (repeatable).")
@json_option
@pass_ctx
def models_register(ctx: Ctx, name: str, ref: str, message: str, description: str | None,
                    tag_pairs: tuple[str, ...], as_json: bool) -> None:
    """Register the model version REF (e.g. churn-rf:v3) as the next version of registered model NAME."""
    from mlark.errors import InvalidInput
    from mlark.ops import registry

    tags: dict[str, str] = {}
    for pair in tag_pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--tag takes KEY=VALUE, got {pair!r}", field="tags")
        tags[key] = value
    repo = ctx.repo()
    with _warnings_as_notes():
        number = registry.register(repo, name, ref, message, description=description, tags=tags)
    mv = registry.resolve(repo, f"models:/{name}/{number}")
    if as_json:
        emit_json(mv.to_dict())
        return
    click.echo(f"registered {mv.version} as {name} version {number} ({mv.ref}), stage {mv.stage}")


# --------------------------------------------------------------------------- show


@models.command("show")
@click.argument("name_or_ref")
@json_option
@pass_ctx
def models_show(ctx: Ctx, name_or_ref: str, as_json: bool) -> None:
    """A registered model: versions, stages, aliases, source runs and the data they trained on.

    \b
    Given one version (models:/churn@production, churn@production, churn/2): that version,
    the run that trained it with its params and metrics, and the exact data versions it used.
    """
    from mlark.ops import registry

    repo = ctx.repo()
    if name_or_ref.startswith("models:/") or "@" in name_or_ref or "/" in name_or_ref:
        lin = registry.lineage(repo, name_or_ref)
        if as_json:
            emit_json(lin.to_dict())
            return
        _print_lineage(lin)
        return
    model = registry.show(repo, name_or_ref)
    if as_json:
        emit_json(model.to_dict())
        return
    click.echo(f"{model.name}: registered model created {stamp(model.created_at)} by {model.created_by}")
    if model.description:
        click.echo(f"description: {model.description}")
    if model.tags:
        click.echo("tags: " + ", ".join(f"{k}={v}" for k, v in sorted(model.tags.items())))
    if not model.versions:
        click.echo("no versions")
        return
    names = _run_names(repo, [v.source_run_id for v in model.versions if v.source_run_id])
    from rich.table import Table

    table = Table("version", "model version", "stage", "aliases", "source run", "training data", "registered")
    for v in model.versions:
        run = "-"
        if v.source_run_id:
            run = v.source_run_id[:ID_WIDTH] + (f"\n{names[v.source_run_id]}" if v.source_run_id in names else "")
        table.add_row(str(v.number), v.version + (" (removed)" if v.version_removed else ""), v.stage,
                      ", ".join("@" + a for a in v.aliases) or "-", run, "\n".join(v.inputs) or "-",
                      f"{stamp(v.created_at)}\n{v.created_by}")
    _out().print(table)


def _print_lineage(lin: Any) -> None:
    mv, version = lin.model_version, lin.version
    click.echo(f"{lin.ref} -> {mv.model} version {mv.number} ({mv.ref})")
    click.echo(f"  model version: {version.ref}  digest {version.digest[:12]}"
               + ("  (removed)" if version.removed_at else ""))
    click.echo(f"  stage: {mv.stage} (since {stamp(mv.stage_changed_at)})")
    click.echo("  aliases: " + (", ".join("@" + a for a in mv.aliases) or "-"))
    meta = version.metadata or {}
    if meta.get("flavor"):
        framework = meta.get("framework") or {}
        click.echo(f"  flavor: {meta['flavor']} ({framework.get('name', '?')} {framework.get('version', '?')})")
    if mv.description:
        click.echo(f"  description: {mv.description}")
    run = lin.run
    if run is None:
        click.echo("  run: unknown (the version was not logged by a run and its manifest names none)")
    else:
        how = "logged it" if lin.run_source == "lineage" else "named in the model's manifest"
        click.echo(f"  run: {run.id}  {run.project}/{run.name}  {run.status}  ({how})")
        click.echo("  params: " + (", ".join(f"{k}={_fmt(v)}" for k, v in sorted(run.params.items())) or "-"))
        click.echo("  metrics: " + (", ".join(f"{k}={_fmt(v)}" for k, v in sorted(run.metrics.items())) or "-"))
    if lin.inputs:
        click.echo("  data used:")
        for v in lin.inputs:
            click.echo(f"    {v.ref}  ({v.type}, digest {v.digest[:12]})")
    else:
        click.echo("  data used: -")


# --------------------------------------------------------------------------- promote, alias, unalias


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.argument("stage")
@click.option("--message", "-m", required=True, help="Why: what was checked, what improved.")
@click.option("--keep-previous", is_flag=True, default=None,
              help="Do not archive the version that held production (default: archive it, or the model's "
                   "tag mlark.archive_previous).")
@json_option
@pass_ctx
def models_promote(ctx: Ctx, name: str, version: str, stage: str, message: str, keep_previous: bool | None,
                   as_json: bool) -> None:
    """Move registered VERSION of NAME to STAGE (development, staging, production, archived)."""
    from mlark.ops import registry

    with _warnings_as_notes():
        events = registry.promote(ctx.repo(), name, version, stage, message,
                                  archive_previous=False if keep_previous else None)
    if as_json:
        emit_json(_events_doc(events))
        return
    _print_events(events, name, f"{name} version {version} is already in {stage.lower()}; nothing changed")


@models.command("alias")
@click.argument("name")
@click.argument("version")
@click.argument("alias")
@click.option("--message", "-m", required=True, help="Why this version gets the alias.")
@json_option
@pass_ctx
def models_alias(ctx: Ctx, name: str, version: str, alias: str, message: str, as_json: bool) -> None:
    """Point models:/NAME@ALIAS at registered VERSION (the move is recorded)."""
    from mlark.ops import registry

    with _warnings_as_notes():
        events = registry.set_alias(ctx.repo(), name, version, alias, message)
    if as_json:
        emit_json(_events_doc(events))
        return
    _print_events(events, name, f"{name}@{alias} already points at version {version}; nothing changed")


@models.command("unalias")
@click.argument("name")
@click.argument("alias")
@click.option("--message", "-m", help="Why the alias is removed.")
@json_option
@pass_ctx
def models_unalias(ctx: Ctx, name: str, alias: str, message: str | None, as_json: bool) -> None:
    """Remove alias ALIAS of registered model NAME (recorded)."""
    from mlark.ops import registry

    with _warnings_as_notes():
        events = registry.remove_alias(ctx.repo(), name, alias, message)
    if as_json:
        emit_json(_events_doc(events))
        return
    _print_events(events, name, "nothing changed")


# --------------------------------------------------------------------------- history, rollback


@models.command("history")
@click.argument("name")
@click.option("--limit", "-n", type=click.IntRange(min=1), help="Show the last N changes.")
@json_option
@pass_ctx
def models_history(ctx: Ctx, name: str, limit: int | None, as_json: bool) -> None:
    """Every registration, stage transition and alias move of NAME: who, when, from, to, why (newest first)."""
    from mlark.ops import registry

    events = registry.history(ctx.repo(), name, limit=limit)
    if as_json:
        emit_json(_events_doc(events))
        return
    if not events:
        click.echo(f"{name} has no recorded changes")
        return
    from rich.table import Table

    table = Table("when", "version", "change", "from", "to", "who", "why")
    for e in events:
        table.add_row(stamp(e.at), "-" if e.number is None else str(e.number), e.describe(),
                      e.from_value or "-", e.to_value or "-", e.author, e.message)
    _out().print(table)


@models.command("rollback")
@click.argument("name")
@click.argument("stage_or_alias")
@click.option("--message", "-m", help="Why the rollback.")
@json_option
@pass_ctx
def models_rollback(ctx: Ctx, name: str, stage_or_alias: str, message: str | None, as_json: bool) -> None:
    """Move STAGE_OR_ALIAS of NAME back to the version(s) that held it before its last move."""
    from mlark.ops import registry

    events = registry.rollback(ctx.repo(), name, stage_or_alias, message)
    if as_json:
        emit_json(_events_doc(events))
        return
    _print_events(events, name, "nothing changed")
