"""MLflow: data written by the real mlflow client (file store and SQLite), imported twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import mltrail
from mltrail.importers.mlflow import import_mlflow
from tests.importers.helpers import run_python, shared_folder
from tests.server.conftest import serve

__all__ = ["serve"]

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

# Written in a subprocess: MLflow's fluent API keeps global state (active run, URIs).
WRITE = r"""
import sys, mlflow
from mlflow import MlflowClient
uri = sys.argv[1]
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
mlflow.set_experiment("churn/v2")
with mlflow.start_run(run_name="parent") as parent:
    mlflow.log_params({"lr": "0.01", "depth": 3, "use_bn": True, "optimizer": "adam"})
    for step in range(50):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.set_tags({"team": "growth", "mlflow.note.content": "baseline notes"})
    open("weights.bin", "wb").write(b"\x00" * 64)
    mlflow.log_artifact("weights.bin", artifact_path="model")
    with mlflow.start_run(run_name="child", nested=True):
        mlflow.log_metric("acc", 0.5, step=0)
with mlflow.start_run(run_name="broken"):
    mlflow.log_metric("loss", 3.0)
    mlflow.end_run(status="FAILED")
client = MlflowClient()
client.create_registered_model("churn-model", description="predicts churn")
for _ in range(2):
    mv = client.create_model_version("churn-model", f"runs:/{parent.info.run_id}/model",
                                     run_id=parent.info.run_id)
client.set_registered_model_alias("churn-model", "champion", "2")
print(parent.info.run_id)
"""


def _write(uri: str, cwd: Path) -> str:
    out = run_python(WRITE, uri, cwd=cwd, MLFLOW_ALLOW_FILE_STORE="true")
    return out.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def mlruns(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder, run_id = shared_folder(
        tmp_path_factory, "mlflow-file", lambda f: _write((f / "mlruns").as_uri(), f)
    )
    return folder / "mlruns", run_id


@pytest.fixture(scope="session")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder, run_id = shared_folder(
        tmp_path_factory, "mlflow-sqlite", lambda f: _write(f"sqlite:///{f / 'mlflow.db'}", f)
    )
    return folder / "mlflow.db", run_id


def test_import_mlruns_folder_everything_once(
    client: mltrail.Client, mlruns: tuple[Path, str], tmp_path: Path
) -> None:
    folder, parent_id = mlruns
    report = import_mlflow(str(folder), client)
    assert {i["kind"] for i in report.imported} == {"run", "model_version"}
    assert len([i for i in report.imported if i["kind"] == "run"]) == 3
    assert report.skipped == []
    runs = {r.name: r for r in client.list_runs("churn-v2")}
    parent, child, broken = runs["parent"], runs["child"], runs["broken"]
    assert parent.config == {"depth": 3, "lr": 0.01, "optimizer": "adam", "use_bn": True}
    assert parent.tags["team"] == "growth" and parent.notes == "baseline notes"
    assert parent.tags["mltrail.import.mlflow"] == parent_id
    assert child.parent_id == parent.id and broken.status == "failed"
    assert parent.status == "finished" and parent.ended_at is not None
    history = client.metric_history(parent.id, "loss")
    assert [p.step for p in history] == list(range(50)) and history[-1].value == 1 / 50
    files = client.download_artifact(f"churn-v2/run-{parent.id}", tmp_path / "a")
    assert (files / "model" / "weights.bin").read_bytes() == b"\x00" * 64
    versions = client.model_versions("churn-model")
    assert [v.version for v in versions] == [1, 2]
    assert client.get_model_version("churn-model@champion").version == 2
    assert client.get_model_version("churn-model@1").metadata["mlflow_version"] == 1
    assert client.get_model("churn-model").description == "predicts churn"

    again = import_mlflow(str(folder), client)
    assert again.imported == []
    assert {s["kind"] for s in again.skipped} == {"run", "model_version"}
    assert all("already imported" in s["reason"] for s in again.skipped)
    assert len(client.list_runs("churn-v2")) == 3 and len(client.model_versions("churn-model")) == 2
    assert len(client.metric_history(parent.id, "loss")) == 50


def test_import_sqlite_store_into_one_project(
    client: mltrail.Client, mlflow_db: tuple[Path, str]
) -> None:
    path, parent_id = mlflow_db
    report = import_mlflow(str(path), client, project="legacy")
    assert len([i for i in report.imported if i["kind"] == "run"]) == 3
    (parent,) = [r for r in client.list_runs("legacy") if r.name == "parent"]
    assert parent.tags["mltrail.import.mlflow"] == parent_id
    assert client.metric_summaries(parent.id)["loss"].count == 50


def test_import_from_a_tracking_server_url(serve: Callable[..., str], tmp_path: Path) -> None:
    """The URL path: a real server speaking MLflow's REST API (mltrail's own, #8), written
    to by the real mlflow client, read back by the importer through MlflowClient."""
    url = serve(f"sqlite:///{tmp_path / 'server' / 'mltrail.db'}")
    parent_id = _write(url, tmp_path)
    dest = mltrail.Client(f"sqlite:///{tmp_path / 'dest' / 'mltrail.db'}")
    report = import_mlflow(url, dest, project="from-server")
    assert len([i for i in report.imported if i["kind"] == "run"]) == 3, report.skipped
    (parent,) = [r for r in dest.list_runs("from-server") if r.name == "parent"]
    assert parent.tags["mltrail.import.mlflow"] == parent_id
    assert [p.step for p in dest.metric_history(parent.id, "loss")] == list(range(50))
    files = dest.download_artifact(f"from-server/run-{parent.id}", tmp_path / "a")
    assert (files / "model" / "weights.bin").read_bytes() == b"\x00" * 64
    versions = [i for i in report.imported if i["kind"] == "model_version"]
    assert len(versions) == 2 and dest.get_model_version("churn-model@champion").version == 2
    assert import_mlflow(url, dest, project="from-server").imported == []
