"""``mltrail gc``: delete stored objects nothing references (a dry run unless --yes)."""

from __future__ import annotations

import typer
from rich.text import Text

from mltrail.cli._common import JsonOpt, UriOpt, console, fmt_duration, print_json

__all__ = ["gc"]


def gc(
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Delete them; without it, only list what would be deleted."
    ),
    grace: float = typer.Option(
        3600.0,
        "--grace",
        min=0,
        help="Keep objects younger than this many seconds: a writer may not have recorded "
        "them yet.",
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Delete stored objects that no artifact version references.

    A dry run by default: it lists what would be deleted. Objects written in the last
    --grace seconds are kept, so a concurrent writer loses nothing.
    """
    from mltrail.cli.artifacts import fmt_bytes
    from mltrail.client.client import Client
    from mltrail.config import objects_uri

    client = Client(uri)
    report = client.gc(dry_run=not yes, grace_seconds=grace)
    where = objects_uri(client.uri)
    if as_json:
        print_json(
            {
                "objects": where,
                "dry_run": report.dry_run,
                "scanned": report.scanned,
                "referenced": report.referenced,
                "recent": report.recent,
                "garbage": list(report.garbage),
                "garbage_bytes": report.garbage_bytes,
                "deleted": list(report.deleted),
                "stale_uploads": list(report.stale_uploads),
            }
        )
        return
    kept = (
        f"{report.scanned} objects in {where}: {report.referenced} referenced, "
        f"{report.recent} younger than {fmt_duration(grace)} kept"
    )
    console.print(Text(kept), soft_wrap=True)
    if report.stale_uploads:
        verb = "would abort" if report.dry_run else "aborted"
        console.print(
            Text(f"{verb} {len(report.stale_uploads)} stale upload(s) left by crashed writers")
        )
    if not report.garbage:
        console.print("nothing to delete")
        return
    n, size = len(report.garbage), fmt_bytes(report.garbage_bytes)
    verb = "would delete" if report.dry_run else "deleted"
    console.print(Text(f"{verb} {n} unreferenced object{'s' * (n != 1)} ({size}):"))
    for oid in report.garbage:
        console.print(Text(f"  {oid}"))
    if report.dry_run:
        console.print(Text("run again with --yes to delete them"))
