"""``mltrail models webhooks``: add (secret shown once), ls, deliver, deliveries, rm —
against a real HTTP receiver on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import mltrail
from mltrail.registry.webhooks import verify_signature
from tests.cli.conftest import Invoke
from tests.cli.helpers import loads, ok
from tests.registry import conftest as registry_fixtures
from tests.registry.test_webhooks import Receiver, receiver

_registry_env = registry_fixtures._registry_env
__all__ = ["receiver"]


@pytest.fixture(autouse=True)
def _manual(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_WEBHOOK_DISPATCH", "manual")  # `deliver` sends


def test_add_deliver_inspect_and_remove(
    cli: Invoke, client: mltrail.Client, receiver: Receiver
) -> None:
    added = loads(ok(cli("models", "webhooks", "add", receiver.url + "/hook",
                         "--event", "model.*", "--name", "ci", "--json")))  # fmt: skip
    secret = added.pop("secret")
    assert len(secret) >= 32 and added["events"] == ["model.*"]
    listed = ok(cli("models", "webhooks", "ls", "--json"))
    assert secret not in listed and loads(listed)[0]["id"] == added["id"]
    assert "ci" in ok(cli("models", "webhooks", "ls"))

    client.create_model("churn-xgboost")
    assert "1 delivery attempted" in ok(cli("models", "webhooks", "deliver"))
    [request] = receiver.wait_for(1)
    assert request.path == "/hook" and request.action == "model.created"
    header = request.headers["X-Mltrail-Signature"]
    assert verify_signature(secret, header, request.body)
    assert not verify_signature("wrong" * 8, header, request.body)

    log = loads(ok(cli("models", "webhooks", "deliveries", str(added["id"]), "--json")))
    assert [(d["action"], d["status"], d["last_status"]) for d in log] == [
        ("model.created", "delivered", 200)
    ]
    assert "delivered" in ok(cli("models", "webhooks", "deliveries", "--status", "delivered"))
    assert "removed" in ok(cli("models", "webhooks", "rm", str(added["id"])))
    assert loads(ok(cli("models", "webhooks", "ls", "--json"))) == []
    assert len(loads(ok(cli("models", "webhooks", "ls", "--all", "--json")))) == 1
    client.create_model("churn-lightgbm")
    assert "0 deliveries attempted" in ok(cli("models", "webhooks", "deliver"))


def test_bad_url_is_a_clear_error(cli: Invoke) -> None:
    from mltrail.errors import InvalidValueError

    result = cli("models", "webhooks", "add", "ftp://example.org/x")
    assert isinstance(result.exception, InvalidValueError)
    assert "is not an http(s) URL" in str(result.exception)
