"""The ``mltrail models`` commands that change the registry: register, promote, alias,
rollback, approve, reject, policy --set and retention (registered in ``cli.models``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from mltrail.cli._common import JsonOpt, UriOpt, console, err_console, print_json
from mltrail.cli._models_common import (
    NAME,
    REASON,
    SPEC,
    model_version_dict,
    open_client,
    pending_message,
    read_json,
    version_name,
)
from mltrail.cli.artifacts import Transfer, _local_size
from mltrail.entities import Approval, ArtifactVersion

__all__ = [
    "NOT_REGISTERED_EXIT",
    "approve",
    "policy",
    "promote",
    "register",
    "reject",
    "retention",
    "rollback",
    "set_alias",
]

# A registration gate (--when) the run does not match: nothing happened, not an error.
NOT_REGISTERED_EXIT = 3

_APPROVAL_ID = typer.Argument(..., help="The request's number (see: mltrail models approvals).")


# -- registering and moving -------------------------------------------------------------


def register(
    source: str = typer.Argument(
        ...,
        help="The model: an artifact (PROJECT/NAME:v3, NAME:ALIAS) or a local file or folder "
        "(stored first as a model artifact).",
    ),
    name: str = NAME,
    project: str | None = typer.Option(
        None, "--project", "-p", help="The project of the artifact (or to store the path in)."
    ),
    run_id: str | None = typer.Option(
        None, "--run", help="The source run (default: the run that logged the artifact)."
    ),
    when: str | None = typer.Option(
        None,
        "--when",
        "-w",
        help="Register only if the source run matches, e.g. 'metrics.val_accuracy >= 0.9' "
        f"(else nothing happens and the exit code is {NOT_REGISTERED_EXIT}).",
    ),
    bump: str = typer.Option(
        "minor", "--bump", help="The semver part to raise: major, minor or patch."
    ),
    label: str | None = typer.Option(None, "--label", "-l", help="An explicit version label."),
    scheme: str | None = typer.Option(
        None,
        "--scheme",
        help="Labels of a new model: semver (default), date, hash or hybrid.",
    ),
    metadata: str | None = typer.Option(
        None, "--metadata", "-m", help="Extra metadata: a JSON object, or @FILE holding one."
    ),
    signature: str | None = typer.Option(
        None,
        "--signature",
        help='Input signature: JSON or @FILE, e.g. {"inputs": {"type": "columns", ...}}.',
    ),
    description: str = typer.Option("", "--description", "-d", help="What this version is."),
    no_sign: bool = typer.Option(False, "--no-sign", help="Do not sign it with your key."),
    reason: str | None = REASON,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Register a model artifact as the next version of NAME (the model is created if new).

    Metadata is filled from the source run: metrics, hyperparameters, datasets, framework.
    With --when, a run that does not match registers nothing and exits with code 3.
    """
    meta = None if metadata is None else read_json(metadata, "--metadata")
    sig = None if signature is None else read_json(signature, "--signature")
    client = open_client(uri)
    src: str | ArtifactVersion = source
    path = Path(source)
    if path.exists():
        if when is not None and run_id is None:
            raise typer.BadParameter("a local path has no source run to test: add --run RUN_ID")
        with Transfer(f"storing {path.name}", _local_size(path)) as bar:
            src = client.put_artifact(path, name, "model", project, progress=bar.advance)
    v = client.register_model(
        src,
        name,
        project=project,
        run_id=run_id,
        when=when,
        bump=bump,
        label=label,
        scheme=scheme,
        metadata=meta,
        signature=sig,
        description=description,
        sign=not no_sign,
        reason=reason,
    )
    if v is None:
        if as_json:
            print_json({"registered": False, "when": when})
        else:
            console.print(Text(f"not registered: the run does not match {when}"), soft_wrap=True)
        raise typer.Exit(NOT_REGISTERED_EXIT)
    if as_json:
        print_json({"registered": True, **model_version_dict(v)})
        return
    message = f"registered {version_name(v)} in {v.stage} from {v.artifact}"
    console.print(Text(message), soft_wrap=True)
    if not v.valid:
        err_console.print(
            Text("note: its metadata fails the registry schema; it cannot enter a protected stage:")
        )
        for problem in v.validation_errors:
            err_console.print(Text(f"  - {problem}"), soft_wrap=True)


