"""Webhooks on registry events, on SQLite and PostgreSQL, against a real HTTP receiver
on loopback: signatures, retries with back-off, the delivery log, event and model
filters, deletion, secrets, concurrent dispatchers and background sending."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import mltrail
from mltrail.errors import InvalidValueError, ModelNotFound, PermissionDenied, WebhookNotFound
from mltrail.registry import webhooks as wh
from mltrail.registry.webhooks import (
    BACKOFF,
    deliver_due,
    dispatch_in_background,
    sign,
    stop_dispatchers,
    verify_signature,
)
from mltrail.store.sql.store import SqlStore
from tests.registry.conftest import Train

# -- a receiver on loopback ------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def action(self) -> str:
        return self.headers["X-Mltrail-Event"]


class Receiver:
    """Records every POST; answers 500 to the next ``fail`` ones, 200 after. With
    ``hold`` cleared, a request waits (``arrived`` tells one is there) until it is set."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.fail = 0
        self.delay = 0.0
        self.arrived = threading.Event()
        self.hold = threading.Event()
        self.hold.set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append(Request(self.path, dict(self.headers), body))
                    failing = receiver.fail > 0
                    receiver.fail -= failing
                receiver.arrived.set()
                receiver.hold.wait(30)
                time.sleep(receiver.delay)
                self.send_response(500 if failing else 200)
                reply = b"boom" if failing else b"ok"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def at(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.requests)

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def manual(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only explicit deliver_due() sends: the test moves the outbox clock itself."""
    monkeypatch.setenv("MLTRAIL_WEBHOOK_DISPATCH", "manual")


@pytest.fixture
def dispatchers(client: mltrail.Client) -> Iterator[None]:
    """Background dispatchers end before the test's store goes away."""
    yield
    stop_dispatchers()


def _store(client: mltrail.Client) -> Any:
    return client.store


# -- signing ---------------------------------------------------------------------------


@pytest.mark.usefixtures("manual")
def test_a_delivery_is_signed_with_the_secret_and_nothing_else(
    client: mltrail.Client, receiver: Receiver
) -> None:
    hook, secret = client.create_webhook(receiver.url + "/hook", ["model.created"])
    client.create_model("churn-xgboost")
    assert client.deliver_webhooks() == 1

    [req] = receiver.requests
    [event] = [e for e in client.model_history() if e.action == "model.created"]
    [delivery] = client.webhook_deliveries(hook.id)
    assert req.path == "/hook" and req.action == "model.created"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Mltrail-Delivery"] == str(delivery.id)
    assert req.headers["X-Mltrail-Attempt"] == "1"
    header = req.headers["X-Mltrail-Signature"]
    assert verify_signature(secret, header, req.body)
    assert verify_signature(secret, header, req.body.decode())
    assert not verify_signature(secret + "x", header, req.body)
    assert not verify_signature(secret, header, req.body.replace(b"churn", b"churm"))
    assert not verify_signature(secret, header, req.body, now=time.time() + 301)  # replayed
    assert verify_signature(secret, header, req.body, tolerance=None, now=time.time() + 1e6)

    body = req.json
    assert body["delivery_id"] == delivery.id and body["webhook_id"] == hook.id
    assert (body["event_id"], body["action"], body["model"]) == (
        event.id, "model.created", "churn-xgboost",
    )  # fmt: skip
    assert (body["to"], body["actor"], body["payload"]["scheme"]) == (
        "churn-xgboost", "alice", "semver",
    )  # fmt: skip
    assert datetime.fromisoformat(body["at"]).timestamp() == pytest.approx(event.at)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)
    assert delivery.action == "model.created" and delivery.delivered_at is not None


def test_signature_header_format_and_verification() -> None:
    body = b'{"action":"stage.changed"}'
    header = sign("k" * 20, body, timestamp=1_700_000_000)
    t, v1 = header.split(",")
    assert t == "t=1700000000" and v1.startswith("v1=") and len(v1) == 3 + 64
    at = 1_700_000_100.0
    assert verify_signature("k" * 20, header, body, now=at)
    assert not verify_signature("k" * 20, header, body, tolerance=60, now=at)
    rotated = f"{header},v1={'0' * 64}"  # several signatures: any may match
    assert verify_signature("k" * 20, rotated, body, now=at)
    for broken in ("", "t=abc,v1=00", "v1=" + v1[3:], "t=1700000000", "garbage"):
        assert not verify_signature("k" * 20, broken, body, now=at)


