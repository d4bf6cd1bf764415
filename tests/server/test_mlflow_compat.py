"""MLflow's own client against a real mltrail server (SQLite and PostgreSQL).

Unchanged MLflow code (``mlflow.set_tracking_uri(server)``, runs, params, metrics,
artifacts through the proxy, search, the model registry) works, and what it logged is
ours: the same runs, params and metric histories through ``mltrail.Client`` and
``mltrail runs ls``, its files in our object store, its model versions in our registry.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import mlflow  # the mlflow-client extra (in dev): missing, the tests fail, never skip
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

import mltrail

pytestmark = [
    # MLflow deprecates its stages (we support them): exactly those warnings
    pytest.mark.filterwarnings(
        r"ignore:.*transition_model_version_stage.*is deprecated:FutureWarning"
    ),
    pytest.mark.filterwarnings(r"ignore:.*get_latest_versions.*is deprecated:FutureWarning"),
]

EXPERIMENT = "digits-mlflow"
MODEL = "digits-classifier"


@pytest.fixture
def tracking(server_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """MLflow's client pointed at the server, its local state in tmp."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server_url)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    mlflow.set_tracking_uri(server_url)
    mlflow.set_registry_uri(server_url)
    yield server_url
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def _log_three_runs() -> tuple[str, list[str]]:
    exp_id = mlflow.set_experiment(EXPERIMENT).experiment_id
    ids = []
    for i, lr in enumerate([0.1, 0.01, 0.001]):
        with mlflow.start_run(run_name=f"lr-{i}") as run:
            mlflow.log_param("lr", lr)
            mlflow.log_params({"optimizer": "adam", "epochs": 5})
            for step in range(5):
                mlflow.log_metric("loss", 1.0 / (step + 1) + lr, step=step)
            mlflow.log_metrics({"acc": 0.5 + i * 0.1, "f1": float(i)}, step=4)
            mlflow.set_tag("team", "cv")
            ids.append(run.info.run_id)
    return exp_id, ids


def test_mlflow_client_tracks_runs_that_mltrail_sees(tracking: str, store_uri: str) -> None:
    exp_id, ids = _log_three_runs()
    assert exp_id.isdigit() and exp_id != "0"
    client = MlflowClient()

    # search with MLflow's filter syntax, order_by, and pages
    frame = mlflow.search_runs(
        experiment_ids=[exp_id],
        filter_string="params.optimizer = 'adam' and metrics.acc > 0.55",
        order_by=["metrics.acc DESC"],
    )
    assert list(frame["run_id"]) == [ids[2], ids[1]]
    assert list(frame["params.lr"]) == ["0.001", "0.01"]
    first = client.search_runs(
        [exp_id], "tags.team = 'cv' and attributes.status = 'FINISHED'",
        order_by=["params.lr ASC"], max_results=2,
    )  # fmt: skip
    assert [r.info.run_id for r in first] == [ids[2], ids[1]]
    assert first.token
    rest = client.search_runs([exp_id], "tags.team = 'cv'", order_by=["params.lr ASC"],
                              max_results=2, page_token=first.token)  # fmt: skip
    assert [r.info.run_id for r in rest] == [ids[0]] and not rest.token
    named = client.search_runs([exp_id], "attributes.run_name = 'lr-1'")
    assert [r.info.run_id for r in named] == [ids[1]]

    run = client.get_run(ids[0])
    assert run.info.run_name == "lr-0" and run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1", "optimizer": "adam", "epochs": "5"}
    assert run.data.metrics["loss"] == pytest.approx(0.2 + 0.1)
    assert run.data.tags["team"] == "cv" and run.data.tags["mlflow.runName"] == "lr-0"
    history = client.get_metric_history(ids[0], "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert [m.value for m in history] == pytest.approx([1 / (s + 1) + 0.1 for s in range(5)])
    assert all(m.timestamp > 1e12 for m in history)  # milliseconds, as MLflow's

    # the same runs in our client ...
    ours = mltrail.Client(store_uri)
    found = ours.search_runs(EXPERIMENT, "params.optimizer = 'adam'", order_by=["metrics.acc desc"])
    assert [r.id for r in found] == [ids[2], ids[1], ids[0]]
    assert [r.name for r in found] == ["lr-2", "lr-1", "lr-0"]
    assert found[0].status == "finished" and found[0].config["lr"] == "0.001"
    assert found[0].summary["acc"] == pytest.approx(0.7)
    points = ours.metric_history(ids[0], "loss")
    assert [(p.step, round(p.value, 6)) for p in points] == [
        (s, round(1 / (s + 1) + 0.1, 6)) for s in range(5)
    ]
    assert points[0].timestamp == pytest.approx(history[0].timestamp / 1000, abs=0.001)
    # ... and our CLI
    out = subprocess.run(
        [sys.executable, "-m", "mltrail", "runs", "ls", "--project", EXPERIMENT,
         "--where", "metrics.acc >= 0.6", "--json", "--tracking-uri", store_uri],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    listed = json.loads(out.stdout)
    assert sorted(r["id"] for r in listed) == sorted(ids[1:])


def test_mlflow_artifacts_go_through_the_proxy(
    tracking: str, store_uri: str, tmp_path: Path
) -> None:
    mlflow.set_experiment(EXPERIMENT)
    report = tmp_path / "notes.txt"
    report.write_text("accuracy went up\n")
    model_dir = tmp_path / "model"
    (model_dir / "data").mkdir(parents=True)
    (model_dir / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
    (model_dir / "data" / "weights.bin").write_bytes(bytes(range(256)) * 64)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(report), artifact_path="reports")
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")

    client = MlflowClient()
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id)] == [
        ("model", True),
        ("reports", True),
    ]
    files = client.list_artifacts(run_id, "model/data")
    assert [(f.path, f.file_size) for f in files] == [("model/data/weights.bin", 256 * 64)]
    got = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="reports/notes.txt", dst_path=str(tmp_path / "dl")
    )
    assert Path(got).read_text() == "accuracy went up\n"
    folder = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="model", dst_path=str(tmp_path / "dl2")
    )
    assert (Path(folder) / "data" / "weights.bin").read_bytes() == bytes(range(256)) * 64

    # our side: one artifact of the run's project holds the tree, its files are objects
    ours = mltrail.Client(store_uri)
    versions = ours.artifact_versions(f"mlflow-artifacts-{run_id}", project=EXPERIMENT)
    latest = versions[-1]
    assert latest.run_id == run_id and latest.file_count == 3
    assert len(versions) == 3  # one version per uploaded file

    missing = httpx.get(f"{tracking}/api/2.0/mlflow-artifacts/artifacts/1/{run_id}/artifacts/nope")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_mlflow_model_registry_is_ours(tracking: str, store_uri: str, tmp_path: Path) -> None:
    mlflow.set_experiment(EXPERIMENT)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
    (model_dir / "model.pkl").write_bytes(b"weights")
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.9)
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    run_id = run.info.run_id

    mv = mlflow.register_model(f"runs:/{run_id}/model", MODEL)
    assert mv.version == "1" and mv.run_id == run_id and mv.status == "READY"
    assert mv.current_stage == "None"
    again = mlflow.register_model(f"runs:/{run_id}/model", MODEL)  # the model exists: v2
    assert again.version == "2"

    client = MlflowClient()
    client.set_registered_model_alias(MODEL, "champion", mv.version)
    by_alias = client.get_model_version_by_alias(MODEL, "champion")
    assert by_alias.version == "1" and by_alias.run_id == run_id
    assert by_alias.source.endswith(f"{run_id}/artifacts/model")

    staged = client.transition_model_version_stage(MODEL, "1", "Staging")
    assert staged.current_stage == "Staging"
    latest = client.get_latest_versions(MODEL, stages=["Staging"])
    assert [v.version for v in latest] == ["1"]
    assert {v.current_stage: v.version for v in client.get_latest_versions(MODEL)} == {
        "Staging": "1",
        "None": "2",
    }
    # the registry's policy holds for MLflow's client too: production needs valid metadata
    with pytest.raises(MlflowException) as refused:
        client.transition_model_version_stage(MODEL, "1", "Production")
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "metadata" in refused.value.message
    assert [m.name for m in client.search_registered_models(f"name = '{MODEL}'")] == [MODEL]
    assert {v.version for v in client.search_model_versions(f"name = '{MODEL}'")} == {"1", "2"}

    ours = mltrail.Client(store_uri)
    version = ours.get_model_version(f"{MODEL}@champion")
    assert version.version == 1 and version.stage == "staging" and version.run_id == run_id
    assert version.artifact == f"{EXPERIMENT}/{MODEL}:v0"
    assert [e.action for e in ours.model_history(MODEL)].count("stage.changed") == 1
    # a team that does not keep our metadata loosens the policy's schema; then MLflow's
    # client moves versions to production as with MLflow's own registry
    ours.set_registry_policy({"metadata_schema": {"type": "object"}}, reason="mlflow users")
    client.transition_model_version_stage(MODEL, "1", "Production")
    assert ours.get_model_version(f"{MODEL}@production").version == 1
    latest = client.get_latest_versions(MODEL, stages=["Production"])
    assert [v.version for v in latest] == ["1"]


