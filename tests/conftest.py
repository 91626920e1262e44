"""Shared fixtures.

- ``pg_cluster`` (session): a throwaway PostgreSQL cluster on 127.0.0.1, started
  on first use and deleted at the end of the session. Tests that need it are
  skipped, with the reason, when the PostgreSQL server binaries are missing.
- ``database_url`` (function, parametrized ``sqlite`` / ``postgres``): the URL of
  a fresh, empty metadata database (nothing created in it). The ``postgres``
  case carries the ``postgres`` marker: ``-m "not postgres"`` runs SQLite only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

PG_BINARIES = ("initdb", "pg_ctl", "postgres")
PG_SYSTEM_USER = "mlarkpg"  # PostgreSQL refuses to run as root
PG_SUPERUSER = "postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    nologin = next((p for p in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if os.path.exists(p)), "/bin/false")
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--user-group", "--shell", nologin, name],
        capture_output=True,
        text=True,
    )
    try:
        return pwd.getpwnam(name)  # also covers a parallel worker having created it first
    except KeyError:
        raise RuntimeError(f"could not create system user {name}: {result.stderr.strip()}") from None


class PostgresCluster:
    """A running throwaway cluster: trust auth, superuser ``postgres``, TCP on 127.0.0.1."""

    def __init__(self, root: Path, run_as: list[str]) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "log" / "postgres.log"
        self.host = "127.0.0.1"
        self.port = 0
        self._run_as = run_as
        self._admin: object | None = None

    # ------------------------------------------------------------ lifecycle

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._run_as, *args], capture_output=True, text=True, timeout=timeout, cwd=self.root
        )

    def init(self) -> None:
        result = self._run(
            "initdb", "-D", str(self.data), "-U", PG_SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions",
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        last = ""
        for _ in range(5):  # the free port may be taken between probing and binding
            self.port = _free_port()
            options = (
                f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
                "-F -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
            if result.returncode == 0:
                return
            last = f"{result.stdout}\n{result.stderr}\n{self.log.read_text(errors='replace') if self.log.exists() else ''}"
        raise RuntimeError(f"pg_ctl start failed:\n{last}")

    def stop(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()  # type: ignore[attr-defined]
            except Exception:
                pass
            self._admin = None
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)

    # ------------------------------------------------------------ databases

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def _admin_conn(self):  # type: ignore[no-untyped-def]
        import psycopg

        if self._admin is None or self._admin.closed:  # type: ignore[attr-defined]
            self._admin = psycopg.connect(
                host=self.host, port=self.port, user=PG_SUPERUSER, dbname="postgres", autocommit=True
            )
        return self._admin

    def create_database(self) -> str:
        """Create an empty database with a unique name; return its name."""
        name = f"mlark_test_{uuid.uuid4().hex[:16]}"
        self._admin_conn().execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected to it."""
        self._admin_conn().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    missing = [b for b in PG_BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(f"PostgreSQL server binaries not on PATH: {', '.join(missing)}")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'mlark[postgres]')")

    root = Path(tempfile.mkdtemp(prefix="mlark-pg-"))
    root.chmod(0o755)  # the unprivileged user must reach the folders below
    run_as: list[str] = []
    owned = [root / "data", root / "sockets", root / "log"]
    for folder in owned:
        folder.mkdir(mode=0o700)
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser is missing: cannot start PostgreSQL")
        user = _ensure_system_user(PG_SYSTEM_USER)
        for folder in owned:
            os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", PG_SYSTEM_USER, "--"]

    cluster = PostgresCluster(root, run_as)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a fresh, empty database: a SQLite file, or a new database on ``pg_cluster``.

    The SQLite file lives in its own temporary folder (not in ``tmp_path``), so a
    test can use ``tmp_path`` as a project folder without finding it there.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'meta.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)
