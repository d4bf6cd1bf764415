"""Hugging Face Transformers: a ``TrainerCallback`` for config, metrics and checkpoints.

>>> import mltrail.integrations.transformers  # registers report_to="mltrail"
>>> args = TrainingArguments("out", report_to="mltrail")  # doctest: +SKIP

or ``Trainer(..., callbacks=[MltrailCallback()])``. What is logged:

- at ``on_train_begin``: the ``TrainingArguments`` (``args.*``), the model config
  (``model.*``) and ``model.num_parameters``;
- every ``on_log`` at ``global_step``: ``loss`` as ``train/loss``, ``eval_loss`` as
  ``eval/loss`` (``test_`` as ``test/``), other numbers under ``train/``;
- each saved checkpoint folder (``checkpoint-<step>``) as a version of the ``model``
  artifact ``model-<run id>``, the best one (``metric_for_best_model``) with the alias
  ``best``; ``log_checkpoints=False`` turns it off.

The callback logs into ``run``, the active run, or a run it starts (named after
``args.run_name``) and finishes at ``on_train_end``. Importing this module registers
``"mltrail"`` as a ``report_to`` integration; ``mltrail.autolog()`` imports it when
transformers is imported and adds the callback to every ``Trainer``.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mltrail.integrations._common import RunOwner, clean_metrics, clean_params, log_model_dir
from mltrail.integrations._patch import Autolog

if TYPE_CHECKING:
    from mltrail.client.run import Run

    _Base = object
else:
    from transformers import TrainerCallback as _Base

__all__ = ["MltrailCallback"]


def _rewrite(logs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in logs.items():
        for prefix in ("eval_", "test_"):
            if key.startswith(prefix):
                out[f"{prefix[:-1]}/{key[len(prefix) :]}"] = value
                break
        else:
            out[f"train/{key}"] = value
    return out


class MltrailCallback(_Base):
    """A ``transformers.TrainerCallback`` that logs into mltrail."""

    def __init__(
        self, run: Run | None = None, *, log_checkpoints: bool = True, **init_kwargs: Any
    ) -> None:
        self._owner = RunOwner(run, **init_kwargs)
        self.log_checkpoints = log_checkpoints
        self._ready = False

    def _setup(self, args: Any, state: Any, model: Any) -> Run | None:
        if not state.is_world_process_zero:
            return None
        run = self._owner.get(name=getattr(args, "run_name", None))
        if not self._ready:
            self._ready = True
            params = clean_params(args.to_dict(), "args.")
            config = getattr(model, "config", None)
            if config is not None and hasattr(config, "to_dict"):
                params.update(clean_params(config.to_dict(), "model."))
            if model is not None and hasattr(model, "num_parameters"):
                params["model.num_parameters"] = int(model.num_parameters())
            run.config.update(params, allow_val_change=True)
        return run

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kwargs: Any) -> None:  # fmt: skip
        self._setup(args, state, model)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, model: Any = None,
               **kwargs: Any) -> None:  # fmt: skip
        run = self._setup(args, state, model)
        if run is None or not logs:
            return
        clean = clean_metrics(_rewrite(dict(logs)))
        if clean:
            run.log(clean, step=int(state.global_step))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self._setup(args, state, kwargs.get("model"))
        if run is None or not self.log_checkpoints:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not folder.is_dir():
            return
        best = state.best_model_checkpoint
        is_best = best is not None and Path(best).name == folder.name
        log_model_dir(
            run, folder, name=f"model-{run.id}", framework="transformers",
            aliases=["best"] if is_best else [],
            metadata={"global_step": int(state.global_step), "epoch": state.epoch,
                      "best_metric": state.best_metric},
        )  # fmt: skip

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._owner.finish()
        self._ready = False


def _register(integration_utils: Any) -> None:
    table = getattr(integration_utils, "INTEGRATION_TO_CALLBACK", None)
    if isinstance(table, dict):
        table.setdefault("mltrail", MltrailCallback)


try:
    from transformers.integrations import integration_utils as _integration_utils
except ImportError:  # pragma: no cover - a transformers without the registry
    pass
else:
    _register(_integration_utils)


# -- autolog ----------------------------------------------------------------------------

_autolog = Autolog()


def _init_wrapper(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            callbacks = self.callback_handler.callbacks
            if not any(isinstance(c, MltrailCallback) for c in callbacks):
                self.add_callback(MltrailCallback(log_checkpoints=_autolog.log_models))
        except Exception as exc:  # never let tracking break training
            print(f"mltrail: transformers autolog is off for this Trainer: {exc!r}",
                  file=sys.stderr)  # fmt: skip

    return __init__


def _patch(module: ModuleType, **options: Any) -> None:
    from transformers.trainer import Trainer

    _autolog.configure(options)
    _autolog.patches.wrap(Trainer, "__init__", _init_wrapper)


_unpatch = _autolog.undo
