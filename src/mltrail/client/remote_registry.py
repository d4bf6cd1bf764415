"""The registry of an mltrail server, with the methods of the local :class:`Registry`.

With ``MLTRAIL_TRACKING_URI=http://...`` the client's registry methods come here: each
change is one request, and the server runs it through its own registry service with
the caller's roles, so the policy (protected stages, approvals by a second person,
allowed transitions) is enforced where the client cannot skip it. Webhooks are sent by
the server. The acting user is ``MLTRAIL_USER`` (else the login name) at the time of
the call, or, on a server with ``--auth``, the owner of the API token.

>>> client = mltrail.Client("http://127.0.0.1:5000")  # doctest: +SKIP
>>> client.promote("churn-xgboost@3", "production")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.entities import Approval, ArtifactVersion, ModelVersion, RegisteredModel, Webhook
from mltrail.store.http.registry import model_path, version_path
from mltrail.wire import from_wire

if TYPE_CHECKING:
    from mltrail.objects import ObjectStore
    from mltrail.registry.policy import Actor, Policy
    from mltrail.registry.service import RetentionReport
    from mltrail.store.http.transport import Transport

__all__ = ["RemoteRegistry"]


def _outcome(data: Mapping[str, Any]) -> ModelVersion | Approval | None:
    if data.get("approval") is not None:
        return from_wire(Approval, data["approval"])
    if data.get("version") is not None:
        return from_wire(ModelVersion, data["version"])
    return None


class RemoteRegistry:
    """:class:`~mltrail.registry.service.Registry`'s methods, carried out by the server."""

    def __init__(self, store: Any, objects: Callable[[], ObjectStore]) -> None:
        self.store = store
        self._objects = objects

    @property
    def _t(self) -> Transport:
        transport: Transport = self.store.transport
        return transport

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request on behalf of the current user (auth off: the server's actor)."""
        from mltrail.registry.policy import current_user

        return self._t.call(method, path, headers={"X-Mltrail-User": current_user()}, **kwargs)

    # -- policy ----------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        from mltrail.registry.policy import Policy

        return Policy.from_document(self._call("GET", "/registry/policy"))

    def actor(self, policy: Policy | None = None) -> Actor:
        """Who the server will take the caller for (as far as the policy says)."""
        return (policy or self.policy).actor()

    def set_policy(self, document: Mapping[str, Any], *, reason: str | None = None) -> Policy:
        from mltrail.registry.policy import Policy

        body = {"document": dict(document), "reason": reason}
        return Policy.from_document(self._call("PUT", "/registry/policy", json=body))

    # -- models and versions ---------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        description: str = "",
        owner: str | None = None,
        scheme: str = "semver",
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        body = {"name": name, "description": description, "owner": owner, "scheme": scheme,
                "tags": None if tags is None else dict(tags)}  # fmt: skip
        return from_wire(RegisteredModel, self._call("POST", "/models", json=body))

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> RegisteredModel:
        body = {"description": description, "owner": owner, "reason": reason,
                "tags": None if tags is None else dict(tags)}  # fmt: skip
        return from_wire(RegisteredModel, self._call("PATCH", model_path(name), json=body))

    def register(
        self,
        artifact: ArtifactVersion | str,
        name: str,
        *,
        run: Any = None,
        run_inputs: Sequence[ArtifactVersion] = (),
        project: str | None = None,
        run_id: str | None = None,
        when: str | None = None,
        bump: str = "minor",
        label: str | None = None,
        scheme: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        signature: Mapping[str, Any] | None = None,
        input_example: Any = None,
        description: str = "",
        sign: bool = True,
        reason: str | None = None,
    ) -> ModelVersion | None:
        """Register an uploaded artifact version (``ArtifactVersion`` or
        ``"project/name:v3"``) as the next version of ``name``; the server resolves the
        artifact, its run and the run's inputs itself (``run_inputs`` is not sent).
        With ``when``, None unless the source run matches."""
        if isinstance(artifact, ArtifactVersion):
            spec = f"{artifact.project}/{artifact.spec}"
        else:
            spec = artifact
        body = {
            "artifact": spec, "project": project,
            "run_id": run_id or (None if run is None else run.id), "when": when, "bump": bump,
            "label": label, "scheme": scheme,
            "metadata": None if metadata is None else dict(metadata),
            "signature": None if signature is None else dict(signature),
            "input_example": input_example, "description": description, "sign": sign,
            "reason": reason,
        }  # fmt: skip
        data = self._call("POST", f"{model_path(name)}/versions", json=body)
        version = _outcome(data)
        assert not isinstance(version, Approval)
        return version

    def update_version(
        self,
        name: str,
        ref: int | str | None,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        body = {"description": description, "reason": reason,
                "metadata": None if metadata is None else dict(metadata)}  # fmt: skip
        return from_wire(ModelVersion, self._call("PATCH", version_path(name, ref), json=body))

    def validate(self, name: str, ref: int | str | None = None) -> list[str]:
        data = self._call("GET", version_path(name, ref) + "/validation")
        return [str(p) for p in data["problems"]]

    # -- stages, aliases, approvals --------------------------------------------------

    def promote(
        self,
        name: str,
        ref: int | str | None,
        stage: str,
        *,
        archive_existing: bool | None = None,
        reason: str | None = None,
    ) -> ModelVersion | Approval:
        body = {"stage": stage, "archive_existing": archive_existing, "reason": reason}
        result = _outcome(self._call("POST", version_path(name, ref) + "/stage", json=body))
        assert result is not None
        return result

    def rollback(
        self,
        name: str,
        *,
        stage: str | None = None,
        alias: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        body = {"stage": stage, "alias": alias, "reason": reason}
        return from_wire(
            ModelVersion, self._call("POST", f"{model_path(name)}/rollback", json=body)
        )

    def set_alias(
        self, name: str, alias: str, ref: int | str | None, *, reason: str | None = None
    ) -> ModelVersion | Approval | None:
        from urllib.parse import quote

        path = f"{model_path(name)}/aliases/{quote(alias, safe='')}"
        if ref is None:
            self._call("DELETE", path, params={"reason": reason})
            return None
        return _outcome(self._call("PUT", path, json={"version": ref, "reason": reason}))

    def decide(self, approval_id: int, approve: bool, *, reason: str | None = None) -> Approval:
        verb = "approve" if approve else "reject"
        path = f"/registry/approvals/{int(approval_id)}/{verb}"
        return from_wire(Approval, self._call("POST", path, json={"reason": reason}))

    # -- cards, signatures, downloads ------------------------------------------------

    def update_card(
        self, name: str, ref: int | str | None, text: str, *, reason: str | None = None
    ) -> ModelVersion:
        body = {"text": text, "reason": reason}
        return from_wire(
            ModelVersion, self._call("PUT", version_path(name, ref) + "/card", json=body)
        )

    def verify(self, name: str, ref: int | str | None = None) -> ModelVersion:
        """The server checks the version's Ed25519 signature (SignatureInvalid if not)."""
        return from_wire(ModelVersion, self._call("GET", version_path(name, ref) + "/verify"))

    def download(
        self,
        name: str,
        ref: int | str | None,
        root: str | os.PathLike[str] | None = None,
        *,
        verify: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """The version's files: the server verifies the signature and names the artifact;
        its objects come through the objects API, each checked against its hash."""
        from mltrail.artifacts.ops import download

        params = {"verify": "true" if verify else "false"}
        data = self._call("GET", version_path(name, ref) + "/download", params=params)
        artifact = from_wire(ArtifactVersion, data["artifact"])
        return download(self._objects(), artifact, root, progress)

    # -- retention -------------------------------------------------------------------

    def retention(
        self,
        *,
        archive_versions_older_than_days: float | None = None,
        delete_runs_older_than_days: float | None = None,
        dry_run: bool = True,
    ) -> RetentionReport:
        from mltrail.registry.service import RetentionReport

        body = {
            "archive_versions_older_than_days": archive_versions_older_than_days,
            "delete_runs_older_than_days": delete_runs_older_than_days,
            "dry_run": dry_run,
        }
        data = self._call("POST", "/registry/retention", json=body)
        return RetentionReport(
            dry_run=bool(data["dry_run"]),
            archived_versions=[(str(m), int(v)) for m, v in data["archived_versions"]],
            deleted_runs=[str(r) for r in data["deleted_runs"]],
            kept_runs=int(data["kept_runs"]),
        )

    # -- webhooks --------------------------------------------------------------------

    def create_webhook(
        self,
        url: str,
        events: Sequence[str] | None = None,
        *,
        name: str | None = None,
        model: str | None = None,
        secret: str | None = None,
    ) -> tuple[Webhook, str]:
        body = {"url": url, "events": None if events is None else list(events), "name": name,
                "model": model, "secret": secret}  # fmt: skip
        data = self._call("POST", "/webhooks", json=body)
        return from_wire(Webhook, data["webhook"]), str(data["secret"])

    def delete_webhook(self, webhook_id: int) -> Webhook:
        return from_wire(Webhook, self._call("DELETE", f"/webhooks/{int(webhook_id)}"))

    def deliver_webhooks(self, *, limit: int = 1000) -> int:
        """The server sends the deliveries due now; returns how many it attempted."""
        data = self._call("POST", "/webhooks/deliver", json={"limit": limit})
        return int(data["attempted"])
