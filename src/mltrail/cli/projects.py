"""``mltrail projects``: the namespaces runs live in."""

from __future__ import annotations

import typer
from rich.table import Table

from mltrail.cli._common import JsonOpt, UriOpt, cell, console, fmt_time, print_json

app = typer.Typer(help="List projects.", no_args_is_help=True)


@app.command("ls")
def ls(as_json: bool = JsonOpt, uri: str = UriOpt) -> None:
    """List projects with their number of runs."""
    from mltrail.client.client import Client

    projects = Client(uri).list_projects()
    if as_json:
        print_json(
            [{"name": p.name, "created_at": p.created_at, "runs": p.run_count} for p in projects]
        )
        return
    table = Table(title="projects", header_style="bold")
    table.add_column("name")
    table.add_column("runs", justify="right")
    table.add_column("created")
    for p in projects:
        table.add_row(cell(p.name), str(p.run_count), fmt_time(p.created_at))
    console.print(table)
