"""One adapter per tracked tool, each driving the tool's documented API.

This file runs inside each tool's own virtualenv, so it may import only the standard
library at module level; every tool is imported lazily in ``import_lib``.

An adapter exposes ``log``, the callable the hot loop calls as ``log(data, step=i)``.
For mltrail and W&B it is the run's own bound ``log`` method (no wrapper in the timed
path); for MLflow it is a thin function around ``mlflow.log_metric``/``log_metrics``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

LogFn = Callable[..., Any]
CONFIG = {"lr": 0.01, "batch_size": 64, "optimizer": "adam"}


class Adapter:
    """Base class: import, start a run, log, finish."""

    module = ""
    dist = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.lib: Any = None
        self.log: LogFn = _unset

    def import_lib(self) -> None:
        self.lib = importlib.import_module(self.module)

    def resolve_entry(self) -> None:
        """Touch the attribute a user calls first (lazy packages import more here)."""

    def version(self) -> str:
        return importlib.metadata.version(self.dist)

    def start(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError


def _unset(*_args: Any, **_kw: Any) -> None:
    raise RuntimeError("start() was not called")


class Mltrail(Adapter):
    module = "mltrail"
    dist = "mltrail"

    def resolve_entry(self) -> None:
        self.lib.init  # noqa: B018 - mltrail imports its client lazily, on this access

    def start(self) -> None:
        uri = f"sqlite:///{self.workdir / 'store' / 'mltrail.db'}"
        self.run = self.lib.init(project="bench", config=CONFIG, uri=uri)
        self.log = self.run.log

    def finish(self) -> None:
        self.run.finish()


class MlflowSync(Adapter):
    module = "mlflow"
    dist = "mlflow"
    synchronous = True

    def start(self) -> None:
        mlflow = self.lib
        store = self.workdir / "store"
        store.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
        mlflow.set_experiment("bench")
        mlflow.start_run()
        mlflow.log_params(CONFIG)
        log_metric, log_metrics, sync = mlflow.log_metric, mlflow.log_metrics, self.synchronous

        def log(data: dict[str, float], step: int) -> None:
            if len(data) == 1:
                ((key, value),) = data.items()
                log_metric(key, value, step=step, synchronous=sync)
            else:
                log_metrics(data, step=step, synchronous=sync)

        self.log = log

    def finish(self) -> None:
        if not self.synchronous:
            self.lib.flush_async_logging()
        self.lib.end_run()


class MlflowAsync(MlflowSync):
    synchronous = False


class Wandb(Adapter):
    module = "wandb"
    dist = "wandb"

    def start(self) -> None:
        store = self.workdir / "store"
        store.mkdir(parents=True, exist_ok=True)
        self.run = self.lib.init(project="bench", config=CONFIG, dir=str(store))
        self.log = self.run.log

    def finish(self) -> None:
        self.run.finish()


class Aim(Adapter):
    module = "aim"
    dist = "aim"

    def start(self) -> None:
        repo = self.workdir / "store"
        repo.mkdir(parents=True, exist_ok=True)
        self.run = self.lib.Run(repo=str(repo), experiment="bench")
        self.run["hparams"] = CONFIG
        track = self.run.track

        def log(data: dict[str, float], step: int) -> None:
            track(data, step=step)

        self.log = log

    def finish(self) -> None:
        self.run.close()


class Floor(Adapter):
    """The cheapest possible 'tracker': append to a Python list (a lower bound)."""

    module = "json"
    dist = ""

    def version(self) -> str:
        return "python list"

    def start(self) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []
        append = self.rows.append

        def log(data: dict[str, float], step: int) -> None:
            append((step, data))

        self.log = log

    def finish(self) -> None:
        self.rows.clear()


ADAPTERS: dict[str, type[Adapter]] = {
    "mltrail": Mltrail,
    "mlflow_sync": MlflowSync,
    "mlflow_async": MlflowAsync,
    "wandb": Wandb,
    "aim": Aim,
    "floor": Floor,
}


def tool_environ(tool: str, workdir: Path) -> dict[str, str]:
    """Environment for a child process of ``tool``: offline, quiet, writing into workdir."""
    env = dict(os.environ)
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_CONSOLE="off",
        WANDB_DISABLE_GIT="true",
        WANDB_DISABLE_CODE="true",
        WANDB_DIR=str(workdir / "store"),
        WANDB_CONFIG_DIR=str(workdir / "wandb-config"),
        WANDB_CACHE_DIR=str(workdir / "wandb-cache"),
        WANDB_DATA_DIR=str(workdir / "wandb-data"),
        AIM_UI_TELEMETRY_ENABLED="0",
    )
    for key in ("MLTRAIL_TRACKING_URI", "MLTRAIL_DIR", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    return env
