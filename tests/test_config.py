"""Tracking URI resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrail.config import local_dir, resolve_uri
from mltrail.errors import ConfigurationError


def test_default_is_embedded_sqlite_in_cwd() -> None:
    assert resolve_uri() == f"sqlite:///{Path.cwd() / '.mltrail' / 'mltrail.db'}"
    assert local_dir(resolve_uri()) == Path.cwd() / ".mltrail"


def test_env_var_and_relative_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", "sqlite:///rel/x.db")
    assert resolve_uri() == f"sqlite:///{Path.cwd() / 'rel' / 'x.db'}"
    assert resolve_uri("some/dir") == f"sqlite:///{Path.cwd() / 'some' / 'dir' / 'mltrail.db'}"
    assert resolve_uri("postgresql://u@h/db") == "postgresql://u@h/db"
    assert resolve_uri("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"
    assert local_dir("postgresql://u@h/db") == Path.cwd() / ".mltrail"
    monkeypatch.setenv("MLTRAIL_DIR", "/tmp/elsewhere")
    assert local_dir(resolve_uri()) == Path("/tmp/elsewhere")


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("sqlite:///:memory:", "in-memory"),
        ("mysql://x", "unsupported tracking URI"),
        ("http://", "names no host"),
    ],
)
def test_bad_uris(uri: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        resolve_uri(uri)


def test_bad_setting_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrail.config import settings

    monkeypatch.setenv("MLTRAIL_FLUSH_INTERVAL", "fast")
    with pytest.raises(ConfigurationError, match="MLTRAIL_FLUSH_INTERVAL"):
        settings()
