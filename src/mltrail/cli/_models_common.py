"""What the ``mltrail models`` commands share: options, reading inputs, JSON and tables."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table
from rich.text import Text

from mltrail.cli._common import cell, fmt_time
from mltrail.entities import Approval, ModelVersion, RegistryEvent

if TYPE_CHECKING:
    from mltrail.client.client import Client

__all__ = [
    "NAME",
    "REASON",
    "SPEC",
    "approvals_table",
    "events_table",
    "grid",
    "model_version_dict",
    "open_client",
    "pending_message",
    "read_json",
    "read_text",
    "stage_holders",
    "version_name",
    "versions_table",
]

NAME = typer.Argument(..., help="The registered model's name.")
SPEC = typer.Argument(
    ...,
    help="NAME, NAME@3, NAME@2.1.0, NAME@ALIAS or NAME@STAGE (NAME alone: the latest version).",
)
REASON = typer.Option(None, "--reason", "-r", help="Why; kept in the audit trail.")


def open_client(uri: str | None) -> Client:
    from mltrail.client.client import Client

    return Client(uri)


# -- reading option values ------------------------------------------------------------


def read_text(path: str, option: str) -> str:
    """The text of a file, or of stdin for ``-``."""
    if path == "-":
        return typer.get_text_stream("stdin").read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from exc


def read_json(value: str, option: str) -> dict[str, Any]:
    """A JSON object given inline, or as ``@FILE`` (``@-``: stdin)."""
    text = read_text(value[1:], option) if value.startswith("@") else value
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from exc
    if not isinstance(data, dict):
        raise typer.BadParameter("expected a JSON object ({...})", param_hint=option)
    return data


# -- JSON -----------------------------------------------------------------------------


def model_version_dict(v: ModelVersion) -> dict[str, Any]:
    return {**asdict(v), "spec": v.spec, "valid": v.valid}


def stage_holders(versions: Iterable[ModelVersion]) -> dict[str, list[int]]:
    """stage -> the version numbers in it, in version order."""
    held: dict[str, list[int]] = {}
    for v in versions:
        held.setdefault(v.stage, []).append(v.version)
    return held


# -- text and tables ------------------------------------------------------------------


def version_name(v: ModelVersion) -> str:
    """``churn-xgboost@3 (1.2.0)``"""
    return f"{v.spec} ({v.label})"


def pending_message(a: Approval) -> str:
    return (
        f"approval #{a.id} requested ({a.model} version {a.version} -> {a.kind} {a.target}), "
        f"waiting for a second person: mltrail models approve {a.id}"
    )


def grid(rows: Iterable[tuple[str, Any]]) -> Table:
    """A borderless key/value table, like ``runs show`` prints first."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, cell(value))
    return table


def _table(title: str, columns: Iterable[str], *, no_wrap: Iterable[str] = ()) -> Table:
    """Columns named in ``no_wrap`` keep their width; the others wrap on narrow terminals."""
    keep = set(no_wrap)
    table = Table(title=Text(title), header_style="bold")
    for col in columns:
        table.add_column(col, no_wrap=col in keep)
    return table


def versions_table(title: str, versions: Iterable[ModelVersion]) -> Table:
    cols = ("version", "label", "stage", "aliases", "valid", "signed", "created", "by", "run")
    table = _table(title, cols, no_wrap=("version", "label", "stage", "created"))
    for v in versions:
        n = len(v.validation_errors)
        table.add_row(
            cell(v.version),
            cell(v.label),
            cell(v.stage),
            cell(", ".join(v.aliases) or "-"),
            cell("yes" if v.valid else f"no ({n} problem{'s' * (n != 1)})"),
            cell("yes" if v.signed else "no"),
            cell(fmt_time(v.created_at)),
            cell(v.created_by),
            cell(v.run_id),
        )
    return table


def approvals_table(title: str, approvals: Iterable[Approval]) -> Table:
    cols = ("id", "model", "version", "wants", "status", "requested", "by", "reason", "decided by")
    table = _table(title, cols)
    for a in approvals:
        table.add_row(
            cell(f"#{a.id}"),
            cell(a.model),
            cell(a.version),
            cell(f"{a.kind} {a.target}"),
            cell(a.status),
            cell(fmt_time(a.requested_at)),
            cell(a.requested_by),
            cell(a.reason),
            cell(a.decided_by),
        )
    return table


def _change(e: RegistryEvent) -> str:
    if e.action.startswith("approval."):
        return f"#{e.payload.get('approval_id', '?')}"
    if e.from_value is None and e.to_value is None:
        return "-"
    if e.action.startswith("alias.") and e.to_value is None:
        return f"{e.from_value} → (removed)"
    return f"{e.from_value or '-'} → {e.to_value or '-'}"


def events_table(title: str, events: Iterable[RegistryEvent], *, with_model: bool) -> Table:
    cols = ["when", "who", "action", "version", "target", "from → to", "reason"]
    if with_model:
        cols.insert(3, "model")
    table = _table(title, cols, no_wrap=("when", "action"))
    for e in events:
        row = [
            cell(fmt_time(e.at)),
            cell(e.actor),
            cell(e.action),
            cell(e.version),
            cell(e.target),
            cell(_change(e)),
            cell(e.reason),
        ]
        if with_model:
            row.insert(3, cell(e.model))
        table.add_row(*row)
    return table
