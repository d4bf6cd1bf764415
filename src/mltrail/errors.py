"""Every exception mltrail raises on purpose.

One root, :class:`MltrailError`. Each class carries the HTTP status the server answers
with and the exit code the CLI ends with, so neither needs a lookup table. Errors of
the libraries underneath (SQLAlchemy, botocore, httpx, OS errors) are translated at the
boundary where they happen and chained with ``from exc``::

    MltrailError
    ├── ConfigurationError                 bad URI, bad setting
    │   └── ExtraNotInstalled              optional dependency missing (says which extra)
    ├── ValidationError (ValueError)       the caller passed something unusable
    │   ├── InvalidKeyError                metric/param/tag key empty, too long, bad chars
    │   ├── InvalidValueError              metric value not a real number, etc.
    │   ├── ConfigConflictError            changing an already-logged param
    │   ├── InvalidArtifactPath            absolute, '..', NUL, escaping symlink
    │   ├── QuerySyntaxError               search expression does not parse
    │   ├── PipelineError                  pipeline file unusable: bad field, cycle, missing dep
    │   ├── SweepConfigError               sweep configuration unusable: bad key, range, method
    │   ├── MetadataValidationError        model version metadata fails the registry schema
    │   └── InputValidationError           a payload does not match a model's signature
    ├── NotFoundError (KeyError)
    │   ├── ProjectNotFound
    │   ├── RunNotFound
    │   ├── ArtifactNotFound
    │   ├── ObjectNotFound
    │   ├── ModelNotFound                  registered model or model version
    │   ├── ApprovalNotFound
    │   ├── WebhookNotFound
    │   └── SweepNotFound
    ├── ConflictError                      state does not allow the operation
    │   ├── RunFinishedError               log/update after finish()
    │   ├── RunAlreadyExists               init(resume="never") with a taken id
    │   ├── AlreadyExists                  a model or project name is taken
    │   ├── RunStillActive                 resume of a run another live process writes
    │   └── TransitionNotAllowed           stage change the registry policy forbids
    ├── PermissionDenied                   the actor lacks a role the policy requires
    ├── AuthenticationRequired             the server wants a valid API token
    ├── RequestTooLarge                    a request body over the server's limit
    ├── StoreError                         the metadata store failed
    │   ├── StoreUnavailable               database/server cannot be reached
    │   └── SchemaVersionError             store written by a newer/unknown mltrail
    ├── ObjectStoreError                   the blob store failed
    │   ├── ObjectCorrupted                content does not match its hash
    │   └── SignatureInvalid               a model's Ed25519 signature does not verify
    ├── SpoolError                         local spool file unreadable
    └── StageFailed                        a pipeline stage's command failed (its exit code)
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ApprovalNotFound",
    "ArtifactNotFound",
    "AuthenticationRequired",
    "ConfigConflictError",
    "ConfigurationError",
    "ConflictError",
    "ExtraNotInstalled",
    "InputValidationError",
    "InvalidArtifactPath",
    "InvalidKeyError",
    "InvalidValueError",
    "MetadataValidationError",
    "MltrailError",
    "ModelNotFound",
    "NotFoundError",
    "ObjectCorrupted",
    "ObjectNotFound",
    "ObjectStoreError",
    "PermissionDenied",
    "PipelineError",
    "ProjectNotFound",
    "QuerySyntaxError",
    "RequestTooLarge",
    "RunAlreadyExists",
    "RunFinishedError",
    "RunNotFound",
    "RunStillActive",
    "SchemaVersionError",
    "SignatureInvalid",
    "SpoolError",
    "StageFailed",
    "StoreError",
    "StoreUnavailable",
    "SweepConfigError",
    "SweepNotFound",
    "TransitionNotAllowed",
    "ValidationError",
    "WebhookNotFound",
    "error_class",
]


class MltrailError(Exception):
    """Root of every error mltrail raises on purpose.

    ``code`` is a stable machine-readable name (the class name in snake case unless
    set), ``http_status`` what the server answers, ``exit_code`` what the CLI exits with.
    """

    http_status: int = 500
    exit_code: int = 1
    code: str = "internal_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


class ConfigurationError(MltrailError):
    """A setting, URI or environment variable is wrong."""

    http_status = 500
    exit_code = 78  # EX_CONFIG
    code = "configuration_error"


class ExtraNotInstalled(ConfigurationError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    code = "extra_not_installed"

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package {module!r}, which is not installed",
            hint=f"pip install 'mltrail[{extra}]'",
        )
        self.module = module
        self.extra = extra


class ValidationError(MltrailError, ValueError):
    """The caller passed a value mltrail cannot use."""

    http_status = 400
    exit_code = 2
    code = "invalid_argument"


class InvalidKeyError(ValidationError):
    code = "invalid_key"


class InvalidValueError(ValidationError):
    code = "invalid_value"


class ConfigConflictError(ValidationError):
    """A param that is already logged was given a different value."""

    http_status = 409
    code = "config_conflict"


class InvalidArtifactPath(ValidationError):
    """An artifact name or a path inside an artifact is unsafe or malformed."""

    code = "invalid_artifact_path"


class QuerySyntaxError(ValidationError):
    """A search expression does not parse.

    ``position`` is the 0-based offset of the offending character in ``query``;
    ``str(err)`` shows the query with a caret under that position.
    """

    code = "query_syntax_error"

    def __init__(self, reason: str, query: str, position: int) -> None:
        self.reason = reason
        self.query = query
        self.position = position
        caret = " " * position + "^"
        super().__init__(f"{reason} at position {position}\n  {query}\n  {caret}")


class PipelineError(ValidationError):
    """The pipeline file is unusable: bad field, cycle, missing dep, shared output."""

    code = "pipeline_error"


class SweepConfigError(ValidationError):
    """A sweep configuration is unusable; the message names the key and the fix."""

    code = "sweep_config_error"


class MetadataValidationError(ValidationError):
    """Model version metadata fails the registry's JSON Schema; ``errors`` lists each field."""

    http_status = 422
    code = "metadata_validation_error"

    def __init__(self, message: str, errors: list[str], *, hint: str | None = None) -> None:
        self.errors = list(errors)
        super().__init__(message + "".join(f"\n  - {e}" for e in errors), hint=hint)


