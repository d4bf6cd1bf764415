"""``mltrail data``: dataset versions tracked by ``*.mltrail`` pointer files in git."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from mltrail.cli._common import JsonOpt, UriOpt, console, err_console, print_json

if TYPE_CHECKING:
    from mltrail.data.ops import AddResult, DataStatus
    from mltrail.objects import ObjectStore

__all__ = ["app"]

app = typer.Typer(
    help="Version data in git: small pointer files tracked by git, bytes in the object store.",
    no_args_is_help=True,
)

PathsArg = typer.Argument(
    None,
    help="Data paths or their .mltrail pointers [default: every pointer under the current folder].",
    show_default=False,
)


def _open(uri: str | None) -> tuple[ObjectStore, Path]:
    """The tracking store's object store, and its hash cache file."""
    from mltrail.artifacts.hashcache import hash_cache_path
    from mltrail.config import objects_uri, resolve_uri
    from mltrail.objects import open_object_store

    resolved = resolve_uri(uri)
    return open_object_store(objects_uri(resolved)), hash_cache_path(resolved)


def _tracking(uri: str | None) -> Any:
    """The tracking store itself (dataset versions are recorded there)."""
    from mltrail.config import resolve_uri
    from mltrail.store import open_store

    return open_store(resolve_uri(uri))


def _pointers(paths: list[str] | None) -> list[Path]:
    from mltrail.data.pointer import find_pointers, pointer_path

    if paths:
        return [pointer_path(p) for p in paths]
    return [p.relative_to(Path.cwd()) for p in find_pointers(Path.cwd())]


def _fmt_bytes(n: int) -> str:
    from mltrail.cli.artifacts import fmt_bytes

    return fmt_bytes(n)


def _add_with_progress(
    objects: ObjectStore, path: str, cache: Path, store: Any, project: str | None
) -> AddResult:
    """``add`` with a Rich progress bar (bytes) on stderr."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from mltrail.data.ops import add as add_data

    target = Path(path)
    files = [target] if target.is_file() else [p for p in target.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("hashing", total=total)
        return add_data(
            objects,
            path,
            hash_cache=cache,
            progress=lambda n: bar.advance(task, n),
            store=store,
            project=project,
        )


@app.command("add")
def add(
    path: str = typer.Argument(..., help="File or folder to track, e.g. data/images/."),
    project: str | None = typer.Option(
        None,
        "--project",
        "-p",
        help="Project of the dataset version [default: MLTRAIL_PROJECT or 'default'].",
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Store a file or folder and write PATH.mltrail beside it (commit that to git).

    Files are hashed in parallel; files unchanged since the last add are not read again.
    PATH is added to the .gitignore of its folder. The content is recorded as a
    `dataset` artifact version (named after the path, '/' as '.'; a new version only
    when it changes), so mltrail gc keeps it and mltrail lineage shows it.
    """
    from mltrail.data.ops import add as add_data

    objects, cache = _open(uri)
    store = _tracking(uri)
    if err_console.is_terminal and not as_json:
        result = _add_with_progress(objects, path, cache, store, project)
    else:
        result = add_data(objects, path, hash_cache=cache, store=store, project=project)
    p = result.pointer
    v = result.version
    if as_json:
        print_json(
            {
                "pointer": str(result.pointer_file),
                "path": p.path,
                "hash": p.hash,
                "size": p.size,
                "files": p.files,
                "type": p.type,
                "pointer_written": result.pointer_written,
                "gitignore_added": result.gitignore_added,
                "project": v.project if v else None,
                "artifact": v.spec if v else None,
            }
        )
        return
    verb = "wrote" if result.pointer_written else "unchanged"
    console.print(
        Text(
            f"{verb} {result.pointer_file}: {p.files} file{'s' * (p.files != 1)}, "
            f"{_fmt_bytes(p.size)}, hash {p.hash[:12]}"
        ),
        soft_wrap=True,
    )
    if v is not None:
        console.print(Text(f"dataset version {v.project}/{v.spec}"), soft_wrap=True)
    if result.gitignore_added:
        console.print(Text(f"added /{p.path} to {result.pointer_file.parent / '.gitignore'}"))
    console.print(Text(f"to track the version: git add {result.pointer_file} .gitignore"))


