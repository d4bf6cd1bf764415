"""Energy: RAPL counters (a fake powercap tree), the TDP estimate, GPUs, grid intensity."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest

from mltrail.client.capture._nvml import load_nvml
from mltrail.client.capture.energy import POWERCAP, EnergyMeter, Rapl, grid_intensity
from mltrail.errors import ConfigurationError


def _zone(root: Path, name: str, label: str, energy: int, wrap: int) -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(f"{label}\n")
    (zone / "energy_uj").write_text(f"{energy}\n")
    (zone / "max_energy_range_uj").write_text(f"{wrap}\n")
    return zone


def _burn(seconds: float) -> float:
    """Spin for ``seconds`` of CPU time; returns the CPU seconds used."""
    start = os.times()
    while True:
        now = os.times()
        used = (now.user + now.system) - (start.user + start.system)
        if used >= seconds:
            return used


def test_no_rapl_means_tdp_estimate(tmp_path: Path) -> None:
    assert EnergyMeter(powercap=tmp_path / "missing").source == "tdp-estimate"
    if not Rapl(POWERCAP).zones:  # this machine: no readable /sys/class/powercap
        meter = EnergyMeter()
        assert meter.source == "tdp-estimate" and meter.summary()["tdp_per_core_w"] == 10.0


def test_tdp_estimate_is_cpu_time_times_watts_per_core(tmp_path: Path) -> None:
    meter = EnergyMeter(powercap=tmp_path, tdp_per_core_w=20.0)
    before = os.times()
    _burn(0.2)
    after = os.times()
    meter.update()
    cpu_s = (after.user + after.system) - (before.user + before.system)
    assert meter.cpu_kwh * 3.6e6 == pytest.approx(20.0 * cpu_s, rel=0.25)
    assert meter.gpu_kwh == 0.0 and meter.kwh == meter.cpu_kwh


def test_rapl_counters_with_wrap(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    pkg0 = _zone(root, "intel-rapl:0", "package-0", energy=900_000, wrap=1_000_000)
    _zone(root, "intel-rapl:0:0", "core", energy=5, wrap=1_000_000)  # sub-zone: ignored
    pkg1 = _zone(root, "intel-rapl:1", "package-1", energy=100, wrap=2_000_000)
    _zone(root, "intel-rapl:2", "psys", energy=0, wrap=1_000_000)  # platform: ignored
    _zone(root, "intel-rapl-mmio:0", "package-0", energy=0, wrap=1_000_000)  # not a match
    meter = EnergyMeter(powercap=root, grid_intensity_g_per_kwh=500.0)
    assert meter.source == "rapl" and len(Rapl(root).zones) == 2
    (pkg0 / "energy_uj").write_text("100000\n")  # wrapped: 100_000 + 1_000_000 - 900_000
    (pkg1 / "energy_uj").write_text("600\n")  # +500
    meter.update()
    assert math.isclose(meter.cpu_kwh * 3.6e6, 0.2005)
    (pkg0 / "energy_uj").write_text("150000\n")
    meter.update()
    assert math.isclose(meter.kwh * 3.6e6, 0.2505)
    assert math.isclose(meter.co2e_g, meter.kwh * 500.0)
    assert meter.metrics() == {"system/energy_kwh": meter.kwh, "system/co2e_g": meter.co2e_g}
    meter.start()
    assert meter.kwh == 0.0


def test_unreadable_rapl_falls_back_to_estimate(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    _zone(root, "intel-rapl:0", "package-0", energy=1, wrap=10)
    (_zone(root, "intel-rapl:1", "package-1", energy=1, wrap=10) / "energy_uj").unlink()
    assert Rapl(root).zones == []
    assert EnergyMeter(powercap=root).source == "tdp-estimate"


def test_gpu_energy_from_the_nvml_counter(
    tmp_path: Path, fake_nvml: Callable[..., ModuleType]
) -> None:
    fake_nvml(gpus=2, energy_counter=True)
    meter = EnergyMeter(powercap=tmp_path, gpus=load_nvml())
    assert meter.gpu == "nvml"
    meter.update()
    assert math.isclose(meter.gpu_kwh * 3.6e6, 2 * 5.0)  # 5 J per GPU between readings


def test_gpu_energy_from_power_without_counter(
    tmp_path: Path, fake_nvml: Callable[..., ModuleType]
) -> None:
    fake_nvml(gpus=1, energy_counter=False)
    t0 = time.monotonic()
    meter = EnergyMeter(powercap=tmp_path)
    time.sleep(0.05)
    meter.update()
    elapsed = time.monotonic() - t0
    assert 250.0 * 0.05 <= meter.gpu_kwh * 3.6e6 <= 250.0 * elapsed  # 250 W x dt


def test_grid_intensity_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    assert grid_intensity() == (471.08, "WORLD")
    assert grid_intensity("de") == (336.38, "DE")
    assert grid_intensity("UK") == (216.5, "GB")
    assert grid_intensity(g_per_kwh=12) == (12.0, "custom")
    monkeypatch.setenv("MLTRAIL_GRID_REGION", "fr")
    assert grid_intensity() == (40.48, "FR")
    assert EnergyMeter().grid_region == "FR"
    monkeypatch.setenv("MLTRAIL_GRID_INTENSITY", "123.5")
    assert grid_intensity() == (123.5, "custom")
    assert grid_intensity("SE") == (34.91, "SE")  # an explicit argument beats the env


@pytest.mark.parametrize(
    ("var", "value"),
    [("MLTRAIL_GRID_REGION", "Atlantis"), ("MLTRAIL_GRID_INTENSITY", "lots"),
     ("MLTRAIL_GRID_INTENSITY", "-5")],
)  # fmt: skip
def test_bad_grid_settings(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError):
        EnergyMeter()


def test_bundled_table_notes_its_source() -> None:
    text = resources.files("mltrail.client.capture").joinpath("grid_intensity.json").read_text()
    table = json.loads(text)
    assert "ourworldindata.org" in table["source"] and table["year"] >= 2023
    assert len(table["regions"]) >= 30 and table["default"] in table["regions"]
    assert all(0 < r["g_per_kwh"] < 1500 and r["name"] for r in table["regions"].values())
    assert all(code == code.upper() for code in table["regions"])
