"""``mltrail server`` and ``mltrail ui``: the team server (uvicorn + the ASGI app)."""

from __future__ import annotations

import os

import typer

from mltrail.cli._common import err_console

__all__ = ["server", "ui"]

StoreOpt = typer.Option(
    None,
    "--store",
    envvar="MLTRAIL_TRACKING_URI",
    help="Metadata store: sqlite:///path/mltrail.db or postgresql://user@host/db "
    "(default: ./.mltrail/mltrail.db).",
)
ObjectsOpt = typer.Option(
    None,
    "--objects",
    envvar="MLTRAIL_OBJECTS",
    help="Object store: a folder or s3://bucket/prefix (default: objects/ beside the SQLite file).",
)
HostOpt = typer.Option("127.0.0.1", "--host", help="Address to listen on.")
PortOpt = typer.Option(5000, "--port", "-p", help="Port to listen on.")
WorkersOpt = typer.Option(1, "--workers", "-w", min=1, help="Worker processes.")
AuthOpt = typer.Option(
    False, "--auth", help="Require API tokens (users and roles: mltrail users --help)."
)
LogOpt = typer.Option("warning", "--log-level", help="uvicorn's log level.")


def _serve(
    store: str | None,
    objects: str | None,
    host: str,
    port: int,
    workers: int,
    auth: bool,
    log_level: str,
    *,
    banner: str,
) -> None:
    from mltrail.server import require_server_extra

    require_server_extra("mltrail server")
    import uvicorn

    from mltrail.server.config import ServerConfig

    config = ServerConfig.create(store, objects, auth=auth)
    os.environ.update(config.to_env())  # worker processes build the same app from it
    if auth:  # no admin yet: make one and print its token (once)
        from mltrail.cli.auth import print_bootstrap_token

        print_bootstrap_token(config.store_uri)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    err_console.print(
        f"{banner} at [bold]http://{shown}:{port}[/]  (store {_redact(config.store_uri)}, "
        f"objects {_redact(config.objects_uri)}, auth {'on' if auth else 'off'}; "
        "Ctrl-C stops it)",
        soft_wrap=True,
    )
    uvicorn.run(
        "mltrail.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=10,
    )


def _redact(uri: str) -> str:
    from mltrail.store.sql.engine import redact

    return redact(uri)


def server(
    store: str | None = StoreOpt,
    objects: str | None = ObjectsOpt,
    host: str = HostOpt,
    port: int = PortOpt,
    workers: int = WorkersOpt,
    auth: bool = AuthOpt,
    log_level: str = LogOpt,
) -> None:
    """Serve the API (/api/v1, MLflow's /api/2.0/mlflow) and the web UI."""
    _serve(store, objects, host, port, workers, auth, log_level, banner="mltrail server")


def ui(
    store: str | None = StoreOpt,
    objects: str | None = ObjectsOpt,
    host: str = HostOpt,
    port: int = PortOpt,
    auth: bool = AuthOpt,
    log_level: str = LogOpt,
) -> None:
    """Open the web UI: the same server as `mltrail server`, one worker; open the URL shown."""
    _serve(store, objects, host, port, 1, auth, log_level, banner="mltrail UI")