def test_the_retry_schedule_backs_off_with_jitter() -> None:
    assert BACKOFF[:5] == (10, 30, 120, 600, 3600)
    assert [wh.retry_delay(n, rand=lambda: 0.5) for n in (1, 2, 3)] == [10, 30, 120]
    assert wh.retry_delay(1, rand=lambda: 0.0) == pytest.approx(8)
    assert wh.retry_delay(1, rand=lambda: 1.0) == pytest.approx(12)
    assert wh.retry_delay(99, rand=lambda: 0.5) == BACKOFF[-1]


# -- retries and the delivery log ------------------------------------------------------


@pytest.mark.usefixtures("manual")
def test_failed_deliveries_are_retried_with_back_off(
    client: mltrail.Client, receiver: Receiver
) -> None:
    hook, secret = client.create_webhook(receiver.url, ["model.created"])
    client.create_model("churn-xgboost")
    receiver.fail = 2
    store = _store(client)

    t0 = time.time()
    assert deliver_due(store, now=t0) == 1
    [d] = client.webhook_deliveries(hook.id)
    assert (d.status, d.attempts, d.last_status) == ("pending", 1, 500)
    assert d.last_error == "HTTP 500: boom"
    assert t0 + 8 <= d.next_attempt_at <= t0 + 12

    assert deliver_due(store, now=t0 + 5) == 0  # not due yet
    t1 = t0 + 13
    assert deliver_due(store, now=t1) == 1
    [d] = client.webhook_deliveries(hook.id)
    assert (d.status, d.attempts, d.last_status) == ("pending", 2, 500)
    assert t1 + 24 <= d.next_attempt_at <= t1 + 36

    t2 = t1 + 37
    assert deliver_due(store, now=t2) == 1
    [d] = client.webhook_deliveries(hook.id)
    assert (d.status, d.attempts, d.last_status, d.last_error) == ("delivered", 3, 200, None)
    assert d.delivered_at == pytest.approx(t2)
    assert deliver_due(store, now=t2 + 1e6) == 0

    # the same delivery each time: same id and body, a fresh signature, counted attempts
    assert [r.headers["X-Mltrail-Attempt"] for r in receiver.requests] == ["1", "2", "3"]
    assert {r.headers["X-Mltrail-Delivery"] for r in receiver.requests} == {str(d.id)}
    assert len({r.body for r in receiver.requests}) == 1
    assert all(
        verify_signature(secret, r.headers["X-Mltrail-Signature"], r.body)
        for r in receiver.requests
    )


@pytest.mark.usefixtures("manual")
def test_a_delivery_fails_for_good_after_max_attempts(client: mltrail.Client) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}/gone"
    hook, _ = client.create_webhook(nobody, ["model.created"])
    client.create_model("churn-xgboost")
    store = _store(client)

    now = time.time()
    for attempt in (1, 2, 3):
        assert deliver_due(store, now=now, max_attempts=3) == 1
        [d] = client.webhook_deliveries(hook.id)
        assert d.attempts == attempt and d.last_status is None
        assert d.last_error is not None and d.last_error.startswith("ConnectError")
        now = d.next_attempt_at + 1
    assert d.status == "failed"
    assert deliver_due(store, now=now + 1e6, max_attempts=3) == 0
    assert client.webhook_deliveries(status="failed") == [d]
    assert client.webhook_deliveries(status="pending") == []
    with pytest.raises(InvalidValueError):
        client.webhook_deliveries(status="lost")
    with pytest.raises(WebhookNotFound):
        client.webhook_deliveries(999)


# -- what is sent to whom --------------------------------------------------------------


@pytest.mark.usefixtures("manual")
def test_the_event_filter_delivers_only_matching_actions(
    client: mltrail.Client, receiver: Receiver
) -> None:
    client.create_webhook(receiver.url + "/settings", ["settings.changed"])
    client.create_webhook(receiver.url + "/models", ["model.*"])
    everything, _ = client.create_webhook(receiver.url + "/all")
    assert everything.events == ()
    client.create_model("churn-xgboost")
    client.set_registry_policy({"default_roles": ["maintainer"]})
    client.deliver_webhooks()

    assert [r.action for r in receiver.at("/settings")] == ["settings.changed"]
    assert [r.action for r in receiver.at("/models")] == ["model.created"]
    # a webhook that wants everything hears of its own creation first
    assert [r.action for r in receiver.at("/all")] == [
        "webhook.created", "model.created", "settings.changed",
    ]  # fmt: skip
    assert receiver.at("/all")[0].json["payload"]["webhook_id"] == everything.id

    with pytest.raises(InvalidValueError, match="unknown webhook event"):
        client.create_webhook(receiver.url, ["stage.change"])
    with pytest.raises(InvalidValueError, match="unknown webhook event"):
        client.create_webhook(receiver.url, ["nothing.*"])
    for bad in ("ftp://example.com/hook", "example.com/hook", "http:///nohost"):
        with pytest.raises(InvalidValueError, match="not an http"):
            client.create_webhook(bad)
    assert client.create_webhook(receiver.url, ["*", "model.created"])[0].events == ()


