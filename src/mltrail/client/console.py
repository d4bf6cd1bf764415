"""Console capture: stdout and stderr of the process, tee'd into the active runs.

Writes still reach the terminal unchanged; a copy is buffered per run and stored by the
background writer in chunks (``mltrail runs logs RUN_ID``), readable while the run is
live. Only output written through Python's ``sys.stdout``/``sys.stderr`` is captured
(not that of C extensions or child processes writing to the file descriptors).

On by default, off in notebooks (where ``sys.stdout`` is the kernel's), and set with
``mltrail.init(console="off" | "on" | "auto")`` or ``MLTRAIL_CONSOLE``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from mltrail.errors import InvalidValueError

__all__ = ["console_mode", "install", "uninstall"]

_lock = threading.Lock()
_sinks: list[Callable[[str], None]] = []
_originals: dict[str, TextIO] = {}


class _Tee:
    """A text stream that writes through and hands a copy to the sinks."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        n = self._stream.write(text)
        if text:
            for sink in list(_sinks):
                try:
                    sink(text)
                except Exception:  # capture must never break printing
                    pass
        return n

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, buffer, ...
        return getattr(self._stream, name)


def console_mode(value: str | None) -> bool:
    """Whether to capture, from ``init(console=...)`` or ``MLTRAIL_CONSOLE``."""
    mode = (value or os.environ.get("MLTRAIL_CONSOLE") or "auto").lower()
    if mode in ("on", "true", "1", "wrap"):
        return True
    if mode in ("off", "false", "0"):
        return False
    if mode != "auto":
        raise InvalidValueError(
            f"console={mode!r} is not one of 'auto', 'on', 'off'",
            hint="check the console argument or MLTRAIL_CONSOLE",
        )
    return "ipykernel" not in sys.modules


def install(sink: Callable[[str], None]) -> None:
    """Start sending console output to ``sink`` (installs the tee on first use)."""
    with _lock:
        _sinks.append(sink)
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if name not in _originals and current is not None:
                _originals[name] = current
                setattr(sys, name, _Tee(current))


def uninstall(sink: Callable[[str], None]) -> None:
    """Stop sending to ``sink``; the last one out restores the original streams."""
    with _lock:
        if sink in _sinks:
            _sinks.remove(sink)
        if _sinks:
            return
        for name, original in list(_originals.items()):
            current = getattr(sys, name)
            if isinstance(current, _Tee) and current._stream is original:
                setattr(sys, name, original)
            del _originals[name]
