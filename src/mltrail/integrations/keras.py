"""Keras 3: a callback for params, per-epoch metrics and the trained model.

>>> from mltrail.integrations.keras import MltrailCallback
>>> model.fit(x, y, epochs=5, validation_split=0.2,
...           callbacks=[MltrailCallback(input_example=x[:5])])  # doctest: +SKIP

At ``on_train_begin``: ``epochs``, ``steps``, the optimizer's config
(``optimizer.*``, its class as ``optimizer.class``), the loss and
``model.num_parameters``. At each epoch end: every number in ``logs`` (``loss``,
``val_loss``, ``accuracy``, ...) at step = epoch.
At ``on_train_end``: the model saved as ``model.keras``, a ``model`` artifact
``model-<run id>`` (with a signature and input example when ``input_example`` is
given). The callback logs into ``run``, the active run, or a run it starts (named
after the model) and finishes. ``mltrail.autolog()`` adds it to every ``Model.fit``.
"""

from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mltrail.integrations._common import (
    RunBound,
    clean_metrics,
    clean_params,
    log_model_dir,
    signature_and_example,
)
from mltrail.integrations._patch import Autolog

if TYPE_CHECKING:
    _Base = object
else:
    from keras.callbacks import Callback as _Base

__all__ = ["MltrailCallback"]


class MltrailCallback(RunBound, _Base):
    """A ``keras.callbacks.Callback`` that logs into mltrail."""

    def _default_name(self) -> str | None:
        return getattr(getattr(self, "model", None), "name", None)

    def on_train_begin(self, logs: Any = None) -> None:
        model: Any = self.model  # type: ignore[attr-defined]
        params: dict[str, Any] = dict(getattr(self, "params", None) or {})
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            params["optimizer"] = {**optimizer.get_config(), "class": type(optimizer).__name__}
        loss = getattr(model, "loss", None)
        if loss is not None:
            params["loss"] = getattr(loss, "name", None) or getattr(loss, "__name__", str(loss))
        params["model.num_parameters"] = int(model.count_params())
        self.run.config.update(clean_params(params), allow_val_change=True)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        clean = clean_metrics(dict(logs or {}))
        if clean:
            self.run.log(clean, step=int(epoch))

    def on_train_end(self, logs: Any = None) -> None:
        self._finish_after(self._save_model if self.log_model else lambda: None)

    def _save_model(self) -> None:
        model: Any = self.model  # type: ignore[attr-defined]
        signature = example = None
        if self.input_example is not None:
            try:
                outputs = model.predict(self.input_example, verbose=0)
            except Exception:
                outputs = None
            signature, example = signature_and_example(self.input_example, outputs)
        run = self.run
        with tempfile.TemporaryDirectory(prefix="mltrail-keras-") as tmp:
            model.save(str(Path(tmp) / "model.keras"))
            log_model_dir(
                run, tmp, name=f"model-{run.id}", framework="keras", signature=signature,
                input_example=example, metadata={"file": "model.keras"},
            )  # fmt: skip


# -- autolog ----------------------------------------------------------------------------

_autolog = Autolog()


def _fit_wrapper(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            callbacks = list(kwargs.get("callbacks") or ())
            if not any(isinstance(c, MltrailCallback) for c in callbacks):
                callback = MltrailCallback(log_model=_autolog.log_models)
                kwargs["callbacks"] = [*callbacks, callback]
        except Exception as exc:  # never let tracking break training
            print(f"mltrail: keras autolog is off for this fit: {exc!r}", file=sys.stderr)
        return original(self, *args, **kwargs)

    return fit


def _patch(module: ModuleType, **options: Any) -> None:
    _autolog.configure(options)
    owner = next(c for c in module.Model.__mro__ if "fit" in vars(c))
    _autolog.patches.wrap(owner, "fit", _fit_wrapper)


_unpatch = _autolog.undo
