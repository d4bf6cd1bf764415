"""The ``hardware`` section, and GPUs through NVML (a stand-in module: no GPU here)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import psutil

from mltrail.client.capture import CaptureSettings, collect
from mltrail.client.capture._nvml import Nvml, load_nvml
from mltrail.client.capture.hardware import cpu_model, hardware_info


def test_hardware_section() -> None:
    hw = collect(CaptureSettings(git=False, env=False, packages=False))["hardware"]
    assert hw["cpu"]["logical"] == psutil.cpu_count()
    assert hw["cpu"]["physical"] == psutil.cpu_count(logical=False)
    assert 1 <= hw["cpu"]["available"] <= hw["cpu"]["logical"]
    assert hw["memory_total_bytes"] == psutil.virtual_memory().total
    if importlib.util.find_spec("pynvml") is None:
        assert hw["gpus"] == []  # degrades silently without nvidia-ml-py


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6248\n"
        "\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold 6248\n"
    )
    assert cpu_model(cpuinfo) == "Intel(R) Xeon(R) Gold 6248"
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n\nHardware\t: BCM2835\n")
    assert cpu_model(arm) == "BCM2835"


def test_gpus_through_nvml(fake_nvml: Callable[..., ModuleType]) -> None:
    fake_nvml(gpus=2)
    assert hardware_info()["gpus"] == [
        {"index": i, "name": "NVIDIA A100-SXM4-40GB", "memory_total": 40 * 2**30,
         "driver": "535.104.05", "cuda": "12.2"}
        for i in range(2)
    ]  # fmt: skip
    reading = load_nvml().sample()[1]
    assert (reading.index, reading.util_percent, reading.temperature_c) == (1, 87.0, 65.0)
    assert reading.power_w == 250.0 and reading.memory_used_bytes == 3 * 2**30


def test_nvml_that_fails_to_initialise_means_no_gpus(
    fake_nvml: Callable[..., ModuleType],
) -> None:
    fake_nvml(gpus=1, fail_init=True)
    nvml = load_nvml()
    assert not nvml.available and nvml.static_info() == [] and nvml.sample() == []
    assert hardware_info()["gpus"] == []


def test_null_nvml() -> None:
    nvml = Nvml(None)
    assert len(nvml) == 0 and nvml.static_info() == [] and nvml.sample() == []
