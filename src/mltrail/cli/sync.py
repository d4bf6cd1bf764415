"""``mltrail sync``: push what spool files still hold, mark dead runs crashed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from mltrail.cli._common import JsonOpt, UriOpt, console, print_json
from mltrail.errors import PermissionDenied, ValidationError

_PATH = typer.Argument(
    None,
    help="A spool file or folder, or an .mltrail folder [default: this store's spool folder]",
    show_default=False,
)


def sync(
    path: Path | None = _PATH,
    crash_after: float = typer.Option(
        300.0, "--crash-after", help="Mark running runs without a heartbeat this long (s) crashed."
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Write spool files (offline runs, killed processes) into the store, exactly once.

    Offline runs (mode="offline") are pushed only by this command; syncing the same
    spool twice adds nothing the second time.
    """
    import time

    from mltrail.client.recovery import replay_spools
    from mltrail.config import local_dir, resolve_uri
    from mltrail.store import open_store

    resolved = resolve_uri(uri)
    store = open_store(resolved)
    source = path if path is not None else local_dir(resolved) / "spool"
    if source.is_dir() and (source / "spool").is_dir():
        source = source / "spool"  # an .mltrail folder
    if path is not None and not source.exists():  # no default folder: nothing spooled yet
        raise ValidationError(
            f"{source} does not exist",
            hint="give a spool file, a spool folder or an .mltrail folder",
        )
    reports = replay_spools(store, source, include_offline=True, any_uri=path is not None)
    try:
        crashed = store.mark_stale_runs_crashed(time.time() - crash_after)
    except PermissionDenied:
        # on a server with auth, marking anyone's stale runs needs a global writer role;
        # the spools are pushed all the same
        crashed = []
    if as_json:
        print_json(
            {
                "replayed": [
                    {
                        "run_id": r.run_id,
                        "spool_id": r.spool_id,
                        "records": r.records,
                        "points": r.points,
                        "dropped_bytes": r.dropped_bytes,
                        "problems": r.problems,
                    }
                    for r in reports
                ],
                "marked_crashed": crashed,
            }
        )
        return
    if not reports and not crashed:
        console.print("nothing to sync")
    for r in reports:
        line = f"run {escape(r.run_id)}: {r.points} points from {r.records} records"
        if r.problems:
            problems = escape("; ".join(r.problems))
            line += f" [yellow]({problems}; {r.dropped_bytes} bytes unreadable)[/]"
        console.print(line)
    for run_id in crashed:
        console.print(f"run {run_id}: no heartbeat, marked [magenta]crashed[/]")
