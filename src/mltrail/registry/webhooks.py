"""Webhooks on registry events: signed JSON POSTs, retried with back-off, logged.

Every registry write queues its deliveries in the outbox in the same transaction
(``mltrail.store.sql.webhooks``). They are sent by :func:`deliver_due` (``mltrail
models webhooks deliver``, or any process), and by :func:`dispatch_in_background`,
which a registry write in an embedded client calls so the receiver hears of it at
once without the caller waiting. Deliveries left by a process that exited are sent by
the next dispatcher, in any process.

The request
-----------
``POST <url>`` with a JSON body::

    {"delivery_id": 12, "webhook_id": 3, "event_id": 40, "action": "stage.changed",
     "model": "churn-xgboost", "version": 4, "target": "stage", "from": "staging",
     "to": "production", "actor": "alice", "reason": "canary ok",
     "at": "2024-05-01T09:30:00.123456+00:00", "payload": {...}}

and the headers ``X-Mltrail-Event`` (the action), ``X-Mltrail-Delivery`` (the delivery
id: the same on every retry, so use it to drop duplicates), ``X-Mltrail-Attempt`` and
``X-Mltrail-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is the
HMAC-SHA256, keyed with the webhook's secret, of ``f"{t}."`` followed by the raw body.

Verifying, in a receiver
------------------------
Compute the HMAC over the raw bytes received (before any JSON parsing), compare in
constant time, and refuse a ``t`` far from your clock (a replayed old request)::

    from mltrail.registry.webhooks import verify_signature

    def handle(headers, body: bytes) -> int:
        if not verify_signature(SECRET, headers["X-Mltrail-Signature"], body):
            return 401
        event = json.loads(body)
        ...

Without mltrail installed: ``t`` and ``v1`` from the header, then
``hmac.compare_digest(hmac.new(secret.encode(), f"{t}.".encode() + body,
"sha256").hexdigest(), v1)`` and ``abs(time.time() - int(t)) <= 300``.

Retries
-------
Anything but a 2xx answer (redirects are not followed), a connection error or a
timeout is retried after :data:`BACKOFF` (10 s, 30 s, 2 min, 10 min, 1 h, 3 h, 6 h;
each ±20 % jitter) until :data:`MAX_ATTEMPTS` attempts (8, about 10.5 hours), then the
delivery is ``failed``. The delivery log (``client.webhook_deliveries()``) shows the
attempts, the last status code and error of each.

``MLTRAIL_WEBHOOK_DISPATCH=manual`` turns the background sending off: deliveries then
wait in the outbox for ``mltrail models webhooks deliver``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

from mltrail._version import __version__
from mltrail.entities import RegistryEvent, Webhook, WebhookDelivery
from mltrail.errors import ConfigurationError, InvalidValueError, PermissionDenied

if TYPE_CHECKING:
    import httpx

    from mltrail.registry.policy import Actor

__all__ = [
    "BACKOFF",
    "MAX_ATTEMPTS",
    "Dispatcher",
    "build_payload",
    "create_webhook",
    "deliver_due",
    "dispatch_in_background",
    "fires_webhooks",
    "retry_delay",
    "sign",
    "stop_dispatchers",
    "verify_signature",
]

log = logging.getLogger("mltrail.webhooks")

MAX_ATTEMPTS = 8
#: Seconds to wait after failed attempt 1, 2, ...; the last entry repeats.
BACKOFF: tuple[float, ...] = (10, 30, 120, 600, 3600, 3 * 3600, 6 * 3600)
JITTER = 0.2  # each wait is BACKOFF * (1 ± JITTER)
TIMEOUT = 10.0  # seconds for a whole request; 5 to connect
CLAIM_BATCH = 10  # deliveries claimed at once; the lease covers sending them all
LEASE = CLAIM_BATCH * (TIMEOUT + 5) + 30
LINGER = 60.0  # a background dispatcher waits this long for a retry that comes due
SIGNATURE_HEADER = "X-Mltrail-Signature"


# -- creating ------------------------------------------------------------------------


def create_webhook(
    store: Any,
    url: str,
    events: Sequence[str] | None = None,
    *,
    actor: Actor,
    name: str | None = None,
    model: str | None = None,
    secret: str | None = None,
) -> tuple[Webhook, str]:
    """Register a webhook (maintainers and admins). Returns it with its secret: the
    only time the secret is shown; a generated one is 43 URL-safe characters."""
    if not actor.has_any(("maintainer",)):
        raise PermissionDenied(
            f"{actor.name} may not manage webhooks: it needs the maintainer role",
            hint="ask an admin to grant it in the registry policy",
        )
    secret = secret or secrets.token_urlsafe(32)
    hook = store.create_webhook(
        name or urlsplit(url.strip()).hostname or "webhook", url, events, model, secret,
        actor.name,
    )  # fmt: skip
    return hook, secret


def delete_webhook(store: Any, webhook_id: int, *, actor: Actor) -> Webhook:
    """Stop a webhook (maintainers and admins); its delivery log stays."""
    if not actor.has_any(("maintainer",)):
        raise PermissionDenied(
            f"{actor.name} may not manage webhooks: it needs the maintainer role",
            hint="ask an admin to grant it in the registry policy",
        )
    return store.delete_webhook(webhook_id, actor.name)  # type: ignore[no-any-return]


# -- the request ---------------------------------------------------------------------


def build_payload(event: RegistryEvent, delivery: WebhookDelivery) -> dict[str, Any]:
    """The JSON document a receiver gets for ``event``."""
    return {
        "delivery_id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event_id": event.id,
        "action": event.action,
        "model": event.model,
        "version": event.version,
        "target": event.target,
        "from": event.from_value,
        "to": event.to_value,
        "actor": event.actor,
        "reason": event.reason,
        "at": datetime.fromtimestamp(event.at, tz=timezone.utc).isoformat(),
        "payload": event.payload,
    }


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Mltrail-Signature`` value: ``t=<unix>,v1=<hex HMAC-SHA256 of "t." + body>``.

    >>> sign("s3cret", b'{"a":1}', timestamp=1700000000)[:15]
    't=1700000000,v1'
    """
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_mac(secret, t, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes | str,
    tolerance: float | None = 300,
    *,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (``X-Mltrail-Signature``) signs ``body`` with ``secret`` and
    was made within ``tolerance`` seconds of ``now`` (None: any age).

    ``body`` must be the raw request body, as received. Several ``v1=`` entries are
    accepted (any may match), for a receiver in the middle of changing secrets.

    >>> header = sign("s3cret", b"{}")
    >>> verify_signature("s3cret", header, b"{}"), verify_signature("guess", header, b"{}")
    (True, False)
    """
    if isinstance(body, str):
        body = body.encode()
    t: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                t = int(value)
            except ValueError:
                return False
        elif key == "v1":
            macs.append(value)
    if t is None or not macs:
        return False
    if tolerance is not None and abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = _mac(secret, t, body)
    return any(hmac.compare_digest(expected, m) for m in macs)


def _mac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def retry_delay(attempt: int, *, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter."""
    base = BACKOFF[min(max(attempt, 1), len(BACKOFF)) - 1]
    return base * (1 - JITTER + 2 * JITTER * rand())


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    status: int | None
    error: str | None


def _post(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str]) -> _Outcome:
    import httpx

    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            code = response.status_code
            if 200 <= code < 300:
                return _Outcome(True, code, None)
            text = _some_text(response)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _Outcome(False, None, f"{type(exc).__name__}: {exc}".rstrip(": "))
    error = f"HTTP {code}"
    if 300 <= code < 400:
        error += " (redirects are not followed: give the final URL)"
    return _Outcome(False, code, f"{error}: {text}" if text else error)


