"""``mltrail export PROJECT``: every run, param, metric and history point to open files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import Progress

from mltrail.cli._common import JsonOpt, UriOpt, console, err_console, print_json

_OUT = typer.Option(..., "--out", "-o", help="Folder to write the files into.")


def export(
    project: str = typer.Argument(..., help="The project to export."),
    fmt: str = typer.Option(
        "parquet", "--format", "-f", help="parquet, csv or jsonl (parquet needs pyarrow)."
    ),
    out: Path = _OUT,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Export a project's runs, params, metrics, histories and artifacts to Parquet, CSV
    or JSON Lines (one file per table, described in schema.json)."""
    from mltrail.client.client import Client
    from mltrail.export import export_project

    client = Client(uri)
    if as_json:
        report = export_project(client, project, out, fmt=fmt)
        print_json({"files": {t: str(p) for t, p in report.files.items()}, "rows": report.rows})
        return
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("exporting", total=None)
        report = export_project(
            client, project, out, fmt=fmt,
            on_run=lambda name: progress.update(task, advance=1, description=escape(name)),
        )  # fmt: skip
    for table, path in report.files.items():
        console.print(f"{table:<10} {report.rows[table]:>10} rows  {escape(str(path))}")
