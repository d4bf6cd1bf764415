"""``mltrail models webhooks``: receivers of registry events (HMAC-SHA256 signed)."""

from __future__ import annotations

from dataclasses import asdict

import typer
from rich.table import Table

from mltrail.cli._common import JsonOpt, UriOpt, cell, console, fmt_time, print_json
from mltrail.cli._models_common import open_client

__all__ = ["app"]

app = typer.Typer(
    help="Webhooks on registry events: add, list, remove, see deliveries, deliver now.",
    no_args_is_help=True,
)
_EVENTS = typer.Option(
    [],
    "--event",
    "-e",
    help="An action (stage.changed), a family (alias.*) or * (repeatable; default: all).",
)
_ID = typer.Argument(..., help="The webhook's id (see: mltrail models webhooks ls).")


@app.command("add")
def add(
    url: str = typer.Argument(..., help="Where to POST events (http or https)."),
    event: list[str] = _EVENTS,
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model's events."),
    name: str | None = typer.Option(None, "--name", help="A name to recognise it by."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Add a webhook; prints its signing secret once (it is never shown again)."""
    hook, secret = open_client(uri).create_webhook(url, event or None, name=name, model=model)
    if as_json:
        print_json({**asdict(hook), "secret": secret})
        return
    console.print(f"webhook #{hook.id} -> {hook.url}")
    console.print(f"secret (shown once, verify X-Mltrail-Signature with it): {secret}")


@app.command("ls")
def ls(
    all_: bool = typer.Option(False, "--all", help="Include removed webhooks."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """List webhooks (never their secrets)."""
    hooks = open_client(uri).list_webhooks(include_deleted=all_)
    if as_json:
        print_json([asdict(h) for h in hooks])
        return
    table = Table("id", "name", "url", "events", "model", "active", "created")
    for h in hooks:
        table.add_row(
            str(h.id), cell(h.name), cell(h.url), cell(", ".join(h.events) or "*"),
            cell(h.model or "*"), "yes" if h.active else "no", fmt_time(h.created_at),
        )  # fmt: skip
    console.print(table)


@app.command("rm")
def rm(webhook_id: int = _ID, as_json: bool = JsonOpt, uri: str = UriOpt) -> None:
    """Remove a webhook: no more deliveries; its delivery log stays."""
    hook = open_client(uri).delete_webhook(webhook_id)
    if as_json:
        print_json(asdict(hook))
        return
    console.print(f"webhook #{hook.id} removed")


@app.command("deliveries")
def deliveries(
    webhook_id: int | None = typer.Argument(None, help="Only this webhook's deliveries."),
    status: str | None = typer.Option(None, "--status", help="pending, delivered or failed."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """The delivery log, newest first: attempts, status codes, errors."""
    rows = open_client(uri).webhook_deliveries(webhook_id, status)
    if as_json:
        print_json([asdict(d) for d in rows])
        return
    table = Table("id", "webhook", "event", "action", "status", "attempts", "last", "when")
    for d in rows:
        last = d.last_error or ("" if d.last_status is None else str(d.last_status))
        table.add_row(
            str(d.id), str(d.webhook_id), str(d.event_id), d.action, d.status,
            str(d.attempts), cell(last), fmt_time(d.created_at),
        )  # fmt: skip
    console.print(table)


@app.command("deliver")
def deliver(as_json: bool = JsonOpt, uri: str = UriOpt) -> None:
    """Send every delivery that is due now (those left by processes that exited)."""
    n = open_client(uri).deliver_webhooks()
    if as_json:
        print_json({"attempted": n})
        return
    console.print(f"{n} deliver{'y' if n == 1 else 'ies'} attempted")
