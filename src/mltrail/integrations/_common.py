"""What every integration does the same way: find its run, clean params and metrics,
log a model or a table as an artifact."""

from __future__ import annotations

import contextvars
import csv
import functools
import json
import math
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mltrail.client.run import Run
    from mltrail.entities import ArtifactVersion

__all__ = [
    "RunBound",
    "RunOwner",
    "artifact_name",
    "clean_metrics",
    "clean_params",
    "log_model_dir",
    "log_table",
    "mirror_suppressed",
    "suppress_mirror",
    "training_wrapper",
]

_MAX_PARAM_TEXT = 500
_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]+")

# Set while a framework's own TensorBoard logger writes (e.g. Lightning's), so the
# SummaryWriter mirror does not log the same metrics into the run a second time.
_SUPPRESS: contextvars.ContextVar[bool] = contextvars.ContextVar("mltrail_tb_mirror", default=False)


@contextmanager
def suppress_mirror() -> Iterator[None]:
    token = _SUPPRESS.set(True)
    try:
        yield
    finally:
        _SUPPRESS.reset(token)


def mirror_suppressed() -> bool:
    return _SUPPRESS.get()


class RunOwner:
    """The run an integration logs into: the one it was given, else the active run, else
    a run it starts itself (with ``init_kwargs``) and finishes in :meth:`finish`."""

    def __init__(self, run: Run | None = None, **init_kwargs: Any) -> None:
        self._run = run
        self._started = False
        self.init_kwargs = init_kwargs

    def get(self, **defaults: Any) -> Run:
        if self._run is not None and not self._run._closed:
            return self._run
        from mltrail.client import fluent

        active = fluent.active_run()
        if active is not None:
            self._run = active
            return active
        kwargs = {k: v for k, v in {**defaults, **self.init_kwargs}.items() if v is not None}
        self._run = fluent.init(**kwargs)
        self._started = True
        return self._run

    @property
    def run(self) -> Run | None:
        return self._run

    @property
    def started(self) -> bool:
        return self._started

    def finish(self, status: str = "finished") -> None:
        """Finish the run if this owner started it (a user's run stays open)."""
        if self._started and self._run is not None:
            self._run.finish(status)
            self._started = False
            self._run = None