def test_mlflow_errors_are_mlflows(tracking: str) -> None:
    client = MlflowClient()
    with pytest.raises(MlflowException) as missing:
        client.get_run("doesnotexist1")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow.get_experiment_by_name("no-such-experiment") is None
    exp_id = client.create_experiment("taken")
    with pytest.raises(MlflowException) as taken:
        client.create_experiment("taken")
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"
    run = client.create_run(exp_id)
    client.log_param(run.info.run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as changed:
        client.log_param(run.info.run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as bad_filter:
        client.search_runs([exp_id], "metrics.acc >>> 1")
    assert bad_filter.value.error_code == "INVALID_PARAMETER_VALUE"
    # the Default experiment "0" always exists
    assert client.get_experiment("0").name == "Default"
    client.delete_run(run.info.run_id)
    assert client.search_runs([exp_id]) == []
    assert [r.info.run_id for r in client.search_runs([exp_id], run_view_type=3)] == [
        run.info.run_id
    ]
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"


def test_mlflow_nested_runs_keep_their_parent(tracking: str, store_uri: str) -> None:
    mlflow.set_experiment(EXPERIMENT)
    with (
        mlflow.start_run(run_name="sweep") as parent,
        mlflow.start_run(run_name="trial", nested=True) as child,
    ):
        mlflow.log_metric("acc", float("nan"))
    ours = mltrail.Client(store_uri).get_run(child.info.run_id)
    assert ours.parent_id == parent.info.run_id and ours.name == "trial"
    got = MlflowClient().get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert got.data.metrics["acc"] != got.data.metrics["acc"]  # NaN round-trips


def test_mlflow_client_needs_a_token_on_an_auth_server(
    serve: Callable[..., str], store_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = serve(store_uri, objects=str(tmp_path / "auth-objects"), auth=True)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(url)
    try:
        with pytest.raises(MlflowException) as refused:
            MlflowClient().search_experiments()
        assert refused.value.error_code == "UNAUTHENTICATED"
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "not-a-token")
        with pytest.raises(MlflowException) as bad:
            MlflowClient().create_experiment("x")
        assert bad.value.error_code == "UNAUTHENTICATED"
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
