"""Tokens, principals, bootstrap, registry roles and the audit log.

Token resolution and bootstrap run on a real store of each backend; the audit log and
``whoami`` through a real ``mltrail server`` (with and without ``--auth``).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mltrail.errors import PermissionDenied
from mltrail.registry.policy import Policy
from mltrail.server import tokens
from mltrail.server.auth import Principal
from mltrail.store import open_store
from mltrail.store.sql.store import SqlStore
from tests.server.test_routes_access import bearer, bootstrap_token

Serve = Callable[..., str]


@pytest.fixture
def store(store_uri: str) -> SqlStore:
    opened = open_store(store_uri)
    assert isinstance(opened, SqlStore)
    tokens.forget_tokens()
    return opened


# -- tokens --------------------------------------------------------------------------------


def test_a_token_resolves_to_its_user_and_roles(store: SqlStore) -> None:
    store.create_user("ann", roles={"vision": "writer", "*": "reader"})
    token, record = tokens.issue_token(store, "ann", "laptop")
    assert token.startswith("mlt_") and len(token) >= 40
    assert record.prefix == token[:12] and record.user == "ann"
    principal = tokens.principal_for_token(store, token)
    assert principal == Principal("ann", {"vision": "writer", "*": "reader"}, authenticated=True)
    assert principal.allows("writer", "vision") and not principal.allows("writer", "nlp")
    assert principal.allows("reader", "nlp") and not principal.is_admin()
    assert tokens.principal_for_token(store, token + "x") is None
    assert tokens.principal_for_token(store, "not-even-ours") is None


def test_last_use_is_recorded_but_throttled(store: SqlStore) -> None:
    store.create_user("ben")
    token, _ = tokens.issue_token(store, "ben", "ci")
    before = time.time()
    tokens.principal_for_token(store, token)
    (first,) = store.list_tokens("ben")
    assert first.last_used_at is not None and first.last_used_at >= before - 1
    tokens.forget_tokens()  # a cache miss again: the store is asked, but not written
    tokens.principal_for_token(store, token)
    (second,) = store.list_tokens("ben")
    assert second.last_used_at == first.last_used_at


def test_revocation_is_seen_after_the_cache(store: SqlStore) -> None:
    store.create_user("cat")
    token, record = tokens.issue_token(store, "cat", "x")
    assert tokens.principal_for_token(store, token) is not None
    store.revoke_token(record.id)
    # within CACHE_TTL this process may still trust it; once the cache is gone, never
    tokens.forget_tokens()
    assert tokens.principal_for_token(store, token) is None


def test_disabled_users_and_expired_tokens_are_refused(store: SqlStore) -> None:
    store.create_user("dan", roles={"*": "writer"})
    token, _ = tokens.issue_token(store, "dan", "x")
    expired, _ = tokens.issue_token(store, "dan", "old", expires_in=-1)
    assert tokens.principal_for_token(store, expired) is None
    store.set_user_disabled("dan", True)
    assert tokens.principal_for_token(store, token) is None
    store.set_user_disabled("dan", False)
    tokens.forget_tokens()
    assert tokens.principal_for_token(store, token) is not None


def test_only_a_hash_is_stored(store: SqlStore) -> None:
    store.create_user("eli")
    token, _ = tokens.issue_token(store, "eli", "x")
    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT * FROM api_tokens"))]
    assert len(rows) == 1 and all(token not in str(v) for v in rows[0])
    assert hashlib.sha256(token.encode()).hexdigest() in rows[0]


def test_bootstrap_makes_one_admin(store: SqlStore) -> None:
    first = tokens.bootstrap_admin(store)
    assert first is not None
    principal = tokens.principal_for_token(store, first)
    assert principal is not None and principal.name == "admin" and principal.is_admin()
    (record,) = store.list_tokens("admin")
    assert record.expires_at is not None and record.expires_at - time.time() < 86401
    assert tokens.bootstrap_admin(store) is None  # an admin exists: nothing printed
    store.set_user_disabled("admin", True)
    again = tokens.bootstrap_admin(store)  # no enabled admin: the user is enabled again
    assert again is not None and store.get_user("admin").disabled is False


# -- registry roles: the server's roles are authoritative -------------------------------


def test_registry_roles_come_from_the_global_role() -> None:
    writer = Principal("wes", {"*": "writer", "proj": "admin"}, authenticated=True)
    assert writer.registry_roles() == frozenset({"reader", "writer"})
    assert Principal("p", {"proj": "admin"}, authenticated=True).registry_roles() == frozenset()
    assert Principal("anyone").registry_roles() is None  # auth off: the policy decides


def test_given_roles_override_the_policys_own_table() -> None:
    # the policy names wes an admin and makes everyone a maintainer by default ...
    policy = Policy.from_document({"roles": {"wes": ["admin"]}, "default_roles": ["maintainer"]})
    assert "admin" in policy.actor("wes").roles
    # ... but with auth on the server's roles count: a global writer may not promote
    roles = Principal("wes", {"*": "writer"}, authenticated=True).registry_roles()
    actor = policy.actor("wes", roles)
    with pytest.raises(PermissionDenied, match="production"):
        policy.require(actor, "stage", "production", "move m to 'production'")
    assert not policy.can_edit_policy(actor)
    maintainer = Principal("mo", {"*": "maintainer"}, authenticated=True)
    assert policy.require(policy.actor("mo", maintainer.registry_roles()), "stage",
                          "production", "promote") is not None  # fmt: skip


# -- the audit log, through a real server --------------------------------------------------


def _audit(url: str, headers: dict[str, str] | None = None, **params: object) -> list[dict]:
    r = httpx.get(url + "/api/v1/audit", headers=headers or {}, params=params, timeout=30)
    assert r.status_code == 200, r.text
    entries: list[dict] = r.json()
    return entries


def test_every_write_is_audited_with_auth_off(server_url: str) -> None:
    request_id = uuid.uuid4().hex
    r = httpx.post(
        server_url + "/api/v1/projects", json={"project": "audited"},
        headers={"X-Mltrail-User": "carl", "X-Request-Id": request_id},
    )  # fmt: skip
    assert r.status_code == 200 and r.headers["x-request-id"] == request_id
    bad = httpx.post(server_url + "/api/v1/projects", json={})
    assert bad.status_code == 400 and len(bad.headers["x-request-id"]) == 32
    httpx.get(server_url + "/api/v1/projects")  # a read: not audited
    entries = _audit(server_url)
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/api/v1/projects", 400),
        ("POST", "/api/v1/projects", 200),
    ]
    assert entries[1]["actor"] == "carl" and entries[1]["request_id"] == request_id
    assert entries[0]["request_id"] == bad.headers["x-request-id"]
    assert _audit(server_url, actor="carl")[0]["request_id"] == request_id


def test_the_audit_log_is_append_only(store: SqlStore) -> None:
    store.append_audit(
        [
            {
                "at": 1.0,
                "actor": "x",
                "method": "POST",
                "path": "/api/v1/a",
                "status": 200,
                "project": None,
                "request_id": "r1",
            }
        ]
    )
    for sql in ("UPDATE audit_log SET actor = 'y'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(sql))
    assert [e.actor for e in store.list_audit()] == ["x"]


def test_audit_with_auth_names_the_user_and_project(
    serve: Serve, store_uri: str, tmp_path: Path
) -> None:
    url = serve(store_uri, objects=str(tmp_path / "objects"), auth=True)
    log = next(tmp_path.glob("server-*.log"))
    admin = bearer(bootstrap_token(log))
    r = httpx.post(url + "/api/v1/users", json={"name": "fay", "roles": {"p1": "writer"}},
                   headers=admin)  # fmt: skip
    assert r.status_code == 201
    fay = httpx.post(url + "/api/v1/users/fay/tokens", json={}, headers=admin).json()["token"]
    assert httpx.post(url + "/api/v1/projects", json={"project": "p1"},
                      headers=bearer(fay)).status_code == 200  # fmt: skip
    assert httpx.post(url + "/api/v1/projects", json={"project": "p2"},
                      headers=bearer(fay)).status_code == 403  # fmt: skip
    assert httpx.post(url + "/api/v1/projects", json={"project": "p3"}).status_code == 401
    # the claimed name is ignored with auth on
    httpx.post(url + "/api/v1/projects", json={"project": "p1"},
               headers={**bearer(fay), "X-Mltrail-User": "mallory"})  # fmt: skip
    entries = _audit(url, admin)
    seen = [
        (e["actor"], e["project"], e["status"]) for e in entries if e["path"].endswith("/projects")
    ]
    assert seen == [("fay", "p1", 200), (None, None, 401), ("fay", "p2", 403), ("fay", "p1", 200)]
    assert httpx.get(url + "/api/v1/audit", headers=bearer(fay)).status_code == 403


def test_audit_pages_are_capped(serve: Serve, tmp_path: Path) -> None:
    url = serve(f"sqlite:///{tmp_path / 'm.db'}", objects=str(tmp_path / "o"),
                env={"MLTRAIL_SERVER_MAX_PAGE": "3"})  # fmt: skip
    for i in range(5):
        httpx.post(url + "/api/v1/projects", json={"project": f"p{i}"})
    page = _audit(url, limit=100)
    assert len(page) == 3
    older = _audit(url, limit=100, before_id=page[-1]["id"])
    assert [e["id"] for e in older] == [page[-1]["id"] - 1, page[-1]["id"] - 2]


def test_whoami_without_auth(server_url: str) -> None:
    me = httpx.get(server_url + "/api/v1/whoami", headers={"X-Mltrail-User": "gil"}).json()
    assert me == {"name": "gil", "roles": {}, "authenticated": False, "auth": False}
    r = httpx.post(server_url + "/api/v1/tokens", json={})
    assert r.status_code == 401 and "--auth" in r.json()["error"]["hint"]


def test_the_remote_store_sends_the_saved_token(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrail.errors import AuthenticationRequired, PermissionDenied
    from mltrail.store.http import HttpStore
    from mltrail.store.http.credentials import save_token

    url = serve(f"sqlite:///{tmp_path / 'm.db'}", objects=str(tmp_path / "o"), auth=True)
    admin = bearer(bootstrap_token(next(tmp_path.glob("server-*.log"))))
    body = {"name": "hal", "roles": {"mine": "writer"}}
    assert httpx.post(url + "/api/v1/users", json=body, headers=admin).status_code == 201
    hal = httpx.post(url + "/api/v1/users/hal/tokens", json={}, headers=admin).json()["token"]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    anonymous = HttpStore(url)
    try:
        with pytest.raises(AuthenticationRequired, match="needs an API token"):
            anonymous.get_or_create_project("mine")
    finally:
        anonymous.close()
    save_token(url, hal, user="hal")
    store = HttpStore(url)
    try:
        assert store.get_or_create_project("mine").name == "mine"
        with pytest.raises(PermissionDenied, match="theirs"):
            store.get_or_create_project("theirs")
    finally:
        store.close()
