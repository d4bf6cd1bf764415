"""mltrail: experiment tracking, model registry and data versioning, local-first.

>>> import mltrail
>>> with mltrail.init(project="demo", config={"lr": 0.01}) as run:  # doctest: +SKIP
...     run.log({"loss": 0.5})

Everything heavy (SQLAlchemy, the server, cloud SDKs) is imported on first use, so
``import mltrail`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrail._version import __version__
from mltrail.errors import (
    ConfigConflictError,
    ConfigurationError,
    ExtraNotInstalled,
    InvalidKeyError,
    InvalidValueError,
    MltrailError,
    NotFoundError,
    QuerySyntaxError,
    RunFinishedError,
    RunNotFound,
    SchemaVersionError,
    StoreError,
)

if TYPE_CHECKING:
    from mltrail.client.client import Client
    from mltrail.client.fluent import active_run, finish, init, log, seed_everything
    from mltrail.client.run import Run
    from mltrail.integrations import autolog
    from mltrail.sweeps import agent, sweep

__all__ = [
    "Client",
    "ConfigConflictError",
    "ConfigurationError",
    "ExtraNotInstalled",
    "InvalidKeyError",
    "InvalidValueError",
    "MltrailError",
    "NotFoundError",
    "QuerySyntaxError",
    "Run",
    "RunFinishedError",
    "RunNotFound",
    "SchemaVersionError",
    "StoreError",
    "__version__",
    "active_run",
    "agent",
    "autolog",
    "finish",
    "init",
    "log",
    "seed_everything",
    "sweep",
]

_LAZY = {
    "Client": "mltrail.client.client",
    "Run": "mltrail.client.run",
    "init": "mltrail.client.fluent",
    "log": "mltrail.client.fluent",
    "finish": "mltrail.client.fluent",
    "active_run": "mltrail.client.fluent",
    "seed_everything": "mltrail.client.fluent",
    "sweep": "mltrail.sweeps",
    "agent": "mltrail.sweeps",
    "autolog": "mltrail.integrations",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mltrail' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