def _show(st: DataStatus) -> None:
    style = {"unchanged": "green", "modified": "yellow", "missing": "red"}[st.state]
    console.print(Text.assemble((f"{st.state:9}", style), " ", st.path), soft_wrap=True)
    if st.state == "modified":
        for mark, names in (("+", st.added), ("-", st.removed), ("M", st.modified)):
            for name in names:
                console.print(Text(f"    {mark} {name}"), soft_wrap=True)


@app.command("status")
def status(
    paths: list[str] | None = PathsArg,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Show whether the data matches its pointers: unchanged, modified or missing.

    Exits 0 either way; --json lists added, removed and modified files.
    """
    from mltrail.data.ops import status as data_status

    objects, cache = _open(uri)
    found = [data_status(objects, p, hash_cache=cache) for p in _pointers(paths)]
    if as_json:
        print_json([s.as_dict() for s in found])
        return
    if not found:
        console.print("no .mltrail pointers here: track data with mltrail data add PATH")
    for st in found:
        _show(st)


@app.command("checkout")
def checkout(
    paths: list[str] | None = PathsArg,
    mode: str = typer.Option(
        "auto",
        "--mode",
        help="How files are made: auto (reflink, else copy), reflink, hardlink (read-only "
        "files sharing the store's) or copy.",
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Make the data match its pointers (after git checkout, the data follows).

    Writes only files that differ and removes files the pointer does not list.
    """
    from mltrail.data.ops import checkout as data_checkout

    objects, cache = _open(uri)
    done = [data_checkout(objects, p, hash_cache=cache, mode=mode) for p in _pointers(paths)]
    if as_json:
        print_json([s.as_dict() for s in done])
        return
    if not done:
        console.print("no .mltrail pointers here: track data with mltrail data add PATH")
    for st in done:
        if st.state == "unchanged":
            console.print(Text(f"unchanged {st.path}"), soft_wrap=True)
            continue
        written = len(st.removed) + len(st.modified)
        console.print(
            Text(f"restored  {st.path}: {written} written, {len(st.added)} removed"),
            soft_wrap=True,
        )


@app.command("diff")
def diff(
    rev1: str = typer.Argument(..., help="First git revision (commit, branch or tag)."),
    rev2: str = typer.Argument(..., help="Second git revision."),
    paths: list[str] | None = PathsArg,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """List files added, removed and modified between two git revisions' pointers."""
    from mltrail.data.ops import diff_revisions

    objects, _ = _open(uri)
    result = diff_revisions(objects, rev1, rev2, paths or None)
    if as_json:
        print_json(result)
        return
    for d in result:
        if not d["changed"]:
            console.print(Text(f"{d['pointer']}: unchanged"), soft_wrap=True)
            continue
        counts = ", ".join(f"{len(d[k])} {k}" for k in ("added", "removed", "modified"))
        console.print(Text(f"{d['pointer']}: {counts}"), soft_wrap=True)
        for mark, key in (("+", "added"), ("-", "removed"), ("M", "modified")):
            for name in d[key]:
                console.print(Text(f"    {mark} {name}"), soft_wrap=True)


remote_app = typer.Typer(
    help="Name the stores data is pushed to and pulled from.", no_args_is_help=True
)
app.add_typer(remote_app, name="remote")
RemoteOpt = typer.Option(None, "--remote", "-r", help="Remote name [default: the default remote].")


def _toplevel() -> Path:
    from mltrail.data.versions import repo_root

    return repo_root(Path.cwd())


@remote_app.command("add")
def remote_add(
    name: str = typer.Argument(..., help="Remote name, e.g. origin."),
    url: str = typer.Argument(..., help="A folder (relative to the git toplevel) or s3://..."),
    default: bool = typer.Option(False, "--default", help="Make it the default remote."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Add or change a remote in .mltrail-remotes.yaml at the git toplevel (commit it)."""
    from mltrail.data.remotes import add_remote, list_remotes

    path = add_remote(_toplevel(), name, url, default=default)
    chosen, _ = list_remotes(_toplevel())
    if as_json:
        print_json({"file": str(path), "name": name, "url": url, "default": chosen})
        return
    console.print(Text(f"remote {name} -> {url} in {path} (default: {chosen})"), soft_wrap=True)


@remote_app.command("list")
def remote_list(as_json: bool = JsonOpt, uri: str = UriOpt) -> None:
    """List the remotes of .mltrail-remotes.yaml; * marks the default."""
    from mltrail.data.remotes import list_remotes

    chosen, remotes = list_remotes(_toplevel())
    if as_json:
        print_json({"default": chosen, "remotes": remotes})
        return
    if not remotes:
        console.print("no remotes: mltrail data remote add NAME PATH|s3://...")
    for name, url in sorted(remotes.items()):
        console.print(Text(f"{'*' if name == chosen else ' '} {name}  {url}"), soft_wrap=True)


class _Bar:
    """A Rich progress bar (bytes) on stderr for one pointer's transfer."""

    def __init__(self, label: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        self._progress = Progress(*columns, console=err_console, transient=True)
        self._label = label
        self._task: Any = None

    def __enter__(self) -> _Bar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def start(self, objects: int, nbytes: int) -> None:
        self._task = self._progress.add_task(f"{self._label} ({objects} objects)", total=nbytes)

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, nbytes)


def _transfer(
    uri: str | None,
    remote: str | None,
    paths: list[str] | None,
    verb: str,
    as_json: bool,
    *,
    jobs: int,
    verify: bool = False,
) -> None:
    """Push or fetch every pointer; ``pull`` also checks out."""
    from mltrail.config import local_dir, resolve_uri
    from mltrail.data import remotes as rem
    from mltrail.data.ops import checkout as data_checkout
    from mltrail.data.pointer import read_pointer
    from mltrail.data.versions import record_version

    objects, cache = _open(uri)
    url, other = rem.open_remote(_toplevel(), remote)
    index = rem.RemoteIndex(local_dir(resolve_uri(uri)), url)
    out = []
    for p in _pointers(paths):
        with _Bar(f"{verb} {p}") as bar:
            if verb == "push":
                t = rem.push(objects, other, index, p, jobs=jobs, verify=verify, progress=bar)
            else:
                t = rem.fetch(objects, other, index, p, jobs=jobs, progress=bar)
        if verb != "push":
            record_version(_tracking(uri), p, read_pointer(p))  # so gc keeps what came
        row = t.as_dict()
        if verb == "pull":
            row["state"] = data_checkout(objects, p, hash_cache=cache).state
        out.append(row)
    if as_json:
        print_json({"remote": url, "pointers": out})
        return
    for row in out:
        msg = f"{row['pointer']}: {row['transferred']} of {row['objects']} objects"
        msg += f" {'sent' if verb == 'push' else 'received'} ({_fmt_bytes(row['bytes'])})"
        console.print(Text(msg), soft_wrap=True)


JobsOpt = typer.Option(8, "--jobs", "-j", min=1, help="Objects transferred at once.")


@app.command("push")
def push(
    paths: list[str] | None = PathsArg,
    remote: str | None = RemoteOpt,
    jobs: int = JobsOpt,
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Ask the remote about every object instead of trusting the local index.",
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Copy the pointers' objects the remote lacks to it (the manifest last).

    A local index of what the remote holds makes pushing unchanged data again free;
    an interrupted push resumes where it stopped.
    """
    _transfer(uri, remote, paths, "push", as_json, jobs=jobs, verify=verify)


@app.command("fetch")
def fetch(
    paths: list[str] | None = PathsArg,
    remote: str | None = RemoteOpt,
    jobs: int = JobsOpt,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Copy the pointers' objects this store lacks from the remote (no checkout)."""
    _transfer(uri, remote, paths, "fetch", as_json, jobs=jobs)


@app.command("pull")
def pull(
    paths: list[str] | None = PathsArg,
    remote: str | None = RemoteOpt,
    jobs: int = JobsOpt,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Fetch the pointers' missing objects, then make the data match (data checkout)."""
    _transfer(uri, remote, paths, "pull", as_json, jobs=jobs)
