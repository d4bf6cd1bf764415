"""Pipelines end to end: real pipeline files in tmp dirs, real shell subprocesses."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mltrail.cli import app
from mltrail.client.client import Client
from mltrail.pipelines import PipelineError, StageFailed, build_dag, load_pipeline, plan, repro

PY = sys.executable


@pytest.fixture(autouse=True)
def _quiet_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_SYSTEM_INTERVAL", "0")
    for section in ("GIT", "DIFF", "ENV", "PACKAGES", "HARDWARE"):
        monkeypatch.setenv(f"MLTRAIL_CAPTURE_{section}", "0")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def log_cmd(stage: str, body: str) -> str:
    """A shell command that appends the stage name to ran.log, then runs ``body``."""
    return f"echo {stage} >> ran.log && {body}"


def ran(root: Path) -> list[str]:
    log = root / "ran.log"
    lines = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """prepare: data/raw -> data/processed; train: processed + lr -> model; report."""
    root = tmp_path / "proj"
    write(root / "data/raw/a.txt", "1\n")
    write(root / "data/raw/b.txt", "2\n")
    write(root / "params.yaml", "train:\n  lr: 0.1\nepochs: 3\nreport:\n  title: hi\n")
    prepare = log_cmd(
        "prepare", "mkdir -p data/processed && cat data/raw/*.txt > data/processed/all"
    )
    train = log_cmd("train", "cat data/processed/all > model.bin")
    report = log_cmd("report", "printf 'size: %s\\n' $(wc -c < model.bin) > report.txt")
    stages = {
        "stages": {
            "prepare": {"cmd": prepare, "deps": ["data/raw/"], "outs": ["data/processed/"]},
            "train": {
                "cmd": train,
                "deps": ["data/processed/"],
                "outs": ["model.bin"],
                "params": ["train.lr", "epochs"],
            },
            "report": {
                "cmd": report,
                "deps": ["model.bin"],
                "params": ["report.title"],
                "metrics": ["report.txt"],
            },
        }
    }
    (root / "mltrail.yaml").write_text(yaml.safe_dump(stages), encoding="utf-8")
    return root


def test_first_repro_runs_all_then_none(project: Path) -> None:
    pipeline = load_pipeline(project)
    result = repro(pipeline)
    assert result.ran == ["prepare", "train", "report"]
    assert ran(project) == ["prepare", "train", "report"]
    assert (project / "model.bin").read_text() == "1\n2\n"
    lock = yaml.safe_load((project / "mltrail.lock").read_text())
    assert set(lock["stages"]) == {"prepare", "train", "report"}
    assert lock["stages"]["train"]["params"] == {"params.yaml": {"train.lr": 0.1, "epochs": 3}}
    assert all(e["hash"] for e in lock["stages"]["train"]["deps"])
    again = repro(load_pipeline(project))
    assert again.ran == [] and sorted(again.skipped) == ["prepare", "report", "train"]
    assert ran(project) == []
    runs = Client().search_runs("default")
    assert sorted(r.name for r in runs) == ["prepare", "report", "train"]
    assert {r.status for r in runs} == {"finished"}
    train = next(r for r in runs if r.name == "train")
    assert train.job_type == "pipeline-stage"
    assert train.config == {"train.lr": 0.1, "epochs": 3}
    # lineage: prepare's run -> its out (an artifact) -> train's run -> model.bin
    up = Client().lineage(train.id, "up", depth=2)
    assert [c.id for c in up.children] == ["prepare.data-processed:v0"]
    assert [c.id for c in up.children[0].children] == [
        next(r.id for r in runs if r.name == "prepare")
    ]
    prepare = next(r for r in runs if r.name == "prepare")
    assert [i["name"] for i in prepare.metadata["inputs"]] == ["data/raw"]  # a raw dep
    assert lock["stages"]["prepare"]["outs"][0]["artifact"] == "prepare.data-processed:v0"
    model = Client().get_artifact("train.model.bin")
    assert model.run_id == train.id and model.type == "pipeline-output"
    assert Client().get_artifact("prepare.data-processed").file_count == 1
    report = next(r for r in runs if r.name == "report")
    assert report.summary["size"] == 4


def test_changed_dep_reruns_that_stage_and_later_ones(project: Path) -> None:
    repro(load_pipeline(project))
    ran(project)
    (project / "data/raw/b.txt").write_text("3\n")
    assert plan(load_pipeline(project)).reasons["prepare"] == ["dep data/raw changed"]
    result = repro(load_pipeline(project))
    assert ran(project) == ["prepare", "train", "report"]
    assert result.reasons["train"] == ["dep data/processed changed"]


def test_changed_param_reruns_only_the_stage_using_it(project: Path) -> None:
    repro(load_pipeline(project))
    ran(project)
    write(project / "params.yaml", "train:\n  lr: 0.1\nepochs: 3\nreport:\n  title: bye\n")
    result = repro(load_pipeline(project))
    assert ran(project) == ["report"]
    assert result.reasons == {"report": ["param report.title changed"]}


def test_changed_cmd_and_missing_out_rerun(project: Path) -> None:
    repro(load_pipeline(project))
    ran(project)
    (project / "report.txt").unlink()
    assert plan(load_pipeline(project)).reasons == {"report": ["out report.txt missing"]}
    assert list(repro(load_pipeline(project)).restored) == ["report"]  # from the run cache
    assert ran(project) == [] and (project / "report.txt").exists()
    (project / "report.txt").unlink()
    repro(load_pipeline(project), run_cache=False)
    assert ran(project) == ["report"]

    spec = yaml.safe_load((project / "mltrail.yaml").read_text())
    spec["stages"]["report"]["cmd"] += " && true"
    (project / "mltrail.yaml").write_text(yaml.safe_dump(spec))
    result = repro(load_pipeline(project))
    assert ran(project) == ["report"] and result.reasons == {"report": ["cmd changed"]}


def test_dry_runs_nothing_and_says_why(project: Path) -> None:
    result = CliRunner().invoke(app, ["repro", "--dry", "--file", str(project)])
    assert result.exit_code == 0, result.output
    assert "would run prepare: never run" in result.stdout
    assert "would run train" in result.stdout
    assert ran(project) == [] and not (project / "mltrail.lock").exists()
    repro(load_pipeline(project))
    ran(project)
    (project / "data/raw/a.txt").write_text("9\n")
    result = CliRunner().invoke(app, ["repro", "--dry", "--file", str(project)])
    assert "would run prepare: dep data/raw changed" in result.stdout
    assert "would run train: upstream stage prepare will run" in result.stdout
    assert ran(project) == []


def test_failing_stage_stops_later_ones_and_keeps_lock(project: Path) -> None:
    repro(load_pipeline(project))
    ran(project)
    lock_before = (project / "mltrail.lock").read_text()
    spec = yaml.safe_load((project / "mltrail.yaml").read_text())
    spec["stages"]["train"]["cmd"] = log_cmd("train", "exit 3")
    (project / "mltrail.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(StageFailed, match="stage 'train' failed: exited with code 3") as info:
        repro(load_pipeline(project), force=False)
    assert info.value.exit_code == 3
    assert ran(project) == ["train"]
    assert (project / "mltrail.lock").read_text() == lock_before
    failed = [r for r in Client().search_runs("default") if r.status == "failed"]
    assert [r.name for r in failed] == ["train"]


def test_failing_stage_exit_code_through_the_cli(project: Path) -> None:
    spec = yaml.safe_load((project / "mltrail.yaml").read_text())
    spec["stages"]["prepare"]["cmd"] = "exit 5"
    (project / "mltrail.yaml").write_text(yaml.safe_dump(spec))
    from mltrail.cli import main

    argv = ["mltrail", "repro", "--file", str(project)]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exc:
            main()
    assert exc.value.code == 5
    assert ran(project) == [] and not (project / "mltrail.lock").exists()


def _pipeline(root: Path, stages: dict[str, object]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mltrail.yaml").write_text(yaml.safe_dump({"stages": stages}))
    return root


def test_cycle_is_an_error_naming_the_stages(tmp_path: Path) -> None:
    root = _pipeline(
        tmp_path,
        {
            "a": {"cmd": "true", "deps": ["y"], "outs": ["x"]},
            "b": {"cmd": "true", "deps": ["x"], "outs": ["y"]},
        },
    )
    with pytest.raises(PipelineError, match=r"cycle in the pipeline: (a -> b -> a|b -> a -> b)"):
        build_dag(load_pipeline(root))


def test_missing_dep_is_an_error(tmp_path: Path) -> None:
    root = _pipeline(tmp_path, {"a": {"cmd": "true", "deps": ["nope.csv"], "outs": ["x"]}})
    with pytest.raises(PipelineError, match=r"dep 'nope\.csv' is missing"):
        repro(load_pipeline(root))


def test_output_claimed_by_two_stages_is_an_error(tmp_path: Path) -> None:
    root = _pipeline(
        tmp_path, {"a": {"cmd": "true", "outs": ["x/"]}, "b": {"cmd": "true", "outs": ["x"]}}
    )
    with pytest.raises(PipelineError, match="output 'x' is claimed by two stages: 'a'"):
        build_dag(load_pipeline(root))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"cmd": "true", "dep": ["x"]}, "unknown field"),
        ({"deps": ["x"]}, "'cmd' must be"),
        ({"cmd": "true", "outs": "x"}, "expected a list"),
        ({"cmd": "true", "outs": ["/abs"]}, "absolute"),
    ],
)
def test_bad_field_is_an_error(tmp_path: Path, body: dict[str, object], message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        load_pipeline(_pipeline(tmp_path, {"a": body}))


def test_missing_param_key_is_an_error(tmp_path: Path) -> None:
    root = _pipeline(tmp_path, {"a": {"cmd": "true", "params": ["nope.key"]}})
    write(root / "params.yaml", "lr: 1\n")
    with pytest.raises(PipelineError, match=r"param 'nope\.key' is not in params\.yaml"):
        repro(load_pipeline(root), record=False)


def test_dvc_yaml_works_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "dvcproj"
    write(root / "data/raw/x.txt", "raw\n")
    write(
        root / "scripts/preprocess.py",
        "import sys, shutil; shutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=True)\n",
    )
    write(
        root / "scripts/train.py",
        "import sys; open(sys.argv[2], 'w').write(str(len(sys.argv[1])))\n",
    )
    write(root / "params.yaml", "learning_rate: 0.01\nepochs: 2\n")
    write(
        root / "dvc.yaml",
        f"""\
        stages:
          preprocess:
            cmd: {PY} scripts/preprocess.py data/raw/ data/processed/
            deps: [data/raw/, scripts/preprocess.py]
            outs: [data/processed/]
          train:
            cmd: {PY} scripts/train.py data/processed/ models/checkpoint.pt
            deps: [data/processed/, scripts/train.py]
            outs:
              - models/checkpoint.pt:
                  cache: false
            params: [learning_rate, epochs]
        """,
    )
    (root / "models").mkdir()
    result = repro(load_pipeline(root), record=False)
    assert result.ran == ["preprocess", "train"]
    assert (root / "data/processed/x.txt").read_text() == "raw\n"
    assert (root / "models/checkpoint.pt").exists()
    assert repro(load_pipeline(root), record=False).ran == []


def test_parallel_jobs_run_independent_stages_together(tmp_path: Path) -> None:
    # each stage waits (up to 10 s) for the other's marker: only a parallel run finishes fast
    wait = "import os,sys,time; open(sys.argv[1],'w').close(); t=time.time()\n" + (
        "while not os.path.exists(sys.argv[2]) and time.time()-t<10: time.sleep(0.02)\n"
        "sys.exit(0 if os.path.exists(sys.argv[2]) else 1)"
    )
    write(tmp_path / "w.py", wait)
    root = _pipeline(
        tmp_path,
        {
            "left": {"cmd": f"{PY} w.py left.out right.out", "outs": ["left.out"]},
            "right": {"cmd": f"{PY} w.py right.out left.out", "outs": ["right.out"]},
        },
    )
    start = time.monotonic()
    result = CliRunner().invoke(app, ["repro", "-j", "2", "--file", str(root), "--json"])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - start < 10
    assert sorted(yaml.safe_load(result.stdout)["ran"]) == ["left", "right"]
    assert (root / "left.out").exists() and (root / "right.out").exists()


def test_target_stage_runs_only_its_upstream(project: Path) -> None:
    repro(load_pipeline(project), "train", record=False)
    assert ran(project) == ["prepare", "train"]
    with pytest.raises(PipelineError, match="no stage named 'nope'"):
        repro(load_pipeline(project), "nope")


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("mermaid", ["flowchart TD", "prepare --> train", "train --> report"]),
        ("dot", ['"prepare" -> "train";', '"train" -> "report";']),
        ("text", ["mltrail.yaml", "prepare", "└── train"]),
    ],
)
def test_dag_formats_show_the_edges(project: Path, fmt: str, expected: list[str]) -> None:
    result = CliRunner().invoke(app, ["dag", "--format", fmt, "--file", str(project)])
    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.stdout


def test_run_cache_restores_outputs_seen_before(project: Path) -> None:
    """lr 0.1 -> 0.2 -> 0.1: the third repro restores train's outs instead of running."""
    repro(load_pipeline(project))
    first = (project / "model.bin").read_bytes()
    ran(project)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("lr: 0.1", "lr: 0.2"))
    (project / "data/raw/a.txt").write_text("changed\n")
    repro(load_pipeline(project))
    assert ran(project) == ["prepare", "train", "report"]
    assert (project / "model.bin").read_bytes() != first

    params.write_text(params.read_text().replace("lr: 0.2", "lr: 0.1"))
    (project / "data/raw/a.txt").write_text("1\n")
    cli = CliRunner().invoke(app, ["repro", "--file", str(project)])
    assert cli.exit_code == 0, cli.output
    assert "Stage prepare: dep data/raw changed; outputs restored from run" in cli.stdout
    assert "Ran 0 stage(s): -; restored 3 from the run cache" in cli.stdout
    assert ran(project) == []  # no command ran: prepare, train and report came back
    assert (project / "model.bin").read_bytes() == first
    assert (project / "data/processed/all").read_text() == "1\n2\n"
    assert repro(load_pipeline(project)).ran == []  # the lock now matches the workspace
    assert len(Client().search_runs("default")) == 6  # restoring records no new run


