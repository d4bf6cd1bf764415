"""``import mltrail`` stays light, and the public API is what ``__all__`` says."""

from __future__ import annotations

import json
import subprocess
import sys

import mltrail
import mltrail.errors

HEAVY = set(
    [
        "sqlalchemy",
        "alembic",
        "numpy",
        "torch",
        "pandas",
        "boto3",
        "botocore",
        "fastapi",
        "uvicorn",
        "starlette",
        "httpx",
        "typer",
        "rich",
        "psycopg",
        "blake3",
        "psutil",
    ]
)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(list(sys.modules)))"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return set(json.loads(out.stdout))


def test_import_mltrail_imports_nothing_heavy() -> None:
    loaded = _modules_after("import mltrail")
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}


def test_all_is_complete_and_resolves() -> None:
    public = {n for n in dir(mltrail) if not n.startswith("_")} - {"errors"}
    assert set(mltrail.__all__) >= public - {"annotations", "TYPE_CHECKING", "Any"}
    for name in mltrail.__all__:
        assert getattr(mltrail, name) is not None


def test_every_error_is_exported_from_errors_module() -> None:
    classes = {
        n for n, v in vars(mltrail.errors).items()
        if isinstance(v, type) and issubclass(v, mltrail.errors.MltrailError)
    }  # fmt: skip
    assert classes == set(mltrail.errors.__all__) - {"error_class"}
    for name in classes:
        cls = getattr(mltrail.errors, name)
        assert isinstance(cls.http_status, int) and isinstance(cls.exit_code, int)
        assert cls.__doc__ is None or cls.__doc__.strip()
        assert name in (mltrail.errors.__doc__ or "") or cls is mltrail.errors.MltrailError


def test_not_found_errors_are_key_errors_with_readable_str() -> None:
    err = mltrail.errors.RunNotFound("no run with id 'x'")
    assert isinstance(err, KeyError) and str(err) == "no run with id 'x'"
    hint = mltrail.errors.ExtraNotInstalled("boto3", "s3", "The S3 object store")
    assert "pip install 'mltrail[s3]'" in str(hint) and isinstance(hint, ImportError)
