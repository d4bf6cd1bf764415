"""``mltrail`` command line: one module per noun, shared options in ``_common``."""

from __future__ import annotations

import typer

from mltrail._version import __version__
from mltrail.cli import artifacts, gc, lineage, models, projects, runs, server, sync
from mltrail.cli import auth as auth_cli
from mltrail.cli import data as data_cli
from mltrail.cli import export as export_cli
from mltrail.cli import imports as imports_cli
from mltrail.cli import pipelines as pipelines_cli
from mltrail.cli import sweeps as sweeps_cli
from mltrail.cli._common import run_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="mltrail",
    help="Track ML experiments, version models and data. Docs: mltrail COMMAND --help",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.add_typer(runs.app, name="runs")
app.add_typer(projects.app, name="projects")
app.command("sync")(sync.sync)
app.add_typer(artifacts.app, name="artifacts")
app.command("lineage")(lineage.lineage)
app.command("gc")(gc.gc)
app.add_typer(models.app, name="models")
app.command("server")(server.server)
app.command("ui")(server.ui)
app.command("login")(auth_cli.login)
app.command("logout")(auth_cli.logout)
app.add_typer(auth_cli.users_app, name="users")
app.add_typer(auth_cli.tokens_app, name="tokens")
app.command("audit")(auth_cli.audit)
app.add_typer(data_cli.app, name="data")
pipelines_cli.register(app)
app.command("import")(imports_cli.import_)
app.command("export")(export_cli.export)
app.add_typer(sweeps_cli.app, name="sweep")
app.command("agent")(sweeps_cli.agent)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mltrail {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """mltrail: experiment tracking, model registry and data versioning, local-first."""


def main() -> None:
    run_app(app)
