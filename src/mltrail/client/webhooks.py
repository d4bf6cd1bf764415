"""Webhooks on ``mltrail.Client``: tell other systems about registry events.

>>> hook, secret = client.create_webhook(
...     "https://ci.example.com/hooks/mltrail", ["stage.changed", "alias.*"],
...     model="churn-xgboost")  # doctest: +SKIP
>>> client.webhook_deliveries(hook.id)  # doctest: +SKIP

The secret is returned once, here; receivers check each request with it (see
:mod:`mltrail.registry.webhooks` for the headers and
:func:`mltrail.registry.webhooks.verify_signature`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mltrail.entities import Webhook, WebhookDelivery

if TYPE_CHECKING:
    from mltrail.client.remote_registry import RemoteRegistry
    from mltrail.objects import ObjectStore
    from mltrail.registry.policy import Actor
    from mltrail.store import Store

__all__ = ["WebhooksClientMixin"]


class WebhooksClientMixin:
    """Webhook methods of :class:`mltrail.Client`."""

    # provided by Client
    _store: Store
    _objects: Callable[[], ObjectStore]

    @property
    def _hook_store(self) -> Any:
        return self._store

    def _remote_hooks(self) -> RemoteRegistry | None:
        """The server's webhook methods when the store is remote (it checks and sends)."""
        if not getattr(self._store, "remote", False):
            return None
        from mltrail.client.remote_registry import RemoteRegistry

        return RemoteRegistry(self._store, self._objects)

    def _hook_actor(self) -> Actor:
        from mltrail.registry.service import Registry

        return Registry(self._store, self._objects).actor()

    def create_webhook(
        self,
        url: str,
        events: Sequence[str] | None = None,
        *,
        name: str | None = None,
        model: str | None = None,
        secret: str | None = None,
    ) -> tuple[Webhook, str]:
        """POST every matching registry event to ``url``, signed with HMAC-SHA256.

        ``events``: actions (``stage.changed``), families (``alias.*``) or ``*``; None
        means every event. ``model``: only that model's events. Returns the webhook and
        its secret, generated unless given: keep it, it is never shown again. Needs
        the maintainer role. Its first delivery is its own ``webhook.created`` event,
        if the filter lets it through.

        >>> hook, secret = client.create_webhook("https://ci.example.com/hook",
        ...                                      ["version.created"])  # doctest: +SKIP
        """
        from mltrail.registry import webhooks

        remote = self._remote_hooks()
        if remote is not None:
            return remote.create_webhook(url, events, name=name, model=model, secret=secret)
        hook, key = webhooks.create_webhook(
            self._hook_store, url, events, actor=self._hook_actor(), name=name, model=model,
            secret=secret,
        )  # fmt: skip
        webhooks.dispatch_in_background(self._hook_store)
        return hook, key

    def list_webhooks(self, *, include_deleted: bool = False) -> list[Webhook]:
        """The webhooks (without their secrets), oldest first."""
        return self._hook_store.list_webhooks(include_deleted=include_deleted)  # type: ignore[no-any-return]

    def get_webhook(self, webhook_id: int) -> Webhook:
        return self._hook_store.get_webhook(webhook_id)  # type: ignore[no-any-return]

    def delete_webhook(self, webhook_id: int) -> Webhook:
        """Stop a webhook: nothing more is sent to it; its delivery log stays."""
        from mltrail.registry import webhooks

        remote = self._remote_hooks()
        if remote is not None:
            return remote.delete_webhook(webhook_id)
        return webhooks.delete_webhook(self._hook_store, webhook_id, actor=self._hook_actor())

    def webhook_deliveries(
        self,
        webhook_id: int | None = None,
        status: str | None = None,
        *,
        limit: int | None = 100,
    ) -> list[WebhookDelivery]:
        """The delivery log, newest first: attempts, last status code and error.
        ``status``: pending, delivered or failed."""
        return self._hook_store.webhook_deliveries(  # type: ignore[no-any-return]
            webhook_id, status, limit=limit
        )

    def deliver_webhooks(self, *, limit: int = 1000) -> int:
        """Send the deliveries that are due now, here; returns how many were attempted
        (``mltrail models webhooks deliver`` calls this)."""
        from mltrail.registry.webhooks import deliver_due

        remote = self._remote_hooks()
        if remote is not None:
            return remote.deliver_webhooks(limit=limit)
        return deliver_due(self._hook_store, limit=limit)
