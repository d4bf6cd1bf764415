"""``mltrail artifacts ...``, ``mltrail artifacts cache prune`` and ``mltrail gc``."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from mltrail.cli._common import fmt_time
from mltrail.cli.artifacts import Transfer, fmt_bytes
from mltrail.config import objects_uri
from mltrail.objects import open_object_store
from tests.cli.conftest import Invoke, RunMain
from tests.cli.helpers import field, header, loads, ok, rows


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def _put(cli: Invoke, path: Path, *args: str) -> dict[str, object]:
    data: dict[str, object] = loads(ok(cli("artifacts", "put", str(path), *args, "--json")))
    return data


def test_put_ls_show_get_round_trip(cli: Invoke, tmp_path: Path) -> None:
    model = _tree(tmp_path / "model", {"weights.bin": "w" * 2000, "cfg/config.json": "{}"})
    meta = ["--metadata", "acc=0.93", "-m", "arch=resnet50", "-m", "layers=[1, 2]", "-m", "x=NaN"]
    v0 = _put(
        cli, model, "--name", "resnet", "--type", "model", "-p", "vision", "-a", "best", *meta
    )
    assert {k: v0[k] for k in ("spec", "project", "type", "size", "file_count", "created")} == {
        "spec": "resnet:v0", "project": "vision", "type": "model", "size": 2002,
        "file_count": 2, "created": True,
    }  # fmt: skip
    assert v0["metadata"] == {"acc": 0.93, "arch": "resnet50", "layers": [1, 2], "x": "NaN"}
    assert v0["aliases"] == ["best", "latest"] and v0["run_id"] is None
    again = _put(cli, model, "--name", "resnet", "--type", "model", "-p", "vision")
    assert (again["spec"], again["created"], again["digest"]) == ("resnet:v0", False, v0["digest"])
    (model / "weights.bin").write_text("W" * 3000)
    out = ok(cli("artifacts", "put", str(model), "-n", "resnet", "-t", "model", "-p", "vision"))
    assert out.splitlines() == ["stored resnet:v1 in project vision (2 files, 2.9 KiB)",
                                "aliases: latest"]  # fmt: skip
    out = ok(cli("artifacts", "put", str(model), "-n", "resnet", "-t", "model", "-p", "vision"))
    assert out.startswith("unchanged: the files equal resnet:v1 in project vision")

    (listed,) = loads(ok(cli("artifacts", "ls", "--json")))
    assert (listed["spec"], listed["aliases"], listed["size"]) == ("resnet:v1", ["latest"], 3002)
    out = ok(cli("artifacts", "ls"))
    assert header(out) == [
        "name", "project", "type", "latest", "aliases", "size", "files", "created"
    ]  # fmt: skip
    assert rows(out) == [
        ["resnet", "vision", "model", "v1", "-", "2.9 KiB", "2", fmt_time(listed["created_at"])]
    ]
    out = ok(cli("artifacts", "ls", "--project", "vision", "--type", "model"))
    assert header(out)[:2] == ["name", "type"]
    assert rows(out)[0][:3] == ["resnet", "model", "v1"]
    assert ok(cli("artifacts", "ls", "--type", "dataset")).strip() == "no artifacts match"
    assert loads(ok(cli("artifacts", "ls", "--project", "nlp", "--json"))) == []

    shown = loads(ok(cli("artifacts", "show", "vision/resnet:best", "--json")))
    assert (shown["spec"], shown["project"], shown["aliases"]) == ("resnet:v0", "vision", ["best"])
    assert [(f["path"], f["size"]) for f in shown["files"]] == [
        ("cfg/config.json", 2), ("weights.bin", 2000)
    ]  # fmt: skip
    assert [v["spec"] for v in shown["versions"]] == ["resnet:v0", "resnet:v1"]
    out = ok(cli("artifacts", "show", "resnet:v0", "--project", "vision"))
    for name, value in [("name", "resnet"), ("project", "vision"), ("version", "v0"),
                        ("type", "model"), ("aliases", "best"), ("files", "2"),
                        ("size", "2.0 KiB (2002 bytes)"), ("run", "- (logged without a run)"),
                        ("digest", str(v0["digest"]))]:  # fmt: skip
        assert field(out, name) == value
    table = rows(out)
    assert ["acc", "0.93"] in table and ["layers", "[1, 2]"] in table
    assert ["v1", "latest", "2.9 KiB", "2", fmt_time(listed["created_at"]), "-"] in table
    assert [r[:2] for r in table if r[0].endswith((".json", ".bin"))] == [
        ["cfg/config.json", "2 B"], ["weights.bin", "2.0 KiB"]
    ]  # fmt: skip
    out = ok(cli("artifacts", "show", "vision/resnet", "--max-files", "1"))
    assert "... and 1 more files (--max-files 0 lists all)" in out

    dest = tmp_path / "out"
    out = ok(cli("artifacts", "get", "resnet:v0", "-p", "vision", "--dest", str(dest)))
    assert out == f"{dest}\n"
    assert _files(dest) == {"weights.bin": "w" * 2000, "cfg/config.json": "{}"}
    cached = Path(ok(cli("artifacts", "get", "vision/resnet")).strip())
    assert cached.is_relative_to(tmp_path / "cache")
    assert _files(cached) == {"weights.bin": "W" * 3000, "cfg/config.json": "{}"}
    got = loads(ok(cli("artifacts", "get", "vision/resnet:latest", "--json")))
    assert (got["path"], got["spec"]) == (str(cached), "resnet:v1")


def test_put_defaults_and_metadata_of_an_unchanged_version(
    cli: Invoke, run_main: RunMain, store_uri: str, tmp_path: Path
) -> None:
    f = tmp_path / "labels.txt"
    f.write_text("cat\ndog\n")
    v = _put(cli, f)
    assert (v["spec"], v["project"], v["type"], v["file_count"]) == (
        "labels.txt:v0",
        "default",
        "file",
        1,
    )
    code, out, err = run_main("artifacts", "put", str(f), "-m", "k=1", "--tracking-uri", store_uri)
    assert code == 0 and out.startswith("unchanged")
    assert "note: the files equal labels.txt:v0, which keeps its own metadata" in err


def test_stored_text_is_shown_as_is_never_as_markup(cli: Invoke, tmp_path: Path) -> None:
    data = _tree(tmp_path / "d", {"[bold]x[/bold].txt": "1"})
    _put(cli, data, "-n", "ds", "-m", "note=[red]hi[/red] :smile:")
    ok(cli("artifacts", "alias", "ds", "best", "v0", "--reason", "[blink]why[/]"))
    out = ok(cli("artifacts", "show", "ds"))
    assert ["note", "[red]hi[/red] :smile:"] in rows(out)
    assert any(r[0] == "[bold]x[/bold].txt" for r in rows(out))
    assert rows(ok(cli("artifacts", "alias-history", "ds")))[0][-1] == "[blink]why[/]"


def test_diff(cli: Invoke, tmp_path: Path) -> None:
    data = _tree(tmp_path / "d", {"a": "1", "b": "2", "c/c": "3"})
    _put(cli, data, "-n", "ds", "-p", "p")
    (data / "b").write_text("changed")
    (data / "c" / "c").unlink()
    (data / "d").write_text("4")
    _put(cli, data, "-n", "ds", "-p", "p")
    got = loads(ok(cli("artifacts", "diff", "ds:v0", "ds", "-p", "p", "--json")))
    assert got == {"a": "p/ds:v0", "b": "p/ds:v1", "added": ["d"], "removed": ["c/c"],
                   "modified": ["b"]}  # fmt: skip
    out = ok(cli("artifacts", "diff", "p/ds:v0", "p/ds:v1"))
    assert out.splitlines() == [
        "p/ds:v0 -> p/ds:v1", "+ d", "- c/c", "~ b", "1 added, 1 removed, 1 modified"
    ]  # fmt: skip
    back = loads(ok(cli("artifacts", "diff", "p/ds:v1", "p/ds:v0", "--json")))
    assert (back["added"], back["removed"]) == (["c/c"], ["d"])
    out = ok(cli("artifacts", "diff", "p/ds:v1", "p/ds:latest"))
    assert out.strip() == "no differences between p/ds:v1 and p/ds:v1"


def test_alias_and_alias_history(
    cli: Invoke, run_main: RunMain, store_uri: str, tmp_path: Path
) -> None:
    data = _tree(tmp_path / "d", {"a": "1"})
    _put(cli, data, "-n", "ds")
    (data / "a").write_text("2")
    _put(cli, data, "-n", "ds")
    assert ok(cli("artifacts", "alias", "ds", "best", "0")).strip() == "ds:best: new -> v0"
    out = ok(cli("artifacts", "alias", "ds", "best", "v1", "--reason", "better val loss"))
    assert out.strip() == "ds:best: v0 -> v1"
    moved = loads(ok(cli("artifacts", "alias", "ds", "best", "v1", "--json")))
    assert moved == {"name": "ds", "alias": "best", "from_version": 1, "to_version": 1,
                     "moved": False}  # fmt: skip
    assert ok(cli("artifacts", "alias", "ds", "best", "1")).strip() == (
        "ds:best already points at v1"
    )
    history = loads(ok(cli("artifacts", "alias-history", "ds", "--json")))
    assert [(e["alias"], e["from_version"], e["to_version"], e["reason"]) for e in history] == [
        ("best", None, 0, None), ("best", 0, 1, "better val loss")
    ]  # fmt: skip
    assert all(e["at"] <= time.time() for e in history)
    out = ok(cli("artifacts", "alias-history", "ds"))
    assert header(out) == ["when", "alias", "from", "to", "by", "reason"]
    assert [r[1:4] + r[5:] for r in rows(out)] == [
        ["best", "-", "v0", "-"], ["best", "v0", "v1", "better val loss"]
    ]  # fmt: skip
    assert loads(ok(cli("artifacts", "show", "ds:best", "--json")))["spec"] == "ds:v1"
    for argv, code, message in [
        (("ds", "latest", "v0"), 2, "reserved"),
        (("ds", "v0", "v1"), 2, "reserved"),
        (("ds", "best", "three"), 2, "is not a number"),
        (("ds:v1", "best", "0"), 2, "give the name alone"),
        (("ds", "best", "v9"), 4, "no version"),
    ]:
        got, _, err = run_main("artifacts", "alias", *argv, "--tracking-uri", store_uri)
        assert (got, message in " ".join(err.split())) == (code, True), err
    _put(cli, tmp_path / "d", "-n", "other")
    assert ok(cli("artifacts", "alias-history", "other")).strip() == (
        "no alias of other has moved yet"
    )


def test_cache_prune(cli: Invoke, run_main: RunMain, store_uri: str, tmp_path: Path) -> None:
    data = _tree(tmp_path / "d", {"a": "x" * 1000})
    _put(cli, data, "-n", "ds")
    (data / "a").write_text("y" * 3000)
    _put(cli, data, "-n", "ds")
    for spec in ("ds:v0", "ds:v1"):
        assert Path(ok(cli("artifacts", "get", spec)).strip()).is_dir()
    cache = tmp_path / "cache"
    assert ok(cli("artifacts", "cache", "prune", "--max-bytes", "1M")).strip() == (
        f"removed 0 cached versions, freed 0 B ({cache})"
    )
    got = loads(ok(cli("artifacts", "cache", "prune", "--max-bytes", "0", "--json")))
    assert got == {"removed": 2, "bytes_freed": 4000, "cache_dir": str(cache)}
    assert [p for p in cache.iterdir() if not p.name.startswith(".")] == []
    assert Path(ok(cli("artifacts", "get", "ds:v0")).strip()).is_dir()  # downloads again
    out = ok(cli("artifacts", "cache", "prune", "--max-bytes", "0.5k"))
    assert out.strip() == f"removed 1 cached version, freed 1000 B ({cache})"
    code, _, err = run_main("artifacts", "cache", "prune", "--max-bytes", "lots")
    assert code == 2 and "'lots' is not a size" in err


def test_gc_dry_run_then_yes(cli: Invoke, store_uri: str, tmp_path: Path) -> None:
    data = _tree(tmp_path / "d", {"a": "1", "b": "2"})
    _put(cli, data, "-n", "ds")
    objects = open_object_store(objects_uri(store_uri))
    orphan = objects.put_bytes(b"orphan" * 100).oid
    out = ok(cli("gc"))
    assert out.splitlines() == [
        f"4 objects in {objects_uri(store_uri)}: 3 referenced, 1 younger than 1h00m kept",
        "nothing to delete",
    ]
    dry = loads(ok(cli("gc", "--grace", "0", "--json")))
    assert dry == {"objects": objects_uri(store_uri), "dry_run": True, "scanned": 4,
                   "referenced": 3, "recent": 0, "garbage": [orphan], "garbage_bytes": 600,
                   "deleted": [], "stale_uploads": []}  # fmt: skip
    out = ok(cli("gc", "--grace", "0"))
    assert out.splitlines()[1:] == [
        "would delete 1 unreferenced object (600 B):", f"  {orphan}",
        "run again with --yes to delete them",
    ]  # fmt: skip
    assert objects.exists(orphan)
    done = loads(ok(cli("gc", "--grace", "0", "--yes", "--json")))
    assert (done["dry_run"], done["deleted"]) == (False, [orphan])
    assert not objects.exists(orphan)
    assert "nothing to delete" in ok(cli("gc", "--grace", "0", "--yes"))
    dest = tmp_path / "out"
    ok(cli("artifacts", "get", "ds", "--dest", str(dest)))
    assert _files(dest) == {"a": "1", "b": "2"}


def test_bad_names_and_paths_are_usage_errors(
    cli: Invoke, run_main: RunMain, store_uri: str, tmp_path: Path
) -> None:
    data = _tree(tmp_path / "d", {"a": "1"})
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    escaping = _tree(tmp_path / "esc", {"ok.txt": "1"})
    (escaping / "link.txt").symlink_to(outside)
    for argv, message in [
        (("artifacts", "put", str(data), "--name", "../evil"), "artifact name '../evil' is not"),
        (("artifacts", "put", str(data), "--name", "a/b"), "is not valid"),
        (("artifacts", "put", str(data), "-n", "ok", "--alias", "../x"), "alias '../x' is not"),
        (("artifacts", "put", str(data), "-n", "ok", "--type", "../t"), "artifact type"),
        (("artifacts", "put", str(escaping), "-n", "ok"), "outside the artifact folder"),
        (("artifacts", "put", str(tmp_path / "missing"), "-n", "ok"), "does not exist"),
        (("artifacts", "put", str(data), "-n", "ok", "-m", "novalue"), "is not KEY=VALUE"),
        (("artifacts", "show", "../evil"), "project '..' in '../evil' is not valid"),
        (("artifacts", "show", "/evil"), "project '' in '/evil' is not valid"),
        (("artifacts", "get", "ds:../x"), "alias '../x'"),
        (("artifacts", "get", "ds\x00"), "is not valid"),
        (("artifacts", "diff", "../evil:v0", "ds:v0"), "is not valid"),
        (("artifacts", "alias-history", "../evil"), "is not valid"),
        (("artifacts", "alias", "../evil", "best", "0"), "is not valid"),
        (("artifacts", "show", "a/ds", "--project", "b"), "names project 'a' but --project"),
        (("lineage", "../evil:v0"), "is not valid"),
    ]:
        code, _, err = run_main(*argv, "--tracking-uri", store_uri)
        assert (code, message in " ".join(err.split())) == (2, True), (argv, err)
        assert "Traceback" not in err
    assert loads(ok(cli("artifacts", "ls", "--json"))) == []


@pytest.mark.parametrize(
    "argv",
    [
        ("artifacts", "show", "nope"),
        ("artifacts", "show", "ds:v7"),
        ("artifacts", "show", "ds:missing-alias"),
        ("artifacts", "show", "ds", "--project", "elsewhere"),
        ("artifacts", "get", "nope:v0"),
        ("artifacts", "diff", "ds:v0", "nope"),
        ("artifacts", "alias", "nope", "best", "0"),
        ("artifacts", "alias-history", "nope"),
        ("lineage", "nope:v0"),
        ("lineage", "nope"),
    ],
    ids=" ".join,
)
def test_unknown_artifact_exits_4(
    argv: tuple[str, ...], cli: Invoke, run_main: RunMain, store_uri: str, tmp_path: Path
) -> None:
    _put(cli, _tree(tmp_path / "d", {"a": "1"}), "-n", "ds")
    code, out, err = run_main(*argv, "--tracking-uri", store_uri)
    assert (code, out) == (4, "")
    assert err.startswith("error: ") and "no " in err and "Traceback" not in err


def test_fmt_bytes() -> None:
    assert [fmt_bytes(n) for n in (0, 1023, 1024, 1536, 5 * 2**30, 3 * 2**50)] == [
        "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 GiB", "3072.0 TiB"
    ]  # fmt: skip


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_transfer_bar_shows_on_a_terminal_only_after_the_delay() -> None:
    term = io.StringIO()
    console = Console(file=term, force_terminal=True, width=100)
    with Transfer("downloading ds:v0", 2048, console=console, delay=0.0) as bar:
        bar.advance(1024)
        _wait_for(lambda: "downloading ds:v0" in term.getvalue())
    assert "1.0/2.0 KiB" in term.getvalue()
    quick = io.StringIO()
    with Transfer("x", 10, console=Console(file=quick, force_terminal=True), delay=60) as bar:
        bar.advance(10)
    assert quick.getvalue() == ""
    piped = io.StringIO()
    with Transfer("x", 10, console=Console(file=piped, force_terminal=False), delay=0) as bar:
        time.sleep(0.1)
        bar.advance(10)
    assert piped.getvalue() == ""
