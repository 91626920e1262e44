"""The data verbs: init, add, ls, log, show, get, status, rm, gc, fsck."""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import click

from mlark.cli.exit import ExitStatus
from mlark.cli.main import Ctx, cli, json_option, pass_ctx, warn
from mlark.cli.output import RichProgress, ago, console, emit_json, human_bytes, stamp


def _parse_meta(pairs: tuple[str, ...], raw_json: str | None) -> dict[str, Any]:
    from mlark.errors import InvalidInput

    meta: dict[str, Any] = {}
    if raw_json:
        try:
            loaded = json.loads(raw_json)
        except ValueError as exc:
            raise InvalidInput(f"--metadata-json is not valid JSON: {exc}", field="metadata") from exc
        if not isinstance(loaded, dict):
            raise InvalidInput("--metadata-json must be a JSON object", field="metadata")
        meta.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--meta takes KEY=VALUE, got {pair!r}", field="metadata")
        try:
            meta[key] = json.loads(value)
        except ValueError:
            meta[key] = value
    return meta


@cli.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option("--database", metavar="URL", help="Metadata database URL (default: SQLite inside .mlark/).")
@json_option
def init(path: str, database: str | None, as_json: bool) -> None:
    """Create a repository (.mlark/) in PATH."""
    from mlark.ops.repo import Repo

    repo = Repo.init(path, database=database)
    try:
        if as_json:
            emit_json({"path": str(repo.meta_dir), "id": repo.config.id, "format": repo.config.format})
        else:
            click.echo(f"Initialised empty mlark repository in {repo.meta_dir}")
    finally:
        repo.close()


@cli.command()
@click.argument("path", type=click.Path(exists=False))
@click.option("--name", "-n", required=True, help="Artifact name (letters, digits, - _ .).")
@click.option("--type", "-t", "type_", help="Artifact type: dataset, model, or any name (default dataset).")
@click.option("--message", "-m", required=True, help="What changed and why.")
@click.option("--meta", "meta_pairs", multiple=True, metavar="KEY=VALUE", help="Metadata entry (repeatable).")
@click.option("--metadata-json", metavar="JSON", help="Metadata as a JSON object.")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@click.option("--alias", "aliases", multiple=True, help="Point this alias at the new version (repeatable).")
@json_option
@pass_ctx
def add(ctx: Ctx, path: str, name: str, type_: str | None, message: str, meta_pairs: tuple[str, ...],
        metadata_json: str | None, tags: tuple[str, ...], aliases: tuple[str, ...], as_json: bool) -> None:
    """Commit the file or folder PATH as a new version of artifact NAME."""
    from mlark.ops.add import VagueMessageWarning

    repo = ctx.repo()
    meta = _parse_meta(meta_pairs, metadata_json)
    progress = RichProgress(enabled=not as_json)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VagueMessageWarning)
        outcome = repo.add_outcome(path, name=name, message=message, type=type_, metadata=meta, tags=tags,
                                   aliases=aliases, progress=progress)
    if as_json:
        emit_json(outcome.to_dict())
        return
    for note in outcome.warnings:
        warn(note)
    v = outcome.version
    s = outcome.stats
    if outcome.created:
        click.echo(f"{v.ref}  {v.digest[:12]}  {v.file_count} file(s), {human_bytes(v.size)}")
    else:
        click.echo(f"no new version: the content is identical to {v.ref} ({v.digest[:12]})")
    click.echo(
        f"stored {human_bytes(s.bytes_stored)} new of {human_bytes(s.bytes)} "
        f"({s.chunks_new} new chunk(s) of {s.chunks}"
        + (f"; {outcome.cached_files} unchanged file(s) not re-read" if outcome.cached_files else "")
        + ")"
    )
    if v.aliases:
        click.echo(f"aliases: {', '.join(v.aliases)}")


