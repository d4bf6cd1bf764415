"""Reading a pipeline file: ``mltrail.yaml`` (else ``dvc.yaml``), DVC's stage format as is.

>>> s = parse_stage("train", {"cmd": "python t.py", "deps": ["data/"], "params": ["lr"]})
>>> s.deps, s.params
(('data',), (('params.yaml', 'lr'),))

DVC's templating works too: ``${key.sub}`` (or ``${list[0]}``) in any string takes its
value from the file's ``vars`` (mappings, or files such as ``config.yaml`` or
``config.yaml:key1,key2``) and from ``params.yaml``, which is always read; a key taken
from ``params.yaml`` becomes a param of the stage, so changing it re-runs the stage.
A string that is exactly ``${key}`` keeps the value's type. ``foreach`` (a list, a
mapping, or ``${key}`` naming one) with ``do`` makes one stage per item, named
``stage@item`` (``stage@key`` for a mapping, ``stage@0`` for a list of mappings), with
``${item}`` and ``${key}``; ``matrix`` (name -> list) makes one stage per combination,
named ``stage@a-b``, with ``${item.name}``.
"""

from __future__ import annotations

import dataclasses
import itertools
import posixpath
import re
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
    "read_yaml",
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
    "vars",
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


_REF = re.compile(r"(?<!\\)\$\{\s*([^{}\s]+)\s*\}")
_MISSING = object()


class _Context:
    """Values ``${...}`` can name, and which of them came from ``params.yaml``."""

    def __init__(self, root: Path, data: dict[str, Any]) -> None:
        self.root = root
        self.params: dict[str, Any] = {}
        defaults = root / DEFAULT_PARAMS
        if defaults.is_file():
            self.params = _load_vars_file(defaults, f"{DEFAULT_PARAMS}")
        self.values: dict[str, Any] = dict(self.params)
        self.used: set[str] = set()  # params.yaml keys the stage being read used
        self.extend(data.get("vars"), "vars")

    def extend(self, spec: Any, where: str) -> None:
        if spec is None:
            return
        if not isinstance(spec, list):
            raise PipelineError(f"{where}: expected a list of mappings or file names")
        for item in spec:
            if isinstance(item, dict):
                self.values.update(item)
            elif isinstance(item, str) and item:
                file, _, keys = item.partition(":")
                loaded = _load_vars_file(self.root / _norm(file, where), where)
                if keys:
                    wanted = [k.strip() for k in keys.split(",") if k.strip()]
                    missing = [k for k in wanted if k not in loaded]
                    if missing:
                        raise PipelineError(f"{where}: {file} has no key(s) {missing}")
                    loaded = {k: loaded[k] for k in wanted}
                self.values.update(loaded)
            else:
                raise PipelineError(f"{where}: bad vars entry {item!r}")

    def child(self, extra: dict[str, Any]) -> _Context:
        new = _Context.__new__(_Context)
        new.root, new.params, new.used = self.root, self.params, set()
        new.values = {**self.values, **extra}
        return new

    def lookup(self, expr: str, where: str) -> Any:
        value: Any = self.values
        parts = [p for p in re.split(r"\.|\[(\d+)\]", expr) if p]
        for part in parts:
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdecimal() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise PipelineError(
                    f"{where}: ${{{expr}}} is not defined",
                    hint="define it in params.yaml or in the file's vars",
                )
        top = parts[0] if parts else expr
        if top in self.params and self.values.get(top) is self.params[top]:
            self.used.add(expr.split("[", 1)[0])  # the param is the list, not its item
        return value


