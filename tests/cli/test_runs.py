"""``mltrail runs ls|show|diff`` against SQLite and PostgreSQL stores."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

import mltrail
from tests.cli.conftest import Invoke, MakeRun
from tests.cli.helpers import field, header, loads, ok, rows, subprocess_env

RUN_FIELDS = {
    "id", "project", "name", "status", "exit_code", "exit_reason", "created_at", "started_at",
    "ended_at", "duration", "user", "group", "job_type", "parent_id", "notes", "tags", "config",
    "summary", "metrics", "metadata",
}  # fmt: skip


def _logged(make_run: MakeRun, values: list[float], **kwargs: object) -> mltrail.Run:
    """A finished run that logged ``values`` as ``loss`` at steps 0, 1, ..."""
    with make_run(**kwargs) as run:
        for v in values:
            run.log({"loss": v})
    return run


# -- runs ls -------------------------------------------------------------------------


def test_ls_empty_store(cli: Invoke) -> None:
    assert "no runs yet" in ok(cli("runs", "ls"))
    assert loads(ok(cli("runs", "ls", "--json"))) == []


def test_ls_table_has_ids_names_status_and_metric_columns(make_run: MakeRun, cli: Invoke) -> None:
    first = _logged(make_run, [0.5, 0.25], name="first", config={"lr": 0.1})
    with make_run(project="other", name="second") as second:
        second.log({"acc": 0.75, "loss": 2.0})
    live = make_run(name="live")
    out = ok(cli("runs", "ls"))
    # metric columns: the keys of the newest runs first
    assert header(out) == ["id", "name", "project", "status", "created", "duration", "acc", "loss"]
    table = rows(out)
    assert [r[:4] for r in table] == [
        [live.id, "live", "test", "running"],
        [second.id, "second", "other", "finished"],
        [first.id, "first", "test", "finished"],
    ]  # newest first
    assert [r[6:] for r in table] == [["-", "-"], ["0.75", "2"], ["-", "0.25"]]
    assert all(r[4].endswith("s ago") for r in table)
    live.finish()


def test_ls_shows_as_many_metric_columns_as_fit(make_run: MakeRun, cli: Invoke) -> None:
    with make_run(name="r") as run:
        run.log({f"m{i}": float(i) for i in range(10)})
    shown = []
    for width in (70, 80, 100, 250):
        out = ok(cli("runs", "ls", width=width))
        assert all(len(line) <= width for line in out.splitlines())
        assert "…" not in out  # nothing is cut: what does not fit is left out
        assert rows(out)[0][:2] == [run.id, "r"]
        metrics = header(out)[6:]
        assert metrics == [f"m{i}" for i in range(len(metrics))]
        shown.append(len(metrics))
    assert shown[0] >= 1 and shown == sorted(shown) and shown[-1] == 10


def test_ls_never_truncates_a_long_run_id(make_run: MakeRun, cli: Invoke) -> None:
    """Ids longer than 24 characters were cut with an ellipsis; users type them back."""
    long_id = "a-custom-run-id-longer-than-24-chars"
    with make_run(run_id=long_id) as run:
        run.log({"loss": 1.0})
    _logged(make_run, [1.0])  # the newest run has a short id
    for width in (80, 120, 200):
        out = ok(cli("runs", "ls", width=width))
        assert long_id in [r[0] for r in rows(out)], out
        assert all(len(line) <= width for line in out.splitlines())


def test_ls_project_filter(make_run: MakeRun, cli: Invoke) -> None:
    mine = [_logged(make_run, [1.0], project="mine") for _ in range(2)]
    _logged(make_run, [1.0], project="theirs")
    out = ok(cli("runs", "ls", "--project", "mine"))
    assert "runs in mine" in out
    assert "project" not in header(out)  # redundant with the filter
    assert sorted(r[0] for r in rows(out)) == sorted(r.id for r in mine)
    data = loads(ok(cli("runs", "ls", "-p", "mine", "--json")))
    assert {d["project"] for d in data} == {"mine"} and len(data) == 2


def test_ls_limit_keeps_the_newest(make_run: MakeRun, cli: Invoke) -> None:
    runs = [_logged(make_run, [float(i)], name=f"r{i}") for i in range(3)]
    newest_first = [r.id for r in reversed(runs)]
    for limit in (1, 2, 5):
        data = loads(ok(cli("runs", "ls", "--limit", str(limit), "--json")))
        assert [d["id"] for d in data] == newest_first[:limit]
        table = rows(ok(cli("runs", "ls", "-n", str(limit))))
        assert [r[0] for r in table] == newest_first[:limit]


def test_ls_json_has_every_field(make_run: MakeRun, cli: Invoke) -> None:
    with make_run(
        name="full", config={"lr": 0.01, "model": {"depth": 3}}, tags={"cnn": None, "ds": "mnist"},
        notes="first try", group="g1", job_type="train",
    ) as run:  # fmt: skip
        run.log({"loss": 1.0})
        run.log({"loss": 0.5})
        run.summary["best"] = 0.9
    (data,) = loads(ok(cli("runs", "ls", "--json")))
    assert set(data) == RUN_FIELDS
    assert (data["id"], data["name"], data["project"], data["status"]) == (
        run.id, "full", "test", "finished",
    )  # fmt: skip
    assert (data["group"], data["job_type"], data["notes"]) == ("g1", "train", "first try")
    assert data["exit_code"] == 0 and data["exit_reason"] is None
    assert data["config"] == {"lr": 0.01, "model.depth": 3}
    assert data["tags"] == {"cnn": "", "ds": "mnist"}
    assert data["summary"] == {"best": 0.9, "loss": 0.5}
    assert data["metrics"] == {
        "loss": {"last": 0.5, "last_step": 1, "min": 0.5, "max": 1.0, "count": 2}
    }
    assert data["started_at"] <= data["ended_at"]
    assert data["duration"] == pytest.approx(data["ended_at"] - data["started_at"])


def test_non_finite_values_as_strings_in_json_and_words_in_tables(
    make_run: MakeRun, cli: Invoke
) -> None:
    for name, value in [("nan", math.nan), ("pinf", math.inf), ("ninf", -math.inf)]:
        _logged(make_run, [value], name=name)
    data = {d["name"]: d for d in loads(ok(cli("runs", "ls", "--json")))}
    assert data["nan"]["summary"] == {"loss": "NaN"}
    assert data["pinf"]["summary"] == {"loss": "Infinity"}
    assert data["ninf"]["summary"] == {"loss": "-Infinity"}
    assert data["nan"]["metrics"]["loss"] == {
        "last": "NaN", "last_step": 0, "min": None, "max": None, "count": 1,
    }  # fmt: skip
    assert data["ninf"]["metrics"]["loss"]["min"] == "-Infinity"
    table = {r[1]: r[-1] for r in rows(ok(cli("runs", "ls", width=80)))}
    assert table == {"nan": "NaN", "pinf": "inf", "ninf": "-inf"}


def test_ls_reads_the_uri_from_each_source(
    make_run: MakeRun, cli: Invoke, store_uri: str, tmp_path: Path
) -> None:
    run = _logged(make_run, [1.0])
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    for argv, env in [
        (["--tracking-uri", store_uri], {}),
        (["-u", store_uri], {}),
        ([], {"MLTRAIL_TRACKING_URI": store_uri}),
        (["-u", store_uri], {"MLTRAIL_TRACKING_URI": elsewhere}),  # the option wins
    ]:
        data = loads(ok(cli("runs", "ls", "--json", *argv, uri=False, env=env)))
        assert [d["id"] for d in data] == [run.id]


def test_user_text_is_shown_as_is_not_as_rich_markup(make_run: MakeRun, cli: Invoke) -> None:
    """Names, notes, config and keys once went through Rich markup: ``[/]`` crashed it."""
    tricky = "[/] [bold]x[/bold] :smile:"
    with make_run(
        project="p[/]", name="n[red]", notes=tricky, config={"s": tricky}, tags={"t": tricky}
    ) as run:
        run.log({"k[/]": 1.0})
    out = ok(cli("runs", "ls"))
    assert "n[red]" in out and "p[/]" in out and "k[/]" in out
    out = ok(cli("runs", "show", run.id))
    assert field(out, "notes") == tricky and field(out, "tags") == f"t={tricky}"
    assert ["s", tricky] in rows(out)
    assert "k[/]" in out
    assert "p[/]" in ok(cli("projects", "ls"))


# -- runs show -----------------------------------------------------------------------


def test_show_everything_about_a_run(make_run: MakeRun, cli: Invoke, full_capture: None) -> None:
    with make_run(
        name="baseline",
        config={"lr": 0.001, "epochs": 10, "opt": {"name": "adam"}, "layers": [64, 32]},
        tags=["cnn", "v2"], notes="first try", group="sweep-1", job_type="train",
    ) as run:  # fmt: skip
        for v in [4.0, 1.0, 2.0, 3.0]:
            run.log({"loss": v})
        run.log({"acc": 0.5}, step=10)
        run.summary["best_acc"] = 0.98
    out = ok(cli("runs", "show", run.id))
    assert field(out, "id") == run.id
    assert field(out, "name") == "baseline"
    assert field(out, "project") == "test"
    assert field(out, "status") == "finished"
    assert field(out, "exit") == "0"
    assert field(out, "group") == "sweep-1" and field(out, "job type") == "train"
    assert field(out, "parent") == "-"
    assert field(out, "tags") == "cnn, v2"
    assert field(out, "notes") == "first try"
    table = rows(out)
    assert ["lr", "0.001"] in table and ["epochs", "10"] in table
    assert ["opt.name", "adam"] in table and ["layers", "[64, 32]"] in table
    # key, last, step, min, max, count
    assert ["loss", "3", "3", "1", "4", "4"] in table
    assert ["acc", "0.5", "10", "0.5", "0.5", "1"] in table
    assert ["best_acc (summary)", "0.98", "", "", "", ""] in table


def test_show_running_and_failed_runs(make_run: MakeRun, cli: Invoke) -> None:
    run = make_run(name="bare")
    out = ok(cli("runs", "show", run.id))
    assert field(out, "status") == "running"
    assert field(out, "ended") == "-" and field(out, "exit") == "-"
    assert field(out, "tags") == "-" and field(out, "notes") == "-"
    assert "config" not in out and "metrics" not in out
    run.finish()
    with pytest.raises(ValueError), make_run(name="boom") as failed:
        raise ValueError("diverged [/]")
    out = ok(cli("runs", "show", failed.id))
    assert field(out, "status") == "failed"
    assert field(out, "exit") == "1 ValueError: diverged [/]"


def test_show_json(make_run: MakeRun, cli: Invoke) -> None:
    with make_run(name="parent") as parent:
        pass
    run = _logged(
        make_run, [2.0, math.inf, 1.0], name="j", config={"lr": 0.1}, tags=["x"], notes="n",
        parent=parent,
    )  # fmt: skip
    data = loads(ok(cli("runs", "show", run.id, "--json")))
    assert set(data) == RUN_FIELDS
    assert (data["id"], data["name"], data["notes"], data["tags"]) == (run.id, "j", "n", {"x": ""})
    assert data["config"] == {"lr": 0.1}
    assert data["metrics"] == {
        "loss": {"last": 1.0, "last_step": 2, "min": 1.0, "max": "Infinity", "count": 3}
    }
    assert data["parent_id"] == parent.id
    assert field(ok(cli("runs", "show", run.id)), "parent") == parent.id
    assert data == next(d for d in loads(ok(cli("runs", "ls", "--json"))) if d["id"] == run.id)


# -- runs diff -----------------------------------------------------------------------


def _pair(make_run: MakeRun, config_b: dict[str, object], **log_b: float) -> tuple[str, str]:
    with make_run(name="a", config={"lr": 0.1, "epochs": 10, "opt": "adam"}) as a:
        a.log({"loss": 0.5, "acc": 0.9})
    with make_run(name="b", config=config_b) as b:
        b.log(log_b)
    return a.id, b.id


def test_diff_shows_only_what_differs_and_all_with_all(make_run: MakeRun, cli: Invoke) -> None:
    a, b = _pair(make_run, {"lr": 0.2, "epochs": 10, "opt": "adam"}, loss=0.25, acc=0.9)
    data = loads(ok(cli("runs", "diff", a, b, "--json")))
    assert data == [
        {"section": "config", "key": "lr", "a": 0.1, "b": 0.2},
        {"section": "summary", "key": "loss", "a": 0.5, "b": 0.25},
    ]
    out = ok(cli("runs", "diff", a, b))
    assert f"a ({a}) vs b ({b})" in " ".join(out.split())  # the title
    assert rows(out) == [["config", "lr", "0.1", "0.2"], ["summary", "loss", "0.5", "0.25"]]

    data = loads(ok(cli("runs", "diff", a, b, "--all", "--json")))
    keys = {(d["section"], d["key"]) for d in data}
    assert keys >= {
        ("config", "lr"), ("config", "epochs"), ("config", "opt"),
        ("summary", "loss"), ("summary", "acc"),
        ("run", "project"), ("run", "status"), ("run", "user"),
    }  # fmt: skip
    assert {"section": "config", "key": "epochs", "a": 10, "b": 10} in data
    table = rows(ok(cli("runs", "diff", a, b, "--all")))
    assert ["config", "opt", "adam", "adam"] in table
    assert ["run", "status", "finished", "finished"] in table


def test_diff_keys_on_one_side_only_and_identical_runs(make_run: MakeRun, cli: Invoke) -> None:
    a, b = _pair(make_run, {"lr": 0.1, "epochs": 10, "opt": "adam", "wd": 0.01}, loss=0.5)
    data = loads(ok(cli("runs", "diff", a, b, "--json")))
    assert data == [
        {"section": "config", "key": "wd", "a": None, "b": 0.01},
        {"section": "summary", "key": "acc", "a": 0.9, "b": None},
    ]
    assert ["config", "wd", "-", "0.01"] in rows(ok(cli("runs", "diff", a, b)))

    a, b = _pair(make_run, {"lr": 0.1, "epochs": 10, "opt": "adam"}, loss=0.5, acc=0.9)
    assert loads(ok(cli("runs", "diff", a, b, "--json"))) == []
    assert ok(cli("runs", "diff", a, b)).strip() == "no differences"
    assert loads(ok(cli("runs", "diff", a, a, "--json"))) == []


def test_diff_status_and_tags(make_run: MakeRun, cli: Invoke) -> None:
    with make_run(tags={"stage": "dev"}) as a:
        pass
    b = make_run(tags={"stage": "prod", "extra": None})
    data = loads(ok(cli("runs", "diff", a.id, b.id, "--json")))
    assert data == [
        {"section": "run", "key": "status", "a": "finished", "b": "running"},
        {"section": "tags", "key": "extra", "a": None, "b": ""},
        {"section": "tags", "key": "stage", "a": "dev", "b": "prod"},
    ]
    b.finish()


def test_diff_compares_values_not_their_rounded_display(make_run: MakeRun, cli: Invoke) -> None:
    """Values that print the same were hidden as 'no difference' before."""
    cases: list[tuple[object, object, list[str]]] = [
        (0.001, 0.0010000001, ["0.001", "0.0010000001"]),  # equal to 6 digits
        (1, "1", ["1", "'1'"]),
        (True, 1, ["True", "1"]),
        ("-", None, ["'-'", "None"]),  # "-" is also how a missing value is shown
    ]
    for va, vb, shown in cases:
        with make_run(config={"x": va}) as a:
            pass
        with make_run(config={} if vb is None else {"x": vb}) as b:
            pass
        data = loads(ok(cli("runs", "diff", a.id, b.id, "--json")))
        assert data == [{"section": "config", "key": "x", "a": va, "b": vb}]
        assert rows(ok(cli("runs", "diff", a.id, b.id))) == [["config", "x", *shown]]


def test_diff_numbers(make_run: MakeRun, cli: Invoke) -> None:
    for va, vb in [(1, 1.0), (math.nan, math.nan), (math.inf, math.inf)]:  # the same
        with make_run(config={"x": va}) as a:
            a.log({"m": va})
        with make_run(config={"x": vb}) as b:
            b.log({"m": vb})
        assert loads(ok(cli("runs", "diff", a.id, b.id, "--json"))) == []
    with make_run() as a:
        a.log({"m": math.nan})
    with make_run() as b:
        b.log({"m": -math.inf})
    data = loads(ok(cli("runs", "diff", a.id, b.id, "--json")))
    assert data == [{"section": "summary", "key": "m", "a": "NaN", "b": "-Infinity"}]
    assert rows(ok(cli("runs", "diff", a.id, b.id))) == [["summary", "m", "NaN", "-inf"]]


# -- runs logs -----------------------------------------------------------------------


def test_logs_prints_what_the_run_printed(store_uri: str, tmp_path: Path, cli: Invoke) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import sys, mltrail\n"
        f"run = mltrail.init(project='p', uri={store_uri!r}, console='on')\n"
        "print('epoch 1 [/] :smile:')\n"
        "print('warning: slow', file=sys.stderr)\n"
        "print(run.id)\n"
        "run.finish()\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env=subprocess_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.splitlines()[-1]
    out = ok(cli("runs", "logs", run_id))
    assert "epoch 1 [/] :smile:\n" in out and "warning: slow\n" in out
    assert ok(cli("runs", "logs", run_id, "--follow")) == out  # finished: no waiting
    result = cli("runs", "logs", "nosuch")
    assert isinstance(result.exception, mltrail.errors.RunNotFound)