@cli.command("ls")
@json_option
@pass_ctx
def ls(ctx: Ctx, as_json: bool) -> None:
    """List artifacts."""
    arts = ctx.repo().artifacts()
    if as_json:
        emit_json([{"name": a.name, "type": a.type, "versions": a.version_count,
                    "latest": None if a.latest is None else f"{a.name}:v{a.latest}",
                    "created_at": a.created_at.isoformat(), "created_by": a.created_by} for a in arts])
        return
    if not arts:
        click.echo("no artifacts yet; add one with: mlark add PATH --name NAME -m MESSAGE")
        return
    from rich.table import Table

    table = Table("name", "type", "versions", "latest", "created")
    for a in arts:
        table.add_row(a.name, a.type, str(a.version_count), f"v{a.latest}" if a.latest else "-", ago(a.created_at))
    console().print(table)


@cli.command()
@click.argument("name")
@click.option("--all", "include_removed", is_flag=True, help="Include removed versions.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many versions.")
@json_option
@pass_ctx
def log(ctx: Ctx, name: str, include_removed: bool, limit: int | None, as_json: bool) -> None:
    """History of artifact NAME, newest first."""
    versions = ctx.repo().history(name, include_removed=include_removed, limit=limit)
    if as_json:
        emit_json([v.to_dict() for v in versions])
        return
    for v in versions:
        flag = "  [removed]" if v.removed_at else ""
        aliases = f"  ({', '.join(v.aliases)})" if v.aliases else ""
        click.secho(f"{v.ref}  {v.digest[:12]}{aliases}{flag}", fg="yellow", bold=True)
        click.echo(f"  author: {v.author}")
        click.echo(f"  date:   {stamp(v.created_at)} ({ago(v.created_at)})")
        click.echo(f"  size:   {human_bytes(v.size)} in {v.file_count} file(s), {human_bytes(v.new_bytes)} newly stored")
        if v.tags:
            click.echo(f"  tags:   {', '.join(v.tags)}")
        click.echo("")
        for line in v.message.splitlines():
            click.echo(f"    {line}")
        click.echo("")


@cli.command()
@click.argument("ref")
@json_option
@pass_ctx
def show(ctx: Ctx, ref: str, as_json: bool) -> None:
    """Files, digests, metadata and aliases of a version."""
    repo = ctx.repo()
    v = repo.resolve(ref)
    tree = repo.tree(v)
    if as_json:
        doc = v.to_dict()
        doc["entries"] = [{k: val for k, val in e.to_json().items() if k != "chunks"} | (
            {"chunks": len(e.chunks)} if e.type == "file" else {}) for e in tree.entries]
        emit_json(doc)
        return
    click.secho(f"{v.ref}  ({v.type})", bold=True)
    click.echo(f"digest:   {v.digest}")
    click.echo(f"author:   {v.author}")
    click.echo(f"date:     {stamp(v.created_at)}")
    click.echo(f"message:  {v.message}")
    click.echo(f"size:     {human_bytes(v.size)} in {v.file_count} file(s); {human_bytes(v.new_bytes)} newly stored")
    click.echo(f"parent:   {v.name}:v{v.parent_number}" if v.parent_number else "parent:   -")
    click.echo(f"aliases:  {', '.join(v.aliases) or '-'}")
    if v.tags:
        click.echo(f"tags:     {', '.join(v.tags)}")
    if v.metadata:
        click.echo(f"metadata: {json.dumps(v.metadata, sort_keys=True)}")
    from rich.table import Table

    table = Table("path", "type", "mode", "size", "digest", "chunks")
    for e in tree.entries:
        if e.type == "file":
            table.add_row(e.path, "file", oct(e.mode)[2:], human_bytes(e.size), e.digest[:16], str(len(e.chunks)))
        elif e.type == "dir":
            table.add_row(e.path + "/", "dir", oct(e.mode)[2:], "", "", "")
        else:
            table.add_row(e.path, f"-> {e.target}", "", "", "", "")
    console().print(table)


