"""Every API route is guarded: a parametrised test over the route table.

The routes are read from ``create_app(...)`` when the tests are collected, so a route
added later is checked without anyone editing this file. Against a real
``mltrail server --auth`` (SQLite and PostgreSQL): an anonymous request to every route
is refused with 401, and a global reader's request to every route that needs more is
refused with 403, with dummy path values (the access check runs before the handler
and must not reveal whether an id exists).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mltrail.server.app import create_app
from mltrail.server.auth import ROLES, Access
from mltrail.server.config import ServerConfig
from tests.server.conftest import _free_port, _stop

TOKEN_RE = re.compile(r"mlt_[A-Za-z0-9_-]{20,}")


# -- the route table, read at collection time ------------------------------------------


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    accesses: tuple[Access, ...]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    def url(self) -> str:
        """The path with dummy values for its parameters."""

        def fill(m: re.Match[str]) -> str:
            return "1" if m.group(2) == "int" else "dummy-" + m.group(1)

        return re.sub(r"\{(\w+)(?::(\w+))?\}", fill, self.path)


def _flatten(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub
        yield from _flatten(sub)


def api_routes() -> list[RouteInfo]:
    """Every (method, path) under /api of the app, with its Access dependencies."""
    app = create_app(ServerConfig(store_uri="sqlite:////nonexistent/x.db", objects_uri="/x"))
    try:  # FastAPI >= 0.130 keeps included routers whole; this walks into them
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:
        routes = list(app.routes)
    found = []
    for route in routes:
        path = getattr(route, "path", "")
        dependant = getattr(route, "dependant", None)
        if not path.startswith("/api/") or dependant is None:
            continue
        accesses = tuple(d.call for d in _flatten(dependant) if isinstance(d.call, Access))
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append(RouteInfo(method, path, accesses))
    return found


ROUTES = api_routes()
ABOVE_READER = [r for r in ROUTES if r.accesses and r.accesses[0].role in ROLES[1:]]


def test_the_route_table_is_read() -> None:
    paths = {r.path for r in ROUTES}
    assert "/api/v1/whoami" in paths and "/api/v1/users" in paths
    assert any(p.startswith("/api/2.0/mlflow/") for p in paths)
    assert len(ABOVE_READER) > 10


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_every_route_declares_exactly_one_access(route: RouteInfo) -> None:
    assert len(route.accesses) == 1, f"{route.id} has {len(route.accesses)} Access dependencies"


# -- a real server with --auth, one per backend for the whole module --------------------


@contextmanager
def launch(
    store_uri: str, objects: str, log: Path, *, auth: bool, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``mltrail server`` in a subprocess for a block (module-scoped fixtures use it)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "mltrail", "server", "--store", store_uri,
           "--objects", objects, "--port", str(port)]  # fmt: skip
    if auth:
        cmd.append("--auth")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLTRAIL_")}
    full_env.update(env or {})
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mltrail server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mltrail server not ready after 60 s:\n{log.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        _stop(proc)


def bootstrap_token(log: Path) -> str:
    """The admin token ``mltrail server --auth`` printed at start."""
    found = TOKEN_RE.search(log.read_text())
    assert found, f"no bootstrap token in the server's output:\n{log.read_text()}"
    return found.group(0)


def error_code(response: httpx.Response) -> str:
    """The error's code: ours (``{"error": {"code"}}``) or MLflow's (``{"error_code"}``)."""
    body = response.json()
    return str(body["error"]["code"] if "error" in body else body["error_code"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class AuthServer:
    url: str
    store_uri: str
    admin: str  # tokens
    reader: str
    http: httpx.Client

    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = bearer(token) if token else {}
        return self.http.request(method, self.url + path, headers=headers, **kw)

    def new_user(self, name: str, roles: dict[str, str]) -> str:
        """A user with ``roles``; returns a token of theirs."""
        r = self.api("POST", "/api/v1/users", self.admin, json={"name": name, "roles": roles})
        assert r.status_code == 201, r.text
        r = self.api("POST", f"/api/v1/users/{name}/tokens", self.admin, json={"name": "t"})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def _pg_database(request: pytest.FixtureRequest) -> str:
    from tests.conftest import _admin

    pg = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("pg_template")
    name = "auth_" + uuid.uuid4().hex[:12]
    with _admin(pg) as c:
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE {template} STRATEGY FILE_COPY')
    return f"postgresql://postgres@127.0.0.1:{pg['port']}/{name}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def auth_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthServer]:
    base = tmp_path_factory.mktemp("auth-server")
    if request.param == "sqlite":
        store_uri = f"sqlite:///{base / 'mltrail.db'}"
    else:
        store_uri = _pg_database(request)
    log = base / "server.log"
    with (
        launch(store_uri, str(base / "objects"), log, auth=True) as url,
        httpx.Client(timeout=30) as http,
    ):
        admin = bootstrap_token(log)
        server = AuthServer(url, store_uri, admin, "", http)
        server.reader = server.new_user("reader", {"*": "reader"})
        yield server


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_anonymous_is_refused_everywhere(auth_server: AuthServer, route: RouteInfo) -> None:
    body = {} if route.method in ("POST", "PUT", "PATCH") else None
    r = auth_server.api(route.method, route.url(), json=body)
    assert r.status_code == 401, f"{route.id}: {r.status_code} {r.text[:300]}"
    assert error_code(r) in ("authentication_required", "UNAUTHENTICATED")


@pytest.mark.parametrize("route", ABOVE_READER, ids=lambda r: r.id)
def test_a_reader_may_not_write(auth_server: AuthServer, route: RouteInfo) -> None:
    body = {} if route.method in ("POST", "PUT", "PATCH") else None
    r = auth_server.api(route.method, route.url(), auth_server.reader, json=body)
    assert r.status_code == 403, f"{route.id}: {r.status_code} {r.text[:300]}"
    assert error_code(r) in ("permission_denied", "PERMISSION_DENIED")


def test_a_reader_reads_and_a_bad_token_is_refused(auth_server: AuthServer) -> None:
    assert auth_server.api("GET", "/api/v1/projects", auth_server.reader).status_code == 200
    made_up = "mlt_" + "x" * 43
    assert auth_server.api("GET", "/api/v1/projects", made_up).status_code == 401
    r = httpx.get(auth_server.url + "/api/v1/projects", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


# -- projects, revocation, expiry, storage ------------------------------------------------


def _new_run(server: AuthServer, token: str, project: str) -> str:
    run_id = uuid.uuid4().hex
    body = {"run_id": run_id, "project": project, "started_at": time.time()}
    r = server.api("POST", "/api/v1/runs", token, json=body)
    assert r.status_code == 201, r.text
    return run_id


def test_a_writer_of_one_project_cannot_write_another(auth_server: AuthServer) -> None:
    alice = auth_server.new_user("alice", {"proj-a": "writer"})
    run_a = _new_run(auth_server, alice, "proj-a")
    run_b = _new_run(auth_server, auth_server.admin, "proj-b")
    tags = {"tags": {"k": "v"}}
    ok = auth_server.api("POST", f"/api/v1/runs/{run_a}/tags", alice, json=tags)
    assert ok.status_code < 300, ok.text
    denied = auth_server.api("POST", f"/api/v1/runs/{run_b}/tags", alice, json=tags)
    assert denied.status_code == 403 and "proj-b" in denied.json()["error"]["message"]
    new_b = {"run_id": uuid.uuid4().hex, "project": "proj-b", "started_at": time.time()}
    assert auth_server.api("POST", "/api/v1/runs", alice, json=new_b).status_code == 403
    # reading project B is refused too, and a missing run looks the same as B's run
    assert auth_server.api("GET", f"/api/v1/runs/{run_b}", alice).status_code == 403
    assert auth_server.api("GET", "/api/v1/runs/no-such-run", alice).status_code == 403
    assert auth_server.api("GET", f"/api/v1/runs/{run_a}", alice).status_code == 200
    # a global admin learns that a run is missing
    assert auth_server.api("GET", "/api/v1/runs/no-such-run", auth_server.admin).status_code == 404


def test_a_revoked_token_is_refused(auth_server: AuthServer) -> None:
    first = auth_server.new_user("rita", {"*": "writer"})
    r = auth_server.api("POST", "/api/v1/tokens", first, json={"name": "laptop"})
    assert r.status_code == 201
    second, record = r.json()["token"], r.json()["record"]
    assert auth_server.api("GET", "/api/v1/whoami", second).json()["name"] == "rita"
    revoked = auth_server.api("DELETE", f"/api/v1/tokens/{record['id']}", first)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert auth_server.api("GET", "/api/v1/whoami", second).status_code == 401
    assert auth_server.api("GET", "/api/v1/whoami", first).status_code == 200
    # someone else's token: not found for a non-admin (no leak), revocable by an admin
    other = auth_server.api("POST", "/api/v1/tokens", auth_server.reader, json={}).json()
    assert (
        auth_server.api("DELETE", f"/api/v1/tokens/{other['record']['id']}", first).status_code
        == 404
    )
    assert auth_server.api("GET", "/api/v1/whoami", other["token"]).status_code == 200


def test_revocation_elsewhere_takes_effect_within_the_cache_ttl(auth_server: AuthServer) -> None:
    """A token revoked straight in the database (as another replica would) is refused
    within CACHE_TTL seconds."""
    from mltrail.server.tokens import CACHE_TTL
    from mltrail.store.sql.store import SqlStore

    token = auth_server.new_user("remy", {"*": "reader"})
    assert auth_server.api("GET", "/api/v1/whoami", token).status_code == 200
    store = SqlStore(auth_server.store_uri)
    try:
        (record,) = store.list_tokens("remy")
        store.revoke_token(record.id)
    finally:
        store.close()
    deadline = time.monotonic() + CACHE_TTL + 2
    while auth_server.api("GET", "/api/v1/whoami", token).status_code == 200:
        assert time.monotonic() < deadline, "revoked token still accepted after the cache TTL"
        time.sleep(0.2)


def test_an_expired_token_is_refused(auth_server: AuthServer) -> None:
    from mltrail.server.tokens import issue_token
    from mltrail.store.sql.store import SqlStore

    auth_server.new_user("eve", {"*": "reader"})
    short = auth_server.api(
        "POST", "/api/v1/users/eve/tokens", auth_server.admin,
        json={"name": "short", "expires_in_days": 1.5 / 86400},
    )  # fmt: skip
    assert short.status_code == 201
    token = short.json()["token"]
    assert auth_server.api("GET", "/api/v1/whoami", token).status_code == 200  # now cached
    time.sleep(1.6)
    assert auth_server.api("GET", "/api/v1/whoami", token).status_code == 401  # cache obeys expiry
    store = SqlStore(auth_server.store_uri)
    try:
        old, _ = issue_token(store, "eve", "old", expires_in=-60)
    finally:
        store.close()
    assert auth_server.api("GET", "/api/v1/whoami", old).status_code == 401


def test_tokens_are_not_stored_in_clear(auth_server: AuthServer) -> None:
    token = auth_server.new_user("stan", {"*": "reader"})
    from mltrail.store.sql.store import SqlStore

    store = SqlStore(auth_server.store_uri)
    try:
        with store.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(text("SELECT * FROM api_tokens"))]
            hashes = {r[0] for r in conn.execute(text("SELECT token_hash FROM api_tokens"))}
    finally:
        store.close()
    assert rows
    assert not any(token in str(value) for row in rows for value in row)
    assert not any(auth_server.admin in str(value) for row in rows for value in row)
    assert hashlib.sha256(token.encode()).hexdigest() in hashes


def test_whoami_needs_no_role(auth_server: AuthServer) -> None:
    nobody = auth_server.new_user("nobody", {})
    me = auth_server.api("GET", "/api/v1/whoami", nobody).json()
    assert me == {"name": "nobody", "roles": {}, "authenticated": True, "auth": True}
    assert auth_server.api("GET", "/api/v1/projects", nobody).status_code == 403
