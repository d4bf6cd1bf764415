"""``mltrail artifacts``: list, inspect, download, upload and compare versioned artifacts."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from mltrail.cli._common import (
    JsonOpt,
    UriOpt,
    cell,
    console,
    err_console,
    fmt_time,
    fmt_value,
    print_json,
)
from mltrail.entities import ArtifactVersion
from mltrail.errors import InvalidArtifactPath, ValidationError

__all__ = ["app", "fmt_bytes", "split_spec", "version_dict"]

app = typer.Typer(
    help="List, inspect, download, upload and compare versioned artifacts.", no_args_is_help=True
)
cache_app = typer.Typer(help="The local cache of downloaded artifacts.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

ProjectOpt = typer.Option(
    None,
    "--project",
    "-p",
    help="The project the artifact is in [default: the only one holding that name].",
)
_DEST = typer.Option(
    None,
    "--dest",
    "-d",
    help="Put the files in this folder [default: the shared download cache].",
    file_okay=False,
)
_PUT_PATH = typer.Argument(..., help="The file or folder to store.")
_ALIASES = typer.Option(
    None, "--alias", "-a", help="Point this alias at the new version (repeatable)."
)
_METADATA = typer.Option(
    None,
    "--metadata",
    "-m",
    help="KEY=VALUE to record with the version (repeatable); JSON values (0.9, true) "
    "are kept as such, anything else as text.",
)
_SPEC_HELP = "NAME, NAME:v3, NAME:ALIAS or PROJECT/NAME:v3 (NAME alone is the latest version)."


# -- helpers shared with lineage and gc -------------------------------------------------


def split_spec(spec: str, project: str | None) -> tuple[str, str | None]:
    """``[PROJECT/]NAME[:REF]`` -> (``NAME[:REF]``, project), checked here.

    A bad name, alias or project part is a usage error (exit 2), never looked up as an
    unknown project: ``../evil`` and ``name:../x`` are refused, not searched for.
    """
    from mltrail.artifacts import parse_spec

    head, colon, ref = spec.partition(":")
    proj, slash, name = head.rpartition("/")
    rest = f"{name}{colon}{ref}"
    parse_spec(rest)
    if not slash:
        return rest, project
    if any(part in ("", ".", "..") for part in proj.split("/")):
        raise InvalidArtifactPath(
            f"project {proj!r} in {spec!r} is not valid",
            hint="write PROJECT/NAME:VERSION, or use --project",
        )
    if project is not None and project != proj:
        raise ValidationError(f"{spec!r} names project {proj!r} but --project is {project!r}")
    return rest, proj


def fmt_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    size, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"


def _parse_size(text: str, option: str) -> int:
    """``"500M"``, ``"1.5GiB"``, ``"1024"`` -> bytes (K, M, G, T are powers of 1024)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", text.strip().lower())
    if m is None:
        raise typer.BadParameter(
            f"{text!r} is not a size: use bytes, or a number with K, M, G or T",
            param_hint=option,
        )
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


def version_dict(v: ArtifactVersion) -> dict[str, Any]:
    return {
        "project": v.project,
        "name": v.name,
        "version": v.version,
        "spec": v.spec,
        "type": v.type,
        "digest": v.digest,
        "size": v.size,
        "file_count": v.file_count,
        "aliases": list(v.aliases),
        "metadata": v.metadata,
        "created_at": v.created_at,
        "run_id": v.run_id,
        "reference": v.reference,
    }


def _meta_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return fmt_value(value)


def _aliases(v: ArtifactVersion) -> str:
    return ", ".join(v.aliases) or "-"


class Transfer:
    """A byte progress bar on stderr that appears only once a transfer lasts ``delay`` s.

    ``advance`` may be called from worker threads. Nothing is drawn when the console is
    not a terminal (pipes, CI logs), nor for transfers that end quickly (cache hits).
    """

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        console: Console = err_console,
        delay: float = 0.5,
    ) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(description, total=total)
        self._lock = threading.Lock()
        self._shown = self._done = False
        self._timer: threading.Timer | None = None
        if console.is_terminal:
            self._timer = threading.Timer(delay, self._show)
            self._timer.daemon = True

    def advance(self, nbytes: int) -> None:
        self._progress.advance(self._task, nbytes)

    def _show(self) -> None:
        with self._lock:
            if not self._done:
                self._progress.start()
                self._shown = True

    def __enter__(self) -> Transfer:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._done = True
            if self._shown:
                self._progress.stop()


