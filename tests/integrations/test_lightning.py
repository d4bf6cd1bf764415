"""PyTorch Lightning: the Logger and autolog on a real 2-epoch regression (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import mltrail
from mltrail.integrations.lightning import MltrailLogger
from tests.integrations.frameworks import TORCH, quiet_import

pl = quiet_import("pytorch_lightning")
ModelCheckpoint = quiet_import("pytorch_lightning.callbacks").ModelCheckpoint
pytestmark = [*TORCH, pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


class Tiny(pl.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.Linear(hidden, 1))

    def training_step(self, batch: Any, _: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, _: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _loader() -> Any:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g)
    y = x.sum(dim=1, keepdim=True)
    ds = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(ds, batch_size=8)


def _trainer(tmp_path: Path, **kwargs: Any) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=3,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        accelerator="cpu",
        devices=1,
        **kwargs,
    )


def test_logger_logs_hparams_metrics_and_checkpoints_with_aliases(
    client: mltrail.Client, tmp_path: Path
) -> None:
    ckpt = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", monitor="val_loss", save_top_k=2, save_last=True
    )
    logger = MltrailLogger(project="pl", name="tiny", log_model="all")
    _trainer(tmp_path, logger=logger, callbacks=[ckpt]).fit(Tiny(), _loader(), _loader())
    (rec,) = client.list_runs("pl")
    assert rec.name == "tiny" and rec.status == "finished"
    assert rec.config == {"lr": 0.05, "hidden": 4}
    assert len(client.metric_history(rec.id, "train_loss")) == 12  # 4 steps x 3 epochs
    assert [p.step for p in client.metric_history(rec.id, "val_loss")] == [3, 7, 11]
    versions = client.artifact_versions(f"pl/model-{rec.id}")
    assert len(versions) >= 2
    best = client.get_artifact(f"pl/model-{rec.id}:best")
    assert best.metadata["score"] == pytest.approx(float(ckpt.best_model_score))
    assert best.metadata["checkpoint"]["monitor"] == "val_loss"
    latest = client.get_artifact(f"pl/model-{rec.id}:latest")
    assert latest.version == max(v.version for v in versions)
    folder = client.download_artifact(f"pl/model-{rec.id}:best", tmp_path / "dl")
    restored = Tiny.load_from_checkpoint(folder / "model.ckpt")
    assert restored.hparams.hidden == 4


def test_autolog_adds_the_logger_and_keeps_tensorboard_out_of_the_run(
    client: mltrail.Client, tmp_path: Path
) -> None:
    mltrail.autolog(frameworks=["pytorch_lightning", "tensorboard"])
    from pytorch_lightning.loggers import TensorBoardLogger

    trainer = _trainer(tmp_path, logger=TensorBoardLogger(str(tmp_path / "tb")))
    with mltrail.init(project="pl") as run:
        trainer.fit(Tiny(), _loader(), _loader())
    assert run.status == "finished"  # the user's run is left for the user to finish
    rec = client.get_run(run.id)
    assert rec.config["lr"] == 0.05
    assert rec.metrics["train_loss"].count == 12  # once, not twice through TensorBoard
    assert client.get_artifact(f"pl/model-{run.id}:best").metadata["framework"] == "lightning"
