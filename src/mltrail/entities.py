"""Frozen records shared by every layer (store, client, CLI, server)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RUN_STATUSES",
    "TERMINAL_STATUSES",
    "AliasEvent",
    "Approval",
    "ArtifactVersion",
    "LineageNode",
    "ManifestEntry",
    "MetricPoint",
    "MetricSummary",
    "ModelVersion",
    "Project",
    "RegisteredModel",
    "RegistryEvent",
    "RunRecord",
    "Sweep",
    "Trial",
    "TrialClaim",
    "TrialReport",
    "TrialRequest",
    "Webhook",
    "WebhookDelivery",
]

RUN_STATUSES = ("running", "finished", "failed", "killed", "crashed")
TERMINAL_STATUSES = frozenset({"finished", "failed", "killed", "crashed"})


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One logged value of a metric series. ``value`` may be NaN or ±inf."""

    step: int
    value: float
    timestamp: float

    def __eq__(self, other: object) -> bool:  # NaN == NaN for points, unlike floats
        if not isinstance(other, MetricPoint):
            return NotImplemented
        same_value = self.value == other.value or (
            math.isnan(self.value) and math.isnan(other.value)
        )
        return self.step == other.step and same_value and self.timestamp == other.timestamp

    def __hash__(self) -> int:
        return hash((self.step, self.timestamp))


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """Per (run, key) aggregate kept up to date on every write.

    ``last`` is the value at the highest step (ties: the latest write). ``min`` and
    ``max`` ignore NaN; they are None when every value is NaN.
    """

    key: str
    last: float
    last_step: int
    last_timestamp: float
    min: float | None
    max: float | None
    count: int


@dataclass(frozen=True, slots=True)
class RunRecord:
    """Everything stored about a run, as the read side returns it."""

    id: str
    project: str
    name: str
    status: str
    created_at: float
    started_at: float
    ended_at: float | None
    heartbeat_at: float | None
    exit_reason: str | None
    exit_code: int | None
    user: str | None
    group: str | None
    job_type: str | None
    parent_id: str | None
    notes: str
    config: dict[str, Any] = field(default_factory=dict)  # flattened "a.b" -> value
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    summary_overrides: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, Any]:
        """Last value of every metric, overridden by values set explicitly.

        System metrics (``system/...``) are left out, as in W&B; they are in ``metrics``.
        """
        out: dict[str, Any] = {
            k: s.last for k, s in sorted(self.metrics.items()) if not k.startswith("system/")
        }
        out.update(self.summary_overrides)
        return out

    @property
    def duration(self) -> float | None:
        end = self.ended_at if self.ended_at is not None else self.heartbeat_at
        return None if end is None else max(0.0, end - self.started_at)


@dataclass(frozen=True, slots=True)
class ArtifactVersion:
    """One version of a named artifact: a manifest (path -> object) and its metadata."""

    project: str
    name: str
    type: str
    version: int
    digest: str  # object id of the manifest
    size: int
    file_count: int
    metadata: dict[str, Any]
    aliases: tuple[str, ...]
    created_at: float
    run_id: str | None
    reference: bool

    @property
    def label(self) -> str:
        return f"v{self.version}"

    @property
    def spec(self) -> str:
        return f"{self.name}:v{self.version}"


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    path: str  # posix, relative to the artifact root
    oid: str
    size: int
    ref: str | None = None  # where a reference artifact's file stays


@dataclass(frozen=True, slots=True)
class AliasEvent:
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str | None
    reason: str | None
    at: float


