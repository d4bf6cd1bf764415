"""The store's side of sweeps, on SQLite and PostgreSQL: atomic claims, leases, retries,
states, and the sweep's runs in the query language."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mltrail.entities import TrialReport, TrialRequest
from mltrail.errors import ConflictError, InvalidValueError, SweepNotFound
from mltrail.store import SweepStore
from mltrail.sweeps.config import new_sweep
from mltrail.sweeps.worker import ensure_sweep_run, sweep_store

Store = SweepStore


def _new(store: Store, sweep_id: str = "sw1", **config: Any) -> None:
    cfg = {
        "method": "random",
        "metric": {"name": "loss"},
        "parameters": {"x": {"value": 1}},
        **config,
    }
    store.create_sweep(new_sweep(sweep_id, "p", cfg, name="s", seed=1))


def _claim(
    store: Store,
    expected: int,
    agent: str = "a",
    lease: float = 30.0,
    x: float = 0.0,
    sweep_id: str = "sw1",
) -> Any:
    proposal = {"params": {"x": x}, "internal": {"x": x}}
    request = TrialRequest(agent, f"run-{agent}-{time.monotonic_ns()}", lease, expected, proposal)
    return store.claim_trial(sweep_id, request)


def _report(store: Store, number: int, agent: str, status: str = "running", **kw: Any) -> str:
    return store.report_trial("sw1", number, TrialReport(agent, status, **kw))


def _trial_run(store: Store, run_id: str) -> None:
    store.create_run(
        run_id=run_id, project="p", name=run_id, user=None, group=None, job_type=None,
        parent_id="sw1", notes="", tags={}, metadata={}, started_at=time.time(),
    )  # fmt: skip


@pytest.fixture
def store(store_uri: str) -> Store:
    return sweep_store(store_uri)


def test_claims_are_numbered_and_a_stale_proposal_is_refused(store: Store) -> None:
    _new(store, run_cap=2)
    first = _claim(store, 0, x=0.5)
    assert first.outcome == "claimed" and first.trial.number == 0
    assert first.trial.params == {"x": 0.5} and first.trial.agent == "a"
    assert _claim(store, 0, agent="b").outcome == "stale"  # b had not seen trial 0
    second = _claim(store, 1, agent="b")
    assert second.outcome == "claimed" and second.trial.number == 1
    assert _claim(store, 2).outcome == "wait"  # run_cap reached, trials still running
    assert _report(store, 0, "b", "finished", value=1.0) == "lost"  # not b's trial
    assert _report(store, 0, "a", "finished", value=float("nan")) == "ok"
    assert _report(store, 1, "b", "failed", reason="boom") == "ok"
    done = _claim(store, 2)
    assert (done.outcome, done.sweep_state) == ("done", "finished")
    trials = store.list_trials("sw1")
    assert [(t.status, t.value, t.reason) for t in trials] == [
        ("finished", None, None),
        ("failed", None, "boom"),
    ]  # NaN is no value
    sweep = store.get_sweep("sw1")
    assert sweep.state == "finished" and sweep.counts == {"failed": 1, "finished": 1}
    assert [s.id for s in store.list_sweeps("p")] == ["sw1"] and store.list_sweeps() != []


def test_an_expired_lease_crashes_the_trial_and_queues_a_retry(store: Store) -> None:
    _new(store, max_retries=1)
    ensure_sweep_run(store, store.get_sweep("sw1"))
    first = _claim(store, 0, agent="dead", lease=0.2, x=3.0)
    _trial_run(store, first.trial.run_id)
    assert store.get_run("sw1").status == "running"  # the sweep's run follows its trials
    time.sleep(0.3)
    assert store.list_trials("sw1")[0].status == "crashed"  # reads as crashed before reaping
    retry = _claim(store, 1, agent="b", x=9.0)  # the retry comes first, whatever b proposes
    assert retry.outcome == "claimed"
    assert (retry.trial.number, retry.trial.retry_of, retry.trial.attempt) == (1, 0, 1)
    assert retry.trial.params == {"x": 3.0}
    crashed = store.list_trials("sw1")[0]
    assert crashed.status == "crashed" and "lease" in (crashed.reason or "")
    run = store.get_run(first.trial.run_id)
    assert run.status == "crashed" and "sweep trial" in (run.exit_reason or "")
    assert _report(store, 0, "dead", lease=5) == "lost"
    assert _report(store, 1, "b", lease=0.2) == "ok"
    time.sleep(0.3)  # the retry crashes too: no retries left, so it is skipped
    nxt = _claim(store, 2, agent="c", x=1.0)
    assert nxt.trial.number == 2 and nxt.trial.retry_of is None
    assert [t.status for t in store.list_trials("sw1")] == ["crashed", "crashed", "running"]


def test_stop_cancel_resume_and_target(store: Store) -> None:
    _new(store, metric={"name": "loss", "target": 0.5})
    ensure_sweep_run(store, store.get_sweep("sw1"))
    _claim(store, 0)
    assert store.set_sweep_state("sw1", "stopped").state == "stopped"
    assert _claim(store, 1).outcome == "done"
    assert _report(store, 0, "a", lease=30) == "ok"
    store.set_sweep_state("sw1", "canceled")
    assert _report(store, 0, "a", lease=30) == "cancel"
    _report(store, 0, "a", "killed")
    run = store.get_run("sw1")
    assert run.status == "killed" and "resume" in (run.exit_reason or "")
    assert store.set_sweep_state("sw1", "running").state == "running"
    assert _claim(store, 1).trial.number == 1
    assert _report(store, 1, "a", "finished", value=0.4) == "ok"  # the target is met
    assert store.get_sweep("sw1").state == "finished"
    assert store.get_run("sw1").status == "finished"
    with pytest.raises(ConflictError, match="finished"):
        store.set_sweep_state("sw1", "running")
    with pytest.raises(InvalidValueError):
        store.set_sweep_state("sw1", "finished")


def test_unknown_sweeps_and_bad_values(store: Store) -> None:
    for call in (
        lambda: store.get_sweep("nope"),
        lambda: store.list_trials("nope"),
        lambda: _claim(store, 0, sweep_id="nope"),
        lambda: store.set_sweep_state("nope", "stopped"),
    ):
        with pytest.raises(SweepNotFound):
            call()
    with pytest.raises(InvalidValueError):
        _new(store, sweep_id="no spaces")
    _new(store)
    with pytest.raises(ConflictError, match="already exists"):
        _new(store)
    with pytest.raises(InvalidValueError):
        _report(store, 0, "a", "great")


def test_trial_runs_are_found_by_sweep_and_parent(store: Store) -> None:
    from mltrail.client.client import Client

    _new(store)
    ensure_sweep_run(store, store.get_sweep("sw1"))
    got = _claim(store, 0)
    _trial_run(store, got.trial.run_id)
    client = Client(store.uri)
    assert [r.id for r in client.search_runs("p", "sweep = 'sw1'")] == [got.trial.run_id]
    assert [r.id for r in client.search_runs("p", "parent = 'sw1'")] == [got.trial.run_id]
    assert [r.id for r in client.search_runs("p", "sweep is null")] == ["sw1"]
    assert client.get_run("sw1").job_type == "sweep"
