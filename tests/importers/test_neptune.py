"""neptune-exporter's Parquet layout (its documented schema), written with pyarrow."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mltrail
from mltrail.importers.neptune import import_neptune

SCHEMA = pa.schema([
    ("project_id", pa.string()), ("run_id", pa.string()), ("attribute_path", pa.string()),
    ("attribute_type", pa.string()), ("step", pa.decimal128(18, 6)),
    ("timestamp", pa.timestamp("ms", tz="UTC")), ("int_value", pa.int64()),
    ("float_value", pa.float64()), ("string_value", pa.string()), ("bool_value", pa.bool_()),
    ("datetime_value", pa.timestamp("ms", tz="UTC")),
    ("string_set_value", pa.list_(pa.string())),
    ("file_value", pa.struct([("path", pa.string())])),
    ("histogram_value", pa.struct([("type", pa.string()), ("edges", pa.list_(pa.float64())),
                                   ("values", pa.list_(pa.float64()))])),
])  # fmt: skip
T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def _row(path: str, kind: str, **values: Any) -> dict[str, Any]:
    return {"project_id": "acme/detection", "run_id": "DET-7", "attribute_path": path,
            "attribute_type": kind, **values}  # fmt: skip


@pytest.fixture(scope="session")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("neptune")
    data, files = root / "data", root / "files"
    rows = [
        _row("sys/custom_run_id", "string", string_value="det-baseline"),
        _row("sys/name", "string", string_value="detection-exp"),
        _row("sys/tags", "string_set", string_set_value=["yolo", "v1"]),
        _row("sys/description", "string", string_value="neptune notes"),
        _row("sys/creation_time", "datetime", datetime_value=T0),
        _row("sys/failed", "bool", bool_value=False),
        _row("parameters/lr", "float", float_value=0.001),
        _row("parameters/epochs", "int", int_value=10),
        _row("parameters/augment", "bool", bool_value=True),
        _row("config/backbone", "string", string_value="resnet"),
        *[_row("metrics/loss", "float_series", step=Decimal(i), float_value=1.0 / (i + 1),
               timestamp=T0) for i in range(12)],
        _row("metrics/odd", "float_series", step=Decimal("0.5"), float_value=1.0, timestamp=T0),
        _row("logs/stdout", "string_series", step=Decimal(0), string_value="hi", timestamp=T0),
        _row("files/config", "file", file_value={"path": "det-7/config.yaml"}),
    ]  # fmt: skip
    folder = data / "acme_detection_1a2b"
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table.slice(0, 10), folder / "DET-7_part_0.parquet", compression="snappy")
    pq.write_table(table.slice(10), folder / "DET-7_part_1.parquet", compression="snappy")
    (files / "acme_detection_1a2b" / "det-7").mkdir(parents=True)
    (files / "acme_detection_1a2b" / "det-7" / "config.yaml").write_text("lr: 0.001\n")
    return data, files


def test_import_neptune_export_once(
    client: mltrail.Client, export: tuple[Path, Path], tmp_path: Path
) -> None:
    data, files = export
    report = import_neptune(data, client, files_path=files)
    (item,) = report.imported
    assert item["project"] == "acme-detection" and item["metric_points"] == 12
    reasons = {s["source_id"].split(":")[-1]: s["reason"] for s in report.skipped}
    assert set(reasons) == {"metrics/odd", "logs/stdout"}
    (run,) = client.list_runs("acme-detection")
    assert run.name == "det-baseline" and run.group == "detection-exp"
    assert run.notes == "neptune notes" and {"yolo", "v1"} <= set(run.tags)
    assert run.started_at == T0.timestamp() and run.status == "finished"
    assert run.config == {"config/backbone": "resnet", "parameters/augment": True,
                          "parameters/epochs": 10, "parameters/lr": 0.001}  # fmt: skip
    assert len(client.metric_history(run.id, "metrics/loss")) == 12
    got = client.download_artifact(f"acme-detection/run-{run.id}", tmp_path / "f")
    assert (got / "files/config" / "config.yaml").read_text() == "lr: 0.001\n"
    assert import_neptune(data, client, files_path=files).imported == []
    again = import_neptune(data, client, step_multiplier=10)
    assert again.imported == [] and len(client.list_runs("acme-detection")) == 1
