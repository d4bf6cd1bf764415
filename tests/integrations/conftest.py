"""Integration tests train tiny real models (CPU, seconds) and read back what was logged.

Every test gets its own SQLite store through ``MLTRAIL_TRACKING_URI`` (the integrations
start runs with ``mltrail.init()`` when none is active), without system sampling or
captured environment (for speed), and ``mltrail.autolog`` is switched off afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import mltrail

# Keras 3 runs on PyTorch here (TensorFlow is not installed); set before keras is imported.
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("WANDB_MODE", "offline")


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    store = f"sqlite:///{tmp_path / 'store' / 'mltrail.db'}"
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", store)
    monkeypatch.setenv("MLTRAIL_SYSTEM_INTERVAL", "0")
    monkeypatch.setenv("MLTRAIL_CONSOLE", "off")
    for section in ("GIT", "DIFF", "ENV", "PACKAGES", "HARDWARE"):
        monkeypatch.setenv(f"MLTRAIL_CAPTURE_{section}", "0")
    yield store
    mltrail.autolog(disable=True)


@pytest.fixture
def client(uri: str) -> mltrail.Client:
    return mltrail.Client(uri)
