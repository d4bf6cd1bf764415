"""Shared fixtures: a store per backend (SQLite file, real PostgreSQL), run factories.

PostgreSQL: one throwaway cluster per test session (per xdist worker), the schema
migrated once into a template database, and a fresh database cloned from it per test.
A missing PostgreSQL is a failure, never a skip.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import mltrail
from mltrail.store import close_all

PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg(*cmd: str) -> None:
    argv = [str(PGBIN / cmd[0]), *cmd[1:]]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@contextmanager
def restart_pg(pg: dict[str, Any]) -> Iterator[None]:
    """Stop the session's PostgreSQL server inside the block, start it again after."""
    _pg("pg_ctl", "-D", pg["data"], "-m", "fast", "-w", "stop")
    try:
        yield
    finally:
        _pg("pg_ctl", "-D", pg["data"], "-l", pg["log"], "-w", "-t", "30", "-o", pg["opts"],
            "start")  # fmt: skip


@pytest.fixture(scope="session")
def pg_server() -> Iterator[dict[str, Any]]:
    """A throwaway PostgreSQL cluster on loopback."""
    if not (PGBIN / "initdb").exists():
        pytest.fail(
            f"PostgreSQL server binaries not found in {PGBIN}: run .ci/services.sh "
            "(apt-get install -y postgresql) or set PGBIN"
        )
    base = Path(tempfile.mkdtemp(prefix="mltpg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", _free_port()
    _pg(
        "initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
        "--locale=C.UTF-8", "--no-sync", "--no-instructions",
    )  # fmt: skip
    opts = (
        f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=300"
    )
    _pg("pg_ctl", "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "30", "-o", opts,
        "start")  # fmt: skip
    conninfo = {"host": "127.0.0.1", "port": port, "user": "postgres", "dbname": "postgres"}
    try:
        yield {**conninfo, "data": str(data), "log": str(base / "server.log"), "opts": opts}
    finally:
        _pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _admin(pg: dict[str, Any]) -> Any:
    import psycopg

    keys = ("host", "port", "user", "dbname")
    return psycopg.connect(
        psycopg.conninfo.make_conninfo(**{k: pg[k] for k in keys}), autocommit=True
    )


@pytest.fixture(scope="session")
def pg_template(pg_server: dict[str, Any]) -> str:
    """A database migrated to head once; per-test databases are cloned from it."""
    from mltrail.store.sql.store import SqlStore

    name = "mltrail_template"
    with _admin(pg_server) as c:
        c.execute(f"CREATE DATABASE {name}")
    store = SqlStore(f"postgresql://postgres@127.0.0.1:{pg_server['port']}/{name}")
    store.close()
    with _admin(pg_server) as c:
        c.execute(f"ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
    return name


@pytest.fixture
def pg_url_factory(pg_server: dict[str, Any], pg_template: str) -> Iterator[Callable[..., str]]:
    """Make fresh PostgreSQL databases: migrated (default) or empty."""
    made: list[str] = []

    def make(*, empty: bool = False) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        template = "template0" if empty else pg_template
        with _admin(pg_server) as c:
            c.execute(f'CREATE DATABASE "{name}" TEMPLATE {template} STRATEGY FILE_COPY')
        made.append(name)
        return f"postgresql://postgres@127.0.0.1:{pg_server['port']}/{name}"

    yield make
    from mltrail.client import fluent

    for run in list(fluent._active):  # before their database goes away
        run.finish()
    close_all()
    with _admin(pg_server) as c:
        for name in made:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs in its own working directory with no mltrail settings."""
    for var in list(os.environ):
        if var.startswith("MLTRAIL_"):
            monkeypatch.delenv(var)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLTRAIL_FLUSH_INTERVAL", "0.05")
    yield
    from mltrail.client import fluent

    for run in list(fluent._active):
        run.finish()
    close_all()
    gc.collect()  # leaked connections/files show up in the test that leaked them
    # What survived is long-lived (modules, caches): later collections skip it. Once a
    # worker has imported torch, transformers and lightning, a full collection costs
    # 0.25 s, which every later test would pay again.
    gc.freeze()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_uri(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty tracking store of each backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'mltrail.db'}"
    factory: Callable[..., str] = request.getfixturevalue("pg_url_factory")
    return factory()


@pytest.fixture
def make_run(store_uri: str) -> Callable[..., mltrail.Run]:
    """``make_run(**init_kwargs)``: a run in the test's store (finished at teardown)."""

    def make(**kwargs: Any) -> mltrail.Run:
        kwargs.setdefault("project", "test")
        return mltrail.init(uri=store_uri, **kwargs)

    return make


@pytest.fixture
def client(store_uri: str) -> mltrail.Client:
    return mltrail.Client(store_uri)
