"""Factories for the capture tests: real git repositories, and a stand-in for NVML.

There is no GPU on the test machines, so ``fake_nvml`` installs a small ``pynvml``
module (the third-party boundary, not our code) with the calls ``_nvml.Nvml`` makes.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mltrail.client.capture._nvml import load_nvml

GIT_ID = ("-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false")


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *GIT_ID, *args], cwd=repo, check=True, capture_output=True, text=True
    )
    return out.stdout


@pytest.fixture(autouse=True)
def _hermetic_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git config leaks in (default branch, hooks, signing)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """``make_repo(files={"a.py": "..."}, commit=True)`` -> path of a fresh repository."""
    counter = iter(range(1000))

    def make(files: dict[str, str] | None = None, *, commit: bool = True) -> Path:
        repo = tmp_path / f"repo{next(counter)}"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        for name, text in (files or {"train.py": "print('hi')\n"}).items():
            path = repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(repo, "add", "-A")
        if commit:
            git(repo, "commit", "-q", "-m", "initial")
        return repo.resolve()

    return make


def _fake_pynvml(gpus: int, *, energy_counter: bool, fail_init: bool) -> types.ModuleType:
    mod = types.ModuleType("pynvml")
    energy_mj = [0] * gpus

    class NVMLError(Exception):
        pass

    def init() -> None:
        if fail_init:
            raise NVMLError("NVML Shared Library Not Found")

    def total_energy(handle: tuple[str, int]) -> int:
        if not energy_counter:
            raise NVMLError("Not Supported")
        energy_mj[handle[1]] += 5_000  # 5 J between two readings
        return energy_mj[handle[1]]

    attrs: dict[str, Any] = {
        "NVMLError": NVMLError,
        "NVML_TEMPERATURE_GPU": 0,
        "nvmlInit": init,
        "nvmlDeviceGetCount": lambda: gpus,
        "nvmlDeviceGetHandleByIndex": lambda i: ("gpu", i),
        "nvmlDeviceGetName": lambda h: b"NVIDIA A100-SXM4-40GB",
        "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(
            total=40 * 2**30, used=3 * 2**30, free=37 * 2**30
        ),
        "nvmlSystemGetDriverVersion": lambda: "535.104.05",
        "nvmlSystemGetCudaDriverVersion": lambda: 12020,
        "nvmlDeviceGetUtilizationRates": lambda h: types.SimpleNamespace(gpu=87, memory=40),
        "nvmlDeviceGetTemperature": lambda h, sensor: 65,
        "nvmlDeviceGetPowerUsage": lambda h: 250_000,  # mW
        "nvmlDeviceGetTotalEnergyConsumption": total_energy,
    }
    for name, value in attrs.items():
        setattr(mod, name, value)
    return mod


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., types.ModuleType]]:
    """``fake_nvml(gpus=2, energy_counter=False)`` installs a fake ``pynvml``."""

    def install(
        gpus: int = 1, *, energy_counter: bool = True, fail_init: bool = False
    ) -> types.ModuleType:
        mod = _fake_pynvml(gpus, energy_counter=energy_counter, fail_init=fail_init)
        monkeypatch.setitem(sys.modules, "pynvml", mod)
        load_nvml.cache_clear()
        return mod

    yield install
    load_nvml.cache_clear()