def _local_size(path: Path) -> int | None:
    """Bytes under ``path`` (for the progress bar's total); None when unknown."""
    try:
        if path.is_file():
            return path.stat().st_size
        total = 0
        for dirpath, _, files in os.walk(path):
            for f in files:
                total += os.stat(os.path.join(dirpath, f)).st_size
        return total or None
    except OSError:
        return None


def _parse_metadata(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value is read as JSON when it is JSON (0.9, true, [1, 2])."""

    def no_constants(token: str) -> Any:
        raise ValueError(token)  # NaN, Infinity: keep as text

    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--metadata")
        try:
            out[key.strip()] = json.loads(raw, parse_constant=no_constants)
        except ValueError:
            out[key.strip()] = raw
    return out


# -- commands ---------------------------------------------------------------------------


@app.command("ls")
def ls(
    project: str | None = typer.Option(
        None, "--project", "-p", help="Only artifacts of this project."
    ),
    type_: str | None = typer.Option(
        None, "--type", "-t", help="Only artifacts of this type: model, dataset, ..."
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """List artifacts with their latest version."""
    from mltrail.client.client import Client

    versions = Client(uri).list_artifacts(project, type_)
    if as_json:
        print_json([version_dict(v) for v in versions])
        return
    if not versions:
        if project is None and type_ is None:
            console.print("no artifacts yet: log one with run.log_artifact(path)", markup=False)
        else:
            console.print("no artifacts match")
        return
    columns = ["name", "type", "latest", "aliases", "size", "files", "created"]
    if project is None:
        columns.insert(1, "project")
    table = Table(title=Text(f"artifacts in {project}" if project else "artifacts"))
    table.header_style = "bold"
    for col in columns:
        table.add_column(col, justify="right" if col in ("size", "files") else "left")
    for v in versions:
        values = {
            "name": cell(v.name),
            "project": cell(v.project),
            "type": cell(v.type),
            "latest": cell(v.label),
            "aliases": cell(", ".join(a for a in v.aliases if a != "latest") or "-"),
            "size": cell(fmt_bytes(v.size)),
            "files": cell(v.file_count),
            "created": cell(fmt_time(v.created_at)),
        }
        table.add_row(*(values[col] for col in columns))
    console.print(table)


@app.command("show")
def show(
    spec: str = typer.Argument(..., help=_SPEC_HELP),
    project: str | None = ProjectOpt,
    max_files: int = typer.Option(
        200, "--max-files", min=0, help="List at most this many files (0: all of them)."
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """One artifact version: metadata, aliases, the run that made it, every version, files."""
    from mltrail.client.client import Client

    client = Client(uri)
    rest, proj = split_spec(spec, project)
    v = client.get_artifact(rest, proj)
    entries = client.manifest(v.spec, proj)
    versions = client.artifact_versions(v.name, proj)
    if as_json:
        print_json(
            {
                **version_dict(v),
                "versions": [version_dict(o) for o in versions],
                "files": [
                    {"path": e.path, "oid": e.oid, "size": e.size, "ref": e.ref} for e in entries
                ],
            }
        )
        return
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    rows: list[tuple[str, Any]] = [
        ("name", v.name),
        ("project", v.project or "-"),
        ("version", v.label),
        ("type", v.type),
        ("aliases", _aliases(v)),
        ("size", f"{fmt_bytes(v.size)} ({v.size} bytes)"),
        ("files", v.file_count),
        ("created", fmt_time(v.created_at)),
        ("run", v.run_id or "- (logged without a run)"),
        ("reference", "yes: the files stay where they were" if v.reference else "no"),
        ("digest", v.digest),
    ]
    for key, value in rows:
        info.add_row(key, cell(value))
    console.print(info)
    if v.metadata:
        meta = Table(title="metadata", header_style="bold")
        meta.add_column("key")
        meta.add_column("value")
        for key, value in v.metadata.items():
            meta.add_row(cell(key), cell(_meta_text(value)))
        console.print(meta)
    hist = Table(title=Text(f"versions of {v.name}"), header_style="bold")
    for col in ("version", "aliases", "size", "files", "created", "run"):
        hist.add_column(col, justify="right" if col in ("size", "files") else "left")
    for o in versions:
        hist.add_row(
            cell(o.label),
            cell(_aliases(o)),
            cell(fmt_bytes(o.size)),
            cell(o.file_count),
            cell(fmt_time(o.created_at)),
            cell(o.run_id),
        )
    console.print(hist)
    shown = entries if max_files == 0 else entries[:max_files]
    files = Table(title=Text(f"files of {v.spec}"), header_style="bold")
    files.add_column("path")
    files.add_column("size", justify="right")
    files.add_column("object")
    if v.reference:
        files.add_column("stays at")
    for e in shown:
        row = [cell(e.path), cell(fmt_bytes(e.size)), cell(e.oid[:16])]
        files.add_row(*row, *([cell(e.ref)] if v.reference else []))
    console.print(files)
    if len(shown) < len(entries):
        console.print(f"... and {len(entries) - len(shown)} more files (--max-files 0 lists all)")


@app.command("get")
def get(
    spec: str = typer.Argument(..., help=_SPEC_HELP),
    dest: Path | None = _DEST,
    project: str | None = ProjectOpt,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Download an artifact version's files and print the folder that holds them."""
    from mltrail.client.client import Client

    client = Client(uri)
    rest, proj = split_spec(spec, project)
    v = client.get_artifact(rest, proj)
    with Transfer(f"downloading {v.spec}", v.size) as bar:
        path = client.download_artifact(v.spec, dest, proj, progress=bar.advance)
    if as_json:
        print_json({**version_dict(v), "path": str(path)})
        return
    typer.echo(str(path))


@app.command("put")
def put(
    path: Path = _PUT_PATH,
    name: str | None = typer.Option(
        None, "--name", "-n", help="The artifact's name [default: the file or folder name]."
    ),
    type_: str = typer.Option("file", "--type", "-t", help="What it is: model, dataset, ..."),
    project: str | None = typer.Option(
        None,
        "--project",
        "-p",
        help="The project to log it in [default: $MLTRAIL_PROJECT, else 'default'].",
    ),
    aliases: list[str] | None = _ALIASES,
    metadata: list[str] | None = _METADATA,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Store a file or folder as the next version of an artifact, without a run.

    Files already stored are not stored again; if the files equal the latest version's,
    no new version is made (the aliases still move to it).
    """
    from mltrail.client.client import Client

    meta = _parse_metadata(metadata or [])
    name = path.name if name is None else name
    client = Client(uri)
    started = time.time()
    with Transfer(f"storing {name}", _local_size(path)) as bar:
        v = client.put_artifact(
            path, name, type_, project, meta, list(aliases or []), progress=bar.advance
        )
    created = v.created_at >= started
    if not created and meta and meta != v.metadata:
        err_console.print(
            Text(f"note: the files equal {v.spec}, which keeps its own metadata"), soft_wrap=True
        )
    if as_json:
        print_json({**version_dict(v), "created": created})
        return
    what = f"{v.file_count} file{'s' * (v.file_count != 1)}, {fmt_bytes(v.size)}"
    if created:
        message = f"stored {v.spec} in project {v.project} ({what})"
    else:
        message = f"unchanged: the files equal {v.spec} in project {v.project} ({what})"
    console.print(Text(message))
    console.print(Text(f"aliases: {_aliases(v)}"))


@app.command("diff")
def diff(
    spec_a: str = typer.Argument(..., help="The first version, e.g. NAME:v1."),
    spec_b: str = typer.Argument(..., help="The second version, e.g. NAME:v2 or NAME:best."),
    project: str | None = ProjectOpt,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """The files added, removed and modified between two artifact versions."""
    from mltrail.client.client import Client

    client = Client(uri)
    pinned = []
    for spec in (spec_a, spec_b):
        rest, proj = split_spec(spec, project)
        v = client.get_artifact(rest, proj)
        pinned.append(f"{proj}/{v.spec}" if proj else v.spec)
    changes = client.diff_artifacts(pinned[0], pinned[1])
    if as_json:
        print_json({"a": pinned[0], "b": pinned[1], **changes})
        return
    marks = (("added", "+", "green"), ("removed", "-", "red"), ("modified", "~", "yellow"))
    if not any(changes[key] for key, _, _ in marks):
        console.print(Text(f"no differences between {pinned[0]} and {pinned[1]}"))
        return
    console.print(Text(f"{pinned[0]} -> {pinned[1]}", style="bold"))
    for key, mark, style in marks:
        for p in changes[key]:
            console.print(Text.assemble((mark, style), " ", p), soft_wrap=True)
    counts = ", ".join(f"{len(changes[key])} {key}" for key, _, _ in marks)
    console.print(Text(counts))


@app.command("alias")
def set_alias(
    name: str = typer.Argument(..., help="The artifact's name (or PROJECT/NAME)."),
    alias: str = typer.Argument(..., help="The alias: best, prod, ..."),
    version: str = typer.Argument(..., help="The version it should point at: 3 or v3."),
    reason: str | None = typer.Option(
        None, "--reason", "-r", help="Why; kept in the alias history."
    ),
    project: str | None = ProjectOpt,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Point an alias at a version; every move is recorded ('latest' moves by itself)."""
    from mltrail.client.client import Client

    if ":" in name:
        raise typer.BadParameter(
            f"{name!r}: give the name alone, and the version as the third argument",
            param_hint="NAME",
        )
    client = Client(uri)
    rest, proj = split_spec(name, project)
    before = None
    for event in client.alias_history(rest, proj):
        if event.alias == alias:
            before = event.to_version
    client.set_alias(rest, alias, version, proj, reason=reason)
    after = client.get_artifact(f"{rest}:{alias}", proj).version
    if as_json:
        print_json(
            {
                "name": rest,
                "alias": alias,
                "from_version": before,
                "to_version": after,
                "moved": before != after,
            }
        )
        return
    if before == after:
        console.print(Text(f"{rest}:{alias} already points at v{after}"))
    else:
        was = "new" if before is None else f"v{before}"
        console.print(Text(f"{rest}:{alias}: {was} -> v{after}"))


@app.command("alias-history")
def alias_history(
    name: str = typer.Argument(..., help="The artifact's name (or PROJECT/NAME)."),
    project: str | None = ProjectOpt,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Every alias move of an artifact, oldest first: when, who, from, to, why."""
    from mltrail.client.client import Client

    rest, proj = split_spec(name, project)
    events = Client(uri).alias_history(rest, proj)
    if as_json:
        print_json(
            [
                {
                    "alias": e.alias,
                    "from_version": e.from_version,
                    "to_version": e.to_version,
                    "actor": e.actor,
                    "reason": e.reason,
                    "at": e.at,
                }
                for e in events
            ]
        )
        return
    if not events:
        console.print(Text(f"no alias of {rest} has moved yet"))
        return
    table = Table(title=Text(f"alias history of {rest}"), header_style="bold")
    for col in ("when", "alias", "from", "to", "by", "reason"):
        table.add_column(col)
    for e in events:
        table.add_row(
            cell(fmt_time(e.at)),
            cell(e.alias),
            cell("-" if e.from_version is None else f"v{e.from_version}"),
            cell("(removed)" if e.to_version is None else f"v{e.to_version}"),
            cell(e.actor),
            cell(e.reason),
        )
    console.print(table)


@cache_app.command("prune")
def cache_prune(
    max_bytes: str | None = typer.Option(
        None,
        "--max-bytes",
        help="Shrink the cache to this size: bytes, or with K, M, G, T "
        "[default: $MLTRAIL_CACHE_MAX_BYTES, else 10G].",
        show_default=False,
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Delete the least recently used downloads until the cache fits its size limit."""
    # The cache is shared by every store, so the store itself is not opened: --tracking-uri
    # is accepted like on every command.
    from mltrail.artifacts.ops import cache_prune as prune
    from mltrail.config import cache_dir

    limit = None if max_bytes is None else _parse_size(max_bytes, "--max-bytes")
    removed, freed = prune(limit)
    if as_json:
        print_json({"removed": removed, "bytes_freed": freed, "cache_dir": str(cache_dir())})
        return
    console.print(
        Text(
            f"removed {removed} cached version{'s' * (removed != 1)}, freed {fmt_bytes(freed)} "
            f"({cache_dir()})"
        ),
        soft_wrap=True,
    )
