"""scikit-learn: explicit logging and autolog on real estimators (iris, milliseconds)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mltrail
from mltrail.integrations.sklearn import log_estimator


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


def test_log_estimator_logs_params_metrics_and_a_loadable_model(
    client: mltrail.Client, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = iris
    model = LogisticRegression(max_iter=300).fit(X, y)
    with mltrail.init(project="iris") as run:
        log_estimator(model, X, y)
    rec = client.get_run(run.id)
    assert rec.config["C"] == 1.0 and rec.config["max_iter"] == 300  # defaults too
    assert rec.config["estimator_class"].endswith("LogisticRegression")
    assert rec.summary["training_accuracy"] > 0.9
    assert {"training_f1", "training_log_loss", "training_roc_auc"} <= set(rec.summary)
    art = client.get_artifact(f"iris/model-{run.id}")
    assert art.type == "model" and art.run_id == run.id
    assert art.metadata["framework"] == "sklearn"
    assert art.metadata["signature"]["inputs"] == {
        "kind": "tensor",
        "type": "float64",
        "shape": [-1, 4],
        "nullable": False,
    }
    assert len(art.metadata["input_example"]) == 5
    folder = client.download_artifact(f"iris/model-{run.id}", tmp_path / "dl")
    loaded = pickle.loads((folder / "model.pkl").read_bytes())
    assert (loaded.predict(X[:10]) == model.predict(X[:10])).all()


def test_regressor_metrics_and_a_run_of_its_own(
    client: mltrail.Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    run = log_estimator(
        LinearRegression().fit(X, y.astype(float)), X, y.astype(float), log_model=False
    )
    rec = client.get_run(run.id)
    assert rec.status == "finished" and rec.name == "LinearRegression"
    assert rec.summary["training_r2"] > 0.8
    assert rec.summary["training_rmse"] == pytest.approx(rec.summary["training_mse"] ** 0.5)


def test_autolog_logs_a_pipeline_as_one_run(
    client: mltrail.Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    assert "sklearn" in mltrail.autolog(frameworks=["sklearn"])
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(X, y)
    (rec,) = client.list_runs()  # the steps' own fits are part of the pipeline's
    assert rec.name == "Pipeline" and rec.status == "finished"
    assert rec.config["logisticregression__C"] == 1.0
    assert rec.config["standardscaler__with_mean"] is True
    assert rec.summary["training_accuracy"] == pytest.approx(pipe.score(X, y))
    assert client.get_artifact(f"default/model-{rec.id}").metadata["signature"] is not None


def test_autolog_search_logs_best_params_cv_table_and_child_runs(
    client: mltrail.Client, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = iris
    mltrail.autolog(frameworks=["sklearn"])
    with mltrail.init(project="search") as run:
        search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 1.0]}, cv=2).fit(X, y)
    rec = client.get_run(run.id)
    assert rec.config["best_C"] == search.best_params_["C"]
    assert rec.summary["best_cv_score"] == pytest.approx(search.best_score_)
    table = client.get_artifact(f"search/cv_results-{run.id}")
    assert table.type == "table" and table.metadata["rows"] == 2
    folder = client.download_artifact(f"search/cv_results-{run.id}", tmp_path / "t")
    doc = json.loads((folder / f"cv_results-{run.id}.json").read_text())
    assert "mean_test_score" in doc["columns"] and len(doc["data"]) == 2
    children = [r for r in client.list_runs("search") if r.parent_id == run.id]
    assert len(children) == 2
    tag = "mltrail.sklearn.candidate"
    (best,) = [r for r in children if r.tags[tag] == str(search.best_index_)]
    assert best.config["C"] == search.best_params_["C"] and best.summary["rank_test_score"] == 1
    model = client.get_artifact(f"search/model-{run.id}")
    assert model.metadata["estimator"].endswith("GridSearchCV")


def test_autolog_disable_and_a_failed_fit(
    client: mltrail.Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    mltrail.autolog(frameworks=["sklearn"])
    with pytest.raises(ValueError):
        LogisticRegression().fit(X, y[:10])  # inconsistent lengths
    (failed,) = client.list_runs()
    assert failed.status == "failed"
    assert mltrail.autolog(disable=True) == []
    LogisticRegression(max_iter=300).fit(X, y)
    assert len(client.list_runs()) == 1


def test_autolog_waits_for_the_import(uri: str, tmp_path: Path) -> None:
    """autolog() imports no framework; one is patched when the user imports it."""
    code = (
        "import sys, mltrail\n"
        "on = mltrail.autolog()\n"
        "frameworks = {'sklearn', 'xgboost', 'lightgbm', 'tensorboardX', 'torch', 'keras'}\n"
        "assert {'sklearn', 'tensorboardX'} <= set(on), on\n"
        "assert not frameworks & set(sys.modules), frameworks & set(sys.modules)\n"
        "from tensorboardX import SummaryWriter\n"
        "with mltrail.init(project='lazy') as run:\n"
        "    SummaryWriter('logs').add_scalar('loss', 0.25, 3)\n"
        "print(mltrail.Client().metric_history(run.id, 'loss')[0].value)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.25"