class RunBound:
    """Base of the callbacks: the run they log into (given, active, or started by them
    and finished after training), whether they log the model, and an input example
    for its signature."""

    run_name: str | None = None

    def __init__(
        self,
        run: Run | None = None,
        *,
        log_model: bool = True,
        log_feature_importance: bool = True,
        input_example: Any = None,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        self._owner = RunOwner(run, **init_kwargs)
        self.log_model = log_model
        self.log_feature_importance = log_feature_importance
        self.input_example = input_example

    @property
    def run(self) -> Run:
        return self._owner.get(name=self._default_name())

    def _default_name(self) -> str | None:
        return self.run_name

    def _finish_after(self, work: Callable[[], None]) -> None:
        """Run the end-of-training ``work``, then finish a run started here (failed if
        ``work`` raised)."""
        try:
            work()
        except BaseException:
            self._owner.finish("failed")
            raise
        self._owner.finish()


def training_wrapper(
    framework: str,
    callback_type: type,
    make_callback: Callable[[], Any],
    before: Callable[[Any, tuple[Any, ...], dict[str, Any]], None] | None = None,
    after: Callable[[Any, Any], None] | None = None,
) -> Callable[[Any], Any]:
    """``make`` for :meth:`Patches.wrap` of a ``train(..., callbacks=...)`` function:
    adds a callback from ``make_callback()`` unless the call has a ``callback_type``
    already, calls ``before(callback, args, kwargs)`` first and ``after(callback,
    result)`` last."""

    def make(original: Any) -> Any:
        @functools.wraps(original)
        def train(*args: Any, **kwargs: Any) -> Any:
            callbacks = list(kwargs.get("callbacks") or ())
            if any(isinstance(c, callback_type) for c in callbacks):
                return original(*args, **kwargs)
            try:
                callback = make_callback()
                if before is not None:
                    before(callback, args, kwargs)
            except Exception as exc:  # never let tracking break training
                print(f"mltrail: {framework} autolog is off for this call: {exc!r}",
                      file=sys.stderr)  # fmt: skip
                return original(*args, **kwargs)
            kwargs["callbacks"] = [*callbacks, callback]
            try:
                result = original(*args, **kwargs)
            except BaseException:
                callback._owner.finish("failed")
                raise
            if after is not None:
                after(callback, result)
            return result

        return train

    return make


def _param(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) else value[:_MAX_PARAM_TEXT]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            return _param(item())
        except (TypeError, ValueError):
            pass
    if isinstance(value, (list, tuple)) and len(value) <= 64:
        out = [_param(v) for v in value]
        if all(v is None or isinstance(v, (bool, int, float, str)) for v in out):
            return out
    if isinstance(value, type) or callable(value):
        return getattr(value, "__qualname__", None) or str(value)[:_MAX_PARAM_TEXT]
    return str(value)[:_MAX_PARAM_TEXT]


def clean_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings flattened with dots, values made JSON-able (objects as short text),
    empty keys dropped: a framework's config never makes logging fail."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if not str(key).strip() or len(name) > 250:
            continue
        if isinstance(value, Mapping):
            if value:
                out.update(clean_params(value, name + "."))
            continue
        out[name] = _param(value)
    return out


def clean_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric scalars of ``metrics`` (tensors and NumPy scalars included); text, None
    and arrays are left out."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, (str, bytes, bool)) or value is None:
            continue
        if getattr(value, "ndim", 0) not in (0, None) and getattr(value, "size", 1) != 1:
            continue  # an array (a torch tensor's .size is a method: never equal to 1)
        try:
            out[f"{prefix}{key}"] = float(value)
        except (TypeError, ValueError, OverflowError):
            continue
    return out


def artifact_name(text: str) -> str:
    """``text`` made into a valid artifact name (letters, digits, ``._-``)."""
    name = _NAME_BAD.sub("-", text).strip("-._")[:128]
    return name or "artifact"


def log_model_dir(
    run: Run,
    path: str | Path,
    *,
    name: str,
    framework: str,
    signature: Mapping[str, Any] | None = None,
    input_example: Any = None,
    aliases: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> ArtifactVersion:
    """Log a saved model (file or folder) as a ``model`` artifact whose metadata holds the
    framework, its version, and the signature and input example when known."""
    meta: dict[str, Any] = {"framework": framework}
    version = _framework_version(framework)
    if version:
        meta["framework_version"] = version
    if signature is not None:
        meta["signature"] = dict(signature)
    if input_example is not None:
        meta["input_example"] = input_example
    meta.update(metadata or {})
    return run.log_artifact(path, name=name, type="model", metadata=meta, aliases=list(aliases))


def signature_and_example(inputs: Any, outputs: Any = None) -> tuple[Any, Any]:
    """(signature, example payload) of ``inputs``, or (None, None) when mltrail cannot
    describe them."""
    from mltrail.errors import MltrailError
    from mltrail.registry.signature import example_payload, infer_signature

    try:
        return infer_signature(inputs, outputs), example_payload(inputs)
    except (MltrailError, TypeError, ValueError):
        return None, None


def log_table(
    run: Run,
    name: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> ArtifactVersion:
    """Log rows as a ``table`` artifact: ``<name>.json`` (``{"columns", "data"}``) and
    ``<name>.csv``."""
    data = [[_json_cell(v) for v in row] for row in rows]
    with tempfile.TemporaryDirectory(prefix="mltrail-table-") as tmp:
        base = Path(tmp) / artifact_name(name)
        base.mkdir()
        doc = {"columns": list(columns), "data": data}
        (base / f"{base.name}.json").write_text(json.dumps(doc, allow_nan=False))
        with (base / f"{base.name}.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows(data)
        meta = {"columns": list(columns), "rows": len(data), **(metadata or {})}
        return run.log_artifact(base, name=artifact_name(name), type="table", metadata=meta)


def _json_cell(value: Any) -> Any:
    value = _param(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _framework_version(framework: str) -> str | None:
    import sys

    module = sys.modules.get(framework)
    version = getattr(module, "__version__", None)
    return str(version) if version else None
