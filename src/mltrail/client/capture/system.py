"""System metrics sampled in a background thread while a run is alive.

Every ``interval`` seconds (default 10, ``MLTRAIL_SYSTEM_INTERVAL``; 0 turns sampling
off) the monitor hands a dict of floats to ``sink`` (the lead wires it to ``run.log``):

====================================  ==========================================
``system/cpu_percent``                this process, % of one core (may exceed 100)
``system/system_cpu_percent``         whole machine, % of all cores
``system/rss_bytes``                  this process's resident memory
``system/system_memory_percent``      whole machine
``system/disk_read_bytes``,           machine-wide disk I/O, bytes per second
``system/disk_write_bytes``           since the previous sample
``system/net_sent_bytes``,            machine-wide network I/O, bytes per second
``system/net_recv_bytes``
``system/gpu/{i}/util_percent``,      per GPU, through NVML when available
``.../memory_used_bytes``,
``.../temperature_c``, ``.../power_w``
``system/energy_kwh``                 cumulative since ``start()`` (see ``energy``)
``system/co2e_g``                     cumulative
====================================  ==========================================

A sample costs well under a millisecond of CPU (``bench/bench_capture.py``), so about
0.01 % of a core at the default interval.

>>> seen = []
>>> monitor = SystemMonitor(seen.append, interval=0.01)
>>> monitor.start()
>>> final = monitor.stop()
>>> "system/energy_kwh" in final and seen[-1] == final
True
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from mltrail.client.capture._nvml import Nvml, load_nvml
from mltrail.client.capture.energy import EnergyMeter
from mltrail.errors import ConfigurationError, InvalidValueError

__all__ = ["DEFAULT_INTERVAL", "SystemMonitor", "interval_from_env"]

DEFAULT_INTERVAL = 10.0
Sink = Callable[[dict[str, float]], None]


def interval_from_env(default: float = DEFAULT_INTERVAL) -> float:
    """``MLTRAIL_SYSTEM_INTERVAL`` in seconds (0 disables), else ``default``."""
    raw = os.environ.get("MLTRAIL_SYSTEM_INTERVAL", "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigurationError(
            f"MLTRAIL_SYSTEM_INTERVAL={raw!r} is not a number of seconds >= 0",
            hint="use e.g. 10, or 0 to turn system metrics off",
        )
    return value


class SystemMonitor:
    """Samples system metrics every ``interval`` seconds into ``sink``."""

    def __init__(
        self,
        sink: Sink,
        *,
        interval: float = DEFAULT_INTERVAL,
        energy: EnergyMeter | None = None,
    ) -> None:
        if not interval >= 0:
            raise InvalidValueError(f"interval must be >= 0 seconds, not {interval!r}")
        self._sink = sink
        self.interval = float(interval)
        self._gpus = load_nvml() if self.enabled else Nvml(None)
        if energy is None and self.enabled:  # bad grid settings fail here, at init
            energy = EnergyMeter(gpus=self._gpus)
        self._energy = energy
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._proc: Any = None
        self._prev_io: dict[str, float] = {}
        self._prev_t = 0.0
        self._reported = False

    @classmethod
    def from_env(cls, sink: Sink, *, energy: EnergyMeter | None = None) -> SystemMonitor:
        """A monitor with the interval from ``MLTRAIL_SYSTEM_INTERVAL``."""
        return cls(sink, interval=interval_from_env(), energy=energy)

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    @property
    def energy(self) -> EnergyMeter | None:
        """The meter in use (a default one when none was given; None when disabled)."""
        return self._energy

    def start(self) -> None:
        """Take baselines and start the sampling thread (no-op when disabled)."""
        if not self.enabled or self._thread is not None:
            return
        import psutil

        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # first call only sets the baseline
        psutil.cpu_percent(None)
        if self._energy is not None:
            self._energy.start()
        self._prev_io = _io_counters()
        self._prev_t = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mltrail-system", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """Stop the thread, take a final sample with the totals, sink and return it."""
        thread, self._thread = self._thread, None
        if thread is None:
            return {}
        self._stop.set()
        if thread is not threading.current_thread():
            thread.join(timeout=max(5.0, self.interval))
        try:
            final = self.sample()
        except Exception as exc:  # stop() runs while a run ends: it must not raise
            self._report(f"final system metrics sample failed: {exc!r}")
            return {}
        self._deliver(final)
        return final

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                metrics = self.sample()
            except Exception as exc:  # psutil/NVML oddities must not kill the thread
                self._report(f"system metrics sample failed: {exc!r}")
                continue
            self._deliver(metrics)

    def _deliver(self, metrics: dict[str, float]) -> None:
        try:
            self._sink(metrics)
        except Exception as exc:
            self._report(f"system metrics sink failed: {exc!r}")

    def _report(self, message: str) -> None:
        if not self._reported:  # once: a broken sink would otherwise flood stderr
            self._reported = True
            print(f"mltrail: {message}", file=sys.stderr)

    def sample(self) -> dict[str, float]:
        """One sample now; rates are per second since the previous sample."""
        import psutil

        with self._lock:
            if self._proc is None:
                raise RuntimeError("SystemMonitor.sample() before start()")
            now = time.monotonic()
            dt = max(now - self._prev_t, 1e-9)
            out = {
                "system/cpu_percent": float(self._proc.cpu_percent(None)),
                "system/system_cpu_percent": float(psutil.cpu_percent(None)),
                "system/rss_bytes": float(self._proc.memory_info().rss),
                "system/system_memory_percent": float(psutil.virtual_memory().percent),
            }
            io = _io_counters()
            for key, value in io.items():
                if key in self._prev_io:  # counters can reset (device removed): clamp
                    out[f"system/{key}"] = max(0.0, value - self._prev_io[key]) / dt
            self._prev_io, self._prev_t = io, now
            readings = self._gpus.sample()
            for r in readings:
                gpu_values: tuple[tuple[str, float | None], ...] = (
                    ("util_percent", r.util_percent),
                    ("memory_used_bytes", r.memory_used_bytes),
                    ("temperature_c", r.temperature_c),
                    ("power_w", r.power_w),
                )
                for name, reading in gpu_values:
                    if reading is not None:
                        out[f"system/gpu/{r.index}/{name}"] = reading
            if self._energy is not None:
                self._energy.update(readings)
                out.update(self._energy.metrics())
            return out


def _io_counters() -> dict[str, float]:
    import psutil

    out: dict[str, float] = {}
    try:
        disk = psutil.disk_io_counters()
    except (OSError, RuntimeError):  # no /proc/diskstats in some containers
        disk = None
    if disk is not None:
        out["disk_read_bytes"] = float(disk.read_bytes)
        out["disk_write_bytes"] = float(disk.write_bytes)
    try:
        net = psutil.net_io_counters()
    except (OSError, RuntimeError):
        net = None
    if net is not None:
        out["net_sent_bytes"] = float(net.bytes_sent)
        out["net_recv_bytes"] = float(net.bytes_recv)
    return out
