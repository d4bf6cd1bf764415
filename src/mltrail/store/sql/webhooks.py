"""Webhooks and their delivery outbox in SQL.

A registry write queues one ``webhook_deliveries`` row per matching active webhook in
its own transaction (``RegistryStoreMixin._enqueue_webhooks``), so an event is never
lost and never sent for a write that rolled back. Sending is above, in
:mod:`mltrail.registry.webhooks`; the store hands out due deliveries one lease at a
time (:meth:`WebhookStoreMixin.claim_due_deliveries`), so any number of dispatchers,
in any processes, never send the same delivery at the same moment.

A webhook's secret is written once and read only by :meth:`webhook_secret`, for
signing: no entity, list or audit event carries it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, func, select, true, update

from mltrail.entities import Webhook, WebhookDelivery
from mltrail.errors import InvalidValueError, WebhookNotFound
from mltrail.store.sql import schema as s

__all__ = ["EVENT_ACTIONS", "WebhookStoreMixin", "normalize_events"]

_W = s.webhooks.c
_D = s.webhook_deliveries.c
_E = s.registry_events.c
_M = s.registered_models.c

#: Every action a registry event can have, hence every name a webhook can ask for.
EVENT_ACTIONS: tuple[str, ...] = (
    "model.created",
    "model.updated",
    "version.created",
    "version.updated",
    "metadata.updated",
    "card.updated",
    "stage.changed",
    "alias.set",
    "alias.moved",
    "alias.removed",
    "approval.requested",
    "approval.approved",
    "approval.rejected",
    "approval.cancelled",
    "settings.changed",
    "runs.deleted",
    "webhook.created",
    "webhook.deleted",
)
_FAMILIES = frozenset(a.split(".", 1)[0] for a in EVENT_ACTIONS)


def normalize_events(events: Sequence[str] | None) -> list[str]:
    """Check a webhook's event filter and give its stored form ([] = every event).

    Names are actions (``stage.changed``), families (``alias.*``) or ``*``.

    >>> normalize_events(["stage.changed", "alias.*", "stage.changed"])
    ['alias.*', 'stage.changed']
    >>> normalize_events(["*"])
    []
    """
    if isinstance(events, str):
        events = [events]
    wanted = {e.strip() for e in events or ()}
    if "*" in wanted:
        return []
    bad = sorted(
        e for e in wanted
        if e not in EVENT_ACTIONS and not (e.endswith(".*") and e[:-2] in _FAMILIES)
    )  # fmt: skip
    if bad:
        families = ", ".join(f"{f}.*" for f in sorted(_FAMILIES))
        raise InvalidValueError(
            f"unknown webhook event {', '.join(repr(b) for b in bad)}",
            hint=f"use '*', a family ({families}) or an action: {', '.join(EVENT_ACTIONS)}",
        )
    return sorted(wanted)


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValueError(
            f"webhook URL {url!r} is not an http(s) URL",
            hint="give the full address, e.g. https://ci.example.com/hooks/mltrail",
        )
    if parts.fragment:
        raise InvalidValueError(f"webhook URL {url!r} has a #fragment, which is never sent")
    return url.strip()


def _origin(url: str) -> str:
    """``scheme://host[:port]``: what the audit trail keeps of a URL (paths and queries
    of chat-service hooks are secrets themselves)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class WebhookStoreMixin:
    """Webhook methods of :class:`~mltrail.store.sql.store.SqlStore`."""

    # provided by SqlStore / the registry mixin
    _write: Any
    _read: Any
    _record_event: Any
    _model_row: Any

    # -- webhooks ---------------------------------------------------------------------

    def create_webhook(
        self,
        name: str,
        url: str,
        events: Sequence[str] | None,
        model: str | None,
        secret: str,
        actor: str | None,
    ) -> Webhook:
        """Register a receiver of registry events; audited as ``webhook.created``.

        ``events``: actions, ``family.*`` or ``*`` (None or [] = every event);
        ``model``: only that model's events (None = all). The secret is stored for
        signing and never returned.
        """
        name = name.strip()
        if not name or len(name) > s.NAME_LEN:
            raise InvalidValueError(
                f"a webhook name must be 1 to {s.NAME_LEN} characters, not {name!r}"
            )
        url = _check_url(url)
        wanted = normalize_events(events)
        if len(secret) < 16:
            raise InvalidValueError(
                "a webhook secret must be at least 16 characters",
                hint="leave it out and one is generated (and shown once)",
            )
        now = time.time()
        with self._write() as conn:
            model_id = None if model is None else int(self._model_row(conn, model).id)
            webhook_id = int(
                conn.execute(
                    s.webhooks.insert()
                    .values(
                        name=name,
                        url=url,
                        events_json=json.dumps(wanted),
                        model_id=model_id,
                        secret=secret,
                        active=True,
                        created_by=actor,
                        created_at=now,
                    )
                    .returning(_W.id)
                ).scalar_one()
            )
            self._record_event(
                conn, model_id, "webhook.created", target=name, to_value=webhook_id,
                actor=actor,
                payload={"webhook_id": webhook_id, "name": name, "origin": _origin(url),
                         "events": wanted, "model": model},
            )  # fmt: skip
        return self.get_webhook(webhook_id)

    def list_webhooks(self, *, include_deleted: bool = False) -> list[Webhook]:
        """Webhooks, oldest first (deleted ones too with ``include_deleted``)."""
        q = self._webhooks_query().order_by(_W.id)
        if not include_deleted:
            q = q.where(_W.active.is_(True))
        with self._read() as conn:
            return [_webhook(r) for r in conn.execute(q).all()]

    def get_webhook(self, webhook_id: int) -> Webhook:
        """One webhook, deleted or not (``active`` tells)."""
        with self._read() as conn:
            row = conn.execute(self._webhooks_query().where(_W.id == webhook_id)).first()
        if row is None:
            raise WebhookNotFound(
                f"no webhook #{webhook_id}", hint="see them with: mltrail models webhooks ls"
            )
        return _webhook(row)

    def delete_webhook(self, webhook_id: int, actor: str | None) -> Webhook:
        """Stop a webhook (audited as ``webhook.deleted``). The row stays, so its
        delivery log does; deliveries still pending are closed as failed."""
        with self._write() as conn:
            row = conn.execute(
                select(_W.id, _W.name, _W.model_id, _W.active).where(_W.id == webhook_id)
            ).first()
            if row is None:
                raise WebhookNotFound(f"no webhook #{webhook_id}")
            if row.active:
                conn.execute(update(s.webhooks).where(_W.id == webhook_id).values(active=False))
                conn.execute(
                    update(s.webhook_deliveries)
                    .where((_D.webhook_id == webhook_id) & (_D.status == "pending"))
                    .values(status="failed", last_error="webhook deleted before delivery")
                )
                self._record_event(
                    conn, row.model_id, "webhook.deleted", target=row.name,
                    from_value=webhook_id, actor=actor,
                    payload={"webhook_id": webhook_id, "name": row.name},
                )  # fmt: skip
        return self.get_webhook(webhook_id)

    def webhook_secret(self, webhook_id: int) -> str:
        """The signing key of a webhook. Internal: only the dispatcher calls this."""
        with self._read() as conn:
            secret = conn.execute(select(_W.secret).where(_W.id == webhook_id)).scalar()
        if secret is None:
            raise WebhookNotFound(f"no webhook #{webhook_id}")
        return str(secret)

    @staticmethod
    def _webhooks_query() -> Any:
        return select(
            _W.id, _W.name, _W.url, _W.events_json, _W.active, _W.created_by, _W.created_at,
            _M.name.label("model_name"),
        ).outerjoin(s.registered_models, _M.id == _W.model_id)  # fmt: skip

    # -- the outbox -------------------------------------------------------------------

    def claim_due_deliveries(
        self, now: float, limit: int, lease_seconds: float
    ) -> list[WebhookDelivery]:
        """Take up to ``limit`` deliveries that are due at ``now`` for ``lease_seconds``.

        Each row is claimed by a conditional update (still pending, still due) that
        moves its ``next_attempt_at`` past the lease and counts the attempt; only rows
        whose update hit are returned, so two dispatchers never both get one. A
        dispatcher that dies mid-send leaves the row to be retried when the lease ends.
        The returned ``attempts`` is the number of the attempt now under way.
        """
        due = (
            select(_D.id)
            .join(s.webhooks, _W.id == _D.webhook_id)
            .where((_D.status == "pending") & (_D.next_attempt_at <= now) & _W.active.is_(True))
            .order_by(_D.next_attempt_at, _D.id)
            .limit(limit)
        )
        with self._read() as conn:  # cheap when nothing is due: no write transaction
            candidates = [int(r[0]) for r in conn.execute(due)]
        if not candidates:
            return []
        claimed: list[int] = []
        with self._write() as conn:
            for delivery_id in sorted(candidates):  # one lock order: no deadlocks
                hit = conn.execute(
                    update(s.webhook_deliveries)
                    .where(
                        (_D.id == delivery_id)
                        & (_D.status == "pending")
                        & (_D.next_attempt_at <= now)
                    )
                    .values(next_attempt_at=now + lease_seconds, attempts=_D.attempts + 1)
                )
                if hit.rowcount == 1:
                    claimed.append(delivery_id)
            return self._deliveries(conn, _D.id.in_(claimed)) if claimed else []

    def record_delivery(
        self,
        delivery_id: int,
        ok: bool,
        status_code: int | None,
        error: str | None,
        next_attempt_at: float | None,
        *,
        attempt: int | None = None,
        now: float | None = None,
    ) -> bool:
        """Write down how an attempt went: ``ok`` -> delivered; else pending again at
        ``next_attempt_at``, or failed for good when that is None (no attempts left).

        With ``attempt`` (the claimed attempt number), a dispatcher whose lease ran out
        and whose row another one took over records nothing. Returns whether it wrote.
        """
        values: dict[str, Any] = {"last_status": status_code, "last_error": error}
        if ok:
            values.update(status="delivered", delivered_at=time.time() if now is None else now)
        elif next_attempt_at is None:
            values.update(status="failed")
        else:
            values.update(next_attempt_at=next_attempt_at)
        where = (_D.id == delivery_id) & (_D.status == "pending")
        if attempt is not None:
            where &= _D.attempts == attempt
        with self._write() as conn:
            return bool(
                conn.execute(update(s.webhook_deliveries).where(where).values(**values)).rowcount
                == 1
            )

    def next_delivery_at(self) -> float | None:
        """When the earliest pending delivery of an active webhook is due (None: none)."""
        with self._read() as conn:
            at = conn.execute(
                select(func.min(_D.next_attempt_at))
                .join(s.webhooks, _W.id == _D.webhook_id)
                .where((_D.status == "pending") & _W.active.is_(True))
            ).scalar()
        return None if at is None else float(at)

    def webhook_deliveries(
        self,
        webhook_id: int | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> list[WebhookDelivery]:
        """The delivery log, newest first (one webhook's, or all; by status)."""
        if status is not None and status not in ("pending", "delivered", "failed"):
            raise InvalidValueError(f"a delivery is pending, delivered or failed, not {status!r}")
        where: Any = true()
        if webhook_id is not None:
            where &= _D.webhook_id == webhook_id
        if status is not None:
            where &= _D.status == status
        with self._read() as conn:
            if webhook_id is not None and (
                conn.execute(select(_W.id).where(_W.id == webhook_id)).first() is None
            ):
                raise WebhookNotFound(f"no webhook #{webhook_id}")
            return self._deliveries(conn, where, newest_first=True, limit=limit)

    @staticmethod
    def _deliveries(
        conn: Connection, where: Any, *, newest_first: bool = False, limit: int | None = None
    ) -> list[WebhookDelivery]:
        q = (
            select(s.webhook_deliveries, _E.action)
            .join(s.registry_events, _E.id == _D.event_id)
            .where(where)
            .order_by(_D.id.desc() if newest_first else _D.id)
        )
        if limit is not None:
            q = q.limit(limit)
        return [_delivery(r) for r in conn.execute(q).all()]


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=int(row.id), name=row.name, url=row.url, events=tuple(json.loads(row.events_json)),
        model=row.model_name, active=bool(row.active), created_by=row.created_by,
        created_at=float(row.created_at),
    )  # fmt: skip


def _delivery(row: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=int(row.id), webhook_id=int(row.webhook_id), event_id=int(row.event_id),
        action=row.action, status=row.status, attempts=int(row.attempts),
        next_attempt_at=float(row.next_attempt_at), last_status=row.last_status,
        last_error=row.last_error, created_at=float(row.created_at),
        delivered_at=None if row.delivered_at is None else float(row.delivered_at),
    )  # fmt: skip
