"""Object store fixtures: a real S3 API (moto) on loopback, a store per backend.

The moto server runs as a subprocess (one per session / xdist worker), so its threads
and warnings stay out of the test process. It failing to start is a test failure,
never a skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mltrail.objects import ObjectStore
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.s3 import S3ObjectStore

# boto3 must never fall through to real credentials, config files or EC2 metadata.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")
PREFIX = "team/objects"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10).close()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1, with fake credentials in the environment."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp, open(log, "wb") as log_file:
        for name, value in FAKE_AWS_ENV.items():
            mp.setenv(name, value)
        for name in UNSET_AWS_ENV:
            mp.delenv(name, raising=False)
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"moto S3 server exited with {proc.returncode} (is moto[server] "
                        f"installed?); its log:\n{log.read_text(errors='replace')}"
                    )
                try:
                    urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                    break
                except (urllib.error.URLError, OSError):
                    if time.monotonic() > deadline:
                        pytest.fail(f"moto S3 server not ready at {url} after 30 s")
                    time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def make_s3_store(s3_endpoint: str) -> Iterator[Callable[..., S3ObjectStore]]:
    """``make_s3_store(**kwargs)``: an S3ObjectStore on a fresh bucket (moto reset after)."""

    def make(**kwargs: Any) -> S3ObjectStore:
        kwargs.setdefault("endpoint_url", s3_endpoint)
        store = S3ObjectStore(f"test-{uuid.uuid4().hex[:12]}", PREFIX, **kwargs)
        store.client.create_bucket(Bucket=store.bucket)
        return store

    yield make
    _post(f"{s3_endpoint}/moto-api/reset")  # drop every bucket: objects live in moto's memory


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """An empty object store of each backend."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    make: Callable[..., S3ObjectStore] = request.getfixturevalue("make_s3_store")
    return make()


@pytest.fixture
def overwrite_object() -> Callable[[ObjectStore, str, bytes], None]:
    """Replace a stored object's bytes behind the store's back (to simulate corruption)."""

    def overwrite(store: ObjectStore, oid: str, data: bytes) -> None:
        if isinstance(store, LocalObjectStore):
            path = store.path_of(oid)
            path.chmod(0o644)
            path.write_bytes(data)
            path.chmod(0o444)
        elif isinstance(store, S3ObjectStore):
            store.client.put_object(Bucket=store.bucket, Key=store.key_of(oid), Body=data)
        else:  # pragma: no cover
            raise TypeError(store)

    return overwrite


@pytest.fixture(autouse=True)
def _cache_home_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 resume records (``$XDG_CACHE_HOME/mltrail/s3-uploads``) stay in the test's tmp dir."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
