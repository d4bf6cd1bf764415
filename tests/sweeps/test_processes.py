"""Real agent processes sharing a sweep: four at once never take the same trial (SQLite,
PostgreSQL), and one killed mid-trial leaves a crashed trial that is retried or skipped."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mltrail.client.client import Client
from mltrail.errors import RunNotFound
from mltrail.sweeps import get_sweep, list_trials
from tests.sweeps.conftest import finish, make_sweep, start_agent, start_together, wait_for


def test_four_agents_share_a_grid_without_taking_a_trial_twice(
    store_uri: str, tmp_path: Path
) -> None:
    points = [float(x) for x in range(24)]
    config = {"method": "grid", "metric": {"name": "loss"}, "parameters": {"x": {"values": points}}}
    sweep_id = make_sweep(store_uri, config)
    procs = start_together(store_uri, sweep_id, 4, tmp_path / "gate")
    outputs = [finish(p) for p in procs]
    trials = list_trials(sweep_id, uri=store_uri)
    assert sorted(t.params["x"] for t in trials) == points  # each point once, none twice
    assert {t.status for t in trials} == {"finished"}
    assert all(t.value == t.params["x"] + 2 for t in trials)
    ran = Counter(
        line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("TRIAL")
    )
    assert sum(ran.values()) == 24 and set(ran.values()) == {1}
    assert len({t.agent for t in trials}) >= 3  # the work was shared
    assert len({t.run_id for t in trials}) == 24
    assert get_sweep(sweep_id, uri=store_uri).state == "finished"
    runs = Client(store_uri).search_runs("sw", f"sweep = '{sweep_id}'", limit=100)
    assert len(runs) == 24 and {r.status for r in runs} == {"finished"}


def _logged(uri: str, run_id: str) -> bool:
    try:
        return Client(uri).get_run(run_id).metrics != {}
    except RunNotFound:  # claimed, its run not created yet
        return False


@pytest.mark.parametrize(("backend", "retries"), [("sqlite", 1), ("postgres", 0)])
def test_a_killed_agent_s_trial_is_crashed_then_retried_or_skipped(
    backend: str, retries: int, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri: str = request.getfixturevalue("store_uri")
    config: dict[str, Any] = {
        "method": "grid",
        "metric": {"name": "loss"},
        "max_retries": retries,
        "parameters": {"x": {"values": [5.0, 6.0]}},
    }
    sweep_id = make_sweep(uri, config)
    doomed = start_agent(uri, sweep_id, behaviour="hang", count=1, MLTRAIL_SWEEP_LEASE="1")
    first = wait_for(uri, sweep_id, lambda ts: bool(ts) and ts[0].status == "running")[0]
    wait_for(uri, sweep_id, lambda ts: _logged(uri, ts[0].run_id or ""))
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.communicate(timeout=30)
    started = time.monotonic()
    monkeypatch.setenv("MLTRAIL_SWEEP_LEASE", "1")
    rescuer = start_agent(uri, sweep_id)
    out = finish(rescuer)
    trials = list_trials(sweep_id, uri=uri)
    crashed = trials[0]
    assert (crashed.number, crashed.status, crashed.agent) == (0, "crashed", first.agent)
    assert "lease" in (crashed.reason or "")
    assert Client(uri).get_run(crashed.run_id or "").status == "crashed"
    if retries:  # the retry is run whether 6.0 was claimed before the lease ran out or not
        assert sorted((t.params["x"], t.status, t.retry_of) for t in trials[1:]) == [
            (5.0, "finished", 0),
            (6.0, "finished", None),
        ]
    else:
        assert [(t.params["x"], t.status) for t in trials[1:]] == [(6.0, "finished")]
    assert out.count("TRIAL") == len(trials) - 1
    assert time.monotonic() - started < 30
    assert get_sweep(sweep_id, uri=uri).state == "finished"
    del backend
