"""``mltrail export``: every table in Parquet, CSV and JSON Lines, read back."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import mltrail
from mltrail.cli import app
from mltrail.export import SCHEMA, export_project


@pytest.fixture
def project(store_uri: str, tmp_path: Path) -> dict[str, str]:
    with mltrail.init(project="exp", uri=store_uri, name="a", config={"lr": 0.1, "opt": "adam",
                      "layers": [64, 32]}, tags={"team": "cv"}) as a:  # fmt: skip
        for step in range(5):
            a.log({"loss": 1.0 / (step + 1), "weird": math.nan if step == 2 else step}, step=step)
        (tmp_path / "m.txt").write_text("model")
        a.log_artifact(tmp_path / "m.txt", name="model-a", type="model", aliases=["best"])
    with mltrail.init(project="exp", uri=store_uri, name="b", parent=a) as b:
        b.log({"acc": 0.5})
    return {"a": a.id, "b": b.id}


def _read(path: Path) -> list[dict[str, object]]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()  # type: ignore[no-any-return]
    if path.suffix == ".csv":
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_export_writes_every_table(
    client: mltrail.Client, project: dict[str, str], tmp_path: Path, fmt: str
) -> None:
    report = export_project(client, "exp", tmp_path / "out", fmt=fmt)
    assert report.rows == {"runs": 2, "params": 3, "metrics": 3, "history": 11, "artifacts": 1}
    runs = {r["name"]: r for r in _read(report.files["runs"])}
    assert json.loads(str(runs["a"]["tags"])) == {"team": "cv"}
    assert runs["b"]["parent_id"] == project["a"]
    params = {r["key"]: r for r in _read(report.files["params"])}
    assert json.loads(str(params["layers"]["value"])) == [64, 32]
    assert params["lr"]["type"] == "float"
    history = [r for r in _read(report.files["history"]) if r["key"] == "loss"]
    assert [int(str(r["step"])) for r in history] == [0, 1, 2, 3, 4]
    weird = [r["value"] for r in _read(report.files["history"]) if r["key"] == "weird"]
    if fmt == "parquet":
        assert isinstance(weird[2], float) and math.isnan(weird[2])
    else:
        assert weird[2] == {"csv": "", "jsonl": "NaN"}[fmt]
    (art,) = _read(report.files["artifacts"])
    assert art["name"] == "model-a" and json.loads(str(art["aliases"])) == ["best", "latest"]
    schema = json.loads((tmp_path / "out" / "schema.json").read_text())
    assert [c["name"] for c in schema["tables"]["history"]["columns"]] == [
        n for n, _ in SCHEMA["history"]
    ]
    if fmt == "parquet":
        assert pq.read_schema(report.files["history"]).field("step").type == "int64"


def test_export_and_import_from_the_command_line(
    store_uri: str, project: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["export", "exp", "--format", "jsonl", "--out", str(tmp_path / "o"),
                              "--tracking-uri", store_uri, "--json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["rows"]["runs"] == 2
    missing = runner.invoke(app, ["export", "nope", "--out", str(tmp_path / "x"),
                                  "--tracking-uri", store_uri])  # fmt: skip
    assert missing.exit_code != 0

    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "tb" / "run1"))
    writer.add_scalar("loss", 0.5, 1)
    writer.close()
    argv = ["import", "tensorboard", str(tmp_path / "tb"), "--project", "tbp",
            "--tracking-uri", store_uri]  # fmt: skip
    first = runner.invoke(app, argv)
    assert first.exit_code == 0, first.output
    assert "imported 1 runs" in first.stdout and "run1" in first.stdout
    second = runner.invoke(app, [*argv, "--json"])
    assert json.loads(second.stdout)["imported"] == []
    assert "already imported" in json.loads(second.stdout)["skipped"][0]["reason"]
