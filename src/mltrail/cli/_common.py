"""Options and output helpers shared by every command."""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from mltrail.errors import MltrailError

console = Console()
err_console = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table.")
UriOpt = typer.Option(
    None,
    "--tracking-uri",
    "-u",
    envvar="MLTRAIL_TRACKING_URI",
    help="Store to read: sqlite:///path/mltrail.db or postgresql://... "
    "[default: ./.mltrail/mltrail.db]",
)


def run_app(app: typer.Typer) -> None:
    """Run the Typer app; our errors print a message and hint, never a traceback.

    Typer runs in standalone mode so that it handles usage errors (exit 2), ``--help``,
    ``typer.Exit(code)``, Ctrl-C and broken pipes itself; only our errors get through.
    """
    try:
        app()
    except MltrailError as exc:
        # soft_wrap: long paths and URIs stay on one line, whole and copyable
        err_console.print(Text.assemble(("error:", "bold red"), " ", exc.message), soft_wrap=True)
        if exc.hint:
            err_console.print(Text.assemble(("hint:", "yellow"), " ", exc.hint), soft_wrap=True)
        sys.exit(exc.exit_code)


def jsonable(value: Any) -> Any:
    """NaN and ±inf as the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(value), indent=2, ensure_ascii=False) + "\n")


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    if value is None:
        return "-"
    return str(value)


def cell(value: Any) -> Text:
    """A table cell for stored data: shown as is, never read as Rich markup or emoji."""
    return Text(fmt_value(value))


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def fmt_ago(ts: float | None) -> str:
    if ts is None:
        return "-"
    delta = max(0.0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit} ago"
    return f"{int(delta)}s ago"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


STATUS_STYLE = {
    "running": "cyan",
    "finished": "green",
    "failed": "red",
    "killed": "yellow",
    "crashed": "magenta",
}


def styled_status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"