@pytest.mark.usefixtures("manual")
def test_a_model_filter_delivers_only_that_models_events(
    client: mltrail.Client, receiver: Receiver
) -> None:
    client.create_model("churn-xgboost")
    client.create_model("fraud-lgbm")
    hook, _ = client.create_webhook(receiver.url, ["model.updated"], model="churn-xgboost")
    assert hook.model == "churn-xgboost"
    client.update_model("fraud-lgbm", description="fraud")
    client.update_model("churn-xgboost", description="churn")
    client.set_registry_policy({"default_roles": ["maintainer"]})  # no model: not sent
    client.deliver_webhooks()
    assert [(r.json["model"], r.json["to"]) for r in receiver.requests] == [
        ("churn-xgboost", "churn")
    ]
    with pytest.raises(ModelNotFound):
        client.create_webhook(receiver.url, model="no-such-model")


@pytest.mark.usefixtures("manual")
def test_version_stage_and_alias_events(
    client: mltrail.Client, receiver: Receiver, train: Train
) -> None:
    client.create_webhook(receiver.url, ["version.created", "stage.*", "alias.*"])
    _, art = train(0.93)
    mv = client.register_model(art, "churn-xgboost", sign=False)
    assert mv is not None
    client.promote("churn-xgboost@1", "staging", reason="offline eval ok")
    client.set_model_alias("churn-xgboost", "champion", 1)
    client.deliver_webhooks()
    got = [
        (b["action"], b["version"], b["target"], b["from"], b["to"], b["reason"])
        for b in (r.json for r in receiver.requests)
    ]
    assert got == [
        ("version.created", 1, None, None, mv.label, None),
        ("stage.changed", 1, "stage", "development", "staging", "offline eval ok"),
        ("alias.set", 1, "champion", None, "1", None),
    ]


@pytest.mark.usefixtures("manual")
def test_deleting_a_webhook_stops_its_deliveries_and_keeps_its_log(
    client: mltrail.Client, receiver: Receiver
) -> None:
    hook, _ = client.create_webhook(receiver.url, ["model.created"])
    client.create_model("churn-xgboost")  # queued, not sent yet
    gone = client.delete_webhook(hook.id)
    assert not gone.active
    client.create_model("fraud-lgbm")
    assert client.deliver_webhooks() == 0 and receiver.requests == []

    [d] = client.webhook_deliveries(hook.id)  # the log stays
    assert (d.status, d.attempts, d.last_error) == ("failed", 0, "webhook deleted before delivery")
    assert client.list_webhooks() == []
    assert client.list_webhooks(include_deleted=True) == [gone]
    assert client.get_webhook(hook.id) == gone
    audit = [(e.action, e.actor) for e in client.model_history() if e.target == hook.name]
    assert audit == [("webhook.created", "alice"), ("webhook.deleted", "alice")]
    assert client.delete_webhook(hook.id) == gone  # again: nothing more happens
    with pytest.raises(WebhookNotFound):
        client.delete_webhook(999)
    with pytest.raises(WebhookNotFound):
        client.get_webhook(999)


@pytest.mark.usefixtures("manual")
def test_the_secret_is_returned_once_and_never_again(
    client: mltrail.Client, receiver: Receiver
) -> None:
    given = "correct-horse-battery-staple-42"
    hook, secret = client.create_webhook(receiver.url, name="ci", secret=given)
    assert secret == given and hook.name == "ci"
    other, generated = client.create_webhook(receiver.url + "/b", ["model.*"])
    assert len(generated) >= 40 and generated != given and other.name == "127.0.0.1"
    client.create_model("churn-xgboost")
    client.delete_webhook(other.id)
    client.deliver_webhooks()

    seen = [
        repr(client.list_webhooks(include_deleted=True)),
        repr(client.get_webhook(hook.id)),
        repr(client.get_webhook(other.id)),
        repr(client.webhook_deliveries()),
        *(json.dumps(e.payload) + repr(e) for e in client.model_history()),
        *(r.body.decode() + json.dumps(r.headers) for r in receiver.requests),
    ]
    assert receiver.requests
    for text in seen:
        assert given not in text and generated not in text
    assert not hasattr(hook, "secret")
    # the audit trail keeps where a webhook sends only up to the host
    [created] = [e for e in client.model_history() if e.action == "webhook.created"][:1]
    assert created.payload["origin"] == receiver.url and "url" not in created.payload
    with pytest.raises(InvalidValueError, match="at least 16"):
        client.create_webhook(receiver.url, secret="short")


