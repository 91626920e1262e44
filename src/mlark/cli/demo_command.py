"""mlark demo: the end-to-end tour on real data (the steps live in mlark.demo; this renders them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import click

from mlark.cli.main import cli, json_option
from mlark.cli.output import console, emit_json, human_bytes


class RichReporter:
    """Narrates the demo on stdout with rich."""

    def __init__(self) -> None:
        self.console = console()

    def step(self, number: int, total: int, title: str) -> None:
        from rich.text import Text

        self.console.print()
        self.console.rule(Text.assemble((f"Step {number}/{total}  ", "bold cyan"), (title, "bold")),
                          align="left", style="cyan")

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, soft_wrap=False)

    def command(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text("  $ " + text, style="dim"))  # soft-wrapped: long commands stay whole

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        from rich.table import Table

        table = Table(*columns, title=title, title_justify="left", title_style="bold")
        for row in rows:
            table.add_row(*row)
        self.console.print(table, soft_wrap=False)

    def check(self, label: str, ok: bool, detail: str = "") -> None:
        from rich.text import Text

        mark = ("✓ ", "bold green") if ok else ("✗ ", "bold red")
        self.console.print(Text.assemble(mark, label, (f"  ({detail})" if detail else "", "dim")), soft_wrap=False)


def _print_summary(summary: dict[str, Any], workdir_arg: str) -> None:
    out = console()
    storage = summary.get("storage", {})
    out.print()
    out.rule("[bold green]Done[/]", align="left", style="green")
    if storage:
        out.print(f"{summary['v2']['ref']}: {human_bytes(storage['v2_size'])}, "
                  f"{human_bytes(storage['v2_new_bytes'])} newly stored. Repository packs "
                  f"{human_bytes(storage['repository_bytes'])} vs {human_bytes(storage['naive_bytes'])} for two copies "
                  f"({storage['saved_fraction']:.0%} saved).", markup=False, soft_wrap=False)
    out.print(f"Explore it yourself:  cd {workdir_arg} && mlark log digits-data && mlark show digits-data@best",
              markup=False, soft_wrap=False)
    out.print("Machine-readable summary: mlark demo --json --force", markup=False, soft_wrap=False)


@cli.command()
@click.option("--workdir", default="demo-workspace", show_default=True, metavar="DIR",
              help="Folder to create the demo in: new, empty, or a previous demo workspace (with --force).")
@click.option("--force", is_flag=True, help="Wipe a previous demo workspace at DIR and start over.")
@json_option
def demo(workdir: str, force: bool, as_json: bool) -> None:
    """Tour mlark end to end on real data (scikit-learn's hand-written digits), step by step.

    Creates a repository in DIR, commits the data set, edits and commits it again, shows the history
    and the storage saved, pins a version with an alias, rolls back to it byte for byte, trains in
    tracked runs, diffs the data by key, registers and promotes a model, serves it over HTTP through a
    promotion and a rollback, scores a file in batch, traces lineage and runs fsck.
    Needs the demo extra: pip install 'mlark[demo]'.
    """
    from mlark.demo import NullReporter, run

    reporter = NullReporter() if as_json else RichReporter()
    summary = run(Path(workdir), force=force, out=reporter, author=os.environ.get("MLARK_AUTHOR") or None)
    if as_json:
        emit_json(summary)
    else:
        _print_summary(summary, workdir)
