"""scikit-learn: log a fitted estimator, pipeline or search into a run.

>>> from mltrail.integrations.sklearn import log_estimator
>>> model = LogisticRegression(max_iter=200).fit(X, y)  # doctest: +SKIP
>>> log_estimator(model, X, y)  # doctest: +SKIP

or let ``mltrail.autolog()`` do it after every ``fit``. What is logged:

- every parameter of ``get_params(deep=True)``, defaults included (objects as short text);
- training metrics on the data ``fit`` saw: ``training_score`` (the estimator's own
  ``score``) and, for classifiers, ``training_accuracy``, ``training_precision``,
  ``training_recall``, ``training_f1`` (weighted), ``training_log_loss`` and
  ``training_roc_auc`` when it has ``predict_proba``; for regressors ``training_mse``,
  ``training_rmse``, ``training_mae``, ``training_r2``;
- the fitted model, pickled, as a ``model`` artifact ``model-<run id>`` whose metadata
  holds its signature and an input example (the first 5 rows);
- for ``GridSearchCV``/``RandomizedSearchCV``: ``best_<param>`` params, the
  ``best_cv_score`` metric, ``cv_results_`` as a ``table`` artifact ``cv_results-<run
  id>``, the best estimator as the model, and the best ``max_tuning_runs`` candidates
  as child runs.

Only the outermost ``fit`` is logged: a pipeline's steps and a search's candidate fits
(in the same thread) are part of it.
"""

from __future__ import annotations

import functools
import pickle
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mltrail.integrations._common import (
    RunOwner,
    clean_params,
    log_model_dir,
    log_table,
    signature_and_example,
)
from mltrail.integrations._patch import Autolog

if TYPE_CHECKING:
    from mltrail.client.run import Run

__all__ = ["log_estimator"]

_autolog = Autolog()
_state = threading.local()


def log_estimator(
    estimator: Any,
    X: Any = None,
    y: Any = None,
    *,
    run: Run | None = None,
    sample_weight: Any = None,
    log_model: bool = True,
    max_tuning_runs: int = 5,
) -> Run:
    """Log a fitted ``estimator`` (trained on ``X``, ``y``) into ``run`` (default: the
    active run, else a new one that is finished before returning). Returns the run."""
    owner = RunOwner(run)
    target = owner.get(name=type(estimator).__name__)
    try:
        _log(target, estimator, X, y, sample_weight, log_model, max_tuning_runs)
    except BaseException:
        owner.finish("failed")
        raise
    owner.finish()
    return target


def _log(
    run: Run,
    est: Any,
    X: Any,
    y: Any,
    sample_weight: Any,
    log_model: bool,
    max_tuning_runs: int,
) -> None:
    params = clean_params(est.get_params(deep=True))
    params["estimator_class"] = f"{type(est).__module__}.{type(est).__qualname__}"
    run.config.update(params, allow_val_change=True)
    model = est
    if _is_search(est):
        model = getattr(est, "best_estimator_", est)
        best = clean_params(est.best_params_, "best_")
        run.config.update(best, allow_val_change=True)
        run.log({"best_cv_score": float(est.best_score_)}, step=0, commit=False)
        _log_cv_results(run, est, max_tuning_runs)
    if X is not None:
        metrics = _training_metrics(model, X, y, sample_weight)
        if metrics:
            run.log(metrics, step=0)
    run.flush()
    if log_model:
        _log_model(run, est, X)


def _is_search(est: Any) -> bool:
    return hasattr(est, "cv_results_") and hasattr(est, "best_params_")


