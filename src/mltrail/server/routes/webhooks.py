"""/api/v1 routes: webhooks on registry events (maintainers).

Created, listed and deleted here; sent by the server (the outbox of
:mod:`mltrail.registry.webhooks`), never by the client.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from mltrail.entities import Webhook, WebhookDelivery
from mltrail.server.auth import Principal, global_scope, require

__all__ = ["router"]

router = APIRouter()

MAINTAIN = require("maintainer", global_scope())


def _store(request: Request) -> Any:
    return request.app.state.mltrail.store


def _actor(request: Request, principal: Principal) -> Any:
    return request.app.state.mltrail.registry(principal).actor()


class Deliver(BaseModel):
    limit: int = Field(1000, ge=1, le=10_000)


class CreateWebhook(BaseModel):
    url: str
    events: list[str] | None = None
    name: str | None = None
    model: str | None = None
    secret: str | None = None


# -- webhooks -------------------------------------------------------------------------------


@router.post("/webhooks", status_code=201, response_model=None)
def create_webhook(
    body: CreateWebhook, request: Request, principal: Principal = MAINTAIN
) -> dict[str, Any]:
    """``{"webhook", "secret"}``: the secret is shown this once, keep it."""
    from mltrail.registry import webhooks

    store = _store(request)
    hook, secret = webhooks.create_webhook(
        store, body.url, body.events, actor=_actor(request, principal),
        name=body.name, model=body.model, secret=body.secret,
    )  # fmt: skip
    webhooks.dispatch_in_background(store)
    return {"webhook": hook, "secret": secret}


@router.get("/webhooks", response_model=None)
def list_webhooks(
    request: Request, include_deleted: bool = False, principal: Principal = MAINTAIN
) -> list[Webhook]:
    hooks: list[Webhook] = _store(request).list_webhooks(include_deleted=include_deleted)
    return hooks


@router.get("/webhooks/deliveries", response_model=None)
def webhook_deliveries(
    request: Request,
    webhook_id: int | None = None,
    status: str | None = None,
    limit: int | None = Query(None, ge=1),
    principal: Principal = MAINTAIN,
) -> list[WebhookDelivery]:
    """The delivery log, newest first."""
    cap: int = request.app.state.mltrail.config.max_page_size
    found: list[WebhookDelivery] = _store(request).webhook_deliveries(
        webhook_id, status, limit=min(limit or cap, cap)
    )
    return found


@router.post("/webhooks/deliver", response_model=None)
def deliver_webhooks(
    body: Deliver, request: Request, principal: Principal = MAINTAIN
) -> dict[str, int]:
    """Send the deliveries due now, from the server; ``{"attempted": n}``."""
    from mltrail.registry.webhooks import deliver_due

    return {"attempted": deliver_due(_store(request), limit=body.limit)}


@router.get("/webhooks/{webhook_id}", response_model=None)
def get_webhook(webhook_id: int, request: Request, principal: Principal = MAINTAIN) -> Webhook:
    hook: Webhook = _store(request).get_webhook(webhook_id)
    return hook


@router.delete("/webhooks/{webhook_id}", response_model=None)
def delete_webhook(webhook_id: int, request: Request, principal: Principal = MAINTAIN) -> Webhook:
    """Stop a webhook: nothing more is sent to it; its delivery log stays."""
    from mltrail.registry import webhooks

    actor = _actor(request, principal)
    return webhooks.delete_webhook(_store(request), webhook_id, actor=actor)
