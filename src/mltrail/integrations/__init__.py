"""Framework integrations: ``mltrail.autolog()`` and one explicit logger per framework.

>>> import mltrail
>>> mltrail.autolog()  # doctest: +SKIP
['keras', 'lightgbm', 'sklearn', ...]

=====================  ==============================================  ======================
framework              explicit                                        ``autolog()`` patches
=====================  ==============================================  ======================
scikit-learn           ``integrations.sklearn.log_estimator``          ``fit`` of estimators
XGBoost                ``integrations.xgboost.MltrailCallback``        ``xgboost.train``
LightGBM               ``integrations.lightgbm.MltrailCallback``       ``lightgbm.train``
TensorBoard            ``integrations.tensorboard.mirror(writer)``     ``SummaryWriter``
PyTorch Lightning      ``integrations.lightning.MltrailLogger``        ``Trainer.fit``
HF Transformers        ``integrations.transformers.MltrailCallback``   ``Trainer.__init__``
Keras                  ``integrations.keras.MltrailCallback``          ``Model.fit``
=====================  ==============================================  ======================

``autolog()`` imports no framework: one that is already imported is patched at once,
one that is installed but not imported yet is patched right after its first import.
``autolog(disable=True)`` undoes every patch. Each integration logs into the active
run, or starts a run for the training call and finishes it afterwards.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from mltrail.errors import InvalidValueError
from mltrail.integrations._patch import hooks

__all__ = ["FRAMEWORKS", "autolog"]

#: integration name -> (module of mltrail.integrations, module whose import triggers it)
FRAMEWORKS: dict[str, tuple[str, str]] = {
    "sklearn": ("sklearn", "sklearn"),
    "xgboost": ("xgboost", "xgboost"),
    "lightgbm": ("lightgbm", "lightgbm"),
    "tensorboard": ("tensorboard", "torch.utils.tensorboard"),
    "tensorboardX": ("tensorboard", "tensorboardX"),
    "lightning": ("lightning", "lightning.pytorch"),
    "pytorch_lightning": ("lightning", "pytorch_lightning"),
    "transformers": ("transformers", "transformers"),
    "keras": ("keras", "keras"),
}

_enabled: set[str] = set()


def _installed(module: str) -> bool:
    top = module.split(".")[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _integration(name: str) -> Any:
    return importlib.import_module(f"mltrail.integrations.{FRAMEWORKS[name][0]}")


def autolog(
    disable: bool = False,
    *,
    frameworks: Iterable[str] | None = None,
    log_models: bool = True,
) -> list[str]:
    """Log training with every installed framework into mltrail; returns the names of
    the integrations now on (``[]`` after ``disable=True``).

    ``frameworks`` limits it to some of :data:`FRAMEWORKS`; ``log_models=False`` keeps
    models and checkpoints out of the artifact store (params and metrics are logged).
    """
    names = list(FRAMEWORKS) if frameworks is None else list(frameworks)
    unknown = [n for n in names if n not in FRAMEWORKS]
    if unknown:
        raise InvalidValueError(
            f"unknown autolog framework(s) {unknown}", hint=f"use some of {sorted(FRAMEWORKS)}"
        )
    if disable:
        for name in names:
            hooks.forget(name)
            if name in _enabled:
                _integration(name)._unpatch(FRAMEWORKS[name][1])
                _enabled.discard(name)
        return []
    for name in names:
        trigger = FRAMEWORKS[name][1]
        if name in _enabled or name in hooks.pending() or not _installed(trigger):
            continue

        def hook(module: ModuleType, name: str = name) -> None:
            _integration(name)._patch(module, log_models=log_models)
            _enabled.add(name)

        hooks.watch(name, [trigger], hook)
    return sorted(_enabled | hooks.pending())