class InputValidationError(ValidationError):
    """A payload does not match a model version's signature; ``errors`` lists each problem."""

    http_status = 422
    code = "input_validation_error"

    def __init__(self, message: str, errors: list[str], *, hint: str | None = None) -> None:
        self.errors = list(errors)
        super().__init__(message + "".join(f"\n  - {e}" for e in errors), hint=hint)


class NotFoundError(MltrailError, KeyError):
    http_status = 404
    exit_code = 4
    code = "not_found"

    def __str__(self) -> str:  # KeyError would repr() the message
        return Exception.__str__(self)


class ProjectNotFound(NotFoundError):
    code = "project_not_found"


class RunNotFound(NotFoundError):
    code = "run_not_found"


class ArtifactNotFound(NotFoundError):
    code = "artifact_not_found"


class ObjectNotFound(NotFoundError):
    code = "object_not_found"


class ModelNotFound(NotFoundError):
    code = "model_not_found"


class ApprovalNotFound(NotFoundError):
    code = "approval_not_found"


class WebhookNotFound(NotFoundError):
    code = "webhook_not_found"


class SweepNotFound(NotFoundError):
    code = "sweep_not_found"


class ConflictError(MltrailError):
    http_status = 409
    exit_code = 5
    code = "conflict"


class RunFinishedError(ConflictError):
    code = "run_finished"


class RunAlreadyExists(ConflictError):
    code = "run_already_exists"


class AlreadyExists(ConflictError):
    """A name is taken (a registered model, a project)."""

    code = "already_exists"


class RunStillActive(ConflictError):
    code = "run_still_active"


class TransitionNotAllowed(ConflictError):
    code = "transition_not_allowed"


class PermissionDenied(MltrailError):
    """The actor does not hold a role the registry policy requires for this change."""

    http_status = 403
    exit_code = 9
    code = "permission_denied"


class AuthenticationRequired(MltrailError):
    """The server runs with ``--auth`` and the request had no valid token."""

    http_status = 401
    exit_code = 9
    code = "authentication_required"


class RequestTooLarge(ValidationError):
    """A request body is larger than the server accepts."""

    http_status = 413
    code = "request_too_large"


class StoreError(MltrailError):
    http_status = 500
    exit_code = 6
    code = "store_error"


class StoreUnavailable(StoreError):
    http_status = 503
    code = "store_unavailable"


class SchemaVersionError(StoreError):
    code = "schema_version_error"


class ObjectStoreError(MltrailError):
    http_status = 500
    exit_code = 7
    code = "object_store_error"


class ObjectCorrupted(ObjectStoreError):
    code = "object_corrupted"


class SignatureInvalid(ObjectStoreError):
    """A model version's Ed25519 signature is missing, unknown or does not verify."""

    code = "signature_invalid"


class SpoolError(MltrailError):
    exit_code = 8
    code = "spool_error"


class StageFailed(MltrailError):
    """A pipeline stage's command exited non-zero (or did not write its outputs); the
    CLI ends with the stage's own exit code."""

    code = "stage_failed"

    def __init__(self, stage: str, message: str, returncode: int) -> None:
        super().__init__(message, hint="fix it and run `mltrail repro` again")
        self.stage = stage
        self.returncode = returncode
        self.exit_code = returncode if 0 < returncode < 256 else 1


def _subclasses(cls: type[MltrailError]) -> list[type[MltrailError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


def error_class(code: str, http_status: int = 500) -> type[MltrailError]:
    """The class whose ``code`` is ``code`` (how the remote client rebuilds a server's
    error); an unknown code falls back to the most general class for the status."""
    for cls in _subclasses(MltrailError):
        if cls.__dict__.get("code") == code:
            return cls
    fallback = {400: ValidationError, 401: AuthenticationRequired, 403: PermissionDenied,
                404: NotFoundError, 409: ConflictError, 413: RequestTooLarge}  # fmt: skip
    return fallback.get(http_status, StoreError)
