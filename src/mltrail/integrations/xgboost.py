"""XGBoost: per-iteration eval metrics, feature importance and the booster.

>>> from mltrail.integrations.xgboost import MltrailCallback
>>> booster = xgboost.train(params, dtrain, 100, evals=[(dvalid, "valid")],
...                         callbacks=[MltrailCallback()])  # doctest: +SKIP

Each iteration logs ``<eval name>-<metric>`` (``valid-logloss``) at step = iteration.
After training: ``best_iteration``/``best_score`` when early stopping ran, the feature
importance (weight, gain, cover, total_gain, total_cover) as a ``table`` artifact
``feature_importance-<run id>`` and in the summary (``feature_importance/gain/<f>``),
and the booster (``model.json``) as a ``model`` artifact ``model-<run id>`` (with a
signature when ``input_example`` is given). The callback logs into ``run``, the active
run, or a run it starts at the first iteration and finishes after training.
``mltrail.autolog()`` adds it to ``xgboost.train`` (and so to the scikit-learn API:
``XGBClassifier.fit``) and logs the params.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mltrail.integrations._common import (
    RunBound,
    clean_metrics,
    clean_params,
    log_model_dir,
    log_table,
    signature_and_example,
    training_wrapper,
)
from mltrail.integrations._patch import Autolog

if TYPE_CHECKING:
    _Base = object
else:
    from xgboost.callback import TrainingCallback as _Base

__all__ = ["MltrailCallback"]

_IMPORTANCE = ("weight", "gain", "cover", "total_gain", "total_cover")


class MltrailCallback(RunBound, _Base):
    """An ``xgboost.callback.TrainingCallback`` that logs into mltrail."""

    run_name = "xgboost"

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        values: dict[str, Any] = {}
        for data, metrics in evals_log.items():
            for metric, history in metrics.items():
                last = history[-1]
                if isinstance(last, tuple):  # xgboost.cv: (mean, std)
                    values[f"{data}-{metric}-mean"], values[f"{data}-{metric}-std"] = last
                else:
                    values[f"{data}-{metric}"] = last
        if values:
            self.run.log(clean_metrics(values), step=epoch)
        return False

    def after_training(self, model: Any) -> Any:
        self._finish_after(lambda: self._log_end(model))
        return model

    def _log_end(self, model: Any) -> None:
        run = self.run
        summary = {a: float(model.attr(a)) for a in ("best_iteration", "best_score")
                   if model.attr(a) is not None}  # fmt: skip
        if self.log_feature_importance:
            scores = {kind: model.get_score(importance_type=kind) for kind in _IMPORTANCE}
            features = sorted(set().union(*scores.values()))
            rows = [[f, *(scores[k].get(f, 0.0) for k in _IMPORTANCE)] for f in features]
            if rows:
                log_table(run, f"feature_importance-{run.id}", ["feature", *_IMPORTANCE], rows)
                gain = scores["gain"]
                summary.update({f"feature_importance/gain/{f}": gain.get(f, 0.0) for f in features})
        if summary:
            run.summary.update(summary)
        if self.log_model:
            signature, example = (None, None)
            if self.input_example is not None:
                signature, example = signature_and_example(self.input_example)
            with tempfile.TemporaryDirectory(prefix="mltrail-xgb-") as tmp:
                model.save_model(str(Path(tmp) / "model.json"))
                log_model_dir(
                    run, tmp, name=f"model-{run.id}", framework="xgboost", signature=signature,
                    input_example=example,
                    metadata={"file": "model.json", "feature_names": model.feature_names},
                )  # fmt: skip


# -- autolog ----------------------------------------------------------------------------

_autolog = Autolog()


def _new_callback() -> MltrailCallback:
    return MltrailCallback(log_model=_autolog.log_models)


def _before(callback: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    params = args[0] if args else kwargs.get("params")
    dtrain: Any = args[1] if len(args) > 1 else kwargs.get("dtrain")
    try:
        callback.input_example = dtrain.get_data()[:5].toarray()
    except Exception:
        callback.input_example = None
    config = clean_params(dict(params or {}))
    config["num_boost_round"] = args[2] if len(args) > 2 else kwargs.get("num_boost_round", 10)
    if kwargs.get("early_stopping_rounds") is not None:
        config["early_stopping_rounds"] = kwargs["early_stopping_rounds"]
    callback.run.config.update(config, allow_val_change=True)


def _patch(module: ModuleType, **options: Any) -> None:
    import xgboost.sklearn
    import xgboost.training

    _autolog.configure(options)
    wrapper = training_wrapper("xgboost", MltrailCallback, _new_callback, before=_before)
    _autolog.wrap_each((xgboost.training, xgboost, xgboost.sklearn), "train", wrapper)


_unpatch = _autolog.undo
