"""TensorBoard event files written by tensorboardX, read by the tensorboard package."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboardX import SummaryWriter

import mltrail
from mltrail.importers.tensorboard import import_tensorboard

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="session")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tb") / "runs"
    for name, lr in (("lr-0.1", 0.1), ("lr-0.01", 0.01)):
        writer = SummaryWriter(str(root / name))
        for step in range(0, 30, 3):
            writer.add_scalar("train/loss", lr * 10 / (step + 1), step)
        writer.add_histogram("weights", [0.1, 0.2, 0.3], 0)
        writer.close()
    hp = SummaryWriter(str(root / "hp"))
    hp.add_hparams({"lr": 0.1, "layers": 2, "opt": "adam"}, {"hparam/acc": 0.75})
    hp.close()
    return root


def test_import_scalars_and_hparams_once(client: mltrail.Client, logdir: Path) -> None:
    report = import_tensorboard(logdir, client, project="tb")
    names = sorted(i["source_id"] for i in report.imported)
    assert len(names) == 3 and "lr-0.1" in names
    skipped = {(s["kind"], s["source_id"]) for s in report.skipped}
    assert skipped == {("histograms", "lr-0.1"), ("histograms", "lr-0.01"), ("run", "hp")}
    runs = {r.name: r for r in client.list_runs("tb")}
    history = client.metric_history(runs["lr-0.1"].id, "train/loss")
    assert [p.step for p in history] == list(range(0, 30, 3))
    assert history[0].value == pytest.approx(1.0) and history[0].timestamp > 1e9
    (hp,) = [r for name, r in runs.items() if name.startswith("hp")]
    assert hp.config == {"layers": 2, "lr": 0.1, "opt": "adam"}
    assert hp.summary["hparam/acc"] == pytest.approx(0.75)
    again = import_tensorboard(logdir, client, project="tb")
    assert again.imported == [] and len(client.list_runs("tb")) == 3
