"""Model version metadata: the default JSON Schema, filling it from the source run, and
validation that names every missing or invalid field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mltrail.entities import ArtifactVersion, RunRecord

__all__ = ["DEFAULT_SCHEMA", "FRAMEWORKS", "RECOMMENDED", "fill_metadata", "validate_metadata"]

RECOMMENDED = (
    "description", "tags", "dependencies", "environment", "license", "model_card",
    "intended_use", "limitations",
)  # fmt: skip

DEFAULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "mltrail model version metadata",
    "type": "object",
    "required": [
        "model_id",
        "version",
        "created_date",
        "author",
        "framework",
        "framework_version",
        "training_dataset",
        "metrics",
        "hyperparameters",
        "signature",
    ],
    "properties": {
        "model_id": {"type": "string", "minLength": 1},
        "version": {"type": "string", "minLength": 1},
        "created_date": {"type": "string", "format": "date-time", "minLength": 10},
        "author": {"type": "string", "minLength": 1},
        "framework": {"type": "string", "minLength": 1},
        "framework_version": {"type": "string", "minLength": 1},
        "training_dataset": {
            "description": "what the model was trained on: a name, or a list of "
            "{name, hash} records",
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1},
                {"type": "object", "minProperties": 1},
            ],
        },
        "metrics": {"type": "object", "minProperties": 1},
        "hyperparameters": {"type": "object"},
        "signature": {"type": "object", "required": ["inputs"]},
        "description": {"type": "string"},
        "tags": {"type": ["object", "array"]},
        "dependencies": {"type": "object"},
        "environment": {"type": "object"},
        "license": {"type": "string"},
        "model_card": {"type": "string"},
        "intended_use": {"type": "string"},
        "limitations": {"type": "string"},
    },
}

# Distribution name -> the framework name users know, checked in this order.
FRAMEWORKS = (
    ("torch", "pytorch"), ("tensorflow", "tensorflow"), ("keras", "keras"), ("jax", "jax"),
    ("xgboost", "xgboost"), ("lightgbm", "lightgbm"), ("catboost", "catboost"),
    ("scikit-learn", "sklearn"), ("transformers", "transformers"), ("onnx", "onnx"),
    ("numpy", "numpy"),
)  # fmt: skip


def _framework(
    given: Mapping[str, Any], art: ArtifactVersion | None, packages: Mapping[str, str]
) -> tuple[str | None, str | None]:
    name = given.get("framework") or (art.metadata.get("framework") if art else None)
    version = given.get("framework_version") or (
        art.metadata.get("framework_version") if art else None
    )
    if name and not version:
        for dist, known in FRAMEWORKS:
            if str(name).lower() in (dist, known) and dist in packages:
                version = packages[dist]
    if not name:
        for dist, known in FRAMEWORKS:
            if dist in packages:
                name, version = known, packages[dist]
                break
    return (None if name is None else str(name)), (None if version is None else str(version))


def fill_metadata(
    *,
    model: str,
    label: str,
    author: str,
    given: Mapping[str, Any],
    run: RunRecord | None,
    artifact: ArtifactVersion | None,
    run_inputs: list[ArtifactVersion],
    signature: Mapping[str, Any] | None,
    description: str = "",
) -> dict[str, Any]:
    """The version's metadata: what the caller gave, completed from the source run."""
    meta: dict[str, Any] = {
        "model_id": model,
        "version": label,
        "created_date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "author": author,
    }
    packages: Mapping[str, str] = {}
    if run is not None:
        packages = run.metadata.get("packages") or {}
        meta["metrics"] = {k: v for k, v in run.summary.items() if _jsonable_number(v)}
        meta["hyperparameters"] = dict(run.config)
        datasets: list[dict[str, Any]] = [
            {"name": f"{a.project}/{a.name}:v{a.version}", "hash": a.digest}
            for a in run_inputs
            if a.type == "dataset"
        ]
        datasets += [
            {"name": str(i.get("path")), "hash": i.get("hash")}
            for i in run.metadata.get("inputs") or []
            if isinstance(i, dict)
        ]
        if datasets:
            meta["training_dataset"] = datasets
        env = run.metadata.get("env") or {}
        meta["environment"] = {
            k: env[k] for k in ("python", "os", "platform", "machine") if k in env
        }
        git = run.metadata.get("git") or {}
        if git.get("commit"):
            meta["environment"]["git_commit"] = git["commit"]
        meta["source_run"] = {"id": run.id, "project": run.project, "name": run.name}
    framework, framework_version = _framework(given, artifact, packages)
    if framework:
        meta["framework"] = framework
    if framework_version:
        meta["framework_version"] = framework_version
        deps = {framework: framework_version}
        meta["dependencies"] = deps
    if signature is not None:
        meta["signature"] = dict(signature)
    if description:
        meta["description"] = description
    meta.update(given)
    return meta


def _jsonable_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_metadata(meta: Mapping[str, Any], schema: Mapping[str, Any] | None) -> list[str]:
    """Each problem as ``"field: what is wrong"``; empty when ``meta`` is valid."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(dict(schema or DEFAULT_SCHEMA))
    problems: list[str] = []
    for err in sorted(validator.iter_errors(dict(meta)), key=lambda e: list(e.absolute_path)):
        if err.validator == "required":
            missing = [r for r in err.validator_value if r not in err.instance]
            where = ".".join(str(p) for p in err.absolute_path)
            for name in missing:
                line = f"{where + '.' if where else ''}{name}: missing (required)"
                if line not in problems:  # one error per missing key, each listing all
                    problems.append(line)
            continue
        where = ".".join(str(p) for p in err.absolute_path) or "(document)"
        problems.append(f"{where}: {err.message}")
    return problems
