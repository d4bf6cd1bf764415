"""TensorBoard: mirror ``SummaryWriter`` scalars and hparams into the active run.

>>> from torch.utils.tensorboard import SummaryWriter  # or tensorboardX
>>> from mltrail.integrations.tensorboard import mirror
>>> writer = mirror(SummaryWriter("runs/exp1"))  # doctest: +SKIP
>>> writer.add_scalar("train/loss", 0.3, global_step=10)  # doctest: +SKIP

The event files are written as before; in addition ``add_scalar(tag, value, step)``
logs ``tag`` at ``step``, ``add_scalars(main, {k: v}, step)`` logs ``main/k``, and
``add_hparams(hparams, metrics)`` updates the run's config and logs the metrics.
Without ``global_step`` the run's next step is used. Calls are mirrored into ``run``
(``mirror(writer, run)``) or the active run; with no run they are only written to
TensorBoard. ``mltrail.autolog()`` mirrors every ``SummaryWriter`` of
``torch.utils.tensorboard`` and of ``tensorboardX``.
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mltrail.integrations._common import (
    clean_metrics,
    clean_params,
    mirror_suppressed,
    suppress_mirror,
)
from mltrail.integrations._patch import Patches

if TYPE_CHECKING:
    from mltrail.client.run import Run

__all__ = ["mirror"]

_patches: dict[str, Patches] = {}


def _target(run: Run | None) -> Run | None:
    if run is not None:
        return None if run._closed else run
    from mltrail.client import fluent

    return fluent.active_run()


def _step(global_step: Any) -> int | None:
    return None if global_step is None else int(global_step)


def _safely(what: str, fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:  # never let tracking break training
        print(f"mltrail: could not mirror {what}: {exc!r}", file=sys.stderr)


def _log(run: Run | None, values: dict[str, Any], global_step: Any) -> None:
    target = _target(run)
    if target is not None:
        clean = clean_metrics(values)
        if clean:
            target.log(clean, step=_step(global_step))


def _hparams(run: Run | None, hparams: Any, metrics: Any, global_step: Any) -> None:
    target = _target(run)
    if target is not None:
        target.config.update(clean_params(dict(hparams or {})), allow_val_change=True)
        clean = clean_metrics(dict(metrics or {}))
        if clean:
            target.log(clean, step=_step(global_step))


def _wrappers(run: Run | None) -> dict[str, Any]:
    def add_scalar(original: Any) -> Any:
        @functools.wraps(original)
        def wrapper(self: Any, tag: str, scalar_value: Any, global_step: Any = None,
                    *args: Any, **kwargs: Any) -> Any:  # fmt: skip
            if not mirror_suppressed():
                _safely(tag, _log, run, {tag: scalar_value}, global_step)
            with suppress_mirror():
                return original(self, tag, scalar_value, global_step, *args, **kwargs)

        return wrapper

    def add_scalars(original: Any) -> Any:
        @functools.wraps(original)
        def wrapper(self: Any, main_tag: str, tag_scalar_dict: Any, global_step: Any = None,
                    *args: Any, **kwargs: Any) -> Any:  # fmt: skip
            if not mirror_suppressed():
                values = {f"{main_tag}/{k}": v for k, v in dict(tag_scalar_dict).items()}
                _safely(main_tag, _log, run, values, global_step)
            with suppress_mirror():
                return original(self, main_tag, tag_scalar_dict, global_step, *args, **kwargs)

        return wrapper

    def add_hparams(original: Any) -> Any:
        @functools.wraps(original)
        def wrapper(self: Any, hparam_dict: Any, metric_dict: Any, *args: Any,
                    **kwargs: Any) -> Any:  # fmt: skip
            if not mirror_suppressed():
                step = kwargs.get("global_step")
                _safely("hparams", _hparams, run, hparam_dict, metric_dict, step)
            with suppress_mirror():  # torch's add_hparams calls add_scalar itself
                return original(self, hparam_dict, metric_dict, *args, **kwargs)

        return wrapper

    return {"add_scalar": add_scalar, "add_scalars": add_scalars, "add_hparams": add_hparams}


def mirror(writer: Any, run: Run | None = None) -> Any:
    """Mirror this writer's scalars and hparams into ``run`` (default: the active run).
    Returns the writer."""
    for name, make in _wrappers(run).items():
        original = getattr(type(writer), name)
        bound = make(original).__get__(writer, type(writer))
        setattr(writer, name, bound)
    return writer


def _patch(module: ModuleType, **options: Any) -> None:
    cls = module.SummaryWriter
    patches = _patches.setdefault(module.__name__, Patches())
    for name, make in _wrappers(None).items():
        owner = next(c for c in cls.__mro__ if name in vars(c))
        patches.wrap(owner, name, make)


def _unpatch(module_name: str) -> None:
    patches = _patches.pop(module_name, None)
    if patches is not None:
        patches.undo()
