"""The model registry over HTTP, against real ``mltrail server`` processes on SQLite and
PostgreSQL: every change runs in the server, so its policy holds whatever the client
does; webhooks are sent by the server; ``mltrail models`` works remotely unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import mltrail
from mltrail.entities import Approval, ArtifactVersion, ModelVersion
from mltrail.errors import (
    ArtifactNotFound,
    AuthenticationRequired,
    ConflictError,
    InvalidValueError,
    ModelNotFound,
    PermissionDenied,
    TransitionNotAllowed,
)
from mltrail.registry.webhooks import verify_signature
from mltrail.store import close_all

SIG = {"format": 1, "inputs": {"type": "columns", "columns": [{"name": "x", "type": "int64"}]}}


@dataclass
class Server:
    url: str
    store_uri: str
    objects: Path

    def train(self, tmp_path: Path, accuracy: float, n: int = 1) -> ArtifactVersion:
        """A finished run that logged a model artifact, written into the store and the
        objects the server serves (as a run on a shared store would)."""
        os.environ["MLTRAIL_OBJECTS"] = str(self.objects)
        try:
            data = tmp_path / "data" / "train.csv"
            if not data.exists():
                data.parent.mkdir(parents=True)
                data.write_text("x,y\n1,0\n2,1\n")
                prep = mltrail.init(uri=self.store_uri, project="churn", name="prep")
                prep.log_artifact(data, name="churn-data", type="dataset")
                prep.finish()
            run = mltrail.init(uri=self.store_uri, project="churn", name=f"train-{n}")
            run.use_artifact("churn-data:latest")
            for step in range(3):
                run.log({"val_accuracy": accuracy - 0.1 + step * 0.05}, step=step)
            model_dir = tmp_path / f"model-{n}"
            model_dir.mkdir()
            (model_dir / "model.bin").write_text(f"weights {n} " * 100)
            art = run.log_artifact(
                model_dir, name="churn-model", type="model",
                metadata={"framework": "sklearn", "framework_version": "1.5.0"},
            )  # fmt: skip
            run.finish()
        finally:
            del os.environ["MLTRAIL_OBJECTS"]
        return art


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLTRAIL_USER", "alice")
    monkeypatch.delenv("MLTRAIL_TOKEN", raising=False)
    yield
    close_all()  # the clients' connections, before their servers stop


@pytest.fixture
def server(serve: Callable[..., str], store_uri: str, tmp_path: Path) -> Server:
    objects = tmp_path / "server-objects"
    env = {"MLTRAIL_SIGNING_KEY": str(tmp_path / "server-key.pem")}
    return Server(serve(store_uri, objects=str(objects), env=env), store_uri, objects)


def _version(result: object) -> ModelVersion:
    assert isinstance(result, ModelVersion), result
    return result


# -- the workflow ------------------------------------------------------------------------


def test_register_promote_alias_rollback_history(server: Server, tmp_path: Path) -> None:
    first, second = server.train(tmp_path, 0.95, 1), server.train(tmp_path, 0.97, 2)
    client = mltrail.Client(server.url)
    assert client.store.remote  # type: ignore[attr-defined]
    # the gate runs in the server against the source run's metrics
    gated = client.register_model(
        "churn/churn-model:v0", "churn-xgboost", when="metrics.val_accuracy >= 0.99"
    )
    assert gated is None
    with pytest.raises(ModelNotFound):
        client.get_model("churn-xgboost")
    v1 = _version(client.register_model(
        "churn/churn-model:v0", "churn-xgboost", when="metrics.val_accuracy >= 0.9",
        signature=SIG, metadata={"owner_team": "ml"}, reason="first",
    ))  # fmt: skip
    assert (v1.version, v1.label, v1.stage, v1.run_id) == (1, "1.0.0", "development", first.run_id)
    assert v1.created_by == "alice" and v1.signed
    assert v1.artifact == "churn/churn-model:v0" and v1.artifact_digest == first.digest
    assert v1.metadata["owner_team"] == "ml" and v1.signature == SIG
    v2 = _version(client.register_model(second, "churn-xgboost", bump="major", signature=SIG))
    assert (v2.version, v2.label) == (2, "2.0.0")

    assert _version(client.promote("churn-xgboost@1", "production")).stage == "production"
    after = _version(client.promote("churn-xgboost@2", "production", reason="better"))
    assert after.stage == "production"
    assert client.get_model_version("churn-xgboost@1").stage == "archived"
    assert client.get_model_version("churn-xgboost@production").version == 2
    assert client.get_model_version("churn-xgboost@2.0.0").version == 2
    assert [v.version for v in client.model_versions("churn-xgboost", stage="archived")] == [1]

    assert _version(client.set_model_alias("churn-xgboost", "champion", 1)).aliases == ("champion",)
    client.set_model_alias("churn-xgboost", "champion", "2.0.0")
    assert client.get_model("churn-xgboost").aliases == {"champion": 2}
    back = client.rollback_model("churn-xgboost", alias="champion", reason="regression")
    assert back.version == 1 and client.get_model_version("churn-xgboost@champion").version == 1
    restored = client.rollback_model("churn-xgboost", stage="production")
    assert restored.version == 1 and restored.stage == "production"
    assert client.get_model_version("churn-xgboost@2").stage == "archived"
    client.delete_model_alias("churn-xgboost", "champion")
    assert client.get_model("churn-xgboost").aliases == {}

    history = client.model_history("churn-xgboost")
    assert all(e.actor == "alice" for e in history)
    actions = [(e.action, e.version, e.to_value) for e in history]
    assert actions[0][0] == "model.created"
    assert ("stage.changed", 2, "production") in actions
    assert [e.reason for e in history if e.action == "alias.moved"][-1] == "regression"
    assert history[-1].action == "alias.removed"
    assert [e.id for e in history] == sorted(e.id for e in history)

    client.update_model("churn-xgboost", description="churn classifier", tags={"team": "ml"})
    model = client.get_model("churn-xgboost")
    assert (model.description, model.tags, model.latest_version) == (
        "churn classifier", {"team": "ml"}, 2,
    )  # fmt: skip
    assert [m.name for m in client.list_models()] == ["churn-xgboost"]
    changed = client.update_model_version("churn-xgboost@2", metadata={"notes": "x"})
    assert changed.metadata["notes"] == "x" and changed.metadata["framework"] == "sklearn"
    assert client.validate_model("churn-xgboost@2") == []
    card = client.update_model_card("churn-xgboost@1", "# churn\n\nfine.\n")
    assert client.model_card(card) == "# churn\n\nfine.\n"
    assert client.verify_model("churn-xgboost@1").version == 1
    from_artifact = client.store.models_of_artifact("churn", "churn-model", 0)  # type: ignore[attr-defined]
    assert [m.spec for m in from_artifact] == ["churn-xgboost@1"]  # lineage's last arrow
    down = client.lineage("churn/churn-model:v0", direction="down", depth=1)
    assert "churn-xgboost@1" in {c.id for c in down.children}

    # the server's errors come back as our exceptions
    with pytest.raises(InvalidValueError, match="not a stage"):
        client.promote("churn-xgboost@1", "heaven")
    with pytest.raises(ArtifactNotFound):
        client.register_model("churn/no-such-model:v0", "churn-xgboost")
    with pytest.raises(ConflictError):
        client.rollback_model("churn-xgboost", alias="nobody")
    # an artifact whose files never reached the server's objects cannot be registered
    (tmp_path / "laptop.bin").write_bytes(b"never uploaded")
    os.environ["MLTRAIL_OBJECTS"] = str(tmp_path / "laptop-objects")
    try:
        laptop = mltrail.Client(server.store_uri)
        elsewhere = laptop.put_artifact(tmp_path / "laptop.bin", "laptop-model", "model", "churn")
    finally:
        del os.environ["MLTRAIL_OBJECTS"]
    with pytest.raises(ArtifactNotFound, match="not in the server's object store"):
        client.register_model(f"churn/{elsewhere.spec}", "churn-xgboost")


def test_register_a_remotely_logged_run_and_download(server: Server, tmp_path: Path) -> None:
    run = mltrail.init(uri=server.url, project="churn", name="remote")
    for step in range(3):
        run.log({"val_accuracy": 0.85 + step * 0.04})
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.bin").write_bytes(b"weights " * 1000)
    art = run.log_artifact(model_dir, name="churn-model", type="model")
    run.finish()
    client = mltrail.Client(server.url)
    v = _version(client.register_model(
        art, "churn-xgboost", when="metrics.val_accuracy >= 0.9", input_example={"x": [1, 2, 3]},
    ))  # fmt: skip
    assert (v.run_id, v.artifact_digest) == (run.id, art.digest)
    assert v.input_example == {"x": [1, 2, 3]}
    client.validate_input(v, {"x": [4, 5]})
    check = f"{server.url}/api/v1/models/churn-xgboost/versions/1/validate-input"
    assert httpx.post(check, json={"x": [4, 5]}).status_code == 204
    wrong = httpx.post(check, json={"y": ["a"]})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "input_validation_error"
    path = client.download_model("churn-xgboost@1", tmp_path / "deploy")
    assert (path / "model.bin").read_bytes() == b"weights " * 1000
    # a local folder is uploaded first, then registered by the server
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.bin").write_bytes(b"other weights")
    w = _version(client.register_model(other, "churn-xgboost", project="churn", signature=SIG))
    assert w.version == 2 and w.run_id is None
    assert client.get_artifact(w.artifact).type == "model"
    for objects in (client._objects(), run._objects()):
        objects.close()  # type: ignore[attr-defined]


def test_policy_enforced_by_the_server(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.train(tmp_path, 0.95)
    client = mltrail.Client(server.url)
    v = _version(client.register_model("churn/churn-model:v0", "churn-xgboost", signature=SIG))
    client.set_registry_policy({
        "roles": {"alice": ["admin"], "carol": ["maintainer"], "dave": ["maintainer"]},
        "default_roles": ["writer"],
        "transitions": {"development": ["staging"], "staging": ["production", "archived"],
                        "production": ["archived"], "archived": []},
        "protected": {"stage:production": {"roles": ["maintainer"], "approval": True}},
    }, reason="team rules")  # fmt: skip
    assert client.registry_policy().default_roles == {"writer"}

    monkeypatch.setenv("MLTRAIL_USER", "bob")  # a writer
    with pytest.raises(TransitionNotAllowed):
        client.promote(v, "production")
    client.promote(v, "staging")
    with pytest.raises(PermissionDenied, match="needs one of the roles maintainer"):
        client.promote(v, "production")
    with pytest.raises(PermissionDenied, match="admin"):
        client.set_registry_policy({})
    # a hand-made request cannot skip the check either: the server decides
    raw = httpx.post(
        f"{server.url}/api/v1/models/churn-xgboost/versions/1/stage",
        json={"stage": "production"}, headers={"X-Mltrail-User": "bob"},
    )  # fmt: skip
    assert raw.status_code == 403 and raw.json()["error"]["code"] == PermissionDenied.code

    monkeypatch.setenv("MLTRAIL_USER", "carol")
    request = client.promote(v, "production", reason="ready")
    assert isinstance(request, Approval) and request.status == "pending"
    assert request.requested_by == "carol"
    assert client.get_model_version(v).stage == "staging"  # nothing moved yet
    with pytest.raises(PermissionDenied, match="a second person"):
        client.approve(request.id)
    assert [a.id for a in client.list_approvals("churn-xgboost")] == [request.id]

    monkeypatch.setenv("MLTRAIL_USER", "dave")
    done = client.approve(request.id, reason="looks good")
    assert (done.status, done.decided_by) == ("approved", "dave")
    assert client.get_model_version(v).stage == "production"
    with pytest.raises(ConflictError, match="already approved"):
        client.approve(request.id)
    assert client.list_approvals() == []
    moved = [e for e in client.model_history("churn-xgboost") if e.to_value == "production"]
    assert moved[0].actor == "dave" and moved[0].payload["requested_by"] == "carol"

    monkeypatch.setenv("MLTRAIL_USER", "bob")
    report = client.apply_retention(archive_versions_older_than_days=0)
    assert report.dry_run and report.archived_versions == []  # v1 is in production


def test_webhook_delivered_by_the_server(server: Server, tmp_path: Path) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    arrived = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if json.loads(body)["action"] == "stage.changed":
                arrived.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        server.train(tmp_path, 0.95)
        client = mltrail.Client(server.url)
        v = _version(client.register_model("churn/churn-model:v0", "churn-xgboost"))
        hook, secret = client.create_webhook(
            f"http://127.0.0.1:{receiver.server_address[1]}/hook", ["stage.changed"],
            model="churn-xgboost",
        )  # fmt: skip
        assert len(secret) >= 32 and [h.id for h in client.list_webhooks()] == [hook.id]
        assert client.get_webhook(hook.id).url.endswith("/hook")
        client.promote(v, "staging", reason="canary")
        assert arrived.wait(30), "the server did not deliver the webhook"
        headers, body = received[-1]
        assert verify_signature(secret, headers["X-Mltrail-Signature"], body)
        event = json.loads(body)
        assert (event["action"], event["model"], event["to"], event["actor"]) == (
            "stage.changed", "churn-xgboost", "staging", "alice",
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while client.webhook_deliveries(hook.id)[0].status != "delivered":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.deliver_webhooks() == 0  # nothing left due
        assert client.delete_webhook(hook.id).active is False
        assert client.list_webhooks() == []
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_models_ls_through_the_cli(server: Server, tmp_path: Path) -> None:
    server.train(tmp_path, 0.95)
    client = mltrail.Client(server.url)
    v = client.register_model("churn/churn-model:v0", "churn-xgboost", signature=SIG)
    client.promote(_version(v), "staging")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLTRAIL_")}
    env.update(MLTRAIL_TRACKING_URI=server.url, MLTRAIL_USER="erin")
    out = subprocess.run(
        [sys.executable, "-m", "mltrail", "models", "ls", "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "churn-xgboost" in out.stdout and "staging" in out.stdout
    assert not (tmp_path / ".mltrail" / "mltrail.db").exists()  # nothing local was used
    promoted = subprocess.run(
        [sys.executable, "-m", "mltrail", "models", "promote", "churn-xgboost@1", "production"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    last = client.model_history("churn-xgboost")[-1]
    assert (last.to_value, last.actor) == ("production", "erin")


# -- access ------------------------------------------------------------------------------


def test_token_roles_reach_the_policy_with_auth(
    serve: Callable[..., str],
    store_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mltrail.server.tokens import issue_token
    from mltrail.store import open_store

    store: Any = open_store(store_uri)
    tokens = {}
    for user, role in (("ada", "admin"), ("mona", "maintainer"), ("wendy", "writer"),
                       ("rita", "reader")):  # fmt: skip
        store.create_user(user, roles={"*": role})
        tokens[user], _ = issue_token(store, user, "test")
    objects = tmp_path / "server-objects"
    env = {"MLTRAIL_SIGNING_KEY": str(tmp_path / "server-key.pem")}
    server = Server(serve(store_uri, objects=str(objects), auth=True, env=env), store_uri, objects)
    server.train(tmp_path, 0.95)
    api = f"{server.url}/api/v1"

    def as_user(user: str | None) -> mltrail.Client:
        close_all()  # a client per user: the token is read when the store opens
        if user is None:
            monkeypatch.delenv("MLTRAIL_TOKEN", raising=False)
        else:
            monkeypatch.setenv("MLTRAIL_TOKEN", tokens[user])
        return mltrail.Client(server.url)

    with pytest.raises(AuthenticationRequired):
        as_user(None).list_models()
    with pytest.raises(PermissionDenied, match="needs the writer role"):
        as_user("rita").create_model("churn-xgboost")
    # the policy's default roles would make anyone a maintainer; the token's role rules
    wendy = as_user("wendy")
    v = _version(wendy.register_model("churn/churn-model:v0", "churn-xgboost", signature=SIG))
    assert v.created_by == "wendy"
    wendy.promote(v, "staging")
    with pytest.raises(PermissionDenied, match="needs one of the roles maintainer"):
        wendy.promote(v, "production")
    spoofed = httpx.post(
        f"{api}/models/churn-xgboost/versions/1/stage", json={"stage": "production"},
        headers={"Authorization": f"Bearer {tokens['wendy']}", "X-Mltrail-User": "ada"},
    )  # fmt: skip
    assert spoofed.status_code == 403  # the token names the caller, not the header
    with pytest.raises(PermissionDenied, match="maintainer"):
        wendy.create_webhook("http://127.0.0.1:9/hook")

    mona = as_user("mona")
    assert _version(mona.promote(v, "production")).stage == "production"
    assert mona.model_history("churn-xgboost")[-1].actor == "mona"
    with pytest.raises(PermissionDenied, match="admin"):
        mona.set_registry_policy({"default_roles": ["writer"]})
    hook, _ = mona.create_webhook("http://127.0.0.1:9/hook", ["stage.changed"])
    assert hook.created_by == "mona"

    ada = as_user("ada")
    policy = ada.set_registry_policy({"default_roles": ["writer"]}, reason="team")
    assert policy.default_roles == {"writer"}
    assert as_user("rita").get_model_version("churn-xgboost@production").version == 1
