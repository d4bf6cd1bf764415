"""W&B's sweep configuration, read and checked: :func:`parse_config` -> :class:`SweepSpec`.

The format is W&B's, unchanged (``method``, ``metric``, ``parameters``,
``early_terminate``, ``run_cap``, ``program``, ``command``, ``name``, ...), plus three
optional keys of our own: ``seed`` (the search's random seed), ``max_retries`` (how many
times a crashed trial is run again with the same parameters; default 1, 0 skips it)
and ``project``. Every problem is a :class:`~mltrail.errors.SweepConfigError` that names
the key (``parameters.lr.min``) and says how to fix it.

>>> spec = parse_config({"method": "random", "parameters": {"lr": {"min": 0.1, "max": 1.0}}})
>>> spec.params[0].kind, spec.params[0].path
('uniform', 'lr')
"""

from __future__ import annotations

import difflib
import json
import math
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrail.client.values import check_key
from mltrail.entities import Sweep
from mltrail.errors import InvalidKeyError, SweepConfigError

__all__ = [
    "DISTRIBUTIONS",
    "GRID_KINDS",
    "Hyperband",
    "Param",
    "SweepSpec",
    "load_config",
    "new_sweep",
    "parse_config",
]

METHODS = ("grid", "random", "bayes")
#: Each distribution and the keys it takes (beyond ``distribution``).
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "categorical": ("values", "probabilities"),
    "int_uniform": ("min", "max"),
    "uniform": ("min", "max"),
    "q_uniform": ("min", "max", "q"),
    "log_uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
    "q_log_uniform": ("min", "max", "q"),
    "q_log_uniform_values": ("min", "max", "q"),
    "inv_log_uniform": ("min", "max"),
    "inv_log_uniform_values": ("min", "max"),
    "normal": ("mu", "sigma"),
    "q_normal": ("mu", "sigma", "q"),
    "log_normal": ("mu", "sigma"),
    "q_log_normal": ("mu", "sigma", "q"),
    "beta": ("a", "b"),
    "q_beta": ("a", "b", "q"),
}
#: Distributions a grid search can enumerate.
GRID_KINDS = ("constant", "categorical", "int_uniform", "q_uniform")
_POSITIVE_RANGE = ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values")
_TOP_KEYS = (
    "method",
    "metric",
    "parameters",
    "early_terminate",
    "run_cap",
    "program",
    "command",
    "name",
    "description",
    "project",
    "entity",
    "controller",
    "job",
    "image_uri",
    "seed",
    "max_retries",
)
_METRIC_KEYS = ("name", "goal", "target", "impute", "impute_while_running")
_HYPERBAND_KEYS = ("type", "min_iter", "max_iter", "s", "eta", "strict")
MACROS = (
    "env",
    "interpreter",
    "program",
    "args",
    "args_no_hyphens",
    "args_json",
    "args_json_file",
    "args_no_boolean_flags",
)
_MACRO = re.compile(r"\$\{(\w+)\}")
_MAX_BAND = 10**9


@dataclass(frozen=True)
class Param:
    """One searched (or fixed) parameter, ``path`` dotted for nested ones (``opt.lr``)."""

    path: str
    kind: str
    value: Any = None
    values: tuple[Any, ...] = ()
    probabilities: tuple[float, ...] | None = None
    min: float = 0.0
    max: float = 0.0
    mu: float = 0.0
    sigma: float = 1.0
    q: float = 1.0
    a: float = 1.0
    b: float = 1.0
    ints: bool = False  # int_uniform, or q_* whose bounds and q are all whole numbers


@dataclass(frozen=True)
class Hyperband:
    """``early_terminate: {type: hyperband, ...}`` as W&B computes it.

    ``bands`` are iteration counts (how many times the metric has been logged); at each,
    a running trial whose best value so far (its value at the band, with ``strict``) is
    worse than the best ``1/eta`` of every trial's value there is stopped.
    """

    bands: tuple[int, ...]
    eta: float
    strict: bool


@dataclass(frozen=True)
class SweepSpec:
    method: str
    params: tuple[Param, ...]
    metric: str | None = None
    goal: str = "minimize"
    target: float | None = None
    early_terminate: Hyperband | None = None
    run_cap: int | None = None
    max_retries: int = 1
    program: str | None = None
    command: tuple[str, ...] | None = None
    name: str | None = None
    description: str | None = None
    project: str | None = None
    seed: int | None = None

    @property
    def searched(self) -> tuple[Param, ...]:
        """The parameters that vary (constants left out)."""
        return tuple(p for p in self.params if p.kind != "constant")


def _fail(where: str, problem: str, hint: str) -> SweepConfigError:
    return SweepConfigError(f"sweep config: {where}: {problem}", hint=hint)