def promote(
    spec: str = SPEC,
    stage: str = typer.Argument(..., help="The stage to move it to: staging, production, ..."),
    archive: bool | None = typer.Option(
        None,
        "--archive/--no-archive",
        help="Archive the versions already in the stage (default: only for exclusive "
        "stages such as production).",
        show_default=False,
    ),
    reason: str | None = REASON,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Move a version to a stage, or ask for approval when the policy wants a second person."""
    client = open_client(uri)
    before = client.get_model_version(spec)
    others = [v.version for v in client.model_versions(before.model, stage=stage)]
    result = client.promote(before, stage, archive_existing=archive, reason=reason)
    if isinstance(result, Approval):
        if as_json:
            print_json({"outcome": "approval_requested", "approval": asdict(result)})
        else:
            console.print(Text(pending_message(result)), soft_wrap=True)
        return
    now = {v.version: v.stage for v in client.model_versions(before.model)}
    archived = [n for n in others if n != before.version and now.get(n) != stage]
    moved = before.stage != result.stage
    if as_json:
        print_json(
            {
                "outcome": "promoted" if moved else "unchanged",
                "from_stage": before.stage,
                "version": model_version_dict(result),
                "archived": archived,
            }
        )
        return
    if not moved:
        console.print(Text(f"{version_name(result)} is already in {stage}"))
        return
    console.print(Text(f"{version_name(result)}: {before.stage} -> {stage}"))
    for n in archived:
        console.print(Text(f"{result.model}@{n}: {stage} -> {now.get(n)}"))


def set_alias(
    name: str = NAME,
    alias: str = typer.Argument(..., help="The alias: champion, ..."),
    version: str | None = typer.Argument(
        None, help="The version to point it at: a number, label, alias or stage."
    ),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias instead."),
    reason: str | None = REASON,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Point an alias at a version (or --delete it); every move is audited."""
    if delete == (version is not None):
        raise typer.BadParameter("give either VERSION or --delete", param_hint="VERSION")
    client = open_client(uri)
    before = client.get_model(name).aliases.get(alias)
    out: dict[str, Any] = {"model": name, "alias": alias, "from_version": before}
    if version is None:
        client.delete_model_alias(name, alias, reason=reason)
        outcome, message = "deleted", f"{name}@{alias} removed (was version {before})"
        if before is None:
            outcome, message = "unchanged", f"{name} has no alias {alias!r}: nothing to do"
        out.update(outcome=outcome, to_version=None)
    else:
        ref: int | str = int(version) if version.isdecimal() else version
        result = client.set_model_alias(name, alias, ref, reason=reason)
        if isinstance(result, Approval):
            out.update(outcome="approval_requested", approval=asdict(result))
            message = pending_message(result)
        else:
            after = client.get_model_version(f"{name}@{alias}")
            out.update(outcome="unchanged" if before == after.version else "moved")
            out.update(to_version=after.version)
            was = "new" if before is None else f"version {before}"
            message = f"{name}@{alias}: {was} -> {version_name(after)}"
            if before == after.version:
                message = f"{name}@{alias} already points at {version_name(after)}"
    if as_json:
        print_json(out)
    else:
        console.print(Text(message), soft_wrap=True)


def rollback(
    name: str = NAME,
    stage: str | None = typer.Option(None, "--stage", "-s", help="The stage to roll back."),
    alias_name: str | None = typer.Option(None, "--alias", "-a", help="The alias to roll back."),
    reason: str | None = REASON,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Give a stage (or alias) back to the version that held it before; the current holder
    of a stage is archived."""
    if (stage is None) == (alias_name is None):
        raise typer.BadParameter("give exactly one of --stage or --alias")
    client = open_client(uri)
    if stage is not None:
        before = [v.version for v in client.model_versions(name, stage=stage)]
        what = stage
    else:
        held = client.get_model(name).aliases.get(str(alias_name))
        before, what = ([] if held is None else [held]), f"alias {alias_name}"
    v = client.rollback_model(name, stage=stage, alias=alias_name, reason=reason)
    if as_json:
        print_json({"from_versions": before, "version": model_version_dict(v)})
        return
    was = ", ".join(map(str, before)) or "-"
    console.print(Text(f"{name} {what}: version {was} -> {version_name(v)}"))


def approve(
    approval_id: int = _APPROVAL_ID,
    reason: str | None = REASON,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Approve someone else's request and carry it out (the requester may not)."""
    _decided(open_client(uri).approve(approval_id, reason=reason), as_json)


def reject(
    approval_id: int = _APPROVAL_ID,
    reason: str | None = REASON,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Reject a pending request (the requester may withdraw their own this way)."""
    _decided(open_client(uri).reject(approval_id, reason=reason), as_json)


def _decided(a: Approval, as_json: bool) -> None:
    if as_json:
        print_json(asdict(a))
        return
    console.print(
        Text(
            f"{a.status} #{a.id}: {a.model} version {a.version} -> {a.kind} {a.target} "
            f"(requested by {a.requested_by})"
        ),
        soft_wrap=True,
    )


# -- policy and retention ---------------------------------------------------------------


def policy(
    set_file: str | None = typer.Option(
        None,
        "--set",
        metavar="FILE",
        help="Replace the policy with this JSON file ('-': stdin); keys left out take "
        "their defaults.",
    ),
    reason: str | None = REASON,
    as_json: bool = typer.Option(
        False, "--json", help="Accepted for symmetry: the policy is always printed as JSON."
    ),
    uri: str = UriOpt,
) -> None:
    """Print the registry policy (stages, transitions, protection, roles, schema) as JSON,
    or replace it with --set FILE (admins only, once anyone is admin)."""
    client = open_client(uri)
    if set_file is not None:
        new = client.set_registry_policy(read_json(f"@{set_file}", "--set"), reason=reason)
        document = new.document
        err_console.print("policy updated")
    else:
        document = client.registry_policy().document
    print_json(document)  # JSON either way: a document to edit and --set again


def retention(
    archive_days: float | None = typer.Option(
        None,
        "--archive-older-than",
        metavar="DAYS",
        min=0,
        help="Archive versions older than this that are still in the initial stage and "
        "hold no alias.",
    ),
    delete_days: float | None = typer.Option(
        None,
        "--delete-runs-older-than",
        metavar="DAYS",
        min=0,
        help="Delete ended runs older than this that no model version comes from.",
    ),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Do it; without it, only list what would be done."
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Archive old unused versions and delete old runs (a dry run unless --yes)."""
    if archive_days is None and delete_days is None:
        raise typer.BadParameter("give --archive-older-than and/or --delete-runs-older-than")
    report = open_client(uri).apply_retention(
        archive_versions_older_than_days=archive_days,
        delete_runs_older_than_days=delete_days,
        dry_run=not yes,
    )
    if as_json:
        print_json(
            {
                "dry_run": report.dry_run,
                "archived_versions": [
                    {"model": m, "version": n} for m, n in report.archived_versions
                ],
                "deleted_runs": report.deleted_runs,
                "kept_runs": report.kept_runs,
            }
        )
        return
    would = "would " if report.dry_run else ""
    if archive_days is not None:
        n = len(report.archived_versions)
        console.print(Text(f"{would}archive {n} version{'s' * (n != 1)}"))
        for m, number in report.archived_versions:
            console.print(Text(f"  {m}@{number}"))
    if delete_days is not None:
        n = len(report.deleted_runs)
        console.print(Text(f"{would}delete {n} run{'s' * (n != 1)}"))
        for run_id in report.deleted_runs:
            console.print(Text(f"  {run_id}"))
        if report.kept_runs:
            console.print(Text(f"kept {report.kept_runs} old runs that model versions come from"))
    if report.dry_run:
        console.print("run again with --yes to do it")
