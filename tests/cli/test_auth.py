"""``mltrail users/tokens/login/logout/audit`` against the database and a real server."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mltrail.cli import app
from mltrail.store.http.credentials import credentials_path, token_for
from tests.cli.conftest import Invoke, RunMain
from tests.cli.helpers import PLAIN_ENV, ok
from tests.server.conftest import serve  # noqa: F401 - the fixture

TOKEN_RE = re.compile(r"mlt_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("MLTRAIL_TOKEN", raising=False)
    return home


@pytest.fixture
def auth_server(
    serve: Callable[..., str],  # noqa: F811 - the fixture imported above
    store_uri: str,
    cli: Invoke,
    tmp_path: Path,
) -> tuple[str, str]:
    """A server with --auth whose first admin was made with the CLI on its database;
    returns (url, admin token)."""
    out = ok(cli("users", "add", "root", "--role", "admin", "--store", store_uri, uri=False))
    found = TOKEN_RE.search(out)
    assert found and "root" in out
    url = serve(store_uri, objects=str(tmp_path / "objects"), auth=True)
    return url, found.group(0)


def test_login_saves_the_token_privately(
    auth_server: tuple[str, str], cli: Invoke, config_home: Path
) -> None:
    url, token = auth_server
    out = ok(cli("login", url, "--token", token, uri=False))
    assert "logged in" in out and "root" in out
    path = credentials_path()
    assert path == config_home / "mltrail" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert token_for(url) == token and token_for(url + "/") == token
    assert token_for("http://elsewhere:5000") is None
    os.environ["MLTRAIL_TOKEN"] = "mlt_from_env"
    try:
        assert token_for(url) == "mlt_from_env"  # the variable wins
    finally:
        del os.environ["MLTRAIL_TOKEN"]
    ok(cli("logout", url, uri=False))
    assert token_for(url) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_file_stays_private_whatever_the_umask(
    auth_server: tuple[str, str], cli: Invoke, config_home: Path
) -> None:
    url, token = auth_server
    old = os.umask(0)
    try:
        ok(cli("login", url, "--token", token, uri=False))
    finally:
        os.umask(old)
    path = credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_login_asks_for_the_token_and_checks_it(
    auth_server: tuple[str, str], runner: CliRunner, run_main: RunMain, config_home: Path
) -> None:
    url, token = auth_server
    result = runner.invoke(app, ["login", url], input=token + "\n", env=PLAIN_ENV)
    assert result.exit_code == 0, result.output
    assert token not in result.stdout  # the prompt hides it
    assert token_for(url) == token
    code, _, err = run_main("login", url, "--token", "mlt_" + "x" * 43)
    assert code == 9 and "not valid" in err
    assert token_for(url) == token  # a refused token replaces nothing


def test_users_and_tokens_through_the_server(
    auth_server: tuple[str, str], cli: Invoke, run_main: RunMain, config_home: Path
) -> None:
    url, token = auth_server
    ok(cli("login", url, "--token", token, uri=False))
    out = ok(cli("users", "add", "bob", "--role", "writer", "-p", "vision", "--store", url,
                 uri=False))  # fmt: skip
    bob = TOKEN_RE.search(out)
    assert bob and "vision:writer" in out
    out = ok(cli("users", "grant", "bob", "reader", "--store", url, uri=False))
    assert "*:reader" in out and "vision:writer" in out
    out = ok(cli("users", "ls", "--json", "--store", url, uri=False))
    assert '"bob"' in out and '"root"' in out
    out = ok(cli("tokens", "create", "--name", "ci", "--store", url, uri=False))
    ci = TOKEN_RE.search(out)
    assert ci
    listing = ok(cli("tokens", "ls", "--store", url, uri=False))
    assert "ci" in listing and ci.group(0) not in listing  # never the token itself
    assert ok(cli("tokens", "ls", "--user", "bob", "--store", url, uri=False)).count("first")
    mine = json.loads(ok(cli("tokens", "ls", "--json", "--store", url, uri=False)))
    (ci_id,) = [t["id"] for t in mine if t["name"] == "ci"]
    ok(cli("tokens", "revoke", str(ci_id), "--store", url, uri=False))
    revoked = json.loads(ok(cli("tokens", "ls", "--json", "--revoked", "--store", url, uri=False)))
    assert [t["revoked_at"] is not None for t in revoked if t["id"] == ci_id] == [True]
    os.environ["MLTRAIL_TOKEN"] = bob.group(0)  # bob is no admin
    try:
        code, _, err = run_main("users", "ls", "--store", url)
    finally:
        del os.environ["MLTRAIL_TOKEN"]
    assert code == 9 and "admin" in err
    out = ok(cli("audit", "--json", "--store", url, uri=False))
    assert "/api/v1/users" in out and '"root"' in out


def test_logout_without_a_saved_token(cli: Invoke, config_home: Path) -> None:
    out = ok(cli("logout", "http://127.0.0.1:9", uri=False))
    assert "no token was saved" in out
