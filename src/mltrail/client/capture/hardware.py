"""The machine a run used: CPU model and counts, memory, GPUs.

>>> hardware_info()["cpu"]["logical"] >= 1
True
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from mltrail.client.capture._nvml import Nvml, load_nvml

__all__ = ["cpu_model", "hardware_info"]

_CPUINFO_KEYS = ("model name", "Hardware", "Model", "cpu model", "Processor")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's marketing name (from /proc/cpuinfo on Linux), when known."""
    if sys.platform.startswith("linux"):
        try:
            text = cpuinfo.read_text(errors="replace")
        except OSError:
            text = ""
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip():
                fields.setdefault(key.strip(), value.strip())
        for key in _CPUINFO_KEYS:
            if key in fields:
                return fields[key]
    # macOS/Windows: the architecture at least ("arm", "Intel64 Family 6 ...")
    return platform.processor() or None


def hardware_info(gpus: Nvml | None = None) -> dict[str, Any]:
    """CPU, memory and GPUs; GPUs are ``[]`` without NVML."""
    import psutil

    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": {
            "model": cpu_model(),
            "logical": psutil.cpu_count(logical=True),
            "physical": psutil.cpu_count(logical=False),
            "available": available,  # CPUs this process may run on (cgroups, taskset)
        },
        "memory_total_bytes": int(psutil.virtual_memory().total),
        "gpus": (gpus if gpus is not None else load_nvml()).static_info(),
    }
