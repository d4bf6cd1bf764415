"""``mltrail sweep CONFIG``, ``mltrail agent ID`` (a program sweep, as W&B's CLI runs it)
and ``mltrail sweep ls|show|stop|resume``, as tables and as JSON."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mltrail.cli import app
from mltrail.cli._common import console
from mltrail.errors import MltrailError
from tests.cli.helpers import PLAIN_ENV, loads, ok, rows

TRAIN = textwrap.dedent("""
    import argparse
    import mltrail

    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--opt.name")
    args = parser.parse_args()
    run = mltrail.init()
    assert run.config["lr"] == args.lr and run.config["opt.name"] == getattr(args, "opt.name")
    for step in range(3):
        run.log({"acc": args.layers * 0.1 + args.lr - 0.01 * (2 - step)})
""")

CONFIG = textwrap.dedent("""
    program: train.py
    method: grid
    run_cap: 3
    name: cli-grid
    metric: {name: acc, goal: maximize}
    parameters:
      lr: {values: [0.01, 0.02]}
      layers: {values: [1, 3]}
      opt:
        parameters:
          name: {value: adam}
""")


@pytest.fixture
def cli(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> object:
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        monkeypatch.setattr(console, "width", 200)
        result = runner.invoke(app, [*args, "--tracking-uri", sqlite_uri], env=PLAIN_ENV)
        if code == 0:
            return ok(result)
        error = result.exception  # main() prints it and exits with its exit_code
        assert isinstance(error, MltrailError) and error.exit_code == code, result.output
        return str(error)

    return invoke


def test_create_run_show_stop_resume(cli: object, tmp_path: Path) -> None:
    run = cli  # type: ignore[assignment]
    (Path.cwd() / "train.py").write_text(TRAIN)
    (Path.cwd() / "sweep.yaml").write_text(CONFIG)
    created = loads(run("sweep", "sweep.yaml", "--project", "cli", "--json"))
    sweep_id = created["id"]
    assert created["agent_command"].startswith(f"mltrail agent {sweep_id} --tracking-uri")
    assert (created["method"], created["project"], created["name"]) == ("grid", "cli", "cli-grid")
    text = run("sweep", "create", "sweep.yaml", "-p", "cli")
    assert "created sweep" in text and "start agents with: mltrail agent" in text

    trials = loads(run("agent", sweep_id, "--count", "2", "--json"))
    assert [t["status"] for t in trials] == ["finished"] * 2
    table = run("agent", sweep_id)  # the last point
    assert rows(table)[0][2] == "finished"

    shown = loads(run("sweep", "show", sweep_id, "--json"))
    assert shown["best"]["params"] == {"lr": 0.01, "layers": 3, "opt": {"name": "adam"}}
    assert [t["rank"] for t in shown["trials"]] == [1, 2, 3]  # run_cap: 3 of the 4 points
    values = [t["value"] for t in shown["trials"]]
    assert values == sorted(values, reverse=True)  # maximize: best first
    assert [i["param"] for i in shown["importance"]] == ["layers", "lr"]
    table = run("sweep", "show", sweep_id, "--limit", "2")
    for expected in (
        "trials ranked by acc (maximize)",
        "best configuration",
        "opt.name",
        "parameter importance",
        "(1 more: --limit 3)",
    ):
        assert expected in table
    assert rows(table)[0][:4] == ["1", "1", shown["best"]["run_id"], "finished"]

    listed = loads(run("sweep", "ls", "--json"))
    assert [(s["id"], s["state"], s["counts"]) for s in listed][-1] == (
        sweep_id,
        "finished",
        {"finished": 3},
    )
    assert listed[-1]["best"]["number"] == shown["best"]["number"]
    assert sweep_id in run("sweep", "ls", "-p", "cli")

    other = loads(run("sweep", "sweep.yaml", "--json"))["id"]
    assert "stopped" in run("sweep", "stop", other)
    assert loads(run("sweep", "stop", other, "--cancel", "--json"))["state"] == "canceled"
    assert "no trial to run" in run("agent", other)
    assert loads(run("sweep", "resume", other, "--json"))["state"] == "running"
    err = run("sweep", "resume", sweep_id, code=5)
    assert "finished" in err
    runs = loads(run("runs", "ls", "-p", "cli", "--where", f"sweep = '{sweep_id}'", "--json"))
    assert len(runs) == 3 and {r["parent_id"] for r in runs} == {sweep_id}


def test_cli_errors_name_the_problem(cli: object) -> None:
    run = cli  # type: ignore[assignment]
    assert "no sweeps yet" in run("sweep", "ls")
    (Path.cwd() / "bad.yaml").write_text("method: grid\nparameters: {lr: {min: 0.1, max: 1.0}}\n")
    assert "parameters.lr" in run("sweep", "bad.yaml", code=2)
    assert "cannot read" in run("sweep", "missing.yaml", code=2)
    assert "no sweep with id" in run("sweep", "show", "nope", code=4)
    (Path.cwd() / "fn.yaml").write_text("method: random\nparameters: {x: {value: 1}}\n")
    sweep_id = loads(run("sweep", "fn.yaml", "--json"))["id"]
    assert "mltrail.agent" in loads(run("sweep", "show", sweep_id, "--json"))["agent_command"]
    assert "has no program" in run("agent", sweep_id, code=2)