def read_yaml(path: Path, label: str, where: str = "") -> Any:
    """The YAML document at ``path``; a :class:`PipelineError` naming ``label`` (the file as
    the message should show it) if it cannot be read or parsed, prefixed by ``where``."""
    import yaml

    prefix = f"{where}: " if where else ""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PipelineError(f"{prefix}cannot read {label}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PipelineError(f"{prefix}{label} is not valid YAML: {exc}") from exc


def _load_vars_file(path: Path, where: str) -> dict[str, Any]:
    data = read_yaml(path, path.name, where)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PipelineError(f"{where}: {path.name} must hold a mapping of names to values")
    return data


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise PipelineError(f"cannot put a {type(value).__name__} inside a string")
    return str(value)


def _interpolate(node: Any, ctx: _Context, where: str) -> Any:
    """``node`` with every ``${...}`` replaced; ``\\${`` stays a literal ``${``."""
    if isinstance(node, str):
        whole = _REF.fullmatch(node.strip())
        if whole:
            return ctx.lookup(whole.group(1), where)
        try:
            out = _REF.sub(lambda m: _text(ctx.lookup(m.group(1), where)), node)
        except PipelineError as exc:
            if exc.message.startswith("cannot put"):
                raise PipelineError(f"{where}: {exc.message} ({node!r})") from None
            raise
        return out.replace("\\${", "${")
    if isinstance(node, list):
        return [_interpolate(v, ctx, where) for v in node]
    if isinstance(node, dict):
        return {_interpolate(k, ctx, where): _interpolate(v, ctx, where) for k, v in node.items()}
    return node


def _item_name(value: Any) -> str:
    return value if isinstance(value, str) else _text(value)


def _expand(name: str, body: dict[str, Any], ctx: _Context) -> list[tuple[str, Any, _Context]]:
    """``(name, body, context)`` of each stage a plain, ``foreach`` or ``matrix`` stage makes."""
    where = f"stage {name!r}"
    if "foreach" in body:
        extra = sorted(set(body) - {"foreach", "do"})
        if "do" not in body or extra:
            raise PipelineError(f"{where}: foreach needs 'do' (and nothing else beside it)")
        items = _interpolate(body["foreach"], ctx, where)
        if isinstance(items, dict):
            pairs = [(str(k), {"key": k, "item": v}) for k, v in items.items()]
        elif isinstance(items, list):
            pairs = [
                (str(i) if isinstance(v, (dict, list)) else _item_name(v), {"item": v, "key": i})
                for i, v in enumerate(items)
            ]
        else:
            raise PipelineError(f"{where}: foreach must be a list or a mapping, got {items!r}")
        return [(f"{name}@{n}", body["do"], ctx.child(extra)) for n, extra in pairs]
    if "matrix" in body:
        matrix = _interpolate(body["matrix"], ctx, where)
        if not isinstance(matrix, dict) or not all(
            isinstance(v, list) and v for v in matrix.values()
        ):
            raise PipelineError(f"{where}: matrix must map names to non-empty lists")
        rest = {k: v for k, v in body.items() if k != "matrix"}
        out = []
        for combo in itertools.product(*matrix.values()):
            item = dict(zip(matrix, combo, strict=True))
            label = "-".join(_item_name(v) for v in combo)
            out.append((f"{name}@{label}", rest, ctx.child({"item": item})))
        return out
    return [(name, body, ctx)]


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
    context = _Context(path.parent, data)
    stages: dict[str, Stage] = {}
    for name, body in stages_raw.items():
        if not isinstance(name, str) or not name or "/" in name or "@" in name:
            raise PipelineError(f"{path}: bad stage name {name!r}")
        if not isinstance(body, dict):
            raise PipelineError(f"stage {name!r}: expected a mapping with 'cmd', got {body!r}")
        for full, raw, ctx in _expand(name, body, context):
            if not isinstance(raw, dict):
                raise PipelineError(f"stage {full!r}: expected a mapping with 'cmd'")
            ctx = ctx.child({})  # its own record of the params.yaml keys it uses
            ctx.extend(raw.get("vars"), f"stage {full!r} vars")
            resolved = _interpolate({k: v for k, v in raw.items() if k != "vars"}, ctx, full)
            stage = parse_stage(full, resolved)
            used = tuple((DEFAULT_PARAMS, k) for k in sorted(ctx.used))
            extra = tuple(p for p in used if p not in stage.params)
            if extra:
                stage = dataclasses.replace(stage, params=stage.params + extra)
            if full in stages:
                raise PipelineError(f"{path}: two stages are named {full!r}")
            stages[full] = stage
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
    if path is None:
        path = find_pipeline_file()
    elif path.is_dir():
        path = find_pipeline_file(path)
    path = path.resolve()
    return parse_pipeline(read_yaml(path, str(path)), path)
