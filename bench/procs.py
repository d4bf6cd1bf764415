"""Peak RSS of a child's helper processes (e.g. W&B's wandb-core), sampled from /proc.

``ru_maxrss`` of RUSAGE_CHILDREN is no use here: a forked helper inherits its parent's
RSS figure before it execs, and helpers still alive at exit are never counted. So the
parent polls /proc for the child's descendants and keeps each one's VmHWM (its own peak).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")
INTERVAL_S = 0.2


def _parents() -> dict[int, int]:
    """pid -> ppid for every process on the machine."""
    out: dict[int, int] = {}
    for entry in os.listdir(PROC):
        if not entry.isdigit():
            continue
        try:
            stat = (PROC / entry / "stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        out[int(entry)] = int(fields[1])
    return out


def _descendants(root: int) -> list[int]:
    parents = _parents()
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        found += kids
        frontier += kids
    return found


def _hwm_and_name(pid: int) -> tuple[float, str] | None:
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    name, hwm = "?", 0.0
    for line in text.splitlines():
        if line.startswith("Name:"):
            name = line[len("Name:") :].strip() or "?"
        elif line.startswith("VmHWM:"):
            hwm = float(line.split()[1]) / 1024.0  # kB -> MiB
    return hwm, name


class HelperSampler(threading.Thread):
    """Samples until ``stop()``; ``peak_mib`` sums each helper's own peak RSS."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peaks: dict[int, tuple[float, str]] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(INTERVAL_S):
            self.sample()

    def sample(self) -> None:
        if not PROC.is_dir():
            return
        for pid in _descendants(self.root):
            seen = _hwm_and_name(pid)
            if seen and seen[0] >= self.peaks.get(pid, (0.0, ""))[0]:
                self.peaks[pid] = seen

    def stop(self) -> dict[str, object]:
        self._stop_event.set()
        self.join()
        return {
            "helpers_peak_rss_mib": sum(hwm for hwm, _ in self.peaks.values()),
            "helpers": sorted({name for _, name in self.peaks.values()}),
        }
