"""``mltrail models``: the model registry: register, promote, alias, roll back, approve,
audit, cards, signatures, downloads, policy and retention.

Models are named by a spec: ``NAME`` (the latest version), ``NAME@3`` (number),
``NAME@2.1.0`` (label), ``NAME@champion`` (alias) or ``NAME@production`` (stage).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from mltrail.cli import _models_change as change
from mltrail.cli._common import JsonOpt, UriOpt, cell, console, fmt_time, print_json
from mltrail.cli._models_common import (
    NAME,
    REASON,
    SPEC,
    approvals_table,
    events_table,
    grid,
    model_version_dict,
    open_client,
    read_text,
    stage_holders,
    version_name,
    versions_table,
)
from mltrail.cli._models_webhooks import app as webhooks_app
from mltrail.cli.artifacts import _DEST, Transfer
from mltrail.entities import ModelVersion

__all__ = ["app"]

app = typer.Typer(
    help="The model registry: register versions, promote them through stages, move aliases, "
    "roll back, approve, audit, sign and download.",
    no_args_is_help=True,
)
# `validate` found problems in the metadata.
INVALID_EXIT = 1


# -- reading ----------------------------------------------------------------------------


def ls(as_json: bool = JsonOpt, uri: str = UriOpt) -> None:
    """List registered models: latest version, aliases, the versions in each stage."""
    client = open_client(uri)
    policy = client.registry_policy()
    entries = [(m, client.model_versions(m.name)) for m in client.list_models()]
    if as_json:
        print_json(
            [
                {
                    **asdict(m),
                    "latest_label": versions[-1].label if versions else None,
                    "stages": stage_holders(versions),
                }
                for m, versions in entries
            ]
        )
        return
    if not entries:
        console.print("no registered models yet: mltrail models register SOURCE NAME")
        return
    table = Table(title="registered models", header_style="bold")
    for col in ("name", "latest", "aliases", "stages", "updated"):
        table.add_column(col)
    quiet = (policy.initial_stage, policy.archive_stage)
    for m, versions in entries:
        held = stage_holders(versions)
        stages = [
            f"{stage}: {', '.join(map(str, held[stage]))}"
            for stage in policy.stages
            if stage in held and stage not in quiet
        ]
        table.add_row(
            cell(m.name),
            cell(version_name(versions[-1]) if versions else "-"),
            cell(", ".join(f"{a}: {n}" for a, n in m.aliases.items()) or "-"),
            cell("; ".join(stages) or "-"),
            cell(fmt_time(m.updated_at)),
        )
    console.print(table)


def show(
    spec: str = typer.Argument(
        ..., help="NAME for the model and its versions, or NAME@REF for one version."
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """A model (description, aliases, versions, pending approvals), or one version in full."""
    client = open_client(uri)
    if "@" in spec:
        _show_version(client.get_model_version(spec), as_json)
        return
    m = client.get_model(spec)
    versions = client.model_versions(spec)
    pending = client.list_approvals(spec)
    if as_json:
        print_json(
            {
                **asdict(m),
                "versions": [model_version_dict(v) for v in versions],
                "approvals": [asdict(a) for a in pending],
            }
        )
        return
    tags = ", ".join(f"{k}={v}" for k, v in m.tags.items())
    console.print(
        grid(
            [
                ("name", m.name),
                ("description", m.description or "-"),
                ("owner", m.owner),
                ("scheme", m.scheme),
                ("tags", tags or "-"),
                ("aliases", ", ".join(f"{a} -> {n}" for a, n in m.aliases.items()) or "-"),
                ("latest", m.latest_version),
                ("created", fmt_time(m.created_at)),
                ("updated", fmt_time(m.updated_at)),
            ]
        )
    )
    console.print(versions_table(f"versions of {m.name}", versions))
    if pending:
        console.print(approvals_table("pending approvals", pending))


def _show_version(v: ModelVersion, as_json: bool) -> None:
    if as_json:
        print_json(model_version_dict(v))
        return
    signed = f"yes (key {v.signing_key_id})" if v.signed else "no"
    console.print(
        grid(
            [
                ("model", v.model),
                ("version", v.version),
                ("label", v.label),
                ("stage", v.stage),
                ("aliases", ", ".join(v.aliases) or "-"),
                ("artifact", v.artifact),
                ("digest", v.artifact_digest),
                ("run", v.run_id),
                ("signed", signed),
                ("valid", "yes" if v.valid else "no"),
                ("description", v.description or "-"),
                ("created", f"{fmt_time(v.created_at)} by {v.created_by or '-'}"),
            ]
        )
    )
    for problem in v.validation_errors:
        console.print(Text(f"  - {problem}", style="yellow"))
    meta = Table(title="metadata", header_style="bold")
    meta.add_column("key")
    meta.add_column("value")
    for key, value in v.metadata.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        meta.add_row(cell(key), cell(text))
    console.print(meta)


def versions(
    name: str = NAME,
    stage: str | None = typer.Option(None, "--stage", "-s", help="Only versions in this stage."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """A model's versions, oldest first: label, stage, aliases, valid, signed, source run."""
    client = open_client(uri)
    if stage is not None:
        client.registry_policy().check_stage(stage)
    found = client.model_versions(name, stage=stage)
    if as_json:
        print_json([model_version_dict(v) for v in found])
        return
    heading = f"versions of {name}" + (f" in {stage}" if stage else "")
    console.print(versions_table(heading, found))


