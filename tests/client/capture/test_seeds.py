"""Seeding and seed detection."""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from mltrail.client.capture import seeds
from mltrail.client.capture.seeds import detect_seeds, seed_everything
from mltrail.errors import InvalidValueError


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)  # restored after the test
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    monkeypatch.setattr(seeds, "_last_seed", None)


def test_seed_everything_makes_random_and_numpy_repeat() -> None:
    result = seed_everything(1234)
    first = (random.random(), np.random.rand(), np.random.randint(0, 10**6))
    assert seed_everything(1234) == result
    assert (random.random(), np.random.rand(), np.random.randint(0, 10**6)) == first
    assert result["seed"] == 1234
    assert result["seeded"][:3] == ["random", "PYTHONHASHSEED", "numpy"]
    if importlib.util.find_spec("torch") is None:
        assert "torch" not in result["seeded"]
    assert os.environ["PYTHONHASHSEED"] == "1234"


def test_child_processes_get_the_hash_seed() -> None:
    seed_everything(99)
    code = "print(hash('mltrail'))"
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        for _ in range(2)
    }
    assert len(runs) == 1


@pytest.mark.parametrize("bad", [-1, 2**32, True, 1.5, "7"])
def test_bad_seeds(bad: object) -> None:
    with pytest.raises(InvalidValueError):
        seed_everything(bad)  # type: ignore[arg-type]


def test_detect_seeds() -> None:
    before = detect_seeds()
    assert "seed_everything" not in before and "PYTHONHASHSEED" not in before
    seed_everything(5)
    # torch is in the dev extra: seed_everything seeds it, and detection reads it back
    assert detect_seeds() == {"seed_everything": 5, "PYTHONHASHSEED": "5", "torch": 5}


def test_detect_lightning_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_GLOBAL_SEED", "31")
    found = detect_seeds()
    assert found["lightning"] == "31" and "seed_everything" not in found


def test_torch_seed_is_recorded() -> None:
    import torch

    torch.manual_seed(67280421310721)
    assert detect_seeds()["torch"] == 67280421310721  # torch's own seed, recorded
    assert seed_everything(8)["seeded"] == ["random", "PYTHONHASHSEED", "numpy", "torch"]
    assert detect_seeds()["torch"] == 8
    assert torch.initial_seed() == 8


def test_detect_seeds_imports_nothing() -> None:
    code = (
        "import sys\nfrom mltrail.client.capture.seeds import detect_seeds\n"
        "detect_seeds()\nprint('numpy' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
