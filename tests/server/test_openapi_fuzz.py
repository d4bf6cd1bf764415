"""schemathesis against the OpenAPI document of a real server: no request it makes up
may end in a server error (5xx).

The document is built at collection time from ``create_app`` (so every operation is its
own test, and a route added later is fuzzed too); ``test_the_served_document_is_the_one_fuzzed``
checks it is the very document the running server serves at ``/api/v1/openapi.json``.
A few examples per operation (``max_examples=5``, no deadline) keep the run near a
minute. The server runs without auth, so made-up requests reach the handlers (with auth
on they would all stop at the access check); its store is SQLite, objects local.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from mltrail.server.app import create_app
from mltrail.server.config import ServerConfig
from tests.server.test_routes_access import launch


def _document() -> dict[str, Any]:
    app = create_app(ServerConfig(store_uri="sqlite:////nonexistent/x.db", objects_uri="/x"))
    return app.openapi()


@schemathesis.serializer("application/x-mltrail-metrics", "application/octet-stream")
def _raw_bytes(ctx: Any, value: Any) -> bytes:
    """Binary bodies (metric frames, object bytes): whatever was generated, as bytes
    (made-up frames must be refused with 4xx, never crash the server)."""
    if isinstance(value, bytes):
        return value
    return repr(value).encode()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("fuzz")
    store = f"sqlite:///{base / 'mltrail.db'}"
    with launch(store, str(base / "objects"), base / "server.log", auth=False) as url:
        yield url


def test_the_served_document_is_the_one_fuzzed(fuzz_server: str) -> None:
    served = httpx.get(fuzz_server + "/api/v1/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == DOCUMENT
    assert len(DOCUMENT["paths"]) > 50


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is repeatable
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_request_is_a_server_error(case: schemathesis.Case, fuzz_server: str) -> None:
    case.call_and_validate(base_url=fuzz_server, checks=[not_a_server_error], timeout=30)
