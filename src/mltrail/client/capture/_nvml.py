"""NVIDIA GPUs through NVML (``nvidia-ml-py``, imported as ``pynvml``), or none at all.

``load_nvml()`` returns one shared :class:`Nvml` per process. Without the package, the
driver or a GPU it is a null object with no devices, so callers never check for None.
Every NVML call is guarded: a field a GPU does not support is simply missing.
"""

from __future__ import annotations

import functools
import importlib
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["GpuReading", "Nvml", "load_nvml"]


@dataclass(frozen=True)
class GpuReading:
    index: int
    util_percent: float | None
    memory_used_bytes: float | None
    temperature_c: float | None
    power_w: float | None
    energy_j: float | None  # cumulative since driver load (Volta and newer), else None


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


class Nvml:
    """The GPUs NVML sees; ``Nvml(None)`` has none."""

    def __init__(self, module: Any | None) -> None:
        self._nv = module
        self._handles: list[Any] = []
        self._lock = threading.Lock()
        if module is None:
            return
        try:
            module.nvmlInit()
            count = int(module.nvmlDeviceGetCount())
            self._handles = [module.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception:  # no driver, no device, driver/library mismatch
            self._nv = None
            self._handles = []

    @property
    def available(self) -> bool:
        return self._nv is not None and bool(self._handles)

    def __len__(self) -> int:
        return len(self._handles)

    def _call(self, name: str, *args: Any) -> Any:
        try:
            with self._lock:
                return getattr(self._nv, name)(*args)
        except Exception:  # NVMLError_NotSupported and friends
            return None

    def static_info(self) -> list[dict[str, Any]]:
        """Name, total memory, driver and CUDA version of each GPU."""
        if not self.available:
            return []
        driver = self._call("nvmlSystemGetDriverVersion")
        cuda = self._call("nvmlSystemGetCudaDriverVersion_v2") or self._call(
            "nvmlSystemGetCudaDriverVersion"
        )
        out = []
        for i, handle in enumerate(self._handles):
            name = self._call("nvmlDeviceGetName", handle)
            memory = self._call("nvmlDeviceGetMemoryInfo", handle)
            out.append(
                {
                    "index": i,
                    "name": _text(name) if name is not None else None,
                    "memory_total": int(memory.total) if memory is not None else None,
                    "driver": _text(driver) if driver is not None else None,
                    "cuda": f"{int(cuda) // 1000}.{int(cuda) % 1000 // 10}" if cuda else None,
                }
            )
        return out

    def sample(self) -> list[GpuReading]:
        """Utilisation, memory, temperature, power and energy of each GPU now."""
        if not self.available:
            return []
        out = []
        temp_sensor = getattr(self._nv, "NVML_TEMPERATURE_GPU", 0)
        for i, handle in enumerate(self._handles):
            util = self._call("nvmlDeviceGetUtilizationRates", handle)
            memory = self._call("nvmlDeviceGetMemoryInfo", handle)
            temp = self._call("nvmlDeviceGetTemperature", handle, temp_sensor)
            power_mw = self._call("nvmlDeviceGetPowerUsage", handle)
            energy_mj = self._call("nvmlDeviceGetTotalEnergyConsumption", handle)
            out.append(
                GpuReading(
                    index=i,
                    util_percent=float(util.gpu) if util is not None else None,
                    memory_used_bytes=float(memory.used) if memory is not None else None,
                    temperature_c=float(temp) if temp is not None else None,
                    power_w=power_mw / 1000.0 if power_mw is not None else None,
                    energy_j=energy_mj / 1000.0 if energy_mj is not None else None,
                )
            )
        return out


@functools.cache
def load_nvml() -> Nvml:
    """The process-wide NVML view (initialised once, on first use)."""
    try:
        module = importlib.import_module("pynvml")
    except Exception:  # not installed, or a broken install
        return Nvml(None)
    return Nvml(module)
