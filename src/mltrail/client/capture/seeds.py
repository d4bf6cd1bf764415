"""Seeding the usual random number generators, and finding the seeds a run used.

``seed_everything(n)`` seeds ``random``, NumPy's global generator and PyTorch (CPU and
every CUDA device) when they are installed, and sets ``PYTHONHASHSEED`` for child
processes (the current interpreter's hash seed is fixed at start-up and cannot change).

``detect_seeds()`` never imports anything: it reports what can be read back from
libraries already imported. PyTorch keeps its seed (``torch.initial_seed()``, which is
also the random seed it picked when nobody set one, so the run stays reproducible);
Lightning's ``seed_everything`` leaves ``PL_GLOBAL_SEED``. ``random`` and NumPy keep a
state, not a seed, so a seed given to them directly cannot be recovered.

>>> seed_everything(7)["seed"]
7
>>> detect_seeds()["seed_everything"]
7
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import sys
from typing import Any

from mltrail.errors import InvalidValueError

__all__ = ["detect_seeds", "seed_everything"]

_MAX_SEED = 2**32 - 1  # NumPy's legacy generator takes 32-bit seeds
_last_seed: int | None = None


def _installed(name: str) -> bool:
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def seed_everything(seed: int) -> dict[str, Any]:
    """Seed random, numpy, torch (+cuda) and ``PYTHONHASHSEED``; return what was seeded.

    >>> seed_everything(0)["seeded"][:2]
    ['random', 'PYTHONHASHSEED']
    """
    global _last_seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
        raise InvalidValueError(f"seed must be an integer in [0, 2**32 - 1], not {seed!r}")
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    seeded = ["random", "PYTHONHASHSEED"]
    if _installed("numpy"):
        numpy: Any = importlib.import_module("numpy")
        numpy.random.seed(seed)
        seeded.append("numpy")
    if _installed("torch"):
        torch: Any = importlib.import_module("torch")
        torch.manual_seed(seed)  # also seeds every CUDA device, lazily
        seeded.append("torch")
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and cuda.is_available():
            cuda.manual_seed_all(seed)
            seeded.append("torch.cuda")
    _last_seed = seed
    return {"seed": seed, "seeded": seeded}


def detect_seeds() -> dict[str, Any]:
    """Seeds readable from the interpreter and already-imported libraries."""
    found: dict[str, Any] = {}
    if _last_seed is not None:
        found["seed_everything"] = _last_seed
    for var, key in (("PYTHONHASHSEED", "PYTHONHASHSEED"), ("PL_GLOBAL_SEED", "lightning")):
        if os.environ.get(var):
            found[key] = os.environ[var]
    torch: Any = sys.modules.get("torch")
    if torch is not None:
        try:
            found["torch"] = int(torch.initial_seed())
            cuda = getattr(torch, "cuda", None)
            if cuda is not None and cuda.is_initialized():
                found["torch.cuda"] = int(cuda.initial_seed())
        except Exception:  # a half-imported or exotic build: best effort only
            pass
    return found
