"""Registry fixtures: isolated objects, cache and signing key; a trained-run factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import mltrail
from mltrail.entities import ArtifactVersion

Train = Callable[..., tuple[mltrail.Run, ArtifactVersion]]


@pytest.fixture(autouse=True)
def _registry_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLTRAIL_OBJECTS", str(tmp_path / "objects"))
    monkeypatch.setenv("MLTRAIL_SIGNING_KEY", str(tmp_path / "keys" / "signing.pem"))
    monkeypatch.setenv("MLTRAIL_USER", "alice")


@pytest.fixture
def train(store_uri: str, tmp_path: Path) -> Train:
    """``train(val_accuracy, weights=...)``: a finished run that logged a model artifact
    and a dataset input, as a real training script would."""
    counter = [0]

    def run(
        val_accuracy: float, weights: str | None = None, **config: object
    ) -> tuple[mltrail.Run, ArtifactVersion]:
        counter[0] += 1
        data = tmp_path / "data" / "train.csv"
        if not data.exists():
            data.parent.mkdir(parents=True)
            data.write_text("x,y\n1,0\n2,1\n")
            prep = mltrail.init(uri=store_uri, project="churn", name="prep")
            prep.log_artifact(data, name="churn-data", type="dataset")
            prep.finish()
        r = mltrail.init(
            uri=store_uri, project="churn", name=f"train-{counter[0]}",
            config={"lr": 0.01 * counter[0], "depth": 6, **config},
        )  # fmt: skip
        r.use_artifact("churn-data:latest")
        for step in range(3):
            r.log({"loss": 1.0 / (step + 1), "val_accuracy": val_accuracy - 0.1 + step * 0.05})
        model_dir = tmp_path / f"model-{counter[0]}"
        model_dir.mkdir()
        (model_dir / "model.bin").write_text(weights or f"weights {counter[0]} " * 100)
        (model_dir / "MLmodel").write_text("flavor: sklearn\n")
        art = r.log_artifact(
            model_dir, name="churn-model", type="model",
            metadata={"framework": "sklearn", "framework_version": "1.5.0"},
        )  # fmt: skip
        r.finish()
        return r, art

    return run
