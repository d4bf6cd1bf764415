"""The Run API: init, log, config, summary, tags, nesting, resume, statuses."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import mltrail
from mltrail.errors import (
    ConfigConflictError,
    InvalidKeyError,
    InvalidValueError,
    MltrailError,
    RunAlreadyExists,
    RunFinishedError,
    RunNotFound,
)

MakeRun = Callable[..., mltrail.Run]


def test_the_issue_example(make_run: MakeRun, client: mltrail.Client) -> None:
    with make_run(
        project="mnist", name="baseline", config={"lr": 1e-3, "epochs": 10},
        tags=["cnn"], notes="first try",
    ) as run:  # fmt: skip
        for step in range(1000):
            run.log({"train/loss": 1.0 / (step + 1), "lr": 1e-3}, step=step)
        run.summary["best_acc"] = 0.98
    r = client.get_run(run.id)
    assert (r.name, r.project, r.status, r.notes) == ("baseline", "mnist", "finished", "first try")
    assert r.config == {"epochs": 10, "lr": 1e-3}
    assert r.tags == {"cnn": ""}
    assert r.summary == {"best_acc": 0.98, "lr": 1e-3, "train/loss": 1.0 / 1000}
    assert run.status == "finished" and r.exit_code == 0
    hist = client.metric_history(run.id, "train/loss")
    assert [p.step for p in hist] == list(range(1000))
    assert hist[10].value == 1.0 / 11 and hist[10].timestamp > 0


def test_run_fields_match_client(make_run: MakeRun, client: mltrail.Client) -> None:
    run = make_run(config={"a": 1})
    run.log({"x": 2.0})
    run.finish()
    r = client.get_run(run.id)
    assert (r.id, r.name, r.project, r.status) == (run.id, run.name, run.project, run.status)
    assert r.config == dict(run.config) and r.summary == dict(run.summary)
    assert run.id.isalnum() and run.id == run.id.lower()  # URL-safe


def test_generated_names_are_unique_and_readable(make_run: MakeRun) -> None:
    names = set()
    for _ in range(3):
        run = make_run()
        names.add(run.name)
        run.finish()
    assert len(names) == 3 and all("-" in n for n in names)


def test_auto_increment_steps_and_commit_false(make_run: MakeRun, client: mltrail.Client) -> None:
    run = make_run()
    run.log({"a": 1.0})
    run.log({"a": 2.0})
    run.log({"b": 1.0}, commit=False)
    run.log({"c": 1.0})  # same step as b
    run.log({"a": 3.0}, step=10)
    run.log({"a": 4.0})  # continues after 10
    run.finish()
    assert [p.step for p in client.metric_history(run.id, "a")] == [0, 1, 10, 11]
    assert client.metric_history(run.id, "b")[0].step == client.metric_history(run.id, "c")[0].step


def test_scalar_types_without_numpy_import(make_run: MakeRun, client: mltrail.Client) -> None:
    class TorchLikeScalar:
        def __float__(self) -> float:
            return 0.25

    run = make_run()
    run.log(
        {
            "np32": np.float32(0.5), "np64": np.int64(7), "arr0d": np.array(1.5),
            "bool": True, "frac": Fraction(1, 4), "tensor": TorchLikeScalar(), "big": 10**30,
        }
    )  # fmt: skip
    run.finish()
    s = client.get_run(run.id).summary
    assert s == {
        "np32": 0.5, "np64": 7.0, "arr0d": 1.5, "bool": 1.0, "frac": 0.25, "tensor": 0.25,
        "big": 1e30,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("0.5", "metrics are numbers"),
        (None, "metrics are numbers"),
        ([1, 2], "not a number"),
        (np.array([1.0, 2.0]), "single real number"),
        (1 + 2j, "not a number"),
        (10**400, "single real number"),
    ],
)
def test_bad_values_are_clear_errors(make_run: MakeRun, value: object, match: str) -> None:
    run = make_run()
    run.log({"ok": 1.0})
    with pytest.raises(InvalidValueError, match=match) as info:
        run.log({"ok": 2.0, "bad": value})
    assert "'bad'" in str(info.value)
    run.finish()


def test_nan_and_inf_are_kept(make_run: MakeRun, client: mltrail.Client) -> None:
    run = make_run()
    for i, v in enumerate([math.nan, math.inf, -math.inf, 1.0, math.nan]):
        run.log({"v": v}, step=i)
    run.finish()
    values = [p.value for p in client.metric_history(run.id, "v")]
    assert math.isnan(values[0]) and values[1:4] == [math.inf, -math.inf, 1.0]
    assert math.isnan(values[4]) and math.isnan(client.get_run(run.id).summary["v"])


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("训练/损失", True),
        ("é" * 250, True),
        ("x" * 251, False),
        ("", False),
        ("   ", False),
        ("a\nb", False),
        (3, False),
    ],
)
def test_keys(make_run: MakeRun, client: mltrail.Client, key: object, ok: bool) -> None:
    run = make_run()
    if ok:
        run.log({key: 1.0})  # type: ignore[dict-item]
        run.finish()
        assert key in client.get_run(run.id).summary
    else:
        with pytest.raises(InvalidKeyError):
            run.log({key: 1.0})  # type: ignore[dict-item]
        run.finish()


def test_nested_metric_dicts_are_flattened(make_run: MakeRun, client: mltrail.Client) -> None:
    run = make_run()
    run.log({"train": {"loss": 0.1, "acc": 0.9}})
    run.finish()
    assert set(client.get_run(run.id).summary) == {"train/loss", "train/acc"}


def test_bad_steps(make_run: MakeRun) -> None:
    run = make_run()
    with pytest.raises(InvalidValueError, match="step must be an integer"):
        run.log({"a": 1.0}, step=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="64 bits"):
        run.log({"a": 1.0}, step=2**63)
    run.log({"a": 1.0}, step=np.int64(3))  # type: ignore[arg-type]
    run.finish()


def test_log_after_finish_is_a_clear_error(make_run: MakeRun) -> None:
    run = make_run()
    run.finish()
    with pytest.raises(RunFinishedError, match="finished"):
        run.log({"a": 1.0})
    with pytest.raises(RunFinishedError):
        run.config["x"] = 1
    run.finish()  # idempotent


def test_config_flatten_update_conflict(make_run: MakeRun, client: mltrail.Client) -> None:
    run = make_run(config={"model": {"depth": 50, "act": "relu"}, "lr": 0.01, "np": np.float64(2)})
    assert run.config["model.depth"] == 50 and run.config.lr == 0.01 and run.config["np"] == 2.0
    run.config.update({"batch": 32})
    run.config["seed"] = 1
    run.config.update({"lr": 0.01})  # same value is fine
    with pytest.raises(ConfigConflictError, match=r"(?s)'lr'.*allow_val_change"):
        run.config.update({"lr": 0.1})
    run.config.update({"lr": 0.1}, allow_val_change=True)
    run.finish()
    cfg = client.get_run(run.id).config
    assert cfg == {"batch": 32, "lr": 0.1, "model.act": "relu", "model.depth": 50, "np": 2.0,
                   "seed": 1}  # fmt: skip


def test_summary_defaults_to_last_value_and_can_be_set(
    make_run: MakeRun, client: mltrail.Client
) -> None:
    run = make_run()
    run.log({"acc": 0.5})
    run.log({"acc": 0.7})
    assert run.summary["acc"] == 0.7
    run.summary["acc"] = 0.99  # explicit wins, as in W&B
    run.summary.update({"best_epoch": 3})
    run.finish()
    assert client.get_run(run.id).summary == {"acc": 0.99, "best_epoch": 3}
    assert client.get_run(run.id).metrics["acc"].last == 0.7


def test_tags_group_job_type_notes(make_run: MakeRun, client: mltrail.Client) -> None:
    run = make_run(tags={"team": "cv"}, group="exp-1", job_type="train", notes="n")
    run.set_tags(["baseline"])
    run.set_tag("stage", "dev")
    run.remove_tag("team")
    run.notes = "updated"
    run.finish()
    r = client.get_run(run.id)
    assert r.tags == {"baseline": "", "stage": "dev"}
    assert (r.group, r.job_type, r.notes) == ("exp-1", "train", "updated")


def test_nested_runs(make_run: MakeRun, client: mltrail.Client) -> None:
    parent = make_run(name="sweep")
    child1 = make_run(parent=parent)
    child2 = make_run(parent=parent.id)
    for r in (child1, child2, parent):
        r.finish()
    assert client.get_run(child1.id).parent_id == parent.id
    assert client.get_run(child2.id).parent_id == parent.id
    with pytest.raises(RunNotFound, match="parent"):
        make_run(parent="nonexistent")


def test_resume(make_run: MakeRun, client: mltrail.Client) -> None:
    run = make_run(run_id="myrun-1", config={"lr": 0.1})
    run.log({"loss": 1.0})
    run.log({"loss": 0.9})
    run.finish()
    with pytest.raises(RunAlreadyExists, match="resume='allow'"):
        make_run(run_id="myrun-1")
    again = make_run(run_id="myrun-1", resume="must")
    assert again.config["lr"] == 0.1 and again.status == "running"
    again.log({"loss": 0.8})  # continues at step 2
    again.finish()
    assert [p.step for p in client.metric_history("myrun-1", "loss")] == [0, 1, 2]
    with pytest.raises(RunNotFound, match="resume='must'"):
        make_run(run_id="other", resume="must")
    created = make_run(run_id="other", resume="allow")
    created.finish()
    assert client.get_run("other").status == "finished"
    with pytest.raises(InvalidValueError):
        make_run(run_id="bad id!")
    with pytest.raises(InvalidValueError):
        make_run(resume="sometimes")


def test_context_manager_statuses(make_run: MakeRun, client: mltrail.Client) -> None:
    with pytest.raises(ZeroDivisionError), make_run() as failed:
        1 / 0  # noqa: B018
    with pytest.raises(KeyboardInterrupt), make_run() as killed:
        raise KeyboardInterrupt
    r = client.get_run(failed.id)
    assert r.status == "failed" and "ZeroDivisionError" in (r.exit_reason or "")
    r = client.get_run(killed.id)
    assert r.status == "killed" and r.exit_reason == "KeyboardInterrupt"


def test_fluent_api_acts_on_active_run(store_uri: str, client: mltrail.Client) -> None:
    with pytest.raises(MltrailError, match="no active run"):
        mltrail.log({"a": 1.0})
    run = mltrail.init(project="p", uri=store_uri)
    assert mltrail.active_run() is run
    mltrail.log({"a": 1.0})
    mltrail.finish()
    assert mltrail.active_run() is None
    assert client.get_run(run.id).summary == {"a": 1.0}


def test_many_threads_logging_to_one_run(make_run: MakeRun, client: mltrail.Client) -> None:
    run = make_run()

    def worker(t: int) -> None:
        for i in range(2000):
            run.log({f"t{t}": float(i)}, step=i)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.finish()
    for t in range(8):
        hist = client.metric_history(run.id, f"t{t}")
        assert [p.step for p in hist] == list(range(2000))
        assert [p.value for p in hist] == [float(i) for i in range(2000)]


def test_million_points_downsampled_keep_spikes(make_run: MakeRun, client: mltrail.Client) -> None:
    run = make_run()
    n = 200_000
    for i in range(n):
        run.log({"loss": 1.0}, step=i)
    run.log({"loss": 100.0}, step=123_457)  # a spike, written out of order
    run.log({"loss": -5.0}, step=7)
    run.finish()
    full = client.metric_history(run.id, "loss")
    assert len(full) == n
    small = client.metric_history(run.id, "loss", max_points=500)
    assert len(small) <= 500
    values = [p.value for p in small]
    assert max(values) == 100.0 and min(values) == -5.0
    assert small[0].step == 0 and small[-1].step == n - 1


def test_init_config_is_what_the_store_reads_back(
    make_run: MakeRun, client: mltrail.Client
) -> None:
    """init does not re-read a new run: its config must equal the stored one anyway."""
    config = {"b": (1, 2), "a": {"x": np.float32(0.5), "y": None}, "s": "0.1",
              "big": 10**20, "inf": math.inf, "f": Fraction(1, 3), "t": True}  # fmt: skip
    run = make_run(config=config, tags={"team": "cv"})
    stored = client.get_run(run.id)
    assert dict(run.config) == stored.config
    assert list(run.config) == list(stored.config)  # sorted the same way
    assert run.tags == stored.tags and run.name == stored.name
    run.finish()


def test_a_run_costs_four_transactions(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """init (create, params), one metrics batch, the final status: 4 write transactions.

    The finish record is applied directly, not replayed from the spool. (Without system
    metrics: their monitor adds its energy summary at finish.)
    """
    monkeypatch.setenv("MLTRAIL_SYSTEM_INTERVAL", "0")
    from sqlalchemy import event

    from mltrail.config import local_dir, resolve_uri
    from mltrail.store import open_store

    store: Any = open_store(store_uri)
    mltrail.init(project="p", uri=store_uri, config={"a": 1}).finish()  # warm up
    commits: list[int] = []

    def count(conn: Any) -> None:
        commits.append(1)

    event.listen(store.engine, "commit", count)
    try:
        run = mltrail.init(project="p", uri=store_uri, config={"a": 1}, tags={"t": "x"})
        run.log({"m": 1.0, "n": 2.0})
        run.finish("failed", exit_code=3, reason="boom")
    finally:
        event.remove(store.engine, "commit", count)
    assert len(commits) == 4
    r = mltrail.Client(store_uri).get_run(run.id)
    assert (r.status, r.exit_code, r.exit_reason) == ("failed", 3, "boom")
    assert r.metrics["n"].last == 2.0
    assert not list((local_dir(resolve_uri(store_uri)) / "spool").glob("*.spool"))
