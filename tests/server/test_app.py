"""The server as a process: starts, answers, errors are JSON with a stable code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from mltrail.errors import (
    AuthenticationRequired,
    MltrailError,
    NotFoundError,
    RunNotFound,
    StoreError,
    error_class,
)


def test_health_and_openapi(server_url: str) -> None:
    health = httpx.get(f"{server_url}/health").json()
    assert health["ok"] is True
    doc = httpx.get(f"{server_url}/api/v1/openapi.json").json()
    assert doc["info"]["title"] == "mltrail"


def test_unknown_route_is_a_json_error(server_url: str) -> None:
    r = httpx.get(f"{server_url}/api/v1/no-such-thing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_body_over_the_limit_is_refused(serve: Callable[..., str], tmp_path: Path) -> None:
    url = serve(f"sqlite:///{tmp_path / 's.db'}", env={"MLTRAIL_SERVER_MAX_BODY": "1000"})
    r = httpx.post(f"{url}/api/v1/anything", content=b"x" * 5000)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_server_defaults_to_the_embedded_store(serve: Callable[..., str]) -> None:
    # the store URI "" resolves like a client's: ./.mltrail/mltrail.db in the cwd
    url = serve("", objects=None)
    assert httpx.get(f"{url}/health").status_code == 200
    assert (Path.cwd() / ".mltrail" / "mltrail.db").exists()


def test_error_classes_round_trip_by_code() -> None:
    assert error_class("run_not_found", 404) is RunNotFound
    assert error_class("authentication_required", 401) is AuthenticationRequired
    assert error_class("something_new", 404) is NotFoundError
    assert error_class("something_new", 500) is StoreError
    assert all(issubclass(c, MltrailError) for c in (RunNotFound, StoreError))
