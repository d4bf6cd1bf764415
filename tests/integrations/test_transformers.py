"""Hugging Face Transformers: a tiny BERT built from a config (no download) trained by
``Trainer`` with ``report_to="mltrail"``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import mltrail
import mltrail.integrations.transformers  # registers report_to="mltrail"
from tests.integrations.frameworks import TORCH, quiet_import

hf = quiet_import("transformers")
pytestmark = TORCH


class Pairs(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(n)
        self.ids = torch.randint(0, 50, (n, 8), generator=g)
        self.labels = (self.ids[:, 0] > 25).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def _model() -> Any:
    torch.manual_seed(0)
    config = hf.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
    )
    return hf.BertForSequenceClassification(config)


def test_report_to_mltrail_logs_args_config_metrics_and_checkpoints(
    client: mltrail.Client, tmp_path: Path
) -> None:
    args = hf.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        report_to="mltrail",
        run_name="tiny-bert",
        num_train_epochs=2,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=1,
        eval_strategy="epoch",
        save_strategy="epoch",
        metric_for_best_model="eval_loss",
        load_best_model_at_end=True,
        use_cpu=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    hf.Trainer(model=_model(), args=args, train_dataset=Pairs(32), eval_dataset=Pairs(16)).train()
    (rec,) = client.list_runs()
    assert rec.name == "tiny-bert" and rec.status == "finished"
    assert rec.config["args.learning_rate"] == 1e-3
    assert rec.config["model.hidden_size"] == 16 and rec.config["model.num_parameters"] > 0
    assert [p.step for p in client.metric_history(rec.id, "train/loss")] == list(range(1, 9))
    assert [p.step for p in client.metric_history(rec.id, "eval/loss")] == [4, 8]
    versions = client.artifact_versions(f"default/model-{rec.id}")
    assert len(versions) == 2
    best = client.get_artifact(f"default/model-{rec.id}:best")
    assert best.metadata["global_step"] in (4, 8) and best.metadata["framework"] == "transformers"
    folder = client.download_artifact(f"default/model-{rec.id}:best", tmp_path / "dl")
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
