"""The Ray backend on a local Ray (one per session, started by the ``ray_local`` fixture):
trials run as Ray tasks, several at once, each claimed from the store by the task."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import mltrail
from mltrail.client.client import Client
from mltrail.sweeps import list_trials
from tests.sweeps.conftest import make_sweep

pytestmark = pytest.mark.xdist_group("ray")


def test_trials_run_as_parallel_ray_tasks(ray_local: None, sqlite_uri: str, tmp_path: Path) -> None:
    config = {
        "method": "bayes",
        "metric": {"name": "loss"},
        "run_cap": 5,
        "parameters": {"x": {"min": -2.0, "max": 2.0}},
    }
    sweep_id = make_sweep(sqlite_uri, config)
    gate = tmp_path / "gate"
    gate.mkdir()

    def train() -> None:  # pickled by value into the Ray workers
        run = mltrail.init()
        (gate / run.id).touch()
        deadline = time.monotonic() + 60
        while len(list(gate.iterdir())) < 2:  # the first two trials wait for each other
            assert time.monotonic() < deadline, "no second trial ran at the same time"
            time.sleep(0.01)
        run.log({"loss": run.config["x"] ** 2})

    trials = mltrail.agent(
        sweep_id, function=train, backend="ray", parallel=2, count=4, uri=sqlite_uri
    )
    assert len(trials) == 4 and {t.status for t in trials} == {"finished"}
    stored = list_trials(sweep_id, uri=sqlite_uri)
    assert len(stored) == 4 and len({t.agent for t in stored}) == 4  # one task, one trial
    runs = Client(sqlite_uri).search_runs("sw", f"sweep = '{sweep_id}'")
    assert {r.status for r in runs} == {"finished"} and {r.parent_id for r in runs} == {sweep_id}
    assert all(t.value == pytest.approx(t.params["x"] ** 2) for t in stored)
    rest = mltrail.agent(sweep_id, function=train, backend="ray", parallel=2, uri=sqlite_uri)
    assert len(rest) == 1  # run_cap: the fifth, then the tasks find the sweep done