def _training_metrics(est: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}

    def put(name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            out[f"training_{name}"] = float(fn(*args, **kwargs))
        except Exception:  # a metric that does not apply (one class, no score, ...)
            pass

    if hasattr(est, "score"):
        if y is not None:
            put("score", est.score, X, y, sample_weight=sample_weight)
        else:
            put("score", est.score, X)
    if y is None or not hasattr(est, "predict"):
        return out
    sw = {"sample_weight": sample_weight}
    if is_classifier(est):
        pred = est.predict(X)
        put("accuracy", m.accuracy_score, y, pred, **sw)
        for name, fn in (("precision", m.precision_score), ("recall", m.recall_score),
                         ("f1", m.f1_score)):  # fmt: skip
            put(name, fn, y, pred, average="weighted", zero_division=0, **sw)
        if hasattr(est, "predict_proba"):
            try:
                proba = est.predict_proba(X)
            except Exception:
                proba = None
            if proba is not None:
                put("log_loss", m.log_loss, y, proba, labels=est.classes_, **sw)
                if proba.shape[1] == 2:
                    put("roc_auc", m.roc_auc_score, y, proba[:, 1], **sw)
                else:
                    put("roc_auc", m.roc_auc_score, y, proba, multi_class="ovr", **sw)
    elif is_regressor(est):
        pred = est.predict(X)
        put("mse", m.mean_squared_error, y, pred, **sw)
        if "training_mse" in out:
            out["training_rmse"] = out["training_mse"] ** 0.5
        put("mae", m.mean_absolute_error, y, pred, **sw)
        put("r2", m.r2_score, y, pred, **sw)
    return out


def _log_cv_results(run: Run, search: Any, max_tuning_runs: int) -> None:
    results = search.cv_results_
    columns = list(results)
    n = len(results[columns[0]]) if columns else 0
    rows = [[_cell(results[c][i]) for c in columns] for i in range(n)]
    log_table(run, f"cv_results-{run.id}", columns, rows)
    if max_tuning_runs <= 0 or "rank_test_score" not in results:
        return
    from mltrail.client import fluent

    ranked = sorted(range(n), key=lambda i: int(results["rank_test_score"][i]))
    scores = [c for c in columns if c.startswith(("mean_", "std_")) or c.startswith("rank_")]
    for rank, i in enumerate(ranked[:max_tuning_runs]):
        child = fluent.init(
            project=run.project, name=f"{run.name}-candidate-{rank}", parent=run,
            config=clean_params(results["params"][i]), tags={"mltrail.sklearn.candidate": str(i)},
        )  # fmt: skip
        try:
            child.log({c: float(results[c][i]) for c in scores}, step=0)
        finally:
            child.finish()


def _cell(value: Any) -> Any:
    if getattr(value, "mask", False) is True:  # a masked entry of a param column
        return None
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return item()
    if isinstance(value, dict):
        return str(value)
    return value


def _head(X: Any, n: int) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[:n]
    try:
        return X[:n]
    except (TypeError, KeyError, IndexError):
        return None


def _log_model(run: Run, est: Any, X: Any) -> None:
    signature = example = None
    head = None if X is None else _head(X, 5)
    if head is not None:
        outputs = None
        if hasattr(est, "predict"):
            try:
                outputs = est.predict(head)
            except Exception:
                outputs = None
        signature, example = signature_and_example(head, outputs)
    with tempfile.TemporaryDirectory(prefix="mltrail-sklearn-") as tmp:
        path = Path(tmp) / "model"
        path.mkdir()
        with (path / "model.pkl").open("wb") as fh:
            pickle.dump(est, fh, protocol=pickle.HIGHEST_PROTOCOL)
        log_model_dir(
            run, path, name=f"model-{run.id}", framework="sklearn", signature=signature,
            input_example=example,
            metadata={"serialization": "pickle", "file": "model.pkl",
                      "estimator": f"{type(est).__module__}.{type(est).__qualname__}"},
        )  # fmt: skip


# -- autolog ----------------------------------------------------------------------------


def _fit_wrapper(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_state, "depth", 0)
        if depth:
            return original(self, *args, **kwargs)
        owner = RunOwner()
        try:
            run = owner.get(name=type(self).__name__)
        except Exception as exc:  # never let tracking break training
            print(f"mltrail: sklearn autolog could not start a run: {exc}", file=sys.stderr)
            return original(self, *args, **kwargs)
        _state.depth = 1
        try:
            result = original(self, *args, **kwargs)
        except BaseException:
            _state.depth = 0
            owner.finish("failed")
            raise
        _state.depth = 0
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        try:
            _log(run, self, X, y, kwargs.get("sample_weight"), _autolog.log_models, 5)
        except Exception as exc:
            print(f"mltrail: sklearn autolog could not log {type(self).__name__}: {exc!r}",
                  file=sys.stderr)  # fmt: skip
        owner.finish()
        return result

    return fit


def _patch(module: ModuleType, **options: Any) -> None:
    """Wrap ``fit`` of every scikit-learn estimator, pipelines and searches included."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    _autolog.configure(options)
    classes = {cls for _, cls in all_estimators()} | {Pipeline, GridSearchCV, RandomizedSearchCV}
    owners = {next(c for c in cls.__mro__ if "fit" in vars(c)) for cls in classes}
    for owner in sorted(owners, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        _autolog.patches.wrap(owner, "fit", _fit_wrapper)  # the class that defines it


_unpatch = _autolog.undo