def _closest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _number(where: str, value: Any, *, integer: bool = False) -> float:
    """A number (numeric strings such as YAML's ``1e-5`` are read as numbers)."""
    if isinstance(value, str):
        try:
            value = float(value.strip()) if not integer else int(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a whole number" if integer else "a number"
        raise _fail(where, f"{value!r} is not {kind}", f"write {where.rsplit('.', 1)[-1]}: 3")
    try:
        as_float = float(value)
    except OverflowError:
        as_float = math.inf
    if not math.isfinite(as_float):
        raise _fail(where, f"{value!r} is not a finite number", "give a finite number")
    if integer and not isinstance(value, int):
        if not as_float.is_integer():
            raise _fail(where, f"{value!r} is not a whole number", "give an integer")
        value = int(value)
    return float(value) if not integer else int(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _infer(where: str, spec: Mapping[str, Any]) -> str:
    given = spec.get("distribution")
    if given is not None:
        if not isinstance(given, str) or given not in DISTRIBUTIONS:
            names = tuple(DISTRIBUTIONS)
            raise _fail(
                f"{where}.distribution",
                f"unknown distribution {given!r}",
                f"{_closest(str(given), names)}one of: {', '.join(names)}",
            )
        return given
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical"
    if "min" in spec and "max" in spec:
        both = _whole(spec["min"]) and _whole(spec["max"])
        return "int_uniform" if both else "uniform"
    if "mu" in spec or "sigma" in spec:
        raise _fail(where, "mu/sigma without a distribution", "add distribution: normal")
    raise _fail(
        where,
        "a parameter needs value, values, or min and max",
        "e.g. {values: [16, 32]}, {value: 0.1} or {min: 0.0001, max: 0.1}",
    )


def _param(where: str, path: str, spec: Any) -> Param:
    kind = _infer(where, spec)
    allowed = DISTRIBUTIONS[kind]
    extra = sorted(k for k in spec if k != "distribution" and k not in allowed)
    if extra:
        known = ", ".join(allowed)
        raise _fail(
            f"{where}.{extra[0]}",
            f"{extra[0]!r} is not used by distribution {kind}",
            f"{_closest(str(extra[0]), allowed)}{kind} takes: {known}",
        )
    num = {
        k: _number(f"{where}.{k}", spec[k], integer=kind == "int_uniform")
        for k in ("min", "max", "mu", "sigma", "q", "a", "b")
        if k in spec
    }
    if kind == "constant":
        return Param(path, kind, value=spec["value"])
    if kind == "categorical":
        return _categorical(where, path, spec)
    for key in ("min", "max") if "min" in allowed else ():
        if key not in num:
            raise _fail(where, f"distribution {kind} needs {key}", f"add {key}: <number>")
    lo, hi = num.get("min", 0.0), num.get("max", 0.0)
    if "min" in allowed and not (lo < hi or (kind == "int_uniform" and lo == hi)):
        raise _fail(f"{where}.min", f"min ({lo}) must be below max ({hi})", "swap min and max")
    if kind in _POSITIVE_RANGE and lo <= 0:
        raise _fail(
            f"{where}.min",
            f"{kind} needs min > 0 (it is {lo})",
            "min and max are the values themselves; for exponents use log_uniform",
        )
    for key in ("sigma", "q", "a", "b"):
        if key in num and num[key] <= 0:
            raise _fail(f"{where}.{key}", f"{key} must be above 0 (it is {num[key]})", "e.g. 1")
    q = num.get("q", 1.0)
    ints = kind == "int_uniform" or (
        kind.startswith("q_") and all(_whole(spec.get(k, 1)) for k in ("q", "min", "max"))
    )
    if kind == "q_uniform" and math.floor(hi / q + 0.5) < math.floor(lo / q + 0.5):
        raise _fail(where, f"no multiple of q={q} lies in [{lo}, {hi}]", "use a smaller q")
    return Param(
        path,
        kind,
        min=float(lo),
        max=float(hi),
        mu=float(num.get("mu", 0.0)),
        sigma=float(num.get("sigma", 1.0)),
        q=float(q),
        a=float(num.get("a", 1.0)),
        b=float(num.get("b", 1.0)),
        ints=ints,
    )


def _categorical(where: str, path: str, spec: Mapping[str, Any]) -> Param:
    values = spec.get("values")
    if not isinstance(values, (list, tuple)) or not values:
        raise _fail(f"{where}.values", "values must be a non-empty list", "e.g. values: [16, 32]")
    probs = spec.get("probabilities")
    if probs is None:
        return Param(path, "categorical", values=tuple(values))
    if not isinstance(probs, (list, tuple)) or len(probs) != len(values):
        raise _fail(
            f"{where}.probabilities",
            f"give one probability per value ({len(values)})",
            "e.g. probabilities: [0.5, 0.5]",
        )
    weights = tuple(float(_number(f"{where}.probabilities", p)) for p in probs)
    if any(w < 0 for w in weights) or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
        raise _fail(
            f"{where}.probabilities",
            f"probabilities must be >= 0 and sum to 1 (they sum to {sum(weights):g})",
            "fix the numbers",
        )
    return Param(path, "categorical", values=tuple(values), probabilities=weights)


def _params(where: str, tree: Any, prefix: str = "") -> list[Param]:
    if not isinstance(tree, Mapping) or not tree:
        raise _fail(
            where,
            "parameters must be a non-empty mapping of name -> specification",
            "e.g. parameters: {lr: {min: 0.0001, max: 0.1}}",
        )
    out: list[Param] = []
    for name, spec in tree.items():
        here = f"{where}.{name}"
        if not isinstance(name, str) or not name.strip() or "." in name:
            raise _fail(
                here,
                f"parameter name {name!r} is not usable",
                "use a non-empty name without dots (nest with parameters:)",
            )
        try:
            check_key(prefix + name, "parameter")
        except InvalidKeyError as exc:
            raise _fail(here, exc.message, exc.hint or "rename it") from None
        if not isinstance(spec, Mapping):
            raise _fail(here, f"expected a mapping, got {spec!r}", "e.g. {values: [1, 2]}")
        if "parameters" in spec:
            others = sorted(k for k in spec if k != "parameters")
            if others:
                raise _fail(
                    here,
                    f"a nested parameter takes only 'parameters', not {others}",
                    "move the other keys into its parameters",
                )
            out += _params(f"{here}.parameters", spec["parameters"], f"{prefix}{name}.")
        else:
            out.append(_param(here, prefix + name, spec))
    return out


def _section(where: str, raw: Any, keys: tuple[str, ...], example: str) -> Mapping[str, Any]:
    """``raw`` as a mapping whose keys are all among ``keys``."""
    if not isinstance(raw, Mapping):
        raise _fail(where, "expected a mapping", f"e.g. {example}")
    for key in raw:
        if key not in keys:
            raise _fail(f"{where}.{key}" if where else str(key), f"unknown key {key!r}",
                        f"{_closest(str(key), keys)}keys: {', '.join(keys)}")  # fmt: skip
    return raw


def _metric(raw: Any) -> tuple[str | None, str, float | None]:
    if raw is None:
        return None, "minimize", None
    raw = _section("metric", raw, _METRIC_KEYS, "metric: {name: val_loss, goal: minimize}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(
            "metric.name", "the metric needs a name", "the key your runs log, e.g. val_loss"
        )
    goal = raw.get("goal", "minimize")
    if goal not in ("minimize", "maximize"):
        raise _fail("metric.goal", f"goal {goal!r} is not minimize or maximize", "pick one")
    target = raw.get("target")
    return name, goal, None if target is None else _number("metric.target", target)


def _hyperband(raw: Any) -> Hyperband | None:
    if raw is None:
        return None
    raw = _section("early_terminate", raw, _HYPERBAND_KEYS, "{type: hyperband, min_iter: 3}")
    if raw.get("type") != "hyperband":
        raise _fail(
            "early_terminate.type",
            f"type {raw.get('type')!r} is not supported",
            "use type: hyperband",
        )
    eta = _number("early_terminate.eta", raw.get("eta", 3))
    if eta <= 1:
        raise _fail("early_terminate.eta", f"eta must be above 1 (it is {eta})", "e.g. eta: 3")
    bands: list[int] = []
    if "max_iter" in raw:
        top = _number("early_terminate.max_iter", raw["max_iter"], integer=True)
        if "s" not in raw:
            raise _fail("early_terminate", "max_iter needs s (the number of brackets)", "add s: 2")
        s = int(_number("early_terminate.s", raw["s"], integer=True))
        band = float(top)
        for _ in range(max(0, s)):
            band /= eta
            if band < 1:
                break
            bands.append(int(band))
    elif "min_iter" in raw:
        band = float(_number("early_terminate.min_iter", raw["min_iter"], integer=True))
        if band < 1:
            raise _fail("early_terminate.min_iter", "min_iter must be at least 1", "e.g. 3")
        while band <= _MAX_BAND:
            bands.append(int(band))
            band *= eta
    else:
        raise _fail(
            "early_terminate",
            "hyperband needs min_iter, or max_iter and s",
            "e.g. {type: hyperband, min_iter: 3, eta: 3}",
        )
    if not bands:
        raise _fail(
            "early_terminate",
            "these settings give no band to stop at",
            "raise max_iter or s, or use min_iter",
        )
    strict = raw.get("strict", False)
    if not isinstance(strict, bool):
        raise _fail("early_terminate.strict", "strict must be true or false", "strict: false")
    return Hyperband(bands=tuple(sorted(set(bands))), eta=float(eta), strict=strict)


def _command(raw: Any, program: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(a, str) for a in raw):
        raise _fail(
            "command",
            "command must be a list of strings",
            "e.g. command: [${env}, ${interpreter}, ${program}, ${args}]",
        )
    for part in raw:
        for macro in _MACRO.findall(part):
            if macro not in MACROS:
                raise _fail(
                    "command",
                    f"unknown macro ${{{macro}}}",
                    f"{_closest(macro, MACROS)}macros: " + ", ".join(f"${{{m}}}" for m in MACROS),
                )
    if program is None and any("${program}" in part for part in raw):
        raise _fail(
            "command", "uses ${program} but the sweep has no program", "add program: train.py"
        )
    return tuple(raw)


def _optional_int(key: str, raw: Mapping[str, Any], low: int) -> int | None:
    if raw.get(key) is None:
        return None
    value = int(_number(key, raw[key], integer=True))
    if value < low:
        raise _fail(key, f"{key} must be at least {low} (it is {value})", f"e.g. {key}: {low}")
    return value


def _text(key: str, raw: Mapping[str, Any]) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, f"{key} must be a non-empty string", f"e.g. {key}: my-{key}")
    return value


def parse_config(config: Any) -> SweepSpec:
    """Check a W&B-style sweep configuration and read it into a :class:`SweepSpec`."""
    if not isinstance(config, Mapping):
        raise SweepConfigError(
            f"a sweep config is a mapping, not {type(config).__name__}",
            hint='e.g. {"method": "random", "parameters": {"lr": {"min": 0.001, "max": 0.1}}}',
        )
    _section("", config, _TOP_KEYS, "")
    method = config.get("method")
    if method not in METHODS:
        raise _fail(
            "method",
            f"method {method!r} is not one of grid, random, bayes",
            f"{_closest(str(method), METHODS)}set method: random",
        )
    params = tuple(_params("parameters", config.get("parameters")))
    metric, goal, target = _metric(config.get("metric"))
    if method == "bayes" and metric is None:
        raise _fail(
            "metric",
            "method bayes needs a metric to optimise",
            "add metric: {name: val_loss, goal: minimize}",
        )
    if method == "grid":
        for p in params:
            if p.kind not in GRID_KINDS:
                raise _fail(
                    f"parameters.{p.path}",
                    f"grid search cannot enumerate {p.kind}",
                    "give values: [...] (or int_uniform, q_uniform), or use method random or bayes",
                )
    early = _hyperband(config.get("early_terminate"))
    if early is not None and metric is None:
        raise _fail(
            "early_terminate",
            "early termination needs a metric to compare runs by",
            "add metric: {name: val_loss, goal: minimize}",
        )
    program = _text("program", config)
    fields: dict[str, Any] = {
        "method": method,
        "params": params,
        "metric": metric,
        "goal": goal,
        "target": target,
        "early_terminate": early,
        "program": program,
        "command": _command(config.get("command"), program),
    }
    fields["run_cap"] = _optional_int("run_cap", config, 1)
    retries = _optional_int("max_retries", config, 0)
    fields["max_retries"] = 1 if retries is None else retries
    for key in ("name", "project"):
        fields[key] = _text(key, config)
    if config.get("description") is not None:
        fields["description"] = str(config["description"])
    if config.get("seed") is not None:
        fields["seed"] = int(_number("seed", config["seed"], integer=True))
    return SweepSpec(**fields)


def load_config(path: str | Path) -> dict[str, Any]:
    """A sweep configuration from a YAML (or JSON) file."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepConfigError(
            f"cannot read the sweep config {str(file)!r}: {exc.strerror}",
            hint="give the path of a YAML file such as sweep.yaml",
        ) from exc
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SweepConfigError(
            f"the sweep config {str(file)!r} is not valid YAML/JSON: {exc}",
            hint="check the indentation and quoting",
        ) from exc
    if not isinstance(data, dict):
        raise SweepConfigError(
            f"the sweep config {str(file)!r} does not hold a mapping",
            hint="it starts with keys such as method:, metric:, parameters:",
        )
    return data


def new_sweep(
    sweep_id: str,
    project: str,
    config: Mapping[str, Any],
    *,
    name: str | None = None,
    seed: int | None = None,
    created_by: str | None = None,
) -> Sweep:
    """The record a store keeps for a new sweep, its fields read from ``config``."""
    spec = parse_config(config)
    if seed is None:
        seed = spec.seed if spec.seed is not None else secrets.randbelow(2**31)
    now = time.time()
    return Sweep(
        id=sweep_id,
        project=check_key(project, "project"),
        name=name or spec.name or f"sweep-{sweep_id[:6]}",
        method=spec.method,
        metric=spec.metric,
        goal=spec.goal,
        state="running",
        config=dict(config),
        seed=seed,
        run_cap=spec.run_cap,
        max_retries=spec.max_retries,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
