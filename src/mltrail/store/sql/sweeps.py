"""Sweeps and their trials in SQL: the shared state every agent pulls work from.

The store decides nothing about the search itself (grid, random, Bayesian: that is
:mod:`mltrail.sweeps`, above). What it guarantees is that agents in any number of
processes and machines never take the same trial:

- A claim is one transaction that first locks the sweep's row (``SELECT ... FOR
  UPDATE`` on PostgreSQL; SQLite's write transactions are serialised already). Inside
  it, trials whose lease ran out become ``crashed`` (and are queued again as a new
  ``pending`` row while ``max_retries`` allows), then the agent gets the oldest pending
  trial, or its proposal becomes the next trial, but only if no trial was added since
  the agent looked (``expected``): otherwise the claim is ``stale`` and the agent
  proposes again from what is there now.
- A running trial belongs to its agent while the agent renews its lease
  (:meth:`SweepStoreMixin.report_trial`); reporting its end checks the owner too, so
  an agent that lost its lease cannot overwrite the retry's result.

The sweep's run (the parent of every trial's run, same id as the sweep) is kept in
step: running while trials run, finished (or killed, for a stopped sweep) otherwise.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from sqlalchemy import Connection, and_, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mltrail.entities import Sweep, Trial, TrialClaim, TrialReport, TrialRequest
from mltrail.errors import (
    AlreadyExists,
    ConflictError,
    InvalidValueError,
    StoreError,
    SweepNotFound,
)
from mltrail.ids import is_valid_run_id
from mltrail.store.sql import schema as s

__all__ = ["FINAL_TRIAL_STATUSES", "SWEEP_STATES", "SweepStoreMixin"]

_S = s.sweeps.c
_T = s.sweep_trials.c
_R = s.runs.c

SWEEP_STATES = ("running", "stopped", "canceled", "finished")
#: How an agent may end its trial.
FINAL_TRIAL_STATUSES = ("finished", "failed", "stopped", "killed", "crashed")
_CRASH_REASON = "its agent stopped renewing the lease (killed, or lost its connection)"
#: Columns stored as the Sweep record has them.
_COPIED = ("id", "name", "method", "metric", "goal", "seed", "run_cap", "max_retries", "created_by")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _effective_status(now: float) -> Any:
    """A running trial whose lease ran out reads as crashed before a claim reaps it."""
    return case((and_(_T.status == "running", _T.lease_until < now), "crashed"), else_=_T.status)


class SweepStoreMixin:
    """Sweep methods of :class:`~mltrail.store.sql.store.SqlStore`."""

    # provided by SqlStore
    _write: Any
    _read: Any
    _project: Any

    # -- sweeps -----------------------------------------------------------------------

    def create_sweep(self, sweep: Sweep) -> Sweep:
        """Record a new sweep (built by :func:`mltrail.sweeps.config.new_sweep`, which
        checked its config); its state, counts and times are the store's."""
        if not is_valid_run_id(sweep.id):
            raise InvalidValueError(
                f"sweep id {sweep.id!r} is not valid: use 1-48 letters, digits, '-' or '_'"
            )
        row = {c: getattr(sweep, c) for c in _COPIED}
        now = time.time()
        row.update(
            state="running",
            config_json=json.dumps(sweep.config, default=str),
            created_at=now,
            updated_at=now,
        )
        try:
            with self._write() as conn:
                row["project_id"] = self._project(conn, sweep.project, create=True).id
                conn.execute(insert(s.sweeps).values(row))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise AlreadyExists(f"a sweep with id {sweep.id!r} already exists") from exc
            raise
        return self.get_sweep(sweep.id)

    def get_sweep(self, sweep_id: str) -> Sweep:
        with self._read() as conn:
            found = self._sweeps(conn, _S.id == sweep_id)
        if not found:
            raise SweepNotFound(
                f"no sweep with id {sweep_id!r}", hint="list the sweeps with: mltrail sweep ls"
            )
        return found[0]

    def list_sweeps(self, project: str | None = None) -> list[Sweep]:
        """Sweeps, newest first (of one project, or all)."""
        with self._read() as conn:
            if project is None:
                return self._sweeps(conn, None)
            proj = self._project(conn, project, create=False)
            return self._sweeps(conn, _S.project_id == proj.id)

    def sweep_project(self, sweep_id: str) -> str:
        """The project a sweep belongs to (the server's access checks)."""
        return self.get_sweep(sweep_id).project

    def _sweeps(self, conn: Connection, where: Any) -> list[Sweep]:
        project_name = (
            select(s.projects.c.name).where(s.projects.c.id == _S.project_id).scalar_subquery()
        )
        q = select(s.sweeps, project_name.label("project_name")).order_by(
            _S.created_at.desc(), _S.id
        )
        if where is not None:
            q = q.where(where)
        rows = conn.execute(q).all()
        counts: dict[str, dict[str, int]] = {r.id: {} for r in rows}
        if rows:
            status = _effective_status(time.time()).label("st")
            cq = (
                select(_T.sweep_id, status, func.count())
                .where(_T.sweep_id.in_(list(counts)))
                .group_by(_T.sweep_id, status)
            )
            for sweep_id, st, n in conn.execute(cq):
                counts[sweep_id][st] = counts[sweep_id].get(st, 0) + int(n)
        return [
            Sweep(
                **{c: getattr(r, c) for c in (*_COPIED, "state", "created_at", "updated_at")},
                project=r.project_name,
                config=json.loads(r.config_json),
                counts=dict(sorted(counts[r.id].items())),
            )
            for r in rows
        ]

    def set_sweep_state(self, sweep_id: str, state: str) -> Sweep:
        """``stopped``/``canceled`` (from running) or ``running`` again (resume)."""
        if state not in ("running", "stopped", "canceled"):
            raise InvalidValueError(
                f"cannot set a sweep's state to {state!r}",
                hint="stop it ('stopped', or 'canceled' to stop running trials too) "
                "or resume it ('running')",
            )
        now = time.time()
        with self._write() as conn:
            row = self._lock_sweep(conn, sweep_id)
            if row.state == "finished" and state != row.state:
                raise ConflictError(
                    f"sweep {sweep_id} is finished: it has nothing left to try",
                    hint="create a new sweep (mltrail sweep CONFIG) to search further",
                )
            if row.state != state:
                conn.execute(
                    update(s.sweeps).where(_S.id == sweep_id).values(state=state, updated_at=now)
                )
                self._settle_sweep_run(conn, sweep_id, state, now)
        return self.get_sweep(sweep_id)

    def _lock_sweep(self, conn: Connection, sweep_id: str) -> Any:
        """The sweep's row, locked until the transaction ends (claims are serialised)."""
        row = conn.execute(select(s.sweeps).where(_S.id == sweep_id).with_for_update()).first()
        if row is None:
            raise SweepNotFound(
                f"no sweep with id {sweep_id!r}", hint="list the sweeps with: mltrail sweep ls"
            )
        return row

    # -- trials -------------------------------------------------------------------------

    def list_trials(self, sweep_id: str) -> list[Trial]:
        """Every trial of the sweep, in order (raises SweepNotFound for an unknown id)."""
        now = time.time()
        q = (
            select(s.sweep_trials, _effective_status(now).label("st"))
            .where(_T.sweep_id == sweep_id)
            .order_by(_T.number)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
            if not rows and conn.execute(select(_S.id).where(_S.id == sweep_id)).first() is None:
                raise SweepNotFound(f"no sweep with id {sweep_id!r}")
        return [_trial(r, r.st) for r in rows]

    def claim_trial(self, sweep_id: str, request: TrialRequest) -> TrialClaim:
        """Take the next trial for ``request.agent``, atomically (see the module docstring)."""
        if not is_valid_run_id(request.run_id):
            raise InvalidValueError(f"run id {request.run_id!r} is not valid")
        now = time.time()
        with self._write() as conn:
            row = self._lock_sweep(conn, sweep_id)
            self._reap(conn, row, now)
            if row.state != "running":
                return TrialClaim("done", None, row.state)
            owned = {
                "status": "running",
                "agent": request.agent,
                "run_id": request.run_id,
                "started_at": now,
                "heartbeat_at": now,
                "lease_until": now + request.lease,
            }
            pending = conn.execute(
                select(_T.number)
                .where((_T.sweep_id == sweep_id) & (_T.status == "pending"))
                .order_by(_T.number)
                .limit(1)
            ).scalar()
            if pending is not None:
                conn.execute(
                    update(s.sweep_trials)
                    .where((_T.sweep_id == sweep_id) & (_T.number == pending))
                    .values(**owned)
                )
                return self._claimed(conn, row, pending, now)
            total, fresh, running = conn.execute(
                select(
                    func.count(),
                    func.count(case((_T.retry_of.is_(None), 1))),
                    func.count(case((_T.status == "running", 1))),
                ).where(_T.sweep_id == sweep_id)
            ).one()
            proposal = request.proposal
            if proposal is not None and (row.run_cap is None or fresh < row.run_cap):
                if request.expected != total:
                    return TrialClaim("stale", None, row.state)
                conn.execute(
                    insert(s.sweep_trials).values(
                        sweep_id=sweep_id,
                        number=total,
                        attempt=0,
                        retry_of=None,
                        params_json=json.dumps(proposal.get("params", {}), default=str),
                        internal_json=json.dumps(proposal.get("internal", {}), default=str),
                        created_at=now,
                        **owned,
                    )
                )
                return self._claimed(conn, row, total, now)
            if running:
                return TrialClaim("wait", None, row.state)
            conn.execute(
                update(s.sweeps).where(_S.id == sweep_id).values(state="finished", updated_at=now)
            )
            self._settle_sweep_run(conn, sweep_id, "finished", now)
            return TrialClaim("done", None, "finished")

    def _claimed(self, conn: Connection, sweep: Any, number: int, now: float) -> TrialClaim:
        self._settle_sweep_run(conn, sweep.id, sweep.state, now)
        row = conn.execute(
            select(s.sweep_trials).where((_T.sweep_id == sweep.id) & (_T.number == number))
        ).one()
        return TrialClaim("claimed", _trial(row, row.status), sweep.state)

    def _reap(self, conn: Connection, sweep: Any, now: float) -> None:
        """Running trials whose lease ran out: crashed, and queued again if retries remain."""
        expired = (_T.sweep_id == sweep.id) & (_T.status == "running") & (_T.lease_until < now)
        rows = conn.execute(select(s.sweep_trials).where(expired).order_by(_T.number)).all()
        if not rows:
            return
        after = conn.execute(
            select(func.max(_T.number)).where(_T.sweep_id == sweep.id)
        ).scalar_one()
        for r in rows:
            ended = r.heartbeat_at or now
            conn.execute(
                update(s.sweep_trials)
                .where((_T.sweep_id == sweep.id) & (_T.number == r.number))
                .values(status="crashed", ended_at=ended, reason=_CRASH_REASON)
            )
            if r.run_id:
                conn.execute(
                    update(s.runs)
                    .where((_R.id == r.run_id) & (_R.status == "running"))
                    .values(
                        status="crashed",
                        ended_at=ended,
                        exit_reason=f"sweep trial: {_CRASH_REASON}",
                    )
                )
            if r.attempt < sweep.max_retries:
                after += 1
                conn.execute(
                    insert(s.sweep_trials).values(
                        sweep_id=sweep.id,
                        number=after,
                        run_id=None,
                        status="pending",
                        params_json=r.params_json,
                        internal_json=r.internal_json,
                        attempt=r.attempt + 1,
                        retry_of=r.number if r.retry_of is None else r.retry_of,
                        created_at=now,
                    )
                )
        self._settle_sweep_run(conn, sweep.id, sweep.state, now)

    def report_trial(self, sweep_id: str, number: int, report: TrialReport) -> str:
        """An agent's heartbeat (status ``running``: renew the lease) or its trial's end.

        ``"ok"``; ``"cancel"`` when the sweep was canceled (stop the trial); ``"lost"``
        when the trial is no longer this agent's (its lease ran out and it was reaped),
        in which case nothing is changed.
        """
        if report.status not in ("running", *FINAL_TRIAL_STATUSES):
            raise InvalidValueError(
                f"a trial cannot be reported as {report.status!r}",
                hint=f"running, or one of {', '.join(FINAL_TRIAL_STATUSES)}",
            )
        now = time.time()
        values: dict[str, Any] = {"heartbeat_at": now}
        if report.status == "running":
            values["lease_until"] = now + report.lease
        else:
            values.update(
                status=report.status,
                value=_finite(report.value),
                ended_at=now,
                reason=report.reason,
            )
        mine = (_T.sweep_id == sweep_id) & (_T.number == number) & (_T.agent == report.agent)
        with self._write() as conn:
            sweep = self._lock_sweep(conn, sweep_id)
            owned = update(s.sweep_trials).where(mine & (_T.status == "running"))
            if conn.execute(owned.values(**values)).rowcount == 0:
                return "lost"
            state = sweep.state
            if report.status == "finished" and state == "running" and _reached(sweep, report.value):
                state = "finished"
                conn.execute(
                    update(s.sweeps).where(_S.id == sweep_id).values(state=state, updated_at=now)
                )
            self._settle_sweep_run(conn, sweep_id, state, now)
        return "cancel" if state == "canceled" else "ok"

    def _settle_sweep_run(self, conn: Connection, sweep_id: str, state: str, now: float) -> None:
        """The sweep's run: running while trials run, else finished (killed if stopped)."""
        running = conn.execute(
            select(func.count()).where((_T.sweep_id == sweep_id) & (_T.status == "running"))
        ).scalar_one()
        status, ended, reason = "running", None, None
        if not running:
            status = "finished" if state in ("running", "finished") else "killed"
            ended, reason = (
                now,
                {
                    "running": "no trial running; more agents continue it: mltrail agent "
                    + sweep_id,
                    "finished": "sweep finished",
                    "stopped": "sweep stopped; resume it with: mltrail sweep resume " + sweep_id,
                    "canceled": "sweep canceled; resume it with: mltrail sweep resume " + sweep_id,
                }[state],
            )
        conn.execute(
            update(s.runs)
            .where(_R.id == sweep_id)
            .values(
                status=status,
                heartbeat_at=now,
                ended_at=ended,
                exit_reason=reason,
                exit_code=0 if status == "finished" else None,
            )
        )


def _reached(sweep: Any, value: float | None) -> bool:
    """Whether ``value`` meets the metric's ``target`` (the sweep is then finished)."""
    if value is None or not math.isfinite(value):
        return False
    target = json.loads(sweep.config_json).get("metric", {}).get("target")
    if not isinstance(target, (int, float)) or isinstance(target, bool):
        return False
    return value >= target if sweep.goal == "maximize" else value <= target


def _trial(r: Any, status: str) -> Trial:
    plain = (
        "sweep_id",
        "number",
        "run_id",
        "value",
        "attempt",
        "retry_of",
        "agent",
        "created_at",
        "started_at",
        "ended_at",
        "heartbeat_at",
        "lease_until",
        "reason",
    )
    return Trial(
        **{c: getattr(r, c) for c in plain},
        status=status,
        params=json.loads(r.params_json),
        internal=json.loads(r.internal_json),
    )
