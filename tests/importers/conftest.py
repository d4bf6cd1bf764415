"""Importer tests: sources written by the real packages (mlflow, tensorboardX, wandb,
pyarrow in neptune-exporter's layout), imported into every store backend."""

from __future__ import annotations

import pytest

import mltrail


@pytest.fixture(autouse=True)
def _quiet_runs(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("MLTRAIL_SYSTEM_INTERVAL", "0")
    monkeypatch.setenv("MLTRAIL_CONSOLE", "off")
    # PostgreSQL stores need an object location of their own (mltrail.config.objects_uri)
    monkeypatch.setenv("MLTRAIL_OBJECTS", str(tmp_path_factory.mktemp("objects")))
    for section in ("GIT", "DIFF", "ENV", "PACKAGES", "HARDWARE"):
        monkeypatch.setenv(f"MLTRAIL_CAPTURE_{section}", "0")


@pytest.fixture
def client(store_uri: str) -> mltrail.Client:
    return mltrail.Client(store_uri)