def history(
    name: str | None = typer.Argument(
        None, help="One model's trail (default: the whole registry's)."
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """The audit trail, oldest first: when, who, what changed from what to what, and why."""
    events = open_client(uri).model_history(name)
    if as_json:
        print_json([asdict(e) for e in events])
        return
    if not events:
        console.print("nothing recorded yet")
        return
    heading = f"history of {name}" if name else "registry history"
    console.print(events_table(heading, events, with_model=name is None))


def approvals(
    name: str | None = typer.Argument(None, help="Only this model's requests."),
    show_all: bool = typer.Option(
        False, "--all", "-a", help="Decided requests too, not only the pending ones."
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Requests waiting for a second person's approval (--all: every request)."""
    found = open_client(uri).list_approvals(name, status=None if show_all else "pending")
    if as_json:
        print_json([asdict(a) for a in found])
        return
    if not found:
        console.print("no approval requests" if show_all else "no pending approval requests")
        return
    console.print(approvals_table("approval requests", found))


# -- cards, checks, files ---------------------------------------------------------------


def card(
    spec: str = SPEC,
    raw: bool = typer.Option(False, "--raw", help="Print the Markdown source as is."),
    edit: str | None = typer.Option(
        None, "--edit", help="Replace the card with this Markdown file ('-': stdin)."
    ),
    reason: str | None = REASON,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Print a version's model card (Markdown), or replace it with --edit FILE."""
    client = open_client(uri)
    if edit is not None:
        v = client.update_model_card(spec, read_text(edit, "--edit"), reason=reason)
        if not as_json:
            console.print(Text(f"updated the card of {version_name(v)}"))
            return
    else:
        v = client.get_model_version(spec)
    text = client.model_card(v)
    if as_json:
        print_json({"model": v.model, "version": v.version, "label": v.label, "card": text})
    elif raw:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        from rich.markdown import Markdown

        console.print(Markdown(text))


def validate(spec: str = SPEC, as_json: bool = JsonOpt, uri: str = UriOpt) -> None:
    """Check a version's metadata against the registry schema (exit code 1 if it fails)."""
    client = open_client(uri)
    v = client.get_model_version(spec)
    problems = client.validate_model(v)
    if as_json:
        print_json(
            {"model": v.model, "version": v.version, "valid": not problems, "problems": problems}
        )
    elif not problems:
        console.print(Text(f"{version_name(v)}: metadata valid"))
    else:
        n = len(problems)
        console.print(Text(f"{version_name(v)}: {n} problem{'s' * (n != 1)}"))
        for problem in problems:
            console.print(Text(f"  - {problem}"), soft_wrap=True)
    if problems:
        raise typer.Exit(INVALID_EXIT)


def verify(spec: str = SPEC, as_json: bool = JsonOpt, uri: str = UriOpt) -> None:
    """Check a version's Ed25519 signature (exit code 7 if it does not verify)."""
    v = open_client(uri).verify_model(spec)
    if as_json:
        print_json({"verified": True, **model_version_dict(v)})
        return
    console.print(
        Text(f"signature OK: {version_name(v)} = {v.artifact} signed with key {v.signing_key_id}"),
        soft_wrap=True,
    )


def download(
    spec: str = SPEC,
    dest: Path | None = _DEST,
    no_verify: bool = typer.Option(
        False, "--no-verify", help="Skip the signature check (file hashes are still checked)."
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Download a version's files after checking its signature; print the folder."""
    client = open_client(uri)
    v = client.get_model_version(spec)
    size = client.get_artifact(v.artifact).size
    with Transfer(f"downloading {v.spec}", size) as bar:
        path = client.download_model(v, dest, verify=not no_verify, progress=bar.advance)
    if as_json:
        print_json({**model_version_dict(v), "path": str(path), "verified": not no_verify})
        return
    typer.echo(str(path))


# In the order `mltrail models --help` lists them; the commands that change the registry
# live in _models_change.
app.command("ls")(ls)
app.command("show")(show)
app.command("versions")(versions)
app.command("register")(change.register)
app.command("promote")(change.promote)
app.command("alias")(change.set_alias)
app.command("rollback")(change.rollback)
app.command("history")(history)
app.command("card")(card)
app.command("approvals")(approvals)
app.command("approve")(change.approve)
app.command("reject")(change.reject)
app.command("validate")(validate)
app.command("verify")(verify)
app.command("download")(download)
app.command("policy")(change.policy)
app.command("retention")(change.retention)
app.add_typer(webhooks_app, name="webhooks")
