"""Keras 3 (PyTorch backend): the callback and autolog on a real 2-epoch fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mltrail
from mltrail.integrations.keras import MltrailCallback
from tests.integrations.frameworks import TORCH, quiet_import

keras = quiet_import("keras")  # on PyTorch: KERAS_BACKEND is set in conftest.py
pytestmark = TORCH


def _model() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name="tiny",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return model


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def test_callback_logs_params_epoch_metrics_and_the_model(
    client: mltrail.Client, tmp_path: Path
) -> None:
    x, y = _data()
    model = _model()
    model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[MltrailCallback(project="keras", input_example=x[:5])],
    )
    (rec,) = client.list_runs("keras")
    assert rec.name == "tiny" and rec.status == "finished"
    assert rec.config["epochs"] == 3 and rec.config["optimizer.class"] == "Adam"
    assert rec.config["optimizer.learning_rate"] == pytest.approx(0.01)
    assert [p.step for p in client.metric_history(rec.id, "val_loss")] == [0, 1, 2]
    assert {"loss", "accuracy", "val_accuracy"} <= set(client.metric_keys(rec.id))
    art = client.get_artifact(f"keras/model-{rec.id}")
    assert art.metadata["signature"]["inputs"]["shape"] == [-1, 4]
    folder = client.download_artifact(f"keras/model-{rec.id}", tmp_path / "dl")
    loaded = keras.saving.load_model(folder / "model.keras")
    assert np.allclose(loaded.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0))


def test_autolog_adds_the_callback_to_fit(client: mltrail.Client) -> None:
    mltrail.autolog(frameworks=["keras"], log_models=False)
    x, y = _data()
    with mltrail.init(project="keras") as run:
        _model().fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert len(client.metric_history(run.id, "loss")) == 2
    assert client.list_artifacts("keras") == []