def test_run_cache_is_skipped_when_asked_or_objects_are_gone(project: Path) -> None:
    repro(load_pipeline(project))
    ran(project)
    (project / "model.bin").unlink()
    result = repro(load_pipeline(project), "train", run_cache=False)
    assert ran(project) == ["train"] and result.restored == {}

    # A restored output must be whole: with its object gone, the stage runs instead.
    (project / "model.bin").unlink()
    objects = Path.cwd() / ".mltrail" / "objects"
    for f in objects.rglob("*"):
        if f.is_file() and f.read_bytes() == b"1\n2\n":
            f.unlink()
    result = repro(load_pipeline(project), "train")
    assert ran(project) == ["train"] and result.restored == {}
    assert (project / "model.bin").read_text() == "1\n2\n"


def test_restored_output_is_a_copy_not_the_stored_object(project: Path) -> None:
    """Writing to a restored out must not change the object store's copy."""
    repro(load_pipeline(project))
    ran(project)
    (project / "model.bin").unlink()
    assert repro(load_pipeline(project), "train").restored
    with open(project / "model.bin", "w") as fh:  # a later command rewrites it in place
        fh.write("overwritten")
    (project / "model.bin").unlink()
    assert repro(load_pipeline(project), "train").restored
    assert (project / "model.bin").read_text() == "1\n2\n"