@cli.command()
@click.argument("ref")
@click.option("--to", "to", metavar="DIR", help="Folder to write into (default ./NAME); '-' writes one file to stdout.")
@click.option("--file", "file_path", metavar="PATH", help="With --to -: which file of the version to write.")
@json_option
@pass_ctx
def get(ctx: Ctx, ref: str, to: str | None, file_path: str | None, as_json: bool) -> None:
    """Write the exact, verified files of version REF back to disk."""
    repo = ctx.repo()
    if to == "-":
        out = sys.stdout.buffer
        for data in repo.read_file(ref, file_path):
            out.write(data)
        out.flush()
        return
    report = repo.get_report(ref, to, progress=RichProgress(enabled=not as_json))
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(
        f"{report.version.ref} -> {report.path}: {report.files_written} file(s) written "
        f"({human_bytes(report.bytes_written)}), {report.files_unchanged} already up to date"
    )


@cli.command()
@click.argument("path", default=".", type=click.Path())
@click.option("--ref", help="Version to compare with (default: the artifact PATH was added as, @latest).")
@click.option("--exit-code", is_flag=True, help=f"Exit with status DIFFERS ({int(ExitStatus.DIFFERS)}) when PATH differs.")
@json_option
@pass_ctx
def status(ctx: Ctx, path: str, ref: str | None, exit_code: bool, as_json: bool) -> None:
    """What differs between folder PATH and a version, file by file."""
    report = ctx.repo().status(path, ref)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(f"comparing {path} with {report.version.ref}")
        for label, items, color in (("added", report.added, "green"), ("removed", report.removed, "red"),
                                    ("modified", report.modified, "yellow"), ("mode changed", report.mode_changed, "cyan")):
            for item in items:
                click.secho(f"  {label + ':':14}{item}", fg=color)
        if report.clean:
            click.echo(f"clean: {report.unchanged} file(s) match")
        else:
            click.echo(f"{report.unchanged} file(s) unchanged")
    if exit_code and not report.clean:
        raise click.exceptions.Exit(ExitStatus.DIFFERS)


@cli.command()
@click.argument("ref")
@click.option("--force", is_flag=True, help="Also remove aliases that point at the version.")
@click.option("--message", "-m", default="", help="Why it is removed.")
@json_option
@pass_ctx
def rm(ctx: Ctx, ref: str, force: bool, message: str, as_json: bool) -> None:
    """Remove a version from history; 'mlark gc' then reclaims its space."""
    v = ctx.repo().rm(ref, force=force, message=message)
    if as_json:
        emit_json(v.to_dict())
    else:
        click.echo(f"removed {v.ref}; run 'mlark gc' to reclaim space no other version uses")


@cli.command()
@json_option
@pass_ctx
def gc(ctx: Ctx, as_json: bool) -> None:
    """Delete chunks and packs that no version reaches."""
    report = ctx.repo().gc(progress=RichProgress(enabled=not as_json))
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(
        f"freed {human_bytes(report.bytes_freed)}: {report.packs_deleted} pack(s) deleted, "
        f"{report.packs_rewritten} rewritten, {report.unindexed_packs_deleted} unindexed removed; "
        f"{report.live_chunks} chunk(s) still reachable"
    )


@cli.command()
@click.option("--rebuild-index", is_flag=True, help="Rebuild the chunk index from the pack footers first.")
@json_option
@pass_ctx
def fsck(ctx: Ctx, rebuild_index: bool, as_json: bool) -> None:
    """Verify every byte: packs, index, trees and versions."""
    report = ctx.repo().fsck(rebuild_index=rebuild_index, progress=RichProgress(enabled=not as_json))
    if as_json:
        emit_json(report.to_dict())
    else:
        if report.index_rebuilt:
            click.echo("chunk index rebuilt from pack footers")
        for w in report.warnings:
            warn(w)
        for e in report.errors:
            click.secho(f"error: {e}", fg="red", err=True)
        click.echo(
            f"checked {report.packs_checked} pack(s), {report.chunks_checked} chunk(s), "
            f"{human_bytes(report.bytes_checked)}, {report.versions_checked} version(s): "
            + ("ok" if report.ok else f"{len(report.errors)} problem(s)")
        )
    if not report.ok:
        raise click.exceptions.Exit(ExitStatus.INTEGRITY)


from mlark.cli import alias_commands  # noqa: E402,F401
