"""Agents running trials in this process: ``mltrail.init()`` joins the trial, its run
records everything, failures, early termination and cancellation end trials as W&B's
do."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

import mltrail
from mltrail.client.client import Client
from mltrail.errors import MltrailError, SweepConfigError
from mltrail.sweeps import get_sweep, list_trials, resume, stop
from tests.sweeps.conftest import make_sweep, wait_for

GRID = {
    "method": "grid",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "x": {"values": [3, 1, 2]},
        "opt": {"parameters": {"lr": {"value": 0.1}}},
    },
}


def test_init_joins_the_trial_and_its_params_win(store_uri: str) -> None:
    sweep_id = make_sweep(store_uri, GRID, name="grid")
    seen: list[dict[str, object]] = []

    def train() -> None:
        run = mltrail.init(config={"x": 100, "epochs": 7})  # defaults: the sweep's x wins
        assert run.id == os.environ["MLTRAIL_RUN_ID"] and run.parent_id == sweep_id
        seen.append(run.config.as_dict())
        for step in range(3):
            run.log({"loss": run.config["x"] * 10 - step})
        run.finish()

    trials = mltrail.agent(sweep_id, function=train, uri=store_uri)
    assert [t.status for t in trials] == ["finished"] * 3
    assert [t.value for t in trials] == [28.0, 8.0, 18.0]
    assert seen == [{"epochs": 7, "opt.lr": 0.1, "x": x} for x in (3, 1, 2)]
    assert "MLTRAIL_RUN_ID" not in os.environ and mltrail.active_run() is None
    client = Client(store_uri)
    runs = client.search_runs("sw", f"sweep = '{sweep_id}'", order_by="params.x")
    assert [(r.name, r.status, r.config["x"], r.parent_id) for r in runs] == [
        (f"grid-{n}", "finished", x, sweep_id) for n, x in ((1, 1), (2, 2), (0, 3))
    ]
    sweep = get_sweep(sweep_id, uri=store_uri)
    assert sweep.state == "finished" and sweep.counts == {"finished": 3}
    assert client.get_run(sweep_id).status == "finished"
    assert mltrail.agent(sweep_id, function=train, uri=store_uri) == []  # nothing left


def test_a_function_that_never_joins_still_gets_its_run(sqlite_uri: str) -> None:
    sweep_id = make_sweep(sqlite_uri, {**GRID, "run_cap": 1})
    (trial,) = mltrail.agent(sweep_id, function=lambda: None, uri=sqlite_uri)
    run = Client(sqlite_uri).get_run(trial.run_id or "")
    assert (trial.status, trial.value) == ("finished", None)
    assert run.status == "finished" and run.config == {"opt.lr": 0.1, "x": 3}
    other = make_sweep(sqlite_uri, GRID)
    done = mltrail.agent(other, function=lambda: sys.exit(3), count=1, uri=sqlite_uri)
    assert [(t.status, t.reason) for t in done] == [("failed", "sys.exit(3)")]
    run = Client(sqlite_uri).get_run(done[0].run_id or "")
    assert (run.status, run.exit_code) == ("failed", 3)


def test_failing_trials_are_recorded_and_stop_a_broken_agent(sqlite_uri: str) -> None:
    sweep_id = make_sweep(sqlite_uri, {**GRID, "method": "random"})

    def train() -> None:
        mltrail.init()
        raise ValueError("bad data")

    with pytest.raises(MltrailError, match="first 3 trials of this agent failed") as info:
        mltrail.agent(sweep_id, function=train, uri=sqlite_uri)
    assert "mltrail runs show" in (info.value.hint or "")
    trials = list_trials(sweep_id, uri=sqlite_uri)
    assert [(t.status, t.reason) for t in trials] == [("failed", "ValueError: bad data")] * 3
    run = Client(sqlite_uri).get_run(trials[0].run_id or "")
    assert run.status == "failed" and "bad data" in run.metadata["traceback"]


def test_hyperband_stops_a_trial_that_lags_behind(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "method": "grid",
        "metric": {"name": "loss"},
        "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 3},
        "parameters": {"bad": {"values": [False, True]}},
    }
    sweep_id = make_sweep(sqlite_uri, config)

    def train() -> None:
        run = mltrail.init()
        for i in range(300):
            run.log({"loss": 10.0 - i * 0.001 if run.config["bad"] else 1.0 / (i + 1)})
            time.sleep(0.005 if run.config["bad"] else 0.0005)

    monkeypatch.setenv("MLTRAIL_SWEEP_LEASE", "0.6")  # checks every 0.1 s
    good, bad = mltrail.agent(sweep_id, function=train, uri=sqlite_uri)
    assert good.status == "finished" and good.value == pytest.approx(1 / 300)
    assert bad.status == "stopped" and "hyperband" in (bad.reason or "")
    run = Client(sqlite_uri).get_run(bad.run_id or "")
    assert run.status == "killed" and "hyperband" in (run.exit_reason or "")
    assert 3 < run.metrics["loss"].count < 300
    assert list_trials(sweep_id, uri=sqlite_uri)[1].value == run.metrics["loss"].last


def test_canceling_a_sweep_stops_its_running_trial(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_id = make_sweep(sqlite_uri, {**GRID, "method": "random"})
    monkeypatch.setenv("MLTRAIL_SWEEP_LEASE", "0.6")

    def train() -> None:
        with mltrail.init() as run:
            for i in range(2000):
                run.log({"loss": i})
                time.sleep(0.005)

    def cancel() -> None:
        wait_for(sqlite_uri, sweep_id, lambda ts: any(t.status == "running" for t in ts))
        stop(sweep_id, cancel=True, uri=sqlite_uri)

    canceller = threading.Thread(target=cancel)
    canceller.start()
    trials = mltrail.agent(sweep_id, function=train, uri=sqlite_uri)
    canceller.join()
    assert [(t.status, t.reason) for t in trials] == [("killed", "the sweep was canceled")]
    run = Client(sqlite_uri).get_run(trials[0].run_id or "")
    assert run.status == "killed" and run.exit_reason == "the sweep was canceled"
    assert get_sweep(sweep_id, uri=sqlite_uri).state == "canceled"
    assert resume(sweep_id, uri=sqlite_uri).state == "running"
    again = mltrail.agent(sweep_id, function=lambda: None, count=2, uri=sqlite_uri)
    assert [t.number for t in again] == [1, 2]


def test_agent_arguments_are_checked(sqlite_uri: str) -> None:
    sweep_id = make_sweep(sqlite_uri, GRID)
    for kwargs, match in (
        ({"count": 0}, "count=0"),
        ({"backend": "dask"}, "backend"),
        ({"parallel": 2}, "Ray backend"),
        ({"project": "other"}, "belongs to project"),
    ):
        with pytest.raises(mltrail.InvalidValueError, match=match):
            mltrail.agent(sweep_id, function=lambda: None, uri=sqlite_uri, **kwargs)
    with pytest.raises(SweepConfigError, match="has no program"):
        mltrail.agent(sweep_id, uri=sqlite_uri)
