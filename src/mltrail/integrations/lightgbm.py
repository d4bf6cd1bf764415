"""LightGBM: params, per-iteration eval metrics, feature importance and the booster.

>>> from mltrail.integrations.lightgbm import MltrailCallback
>>> cb = MltrailCallback()
>>> booster = lightgbm.train(params, train_set, valid_sets=[valid],
...                          callbacks=[cb])  # doctest: +SKIP
>>> cb.after_training(booster)  # doctest: +SKIP

Each iteration logs ``<dataset>-<metric>`` (``valid_0-binary_logloss``) at step =
iteration; the first also logs the params. After the last iteration (or when you call
``after_training(booster)``, which you need after early stopping): ``best_iteration``,
the feature importance (split, gain) as a ``table`` artifact
``feature_importance-<run id>`` and in the summary, and the booster (``model.txt``) as a
``model`` artifact ``model-<run id>``. ``mltrail.autolog()`` adds the callback to
``lightgbm.train`` (and so to ``LGBMClassifier.fit``) and calls ``after_training``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from mltrail.integrations._common import (
    RunBound,
    clean_metrics,
    clean_params,
    log_model_dir,
    log_table,
    training_wrapper,
)
from mltrail.integrations._patch import Autolog

__all__ = ["MltrailCallback"]


class MltrailCallback(RunBound):
    """A LightGBM callback (``callbacks=[MltrailCallback()]``) that logs into mltrail."""

    order = 20  # before early stopping (30), so the stopping iteration is logged
    before_iteration = False
    run_name = "lightgbm"
    _params_logged = False
    _done = False

    def __call__(self, env: Any) -> None:
        run = self.run
        if not self._params_logged:
            run.config.update(clean_params(dict(env.params or {})), allow_val_change=True)
            self._params_logged = True
        values: dict[str, Any] = {}
        for item in env.evaluation_result_list or ():
            data, metric, value = item[0], item[1], item[2]
            if len(item) > 4:  # lightgbm.cv: ("cv_agg", "valid metric", mean, higher, std)
                values[f"{metric.replace(' ', '-')}-mean"] = value
                values[f"{metric.replace(' ', '-')}-std"] = item[4]
            else:
                values[f"{data}-{metric}"] = value
        if values:
            run.log(clean_metrics(values), step=env.iteration)
        if env.iteration + 1 >= env.end_iteration:
            self.after_training(env.model)

    def after_training(self, booster: Any) -> None:
        """Log feature importance and the model, and finish a run started here (once)."""
        if self._done or not hasattr(booster, "feature_importance"):
            return
        self._done = True
        self._finish_after(lambda: self._log_end(booster))

    def _log_end(self, booster: Any) -> None:
        run = self.run
        summary: dict[str, Any] = {}
        if getattr(booster, "best_iteration", 0) > 0:
            summary["best_iteration"] = booster.best_iteration
        names = booster.feature_name()
        if self.log_feature_importance:
            split = booster.feature_importance("split")
            gain = booster.feature_importance("gain")
            rows = [[n, int(s), float(g)] for n, s, g in zip(names, split, gain, strict=True)]
            log_table(run, f"feature_importance-{run.id}", ["feature", "split", "gain"], rows)
            summary.update({f"feature_importance/gain/{n}": g for n, _, g in rows})
        if summary:
            run.summary.update(summary)
        if self.log_model:
            with tempfile.TemporaryDirectory(prefix="mltrail-lgb-") as tmp:
                booster.save_model(str(Path(tmp) / "model.txt"))
                meta = {"file": "model.txt", "feature_names": names}
                log_model_dir(run, tmp, name=f"model-{run.id}", framework="lightgbm", metadata=meta)


# -- autolog ----------------------------------------------------------------------------

_autolog = Autolog()


def _new_callback() -> MltrailCallback:
    callback = MltrailCallback(log_model=_autolog.log_models)
    callback.run  # noqa: B018  (start the run now: its time covers the training)
    return callback


def _patch(module: ModuleType, **options: Any) -> None:
    import lightgbm.engine
    import lightgbm.sklearn

    _autolog.configure(options)
    after = MltrailCallback.after_training
    wrapper = training_wrapper("lightgbm", MltrailCallback, _new_callback, after=after)
    _autolog.wrap_each((lightgbm.engine, lightgbm, lightgbm.sklearn), "train", wrapper)


_unpatch = _autolog.undo
