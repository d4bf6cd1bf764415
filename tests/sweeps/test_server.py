"""Sweeps through a real ``mltrail server``: agents on the HTTP store share trials as on a
database, errors come back as the same classes, Bayesian proposals need no Optuna there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import mltrail
from mltrail.errors import SweepConfigError, SweepNotFound
from mltrail.sweeps import get_sweep, list_sweeps, list_trials
from mltrail.sweeps.config import new_sweep
from mltrail.sweeps.worker import sweep_store
from tests.server.conftest import serve
from tests.sweeps.conftest import finish, make_sweep, start_together

__all__ = ["serve"]  # the real-server fixture


@pytest.fixture
def server(serve: Callable[..., str], tmp_path: Path) -> str:
    return serve(f"sqlite:///{tmp_path / 'server' / 'mltrail.db'}")


def test_agents_share_sweeps_through_the_server(server: str, tmp_path: Path) -> None:
    """One server for both halves: starting one costs seconds."""
    _four_agents_on_a_grid(server, tmp_path)
    _bayes_and_errors(server)


def _four_agents_on_a_grid(server: str, tmp_path: Path) -> None:
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "parameters": {"x": {"values": [float(x) for x in range(12)]}},
    }
    sweep_id = make_sweep(server, config)
    procs = start_together(server, sweep_id, 4, tmp_path / "gate")
    for proc in procs:
        finish(proc)
    trials = list_trials(sweep_id, uri=server)
    assert sorted(t.params["x"] for t in trials) == [float(x) for x in range(12)]
    assert {t.status for t in trials} == {"finished"} and len({t.agent for t in trials}) >= 2
    assert get_sweep(sweep_id, uri=server).state == "finished"


def _bayes_and_errors(server: str) -> None:
    config = {
        "method": "bayes",
        "metric": {"name": "acc", "goal": "maximize"},
        "run_cap": 3,
        "parameters": {"lr": {"distribution": "log_uniform", "min": -9, "max": -1}},
    }
    sweep_id = make_sweep(server, config, name="remote")

    def train() -> None:
        run = mltrail.init()
        run.log({"acc": 1 - run.config["lr"]})

    trials = mltrail.agent(sweep_id, function=train, uri=server)
    assert [t.status for t in trials] == ["finished"] * 3
    assert all(t.value == pytest.approx(1 - t.params["lr"]) for t in trials)
    found = list_sweeps("sw", uri=server)[0]  # newest first
    assert (found.id, found.name, found.method) == (sweep_id, "remote", "bayes")
    assert found.counts == {"finished": 3} and found.state == "finished"
    runs = mltrail.Client(server).search_runs("sw", f"sweep = '{sweep_id}'")
    assert len(runs) == 3 and {r.parent_id for r in runs} == {sweep_id}
    store = sweep_store(server)
    with pytest.raises(SweepNotFound):
        store.get_sweep("missing")
    valid = new_sweep("bad1", "sw", {"method": "grid", "parameters": {"x": {"value": 1}}})
    with pytest.raises(SweepConfigError, match="method") as info:  # the server checks too
        store.create_sweep(replace(valid, config={"method": "x"}))
    assert "set method" in (info.value.hint or "")
