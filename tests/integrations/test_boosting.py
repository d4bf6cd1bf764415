"""XGBoost and LightGBM: callbacks and autolog on a real 60-row problem."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import make_classification

import mltrail
from mltrail.integrations.lightgbm import MltrailCallback as LgbCallback
from mltrail.integrations.xgboost import MltrailCallback as XgbCallback

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=120, n_features=5, n_informative=3, random_state=0)
    return X, y


def test_xgboost_callback_logs_each_iteration_importance_and_model(
    client: mltrail.Client, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = data
    dtrain, dvalid = xgb.DMatrix(X[:80], y[:80]), xgb.DMatrix(X[80:], y[80:])
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "max_depth": 2}
    with mltrail.init(project="xgb", config=params) as run:
        booster = xgb.train(
            params,
            dtrain,
            8,
            evals=[(dtrain, "train"), (dvalid, "valid")],
            callbacks=[XgbCallback(input_example=X[:5])],
            verbose_eval=False,
        )
    history = client.metric_history(run.id, "valid-logloss")
    assert [p.step for p in history] == list(range(8))
    assert {"train-logloss", "train-error", "valid-error"} <= set(client.metric_keys(run.id))
    rec = client.get_run(run.id)
    assert any(k.startswith("feature_importance/gain/") for k in rec.summary)
    table = client.download_artifact(f"xgb/feature_importance-{run.id}", tmp_path / "fi")
    doc = json.loads(next(table.glob("*.json")).read_text())
    assert doc["columns"][:3] == ["feature", "weight", "gain"] and doc["data"]
    model = client.get_artifact(f"xgb/model-{run.id}")
    assert model.metadata["framework"] == "xgboost" and model.metadata["signature"]
    folder = client.download_artifact(f"xgb/model-{run.id}", tmp_path / "m")
    loaded = xgb.Booster(model_file=str(folder / "model.json"))
    assert np.allclose(loaded.predict(dvalid), booster.predict(dvalid))


def test_xgboost_autolog_through_the_sklearn_api(
    client: mltrail.Client, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = data
    mltrail.autolog(frameworks=["xgboost"])
    xgb.XGBClassifier(n_estimators=5, max_depth=2, early_stopping_rounds=3).fit(
        X[:80], y[:80], eval_set=[(X[80:], y[80:])], verbose=False
    )
    (rec,) = client.list_runs()
    assert rec.status == "finished" and rec.config["max_depth"] == 2
    assert rec.config["early_stopping_rounds"] == 3
    assert len(client.metric_history(rec.id, "validation_0-logloss")) == 5
    assert "best_iteration" in rec.summary


def test_lightgbm_callback_logs_params_metrics_importance_and_model(
    client: mltrail.Client, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = data
    train = lgb.Dataset(X[:80], y[:80])
    valid = lgb.Dataset(X[80:], y[80:], reference=train)
    params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "min_data_in_leaf": 5}
    with mltrail.init(project="lgb") as run:
        booster = lgb.train(params, train, 6, valid_sets=[valid], callbacks=[LgbCallback()])
    rec = client.get_run(run.id)
    assert rec.config["num_leaves"] == 4
    assert [p.step for p in client.metric_history(run.id, "valid_0-binary_logloss")] == list(
        range(6)
    )
    assert any(k.startswith("feature_importance/gain/") for k in rec.summary)
    client.get_artifact(f"lgb/feature_importance-{run.id}")
    folder = client.download_artifact(f"lgb/model-{run.id}", tmp_path / "m")
    loaded = lgb.Booster(model_file=str(folder / "model.txt"))
    assert np.allclose(loaded.predict(X[80:]), booster.predict(X[80:]))


def test_lightgbm_autolog_with_early_stopping(
    client: mltrail.Client, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = data
    mltrail.autolog(frameworks=["lightgbm"])
    model = lgb.LGBMClassifier(n_estimators=200, num_leaves=4, verbose=-1, min_child_samples=5)
    model.fit(
        X[:80],
        y[:80],
        eval_X=(X[80:],),
        eval_y=(y[80:],),
        callbacks=[lgb.early_stopping(3, verbose=False)],
    )
    (rec,) = client.list_runs()
    assert rec.status == "finished" and rec.config["num_leaves"] == 4
    n = len(client.metric_history(rec.id, "valid_0-binary_logloss"))
    assert n < 200 and rec.summary["best_iteration"] == model.best_iteration_
    assert client.get_artifact(f"default/model-{rec.id}").metadata["framework"] == "lightgbm"
