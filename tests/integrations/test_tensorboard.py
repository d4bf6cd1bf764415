"""TensorBoard SummaryWriter mirroring with tensorboardX (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboardX import SummaryWriter

import mltrail
from mltrail.integrations.tensorboard import mirror

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_mirror_one_writer(client: mltrail.Client, tmp_path: Path) -> None:
    with mltrail.init(project="tb") as run:
        writer = mirror(SummaryWriter(str(tmp_path / "logs")), run)
        for step in range(3):
            writer.add_scalar("train/loss", 1.0 / (step + 1), global_step=step)
            writer.add_scalars("acc", {"train": 0.5 + step / 10, "val": 0.4}, step)
        writer.add_hparams({"lr": 0.1, "opt": "sgd"}, {"hparam/best": 0.9})
        writer.close()
    rec = client.get_run(run.id)
    assert [p.value for p in client.metric_history(run.id, "train/loss")] == [1.0, 0.5, 1 / 3]
    assert [p.step for p in client.metric_history(run.id, "acc/val")] == [0, 1, 2]
    assert rec.config == {"lr": 0.1, "opt": "sgd"}
    assert rec.summary["hparam/best"] == 0.9
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))  # still written


def test_autolog_mirrors_every_writer_into_the_active_run(
    client: mltrail.Client, tmp_path: Path
) -> None:
    mltrail.autolog(frameworks=["tensorboardX"])
    writer = SummaryWriter(str(tmp_path / "logs"))
    writer.add_scalar("ignored", 1.0, 0)  # no active run: only TensorBoard gets it
    with mltrail.init(project="tb") as run:
        writer.add_scalar("loss", 2.0, 5)
    writer.close()
    assert client.metric_keys(run.id) == ["loss"]
    assert client.metric_history(run.id, "loss")[0].step == 5
    mltrail.autolog(disable=True)
    with mltrail.init(project="tb") as other:
        SummaryWriter(str(tmp_path / "l2")).add_scalar("loss", 1.0, 0)
    assert client.metric_keys(other.id) == []
