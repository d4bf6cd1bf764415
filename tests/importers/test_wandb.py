"""W&B offline run folders written by the real wandb package (WANDB_MODE=offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

import mltrail
from mltrail.importers.wandb import import_wandb, read_records
from tests.importers.helpers import run_python, shared_folder

WRITE = r"""
import wandb
run = wandb.init(project="vision", name="resnet", config={"lr": 0.1, "model": {"depth": 18}},
                 tags=["baseline", "cnn"], notes="first try", group="sweep-1", job_type="train")
for step in range(20):
    run.log({"loss": 1.0 / (step + 1), "acc": step / 20, "label": "text"})
run.log({"val/loss": 0.3}, step=25)
run.summary["best_acc"] = 0.95
with open(f"{run.dir}/notes.txt", "w") as fh:
    fh.write("kept")
run.save(f"{run.dir}/notes.txt", policy="now")
run.finish()
failed = wandb.init(project="vision", name="crashy")
failed.log({"loss": 9.0})
failed.finish(exit_code=1)
"""


def _write(folder: Path) -> str:
    run_python(WRITE, cwd=folder, WANDB_MODE="offline", WANDB_SILENT="true",
               WANDB_DIR=str(folder), WANDB_DISABLE_GIT="true", WANDB_CONSOLE="off")  # fmt: skip
    return "written"


@pytest.fixture(scope="session")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_folder(tmp_path_factory, "wandb", _write)[0] / "wandb"


def test_import_offline_runs_once(client: mltrail.Client, wandb_dir: Path) -> None:
    report = import_wandb([wandb_dir], client)
    assert len(report.imported) == 2
    assert [s["source_id"].split(":")[-1] for s in report.skipped] == ["label"]
    runs = {r.name: r for r in client.list_runs("vision")}
    run, crashy = runs["resnet"], runs["crashy"]
    assert run.config == {"lr": 0.1, "model.depth": 18}
    assert set(run.tags) >= {"baseline", "cnn"} and run.notes == "first try"
    assert run.group == "sweep-1" and run.job_type == "train" and run.status == "finished"
    assert crashy.status == "failed" and crashy.exit_code == 1
    loss = client.metric_history(run.id, "loss")
    assert [p.step for p in loss] == list(range(20)) and loss[0].value == 1.0
    assert client.metric_history(run.id, "val/loss")[0].step == 25
    assert run.summary["best_acc"] == 0.95
    again = import_wandb([wandb_dir], client)
    assert again.imported == [] and len(client.list_runs("vision")) == 2


def test_torn_records_end_the_read(wandb_dir: Path, tmp_path: Path) -> None:
    (path,) = sorted(wandb_dir.glob("offline-run-*/run-*.wandb"))[:1]
    whole = list(read_records(path))
    cut = tmp_path / "run-cut.wandb"
    cut.write_bytes(path.read_bytes()[:-5])  # a process killed mid-write
    assert 0 < len(list(read_records(cut))) < len(whole)
