"""``mltrail lineage``: the graph of runs and artifact versions, as a tree, DOT and JSON."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mltrail.entities import LineageNode
from tests.cli.conftest import Invoke, MakeRun, RunMain
from tests.cli.helpers import loads, ok


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def pipeline(make_run: MakeRun, tmp_path: Path) -> dict[str, str]:
    """prep -> dataset:v0 [golden] -> train -> clf:v0; the run ids by name."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.csv").write_text("1,2\n")
    prep = make_run(name="prep")
    prep.log_artifact(raw, name="dataset", type="dataset", aliases=["golden"])
    prep.finish()
    train = make_run(name="train")
    train.use_artifact("dataset:golden")
    model = tmp_path / "model.pt"
    model.write_text("weights")
    train.log_artifact(model, name="clf", type="model")
    train.finish()
    return {"prep": prep.id, "train": train.id}


def _lines(output: str) -> list[str]:
    return [line.rstrip() for line in output.splitlines()]


def test_tree_up_and_down(cli: Invoke, pipeline: dict[str, str]) -> None:
    prep, train = pipeline["prep"], pipeline["train"]
    assert _lines(ok(cli("lineage", "clf:v0"))) == [
        "model clf:v0 [latest]",
        f"└── run train ({train}, finished)",
        "    └── dataset dataset:v0 [golden, latest]",
        f"        └── run prep ({prep}, finished)",
    ]
    out = ok(cli("lineage", "test/dataset:golden", "--direction", "down"))
    assert _lines(out) == [
        "dataset dataset:v0 [golden, latest]",
        f"└── run train ({train}, finished)",
        "    └── model clf:v0 [latest]",
    ]
    assert _lines(ok(cli("lineage", "clf", "--depth", "1", "-p", "test"))) == [
        "model clf:v0 [latest]",
        f"└── run train ({train}, finished)",
    ]
    assert _lines(ok(cli("lineage", "clf:latest", "--depth", "0"))) == ["model clf:v0 [latest]"]
    assert _lines(ok(cli("lineage", train))) == [
        f"run train ({train}, finished)",
        "└── dataset dataset:v0 [golden, latest]",
        f"    └── run prep ({prep}, finished)",
    ]
    assert _lines(ok(cli("lineage", prep, "-d", "down"))) == [
        f"run prep ({prep}, finished)",
        "└── dataset dataset:v0 [golden, latest]",
        f"    └── run train ({train}, finished)",
        "        └── model clf:v0 [latest]",
    ]


def _shape(node: dict[str, Any]) -> tuple[str, str, list[Any]]:
    return node["kind"], node["id"], [_shape(c) for c in node["children"]]


def test_json(cli: Invoke, pipeline: dict[str, str]) -> None:
    prep, train = pipeline["prep"], pipeline["train"]
    got = loads(ok(cli("lineage", "clf:v0", "--format", "json")))
    assert _shape(got) == (
        "artifact", "clf:v0",
        [("run", train, [("artifact", "dataset:v0", [("run", prep, [])])])],
    )  # fmt: skip
    assert got["label"] == "model clf:v0 [latest]"
    assert got["children"][0]["label"] == f"run train ({train}, finished)"
    assert loads(ok(cli("lineage", "clf:v0", "--json"))) == got
    assert loads(ok(cli("lineage", "clf:v0", "--json", "-f", "json"))) == got


def _dot_edges(dot: str) -> set[tuple[str, str]]:
    return set(re.findall(r'^  "([^"]+)" -> "([^"]+)";$', dot, re.MULTILINE))


def test_dot(cli: Invoke, pipeline: dict[str, str]) -> None:
    prep, train = pipeline["prep"], pipeline["train"]
    up = ok(cli("lineage", "clf:v0", "--format", "dot"))
    assert up.startswith("digraph lineage {\n") and up.endswith("}\n")
    flow = {(prep, "dataset:v0"), ("dataset:v0", train), (train, "clf:v0")}
    assert _dot_edges(up) == flow  # edges follow the data whichever way it was walked
    assert _dot_edges(ok(cli("lineage", prep, "--direction", "down", "-f", "dot"))) == flow
    assert f'  "{train}" [label="run train ({train}, finished)", shape=box];' in up
    assert '  "clf:v0" [label="model clf:v0 [latest]", shape=ellipse, penwidth=2];' in up
    assert '  "dataset:v0" [label="dataset dataset:v0 [golden, latest]", shape=ellipse];' in up
    assert len(up.splitlines()) == 3 + 4 + 3 + 1  # header, 4 nodes, 3 edges, "}"


def test_dot_quotes_labels() -> None:
    from mltrail.cli.lineage import to_dot

    node = LineageNode("run", 'a"b', 'say "hi" \\ [x]\nbye')
    assert '"a\\"b" [label="say \\"hi\\" \\\\ [x]\\nbye", shape=box' in to_dot(node, "up")


def test_a_lone_artifact_and_a_run_without_edges(
    cli: Invoke, make_run: MakeRun, tmp_path: Path
) -> None:
    run = make_run(name="idle")
    run.finish()
    assert _lines(ok(cli("lineage", run.id))) == [f"run idle ({run.id}, finished)"]
    (tmp_path / "f.txt").write_text("x")
    ok(cli("artifacts", "put", str(tmp_path / "f.txt"), "-n", "solo", "-p", "test"))
    assert _lines(ok(cli("lineage", "solo:v0", "-d", "down"))) == ["file solo:v0 [latest]"]


def test_bad_options(
    cli: Invoke, run_main: RunMain, store_uri: str, pipeline: dict[str, str]
) -> None:
    for argv, message in [
        (("clf:v0", "--format", "svg"), "'svg' is not one of"),
        (("clf:v0", "--direction", "sideways"), "'sideways' is not one"),
        (("clf:v0", "--depth", "-1"), "'--depth'"),
        (("clf:v0", "--json", "--format", "dot"), "--json conflicts with --format dot"),
        (("../clf:v0",), "project '..' in '../clf:v0' is not valid"),
        (("clf:v0/x",), "is not valid"),
    ]:
        code, out, err = run_main("lineage", *argv, "--tracking-uri", store_uri)
        assert (code, out, message in " ".join(err.split())) == (2, "", True), (argv, err)
    code, _, err = run_main("lineage", "clf:v3", "--tracking-uri", store_uri)
    assert code == 4 and "has no version 3" in err