def _some_text(response: httpx.Response, limit: int = 200) -> str:
    got = b""
    for chunk in response.iter_bytes():
        got += chunk
        if len(got) >= limit:
            break
    return got[:limit].decode("utf-8", "replace").strip()


# -- sending what is due -------------------------------------------------------------


def _http_client(transport: httpx.BaseTransport | None) -> httpx.Client:
    import httpx

    return httpx.Client(
        timeout=httpx.Timeout(TIMEOUT, connect=5.0), transport=transport,
        follow_redirects=False, headers={"User-Agent": f"mltrail-webhooks/{__version__}"},
    )  # fmt: skip


def deliver_due(
    store: Any,
    *,
    now: float | None = None,
    limit: int = 100,
    max_attempts: int = MAX_ATTEMPTS,
    transport: httpx.BaseTransport | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Send up to ``limit`` deliveries that are due; returns how many were attempted.

    Each attempt's outcome goes to the delivery log: delivered, pending again after
    :func:`retry_delay`, or failed after ``max_attempts``. Safe to run in any number of
    processes at once: each delivery is claimed before it is sent. ``now`` is the
    outbox clock (tests move it forward to reach retries); signatures always carry the
    real time. With ``stop`` set, it returns after the request in flight (what it had
    claimed and not sent goes out when the claim's lease ends).

    >>> deliver_due(mltrail.Client().store)  # doctest: +SKIP
    3
    """
    if max_attempts < 1:
        raise InvalidValueError(f"max_attempts must be at least 1, not {max_attempts}")
    hooks: dict[int, tuple[str, str]] = {}
    events: dict[int, RegistryEvent] = {}
    sent = 0
    client: httpx.Client | None = None  # made once something is due (TLS setup costs)
    with contextlib.ExitStack() as cleanup:
        while sent < limit and not (stop is not None and stop.is_set()):
            clock = time.time() if now is None else now
            batch = store.claim_due_deliveries(clock, min(CLAIM_BATCH, limit - sent), LEASE)
            if not batch:
                break
            if client is None:
                client = cleanup.enter_context(_http_client(transport))
            for delivery in batch:
                if stop is not None and stop.is_set():
                    break
                if delivery.webhook_id not in hooks:
                    hook = store.get_webhook(delivery.webhook_id)
                    hooks[delivery.webhook_id] = (hook.url, store.webhook_secret(hook.id))
                url, secret = hooks[delivery.webhook_id]
                if delivery.event_id not in events:
                    events[delivery.event_id] = store.get_registry_event(delivery.event_id)
                event = events[delivery.event_id]
                body = json.dumps(
                    build_payload(event, delivery), separators=(",", ":"), default=str
                ).encode()
                outcome = _post(
                    client, url, body,
                    {
                        "Content-Type": "application/json",
                        "X-Mltrail-Event": event.action,
                        "X-Mltrail-Delivery": str(delivery.id),
                        "X-Mltrail-Attempt": str(delivery.attempts),
                        SIGNATURE_HEADER: sign(secret, body),
                    },
                )  # fmt: skip
                sent += 1
                clock = time.time() if now is None else now
                retry = None
                if not outcome.ok and delivery.attempts < max_attempts:
                    retry = clock + retry_delay(delivery.attempts)
                if not outcome.ok:
                    log.info(
                        "webhook %d: delivery %d (%s) attempt %d failed: %s",
                        delivery.webhook_id, delivery.id, event.action, delivery.attempts,
                        outcome.error,
                    )  # fmt: skip
                store.record_delivery(
                    delivery.id, outcome.ok, outcome.status, outcome.error, retry,
                    attempt=delivery.attempts, now=clock,
                )  # fmt: skip
    return sent


# -- in the background ---------------------------------------------------------------

_LOCK = threading.Lock()
_DISPATCHERS: dict[int, Dispatcher] = {}  # id(store) -> its running dispatcher
_EXIT_HOOK: list[bool] = []


class Dispatcher:
    """A daemon thread that sends what is due for one store, then waits up to
    :data:`LINGER` seconds for a retry that comes due, then ends.

    Made by :func:`dispatch_in_background`; at most one per store per process.
    """

    def __init__(
        self,
        store: Any,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        linger: float = LINGER,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.linger = linger
        self.transport = transport
        self.sent = 0
        self.pid = os.getpid()
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._draining = False
        self._done = False
        self._thread = threading.Thread(target=self._run, name="mltrail-webhooks", daemon=True)

    @property
    def alive(self) -> bool:
        return not self._done and self.pid == os.getpid() and self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        """Look at the outbox again before ending (a new event was queued)."""
        self._kick.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until it has ended (True) or ``timeout`` passed (False)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def drain(self, timeout: float | None = None) -> bool:
        """Send what is due now, wait for no retry, end; True if it ended in time."""
        self._draining = True
        self._kick.set()
        return self.join(timeout)

    def stop(self, timeout: float | None = 5.0) -> bool:
        """End after the request in flight; True if it ended in time."""
        self._stop.set()
        self._kick.set()
        return self.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._kick.clear()
                sent = deliver_due(
                    self.store, limit=CLAIM_BATCH, max_attempts=self.max_attempts,
                    transport=self.transport, stop=self._stop,
                )  # fmt: skip
                self.sent += sent
                if sent:
                    continue
                wait = None
                if not self._draining and self.linger > 0:
                    due = self.store.next_delivery_at()
                    if due is not None and due - time.time() <= self.linger:
                        wait = max(0.05, due - time.time())
                with _LOCK:
                    if wait is None and not self._kick.is_set():
                        self._end()
                        return
                self._kick.wait(wait)
        except Exception:  # a thread has nobody to raise to: log, leave it to the next one
            log.warning("webhook dispatcher for %s stopped", _where(self.store), exc_info=True)
        finally:
            with _LOCK:
                self._end()

    def _end(self) -> None:  # under _LOCK
        self._done = True
        if _DISPATCHERS.get(id(self.store)) is self:
            del _DISPATCHERS[id(self.store)]


def _where(store: Any) -> str:
    from mltrail.store.sql.engine import redact

    return redact(str(getattr(store, "uri", "?")))


def background_enabled() -> bool:
    """False when ``MLTRAIL_WEBHOOK_DISPATCH=manual`` (only explicit delivery)."""
    mode = os.environ.get("MLTRAIL_WEBHOOK_DISPATCH", "background").strip().lower()
    if mode not in ("background", "manual", ""):
        raise ConfigurationError(
            f"MLTRAIL_WEBHOOK_DISPATCH={mode!r} is neither 'background' nor 'manual'"
        )
    return mode != "manual"


def dispatch_in_background(store: Any, **options: Any) -> Dispatcher | None:
    """Make sure a daemon thread of this process is sending ``store``'s due deliveries.

    Returns at once. If one is already running, it is told to look again (so nothing
    queued before this call is missed); else one starts. ``options`` go to
    :class:`Dispatcher`. None when background sending is off
    (``MLTRAIL_WEBHOOK_DISPATCH=manual``) or the store keeps no outbox.
    """
    if not hasattr(store, "claim_due_deliveries") or not background_enabled():
        return None
    with _LOCK:
        running = _DISPATCHERS.get(id(store))
        if running is not None and running.alive:
            running.kick()
            return running
        dispatcher = _DISPATCHERS[id(store)] = Dispatcher(store, **options)
        if not _EXIT_HOOK:
            atexit.register(_drain_at_exit)
            _EXIT_HOOK.append(True)
    try:
        dispatcher.start()
    except RuntimeError:  # cannot start a thread (interpreter shutting down)
        log.warning("could not start the webhook dispatcher", exc_info=True)
        with _LOCK:
            dispatcher._end()
        return None
    return dispatcher


def stop_dispatchers(timeout: float = 5.0) -> None:
    """Stop every background dispatcher of this process (tests, forks, shutdown)."""
    with _LOCK:
        running = list(_DISPATCHERS.values())
    for dispatcher in running:
        dispatcher.stop(timeout)


def _drain_at_exit(timeout: float = 5.0) -> None:
    """At exit, give requests under way (and due now) a few seconds to finish; what is
    left stays in the outbox for the next dispatcher."""
    deadline = time.monotonic() + timeout
    with _LOCK:
        running = [d for d in _DISPATCHERS.values() if d.alive]
    for dispatcher in running:
        dispatcher.drain(max(0.0, deadline - time.monotonic()))


class _HasStore(Protocol):
    store: Any


S = TypeVar("S", bound=_HasStore)
P = ParamSpec("P")
R = TypeVar("R")


def fires_webhooks(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Decorate a registry write: after it, send the webhooks it queued in the background."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        finally:
            try:
                dispatch_in_background(self.store)
            except ConfigurationError:
                log.warning("webhooks not sent in the background", exc_info=True)

    return wrapper
