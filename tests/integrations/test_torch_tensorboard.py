"""``torch.utils.tensorboard.SummaryWriter`` mirrored by autolog (its add_hparams calls
add_scalar itself: the metrics must reach the run once)."""

from __future__ import annotations

from pathlib import Path

import mltrail
from tests.integrations.frameworks import TORCH, quiet_import

SummaryWriter = quiet_import("torch.utils.tensorboard").SummaryWriter
pytestmark = TORCH


def test_autolog_mirrors_torch_summary_writer(client: mltrail.Client, tmp_path: Path) -> None:
    assert "tensorboard" in mltrail.autolog(frameworks=["tensorboard"])
    with mltrail.init(project="tb") as run:
        writer = SummaryWriter(str(tmp_path / "logs"))
        for step in range(4):
            writer.add_scalar("loss", 1.0 - step / 10, step)
        writer.add_scalars("lr", {"group0": 0.1, "group1": 0.01}, 3)
        writer.add_hparams({"lr": 0.1, "layers": 2}, {"hp/acc": 0.8})
        writer.close()
    rec = client.get_run(run.id)
    assert len(client.metric_history(run.id, "loss")) == 4
    assert rec.summary["lr/group1"] == 0.01
    assert rec.config == {"lr": 0.1, "layers": 2}
    assert rec.metrics["hp/acc"].count == 1
