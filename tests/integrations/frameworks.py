"""Shared by the tests of the torch-based frameworks: their marks, and importing them
without their import-time warnings failing the test run (warnings are errors here)."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

import pytest

TORCH = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def quiet_import(name: str) -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(name)
