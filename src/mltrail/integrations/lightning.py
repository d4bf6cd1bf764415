"""PyTorch Lightning: a ``Logger`` for hyperparameters, step metrics and checkpoints.

>>> from mltrail.integrations.lightning import MltrailLogger
>>> trainer = Trainer(logger=MltrailLogger(project="mnist"), max_epochs=3)  # doctest: +SKIP
>>> trainer.fit(model, datamodule=dm)  # doctest: +SKIP

- ``log_hyperparams`` (``save_hyperparameters()``, the datamodule's) updates the config;
- ``log_metrics`` logs at Lightning's ``global_step``;
- checkpoints of every ``ModelCheckpoint`` become versions of the ``model`` artifact
  ``model-<run id>`` (file ``model.ckpt``, metadata: score, monitor, original file
  name); the best one carries the alias ``best``, the last logged is ``latest``.
  ``log_model=True`` (default) logs them when training ends, ``"all"`` as each is saved,
  ``False`` not at all.

The logger writes into ``run``, else the active run, else a run it starts (with
``project``, ``name`` and the other ``mltrail.init`` arguments) and finishes in
``finalize``. Works with ``lightning.pytorch`` and ``pytorch_lightning``; the class
subclasses the Logger of whichever is imported (``lightning.pytorch`` first).
``mltrail.autolog()`` adds one to every ``Trainer.fit`` that has none.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import sys
import tempfile
from argparse import Namespace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mltrail.integrations._common import (
    RunOwner,
    clean_metrics,
    clean_params,
    log_model_dir,
    suppress_mirror,
)
from mltrail.integrations._patch import Autolog, Patches

if TYPE_CHECKING:
    from mltrail.client.run import Run

__all__ = ["MltrailLogger", "logger_class"]

_CHECKPOINT_FIELDS = ("monitor", "mode", "save_last", "save_top_k", "save_weights_only")
_patches: dict[str, Patches] = {}
_autolog = Autolog()  # its options; the patches are per package, in _patches


def _rank_zero() -> bool:
    try:
        from lightning_utilities.core.rank_zero import rank_zero_only
    except ImportError:
        return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0
    return int(getattr(rank_zero_only, "rank", 0)) == 0


class _MltrailLogger:
    """The logger's behaviour; :func:`logger_class` mixes it into a Lightning ``Logger``."""

    def __init__(
        self,
        run: Run | None = None,
        *,
        log_model: bool | str = True,
        prefix: str = "",
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        if log_model not in (True, False, "all"):
            from mltrail.errors import InvalidValueError

            raise InvalidValueError(f"log_model={log_model!r} is not True, False or 'all'")
        self._owner = RunOwner(run, **init_kwargs)
        self._log_model = log_model
        self._prefix = prefix
        self._checkpoint_callbacks: dict[int, Any] = {}
        self._logged: dict[str, float] = {}  # checkpoint path -> mtime logged

    @property
    def experiment(self) -> Run:
        """The mltrail run (started on first use if there is none)."""
        return self._owner.get()

    @property
    def name(self) -> str:
        return self.experiment.project

    @property
    def version(self) -> str:
        return self.experiment.id

    @property
    def save_dir(self) -> str | None:
        return None

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if not _rank_zero():
            return
        if isinstance(params, Namespace):
            params = vars(params)
        self.experiment.config.update(clean_params(dict(params or {})), allow_val_change=True)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if not _rank_zero():
            return
        clean = clean_metrics(metrics, self._prefix)
        if clean:
            self.experiment.log(clean, step=step)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if not _rank_zero() or not self._log_model:
            return
        if self._log_model == "all" or getattr(checkpoint_callback, "save_top_k", 1) == -1:
            self._log_checkpoints(checkpoint_callback)
        else:
            self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback

    def save(self) -> None:
        return None

    def finalize(self, status: str) -> None:
        if not _rank_zero():
            return
        if status == "success" and self._owner.run is not None:
            for callback in self._checkpoint_callbacks.values():
                self._log_checkpoints(callback)
        self._checkpoint_callbacks.clear()
        self._owner.finish("finished" if status == "success" else "failed")

    def _log_checkpoints(self, callback: Any) -> None:
        found: dict[str, Any] = {}
        for attr in ("last_model_path", "best_model_path"):
            path = getattr(callback, attr, "") or ""
            if path:
                found[path] = getattr(callback, "current_score", None)
        best_path = getattr(callback, "best_model_path", "") or ""
        if best_path:
            found[best_path] = getattr(callback, "best_model_score", None)
        found.update(getattr(callback, "best_k_models", None) or {})
        ordered = sorted(
            (Path(p).stat().st_mtime, p, s) for p, s in found.items() if Path(p).is_file()
        )
        run = self.experiment
        settings = {k: getattr(callback, k) for k in _CHECKPOINT_FIELDS if hasattr(callback, k)}
        for mtime, path, score in ordered:
            if self._logged.get(path, -1.0) >= mtime:
                continue
            score_value = score.item() if hasattr(score, "item") else score
            meta = {"score": score_value, "original_filename": Path(path).name,
                    "checkpoint": clean_params(settings)}  # fmt: skip
            aliases = ["best"] if path == best_path else []
            with tempfile.TemporaryDirectory(prefix="mltrail-ckpt-") as tmp:
                target = Path(tmp) / "model.ckpt"
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copyfile(path, target)
                log_model_dir(
                    run, target, name=f"model-{run.id}", framework="lightning", aliases=aliases,
                    metadata=meta,
                )  # fmt: skip
            self._logged[path] = mtime


_CLASSES: dict[str, type] = {}


def logger_class(package: str | None = None) -> type:
    """The ``MltrailLogger`` class for ``package`` (``"lightning.pytorch"`` or
    ``"pytorch_lightning"``; default: whichever is imported, else installed)."""
    if package is None:
        candidates = ["lightning.pytorch", "pytorch_lightning"]
        imported = [p for p in candidates if p in sys.modules]
        package = (imported or candidates)[0]
        if not imported:
            try:
                importlib.import_module(package)
            except ImportError:
                package = candidates[1]
    found = _CLASSES.get(package)
    if found is None:
        base = importlib.import_module(f"{package}.loggers.logger").Logger
        found = type("MltrailLogger", (_MltrailLogger, base), {"__module__": __name__,
                                                              "__doc__": __doc__})  # fmt: skip
        _CLASSES[package] = found
    return found


if TYPE_CHECKING:
    MltrailLogger = _MltrailLogger
else:

    def __getattr__(name: str) -> Any:
        if name == "MltrailLogger":
            return logger_class()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- autolog ----------------------------------------------------------------------------


def _fit_wrapper(cls: type) -> Any:
    def make(original: Any) -> Any:
        @functools.wraps(original)
        def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                if not any(isinstance(lg, _MltrailLogger) for lg in self.loggers):
                    self.loggers = [*self.loggers, cls(log_model=_autolog.log_models)]
            except Exception as exc:  # never let tracking break training
                print(f"mltrail: lightning autolog is off for this fit: {exc!r}", file=sys.stderr)
            return original(self, *args, **kwargs)

        return fit

    return make


def _quiet(original: Any) -> Any:
    @functools.wraps(original)
    def method(*args: Any, **kwargs: Any) -> Any:
        with suppress_mirror():  # our logger logs these already
            return original(*args, **kwargs)

    return method


def _patch(module: ModuleType, **options: Any) -> None:
    package = module.__name__
    _autolog.configure(options)
    cls = logger_class(package)
    trainer = importlib.import_module(f"{package}.trainer.trainer").Trainer
    patches = _patches.setdefault(package, Patches())
    patches.wrap(trainer, "fit", _fit_wrapper(cls))
    tb = importlib.import_module(f"{package}.loggers.tensorboard").TensorBoardLogger
    for name in ("log_metrics", "log_hyperparams"):
        owner = next(c for c in tb.__mro__ if name in vars(c))  # may be lightning_fabric's
        patches.wrap(owner, name, _quiet)


def _unpatch(module_name: str) -> None:
    patches = _patches.pop(module_name, None)
    if patches is not None:
        patches.undo()
