"""The remote store's sweep methods: each one request to ``/api/v1/sweeps``.

The server validates the configuration itself and runs the same atomic claims as an
embedded store (see :mod:`mltrail.store.sql.sweeps`), so agents on many machines can
share one sweep through it.
"""

from __future__ import annotations

from urllib.parse import quote

from mltrail.entities import Sweep, Trial, TrialClaim, TrialReport, TrialRequest
from mltrail.store.http.transport import Transport
from mltrail.wire import from_wire

__all__ = ["SweepsMixin"]


def _p(text: str) -> str:
    return quote(text, safe="")


class SweepsMixin:
    """Sweeps and their trials, remotely."""

    _t: Transport

    def create_sweep(self, sweep: Sweep) -> Sweep:
        """The server reads the sweep's fields from its config itself, and the creator
        from the caller's token (or ``X-Mltrail-User``)."""
        body = {
            "sweep_id": sweep.id,
            "project": sweep.project,
            "name": sweep.name,
            "config": sweep.config,
            "seed": sweep.seed,
        }
        return from_wire(Sweep, self._t.call("POST", "/sweeps", json=body))

    def get_sweep(self, sweep_id: str) -> Sweep:
        return from_wire(Sweep, self._t.call("GET", f"/sweeps/{_p(sweep_id)}"))

    def list_sweeps(self, project: str | None = None) -> list[Sweep]:
        rows = self._t.call("GET", "/sweeps", params={"project": project})
        return [from_wire(Sweep, r) for r in rows]

    def sweep_project(self, sweep_id: str) -> str:
        return self.get_sweep(sweep_id).project

    def set_sweep_state(self, sweep_id: str, state: str) -> Sweep:
        answer = self._t.call("POST", f"/sweeps/{_p(sweep_id)}/state", json={"state": state})
        return from_wire(Sweep, answer)

    def list_trials(self, sweep_id: str) -> list[Trial]:
        rows = self._t.call("GET", f"/sweeps/{_p(sweep_id)}/trials")
        return [from_wire(Trial, r) for r in rows]

    def claim_trial(self, sweep_id: str, request: TrialRequest) -> TrialClaim:
        answer = self._t.call("POST", f"/sweeps/{_p(sweep_id)}/trials:claim", json=request)
        return from_wire(TrialClaim, answer)

    def report_trial(self, sweep_id: str, number: int, report: TrialReport) -> str:
        path = f"/sweeps/{_p(sweep_id)}/trials/{int(number)}/report"
        return str(self._t.call("POST", path, json=report)["status"])
