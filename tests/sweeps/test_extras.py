"""Optuna and Ray are extras: without them, what needs them says which extra to install,
and ``import mltrail`` never loads them."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mltrail
from mltrail.errors import ExtraNotInstalled
from tests.sweeps.conftest import make_sweep


def test_missing_optuna_or_ray_names_the_extra(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bayes = dict(method="bayes", metric={"name": "l"}, parameters={"x": {"min": 0.0, "max": 1.0}})
    sweep_id = make_sweep(sqlite_uri, {**bayes, "method": "random"})
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ExtraNotInstalled) as info:
        make_sweep(sqlite_uri, bayes)
    assert "pip install 'mltrail[sweeps]'" in str(info.value)
    with pytest.raises(ExtraNotInstalled) as info:
        mltrail.agent(sweep_id, function=lambda: None, backend="ray", uri=sqlite_uri)
    assert "pip install 'mltrail[ray]'" in str(info.value)


def test_import_mltrail_loads_no_optuna_or_ray() -> None:
    code = (
        "import sys, mltrail; mltrail.sweep; mltrail.agent; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'ray')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
