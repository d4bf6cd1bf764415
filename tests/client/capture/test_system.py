"""The system-metrics monitor, run for real with a tiny interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from mltrail.client.capture.energy import EnergyMeter
from mltrail.client.capture.system import SystemMonitor, interval_from_env
from mltrail.errors import ConfigurationError, InvalidValueError

BASE_KEYS = {
    "system/cpu_percent",
    "system/system_cpu_percent",
    "system/rss_bytes",
    "system/system_memory_percent",
    "system/energy_kwh",
    "system/co2e_g",
}
RATE_KEYS = {
    "system/disk_read_bytes",
    "system/disk_write_bytes",
    "system/net_sent_bytes",
    "system/net_recv_bytes",
}


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mltrail-system"]


def test_samples_reach_the_sink_until_stop() -> None:
    seen: list[dict[str, float]] = []
    monitor = SystemMonitor(seen.append, interval=0.02)
    monitor.start()
    _wait_for(lambda: len(seen) >= 3)
    final = monitor.stop()
    assert not _monitor_threads()
    assert seen[-1] == final
    for sample in seen:
        assert set(sample) >= BASE_KEYS
        assert all(isinstance(v, float) and v >= 0 for v in sample.values())
        assert set(sample) - BASE_KEYS <= RATE_KEYS
    assert final["system/rss_bytes"] > 10 * 2**20
    assert 0 <= final["system/system_cpu_percent"] <= 100
    count = len(seen)
    time.sleep(0.1)
    assert len(seen) == count  # nothing after stop()
    assert monitor.stop() == {}  # a second stop is a no-op


def test_energy_accumulates(tmp_path: Path) -> None:
    meter = EnergyMeter(powercap=tmp_path, grid_intensity_g_per_kwh=400.0)
    seen: list[dict[str, float]] = []
    monitor = SystemMonitor(seen.append, interval=0.05, energy=meter)
    monitor.start()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn some CPU for the estimate to see
        pass
    final = monitor.stop()
    assert monitor.energy is meter
    assert final["system/energy_kwh"] > 0
    assert final["system/co2e_g"] == pytest.approx(final["system/energy_kwh"] * 400.0)
    energies = [s["system/energy_kwh"] for s in seen]
    assert energies == sorted(energies)  # cumulative


def test_gpu_metrics_per_device(fake_nvml: Callable[..., ModuleType]) -> None:
    fake_nvml(gpus=2)
    seen: list[dict[str, float]] = []
    monitor = SystemMonitor(seen.append, interval=10.0)
    monitor.start()
    final = monitor.stop()  # the final sample alone, long before the first tick
    assert seen == [final]
    for i in range(2):
        assert final[f"system/gpu/{i}/util_percent"] == 87.0
        assert final[f"system/gpu/{i}/memory_used_bytes"] == 3 * 2**30
        assert final[f"system/gpu/{i}/temperature_c"] == 65.0
        assert final[f"system/gpu/{i}/power_w"] == 250.0
    assert monitor.energy is not None and monitor.energy.gpu == "nvml"
    assert final["system/energy_kwh"] * 3.6e6 >= 2 * 5.0


def test_interval_zero_disables() -> None:
    seen: list[dict[str, float]] = []
    monitor = SystemMonitor(seen.append, interval=0)
    monitor.start()
    assert not monitor.enabled and not _monitor_threads() and monitor.energy is None
    assert monitor.stop() == {} and seen == []


def test_bad_grid_region_fails_when_the_monitor_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_GRID_REGION", "Atlantis")
    with pytest.raises(ConfigurationError, match="Atlantis"):
        SystemMonitor(print)


def test_interval_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert interval_from_env() == 10.0
    monkeypatch.setenv("MLTRAIL_SYSTEM_INTERVAL", "2.5")
    assert SystemMonitor.from_env(print).interval == 2.5
    monkeypatch.setenv("MLTRAIL_SYSTEM_INTERVAL", "0")
    assert not SystemMonitor.from_env(print).enabled
    for bad in ("-1", "often"):
        monkeypatch.setenv("MLTRAIL_SYSTEM_INTERVAL", bad)
        with pytest.raises(ConfigurationError, match="MLTRAIL_SYSTEM_INTERVAL"):
            interval_from_env()
    with pytest.raises(InvalidValueError):
        SystemMonitor(print, interval=-1)


def test_a_failing_sink_is_reported_once_and_sampling_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[int] = []

    def sink(metrics: dict[str, float]) -> None:
        calls.append(1)
        raise RuntimeError("store down")

    monitor = SystemMonitor(sink, interval=0.01)
    monitor.start()
    _wait_for(lambda: len(calls) >= 3)
    monitor.stop()
    err = capsys.readouterr().err
    assert err.count("mltrail: system metrics sink failed") == 1 and "store down" in err


def test_one_sample_is_cheap() -> None:
    monitor = SystemMonitor(lambda m: None, interval=10.0)
    monitor.start()
    try:
        start = time.process_time()
        for _ in range(50):
            monitor.sample()
        per_sample = (time.process_time() - start) / 50
    finally:
        monitor.stop()
    assert per_sample < 0.01  # < 0.1 % of a core at the default 10 s interval
