"""The remote store's registry reads (over :class:`~mltrail.store.http.transport.Transport`).

Registry *changes* are not sent as store calls: the server runs them through its
registry service with the caller's roles (:class:`mltrail.client.remote_registry.RemoteRegistry`).
Only :meth:`RegistryMixin.update_model` changes something, and the server checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from mltrail.entities import (
    Approval,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    Webhook,
    WebhookDelivery,
)
from mltrail.errors import InvalidValueError
from mltrail.store.http.transport import Transport
from mltrail.wire import from_wire

__all__ = ["RegistryMixin", "model_path", "ref_text", "version_path"]

EVENTS_PAGE = 5000  # audit events per request when reading the whole trail


def model_path(name: str) -> str:
    """``/models/NAME`` with the name quoted as one path segment."""
    return "/models/" + quote(name, safe="")


def ref_text(ref: int | str | None) -> str:
    """A version reference as it goes in a path (None: the latest)."""
    return "latest" if ref is None else str(ref)


def version_path(name: str, ref: int | str | None) -> str:
    return f"{model_path(name)}/versions/{quote(ref_text(ref), safe='')}"


class RegistryMixin:
    _t: Transport

    # -- models and versions ---------------------------------------------------------

    def get_model(self, name: str) -> RegisteredModel:
        return from_wire(RegisteredModel, self._t.call("GET", model_path(name)))

    def list_models(self) -> list[RegisteredModel]:
        return [from_wire(RegisteredModel, m) for m in self._t.call("GET", "/models")]

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> RegisteredModel:
        """Change a model (the server checks the caller may; ``actor`` is the caller)."""
        body = {"description": description, "owner": owner, "reason": reason,
                "tags": None if tags is None else dict(tags)}  # fmt: skip
        headers = {"X-Mltrail-User": actor} if actor else None
        data = self._t.call("PATCH", model_path(name), json=body, headers=headers)
        return from_wire(RegisteredModel, data)

    def get_model_version(self, name: str, ref: int | str | None = None) -> ModelVersion:
        return from_wire(ModelVersion, self._t.call("GET", version_path(name, ref)))

    def model_versions(self, name: str, *, stage: str | None = None) -> list[ModelVersion]:
        data = self._t.call("GET", f"{model_path(name)}/versions", params={"stage": stage})
        return [from_wire(ModelVersion, v) for v in data]

    def models_of_artifact(self, project: str, name: str, version: int) -> list[ModelVersion]:
        """The model versions registered from one artifact version (lineage)."""
        params = {"project": project, "name": name, "version": version}
        data = self._t.call("GET", "/registry/artifact-models", params=params)
        return [from_wire(ModelVersion, v) for v in data]

    def model_card(self, name: str, ref: int | str | None = None) -> tuple[int, str | None]:
        data = self._t.call("GET", version_path(name, ref) + "/card")
        return int(data["version"]), data["card"]

    def signed_payload(self, name: str, version: int) -> tuple[str | None, str | None, str | None]:
        data = self._t.call("GET", version_path(name, version) + "/signed-payload")
        return data["payload"], data["signature"], data["key_id"]

    def signing_key(self, key_id: str) -> str | None:
        data = self._t.call("GET", "/registry/signing-keys/" + quote(key_id, safe=""))
        pem: str | None = data["public_pem"]
        return pem

    # -- audit trail, approvals, settings --------------------------------------------

    def registry_events(
        self, model: str | None = None, *, after_id: int = 0, limit: int | None = None
    ) -> list[RegistryEvent]:
        """The audit trail, oldest first; read page by page when ``limit`` is None."""
        out: list[RegistryEvent] = []
        while True:
            want = EVENTS_PAGE if limit is None else min(EVENTS_PAGE, limit - len(out))
            params = {"model": model, "after_id": after_id, "limit": want}
            page = [from_wire(RegistryEvent, e) for e in self._t.call(
                "GET", "/registry/events", params=params
            )]  # fmt: skip
            out.extend(page)
            if not page or len(page) < want or (limit is not None and len(out) >= limit):
                return out
            after_id = page[-1].id

    def list_approvals(
        self, name: str | None = None, *, status: str | None = None
    ) -> list[Approval]:
        params = {"model": name, "status": status}
        return [from_wire(Approval, a) for a in self._t.call(
            "GET", "/registry/approvals", params=params
        )]  # fmt: skip

    def get_registry_setting(self, key: str) -> Any:
        """The registry policy (the only setting the server shares), defaults filled in."""
        from mltrail.registry.service import POLICY_KEY

        if key != POLICY_KEY:
            raise InvalidValueError(f"the server does not share the registry setting {key!r}")
        return self._t.call("GET", "/registry/policy")

    # -- webhooks (reads) ------------------------------------------------------------

    def list_webhooks(self, *, include_deleted: bool = False) -> list[Webhook]:
        params = {"include_deleted": "true" if include_deleted else None}
        return [from_wire(Webhook, w) for w in self._t.call("GET", "/webhooks", params=params)]

    def get_webhook(self, webhook_id: int) -> Webhook:
        return from_wire(Webhook, self._t.call("GET", f"/webhooks/{int(webhook_id)}"))

    def webhook_deliveries(
        self,
        webhook_id: int | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> list[WebhookDelivery]:
        params = {"webhook_id": webhook_id, "status": status, "limit": limit}
        data = self._t.call("GET", "/webhooks/deliveries", params=params)
        return [from_wire(WebhookDelivery, d) for d in data]
