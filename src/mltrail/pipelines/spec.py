"""Reading a pipeline file: ``mltrail.yaml`` (else ``dvc.yaml``), DVC's stage format as is.

>>> s = parse_stage("train", {"cmd": "python t.py", "deps": ["data/"], "params": ["lr"]})
>>> s.deps, s.params
(('data',), (('params.yaml', 'lr'),))
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrail.errors import PipelineError

__all__ = [
    "PIPELINE_FILES",
    "Pipeline",
    "PipelineError",
    "Stage",
    "find_pipeline_file",
    "load_pipeline",
    "parse_pipeline",
    "parse_stage",
]

#: Pipeline file names, in the order they are looked for.
PIPELINE_FILES = ("mltrail.yaml", "dvc.yaml")
DEFAULT_PARAMS = "params.yaml"
_STAGE_KEYS = {
    "cmd",
    "deps",
    "outs",
    "params",
    "metrics",
    "plots",
    "desc",
    "meta",
    "always_changed",
    "frozen",
}
#: Top-level keys of a dvc.yaml that mltrail reads past (only ``stages`` matters here).
_TOP_KEYS = {"stages", "vars", "params", "metrics", "plots", "artifacts", "datasets"}


@dataclass(frozen=True)
class Stage:
    """One stage: a shell command with the files it reads and writes."""

    name: str
    cmd: str
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    #: (params file, dotted key) pairs.
    params: tuple[tuple[str, str], ...] = ()
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    always_changed: bool = False
    frozen: bool = False

    @property
    def all_outs(self) -> tuple[str, ...]:
        """Every path the stage writes: outs, metrics and plots."""
        return self.outs + self.metrics + self.plots


@dataclass(frozen=True)
class Pipeline:
    """The stages of one pipeline file; paths are relative to ``root``."""

    path: Path
    stages: dict[str, Stage] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The directory commands run in and paths are relative to."""
        return self.path.parent

    @property
    def lock_path(self) -> Path:
        """Where the lock file lives: ``mltrail.lock`` beside the pipeline file."""
        return self.root / "mltrail.lock"


def _norm(path: Any, where: str) -> str:
    if not isinstance(path, str) or not path.strip():
        raise PipelineError(f"{where}: expected a path, got {path!r}")
    if posixpath.isabs(path):
        raise PipelineError(f"{where}: {path!r} is absolute; paths are relative to the pipeline")
    norm = posixpath.normpath(path.strip())
    if norm == ".." or norm.startswith("../"):
        raise PipelineError(f"{where}: {path!r} leaves the pipeline directory")
    return norm


def _paths(value: Any, where: str) -> tuple[str, ...]:
    """A list of paths; DVC's ``{path: {cache: false, ...}}`` entries give their path."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PipelineError(f"{where}: expected a list of paths, got {type(value).__name__}")
    out: list[str] = []
    for item in value:
        if isinstance(item, dict) and len(item) == 1:
            item = next(iter(item))
        out.append(_norm(item, where))
    return tuple(out)


def _params(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """``[lr, train.epochs, {other.yaml: [k]}]`` as (file, key) pairs."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PipelineError(f"{where}: expected a list of parameter keys")
    out: list[tuple[str, str]] = []
    for item in value:
        if isinstance(item, str) and item:
            out.append((DEFAULT_PARAMS, item))
        elif isinstance(item, dict):
            for file, keys in item.items():
                fname = _norm(file, where)
                if keys is None:
                    keys = []
                if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                    raise PipelineError(f"{where}: keys of {file!r} must be a list of names")
                out.extend((fname, k) for k in keys)
        else:
            raise PipelineError(f"{where}: bad parameter entry {item!r}")
    return tuple(out)


def parse_stage(name: str, body: Any) -> Stage:
    """One stage from its YAML mapping; raises :class:`PipelineError` on a bad field."""
    where = f"stage {name!r}"
    if not isinstance(body, dict):
        raise PipelineError(f"{where}: expected a mapping with 'cmd', got {body!r}")
    unknown = sorted(set(body) - _STAGE_KEYS)
    if unknown:
        raise PipelineError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}",
            hint=f"a stage has {', '.join(sorted(_STAGE_KEYS))}",
        )
    cmd = body.get("cmd")
    if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
        cmd = " && ".join(cmd)
    if not isinstance(cmd, str) or not cmd.strip():
        raise PipelineError(f"{where}: 'cmd' must be a non-empty command string")
    return Stage(
        name=name,
        cmd=cmd,
        deps=_paths(body.get("deps"), f"{where} deps"),
        outs=_paths(body.get("outs"), f"{where} outs"),
        params=_params(body.get("params"), f"{where} params"),
        metrics=_paths(body.get("metrics"), f"{where} metrics"),
        plots=_paths(body.get("plots"), f"{where} plots"),
        always_changed=bool(body.get("always_changed", False)),
        frozen=bool(body.get("frozen", False)),
    )


def parse_pipeline(data: Any, path: Path) -> Pipeline:
    """A :class:`Pipeline` from the loaded YAML document of ``path``."""
    if not isinstance(data, dict) or "stages" not in data:
        raise PipelineError(f"{path}: expected a mapping with a 'stages' key")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise PipelineError(f"{path}: unknown top-level field(s) {', '.join(map(repr, unknown))}")
    stages_raw = data["stages"]
    if not isinstance(stages_raw, dict) or not stages_raw:
        raise PipelineError(f"{path}: 'stages' must be a non-empty mapping of name -> stage")
    stages: dict[str, Stage] = {}
    for name, body in stages_raw.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise PipelineError(f"{path}: bad stage name {name!r}")
        stages[name] = parse_stage(name, body)
    return Pipeline(path=path, stages=stages)


def find_pipeline_file(directory: Path | None = None) -> Path:
    """``mltrail.yaml`` in ``directory`` (default: the working directory), else ``dvc.yaml``."""
    base = directory or Path.cwd()
    for name in PIPELINE_FILES:
        if (base / name).is_file():
            return (base / name).resolve()
    raise PipelineError(
        f"no pipeline file in {base}", hint="write stages into mltrail.yaml (or dvc.yaml)"
    )


def load_pipeline(path: Path | None = None) -> Pipeline:
    """Read and validate a pipeline file (found with :func:`find_pipeline_file` by default).

    Structural checks (cycles, missing deps, shared outputs) are in
    :func:`mltrail.pipelines.dag.build_dag`.
    """
    import yaml

    if path is None:
        path = find_pipeline_file()
    elif path.is_dir():
        path = find_pipeline_file(path)
    path = path.resolve()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PipelineError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path} is not valid YAML: {exc}") from exc
    return parse_pipeline(data, path)
