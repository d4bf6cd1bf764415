"""/api/v1 routes: sweeps and their trials (what :class:`~mltrail.store.http.sweeps.SweepsMixin`
calls).

Readers list and read sweeps; writers create them, stop or resume them, and run agents
(claim a trial, renew its lease, report its end), all in the sweep's project. The
server checks a new sweep's configuration itself (:func:`mltrail.sweeps.config.parse_config`)
and claims trials with the store's atomic claim, so agents on any number of machines
can share a sweep through it. Bayesian proposals are made by the agents, so the server
needs no Optuna.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mltrail.entities import TrialReport, TrialRequest
from mltrail.ids import RUN_ID_RE
from mltrail.server.auth import Principal, body_scope, param_scope, require
from mltrail.wire import to_wire

__all__ = ["router"]

router = APIRouter()

_ID = RUN_ID_RE.pattern
_LONGEST_LEASE = 7 * 86400.0


async def _sweep_project(request: Request) -> str | None:
    """The access scope: the project of the sweep named in the path."""
    store = request.app.state.mltrail.store
    return str(await run_in_threadpool(store.sweep_project, request.path_params["sweep_id"]))


_READ = [require("reader", _sweep_project)]
_WRITE = [require("writer", _sweep_project)]
_Number = Annotated[int, Path(ge=0, lt=2**31)]


def _store(request: Request) -> Any:
    return request.app.state.mltrail.store


class SweepIn(BaseModel):
    sweep_id: str = Field(pattern=_ID)
    project: str = Field(min_length=1, max_length=250)
    name: str | None = Field(None, min_length=1, max_length=250)
    config: dict[str, Any]
    seed: int | None = Field(None, ge=0, lt=2**62)


class StateIn(BaseModel):
    state: Literal["running", "stopped", "canceled"]


class ProposalIn(BaseModel):
    params: dict[str, Any]
    internal: dict[str, Any]


class ClaimIn(BaseModel):
    agent: str = Field(min_length=1, max_length=250)
    run_id: str = Field(pattern=_ID)
    lease: float = Field(gt=0, le=_LONGEST_LEASE)
    expected: int = Field(ge=0, lt=2**31)
    proposal: ProposalIn | None = None


class ReportIn(BaseModel):
    agent: str = Field(min_length=1, max_length=250)
    status: Literal["running", "finished", "failed", "stopped", "killed", "crashed"]
    lease: float = Field(0.0, ge=0, le=_LONGEST_LEASE)
    value: float | None = None
    reason: str | None = Field(None, max_length=100_000)


@router.post("/sweeps", status_code=201)
def create_sweep(
    request: Request,
    body: SweepIn,
    principal: Annotated[Principal, require("writer", body_scope("project"))],
) -> dict[str, Any]:
    """Create a sweep from a W&B-style configuration (checked here)."""
    from mltrail.sweeps.config import new_sweep

    sweep = new_sweep(
        body.sweep_id,
        body.project,
        body.config,
        name=body.name,
        seed=body.seed,
        created_by=principal.name,
    )
    return to_wire(_store(request).create_sweep(sweep))  # type: ignore[no-any-return]


@router.get("/sweeps", dependencies=[require("reader", param_scope("project"))])
def list_sweeps(request: Request, project: str | None = None) -> list[dict[str, Any]]:
    """Sweeps (of ``project``, or all), newest first."""
    return [to_wire(s) for s in _store(request).list_sweeps(project)]


@router.get("/sweeps/{sweep_id}", dependencies=_READ)
def get_sweep(request: Request, sweep_id: str) -> dict[str, Any]:
    """A sweep with its state and its number of trials per status."""
    return to_wire(_store(request).get_sweep(sweep_id))  # type: ignore[no-any-return]


@router.post("/sweeps/{sweep_id}/state", dependencies=_WRITE)
def set_sweep_state(request: Request, sweep_id: str, body: StateIn) -> dict[str, Any]:
    """Stop (``stopped``; ``canceled`` stops running trials too) or resume (``running``)."""
    return to_wire(_store(request).set_sweep_state(sweep_id, body.state))  # type: ignore[no-any-return]


@router.get("/sweeps/{sweep_id}/report", dependencies=_READ)
def sweep_report(request: Request, sweep_id: str) -> dict[str, Any]:
    """What ``mltrail sweep show`` reads: trials ranked by the metric, the best one, the
    searched parameters and how much each matters (:func:`mltrail.sweeps.report.summary`)."""
    from mltrail.sweeps.report import summary

    store = _store(request)
    return summary(store.get_sweep(sweep_id), store.list_trials(sweep_id))


@router.get("/sweeps/{sweep_id}/trials", dependencies=_READ)
def list_trials(request: Request, sweep_id: str) -> list[dict[str, Any]]:
    """Every trial of the sweep, in order."""
    return [to_wire(t) for t in _store(request).list_trials(sweep_id)]


@router.post("/sweeps/{sweep_id}/trials:claim", dependencies=_WRITE)
def claim_trial(request: Request, sweep_id: str, body: ClaimIn) -> dict[str, Any]:
    """Take the next trial for ``agent`` (atomically; see the store's claim)."""
    proposal = None if body.proposal is None else body.proposal.model_dump()
    wanted = TrialRequest(body.agent, body.run_id, body.lease, body.expected, proposal)
    return to_wire(_store(request).claim_trial(sweep_id, wanted))  # type: ignore[no-any-return]


@router.post("/sweeps/{sweep_id}/trials/{number}/report", dependencies=_WRITE)
def report_trial(
    request: Request, sweep_id: str, number: _Number, body: ReportIn
) -> dict[str, str]:
    """An agent's heartbeat (``running``) or its trial's end:
    ``{"status": "ok" | "cancel" | "lost"}``."""
    report = TrialReport(**body.model_dump())
    return {"status": _store(request).report_trial(sweep_id, number, report)}