@dataclass(frozen=True, slots=True)
class LineageNode:
    kind: str  # "run" | "artifact"
    id: str  # run id or "name:vN"
    label: str
    children: tuple[LineageNode, ...] = ()


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    description: str
    owner: str | None
    scheme: str  # version labels: semver | date | hash | hybrid
    tags: dict[str, str]
    aliases: dict[str, int]  # alias -> version number
    latest_version: int | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One numbered version of a registered model, pointing at a model artifact version."""

    model: str
    version: int
    label: str  # the scheme's label: "2.1.0", "2026.11.23.2", "a1b2c3d", "2.1.0+a1b2c3d"
    stage: str
    aliases: tuple[str, ...]
    artifact: str  # "project/name:vN"
    artifact_digest: str  # the artifact manifest's object id
    run_id: str | None
    description: str
    metadata: dict[str, Any]
    validation_errors: tuple[str, ...]  # empty when the metadata passes the schema
    signature: dict[str, Any] | None  # model input/output signature
    input_example: Any
    signed: bool  # carries an Ed25519 signature
    signing_key_id: str | None
    created_by: str | None
    created_at: float

    @property
    def valid(self) -> bool:
        return not self.validation_errors

    @property
    def spec(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One row of the append-only audit trail."""

    id: int
    model: str | None
    version: int | None
    action: str  # e.g. version.created, stage.changed, alias.moved, approval.requested
    target: str | None  # the alias or stage, the field
    from_value: str | None
    to_value: str | None
    actor: str | None
    reason: str | None
    at: float
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Approval:
    id: int
    model: str
    version: int
    kind: str  # stage | alias
    target: str
    status: str  # pending | approved | rejected | cancelled
    requested_by: str | None
    requested_at: float
    reason: str | None
    decided_by: str | None
    decided_at: float | None
    decision_reason: str | None


@dataclass(frozen=True, slots=True)
class Webhook:
    """A registered receiver of registry events (its secret is never part of this record)."""

    id: int
    name: str
    url: str
    events: tuple[str, ...]  # empty: every event
    model: str | None  # None: every model
    active: bool
    created_by: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    id: int
    webhook_id: int
    event_id: int
    action: str
    status: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str | None
    created_at: float
    delivered_at: float | None


@dataclass(frozen=True, slots=True)
class Sweep:
    """A hyperparameter search: its configuration (W&B's format), state and trial counts.

    ``state`` is ``running``, ``stopped`` (no new trials; running ones finish),
    ``canceled`` (running trials are stopped too) or ``finished`` (nothing left to try,
    ``run_cap`` reached or the metric's ``target`` met). ``counts`` has the number of
    trials per status.
    """

    id: str
    project: str
    name: str
    method: str  # grid | random | bayes
    metric: str | None
    goal: str  # minimize | maximize
    state: str
    config: dict[str, Any]
    seed: int
    run_cap: int | None
    max_retries: int
    created_by: str | None
    created_at: float
    updated_at: float
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Trial:
    """One point of a sweep's search, run as the run ``run_id``.

    ``status``: ``pending`` (waiting for an agent: a retry), ``running``, ``finished``,
    ``failed``, ``crashed`` (its agent stopped reporting), ``stopped`` (ended early by
    ``early_terminate``) or ``killed`` (the sweep was canceled). ``params`` is the
    configuration the run gets (nested as in the sweep's ``parameters``); ``internal``
    the searched coordinates it came from (what the Bayesian search learns from).
    """

    sweep_id: str
    number: int
    run_id: str | None
    status: str
    params: dict[str, Any]
    internal: dict[str, Any]
    value: float | None
    attempt: int
    retry_of: int | None
    agent: str | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    heartbeat_at: float | None
    lease_until: float | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class TrialClaim:
    """What an agent's claim got: ``outcome`` is ``claimed`` (``trial`` is now its own),
    ``stale`` (another agent added a trial first: look again and propose anew),
    ``wait`` (nothing to start now, but trials still run elsewhere) or ``done``
    (the sweep takes no more trials: ``sweep_state`` says why)."""

    outcome: str
    trial: Trial | None
    sweep_state: str


@dataclass(frozen=True, slots=True)
class TrialRequest:
    """An agent asking for a trial. ``proposal`` (``{"params": ..., "internal": ...}``)
    is what it would try next, computed from the ``expected`` trials it saw (None: the
    search has nothing left); the trial runs as run ``run_id``, the agent's own for
    ``lease`` seconds unless renewed."""

    agent: str
    run_id: str
    lease: float
    expected: int
    proposal: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TrialReport:
    """An agent's word on its trial: ``running`` renews its lease for ``lease`` seconds;
    an end status (finished, failed, stopped, killed, crashed) records the end with the
    metric's ``value`` and the ``reason``."""

    agent: str
    status: str = "running"
    lease: float = 0.0
    value: float | None = None
    reason: str | None = None
