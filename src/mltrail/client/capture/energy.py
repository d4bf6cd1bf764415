"""Energy and carbon of a run: kWh integrated over its life, converted to gCO₂e.

CPU energy, best source first (``EnergyMeter.source``):

``"rapl"``
    Linux RAPL package counters, ``/sys/class/powercap/intel-rapl:N/energy_uj`` (also
    used by AMD CPUs on recent kernels), one per socket. The counters are machine-wide:
    they include every process on those sockets, like CodeCarbon's figures. They wrap
    at ``max_energy_range_uj``, which is handled. Since Linux 5.10 they are usually
    readable by root only (CVE-2020-8694); when any is unreadable the estimate is used.

``"tdp-estimate"``
    This process's CPU time (user + system, plus children it has waited for), i.e. its
    CPU utilisation in cores integrated over time, times ``TDP_PER_CORE_W`` = 10 W: a
    fully busy core drawing a tenth of a 100 W-class CPU package's power, the order of
    magnitude of server and desktop TDPs divided by their core counts (e.g. 205 W / 20
    cores, 65 W / 8 cores). It is the per-core method of Green Algorithms (Lannelongue
    et al., Advanced Science 2021) with one constant for every CPU model; it counts this
    process only and ignores idle power, so it reads lower than ``"rapl"``.

GPU energy (``EnergyMeter.gpu == "nvml"``): each GPU's total-energy counter (Volta and
newer), else its power draw integrated between samples (trapezoids). GPUs are counted
whole, every process on them included.

Carbon: ``co2e_g = kwh × intensity``. The intensity (g/kWh) is, first found:
``grid_intensity_g_per_kwh=``, ``grid_region=``, ``MLTRAIL_GRID_INTENSITY``,
``MLTRAIL_GRID_REGION`` (a code from the bundled ``grid_intensity.json``: ISO 3166
country codes, ``EU``, ``WORLD``; yearly averages, source and year in the file), else
the world average.

>>> meter = EnergyMeter(grid_region="FR")
>>> meter.update()
>>> meter.co2e_g >= 0.0
True
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

from mltrail.client.capture._nvml import GpuReading, Nvml, load_nvml
from mltrail.errors import ConfigurationError

__all__ = ["POWERCAP", "TDP_PER_CORE_W", "EnergyMeter", "Rapl", "grid_intensity"]

TDP_PER_CORE_W = 10.0
POWERCAP = Path("/sys/class/powercap")
_J_PER_KWH = 3_600_000.0


@functools.cache
def _grid_table() -> dict[str, Any]:
    text = (
        resources.files("mltrail.client.capture").joinpath("grid_intensity.json").read_text("utf-8")
    )
    table: dict[str, Any] = json.loads(text)
    return table


def grid_intensity(region: str | None = None, g_per_kwh: float | None = None) -> tuple[float, str]:
    """``(g CO₂e per kWh, label)``: explicit value, region, environment, world average.

    >>> grid_intensity("fr")
    (40.48, 'FR')
    >>> grid_intensity(g_per_kwh=100)
    (100.0, 'custom')
    """
    if g_per_kwh is None and region is None:
        raw = os.environ.get("MLTRAIL_GRID_INTENSITY", "").strip()
        if raw:
            try:
                g_per_kwh = float(raw)
            except ValueError:
                raise ConfigurationError(
                    f"MLTRAIL_GRID_INTENSITY={raw!r} is not a number",
                    hint="give grams of CO2e per kWh, e.g. 250",
                ) from None
        region = os.environ.get("MLTRAIL_GRID_REGION", "").strip() or None
    if g_per_kwh is not None:
        if not g_per_kwh >= 0:  # also rejects NaN
            raise ConfigurationError(f"grid intensity {g_per_kwh!r} g/kWh must be >= 0")
        return float(g_per_kwh), "custom"
    table = _grid_table()
    code = (region or table["default"]).upper()
    code = table["aliases"].get(code, code)
    entry = table["regions"].get(code)
    if entry is None:
        raise ConfigurationError(
            f"unknown grid region {region!r}",
            hint=f"use one of {', '.join(sorted(table['regions']))}, "
            "or set MLTRAIL_GRID_INTENSITY in g/kWh",
        )
    return float(entry["g_per_kwh"]), code


class Rapl:
    """Package energy counters under a powercap tree (``intel-rapl:N``; not sub-zones)."""

    def __init__(self, root: Path = POWERCAP) -> None:
        self.zones: list[tuple[Path, int]] = []  # (energy_uj file, wrap range)
        try:
            candidates = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        except OSError:
            return
        zones = []
        for zone in candidates:
            try:
                name = (zone / "name").read_text().strip()
                wrap = int((zone / "max_energy_range_uj").read_text())
                int((zone / "energy_uj").read_text())
            except (OSError, ValueError):
                return  # all sockets or none: a partial sum would mislead
            if not name.startswith("psys"):  # the platform zone overlaps the packages
                zones.append((zone / "energy_uj", wrap))
        self.zones = zones

    def read(self) -> list[int]:
        return [int(path.read_text()) for path, _ in self.zones]

    def joules(self, before: list[int], after: list[int]) -> float:
        """Energy between two readings, counting one wrap per zone."""
        total = 0
        for (_, wrap), old, new in zip(self.zones, before, after, strict=True):
            total += new - old if new >= old else new + wrap - old
        return total / 1e6


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class EnergyMeter:
    """Integrates CPU and GPU energy between ``update()`` calls."""

    def __init__(
        self,
        *,
        grid_intensity_g_per_kwh: float | None = None,
        grid_region: str | None = None,
        powercap: Path = POWERCAP,
        tdp_per_core_w: float = TDP_PER_CORE_W,
        gpus: Nvml | None = None,
    ) -> None:
        self.grid_intensity_g_per_kwh, self.grid_region = grid_intensity(
            grid_region, grid_intensity_g_per_kwh
        )
        self._rapl = Rapl(powercap)
        self._gpus = gpus if gpus is not None else load_nvml()
        self.source = "rapl" if self._rapl.zones else "tdp-estimate"
        self.gpu: str | None = "nvml" if self._gpus.available else None
        self.tdp_per_core_w = tdp_per_core_w
        self._lock = threading.Lock()
        self.start()

    def start(self) -> None:
        """Zero the totals and take the baseline readings."""
        with self._lock:
            self._cpu_j = 0.0
            self._gpu_j = 0.0
            self._t = time.monotonic()
            self._cpu_base: list[int] | float = (
                self._rapl.read() if self._rapl.zones else _cpu_seconds()
            )
            self._gpu_base = self._gpus.sample()

    def update(self, gpu_readings: list[GpuReading] | None = None) -> None:
        """Add the energy used since the last call (pass fresh GPU readings to reuse them)."""
        readings = self._gpus.sample() if gpu_readings is None else gpu_readings
        with self._lock:
            now = time.monotonic()
            dt = now - self._t
            self._t = now
            if isinstance(self._cpu_base, list):
                counters = self._rapl.read()
                self._cpu_j += self._rapl.joules(self._cpu_base, counters)
                self._cpu_base = counters
            else:
                seconds = _cpu_seconds()
                self._cpu_j += max(0.0, seconds - self._cpu_base) * self.tdp_per_core_w
                self._cpu_base = seconds
            before = {r.index: r for r in self._gpu_base}
            for new in readings:
                self._gpu_j += _gpu_joules(before.get(new.index), new, dt)
            self._gpu_base = readings

    @property
    def cpu_kwh(self) -> float:
        return self._cpu_j / _J_PER_KWH

    @property
    def gpu_kwh(self) -> float:
        return self._gpu_j / _J_PER_KWH

    @property
    def kwh(self) -> float:
        return (self._cpu_j + self._gpu_j) / _J_PER_KWH

    @property
    def co2e_g(self) -> float:
        return self.kwh * self.grid_intensity_g_per_kwh

    def metrics(self) -> dict[str, float]:
        """The cumulative totals as ``system/`` metrics."""
        return {"system/energy_kwh": self.kwh, "system/co2e_g": self.co2e_g}

    def summary(self) -> dict[str, Any]:
        """Totals plus how they were obtained (for run metadata and ``runs show``)."""
        out: dict[str, Any] = {
            "energy_kwh": self.kwh,
            "cpu_kwh": self.cpu_kwh,
            "gpu_kwh": self.gpu_kwh,
            "co2e_g": self.co2e_g,
            "source": self.source,
            "gpu": self.gpu,
            "grid_region": self.grid_region,
            "grid_intensity_g_per_kwh": self.grid_intensity_g_per_kwh,
        }
        if self.source == "tdp-estimate":
            out["tdp_per_core_w"] = self.tdp_per_core_w
        return out


def _gpu_joules(old: GpuReading | None, new: GpuReading, dt: float) -> float:
    if (
        old is not None
        and old.energy_j is not None
        and new.energy_j is not None
        and new.energy_j >= old.energy_j
    ):
        return new.energy_j - old.energy_j
    if new.power_w is None:
        return 0.0
    if old is not None and old.power_w is not None:
        return (old.power_w + new.power_w) / 2 * dt
    return new.power_w * dt
