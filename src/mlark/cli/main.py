"""The ``mlark`` command. Heavy modules are imported inside commands so ``mlark --help`` stays fast."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import Any, Callable

import click

from mlark.cli.exit import ExitStatus, status_for

JSON_HELP = "Print machine-readable JSON instead of text."


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help=JSON_HELP)(fn)


class Ctx:
    def __init__(self, repo_path: str | None) -> None:
        self.repo_path = repo_path
        self._repo: Any = None

    def repo(self) -> Any:
        if self._repo is None:
            from mlark.ops.repo import Repo

            self._repo = Repo.open(self.repo_path, author=os.environ.get("MLARK_AUTHOR") or None)
        return self._repo

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()


pass_ctx = click.make_pass_decorator(Ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--repo", "repo_path", envvar="MLARK_REPO", metavar="PATH",
              help="Repository folder (default: found by walking up from here; env MLARK_REPO).")
@click.version_option(package_name="mlark")
@click.pass_context
def cli(ctx: click.Context, repo_path: str | None) -> None:
    """mlark: version control for machine learning data sets, models and experiments.

    References: NAME (latest), NAME:v3, NAME@ALIAS, NAME:<digest-prefix>.
    """
    ctx.obj = Ctx(repo_path)
    ctx.call_on_close(ctx.obj.close)


def warn(text: str) -> None:
    click.echo(f"warning: {text}", err=True)


from mlark.cli import commands  # noqa: E402,F401  (registers the commands on `cli`)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    # At exit the interpreter runs a full garbage collection over everything imported (SQLAlchemy
    # alone is a few hundred thousand objects): about 40 ms of every command, collecting nothing.
    # Freezing them first (atexit runs before that collection) skips it; the repository is closed
    # before this, and memory goes back with the process.
    atexit.register(gc.freeze)
    try:
        rv = cli.main(args=args, prog_name="mlark", standalone_mode=False)
        if isinstance(rv, int) and rv != 0:
            sys.exit(rv)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        sys.exit(ExitStatus.USAGE)
    except click.Abort:
        click.echo("interrupted", err=True)
        sys.exit(ExitStatus.INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(ExitStatus.OK)
    except Exception as exc:
        from mlark.errors import MlarkError

        status = status_for(exc)
        if not isinstance(exc, MlarkError):
            raise
        if as_json:
            from mlark.cli.output import emit_json

            emit_json({**exc.to_dict(), "exit_status": status.name})
        click.echo(f"mlark: {exc}", err=True)
        sys.exit(status)
    sys.exit(ExitStatus.OK)


if __name__ == "__main__":
    main()