@pytest.mark.usefixtures("dispatchers")
def test_only_maintainers_manage_webhooks(
    client: mltrail.Client, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook, _ = client.create_webhook(receiver.url, ["model.created"])
    client.set_registry_policy({"roles": {"alice": ["admin"]}, "default_roles": ["writer"]})
    monkeypatch.setenv("MLTRAIL_USER", "bob")
    with pytest.raises(PermissionDenied, match="maintainer"):
        client.create_webhook(receiver.url)
    with pytest.raises(PermissionDenied):
        client.delete_webhook(hook.id)
    assert [h.id for h in client.list_webhooks()] == [hook.id]  # reading is fine


# -- dispatchers -----------------------------------------------------------------------


@pytest.mark.usefixtures("manual")
def test_concurrent_dispatchers_never_send_a_delivery_twice(
    client: mltrail.Client, receiver: Receiver, store_uri: str
) -> None:
    client.create_webhook(receiver.url, ["model.created"])
    names = [f"model-{i:02d}-x" for i in range(24)]
    for name in names:
        client.create_model(name)
    receiver.delay = 0.01
    stores = [SqlStore(store_uri), SqlStore(store_uri), SqlStore(store_uri)]  # as processes
    start = threading.Barrier(len(stores))
    counts: list[int] = []
    errors: list[BaseException] = []

    def work(store: SqlStore) -> None:
        try:
            start.wait(10)
            counts.append(deliver_due(store))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in stores:
            s.close()
    assert not errors, errors
    assert sum(counts) == len(names)
    ids = [r.headers["X-Mltrail-Delivery"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == len(names)
    assert sorted(r.json["model"] for r in receiver.requests) == names
    log = client.webhook_deliveries(limit=None)
    assert {(d.status, d.attempts) for d in log} == {("delivered", 1)}


@pytest.mark.usefixtures("dispatchers")
def test_background_dispatch_sends_after_a_registry_write(
    client: mltrail.Client, receiver: Receiver
) -> None:
    hook, secret = client.create_webhook(receiver.url, ["model.created"])
    receiver.hold.clear()  # the first request waits at the receiver
    client.create_model("churn-xgboost")
    started = time.monotonic()
    first = dispatch_in_background(client.store)
    assert first is not None and time.monotonic() - started < 1  # the caller never waits
    assert receiver.arrived.wait(15)
    # while it is busy, another write wakes the same thread: one per store per process
    client.create_model("fraud-lgbm")
    assert dispatch_in_background(client.store) is first
    receiver.hold.set()

    requests = receiver.wait_for(2)
    assert [r.json["model"] for r in requests] == ["churn-xgboost", "fraud-lgbm"]
    assert all(verify_signature(secret, r.headers["X-Mltrail-Signature"], r.body) for r in requests)
    assert first.join(15)  # nothing left to do: the thread ends
    assert {d.status for d in client.webhook_deliveries(hook.id)} == {"delivered"}

    client.create_model("spam-filter")  # a later write starts a new one
    second = dispatch_in_background(client.store)
    assert second is not None and second is not first
    assert len(receiver.wait_for(3)) == 3
    assert second.join(15)


@pytest.mark.usefixtures("dispatchers")
def test_pending_deliveries_of_an_exited_process_go_out_with_the_next_dispatch(
    client: mltrail.Client, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTRAIL_WEBHOOK_DISPATCH", "manual")  # "the process that exited"
    client.create_webhook(receiver.url, ["model.created"])
    client.create_model("churn-xgboost")
    assert dispatch_in_background(client.store) is None
    assert receiver.requests == []
    monkeypatch.delenv("MLTRAIL_WEBHOOK_DISPATCH")
    client.create_webhook(receiver.url + "/other", ["settings.changed"])  # any later write
    assert [r.json["model"] for r in receiver.wait_for(1)] == ["churn-xgboost"]


@pytest.mark.usefixtures("dispatchers")
def test_registry_writes_fire_their_webhooks_unasked(
    client: mltrail.Client, receiver: Receiver
) -> None:
    client.create_webhook(receiver.url, ["model.created", "settings.changed"])
    stop_dispatchers()  # the one creating the webhook started is not the one under test
    client.create_model("churn-xgboost")
    client.set_registry_policy({"default_roles": ["maintainer"]})
    got = receiver.wait_for(2, timeout=3)
    assert [r.action for r in got] == ["model.created", "settings.changed"]
