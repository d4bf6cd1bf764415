"""The model registry on ``mltrail.Client``.

Models are named by a spec: ``name`` (latest), ``name@3`` (version number),
``name@2.1.0`` (label), ``name@champion`` (alias) or ``name@production`` (stage).

>>> client = mltrail.Client()  # doctest: +SKIP
>>> mv = client.register_model("mnist/cnn:v3", "digits-cnn",
...                            when="metrics.val_accuracy >= 0.9")  # doctest: +SKIP
>>> client.promote("digits-cnn@%d" % mv.version, "production")  # doctest: +SKIP
>>> client.download_model("digits-cnn@production", "deploy/")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.entities import (
    Approval,
    ArtifactVersion,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
)
from mltrail.errors import InvalidValueError

if TYPE_CHECKING:
    from mltrail.client.remote_registry import RemoteRegistry
    from mltrail.objects import ObjectStore
    from mltrail.registry.policy import Policy
    from mltrail.registry.service import Registry, RetentionReport
    from mltrail.store import Store

__all__ = ["RegistryClientMixin"]


def _spec(spec: str | ModelVersion) -> tuple[str, int | str | None]:
    from mltrail.registry.service import parse_model_spec

    if isinstance(spec, ModelVersion):
        return spec.model, spec.version
    return parse_model_spec(spec)


class RegistryClientMixin:
    """Registry methods of :class:`mltrail.Client`."""

    # provided by Client
    _store: Store
    _objects: Callable[[], ObjectStore]

    @property
    def registry(self) -> Registry | RemoteRegistry:
        """The registry service: local, or the server's when the store is remote (the
        server then enforces the policy with the caller's roles)."""
        if getattr(self._store, "remote", False):
            from mltrail.client.remote_registry import RemoteRegistry

            return RemoteRegistry(self._store, self._objects)
        from mltrail.registry.service import Registry

        return Registry(self._store, self._objects)

    @property
    def _reg_store(self) -> Any:
        return self._store

    # -- models ----------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        description: str = "",
        scheme: str = "semver",
        tags: Mapping[str, str] | None = None,
        owner: str | None = None,
    ) -> RegisteredModel:
        """Register a model name (``scheme``: semver, date, hash or hybrid labels)."""
        return self.registry.create_model(
            name, description=description, scheme=scheme, tags=tags, owner=owner
        )

    def get_model(self, name: str) -> RegisteredModel:
        return self._reg_store.get_model(name)  # type: ignore[no-any-return]

    def list_models(self) -> list[RegisteredModel]:
        return self._reg_store.list_models()  # type: ignore[no-any-return]

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> RegisteredModel:
        from mltrail.client.remote_registry import RemoteRegistry
        from mltrail.registry.policy import current_user
        from mltrail.registry.webhooks import dispatch_in_background

        registry = self.registry
        if isinstance(registry, RemoteRegistry):
            return registry.update_model(
                name, description=description, owner=owner, tags=tags, reason=reason
            )
        registry._writer(registry.policy, f"change {name}")
        model: RegisteredModel = self._reg_store.update_model(
            name, description=description, owner=owner, tags=tags, actor=current_user(),
            reason=reason,
        )  # fmt: skip
        dispatch_in_background(self._store)
        return model

    # -- versions --------------------------------------------------------------------

    def register_model(
        self,
        source: str | os.PathLike[str] | ArtifactVersion,
        name: str,
        *,
        project: str | None = None,
        run_id: str | None = None,
        when: str | None = None,
        bump: str = "minor",
        label: str | None = None,
        scheme: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        input_example: Any = None,
        signature: Mapping[str, Any] | None = None,
        description: str = "",
        sign: bool = True,
        reason: str | None = None,
    ) -> ModelVersion | None:
        """Register a model artifact version as the next version of ``name``.

        ``source`` is an artifact (``ArtifactVersion`` or ``"project/name:v3"``) or a
        local file/folder (logged first as a ``model`` artifact). The source run is the
        artifact's producing run unless ``run_id`` says otherwise; its params, metrics,
        datasets and packages fill the metadata. With ``when`` (the query language, e.g.
        ``"metrics.val_accuracy >= 0.9"``), the version is registered only if the source
        run matches, else None is returned. ``input_example`` (numpy, pandas, dict of
        arrays, records) gives the signature unless ``signature`` is passed.
        """
        from mltrail.client.remote_registry import RemoteRegistry

        registry = self.registry
        if isinstance(registry, RemoteRegistry):
            return self._register_remote(
                registry, source, name, project=project, run_id=run_id, when=when, bump=bump,
                label=label, scheme=scheme, metadata=metadata, input_example=input_example,
                signature=signature, description=description, sign=sign, reason=reason,
            )  # fmt: skip
        path, artifact = self._model_source(source, project)
        rid = run_id or (None if artifact is None else artifact.run_id)
        run = None if rid is None else self._store.get_run(rid)
        if when is not None:
            from mltrail.query import parse, to_text

            tree = parse(when)  # alone, so a gate cannot reach outside its parentheses
            if tree is not None:
                if run is None:
                    raise InvalidValueError(
                        "register_model(when=...) needs a source run to test",
                        hint="pass run_id=, or register an artifact logged by a run",
                    )
                gate = f"run_id = '{run.id}' and ({to_text(tree)})"
                if not self._reg_store.count_runs(None, gate):
                    return None  # nothing is uploaded or registered
        if artifact is None:
            client: Any = self  # a Client: artifacts are its own methods
            where = project or (None if run is None else run.project)
            artifact = client.put_artifact(path, name=name, type="model", project=where)
            assert artifact is not None
        example = None
        if input_example is not None:
            from mltrail.registry.signature import example_payload, infer_signature

            if signature is None:
                signature = infer_signature(input_example)
            example = example_payload(input_example)
        inputs = []
        if run is not None:
            inputs = self._reg_store.run_artifacts(run.id)["in"]
        return registry.register(
            artifact, name, run=run, run_inputs=inputs, bump=bump, label=label, scheme=scheme,
            metadata=metadata, signature=signature, input_example=example,
            description=description, sign=sign, reason=reason,
        )  # fmt: skip

    def _register_remote(
        self,
        registry: RemoteRegistry,
        source: str | os.PathLike[str] | ArtifactVersion,
        name: str,
        *,
        project: str | None,
        input_example: Any,
        signature: Mapping[str, Any] | None,
        **options: Any,
    ) -> ModelVersion | None:
        """Register through the server: it resolves the (uploaded) artifact and its run,
        tests ``when`` and checks the policy. A local file or folder is uploaded first
        as a ``model`` artifact (only if the gate passes, when there is one)."""
        from mltrail.errors import ArtifactNotFound, ValidationError

        example = None
        if input_example is not None:
            from mltrail.registry.signature import example_payload, infer_signature

            if signature is None:
                signature = infer_signature(input_example)
            example = example_payload(input_example)

        def register(artifact: str | ArtifactVersion) -> ModelVersion | None:
            return registry.register(
                artifact, name, project=project, signature=signature, input_example=example,
                **options,
            )  # fmt: skip

        if isinstance(source, ArtifactVersion):
            return register(source)
        if isinstance(source, str):
            try:
                return register(source)  # the server resolves "project/name:v3"
            except (ArtifactNotFound, ValidationError):
                if not Path(source).exists():
                    raise
        path = Path(source)
        if not path.exists():
            raise InvalidValueError(f"{path} does not exist")
        if options.get("when") is not None:
            raise InvalidValueError(
                "register_model(when=...) of a local path has no source run to test",
                hint="log the files from the run as an artifact and register that",
            )
        client: Any = self  # a Client: artifacts are its own methods
        uploaded = client.put_artifact(path, name=name, type="model", project=project)
        return register(uploaded)

    def _model_source(
        self, source: str | os.PathLike[str] | ArtifactVersion, project: str | None
    ) -> tuple[Path | None, ArtifactVersion | None]:
        """``(None, artifact)``, or ``(path, None)`` for a local file or folder to log
        first: a ``PathLike``, or a string that names no artifact but an existing path."""
        from mltrail.errors import ArtifactNotFound, ValidationError

        if isinstance(source, ArtifactVersion):
            return None, source
        if isinstance(source, str):
            try:
                found = self._reg_store.get_artifact_version(*_artifact_ref(source, project))
                return None, found
            except (ArtifactNotFound, ValidationError):
                if not Path(source).exists():
                    raise
        path = Path(source)
        if not path.exists():
            raise InvalidValueError(f"{path} does not exist")
        return path, None

    def get_model_version(self, spec: str | ModelVersion) -> ModelVersion:
        """``name``, ``name@3``, ``name@2.1.0``, ``name@champion`` or ``name@production``."""
        name, ref = _spec(spec)
        return self._reg_store.get_model_version(name, ref)  # type: ignore[no-any-return]

    def model_versions(self, name: str, *, stage: str | None = None) -> list[ModelVersion]:
        return self._reg_store.model_versions(name, stage=stage)  # type: ignore[no-any-return]

    def update_model_version(
        self,
        spec: str | ModelVersion,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Change the description, or merge keys into the metadata (re-validated)."""
        name, ref = _spec(spec)
        return self.registry.update_version(
            name, ref, description=description, metadata=metadata, reason=reason
        )

    def validate_model(self, spec: str | ModelVersion) -> list[str]:
        """Each field the version's metadata is missing or gets wrong (empty: valid)."""
        name, ref = _spec(spec)
        return self.registry.validate(name, ref)

    def validate_input(self, spec: str | ModelVersion, data: Any) -> None:
        """Check a payload against the version's signature (InputValidationError lists
        every problem)."""
        from mltrail.registry.signature import validate_input

        version = spec if isinstance(spec, ModelVersion) else self.get_model_version(spec)
        if version.signature is None:
            raise InvalidValueError(
                f"{version.model} version {version.version} has no signature to check against",
                hint="register it with input_example=... or signature=...",
            )
        validate_input(version.signature, data)

    # -- stages, aliases, approvals --------------------------------------------------

    def promote(
        self,
        spec: str | ModelVersion,
        stage: str,
        *,
        archive_existing: bool | None = None,
        reason: str | None = None,
    ) -> ModelVersion | Approval:
        """Move a version to ``stage``; the previous holders of an exclusive stage (by
        default ``production``) are archived. Returns the pending :class:`Approval`
        instead when the policy asks a second person to approve."""
        name, ref = _spec(spec)
        return self.registry.promote(
            name, ref, stage, archive_existing=archive_existing, reason=reason
        )

    def set_model_alias(
        self, name: str, alias: str, version: int | str, *, reason: str | None = None
    ) -> ModelVersion | Approval | None:
        """Point ``alias`` (e.g. ``champion``) at a version (number or label)."""
        return self.registry.set_alias(name, alias, version, reason=reason)

    def delete_model_alias(self, name: str, alias: str, *, reason: str | None = None) -> None:
        self.registry.set_alias(name, alias, None, reason=reason)

    def rollback_model(
        self,
        name: str,
        *,
        stage: str | None = None,
        alias: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Give a stage (or alias) back to the version that held it before. Recorded."""
        return self.registry.rollback(name, stage=stage, alias=alias, reason=reason)

    def model_history(self, name: str | None = None) -> list[RegistryEvent]:
        """The audit trail (one model's, or the whole registry's), oldest first."""
        return self._reg_store.registry_events(name)  # type: ignore[no-any-return]

    def list_approvals(
        self, name: str | None = None, *, status: str | None = "pending"
    ) -> list[Approval]:
        return self._reg_store.list_approvals(name, status=status)  # type: ignore[no-any-return]

    def approve(self, approval_id: int, *, reason: str | None = None) -> Approval:
        """Approve a pending request (someone other than the requester) and carry it out."""
        return self.registry.decide(approval_id, True, reason=reason)

    def reject(self, approval_id: int, *, reason: str | None = None) -> Approval:
        return self.registry.decide(approval_id, False, reason=reason)

    # -- cards, signatures, files ----------------------------------------------------

    def model_card(self, spec: str | ModelVersion) -> str:
        name, ref = _spec(spec)
        number, card = self._reg_store.model_card(name, ref)
        return card or f"# {name} version {number}\n\n_No card._\n"

    def update_model_card(
        self, spec: str | ModelVersion, text: str, *, reason: str | None = None
    ) -> ModelVersion:
        name, ref = _spec(spec)
        return self.registry.update_card(name, ref, text, reason=reason)

    def verify_model(self, spec: str | ModelVersion) -> ModelVersion:
        """Check the Ed25519 signature (SignatureInvalid says what does not match)."""
        name, ref = _spec(spec)
        return self.registry.verify(name, ref)

    def download_model(
        self,
        spec: str | ModelVersion,
        root: str | os.PathLike[str] | None = None,
        *,
        verify: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """The version's files, after checking its signature and every file's hash."""
        name, ref = _spec(spec)
        return self.registry.download(name, ref, root, verify=verify, progress=progress)

    # -- policy and retention --------------------------------------------------------

    def registry_policy(self) -> Policy:
        return self.registry.policy

    def set_registry_policy(
        self, document: Mapping[str, Any], *, reason: str | None = None
    ) -> Policy:
        """Replace the registry policy (stages, transitions, protection, roles, naming,
        metadata schema); see :mod:`mltrail.registry.policy`. Audited."""
        return self.registry.set_policy(document, reason=reason)

    def apply_retention(
        self,
        *,
        archive_versions_older_than_days: float | None = None,
        delete_runs_older_than_days: float | None = None,
        dry_run: bool = True,
    ) -> RetentionReport:
        return self.registry.retention(
            archive_versions_older_than_days=archive_versions_older_than_days,
            delete_runs_older_than_days=delete_runs_older_than_days,
            dry_run=dry_run,
        )


def _artifact_ref(spec: str, project: str | None) -> tuple[str, str, int | str | None]:
    from mltrail.artifacts.names import parse_spec, split_project

    proj, rest = split_project(spec)
    name, ref = parse_spec(rest)
    return proj or project or "", name, ref
